"""Tests for the sizing helpers beyond the output-size rule: spec parsing, ``describe``,
the notes' worked examples (VGG-16, AlexNet CONV1), receptive fields and FC->CONV conversion."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cs231n_lib.sizing import (
    SPEC_GRAMMAR,
    VGG16_SPEC,
    conv_layer_counts,
    conv_output_size,
    describe,
    fc_to_conv_spec,
    fc_to_conv_weights,
    parse_layer,
    parse_spec,
    pool_output_size,
    receptive_field,
    score_map_size,
    stacked_vs_single_params,
    total_stride,
    with_input_size,
)

# (activations, weights) of every row of the notes' VGG-16 table, written out by hand.
VGG16_ROWS = [
    ("INPUT", (224, 224, 3), 150_528, 0),
    ("CONV3-64", (224, 224, 64), 3_211_264, 1_728),
    ("CONV3-64", (224, 224, 64), 3_211_264, 36_864),
    ("POOL2", (112, 112, 64), 802_816, 0),
    ("CONV3-128", (112, 112, 128), 1_605_632, 73_728),
    ("CONV3-128", (112, 112, 128), 1_605_632, 147_456),
    ("POOL2", (56, 56, 128), 401_408, 0),
    ("CONV3-256", (56, 56, 256), 802_816, 294_912),
    ("CONV3-256", (56, 56, 256), 802_816, 589_824),
    ("CONV3-256", (56, 56, 256), 802_816, 589_824),
    ("POOL2", (28, 28, 256), 200_704, 0),
    ("CONV3-512", (28, 28, 512), 401_408, 1_179_648),
    ("CONV3-512", (28, 28, 512), 401_408, 2_359_296),
    ("CONV3-512", (28, 28, 512), 401_408, 2_359_296),
    ("POOL2", (14, 14, 512), 100_352, 0),
    ("CONV3-512", (14, 14, 512), 100_352, 2_359_296),
    ("CONV3-512", (14, 14, 512), 100_352, 2_359_296),
    ("CONV3-512", (14, 14, 512), 100_352, 2_359_296),
    ("POOL2", (7, 7, 512), 25_088, 0),
    ("FC-4096", (4096,), 4096, 102_760_448),
    ("FC-4096", (4096,), 4096, 16_777_216),
    ("FC-1000", (1000,), 1000, 4_096_000),
]


# ------------------------------------------------------------------ VGG-16, the notes' table

def test_vgg16_rows_match_the_notes():
    d = describe(VGG16_SPEC)
    assert [(r.name, r.shape, r.activations, r.weights) for r in d.rows] == VGG16_ROWS


def test_vgg16_totals():
    d = describe(VGG16_SPEC)
    assert d.weights == 138_344_128
    assert d.biases == 13_416
    assert d.params == 138_357_544
    # The rows sum to 15.2M activations (the notes' total line says 24M; see describe's docstring).
    assert d.activations == 15_237_608
    assert d.activation_bytes == 15_237_608 * 4
    assert d.activation_memory(np.float64) == 15_237_608 * 8
    assert describe(VGG16_SPEC, dtype=np.float64).activation_bytes == 15_237_608 * 8
    assert d.param_bytes == 138_357_544 * 4
    assert d.output_shape == (1000,)


def test_vgg16_table_text_looks_like_the_notes():
    lines = describe(VGG16_SPEC).table().splitlines()
    compact = [" ".join(line.split()) for line in lines]
    assert compact[0] == "INPUT: [224x224x3] memory: 224*224*3=150K weights: 0"
    assert compact[1] == "CONV3-64: [224x224x64] memory: 224*224*64=3.2M weights: (3*3*3)*64 = 1,728"
    assert compact[3] == "POOL2: [112x112x64] memory: 112*112*64=800K weights: 0"
    assert compact[18] == "POOL2: [7x7x512] memory: 7*7*512=25K weights: 0"
    assert compact[19] == "FC-4096: [1x1x4096] memory: 4096 weights: 7*7*512*4096 = 102,760,448"
    assert compact[21] == "FC-1000: [1x1x1000] memory: 1000 weights: 4096*1000 = 4,096,000"
    assert "15,237,608" in compact[22] and "60,950,432 bytes" in compact[22]
    assert compact[23] == "TOTAL params: 138,344,128 weights + 13,416 biases = 138,357,544 (~138M)"
    assert str(describe(VGG16_SPEC)) == describe(VGG16_SPEC).table()


def test_rows_carry_weight_shapes_in_library_layout():
    rows = describe(["INPUT 8x6x3", "CONV3-5", "POOL2", "FC-7", "FC-2"]).rows
    assert [r.weight_shape for r in rows] == [None, (5, 3, 3, 3), None, (4 * 3 * 5, 7), (7, 2)]
    assert [r.biases for r in rows] == [0, 5, 0, 7, 2]
    assert rows[2].shape == (4, 3, 5)


# ------------------------------------------------------------------ spec grammar

def test_layer_forms():
    assert parse_layer("CONV3-64") == parse_layer(" conv3-64 ")
    conv = parse_layer("CONV3-64")
    assert (conv.kind, conv.size, conv.stride, conv.pad, conv.dilation, conv.depth) == ("conv", 3, 1, 1, 1, 64)
    conv = parse_layer("CONV5-32/S2/P0")
    assert (conv.size, conv.stride, conv.pad, conv.depth) == (5, 2, 0, 32)
    assert parse_layer("CONV5-8").pad == 2
    assert parse_layer("CONV3-8/D2").pad == 2  # 'same' for a dilated 3x3 (spans 5)
    pool = parse_layer("POOL2")
    assert (pool.kind, pool.size, pool.stride) == ("pool", 2, 2)
    assert (parse_layer("POOL3/S2").size, parse_layer("POOL3/S2").stride) == (3, 2)
    assert parse_layer("FC-10").depth == 10
    inp = parse_layer("INPUT: [32x48x3]")
    assert (inp.height, inp.width, inp.depth) == (32, 48, 3)
    assert "CONVF-K" in SPEC_GRAMMAR


def test_spec_as_one_string():
    assert parse_spec("INPUT 32x32x3 -> CONV3-8 -> POOL2 -> FC-10") == parse_spec(
        ["INPUT 32x32x3", "CONV3-8", "POOL2", "FC-10"]
    )


@pytest.mark.parametrize(
    "spec, message",
    [
        (["CONV3-8", "FC-10"], "must start with an INPUT"),
        ([], "must start with an INPUT"),
        (["INPUT 32x32x3", "INPUT 32x32x3"], "INPUT may appear only once"),
        (["INPUT 32x32x3", "FC-10", "CONV3-8"], "cannot follow an FC"),
        (["INPUT 32x32x3", "RELU"], "cannot read layer 'RELU'"),
        (["INPUT 32x32x3", "CONV3-8/Q2"], "unknown option /Q"),
        (["INPUT 32x32x3", "CONV3-8/S2/S2"], "given twice"),
        (["INPUT 32x32x3", "POOL2/P1"], "unknown option /P"),
        (["INPUT 32x32x3", "CONV0-8"], "filter size must be a positive integer"),
        (["INPUT 0x32x3"], "must be a positive integer"),
        (5, "must be a list"),
    ],
)
def test_bad_specs_say_what_is_wrong(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_spec(spec)


def test_impossible_sizes_name_the_layer():
    # The notes: 224x224 with F=11, S=4 does not tile (AlexNet used 227).
    with pytest.raises(ValueError, match=r"layer 1 'CONV11-96/S4/P0' on a \[224x224x3\] input: .*54.25"):
        describe(["INPUT 224x224x3", "CONV11-96/S4/P0"])
    # The notes: 3x3 stride-2 pooling on 32x32 needs padding.
    with pytest.raises(ValueError, match=r"layer 2 'POOL3/S2' on a \[32x32x8\] input: .*15.5 is not an integer"):
        describe(["INPUT 32x32x3", "CONV3-8", "POOL3/S2"])
    with pytest.raises(ValueError, match=r"layer 1 'POOL8'.*does not fit"):
        describe(["INPUT 4x4x3", "POOL8"])


# ------------------------------------------------------------------ AlexNet CONV1

def test_alexnet_conv1_counts():
    c = conv_layer_counts((227, 227, 3), F=11, S=4, P=0, K=96)
    assert c.output_shape == (55, 55, 96)
    assert c.neurons == 290_400
    assert c.weights_per_neuron == 363
    assert c.params_unshared == 105_705_600 == (11 * 11 * 3 + 1) * 290_400
    assert c.params_shared == 34_944
    row = describe(["INPUT 227x227x3", "CONV11-96/S4/P0"]).rows[1]
    assert row.shape == (55, 55, 96) and row.params == c.params_shared


def test_conv_layer_counts_rejects_impossible_sizes():
    with pytest.raises(ValueError, match="54.25"):
        conv_layer_counts((224, 224, 3), F=11, S=4, P=0, K=96)


# ------------------------------------------------------------------ receptive fields

def test_three_3x3_convs_see_7x7():
    assert receptive_field(["CONV3-64"] * 3) == 7
    assert receptive_field(["INPUT 32x32x3", "CONV3-64", "CONV3-64"]) == 5
    assert receptive_field([(3, 1)] * 3) == 7


def test_receptive_field_with_strides_and_pools():
    # conv3 -> pool2 -> conv3: 3, then 4, then 4 + 2*2 = 8.
    assert receptive_field(["CONV3-8", "POOL2", "CONV3-8"]) == 8
    assert receptive_field(["CONV11-96/S4/P0", "POOL3/S2"]) == 11 + 2 * 4
    assert receptive_field([(3, 1, 2)]) == 5
    assert receptive_field(VGG16_SPEC[:-3]) == 212
    with pytest.raises(ValueError, match="FC layer sees its whole input"):
        receptive_field(["CONV3-8", "FC-10"])


def _receptive_field_by_index_sets(windows):
    """Oracle: the set of input positions that reach output position 0, composed layer by layer."""
    positions = {0}
    for F, S, D in reversed(windows):
        positions = {p * S + D * t for p in positions for t in range(F)}
    return max(positions) - min(positions) + 1


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 7), st.integers(1, 3), st.integers(1, 3)), min_size=1, max_size=5))
def test_receptive_field_matches_index_set_oracle(windows):
    assert receptive_field(windows) == _receptive_field_by_index_sets(windows)


def test_total_stride():
    assert total_stride(VGG16_SPEC) == 32
    assert total_stride(["INPUT 227x227x3", "CONV11-96/S4/P0", "POOL3/S2", "FC-10"]) == 8


def test_stacked_small_filters_vs_one_large():
    one = stacked_vs_single_params(1)
    assert (one.stacked, one.single, one.single_filter_size) == (27, 49, 7)
    c = stacked_vs_single_params(64)
    assert (c.stacked, c.single) == (27 * 64**2, 49 * 64**2)
    # Cross-check with describe: the same stacks as specs, biases removed.
    stack = describe(["INPUT 16x16x64"] + ["CONV3-64"] * 3)
    single = describe(["INPUT 16x16x64", "CONV7-64"])
    assert (stack.weights, single.weights) == (c.stacked, c.single)
    assert stack.output_shape == single.output_shape == (16, 16, 64)
    assert stacked_vs_single_params(2, n=2, F=5).single_filter_size == 9


# ------------------------------------------------------------------ FC -> CONV

def test_vgg_conversion_sizes_from_the_notes():
    assert fc_to_conv_spec(VGG16_SPEC)[-3:] == ["CONV7-4096/P0", "CONV1-4096/P0", "CONV1-1000/P0"]
    assert score_map_size(VGG16_SPEC, 224) == (1, 1, 1000)
    assert score_map_size(VGG16_SPEC, 384) == (6, 6, 1000)
    big = describe(with_input_size(fc_to_conv_spec(VGG16_SPEC), 384))
    assert big.rows[-4].shape == (12, 12, 512)
    # Parameters do not change in the conversion.
    assert describe(fc_to_conv_spec(VGG16_SPEC)).params == 138_357_544
    assert score_map_size(VGG16_SPEC, 256, 320) == (2, 4, 1000)
    with pytest.raises(ValueError, match="does not fit"):
        score_map_size(VGG16_SPEC, 192)


def test_fc_to_conv_weights_layout():
    rng = np.random.default_rng(0)
    C, H, W, K = 3, 4, 5, 6
    W_fc = rng.standard_normal((C * H * W, K)).astype(np.float32)
    b_fc = rng.standard_normal(K).astype(np.float32)
    w, b = fc_to_conv_weights(W_fc, b_fc, (C, H, W))
    assert w.shape == (K, C, H, W) and w.dtype == np.float32 and b.dtype == np.float32
    x = rng.standard_normal((2, C, H, W)).astype(np.float32)
    fc = x.reshape(2, -1) @ W_fc + b_fc
    # A single valid position: the conv is a sum over (c, h, w).
    conv = np.einsum("nchw,kchw->nk", x, w) + b
    np.testing.assert_allclose(conv, fc, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match=r"\(C\*H\*W, K\) = \(60, K\).*found \(59, 6\)"):
        fc_to_conv_weights(W_fc[:-1], b_fc, (C, H, W))
    with pytest.raises(ValueError, match=r"b_fc must have shape \(6,\)"):
        fc_to_conv_weights(W_fc, b_fc[:-1], (C, H, W))


def test_fc_to_conv_spec_rejects_non_square_volume():
    with pytest.raises(ValueError, match="non-square"):
        fc_to_conv_spec(["INPUT 8x4x3", "FC-10"])


# ------------------------------------------------------------------ properties of describe

def _count_positions(W, F, S, P, D=1):
    """Oracle: count the window positions by walking them."""
    span = D * (F - 1) + 1
    starts = list(range(0, W + 2 * P - span + 1, S))
    last_end = starts[-1] + span if starts else 0
    return len(starts), last_end == W + 2 * P


@settings(max_examples=80, deadline=None)
@given(
    W=st.integers(1, 40), F=st.integers(1, 7), S=st.integers(1, 4), P=st.integers(0, 3), D=st.integers(1, 2)
)
def test_conv_row_matches_walked_positions(W, F, S, P, D):
    count, tiles = _count_positions(W, F, S, P, D)
    spec = ["INPUT {0}x{0}x2".format(W), f"CONV{F}-3/S{S}/P{P}/D{D}"]
    if count and tiles:
        assert describe(spec).rows[1].shape == (count, count, 3)
        assert conv_output_size(W, F, S, P, D) == count
    else:
        with pytest.raises(ValueError, match="layer 1"):
            describe(spec)


@settings(max_examples=60, deadline=None)
@given(W=st.integers(1, 30), F=st.integers(1, 4), S=st.integers(1, 4))
def test_pool_row_matches_walked_positions(W, F, S):
    count, tiles = _count_positions(W, F, S, 0)
    spec = ["INPUT {0}x{0}x2".format(W), f"POOL{F}/S{S}"]
    if count and tiles:
        assert describe(spec).rows[1].shape == (count, count, 2) == (pool_output_size(W, F, S),) * 2 + (2,)
    else:
        with pytest.raises(ValueError, match="layer 1"):
            describe(spec)


@settings(max_examples=40, deadline=None)
@given(
    depths=st.lists(st.integers(1, 6), min_size=1, max_size=3),
    hidden=st.lists(st.integers(1, 9), min_size=0, max_size=2),
    size=st.sampled_from([4, 8, 12]),
)
def test_totals_are_sums_of_rows(depths, hidden, size):
    spec = [f"INPUT {size}x{size}x3"] + [f"CONV3-{d}" for d in depths] + ["POOL2"] + [f"FC-{h}" for h in hidden]
    d = describe(spec)
    expected_weights, c = 0, 3
    for k in depths:
        expected_weights += 9 * c * k
        c = k
    fan_in = (size // 2) ** 2 * c
    for h in hidden:
        expected_weights += fan_in * h
        fan_in = h
    assert d.weights == expected_weights
    assert d.biases == sum(depths) + sum(hidden)
    assert d.activations == sum(int(np.prod(r.shape)) for r in d.rows)
