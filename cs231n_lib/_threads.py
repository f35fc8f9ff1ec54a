"""Batch parallelism for the layers: a few Python threads, each with a single-threaded BLAS.

A layer such as ``conv_forward`` walks over its column matrix a slice at a time: a Numba kernel
fills the slice (im2col), then a matrix product consumes it. Run one slice after the other and
the two cores are handed back and forth between Numba's threads and OpenBLAS's; OpenBLAS's
threads keep spinning for a while after every product, so the next kernel ran about twice as
slowly as it does alone (measured on the project's 2-core machine, benchmarks/). Here every
core instead takes whole slices, kernel and product, with BLAS limited to one thread for the
duration and OpenBLAS's idle workers stopped (see ``STOP_IDLE_BLAS_THREADS``): no hand-over,
no spinning, each core's slice stays in its own cache.

``run(work, tasks)`` calls ``work(task, True)`` for every task on the pool (the flag says
"you are one of several threads: use the single-threaded kernels"), or ``work(task, False)``
one task after the other on the calling thread when the pool cannot help: fewer tasks or
threads than two, or a BLAS whose thread count cannot be controlled (two multi-threaded
BLAS calls at once would oversubscribe the cores).
"""

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numba

# One pooled run at a time: the BLAS thread count is process-wide state.
_RUN_LOCK = threading.Lock()
_POOL = None
_POOL_KEY = None  # (process id, size): a forked child must not reuse its parent's pool
_BLAS = None


# OpenBLAS's worker threads keep spinning for about 0.1 s after each multi-threaded product
# (e.g. an affine layer just before a conv layer) and would take a core from the pool: measured
# 1.5-2x slower conv layers and a ThreeLayerConvNet step 1.4x slower than with them stopped.
# A pooled run therefore stops them; OpenBLAS starts them again by itself at its next
# multi-threaded call (the same lazy restart it does after a fork). Stopping them is only safe
# while no other thread of the process is inside a multi-threaded OpenBLAS call: set this to
# False if your program runs BLAS work on other threads at the same time as these layers.
STOP_IDLE_BLAS_THREADS = True


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


def _stop_idle_openblas_threads(blas):
    for lib in blas:
        if lib.internal_api == "openblas":
            stop = getattr(lib.dynlib, "blas_thread_shutdown_", None)
            if stop is not None:
                stop()


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
        waits = [pool.submit(all_started.wait, 10) for _ in range(size)]
        for wait in waits:
            wait.result()
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
    size = min(workers(), len(tasks))
    blas = _blas_libraries()
    if size < 2 or not blas or threading.current_thread().name.startswith("cs231n_lib"):
        return [work(task, False) for task in tasks]
    with _RUN_LOCK:
        pool = _pool(size)
        if pool is None:
            return [work(task, False) for task in tasks]
        before = [lib.num_threads for lib in blas]
        for lib in blas:
            lib.set_num_threads(1)
        if STOP_IDLE_BLAS_THREADS:
            _stop_idle_openblas_threads(blas)
        try:
            return list(pool.map(lambda task: work(task, True), tasks))
        finally:
            for lib, threads in zip(blas, before):
                lib.set_num_threads(threads)
            if STOP_IDLE_BLAS_THREADS:  # raising the count again started fresh, spinning workers
                _stop_idle_openblas_threads(blas)
