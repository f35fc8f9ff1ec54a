"""Independent oracles for the tests of layers, losses and normalization.

Written as plain loops over the definition (no vectorized tricks, no library code), so that
a mistake in the library cannot be repeated here. They are slow: use small arrays.
"""

import math

import numpy as np


def mean_and_biased_var(values):
    """Mean and biased variance (divide by the count) of a list of numbers, in float64."""
    values = [float(v) for v in values]
    mean = math.fsum(values) / len(values)
    var = math.fsum((v - mean) ** 2 for v in values) / len(values)
    return mean, var


def batchnorm_loop(x, gamma, beta, eps):
    """Training-mode batchnorm of x (N, D): returns out, batch mean (D,), biased var (D,)."""
    N, D = x.shape
    out = np.empty((N, D))
    means, variances = np.empty(D), np.empty(D)
    for d in range(D):
        mean, var = mean_and_biased_var(x[n, d] for n in range(N))
        for n in range(N):
            out[n, d] = float(gamma[d]) * (float(x[n, d]) - mean) / math.sqrt(var + eps) + float(beta[d])
        means[d], variances[d] = mean, var
    return out, means, variances


def spatial_batchnorm_loop(x, gamma, beta, eps):
    """Training-mode batchnorm per channel of x (N, C, H, W): returns out, mean (C,), var (C,)."""
    N, C, H, W = x.shape
    out = np.empty((N, C, H, W))
    means, variances = np.empty(C), np.empty(C)
    for c in range(C):
        mean, var = mean_and_biased_var(x[n, c, i, j] for n in range(N) for i in range(H) for j in range(W))
        for n in range(N):
            for i in range(H):
                for j in range(W):
                    out[n, c, i, j] = float(gamma[c]) * (float(x[n, c, i, j]) - mean) / math.sqrt(var + eps) + float(beta[c])
        means[c], variances[c] = mean, var
    return out, means, variances


def layernorm_loop(x, gamma, beta, eps):
    """Layer norm of x (N, D), each sample over its own features."""
    N, D = x.shape
    out = np.empty((N, D))
    for n in range(N):
        mean, var = mean_and_biased_var(x[n, d] for d in range(D))
        for d in range(D):
            out[n, d] = float(gamma[d]) * (float(x[n, d]) - mean) / math.sqrt(var + eps) + float(beta[d])
    return out


def groupnorm_loop(x, gamma, beta, G, eps):
    """Group norm of x (N, C, H, W) with G groups of consecutive channels; gamma (1, C, 1, 1)."""
    N, C, H, W = x.shape
    per_group = C // G
    out = np.empty((N, C, H, W))
    for n in range(N):
        for g in range(G):
            channels = range(g * per_group, (g + 1) * per_group)
            mean, var = mean_and_biased_var(x[n, c, i, j] for c in channels for i in range(H) for j in range(W))
            for c in channels:
                for i in range(H):
                    for j in range(W):
                        out[n, c, i, j] = (float(gamma[0, c, 0, 0]) * (float(x[n, c, i, j]) - mean)
                                           / math.sqrt(var + eps) + float(beta[0, c, 0, 0]))
    return out


def numerical_gradient(f, x, df, h=1e-4):
    """d sum(f(x) * df) / dx by a five-point central difference, one entry at a time.

    The five-point stencil's error is O(h**4), so a larger step h keeps the rounding error
    small too: both stay far below 1e-7 relative even where a gradient entry is tiny.
    Entries below the rounding noise of the stencil are set to exactly 0, so that an exact
    analytic zero (a dead ReLU, a satisfied margin) is compared with 0 and not with noise.
    x is copied, never modified.
    """
    x = np.array(x, dtype=np.float64)
    grad = np.empty_like(x)
    flat = x.reshape(-1)

    def value_at(k, v):
        flat[k] = v
        return np.sum(np.asarray(f(x), dtype=np.float64) * df)

    for k in range(flat.size):
        old = flat[k]
        f2p, f1p, f1m, f2m = (value_at(k, old + s * h) for s in (2, 1, -1, -2))
        flat[k] = old
        value = (-f2p + 8 * f1p - 8 * f1m + f2m) / (12 * h)
        noise = 32 * np.finfo(np.float64).eps * max(abs(f2p), abs(f1p), abs(f1m), abs(f2m), 1.0) / h
        grad.reshape(-1)[k] = 0.0 if abs(value) < noise else value
    return grad


def max_rel_error(a, b):
    """max |a - b| / max(1e-8, |a| + |b|), with a shape check (no broadcasting)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))
