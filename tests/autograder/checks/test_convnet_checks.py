"""The checks of the convnet notebook (autograder/checks/convnet.py).

- the instructor's solution (the solution cells of solutions/convnet/convnet.ipynb, run here
  without a kernel) passes every visible and hidden case of the notebook;
- known-wrong implementations fail, with the message or hint a student needs;
- inputs are plain arrays that survive the trip to the kernel (.npz, allow_pickle=False), are
  deterministic, and describe() never shows the seed;
- the references agree with independent oracles: the notes' VGG-16 figures, a brute-force
  receptive field, FC == conv on the converted weights, and numerical gradients.
"""

import io
from pathlib import Path

import nbformat
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autograder.checks import get_check, judge
from autograder.testspec import parse_test_cell

ROOT = Path(__file__).resolve().parents[3]
NOTEBOOK = ROOT / "solutions" / "convnet" / "convnet.ipynb"
CHECK_NAMES = ("size_network", "receptive_field", "training_memory", "largest_batch", "resnet_params", "pattern_spec",
               "widest_pattern", "fc_to_conv", "three_layer_convnet_loss", "conv_bn_net_loss", "conv_bn_net_training",
               "residual_block_forward", "residual_block_backward")


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------

def _notebook():
    return nbformat.read(NOTEBOOK, as_version=4)


@pytest.fixture(scope="module")
def solution():
    """Namespace holding the setup and the solution cells that run at grading."""
    namespace = {"__name__": "convnet_solution"}
    for cell in _notebook().cells:
        meta = cell.metadata.get("nbgrader", {})
        skipped = cell.metadata.get("cs231n", {}).get("grading") == "skip"
        if cell.cell_type == "code" and not skipped and (meta.get("grade_id") == "setup" or meta.get("solution")):
            exec(compile(cell.source, f"<cell {meta['grade_id']}>", "exec"), namespace)
    return namespace


def _notebook_cases():
    cases = []
    for cell in _notebook().cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("grade"):
            for call in parse_test_cell(cell.source, meta["grade_id"]):
                for number, case in enumerate(call.cases):
                    label = f"{call.name}-{'hidden' if call.hidden else 'visible'}-{number}"
                    cases.append(pytest.param(call.name, case, id=label))
    return cases


def run(name, case, namespace):
    """One case as the grader judges it: (passed, lines, hints)."""
    check = get_check(name)
    inputs = check.make_inputs(case)
    found = check.call(namespace, {k: np.array(v, copy=True) for k, v in inputs.items()})
    passed, lines, hints, _ = judge(check, case, check.reference(inputs), found)
    return passed, lines, hints


def with_function(solution, name, fn):
    namespace = dict(solution)
    namespace[name] = fn
    return namespace


# --------------------------------------------------------------------------------------------
# the notebook and the contract
# --------------------------------------------------------------------------------------------

def test_notebook_grades_every_function_with_visible_and_hidden_cases():
    graded = {}
    for cell in _notebook().cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("grade"):
            calls = parse_test_cell(cell.source, meta["grade_id"])
            graded[meta["grade_id"]] = ({c.name for c in calls}, {c.hidden for c in calls}, meta["points"])
            assert meta["schema_version"] == 3 and meta["locked"] and not meta["solution"]
    assert set(graded) == {f"test_{name}" for name in CHECK_NAMES}
    for name in CHECK_NAMES:
        names, hidden, points = graded[f"test_{name}"]
        assert names == {name} and hidden == {False, True} and points > 0
    # the optional residual block is extra credit: stated apart, outside the total
    extra = sum(graded[f"test_{name}"][2] for name in ("residual_block_forward", "residual_block_backward"))
    total = sum(points for _, _, points in graded.values()) - extra
    # the stated total also counts the written answers a person grades
    written = sum(c.metadata["nbgrader"]["points"] for c in _notebook().cells
                  if c.cell_type == "markdown" and c.metadata.get("nbgrader", {}).get("grade"))
    intro = _notebook().cells[0].source
    assert f"{total + written} points in total**: {total} points for the functions" in intro
    assert f"**{extra} points of extra credit** on top of the {total + written}" in intro


def test_notebook_is_stored_without_outputs_and_skips_training_cells():
    nb = _notebook()
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
    def skipped(cell):
        return cell.metadata.get("cs231n", {}).get("grading") == "skip"

    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert any("Solver(" in c.source for c in code if skipped(c))
    assert any("plt." in c.source for c in code if skipped(c))
    for cell in code:  # nothing the grader runs trains, plots or loads the dataset
        if not skipped(cell):
            assert not any(word in cell.source for word in ("Solver(", "plt.", "get_CIFAR10_data("))
    assert all(not skipped(c) for c in code if c.metadata.get("nbgrader", {}).get("grade_id") in CHECK_NAMES)


@pytest.mark.parametrize("name, case", _notebook_cases())
def test_the_solution_passes_every_case_of_the_notebook(solution, name, case):
    passed, lines, hints = run(name, case, solution)
    assert passed, (lines, hints)


@pytest.mark.parametrize("name, case", _notebook_cases())
def test_inputs_are_plain_deterministic_arrays_that_cross_as_npz(name, case):
    check = get_check(name)
    first, second = check.make_inputs(case), check.make_inputs(case)
    assert first.keys() == second.keys()
    buffer = io.BytesIO()
    np.savez(buffer, **first)
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as loaded:
        for key, value in first.items():
            assert type(value) is np.ndarray and value.dtype.kind in "biufU"
            np.testing.assert_array_equal(value, second[key])
            np.testing.assert_array_equal(loaded[key], value)
    assert "seed" not in check.describe(case)


# --------------------------------------------------------------------------------------------
# size_network
# --------------------------------------------------------------------------------------------

VGG16 = (
    "INPUT 224x224x3", "CONV3-64", "CONV3-64", "POOL2", "CONV3-128", "CONV3-128", "POOL2",
    "CONV3-256", "CONV3-256", "CONV3-256", "POOL2", "CONV3-512", "CONV3-512", "CONV3-512", "POOL2",
    "CONV3-512", "CONV3-512", "CONV3-512", "POOL2", "FC-4096", "FC-4096", "FC-1000",
)


def test_size_network_reference_matches_the_notes_vgg16_table():
    check = get_check("size_network")
    ref = check.reference(check.make_inputs({"spec": VGG16}))
    assert int(ref["params"]) == 138_357_544 and int(ref["weights"].sum()) == 138_344_128
    assert int(ref["biases"].sum()) == 13_416 and int(ref["activations"]) == 15_237_608
    # rows as the notes print them: [224x224x64], weights (3*3*64)*64 = 36,864, ..., FC [1x1x1000]
    assert (ref["height"][2], ref["width"][2], ref["depth"][2], ref["weights"][2]) == (224, 224, 64, 36_864)
    assert (ref["height"][18], ref["depth"][18]) == (7, 512) and ref["weights"][19] == 102_760_448
    assert (ref["height"][-1], ref["width"][-1], ref["depth"][-1]) == (1, 1, 1000)


def test_size_network_reference_raises_for_a_size_that_does_not_tile():
    check = get_check("size_network")
    assert check.reference(check.make_inputs({"spec": ("INPUT 7x7x3", "POOL2")})) == {"raised": np.array("ValueError")}


def _modified(solution, change):
    """size_network whose result is passed through ``change(spec, result)``."""
    def size_network(spec):
        return change(spec, solution["size_network"](spec))
    return size_network


SMALL = {"spec": ("INPUT 16x12x8", "CONV3-8/D2", "POOL2", "FC-4")}


def test_size_network_without_biases_fails_on_biases_and_params(solution):
    def no_biases(spec, result):
        result = dict(result, biases=[0] * len(result["biases"]))
        result["params"] = sum(result["weights"])
        return result

    passed, lines, _ = run("size_network", SMALL, with_function(solution, "size_network", _modified(solution, no_biases)))
    assert not passed
    assert "biases: 2 of 4 entries differ" in lines and "params: 1 of 1 entries differ" in lines
    assert "weights: exact match" in lines


def test_size_network_without_input_depth_in_conv_weights_fails_on_weights(solution):
    def shallow(spec, result):
        weights = list(result["weights"])
        weights[1] //= 8  # the CONV reads depth 8; this forgets the factor C
        return dict(result, weights=weights)

    passed, lines, _ = run("size_network", SMALL, with_function(solution, "size_network", _modified(solution, shallow)))
    assert not passed and "weights: 1 of 4 entries differ" in lines


def test_size_network_with_width_and_height_swapped_fails_on_a_non_square_input(solution):
    def swapped(spec, result):
        return dict(result, shapes=[(w, h, d) for h, w, d in result["shapes"]])

    namespace = with_function(solution, "size_network", _modified(solution, swapped))
    passed, lines, hints = run("size_network", SMALL, namespace)
    assert not passed and "height: 3 of 4 entries differ" in lines and "width: 3 of 4 entries differ" in lines
    assert f"the first wrong output shape is that of layer 1 ({SMALL['spec'][0]}); the layers before it are right" in hints
    assert run("size_network", {"spec": ("INPUT 8x8x3", "CONV3-4", "FC-2")}, namespace)[0]


def test_size_network_that_floors_instead_of_raising_fails_with_a_raised_message(solution):
    def floored(spec):
        shapes = []
        for text in spec:
            layer = solution["parse_layer"](text)
            if layer.kind == "input":
                shapes.append((layer.height, layer.width, layer.depth))
            else:  # POOL only in this case
                H, W, C = shapes[-1]
                shapes.append(((H - layer.size) // layer.stride + 1, (W - layer.size) // layer.stride + 1, C))
        return {"shapes": shapes, "weights": [0] * len(shapes), "biases": [0] * len(shapes), "params": 0,
                "activations": sum(h * w * d for h, w, d in shapes)}

    passed, lines, _ = run("size_network", {"spec": ("INPUT 7x7x3", "POOL2")}, with_function(solution, "size_network", floored))
    assert not passed and lines == ["raised: expected 'ValueError', found ''"]


def test_size_network_that_raises_on_a_valid_spec_fails_and_says_so(solution):
    def raising(spec):
        raise ValueError("too many values to unpack")

    passed, lines, _ = run("size_network", SMALL, with_function(solution, "size_network", raising))
    assert not passed and "raised: expected '', found 'ValueError'" in lines and "height: missing from the result" in lines


def test_size_network_may_write_fc_outputs_as_vectors(solution):
    def vectors(spec, result):
        return dict(result, shapes=[s[2:] if s[:2] == (1, 1) and i > 0 else s for i, s in enumerate(result["shapes"])])

    assert run("size_network", SMALL, with_function(solution, "size_network", _modified(solution, vectors)))[0]


def test_size_network_without_the_input_row_in_activations_fails(solution):
    def no_input(spec, result):
        H, W, D = result["shapes"][0]
        return dict(result, activations=result["activations"] - H * W * D)

    passed, lines, _ = run("size_network", SMALL, with_function(solution, "size_network", _modified(solution, no_input)))
    assert not passed and "activations: 1 of 1 entries differ" in lines


@st.composite
def specs(draw):
    """Random specs, valid or not: the reference decides, the solution must agree."""
    size = draw(st.integers(4, 40))
    layers = [f"INPUT {size}x{draw(st.integers(4, 40))}x{draw(st.integers(1, 4))}"]
    for _ in range(draw(st.integers(0, 5))):
        kind = draw(st.sampled_from(["conv", "pool"]))
        if kind == "conv":
            F, K = draw(st.integers(1, 5)), draw(st.integers(1, 6))
            options = draw(st.sampled_from(["", f"/S{draw(st.integers(1, 3))}"]))
            options += draw(st.sampled_from(["", f"/P{draw(st.integers(0, 2))}", f"/D{draw(st.integers(1, 2))}"]))
            layers.append(f"CONV{F}-{K}{options}")
        else:
            layers.append(draw(st.sampled_from(["POOL2", "POOL3/S2", "POOL2/S1"])))
    layers += [f"FC-{draw(st.integers(1, 9))}" for _ in range(draw(st.integers(0, 2)))]
    return {"spec": tuple(layers)}


@settings(max_examples=60, deadline=None)
@given(case=specs())
def test_solution_agrees_with_reference_on_random_specs(solution, case):
    passed, lines, hints = run("size_network", case, solution)
    assert passed, (case, lines)


# --------------------------------------------------------------------------------------------
# receptive_field
# --------------------------------------------------------------------------------------------

def brute_force_receptive_field(windows):
    """Input pixels that one top neuron depends on, found by walking the index sets down."""
    positions = {0}
    for F, S in reversed(windows):
        positions = {p * S + k for p in positions for k in range(F)}
    return max(positions) - min(positions) + 1


@settings(max_examples=80, deadline=None)
@given(windows=st.lists(st.tuples(st.integers(1, 7), st.integers(1, 3)), max_size=6))
def test_receptive_field_reference_and_solution_match_a_brute_force_oracle(solution, windows):
    check = get_check("receptive_field")
    case = {"windows": tuple(windows)}
    assert int(check.reference(check.make_inputs(case))["r"]) == brute_force_receptive_field(windows)
    assert run("receptive_field", case, solution)[0]


def test_receptive_field_that_ignores_strides_fails_only_where_strides_matter(solution):
    def no_jump(windows):
        return 1 + sum(F - 1 for F, _ in windows)

    namespace = with_function(solution, "receptive_field", no_jump)
    assert run("receptive_field", {"windows": ((3, 1), (3, 1), (3, 1))}, namespace)[0]
    passed, lines, hints = run("receptive_field", {"windows": ((3, 1), (2, 2), (3, 1))}, namespace)
    assert not passed and lines == ["r: 1 of 1 entries differ"]
    assert hints == ["each layer adds (F - 1) times the product of the strides of the layers below it "
                     "(the jump), not just F - 1"]


@pytest.mark.parametrize("mistake, hint", [
    ("own_stride", "a layer's own stride does not widen its own window"),
    ("reversed", "the windows are listed first layer first"),
])
def test_receptive_field_slips_get_their_hint(solution, mistake, hint):
    def wrong(windows):
        r, jump = 1, 1
        for F, S in (reversed(windows) if mistake == "reversed" else windows):
            if mistake == "own_stride":
                jump *= S
            r += (F - 1) * jump
            if mistake == "reversed":
                jump *= S
        return r

    passed, _, hints = run("receptive_field", {"windows": ((5, 2), (3, 1), (3, 3))},
                           with_function(solution, "receptive_field", wrong))
    assert not passed and len(hints) == 1 and hints[0].startswith(hint)


def test_receptive_field_given_as_a_whole_float_is_accepted(solution):
    namespace = with_function(solution, "receptive_field", lambda windows: float(solution["receptive_field"](windows)))
    assert run("receptive_field", {"windows": ((5, 2), (3, 1))}, namespace)[0]


# --------------------------------------------------------------------------------------------
# fc_to_conv
# --------------------------------------------------------------------------------------------

@settings(max_examples=30, deadline=None)
@given(C=st.integers(1, 4), H=st.integers(1, 4), W=st.integers(1, 4), K=st.integers(1, 5),
       dtype=st.sampled_from(["float64", "float32"]), seed=st.integers(0, 99))
def test_fc_to_conv_reference_makes_a_conv_equal_to_the_fc_layer(solution, C, H, W, K, dtype, seed):
    from cs231n_lib import affine_forward, conv_forward

    check = get_check("fc_to_conv")
    case = {"C": C, "H": H, "W": W, "K": K, "seed": seed, "dtype": dtype}
    inputs = check.make_inputs(case)
    ref = check.reference(inputs)
    x = np.random.default_rng(seed).standard_normal((2, C, H, W)).astype(dtype)
    fc, _ = affine_forward(x, inputs["W_fc"], inputs["b_fc"])
    conv, _ = conv_forward(x, ref["w"], ref["b"], {"stride": 1, "pad": 0})
    assert conv.shape == (2, K, 1, 1) and ref["w"].dtype == np.dtype(dtype)
    np.testing.assert_allclose(conv[:, :, 0, 0], fc, rtol=1e-5 if dtype == "float32" else 1e-12, atol=1e-5)
    assert run("fc_to_conv", case, solution)[0]


def test_fc_to_conv_reshaped_without_transpose_fails(solution):
    def no_transpose(W_fc, b_fc, C, H, W):
        return W_fc.reshape(W_fc.shape[1], C, H, W), b_fc

    passed, lines, hints = run("fc_to_conv", {"C": 2, "H": 3, "W": 3, "K": 4, "seed": 0},
                               with_function(solution, "fc_to_conv", no_transpose))
    assert not passed and lines[0].startswith("w: relative error") and lines[1].startswith("b: relative error 0.00e+00")
    assert any(h.startswith("W_fc has one column per output neuron") for h in hints)


def test_fc_to_conv_with_height_and_width_swapped_gets_the_transpose_hint(solution):
    def swapped(W_fc, b_fc, C, H, W):
        return W_fc.T.reshape(-1, C, W, H).transpose(0, 1, 3, 2), b_fc

    passed, _, hints = run("fc_to_conv", {"C": 2, "H": 3, "W": 3, "K": 4, "seed": 0},
                           with_function(solution, "fc_to_conv", swapped))
    assert not passed and hints == ["the last two axes look transposed"]


def test_fc_to_conv_with_a_flat_filter_shape_fails_on_shape(solution):
    def flat(W_fc, b_fc, C, H, W):
        return W_fc.T, b_fc

    passed, lines, hints = run("fc_to_conv", {"C": 3, "H": 2, "W": 5, "K": 2, "seed": 1},
                               with_function(solution, "fc_to_conv", flat))
    assert not passed and lines[0] == "w: expected shape (2, 3, 2, 5), found (2, 30)"
    assert "expected 4 dimensions, found 2: check a reshape" in hints


def test_fc_to_conv_dropping_the_bias_gets_the_zero_hint(solution):
    def no_bias(W_fc, b_fc, C, H, W):
        return solution["fc_to_conv"](W_fc, b_fc, C, H, W)[0], np.zeros_like(b_fc)

    passed, _, hints = run("fc_to_conv", {"C": 2, "H": 3, "W": 3, "K": 4, "seed": 0},
                           with_function(solution, "fc_to_conv", no_bias))
    assert not passed and any("every entry is zero" in h for h in hints)


# --------------------------------------------------------------------------------------------
# three_layer_convnet_loss
# --------------------------------------------------------------------------------------------

LOSS_CASE = {"X": (2, 3, 8, 8), "num_filters": 4, "filter_size": 3, "hidden_dim": 10, "num_classes": 5,
             "reg": 0.5, "seed": 0}


def test_loss_reference_gradients_match_numerical_gradients():
    check = get_check("three_layer_convnet_loss")
    inputs = check.make_inputs(LOSS_CASE)
    ref = check.reference(inputs)
    from cs231n_lib.classifiers import ThreeLayerConvNet

    model = ThreeLayerConvNet(input_dim=(3, 8, 8), num_filters=4, filter_size=3, hidden_dim=10, num_classes=5,
                              reg=0.5, dtype=np.float64, seed=0)
    model.params = {k: inputs[k].copy() for k in ("W1", "b1", "W2", "b2", "W3", "b3")}
    h = 1e-6
    for name in ("W1", "b1", "W3"):
        param = model.params[name]
        numeric = np.zeros_like(param)
        for index in np.ndindex(param.shape):
            old = param[index]
            param[index] = old + h
            plus = model.loss(inputs["X"], inputs["y"])[0]
            param[index] = old - h
            minus = model.loss(inputs["X"], inputs["y"])[0]
            param[index] = old
            numeric[index] = (plus - minus) / (2 * h)
        np.testing.assert_allclose(ref[f"d{name}"], numeric, rtol=1e-5, atol=1e-7)
    # the softmax part of the loss sits near log(K) for scores of order one, plus the penalty
    penalty = 0.25 * sum(np.sum(inputs[k] ** 2) for k in ("W1", "W2", "W3"))
    assert float(ref["loss"]) > penalty


def _loss_variant(solution, change):
    def three_layer_convnet_loss(params, X, y=None, reg=0.0):
        result = solution["three_layer_convnet_loss"](params, X, y, reg)
        return result if y is None else change(params, reg, *result)
    return three_layer_convnet_loss


def test_loss_with_a_full_instead_of_half_penalty_fails_on_the_loss_only(solution):
    def full_penalty(params, reg, loss, grads):
        return loss + 0.5 * reg * sum(np.sum(params[k] ** 2) for k in ("W1", "W2", "W3")), grads

    namespace = with_function(solution, "three_layer_convnet_loss", _loss_variant(solution, full_penalty))
    passed, lines, hints = run("three_layer_convnet_loss", LOSS_CASE, namespace)
    assert not passed and lines[1].startswith("loss: relative error") and "largest difference" in lines[1]
    assert "the penalty is 0.5 * reg * sum(W ** 2) (the 0.5 makes its gradient reg * W)" in hints
    assert all("relative error 0.00e+00" in line for line in lines if not line.startswith("loss"))
    assert run("three_layer_convnet_loss", dict(LOSS_CASE, reg=0.0), namespace)[0]


def test_loss_without_regularization_gradients_fails_on_the_weight_gradients(solution):
    def no_reg_grads(params, reg, loss, grads):
        return loss, {k: (g - reg * params[k] if k.startswith("W") else g) for k, g in grads.items()}

    namespace = with_function(solution, "three_layer_convnet_loss", _loss_variant(solution, no_reg_grads))
    passed, lines, hints = run("three_layer_convnet_loss", LOSS_CASE, namespace)
    wrong = {line.split(":")[0] for line in lines if "relative error 0.00e+00" not in line}
    assert not passed and wrong == {"dW1", "dW2", "dW3"}
    assert "the weight gradients lack the regularisation term reg * W" in hints


def test_loss_without_penalty_or_with_regularised_biases_gets_its_hint(solution):
    def no_penalty(params, reg, loss, grads):
        return loss - 0.5 * reg * sum(np.sum(params[k] ** 2) for k in ("W1", "W2", "W3")), grads

    def biases_too(params, reg, loss, grads):
        return loss, {k: (g + reg * params[k] if k.startswith("b") else g) for k, g in grads.items()}

    for change, hint in ((no_penalty, "the loss has no regularisation term"), (biases_too, "biases are not regularised")):
        namespace = with_function(solution, "three_layer_convnet_loss", _loss_variant(solution, change))
        passed, _, hints = run("three_layer_convnet_loss", LOSS_CASE, namespace)
        assert not passed and any(h.startswith(hint) for h in hints), hints


def test_loss_with_gradients_of_the_wrong_sign_gets_the_sign_hint(solution):
    def flipped(params, reg, loss, grads):
        return loss, {k: -g for k, g in grads.items()}

    namespace = with_function(solution, "three_layer_convnet_loss", _loss_variant(solution, flipped))
    passed, _, hints = run("three_layer_convnet_loss", LOSS_CASE, namespace)
    assert not passed and hints == ["the sign is flipped"]


def test_loss_with_a_missing_gradient_is_an_error_naming_it(solution):
    def partial(params, reg, loss, grads):
        return loss, {k: g for k, g in grads.items() if k != "b3"}

    namespace = with_function(solution, "three_layer_convnet_loss", _loss_variant(solution, partial))
    with pytest.raises(KeyError, match="'b3'"):
        run("three_layer_convnet_loss", LOSS_CASE, namespace)


def test_loss_in_float32_is_compared_with_the_float32_tolerance(solution):
    case = dict(LOSS_CASE, dtype="float32")
    check = get_check("three_layer_convnet_loss")
    assert check.tolerance_for(case) == 2e-4 and check.make_inputs(case)["X"].dtype == np.float32
    assert run("three_layer_convnet_loss", case, solution)[0]


def test_loss_case_with_an_odd_image_size_is_refused():
    with pytest.raises(ValueError, match="even height and width"):
        get_check("three_layer_convnet_loss").make_inputs(dict(LOSS_CASE, X=(2, 3, 7, 8)))


# --------------------------------------------------------------------------------------------
# conv_bn_net_loss, its training run, and the optional residual block
# --------------------------------------------------------------------------------------------

def _numerical_gradient(f, array, h=1e-6):
    numeric = np.zeros_like(array)
    for index in np.ndindex(array.shape):
        old = array[index]
        array[index] = old + h
        plus = f()
        array[index] = old - h
        minus = f()
        array[index] = old
        numeric[index] = (plus - minus) / (2 * h)
    return numeric


def test_conv_bn_net_reference_gradients_match_numerical_gradients():
    from cs231n_lib.classifiers.cnn import CONV_BN_NET_PARAMS, conv_bn_net_loss

    check = get_check("conv_bn_net_loss")
    case = {"X": (4, 2, 6, 6), "num_filters": 3, "filter_size": 3, "num_classes": 5, "reg": 0.1, "seed": 0}
    inputs = check.make_inputs(case)
    ref = check.reference(inputs)
    params = {k: inputs[k].copy() for k in CONV_BN_NET_PARAMS}

    def loss():  # train mode: the running averages play no part in the loss
        return conv_bn_net_loss(params, {"momentum": 0.9}, inputs["X"], inputs["y"], 0.1)[0]

    for name in CONV_BN_NET_PARAMS:
        np.testing.assert_allclose(ref[f"d{name}"], _numerical_gradient(loss, params[name]), rtol=1e-5, atol=1e-8)
    # the running averages moved 10% of the way to the statistics of the conv's output
    from cs231n_lib import conv_forward

    a, _ = conv_forward(inputs["X"], inputs["W1"], np.zeros(3), {"stride": 1, "pad": 1})
    np.testing.assert_allclose(ref["running_mean"], 0.9 * inputs["running_mean"] + 0.1 * a.mean(axis=(0, 2, 3)))
    np.testing.assert_allclose(ref["running_var"], 0.9 * inputs["running_var"] + 0.1 * a.var(axis=(0, 2, 3)))


class _AlwaysTrain(dict):
    """A bn_param whose mode stays 'train' whatever is written into it."""

    def __setitem__(self, key, value):
        super().__setitem__(key, "train" if key == "mode" else value)


def test_conv_bn_net_scores_use_the_running_averages(solution):
    """The scores (y None) are those of test mode: other running averages give other scores, and
    scores from the batch's own statistics are named."""
    from cs231n_checks.convnet import TEST_MODE_IGNORED

    check = get_check("conv_bn_net_loss")
    case = {"X": (4, 2, 6, 6), "num_filters": 3, "filter_size": 3, "num_classes": 5, "reg": 0.1, "seed": 0}
    inputs = check.make_inputs(case)
    moved = dict(inputs, running_mean=inputs["running_mean"] + 1.0)
    assert not np.allclose(check.reference(moved)["scores"], check.reference(inputs)["scores"])

    def train_mode_always(params, bn_param, X, y=None, reg=0.0):
        return solution["conv_bn_net_loss"](params, bn_param if y is not None else _AlwaysTrain(bn_param), X, y, reg)

    passed, lines, hints = run("conv_bn_net_loss", case, with_function(solution, "conv_bn_net_loss", train_mode_always))
    assert not passed and hints == [TEST_MODE_IGNORED]
    assert lines[0].startswith("scores: relative error 2.48e-01")
    assert all("relative error 0.00e+00" in line for line in lines[1:]), lines  # the rest is right


TRAINING_CASES = [(case, hidden) for cell in _notebook().cells
                  if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade")
                  for call in parse_test_cell(cell.source, "t") if call.name == "conv_bn_net_training"
                  for case, hidden in ((c, call.hidden) for c in call.cases)]


def test_conv_bn_net_training_reference_reaches_the_stated_accuracy():
    """The notebook states the target (85%) and the reference's accuracy on the visible case
    (92.0%, 184 of 200 digits); the hidden case's reference run reaches 90.0%. A run is a pure
    function of the case (fixed seeds and steps, nothing timed): the figures are exact."""
    check = get_check("conv_bn_net_training")
    reached = {case["seed"]: check.reference_accuracy(check.make_inputs(case)) for case, _ in TRAINING_CASES}
    assert reached == {0: 0.92, 3: 0.9}
    assert all(case["target"] == 0.85 and not case.get("dtype") for case, _ in TRAINING_CASES)
    assert sorted(hidden for _, hidden in TRAINING_CASES) == [False, True]
    text = _notebook().cells[0].source + "".join(c.source for c in _notebook().cells if c.cell_type == "markdown")
    assert "accuracy is at least 85%. The reference solution reaches\n# 92.0% (184 of 200)" in \
        (ROOT / "solutions" / "convnet" / "convnet.py").read_text()
    assert "92.0% (184 of 200)" in text


def test_conv_bn_net_training_passes_at_or_above_the_target_and_fails_below_it(solution):
    """The output is min(accuracy, target): a network that does not learn (zero gradients) stays
    near chance, fails, shows its accuracy and gets the fixed hint."""
    from cs231n_checks.convnet import BELOW_TARGET

    case = next(case for case, hidden in TRAINING_CASES if not hidden)
    assert run("conv_bn_net_training", case, solution)[0]

    def frozen(params, bn_param, X, y=None, reg=0.0):
        result = solution["conv_bn_net_loss"](params, bn_param, X, y, reg)
        return result if y is None else (result[0], {k: np.zeros_like(v) for k, v in result[1].items()})

    check = get_check("conv_bn_net_training")
    inputs = check.make_inputs(case)
    found = check.call({"conv_bn_net_loss": frozen}, inputs)
    assert float(found["val_acc"]) < 0.3
    passed, lines, hints, _ = judge(check, case, check.reference(inputs), found)
    assert not passed and hints == [BELOW_TARGET]
    assert "val_acc" in lines[0]


def test_conv_bn_net_training_reads_cifar10_when_asked(tmp_path, monkeypatch, solution):
    """A case with data "cifar10" reads CIFAR-10's own files (here a small copy written in its
    format) and trains the same network on 3x32x32 images; without CIFAR-10 it says how to get it."""
    import pickle

    check = get_check("conv_bn_net_training")
    case = {"data": "cifar10", "train": 60, "val": 20, "num_filters": 2, "filter_size": 3, "steps": 3, "batch": 20,
            "learning_rate": 0.01, "reg": 0.001, "target": 0.0, "seed": 0}
    monkeypatch.setenv("CS231N_DATA_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="fetch cifar10"):
        check.make_inputs(case)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": rng.integers(0, 256, (20, 3072), dtype=np.uint8),
                         b"labels": rng.integers(0, 10, 20).tolist()}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [b"c%d" % i for i in range(10)]}, f)
    inputs = check.make_inputs(case)
    assert inputs["X_train"].shape == (60, 3, 32, 32) and inputs["X_val"].shape == (20, 3, 32, 32)
    assert inputs["W2"].shape == (2 * 16 * 16, 10)
    assert run("conv_bn_net_training", case, solution)[0]


def test_conv_bn_net_training_on_the_real_cifar10_when_present(solution):
    """On CIFAR-10 (when fetched; skipped otherwise) the same check runs on 3x32x32 images."""
    from cs231n_lib.data import cifar10_folder

    if not cifar10_folder().exists():
        pytest.skip(f"CIFAR-10 is not in {cifar10_folder()} (python -m cs231n_lib.data fetch cifar10)")
    check = get_check("conv_bn_net_training")
    case = {"data": "cifar10", "train": 1000, "val": 500, "num_filters": 8, "filter_size": 3, "steps": 60,
            "batch": 50, "learning_rate": 0.01, "reg": 0.001, "target": 0.0, "seed": 0}
    inputs = check.make_inputs(case)
    reached = check.reference_accuracy(inputs)
    print(f"conv_bn_net_training on CIFAR-10: the reference reaches {reached:.3f}")
    assert reached > 0.2  # chance is 0.1
    assert run("conv_bn_net_training", dict(case, target=reached), solution)[0]


def test_residual_block_reference_gradients_match_numerical_gradients():
    from cs231n_lib.layer_utils import RESIDUAL_PARAMS, residual_block_forward

    check = get_check("residual_block_backward")
    inputs = check.make_inputs({"x": (2, 3, 4, 4), "seed": 0})
    ref = check.reference(inputs)
    x = inputs["x"].copy()
    params = {k: inputs[k].copy() for k in RESIDUAL_PARAMS}

    def loss():
        out, _ = residual_block_forward(x, params, [{"mode": "train"}, {"mode": "train"}])
        return float(np.sum(out * inputs["dout"]))

    np.testing.assert_allclose(ref["dx"], _numerical_gradient(loss, x), rtol=1e-5, atol=1e-8)
    for name in RESIDUAL_PARAMS:
        np.testing.assert_allclose(ref[f"d{name}"], _numerical_gradient(loss, params[name]), rtol=1e-5, atol=1e-8)
    # the block ends with a ReLU: some outputs are cut to zero, none is negative
    out = get_check("residual_block_forward").reference(inputs)["out"]
    assert out.min() == 0 and np.count_nonzero(out) > out.size // 4


def test_a_result_without_every_gradient_says_what_was_expected():
    from cs231n_checks.convnet import _with_gradients

    assert _with_gradients((1.5, {"w": 1, "b": 2}), ("w", "b"), "f", "loss") == (1.5, {"w": 1, "b": 2})
    with pytest.raises(TypeError, match=r"^f must return \(loss, grads\)$"):
        _with_gradients(1.5, ("w",), "f", "loss")
    with pytest.raises(KeyError, match="grads has no 'b': give one gradient per parameter"):
        _with_gradients((1.5, {"w": 1}), ("w", "b"), "f", "loss")
