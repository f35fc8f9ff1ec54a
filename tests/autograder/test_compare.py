"""The one array comparison: verdicts, coercion of hostile values, and the hints it derives."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from autograder.compare import coerce, compare_output, relative_error


def test_relative_error_is_max_difference_over_largest_magnitude():
    expected = np.array([1.0, -4.0, 2.0])
    found = np.array([1.0, -4.0, 2.5])
    assert relative_error(expected, found) == pytest.approx(0.5 / 4.0)
    assert relative_error(np.zeros(3), np.zeros(3)) == 0.0


@settings(max_examples=40, deadline=None)
@given(arrays(np.float64, st.integers(1, 30), elements=st.floats(-1e6, 1e6)))
def test_an_array_always_matches_itself_and_fails_against_its_negation(a):
    assert compare_output("out", a, a.copy(), 1e-12).passed
    if np.abs(a).max() > 0:
        result = compare_output("out", a, -a, 1e-8)
        assert not result.passed
        assert result.rel_error == pytest.approx(2 * np.abs(a).max() / np.abs(a).max())


def test_shape_mismatch_fails_before_values_and_names_both_shapes():
    result = compare_output("out", np.zeros((2, 3, 4, 4)), np.zeros((2, 3, 5, 5)), 1e-8)
    assert not result.passed
    assert "(2, 3, 4, 4)" in result.message and "(2, 3, 5, 5)" in result.message
    assert any("output size" in h for h in result.hints)


def test_nan_in_the_result_fails_with_its_index():
    found = np.ones((3, 3))
    found[1, 2] = np.nan
    result = compare_output("dx", np.ones((3, 3)), found, 1e-8)
    assert not result.passed and "(1, 2)" in result.message


class _LiesAboutEquality(np.ndarray):
    def __eq__(self, other):  # a hostile result that claims to equal anything
        return np.ones(np.shape(self), dtype=bool)

    def __array_function__(self, func, types, args, kwargs):
        return True


def test_a_subclass_that_lies_about_equality_gains_nothing():
    expected = np.arange(6.0).reshape(2, 3)
    liar = np.zeros((2, 3)).view(_LiesAboutEquality)
    array, problem = coerce(liar)
    assert problem is None and type(array) is np.ndarray
    assert not compare_output("out", expected, liar, 1e-8).passed


def test_objects_and_none_are_rejected_with_a_sentence():
    assert "None" in compare_output("out", np.ones(2), None, 1e-8).message
    assert not compare_output("out", np.ones(2), [object(), object()], 1e-8).passed


def test_float32_result_for_float64_inputs_is_noted_not_failed_unless_strict():
    expected = np.linspace(0, 1, 10)
    loose = compare_output("out", expected, expected.astype(np.float32), 1e-6)
    assert loose.passed and "float32" in loose.message
    assert not compare_output("out", expected, expected.astype(np.float32), 1e-6, strict_dtype=True).passed


def test_hint_for_a_scaled_result():
    expected = np.random.default_rng(0).standard_normal((4, 5))
    result = compare_output("dw", expected, 0.5 * expected, 1e-8)
    assert any("0.5 times" in h for h in result.hints)


def test_hint_for_a_flipped_sign():
    expected = np.random.default_rng(1).standard_normal((4, 5))
    assert compare_output("dx", expected, -expected, 1e-8).hints == ["the sign is flipped"]


def test_hint_for_a_wrong_border_points_at_the_padding():
    expected = np.random.default_rng(2).standard_normal((2, 3, 6, 6))
    found = expected.copy()
    found[..., 0, :] += 1.0
    found[..., :, -1] -= 1.0
    assert any("padding" in h for h in compare_output("out", expected, found, 1e-8).hints)


def test_hint_for_every_other_column_points_at_the_stride():
    expected = np.random.default_rng(3).standard_normal((2, 2, 6, 8))
    found = expected.copy()
    found[..., 2:4, 1::2] += 1.0
    assert any("stride" in h for h in compare_output("out", expected, found, 1e-8).hints)


def test_hint_for_a_per_channel_offset_points_at_the_bias():
    expected = np.random.default_rng(4).standard_normal((3, 4, 5, 5))
    found = expected + np.arange(4.0).reshape(1, 4, 1, 1)
    assert any("bias" in h for h in compare_output("out", expected, found, 1e-8).hints)


def test_all_zero_result_says_not_implemented_likely():
    expected = np.ones((2, 2))
    assert "zero" in compare_output("out", expected, np.zeros((2, 2)), 1e-8).hints[0]


def test_strings_compare_exactly():
    assert compare_output("raised", np.array("ValueError"), np.array("ValueError"), 0).passed
    assert not compare_output("raised", np.array("ValueError"), np.array(""), 0).passed


# ------------------------------------------------------------------------------------------
# Limited verdicts (hidden cases, and cases that run after one): fixed words only

import re  # noqa: E402

from autograder.checks import get_check, judge  # noqa: E402
from autograder.checks.pooling import TIES_TO_LAST, max_pool_backward_tie_rule  # noqa: E402
from autograder.compare import FIXED_HINTS  # noqa: E402

LIMITED_WORDS = {"exact match", "within tolerance", "as expected", "wrong values", "wrong value", "wrong shape",
                 "wrong dtype", "not finite", "not an array", "missing from the result"}


def _words(line, output="out"):
    """The verdict of a limited line, without what it may say of the expected value."""
    assert line.startswith(f"{output}: "), line
    return re.sub(r" \(.*\)$", "", line[len(output) + 2:])


@pytest.mark.parametrize("found, words", [
    (np.zeros((7, 3, 2, 5)), "wrong shape"),         # a shape that encodes the inputs
    (np.array("W=32, F=5, S=1, P=2"), "wrong value"),  # a string that spells them
    (np.full((2, 3), 32.0), "wrong values"),           # a constant that is one of them
    (np.array([[1.0, np.inf, 0.0], [0.0, 0.0, 0.0]]), "not finite"),
    (np.zeros((2, 3), dtype=np.float32), "wrong dtype"),
    ([object()], "not an array"),
    (None, "not an array"),
])
def test_limited_messages_carry_nothing_of_the_found_value(found, words):
    expected = np.arange(6.0).reshape(2, 3)
    for reveal in (False, True):
        result = compare_output("out", expected, found, 1e-8, strict_dtype=True, reveal_expected=reveal)
        assert not result.passed and _words(result.limited) == words
        for secret in ("32", "7, 3, 2, 5", "inf", "float32", "object", "None"):
            assert secret not in result.limited
        if not reveal:
            assert result.limited == f"out: {words}"


def test_limited_messages_of_a_visible_case_keep_the_trusted_facts():
    expected = np.arange(6.0).reshape(2, 3)
    assert compare_output("out", expected, np.zeros(4), 1e-8).limited == "out: wrong shape (expected (2, 3))"
    assert compare_output("raised", np.array("ValueError"), np.array("W32"), 0).limited == \
        "raised: wrong value (expected 'ValueError')"
    assert compare_output("raised", np.array("ValueError"), np.array("W32"), 0, reveal_expected=False).limited == \
        "raised: wrong value"
    assert compare_output("out", expected, expected + 1, 1e-8).limited == \
        "out: wrong values (relative error above the tolerance 1e-08)"
    assert compare_output("out", expected, expected, 1e-8).limited == "out: within tolerance"
    assert compare_output("n", np.arange(3), np.arange(3), 0).limited == "n: exact match"


def test_every_fixed_hint_the_comparison_gives_is_listed():
    rng = np.random.default_rng(5)
    expected = rng.standard_normal((2, 3, 6, 6))
    border = expected.copy()
    border[..., 0, :] += 1.0
    found_values = [np.zeros_like(expected), -expected, expected + 1.0,
                    expected + np.arange(3.0).reshape(1, 3, 1, 1), np.swapaxes(expected, -1, -2), border,
                    np.zeros((3, 2, 6, 6)), np.zeros((2, 3, 5, 5)), np.where(expected > 0, np.nan, expected)]
    seen = set()
    for found in found_values:
        seen.update(compare_output("out", expected, found, 1e-8).hints)
    assert seen and seen <= FIXED_HINTS


def test_judge_of_a_hidden_case_drops_hints_with_numbers_from_the_output():
    kind = get_check("conv_forward_naive")
    case = {"x": (3, 2, 7, 5), "w": (4, 2, 3, 3), "stride": 2, "pad": 1, "seed": 11}
    expected = kind.reference(kind.make_inputs(case))
    scaled = {"out": expected["out"] * 3275.0}  # 3275: the hidden x shape (3, 2, 7, 5)
    full = judge(kind, case, expected, scaled)
    assert any("3275 times" in h for h in full[2]) and "relative error" in full[1][0]
    for flags in ({"hidden": True}, {"limited": True}):
        passed, lines, hints, _ = judge(kind, case, expected, scaled, **flags)
        assert not passed and hints == [] and not any("3275" in line for line in lines)
    assert judge(kind, case, expected, scaled, hidden=True)[1] == ["out: wrong values"]
    # a fixed hint survives: the sign
    assert judge(kind, case, expected, {"out": -expected["out"]}, hidden=True)[2] == ["the sign is flipped"]
    assert judge(kind, case, expected, {}, hidden=True)[1] == ["out: missing from the result"]


def test_judge_of_a_hidden_case_keeps_a_checks_fixed_hints():
    kind = get_check("max_pool_backward_naive")
    case = {"x": (1, 3, 6, 6), "pool": (2, 2), "stride": 2, "seed": 8, "ties": True}
    inputs = kind.make_inputs(case)
    found = {"dx": max_pool_backward_tie_rule(inputs, "last")}
    passed, lines, hints, _ = judge(kind, case, kind.reference(inputs), found, hidden=True)
    assert not passed and lines == ["dx: wrong values"] and hints == [TIES_TO_LAST]


def test_judge_of_a_hidden_case_drops_hints_naming_the_cases_layers():
    kind = get_check("size_network")
    case = {"spec": ("INPUT 8x8x3", "CONV3-4", "FC-2")}
    expected = kind.reference(kind.make_inputs(case))
    found = dict(expected, height=expected["height"] + 1)
    assert any("INPUT 8x8x3" in h for h in judge(kind, case, expected, found)[2])
    passed, lines, hints, _ = judge(kind, case, expected, found, hidden=True)
    assert not passed and hints == [] and "height: wrong values" in lines
    assert not any("8x8" in line for line in lines)


def test_fixed_hints_of_the_checks_are_plain_text():
    from autograder.checks import CHECKS

    for kind in CHECKS.values():
        assert all(isinstance(h, str) and h for h in kind.fixed_hints), kind.name
