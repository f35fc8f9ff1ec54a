"""Trusted checks of notebook 1 (convolution, naive): inputs and references."""

import numpy as np

from cs231n_checks import convolution as kit
from cs231n_checks.convolution import conv_param_of

from .base import Trusted, register


def conv_case_inputs(check, case):
    """x, w, b and the hyperparameters of a convolution case, all as arrays."""
    rng, dtype = check.rng(case), check.dtype_of(case)
    x = rng.standard_normal(case["x"]).astype(dtype)
    w = rng.standard_normal(case["w"]).astype(dtype)
    b = rng.standard_normal(case["w"][0]).astype(dtype)
    return {
        "x": x, "w": w, "b": b,
        "stride": np.array(case.get("stride", 1)), "pad": np.array(case.get("pad", 0)),
        "dilation": np.array(case.get("dilation", 1)),
    }


def conv_reference(check, inputs):
    from cs231n_lib import conv_forward

    return conv_forward(inputs["x"], inputs["w"], inputs["b"], conv_param_of(check, inputs))


def conv_backward_inputs(check, case):
    """A convolution case's inputs plus ``dout``, random, of the forward output's shape."""
    inputs = conv_case_inputs(check, case)
    out_shape = conv_reference(check, inputs)[0].shape
    upstream = check.rng(dict(case, seed=int(case.get("seed", 0)) + 1))
    inputs["dout"] = upstream.standard_normal(out_shape).astype(inputs["x"].dtype)
    return inputs


def conv_backward_reference(check, inputs):
    from cs231n_lib import conv_backward

    dx, dw, db = conv_backward(inputs["dout"], conv_reference(check, inputs)[1])
    return {"dx": dx, "dw": dw, "db": db}


@register
class ConvOutputSize(Trusted, kit.ConvOutputSize):
    def make_inputs(self, case):
        return {k: np.array(case[k]) for k in self.ARGS}

    def reference(self, inputs):
        from cs231n_lib.sizing import conv_output_size

        args = [self.scalar(inputs, k) for k in self.ARGS]
        try:
            size = conv_output_size(*args)
        except ValueError:
            return self.raised()
        return {"size": np.array(size), "error": np.array("none"), "type": np.array("int")}


@register
class ConvForwardNaive(Trusted, kit.ConvForwardNaive):
    def make_inputs(self, case):
        return conv_case_inputs(self, case)

    def reference(self, inputs):
        return {"out": conv_reference(self, inputs)[0]}


@register
class ConvBackwardNaive(Trusted, kit.ConvBackwardNaive):
    def make_inputs(self, case):
        return conv_backward_inputs(self, case)

    def reference(self, inputs):
        return conv_backward_reference(self, inputs)


@register
class ConvForwardDilated(Trusted, kit.ConvForwardDilated):
    def make_inputs(self, case):
        return conv_case_inputs(self, case)

    def reference(self, inputs):
        return {"out": conv_reference(self, inputs)[0]}
