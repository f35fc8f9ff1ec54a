"""Trusted checks of notebook 1 (convolution, naive): inputs, references and known mistakes."""

import numpy as np

from cs231n_checks import convolution as kit
from cs231n_checks.convolution import conv_param_of

from . import variants as v
from .base import Trusted, register

# The known mistakes of the convolution layers (also used by the im2col notebook's checks).
PAD_MISSING = "the padding is missing: add `pad` zeros on every side of the height and width before sliding the filters"
PAD_ONE_SIDE = ("the zeros are all on one side: add `pad` zeros on each side (top and bottom, left and right), "
                "not 2 * pad on one of them")
STRIDE_ROWS = "the windows move down by 1 instead of the stride: the window of output row i starts at row i * stride"
STRIDE_COLUMNS = ("the windows move right by 1 instead of the stride: the window of output column j starts at "
                  "column j * stride")
STRIDE_BOTH = ("the windows move by 1 instead of the stride: the window of output (i, j) starts at row "
               "i * stride and column j * stride")
# one row and column short comes from a missing + 1, but as often from a size rule that drops the
# padding or counts it once (x (5, 5), 3 x 3 filters, S = 2, P = 1: (5 - 3)/2 + 1 = 2 for 3)
ONE_SHORT = ("one output row and column short: the output size is (H - HH + 2P)/S + 1: the padding counts on "
             "both sides (2P) and the + 1 counts the first position")
PAD_IN_SIZE = ("the output size leaves out the padding (or counts it once): it is (H - HH + 2P)/S + 1, with the "
               "zeros of both sides (2P); the windows are right, there are too few of them")
FLIPPED = ("the filters are flipped: a CNN's convolution slides the filter as it is (cross-correlation), "
           "without flipping it")
TRANSPOSED_TAPS = "the filter's taps are transposed: w[f, c, i, j] multiplies row i, column j of the window"
NO_BIAS = "the bias is missing: add b[f] to every output of filter f"
BIAS_PER_CHANNEL = "the bias is added once per input channel: add b[f] once per output, after summing over the channels"
CROP_EMPTY = ("dx is cut out with pad:-pad, which is empty when pad = 0: cut with pad:pad + H and pad:pad + W "
              "(or pad:H + pad)")
CROP_ONE = "dx is cut out with a hard-coded 1:-1: remove `pad` rows and columns, with pad:pad + H and pad:pad + W"
CROP_NONE = "dx still has the padding: return dx_pad[:, :, pad:pad + H, pad:pad + W], of the shape of x"
CROP_START = "dx keeps the bottom and right padding: cut with pad:pad + H and pad:pad + W"
ASSIGN_DX = "dx is written with = where windows overlap, so the last window wins: add the contributions with +="
ASSIGN_DW = ("dw is written with =, so only the last window counts: every window adds to it, "
             "dw[f] += dout[n, f, i, j] * (the window of x_pad)")
FLIP_DX = ("dx uses flipped filters: with the forward pass a cross-correlation, each window adds "
           "dout[n, f, i, j] * w[f] as it is")
DB_AXES = "db is summed over the wrong axes: sum dout over the samples and the positions, axes (0, 2, 3)"
DILATION_IGNORED = ("the dilation is ignored: the taps are `dilation` apart, so the filter spans "
                    "(HH - 1) * dilation + 1 rows")
DILATION_SPAN = "the dilated filter spans (HH - 1) * dilation + 1 rows, not HH * dilation"
DILATION_SIZE_ONLY = ("the output size uses the dilated span but the taps are still adjacent: take every "
                      "dilation-th entry of the window (a step of `dilation` in the slice)")
NO_PLUS_ONE = "the + 1 is missing: the output size is (W - F + 2P)/S + 1, the + 1 counts the first position"
PAD_ONCE = "the padding counts twice, once per side: (W - F + 2P)/S + 1"
NO_DIVISIBILITY = ("no ValueError when S does not divide W - F + 2P: the filter would not tile the input, "
                   "raise ValueError instead of rounding")
NO_FIT_CHECK = "no ValueError when the filter is larger than the padded input (F > W + 2P): raise ValueError"
FORWARD_CATALOGUE = (PAD_MISSING, PAD_ONE_SIDE, STRIDE_ROWS, STRIDE_COLUMNS, STRIDE_BOTH, ONE_SHORT, PAD_IN_SIZE,
                     FLIPPED, TRANSPOSED_TAPS, NO_BIAS, BIAS_PER_CHANNEL)
BACKWARD_CATALOGUE = (CROP_EMPTY, CROP_ONE, CROP_NONE, CROP_START, ASSIGN_DX, ASSIGN_DW, FLIP_DX, STRIDE_ROWS,
                      STRIDE_COLUMNS, STRIDE_BOTH, DB_AXES)


def _geometry(inputs):
    return tuple(int(np.asarray(inputs[k]).item()) for k in ("stride", "pad", "dilation"))


def conv_second_reference(inputs):
    S, P, d = _geometry(inputs)
    return {"out": v.conv_forward(inputs["x"], inputs["w"], inputs["b"], S, P, d)}


def conv_backward_second_reference(inputs):
    S, P, d = _geometry(inputs)
    return dict(zip(("dx", "dw", "db"), v.conv_backward(inputs["x"], inputs["w"], inputs["dout"], S, P, d)))


def conv_forward_variants(inputs):
    """The usual forward mistakes, as ``[(hint, {"out": array or None})]``."""
    x, w, b = inputs["x"], inputs["w"], inputs["b"]
    S, P, d = _geometry(inputs)
    C = x.shape[1]
    right = v.conv_forward(x, w, b, S, P, d)
    found = []
    if P > 0:
        found += [(PAD_MISSING, v.conv_forward(x, w, b, S, 0, d)),
                  (PAD_ONE_SIDE, v.conv_forward(x, w, b, S, P, d, pads=(0, 2 * P, 0, 2 * P))),
                  (PAD_ONE_SIDE, v.conv_forward(x, w, b, S, P, d, pads=(2 * P, 0, 2 * P, 0)))]
    size = right.shape[2:]
    if S > 1:
        found += [(STRIDE_ROWS, v.conv_forward(x, w, b, S, P, d, row_step=1, size=size)),
                  (STRIDE_COLUMNS, v.conv_forward(x, w, b, S, P, d, col_step=1, size=size))]
        if min(size) > 1:  # (with one row or column it is the other axis's mistake)
            found.append((STRIDE_BOTH, v.conv_forward(x, w, b, S, P, d, row_step=1, col_step=1, size=size)))
    found.append((ONE_SHORT, right[:, :, :-1, :-1]))
    found += [(PAD_IN_SIZE, right[:, :, :rows, :cols]) for rows, cols in _sizes_without_padding(x, w, S, P, d)]
    found.append((FLIPPED, v.conv_forward(x, np.asarray(w)[:, :, ::-1, ::-1], b, S, P, d)))
    if w.shape[2] == w.shape[3]:
        found.append((TRANSPOSED_TAPS, v.conv_forward(x, np.swapaxes(w, 2, 3), b, S, P, d)))
    found.append((NO_BIAS, right - np.asarray(b, np.float64)[None, :, None, None]))
    if C > 1:
        found.append((BIAS_PER_CHANNEL, v.conv_forward(x, w, b, S, P, d, bias_times=C)))
    return [(hint, {"out": out}) for hint, out in found]


def _sizes_without_padding(x, w, S, P, d):
    """The output sizes (rows, columns) of a size rule that leaves out the padding or counts it
    once (floor division), where they differ from the right size and from one short (ONE_SHORT
    names those) and leave at least one row and column."""
    if P == 0:
        return []
    spans = [(k - 1) * d + 1 for k in w.shape[2:]]
    right = [(n + 2 * P - span) // S + 1 for n, span in zip(x.shape[2:], spans)]
    found = []
    for counted in (0, P):
        rows, cols = ((n + counted - span) // S + 1 for n, span in zip(x.shape[2:], spans))
        if 0 < rows <= right[0] and 0 < cols <= right[1] and (rows, cols) not in (
                tuple(right), (right[0] - 1, right[1] - 1)) and (rows, cols) not in found:
            found.append((rows, cols))
    return found


def conv_backward_variants(inputs):
    """The usual backward mistakes, as ``[(hint, {output: array} or None)]`` (dx, dw, db)."""
    x, w, dout = inputs["x"], inputs["w"], inputs["dout"]
    S, P, d = _geometry(inputs)

    def grads(**switches):
        result = v.conv_backward(x, w, dout, S, P, d, **switches)
        return None if result is None else dict(zip(("dx", "dw", "db"), result))

    def dx_only(**switches):
        result = grads(**switches)
        return None if result is None else {"dx": result["dx"]}

    def dw_only(**switches):
        result = grads(**switches)
        return None if result is None else {"dw": result["dw"]}

    found = [(CROP_EMPTY, dx_only(crop="pad:-pad")), (CROP_ONE, dx_only(crop="1:-1"))]
    if P > 0:
        found += [(CROP_NONE, dx_only(crop="none")), (CROP_START, dx_only(crop="start"))]
    found += [(ASSIGN_DX, dx_only(assign_dx=True)), (FLIP_DX, dx_only(flip_dx=True)),
              (ASSIGN_DW, dw_only(assign_dw="sample")), (ASSIGN_DW, dw_only(assign_dw="batch"))]
    if S > 1:
        found += [(STRIDE_ROWS, grads(row_step=1)), (STRIDE_COLUMNS, grads(col_step=1))]
        if min(dout.shape[2:]) > 1:
            found.append((STRIDE_BOTH, grads(row_step=1, col_step=1)))
    dout64 = np.asarray(dout, np.float64)
    found.append((DB_AXES, {"db": dout64.sum(axis=(1, 2, 3))}))
    return found


def conv_case_inputs(check, case):
    """x, w, b and the hyperparameters of a convolution case, all as arrays."""
    rng, dtype = check.rng(case), check.dtype_of(case)
    x = rng.standard_normal(case["x"]).astype(dtype)
    w = rng.standard_normal(case["w"]).astype(dtype)
    b = rng.standard_normal(case["w"][0]).astype(dtype)
    return {
        "x": x, "w": w, "b": b,
        "stride": np.array(case.get("stride", 1)), "pad": np.array(case.get("pad", 0)),
        "dilation": np.array(case.get("dilation", 1)),
    }


def conv_reference(check, inputs):
    from cs231n_lib import conv_forward

    return conv_forward(inputs["x"], inputs["w"], inputs["b"], conv_param_of(check, inputs))


def conv_backward_inputs(check, case):
    """A convolution case's inputs plus ``dout``, random, of the forward output's shape."""
    inputs = conv_case_inputs(check, case)
    out_shape = conv_reference(check, inputs)[0].shape
    upstream = check.rng(dict(case, seed=int(case.get("seed", 0)) + 1))
    inputs["dout"] = upstream.standard_normal(out_shape).astype(inputs["x"].dtype)
    return inputs


def conv_backward_reference(check, inputs):
    from cs231n_lib import conv_backward

    dx, dw, db = conv_backward(inputs["dout"], conv_reference(check, inputs)[1])
    return {"dx": dx, "dw": dw, "db": db}


@register
class ConvOutputSize(Trusted, kit.ConvOutputSize):
    catalogue = (NO_PLUS_ONE, PAD_ONCE, NO_DIVISIBILITY, NO_FIT_CHECK)

    def variants(self, case, inputs):
        W, F, S, P = (self.scalar(inputs, k) for k in self.ARGS)

        def returns(size):
            return {"size": np.array(int(size)), "error": np.array("none"), "type": np.array("int")}

        span = W - F + 2 * P
        found = [(PAD_ONCE, returns((W - F + P) // S + 1) if (W - F + P) >= 0 and (W - F + P) % S == 0 else None)]
        if span >= 0 and span % S == 0:
            found.append((NO_PLUS_ONE, returns(span // S)))
        if span >= 0 and span % S:
            found.append((NO_DIVISIBILITY, returns(span // S + 1)))
        if span < 0:
            found.append((NO_FIT_CHECK, returns(span // S + 1)))
        return found

    def make_inputs(self, case):
        return {k: np.array(case[k]) for k in self.ARGS}

    def reference(self, inputs):
        from cs231n_lib.sizing import conv_output_size

        args = [self.scalar(inputs, k) for k in self.ARGS]
        try:
            size = conv_output_size(*args)
        except ValueError:
            return self.raised()
        return {"size": np.array(size), "error": np.array("none"), "type": np.array("int")}


@register
class ConvForwardNaive(Trusted, kit.ConvForwardNaive):
    catalogue = FORWARD_CATALOGUE

    def variants(self, case, inputs):
        return conv_forward_variants(inputs)

    def second_reference(self, inputs):
        return conv_second_reference(inputs)

    def make_inputs(self, case):
        return conv_case_inputs(self, case)

    def reference(self, inputs):
        return {"out": conv_reference(self, inputs)[0]}


@register
class ConvBackwardNaive(Trusted, kit.ConvBackwardNaive):
    catalogue = BACKWARD_CATALOGUE

    def variants(self, case, inputs):
        return conv_backward_variants(inputs)

    def second_reference(self, inputs):
        return conv_backward_second_reference(inputs)

    def make_inputs(self, case):
        return conv_backward_inputs(self, case)

    def reference(self, inputs):
        return conv_backward_reference(self, inputs)


@register
class ConvForwardDilated(Trusted, kit.ConvForwardDilated):
    catalogue = (DILATION_IGNORED, DILATION_SPAN, DILATION_SIZE_ONLY) + FORWARD_CATALOGUE

    def variants(self, case, inputs):
        x, w, b = inputs["x"], inputs["w"], inputs["b"]
        S, P, d = _geometry(inputs)
        HH, WW = w.shape[2:]
        right = v.conv_forward(x, w, b, S, P, d)
        wide = (v.output_size(x.shape[2], HH * d, S, P), v.output_size(x.shape[3], WW * d, S, P))
        found = [(DILATION_IGNORED, {"out": v.conv_forward(x, w, b, S, P, 1)}),
                 (DILATION_SPAN, {"out": v.conv_forward(x, w, b, S, P, d, size=wide)}),
                 (DILATION_SIZE_ONLY, {"out": v.conv_forward(x, w, b, S, P, 1, size=right.shape[2:])})]
        return found + conv_forward_variants(inputs)

    def make_inputs(self, case):
        return conv_case_inputs(self, case)

    def reference(self, inputs):
        return {"out": conv_reference(self, inputs)[0]}
