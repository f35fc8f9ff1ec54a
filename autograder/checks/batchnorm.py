"""Checks of notebook 4 (batch normalization): batchnorm forward (train and test mode, running
averages included), its two backward passes, spatial batchnorm, and the optional layer norm and
group norm.

Cases::

    {"x": (N, D), "mode": "train", "momentum": 0.9, "eps": 1e-5, "seed": 0}      # batchnorm
    {"x": (N, C, H, W), "mode": "test", "seed": 1, "dtype": "float32"}           # spatial
    {"x": (N, D), "eps": 1e-5}                                                   # layernorm
    {"x": (N, C, H, W), "G": 2}                                                  # groupnorm

Defaults: mode "train", momentum 0.9, eps 1e-5. The features (axis 1) get their own scale and
offset, so that a mistake in the normalisation axis shows. The running averages handed to the
student are random (not zeros and ones), so that an update with the momentum weights swapped,
or an update in test mode, cannot go unnoticed.

``call`` builds ``bn_param`` fresh from the inputs and returns the updated running averages
with the output, so that the update rule ``running = momentum * running + (1 - momentum) *
batch_statistic`` is graded too.
"""

import numpy as np

from ..compare import coerce
from .base import Check, register

SWAPPED_MOMENTUM = ("the running averages look updated with the momentum weights swapped: "
                    "use running = momentum * running + (1 - momentum) * batch_statistic")
UNBIASED_VARIANCE = ("this matches the unbiased variance (dividing by N - 1): batch normalization "
                     "uses the biased one, the plain mean of the squared deviations (divide by N)")
TEST_WITH_BATCH_STATS = ("in 'test' mode normalise with the running averages from bn_param, "
                         "not with the statistics of the batch")
TEST_UPDATES_RUNNING = "in 'test' mode the running averages must stay as they are"
CONSTANT_STATISTICS = ("dx is what you get if the batch mean and variance were constants: x also "
                       "reaches the output through the mean and the variance")


def _close(found, want):
    """True when a student's array equals ``want`` up to rounding; False for anything unusable."""
    found, problem = coerce(found)
    if problem or found.dtype.kind not in "biuf":
        return False
    want = np.asarray(want, dtype=np.float64)
    if found.shape != want.shape:
        return False
    return bool(np.allclose(found.astype(np.float64), want, rtol=0, atol=1e-5 * (1 + np.abs(want).max(initial=0.0))))


def _same_shape(found, want):
    """True when a student's value is a numeric array of the shape of ``want``."""
    found, problem = coerce(found)
    return not problem and found.dtype.kind in "biuf" and found.shape == np.shape(want)


def feature_data(check, case, rng):
    """x with its own scale and offset per feature/channel (axis 1)."""
    shape = tuple(case["x"])
    D = shape[1]
    along_axis1 = (1, D) + (1,) * (len(shape) - 2)
    scale = rng.uniform(0.5, 3.0, D).reshape(along_axis1)
    offset = rng.uniform(-2.0, 2.0, D).reshape(along_axis1)
    return (rng.standard_normal(shape) * scale + offset).astype(check.dtype_of(case))


def batch_statistics(x):
    """Mean and biased variance per feature (axis 1), over every other axis, in float64."""
    x = np.asarray(x, dtype=np.float64)
    axes = (0,) + tuple(range(2, x.ndim))
    return x.mean(axis=axes), x.var(axis=axes)


def add_upstream_gradient(check, case, inputs):
    rng = check.rng(dict(case, seed=int(case.get("seed", 0)) + 1))
    inputs["dout"] = rng.standard_normal(inputs["x"].shape).astype(inputs["x"].dtype)
    return inputs


class BatchnormCheck(Check):
    """Shared inputs and bn_param handling of batchnorm and spatial batchnorm."""

    forward_name = ""  # the student's forward pass (and the library's, by the same name)

    def make_inputs(self, case):
        rng, dtype = self.rng(case), self.dtype_of(case)
        x = feature_data(self, case, rng)
        D = x.shape[1]
        mode = case.get("mode", "train")
        if mode not in ("train", "test"):
            raise ValueError(f"case mode must be 'train' or 'test'; found {mode!r}")
        return {
            "x": x,
            "gamma": rng.standard_normal(D).astype(dtype),
            "beta": rng.standard_normal(D).astype(dtype),
            "running_mean": rng.standard_normal(D).astype(dtype),
            "running_var": rng.uniform(0.5, 2.0, D).astype(dtype),
            "mode": np.array(mode),
            "momentum": np.array(float(case.get("momentum", 0.9))),
            "eps": np.array(float(case.get("eps", 1e-5))),
        }

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

    def library(self, name):
        import cs231n_lib

        return getattr(cs231n_lib, name)

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

    def reference(self, inputs):
        return self.forward_outputs(self.library(self.name), inputs)

    def call(self, namespace, inputs):
        return self.forward_outputs(self.student(namespace, self.name), inputs)

    fixed_hints = (SWAPPED_MOMENTUM, UNBIASED_VARIANCE, TEST_WITH_BATCH_STATS, TEST_UPDATES_RUNNING)

    def extra_hints(self, case, expected, found):
        """Name the usual mistakes: swapped momentum, unbiased variance, test-mode slips."""
        inputs = self.make_inputs(case)
        x, gamma, beta = (inputs[k].astype(np.float64) for k in ("x", "gamma", "beta"))
        mean, var = batch_statistics(x)
        m = self.scalar(inputs, "momentum", float)
        eps = self.scalar(inputs, "eps", float)
        old_mean, old_var = (inputs[k].astype(np.float64) for k in ("running_mean", "running_var"))
        found_mean, found_var = found.get("running_mean"), found.get("running_var")
        axis1 = (1, -1) + (1,) * (x.ndim - 2)
        hints = []
        if str(inputs["mode"].item()) == "train":
            if (found_mean is not None and _close(found_mean, (1 - m) * old_mean + m * mean)
                    and not _close(found_mean, expected["running_mean"])):
                hints.append(SWAPPED_MOMENTUM)
            count = x.size // x.shape[1]
            if count > 1:
                unbiased = var * count / (count - 1)
                out_unbiased = gamma.reshape(axis1) * (x - mean.reshape(axis1)) / np.sqrt(
                    unbiased.reshape(axis1) + eps) + beta.reshape(axis1)
                if (found.get("out") is not None and _close(found["out"], out_unbiased)) or (
                        found_var is not None and _close(found_var, m * old_var + (1 - m) * unbiased)):
                    hints.append(UNBIASED_VARIANCE)
        else:
            out_train = gamma.reshape(axis1) * (x - mean.reshape(axis1)) / np.sqrt(
                var.reshape(axis1) + eps) + beta.reshape(axis1)
            if found.get("out") is not None and _close(found["out"], out_train):
                hints.append(TEST_WITH_BATCH_STATS)
            if (_same_shape(found_mean, old_mean) and _same_shape(found_var, old_var)
                    and not (_close(found_mean, old_mean) and _close(found_var, old_var))):
                hints.append(TEST_UPDATES_RUNNING)
        return hints


class BatchnormBackwardCheck(BatchnormCheck):
    """``backward(dout, cache) -> (dx, dgamma, dbeta)``, the cache from the student's forward
    pass in train mode."""

    library_backward = ""
    always_train = True

    def make_inputs(self, case):
        return add_upstream_gradient(self, case, super().make_inputs(dict(case, mode="train")))

    def reference(self, inputs):
        return self.backward_outputs(self.library(self.forward_name), self.library(self.library_backward), inputs)

    def call(self, namespace, inputs):
        return self.backward_outputs(self.student(namespace, self.forward_name),
                                     self.student(namespace, self.name), inputs)

    fixed_hints = (CONSTANT_STATISTICS,)

    def extra_hints(self, case, expected, found):
        inputs = self.make_inputs(case)
        x, gamma, dout = (inputs[k].astype(np.float64) for k in ("x", "gamma", "dout"))
        _, var = batch_statistics(x)
        axis1 = (1, -1) + (1,) * (x.ndim - 2)
        constant_stats = dout * (gamma / np.sqrt(var + self.scalar(inputs, "eps", float))).reshape(axis1)
        if found.get("dx") is not None and _close(found["dx"], constant_stats):
            return [CONSTANT_STATISTICS]
        return []


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
    library_backward = "batchnorm_backward"
    requires = ("batchnorm_forward", "batchnorm_backward")


@register
class BatchnormBackwardAlt(BatchnormBackwardCheck):
    """batchnorm_backward_alt(dout, cache), the simplified closed form."""

    name = "batchnorm_backward_alt"
    forward_name = "batchnorm_forward"
    library_backward = "batchnorm_backward_alt"
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
    library_backward = "spatial_batchnorm_backward"
    requires = ("spatial_batchnorm_forward", "spatial_batchnorm_backward")


# --------------------------------------------------------------------------------------------
# optional: layer normalization and group normalization


class PerSampleNormCheck(Check):
    """Layer norm (x of shape (N, D)) and group norm (x of shape (N, C, H, W), G groups)."""

    forward_name = ""
    backward_name = ""
    grouped = False

    def make_inputs(self, case):
        rng, dtype = self.rng(case), self.dtype_of(case)
        x = feature_data(self, case, rng)
        D = x.shape[1]
        param_shape = (1, D, 1, 1) if self.grouped else (D,)
        inputs = {
            "x": x,
            "gamma": rng.standard_normal(param_shape).astype(dtype),
            "beta": rng.standard_normal(param_shape).astype(dtype),
            "eps": np.array(float(case.get("eps", 1e-5))),
        }
        if self.grouped:
            inputs["G"] = np.array(int(case["G"]))
        if self.backward_name == self.name:
            add_upstream_gradient(self, case, inputs)
        return inputs

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

    def reference(self, inputs):
        import cs231n_lib

        return self.outputs(getattr(cs231n_lib, self.forward_name), getattr(cs231n_lib, self.backward_name), inputs)

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
