"""The batchnorm notebook's checks: right answers pass, the usual mistakes fail with a useful hint.

The "student" functions are written here from the formulas (plain NumPy, independent of
cs231n_lib), plus deliberately wrong variants of them.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autograder.checks import batchnorm as bn_mistakes
from autograder.checks import check, get_check, judge
from cs231n_checks import compare
from cs231n_checks.base import diagnose
from autograder.checks.batchnorm import (CONSTANT_STATISTICS, SWAPPED_MOMENTUM, TEST_UPDATES_RUNNING,
                                         TEST_WITH_BATCH_STATS, UNBIASED_VARIANCE)


# --- a student's solution, from the formulas ------------------------------------------------

def bn_forward(x, gamma, beta, bn_param, ddof=0, swapped=False, test_uses_batch=False, update_in_test=False):
    mode, eps, m = bn_param["mode"], bn_param.get("eps", 1e-5), bn_param.get("momentum", 0.9)
    D = x.shape[1]
    running_mean = bn_param.get("running_mean", np.zeros(D, x.dtype))
    running_var = bn_param.get("running_var", np.ones(D, x.dtype))
    mean, var = x.mean(axis=0), x.var(axis=0, ddof=ddof)
    if mode == "train" or test_uses_batch:
        x_hat = (x - mean) / np.sqrt(var + eps)
    else:
        x_hat = (x - running_mean) / np.sqrt(running_var + eps)
    if mode == "train" or update_in_test:
        old, new = (1 - m, m) if swapped else (m, 1 - m)
        bn_param["running_mean"] = old * running_mean + new * mean
        bn_param["running_var"] = old * running_var + new * var
    return gamma * x_hat + beta, (x_hat, 1 / np.sqrt(var + eps), gamma)


def bn_backward(dout, cache):
    x_hat, inv_std, gamma = cache
    N = dout.shape[0]
    g = dout * gamma
    dx = inv_std / N * (N * g - g.sum(axis=0) - x_hat * (g * x_hat).sum(axis=0))
    return dx, (dout * x_hat).sum(axis=0), dout.sum(axis=0)


def bn_backward_constant_stats(dout, cache):
    x_hat, inv_std, gamma = cache
    return dout * gamma * inv_std, (dout * x_hat).sum(axis=0), dout.sum(axis=0)


def spatial_forward(x, gamma, beta, bn_param, **mistakes):
    N, C, H, W = x.shape
    out, cache = bn_forward(x.transpose(0, 2, 3, 1).reshape(-1, C), gamma, beta, bn_param, **mistakes)
    return out.reshape(N, H, W, C).transpose(0, 3, 1, 2), cache


def spatial_backward(dout, cache):
    N, C, H, W = dout.shape
    dx, dgamma, dbeta = bn_backward(dout.transpose(0, 2, 3, 1).reshape(-1, C), cache)
    return dx.reshape(N, H, W, C).transpose(0, 3, 1, 2), dgamma, dbeta


def ln_forward(x, gamma, beta, ln_param):
    out_t, (x_hat_t, inv_std, _) = bn_forward(x.T, np.ones(x.shape[0]), np.zeros(x.shape[0]),
                                              {"mode": "train", "eps": ln_param.get("eps", 1e-5)})
    return gamma * out_t.T + beta, (x_hat_t.T, inv_std, gamma)


def ln_backward(dout, cache):
    x_hat, inv_std, gamma = cache
    dx_t, _, _ = bn_backward((dout * gamma).T, (x_hat.T, inv_std, np.ones(dout.shape[0])))
    return dx_t.T, (dout * x_hat).sum(axis=0), dout.sum(axis=0)


def gn_forward(x, gamma, beta, G, gn_param):
    N, C, H, W = x.shape
    groups = x.reshape(N * G, -1)
    out_t, (x_hat_t, inv_std, _) = bn_forward(groups.T, np.ones(N * G), np.zeros(N * G),
                                              {"mode": "train", "eps": gn_param.get("eps", 1e-5)})
    x_hat = x_hat_t.T.reshape(N, C, H, W)
    return gamma * x_hat + beta, (x_hat, inv_std, gamma, G)


def gn_backward(dout, cache):
    x_hat, inv_std, gamma, G = cache
    N = dout.shape[0]
    g = (dout * gamma).reshape(N * G, -1)
    dx_t, _, _ = bn_backward(g.T, (x_hat.reshape(N * G, -1).T, inv_std, np.ones(N * G)))
    return (dx_t.T.reshape(dout.shape), (dout * x_hat).sum(axis=(0, 2, 3), keepdims=True),
            dout.sum(axis=(0, 2, 3), keepdims=True))


def right_namespace():
    return {
        "batchnorm_forward": bn_forward, "batchnorm_backward": bn_backward,
        "batchnorm_backward_alt": bn_backward,
        "spatial_batchnorm_forward": spatial_forward, "spatial_batchnorm_backward": spatial_backward,
        "layernorm_forward": ln_forward, "layernorm_backward": ln_backward,
        "spatial_groupnorm_forward": gn_forward, "spatial_groupnorm_backward": gn_backward,
    }


def run_case(name, case, namespace):
    kind = get_check(name)
    inputs = kind.make_inputs(case)
    found = kind.call(namespace, {k: np.array(v, copy=True) for k, v in inputs.items()})
    expected = kind.reference(inputs)
    passed, lines, hints, _ = judge(kind, case, expected, found)
    # the mistake-specific hints are what judge adds to the comparison's hints (so students see them)
    generic = judge(type("Plain", (type(kind),), {"extra_hints": lambda *a: [], "mistakes": lambda *a: []})(), case, expected, found)[2]
    extra = [h for h in hints if h not in generic]
    return passed, lines, hints, extra


CASES = {
    "batchnorm_forward": [{"x": (8, 5)}, {"x": (20, 3), "momentum": 0.7, "eps": 1e-3, "seed": 1},
                          {"x": (6, 4), "mode": "test", "seed": 2}, {"x": (10, 6), "seed": 3, "dtype": "float32"},
                          {"x": (33, 4), "momentum": 0.0, "seed": 4}],
    "batchnorm_backward": [{"x": (8, 5)}, {"x": (3, 7), "seed": 1}, {"x": (10, 6), "dtype": "float32"}],
    "batchnorm_backward_alt": [{"x": (8, 5)}, {"x": (5, 1), "eps": 1e-2}, {"x": (10, 6), "dtype": "float32"}],
    "spatial_batchnorm_forward": [{"x": (2, 3, 4, 5)}, {"x": (3, 2, 3, 3), "mode": "test"},
                                  {"x": (4, 3, 2, 2), "momentum": 0.8, "dtype": "float32"}],
    "spatial_batchnorm_backward": [{"x": (2, 3, 4, 5)}, {"x": (4, 3, 2, 2), "dtype": "float32"}],
    "layernorm_forward": [{"x": (4, 6)}, {"x": (3, 5), "eps": 1e-3, "dtype": "float32"}],
    "layernorm_backward": [{"x": (4, 6)}, {"x": (3, 5), "eps": 1e-3, "dtype": "float32"}],
    "spatial_groupnorm_forward": [{"x": (2, 6, 3, 3), "G": 3}, {"x": (2, 4, 3, 3), "G": 1},
                                  {"x": (3, 4, 2, 5), "G": 2, "dtype": "float32"}],
    "spatial_groupnorm_backward": [{"x": (2, 6, 3, 3), "G": 3}, {"x": (1, 6, 4, 2), "G": 6},
                                   {"x": (3, 4, 2, 5), "G": 2, "dtype": "float32"}],
}


@pytest.mark.parametrize("name,case", [(n, c) for n, cases in CASES.items() for c in cases],
                         ids=lambda v: str(v) if isinstance(v, str) else "-".join(map(str, v["x"])))
def test_formula_solution_passes(name, case):
    passed, lines, hints, extra = run_case(name, case, right_namespace())
    assert passed, lines
    assert hints == [] and extra == []


@settings(max_examples=15, deadline=None)
@given(N=st.integers(3, 12), D=st.integers(1, 6), momentum=st.sampled_from([0.0, 0.5, 0.9, 0.99]),
       mode=st.sampled_from(["train", "test"]), seed=st.integers(0, 999),
       dtype=st.sampled_from(["float64", "float32"]))
def test_formula_solution_passes_any_batch(N, D, momentum, mode, seed, dtype):
    case = {"x": (N, D), "mode": mode, "momentum": momentum, "seed": seed, "dtype": dtype}
    for name in ("batchnorm_forward", "batchnorm_backward"):
        passed, lines, *_ = run_case(name, case, right_namespace())
        assert passed, (name, lines)


def test_forward_returns_the_running_averages_and_they_are_random():
    kind = get_check("batchnorm_forward")
    inputs = kind.make_inputs({"x": (8, 5), "seed": 3})
    assert set(kind.reference(inputs)) == {"out", "running_mean", "running_var"}
    assert not np.allclose(inputs["running_mean"], 0) and not np.allclose(inputs["running_var"], 1)
    assert (inputs["running_var"] > 0).all()
    # features have different scales and offsets, so a wrong normalisation axis shows
    assert np.ptp(inputs["x"].mean(axis=0)) > 0.5


def test_call_builds_bn_param_fresh_for_every_call():
    kind = get_check("batchnorm_forward")
    inputs = kind.make_inputs({"x": (8, 5), "seed": 3})
    seen = []

    def recording(x, gamma, beta, bn_param):
        seen.append(dict(bn_param))
        return bn_forward(x, gamma, beta, bn_param)

    first = kind.call({"batchnorm_forward": recording}, inputs)
    second = kind.call({"batchnorm_forward": recording}, inputs)
    np.testing.assert_array_equal(first["running_mean"], second["running_mean"])
    assert seen[0]["mode"] == "train" and seen[0]["momentum"] == 0.9 and seen[0]["eps"] == 1e-5
    assert seen[0]["running_mean"] is not inputs["running_mean"]


def test_swapped_momentum_fails_with_its_hint():
    namespace = dict(right_namespace(), batchnorm_forward=lambda *a: bn_forward(*a, swapped=True))
    passed, lines, _, extra = run_case("batchnorm_forward", {"x": (8, 5), "momentum": 0.9}, namespace)
    assert not passed
    assert lines[0].startswith("out: relative error")  # the output itself is right
    assert "running_mean: relative error" in lines[1] and "largest difference" in lines[1]
    assert extra == [SWAPPED_MOMENTUM]


def test_swapped_momentum_in_spatial_batchnorm_fails_with_its_hint():
    namespace = dict(right_namespace(), spatial_batchnorm_forward=lambda *a: spatial_forward(*a, swapped=True))
    passed, _, _, extra = run_case("spatial_batchnorm_forward", {"x": (2, 3, 4, 5), "momentum": 0.8}, namespace)
    assert not passed
    assert extra == [SWAPPED_MOMENTUM]


def test_unbiased_variance_fails_with_its_hint():
    namespace = dict(right_namespace(), batchnorm_forward=lambda *a: bn_forward(*a, ddof=1))
    passed, _, _, extra = run_case("batchnorm_forward", {"x": (6, 4), "seed": 5}, namespace)
    assert not passed
    assert extra == [UNBIASED_VARIANCE]


def test_batch_statistics_in_test_mode_fail_with_their_hint():
    namespace = dict(right_namespace(), batchnorm_forward=lambda *a: bn_forward(*a, test_uses_batch=True))
    passed, _, _, extra = run_case("batchnorm_forward", {"x": (6, 4), "mode": "test"}, namespace)
    assert not passed
    assert extra == [TEST_WITH_BATCH_STATS]


def test_updating_running_averages_in_test_mode_fails_with_its_hint():
    namespace = dict(right_namespace(), batchnorm_forward=lambda *a: bn_forward(*a, update_in_test=True))
    passed, lines, _, extra = run_case("batchnorm_forward", {"x": (6, 4), "mode": "test"}, namespace)
    assert not passed
    assert "out: relative error" in lines[0] and "largest difference" not in lines[0]
    assert extra == [TEST_UPDATES_RUNNING]


def test_normalising_over_the_wrong_axis_fails():
    def wrong_axis(x, gamma, beta, bn_param):
        out, _ = ln_forward(x, gamma, beta, bn_param)
        bn_forward(x, gamma, beta, bn_param)  # running averages right, output wrong
        return out, None

    passed, lines, _, _ = run_case("batchnorm_forward", {"x": (8, 5)}, dict(right_namespace(), batchnorm_forward=wrong_axis))
    assert not passed
    assert "largest difference" in lines[0]


@pytest.mark.parametrize("name", ["batchnorm_backward", "batchnorm_backward_alt"])
def test_gradient_through_constant_statistics_fails_with_its_hint(name):
    namespace = dict(right_namespace(), **{name: bn_backward_constant_stats})
    passed, lines, _, extra = run_case(name, {"x": (8, 5), "seed": 2}, namespace)
    assert not passed
    assert lines[0].startswith("dx:") and "largest difference" in lines[0]
    assert lines[1].startswith("dgamma: relative error") and "largest difference" not in lines[1]
    assert extra == [CONSTANT_STATISTICS]


def bn_backward_graph(dout, cache, mean_divided=True):
    """batchnorm_backward through the computation graph, step by step (as the notebook does)."""
    x_hat, inv_std, gamma = cache
    N = dout.shape[0]
    dx_hat = dout * gamma
    x_centered = x_hat / inv_std
    dvar = (dx_hat * x_centered).sum(axis=0) * -0.5 * inv_std ** 3
    dx_centered = dx_hat * inv_std + 2.0 / N * x_centered * dvar
    dmean = -dx_centered.sum(axis=0)
    dx = dx_centered + (dmean / N if mean_divided else dmean)
    return dx, (dout * x_hat).sum(axis=0), dout.sum(axis=0)


def ln_backward_graph(dout, cache, mean_divided=True):
    x_hat, inv_std, gamma = cache
    inv_std = np.reshape(inv_std, (-1, 1))  # one per sample (ln_forward's cache holds it flat)
    D = dout.shape[1]
    dx_hat = dout * gamma
    x_centered = x_hat / inv_std
    dvar = (dx_hat * x_centered).sum(axis=1, keepdims=True) * -0.5 * inv_std ** 3
    dx_centered = dx_hat * inv_std + 2.0 / D * x_centered * dvar
    dmean = -dx_centered.sum(axis=1, keepdims=True)
    dx = dx_centered + (dmean / D if mean_divided else dmean)
    return dx, (dout * x_hat).sum(axis=0), dout.sum(axis=0)


@pytest.mark.parametrize("name, case, backward, hint", [
    ("batchnorm_backward", {"x": (8, 5)}, bn_backward_graph, compare.DX_CHANNEL_OFFSET),
    ("layernorm_backward", {"x": (4, 6)}, ln_backward_graph, compare.DX_SAMPLE_OFFSET),
])
def test_the_mean_path_not_divided_by_its_count_points_at_the_mean_not_a_bias(name, case, backward, hint):
    """dmean added without the 1/N: dx is off by a constant per feature (per sample in layer norm).
    dx has no bias; the hint once said "look at the bias"."""
    assert run_case(name, case, dict(right_namespace(), **{name: backward}))[0]
    wrong = dict(right_namespace(), **{name: lambda dout, cache: backward(dout, cache, mean_divided=False)})
    passed, lines, hints, _ = run_case(name, case, wrong)
    assert not passed and lines[0].startswith("dx: relative error") and "largest difference" not in lines[1]
    assert hints == [hint]
    assert "bias" not in hint


def test_dgamma_summed_over_the_wrong_axis_is_a_shape_error():
    def wrong_sum(dout, cache):
        dx, _, dbeta = bn_backward(dout, cache)
        return dx, (dout * cache[0]).sum(axis=1), dbeta

    passed, lines, _, _ = run_case("batchnorm_backward", {"x": (8, 5)}, dict(right_namespace(), batchnorm_backward=wrong_sum))
    assert not passed
    assert "dgamma: expected shape (5,), found (8,)" in lines


@pytest.mark.parametrize("name, case, wrong_dbeta", [
    ("batchnorm_backward", {"x": (8, 5)}, lambda dout: dout.sum()),
    ("spatial_batchnorm_backward", {"x": (2, 3, 4, 5)}, lambda dout: dout.sum(axis=(0, 2))),
    ("spatial_batchnorm_backward", {"x": (2, 3, 4, 5)}, lambda dout: dout.sum(axis=(0, 2, 3, 1))),
])
def test_dbeta_summed_over_too_few_or_all_axes_points_at_the_sum(name, case, wrong_dbeta):
    right = right_namespace()[name]

    def backward(dout, cache):
        dx, dgamma, _ = right(dout, cache)
        return dx, dgamma, wrong_dbeta(dout)

    passed, lines, hints, _ = run_case(name, case, dict(right_namespace(), **{name: backward}))
    assert not passed and lines[2].startswith("dbeta: expected shape")
    assert hints == [compare.PER_FEATURE_GRADIENT]


def test_spatial_batchnorm_without_the_transpose_fails():
    def no_transpose(x, gamma, beta, bn_param):  # reshape without moving the channels last
        N, C, H, W = x.shape
        out, cache = bn_forward(x.reshape(-1, C), gamma, beta, bn_param)
        return out.reshape(N, C, H, W), cache

    passed, *_ = run_case("spatial_batchnorm_forward", {"x": (2, 3, 4, 5)},
                          dict(right_namespace(), spatial_batchnorm_forward=no_transpose))
    assert not passed


def test_spatial_batchnorm_without_the_transpose_in_test_mode_says_nothing_of_a_padding():
    """Channels mixed by a reshape, in test mode: on (3, 2, 3, 3) only the entries with h + w odd
    use another channel's running averages, the border's middle ones. The hint once said "only
    the border rows and columns are wrong: look at the padding"; batch normalization has none."""
    def no_transpose(x, gamma, beta, bn_param):
        N, C, H, W = x.shape
        out, cache = bn_forward(x.reshape(-1, C), gamma, beta, bn_param)
        return out.reshape(N, C, H, W), cache

    passed, lines, hints, _ = run_case("spatial_batchnorm_forward", {"x": (3, 2, 3, 3), "mode": "test", "seed": 1},
                                       dict(right_namespace(), spatial_batchnorm_forward=no_transpose))
    assert not passed and lines[0].startswith("out: relative error")
    # the missing transpose is named in test mode too (the test-mode mistakes stopped before it)
    assert hints == [bn_mistakes.NO_TRANSPOSE]
    assert not get_check("spatial_batchnorm_forward").padded and not get_check("layernorm_backward").windowed


def test_groupnorm_with_interleaved_groups_fails():
    def interleaved(x, gamma, beta, G, gn_param):  # channel c in group c % G instead of c // (C/G)
        N, C, H, W = x.shape
        order = np.argsort(np.arange(C) % G, kind="stable")
        out, cache = gn_forward(x[:, order], gamma[:, order], beta[:, order], G, gn_param)
        return out[:, np.argsort(order)], cache

    passed, *_ = run_case("spatial_groupnorm_forward", {"x": (2, 6, 3, 3), "G": 3},
                          dict(right_namespace(), spatial_groupnorm_forward=interleaved))
    assert not passed


def test_backward_checks_use_the_students_forward_in_train_mode():
    modes = []

    def recording(x, gamma, beta, bn_param):
        modes.append(bn_param["mode"])
        return bn_forward(x, gamma, beta, bn_param)

    kind = get_check("batchnorm_backward")
    case = {"x": (8, 5), "mode": "test"}  # the case's mode is ignored by backward checks
    inputs = kind.make_inputs(case)
    kind.call(dict(right_namespace(), batchnorm_forward=recording), inputs)
    assert modes == ["train"]
    assert "mode=train" in kind.describe(case)
    assert kind.names_required() == ("batchnorm_forward", "batchnorm_backward")


def test_descriptions_hide_the_seed_and_inputs_are_deterministic():
    for name in CASES:
        kind = get_check(name)
        case = dict(CASES[name][0], seed=98765)
        assert "98765" not in kind.describe(case)
        first, second = kind.make_inputs(case), kind.make_inputs(case)
        for key in first:
            np.testing.assert_array_equal(first[key], second[key])


def bn_forward_in_place(x, gamma, beta, bn_param):
    """Right outputs, but x -= mean changes the caller's x."""
    mean = x.mean(axis=0)
    x -= mean
    return bn_forward(x + mean, gamma, beta, bn_param)


def test_a_forward_that_changes_its_input_passes_with_a_note_and_is_not_trusted_by_the_gradient_cell(capsys):
    """x -= mean: the outputs are right (the grade stands), but the notebook's numerical gradient
    perturbs x and calls the forward again, so it comes out wrong, and the gradient cell used to say
    "batchnorm_forward passes its check, so look at batchnorm_backward"."""
    from cs231n_checks import visible_check_passes

    namespace = dict(right_namespace(), batchnorm_forward=bn_forward_in_place)
    check("batchnorm_forward", [{"x": (8, 5)}, {"x": (6, 4), "mode": "test", "seed": 2}], namespace=namespace)
    out = capsys.readouterr().out
    assert out.count("PASSED") == 2 and "All 2 visible cases of batchnorm_forward passed" in out
    assert out.count("note: your code changed its input x in place") == 2
    assert visible_check_passes("batchnorm_forward", namespace) is False
    check("batchnorm_forward", [{"x": (8, 5)}], namespace=right_namespace())
    assert "note:" not in capsys.readouterr().out
    assert visible_check_passes("batchnorm_forward", right_namespace()) is True


def test_visible_check_reports_not_implemented(capsys):
    def not_yet(*args):
        raise NotImplementedError()

    with pytest.raises(NotImplementedError):
        check("batchnorm_forward", [{"x": (4, 3)}], namespace={"batchnorm_forward": not_yet})
    assert "NOT IMPLEMENTED" in capsys.readouterr().out


@pytest.mark.parametrize("value", [None, "text", object(), np.zeros((2, 2)), [[1, 2], [3]]])
@pytest.mark.parametrize("name,case", [("batchnorm_forward", {"x": (6, 4)}), ("batchnorm_forward", {"x": (6, 4), "mode": "test"}),
                                       ("batchnorm_backward", {"x": (6, 4)})])
def test_hints_never_raise_on_strange_results(name, case, value):
    kind = get_check(name)
    expected = kind.reference(kind.make_inputs(case))
    found = {key: value for key in expected}
    assert diagnose(kind, case, expected, found) == []


# --- the eps and the running averages: known mistakes named by the catalogue ---------------------


def skeleton_forward(update, eps_of=lambda bn_param: bn_param.get("eps", 1e-5), root=np.sqrt):
    """batchnorm_forward as the notebook's skeleton frames it: locals read from bn_param before the
    student's code, ``bn_param["running_mean"] = running_mean`` (and var) after it. ``update``
    is the student's code for the running averages (it returns the new locals, and may write
    into bn_param); ``eps_of`` gives the eps used, ``root`` the square root."""
    def batchnorm_forward(x, gamma, beta, bn_param):
        mode, momentum = bn_param["mode"], bn_param.get("momentum", 0.9)
        D = x.shape[1]
        running_mean = bn_param.get("running_mean", np.zeros(D, dtype=x.dtype))
        running_var = bn_param.get("running_var", np.ones(D, dtype=x.dtype))
        eps = eps_of(bn_param)
        if mode == "train":
            mean, var = x.mean(axis=0), x.var(axis=0)
            out = gamma * (x - mean) / root(var + eps) + beta
            running_mean, running_var = update(bn_param, momentum, running_mean, running_var, mean, var)
        else:
            out = gamma * (x - running_mean) / root(running_var + eps) + beta
        bn_param["running_mean"] = running_mean  # the skeleton's lines after the student's code
        bn_param["running_var"] = running_var
        return out, None

    return batchnorm_forward


def right_update(bn_param, m, running_mean, running_var, mean, var):
    return m * running_mean + (1 - m) * mean, m * running_var + (1 - m) * var


def into_bn_param(bn_param, m, running_mean, running_var, mean, var):
    """The update written into bn_param directly: the skeleton's lines overwrite it."""
    bn_param["running_mean"] = m * running_mean + (1 - m) * mean
    bn_param["running_var"] = m * running_var + (1 - m) * var
    return running_mean, running_var


def batch_statistics(bn_param, m, running_mean, running_var, mean, var):
    return mean, var


def test_running_averages_written_into_bn_param_are_told_to_set_the_local_variables():
    """The skeleton stores the locals into bn_param after the student's code: the old hint said
    "stored back in bn_param", which is what this student did."""
    assert run_case("batchnorm_forward", {"x": (8, 5)}, dict(right_namespace(),
                    batchnorm_forward=skeleton_forward(right_update)))[0]
    passed, _, hints, _ = run_case("batchnorm_forward", {"x": (8, 5)},
                                   dict(right_namespace(), batchnorm_forward=skeleton_forward(into_bn_param)))
    assert not passed and hints == [bn_mistakes.NOT_UPDATED]
    assert "set the local variables" in hints[0] and "stored back in bn_param" not in hints[0]


def test_running_averages_replaced_by_the_batch_statistics_are_named():
    namespace = dict(right_namespace(), batchnorm_forward=skeleton_forward(batch_statistics),
                     spatial_batchnorm_forward=lambda x, gamma, beta, bn_param: spatial_with(
                         skeleton_forward(batch_statistics), x, gamma, beta, bn_param))
    for name, case in (("batchnorm_forward", {"x": (8, 5)}), ("spatial_batchnorm_forward", {"x": (2, 3, 4, 5)})):
        passed, lines, hints, _ = run_case(name, case, namespace)
        assert not passed and lines[0].startswith("out: relative error") and hints == [bn_mistakes.RUNNING_IS_BATCH]
    # with momentum 0 the batch statistics are the right update
    assert run_case("batchnorm_forward", {"x": (8, 5), "momentum": 0.0}, namespace)[0]


def spatial_with(forward, x, gamma, beta, bn_param):
    N, C, H, W = x.shape
    out, cache = forward(x.transpose(0, 2, 3, 1).reshape(-1, C), gamma, beta, bn_param)
    return out.reshape(N, H, W, C).transpose(0, 3, 1, 2), cache


@pytest.mark.parametrize("mode", ["train", "test"])
def test_eps_missing_is_named_in_both_modes(mode):
    """np.sqrt(var) (or x.std()): eps left out had no hint."""
    no_eps = skeleton_forward(right_update, eps_of=lambda bn_param: 0.0)
    namespace = dict(right_namespace(), batchnorm_forward=no_eps,
                     spatial_batchnorm_forward=lambda *a: spatial_with(no_eps, *a))
    for name, case in (("batchnorm_forward", {"x": (8, 5), "mode": mode}),
                       ("spatial_batchnorm_forward", {"x": (3, 2, 3, 3), "mode": mode, "seed": 1})):
        passed, _, hints, _ = run_case(name, case, namespace)
        assert not passed and hints == [bn_mistakes.NO_EPS], (name, mode)
    # float32's tolerance does not see it: the case passes
    assert run_case("batchnorm_forward", {"x": (10, 6), "mode": mode, "dtype": "float32"}, namespace)[0]


def test_an_eps_of_ones_own_is_named_where_the_case_gives_another():
    own = skeleton_forward(right_update, eps_of=lambda bn_param: 1e-5)
    namespace = dict(right_namespace(), batchnorm_forward=own)
    assert run_case("batchnorm_forward", {"x": (8, 5)}, namespace)[0]  # the default: nothing to see
    passed, _, hints, _ = run_case("batchnorm_forward", {"x": (20, 3), "momentum": 0.7, "eps": 1e-3, "seed": 1},
                                   namespace)
    assert not passed and hints == [bn_mistakes.EPS_NOT_GIVEN]


def per_sample_forward(eps_of):
    """layer norm and group norm with ``eps_of(param)`` for their eps."""
    def layernorm_forward(x, gamma, beta, ln_param):
        eps = eps_of(ln_param)
        x_hat = (x - x.mean(axis=1, keepdims=True)) / np.sqrt(x.var(axis=1, keepdims=True) + eps)
        return gamma * x_hat + beta, None

    def spatial_groupnorm_forward(x, gamma, beta, G, gn_param):
        eps = eps_of(gn_param)
        groups = x.reshape(x.shape[0], G, -1)
        x_hat = (groups - groups.mean(axis=2, keepdims=True)) / np.sqrt(groups.var(axis=2, keepdims=True) + eps)
        return gamma * x_hat.reshape(x.shape) + beta, None

    return {"layernorm_forward": layernorm_forward, "spatial_groupnorm_forward": spatial_groupnorm_forward}


@pytest.mark.parametrize("name, case", [("layernorm_forward", {"x": (4, 6)}),
                                        ("spatial_groupnorm_forward", {"x": (2, 6, 3, 3), "G": 3})])
def test_layer_and_group_norm_without_eps_or_with_their_own_eps_are_named(name, case):
    namespace = dict(right_namespace(), **per_sample_forward(lambda param: param.get("eps", 1e-5)))
    assert run_case(name, case, namespace)[0] and run_case(name, dict(case, eps=1e-2), namespace)[0]
    namespace = dict(right_namespace(), **per_sample_forward(lambda param: 0.0))
    passed, _, hints, _ = run_case(name, case, namespace)
    assert not passed and hints == [bn_mistakes.NO_EPS]
    namespace = dict(right_namespace(), **per_sample_forward(lambda param: 1e-5))
    passed, _, hints, _ = run_case(name, dict(case, eps=1e-2), namespace)
    assert not passed and hints == [bn_mistakes.EPS_NOT_GIVEN]
