"""The course notebooks themselves: they run, the solutions earn full marks, the releases earn zero.

Every test here uses real Jupyter kernels: nbclient for top-to-bottom execution, and the
grading engine (sandboxed kernels, out-of-process checks) for the marks. The solution notebooks
must also be exactly what their build scripts in tools/notebooks/ write.
"""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from autograder.engine import GradeTask, grade_submission

REPO = Path(__file__).resolve().parents[2]
ASSIGNMENTS = ("convolution", "im2col", "pooling", "batchnorm", "convnet")
pytestmark = pytest.mark.slow


def notebook_path(folder, assignment):
    return REPO / folder / assignment / f"{assignment}.ipynb"


def present(folder):
    return [a for a in ASSIGNMENTS if notebook_path(folder, a).exists()]


def test_all_five_notebooks_exist_in_solutions_and_assignments():
    assert present("solutions") == list(ASSIGNMENTS)
    assert present("assignments") == list(ASSIGNMENTS)


@pytest.mark.parametrize("folder", ["solutions", "assignments"])
def test_notebooks_are_stored_with_outputs_cleared(folder):
    for assignment in present(folder):
        nb = nbformat.read(notebook_path(folder, assignment), as_version=4)
        dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
        assert dirty == [], f"{folder}/{assignment}: cells {dirty} have outputs"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solution_notebook_runs_top_to_bottom(assignment, tmp_path, monkeypatch, record_property):
    """The instructor's notebook, every cell (plots, demos, short training) on a real kernel."""
    source = notebook_path("solutions", assignment)
    work = tmp_path / assignment
    shutil.copytree(source.parent, work)
    nb = nbformat.read(work / source.name, as_version=4)
    monkeypatch.setenv("CS231N_QUICK", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    start = time.perf_counter()
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(work)}}).execute()
    seconds = time.perf_counter() - start
    record_property("seconds", round(seconds, 1))
    print(f"{assignment}: executed in {seconds:.1f} s")
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert errors == []


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_build_script_reproduces_the_committed_solution_notebook(assignment, tmp_path):
    """solutions/ is generated: rerunning tools/notebooks/build_<a>.py changes no byte."""
    fresh = tmp_path / f"{assignment}.ipynb"
    script = REPO / "tools" / "notebooks" / f"build_{assignment}.py"
    subprocess.run([sys.executable, str(script), str(fresh)], check=True, capture_output=True, cwd=tmp_path)
    assert fresh.read_bytes() == notebook_path("solutions", assignment).read_bytes(), (
        f"rerun {script.relative_to(REPO)} and commit its output")


def _grade(folder, assignment, student):
    path = notebook_path(folder, assignment)
    task = GradeTask(student=student, assignment=assignment, files={path.name: path.read_bytes()},
                     course_root=str(REPO))
    return grade_submission(task)


def _cases(result):
    for notebook in result["notebooks"].values():
        for test in notebook["tests"]:
            yield from test["cases"]


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solution_graded_as_a_submission_earns_full_marks(assignment):
    result = _grade("solutions", assignment, "instructor")
    assert result["status"] == "graded", result.get("error")
    failed = [(c["check"], c["description"], c["outcome"], c["message"]) for c in _cases(result) if c["outcome"] != "passed"]
    assert failed == []
    assert result["max_score"] > 0
    assert result["score"] == pytest.approx(result["max_score"])


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_untouched_release_earns_zero_without_a_grader_error(assignment):
    result = _grade("assignments", assignment, "untouched")
    assert result["status"] == "graded", result.get("error")
    notebook = next(iter(result["notebooks"].values()))
    assert notebook["status"] == "graded"
    outcomes = {c["outcome"] for c in _cases(result)}
    assert outcomes and "passed" not in outcomes
    assert outcomes <= {"error", "wrong"}, outcomes
    assert result["score"] == 0 and result["max_score"] > 0


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_total_points_are_stated_at_the_top_and_match_the_test_cells(assignment):
    nb = nbformat.read(notebook_path("solutions", assignment), as_version=4)
    total = sum(c.metadata.get("nbgrader", {}).get("points", 0) for c in nb.cells
                if c.metadata.get("nbgrader", {}).get("grade") and c.cell_type == "code")
    intro = "\n".join(c.source for c in nb.cells[:3] if c.cell_type == "markdown").replace("*", "")
    assert total > 0
    assert f"{total:g} points" in intro, f"the top of {assignment} should state the total: {total:g} points"


def test_quick_mode_is_read_from_the_environment_only_by_cells_skipped_at_grading():
    """Grading must carry no signal: the short configuration lives only in skipped cells."""
    for assignment in present("solutions"):
        nb = nbformat.read(notebook_path("solutions", assignment), as_version=4)
        for index, cell in enumerate(nb.cells):
            if cell.cell_type == "code" and "CS231N_QUICK" in cell.source:
                assert cell.metadata.get("cs231n", {}).get("grading") == "skip", (assignment, index)


def test_no_solution_or_hidden_test_leaks_into_the_released_notebooks():
    for assignment in present("assignments"):
        text = notebook_path("assignments", assignment).read_text()
        assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text
        assert os.path.getsize(notebook_path("assignments", assignment)) > 0
