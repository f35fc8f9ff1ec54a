"""Trusted checks of notebook 4 (batch normalization): inputs, references and known mistakes.

The features (axis 1) get their own scale and offset, so that a mistake in the normalisation
axis shows. The running averages handed to the student are random (not zeros and ones), so that
an update with the momentum weights swapped, or an update in test mode, cannot go unnoticed.
"""

import numpy as np

from cs231n_checks import batchnorm as kit
from cs231n_checks.batchnorm import (CONSTANT_STATISTICS, SWAPPED_MOMENTUM, TEST_UPDATES_RUNNING,  # noqa: F401
                                     TEST_WITH_BATCH_STATS, UNBIASED_VARIANCE)

from .base import Trusted, register


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


def library(name):
    import cs231n_lib

    return getattr(cs231n_lib, name)


class BatchnormInputs(Trusted):
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


class BatchnormForwardTrusted(BatchnormInputs):
    def reference(self, inputs):
        return self.forward_outputs(library(self.name), inputs)

    def mistakes(self, case, inputs):
        """Swapped momentum weights, the unbiased variance, batch statistics in test mode."""
        x, gamma, beta = (inputs[k].astype(np.float64) for k in ("x", "gamma", "beta"))
        mean, var = batch_statistics(x)
        m = self.scalar(inputs, "momentum", float)
        eps = self.scalar(inputs, "eps", float)
        old_mean, old_var = (inputs[k].astype(np.float64) for k in ("running_mean", "running_var"))
        axis1 = (1, -1) + (1,) * (x.ndim - 2)

        def normalised(variance):
            return gamma.reshape(axis1) * (x - mean.reshape(axis1)) / np.sqrt(
                variance.reshape(axis1) + eps) + beta.reshape(axis1)

        if str(inputs["mode"].item()) == "test":
            return [(TEST_WITH_BATCH_STATS, {"out": normalised(var)})]
        found = [(SWAPPED_MOMENTUM, {"running_mean": (1 - m) * old_mean + m * mean})]
        count = x.size // x.shape[1]
        if count > 1:
            unbiased = var * count / (count - 1)
            found += [(UNBIASED_VARIANCE, {"out": normalised(unbiased)}),
                      (UNBIASED_VARIANCE, {"running_var": m * old_var + (1 - m) * unbiased})]
        return found


class BatchnormBackwardTrusted(BatchnormInputs):
    library_backward = ""

    def make_inputs(self, case):
        return add_upstream_gradient(self, case, super().make_inputs(dict(case, mode="train")))

    def reference(self, inputs):
        return self.backward_outputs(library(self.forward_name), library(self.library_backward), inputs)

    def mistakes(self, case, inputs):
        """dx as if the batch mean and variance were constants."""
        x, gamma, dout = (inputs[k].astype(np.float64) for k in ("x", "gamma", "dout"))
        _, var = batch_statistics(x)
        axis1 = (1, -1) + (1,) * (x.ndim - 2)
        constant_stats = dout * (gamma / np.sqrt(var + self.scalar(inputs, "eps", float))).reshape(axis1)
        return [(CONSTANT_STATISTICS, {"dx": constant_stats})]


@register
class BatchnormForward(BatchnormForwardTrusted, kit.BatchnormForward):
    pass


@register
class BatchnormBackward(BatchnormBackwardTrusted, kit.BatchnormBackward):
    library_backward = "batchnorm_backward"


@register
class BatchnormBackwardAlt(BatchnormBackwardTrusted, kit.BatchnormBackwardAlt):
    library_backward = "batchnorm_backward_alt"


@register
class SpatialBatchnormForward(BatchnormForwardTrusted, kit.SpatialBatchnormForward):
    pass


@register
class SpatialBatchnormBackward(BatchnormBackwardTrusted, kit.SpatialBatchnormBackward):
    library_backward = "spatial_batchnorm_backward"


class PerSampleNormTrusted(Trusted):
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

    def reference(self, inputs):
        return self.outputs(library(self.forward_name), library(self.backward_name), inputs)


@register
class LayernormForward(PerSampleNormTrusted, kit.LayernormForward):
    pass


@register
class LayernormBackward(PerSampleNormTrusted, kit.LayernormBackward):
    pass


@register
class GroupnormForward(PerSampleNormTrusted, kit.GroupnormForward):
    pass


@register
class GroupnormBackward(PerSampleNormTrusted, kit.GroupnormBackward):
    pass
