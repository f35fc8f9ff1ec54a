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


def numerical_gradient(f, x, df, h=1e-4, return_noise=False):
    """d sum(f(x) * df) / dx by a five-point central difference, one entry at a time.

    The five-point stencil's error is O(h**4), so a larger step h keeps the rounding error
    small too. The outputs are differenced elementwise BEFORE they are weighted and summed:
    outputs that a perturbation does not reach then cancel exactly instead of adding their
    rounding noise.

    ``noise`` (returned with ``return_noise=True``) estimates, per entry, the rounding error
    left: a few ulps of every output the perturbation reached, divided by h. Entries below it
    are set to exactly 0, so that an exact analytic zero (a dead ReLU, a satisfied margin) is
    compared with 0 and not with noise. x is copied, never modified.
    """
    x = np.array(x, dtype=np.float64)
    df = np.asarray(df, dtype=np.float64)
    grad = np.empty_like(x)
    noise = np.zeros_like(x)
    flat = x.reshape(-1)

    def output_at(k, v):
        flat[k] = v
        return np.array(f(x), dtype=np.float64)  # a copy: f may reuse its output buffer

    eps = np.finfo(np.float64).eps
    for k in range(flat.size):
        old = flat[k]
        f2p, f1p, f1m, f2m = (output_at(k, old + s * h) for s in (2, 1, -1, -2))
        flat[k] = old
        # 8 (f1p - f1m) - (f2p - f2m): outputs the perturbation does not reach give exact zeros
        value = np.sum((8 * (f1p - f1m) - (f2p - f2m)) * df) / (12 * h)
        reached = (f2p != f2m) | (f1p != f1m)
        size = np.maximum.reduce([np.abs(f2p), np.abs(f1p), np.abs(f1m), np.abs(f2m)])
        # independent roundings add up like a random walk: sqrt of the sum of squares
        noise.reshape(-1)[k] = 8 * eps * float(np.sqrt(np.sum(((size * df)[reached]) ** 2))) / h
        grad.reshape(-1)[k] = 0.0 if abs(value) <= noise.reshape(-1)[k] else value
    return (grad, noise) if return_noise else grad


def assert_gradient_matches(analytic, f, x, df, rtol=1e-7, name="gradient"):
    """Assert ``analytic`` == the numerical gradient of sum(f(x) * df) to relative error rtol.

    The relative error is the usual max |a - n| / max(1e-8, |a| + |n|); entries so small that
    the numerical gradient's own rounding noise (see ``numerical_gradient``) exceeds rtol of
    them are allowed that noise on top.
    """
    numeric, noise = numerical_gradient(f, x, df, return_noise=True)
    analytic = np.asarray(analytic, dtype=np.float64)
    assert analytic.shape == numeric.shape, (name, analytic.shape, numeric.shape)
    allowed = rtol * np.maximum(1e-8, np.abs(analytic) + np.abs(numeric)) + noise
    excess = np.abs(analytic - numeric) - allowed
    worst = tuple(int(i) for i in np.unravel_index(np.argmax(excess), excess.shape)) if excess.size else ()
    assert excess.size == 0 or excess[worst] <= 0, (
        f"{name}: analytic {float(analytic[worst])!r} vs numerical {float(numeric[worst])!r} at {worst} "
        f"(relative error {max_rel_error(analytic, numeric):.3g}, rounding noise {noise[worst]:.3g})"
    )


def max_rel_error(a, b):
    """max |a - b| / max(1e-8, |a| + |b|), with a shape check (no broadcasting)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))
