"""Visible checks of notebook 2 (im2col): the column matrix, its adjoint, and the convolution
layer as one matrix product (forward and backward).

The column layout: row ``(c*HH + i)*WW + j``, column ``(n*Hout + oy)*Wout + ox``.
"""

from .base import Check, register
from .convolution import conv_param_of

GEOMETRY = ("HH", "WW", "stride", "pad")


@register
class Im2col(Check):
    """im2col(x, HH, WW, stride, pad) -> cols of shape (C*HH*WW, N*Hout*Wout).

    Case: {"x": (N, C, H, W), "HH": 3, "WW": 3, "stride": 1, "pad": 1, "seed": 0}
    """

    name = "im2col"

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

    def call(self, namespace, inputs):
        forward = self.student(namespace, "conv_forward_im2col")
        backward = self.student(namespace, "conv_backward_im2col")
        _, cache = forward(inputs["x"], inputs["w"], inputs["b"], conv_param_of(self, inputs))
        dx, dw, db = backward(inputs["dout"], cache)
        return {"dx": dx, "dw": dw, "db": db}
