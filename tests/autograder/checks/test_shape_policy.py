"""The shape policy: a per-feature vector kept with keepdims passes, with a note, when its values
are right; a check can be made strict; other shapes stay wrong."""

import pytest

from autograder.checks import get_check, judge
from cs231n_checks.compare import SHAPE_ACCEPTED, singleton_reshape


def _case_outputs(name, case):
    kind = get_check(name)
    inputs = kind.make_inputs(case)
    return kind, inputs, kind.reference(inputs)


def test_keepdims_running_averages_pass_with_a_note():
    kind, _, expected = _case_outputs("batchnorm_forward", {"x": (8, 5), "mode": "train", "seed": 0})
    found = dict(expected, running_mean=expected["running_mean"][None, :], running_var=expected["running_var"][None, :])
    passed, lines, hints, _ = judge(kind, {"x": (8, 5)}, expected, found)
    assert passed and hints == []
    assert any(line.startswith("running_mean:") and "returned shape (1, 5) for (5,): accepted" in line for line in lines)
    # a hidden case says it in fixed words, nothing of the student's shape
    passed, lines, _, _ = judge(kind, {"x": (8, 5)}, expected, found, hidden=True)
    assert passed and f"running_mean: within tolerance; note: {SHAPE_ACCEPTED}" in lines


def test_wrong_values_in_the_accepted_shape_still_fail():
    kind, _, expected = _case_outputs("batchnorm_backward", {"x": (8, 5), "seed": 0})
    found = dict(expected, dgamma=2 * expected["dgamma"][None, :])
    passed, lines, _, _ = judge(kind, {"x": (8, 5)}, expected, found)
    assert not passed and any(line.startswith("dgamma: relative error") and "accepted" in line for line in lines)


def test_groupnorm_parameters_as_plain_vectors_pass():
    kind, _, expected = _case_outputs("spatial_groupnorm_backward", {"x": (2, 6, 3, 3), "G": 3})
    assert expected["dgamma"].shape == (1, 6, 1, 1)
    found = dict(expected, dgamma=expected["dgamma"].ravel(), dbeta=expected["dbeta"].ravel())
    assert judge(kind, {"x": (2, 6, 3, 3), "G": 3}, expected, found)[0]


def test_a_strict_check_refuses_the_other_shape():
    kind, _, expected = _case_outputs("batchnorm_backward", {"x": (8, 5), "seed": 0})
    found = dict(expected, dbeta=expected["dbeta"][None, :])
    strict = type(kind)()
    strict.strict_shape = True
    passed, lines, _, _ = judge(strict, {"x": (8, 5)}, expected, found)
    assert not passed and "dbeta: expected shape (5,), found (1, 5)" in lines


def test_only_per_feature_outputs_get_the_policy():
    kind, _, expected = _case_outputs("layernorm_forward", {"x": (1, 9), "seed": 11})
    passed, lines, _, _ = judge(kind, {"x": (1, 9)}, expected, {"out": expected["out"].ravel()})
    assert not passed and lines == ["out: expected shape (1, 9), found (9,)"]


@pytest.mark.parametrize("expected, found, accepted", [
    ((5,), (1, 5), True), ((5,), (5, 1), True), ((3,), (1, 3, 1, 1), True), ((1, 3, 1, 1), (3,), True),
    ((5,), (5,), False), ((2, 5), (1, 2, 5), False), ((6,), (2, 3), False), ((5,), (1, 4), False),
])
def test_which_shapes_the_policy_accepts(expected, found, accepted):
    assert singleton_reshape(expected, found) is accepted
