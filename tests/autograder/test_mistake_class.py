"""The class of common mistakes in examples/mistakes/: graded by the real engine, each student
loses points on the test of their mistake and its feedback names the mistake, on a visible case
and on a hidden one; the report counts each named mistake once per student."""

import importlib.util
import json
from pathlib import Path

import pytest

from autograder import batch, report

ROOT = Path(__file__).resolve().parents[2]
MISTAKES = ROOT / "examples" / "mistakes"

pytestmark = pytest.mark.slow


def _expected():
    return json.loads((MISTAKES / "expected.json").read_text(encoding="utf-8"))["students"]


def test_the_committed_class_is_what_build_mistakes_makes(tmp_path):
    spec = importlib.util.spec_from_file_location("build_mistakes", ROOT / "examples" / "build_mistakes.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.build(tmp_path / "submissions", tmp_path / "expected.json")
    fresh = {p.relative_to(tmp_path / "submissions"): p.read_bytes()
             for p in (tmp_path / "submissions").rglob("*") if p.is_file()}
    committed = {p.relative_to(MISTAKES / "submissions"): p.read_bytes()
                 for p in (MISTAKES / "submissions").rglob("*") if p.is_file()}
    assert sorted(k for k in fresh.keys() | committed.keys() if fresh.get(k) != committed.get(k)) == []
    assert (tmp_path / "expected.json").read_text() == (MISTAKES / "expected.json").read_text()


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    out = tmp_path_factory.mktemp("mistakes") / "out"
    outcome = batch.autograde(MISTAKES / "submissions", out, course_root=ROOT, workers=2, progress=False)
    return outcome, {r.task: r.to_json() for r in outcome.results}


@pytest.mark.parametrize("student", sorted(_expected()))
def test_each_mistake_gets_its_diagnosis(graded, student):
    want = _expected()[student]
    result = graded[1][(student, want["assignment"])]
    assert result["status"] == "graded", result.get("error")
    tests = {t["grade_id"]: t for nb in result["notebooks"].values() for t in nb["tests"]}
    test = tests[want["test"]]
    if want["diagnosis"] is None:  # the shape policy: exact values in another shape pass, with a note
        assert test["score"] == test["points"]
        assert any("accepted" in case["message"] for case in test["cases"] if not case["hidden"])
        return
    assert test["score"] < test["points"]
    visible = [c for c in test["cases"] if not c["hidden"] and want["diagnosis"] in c["hints"]]
    hidden = [c for c in test["cases"] if c["hidden"] and want["diagnosis"] in c["hints"]]
    assert visible, test["cases"]
    assert not visible[0]["limited"]  # full feedback: every visible case runs before any hidden one
    if want["named_on_hidden_cases"]:
        assert hidden, test["cases"]


def test_the_report_counts_the_named_mistakes(graded):
    counts = {(test, mistake): n for (_, test, _, mistake), n in report.diagnosed_mistakes(graded[0].results)}
    for student, want in _expected().items():
        if want["diagnosis"]:
            assert counts[(want["test"], want["diagnosis"])] >= 1, student
    assert counts[("test_conv_backward_naive", __import__("autograder.checks.convolution").checks.convolution.CROP_EMPTY)] == 1
