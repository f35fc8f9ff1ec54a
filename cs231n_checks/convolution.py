"""Visible checks of notebook 1 (convolution, naive): how the student's functions are called."""

import numpy as np

from .base import Check, register

FLOAT_SIZE = ("the size is a float (the / operator): return an int, e.g. (W - F + 2 * P) // S + 1 once you "
              "know that S divides W - F + 2P")


def conv_param_of(check, inputs):
    param = {"stride": check.scalar(inputs, "stride"), "pad": check.scalar(inputs, "pad")}
    if check.scalar(inputs, "dilation") != 1:
        param["dilation"] = check.scalar(inputs, "dilation")
    return param


@register
class ConvOutputSize(Check):
    """conv_output_size(W, F, S, P) -> int, raising ValueError for impossible settings.

    Case: {"W": 10, "F": 3, "S": 2, "P": 0}

    Outputs: "size" (the int, -1 when a ValueError was raised), "error" ("ValueError" or
    "none") and "type" ("int", or the type name the student returned), so that a missing or
    spurious ValueError, or a float where an int belongs, reads plainly in the verdict.
    """

    name = "conv_output_size"
    ARGS = ("W", "F", "S", "P")

    def describe(self, case):
        return ", ".join(f"{k}={case[k]}" for k in self.ARGS)

    def tolerance_for(self, case):
        return 0.0

    fixed_hints = (FLOAT_SIZE,)
    #: a size is one number: where the difference sits or a scale factor would say nothing
    vector_outputs = ()

    def extra_hints(self, case, inputs, expected, found):
        """A float where an int belongs (seen from the type the student's function returned)."""
        kind = found.get("type")
        if kind is not None and np.asarray(kind).dtype.kind == "U" and str(np.asarray(kind).item()) in (
                "float", "float64", "float32"):
            return [FLOAT_SIZE]
        return []

    @staticmethod
    def raised():
        return {"size": np.array(-1), "error": np.array("ValueError"), "type": np.array("none")}

    def call(self, namespace, inputs):
        fn = self.student(namespace, self.name)
        args = [self.scalar(inputs, k) for k in self.ARGS]
        try:
            size = fn(*args)
        except ValueError:
            return self.raised()
        found = {"error": np.array("none"), "type": np.array(type(size).__name__)}
        if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
            found.update(size=np.array(int(size)), type=np.array("int"))
        elif isinstance(size, (float, np.floating)):
            found["size"] = np.array(float(size))
        else:
            found["size"] = np.array(-1)
        return found


@register
class ConvForwardNaive(Check):
    """conv_forward_naive(x, w, b, conv_param) -> (out, cache).

    Case: {"x": (N, C, H, W), "w": (F, C, HH, WW), "stride": 1, "pad": 0, "seed": 0}
    """

    name = "conv_forward_naive"

    def call(self, namespace, inputs):
        fn = self.student(namespace, self.name)
        out, _ = fn(inputs["x"], inputs["w"], inputs["b"], conv_param_of(self, inputs))
        return {"out": out}


@register
class ConvBackwardNaive(Check):
    """conv_backward_naive(dout, cache) -> (dx, dw, db), the cache coming from the student's forward.

    Case: as for conv_forward_naive.
    """

    name = "conv_backward_naive"
    requires = ("conv_forward_naive", "conv_backward_naive")

    def call(self, namespace, inputs):
        forward = self.student(namespace, "conv_forward_naive")
        backward = self.student(namespace, "conv_backward_naive")
        _, cache = forward(inputs["x"], inputs["w"], inputs["b"], conv_param_of(self, inputs))
        dx, dw, db = backward(inputs["dout"], cache)
        return {"dx": dx, "dw": dw, "db": db}


@register
class ConvForwardDilated(Check):
    """The optional part: conv_forward_naive with conv_param['dilation'] (>= 2 in the cases).

    Case: as for conv_forward_naive, plus "dilation": d.
    """

    name = "conv_forward_dilated"
    requires = ("conv_forward_naive",)

    def call(self, namespace, inputs):
        fn = self.student(namespace, "conv_forward_naive")
        out, _ = fn(inputs["x"], inputs["w"], inputs["b"], conv_param_of(self, inputs))
        return {"out": out}
