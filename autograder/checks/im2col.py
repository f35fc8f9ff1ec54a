"""Checks of notebook 2 (im2col): the column matrix, its adjoint, and the convolution layer as
one matrix product (forward and backward).

The column layout is ``cs231n_lib.conv.im2col``'s: row ``(c*HH + i)*WW + j``, column
``(n*Hout + oy)*Wout + ox``.
"""

import numpy as np

from .base import Check, register
from .convolution import conv_case_inputs, conv_param_of

GEOMETRY = ("HH", "WW", "stride", "pad")


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
class Im2col(Check):
    """im2col(x, HH, WW, stride, pad) -> cols of shape (C*HH*WW, N*Hout*Wout).

    Case: {"x": (N, C, H, W), "HH": 3, "WW": 3, "stride": 1, "pad": 1, "seed": 0}
    """

    name = "im2col"

    def make_inputs(self, case):
        x = self.rng(case).standard_normal(case["x"]).astype(self.dtype_of(case))
        return {"x": x, **geometry_inputs(case)}

    def reference(self, inputs):
        from cs231n_lib import im2col

        return {"cols": im2col(inputs["x"], *(self.scalar(inputs, k) for k in GEOMETRY))}

    def call(self, namespace, inputs):
        fn = self.student(namespace, self.name)
        return {"cols": fn(inputs["x"], *(self.scalar(inputs, k) for k in GEOMETRY))}


@register
class Col2im(Check):
    """col2im(cols, x_shape, HH, WW, stride, pad) -> dx of shape x_shape (sums the overlaps).

    Case: {"x": (N, C, H, W), "HH": 3, "WW": 3, "stride": 1, "pad": 1, "seed": 0}; ``cols`` is
    random with the column-matrix shape of that input.
    """

    name = "col2im"

    def make_inputs(self, case):
        geometry = geometry_inputs(case)
        shape = column_shape(case["x"], *(int(geometry[k]) for k in GEOMETRY))
        cols = self.rng(case).standard_normal(shape).astype(self.dtype_of(case))
        return {"cols": cols, "x_shape": np.array(case["x"], dtype=np.int64), **geometry}

    def reference(self, inputs):
        from cs231n_lib import col2im

        x_shape = tuple(int(s) for s in inputs["x_shape"])
        return {"dx": col2im(inputs["cols"], x_shape, *(self.scalar(inputs, k) for k in GEOMETRY))}

    def call(self, namespace, inputs):
        fn = self.student(namespace, self.name)
        x_shape = tuple(int(s) for s in inputs["x_shape"])
        return {"dx": fn(inputs["cols"], x_shape, *(self.scalar(inputs, k) for k in GEOMETRY))}


@register
class ConvForwardIm2col(Check):
    """conv_forward_im2col(x, w, b, conv_param) -> (out, cache).

    Case: {"x": (N, C, H, W), "w": (F, C, HH, WW), "stride": 1, "pad": 0, "seed": 0}
    """

    name = "conv_forward_im2col"

    def make_inputs(self, case):
        return conv_case_inputs(self, case)

    def reference(self, inputs):
        from cs231n_lib import conv_forward

        out, _ = conv_forward(inputs["x"], inputs["w"], inputs["b"], conv_param_of(self, inputs))
        return {"out": out}

    def call(self, namespace, inputs):
        fn = self.student(namespace, self.name)
        out, _ = fn(inputs["x"], inputs["w"], inputs["b"], conv_param_of(self, inputs))
        return {"out": out}


@register
class ConvBackwardIm2col(Check):
    """conv_backward_im2col(dout, cache) -> (dx, dw, db), the cache from the student's forward.

    Case: as for conv_forward_im2col.
    """

    name = "conv_backward_im2col"
    requires = ("conv_forward_im2col", "conv_backward_im2col")

    def make_inputs(self, case):
        from cs231n_lib import conv_forward

        inputs = conv_case_inputs(self, case)
        out, _ = conv_forward(inputs["x"], inputs["w"], inputs["b"], conv_param_of(self, inputs))
        upstream = self.rng(dict(case, seed=int(case.get("seed", 0)) + 1))
        inputs["dout"] = upstream.standard_normal(out.shape).astype(inputs["x"].dtype)
        return inputs

    def reference(self, inputs):
        from cs231n_lib import conv_backward, conv_forward

        _, cache = conv_forward(inputs["x"], inputs["w"], inputs["b"], conv_param_of(self, inputs))
        dx, dw, db = conv_backward(inputs["dout"], cache)
        return {"dx": dx, "dw": dw, "db": db}

    def call(self, namespace, inputs):
        forward = self.student(namespace, "conv_forward_im2col")
        backward = self.student(namespace, "conv_backward_im2col")
        _, cache = forward(inputs["x"], inputs["w"], inputs["b"], conv_param_of(self, inputs))
        dx, dw, db = backward(inputs["dout"], cache)
        return {"dx": dx, "dw": dw, "db": db}
