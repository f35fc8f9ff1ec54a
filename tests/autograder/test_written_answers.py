"""Written answers graded by a person (issue 13): nbgrader's manually graded markdown cells.

End to end on a toy course with the real engine: the autograder leaves a written answer to the
formgrader (the gradebook's grade row needs a manual grade), gives 0 without a person to a
blank one, says "needs manual grading" in the summary and grades.csv until a person grades it,
and keeps a person's grade through re-grading while the answer is unchanged.
"""

import csv

import nbformat
import pytest
from nbformat.v4 import new_markdown_cell

import toycourse
from autograder import batch, course, gradebook, report

pytestmark = pytest.mark.slow

RUBRIC = "### BEGIN SOLUTION\nA model answer. Rubric: 1 point for naming the padding, 1 for the stride.\n### END SOLUTION"
ANSWER = "The output shrinks unless the padding makes up for the filter; the stride divides it."


def _course(root):
    root.mkdir(parents=True)
    folder = root / "solutions" / "toy"
    folder.mkdir(parents=True)
    nb = toycourse.source_notebook(with_forward=False)
    question = new_markdown_cell("**Question.** Why does the output size depend on the padding and the stride?")
    answer = new_markdown_cell(RUBRIC)
    answer.metadata["nbgrader"] = {"schema_version": 3, "grade": True, "solution": True, "locked": False,
                                   "task": False, "points": 2, "grade_id": "q_output_size"}
    nb.cells += [question, answer]
    nbformat.write(nb, str(folder / "toy.ipynb"))
    course.release(root, quiet=True)
    return root


def _submit(subs, root, student, answer=None):
    path = toycourse.write_submission(subs, root, student, "toy", {"conv_output_size": toycourse.SIZE_RIGHT})
    nb = nbformat.read(str(path), as_version=4)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "q_output_size" and answer is not None:
            cell.source = answer
    nbformat.write(nb, str(path))


def _answer_grade(out, student):
    with gradebook.open_gradebook(out) as gb:
        for nb in gb.find_submission("toy", student).notebooks:
            for grade in nb.grades:
                if grade.name == "q_output_size":
                    return grade.auto_score, grade.manual_score, grade.needs_manual_grade


def _set_manual(out, student, score):
    with gradebook.open_gradebook(out) as gb:
        for nb in gb.find_submission("toy", student).notebooks:
            for grade in nb.grades:
                if grade.name == "q_output_size":
                    grade.manual_score, grade.needs_manual_grade = score, False
        gb.db.commit()


def test_written_answers_go_to_a_person_and_their_grades_survive_regrading(tmp_path):
    root = _course(tmp_path / "repo")
    released = (root / "assignments" / "toy" / "toy.ipynb").read_text()
    assert "Rubric" not in released and "YOUR ANSWER HERE" in released  # the rubric stays with the instructor
    subs, out = tmp_path / "subs", tmp_path / "out"
    _submit(subs, root, "ann", ANSWER)
    _submit(subs, root, "bo")  # leaves the answer as released
    run = batch.autograde(subs, out, course_root=root, workers=0, progress=False)

    by_student = {r.student: r.to_json() for r in run.results}
    answers = by_student["ann"]["notebooks"]["toy.ipynb"]["answers"]
    assert [(a["grade_id"], a["points"], a["answered"]) for a in answers] == [("q_output_size", 2.0, True)]
    assert by_student["bo"]["notebooks"]["toy.ipynb"]["answers"][0]["answered"] is False
    assert by_student["ann"]["score"] == by_student["ann"]["max_score"] == 2.0  # the code part, in full

    # the gradebook (what the formgrader reads): ann's answer waits for a person, bo's blank one is 0
    assert _answer_grade(out, "ann") == (None, None, True)
    assert _answer_grade(out, "bo") == (0.0, None, False)
    api = course.nbgrader_api(course.nbgrader_config(out))
    notebooks = {n["student"]: n for n in api.get_notebook_submissions("toy", "toy")}
    assert notebooks["ann"]["needs_manual_grade"] is True and notebooks["bo"]["needs_manual_grade"] is False
    assert notebooks["ann"]["max_score"] == 4.0  # 2 autograded + 2 for the written answer
    with gradebook.open_gradebook(out) as gb:
        cell_rows = [(g.name, g.cell.cell_type, g.max_score) for nb in gb.find_submission("toy", "ann").notebooks
                     for g in nb.grades]
    assert ("q_output_size", "markdown", 2.0) in cell_rows

    rows = {r["student"]: r for r in csv.DictReader(open(out / "grades.csv"))}
    assert rows["ann"]["manual_grading"] == "needs manual grading: 1 written answer (q_output_size)"
    assert (rows["ann"]["score"], rows["ann"]["max_score"]) == ("2", "4")
    assert rows["bo"]["manual_grading"] == "graded by hand: 0/2"
    text = report.summary(run)
    assert "NEEDS MANUAL GRADING (1)" in text and "ann / toy: q_output_size" in text
    assert "2/4 +manual" in text

    # a person grades ann's answer in the formgrader; a re-run (nothing changed) keeps it
    _set_manual(out, "ann", 1.5)
    again = batch.autograde(subs, out, course_root=root, workers=0, progress=False)
    assert again.from_cache == 2 and _answer_grade(out, "ann")[1:] == (1.5, False)
    rows = {r["student"]: r for r in csv.DictReader(open(out / "grades.csv"))}
    assert rows["ann"]["manual_grading"] == "graded by hand: 1.5/2" and rows["ann"]["score"] == "3.5"
    assert "NEEDS MANUAL GRADING" not in report.summary(again)

    # ann changes her code but not her answer: re-graded, the person's grade of the answer stays
    path = subs / "ann" / "toy" / "toy.ipynb"
    nb = nbformat.read(str(path), as_version=4)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "conv_output_size":
            cell.source = toycourse.SIZE_WRONG
    nbformat.write(nb, str(path))
    third = batch.autograde(subs, out, course_root=root, workers=0, progress=False)
    assert third.graded_now == 1
    assert _answer_grade(out, "ann")[1:] == (1.5, False)
    code = next(r.score for r in third.results if r.student == "ann")
    assert code < 2.0
    with gradebook.open_gradebook(out) as gb:
        assert gradebook.submission_scores(gb, "toy", "ann") == (code + 1.5, 4.0)

    # ann rewrites her answer: a person must look again
    _submit(subs, root, "ann", ANSWER + " Also the filter size.")
    batch.autograde(subs, out, course_root=root, workers=0, progress=False)
    assert _answer_grade(out, "ann") == (None, None, True)
