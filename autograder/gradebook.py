"""Writing grading results into nbgrader's gradebook, and the ``grades.csv`` export.

The grading output folder is an nbgrader course (``prepare_grading_course``): nbgrader's
generate_assignment creates the gradebook there and tells it every grade cell and its points.

Only the coordinating process writes the gradebook, from results, and every write is
idempotent: recording the same result twice leaves the same rows. A submission whose grading
failed keeps no score from an earlier run: its grades are set to zero and marked as needing a
manual grade, with the reason as a comment, so ``nbgrader export`` can never publish a stale
score and the formgrader lists it for a person to look at.

Manual grades (a formgrader ``manual_score`` or ``extra_credit``, which nbgrader's score uses
in place of the automatic one) belong to the submission a person looked at. The gradebook keeps,
in its own table ``cs231n_recorded``, which result each submission holds (the coordinator's
task key and the status). When a new result is recorded for another key (the student's files
changed, or anything else a grade depends on) or a graded submission now fails to grade, the
submission's manual scores and extra credit are cleared; the same result recorded again (a
re-run served from the cache) keeps them, and so does a failed submission that a person graded
by hand after it failed. Results recorded without a key (or into a gradebook from before keys
were kept) clear manual grades only when grading failed.

Students and assignments found in the gradebook but not in a run (``absent_from_run``) are
kept as they are, manual grades included: a run over part of a class (late submissions, one
assignment) must not disturb the others. The run's summary lists them, since ``nbgrader
export`` still exports them while ``grades.csv`` has only the run's submissions.
"""

import csv
import io
import json
import warnings
from pathlib import Path

from .assignment_digest import source_digest
from .course import (SOLUTIONS_DIR, generate_assignment, nbgrader_config, patch_nbgrader, sync_folder,
                     write_nbgrader_config_file)
from .files import printable, write_atomic
from .results import ManualGrading, NotebookResult


# ------------------------------------------------------------------------------------------
# The grading output folder as an nbgrader course (where the gradebook lives)


def prepare_grading_course(out_dir, course_root, assignments):
    """Make ``out_dir`` an nbgrader course knowing ``assignments`` (gradebook, source/, release/).

    The gradebook is created by nbgrader's generate_assignment on a copy of ``solutions/<a>`` as
    ``source/<a>``, so nbgrader knows every grade cell and its points. The step is skipped for an
    assignment whose source has not changed since the last run (its digest is kept in
    ``.cache/source-<a>.json``), which keeps re-runs fast and the gradebook untouched.

    An optional part's test cell is given 0 points in that copy: nbgrader's maximum leaves it out,
    and the points a student earns there are recorded as the cell's extra credit (its automatic
    score is 0), on top, the same as in the engine's ``max_score`` and ``score``.
    """
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / ".cache").mkdir(exist_ok=True)
    write_nbgrader_config_file(out_dir)
    config = nbgrader_config(out_dir)
    for name in assignments:
        digest = source_digest(course_root, name)
        stamp = out_dir / ".cache" / f"source-{name}.json"
        wanted = {"digest": digest, "layout": GRADING_SOURCE_LAYOUT}
        if stamp.exists() and json.loads(stamp.read_text()) == wanted and (out_dir / "gradebook.db").exists():
            continue
        sync_folder(Path(course_root) / SOLUTIONS_DIR / name, out_dir / "source" / name)
        for path in sorted((out_dir / "source" / name).glob("*.ipynb")):
            _optional_parts_as_extra_credit(path)
        generate_assignment(config, name)
        write_atomic(stamp, json.dumps(wanted))
    return config


#: Bumped when the grading course's copy of the sources changes shape (2: optional parts at 0
#: points), so that a gradebook made by an older grader is brought up to date.
GRADING_SOURCE_LAYOUT = 2


def _optional_parts_as_extra_credit(path):
    """Give the optional parts' test cells of the notebook at ``path`` 0 points (see above)."""
    import nbformat
    from cs231n_checks.validate import is_optional_test

    nb = nbformat.read(str(path), as_version=4)
    changed = False
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if is_optional_test(cell) and meta.get("points"):
            meta["points"] = 0.0
            changed = True
    if changed:
        write_atomic(path, nbformat.writes(nb))


# ------------------------------------------------------------------------------------------
# Recording results


def open_gradebook(out_dir):
    """The nbgrader ``Gradebook`` of the grading folder ``out_dir`` (created by the release step)."""
    from nbgrader.api import Gradebook

    # nbgrader 0.9 with SQLAlchemy 2.1 warns about its own session use on every new submission
    warnings.filterwarnings("ignore", module="nbgrader.api")
    warnings.filterwarnings("ignore", message=".*not in session.*")
    warnings.filterwarnings("ignore", message=".*User-placed attribute.*")
    patch_nbgrader()
    config = nbgrader_config(out_dir)
    return Gradebook(config.CourseDirectory.db_url, course_id=config.CourseDirectory.course_id)


RECORDED_TABLE = "cs231n_recorded"


def _ensure_recorded_table(gb):
    from sqlalchemy import text

    gb.db.execute(text(f"CREATE TABLE IF NOT EXISTS {RECORDED_TABLE} (assignment VARCHAR(1024) NOT NULL, "
                       f"student VARCHAR(1024) NOT NULL, task_key VARCHAR(128) NOT NULL, "
                       f"status VARCHAR(32) NOT NULL, PRIMARY KEY (assignment, student))"))


def recorded(gb, assignment, student):
    """``(task key, status)`` of the result the gradebook holds for a submission, or None."""
    from sqlalchemy import text

    _ensure_recorded_table(gb)
    row = gb.db.execute(text(f"SELECT task_key, status FROM {RECORDED_TABLE} WHERE assignment = :a AND student = :s"),
                        {"a": assignment, "s": student}).first()
    return (row[0], row[1]) if row else None


def _set_recorded(gb, assignment, student, key, status):
    from sqlalchemy import text

    params = {"a": assignment, "s": student, "k": key, "st": status}
    done = gb.db.execute(text(f"UPDATE {RECORDED_TABLE} SET task_key = :k, status = :st "
                              f"WHERE assignment = :a AND student = :s"), params)
    if not done.rowcount:
        gb.db.execute(text(f"INSERT INTO {RECORDED_TABLE} (assignment, student, task_key, status) "
                           f"VALUES (:a, :s, :k, :st)"), params)


ANSWERS_TABLE = "cs231n_answers"


def _answer_digests(gb, assignment, student):
    """``{(notebook, grade_id): digest}`` of the written answers last recorded for a submission."""
    from sqlalchemy import text

    gb.db.execute(text(f"CREATE TABLE IF NOT EXISTS {ANSWERS_TABLE} (assignment VARCHAR(1024) NOT NULL, "
                       f"student VARCHAR(1024) NOT NULL, notebook VARCHAR(1024) NOT NULL, "
                       f"grade_id VARCHAR(1024) NOT NULL, digest VARCHAR(64) NOT NULL, "
                       f"PRIMARY KEY (assignment, student, notebook, grade_id))"))
    rows = gb.db.execute(text(f"SELECT notebook, grade_id, digest FROM {ANSWERS_TABLE} "
                              f"WHERE assignment = :a AND student = :s"), {"a": assignment, "s": student})
    return {(r[0], r[1]): r[2] for r in rows}


def _set_answer_digest(gb, assignment, student, notebook, grade_id, digest):
    from sqlalchemy import text

    params = {"a": assignment, "s": student, "n": notebook, "g": grade_id, "d": digest}
    gb.db.execute(text(f"DELETE FROM {ANSWERS_TABLE} WHERE assignment = :a AND student = :s "
                       f"AND notebook = :n AND grade_id = :g"), params)
    gb.db.execute(text(f"INSERT INTO {ANSWERS_TABLE} (assignment, student, notebook, grade_id, digest) "
                       f"VALUES (:a, :s, :n, :g, :d)"), params)


def record_result(gb, result, timestamp=None, key=None):
    """Write one task's result into the gradebook (create or update; idempotent).

    Inputs:
    - gb: an open nbgrader ``Gradebook``
    - result: the task's ``TaskResult`` (graded or failed)
    - timestamp: the submission time (string) when known
    - key: the result's task key (``cache.task_key``): tells a re-recorded result, whose manual
      grades stay, from a new one, whose manual grades are cleared (see the module docstring)
    """
    from nbgrader.api import MissingEntry

    student, assignment = result.student, result.assignment
    graded = result.graded
    status = "graded" if graded else "failed"
    previous = recorded(gb, assignment, student)
    if key is None or previous is None:
        stale_manual = not graded  # cannot tell a new result from an old one: only a failure clears
    else:
        stale_manual = previous != (key, status)
    gb.update_or_create_student(student)
    try:
        submission = gb.find_submission(assignment, student)
    except MissingEntry:
        submission = gb.add_submission(assignment, student)
    if timestamp:
        from nbgrader.utils import parse_utc

        try:
            submission.timestamp = parse_utc(timestamp)
        except Exception:  # a student's timestamp.txt can hold anything
            submission.timestamp = None
    digests = _answer_digests(gb, assignment, student)
    for nb in submission.notebooks:
        nb_result = (result.notebooks.get(f"{nb.name}.ipynb") if graded else None) or _NO_NOTEBOOK
        scores = {t.grade_id: t.score for t in nb_result.tests}
        extra_credit = {t.grade_id: t.score for t in nb_result.tests if t.optional}
        manual = {cell.name for cell in nb.notebook.solution_cells}
        answers = {a.grade_id: a for a in nb_result.answers}
        for grade in nb.grades:
            answer = answers.get(grade.name)
            # a person's grade of a written answer stays while that answer is unchanged
            same_answer = answer is not None and digests.get((nb.name, grade.name)) == answer.digest
            if stale_manual and not same_answer:
                grade.manual_score = grade.extra_credit = None
            if answer is not None:
                _set_answer_digest(gb, assignment, student, nb.name, grade.name, answer.digest)
                if not answer.answered:
                    # the released text, unchanged: 0 points without a person, as nbgrader does
                    grade.auto_score, grade.needs_manual_grade = 0.0, False
                    continue
            if graded and grade.name in manual and grade.name not in scores:
                # a written answer: for a person, until a person has graded it
                grade.auto_score, grade.needs_manual_grade = None, grade.manual_score is None
                continue
            if grade.name in extra_credit:
                # an optional part (0 points here): what it earned is extra credit, which a person's
                # score for the cell (the formgrader caps it at 0) leaves standing; set again for a
                # new result, kept (with any change a person made) for the same one
                grade.auto_score = 0.0
                if stale_manual or key is None or grade.extra_credit is None:
                    grade.extra_credit = extra_credit[grade.name]
                grade.needs_manual_grade = False
                continue
            grade.auto_score = scores.get(grade.name, 0.0)
            grade.needs_manual_grade = not graded and grade.manual_score is None
        if graded:
            message = nb_result.message or None
        else:
            message = f"Autograding failed: {result.error or 'unknown error'}. Scores are 0 until it is re-graded."
        for comment in nb.comments:
            comment.auto_comment = message
        nb.flagged = bool(nb_result.flags)
    if key is not None:
        _set_recorded(gb, assignment, student, key, status)
    gb.db.commit()


#: what a notebook left out of a result (or any notebook of a failed one) records: no score, no flag
_NO_NOTEBOOK = NotebookResult("missing")


def absent_from_run(gb, results, students=()):
    """What the gradebook holds that a run did not grade (kept as is; see the module docstring).

    Inputs: the run's results (``TaskResult``s) and every student seen in its submissions folder.
    Returns ``{"students": [...], "assignments": [...], "submissions": [(student, assignment)]}``:
    students not in the submissions folder, assignments with no submission in the run, and the
    other submissions (a student and an assignment of the run, but not this pair) not graded.
    """
    graded = {r.task for r in results}
    run_students = set(students) | {s for s, _ in graded}
    run_assignments = {a for _, a in graded}
    absent = {"students": sorted(s.id for s in gb.students if s.id not in run_students),
              "assignments": sorted(a.name for a in gb.assignments if a.name not in run_assignments),
              "submissions": []}
    for assignment in gb.assignments:
        if assignment.name not in run_assignments:
            continue
        for submission in assignment.submissions:
            pair = (submission.student.id, assignment.name)
            if pair not in graded and pair[0] in run_students:
                absent["submissions"].append(pair)
    absent["submissions"].sort()
    return absent


def manual_grading(gb, assignment, student):
    """The written answers of a submission as the gradebook holds them (a person grades them in
    the formgrader): a ``ManualGrading`` whose ``score`` is what the answers have earned so far
    (manual grades, and 0 for blank answers), or None when the submission has no written answer."""
    from nbgrader.api import MissingEntry

    try:
        submission = gb.find_submission(assignment, student)
    except MissingEntry:
        return None
    points, score, pending, count = 0.0, 0.0, [], 0
    for nb in submission.notebooks:
        for grade in nb.grades:
            if grade.cell.cell_type != "markdown":
                continue
            count += 1
            points += float(grade.max_score or 0.0)
            if grade.needs_manual_grade:
                pending.append(grade.name)
            else:
                score += float(grade.score or 0.0)
    if not count:
        return None
    return ManualGrading(points=points, answers=count, pending=sorted(pending), score=score)


def submission_scores(gb, assignment, student):
    """``(score, max_score)`` the gradebook holds for a submission (None when there is none)."""
    from nbgrader.api import MissingEntry

    try:
        submission = gb.find_submission(assignment, student)
    except MissingEntry:
        return None
    return float(submission.score or 0.0), float(submission.max_score or 0.0)


GRADES_COLUMNS = ["student", "assignment", "status", "score", "max_score"]


def grades_rows(results, notebooks_by_assignment, flags_by_task=None):
    """Rows of ``grades.csv``: one per (student, assignment) result, sorted.

    Columns: student, assignment, status (graded / failed), score, max_score, one column per
    notebook (``<assignment>/<notebook>``; empty for the other assignments; autograded points),
    manual_grading, flags, error. A submission with written answers (``result.manual``, from
    ``manual_grading``) has them in its score and max_score, at what a person has given so far,
    and says in manual_grading whether any still needs a person.
    """
    flags_by_task = flags_by_task or {}
    nb_columns = [f"{a}/{nb}" for a in sorted(notebooks_by_assignment) for nb in notebooks_by_assignment[a]]
    rows = []
    for result in sorted(results, key=lambda r: r.task):
        row = {c: "" for c in GRADES_COLUMNS + nb_columns + ["manual_grading", "flags", "error"]}
        row.update(student=result.student, assignment=result.assignment, status=result.status)
        graded = result.graded
        row["score"] = _fmt(result.score if graded else 0.0)
        row["max_score"] = _fmt(result.max_score) if graded else ""
        manual = result.manual if graded else None
        if manual is not None:
            # written answers: the totals count what a person has given so far (the gradebook's)
            row["score"] = _fmt(result.score + manual.score)
            row["max_score"] = _fmt(result.max_score + manual.points)
            row["manual_grading"] = manual_text(manual)
        notebooks = result.notebooks if graded else {}
        for nb in notebooks_by_assignment.get(result.assignment, []):
            # a notebook missing from a graded result, or any notebook of a failed one, holds 0
            row[f"{result.assignment}/{nb}"] = _fmt(notebooks[nb].score if nb in notebooks else 0.0)
        row["flags"] = "; ".join(flags_by_task.get(result.task, []))
        row["error"] = (result.error or "") if not graded else ""
        rows.append(row)
    return nb_columns, rows


def manual_text(manual):
    """How far the written answers of a submission (a ``ManualGrading``) are graded, for grades.csv and
    the summary."""
    if manual.pending:
        n = len(manual.pending)
        return f"needs manual grading: {n} written answer{'s' if n != 1 else ''} ({', '.join(manual.pending)})"
    return f"graded by hand: {manual.score:g}/{manual.points:g}"


def _fmt(value):
    return f"{float(value or 0.0):g}"


def csv_cell(value):
    """A cell of ``grades.csv`` as a spreadsheet may open it: text starting with ``= + - @`` (a
    formula: a student id or a file name a student chose, first in the flags) behind a quote that
    keeps it text, control characters as escapes (see ``files.printable``)."""
    text = printable(str(value))
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def write_grades_csv(path, results, notebooks_by_assignment, flags_by_task=None):
    """Write ``grades.csv`` (see ``grades_rows``) atomically; returns the rows."""
    nb_columns, rows = grades_rows(results, notebooks_by_assignment, flags_by_task)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=GRADES_COLUMNS + nb_columns + ["manual_grading", "flags", "error"],
                            lineterminator="\n")
    writer.writeheader()
    writer.writerows({column: csv_cell(value) for column, value in row.items()} for row in rows)
    write_atomic(Path(path), buffer.getvalue())
    return rows
