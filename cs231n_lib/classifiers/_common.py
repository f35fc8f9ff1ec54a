"""Pieces shared by the classifiers: weight initialisation and input checks."""

import numpy as np


def init_weights(rng, shape, fan_in, weight_scale, dtype):
    """Random weights of ``shape``: ``weight_scale * N(0, 1)``, or He initialisation
    ``sqrt(2 / fan_in) * N(0, 1)`` when ``weight_scale == 'he'`` (suits ReLU layers)."""
    if isinstance(weight_scale, str):
        if weight_scale.lower() != "he":
            raise ValueError(f"weight_scale must be a positive number or 'he'; found {weight_scale!r}")
        scale = np.sqrt(2.0 / fan_in)
    else:
        scale = float(weight_scale)
        if not scale > 0 or not np.isfinite(scale):
            raise ValueError(f"weight_scale must be a positive number or 'he'; found {weight_scale!r}")
    return (scale * rng.standard_normal(shape)).astype(dtype)


def make_rng(seed):
    """``np.random`` itself when ``seed`` is None (so ``np.random.seed`` works as in CS231n
    notebooks), otherwise a generator of its own."""
    return np.random if seed is None else np.random.default_rng(seed)


def check_dtype(dtype):
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64; found {dtype}")
    return dtype


def check_reg(reg):
    reg = float(reg)
    if not reg >= 0 or not np.isfinite(reg):
        raise ValueError(f"reg must be a finite number >= 0; found {reg!r}")
    return reg


def check_batch(X, y, input_dim, num_classes, dtype):
    """Return X as an array of ``dtype``, checking it is (N, *input_dim) and that y fits."""
    X = np.asarray(X)
    if X.ndim != 4 or X.shape[1:] != tuple(input_dim):
        raise ValueError(
            f"X must have shape (N, {', '.join(map(str, input_dim))}) for this model; found {X.shape}"
        )
    if y is not None:
        y = np.asarray(y)
        if y.shape != (X.shape[0],):
            raise ValueError(f"y must have shape ({X.shape[0]},) to match X {X.shape}; found {y.shape}")
        if not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"y must hold integer labels; found dtype {y.dtype}")
        if y.size and (y.min() < 0 or y.max() >= num_classes):
            raise ValueError(f"labels must lie in [0, {num_classes - 1}]; found range [{y.min()}, {y.max()}]")
    return X.astype(dtype, copy=False), y


def l2_penalty(params, weight_names, reg):
    """``0.5 * reg * sum(W**2)`` over the named weight arrays (biases and batchnorm excluded)."""
    return 0.5 * reg * sum(float(np.sum(params[name].astype(np.float64) ** 2)) for name in weight_names)
