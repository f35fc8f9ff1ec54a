"""Tests of the sandwich layers in cs231n_lib.layer_utils."""

import numpy as np
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from cs231n_lib.layer_utils import (
    affine_relu_backward,
    affine_relu_forward,
    conv_bn_relu_backward,
    conv_bn_relu_forward,
    conv_relu_backward,
    conv_relu_forward,
    conv_relu_pool_backward,
    conv_relu_pool_forward,
)
from oracles_norm import assert_gradient_matches, numerical_gradient

SLOW = settings(max_examples=8, deadline=None)
seeds = st.integers(0, 2**32 - 1)
CONV = {"stride": 1, "pad": 1}
POOL = {"pool_height": 2, "pool_width": 2, "stride": 2}


def data(seed, shape, dtype=np.float64, scale=1.0):
    return (scale * np.random.default_rng(seed).standard_normal(shape)).astype(dtype)


def conv_loop(x, w, b, stride, pad):
    """Direct convolution: out[n, f, i, j] = sum over c, p, q of xpad * w, plus b[f]."""
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    xp = np.pad(x.astype(float), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    Ho, Wo = (H + 2 * pad - HH) // stride + 1, (W + 2 * pad - WW) // stride + 1
    out = np.empty((N, F, Ho, Wo))
    for n in range(N):
        for f in range(F):
            for i in range(Ho):
                for j in range(Wo):
                    window = xp[n, :, i * stride:i * stride + HH, j * stride:j * stride + WW]
                    out[n, f, i, j] = np.sum(window * w[f]) + b[f]
    return out


def away_from_kinks(values, margin=2e-3):
    """Skip examples where a ReLU input (or a pooling window's top two) is closer than ``margin``.

    The numerical gradient perturbs inputs by up to 2e-4 times a weight; a kink inside that
    range makes the finite difference meaningless rather than the layer wrong.
    """
    assume(float(np.min(np.abs(values))) > margin)


def pool_gaps(a):
    """Gap between the largest and second largest entry of every 2x2 window of a."""
    N, C, H, W = a.shape
    windows = np.sort(a.reshape(N, C, H // 2, 2, W // 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(-1, 4), axis=1)
    return windows[:, -1] - windows[:, -2]


def check_gradients(forward, backward, inputs, dout, names, zero=()):
    """Compare every gradient returned by ``backward`` with a numerical one.

    Gradients named in ``zero`` vanish mathematically; they must be zero up to rounding.
    """
    _, cache = forward(*inputs)
    grads = backward(dout, cache)
    assert len(grads) == len(names)
    for k, (name, grad) in enumerate(zip(names, grads)):
        def f(v, k=k):
            args = list(inputs)
            args[k] = v
            return forward(*args)[0]
        assert grad.shape == inputs[k].shape, name
        if name in zero:
            assert float(np.abs(grad).max()) < 1e-12 * max(1.0, float(np.abs(dout).sum())), name
            # the numerical gradient of a vanishing term is zero up to the rounding of the two
            # forward passes it differences (about 1e-12 here, measured)
            numerical = numerical_gradient(f, inputs[k], dout)
            assert float(np.abs(numerical).max()) < 1e-8 * max(1.0, float(np.abs(dout).sum())), name
            continue
        assert_gradient_matches(grad, f, inputs[k], dout, name=name)


@SLOW
@given(seed=seeds, N=st.integers(1, 4), D=st.integers(1, 6), M=st.integers(1, 5))
def test_affine_relu_gradients(seed, N, D, M):
    x, w, b = data(seed, (N, D)), data(seed + 1, (D, M)), data(seed + 2, (M,))
    away_from_kinks(x @ w + b)
    dout = data(seed + 3, (N, M))
    check_gradients(affine_relu_forward, affine_relu_backward, [x, w, b], dout, ["dx", "dw", "db"])


def test_affine_relu_forward_value():
    x, w, b = data(0, (3, 2, 2)), data(1, (4, 5)), data(2, (5,))
    out, _ = affine_relu_forward(x, w, b)
    np.testing.assert_allclose(out, np.maximum(0, x.reshape(3, 4) @ w + b), rtol=1e-12)


@SLOW
@given(seed=seeds, N=st.integers(1, 2), C=st.integers(1, 2), F=st.integers(1, 3), H=st.integers(3, 5))
def test_conv_relu_gradients_and_value(seed, N, C, F, H):
    x, w, b = data(seed, (N, C, H, H)), data(seed + 1, (F, C, 3, 3)), data(seed + 2, (F,))
    out, _ = conv_relu_forward(x, w, b, CONV)
    np.testing.assert_allclose(out, np.maximum(0, conv_loop(x, w, b, 1, 1)), rtol=1e-10, atol=1e-12)
    away_from_kinks(conv_loop(x, w, b, 1, 1))
    dout = data(seed + 3, out.shape)
    check_gradients(lambda x_, w_, b_: conv_relu_forward(x_, w_, b_, CONV), conv_relu_backward,
                    [x, w, b], dout, ["dx", "dw", "db"])


@SLOW
@given(seed=seeds, N=st.integers(1, 2), C=st.integers(1, 2), F=st.integers(1, 2), H=st.sampled_from([4, 6]))
def test_conv_relu_pool_gradients_and_value(seed, N, C, F, H):
    x, w, b = data(seed, (N, C, H, H)), data(seed + 1, (F, C, 3, 3)), data(seed + 2, (F,))
    out, _ = conv_relu_pool_forward(x, w, b, CONV, POOL)
    a = np.maximum(0, conv_loop(x, w, b, 1, 1))
    expected = a.reshape(N, F, H // 2, 2, H // 2, 2).max(axis=(3, 5))
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-12)
    away_from_kinks(conv_loop(x, w, b, 1, 1))
    away_from_kinks(pool_gaps(a))
    dout = data(seed + 3, out.shape)
    check_gradients(lambda x_, w_, b_: conv_relu_pool_forward(x_, w_, b_, CONV, POOL), conv_relu_pool_backward,
                    [x, w, b], dout, ["dx", "dw", "db"])


@SLOW
@given(seed=seeds, N=st.integers(2, 3), C=st.integers(1, 2), F=st.integers(1, 3), H=st.integers(3, 4))
@example(seed=433, N=2, C=2, F=2, H=4)  # a numerical db of 2.7e-12, not exactly 0
def test_conv_bn_relu_gradients_and_value(seed, N, C, F, H):
    x, w, b = data(seed, (N, C, H, H)), data(seed + 1, (F, C, 3, 3)), data(seed + 2, (F,))
    gamma, beta = data(seed + 4, (F,)), data(seed + 5, (F,))

    def forward(x_, w_, b_, gamma_, beta_):
        return conv_bn_relu_forward(x_, w_, b_, gamma_, beta_, CONV, {"mode": "train"})

    out, _ = forward(x, w, b, gamma, beta)
    a = conv_loop(x, w, b, 1, 1)
    mean, var = a.mean(axis=(0, 2, 3), keepdims=True), a.var(axis=(0, 2, 3), keepdims=True)
    normalized = gamma[:, None, None] * (a - mean) / np.sqrt(var + 1e-5) + beta[:, None, None]
    expected = np.maximum(0, normalized)
    away_from_kinks(normalized, margin=5e-3)
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-12)
    dout = data(seed + 3, out.shape)
    check_gradients(forward, conv_bn_relu_backward, [x, w, b, gamma, beta], dout,
                    ["dx", "dw", "db", "dgamma", "dbeta"], zero={"db"})  # batchnorm removes the bias


def test_conv_bn_relu_updates_running_stats_and_keeps_float32():
    x, w, b = data(0, (2, 3, 5, 5), np.float32), data(1, (4, 3, 3, 3), np.float32), data(2, (4,), np.float32)
    gamma, beta = np.ones(4, np.float32), np.zeros(4, np.float32)
    bn_param = {"mode": "train", "momentum": 0.0}
    out, cache = conv_bn_relu_forward(x, w, b, gamma, beta, CONV, bn_param)
    a = conv_loop(x, w, b, 1, 1)
    np.testing.assert_allclose(bn_param["running_mean"], a.mean(axis=(0, 2, 3)), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bn_param["running_var"], a.var(axis=(0, 2, 3)), rtol=1e-4)
    assert out.dtype == np.float32
    assert all(g.dtype == np.float32 for g in conv_bn_relu_backward(np.ones_like(out), cache))


@pytest.mark.oracle
def test_conv_bn_relu_agrees_with_torch():
    torch = pytest.importorskip("torch")
    x, w, b = data(0, (3, 2, 6, 6)), data(1, (4, 2, 3, 3)), data(2, (4,))
    gamma, beta, dout = data(3, (4,)), data(4, (4,)), data(5, (3, 4, 6, 6))
    out, cache = conv_bn_relu_forward(x, w, b, gamma, beta, CONV, {"mode": "train"})
    grads = conv_bn_relu_backward(dout, cache)
    tensors = [torch.tensor(a, requires_grad=True) for a in (x, w, b, gamma, beta)]
    tx, tw, tb, tg, tbeta = tensors
    a = torch.nn.functional.conv2d(tx, tw, tb, stride=1, padding=1)
    t_out = torch.relu(torch.nn.functional.batch_norm(a, None, None, tg, tbeta, training=True, eps=1e-5))
    t_grads = torch.autograd.grad(t_out, tensors, torch.tensor(dout))
    np.testing.assert_allclose(out, t_out.detach().numpy(), rtol=1e-10, atol=1e-10)
    for ours, theirs in zip(grads, t_grads):
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-10, atol=1e-10)


def test_residual_block_is_relu_of_its_input_when_the_last_batchnorm_outputs_zero():
    """With gamma2 = beta2 = 0 the convolutions add nothing: out = ReLU(x), and dx = dout * (x > 0)."""
    from cs231n_lib.layer_utils import residual_block_backward, residual_block_forward

    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 4, 5))
    params = {"w1": rng.standard_normal((3, 3, 3, 3)), "gamma1": np.ones(3), "beta1": np.zeros(3),
              "w2": rng.standard_normal((3, 3, 3, 3)), "gamma2": np.zeros(3), "beta2": np.zeros(3)}
    out, cache = residual_block_forward(x, params, [{"mode": "train"}, {"mode": "train"}])
    np.testing.assert_array_equal(out, np.maximum(x, 0))
    dout = rng.standard_normal(x.shape)
    dx, grads = residual_block_backward(dout, cache)
    np.testing.assert_allclose(dx, dout * (x > 0), atol=1e-12)
    assert np.abs(grads["w1"]).max() == 0 and np.abs(grads["gamma2"]).max() > 0


def test_residual_block_gradients_match_numerical_gradients():
    from cs231n_lib.gradient_check import eval_numerical_gradient_array, rel_error
    from cs231n_lib.layer_utils import residual_block_backward, residual_block_forward

    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 2, 4, 4))
    params = {"w1": rng.standard_normal((2, 2, 3, 3)) * 0.5, "gamma1": 1 + 0.1 * rng.standard_normal(2),
              "beta1": 0.1 * rng.standard_normal(2), "w2": rng.standard_normal((2, 2, 3, 3)) * 0.5,
              "gamma2": 1 + 0.1 * rng.standard_normal(2), "beta2": 0.1 * rng.standard_normal(2)}
    dout = rng.standard_normal(x.shape)

    def forward(_):
        return residual_block_forward(x, params, [{"mode": "train"}, {"mode": "train"}])[0]

    _, cache = residual_block_forward(x, params, [{"mode": "train"}, {"mode": "train"}])
    dx, grads = residual_block_backward(dout, cache)
    assert rel_error(eval_numerical_gradient_array(forward, x, dout), dx) < 1e-6
    for name, value in params.items():
        assert rel_error(eval_numerical_gradient_array(forward, value, dout), grads[name]) < 1e-6, name
