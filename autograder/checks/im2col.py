"""Trusted checks of notebook 2 (im2col): inputs and references.

The column layout is ``cs231n_lib.conv.im2col``'s: row ``(c*HH + i)*WW + j``, column
``(n*Hout + oy)*Wout + ox``.
"""

import numpy as np

from cs231n_checks import im2col as kit
from cs231n_checks.im2col import GEOMETRY

from .base import Trusted, register
from .convolution import conv_backward_inputs, conv_backward_reference, conv_case_inputs, conv_reference


def geometry_inputs(case):
    """Filter size, stride and padding of a column case as 0-d arrays."""
    return {
        "HH": np.array(case["HH"]), "WW": np.array(case["WW"]),
        "stride": np.array(case.get("stride", 1)), "pad": np.array(case.get("pad", 0)),
    }


def column_shape(x_shape, HH, WW, stride, pad):
    from cs231n_lib.sizing import conv_output_size

    N, C, H, W = x_shape
    Hout, Wout = conv_output_size(H, HH, stride, pad), conv_output_size(W, WW, stride, pad)
    return (C * HH * WW, N * Hout * Wout)


@register
class Im2col(Trusted, kit.Im2col):
    def make_inputs(self, case):
        x = self.rng(case).standard_normal(case["x"]).astype(self.dtype_of(case))
        return {"x": x, **geometry_inputs(case)}

    def reference(self, inputs):
        from cs231n_lib import im2col

        return {"cols": im2col(inputs["x"], *(self.scalar(inputs, k) for k in GEOMETRY))}


@register
class Col2im(Trusted, kit.Col2im):
    def make_inputs(self, case):
        geometry = geometry_inputs(case)
        shape = column_shape(case["x"], *(int(geometry[k]) for k in GEOMETRY))
        cols = self.rng(case).standard_normal(shape).astype(self.dtype_of(case))
        return {"cols": cols, "x_shape": np.array(case["x"], dtype=np.int64), **geometry}

    def reference(self, inputs):
        from cs231n_lib import col2im

        x_shape = tuple(int(s) for s in inputs["x_shape"])
        return {"dx": col2im(inputs["cols"], x_shape, *(self.scalar(inputs, k) for k in GEOMETRY))}


@register
class ConvForwardIm2col(Trusted, kit.ConvForwardIm2col):
    def make_inputs(self, case):
        return conv_case_inputs(self, case)

    def reference(self, inputs):
        return {"out": conv_reference(self, inputs)[0]}


@register
class ConvBackwardIm2col(Trusted, kit.ConvBackwardIm2col):
    def make_inputs(self, case):
        return conv_backward_inputs(self, case)

    def reference(self, inputs):
        return conv_backward_reference(self, inputs)
