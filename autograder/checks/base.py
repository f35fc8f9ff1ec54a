"""The trusted side of the graded checks: inputs, references and known mistakes.

Each graded function has one check in the student kit (``cs231n_checks``: how to call the
student's function and describe a case) and one here, subclassing it with what only the
instructor's side may hold:

- ``make_inputs(case)``: deterministic input arrays from the case (seeds stay here);
- ``reference(inputs)``: the right answer, computed with ``cs231n_lib``;
- ``mistakes(case, inputs)``: the outputs of known mistakes on the same inputs, as
  ``[(hint, {output: array})]``; when a wrong result matches one, the verdict names it. For the
  visible cases they are precomputed into the student kit with the expected outputs.

The grader builds the inputs here, the kernel runs only ``call`` on them, and the outputs are
judged here with ``judge`` (the same code as the student's visible check).
"""

import numpy as np

from cs231n_checks.base import MISSING, is_fixed_hint, judge  # noqa: F401  (the grader's names for them)
from cs231n_checks.base import check as visible_check

CHECKS = {}


def register(cls):
    """Class decorator: add a trusted check to the grader's registry under ``cls.name``."""
    if not cls.name or cls.name in CHECKS:
        raise ValueError(f"check name {cls.name!r} is empty or registered twice")
    CHECKS[cls.name] = cls()
    return cls


def get_check(name):
    try:
        return CHECKS[name]
    except KeyError:
        raise ValueError(f"no check named {name!r}; known checks: {', '.join(sorted(CHECKS))}") from None


def check(name, cases, namespace=None, raise_on_failure=True):
    """The notebook's visible check, run in the instructor's environment (references computed
    here instead of read from a student kit's data)."""
    import sys

    if namespace is None:
        namespace = sys._getframe(1).f_globals
    return visible_check(name, cases, namespace=namespace, raise_on_failure=raise_on_failure)


class Trusted:
    """What a trusted check adds to its student-kit check (mixed in first).

    ``catalogue`` lists the hints of the known mistakes ``mistakes`` may name: they are fixed text,
    so hidden cases show them too (they join the student-kit check's ``fixed_hints``).
    """

    catalogue = ()

    @property
    def fixed_hints(self):
        return tuple(dict.fromkeys(tuple(super().fixed_hints) + tuple(self.catalogue)))

    def rng(self, case):
        return np.random.default_rng(int(case.get("seed", 0)))

    def make_inputs(self, case):
        """Return ``dict[str, np.ndarray]`` (scalars as 0-d arrays) built from ``case``."""
        raise NotImplementedError

    def reference(self, inputs):
        """Return ``dict[str, np.ndarray]``: the correct outputs computed with cs231n_lib."""
        raise NotImplementedError

    def mistakes(self, case, inputs):
        """Known mistakes of this case: ``[(hint, {output: array})]`` (fixed-text hints).

        Subclasses list them in ``variants(case, inputs)`` as ``(hint, outputs or None)``; a
        variant that cannot run on the case (None) is left out, and every hint must be in
        ``catalogue``.
        """
        found = []
        for hint, outputs in self.variants(case, inputs):
            if hint not in self.catalogue:
                raise ValueError(f"{self.name}: the mistake {hint!r} is not in the check's catalogue")
            if outputs is None or any(v is None for v in outputs.values()):
                continue
            outputs = {k: np.asarray(v) for k, v in outputs.items()}
            # two ways to the same mistake with the same outputs on this case: stored once. (Two
            # different mistakes that give the same outputs are both kept: both are then named,
            # since the outputs cannot tell them apart.)
            if not any(earlier_hint == hint and _same_outputs(outputs, earlier) for earlier_hint, earlier in found):
                found.append((hint, outputs))
        return found

    def variants(self, case, inputs):
        """``[(hint, {output: array} or None)]``: the outputs of each known mistake on ``inputs``."""
        return []

    def second_reference(self, inputs):
        """The right outputs by a second, independent order of operations (float64 NumPy, the
        catalogue's code with no mistake switched on), or None where there is none. Used by the
        conditioning guard at release (``autograder.conditioning``)."""
        return None


def _same_outputs(a, b):
    if a.keys() != b.keys():
        return False
    for key in a:
        x, y = a[key], b[key]
        if x.shape != y.shape or x.dtype.kind != y.dtype.kind:
            return False
        if x.dtype.kind == "U":
            if not np.array_equal(x, y):
                return False
        elif not np.allclose(x, y, rtol=1e-9, atol=1e-12):
            return False
    return True
