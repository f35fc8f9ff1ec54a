"""Rebuilding the graded notebook: only solution-cell sources come from the student."""

import copy
import json

import nbformat
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from autograder_testkit import FORWARD_RIGHT, SIZE_RIGHT, SIZE_WRONG, released, student_nb

from autograder import rebuild


def _sources(nb):
    return [c.source for c in nb.cells]


def _rebuild(template, student):
    built = rebuild.rebuild(template, student)
    return built.notebook, built.sources, built.notes


def test_only_solution_sources_are_copied(course):
    template = released(course)
    student = student_nb(course, {"conv_output_size": SIZE_WRONG, "conv_forward_naive": FORWARD_RIGHT})
    # everything else the student changed must be ignored
    for cell in student.cells:
        cell.metadata.setdefault("tags", []).append("skip-execution")
        cell.metadata["cs231n"] = {"grading": "skip"}
        if cell.cell_type == "code" and not rebuild.is_solution_cell(cell):
            cell.source = "print('student code in a locked cell')"
            cell.outputs = [nbformat.v4.new_output("stream", text="fake output")]
    student.metadata["kernelspec"] = {"name": "evil", "display_name": "evil", "language": "python"}
    student.cells.append(nbformat.v4.new_code_cell("print('extra cell')"))
    nb, sources, notes = _rebuild(template, student)
    assert sources == {"conv_output_size": SIZE_WRONG, "conv_forward_naive": FORWARD_RIGHT}
    assert notes == []
    assert len(nb.cells) == len(template.cells)
    for built, orig in zip(nb.cells, template.cells):
        assert built.metadata == orig.metadata
        if rebuild.is_solution_cell(orig):
            assert built.source == sources[rebuild.grade_id(orig)]
        else:
            assert built.source == orig.source
        if built.cell_type == "code":
            assert built.outputs == []
    assert nb.metadata == template.metadata


def test_duplicated_grade_id_grades_the_last_definition_as_the_kernel_would(course):
    template = released(course)
    student = student_nb(course, {"conv_output_size": SIZE_RIGHT})
    first = next(i for i, c in enumerate(student.cells) if rebuild.grade_id(c) == "conv_output_size")
    dup = copy.deepcopy(student.cells[first])
    dup.source = SIZE_WRONG
    student.cells.append(dup)
    built = rebuild.rebuild(template, student)
    assert built.sources["conv_output_size"] == SIZE_WRONG
    assert built.notes == []  # found and graded: nothing for a person to review
    assert built.found["conv_output_size"] == [
        f"the cell 'conv_output_size' appears 2 times (cells {first + 1}, {len(student.cells)}); "
        f"cell {len(student.cells)}, the last definition, was graded"]


def test_deleted_solution_cell_keeps_the_stub(course):
    template = released(course)
    student = student_nb(course, {"conv_output_size": SIZE_RIGHT})
    student.cells = [c for c in student.cells if rebuild.grade_id(c) != "conv_forward_naive"]
    nb, sources, notes = _rebuild(template, student)
    stub = next(c for c in nb.cells if rebuild.grade_id(c) == "conv_forward_naive")
    assert "NotImplementedError" in stub.source
    assert "conv_forward_naive" not in sources
    assert any("'conv_forward_naive' was not found" in n for n in notes)


def test_a_markdown_cell_with_the_grade_id_is_not_code(course):
    template = released(course)
    student = student_nb(course, {"conv_output_size": SIZE_RIGHT})
    cell = next(c for c in student.cells if rebuild.grade_id(c) == "conv_output_size")
    markdown = nbformat.v4.new_markdown_cell(SIZE_WRONG)
    markdown.metadata = copy.deepcopy(cell.metadata)
    student.cells.insert(0, markdown)
    _, sources, notes = _rebuild(template, student)
    assert sources["conv_output_size"] == SIZE_RIGHT  # the code cell with that id still answers
    assert notes == []
    student.cells = [c for c in student.cells if c is not cell]  # only the markdown copy is left
    _, sources, notes = _rebuild(template, student)
    assert "conv_output_size" not in sources
    assert any("markdown cell" in n and "no cell defines conv_output_size" in n for n in notes)


@pytest.mark.parametrize("data, reason", [
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "not a notebook"),
    (b"\xff\xfe\x00garbage", "not UTF-8"),
    (b'{"cells": 5, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}', "nbformat"),
    (b'{"cells": ' + b"[" * 200_000 + b"]" * 200_000 + b"}", "nested far deeper"),  # past the parser's depth
])
def test_unreadable_notebooks_say_why(data, reason):
    with pytest.raises(rebuild.NotebookUnreadable, match=reason):
        rebuild.read_submitted(data)


def test_oversized_notebook_is_refused():
    with pytest.raises(rebuild.NotebookUnreadable, match="MB"):
        rebuild.read_submitted(b" " * (rebuild.MAX_NOTEBOOK_BYTES + 1))


def test_nbformat_v3_is_converted(course):
    from nbformat import v3

    template = released(course)
    old = v3.new_notebook(worksheets=[v3.new_worksheet(cells=[
        v3.new_code_cell(input=SIZE_RIGHT, metadata={"nbgrader": {"grade_id": "conv_output_size", "solution": True}}),
    ])])
    data = json.dumps(old).encode()
    nb = rebuild.read_submitted(data)
    assert nb.nbformat == 4
    _, sources, _ = _rebuild(template, nb)
    assert sources == {"conv_output_size": SIZE_RIGHT}


def test_list_sources_are_joined(course):
    template = released(course)
    raw = json.loads(nbformat.writes(student_nb(course, {"conv_output_size": SIZE_RIGHT})))
    nb = rebuild.read_submitted(json.dumps(raw).encode())
    _, sources, _ = _rebuild(template, nb)
    assert sources["conv_output_size"] == SIZE_RIGHT


def test_match_notebooks():
    assert rebuild.match_notebooks(["conv.ipynb"], {"conv.ipynb": b"", "other.ipynb": b""}) == ({"conv.ipynb": "conv.ipynb"}, [])
    chosen, notes = rebuild.match_notebooks(["conv.ipynb"], {"sub/conv.ipynb": b"", "data.npz": b""})
    assert chosen == {"conv.ipynb": "sub/conv.ipynb"} and notes == []
    chosen, notes = rebuild.match_notebooks(["conv.ipynb"], {"conv (1).ipynb": b"", ".ipynb_checkpoints/x.ipynb": b""})
    assert chosen == {"conv.ipynb": "conv (1).ipynb"} and "graded in its place" in notes[0]
    chosen, _ = rebuild.match_notebooks(["conv.ipynb"], {"a.ipynb": b"", "b.ipynb": b""})
    assert chosen == {"conv.ipynb": None}
    assert rebuild.match_notebooks(["conv.ipynb"], {})[0] == {"conv.ipynb": None}


def test_visible_test_source_drops_hidden_block():
    src = "check('a', cases=[{}])\n### BEGIN HIDDEN TESTS\ncheck('a', cases=[{'seed': 3}])\n### END HIDDEN TESTS\n# end\n"
    assert rebuild.visible_test_source(src) == "check('a', cases=[{}])\n# end\n"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(
        ["cells", "metadata", "nbgrader", "grade_id", "solution", "grade", "source", "cell_type", "x"]), inner, max_size=4),
    max_leaves=12)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cells=st.lists(json_values, max_size=4), top=st.dictionaries(st.sampled_from(["metadata", "nbformat", "x"]), json_values, max_size=2))
def test_any_json_is_read_or_refused_never_crashes(course, cells, top):
    template = released(course)
    doc = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, **top, "cells": cells}
    try:
        nb = rebuild.read_submitted(json.dumps(doc).encode())
    except rebuild.NotebookUnreadable:
        return
    built, sources, notes = _rebuild(template, nb)
    assert len(built.cells) == len(template.cells)
    assert set(sources) <= {"conv_output_size", "conv_forward_naive"}
    assert all(isinstance(v, str) for v in sources.values())
