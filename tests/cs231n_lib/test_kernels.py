"""Tests for cs231n_lib/kernels.py: compiled kernels agree with their pure-Python source, the
on-disk cache degrades gracefully, the threading layer is the one we chose, launches are safe
from several threads."""

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cs231n_lib import kernels
from cs231n_lib_testkit import conv_problems, pool_problems

FAST = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PACKAGE_DIR = os.path.dirname(os.path.abspath(kernels.__file__))


def _conv_geometry(problem):
    p = problem["conv_param"]
    N, C, H, W = problem["x"].shape
    _, _, HH, WW = problem["w"].shape
    d = p["dilation"]
    Hout = (H + 2 * p["pad"] - d * (HH - 1) - 1) // p["stride"] + 1
    Wout = (W + 2 * p["pad"] - d * (WW - 1) - 1) // p["stride"] + 1
    return (HH, WW, p["stride"], p["pad"], d, Hout, Wout)


# ------------------------------------------------------------------------------------------
# jitted == interpreted (numba's py_func runs the same source with prange as range)
# ------------------------------------------------------------------------------------------


@FAST
@given(conv_problems(), st.data())
def test_column_kernels_match_their_python_source(problem, data):
    x = problem["x"]
    geometry = _conv_geometry(problem)
    N, C = x.shape[:2]
    HH, WW, *_, Hout, Wout = geometry
    K, total = C * HH * WW, N * Hout * Wout
    start = data.draw(st.integers(0, total - 1), label="col_start")
    length = data.draw(st.integers(1, total - start), label="length")

    compiled, interpreted = np.full((K, length), np.nan, x.dtype), np.full((K, length), np.nan, x.dtype)
    kernels.im2col_columns(x, *geometry, start, compiled)
    kernels.im2col_columns.py_func(x, *geometry, start, interpreted)
    np.testing.assert_array_equal(compiled, interpreted)

    cols = problem["rng"].standard_normal((K, length)).astype(x.dtype)
    dx_compiled, dx_interpreted = np.ones_like(x), np.ones_like(x)
    kernels.col2im_columns_add(cols, *geometry, start, dx_compiled)
    kernels.col2im_columns_add.py_func(cols, *geometry, start, dx_interpreted)
    np.testing.assert_allclose(dx_compiled, dx_interpreted, rtol=1e-6 if x.dtype == np.float32 else 1e-14)

    # the single-thread halves, interpreted, over a part of the rows / planes they can cover
    k_first = data.draw(st.integers(0, K - 1), label="k_first")
    k_end = data.draw(st.integers(k_first, K), label="k_end")
    rows = np.full((K, length), np.nan, x.dtype)
    kernels.im2col_rows.py_func(x, *geometry, start, rows, k_first, k_end)
    np.testing.assert_array_equal(rows[k_first:k_end], compiled[k_first:k_end])
    assert np.isnan(rows[:k_first]).all() and np.isnan(rows[k_end:]).all()

    P = Hout * Wout
    planes = ((start + length - 1) // P - start // P + 1) * C
    q_split = data.draw(st.integers(0, planes), label="q_split")
    dx_halves = np.ones_like(x)
    kernels.col2im_planes_add.py_func(cols, *geometry, start, dx_halves, 0, q_split)
    kernels.col2im_planes_add(cols, *geometry, start, dx_halves, q_split, planes)
    np.testing.assert_allclose(dx_halves, dx_compiled, rtol=1e-6 if x.dtype == np.float32 else 1e-14)



@FAST
@given(pool_problems())
def test_pool_kernels_match_their_python_source(problem):
    x = problem["x"]
    ph, pw, s = (problem["pool_param"][k] for k in ("pool_height", "pool_width", "stride"))
    N, C, H, W = x.shape
    shape = (N, C, (H - ph) // s + 1, (W - pw) // s + 1)
    results = []
    for run in (lambda k: k, lambda k: k.py_func):
        out, argmax = np.empty(shape, x.dtype), np.empty(shape, np.int32)
        run(kernels.max_pool_forward_planes)(x, ph, pw, s, out, argmax)
        dout = np.linspace(-1, 1, out.size).reshape(shape).astype(x.dtype)
        dx_max = np.full_like(x, np.nan)  # the kernel must overwrite every entry
        run(kernels.max_pool_backward_planes)(dout, argmax, dx_max)
        avg = np.empty(shape, x.dtype)
        run(kernels.avg_pool_forward_planes)(x, ph, pw, s, avg)
        dx_avg = np.full_like(x, np.nan)
        run(kernels.avg_pool_backward_planes)(dout, ph, pw, s, dx_avg)
        results.append((out, argmax, dx_max, avg, dx_avg))
    for compiled, interpreted in zip(*results):
        np.testing.assert_allclose(compiled, interpreted, rtol=1e-6 if x.dtype == np.float32 else 1e-14)
    assert not np.isnan(results[0][2]).any() and not np.isnan(results[0][4]).any()


@FAST
@given(st.integers(0, 2**32 - 1), st.integers(1, 300), st.sampled_from([np.float32, np.float64]))
def test_relu_kernel_matches_its_python_source(seed, size, dtype):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(size).astype(dtype)
    x[rng.random(size) < 0.1] = 0
    dout = rng.standard_normal(size).astype(dtype)
    compiled, interpreted = np.full_like(x, np.nan), np.full_like(x, np.nan)
    kernels.relu_backward_flat(x, dout, compiled)
    kernels.relu_backward_flat.py_func(x, dout, interpreted)
    np.testing.assert_array_equal(compiled, interpreted)


def test_every_kernel_is_cached_on_disk_and_listed():
    names = {k.py_func.__name__ for k in kernels.ALL_KERNELS}
    public = {n for n, v in vars(kernels).items() if hasattr(v, "py_func")}
    assert names == public
    for kernel in kernels.ALL_KERNELS:
        # the per-thread halves (run on the pool of cs231n_lib._threads) must release the GIL
        serial = kernel.py_func.__name__ in {"im2col_rows", "col2im_planes_add"}
        assert kernel.targetoptions.get("parallel") is not serial
        assert kernel.targetoptions.get("nogil") is True
        if kernels.CACHE_MODE != "off":
            assert kernel._cache is not None and type(kernel._cache).__name__ == "FunctionCache"


# ------------------------------------------------------------------------------------------
# launching from several Python threads (workqueue alone would abort the process)
# ------------------------------------------------------------------------------------------


THREADS_CHILD = textwrap.dedent(r"""
    import threading
    import numpy as np
    from cs231n_lib.conv import conv_forward
    from cs231n_lib.pooling import max_pool_forward
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((4, 3, 16, 16)), rng.standard_normal((5, 3, 3, 3)), rng.standard_normal(5)
    expected, _ = conv_forward(x, w, b, {"stride": 1, "pad": 1})
    expected_pool, _ = max_pool_forward(x, {"pool_height": 2, "pool_width": 2, "stride": 2})
    failures = []
    def work():
        for _ in range(30):
            out, _ = conv_forward(x, w, b, {"stride": 1, "pad": 1})
            pooled, _ = max_pool_forward(x, {"pool_height": 2, "pool_width": 2, "stride": 2})
            if not (np.array_equal(out, expected) and np.array_equal(pooled, expected_pool)):
                failures.append(1)
    threads = [threading.Thread(target=work) for _ in range(3)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    print("failures=%d" % len(failures))
""")


def test_concurrent_launches_from_threads_give_correct_results():
    """Without the launch lock, workqueue aborts the whole process ("Concurrent access has been
    detected"), so this runs in a child process."""
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_THREADING_LAYER"}
    result = subprocess.run([sys.executable, "-c", THREADS_CHILD], env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "failures=0" in result.stdout


# ------------------------------------------------------------------------------------------
# subprocesses: threading layer, cache fallbacks, warm cache
# ------------------------------------------------------------------------------------------

# Runs in a child: optionally imports the library from a copy (bypassing the editable install),
# runs a small conv + max pool, checks the numbers, prints facts as key=value lines.
CHILD = textwrap.dedent(r"""
    import os, sys, tempfile
    copy = os.environ.get("CS231N_TEST_PACKAGE_COPY")
    if copy:
        sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in str(getattr(f, "__module__", ""))
                            and "editable" not in type(f).__module__]
        sys.path.insert(0, copy)
    if os.environ.get("CS231N_TEST_START_NUMBA_FIRST"):
        import numba
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)  # starts the default layer
    if os.environ.get("CS231N_TEST_BLOCK_TEMPDIR"):
        tempfile.tempdir = os.environ["CS231N_TEST_BLOCK_TEMPDIR"]
    import numpy as np, numba
    import cs231n_lib
    from cs231n_lib import kernels
    from cs231n_lib.conv import conv_forward
    from cs231n_lib.pooling import max_pool_forward
    x = np.arange(2 * 1 * 4 * 4, dtype=np.float64).reshape(2, 1, 4, 4)
    out, _ = conv_forward(x, np.ones((1, 1, 3, 3)), np.zeros(1), {"stride": 1, "pad": 1})
    assert out[0, 0, 1, 1] == x[0, 0, :3, :3].sum() and out[1, 0, 0, 0] == x[1, 0, :2, :2].sum()
    pooled, _ = max_pool_forward(x, {"pool_height": 2, "pool_width": 2, "stride": 2})
    assert pooled[1, 0, 1, 1] == x[1, 0, 3, 3]
    print("package=" + os.path.dirname(cs231n_lib.__file__))
    print("cache_mode=" + kernels.CACHE_MODE)
    print("cache_dir=" + str(numba.config.CACHE_DIR))
    print("threading_layer=" + numba.threading_layer())
    print("serial_kernels=" + str(kernels.SERIAL_KERNELS))
    print("cache_hits=" + str(sum(sum(k.stats.cache_hits.values()) for k in kernels.ALL_KERNELS)))
    print("cache_misses=" + str(sum(sum(k.stats.cache_misses.values()) for k in kernels.ALL_KERNELS)))
""")


def run_child(env_updates, user=None, timeout=300):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    env.update(env_updates)
    command = [sys.executable, "-c", CHILD]
    if user is not None:
        command = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"] + command
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    facts = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    return facts, result.stderr


@pytest.fixture
def blocked_paths(tmp_path):
    """Package copy whose __pycache__ is a FILE and a blocker file: every default cache
    location fails, even for root (who can write into read-only folders)."""
    package_parent = tmp_path / "site"
    shutil.copytree(PACKAGE_DIR, package_parent / "cs231n_lib",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for folder in (package_parent / "cs231n_lib").rglob("*"):
        if folder.is_dir():
            (folder / "__pycache__").write_text("not a folder")
    (package_parent / "cs231n_lib" / "__pycache__").write_text("not a folder")
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, so nothing can be created below it")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    return dict(package=str(package_parent), blocker=str(blocker), tmp=str(tmp))


@pytest.mark.slow
def test_import_works_when_no_cache_folder_is_writable(blocked_paths):
    env = {
        "CS231N_TEST_PACKAGE_COPY": blocked_paths["package"],
        "NUMBA_CACHE_DIR": blocked_paths["blocker"] + "/numba",
        "XDG_CACHE_HOME": blocked_paths["blocker"] + "/xdg",
        "HOME": blocked_paths["blocker"] + "/home",
        "TMPDIR": blocked_paths["tmp"],
    }
    facts, _ = run_child(env)
    assert facts["package"] == os.path.join(blocked_paths["package"], "cs231n_lib")
    assert facts["cache_mode"] == "private-tempdir"
    assert facts["cache_dir"].startswith(blocked_paths["tmp"])
    assert os.listdir(facts["cache_dir"]), "the private cache folder received the compiled kernels"

    # and when even the temporary folder is unusable: compile without a cache, still correct
    facts, _ = run_child(dict(env, CS231N_TEST_BLOCK_TEMPDIR=blocked_paths["blocker"] + "/tmp"))
    assert facts["cache_mode"] == "off"
    assert facts["threading_layer"] == "workqueue"


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root and setpriv to run the child as an unprivileged user")
def test_read_only_install_for_an_unprivileged_user():
    """As 'nobody' the package folder (owned by root) is read-only, HOME and NUMBA_CACHE_DIR
    do not exist: the library imports, computes correctly and caches in a private folder."""
    tmp = tempfile.mkdtemp(prefix="cs231n-ro-test-")
    try:
        os.chmod(tmp, 0o777)
        assert not os.access(PACKAGE_DIR, os.W_OK) or os.geteuid() == 0
        facts, _ = run_child({"NUMBA_CACHE_DIR": "/proc/cs231n-not-writable", "HOME": "/nonexistent",
                              "XDG_CACHE_HOME": "/nonexistent", "TMPDIR": tmp}, user=65534)
        assert facts["package"] == PACKAGE_DIR
        assert facts["cache_mode"] == "private-tempdir"
        assert facts["cache_dir"].startswith(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.mark.slow
def test_second_process_loads_kernels_from_the_disk_cache(tmp_path):
    env = {"NUMBA_CACHE_DIR": str(tmp_path / "numba-cache")}
    first, _ = run_child(env)
    second, _ = run_child(env)
    assert first["cache_mode"] == second["cache_mode"] == "default"
    assert first["cache_dir"] == str(tmp_path / "numba-cache")
    assert int(first["cache_misses"]) >= 1  # compiled and saved
    assert int(second["cache_hits"]) >= 1 and int(second["cache_misses"]) == 0  # loaded, not compiled
    assert second["threading_layer"] == "workqueue"


@pytest.mark.slow
def test_user_choice_of_threading_layer_is_respected(tmp_path):
    facts, _ = run_child({"NUMBA_CACHE_DIR": str(tmp_path / "c"), "NUMBA_THREADING_LAYER": "omp"})
    assert facts["threading_layer"] == "omp"


@pytest.mark.slow
def test_layer_started_before_import_makes_kernels_serial(tmp_path):
    """numba.set_num_threads before importing the library starts the default (omp) layer; the
    library cannot switch it any more and must not spin against BLAS: kernels run serially."""
    facts, _ = run_child({"NUMBA_CACHE_DIR": str(tmp_path / "c"), "CS231N_TEST_START_NUMBA_FIRST": "1"})
    if facts["threading_layer"] == "omp":
        assert facts["serial_kernels"] == "True"
    else:  # a machine where the default layer is tbb or workqueue: nothing to avoid
        assert facts["serial_kernels"] == "False"
    facts, _ = run_child({"NUMBA_CACHE_DIR": str(tmp_path / "c")})
    assert facts["serial_kernels"] == "False" and facts["threading_layer"] == "workqueue"
