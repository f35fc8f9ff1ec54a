"""Gradebook writing from results (idempotent, no stale scores) and the grades.csv export."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

import fake_engine
import toycourse
from autograder import batch, course, gradebook


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """A toy course, its grading folder (gradebook made by generate_assignment) and fake results."""
    tmp = tmp_path_factory.mktemp("gb")
    root = toycourse.course_copy(tmp / "repo")
    subs = toycourse.make_class(tmp / "subs", root)
    collection = batch.collect_submissions(subs, root)
    results = {s.student: fake_engine.grade({"student": s.student, "assignment": s.assignment, "files": s.files,
                                             "course_root": str(root)}) for s in collection.submissions}
    return root, results


def _fresh_out(tmp_path, root):
    out = tmp_path / "out"
    course.prepare_grading_course(out, root, ["toy"])
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
    assert [results[s]["score"] for s in ("alice", "bob", "carol")] == [5.0, 3.0, 2.0]
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
                             "toy/toy.ipynb", "flags", "error"]
    table = [(r["student"], r["status"], r["score"], r["max_score"], r["toy/toy.ipynb"], r["flags"], r["error"])
             for r in read]
    assert table == [("alice", "graded", "5", "5", "5", "", ""),
                     ("bob", "graded", "3", "5", "3", "near-identical to carol's", ""),
                     ("carol", "graded", "2", "5", "2", "", ""),
                     ("dave", "failed", "0", "", "0", "", "timed out")]
