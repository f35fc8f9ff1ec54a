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
    """What a trusted check adds to its student-kit check (mixed in first)."""

    def rng(self, case):
        return np.random.default_rng(int(case.get("seed", 0)))

    def make_inputs(self, case):
        """Return ``dict[str, np.ndarray]`` (scalars as 0-d arrays) built from ``case``."""
        raise NotImplementedError

    def reference(self, inputs):
        """Return ``dict[str, np.ndarray]``: the correct outputs computed with cs231n_lib."""
        raise NotImplementedError

    def mistakes(self, case, inputs):
        """Known mistakes of this case: ``[(hint, {output: array})]`` (fixed-text hints)."""
        return []
