"""Tests for cs231n_lib/pooling.py: max and average pooling, forward and backward.

Oracles: loop pooling (conftest), central-difference gradients, PyTorch.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from cs231n_lib.pooling import avg_pool_backward, avg_pool_forward, max_pool_backward, max_pool_forward
from cs231n_lib_testkit import (
    NUMERICAL_GRAD_TOL,
    avg_pool_backward_loops,
    max_pool_backward_loops,
    numerical_gradient,
    pool_forward_loops,
    pool_problems,
    rel_error,
    tolerance,
)

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _sizes(pool_param):
    return pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]


@FAST
@given(pool_problems())
def test_max_pool_matches_loops(problem):
    x, p = problem["x"], problem["pool_param"]
    out, cache = max_pool_forward(x, p)
    expected, where = pool_forward_loops(x, *_sizes(p), "max")
    assert out.dtype == problem["dtype"]
    np.testing.assert_array_equal(out, expected.astype(problem["dtype"]))  # max is exact
    dout = problem["rng"].standard_normal(out.shape).astype(problem["dtype"])
    dx = max_pool_backward(dout, cache)
    assert dx.dtype == problem["dtype"] and dx.shape == x.shape
    assert rel_error(dx, max_pool_backward_loops(dout, x.shape, where)) < tolerance(problem["dtype"])


@FAST
@given(pool_problems())
def test_avg_pool_matches_loops(problem):
    x, p = problem["x"], problem["pool_param"]
    out, cache = avg_pool_forward(x, p)
    assert out.dtype == problem["dtype"]
    assert rel_error(out, pool_forward_loops(x, *_sizes(p), "avg")) < tolerance(problem["dtype"])
    dout = problem["rng"].standard_normal(out.shape).astype(problem["dtype"])
    dx = avg_pool_backward(dout, cache)
    assert dx.dtype == problem["dtype"] and dx.shape == x.shape
    assert rel_error(dx, avg_pool_backward_loops(dout, x.shape, *_sizes(p))) < tolerance(problem["dtype"])


# The edge cases the library must get right, always run (hypothesis only draws them by chance).
POOL_EDGE_CASES = {
    "overlapping 3x3 windows, stride 2": ((2, 3, 7, 7), 3, 3, 2),
    "window as large as the input": ((2, 2, 4, 5), 4, 5, 1),
    "stride larger than the window": ((1, 2, 8, 8), 2, 2, 3),
    "1x1 windows": ((2, 2, 3, 3), 1, 1, 1),
    "batch of one, non-square window": ((1, 1, 7, 6), 3, 2, 2),
}


@pytest.mark.parametrize("name", list(POOL_EDGE_CASES))
@pytest.mark.parametrize("mode", ["max", "avg"])
def test_pooling_edge_cases_match_loops(name, mode):
    shape, ph, pw, stride = POOL_EDGE_CASES[name]
    rng = np.random.default_rng(len(name))
    x = rng.permutation(np.arange(np.prod(shape), dtype=np.float64) / 8).reshape(shape)  # no ties
    p = {"pool_height": ph, "pool_width": pw, "stride": stride}
    forward, backward = (max_pool_forward, max_pool_backward) if mode == "max" else (avg_pool_forward, avg_pool_backward)
    out, cache = forward(x, p)
    dout = rng.standard_normal(out.shape)
    if mode == "max":
        expected, where = pool_forward_loops(x, ph, pw, stride, "max")
        expected_dx = max_pool_backward_loops(dout, shape, where)
    else:
        expected = pool_forward_loops(x, ph, pw, stride, "avg")
        expected_dx = avg_pool_backward_loops(dout, shape, ph, pw, stride)
    assert out.shape == expected.shape and rel_error(out, expected) < 1e-12
    assert rel_error(backward(dout, cache), expected_dx) < 1e-12


@SLOW
@given(pool_problems(max_batch=2, max_channels=2, dtypes=(np.float64,)))
def test_backward_matches_numerical_gradients(problem):
    x, p = problem["x"], problem["pool_param"]
    for forward, backward in [(max_pool_forward, max_pool_backward), (avg_pool_forward, avg_pool_backward)]:
        out, cache = forward(x, p)
        dout = problem["rng"].standard_normal(out.shape)
        dx = backward(dout, cache)
        expected = numerical_gradient(lambda v, forward=forward: forward(v, p)[0], x.copy(), dout)
        assert rel_error(dx, expected) < NUMERICAL_GRAD_TOL, forward.__name__


@pytest.mark.oracle
@FAST
@given(problem=pool_problems(max_pool=3, max_out=5))
def test_match_pytorch(torch, problem):
    x, p = problem["x"], problem["pool_param"]
    kernel = (p["pool_height"], p["pool_width"])
    tol = tolerance(problem["dtype"])
    for ours_f, ours_b, theirs in [(max_pool_forward, max_pool_backward, torch.nn.functional.max_pool2d),
                                   (avg_pool_forward, avg_pool_backward, torch.nn.functional.avg_pool2d)]:
        out, cache = ours_f(x, p)
        dout = problem["rng"].standard_normal(out.shape).astype(problem["dtype"])
        dx = ours_b(dout, cache)
        xt = torch.tensor(x, requires_grad=True)
        out_t = theirs(xt, kernel, p["stride"])
        out_t.backward(torch.tensor(dout))
        assert rel_error(out, out_t.detach().numpy()) < tol
        assert rel_error(dx, xt.grad.numpy()) < tol


# ------------------------------------------------------------------------------------------
# ties, overlaps, NaN
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_ties_go_to_the_first_maximum_in_row_major_order(dtype):
    p = {"pool_height": 2, "pool_width": 2, "stride": 2}
    x = np.array([[[[1, 1, 0, 5],
                    [1, 1, 5, 5],
                    [2, 7, 3, 3],
                    [7, 7, 3, 1]]]], dtype=dtype)
    out, cache = max_pool_forward(x, p)
    np.testing.assert_array_equal(out, [[[[1, 5], [7, 3]]]])
    dx = max_pool_backward(np.array([[[[10, 20], [30, 40]]]], dtype=dtype), cache)
    expected = np.array([[[[10, 0, 0, 20],
                           [0, 0, 0, 0],
                           [0, 30, 40, 0],
                           [0, 0, 0, 0]]]], dtype=dtype)
    np.testing.assert_array_equal(dx, expected)
    assert dx.dtype == dtype


def test_overlapping_windows_accumulate_at_a_shared_maximum():
    """3x3 windows with stride 2: the centre column/row is shared; a peak there collects both."""
    x = np.zeros((1, 1, 3, 5))
    x[0, 0, 1, 2] = 9.0  # inside both windows
    out, cache = max_pool_forward(x, {"pool_height": 3, "pool_width": 3, "stride": 2})
    np.testing.assert_array_equal(out, [[[[9.0, 9.0]]]])
    dx = max_pool_backward(np.array([[[[1.5, 2.0]]]]), cache)
    expected = np.zeros_like(x)
    expected[0, 0, 1, 2] = 3.5
    np.testing.assert_array_equal(dx, expected)


def test_avg_pool_overlaps_add_up():
    x = np.zeros((1, 1, 3, 5))
    out, cache = avg_pool_forward(x, {"pool_height": 3, "pool_width": 3, "stride": 2})
    dx = avg_pool_backward(np.full((1, 1, 1, 2), 9.0), cache)
    np.testing.assert_allclose(dx[0, 0], [[1, 1, 2, 1, 1]] * 3)


def test_nan_in_a_window_is_its_maximum():
    x = np.array([[[[1.0, np.nan], [3.0, 2.0]]]])
    out, cache = max_pool_forward(x, {"pool_height": 2, "pool_width": 2, "stride": 2})
    assert np.isnan(out[0, 0, 0, 0])
    dx = max_pool_backward(np.ones((1, 1, 1, 1)), cache)
    np.testing.assert_array_equal(dx, [[[[0.0, 1.0], [0.0, 0.0]]]])


def test_known_average():
    x = np.arange(16.0, dtype=np.float32).reshape(1, 1, 4, 4)
    out, _ = avg_pool_forward(x, {"pool_height": 2, "pool_width": 2, "stride": 2})
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[[[2.5, 4.5], [10.5, 12.5]]]])


# ------------------------------------------------------------------------------------------
# errors for people
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("forward", [max_pool_forward, avg_pool_forward])
def test_window_that_does_not_tile_names_the_arithmetic(forward):
    with pytest.raises(ValueError, match=r"along the width \(W = 8, pool_width = 3\): \(W - F\)/S \+ 1 = "
                                         r"\(8 - 3\)/2 \+ 1 = 3\.5 is not an integer"):
        forward(np.zeros((1, 1, 7, 8)), {"pool_height": 3, "pool_width": 3, "stride": 2})


@pytest.mark.parametrize("forward", [max_pool_forward, avg_pool_forward])
def test_window_larger_than_input(forward):
    with pytest.raises(ValueError, match=r"F = 5 is larger than the input W = 4"):
        forward(np.zeros((1, 1, 4, 4)), {"pool_height": 5, "pool_width": 2, "stride": 1})


@pytest.mark.parametrize("pool_param, message", [
    ({"pool_height": 2, "pool_width": 2}, r"pool_param must be a dict with 'pool_height', 'pool_width' and 'stride'"),
    ({"pool_height": 2, "pool_width": 2, "stride": 0}, r"S \(stride\) must be a positive integer; found 0"),
    ({"pool_height": 2.5, "pool_width": 2, "stride": 1}, r"found 2\.5"),
])
def test_bad_pool_param(pool_param, message):
    with pytest.raises(ValueError, match=message):
        max_pool_forward(np.zeros((1, 1, 4, 4)), pool_param)


@pytest.mark.parametrize("forward, backward", [(max_pool_forward, max_pool_backward),
                                               (avg_pool_forward, avg_pool_backward)])
def test_dout_shape(forward, backward):
    _, cache = forward(np.zeros((2, 3, 4, 4)), {"pool_height": 2, "pool_width": 2, "stride": 2})
    with pytest.raises(ValueError, match=r"dout must have shape \(2, 3, 2, 2\); found \(2, 3, 2, 1\)"):
        backward(np.zeros((2, 3, 2, 1)), cache)


def test_input_must_be_4d():
    with pytest.raises(ValueError, match=r"x must have 4 dimensions; found shape \(4, 4\)"):
        max_pool_forward(np.zeros((4, 4)), {"pool_height": 2, "pool_width": 2, "stride": 2})
