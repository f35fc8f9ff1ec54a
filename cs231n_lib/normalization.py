"""Normalization layers: batch normalization, spatial batch normalization, layer and group norm.

Every layer follows the CS231n convention ``out, cache = X_forward(...)`` and
``dx, dgamma, dbeta = X_backward(dout, cache)``, and returns the dtype of ``x``.

Batch normalization keeps running averages for test time in ``bn_param``::

    running = momentum * running + (1 - momentum) * batch_statistic

with the biased batch variance (divide by N), as in the original paper's training pass.
(PyTorch's ``momentum`` is the weight of the NEW statistic, i.e. 1 - ours, and it puts the
unbiased variance, divided by N - 1, into its running average.)
"""

import numpy as np

from . import kernels_norm
from ._validate import float_array, positive_int, real_number, require_shape, same_dtype

_MODES = ("train", "test")


# --------------------------------------------------------------------------------------------
# checks shared by the layers


def _affine_params(x_dtype, gamma, beta, shape):
    """Check the scale gamma and shift beta against ``shape``; return them in x's dtype."""
    gamma = float_array("gamma", gamma)
    beta = float_array("beta", beta)
    require_shape("gamma", gamma, shape)
    require_shape("beta", beta, shape)
    arrays = same_dtype(x_dtype, gamma=gamma, beta=beta)
    return arrays["gamma"], arrays["beta"]


def _eps(params, name):
    eps = real_number(f"{name}['eps']", params.get("eps", 1e-5))
    if not eps >= 0:
        raise ValueError(f"{name}['eps'] must be a finite number >= 0; found {params.get('eps')!r}")
    return eps


def _batchnorm_settings(bn_param, D, dtype):
    """Read mode, eps, momentum and the running statistics from ``bn_param``.

    Missing running statistics start as zeros (mean) and ones (variance) of length D.
    """
    if not isinstance(bn_param, dict):
        raise ValueError(f"bn_param must be a dict; found {type(bn_param).__name__}")
    if "mode" not in bn_param:
        raise ValueError("bn_param['mode'] is missing; set it to 'train' or 'test'")
    mode = bn_param["mode"]
    if mode not in _MODES:
        raise ValueError(f"bn_param['mode'] must be 'train' or 'test'; found {mode!r}")
    eps = _eps(bn_param, "bn_param")
    momentum = real_number("bn_param['momentum']", bn_param.get("momentum", 0.9))
    if not 0 <= momentum <= 1:
        raise ValueError(f"bn_param['momentum'] must lie in [0, 1]; found {bn_param.get('momentum')!r}")
    running = {}
    for key, start in (("running_mean", np.zeros), ("running_var", np.ones)):
        if bn_param.get(key) is None:
            running[key] = start(D, dtype=dtype)
        else:
            value = float_array(f"bn_param[{key!r}]", bn_param[key])
            require_shape(f"bn_param[{key!r}]", value, (D,))
            running[key] = value.astype(dtype, copy=False)
    return mode, eps, momentum, running["running_mean"], running["running_var"]


def _update_running(bn_param, momentum, running_mean, running_var, batch_mean, batch_var):
    """Store ``momentum * running + (1 - momentum) * batch`` back into bn_param (new arrays)."""
    dtype = running_mean.dtype
    bn_param["running_mean"] = (momentum * running_mean + (1 - momentum) * batch_mean).astype(dtype, copy=False)
    bn_param["running_var"] = (momentum * running_var + (1 - momentum) * batch_var).astype(dtype, copy=False)


def _upstream(dout, cache_x_shape, dtype):
    dout = float_array("dout", dout)
    require_shape("dout", dout, cache_x_shape)
    return dout.astype(dtype, copy=False)


# --------------------------------------------------------------------------------------------
# batch normalization of (N, D) features


def batchnorm_forward(x, gamma, beta, bn_param):
    """Forward pass of batch normalization over a minibatch of feature vectors.

    In 'train' mode each feature is normalized with the mean and (biased) variance of the
    batch, and the running averages in ``bn_param`` are updated; in 'test' mode the running
    averages are used instead and nothing is updated.

    Inputs:
    - x: data, shape (N, D)
    - gamma: scale, shape (D,)
    - beta: shift, shape (D,)
    - bn_param: dict with
      - 'mode': 'train' or 'test' (required)
      - 'eps': added to the variance before the square root (default 1e-5)
      - 'momentum': weight of the old running value (default 0.9)
      - 'running_mean', 'running_var': shape (D,); created (zeros / ones) when absent and
        replaced by their updated values in 'train' mode

    Returns a tuple of:
    - out: shape (N, D), dtype of x
    - cache: what ``batchnorm_backward`` needs (a dict)
    """
    x = float_array("x", x, ndim=2)
    N, D = x.shape
    gamma, beta = _affine_params(x.dtype, gamma, beta, (D,))
    mode, eps, momentum, running_mean, running_var = _batchnorm_settings(bn_param, D, x.dtype)

    if mode == "train":
        if N == 0:
            raise ValueError("batchnorm in 'train' mode needs at least one sample; found N = 0")
        # Each step is one node of the computation graph that batchnorm_backward walks back.
        mean = x.mean(axis=0)
        x_centered = x - mean
        var = (x_centered**2).mean(axis=0)
        std = np.sqrt(var + eps)
        inv_std = 1 / std
        x_hat = x_centered * inv_std
        out = gamma * x_hat + beta
        _update_running(bn_param, momentum, running_mean, running_var, mean, var)
        cache = {"mode": mode, "x_hat": x_hat, "x_centered": x_centered, "std": std,
                 "inv_std": inv_std, "gamma": gamma}
    else:
        inv_std = 1 / np.sqrt(running_var + eps)
        x_hat = (x - running_mean) * inv_std
        out = gamma * x_hat + beta
        bn_param["running_mean"], bn_param["running_var"] = running_mean, running_var
        cache = {"mode": mode, "x_hat": x_hat, "inv_std": inv_std, "gamma": gamma}
    return out, cache


def batchnorm_backward(dout, cache):
    """Backward pass of batch normalization, one node of the computation graph at a time.

    Inputs:
    - dout: upstream gradient, shape (N, D)
    - cache: from ``batchnorm_forward``

    Returns a tuple of:
    - dx: shape (N, D)
    - dgamma: shape (D,)
    - dbeta: shape (D,)
    """
    x_hat, inv_std, gamma = cache["x_hat"], cache["inv_std"], cache["gamma"]
    dout = _upstream(dout, x_hat.shape, x_hat.dtype)
    N = x_hat.shape[0]

    # out = gamma * x_hat + beta
    dbeta = dout.sum(axis=0)
    dgamma = (dout * x_hat).sum(axis=0)
    dx_hat = dout * gamma
    if cache["mode"] == "test":
        # The running statistics are constants: x_hat is an affine function of x.
        return dx_hat * inv_std, dgamma, dbeta

    x_centered, std = cache["x_centered"], cache["std"]
    # x_hat = x_centered * inv_std
    dinv_std = (dx_hat * x_centered).sum(axis=0)
    dx_centered = dx_hat * inv_std
    # inv_std = 1 / std
    dstd = -dinv_std / std**2
    # std = sqrt(var + eps)
    dvar = dstd / (2 * std)
    # var = mean(x_centered ** 2, axis=0)
    dx_centered += 2 * x_centered * dvar / N
    # x_centered = x - mean: x reaches the output directly and through the mean
    dmean = -dx_centered.sum(axis=0)
    # mean = mean(x, axis=0)
    dx = dx_centered + dmean / N
    return dx, dgamma, dbeta


def batchnorm_backward_alt(dout, cache):
    """Backward pass of batch normalization in closed form (same results, fewer steps).

    With ``g = dout * gamma`` the gradient of the whole graph simplifies to::

        dx = inv_std / N * (N * g - sum(g) - x_hat * sum(g * x_hat))

    (sums over the batch axis). Inputs and returns as ``batchnorm_backward``.
    """
    x_hat, inv_std, gamma = cache["x_hat"], cache["inv_std"], cache["gamma"]
    dout = _upstream(dout, x_hat.shape, x_hat.dtype)
    N = x_hat.shape[0]
    dbeta = dout.sum(axis=0)
    dgamma = (dout * x_hat).sum(axis=0)
    g = dout * gamma
    if cache["mode"] == "test":
        return g * inv_std, dgamma, dbeta
    dx = (inv_std / N) * (N * g - g.sum(axis=0) - x_hat * (g * x_hat).sum(axis=0))
    return dx, dgamma, dbeta


# --------------------------------------------------------------------------------------------
# spatial batch normalization of (N, C, H, W) feature maps


def spatial_batchnorm_forward(x, gamma, beta, bn_param):
    """Forward pass of spatial batch normalization (one mean and variance per channel).

    It is ``batchnorm_forward`` applied to the N * H * W values of each channel, i.e. to
    ``x.transpose(0, 2, 3, 1).reshape(-1, C)``. A Numba kernel does it without the transposes
    (``kernels_norm``).

    Inputs:
    - x: data, shape (N, C, H, W)
    - gamma: scale, shape (C,)
    - beta: shift, shape (C,)
    - bn_param: as in ``batchnorm_forward``, with running statistics of shape (C,)

    Returns a tuple of:
    - out: shape (N, C, H, W), dtype of x
    - cache: what ``spatial_batchnorm_backward`` needs (a dict)
    """
    x = float_array("x", x, ndim=4)
    N, C, H, W = x.shape
    gamma, beta = _affine_params(x.dtype, gamma, beta, (C,))
    mode, eps, momentum, running_mean, running_var = _batchnorm_settings(bn_param, C, x.dtype)
    x = np.ascontiguousarray(x)

    if mode == "train":
        if N * H * W == 0:
            raise ValueError(f"spatial batchnorm in 'train' mode needs N * H * W >= 1; found x of shape {x.shape}")
        out, mean, var = kernels_norm.batchnorm_channels_forward(x, gamma, beta, eps)
        _update_running(bn_param, momentum, running_mean, running_var, mean, var)
    else:
        mean, var = running_mean, running_var
        scale = gamma / np.sqrt(var + eps)
        out = (x - mean[:, None, None]) * scale[:, None, None] + beta[:, None, None]
        bn_param["running_mean"], bn_param["running_var"] = running_mean, running_var
    inv_std = (1 / np.sqrt(np.asarray(var, dtype=np.float64) + eps))
    cache = {"mode": mode, "x": x, "mean": np.asarray(mean, dtype=np.float64),
             "inv_std": inv_std, "gamma": gamma}
    return out, cache


def spatial_batchnorm_backward(dout, cache):
    """Backward pass of spatial batch normalization.

    Inputs:
    - dout: upstream gradient, shape (N, C, H, W)
    - cache: from ``spatial_batchnorm_forward``

    Returns a tuple of:
    - dx: shape (N, C, H, W)
    - dgamma: shape (C,)
    - dbeta: shape (C,)
    """
    x, mean, inv_std, gamma = cache["x"], cache["mean"], cache["inv_std"], cache["gamma"]
    dout = np.ascontiguousarray(_upstream(dout, x.shape, x.dtype))
    if cache["mode"] == "train":
        return kernels_norm.batchnorm_channels_backward(dout, x, mean, inv_std, gamma)
    # Test mode: the statistics are constants, so each channel is an affine map of x.
    x_hat = (x - mean[:, None, None]) * inv_std[:, None, None]
    dbeta = dout.sum(axis=(0, 2, 3))
    dgamma = (dout * x_hat).sum(axis=(0, 2, 3))
    dx = dout * (gamma * inv_std)[:, None, None]
    return (dx.astype(x.dtype, copy=False), dgamma.astype(x.dtype, copy=False),
            dbeta.astype(x.dtype, copy=False))


# --------------------------------------------------------------------------------------------
# layer normalization of (N, D) features


def layernorm_forward(x, gamma, beta, ln_param):
    """Forward pass of layer normalization: each sample is normalized over its D features.

    Unlike batch normalization it does not depend on the other samples, so training and
    test time compute the same thing and there are no running averages.

    Inputs:
    - x: data, shape (N, D)
    - gamma: scale, shape (D,)
    - beta: shift, shape (D,)
    - ln_param: dict with optional 'eps' (default 1e-5)

    Returns a tuple of:
    - out: shape (N, D), dtype of x
    - cache: what ``layernorm_backward`` needs (a dict)
    """
    x = float_array("x", x, ndim=2)
    N, D = x.shape
    gamma, beta = _affine_params(x.dtype, gamma, beta, (D,))
    if not isinstance(ln_param, dict):
        raise ValueError(f"ln_param must be a dict; found {type(ln_param).__name__}")
    eps = _eps(ln_param, "ln_param")
    if D == 0:
        raise ValueError("layernorm needs at least one feature; found D = 0")
    mean = x.mean(axis=1, keepdims=True)
    x_centered = x - mean
    var = (x_centered**2).mean(axis=1, keepdims=True)
    inv_std = 1 / np.sqrt(var + eps)
    x_hat = x_centered * inv_std
    out = gamma * x_hat + beta
    return out, {"x_hat": x_hat, "inv_std": inv_std, "gamma": gamma}


def layernorm_backward(dout, cache):
    """Backward pass of layer normalization.

    The same closed form as ``batchnorm_backward_alt``, with the sums taken over the
    features of each sample instead of over the batch.

    Inputs:
    - dout: upstream gradient, shape (N, D)
    - cache: from ``layernorm_forward``

    Returns a tuple of:
    - dx: shape (N, D)
    - dgamma: shape (D,)
    - dbeta: shape (D,)
    """
    x_hat, inv_std, gamma = cache["x_hat"], cache["inv_std"], cache["gamma"]
    dout = _upstream(dout, x_hat.shape, x_hat.dtype)
    D = x_hat.shape[1]
    dbeta = dout.sum(axis=0)
    dgamma = (dout * x_hat).sum(axis=0)
    g = dout * gamma
    dx = (inv_std / D) * (D * g - g.sum(axis=1, keepdims=True)
                          - x_hat * (g * x_hat).sum(axis=1, keepdims=True))
    return dx, dgamma, dbeta


# --------------------------------------------------------------------------------------------
# group normalization of (N, C, H, W) feature maps


def spatial_groupnorm_forward(x, gamma, beta, G, gn_param):
    """Forward pass of group normalization.

    The C channels of each sample are split into G groups of C // G consecutive channels;
    each group is normalized over its (C // G) * H * W values. Like layer normalization it
    works per sample (G = 1 is layer normalization of the whole feature map).

    Inputs:
    - x: data, shape (N, C, H, W)
    - gamma: scale per channel, shape (1, C, 1, 1)
    - beta: shift per channel, shape (1, C, 1, 1)
    - G: number of groups, a positive integer that divides C
    - gn_param: dict with optional 'eps' (default 1e-5)

    Returns a tuple of:
    - out: shape (N, C, H, W), dtype of x
    - cache: what ``spatial_groupnorm_backward`` needs (a dict)
    """
    x = float_array("x", x, ndim=4)
    N, C, H, W = x.shape
    gamma, beta = _affine_params(x.dtype, gamma, beta, (1, C, 1, 1))
    G = positive_int("G (number of groups)", G)
    if C % G != 0:
        raise ValueError(f"G = {G} groups must divide the C = {C} channels; {C} / {G} = {C / G:g}")
    if not isinstance(gn_param, dict):
        raise ValueError(f"gn_param must be a dict; found {type(gn_param).__name__}")
    eps = _eps(gn_param, "gn_param")
    if H * W == 0:
        raise ValueError(f"groupnorm needs H * W >= 1; found x of shape {x.shape}")
    groups = x.reshape(N, G, -1)
    mean = groups.mean(axis=2, keepdims=True)
    x_centered = groups - mean
    var = (x_centered**2).mean(axis=2, keepdims=True)
    inv_std = 1 / np.sqrt(var + eps)
    x_hat = (x_centered * inv_std).reshape(N, C, H, W)
    out = gamma * x_hat + beta
    return out, {"x_hat": x_hat, "inv_std": inv_std, "gamma": gamma, "G": G}


def spatial_groupnorm_backward(dout, cache):
    """Backward pass of group normalization.

    Inputs:
    - dout: upstream gradient, shape (N, C, H, W)
    - cache: from ``spatial_groupnorm_forward``

    Returns a tuple of:
    - dx: shape (N, C, H, W)
    - dgamma: shape (1, C, 1, 1)
    - dbeta: shape (1, C, 1, 1)
    """
    x_hat, inv_std, gamma, G = cache["x_hat"], cache["inv_std"], cache["gamma"], cache["G"]
    dout = _upstream(dout, x_hat.shape, x_hat.dtype)
    N = x_hat.shape[0]
    dbeta = dout.sum(axis=(0, 2, 3), keepdims=True)
    dgamma = (dout * x_hat).sum(axis=(0, 2, 3), keepdims=True)
    # Per group, the closed form of batchnorm_backward_alt with M values in the group.
    g = (dout * gamma).reshape(N, G, -1)
    x_hat_groups = x_hat.reshape(N, G, -1)
    M = g.shape[2]
    dx = (inv_std / M) * (M * g - g.sum(axis=2, keepdims=True)
                          - x_hat_groups * (g * x_hat_groups).sum(axis=2, keepdims=True))
    return dx.reshape(x_hat.shape), dgamma, dbeta
