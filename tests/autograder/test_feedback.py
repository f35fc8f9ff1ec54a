"""The last guard before a feedback page is handed out: ``feedback.leaks`` finds hidden-test
material in a page, including each hidden case as the feedback would render it."""

import html

import nbformat
from autograder_testkit import source_notebook
from nbformat.v4 import new_markdown_cell

from autograder import feedback

# The fixture course's hidden cases, as ``describe`` renders them
HIDDEN = ["W=32, F=5, S=1, P=2", "W=10, F=3, S=2, P=0",
          "x (3, 2, 7, 5), w (4, 2, 3, 3), stride=2, pad=1, float32",
          "x (1, 2, 6, 6), w (2, 2, 3, 3), stride=1, pad=1, float64"]


def _write(tmp_path, nb):
    path = tmp_path / "conv.ipynb"
    nbformat.write(nb, str(path))
    return path


def _page(*lines):
    """A feedback page as nbgrader renders one: text in HTML, escaped, inside tags."""
    body = "".join(f"<div class='output_text'><pre>{html.escape(line)}</pre></div>" for line in lines)
    return f"<html><body>{body}</body></html>"


def test_hidden_cases_are_found_as_the_feedback_renders_them(tmp_path):
    source = _write(tmp_path, source_notebook())
    assert feedback.hidden_descriptions(source) == sorted(HIDDEN)
    for description in HIDDEN:
        line = f"case 3 (hidden; conv_output_size: {description}): WRONG"
        assert feedback.leaks(_page("test_conv_output_size: 1 / 2 points", line), source) == \
            [f"hidden case {description}"]


def test_what_a_page_may_show_is_no_leak(tmp_path):
    source = _write(tmp_path, source_notebook())
    page = _page("case 1 (visible; conv_output_size: W=10, F=3, S=1, P=0): PASSED",
                 "case 3 (conv_output_size, hidden case 1): WRONG", "    size: wrong values",
                 "W=132, F=5, S=1, P=2", "W=32, F=5, S=1, P=25")  # other numbers, not the hidden case
    assert feedback.leaks(page, source) == []


def test_a_hidden_case_in_the_students_own_code_is_counted_once(tmp_path):
    source = _write(tmp_path, source_notebook())
    mine = ["print(conv_output_size(32, 5, 1, 2))  # W=32, F=5, S=1, P=2\n"]
    shown_once = _page(mine[0])
    assert feedback.leaks(shown_once, source) == ["hidden case W=32, F=5, S=1, P=2"]
    assert feedback.leaks(shown_once, source, mine) == []
    shown_twice = _page(mine[0], "case 3 (hidden; conv_output_size: W=32, F=5, S=1, P=2): WRONG")
    assert feedback.leaks(shown_twice, source, mine) == ["hidden case W=32, F=5, S=1, P=2"]


def test_a_hidden_case_the_notebook_itself_shows_is_not_looked_for(tmp_path):
    nb = source_notebook(extra_cells=[new_markdown_cell("For example W=32, F=5, S=1, P=2 gives 32.")])
    source = _write(tmp_path, nb)
    assert "W=32, F=5, S=1, P=2" not in feedback.hidden_descriptions(source)
    assert "W=10, F=3, S=2, P=0" in feedback.hidden_descriptions(source)


def test_hidden_seeds_and_source_lines_are_still_found(tmp_path):
    source = _write(tmp_path, source_notebook())
    found = feedback.leaks(_page('check("conv_output_size", cases=[{"W": 32, "F": 5, "S": 1, "P": 2}, '
                                 '{"W": 10, "F": 3, "S": 2, "P": 0}])', 'seed=11'), source)
    assert any(f.startswith("check(") for f in found) and "seed 11" in found
