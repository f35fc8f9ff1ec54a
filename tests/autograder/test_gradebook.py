"""Gradebook writing from results (idempotent, no stale scores) and the grades.csv export."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

import fake_engine
import toycourse
from autograder import batch, gradebook
from autograder.results import TaskResult


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """A toy course, its grading folder (gradebook made by generate_assignment) and fake results."""
    tmp = tmp_path_factory.mktemp("gb")
    root = toycourse.course_copy(tmp / "repo")
    subs = toycourse.make_class(tmp / "subs", root)
    collection = batch.collect_submissions(subs, root)
    results = {s.student: TaskResult.from_json(fake_engine.grade({"student": s.student, "assignment": s.assignment,
                                                                  "files": s.files, "course_root": str(root)}))
               for s in collection.submissions}
    return root, results


def _fresh_out(tmp_path, root):
    out = tmp_path / "out"
    gradebook.prepare_grading_course(out, root, ["toy"])
    return out


def _scores(out):
    with gradebook.open_gradebook(out) as gb:
        rows = {}
        for student in ("alice", "bob", "carol"):
            try:
                sub = gb.find_submission("toy", student)
            except Exception:
                continue
            rows[student] = (sub.score, sub.max_score, sorted((g.name, g.auto_score, g.needs_manual_grade)
                                                            for nb in sub.notebooks for g in nb.grades))
        return rows


def test_results_land_in_the_gradebook_idempotently(tmp_path, graded):
    root, results = graded
    out = _fresh_out(tmp_path, root)
    assert [results[s].score for s in ("alice", "bob", "carol")] == [5.0, 3.0, 2.0]
    with gradebook.open_gradebook(out) as gb:
        for result in results.values():
            gradebook.record_result(gb, result, "2026-11-01 10:00:00 UTC")
    first = _scores(out)
    assert {s: v[0] for s, v in first.items()} == {"alice": 5.0, "bob": 3.0, "carol": 2.0}
    assert first["bob"][2] == [("test_conv_forward_naive", 3.0, False), ("test_conv_output_size", 0.0, False)]
    with gradebook.open_gradebook(out) as gb:
        for result in results.values():
            gradebook.record_result(gb, result, "2026-11-01 10:00:00 UTC")
        assert len(gb.find_assignment("toy").submissions) == 3
    assert _scores(out) == first


def test_failed_regrade_leaves_no_stale_score_for_nbgrader_export(tmp_path, graded):
    root, results = graded
    out = _fresh_out(tmp_path, root)
    with gradebook.open_gradebook(out) as gb:
        gradebook.record_result(gb, results["alice"])
    assert _scores(out)["alice"][0] == 5.0
    failed = batch.failed_result("alice", "toy", "kernel died twice")
    with gradebook.open_gradebook(out) as gb:
        gradebook.record_result(gb, failed)
        sub = gb.find_submission("toy", "alice")
        comments = [c.auto_comment for nb in sub.notebooks for c in nb.comments]
    score, _, grades = _scores(out)["alice"]
    assert score == 0.0 and all(auto == 0.0 and manual for _, auto, manual in grades)
    assert comments and all("Autograding failed: kernel died twice" in c for c in comments)
    env = dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"])
    subprocess.run([str(Path(sys.executable).parent / "nbgrader"), "export", "--to", "export.csv"],
                   cwd=out, env=env, check=True, capture_output=True)
    rows = list(csv.DictReader(open(out / "export.csv")))
    assert [(r["student_id"], float(r["score"]), float(r["max_score"])) for r in rows] == [("alice", 0.0, 5.0)]


def test_grades_csv_has_one_row_per_submission_with_notebook_columns(tmp_path, graded):
    _, results = graded
    failed = batch.failed_result("dave", "toy", "timed out")
    rows = gradebook.write_grades_csv(tmp_path / "grades.csv", list(results.values()) + [failed],
                                      {"toy": ["toy.ipynb"], "other": ["other.ipynb"]},
                                      {("bob", "toy"): ["near-identical to carol's"]})
    read = list(csv.DictReader(open(tmp_path / "grades.csv")))
    assert read == rows
    assert list(read[0]) == ["student", "assignment", "status", "score", "max_score", "other/other.ipynb",
                             "toy/toy.ipynb", "manual_grading", "flags", "error"]
    table = [(r["student"], r["status"], r["score"], r["max_score"], r["toy/toy.ipynb"], r["flags"], r["error"])
             for r in read]
    assert table == [("alice", "graded", "5", "5", "5", "", ""),
                     ("bob", "graded", "3", "5", "3", "near-identical to carol's", ""),
                     ("carol", "graded", "2", "5", "2", "", ""),
                     ("dave", "failed", "0", "", "0", "", "timed out")]


# ------------------------------------------------------------------------------------------
# Manual grades (formgrader overrides) and what an earlier run left in the gradebook


def _set_manual(out, student, grade_name, manual, extra=None):
    """What the formgrader does when a person enters a score."""
    with gradebook.open_gradebook(out) as gb:
        for nb in gb.find_submission("toy", student).notebooks:
            for grade in nb.grades:
                if grade.name == grade_name:
                    grade.manual_score, grade.extra_credit = manual, extra
                    grade.needs_manual_grade = False
        gb.db.commit()


def _manual(out, student):
    with gradebook.open_gradebook(out) as gb:
        sub = gb.find_submission("toy", student)
        return sub.score, sorted((g.name, g.manual_score, g.extra_credit, g.needs_manual_grade)
                                 for nb in sub.notebooks for g in nb.grades)


def test_manual_grades_stay_for_the_same_result_and_go_for_a_new_or_failed_one(tmp_path, graded):
    root, results = graded
    out = _fresh_out(tmp_path, root)
    record = lambda result, key: gradebook.record_result(gb, result, None, key)  # noqa: E731
    with gradebook.open_gradebook(out) as gb:
        record(results["bob"], "k1")
    _set_manual(out, "bob", "test_conv_output_size", 2.0, 0.5)  # bob's 3/5 raised by hand
    assert _manual(out, "bob")[0] == 5.5
    with gradebook.open_gradebook(out) as gb:  # a re-run served from the cache: the same result
        record(results["bob"], "k1")
    assert _manual(out, "bob") == (5.5, [("test_conv_forward_naive", None, None, False),
                                         ("test_conv_output_size", 2.0, 0.5, False)])
    with gradebook.open_gradebook(out) as gb:  # bob sent new files: a person must look again
        record(results["bob"], "k2")
    assert _manual(out, "bob") == (3.0, [("test_conv_forward_naive", None, None, False),
                                         ("test_conv_output_size", None, None, False)])

    _set_manual(out, "bob", "test_conv_output_size", 2.0)
    failed = batch.failed_result("bob", "toy", "nothing to grade: the submission is empty")
    with gradebook.open_gradebook(out) as gb:  # the same submission now fails to grade
        record(failed, "k2")
    assert _manual(out, "bob") == (0.0, [("test_conv_forward_naive", None, None, True),
                                         ("test_conv_output_size", None, None, True)])
    # a person grades the failed submission by hand; re-recording the same failure keeps that
    _set_manual(out, "bob", "test_conv_output_size", 1.0)
    with gradebook.open_gradebook(out) as gb:
        record(failed, "k2")
    assert _manual(out, "bob") == (1.0, [("test_conv_forward_naive", None, None, True),
                                         ("test_conv_output_size", 1.0, None, False)])
    # a result recorded without a key: a failure always clears, a graded one keeps
    with gradebook.open_gradebook(out) as gb:
        gradebook.record_result(gb, failed)
    assert _manual(out, "bob")[0] == 0.0
    env = dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"])
    subprocess.run([str(Path(sys.executable).parent / "nbgrader"), "export", "--to", "export.csv"],
                   cwd=out, env=env, check=True, capture_output=True)
    assert [(r["student_id"], float(r["score"])) for r in csv.DictReader(open(out / "export.csv"))] == [("bob", 0.0)]


FAKE = str(Path(__file__).with_name("fake_engine.py")) + ":grade"


def _autograde(subs, out, root):
    return batch.autograde(subs, out, course_root=root, workers=0, progress=False, engine=FAKE)


def test_a_rerun_keeps_manual_grades_of_unchanged_submissions_only(tmp_path, graded):
    root, _ = graded
    subs, out = tmp_path / "subs", tmp_path / "out"
    toycourse.make_class(subs, root)
    _autograde(subs, out, root)
    for student in ("alice", "bob"):
        _set_manual(out, student, "test_conv_output_size", 2.0, 1.0)  # 2 points and 1 extra by hand
    _autograde(subs, out, root)  # nothing changed: every result comes from the cache
    assert _manual(out, "alice")[0] == 6.0 and _manual(out, "bob")[0] == 6.0
    toycourse.write_submission(subs, root, "bob", "toy", toycourse.CLASS["alice"])  # bob fixed his code
    again = _autograde(subs, out, root)
    assert again.graded_now == 1
    assert _manual(out, "alice")[0] == 6.0
    assert _manual(out, "bob") == (5.0, [("test_conv_forward_naive", None, None, False),
                                         ("test_conv_output_size", None, None, False)])


def test_what_an_earlier_run_left_in_the_gradebook_is_kept_and_reported(tmp_path, graded):
    from autograder import report

    root, _ = graded
    subs, out = tmp_path / "subs", tmp_path / "out"
    toycourse.make_class(subs, root)
    (subs / "dave").mkdir()  # in the folder, nothing gradable
    first = _autograde(subs, out, root)
    assert first.absent_from_run == {"students": [], "assignments": [], "submissions": []}
    assert "NOT IN THIS RUN" not in report.summary(first)
    _set_manual(out, "carol", "test_conv_forward_naive", 1.0)  # 2 + 1 by hand
    import shutil

    shutil.rmtree(subs / "carol")
    shutil.rmtree(subs / "bob" / "toy")  # bob is still in the folder, without his toy submission
    second = _autograde(subs, out, root)
    assert second.absent_from_run == {"students": ["carol"], "assignments": [], "submissions": [("bob", "toy")]}
    text = report.summary(second)
    assert "IN THE GRADEBOOK BUT NOT IN THIS RUN" in text and "kept as they were" in text
    assert "students not in the submissions folder (1): carol" in text
    assert "other submissions not graded in this run (1): bob / toy" in text
    assert "nbgrader db student remove" in text
    assert "carol" in (out / "report.html").read_text()
    # kept: the gradebook (and so nbgrader export) still has carol's grade, grades.csv does not
    assert _manual(out, "carol")[0] == 3.0
    assert [r["student"] for r in csv.DictReader(open(out / "grades.csv"))] == ["alice"]
    env = dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"])
    subprocess.run([str(Path(sys.executable).parent / "nbgrader"), "export", "--to", "export.csv"],
                   cwd=out, env=env, check=True, capture_output=True)
    exported = {r["student_id"]: float(r["score"]) for r in csv.DictReader(open(out / "export.csv"))}
    assert exported == {"alice": 5.0, "bob": 3.0, "carol": 3.0}


def test_optional_parts_are_extra_credit_in_nbgrader_too(tmp_path):
    """The real convolution assignment: its optional test cell has 0 points in the gradebook, so
    nbgrader's maximum is the stated one and the optional point comes on top, as in grades.csv."""
    import csv as csv_module

    import nbformat
    from cs231n_checks.validate import is_optional

    root = Path(__file__).resolve().parents[2]
    out = tmp_path / "out"
    gradebook.prepare_grading_course(out, root, ["convolution"])
    source = nbformat.read(root / "solutions" / "convolution" / "convolution.ipynb", as_version=4)
    cells = [(c.metadata["nbgrader"]["grade_id"], float(c.metadata["nbgrader"]["points"]), is_optional(c))
             for c in source.cells if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")]
    assert [g for g, _, optional in cells if optional] == ["test_conv_forward_dilated"]

    def result(student, did_optional):
        tests = [{"grade_id": g, "points": p, "optional": o, "score": p if (did_optional or not o) else 0.0,
                  "cases": []} for g, p, o in cells]
        nb = {"status": "graded", "message": "", "tests": tests, "answers": [], "flags": [],
              "score": sum(t["score"] for t in tests), "max_score": 10.0, "optional_points": 1.0}
        return TaskResult.from_json({"student": student, "assignment": "convolution", "status": "graded",
                                     "error": None, "score": nb["score"], "max_score": 10.0, "optional_points": 1.0,
                                     "notebooks": {"convolution.ipynb": nb}})

    with gradebook.open_gradebook(out) as gb:
        for student, did in (("did", True), ("skipped", False)):
            gradebook.record_result(gb, result(student, did), key=student)
        cell_points = {c.name: c.max_score for c in gb.find_notebook("convolution", "convolution").grade_cells}
        totals = {s: (gb.find_submission("convolution", s).score, gb.find_submission("convolution", s).max_score)
                  for s in ("did", "skipped")}
    assert cell_points["test_conv_forward_dilated"] == 0.0 and cell_points["test_conv_forward_naive"] == 4.0
    # 10 autograded points and 4 for the written answers (not graded by a person yet: 0 so far)
    assert totals == {"did": (11.0, 14.0), "skipped": (10.0, 14.0)}
    env = dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"])
    subprocess.run([str(Path(sys.executable).parent / "nbgrader"), "export", "--to", "export.csv"],
                   cwd=out, env=env, check=True, capture_output=True)
    with open(out / "export.csv", newline="") as fh:
        exported = {r["student_id"]: (float(r["score"]), float(r["max_score"])) for r in csv_module.DictReader(fh)}
    assert exported == totals

    def optional_grade(gb, student):
        return next(g for nb in gb.find_submission("convolution", student).notebooks for g in nb.grades
                    if g.name == "test_conv_forward_dilated")

    with gradebook.open_gradebook(out) as gb:
        grade = optional_grade(gb, "did")
        assert (grade.auto_score, grade.extra_credit, grade.needs_manual_grade) == (0.0, 1.0, False)
        # a TA presses "full credit" on the 0-point cell: the formgrader's manual score is 0
        grade.manual_score = 0.0
        gb.db.commit()
        gradebook.record_result(gb, result("did", True), key="did")  # the same result again
        assert gb.find_submission("convolution", "did").score == 11.0
        gradebook.record_result(gb, result("did", False), key="did-v2")  # a new result: set again
        assert (optional_grade(gb, "did").extra_credit, gb.find_submission("convolution", "did").score) == (0.0, 10.0)


def test_a_grading_folder_made_before_extra_credit_is_brought_up_to_date(tmp_path):
    """A gradebook from an older grader (optional cells at full points, stamp without a layout)
    gets the optional cells at 0 on the next run although the sources did not change."""
    import json

    root = Path(__file__).resolve().parents[2]
    out = tmp_path / "out"
    gradebook.prepare_grading_course(out, root, ["convolution"])
    stamp = out / ".cache" / "source-convolution.json"
    stamp.write_text(json.dumps({"digest": json.loads(stamp.read_text())["digest"]}))  # the old stamp
    with gradebook.open_gradebook(out) as gb:
        gb.update_or_create_grade_cell("test_conv_forward_dilated", "convolution", "convolution", max_score=1.0)
    gradebook.prepare_grading_course(out, root, ["convolution"])
    with gradebook.open_gradebook(out) as gb:
        assert gb.find_grade_cell("test_conv_forward_dilated", "convolution", "convolution").max_score == 0.0
