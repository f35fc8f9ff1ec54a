"""A tiny course for the coordinator's tests: one or two assignments with real checks.

``make_course(root)`` writes ``solutions/`` (nbgrader source notebooks with visible and hidden
``check`` calls) and releases ``assignments/`` with ``cs231n-grade release``'s code;
``write_submission`` writes a student's notebook with chosen solution-cell sources.
"""

import copy
import shutil
import tempfile
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from autograder import course

SIZE_SOLUTION = "def conv_output_size(W, F, S, P):\n    ### BEGIN SOLUTION\n    return (W - F + 2 * P) // S + 1\n    ### END SOLUTION\n"
SIZE_TEST = (
    'check("conv_output_size", cases=[{"W": 10, "F": 3, "S": 1, "P": 0}])\n'
    "### BEGIN HIDDEN TESTS\n"
    'check("conv_output_size", cases=[{"W": 7, "F": 3, "S": 2, "P": 1, "seed": 4242}])\n'
    "### END HIDDEN TESTS\n"
)
FORWARD_SOLUTION = (
    "def conv_forward_naive(x, w, b, conv_param):\n"
    "    ### BEGIN SOLUTION\n"
    "    from cs231n_lib import conv_forward\n"
    "    return conv_forward(x, w, b, conv_param)\n"
    "    ### END SOLUTION\n"
)
FORWARD_TEST = (
    'check("conv_forward_naive", cases=[{"x": (1, 1, 4, 4), "w": (1, 1, 3, 3), "stride": 1, "pad": 0, "seed": 0}])\n'
    "### BEGIN HIDDEN TESTS\n"
    'check("conv_forward_naive", cases=[{"x": (2, 2, 5, 5), "w": (3, 2, 3, 3), "stride": 2, "pad": 1, "seed": 9137}])\n'
    "### END HIDDEN TESTS\n"
)

# correct student code, written differently from the reference
SIZE_RIGHT = "def conv_output_size(W, F, S, P):\n    span = W + 2 * P - F\n    return span // S + 1\n"
SIZE_WRONG = "def conv_output_size(W, F, S, P):\n    return (W - F) // S + 1  # WRONG: forgot the padding\n"
FORWARD_RIGHT = (
    "import numpy as np\n\n"
    "def conv_forward_naive(x, w, b, conv_param):\n"
    "    s, p = conv_param['stride'], conv_param['pad']\n"
    "    N, C, H, W = x.shape\n"
    "    F, _, HH, WW = w.shape\n"
    "    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))\n"
    "    Ho, Wo = (H + 2 * p - HH) // s + 1, (W + 2 * p - WW) // s + 1\n"
    "    out = np.zeros((N, F, Ho, Wo), dtype=x.dtype)\n"
    "    for n in range(N):\n"
    "        for f in range(F):\n"
    "            for i in range(Ho):\n"
    "                for j in range(Wo):\n"
    "                    out[n, f, i, j] = np.sum(xp[n, :, i*s:i*s+HH, j*s:j*s+WW] * w[f]) + b[f]\n"
    "    return out, (x, w, b, conv_param)\n"
)


def _cell(source, **nbgrader):
    cell = new_code_cell(source)
    meta = {"schema_version": 3, "grade": False, "solution": False, "locked": False}
    meta.update(nbgrader)
    cell.metadata["nbgrader"] = meta
    return cell


def source_notebook(with_forward=True):
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        new_markdown_cell("# Toy assignment\nOutput sizes and a naive convolution."),
        _cell("import numpy as np\nfrom cs231n_checks import check", grade_id="setup", locked=True),
        _cell(SIZE_SOLUTION, grade_id="conv_output_size", solution=True),
        _cell(SIZE_TEST, grade_id="test_conv_output_size", grade=True, locked=True, points=2),
    ]
    if with_forward:
        nb.cells += [
            _cell(FORWARD_SOLUTION, grade_id="conv_forward_naive", solution=True),
            _cell(FORWARD_TEST, grade_id="test_conv_forward_naive", grade=True, locked=True, points=3),
        ]
    return nb


def make_course(root, assignments=("toy",)):
    """Write a course with ``assignments`` (each one notebook named after it) and release it."""
    root = Path(root)
    for i, name in enumerate(assignments):
        folder = root / "solutions" / name
        folder.mkdir(parents=True, exist_ok=True)
        nbformat.write(source_notebook(with_forward=(i == 0)), str(folder / f"{name}.ipynb"))
    course.release(root, quiet=True)
    return root


_BUILT = {}


def course_copy(dest, assignments=("toy",)):
    """A released toy course at ``dest``, built once per test process and copied (release is slow)."""
    key = tuple(assignments)
    if key not in _BUILT:
        _BUILT[key] = make_course(Path(tempfile.mkdtemp(prefix="toycourse-")) / "repo", assignments)
    shutil.copytree(_BUILT[key], dest)
    return Path(dest)


def student_notebook(root, assignment, sources):
    """The released notebook of ``assignment`` with solution cells replaced (grade_id -> source)."""
    nb = nbformat.read(str(Path(root) / "assignments" / assignment / f"{assignment}.ipynb"), as_version=4)
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in sources:
            cell.source = sources[gid]
    return nb


def write_submission(subs_root, root, student, assignment, sources, layout="folder"):
    """Write a student's submission; ``layout`` "folder" (nbgrader) or "loose" (no assignment folder)."""
    nb = student_notebook(root, assignment, sources)
    folder = Path(subs_root) / student / (assignment if layout == "folder" else "")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{assignment}.ipynb"
    nbformat.write(nb, str(path))
    return path


CLASS = {
    "alice": {"conv_output_size": SIZE_RIGHT, "conv_forward_naive": FORWARD_RIGHT},
    "bob": {"conv_output_size": SIZE_WRONG, "conv_forward_naive": FORWARD_RIGHT},
    "carol": {"conv_output_size": SIZE_RIGHT},
}


def make_class(subs_root, root, students=CLASS, assignment="toy"):
    for student, sources in students.items():
        write_submission(subs_root, root, student, assignment, sources)
    return Path(subs_root)
