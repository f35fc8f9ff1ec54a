"""Collecting submissions (folders, loose notebooks, zips), the result cache, resuming after
SIGKILL, and a worker process dying mid-task."""

import csv
import json
import io
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

import toycourse
from autograder import batch, gradebook, submissions
from autograder.results import TaskResult

FAKE = str(Path(__file__).with_name("fake_engine.py")) + ":grade"


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return toycourse.course_copy(tmp_path_factory.mktemp("batch") / "repo", assignments=("toy", "extra"))


def _nb_bytes(root, assignment="toy", sources=None):
    import nbformat

    return nbformat.writes(toycourse.student_notebook(root, assignment, sources or toycourse.CLASS["alice"])).encode()


def _zip(path, members):
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)


# ------------------------------------------------------------------------------------------
# Collecting


def test_folder_loose_and_zip_layouts_give_the_same_submission(tmp_path, root):
    subs = tmp_path / "subs"
    data = _nb_bytes(root)
    (subs / "ann" / "toy").mkdir(parents=True)
    (subs / "ann" / "toy" / "toy.ipynb").write_bytes(data)
    (subs / "ann" / "toy" / "timestamp.txt").write_text("2026-11-01 09:30:00 UTC")
    (subs / "ben").mkdir()
    (subs / "ben" / "toy.ipynb").write_bytes(data)  # no assignment folder: matched by name
    _zip(subs / "cat.zip", {"toy/toy.ipynb": data, "toy/helper.py": b"x = 1\n"})
    _zip(subs / "dan.zip", {"dan/toy.ipynb": data})  # one wrapping folder, loose notebook inside
    _zip(subs / "eve.zip", {"toy.ipynb": data, "extra/extra.ipynb": _nb_bytes(root, "extra", {})})
    got = batch.collect_submissions(subs, root)
    table = [(s.student, s.assignment, sorted(s.files), s.timestamp) for s in got.submissions]
    assert table == [
        ("ann", "toy", ["toy.ipynb"], "2026-11-01 09:30:00 UTC"),
        ("ben", "toy", ["toy.ipynb"], None),
        ("cat", "toy", ["helper.py", "toy.ipynb"], None),
        ("dan", "toy", ["toy.ipynb"], None),
        ("eve", "extra", ["extra.ipynb"], None),
        ("eve", "toy", ["toy.ipynb"], None),
    ]
    assert all(s.files["toy.ipynb"] == data for s in got.submissions if s.assignment == "toy")
    assert got.students == ["ann", "ben", "cat", "dan", "eve"] and got.skipped == []


def test_zip_slip_names_and_bombs_are_refused(tmp_path, root, monkeypatch):
    monkeypatch.setattr(submissions, "MAX_FILE_BYTES", 1000)
    subs = tmp_path / "subs"
    subs.mkdir()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("toy/toy.ipynb", b"{}")
        zf.writestr("../../evil.py", b"print('escaped')")
        zf.writestr("/etc/passwd", b"root")
        zf.writestr("toy/../../../up.py", b"x")
        zf.writestr("toy/bomb.bin", b"\0" * 100_000)  # compresses to ~100 bytes
    (subs / "mal.zip").write_bytes(buffer.getvalue())
    got = batch.collect_submissions(subs, root)
    [sub] = got.submissions
    assert sorted(sub.files) == ["toy.ipynb"]
    notes = " | ".join(sub.notes)
    assert notes.count("refused, the name points outside the archive") == 3
    assert "bomb.bin: skipped" in notes
    assert not (tmp_path / "evil.py").exists() and not (subs.parent.parent / "evil.py").exists()


def test_a_zip_of_a_hundred_thousand_files_makes_a_few_notes(tmp_path, root):
    """Every file past the caps was a note, in the summary's flags, grades.csv and the report: a
    zip of 300,000 empty files made 13 MB of each."""
    subs = tmp_path / "subs"
    subs.mkdir()
    with zipfile.ZipFile(subs / "many.zip", "w") as zf:
        zf.writestr("toy/toy.ipynb", _nb_bytes(root))
        for i in range(100_000):
            zf.writestr(f"toy/f{i}", b"")
            zf.writestr(f"../out{i}", b"")
    [sub] = batch.collect_submissions(subs, root).submissions
    assert "toy.ipynb" in sub.files and len(sub.files) == submissions.MAX_FILES
    assert len(sub.notes) == submissions.MAX_NOTES + 1
    assert sub.notes[0] == "../out0: refused, the name points outside the archive"
    assert sub.notes[-1] == f"... and {200_000 - submissions.MAX_FILES + 1 - submissions.MAX_NOTES} more files skipped or unreadable"


def test_odd_entries_are_reported_not_fatal(tmp_path, root):
    subs = tmp_path / "subs"
    (subs / "émile_ß").mkdir(parents=True)  # non-ASCII ids are fine
    (subs / "émile_ß" / "toy.ipynb").write_bytes(_nb_bytes(root))
    (subs / "empty" / "toy").mkdir(parents=True)  # an empty assignment folder: graded as missing work
    (subs / "nothing").mkdir()
    (subs / "notes.txt").write_text("hello")
    (subs / "broken.zip").write_bytes(b"PK not really")
    (subs / "lnk").mkdir()
    (subs / "lnk" / "toy").symlink_to(root / "solutions" / "toy")  # would expose the solutions
    (subs / "st*r").mkdir()  # nbgrader would read it as a pattern matching other students
    (subs / "st*r" / "toy.ipynb").write_bytes(_nb_bytes(root))
    (subs / "ren").mkdir()
    (subs / "ren" / "my_toy_final.ipynb").write_bytes(_nb_bytes(root))
    got = batch.collect_submissions(subs, root)
    assert [(s.student, s.assignment, sorted(s.files)) for s in got.submissions] == [
        ("empty", "toy", []), ("émile_ß", "toy", ["toy.ipynb"])]
    skipped = dict(got.skipped)
    assert "neither a student folder nor a .zip" in skipped["notes.txt"]
    assert "not a readable zip" in skipped["broken.zip"]
    assert "not named like an assignment notebook" in skipped["ren/my_toy_final.ipynb"]
    assert "symbolic links are not followed" in skipped["lnk"]
    assert skipped["st*r"] == "not usable as a student id"
    assert got.students == ["broken", "empty", "lnk", "nothing", "ren", "émile_ß"]


# ------------------------------------------------------------------------------------------
# Cache and resume


def _grade(subs, out, root, **kw):
    kw.setdefault("workers", 0)
    kw.setdefault("engine", FAKE)
    return batch.autograde(subs, out, course_root=root, progress=False, **kw)


def _gradebook_state(out):
    with gradebook.open_gradebook(out) as gb:
        state = []
        for assignment in gb.assignments:
            for sub in assignment.submissions:
                for nb in sub.notebooks:
                    for g in nb.grades:
                        state.append((sub.student.id, assignment.name, nb.name, g.name, g.auto_score,
                                      g.needs_manual_grade))
        return sorted(state)


def _class(subs, root, names, sources=None):
    for name in names:
        toycourse.write_submission(subs, root, name, "toy", sources or toycourse.CLASS["alice"])


def test_rerun_grades_only_new_and_changed_submissions(tmp_path, root, monkeypatch):
    log = tmp_path / "calls.log"
    monkeypatch.setenv("FAKE_ENGINE_LOG", str(log))
    subs, out = tmp_path / "subs", tmp_path / "out"
    _class(subs, root, [f"s{i:02d}" for i in range(6)])
    first = _grade(subs, out, root)
    assert (first.graded_now, first.from_cache) == (6, 0)
    state = _gradebook_state(out)
    again = _grade(subs, out, root)
    assert (again.graded_now, again.from_cache) == (0, 6) and _gradebook_state(out) == state
    _class(subs, root, [f"new{i}" for i in range(5)])
    toycourse.write_submission(subs, root, "s03", "toy", toycourse.CLASS["bob"])
    third = _grade(subs, out, root)
    assert (third.graded_now, third.from_cache) == (6, 5)
    calls = log.read_text().splitlines()
    assert len(calls) == 6 + 6 and sorted(calls[6:]) == sorted([f"new{i}\ttoy" for i in range(5)] + ["s03\ttoy"])
    scores = {r["student"]: float(r["score"]) for r in csv.DictReader(open(out / "grades.csv"))}
    assert scores["s03"] == 3.0 and scores["new4"] == 5.0 and len(scores) == 11


def test_results_graded_in_a_weaker_sandbox_are_graded_again_on_a_host_that_protects_more(tmp_path, root, monkeypatch):
    log = tmp_path / "calls.log"
    monkeypatch.setenv("FAKE_ENGINE_LOG", str(log))
    subs, out = tmp_path / "subs", tmp_path / "out"
    names = ["full", "no_namespace", "as_root"]
    _class(subs, root, names)
    _grade(subs, out, root)
    applied = {"full": {"mount_namespace": True, "uid": 54321},
               "no_namespace": {"mount_namespace": False, "uid": 54321},
               "as_root": {"mount_namespace": True, "uid": 0}}
    for path in (out / ".cache").glob("*.json"):
        result = json.loads(path.read_text())
        if result.get("student") in applied:  # as the real engine records what the sandbox applied
            result["protections"] = {"applied": applied[result["student"]]}
            path.write_text(json.dumps(result))
    monkeypatch.setattr(batch, "_host_protections", lambda: {"mount_namespace": True, "unprivileged_user": True})
    again = _grade(subs, out, root)
    assert (again.graded_now, again.from_cache) == (2, 1)
    assert sorted(log.read_text().splitlines()[3:]) == ["as_root\ttoy", "no_namespace\ttoy"]
    # a host without those protections reuses what it has
    cached = TaskResult("as_root", "toy", "graded", protections={"applied": applied["as_root"]})
    assert batch.graded_in_a_weaker_sandbox(cached, {"mount_namespace": False, "unprivileged_user": False}) is False


def test_a_worker_that_dies_costs_only_its_own_submission(tmp_path, root, monkeypatch):
    log = tmp_path / "calls.log"
    monkeypatch.setenv("FAKE_ENGINE_LOG", str(log))
    subs, out = tmp_path / "subs", tmp_path / "out"
    _class(subs, root, ["a", "b", "c"])
    toycourse.write_submission(subs, root, "dies", "toy", {"conv_output_size": "# FAKE_DIE\n"})
    outcome = _grade(subs, out, root, workers=2)
    status = {r.student: (r.status, r.score) for r in outcome.results}
    assert status["dies"][0] == "failed" and "died" in outcome.results[3].error
    assert {s: v for s, v in status.items() if s != "dies"} == {s: ("graded", 5.0) for s in "abc"}
    assert log.read_text().splitlines().count("dies\ttoy") == 2  # tried, then retried once


MALFORMED_ENGINE = f"""
import sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
import fake_engine

def grade(task):
    result = fake_engine.grade(task)
    if task["student"] == "odd":
        result["score"] = "five"
    return result
"""


def test_a_custom_engines_malformed_result_costs_only_its_own_task(tmp_path, root, monkeypatch):
    log = tmp_path / "calls.log"
    monkeypatch.setenv("FAKE_ENGINE_LOG", str(log))
    engine = tmp_path / "malformed_engine.py"
    engine.write_text(MALFORMED_ENGINE)
    subs, out = tmp_path / "subs", tmp_path / "out"
    _class(subs, root, ["a", "odd", "z"])
    outcome = _grade(subs, out, root, engine=f"{engine}:grade")
    status = {r.student: (r.status, r.score) for r in outcome.results}
    assert status == {"a": ("graded", 5.0), "odd": ("failed", 0.0), "z": ("graded", 5.0)}
    odd = outcome.results[1]
    assert odd.infrastructure and odd.error == (
        f"grader error: {engine}:grade returned a malformed result: result.score: expected a number, "
        f"found 'five' (str)")
    assert log.read_text().splitlines().count("odd\ttoy") == 2  # tried, then retried once
    again = _grade(subs, out, root, engine=f"{engine}:grade")  # never cached: graded again
    assert (again.graded_now, again.from_cache) == (1, 2)


def _cli(subs, out, root, env):
    return subprocess.Popen([sys.executable, "-m", "autograder.cli", "--course", str(root), "autograde", str(subs),
                             "--out", str(out), "--workers", "2", "--quiet", "--no-feedback"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


@pytest.mark.slow
def test_sigkill_at_any_moment_then_rerun_equals_an_uninterrupted_run(tmp_path, root, monkeypatch):
    subs = tmp_path / "subs"
    names = [f"k{i}" for i in range(6)]
    for i, name in enumerate(names):
        sources = dict(toycourse.CLASS["alice" if i % 3 else "bob"])
        sources["conv_forward_naive"] += "# FAKE_SLEEP=0.7\n"
        toycourse.write_submission(subs, root, name, "toy", sources)
    log = tmp_path / "calls.log"
    monkeypatch.setenv("FAKE_ENGINE_LOG", str(log))
    reference = tmp_path / "reference"
    _grade(subs, reference, root, feedback=False)  # uninterrupted, in this process

    out = tmp_path / "killed"
    env = dict(os.environ, CS231N_GRADE_ENGINE=FAKE, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    proc = _cli(subs, out, root, env)
    results = lambda: [p for p in (out / ".cache").glob("*.json") if not p.name.startswith("source-")]  # noqa: E731
    deadline = time.time() + 120
    while time.time() < deadline and len(results()) < 2 and proc.poll() is None:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # the coordinator and its workers, mid-run
    proc.wait()
    done_before = len(results())
    assert 0 < done_before < len(names), "the kill did not land mid-run"
    calls_before = len(log.read_text().splitlines())
    _grade(subs, out, root, feedback=False)  # run again: resumes
    assert _gradebook_state(out) == _gradebook_state(reference)
    assert (out / "grades.csv").read_text() == (reference / "grades.csv").read_text()
    regraded = len(log.read_text().splitlines()) - calls_before
    assert regraded == len(names) - done_before  # finished work was not graded again


@pytest.mark.slow
def test_sigkill_while_feedback_is_written_then_rerun_equals_an_uninterrupted_run(tmp_path, root, monkeypatch):
    """A later moment than the test above: every grade is in, the gradebook and feedback are being written."""
    subs = tmp_path / "subs"
    names = [f"f{i}" for i in range(6)]
    for i, name in enumerate(names):
        toycourse.write_submission(subs, root, name, "toy", dict(toycourse.CLASS["alice" if i % 2 else "bob"]))
    monkeypatch.setenv("FAKE_ENGINE_LOG", str(tmp_path / "calls.log"))
    reference = tmp_path / "reference"
    _grade(subs, reference, root)  # uninterrupted, feedback included

    out = tmp_path / "killed"
    env = dict(os.environ, CS231N_GRADE_ENGINE=FAKE, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    proc = subprocess.Popen([sys.executable, "-m", "autograder.cli", "--course", str(root), "autograde", str(subs),
                             "--out", str(out), "--workers", "2", "--quiet"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    pages = lambda: list((out / "feedback").rglob("*.html"))  # noqa: E731
    deadline = time.time() + 180
    while time.time() < deadline and not pages() and proc.poll() is None:
        time.sleep(0.01)
    running = proc.poll() is None
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert running and 0 < len(pages()) < len(names), "the kill did not land while feedback was written"
    _grade(subs, out, root)  # run again: resumes
    assert _gradebook_state(out) == _gradebook_state(reference)
    assert (out / "grades.csv").read_text() == (reference / "grades.csv").read_text()
    relative = lambda d: sorted(p.relative_to(d) for p in (d / "feedback").rglob("*.html"))  # noqa: E731
    assert relative(out) == relative(reference) and len(relative(out)) == len(names)


def test_a_failed_regrade_removes_the_old_score_feedback_and_graded_notebook(tmp_path, root):
    subs, out = tmp_path / "subs", tmp_path / "out"
    _class(subs, root, ["amy", "bo"])
    first = _grade(subs, out, root)
    assert [r.score for r in first.results] == [5.0, 5.0]
    assert (out / "feedback" / "amy" / "toy" / "toy.html").exists()
    broken = dict(toycourse.CLASS["alice"], conv_output_size=toycourse.SIZE_RIGHT + "# FAKE_RAISE\n")
    toycourse.write_submission(subs, root, "amy", "toy", broken)
    second = _grade(subs, out, root)
    amy = next(r for r in second.results if r.student == "amy")
    assert amy.status == "failed" and "fake engine asked to raise" in amy.error
    state = {(s, g): (score, manual) for s, _, _, g, score, manual in _gradebook_state(out)}
    assert state[("amy", "test_conv_output_size")] == (0.0, True)
    assert state[("bo", "test_conv_output_size")] == (2.0, False)
    # the old page is replaced by one saying why there is no grade (a grader fault: no detail)
    [page] = sorted((out / "feedback" / "amy" / "toy").iterdir())
    text = page.read_text()
    assert page.name == "toy.html" and "could not be graded" in text and "problem of its own" in text
    assert "fake engine asked to raise" not in text and "test_conv_output_size" not in text
    assert not (out / "autograded" / "amy" / "toy").exists()
    rows = {r["student"]: r for r in csv.DictReader(open(out / "grades.csv"))}
    assert (rows["amy"]["status"], rows["amy"]["score"]) == ("failed", "0")
    # the failure was not cached: fixing nothing and running again tries once more
    third = _grade(subs, out, root)
    assert third.graded_now == 1 and third.from_cache == 1
    # once it grades, nbgrader's page is back
    toycourse.write_submission(subs, root, "amy", "toy", toycourse.CLASS["alice"])
    _grade(subs, out, root)
    text = (out / "feedback" / "amy" / "toy" / "toy.html").read_text()
    assert "could not be graded" not in text and "test_conv_output_size" in text


# ------------------------------------------------------------------------------------------
# The task key: limits and calibration


def test_the_task_key_covers_the_limits_and_the_calibration(root):
    sub = batch.Submission("ann", "toy", {"toy.ipynb": b"{}"}, "ann/toy")
    cal = {"key": "k1", "cases": {"toy.ipynb/test_a/1": {"seconds": 0.01, "timeout": 10.0}},
           "cells": {"toy.ipynb/3": {"seconds": 0.2, "timeout": 30.0}}, "score": 5.0, "max_score": 5.0}
    base = batch.task_key("v", "d", sub)
    # no limits, no overrides and the defaults spelled out are the same limits
    assert batch.task_key("v", "d", sub, {}) == batch.task_key("v", "d", sub, {"case_timeout_floor": 10.0}) == base
    assert batch.task_key("v", "d", sub, {"case_timeout_floor": 5.0}) != base
    assert batch.task_key("v", "d", sub, {"memory_mb": 2048}) != base
    assert batch.task_key("v", "d", sub, None, cal) != base
    slower = {**cal, "cases": {"toy.ipynb/test_a/1": {"seconds": 0.02, "timeout": 12.0}}}
    assert batch.task_key("v", "d", sub, None, slower) != batch.task_key("v", "d", sub, None, cal)
    # what does not change a time limit (the measured seconds, the solutions' timings) does not count
    same = {**cal, "cells": {"toy.ipynb/3": {"seconds": 0.3, "timeout": 30.0}}, "timings": {"total": 9}}
    assert batch.task_key("v", "d", sub, None, same) == batch.task_key("v", "d", sub, None, cal)
    assert batch.task_key("v", "d", sub, None, {**cal, "key": "k2"}) != batch.task_key("v", "d", sub, None, cal)


def test_results_graded_under_other_limits_or_time_limits_are_graded_again(tmp_path, root, monkeypatch):
    log = tmp_path / "calls.log"
    monkeypatch.setenv("FAKE_ENGINE_LOG", str(log))
    subs, out = tmp_path / "subs", tmp_path / "out"
    _class(subs, root, ["a", "b"])
    calls = lambda: len(log.read_text().splitlines())  # noqa: E731
    first = _grade(subs, out, root)
    assert (first.graded_now, calls()) == (2, 2)
    assert _grade(subs, out, root).from_cache == 2
    tighter = _grade(subs, out, root, limits={"case_timeout_floor": 2.0})
    assert (tighter.graded_now, tighter.from_cache, calls()) == (2, 0, 4)
    assert _grade(subs, out, root, limits={"case_timeout_floor": 2.0}).from_cache == 2
    # a new calibration (other measured time limits) re-grades the assignment once
    cal = {"key": "k", "cases": {"toy.ipynb/test_conv_output_size/1": {"seconds": 0.01, "timeout": 10.0}},
           "cells": {}, "score": 5.0, "max_score": 5.0}
    monkeypatch.setattr(batch, "_calibration", lambda *a, **k: cal)
    calibrated = _grade(subs, out, root)
    assert (calibrated.graded_now, calls()) == (2, 6)
    assert _grade(subs, out, root).from_cache == 2
    cal = {**cal, "cases": {"toy.ipynb/test_conv_output_size/1": {"seconds": 0.05, "timeout": 11.0}}}
    assert _grade(subs, out, root).graded_now == 2 and calls() == 8


REAL_ENGINE = "from autograder.engine import grade_submission\n\ndef grade(task):\n    return grade_submission(task)\n"


def test_a_submission_that_cannot_be_graded_gets_a_page_saying_why(tmp_path, root, monkeypatch):
    import nbformat

    from autograder import feedback

    engine = tmp_path / "real_engine.py"
    engine.write_text(REAL_ENGINE)  # the real engine, without calibration: these fail before any kernel
    subs, out = tmp_path / "subs", tmp_path / "out"
    (subs / "mal" / "toy" / "v<script>x").mkdir(parents=True)
    (subs / "mal" / "toy" / "v<script>x" / "toy.ipynb").write_bytes(b'{"cells": [<script>alert(1)</script>')
    (subs / "empty" / "toy").mkdir(parents=True)
    (subs / "nonb" / "toy").mkdir(parents=True)
    (subs / "nonb" / "toy" / "helper.py").write_text("x = 1\n")
    (subs / "huge" / "toy").mkdir(parents=True)
    # over the (lowered) file cap even without outputs: skipped, its size named
    big = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("#" * 3000)])
    (subs / "huge" / "toy" / "toy.ipynb").write_text(nbformat.writes(big))
    monkeypatch.setattr(submissions, "MAX_FILE_BYTES", 2000)
    outcome = _grade(subs, out, root, engine=f"{engine}:grade")
    assert {r.student: r.status for r in outcome.results} == {s: "failed" for s in ("empty", "huge", "mal", "nonb")}
    pages = {p.relative_to(out / "feedback").as_posix(): p.read_text() for p in (out / "feedback").rglob("*.html")}
    assert sorted(pages) == [f"{s}/toy/toy.html" for s in ("empty", "huge", "mal", "nonb")]
    assert "not valid JSON" in pages["mal/toy/toy.html"] and "v&lt;script&gt;x/toy.ipynb" in pages["mal/toy/toy.html"]
    assert "the submission is empty" in pages["empty/toy/toy.html"]
    assert "toy.ipynb was not in the submission" in pages["nonb/toy/toy.html"]
    assert "toy.ipynb: skipped" in pages["huge/toy/toy.html"] and "file cap" in pages["huge/toy/toy.html"]
    source = root / "solutions" / "toy" / "toy.ipynb"
    for name, text in pages.items():
        assert "could not be graded" in text and "0</b> of 5 points" in text, name
        assert "<script" not in text.lower(), name
        assert feedback.leaks(text, source) == [] and "4242" not in text and "9137" not in text, name
        assert "BEGIN HIDDEN" not in text and "conv_forward(" not in text, name
    assert outcome.feedback_problems == []


def test_solutions_that_miss_an_optional_point_are_reported():
    """The calibration grades the instructor's solutions: they must earn every point, extra credit
    included (a broken optional part would otherwise go unnoticed, its points being outside the max)."""
    calibrations = {"conv": {"score": 10.0, "max_score": 10.0, "optional_points": 1.0},
                    "pool": {"score": 13.0, "max_score": 13.0, "optional_points": 0.0},
                    "bn": {"score": 21.0, "max_score": 17.0, "optional_points": 4.0},
                    "custom": None}
    assert batch.solutions_short_of_full_marks(calibrations) == [
        "conv: the instructor's own solutions score 10 of 11 points (10 and 1 of extra credit)"]
    assert batch.solutions_short_of_full_marks({"pool": {"score": 12.0, "max_score": 13.0}}) == [
        "pool: the instructor's own solutions score 12 of 13 points (13)"]
