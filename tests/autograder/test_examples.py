"""The sample class in examples/: every student gets what examples/expected.json says, hostile
students change nobody else's grade, and nothing hidden reaches the feedback. Real engine."""

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from autograder import batch, feedback

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
HONEST = ["ada", "chloe", "eve", "pat"]  # complete, partial, broken, zipped v3

pytestmark = pytest.mark.slow


def _expected():
    return json.loads((EXAMPLES / "expected.json").read_text(encoding="utf-8"))["students"]


@pytest.fixture(scope="module")
def whole_class(tmp_path_factory):
    if not (EXAMPLES / "submissions").is_dir():
        pytest.skip("no sample class")
    out = tmp_path_factory.mktemp("examples") / "out"
    return batch.autograde(EXAMPLES / "submissions", out, course_root=ROOT, workers=2, progress=False)


def _by_student(outcome):
    return {(r["student"], r["assignment"]): r for r in outcome.results}


def _case_view(result):
    """What a grade is made of: per test the score and each case's outcome and message."""
    view = {}
    for name, nb in result.get("notebooks", {}).items():
        for test in nb.get("tests", []):
            view[(name, test["grade_id"])] = (test["score"], [(c["outcome"], c["message"]) for c in test["cases"]])
    return result["status"], result.get("score"), view


def test_every_student_gets_the_expected_outcome(whole_class):
    results = _by_student(whole_class)
    expected = _expected()
    assert {s for s, _ in results} == set(expected)
    problems = []
    for student, entry in expected.items():
        for assignment, want in entry["assignments"].items():
            got = results[(student, assignment)]
            if got["status"] != want["status"]:
                problems.append(f"{student}/{assignment}: status {got['status']} ({got.get('error')}), expected {want['status']}")
                continue
            if want["status"] != "graded":
                continue
            if abs(got["score"] - want["score"]) > 1e-6 or got["max_score"] != want["max_score"]:
                problems.append(f"{student}/{assignment}: {got['score']}/{got['max_score']}, expected {want['score']}/{want['max_score']}")
            tests = {t["grade_id"]: t for nb in got["notebooks"].values() for t in nb["tests"]}
            for grade_id, test in want["tests"].items():
                outcomes = {}
                for case in tests[grade_id]["cases"]:
                    outcomes[case["outcome"]] = outcomes.get(case["outcome"], 0) + 1
                if outcomes != test["outcomes"]:
                    problems.append(f"{student}/{assignment}/{grade_id}: {outcomes}, expected {test['outcomes']}")
    assert not problems, "\n".join(problems)


def test_flags_are_the_expected_ones(whole_class):
    flags = whole_class.flags_by_task
    expected = _expected()
    similar = {s for (s, a), f in flags.items() if any("near-identical" in x for x in f)}
    assert similar == {s for s, e in expected.items() if "similar" in e["flags"]} | {"ada"}
    delegated = {s for (s, a), f in flags.items() if any(x.split(": ", 1)[-1].startswith("delegation") for x in f)}
    assert delegated == {s for s, e in expected.items() if "delegation" in e["flags"]}
    assert any("graded in its place" in x for x in flags[("quinn", "convolution")])


def test_grades_csv_and_nbgrader_export_agree(whole_class):
    out = whole_class.out_dir
    rows = {(r["student"], r["assignment"]): r for r in csv.DictReader(open(out / "grades.csv", encoding="utf-8"))}
    env = dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"])
    subprocess.run([str(Path(sys.executable).parent / "nbgrader"), "export", "--to", "export.csv"],
                   cwd=out, env=env, check=True, capture_output=True)
    exported = {(r["student_id"], r["assignment"]): float(r["score"])
                for r in csv.DictReader(open(out / "export.csv", encoding="utf-8"))}
    for key, row in rows.items():
        assert exported[key] == pytest.approx(float(row["score"])), key
    assert rows[("olek", "convolution")]["status"] == "failed" and exported[("olek", "convolution")] == 0.0


def test_no_hidden_test_material_in_feedback_or_graded_notebooks(whole_class):
    out = whole_class.out_dir
    pages = sorted((out / "feedback").rglob("*.html"))
    graded = [r for r in whole_class.results if r["status"] == "graded"]
    assert len(pages) == len(graded)
    for page in pages:
        assignment = page.parent.name
        source = ROOT / "solutions" / assignment / f"{assignment}.ipynb"
        assert feedback.leaks(page.read_text(encoding="utf-8"), source) == [], page
        assert "BEGIN HIDDEN" not in page.read_text(encoding="utf-8")
    # the snooping student read nothing of the solutions or the gradebook
    noor = nbformat.read(str(out / "autograded" / "noor" / "convolution" / "convolution.ipynb"), as_version=4)
    printed = "".join(o.get("text", "") for c in noor.cells if c.cell_type == "code" for o in c.outputs)
    assert "snooped" in printed
    assert "gradebook.db" not in printed and "solutions/" not in printed
    assert not [line for line in printed.splitlines() if line.startswith("READ") and line.endswith("True")]


def test_hostile_students_change_no_other_grade(whole_class, tmp_path):
    subs = tmp_path / "honest"
    subs.mkdir()
    for student in HONEST:
        src = EXAMPLES / "submissions" / student
        if src.is_dir():
            shutil.copytree(src, subs / student)
        else:
            shutil.copy(EXAMPLES / "submissions" / f"{student}.zip", subs / f"{student}.zip")
    alone = batch.autograde(subs, tmp_path / "out", course_root=ROOT, workers=2, progress=False, feedback=False)
    in_class = _by_student(whole_class)
    for key, result in _by_student(alone).items():
        assert _case_view(result) == _case_view(in_class[key]), key
