"""cs231n_lib: a small, readable and fast NumPy + Numba library for convolutional networks.

Layer functions follow the CS231n convention::

    out, cache = conv_forward(x, w, b, conv_param)     # x: (N, C, H, W), w: (F, C, HH, WW)
    dx, dw, db = conv_backward(dout, cache)

Every public name is importable from the package top level; the modules are loaded on first
use so that ``import cs231n_lib`` stays cheap.
"""

from importlib import import_module

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "layers": [
        "affine_forward", "affine_backward", "relu_forward", "relu_backward",
        "softmax_loss", "svm_loss",
    ],
    "conv": ["conv_forward", "conv_backward", "im2col", "col2im"],
    "pooling": [
        "max_pool_forward", "max_pool_backward", "avg_pool_forward", "avg_pool_backward",
    ],
    "normalization": [
        "batchnorm_forward", "batchnorm_backward", "batchnorm_backward_alt",
        "spatial_batchnorm_forward", "spatial_batchnorm_backward",
        "layernorm_forward", "layernorm_backward",
        "spatial_groupnorm_forward", "spatial_groupnorm_backward",
    ],
    "layer_utils": [
        "affine_relu_forward", "affine_relu_backward",
        "conv_relu_forward", "conv_relu_backward",
        "conv_relu_pool_forward", "conv_relu_pool_backward",
        "conv_bn_relu_forward", "conv_bn_relu_backward",
    ],
    "gradient_check": ["eval_numerical_gradient", "eval_numerical_gradient_array", "rel_error",
                       "report_gradient_errors"],
    "optim": ["sgd", "sgd_momentum", "rmsprop", "adam"],
    "solver": ["Solver"],
    "classifiers": ["ThreeLayerConvNet", "ConvNet"],
    "sizing": ["conv_output_size", "pool_output_size", "describe"],
    "data": ["get_CIFAR10_data"],
}
_NAME_TO_MODULE = {name: module for module, names in _EXPORTS.items() for name in names}
_SUBMODULES = set(_EXPORTS) | {"kernels"}

__all__ = sorted(_NAME_TO_MODULE)


def __getattr__(name):
    if name in _NAME_TO_MODULE:
        value = getattr(import_module(f"{__name__}.{_NAME_TO_MODULE[name]}"), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__) | _SUBMODULES)
