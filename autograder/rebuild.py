"""Rebuild the notebook that runs at grading: the released template plus the student's answers.

Nothing else the student sent runs as it stands: not their tags, metadata, kernelspec, outputs,
nor their copies of setup and test cells, nor the top-level code of extra cells. Each solution
cell of the *template* gets the student's answer to it, found as ``autograder.matching`` says: a
code cell by the definitions its released stub asks for (the last ones in the student's notebook,
wherever they stand, with what they need from their cells), a written answer by its ``grade_id``
or the question before it. What was found elsewhere is said in one line per cell (``found``, not
a flag); what was not found at all is a note for a person, and the released stub is graded.

A notebook file over ``MAX_NOTEBOOK_BYTES`` is read without its outputs (``notebook_bytes``).
"""

import ast
import copy
import functools
import io
import json
from dataclasses import dataclass

import nbformat

from . import matching
from .notebook_bytes import NotJson, TooLarge, strip_outputs

#: a notebook is read in full up to this size; above it, it is read with its outputs dropped, and
#: what remains (sources and metadata) must fit this size
MAX_NOTEBOOK_BYTES = 20 * 2**20
#: a notebook file larger than this, outputs included, is refused without being read
MAX_RAW_NOTEBOOK_BYTES = 1 << 30
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


def _megabytes(size):
    return f"{size / 2**20:.1f} MB"


def too_large_message(size):
    """Why a notebook file of ``size`` bytes is not read at all, or None when it is read."""
    if size > MAX_RAW_NOTEBOOK_BYTES:
        return (f"the notebook file is {_megabytes(size)}: over the {MAX_RAW_NOTEBOOK_BYTES // 2**20} MB "
                f"a notebook may have with its outputs, so it was not read (clear the outputs and submit again)")
    return None


def without_outputs(stream, size):
    """The bytes of a notebook over ``MAX_NOTEBOOK_BYTES`` (``size`` bytes, read from the binary
    ``stream``) with its cells' outputs dropped; raises ``NotebookUnreadable`` saying the sizes."""
    refused = too_large_message(size)
    if refused:
        raise NotebookUnreadable(refused)
    try:
        return strip_outputs(_Bounded(stream, MAX_RAW_NOTEBOOK_BYTES), MAX_NOTEBOOK_BYTES)
    except TooLarge:
        raise NotebookUnreadable(
            f"the notebook is {_megabytes(size)} and over {MAX_NOTEBOOK_BYTES // 2**20} MB even without its "
            f"outputs: at most {MAX_NOTEBOOK_BYTES // 2**20} MB of cells are read") from None
    except NotJson as exc:
        raise NotebookUnreadable(f"the notebook is not valid JSON ({exc}); was it saved completely?") from None


class _Bounded:
    """A binary stream that refuses (``NotebookUnreadable``) past ``limit`` bytes: a zip member whose
    header understates its size is caught at the hard cap."""

    def __init__(self, stream, limit):
        self.stream, self.limit, self.count = stream, limit, 0

    def read(self, n):
        data = self.stream.read(n)
        self.count += len(data)
        if self.count > self.limit:
            raise NotebookUnreadable(too_large_message(self.count))
        return data


def read_submitted(data):
    """Parse a submitted notebook's bytes into an nbformat v4 notebook (v3 and older converted).

    A notebook over ``MAX_NOTEBOOK_BYTES`` is read without its outputs (grading never uses them).
    Raises ``NotebookUnreadable`` with a reason a student can act on.
    """
    if len(data) > MAX_NOTEBOOK_BYTES:
        data = without_outputs(io.BytesIO(data), len(data))
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise NotebookUnreadable(f"the notebook is not UTF-8 text (byte {exc.start})") from None
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise NotebookUnreadable(f"the notebook is not valid JSON ({exc}); was it saved completely?") from None
    except RecursionError:  # the parser's depth, not the grader's fault: the student's file
        raise NotebookUnreadable("the notebook's JSON is nested far deeper than any notebook's") from None
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
    return matching.cell_text(cell)


def defined_names(source):
    """Top-level functions and classes a cell's source defines (for a released solution cell: what
    it asks for); IPython magics are read as the kernel reads them."""
    try:
        body = ast.parse(matching.as_python(source)).body
    except matching.UNPARSABLE:
        return []
    return [n.name for n in body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]


def _provided_names(template):
    """Names the rebuilt notebook binds itself: its setup cells' and every graded definition."""
    names = set()
    for cell in template.cells:
        if cell.get("cell_type") != "code":
            continue
        try:
            body = ast.parse(matching.as_python(_source_text(cell))).body
        except matching.UNPARSABLE:
            continue
        for node in body:
            if is_solution_cell(cell):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    names.add(node.name)
            else:
                names |= matching.bound_names(node)
    return names


@dataclass
class Matched:
    """The student's answers to the template's solution cells (see ``solution_sources``)."""

    sources: dict  # {grade_id: source}
    notes: list  # for a person to review: what could not be matched, and what was graded instead
    found: dict  # {grade_id: [lines]} for the student and the summary: answers graded from another place


def solution_sources(template, student):
    """The student's answers to the template's solution cells, found as ``autograder.matching`` says.

    A code solution cell is answered by the last definitions, in notebook order, of the functions
    its released stub defines (its own cell first when it holds them); a written answer by its
    ``grade_id``, else by the question before it. Returns a ``Matched``.
    """
    cells = [c for c in (student.cells if student is not None else []) if isinstance(c, dict)]
    usable, notes, found, sources = [], [], {}, {}
    for cell in cells:
        if len(_source_text(cell)) > MAX_SOLUTION_CHARS:
            if grade_id(cell):
                notes.append(f"the cell '{grade_id(cell)}' is longer than {MAX_SOLUTION_CHARS} characters; "
                             "it was not graded")
            usable.append({"cell_type": "raw", "source": "", "metadata": {}})  # keeps the numbering
        else:
            usable.append(cell)
    if student is None:
        return Matched(sources, notes, found)
    by_id = {}
    for index, cell in enumerate(usable):
        if grade_id(cell):
            by_id.setdefault(grade_id(cell), []).append(index)
    kinds = {grade_id(c): c.get("cell_type") for c in template.cells if is_solution_cell(c) and grade_id(c)}
    running = [i for gid, ids in by_id.items() if kinds.get(gid) == "code" for i in ids
               if usable[i].get("cell_type") == "code"]
    code = matching.StudentCode(usable, _provided_names(template), running)
    # where the released cells stand in the submission, by their text (cells added or deleted shift nothing)
    alignment = matching.Alignment(template.cells, usable,
                                   [i for i, c in enumerate(template.cells) if is_solution_cell(c)])
    for t_index, t_cell in enumerate(template.cells):
        gid = grade_id(t_cell)
        if not is_solution_cell(t_cell) or not gid:
            continue
        kind = t_cell.get("cell_type")
        with_id = by_id.get(gid, [])
        own = [i for i in with_id if usable[i].get("cell_type") == kind]
        wrong_type = [i for i in with_id if usable[i].get("cell_type") != kind]
        if kind == "code":
            names = defined_names(_source_text(t_cell))
            if names:
                # no cell carries a grade_id: the metadata is gone (VS Code, Colab), not the cells
                answer = matching.answer_code_cell(code, gid, names, own, _source_text(t_cell), in_released_place=(
                    None if by_id else functools.partial(alignment.holds, t_index)))
            elif own:  # a solution cell that defines nothing: by its grade_id only
                answer = matching.Answer(_source_text(usable[own[0]]))
                if len(own) > 1:
                    answer.notes.append(f"the cell '{gid}' appears more than once; the first one "
                                        f"(cell {own[0] + 1}) was graded")
            else:
                answer = matching.Answer(None)
            notes += answer.notes
            if answer.found:
                found[gid] = answer.found
            if answer.source is not None:
                sources[gid] = answer.source
                continue
            what = f" and no cell defines {', '.join(names)}" if names else ""
            if wrong_type:
                notes.append(f"the cell '{gid}' is a {usable[wrong_type[0]].get('cell_type')} cell, expected "
                             f"{kind}{what}; the released stub was graded")
            else:
                notes.append(f"the cell '{gid}' was not found in the submission{what}; the released stub was graded")
            continue
        # a written answer (or another non-code solution cell)
        if own:
            sources[gid] = _source_text(usable[own[0]])
            if len(own) > 1:
                found[gid] = [f"the cell '{gid}' appears {len(own)} times; the first one (cell {own[0] + 1}) was graded"]
            continue
        place = matching.match_answer(alignment, t_index)
        if place is not None and place not in {i for ids in by_id.values() for i in ids}:
            sources[gid] = _source_text(usable[place])
            found[gid] = [f"the answer '{gid}' found in cell {place + 1}, after its question: graded"]
        else:
            notes.append(f"the answer '{gid}' was not found (no cell carries its grade_id, and no cell "
                         "follows its question): a person should look for it in the submission")
    return Matched(sources, notes, found)


@dataclass
class Rebuilt:
    notebook: object  # the nbformat notebook that runs
    sources: dict  # {grade_id: the student's source put in that cell}
    notes: list  # for a person to review
    found: dict  # {grade_id: [lines]}: answers graded from another place than their own cell (not for review)


def rebuild(template, student):
    """A ``Rebuilt``: a deep copy of ``template`` with the student's solution sources.

    ``student`` may be None (no submission): the template runs as released.
    """
    matched = solution_sources(template, student)
    nb = copy.deepcopy(template)
    for cell in nb.cells:
        if is_solution_cell(cell) and grade_id(cell) in matched.sources:
            cell.source = matched.sources[grade_id(cell)]
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return Rebuilt(nb, matched.sources, matched.notes, matched.found)


def visible_test_source(source):
    """The source of a test cell without its hidden block (the released template has none already)."""
    from .testspec import hidden_test_regions

    lines = source.splitlines(keepends=True)
    return "".join(lines[number - 1] for number, _, where in hidden_test_regions(source) if where == "visible")


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
