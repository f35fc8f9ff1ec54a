"""Every catalogued mistake is planted into the notebook's own solution and graded.

Each entry of ``PLANTED`` edits one solution cell of ``solutions/<a>/<a>.ipynb`` the way students
really get it wrong (``pad:-pad``, ``=`` for ``+=``, the momentum weights swapped, ...). The
edited solution must lose points, and its wrong results must be named by that mistake's hint
on visible cases (the full verdict, with the kit's precomputed data) and on hidden cases (the
limited verdict, fixed text only). No case may name another mistake instead: a diagnosis that
points elsewhere is worse than none. Finally every hint of every check's catalogue is planted
here at least once.
"""

import copy
from pathlib import Path

import nbformat
import numpy as np
import pytest

from autograder.checks import CHECKS, get_check, judge
from autograder.checks import batchnorm as bn
from cs231n_checks import convnet as cn
from autograder.checks import convolution as conv
from autograder.checks import im2col as cols
from autograder.checks import pooling as pool
from autograder.testspec import parse_test_cell
from cs231n_checks.convolution import FLOAT_SIZE
from cs231n_checks.pooling import TIES_TO_ALL, TIES_TO_LAST

ROOT = Path(__file__).resolve().parents[3]


def _notebook(assignment):
    return nbformat.read(ROOT / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)


def solution_cells(assignment):
    return {c.metadata["nbgrader"]["grade_id"]: c.source for c in _notebook(assignment).cells
            if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("solution")}


def notebook_cases(assignment, name):
    """``[(case, hidden)]`` of check ``name`` in the notebook's test cells."""
    found = []
    for cell in _notebook(assignment).cells:
        if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade"):
            for call in parse_test_cell(cell.source):
                if call.name == name:
                    found += [(case, call.hidden) for case in call.cases]
    return found


def namespace(assignment, sources=None):
    """The names the notebook's solution cells define, some cells' sources replaced."""
    import cs231n_lib

    sources = sources or {}
    from cs231n_lib.sizing import OPTIMIZER_STATE, conv_output_size, parse_layer

    ns = {"np": np, "im2col": cs231n_lib.im2col, "pool_output_size": cs231n_lib.pool_output_size,
          "OPTIMIZER_STATE": OPTIMIZER_STATE, "conv_output_size": conv_output_size, "parse_layer": parse_layer}
    # the layers of earlier assignments that the convnet notebook's setup cell imports
    ns.update({name: getattr(cs231n_lib, name) for name in (
        "conv_forward", "conv_backward", "relu_forward", "relu_backward", "max_pool_forward", "max_pool_backward",
        "spatial_batchnorm_forward", "spatial_batchnorm_backward", "affine_forward", "affine_backward",
        "softmax_loss", "conv_bn_relu_forward", "conv_bn_relu_backward")})
    for grade_id, text in solution_cells(assignment).items():
        exec(compile(sources.get(grade_id, text), f"<{grade_id}>", "exec"), ns)
    return ns


class Planted:
    """A mistake planted in one solution cell (or several: ``cell`` a tuple), by text edits.

    ``also``: other hints that may name it on a case where both mistakes give the same outputs,
    because their text names this cause too (one row short: "the padding counts on both sides
    (2P) and the + 1 counts the first position")."""

    def __init__(self, assignment, check, hint, cell, *edits, where=("visible", "hidden"), also=()):
        self.assignment, self.check, self.hint = assignment, check, hint
        self.cells = cell if isinstance(cell, tuple) else (cell,)
        self.edits, self.where, self.also = edits, where, also

    def sources(self):
        texts = {cell: solution_cells(self.assignment)[cell] for cell in self.cells}
        for old, new in self.edits:
            holding = [cell for cell, text in texts.items() if old in text]
            assert holding, f"the solution of {self.cells} no longer holds {old!r}: update this test"
            for cell in holding:
                texts[cell] = texts[cell].replace(old, new)
        return texts

    def id(self):
        return f"{self.check}:{self.hint[:40]}"


# ------------------------------------------------------------------------------------------
# the mistakes, planted

C = "convolution"
FWD_WINDOW = "top, left = i * stride, j * stride"
CROP = "dx = dx_pad[:, :, pad:pad + H, pad:pad + W]"
CONV_SIZE = "H_out = conv_output_size(H, span_h, stride, pad)\n    W_out = conv_output_size(W, span_w, stride, pad)"
PAD_ONCE_IN_SIZE = (CONV_SIZE, "H_out = (H - span_h + pad) // stride + 1\n    W_out = (W - span_w + pad) // stride + 1")
PLANTED = [
    Planted(C, "conv_output_size", conv.NO_PLUS_ONE, "conv_output_size", ("return span // S + 1", "return span // S")),
    Planted(C, "conv_output_size", conv.PAD_ONCE, "conv_output_size", ("span = W - F + 2 * P", "span = W - F + P")),
    Planted(C, "conv_output_size", conv.NO_DIVISIBILITY, "conv_output_size", ("if span % S != 0:", "if False:"),
            where=("visible", "hidden")),
    Planted(C, "conv_output_size", conv.NO_FIT_CHECK, "conv_output_size", ("if span < 0:", "if False:"),
            where=("hidden",)),
    Planted(C, "conv_output_size", FLOAT_SIZE, "conv_output_size", ("return span // S + 1", "return span / S + 1")),
    Planted(C, "conv_forward_naive", conv.PAD_MISSING, "conv_forward_naive",
            ("x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))", "x_pad = x"),
            (CONV_SIZE, "H_out = (H - span_h) // stride + 1\n    W_out = (W - span_w) // stride + 1")),
    Planted(C, "conv_forward_naive", conv.PAD_ONE_SIDE, "conv_forward_naive",
            ("(pad, pad), (pad, pad)))", "(0, 2 * pad), (0, 2 * pad)))")),
    Planted(C, "conv_forward_naive", conv.STRIDE_ROWS, "conv_forward_naive", (FWD_WINDOW, "top, left = i, j * stride")),
    Planted(C, "conv_forward_naive", conv.STRIDE_COLUMNS, "conv_forward_naive", (FWD_WINDOW, "top, left = i * stride, j")),
    Planted(C, "conv_forward_naive", conv.STRIDE_BOTH, "conv_forward_naive", (FWD_WINDOW, "top, left = i, j")),
    Planted(C, "conv_forward_naive", conv.ONE_SHORT, "conv_forward_naive",
            (CONV_SIZE, CONV_SIZE.replace("pad)\n", "pad) - 1\n") + " - 1")),
    # the size without the padding: on (5, 5) with S = 2, P = 1 one row short, which ONE_SHORT names
    Planted(C, "conv_forward_naive", conv.PAD_IN_SIZE, "conv_forward_naive",
            (CONV_SIZE, "H_out = (H - span_h) // stride + 1\n    W_out = (W - span_w) // stride + 1"),
            also=(conv.ONE_SHORT,)),
    # the padding counted once: one row short on every visible case
    Planted(C, "conv_forward_naive", conv.PAD_IN_SIZE, "conv_forward_naive", PAD_ONCE_IN_SIZE,
            also=(conv.ONE_SHORT,), where=("hidden",)),
    Planted(C, "conv_forward_naive", conv.FLIPPED, "conv_forward_naive",
            ("np.sum(field * w[f])", "np.sum(field * w[f, :, ::-1, ::-1])")),
    Planted(C, "conv_forward_naive", conv.TRANSPOSED_TAPS, "conv_forward_naive",
            ("np.sum(field * w[f])", "np.sum(field * w[f].transpose(0, 2, 1))")),
    Planted(C, "conv_forward_naive", conv.NO_BIAS, "conv_forward_naive", (" + b[f]", "")),
    Planted(C, "conv_forward_naive", conv.BIAS_PER_CHANNEL, "conv_forward_naive",
            ("np.sum(field * w[f]) + b[f]", "sum(np.sum(field[c] * w[f, c]) + b[f] for c in range(C))")),
    Planted(C, "conv_backward_naive", conv.CROP_EMPTY, "conv_backward_naive", (CROP, "dx = dx_pad[:, :, pad:-pad, pad:-pad]")),
    Planted(C, "conv_backward_naive", conv.CROP_ONE, "conv_backward_naive", (CROP, "dx = dx_pad[:, :, 1:-1, 1:-1]")),
    Planted(C, "conv_backward_naive", conv.CROP_NONE, "conv_backward_naive", (CROP, "dx = dx_pad")),
    Planted(C, "conv_backward_naive", conv.CROP_START, "conv_backward_naive", (CROP, "dx = dx_pad[:, :, pad:, pad:]")),
    Planted(C, "conv_backward_naive", conv.ASSIGN_DX, "conv_backward_naive",
            ("dx_pad[n, :, rows, cols] += ", "dx_pad[n, :, rows, cols] = ")),
    Planted(C, "conv_backward_naive", conv.FLIP_DX, "conv_backward_naive",
            ("+= dout[n, f, i, j] * w[f]", "+= dout[n, f, i, j] * w[f, :, ::-1, ::-1]")),
    Planted(C, "conv_backward_naive", conv.STRIDE_ROWS, "conv_backward_naive", (FWD_WINDOW, "top, left = i, j * stride")),
    Planted(C, "conv_backward_naive", conv.STRIDE_COLUMNS, "conv_backward_naive",
            (FWD_WINDOW, "top, left = i * stride, j")),
    Planted(C, "conv_backward_naive", conv.STRIDE_BOTH, "conv_backward_naive", (FWD_WINDOW, "top, left = i, j")),
    Planted(C, "conv_backward_naive", conv.ASSIGN_DW, "conv_backward_naive",
            ("dw[f] += dout[n, f, i, j]", "dw[f] = dout[n, f, i, j]")),
    # the loops in another order (f, n, i, j): the same last window wins
    Planted(C, "conv_backward_naive", conv.ASSIGN_DW, "conv_backward_naive",
            ("    for n in range(N):\n        for f in range(F):\n", "    for f in range(F):\n        for n in range(N):\n"),
            ("dw[f] += dout[n, f, i, j]", "dw[f] = dout[n, f, i, j]")),
    # the samples in one statement: the last window of every sample
    Planted(C, "conv_backward_naive", conv.ASSIGN_DW, "conv_backward_naive",
            ("dw[f] += dout[n, f, i, j] * x_pad[n, :, rows, cols]",
             "dw[f] = np.einsum('n,nchw->chw', dout[:, f, i, j], x_pad[:, :, rows, cols])")),
    Planted(C, "conv_backward_naive", conv.DB_AXES, "conv_backward_naive",
            ("db = dout.sum(axis=(0, 2, 3))", "db = dout.sum(axis=(1, 2, 3))")),
    Planted(C, "conv_forward_dilated", conv.DILATION_IGNORED, "conv_forward_naive",
            ('dilation = conv_param.get("dilation", 1)', "dilation = 1")),
    Planted(C, "conv_forward_dilated", conv.DILATION_SPAN, "conv_forward_naive",
            ("span_h, span_w = (HH - 1) * dilation + 1, (WW - 1) * dilation + 1",
             "span_h, span_w = HH * dilation, WW * dilation")),
    Planted(C, "conv_forward_dilated", conv.DILATION_SIZE_ONLY, "conv_forward_naive",
            ("top:top + span_h:dilation, left:left + span_w:dilation", "top:top + HH, left:left + WW")),
]
# (in the dilated check one row short is also what a span of HH * dilation gives: both are named)
PLANTED += [Planted(C, "conv_forward_dilated", p.hint, "conv_forward_naive", *p.edits,
                    also=p.also + ((conv.DILATION_SPAN,) if conv.ONE_SHORT in p.also else ()),
                    where=("visible",) if p.hint == conv.TRANSPOSED_TAPS or p.edits == (PAD_ONCE_IN_SIZE,) else p.where)
            for p in PLANTED if p.check == "conv_forward_naive"]

IM = "im2col"
SEEN = "seen = x_pad[:, :, i:i + stride * H_out:stride, j:j + stride * W_out:stride]"
BLOCKS = "blocks = np.empty((C, HH, WW, N, H_out, W_out), dtype=x.dtype)"
FILL = "blocks[:, i, j] = seen.transpose(1, 0, 2, 3)"
IM2COL_SIZE = "H_out = (H - HH + 2 * pad) // stride + 1\n    W_out = (W - WW + 2 * pad) // stride + 1"
FOLD = "dx_pad[:, :, i:i + stride * H_out:stride, j:j + stride * W_out:stride] +="
UNFOLD = "blocks = cols.reshape(C, HH, WW, N, H_out, W_out)"
PLANTED += [
    Planted(IM, "im2col", cols.ROWS_TAPS_FIRST, "im2col", (BLOCKS, BLOCKS.replace("(C, HH, WW,", "(HH, WW, C,")),
            (FILL, "blocks[i, j] = seen.transpose(1, 0, 2, 3)")),
    Planted(IM, "im2col", cols.ROWS_TAPS_SWAPPED, "im2col", (BLOCKS, BLOCKS.replace("(C, HH, WW,", "(C, WW, HH,")),
            (FILL, "blocks[:, j, i] = seen.transpose(1, 0, 2, 3)")),
    Planted(IM, "im2col", cols.COLUMNS_SAMPLE_LAST, "im2col",
            (BLOCKS, BLOCKS.replace("N, H_out, W_out)", "H_out, W_out, N)")),
            (FILL, "blocks[:, i, j] = seen.transpose(1, 2, 3, 0)")),
    Planted(IM, "im2col", cols.COLUMNS_TRANSPOSED, "im2col",
            ("cols = blocks.reshape(C * HH * WW, N * H_out * W_out)",
             "cols = blocks.reshape(C * HH * WW, N * H_out * W_out).T")),
    Planted(IM, "im2col", conv.PAD_MISSING, "im2col",
            (IM2COL_SIZE, IM2COL_SIZE.replace(" + 2 * pad", "")),
            ("x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))", "x_pad = x")),
    Planted(IM, "im2col", conv.PAD_ONE_SIDE, "im2col", ("(pad, pad), (pad, pad)))", "(2 * pad, 0), (2 * pad, 0)))")),
    Planted(IM, "im2col", conv.STRIDE_ROWS, "im2col", (SEEN, SEEN.replace("i:i + stride * H_out:stride", "i:i + H_out"))),
    Planted(IM, "im2col", conv.STRIDE_COLUMNS, "im2col", (SEEN, SEEN.replace("j:j + stride * W_out:stride", "j:j + W_out"))),
    Planted(IM, "im2col", conv.STRIDE_BOTH, "im2col", (SEEN, SEEN.replace("i:i + stride * H_out:stride", "i:i + H_out")
                                                      .replace("j:j + stride * W_out:stride", "j:j + W_out"))),
    Planted(IM, "col2im", cols.ASSIGN_FOLD, "col2im", (FOLD, FOLD.replace("+=", "="))),
    Planted(IM, "col2im", conv.CROP_EMPTY, "col2im", (CROP, "dx = dx_pad[:, :, pad:-pad, pad:-pad]")),
    Planted(IM, "col2im", conv.CROP_ONE, "col2im", (CROP, "dx = dx_pad[:, :, 1:-1, 1:-1]")),
    Planted(IM, "col2im", conv.CROP_NONE, "col2im", (CROP, "dx = dx_pad")),
    Planted(IM, "col2im", conv.CROP_START, "col2im", (CROP, "dx = dx_pad[:, :, pad:, pad:]")),
    Planted(IM, "col2im", cols.ROWS_TAPS_FIRST, "col2im",
            (UNFOLD, "blocks = cols.reshape(HH, WW, C, N, H_out, W_out).transpose(2, 0, 1, 3, 4, 5)")),
    Planted(IM, "col2im", cols.COLUMNS_SAMPLE_LAST, "col2im",
            (UNFOLD, "blocks = cols.reshape(C, HH, WW, H_out, W_out, N).transpose(0, 1, 2, 5, 3, 4)")),
    Planted(IM, "col2im", conv.STRIDE_ROWS, "col2im", (FOLD, FOLD.replace("i:i + stride * H_out:stride", "i:i + H_out"))),
    Planted(IM, "col2im", conv.STRIDE_COLUMNS, "col2im",
            (FOLD, FOLD.replace("j:j + stride * W_out:stride", "j:j + W_out"))),
    Planted(IM, "col2im", conv.STRIDE_BOTH, "col2im", (FOLD, FOLD.replace("i:i + stride * H_out:stride", "i:i + H_out")
                                                      .replace("j:j + stride * W_out:stride", "j:j + W_out"))),
    Planted(IM, "conv_forward_im2col", cols.WEIGHTS_TAPS_FIRST, "conv_forward_im2col",
            ("out = w.reshape(F, -1) @ cols", "out = w.transpose(0, 2, 3, 1).reshape(F, -1) @ cols")),
    Planted(IM, "conv_forward_im2col", cols.OUTPUT_NOT_TRANSPOSED, "conv_forward_im2col",
            ("out = out.reshape(F, N, H_out, W_out).transpose(1, 0, 2, 3)", "out = out.reshape(N, F, H_out, W_out)")),
    Planted(IM, "conv_forward_im2col", conv.PAD_MISSING, "conv_forward_im2col",
            (IM2COL_SIZE, IM2COL_SIZE.replace(" + 2 * pad", "")),
            ("cols = im2col(x, HH, WW, stride, pad)", "cols = im2col(x, HH, WW, stride, 0)")),
    Planted(IM, "conv_forward_im2col", conv.PAD_ONE_SIDE, "im2col",
            ("(pad, pad), (pad, pad)))", "(0, 2 * pad), (0, 2 * pad)))")),
    Planted(IM, "conv_forward_im2col", conv.STRIDE_ROWS, "im2col",
            (SEEN, SEEN.replace("i:i + stride * H_out:stride", "i:i + H_out"))),
    Planted(IM, "conv_forward_im2col", conv.STRIDE_COLUMNS, "im2col",
            (SEEN, SEEN.replace("j:j + stride * W_out:stride", "j:j + W_out"))),
    Planted(IM, "conv_forward_im2col", conv.STRIDE_BOTH, "im2col",
            (SEEN, SEEN.replace("i:i + stride * H_out:stride", "i:i + H_out").replace("j:j + stride * W_out:stride",
                                                                                     "j:j + W_out"))),
    Planted(IM, "conv_forward_im2col", conv.FLIPPED, "conv_forward_im2col",
            ("out = w.reshape(F, -1) @ cols", "out = w[:, :, ::-1, ::-1].reshape(F, -1) @ cols")),
    Planted(IM, "conv_forward_im2col", conv.TRANSPOSED_TAPS, "conv_forward_im2col",
            ("out = w.reshape(F, -1) @ cols", "out = w.transpose(0, 1, 3, 2).reshape(F, -1) @ cols")),
    Planted(IM, "conv_forward_im2col", conv.NO_BIAS, "conv_forward_im2col", (" + b[:, None]", "")),
    Planted(IM, "conv_forward_im2col", conv.BIAS_PER_CHANNEL, "conv_forward_im2col", ("+ b[:, None]", "+ C * b[:, None]"),
            ("F, _, HH, WW = w.shape", "F, C, HH, WW = w.shape")),
    Planted(IM, "conv_backward_im2col", cols.DOUT_NOT_TRANSPOSED, "conv_backward_im2col",
            ("dout_mat = dout.transpose(1, 0, 2, 3).reshape(F, -1)", "dout_mat = dout.reshape(F, -1)")),
    Planted(IM, "conv_backward_im2col", cols.DW_TRANSPOSED, "conv_backward_im2col",
            ("dw = (dout_mat @ cols.T).reshape(w.shape)", "dw = (cols @ dout_mat.T).reshape(w.shape)")),
    Planted(IM, "conv_backward_im2col", cols.ASSIGN_FOLD, "col2im", (FOLD, FOLD.replace("+=", "="))),
    Planted(IM, "conv_backward_im2col", conv.CROP_EMPTY, "col2im", (CROP, "dx = dx_pad[:, :, pad:-pad, pad:-pad]")),
    Planted(IM, "conv_backward_im2col", conv.CROP_ONE, "col2im", (CROP, "dx = dx_pad[:, :, 1:-1, 1:-1]")),
    Planted(IM, "conv_backward_im2col", conv.CROP_NONE, "col2im", (CROP, "dx = dx_pad")),
    Planted(IM, "conv_backward_im2col", conv.CROP_START, "col2im", (CROP, "dx = dx_pad[:, :, pad:, pad:]")),
    Planted(IM, "conv_backward_im2col", conv.FLIP_DX, "conv_backward_im2col",
            ("dcols = w.reshape(F, -1).T @ dout_mat", "dcols = w[:, :, ::-1, ::-1].reshape(F, -1).T @ dout_mat")),
    Planted(IM, "conv_backward_im2col", conv.DB_AXES, "conv_backward_im2col",
            ("db = dout_mat.sum(axis=1)", "db = dout.sum(axis=(1, 2, 3))")),
]

P = "pooling"
PARAMS = 'PH, PW, S = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]'
SIZES = "Hout, Wout = pool_output_size(H, PH, S), pool_output_size(W, PW, S)"
WIN = "x[n, c, i * S:i * S + PH, j * S:j * S + PW]"
TO_MAX = "dx[n, c, i * S + p, j * S + q] += dout[n, c, i, j]"
AVG_WIN = "dx[n, c, i * S:i * S + PH, j * S:j * S + PW] += dout[n, c, i, j] * share"
TILED = "if PH == PW == S and H % S == 0 and W % S == 0:"
MIXED = ("windows = im2col(x.reshape(N * C, 1, H, W), PH, PW, S, 0)\n"
         "        out = windows.max(axis=0).reshape(N, C, Hout, Wout)")


def pooling_forward(check, cell, reduce):
    name = ".max()" if reduce == "max" else ".mean()"
    planted = [
        Planted(P, check, pool.STRIDE_IGNORED, cell, (SIZES, SIZES.replace("S)", "1)")),
                (WIN, "x[n, c, i:i + PH, j:j + PW]")),
        Planted(P, check, conv.STRIDE_ROWS, cell, (WIN, "x[n, c, i:i + PH, j * S:j * S + PW]")),
        Planted(P, check, conv.STRIDE_COLUMNS, cell, (WIN, "x[n, c, i * S:i * S + PH, j:j + PW]")),
        Planted(P, check, conv.STRIDE_BOTH, cell, (WIN, "x[n, c, i:i + PH, j:j + PW]")),
        Planted(P, check, pool.ONE_SHORT, cell, (SIZES, SIZES.replace("S),", "S) - 1,") + " - 1")),
        Planted(P, check, pool.DIMS_SWAPPED, cell, (PARAMS, PARAMS.replace("PH, PW, S", "PW, PH, S")),
                where=("visible",) if reduce == "max" else ("hidden",)),
    ]
    if reduce == "max":
        planted += [Planted(P, check, pool.STRIDE_IS_POOL, cell, (WIN, "x[n, c, i * PH:i * PH + PH, j * PW:j * PW + PW]")),
                    Planted(P, check, pool.AVERAGE_NOT_MAX, cell, (name, ".mean()"))]
    else:
        planted += [Planted(P, check, pool.SUM_NOT_MEAN, cell, (name, ".sum()")),
                    Planted(P, check, pool.MAX_NOT_AVERAGE, cell, (name, ".max()")),
                    Planted(P, check, pool.WRONG_COUNT, cell, (name, ".sum() / (PH * PH)"), where=("hidden",))]
    return planted


PLANTED += pooling_forward("max_pool_forward_naive", "max_pool_forward_naive", "max")
PLANTED += pooling_forward("avg_pool_forward_naive", "avg_pool_forward_naive", "mean")
PLANTED += [
    Planted(P, "max_pool_backward_naive", TIES_TO_ALL, "max_pool_backward_naive",
            ("p, q = divmod(int(np.argmax(window)), PW)", "p = q = 0"),
            (TO_MAX, "dx[n, c, i * S:i * S + PH, j * S:j * S + PW] += (window == window.max()) * dout[n, c, i, j]")),
    Planted(P, "max_pool_backward_naive", TIES_TO_LAST, "max_pool_backward_naive",
            ("divmod(int(np.argmax(window)), PW)", "divmod(window.size - 1 - int(np.argmax(window.ravel()[::-1])), PW)")),
    Planted(P, "max_pool_backward_naive", pool.ASSIGN_OVERLAP, "max_pool_backward_naive",
            (TO_MAX, TO_MAX.replace("+=", "="))),
    Planted(P, "max_pool_backward_naive", pool.SPREAD, "max_pool_backward_naive",
            (TO_MAX, "dx[n, c, i * S:i * S + PH, j * S:j * S + PW] += dout[n, c, i, j]")),
    Planted(P, "max_pool_backward_naive", pool.NO_DOUT, "max_pool_backward_naive",
            (TO_MAX, "dx[n, c, i * S + p, j * S + q] += 1")),
    Planted(P, "max_pool_backward_naive", conv.STRIDE_ROWS, "max_pool_backward_naive",
            ("window = x[n, c, i * S:i * S + PH,", "window = x[n, c, i:i + PH,"),
            (TO_MAX, TO_MAX.replace("i * S + p", "i + p"))),
    Planted(P, "max_pool_backward_naive", conv.STRIDE_COLUMNS, "max_pool_backward_naive",
            ("j * S:j * S + PW]\n", "j:j + PW]\n"), (TO_MAX, TO_MAX.replace("j * S + q", "j + q"))),
    Planted(P, "max_pool_backward_naive", conv.STRIDE_BOTH, "max_pool_backward_naive",
            ("window = x[n, c, i * S:i * S + PH, j * S:j * S + PW]", "window = x[n, c, i:i + PH, j:j + PW]"),
            (TO_MAX, "dx[n, c, i + p, j + q] += dout[n, c, i, j]")),
    Planted(P, "avg_pool_backward_naive", pool.NO_SHARE, "avg_pool_backward_naive",
            ("share = 1.0 / (PH * PW)", "share = 1.0")),
    Planted(P, "avg_pool_backward_naive", pool.ASSIGN_OVERLAP, "avg_pool_backward_naive",
            (AVG_WIN, AVG_WIN.replace("+=", "=")), where=("hidden",)),
    Planted(P, "avg_pool_backward_naive", pool.WRONG_COUNT, "avg_pool_backward_naive",
            ("share = 1.0 / (PH * PW)", "share = 1.0 / (PH * PH)"), where=("hidden",)),
    Planted(P, "avg_pool_backward_naive", conv.STRIDE_ROWS, "avg_pool_backward_naive",
            (AVG_WIN, AVG_WIN.replace("i * S:i * S + PH", "i:i + PH"))),
    Planted(P, "avg_pool_backward_naive", conv.STRIDE_COLUMNS, "avg_pool_backward_naive",
            (AVG_WIN, AVG_WIN.replace("j * S:j * S + PW", "j:j + PW"))),
    Planted(P, "avg_pool_backward_naive", conv.STRIDE_BOTH, "avg_pool_backward_naive",
            (AVG_WIN, AVG_WIN.replace("i * S:i * S + PH", "i:i + PH").replace("j * S:j * S + PW", "j:j + PW"))),
    Planted(P, "max_pool_forward_fast", pool.CHANNELS_MIXED, "max_pool_forward_fast",
            (MIXED, "windows = im2col(x, PH, PW, S, 0)\n"
                    "        out = np.repeat(windows.max(axis=0).reshape(N, 1, Hout, Wout), C, axis=1)")),
    Planted(P, "max_pool_forward_fast", pool.RESHAPE_NOT_TILING, "max_pool_forward_fast",
            (TILED, "if True:"),
            ("out = x.reshape(N, C, Hout, S, Wout, S).max(axis=(3, 5))",
             "out = x[:, :, :H // PH * PH, :W // PW * PW].reshape(N, C, H // PH, PH, W // PW, PW).max(axis=(3, 5))")),
    Planted(P, "max_pool_forward_fast", pool.RESHAPE_AXES, "max_pool_forward_fast", ("max(axis=(3, 5))", "max(axis=(2, 4))")),
    Planted(P, "max_pool_forward_fast", pool.STRIDE_IGNORED, "max_pool_forward_fast", (SIZES, SIZES.replace("S)", "1)")),
            (TILED, "if False:"), ("PH, PW, S, 0)", "PH, PW, 1, 0)")),
    Planted(P, "max_pool_forward_fast", pool.SAMPLES_CHANNELS_MIXED, "max_pool_forward_fast",
            ("im2col(x.reshape(N * C, 1, H, W)", "im2col(x.transpose(1, 0, 2, 3).reshape(N * C, 1, H, W)")),
    Planted(P, "avg_pool_backward_naive", pool.DIMS_SWAPPED, "avg_pool_backward_naive",
            (PARAMS, PARAMS.replace("PH, PW, S", "PW, PH, S")), where=("hidden",)),
    Planted(P, "max_pool_forward_fast", pool.AVERAGE_NOT_MAX, "max_pool_forward_fast",
            ("max(axis=(3, 5))", "mean(axis=(3, 5))"), ("windows.max(axis=0)", "windows.mean(axis=0)")),
]

B = "batchnorm"
UPDATES = ("        running_mean = momentum * running_mean + (1 - momentum) * mean\n"
           "        running_var = momentum * running_var + (1 - momentum) * var\n")
TEST_HAT = "x_hat = (x - running_mean) / np.sqrt(running_var + eps)"
ALT_DX = "dx = inv_std / N * (N * g - g.sum(axis=0) - x_hat * (g * x_hat).sum(axis=0))"
LN_VAR = "(x_centered ** 2).mean(axis=1, keepdims=True)"
LN_DX = ("dx = inv_std / D * (D * g - g.sum(axis=1, keepdims=True) - x_hat * (g * x_hat).sum(axis=1, "
         "keepdims=True))")
GN_VAR = "(x_centered ** 2).mean(axis=2, keepdims=True)"
GN_DX = "dx = inv_std / M * (M * g - g.sum(axis=2, keepdims=True)\n                        - x_hat_groups * (g * x_hat_groups).sum(axis=2, keepdims=True))"


def bn_forward(check):
    cell = "batchnorm_forward"
    # the spatial visible cases keep the default eps
    given_eps = ("visible", "hidden") if check == "batchnorm_forward" else ("hidden",)
    return [
        Planted(B, check, bn.NOT_UPDATED, cell, (UPDATES, "")),
        # written into bn_param directly: the skeleton's last lines store the unchanged locals over it
        Planted(B, check, bn.NOT_UPDATED, cell, (UPDATES, UPDATES.replace("running_mean = momentum",
                                                                          'bn_param["running_mean"] = momentum')
                                                 .replace("running_var = momentum", 'bn_param["running_var"] = momentum'))),
        Planted(B, check, bn.RUNNING_IS_BATCH, cell,
                (UPDATES, "        running_mean = mean\n        running_var = var\n")),
        Planted(B, check, bn.NO_EPS, cell, ("std = np.sqrt(var + eps)", "std = np.sqrt(var)"),
                (TEST_HAT, "x_hat = (x - running_mean) / np.sqrt(running_var)")),
        Planted(B, check, bn.NO_EPS, cell, ("std = np.sqrt(var + eps)", "std = x.std(axis=0)")),
        Planted(B, check, bn.EPS_NOT_GIVEN, cell, ('eps = bn_param.get("eps", 1e-5)', "eps = 1e-5"), where=given_eps),
        Planted(B, check, bn.SWAPPED_MOMENTUM, cell, (UPDATES, UPDATES.replace("momentum * running", "(1 - momentum) * running")
                                                      .replace("(1 - momentum) * mean", "momentum * mean")
                                                      .replace("(1 - momentum) * var", "momentum * var"))),
        Planted(B, check, bn.RUNNING_STD, cell, ("(1 - momentum) * var", "(1 - momentum) * np.sqrt(var)")),
        Planted(B, check, bn.UNBIASED_VARIANCE, cell, ("var = (x_centered ** 2).mean(axis=0)", "var = x.var(axis=0, ddof=1)")),
        Planted(B, check, bn.EPS_OUTSIDE_SQRT, cell, ("std = np.sqrt(var + eps)", "std = np.sqrt(var) + eps"),
                (TEST_HAT, "x_hat = (x - running_mean) / (np.sqrt(running_var) + eps)")),
        Planted(B, check, bn.NO_SQRT, cell, ("std = np.sqrt(var + eps)", "std = var + eps"),
                (TEST_HAT, "x_hat = (x - running_mean) / (running_var + eps)")),
        Planted(B, check, bn.TRAIN_WITH_RUNNING, cell, ("x_hat = x_centered * inv_std", TEST_HAT)),
        Planted(B, check, bn.TEST_WITH_BATCH_STATS, cell, (TEST_HAT, "x_hat = (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + eps)")),
        Planted(B, check, bn.TEST_UPDATES_RUNNING, cell, ("        cache = None\n", "        cache = None\n"
                "        running_mean = momentum * running_mean + (1 - momentum) * x.mean(axis=0)\n")),
        Planted(B, check, bn.NO_AFFINE, cell, ("out = gamma * x_hat + beta", "out = x_hat")),
    ]


PLANTED += bn_forward("batchnorm_forward")
PLANTED += bn_forward("spatial_batchnorm_forward")
PLANTED += [
    Planted(B, "batchnorm_forward", bn.PER_SAMPLE_STATISTICS, "batchnorm_forward",
            ("mean = x.mean(axis=0)", "mean = x.mean(axis=1, keepdims=True)"),
            ("var = (x_centered ** 2).mean(axis=0)", "var = (x_centered ** 2).mean(axis=1, keepdims=True)")),
    Planted(B, "spatial_batchnorm_forward", bn.NO_TRANSPOSE, "spatial_batchnorm_forward",
            ("rows = x.transpose(0, 2, 3, 1).reshape(-1, C)", "rows = x.reshape(-1, C)"),
            ("out = out_rows.reshape(N, H, W, C).transpose(0, 3, 1, 2)", "out = out_rows.reshape(N, C, H, W)")),
    Planted(B, "spatial_batchnorm_forward", bn.PER_PLANE, "spatial_batchnorm_forward",
            ("out = out_rows.reshape(N, H, W, C).transpose(0, 3, 1, 2)",
             "mu = x.mean(axis=(2, 3), keepdims=True)\n"
             "    sd = np.sqrt(x.var(axis=(2, 3), keepdims=True) + bn_param.get('eps', 1e-5))\n"
             "    out = gamma[None, :, None, None] * (x - mu) / sd + beta[None, :, None, None]")),
]


def bn_backward(check, cell, alt):
    if alt:
        edits = {
            bn.CONSTANT_STATISTICS: [(ALT_DX, "dx = inv_std * g")],
            bn.NO_MEAN_PATH: [(" - g.sum(axis=0)", "")],
            bn.NO_VARIANCE_PATH: [(" - x_hat * (g * x_hat).sum(axis=0)", "")],
            bn.DX_WITHOUT_GAMMA: [("g = dout * gamma", "g = dout")],
            bn.DGAMMA_RAW_X: [("x_hat, _, _, inv_std, gamma = cache", "x_hat, x_centered, _, inv_std, gamma = cache"),
                              ("dgamma = (dout * x_hat)", "dgamma = (dout * x_centered)")],
        }
    else:
        edits = {
            bn.CONSTANT_STATISTICS: [("    dx += dmean / N\n", "    dx += dmean / N\n    dx = dout * gamma * inv_std\n")],
            bn.NO_MEAN_PATH: [("    dx += dmean / N\n", "")],
            bn.NO_VARIANCE_PATH: [("    dx_centered += 2.0 / N * x_centered * dvar\n", "")],
            bn.DX_WITHOUT_GAMMA: [("dx_hat = dout * gamma", "dx_hat = dout")],
            bn.DGAMMA_RAW_X: [("dgamma = (dout * x_hat)", "dgamma = (dout * x_centered)")],
        }
    edits[bn.PARAM_GRADS_AXIS] = [("dbeta = dout.sum(axis=0)", "dbeta = dout.sum(axis=1)"),
                                  ("dgamma = (dout * x_hat).sum(axis=0)", "dgamma = (dout * x_hat).sum(axis=1)")]
    edits[bn.PARAM_GRADS_AVERAGED] = [("dbeta = dout.sum(axis=0)", "dbeta = dout.mean(axis=0)"),
                                      ("dgamma = (dout * x_hat).sum(axis=0)", "dgamma = (dout * x_hat).mean(axis=0)")]
    return [Planted(B, check, hint, cell, *changes) for hint, changes in edits.items()]


PLANTED += bn_backward("batchnorm_backward", "batchnorm_backward", alt=False)
PLANTED += bn_backward("batchnorm_backward_alt", "batchnorm_backward_alt", alt=True)
PLANTED += [p for p in bn_backward("spatial_batchnorm_backward", "batchnorm_backward_alt", alt=True)
            if p.hint != bn.PARAM_GRADS_AXIS]
PLANTED += [
    Planted(B, "spatial_batchnorm_backward", bn.PARAM_GRADS_AXIS, "spatial_batchnorm_backward",
            ("dx = dx_rows.reshape(N, H, W, C).transpose(0, 3, 1, 2)",
             "dx = dx_rows.reshape(N, H, W, C).transpose(0, 3, 1, 2)\n"
             "    dbeta = dout.sum(axis=0)")),
    Planted(B, "spatial_batchnorm_backward", bn.NO_TRANSPOSE, ("spatial_batchnorm_forward", "spatial_batchnorm_backward"),
            ("rows = x.transpose(0, 2, 3, 1).reshape(-1, C)", "rows = x.reshape(-1, C)"),
            ("out = out_rows.reshape(N, H, W, C).transpose(0, 3, 1, 2)", "out = out_rows.reshape(N, C, H, W)"),
            ("rows = dout.transpose(0, 2, 3, 1).reshape(-1, C)", "rows = dout.reshape(-1, C)"),
            ("dx = dx_rows.reshape(N, H, W, C).transpose(0, 3, 1, 2)", "dx = dx_rows.reshape(N, C, H, W)")),
]

NORM_FORWARD = [
    ("layernorm_forward", bn.BATCH_STATISTICS, [("axis=1, keepdims=True", "axis=0, keepdims=True")]),
    ("layernorm_forward", bn.UNBIASED_PER_SAMPLE, [(LN_VAR, "x.var(axis=1, ddof=1, keepdims=True)")]),
    ("layernorm_forward", bn.EPS_OUTSIDE_SQRT, [(f"np.sqrt({LN_VAR} + eps)", f"(np.sqrt({LN_VAR}) + eps)")]),
    ("layernorm_forward", bn.NO_EPS, [(f"np.sqrt({LN_VAR} + eps)", f"np.sqrt({LN_VAR})")]),
    ("layernorm_forward", bn.EPS_NOT_GIVEN, [('eps = ln_param.get("eps", 1e-5)', "eps = 1e-5")]),
    ("layernorm_forward", bn.NO_SQRT, [(f"np.sqrt({LN_VAR} + eps)", f"({LN_VAR} + eps)")]),
    ("layernorm_forward", bn.NO_AFFINE, [("out = gamma * x_hat + beta", "out = x_hat")]),
    ("layernorm_forward", bn.NO_CENTERING, [("x_hat = x_centered * inv_std", "x_hat = x * inv_std")]),
    ("spatial_groupnorm_forward", bn.NO_CENTERING,
     [("x_hat = (x_centered * inv_std).reshape(N, C, H, W)", "x_hat = (groups * inv_std).reshape(N, C, H, W)")]),
    ("spatial_groupnorm_forward", bn.GROUPS_INTERLEAVED, [
        ("groups = x.reshape(N, G, -1)", "groups = x.reshape(N, C // G, G, H, W).transpose(0, 2, 1, 3, 4).reshape(N, G, -1)"),
        ("x_hat = (x_centered * inv_std).reshape(N, C, H, W)",
         "x_hat = (x_centered * inv_std).reshape(N, G, C // G, H, W).transpose(0, 2, 1, 3, 4).reshape(N, C, H, W)")]),
    ("spatial_groupnorm_forward", bn.GROUPS_IGNORED, [("groups = x.reshape(N, G, -1)", "groups = x.reshape(N, 1, -1)")]),
    ("spatial_groupnorm_forward", bn.GROUP_PER_CHANNEL, [("groups = x.reshape(N, G, -1)", "groups = x.reshape(N, C, -1)")]),
    ("spatial_groupnorm_forward", bn.UNBIASED_PER_SAMPLE, [(GN_VAR, "groups.var(axis=2, ddof=1, keepdims=True)")]),
    ("spatial_groupnorm_forward", bn.EPS_OUTSIDE_SQRT, [(f"np.sqrt({GN_VAR} + eps)", f"(np.sqrt({GN_VAR}) + eps)")]),
    ("spatial_groupnorm_forward", bn.NO_EPS, [(f"np.sqrt({GN_VAR} + eps)", f"np.sqrt({GN_VAR})")]),
    ("spatial_groupnorm_forward", bn.EPS_NOT_GIVEN, [('eps = gn_param.get("eps", 1e-5)', "eps = 1e-5")]),
    ("spatial_groupnorm_forward", bn.NO_SQRT, [(f"np.sqrt({GN_VAR} + eps)", f"({GN_VAR} + eps)")]),
    ("spatial_groupnorm_forward", bn.NO_AFFINE, [("out = gamma * x_hat + beta", "out = x_hat")]),
]
NORM_BACKWARD = [
    ("layernorm_backward", bn.CONSTANT_STATISTICS, [(LN_DX, "dx = inv_std * g")]),
    ("layernorm_backward", bn.NO_MEAN_PATH, [(" - g.sum(axis=1, keepdims=True)", "")]),
    ("layernorm_backward", bn.NO_VARIANCE_PATH, [(" - x_hat * (g * x_hat).sum(axis=1, keepdims=True)", "")]),
    ("layernorm_backward", bn.DX_WITHOUT_GAMMA, [("g = dout * gamma", "g = dout")]),
    ("layernorm_backward", bn.DGAMMA_RAW_X, [("dgamma = (dout * x_hat)", "dgamma = (dout * x_hat / inv_std)")]),
    ("layernorm_backward", bn.LN_PARAM_GRADS_AXIS, [("dbeta = dout.sum(axis=0)", "dbeta = dout.sum(axis=1)"),
                                                    ("dgamma = (dout * x_hat).sum(axis=0)", "dgamma = (dout * x_hat).sum(axis=1)")]),
    ("spatial_groupnorm_backward", bn.CONSTANT_STATISTICS, [(GN_DX, "dx = inv_std * g")]),
    ("spatial_groupnorm_backward", bn.NO_MEAN_PATH, [(" - g.sum(axis=2, keepdims=True)", "")]),
    ("spatial_groupnorm_backward", bn.NO_VARIANCE_PATH,
     [("\n                        - x_hat_groups * (g * x_hat_groups).sum(axis=2, keepdims=True))", ")")]),
    ("spatial_groupnorm_backward", bn.DX_WITHOUT_GAMMA, [("g = (dout * gamma).reshape(N, G, -1)", "g = dout.reshape(N, G, -1)")]),
    ("spatial_groupnorm_backward", bn.DGAMMA_RAW_X,
     [("dgamma = (dout * x_hat)", "dgamma = (dout * (x_hat.reshape(N, G, -1) / inv_std).reshape(dout.shape))")]),
    ("spatial_groupnorm_backward", bn.LN_PARAM_GRADS_AXIS, [("axis=(0, 2, 3), keepdims=True)", "axis=(1, 2, 3), keepdims=True)")]),
]
# the group norm's visible cases keep the default eps
ONLY_VISIBLE, ONLY_HIDDEN = {bn.GROUPS_INTERLEAVED}, {("spatial_groupnorm_forward", bn.EPS_NOT_GIVEN)}
PLANTED += [Planted(B, check, hint, check, *edits,
                    where=("visible",) if hint in ONLY_VISIBLE else ("hidden",) if (check, hint) in ONLY_HIDDEN
                    else ("visible", "hidden"))
            for check, hint, edits in NORM_FORWARD + NORM_BACKWARD]


# ------------------------------------------------------------------------------------------
# convnet, Part 3: memory, ResNet's parameters, the pattern (the rest of convnet is exempt)

N5 = "convnet"
ACTS = "bytes_per_value * batch_size * activations"
FIXED = "training_memory(params, activations, 0, optimizer, bytes_per_value)"
PLANTED += [
    Planted(N5, "training_memory", cn.NO_ACTIVATION_GRADS, "training_memory",
            (f'"activation_grads": {ACTS},', '"activation_grads": 0,')),
    Planted(N5, "training_memory", cn.NO_PARAM_GRADS, "training_memory",
            ('"param_grads": bytes_per_value * params,', '"param_grads": 0,')),
    Planted(N5, "training_memory", cn.NO_BATCH, "training_memory", (ACTS, "bytes_per_value * activations")),
    Planted(N5, "training_memory", cn.ADAM_ONE_BUFFER, "training_memory",
            ("buffers = OPTIMIZER_STATE[optimizer]", "buffers = min(OPTIMIZER_STATE[optimizer], 1)")),
    Planted(N5, "training_memory", cn.NO_OPTIMIZER_STATE, "training_memory",
            ("buffers = OPTIMIZER_STATE[optimizer]", 'buffers = 2 if optimizer == "adam" else 0')),
    Planted(N5, "training_memory", cn.COUNTS_NOT_BYTES, "training_memory",
            ('memory["total"] = sum(memory.values())',
             'memory = {k: v // bytes_per_value for k, v in memory.items()}\n    memory["total"] = sum(memory.values())')),
    Planted(N5, "largest_batch", cn.NO_ACTIVATION_GRADS, "largest_batch",
            ("per_image = 2 * activations * bytes_per_value", "per_image = activations * bytes_per_value")),
    Planted(N5, "largest_batch", cn.ROUNDED_UP, "largest_batch",
            ("return (memory_bytes - fixed) // per_image", "return -(-(memory_bytes - fixed) // per_image)")),
    Planted(N5, "largest_batch", cn.PARAMS_IGNORED, "largest_batch", (f'fixed = {FIXED}["total"]', "fixed = 0")),
    Planted(N5, "largest_batch", cn.NO_OPTIMIZER_STATE, "largest_batch",
            (FIXED, 'training_memory(params, activations, 0, "adam" if optimizer == "adam" else "sgd", bytes_per_value)')),
    Planted(N5, "largest_batch", cn.ADAM_ONE_BUFFER, "largest_batch",
            (FIXED, 'training_memory(params, activations, 0, "momentum" if optimizer == "adam" else optimizer, '
                    'bytes_per_value)')),
    Planted(N5, "resnet_params", cn.CONV_BIASES, "resnet_params",
            ("return F * F * C * K + 2 * K", "return F * F * C * K + 3 * K")),
    Planted(N5, "resnet_params", cn.NO_BATCHNORM, "resnet_params", ("return F * F * C * K + 2 * K", "return F * F * C * K")),
    Planted(N5, "resnet_params", cn.NO_PROJECTION, "resnet_params", ("if downsample or C != K:", "if False:")),
    Planted(N5, "resnet_params", cn.PROJECTION_EVERYWHERE, "resnet_params", ("if downsample or C != K:", "if True:")),
    Planted(N5, "resnet_params", cn.NO_FC_BIAS, "resnet_params",
            ("return total + C * num_classes + num_classes", "return total + C * num_classes")),
    Planted(N5, "pattern_spec", cn.NO_DOUBLING, "pattern_spec", ("filters * 2 ** group", "filters")),
    Planted(N5, "pattern_spec", cn.POOL_PER_CONV, "pattern_spec",
            ('[f"CONV3-{filters * 2 ** group}"] * N + ["POOL2"]', '[f"CONV3-{filters * 2 ** group}", "POOL2"] * N')),
    Planted(N5, "widest_pattern", cn.FIRST_OVER, "widest_pattern", ("    return low\n", "    return high\n")),
    Planted(N5, "conv_bn_net_loss", cn.RELU_BEFORE_BN, "conv_bn_net_loss",
            ("an, bn_cache = spatial_batchnorm_forward(a, gamma1, beta1, bn_param)\n    r, relu_cache = relu_forward(an)",
             "a0, relu_cache = relu_forward(a)\n    r, bn_cache = spatial_batchnorm_forward(a0, gamma1, beta1, bn_param)"),
            ("dan = relu_backward(dr, relu_cache)\n    da, grads[\"gamma1\"], grads[\"beta1\"] = spatial_batchnorm_backward(dan, bn_cache)",
             "da0, grads[\"gamma1\"], grads[\"beta1\"] = spatial_batchnorm_backward(dr, bn_cache)\n"
             "    da = relu_backward(da0, relu_cache)")),
    Planted(N5, "conv_bn_net_loss", cn.TEST_MODE_IGNORED, "conv_bn_net_loss",
            ('bn_param["mode"] = "test" if y is None else "train"', 'bn_param["mode"] = "train"')),
    Planted(N5, "conv_bn_net_loss", cn.NO_NET_PENALTY, "conv_bn_net_loss",
            ("loss = data_loss + 0.5 * reg * (np.sum(W1 * W1) + np.sum(W2 * W2))", "loss = data_loss")),
    Planted(N5, "conv_bn_net_loss", cn.FULL_NET_PENALTY, "conv_bn_net_loss",
            ("loss = data_loss + 0.5 * reg *", "loss = data_loss + reg *")),
    Planted(N5, "conv_bn_net_loss", cn.NO_NET_REG_GRADIENT, "conv_bn_net_loss",
            ('grads["W1"] = grads["W1"] + reg * W1\n    grads["W2"] = grads["W2"] + reg * W2\n', "pass\n")),
    Planted(N5, "conv_bn_net_loss", cn.REGULARISED_ALL, "conv_bn_net_loss",
            ("loss = data_loss + 0.5 * reg * (np.sum(W1 * W1) + np.sum(W2 * W2))",
             "loss = data_loss + 0.5 * reg * sum(np.sum(p * p) for p in params.values())"),
            ('grads["W1"] = grads["W1"] + reg * W1\n    grads["W2"] = grads["W2"] + reg * W2\n',
             "for k in grads:\n        grads[k] = grads[k] + reg * params[k]\n")),
    Planted(N5, "residual_block_forward", cn.SHORTCUT_AFTER_RELU, "residual_block",
            ("out, relu_cache = relu_forward(an + x)", "out, relu_cache = relu_forward(an)\n    out = out + x")),
    Planted(N5, "residual_block_forward", cn.NO_FINAL_RELU, "residual_block",
            ("out, relu_cache = relu_forward(an + x)", "out, relu_cache = an + x, None")),
    Planted(N5, "residual_block_forward", cn.NO_SHORTCUT, "residual_block",
            ("out, relu_cache = relu_forward(an + x)", "out, relu_cache = relu_forward(an)")),
    Planted(N5, "residual_block_backward", cn.NO_SHORTCUT_GRADIENT, "residual_block", ("return dx + ds, grads", "return dx, grads")),
    Planted(N5, "residual_block_backward", cn.UNMASKED_SHORTCUT_GRADIENT, "residual_block",
            ("return dx + ds, grads", "return dx + dout, grads")),
]
# conv_bn_net_training has one fixed hint, no mistakes: a target reached or not
CONVNET_EXEMPT = {"receptive_field", "size_network", "fc_to_conv", "three_layer_convnet_loss", "conv_bn_net_training"}
CONVNET_FEW_MISTAKES = {"training_memory", "largest_batch", "resnet_params", "pattern_spec", "widest_pattern",
                        "residual_block_forward", "residual_block_backward"}


# ------------------------------------------------------------------------------------------
# the tests


def _grade(planted):
    """Per case of the planted check: (case, hidden, passed, hints) (hints None: it raised)."""
    kind = get_check(planted.check)
    ns = namespace(planted.assignment, planted.sources())
    results = []
    for case, hidden in notebook_cases(planted.assignment, planted.check):
        inputs = kind.make_inputs(case)
        expected = kind.reference({k: np.array(a, copy=True) for k, a in inputs.items()})
        try:
            found = kind.call(ns, {k: np.array(a, copy=True) for k, a in inputs.items()})
        except Exception:  # noqa: BLE001 - an error costs the case; nothing to diagnose
            results.append((case, hidden, False, None))
            continue
        passed, _, hints, _ = judge(kind, case, expected, found, hidden=hidden)
        results.append((case, hidden, passed, hints))
    return results


@pytest.mark.parametrize("planted", PLANTED, ids=[p.id() for p in PLANTED])
def test_a_planted_mistake_loses_points_and_is_named(planted):
    kind = get_check(planted.check)
    results = _grade(planted)
    assert not all(passed for _, _, passed, _ in results), "the planted mistake lost no points"
    for where in ("visible", "hidden"):
        named = [case for case, hidden, passed, hints in results
                 if hidden == (where == "hidden") and not passed and hints and planted.hint in hints]
        if where in planted.where:
            assert named, f"no {where} case names the mistake: {[(c, h) for c, hd, p, h in results if not p]}"
    catalogue = set(kind.fixed_hints)
    for case, hidden, passed, hints in results:
        if not passed and hints:
            wrong = [h for h in hints if h in catalogue and h != planted.hint and h not in planted.also]
            assert not wrong or planted.hint in hints, (case, hidden, hints)


def test_every_catalogued_mistake_is_planted():
    planted = {(p.check, p.hint) for p in PLANTED}
    for name, kind in CHECKS.items():
        for hint in getattr(kind, "catalogue", ()):
            if name in CONVNET_EXEMPT:
                continue
            assert (name, hint) in planted, f"{name}: {hint!r} is catalogued but never planted"


@pytest.mark.parametrize("name", sorted(n for n in CHECKS if n not in CONVNET_EXEMPT | CONVNET_FEW_MISTAKES | {
    "conv_output_size"}))
def test_every_layer_function_has_at_least_six_mistakes(name):
    assert len(CHECKS[name].catalogue) >= 6, CHECKS[name].catalogue


def test_the_honest_solution_names_nothing():
    for assignment in ("convolution", "im2col", "pooling", "batchnorm"):
        ns = namespace(assignment)
        for name in {p.check for p in PLANTED if p.assignment == assignment}:
            kind = get_check(name)
            for case, _ in notebook_cases(assignment, name):
                inputs = kind.make_inputs(case)
                found = kind.call(ns, {k: np.array(a, copy=True) for k, a in inputs.items()})
                assert judge(kind, case, kind.reference(inputs), found)[0], (name, case)


def test_a_visible_case_is_named_from_the_kits_data(tmp_path):
    """The student's check names the mistake from the precomputed .npz alone."""
    from cs231n_checks import base as kit_base
    from cs231n_checks import get_check as kit_check

    planted = next(p for p in PLANTED if p.hint == conv.CROP_EMPTY and p.check == "conv_backward_naive")
    trusted = get_check(planted.check)
    case = next(c for c, hidden in notebook_cases(C, planted.check) if not hidden and c["pad"] == 0)
    inputs = trusted.make_inputs(case)
    entries = kit_base.pack_case(kit_base.case_key(planted.check, case), inputs, trusted.reference(inputs),
                                 trusted.mistakes(case, inputs))
    np.savez(tmp_path / "convolution.npz", **entries)
    store = kit_base._Store(tmp_path)
    stored_inputs, expected, mistakes = store.get(kit_base.case_key(planted.check, case))
    student = kit_check(planted.check)  # the kit's check: no reference, no mistakes code
    assert not hasattr(student, "mistakes")
    found = student.call(namespace(C, planted.sources()), copy.deepcopy(dict(stored_inputs)))
    passed, lines, hints, _ = kit_base.judge(student, case, expected, found, inputs=stored_inputs, mistakes=mistakes)
    assert not passed and hints == [conv.CROP_EMPTY] and lines[0].startswith("dx: expected shape")


def test_every_hint_of_the_trusted_checks_is_in_a_catalogue():
    """A hint constant no check lists can never be shown (pooling's UNRAVEL_WIDTH was one)."""
    from autograder.checks import convnet as trusted_convnet

    shown = set().union(*(set(kind.fixed_hints) for kind in CHECKS.values()))
    for module in (conv, cols, pool, bn, trusted_convnet):
        unused = [name for name, value in vars(module).items()
                  if name.isupper() and isinstance(value, str) and value not in shown]
        assert not unused, (module.__name__, unused)
