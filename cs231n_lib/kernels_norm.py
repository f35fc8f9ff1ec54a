"""Numba kernels behind spatial batch normalization (``normalization.spatial_batchnorm_*``).

Spatial batchnorm reduces over the N, H and W axes of an NCHW array for every channel. NumPy
does that through transposes and several full passes over memory; these kernels instead give
each thread whole channels: the N * H * W values of one channel (400 KB for a 16x64x56x56
float64 input) stay in the core's L2 cache while the kernel computes the mean, the variance
and the output, so main memory is read about once.

Statistics are accumulated in float64 whatever the input dtype; outputs have the input dtype.
"""

import numpy as np
from numba import njit, prange

# kernels.py chooses the threading layer, the launch lock and the cache folder for the whole
# library; importing it first makes those choices apply to these kernels too.
from . import kernels

# Reassociation lets LLVM vectorize the sums; no assumptions about NaN or infinity are made,
# so a NaN in the input still shows up in the output.
_OPTIONS = dict(parallel=True, nogil=True, error_model="numpy", fastmath={"reassoc", "contract"})


def _kernel(func):
    """Compile ``func`` with an on-disk cache, like ``kernels._jit``, plus fast-math sums.

    ``kernels`` has already found a usable cache folder (``kernels.CACHE_MODE``: the default
    one, a private temporary folder, or none); these kernels follow its choice, and compile
    without a cache when Numba still refuses one, so the library imports on a read-only install.
    """
    if kernels.CACHE_MODE != "off":
        try:
            return njit(cache=True, **_OPTIONS)(func)
        except RuntimeError:  # "cannot cache function ...: no locator available"
            pass
    return njit(cache=False, **_OPTIONS)(func)


@_kernel
def _channels_forward(x, gamma, beta, eps, out, mean, var):
    # x, out: (N, C, L); gamma, beta: (C,); mean, var: (C,) float64, written here.
    # The arithmetic is float64 also for float32 data: subtracting the mean before scaling
    # keeps the output accurate when the mean is large compared with the spread.
    N, C, L = x.shape
    count = N * L
    for c in prange(C):
        total = 0.0
        for n in range(N):
            for i in range(L):
                total += x[n, c, i]
        m = total / count
        # A second pass over the channel (now in cache) gives an accurate variance.
        squares = 0.0
        for n in range(N):
            for i in range(L):
                d = x[n, c, i] - m
                squares += d * d
        v = squares / count
        scale = gamma[c] / np.sqrt(v + eps)
        shift = np.float64(beta[c])
        for n in range(N):
            for i in range(L):
                out[n, c, i] = (x[n, c, i] - m) * scale + shift
        mean[c] = m
        var[c] = v


@_kernel
def _channels_backward(dout, x, mean, inv_std, gamma, dx, dgamma, dbeta):
    # dout, x, dx: (N, C, L); mean, inv_std: (C,) float64; gamma, dgamma, dbeta: (C,).
    N, C, L = x.shape
    count = N * L
    for c in prange(C):
        m = mean[c]
        sum_dout = 0.0
        sum_dout_centered = 0.0
        for n in range(N):
            for i in range(L):
                g = dout[n, c, i]
                sum_dout += g
                sum_dout_centered += g * (x[n, c, i] - m)
        s = inv_std[c]
        # dx = gamma * s * (dout - mean(dout) - x_hat * mean(dout * x_hat)), x_hat = (x - m) * s,
        # written as a * dout + b * (x - m) + k with per-channel constants a, b, k.
        a = gamma[c] * s
        b = -a * s * s * sum_dout_centered / count
        k = -a * sum_dout / count
        for n in range(N):
            for i in range(L):
                dx[n, c, i] = a * dout[n, c, i] + b * (x[n, c, i] - m) + k
        dgamma[c] = sum_dout_centered * s
        dbeta[c] = sum_dout


# Every kernel of this module, for warm-up and for the tests.
ALL_KERNELS = (_channels_forward, _channels_backward)


def batchnorm_channels_forward(x, gamma, beta, eps):
    """Per-channel batch normalization of a C-contiguous (N, C, H, W) array.

    Returns ``out`` (dtype of x), and the batch ``mean`` and biased ``var`` per channel
    (float64, shape (C,)).
    """
    N, C = x.shape[:2]
    x3 = x.reshape(N, C, -1)
    out = np.empty_like(x3)
    mean = np.empty(C, dtype=np.float64)
    var = np.empty(C, dtype=np.float64)
    kernels.launch(_channels_forward, x3, gamma, beta, float(eps), out, mean, var)
    return out.reshape(x.shape), mean, var


def batchnorm_channels_backward(dout, x, mean, inv_std, gamma):
    """Gradients of per-channel batch normalization (training mode).

    Inputs: C-contiguous ``dout`` and ``x`` of shape (N, C, H, W); ``mean`` and ``inv_std``
    per channel (float64); ``gamma`` (C,). Returns ``dx, dgamma, dbeta`` in x's dtype.
    """
    N, C = x.shape[:2]
    x3 = x.reshape(N, C, -1)
    dout3 = dout.reshape(N, C, -1)
    dx = np.empty_like(x3)
    dgamma = np.empty(C, dtype=x.dtype)
    dbeta = np.empty(C, dtype=x.dtype)
    kernels.launch(_channels_backward, dout3, x3, mean, inv_std, gamma, dx, dgamma, dbeta)
    return dx.reshape(x.shape), dgamma, dbeta
