""""Sandwich" layers: common sequences of layers as one forward and one backward function.

Each backward runs the layers' backward passes in the reverse order of the forward pass.
"""

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
