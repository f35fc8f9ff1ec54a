"""Read the graded checks out of a test cell's source, without executing it; the nbgrader markers.

The grader runs this on the instructor's source notebook only (never on a student's copy): each
``check("name", cases=[...])`` call becomes a ``CheckCall`` with its cases, marked hidden when
it sits between ``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS``. Only literals are
accepted, so reading a test cell can never run code.

This is also the one place that knows nbgrader's markers (``BEGIN_SOLUTION`` / ``END_SOLUTION``
around a solution, ``BEGIN_HIDDEN`` / ``END_HIDDEN`` around hidden tests) and reads them:
``hidden_test_regions`` and ``without_solution_markers``.
"""

import ast
from dataclasses import dataclass

BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
BEGIN_HIDDEN = "### BEGIN HIDDEN TESTS"
END_HIDDEN = "### END HIDDEN TESTS"


def hidden_test_regions(source):
    """Each line of ``source`` with where it stands among the hidden-test markers.

    Yields ``(number, line, where)``: ``number`` from 1, ``where`` one of "begin" and "end" (a
    marker line, compared stripped), "hidden" (after a begin marker, before its end) or
    "visible". After a begin marker that is never closed, every line is "hidden".
    """
    inside = False
    for number, line in enumerate(source.splitlines(), 1):
        stripped = line.strip()
        if stripped == BEGIN_HIDDEN:
            inside = True
            yield number, line, "begin"
        elif stripped == END_HIDDEN:
            inside = False
            yield number, line, "end"
        else:
            yield number, line, "hidden" if inside else "visible"


def without_solution_markers(source):
    """``source`` (a solution cell of the instructor's notebook) without its solution marker lines."""
    return "\n".join(line for line in source.splitlines() if line.strip() not in (BEGIN_SOLUTION, END_SOLUTION))


class CheckSpecError(ValueError):
    """An instructor's test cell that the grader cannot read."""


@dataclass(frozen=True)
class CheckCall:
    name: str
    cases: tuple
    hidden: bool
    line: int = 0


def _hidden_line_ranges(source):
    """(begin, end) line numbers of each closed hidden block: a check after an unclosed begin
    marker stays visible (nbgrader refuses to release such a cell anyway)."""
    ranges, start = [], None
    for number, _, where in hidden_test_regions(source):
        if where == "begin":
            start = number
        elif where == "end" and start is not None:
            ranges.append((start, number))
            start = None
    return ranges


def parse_test_cell(source, cell_label="test cell"):
    """Return the list of ``CheckCall`` found in ``source``, in source order.

    Raises ``CheckSpecError`` naming the cell when a ``check`` call is not made of literals.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise CheckSpecError(f"{cell_label}: not valid Python ({exc.msg}, line {exc.lineno})") from None
    hidden_ranges = _hidden_line_ranges(source)
    calls = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "check"):
            continue
        try:
            name = ast.literal_eval(node.args[0]) if node.args else None
            cases_node = next((k.value for k in node.keywords if k.arg == "cases"), None)
            if cases_node is None and len(node.args) > 1:
                cases_node = node.args[1]
            cases = ast.literal_eval(cases_node) if cases_node is not None else None
        except ValueError:
            raise CheckSpecError(f"{cell_label}, line {node.lineno}: check(...) arguments must be literals") from None
        if not isinstance(name, str) or not isinstance(cases, list) or not all(isinstance(c, dict) for c in cases):
            raise CheckSpecError(f"{cell_label}, line {node.lineno}: expected check('name', cases=[{{...}}, ...])")
        hidden = any(a <= node.lineno <= b for a, b in hidden_ranges)
        calls.append(CheckCall(name, tuple(cases), hidden, node.lineno))
    calls.sort(key=lambda c: c.line)
    return calls
