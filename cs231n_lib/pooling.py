"""Max and average pooling layers (NCHW, no padding), CS231n-compatible.

A pooling window of pool_height x pool_width slides over each channel of each sample with the
given stride (windows may overlap, e.g. 3x3 with stride 2). Max pooling keeps the largest
value of each window; its gradient flows only to that one input. Average pooling keeps the mean;
its gradient is shared equally by the whole window. Where windows overlap, an input receives
the sum of the gradients of every window it belongs to.

The loops are Numba kernels in ``kernels.py``; this module checks inputs and sizes.
"""

import numpy as np

from . import kernels
from ._validate import float_array, require_shape
from .sizing import pool_output_size


def max_pool_forward(x, pool_param):
    """Forward pass of max pooling.

    Inputs:
    - x: input of shape (N, C, H, W)
    - pool_param: dict with 'pool_height', 'pool_width' and 'stride'

    Returns a tuple of:
    - out: shape (N, C, Hout, Wout), Hout = (H - pool_height)/stride + 1 (same for W), dtype of x
    - cache: (x, pool_param, argmax) for ``max_pool_backward``; ``argmax[n, c, oy, ox]`` is the
      position ``y*W + x`` of the window's maximum in its (H, W) plane of x. When several
      entries of a window share the maximum, the FIRST one in row-major order (smallest row,
      then smallest column) is the argmax. A NaN in a window is its maximum.
    """
    x = np.ascontiguousarray(float_array("x", x, ndim=4))
    PH, PW, S, Hout, Wout = _pool_geometry(x.shape, pool_param)
    N, C = x.shape[:2]
    out = np.empty((N, C, Hout, Wout), dtype=x.dtype)
    argmax = np.empty((N, C, Hout, Wout), dtype=np.int32)
    kernels.launch(kernels.max_pool_forward_planes, x, PH, PW, S, out, argmax)
    return out, (x, dict(pool_param), argmax)


def max_pool_backward(dout, cache):
    """Backward pass of max pooling.

    Inputs:
    - dout: upstream derivatives of shape (N, C, Hout, Wout)
    - cache: the tuple returned by ``max_pool_forward``

    Returns dx of the shape and dtype of x: each dout entry is routed to the argmax of its window
    (the first maximum on ties); with overlapping windows the contributions add up.
    """
    x, pool_param, argmax = cache
    PH, PW, S, Hout, Wout = _pool_geometry(x.shape, pool_param)
    dout = _check_dout(dout, x, Hout, Wout)
    dx = np.empty_like(x)
    kernels.launch(kernels.max_pool_backward_planes, dout, argmax, dx)
    return dx


def avg_pool_forward(x, pool_param):
    """Forward pass of average pooling.

    Inputs:
    - x: input of shape (N, C, H, W)
    - pool_param: dict with 'pool_height', 'pool_width' and 'stride'

    Returns a tuple of:
    - out: shape (N, C, Hout, Wout), the mean of each window, dtype of x
    - cache: (x, pool_param) for ``avg_pool_backward``
    """
    x = np.ascontiguousarray(float_array("x", x, ndim=4))
    PH, PW, S, Hout, Wout = _pool_geometry(x.shape, pool_param)
    out = np.empty(x.shape[:2] + (Hout, Wout), dtype=x.dtype)
    kernels.launch(kernels.avg_pool_forward_planes, x, PH, PW, S, out)
    return out, (x, dict(pool_param))


def avg_pool_backward(dout, cache):
    """Backward pass of average pooling.

    Inputs:
    - dout: upstream derivatives of shape (N, C, Hout, Wout)
    - cache: the tuple returned by ``avg_pool_forward``

    Returns dx of the shape and dtype of x: every input of a window receives
    dout / (pool_height * pool_width); overlapping windows add up.
    """
    x, pool_param = cache[0], cache[1]
    PH, PW, S, Hout, Wout = _pool_geometry(x.shape, pool_param)
    dout = _check_dout(dout, x, Hout, Wout)
    dx = np.empty_like(x)
    kernels.launch(kernels.avg_pool_backward_planes, dout, PH, PW, S, dx)
    return dx


def _pool_geometry(x_shape, pool_param):
    """(PH, PW, stride, Hout, Wout) from pool_param, via the one sizing rule."""
    keys = ("pool_height", "pool_width", "stride")
    if not isinstance(pool_param, dict) or any(k not in pool_param for k in keys):
        raise ValueError(f"pool_param must be a dict with 'pool_height', 'pool_width' and 'stride'; found {pool_param!r}")
    PH, PW, S = (pool_param[k] for k in keys)
    H, W = x_shape[2], x_shape[3]
    try:
        Hout = pool_output_size(H, PH, S)
    except ValueError as err:
        raise ValueError(f"along the height (H = {H}, pool_height = {PH}): {err}") from None
    try:
        Wout = pool_output_size(W, PW, S)
    except ValueError as err:
        raise ValueError(f"along the width (W = {W}, pool_width = {PW}): {err}") from None
    return int(PH), int(PW), int(S), Hout, Wout


def _check_dout(dout, x, Hout, Wout):
    dout = float_array("dout", dout, ndim=4)
    require_shape("dout", dout, (x.shape[0], x.shape[1], Hout, Wout))
    return np.ascontiguousarray(dout, dtype=x.dtype)
