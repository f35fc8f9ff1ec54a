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
