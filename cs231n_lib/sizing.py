"""Sizing arithmetic for ConvNets: output sizes, parameters, memory and receptive fields.

This module is the one place that knows the output-size rule ``(W - F + 2P) / S + 1``; every
layer in the library asks it.
"""

from fractions import Fraction

from ._validate import nonnegative_int, positive_int


def conv_output_size(W, F, S=1, P=0, dilation=1):
    """Spatial output size of a convolution along one axis.

    Inputs:
    - W: input size (width or height)
    - F: filter size
    - S: stride
    - P: zero padding on each side
    - dilation: spacing between filter taps (1 = ordinary convolution); the filter then
      covers ``dilation * (F - 1) + 1`` input positions.

    Returns the integer ``(W - F_eff + 2P) / S + 1``. Raises ``ValueError`` showing the
    arithmetic when the filter does not fit or the result is not an integer.
    """
    W = positive_int("W (input size)", W)
    F = positive_int("F (filter size)", F)
    S = positive_int("S (stride)", S)
    P = nonnegative_int("P (padding)", P)
    dilation = positive_int("dilation", dilation)
    F_eff = dilation * (F - 1) + 1
    filt = f"F_eff = {dilation}*({F}-1)+1 = {F_eff}" if dilation != 1 else f"F = {F}"
    span = W - F_eff + 2 * P
    if span < 0:
        raise ValueError(
            f"filter does not fit: {filt} is larger than the padded input W + 2P = {W} + {2 * P} = {W + 2 * P}"
        )
    size = Fraction(span, S) + 1
    if size.denominator != 1:
        raise ValueError(
            f"(W - F + 2P)/S + 1 = ({W} - {F_eff} + {2 * P})/{S} + 1 = {float(size):g} is not an integer "
            f"({filt}); choose a stride or padding that tiles the input"
        )
    return int(size)


def pool_output_size(W, F, S):
    """Spatial output size of a pooling window of size ``F`` and stride ``S`` (no padding).

    Returns ``(W - F) / S + 1``; raises ``ValueError`` with the arithmetic when it is not an
    integer or the window does not fit.
    """
    W = positive_int("W (input size)", W)
    F = positive_int("F (pool size)", F)
    S = positive_int("S (stride)", S)
    if F > W:
        raise ValueError(f"pool window does not fit: F = {F} is larger than the input W = {W}")
    size = Fraction(W - F, S) + 1
    if size.denominator != 1:
        raise ValueError(
            f"(W - F)/S + 1 = ({W} - {F})/{S} + 1 = {float(size):g} is not an integer; "
            f"choose a pool size and stride that tile the input"
        )
    return int(size)
