"""The one place that builds nbgrader's configuration, and the release step.

Two kinds of nbgrader course are used by the kit:

- the **repository** itself when releasing: course root = the repository, ``solutions/`` is
  nbgrader's source folder, ``assignments/`` its release folder, and the gradebook is a
  throwaway file in a temporary folder so that a release leaves nothing behind;
- the **grading output** folder (``grading-output/`` by default): an ordinary nbgrader course
  (``source/``, ``release/``, ``autograded/``, ``feedback/``, ``gradebook.db`` and an
  ``nbgrader_config.py``) so that nbgrader's formgrader and ``nbgrader export`` work on it.

nbgrader's converters change the working folder and environment of the process they run in, so
every call here restores both afterwards, and none is ever made from two threads at once.
"""

import contextlib
import functools
import hashlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

import nbformat


COURSE_ID = "cs231n"
SOLUTIONS_DIR = "solutions"
ASSIGNMENTS_DIR = "assignments"
# Files and folders that are never part of an assignment.
IGNORED_NAMES = {".ipynb_checkpoints", "__pycache__", ".DS_Store", "gradebook.db"}


class CourseError(RuntimeError):
    """An nbgrader step failed; the message carries nbgrader's own error."""


def str_bin_dir():
    """The folder of this Python's console scripts (nbgrader, alembic, dask)."""
    return str(Path(sys.executable).parent)


def ensure_alembic_on_path():
    """nbgrader runs the ``alembic`` executable to create a gradebook: put this venv's bin first."""
    bin_dir = str_bin_dir()
    parts = os.environ.get("PATH", "").split(os.pathsep)
    if not parts or parts[0] != bin_dir:
        os.environ["PATH"] = os.pathsep.join([bin_dir] + [p for p in parts if p != bin_dir])


@functools.lru_cache(maxsize=None)
def _alembic_head():
    """The gradebook schema revision of the installed nbgrader, read in-process."""
    import nbgrader
    from alembic.config import Config as AlembicConfig
    from alembic.script import ScriptDirectory

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(Path(nbgrader.__file__).parent / "alembic"))
    return ScriptDirectory.from_config(cfg).get_current_head()


def patch_nbgrader():
    """Make nbgrader create gradebooks without spawning the ``alembic`` executable each time.

    nbgrader 0.9 runs ``alembic heads`` in a subprocess for every new gradebook only to read a
    constant (the schema revision), which costs seconds on a loaded machine; the same value is
    read here once, in-process. ``alembic`` stays on PATH for nbgrader's other commands.
    """
    import nbgrader.api

    ensure_alembic_on_path()
    if getattr(nbgrader.api.get_alembic_version, "__module__", "") != __name__:
        nbgrader.api.get_alembic_version = _alembic_head


def nbgrader_config(root, *, db_url=None, source="source", release="release", feedback_hidden_tests=False,
                    ignore=()):
    """Return the traitlets ``Config`` of an nbgrader course rooted at ``root``.

    Inputs:
    - root: the course folder (made absolute)
    - db_url: gradebook URL; default ``sqlite:///<root>/gradebook.db``
    - source, release: names of nbgrader's source and release folders inside ``root``
    - feedback_hidden_tests: keep hidden tests in feedback HTML (never for students; tests only)
    - ignore: more file names nbgrader must not copy from the source folder
    """
    from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
    from nbgrader.preprocessors import ClearHiddenTests, GetGrades
    from traitlets.config import Config

    root = Path(root).resolve()
    c = Config()
    c.CourseDirectory.root = str(root)
    c.CourseDirectory.course_id = COURSE_ID
    c.CourseDirectory.db_url = db_url or f"sqlite:///{root / 'gradebook.db'}"
    c.CourseDirectory.source_directory = source
    c.CourseDirectory.release_directory = release
    c.CourseDirectory.ignore = sorted(IGNORED_NAMES | {"*.pyc", "feedback"} | set(ignore))
    # Never let a tag in a submission skip a cell if someone runs nbgrader's own autograde here.
    c.Execute.skip_cells_with_tag = "cs231n-never-skip-" + hashlib.sha256(str(root).encode()).hexdigest()[:12]
    c.OverwriteCells.add_missing_cells = True
    c.GenerateAssignment.preprocessors  # noqa: B018  (touch: keep nbgrader's default list)
    preprocessors = [GetGrades, CSSHTMLHeaderPreprocessor] if feedback_hidden_tests else [
        GetGrades, ClearHiddenTests, CSSHTMLHeaderPreprocessor]
    c.GenerateFeedback.preprocessors = preprocessors
    # nbgrader's API checks an exchange folder it never uses here; give it one that exists
    exchange = Path(tempfile.gettempdir()) / "cs231n-nbgrader-exchange"
    exchange.mkdir(exist_ok=True)
    c.Exchange.root = str(exchange)
    return c


NBGRADER_CONFIG_PY = '''\
# nbgrader configuration of this grading folder, written by `cs231n-grade autograde`.
# nbgrader's formgrader and `nbgrader export` work here. Grades come from cs231n-grade's
# sandboxed engine: do not run `nbgrader autograde` in this folder, it has none of the protections.
import os

from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
from nbgrader.preprocessors import ClearHiddenTests, GetGrades

c = get_config()  # noqa: F821
_here = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.root = _here
c.CourseDirectory.course_id = {course_id!r}
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(_here, "gradebook.db")
c.Execute.skip_cells_with_tag = {skip_tag!r}
c.OverwriteCells.add_missing_cells = True
c.GenerateFeedback.preprocessors = [GetGrades, ClearHiddenTests, CSSHTMLHeaderPreprocessor]
'''


def write_nbgrader_config_file(root):
    """Write ``root/nbgrader_config.py`` so that nbgrader's own tools work in ``root``."""
    c = nbgrader_config(root)
    text = NBGRADER_CONFIG_PY.format(course_id=COURSE_ID, skip_tag=c.Execute.skip_cells_with_tag)
    path = Path(root) / "nbgrader_config.py"
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


@contextlib.contextmanager
def _process_state_kept():
    """nbgrader converters chdir and set environment variables: restore both afterwards."""
    cwd, env = os.getcwd(), dict(os.environ)
    try:
        yield
    finally:
        os.chdir(cwd)
        for key in set(os.environ) - set(env):
            del os.environ[key]
        os.environ.update(env)


def nbgrader_api(config):
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    patch_nbgrader()
    coursedir = CourseDirectory(config=config)
    api = NbGraderAPI(coursedir=coursedir, config=config)
    api.log.setLevel("ERROR")
    return api


def _checked(result, what):
    if not result.get("success"):
        detail = (result.get("error") or result.get("log") or "no detail").strip()
        raise CourseError(f"nbgrader {what} failed:\n{detail}")
    return result


def generate_assignment(config, assignment):
    """Run nbgrader's generate_assignment for ``assignment`` with ``config`` (force, create)."""
    with _process_state_kept():
        api = nbgrader_api(config)
        return _checked(api.generate_assignment(assignment, force=True, create=True),
                        f"generate_assignment {assignment}")


def generate_feedback(config, assignment, student=None):
    """Run nbgrader's generate_feedback (hidden tests cleared by ``nbgrader_config``)."""
    with _process_state_kept():
        api = nbgrader_api(config)
        return _checked(api.generate_feedback(assignment, student_id=student, force=True),
                        f"generate_feedback {assignment} {student or '*'}")


# ------------------------------------------------------------------------------------------
# Assignments of a course root


def list_assignments(course_root):
    """Names of the assignments in ``course_root/solutions`` (folders holding a notebook), sorted."""
    solutions = Path(course_root) / SOLUTIONS_DIR
    if not solutions.is_dir():
        raise CourseError(f"no {SOLUTIONS_DIR}/ folder in {course_root}: expected the instructor notebooks there")
    return sorted(p.name for p in solutions.iterdir()
                  if p.is_dir() and p.name not in IGNORED_NAMES and any(p.glob("*.ipynb")))


def assignment_notebooks(course_root, assignment):
    """File names of the notebooks of ``assignment`` in ``solutions/``, sorted."""
    return sorted(p.name for p in (Path(course_root) / SOLUTIONS_DIR / assignment).glob("*.ipynb"))


def is_notebook_script(path):
    """True for ``<name>.py`` next to ``<name>.ipynb``: the notebook's jupytext source.

    It holds the solutions and hidden tests like the notebook, and the notebook says the same:
    it is never released, copied into a grading folder, or counted in a digest.
    """
    path = Path(path)
    return path.suffix == ".py" and path.with_suffix(".ipynb").is_file()


def assignment_files(folder):
    for path in sorted(Path(folder).rglob("*")):
        rel = path.relative_to(folder)
        if path.is_file() and not any(part in IGNORED_NAMES or part.endswith(".pyc") for part in rel.parts) \
                and not is_notebook_script(path):
            yield rel, path


# ------------------------------------------------------------------------------------------
# Release: solutions/ -> assignments/


def _normalise_released_notebook(path):
    """Make a released notebook byte-stable: no outputs, no execution counts, fixed metadata order.

    nbgrader clears outputs already; this also drops run-time metadata (``execution``,
    ``collapsed``/``scrolled`` widgets state, jupytext's notes) and writes with nbformat's
    canonical layout, so that releasing twice leaves ``git diff`` empty.
    """
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.metadata.pop("execution", None)
        cell.metadata.pop("ExecuteTime", None)
    nb.metadata.pop("widgets", None)
    nb.metadata.pop("jupytext", None)  # JupyterLab's jupytext notes on the source: not the student's business
    text = nbformat.writes(nb) + "\n"
    if path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def release(course_root, assignments=None, *, quiet=False):
    """Regenerate ``assignments/<a>/`` from ``solutions/<a>/`` with nbgrader's generate_assignment.

    Inputs:
    - course_root: the repository (holds ``solutions/``)
    - assignments: names to release; default: every assignment in ``solutions/``

    Returns the list of released notebook paths. The gradebook nbgrader needs for this lives in a
    temporary folder; files in ``assignments/<a>/`` that the source no longer produces are removed.
    Running it twice in a row changes nothing.
    """
    course_root = Path(course_root).resolve()
    names = list_assignments(course_root) if assignments is None else list(assignments)
    released = []
    with tempfile.TemporaryDirectory(prefix="cs231n-release-") as tmp:
        config = nbgrader_config(course_root, db_url=f"sqlite:///{Path(tmp) / 'gradebook.db'}",
                                 source=SOLUTIONS_DIR, release=ASSIGNMENTS_DIR)
        for name in names:
            if not (course_root / SOLUTIONS_DIR / name).is_dir():
                raise CourseError(f"no assignment {name!r} in {course_root / SOLUTIONS_DIR}; "
                                  f"found: {', '.join(list_assignments(course_root)) or 'none'}")
            target = course_root / ASSIGNMENTS_DIR / name
            # every case's reference must be trustworthy before students are graded against it
            from .conditioning import ConditioningError, require_well_conditioned

            try:
                require_well_conditioned(course_root / SOLUTIONS_DIR / name / f"{name}.ipynb")
            except ConditioningError as exc:
                raise CourseError(f"release stopped: {exc}") from None
            # generate into a scratch release folder, then swap in: a failed release leaves
            # the committed student versions untouched
            scratch = Path(tmp) / "release"
            scripts = {p.name for p in (course_root / SOLUTIONS_DIR / name).rglob("*.py") if is_notebook_script(p)}
            scratch_config = nbgrader_config(course_root, db_url=config.CourseDirectory.db_url,
                                             source=SOLUTIONS_DIR, release=str(scratch), ignore=scripts)
            generate_assignment(scratch_config, name)
            produced = scratch / name
            for path in produced.rglob("*.ipynb"):
                _normalise_released_notebook(path)
            sync_folder(produced, target)
            released.extend(sorted(target.rglob("*.ipynb")))
            if not quiet:
                print(f"released {name}: {', '.join(p.name for p in sorted(target.glob('*.ipynb')))}")
    return released


def sync_folder(src, dst):
    """Make ``dst`` hold exactly the files of ``src``, rewriting only files whose bytes differ."""
    dst.mkdir(parents=True, exist_ok=True)
    wanted = {rel for rel, _ in assignment_files(src)}
    for rel, path in assignment_files(src):
        out = dst / rel
        data = path.read_bytes()
        if not out.exists() or out.read_bytes() != data:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(data)
            os.chmod(out, 0o644)
    for rel, path in list(assignment_files(dst)):
        if rel not in wanted:
            path.unlink()


def remove_tree(path):
    shutil.rmtree(path, ignore_errors=True)
