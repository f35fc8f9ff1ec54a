"""Writing grading results into nbgrader's gradebook, and the ``grades.csv`` export.

Only the coordinating process writes the gradebook, from results, and every write is
idempotent: recording the same result twice leaves the same rows. A submission whose grading
failed keeps no score from an earlier run: its grades are set to zero and marked as needing a
manual grade, with the reason as a comment, so ``nbgrader export`` can never publish a stale
score and the formgrader lists it for a person to look at.
"""

import csv
import io
import warnings
from pathlib import Path

from .course import nbgrader_config, patch_nbgrader


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


def flag_text(flag):
    if isinstance(flag, dict):
        where = f" in {flag['grade_id']}" if flag.get("grade_id") else ""
        text = flag.get("detail") or flag.get("message") or ""
        return f"{flag.get('kind', 'flag')}{where}: {text}" if text else f"{flag.get('kind', 'flag')}{where}"
    return str(flag)


def record_result(gb, result, timestamp=None):
    """Write one task's result into the gradebook (create or update; idempotent).

    Inputs:
    - gb: an open nbgrader ``Gradebook``
    - result: the engine's result dict (``status`` graded or failed)
    - timestamp: the submission time (string) when known
    """
    from nbgrader.api import MissingEntry

    student, assignment = result["student"], result["assignment"]
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
    graded = result.get("status") == "graded"
    notebooks = result.get("notebooks", {})
    for nb in submission.notebooks:
        nb_result = notebooks.get(f"{nb.name}.ipynb", {}) if graded else {}
        scores = {t["grade_id"]: float(t.get("score") or 0.0) for t in nb_result.get("tests", [])}
        manual = {cell.name for cell in nb.notebook.solution_cells}
        for grade in nb.grades:
            if graded and grade.name in manual and grade.name not in scores:
                grade.auto_score, grade.needs_manual_grade = None, True  # a written answer: for a person
                continue
            grade.auto_score = scores.get(grade.name, 0.0)
            grade.needs_manual_grade = not graded
        if graded:
            message = nb_result.get("message") or None
        else:
            message = f"Autograding failed: {result.get('error') or 'unknown error'}. Scores are 0 until it is re-graded."
        for comment in nb.comments:
            comment.auto_comment = message
        nb.flagged = bool(nb_result.get("flags"))
    gb.db.commit()


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
    notebook (``<assignment>/<notebook>``; empty for the other assignments), flags, error.
    """
    flags_by_task = flags_by_task or {}
    nb_columns = [f"{a}/{nb}" for a in sorted(notebooks_by_assignment) for nb in notebooks_by_assignment[a]]
    rows = []
    for result in sorted(results, key=lambda r: (r["student"], r["assignment"])):
        row = {c: "" for c in GRADES_COLUMNS + nb_columns + ["flags", "error"]}
        row.update(student=result["student"], assignment=result["assignment"], status=result["status"])
        graded = result["status"] == "graded"
        row["score"] = _fmt(result.get("score", 0.0) if graded else 0.0)
        row["max_score"] = _fmt(result.get("max_score", 0.0)) if graded else ""
        notebooks = result.get("notebooks", {}) if graded else {}
        for nb in notebooks_by_assignment.get(result["assignment"], []):
            # a notebook missing from a graded result, or any notebook of a failed one, holds 0
            row[f"{result['assignment']}/{nb}"] = _fmt(notebooks.get(nb, {}).get("score", 0.0))
        row["flags"] = "; ".join(flags_by_task.get((result["student"], result["assignment"]), []))
        row["error"] = (result.get("error") or "") if not graded else ""
        rows.append(row)
    return nb_columns, rows


def _fmt(value):
    return f"{float(value or 0.0):g}"


def write_grades_csv(path, results, notebooks_by_assignment, flags_by_task=None):
    """Write ``grades.csv`` (see ``grades_rows``) atomically; returns the rows."""
    from .batch import write_atomic

    nb_columns, rows = grades_rows(results, notebooks_by_assignment, flags_by_task)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=GRADES_COLUMNS + nb_columns + ["flags", "error"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(Path(path), buffer.getvalue())
    return rows
