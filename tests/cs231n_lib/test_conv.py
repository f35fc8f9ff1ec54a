"""Tests for cs231n_lib/conv.py: conv_forward/backward, im2col, col2im.

Oracles: loop convolution and loop im2col (conftest), central-difference gradients, PyTorch.
"""

import contextlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cs231n_lib import conv
from cs231n_lib.conv import col2im, conv_backward, conv_forward, im2col
from cs231n_lib_testkit import (
    FLOAT64_TOL,
    NUMERICAL_GRAD_TOL,
    conv_forward_loops,
    conv_problems,
    im2col_loops,
    rel_error,
    tolerance,
)
from oracles_norm import assert_gradient_matches

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _geometry(problem):
    p = problem["conv_param"]
    _, _, HH, WW = problem["w"].shape
    return HH, WW, p["stride"], p["pad"], p["dilation"]


# ------------------------------------------------------------------------------------------
# forward
# ------------------------------------------------------------------------------------------


@FAST
@given(conv_problems())
def test_forward_matches_loop_convolution(problem):
    x, w, b, p = problem["x"], problem["w"], problem["b"], problem["conv_param"]
    out, _ = conv_forward(x, w, b, p)
    expected = conv_forward_loops(x, w, b, p["stride"], p["pad"], p["dilation"])
    assert out.dtype == problem["dtype"]
    assert rel_error(out, expected) < tolerance(problem["dtype"])


@contextlib.contextmanager
def column_chunk_elements(elements):
    saved = conv.CHUNK_ELEMENTS
    conv.CHUNK_ELEMENTS = elements
    try:
        yield
    finally:
        conv.CHUNK_ELEMENTS = saved


@FAST
@given(conv_problems(max_batch=4, max_out=5), st.integers(1, 40))
def test_forward_and_backward_do_not_depend_on_the_chunk_size(problem, chunk_columns):
    """Slices of the column matrix may end inside a row or span samples: results must not move."""
    x, w, b, p = problem["x"], problem["w"], problem["b"], problem["conv_param"]
    out_whole, cache = conv_forward(x, w, b, p)
    dout = problem["rng"].standard_normal(out_whole.shape).astype(problem["dtype"])
    grads_whole = conv_backward(dout, cache)
    K = w.shape[1] * w.shape[2] * w.shape[3]
    with column_chunk_elements(chunk_columns * K):
        out_sliced, cache = conv_forward(x, w, b, p)
        grads_sliced = conv_backward(dout, cache)
    # BLAS may pick another kernel for a thin slice, so allow rounding differences only
    assert rel_error(out_sliced, out_whole) < tolerance(problem["dtype"])
    for g_sliced, g_whole in zip(grads_sliced, grads_whole):
        assert rel_error(g_sliced, g_whole) < tolerance(problem["dtype"])


def test_forward_known_values():
    """A 1-channel 3x3 input, a 2x2 filter of ones: each output is the sum of a 2x2 block."""
    x = np.arange(9.0).reshape(1, 1, 3, 3)
    w = np.ones((1, 1, 2, 2))
    out, _ = conv_forward(x, w, np.array([0.5]), {"stride": 1, "pad": 0})
    np.testing.assert_array_equal(out, [[[[8.5, 12.5], [20.5, 24.5]]]])
    # with pad 1 and stride 3 each window holds one corner of x and three zeros of padding
    out, _ = conv_forward(x, w, np.array([0.0]), {"stride": 3, "pad": 1})
    np.testing.assert_array_equal(out, [[[[0.0, 2.0], [6.0, 8.0]]]])
    # dilation 2 with a 2x2 filter taps the four corners
    out, _ = conv_forward(x, w, np.array([0.0]), {"stride": 1, "pad": 0, "dilation": 2})
    np.testing.assert_array_equal(out, [[[[0.0 + 2 + 6 + 8]]]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept_and_parameters_follow_x(dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 5, 5)).astype(dtype)
    w = rng.standard_normal((4, 3, 3, 3))  # float64 weights: cast to x's dtype
    b = np.zeros(4, dtype=np.float32)
    out, cache = conv_forward(x, w, b, {"stride": 1, "pad": 1})
    dx, dw, db = conv_backward(np.ones_like(out), cache)
    assert out.dtype == dx.dtype == dw.dtype == db.dtype == dtype
    assert (dx.shape, dw.shape, db.shape) == (x.shape, w.shape, b.shape)


def test_non_contiguous_input_gives_the_same_result():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 5, 6, 2)).transpose(0, 3, 1, 2)  # (3, 2, 5, 6), not C-contiguous
    w = rng.standard_normal((3, 2, 3, 2))
    b = rng.standard_normal(3)
    out, _ = conv_forward(x, w, b, {"stride": 1, "pad": 1})
    out_copy, _ = conv_forward(np.ascontiguousarray(x), w, b, {"stride": 1, "pad": 1})
    np.testing.assert_array_equal(out, out_copy)


# ------------------------------------------------------------------------------------------
# backward
# ------------------------------------------------------------------------------------------


@SLOW
@given(conv_problems(max_batch=2, max_channels=2, max_filters=3, max_filter=3, max_out=3,
                     dtypes=(np.float64,)))
def test_backward_matches_numerical_gradients(problem):
    x, w, b, p = problem["x"], problem["w"], problem["b"], problem["conv_param"]
    out, cache = conv_forward(x, w, b, p)
    dout = problem["rng"].standard_normal(out.shape)
    dx, dw, db = conv_backward(dout, cache)
    # noise-aware: a gradient that is small by cancellation (db = sum of dout) is not held to a
    # relative error finer than the numerical gradient's own rounding allows
    assert_gradient_matches(dx, lambda v: conv_forward(v, w, b, p)[0], x, dout, NUMERICAL_GRAD_TOL, "dx")
    assert_gradient_matches(dw, lambda v: conv_forward(x, v, b, p)[0], w, dout, NUMERICAL_GRAD_TOL, "dw")
    assert_gradient_matches(db, lambda v: conv_forward(x, w, v, p)[0], b, dout, NUMERICAL_GRAD_TOL, "db")


# The edge cases the library must get right, always run (hypothesis only draws them by chance).
EDGE_CASES = {
    "1x1 filters": ((2, 3, 5, 5), (4, 3, 1, 1), dict(stride=1, pad=0)),
    "filter as large as the padded input": ((1, 2, 3, 3), (2, 2, 5, 5), dict(stride=1, pad=1)),
    "stride larger than the filter": ((2, 2, 8, 8), (3, 2, 2, 2), dict(stride=3, pad=0)),
    "batch of one": ((1, 3, 6, 6), (2, 3, 3, 3), dict(stride=1, pad=1)),
    "dilated, padded, strided": ((2, 2, 9, 7), (2, 2, 3, 2), dict(stride=2, pad=2, dilation=2)),
}


@pytest.mark.parametrize("name", list(EDGE_CASES))
def test_edge_cases_match_loops_and_numerical_gradients(name):
    x_shape, w_shape, p = EDGE_CASES[name]
    rng = np.random.default_rng(len(name))
    x, w, b = rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])
    out, cache = conv_forward(x, w, b, p)
    expected = conv_forward_loops(x, w, b, p["stride"], p["pad"], p.get("dilation", 1))
    assert out.shape == expected.shape and rel_error(out, expected) < FLOAT64_TOL
    dout = rng.standard_normal(out.shape)
    dx, dw, db = conv_backward(dout, cache)
    # noise-aware: a gradient that is small by cancellation (db = sum of dout) is not held to a
    # relative error finer than the numerical gradient's own rounding allows
    assert_gradient_matches(dx, lambda v: conv_forward(v, w, b, p)[0], x, dout, NUMERICAL_GRAD_TOL, "dx")
    assert_gradient_matches(dw, lambda v: conv_forward(x, v, b, p)[0], w, dout, NUMERICAL_GRAD_TOL, "dw")
    assert_gradient_matches(db, lambda v: conv_forward(x, w, v, p)[0], b, dout, NUMERICAL_GRAD_TOL, "db")


def test_backward_known_values():
    """Bias gradient is the sum of dout per filter; dx of a 1x1 conv is w^T dout per pixel."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 4, 4))
    w = rng.standard_normal((5, 3, 1, 1))
    out, cache = conv_forward(x, w, np.zeros(5), {"stride": 1, "pad": 0})
    dout = rng.standard_normal(out.shape)
    dx, dw, db = conv_backward(dout, cache)
    np.testing.assert_allclose(db, dout.sum(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(dx, np.einsum("fc,nfhw->nchw", w[:, :, 0, 0], dout), rtol=1e-12)
    np.testing.assert_allclose(dw[:, :, 0, 0], np.einsum("nfhw,nchw->fc", dout, x), rtol=1e-12)


# ------------------------------------------------------------------------------------------
# PyTorch as an oracle
# ------------------------------------------------------------------------------------------


@pytest.mark.oracle
@FAST
@given(problem=conv_problems(max_batch=3, max_channels=4, max_filters=5, max_out=5))
def test_forward_and_backward_match_pytorch(torch, problem):
    x, w, b, p = problem["x"], problem["w"], problem["b"], problem["conv_param"]
    out, cache = conv_forward(x, w, b, p)
    dout = problem["rng"].standard_normal(out.shape).astype(problem["dtype"])
    dx, dw, db = conv_backward(dout, cache)

    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    out_t = torch.nn.functional.conv2d(xt, wt, bt, stride=p["stride"], padding=p["pad"],
                                       dilation=p["dilation"])
    out_t.backward(torch.tensor(dout))
    tol = tolerance(problem["dtype"])
    assert rel_error(out, out_t.detach().numpy()) < tol
    assert rel_error(dx, xt.grad.numpy()) < tol
    assert rel_error(dw, wt.grad.numpy()) < tol
    assert rel_error(db, bt.grad.numpy()) < tol


@pytest.mark.oracle
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_benchmark_case_b_matches_pytorch(torch, dtype):
    """A realistic size (many column slices): the three-layer net's first conv layer."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 3, 32, 32)).astype(dtype)
    w = rng.standard_normal((8, 3, 7, 7)).astype(dtype)
    b = rng.standard_normal(8).astype(dtype)
    out, cache = conv_forward(x, w, b, {"stride": 1, "pad": 3})
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx, dw, db = conv_backward(dout, cache)
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    out_t = torch.nn.functional.conv2d(xt, wt, bt, stride=1, padding=3)
    out_t.backward(torch.tensor(dout))
    tol = tolerance(dtype)
    for ours, theirs in [(out, out_t), (dx, xt.grad), (dw, wt.grad), (db, bt.grad)]:
        assert rel_error(ours, theirs.detach().numpy()) < tol


# ------------------------------------------------------------------------------------------
# im2col / col2im
# ------------------------------------------------------------------------------------------


@FAST
@given(conv_problems())
def test_im2col_has_the_documented_layout(problem):
    x = problem["x"]
    cols = im2col(x, *_geometry(problem))
    expected = im2col_loops(x, *_geometry(problem))
    assert cols.dtype == problem["dtype"]
    assert cols.shape == expected.shape
    np.testing.assert_array_equal(cols, expected.astype(problem["dtype"]))


@FAST
@given(conv_problems())
def test_col2im_is_the_adjoint_of_im2col(problem):
    """<im2col(x), y> == <x, col2im(y)> for every x and y: overlaps are summed, padding dropped."""
    x = problem["x"].astype(np.float64)
    geometry = _geometry(problem)
    cols = im2col(x, *geometry)
    y = problem["rng"].standard_normal(cols.shape)
    folded = col2im(y, x.shape, *geometry)
    assert folded.shape == x.shape
    lhs, rhs = np.sum(cols * y), np.sum(x * folded)
    assert abs(lhs - rhs) <= FLOAT64_TOL * max(1.0, np.abs(cols * y).sum())


def test_col2im_counts_overlaps():
    """Folding a matrix of ones counts how many receptive fields cover each input position."""
    x_shape = (1, 1, 5, 5)
    cols = np.ones((9, 4))  # 3x3 filter, stride 2, no pad -> 2x2 outputs
    counts = col2im(cols, x_shape, 3, 3, 2, 0)
    per_axis = np.array([1, 1, 2, 1, 1])
    np.testing.assert_array_equal(counts[0, 0], np.outer(per_axis, per_axis))


def test_im2col_float32_and_conv_product():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    cols = im2col(x, 3, 3, 1, 1)
    assert cols.dtype == np.float32 and cols.shape == (27, 2 * 36)
    product = (w.reshape(4, -1) @ cols).reshape(4, 2, 6, 6).transpose(1, 0, 2, 3)
    out, _ = conv_forward(x, w, np.zeros(4, np.float32), {"stride": 1, "pad": 1})
    np.testing.assert_allclose(product, out, rtol=1e-5, atol=1e-5)
    assert col2im(cols, x.shape, 3, 3, 1, 1).dtype == np.float32


# ------------------------------------------------------------------------------------------
# errors for people
# ------------------------------------------------------------------------------------------


def _xwb(N=2, C=3, H=10, W=10, F=4, HH=3, WW=3):
    return np.zeros((N, C, H, W)), np.zeros((F, C, HH, WW)), np.zeros(F)


def test_stride_that_does_not_tile_names_the_arithmetic():
    x, w, b = _xwb()
    with pytest.raises(ValueError, match=r"\(10 - 3 \+ 0\)/2 \+ 1 = 4\.5 is not an integer"):
        conv_forward(x, w, b, {"stride": 2, "pad": 0})


def test_filter_larger_than_padded_input():
    x, w, b = _xwb(H=3, W=3, HH=5, WW=5)
    with pytest.raises(ValueError, match=r"larger than the padded input W \+ 2P = 3 \+ 0 = 3"):
        conv_forward(x, w, b, {"stride": 1, "pad": 0})
    # the same filter fits once we pad by one on each side
    out, _ = conv_forward(x, w, b, {"stride": 1, "pad": 1})
    assert out.shape == (2, 4, 1, 1)


def test_dilation_that_does_not_fit():
    x, w, b = _xwb(H=5, W=5)
    with pytest.raises(ValueError, match=r"F_eff = 3\*\(3-1\)\+1 = 7"):
        conv_forward(x, w, b, {"stride": 1, "pad": 0, "dilation": 3})


def test_height_and_width_are_named():
    x, w, b = _xwb(H=11, W=10)
    with pytest.raises(ValueError, match=r"along the width \(W = 10, WW = 3\): .* = 5\.5 is not an integer"):
        conv_forward(x, w, b, {"stride": 2, "pad": 1})


@pytest.mark.parametrize("param, message", [
    ({"stride": 0, "pad": 0}, r"S \(stride\) must be a positive integer; found 0"),
    ({"stride": 1.5, "pad": 0}, r"found 1\.5"),
    ({"stride": 1, "pad": -1}, r"P \(padding\) must be a non-negative integer; found -1"),
    ({"stride": 1, "pad": 0, "dilation": 0}, r"dilation must be a positive integer; found 0"),
    ({"stride": 1}, r"conv_param must be a dict with 'stride' and 'pad'"),
    ({"stride": None, "pad": 0}, r"S \(stride\) must be a positive integer; found None"),
    ({"stride": float("inf"), "pad": 0}, r"S \(stride\) must be a positive integer; found inf"),
    ({"stride": "2", "pad": 0}, r"S \(stride\) must be a positive integer; found '2'"),
    ({"stride": 1, "pad": float("nan")}, r"P \(padding\) must be a non-negative integer; found nan"),
])
def test_impossible_hyperparameters(param, message):
    x, w, b = _xwb()
    with pytest.raises(ValueError, match=message):
        conv_forward(x, w, b, param)


def test_channel_mismatch_names_both_shapes():
    x = np.zeros((2, 3, 8, 8))
    w = np.zeros((4, 2, 3, 3))
    with pytest.raises(ValueError, match=r"x has C = 3 channels.*filters expect C = 2.*\(4, 2, 3, 3\)"):
        conv_forward(x, w, np.zeros(4), {"stride": 1, "pad": 1})


def test_bias_shape():
    x, w, _ = _xwb()
    with pytest.raises(ValueError, match=r"b must have shape \(F,\) = \(4,\).*found \(4, 1\)"):
        conv_forward(x, w, np.zeros((4, 1)), {"stride": 1, "pad": 1})


def test_dout_shape():
    x, w, b = _xwb()
    out, cache = conv_forward(x, w, b, {"stride": 1, "pad": 1})
    with pytest.raises(ValueError, match=r"dout must have shape \(2, 4, 10, 10\); found \(2, 4, 10, 9\)"):
        conv_backward(np.zeros((2, 4, 10, 9)), cache)


def test_wrong_number_of_dimensions():
    with pytest.raises(ValueError, match=r"x must have 4 dimensions; found shape \(3, 8, 8\)"):
        conv_forward(np.zeros((3, 8, 8)), np.zeros((4, 3, 3, 3)), np.zeros(4), {"stride": 1, "pad": 1})


def test_col2im_checks_the_column_shape():
    with pytest.raises(ValueError, match=r"cols must have shape \(27, 72\); found \(27, 70\)"):
        col2im(np.zeros((27, 70)), (2, 3, 6, 6), 3, 3, 1, 1)


def test_an_empty_batch_gives_empty_results():
    x, w, b = _xwb()
    out, cache = conv_forward(x[:0], w, b, {"stride": 1, "pad": 1})
    assert out.shape == (0, w.shape[0], x.shape[2], x.shape[3]) and out.dtype == x.dtype
    dx, dw, db = conv_backward(out, cache)
    assert dx.shape == x[:0].shape and not dw.any() and not db.any() and dw.shape == w.shape
