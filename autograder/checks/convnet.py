"""Trusted checks of notebook 5 (convnet): inputs, references and known mistakes."""

import numpy as np

from cs231n_checks import convnet as kit
from cs231n_checks.convnet import NO_JUMP, OWN_STRIDE, PARAM_NAMES, REVERSED_ORDER, _spec_of

from .base import Trusted, register


@register
class SizeNetwork(Trusted, kit.SizeNetwork):
    def make_inputs(self, case):
        spec = case["spec"]
        if isinstance(spec, str) or not all(isinstance(layer, str) for layer in spec):
            raise ValueError(f"case 'spec' must be a tuple of layer strings; found {spec!r}")
        return {"spec": np.array(list(spec), dtype=str)}

    def reference(self, inputs):
        from cs231n_lib.sizing import describe

        try:
            rows = describe(_spec_of(inputs)).rows
        except ValueError:
            return {"raised": np.array("ValueError")}
        shapes = [(1, 1) + row.shape if len(row.shape) == 1 else row.shape for row in rows]
        return {
            "raised": np.array(""),
            "height": np.array([s[0] for s in shapes], dtype=np.int64),
            "width": np.array([s[1] for s in shapes], dtype=np.int64),
            "depth": np.array([s[2] for s in shapes], dtype=np.int64),
            "weights": np.array([row.weights for row in rows], dtype=np.int64),
            "biases": np.array([row.biases for row in rows], dtype=np.int64),
            "params": np.array(sum(row.params for row in rows), dtype=np.int64),
            "activations": np.array(sum(row.activations for row in rows), dtype=np.int64),
        }


@register
class ReceptiveField(Trusted, kit.ReceptiveField):
    def make_inputs(self, case):
        return {"windows": np.array(case["windows"], dtype=np.int64).reshape(-1, 2)}

    def reference(self, inputs):
        from cs231n_lib.sizing import receptive_field

        windows = [(int(F), int(S)) for F, S in inputs["windows"]]
        return {"r": np.array(receptive_field(windows), dtype=np.int64)}

    def mistakes(self, case, inputs):
        """No jump (F - 1 per layer), a layer's own stride in its jump, the layers reversed."""
        from cs231n_lib.sizing import receptive_field

        windows = [(int(F), int(S)) for F, S in inputs["windows"]]
        own_stride, jump = 1, 1
        for F, S in windows:
            own_stride += (F - 1) * jump * S
            jump *= S
        variants = [(NO_JUMP, 1 + sum(F - 1 for F, _ in windows)), (OWN_STRIDE, own_stride),
                    (REVERSED_ORDER, receptive_field(windows[::-1]))]
        return [(hint, {"r": np.array(r, dtype=np.int64)}) for hint, r in variants]


@register
class FcToConv(Trusted, kit.FcToConv):
    def make_inputs(self, case):
        rng, dtype = self.rng(case), self.dtype_of(case)
        C, H, W, K = (int(case[k]) for k in ("C", "H", "W", "K"))
        return {
            "W_fc": rng.standard_normal((C * H * W, K)).astype(dtype),
            "b_fc": rng.standard_normal(K).astype(dtype),
            "C": np.array(C), "H": np.array(H), "W": np.array(W),
        }

    def reference(self, inputs):
        from cs231n_lib.sizing import fc_to_conv_weights

        shape = tuple(self.scalar(inputs, k) for k in ("C", "H", "W"))
        w, b = fc_to_conv_weights(inputs["W_fc"], inputs["b_fc"], shape)
        return {"w": w, "b": b}


@register
class ThreeLayerConvNetLoss(Trusted, kit.ThreeLayerConvNetLoss):
    def make_inputs(self, case):
        rng, dtype = self.rng(case), self.dtype_of(case)
        N, C, H, W = case["X"]
        if H % 2 or W % 2:
            raise ValueError(f"case X must have an even height and width (2x2 pooling); found {case['X']}")
        F, fs = int(case["num_filters"]), int(case["filter_size"])
        hidden, classes = int(case["hidden_dim"]), int(case["num_classes"])
        flat = F * (H // 2) * (W // 2)
        shapes = {
            "W1": (F, C, fs, fs), "b1": (F,), "W2": (flat, hidden), "b2": (hidden,),
            "W3": (hidden, classes), "b3": (classes,),
        }
        fan_in = {"W1": C * fs * fs, "W2": flat, "W3": hidden}
        inputs = {"X": rng.standard_normal((N, C, H, W)).astype(dtype)}
        for name, shape in shapes.items():
            # He-scaled weights keep the scores of order one; non-zero biases test the bias paths.
            scale = np.sqrt(2.0 / fan_in[name]) if name in fan_in else 0.1
            inputs[name] = (scale * rng.standard_normal(shape)).astype(dtype)
        inputs["y"] = rng.integers(0, classes, size=N).astype(np.int64)
        inputs["reg"] = np.array(float(case.get("reg", 0.0)))
        return inputs

    def reference(self, inputs):
        from cs231n_lib.classifiers import ThreeLayerConvNet

        X, W1, W2 = inputs["X"], inputs["W1"], inputs["W2"]
        model = ThreeLayerConvNet(
            input_dim=X.shape[1:], num_filters=W1.shape[0], filter_size=W1.shape[2],
            hidden_dim=W2.shape[1], num_classes=inputs["W3"].shape[1],
            reg=float(inputs["reg"]), dtype=X.dtype, seed=0,
        )
        model.params = {name: inputs[name].copy() for name in PARAM_NAMES}
        scores = model.loss(X)
        loss, grads = model.loss(X, inputs["y"])
        out = {"scores": scores, "loss": np.asarray(loss)}
        out.update({f"d{name}": grads[name] for name in PARAM_NAMES})
        return out


# ------------------------------------------------------------------------------------------
# Part 3: memory budgets, named architectures, designs under a budget

def _memory(params, activations, batch, buffers, size, act_grads=1, param_grads=1, per_image=True):
    """The memory dict with the mistakes' switches (plain integer arithmetic, no library)."""
    images = batch if per_image else 1
    memory = {
        "activations": size * images * activations,
        "activation_grads": size * images * activations * act_grads,
        "params": size * params,
        "param_grads": size * params * param_grads,
        "optimizer_state": size * buffers * params,
    }
    memory["total"] = sum(memory.values())
    return {k: np.array(v, dtype=np.int64) for k, v in memory.items()}


def _memory_case(inputs, *keys):
    return [int(np.asarray(inputs[k]).item()) for k in keys]


@register
class TrainingMemory(Trusted, kit.TrainingMemory):
    catalogue = (kit.NO_ACTIVATION_GRADS, kit.NO_PARAM_GRADS, kit.NO_BATCH, kit.ADAM_ONE_BUFFER,
                 kit.NO_OPTIMIZER_STATE, kit.COUNTS_NOT_BYTES)

    def make_inputs(self, case):
        return {
            "params": np.array(int(case["params"]), dtype=np.int64),
            "activations": np.array(int(case["activations"]), dtype=np.int64),
            "batch_size": np.array(int(case["batch_size"]), dtype=np.int64),
            "optimizer": np.array(str(case["optimizer"])),
            "bytes_per_value": np.array(int(case.get("bytes_per_value", 4)), dtype=np.int64),
        }

    def reference(self, inputs):
        from cs231n_lib.sizing import training_memory

        params, activations, batch, size = _memory_case(inputs, "params", "activations", "batch_size",
                                                        "bytes_per_value")
        memory = training_memory(params, activations, batch, str(inputs["optimizer"]), size)
        return {k: np.array(memory[k], dtype=np.int64) for k in kit.MEMORY_KEYS}

    def second_reference(self, inputs):
        return self._variant(inputs)

    def _variant(self, inputs, buffers=None, **switches):
        from cs231n_lib.sizing import OPTIMIZER_STATE

        params, activations, batch, size = _memory_case(inputs, "params", "activations", "batch_size",
                                                        "bytes_per_value")
        state = OPTIMIZER_STATE[str(inputs["optimizer"])] if buffers is None else buffers
        return _memory(params, activations, batch, state, size, **switches)

    def variants(self, case, inputs):
        optimizer = str(inputs["optimizer"])
        params, activations, batch, size = _memory_case(inputs, "params", "activations", "batch_size",
                                                        "bytes_per_value")
        from cs231n_lib.sizing import OPTIMIZER_STATE

        counts = _memory(params, activations, batch, OPTIMIZER_STATE[optimizer], 1)
        return [
            (kit.NO_ACTIVATION_GRADS, self._variant(inputs, act_grads=0)),
            (kit.NO_PARAM_GRADS, self._variant(inputs, param_grads=0)),
            (kit.NO_BATCH, self._variant(inputs, per_image=False) if batch != 1 else None),
            (kit.ADAM_ONE_BUFFER, self._variant(inputs, buffers=1) if optimizer == "adam" else None),
            (kit.NO_OPTIMIZER_STATE, self._variant(inputs, buffers=0) if OPTIMIZER_STATE[optimizer] else None),
            (kit.COUNTS_NOT_BYTES, counts if size != 1 else None),
        ]


@register
class LargestBatch(Trusted, kit.LargestBatch):
    catalogue = (kit.NO_ACTIVATION_GRADS, kit.ROUNDED_UP, kit.PARAMS_IGNORED, kit.NO_OPTIMIZER_STATE,
                 kit.ADAM_ONE_BUFFER)

    def make_inputs(self, case):
        return {
            "params": np.array(int(case["params"]), dtype=np.int64),
            "activations": np.array(int(case["activations"]), dtype=np.int64),
            "memory_bytes": np.array(int(case["memory_bytes"]), dtype=np.int64),
            "optimizer": np.array(str(case["optimizer"])),
            "bytes_per_value": np.array(int(case.get("bytes_per_value", 4)), dtype=np.int64),
        }

    def reference(self, inputs):
        from cs231n_lib.sizing import largest_batch

        params, activations, memory, size = _memory_case(inputs, "params", "activations", "memory_bytes",
                                                         "bytes_per_value")
        return {"batch_size": np.array(largest_batch(params, activations, memory, str(inputs["optimizer"]), size),
                                       dtype=np.int64)}

    def _batch(self, inputs, buffers=None, act_grads=1, fixed=True, up=False):
        from cs231n_lib.sizing import OPTIMIZER_STATE

        params, activations, memory, size = _memory_case(inputs, "params", "activations", "memory_bytes",
                                                         "bytes_per_value")
        state = OPTIMIZER_STATE[str(inputs["optimizer"])] if buffers is None else buffers
        room = memory - (size * (2 + state) * params if fixed else 0)
        per_image = size * (1 + act_grads) * activations
        if room < 0:
            return {"batch_size": np.array(0, dtype=np.int64)}
        n = -(-room // per_image) if up else room // per_image
        return {"batch_size": np.array(n, dtype=np.int64)}

    def second_reference(self, inputs):
        return self._batch(inputs)

    def variants(self, case, inputs):
        from cs231n_lib.sizing import OPTIMIZER_STATE

        optimizer = str(inputs["optimizer"])
        return [
            (kit.NO_ACTIVATION_GRADS, self._batch(inputs, act_grads=0)),
            (kit.ROUNDED_UP, self._batch(inputs, up=True)),
            (kit.PARAMS_IGNORED, self._batch(inputs, fixed=False)),
            (kit.NO_OPTIMIZER_STATE, self._batch(inputs, buffers=0) if OPTIMIZER_STATE[optimizer] else None),
            (kit.ADAM_ONE_BUFFER, self._batch(inputs, buffers=1) if optimizer == "adam" else None),
        ]


def _resnet_count(blocks, widths, num_classes, conv_bias=False, batchnorm=True, projection="needed", fc_bias=True):
    """ResNet parameters in closed form, block by block, with the mistakes' switches
    (projection: "needed", "never" or "always")."""
    def conv(C, K, F):
        return F * F * C * K + (K if conv_bias else 0) + (2 * K if batchnorm else 0)

    total = conv(3, widths[0], 7)
    C = widths[0]
    for stage, (repeats, K) in enumerate(zip(blocks, widths)):
        for i in range(repeats):
            stride = 2 if stage > 0 and i == 0 else 1
            total += conv(C, K, 3) + conv(K, K, 3)
            needed = stride != 1 or C != K
            if projection == "always" or (projection == "needed" and needed):
                total += conv(C, K, 1)
            C = K
    return total + C * num_classes + (num_classes if fc_bias else 0)


@register
class ResnetParams(Trusted, kit.ResnetParams):
    catalogue = (kit.CONV_BIASES, kit.NO_BATCHNORM, kit.NO_PROJECTION, kit.PROJECTION_EVERYWHERE, kit.NO_FC_BIAS)

    def make_inputs(self, case):
        blocks, widths = tuple(case["blocks"]), tuple(case["widths"])
        if len(blocks) != len(widths) or not blocks:
            raise ValueError(f"case blocks {blocks} and widths {widths} must have one entry per stage")
        return {"blocks": np.array(blocks, dtype=np.int64), "widths": np.array(widths, dtype=np.int64),
                "num_classes": np.array(int(case["num_classes"]), dtype=np.int64)}

    def _args(self, inputs):
        return ([int(b) for b in inputs["blocks"]], [int(w) for w in inputs["widths"]],
                int(np.asarray(inputs["num_classes"]).item()))

    def reference(self, inputs):
        from cs231n_lib.architectures import resnet

        blocks, widths, classes = self._args(inputs)
        return {"params": np.array(resnet(blocks=blocks, widths=widths, num_classes=classes).params, dtype=np.int64)}

    def second_reference(self, inputs):
        return {"params": np.array(_resnet_count(*self._args(inputs)), dtype=np.int64)}

    def variants(self, case, inputs):
        args = self._args(inputs)
        switches = [(kit.CONV_BIASES, {"conv_bias": True}), (kit.NO_BATCHNORM, {"batchnorm": False}),
                    (kit.NO_PROJECTION, {"projection": "never"}), (kit.PROJECTION_EVERYWHERE, {"projection": "always"}),
                    (kit.NO_FC_BIAS, {"fc_bias": False})]
        return [(hint, {"params": np.array(_resnet_count(*args, **s), dtype=np.int64)}) for hint, s in switches]


def _pattern_inputs(case):
    shape = tuple(int(v) for v in case["input_shape"])
    if len(shape) != 3:
        raise ValueError(f"case input_shape must be (H, W, D); found {case['input_shape']!r}")
    inputs = {"input_shape": np.array(shape, dtype=np.int64)}
    for key in ("N", "M", "K", "hidden", "num_classes"):
        inputs[key] = np.array(int(case[key]), dtype=np.int64)
    return inputs


def _normalised(spec):
    return np.array([layer.replace(" ", "").upper() for layer in spec], dtype=str)


def _pattern_list(shape, N, M, K, filters, hidden, classes, doubling=True, pool_each_conv=False):
    """The pattern's layers with the mistakes' switches (written out here, not the library's)."""
    H, W, D = shape
    spec = [f"INPUT {H}x{W}x{D}"]
    for group in range(M):
        width = filters * 2 ** group if doubling else filters
        spec += [f"CONV3-{width}", "POOL2"] * N if pool_each_conv else [f"CONV3-{width}"] * N + ["POOL2"]
    return spec + [f"FC-{hidden}"] * K + [f"FC-{classes}"]


@register
class PatternSpec(Trusted, kit.PatternSpec):
    catalogue = (kit.NO_DOUBLING, kit.POOL_PER_CONV)

    def make_inputs(self, case):
        inputs = _pattern_inputs(case)
        inputs["filters"] = np.array(int(case["filters"]), dtype=np.int64)
        return inputs

    def _args(self, inputs):
        shape, N, M, K, hidden, classes = kit._pattern_args(inputs)
        return shape, N, M, K, int(np.asarray(inputs["filters"]).item()), hidden, classes

    def reference(self, inputs):
        from cs231n_lib.sizing import pattern_spec

        return {"spec": _normalised(pattern_spec(*self._args(inputs)))}

    def second_reference(self, inputs):
        return {"spec": _normalised(_pattern_list(*self._args(inputs)))}

    def variants(self, case, inputs):
        args = self._args(inputs)
        return [(kit.NO_DOUBLING, {"spec": _normalised(_pattern_list(*args, doubling=False))}),
                (kit.POOL_PER_CONV, {"spec": _normalised(_pattern_list(*args, pool_each_conv=True))})]


@register
class WidestPattern(Trusted, kit.WidestPattern):
    catalogue = (kit.FIRST_OVER,)

    def make_inputs(self, case):
        inputs = _pattern_inputs(case)
        inputs["max_params"] = np.array(int(case["max_params"]), dtype=np.int64)
        return inputs

    def reference(self, inputs):
        from cs231n_lib.sizing import widest_pattern

        shape, N, M, K, hidden, classes = kit._pattern_args(inputs)
        budget = int(np.asarray(inputs["max_params"]).item())
        return {"filters": np.array(widest_pattern(shape, N, M, K, hidden, classes, budget), dtype=np.int64)}

    def _linear(self, inputs):
        """The widest filters by a plain upward walk (describe on each candidate)."""
        from cs231n_lib.sizing import describe

        shape, N, M, K, hidden, classes = kit._pattern_args(inputs)
        budget = int(np.asarray(inputs["max_params"]).item())
        filters = 0
        while describe(_pattern_list(shape, N, M, K, filters + 1, hidden, classes)).params <= budget:
            filters += 1
        return filters

    def second_reference(self, inputs):
        return {"filters": np.array(self._linear(inputs), dtype=np.int64)}

    def variants(self, case, inputs):
        return [(kit.FIRST_OVER, {"filters": np.array(self._linear(inputs) + 1, dtype=np.int64)})]


# ------------------------------------------------------------------------------------------
# Part 5: conv - spatial batchnorm - relu - pool - affine - softmax, and its training run

def _conv_bn_net_mistake(params, bn_param, X, y=None, reg=0.0, relu_first=False, test_mode=True, penalty=0.5,
                         reg_grads=True, regularise_all=False):
    """The network's loss written out with the mistakes' switches (the library's layers)."""
    from cs231n_lib.conv import conv_backward, conv_forward
    from cs231n_lib.layers import affine_backward, affine_forward, relu_backward, relu_forward, softmax_loss
    from cs231n_lib.normalization import spatial_batchnorm_backward, spatial_batchnorm_forward
    from cs231n_lib.pooling import max_pool_backward, max_pool_forward

    bn_param["mode"] = "test" if y is None and test_mode else "train"
    conv_param = {"stride": 1, "pad": (params["W1"].shape[2] - 1) // 2}
    pool = {"pool_height": 2, "pool_width": 2, "stride": 2}
    a, conv_cache = conv_forward(X, params["W1"], np.zeros(params["W1"].shape[0], dtype=X.dtype), conv_param)
    if relu_first:
        r0, relu_cache = relu_forward(a)
        r, bn_cache = spatial_batchnorm_forward(r0, params["gamma1"], params["beta1"], bn_param)
    else:
        an, bn_cache = spatial_batchnorm_forward(a, params["gamma1"], params["beta1"], bn_param)
        r, relu_cache = relu_forward(an)
    h, pool_cache = max_pool_forward(r, pool)
    scores, affine_cache = affine_forward(h, params["W2"], params["b2"])
    if y is None:
        return scores
    penalised = kit.NET_PARAMS if regularise_all else ("W1", "W2")
    data_loss, dscores = softmax_loss(scores, y)
    loss = data_loss + penalty * reg * sum(np.sum(params[k] * params[k]) for k in penalised)
    grads = {}
    dh, grads["W2"], grads["b2"] = affine_backward(dscores, affine_cache)
    dr = max_pool_backward(dh, pool_cache)
    if relu_first:
        dr0, grads["gamma1"], grads["beta1"] = spatial_batchnorm_backward(dr, bn_cache)
        da = relu_backward(dr0, relu_cache)
    else:
        dan = relu_backward(dr, relu_cache)
        da, grads["gamma1"], grads["beta1"] = spatial_batchnorm_backward(dan, bn_cache)
    _, grads["W1"], _ = conv_backward(da, conv_cache)
    if reg_grads:
        for k in penalised:
            grads[k] = grads[k] + reg * params[k]
    return loss, grads


@register
class ConvBnNetLoss(Trusted, kit.ConvBnNetLoss):
    catalogue = (kit.RELU_BEFORE_BN, kit.TEST_MODE_IGNORED, kit.NO_NET_PENALTY, kit.FULL_NET_PENALTY,
                 kit.NO_NET_REG_GRADIENT, kit.REGULARISED_ALL)

    def make_inputs(self, case):
        rng, dtype = self.rng(case), self.dtype_of(case)
        N, C, H, W = case["X"]
        if H % 2 or W % 2:
            raise ValueError(f"case X must have an even height and width (2x2 pooling); found {case['X']}")
        F, fs, K = int(case["num_filters"]), int(case["filter_size"]), int(case["num_classes"])
        flat = F * (H // 2) * (W // 2)
        inputs = {
            "X": rng.standard_normal((N, C, H, W)).astype(dtype),
            "W1": (np.sqrt(2.0 / (C * fs * fs)) * rng.standard_normal((F, C, fs, fs))).astype(dtype),
            "gamma1": (1 + 0.2 * rng.standard_normal(F)).astype(dtype),
            "beta1": (0.1 * rng.standard_normal(F)).astype(dtype),
            "W2": (np.sqrt(2.0 / flat) * rng.standard_normal((flat, K))).astype(dtype),
            "b2": (0.1 * rng.standard_normal(K)).astype(dtype),
            # running averages that differ from the batch's statistics, so that test mode shows
            "running_mean": (0.3 * rng.standard_normal(F)).astype(dtype),
            "running_var": rng.uniform(0.5, 2.0, F).astype(dtype),
        }
        inputs["y"] = rng.integers(0, K, size=N).astype(np.int64)
        inputs["reg"] = np.array(float(case.get("reg", 0.0)))
        inputs["momentum"] = np.array(0.9)
        return inputs

    def reference(self, inputs):
        from cs231n_lib.classifiers.cnn import conv_bn_net_loss

        return self.call({self.name: conv_bn_net_loss}, inputs)

    def second_reference(self, inputs):
        return self.call({self.name: _conv_bn_net_mistake}, inputs)

    def variants(self, case, inputs):
        from functools import partial

        reg = float(inputs["reg"])
        switches = [(kit.RELU_BEFORE_BN, {"relu_first": True}), (kit.TEST_MODE_IGNORED, {"test_mode": False}),
                    (kit.NO_NET_PENALTY, {"penalty": 0.0} if reg else None),
                    (kit.FULL_NET_PENALTY, {"penalty": 1.0} if reg else None),
                    (kit.NO_NET_REG_GRADIENT, {"reg_grads": False} if reg else None),
                    (kit.REGULARISED_ALL, {"regularise_all": True} if reg else None)]
        return [(hint, None if s is None else self.call({self.name: partial(_conv_bn_net_mistake, **s)}, inputs))
                for hint, s in switches]


def _training_data(case, rng):
    """``(X, y)`` of the case's dataset in a seeded order: the bundled digits (1 x 8 x 8, scaled
    to 0..1) or CIFAR-10's training batches (3 x 32 x 32, scaled to 0..1) when the case asks."""
    from cs231n_lib import data

    if case["data"] == "digits":
        images, labels = data.load_digits()
        X, y = images[:, None] / 16.0, labels
    elif case["data"] == "cifar10":
        folder = data.cifar10_folder()
        if not folder.exists():
            raise FileNotFoundError(f"a conv_bn_net_training case asks for CIFAR-10, which is not in {folder}: "
                                    f"run `{data.FETCH_COMMAND}`")
        X, y, _, _ = data.load_CIFAR10(folder)
        X = X / 255.0  # (N, 3, 32, 32) uint8 as stored
    else:
        raise ValueError(f"case data must be 'digits' or 'cifar10'; found {case['data']!r}")
    order = rng.permutation(len(y))
    return X[order], np.asarray(y)[order].astype(np.int64)


@register
class ConvBnNetTraining(Trusted, kit.ConvBnNetTraining):
    def make_inputs(self, case):
        rng, dtype = self.rng(case), self.dtype_of(case)
        X, y = _training_data(case, rng)
        n_train, n_val, steps, batch = (int(case[k]) for k in ("train", "val", "steps", "batch"))
        if n_train + n_val > len(y) or batch > n_train:
            raise ValueError(f"case asks for {n_train} + {n_val} images (batches of {batch}); the data has {len(y)}")
        mean = X[:n_train].mean(axis=0)
        F, fs, K = int(case["num_filters"]), int(case["filter_size"]), 10
        C, H, W = X.shape[1:]
        flat = F * (H // 2) * (W // 2)
        return {
            "X_train": (X[:n_train] - mean).astype(dtype), "y_train": y[:n_train],
            "X_val": (X[n_train:n_train + n_val] - mean).astype(dtype), "y_val": y[n_train:n_train + n_val],
            "W1": (np.sqrt(2.0 / (C * fs * fs)) * rng.standard_normal((F, C, fs, fs))).astype(dtype),
            "gamma1": np.ones(F, dtype=dtype), "beta1": np.zeros(F, dtype=dtype),
            "W2": (np.sqrt(1.0 / flat) * rng.standard_normal((flat, K))).astype(dtype),
            "b2": np.zeros(K, dtype=dtype),
            "batches": np.stack([rng.choice(n_train, batch, replace=False) for _ in range(steps)]).astype(np.int64),
            "learning_rate": np.array(float(case["learning_rate"])), "reg": np.array(float(case["reg"])),
            "target": np.array(float(case["target"])),
        }

    def reference_accuracy(self, inputs):
        """The validation accuracy the reference solution reaches on the case (the same run)."""
        from cs231n_lib.classifiers.cnn import conv_bn_net_loss

        return kit._adam_training(conv_bn_net_loss, inputs)

    def reference(self, inputs):
        target = float(inputs["target"])
        reached = self.reference_accuracy(inputs)
        if reached < target:
            raise ValueError(f"conv_bn_net_training: the reference reaches {reached:.3f} validation accuracy, below "
                             f"the case's target {target:.3f}: lower the target or change the case")
        return {"val_acc": np.array(target)}


# ------------------------------------------------------------------------------------------
# Part 7 (optional): a residual block

def _residual_mistake(x, params, bn_params, dout=None, shortcut="before_relu", final_relu=True,
                      dx_shortcut="masked"):
    """The block forward (and backward with ``dout``) with the mistakes' switches:
    shortcut "before_relu" (right), "after_relu" or "none"; dx_shortcut "masked" (right),
    "none" or "unmasked"."""
    from cs231n_lib.conv import conv_backward, conv_forward
    from cs231n_lib.layers import relu_backward, relu_forward
    from cs231n_lib.normalization import spatial_batchnorm_backward, spatial_batchnorm_forward

    conv_param = {"stride": 1, "pad": 1}
    zero = np.zeros(params["w1"].shape[0], dtype=x.dtype)
    a1, c1 = conv_forward(x, params["w1"], zero, conv_param)
    n1, b1 = spatial_batchnorm_forward(a1, params["gamma1"], params["beta1"], bn_params[0])
    h, r1 = relu_forward(n1)
    a2, c2 = conv_forward(h, params["w2"], zero, conv_param)
    n2, b2 = spatial_batchnorm_forward(a2, params["gamma2"], params["beta2"], bn_params[1])
    if shortcut == "after_relu":
        out = np.maximum(n2, 0) + x
        mask = n2 > 0
    else:
        s = n2 + x if shortcut == "before_relu" else n2
        out = np.maximum(s, 0) if final_relu else s
        mask = s > 0 if final_relu else np.ones_like(s, dtype=bool)
    if dout is None:
        return {"out": out}
    ds = dout * mask
    dn2, dgamma2, dbeta2 = spatial_batchnorm_backward(ds, b2)
    dh, dw2, _ = conv_backward(dn2, c2)
    dn1, dgamma1, dbeta1 = spatial_batchnorm_backward(relu_backward(dh, r1), b1)
    dx, dw1, _ = conv_backward(dn1, c1)
    dx = dx + {"masked": ds, "none": 0, "unmasked": dout}[dx_shortcut]
    grads = {"w1": dw1, "gamma1": dgamma1, "beta1": dbeta1, "w2": dw2, "gamma2": dgamma2, "beta2": dbeta2}
    return {"dx": dx, **{f"d{k}": v for k, v in grads.items()}}


class _ResidualInputs:
    def make_inputs(self, case):
        rng, dtype = self.rng(case), self.dtype_of(case)
        N, C, H, W = case["x"]
        inputs = {"x": rng.standard_normal((N, C, H, W)).astype(dtype)}
        for i in (1, 2):
            inputs[f"w{i}"] = (np.sqrt(2.0 / (9 * C)) * rng.standard_normal((C, C, 3, 3))).astype(dtype)
            inputs[f"gamma{i}"] = (1 + 0.2 * rng.standard_normal(C)).astype(dtype)
            inputs[f"beta{i}"] = (0.1 * rng.standard_normal(C)).astype(dtype)
        inputs["dout"] = rng.standard_normal((N, C, H, W)).astype(dtype)
        return inputs

    def _run(self, inputs, backward, **switches):
        x, params, bn_params = kit._residual_args(inputs)
        outputs = _residual_mistake(x, params, bn_params, inputs["dout"].copy() if backward else None, **switches)
        return outputs if backward else {"out": outputs["out"]}


@register
class ResidualBlockForward(_ResidualInputs, Trusted, kit.ResidualBlockForward):
    catalogue = (kit.SHORTCUT_AFTER_RELU, kit.NO_FINAL_RELU, kit.NO_SHORTCUT)

    def reference(self, inputs):
        from cs231n_lib.layer_utils import residual_block_forward

        return self.call({self.name: residual_block_forward}, inputs)

    def second_reference(self, inputs):
        return self._run(inputs, False)

    def variants(self, case, inputs):
        return [(kit.SHORTCUT_AFTER_RELU, self._run(inputs, False, shortcut="after_relu")),
                (kit.NO_FINAL_RELU, self._run(inputs, False, final_relu=False)),
                (kit.NO_SHORTCUT, self._run(inputs, False, shortcut="none"))]


@register
class ResidualBlockBackward(_ResidualInputs, Trusted, kit.ResidualBlockBackward):
    catalogue = (kit.NO_SHORTCUT_GRADIENT, kit.UNMASKED_SHORTCUT_GRADIENT)

    def reference(self, inputs):
        from cs231n_lib.layer_utils import residual_block_backward, residual_block_forward

        return self.call({"residual_block_forward": residual_block_forward,
                          "residual_block_backward": residual_block_backward}, inputs)

    def second_reference(self, inputs):
        return self._run(inputs, True)

    def variants(self, case, inputs):
        return [(kit.NO_SHORTCUT_GRADIENT, self._run(inputs, True, dx_shortcut="none")),
                (kit.UNMASKED_SHORTCUT_GRADIENT, self._run(inputs, True, dx_shortcut="unmasked"))]
