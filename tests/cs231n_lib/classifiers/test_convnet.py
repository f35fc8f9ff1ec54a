"""Tests for ConvNet: shapes agree with sizing.describe, gradients (numerical and PyTorch),
batchnorm bookkeeping, spec errors, and the FC->CONV conversion checked numerically."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cs231n_lib.classifiers import ConvNet
from cs231n_lib.conv import conv_forward
from cs231n_lib.layers import relu_forward
from cs231n_lib.pooling import max_pool_forward
from cs231n_lib.sizing import describe, fc_to_conv_spec, fc_to_conv_weights, parse_layer, score_map_size, total_stride
from cs231n_lib_testkit import numerical_gradient, rel_error

SMALL_SPEC = ["INPUT 6x6x2", "CONV3-3", "POOL2", "CONV3-4/P1", "FC-5", "FC-4"]


def test_parameters_follow_the_description():
    spec = ["INPUT 32x32x3", "CONV3-16", "CONV3-16", "POOL2", "FC-64", "FC-10"]
    model = ConvNet(spec, seed=0)
    shapes = {k: v.shape for k, v in model.params.items()}
    assert shapes == {"W1": (16, 3, 3, 3), "b1": (16,), "W2": (16, 16, 3, 3), "b2": (16,),
                      "W3": (16 * 16 * 16, 64), "b3": (64,), "W4": (64, 10), "b4": (10,)}
    assert sum(v.size for v in model.params.values()) == describe(spec).params
    assert model.input_dim == (3, 32, 32) and model.num_classes == 10
    # He initialisation: std sqrt(2 / fan_in).
    assert model.params["W3"].std() == pytest.approx(np.sqrt(2 / 4096), rel=0.05)
    assert ConvNet(spec, weight_scale=1e-3, seed=0).params["W3"].std() == pytest.approx(1e-3, rel=0.05)
    assert all(v.dtype == np.float32 for v in model.params.values())


def _build_spec(data, max_layers=4):
    """Draw a valid spec layer by layer, keeping only layers whose size works out."""
    size = data.draw(st.integers(4, 14), label="input size")
    spec = [f"INPUT {size}x{size}x{data.draw(st.integers(1, 3), label='depth')}"]
    for _ in range(data.draw(st.integers(1, max_layers), label="layers")):
        kind = data.draw(st.sampled_from(["conv", "conv", "pool"]))
        if kind == "conv":
            F, K, S = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 4)), data.draw(st.integers(1, 2))
            P = data.draw(st.integers(0, 2))
            D = data.draw(st.integers(1, 2))
            layer = f"CONV{F}-{K}/S{S}/P{P}/D{D}"
        else:
            F = data.draw(st.integers(1, 3))
            layer = f"POOL{F}/S{data.draw(st.integers(1, 3))}"
        try:
            describe(spec + [layer])
        except ValueError:
            continue
        spec.append(layer)
    spec += [f"FC-{k}" for k in data.draw(st.lists(st.integers(1, 6), min_size=1, max_size=2), label="fc")]
    return spec


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), batchnorm=st.booleans())
def test_forward_shapes_match_describe(data, batchnorm):
    spec = _build_spec(data)
    model = ConvNet(spec, use_batchnorm=batchnorm, dtype=np.float64, seed=0)
    N = 2
    X = np.random.default_rng(0).standard_normal((N,) + model.input_dim)
    outputs, _ = model.forward(X, mode="train")
    rows = describe(spec).rows
    assert len(outputs) == len(rows)
    for out, row in zip(outputs, rows):
        expected = (N, row.shape[2], row.shape[0], row.shape[1]) if len(row.shape) == 3 else (N,) + row.shape
        assert out.shape == expected, row.name
    assert model.loss(X).shape == (N, model.num_classes)


@pytest.mark.parametrize("batchnorm", [False, True])
def test_gradients_match_numerical_gradients(batchnorm):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((3, 2, 6, 6))
    y = np.array([0, 3, 1])
    model = ConvNet(SMALL_SPEC, weight_scale=0.5, reg=0.3, use_batchnorm=batchnorm, dtype=np.float64, seed=2)
    if batchnorm:
        for i in (1, 2):
            model.params[f"gamma{i}"] = rng.uniform(0.5, 1.5, model.params[f"gamma{i}"].shape)
            model.params[f"beta{i}"] = rng.standard_normal(model.params[f"beta{i}"].shape)
    _, grads = model.loss(X, y)
    assert set(grads) == set(model.params)
    for name, param in model.params.items():
        numeric = numerical_gradient(lambda _: model.loss(X, y)[0], param, 1.0, h=1e-6)
        if batchnorm and name in ("b1", "b2"):
            # Batchnorm subtracts the channel mean, so a conv bias before it has no effect.
            assert np.abs(grads[name]).max() < 1e-12 and np.abs(numeric).max() < 1e-8, name
        else:
            assert rel_error(grads[name], numeric) < 1e-6, name


def test_matches_pytorch_with_batchnorm_and_dilation(torch):
    F = torch.nn.functional
    spec = ["INPUT 9x9x2", "CONV3-3/D2", "POOL3/S2", "CONV3-4/P1", "FC-6", "FC-3"]
    rng = np.random.default_rng(3)
    X = rng.standard_normal((4, 2, 9, 9))
    y = np.array([0, 2, 1, 2])
    model = ConvNet(spec, reg=0.2, use_batchnorm=True, dtype=np.float64, seed=4)
    loss, grads = model.loss(X, y)
    t = {k: torch.tensor(v, requires_grad=True) for k, v in model.params.items()}
    h = F.conv2d(torch.tensor(X), t["W1"], t["b1"], padding=2, dilation=2)
    h = F.relu(F.batch_norm(h, None, None, t["gamma1"], t["beta1"], training=True, eps=1e-5))
    h = F.max_pool2d(h, 3, 2)
    h = F.conv2d(h, t["W2"], t["b2"], padding=1)
    h = F.relu(F.batch_norm(h, None, None, t["gamma2"], t["beta2"], training=True, eps=1e-5))
    h = F.relu(h.reshape(4, -1) @ t["W3"] + t["b3"])
    scores = h @ t["W4"] + t["b4"]
    penalty = 0.1 * sum((t[f"W{i}"] ** 2).sum() for i in range(1, 5))
    t_loss = F.cross_entropy(scores, torch.tensor(y)) + penalty
    t_loss.backward()
    assert loss == pytest.approx(t_loss.item(), rel=1e-10)
    for name in grads:
        if name in ("b1", "b2"):  # conv biases before batchnorm: both gradients are rounding noise
            assert np.abs(grads[name]).max() < 1e-12 and np.abs(t[name].grad.numpy()).max() < 1e-12
        else:
            assert rel_error(grads[name], t[name].grad.numpy()) < 1e-8, name


def test_batchnorm_running_statistics():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((5, 2, 6, 6)) + 3.0
    model = ConvNet(SMALL_SPEC, use_batchnorm=True, dtype=np.float64, seed=6)
    model.loss(X, np.zeros(5, dtype=int))
    pre_bn = conv_forward(X, model.params["W1"], model.params["b1"], {"stride": 1, "pad": 1})[0]
    # momentum 0.9, starting from mean 0 and variance 1
    np.testing.assert_allclose(model.bn_params[1]["running_mean"], 0.1 * pre_bn.mean(axis=(0, 2, 3)), rtol=1e-10)
    np.testing.assert_allclose(model.bn_params[1]["running_var"], 0.9 + 0.1 * pre_bn.var(axis=(0, 2, 3)), rtol=1e-10)
    # Test mode (y is None) uses the running statistics and leaves them alone.
    before = {k: v.copy() for k, v in model.bn_params[1].items() if k.startswith("running")}
    scores_a = model.loss(X[:2])
    scores_b = model.loss(X[:1])
    np.testing.assert_allclose(scores_a[:1], scores_b, rtol=1e-10)  # no batch dependence
    assert all(np.array_equal(model.bn_params[1][k], v) for k, v in before.items())


def test_float32_model_keeps_float32():
    model = ConvNet(SMALL_SPEC, use_batchnorm=True, seed=0)
    X = np.random.default_rng(7).standard_normal((3, 2, 6, 6))
    loss, grads = model.loss(X, np.array([0, 1, 2]))
    assert loss.dtype == np.float32
    assert all(g.dtype == np.float32 for g in grads.values())
    assert model.loss(X).dtype == np.float32


def test_spec_as_one_string():
    model = ConvNet("INPUT 8x8x3 -> CONV3-4 -> POOL2 -> FC-5", seed=0)
    assert [layer.text for layer in model.layers] == ["INPUT 8x8x3", "CONV3-4", "POOL2", "FC-5"]
    assert "CONV3-4" in repr(model)


def test_num_classes():
    assert ConvNet(["INPUT 8x8x3", "CONV3-4", "POOL2"], num_classes=7, seed=0).params["W2"].shape == (64, 7)
    assert ConvNet(["INPUT 8x8x3", "FC-7"], num_classes=7, seed=0).num_classes == 7
    with pytest.raises(ValueError, match="ends with 'FC-5' but num_classes = 7"):
        ConvNet(["INPUT 8x8x3", "FC-5"], num_classes=7)
    with pytest.raises(ValueError, match="must end with an FC layer"):
        ConvNet(["INPUT 8x8x3", "CONV3-4"])


def test_impossible_spec_fails_when_built():
    with pytest.raises(ValueError, match=r"layer 2 'POOL3/S2' on a \[32x32x8\] input"):
        ConvNet(["INPUT 32x32x3", "CONV3-8", "POOL3/S2", "FC-10"])


def test_wrong_input_shape():
    model = ConvNet(SMALL_SPEC, seed=0)
    with pytest.raises(ValueError, match=r"X must have shape \(N, 2, 6, 6\) for this model; found \(1, 6, 6, 2\)"):
        model.loss(np.zeros((1, 6, 6, 2)))


# ------------------------------------------------------------------ FC -> CONV, numerically

def _converted_scores(model, X):
    """Run ``model`` as a fully convolutional net: every FC becomes a conv (sizing helpers)."""
    out = X
    for position, layer in enumerate(fc_to_conv_spec([layer.text for layer in model.layers])[1:], start=1):
        original = model.layers[position]
        layer = parse_layer(layer)
        if layer.kind == "pool":
            out, _ = max_pool_forward(out, {"pool_height": layer.size, "pool_width": layer.size, "stride": layer.stride})
            continue
        i = model.weight_index[position]
        w, b = model.params[f"W{i}"], model.params[f"b{i}"]
        if original.kind == "fc":
            row_before = model.description.rows[position - 1]
            in_shape = ((row_before.shape[2],) + row_before.shape[:2]) if len(row_before.shape) == 3 else (row_before.shape[0], 1, 1)
            w, b = fc_to_conv_weights(w, b, in_shape)
        out, _ = conv_forward(out, w, b, {"stride": layer.stride, "pad": layer.pad})
        if position < len(model.layers) - 1:
            out, _ = relu_forward(out)
    return out


@pytest.mark.parametrize(
    "spec, big",
    [
        (["INPUT 10x10x2", "CONV3-4/P0", "POOL2", "FC-6", "FC-3"], 16),
        (["INPUT 12x12x3", "CONV3-4/P0", "CONV3-5/P0", "POOL2", "FC-7", "FC-5", "FC-3"], 18),
        (["INPUT 11x11x2", "CONV3-4/S2/P0", "POOL2/S1", "FC-3"], 19),
    ],
)
def test_converted_net_equals_sliding_the_original(spec, big):
    model = ConvNet(spec, weight_scale=0.5, dtype=np.float64, seed=8)
    size = model.input_dim[1]
    step = total_stride(spec)
    X = np.random.default_rng(9).standard_normal((2, model.input_dim[0], big, big))
    score_map = _converted_scores(model, X)
    positions = (big - size) // step + 1
    assert score_map.shape == (2, model.num_classes, positions, positions)
    assert score_map_size(spec, big) == (positions, positions, model.num_classes)
    for i in range(positions):
        for j in range(positions):
            crop = X[:, :, i * step:i * step + size, j * step:j * step + size]
            np.testing.assert_allclose(score_map[:, :, i, j], model.loss(crop), rtol=1e-10, atol=1e-12)


def test_padding_breaks_the_equivalence_at_crop_borders():
    spec = ["INPUT 8x8x2", "CONV3-4", "POOL2", "FC-3"]  # "same" padding
    model = ConvNet(spec, weight_scale=0.5, dtype=np.float64, seed=10)
    X = np.random.default_rng(11).standard_normal((1, 2, 12, 12))
    score_map = _converted_scores(model, X)
    assert score_map.shape == (1, 3, 3, 3)
    # The top-left crop shares the big image's zero border on two sides only, so it differs too.
    crop_scores = model.loss(X[:, :, 2:10, 2:10])
    assert np.abs(score_map[:, :, 1, 1] - crop_scores).max() > 1e-3
