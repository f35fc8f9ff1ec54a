"""The checks of the im2col notebook: the notebook's own solution passes every case of its test
cells (and random geometries), and typical wrong implementations fail where they are wrong."""

from pathlib import Path

import nbformat
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autograder.checks import convolution as conv_mistakes
from autograder.checks import get_check, judge
from autograder.checks import im2col as im2col_mistakes
from autograder.testspec import parse_test_cell

ROOT = Path(__file__).resolve().parents[3]
NOTEBOOK = ROOT / "solutions" / "im2col" / "im2col.ipynb"


def _cells(kind):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    return [c for c in notebook.cells if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get(kind)]


def _load_solution():
    namespace = {"np": np}  # what the setup cell imports and the solutions use
    for cell in _cells("solution"):
        exec(compile(cell.source, f"<{cell.metadata['nbgrader']['grade_id']}>", "exec"), namespace)
    return namespace


SOLUTION = _load_solution()


@pytest.fixture
def solution():
    return dict(SOLUTION)


def evaluate(name, case, namespace):
    """(passed, lines, hints) of one case, computed as the grader does."""
    check = get_check(name)
    inputs = check.make_inputs(case)
    found = check.call(namespace, {k: np.array(v, copy=True) for k, v in inputs.items()})
    passed, lines, hints, _ = judge(check, case, check.reference(inputs), found)
    return passed, lines, hints


def notebook_cases():
    for cell in _cells("grade"):
        for call in parse_test_cell(cell.source):
            for number, case in enumerate(call.cases):
                yield pytest.param(call.name, case, id=f"{call.name}-{'hidden' if call.hidden else 'visible'}-{number}")


def test_the_notebook_grades_every_function_it_teaches():
    points = {c.metadata["nbgrader"]["grade_id"]: c.metadata["nbgrader"]["points"] for c in _cells("grade")}
    assert points == {"test_im2col": 3, "test_col2im": 3, "test_conv_forward_im2col": 2, "test_conv_backward_im2col": 2}
    names = {call.name for cell in _cells("grade") for call in parse_test_cell(cell.source)}
    assert names == {"im2col", "col2im", "conv_forward_im2col", "conv_backward_im2col"}


@pytest.mark.parametrize("name, case", list(notebook_cases()))
def test_reference_solution_passes_every_case(solution, name, case):
    passed, lines, _ = evaluate(name, case, solution)
    assert passed, lines


@st.composite
def geometries(draw):
    """A valid (x shape, filter size, stride, pad) for the column checks."""
    HH, WW = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride, pad = draw(st.integers(1, 3)), draw(st.integers(0, 2))
    H_out, W_out = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    H, W = (H_out - 1) * stride + HH - 2 * pad, (W_out - 1) * stride + WW - 2 * pad
    if H < 1 or W < 1:
        H, W, pad = (H_out - 1) * stride + HH, (W_out - 1) * stride + WW, 0
    N, C = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dtype = draw(st.sampled_from(["float64", "float32"]))
    return {"x": (N, C, H, W), "HH": HH, "WW": WW, "stride": stride, "pad": pad, "seed": draw(st.integers(0, 99)), "dtype": dtype}


@settings(max_examples=30, deadline=None)
@given(case=geometries())
def test_solution_matches_the_library_on_random_geometries(case):
    for name in ("im2col", "col2im"):
        passed, lines, _ = evaluate(name, case, SOLUTION)
        assert passed, (name, case, lines)
    conv_case = {"x": case["x"], "w": (2, case["x"][1], case["HH"], case["WW"]), "stride": case["stride"],
                 "pad": case["pad"], "seed": case["seed"], "dtype": case["dtype"]}
    for name in ("conv_forward_im2col", "conv_backward_im2col"):
        passed, lines, _ = evaluate(name, conv_case, SOLUTION)
        assert passed, (name, conv_case, lines)


# --------------------------------------------------------------------------------------------
# im2col


def im2col_variant(order="c,i,j|n,oy,ox", pad_mode="constant"):
    """im2col with a configurable (possibly wrong) row / column order or padding."""
    def im2col(x, HH, WW, stride, pad):
        N, C, H, W = x.shape
        H_out, W_out = (H - HH + 2 * pad) // stride + 1, (W - WW + 2 * pad) // stride + 1
        x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode=pad_mode)
        blocks = np.empty((C, HH, WW, N, H_out, W_out), dtype=x.dtype)
        for i in range(HH):
            for j in range(WW):
                blocks[:, i, j] = x_pad[:, :, i:i + stride * H_out:stride, j:j + stride * W_out:stride].transpose(1, 0, 2, 3)
        rows, columns = order.split("|")
        axes = {"c": 0, "i": 1, "j": 2, "n": 3, "oy": 4, "ox": 5}
        permuted = blocks.transpose([axes[a] for a in rows.split(",") + columns.split(",")])
        return permuted.reshape(C * HH * WW, N * H_out * W_out)

    return im2col


IM2COL_CASE = {"x": (2, 3, 4, 4), "HH": 3, "WW": 3, "stride": 1, "pad": 1, "seed": 4}


def test_im2col_variant_with_the_right_layout_passes(solution):
    assert evaluate("im2col", IM2COL_CASE, dict(solution, im2col=im2col_variant()))[0]


@pytest.mark.parametrize("order", ["i,j,c|n,oy,ox", "c,i,j|oy,ox,n", "c,j,i|n,oy,ox"])
def test_im2col_wrong_layouts_fail(solution, order):
    passed, lines, _ = evaluate("im2col", IM2COL_CASE, dict(solution, im2col=im2col_variant(order)))
    assert not passed and lines[0].startswith("cols: relative error")


def test_im2col_transposed_matrix_fails_with_an_axis_hint(solution):
    transposed = lambda x, HH, WW, stride, pad: SOLUTION["im2col"](x, HH, WW, stride, pad).T  # noqa: E731
    passed, lines, hints = evaluate("im2col", IM2COL_CASE, dict(solution, im2col=transposed))
    assert not passed and lines == ["cols: expected shape (27, 32), found (32, 27)"]
    assert hints == [im2col_mistakes.COLUMNS_TRANSPOSED]


def test_im2col_padding_with_edge_values_fails(solution):
    passed, _, _ = evaluate("im2col", IM2COL_CASE, dict(solution, im2col=im2col_variant(pad_mode="edge")))
    assert not passed


# --------------------------------------------------------------------------------------------
# col2im


def col2im_assigning(cols, x_shape, HH, WW, stride, pad):
    """The classic mistake: ``=`` instead of ``+=``, so overlapping copies overwrite each other."""
    N, C, H, W = x_shape
    H_out, W_out = (H - HH + 2 * pad) // stride + 1, (W - WW + 2 * pad) // stride + 1
    blocks = cols.reshape(C, HH, WW, N, H_out, W_out)
    dx_pad = np.zeros((N, C, H + 2 * pad, W + 2 * pad), dtype=cols.dtype)
    for i in range(HH):
        for j in range(WW):
            dx_pad[:, :, i:i + stride * H_out:stride, j:j + stride * W_out:stride] = blocks[:, i, j].transpose(1, 0, 2, 3)
    return dx_pad[:, :, pad:pad + H, pad:pad + W]


def test_col2im_that_overwrites_fails_where_fields_overlap(solution):
    namespace = dict(solution, col2im=col2im_assigning)
    passed, lines, _ = evaluate("col2im", IM2COL_CASE, namespace)
    assert not passed and "relative error" in lines[0]
    # without overlap (stride >= filter size) the mistake is invisible: why the cases overlap
    assert evaluate("col2im", {"x": (3, 1, 11, 11), "HH": 3, "WW": 3, "stride": 4, "pad": 0}, namespace)[0]


def test_col2im_returning_the_padded_array_fails_on_its_shape(solution):
    def padded(cols, x_shape, HH, WW, stride, pad):
        dx = SOLUTION["col2im"](cols, x_shape, HH, WW, stride, pad)
        return np.pad(dx, ((0, 0), (0, 0), (pad, pad), (pad, pad)))

    passed, lines, hints = evaluate("col2im", IM2COL_CASE, dict(solution, col2im=padded))
    assert not passed and lines == ["dx: expected shape (2, 3, 4, 4), found (2, 3, 6, 6)"]
    assert hints == ["a gradient has the shape of what it is the gradient of (dx like x, dw like w, db like b)"]


def test_col2im_receives_the_input_shape_as_a_tuple_of_ints(solution):
    received = []

    def spy(cols, x_shape, HH, WW, stride, pad):
        received.append((x_shape, HH, WW, stride, pad))
        return SOLUTION["col2im"](cols, x_shape, HH, WW, stride, pad)

    assert evaluate("col2im", IM2COL_CASE, dict(solution, col2im=spy))[0]
    assert received == [((2, 3, 4, 4), 3, 3, 1, 1)]
    assert all(type(v) is int for v in received[0][0] + received[0][1:])


# --------------------------------------------------------------------------------------------
# the layer


CONV_CASE = {"x": (2, 3, 5, 5), "w": (4, 3, 3, 3), "stride": 1, "pad": 1, "seed": 6}


def test_forward_without_bias_points_at_the_bias(solution):
    def no_bias(x, w, b, conv_param):
        return SOLUTION["conv_forward_im2col"](x, w, np.zeros_like(b), conv_param)

    passed, _, hints = evaluate("conv_forward_im2col", CONV_CASE, dict(solution, conv_forward_im2col=no_bias))
    assert not passed and hints == [conv_mistakes.NO_BIAS]


def test_forward_reshaped_without_the_transpose_fails(solution):
    def no_transpose(x, w, b, conv_param):
        cols = SOLUTION["im2col"](x, w.shape[2], w.shape[3], conv_param["stride"], conv_param["pad"])
        out = w.reshape(w.shape[0], -1) @ cols + b[:, None]
        return out.reshape(x.shape[0], w.shape[0], 5, 5), None

    passed, lines, _ = evaluate("conv_forward_im2col", CONV_CASE, dict(solution, conv_forward_im2col=no_transpose))
    assert not passed and lines[0].startswith("out: relative error")


def backward_with(change):
    def conv_backward_im2col(dout, cache):
        return change(dout, cache, *SOLUTION["conv_backward_im2col"](dout, cache))

    return conv_backward_im2col


@pytest.mark.parametrize("change, wrong", [
    # dout reshaped straight to (F, -1), without moving F to the front first
    (lambda dout, cache, dx, dw, db: SOLUTION["conv_backward_im2col"](dout.reshape(dout.shape[1], dout.shape[0], *dout.shape[2:]).transpose(1, 0, 2, 3).copy(), cache), ["dx", "dw", "db"]),
    # the weight gradient multiplied the wrong way round, then forced into shape
    (lambda dout, cache, dx, dw, db: (dx, (cache[4] @ dout.transpose(1, 0, 2, 3).reshape(dout.shape[1], -1).T).reshape(dw.shape), db), ["dw"]),
    (lambda dout, cache, dx, dw, db: (dx, dw, db * 0), ["db"]),
])
def test_backward_mistakes_fail_on_the_right_outputs(solution, change, wrong):
    passed, lines, _ = evaluate("conv_backward_im2col", CONV_CASE, dict(solution, conv_backward_im2col=backward_with(change)))
    assert not passed
    assert [line.split(":")[0] for line in lines if "largest difference" in line or "every entry" in line or "found" in line] == wrong, lines


def test_backward_gets_the_cache_of_the_students_forward(solution):
    caches = []

    def backward(dout, cache):
        caches.append(len(cache))
        return SOLUTION["conv_backward_im2col"](dout, cache)

    assert evaluate("conv_backward_im2col", CONV_CASE, dict(solution, conv_backward_im2col=backward))[0]
    assert caches == [5]  # (x, w, b, conv_param, cols) as the notebook's forward returns it


@pytest.mark.parametrize("name", ["im2col", "col2im"])
def test_column_inputs_are_deterministic_and_shaped(name):
    check = get_check(name)
    case = dict(IM2COL_CASE, dtype="float32")
    first, second = check.make_inputs(case), check.make_inputs(case)
    for key in first:
        np.testing.assert_array_equal(first[key], second[key])
    main = first["x"] if name == "im2col" else first["cols"]
    assert main.dtype == np.float32
    assert main.shape == ((2, 3, 4, 4) if name == "im2col" else (27, 32))
    assert "seed" not in check.describe(case)


def im2col_stepping_by_one(x, HH, WW, stride, pad):
    """The windows' taps read with a step of 1 (x_pad[:, :, i:i + H_out, j:j + W_out]), the size right."""
    N, C, H, W = x.shape
    H_out, W_out = (H - HH + 2 * pad) // stride + 1, (W - WW + 2 * pad) // stride + 1
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    blocks = np.empty((C, HH, WW, N, H_out, W_out), dtype=x.dtype)
    for i in range(HH):
        for j in range(WW):
            blocks[:, i, j] = x_pad[:, :, i:i + H_out, j:j + W_out].transpose(1, 0, 2, 3)
    return blocks.reshape(C * HH * WW, N * H_out * W_out)


def col2im_stepping_by_one(cols, x_shape, HH, WW, stride, pad):
    N, C, H, W = x_shape
    H_out, W_out = (H - HH + 2 * pad) // stride + 1, (W - WW + 2 * pad) // stride + 1
    blocks = cols.reshape(C, HH, WW, N, H_out, W_out)
    dx_pad = np.zeros((N, C, H + 2 * pad, W + 2 * pad), dtype=cols.dtype)
    for i in range(HH):
        for j in range(WW):
            dx_pad[:, :, i:i + H_out, j:j + W_out] += blocks[:, i, j].transpose(1, 0, 2, 3)
    return dx_pad[:, :, pad:pad + H, pad:pad + W]


@pytest.mark.parametrize("name, function", [("im2col", im2col_stepping_by_one), ("col2im", col2im_stepping_by_one)])
def test_the_stride_ignored_on_both_axes_is_named(solution, name, function):
    """A step of 1 on both axes with the right size, the most common stride mistake, had no hint."""
    case = {"x": (2, 2, 7, 7), "HH": 3, "WW": 3, "stride": 2, "pad": 0, "seed": 2}
    passed, _, hints = evaluate(name, case, dict(solution, **{name: function}))
    assert not passed and hints == [conv_mistakes.STRIDE_BOTH]


def test_a_visible_convolution_case_tells_the_height_from_the_width():
    """Every visible case of the convolutions was square, so code that swaps H and W passed them."""
    for name in ("conv_forward_im2col", "conv_backward_im2col"):
        visible = [case for cell in _cells("grade") for call in parse_test_cell(cell.source)
                   if call.name == name and not call.hidden for case in call.cases]
        assert any(case["x"][2] != case["x"][3] for case in visible), name
