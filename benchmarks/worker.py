"""One group of measurements, run in its own process by ``benchmarks.run``.

Usage: ``python -m benchmarks.worker KIND '{"quick": false, ...}'``; prints one line
``RESULT {json}``. Each kind runs alone so that one library's thread pool (PyTorch's OpenMP
workers spin after every call) never steals the cores from another's measurement.
"""

import gc
import json
import sys
import time

import numpy as np

from .cases import BATCHNORM_CASES, CONV_CASES, DTYPES, POOL_CASES, STEP_BATCH


# Seconds of repeated calls and least number of calls per measurement, quick or full;
# ``benchmarks.run`` sets others ("budget", "min_repeats") when it splits a group into rounds.
BUDGET = {True: 0.3, False: 1.5}
MIN_REPEATS = {True: 3, False: 5}


def timed(func, quick, max_repeats=30):
    """Median wall time (seconds) of ``func()`` after two warm-up calls."""
    budget = BUDGET[bool(quick)]
    min_repeats = MIN_REPEATS[bool(quick)]
    func()
    func()
    times = []
    start = time.perf_counter()
    while len(times) < min_repeats or (time.perf_counter() - start < budget and len(times) < max_repeats):
        t0 = time.perf_counter()
        func()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def conv_inputs(case, dtype, seed=0):
    x_shape, w_shape, stride, pad = CONV_CASES[case]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype)
    return x, w, b, {"stride": stride, "pad": pad}


# --------------------------------------------------------------------------------------------
# conv
# --------------------------------------------------------------------------------------------


def conv_numpy_style(module, args):
    """Time module.conv_forward / conv_backward (ours or the plain-NumPy reference)."""
    rows = []
    for case in args["cases"]:
        for dtype_name in args["dtypes"]:
            x, w, b, p = conv_inputs(case, DTYPES[dtype_name])
            out, cache = module.conv_forward(x, w, b, p)
            dout = np.random.default_rng(1).standard_normal(out.shape).astype(x.dtype)
            fwd = timed(lambda: module.conv_forward(x, w, b, p), args["quick"])
            bwd = timed(lambda: module.conv_backward(dout, cache), args["quick"])
            rows.append(dict(case=case, dtype=dtype_name, fwd=fwd, bwd=bwd))
    return rows


def kind_conv_ours(args):
    from cs231n_lib import conv

    return conv_numpy_style(conv, args)


def kind_conv_numpy(args):
    from . import numpy_reference

    return conv_numpy_style(numpy_reference, args)


def kind_conv_torch(args):
    import torch

    rows = []
    for case in args["cases"]:
        for dtype_name in args["dtypes"]:
            x, w, b, p = conv_inputs(case, DTYPES[dtype_name])
            xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))

            def forward():
                with torch.no_grad():
                    return torch.nn.functional.conv2d(xt, wt, bt, stride=p["stride"], padding=p["pad"])

            out = torch.nn.functional.conv2d(xt, wt, bt, stride=p["stride"], padding=p["pad"])
            dout = torch.randn(out.shape, dtype=out.dtype)
            fwd = timed(forward, args["quick"])
            bwd = timed(lambda: torch.autograd.grad(out, (xt, wt, bt), dout, retain_graph=True), args["quick"])
            rows.append(dict(case=case, dtype=dtype_name, fwd=fwd, bwd=bwd))
    return rows


def kind_gemm(args):
    """The im2col GEMMs alone, same shapes as the layer's: fwd (F,K)@(K,NP); bwd both products."""
    rows = []
    for case in args["cases"]:
        x_shape, w_shape, stride, pad = CONV_CASES[case]
        N = x_shape[0]
        F, C, HH, WW = w_shape
        K = C * HH * WW
        Hout = (x_shape[2] + 2 * pad - HH) // stride + 1
        Wout = (x_shape[3] + 2 * pad - WW) // stride + 1
        NP = N * Hout * Wout
        for dtype_name in args["dtypes"]:
            rng = np.random.default_rng(0)
            dt = DTYPES[dtype_name]
            w_rows = rng.standard_normal((F, K)).astype(dt)
            cols = rng.standard_normal((K, NP)).astype(dt)
            dout_cols = rng.standard_normal((F, NP)).astype(dt)
            out = np.empty((F, NP), dt)
            dw = np.empty((F, K), dt)
            dcols = np.empty((K, NP), dt)
            fwd = timed(lambda: np.matmul(w_rows, cols, out=out), args["quick"])
            bwd = timed(lambda: (np.matmul(dout_cols, cols.T, out=dw), np.matmul(w_rows.T, dout_cols, out=dcols)),
                        args["quick"])
            rows.append(dict(case=case, dtype=dtype_name, fwd=fwd, bwd=bwd))
    return rows


# --------------------------------------------------------------------------------------------
# pooling and batchnorm
# --------------------------------------------------------------------------------------------


def pool_inputs(case, dtype):
    return np.random.default_rng(0).standard_normal(POOL_CASES[case]).astype(dtype)


POOL_PARAM = {"pool_height": 2, "pool_width": 2, "stride": 2}


def pool_numpy_style(module, args):
    rows = []
    for case in args["cases"]:
        for dtype_name in args["dtypes"]:
            x = pool_inputs(case, DTYPES[dtype_name])
            out, cache = module.max_pool_forward(x, POOL_PARAM)
            dout = np.random.default_rng(1).standard_normal(out.shape).astype(x.dtype)
            fwd = timed(lambda: module.max_pool_forward(x, POOL_PARAM), args["quick"])
            bwd = timed(lambda: module.max_pool_backward(dout, cache), args["quick"])
            rows.append(dict(case=case, dtype=dtype_name, fwd=fwd, bwd=bwd))
    return rows


def kind_pool_ours(args):
    from cs231n_lib import pooling

    return pool_numpy_style(pooling, args)


def kind_pool_numpy(args):
    from . import numpy_reference

    return pool_numpy_style(numpy_reference, args)


def kind_pool_torch(args):
    import torch

    rows = []
    for case in args["cases"]:
        for dtype_name in args["dtypes"]:
            xt = torch.tensor(pool_inputs(case, DTYPES[dtype_name]), requires_grad=True)

            def forward():
                with torch.no_grad():
                    return torch.nn.functional.max_pool2d(xt, 2, 2)

            out = torch.nn.functional.max_pool2d(xt, 2, 2)
            dout = torch.randn(out.shape, dtype=out.dtype)
            fwd = timed(forward, args["quick"])
            bwd = timed(lambda: torch.autograd.grad(out, xt, dout, retain_graph=True), args["quick"])
            rows.append(dict(case=case, dtype=dtype_name, fwd=fwd, bwd=bwd))
    return rows


def kind_bn_ours(args):
    try:
        from cs231n_lib.normalization import spatial_batchnorm_backward, spatial_batchnorm_forward
    except Exception as err:  # written by another part of the project; may be missing
        return {"skipped": f"{type(err).__name__}: {err}"}
    rows = []
    for case in args["cases"]:
        for dtype_name in args["dtypes"]:
            dt = DTYPES[dtype_name]
            x = np.random.default_rng(0).standard_normal(BATCHNORM_CASES[case]).astype(dt)
            C = x.shape[1]
            gamma, beta = np.ones(C, dt), np.zeros(C, dt)

            def forward():
                return spatial_batchnorm_forward(x, gamma, beta, {"mode": "train"})

            out, cache = forward()
            dout = np.random.default_rng(1).standard_normal(out.shape).astype(dt)
            fwd = timed(forward, args["quick"])
            bwd = timed(lambda: spatial_batchnorm_backward(dout, cache), args["quick"])
            rows.append(dict(case=case, dtype=dtype_name, fwd=fwd, bwd=bwd))
    return rows


def kind_bn_torch(args):
    import torch

    rows = []
    for case in args["cases"]:
        for dtype_name in args["dtypes"]:
            dt = DTYPES[dtype_name]
            xt = torch.tensor(np.random.default_rng(0).standard_normal(BATCHNORM_CASES[case]).astype(dt),
                              requires_grad=True)
            C = xt.shape[1]
            gamma = torch.ones(C, dtype=xt.dtype, requires_grad=True)
            beta = torch.zeros(C, dtype=xt.dtype, requires_grad=True)

            def forward():
                with torch.no_grad():
                    return torch.nn.functional.batch_norm(xt, None, None, gamma, beta, training=True)

            out = torch.nn.functional.batch_norm(xt, None, None, gamma, beta, training=True)
            dout = torch.randn(out.shape, dtype=out.dtype)
            fwd = timed(forward, args["quick"])
            bwd = timed(lambda: torch.autograd.grad(out, (xt, gamma, beta), dout, retain_graph=True), args["quick"])
            rows.append(dict(case=case, dtype=dtype_name, fwd=fwd, bwd=bwd))
    return rows


# --------------------------------------------------------------------------------------------
# a whole training step: the layers as a network uses them, BLAS products in between
# --------------------------------------------------------------------------------------------


def step_inputs(dtype):
    rng = np.random.default_rng(0)
    return rng.standard_normal(STEP_BATCH).astype(dtype), rng.integers(0, 10, STEP_BATCH[0])


def kind_step_ours(args):
    """ThreeLayerConvNet.loss (forward, softmax loss, backward) on a CIFAR-sized batch."""
    from cs231n_lib.classifiers import ThreeLayerConvNet

    rows = []
    for dtype_name in args["dtypes"]:
        X, y = step_inputs(DTYPES[dtype_name])
        model = ThreeLayerConvNet(input_dim=STEP_BATCH[1:], dtype=DTYPES[dtype_name], seed=0)
        rows.append(dict(case="step", dtype=dtype_name, step=timed(lambda: model.loss(X, y), args["quick"])))
    return rows


def kind_step_torch(args):
    """The same network in PyTorch: conv 7x7 (32, same) - relu - 2x2 max pool - affine 100 -
    relu - affine 10 - softmax cross-entropy, then backward to every weight."""
    import torch
    import torch.nn.functional as F

    rows = []
    for dtype_name in args["dtypes"]:
        X, y = step_inputs(DTYPES[dtype_name])
        xt, yt = torch.tensor(X), torch.tensor(y)
        C, H, W = STEP_BATCH[1:]
        gen = torch.Generator().manual_seed(0)
        shapes = [(32, C, 7, 7), (32,), (32 * (H // 2) * (W // 2), 100), (100,), (100, 10), (10,)]
        params = [(1e-3 * torch.randn(s, generator=gen, dtype=xt.dtype)).requires_grad_() for s in shapes]

        def step():
            w1, b1, w2, b2, w3, b3 = params
            h = F.max_pool2d(F.relu(F.conv2d(xt, w1, b1, padding=3)), 2, 2)
            scores = F.relu(h.flatten(1) @ w2 + b2) @ w3 + b3
            return torch.autograd.grad(F.cross_entropy(scores, yt), params)

        rows.append(dict(case="step", dtype=dtype_name, step=timed(step, args["quick"])))
    return rows


# --------------------------------------------------------------------------------------------
# JIT cache: import + first call of every kernel, cold or warm
# --------------------------------------------------------------------------------------------


def kind_first_calls(args):
    """Import the library and call every layer once per dtype (= every kernel signature).

    Run with NUMBA_CACHE_DIR pointing at an empty folder (cold: compiles) or at the folder a
    previous run filled (warm: loads machine code from disk).
    """
    t0 = time.perf_counter()
    import numba  # noqa: F401

    import cs231n_lib
    from cs231n_lib import conv, kernels, layers, pooling

    t_import = time.perf_counter() - t0
    calls = {}
    for dtype_name, dt in DTYPES.items():
        rng = np.random.default_rng(0)
        x = rng.standard_normal((2, 3, 8, 8)).astype(dt)
        w = rng.standard_normal((4, 3, 3, 3)).astype(dt)
        t = time.perf_counter()
        # large enough for the layers' threaded paths: several samples (a thread per slice), one
        # sample in one slice (Numba's threads), and a small layer (the calling thread)
        for shape in ((4, 3, 32, 32), (1, 3, 64, 64), (2, 3, 8, 8)):
            batch = rng.standard_normal(shape).astype(dt)
            out, cache = conv.conv_forward(batch, w, np.zeros(4, dt), {"stride": 1, "pad": 1})
            conv.conv_backward(out, cache)
        calls[f"conv {dtype_name}"] = time.perf_counter() - t
        t = time.perf_counter()
        big = rng.standard_normal(1 << 16).astype(dt)  # the ReLU kernel's size
        layers.relu_backward(big, layers.relu_forward(big)[1])
        calls[f"relu {dtype_name}"] = time.perf_counter() - t
        for name in ("max", "avg"):
            t = time.perf_counter()
            fwd = getattr(pooling, f"{name}_pool_forward")
            bwd = getattr(pooling, f"{name}_pool_backward")
            out, cache = fwd(x, POOL_PARAM)
            bwd(out, cache)
            calls[f"{name}_pool {dtype_name}"] = time.perf_counter() - t
    hits = sum(sum(k.stats.cache_hits.values()) for k in kernels.ALL_KERNELS)
    misses = sum(sum(k.stats.cache_misses.values()) for k in kernels.ALL_KERNELS)
    return dict(import_s=t_import, calls=calls, total_s=time.perf_counter() - t0,
                cache_hits=hits, cache_misses=misses, cache_mode=kernels.CACHE_MODE,
                version=cs231n_lib.__version__)


# --------------------------------------------------------------------------------------------
# peak memory of conv forward + backward on case c
# --------------------------------------------------------------------------------------------


def _rss_bytes(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak():
    """Reset VmHWM to the current RSS (Linux >= 4.0); False when not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def kind_memory(args):
    """Peak RSS growth during one conv forward + backward (after a warm-up on a tiny input, so
    that compilation/cache loading and library start-up are not counted; persistent work
    buffers the big call needs ARE counted)."""
    which = args["impl"]
    dt = DTYPES[args["dtype"]]
    x, w, b, p = conv_inputs(args["case"], dt)
    tiny = conv_inputs("a", dt)
    tiny = (tiny[0][:1, :, :5, :5], tiny[1], tiny[2], tiny[3])
    if which == "ours":
        from cs231n_lib import conv

        def run(x, w, b, p):
            out, cache = conv.conv_forward(x, w, b, p)
            return conv.conv_backward(np.ones_like(out), cache)
    elif which == "numpy":
        from . import numpy_reference as conv_np

        def run(x, w, b, p):
            out, cache = conv_np.conv_forward(x, w, b, p)
            return conv_np.conv_backward(np.ones_like(out), cache)
    else:
        import torch

        def run(x, w, b, p):
            xt, wt, bt = (torch.from_numpy(a).requires_grad_() for a in (x, w, b))
            out = torch.nn.functional.conv2d(xt, wt, bt, stride=p["stride"], padding=p["pad"])
            return torch.autograd.grad(out, (xt, wt, bt), torch.ones_like(out))

    run(*tiny)
    gc.collect()
    before = _rss_bytes("VmRSS")
    if not _reset_peak():
        return {"skipped": "cannot reset VmHWM (/proc/self/clear_refs)"}
    grads = run(x, w, b, p)
    peak = _rss_bytes("VmHWM")
    del grads
    result = dict(impl=which, case=args["case"], dtype=args["dtype"], peak_delta=peak - before,
                  inputs=x.nbytes + w.nbytes + b.nbytes)
    if which == "ours":
        import tracemalloc

        gc.collect()
        tracemalloc.start()
        run(x, w, b, p)
        result["tracemalloc_peak"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return result


def main():
    kind = sys.argv[1]
    args = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    if "budget" in args:
        BUDGET[bool(args.get("quick"))] = float(args["budget"])
    if "min_repeats" in args:
        MIN_REPEATS[bool(args.get("quick"))] = int(args["min_repeats"])
    result = globals()[f"kind_{kind}"](args)
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
