"""A configurable VGG-style ConvNet, written in the same layer notation as ``sizing``."""

import numpy as np

from ..layer_utils import (
    affine_relu_backward,
    affine_relu_forward,
    conv_bn_relu_backward,
    conv_bn_relu_forward,
    conv_relu_backward,
    conv_relu_forward,
)
from ..layers import affine_backward, affine_forward, softmax_loss
from ..pooling import max_pool_backward, max_pool_forward
from ..sizing import describe, parse_spec
from ._common import check_batch, check_dtype, check_reg, init_weights, l2_penalty, make_rng


class ConvNet:
    """INPUT -> [[CONV -> (BN) -> RELU]*N -> POOL?]*M -> [FC -> RELU]*K -> FC -> softmax.

    The architecture is a layer spec as in ``cs231n_lib.sizing`` (see ``SPEC_GRAMMAR``)::

        ConvNet(["INPUT 32x32x3", "CONV3-16", "CONV3-16", "POOL2", "FC-64", "FC-10"])

    Every CONV is followed by a ReLU (with ``use_batchnorm``, by spatial batchnorm and then a
    ReLU), POOL layers are max pooling, every FC but the last is followed by a ReLU, and the last
    FC gives the class scores. Shapes come from ``sizing.describe(spec)`` (``self.description``),
    so an impossible size fails when the model is built, naming the layer.

    Parameters are numbered over the CONV and FC layers in order: ``W1, b1`` for the first,
    ``W2, b2`` for the second, ...; conv weights are (K, C, F, F), FC weights (fan_in, K).
    With batchnorm, CONV layer i also has ``gamma{i}`` and ``beta{i}`` of shape (K,), and its
    running statistics live in ``self.bn_params``.
    """

    def __init__(self, spec, num_classes=None, weight_scale="he", reg=0.0, use_batchnorm=False,
                 dtype=np.float32, seed=None):
        """
        Inputs:
        - spec: list of layer strings (or one string with '->' between layers), ending with FC-K
        - num_classes: optional. If the spec ends with a CONV or POOL, an 'FC-num_classes' is
          appended; if it ends with an FC, that FC must have num_classes outputs.
        - weight_scale: 'he' (sqrt(2 / fan_in), default) or the standard deviation of the weights
        - reg: L2 regularization strength on the weights (not biases, not batchnorm)
        - use_batchnorm: spatial batchnorm between each CONV and its ReLU
        - dtype: float32 (default) or float64 (for gradient checks)
        - seed: seed of the random weights (None draws from ``np.random``)
        """
        layers = parse_spec(spec)
        if num_classes is not None:
            if layers[-1].kind != "fc":
                layers = parse_spec([layer.text for layer in layers] + [f"FC-{int(num_classes)}"])
            elif layers[-1].depth != num_classes:
                raise ValueError(
                    f"the spec ends with {layers[-1].text!r} but num_classes = {num_classes}; "
                    f"make the last FC FC-{num_classes} or leave num_classes out"
                )
        if layers[-1].kind != "fc":
            raise ValueError(
                f"the spec must end with an FC layer that gives the class scores (e.g. 'FC-10'); "
                f"found {layers[-1].text!r}; add one or pass num_classes"
            )
        self.layers = layers
        self.description = describe(layers, dtype=dtype)
        self.reg = check_reg(reg)
        self.dtype = check_dtype(dtype)
        self.use_batchnorm = bool(use_batchnorm)
        H, W, C = self.description.rows[0].shape
        self.input_dim = (C, H, W)
        self.num_classes = layers[-1].depth

        rng = make_rng(seed)
        self.params = {}
        self.bn_params = {}
        self.weight_index = {}  # layer position in the spec -> parameter number
        for position, row in enumerate(self.description.rows):
            if row.weight_shape is None:
                continue
            i = len(self.weight_index) + 1
            self.weight_index[position] = i
            fan_in = int(np.prod(row.weight_shape[1:])) if row.layer.kind == "conv" else row.weight_shape[0]
            self.params[f"W{i}"] = init_weights(rng, row.weight_shape, fan_in, weight_scale, self.dtype)
            self.params[f"b{i}"] = np.zeros(row.biases, dtype=self.dtype)
            if self.use_batchnorm and row.layer.kind == "conv":
                self.params[f"gamma{i}"] = np.ones(row.layer.depth, dtype=self.dtype)
                self.params[f"beta{i}"] = np.zeros(row.layer.depth, dtype=self.dtype)
                self.bn_params[i] = {"mode": "train"}

    def __repr__(self):
        bn = ", use_batchnorm=True" if self.use_batchnorm else ""
        return f"ConvNet({[layer.text for layer in self.layers]!r}{bn}, dtype={self.dtype.name})"

    def _forward_layer(self, position, layer, x, mode):
        """One layer of the forward pass; returns (output, cache)."""
        p = self.params
        if layer.kind == "pool":
            pool_param = {"pool_height": layer.size, "pool_width": layer.size, "stride": layer.stride}
            return max_pool_forward(x, pool_param)
        i = self.weight_index[position]
        w, b = p[f"W{i}"], p[f"b{i}"]
        if layer.kind == "conv":
            conv_param = {"stride": layer.stride, "pad": layer.pad}
            if layer.dilation != 1:
                conv_param["dilation"] = layer.dilation
            if self.use_batchnorm:
                bn_param = self.bn_params[i]
                bn_param["mode"] = mode
                return conv_bn_relu_forward(x, w, b, p[f"gamma{i}"], p[f"beta{i}"], conv_param, bn_param)
            return conv_relu_forward(x, w, b, conv_param)
        if position == len(self.layers) - 1:
            return affine_forward(x, w, b)
        return affine_relu_forward(x, w, b)

    def _backward_layer(self, position, layer, dout, cache, grads):
        """One layer of the backward pass; stores parameter gradients in grads, returns dx."""
        if layer.kind == "pool":
            return max_pool_backward(dout, cache)
        i = self.weight_index[position]
        if layer.kind == "conv" and self.use_batchnorm:
            dx, grads[f"W{i}"], grads[f"b{i}"], grads[f"gamma{i}"], grads[f"beta{i}"] = conv_bn_relu_backward(dout, cache)
        elif layer.kind == "conv":
            dx, grads[f"W{i}"], grads[f"b{i}"] = conv_relu_backward(dout, cache)
        elif position == len(self.layers) - 1:
            dx, grads[f"W{i}"], grads[f"b{i}"] = affine_backward(dout, cache)
        else:
            dx, grads[f"W{i}"], grads[f"b{i}"] = affine_relu_backward(dout, cache)
        return dx

    def forward(self, X, mode="test"):
        """Run the network and keep every layer's output.

        Inputs:
        - X: minibatch of shape (N, C, H, W) matching the spec's INPUT
        - mode: 'test' (batchnorm uses running statistics) or 'train'

        Returns a tuple of:
        - outputs: list with one array per spec layer, X first; volumes are (N, D, H, W)
          and FC outputs (N, D), the shapes ``self.description`` predicts in NCHW order
        - caches: list of the layers' caches (None for the INPUT)
        """
        if mode not in ("train", "test"):
            raise ValueError(f"mode must be 'train' or 'test'; found {mode!r}")
        X, _ = check_batch(X, None, self.input_dim, self.num_classes, self.dtype)
        outputs, caches = [X], [None]
        for position, layer in enumerate(self.layers[1:], start=1):
            out, cache = self._forward_layer(position, layer, outputs[-1], mode)
            outputs.append(out)
            caches.append(cache)
        return outputs, caches

    def loss(self, X, y=None):
        """Class scores, or the loss and its gradients.

        Inputs:
        - X: minibatch of shape (N, C, H, W)
        - y: labels of shape (N,), or None (then batchnorm runs in test mode)

        Returns:
        - y is None: scores of shape (N, num_classes)
        - otherwise (loss, grads): softmax loss plus 0.5 * reg * sum(W**2) over the weights, and
          gradients with the keys, shapes and dtype of ``self.params``
        """
        mode = "test" if y is None else "train"
        X, y = check_batch(X, y, self.input_dim, self.num_classes, self.dtype)
        outputs, caches = self.forward(X, mode)
        scores = outputs[-1]
        if y is None:
            return scores

        data_loss, dout = softmax_loss(scores, y)
        weight_names = [f"W{i}" for i in self.weight_index.values()]
        loss = data_loss + l2_penalty(self.params, weight_names, self.reg)
        grads = {}
        for position in range(len(self.layers) - 1, 0, -1):
            dout = self._backward_layer(position, self.layers[position], dout, caches[position], grads)
        for name in weight_names:
            grads[name] = grads[name] + self.reg * self.params[name]
        return self.dtype.type(loss), {k: v.astype(self.dtype, copy=False) for k, v in grads.items()}
