"""The named architectures against published figures, an independent count, and PyTorch; the
memory budget and the pattern designs against plain arithmetic."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cs231n_lib.architectures import (
    alexnet,
    googlenet,
    named_architectures,
    resnet,
    vgg16,
    window_output_size,
)
from cs231n_lib.sizing import describe, largest_batch, pattern_spec, training_memory, widest_pattern

# Published parameter counts, written out as literals: torchvision's model documentation
# (num_params of the IMAGENET1K_V1 weights) and, for the two-group AlexNet, the paper's layers
# (60,965,224, the figure usually quoted as AlexNet's "60M").
PUBLISHED = {
    "AlexNet (paper)": 60_965_224,
    "AlexNet (torchvision)": 61_100_840,
    "VGG-16": 138_357_544,
    "GoogLeNet (torchvision)": 6_624_904,
    "GoogLeNet (paper)": 6_998_552,  # our count of the paper's Table 1 (no published total to quote)
    "ResNet-18": 11_689_512,
    "ResNet-34": 21_797_672,
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_parameter_counts_match_the_published_figures(name):
    assert named_architectures()[name].params == PUBLISHED[name]


def _paper_alexnet_by_hand():
    # (input channels per group, filters, filter size) of each conv, then the FC sizes
    convs = [(3, 96, 11), (48, 256, 5), (256, 384, 3), (192, 384, 3), (192, 256, 3)]
    total = sum(c * k * f * f + k for c, k, f in convs)
    for fan_in, out in ((6 * 6 * 256, 4096), (4096, 4096), (4096, 1000)):
        total += fan_in * out + out
    return total


def _resnet_by_hand(blocks):
    """A straightforward loop over torchvision's layers (no library code)."""
    total = 7 * 7 * 3 * 64 + 2 * 64
    channels = 64
    for repeats, width in zip(blocks, (64, 128, 256, 512)):
        for _ in range(repeats):
            total += 3 * 3 * channels * width + 2 * width + 3 * 3 * width * width + 2 * width
            if channels != width:
                total += channels * width + 2 * width
            channels = width
    return total + 512 * 1000 + 1000


def test_independent_counts_agree():
    assert _paper_alexnet_by_hand() == alexnet("paper").params
    assert _resnet_by_hand((2, 2, 2, 2)) == resnet(18).params
    assert _resnet_by_hand((3, 4, 6, 3)) == resnet(34).params


def test_vgg16_builder_is_the_notes_table():
    spec = describe(["INPUT 224x224x3"] + (["CONV3-64"] * 2 + ["POOL2"]) + (["CONV3-128"] * 2 + ["POOL2"])
                    + (["CONV3-256"] * 3 + ["POOL2"]) + (["CONV3-512"] * 3 + ["POOL2"]) * 2
                    + ["FC-4096", "FC-4096", "FC-1000"])
    assert vgg16().activations == spec.activations == 15_237_608
    assert vgg16().params == spec.params


def test_spatial_sizes_of_the_named_networks():
    assert {r.name: r.shape for r in googlenet("paper").rows}["INCEPTION5b"] == (1024, 7, 7)
    shapes = {r.name: r.shape for r in googlenet().rows}
    assert shapes["POOL1"] == (64, 56, 56) and shapes["POOL2"] == (192, 28, 28)
    assert shapes["INCEPTION3b"] == (480, 28, 28) and shapes["INCEPTION4e"] == (832, 14, 14)
    assert shapes["INCEPTION5b"] == (1024, 7, 7)
    shapes = {r.name: r.shape for r in resnet(18).rows}
    assert shapes["POOL1"] == (64, 56, 56) and shapes["stage4.1/add"] == (512, 7, 7)
    assert {r.name: r.shape for r in alexnet().rows}["POOL5"] == (256, 6, 6)
    assert {r.name: r.shape for r in alexnet("paper").rows}["CONV1"] == (96, 55, 55)


@pytest.mark.parametrize("W,F,S,P,ceil,expected", [
    (224, 7, 2, 3, False, 112), (112, 3, 2, 1, False, 56), (112, 3, 2, 0, True, 56), (56, 3, 2, 0, True, 28),
    (14, 2, 2, 0, True, 7), (13, 3, 2, 0, False, 6), (7, 3, 2, 0, True, 3)])
def test_window_output_size_rounds_as_the_frameworks_do(W, F, S, P, ceil, expected):
    assert window_output_size(W, F, S, P, ceil) == expected


def test_bad_builder_arguments_say_what_is_expected():
    with pytest.raises(ValueError, match="'paper' or 'torchvision'"):
        alexnet("caffe")
    with pytest.raises(ValueError, match="depth must be one of"):
        resnet(50)
    with pytest.raises(ValueError, match="one entry per stage"):
        resnet(blocks=(2, 2), widths=(64, 128, 256))


# ------------------------------------------------------------------------------------------
# PyTorch as an oracle: the same networks written with torch.nn, counted by numel, and their
# layer outputs counted by forward hooks.


def _torch_resnet(torch, blocks):
    nn = torch.nn

    class Block(nn.Module):
        def __init__(self, c, k, stride):
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(c, k, 3, stride, 1, bias=False), nn.BatchNorm2d(k), nn.ReLU(),
                                      nn.Conv2d(k, k, 3, 1, 1, bias=False), nn.BatchNorm2d(k))
            self.short = (nn.Sequential(nn.Conv2d(c, k, 1, stride, bias=False), nn.BatchNorm2d(k))
                          if stride != 1 or c != k else nn.Identity())

        def forward(self, x):
            return torch.relu(self.body(x) + self.short(x))

    layers = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
    c = 64
    for stage, (n, k) in enumerate(zip(blocks, (64, 128, 256, 512))):
        for i in range(n):
            layers.append(Block(c, k, 2 if stage and i == 0 else 1))
            c = k
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, 1000))


def _torch_alexnet(torch, paper):
    nn = torch.nn
    if paper:
        convs = [nn.Conv2d(3, 96, 11, 4), nn.ReLU(), nn.MaxPool2d(3, 2), nn.Conv2d(96, 256, 5, 1, 2, groups=2),
                 nn.ReLU(), nn.MaxPool2d(3, 2), nn.Conv2d(256, 384, 3, 1, 1), nn.ReLU(),
                 nn.Conv2d(384, 384, 3, 1, 1, groups=2), nn.ReLU(), nn.Conv2d(384, 256, 3, 1, 1, groups=2)]
    else:
        convs = [nn.Conv2d(3, 64, 11, 4, 2), nn.ReLU(), nn.MaxPool2d(3, 2), nn.Conv2d(64, 192, 5, 1, 2), nn.ReLU(),
                 nn.MaxPool2d(3, 2), nn.Conv2d(192, 384, 3, 1, 1), nn.ReLU(), nn.Conv2d(384, 256, 3, 1, 1),
                 nn.ReLU(), nn.Conv2d(256, 256, 3, 1, 1)]
    return nn.Sequential(*convs, nn.ReLU(), nn.MaxPool2d(3, 2), nn.Flatten(), nn.Linear(9216, 4096), nn.ReLU(),
                         nn.Linear(4096, 4096), nn.ReLU(), nn.Linear(4096, 1000))


@pytest.mark.parametrize("name", ["AlexNet (paper)", "AlexNet (torchvision)", "ResNet-18", "ResNet-34"])
def test_parameters_and_layer_outputs_match_pytorch(name):
    torch = pytest.importorskip("torch", reason="PyTorch is the oracle here; not installed")
    nn = torch.nn
    if name.startswith("AlexNet"):
        model, size = _torch_alexnet(torch, "paper" in name), 227 if "paper" in name else 224
    else:
        model, size = _torch_resnet(torch, {"ResNet-18": (2, 2, 2, 2), "ResNet-34": (3, 4, 6, 3)}[name]), 224
    ours = named_architectures()[name]
    assert sum(p.numel() for p in model.parameters()) == ours.params
    counted = {"conv": 0, "batchnorm": 0, "pool": 0, "fc": 0}
    kinds = {nn.Conv2d: "conv", nn.BatchNorm2d: "batchnorm", nn.MaxPool2d: "pool", nn.AdaptiveAvgPool2d: "pool",
             nn.Linear: "fc"}
    def hook(kind):
        def count(module, inputs, out):
            counted[kind] += out.numel()
        return count

    for module in model.modules():
        if type(module) in kinds:
            module.register_forward_hook(hook(kinds[type(module)]))
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, size, size))

    def kind_of(row_name):
        if row_name.endswith("-BN"):
            return "batchnorm"
        if "POOL" in row_name:
            return "pool"
        if row_name.startswith("FC"):
            return "fc"
        if row_name.startswith("CONV") or "/conv" in row_name or "/shortcut" in row_name:
            return "conv"
        return "other"  # the input and the residual sums

    def ours_of(kind):
        return sum(r.activations for r in ours.rows if kind_of(r.name) == kind)

    assert counted == {kind: ours_of(kind) for kind in counted}


# ------------------------------------------------------------------------------------------
# Memory and designs


@settings(max_examples=60, deadline=None)
@given(params=st.integers(0, 10**9), activations=st.integers(1, 10**8), batch=st.integers(0, 512),
       optimizer=st.sampled_from(["sgd", "momentum", "adam"]), size=st.sampled_from([4, 8]))
def test_training_memory_is_the_notes_sum(params, activations, batch, optimizer, size):
    state = {"sgd": 0, "momentum": 1, "adam": 2}[optimizer]
    memory = training_memory(params, activations, batch, optimizer, size)
    assert memory["total"] == size * (2 * batch * activations + (2 + state) * params)
    assert memory["activations"] == memory["activation_grads"] == size * batch * activations
    assert memory["optimizer_state"] == size * state * params


@settings(max_examples=60, deadline=None)
@given(params=st.integers(0, 10**8), activations=st.integers(1, 10**7), memory=st.integers(0, 2**36),
       optimizer=st.sampled_from(["sgd", "momentum", "adam"]), size=st.sampled_from([4, 8]))
def test_largest_batch_fits_and_one_more_does_not(params, activations, memory, optimizer, size):
    n = largest_batch(params, activations, memory, optimizer, size)
    if n > 0:
        assert training_memory(params, activations, n, optimizer, size)["total"] <= memory
    assert training_memory(params, activations, n + 1, optimizer, size)["total"] > memory or (
        n == 0 and training_memory(params, activations, 0, optimizer, size)["total"] > memory)


def test_vgg16_with_adam_on_12_gib():
    # 4 * (138,357,544 * 4) = 2,213,720,704 bytes of parameters, gradients and moments; each image
    # needs 2 * 4 * 15,237,608 = 121,900,864 bytes: (12 * 2**30 - 2,213,720,704) // 121,900,864 = 87
    assert largest_batch(138_357_544, 15_237_608, 12 * 2**30, "adam") == 87
    assert training_memory(138_357_544, 15_237_608, 1, "sgd")["total"] == 4 * (2 * 15_237_608 + 2 * 138_357_544)


def test_memory_arguments_are_checked():
    with pytest.raises(ValueError, match="optimizer must be one of"):
        training_memory(10, 10, 1, "lbfgs")
    with pytest.raises(ValueError, match="activations must be positive"):
        largest_batch(10, 0, 100)


def test_pattern_spec_writes_the_notes_examples():
    assert pattern_spec((32, 32, 3), 0, 0, 0, 1, 1, 10) == ["INPUT 32x32x3", "FC-10"]
    assert pattern_spec((32, 32, 3), 1, 2, 1, 8, 64, 10) == [
        "INPUT 32x32x3", "CONV3-8", "POOL2", "CONV3-16", "POOL2", "FC-64", "FC-10"]
    assert pattern_spec((32, 32, 3), 2, 3, 2, 16, 100, 10).count("POOL2") == 3


@settings(max_examples=25, deadline=None)
@given(N=st.integers(1, 3), M=st.integers(1, 3), K=st.integers(0, 2), hidden=st.integers(1, 64),
       budget=st.integers(0, 400_000))
def test_widest_pattern_is_the_last_width_within_the_budget(N, M, K, hidden, budget):
    def params(filters):
        return describe(pattern_spec((16, 16, 3), N, M, K, filters, hidden, 10)).params

    filters = widest_pattern((16, 16, 3), N, M, K, hidden, 10, budget)
    assert filters == 0 or params(filters) <= budget
    assert params(filters + 1) > budget
    assert math.isfinite(filters)


def test_widest_pattern_refuses_a_pattern_that_does_not_tile():
    with pytest.raises(ValueError, match="not an integer"):
        widest_pattern((20, 20, 3), 1, 3, 0, 10, 10, 10**6)


# ------------------------------------------------------------------------------------------
# What the convnet notebook states (Part 3), pinned to the library's counts


def test_the_convnet_notebook_states_the_counted_figures():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "solutions" / "convnet" / "convnet.py").read_text()
    for net in named_architectures().values():
        assert f"| {net.params:,} | {net.activations:,} |" in text, net.name
    for depth, blocks in ((18, "(2, 2, 2, 2)"), (34, "(3, 4, 6, 3)")):
        assert f'"ResNet-{depth}": ({blocks}, {resnet(depth).activations:_})' in text
    vgg, r18 = vgg16(), resnet(18)
    assert largest_batch(vgg.params, vgg.activations, 12 * 2**30, "adam") == 87
    assert "holds 87 of its images" in text
    assert f"{training_memory(vgg.params, vgg.activations, 32, 'adam')['total'] / 2**30:.1f} GiB" == "5.7 GiB"
    assert f"{training_memory(vgg.params, vgg.activations, 0, 'adam')['total'] / 2**30:.2f} GiB" == "2.06 GiB"
    assert "about 5.7 GiB for a batch of 32 with Adam" in text and "already take 2.06 GiB" in text
    assert largest_batch(r18.params, r18.activations, 12 * 2**30, "adam") == 261
    assert "activations: 261 images fit" in text
