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
    assert any("output-size rule" in h for h in result.hints)


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
