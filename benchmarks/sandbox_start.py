"""Kernel start-up time of the two sandboxes: as root (slot user, mount and network namespaces)
and as a normal user (user, mount, network and PID namespaces).

    sudo .venv/bin/python -m benchmarks.sandbox_start [--starts 20]

Run as root: the root path is timed in this process, the user-namespace path in a child run as a
normal user (``tests/autograder/normal_user.py``: created with useradd when missing). The two
alternate in rounds of 5 starts, so that a slow phase of the machine hits both. Each start is
``Sandbox.start()`` up to the kernel's first answer, plus one tiny cell (``1 + 1``) to show it works.
Prints the median and mean of each and their ratio.
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import json, sys, time
from autograder.sandbox import Limits, Sandbox, sandbox_protections
mode, seconds = sandbox_protections()["mode"], []
for _ in range(int(sys.argv[1])):
    with Sandbox({"a.txt": b"x"}, Limits()) as box:
        began = time.perf_counter()
        box.start()
        assert box.execute("1 + 1", 30).status == "ok"
        seconds.append(time.perf_counter() - began)
print(json.dumps({"mode": mode, "seconds": seconds}))
"""


def as_root(n):
    from autograder.sandbox import Limits, Sandbox, sandbox_protections

    assert sandbox_protections()["mode"] == "root", "run this benchmark as root"
    seconds = []
    for _ in range(n):
        with Sandbox({"a.txt": b"x"}, Limits()) as box:
            began = time.perf_counter()
            box.start()
            assert box.execute("1 + 1", 30).status == "ok"
            seconds.append(time.perf_counter() - began)
    return seconds


def as_normal_user(n):
    sys.path.insert(0, str(ROOT / "tests" / "autograder"))
    import normal_user

    done = normal_user.python_as_user(CHILD.replace("int(sys.argv[1])", str(n)), timeout=600)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-2000:])
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["mode"] == "user_namespace", report
    return report["seconds"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=20, help="starts of each path (default 20)")
    args = parser.parse_args(argv)
    root_s, user_s = [], []
    as_root(1), as_normal_user(1)  # warm the page cache and the compiled files of both
    rounds = max(1, args.starts // 5)
    for _ in range(rounds):
        root_s += as_root(5)
        user_s += as_normal_user(5)
    rm, um = statistics.median(root_s), statistics.median(user_s)
    print(f"kernel start + first cell, {len(root_s)} starts each, alternating rounds of 5:")
    print(f"  root (slot user, mount + network namespaces): median {rm:.3f} s, mean {statistics.mean(root_s):.3f} s")
    print(f"  normal user (user, mount, network, PID namespaces): median {um:.3f} s, "
          f"mean {statistics.mean(user_s):.3f} s")
    print(f"  normal user / root: {um / rm:.2f}x (medians)")


if __name__ == "__main__":
    main()
