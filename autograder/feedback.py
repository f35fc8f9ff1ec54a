"""Feedback HTML per student and notebook, made by nbgrader's own ``generate_feedback``.

The graded notebooks in ``autograded/`` come from the engine with hidden tests already removed
and the per-case feedback as the test cells' outputs; nbgrader renders them with its feedback
template, scores from the gradebook, and ``ClearHiddenTests`` as a second guard (see
``course.nbgrader_config``). As a last guard, every page is scanned for the hidden-test source
lines of the instructor's notebook (and their seeds); a page that contains one is deleted and
reported instead of being handed out.
"""

import html
import re
import shutil
from pathlib import Path

import nbformat

from . import course
from .testspec import BEGIN_HIDDEN, END_HIDDEN


def _split_lines(source_notebook):
    """(hidden lines, visible lines) of the instructor's notebook, stripped."""
    nb = nbformat.read(str(source_notebook), as_version=4)
    hidden, visible = [], set()
    for cell in nb.cells:
        inside = False
        for line in cell.source.splitlines():
            stripped = line.strip()
            if stripped == BEGIN_HIDDEN:
                inside = True
                hidden.append(stripped)
            elif stripped == END_HIDDEN:
                inside = False
            elif inside:
                hidden.append(stripped)
            else:
                visible.add(stripped)
    return hidden, visible


def hidden_test_lines(source_notebook):
    """Lines that only appear between hidden-test markers (long enough to be telling)."""
    hidden, visible = _split_lines(source_notebook)
    return [line for line in hidden if len(line) > 8 and line not in visible]


def hidden_seeds(source_notebook):
    """Seeds used only by hidden cases."""
    hidden, visible = _split_lines(source_notebook)
    pattern = r"""["']seed["']\s*:\s*(-?\d+)"""
    shown = {seed for line in visible for seed in re.findall(pattern, line)}
    return sorted({seed for line in hidden for seed in re.findall(pattern, line)} - shown)


def leaks(page, source_notebook):
    """Hidden-test material found in an HTML page: hidden source lines and ``seed`` settings."""
    text = html.unescape(re.sub(r"<[^>]+>", "", page))
    found = [line for line in hidden_test_lines(source_notebook) if line in text]
    for seed in hidden_seeds(source_notebook):
        if re.search(rf"""["']?seed["']?\s*[:=]\s*{seed}\b""", text):
            found.append(f"seed {seed}")
    return found


def feedback_paths(out_dir, student, assignment):
    return sorted((Path(out_dir) / "feedback" / student / assignment).glob("*.html"))


def generate(out_dir, course_root, student, assignment):
    """Render the feedback of one graded submission; returns ``(paths, problems)``.

    Stale feedback of the submission is removed first, so a failed grading never leaves an old page.
    """
    folder = Path(out_dir) / "feedback" / student / assignment
    shutil.rmtree(folder, ignore_errors=True)
    config = course.nbgrader_config(out_dir)
    course.generate_feedback(config, assignment, student)
    problems = []
    paths = feedback_paths(out_dir, student, assignment)
    for path in paths:
        source = Path(course_root) / course.SOLUTIONS_DIR / assignment / (path.stem + ".ipynb")
        found = leaks(path.read_text(encoding="utf-8"), source) if source.exists() else []
        if found:
            path.unlink()
            problems.append(f"{path.name}: withheld, it showed hidden-test material ({found[0][:60]!r})")
    return feedback_paths(out_dir, student, assignment), problems


def remove(out_dir, student, assignment):
    shutil.rmtree(Path(out_dir) / "feedback" / student / assignment, ignore_errors=True)
