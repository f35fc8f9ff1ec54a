"""Checks of notebook 3 (pooling): naive max and average pooling, forward and backward, and the
student's fast max pooling forward pass.

A case::

    {"x": (N, C, H, W), "pool": (pool_height, pool_width), "stride": S, "seed": 0}

with optional ``"ties": True`` (inputs drawn from a few integers, so that windows hold several
equal maxima: the gradient must go to the FIRST maximum in row-major order, as in cs231n_lib)
and ``"dtype": "float32"``.
"""

import numpy as np

from ..compare import coerce
from .base import Check, register

TIES_TO_ALL = "the gradient went to every maximum of a window; send it to the first maximum only"
TIES_TO_LAST = "ties went to the last maximum; the first maximum in row-major order wins"


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


def pool_param_of(check, inputs):
    return {key: check.scalar(inputs, key) for key in ("pool_height", "pool_width", "stride")}


def add_upstream_gradient(check, case, inputs, forward):
    """Add ``dout`` (random, of the forward output's shape) to a backward case's inputs."""
    out_shape = forward(inputs["x"], pool_param_of(check, inputs))[0].shape
    rng = check.rng(dict(case, seed=int(case.get("seed", 0)) + 1))
    inputs["dout"] = rng.standard_normal(out_shape).astype(inputs["x"].dtype)
    return inputs


class PoolForward(Check):
    """``name(x, pool_param) -> (out, cache)``; the check compares ``out``."""

    library_forward = ""

    def make_inputs(self, case):
        return pool_case_inputs(self, case)

    def reference(self, inputs):
        import cs231n_lib

        forward = getattr(cs231n_lib, self.library_forward)
        out, _ = forward(inputs["x"], pool_param_of(self, inputs))
        return {"out": out}

    def call(self, namespace, inputs):
        fn = self.student(namespace, self.name)
        result = fn(inputs["x"], pool_param_of(self, inputs))
        if not isinstance(result, tuple) or len(result) != 2:
            raise TypeError(f"{self.name} must return a tuple (out, cache); found {type(result).__name__}")
        return {"out": result[0]}


class PoolBackward(Check):
    """``name(dout, cache) -> dx``, the cache coming from the student's own forward pass."""

    library_forward = ""
    library_backward = ""
    student_forward = ""

    def make_inputs(self, case):
        import cs231n_lib

        inputs = pool_case_inputs(self, case)
        return add_upstream_gradient(self, case, inputs, getattr(cs231n_lib, self.library_forward))

    def reference(self, inputs):
        import cs231n_lib

        _, cache = getattr(cs231n_lib, self.library_forward)(inputs["x"], pool_param_of(self, inputs))
        return {"dx": getattr(cs231n_lib, self.library_backward)(inputs["dout"], cache)}

    def call(self, namespace, inputs):
        forward = self.student(namespace, self.student_forward)
        backward = self.student(namespace, self.name)
        _, cache = forward(inputs["x"], pool_param_of(self, inputs))
        return {"dx": backward(inputs["dout"], cache)}


@register
class MaxPoolForwardNaive(PoolForward):
    """max_pool_forward_naive(x, pool_param) -> (out, cache)."""

    name = "max_pool_forward_naive"
    library_forward = "max_pool_forward"


@register
class MaxPoolBackwardNaive(PoolBackward):
    """max_pool_backward_naive(dout, cache) -> dx (first maximum wins a tie)."""

    name = "max_pool_backward_naive"
    library_forward = "max_pool_forward"
    library_backward = "max_pool_backward"
    student_forward = "max_pool_forward_naive"
    requires = ("max_pool_forward_naive", "max_pool_backward_naive")

    fixed_hints = (TIES_TO_ALL, TIES_TO_LAST)

    def extra_hints(self, case, expected, found):
        """Recognise the two usual tie-breaking mistakes (every maximum, or the last one)."""
        dx, problem = coerce(found.get("dx"))
        if problem or dx.dtype.kind not in "biuf" or dx.shape != np.shape(expected["dx"]):
            return []
        dx = dx.astype(np.float64)
        inputs = self.make_inputs(case)
        for rule, hint in (("all", TIES_TO_ALL), ("last", TIES_TO_LAST)):
            if np.allclose(dx, max_pool_backward_tie_rule(inputs, rule), rtol=0, atol=1e-5 * (1 + np.abs(dx).max())):
                return [hint]
        return []


@register
class AvgPoolForwardNaive(PoolForward):
    """avg_pool_forward_naive(x, pool_param) -> (out, cache)."""

    name = "avg_pool_forward_naive"
    library_forward = "avg_pool_forward"


@register
class AvgPoolBackwardNaive(PoolBackward):
    """avg_pool_backward_naive(dout, cache) -> dx."""

    name = "avg_pool_backward_naive"
    library_forward = "avg_pool_forward"
    library_backward = "avg_pool_backward"
    student_forward = "avg_pool_forward_naive"
    requires = ("avg_pool_forward_naive", "avg_pool_backward_naive")


@register
class MaxPoolForwardFast(PoolForward):
    """max_pool_forward_fast(x, pool_param) -> (out, cache): reshape trick or im2col."""

    name = "max_pool_forward_fast"
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
