"""Trusted checks of notebook 3 (pooling): inputs, references and the tie-breaking mistakes."""

import numpy as np

from cs231n_checks import pooling as kit
from cs231n_checks.pooling import TIES_TO_ALL, TIES_TO_LAST, pool_param_of  # noqa: F401

from .base import Trusted, register


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


@register
class MaxPoolBackwardNaive(PoolBackward, kit.MaxPoolBackwardNaive):
    library_forward = "max_pool_forward"
    library_backward = "max_pool_backward"

    def mistakes(self, case, inputs):
        """The two usual tie-breaking mistakes: the gradient to every maximum, or to the last one."""
        return [(TIES_TO_ALL, {"dx": max_pool_backward_tie_rule(inputs, "all")}),
                (TIES_TO_LAST, {"dx": max_pool_backward_tie_rule(inputs, "last")})]


@register
class AvgPoolForwardNaive(PoolForward, kit.AvgPoolForwardNaive):
    library_forward = "avg_pool_forward"


@register
class AvgPoolBackwardNaive(PoolBackward, kit.AvgPoolBackwardNaive):
    library_forward = "avg_pool_forward"
    library_backward = "avg_pool_backward"


@register
class MaxPoolForwardFast(PoolForward, kit.MaxPoolForwardFast):
    library_forward = "max_pool_forward"


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
