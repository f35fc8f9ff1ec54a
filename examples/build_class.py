"""Build the sample class: ``examples/submissions/`` and ``examples/expected.json``.

    .venv/bin/python examples/build_class.py      # after `cs231n-grade release`

Every submission is the released notebook (``assignments/``) with solution cells replaced by a
student's code, written with nbformat. The class has complete, partial, untouched, broken and
hostile submissions (most on the ``convolution`` assignment, the first of the course), so that
the demo and the tests see every path of the grader. Each student's expected outcome per test
(score and case outcomes) is derived here from what their code does, case by case, using the
case lists of the instructor's notebook and ``cs231n_lib`` only to tell valid from invalid
settings: it does not run the grader. Re-run the script after the notebooks change.

Hostile code is bounded on purpose: the fork loop makes 300 short-lived children, the memory
"bomb" asks for address space in 1 GB blocks without touching it (it stops at the sandbox's
memory cap, or after 64 blocks where there is none), the output flood is 200 MB of text.
"""

import copy
import json
import re
import shutil
import sys
import zipfile
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autograder.engine import answer_digest  # noqa: E402
sys.path.insert(0, str(ROOT / "examples"))
import editor_shapes  # noqa: E402
from autograder.testspec import parse_test_cell, without_solution_markers  # noqa: E402
from cs231n_checks.validate import is_optional_test  # noqa: E402

OUT = ROOT / "examples" / "submissions"
EXPECTED = ROOT / "examples" / "expected.json"
CONV = "convolution"

# ------------------------------------------------------------------------------------------
# Student code: independent ways to write the convolution functions

SIZE_A = '''def conv_output_size(W, F, S=1, P=0):
    covered = W + 2 * P - F
    if covered < 0 or covered % S:
        raise ValueError(f"a {F}-wide filter with stride {S} does not tile {W} + 2*{P} inputs")
    return 1 + covered // S
'''
SIZE_C = '''def conv_output_size(W, F, S=1, P=0):
    if W + 2 * P < F:
        raise ValueError("the filter is wider than the padded input")
    steps, rest = divmod(W - F + 2 * P, S)
    if rest != 0:
        raise ValueError("the filter positions do not fit the padded input exactly")
    return steps + 1
'''
# no validity check: right on valid settings, wrong where the library raises ValueError
SIZE_B = '''def conv_output_size(W, F, S=1, P=0):
    return (W - F + 2 * P) // S + 1
'''

FORWARD_A = '''def conv_forward_naive(x, w, b, conv_param):
    stride, pad = conv_param["stride"], conv_param["pad"]
    dil = conv_param.get("dilation", 1)
    n_img, _, height, width = x.shape
    n_filt, _, fh, fw = w.shape
    reach_h, reach_w = dil * (fh - 1) + 1, dil * (fw - 1) + 1
    out_h = conv_output_size(height, reach_h, stride, pad)
    out_w = conv_output_size(width, reach_w, stride, pad)
    padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode="constant")
    out = np.empty((n_img, n_filt, out_h, out_w), dtype=x.dtype)
    for r in range(out_h):
        for c in range(out_w):
            window = padded[:, :, r * stride:r * stride + reach_h:dil, c * stride:c * stride + reach_w:dil]
            out[:, :, r, c] = np.tensordot(window, w, axes=([1, 2, 3], [1, 2, 3])) + b
    return out, (x, w, b, conv_param)
'''
# ignores conv_param['dilation']: right without dilation, wrong shape with it
FORWARD_C = '''def conv_forward_naive(x, w, b, conv_param):
    s = conv_param["stride"]
    p = conv_param["pad"]
    N, C, H, W = x.shape
    F, C, HH, WW = w.shape
    Hn = 1 + (H + 2 * p - HH) // s
    Wn = 1 + (W + 2 * p - WW) // s
    xp = np.pad(x, [(0, 0), (0, 0), (p, p), (p, p)])
    out = np.zeros((N, F, Hn, Wn), x.dtype)
    for a in range(Hn):
        for c in range(Wn):
            patch = xp[:, :, a * s:a * s + HH, c * s:c * s + WW]
            out[:, :, a, c] = np.einsum("nchw,fchw->nf", patch, w)
    out += b[None, :, None, None]
    return out, (x, w, b, conv_param)
'''
BACKWARD_A = '''def conv_backward_naive(dout, cache):
    x, w, b, conv_param = cache
    stride, pad = conv_param["stride"], conv_param["pad"]
    dil = conv_param.get("dilation", 1)
    _, _, height, width = x.shape
    _, _, fh, fw = w.shape
    _, _, out_h, out_w = dout.shape
    reach_h, reach_w = dil * (fh - 1) + 1, dil * (fw - 1) + 1
    padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode="constant")
    dpadded = np.zeros_like(padded)
    dw = np.zeros_like(w)
    for r in range(out_h):
        for c in range(out_w):
            rows = slice(r * stride, r * stride + reach_h, dil)
            cols = slice(c * stride, c * stride + reach_w, dil)
            g = dout[:, :, r, c]
            dw += np.tensordot(g, padded[:, :, rows, cols], axes=([0], [0]))
            dpadded[:, :, rows, cols] += np.tensordot(g, w, axes=([1], [0]))
    dx = dpadded[:, :, pad:pad + height, pad:pad + width]
    db = dout.sum(axis=(0, 2, 3))
    return dx, dw, db
'''
# forgets the bias gradient: dx and dw right, db zero
BACKWARD_NO_DB = '''def conv_backward_naive(dout, cache):
    x, w, b, conv_param = cache
    s, p = conv_param["stride"], conv_param["pad"]
    xp = np.pad(x, [(0, 0), (0, 0), (p, p), (p, p)])
    dxp = np.zeros(xp.shape, dtype=x.dtype)
    dw = np.zeros(w.shape, dtype=w.dtype)
    db = np.zeros(b.shape, dtype=b.dtype)
    N, F, Hn, Wn = dout.shape
    HH, WW = w.shape[2], w.shape[3]
    for n in range(N):
        for a in range(Hn):
            for c in range(Wn):
                patch = xp[n, :, a * s:a * s + HH, c * s:c * s + WW]
                for f in range(F):
                    dw[f] += dout[n, f, a, c] * patch
                    dxp[n, :, a * s:a * s + HH, c * s:c * s + WW] += dout[n, f, a, c] * w[f]
    dx = dxp[:, :, p:xp.shape[2] - p, p:xp.shape[3] - p]
    return dx, dw, db
'''

# Independent ways for the students whose editors reshaped their notebooks (sam, tara, uma, vic)
SIZE_D = '''def conv_output_size(W, F, S=1, P=0):
    span = W + 2 * P - F
    if span < 0:
        raise ValueError(f"the {F}-wide filter is larger than the padded input ({W + 2 * P})")
    if span % S != 0:
        raise ValueError(f"stride {S} does not divide {span}: the windows do not tile the input")
    return span // S + 1
'''
# loops over the filter's offsets (not the output positions): one einsum per offset
FORWARD_D = '''def conv_forward_naive(x, w, b, conv_param):
    s, p = conv_param["stride"], conv_param["pad"]
    d = conv_param.get("dilation", 1)
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    Ho = conv_output_size(H, d * (HH - 1) + 1, s, p)
    Wo = conv_output_size(W, d * (WW - 1) + 1, s, p)
    xp = np.pad(x, [(0, 0), (0, 0), (p, p), (p, p)])
    out = np.zeros((N, F, Ho, Wo), dtype=x.dtype)
    for kh in range(HH):
        for kw in range(WW):
            seen = xp[:, :, kh * d:kh * d + s * (Ho - 1) + 1:s, kw * d:kw * d + s * (Wo - 1) + 1:s]
            out += np.einsum("nchw,fc->nfhw", seen, w[:, :, kh, kw])
    out += b.reshape(1, F, 1, 1)
    return out, (x, w, b, conv_param)
'''
BACKWARD_D = '''def conv_backward_naive(dout, cache):
    x, w, b, conv_param = cache
    s, p = conv_param["stride"], conv_param["pad"]
    d = conv_param.get("dilation", 1)
    F, C, HH, WW = w.shape
    Ho, Wo = dout.shape[2], dout.shape[3]
    xp = np.pad(x, [(0, 0), (0, 0), (p, p), (p, p)])
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    for kh in range(HH):
        for kw in range(WW):
            rows = slice(kh * d, kh * d + s * (Ho - 1) + 1, s)
            cols = slice(kw * d, kw * d + s * (Wo - 1) + 1, s)
            dw[:, :, kh, kw] = np.einsum("nfhw,nchw->fc", dout, xp[:, :, rows, cols])
            dxp[:, :, rows, cols] += np.einsum("nfhw,fc->nchw", dout, w[:, :, kh, kw])
    dx = dxp[:, :, p:p + x.shape[2], p:p + x.shape[3]]
    return dx, dw, dout.sum(axis=(0, 2, 3))
'''
# one image, one filter, one output value at a time
FORWARD_E = '''def conv_forward_naive(x, w, b, conv_param):
    step, border = conv_param["stride"], conv_param["pad"]
    gap = conv_param.get("dilation", 1)
    images, _, rows, cols = x.shape
    filters, _, fr, fc = w.shape
    oh = conv_output_size(rows, gap * (fr - 1) + 1, step, border)
    ow = conv_output_size(cols, gap * (fc - 1) + 1, step, border)
    framed = np.pad(x, ((0, 0), (0, 0), (border, border), (border, border)))
    out = np.empty((images, filters, oh, ow), dtype=x.dtype)
    for i in range(images):
        for k in range(filters):
            for r in range(oh):
                for c in range(ow):
                    top, left = r * step, c * step
                    patch = framed[i, :, top:top + gap * (fr - 1) + 1:gap, left:left + gap * (fc - 1) + 1:gap]
                    out[i, k, r, c] = np.sum(patch * w[k]) + b[k]
    return out, (x, w, b, conv_param)
'''
BACKWARD_E_NO_DB = '''def conv_backward_naive(dout, cache):
    x, w, b, conv_param = cache
    step, border = conv_param["stride"], conv_param["pad"]
    gap = conv_param.get("dilation", 1)
    framed = np.pad(x, ((0, 0), (0, 0), (border, border), (border, border)))
    dframed = np.zeros_like(framed)
    dw, db = np.zeros_like(w), np.zeros_like(b)
    images, filters, oh, ow = dout.shape
    fr, fc = w.shape[2], w.shape[3]
    for i in range(images):
        for k in range(filters):
            for r in range(oh):
                for c in range(ow):
                    top, left = r * step, c * step
                    rs = slice(top, top + gap * (fr - 1) + 1, gap)
                    cs = slice(left, left + gap * (fc - 1) + 1, gap)
                    dw[k] += dout[i, k, r, c] * framed[i, :, rs, cs]
                    dframed[i, :, rs, cs] += dout[i, k, r, c] * w[k]
    return dframed[:, :, border:border + x.shape[2], border:border + x.shape[3]], dw, db
'''
BACKWARD_E = BACKWARD_E_NO_DB.replace(
    "    return dframed[", "    db = dout.sum(axis=(0, 2, 3)).astype(b.dtype)\n    return dframed[")

BACKWARD_SYNTAX_ERROR = '''def conv_backward_naive(dout, cache)
    x, w, b, conv_param = cache
    return None, None, None
'''

# ------------------------------------------------------------------------------------------
# Hostile code

INFINITE_LOOP_FORWARD = '''def conv_forward_naive(x, w, b, conv_param):
    stride, pad = conv_param["stride"], conv_param["pad"]
    dilation = conv_param.get("dilation", 1)
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    span_h, span_w = (HH - 1) * dilation + 1, (WW - 1) * dilation + 1
    H_out = conv_output_size(H, span_h, stride, pad)
    W_out = conv_output_size(W, span_w, stride, pad)
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out = np.zeros((N, F, H_out, W_out), dtype=x.dtype)
    i = 0
    while i < H_out:
        for j in range(W_out):
            top, left = i * stride, j * stride
            field = x_pad[:, :, top:top + span_h:dilation, left:left + span_w:dilation]
            out[:, :, i, j] = np.tensordot(field, w, axes=([1, 2, 3], [1, 2, 3])) + b
        if stride != 3:
            i += 1  # the bug: the row counter only moves for strides other than 3
    return out, (x, w, b, conv_param)
'''
MEMORY_BOMB_SIZE = SIZE_C + '''

# hoard address space, 1 GB at a time, until the memory cap stops it
hoard = []
for _ in range(64):
    hoard.append(np.empty(1 << 27))
'''
FORK_AND_EXIT_SIZE = '''import os

# a bounded fork loop: 300 children that exit at once
for _ in range(300):
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)


def conv_output_size(W, F, S=1, P=0):
    if W == 1:
        os._exit(1)  # kill the kernel in the middle of a case
    span = W - F + 2 * P
    if span < 0:
        raise ValueError("filter does not fit")
    if span % S != 0:
        raise ValueError("not an integer")
    return span // S + 1
'''
SEGFAULT_SIZE = '''import ctypes


def conv_output_size(W, F, S=1, P=0):
    if W == 224:
        ctypes.string_at(0)  # read address 0: a segmentation fault
    covered = W + 2 * P - F
    if covered < 0 or covered % S:
        raise ValueError("does not tile")
    return 1 + covered // S
'''
FLOOD_SIZE = '''def conv_output_size(W, F, S=1, P=0):
    if P == 2:
        for _ in range(200):
            print("x" * 1_000_000)  # 200 MB of output
    if W + 2 * P < F:
        raise ValueError("the filter is wider than the padded input")
    steps, rest = divmod(W - F + 2 * P, S)
    if rest != 0:
        raise ValueError("the filter positions do not fit the padded input exactly")
    return steps + 1
'''
MONKEYPATCH_FORWARD = '''import numpy as np
import cs231n_checks
import cs231n_checks.base
import cs231n_checks.compare

# make every comparison say "equal"
np.allclose = lambda *args, **kwargs: True
np.array_equal = lambda *args, **kwargs: True
np.testing.assert_allclose = lambda *args, **kwargs: None
cs231n_checks.compare.relative_error = lambda *args, **kwargs: 0.0
cs231n_checks.compare.compare_output = lambda *args, **kwargs: None
cs231n_checks.base.judge = lambda *args, **kwargs: (True, [], [], 0.0)
cs231n_checks.check = lambda *args, **kwargs: None
check = cs231n_checks.check


def conv_forward_naive(x, w, b, conv_param):
    s = conv_param["stride"]
    p = conv_param["pad"]
    N, C, H, W = x.shape
    F, C, HH, WW = w.shape
    Hn = 1 + (H + 2 * p - HH) // s
    Wn = 1 + (W + 2 * p - WW) // s
    xp = np.pad(x, [(0, 0), (0, 0), (p, p), (p, p)])
    out = np.zeros((N, F, Hn, Wn), x.dtype)
    for a in range(Hn):
        for c in range(Wn):
            out[:, :, a, c] = np.einsum("nchw,fchw->nf", xp[:, :, a * s:a * s + HH, c * s:c * s + WW], w)
    return out, (x, w, b, conv_param)  # no bias: wrong
'''
SNOOP_SIZE = '''import glob
import os

# look for the hidden tests, the solutions, the gradebook and other students' files
found = []
for pattern in ["../*", "../../*", "../../../*", "/work/*/solutions/*/*.ipynb", "**/solutions/**/*.ipynb",
                "/tmp/*/gradebook.db", "/tmp/*/*/gradebook.db", os.path.expanduser("~/*")]:
    try:
        found.extend(glob.glob(pattern, recursive=True)[:20])
    except OSError:
        pass
for path in found[:50]:
    try:
        with open(path, "rb") as fh:
            data = fh.read(4096)
        print("READ", path, len(data), b"HIDDEN" in data)
    except OSError as exc:
        print("DENIED", path, type(exc).__name__)
print("snooped", len(found), "paths")


def conv_output_size(W, F, S=1, P=0):
    covered = W + 2 * P - F
    if covered < 0 or covered % S:
        raise ValueError("does not tile")
    return 1 + covered // S
'''
DELEGATING_FORWARD = '''def conv_forward_naive(x, w, b, conv_param):
    import cs231n_lib
    return cs231n_lib.conv_forward(x, w, b, conv_param)
'''
DELEGATING_BACKWARD = '''def conv_backward_naive(dout, cache):
    from cs231n_lib import conv_backward
    return conv_backward(dout, cache)
'''


def renamed_copy(source, renames, comment):
    """A copy of ``source`` with identifiers renamed and a comment added (what copying looks like)."""
    for old, new in renames:
        source = re.sub(rf"\b{old}\b", new, source)
    return f"# {comment}\n" + source


FARID = {
    "conv_output_size": renamed_copy(SIZE_A, [("covered", "span")], "size of the output"),
    "conv_forward_naive": renamed_copy(FORWARD_A, [("padded", "xpad"), ("window", "patch"), ("reach_h", "eh"),
                                                  ("reach_w", "ew"), ("n_img", "batch")], "my forward pass"),
    "conv_backward_naive": renamed_copy(BACKWARD_A, [("padded", "xpad"), ("dpadded", "dxpad"), ("g", "grad")],
                                        "backward"),
}


def reference_sources(assignment):
    """The instructor's solution code (markers removed), by grade_id."""
    nb = nbformat.read(ROOT / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
    out = {}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution") and cell.cell_type == "code":
            out[meta["grade_id"]] = without_solution_markers(cell.source) + "\n"
    return out


REF = reference_sources(CONV)

# ------------------------------------------------------------------------------------------
# Expected outcomes, case by case


def size_valid(case):
    from cs231n_lib.sizing import conv_output_size

    try:
        conv_output_size(case["W"], case["F"], case["S"], case["P"])
        return True
    except ValueError:
        return False


def stub(case):
    return "error"


def passes(case):
    return "passed"


def size_without_check(case):
    return "passed" if size_valid(case) else "wrong"


def no_dilation(case):
    return "passed" if case.get("dilation", 1) == 1 else "wrong"


def always(outcome):
    return lambda case: outcome


def when(predicate, outcome, otherwise):
    return lambda case: outcome if predicate(case) else otherwise


# what each piece of code does on each check: {check name: case -> outcome}
CORRECT = {"conv_output_size": passes, "conv_forward_naive": passes, "conv_backward_naive": passes,
           "conv_forward_dilated": passes}
UNTOUCHED = {"conv_output_size": stub, "conv_forward_naive": stub, "conv_backward_naive": stub,
             "conv_forward_dilated": stub}


def behaviour(**changes):
    out = dict(UNTOUCHED)
    out.update(changes)
    return out


STUDENTS = {
    # --- honest work
    "ada": ("complete, written her own way (vectorised over images and filters); answers a written question",
            {"conv_output_size": SIZE_A, "conv_forward_naive": FORWARD_A, "conv_backward_naive": BACKWARD_A},
            CORRECT, []),
    "ben": ("complete, the reference algorithm (nested loops)", REF, CORRECT, []),
    "chloe": ("partial: no validity check in the size, forward ignores dilation, forgets the bias gradient",
              {"conv_output_size": SIZE_B, "conv_forward_naive": FORWARD_C, "conv_backward_naive": BACKWARD_NO_DB},
              {"conv_output_size": size_without_check, "conv_forward_naive": passes,
               "conv_backward_naive": always("wrong"), "conv_forward_dilated": always("wrong")}, []),
    "dmitri": ("untouched: the released notebook as it was handed out", {}, UNTOUCHED, []),
    "eve": ("broken: a syntax error in the backward cell, the rest right",
            {"conv_output_size": REF["conv_output_size"], "conv_forward_naive": REF["conv_forward_naive"],
             "conv_backward_naive": BACKWARD_SYNTAX_ERROR},
            dict(CORRECT, conv_backward_naive=always("error")), []),
    "farid": ("ada's code with renamed variables and comments (near-identical: flagged for review)",
              FARID, CORRECT, ["similar"]),
    "zoë": ("non-ASCII student id; size without validity check, forward right, backward not done",
            {"conv_output_size": SIZE_B, "conv_forward_naive": FORWARD_A},
            behaviour(conv_output_size=size_without_check, conv_forward_naive=passes, conv_forward_dilated=passes),
            []),
    "pat": ("sent as pat.zip holding an old nbformat v3 notebook; forward ignores dilation",
            {"conv_output_size": SIZE_C, "conv_forward_naive": FORWARD_C, "conv_backward_naive": BACKWARD_A},
            dict(CORRECT, conv_forward_dilated=always("wrong")), []),
    "quinn": ("renamed the notebook (convolution (1).ipynb): graded in its place, with a note",
              {"conv_output_size": SIZE_A, "conv_forward_naive": REF["conv_forward_naive"],
               "conv_backward_naive": BACKWARD_A}, CORRECT, ["note"]),
    # --- hostile or accidental damage
    "grace": ("infinite loop in the forward pass when the stride is 3 (per-case timeout)",
              {"conv_output_size": SIZE_C, "conv_forward_naive": INFINITE_LOOP_FORWARD},
              behaviour(conv_output_size=passes, conv_forward_naive=when(lambda c: c["stride"] == 3, "timeout", "passed"),
                        conv_backward_naive=when(lambda c: c["stride"] == 3, "timeout", "error"),
                        conv_forward_dilated=passes), []),
    "hiro": ("memory bomb after the size function (stopped by the memory cap)",
             {"conv_output_size": MEMORY_BOMB_SIZE}, behaviour(conv_output_size=passes), []),
    "ines": ("300 forks in a cell, and os._exit in the size function when W is 1 (kernel dies mid-case)",
             {"conv_output_size": FORK_AND_EXIT_SIZE},
             behaviour(conv_output_size=when(lambda c: c["W"] == 1, "crashed", "passed")), []),
    "jo": ("segmentation fault through ctypes when W is 224",
           {"conv_output_size": SEGFAULT_SIZE},
           behaviour(conv_output_size=when(lambda c: c["W"] == 224, "crashed", "passed")), ["dynamic_code"]),
    "kim": ("200 MB of output when P is 2 (the kernel is stopped past the output cap)",
            {"conv_output_size": FLOOD_SIZE},
            behaviour(conv_output_size=when(lambda c: c["P"] == 2, "crashed", "passed")), []),
    "lars": ("monkeypatches np.allclose, check and the checks' comparison, with a forward pass missing the bias",
             {"conv_forward_naive": MONKEYPATCH_FORWARD},
             behaviour(conv_forward_naive=always("wrong"), conv_forward_dilated=always("wrong")), ["tampering"]),
    "mia": ("tampered: test cells edited to print PASSED, points set to 100, skip tags, another kernelspec",
            {"conv_output_size": SIZE_B}, behaviour(conv_output_size=size_without_check), []),
    "noor": ("snoops for hidden tests, solutions, the gradebook and other students' files",
             {"conv_output_size": SNOOP_SIZE}, behaviour(conv_output_size=passes), []),
    "oscar": ("calls cs231n_lib instead of implementing the layers: the student kit the grader runs has no "
              "answer to an open assignment, so those cases fail (flagged for review)",
              {"conv_output_size": SIZE_C, "conv_forward_naive": DELEGATING_FORWARD,
               "conv_backward_naive": DELEGATING_BACKWARD}, behaviour(conv_output_size=passes), ["delegation"]),
    # --- notebooks reshaped by editors and accidents (examples/editor_shapes.py): graded as written
    "sam": ("saved in VS Code: every cell's metadata gone (graded by the functions' names; the written answer "
            "found after its question)",
            {"conv_output_size": SIZE_D, "conv_forward_naive": FORWARD_D, "conv_backward_naive": BACKWARD_D},
            CORRECT, []),
    "tara": ("saved by Colab (nbformat 4.0, Colab's metadata, no cell ids); forgets the bias gradient",
             {"conv_output_size": SIZE_C, "conv_forward_naive": FORWARD_E, "conv_backward_naive": BACKWARD_E_NO_DB},
             dict(CORRECT, conv_backward_naive=always("wrong")), []),
    "uma": ("deleted the forward cell and wrote it again at the end; left the backward stub and defined it again "
            "in a cell below",
            {"conv_output_size": SIZE_A, "conv_forward_naive": FORWARD_E, "conv_backward_naive": BACKWARD_D},
            CORRECT, []),
    "vic": ("30 MB of training log printed in one cell, sent as vic.zip (read without its outputs)",
            {"conv_output_size": SIZE_A, "conv_forward_naive": FORWARD_D, "conv_backward_naive": BACKWARD_E},
            CORRECT, []),
}
# Submissions the grader cannot grade at all: status "failed", score 0, listed for a person.
FAILED = {
    "olek": "malformed JSON: the notebook file was cut off halfway",
    "rosa": "an empty convolution/ folder",
}
# A second assignment for a few students, to show several assignments in one run.
OTHER = {"ada": "pooling", "ben": "im2col"}
# Written answers graded by a person: ada answers one question of the convolution notebook; every
# other answer cell is left as released (0 points without a person), except mia's, which her
# tampering overwrites (so it waits for a person too).
WRITTEN = {"ada": {"q_same_padding": (
    "With stride 1 the rule gives W - F + 2P + 1, which is W when P = (F - 1)/2: P = 1 for a 3x3 filter.\n"
    "An even F would need half a pixel of padding on each side, so one side gets one more row.\n"
    "Keeping the size lets us stack many layers without the image shrinking away, and the border\n"
    "pixels are seen by as many windows as the centre ones.")}}
WRITTEN["sam"] = {"q_shared_gradient": (
    "The same filter is used at every position, so each position adds its own term to dw:\n"
    "the gradient of a shared weight is the sum over all the places where it was used.")}


def student_notebook(assignment, sources):
    nb = nbformat.read(ROOT / "assignments" / assignment / f"{assignment}.ipynb", as_version=4)
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in sources and cell.metadata["nbgrader"].get("solution"):
            cell.source = sources[gid]
    return nb


def tamper(nb):
    """What mia did to her notebook's cells and metadata."""
    nb.metadata["kernelspec"] = {"name": "evil", "display_name": "Evil", "language": "python"}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade"):
            meta["points"] = 100
            cell.source = 'print("PASSED: all cases")\n'
            cell.metadata["tags"] = ["skip-execution", "raises-exception"]
            cell.metadata["cs231n"] = {"grading": "skip"}
            meta["checksum"] = "0" * 32
        elif meta.get("solution"):
            meta["grade"], meta["points"] = True, 100
    # a forged extra test cell claiming a grade_id of its own
    forged = nbformat.v4.new_code_cell('print("PASSED")')
    forged.id = "forged-test-cell"  # fixed, so that rebuilding the class changes no byte
    forged.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True, "points": 1000,
                                   "grade_id": "test_conv_output_size", "schema_version": 3}
    nb.cells.append(forged)
    return nb


def written_answers(assignment, nb):
    """{grade_id: "needs manual grading" (answered) or 0.0 (as released)} of nb's written answers."""
    released = {c.metadata["nbgrader"]["grade_id"]: c.source for c in student_notebook(assignment, {}).cells
                if c.cell_type == "markdown" and c.metadata.get("nbgrader", {}).get("solution")
                and c.metadata["nbgrader"].get("grade")}
    found = {}
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in released and gid not in found:
            answered = bool(cell.source.strip()) and answer_digest(cell.source) != answer_digest(released[gid])
            found[gid] = "needs manual grading" if answered else 0.0
    return found


def write_text(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def write_notebook(folder, name, nb):
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(folder / name))


def case_lists(assignment):
    """[(grade_id, points, [(check name, hidden, case), ...])] of the instructor's notebook."""
    return [(g, p, c) for g, p, c, _ in test_cells(assignment)]


def test_cells(assignment):
    """[(grade_id, points, cases, optional)] of the instructor's notebook; an optional part is
    extra credit (its points are not in the maximum)."""
    nb = nbformat.read(ROOT / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
    tests = []
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade") and not meta.get("solution"):
            cases = [(call.name, call.hidden, case) for call in parse_test_cell(cell.source) for case in call.cases]
            tests.append((meta["grade_id"], float(meta.get("points", 0)), cases, is_optional_test(cell)))
    return tests


def expected_for(assignment, behaviour_of):
    tests, total, max_total, optional_total, optional_score = {}, 0.0, 0.0, 0.0, 0.0
    for grade_id, points, cases, optional in test_cells(assignment):
        outcomes = [behaviour_of[name](case) for name, _, case in cases]
        passed = outcomes.count("passed")
        score = round(points * passed / len(cases), 3) if cases else 0.0
        counts = {o: outcomes.count(o) for o in sorted(set(outcomes))}
        tests[grade_id] = {"points": points, "score": score, "outcomes": counts}
        total += score
        max_total += 0.0 if optional else points
        optional_total += points if optional else 0.0
        optional_score += score if optional else 0.0
    return {"status": "graded", "score": round(total, 3), "max_score": round(max_total, 3),
            "optional_points": round(optional_total, 3), "optional_score": round(optional_score, 3), "tests": tests}


def build(OUT=OUT, EXPECTED=EXPECTED):
    """Write the class into ``OUT`` and the expected outcomes into ``EXPECTED`` (defaults: examples/)."""
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    expected = {"about": __doc__.strip().splitlines()[0], "students": {}}
    for student, (description, sources, behaviour_of, flags) in STUDENTS.items():
        nb = student_notebook(CONV, dict(sources, **WRITTEN.get(student, {})))
        folder = OUT / student / CONV
        if student == "mia":
            nb = tamper(nb)
        answers = written_answers(CONV, nb)
        if student == "uma":
            stub = student_notebook(CONV, {}).cells
            backward_stub = next(c.source for c in stub if c.metadata.get("nbgrader", {}).get("grade_id") ==
                                 "conv_backward_naive")
            nb = editor_shapes.redefine_below(editor_shapes.recreate_at_end(nb, "conv_forward_naive"),
                                              "conv_backward_naive", backward_stub)
        elif student == "sam":
            nb = editor_shapes.vscode(nb)
        if student == "tara":
            write_text(folder / f"{CONV}.ipynb", editor_shapes.colab_text(nb, f"{CONV}.ipynb"))
        elif student == "vic":
            text = nbformat.writes(editor_shapes.with_printed_output(nb, "conv_forward_naive", 30))
            with zipfile.ZipFile(OUT / "vic.zip", "w", compression=zipfile.ZIP_DEFLATED) as zf:
                member = zipfile.ZipInfo(f"{CONV}/{CONV}.ipynb", date_time=(2026, 11, 21, 9, 30, 0))
                zf.writestr(member, text, compress_type=zipfile.ZIP_DEFLATED)
        elif student == "pat":
            v3 = nbformat.writes(nbformat.convert(nb, 3), version=3)
            with zipfile.ZipFile(OUT / "pat.zip", "w", compression=zipfile.ZIP_DEFLATED) as zf:
                member = zipfile.ZipInfo(f"{CONV}/{CONV}.ipynb", date_time=(2026, 11, 20, 23, 59, 0))
                zf.writestr(member, v3, compress_type=zipfile.ZIP_DEFLATED)
        elif student == "quinn":
            write_notebook(folder, f"{CONV} (1).ipynb", nb)
        else:
            write_notebook(folder, f"{CONV}.ipynb", nb)
        entry = {"description": description, "flags": flags,
                 "assignments": {CONV: dict(expected_for(CONV, behaviour_of), answers=answers)}}
        if student in OTHER:
            other = OTHER[student]
            other_nb = student_notebook(other, reference_sources(other))
            write_notebook(OUT / student / other, f"{other}.ipynb", other_nb)
            tests = test_cells(other)
            optional_total = sum(p for _, p, _, optional in tests if optional)
            entry["assignments"][other] = {
                "status": "graded", "score": sum(p for _, p, _, _ in tests),
                "max_score": sum(p for _, p, _, optional in tests if not optional),
                "optional_points": optional_total, "optional_score": optional_total,
                "tests": {g: {"points": p, "score": p, "outcomes": {"passed": len(c)}} for g, p, c, _ in tests},
                "answers": written_answers(other, other_nb)}
        expected["students"][student] = entry
    # what cannot be graded
    text = nbformat.writes(student_notebook(CONV, {"conv_output_size": SIZE_A}))
    (OUT / "olek" / CONV).mkdir(parents=True)
    (OUT / "olek" / CONV / f"{CONV}.ipynb").write_text(text[: len(text) // 2], encoding="utf-8")
    (OUT / "rosa" / CONV).mkdir(parents=True)
    (OUT / "rosa" / CONV / ".gitkeep").write_text("")  # git keeps no empty folders; the grader ignores dot files
    for student, description in FAILED.items():
        expected["students"][student] = {"description": description, "flags": [],
                                         "assignments": {CONV: {"status": "failed"}}}
    EXPECTED.write_text(json.dumps(expected, indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    (EXPECTED.parent / "README.md").write_text(readme(expected), encoding="utf-8")
    print(f"wrote {len(expected['students'])} students to {OUT} and their expected outcomes to {EXPECTED}")


def _score_text(entry):
    """``score / max``, and what of it came from the optional parts (extra credit)."""
    text = f"{entry['score']:g} / {entry['max_score']:g}"
    if entry.get("optional_points"):
        text += f" (optional part: {entry['optional_score']:g} / {entry['optional_points']:g})"
    return text


def readme(expected):
    """examples/README.md: the class at a glance (generated with the class)."""
    lines = [
        "# The sample class",
        "",
        "`submissions/` is a class of students for `cs231n-grade demo` (`make demo`) and the tests;",
        "`expected.json` says what each one must get, test by test. Both are generated by",
        "`build_class.py` from `solutions/` and `assignments/`: run it again after the notebooks change",
        "(`.venv/bin/python examples/build_class.py`, after `make release`). Do not edit them by hand.",
        "An optional part is extra credit: its points are in the score but not in the maximum.",
        "",
        "| student | submission | expected (convolution) | flags |",
        "|---|---|---|---|",
    ]
    for student, entry in sorted(expected["students"].items()):
        conv = entry["assignments"][CONV]
        score = _score_text(conv) if conv["status"] == "graded" else "failed to grade"
        others = [f"{a}: {_score_text(r)}" for a, r in sorted(entry["assignments"].items()) if a != CONV]
        if others:
            score += " (also " + ", ".join(others) + ")"
        lines.append(f"| {student} | {entry['description']} | {score} | {', '.join(entry['flags'])} |")
    lines += ["", "Hostile code is bounded: see the docstring of `build_class.py`.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    build()
