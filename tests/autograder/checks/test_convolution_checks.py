"""The checks of the convolution notebook: the notebook's own solution passes every case of its
test cells, and typical wrong implementations fail with the hint that points at their mistake."""

from pathlib import Path

import nbformat
import numpy as np
import pytest

from autograder.checks import convolution as conv_mistakes
from autograder.checks import get_check, judge
from cs231n_checks import compare
from autograder.testspec import parse_test_cell

ROOT = Path(__file__).resolve().parents[3]
NOTEBOOK = ROOT / "solutions" / "convolution" / "convolution.ipynb"


def _cells(kind):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    return [c for c in notebook.cells if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get(kind)]


@pytest.fixture(scope="module")
def solution():
    """The namespace the notebook's solution cells define (with numpy, as the setup cell gives)."""
    namespace = {"np": np}
    for cell in _cells("solution"):
        exec(compile(cell.source, f"<{cell.metadata['nbgrader']['grade_id']}>", "exec"), namespace)
    return namespace


def evaluate(name, case, namespace):
    """(passed, lines, hints) of one case, computed as the grader does."""
    check = get_check(name)
    inputs = check.make_inputs(case)
    found = check.call(namespace, {k: np.array(v, copy=True) for k, v in inputs.items()})
    passed, lines, hints, _ = judge(check, case, check.reference(inputs), found)
    return passed, lines, hints


def judge_hidden(name, case, namespace):
    """The hints of one case graded as a hidden case (fixed text only)."""
    check = get_check(name)
    inputs = check.make_inputs(case)
    found = check.call(namespace, {k: np.array(v, copy=True) for k, v in inputs.items()})
    return judge(check, case, check.reference(inputs), found, hidden=True)[2]


def notebook_cases():
    for cell in _cells("grade"):
        for call in parse_test_cell(cell.source):
            for number, case in enumerate(call.cases):
                yield pytest.param(call.name, case, id=f"{call.name}-{'hidden' if call.hidden else 'visible'}-{number}")


def test_the_notebook_grades_every_function_it_teaches():
    names = {call.name for cell in _cells("grade") for call in parse_test_cell(cell.source)}
    assert names == {"conv_output_size", "conv_forward_naive", "conv_backward_naive", "conv_forward_dilated"}
    points = {c.metadata["nbgrader"]["grade_id"]: c.metadata["nbgrader"]["points"] for c in _cells("grade")}
    assert points == {"test_conv_output_size": 2, "test_conv_forward_naive": 4,
                      "test_conv_backward_naive": 4, "test_conv_forward_dilated": 1}


@pytest.mark.parametrize("name, case", list(notebook_cases()))
def test_reference_solution_passes_every_case(solution, name, case):
    passed, lines, _ = evaluate(name, case, solution)
    assert passed, lines


def with_function(solution, **functions):
    return dict(solution, **functions)


# --------------------------------------------------------------------------------------------
# conv_output_size


def test_output_size_float_result_fails_on_its_type(solution):
    def true_division(W, F, S=1, P=0):
        return (W - F + 2 * P) / S + 1

    passed, lines, _ = evaluate("conv_output_size", {"W": 7, "F": 3, "S": 1, "P": 0}, with_function(solution, conv_output_size=true_division))
    assert not passed
    assert "type: expected 'int', found 'float'" in lines


def test_output_size_without_valueerror_fails_on_invalid_setting(solution):
    def floor_division(W, F, S=1, P=0):
        return (W - F + 2 * P) // S + 1

    namespace = with_function(solution, conv_output_size=floor_division)
    assert evaluate("conv_output_size", {"W": 7, "F": 3, "S": 2, "P": 0}, namespace)[0]
    passed, lines, _ = evaluate("conv_output_size", {"W": 10, "F": 3, "S": 2, "P": 0}, namespace)
    assert not passed
    assert "error: expected 'ValueError', found 'none'" in lines


def test_output_size_must_refuse_a_filter_that_does_not_fit(solution):
    def divisibility_only(W, F, S=1, P=0):
        if (W - F + 2 * P) % S:
            raise ValueError("not an integer")
        return (W - F + 2 * P) // S + 1

    namespace = with_function(solution, conv_output_size=divisibility_only)
    assert evaluate("conv_output_size", {"W": 10, "F": 3, "S": 2, "P": 0}, namespace)[0]
    passed, lines, _ = evaluate("conv_output_size", {"W": 3, "F": 7, "S": 2, "P": 0}, namespace)
    assert not passed and "error: expected 'ValueError', found 'none'" in lines


def test_output_size_raising_for_a_valid_setting_fails(solution):
    def always_raises(W, F, S=1, P=0):
        raise ValueError("no")

    passed, lines, _ = evaluate("conv_output_size", {"W": 5, "F": 3, "S": 1, "P": 1}, with_function(solution, conv_output_size=always_raises))
    assert not passed and "error: expected 'none', found 'ValueError'" in lines


def test_output_size_accepts_numpy_integers(solution):
    namespace = with_function(solution, conv_output_size=lambda W, F, S=1, P=0: np.int64((W - F + 2 * P) // S + 1))
    assert evaluate("conv_output_size", {"W": 32, "F": 5, "S": 1, "P": 2}, namespace)[0]


# --------------------------------------------------------------------------------------------
# conv_forward_naive: loop variants with one deliberate mistake each


def forward_variant(pad_mode="constant", bias=True, column_stride=None, flip=False, dtype=None):
    def conv_forward_naive(x, w, b, conv_param):
        stride, pad = conv_param["stride"], conv_param["pad"]
        N, C, H, W = x.shape
        F, _, HH, WW = w.shape
        H_out, W_out = (H - HH + 2 * pad) // stride + 1, (W - WW + 2 * pad) // stride + 1
        x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode=pad_mode)
        out = np.zeros((N, F, H_out, W_out), dtype=dtype or x.dtype)
        step = stride if column_stride is None else column_stride
        for n in range(N):
            for f in range(F):
                kernel = w[f, :, ::-1, ::-1] if flip else w[f]
                for i in range(H_out):
                    for j in range(W_out):
                        field = x_pad[n, :, i * stride:i * stride + HH, j * step:j * step + WW]
                        out[n, f, i, j] = np.sum(field * kernel) + (b[f] if bias else 0)
        return out, (x, w, b, conv_param)

    return conv_forward_naive


CASE = {"x": (2, 3, 6, 6), "w": (3, 3, 3, 3), "stride": 1, "pad": 1, "seed": 5}


def test_forward_variant_without_mistakes_passes(solution):
    assert evaluate("conv_forward_naive", CASE, with_function(solution, conv_forward_naive=forward_variant()))[0]


def test_forward_padding_with_edge_values_points_at_the_padding(solution):
    passed, _, hints = evaluate("conv_forward_naive", CASE, with_function(solution, conv_forward_naive=forward_variant(pad_mode="edge")))
    assert not passed
    assert hints == ["only the border rows and columns are wrong (the interior is right): look at the padding"]


def test_forward_missing_bias_points_at_the_bias(solution):
    passed, _, hints = evaluate("conv_forward_naive", CASE, with_function(solution, conv_forward_naive=forward_variant(bias=False)))
    assert not passed
    assert hints == ["the bias is missing: add b[f] to every output of filter f"]


def test_forward_flipped_filters_fail(solution):
    passed, lines, _ = evaluate("conv_forward_naive", CASE, with_function(solution, conv_forward_naive=forward_variant(flip=True)))
    assert not passed and lines[0].startswith("out: relative error")


def test_forward_stride_ignored_along_columns_fails(solution):
    case = {"x": (1, 2, 9, 9), "w": (2, 2, 3, 3), "stride": 2, "pad": 0, "seed": 1}
    passed, lines, _ = evaluate("conv_forward_naive", case, with_function(solution, conv_forward_naive=forward_variant(column_stride=1)))
    assert not passed and "relative error" in lines[0]


def test_forward_float32_result_in_float64_passes_with_a_note(solution):
    case = dict(CASE, dtype="float32")
    passed, lines, _ = evaluate("conv_forward_naive", case, with_function(solution, conv_forward_naive=forward_variant(dtype=np.float64)))
    assert passed and "note: returned float64 for float32 inputs" in lines[0]


def test_forward_float32_result_for_float64_inputs_names_the_dtype_not_a_pattern(solution):
    """np.zeros(..., dtype=np.float32) on a float64 case: right to float32's rounding only. The
    rounding errors once read as "off by a constant: look at the bias" (or, for a 1 x 1 output,
    "the last two axes look transposed")."""
    namespace = with_function(solution, conv_forward_naive=forward_variant(dtype=np.float32))
    for case in (CASE, {"x": (1, 2, 3, 3), "w": (1, 2, 3, 3), "stride": 1, "pad": 0, "seed": 17}):
        passed, lines, hints = evaluate("conv_forward_naive", case, namespace)
        assert not passed and "note: returned float32 for float64 inputs" in lines[0]
        assert hints == [compare.LOW_PRECISION]
        assert judge_hidden("conv_forward_naive", case, namespace) == [compare.LOW_PRECISION]


def test_forward_computed_in_float32_but_returned_in_float64_gets_no_pattern_hint(solution):
    def float32_filters(x, w, b, conv_param):
        return forward_variant()(x, w.astype(np.float32), b, conv_param)

    passed, lines, hints = evaluate("conv_forward_naive", CASE, with_function(solution, conv_forward_naive=float32_filters))
    assert not passed and lines[0].startswith("out: relative error")
    assert hints == []


def test_forward_integer_result_names_the_integer_array(solution):
    namespace = with_function(solution, conv_forward_naive=forward_variant(dtype=np.int64))
    passed, lines, hints = evaluate("conv_forward_naive", CASE, namespace)
    assert not passed and "note: returned int64 for float64 inputs" in lines[0]
    assert hints == [compare.INTEGER_RESULT]


def test_forward_loops_that_start_at_one_point_at_the_loops_not_the_padding(solution):
    """for i in range(1, H_out): the first output row and column stay zero. The hint once said
    "look at the padding", even with pad = 0; a padding filled with the wrong value still gets it."""
    def late_start(x, w, b, conv_param):
        out, cache = forward_variant()(x, w, b, conv_param)
        out[:, :, 0, :] = out[:, :, :, 0] = 0.0
        return out, cache

    namespace = with_function(solution, conv_forward_naive=late_start)
    for case in (CASE, {"x": (1, 2, 7, 7), "w": (2, 2, 3, 3), "stride": 2, "pad": 0, "seed": 1}):
        passed, _, hints = evaluate("conv_forward_naive", case, namespace)
        assert not passed and hints == [compare.FIRST_ROWS_COLUMNS]
    passed, _, hints = evaluate("conv_forward_naive", CASE, with_function(
        solution, conv_forward_naive=forward_variant(pad_mode="edge")))
    assert not passed and hints == [compare.BORDER]


def test_forward_wrong_output_size_points_at_the_rule(solution):
    def no_padding_in_size(x, w, b, conv_param):
        out, cache = solution["conv_forward_naive"](x, w, b, dict(conv_param, pad=0))
        return out, cache

    passed, lines, hints = evaluate("conv_forward_naive", CASE, with_function(solution, conv_forward_naive=no_padding_in_size))
    assert not passed and "expected shape (2, 3, 6, 6), found (2, 3, 4, 4)" in lines[0]
    assert hints == [conv_mistakes.PAD_MISSING]


def test_forward_not_implemented_propagates(solution):
    def stub(x, w, b, conv_param):
        raise NotImplementedError()

    with pytest.raises(NotImplementedError):
        evaluate("conv_forward_naive", CASE, with_function(solution, conv_forward_naive=stub))


# --------------------------------------------------------------------------------------------
# conv_backward_naive


def backward_variant(solution, change):
    def conv_backward_naive(dout, cache):
        dx, dw, db = solution["conv_backward_naive"](dout, cache)
        return change(dx, dw, db, dout, cache)

    return conv_backward_naive


@pytest.mark.parametrize("change, output, hint", [
    (lambda dx, dw, db, dout, cache: (dx, -dw, db), "dw", "the sign is flipped"),
    (lambda dx, dw, db, dout, cache: (dx, dw / dout.shape[0], db), "dw", "the result is 0.5 times the expected one: look for a missing or extra scale factor"),
    (lambda dx, dw, db, dout, cache: (dx, dw, dout[0].sum(axis=(1, 2))), "db", None),
    (lambda dx, dw, db, dout, cache: (np.zeros_like(dx), dw, db), "dx", "every entry is zero: is the function still returning its initial value?"),
])
def test_backward_mistakes_fail_on_the_right_output(solution, change, output, hint):
    namespace = with_function(solution, conv_backward_naive=backward_variant(solution, change))
    passed, lines, hints = evaluate("conv_backward_naive", CASE, namespace)
    assert not passed
    failing = [line.split(":")[0] for line in lines if "largest difference" in line]
    assert failing == [output], lines
    if hint:
        assert hint in hints


@pytest.mark.parametrize("db_of", [lambda dout: dout.sum(axis=0), lambda dout: dout.sum(axis=(0, 2)),
                                   lambda dout: dout.sum(axis=(2, 3)), lambda dout: dout.sum()],
                         ids=["axis0", "axes02", "axes23", "all"])
def test_backward_db_summed_over_too_few_or_all_axes_points_at_the_sum(solution, db_of):
    """db = dout.sum(axis=0) and the like: a shape error whose hint once said "check a reshape"."""
    namespace = with_function(solution, conv_backward_naive=backward_variant(
        solution, lambda dx, dw, db, dout, cache: (dx, dw, db_of(dout))))
    passed, lines, hints = evaluate("conv_backward_naive", CASE, namespace)
    assert not passed and lines[2].startswith("db: expected shape (3,), found ")
    assert hints == [compare.PER_FEATURE_GRADIENT]
    assert judge_hidden("conv_backward_naive", CASE, namespace) == [compare.PER_FEATURE_GRADIENT]


def test_backward_returning_the_padded_dx_fails_on_its_shape(solution):
    def untrimmed(dout, cache):
        x, w, b, conv_param = cache
        dx, dw, db = solution["conv_backward_naive"](dout, cache)
        pad = conv_param["pad"]
        return np.pad(dx, ((0, 0), (0, 0), (pad, pad), (pad, pad))), dw, db

    passed, lines, hints = evaluate("conv_backward_naive", CASE, with_function(solution, conv_backward_naive=untrimmed))
    assert not passed and lines[0] == "dx: expected shape (2, 3, 6, 6), found (2, 3, 8, 8)"
    # zeros around the right dx: not the padded gradient, so no mistake is named
    assert hints == ["a gradient has the shape of what it is the gradient of (dx like x, dw like w, db like b)"]


def test_backward_uses_the_students_forward_cache(solution):
    """The cache passed to backward is whatever the student's forward returned."""
    seen = []

    def forward(x, w, b, conv_param):
        out, _ = solution["conv_forward_naive"](x, w, b, conv_param)
        return out, ("my cache", x, w, b, conv_param)

    def backward(dout, cache):
        seen.append(cache[0])
        return solution["conv_backward_naive"](dout, cache[1:])

    namespace = with_function(solution, conv_forward_naive=forward, conv_backward_naive=backward)
    assert evaluate("conv_backward_naive", CASE, namespace)[0]
    assert seen == ["my cache"]


# --------------------------------------------------------------------------------------------
# the optional dilation part and the case machinery


def test_dilation_ignored_fails_on_shape(solution):
    case = {"x": (1, 2, 7, 7), "w": (2, 2, 3, 3), "stride": 1, "pad": 2, "dilation": 2, "seed": 0}
    passed, lines, _ = evaluate("conv_forward_dilated", case, with_function(solution, conv_forward_naive=forward_variant()))
    assert not passed and lines[0] == "out: expected shape (1, 2, 7, 7), found (1, 2, 9, 9)"


def test_dilated_check_passes_the_dilation_to_the_students_forward(solution):
    received = []

    def spy(x, w, b, conv_param):
        received.append(dict(conv_param))
        return solution["conv_forward_naive"](x, w, b, conv_param)

    case = {"x": (1, 1, 10, 10), "w": (1, 1, 3, 3), "stride": 1, "pad": 0, "dilation": 3}
    assert evaluate("conv_forward_dilated", case, with_function(solution, conv_forward_naive=spy))[0]
    assert received == [{"stride": 1, "pad": 0, "dilation": 3}]


@pytest.mark.parametrize("name", ["conv_forward_naive", "conv_backward_naive", "conv_forward_dilated"])
def test_inputs_are_deterministic_and_follow_the_case(name):
    check = get_check(name)
    case = {"x": (2, 3, 5, 5), "w": (4, 3, 3, 3), "stride": 2, "pad": 1, "dilation": 1, "seed": 9, "dtype": "float32"}
    first, second = check.make_inputs(case), check.make_inputs(case)
    assert first.keys() == second.keys()
    for key in first:
        np.testing.assert_array_equal(first[key], second[key])
    assert first["x"].shape == (2, 3, 5, 5) and first["x"].dtype == np.float32
    assert first["w"].shape == (4, 3, 3, 3) and first["b"].shape == (4,)
    other = check.make_inputs(dict(case, seed=10))
    assert not np.array_equal(first["x"], other["x"])
    assert "seed" not in check.describe(case) and "9" not in check.describe(case)


# --------------------------------------------------------------------------------------------
# known mistakes named by the catalogue: output sizes, the stride on both axes, dw with =


def loop_forward(size=None, row_step=None, col_step=None):
    """conv_forward_naive with loops, its output size by ``size(H, HH, stride, pad)`` and its
    windows stepping ``row_step`` / ``col_step`` (default: the right rule and the stride)."""
    size = size or (lambda n, k, s, p: (n - k + 2 * p) // s + 1)

    def conv_forward_naive(x, w, b, conv_param):
        stride, pad = conv_param["stride"], conv_param["pad"]
        N, C, H, W = x.shape
        F, _, HH, WW = w.shape
        rs, cs = row_step or stride, col_step or stride
        H_out, W_out = size(H, HH, stride, pad), size(W, WW, stride, pad)
        x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
        out = np.zeros((N, F, H_out, W_out), dtype=x.dtype)
        for n, f, i, j in np.ndindex(*out.shape):
            out[n, f, i, j] = np.sum(x_pad[n, :, i * rs:i * rs + HH, j * cs:j * cs + WW] * w[f]) + b[f]
        return out, (x, w, b, conv_param)

    return conv_forward_naive


NO_PLUS_ONE = lambda n, k, s, p: (n - k + 2 * p) // s  # noqa: E731
NO_PAD_IN_SIZE = lambda n, k, s, p: (n - k) // s + 1  # noqa: E731
PAD_ONCE_IN_SIZE = lambda n, k, s, p: (n - k + p) // s + 1  # noqa: E731
# the notebook's visible case 3 (S = 2, P = 1): each of the three rules gives one row and column short
STRIDED_CASE = {"x": (2, 3, 5, 7), "w": (2, 3, 3, 3), "stride": 2, "pad": 1, "seed": 2, "dtype": "float32"}


@pytest.mark.parametrize("rule", [NO_PLUS_ONE, NO_PAD_IN_SIZE, PAD_ONCE_IN_SIZE], ids=["no+1", "no-pad", "pad-once"])
def test_one_row_short_names_both_causes(solution, rule):
    """On (5, 7) with S = 2, P = 1, a size rule that drops the padding, counts it once or forgets
    the + 1 all give one row and column short. The hint used to blame only the + 1, which the
    student who dropped the padding has."""
    namespace = with_function(solution, conv_forward_naive=loop_forward(size=rule))
    passed, lines, hints = evaluate("conv_forward_naive", STRIDED_CASE, namespace)
    assert not passed and "expected shape (2, 2, 3, 4), found (2, 2, 2, 3)" in lines[0]
    assert hints == [conv_mistakes.ONE_SHORT]
    assert "2P" in hints[0] and "+ 1" in hints[0]
    assert judge_hidden("conv_forward_naive", STRIDED_CASE, namespace) == [conv_mistakes.ONE_SHORT]


def test_a_size_without_the_padding_is_named_where_it_is_not_one_row_short(solution):
    """S = 1, P = 1 on (4, 4): without the padding 2 rows for 4 (the padding's own hint); once
    counted, or without the + 1, one short."""
    case = {"x": (2, 3, 4, 4), "w": (3, 3, 3, 3), "stride": 1, "pad": 1, "seed": 0}
    for rule, hint in ((NO_PAD_IN_SIZE, conv_mistakes.PAD_IN_SIZE), (PAD_ONCE_IN_SIZE, conv_mistakes.ONE_SHORT),
                       (NO_PLUS_ONE, conv_mistakes.ONE_SHORT)):
        namespace = with_function(solution, conv_forward_naive=loop_forward(size=rule))
        passed, _, hints = evaluate("conv_forward_naive", case, namespace)
        assert not passed and hints == [hint], rule
        assert judge_hidden("conv_forward_naive", case, namespace) == [hint]
    assert evaluate("conv_forward_naive", case, with_function(solution, conv_forward_naive=loop_forward()))[0]


def test_the_stride_ignored_on_both_axes_is_named(solution):
    """top, left = i, j with the right output size: the most common stride mistake had no hint."""
    case = {"x": (1, 2, 9, 9), "w": (2, 2, 3, 3), "stride": 2, "pad": 0, "seed": 1}
    for steps, hint in (({"row_step": 1, "col_step": 1}, conv_mistakes.STRIDE_BOTH),
                        ({"col_step": 1}, conv_mistakes.STRIDE_COLUMNS), ({"row_step": 1}, conv_mistakes.STRIDE_ROWS)):
        namespace = with_function(solution, conv_forward_naive=loop_forward(**steps))
        passed, _, hints = evaluate("conv_forward_naive", case, namespace)
        assert not passed and hints == [hint], steps
        assert judge_hidden("conv_forward_naive", case, namespace) == [hint]
    # one output row: moving down never happens, so it is the columns' mistake alone
    one_row = {"x": (1, 2, 3, 9), "w": (2, 2, 3, 3), "stride": 2, "pad": 0, "seed": 1}
    passed, _, hints = evaluate("conv_forward_naive", one_row, with_function(
        solution, conv_forward_naive=loop_forward(row_step=1, col_step=1)))
    assert not passed and hints == [conv_mistakes.STRIDE_COLUMNS]


def loop_backward(order="nfij", assign_dw=False, step=None):
    """conv_backward_naive with loops in ``order``; ``assign_dw``: ``dw[f] = ...`` (True) or
    the samples in one statement, ``dw[f] = sum over n`` ("batch"); ``step``: the windows' step."""
    def conv_backward_naive(dout, cache):
        x, w, b, conv_param = cache
        stride, pad = conv_param["stride"], conv_param["pad"]
        s = step or stride
        F, _, HH, WW = w.shape
        N, _, H_out, W_out = dout.shape
        x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
        dx_pad, dw = np.zeros_like(x_pad), np.zeros_like(w)
        sizes = dict(n=N, f=F, i=H_out, j=W_out)
        for index in np.ndindex(*(sizes[k] for k in order)):
            n, f, i, j = (index[order.index(k)] for k in "nfij")
            rows, cols = slice(i * s, i * s + HH), slice(j * s, j * s + WW)
            dx_pad[n, :, rows, cols] += dout[n, f, i, j] * w[f]
            if assign_dw == "batch":
                dw[f] = np.einsum("n,nchw->chw", dout[:, f, i, j], x_pad[:, :, rows, cols])
            elif assign_dw:
                dw[f] = dout[n, f, i, j] * x_pad[n, :, rows, cols]
            else:
                dw[f] += dout[n, f, i, j] * x_pad[n, :, rows, cols]
        return dx_pad[:, :, pad:pad + x.shape[2], pad:pad + x.shape[3]], dw, dout.sum(axis=(0, 2, 3))

    return conv_backward_naive


@pytest.mark.parametrize("order, assign", [("nfij", True), ("fnij", True), ("ijnf", True), ("fijn", True),
                                           ("nfij", "batch")])
def test_dw_written_with_assignment_is_named_whatever_the_loop_order(solution, order, assign):
    """dw[f] = ... for +=: with ascending loops the last window of the last sample wins in every
    order (or of every sample when the samples are one statement). It had no hint."""
    assert evaluate("conv_backward_naive", CASE, with_function(solution, conv_backward_naive=loop_backward(order)))[0]
    namespace = with_function(solution, conv_backward_naive=loop_backward(order, assign_dw=assign))
    for case in (CASE, STRIDED_CASE):
        passed, lines, hints = evaluate("conv_backward_naive", case, namespace)
        assert not passed and [line.split(":")[0] for line in lines if "largest difference" in line] == ["dw"]
        assert hints == [conv_mistakes.ASSIGN_DW]
        assert judge_hidden("conv_backward_naive", case, namespace) == [conv_mistakes.ASSIGN_DW]


def test_backward_with_the_stride_ignored_on_both_axes_is_named(solution):
    case = {"x": (1, 2, 9, 9), "w": (2, 2, 3, 3), "stride": 2, "pad": 0, "seed": 1}
    namespace = with_function(solution, conv_backward_naive=loop_backward(step=1))
    passed, _, hints = evaluate("conv_backward_naive", case, namespace)
    assert not passed and hints == [conv_mistakes.STRIDE_BOTH]


def test_a_visible_case_tells_the_height_from_the_width(solution):
    """Every visible case was square, so code that swaps H and W passed them all."""
    def swapped(x, w, b, conv_param):  # N, C, W, H = x.shape
        stride, pad = conv_param["stride"], conv_param["pad"]
        N, C, W, H = x.shape
        F, _, HH, WW = w.shape
        H_out, W_out = (H - HH + 2 * pad) // stride + 1, (W - WW + 2 * pad) // stride + 1
        x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
        out = np.zeros((N, F, H_out, W_out), dtype=x.dtype)
        for n, f, i, j in np.ndindex(*out.shape):
            field = x_pad[n, :, i * stride:i * stride + HH, j * stride:j * stride + WW]
            out[n, f, i, j] = np.sum(field * w[f]) + b[f] if field.shape[1:] == (HH, WW) else 0.0
        return out, (x, w, b, conv_param)

    visible = {}
    for cell in _cells("grade"):
        for call in parse_test_cell(cell.source):
            if not call.hidden:
                visible.setdefault(call.name, []).extend(call.cases)
    for name in ("conv_forward_naive", "conv_backward_naive"):
        assert any(case["x"][2] != case["x"][3] for case in visible[name]), name
    results = [evaluate("conv_forward_naive", case, with_function(solution, conv_forward_naive=swapped))[0]
               for case in visible["conv_forward_naive"]]
    assert not all(results)
