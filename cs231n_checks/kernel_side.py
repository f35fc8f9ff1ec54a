"""The only grader code that runs inside the student's kernel (shipped in the student kit): call one graded function, save its outputs.

The trusted grader writes a case's input arrays to a file (plain ``.npz``, no pickles) and
executes one short line in the kernel::

    __import__("cs231n_checks.kernel_side").kernel_side.run_case(name, in_path, out_path, status_path, nonce)

``run_case`` calls ``Check.call`` on the kernel's namespace, writes the outputs as plain arrays
to ``out_path`` and a small JSON status (the nonce, ok or the exception with the student's own
frames) to ``status_path``. It knows nothing secret: no expected values, no seeds, no test
source. The student's code can replace or fake everything here; the grader still judges the
arrays it reads back against its own reference, so faking gains nothing.
"""

import json
import os
import sys
import time
import traceback

_HERE = os.path.dirname(os.path.abspath(__file__))
MAX_MESSAGE = 2000


def _user_namespace():
    try:
        return get_ipython().user_ns  # noqa: F821 - defined in IPython kernels
    except NameError:
        import __main__

        return vars(__main__)


def _is_library_frame(filename):
    if filename.startswith(_HERE):
        return True
    prefixes = {sys.prefix, sys.base_prefix, sys.exec_prefix}
    return any(filename.startswith(p + os.sep) for p in prefixes) and "ipykernel_" not in filename


def student_frames(exc):
    """The frames of ``exc``'s traceback that are the student's code: [{"name", "line", "text"}]."""
    frames = []
    for frame in traceback.extract_tb(exc.__traceback__):
        if _is_library_frame(frame.filename):
            continue
        frames.append({"name": frame.name, "line": frame.lineno, "text": (frame.line or "")[:200]})
    return frames[-10:]


def _write_json(path, data):
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(data, fh)
    os.replace(tmp, path)


def run_case(name, in_path, out_path, status_path, nonce):
    """Run graded function ``name`` on the inputs in ``in_path``; write outputs and status."""
    import numpy as np

    status = {"nonce": nonce, "status": "ok", "problems": {}}
    try:
        from cs231n_checks import get_check

        check = get_check(name)
        with np.load(in_path, allow_pickle=False) as data:
            inputs = {key: data[key] for key in data.files}
        began = time.perf_counter()
        outputs = check.call(_user_namespace(), inputs)
        status["seconds"] = time.perf_counter() - began
        arrays = {}
        for key, value in dict(outputs).items():
            try:
                array = np.asarray(value)
                if array.dtype.hasobject:
                    raise TypeError("object array")
                arrays[str(key)] = array
            except Exception as exc:  # noqa: BLE001 - reported, judged as a wrong result
                status["problems"][str(key)] = (f"found a {type(value).__name__} that cannot be turned "
                                                f"into an array of numbers ({type(exc).__name__})")
        tmp = out_path + ".tmp.npz"
        np.savez(tmp, **arrays)
        os.replace(tmp, out_path)
    except KeyboardInterrupt:
        status.update(status="interrupted")
    except BaseException as exc:  # noqa: BLE001 - the student's exception, reported to them
        status.update(status="error", exc_type=type(exc).__name__, message=str(exc)[:MAX_MESSAGE],
                      frames=student_frames(exc))
    _write_json(status_path, status)


# ------------------------------------------------------------------------------------------
# Time spent compiling with Numba (for the grader's timing report only; not used to grade)

_COMPILE_TIMER = None


def start_compile_timer():
    """Sum the time Numba spends compiling in this kernel, from when numba is first imported.

    Importing numba costs about 0.2 s; a notebook that never uses it should not pay that for a
    timing report, so until it is imported a one-shot import hook waits for it.
    """
    if "numba" in sys.modules:
        _register_compile_timer()
    elif not any(isinstance(f, _NumbaImportHook) for f in sys.meta_path):
        sys.meta_path.insert(0, _NumbaImportHook())


def _register_compile_timer():
    global _COMPILE_TIMER
    try:
        from numba.core import event

        _COMPILE_TIMER = event.TimingListener()
        event.register("numba:compile", _COMPILE_TIMER)
    except Exception:  # noqa: BLE001 - no numba, or a different version: report nothing
        _COMPILE_TIMER = None


class _NumbaImportHook:
    """Meta-path finder that starts the compile timer right after ``import numba`` completes."""

    def find_spec(self, name, path=None, target=None):
        if name != "numba":
            return None
        sys.meta_path.remove(self)
        import importlib.machinery

        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        run_module = spec.loader.exec_module

        def exec_then_time(module):
            run_module(module)
            _register_compile_timer()

        spec.loader.exec_module = exec_then_time
        return spec


def compile_seconds():
    timer = _COMPILE_TIMER
    try:
        return float(timer.duration) if timer is not None and timer.done else 0.0
    except Exception:  # noqa: BLE001
        return 0.0
