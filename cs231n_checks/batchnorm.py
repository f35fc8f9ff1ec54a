"""Visible checks of notebook 4 (batch normalization): batchnorm forward (train and test mode,
running averages included), its two backward passes, spatial batchnorm, and the optional layer
norm and group norm.

Cases::

    {"x": (N, D), "mode": "train", "momentum": 0.9, "eps": 1e-5, "seed": 0}      # batchnorm
    {"x": (N, C, H, W), "mode": "test", "seed": 1, "dtype": "float32"}           # spatial
    {"x": (N, D), "eps": 1e-5}                                                   # layernorm
    {"x": (N, C, H, W), "G": 2}                                                  # groupnorm

Defaults: mode "train", momentum 0.9, eps 1e-5. ``call`` builds ``bn_param`` fresh from the
inputs and returns the updated running averages with the output, so that the update rule
``running = momentum * running + (1 - momentum) * batch_statistic`` is graded too.
"""

import numpy as np

from .base import Check, register
from .compare import coerce

SWAPPED_MOMENTUM = ("the running averages look updated with the momentum weights swapped: "
                    "use running = momentum * running + (1 - momentum) * batch_statistic")
UNBIASED_VARIANCE = ("this matches the unbiased variance (dividing by N - 1): batch normalization "
                     "uses the biased one, the plain mean of the squared deviations (divide by N)")
TEST_WITH_BATCH_STATS = ("in 'test' mode normalise with the running averages from bn_param, "
                         "not with the statistics of the batch")
TEST_UPDATES_RUNNING = "in 'test' mode the running averages must stay as they are"
CONSTANT_STATISTICS = ("dx is what you get if the batch mean and variance were constants: x also "
                       "reaches the output through the mean and the variance")


def close(found, want):
    """True when a student's array equals ``want`` up to rounding; False for anything unusable."""
    found, problem = coerce(found)
    if problem or found.dtype.kind not in "biuf":
        return False
    want = np.asarray(want, dtype=np.float64)
    if found.shape != want.shape:
        return False
    return bool(np.allclose(found.astype(np.float64), want, rtol=0, atol=1e-5 * (1 + np.abs(want).max(initial=0.0))))


def same_shape(found, want):
    """True when a student's value is a numeric array of the shape of ``want``."""
    found, problem = coerce(found)
    return not problem and found.dtype.kind in "biuf" and found.shape == np.shape(want)


class BatchnormCheck(Check):
    """Shared bn_param handling of batchnorm and spatial batchnorm."""

    forward_name = ""  # the student's forward pass
    # no padding, no windows: a pattern of wrong rows or columns comes from mixed channels
    padded = windowed = False

    def bn_param_of(self, inputs, mode=None):
        """A fresh bn_param dict (copies of the running averages) for one call."""
        return {
            "mode": str(inputs["mode"].item()) if mode is None else mode,
            "eps": self.scalar(inputs, "eps", float),
            "momentum": self.scalar(inputs, "momentum", float),
            "running_mean": np.array(inputs["running_mean"], copy=True),
            "running_var": np.array(inputs["running_var"], copy=True),
        }

    def forward_outputs(self, forward, inputs):
        bn_param = self.bn_param_of(inputs)
        out, _ = forward(inputs["x"], inputs["gamma"], inputs["beta"], bn_param)
        return {"out": out, "running_mean": bn_param.get("running_mean"),
                "running_var": bn_param.get("running_var")}

    def backward_outputs(self, forward, backward, inputs):
        _, cache = forward(inputs["x"], inputs["gamma"], inputs["beta"], self.bn_param_of(inputs, "train"))
        dx, dgamma, dbeta = backward(inputs["dout"], cache)
        return {"dx": dx, "dgamma": dgamma, "dbeta": dbeta}

    #: backward checks always run the forward pass in train mode
    always_train = False

    def describe(self, case):
        mode = "train" if self.always_train else case.get("mode", "train")
        parts = [f"x {tuple(case['x'])}", f"mode={mode}", f"momentum={case.get('momentum', 0.9)}"]
        if "eps" in case:
            parts.append(f"eps={case['eps']}")
        parts.append(str(case.get("dtype", "float64")))
        return ", ".join(parts)


class BatchnormForwardCheck(BatchnormCheck):
    """``forward(x, gamma, beta, bn_param) -> (out, cache)``: out and the running averages."""

    def call(self, namespace, inputs):
        return self.forward_outputs(self.student(namespace, self.name), inputs)

    fixed_hints = (SWAPPED_MOMENTUM, UNBIASED_VARIANCE, TEST_WITH_BATCH_STATS, TEST_UPDATES_RUNNING)

    def extra_hints(self, case, inputs, expected, found):
        """In test mode the running averages handed in must come back unchanged."""
        if str(np.asarray(inputs["mode"]).item()) != "test":
            return []
        old_mean, old_var = inputs["running_mean"], inputs["running_var"]
        found_mean, found_var = found.get("running_mean"), found.get("running_var")
        if (same_shape(found_mean, old_mean) and same_shape(found_var, old_var)
                and not (close(found_mean, old_mean) and close(found_var, old_var))):
            return [TEST_UPDATES_RUNNING]
        return []


class BatchnormBackwardCheck(BatchnormCheck):
    """``backward(dout, cache) -> (dx, dgamma, dbeta)``, the cache from the student's forward
    pass in train mode."""

    always_train = True

    def call(self, namespace, inputs):
        return self.backward_outputs(self.student(namespace, self.forward_name),
                                     self.student(namespace, self.name), inputs)

    fixed_hints = (CONSTANT_STATISTICS,)


@register
class BatchnormForward(BatchnormForwardCheck):
    """batchnorm_forward(x, gamma, beta, bn_param) on x of shape (N, D)."""

    name = "batchnorm_forward"
    forward_name = "batchnorm_forward"


@register
class BatchnormBackward(BatchnormBackwardCheck):
    """batchnorm_backward(dout, cache), through the computation graph."""

    name = "batchnorm_backward"
    forward_name = "batchnorm_forward"
    requires = ("batchnorm_forward", "batchnorm_backward")


@register
class BatchnormBackwardAlt(BatchnormBackwardCheck):
    """batchnorm_backward_alt(dout, cache), the simplified closed form."""

    name = "batchnorm_backward_alt"
    forward_name = "batchnorm_forward"
    requires = ("batchnorm_forward", "batchnorm_backward_alt")


@register
class SpatialBatchnormForward(BatchnormForwardCheck):
    """spatial_batchnorm_forward(x, gamma, beta, bn_param) on x of shape (N, C, H, W)."""

    name = "spatial_batchnorm_forward"
    forward_name = "spatial_batchnorm_forward"


@register
class SpatialBatchnormBackward(BatchnormBackwardCheck):
    """spatial_batchnorm_backward(dout, cache)."""

    name = "spatial_batchnorm_backward"
    forward_name = "spatial_batchnorm_forward"
    requires = ("spatial_batchnorm_forward", "spatial_batchnorm_backward")


# --------------------------------------------------------------------------------------------
# optional: layer normalization and group normalization


class PerSampleNormCheck(Check):
    """Layer norm (x of shape (N, D)) and group norm (x of shape (N, C, H, W), G groups)."""

    forward_name = ""
    backward_name = ""
    grouped = False
    padded = windowed = False

    def run_forward(self, forward, inputs):
        param = {"eps": self.scalar(inputs, "eps", float)}
        if self.grouped:
            return forward(inputs["x"], inputs["gamma"], inputs["beta"], self.scalar(inputs, "G"), param)
        return forward(inputs["x"], inputs["gamma"], inputs["beta"], param)

    def outputs(self, forward, backward, inputs):
        out, cache = self.run_forward(forward, inputs)
        if self.backward_name != self.name:
            return {"out": out}
        dx, dgamma, dbeta = backward(inputs["dout"], cache)
        return {"dx": dx, "dgamma": dgamma, "dbeta": dbeta}

    def call(self, namespace, inputs):
        backward = self.student(namespace, self.name) if self.backward_name == self.name else None
        return self.outputs(self.student(namespace, self.forward_name), backward, inputs)


@register
class LayernormForward(PerSampleNormCheck):
    name = "layernorm_forward"
    forward_name = "layernorm_forward"
    backward_name = "layernorm_backward"


@register
class LayernormBackward(PerSampleNormCheck):
    name = "layernorm_backward"
    forward_name = "layernorm_forward"
    backward_name = "layernorm_backward"
    requires = ("layernorm_forward", "layernorm_backward")


@register
class GroupnormForward(PerSampleNormCheck):
    name = "spatial_groupnorm_forward"
    forward_name = "spatial_groupnorm_forward"
    backward_name = "spatial_groupnorm_backward"
    grouped = True


@register
class GroupnormBackward(PerSampleNormCheck):
    name = "spatial_groupnorm_backward"
    forward_name = "spatial_groupnorm_forward"
    backward_name = "spatial_groupnorm_backward"
    grouped = True
    requires = ("spatial_groupnorm_forward", "spatial_groupnorm_backward")
