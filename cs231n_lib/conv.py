"""Convolutional layer (NCHW) as im2col + matrix product.

The idea in three lines. Unroll every receptive field of the (padded) input into a column:
``cols = im2col(x)`` has shape (C*HH*WW, N*Hout*Wout). Then one matrix product with the filters
laid out as rows, ``w.reshape(F, -1) @ cols``, computes every output at once. The backward pass
is two more products, ``dw = dout_cols @ cols.T`` and ``dcols = w_rows.T @ dout_cols``, and
``col2im`` folds ``dcols`` back onto the input, summing where receptive fields overlap.

For speed the layer functions below do not build the whole column matrix (231 MB in float64
for a 16x64x56x56 input and 3x3 filters): they walk over it a slice of columns at a time,
reusing one buffer per thread, and the products write straight into the NCHW output. Each
core takes its own slices (``_threads``: kernel and product on one thread, BLAS single-
threaded meanwhile), so the cores never wait for one another between a kernel and a product.
The bias rides along in the product: the column slice gets an extra row of ones and the filter
matrix an extra column holding b, so ``[w_rows | b] @ [cols; 1] = w_rows @ cols + b`` (and in
the backward pass the same extra column of ``dout @ [cols; 1].T`` is db). The loops that move
memory are Numba kernels in ``kernels.py``; the matrix products are NumPy's (BLAS).
"""

import threading

import numpy as np

from . import _threads, kernels
from ._validate import float_array, nonnegative_int, positive_int, require_shape, same_dtype
from .sizing import conv_output_size

# Entries of a column slice in the forward pass (4 MB in float64, 2 MB in float32); the
# backward pass, with two products per slice, uses slices twice as large. Large enough for
# efficient GEMMs, small enough to stay in the caches instead of paging fresh memory on every
# call (measured on the project's 2-core machine: benchmarks/).
CHUNK_ELEMENTS = 1 << 19
# Column matrices up to this many entries are one slice on the calling thread (gradient checks
# call the layers thousands of times on tiny inputs; threads would only add overhead there).
SMALL_LAYER_ELEMENTS = 1 << 16


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
    K, P = C * HH * WW, Hout * Wout

    w_and_b = np.concatenate([w.reshape(F, K), b[:, None]], axis=1)  # (F, K + 1)
    out = np.empty((N, F, P), dtype=x.dtype)
    geometry = (HH, WW, stride, pad, dilation, Hout, Wout)

    def forward(task, pooled):
        for n0, n1, p0, p1 in task:
            cols = _columns_buffer(x.dtype, K + 1, (n1 - n0) * (p1 - p0))
            _im2col(x, geometry, n0 * P + p0, cols[:K], pooled)
            cols[K] = 1
            np.matmul(w_and_b, _per_sample(cols, n1 - n0), out=_outputs(out, n0, n1, p0, p1))

    _threads.run(forward, _slice_tasks(N, P, K, CHUNK_ELEMENTS, whole_samples=False))
    return out.reshape(N, F, Hout, Wout), (x, w, b, dict(conv_param))


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
    K, P = C * HH * WW, Hout * Wout
    dout = float_array("dout", dout, ndim=4)
    require_shape("dout", dout, (N, F, Hout, Wout))
    dout = np.ascontiguousarray(dout, dtype=x.dtype).reshape(N, F, P)

    w_rows_T = w.reshape(F, K).T
    dx = np.zeros_like(x)
    geometry = (HH, WW, stride, pad, dilation, Hout, Wout)

    def backward(task, pooled):
        """Adds the task's samples into dx; returns their share of [dw | db]."""
        dw_and_db = np.zeros((F, K + 1), dtype=x.dtype)
        for n0, n1, p0, p1 in task:
            cols = _columns_buffer(x.dtype, K + 1, (n1 - n0) * (p1 - p0))
            _im2col(x, geometry, n0 * P + p0, cols[:K], pooled)
            cols[K] = 1
            dout_slice = _outputs(dout, n0, n1, p0, p1)
            products = np.matmul(dout_slice, _per_sample(cols, n1 - n0).swapaxes(-1, -2))
            dw_and_db += products if products.ndim == 2 else products.sum(axis=0)
            np.matmul(w_rows_T, dout_slice, out=_per_sample(cols[:K], n1 - n0))  # d(cols) of the slice
            _col2im_add(cols[:K], geometry, n0 * P + p0, (n1 - n0) * C, dx, pooled)
        return dw_and_db

    # whole samples per task: two tasks never add into the same part of dx
    shares = _threads.run(backward, _slice_tasks(N, P, K, 2 * CHUNK_ELEMENTS, whole_samples=True))
    dw_and_db = sum(shares) if shares else np.zeros((F, K + 1), dtype=x.dtype)
    return dx, dw_and_db[:, :K].reshape(w.shape), dw_and_db[:, K].copy()


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
    # the same names as the sizing rule's messages (S, P, dilation)
    return (positive_int("S (stride)", conv_param["stride"]),
            nonnegative_int("P (padding)", conv_param["pad"]),
            positive_int("dilation", conv_param.get("dilation", 1)))


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


def _slice_tasks(N, P, K, elements, whole_samples):
    """Split the column matrix into slices of about ``elements`` entries (the row of ones
    included), grouped into tasks for ``_threads.run``.

    A slice (n0, n1, p0, p1) covers samples n0:n1 and, within each, output positions p0:p1:
    either several whole samples, or a part of one sample. Returns a list of tasks, each a list
    of slices; with ``whole_samples`` every task holds all the slices of its samples.
    """
    if N == 0:
        return []
    if N * P * (K + 1) <= SMALL_LAYER_ELEMENTS:  # one slice: splitting costs more than it saves
        return [[(0, N, 0, P)]]
    columns = max(1, elements // (K + 1))
    if columns >= P:
        # whole samples per slice, and enough slices to keep every thread busy to the end
        per_slice = max(1, min(columns // P, -(-N // (4 * _threads.workers()))))
        return [[(n0, min(N, n0 + per_slice), 0, P)] for n0 in range(0, N, per_slice)]
    pieces = -(-P // columns)
    length = -(-P // pieces)  # balanced pieces: no tiny last slice
    samples = [[(n, n + 1, p0, min(P, p0 + length)) for p0 in range(0, P, length)] for n in range(N)]
    return samples if whole_samples else [[piece] for sample in samples for piece in sample]


def _im2col(x, geometry, col_start, cols, pooled):
    """Fill ``cols`` with columns [col_start, ...) of im2col(x): on this thread when pooled
    (the other cores have slices of their own), else with every Numba thread."""
    if pooled:
        kernels.im2col_rows(x, *geometry, col_start, cols, 0, cols.shape[0])
    else:
        kernels.launch(kernels.im2col_columns, x, *geometry, col_start, cols)


def _col2im_add(cols, geometry, col_start, planes, dx, pooled):
    """Add the columns [col_start, ...) in ``cols`` into dx (``planes`` = samples * C touched)."""
    if pooled:
        kernels.col2im_planes_add(cols, *geometry, col_start, dx, 0, planes)
    else:
        kernels.launch(kernels.col2im_columns_add, cols, *geometry, col_start, dx)


def _per_sample(cols, samples):
    """View a (rows, samples*P) slice as (rows, P) or as a stack (samples, rows, P) for matmul."""
    if samples == 1:
        return cols
    return cols.reshape(cols.shape[0], samples, -1).swapaxes(0, 1)


def _outputs(a, n0, n1, p0, p1):
    """The (F, p1 - p0) block of sample n0, or the (n1 - n0, F, P) stack of whole samples."""
    return a[n0, :, p0:p1] if n1 - n0 == 1 else a[n0:n1]


_WORKSPACES = threading.local()


def _columns_buffer(dtype, rows, columns):
    """A C-contiguous (rows, columns) view of a flat buffer kept between calls (one per thread
    and dtype), grown when needed.

    Fresh multi-megabyte arrays are new memory mappings whose pages fault in on every call,
    which costs more than the im2col itself; reusing one buffer avoids that.
    """
    key = np.dtype(dtype).str
    buffers = getattr(_WORKSPACES, "buffers", None)
    if buffers is None:
        buffers = _WORKSPACES.buffers = {}
    buffer = buffers.get(key)
    if buffer is None or buffer.size < rows * columns:
        buffer = buffers[key] = np.empty(rows * columns, dtype=dtype)
    return buffer[: rows * columns].reshape(rows, columns)
