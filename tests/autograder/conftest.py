"""Fixture courses for the grading engine's tests (and the coordinator's).

``write_course(root)`` writes a small course into ``root``: ``solutions/conv/conv.ipynb`` (an
nbgrader source notebook: markdown, a locked setup cell, two solution cells, two test cells with
visible and hidden ``check`` calls, a cell the grader skips and an ordinary code cell) and
releases ``assignments/conv/`` with nbgrader's generate_assignment (``autograder.course.release``).
``submission(root, sources)`` returns the bytes of a student's notebook: the released notebook
with chosen solution-cell sources.

Test modules import the helpers as ``from autograder_testkit import ...`` (this module is
registered under that name: several folders hold a ``conftest.py``).

Fixtures: ``course`` (a released course, built once per session, read-only by convention),
``course_factory`` (builds a fresh course in a tmp folder with options).
"""

import copy
import json
import shutil
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ASSIGNMENT = "conv"

SIZE_SOLUTION = (
    "def conv_output_size(W, F, S, P):\n"
    '    """Output width of a convolution."""\n'
    "    ### BEGIN SOLUTION\n"
    "    span = W - F + 2 * P\n"
    "    if span < 0 or span % S:\n"
    "        raise ValueError(f'(W - F + 2P)/S + 1 is not an integer for W={W}, F={F}, S={S}, P={P}')\n"
    "    return span // S + 1\n"
    "    ### END SOLUTION\n"
)
SIZE_TEST = (
    "# conv_output_size: 2 points\n"
    'check("conv_output_size", cases=[{"W": 10, "F": 3, "S": 1, "P": 0}, {"W": 7, "F": 3, "S": 2, "P": 1}])\n'
    "### BEGIN HIDDEN TESTS\n"
    'check("conv_output_size", cases=[{"W": 32, "F": 5, "S": 1, "P": 2}, {"W": 10, "F": 3, "S": 2, "P": 0}])\n'
    "### END HIDDEN TESTS\n"
)
FORWARD_SOLUTION = (
    "def conv_forward_naive(x, w, b, conv_param):\n"
    '    """Naive convolution: loops over images, filters and output positions."""\n'
    "    ### BEGIN SOLUTION\n"
    "    stride, pad = conv_param['stride'], conv_param['pad']\n"
    "    N, C, H, W = x.shape\n"
    "    F, _, HH, WW = w.shape\n"
    "    Hout = conv_output_size(H, HH, stride, pad)\n"
    "    Wout = conv_output_size(W, WW, stride, pad)\n"
    "    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))\n"
    "    out = np.zeros((N, F, Hout, Wout), dtype=x.dtype)\n"
    "    for n in range(N):\n"
    "        for f in range(F):\n"
    "            for i in range(Hout):\n"
    "                for j in range(Wout):\n"
    "                    patch = xp[n, :, i * stride:i * stride + HH, j * stride:j * stride + WW]\n"
    "                    out[n, f, i, j] = np.sum(patch * w[f]) + b[f]\n"
    "    ### END SOLUTION\n"
    "    return out, (x, w, b, conv_param)\n"
)
FORWARD_TEST = (
    "# conv_forward_naive: 3 points\n"
    'check("conv_forward_naive", cases=[\n'
    '    {"x": (2, 3, 4, 4), "w": (3, 3, 4, 4), "stride": 2, "pad": 1, "seed": 0},\n'
    '    {"x": (1, 1, 5, 5), "w": (1, 1, 3, 3), "stride": 1, "pad": 0, "seed": 1},\n'
    "])\n"
    "### BEGIN HIDDEN TESTS\n"
    'check("conv_forward_naive", cases=[\n'
    '    {"x": (3, 2, 7, 5), "w": (4, 2, 3, 3), "stride": 2, "pad": 1, "seed": 11, "dtype": "float32"},\n'
    '    {"x": (1, 2, 6, 6), "w": (2, 2, 3, 3), "stride": 1, "pad": 1, "seed": 12},\n'
    "])\n"
    "### END HIDDEN TESTS\n"
)
# A plotting/timing cell the grader must not run: if it ran, the size check below would fail.
SKIPPED_CELL = "conv_output_size = None  # stands for a slow demo; must not run at grading\n"
DEMO_CELL = "demo_size = conv_output_size(10, 3, 1, 0)\nprint('demo size', demo_size)\n"

# Student answers, written differently from the reference
SIZE_RIGHT = "def conv_output_size(W, F, S, P):\n    if (W + 2 * P - F) % S:\n        raise ValueError('bad')\n    return (W + 2 * P - F) // S + 1\n"
SIZE_WRONG = "def conv_output_size(W, F, S, P):\n    return (W - F) // S + 1  # forgot the padding\n"
FORWARD_RIGHT = (
    "def conv_forward_naive(x, w, b, conv_param):\n"
    "    s, p = conv_param['stride'], conv_param['pad']\n"
    "    N, C, H, W = x.shape\n"
    "    F, _, HH, WW = w.shape\n"
    "    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))\n"
    "    Ho, Wo = (H + 2 * p - HH) // s + 1, (W + 2 * p - WW) // s + 1\n"
    "    out = np.zeros((N, F, Ho, Wo), dtype=x.dtype)\n"
    "    for i in range(Ho):\n"
    "        for j in range(Wo):\n"
    "            window = xp[:, :, i*s:i*s+HH, j*s:j*s+WW]\n"
    "            out[:, :, i, j] = np.tensordot(window, w, axes=([1, 2, 3], [1, 2, 3])) + b\n"
    "    return out, (x, w, b, conv_param)\n"
)
FORWARD_NO_BIAS = FORWARD_RIGHT.replace(" + b\n", "\n")


def _meta(**nbgrader):
    meta = {"schema_version": 3, "grade": False, "solution": False, "locked": False, "task": False}
    meta.update(nbgrader)
    return meta


def code(source, **nbgrader):
    cell = new_code_cell(source)
    if nbgrader:
        cell.metadata["nbgrader"] = _meta(**nbgrader)
    return cell


def source_notebook(extra_cells=()):
    """The instructor's notebook of the fixture assignment (solutions and hidden tests included)."""
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    skipped = code(SKIPPED_CELL)
    skipped.metadata["cs231n"] = {"grading": "skip"}
    nb.cells = [
        new_markdown_cell("# Convolution\nOutput sizes, then a naive forward pass."),
        code("import numpy as np\nfrom cs231n_checks import check\nimport cs231n_lib\n", grade_id="setup", locked=True),
        code(SIZE_SOLUTION, grade_id="conv_output_size", solution=True),
        skipped,
        code(SIZE_TEST, grade_id="test_conv_output_size", grade=True, locked=True, points=2),
        code(DEMO_CELL),
        code(FORWARD_SOLUTION, grade_id="conv_forward_naive", solution=True),
        code(FORWARD_TEST, grade_id="test_conv_forward_naive", grade=True, locked=True, points=3),
        *extra_cells,
    ]
    return nb


def write_course(root, assignment=ASSIGNMENT, notebook=None, data_files=None):
    """Write ``solutions/<assignment>/<assignment>.ipynb`` under ``root`` and release it with nbgrader.

    Inputs:
    - root: the course folder (created)
    - notebook: the source notebook (default ``source_notebook()``)
    - data_files: {relative path: bytes} released with the assignment
    Returns ``Path(root)``.
    """
    from autograder import course

    root = Path(root)
    folder = root / "solutions" / assignment
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook or source_notebook(), str(folder / f"{assignment}.ipynb"))
    for rel, data in (data_files or {}).items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    course.release(root, [assignment], quiet=True)
    return root


def released(root, assignment=ASSIGNMENT):
    return nbformat.read(str(Path(root) / "assignments" / assignment / f"{assignment}.ipynb"), as_version=4)


def student_nb(root, sources, assignment=ASSIGNMENT):
    """The released notebook with solution cells replaced ({grade_id: source})."""
    nb = copy.deepcopy(released(root, assignment))
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in sources:
            cell.source = sources[gid]
    return nb


def submission(root, sources, assignment=ASSIGNMENT):
    """``{"<assignment>.ipynb": bytes}`` of a student's notebook with ``sources``."""
    return {f"{assignment}.ipynb": nbformat.writes(student_nb(root, sources, assignment)).encode()}


RIGHT = {"conv_output_size": SIZE_RIGHT, "conv_forward_naive": FORWARD_RIGHT}


@pytest.fixture(scope="session")
def course(tmp_path_factory):
    """A released fixture course (shared: do not modify it)."""
    return write_course(tmp_path_factory.mktemp("course") / "repo")


@pytest.fixture
def course_factory(tmp_path):
    def make(**kwargs):
        root = tmp_path / f"course{len(list(tmp_path.iterdir()))}"
        return write_course(root, **kwargs)

    return make


def dump(obj):
    return json.dumps(obj, indent=1, sort_keys=True, default=str)


def copy_course(src, dst):
    shutil.copytree(src, dst)
    return Path(dst)


sys.modules.setdefault("autograder_testkit", sys.modules[__name__])
