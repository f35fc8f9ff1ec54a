"""The one array comparison of the kit: student result against reference result.

Used in two places with the same code: the visible checks in a student's notebook, and the
trusted grading process. It coerces what it is given to plain ndarrays first (so objects with
clever ``__eq__`` or ``__array_function__`` gain nothing), checks shape, dtype and finiteness,
measures the error, and derives a hint that localises the mistake where one can be derived.

Nothing it reports reveals reference values: only shapes, dtypes, error sizes, index
positions and patterns.

Every comparison also carries a *limited* message, built from fixed words only (``exact match``,
``within tolerance``, ``as expected``, ``wrong values``, ``wrong value``, ``wrong shape``,
``wrong dtype``, ``not finite``, ``not an array``) plus, when the expected side may be shown,
facts about the expected value (its shape, dtype, the tolerance). Nothing in it comes from the
student's output, so the student's code cannot use it to carry data out: the grader shows it for
hidden cases and for every case that runs after one (see the grader's engine). Hints follow the
same rule through ``FIXED_HINTS``: the hints that are the same text whatever the output was.
"""

import re
from dataclasses import dataclass, field

import numpy as np

# A result passes when its relative error is at most this, by the dtype the check ran in.
DEFAULT_TOLERANCE = {"float64": 1e-8, "float32": 2e-4}

# Hints that are fixed text (nothing in them comes from the outputs compared): the only hints of
# this module that a limited verdict keeps.
AXIS_ORDER = "same sizes in a different order: check the axis order (NCHW) or a transpose"
OUTPUT_SIZE_RULE = ("the spatial size (H, W) differs: check the output size (H - F + 2P)/S + 1, with the "
                    "layer's filter size F, stride S and padding P")
GRADIENT_SHAPE = "a gradient has the shape of what it is the gradient of (dx like x, dw like w, db like b)"
BORDER = "only the border rows and columns are wrong (the interior is right): look at the padding"
LAST_ROWS_COLUMNS = "only the last rows or columns are wrong (the rest is right): look at where the loops stop"
FIRST_ROWS_COLUMNS = "only the first rows or columns are wrong (the rest is right): look at where the loops start"
EVERY_OTHER_COLUMN = "only every other column is wrong (the others are right): look at the stride along the width"
EVERY_OTHER_ROW = "only every other row is wrong (the others are right): look at the stride along the height"
SOME_CHANNELS = "only some channels (axis 1) are wrong, the others are right"
SOME_SAMPLES = "only some samples (axis 0) are wrong, the others are right"
ALL_ZERO = "every entry is zero: is the function still returning its initial value?"
SIGN_FLIPPED = "the sign is flipped"
CONSTANT_OFFSET = "off by a constant: look at the bias or a mean subtraction"
CHANNEL_OFFSET = "off by a constant per channel/filter (axis 1): look at the bias"
TRANSPOSED = "the last two axes look transposed"
NOT_FINITE = "look for a division by zero or an overflow (exp of a large number?)"
LOW_PRECISION = ("the result has a smaller float type than the inputs (float32 for float64 ones), so it is right only "
                 "to that type's precision: keep the inputs' dtype, e.g. np.zeros(shape, dtype=x.dtype)")
INTEGER_RESULT = ("the result is an array of integers, which drops the fractions: create it with the inputs' dtype, "
                  "e.g. np.zeros(shape, dtype=x.dtype), not dtype=int")
# the offsets of dx, the gradient of the input: no bias reaches it, a shared term does
DX_SAMPLE_OFFSET = ("off by a constant per sample (axis 0): look at a term every entry of a sample shares, such as "
                    "the gradient through a mean taken over the sample")
DX_CHANNEL_OFFSET = ("off by a constant per channel/feature (axis 1): look at a term the whole batch shares, such as "
                     "the gradient through the batch mean")
PER_FEATURE_GRADIENT = ("a bias or scale gradient (db, dbeta, dgamma) has one entry per filter or feature: sum over "
                        "every other axis, the samples (and the positions for spatial inputs)")
#: the location hints that speak of a layer's geometry: the padding, and where its windows go
PADDING_HINTS = frozenset({BORDER})
WINDOW_HINTS = frozenset({LAST_ROWS_COLUMNS, FIRST_ROWS_COLUMNS, EVERY_OTHER_COLUMN, EVERY_OTHER_ROW})
FIXED_HINTS = frozenset({AXIS_ORDER, OUTPUT_SIZE_RULE, GRADIENT_SHAPE, PER_FEATURE_GRADIENT, BORDER, LAST_ROWS_COLUMNS,
                         FIRST_ROWS_COLUMNS, EVERY_OTHER_COLUMN, EVERY_OTHER_ROW, SOME_CHANNELS, SOME_SAMPLES, ALL_ZERO,
                         SIGN_FLIPPED, CONSTANT_OFFSET, CHANNEL_OFFSET, TRANSPOSED, NOT_FINITE, LOW_PRECISION,
                         INTEGER_RESULT, DX_SAMPLE_OFFSET, DX_CHANNEL_OFFSET})


def is_gradient(output):
    """True for an output that is a gradient (dx, dw, db, dgamma, dbeta, dW1, db2, ...)."""
    return re.fullmatch(r"d(x|w|W|b|gamma|beta)\d*", output) is not None

#: the note of a result accepted under the shape policy (fixed words: it may be shown for any case)
SHAPE_ACCEPTED = "shape accepted: it differs from the expected one only by axes of size 1"


def singleton_reshape(expected_shape, found_shape):
    """True when two shapes differ only by axes of size 1 and hold one vector at most: (D,)
    against (1, D), (C,) against (1, C, 1, 1). The shape policy accepts such a result when its
    values are right (a per-feature vector kept with ``keepdims=True`` is an implementation choice)."""
    expected_shape, found_shape = tuple(expected_shape), tuple(found_shape)
    if expected_shape == found_shape:
        return False
    squeezed = tuple(s for s in expected_shape if s != 1)
    return squeezed == tuple(s for s in found_shape if s != 1) and len(squeezed) <= 1 and len(expected_shape) >= 1


@dataclass
class Comparison:
    """Outcome of comparing one output (e.g. ``dx``) of one case."""

    output: str
    passed: bool
    message: str
    rel_error: float | None = None
    hints: list = field(default_factory=list)
    #: the verdict in fixed words (plus facts about the expected value when they may be shown)
    limited: str = ""


def relative_error(expected, found):
    """Largest absolute difference divided by the largest magnitude of either array.

    Scale-aware: elements near zero do not blow the error up, which keeps float32 results of
    long sums (convolutions, batch statistics) comparable. 0.0 when both arrays are all zero.
    """
    expected = np.asarray(expected, dtype=np.float64)
    found = np.asarray(found, dtype=np.float64)
    if expected.size == 0:
        return 0.0
    scale = max(np.max(np.abs(expected)), np.max(np.abs(found)))
    if scale == 0.0:
        return 0.0
    return float(np.max(np.abs(expected - found)) / scale)


def coerce(value):
    """Turn a student's value into a plain ndarray of numbers, bools or strings.

    Returns ``(array, problem)``; ``problem`` is None when the value is usable, else a sentence
    saying what was found. Subclasses of ndarray are reduced to base ndarrays by copying.
    """
    if value is None:
        return None, "found None (did the function return its result?)"
    try:
        array = np.array(value, copy=True, subok=False)
    except Exception as exc:  # a hostile or broken object
        return None, f"found a {type(value).__name__} that cannot be turned into an array ({type(exc).__name__})"
    if type(array) is not np.ndarray:
        array = np.asarray(array).view(np.ndarray).copy()
    if array.dtype.kind not in "biufcU":
        return None, f"found an array of {array.dtype} ({type(value).__name__}), expected numbers"
    if array.dtype.kind == "c":
        return None, "found complex numbers, expected real numbers"
    return array, None


def compare_output(output, expected, found, tolerance, strict_dtype=False, reveal_expected=True):
    """Compare one named output; ``expected`` is trusted, ``found`` comes from the student.

    ``reveal_expected=False`` (hidden cases) keeps expected values out of the message: only
    non-numeric outputs (e.g. the name of an exception that should be raised) ever show one.
    """
    expected = np.asarray(expected)
    found, problem = coerce(found)

    def verdict(passed, message, words, about_expected="", rel_error=None, hints=()):
        limited = f"{output}: {words}" + (f" ({about_expected})" if about_expected and reveal_expected else "")
        return Comparison(output, passed, message, rel_error, list(hints), limited)

    if problem:
        return verdict(False, f"{output}: {problem}", "not an array")
    if expected.dtype.kind == "U" or found.dtype.kind == "U":
        ok = expected.dtype.kind == found.dtype.kind and expected.shape == found.shape and bool(np.all(expected == found))
        shown = found.item() if found.size == 1 else f"array of shape {found.shape}"
        want = expected.item() if expected.size == 1 else f"array of shape {expected.shape}"
        if ok:
            return verdict(True, f"{output}: as expected", "as expected")
        if not reveal_expected:
            return verdict(False, f"{output}: found {shown!r}, which is not the expected value", "wrong value")
        return verdict(False, f"{output}: expected {want!r}, found {shown!r}", "wrong value", f"expected {want!r}")
    if found.shape != expected.shape:
        hints = _shape_hints(expected.shape, found.shape, output)
        return verdict(False, f"{output}: expected shape {expected.shape}, found {found.shape}", "wrong shape",
                       f"expected {expected.shape}", hints=hints)
    notes = []
    if expected.dtype.kind == "f" and found.dtype != expected.dtype:
        if strict_dtype:
            return verdict(False, f"{output}: expected dtype {expected.dtype}, found {found.dtype}", "wrong dtype",
                           f"expected {expected.dtype}")
        notes.append(f"note: returned {found.dtype} for {expected.dtype} inputs")
    if expected.dtype.kind in "biu" and found.dtype.kind in "biu":
        wrong = int(np.count_nonzero(expected != found))
        ok = wrong == 0
        message = f"{output}: " + ("exact match" if ok else f"{wrong} of {expected.size} entries differ")
        hints = [] if ok else _location_hints(expected != found)
        return verdict(ok, message, "exact match" if ok else "wrong values", rel_error=0.0 if ok else 1.0, hints=hints)
    found64 = found.astype(np.float64)
    finite = np.isfinite(found64)
    if not finite.all():
        bad = np.argwhere(~finite)
        where = tuple(int(i) for i in bad[0])
        return verdict(False, f"{output}: {len(bad)} of {found.size} entries are NaN or infinite (first at index {where})",
                       "not finite", hints=[NOT_FINITE])
    err = relative_error(expected, found64)
    ok = err <= tolerance
    detail = f"relative error {err:.2e} (tolerance {tolerance:.0e})"
    if ok:
        return verdict(True, f"{output}: {detail}" + (f"; {notes[0]}" if notes else ""), "within tolerance", rel_error=err)
    hints = _dtype_hints(expected, found, err) or _value_hints(np.asarray(expected, dtype=np.float64), found64, tolerance,
                                                               output)
    diff = np.abs(np.asarray(expected, dtype=np.float64) - found64)
    where = tuple(int(i) for i in np.unravel_index(int(np.argmax(diff)), diff.shape)) if diff.ndim else ()
    message = f"{output}: {detail}; largest difference at index {where}" + "".join(f"; {n}" for n in notes)
    return verdict(False, message, "wrong values", f"relative error above the tolerance {tolerance:.0e}",
                   rel_error=err, hints=hints)


def _shape_hints(expected, found, output=""):
    hints = []
    if re.fullmatch(r"d(b|beta|gamma)\d*", output) and sum(size != 1 for size in expected) <= 1:
        # a per-feature vector in another shape (the shape policy took those that differ only by axes of
        # size 1): its sum ran over other axes, too few of them, or all of them
        hints.append(PER_FEATURE_GRADIENT)
    elif sorted(expected) == sorted(found):
        hints.append(AXIS_ORDER)
    elif len(expected) == len(found) == 4 and expected[:2] == found[:2]:
        # a gradient's size is its variable's, not the result of the output-size rule
        hints.append(GRADIENT_SHAPE if is_gradient(output) else OUTPUT_SIZE_RULE)
    elif len(expected) != len(found):
        hints.append(f"expected {len(expected)} dimension{'' if len(expected) == 1 else 's'}, found {len(found)}: "
                     "check a reshape")
    return hints


def _only(mask_bad, mask_region):
    """True when every wrong entry lies in the region and the region holds at least one."""
    return bool(mask_bad.any() and not (mask_bad & ~mask_region).any())


def _location_hints(bad):
    """Where the wrong entries sit (``bad`` is a boolean mask), said only when it is true: each
    hint states that the wrong entries are exactly in one place and the rest is right."""
    hints = []
    if bad.ndim < 2 or not bad.any():
        return hints
    H, W = bad.shape[-2], bad.shape[-1]
    planes = bad.reshape(-1, H, W)
    rows_bad, cols_bad = planes.any(axis=(0, 2)), planes.any(axis=(0, 1))
    if bad.ndim == 4 and H >= 3 and W >= 3:
        border = np.ones((H, W), bool)
        border[1:-1, 1:-1] = False
        if _only(planes, border[None]):
            # the last rows/columns only (a window or a loop that stops early) or the first ones only (a
            # loop that starts late) is not the padding, which changes the windows on both sides
            last, first = np.zeros((H, W), bool), np.zeros((H, W), bool)
            last[-1, :] = last[:, -1] = True
            first[0, :] = first[:, 0] = True
            hints.append(LAST_ROWS_COLUMNS if _only(planes, last[None]) else
                         FIRST_ROWS_COLUMNS if _only(planes, first[None]) else BORDER)
    if bad.ndim == 4 and W >= 4:
        for start in (0, 1):
            if cols_bad[start::2].all() and not cols_bad[1 - start::2].any():
                hints.append(EVERY_OTHER_COLUMN)
    if bad.ndim == 4 and H >= 4:
        for start in (0, 1):
            if rows_bad[start::2].all() and not rows_bad[1 - start::2].any():
                hints.append(EVERY_OTHER_ROW)
    if bad.ndim == 4 and not hints:
        channels = bad.any(axis=(0, 2, 3))
        samples = bad.any(axis=(1, 2, 3))
        if bad.shape[1] > 1 and not channels.all():
            hints.append(SOME_CHANNELS)
        elif bad.shape[0] > 1 and not samples.all():
            hints.append(SOME_SAMPLES)
    return hints


def _dtype_hints(expected, found, err):
    """A float result wrong only by the rounding of a smaller float type, or an integer result
    wrong only by the fractions it cannot hold: the dtype is the mistake, and where the rounding
    sits says nothing (so no other hint)."""
    if expected.dtype.kind != "f":
        return []
    if found.dtype.kind in "biu":
        want = expected.astype(np.float64)
        fractions = not np.array_equal(want, np.round(want))
        if fractions and float(np.max(np.abs(want - found.astype(np.float64)), initial=0.0)) < 1.0:
            return [INTEGER_RESULT]
        return []
    if found.dtype.kind == "f" and found.dtype.itemsize < expected.dtype.itemsize and \
            err <= min(1e3 * float(np.finfo(found.dtype).eps), 1e-2):
        return [LOW_PRECISION]
    return []


def _one_constant_per_row(rows, expected):
    """True when each row of ``rows`` (offsets found - expected, one row per sample or channel)
    holds one constant, and the constants are the difference rather than rounding noise around
    zero (a float32 result for float64 inputs has tiny offsets of no pattern)."""
    spread, size = float(np.ptp(rows, axis=1).max()), float(np.abs(rows).max())
    return size > 0 and spread <= 1e-6 * (1 + np.abs(expected).max()) and spread <= 1e-3 * size


def _value_hints(expected, found, tolerance, output=""):
    hints = []
    # an offset points at the bias of an output; dx has no bias, a shared term; other gradients neither
    sample_offset, channel_offset = ((DX_SAMPLE_OFFSET, DX_CHANNEL_OFFSET) if output == "dx" else
                                     (None, None) if is_gradient(output) else (CONSTANT_OFFSET, CHANNEL_OFFSET))
    if not found.any():
        return [ALL_ZERO]
    if np.allclose(found, -expected, rtol=0, atol=tolerance * max(np.abs(expected).max(), 1e-300)):
        return [SIGN_FLIPPED]
    denom = float(np.vdot(expected, expected))
    if denom > 0 and expected.size >= 2:  # any single number is "k times" another
        k = float(np.vdot(expected, found)) / denom
        if abs(k - 1) > 1e-3 and relative_error(k * expected, found) <= max(tolerance, 1e-6):
            return [f"the result is {k:.4g} times the expected one: look for a missing or extra scale factor"]
    offset = found - expected
    # a pattern needs at least two entries per sample (channel) to be one
    if sample_offset and offset.ndim >= 2 and offset.size >= 2 * offset.shape[0] and \
            _one_constant_per_row(offset.reshape(offset.shape[0], -1), expected):
        return [sample_offset]
    if channel_offset and expected.ndim >= 2 and offset.ndim >= 2 and offset.size >= 2 * offset.shape[1] and \
            _one_constant_per_row(offset.swapaxes(0, 1).reshape(offset.shape[1], -1), expected):
        return [channel_offset]
    if expected.ndim >= 2 and expected.shape[-1] == expected.shape[-2]:
        transposed, close = np.swapaxes(expected, -1, -2), max(tolerance, 1e-6)
        # the transpose must be another array (not a symmetric one, or one of 1 x 1 planes)
        if relative_error(transposed, found) <= close and relative_error(transposed, expected) > 100 * close:
            return [TRANSPOSED]
    scale = max(np.abs(expected).max(), np.abs(found).max())
    bad = np.abs(expected - found) > tolerance * scale
    hints.extend(_location_hints(bad))
    return hints
