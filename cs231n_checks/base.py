"""The visible checks of the course notebooks, as they run on a student's machine.

A test cell in a notebook is declarative::

    check("conv_forward_naive", cases=[
        {"x": (2, 3, 4, 4), "w": (3, 3, 4, 4), "stride": 2, "pad": 1, "seed": 0},
    ])

``check`` looks up each case's input arrays and expected outputs, calls the student's function on
the inputs, compares with the same code the grader uses (``cs231n_checks.compare``) and prints a
verdict per case. The inputs and expected outputs are data: they were computed by the
instructor's reference library when the student kit was built and ship with it
(``cs231n_checks/expected/<assignment>.npz``), so that nothing on the student's side can compute
an answer. So do the outputs of the known mistakes of each case: when a wrong result matches
one of them, the verdict names that mistake.

A case is a dict of literals: ``seed`` (int, default 0), ``dtype`` ("float64" default or
"float32") and whatever the check needs (shapes as tuples, hyperparameters as numbers).

This module knows nothing secret: each ``Check`` here says how to *call* a student's function
and how to describe a case; building inputs and computing references is the trusted grader's job
(``autograder.checks``, not part of the student kit).
"""

import hashlib
import json
import sys
import time
import traceback
from pathlib import Path

import numpy as np

from .compare import (DEFAULT_TOLERANCE, FIXED_HINTS, OUTPUT_SIZE_RULE, PADDING_HINTS, SHAPE_ACCEPTED, WINDOW_HINTS,
                      coerce, compare_output, singleton_reshape)

CHECKS = {}

#: the line of an output the student's function did not return (fixed text)
MISSING = "missing from the result"

#: the note of a visible case whose call changed one of its input arrays (``x -= mean``)
INPUT_CHANGED = ("your code changed its input {key} in place (x -= ..., x[...] = ...): work on a copy "
                 "(x = x - mean); the caller still needs its input, and the numerical gradient check relies on it")

EXPECTED_DIR = Path(__file__).resolve().parent / "expected"


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
    """How to call one graded function and describe its cases. Subclasses set ``name``."""

    name = ""
    #: names the student's namespace must define for ``call`` (default: ``(name,)``)
    requires = ()
    #: relative-error tolerance by dtype name; override per check when needed
    tolerance = DEFAULT_TOLERANCE
    #: when True, a float64 result for float32 inputs fails (default: accepted with a note)
    strict_dtype = False
    #: hints that are fixed text (the same whatever the case and the outputs): the only ones
    #: shown for hidden cases and cases that run after one. Known mistakes' names belong here.
    fixed_hints = ()
    #: outputs that are per-feature vectors: a result of shape (1, D) for (D,), or (1, C, 1, 1)
    #: for (C,) (or the other way round), passes with a note when its values are right
    vector_outputs = ("running_mean", "running_var", "dgamma", "dbeta", "db", "b")
    #: when True, the shape policy above is off: every output must have exactly its shape
    strict_shape = False
    #: the hint for an output whose spatial size differs (the layer's own output-size rule)
    size_hint = OUTPUT_SIZE_RULE
    #: whether the layer pads its input: only then may a wrong border say "look at the padding"
    padded = True
    #: whether the layer slides windows: only then may the wrong entries' rows and columns say
    #: "look at where the loops stop" or "look at the stride"
    windowed = True

    def extra_hints(self, case, inputs, expected, found):
        """Hints from a failed case's inputs and outputs alone (no reference code); default none.

        Hints that need the reference library to recognise a mistake are the trusted side's
        ``mistakes`` (precomputed into the kit for visible cases). A hint that is always the same
        text should be listed in ``fixed_hints`` too, or hidden cases never show it.
        """
        return []

    def names_required(self):
        return tuple(self.requires) or (self.name,)

    def dtype_of(self, case):
        dtype = case.get("dtype", "float64")
        if dtype not in ("float64", "float32"):
            raise ValueError(f"case dtype must be 'float64' or 'float32'; found {dtype!r}")
        return np.dtype(dtype)

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


def matches_mistake(variant, expected, found, tolerance):
    """True when ``found`` holds every output of a known mistake's ``variant`` (up to
    ``tolerance``, relative to the variant's largest magnitude) and those outputs are not also
    the right ones (a mistake that changes nothing in this case is not named)."""
    differs = False
    for key, want in variant.items():
        if key not in found or key not in expected:
            return False
        got, problem = coerce(found[key])
        want = np.asarray(want)
        if want.dtype.kind == "U":  # a label (an exception's name, a type): equal or not
            if problem or got.dtype.kind != "U" or got.shape != want.shape or not np.all(got == want):
                return False
            differs |= not np.array_equal(np.asarray(expected[key]), want)
            continue
        if problem or got.shape != want.shape or got.dtype.kind not in "biuf" or want.dtype.kind not in "biuf":
            return False
        got, want64 = got.astype(np.float64), want.astype(np.float64)
        if not (np.all(np.isfinite(got)) and np.all(np.isfinite(want64))):
            return False
        scale = max(1.0, float(np.max(np.abs(want64), initial=0.0)))
        if float(np.max(np.abs(got - want64), initial=0.0)) > max(tolerance, 1e-12) * scale:
            return False
        right = np.asarray(expected[key], dtype=np.float64)
        if right.shape != want64.shape or float(np.max(np.abs(right - want64), initial=0.0)) > max(tolerance, 1e-12) * scale:
            differs = True
    return differs


def judge(check, case, expected, found, hidden=False, limited=False, *, inputs=None, mistakes=None):
    """Compare the outputs of one case; returns ``(passed, lines, hints, rel_error)``.

    Inputs:
    - check, case: the graded function's ``Check`` and the case
    - expected, found: dicts of outputs (the reference's and the student's)
    - hidden: the grader, on a hidden case: messages never show an expected value, and are limited
    - limited: the grader, on a case that runs after a hidden one (the student's code may hold
      hidden inputs): each output's line is its verdict in fixed words and only fixed-text hints
      are kept, so nothing shown comes from the student's output
    - inputs: the case's input arrays (default: built by the check, on the trusted side only)
    - mistakes: the case's known mistakes, ``[(hint, {output: array})]`` (default: computed by
      the check, on the trusted side only)
    """
    limited = limited or hidden
    tolerance = check.tolerance_for(case)
    lines, hints, worst, passed = [], [], 0.0, True
    for key, want in expected.items():
        if key not in found:
            passed = False
            lines.append(f"{key}: {MISSING}")
            continue
        got, note = shape_policy(check, key, want, found[key])
        result = compare_output(key, want, got, tolerance, check.strict_dtype, reveal_expected=not hidden)
        passed &= result.passed
        line = result.limited if limited else result.message
        if note:
            line += f"; note: {SHAPE_ACCEPTED}" if limited else f"; note: {note}"
        lines.append(line)
        hints.extend(h for h in result.hints if h not in hints)
        if result.rel_error is not None:
            worst = max(worst, result.rel_error)
    hints = [check.size_hint if h == OUTPUT_SIZE_RULE else h for h in hints
             if (check.padded or h not in PADDING_HINTS) and (check.windowed or h not in WINDOW_HINTS)]
    if not passed:
        named = diagnose(check, case, expected, found, inputs=inputs, mistakes=mistakes)
        # a named mistake says what went wrong; where the differences sit would only distract
        if named:
            hints = named
    if limited:
        hints = [h for h in hints if is_fixed_hint(check, h)]
    return passed, lines, hints, worst


def shape_policy(check, key, want, value):
    """``(value, note)``: a per-feature vector returned with extra (or without) axes of size 1 is
    reshaped to the expected shape, with a note saying so (see ``Check.vector_outputs``)."""
    if check.strict_shape or key not in check.vector_outputs:
        return value, ""
    array, problem = coerce(value)
    want_shape = np.shape(want)
    if problem or not singleton_reshape(want_shape, array.shape):
        return value, ""
    return array.reshape(want_shape), (f"returned shape {array.shape} for {want_shape}: accepted, the values "
                                       f"decide (a check can be made strict)")


def diagnose(check, case, expected, found, *, inputs=None, mistakes=None):
    """The hints that name a mistake in a wrong result: the known mistakes whose outputs
    ``found`` matches, then the check's own ``extra_hints``. ``inputs`` and ``mistakes`` default
    to what a trusted check computes; the student's side passes the kit's data."""
    try:
        if inputs is None and hasattr(check, "make_inputs"):
            inputs = check.make_inputs(case)
        if mistakes is None:
            mistakes = check.mistakes(case, inputs) if hasattr(check, "mistakes") else []
        tolerance = max(check.tolerance_for(case), 1e-9)
        found = {k: shape_policy(check, k, expected[k], v)[0] if k in expected else v for k, v in found.items()}
        named = [hint for hint, variant in mistakes if matches_mistake(variant, expected, found, tolerance)]
        if inputs is not None:
            named += check.extra_hints(case, inputs, expected, found)
    except Exception:  # noqa: BLE001 - a hint never turns a wrong answer into a crash
        return []
    return [h for h in dict.fromkeys(named) if isinstance(h, str) and h]


def is_fixed_hint(check, hint):
    """True when ``hint`` is fixed text (it can be shown for a hidden case)."""
    return isinstance(hint, str) and (hint in FIXED_HINTS or hint == check.size_hint
                                      or hint in tuple(check.fixed_hints))


# ------------------------------------------------------------------------------------------
# The visible cases' data: inputs, expected outputs and known mistakes


def case_key(name, case):
    """A stable key of one case of check ``name`` (the same in the kit's build and the notebook)."""
    text = json.dumps([name, case], sort_keys=True, default=list, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def pack_case(key, inputs, expected, mistakes, name=None, case=None):
    """The ``.npz`` entries of one case (plain arrays and strings: no pickles); with ``name`` and
    ``case``, also which check and case it is (so that a notebook can list a check's cases)."""
    entries = {f"{key}.in.{k}": np.asarray(v) for k, v in inputs.items()}
    if name is not None:
        entries[f"{key}.check"] = np.array(json.dumps([name, case], default=list))
    entries.update({f"{key}.out.{k}": np.asarray(v) for k, v in expected.items()})
    for number, (hint, variant) in enumerate(mistakes):
        entries[f"{key}.m{number}"] = np.array(hint)
        entries.update({f"{key}.m{number}.{k}": np.asarray(v) for k, v in variant.items()})
    return entries


class _Store:
    """The kit's expected data, loaded on first use from every ``expected/*.npz``."""

    def __init__(self, folder):
        self.folder = folder
        self.cases = None

    def load(self):
        cases = {}
        for path in sorted(Path(self.folder).glob("*.npz")) if Path(self.folder).is_dir() else []:
            with np.load(path, allow_pickle=False) as data:
                for entry in data.files:
                    key, part, *rest = entry.split(".", 2)
                    record = cases.setdefault(key, {"in": {}, "out": {}, "mistakes": {}})
                    if part == "check":
                        record["check"] = json.loads(str(data[entry]))
                    elif part in ("in", "out"):
                        record[part][rest[0]] = data[entry]
                    elif not rest:
                        record["mistakes"].setdefault(part, [None, {}])[0] = str(data[entry])
                    else:
                        record["mistakes"].setdefault(part, [None, {}])[1][rest[0]] = data[entry]
        self.cases = cases

    def get(self, key):
        if self.cases is None:
            self.load()
        record = self.cases.get(key)
        if record is None:
            return None
        mistakes = [tuple(record["mistakes"][m]) for m in sorted(record["mistakes"], key=lambda m: int(m[1:]))]
        return record["in"], record["out"], mistakes

    def cases_of(self, name):
        """The visible cases of check ``name`` this kit holds (as the notebook wrote them)."""
        if self.cases is None:
            self.load()
        return [_tuples(r["check"][1]) for r in self.cases.values() if r.get("check", [None])[0] == name]


STORE = _Store(EXPECTED_DIR)


class MissingCase(LookupError):
    """A visible case whose data is not in this kit (the notebook and the kit do not match)."""


def case_data(name, case):
    """``(inputs, expected, mistakes)`` of a visible case: from the kit's data, or, in the
    instructor's repository (which has no built data), from the trusted grader's checks."""
    stored = STORE.get(case_key(name, case))
    if stored is not None:
        return stored
    try:
        from autograder.checks import get_check as trusted_check
    except ImportError:
        trusted_check = None
    if trusted_check is None:
        raise MissingCase(
            f"this kit has no data for a case of {name} ({get_check(name).describe(case)}): the notebook "
            f"and the installed student kit come from different builds. Reinstall the kit that came "
            f"with this notebook, or ask your instructor.")
    trusted = trusted_check(name)
    inputs = trusted.make_inputs(case)
    expected = trusted.reference({k: np.array(v, copy=True) for k, v in inputs.items()})
    return inputs, expected, trusted.mistakes(case, inputs)


def _tuples(case):
    """A case read back from JSON: lists become tuples again, as the notebook wrote them."""
    return {k: tuple(_tuples(x) if isinstance(x, list) else x for x in v) if isinstance(v, list) else v
            for k, v in case.items()}


def _visible_cases(name):
    """The visible cases of ``name``: the kit's, or (in the instructor's repository, which has no
    built data) those of the source notebooks' test cells."""
    cases = STORE.cases_of(name)
    if cases:
        return cases
    try:
        import nbformat

        from autograder.testspec import parse_test_cell
    except ImportError:
        return []
    root = Path(__file__).resolve().parents[1] / "solutions"
    for path in sorted(root.glob("*/*.ipynb")):
        for cell in nbformat.read(str(path), as_version=4).cells:
            if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade"):
                cases += [case for call in parse_test_cell(cell.source) if call.name == name and not call.hidden
                          for case in call.cases]
    return cases


def visible_check_passes(name, namespace=None):
    """True when the student's code passes every visible case of check ``name`` (run quietly),
    False when one fails or raises, None when there is no case or nothing is implemented yet.

    The gradient-check cells use it to tell a wrong forward pass (the numerical gradient is
    computed from it) from a wrong backward pass. A forward pass that changes its input in place
    (``x -= mean``) is not right for them either: its outputs pass, but the numerical gradient,
    which perturbs x and calls it again, comes out wrong, so False."""
    kind = get_check(name)
    if namespace is None:
        namespace = sys._getframe(1).f_globals
    cases = _visible_cases(name)
    if not cases:
        return None
    for case in cases:
        inputs, expected, mistakes = case_data(name, case)
        given = _copy_inputs(inputs)
        try:
            found = kind.call(namespace, given)
        except NotImplementedError:
            return None
        except Exception:  # noqa: BLE001 - a forward pass that raises is not right
            return False
        if changed_inputs(inputs, given) or not judge(kind, case, expected, found, inputs=inputs, mistakes=mistakes)[0]:
            return False
    return True


def inputs_changed_by(name, namespace=None):
    """The names of the input arrays (``["x"]``) that the student's code changes in place on
    the visible cases of check ``name`` (run quietly), sorted; [] when none, or when nothing is
    implemented yet or the calls raise (the check reports those).

    The gradient-check cells pass it to ``report_gradient_errors``: a forward pass whose outputs
    pass its check but that changes its input (``x -= mean``) gets the same note under its check,
    and the verdict of the numerical gradient, which perturbs that input and calls the forward
    pass again, names it instead of saying the forward pass fails its check."""
    kind = get_check(name)
    if namespace is None:
        namespace = sys._getframe(1).f_globals
    changed = set()
    for case in _visible_cases(name):
        inputs, _, _ = case_data(name, case)
        given = _copy_inputs(inputs)
        try:
            kind.call(namespace, given)
        except Exception:  # noqa: BLE001 - not implemented or raising: the check says so
            continue
        changed.update(changed_inputs(inputs, given))
    return sorted(changed)


def _copy_inputs(inputs):
    return {k: np.array(v, copy=True) for k, v in inputs.items()}


def changed_inputs(inputs, given):
    """The names of the input arrays that the student's code changed in place: ``given`` holds
    the copies it was called with, ``inputs`` the originals."""
    changed = []
    for key, before in inputs.items():
        if key not in given:
            continue
        after, before = np.asarray(given[key]), np.asarray(before)
        if before.dtype.kind in "biuf" and not (after.shape == before.shape and after.dtype == before.dtype
                                                 and np.array_equal(after, before, equal_nan=before.dtype.kind == "f")):
            changed.append(key)
    return changed


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
        inputs, expected, mistakes = case_data(name, case)
        label = f"{name} case {number}/{len(cases)} ({kind.describe(case)})"
        start = time.perf_counter()
        given = _copy_inputs(inputs)
        try:
            found = kind.call(namespace, given)
        except NotImplementedError:
            print(f"{label}: NOT IMPLEMENTED yet")
            not_implemented += 1
            continue
        except Exception as exc:
            frames = traceback.extract_tb(exc.__traceback__)
            where = next((f for f in reversed(frames) if not _is_harness_file(f.filename)), frames[-1])
            print(f"{label}: ERROR {type(exc).__name__}: {exc} (line {where.lineno} of {where.name})")
            continue
        elapsed = time.perf_counter() - start
        ok, lines, hints, _ = judge(kind, case, expected, found, inputs=inputs, mistakes=mistakes)
        passed_count += ok
        print(f"{label}: {'PASSED' if ok else 'WRONG'} in {elapsed * 1e3:.0f} ms")
        for line in lines:
            print(f"    {line}")
        for hint in hints:
            print(f"    hint: {hint}")
        # the grade comes from the outputs alone; this note is for the notebook's own cells
        for key in changed_inputs(inputs, given):
            print(f"    note: {INPUT_CHANGED.format(key=key)}")
    total = len(cases)
    if passed_count == total:
        print(f"All {total} visible cases of {name} passed. More cases run when your notebook is graded.")
    elif raise_on_failure and not_implemented == total:
        raise NotImplementedError(f"{name} is not implemented yet")
    elif raise_on_failure:
        raise AssertionError(f"{name}: {passed_count} of {total} visible cases passed (details above)")


def _is_harness_file(filename):
    here = str(Path(__file__).resolve().parent)
    return filename.startswith(here) or "autograder" in filename
