"""Layers as students get them wrong: small NumPy implementations with one switch per mistake.

The trusted checks use these to compute, on a case's own inputs, what a known mistake returns
(``Check.mistakes``); when a student's wrong result matches, the feedback names the mistake.
Everything is computed in float64 and vectorised over the batch where the mistake allows it (the
cases are small). A variant that cannot run on a case (a window that falls off the padded input,
a reshape that does not fit) returns None and is left out of that case's catalogue.

Nothing here ever reaches the student kit: with the switches off, these functions are answers.
"""

import numpy as np


def f64(a):
    return np.asarray(a, dtype=np.float64)


# ------------------------------------------------------------------------------------------
# convolution


def pad_input(x, top, bottom, left, right):
    return np.pad(f64(x), ((0, 0), (0, 0), (top, bottom), (left, right)))


def windows(x_pad, HH, WW, Ho, Wo, row_step, col_step, dilation=1):
    """(N, C, HH, WW, Ho, Wo): tap (i, j) of the window at output (oy, ox); None if a window
    falls off ``x_pad`` or the sizes are not positive."""
    N, C, Hp, Wp = x_pad.shape
    if Ho <= 0 or Wo <= 0 or (HH - 1) * dilation + (Ho - 1) * row_step >= Hp or \
            (WW - 1) * dilation + (Wo - 1) * col_step >= Wp:
        return None
    out = np.empty((N, C, HH, WW, Ho, Wo))
    for i in range(HH):
        for j in range(WW):
            top, left = i * dilation, j * dilation
            out[:, :, i, j] = x_pad[:, :, top:top + row_step * (Ho - 1) + 1:row_step,
                                    left:left + col_step * (Wo - 1) + 1:col_step]
    return out


def output_size(size, F, stride, pad, dilation=1):
    return (size + 2 * pad - ((F - 1) * dilation + 1)) // stride + 1


def conv_forward(x, w, b, stride, pad, dilation=1, *, pads=None, row_step=None, col_step=None, size=None,
                 bias_times=1):
    """The convolution with the mistakes' switches.

    - pads: (top, bottom, left, right) zeros actually added (default: ``pad`` on every side)
    - row_step, col_step: the steps the windows actually take (default: the stride)
    - size: (Ho, Wo) the output actually has (default: from the padded input and the stride)
    - bias_times: how many times the bias is added
    """
    x, w, b = f64(x), f64(w), f64(b)
    F, C, HH, WW = w.shape
    pads = (pad,) * 4 if pads is None else pads
    x_pad = pad_input(x, *pads)
    row_step = stride if row_step is None else row_step
    col_step = stride if col_step is None else col_step
    if size is None:
        span_h, span_w = (HH - 1) * dilation + 1, (WW - 1) * dilation + 1
        size = ((x_pad.shape[2] - span_h) // stride + 1, (x_pad.shape[3] - span_w) // stride + 1)
    win = windows(x_pad, HH, WW, size[0], size[1], row_step, col_step, dilation)
    if win is None:
        return None
    return np.einsum("nchwyx,fchw->nfyx", win, w) + bias_times * b[None, :, None, None]


def conv_backward(x, w, dout, stride, pad, dilation=1, *, crop="right", assign_dx=False, flip_dx=False,
                  col_step=None, row_step=None, assign_dw=None):
    """(dx, dw, db) with the mistakes' switches.

    - crop: how dx is cut out of the padded gradient: "right" (pad:pad + H), "pad:-pad" (empty
      when pad = 0), "1:-1" (a hard-coded one), "none" (the padded gradient is returned),
      "start" (pad: to the end, the bottom/right padding kept)
    - assign_dx: ``=`` instead of ``+=`` in the loop over (n, f, i, j): the last window wins
    - assign_dw: ``dw[f] = ...`` instead of ``+=``, so the last window of the loops wins, in
      any order of ascending loops: "sample" (a loop over n too: dout[N-1, f, Ho-1, Wo-1] times
      the last window of the last sample) or "batch" (the samples summed in one statement: the
      last window of every sample)
    - flip_dx: dx computed with the filters flipped
    - row_step, col_step: the steps the windows take (default: the stride)
    """
    x, w, dout = f64(x), f64(w), f64(dout)
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    Ho, Wo = dout.shape[2:]
    row_step = stride if row_step is None else row_step
    col_step = stride if col_step is None else col_step
    x_pad = pad_input(x, pad, pad, pad, pad)
    win = windows(x_pad, HH, WW, Ho, Wo, row_step, col_step, dilation)
    if win is None:
        return None
    if assign_dw == "sample":
        dw = np.einsum("f,chw->fchw", dout[-1, :, -1, -1], win[-1, :, :, :, -1, -1])
    elif assign_dw == "batch":
        dw = np.einsum("nf,nchw->fchw", dout[:, :, -1, -1], win[:, :, :, :, -1, -1])
    else:
        dw = np.einsum("nfyx,nchwyx->fchw", dout, win)
    db = dout.sum(axis=(0, 2, 3))
    taps = w[:, :, ::-1, ::-1] if flip_dx else w
    dx_pad = np.zeros_like(x_pad)
    if assign_dx:
        for f in range(F):
            for i in range(Ho):
                for j in range(Wo):
                    rows = slice(i * row_step, i * row_step + (HH - 1) * dilation + 1, dilation)
                    cols = slice(j * col_step, j * col_step + (WW - 1) * dilation + 1, dilation)
                    dx_pad[:, :, rows, cols] = dout[:, f, i, j, None, None, None] * taps[f]
    else:
        contributions = np.einsum("nfyx,fchw->nchwyx", dout, taps)
        for i in range(HH):
            for j in range(WW):
                top, left = i * dilation, j * dilation
                dx_pad[:, :, top:top + row_step * (Ho - 1) + 1:row_step,
                       left:left + col_step * (Wo - 1) + 1:col_step] += contributions[:, :, i, j]
    dx = crop_padded(dx_pad, pad, H, W, crop)
    return dx, dw, db


def crop_padded(dx_pad, pad, H, W, crop):
    if crop == "right":
        return dx_pad[:, :, pad:pad + H, pad:pad + W]
    if crop == "pad:-pad":
        return dx_pad[:, :, pad:-pad, pad:-pad]
    if crop == "1:-1":
        return dx_pad[:, :, 1:-1, 1:-1]
    if crop == "start":
        return dx_pad[:, :, pad:, pad:]
    if crop == "none":
        return dx_pad
    raise ValueError(crop)


# ------------------------------------------------------------------------------------------
# im2col and col2im (layout: row (c*HH + i)*WW + j, column (n*Ho + oy)*Wo + ox)


def im2col(x, HH, WW, stride, pad, *, pads=None, row_step=None, col_step=None, size=None):
    """The column matrix with the mistakes' switches (as ``conv_forward``'s)."""
    x = f64(x)
    pads = (pad,) * 4 if pads is None else pads
    x_pad = pad_input(x, *pads)
    N, C = x.shape[:2]
    if size is None:
        size = ((x_pad.shape[2] - HH) // stride + 1, (x_pad.shape[3] - WW) // stride + 1)
    win = windows(x_pad, HH, WW, size[0], size[1], stride if row_step is None else row_step,
                  stride if col_step is None else col_step)
    if win is None:
        return None
    return win.transpose(1, 2, 3, 0, 4, 5).reshape(C * HH * WW, N * size[0] * size[1])


def reorder_columns(cols, C, HH, WW, N, Ho, Wo, rows_order=(0, 1, 2), columns_order=(0, 1, 2)):
    """The column matrix laid out in another order: ``rows_order`` permutes (c, i, j) and
    ``columns_order`` permutes (n, oy, ox)."""
    blocks = f64(cols).reshape(C, HH, WW, N, Ho, Wo)
    axes = tuple(rows_order) + tuple(3 + a for a in columns_order)
    return blocks.transpose(axes).reshape(C * HH * WW, N * Ho * Wo)


def col2im(cols, x_shape, HH, WW, stride, pad, *, assign=False, crop="right", row_step=None, col_step=None):
    """The fold of a column matrix with the mistakes' switches (as ``conv_backward``'s)."""
    N, C, H, W = x_shape
    Ho, Wo = output_size(H, HH, stride, pad), output_size(W, WW, stride, pad)
    row_step = stride if row_step is None else row_step
    col_step = stride if col_step is None else col_step
    if (HH - 1) + (Ho - 1) * row_step >= H + 2 * pad or (WW - 1) + (Wo - 1) * col_step >= W + 2 * pad:
        return None
    blocks = f64(cols).reshape(C, HH, WW, N, Ho, Wo)
    dx_pad = np.zeros((N, C, H + 2 * pad, W + 2 * pad))
    if assign == "taps":  # a loop over the taps (i, j), writing each strided slice with "="
        for i in range(HH):
            for j in range(WW):
                dx_pad[:, :, i:i + row_step * (Ho - 1) + 1:row_step,
                       j:j + col_step * (Wo - 1) + 1:col_step] = blocks[:, i, j].transpose(1, 0, 2, 3)
    elif assign:  # a loop over the columns, n then oy then ox, writing each window with "="
        for n in range(N):
            for i in range(Ho):
                for j in range(Wo):
                    dx_pad[n, :, i * row_step:i * row_step + HH, j * col_step:j * col_step + WW] = blocks[:, :, :, n, i, j]
    else:
        for i in range(HH):
            for j in range(WW):
                dx_pad[:, :, i:i + row_step * (Ho - 1) + 1:row_step,
                       j:j + col_step * (Wo - 1) + 1:col_step] += blocks[:, i, j].transpose(1, 0, 2, 3)
    return crop_padded(dx_pad, pad, H, W, crop)


# ------------------------------------------------------------------------------------------
# pooling


def pool_forward(x, PH, PW, stride, reduce="max", *, row_step=None, col_step=None, size=None, divisor=None):
    """Max or average pooling with the mistakes' switches (``divisor``: what the window sum is
    divided by, for average pooling)."""
    x = f64(x)
    N, C, H, W = x.shape
    if size is None:
        size = ((H - PH) // stride + 1, (W - PW) // stride + 1)
    rs, cs = stride if row_step is None else row_step, stride if col_step is None else col_step
    if reduce == "max":
        # windows that run off the input are cut short, as a slice is (their maximum still exists)
        x = np.pad(x, ((0, 0), (0, 0), (0, max(0, (size[0] - 1) * rs + PH - H)),
                       (0, max(0, (size[1] - 1) * cs + PW - W))), constant_values=-np.inf)
    win = windows(x, PH, PW, size[0], size[1], rs, cs)
    if win is None:
        return None
    if reduce == "max":
        return win.max(axis=(2, 3))
    return win.sum(axis=(2, 3)) / (PH * PW if divisor is None else divisor)


def max_pool_backward(x, dout, PH, PW, stride, *, ties="first", assign=None, row_step=None, col_step=None,
                      spread=False, ones=False):
    """dx of max pooling with the mistakes' switches.

    - ties: "first" (right), "last" or "all" (every maximum of a window gets the gradient)
    - assign: None (``+=``, right), "entry" (``dx[..., p, q] = dout``) or "window"
      (``dx[..., window] = mask * dout``: the whole window is overwritten)
    - spread: every entry of the window gets the gradient (as if it were a sum)
    - ones: the mask is returned without multiplying by dout
    """
    x, dout = f64(x), f64(dout)
    N, C, Ho, Wo = dout.shape
    row_step = stride if row_step is None else row_step
    col_step = stride if col_step is None else col_step
    if (Ho - 1) * row_step + PH > x.shape[2] or (Wo - 1) * col_step + PW > x.shape[3]:
        return None
    dx = np.zeros_like(x)
    for i in range(Ho):
        for j in range(Wo):
            top, left = i * row_step, j * col_step
            window = x[:, :, top:top + PH, left:left + PW].reshape(N, C, PH * PW)
            if spread:
                mask = np.ones_like(window, dtype=bool)
            elif ties == "all":
                mask = window == window.max(axis=2, keepdims=True)
            else:
                flat = window if ties == "first" else window[:, :, ::-1]
                index = np.argmax(flat, axis=2)
                if ties == "last":
                    index = PH * PW - 1 - index
                mask = np.zeros_like(window, dtype=bool)
                np.put_along_axis(mask, index[:, :, None], True, axis=2)
            grad = mask * (1.0 if ones else dout[:, :, i, j, None])
            grad = grad.reshape(N, C, PH, PW)
            region = dx[:, :, top:top + PH, left:left + PW]
            if assign == "window":
                region[...] = grad
            elif assign == "entry":
                region[...] = np.where(mask.reshape(N, C, PH, PW), grad, region)
            else:
                region += grad
    return dx


def avg_pool_backward(x_shape, dout, PH, PW, stride, *, share=None, assign=False, row_step=None, col_step=None):
    """dx of average pooling with the mistakes' switches (``share``: the factor each entry of a
    window gets, 1 / (PH * PW) when right)."""
    dout = f64(dout)
    N, C, Ho, Wo = dout.shape
    row_step = stride if row_step is None else row_step
    col_step = stride if col_step is None else col_step
    # (a window that runs off the input is cut short, as a slice is)
    share = 1.0 / (PH * PW) if share is None else share
    dx = np.zeros(x_shape)
    for i in range(Ho):
        for j in range(Wo):
            top, left = i * row_step, j * col_step
            grad = dout[:, :, i, j, None, None] * share
            if assign:
                dx[:, :, top:top + PH, left:left + PW] = grad
            else:
                dx[:, :, top:top + PH, left:left + PW] += grad
    return dx


# ------------------------------------------------------------------------------------------
# normalization (x of shape (N, D); spatial and grouped layers reshape to it first)


def normalise(x, axis, eps, *, ddof=0, eps_outside=False):
    """(x_hat, mean, var) with statistics over ``axis``."""
    x = f64(x)
    mean = x.mean(axis=axis, keepdims=True)
    var = x.var(axis=axis, keepdims=True, ddof=ddof)
    std = np.sqrt(var) + eps if eps_outside else np.sqrt(var + eps)
    return (x - mean) / std, mean, var


def norm_backward_dx(dout, gamma, x_hat, inv_std, axis, *, drop=None, use_gamma=True):
    """dx of a normalisation with statistics over ``axis``; ``drop`` leaves out a path:
    "both" (mean and variance taken as constants), "variance" or "mean"."""
    g = f64(dout) * (f64(gamma) if use_gamma else 1.0)
    M = np.prod([g.shape[a] for a in np.atleast_1d(axis)])
    mean_g = g.sum(axis=axis, keepdims=True) / M
    mean_gx = (g * x_hat).sum(axis=axis, keepdims=True) / M
    if drop == "both":
        return inv_std * g
    if drop == "variance":
        return inv_std * (g - mean_g)
    if drop == "mean":
        return inv_std * (g - x_hat * mean_gx)
    return inv_std * (g - mean_g - x_hat * mean_gx)
