"""Trusted checks of notebook 4 (batch normalization): inputs, references and known mistakes.

The features (axis 1) get their own scale and offset, so that a mistake in the normalisation
axis shows. The running averages handed to the student are random (not zeros and ones), so that
an update with the momentum weights swapped, or an update in test mode, cannot go unnoticed.
"""

import numpy as np

from cs231n_checks import batchnorm as kit
from cs231n_checks.batchnorm import (CONSTANT_STATISTICS, SWAPPED_MOMENTUM, TEST_UPDATES_RUNNING,  # noqa: F401
                                     TEST_WITH_BATCH_STATS, UNBIASED_VARIANCE)

from . import variants as v
from .base import Trusted, register

# (the skeleton's last lines store the local running_mean and running_var into bn_param: a value
# written into bn_param directly is overwritten by them)
NOT_UPDATED = ("the running averages come back unchanged in 'train' mode: set the local variables, "
               "running_mean = momentum * running_mean + (1 - momentum) * mean (likewise running_var with the "
               "variance); the lines after your code store them in bn_param, over anything written there directly")
RUNNING_IS_BATCH = ("the running averages are replaced by the batch's statistics: blend them, "
                    "running = momentum * running + (1 - momentum) * batch_statistic (the momentum keeps most of "
                    "the old average)")
EPS_OUTSIDE_SQRT = "eps is outside the square root: divide by np.sqrt(var + eps)"
NO_EPS = ("eps is missing: divide by np.sqrt(var + eps), with the eps of the parameter dict (it keeps a "
          "feature of zero variance finite)")
EPS_NOT_GIVEN = ("eps is not the one given: read it from the parameter dict, .get('eps', 1e-5) of bn_param "
                 "(ln_param, gn_param), instead of a number of your own")
#: the eps of a case that gives none, and the number students write in its place
DEFAULT_EPS = 1e-5
NO_SQRT = "the square root is missing: divide by the standard deviation np.sqrt(var + eps), not by the variance"
TRAIN_WITH_RUNNING = ("in 'train' mode normalise with the batch's own mean and variance; the running averages "
                      "are for 'test' mode")
PER_SAMPLE_STATISTICS = ("the statistics are taken per sample (axis 1): batch normalization averages over the "
                         "batch, axis 0, one mean and variance per feature")
RUNNING_STD = "running_var is updated with the standard deviation: update it with the batch variance"
NO_AFFINE = "gamma and beta are not applied: out = gamma * x_hat + beta"
NO_TRANSPOSE = ("channels are mixed: reshape x to (N*H*W, C) after moving C last, "
                "x.transpose(0, 2, 3, 1).reshape(-1, C), and back the same way")
PER_PLANE = ("the statistics are per sample and channel, over H and W only: spatial batchnorm averages each "
             "channel over the batch and the positions, axes (0, 2, 3)")
NO_MEAN_PATH = ("dx misses the path through the batch mean: x also reaches the output through the mean, "
                "which subtracts the mean of dout * gamma")
NO_VARIANCE_PATH = ("dx misses the path through the variance: x also reaches the output through the variance, "
                    "the term in x_hat * mean(dout * gamma * x_hat)")
DX_WITHOUT_GAMMA = "dx forgets gamma: the gradient reaching x_hat is dout * gamma"
DGAMMA_RAW_X = "dgamma uses x (or x - mean): it is the sum of dout * x_hat, the normalised input"
PARAM_GRADS_AXIS = ("dgamma and dbeta are summed over the wrong axis: one entry per feature, summed over the "
                    "batch (axis 0, and the positions for spatial inputs)")
BATCH_STATISTICS = ("the statistics are taken over the batch (axis 0): layer normalization normalises each "
                    "sample over its own features, axis 1")
UNBIASED_PER_SAMPLE = "this matches the unbiased variance (dividing by D - 1): divide by the number of entries"
GROUPS_INTERLEAVED = ("the groups are every G-th channel: a group is C // G consecutive channels, "
                      "x.reshape(N, G, C // G, H, W)")
GROUPS_IGNORED = "G is ignored: the statistics are over every channel of a sample, layer norm; take them per group"
GROUP_PER_CHANNEL = "the statistics are per channel: take them over each group of C // G channels"
LN_PARAM_GRADS_AXIS = ("dgamma and dbeta are summed over the features: one entry per feature (channel), "
                       "summed over the samples (and the positions)")
NO_CENTERING = "the mean is not subtracted: x_hat = (x - mean) / np.sqrt(var + eps)"
PARAM_GRADS_AVERAGED = "dgamma and dbeta are averaged: they are sums over the batch, not means"


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
            "eps": np.array(float(case.get("eps", DEFAULT_EPS))),
        }


def _rows(x):
    """x as rows of features (N, D), or (N*H*W, C) for a spatial input, in float64."""
    x = np.asarray(x, dtype=np.float64)
    return x if x.ndim == 2 else x.transpose(0, 2, 3, 1).reshape(-1, x.shape[1])


def _unrows(rows, shape):
    return rows if len(shape) == 2 else rows.reshape(shape[0], shape[2], shape[3], shape[1]).transpose(0, 3, 1, 2)


def _flat_rows(x):
    """The spatial input reshaped to (-1, C) without moving C last: rows mix channels."""
    x = np.asarray(x, dtype=np.float64)
    return x.reshape(-1, x.shape[1])


class BatchnormForwardTrusted(BatchnormInputs):
    catalogue = (NOT_UPDATED, SWAPPED_MOMENTUM, RUNNING_IS_BATCH, UNBIASED_VARIANCE, EPS_OUTSIDE_SQRT, NO_EPS,
                 EPS_NOT_GIVEN, NO_SQRT, TRAIN_WITH_RUNNING, RUNNING_STD, TEST_WITH_BATCH_STATS, NO_AFFINE)

    def reference(self, inputs):
        return self.forward_outputs(library(self.name), inputs)

    def variants(self, case, inputs):
        """Running averages not updated, replaced by the batch's statistics or with the momentum
        swapped (or a std for the variance), the unbiased variance, eps outside the square root,
        missing or not the given one, no square root, the wrong statistics (running ones in
        train mode, batch ones in test mode, per sample), no gamma and beta; for spatial inputs,
        channels mixed by a reshape without a transpose (both modes) or statistics per (sample,
        channel) plane."""
        x = np.asarray(inputs["x"], np.float64)
        gamma, beta = (np.asarray(inputs[k], np.float64) for k in ("gamma", "beta"))
        m, eps = self.scalar(inputs, "momentum", float), self.scalar(inputs, "eps", float)
        old_mean, old_var = (np.asarray(inputs[k], np.float64) for k in ("running_mean", "running_var"))
        rows = _rows(x)
        mean, var = rows.mean(axis=0), rows.var(axis=0)

        def out(x_hat_rows, affine=True):
            return _unrows(gamma * x_hat_rows + beta if affine else x_hat_rows, x.shape)

        def with_stats(mu, variance, root=np.sqrt, eps_inside=True, epsilon=eps):
            std = root(variance + epsilon) if eps_inside else root(variance) + epsilon
            return (rows - mu) / std

        def eps_mistakes(mu, variance):
            """eps outside the square root, missing, or a default of the student's own (1e-5)
            where the case gives another."""
            found = [(EPS_OUTSIDE_SQRT, {"out": out(with_stats(mu, variance, eps_inside=False))}),
                     (NO_EPS, {"out": out(with_stats(mu, variance, epsilon=0.0))})]
            if eps != DEFAULT_EPS:
                found.append((EPS_NOT_GIVEN, {"out": out(with_stats(mu, variance, epsilon=DEFAULT_EPS))}))
            return found

        if str(inputs["mode"].item()) == "test":
            found = [(TEST_WITH_BATCH_STATS, {"out": out(with_stats(mean, var))})] + eps_mistakes(old_mean, old_var)
            found += [(NO_SQRT, {"out": out(with_stats(old_mean, old_var, root=lambda a: a))}),
                      (NO_AFFINE, {"out": out(with_stats(old_mean, old_var), affine=False)})]
            if x.ndim == 4:
                flat = _flat_rows(x)
                mixed = (flat - old_mean) / np.sqrt(old_var + eps) * gamma + beta
                found.append((NO_TRANSPOSE, {"out": mixed.reshape(x.shape)}))
            return found
        found = [(NOT_UPDATED, {"running_mean": old_mean, "running_var": old_var}),
                 (SWAPPED_MOMENTUM, {"running_mean": (1 - m) * old_mean + m * mean,
                                     "running_var": (1 - m) * old_var + m * var}),
                 (SWAPPED_MOMENTUM, {"running_mean": (1 - m) * old_mean + m * mean}),
                 (RUNNING_IS_BATCH, {"running_mean": mean, "running_var": var}),
                 (RUNNING_STD, {"running_var": m * old_var + (1 - m) * np.sqrt(var)})]
        found += eps_mistakes(mean, var)
        found += [(NO_SQRT, {"out": out(with_stats(mean, var, root=lambda a: a))}),
                  (TRAIN_WITH_RUNNING, {"out": out(with_stats(old_mean, old_var))}),
                  (NO_AFFINE, {"out": out(with_stats(mean, var), affine=False)})]
        count = rows.shape[0]
        if count > 1:
            unbiased = var * count / (count - 1)
            found += [(UNBIASED_VARIANCE, {"out": out(with_stats(mean, unbiased))}),
                      (UNBIASED_VARIANCE, {"running_var": m * old_var + (1 - m) * unbiased})]
        if x.ndim == 2:
            per_sample = (x - x.mean(axis=1, keepdims=True)) / np.sqrt(x.var(axis=1, keepdims=True) + eps)
            found.append((PER_SAMPLE_STATISTICS, {"out": gamma * per_sample + beta}))
        else:
            flat = _flat_rows(x)
            mixed = ((flat - flat.mean(axis=0)) / np.sqrt(flat.var(axis=0) + eps) * gamma + beta).reshape(x.shape)
            plane = (x - x.mean(axis=(2, 3), keepdims=True)) / np.sqrt(x.var(axis=(2, 3), keepdims=True) + eps)
            found += [(NO_TRANSPOSE, {"out": mixed}),
                      (PER_PLANE, {"out": plane * gamma[None, :, None, None] + beta[None, :, None, None]})]
        return found


class BatchnormBackwardTrusted(BatchnormInputs):
    library_backward = ""
    catalogue = (CONSTANT_STATISTICS, NO_MEAN_PATH, NO_VARIANCE_PATH, DX_WITHOUT_GAMMA, DGAMMA_RAW_X,
                 PARAM_GRADS_AXIS, PARAM_GRADS_AVERAGED)

    def make_inputs(self, case):
        return add_upstream_gradient(self, case, super().make_inputs(dict(case, mode="train")))

    def reference(self, inputs):
        return self.backward_outputs(library(self.forward_name), library(self.library_backward), inputs)

    def second_reference(self, inputs):
        x = np.asarray(inputs["x"], np.float64)
        rows, drows = _rows(x), _rows(inputs["dout"])
        x_hat, _, var = v.normalise(rows, 0, self.scalar(inputs, "eps", float))
        dx = v.norm_backward_dx(drows, inputs["gamma"], x_hat, 1.0 / np.sqrt(var + self.scalar(inputs, "eps", float)), 0)
        return {"dx": _unrows(dx, x.shape), "dgamma": (drows * x_hat).sum(axis=0), "dbeta": drows.sum(axis=0)}

    def variants(self, case, inputs):
        """dx with the batch statistics taken as constants, or without their mean or variance
        path, or without gamma; dgamma from x rather than x_hat; dgamma and dbeta summed over
        the wrong axis or averaged; for spatial inputs, channels mixed by a reshape."""
        x = np.asarray(inputs["x"], np.float64)
        gamma, dout = np.asarray(inputs["gamma"], np.float64), np.asarray(inputs["dout"], np.float64)
        eps = self.scalar(inputs, "eps", float)
        rows, drows = _rows(x), _rows(dout)
        x_hat = (rows - rows.mean(axis=0)) / np.sqrt(rows.var(axis=0) + eps)
        inv_std = 1.0 / np.sqrt(rows.var(axis=0) + eps)

        def dx(**switches):
            return {"dx": _unrows(v.norm_backward_dx(drows, gamma, x_hat, inv_std, 0, **switches), x.shape)}

        found = [(CONSTANT_STATISTICS, dx(drop="both")), (NO_MEAN_PATH, dx(drop="mean")),
                 (NO_VARIANCE_PATH, dx(drop="variance")), (DX_WITHOUT_GAMMA, dx(use_gamma=False)),
                 (DGAMMA_RAW_X, {"dgamma": (drows * rows).sum(axis=0)}),
                 (DGAMMA_RAW_X, {"dgamma": (drows * (rows - rows.mean(axis=0))).sum(axis=0)}),
                 (PARAM_GRADS_AVERAGED, {"dgamma": (drows * x_hat).mean(axis=0), "dbeta": drows.mean(axis=0)})]
        x_hat_full = _unrows(x_hat, x.shape)
        wrong_axis = 1 if x.ndim == 2 else 0
        found += [(PARAM_GRADS_AXIS, {"dgamma": (dout * x_hat_full).sum(axis=wrong_axis),
                                      "dbeta": dout.sum(axis=wrong_axis)}),
                  (PARAM_GRADS_AXIS, {"dbeta": dout.sum(axis=wrong_axis)}),
                  (PARAM_GRADS_AXIS, {"dgamma": (dout * x_hat_full).sum(axis=wrong_axis)})]
        if x.ndim == 4:
            flat, dflat = _flat_rows(x), _flat_rows(dout)
            flat_inv = 1.0 / np.sqrt(flat.var(axis=0) + eps)
            flat_hat = (flat - flat.mean(axis=0)) * flat_inv
            found.append((NO_TRANSPOSE, {
                "dx": v.norm_backward_dx(dflat, gamma, flat_hat, flat_inv, 0).reshape(x.shape),
                "dgamma": (dflat * flat_hat).sum(axis=0), "dbeta": dflat.sum(axis=0)}))
        return found


@register
class BatchnormForward(BatchnormForwardTrusted, kit.BatchnormForward):
    catalogue = BatchnormForwardTrusted.catalogue + (PER_SAMPLE_STATISTICS,)


@register
class BatchnormBackward(BatchnormBackwardTrusted, kit.BatchnormBackward):
    library_backward = "batchnorm_backward"


@register
class BatchnormBackwardAlt(BatchnormBackwardTrusted, kit.BatchnormBackwardAlt):
    library_backward = "batchnorm_backward_alt"


@register
class SpatialBatchnormForward(BatchnormForwardTrusted, kit.SpatialBatchnormForward):
    catalogue = BatchnormForwardTrusted.catalogue + (NO_TRANSPOSE, PER_PLANE)


@register
class SpatialBatchnormBackward(BatchnormBackwardTrusted, kit.SpatialBatchnormBackward):
    library_backward = "spatial_batchnorm_backward"
    catalogue = BatchnormBackwardTrusted.catalogue + (NO_TRANSPOSE,)


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
            "eps": np.array(float(case.get("eps", DEFAULT_EPS))),
        }
        if self.grouped:
            inputs["G"] = np.array(int(case["G"]))
        if self.backward_name == self.name:
            add_upstream_gradient(self, case, inputs)
        return inputs

    def reference(self, inputs):
        return self.outputs(library(self.forward_name), library(self.backward_name), inputs)


def _groups(x, G, interleaved=False):
    """x (N, C, H, W) as (N, G, C//G * H * W): the channels of each group, contiguous (right)
    or every G-th channel (``interleaved``)."""
    N, C, H, W = x.shape
    if interleaved:
        return x.reshape(N, C // G, G, H, W).transpose(0, 2, 1, 3, 4).reshape(N, G, -1)
    return x.reshape(N, G, -1)


def _ungroup(groups, shape, interleaved=False):
    N, C, H, W = shape
    G = groups.shape[1]
    if interleaved:
        return groups.reshape(N, G, C // G, H, W).transpose(0, 2, 1, 3, 4).reshape(shape)
    return groups.reshape(shape)


class PerSampleVariants:
    """The known mistakes of layer norm and group norm (statistics per sample, or per sample and
    group): a view of x whose axis ``stat_axis`` holds the statistics' entries."""

    forward_catalogue = (BATCH_STATISTICS, UNBIASED_PER_SAMPLE, EPS_OUTSIDE_SQRT, NO_EPS, EPS_NOT_GIVEN, NO_SQRT,
                         NO_AFFINE, NO_CENTERING)
    backward_catalogue = (CONSTANT_STATISTICS, NO_MEAN_PATH, NO_VARIANCE_PATH, DX_WITHOUT_GAMMA, DGAMMA_RAW_X,
                          LN_PARAM_GRADS_AXIS)

    def views(self, inputs):
        """``[(hint or None, to_view, from_view, stat_axis)]``: the right view first (None), then
        the views of the mistakes that take the statistics over the wrong entries."""
        x = inputs["x"]
        if not self.grouped:
            return [(None, lambda a: a, lambda a: a, 1), (BATCH_STATISTICS, lambda a: a, lambda a: a, 0)]
        G, shape = self.scalar(inputs, "G"), x.shape
        C = shape[1]
        found = [(None, lambda a: _groups(a, G), lambda a: _ungroup(a, shape), 2)]
        if 1 < G < C:
            found.append((GROUPS_INTERLEAVED, lambda a: _groups(a, G, True), lambda a: _ungroup(a, shape, True), 2))
        if G != 1:
            found.append((GROUPS_IGNORED, lambda a: _groups(a, 1), lambda a: _ungroup(a, shape), 2))
        if G != C:
            found.append((GROUP_PER_CHANNEL, lambda a: _groups(a, C), lambda a: _ungroup(a, shape), 2))
        return found

    def second_reference(self, inputs):
        x = np.asarray(inputs["x"], np.float64)
        gamma, beta = (np.asarray(inputs[k], np.float64) for k in ("gamma", "beta"))
        eps = self.scalar(inputs, "eps", float)
        _, to_view, from_view, axis = self.views(inputs)[0]
        x_hat_v, _, var = v.normalise(to_view(x), axis, eps)
        x_hat = from_view(x_hat_v)
        if self.backward_name != self.name:
            return {"out": gamma * x_hat + beta}
        dout = np.asarray(inputs["dout"], np.float64)
        dx = from_view(v.norm_backward_dx(to_view(dout * gamma), 1.0, x_hat_v, 1.0 / np.sqrt(var + eps), axis))
        sum_axes, keep = ((0,), False) if x.ndim == 2 else ((0, 2, 3), True)
        return {"dx": dx, "dgamma": (dout * x_hat).sum(axis=sum_axes, keepdims=keep),
                "dbeta": dout.sum(axis=sum_axes, keepdims=keep)}

    def variants(self, case, inputs):
        x = np.asarray(inputs["x"], np.float64)
        gamma, beta = (np.asarray(inputs[k], np.float64) for k in ("gamma", "beta"))
        eps = self.scalar(inputs, "eps", float)
        views = self.views(inputs)
        _, to_view, from_view, axis = views[0]
        xv = to_view(x)
        mean, var = xv.mean(axis=axis, keepdims=True), xv.var(axis=axis, keepdims=True)
        if self.backward_name != self.name:
            def out(x_hat_view, affine=True):
                x_hat = from_view(x_hat_view)
                return {"out": gamma * x_hat + beta if affine else x_hat}

            count = xv.shape[axis]
            found = [(hint, {"out": gamma * back(v.normalise(to(x), ax, eps)[0]) + beta})
                     for hint, to, back, ax in views[1:]]
            found += [(EPS_OUTSIDE_SQRT, out(v.normalise(xv, axis, eps, eps_outside=True)[0])),
                      (NO_EPS, out(v.normalise(xv, axis, 0.0)[0])),
                      (NO_SQRT, out((xv - mean) / (var + eps))),
                      (NO_AFFINE, out(v.normalise(xv, axis, eps)[0], affine=False)),
                      (NO_CENTERING, out(xv / np.sqrt(var + eps)))]
            if eps != DEFAULT_EPS:
                found.append((EPS_NOT_GIVEN, out(v.normalise(xv, axis, DEFAULT_EPS)[0])))
            if count > 1:
                found.append((UNBIASED_PER_SAMPLE, out(v.normalise(xv, axis, eps, ddof=1)[0])))
            return found
        dout = np.asarray(inputs["dout"], np.float64)
        x_hat_v, _, _ = v.normalise(xv, axis, eps)
        inv_std = 1.0 / np.sqrt(var + eps)
        x_hat = from_view(x_hat_v)
        gv = to_view(dout * gamma)
        sum_axes = (0,) if x.ndim == 2 else (0, 2, 3)

        def dx(**switches):
            use_gamma = switches.pop("use_gamma", True)
            g = gv if use_gamma else to_view(dout)
            return {"dx": from_view(v.norm_backward_dx(g, 1.0, x_hat_v, inv_std, axis, **switches))}

        keep = x.ndim == 4
        found = [(CONSTANT_STATISTICS, dx(drop="both")), (NO_MEAN_PATH, dx(drop="mean")),
                 (NO_VARIANCE_PATH, dx(drop="variance")), (DX_WITHOUT_GAMMA, dx(use_gamma=False)),
                 (DGAMMA_RAW_X, {"dgamma": (dout * x).sum(axis=sum_axes, keepdims=keep)}),
                 (DGAMMA_RAW_X, {"dgamma": (dout * from_view(xv - mean)).sum(axis=sum_axes, keepdims=keep)})]
        wrong_axes = (1,) if x.ndim == 2 else (1, 2, 3)
        found.append((LN_PARAM_GRADS_AXIS, {"dgamma": (dout * x_hat).sum(axis=wrong_axes, keepdims=keep),
                                            "dbeta": dout.sum(axis=wrong_axes, keepdims=keep)}))
        return found


@register
class LayernormForward(PerSampleVariants, PerSampleNormTrusted, kit.LayernormForward):
    catalogue = PerSampleVariants.forward_catalogue


@register
class LayernormBackward(PerSampleVariants, PerSampleNormTrusted, kit.LayernormBackward):
    catalogue = PerSampleVariants.backward_catalogue


@register
class GroupnormForward(PerSampleVariants, PerSampleNormTrusted, kit.GroupnormForward):
    catalogue = (GROUPS_INTERLEAVED, GROUPS_IGNORED, GROUP_PER_CHANNEL) + tuple(
        h for h in PerSampleVariants.forward_catalogue if h != BATCH_STATISTICS)


@register
class GroupnormBackward(PerSampleVariants, PerSampleNormTrusted, kit.GroupnormBackward):
    catalogue = PerSampleVariants.backward_catalogue
