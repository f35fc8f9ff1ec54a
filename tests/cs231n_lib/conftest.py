"""Shared oracles and hypothesis strategies for the library tests.

Everything here is written independently of ``cs231n_lib``: plain Python loops for the layers,
a central-difference gradient, and input generators that only produce valid hyperparameters
(each layer's output size is drawn first and the input size derived from it).

Test modules import these helpers as ``from cs231n_lib_testkit import ...``: pytest imports this
file before collecting the tests next to it, and several folders may hold a ``conftest.py``, so
the plain name ``conftest`` is not a reliable module name.
"""

import sys

import numpy as np
import pytest
from hypothesis import strategies as st

DTYPES = (np.float64, np.float32)

# Tolerances used across the tests (norm-based relative error, see rel_error)
FLOAT64_TOL = 1e-10
FLOAT32_TOL = 2e-5
NUMERICAL_GRAD_TOL = 1e-7


# --------------------------------------------------------------------------------------------
# comparison and numerical gradients
# --------------------------------------------------------------------------------------------


def rel_error(actual, expected):
    """max |actual - expected| / max(|actual|, |expected|): a scale-free error for a whole array.

    Unlike an element-wise relative error it is not dominated by entries that are zero up to
    rounding (sums of terms that cancel).
    """
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"shape {actual.shape} != expected {expected.shape}"
    scale = max(np.abs(actual).max(initial=0.0), np.abs(expected).max(initial=0.0))
    if scale == 0.0:
        return 0.0
    return float(np.abs(actual - expected).max() / scale)


def numerical_gradient(f, x, upstream, h=1e-6):
    """Central-difference gradient of ``sum(f(x) * upstream)`` with respect to ``x``.

    ``f`` takes the array ``x`` (which is modified in place and restored) and returns an array.
    """
    grad = np.zeros_like(x, dtype=np.float64)
    flat_x = x.reshape(-1)
    flat_grad = grad.reshape(-1)
    for index in range(flat_x.size):
        saved = flat_x[index]
        flat_x[index] = saved + h
        plus = np.sum(np.asarray(f(x), dtype=np.float64) * upstream)
        flat_x[index] = saved - h
        minus = np.sum(np.asarray(f(x), dtype=np.float64) * upstream)
        flat_x[index] = saved
        flat_grad[index] = (plus - minus) / (2 * h)
    return grad


# --------------------------------------------------------------------------------------------
# loop oracles (float64, no NumPy tricks)
# --------------------------------------------------------------------------------------------


def conv_out_size(size, filt, stride, pad, dilation):
    return (size + 2 * pad - dilation * (filt - 1) - 1) // stride + 1


def conv_forward_loops(x, w, b, stride, pad, dilation=1):
    """Direct convolution: out[n,f,oy,ox] = b[f] + sum_{c,i,j} x_pad[...] * w[f,c,i,j]."""
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    Hout = conv_out_size(H, HH, stride, pad, dilation)
    Wout = conv_out_size(W, WW, stride, pad, dilation)
    out = np.zeros((N, F, Hout, Wout))
    for n in range(N):
        for f in range(F):
            for oy in range(Hout):
                for ox in range(Wout):
                    total = float(b[f])
                    for c in range(C):
                        for i in range(HH):
                            y = oy * stride + i * dilation - pad
                            if not 0 <= y < H:
                                continue
                            for j in range(WW):
                                xx = ox * stride + j * dilation - pad
                                if 0 <= xx < W:
                                    total += float(x[n, c, y, xx]) * float(w[f, c, i, j])
                    out[n, f, oy, ox] = total
    return out


def im2col_loops(x, HH, WW, stride, pad, dilation=1):
    """The documented layout: rows (c, i, j), columns (n, oy, ox), zeros in the padding."""
    N, C, H, W = x.shape
    Hout = conv_out_size(H, HH, stride, pad, dilation)
    Wout = conv_out_size(W, WW, stride, pad, dilation)
    cols = np.zeros((C * HH * WW, N * Hout * Wout))
    for c in range(C):
        for i in range(HH):
            for j in range(WW):
                row = (c * HH + i) * WW + j
                for n in range(N):
                    for oy in range(Hout):
                        for ox in range(Wout):
                            y = oy * stride + i * dilation - pad
                            xx = ox * stride + j * dilation - pad
                            if 0 <= y < H and 0 <= xx < W:
                                cols[row, (n * Hout + oy) * Wout + ox] = x[n, c, y, xx]
    return cols


def pool_forward_loops(x, ph, pw, stride, mode):
    """Max or average pooling; for 'max' also returns the (y, x) of the first maximum."""
    N, C, H, W = x.shape
    Hout = (H - ph) // stride + 1
    Wout = (W - pw) // stride + 1
    out = np.zeros((N, C, Hout, Wout))
    where = {}
    for n in range(N):
        for c in range(C):
            for oy in range(Hout):
                for ox in range(Wout):
                    best, best_at, total = None, None, 0.0
                    for i in range(ph):
                        for j in range(pw):
                            v = float(x[n, c, oy * stride + i, ox * stride + j])
                            total += v
                            if best is None or v > best:
                                best, best_at = v, (oy * stride + i, ox * stride + j)
                    out[n, c, oy, ox] = best if mode == "max" else total / (ph * pw)
                    where[n, c, oy, ox] = best_at
    return (out, where) if mode == "max" else out


def max_pool_backward_loops(dout, x_shape, where):
    dx = np.zeros(x_shape)
    for (n, c, oy, ox), (y, xx) in where.items():
        dx[n, c, y, xx] += dout[n, c, oy, ox]
    return dx


def avg_pool_backward_loops(dout, x_shape, ph, pw, stride):
    dx = np.zeros(x_shape)
    N, C, Hout, Wout = dout.shape
    for n in range(N):
        for c in range(C):
            for oy in range(Hout):
                for ox in range(Wout):
                    for i in range(ph):
                        for j in range(pw):
                            dx[n, c, oy * stride + i, ox * stride + j] += dout[n, c, oy, ox] / (ph * pw)
    return dx


# --------------------------------------------------------------------------------------------
# hypothesis strategies (valid hyperparameters only)
# --------------------------------------------------------------------------------------------


@st.composite
def conv_problems(draw, max_batch=3, max_channels=3, max_filters=4, max_filter=4, max_out=4,
                  dtypes=DTYPES):
    """Draw a valid convolution problem: dict with x, w, b, conv_param and dtype.

    Output sizes are drawn first; the input size follows, so every (stride, pad, dilation) is
    consistent. Covers 1x1 filters, strides larger than the filter, padding wider than the
    filter and filters as large as the padded input (Hout = 1 with the largest pad).
    """
    N = draw(st.integers(1, max_batch))
    C = draw(st.integers(1, max_channels))
    F = draw(st.integers(1, max_filters))
    HH = draw(st.integers(1, max_filter))
    WW = draw(st.integers(1, max_filter))
    stride = draw(st.integers(1, 4))
    dilation = draw(st.integers(1, 3))
    Hout = draw(st.integers(1, max_out))
    Wout = draw(st.integers(1, max_out))
    span_h = (Hout - 1) * stride + dilation * (HH - 1) + 1  # = H + 2*pad
    span_w = (Wout - 1) * stride + dilation * (WW - 1) + 1
    pad = draw(st.integers(0, min(3, (span_h - 1) // 2, (span_w - 1) // 2)))
    H, W = span_h - 2 * pad, span_w - 2 * pad
    dtype = draw(st.sampled_from(dtypes))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return dict(
        x=rng.standard_normal((N, C, H, W)).astype(dtype),
        w=rng.standard_normal((F, C, HH, WW)).astype(dtype),
        b=rng.standard_normal(F).astype(dtype),
        conv_param=dict(stride=stride, pad=pad, dilation=dilation),
        dtype=dtype,
        rng=rng,
    )


@st.composite
def pool_problems(draw, max_batch=3, max_channels=3, max_pool=4, max_out=4, dtypes=DTYPES):
    """Draw a valid pooling problem: dict with x, pool_param, dtype (overlapping windows too).

    Values are a shuffled grid with spacing 1/8, so no window holds two equal values and a
    finite-difference step of 1e-6 never changes a window's argmax.
    """
    N = draw(st.integers(1, max_batch))
    C = draw(st.integers(1, max_channels))
    ph = draw(st.integers(1, max_pool))
    pw = draw(st.integers(1, max_pool))
    stride = draw(st.integers(1, 4))
    Hout = draw(st.integers(1, max_out))
    Wout = draw(st.integers(1, max_out))
    H, W = (Hout - 1) * stride + ph, (Wout - 1) * stride + pw
    dtype = draw(st.sampled_from(dtypes))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    values = (rng.permutation(N * C * H * W) - N * C * H * W / 2) / 8.0
    return dict(
        x=values.reshape(N, C, H, W).astype(dtype),
        pool_param=dict(pool_height=ph, pool_width=pw, stride=stride),
        dtype=dtype,
        rng=rng,
    )


def tolerance(dtype):
    return FLOAT64_TOL if np.dtype(dtype) == np.float64 else FLOAT32_TOL


@pytest.fixture(scope="session")
def torch():
    """PyTorch as an oracle; the test is skipped when it is not installed."""
    return pytest.importorskip("torch")


sys.modules.setdefault("cs231n_lib_testkit", sys.modules[__name__])
