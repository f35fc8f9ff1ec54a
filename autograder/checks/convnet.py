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
