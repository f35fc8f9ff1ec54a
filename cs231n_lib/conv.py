"""Convolutional layer (NCHW) as im2col + matrix product.

The idea in three lines. Unroll every receptive field of the (padded) input into a column:
``cols = im2col(x)`` has shape (C*HH*WW, N*Hout*Wout). Then one matrix product with the filters
laid out as rows, ``w.reshape(F, -1) @ cols``, computes every output at once. The backward pass
is two more products, ``dw = dout_cols @ cols.T`` and ``dcols = w_rows.T @ dout_cols``, and
``col2im`` folds ``dcols`` back onto the input, summing where receptive fields overlap.

For speed the layer functions below do not build the whole column matrix (231 MB in float64
for a 16x64x56x56 input and 3x3 filters): they walk over it a slice of columns at a time,
reusing one buffer. The loops that move memory are Numba kernels in ``kernels.py``; the matrix
products are NumPy's (BLAS).
"""

import threading

import numpy as np

from . import kernels
from ._validate import float_array, require_shape, same_dtype
from .sizing import conv_output_size

# Size of the reused column buffer. Large enough for efficient GEMMs, small enough to stay in
# the cache hierarchy instead of paging fresh memory on every call (measured: benchmarks/).
CHUNK_BYTES = 4 << 20


def im2col(x, HH, WW, stride, pad, dilation=1):
    """Unroll the receptive fields of ``x`` into the columns of a matrix.

    Inputs:
    - x: input of shape (N, C, H, W)
    - HH, WW: filter height and width
    - stride, pad: stride and zero padding (on every side)
    - dilation: spacing between filter taps (1 = ordinary convolution)

    Returns ``cols`` of shape (C*HH*WW, N*Hout*Wout), with Hout, Wout from
    ``sizing.conv_output_size``. The layout, exactly:

    - row ``k = (c*HH + i)*WW + j`` is filter tap (channel c, row i, column j), i.e. the rows
      follow the order of ``w.reshape(F, -1)``'s columns;
    - column ``g = (n*Hout + oy)*Wout + ox`` is output position (sample n, row oy, column ox);
    - ``cols[k, g] = x_pad[n, c, oy*stride + i*dilation, ox*stride + j*dilation]`` where
      ``x_pad`` is ``x`` zero-padded by ``pad`` on each side of H and W.

    So ``(w.reshape(F, -1) @ cols).reshape(F, N, Hout, Wout).transpose(1, 0, 2, 3)`` is the
    convolution (without bias).
    """
    x = np.ascontiguousarray(float_array("x", x, ndim=4))
    N, C, H, W = x.shape
    Hout, Wout = _output_hw(H, W, HH, WW, stride, pad, dilation)
    cols = np.empty((C * HH * WW, N * Hout * Wout), dtype=x.dtype)
    kernels.launch(kernels.im2col_columns, x, int(HH), int(WW), int(stride), int(pad),
                   int(dilation), Hout, Wout, 0, cols)
    return cols


def col2im(cols, x_shape, HH, WW, stride, pad, dilation=1):
    """Fold a column matrix back onto an input-shaped array: the adjoint of ``im2col``.

    Inputs:
    - cols: array of shape (C*HH*WW, N*Hout*Wout), laid out as documented in ``im2col``
    - x_shape: (N, C, H, W) of the input that ``im2col`` unrolled
    - HH, WW, stride, pad, dilation: as for ``im2col``

    Returns ``dx`` of shape ``x_shape`` and the dtype of ``cols``: every entry of ``cols`` is
    added to the input position it was copied from; positions inside the padding are dropped,
    and where receptive fields overlap the contributions are summed. Hence, for any ``x`` and
    ``y``, ``sum(im2col(x) * y) == sum(x * col2im(y))``.
    """
    cols = float_array("cols", cols, ndim=2)
    if len(x_shape) != 4:
        raise ValueError(f"x_shape must be (N, C, H, W); found {tuple(x_shape)}")
    N, C, H, W = (int(s) for s in x_shape)
    Hout, Wout = _output_hw(H, W, HH, WW, stride, pad, dilation)
    require_shape("cols", cols, (C * HH * WW, N * Hout * Wout))
    dx = np.zeros((N, C, H, W), dtype=cols.dtype)
    kernels.launch(kernels.col2im_columns_add, np.ascontiguousarray(cols), int(HH), int(WW),
                   int(stride), int(pad), int(dilation), Hout, Wout, 0, dx)
    return dx


def conv_forward(x, w, b, conv_param):
    """Forward pass of a convolutional layer.

    Inputs:
    - x: input of shape (N, C, H, W)
    - w: filters of shape (F, C, HH, WW)
    - b: biases of shape (F,)
    - conv_param: dict with 'stride' and 'pad' (zero padding on every side), and optionally
      'dilation' (default 1)

    Returns a tuple of:
    - out: output of shape (N, F, Hout, Wout) with
      Hout = (H - HH_eff + 2*pad)/stride + 1, HH_eff = dilation*(HH - 1) + 1 (same for W);
      out has the dtype of x (float32 or float64)
    - cache: (x, w, b, conv_param) for ``conv_backward``
    """
    x, w, b = _check_inputs(x, w, b)
    stride, pad, dilation = _conv_hyperparameters(conv_param)
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    Hout, Wout = _output_hw(H, W, HH, WW, stride, pad, dilation)

    w_rows = w.reshape(F, C * HH * WW)
    out = np.empty((N, F, Hout * Wout), dtype=x.dtype)
    geometry = (HH, WW, stride, pad, dilation, Hout, Wout)
    for start, cols, prod in _column_chunks(N * Hout * Wout, C * HH * WW, F, x.dtype):
        kernels.launch(kernels.im2col_columns, x, *geometry, start, cols)
        np.matmul(w_rows, cols, out=prod)
        kernels.launch(kernels.columns_to_nchw, prod, b, start, out)  # + bias, to NCHW
    out = out.reshape(N, F, Hout, Wout)
    return out, (x, w, b, dict(conv_param))


def conv_backward(dout, cache):
    """Backward pass of a convolutional layer.

    Inputs:
    - dout: upstream derivatives of shape (N, F, Hout, Wout)
    - cache: the tuple returned by ``conv_forward``

    Returns a tuple of:
    - dx: gradient with respect to x, shape (N, C, H, W)
    - dw: gradient with respect to w, shape (F, C, HH, WW)
    - db: gradient with respect to b, shape (F,)
    All three have the dtype of the forward input x.
    """
    x, w, b, conv_param = cache
    stride, pad, dilation = _conv_hyperparameters(conv_param)
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    Hout, Wout = _output_hw(H, W, HH, WW, stride, pad, dilation)
    dout = float_array("dout", dout, ndim=4)
    require_shape("dout", dout, (N, F, Hout, Wout))
    dout = np.ascontiguousarray(dout, dtype=x.dtype).reshape(N, F, Hout * Wout)

    w_rows = w.reshape(F, C * HH * WW)
    dx = np.zeros_like(x)
    dw_rows = np.zeros_like(w_rows)
    geometry = (HH, WW, stride, pad, dilation, Hout, Wout)
    for start, cols, dout_cols in _column_chunks(N * Hout * Wout, C * HH * WW, F, x.dtype):
        kernels.launch(kernels.im2col_columns, x, *geometry, start, cols)
        kernels.launch(kernels.nchw_to_columns, dout, start, dout_cols)
        dw_rows += dout_cols @ cols.T
        np.matmul(w_rows.T, dout_cols, out=cols)  # cols now holds d(cols) for this slice
        kernels.launch(kernels.col2im_columns_add, cols, *geometry, start, dx)
    db = dout.sum(axis=(0, 2))
    return dx, dw_rows.reshape(w.shape), db


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _check_inputs(x, w, b):
    """Validate shapes, cast w and b to x's dtype, return C-contiguous arrays."""
    x = float_array("x", x, ndim=4)
    w = float_array("w", w, ndim=4)
    b = float_array("b", b)
    if w.shape[1] != x.shape[1]:
        raise ValueError(
            f"channel mismatch: x has C = {x.shape[1]} channels (x.shape = {x.shape}) but the "
            f"filters expect C = {w.shape[1]} (w.shape = {w.shape})"
        )
    if b.shape != (w.shape[0],):
        raise ValueError(f"b must have shape (F,) = ({w.shape[0]},) for w.shape = {w.shape}; found {b.shape}")
    cast = same_dtype(x.dtype, w=w, b=b)
    return (np.ascontiguousarray(x), np.ascontiguousarray(cast["w"]), np.ascontiguousarray(cast["b"]))


def _conv_hyperparameters(conv_param):
    if not isinstance(conv_param, dict) or "stride" not in conv_param or "pad" not in conv_param:
        raise ValueError(f"conv_param must be a dict with 'stride' and 'pad' (optional 'dilation'); found {conv_param!r}")
    return conv_param["stride"], conv_param["pad"], conv_param.get("dilation", 1)


def _output_hw(H, W, HH, WW, stride, pad, dilation):
    """(Hout, Wout) via the one sizing rule; errors say which axis failed."""
    try:
        Hout = conv_output_size(H, HH, stride, pad, dilation)
    except ValueError as err:
        raise ValueError(f"along the height (H = {H}, HH = {HH}): {err}") from None
    try:
        Wout = conv_output_size(W, WW, stride, pad, dilation)
    except ValueError as err:
        raise ValueError(f"along the width (W = {W}, WW = {WW}): {err}") from None
    return Hout, Wout


def _column_chunks(total_columns, K, F, dtype):
    """Yield (start, cols, prod): views of two reused buffers for consecutive column slices.

    ``cols`` is (K, L) and ``prod`` is (F, L), both C-contiguous, L <= chunk length; the last
    slice may be shorter.
    """
    itemsize = np.dtype(dtype).itemsize
    chunk = max(1, min(total_columns, CHUNK_BYTES // (K * itemsize)))
    cols_buffer, prod_buffer = _workspace(dtype, K * chunk, F * chunk)
    for start in range(0, total_columns, chunk):
        L = min(chunk, total_columns - start)
        yield start, cols_buffer[: K * L].reshape(K, L), prod_buffer[: F * L].reshape(F, L)


_WORKSPACES = threading.local()


def _workspace(dtype, cols_size, prod_size):
    """Two flat buffers kept between calls (per thread and dtype).

    Fresh multi-megabyte arrays are new memory mappings whose pages fault in on every call,
    which costs more than the im2col itself; reusing the same buffers avoids that.
    """
    key = np.dtype(dtype).str
    spaces = getattr(_WORKSPACES, "buffers", None)
    if spaces is None:
        spaces = _WORKSPACES.buffers = {}
    cols, prod = spaces.get(key, (None, None))
    if cols is None or cols.size < cols_size:
        cols = np.empty(cols_size, dtype=dtype)
    if prod is None or prod.size < prod_size:
        prod = np.empty(prod_size, dtype=dtype)
    spaces[key] = (cols, prod)
    return cols, prod
