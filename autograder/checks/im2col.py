"""Trusted checks of notebook 2 (im2col): inputs and references.

The column layout is ``cs231n_lib.conv.im2col``'s: row ``(c*HH + i)*WW + j``, column
``(n*Hout + oy)*Wout + ox``.
"""

import numpy as np

from cs231n_checks import im2col as kit
from cs231n_checks.im2col import GEOMETRY

from . import variants as v
from .base import Trusted, register
from .convolution import (ASSIGN_DW, ASSIGN_DX, BACKWARD_CATALOGUE, CROP_EMPTY, CROP_NONE, CROP_ONE, CROP_START,
                          FORWARD_CATALOGUE, ONE_SHORT, PAD_IN_SIZE, PAD_MISSING, PAD_ONE_SIDE, STRIDE_BOTH,
                          STRIDE_COLUMNS, STRIDE_ROWS, conv_backward_inputs,
                          conv_backward_reference, conv_backward_second_reference, conv_backward_variants, conv_case_inputs, conv_forward_variants,
                          conv_reference, conv_second_reference)

ROWS_TAPS_FIRST = ("the rows are ordered (i, j, c), taps first: row (c*HH + i)*WW + j holds channel c, tap (i, j), "
                   "the channel first")
ROWS_TAPS_SWAPPED = "the taps are ordered column first: row (c*HH + i)*WW + j holds tap row i, tap column j"
COLUMNS_SAMPLE_LAST = ("the columns are ordered (oy, ox, n), the sample last: column (n*Hout + oy)*Wout + ox, "
                       "the sample first")
COLUMNS_TRANSPOSED = "the matrix is transposed: one row per (c, i, j) tap, one column per (n, oy, ox) window"
ASSIGN_FOLD = "overlapping windows are written with =, so the last one wins: col2im adds them up (+=)"
WEIGHTS_TAPS_FIRST = ("the filters are reshaped in (HH, WW, C) order: w.reshape(F, -1) matches im2col's rows, "
                      "(c, i, j) order")
OUTPUT_NOT_TRANSPOSED = ("the product is (F, N*Hout*Wout): reshape it to (F, N, Hout, Wout) and move F to "
                         "axis 1, a plain reshape to (N, F, Hout, Wout) mixes samples and filters")
DOUT_NOT_TRANSPOSED = ("dout is reshaped to (F, -1) without moving F first: dout.transpose(1, 0, 2, 3).reshape(F, -1) "
                       "matches the columns")
DW_TRANSPOSED = "dw is cols @ dout_mat.T reshaped: it is dout_mat @ cols.T, (F, C*HH*WW), reshaped to w's shape"


def _column_variants(inputs, check):
    x = inputs["x"]
    HH, WW, S, P = (check.scalar(inputs, k) for k in GEOMETRY)
    N, C = x.shape[:2]
    right = v.im2col(x, HH, WW, S, P)
    Ho, Wo = v.output_size(x.shape[2], HH, S, P), v.output_size(x.shape[3], WW, S, P)
    found = [(ROWS_TAPS_FIRST, v.reorder_columns(right, C, HH, WW, N, Ho, Wo, rows_order=(1, 2, 0))),
             (ROWS_TAPS_SWAPPED, v.reorder_columns(right, C, HH, WW, N, Ho, Wo, rows_order=(0, 2, 1))),
             (COLUMNS_SAMPLE_LAST, v.reorder_columns(right, C, HH, WW, N, Ho, Wo, columns_order=(1, 2, 0))),
             (COLUMNS_TRANSPOSED, right.T)]
    if P > 0:
        found += [(PAD_MISSING, v.im2col(x, HH, WW, S, 0)),
                  (PAD_ONE_SIDE, v.im2col(x, HH, WW, S, P, pads=(0, 2 * P, 0, 2 * P))),
                  (PAD_ONE_SIDE, v.im2col(x, HH, WW, S, P, pads=(2 * P, 0, 2 * P, 0)))]
    if S > 1:
        found += [(STRIDE_ROWS, v.im2col(x, HH, WW, S, P, row_step=1, size=(Ho, Wo))),
                  (STRIDE_COLUMNS, v.im2col(x, HH, WW, S, P, col_step=1, size=(Ho, Wo)))]
        if min(Ho, Wo) > 1:  # (with one row or column it is the other axis's mistake)
            found.append((STRIDE_BOTH, v.im2col(x, HH, WW, S, P, row_step=1, col_step=1, size=(Ho, Wo))))
    return [(hint, {"cols": cols}) for hint, cols in found]


def _fold_variants(inputs, check):
    cols = inputs["cols"]
    x_shape = tuple(int(s) for s in inputs["x_shape"])
    HH, WW, S, P = (check.scalar(inputs, k) for k in GEOMETRY)
    N, C = x_shape[:2]
    Ho, Wo = v.output_size(x_shape[2], HH, S, P), v.output_size(x_shape[3], WW, S, P)

    def fold(matrix=cols, **switches):
        return {"dx": v.col2im(matrix, x_shape, HH, WW, S, P, **switches)}

    found = [(ASSIGN_FOLD, fold(assign=True)), (ASSIGN_FOLD, fold(assign="taps")), (CROP_EMPTY, fold(crop="pad:-pad")), (CROP_ONE, fold(crop="1:-1"))]
    if P > 0:
        found += [(CROP_NONE, fold(crop="none")), (CROP_START, fold(crop="start"))]
    found += [(ROWS_TAPS_FIRST, fold(v.reorder_columns(cols, HH, WW, C, N, Ho, Wo, rows_order=(2, 0, 1)))),
              (COLUMNS_SAMPLE_LAST, fold(v.reorder_columns(cols, C, HH, WW, Ho, Wo, N, columns_order=(2, 0, 1))))]
    if S > 1:
        found += [(STRIDE_ROWS, fold(row_step=1)), (STRIDE_COLUMNS, fold(col_step=1))]
        if min(Ho, Wo) > 1:
            found.append((STRIDE_BOTH, fold(row_step=1, col_step=1)))
    return found


def geometry_inputs(case):
    """Filter size, stride and padding of a column case as 0-d arrays."""
    return {
        "HH": np.array(case["HH"]), "WW": np.array(case["WW"]),
        "stride": np.array(case.get("stride", 1)), "pad": np.array(case.get("pad", 0)),
    }


def column_shape(x_shape, HH, WW, stride, pad):
    from cs231n_lib.sizing import conv_output_size

    N, C, H, W = x_shape
    Hout, Wout = conv_output_size(H, HH, stride, pad), conv_output_size(W, WW, stride, pad)
    return (C * HH * WW, N * Hout * Wout)


@register
class Im2col(Trusted, kit.Im2col):
    catalogue = (ROWS_TAPS_FIRST, ROWS_TAPS_SWAPPED, COLUMNS_SAMPLE_LAST, COLUMNS_TRANSPOSED, PAD_MISSING,
                 PAD_ONE_SIDE, STRIDE_ROWS, STRIDE_COLUMNS, STRIDE_BOTH)

    def variants(self, case, inputs):
        return _column_variants(inputs, self)

    def make_inputs(self, case):
        x = self.rng(case).standard_normal(case["x"]).astype(self.dtype_of(case))
        return {"x": x, **geometry_inputs(case)}

    def reference(self, inputs):
        from cs231n_lib import im2col

        return {"cols": im2col(inputs["x"], *(self.scalar(inputs, k) for k in GEOMETRY))}


@register
class Col2im(Trusted, kit.Col2im):
    catalogue = (ASSIGN_FOLD, CROP_EMPTY, CROP_ONE, CROP_NONE, CROP_START, ROWS_TAPS_FIRST, COLUMNS_SAMPLE_LAST,
                 STRIDE_ROWS, STRIDE_COLUMNS, STRIDE_BOTH)

    def variants(self, case, inputs):
        return _fold_variants(inputs, self)

    def make_inputs(self, case):
        geometry = geometry_inputs(case)
        shape = column_shape(case["x"], *(int(geometry[k]) for k in GEOMETRY))
        cols = self.rng(case).standard_normal(shape).astype(self.dtype_of(case))
        return {"cols": cols, "x_shape": np.array(case["x"], dtype=np.int64), **geometry}

    def reference(self, inputs):
        from cs231n_lib import col2im

        x_shape = tuple(int(s) for s in inputs["x_shape"])
        return {"dx": col2im(inputs["cols"], x_shape, *(self.scalar(inputs, k) for k in GEOMETRY))}


@register
class ConvForwardIm2col(Trusted, kit.ConvForwardIm2col):
    def second_reference(self, inputs):
        return conv_second_reference(dict(inputs, dilation=np.array(1)))

    # (a wrong output size in conv_forward_im2col only breaks the reshape of im2col's columns)
    catalogue = (WEIGHTS_TAPS_FIRST, OUTPUT_NOT_TRANSPOSED) + tuple(
        h for h in FORWARD_CATALOGUE if h not in (ONE_SHORT, PAD_IN_SIZE))

    def variants(self, case, inputs):
        x, w, b = inputs["x"], inputs["w"], inputs["b"]
        S, P = self.scalar(inputs, "stride"), self.scalar(inputs, "pad")
        F, C, HH, WW = w.shape
        right = v.conv_forward(x, w, b, S, P)
        N, _, Ho, Wo = right.shape
        taps_first = np.asarray(w, np.float64).transpose(0, 2, 3, 1).reshape(F, C, HH, WW)
        mixed = right.transpose(1, 0, 2, 3).reshape(N, F, Ho, Wo)
        return [(WEIGHTS_TAPS_FIRST, {"out": v.conv_forward(x, taps_first, b, S, P)}),
                (OUTPUT_NOT_TRANSPOSED, {"out": mixed})] + [
            (hint, out) for hint, out in conv_forward_variants(inputs) if hint in self.catalogue]

    def make_inputs(self, case):
        return conv_case_inputs(self, case)

    def reference(self, inputs):
        return {"out": conv_reference(self, inputs)[0]}


@register
class ConvBackwardIm2col(Trusted, kit.ConvBackwardIm2col):
    def second_reference(self, inputs):
        return conv_backward_second_reference(dict(inputs, dilation=np.array(1)))

    catalogue = (DOUT_NOT_TRANSPOSED, DW_TRANSPOSED, ASSIGN_FOLD) + tuple(
        h for h in BACKWARD_CATALOGUE if h not in (ASSIGN_DX, ASSIGN_DW, STRIDE_ROWS, STRIDE_COLUMNS, STRIDE_BOTH))

    def variants(self, case, inputs):
        x, w, dout = (np.asarray(inputs[k], np.float64) for k in ("x", "w", "dout"))
        S, P = self.scalar(inputs, "stride"), self.scalar(inputs, "pad")
        F, C, HH, WW = w.shape
        cols = v.im2col(x, HH, WW, S, P)
        right_mat = dout.transpose(1, 0, 2, 3).reshape(F, -1)
        flat = dout.reshape(F, -1)
        found = [(DOUT_NOT_TRANSPOSED, {"dx": v.col2im(w.reshape(F, -1).T @ flat, x.shape, HH, WW, S, P),
                                        "dw": (flat @ cols.T).reshape(w.shape), "db": flat.sum(axis=1)}),
                 (DW_TRANSPOSED, {"dw": (cols @ right_mat.T).reshape(w.shape)}),
                 (ASSIGN_FOLD, {"dx": v.col2im(w.reshape(F, -1).T @ right_mat, x.shape, HH, WW, S, P, assign=True)}),
                 (ASSIGN_FOLD, {"dx": v.col2im(w.reshape(F, -1).T @ right_mat, x.shape, HH, WW, S, P,
                                               assign="taps")})]
        return found + [(hint, grads) for hint, grads in conv_backward_variants(dict(inputs, dilation=np.array(1)))
                        if hint in self.catalogue]

    def make_inputs(self, case):
        return conv_backward_inputs(self, case)

    def reference(self, inputs):
        return conv_backward_reference(self, inputs)
