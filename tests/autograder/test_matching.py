"""Matching a submission to the released notebook: graded code found wherever it stands.

The pooling notebook with the reference solutions pasted in, reshaped the way editors and
accidents reshape notebooks (``examples/editor_shapes.py``). An honest notebook must give every
solution cell a source whose final definition of each graded function is the student's; with one
function wrong, exactly that cell gets the wrong code. Grading a source is tested elsewhere; the
real-kernel grades of these shapes are at the end (and in the sample class).
"""

import ast
import copy
import importlib.util
import json
import re
from pathlib import Path

import nbformat
import pytest

from autograder import engine, matching, rebuild

ROOT = Path(__file__).resolve().parents[2]
POOLING = "pooling"
spec = importlib.util.spec_from_file_location("editor_shapes", ROOT / "examples" / "editor_shapes.py")
shapes = importlib.util.module_from_spec(spec)
spec.loader.exec_module(shapes)


def _released(name=POOLING):
    return nbformat.read(ROOT / "assignments" / name / f"{name}.ipynb", as_version=4)


def _reference_sources(name=POOLING):
    nb = nbformat.read(ROOT / "solutions" / name / f"{name}.ipynb", as_version=4)
    return {rebuild.grade_id(c): "".join(line for line in c.source.splitlines(keepends=True)
                                         if line.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION"))
            for c in nb.cells if rebuild.is_solution_cell(c) and c.cell_type == "code"}


REFERENCE = _reference_sources()
TEMPLATE = _released()
STUBS = {rebuild.grade_id(c): c.source for c in TEMPLATE.cells if rebuild.is_solution_cell(c) and c.cell_type == "code"}
# a wrong avg_pool_backward_naive: the gradient is not divided by the window's size
WRONG_GID = "avg_pool_backward_naive"
WRONG = REFERENCE[WRONG_GID].replace("share = 1.0 / (PH * PW)", "share = 1.0")


def _pasted(sources, template=TEMPLATE):
    nb = copy.deepcopy(template)
    for cell in nb.cells:
        if rebuild.grade_id(cell) in sources and rebuild.is_solution_cell(cell):
            cell.source = sources[rebuild.grade_id(cell)]
    return nb


def final_definition(source, name):
    """ast dump of the definition of ``name`` that is left after running ``source`` top to bottom."""
    last = None
    for node in ast.parse(matching.as_python(source)).body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            last = node
    return None if last is None else ast.dump(last)


def _graded_definitions(student, template=TEMPLATE):
    built = rebuild.rebuild(template, student)
    return built, {gid: final_definition(built.sources.get(gid, STUBS[gid]), gid) for gid in STUBS}


def _expected(sources):
    return {gid: final_definition(sources[gid], gid) for gid in STUBS}


def test_the_wrong_function_really_differs():
    assert WRONG != REFERENCE[WRONG_GID]


# every shape, as a function of (honest or one-wrong sources) -> the student's notebook
SHAPES = {
    "as released": lambda src: _pasted(src),
    "cell deleted, code re-written at the end": lambda src: shapes.recreate_at_end(_pasted(src), "max_pool_forward_naive"),
    "stub left, function defined again just below": lambda src: shapes.redefine_below(
        _pasted(src), "max_pool_forward_naive", STUBS["max_pool_forward_naive"]),
    "every grade_id null": lambda src: shapes.drop_grade_ids(_pasted(src)),
    "VS Code: no cell metadata": lambda src: shapes.vscode(_pasted(src)),
    "Colab save": lambda src: rebuild.read_submitted(shapes.colab_text(_pasted(src), "pooling.ipynb").encode()),
    "cells merged": lambda src: shapes.merge(_pasted(src), "max_pool_forward_naive", "max_pool_backward_naive"),
    "solution cells moved to the end": lambda src: shapes.move_to_end(
        _pasted(src), ["avg_pool_forward_naive", "avg_pool_backward_naive", "max_pool_forward_naive"]),
    "cell copied below its test, the copy is the final version": lambda src: shapes.duplicate(
        _pasted(dict(src, avg_pool_backward_naive=STUBS["avg_pool_backward_naive"])), "avg_pool_backward_naive",
        src["avg_pool_backward_naive"], "test_avg_pool_backward_naive"),
    "VS Code and moved and stub left": lambda src: shapes.vscode(shapes.redefine_below(
        shapes.recreate_at_end(_pasted(src), "avg_pool_forward_naive"), "max_pool_backward_naive",
        STUBS["max_pool_backward_naive"])),
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("wrong", [False, True], ids=["honest", "one wrong"])
def test_every_shape_grades_what_the_student_wrote(shape, wrong):
    sources = dict(REFERENCE, **({WRONG_GID: WRONG} if wrong else {}))
    built, graded = _graded_definitions(SHAPES[shape](sources))
    assert graded == _expected(sources)
    assert built.notes == []  # found: nothing for a person to review


def test_the_lines_say_where_the_code_was_found():
    student = shapes.redefine_below(_pasted(REFERENCE), "max_pool_forward_naive", STUBS["max_pool_forward_naive"])
    at = next(i for i, c in enumerate(student.cells) if c.source == REFERENCE["max_pool_forward_naive"]) + 1
    built = rebuild.rebuild(TEMPLATE, student)
    assert built.found == {"max_pool_forward_naive": [f"max_pool_forward_naive found in cell {at}, not in its own cell: graded"]}
    # the stub left in its cell adds nothing: the code found is graded in its place
    graded = built.sources["max_pool_forward_naive"]
    assert graded == (f"# max_pool_forward_naive: found in cell {at} of the submission\n"
                      + REFERENCE["max_pool_forward_naive"].rstrip("\n") + "\n")
    # an own cell with more than the stub (a helper, a changed stub) stays, the code found comes after it
    student.cells[at - 2].source = "PATCH = 7\n" + STUBS["max_pool_forward_naive"]
    graded = rebuild.rebuild(TEMPLATE, student).sources["max_pool_forward_naive"]
    assert graded.startswith("PATCH = 7\n" + STUBS["max_pool_forward_naive"].rstrip("\n"))
    assert graded.endswith(REFERENCE["max_pool_forward_naive"].rstrip("\n") + "\n")
    as_released = rebuild.rebuild(TEMPLATE, _pasted(REFERENCE))
    assert as_released.found == {} and as_released.notes == []
    assert {gid: as_released.sources[gid] for gid in STUBS} == {gid: REFERENCE[gid] for gid in STUBS}  # untouched


# ------------------------------------------------------------------------------------------
# Code that only lost its metadata (VS Code, Colab): said to be in its own cell wherever that
# cell now stands, and said to be elsewhere when it is


def _own_cell(gid, number):
    return [f"{gid} found in cell {number}, its own cell, which has lost its nbgrader metadata "
            f"(saved by another editor?): graded"]


def _elsewhere(gid, number):
    return [f"{gid} found in cell {number}, not in its own cell: graded"]


def _number(student, source):
    """The number (from 1) of the one cell of ``student`` whose source is ``source``."""
    numbers = [i + 1 for i, c in enumerate(student.cells) if c.source == source]
    assert len(numbers) == 1, numbers
    return numbers[0]


def _graded_code(built):
    """The graded sources, but for the cell numbers their comments give (cells added or deleted move them)."""
    return {gid: re.sub(r"found in cell \d+ of the submission", "found in cell N of the submission", source)
            for gid, source in built.sources.items()}


def _built_as_graded_before(student, template=TEMPLATE):
    """The rebuilt ``student``, asserted to grade exactly as the same notebook saved by VS Code with
    no cell added, deleted or moved: the same definitions, the same sources, nothing to review."""
    built, graded = _graded_definitions(student, template)
    assert graded == _expected(REFERENCE) and built.notes == []
    assert _graded_code(built) == _graded_code(rebuild.rebuild(template, shapes.vscode(_pasted(REFERENCE, template))))
    return built


def _scratch(nb, at, source="print(x.shape)  # a look at the data\n"):
    """``nb`` with a code cell of the student's own at ``at``."""
    nb = copy.deepcopy(nb)
    nb.cells.insert(at, shapes._plain_cell(source))
    return nb


def _without(nb, source):
    nb = copy.deepcopy(nb)
    nb.cells = [c for c in nb.cells if c.source != source]
    return nb


DEMO = TEMPLATE.cells[6].source  # a code cell of the released notebook above every solution cell
assert DEMO.startswith("for W, F, S") and not rebuild.is_solution_cell(TEMPLATE.cells[6])


@pytest.mark.parametrize("change", [
    "none", "scratch cell near the top", "scratch cells in the solution cells' places", "code cell deleted above",
    "markdown cell deleted above", "cell deleted above and scratch cell inserted below",
])
def test_code_that_only_lost_its_metadata_is_said_to_be_in_its_own_cell(change):
    """VS Code drops the metadata, not the cells: the line says so, even when cells added or
    deleted elsewhere have shifted every cell below them."""
    student = shapes.vscode(_pasted(REFERENCE))
    if change == "scratch cell near the top":
        student = _scratch(student, 1)
    elif change == "scratch cells in the solution cells' places":  # a look at the result, just below the code
        for gid in STUBS:
            student = _scratch(student, _number(student, REFERENCE[gid]), f"print('{gid} ran')\n")
    elif change == "code cell deleted above":
        student = _without(student, DEMO)
    elif change == "markdown cell deleted above":
        student = _without(student, TEMPLATE.cells[1].source)
    elif change == "cell deleted above and scratch cell inserted below":
        student = _scratch(_without(student, DEMO), _number(student, REFERENCE["max_pool_forward_fast"]) - 3)
    built = _built_as_graded_before(student)
    assert {gid: built.found[gid] for gid in STUBS} == {gid: _own_cell(gid, _number(student, REFERENCE[gid]))
                                                       for gid in STUBS}
    answers = [gid for gid in built.found if gid not in STUBS]
    assert sorted(answers) == sorted(_answer_ids(TEMPLATE))
    for gid in answers:  # the written answers are found after their questions, with the same shift
        question = next(TEMPLATE.cells[i - 1].source for i, c in enumerate(TEMPLATE.cells) if rebuild.grade_id(c) == gid)
        assert built.found[gid] == [f"the answer '{gid}' found in cell {_number(student, question) + 1}, "
                                    "after its question: graded"]
    if change == "none":
        where = {rebuild.grade_id(c): i + 1 for i, c in enumerate(TEMPLATE.cells) if rebuild.grade_id(c) in STUBS}
        assert {gid: built.found[gid] for gid in STUBS} == {gid: _own_cell(gid, where[gid]) for gid in STUBS}


def test_a_cell_deleted_by_accident_and_written_again_at_the_end_is_elsewhere_the_others_are_not():
    where = {rebuild.grade_id(c): i + 1 for i, c in enumerate(TEMPLATE.cells) if rebuild.grade_id(c) in STUBS}
    moved = shapes.vscode(shapes.recreate_at_end(_pasted(REFERENCE), "avg_pool_forward_naive"))
    built = _built_as_graded_before(moved)
    assert {gid: built.found[gid] for gid in STUBS} == dict(
        {gid: _own_cell(gid, where[gid] - (where[gid] > where["avg_pool_forward_naive"])) for gid in STUBS},
        avg_pool_forward_naive=_elsewhere("avg_pool_forward_naive", len(moved.cells)))


def _into_another_exercise(nb):
    """max_pool_forward_naive written into avg_pool_forward_naive's cell, its own cell left as released."""
    nb = _pasted(dict(REFERENCE, max_pool_forward_naive=STUBS["max_pool_forward_naive"],
                      avg_pool_forward_naive=REFERENCE["avg_pool_forward_naive"] + "\n\n"
                      + REFERENCE["max_pool_forward_naive"]))
    return nb, "avg_pool_forward_naive"


def _into_its_test_cell(nb):
    nb = _pasted(dict(REFERENCE, max_pool_forward_naive=STUBS["max_pool_forward_naive"]))
    test = next(c for c in nb.cells if rebuild.grade_id(c) == "test_max_pool_forward_naive")
    test.source = REFERENCE["max_pool_forward_naive"] + "\n\n" + test.source
    return nb, "test_max_pool_forward_naive"


def _below_its_test_cell(nb):
    nb = _pasted(dict(REFERENCE, max_pool_forward_naive=STUBS["max_pool_forward_naive"]))
    at = next(i for i, c in enumerate(nb.cells) if rebuild.grade_id(c) == "test_max_pool_forward_naive")
    nb.cells.insert(at + 1, shapes._plain_cell(REFERENCE["max_pool_forward_naive"]))
    return nb, None


@pytest.mark.parametrize("place", [_into_another_exercise, _into_its_test_cell, _below_its_test_cell],
                         ids=["into another exercise's cell", "into its test cell", "below its test cell"])
@pytest.mark.parametrize("shifted", [False, True], ids=["in place", "scratch cell near the top"])
def test_code_written_in_another_place_is_said_to_be_elsewhere(place, shifted):
    nb, holder = place(None)
    student = shapes.vscode(nb)
    if shifted:
        student = _scratch(student, 1)
    number = next(i + 1 for i, c in enumerate(student.cells)
                  if REFERENCE["max_pool_forward_naive"] in c.source and c.source != STUBS["max_pool_forward_naive"])
    if holder is not None:  # the cell that holds the code is that other cell of the released notebook
        released = next(i for i, c in enumerate(TEMPLATE.cells) if rebuild.grade_id(c) == holder)
        assert number == released + 1 + shifted
    built = _built_as_graded_before(student)
    expected = {gid: _own_cell(gid, _number(student, REFERENCE[gid])) for gid in STUBS
                if gid not in ("max_pool_forward_naive", holder)}
    expected["max_pool_forward_naive"] = _elsewhere("max_pool_forward_naive", number)
    if holder == "avg_pool_forward_naive":  # its own code is where it belongs
        expected[holder] = _own_cell(holder, number)
    assert {gid: built.found[gid] for gid in STUBS} == expected


# the released notebook with one instruction twice, above each of the two average-pooling cells
INSTRUCTION = "Write your code in the cell below, then run the test cell after it."


def _twice_instructed():
    nb = copy.deepcopy(TEMPLATE)
    for gid in ("avg_pool_backward_naive", "avg_pool_forward_naive"):
        at = next(i for i, c in enumerate(nb.cells) if rebuild.grade_id(c) == gid)
        nb.cells.insert(at, nbformat.v4.new_markdown_cell(INSTRUCTION))
    return nb


TWICE = _twice_instructed()


def _twice_student(change):
    student = shapes.vscode(_pasted(REFERENCE, TWICE))
    if change == "first instruction deleted":
        student.cells.remove(next(c for c in student.cells if c.source == INSTRUCTION))
    elif change == "second instruction deleted":
        student.cells.remove([c for c in student.cells if c.source == INSTRUCTION][1])
    elif change == "instruction copied to the top":
        student.cells.insert(1, nbformat.v4.new_markdown_cell(INSTRUCTION))
    elif change == "test cell edited and scratch cell added between the two":
        test = next(i for i, c in enumerate(student.cells) if c.source.startswith("# avg_pool_forward_naive: "))
        student.cells[test].source += "\nprint('checked')\n"
        student = _scratch(student, test)
    return _scratch(student, 1)  # and a scratch cell near the top: every cell below moves


@pytest.mark.parametrize("change", ["none", "first instruction deleted", "second instruction deleted",
                                    "instruction copied to the top"])
def test_identical_markdown_cells_are_told_apart_by_the_cells_around_them(change):
    student = _twice_student(change)
    built = _built_as_graded_before(student, TWICE)
    assert {gid: built.found[gid] for gid in STUBS} == {gid: _own_cell(gid, _number(student, REFERENCE[gid]))
                                                       for gid in STUBS}


def test_a_place_that_cannot_be_told_is_said_to_be_elsewhere():
    """Both instructions and the test cell between the two average-pooling cells match nothing
    (repeated, edited), and the student added a code cell there: which cell was released where
    cannot be told, so neither is said to be the function's own cell."""
    student = _twice_student("test cell edited and scratch cell added between the two")
    built = _built_as_graded_before(student, TWICE)
    avg = ("avg_pool_forward_naive", "avg_pool_backward_naive")
    assert {gid: built.found[gid] for gid in STUBS} == {
        gid: (_elsewhere if gid in avg else _own_cell)(gid, _number(student, REFERENCE[gid])) for gid in STUBS}


def test_the_alignment_never_fails_on_repeated_or_empty_cells():
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    template = [md("A"), md("X"), code("stub"), md("X"), code("stub"), md("B")]
    for student in ([], [md("X")] * 50, [code("")] * 3, [md("A"), md("X"), md("X"), code("f"), md("B")],
                    [md("B"), code("f"), md("A")], [{"cell_type": "code"}, {"source": ["X"]}]):
        alignment = matching.Alignment(template, student, movable=[2, 4])
        assert all(template[t].source == matching.cell_text(student[s]) for t, s in alignment.pairs)
        places = {(t, s) for t in (2, 4) for s in range(-1, len(student) + 1) if alignment.holds(t, s)}
        assert all(student[s].get("cell_type") == "code" for _, s in places)
    # A and B found, the two X's not (repeated between them); the two solution cells are the two
    # code cells between A and B, in order
    alignment = matching.Alignment(template, [md("A"), md("X"), code("f"), md("X"), code("g"), md("B")], [2, 4])
    assert alignment.image == {0: 0, 5: 5}
    assert alignment.holds(2, 2) and alignment.holds(4, 4) and not alignment.holds(2, 4)
    # a section heading between them tells the two X's apart
    sections = [md("A"), md("X"), code("stub"), md("C"), md("X"), code("stub"), md("B")]
    alignment = matching.Alignment(sections, [md("A"), md("X"), code("f"), code("h"), md("C"), md("X"), code("g"),
                                              md("B")], [2, 5])
    assert alignment.image == {0: 0, 1: 1, 3: 4, 4: 5, 6: 7}
    assert alignment.holds(2, 2) and alignment.holds(2, 3) and alignment.holds(5, 6) and not alignment.holds(5, 3)
    # one X lost and a cell more: A and B still found, the solution cells cannot be told apart
    alignment = matching.Alignment(template, [md("A"), code("f"), code("h"), md("X"), code("g"), md("B")], [2, 4])
    assert alignment.image == {0: 0, 5: 5}
    assert not any(alignment.holds(t, s) for t in (2, 4) for s in range(6))


def test_a_pasted_copy_of_the_stub_does_not_replace_an_answer():
    student = shapes.duplicate(_pasted(REFERENCE), "max_pool_forward_naive", STUBS["max_pool_forward_naive"],
                               "test_avg_pool_backward_naive")
    _, graded = _graded_definitions(student)
    assert graded == _expected(REFERENCE)


def test_the_last_definition_wins_as_in_the_kernel():
    broken = REFERENCE["max_pool_forward_naive"].replace("np.max", "np.min").replace(".max(", ".min(")
    assert broken != REFERENCE["max_pool_forward_naive"]
    student = _pasted(REFERENCE)
    student.cells.append(shapes._plain_cell(broken))  # an experiment left at the very end
    _, graded = _graded_definitions(student)
    assert graded["max_pool_forward_naive"] == final_definition(broken, "max_pool_forward_naive")


HELPER_SPLIT = (
    "def _windows(H, W, ph, pw, stride):\n"
    "    return [(i, j) for i in range(0, H - ph + 1, stride) for j in range(0, W - pw + 1, stride)]\n"
)
FORWARD_WITH_HELPER = '''def max_pool_forward_naive(x, pool_param):
    ph, pw, s = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    N, C, H, W = x.shape
    Ho, Wo = (H - ph) // s + 1, (W - pw) // s + 1
    out = np.zeros((N, C, Ho, Wo), dtype=x.dtype)
    for k, (i, j) in enumerate(_windows(H, W, ph, pw, s)):
        out[:, :, k // Wo, k % Wo] = x[:, :, i:i + ph, j:j + pw].max(axis=(2, 3))
    return out, (x, pool_param)
'''


def test_helpers_come_with_the_function_from_their_own_cell():
    # split: the helper in a cell of its own above the (metadata-less) function cell
    student = shapes.vscode(shapes.split(_pasted(REFERENCE), "max_pool_forward_naive", HELPER_SPLIT, FORWARD_WITH_HELPER))
    built = rebuild.rebuild(TEMPLATE, student)
    graded = built.sources["max_pool_forward_naive"]
    namespace = {}
    exec("import numpy as np\n" + graded, namespace)  # noqa: S102 - the test's own code
    import numpy as np

    x = np.random.default_rng(0).standard_normal((2, 3, 6, 6))
    out, _ = namespace["max_pool_forward_naive"](x, {"pool_height": 2, "pool_width": 2, "stride": 2})
    assert np.array_equal(out, x.reshape(2, 3, 3, 2, 3, 2).max(axis=(3, 5)))


def test_only_what_the_definition_needs_is_taken_from_another_cell():
    extra = ("import numpy as np\n"
             "SCALE = 1.0\n"
             "def max_pool_forward_naive(x, pool_param):\n"
             "    return _helper(x) * SCALE, None\n"
             "def _helper(x):\n"
             "    return x\n"
             "print('a demo that must not run at grading')\n"
             "raise SystemExit('nor this')\n"
             "check = lambda *args, **kwargs: None\n")
    student = shapes.vscode(_pasted({}))
    student.cells.append(shapes._plain_cell(extra))
    graded = rebuild.rebuild(TEMPLATE, student).sources["max_pool_forward_naive"]
    body = graded.split("of the submission\n", 1)[1]
    assert "print(" not in body and "SystemExit" not in body and "check =" not in body
    assert "SCALE = 1.0" in body and "def _helper" in body and "def max_pool_forward_naive" in body


def test_state_set_by_a_solution_cell_is_not_reset():
    # a global the student's own solution cell sets, read by another of their solution cells
    sources = dict(REFERENCE)
    sources["max_pool_forward_naive"] = "CALLS = []\n" + REFERENCE["max_pool_forward_naive"]
    sources["max_pool_backward_naive"] = REFERENCE["max_pool_backward_naive"] + "\n\ndef calls():\n    return len(CALLS)\n"
    built = rebuild.rebuild(TEMPLATE, _pasted(sources))
    assert built.sources["max_pool_backward_naive"] == sources["max_pool_backward_naive"]


def test_a_solution_cell_that_does_not_parse_does_not_hide_the_code_found_elsewhere():
    student = _pasted(dict(REFERENCE, max_pool_forward_naive="def max_pool_forward_naive(x, pool_param)\n    pass\n"))
    student.cells.append(shapes._plain_cell(REFERENCE["max_pool_forward_naive"]))
    _, graded = _graded_definitions(student)
    assert graded == _expected(REFERENCE)


def test_magics_in_a_cell_do_not_hide_its_definitions():
    student = shapes.vscode(_pasted({}))
    student.cells.append(shapes._plain_cell("%timeit -n1 print(1)\n!echo hi\n" + REFERENCE["max_pool_forward_naive"]))
    _, graded = _graded_definitions(student)
    assert graded["max_pool_forward_naive"] == final_definition(REFERENCE["max_pool_forward_naive"], "max_pool_forward_naive")


@pytest.mark.parametrize("hostile", [
    "x = a" + ".b" * 60000,                       # the parser runs out of recursion
    "x = " + "-" * 200000 + "1",                   # ... or of memory
    "def max_pool_forward_naive(x, p):\n    return a" + ".b" * 900 + "\n",  # deep, yet parses
])
def test_hostile_nesting_costs_its_cell_nothing_more(hostile):
    student = _pasted(REFERENCE)
    student.cells.insert(3, shapes._plain_cell(hostile))
    built = rebuild.rebuild(TEMPLATE, student)
    assert built.sources["avg_pool_forward_naive"] == REFERENCE["avg_pool_forward_naive"]


def test_nothing_found_is_a_note_for_a_person():
    student = _pasted(REFERENCE)
    student.cells = [c for c in student.cells if rebuild.grade_id(c) != "avg_pool_forward_naive"]
    built = rebuild.rebuild(TEMPLATE, student)
    assert "avg_pool_forward_naive" not in built.sources
    assert built.notes == ["the cell 'avg_pool_forward_naive' was not found in the submission and no cell defines "
                           "avg_pool_forward_naive; the released stub was graded"]


# ------------------------------------------------------------------------------------------
# Written answers


def _answer_ids(nb):
    return [rebuild.grade_id(c) for c in nb.cells if rebuild.is_answer_cell(c)]


def test_written_answers_without_metadata_are_found_after_their_question():
    student = _pasted(REFERENCE)
    answers = {}
    for cell in student.cells:
        if rebuild.is_answer_cell(cell):
            answers[rebuild.grade_id(cell)] = cell.source = f"My answer to {rebuild.grade_id(cell)}: ties go to the first."
    assert len(answers) == 2
    built = rebuild.rebuild(TEMPLATE, shapes.vscode(student))
    assert {gid: built.sources[gid] for gid in answers} == answers
    assert built.notes == []
    assert all(line.startswith(f"the answer '{gid}' found in cell") for gid in answers for line in built.found[gid])


def test_an_answer_whose_question_is_gone_is_left_for_a_person():
    student = shapes.vscode(_pasted(REFERENCE))
    gid = _answer_ids(TEMPLATE)[0]
    at = next(i for i, c in enumerate(TEMPLATE.cells) if rebuild.grade_id(c) == gid)
    question = TEMPLATE.cells[at - 1].source
    student.cells = [c for c in student.cells if c.source != question]
    built = rebuild.rebuild(TEMPLATE, student)
    assert gid not in built.sources
    assert built.notes == [f"the answer '{gid}' was not found (no cell carries its grade_id, and no cell follows "
                           "its question): a person should look for it in the submission"]


# ------------------------------------------------------------------------------------------
# Colab's file format


def test_a_colab_save_reads_like_a_jupyterlab_one():
    text = shapes.colab_text(_pasted(REFERENCE), "pooling.ipynb")
    raw = json.loads(text)
    assert raw["nbformat_minor"] == 0 and "colab" in raw["metadata"]
    assert all("id" not in c and "nbgrader" not in c["metadata"] for c in raw["cells"])
    nb = rebuild.read_submitted(text.encode())
    assert [c.source for c in nb.cells] == [c.source for c in _pasted(REFERENCE).cells]


# ------------------------------------------------------------------------------------------
# Real kernels: the table of the issue, graded


@pytest.mark.slow
def test_moved_and_metadata_less_pooling_notebooks_grade_in_full_and_lose_exactly_the_wrong_cell():
    honest = shapes.vscode(shapes.redefine_below(shapes.recreate_at_end(
        _pasted(REFERENCE), "max_pool_forward_naive"), "avg_pool_forward_naive", STUBS["avg_pool_forward_naive"]))
    wrong = shapes.drop_grade_ids(_pasted(dict(REFERENCE, **{WRONG_GID: WRONG})))
    scores = {}
    for label, nb in (("honest", honest), ("wrong", wrong)):
        task = engine.GradeTask(label, POOLING, {"pooling.ipynb": nbformat.writes(nb).encode()}, str(ROOT))
        result = engine.grade_submission(task).to_json()
        entry = result["notebooks"]["pooling.ipynb"]
        scores[label] = {t["grade_id"]: t["score"] for t in entry["tests"]}
        # the reference itself uses the library's size rule (allowed by the coordinator): no other flag
        assert entry["notes"] == [] and [f for f in entry["flags"] if f["kind"] != "library_use"] == []
        if label == "honest":
            assert "max_pool_forward_naive found in cell" in " ".join(entry["found"])
            assert result["score"] == result["max_score"] == 13.0
    points = {rebuild.grade_id(c): rebuild.cell_points(c) for c in TEMPLATE.cells if rebuild.is_test_cell(c)}
    assert scores["honest"] == points
    assert scores["wrong"] == dict(points, test_avg_pool_backward_naive=0.0)


@pytest.mark.slow
def test_cells_added_deleted_or_moved_around_metadata_less_code_change_no_grade():
    """Real kernels: a scratch cell added near the top, a cell deleted above and one function written
    into another exercise's cell grade as the same notebook without them; only the lines differ."""
    plain = shapes.vscode(_pasted(REFERENCE))
    reshaped = _scratch(_without(shapes.vscode(_into_another_exercise(None)[0]), DEMO), 1)
    holder = _number(reshaped, REFERENCE["avg_pool_forward_naive"] + "\n\n" + REFERENCE["max_pool_forward_naive"])
    expected = {"plain": [line for gid in STUBS for line in _own_cell(gid, _number(plain, REFERENCE[gid]))],
                "reshaped": [line for gid in STUBS for line in (
                    _elsewhere(gid, holder) if gid == "max_pool_forward_naive" else
                    _own_cell(gid, holder if gid == "avg_pool_forward_naive" else _number(reshaped, REFERENCE[gid])))]}
    graded = {}
    for label, nb in (("plain", plain), ("reshaped", reshaped)):
        task = engine.GradeTask(label, POOLING, {"pooling.ipynb": nbformat.writes(nb).encode()}, str(ROOT))
        result = engine.grade_submission(task).to_json()
        entry = result["notebooks"]["pooling.ipynb"]
        graded[label] = ({t["grade_id"]: t["score"] for t in entry["tests"]}, result["score"], entry["notes"])
        assert [f for f in entry["flags"] if f["kind"] != "library_use"] == []
        assert sorted(line for line in entry["found"] if not line.startswith("the answer")) == sorted(expected[label])
    assert graded["reshaped"] == graded["plain"]
    assert graded["plain"][1] == 13.0 and graded["plain"][2] == []
