"""Numerical gradients by central differences, and the relative error used to compare them.

A backward pass is checked by comparing its analytic gradient with ``(f(x + h) - f(x - h)) / 2h``
evaluated one coordinate at a time. Use float64: in float32 the rounding of f swamps the
difference for any useful h.
"""

import numpy as np

from ._validate import float_array


def eval_numerical_gradient(f, x, verbose=False, h=1e-5):
    """Numerical gradient of a scalar function ``f`` at ``x``.

    Inputs:
    - f: function taking the array x and returning a number
    - x: array (float32 or float64) at which to evaluate the gradient; it is perturbed in
      place one entry at a time and restored exactly afterwards
    - verbose: print every coordinate and its gradient
    - h: step of the central difference

    Returns grad, an array of the shape and dtype of x.
    """
    _check_step(h)
    _check_perturbable(x)
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=["readonly"])
    while not it.finished:
        ix = it.multi_index
        old = x[ix]
        try:
            x[ix] = old + h
            f_plus = float(f(x))
            x[ix] = old - h
            f_minus = float(f(x))
        finally:
            x[ix] = old
        grad[ix] = (f_plus - f_minus) / (2 * h)
        if verbose:
            print(ix, grad[ix])
        it.iternext()
    return grad


def eval_numerical_gradient_array(f, x, df, h=1e-5):
    """Numerical gradient of ``sum(f(x) * df)`` with respect to ``x``, for array-valued ``f``.

    This is what a backward pass computes when ``df`` is the upstream gradient.

    Inputs:
    - f: function taking the array x and returning an array of the shape of df
    - x: array at which to evaluate; perturbed in place one entry at a time and restored
    - df: upstream gradient, shape of f(x)
    - h: step of the central difference

    Returns grad, an array of the shape and dtype of x.
    """
    _check_step(h)
    _check_perturbable(x)
    df = float_array("df", df)
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=["readonly"])
    while not it.finished:
        ix = it.multi_index
        old = x[ix]
        try:
            x[ix] = old + h
            f_plus = np.array(f(x), dtype=np.float64)  # a copy: f may return a view it reuses
            x[ix] = old - h
            f_minus = np.array(f(x), dtype=np.float64)
        finally:
            x[ix] = old
        if f_plus.shape != df.shape:
            raise ValueError(f"f(x) has shape {f_plus.shape} but df has shape {df.shape}; they must match")
        grad[ix] = np.sum((f_plus - f_minus) * df) / (2 * h)
        it.iternext()
    return grad


def rel_error(x, y):
    """Largest relative error between two arrays of the same shape.

    ``max |x - y| / max(1e-8, |x| + |y|)``, elementwise, then the maximum over all entries.
    Raises ``ValueError`` naming both shapes when they differ (no broadcasting).
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"rel_error needs arrays of the same shape; found {x.shape} and {y.shape}")
    if x.size == 0:
        return 0.0
    return float(np.max(np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y))))


def report_gradient_errors(errors, tolerance, look_at="", forward="", forward_ok=None, forward_changes=()):
    """Print each gradient's relative error, then one verdict line: ``OK: ...`` or ``MISMATCH: ...``.

    Inputs:
    - errors: dict {gradient name: relative error against the numerical gradient}, non-empty
    - tolerance: the largest error that counts as a match
    - look_at: the function to look at when a gradient does not match (the backward pass)
    - forward, forward_ok: the forward pass the numerical gradient comes from, and whether it
      passes its own visible check (True, False, or None when unknown). When it does not, the
      verdict says to fix the forward pass first rather than pointing at ``look_at``.
    - forward_changes: the names of the inputs the forward pass changes in place (``["x"]``
      for ``x -= mean``; its outputs may still pass its check). The numerical gradient perturbs
      them and calls the forward pass again, so the verdict names that first.

    Returns True when every error is below ``tolerance``.
    """
    if not errors:
        raise ValueError("errors must name at least one gradient; found none")
    for name, error in errors.items():
        print(f"{name}: relative error {error:.2e}")
    worst = max(errors, key=errors.get)
    if errors[worst] < tolerance:
        print(f"OK: {', '.join(errors)} match the numerical gradients "
              f"(largest relative error {errors[worst]:.1e} < {tolerance:.0e})")
        return True
    where = f": look at {look_at}" if look_at else ""
    if forward and forward_changes:
        names = " and ".join(forward_changes)
        where = (f": the forward pass {forward} changes its input {names} in place (see the note under its check), "
                 f"and the numerical gradient perturbs {names} and calls it again: make {forward} work on a copy first")
    elif forward and forward_ok is False:
        where = (f": the forward pass {forward} fails its own check, and the numerical gradient is computed "
                 f"from it: fix {forward} first")
    elif forward and forward_ok and look_at:
        where = f": {forward} passes its check, so look at {look_at}"
    print(f"MISMATCH: {worst} differs from the numerical gradient (relative error {errors[worst]:.1e}, "
          f"expected < {tolerance:.0e})" + where)
    return False


def _check_step(h):
    if not (np.isfinite(h) and h > 0):
        raise ValueError(f"h (finite-difference step) must be a positive number; found {h!r}")


def _check_perturbable(x):
    if not isinstance(x, np.ndarray) or x.dtype not in (np.float32, np.float64):
        found = x.dtype if isinstance(x, np.ndarray) else type(x).__name__
        raise ValueError(f"x must be a float32 or float64 ndarray (it is perturbed in place); found {found}")
    if not x.flags.writeable:
        raise ValueError("x must be writeable: it is perturbed in place and restored")
