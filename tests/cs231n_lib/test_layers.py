"""Tests of cs231n_lib.layers against direct formulas, numerical gradients and PyTorch."""

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from cs231n_lib.layers import (
    affine_backward,
    affine_forward,
    relu_backward,
    relu_forward,
    softmax_loss,
    svm_loss,
)
from oracles_norm import assert_gradient_matches

DTYPES = [np.float64, np.float32]
FAST = settings(max_examples=25, deadline=None)
SLOW = settings(max_examples=10, deadline=None)
seeds = st.integers(0, 2**32 - 1)
dtypes = st.sampled_from(DTYPES)


def data(seed, shape, dtype=np.float64, scale=1.0):
    return (scale * np.random.default_rng(seed).standard_normal(shape)).astype(dtype)


def labels(seed, N, C):
    return np.random.default_rng(seed).integers(0, C, size=N)


# ------------------------------------------------------------------------------------------
# loop oracles of the losses


def softmax_loss_loop(x, y):
    N, C = x.shape
    total = 0.0
    for i in range(N):
        row = [float(v) for v in x[i]]
        top = max(row)
        log_sum = top + math.log(math.fsum(math.exp(v - top) for v in row))
        total += log_sum - row[y[i]]
    return total / N


def svm_loss_loop(x, y):
    N, C = x.shape
    total = 0.0
    for i in range(N):
        for j in range(C):
            if j != y[i]:
                total += max(0.0, float(x[i, j]) - float(x[i, y[i]]) + 1.0)
    return total / N


# ------------------------------------------------------------------------------------------
# affine


@FAST
@given(seed=seeds, N=st.integers(1, 5), dims=st.lists(st.integers(1, 4), min_size=1, max_size=3),
       M=st.integers(1, 5), dtype=dtypes)
def test_affine_forward_matches_loops(seed, N, dims, M, dtype):
    x = data(seed, (N, *dims), dtype)
    D = int(np.prod(dims))
    w, b = data(seed + 1, (D, M), dtype), data(seed + 2, (M,), dtype)
    out, _ = affine_forward(x, w, b)
    assert out.shape == (N, M) and out.dtype == dtype
    flat = x.reshape(N, D).astype(float)
    expected = np.array([[math.fsum(flat[n, d] * float(w[d, m]) for d in range(D)) + float(b[m])
                          for m in range(M)] for n in range(N)])
    t = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(out, expected, rtol=t, atol=t)


@SLOW
@given(seed=seeds, N=st.integers(1, 4), dims=st.lists(st.integers(1, 3), min_size=1, max_size=3), M=st.integers(1, 4))
def test_affine_backward_matches_numerical_gradient(seed, N, dims, M):
    x = data(seed, (N, *dims))
    D = int(np.prod(dims))
    w, b, dout = data(seed + 1, (D, M)), data(seed + 2, (M,)), data(seed + 3, (N, M))
    _, cache = affine_forward(x, w, b)
    dx, dw, db = affine_backward(dout, cache)
    assert dx.shape == x.shape and dw.shape == w.shape and db.shape == b.shape
    assert_gradient_matches(dx, lambda v: affine_forward(v, w, b)[0], x, dout, name="dx")
    assert_gradient_matches(dw, lambda v: affine_forward(x, v, b)[0], w, dout, name="dw")
    assert_gradient_matches(db, lambda v: affine_forward(x, w, v)[0], b, dout, name="db")


def test_affine_float32_keeps_dtype_in_backward():
    x, w, b, dout = (data(s, shape, np.float32) for s, shape in enumerate([(3, 2, 2), (4, 5), (5,), (3, 5)]))
    out, cache = affine_forward(x, w, b)
    assert out.dtype == np.float32
    assert all(g.dtype == np.float32 for g in affine_backward(dout, cache))


def test_affine_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match=r"D = 6.*\(5, 3\)"):
        affine_forward(np.zeros((2, 2, 3)), np.zeros((5, 3)), np.zeros(3))
    with pytest.raises(ValueError, match=r"\(3,\).*\(4,\)"):
        affine_forward(np.zeros((2, 6)), np.zeros((6, 3)), np.zeros(4))
    _, cache = affine_forward(np.zeros((2, 6)), np.zeros((6, 3)), np.zeros(3))
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(3, 2\)"):
        affine_backward(np.zeros((3, 2)), cache)


# ------------------------------------------------------------------------------------------
# relu


@FAST
@given(seed=seeds, shape=st.lists(st.integers(1, 5), min_size=1, max_size=4), dtype=dtypes)
def test_relu_forward_and_backward(seed, shape, dtype):
    x = data(seed, shape, dtype)
    dout = data(seed + 1, shape, dtype)
    out, cache = relu_forward(x)
    dx = relu_backward(dout, cache)
    assert out.dtype == dx.dtype == dtype
    for idx in np.ndindex(*shape):
        assert out[idx] == (x[idx] if x[idx] > 0 else 0)
        assert dx[idx] == (dout[idx] if x[idx] > 0 else 0)


def test_relu_backward_matches_numerical_gradient():
    x = data(0, (4, 5)) + 0.01 * np.sign(data(0, (4, 5)))  # stay away from the kink
    dout = data(1, (4, 5))
    dx = relu_backward(dout, relu_forward(x)[1])
    assert_gradient_matches(dx, lambda v: relu_forward(v)[0], x, dout, name="dx")


@pytest.mark.parametrize("copies", [1, 20_000])  # small arrays use np.where, large ones a kernel
def test_relu_backward_gives_zero_where_x_is_not_positive_even_for_non_finite_dout(copies):
    x = np.tile([[-1.0, 0.0, 2.0, -0.0], [3.0, -2.0, np.inf, -np.inf]], (copies, 1))
    dout = np.tile([[np.inf, np.nan, 5.0, -np.inf], [np.nan, 7.0, 1.0, 2.0]], (copies, 1))
    dx = relu_backward(dout, relu_forward(x)[1])
    expected = np.tile([[0.0, 0.0, 5.0, 0.0], [np.nan, 0.0, 1.0, 0.0]], (copies, 1))
    np.testing.assert_array_equal(dx, expected)
    assert dx.dtype == np.float64


def test_relu_backward_takes_views_and_casts_dout_to_the_dtype_of_x():
    x = data(3, (6, 8))[:, ::2]  # not contiguous
    dout = data(4, (6, 4)).astype(np.float32)
    dx = relu_backward(dout, relu_forward(x)[1])
    assert dx.dtype == np.float64
    np.testing.assert_array_equal(dx, np.where(x > 0, dout.astype(np.float64), 0))


def test_relu_backward_rejects_wrong_shape():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(3, 2\)"):
        relu_backward(np.zeros((3, 2)), relu_forward(np.zeros((2, 3)))[1])


# ------------------------------------------------------------------------------------------
# losses


@FAST
@given(seed=seeds, N=st.integers(1, 8), C=st.integers(2, 7), dtype=dtypes, scale=st.sampled_from([0.1, 1.0, 10.0]))
def test_losses_match_loop_oracles(seed, N, C, dtype, scale):
    x, y = data(seed, (N, C), dtype, scale), labels(seed, N, C)
    t = 1e-12 if dtype == np.float64 else 1e-5
    for loss_fn, oracle in ((softmax_loss, softmax_loss_loop), (svm_loss, svm_loss_loop)):
        loss, dx = loss_fn(x, y)
        assert np.asarray(loss).dtype == dtype and dx.dtype == dtype and dx.shape == (N, C)
        assert float(loss) == pytest.approx(oracle(x, y), rel=t, abs=t)


@SLOW
@given(seed=seeds, N=st.integers(1, 6), C=st.integers(2, 6))
def test_loss_gradients_match_numerical_gradient(seed, N, C):
    x, y = data(seed, (N, C)), labels(seed, N, C)
    margins = x - x[np.arange(N), y][:, None] + 1
    margins[np.arange(N), y] = 1.0
    assume(float(np.min(np.abs(margins))) > 1e-3)  # a hinge kink inside the stencil is not a bug
    for loss_fn in (softmax_loss, svm_loss):
        _, dx = loss_fn(x, y)
        assert_gradient_matches(dx, lambda v, loss_fn=loss_fn: loss_fn(v, y)[0], x, np.array(1.0), name=loss_fn.__name__)


def test_softmax_loss_is_stable_for_huge_scores():
    x = np.array([[1000.0, 0.0, -1000.0], [0.0, 1e4, 0.0]])
    y = np.array([0, 0])
    loss, dx = softmax_loss(x, y)
    assert np.isfinite(loss) and np.all(np.isfinite(dx))
    assert loss == pytest.approx(1e4 / 2)  # first sample ~0, second 1e4
    loss32, dx32 = softmax_loss(x.astype(np.float32), y)
    assert np.isfinite(loss32) and np.all(np.isfinite(dx32))


def test_loss_values_by_hand():
    x = np.array([[2.0, 1.0, 0.0]])
    assert svm_loss(x, np.array([1]))[0] == pytest.approx(2.0)  # max(0, 2-1+1) + max(0, 0-1+1)
    assert softmax_loss(np.zeros((2, 4)), np.array([0, 3]))[0] == pytest.approx(math.log(4))


@pytest.mark.parametrize("loss_fn", [softmax_loss, svm_loss])
def test_losses_reject_bad_labels(loss_fn):
    x = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"\[0, 3\].*4"):
        loss_fn(x, np.array([0, 4, 1]))
    with pytest.raises(ValueError, match="-1"):
        loss_fn(x, np.array([0, -1, 1]))
    with pytest.raises(ValueError, match="integers.*float64"):
        loss_fn(x, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match=r"\(3,\).*\(2,\)"):
        loss_fn(x, np.array([0, 1]))
    with pytest.raises(ValueError, match="2 dimensions"):
        loss_fn(np.zeros(4), np.array([0]))


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


@pytest.mark.oracle
@pytest.mark.parametrize("seed", range(3))
def test_losses_agree_with_torch(torch, seed):
    N, C = 6, 5
    x, y = data(seed, (N, C), scale=3.0), labels(seed, N, C)
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.tensor(y)
    for loss_fn, torch_loss in (
        (softmax_loss, lambda a: torch.nn.functional.cross_entropy(a, ty)),
        # torch divides each sample's hinge sum by C as well as averaging over N
        (svm_loss, lambda a: C * torch.nn.functional.multi_margin_loss(a, ty, p=1, margin=1.0)),
    ):
        loss, dx = loss_fn(x, y)
        t_loss = torch_loss(tx)
        (t_dx,) = torch.autograd.grad(t_loss, tx)
        assert float(loss) == pytest.approx(t_loss.item(), rel=1e-10, abs=1e-12)
        np.testing.assert_allclose(dx, t_dx.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.oracle
def test_affine_agrees_with_torch(torch):
    x, w, b, dout = data(0, (4, 3, 2)), data(1, (6, 5)), data(2, (5,)), data(3, (4, 5))
    out, cache = affine_forward(x, w, b)
    tensors = [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
    t_out = tensors[0].reshape(4, 6) @ tensors[1] + tensors[2]
    t_grads = torch.autograd.grad(t_out, tensors, torch.tensor(dout))
    np.testing.assert_allclose(out, t_out.detach().numpy(), rtol=1e-12, atol=1e-12)
    for ours, theirs in zip(affine_backward(dout, cache), t_grads):
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-12, atol=1e-12)


def test_gradient_oracle_detects_a_small_error():
    # The numerical-gradient check used throughout must reject a gradient that is off by 1e-6.
    x, w, b, dout = data(0, (3, 4)), data(1, (4, 2)), data(2, (2,)), data(3, (3, 2))
    dx, _, _ = affine_backward(dout, affine_forward(x, w, b)[1])
    assert_gradient_matches(dx, lambda v: affine_forward(v, w, b)[0], x, dout)
    wrong = dx.copy()
    wrong[1, 2] *= 1 + 1e-6
    with pytest.raises(AssertionError, match=r"at \(1, 2\)"):
        assert_gradient_matches(wrong, lambda v: affine_forward(v, w, b)[0], x, dout)
