"""Graded checks: one definition per graded function, used by the notebook and by the grader.

A test cell in a source notebook is declarative::

    check("conv_forward_naive", cases=[
        {"x": (2, 3, 4, 4), "w": (3, 3, 4, 4), "stride": 2, "pad": 1, "seed": 0},
    ])
    ### BEGIN HIDDEN TESTS
    check("conv_forward_naive", cases=[
        {"x": (3, 2, 7, 5), "w": (4, 2, 3, 3), "stride": 2, "pad": 1, "seed": 11, "dtype": "float32"},
    ])
    ### END HIDDEN TESTS

In the student's kernel, ``check`` builds each case's inputs, calls the student's function,
compares with ``cs231n_lib`` and prints a verdict per case (the instant, visible check).

At grading, the student's kernel runs none of this. The trusted grader reads the ``check``
calls of the instructor's source notebook (hidden ones included; see
``autograder.testspec``), builds the inputs itself, ships only the input arrays into the
sandboxed kernel where ``Check.call`` runs the student's code, reads the results back as plain
arrays and compares them in its own process with ``Check.reference``.

A case is a dict of literals: ``seed`` (int, default 0), ``dtype`` ("float64" default or
"float32") and whatever the check needs (shapes as tuples, hyperparameters as numbers).
``make_inputs`` must be a deterministic function of the case.
"""

import sys
import time
import traceback

import numpy as np

from ..compare import DEFAULT_TOLERANCE, FIXED_HINTS, compare_output

CHECKS = {}


def register(cls):
    """Class decorator: add a ``Check`` subclass instance to the registry under ``cls.name``."""
    if not cls.name or cls.name in CHECKS:
        raise ValueError(f"check name {cls.name!r} is empty or registered twice")
    CHECKS[cls.name] = cls()
    return cls


def get_check(name):
    try:
        return CHECKS[name]
    except KeyError:
        raise ValueError(f"no check named {name!r}; known checks: {', '.join(sorted(CHECKS))}") from None


class Check:
    """Base class of a graded function's check. Subclasses set ``name`` and override the methods."""

    name = ""
    #: names the student's namespace must define for ``call`` (default: ``(name,)``)
    requires = ()
    #: relative-error tolerance by dtype name; override per check when needed
    tolerance = DEFAULT_TOLERANCE
    #: when True, a float64 result for float32 inputs fails (default: accepted with a note)
    strict_dtype = False
    #: the hints ``extra_hints`` returns that are fixed text (the same whatever the case and the
    #: outputs): the only ones shown for hidden cases and cases that run after one
    fixed_hints = ()

    def extra_hints(self, case, expected, found):
        """Hints that name a typical mistake, from the outputs of a failed case; default none.

        A hint that is always the same text should be listed in ``fixed_hints`` too, or hidden
        cases never show it (a hint holding a number or a layer of the case would reveal it).
        """
        return []

    def names_required(self):
        return tuple(self.requires) or (self.name,)

    def dtype_of(self, case):
        dtype = case.get("dtype", "float64")
        if dtype not in ("float64", "float32"):
            raise ValueError(f"case dtype must be 'float64' or 'float32'; found {dtype!r}")
        return np.dtype(dtype)

    def rng(self, case):
        return np.random.default_rng(int(case.get("seed", 0)))

    # --- trusted side and visible check -------------------------------------------------
    def make_inputs(self, case):
        """Return ``dict[str, np.ndarray]`` (scalars as 0-d arrays) built from ``case``."""
        raise NotImplementedError

    def reference(self, inputs):
        """Return ``dict[str, np.ndarray]``: the correct outputs computed with cs231n_lib."""
        raise NotImplementedError

    def describe(self, case):
        """A short description of a case for people: shapes and hyperparameters, never values."""
        parts = []
        for key, value in case.items():
            if key == "seed":
                continue
            if isinstance(value, tuple):
                parts.append(f"{key} {value}")
            elif key != "dtype":
                parts.append(f"{key}={value}")
        parts.append(str(case.get("dtype", "float64")))
        return ", ".join(parts)

    def tolerance_for(self, case):
        return self.tolerance[self.dtype_of(case).name]

    # --- runs in the student's process ----------------------------------------------------
    def call(self, namespace, inputs):
        """Call the student's code found in ``namespace`` on ``inputs``; return a dict of outputs.

        Runs in the student's (possibly hostile) process: it must not hold anything secret.
        """
        raise NotImplementedError

    # --- helpers for subclasses -------------------------------------------------------------
    @staticmethod
    def scalar(inputs, key, kind=int):
        return kind(np.asarray(inputs[key]).item())

    @staticmethod
    def student(namespace, name):
        try:
            return namespace[name]
        except KeyError:
            raise NameError(f"{name} is not defined: run the cell that defines it") from None


# ------------------------------------------------------------------------------------------
# Evaluating one case, the same way in the notebook and in the grader


def judge(check, case, expected, found, hidden=False, limited=False):
    """Compare the outputs of one case; returns ``(passed, lines, hints, rel_error)``.

    ``hidden=True`` (the grader, on a hidden case): messages never show an expected value, and
    are limited. ``limited=True`` (the grader, on a case that runs after a hidden one, when the
    student's code may hold hidden inputs): each output's line is its verdict in fixed words
    (``Comparison.limited``) and only fixed-text hints are kept (``compare.FIXED_HINTS`` and
    ``check.fixed_hints``), so nothing shown comes from the student's output.
    """
    limited = limited or hidden
    tolerance = check.tolerance_for(case)
    lines, hints, worst, passed = [], [], 0.0, True
    for key, want in expected.items():
        if key not in found:
            passed = False
            lines.append(f"{key}: {MISSING}")
            continue
        result = compare_output(key, want, found[key], tolerance, check.strict_dtype, reveal_expected=not hidden)
        passed &= result.passed
        lines.append(result.limited if limited else result.message)
        hints.extend(h for h in result.hints if h not in hints)
        if result.rel_error is not None:
            worst = max(worst, result.rel_error)
    if not passed:
        try:
            extra = check.extra_hints(case, expected, found)
        except Exception:  # noqa: BLE001 - a hint never turns a wrong answer into a crash
            extra = []
        hints.extend(h for h in extra if h not in hints)
    if limited:
        hints = [h for h in hints if is_fixed_hint(check, h)]
    return passed, lines, hints, worst


#: the line of an output the student's function did not return (fixed text)
MISSING = "missing from the result"


def is_fixed_hint(check, hint):
    """True when ``hint`` is fixed text (it can be shown for a hidden case)."""
    return isinstance(hint, str) and (hint in FIXED_HINTS or hint in tuple(check.fixed_hints))


def _copy_inputs(inputs):
    return {k: np.array(v, copy=True) for k, v in inputs.items()}


def check(name, cases, namespace=None, raise_on_failure=True):
    """Run the visible check of graded function ``name`` in this kernel and print a verdict.

    Inputs:
    - name: the graded function's name (a registered check)
    - cases: list of case dicts (see the module docstring)
    - namespace: where to find the student's code; default: the caller's globals

    Returns None (a test cell's last line must not print anything). Raises, after every case
    has been reported: ``NotImplementedError`` when no case got past "not implemented yet", and
    ``AssertionError`` when a case fails, so that a failed check is an error in the notebook and
    in ``nbgrader validate``.
    """
    kind = get_check(name)
    if namespace is None:
        namespace = sys._getframe(1).f_globals
    passed_count = not_implemented = 0
    for number, case in enumerate(cases, 1):
        inputs = kind.make_inputs(case)
        label = f"{name} case {number}/{len(cases)} ({kind.describe(case)})"
        start = time.perf_counter()
        try:
            found = kind.call(namespace, _copy_inputs(inputs))
        except NotImplementedError:
            print(f"{label}: NOT IMPLEMENTED yet")
            not_implemented += 1
            continue
        except Exception as exc:
            frames = traceback.extract_tb(exc.__traceback__)
            where = next((f for f in reversed(frames) if "autograder" not in f.filename), frames[-1])
            print(f"{label}: ERROR {type(exc).__name__}: {exc} (line {where.lineno} of {where.name})")
            continue
        elapsed = time.perf_counter() - start
        expected = kind.reference(inputs)
        ok, lines, hints, _ = judge(kind, case, expected, found)
        passed_count += ok
        print(f"{label}: {'PASSED' if ok else 'WRONG'} in {elapsed * 1e3:.0f} ms")
        for line in lines:
            print(f"    {line}")
        for hint in hints:
            print(f"    hint: {hint}")
    total = len(cases)
    if passed_count == total:
        print(f"All {total} visible cases of {name} passed. More cases run when your notebook is graded.")
    elif raise_on_failure and not_implemented == total:
        raise NotImplementedError(f"{name} is not implemented yet")
    elif raise_on_failure:
        raise AssertionError(f"{name}: {passed_count} of {total} visible cases passed (details above)")
