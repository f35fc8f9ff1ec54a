"""Batch parallelism for the layers: a few Python threads, each with a single-threaded BLAS.

A layer such as ``conv_forward`` walks over its column matrix a slice at a time: a Numba kernel
fills the slice (im2col), then a matrix product consumes it. Run one slice after the other and
the two cores are handed back and forth between Numba's threads and OpenBLAS's; OpenBLAS's
threads keep spinning for a while after every product, so the next kernel ran about twice as
slowly as it does alone (measured on the project's 2-core machine, benchmarks/). Here every
core instead takes whole slices, kernel and product, with BLAS limited to one thread for the
duration: no hand-over, no spinning, each core's slice stays in its own cache.

``run(work, tasks)`` calls ``work(task, True)`` for every task on the pool (the flag says
"you are one of several threads: use the single-threaded kernels"), or ``work(task, False)``
one task after the other on the calling thread when the pool cannot help: fewer tasks or
threads than two, or a BLAS whose thread count cannot be controlled (two multi-threaded
BLAS calls at once would oversubscribe the cores). ``matmul(a, b)`` shares a product's rows
among the same threads; the affine layers use it so that OpenBLAS's own workers, which would
spin after each product, are never woken inside a network.
"""

import os
import threading
from concurrent.futures import ThreadPoolExecutor, wait

import numba
import numpy as np

# One pooled run at a time: the BLAS thread count is process-wide state.
_RUN_LOCK = threading.Lock()
_POOL = None
_POOL_KEY = None  # (process id, size): a forked child must not reuse its parent's pool
_BLAS = None


def workers():
    """Threads a pooled run uses: Numba's thread count (``NUMBA_NUM_THREADS``,
    ``numba.set_num_threads``), which already defaults to the CPUs this process may use."""
    return numba.get_num_threads()


def _blas_libraries():
    """threadpoolctl controllers of the loaded BLAS libraries (empty if none is found)."""
    global _BLAS
    if _BLAS is None:
        try:
            from threadpoolctl import ThreadpoolController

            _BLAS = [lib for lib in ThreadpoolController().lib_controllers if lib.user_api == "blas"]
        except Exception:  # threadpoolctl missing or unable to inspect this process
            _BLAS = []
    return _BLAS


def _pool(size):
    """The pool of ``size`` started threads, or None when the process cannot start them
    (e.g. a sandbox's RLIMIT_NPROC); then the caller runs the tasks itself."""
    global _POOL, _POOL_KEY
    key = (os.getpid(), size)
    if _POOL_KEY != key:
        if _POOL is not None and _POOL_KEY[0] == key[0]:
            _POOL.shutdown(wait=True)
        _POOL, _POOL_KEY = _started_pool(size), key
    return _POOL


def _started_pool(size):
    """Start every thread now: a thread that failed to start in the middle of a run would leave
    a task queued, to run later against arrays the layer has already returned."""
    pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix="cs231n_lib")
    all_started = threading.Barrier(size)  # holds each thread until `size` of them exist
    try:
        arrivals = [pool.submit(all_started.wait, 10) for _ in range(size)]
        for arrival in arrivals:
            arrival.result()
        return pool
    except (RuntimeError, threading.BrokenBarrierError):  # "can't start new thread"
        all_started.abort()
        pool.shutdown(wait=False, cancel_futures=True)
        return None


def _after_fork_in_child():
    global _RUN_LOCK
    _RUN_LOCK = threading.Lock()  # a thread of the parent may have held it at the fork


os.register_at_fork(after_in_child=_after_fork_in_child)


def run(work, tasks):
    """Results of ``work(task, pooled)`` for every task, in the order of ``tasks``."""
    size = workers()
    blas = _blas_libraries()
    if min(size, len(tasks)) < 2 or not blas or threading.current_thread().name.startswith("cs231n_lib"):
        return [work(task, False) for task in tasks]
    with _RUN_LOCK:
        pool = _pool(size)
        if pool is None:
            return [work(task, False) for task in tasks]
        before = [lib.num_threads for lib in blas]
        for lib in blas:
            lib.set_num_threads(1)
        futures = []
        try:
            futures = [pool.submit(work, task, True) for task in tasks]
            return [future.result() for future in futures]
        finally:
            # After an error or a Ctrl-C no task may still run: it would work with the BLAS
            # settings restored below and write into arrays the caller is done with.
            for future in futures:
                future.cancel()
            _wait_for(futures)
            for lib, threads in zip(blas, before):
                lib.set_num_threads(threads)


def _wait_for(futures):
    while True:
        try:
            wait(futures)
            return
        except KeyboardInterrupt:  # pressed again while we wait: the tasks are short, keep waiting
            continue


# Products with fewer multiply-adds than this are one plain np.matmul (OpenBLAS keeps those on
# one thread anyway, and the pool's hand-over would cost more than it saves).
SMALL_PRODUCT = 1 << 20


def matmul(a, b):
    """``a @ b`` for 2-D arrays, the rows of ``a`` shared among the pool's threads.

    Each thread runs its rows with a single-threaded BLAS, so OpenBLAS's own workers are not
    woken; woken, they spin for about 0.1 s afterwards on the cores the next layer needs (a
    ThreeLayerConvNet step was 1.4x slower with a plain ``@`` in its affine layers). Each entry
    of the result is computed by one thread, as one dot product.
    """
    rows, inner, columns = a.shape[0], a.shape[1], b.shape[1]
    out = np.empty((rows, columns), dtype=np.result_type(a, b))
    if rows * inner * columns < SMALL_PRODUCT:
        return np.matmul(a, b, out=out)
    parts = min(workers(), rows)
    bounds = [rows * i // parts for i in range(parts + 1)]
    blocks = [(lo, hi) for lo, hi in zip(bounds, bounds[1:]) if hi > lo]
    run(lambda block, pooled: np.matmul(a[block[0]:block[1]], b, out=out[block[0]:block[1]]), blocks)
    return out
