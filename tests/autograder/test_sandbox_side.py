"""The helpers that run inside the student's kernel (cs231n_checks.kernel_side)."""

import os
import subprocess
import sys
import tempfile


def test_compile_timer_waits_for_numba_and_then_counts_compilation():
    """Starting the timer does not import numba (0.2 s a kernel); it counts once numba is imported."""
    code = ("import sys, cs231n_checks.kernel_side as side\n"
            "side.start_compile_timer()\n"
            "print('numba' in sys.modules, side.compile_seconds())\n"
            "import numba\n"
            "f = numba.njit(lambda v: v + 1)\n"
            "f(1)\n"
            "print(side.compile_seconds() > 0)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, NUMBA_CACHE_DIR=tempfile.mkdtemp()))
    assert out.stdout.split() == ["False", "0.0", "True"], out.stderr
