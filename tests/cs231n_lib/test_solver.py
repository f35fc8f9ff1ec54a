"""Tests for Solver: history lengths, best parameters, checkpoints, learning-rate decay,
accuracy measurement, input checks and progress output."""

import glob
import os

import numpy as np
import pytest

from cs231n_lib.solver import Solver


class LinearSoftmax:
    """A tiny model written here (not from the library): scores = X.reshape(N, -1) @ W + b."""

    def __init__(self, D, C, seed=0):
        rng = np.random.default_rng(seed)
        self.params = {"W": 1e-3 * rng.standard_normal((D, C)), "b": np.zeros(C)}

    def loss(self, X, y=None):
        X = X.reshape(X.shape[0], -1)
        scores = X @ self.params["W"] + self.params["b"]
        if y is None:
            return scores
        shifted = scores - scores.max(axis=1, keepdims=True)
        probs = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
        N = X.shape[0]
        loss = -np.log(probs[np.arange(N), y]).mean()
        dscores = probs
        dscores[np.arange(N), y] -= 1
        dscores /= N
        return loss, {"W": X.T @ dscores, "b": dscores.sum(axis=0)}


def _blobs(n_train=200, n_val=50, D=6, C=3, seed=0, noise=1.5):
    """Gaussian blobs: learnable, but noisy enough that validation accuracy moves around."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((C, D)) * 2
    def sample(n):
        y = rng.integers(0, C, n)
        return centers[y] + noise * rng.standard_normal((n, D)), y
    X_train, y_train = sample(n_train)
    X_val, y_val = sample(n_val)
    return {"X_train": X_train, "y_train": y_train, "X_val": X_val, "y_val": y_val}


def test_history_lengths_and_learning():
    data = _blobs()
    model = LinearSoftmax(6, 3)
    solver = Solver(model, data, update_rule="sgd", optim_config={"learning_rate": 0.1},
                    batch_size=50, num_epochs=5, verbose=False, seed=0)
    solver.train()
    assert len(solver.loss_history) == 5 * (200 // 50)
    assert len(solver.train_acc_history) == len(solver.val_acc_history) == 6
    assert solver.best_val_acc == max(solver.val_acc_history)
    assert np.mean(solver.loss_history[-4:]) < solver.loss_history[0]
    assert solver.val_acc_history[-1] > 0.6


def test_best_params_are_those_of_the_best_validation_epoch(tmp_path):
    data = _blobs(noise=2.5, seed=1)
    model = LinearSoftmax(6, 3, seed=1)
    name = str(tmp_path / "run")
    solver = Solver(model, data, update_rule="sgd_momentum", optim_config={"learning_rate": 0.3},
                    batch_size=20, num_epochs=6, checkpoint_name=name, verbose=False, seed=1)
    solver.train()
    best_epoch = int(np.argmax(solver.val_acc_history))  # the first epoch reaching the best
    best = Solver.load_checkpoint(f"{name}_epoch_{best_epoch}.pkl")
    for key in model.params:
        np.testing.assert_array_equal(solver.best_params[key], best["params"][key])
        np.testing.assert_array_equal(model.params[key], best["params"][key])
    assert solver.check_accuracy(data["X_val"], data["y_val"]) == solver.best_val_acc


def test_checkpoints_are_written_and_loadable(tmp_path):
    data = _blobs()
    name = str(tmp_path / "sub" / "ckpt")
    solver = Solver(LinearSoftmax(6, 3), data, update_rule="adam", optim_config={"learning_rate": 1e-2},
                    lr_decay=0.9, batch_size=40, num_epochs=3, checkpoint_name=name, verbose=False, seed=0)
    solver.train()
    files = sorted(glob.glob(name + "_epoch_*.pkl"))
    assert [os.path.basename(f) for f in files] == [f"ckpt_epoch_{e}.pkl" for e in range(4)]
    last = Solver.load_checkpoint(files[-1])
    assert last["epoch"] == 3
    assert last["update_rule"] == "adam" and last["lr_decay"] == 0.9 and last["batch_size"] == 40
    assert last["loss_history"] == solver.loss_history
    assert last["val_acc_history"] == solver.val_acc_history
    first = Solver.load_checkpoint(files[0])
    assert first["epoch"] == 0 and first["loss_history"] == [] and len(first["val_acc_history"]) == 1
    assert not glob.glob(name + "*.tmp")


def test_learning_rate_decays_after_each_epoch():
    seen = []

    def recording_sgd(w, dw, config):
        seen.append(config["learning_rate"])
        return w - config["learning_rate"] * dw, config

    data = _blobs(n_train=30)
    solver = Solver(LinearSoftmax(6, 3), data, update_rule=recording_sgd,
                    optim_config={"learning_rate": 0.5}, lr_decay=0.5, batch_size=10,
                    num_epochs=3, verbose=False, seed=0)
    solver.train()
    # 2 parameters x 3 iterations per epoch, rate halved after each epoch
    assert seen == [0.5] * 6 + [0.25] * 6 + [0.125] * 6
    assert all(c["learning_rate"] == 0.5 * 0.5**3 for c in solver.optim_configs.values())
    # each parameter owns its config
    assert solver.optim_configs["W"] is not solver.optim_configs["b"]


def test_default_learning_rate_is_decayed_too():
    solver = Solver(LinearSoftmax(6, 3), _blobs(n_train=20), update_rule="sgd", lr_decay=0.5,
                    batch_size=10, num_epochs=2, verbose=False, seed=0)
    solver.train()
    assert solver.optim_configs["W"]["learning_rate"] == pytest.approx(1e-2 * 0.25)


def test_check_accuracy_counts_correct_predictions():
    model = LinearSoftmax(2, 2)
    model.params = {"W": np.eye(2), "b": np.zeros(2)}
    X = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 1.0], [0.0, 3.0], [5.0, 0.0]])
    y = np.array([0, 1, 1, 1, 0])  # the third is wrong
    solver = Solver(model, {"X_train": X, "y_train": y, "X_val": X, "y_val": y}, verbose=False)
    assert solver.check_accuracy(X, y, batch_size=2) == pytest.approx(0.8)
    assert solver.check_accuracy(X, y, batch_size=100) == pytest.approx(0.8)
    sub = solver.check_accuracy(X, y, num_samples=3)
    assert sub in (0.0, 1 / 3, 2 / 3, 1.0)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d.pop("y_val"), r"data is missing \['y_val'\]"),
        (lambda d: d.update(y_train=d["y_train"][:-1]), r"X_train must be \(N, ...\) and y_train \(N,\).*\(200, 6\).*\(199,\)"),
        (lambda d: d.update(X_val=d["X_val"][:, :5]), r"same sample shape; found \(6,\) and \(5,\)"),
        (lambda d: d.update(y_val=d["y_val"].astype(float)), "y_val must hold integer labels"),
    ],
)
def test_bad_data_is_reported(change, message):
    data = _blobs()
    change(data)
    with pytest.raises(ValueError, match=message):
        Solver(LinearSoftmax(6, 3), data)


def test_bad_settings_are_reported():
    data = _blobs()
    with pytest.raises(ValueError, match="unknown update_rule 'adamw'"):
        Solver(LinearSoftmax(6, 3), data, update_rule="adamw")
    for not_a_rule in ("float_array", "np", "_start"):  # other names of the optim module
        with pytest.raises(ValueError, match=f"unknown update_rule '{not_a_rule}'"):
            Solver(LinearSoftmax(6, 3), data, update_rule=not_a_rule)
    with pytest.raises(ValueError, match="lr_decay must lie in"):
        Solver(LinearSoftmax(6, 3), data, lr_decay=0)
    with pytest.raises(ValueError, match="model must have"):
        Solver(object(), data)
    with pytest.raises(ValueError, match="data must be a dict"):
        Solver(LinearSoftmax(6, 3), [1, 2])


def test_diverging_loss_stops_with_a_clear_error():
    solver = Solver(LinearSoftmax(6, 3), _blobs(), optim_config={"learning_rate": 1e30},
                    batch_size=50, num_epochs=3, verbose=False, seed=0)
    with pytest.raises(FloatingPointError, match="lower the learning rate"):
        with np.errstate(all="ignore"):
            solver.train()


def test_log_and_progress_go_to_stdout(capsys):
    data = _blobs(n_train=40)
    Solver(LinearSoftmax(6, 3), data, batch_size=10, num_epochs=2, print_every=3, seed=0).train()
    out = capsys.readouterr()
    lines = out.out.splitlines()
    iterations = [line.split(")")[0] for line in lines if line.startswith("(Iteration")]
    assert iterations == ["(Iteration 1 / 8", "(Iteration 4 / 8", "(Iteration 7 / 8"]
    assert sum(line.startswith("(Epoch") for line in lines) == 3
    assert out.err == ""

    Solver(LinearSoftmax(6, 3), data, batch_size=10, num_epochs=2, verbose=False, progress=True, seed=0).train()
    out = capsys.readouterr()
    assert out.err == ""  # nbgrader counts stderr output as a failure
    assert "8/8" in out.out


class CountingBatchnormModel(LinearSoftmax):
    """LinearSoftmax with a fake batchnorm state: its running mean counts the training steps.

    The state is kept in a dict by layer (cs231n_lib's models) or in a list (``as_list``, as
    CS231n's fully connected net does)."""

    def __init__(self, D, C, seed=0, as_list=False):
        super().__init__(D, C, seed)
        state = {"mode": "train", "running_mean": np.zeros(1)}
        self.bn_params = [state] if as_list else {0: state}

    def loss(self, X, y=None):
        if y is not None:
            self.bn_params[0]["running_mean"] += 1  # in place, as batchnorm layers update it
        return super().loss(X, y)


def test_best_parameters_come_back_with_their_batchnorm_statistics_and_checkpoints_hold_them(tmp_path):
    data = _blobs(n_train=40)
    model = CountingBatchnormModel(6, 3)
    solver = Solver(model, data, update_rule="sgd", optim_config={"learning_rate": 0.5}, batch_size=10,
                    num_epochs=4, verbose=False, seed=0, checkpoint_name=str(tmp_path / "bn"))
    solver.train()
    best_epoch = int(np.argmax(solver.val_acc_history))  # first best: accuracy must rise to replace it
    assert float(model.bn_params[0]["running_mean"][0]) == 4 * best_epoch  # 4 steps per epoch
    for epoch in range(5):
        checkpoint = Solver.load_checkpoint(str(tmp_path / f"bn_epoch_{epoch}.pkl"))
        assert float(checkpoint["bn_params"][0]["running_mean"][0]) == 4 * epoch
    assert Solver.load_checkpoint(str(tmp_path / "bn_epoch_0.pkl"))["bn_params"][0]["mode"] == "train"


def test_batchnorm_statistics_kept_in_a_list_come_back_as_a_list():
    model = CountingBatchnormModel(6, 3, as_list=True)
    solver = Solver(model, _blobs(n_train=40), update_rule="sgd", optim_config={"learning_rate": 0.5},
                    batch_size=10, num_epochs=2, verbose=False, seed=0)
    solver.train()
    assert isinstance(model.bn_params, list)
    assert float(model.bn_params[0]["running_mean"][0]) == 4 * int(np.argmax(solver.val_acc_history))


def test_a_second_train_does_not_overwrite_the_best_parameters_in_place():
    data = _blobs(n_train=40)
    model = LinearSoftmax(6, 3)
    solver = Solver(model, data, update_rule="sgd", optim_config={"learning_rate": 0.5}, batch_size=10,
                    num_epochs=2, verbose=False, seed=0)
    solver.train()
    kept = {k: v.copy() for k, v in solver.best_params.items()}
    assert model.params is not solver.best_params
    solver._step()  # the model trains on: its parameters change
    assert all(np.array_equal(solver.best_params[k], kept[k]) for k in kept)
