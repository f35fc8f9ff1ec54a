"""Tests for cs231n_lib/_threads.py: pooled runs give every task to a pool thread with a
single-threaded BLAS, restore the BLAS afterwards (also on errors), never deadlock when nested,
survive a fork; and the layers give the same numbers pooled and not pooled."""

import _thread
import multiprocessing
import signal
import threading
import time

import numba
import numpy as np
import pytest
from threadpoolctl import threadpool_info

from cs231n_lib import _threads, conv_backward, conv_forward
from cs231n_lib import conv as conv_module

pytestmark = pytest.mark.skipif(
    numba.get_num_threads() < 2 or not _threads._blas_libraries(),
    reason="pooled runs need two threads and a controllable BLAS",
)


def _blas_threads():
    """Threads of the BLAS libraries a pooled run controls (NumPy's among them, see below)."""
    return [lib.num_threads for lib in _threads._blas_libraries()]


def test_numpy_blas_is_among_the_controlled_libraries():
    controlled = {lib.filepath for lib in _threads._blas_libraries()}
    numpy_blas = [info["filepath"] for info in threadpool_info()
                  if info["user_api"] == "blas" and "numpy" in info["filepath"]]
    assert numpy_blas, "this test expects NumPy's bundled OpenBLAS (pip wheels)"
    assert set(numpy_blas) <= controlled


def test_pooled_run_keeps_task_order_and_makes_blas_single_threaded():
    before = _blas_threads()
    assert max(before) >= 2  # otherwise the check below proves nothing

    def work(task, pooled):
        return task, pooled, threading.current_thread().name, _blas_threads()

    results = _threads.run(work, list(range(7)))
    assert [r[0] for r in results] == list(range(7))
    assert all(pooled for _, pooled, _, _ in results)
    assert all(name.startswith("cs231n_lib") for _, _, name, _ in results)
    assert all(set(threads) == {1} for *_, threads in results)
    assert _blas_threads() == before


def test_one_task_runs_on_the_calling_thread_with_blas_untouched():
    before = _blas_threads()
    [(pooled, name, threads)] = _threads.run(
        lambda task, pooled: (pooled, threading.current_thread().name, _blas_threads()), ["only"])
    assert pooled is False and name == threading.current_thread().name and threads == before


def test_an_error_in_a_task_reaches_the_caller_and_blas_is_restored():
    before = _blas_threads()

    def work(task, pooled):
        if task == 3:
            raise ValueError("task 3 failed")
        return task

    with pytest.raises(ValueError, match="task 3 failed"):
        _threads.run(work, list(range(6)))
    assert _blas_threads() == before


def _tracked(raise_in=None, interrupt_in=None):
    """A work function that counts running tasks and can fail or press Ctrl-C in one task."""
    state = {"running": 0, "finished": 0, "lock": threading.Lock()}

    def work(task, pooled):
        with state["lock"]:
            state["running"] += 1
        try:
            if task == interrupt_in:
                _thread.interrupt_main()
            if task == raise_in:
                raise ValueError(f"task {task} failed")
            time.sleep(0.02)
            return task
        finally:
            with state["lock"]:
                state["running"] -= 1
                state["finished"] += 1

    return work, state


@pytest.mark.timeout(60)
def test_after_an_error_no_task_is_left_running():
    work, state = _tracked(raise_in=1)
    with pytest.raises(ValueError, match="task 1 failed"):
        _threads.run(work, list(range(8)))
    assert state["running"] == 0


@pytest.mark.timeout(60)
def test_after_ctrl_c_no_task_is_left_running_and_the_next_run_works():
    # Ctrl-C reaches Python as KeyboardInterrupt only under the default handler; a library used
    # by an earlier test in the same process may have left SIGINT ignored
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _run_interrupted()
    finally:
        signal.signal(signal.SIGINT, previous)


def _run_interrupted():
    work, state = _tracked(interrupt_in=2)
    with pytest.raises(KeyboardInterrupt):
        _threads.run(work, list(range(8)))
        time.sleep(1)  # the interrupt is delivered to the main thread at its next bytecode
    assert state["running"] == 0
    assert _threads.run(lambda task, pooled: task * 2, list(range(5))) == [0, 2, 4, 6, 8]


def test_the_pool_is_kept_whatever_the_number_of_tasks():
    _threads.run(lambda task, pooled: task, [1, 2])
    pool = _threads._POOL
    for count in (2, 3, 5, 2, 7):
        _threads.run(lambda task, pooled: task, list(range(count)))
        assert _threads._POOL is pool


def test_a_run_inside_a_pool_thread_runs_inline_instead_of_waiting_for_itself():
    def inner(task, pooled):
        return pooled

    def outer(task, pooled):
        return _threads.run(inner, [1, 2, 3])

    assert _threads.run(outer, [0, 1]) == [[False, False, False]] * 2


def test_conv_layer_gives_the_same_numbers_pooled_and_on_one_thread(monkeypatch):
    paths = []
    real_im2col = conv_module._im2col

    def recording_im2col(x, geometry, col_start, cols, pooled):
        paths.append(pooled)
        return real_im2col(x, geometry, col_start, cols, pooled)

    monkeypatch.setattr(conv_module, "_im2col", recording_im2col)
    rng = np.random.default_rng(5)
    for x_shape, w_shape, param in [((5, 3, 40, 44), (4, 3, 3, 3), {"stride": 1, "pad": 1}),
                                    ((3, 8, 41, 41), (6, 8, 5, 5), {"stride": 2, "pad": 2, "dilation": 2}),
                                    ((2, 16, 64, 64), (4, 16, 5, 5), {"stride": 1, "pad": 2})]:  # the last one splits samples into slices
        x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
        b = rng.standard_normal(w_shape[0])
        out, cache = conv_forward(x, w, b, param)
        dout = rng.standard_normal(out.shape)
        paths.clear()
        pooled = (out, *conv_backward(dout, cache))
        assert paths and all(paths), "the pooled path was not taken"
        threads = numba.get_num_threads()
        numba.set_num_threads(1)
        try:
            out1, cache1 = conv_forward(x, w, b, param)
            paths.clear()
            single = (out1, *conv_backward(dout, cache1))
            assert paths and not any(paths)
        finally:
            numba.set_num_threads(threads)
        for a, b_ in zip(pooled, single):
            np.testing.assert_allclose(a, b_, rtol=1e-13, atol=1e-13)


# large enough for the pooled path (more than conv.SMALL_LAYER_ELEMENTS column entries)
FORK_X_SHAPE = (4, 2, 40, 40)


def _conv_in_child(queue):
    out, _ = conv_forward(np.ones(FORK_X_SHAPE), np.ones((1, 2, 3, 3)), np.zeros(1), {"stride": 1, "pad": 0})
    queue.put((float(out.sum()), _threads._POOL_KEY))


def test_a_forked_child_gets_its_own_pool():
    conv_forward(np.ones(FORK_X_SHAPE), np.ones((1, 2, 3, 3)), np.zeros(1), {"stride": 1, "pad": 0})
    parent_key = _threads._POOL_KEY
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_conv_in_child, args=(queue,))
    child.start()
    child.join(timeout=120)
    assert child.exitcode == 0
    total, child_key = queue.get(timeout=5)
    assert total == 4 * 38 * 38 * 18.0
    assert child_key[0] != parent_key[0]  # the child built a pool of its own process


def test_when_threads_cannot_start_the_layers_run_on_the_calling_thread(monkeypatch):
    """A sandbox's RLIMIT_NPROC can forbid new threads: the layer must still give its numbers."""
    real_start = threading.Thread.start

    def refuse_pool_threads(thread):
        if thread.name.startswith("cs231n_lib"):
            raise RuntimeError("can't start new thread")
        return real_start(thread)

    rng = np.random.default_rng(2)
    # large enough for the pooled path (more than conv.SMALL_LAYER_ELEMENTS column entries)
    x, w, b = rng.standard_normal((6, 3, 40, 40)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    expected, cache = conv_forward(x, w, b, {"stride": 1, "pad": 1})
    expected_grads = conv_backward(expected, cache)

    monkeypatch.setattr(threading.Thread, "start", refuse_pool_threads)
    monkeypatch.setattr(_threads, "_POOL_KEY", None)  # force a new pool
    monkeypatch.setattr(_threads, "_POOL", None)
    out, cache = conv_forward(x, w, b, {"stride": 1, "pad": 1})
    grads = conv_backward(out, cache)
    assert _threads._POOL_KEY is not None and _threads._POOL is None  # tried, none kept
    np.testing.assert_allclose(out, expected, rtol=1e-13)
    for got, want in zip(grads, expected_grads):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    seen = _threads.run(lambda task, pooled: (task, pooled, threading.current_thread().name), [1, 2, 3])
    assert seen == [(t, False, threading.current_thread().name) for t in (1, 2, 3)]


@pytest.mark.parametrize("shape_a, shape_b, transpose_a", [
    ((50, 8192), (8192, 100), False),   # an affine layer's forward product
    ((8192, 50), (50, 100), True),      # its dw = x.T @ dout, x.T a transposed view
    ((3, 600), (600, 700), False),      # a few rows
    ((1, 2000), (2000, 900), False),    # one row: nothing to share
    ((4, 5), (5, 3), False),            # small: one plain np.matmul
])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_pooled_matmul_equals_numpy_matmul(shape_a, shape_b, transpose_a, dtype, monkeypatch):
    rng = np.random.default_rng(7)
    a = rng.standard_normal(shape_a[::-1] if transpose_a else shape_a).astype(dtype)
    a = a.T if transpose_a else a
    b = rng.standard_normal(shape_b).astype(dtype)
    calls = []
    real_run = _threads.run
    monkeypatch.setattr(_threads, "run", lambda work, tasks: calls.append(len(tasks)) or real_run(work, tasks))
    product = _threads.matmul(a, b)
    assert product.dtype == dtype and product.shape == (a.shape[0], b.shape[1])
    np.testing.assert_allclose(product, a @ b, rtol=1e-5 if dtype == np.float32 else 1e-12,
                               atol=1e-4 if dtype == np.float32 else 1e-10)
    big = a.shape[0] * a.shape[1] * b.shape[1] >= _threads.SMALL_PRODUCT
    assert calls == ([min(_threads.workers(), a.shape[0])] if big else [])
