"""Minibatch training of a classification model: the CS231n ``Solver``.

The model is any object with
- ``model.params``: dict of name -> array (the solver updates these in place of the dict)
- ``model.loss(X, y=None)``: scores (N, C) when y is None, otherwise ``(loss, grads)`` with
  ``grads`` having the keys of ``params``

Example::

    solver = Solver(model, data, update_rule="adam", optim_config={"learning_rate": 1e-3},
                    num_epochs=5, batch_size=100)
    solver.train()
    model.params = solver.best_params   # already done by train()
"""

import os
import pickle
import sys

import numpy as np

from . import optim

_DATA_KEYS = ("X_train", "y_train", "X_val", "y_val")


def _check_data(data):
    """Check that the data dict has the four arrays, and that X and y agree."""
    if not isinstance(data, dict):
        raise ValueError(f"data must be a dict with keys {_DATA_KEYS}; found {type(data).__name__}")
    missing = [k for k in _DATA_KEYS if k not in data]
    if missing:
        raise ValueError(f"data is missing {missing}; expected keys {list(_DATA_KEYS)}, found {sorted(data)}")
    arrays = {k: np.asarray(data[k]) for k in _DATA_KEYS}
    for split in ("train", "val"):
        X, y = arrays[f"X_{split}"], arrays[f"y_{split}"]
        if y.ndim != 1 or X.ndim < 2 or X.shape[0] != y.shape[0]:
            raise ValueError(
                f"X_{split} must be (N, ...) and y_{split} (N,) with the same N; "
                f"found X_{split} {X.shape} and y_{split} {y.shape}"
            )
        if X.shape[0] == 0:
            raise ValueError(f"X_{split} is empty; found shape {X.shape}")
        if not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"y_{split} must hold integer labels; found dtype {y.dtype}")
    if arrays["X_train"].shape[1:] != arrays["X_val"].shape[1:]:
        raise ValueError(
            f"X_train and X_val must have the same sample shape; "
            f"found {arrays['X_train'].shape[1:]} and {arrays['X_val'].shape[1:]}"
        )
    return arrays


class Solver:
    """Train a model with minibatch gradient descent and keep the best validation parameters.

    After ``train()``:
    - ``loss_history``: the loss of every iteration
    - ``train_acc_history``, ``val_acc_history``: accuracies at the start and after every
      epoch (num_epochs + 1 entries), train accuracy on at most ``num_train_samples`` samples
    - ``best_val_acc`` and ``best_params``: the best validation accuracy and a copy of the
      parameters it was measured with (and, for a model with batch normalization,
      ``best_bn_params``: its running statistics then); ``model.params`` is set to ``best_params``
    """

    def __init__(self, model, data, update_rule="sgd", optim_config=None, lr_decay=1.0,
                 batch_size=100, num_epochs=10, num_train_samples=1000, num_val_samples=None,
                 checkpoint_name=None, print_every=10, verbose=True, progress=False, seed=None):
        """
        Inputs:
        - model: object with ``params`` and ``loss(X, y=None)`` (see the module docstring)
        - data: dict with 'X_train', 'y_train', 'X_val', 'y_val'
        - update_rule: name of a rule in ``cs231n_lib.optim`` ('sgd', 'sgd_momentum',
          'rmsprop', 'adam') or a function ``next_w, config = rule(w, dw, config)``
        - optim_config: hyperparameters for the rule (e.g. {'learning_rate': 1e-3}); each
          parameter gets its own copy, which also holds the rule's state
        - lr_decay: the learning rate is multiplied by this after every epoch
        - batch_size: minibatch size
        - num_epochs: number of passes over the training data
        - num_train_samples: training samples used to measure train accuracy (None = all)
        - num_val_samples: validation samples used for val accuracy (None = all)
        - checkpoint_name: if given, after every epoch save '{checkpoint_name}_epoch_{N}.pkl'
        - print_every: log the loss every this many iterations (verbose only)
        - verbose: print a concise log to stdout
        - progress: show a tqdm progress bar (a widget in notebooks); it writes to stdout, so
          nbgrader does not count it as an error
        - seed: seed of the minibatch sampling (None uses ``np.random``, as CS231n does)
        """
        if not hasattr(model, "params") or not callable(getattr(model, "loss", None)):
            raise ValueError("model must have a 'params' dict and a 'loss(X, y=None)' method")
        self.model = model
        arrays = _check_data(data)
        self.X_train, self.y_train = arrays["X_train"], arrays["y_train"]
        self.X_val, self.y_val = arrays["X_val"], arrays["y_val"]

        if isinstance(update_rule, str):
            if update_rule not in optim.UPDATE_RULES:
                raise ValueError(
                    f"unknown update_rule {update_rule!r}; expected one of "
                    f"{', '.join(repr(r) for r in optim.UPDATE_RULES)} or a function"
                )
            self.update_rule = getattr(optim, update_rule)
        elif callable(update_rule):
            self.update_rule = update_rule
        else:
            raise ValueError(f"update_rule must be a name or a function; found {update_rule!r}")
        self.update_rule_name = update_rule if isinstance(update_rule, str) else getattr(update_rule, "__name__", "custom")
        self.optim_config = dict(optim_config or {})
        self.lr_decay = float(lr_decay)
        if not 0 < self.lr_decay <= 1:
            raise ValueError(f"lr_decay must lie in (0, 1]; found {lr_decay!r}")
        self.batch_size = int(batch_size)
        self.num_epochs = int(num_epochs)
        if self.batch_size < 1 or self.num_epochs < 0:
            raise ValueError(f"batch_size must be >= 1 and num_epochs >= 0; found {batch_size!r} and {num_epochs!r}")
        self.num_train_samples = num_train_samples
        self.num_val_samples = num_val_samples
        self.checkpoint_name = checkpoint_name
        self.print_every = max(1, int(print_every))
        self.verbose = bool(verbose)
        self.progress = bool(progress)
        self.rng = np.random if seed is None else np.random.default_rng(seed)
        self._reset()

    def _reset(self):
        """Set up the bookkeeping; called by __init__ (call it again to train from scratch)."""
        self.epoch = 0
        self.best_val_acc = 0.0
        self.best_params = {}
        self.best_bn_params = None
        self.loss_history = []
        self.train_acc_history = []
        self.val_acc_history = []
        self.optim_configs = {name: dict(self.optim_config) for name in self.model.params}

    def _step(self):
        """One gradient update on a random minibatch (sampled with replacement, as in CS231n)."""
        num_train = self.X_train.shape[0]
        batch = self.rng.choice(num_train, self.batch_size)
        loss, grads = self.model.loss(self.X_train[batch], self.y_train[batch])
        loss = float(loss)
        if not np.isfinite(loss):
            raise FloatingPointError(
                f"the loss became {loss} at iteration {len(self.loss_history) + 1}; "
                f"lower the learning rate or the weight scale"
            )
        self.loss_history.append(loss)
        for name, w in self.model.params.items():
            if name not in grads:
                raise ValueError(f"model.loss returned no gradient for parameter {name!r}")
            next_w, self.optim_configs[name] = self.update_rule(w, grads[name], self.optim_configs[name])
            self.model.params[name] = next_w

    def checkpoint_path(self, epoch):
        return f"{self.checkpoint_name}_epoch_{epoch}.pkl"

    def _save_checkpoint(self):
        if self.checkpoint_name is None:
            return None
        checkpoint = {
            "params": _copy_arrays(self.model.params),
            "bn_params": _copy_bn_params(getattr(self.model, "bn_params", None)),
            "update_rule": self.update_rule_name,
            "lr_decay": self.lr_decay,
            "optim_config": self.optim_config,
            "batch_size": self.batch_size,
            "num_train_samples": self.num_train_samples,
            "num_val_samples": self.num_val_samples,
            "epoch": self.epoch,
            "loss_history": list(self.loss_history),
            "train_acc_history": list(self.train_acc_history),
            "val_acc_history": list(self.val_acc_history),
            "best_val_acc": self.best_val_acc,
        }
        path = self.checkpoint_path(self.epoch)
        directory = os.path.dirname(path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:  # write then rename: a stopped run never leaves half a file
            pickle.dump(checkpoint, f)
        os.replace(tmp, path)
        return path

    @staticmethod
    def load_checkpoint(path):
        """Read a checkpoint written by ``train``: a dict with 'params', 'bn_params' (the
        running statistics of a model with batch normalization, else None), 'epoch', the
        histories, 'best_val_acc' and the solver settings."""
        with open(path, "rb") as f:
            return pickle.load(f)

    def check_accuracy(self, X, y, num_samples=None, batch_size=100):
        """Fraction of ``X`` the model classifies as ``y``.

        Inputs:
        - X: data (N, ...); y: labels (N,)
        - num_samples: if given and smaller than N, measure on that many random samples
        - batch_size: how many samples go through the model at once (bounds memory)

        Returns the accuracy, a float in [0, 1].
        """
        X, y = np.asarray(X), np.asarray(y)
        if X.shape[0] != y.shape[0]:
            raise ValueError(f"X and y must have the same number of samples; found {X.shape} and {y.shape}")
        N = X.shape[0]
        if num_samples is not None and N > num_samples:
            mask = self.rng.choice(N, num_samples)
            X, y, N = X[mask], y[mask], num_samples
        predictions = [
            np.argmax(self.model.loss(X[start:start + batch_size]), axis=1)
            for start in range(0, N, batch_size)
        ]
        return float(np.mean(np.concatenate(predictions) == y))

    def _log(self, message):
        if self.verbose:
            print(message, flush=True)

    def _measure_epoch(self):
        """Record train/val accuracy for the current epoch and keep the best parameters."""
        train_acc = self.check_accuracy(self.X_train, self.y_train, num_samples=self.num_train_samples)
        val_acc = self.check_accuracy(self.X_val, self.y_val, num_samples=self.num_val_samples)
        self.train_acc_history.append(train_acc)
        self.val_acc_history.append(val_acc)
        self._save_checkpoint()
        self._log(f"(Epoch {self.epoch} / {self.num_epochs}) train acc: {train_acc:.3f}; val_acc: {val_acc:.3f}")
        if val_acc > self.best_val_acc or not self.best_params:
            self.best_val_acc = val_acc
            self.best_params = _copy_arrays(self.model.params)
            self.best_bn_params = _copy_bn_params(getattr(self.model, "bn_params", None))
        return train_acc, val_acc

    def train(self):
        """Run the optimization, then set ``model.params`` to ``best_params``.

        Accuracy is measured before the first update (epoch 0) and at the end of every epoch;
        the learning rate of every parameter is multiplied by ``lr_decay`` after each epoch.
        """
        num_train = self.X_train.shape[0]
        iterations_per_epoch = max(num_train // self.batch_size, 1)
        num_iterations = self.num_epochs * iterations_per_epoch

        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=num_iterations, desc="training", unit="it", file=sys.stdout)
        self._measure_epoch()
        try:
            for t in range(num_iterations):
                self._step()
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{self.loss_history[-1]:.3f}", refresh=False)
                if t % self.print_every == 0:
                    self._log(f"(Iteration {t + 1} / {num_iterations}) loss: {self.loss_history[-1]:f}")
                if (t + 1) % iterations_per_epoch == 0:
                    self.epoch += 1
                    for config in self.optim_configs.values():
                        if "learning_rate" in config:
                            config["learning_rate"] *= self.lr_decay
                    self._measure_epoch()
                    if bar is not None:
                        bar.set_postfix(loss=f"{self.loss_history[-1]:.3f}", val_acc=f"{self.val_acc_history[-1]:.3f}")
        finally:
            if bar is not None:
                bar.close()
        # copies: a second train() must not overwrite the best parameters in place
        self.model.params = _copy_arrays(self.best_params)
        if self.best_bn_params is not None:
            # the running statistics that go with the best parameters, not the last epoch's
            self.model.bn_params = _copy_bn_params(self.best_bn_params)
        return self


def _copy_bn_params(bn_params):
    """A deep copy of a model's ``bn_params`` (batchnorm modes and running statistics), or None.

    Models keep them in a dict by layer (as cs231n_lib's) or in a list of dicts (as CS231n's
    fully connected net); the copy has the same form.
    """
    if not bn_params:
        return None
    if isinstance(bn_params, dict):
        return {key: _copy_arrays(param) for key, param in bn_params.items()}
    return [_copy_arrays(param) for param in bn_params]


def _copy_arrays(mapping):
    """A new dict whose arrays are copies (other values, e.g. a mode string, are shared)."""
    return {name: np.array(value, copy=True) if isinstance(value, np.ndarray) else value
            for name, value in mapping.items()}
