"""The typed result model (``autograder.results``): JSON round-trips, the JSON shape the cache has
always held, what a custom engine may leave out, and the errors a malformed result gives."""

import json

import nbformat
import pytest
from autograder_testkit import FORWARD_NO_BIAS, SIZE_RIGHT, submission
from hypothesis import given, settings
from hypothesis import strategies as st

import fake_engine
import toycourse
from autograder import engine
from autograder.results import (
    NOTEBOOK_STATUSES, OUTCOMES, TASK_STATUSES, CaseResult, CellRecord, Flag, ManualGrading, NotebookResult,
    ResultFormatError, TaskResult, TestResult, Timings, WrittenAnswer,
)
from autograder.sandbox import Limits

# ------------------------------------------------------------------------------------------
# Generated results

text = st.text(max_size=12)
numbers = st.floats(min_value=0, max_value=1e6, allow_nan=False)
maybe_text = st.none() | text
cases = st.builds(CaseResult, check=text, hidden=st.booleans(), outcome=st.sampled_from(OUTCOMES),
                  description=text, limited=st.booleans(), message=text, hints=st.lists(text, max_size=3),
                  seconds=numbers)
tests = st.builds(TestResult, grade_id=text, points=numbers, score=numbers, cases=st.lists(cases, max_size=3),
                  optional=st.booleans())
cells = st.builds(CellRecord, index=st.integers(0, 200), status=text, grade_id=maybe_text,
                  kind=st.sampled_from(["code", "test", "skipped", "markdown"]), seconds=numbers)
flags = st.builds(Flag, kind=text, grade_id=maybe_text, detail=text)
answers = st.builds(WrittenAnswer, grade_id=text, points=numbers, answered=st.booleans(), digest=text)
json_values = st.recursive(st.none() | st.booleans() | st.integers() | text,
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
                           max_leaves=8)
notebooks = st.builds(
    NotebookResult, status=st.sampled_from(NOTEBOOK_STATUSES), message=text, submitted_as=maybe_text,
    notes=st.lists(text, max_size=2), found=st.lists(text, max_size=2), score=numbers, max_score=numbers,
    optional_points=numbers, tests=st.lists(tests, max_size=2), cells=st.lists(cells, max_size=3),
    solution_sources=st.dictionaries(text, text, max_size=2), flags=st.lists(flags, max_size=2),
    answers=st.lists(answers, max_size=2), executed_notebook=st.none() | st.dictionaries(text, json_values, max_size=3))
timings = st.builds(Timings, kernel_start=numbers, kernel_starts=st.integers(0, 20),
                    numba_compile=st.none() | numbers, total=numbers, task_seconds=st.none() | numbers)
manual = st.builds(ManualGrading, points=numbers, answers=st.integers(0, 5), pending=st.lists(text, max_size=2),
                   score=numbers)
results = st.builds(
    TaskResult, student=text, assignment=text, status=st.sampled_from(TASK_STATUSES), error=maybe_text,
    notes=st.lists(text, max_size=2), score=numbers, max_score=numbers, optional_points=numbers,
    notebooks=st.dictionaries(text, notebooks, max_size=2), timings=timings,
    protections=st.dictionaries(text, json_values, max_size=3), infrastructure=st.booleans(), final=st.booleans(),
    manual=st.none() | manual)


@settings(max_examples=200, deadline=None)
@given(results)
def test_a_result_survives_its_json_form(result):
    data = result.to_json()
    assert TaskResult.from_json(data) == result
    # ... through the text a cache file holds, and back to the same JSON
    again = TaskResult.from_json(json.loads(json.dumps(data, sort_keys=True)))
    assert again == result and again.to_json() == data


@settings(max_examples=50, deadline=None)
@given(results)
def test_keys_only_some_results_have_are_written_only_when_set(result):
    data = result.to_json()
    assert ("infrastructure" in data) == result.infrastructure and ("final" in data) == result.final
    assert ("manual" in data) == (result.manual is not None)
    assert ("task_seconds" in data["timings"]) == (result.timings.task_seconds is not None)


# ------------------------------------------------------------------------------------------
# A real result: the engine's, on the fixture course

#: the JSON form of a result, key by key, as the cache has always held it (extra credit added)
TASK_KEYS = {"student", "assignment", "status", "error", "notes", "notebooks", "score", "max_score",
             "optional_points", "timings", "protections"}
NOTEBOOK_KEYS = {"status", "message", "submitted_as", "notes", "found", "score", "max_score", "optional_points",
                 "tests", "cells", "solution_sources", "flags", "answers", "executed_notebook"}
TEST_KEYS = {"grade_id", "points", "optional", "score", "cases"}
CASE_KEYS = {"check", "hidden", "description", "outcome", "limited", "message", "hints", "seconds"}
CELL_KEYS = {"index", "grade_id", "kind", "seconds", "status"}
FLAG_KEYS = {"kind", "grade_id", "detail"}
TIMING_KEYS = {"kernel_start", "kernel_starts", "numba_compile", "total"}


def _assert_shape(data):
    assert set(data) == TASK_KEYS and set(data["timings"]) == TIMING_KEYS
    for nb in data["notebooks"].values():
        assert set(nb) == NOTEBOOK_KEYS
        assert all(set(test) == TEST_KEYS for test in nb["tests"])
        assert all(set(case) == CASE_KEYS for test in nb["tests"] for case in test["cases"])
        assert all(set(cell) == CELL_KEYS for cell in nb["cells"])
        assert all(set(flag) == FLAG_KEYS for flag in nb["flags"])


@pytest.mark.slow
def test_a_graded_notebook_round_trips_exactly(course):
    limits = Limits(case_timeout=5.0, cell_timeout=30.0)
    # a wrong forward pass that also names the library's own: a delegation flag
    forward = "import cs231n_lib\n" + FORWARD_NO_BIAS + "\nreference = cs231n_lib.conv_forward\n"
    files = submission(course, {"conv_output_size": SIZE_RIGHT, "conv_forward_naive": forward})
    result = engine.grade_submission(engine.GradeTask("ann", "conv", files, str(course), limits=limits))
    assert isinstance(result, TaskResult) and result.graded and 0 < result.score < result.max_score
    data = result.to_json()
    _assert_shape(data)
    assert any(flag for nb in data["notebooks"].values() for flag in nb["flags"])  # flags are part of it
    written = json.dumps(data, sort_keys=True)
    read = TaskResult.from_json(json.loads(written))
    assert read == result and json.dumps(read.to_json(), sort_keys=True) == written


def test_results_that_graded_nothing_round_trip_exactly(course):
    for files in ({}, {"conv.ipynb": b'{"cells": ['}):
        result = engine.grade_submission(engine.GradeTask("bo", "conv", files, str(course)))
        assert result.status == "failed" and result.notebooks["conv.ipynb"].max_score == 5.0
        data = result.to_json()
        _assert_shape(data)
        assert TaskResult.from_json(json.loads(json.dumps(data))) == result


# ------------------------------------------------------------------------------------------
# A custom engine's result: optional fields left out


def test_a_custom_engines_result_gets_the_defaults(tmp_path):
    root = toycourse.course_copy(tmp_path / "repo")
    nb = toycourse.student_notebook(root, "toy", {**toycourse.CLASS["alice"], "conv_output_size": "# FAKE_FLAG\n"})
    files = {"toy.ipynb": nbformat.writes(nb).encode()}
    raw = fake_engine.grade({"student": "al", "assignment": "toy", "files": files, "course_root": str(root)})
    result = TaskResult.from_json(raw)
    assert (result.student, result.status, result.notes, result.protections) == ("al", "graded", [], {})
    assert result.timings == Timings(kernel_start=0.01)
    nb = result.notebooks["toy.ipynb"]
    assert (nb.submitted_as, nb.found, nb.answers, nb.optional_points) == (None, [], [], 0.0)
    assert all(cell.kind == "code" for cell in nb.cells)
    assert all(not case.limited and not test.optional for test in nb.tests for case in test.cases)
    # a flag that says its detail as "message"
    assert nb.flags == [Flag("delegation", None, "calls the library instead of implementing")]
    assert nb.score == raw["notebooks"]["toy.ipynb"]["score"] and result.score == raw["score"]


def test_the_least_a_result_must_say():
    result = TaskResult.from_json({"student": "al", "assignment": "hw", "status": "failed", "score": 0,
                                   "max_score": 0})
    assert result == TaskResult("al", "hw", "failed")
    assert NotebookResult.from_json({"status": "missing", "score": 0, "max_score": 3}) == \
        NotebookResult("missing", max_score=3.0)


# ------------------------------------------------------------------------------------------
# Malformed results: where, what was expected, what was found


def _graded(case):
    return {"student": "al", "assignment": "hw", "status": "graded", "score": 1, "max_score": 2,
            "notebooks": {"hw.ipynb": {"status": "graded", "score": 1, "max_score": 2, "tests": [
                {"grade_id": "t", "points": 2, "score": 1, "cases": [
                    {"check": "f", "hidden": False, "outcome": "passed"}, case]}]}}}


@pytest.mark.parametrize("data, message", [
    (None, "result: expected an object (a dict), found None (NoneType)"),
    ([1, 2], "result: expected an object (a dict), found [1, 2] (list)"),
    ({"student": "al", "assignment": "hw", "score": 0, "max_score": 0},
     "result: expected a field 'status', found only 'assignment', 'max_score', 'score', 'student'"),
    ({"student": "al", "assignment": "hw", "status": "done", "score": 0, "max_score": 0},
     "result.status: expected one of 'graded', 'failed', found 'done' (str)"),
    ({"student": "al", "assignment": "hw", "status": "graded", "score": "5", "max_score": 5},
     "result.score: expected a number, found '5' (str)"),
    ({"student": "al", "assignment": "hw", "status": "graded", "score": True, "max_score": 5},
     "result.score: expected a number, found True (bool)"),
    ({"student": "al", "assignment": "hw", "status": "failed", "score": 0, "max_score": 0, "notes": "late"},
     "result.notes: expected a list of strings, found 'late' (str)"),
    (_graded({"check": "f", "hidden": False, "outcome": "maybe"}),
     "result.notebooks['hw.ipynb'].tests[0].cases[1].outcome: expected one of 'passed', 'wrong', 'error', "
     "'timeout', 'crashed', 'tampered', 'not_run', found 'maybe' (str)"),
    (_graded({"check": "f", "outcome": "passed"}),
     "result.notebooks['hw.ipynb'].tests[0].cases[1]: expected a field 'hidden', found only 'check', 'outcome'"),
    (_graded("passed"), "result.notebooks['hw.ipynb'].tests[0].cases[1]: expected an object (a dict), "
                        "found 'passed' (str)"),
])
def test_a_malformed_result_says_where_what_was_expected_and_what_was_found(data, message):
    with pytest.raises(ResultFormatError) as caught:
        TaskResult.from_json(data)
    assert str(caught.value) == message
    assert isinstance(caught.value, ValueError)
