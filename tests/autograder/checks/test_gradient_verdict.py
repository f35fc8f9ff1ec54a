"""The gradient-check cells say which function is wrong: the forward pass (the numerical
gradient is computed from it) or the backward pass."""

import sys
from pathlib import Path

import numpy as np

from autograder.checks import batchnorm as bn
from autograder.checks import convolution as conv
from cs231n_checks import visible_check_passes
from cs231n_lib.gradient_check import report_gradient_errors

sys.path.insert(0, str(Path(__file__).resolve().parent))
import test_catalogue as planted  # noqa: E402


def _planted(check, hint):
    return next(p for p in planted.PLANTED if p.check == check and p.hint == hint)


def test_visible_check_passes_tells_a_right_forward_from_a_wrong_one():
    assert visible_check_passes("conv_forward_naive", planted.namespace("convolution")) is True
    wrong = _planted("conv_forward_naive", conv.NO_BIAS)
    assert visible_check_passes("conv_forward_naive", planted.namespace("convolution", wrong.sources())) is False
    stub = {"conv_forward_naive": lambda *a: (_ for _ in ()).throw(NotImplementedError())}
    assert visible_check_passes("conv_forward_naive", stub) is None
    wrong = _planted("batchnorm_forward", bn.EPS_OUTSIDE_SQRT)
    assert visible_check_passes("batchnorm_forward", planted.namespace("batchnorm", wrong.sources())) is False


def test_the_verdict_points_at_the_forward_pass_when_it_fails_its_check(capsys):
    errors = {"dx": 0.3, "dw": 1e-9}
    assert not report_gradient_errors(errors, 1e-6, look_at="conv_backward_naive", forward="conv_forward_naive",
                                      forward_ok=False)
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("MISMATCH: dx differs") and "fix conv_forward_naive first" in line
    assert "look at conv_backward_naive" not in line
    report_gradient_errors(errors, 1e-6, look_at="conv_backward_naive", forward="conv_forward_naive", forward_ok=True)
    assert capsys.readouterr().out.strip().endswith("conv_forward_naive passes its check, so look at conv_backward_naive")
    report_gradient_errors(errors, 1e-6, look_at="conv_backward_naive")
    assert capsys.readouterr().out.strip().endswith(": look at conv_backward_naive")


def test_the_notebooks_gradient_cells_ask_about_the_forward_pass():
    root = Path(__file__).resolve().parents[3]
    for assignment, forward in (("convolution", "conv_forward_naive"), ("batchnorm", "batchnorm_forward")):
        text = (root / "assignments" / assignment / f"{assignment}.ipynb").read_text()
        assert f'forward_ok=visible_check_passes(\\"{forward}\\")' in text, assignment
        assert f'forward_changes=inputs_changed_by(\\"{forward}\\")' in text, assignment


def test_the_kits_data_lists_a_checks_visible_cases(tmp_path):
    from autograder.checks import get_check
    from cs231n_checks import base

    case = {"x": (1, 2, 7, 7), "w": (2, 2, 3, 3), "stride": 2, "pad": 0, "seed": 1}
    kind = get_check("conv_forward_naive")
    inputs = kind.make_inputs(case)
    np.savez(tmp_path / "convolution.npz", **base.pack_case(base.case_key(kind.name, case), inputs,
                                                            kind.reference(inputs), [], kind.name, case))
    store = base._Store(tmp_path)
    assert store.cases_of("conv_forward_naive") == [case] and store.cases_of("im2col") == []
    assert base.case_key(kind.name, store.cases_of("conv_forward_naive")[0]) == base.case_key(kind.name, case)


def test_a_forward_that_changes_its_input_is_named_as_such_by_the_gradient_cell(capsys):
    """x -= mean in batchnorm_forward: its check says PASSED with a note ("your code changed its
    input x in place"), and the gradient cell said "the forward pass batchnorm_forward fails its
    own check", which contradicts it. It now names the reason, as the check's note does."""
    from cs231n_checks import inputs_changed_by
    from cs231n_lib.gradient_check import eval_numerical_gradient_array, rel_error

    source = planted.solution_cells("batchnorm")["batchnorm_forward"]
    assert "        x_centered = x - mean\n" in source
    in_place = planted.namespace("batchnorm", {"batchnorm_forward": source.replace(
        "        x_centered = x - mean\n", "        x -= mean\n        x_centered = x\n")})
    right = planted.namespace("batchnorm")
    assert inputs_changed_by("batchnorm_forward", in_place) == ["x"]
    assert inputs_changed_by("batchnorm_forward", right) == []
    assert visible_check_passes("batchnorm_forward", in_place) is False

    # the notebook's gradient cell, with its own data
    rng = np.random.default_rng(231)
    x = 5 * rng.standard_normal((4, 5)) + 12
    gamma, beta, dout = rng.standard_normal(5), rng.standard_normal(5), rng.standard_normal((4, 5))
    forward, backward = in_place["batchnorm_forward"], in_place["batchnorm_backward"]
    _, cache = forward(x, gamma, beta, {"mode": "train"})
    dx, _, _ = backward(dout, cache)
    dx_num = eval_numerical_gradient_array(lambda v: forward(v, gamma, beta, {"mode": "train"})[0], x, dout)
    capsys.readouterr()
    assert not report_gradient_errors({"dx": rel_error(dx, dx_num)}, 1e-7, look_at="batchnorm_backward",
                                      forward="batchnorm_forward",
                                      forward_ok=visible_check_passes("batchnorm_forward", in_place),
                                      forward_changes=inputs_changed_by("batchnorm_forward", in_place))
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert "the forward pass batchnorm_forward changes its input x in place" in line
    assert "make batchnorm_forward work on a copy first" in line and "fails its own check" not in line
