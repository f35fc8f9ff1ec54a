"""Visible checks of notebook 3 (pooling): naive max and average pooling, forward and backward,
and the student's fast max pooling forward pass.

A case::

    {"x": (N, C, H, W), "pool": (pool_height, pool_width), "stride": S, "seed": 0}

with optional ``"ties": True`` (inputs drawn from a few integers, so that windows hold several
equal maxima: the gradient must go to the FIRST maximum in row-major order) and
``"dtype": "float32"``.
"""

from .base import Check, register

TIES_TO_ALL = "the gradient went to every maximum of a window; send it to the first maximum only"
TIES_TO_LAST = "ties went to the last maximum; the first maximum in row-major order wins"
POOL_SIZE_RULE = ("the spatial size (H, W) differs: pooling has no padding, the output has "
                  "(H - pool_height)/stride + 1 rows and (W - pool_width)/stride + 1 columns")


def pool_param_of(check, inputs):
    return {key: check.scalar(inputs, key) for key in ("pool_height", "pool_width", "stride")}


class PoolForward(Check):
    """``name(x, pool_param) -> (out, cache)``; the check compares ``out``."""

    size_hint = POOL_SIZE_RULE
    padded = False  # pooling has no padding

    def call(self, namespace, inputs):
        fn = self.student(namespace, self.name)
        result = fn(inputs["x"], pool_param_of(self, inputs))
        if not isinstance(result, tuple) or len(result) != 2:
            raise TypeError(f"{self.name} must return a tuple (out, cache); found {type(result).__name__}")
        return {"out": result[0]}


class PoolBackward(Check):
    """``name(dout, cache) -> dx``, the cache coming from the student's own forward pass."""

    student_forward = ""
    padded = False

    def call(self, namespace, inputs):
        forward = self.student(namespace, self.student_forward)
        backward = self.student(namespace, self.name)
        _, cache = forward(inputs["x"], pool_param_of(self, inputs))
        return {"dx": backward(inputs["dout"], cache)}


@register
class MaxPoolForwardNaive(PoolForward):
    """max_pool_forward_naive(x, pool_param) -> (out, cache)."""

    name = "max_pool_forward_naive"


@register
class MaxPoolBackwardNaive(PoolBackward):
    """max_pool_backward_naive(dout, cache) -> dx (first maximum wins a tie)."""

    name = "max_pool_backward_naive"
    student_forward = "max_pool_forward_naive"
    requires = ("max_pool_forward_naive", "max_pool_backward_naive")
    fixed_hints = (TIES_TO_ALL, TIES_TO_LAST)


@register
class AvgPoolForwardNaive(PoolForward):
    """avg_pool_forward_naive(x, pool_param) -> (out, cache)."""

    name = "avg_pool_forward_naive"


@register
class AvgPoolBackwardNaive(PoolBackward):
    """avg_pool_backward_naive(dout, cache) -> dx."""

    name = "avg_pool_backward_naive"
    student_forward = "avg_pool_forward_naive"
    requires = ("avg_pool_forward_naive", "avg_pool_backward_naive")


@register
class MaxPoolForwardFast(PoolForward):
    """max_pool_forward_fast(x, pool_param) -> (out, cache): reshape trick or im2col."""

    name = "max_pool_forward_fast"
