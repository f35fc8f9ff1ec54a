"""First-order update rules for training neural networks.

Every rule has the CS231n interface::

    next_w, config = update(w, dw, config=None)

- w: current weights (any shape, float32 or float64)
- dw: gradient of the loss with respect to w, same shape
- config: dict of hyperparameters and of the rule's state (velocity, moment estimates...);
  missing hyperparameters get the defaults below, missing state starts at zero. The same dict
  must be passed back on the next step.

``next_w`` has the dtype of ``w`` and so does every state array. The rules never modify
``w`` or ``dw``; they return new arrays.
"""

import numpy as np

from ._validate import float_array, require_shape

#: the names ``Solver(update_rule=...)`` accepts
UPDATE_RULES = ("sgd", "sgd_momentum", "rmsprop", "adam")


def sgd(w, dw, config=None):
    """Vanilla stochastic gradient descent: ``w - learning_rate * dw``.

    config:
    - learning_rate: step size (default 1e-2)
    """
    w, dw, config = _start(w, dw, config)
    lr = _hyper(config, "learning_rate", 1e-2, low=0)
    return w - lr * dw, config


def sgd_momentum(w, dw, config=None):
    """Stochastic gradient descent with momentum.

    ``v = momentum * v - learning_rate * dw``, then ``w + v``.

    config:
    - learning_rate: step size (default 1e-2)
    - momentum: fraction of the velocity kept from one step to the next, in [0, 1) (default 0.9)
    - velocity: running velocity, shape of w (starts at zero)
    """
    w, dw, config = _start(w, dw, config)
    lr = _hyper(config, "learning_rate", 1e-2, low=0)
    momentum = _hyper(config, "momentum", 0.9, low=0, high=1)
    v = _state(config, "velocity", w)
    v = momentum * v - lr * dw
    config["velocity"] = v
    return w + v, config


def rmsprop(w, dw, config=None):
    """RMSProp: divide the step by a running root mean square of the gradient.

    ``cache = decay_rate * cache + (1 - decay_rate) * dw**2``, then
    ``w - learning_rate * dw / (sqrt(cache) + epsilon)``.

    config:
    - learning_rate: step size (default 1e-2)
    - decay_rate: weight of the old squared-gradient average, in [0, 1) (default 0.99)
    - epsilon: keeps the division finite (default 1e-8)
    - cache: running average of dw**2, shape of w (starts at zero)
    """
    w, dw, config = _start(w, dw, config)
    lr = _hyper(config, "learning_rate", 1e-2, low=0)
    decay = _hyper(config, "decay_rate", 0.99, low=0, high=1)
    eps = _hyper(config, "epsilon", 1e-8, low=0, strict_low=True)
    cache = _state(config, "cache", w)
    cache = decay * cache + (1 - decay) * dw**2
    config["cache"] = cache
    return w - lr * dw / (np.sqrt(cache) + eps), config


def adam(w, dw, config=None):
    """Adam: momentum on the gradient and RMSProp-style scaling, with bias correction.

    With step counter t (incremented before use, so the first step has t = 1)::

        m = beta1 * m + (1 - beta1) * dw          m_hat = m / (1 - beta1**t)
        v = beta2 * v + (1 - beta2) * dw**2       v_hat = v / (1 - beta2**t)
        next_w = w - learning_rate * m_hat / (sqrt(v_hat) + epsilon)

    config:
    - learning_rate: step size (default 1e-3, as in CS231n and the Adam paper)
    - beta1: decay of the first moment, in [0, 1) (default 0.9)
    - beta2: decay of the second moment, in [0, 1) (default 0.999)
    - epsilon: keeps the division finite (default 1e-8)
    - m, v: moment estimates, shape of w (start at zero)
    - t: number of steps taken so far (starts at 0)
    """
    w, dw, config = _start(w, dw, config)
    lr = _hyper(config, "learning_rate", 1e-3, low=0)
    beta1 = _hyper(config, "beta1", 0.9, low=0, high=1)
    beta2 = _hyper(config, "beta2", 0.999, low=0, high=1)
    eps = _hyper(config, "epsilon", 1e-8, low=0, strict_low=True)
    m = _state(config, "m", w)
    v = _state(config, "v", w)
    t = config.setdefault("t", 0)
    if isinstance(t, (bool, np.bool_)) or int(t) != t or t < 0:
        raise ValueError(f"config['t'] (steps taken) must be an integer >= 0; found {t!r}")
    t = int(t) + 1
    m = beta1 * m + (1 - beta1) * dw
    v = beta2 * v + (1 - beta2) * dw**2
    m_hat = m / (1 - beta1**t)
    v_hat = v / (1 - beta2**t)
    config.update(m=m, v=v, t=t)
    return w - lr * m_hat / (np.sqrt(v_hat) + eps), config


# --------------------------------------------------------------------------------------------


def _start(w, dw, config):
    """Check w and dw, bring dw to w's dtype, and make a config dict."""
    w = float_array("w", w)
    dw = float_array("dw", dw)
    require_shape("dw", dw, w.shape)
    if config is None:
        config = {}
    elif not isinstance(config, dict):
        raise ValueError(f"config must be a dict or None; found {type(config).__name__}")
    return w, dw.astype(w.dtype, copy=False), config


def _hyper(config, name, default, low=None, high=None, strict_low=False):
    """Read a hyperparameter (storing the default), as a Python float so it keeps w's dtype.

    ``high`` is exclusive; ``low`` is inclusive unless ``strict_low``.
    """
    value = config.setdefault(name, default)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"config[{name!r}] must be a number; found {value!r}") from None
    too_low = low is not None and (number <= low if strict_low else number < low)
    too_high = high is not None and number >= high
    if too_low or too_high or not np.isfinite(number):
        lo = "" if low is None else (f"> {low}" if strict_low else f">= {low}")
        hi = "" if high is None else f"< {high}"
        wanted = " and ".join(part for part in (lo, hi) if part) or "finite"
        raise ValueError(f"config[{name!r}] must be {wanted}; found {value!r}")
    return number


def _state(config, name, w):
    """The state array ``config[name]`` (zeros of w's shape and dtype when absent)."""
    if config.get(name) is None:
        return np.zeros_like(w)
    state = float_array(f"config[{name!r}]", config[name])
    require_shape(f"config[{name!r}]", state, w.shape)
    return state.astype(w.dtype, copy=False)
