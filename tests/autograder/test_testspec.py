"""Reading check(...) calls out of test cells without running them."""

import pytest

from autograder.testspec import CheckSpecError, hidden_test_regions, parse_test_cell, without_solution_markers

CELL = '''# conv_forward_naive: 3 points
check("conv_forward_naive", cases=[
    {"x": (2, 3, 4, 4), "w": (3, 3, 4, 4), "stride": 2, "pad": 1, "seed": 0},
])
### BEGIN HIDDEN TESTS
check("conv_forward_naive", cases=[
    {"x": (3, 2, 7, 5), "w": (4, 2, 3, 3), "stride": 2, "pad": 1, "seed": 11, "dtype": "float32"},
    {"x": (1, 1, 5, 5), "w": (1, 1, 5, 5), "stride": 1, "pad": 0, "seed": 12},
])
### END HIDDEN TESTS
'''


def test_visible_and_hidden_calls_are_separated_in_source_order():
    calls = parse_test_cell(CELL)
    assert [(c.name, c.hidden, len(c.cases)) for c in calls] == [
        ("conv_forward_naive", False, 1),
        ("conv_forward_naive", True, 2),
    ]
    assert calls[1].cases[0]["x"] == (3, 2, 7, 5) and calls[1].cases[0]["dtype"] == "float32"


def test_a_cell_without_hidden_block_has_only_visible_calls():
    calls = parse_test_cell(CELL.split("### BEGIN")[0])
    assert len(calls) == 1 and not calls[0].hidden


def test_non_literal_arguments_are_refused_without_running_anything():
    with pytest.raises(CheckSpecError, match="literals"):
        parse_test_cell('check("f", cases=[dict(seed=__import__("os").getpid())])', "cell 7")


def test_malformed_python_names_the_cell():
    with pytest.raises(CheckSpecError, match="cell 3"):
        parse_test_cell("check(", "cell 3")


def test_wrong_argument_types_are_explained():
    with pytest.raises(CheckSpecError, match="expected check"):
        parse_test_cell('check("f", cases={"seed": 1})')


def test_hidden_test_regions_mark_each_line():
    source = "a\n  ### BEGIN HIDDEN TESTS\nb\n### END HIDDEN TESTS\nc\n### BEGIN HIDDEN TESTS\nd"
    assert [(n, where) for n, _, where in hidden_test_regions(source)] == [
        (1, "visible"), (2, "begin"), (3, "hidden"), (4, "end"), (5, "visible"), (6, "begin"), (7, "hidden")]


def test_a_check_after_an_unclosed_hidden_marker_stays_visible():
    calls = parse_test_cell('### BEGIN HIDDEN TESTS\ncheck("f", cases=[{}])\n')
    assert len(calls) == 1 and not calls[0].hidden


def test_without_solution_markers_keeps_everything_else():
    source = "def f(x):\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION\n# BEGIN SOLUTION is text here"
    assert without_solution_markers(source) == "def f(x):\n    return x\n# BEGIN SOLUTION is text here"
