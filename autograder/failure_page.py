"""The feedback page of a submission that could not be graded.

nbgrader renders feedback only from a graded notebook, so a submission that failed (a notebook
that is not valid JSON, an empty folder, no notebook of the assignment's name) would leave its
student with a 0 and no word of why. Instead, ``write`` puts one short page per notebook of the
assignment into ``feedback/<student>/<assignment>/<notebook>.html`` (the name nbgrader's page
would have), made here from trusted text only:

- what went wrong: the engine's message for that notebook (``missing`` / ``unreadable``), else
  the result's error. A failure on the grader's side (``infrastructure``: a kernel that would
  not start, a grader bug, a lost worker) shows a fixed sentence instead of its detail, which
  may quote the course's files;
- the notes on the student's own files (skipped for a size cap, a renamed notebook graded in
  its place, ...) and what to do next.

Every string is HTML-escaped; no test source, case or reference value is ever part of a failed
result. As with nbgrader's pages, each page is still scanned with ``feedback.leaks`` against the
instructor's notebook; a page that shows anything is replaced by one without any detail, and
reported.
"""

import html
import shutil
from pathlib import Path

from . import course
from .files import is_notebook_file_name, write_atomic

INFRASTRUCTURE_TEXT = ("The grader had a problem of its own while grading it (not necessarily caused by "
                       "your notebook). Your instructor sees the details; it will be graded again.")
CSS = ("body{font-family:system-ui,sans-serif;margin:2em;max-width:50em;color:#222}"
       ".reason{border-left:4px solid #b00;padding:.3em .8em;background:#fbeeee}"
       "code{background:#f3f3f3;padding:0 .2em}")


def _e(text):
    return html.escape(str(text), quote=True)


def _reasons(result, notebook):
    """Why ``notebook`` of this failed result (a ``TaskResult``) was not graded, for the student (one
    or two lines)."""
    if result.infrastructure:
        return [INFRASTRUCTURE_TEXT]
    nb = result.notebooks.get(notebook)
    error = result.error or "unknown error"
    if nb is not None and nb.status in ("missing", "unreadable") and nb.message:
        return [nb.message] if nb.message in error else [nb.message, error]
    return [error]


def render(result, notebook, notes=(), detailed=True):
    """The HTML page for ``notebook`` of the failed ``result`` (``detailed=False``: no reason, no notes)."""
    student, assignment = result.student, result.assignment
    nb = result.notebooks.get(notebook)
    points = nb.max_score if nb is not None else 0.0
    of = f" of {points:g}" if points else ""
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{_e(assignment)}: {_e(notebook)} "
             f"(not graded)</title><style>{CSS}</style></head><body>",
             f"<h1>{_e(assignment)}: {_e(notebook)}</h1>",
             f"<p>Student: <b>{_e(student)}</b></p>",
             f"<p>This submission <b>could not be graded</b>, so it counts as <b>0</b>{_e(of)} points "
             f"for now.</p>"]
    if detailed:
        parts.append("<h2>What went wrong</h2>"
                     + "".join(f"<p class='reason'>{_e(r)}</p>" for r in _reasons(result, notebook)))
        notes = [str(n) for n in list(notes) + result.notes if str(n).strip()]
        if notes:
            parts.append("<h2>Notes on the files you sent</h2><ul>"
                         + "".join(f"<li>{_e(n)}</li>" for n in notes) + "</ul>")
    else:
        parts.append("<p>Your instructor has the details.</p>")
    if not result.infrastructure:
        parts.append(f"<h2>What to do</h2><p>Check that your submission holds <code>{_e(notebook)}</code>, "
                     f"saved from Jupyter (a valid notebook file), in the <code>{_e(assignment)}</code> "
                     f"folder; then submit it again, or ask your instructor.</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write(out_dir, course_root, result, notebooks=None, notes=()):
    """Replace the feedback of a failed submission by its failure pages; returns ``(paths, problems)``.

    Inputs:
    - result: the failed ``TaskResult``
    - notebooks: the assignment's notebook names (default: those of the result, else
      ``<assignment>.ipynb``)
    - notes: notes on the student's files (``submissions.Submission.notes``)
    """
    from . import feedback

    student, assignment = result.student, result.assignment
    folder = Path(out_dir) / "feedback" / student / assignment
    shutil.rmtree(folder, ignore_errors=True)
    names = [n for n in (notebooks or sorted(result.notebooks) or [f"{assignment}.ipynb"]) if is_notebook_file_name(n)]
    paths, problems = [], []
    for name in names:
        page = render(result, name, notes)
        source = Path(course_root) / course.SOLUTIONS_DIR / assignment / name
        found = feedback.leaks(page, source) if source.exists() else []
        if found:
            page = render(result, name, notes, detailed=False)
            problems.append(f"{Path(name).stem}.html: the reason was left out, it showed hidden-test material "
                            f"({found[0][:60]!r})")
        path = folder / f"{Path(name).stem}.html"
        write_atomic(path, page)
        paths.append(path)
    return paths, problems
