"""Feedback HTML per student and notebook, made by nbgrader's own ``generate_feedback``.

The graded notebooks in ``autograded/`` come from the engine with hidden tests already removed
and the per-case feedback as the test cells' outputs; nbgrader renders them with its feedback
template, scores from the gradebook, and ``ClearHiddenTests`` as a second guard (see
``course.nbgrader_config``). As a last guard, every page is scanned for hidden-test material of
the instructor's notebook: the hidden-test source lines, their seeds, and each hidden case as the
feedback would render it (``describe(case)``, e.g. ``W=32, F=5, S=1, P=2``); a page that contains
one is deleted and reported instead of being handed out.
"""

import functools
import html
import os
import re
import shutil
from pathlib import Path

import nbformat

from . import course, rebuild
from .testspec import CheckSpecError, hidden_test_regions, parse_test_cell


def _split_lines(source_notebook):
    """(hidden lines, visible lines) of the instructor's notebook, stripped."""
    nb = nbformat.read(str(source_notebook), as_version=4)
    hidden, visible = [], set()
    for cell in nb.cells:
        for _, line, where in hidden_test_regions(cell.source):
            if where in ("begin", "hidden"):
                hidden.append(line.strip())
            elif where == "visible":
                visible.add(line.strip())
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


def hidden_descriptions(source_notebook):
    """``describe(case)`` of the hidden cases, as a feedback text would render them.

    Left out: descriptions of a visible case too, and those that are part of the notebook's
    visible text (its markdown, say), since a page shows those anyway; and very short ones.
    """
    from .checks import get_check

    nb = nbformat.read(str(source_notebook), as_version=4)
    hidden, visible = set(), set()
    for cell in nb.cells:
        if not rebuild.is_test_cell(cell):
            continue
        try:
            calls = parse_test_cell(cell.source)
        except CheckSpecError:
            continue
        for call in calls:
            try:
                check = get_check(call.name)
            except ValueError:
                continue
            for case in call.cases:
                try:
                    text = check.describe(case)
                except Exception:  # noqa: BLE001 - a case the check cannot describe is not shown either
                    continue
                (hidden if call.hidden else visible).add(text)
    _, visible_lines = _split_lines(source_notebook)
    visible_text = "\n".join(visible_lines)
    return sorted(t for t in hidden - visible if len(t) > 8 and not _occurrences(t, visible_text))


def _occurrences(needle, text):
    """How often ``needle`` occurs in ``text`` as a whole (not inside a longer name or number)."""
    return len(re.findall(rf"(?<![\w.]){re.escape(needle)}(?![\w.])", text))


@functools.lru_cache(maxsize=32)
def _hidden_material(path, mtime_ns):
    """(hidden lines, hidden seeds, hidden descriptions) of the instructor's notebook at ``path``,
    read once per version of the file (every page of a run is checked against the same one)."""
    return hidden_test_lines(path), hidden_seeds(path), hidden_descriptions(path)


def leaks(page, source_notebook, student_sources=()):
    """Hidden-test material found in an HTML page: hidden source lines, ``seed`` settings, and
    hidden cases' descriptions.

    ``student_sources``: the code the student wrote (the graded notebook's code cells); a hidden
    case's description that appears in it (a student may well try ``W=32, F=5, S=1, P=2``) counts
    as a leak only when the page shows it more often than that code does.
    """
    text = html.unescape(re.sub(r"<[^>]+>", "", page))
    path = str(source_notebook)
    lines, seeds, descriptions = _hidden_material(path, os.stat(path).st_mtime_ns)
    found = [line for line in lines if line in text]
    for seed in seeds:
        if re.search(rf"""["']?seed["']?\s*[:=]\s*{seed}\b""", text):
            found.append(f"seed {seed}")
    own = "\n".join(student_sources)
    for description in descriptions:
        if _occurrences(description, text) > _occurrences(description, own):
            found.append(f"hidden case {description}")
    return found


def _code_sources(notebook_path):
    """The sources of a notebook's code cells ([] when it cannot be read)."""
    try:
        nb = nbformat.read(str(notebook_path), as_version=4)
    except Exception:  # noqa: BLE001 - then nothing is discounted: stricter, never looser
        return []
    return [cell.source for cell in nb.cells if cell.cell_type == "code"]


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
        graded = Path(out_dir) / "autograded" / student / assignment / (path.stem + ".ipynb")
        found = leaks(path.read_text(encoding="utf-8"), source, _code_sources(graded)) if source.exists() else []
        if found:
            path.unlink()
            problems.append(f"{path.name}: withheld, it showed hidden-test material ({found[0][:60]!r})")
    return feedback_paths(out_dir, student, assignment), problems


def remove(out_dir, student, assignment):
    shutil.rmtree(Path(out_dir) / "feedback" / student / assignment, ignore_errors=True)
