"""Tests of cs231n_lib.optim: hand-computed steps, state handling, dtypes and convergence."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cs231n_lib.optim import adam, rmsprop, sgd, sgd_momentum

RULES = [sgd, sgd_momentum, rmsprop, adam]
FAST = settings(max_examples=25, deadline=None)


def test_sgd_step_by_hand():
    w, dw = np.array([1.0, -2.0]), np.array([0.5, 0.25])
    next_w, config = sgd(w, dw, {"learning_rate": 0.1})
    np.testing.assert_allclose(next_w, [1.0 - 0.05, -2.0 - 0.025])
    _, config = sgd(w, dw)
    assert config["learning_rate"] == 1e-2


def test_sgd_momentum_two_steps_by_hand():
    w, dw = np.array([1.0]), np.array([2.0])
    config = {"learning_rate": 0.1, "momentum": 0.5}
    w1, config = sgd_momentum(w, dw, config)          # v = -0.2
    w2, config = sgd_momentum(w1, dw, config)         # v = 0.5 * -0.2 - 0.2 = -0.3
    np.testing.assert_allclose(w1, [0.8])
    np.testing.assert_allclose(w2, [0.5])
    np.testing.assert_allclose(config["velocity"], [-0.3])
    _, fresh = sgd_momentum(w, dw)
    assert fresh["learning_rate"] == 1e-2 and fresh["momentum"] == 0.9


def test_rmsprop_two_steps_by_hand():
    w, dw = np.array([1.0]), np.array([2.0])
    config = {"learning_rate": 0.1, "decay_rate": 0.9, "epsilon": 1e-8}
    w1, config = rmsprop(w, dw, config)
    cache1 = 0.1 * 4.0
    np.testing.assert_allclose(w1, [1.0 - 0.1 * 2.0 / (math.sqrt(cache1) + 1e-8)])
    w2, config = rmsprop(w1, dw, config)
    cache2 = 0.9 * cache1 + 0.1 * 4.0
    np.testing.assert_allclose(config["cache"], [cache2])
    np.testing.assert_allclose(w2, w1 - 0.1 * 2.0 / (math.sqrt(cache2) + 1e-8))
    _, fresh = rmsprop(w, dw)
    assert fresh["learning_rate"] == 1e-2 and fresh["decay_rate"] == 0.99 and fresh["epsilon"] == 1e-8


def test_adam_two_steps_by_hand():
    w, lr, b1, b2, eps = np.array([1.0]), 0.1, 0.9, 0.999, 1e-8
    config = {"learning_rate": lr}
    g1, g2 = 2.0, -1.0
    w1, config = adam(w, np.array([g1]), config)
    # first step: the bias-corrected moments are g1 and g1**2, so the step is lr * sign(g1)
    np.testing.assert_allclose(w1, [1.0 - lr * g1 / (abs(g1) + eps)])
    assert config["t"] == 1
    w2, config = adam(w1, np.array([g2]), config)
    m = b1 * (1 - b1) * g1 + (1 - b1) * g2
    v = b2 * (1 - b2) * g1**2 + (1 - b2) * g2**2
    m_hat, v_hat = m / (1 - b1**2), v / (1 - b2**2)
    np.testing.assert_allclose(w2, w1 - lr * m_hat / (math.sqrt(v_hat) + eps))
    np.testing.assert_allclose(config["m"], [m])
    np.testing.assert_allclose(config["v"], [v])
    assert config["t"] == 2
    _, fresh = adam(w, np.array([g1]))
    assert (fresh["learning_rate"], fresh["beta1"], fresh["beta2"], fresh["epsilon"]) == (1e-3, 0.9, 0.999, 1e-8)


def test_adam_resumes_from_step_counter():
    # With t = 9 in the config the next step uses t = 10 in the bias correction.
    w, dw = np.array([0.0]), np.array([1.0])
    next_w, config = adam(w, dw, {"learning_rate": 1.0, "t": 9})
    m_hat = 0.1 / (1 - 0.9**10)
    v_hat = 0.001 / (1 - 0.999**10)
    np.testing.assert_allclose(next_w, [-m_hat / (math.sqrt(v_hat) + 1e-8)])
    assert config["t"] == 10


@pytest.mark.parametrize("rule", RULES)
def test_rules_do_not_modify_inputs(rule):
    w, dw = np.array([1.0, 2.0]), np.array([0.3, -0.4])
    w0, dw0 = w.copy(), dw.copy()
    rule(w, dw)
    np.testing.assert_array_equal(w, w0)
    np.testing.assert_array_equal(dw, dw0)


@FAST
@given(rule=st.sampled_from(RULES), dtype=st.sampled_from([np.float32, np.float64]),
       shape=st.lists(st.integers(1, 4), min_size=1, max_size=3), seed=st.integers(0, 2**32 - 1),
       lr=st.floats(1e-4, 1.0), hyper_as_numpy=st.booleans())
def test_rules_keep_dtype_and_shape(rule, dtype, shape, seed, lr, hyper_as_numpy):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(shape).astype(dtype)
    config = {"learning_rate": np.float64(lr) if hyper_as_numpy else lr}
    for _ in range(3):
        dw = rng.standard_normal(shape)  # float64 gradient: must not promote float32 weights
        w, config = rule(w, dw, config)
        assert w.dtype == dtype and w.shape == tuple(shape)
        for key in ("velocity", "cache", "m", "v"):
            if key in config:
                assert config[key].dtype == dtype and config[key].shape == tuple(shape)


@pytest.mark.parametrize("rule, config", [
    (sgd, {"learning_rate": 0.1}),
    (sgd_momentum, {"learning_rate": 0.02, "momentum": 0.9}),
    (rmsprop, {"learning_rate": 0.01}),
    (adam, {"learning_rate": 0.05}),
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rules_minimize_a_quadratic(rule, config, dtype):
    # f(w) = 0.5 * sum(scales * (w - target)**2), an ill-conditioned bowl
    scales = np.array([1.0, 4.0, 0.5, 2.0])
    target = np.array([1.0, -2.0, 3.0, 0.5])
    f = lambda w: 0.5 * float(np.sum(scales * (w.astype(float) - target) ** 2))
    w = np.zeros(4, dtype=dtype)
    start = f(w)
    losses = []
    for _ in range(500):
        w, config = rule(w, (scales * (w - target)).astype(dtype), config)
        losses.append(f(w))
    assert losses[-1] < 1e-2 * start
    assert losses[-1] < losses[len(losses) // 10]


@pytest.mark.parametrize("rule, key, value", [
    (sgd, "learning_rate", -0.1),
    (sgd_momentum, "momentum", 1.0),
    (sgd_momentum, "momentum", -0.5),
    (rmsprop, "decay_rate", 1.2),
    (rmsprop, "epsilon", 0.0),
    (adam, "beta1", 1.0),
    (adam, "beta2", -0.1),
    (adam, "t", -1),
    (adam, "learning_rate", float("nan")),
])
def test_impossible_hyperparameters_are_rejected(rule, key, value):
    with pytest.raises(ValueError, match=key):
        rule(np.zeros(2), np.zeros(2), {key: value})


@pytest.mark.parametrize("rule", RULES)
def test_shape_mismatch_is_rejected(rule):
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(3, 2\)"):
        rule(np.zeros((2, 3)), np.zeros((3, 2)))


def test_state_of_wrong_shape_is_rejected():
    with pytest.raises(ValueError, match=r"velocity.*\(3,\).*\(2,\)"):
        sgd_momentum(np.zeros(3), np.zeros(3), {"velocity": np.zeros(2)})
