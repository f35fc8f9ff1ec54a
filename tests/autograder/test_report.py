"""The class report and the printed summary, on hand-made results."""

import base64
import re
from pathlib import Path

from autograder import batch, report
from autograder.results import TaskResult


def _case(outcome, message="", seconds=0.01, hidden=False):
    return {"check": "f", "hidden": hidden, "description": "x (2, 3)", "outcome": outcome, "message": message,
            "hints": [], "seconds": seconds}


def _result(student, score, cases_a, cases_b, cell_seconds=0.1, flags=()):
    tests = [{"grade_id": "test_a", "points": 2.0, "score": 2.0 * cases_a.count("passed") / len(cases_a),
              "cases": [_case(o, f"out: relative error {i}.5e-03 > 1e-08" if o == "wrong" else "")
                        for i, o in enumerate(cases_a)]},
             {"grade_id": "test_b", "points": 3.0, "score": 3.0 * cases_b.count("passed") / len(cases_b),
              "cases": [_case(o, "stopped after 10 s" if o == "timeout" else "") for o in cases_b]}]
    nb = {"status": "graded", "message": "", "score": score, "max_score": 5.0, "tests": tests,
          "cells": [{"index": 3, "grade_id": "a", "seconds": cell_seconds, "status": "ok"}],
          "solution_sources": {}, "flags": list(flags), "executed_notebook": None}
    return TaskResult.from_json({"student": student, "assignment": "hw", "status": "graded", "error": None,
                                 "score": score, "max_score": 5.0, "notebooks": {"hw.ipynb": nb}, "timings": {}})


def _outcome(tmp_path):
    results = [
        _result("amy", 5.0, ["passed", "passed"], ["passed"], cell_seconds=0.2),
        _result("<script>alert(1)</script>", 2.0, ["passed", "wrong"], ["timeout"], cell_seconds=12.5),
        _result("cy", 1.0, ["wrong", "wrong"], ["passed"], flags=[{"kind": "delegation", "grade_id": "b",
                                                                     "detail": "uses lib.b"}]),
        batch.failed_result("dee", "hw", "nothing to grade: the submission is empty"),
    ]
    collection = batch.Collection([], sorted(r.student for r in results) + ["eli"], [("junk.txt", "not a folder")])
    outcome = batch.RunOutcome(Path(tmp_path), collection, results, ["k"] * 4, graded_now=3, from_cache=1,
                               seconds=12.0, workers=2)
    outcome.flags_by_task = {("cy", "hw"): ["hw.ipynb: delegation in b: uses lib.b"],
                             ("amy", "hw"): [], ("dee", "hw"): []}
    return outcome


def test_statistics_per_test_and_failures(tmp_path):
    outcome = _outcome(tmp_path)
    stats = report.test_stats(outcome.results)
    assert stats[("hw", "test_a")]["outcomes"] == {"passed": 3, "wrong": 3}
    assert stats[("hw", "test_b")]["outcomes"] == {"passed": 2, "timeout": 1}
    assert stats[("hw", "test_a")]["scores"] == [2.0, 1.0, 0.0]
    common = report.common_failures(outcome.results)
    # numbers are blurred so that the same mistake groups: three wrong cases, one pattern
    assert common[0] == (("wrong", "test_a", "out: relative error # > #"), 3)
    assert common[1] == (("timeout", "test_b", "stopped after # s"), 1)
    slow = report.slowest_cells(outcome.results)
    assert slow[0][:2] == (12.5, "<script>alert(1)</script>") and len(slow) == 3


def test_report_html_embeds_plots_and_escapes_student_text(tmp_path):
    outcome = _outcome(tmp_path)
    path = report.write_report(outcome, tmp_path / "report.html")
    page = path.read_text()
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    images = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)
    assert len(images) == 2 and all(base64.b64decode(i)[:8] == b"\x89PNG\r\n\x1a\n" for i in images)
    for text in ("Pass rates per test", "Most common failures", "Slowest cells", "Flagged for review",
                 "Failed to grade", "nothing to grade: the submission is empty", "uses lib.b", "junk.txt"):
        assert text in page, text
    assert "3 graded, 1 failed to grade, 1 flagged for review" in page


def test_summary_lists_what_a_person_must_do(tmp_path):
    text = report.summary(_outcome(tmp_path))
    assert text.startswith("Graded 3 of 4 submissions from 5 students in 12.0 s "
                           "(3 graded now on 2 workers, 1 unchanged from the cache).")
    assert re.search(r"^amy\s+5/5$", text, re.M)
    assert re.search(r"^dee\s+FAILED$", text, re.M)
    assert re.search(r"^cy\s+1/5\s+1$", text, re.M)
    assert "FAILED TO GRADE (1)" in text and "dee / hw: nothing to grade: the submission is empty" in text
    assert "FLAGGED FOR REVIEW (1)" in text and "hw.ipynb: delegation in b: uses lib.b" in text
    assert "Students with nothing to grade: eli" in text
    assert "junk.txt: not a folder" in text
    assert "WEAKER SANDBOX" not in text  # these results carry no protection notes


def test_summary_says_when_the_sandbox_was_weaker(tmp_path):
    outcome = _outcome(tmp_path)
    note = "not root: kernels run as the grader's user, can read what it can read"
    for r in outcome.results[:2]:
        r.protections = {"notes": [note], "applied": {"errors": []}}
    outcome.results[2].protections = {"notes": [], "applied": {"errors": ["network namespace: EPERM"]}}
    text = report.summary(outcome)
    section = text.split("WEAKER SANDBOX: some protections were not available on this host:\n", 1)[1]
    assert section.split("\n\n")[0].splitlines() == [f"  {note}", "  network namespace: EPERM"]


def test_the_report_counts_named_mistakes_per_test(tmp_path):
    """Each student counts once per test and mistake, however many cases named it; hints that
    are not a catalogued mistake (where the differences sit) are not counted."""
    from autograder.checks import pooling

    def named(student, hints_per_case):
        r = _result(student, 0.0, ["wrong"] * len(hints_per_case), ["passed"])
        for case, hints in zip(r.notebooks["hw.ipynb"].tests[0].cases, hints_per_case):
            case.check, case.hints = "max_pool_backward_naive", hints
        return r

    structural = "only some channels (axis 1) are wrong, the others are right"
    results = [named("amy", [[pooling.ASSIGN_OVERLAP], [pooling.ASSIGN_OVERLAP]]),
               named("bo", [[pooling.ASSIGN_OVERLAP], [structural]]),
               named("cy", [[pooling.TIES_TO_ALL], []]),
               batch.failed_result("dee", "hw", "nothing to grade")]
    assert report.diagnosed_mistakes(results) == [
        (("hw", "test_a", "max_pool_backward_naive", pooling.ASSIGN_OVERLAP), 2),
        (("hw", "test_a", "max_pool_backward_naive", pooling.TIES_TO_ALL), 1)]
    outcome = _outcome(tmp_path)
    outcome.results = results
    page = report.write_report(outcome, tmp_path / "report.html").read_text()
    assert "Mistakes the feedback named" in page and "<td>2</td><td>hw</td><td>test_a</td>" in page


def test_extra_credit_is_said_counted_apart_and_plotted_past_the_maximum(tmp_path):
    """Optional parts: the summary and the report say a score can exceed the maximum; full marks
    count the required points only; a student who lost required points but earned extra credit
    is counted among those who earned some; the histogram's axis reaches every score."""
    from autograder.results import TestResult

    outcome = _outcome(tmp_path)
    earned = {"amy": 1.5, "<script>alert(1)</script>": 1.0, "cy": 0.0}
    for r in outcome.results:
        if r.graded:
            r.optional_points = r.notebooks["hw.ipynb"].optional_points = 2.0
            r.notebooks["hw.ipynb"].tests.append(TestResult("test_opt", 2.0, earned[r.student], optional=True))
            r.score += earned[r.student]
    text = report.summary(outcome)
    assert "Optional parts (hw) are extra credit: a score can exceed its maximum." in text
    assert "6.5/5" in text and "3/5" in text
    html = report.write_report(outcome, tmp_path / "report.html").read_text()
    # amy has every required point (5 of 5); the second student is at 2 of 5 with 1 of extra credit
    assert "full marks: 1. Optional parts are extra credit: up to 2 points on top of the 5, some earned by 2." in html
    assert report._histogram_top([6.5, 3.0, 1.0], 5.0, 2.0) == 7.0
    assert report._histogram_top([8.0, 1.0], 5.0, 2.0) == 8.0  # a score past every stated bound stays on the plot
    assert report._histogram_top([], 0.0) == 1


def test_code_that_only_lost_its_metadata_makes_one_line_per_notebook(tmp_path):
    from autograder.matching import metadata_lost_line

    vscode = _result("vee", 5.0, ["passed"], ["passed"])
    vscode.notebooks["hw.ipynb"].found = [metadata_lost_line("f", 2), metadata_lost_line("g", 4),
                                          "the answer 'q_a' found in cell 7, after its question: graded"]
    moved = _result("mo", 5.0, ["passed"], ["passed"])
    moved.notebooks["hw.ipynb"].found = [metadata_lost_line("f", 2), "g found in cell 9, not in its own cell: graded"]
    assert report.found_elsewhere([vscode, moved]) == {
        ("mo", "hw"): ["hw.ipynb: f in its own cell, which lost the nbgrader metadata (saved by another editor?): graded",
                       "hw.ipynb: g found in cell 9, not in its own cell: graded"],
        ("vee", "hw"): ["hw.ipynb: f, g in their own cells, which lost the nbgrader metadata (saved by another "
                        "editor?): graded",
                        "hw.ipynb: the answer 'q_a' found in cell 7, after its question: graded"]}
