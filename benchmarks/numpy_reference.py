"""Plain-NumPy conv and pool layers: the baseline every student can write (no Numba, no loops).

The convolution is the textbook recipe: precomputed fancy-index arrays pick every receptive
field out of the padded input (im2col), one matrix product does the work, and the backward pass
folds the column gradient back with ``np.add.at`` (which sums over repeated indices).
"""

import numpy as np


def _field_indices(C, HH, WW, Hout, Wout, stride, dilation):
    """Row (c, i, j) x column (oy, ox) index arrays into the padded input."""
    tap_i = np.repeat(np.arange(HH) * dilation, WW)
    tap_j = np.tile(np.arange(WW) * dilation, HH)
    rows = np.tile(tap_i, C)[:, None] + (stride * np.repeat(np.arange(Hout), Wout))[None, :]
    cols = np.tile(tap_j, C)[:, None] + (stride * np.tile(np.arange(Wout), Hout))[None, :]
    channel = np.repeat(np.arange(C), HH * WW)[:, None]
    return channel, rows, cols


def conv_forward(x, w, b, conv_param):
    stride, pad = conv_param["stride"], conv_param["pad"]
    dilation = conv_param.get("dilation", 1)
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    Hout = (H + 2 * pad - dilation * (HH - 1) - 1) // stride + 1
    Wout = (W + 2 * pad - dilation * (WW - 1) - 1) // stride + 1
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    index = _field_indices(C, HH, WW, Hout, Wout, stride, dilation)
    cols = x_pad[:, index[0], index[1], index[2]]  # (N, K, P)
    cols = cols.transpose(1, 0, 2).reshape(C * HH * WW, -1)  # (K, N*P)
    out = w.reshape(F, -1) @ cols + b[:, None]
    out = out.reshape(F, N, Hout, Wout).transpose(1, 0, 2, 3)
    return np.ascontiguousarray(out), (x, w, b, conv_param, cols, index)


def conv_backward(dout, cache):
    x, w, b, conv_param, cols, index = cache
    pad = conv_param["pad"]
    N, C, H, W = x.shape
    F = w.shape[0]
    dout_cols = dout.transpose(1, 0, 2, 3).reshape(F, -1)
    db = dout.sum(axis=(0, 2, 3))
    dw = (dout_cols @ cols.T).reshape(w.shape)
    dcols = (w.reshape(F, -1).T @ dout_cols).reshape(C * w.shape[2] * w.shape[3], N, -1)
    dx_pad = np.zeros((N, C, H + 2 * pad, W + 2 * pad), dtype=x.dtype)
    np.add.at(dx_pad, (slice(None), index[0], index[1], index[2]), dcols.transpose(1, 0, 2))
    dx = dx_pad[:, :, pad:pad + H, pad:pad + W] if pad else dx_pad
    return dx, dw, db


def max_pool_forward(x, pool_param):
    """Reshape trick for non-overlapping windows that tile the input (the benchmark's 2x2/2)."""
    ph, pw, s = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    N, C, H, W = x.shape
    assert ph == pw == s and H % ph == 0 and W % pw == 0
    blocks = x.reshape(N, C, H // ph, ph, W // pw, pw)
    out = blocks.max(axis=(3, 5))
    return out, (x, pool_param, blocks, out)


def max_pool_backward(dout, cache):
    x, pool_param, blocks, out = cache
    is_max = blocks == out[:, :, :, None, :, None]
    # route to the first maximum only: keep the first True of each window in row-major order
    N, C, Ho, ph, Wo, pw = blocks.shape
    flat = is_max.transpose(0, 1, 2, 4, 3, 5).reshape(N, C, Ho, Wo, ph * pw)
    first = flat.argmax(axis=-1)
    dx_windows = np.zeros((N, C, Ho, Wo, ph * pw), dtype=dout.dtype)
    np.put_along_axis(dx_windows, first[..., None], dout[..., None], axis=-1)
    dx = dx_windows.reshape(N, C, Ho, Wo, ph, pw).transpose(0, 1, 2, 4, 3, 5).reshape(x.shape)
    return dx
