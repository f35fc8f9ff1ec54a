"""Visible checks of notebook 5 (convnet): sizing a network, receptive fields, FC->CONV conversion and
the three-layer ConvNet's loss and gradients.

The sizing checks get their network as a NumPy string array (``np.array(list_of_layer_strings)``)
so that only plain arrays cross into the student's kernel; they return per-layer counts as
1-D integer arrays (one entry per layer, the INPUT row first).
"""

import numpy as np

from .base import Check, register

PARAM_NAMES = ("W1", "b1", "W2", "b2", "W3", "b3")

NO_JUMP = ("each layer adds (F - 1) times the product of the strides of the layers below it "
           "(the jump), not just F - 1")
OWN_STRIDE = ("a layer's own stride does not widen its own window: multiply by the strides of "
              "the layers below it only")
REVERSED_ORDER = "the windows are listed first layer first (the one reading the image)"
NO_TRANSPOSE = ("W_fc has one column per output neuron: filter k is column k of W_fc reshaped to "
                "(C, H, W), so transpose before reshaping")
NO_PENALTY = "the loss has no regularisation term: add 0.5 * reg * (sum of the squared weights W1, W2, W3)"
FULL_PENALTY = "the penalty is 0.5 * reg * sum(W ** 2) (the 0.5 makes its gradient reg * W)"
NO_REG_GRADIENT = "the weight gradients lack the regularisation term reg * W"
REGULARISED_BIASES = "biases are not regularised: their gradients have no reg * b term"


def _exact(case):
    """Counts are integers: any difference is a mistake."""
    return 0.0


def _spec_of(inputs):
    return [str(layer) for layer in np.asarray(inputs["spec"]).reshape(-1)]


def _spec_text(case):
    return " -> ".join(case["spec"])


@register
class SizeNetwork(Check):
    """size_network(spec) -> dict with per-layer "shapes", "weights", "biases" and the totals
    "params" and "activations"; raises ValueError when a layer does not fit its input.

    Case: {"spec": ("INPUT 32x32x3", "CONV3-16", "POOL2", "FC-10")}
    """

    name = "size_network"
    tolerance_for = staticmethod(_exact)

    def describe(self, case):
        return f"spec {_spec_text(case)}"

    def call(self, namespace, inputs):
        fn = self.student(namespace, self.name)
        try:
            result = fn(_spec_of(inputs))
        except ValueError:
            return {"raised": np.array("ValueError")}
        if not isinstance(result, dict):
            raise TypeError(f"size_network must return a dict; found {type(result).__name__}")
        missing = [k for k in ("shapes", "weights", "biases", "params", "activations") if k not in result]
        if missing:
            raise KeyError(f"the dict returned by size_network has no {', '.join(map(repr, missing))}")
        shapes = []
        for shape in result["shapes"]:
            shape = tuple(shape)
            if len(shape) == 1:  # an FC written as (K,) is the notes' [1x1xK]
                shape = (1, 1) + shape
            if len(shape) != 3:
                raise ValueError(f"every entry of 'shapes' must be (H, W, D); found {shape!r}")
            shapes.append(shape)
        out = {"raised": np.array("")}
        for axis, key in enumerate(("height", "width", "depth")):
            out[key] = np.array([s[axis] for s in shapes])
        for key in ("weights", "biases"):
            out[key] = np.asarray(result[key])
        out["params"] = np.asarray(result["params"])
        out["activations"] = np.asarray(result["activations"])
        return out

    # its hints name the case's layers and their count: never shown for hidden cases
    def extra_hints(self, case, inputs, expected, found):
        """Name the first layer whose output shape differs (never the expected numbers)."""
        if str(found.get("raised", "")) != "" or str(expected.get("raised", "")) != "":
            return []
        layers = list(case["spec"])
        for key in ("height", "width", "depth"):
            want, got = np.asarray(expected[key]), np.asarray(found.get(key))
            if got.shape != want.shape:
                return [f"'shapes' must have one entry per layer, the INPUT row first ({len(layers)} here)"]
        for index, layer in enumerate(layers):
            if any(int(np.asarray(found[k])[index]) != int(np.asarray(expected[k])[index])
                   for k in ("height", "width", "depth")):
                return [f"the first wrong output shape is that of layer {index + 1} ({layer}); "
                        "the layers before it are right"]
        return []


@register
class ReceptiveField(Check):
    """receptive_field(windows) -> int, the receptive field of a neuron on top of a stack of
    CONV/POOL windows given as (F, S) pairs, first layer first.

    Case: {"windows": ((3, 1), (3, 1), (2, 2))}
    """

    name = "receptive_field"
    tolerance_for = staticmethod(_exact)

    def describe(self, case):
        windows = ", ".join(f"F={F} S={S}" for F, S in case["windows"]) or "no layers"
        return f"windows [{windows}]"

    def call(self, namespace, inputs):
        fn = self.student(namespace, self.name)
        windows = [(int(F), int(S)) for F, S in inputs["windows"]]
        r = fn(windows)
        if isinstance(r, float) and r.is_integer():
            r = int(r)
        return {"r": np.asarray(r)}

    fixed_hints = (NO_JUMP, OWN_STRIDE, REVERSED_ORDER)


@register
class FcToConv(Check):
    """fc_to_conv(W_fc, b_fc, C, H, W) -> (w, b): the conv filters (K, C, H, W) and biases (K,)
    of a conv layer equivalent to an FC layer reading a C x H x W volume.

    Case: {"C": 2, "H": 3, "W": 3, "K": 4, "seed": 0}
    """

    name = "fc_to_conv"

    def describe(self, case):
        C, H, W, K = (case[k] for k in ("C", "H", "W", "K"))
        return f"FC ({C * H * W}, {K}) reading a {C}x{H}x{W} volume, {case.get('dtype', 'float64')}"

    def call(self, namespace, inputs):
        fn = self.student(namespace, self.name)
        C, H, W = (self.scalar(inputs, k) for k in ("C", "H", "W"))
        w, b = fn(inputs["W_fc"], inputs["b_fc"], C, H, W)
        return {"w": w, "b": b}

    fixed_hints = (NO_TRANSPOSE,)

    def extra_hints(self, case, inputs, expected, found):
        """Recognise a reshape of W_fc without the transpose (rows of W_fc are inputs, not outputs)."""
        w = found.get("w")
        if not isinstance(w, np.ndarray) or w.shape != np.shape(expected["w"]) or w.dtype.kind != "f":
            return []
        if np.allclose(w, inputs["W_fc"].reshape(w.shape), rtol=0, atol=1e-6 * (1 + np.abs(w).max())):
            return [NO_TRANSPOSE]
        return []


def _with_gradients(result, names, what, first):
    """``(first value, grads)`` of a student's ``(value, grads)`` result, where ``grads`` must hold a
    gradient for every parameter in ``names``; a clear error says what was expected otherwise."""
    if not (isinstance(result, tuple) and len(result) == 2):
        raise TypeError(f"{what} must return ({first}, grads)")
    value, grads = result
    missing = [name for name in names if name not in grads]
    if missing:
        raise KeyError(f"grads has no {', '.join(map(repr, missing))}: give one gradient per parameter")
    return value, grads


@register
class ThreeLayerConvNetLoss(Check):
    """three_layer_convnet_loss(params, X, y=None, reg=0.0): scores when y is None, otherwise
    (loss, grads) of conv - relu - 2x2 max pool - affine - relu - affine - softmax.

    Case: {"X": (N, C, H, W), "num_filters": 4, "filter_size": 3, "hidden_dim": 10,
           "num_classes": 5, "reg": 0.1, "seed": 0}   (H and W even)
    """

    name = "three_layer_convnet_loss"

    def describe(self, case):
        fs = case["filter_size"]
        return (
            f"X {tuple(case['X'])}, {case['num_filters']} filters {fs}x{fs}, hidden {case['hidden_dim']}, "
            f"{case['num_classes']} classes, reg={case.get('reg', 0.0)}, {case.get('dtype', 'float64')}"
        )

    fixed_hints = (NO_PENALTY, FULL_PENALTY, NO_REG_GRADIENT, REGULARISED_BIASES)

    def extra_hints(self, case, inputs, expected, found):
        """Recognise the regularisation slips: a missing or full (not half) penalty in the loss,
        a missing reg * W in the weight gradients, regularised biases."""
        reg = float(case.get("reg", 0.0))
        if reg == 0.0:
            return []
        penalty = 0.5 * reg * sum(float(np.sum(inputs[n].astype(np.float64) ** 2)) for n in ("W1", "W2", "W3"))
        tol = self.tolerance_for(case)

        def close(value, target):
            try:
                value = np.asarray(value, dtype=np.float64)
            except (TypeError, ValueError):
                return False
            target = np.asarray(target, dtype=np.float64)
            if value.shape != target.shape:
                return False
            return float(np.max(np.abs(value - target), initial=0.0)) <= tol * max(1.0, float(np.max(np.abs(target), initial=0.0)))

        hints = []
        loss = float(np.asarray(expected["loss"]))
        if close(found.get("loss"), loss - penalty):
            hints.append(NO_PENALTY)
        elif close(found.get("loss"), loss + penalty):
            hints.append(FULL_PENALTY)
        if all(close(found.get(f"dW{i}"), expected[f"dW{i}"] - reg * inputs[f"W{i}"]) for i in (1, 2, 3)):
            hints.append(NO_REG_GRADIENT)
        if any(close(found.get(f"db{i}"), expected[f"db{i}"] + reg * inputs[f"b{i}"]) for i in (1, 2, 3)):
            hints.append(REGULARISED_BIASES)
        return hints

    def call(self, namespace, inputs):
        fn = self.student(namespace, self.name)
        X, y, reg = inputs["X"], inputs["y"], float(inputs["reg"])
        scores = fn({name: inputs[name].copy() for name in PARAM_NAMES}, X.copy())
        result = fn({name: inputs[name].copy() for name in PARAM_NAMES}, X.copy(), y.copy(), reg)
        loss, grads = _with_gradients(result, PARAM_NAMES, "with labels y, three_layer_convnet_loss", "loss")
        out = {"scores": scores, "loss": np.asarray(loss)}
        out.update({f"d{name}": grads[name] for name in PARAM_NAMES})
        return out


# ------------------------------------------------------------------------------------------
# Memory budgets, named architectures and designs under a budget (Part 3)

MEMORY_KEYS = ("activations", "activation_grads", "params", "param_grads", "optimizer_state", "total")
NO_ACTIVATION_GRADS = ("the backward pass keeps one gradient per activation, as many numbers as the activations: "
                       "count them too")
NO_PARAM_GRADS = "every parameter gets a gradient of its own size: count the parameter gradients too"
NO_BATCH = "the activations (and their gradients) are per image: multiply them by the batch size"
ADAM_ONE_BUFFER = "Adam keeps two arrays the size of the parameters (the first and second moments), not one"
NO_OPTIMIZER_STATE = ("momentum, RMSProp and Adagrad keep one array the size of the parameters between steps "
                      "(Adam two): count the optimizer's state")
COUNTS_NOT_BYTES = "the results are bytes: multiply the numbers of values by bytes_per_value"
ROUNDED_UP = "the batch must fit: round the number of images down, not up or to the nearest"
PARAMS_IGNORED = "the parameters, their gradients and the optimizer state take their share before any image"
CONV_BIASES = ("ResNet's convolutions have no bias (the batchnorm after each one has a beta that would "
               "cancel it): count F*F*C*K weights per conv")
NO_BATCHNORM = "each batchnorm layer has two parameters per channel (gamma and beta): count them"
NO_PROJECTION = ("a block that changes the channels or halves the size needs a 1x1 conv (with its batchnorm) on "
                 "the shortcut: count it where the stage starts, except the first stage")
PROJECTION_EVERYWHERE = "only the first block of a stage that changes the size or channels has a projection shortcut"
NO_FC_BIAS = "the last FC layer has one bias per class too"
NO_DOUBLING = "the filters double from one group to the next: filters, 2*filters, 4*filters, ..."
POOL_PER_CONV = "a group is N CONV3 layers followed by one POOL2, not a POOL2 after every CONV"
FIRST_OVER = "return the widest network within the budget, not the first one over it"


def _ints(inputs, *keys):
    return [int(np.asarray(inputs[k]).item()) for k in keys]


@register
class TrainingMemory(Check):
    """training_memory(params, activations, batch_size, optimizer, bytes_per_value) -> dict of
    bytes: activations, activation_grads, params, param_grads, optimizer_state, total.

    Case: {"params": 138357544, "activations": 15237608, "batch_size": 32, "optimizer": "adam",
           "bytes_per_value": 4}
    """

    name = "training_memory"
    tolerance_for = staticmethod(_exact)
    fixed_hints = (NO_ACTIVATION_GRADS, NO_PARAM_GRADS, NO_BATCH, ADAM_ONE_BUFFER, NO_OPTIMIZER_STATE,
                   COUNTS_NOT_BYTES)

    def describe(self, case):
        return (f"{case['params']:,} parameters, {case['activations']:,} activations per image, batch "
                f"{case['batch_size']}, {case['optimizer']}, {case.get('bytes_per_value', 4)} bytes per value")

    def call(self, namespace, inputs):
        fn = self.student(namespace, self.name)
        params, activations, batch, size = _ints(inputs, "params", "activations", "batch_size", "bytes_per_value")
        result = fn(params, activations, batch, str(inputs["optimizer"]), size)
        if not isinstance(result, dict):
            raise TypeError(f"training_memory must return a dict; found {type(result).__name__}")
        return {key: np.asarray(result[key]) for key in MEMORY_KEYS if key in result}


@register
class LargestBatch(Check):
    """largest_batch(params, activations, memory_bytes, optimizer, bytes_per_value) -> int, the
    largest batch whose training memory fits (0 when none does).

    Case: {"params": 11689512, "activations": 6072808, "memory_bytes": 8 * 2**30,
           "optimizer": "momentum", "bytes_per_value": 4}
    """

    name = "largest_batch"
    tolerance_for = staticmethod(_exact)
    fixed_hints = (NO_ACTIVATION_GRADS, ROUNDED_UP, PARAMS_IGNORED, NO_OPTIMIZER_STATE, ADAM_ONE_BUFFER)

    def describe(self, case):
        return (f"{case['params']:,} parameters, {case['activations']:,} activations per image, "
                f"{case['memory_bytes']:,} bytes, {case['optimizer']}, {case.get('bytes_per_value', 4)} bytes per value")

    def call(self, namespace, inputs):
        fn = self.student(namespace, self.name)
        params, activations, memory, size = _ints(inputs, "params", "activations", "memory_bytes", "bytes_per_value")
        n = fn(params, activations, memory, str(inputs["optimizer"]), size)
        if isinstance(n, float) and n.is_integer():
            n = int(n)
        return {"batch_size": np.asarray(n)}


@register
class ResnetParams(Check):
    """resnet_params(blocks, widths, num_classes) -> int, the parameters of a ResNet of basic
    blocks (torchvision's layout: 7x7 stem, batchnorm after every conv, projection shortcuts).

    Case: {"blocks": (2, 2, 2, 2), "widths": (64, 128, 256, 512), "num_classes": 1000}
    """

    name = "resnet_params"
    tolerance_for = staticmethod(_exact)
    fixed_hints = (CONV_BIASES, NO_BATCHNORM, NO_PROJECTION, PROJECTION_EVERYWHERE, NO_FC_BIAS)

    def describe(self, case):
        return f"blocks {tuple(case['blocks'])}, widths {tuple(case['widths'])}, {case['num_classes']} classes"

    def call(self, namespace, inputs):
        fn = self.student(namespace, self.name)
        blocks = tuple(int(b) for b in inputs["blocks"])
        widths = tuple(int(w) for w in inputs["widths"])
        n = fn(blocks, widths, int(np.asarray(inputs["num_classes"]).item()))
        if isinstance(n, float) and n.is_integer():
            n = int(n)
        return {"params": np.asarray(n)}


def _pattern_args(inputs):
    shape = tuple(int(v) for v in inputs["input_shape"])
    N, M, K, hidden, classes = _ints(inputs, "N", "M", "K", "hidden", "num_classes")
    return shape, N, M, K, hidden, classes


def _pattern_text(case):
    H, W, D = case["input_shape"]
    return (f"INPUT {H}x{W}x{D}, N={case['N']}, M={case['M']}, K={case['K']}, hidden {case['hidden']}, "
            f"{case['num_classes']} classes")


@register
class PatternSpec(Check):
    """pattern_spec(input_shape, N, M, K, filters, hidden, num_classes) -> list of layer strings
    for INPUT -> [[CONV3 -> RELU]*N -> POOL2]*M -> [FC -> RELU]*K -> FC, the filters doubling
    from group to group.

    Case: {"input_shape": (32, 32, 3), "N": 2, "M": 2, "K": 1, "filters": 16, "hidden": 100,
           "num_classes": 10}
    """

    name = "pattern_spec"
    fixed_hints = (NO_DOUBLING, POOL_PER_CONV)

    def describe(self, case):
        return _pattern_text(case) + f", {case['filters']} filters first"

    def call(self, namespace, inputs):
        fn = self.student(namespace, self.name)
        shape, N, M, K, hidden, classes = _pattern_args(inputs)
        spec = fn(shape, N, M, K, int(np.asarray(inputs["filters"]).item()), hidden, classes)
        return {"spec": np.array([str(layer).replace(" ", "").upper() for layer in spec], dtype=str)}


@register
class WidestPattern(Check):
    """widest_pattern(input_shape, N, M, K, hidden, num_classes, max_params) -> int, the largest
    first-group filter count whose pattern_spec network has at most max_params parameters (0 if none).

    Case: {"input_shape": (32, 32, 3), "N": 2, "M": 3, "K": 1, "hidden": 256, "num_classes": 10,
           "max_params": 1000000}
    """

    name = "widest_pattern"
    tolerance_for = staticmethod(_exact)
    fixed_hints = (FIRST_OVER,)

    def describe(self, case):
        return _pattern_text(case) + f", at most {case['max_params']:,} parameters"

    def call(self, namespace, inputs):
        fn = self.student(namespace, self.name)
        shape, N, M, K, hidden, classes = _pattern_args(inputs)
        n = fn(shape, N, M, K, hidden, classes, int(np.asarray(inputs["max_params"]).item()))
        if isinstance(n, float) and n.is_integer():
            n = int(n)
        return {"filters": np.asarray(n)}


# ------------------------------------------------------------------------------------------
# Part 5: a network of your own layers (conv - spatial batchnorm - relu - pool - affine -
# softmax), trained to a target; Part 7 (optional): a residual block

NET_PARAMS = ("W1", "gamma1", "beta1", "W2", "b2")
RELU_BEFORE_BN = "the order is conv -> spatial batchnorm -> ReLU -> pool: batchnorm comes before the ReLU"
TEST_MODE_IGNORED = ("without labels the batchnorm runs in test mode (bn_param['mode'] = 'test'): the scores use "
                     "the running averages, not the statistics of the batch")
NO_NET_PENALTY = "the loss has no regularisation term: add 0.5 * reg * (sum of the squared weights W1 and W2)"
FULL_NET_PENALTY = "the penalty is 0.5 * reg * sum(W ** 2) (the 0.5 makes its gradient reg * W)"
NO_NET_REG_GRADIENT = "the gradients of W1 and W2 lack the regularisation term reg * W"
REGULARISED_ALL = "only the weights W1 and W2 are regularised: no penalty on b2, gamma1 or beta1"
BELOW_TARGET = ("the network trained with your conv_bn_net_loss stays below the target: make conv_bn_net_loss "
                "pass its own check first (the reference network, trained the same way on these very inputs, "
                "reaches the target)")


def _net_call(fn, inputs, bn_param, y=None):
    params = {name: np.array(inputs[name], copy=True) for name in NET_PARAMS}
    if y is None:
        return fn(params, bn_param, inputs["X"].copy())
    return fn(params, bn_param, inputs["X"].copy(), y.copy(), float(inputs["reg"]))


def _bn_param(inputs):
    return {"momentum": float(inputs["momentum"]), "running_mean": inputs["running_mean"].copy(),
            "running_var": inputs["running_var"].copy()}


@register
class ConvBnNetLoss(Check):
    """conv_bn_net_loss(params, bn_param, X, y=None, reg=0.0): scores (test mode) when y is None,
    otherwise (loss, grads) in train mode, updating bn_param's running averages.

    Case: {"X": (N, C, H, W), "num_filters": 3, "filter_size": 3, "num_classes": 5, "reg": 0.1,
           "seed": 0}   (H and W even)
    """

    name = "conv_bn_net_loss"

    def describe(self, case):
        fs = case["filter_size"]
        return (f"X {tuple(case['X'])}, {case['num_filters']} filters {fs}x{fs}, {case['num_classes']} classes, "
                f"reg={case.get('reg', 0.0)}, {case.get('dtype', 'float64')}")

    def call(self, namespace, inputs):
        fn = self.student(namespace, self.name)
        train_bn = _bn_param(inputs)
        result = _net_call(fn, inputs, train_bn, inputs["y"])
        loss, grads = _with_gradients(result, NET_PARAMS, "with labels y, conv_bn_net_loss", "loss")
        scores = _net_call(fn, inputs, _bn_param(inputs))
        out = {"scores": scores, "loss": np.asarray(loss)}
        out.update({f"d{name}": grads[name] for name in NET_PARAMS})
        out["running_mean"], out["running_var"] = train_bn.get("running_mean"), train_bn.get("running_var")
        return out


def _adam_training(fn, inputs):
    """Train ``fn``'s network from the case's starting weights with Adam on the case's minibatches
    (one row of indices per step), then return its validation accuracy (test-mode batchnorm)."""
    params = {name: np.array(inputs[name], copy=True) for name in NET_PARAMS}
    bn_param = {"momentum": 0.9}
    lr, reg = float(inputs["learning_rate"]), float(inputs["reg"])
    first = {k: np.zeros_like(v) for k, v in params.items()}
    second = {k: np.zeros_like(v) for k, v in params.items()}
    X, y = inputs["X_train"], inputs["y_train"]
    for t, rows in enumerate(inputs["batches"], 1):
        _, grads = fn(params, bn_param, X[rows].copy(), y[rows].copy(), reg)
        for k in params:
            first[k] = 0.9 * first[k] + 0.1 * grads[k]
            second[k] = 0.999 * second[k] + 0.001 * grads[k] ** 2
            step = (first[k] / (1 - 0.9 ** t)) / (np.sqrt(second[k] / (1 - 0.999 ** t)) + 1e-8)
            params[k] = (params[k] - lr * step).astype(params[k].dtype)
    scores = np.asarray(fn(params, bn_param, inputs["X_val"].copy()))
    return float(np.mean(np.argmax(scores, axis=1) == inputs["y_val"]))


@register
class ConvBnNetTraining(Check):
    """Trains the network of conv_bn_net_loss (the student's) for a fixed number of Adam steps on
    fixed minibatches and reports min(validation accuracy, target): the reference gives the
    target, so any accuracy at or above it passes.

    Case: {"data": "digits", "train": 300, "val": 200, "num_filters": 8, "filter_size": 3,
           "steps": 60, "batch": 50, "learning_rate": 0.01, "reg": 0.001, "target": 0.85, "seed": 0}
    """

    name = "conv_bn_net_training"
    requires = ("conv_bn_net_loss",)
    tolerance_for = staticmethod(_exact)
    fixed_hints = (BELOW_TARGET,)

    def describe(self, case):
        fs = case["filter_size"]
        return (f"{case['train']} training and {case['val']} validation images ({case['data']}), "
                f"{case['num_filters']} filters {fs}x{fs}, {case['steps']} Adam steps of {case['batch']}, "
                f"learning rate {case['learning_rate']}, reg={case['reg']}: "
                f"validation accuracy at least {case['target']:.0%}")

    def call(self, namespace, inputs):
        fn = self.student(namespace, "conv_bn_net_loss")
        accuracy = _adam_training(fn, inputs)
        return {"val_acc": np.asarray(min(accuracy, float(inputs["target"])))}

    def extra_hints(self, case, inputs, expected, found):
        return [BELOW_TARGET]


RESIDUAL_PARAMS = ("w1", "gamma1", "beta1", "w2", "gamma2", "beta2")
SHORTCUT_AFTER_RELU = ("the shortcut joins before the last ReLU: out = ReLU(BN2(conv2(...)) + x), not "
                       "ReLU(BN2(conv2(...))) + x")
NO_FINAL_RELU = "the block ends with a ReLU of the sum: out = ReLU(BN2(conv2(...)) + x)"
NO_SHORTCUT = "the block adds its input x to BN2's output (the shortcut) before the last ReLU"
NO_SHORTCUT_GRADIENT = ("x reaches the output twice, through the convolutions and through the shortcut: dx is the "
                        "sum of both paths' gradients")
UNMASKED_SHORTCUT_GRADIENT = ("the shortcut's gradient is the gradient of the sum, after the last ReLU's mask, "
                              "not dout itself")


def _residual_args(inputs):
    params = {name: np.array(inputs[name], copy=True) for name in RESIDUAL_PARAMS}
    bn_params = [{"mode": "train", "momentum": 0.9}, {"mode": "train", "momentum": 0.9}]
    return inputs["x"].copy(), params, bn_params


def _describe_block(case):
    return f"x {tuple(case['x'])}, two 3x3 convs of {case['x'][1]} filters, {case.get('dtype', 'float64')}"


@register
class ResidualBlockForward(Check):
    """residual_block_forward(x, params, bn_params) -> (out, cache): ResNet's basic block with an
    identity shortcut, batchnorm in train mode.

    Case: {"x": (N, C, H, W), "seed": 0}
    """

    name = "residual_block_forward"
    fixed_hints = (SHORTCUT_AFTER_RELU, NO_FINAL_RELU, NO_SHORTCUT)

    def describe(self, case):
        return _describe_block(case)

    def call(self, namespace, inputs):
        fn = self.student(namespace, self.name)
        out, _ = fn(*_residual_args(inputs))
        return {"out": out}


@register
class ResidualBlockBackward(Check):
    """residual_block_backward(dout, cache) -> (dx, grads), the cache from the student's own
    residual_block_forward on the same inputs.

    Case: {"x": (N, C, H, W), "seed": 0}
    """

    name = "residual_block_backward"
    requires = ("residual_block_forward", "residual_block_backward")
    fixed_hints = (NO_SHORTCUT_GRADIENT, UNMASKED_SHORTCUT_GRADIENT)

    def describe(self, case):
        return _describe_block(case)

    def call(self, namespace, inputs):
        forward = self.student(namespace, "residual_block_forward")
        backward = self.student(namespace, self.name)
        _, cache = forward(*_residual_args(inputs))
        result = backward(inputs["dout"].copy(), cache)
        dx, grads = _with_gradients(result, RESIDUAL_PARAMS, "residual_block_backward", "dx")
        out = {"dx": dx}
        out.update({f"d{name}": grads[name] for name in RESIDUAL_PARAMS})
        return out
