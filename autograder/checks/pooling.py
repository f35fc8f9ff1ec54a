"""Trusted checks of notebook 3 (pooling): inputs, references and known mistakes."""

import numpy as np

from cs231n_checks import pooling as kit
from cs231n_checks.pooling import TIES_TO_ALL, TIES_TO_LAST, pool_param_of  # noqa: F401

from . import variants as v
from .base import Trusted, register
from .convolution import STRIDE_BOTH, STRIDE_COLUMNS, STRIDE_ROWS

STRIDE_IGNORED = ("the stride is ignored: a window starts every `stride` rows and columns, and the output has "
                  "(H - pool_height)/stride + 1 rows")
STRIDE_IS_POOL = "the windows move by the pool size instead of the stride: the window of output (i, j) starts at (i * stride, j * stride)"
ONE_SHORT = "one output row and column short: the output size is (H - pool_height)/stride + 1, the + 1 counts the first window"
DIMS_SWAPPED = "pool_height and pool_width are swapped: a window has pool_height rows and pool_width columns"
AVERAGE_NOT_MAX = "this is each window's average: max pooling keeps its largest entry"
MAX_NOT_AVERAGE = "this is each window's maximum: average pooling takes its mean"
SUM_NOT_MEAN = "this is each window's sum: divide by the window's size, pool_height * pool_width"
WRONG_COUNT = "the window's size is pool_height * pool_width: the division uses another count"
ASSIGN_OVERLAP = "dx is written with = where windows overlap, so the last window wins: add the gradients with +="
SPREAD = "every entry of a window got the gradient: in max pooling only the maximum did anything"
NO_DOUT = "dx holds the mask of the maxima without dout: multiply by dout[n, c, i, j]"
NO_SHARE = "each entry of a window gets dout / (pool_height * pool_width), its share of the mean; here it got all of dout"
CHANNELS_MIXED = ("the windows span every channel: pool each channel on its own (im2col on x reshaped to "
                  "(N * C, 1, H, W), for instance)")
RESHAPE_NOT_TILING = ("the reshape trick only works when the windows tile the input (pool_height = pool_width = "
                      "stride, sizes divisible): use im2col or loops otherwise")
SAMPLES_CHANNELS_MIXED = ("samples and channels are mixed up: pool x.reshape(N * C, 1, H, W), whose rows come "
                          "sample by sample, so that the result reshapes to (N, C, Hout, Wout)")
RESHAPE_AXES = "the reshape trick reduces over the wrong axes: x.reshape(N, C, H // S, S, W // S, S).max(axis=(3, 5))"


def _geometry(inputs):
    return tuple(int(np.asarray(inputs[k]).item()) for k in ("pool_height", "pool_width", "stride"))


def pool_forward_variants(inputs, reduce):
    """The usual mistakes of a pooling forward pass, as ``[(hint, {"out": array or None})]``."""
    x = inputs["x"]
    PH, PW, S = _geometry(inputs)
    right = v.pool_forward(x, PH, PW, S, reduce)
    size = right.shape[2:]
    found = []
    if S > 1:
        found += [(STRIDE_IGNORED, v.pool_forward(x, PH, PW, 1, reduce)),
                  (STRIDE_ROWS, v.pool_forward(x, PH, PW, S, reduce, row_step=1, size=size)),
                  (STRIDE_COLUMNS, v.pool_forward(x, PH, PW, S, reduce, col_step=1, size=size))]
        if min(size) > 1:  # (with one row or column it is the other axis's mistake)
            found.append((STRIDE_BOTH, v.pool_forward(x, PH, PW, S, reduce, row_step=1, col_step=1, size=size)))
    if (S != PH or S != PW) and reduce == "max":
        found.append((STRIDE_IS_POOL, v.pool_forward(x, PH, PW, S, reduce, row_step=PH, col_step=PW, size=size)))
    found.append((ONE_SHORT, right[:, :, :-1, :-1]))
    if PH != PW:
        found.append((DIMS_SWAPPED, v.pool_forward(x, PW, PH, S, reduce)))
    if reduce == "max":
        found.append((AVERAGE_NOT_MAX, v.pool_forward(x, PH, PW, S, "mean")))
    else:
        found += [(SUM_NOT_MEAN, v.pool_forward(x, PH, PW, S, "mean", divisor=1)),
                  (MAX_NOT_AVERAGE, v.pool_forward(x, PH, PW, S, "max"))]
        if PH != PW:
            found += [(WRONG_COUNT, v.pool_forward(x, PH, PW, S, "mean", divisor=PH * PH)),
                      (WRONG_COUNT, v.pool_forward(x, PH, PW, S, "mean", divisor=PW * PW))]
    return [(hint, {"out": out}) for hint, out in found]


POOL_FORWARD_CATALOGUE = (STRIDE_IGNORED, STRIDE_ROWS, STRIDE_COLUMNS, STRIDE_BOTH, STRIDE_IS_POOL, ONE_SHORT,
                          DIMS_SWAPPED)


def pool_case_inputs(check, case):
    """x and the pooling hyperparameters of a case, all as arrays."""
    rng, dtype = check.rng(case), check.dtype_of(case)
    if case.get("ties", False):
        # Few distinct values: most windows contain a repeated maximum.
        x = rng.integers(-2, 3, size=case["x"]).astype(dtype)
    else:
        x = rng.standard_normal(case["x"]).astype(dtype)
    pool_height, pool_width = case.get("pool", (2, 2))
    return {
        "x": x,
        "pool_height": np.array(pool_height), "pool_width": np.array(pool_width),
        "stride": np.array(case.get("stride", 2)),
    }


def add_upstream_gradient(check, case, inputs, forward):
    """Add ``dout`` (random, of the forward output's shape) to a backward case's inputs."""
    out_shape = forward(inputs["x"], pool_param_of(check, inputs))[0].shape
    rng = check.rng(dict(case, seed=int(case.get("seed", 0)) + 1))
    inputs["dout"] = rng.standard_normal(out_shape).astype(inputs["x"].dtype)
    return inputs


class PoolForward(Trusted):
    library_forward = ""
    reduce = "max"

    def variants(self, case, inputs):
        return pool_forward_variants(inputs, self.reduce)

    def second_reference(self, inputs):
        return {"out": v.pool_forward(inputs["x"], *_geometry(inputs), self.reduce)}

    def make_inputs(self, case):
        return pool_case_inputs(self, case)

    def reference(self, inputs):
        import cs231n_lib

        out, _ = getattr(cs231n_lib, self.library_forward)(inputs["x"], pool_param_of(self, inputs))
        return {"out": out}


class PoolBackward(Trusted):
    library_forward = ""
    library_backward = ""

    def make_inputs(self, case):
        import cs231n_lib

        inputs = pool_case_inputs(self, case)
        return add_upstream_gradient(self, case, inputs, getattr(cs231n_lib, self.library_forward))

    def reference(self, inputs):
        import cs231n_lib

        _, cache = getattr(cs231n_lib, self.library_forward)(inputs["x"], pool_param_of(self, inputs))
        return {"dx": getattr(cs231n_lib, self.library_backward)(inputs["dout"], cache)}


@register
class MaxPoolForwardNaive(PoolForward, kit.MaxPoolForwardNaive):
    library_forward = "max_pool_forward"
    catalogue = POOL_FORWARD_CATALOGUE + (AVERAGE_NOT_MAX,)


@register
class MaxPoolBackwardNaive(PoolBackward, kit.MaxPoolBackwardNaive):
    library_forward = "max_pool_forward"
    library_backward = "max_pool_backward"

    # (no mistake for the argmax unravelled with pool_height: windows tile the input exactly, so
    # the last ones touch its edge, and a position unravelled past the window there raises an
    # IndexError on almost every case, which the verdict shows with its line)
    catalogue = (TIES_TO_ALL, TIES_TO_LAST, ASSIGN_OVERLAP, SPREAD, NO_DOUT, STRIDE_ROWS, STRIDE_COLUMNS, STRIDE_BOTH)

    def variants(self, case, inputs):
        """Ties to every maximum or to the last, = for +=, the gradient spread over the window
        or without dout, a stride ignored."""
        x, dout = inputs["x"], inputs["dout"]
        PH, PW, S = _geometry(inputs)

        def dx(**switches):
            return {"dx": v.max_pool_backward(x, dout, PH, PW, S, **switches)}

        found = [(TIES_TO_ALL, dx(ties="all")), (TIES_TO_LAST, dx(ties="last")),
                 (ASSIGN_OVERLAP, dx(assign="entry")), (ASSIGN_OVERLAP, dx(assign="window")),
                 (SPREAD, dx(spread=True)), (NO_DOUT, dx(ones=True))]
        if S > 1:
            found += [(STRIDE_ROWS, dx(row_step=1)), (STRIDE_COLUMNS, dx(col_step=1))]
            if min(dout.shape[2:]) > 1:
                found.append((STRIDE_BOTH, dx(row_step=1, col_step=1)))
        return found


@register
class AvgPoolForwardNaive(PoolForward, kit.AvgPoolForwardNaive):
    library_forward = "avg_pool_forward"
    reduce = "mean"
    catalogue = (STRIDE_IGNORED, STRIDE_ROWS, STRIDE_COLUMNS, STRIDE_BOTH, ONE_SHORT, DIMS_SWAPPED, SUM_NOT_MEAN,
                 MAX_NOT_AVERAGE, WRONG_COUNT)


@register
class AvgPoolBackwardNaive(PoolBackward, kit.AvgPoolBackwardNaive):
    library_forward = "avg_pool_forward"
    library_backward = "avg_pool_backward"
    catalogue = (NO_SHARE, ASSIGN_OVERLAP, WRONG_COUNT, DIMS_SWAPPED, STRIDE_ROWS, STRIDE_COLUMNS, STRIDE_BOTH)

    def variants(self, case, inputs):
        """All of dout to each entry, = for +=, a wrong count, a stride ignored."""
        shape, dout = inputs["x"].shape, inputs["dout"]
        PH, PW, S = _geometry(inputs)

        def dx(**switches):
            return {"dx": v.avg_pool_backward(shape, dout, PH, PW, S, **switches)}

        found = [(NO_SHARE, dx(share=1.0)), (ASSIGN_OVERLAP, dx(assign=True))]
        if PH != PW:
            found += [(WRONG_COUNT, dx(share=1.0 / (PH * PH))), (WRONG_COUNT, dx(share=1.0 / (PW * PW))),
                      (DIMS_SWAPPED, {"dx": v.avg_pool_backward(shape, dout, PW, PH, S)})]
        if S > 1:
            found += [(STRIDE_ROWS, dx(row_step=1)), (STRIDE_COLUMNS, dx(col_step=1))]
            if min(dout.shape[2:]) > 1:
                found.append((STRIDE_BOTH, dx(row_step=1, col_step=1)))
        return found


@register
class MaxPoolForwardFast(PoolForward, kit.MaxPoolForwardFast):
    library_forward = "max_pool_forward"
    catalogue = (CHANNELS_MIXED, SAMPLES_CHANNELS_MIXED, RESHAPE_NOT_TILING, RESHAPE_AXES, STRIDE_IGNORED,
                 AVERAGE_NOT_MAX)

    def variants(self, case, inputs):
        """Channels pooled together by im2col, the reshape trick where windows do not tile or
        over the wrong axes, and the naive pass's mistakes."""
        x = inputs["x"]
        PH, PW, S = _geometry(inputs)
        N, C, H, W = x.shape
        found = []
        cols = v.im2col(x, PH, PW, S, 0)
        if C > 1 and cols is not None:
            Ho, Wo = (H - PH) // S + 1, (W - PW) // S + 1
            pooled = cols.max(axis=0).reshape(N, 1, Ho, Wo)
            found.append((CHANNELS_MIXED, {"out": np.repeat(pooled, C, axis=1)}))
        right = v.pool_forward(x, PH, PW, S)
        if N > 1 and C > 1:
            found.append((SAMPLES_CHANNELS_MIXED, {"out": right.transpose(1, 0, 2, 3).reshape(right.shape)}))
        if (PH, PW) != (S, S) and H >= PH and W >= PW:
            Ht, Wt = H // PH, W // PW
            tiles = np.asarray(x, np.float64)[:, :, :Ht * PH, :Wt * PW].reshape(N, C, Ht, PH, Wt, PW)
            found.append((RESHAPE_NOT_TILING, {"out": tiles.max(axis=(3, 5))}))
        elif H % S == 0 and W % S == 0:
            tiles = np.asarray(x, np.float64).reshape(N, C, H // S, S, W // S, S)
            found.append((RESHAPE_AXES, {"out": tiles.max(axis=(2, 4))}))
        keep = (STRIDE_IGNORED, AVERAGE_NOT_MAX)
        return found + [(hint, out) for hint, out in pool_forward_variants(inputs, "max") if hint in keep]


def max_pool_backward_tie_rule(inputs, rule):
    """dx of max pooling when ties go to every maximum (``rule="all"``) or to the last one.

    Loops, for hints only (cases are small).
    """
    x, dout = inputs["x"].astype(np.float64), inputs["dout"].astype(np.float64)
    PH, PW, S = (int(np.asarray(inputs[k]).item()) for k in ("pool_height", "pool_width", "stride"))
    N, C, Hout, Wout = dout.shape
    dx = np.zeros_like(x)
    for n in range(N):
        for c in range(C):
            for i in range(Hout):
                for j in range(Wout):
                    window = x[n, c, i * S:i * S + PH, j * S:j * S + PW]
                    mask = window == window.max()
                    if rule == "last":
                        last = np.flatnonzero(mask.ravel())[-1]
                        mask = np.zeros(mask.size, bool)
                        mask[last] = True
                        mask = mask.reshape(PH, PW)
                    dx[n, c, i * S:i * S + PH, j * S:j * S + PW] += mask * dout[n, c, i, j]
    return dx
