"""Fully connected layers, ReLU and the two classification losses.

Every layer follows the CS231n convention::

    out, cache = affine_forward(x, w, b)
    dx, dw, db = affine_backward(dout, cache)

and returns arrays of the dtype of its main input ``x`` (float32 or float64).
"""

import numpy as np

from . import _threads, kernels
from ._validate import float_array, require_shape, same_dtype


def affine_forward(x, w, b):
    """Forward pass of a fully connected (affine) layer: ``out = x.reshape(N, D) @ w + b``.

    Inputs:
    - x: array of shape (N, d_1, ..., d_k); each sample is flattened to D = d_1 * ... * d_k
    - w: weights, shape (D, M)
    - b: biases, shape (M,)

    Returns a tuple of:
    - out: shape (N, M), dtype of x
    - cache: (x, w, b) for the backward pass
    """
    x = float_array("x", x)
    if x.ndim < 1:
        raise ValueError(f"x must have at least one dimension (the batch); found shape {x.shape}")
    w = float_array("w", w, ndim=2)
    b = float_array("b", b, ndim=1)
    N, D = x.shape[0], int(np.prod(x.shape[1:], dtype=np.int64))
    if w.shape[0] != D:
        raise ValueError(
            f"w must have shape (D, M) with D = {D} (x of shape {x.shape} flattened per sample); "
            f"found w of shape {w.shape}"
        )
    require_shape("b", b, (w.shape[1],))
    arrays = same_dtype(x.dtype, w=w, b=b)
    w, b = arrays["w"], arrays["b"]
    out = _threads.matmul(x.reshape(N, D), w) + b  # x.reshape(N, D) @ w + b, on every core
    return out, (x, w, b)


def affine_backward(dout, cache):
    """Backward pass of a fully connected layer.

    Inputs:
    - dout: upstream gradient, shape (N, M)
    - cache: (x, w, b) from ``affine_forward``

    Returns a tuple of:
    - dx: gradient with respect to x, shape (N, d_1, ..., d_k)
    - dw: gradient with respect to w, shape (D, M)
    - db: gradient with respect to b, shape (M,)
    """
    x, w, b = cache
    N, D = x.shape[0], w.shape[0]
    dout = float_array("dout", dout)
    require_shape("dout", dout, (N, w.shape[1]))
    dout = dout.astype(x.dtype, copy=False)
    dx = _threads.matmul(dout, w.T).reshape(x.shape)  # dout @ w.T
    dw = _threads.matmul(x.reshape(N, D).T, dout)  # x.reshape(N, D).T @ dout
    db = dout.sum(axis=0)
    return dx, dw, db


def relu_forward(x):
    """Forward pass of a rectified linear unit: ``out = max(0, x)`` elementwise.

    Inputs:
    - x: array of any shape

    Returns a tuple of:
    - out: same shape and dtype as x
    - cache: x
    """
    x = float_array("x", x)
    return np.maximum(x, 0), x


def relu_backward(dout, cache):
    """Backward pass of a ReLU: the gradient passes where the input was positive.

    Inputs:
    - dout: upstream gradient, same shape as x
    - cache: x from ``relu_forward``

    Returns dx, same shape and dtype as x (0 where x <= 0, the usual subgradient choice).
    """
    x = np.ascontiguousarray(cache)
    dout = float_array("dout", dout)
    require_shape("dout", dout, x.shape)
    dout = np.ascontiguousarray(dout, dtype=x.dtype)
    if x.size < 1 << 16:  # small: launching the kernel's threads would cost more than it saves
        return np.where(x > 0, dout, 0).astype(x.dtype, copy=False)
    dx = np.empty_like(x)
    # dx = np.where(x > 0, dout, 0), as a kernel that selects instead of branching (faster)
    kernels.launch(kernels.relu_backward_flat, x.reshape(-1), dout.reshape(-1), dx.reshape(-1))
    return dx


def _check_scores_and_labels(x, y):
    """Validate class scores (N, C) and integer labels (N,) in [0, C); return them."""
    x = float_array("x (class scores)", x, ndim=2)
    N, C = x.shape
    y = np.asarray(y)
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"y (labels) must hold integers; found dtype {y.dtype}")
    require_shape("y (labels)", y, (N,))
    if N == 0:
        raise ValueError("x must hold at least one sample; found N = 0")
    low, high = int(y.min()), int(y.max())
    if low < 0 or high >= C:
        bad = low if low < 0 else high
        raise ValueError(
            f"y (labels) must lie in [0, C - 1] = [0, {C - 1}] for C = {C} classes; found label {bad}"
        )
    return x, y


def softmax_loss(x, y):
    """Softmax (cross-entropy) loss averaged over the batch, and its gradient.

    Inputs:
    - x: class scores, shape (N, C); x[i, j] is the score of class j for sample i
    - y: integer labels, shape (N,), with 0 <= y[i] < C

    Returns a tuple of:
    - loss: scalar of the dtype of x
    - dx: gradient of the loss with respect to x, shape (N, C)
    """
    x, y = _check_scores_and_labels(x, y)
    N = x.shape[0]
    # Subtracting each row's maximum leaves the softmax unchanged and keeps exp() from overflowing.
    shifted = x - x.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows = np.arange(N)
    loss = -log_probs[rows, y].sum() / N
    dx = np.exp(log_probs)
    dx[rows, y] -= 1
    dx /= N
    return x.dtype.type(loss), dx


def svm_loss(x, y):
    """Multiclass SVM (hinge) loss with margin 1, averaged over the batch, and its gradient.

    ``loss_i = sum over j != y_i of max(0, x[i, j] - x[i, y_i] + 1)``.

    Inputs:
    - x: class scores, shape (N, C)
    - y: integer labels, shape (N,), with 0 <= y[i] < C

    Returns a tuple of:
    - loss: scalar of the dtype of x
    - dx: gradient of the loss with respect to x, shape (N, C)
    """
    x, y = _check_scores_and_labels(x, y)
    N = x.shape[0]
    rows = np.arange(N)
    correct = x[rows, y][:, None]
    margins = np.maximum(0, x - correct + 1)
    margins[rows, y] = 0
    loss = margins.sum() / N
    # Each violated margin pushes its class score up and the correct class score down.
    violated = (margins > 0).astype(x.dtype)
    dx = violated
    dx[rows, y] -= violated.sum(axis=1)
    dx /= N
    return x.dtype.type(loss), dx
