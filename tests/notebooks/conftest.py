"""Shared test infrastructure: student environments that hold only the student kit.

``student_env(assignment)`` builds the student kit as it is while ``assignment`` is open
(``cs231n-grade student-kit`` with that day's schedule), creates a fresh virtual environment,
installs the kit's wheel there (no editable install of this repository, no path into it) and
gives a Jupyter kernel running in that environment. The third-party packages the kit depends on
come from this repository's own environment through a path entry (``deps.pth``): a path added
that way is not a site folder, so the editable finders of ``cs231n_lib``, ``cs231n_checks`` and
``autograder`` installed there are never loaded, and the machine needs no network. Each
environment is built once per test session.
"""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


class StudentEnv:
    """One student's machine: a venv with the kit of ``assignment``'s open day installed."""

    def __init__(self, root, assignment):
        from autograder import kit

        self.root, self.assignment = Path(root), assignment
        schedule = kit.load_schedule(REPO).while_open(assignment)
        self.kit = kit.build_student_kit(REPO, self.root / "kit", schedule)
        self.venv = self.root / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(self.venv)], check=True, capture_output=True)
        self.python = self.venv / "bin" / "python"
        site = Path(subprocess.run([str(self.python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                   check=True, capture_output=True, text=True).stdout.strip())
        (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
        subprocess.run([str(self.python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                        str(self.kit.wheel)], check=True, capture_output=True, cwd=self.root)
        self.kernels = self.root / "kernels"
        spec = self.kernels / "student-kit"
        spec.mkdir(parents=True)
        # one Numba cache per environment, as on a student's machine (compiled once, then loaded)
        self.env = {"NUMBA_CACHE_DIR": str(self.root / "numba-cache")}
        (spec / "kernel.json").write_text(json.dumps({
            "argv": [str(self.python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "student kit", "language": "python", "env": self.env}))
        self.work = self.root / "work"
        self.work.mkdir()

    def run(self, *args, **kwargs):
        """Run this environment's Python with ``args`` in a folder outside the repository."""
        kwargs.setdefault("cwd", self.work)
        kwargs.setdefault("env", dict(os.environ, **self.env))
        return subprocess.run([str(self.python), *args], capture_output=True, text=True, **kwargs)

    def script(self, name):
        return self.venv / "bin" / name

    def client(self, nb, path, timeout=600):
        """An nbclient ``NotebookClient`` whose kernel runs in this environment, in ``path``."""
        from jupyter_client import KernelManager
        from jupyter_client.kernelspec import KernelSpecManager
        from nbclient import NotebookClient

        km = KernelManager(kernel_name="student-kit", kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(self.kernels)]))
        return NotebookClient(nb, km=km, timeout=timeout, allow_errors=True, resources={"metadata": {"path": str(path)}})

    def notebook_copy(self, name=None):
        """A fresh copy of the kit's released notebook folder of ``name`` (default: this assignment)."""
        name = name or self.assignment
        target = self.work / f"{name}-{len(list(self.work.iterdir()))}"
        shutil.copytree(self.kit.out / "assignments" / name, target)
        return target / f"{name}.ipynb"


@pytest.fixture(scope="session")
def student_env(tmp_path_factory):
    """``student_env(assignment)`` -> ``StudentEnv`` (built once per assignment and session)."""
    envs = {}

    def make(assignment):
        if assignment not in envs:
            envs[assignment] = StudentEnv(tmp_path_factory.mktemp(f"student-{assignment}"), assignment)
        return envs[assignment]

    return make


def paste_solutions(released_path, assignment, out_path=None):
    """Write the released notebook with the solution cells of the instructor's notebook pasted in."""
    import nbformat

    source = nbformat.read(REPO / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
    answers = {c.metadata["nbgrader"]["grade_id"]: c.source for c in source.cells
               if c.metadata.get("nbgrader", {}).get("solution")}
    nb = nbformat.read(released_path, as_version=4)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.metadata.get("nbgrader", {}).get("solution") and grade_id in answers:
            cell.source = answers[grade_id]
    nbformat.write(nb, out_path or released_path)
    return nb


# Test modules import the helpers above as ``from student_kit_env import ...`` (several folders
# hold a conftest.py, so the plain name ``conftest`` is not a reliable module name).
sys.modules.setdefault("student_kit_env", sys.modules[__name__])
