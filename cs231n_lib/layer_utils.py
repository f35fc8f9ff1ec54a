""""Sandwich" layers: common sequences of layers as one forward and one backward function.

Each backward runs the layers' backward passes in the reverse order of the forward pass.
"""

import numpy as np

from .conv import conv_backward, conv_forward
from .layers import affine_backward, affine_forward, relu_backward, relu_forward
from .normalization import spatial_batchnorm_backward, spatial_batchnorm_forward
from .pooling import max_pool_backward, max_pool_forward


def affine_relu_forward(x, w, b):
    """Affine layer followed by a ReLU.

    Inputs:
    - x: input, shape (N, d_1, ..., d_k)
    - w, b: weights (D, M) and biases (M,) of the affine layer

    Returns a tuple of:
    - out: shape (N, M)
    - cache: for ``affine_relu_backward``
    """
    a, fc_cache = affine_forward(x, w, b)
    out, relu_cache = relu_forward(a)
    return out, (fc_cache, relu_cache)


def affine_relu_backward(dout, cache):
    """Backward pass of affine -> ReLU. Returns ``dx, dw, db``."""
    fc_cache, relu_cache = cache
    da = relu_backward(dout, relu_cache)
    return affine_backward(da, fc_cache)


def conv_relu_forward(x, w, b, conv_param):
    """Convolution followed by a ReLU.

    Inputs:
    - x: input, shape (N, C, H, W)
    - w, b: filters (F, C, HH, WW) and biases (F,)
    - conv_param: {'stride', 'pad'} as in ``conv_forward``

    Returns a tuple of:
    - out: shape (N, F, H', W')
    - cache: for ``conv_relu_backward``
    """
    a, conv_cache = conv_forward(x, w, b, conv_param)
    out, relu_cache = relu_forward(a)
    return out, (conv_cache, relu_cache)


def conv_relu_backward(dout, cache):
    """Backward pass of conv -> ReLU. Returns ``dx, dw, db``."""
    conv_cache, relu_cache = cache
    da = relu_backward(dout, relu_cache)
    return conv_backward(da, conv_cache)


def conv_relu_pool_forward(x, w, b, conv_param, pool_param):
    """Convolution, ReLU, then max pooling.

    Inputs:
    - x: input, shape (N, C, H, W)
    - w, b: filters (F, C, HH, WW) and biases (F,)
    - conv_param: {'stride', 'pad'} as in ``conv_forward``
    - pool_param: {'pool_height', 'pool_width', 'stride'} as in ``max_pool_forward``

    Returns a tuple of:
    - out: pooled output
    - cache: for ``conv_relu_pool_backward``
    """
    a, conv_cache = conv_forward(x, w, b, conv_param)
    s, relu_cache = relu_forward(a)
    out, pool_cache = max_pool_forward(s, pool_param)
    return out, (conv_cache, relu_cache, pool_cache)


def conv_relu_pool_backward(dout, cache):
    """Backward pass of conv -> ReLU -> max pool. Returns ``dx, dw, db``."""
    conv_cache, relu_cache, pool_cache = cache
    ds = max_pool_backward(dout, pool_cache)
    da = relu_backward(ds, relu_cache)
    return conv_backward(da, conv_cache)


def conv_bn_relu_forward(x, w, b, gamma, beta, conv_param, bn_param):
    """Convolution, spatial batch normalization, then ReLU.

    Inputs:
    - x: input, shape (N, C, H, W)
    - w, b: filters (F, C, HH, WW) and biases (F,)
    - gamma, beta: batchnorm scale and shift, shape (F,)
    - conv_param: {'stride', 'pad'} as in ``conv_forward``
    - bn_param: as in ``spatial_batchnorm_forward`` (its running statistics are updated)

    Returns a tuple of:
    - out: shape (N, F, H', W')
    - cache: for ``conv_bn_relu_backward``
    """
    a, conv_cache = conv_forward(x, w, b, conv_param)
    an, bn_cache = spatial_batchnorm_forward(a, gamma, beta, bn_param)
    out, relu_cache = relu_forward(an)
    return out, (conv_cache, bn_cache, relu_cache)


def conv_bn_relu_backward(dout, cache):
    """Backward pass of conv -> spatial batchnorm -> ReLU. Returns ``dx, dw, db, dgamma, dbeta``."""
    conv_cache, bn_cache, relu_cache = cache
    dan = relu_backward(dout, relu_cache)
    da, dgamma, dbeta = spatial_batchnorm_backward(dan, bn_cache)
    dx, dw, db = conv_backward(da, conv_cache)
    return dx, dw, db, dgamma, dbeta


#: the parameters of a residual block (``residual_block_forward``)
RESIDUAL_PARAMS = ("w1", "gamma1", "beta1", "w2", "gamma2", "beta2")


def residual_block_forward(x, params, bn_params):
    """ResNet's basic block with an identity shortcut:
    out = ReLU(BN2(conv2(ReLU(BN1(conv1(x))))) + x), both convs 3x3, stride 1, pad 1, no bias.

    Inputs:
    - x: input, shape (N, C, H, W)
    - params: w1, w2 (C, C, 3, 3); gamma1, beta1, gamma2, beta2 (C,)
    - bn_params: two batchnorm dicts (for BN1 and BN2), as in ``spatial_batchnorm_forward``

    Returns a tuple of:
    - out: shape (N, C, H, W)
    - cache: for ``residual_block_backward``
    """
    conv_param = {"stride": 1, "pad": 1}
    no_bias = np.zeros(params["w1"].shape[0], dtype=x.dtype)
    h, cache1 = conv_bn_relu_forward(x, params["w1"], no_bias, params["gamma1"], params["beta1"],
                                     conv_param, bn_params[0])
    a, conv_cache = conv_forward(h, params["w2"], no_bias, conv_param)
    an, bn_cache = spatial_batchnorm_forward(a, params["gamma2"], params["beta2"], bn_params[1])
    out, relu_cache = relu_forward(an + x)
    return out, (cache1, conv_cache, bn_cache, relu_cache)


def residual_block_backward(dout, cache):
    """Backward pass of ``residual_block_forward``.

    Inputs:
    - dout: upstream gradient, shape (N, C, H, W)
    - cache: from ``residual_block_forward``

    Returns a tuple of:
    - dx: shape (N, C, H, W), through the convolutions plus through the shortcut
    - grads: dict with the gradients of w1, gamma1, beta1, w2, gamma2, beta2
    """
    cache1, conv_cache, bn_cache, relu_cache = cache
    ds = relu_backward(dout, relu_cache)
    da, dgamma2, dbeta2 = spatial_batchnorm_backward(ds, bn_cache)
    dh, dw2, _ = conv_backward(da, conv_cache)
    dx, dw1, _, dgamma1, dbeta1 = conv_bn_relu_backward(dh, cache1)
    grads = {"w1": dw1, "gamma1": dgamma1, "beta1": dbeta1, "w2": dw2, "gamma2": dgamma2, "beta2": dbeta2}
    return dx + ds, grads
