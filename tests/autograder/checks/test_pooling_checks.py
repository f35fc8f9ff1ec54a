"""The pooling notebook's checks: right answers pass, the usual mistakes fail with a useful hint.

The "student" functions here are loop implementations written in this file (an oracle
independent of cs231n_lib), plus deliberately wrong variants.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autograder.checks import check, get_check, judge
from cs231n_checks import compare
from cs231n_checks.base import diagnose
from autograder.checks import pooling as pool_mistakes
from autograder.checks.pooling import max_pool_backward_tie_rule

POOL_CHECKS = ["max_pool_forward_naive", "max_pool_backward_naive", "avg_pool_forward_naive",
               "avg_pool_backward_naive", "max_pool_forward_fast"]


def _geometry(pool_param):
    return pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]


def loop_pool_forward(x, pool_param, reduce):
    PH, PW, S = _geometry(pool_param)
    N, C, H, W = x.shape
    Hout, Wout = (H - PH) // S + 1, (W - PW) // S + 1
    out = np.zeros((N, C, Hout, Wout), dtype=x.dtype)
    for n, c, i, j in np.ndindex(N, C, Hout, Wout):
        out[n, c, i, j] = reduce(x[n, c, i * S:i * S + PH, j * S:j * S + PW])
    return out, (x, pool_param)


def loop_max_backward(dout, cache):
    x, pool_param = cache
    PH, PW, S = _geometry(pool_param)
    dx = np.zeros_like(x)
    for n, c, i, j in np.ndindex(*dout.shape):
        p, q = divmod(int(np.argmax(x[n, c, i * S:i * S + PH, j * S:j * S + PW])), PW)
        dx[n, c, i * S + p, j * S + q] += dout[n, c, i, j]
    return dx


def loop_avg_backward(dout, cache):
    x, pool_param = cache
    PH, PW, S = _geometry(pool_param)
    dx = np.zeros_like(x)
    for n, c, i, j in np.ndindex(*dout.shape):
        dx[n, c, i * S:i * S + PH, j * S:j * S + PW] += dout[n, c, i, j] / (PH * PW)
    return dx


def right_namespace():
    max_forward = lambda x, p: loop_pool_forward(x, p, np.max)  # noqa: E731
    return {
        "max_pool_forward_naive": max_forward,
        "max_pool_backward_naive": loop_max_backward,
        "avg_pool_forward_naive": lambda x, p: loop_pool_forward(x, p, np.mean),
        "avg_pool_backward_naive": loop_avg_backward,
        "max_pool_forward_fast": max_forward,
    }


CASES = [
    {"x": (2, 3, 4, 4), "pool": (2, 2), "stride": 2, "seed": 0},
    {"x": (1, 2, 7, 7), "pool": (3, 3), "stride": 2, "seed": 1},  # overlapping windows
    {"x": (2, 1, 5, 6), "pool": (2, 3), "stride": 1, "seed": 2},
    {"x": (1, 4, 5, 9), "pool": (2, 3), "stride": 3, "seed": 3, "dtype": "float32"},
    {"x": (2, 2, 7, 7), "pool": (3, 3), "stride": 2, "seed": 4, "ties": True},
]


def run_case(name, case, namespace):
    kind = get_check(name)
    inputs = kind.make_inputs(case)
    found = kind.call(namespace, {k: np.array(v, copy=True) for k, v in inputs.items()})
    return judge(kind, case, kind.reference(inputs), found), kind, inputs, found


def test_loops_that_start_at_one_point_at_the_loops_not_at_a_padding():
    """The first output row and column never computed: pooling has no padding, so the hint is
    where the loops start (it once said "look at the padding")."""
    def late_start(x, pool_param):
        PH, PW, S = _geometry(pool_param)
        N, C, H, W = x.shape
        out = np.zeros((N, C, (H - PH) // S + 1, (W - PW) // S + 1), dtype=x.dtype)
        for n, c, i, j in np.ndindex(*out.shape):
            if i >= 1 and j >= 1:
                out[n, c, i, j] = x[n, c, i * S:i * S + PH, j * S:j * S + PW].max()
        return out, (x, pool_param)

    case = {"x": (2, 1, 5, 6), "pool": (2, 3), "stride": 1, "seed": 2}
    (passed, _, hints, _), *_ = run_case("max_pool_forward_naive", case,
                                         dict(right_namespace(), max_pool_forward_naive=late_start))
    assert not passed and hints == [compare.FIRST_ROWS_COLUMNS]
    assert not get_check("max_pool_forward_naive").padded


@pytest.mark.parametrize("name", POOL_CHECKS)
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['x']}-{c['pool']}-s{c['stride']}")
def test_loop_oracle_passes(name, case):
    (passed, lines, hints, worst), *_ = run_case(name, case, right_namespace())
    assert passed, lines
    assert worst <= get_check(name).tolerance_for(case)
    assert hints == []


@settings(max_examples=15, deadline=None)
@given(N=st.integers(1, 2), C=st.integers(1, 3), PH=st.integers(1, 3), PW=st.integers(1, 3),
       S=st.integers(1, 3), Hout=st.integers(1, 3), Wout=st.integers(1, 3), seed=st.integers(0, 99),
       ties=st.booleans(), dtype=st.sampled_from(["float64", "float32"]))
def test_loop_oracle_passes_any_geometry(N, C, PH, PW, S, Hout, Wout, seed, ties, dtype):
    case = {"x": (N, C, (Hout - 1) * S + PH, (Wout - 1) * S + PW), "pool": (PH, PW), "stride": S,
            "seed": seed, "ties": ties, "dtype": dtype}
    for name in ("max_pool_forward_naive", "max_pool_backward_naive", "avg_pool_backward_naive"):
        (passed, lines, _, _), *_ = run_case(name, case, right_namespace())
        assert passed, (name, lines)


def test_inputs_are_deterministic_and_descriptions_hide_the_seed():
    kind = get_check("max_pool_backward_naive")
    case = {"x": (2, 2, 7, 7), "pool": (3, 3), "stride": 2, "seed": 1234}
    first, second = kind.make_inputs(case), kind.make_inputs(case)
    assert first.keys() == second.keys() == {"x", "pool_height", "pool_width", "stride", "dout"}
    for key in first:
        np.testing.assert_array_equal(first[key], second[key])
    assert first["dout"].shape == (2, 2, 3, 3)
    assert "1234" not in kind.describe(case)
    assert kind.make_inputs(dict(case, dtype="float32"))["x"].dtype == np.float32


def test_tie_cases_really_hold_ties():
    inputs = get_check("max_pool_forward_naive").make_inputs(
        {"x": (2, 2, 7, 7), "pool": (3, 3), "stride": 2, "seed": 4, "ties": True})
    x = inputs["x"]
    windows = [x[n, c, 2 * i:2 * i + 3, 2 * j:2 * j + 3] for n, c, i, j in np.ndindex(2, 2, 3, 3)]
    tied = sum(int(np.count_nonzero(w == w.max()) > 1) for w in windows)
    assert tied >= len(windows) // 2


def test_every_tied_maximum_getting_the_gradient_fails_with_the_tie_hint():
    case = {"x": (2, 2, 7, 7), "pool": (3, 3), "stride": 2, "seed": 4, "ties": True}
    kind = get_check("max_pool_backward_naive")
    inputs = kind.make_inputs(case)
    found = {"dx": max_pool_backward_tie_rule(inputs, "all")}
    expected = kind.reference(inputs)
    passed, _, hints, _ = judge(kind, case, expected, found)
    assert not passed
    assert "the gradient went to every maximum of a window; send it to the first maximum only" in hints


def test_last_maximum_winning_fails_with_the_tie_hint():
    case = {"x": (1, 3, 6, 6), "pool": (2, 2), "stride": 2, "seed": 8, "ties": True}
    kind = get_check("max_pool_backward_naive")
    inputs = kind.make_inputs(case)
    found = {"dx": max_pool_backward_tie_rule(inputs, "last")}
    expected = kind.reference(inputs)
    assert not judge(kind, case, expected, found)[0]
    assert "first maximum" in diagnose(kind, case, expected, found)[0]
    assert diagnose(kind, case, expected, expected) == []


def test_assigning_instead_of_adding_fails_on_overlapping_windows():
    def assigning_backward(dout, cache):
        x, pool_param = cache
        PH, PW, S = _geometry(pool_param)
        dx = np.zeros_like(x)
        for n, c, i, j in np.ndindex(*dout.shape):
            p, q = divmod(int(np.argmax(x[n, c, i * S:i * S + PH, j * S:j * S + PW])), PW)
            dx[n, c, i * S + p, j * S + q] = dout[n, c, i, j]
        return dx

    namespace = dict(right_namespace(), max_pool_backward_naive=assigning_backward)
    (passed, *_), *_ = run_case("max_pool_backward_naive",
                                {"x": (2, 2, 9, 9), "pool": (3, 3), "stride": 1, "seed": 3}, namespace)
    assert not passed
    # Without overlap, assigning is harmless: the check must not penalise it there.
    (passed, *_), *_ = run_case("max_pool_backward_naive",
                                {"x": (2, 2, 8, 8), "pool": (2, 2), "stride": 2, "seed": 3}, namespace)
    assert passed


def test_sum_instead_of_mean_is_reported_as_a_scale_factor():
    namespace = dict(right_namespace(), avg_pool_forward_naive=lambda x, p: loop_pool_forward(x, p, np.sum))
    (passed, _, hints, _), *_ = run_case("avg_pool_forward_naive",
                                         {"x": (2, 3, 4, 4), "pool": (2, 2), "stride": 2}, namespace)
    assert not passed
    assert hints == [pool_mistakes.SUM_NOT_MEAN]


def test_avg_backward_without_the_share_is_reported_as_a_scale_factor():
    def unshared(dout, cache):
        PH, PW, _ = _geometry(cache[1])
        return loop_avg_backward(dout, cache) * (PH * PW)

    namespace = dict(right_namespace(), avg_pool_backward_naive=unshared)
    (passed, _, hints, _), *_ = run_case("avg_pool_backward_naive",
                                         {"x": (1, 2, 7, 7), "pool": (3, 3), "stride": 2, "seed": 1}, namespace)
    assert not passed
    assert hints == [pool_mistakes.NO_SHARE]


def test_ignoring_the_stride_is_a_shape_error_with_the_size_hint():
    def stride_one(x, pool_param):
        return loop_pool_forward(x, dict(pool_param, stride=1), np.max)

    namespace = dict(right_namespace(), max_pool_forward_naive=stride_one)
    (passed, lines, hints, _), *_ = run_case("max_pool_forward_naive",
                                             {"x": (2, 3, 8, 8), "pool": (2, 2), "stride": 2}, namespace)
    assert not passed
    assert "expected shape (2, 3, 4, 4), found (2, 3, 7, 7)" in lines[0]
    assert hints == [pool_mistakes.STRIDE_IGNORED]


def test_channels_mixed_by_im2col_are_caught():
    from cs231n_lib import im2col

    def mixing_fast(x, pool_param):  # im2col on x itself: windows span all channels
        PH, PW, S = _geometry(pool_param)
        N, C, H, W = x.shape
        Hout, Wout = (H - PH) // S + 1, (W - PW) // S + 1
        pooled = im2col(x, PH, PW, S, 0).max(axis=0).reshape(N, Hout, Wout)
        return np.repeat(pooled[:, None], C, axis=1), None

    namespace = dict(right_namespace(), max_pool_forward_fast=mixing_fast)
    (passed, *_), *_ = run_case("max_pool_forward_fast",
                                {"x": (2, 3, 9, 9), "pool": (3, 3), "stride": 2, "seed": 1}, namespace)
    assert not passed


def test_forward_must_return_out_and_cache():
    namespace = dict(right_namespace(), max_pool_forward_fast=lambda x, p: loop_pool_forward(x, p, np.max)[0])
    kind = get_check("max_pool_forward_fast")
    inputs = kind.make_inputs({"x": (2, 2, 4, 4), "pool": (2, 2), "stride": 2})
    with pytest.raises(TypeError, match=r"tuple \(out, cache\)"):
        kind.call(namespace, inputs)


def test_visible_check_reports_not_implemented_and_a_pass(capsys):
    def not_yet(x, pool_param):
        raise NotImplementedError()

    cases = [{"x": (2, 2, 4, 4), "pool": (2, 2), "stride": 2}]
    with pytest.raises(NotImplementedError, match="avg_pool_forward_naive is not implemented yet"):
        check("avg_pool_forward_naive", cases, namespace={"avg_pool_forward_naive": not_yet})
    assert "NOT IMPLEMENTED" in capsys.readouterr().out
    assert check("avg_pool_forward_naive", cases, namespace=right_namespace()) is None
    assert "All 1 visible cases of avg_pool_forward_naive passed" in capsys.readouterr().out


@pytest.mark.parametrize("dx", [None, "text", object(), np.zeros((2, 2)), [[1, 2], [3]]])
def test_hints_never_raise_on_strange_results(dx):
    kind = get_check("max_pool_backward_naive")
    case = {"x": (2, 2, 7, 7), "pool": (3, 3), "stride": 2, "seed": 4, "ties": True}
    assert diagnose(kind, case, kind.reference(kind.make_inputs(case)), {"dx": dx}) == []


def stepping_by_one(kind):
    """A pooling pass whose windows move by 1 on both axes, with the right output size
    (``window = x[n, c, i:i + PH, j:j + PW]``): the most common stride mistake."""
    def forward(x, pool_param, reduce):
        PH, PW, S = _geometry(pool_param)
        N, C, H, W = x.shape
        out = np.zeros((N, C, (H - PH) // S + 1, (W - PW) // S + 1), dtype=x.dtype)
        for n, c, i, j in np.ndindex(*out.shape):
            out[n, c, i, j] = reduce(x[n, c, i:i + PH, j:j + PW])
        return out, (x, pool_param)

    def max_backward(dout, cache):
        x, pool_param = cache
        PH, PW, _ = _geometry(pool_param)
        dx = np.zeros_like(x)
        for n, c, i, j in np.ndindex(*dout.shape):
            p, q = divmod(int(np.argmax(x[n, c, i:i + PH, j:j + PW])), PW)
            dx[n, c, i + p, j + q] += dout[n, c, i, j]
        return dx

    def avg_backward(dout, cache):
        x, pool_param = cache
        PH, PW, _ = _geometry(pool_param)
        dx = np.zeros_like(x)
        for n, c, i, j in np.ndindex(*dout.shape):
            dx[n, c, i:i + PH, j:j + PW] += dout[n, c, i, j] / (PH * PW)
        return dx

    return {"max_pool_forward_naive": lambda x, p: forward(x, p, np.max),
            "avg_pool_forward_naive": lambda x, p: forward(x, p, np.mean),
            "max_pool_backward_naive": max_backward, "avg_pool_backward_naive": avg_backward}[kind]


@pytest.mark.parametrize("name", ["max_pool_forward_naive", "avg_pool_forward_naive", "max_pool_backward_naive",
                                  "avg_pool_backward_naive"])
def test_the_stride_ignored_on_both_axes_with_the_right_size_is_named(name):
    """It had no hint (only one axis, or the stride left out of the size too, had one)."""
    namespace = dict(right_namespace(), **{name: stepping_by_one(name)})
    for case in ({"x": (2, 3, 4, 4), "pool": (2, 2), "stride": 2, "seed": 0},
                 {"x": (1, 2, 7, 7), "pool": (3, 3), "stride": 2, "seed": 1}):
        (passed, _, hints, _), kind, inputs, found = run_case(name, case, namespace)
        assert not passed and hints == [pool_mistakes.STRIDE_BOTH], case
        assert judge(kind, case, kind.reference(inputs), found, hidden=True)[2] == [pool_mistakes.STRIDE_BOTH]
