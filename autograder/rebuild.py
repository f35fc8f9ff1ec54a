"""Rebuild the notebook that runs at grading: the released template plus the student's solution sources.

Nothing else the student sent is used: not their tags, metadata, kernelspec, outputs, extra,
deleted or duplicated cells, nor their copies of setup and test cells. The solution cells are
found by the ``grade_id`` of the *template's* solution cells; when the student's notebook holds
that ``grade_id`` twice, the first one counts (and a note says so); when it lacks it, the
released stub is graded (and a note says so).
"""

import copy
import json

import nbformat

MAX_NOTEBOOK_BYTES = 20 * 2**20
MAX_SOLUTION_CHARS = 1_000_000


class NotebookUnreadable(ValueError):
    """A submitted notebook that cannot be read; the message says why, for the student."""


def _dict(value):
    return value if isinstance(value, dict) else {}


def nbgrader_meta(cell):
    return _dict(_dict(_dict(cell).get("metadata")).get("nbgrader"))


def grade_id(cell):
    value = nbgrader_meta(cell).get("grade_id")
    return value if isinstance(value, str) and value else None


def is_solution_cell(cell):
    return bool(nbgrader_meta(cell).get("solution"))


def is_test_cell(cell):
    meta = nbgrader_meta(cell)
    return _dict(cell).get("cell_type") == "code" and bool(meta.get("grade")) and not meta.get("solution")


def is_skipped(source_cell):
    """True when the instructor marked the cell ``metadata.cs231n.grading == "skip"``."""
    return _dict(_dict(source_cell.get("metadata")).get("cs231n")).get("grading") == "skip"


def is_answer_cell(cell):
    """A written answer graded by a person: a markdown cell that is both solution and grade."""
    meta = nbgrader_meta(cell)
    return _dict(cell).get("cell_type") == "markdown" and bool(meta.get("solution")) and bool(meta.get("grade"))


def cell_points(cell):
    try:
        return float(nbgrader_meta(cell).get("points", 0) or 0)
    except (TypeError, ValueError):
        return 0.0


def read_submitted(data):
    """Parse a submitted notebook's bytes into an nbformat v4 notebook (v3 and older converted).

    Raises ``NotebookUnreadable`` with a reason a student can act on.
    """
    if len(data) > MAX_NOTEBOOK_BYTES:
        raise NotebookUnreadable(f"the notebook is {len(data) / 2**20:.1f} MB; at most "
                                 f"{MAX_NOTEBOOK_BYTES // 2**20} MB are read (clear the outputs before submitting)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise NotebookUnreadable(f"the notebook is not UTF-8 text (byte {exc.start})") from None
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise NotebookUnreadable(f"the notebook is not valid JSON ({exc}); was it saved completely?") from None
    if not isinstance(raw, dict):
        raise NotebookUnreadable("the notebook is JSON but not a notebook (no top-level object)")
    try:
        nb = nbformat.reads(text, as_version=4)
    except Exception as exc:  # noqa: BLE001 - nbformat raises many kinds
        raise NotebookUnreadable(f"the notebook cannot be read by nbformat ({type(exc).__name__}: {exc})") from None
    if not isinstance(nb.get("cells"), list):
        raise NotebookUnreadable("the notebook has no list of cells")
    nb.cells = [c for c in nb.cells if isinstance(c, dict)]
    return nb


def _source_text(cell):
    source = cell.get("source", "")
    if isinstance(source, list):
        source = "".join(s for s in source if isinstance(s, str))
    return source if isinstance(source, str) else ""


def solution_sources(template, student):
    """``({grade_id: source}, notes)``: the student's sources of the template's solution cells."""
    wanted = {grade_id(c): c.get("cell_type") for c in template.cells if is_solution_cell(c) and grade_id(c)}
    found, notes, seen = {}, [], {}
    for index, cell in enumerate(student.cells if student is not None else []):
        if not isinstance(cell, dict):
            continue
        gid = grade_id(cell)
        if gid not in wanted:
            continue
        seen[gid] = seen.get(gid, 0) + 1
        if seen[gid] > 1:
            if seen[gid] == 2:
                notes.append(f"the cell '{gid}' appears more than once; the first one (cell {found[gid][1] + 1}) was graded")
            continue
        if cell.get("cell_type") != wanted[gid]:
            notes.append(f"the cell '{gid}' is a {cell.get('cell_type')} cell, expected {wanted[gid]}; the released stub was graded")
            found[gid] = (None, index)
            continue
        source = _source_text(cell)
        if len(source) > MAX_SOLUTION_CHARS:
            notes.append(f"the cell '{gid}' is longer than {MAX_SOLUTION_CHARS} characters; the released stub was graded")
            source = None
        found[gid] = (source, index)
    sources = {gid: src for gid, (src, _) in found.items() if src is not None}
    if student is not None:
        for gid in wanted:
            if gid not in found:
                notes.append(f"the cell '{gid}' was not found in the submission; the released stub was graded")
    return sources, notes


def rebuild(template, student):
    """``(notebook, sources, notes)``: a deep copy of ``template`` with the student's solution sources.

    ``student`` may be None (no submission): the template runs as released.
    """
    sources, notes = solution_sources(template, student)
    nb = copy.deepcopy(template)
    for cell in nb.cells:
        if is_solution_cell(cell) and grade_id(cell) in sources:
            cell.source = sources[grade_id(cell)]
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return nb, sources, notes


def visible_test_source(source):
    """The source of a test cell without its hidden block (the released template has none already)."""
    from .testspec import BEGIN_HIDDEN, END_HIDDEN

    lines, hidden = [], False
    for line in source.splitlines(keepends=True):
        stripped = line.strip()
        if stripped == BEGIN_HIDDEN:
            hidden = True
            continue
        if stripped == END_HIDDEN:
            hidden = False
            continue
        if not hidden:
            lines.append(line)
    return "".join(lines)


def match_notebooks(expected, files):
    """Map each expected notebook name to a submitted path: ``({name: rel or None}, notes)``.

    Exact path first, then the same file name in a sub-folder; when exactly one expected
    notebook is missing and exactly one unknown notebook was sent, that one is used (renamed
    file) with a note.
    """
    notebooks = sorted(rel for rel in files if rel.lower().endswith(".ipynb")
                       and ".ipynb_checkpoints" not in rel.split("/") and not rel.split("/")[-1].startswith("."))
    chosen, notes = {}, []
    for name in expected:
        if name in files:
            chosen[name] = name
            continue
        nested = [rel for rel in notebooks if rel.split("/")[-1] == name]
        chosen[name] = nested[0] if nested else None
        if len(nested) > 1:
            notes.append(f"{name} was found {len(nested)} times; {nested[0]} was graded")
    unknown = [rel for rel in notebooks if rel not in chosen.values() and rel.split("/")[-1] not in expected]
    missing = [name for name, rel in chosen.items() if rel is None]
    if len(missing) == 1 and len(unknown) == 1:
        chosen[missing[0]] = unknown[0]
        notes.append(f"{missing[0]} was not found; the only other notebook, {unknown[0]}, was graded in its place")
    return chosen, notes
