"""Tests for ThreeLayerConvNet: initial loss, regularization, gradients (numerical and
PyTorch), dtypes, input checks and overfitting a tiny dataset."""

import time

import numpy as np
import pytest

from cs231n_lib.classifiers import ThreeLayerConvNet
from cs231n_lib.solver import Solver
from cs231n_lib_testkit import numerical_gradient, rel_error


def _small_model(dtype=np.float64, reg=0.0, weight_scale=1e-2, seed=0):
    return ThreeLayerConvNet(input_dim=(3, 8, 8), num_filters=3, filter_size=3, hidden_dim=7,
                             num_classes=5, weight_scale=weight_scale, reg=reg, dtype=dtype, seed=seed)


def test_parameter_shapes_and_default_dtype():
    model = ThreeLayerConvNet(seed=0)
    shapes = {k: v.shape for k, v in model.params.items()}
    assert shapes == {"W1": (32, 3, 7, 7), "b1": (32,), "W2": (32 * 16 * 16, 100), "b2": (100,),
                      "W3": (100, 10), "b3": (10,)}
    assert all(v.dtype == np.float32 for v in model.params.values())
    assert all(not model.params[b].any() for b in ("b1", "b2", "b3"))
    assert abs(model.params["W2"].std() - 1e-3) < 1e-4


def test_initial_loss_is_log_num_classes():
    rng = np.random.default_rng(1)
    model = ThreeLayerConvNet(seed=0)
    X = rng.standard_normal((20, 3, 32, 32))
    y = rng.integers(0, 10, 20)
    loss, _ = model.loss(X, y)
    assert abs(loss - np.log(10)) < 1e-3


def test_regularization_adds_half_reg_sum_of_squared_weights():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((4, 3, 8, 8))
    y = rng.integers(0, 5, 4)
    plain = _small_model(reg=0.0)
    regularized = _small_model(reg=0.7)
    loss0, grads0 = plain.loss(X, y)
    loss1, grads1 = regularized.loss(X, y)
    penalty = 0.5 * 0.7 * sum(np.sum(plain.params[w] ** 2) for w in ("W1", "W2", "W3"))
    assert loss1 > loss0
    assert loss1 - loss0 == pytest.approx(penalty, rel=1e-10)
    for name in grads0:
        extra = 0.7 * plain.params[name] if name.startswith("W") else 0
        np.testing.assert_allclose(grads1[name], grads0[name] + extra, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("reg", [0.0, 0.5])
def test_gradients_match_numerical_gradients(reg):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((2, 3, 8, 8))
    y = rng.integers(0, 5, 2)
    model = _small_model(reg=reg, weight_scale=0.3)
    loss, grads = model.loss(X, y)
    for name, param in model.params.items():
        numeric = numerical_gradient(lambda _: model.loss(X, y)[0], param, 1.0, h=1e-6)
        assert rel_error(grads[name], numeric) < 1e-6, name


def test_float32_model_keeps_float32():
    model = _small_model(dtype=np.float32)
    X = np.random.default_rng(4).standard_normal((3, 3, 8, 8))  # float64 input
    scores = model.loss(X)
    assert scores.dtype == np.float32 and scores.shape == (3, 5)
    loss, grads = model.loss(X, np.array([0, 1, 4]))
    assert loss.dtype == np.float32
    assert all(g.dtype == np.float32 and g.shape == model.params[k].shape for k, g in grads.items())


def test_float32_agrees_with_float64():
    X = np.random.default_rng(5).standard_normal((3, 3, 8, 8))
    y = np.array([0, 1, 4])
    m64 = _small_model(dtype=np.float64, weight_scale=0.3)
    m32 = _small_model(dtype=np.float32, weight_scale=0.3)
    l64, g64 = m64.loss(X, y)
    l32, g32 = m32.loss(X, y)
    assert l32 == pytest.approx(l64, rel=1e-5)
    for name in g64:
        assert rel_error(g32[name], g64[name]) < 1e-4


def test_matches_pytorch(torch):
    F = torch.nn.functional
    rng = np.random.default_rng(6)
    X = rng.standard_normal((3, 3, 8, 8))
    y = rng.integers(0, 5, 3)
    model = _small_model(reg=0.1, weight_scale=0.3)
    loss, grads = model.loss(X, y)
    t = {k: torch.tensor(v, requires_grad=True) for k, v in model.params.items()}
    h = F.max_pool2d(F.relu(F.conv2d(torch.tensor(X), t["W1"], t["b1"], padding=1)), 2, 2)
    h = F.relu(h.reshape(3, -1) @ t["W2"] + t["b2"])
    scores = h @ t["W3"] + t["b3"]
    t_loss = F.cross_entropy(scores, torch.tensor(y)) + 0.05 * sum((t[w] ** 2).sum() for w in ("W1", "W2", "W3"))
    t_loss.backward()
    assert loss == pytest.approx(t_loss.item(), rel=1e-12)
    for name in grads:
        assert rel_error(grads[name], t[name].grad.numpy()) < 1e-10, name


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(input_dim=(3, 9, 9)), r"\(W - F\)/S \+ 1 = \(9 - 2\)/2 \+ 1 = 4.5 is not an integer"),
        (dict(dtype=np.int32), "dtype must be float32 or float64"),
        (dict(reg=-1.0), "reg must be"),
        (dict(weight_scale="xavier"), "weight_scale must be"),
        (dict(input_dim=(3, 8)), r"input_dim must be \(C, H, W\)"),
    ],
)
def test_bad_hyperparameters(kwargs, message):
    base = dict(input_dim=(3, 8, 8), num_filters=2, filter_size=3, hidden_dim=4, num_classes=3)
    with pytest.raises(ValueError, match=message):
        ThreeLayerConvNet(**{**base, **kwargs})


def test_bad_inputs_name_the_shapes():
    model = _small_model()
    with pytest.raises(ValueError, match=r"X must have shape \(N, 3, 8, 8\).*found \(2, 3, 8, 9\)"):
        model.loss(np.zeros((2, 3, 8, 9)))
    with pytest.raises(ValueError, match=r"y must have shape \(2,\)"):
        model.loss(np.zeros((2, 3, 8, 8)), np.zeros(3, dtype=int))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 4\]"):
        model.loss(np.zeros((2, 3, 8, 8)), np.array([0, 5]))


def test_seed_makes_weights_reproducible():
    a, b, c = _small_model(seed=7), _small_model(seed=7), _small_model(seed=8)
    assert all(np.array_equal(a.params[k], b.params[k]) for k in a.params)
    assert not np.array_equal(a.params["W1"], c.params["W1"])


def test_global_seed_is_honoured_without_a_seed():
    np.random.seed(231)
    a = _small_model(seed=None)
    np.random.seed(231)
    b = _small_model(seed=None)
    assert np.array_equal(a.params["W2"], b.params["W2"])


def test_overfits_a_tiny_dataset():
    rng = np.random.default_rng(9)
    data = {
        "X_train": rng.standard_normal((40, 3, 16, 16)).astype(np.float32),
        "y_train": rng.integers(0, 10, 40),
        "X_val": rng.standard_normal((10, 3, 16, 16)).astype(np.float32),
        "y_val": rng.integers(0, 10, 10),
    }
    model = ThreeLayerConvNet(input_dim=(3, 16, 16), num_filters=8, filter_size=3, hidden_dim=64,
                              weight_scale="he", seed=0)
    solver = Solver(model, data, update_rule="adam", optim_config={"learning_rate": 2e-3},
                    batch_size=20, num_epochs=30, verbose=False, seed=0)
    start = time.perf_counter()
    solver.train()
    elapsed = time.perf_counter() - start
    # Random labels: only memorising the 40 images gets them all right.
    assert solver.train_acc_history[-1] == 1.0
    assert solver.train_acc_history[0] < 0.4
    assert solver.loss_history[-1] < 0.1 < solver.loss_history[0]
    assert elapsed < 30


# conv - spatial batchnorm - relu - pool - affine - softmax, as a function of params and bn_param

def _conv_bn_params(rng, C=2, F=3, fs=3, H=6, W=6, K=4):
    flat = F * (H // 2) * (W // 2)
    return {"W1": rng.standard_normal((F, C, fs, fs)) * 0.5, "gamma1": 1 + 0.1 * rng.standard_normal(F),
            "beta1": 0.1 * rng.standard_normal(F), "W2": rng.standard_normal((flat, K)) * 0.2,
            "b2": 0.1 * rng.standard_normal(K)}


def test_conv_bn_net_loss_gradients_match_numerical_gradients_and_set_the_mode():
    from cs231n_lib.classifiers.cnn import conv_bn_net_loss
    from cs231n_lib.gradient_check import eval_numerical_gradient, rel_error

    rng = np.random.default_rng(0)
    params, X, y = _conv_bn_params(rng), rng.standard_normal((5, 2, 6, 6)), rng.integers(0, 4, 5)
    bn_param = {"momentum": 0.9}
    loss, grads = conv_bn_net_loss(params, bn_param, X, y, reg=0.2)
    assert bn_param["mode"] == "train" and bn_param["running_mean"].shape == (3,)
    assert set(grads) == set(params)
    for name in params:
        numeric = eval_numerical_gradient(lambda _: conv_bn_net_loss(params, {"momentum": 0.9}, X, y, 0.2)[0],
                                          params[name], verbose=False, h=1e-6)
        assert rel_error(numeric, grads[name]) < 1e-6, name
    scores = conv_bn_net_loss(params, bn_param, X)
    assert bn_param["mode"] == "test" and scores.shape == (5, 4)
    # test mode: the scores of one image do not depend on the rest of the batch
    np.testing.assert_allclose(conv_bn_net_loss(params, bn_param, X[:1]), scores[:1])
