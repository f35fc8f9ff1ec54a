"""`cs231n-grade autograde` end to end on the toy course (fast stand-in engine), and its errors."""

import base64
import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import toycourse
from autograder import gradebook
from autograder.cli import main

FAKE = str(Path(__file__).with_name("fake_engine.py")) + ":grade"


@pytest.fixture
def fake_engine(monkeypatch, tmp_path):
    log = tmp_path / "engine-calls.log"
    monkeypatch.setenv("CS231N_GRADE_ENGINE", FAKE)
    monkeypatch.setenv("FAKE_ENGINE_LOG", str(log))
    return log


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory):
    """The toy class graded once through the CLI with one worker process."""
    tmp = tmp_path_factory.mktemp("cli")
    root = toycourse.course_copy(tmp / "repo")
    subs = toycourse.make_class(tmp / "subs", root)
    toycourse.write_submission(subs, root, "dave", "toy",
                               {"conv_output_size": toycourse.SIZE_RIGHT + "# FAKE_RAISE\n"})
    out = tmp / "out"
    env = {"CS231N_GRADE_ENGINE": FAKE, "FAKE_ENGINE_LOG": str(tmp / "calls.log")}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        import io
        from contextlib import redirect_stdout

        buffer = io.StringIO()
        with redirect_stdout(buffer):
            status = main(["--course", str(root), "autograde", str(subs), "--out", str(out), "--workers", "1",
                           "--quiet"])
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    return root, subs, out, status, buffer.getvalue(), (tmp / "calls.log").read_text().splitlines()


def test_grades_csv_and_gradebook_agree_with_the_class(graded_class):
    _, _, out, status, _, _ = graded_class
    rows = {r["student"]: r for r in csv.DictReader(open(out / "grades.csv"))}
    assert {s: (r["status"], r["score"], r["max_score"]) for s, r in rows.items()} == {
        "alice": ("graded", "5", "5"), "bob": ("graded", "3", "5"), "carol": ("graded", "2", "5"),
        "dave": ("failed", "0", "")}
    assert "grader error: RuntimeError: fake engine asked to raise" in rows["dave"]["error"]
    assert status == 1  # something failed to grade: a script can tell
    with gradebook.open_gradebook(out) as gb:
        scores = {s: gradebook.submission_scores(gb, "toy", s) for s in rows}
    assert scores == {"alice": (5.0, 5.0), "bob": (3.0, 5.0), "carol": (2.0, 5.0), "dave": (0.0, 5.0)}


def test_infrastructure_failure_is_retried_once(graded_class):
    calls = graded_class[5]
    assert sorted(calls) == sorted(["alice\ttoy", "bob\ttoy", "carol\ttoy", "dave\ttoy", "dave\ttoy"])


def test_summary_says_what_needs_a_person(graded_class):
    out_text = graded_class[4]
    assert "Graded 3 of 4 submissions from 4 students" in out_text
    assert re.search(r"alice\s+5/5", out_text) and re.search(r"bob\s+3/5", out_text)
    assert re.search(r"dave\s+FAILED", out_text)
    assert "FAILED TO GRADE (1)" in out_text and "dave / toy: grader error: RuntimeError" in out_text
    assert "grades.csv" in out_text and "report.html" in out_text


def test_nbgrader_export_works_on_the_grading_folder(graded_class):
    out = graded_class[2]
    env = dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"])
    subprocess.run([str(Path(sys.executable).parent / "nbgrader"), "export", "--to", "nb-export.csv"],
                   cwd=out, env=env, check=True, capture_output=True)
    rows = {r["student_id"]: float(r["score"]) for r in csv.DictReader(open(out / "nb-export.csv"))}
    assert rows == {"alice": 5.0, "bob": 3.0, "carol": 2.0, "dave": 0.0}


def test_autograded_notebooks_and_feedback_pages(graded_class):
    root, _, out, _, _, _ = graded_class
    for student in ("alice", "bob", "carol"):
        assert (out / "autograded" / student / "toy" / "toy.ipynb").is_file()
        page = (out / "feedback" / student / "toy" / "toy.html").read_text()
        assert "BEGIN HIDDEN TESTS" not in page and "4242" not in page and "9137" not in page
    assert not (out / "autograded" / "dave").exists()
    [page] = (out / "feedback" / "dave").rglob("*.html")  # dave's could not be graded: a page says why
    assert "could not be graded" in page.read_text()
    bob = (out / "feedback" / "bob" / "toy" / "toy.html").read_text()
    assert "WRONG" in bob  # the per-case outcome reached the page


def test_report_embeds_plots_and_escapes_names(graded_class):
    report = (graded_class[2] / "report.html").read_text()
    images = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", report)
    assert len(images) >= 2 and all(base64.b64decode(i).startswith(b"\x89PNG") for i in images)
    assert "test_conv_output_size" in report and "Failed to grade" in report


def test_missing_submissions_folder_is_an_error_for_people(tmp_path, capsys):
    assert main(["autograde", str(tmp_path / "nope"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "<student>/<assignment>" in err


def test_workers_must_be_positive(capsys):
    with pytest.raises(SystemExit):
        main(["autograde", "x", "--workers", "0"])
    assert "positive number of workers" in capsys.readouterr().err


@pytest.mark.slow
def test_validate_prints_the_visible_verdicts_with_the_real_engine(tmp_path, capsys):
    root = toycourse.course_copy(tmp_path / "repo")
    no_bias = toycourse.FORWARD_RIGHT.replace(" + b[f]", "")
    path = toycourse.write_submission(tmp_path / "subs", root, "zoe", "toy",
                                      {"conv_output_size": toycourse.SIZE_RIGHT, "conv_forward_naive": no_bias})
    assert main(["--course", str(root), "validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert "[  ok] test_conv_output_size: 1 of 1 visible cases passed" in out
    assert "[FAIL] test_conv_forward_naive: 0 of 1 visible cases passed" in out
    assert "WRONG" in out and "fix them before you submit" in out
    assert "9137" not in out and "hidden" not in out.lower().replace("more cases run", "")


def test_validate_prints_no_control_character_of_a_students(tmp_path, capsys):
    """An instructor validating a student's notebook: the messages quote what its code raised."""
    root = toycourse.course_copy(tmp_path / "repo")
    raising = ("def conv_forward_naive(x, w, b, conv_param):\n"
               "    raise ValueError('\\x1b[2J\\x1b]0;pwned\\x07\\n[  ok] forged')\n")
    path = toycourse.write_submission(tmp_path / "subs", root, "zoe", "toy", {"conv_forward_naive": raising})
    assert main(["--course", str(root), "validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert "ValueError: \\x1b[2J\\x1b]0;pwned\\x07\\n[  ok] forged" in out
    assert not any(c in out for c in "\x1b\x07") and "\n[  ok] forged" not in out


def test_demo_releases_grades_the_sample_class_and_prints_the_table(tmp_path, fake_engine, capsys):
    root = toycourse.course_copy(tmp_path / "repo")
    toycourse.make_class(root / "examples" / "submissions", root)
    (root / "assignments" / "toy" / "toy.ipynb").unlink()  # demo releases first
    assert main(["--course", str(root), "demo", "--workers", "1", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "1/2 release" in out and "2/2 autograde" in out
    assert re.search(r"alice\s+5/5", out) and re.search(r"carol\s+2/5", out)
    assert (root / "grading-output" / "demo" / "grades.csv").is_file()
    assert len(fake_engine.read_text().splitlines()) == 3


def test_formgrader_api_lists_the_graded_submissions(graded_class):
    """What nbgrader's formgrader shows comes from NbGraderAPI: it must read the grading folder."""
    from autograder import course

    out = graded_class[2]
    api = course.nbgrader_api(course.nbgrader_config(out))
    subs = {s["student"]: s for s in api.get_submissions("toy")}
    assert {s: (v["score"], v["max_score"], v["autograded"]) for s, v in subs.items()} == {
        "alice": (5.0, 5.0, True), "bob": (3.0, 5.0, True), "carol": (2.0, 5.0, True), "dave": (0.0, 5.0, True)}
    assert subs["dave"]["needs_manual_grade"] is True  # failed to grade: listed for a person
    notebooks = {n["student"]: n for n in api.get_notebook_submissions("toy", "toy")}
    assert notebooks["bob"]["score"] == 3.0 and notebooks["alice"]["needs_manual_grade"] is False


def _validated(assignment, tests, flags=()):
    from autograder.results import Flag, NotebookResult, TaskResult

    notebook = NotebookResult("graded", tests=tests, flags=[Flag.from_json(f) for f in flags])
    return TaskResult("you", assignment, "graded", notebooks={f"{assignment}.ipynb": notebook})


def _test(grade_id, points, outcomes, message="", optional=False):
    from autograder.results import CaseResult, TestResult

    cases = [CaseResult("f", False, o, description="x (2, 3)", message="" if o == "passed" else message)
             for o in outcomes]
    return TestResult(grade_id, points, points * outcomes.count("passed") / len(outcomes), cases, optional=optional)


def test_validate_prints_points_per_test_and_marks_optional_parts(capsys):
    from autograder.cli import _print_validation

    root = Path(__file__).resolve().parents[2]
    result = _validated("batchnorm", [
        _test("test_batchnorm_forward", 4, ["passed"] * 4),
        _test("test_batchnorm_backward", 4, ["passed", "passed", "wrong"], "dx: relative error"),
        _test("test_layernorm_forward", 1, ["error", "error"], "layernorm_forward is not implemented yet", True),
    ])
    assert _print_validation(result, root) == 1  # the required backward fails
    out = capsys.readouterr().out
    assert "[  ok] test_batchnorm_forward: 4 of 4 visible cases passed, 4 of 4 points" in out
    assert "[FAIL] test_batchnorm_backward: 2 of 3 visible cases passed, 2.66667 of 4 points" in out
    assert ("[todo] test_layernorm_forward (optional): 0 of 2 visible cases passed, 0 of 1 points: "
            "not done yet (an optional part)") in out
    assert "Visible cases give 6.66667 of 8 points, and 0 of 1 optional points" in out
    # an optional part left undone is no failure
    result = _validated("batchnorm", [_test("test_batchnorm_forward", 4, ["passed"]),
                                      _test("test_layernorm_forward", 1, ["error"], "not implemented yet", True)])
    assert _print_validation(result, root) == 0


def test_validate_says_which_library_uses_are_allowed(capsys):
    from autograder.cli import _print_validation

    root = Path(__file__).resolve().parents[2]
    flags = [{"kind": "library_use", "grade_id": "max_pool_forward_naive", "detail": "uses cs231n_lib.pool_output_size"},
             {"kind": "library_use", "grade_id": "avg_pool_backward_naive", "detail": "uses cs231n_lib.avg_pool_backward"}]
    _print_validation(_validated("pooling", [_test("test_max_pool_forward_naive", 3, ["passed"])], flags), root)
    out = capsys.readouterr().out
    assert "[  ok] max_pool_forward_naive uses cs231n_lib.pool_output_size: allowed (the notebook asks for it)" in out
    assert "[note] library_use in avg_pool_backward_naive: uses cs231n_lib.avg_pool_backward" in out


def test_validate_finds_the_assignment_from_the_notebooks_own_cells(tmp_path):
    import shutil

    from autograder.engine import assignment_of_notebook

    root = Path(__file__).resolve().parents[2]
    copy = tmp_path / "my work (2).ipynb"
    shutil.copyfile(root / "assignments" / "pooling" / "pooling.ipynb", copy)
    names = {"convolution", "im2col", "pooling", "batchnorm", "convnet"}
    assert assignment_of_notebook(copy, root, names) == "pooling"
    (tmp_path / "empty.ipynb").write_text('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    assert assignment_of_notebook(tmp_path / "empty.ipynb", root, names) is None


def test_the_kits_validate_knows_optional_parts_by_metadata_or_comment():
    import nbformat

    from cs231n_checks.validate import is_optional

    root = Path(__file__).resolve().parents[2]
    nb = nbformat.read(str(root / "assignments" / "batchnorm" / "batchnorm.ipynb"), as_version=4)
    optional = {c.metadata["nbgrader"]["grade_id"] for c in nb.cells
                if c.metadata.get("nbgrader", {}).get("grade") and is_optional(c)}
    assert optional == {"test_layernorm_forward", "test_layernorm_backward", "test_spatial_groupnorm_forward",
                        "test_spatial_groupnorm_backward"}
    cell = nbformat.v4.new_code_cell("check('x', cases=[])", metadata={"cs231n": {"optional": True}})
    assert is_optional(cell)


def test_a_notebook_without_metadata_is_still_checked_and_recognised(tmp_path):
    """A VS Code or Colab save has no nbgrader metadata: the kit's validate finds the test cells
    and their points by their check calls and first lines; the assignment is known by its functions."""
    import importlib.util

    import nbformat

    from autograder.engine import assignment_of_notebook
    from cs231n_checks.validate import _grade_cells

    root = Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location("editor_shapes", root / "examples" / "editor_shapes.py")
    shapes = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(shapes)
    names = {"convolution", "im2col", "pooling", "batchnorm", "convnet"}
    for name in sorted(names):
        released = nbformat.read(str(root / "assignments" / name / f"{name}.ipynb"), as_version=4)
        bare = shapes.vscode(released)
        with_metadata = [(i, m["grade_id"], float(m.get("points", 0))) for i, _, m in _grade_cells(released)]
        without = [(i, m["grade_id"], m["points"]) for i, _, m in _grade_cells(bare)]
        assert [(i, p) for i, _, p in without] == [(i, p) for i, _, p in with_metadata], name
        # named as the grader names them, where the first line says the function alone
        assert sum(a == b for (_, a, _), (_, b, _) in zip(without, with_metadata)) >= len(without) - 1, name
        path = tmp_path / "untitled.ipynb"
        nbformat.write(bare, str(path))
        assert assignment_of_notebook(path, root, names) == name
