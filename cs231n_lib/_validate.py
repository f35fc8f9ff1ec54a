"""Input checks shared by every layer: one place for the wording of shape and dtype errors.

Errors are for people: each says what was expected and what was found.
"""

import numpy as np

FLOAT_DTYPES = (np.float32, np.float64)


def float_array(name, a, ndim=None):
    """Return ``a`` as a float32/float64 ndarray (no copy when it already is one).

    Integer and other inputs become float64; float16 becomes float32. Raises ``ValueError`` when
    ``ndim`` is given and does not match.
    """
    a = np.asarray(a)
    if a.dtype not in FLOAT_DTYPES:
        if not (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_):
            raise ValueError(f"{name} must hold numbers; found dtype {a.dtype}")
        a = a.astype(np.float32 if a.dtype == np.float16 else np.float64)
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions; found shape {a.shape} ({a.ndim} dimensions)")
    return a


def same_dtype(dtype, **arrays):
    """Cast every array to ``dtype`` so that a layer returns the dtype of its main input."""
    return {k: (v if v.dtype == dtype else v.astype(dtype)) for k, v in arrays.items()}


def require_shape(name, a, expected):
    """Raise unless ``a.shape == expected`` (a ``None`` entry in ``expected`` matches any size)."""
    shape = tuple(a.shape)
    if len(shape) != len(expected) or any(e is not None and e != s for e, s in zip(expected, shape)):
        shown = tuple("?" if e is None else e for e in expected)
        raise ValueError(f"{name} must have shape {shown}; found {shape}")


def _whole_number(value):
    """``value`` as an int when it is a whole number (not a bool, string, None, inf or nan), else None."""
    if isinstance(value, (bool, np.bool_, str, bytes)) or value is None:
        return None
    try:
        whole = int(value)
        return whole if whole == value else None
    except (TypeError, ValueError, OverflowError):
        return None


def positive_int(name, value):
    """Return ``value`` as a Python int, raising ``ValueError`` unless it is an integer >= 1."""
    whole = _whole_number(value)
    if whole is None or whole < 1:
        raise ValueError(f"{name} must be a positive integer; found {value!r}")
    return whole


def nonnegative_int(name, value):
    """Return ``value`` as a Python int, raising ``ValueError`` unless it is an integer >= 0."""
    whole = _whole_number(value)
    if whole is None or whole < 0:
        raise ValueError(f"{name} must be a non-negative integer; found {value!r}")
    return whole


def real_number(name, value):
    """Return ``value`` as a float, raising ``ValueError`` naming ``name`` unless it is a finite real number."""
    if isinstance(value, (bool, np.bool_, str, bytes)) or value is None:
        raise ValueError(f"{name} must be a number; found {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{name} must be a number; found {value!r}") from None
    if not np.isfinite(number):
        raise ValueError(f"{name} must be finite; found {value!r}")
    return number
