"""Benchmark cs231n_lib's conv / pool / batchnorm layers against PyTorch CPU, plain NumPy and the
machine's own GEMM rate; print markdown tables with the ratios measured in this run.

    python -m benchmarks.run            # full run (a few minutes)
    python -m benchmarks.run --quick    # shorter timing budget per measurement
    python -m benchmarks.run --summary  # one screen: targets and whether this machine meets them

Every group of measurements runs in its own subprocess (PyTorch's OpenMP workers would otherwise
spin on the cores our BLAS needs, and vice versa). Times are the median of repeated calls after
two warm-up calls. A full run measures the timing groups in three rounds, each round running
every group once in turn (ours, PyTorch, the GEMMs, ...), and reports the median of the rounds:
on a shared virtual machine the speed drifts over minutes, and interleaving spreads the drift
over both sides of every ratio instead of letting it fall on one group. Each group also records
how much CPU OTHER processes used while it ran ("other load", in CPUs): on a shared machine,
numbers taken under load are slower and noisier.
"""

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from .cases import BATCHNORM_CASES, CONV_CASES, POOL_CASES, STEP_BATCH, conv_flops

CONV = list(CONV_CASES)
DTYPES = ["f64", "f32"]


# --------------------------------------------------------------------------------------------
# running workers and watching the load
# --------------------------------------------------------------------------------------------


def _busy_seconds():
    """Non-idle CPU seconds of the whole machine so far (from /proc/stat)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except OSError:
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def other_load(seconds=1.0):
    """CPUs used by other processes during a short idle wait of ours."""
    busy = _busy_seconds()
    if busy is None:
        return None
    time.sleep(seconds)
    return max(0.0, (_busy_seconds() - busy) / seconds)


def wait_until_quiet(limit=0.3, max_wait=60.0, log=None):
    """Wait (at most max_wait s) until other processes use less than ``limit`` CPUs."""
    start = time.time()
    load = other_load(0.5)
    if load is not None and load > limit and log:
        log(f"  waiting up to {max_wait:.0f} s for a quieter machine (others use {load:.2f} CPUs)")
    while load is not None and load > limit and time.time() - start < max_wait:
        load = other_load(2.0)
    return load


def run_worker(kind, args, env=None, log=None, timeout=1800):
    """Run ``python -m benchmarks.worker KIND ARGS``; return (result, other-load in CPUs)."""
    command = [sys.executable, "-m", "benchmarks.worker", kind, json.dumps(args)]
    busy0, child0, t0 = _busy_seconds(), _children_cpu(), time.time()
    proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    wall = time.time() - t0
    others = None
    if busy0 is not None and wall > 0:
        others = max(0.0, ((_busy_seconds() - busy0) - (_children_cpu() - child0)) / wall)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        message = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        if log:
            log(f"  {kind}: failed ({message})")
        return {"error": message}, others
    return json.loads(lines[-1][len("RESULT "):]), others


def have_module(name):
    probe = subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True)
    return probe.returncode == 0


# --------------------------------------------------------------------------------------------
# measuring
# --------------------------------------------------------------------------------------------


def median_of_rounds(rounds):
    """One group's result from its rounds: every timing is the median over the rounds.

    Each round is a list of rows (dicts with the same keys, in the same order); a round that
    failed (a dict with "error") is left out, and if all failed the first failure is returned.
    """
    good = [rows for rows in rounds if isinstance(rows, list)]
    if not good:
        return rounds[0]
    merged = []
    for rows in zip(*good):
        row = dict(rows[0])
        for field, value in rows[0].items():
            if isinstance(value, float):
                row[field] = statistics.median(r[field] for r in rows)
        merged.append(row)
    return merged


def measure(quick, log, include_torch=True, threads=None, rounds=None):
    results = {"load": {}}
    worker_env = dict(os.environ)
    if threads:  # every library in the workers: BLAS, Numba, PyTorch/OpenMP
        for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
            worker_env[name] = str(threads)
    rounds = rounds or (1 if quick else 3)
    common = {"quick": quick, "dtypes": DTYPES}
    if rounds > 1:  # the full budget (about 1.5 s, at least 5 calls) shared among the rounds
        common.update(budget=1.5 / rounds, min_repeats=2)
    torch_ok = include_torch and have_module("torch")
    groups = [("conv_ours", CONV), ("conv_torch", CONV), ("gemm", CONV), ("conv_numpy", CONV),
              ("pool_ours", list(POOL_CASES)), ("pool_torch", list(POOL_CASES)), ("pool_numpy", list(POOL_CASES)),
              ("bn_ours", list(BATCHNORM_CASES)), ("bn_torch", list(BATCHNORM_CASES)),
              ("step_ours", ["step"]), ("step_torch", ["step"])]
    groups = [(kind, cases) for kind, cases in groups if torch_ok or not kind.endswith("_torch")]
    measured = {kind: [] for kind, _ in groups}
    for round_number in range(1, rounds + 1):
        for kind, cases in groups:
            if not quick:
                wait_until_quiet(log=log)
            log(f"measuring {kind} (round {round_number} of {rounds}) ...")
            result, load = run_worker(kind, dict(common, cases=cases), env=worker_env, log=log)
            measured[kind].append(result)
            previous = results["load"].get(kind)
            results["load"][kind] = load if previous is None or (load is not None and load > previous) else previous
    for kind, _ in groups:
        results[kind] = median_of_rounds(measured[kind])
    results["rounds"] = rounds

    # JIT: cold = empty cache folder (compiles), warm = a second process on the filled folder
    cache_dir = tempfile.mkdtemp(prefix="cs231n-bench-numba-")
    try:
        env = dict(worker_env, NUMBA_CACHE_DIR=cache_dir)
        for label, processes in (("cold", 1), ("warm", rounds)):
            runs = []
            for _ in range(processes):  # warm: the median of `rounds` processes, like the timings
                log(f"measuring first calls ({label} cache) ...")
                t0 = time.time()
                result, load = run_worker("first_calls", {}, env=env, log=log)
                result["process_wall_s"] = time.time() - t0
                runs.append((result, load))
            runs.sort(key=lambda run: run[0].get("import_s", 0) + sum(run[0].get("calls", {}).values()))
            results[f"jit_{label}"], results["load"][f"jit_{label}"] = runs[len(runs) // 2]
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)

    # memory: each implementation in a fresh process
    for impl in ["ours", "numpy"] + (["torch"] if torch_ok else []):
        for dtype in DTYPES:
            log(f"measuring peak memory ({impl}, {dtype}) ...")
            key = f"mem_{impl}_{dtype}"
            results[key], results["load"][key] = run_worker("memory", {"impl": impl, "dtype": dtype, "case": "c"},
                                                            env=worker_env, log=log)
    results["torch"] = torch_ok
    return results


# --------------------------------------------------------------------------------------------
# reporting
# --------------------------------------------------------------------------------------------


def _rows(results, kind):
    data = results.get(kind)
    if not isinstance(data, list):
        return {}
    return {(r["case"], r["dtype"]): r for r in data}


def _ms(seconds):
    if seconds is None:
        return "-"
    ms = seconds * 1e3
    return f"{ms:.3g}" if ms < 100 else f"{ms:.0f}"


def _ratio(a, b):
    return f"{a / b:.2f}x" if a is not None and b else "-"


def _get(rows, key, field):
    row = rows.get(key)
    return row[field] if row else None


def conv_table(results):
    ours, torch, numpy, gemm = (_rows(results, k) for k in ("conv_ours", "conv_torch", "conv_numpy", "gemm"))
    lines = [
        "| case | dtype | ours fwd ms (GFLOP/s) | ours bwd ms (GFLOP/s) | torch fwd / bwd ms | numpy fwd / bwd ms "
        "| GEMM alone fwd / bwd ms (GFLOP/s fwd) | ours/torch fwd+bwd | numpy/ours fwd+bwd | ours fwd rate / GEMM rate |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for case in CONV:
        flops = conv_flops(case)
        for dtype in DTYPES:
            key = (case, dtype)
            of, ob = _get(ours, key, "fwd"), _get(ours, key, "bwd")
            tf, tb = _get(torch, key, "fwd"), _get(torch, key, "bwd")
            nf, nb = _get(numpy, key, "fwd"), _get(numpy, key, "bwd")
            gf, gb = _get(gemm, key, "fwd"), _get(gemm, key, "bwd")
            total = of + ob if of is not None else None
            lines.append(
                f"| {case} | {dtype} | {_ms(of)} ({flops / of / 1e9:.1f}) | {_ms(ob)} ({2 * flops / ob / 1e9:.1f}) "
                f"| {_ms(tf)} / {_ms(tb)} | {_ms(nf)} / {_ms(nb)} "
                f"| {_ms(gf)} / {_ms(gb)} ({flops / gf / 1e9:.1f}) "
                f"| {_ratio(total, (tf + tb) if tf else None)} | {_ratio((nf + nb) if nf else None, total)} "
                f"| {f'{gf / of:.0%}' if gf and of else '-'} |"
                if of is not None and gf is not None else f"| {case} | {dtype} | failed | | | | | | | |"
            )
    return "\n".join(lines)


def simple_table(results, ours_kind, torch_kind, numpy_kind, cases, shapes):
    ours, torch = _rows(results, ours_kind), _rows(results, torch_kind)
    numpy = _rows(results, numpy_kind) if numpy_kind else {}
    if not ours:
        reason = results.get(ours_kind, {})
        return f"(skipped: {reason.get('skipped') or reason.get('error') or 'no result'})"
    lines = ["| case | x | dtype | ours fwd / bwd ms | torch fwd / bwd ms | numpy fwd / bwd ms "
             "| ours/torch fwd | ours/torch bwd |", "|---|---|---|---|---|---|---|---|"]
    for case in cases:
        for dtype in DTYPES:
            key = (case, dtype)
            of, ob = _get(ours, key, "fwd"), _get(ours, key, "bwd")
            tf, tb = _get(torch, key, "fwd"), _get(torch, key, "bwd")
            nf, nb = _get(numpy, key, "fwd"), _get(numpy, key, "bwd")
            lines.append(f"| {case} | {shapes[case]} | {dtype} | {_ms(of)} / {_ms(ob)} | {_ms(tf)} / {_ms(tb)} "
                         f"| {_ms(nf)} / {_ms(nb)} | {_ratio(of, tf)} | {_ratio(ob, tb)} |")
    return "\n".join(lines)


def step_table(results):
    ours, torch = _rows(results, "step_ours"), _rows(results, "step_torch")
    lines = ["| dtype | ours ms | torch ms | ours/torch |", "|---|---|---|---|"]
    for dtype in DTYPES:
        o, t = _get(ours, ("step", dtype), "step"), _get(torch, ("step", dtype), "step")
        lines.append(f"| {dtype} | {_ms(o)} | {_ms(t)} | {_ratio(o, t)} |")
    return "\n".join(lines)


def jit_table(results):
    lines = ["| cache | import s | first calls (every kernel, both dtypes) s | whole process s | cache hits / misses | cache mode |",
             "|---|---|---|---|---|---|"]
    for label in ("cold", "warm"):
        r = results.get(f"jit_{label}", {})
        if "calls" not in r:
            lines.append(f"| {label} | failed: {r.get('error')} | | | | |")
            continue
        lines.append(f"| {label} | {r['import_s']:.2f} | {sum(r['calls'].values()):.2f} | {r['process_wall_s']:.2f} "
                     f"| {r['cache_hits']} / {r['cache_misses']} | {r['cache_mode']} |")
    return "\n".join(lines)


def memory_table(results):
    lines = ["| impl | dtype | peak RSS growth, conv fwd+bwd on c (MB) | x (MB) | vs torch |", "|---|---|---|---|---|"]
    for dtype in DTYPES:
        torch_peak = results.get(f"mem_torch_{dtype}", {}).get("peak_delta")
        for impl in ("ours", "torch", "numpy"):
            r = results.get(f"mem_{impl}_{dtype}")
            if not r or "peak_delta" not in r:
                continue
            extra = f" (tracemalloc peak {r['tracemalloc_peak'] / 1e6:.0f})" if "tracemalloc_peak" in r else ""
            lines.append(f"| {impl} | {dtype} | {r['peak_delta'] / 1e6:.0f}{extra} | {r['inputs'] / 1e6:.0f} "
                         f"| {_ratio(r['peak_delta'], torch_peak)} |")
    return "\n".join(lines)


def targets(results):
    """(description, measured text, met?) for every target of the project on this machine."""
    ours, torch, numpy, gemm = (_rows(results, k) for k in ("conv_ours", "conv_torch", "conv_numpy", "gemm"))
    pool_ours, pool_torch = _rows(results, "pool_ours"), _rows(results, "pool_torch")
    out = []

    def total(rows, key):
        row = rows.get(key)
        return row["fwd"] + row["bwd"] if row else None

    def add(text, value, limit, fmt="{:.2f}x", smaller_is_better=True):
        if value is None:
            out.append((text, "not measured", None))
        else:
            met = value <= limit if smaller_is_better else value >= limit
            out.append((text, fmt.format(value), met))

    def ratio(a, b):
        return a / b if a is not None and b else None

    add("f64 conv fwd+bwd time vs PyTorch on c (<= 0.7x)", ratio(total(ours, ("c", "f64")), total(torch, ("c", "f64"))), 0.7)
    add("f64 conv fwd+bwd time vs PyTorch on b (< 1x)", ratio(total(ours, ("b", "f64")), total(torch, ("b", "f64"))), 0.999)
    for dtype in DTYPES:
        g, o = _get(gemm, ("c", dtype), "fwd"), _get(ours, ("c", dtype), "fwd")
        add(f"{dtype} conv fwd on c: rate vs the same GEMM alone (>= 80%)", ratio(g, o), 0.8, "{:.0%}", False)
    add("f32 conv fwd+bwd vs PyTorch on c (<= 1.6x)", ratio(total(ours, ("c", "f32")), total(torch, ("c", "f32"))), 1.6)
    for case in ("a", "b"):
        add(f"f32 conv fwd+bwd vs PyTorch on {case} (<= 2.5x)",
            ratio(total(ours, (case, "f32")), total(torch, (case, "f32"))), 2.5)
    worst = None
    for key in ours:
        r = ratio(total(numpy, key), total(ours, key))
        worst = r if worst is None or (r is not None and r < worst) else worst
    add("every conv case: plain NumPy im2col / ours (>= 2x)", worst, 2.0, "{:.1f}x (worst)", False)
    worst_pool = None
    for key in pool_ours:
        for field in ("fwd", "bwd"):
            r = ratio(_get(pool_ours, key, field), _get(pool_torch, key, field))
            worst_pool = r if worst_pool is None or (r is not None and r > worst_pool) else worst_pool
    add("max pool fwd and bwd vs PyTorch (<= 1.5x)", worst_pool, 1.5, "{:.2f}x (worst)")
    warm = results.get("jit_warm", {})
    add("warm cache: second process import + first call of every kernel (< 1 s)",
        (warm.get("import_s", 0) + sum(warm.get("calls", {}).values())) if "calls" in warm else None, 0.999, "{:.2f} s")
    mem_o, mem_t = results.get("mem_ours_f64", {}), results.get("mem_torch_f64", {})
    add("peak memory of f64 conv fwd+bwd on c vs PyTorch (<= 1.5x)",
        ratio(mem_o.get("peak_delta"), mem_t.get("peak_delta")), 1.5)
    return out


def targets_table(results):
    lines = ["| target | measured | met |", "|---|---|---|"]
    for text, value, met in targets(results):
        lines.append(f"| {text} | {value} | {'yes' if met else ('-' if met is None else 'NO')} |")
    return "\n".join(lines)


def environment():
    import numpy

    info = {"python": platform.python_version(), "numpy": numpy.__version__, "cpus": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "?")
    except OSError:
        info["cpu"] = platform.processor() or "?"
    try:
        import numba

        info["numba"] = numba.__version__
    except ImportError:
        pass
    try:
        from threadpoolctl import threadpool_info

        info["blas"] = ", ".join(f"{p.get('internal_api')} {p.get('version')} ({p.get('num_threads')} threads)"
                                 for p in threadpool_info() if p.get("user_api") == "blas")
    except ImportError:
        pass
    if have_module("torch"):
        probe = subprocess.run([sys.executable, "-c", "import torch; print(torch.__version__, torch.get_num_threads())"],
                               capture_output=True, text=True)
        info["torch"] = probe.stdout.strip()
    return info


def report(results, env, load_before, load_after, summary=False):
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    loads = results["load"]
    worst_key = max((k for k in loads if loads[k] is not None), key=lambda k: loads[k], default=None)
    header = [
        f"# cs231n_lib benchmarks ({stamp})",
        "",
        f"Machine: {env.get('cpu')}, {env.get('cpus')} CPUs; Python {env.get('python')}, numpy {env.get('numpy')}, "
        f"numba {env.get('numba')}, BLAS {env.get('blas')}, torch {env.get('torch', 'not installed')}; "
        f"threads per library in the measurements: {results.get('threads')}.",
        f"Other processes' load: {load_before} CPUs before, {load_after} after; worst during a group: "
        + (f"{loads[worst_key]:.2f} CPUs ({worst_key})." if worst_key else "unknown."),
        "Times: median wall time after 2 warm-up calls"
        + (f", then the median of {results['rounds']} interleaved rounds" if results.get("rounds", 1) > 1 else "")
        + "; GFLOP/s counts the whole layer; fwd FLOPs = 2*N*F*C*HH*WW*Hout*Wout, bwd = twice that.",
    ]
    parts = header + ["", "## Targets", "", targets_table(results)]
    if summary:
        return "\n".join(parts)
    parts += [
        "", "## Convolution", "", conv_table(results),
        "", "GEMM alone = NumPy's matmul of the layer's im2col matrices with preallocated outputs "
        "(fwd: (F,K)@(K,N*P); bwd: the dw and dcols products).",
        "", "## Max pool 2x2 stride 2", "",
        simple_table(results, "pool_ours", "pool_torch", "pool_numpy", list(POOL_CASES), POOL_CASES),
        "", "## Spatial batchnorm (training)", "",
        simple_table(results, "bn_ours", "bn_torch", None, list(BATCHNORM_CASES), BATCHNORM_CASES),
        "", "## One training step of ThreeLayerConvNet", "",
        f"Forward, softmax loss and backward on a batch {STEP_BATCH}: conv 7x7 (32 filters) - relu - "
        "2x2 max pool - affine 100 - relu - affine 10; ours is `ThreeLayerConvNet.loss`, PyTorch the "
        "same network with autograd. The layers meet here as in training, BLAS products between them.",
        "", step_table(results),
        "", "## JIT: import + first call of every kernel (separate processes)", "", jit_table(results),
        "", "## Peak memory, conv forward + backward on case c (separate processes)", "", memory_table(results),
        "", "Other load per group (CPUs used by other processes while it ran): "
        + ", ".join(f"{k} {v:.2f}" for k, v in loads.items() if v is not None),
    ]
    return "\n".join(parts)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="short timing budget (about 0.3 s per measurement)")
    parser.add_argument("--summary", action="store_true", help="print only the one-screen targets table")
    parser.add_argument("--no-torch", action="store_true", help="do not measure PyTorch even when installed")
    parser.add_argument("--threads", type=int, metavar="N",
                        help="limit every library to N threads (default: all cores)")
    parser.add_argument("--rounds", type=int, metavar="R",
                        help="interleaved rounds of the timing groups (default: 3, or 1 with --quick)")
    parser.add_argument("--json", metavar="FILE", help="also write the raw measurements as JSON")
    parser.add_argument("--output", metavar="FILE", help="also write the markdown report to FILE")
    options = parser.parse_args(argv)

    def log(message):
        print(message, file=sys.stderr, flush=True)

    load_before = other_load()
    env = environment()
    results = measure(options.quick, log, include_torch=not options.no_torch, threads=options.threads,
                      rounds=options.rounds)
    results["threads"] = options.threads or os.cpu_count()
    load_after = other_load()
    fmt = lambda v: "?" if v is None else f"{v:.2f}"  # noqa: E731
    text = report(results, env, fmt(load_before), fmt(load_after), summary=options.summary)
    print(text)
    if options.output:
        with open(options.output, "w") as f:
            f.write(text + "\n")
    if options.json:
        with open(options.json, "w") as f:
            json.dump({"environment": env, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
