"""Tests of cs231n_lib.gradient_check on functions whose gradients are known in closed form."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cs231n_lib.gradient_check import eval_numerical_gradient, eval_numerical_gradient_array, rel_error

FAST = settings(max_examples=25, deadline=None)
seeds = st.integers(0, 2**32 - 1)
shapes = st.lists(st.integers(1, 4), min_size=1, max_size=3)


@FAST
@given(seed=seeds, shape=shapes)
def test_scalar_gradient_of_known_function(seed, shape):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    a = rng.standard_normal(shape)
    before = x.copy()
    # f(x) = sum(a * x**3) + sum(sin(x)), gradient 3 a x**2 + cos(x)
    grad = eval_numerical_gradient(lambda v: np.sum(a * v**3) + np.sum(np.sin(v)), x)
    np.testing.assert_array_equal(x, before)  # restored exactly
    assert grad.shape == x.shape and grad.dtype == x.dtype
    # central differences: error about eps * |f| / h + h**2 * |f'''| / 6, absolute
    np.testing.assert_allclose(grad, 3 * a * x**2 + np.cos(x), rtol=1e-7, atol=1e-8)


@FAST
@given(seed=seeds, shape=shapes)
def test_array_gradient_of_known_function(seed, shape):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    df = rng.standard_normal(shape)
    before = x.copy()
    # f(x) = exp(x) elementwise: gradient of sum(f * df) is exp(x) * df
    grad = eval_numerical_gradient_array(np.exp, x, df)
    np.testing.assert_array_equal(x, before)
    np.testing.assert_allclose(grad, np.exp(x) * df, rtol=1e-7, atol=1e-8)


def test_array_gradient_with_differently_shaped_output():
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    w = np.array([[1.0, -1.0, 2.0], [0.5, 0.0, 1.0]])
    df = np.array([[1.0, 2.0, 3.0], [-1.0, 0.0, 1.0]])
    grad = eval_numerical_gradient_array(lambda v: v @ w, x, df)
    np.testing.assert_allclose(grad, df @ w.T, rtol=1e-8)


def test_float32_input_gives_float32_gradient():
    x = np.array([1.0, -2.0, 0.5], dtype=np.float32)
    grad = eval_numerical_gradient(lambda v: float(np.sum(v.astype(np.float64) ** 2)), x, h=1e-2)
    assert grad.dtype == np.float32
    np.testing.assert_allclose(grad, 2 * x, rtol=1e-3)


def test_x_is_restored_when_f_raises():
    x = np.array([1.0, 2.0])

    def f(v):
        if v[0] != 1.0:
            raise RuntimeError("boom")
        return 0.0

    with pytest.raises(RuntimeError):
        eval_numerical_gradient(f, x)
    np.testing.assert_array_equal(x, [1.0, 2.0])


def test_verbose_prints_each_coordinate(capsys):
    eval_numerical_gradient(lambda v: float(np.sum(v)), np.zeros((2, 1)), verbose=True)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("(0, 0)")


def test_rel_error_values():
    assert rel_error(np.array([1.0, 2.0]), np.array([1.0, 2.0])) == 0.0
    assert rel_error(np.array([1.0]), np.array([3.0])) == pytest.approx(0.5)
    assert rel_error(np.array([0.0]), np.array([1e-10])) == pytest.approx(1e-2)  # floor of 1e-8
    assert rel_error(np.array([[1.0, 0.0], [2.0, 1.0]]), np.array([[1.0, 0.0], [1.0, 1.0]])) == pytest.approx(1 / 3)


def test_rel_error_refuses_to_broadcast():
    with pytest.raises(ValueError, match=r"\(3,\).*\(1, 3\)"):
        rel_error(np.zeros(3), np.zeros((1, 3)))
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(3, 2\)"):
        rel_error(np.zeros((2, 3)), np.zeros((3, 2)))


def test_bad_arguments():
    with pytest.raises(ValueError, match="h"):
        eval_numerical_gradient(np.sum, np.zeros(2), h=0)
    with pytest.raises(ValueError, match="float32 or float64.*int64"):
        eval_numerical_gradient(np.sum, np.zeros(2, dtype=np.int64))
    with pytest.raises(ValueError, match=r"\(2,\).*\(3,\)"):
        eval_numerical_gradient_array(lambda v: v, np.zeros(2), np.zeros(3))


def test_report_gradient_errors_prints_each_error_and_one_verdict(capsys):
    from cs231n_lib.gradient_check import report_gradient_errors

    assert report_gradient_errors({"dx": 3e-9, "dw": 8e-8}, 1e-7) is True
    assert capsys.readouterr().out.splitlines() == [
        "dx: relative error 3.00e-09", "dw: relative error 8.00e-08",
        "OK: dx, dw match the numerical gradients (largest relative error 8.0e-08 < 1e-07)"]
    assert report_gradient_errors({"dx": 3e-9, "db": 0.5}, 1e-7, look_at="conv_backward_naive") is False
    assert capsys.readouterr().out.splitlines()[-1] == (
        "MISMATCH: db differs from the numerical gradient (relative error 5.0e-01, expected < 1e-07): "
        "look at conv_backward_naive")
    with pytest.raises(ValueError, match="at least one gradient"):
        report_gradient_errors({}, 1e-7)
