"""The conditioning guard of ``cs231n-grade release``: every case's reference must be trustworthy.

A case is graded against the reference computed in the case's own dtype. When that reference is
itself far from the exact answer (cancellation in float32, a degenerate shape), correct student
code that orders its operations differently fails. Before a release, every case of every test
cell (visible and hidden) is computed again in float64 (from the same inputs) and, where the
trusted check has one, by a second, independent implementation (``second_reference``); a case
whose references disagree by more than a tenth of its tolerance stops the release with one line
naming it.
"""

import nbformat
import numpy as np

from cs231n_checks.compare import relative_error

from .checks import get_check
from .testspec import parse_test_cell

#: the part of a case's tolerance its references may disagree by
SHARE_OF_TOLERANCE = 0.1


class ConditioningError(ValueError):
    """A case whose references disagree: the instructor's to fix (change the case)."""


def _as_float64(inputs):
    return {k: np.asarray(v, dtype=np.float64) if np.asarray(v).dtype.kind == "f" else np.array(v, copy=True)
            for k, v in inputs.items()}


def reference_disagreements(check, case):
    """``[(what, output, relative difference)]`` of one case's references that disagree by more
    than ``SHARE_OF_TOLERANCE`` of its tolerance."""
    tolerance = check.tolerance_for(case)
    inputs = check.make_inputs(case)
    reference = check.reference({k: np.array(v, copy=True) for k, v in inputs.items()})
    others = []
    if check.dtype_of(case) != np.float64:
        others.append(("float64", check.reference(_as_float64(inputs))))
    second = check.second_reference(_as_float64(inputs))
    if second is not None:
        others.append(("a second order of operations", second))
    found = []
    for what, other in others:
        for key, want in reference.items():
            want = np.asarray(want)
            if key not in other or want.dtype.kind != "f":
                continue
            got = np.asarray(other[key], dtype=np.float64)
            if got.shape != want.shape:
                found.append((what, key, float("inf")))
                continue
            error = relative_error(want, got)
            if error > SHARE_OF_TOLERANCE * max(tolerance, 1e-12):
                found.append((what, key, error))
    return found


def notebook_problems(notebook_path):
    """One line per ill-conditioned case of a source notebook (empty when all are sound)."""
    nb = nbformat.read(str(notebook_path), as_version=4)
    problems = []
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code" or not meta.get("grade"):
            continue
        for call in parse_test_cell(cell.source):
            check = get_check(call.name)
            for case in call.cases:
                for what, key, error in reference_disagreements(check, case):
                    kind = "hidden" if call.hidden else "visible"
                    problems.append(
                        f"{notebook_path.name}: {kind} case {case} of {call.name} (test cell {meta.get('grade_id')}): "
                        f"its {key} in {case.get('dtype', 'float64')} and by {what} differ by {error:.1e} relative, "
                        f"more than a tenth of its tolerance {check.tolerance_for(case):.0e}: change the case")
    return problems


def require_well_conditioned(notebook_path):
    """Raise ``ConditioningError`` (its message: the first bad case, one line) when a case of the
    notebook has references that disagree."""
    problems = notebook_problems(notebook_path)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ConditioningError(problems[0] + more)
