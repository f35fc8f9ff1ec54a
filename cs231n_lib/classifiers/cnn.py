"""A three-layer convolutional network, the first complete ConvNet of the course."""

import numpy as np

from ..layer_utils import (
    affine_relu_backward,
    affine_relu_forward,
    conv_relu_pool_backward,
    conv_relu_pool_forward,
)
from ..conv import conv_backward, conv_forward
from ..layers import affine_backward, affine_forward, relu_backward, relu_forward, softmax_loss
from ..normalization import spatial_batchnorm_backward, spatial_batchnorm_forward
from ..pooling import max_pool_backward, max_pool_forward
from ..sizing import conv_output_size, pool_output_size
from ._common import check_batch, check_dtype, check_reg, init_weights, l2_penalty, make_rng


class ThreeLayerConvNet:
    """conv - relu - 2x2 max pool - affine - relu - affine - softmax.

    The conv keeps the spatial size (stride 1, pad (filter_size - 1) // 2, "same" for an odd
    filter size); the pool halves it. Inputs are minibatches of shape (N, C, H, W).

    Parameters (``self.params``):
    - W1 (num_filters, C, filter_size, filter_size), b1 (num_filters,): conv
    - W2 (num_filters * H/2 * W/2, hidden_dim), b2 (hidden_dim,): hidden affine
    - W3 (hidden_dim, num_classes), b3 (num_classes,): output affine
    """

    def __init__(self, input_dim=(3, 32, 32), num_filters=32, filter_size=7, hidden_dim=100,
                 num_classes=10, weight_scale=1e-3, reg=0.0, dtype=np.float32, seed=None):
        """
        Inputs:
        - input_dim: (C, H, W) of one input
        - num_filters, filter_size: the conv layer
        - hidden_dim: units of the hidden affine layer
        - num_classes: number of scores
        - weight_scale: standard deviation of the random weights, or 'he' for sqrt(2 / fan_in)
        - reg: L2 regularization strength
        - dtype: float32 (default, fast) or float64 (for gradient checks)
        - seed: seed of the random weights (None draws from ``np.random``)
        """
        if len(input_dim) != 3:
            raise ValueError(f"input_dim must be (C, H, W); found {input_dim!r}")
        C, H, W = (int(v) for v in input_dim)
        self.input_dim = (C, H, W)
        self.num_classes = int(num_classes)
        self.reg = check_reg(reg)
        self.dtype = check_dtype(dtype)
        self.conv_param = {"stride": 1, "pad": (filter_size - 1) // 2}
        self.pool_param = {"pool_height": 2, "pool_width": 2, "stride": 2}

        pad = self.conv_param["pad"]
        pooled = [pool_output_size(conv_output_size(size, filter_size, 1, pad), 2, 2) for size in (H, W)]
        flat = num_filters * pooled[0] * pooled[1]

        rng = make_rng(seed)
        fs = filter_size
        self.params = {
            "W1": init_weights(rng, (num_filters, C, fs, fs), C * fs * fs, weight_scale, self.dtype),
            "b1": np.zeros(num_filters, dtype=self.dtype),
            "W2": init_weights(rng, (flat, hidden_dim), flat, weight_scale, self.dtype),
            "b2": np.zeros(hidden_dim, dtype=self.dtype),
            "W3": init_weights(rng, (hidden_dim, num_classes), hidden_dim, weight_scale, self.dtype),
            "b3": np.zeros(num_classes, dtype=self.dtype),
        }

    def loss(self, X, y=None):
        """Class scores, or the loss and its gradients.

        Inputs:
        - X: minibatch of shape (N, C, H, W)
        - y: labels of shape (N,), or None

        Returns:
        - y is None: scores of shape (N, num_classes)
        - otherwise (loss, grads): the softmax loss plus 0.5 * reg * sum(W**2) over W1, W2, W3,
          and a dict of gradients with the keys, shapes and dtype of ``self.params``
        """
        X, y = check_batch(X, y, self.input_dim, self.num_classes, self.dtype)
        p = self.params
        h1, cache1 = conv_relu_pool_forward(X, p["W1"], p["b1"], self.conv_param, self.pool_param)
        h2, cache2 = affine_relu_forward(h1, p["W2"], p["b2"])
        scores, cache3 = affine_forward(h2, p["W3"], p["b3"])
        if y is None:
            return scores

        data_loss, dscores = softmax_loss(scores, y)
        loss = data_loss + l2_penalty(p, ("W1", "W2", "W3"), self.reg)
        grads = {}
        dh2, grads["W3"], grads["b3"] = affine_backward(dscores, cache3)
        dh1, grads["W2"], grads["b2"] = affine_relu_backward(dh2, cache2)
        _, grads["W1"], grads["b1"] = conv_relu_pool_backward(dh1, cache1)
        for name in ("W1", "W2", "W3"):
            grads[name] = grads[name] + self.reg * p[name]
        return self.dtype.type(loss), {k: v.astype(self.dtype, copy=False) for k, v in grads.items()}


#: the parameters of ``conv_bn_net_loss``, in the order of the layers
CONV_BN_NET_PARAMS = ("W1", "gamma1", "beta1", "W2", "b2")


def conv_bn_net_loss(params, bn_param, X, y=None, reg=0.0):
    """Scores, or loss and gradients, of conv - spatial batchnorm - relu - 2x2 max pool - affine - softmax.

    The conv has stride 1, pad (F - 1) // 2 and no bias (the batchnorm's beta plays its role: a
    bias would be subtracted with the mean); the pool halves the size. Without labels the
    batchnorm runs in test mode (the running averages of ``bn_param``), with labels in train mode
    (batch statistics; the running averages of ``bn_param`` are updated in place).

    Inputs:
    - params: W1 (F1, C, F, F), gamma1 (F1,), beta1 (F1,), W2 (F1*H/2*W/2, K), b2 (K,)
    - bn_param: the batchnorm's dict ('momentum', 'eps', 'running_mean', 'running_var'); its
      'mode' is set here
    - X: minibatch of shape (N, C, H, W), H and W even
    - y: labels of shape (N,), or None
    - reg: L2 strength on W1 and W2 (0.5 * reg * sum(W**2) each)

    Returns scores (N, K) when y is None, else (loss, grads) with one gradient per entry of params.
    """
    W1, gamma1, beta1, W2, b2 = (params[name] for name in CONV_BN_NET_PARAMS)
    bn_param["mode"] = "test" if y is None else "train"
    conv_param = {"stride": 1, "pad": (W1.shape[2] - 1) // 2}
    pool_param = {"pool_height": 2, "pool_width": 2, "stride": 2}
    a, conv_cache = conv_forward(X, W1, np.zeros(W1.shape[0], dtype=W1.dtype), conv_param)
    an, bn_cache = spatial_batchnorm_forward(a, gamma1, beta1, bn_param)
    r, relu_cache = relu_forward(an)
    h, pool_cache = max_pool_forward(r, pool_param)
    scores, affine_cache = affine_forward(h, W2, b2)
    if y is None:
        return scores
    data_loss, dscores = softmax_loss(scores, y)
    loss = data_loss + 0.5 * reg * (np.sum(W1 * W1) + np.sum(W2 * W2))
    grads = {}
    dh, grads["W2"], grads["b2"] = affine_backward(dscores, affine_cache)
    dr = max_pool_backward(dh, pool_cache)
    dan = relu_backward(dr, relu_cache)
    da, grads["gamma1"], grads["beta1"] = spatial_batchnorm_backward(dan, bn_cache)
    _, grads["W1"], _ = conv_backward(da, conv_cache)
    grads["W1"] = grads["W1"] + reg * W1
    grads["W2"] = grads["W2"] + reg * W2
    return loss, grads
