"""Build the class of common mistakes: ``examples/mistakes/submissions/`` and ``expected.json``.

    .venv/bin/python examples/build_mistakes.py      # after `cs231n-grade release`

Each student hands in the instructor's own solution with ONE mistake that students really make
(``dx_pad[:, :, pad:-pad, pad:-pad]``, ``=`` for ``+=`` in max pooling, running averages never
updated, ...), written into the released notebook with nbformat. ``expected.json`` says, per
student, the test that must lose points and the diagnosis its feedback must give, on a visible
case and (where the hidden cases show the mistake) on a hidden one; one student keeps the
running averages with ``keepdims=True``, which the shape policy accepts with a note.
``tests/autograder/test_mistake_class.py`` grades the class with the real engine and checks it.
"""

import json
import shutil
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autograder.checks import batchnorm as bn  # noqa: E402
from autograder.checks import convolution as conv  # noqa: E402
from autograder.checks import im2col as cols  # noqa: E402
from autograder.checks import pooling as pool  # noqa: E402
from autograder.testspec import without_solution_markers  # noqa: E402
from cs231n_checks.convolution import FLOAT_SIZE  # noqa: E402
from cs231n_checks.pooling import TIES_TO_ALL  # noqa: E402

OUT = ROOT / "examples" / "mistakes" / "submissions"
EXPECTED = ROOT / "examples" / "mistakes" / "expected.json"
CROP = "dx = dx_pad[:, :, pad:pad + H, pad:pad + W]"
TO_MAX = "dx[n, c, i * S + p, j * S + q] += dout[n, c, i, j]"
UPDATES = ("        running_mean = momentum * running_mean + (1 - momentum) * mean\n"
           "        running_var = momentum * running_var + (1 - momentum) * var\n")

#: student -> (assignment, solution cell, [(old, new)], test cell, diagnosis, shown on hidden cases)
MISTAKES = {
    "pad_minus_pad": ("convolution", "conv_backward_naive", [(CROP, "dx = dx_pad[:, :, pad:-pad, pad:-pad]")],
                      "test_conv_backward_naive", conv.CROP_EMPTY, True),
    "one_minus_one": ("convolution", "conv_backward_naive", [(CROP, "dx = dx_pad[:, :, 1:-1, 1:-1]")],
                      "test_conv_backward_naive", conv.CROP_ONE, True),
    "no_padding": ("convolution", "conv_forward_naive",
                   [("x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))", "x_pad = x"),
                    ("H_out = conv_output_size(H, span_h, stride, pad)", "H_out = (H - span_h) // stride + 1"),
                    ("W_out = conv_output_size(W, span_w, stride, pad)", "W_out = (W - span_w) // stride + 1")],
                   "test_conv_forward_naive", conv.PAD_MISSING, True),
    "true_division": ("convolution", "conv_output_size", [("return span // S + 1", "return span / S + 1")],
                      "test_conv_output_size", FLOAT_SIZE, True),
    "assigns_overlaps": ("pooling", "max_pool_backward_naive", [(TO_MAX, TO_MAX.replace("+=", "="))],
                         "test_max_pool_backward_naive", pool.ASSIGN_OVERLAP, True),
    "every_maximum": ("pooling", "max_pool_backward_naive",
                      [("p, q = divmod(int(np.argmax(window)), PW)", "p = q = 0"),
                       (TO_MAX, "dx[n, c, i * S:i * S + PH, j * S:j * S + PW] += (window == window.max()) * dout[n, c, i, j]")],
                      "test_max_pool_backward_naive", TIES_TO_ALL, True),
    "fold_assigns": ("im2col", "col2im", [("j:j + stride * W_out:stride] +=", "j:j + stride * W_out:stride] =")],
                     "test_col2im", cols.ASSIGN_FOLD, True),
    "stale_averages": ("batchnorm", "batchnorm_forward", [(UPDATES, "")],
                       "test_batchnorm_forward", bn.NOT_UPDATED, True),
    "eps_outside": ("batchnorm", "batchnorm_forward", [("std = np.sqrt(var + eps)", "std = np.sqrt(var) + eps")],
                    "test_batchnorm_forward", bn.EPS_OUTSIDE_SQRT, True),
    "keeps_dims": ("batchnorm", "batchnorm_forward",
                   [("mean = x.mean(axis=0)", "mean = x.mean(axis=0, keepdims=True)"),
                    ("var = (x_centered ** 2).mean(axis=0)", "var = (x_centered ** 2).mean(axis=0, keepdims=True)")],
                   "test_batchnorm_forward", None, False),
}


def solution_sources(assignment):
    """The instructor's solution cells without the BEGIN/END SOLUTION markers, by grade_id."""
    nb = nbformat.read(str(ROOT / "solutions" / assignment / f"{assignment}.ipynb"), as_version=4)
    return {c.metadata["nbgrader"]["grade_id"]: without_solution_markers(c.source) + "\n"
        for c in nb.cells if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("solution")}


def build(out=OUT, expected_path=EXPECTED):
    out, expected_path = Path(out), Path(expected_path)
    if out.exists():
        shutil.rmtree(out)
    expected = {}
    for student, (assignment, cell, edits, test, diagnosis, hidden) in MISTAKES.items():
        sources = solution_sources(assignment)
        for old, new in edits:
            if old not in sources[cell]:
                raise SystemExit(f"{student}: the solution of {cell} no longer holds {old!r}: update build_mistakes.py")
            sources[cell] = sources[cell].replace(old, new)
        nb = nbformat.read(str(ROOT / "assignments" / assignment / f"{assignment}.ipynb"), as_version=4)
        for c in nb.cells:
            gid = c.metadata.get("nbgrader", {}).get("grade_id")
            if c.metadata.get("nbgrader", {}).get("solution") and gid in sources:
                c.source = sources[gid]
        folder = out / student / assignment
        folder.mkdir(parents=True)
        nbformat.write(nb, str(folder / f"{assignment}.ipynb"))
        expected[student] = {"assignment": assignment, "mistake_in": cell, "test": test, "diagnosis": diagnosis,
                             "named_on_hidden_cases": hidden}
    expected_path.write_text(json.dumps({"about": "one planted mistake per student: the test that loses points "
                                                  "and the diagnosis its feedback gives (null: none lost)",
                                         "students": expected}, indent=1, ensure_ascii=False) + "\n")
    return expected


if __name__ == "__main__":
    built = build()
    print(f"wrote {len(built)} students to {OUT} and their diagnoses to {EXPECTED}")
