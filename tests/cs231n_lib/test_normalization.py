"""Tests of cs231n_lib.normalization against loop oracles, numerical gradients and PyTorch."""

import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from cs231n_lib.normalization import (
    batchnorm_backward,
    batchnorm_backward_alt,
    batchnorm_forward,
    layernorm_backward,
    layernorm_forward,
    spatial_batchnorm_backward,
    spatial_batchnorm_forward,
    spatial_groupnorm_backward,
    spatial_groupnorm_forward,
)
from oracles_norm import (
    batchnorm_loop,
    groupnorm_loop,
    layernorm_loop,
    assert_gradient_matches,
    spatial_batchnorm_loop,
)

DTYPES = [np.float64, np.float32]
FAST = settings(max_examples=25, deadline=None)
SLOW = settings(max_examples=10, deadline=None)

seeds = st.integers(0, 2**32 - 1)
dtypes = st.sampled_from(DTYPES)
epsilons = st.sampled_from([1e-5, 1e-3, 0.1])
momenta = st.floats(0.0, 1.0)


def data(seed, shape, dtype=np.float64, scale=1.0, shift=0.0):
    rng = np.random.default_rng(seed)
    return (shift + scale * rng.standard_normal(shape)).astype(dtype)


def tol(dtype):
    """Tolerance of a float32 / float64 result against a float64 oracle (inputs O(1))."""
    return 1e-10 if dtype == np.float64 else 2e-4


# ------------------------------------------------------------------------------------------
# batchnorm (N, D)


@FAST
@given(seed=seeds, N=st.integers(1, 7), D=st.integers(1, 6), dtype=dtypes, eps=epsilons, momentum=momenta)
def test_batchnorm_train_matches_loop_oracle_and_updates_running_stats(seed, N, D, dtype, eps, momentum):
    x = data(seed, (N, D), dtype, scale=3.0, shift=2.0)
    gamma, beta = data(seed + 1, (D,), dtype), data(seed + 2, (D,), dtype)
    running_mean, running_var = data(seed + 3, (D,), dtype), np.abs(data(seed + 4, (D,), dtype)) + 0.5
    bn_param = {"mode": "train", "eps": eps, "momentum": momentum,
                "running_mean": running_mean.copy(), "running_var": running_var.copy()}
    out, _ = batchnorm_forward(x, gamma, beta, bn_param)
    expected, mean, var = batchnorm_loop(x, gamma, beta, eps)
    assert out.dtype == dtype and out.shape == (N, D)
    np.testing.assert_allclose(out, expected, rtol=tol(dtype), atol=tol(dtype))
    # running = momentum * running + (1 - momentum) * batch statistic, biased variance
    for key, old, batch in (("running_mean", running_mean, mean), ("running_var", running_var, var)):
        assert bn_param[key].dtype == dtype
        np.testing.assert_allclose(bn_param[key], momentum * old.astype(float) + (1 - momentum) * batch,
                                   rtol=tol(dtype), atol=tol(dtype))


def test_batchnorm_momentum_convention_by_hand():
    # One feature, batch mean 3 and biased variance 4 (values 1 and 5).
    x = np.array([[1.0], [5.0]])
    bn_param = {"mode": "train", "momentum": 0.9, "running_mean": np.array([1.0]), "running_var": np.array([2.0])}
    batchnorm_forward(x, np.ones(1), np.zeros(1), bn_param)
    assert bn_param["running_mean"] == pytest.approx([0.9 * 1 + 0.1 * 3])  # 1.2, not 2.8
    assert bn_param["running_var"] == pytest.approx([0.9 * 2 + 0.1 * 4])   # 2.2, biased batch variance


def test_batchnorm_creates_running_stats_of_input_dtype():
    for dtype in DTYPES:
        bn_param = {"mode": "train", "momentum": 0.5}
        x = np.array([[0.0, 2.0], [2.0, 6.0]], dtype=dtype)
        batchnorm_forward(x, np.ones(2, dtype), np.zeros(2, dtype), bn_param)
        # from zeros / ones: 0.5 * 0 + 0.5 * [1, 4] and 0.5 * 1 + 0.5 * [1, 4]
        assert bn_param["running_mean"].dtype == dtype and bn_param["running_var"].dtype == dtype
        np.testing.assert_allclose(bn_param["running_mean"], [0.5, 2.0])
        np.testing.assert_allclose(bn_param["running_var"], [1.0, 2.5])


@FAST
@given(seed=seeds, N=st.integers(1, 6), D=st.integers(1, 5), dtype=dtypes, eps=epsilons)
def test_batchnorm_test_mode_uses_running_stats_and_leaves_them(seed, N, D, dtype, eps):
    x = data(seed, (N, D), dtype)
    gamma, beta = data(seed + 1, (D,), dtype), data(seed + 2, (D,), dtype)
    running_mean, running_var = data(seed + 3, (D,), dtype), np.abs(data(seed + 4, (D,), dtype)) + 0.1
    bn_param = {"mode": "test", "eps": eps, "running_mean": running_mean.copy(), "running_var": running_var.copy()}
    out, cache = batchnorm_forward(x, gamma, beta, bn_param)
    expected = np.empty((N, D))
    for n in range(N):
        for d in range(D):
            expected[n, d] = (float(gamma[d]) * (float(x[n, d]) - float(running_mean[d]))
                              / np.sqrt(float(running_var[d]) + eps) + float(beta[d]))
    assert out.dtype == dtype
    np.testing.assert_allclose(out, expected, rtol=tol(dtype), atol=tol(dtype))
    np.testing.assert_array_equal(bn_param["running_mean"], running_mean)
    np.testing.assert_array_equal(bn_param["running_var"], running_var)


def test_batchnorm_running_stats_converge_and_test_mode_normalizes():
    rng = np.random.default_rng(0)
    bn_param = {"mode": "train", "momentum": 0.9}
    gamma, beta = np.ones(3), np.zeros(3)
    true_mean, true_std = np.array([5.0, -2.0, 0.0]), np.array([2.0, 0.5, 1.0])
    for _ in range(300):
        x = true_mean + true_std * rng.standard_normal((200, 3))
        batchnorm_forward(x, gamma, beta, bn_param)
    np.testing.assert_allclose(bn_param["running_mean"], true_mean, atol=0.15)
    np.testing.assert_allclose(bn_param["running_var"], true_std**2, rtol=0.1)
    bn_param["mode"] = "test"
    out, _ = batchnorm_forward(true_mean + true_std * rng.standard_normal((5000, 3)), gamma, beta, bn_param)
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=0.08)
    np.testing.assert_allclose(out.std(axis=0), 1, atol=0.08)


@SLOW
@given(seed=seeds, N=st.integers(3, 6), D=st.integers(1, 4), mode=st.sampled_from(["train", "test"]))
def test_batchnorm_backward_matches_numerical_gradient(seed, N, D, mode):
    # (N = 2 is left out: its output is +-1 whatever x is, so the gradient is of the order of
    # eps and an elementwise relative error measures only rounding.)
    x = data(seed, (N, D), scale=2.0, shift=1.0)
    gamma, beta = data(seed + 1, (D,)), data(seed + 2, (D,))
    dout = data(seed + 3, (N, D))
    stats = {"running_mean": data(seed + 4, (D,)), "running_var": np.abs(data(seed + 5, (D,))) + 0.5}

    def run(x_, gamma_, beta_):
        return batchnorm_forward(x_, gamma_, beta_, {"mode": mode, **stats})[0]

    _, cache = batchnorm_forward(x, gamma, beta, {"mode": mode, **stats})
    for backward in (batchnorm_backward, batchnorm_backward_alt):
        dx, dgamma, dbeta = backward(dout, cache)
        assert_gradient_matches(dx, lambda v: run(v, gamma, beta), x, dout, name="dx")
        assert_gradient_matches(dgamma, lambda v: run(x, v, beta), gamma, dout, name="dgamma")
        assert_gradient_matches(dbeta, lambda v: run(x, gamma, v), beta, dout, name="dbeta")


@FAST
@given(seed=seeds, N=st.integers(1, 30), D=st.integers(1, 20), dtype=dtypes, mode=st.sampled_from(["train", "test"]))
def test_batchnorm_backward_graph_equals_closed_form(seed, N, D, dtype, mode):
    x = data(seed, (N, D), dtype, scale=4.0, shift=-1.0)
    gamma, beta, dout = data(seed + 1, (D,), dtype), data(seed + 2, (D,), dtype), data(seed + 3, (N, D), dtype)
    _, cache = batchnorm_forward(x, gamma, beta, {"mode": mode})
    graph, closed = batchnorm_backward(dout, cache), batchnorm_backward_alt(dout, cache)
    for a, b in zip(graph, closed):
        assert a.dtype == dtype and b.dtype == dtype
        scale = max(1.0, float(np.abs(b).max()))
        assert float(np.abs(a.astype(float) - b).max()) <= (1e-10 if dtype == np.float64 else 1e-4) * scale


def test_batchnorm_rejects_bad_mode_and_shapes():
    x, g, b = np.zeros((4, 3)), np.ones(3), np.zeros(3)
    with pytest.raises(ValueError, match="'eval'"):
        batchnorm_forward(x, g, b, {"mode": "eval"})
    with pytest.raises(ValueError, match="mode"):
        batchnorm_forward(x, g, b, {})
    with pytest.raises(ValueError, match=r"\(3,\).*\(4,\)"):
        batchnorm_forward(x, np.ones(4), b, {"mode": "train"})
    with pytest.raises(ValueError, match=r"\(3,\).*\(1,\)"):
        batchnorm_forward(x, g, np.zeros(1), {"mode": "train"})
    with pytest.raises(ValueError, match=r"running_var.*\(3,\).*\(2,\)"):
        batchnorm_forward(x, g, b, {"mode": "train", "running_var": np.ones(2)})
    with pytest.raises(ValueError, match="momentum.*1.5"):
        batchnorm_forward(x, g, b, {"mode": "train", "momentum": 1.5})
    with pytest.raises(ValueError, match="eps"):
        batchnorm_forward(x, g, b, {"mode": "train", "eps": -1e-5})
    with pytest.raises(ValueError, match=r"bn_param\['momentum'\] must be a number; found 'x'"):
        batchnorm_forward(x, g, b, {"mode": "train", "momentum": "x"})
    with pytest.raises(ValueError, match=r"bn_param\['eps'\] must be a number; found 'abc'"):
        batchnorm_forward(x, g, b, {"mode": "train", "eps": "abc"})
    with pytest.raises(ValueError, match=r"bn_param\['eps'\] must be finite; found inf"):
        batchnorm_forward(x, g, b, {"mode": "train", "eps": float("inf")})
    with pytest.raises(ValueError, match="2 dimensions"):
        batchnorm_forward(np.zeros((2, 3, 4)), g, b, {"mode": "train"})
    _, cache = batchnorm_forward(x, g, b, {"mode": "train"})
    with pytest.raises(ValueError, match=r"\(4, 3\).*\(3, 4\)"):
        batchnorm_backward(np.zeros((3, 4)), cache)
    with pytest.raises(ValueError, match=r"\(4, 3\).*\(4, 1\)"):
        batchnorm_backward_alt(np.zeros((4, 1)), cache)


# ------------------------------------------------------------------------------------------
# spatial batchnorm (N, C, H, W)

spatial_shapes = st.tuples(st.integers(1, 4), st.integers(1, 5), st.integers(1, 5), st.integers(1, 5))


@FAST
@given(seed=seeds, shape=spatial_shapes, dtype=dtypes, eps=epsilons, momentum=momenta)
def test_spatial_batchnorm_matches_loop_oracle(seed, shape, dtype, eps, momentum):
    N, C, H, W = shape
    x = data(seed, shape, dtype, scale=2.0, shift=3.0)
    gamma, beta = data(seed + 1, (C,), dtype), data(seed + 2, (C,), dtype)
    bn_param = {"mode": "train", "eps": eps, "momentum": momentum}
    out, _ = spatial_batchnorm_forward(x, gamma, beta, bn_param)
    expected, mean, var = spatial_batchnorm_loop(x, gamma, beta, eps)
    assert out.dtype == dtype and out.shape == shape
    np.testing.assert_allclose(out, expected, rtol=tol(dtype), atol=tol(dtype))
    np.testing.assert_allclose(bn_param["running_mean"], (1 - momentum) * mean, rtol=tol(dtype), atol=tol(dtype))
    np.testing.assert_allclose(bn_param["running_var"], momentum + (1 - momentum) * var,
                               rtol=tol(dtype), atol=tol(dtype))
    assert bn_param["running_mean"].dtype == dtype and bn_param["running_var"].dtype == dtype


@FAST
@given(seed=seeds, shape=spatial_shapes, dtype=dtypes, mode=st.sampled_from(["train", "test"]))
def test_spatial_batchnorm_equals_batchnorm_on_transposed_input(seed, shape, dtype, mode):
    N, C, H, W = shape
    x = data(seed, shape, dtype, scale=2.0)
    gamma, beta, dout = data(seed + 1, (C,), dtype), data(seed + 2, (C,), dtype), data(seed + 3, shape, dtype)
    stats = {"running_mean": data(seed + 4, (C,), dtype), "running_var": np.abs(data(seed + 5, (C,), dtype)) + 0.5}
    flat = lambda a: a.transpose(0, 2, 3, 1).reshape(-1, C)
    p1, p2 = {"mode": mode, **stats}, {"mode": mode, **stats}
    out, cache = spatial_batchnorm_forward(x, gamma, beta, p1)
    out_flat, cache_flat = batchnorm_forward(flat(x), gamma, beta, p2)
    t = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(flat(out), out_flat, rtol=t, atol=t)
    np.testing.assert_allclose(p1["running_var"], p2["running_var"], rtol=t, atol=t)
    grads = spatial_batchnorm_backward(dout, cache)
    grads_flat = batchnorm_backward_alt(flat(dout), cache_flat)
    assert all(g.dtype == dtype for g in grads)
    np.testing.assert_allclose(flat(grads[0]), grads_flat[0], rtol=10 * t, atol=10 * t)
    for a, b in zip(grads[1:], grads_flat[1:]):
        np.testing.assert_allclose(a, b, rtol=10 * t, atol=10 * t * max(1, N * H * W))


@SLOW
@given(seed=seeds, shape=st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.integers(1, 3)),
       mode=st.sampled_from(["train", "test"]))
def test_spatial_batchnorm_backward_matches_numerical_gradient(seed, shape, mode):
    N, C, H, W = shape
    assume(mode == "test" or N * H * W >= 3)  # fewer values per channel: degenerate, see above
    x = data(seed, shape, scale=2.0, shift=1.0)
    gamma, beta, dout = data(seed + 1, (C,)), data(seed + 2, (C,)), data(seed + 3, shape)
    stats = {"running_mean": data(seed + 4, (C,)), "running_var": np.abs(data(seed + 5, (C,))) + 0.5}

    def run(x_, gamma_, beta_):
        return spatial_batchnorm_forward(x_, gamma_, beta_, {"mode": mode, **stats})[0]

    _, cache = spatial_batchnorm_forward(x, gamma, beta, {"mode": mode, **stats})
    dx, dgamma, dbeta = spatial_batchnorm_backward(dout, cache)
    assert_gradient_matches(dx, lambda v: run(v, gamma, beta), x, dout, name="dx")
    assert_gradient_matches(dgamma, lambda v: run(x, v, beta), gamma, dout, name="dgamma")
    assert_gradient_matches(dbeta, lambda v: run(x, gamma, v), beta, dout, name="dbeta")


def test_spatial_batchnorm_large_offset_keeps_precision():
    # A large common offset must not destroy the variance (two-pass statistics).
    x = 1e4 + data(0, (4, 2, 8, 8))
    out, _ = spatial_batchnorm_forward(x, np.ones(2), np.zeros(2), {"mode": "train", "eps": 0.0})
    np.testing.assert_allclose(out.std(axis=(0, 2, 3)), 1, atol=1e-9)
    out32, _ = spatial_batchnorm_forward(x.astype(np.float32), np.ones(2, np.float32), np.zeros(2, np.float32),
                                         {"mode": "train", "eps": 0.0})
    np.testing.assert_allclose(out32.std(axis=(0, 2, 3)), 1, atol=1e-2)


def test_spatial_batchnorm_accepts_non_contiguous_input():
    x = data(1, (3, 4, 5, 6)).transpose(0, 1, 3, 2)
    out, cache = spatial_batchnorm_forward(x, np.ones(4), np.zeros(4), {"mode": "train"})
    expected, _, _ = spatial_batchnorm_loop(np.ascontiguousarray(x), np.ones(4), np.zeros(4), 1e-5)
    np.testing.assert_allclose(out, expected, atol=1e-10)
    dx, _, _ = spatial_batchnorm_backward(np.ones_like(x)[:, :, ::1], cache)
    np.testing.assert_allclose(dx, 0, atol=1e-10)  # a constant upstream gradient is removed by the mean


def test_spatial_batchnorm_rejects_bad_input():
    x = np.zeros((2, 3, 4, 4))
    with pytest.raises(ValueError, match=r"\(3,\).*\(4,\)"):
        spatial_batchnorm_forward(x, np.ones(4), np.zeros(3), {"mode": "train"})
    with pytest.raises(ValueError, match="'inference'"):
        spatial_batchnorm_forward(x, np.ones(3), np.zeros(3), {"mode": "inference"})
    with pytest.raises(ValueError, match="4 dimensions"):
        spatial_batchnorm_forward(np.zeros((2, 3)), np.ones(3), np.zeros(3), {"mode": "train"})
    with pytest.raises(ValueError, match=r"running_mean.*\(3,\).*\(1, 3\)"):
        spatial_batchnorm_forward(x, np.ones(3), np.zeros(3), {"mode": "test", "running_mean": np.zeros((1, 3))})
    _, cache = spatial_batchnorm_forward(x, np.ones(3), np.zeros(3), {"mode": "train"})
    with pytest.raises(ValueError, match=r"\(2, 3, 4, 4\).*\(2, 3, 4, 5\)"):
        spatial_batchnorm_backward(np.zeros((2, 3, 4, 5)), cache)


# ------------------------------------------------------------------------------------------
# layer norm


@FAST
@given(seed=seeds, N=st.integers(1, 6), D=st.integers(1, 8), dtype=dtypes, eps=epsilons)
def test_layernorm_matches_loop_oracle(seed, N, D, dtype, eps):
    x = data(seed, (N, D), dtype, scale=3.0, shift=-2.0)
    gamma, beta = data(seed + 1, (D,), dtype), data(seed + 2, (D,), dtype)
    out, _ = layernorm_forward(x, gamma, beta, {"eps": eps})
    assert out.dtype == dtype
    np.testing.assert_allclose(out, layernorm_loop(x, gamma, beta, eps), rtol=tol(dtype), atol=tol(dtype))


@SLOW
@given(seed=seeds, N=st.integers(1, 4), D=st.integers(3, 6))
def test_layernorm_backward_matches_numerical_gradient(seed, N, D):
    # (D <= 2 is left out for the reason given in the batchnorm gradient test.)
    x = data(seed, (N, D), scale=2.0, shift=1.0)
    gamma, beta, dout = data(seed + 1, (D,)), data(seed + 2, (D,)), data(seed + 3, (N, D))
    run = lambda x_, g_, b_: layernorm_forward(x_, g_, b_, {})[0]
    _, cache = layernorm_forward(x, gamma, beta, {})
    dx, dgamma, dbeta = layernorm_backward(dout, cache)
    assert_gradient_matches(dx, lambda v: run(v, gamma, beta), x, dout, name="dx")
    assert_gradient_matches(dgamma, lambda v: run(x, v, beta), gamma, dout, name="dgamma")
    assert_gradient_matches(dbeta, lambda v: run(x, gamma, v), beta, dout, name="dbeta")


def test_layernorm_float32_gradients_keep_dtype_and_agree_with_float64():
    x, gamma, beta, dout = data(0, (4, 6)), data(1, (6,)), data(2, (6,)), data(3, (4, 6))
    grads64 = layernorm_backward(dout, layernorm_forward(x, gamma, beta, {})[1])
    f32 = lambda a: a.astype(np.float32)
    grads32 = layernorm_backward(f32(dout), layernorm_forward(f32(x), f32(gamma), f32(beta), {})[1])
    for a, b in zip(grads32, grads64):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_layernorm_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"\(5,\).*\(4,\)"):
        layernorm_forward(np.zeros((2, 5)), np.ones(4), np.zeros(5), {})
    with pytest.raises(ValueError, match="eps"):
        layernorm_forward(np.zeros((2, 5)), np.ones(5), np.zeros(5), {"eps": -1})


# ------------------------------------------------------------------------------------------
# group norm


@st.composite
def group_shapes(draw):
    G = draw(st.integers(1, 3))
    per_group = draw(st.integers(1, 3))
    return (draw(st.integers(1, 3)), G * per_group, draw(st.integers(1, 4)), draw(st.integers(1, 4))), G


@FAST
@given(seed=seeds, shape_and_groups=group_shapes(), dtype=dtypes, eps=epsilons)
def test_groupnorm_matches_loop_oracle(seed, shape_and_groups, dtype, eps):
    shape, G = shape_and_groups
    C = shape[1]
    x = data(seed, shape, dtype, scale=2.0, shift=1.0)
    gamma, beta = data(seed + 1, (1, C, 1, 1), dtype), data(seed + 2, (1, C, 1, 1), dtype)
    out, _ = spatial_groupnorm_forward(x, gamma, beta, G, {"eps": eps})
    assert out.dtype == dtype and out.shape == shape
    np.testing.assert_allclose(out, groupnorm_loop(x, gamma, beta, G, eps), rtol=tol(dtype), atol=tol(dtype))


@SLOW
@given(seed=seeds, shape_and_groups=group_shapes(), dtype=dtypes)
def test_groupnorm_backward_matches_numerical_gradient(seed, shape_and_groups, dtype):
    shape, G = shape_and_groups
    N, C, H, W = shape
    assume(C // G * H * W >= 3)  # fewer values per group: degenerate, see the batchnorm test
    x = data(seed, shape, scale=2.0, shift=1.0)
    gamma, beta, dout = data(seed + 1, (1, C, 1, 1)), data(seed + 2, (1, C, 1, 1)), data(seed + 3, shape)
    run = lambda x_, g_, b_: spatial_groupnorm_forward(x_, g_, b_, G, {})[0]
    _, cache = spatial_groupnorm_forward(x, gamma, beta, G, {})
    dx, dgamma, dbeta = spatial_groupnorm_backward(dout, cache)
    assert dgamma.shape == dbeta.shape == (1, C, 1, 1)
    if dtype == np.float64:
        assert_gradient_matches(dx, lambda v: run(v, gamma, beta), x, dout, name="dx")
        assert_gradient_matches(dgamma, lambda v: run(x, v, beta), gamma, dout, name="dgamma")
        assert_gradient_matches(dbeta, lambda v: run(x, gamma, v), beta, dout, name="dbeta")
    else:
        f32 = lambda a: a.astype(np.float32)
        _, cache32 = spatial_groupnorm_forward(f32(x), f32(gamma), f32(beta), G, {})
        for a, b in zip(spatial_groupnorm_backward(f32(dout), cache32), (dx, dgamma, dbeta)):
            assert a.dtype == np.float32
            np.testing.assert_allclose(a, b, rtol=1e-3, atol=2e-4 * max(1.0, float(np.abs(b).max())))


def test_groupnorm_rejects_bad_groups_and_shapes():
    x, g, b = np.zeros((2, 6, 3, 3)), np.ones((1, 6, 1, 1)), np.zeros((1, 6, 1, 1))
    with pytest.raises(ValueError, match=r"G = 4.*C = 6"):
        spatial_groupnorm_forward(x, g, b, 4, {})
    with pytest.raises(ValueError, match="positive integer"):
        spatial_groupnorm_forward(x, g, b, 0, {})
    with pytest.raises(ValueError, match=r"G \(number of groups\) must be a positive integer; found 'a'"):
        spatial_groupnorm_forward(x, g, b, "a", {})
    with pytest.raises(ValueError, match=r"\(1, 6, 1, 1\).*\(6,\)"):
        spatial_groupnorm_forward(x, np.ones(6), b, 2, {})
    with pytest.raises(ValueError, match=r"\(1, 6, 1, 1\).*\(1, 3, 1, 1\)"):
        spatial_groupnorm_forward(x, g, np.zeros((1, 3, 1, 1)), 2, {})


# ------------------------------------------------------------------------------------------
# PyTorch oracles


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def _torch_grads(torch, fn, inputs, dout):
    tensors = [torch.tensor(a, requires_grad=True) for a in inputs]
    out = fn(*tensors)
    grads = torch.autograd.grad(out, tensors, torch.tensor(dout))
    return out.detach().numpy(), [g.numpy() for g in grads]


@pytest.mark.oracle
@pytest.mark.parametrize("spatial", [False, True])
@pytest.mark.parametrize("momentum", [0.0, 0.1, 0.9, 1.0])
def test_batchnorm_agrees_with_torch_including_running_stats(torch, spatial, momentum):
    shape = (6, 3, 4, 5) if spatial else (7, 4)
    C, N_eff = shape[1], (6 * 4 * 5 if spatial else 7)
    x, dout = data(10, shape, scale=2.0, shift=1.0), data(11, shape)
    gamma, beta = data(12, (C,)), data(13, (C,))
    rm0, rv0 = data(14, (C,)), np.abs(data(15, (C,))) + 0.5
    bn_param = {"mode": "train", "momentum": momentum, "eps": 1e-5, "running_mean": rm0.copy(), "running_var": rv0.copy()}
    forward, backward = ((spatial_batchnorm_forward, spatial_batchnorm_backward) if spatial
                         else (batchnorm_forward, batchnorm_backward))
    out, cache = forward(x, gamma, beta, bn_param)
    dx, dgamma, dbeta = backward(dout, cache)

    t_rm, t_rv = torch.tensor(rm0.copy()), torch.tensor(rv0.copy())
    # torch's momentum weighs the NEW batch statistic: ours = 1 - torch's.
    fn = lambda a, g, b: torch.nn.functional.batch_norm(a, t_rm, t_rv, g, b, training=True,
                                                        momentum=1 - momentum, eps=1e-5)
    t_out, (t_dx, t_dgamma, t_dbeta) = _torch_grads(torch, fn, (x, gamma, beta), dout)
    for ours, theirs in ((out, t_out), (dx, t_dx), (dgamma, t_dgamma), (dbeta, t_dbeta)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(bn_param["running_mean"], t_rm.numpy(), rtol=1e-10, atol=1e-12)
    # torch puts the unbiased batch variance into its running average; ours uses the biased one.
    torch_batch_var_unbiased = ((t_rv.numpy() - momentum * rv0) / (1 - momentum)) if momentum < 1 else None
    if torch_batch_var_unbiased is not None:
        expected_rv = momentum * rv0 + (1 - momentum) * torch_batch_var_unbiased * (N_eff - 1) / N_eff
        np.testing.assert_allclose(bn_param["running_var"], expected_rv, rtol=1e-10, atol=1e-12)
    else:
        np.testing.assert_array_equal(bn_param["running_var"], rv0)

    # test mode against torch's evaluation mode with the updated statistics
    bn_param["mode"] = "test"
    out_test, cache_test = forward(x, gamma, beta, bn_param)
    rm1, rv1 = torch.tensor(bn_param["running_mean"]), torch.tensor(bn_param["running_var"])
    fn = lambda a, g, b: torch.nn.functional.batch_norm(a, rm1, rv1, g, b, training=False, eps=1e-5)
    t_out, t_grads = _torch_grads(torch, fn, (x, gamma, beta), dout)
    np.testing.assert_allclose(out_test, t_out, rtol=1e-10, atol=1e-10)
    for ours, theirs in zip(backward(dout, cache_test), t_grads):
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-10)


@pytest.mark.oracle
def test_layernorm_agrees_with_torch(torch):
    x, dout, gamma, beta = data(20, (5, 7), scale=3.0), data(21, (5, 7)), data(22, (7,)), data(23, (7,))
    out, cache = layernorm_forward(x, gamma, beta, {"eps": 1e-5})
    fn = lambda a, g, b: torch.nn.functional.layer_norm(a, (7,), g, b, eps=1e-5)
    t_out, t_grads = _torch_grads(torch, fn, (x, gamma, beta), dout)
    np.testing.assert_allclose(out, t_out, rtol=1e-10, atol=1e-10)
    for ours, theirs in zip(layernorm_backward(dout, cache), t_grads):
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-10)


@pytest.mark.oracle
@pytest.mark.parametrize("G", [1, 2, 3, 6])
def test_groupnorm_agrees_with_torch(torch, G):
    shape = (3, 6, 4, 5)
    x, dout = data(30, shape, scale=2.0, shift=-1.0), data(31, shape)
    gamma, beta = data(32, (1, 6, 1, 1)), data(33, (1, 6, 1, 1))
    out, cache = spatial_groupnorm_forward(x, gamma, beta, G, {"eps": 1e-5})
    fn = lambda a, g, b: torch.nn.functional.group_norm(a, G, g.reshape(6), b.reshape(6), eps=1e-5)
    t_out, (t_dx, t_dgamma, t_dbeta) = _torch_grads(torch, fn, (x, gamma, beta), dout)
    np.testing.assert_allclose(out, t_out, rtol=1e-10, atol=1e-10)
    dx, dgamma, dbeta = spatial_groupnorm_backward(dout, cache)
    np.testing.assert_allclose(dx, t_dx, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(dgamma, t_dgamma, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(dbeta, t_dbeta, rtol=1e-10, atol=1e-10)


@pytest.mark.oracle
def test_spatial_batchnorm_float32_agrees_with_torch(torch):
    shape = (8, 16, 9, 9)
    x, dout = data(40, shape, np.float32, scale=2.0, shift=1.0), data(41, shape, np.float32)
    gamma, beta = data(42, (16,), np.float32), data(43, (16,), np.float32)
    out, cache = spatial_batchnorm_forward(x, gamma, beta, {"mode": "train"})
    fn = lambda a, g, b: torch.nn.functional.batch_norm(a, None, None, g, b, training=True, eps=1e-5)
    t_out, t_grads = _torch_grads(torch, fn, (x, gamma, beta), dout)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, t_out, rtol=1e-4, atol=1e-4)
    for ours, theirs in zip(spatial_batchnorm_backward(dout, cache), t_grads):
        assert ours.dtype == np.float32
        np.testing.assert_allclose(ours, theirs, rtol=1e-3, atol=1e-3 * max(1.0, float(np.abs(theirs).max())))


# ------------------------------------------------------------------------------------------
# the Numba kernels: on-disk cache, read-only installs, NaN


CACHE_CHILD = textwrap.dedent(r"""
    import os, sys, tempfile
    copy = os.environ.get("CS231N_TEST_PACKAGE_COPY")
    if copy:  # import the package copy, not the editable install
        sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in type(f).__module__
                            and "editable" not in str(getattr(f, "__module__", ""))]
        sys.path.insert(0, copy)
    if os.environ.get("CS231N_TEST_BLOCK_TEMPDIR"):
        tempfile.tempdir = os.environ["CS231N_TEST_BLOCK_TEMPDIR"]
    import numpy as np, numba
    import cs231n_lib
    from cs231n_lib import kernels, kernels_norm
    from cs231n_lib.normalization import spatial_batchnorm_forward, spatial_batchnorm_backward
    x = np.arange(2 * 3 * 2 * 2, dtype=np.float64).reshape(2, 3, 2, 2) ** 1.5
    out, cache = spatial_batchnorm_forward(x, np.ones(3), np.zeros(3), {"mode": "train", "eps": 0.0})
    assert np.allclose(out.mean(axis=(0, 2, 3)), 0) and np.allclose(out.std(axis=(0, 2, 3)), 1)
    dx, dgamma, dbeta = spatial_batchnorm_backward(np.ones_like(x), cache)
    assert np.allclose(dx, 0) and np.allclose(dbeta, 8)
    print("package=" + os.path.dirname(cs231n_lib.__file__))
    print("cache_mode=" + kernels.CACHE_MODE)
    print("cache_dir=" + str(numba.config.CACHE_DIR))
    print("threading_layer=" + numba.threading_layer())
    print("cached=" + str(all(k._cache is not None and type(k._cache).__name__ == "FunctionCache"
                             for k in kernels_norm.ALL_KERNELS)))
    print("cache_hits=" + str(sum(sum(k.stats.cache_hits.values()) for k in kernels_norm.ALL_KERNELS)))
    print("cache_misses=" + str(sum(sum(k.stats.cache_misses.values()) for k in kernels_norm.ALL_KERNELS)))
""")


def run_cache_child(env_updates):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    env.update(env_updates)
    result = subprocess.run([sys.executable, "-c", CACHE_CHILD], env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)


@pytest.mark.slow
def test_kernels_load_from_disk_cache_in_a_second_process(tmp_path):
    env = {"NUMBA_CACHE_DIR": str(tmp_path / "numba-cache")}
    first, second = run_cache_child(env), run_cache_child(env)
    assert first["cached"] == second["cached"] == "True"
    assert int(first["cache_misses"]) >= 2  # compiled (forward and backward) and saved
    assert int(second["cache_hits"]) >= 2 and int(second["cache_misses"]) == 0
    assert second["threading_layer"] == "workqueue"


@pytest.mark.slow
def test_kernels_work_when_no_cache_folder_is_writable(tmp_path):
    import cs231n_lib

    # A package copy whose __pycache__ folders are files, and cache variables pointing below a
    # file: no default cache location can be created, not even by root.
    site = tmp_path / "site"
    shutil.copytree(os.path.dirname(cs231n_lib.__file__), site / "cs231n_lib",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for folder in [site / "cs231n_lib", *(p for p in (site / "cs231n_lib").rglob("*") if p.is_dir())]:
        (folder / "__pycache__").write_text("not a folder")
    blocker = tmp_path / "blocker"
    blocker.write_text("a file")
    (tmp_path / "tmp").mkdir()
    env = {"CS231N_TEST_PACKAGE_COPY": str(site), "NUMBA_CACHE_DIR": f"{blocker}/numba",
           "XDG_CACHE_HOME": f"{blocker}/xdg", "HOME": f"{blocker}/home", "TMPDIR": str(tmp_path / "tmp")}
    facts = run_cache_child(env)
    assert facts["package"] == str(site / "cs231n_lib")
    assert facts["cache_mode"] == "private-tempdir" and facts["cached"] == "True"
    assert facts["cache_dir"].startswith(str(tmp_path / "tmp"))
    # not even a temporary folder: compiled without a cache, still correct
    facts = run_cache_child(dict(env, CS231N_TEST_BLOCK_TEMPDIR=f"{blocker}/tmp"))
    assert facts["cache_mode"] == "off" and facts["cached"] == "False"


def test_kernels_match_their_python_source():
    from cs231n_lib import kernels_norm

    x = data(7, (3, 4, 10), scale=2.0, shift=1.0)
    gamma, beta, dout = data(8, (4,)), data(9, (4,)), data(10, (3, 4, 10))
    results = []
    for run in (lambda k: k, lambda k: k.py_func):
        out, mean, var = np.empty_like(x), np.empty(4), np.empty(4)
        run(kernels_norm.ALL_KERNELS[0])(x, gamma, beta, 1e-5, out, mean, var)
        dx, dgamma, dbeta = np.empty_like(x), np.empty(4), np.empty(4)
        run(kernels_norm.ALL_KERNELS[1])(dout, x, mean, 1 / np.sqrt(var + 1e-5), gamma, dx, dgamma, dbeta)
        results.append((out, mean, var, dx, dgamma, dbeta))
    for compiled, interpreted in zip(*results):
        np.testing.assert_allclose(compiled, interpreted, rtol=1e-12, atol=1e-12)


def test_spatial_batchnorm_propagates_nan_to_its_channel_only():
    x = data(11, (2, 3, 4, 4))
    x[1, 1, 2, 3] = np.nan
    out, cache = spatial_batchnorm_forward(x, np.ones(3), np.zeros(3), {"mode": "train"})
    assert np.isnan(out[:, 1]).all()
    assert np.isfinite(out[:, [0, 2]]).all()
    dx, dgamma, dbeta = spatial_batchnorm_backward(np.ones_like(x), cache)
    assert np.isnan(dx[:, 1]).all() and np.isfinite(dx[:, [0, 2]]).all()
