"""The student kit where students use it: a fresh virtual environment with only the kit's wheel
installed, working in a folder outside the repository (see ``conftest.StudentEnv``).

The notebooks themselves run top to bottom in these environments in ``test_notebooks.py``.
"""

import functools
import http.server
import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import nbformat
import numpy as np
import pytest

from autograder import kit
from autograder.checks import get_check
from autograder.testspec import parse_test_cell

from student_kit_env import REPO, paste_solutions

pytestmark = pytest.mark.slow
ORDER = ["convolution", "im2col", "pooling", "batchnorm", "convnet"]


def test_the_student_environment_imports_the_kit_and_never_the_repository(student_env):
    env = student_env("convolution")
    code = ("import json, cs231n_lib, cs231n_checks\n"
            "out = {'lib': cs231n_lib.__file__, 'checks': cs231n_checks.__file__}\n"
            "try:\n    import autograder\n    out['grader'] = autograder.__file__\nexcept ImportError:\n    out['grader'] = None\n"
            "try:\n    cs231n_lib.conv_forward(None, None, None, None)\nexcept NotImplementedError as exc:\n    out['stub'] = str(exc)\n"
            "print(json.dumps(out))")
    done = env.run("-c", code)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["lib"].startswith(str(env.venv)) and out["checks"].startswith(str(env.venv))
    assert out["grader"] is None
    assert "not in the student kit while the assignment 'convolution' is open" in out["stub"]


def test_validate_in_the_student_environment_gives_the_points_of_the_visible_cases(student_env):
    assignment = "pooling"  # a later assignment: its kit ships the earlier ones' layers it uses
    env = student_env(assignment)
    released = env.notebook_copy()
    done = subprocess.run([str(env.script("cs231n-grade")), "validate", str(released)], cwd=env.work,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 1, done.stdout + done.stderr
    source = nbformat.read(REPO / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
    points = {c.metadata["nbgrader"]["grade_id"]: c.metadata["nbgrader"]["points"] for c in source.cells
              if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")}
    optional = {c.metadata["nbgrader"]["grade_id"] for c in source.cells
                if c.metadata.get("cs231n", {}).get("optional") and c.metadata.get("nbgrader", {}).get("grade")}
    required = sum(p for g, p in points.items() if g not in optional)
    assert f"Visible cases give 0 of {required:g} points." in done.stdout
    assert done.stdout.count("[todo]") == len(points)
    solved = env.notebook_copy()
    paste_solutions(solved, assignment)
    done = subprocess.run([str(env.script("cs231n-grade")), "validate", str(solved)], cwd=env.work,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Visible cases give {required:g} of {required:g} points." in done.stdout
    assert done.stdout.count("[  ok]") == len(points)


# ------------------------------------------------------------------------------------------
# No callable of the installed kit computes an open assignment's answer

SEARCH = r'''
import inspect, itertools, json, pkgutil, sys, importlib
import numpy as np
import cs231n_lib
from cs231n_checks import get_check, judge

data = np.load(sys.argv[1], allow_pickle=False)
callables = {}
for info in pkgutil.walk_packages(cs231n_lib.__path__, "cs231n_lib."):
    module = importlib.import_module(info.name)
    for attr, value in vars(module).items():
        if callable(value) and not attr.startswith("__") and getattr(value, "__module__", "").startswith("cs231n_lib"):
            callables[f"{info.name}.{attr}"] = value

found = {}
for case in sorted({k.split("/")[0] for k in data.files}):
    name = str(data[case + "/name"][()])
    check = get_check(name)
    spec = json.loads(str(data[case + "/case"][()]))
    inputs = {k.split("/", 2)[2]: data[k] for k in data.files if k.startswith(case + "/in/")}
    expected = {k.split("/", 2)[2]: data[k] for k in data.files if k.startswith(case + "/out/")}
    found.setdefault(name, [])
    # a forward role (the first of a forward/backward pair) is played by the kit's forward passes
    roles = [sorted(c for c in callables if "forward" in c)] * (len(check.names_required()) - 1) + [sorted(callables)]
    for choice in itertools.product(*roles):
        namespace = dict(zip(check.names_required(), (callables[c] for c in choice)))
        try:
            outputs = check.call(namespace, {k: np.array(v, copy=True) for k, v in inputs.items()})
            passed = judge(check, spec, expected, outputs, inputs=inputs, mistakes=[])[0]
        except BaseException:
            continue
        if passed and list(choice) not in found[name]:
            found[name].append(list(choice))
print(json.dumps({"callables": len(callables), "found": found}))
'''


def _graded_cases(assignment):
    """{check name: [visible and hidden cases]} of every test cell of ``assignment``."""
    source = nbformat.read(REPO / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
    calls = {}
    for cell in source.cells:
        if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade"):
            for call in parse_test_cell(cell.source):
                calls.setdefault(call.name, []).extend(call.cases)
    return calls


def _search(env, graded, tmp_path):
    """Run every callable of the kit's cs231n_lib in place of each graded function ({name:
    cases}, its first case) in ``env``; returns {"callables": count, "found": {name: [names]}}."""
    arrays = {}
    for name, cases in graded.items():
        check = get_check(name)
        for number, case in enumerate(cases[:1]):
            key = f"{name}-{number}"
            inputs = check.make_inputs(case)
            expected = check.reference({k: np.array(v, copy=True) for k, v in inputs.items()})
            arrays.update({f"{key}/in/{k}": v for k, v in inputs.items()})
            arrays.update({f"{key}/out/{k}": v for k, v in expected.items()})
            arrays[f"{key}/case"] = np.array(json.dumps(case))
            arrays[f"{key}/name"] = np.array(name)
    path = tmp_path / "cases.npz"
    np.savez(path, **arrays)
    done = env.run("-c", SEARCH, str(path), timeout=1800)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("assignment", ORDER)
def test_no_callable_of_the_installed_kit_computes_an_open_graded_function(student_env, assignment, tmp_path):
    """Every callable of the kit's cs231n_lib (with every forward pass of the kit before it, for a
    check that calls a forward then a backward function) is tried in place of the student's
    function on random inputs: none gives the reference output."""
    graded = _graded_cases(assignment)
    result = _search(student_env(assignment), graded, tmp_path)
    assert result["callables"] > 50
    assert sorted(result["found"]) == sorted(graded)
    assert {name: found for name, found in result["found"].items() if found} == {}


def test_the_search_finds_the_answers_of_a_closed_assignment(student_env, tmp_path):
    """The search is not blind: on pooling's day, convolution is closed and its layer ships."""
    env = student_env("pooling")
    graded = {"conv_forward_naive": _graded_cases("convolution")["conv_forward_naive"]}
    assert ["cs231n_lib.conv.conv_forward"] in _search(env, graded, tmp_path)["found"]["conv_forward_naive"]


# ------------------------------------------------------------------------------------------
# The notebooks' first cell installs the kit where it is missing (Colab)


def _kit_cell(assignment="convolution"):
    nb = nbformat.read(REPO / "assignments" / assignment / f"{assignment}.ipynb", as_version=4)
    cells = [c for c in nb.cells if c.cell_type == "code" and kit.INSTALL_LINE in c.source.splitlines()]
    assert len(cells) == 1 and nb.cells.index(cells[0]) == min(
        i for i, c in enumerate(nb.cells) if c.cell_type == "code"), "the kit cell is the first code cell"
    return cells[0].source


@pytest.fixture(scope="module")
def bare_env(tmp_path_factory, student_env):
    """A student environment without the kit (as Colab is before the first cell runs)."""
    env = student_env("convolution")
    root = tmp_path_factory.mktemp("bare")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    shutil.copyfile(Path(env.python).parent.parent / Path(site).relative_to(venv) / "deps.pth", Path(site) / "deps.pth")
    return python, env.kit.wheel, root


def _run_cell(python, source, install_from, cwd):
    cell = kit.with_install_source(nbformat.writes(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])),
                                   install_from)
    code = nbformat.reads(cell, as_version=4).cells[0].source
    return subprocess.run([str(python), "-c", code + "\nimport cs231n_checks\nprint('kit:', cs231n_checks.__file__)"],
                          capture_output=True, text=True, cwd=cwd, timeout=600)


def _uninstall(python):
    subprocess.run([str(python), "-m", "pip", "uninstall", "--yes", "--quiet", kit.KIT_NAME.replace("_", "-")],
                   capture_output=True)


def test_the_kit_cell_refuses_in_one_sentence_when_the_kit_is_missing_and_no_address_is_set(bare_env):
    python, _, root = bare_env
    _uninstall(python)
    done = _run_cell(python, _kit_cell(), "", root)
    assert done.returncode != 0
    assert "RuntimeError" in done.stderr and "pip install" in done.stderr


def test_the_kit_cell_installs_from_a_local_file_and_then_does_nothing(bare_env):
    python, wheel, root = bare_env
    _uninstall(python)
    done = _run_cell(python, _kit_cell(), str(wheel), root)
    assert done.returncode == 0, done.stderr
    assert f"kit: {root}" in done.stdout
    again = _run_cell(python, _kit_cell(), "/nonexistent/kit.whl", root)  # installed: the address is not used
    assert again.returncode == 0, again.stderr


def test_the_kit_cell_installs_from_a_url(bare_env):
    python, wheel, root = bare_env
    _uninstall(python)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(wheel.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/{wheel.name}"
        done = _run_cell(python, _kit_cell(), url, root)
    finally:
        server.shutdown()
    assert done.returncode == 0, done.stderr
    assert f"kit: {root}" in done.stdout
