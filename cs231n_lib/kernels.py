"""Numba kernels behind the readable layers of ``cs231n_lib``: the speed tricks live here.

Nothing in this module is meant to be read first. Students should open ``conv.py`` and
``pooling.py``; those call the kernels below for the memory-bound loops (im2col, col2im,
pooling, re-layouts) and leave every matrix product to NumPy.

Design choices, each measured on the project's 2-core machine (research/perf-baseline.md):

* **No BLAS inside ``@njit``.** ``np.dot`` in nopython mode goes through SciPy's BLAS, a second
  OpenBLAS with its own thread pool. The GEMMs are done by NumPy in the layer functions.
* **Threading layer: ``workqueue``** (unless the user chose one with ``NUMBA_THREADING_LAYER``
  or ``numba.config.THREADING_LAYER``).
  Numba's default here is ``omp`` (GNU OpenMP), whose idle workers keep spinning after a
  parallel loop and fight OpenBLAS's threads for the two cores: a conv layer ran about 10x
  slower. ``workqueue`` workers sleep, so it alternates cleanly with BLAS. It does not allow
  two Python threads to launch parallel kernels at the same time, so every launch from this
  library goes through ``_LAUNCH_LOCK`` (see ``launch``). If Numba's ``omp`` layer was
  already running when this module was imported, the layer cannot be changed any more; the
  kernels then run single-threaded (``SERIAL_KERNELS``) rather than spin against BLAS.
* **Two forms of each column kernel.** ``im2col_rows`` / ``col2im_planes_add`` run on the calling
  thread over a range of rows / planes and release the GIL: the conv layer gives each core whole
  slices through ``_threads`` (kernel and product on one thread, BLAS single-threaded), which
  beat alternating between Numba's threads and BLAS's. ``im2col_columns`` /
  ``col2im_columns_add`` share the range among Numba's threads, for a layer with one slice.
* **On-disk cache** (``cache=True``) so that a second process loads the machine code instead of
  compiling again (about 1 s per kernel and dtype). When no cache folder is writable (read-only
  install, unwritable ``NUMBA_CACHE_DIR`` and home), Numba refuses ``cache=True`` at decoration
  time; ``_jit`` then points Numba at a private temporary folder, and if even that fails it
  compiles without a cache. ``CACHE_MODE`` records which of the three happened.
* **Padding is never materialised**: the kernels compute, for each filter tap, the range of
  output columns that read inside the image and write zeros elsewhere.

Column layout shared by every im2col-style kernel (the one documented in ``conv.im2col``): a
column matrix has one row per filter tap ``k = (c * HH + i) * WW + j`` and one column per output
position ``g = (n * Hout + oy) * Wout + ox``. A kernel works on a contiguous range of columns
``[col_start, col_start + L)``; the whole matrix is the range ``[0, N * Hout * Wout)``.
"""

import os
import tempfile
import threading

import numba
from numba import njit, prange

# --------------------------------------------------------------------------------------------
# Threading layer and launch lock
# --------------------------------------------------------------------------------------------

def _threading_layer_in_use():
    """The layer Numba has already started in this process, or None if none yet."""
    try:
        return numba.threading_layer()
    except ValueError:  # "Threading layer is not initialized."
        return None


_USER_CHOSE_LAYER = bool(os.environ.get("NUMBA_THREADING_LAYER")) or numba.config.THREADING_LAYER != "default"
_STARTED_LAYER = _threading_layer_in_use()
if not _USER_CHOSE_LAYER and _STARTED_LAYER is None:
    # Only effective before the first parallel launch in the process.
    numba.config.THREADING_LAYER = "workqueue"

# Something started Numba's default ``omp`` layer before this module was imported (e.g. a call
# to numba.set_num_threads): its spinning workers would fight BLAS (measured 10-100x slower
# conv layers), so our kernels then run on one thread and leave both cores to BLAS.
SERIAL_KERNELS = not _USER_CHOSE_LAYER and _STARTED_LAYER == "omp"

_LAUNCH_LOCK = threading.RLock()


def launch(kernel, *args):
    """Run a (parallel) kernel; serialised because ``workqueue`` is not re-entrant."""
    with _LAUNCH_LOCK:
        if not SERIAL_KERNELS:
            return kernel(*args)
        threads = numba.get_num_threads()
        numba.set_num_threads(1)
        try:
            return kernel(*args)
        finally:
            numba.set_num_threads(threads)


# --------------------------------------------------------------------------------------------
# Compilation with an on-disk cache that degrades gracefully
# --------------------------------------------------------------------------------------------

CACHE_MODE = "default"  # "default" | "private-tempdir" | "off"; see _jit


def _private_cache_dir():
    path = os.path.join(tempfile.gettempdir(), f"cs231n_lib-numba-cache-{os.getuid()}")
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path


def _jit(parallel=False):
    """``njit(cache=True)`` that still works when no cache folder is writable."""

    def decorate(func):
        global CACHE_MODE
        options = dict(nogil=True, parallel=parallel, error_model="numpy", boundscheck=False)
        if CACHE_MODE != "off":
            try:
                return njit(cache=True, **options)(func)
            except RuntimeError:  # "cannot cache function ...: no locator available"
                pass
            if CACHE_MODE == "default":
                try:
                    numba.config.CACHE_DIR = _private_cache_dir()
                    CACHE_MODE = "private-tempdir"
                    return njit(cache=True, **options)(func)
                except (OSError, RuntimeError):
                    pass
            CACHE_MODE = "off"
        return njit(cache=False, **options)(func)

    return decorate


# --------------------------------------------------------------------------------------------
# Convolution: im2col / col2im over a range of columns
# --------------------------------------------------------------------------------------------


# Index arithmetic below is done on flat views with unsigned (uint64) indices: Numba then
# drops the negative-index wrap-around test from every access, which lets LLVM vectorise the
# copies (measured 2-4x faster than 4-D signed indexing for im2col). Unsigned and signed
# integers are never mixed in one expression (Numba would promote the mix to float64).
_u = numba.uint64


@_jit()
def im2col_rows(x, HH, WW, stride, pad, dilation, Hout, Wout, col_start, cols, k_first, k_end):
    """Fill rows ``[k_first, k_end)`` of ``cols`` (K, L) with columns ``[col_start, col_start + L)``
    of im2col(x), on the calling thread (it releases the GIL).

    Row k = (c*HH + i)*WW + j holds x_padded[n, c, oy*stride + i*dilation, ox*stride + j*dilation]
    for column g = (n*Hout + oy)*Wout + ox; positions in the zero padding are written as 0.
    """
    N, C, H, W = x.shape
    K, L = cols.shape
    P = Hout * Wout
    x_flat = x.reshape(-1)
    cols_flat = cols.reshape(-1)
    zero = cols.dtype.type(0)
    step = _u(stride)
    # output position of the slice's first column; the walk below advances it row by row
    n_start = col_start // P
    oy_start = (col_start - n_start * P) // Wout
    ox_start = col_start - n_start * P - oy_start * Wout
    for k in range(k_first, k_end):
        c = k // (HH * WW)
        i = (k // WW) % HH
        j = k % WW
        dy = i * dilation - pad
        dxo = j * dilation - pad
        # output columns whose input column ox*stride + dxo is inside [0, W)
        ox_lo = 0 if dxo >= 0 else (-dxo + stride - 1) // stride
        ox_hi = (W - 1 - dxo) // stride + 1 if W - 1 - dxo >= 0 else 0
        n, oy, ox0 = n_start, oy_start, ox_start
        col = 0
        while col < L:  # one output row (n, oy), or the part of it inside the slice, per turn
            end = min(Wout, ox0 + L - col)
            dst = k * L + col - ox0  # cols_flat[dst + ox] is output column ox of this row
            y = oy * stride + dy
            if y < 0 or y >= H:
                lo = end
                hi = end
            else:
                lo = min(max(ox_lo, ox0), end)
                hi = max(min(ox_hi, end), lo)
            for t in range(_u(dst + ox0), _u(dst + lo)):
                cols_flat[t] = zero
            if hi > lo:
                src = _u(((n * C + c) * H + y) * W + lo * stride + dxo)
                first = _u(dst + lo)
                # counted loops over t (not running pointers): LLVM vectorises these copies
                if stride == 1:
                    for t in range(_u(hi - lo)):
                        cols_flat[first + t] = x_flat[src + t]
                else:
                    for t in range(_u(hi - lo)):
                        cols_flat[first + t] = x_flat[src + t * step]
            for t in range(_u(dst + hi), _u(dst + end)):
                cols_flat[t] = zero
            col += end - ox0
            ox0 = 0
            oy += 1
            if oy == Hout:
                oy = 0
                n += 1


@_jit(parallel=True)
def im2col_columns(x, HH, WW, stride, pad, dilation, Hout, Wout, col_start, cols):
    """``im2col_rows`` for every row of ``cols``, the rows shared among Numba's threads."""
    for k in prange(cols.shape[0]):
        im2col_rows(x, HH, WW, stride, pad, dilation, Hout, Wout, col_start, cols, k, k + 1)


@_jit()
def col2im_planes_add(cols, HH, WW, stride, pad, dilation, Hout, Wout, col_start, dx, q_first, q_end):
    """Adjoint of ``im2col_rows``: add columns ``[col_start, col_start + L)`` of ``cols`` into dx,
    for the (sample, channel) planes ``q`` in ``[q_first, q_end)`` of the samples these columns
    touch (q = (n - first sample) * C + c), on the calling thread (it releases the GIL).

    Entries that fall in the padding are dropped; overlapping windows are summed. Different
    planes never share an element, so disjoint plane ranges may run at the same time.
    """
    N, C, H, W = dx.shape
    K, L = cols.shape
    P = Hout * Wout
    cols_flat = cols.reshape(-1)
    dx_flat = dx.reshape(-1)
    step = _u(stride)
    n_first = col_start // P
    for q in range(q_first, q_end):
        n = n_first + q // C
        c = q % C
        g_begin = max(col_start, n * P)
        g_end = min(col_start + L, (n + 1) * P)
        oy_begin = (g_begin - n * P) // Wout
        ox_begin = g_begin - n * P - oy_begin * Wout
        for i in range(HH):
            dy = i * dilation - pad
            for j in range(WW):
                k = (c * HH + i) * WW + j
                dxo = j * dilation - pad
                ox_lo = 0 if dxo >= 0 else (-dxo + stride - 1) // stride
                ox_hi = (W - 1 - dxo) // stride + 1 if W - 1 - dxo >= 0 else 0
                oy, ox0 = oy_begin, ox_begin
                g = g_begin
                while g < g_end:  # one output row of sample n (or the part in the slice)
                    end = min(Wout, ox0 + g_end - g)
                    y = oy * stride + dy
                    if y >= 0 and y < H:
                        lo = min(max(ox_lo, ox0), end)
                        hi = max(min(ox_hi, end), lo)
                        if hi > lo:
                            src = _u(k * L + g - col_start - ox0 + lo)
                            dst = _u(((n * C + c) * H + y) * W + lo * stride + dxo)
                            if stride == 1:
                                for t in range(_u(hi - lo)):
                                    dx_flat[dst + t] += cols_flat[src + t]
                            else:
                                for t in range(_u(hi - lo)):
                                    dx_flat[dst + t * step] += cols_flat[src + t]
                    g += end - ox0
                    ox0 = 0
                    oy += 1


@_jit(parallel=True)
def col2im_columns_add(cols, HH, WW, stride, pad, dilation, Hout, Wout, col_start, dx):
    """``col2im_planes_add`` for every plane the columns touch, the planes shared among threads."""
    P = Hout * Wout
    planes = ((col_start + cols.shape[1] - 1) // P - col_start // P + 1) * dx.shape[1]
    for q in prange(planes):
        col2im_planes_add(cols, HH, WW, stride, pad, dilation, Hout, Wout, col_start, dx, q, q + 1)


# --------------------------------------------------------------------------------------------
# Pooling (windows of PH x PW moved by `stride`; no padding)
# --------------------------------------------------------------------------------------------


@_jit(parallel=True)
def max_pool_forward_planes(x, PH, PW, stride, out, argmax):
    """out[n, c, oy, ox] = max of the window; argmax = where it is, as y*W + x in its plane.

    Ties go to the FIRST maximum in row-major order within the window: the taps are visited
    in that order and only a strictly larger value replaces the current best. NaN propagates:
    the first NaN in a window becomes that window's maximum.
    The comparison result feeds selects, not branches: on real data "is this tap larger?" is
    a coin flip, and mispredicted branches made this loop 2-4x slower.
    """
    N, C, H, W = x.shape
    Hout, Wout = out.shape[2], out.shape[3]
    x_flat = x.reshape(-1)
    out_flat = out.reshape(-1)
    arg_flat = argmax.reshape(-1)
    for q in prange(N * C):
        plane = q * H * W
        for oy in range(Hout):
            for ox in range(Wout):
                corner = oy * stride * W + ox * stride
                best = x_flat[_u(plane + corner)]
                at = corner
                for i in range(PH):
                    for j in range(PW):
                        offset = corner + i * W + j
                        v = x_flat[_u(plane + offset)]
                        take = (v > best) | ((v != v) & (best == best))
                        best = v if take else best
                        at = offset if take else at
                o = _u((q * Hout + oy) * Wout + ox)
                out_flat[o] = best
                arg_flat[o] = at


@_jit(parallel=True)
def max_pool_backward_planes(dout, argmax, dx):
    """dx = 0, then each dout[n, c, oy, ox] is added at its window's argmax (overlaps add up)."""
    N, C, H, W = dx.shape
    Hout, Wout = dout.shape[2], dout.shape[3]
    dout_flat = dout.reshape(-1)
    arg_flat = argmax.reshape(-1)
    dx_flat = dx.reshape(-1)
    zero = dx.dtype.type(0)
    for q in prange(N * C):
        plane = _u(q * H * W)
        for t in range(plane, plane + _u(H * W)):
            dx_flat[t] = zero
        for o in range(_u(q * Hout * Wout), _u((q + 1) * Hout * Wout)):
            dx_flat[plane + _u(arg_flat[o])] += dout_flat[o]


@_jit(parallel=True)
def avg_pool_forward_planes(x, PH, PW, stride, out):
    """out[n, c, oy, ox] = mean of the PH x PW window (summed in the input's dtype)."""
    N, C, H, W = x.shape
    Hout, Wout = out.shape[2], out.shape[3]
    x_flat = x.reshape(-1)
    out_flat = out.reshape(-1)
    scale = out.dtype.type(1.0 / (PH * PW))
    zero = out.dtype.type(0)
    step = _u(stride)
    for q in prange(N * C):
        plane = q * H * W
        for oy in range(Hout):
            row = _u((q * Hout + oy) * Wout)
            for t in range(row, row + _u(Wout)):
                out_flat[t] = zero
            for i in range(PH):
                for j in range(PW):
                    src = _u(plane + (oy * stride + i) * W + j)
                    for t in range(row, row + _u(Wout)):
                        out_flat[t] += x_flat[src]
                        src += step
            for t in range(row, row + _u(Wout)):
                out_flat[t] *= scale


@_jit(parallel=True)
def avg_pool_backward_planes(dout, PH, PW, stride, dx):
    """dx = 0, then each dout / (PH*PW) is added to every position of its window."""
    N, C, H, W = dx.shape
    Hout, Wout = dout.shape[2], dout.shape[3]
    dout_flat = dout.reshape(-1)
    dx_flat = dx.reshape(-1)
    zero = dx.dtype.type(0)
    scale = dx.dtype.type(1.0 / (PH * PW))
    step = _u(stride)
    for q in prange(N * C):
        plane = q * H * W
        for t in range(_u(plane), _u(plane + H * W)):
            dx_flat[t] = zero
        for oy in range(Hout):
            row = _u((q * Hout + oy) * Wout)
            for i in range(PH):
                for j in range(PW):
                    dst = _u(plane + (oy * stride + i) * W + j)
                    for t in range(row, row + _u(Wout)):
                        dx_flat[dst] += dout_flat[t] * scale
                        dst += step


# --------------------------------------------------------------------------------------------
# ReLU backward
# --------------------------------------------------------------------------------------------


@_jit(parallel=True)
def relu_backward_flat(x, dout, dx):
    """dx[i] = dout[i] where x[i] > 0, else 0, for flat arrays of one dtype.

    A select, not a branch: on real data the sign of x is a coin flip, and NumPy's ``where``,
    which branches per element, ran 3-4x slower than this loop (measured, 1.6M entries).
    Non-finite dout where x <= 0 still gives 0 (multiplying by the mask would give NaN).
    """
    zero = dx.dtype.type(0)
    for i in prange(x.size):
        dx[i] = dout[i] if x[i] > 0 else zero


# Every kernel, for warm-up and for the tests that compare with the pure-Python versions.
ALL_KERNELS = (
    im2col_rows, im2col_columns, col2im_planes_add, col2im_columns_add,
    max_pool_forward_planes, max_pool_backward_planes,
    avg_pool_forward_planes, avg_pool_backward_planes,
    relu_backward_flat,
)
