"""Sizing arithmetic for ConvNets: output sizes, parameters, memory and receptive fields.

This module is the one place that knows the output-size rule ``(W - F + 2P) / S + 1``; every
layer in the library asks it.
"""

import re
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

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


# ----------------------------------------------------------------------------------------------
# Layer specs: the notes' notation for a network, one string per layer.
# ----------------------------------------------------------------------------------------------

SPEC_GRAMMAR = """\
A network spec is a list of layer strings (or one string with the layers separated by '->',
commas or new lines). Case and spaces around the layer do not matter.

  INPUT HxWxD        the image volume, e.g. "INPUT 224x224x3" (also "INPUT: [224x224x3]").
                     Must come first, exactly once. Sizes are height x width x depth, as in the
                     notes; the library's arrays are NCHW, i.e. (N, D, H, W).
  CONVF-K            K filters of size FxF, stride 1 and padding P = (F - 1) // 2, which keeps
                     the size ("same") for an odd F, e.g. "CONV3-64".
  CONVF-K/Ss/Pp/Dd   any of the options stride s, padding p, dilation d, e.g. "CONV11-96/S4/P0"
                     (AlexNet's first layer) or "CONV5-32/S2/P2". With a dilation d the default
                     padding is (d*(F-1)) // 2.
  POOLF              FxF max pooling with stride F (no overlap), e.g. "POOL2".
  POOLF/Ss           FxF max pooling with stride s, e.g. "POOL3/S2" (overlapping pooling).
  FC-K               fully connected layer with K outputs, e.g. "FC-4096". After the first FC
                     the volume is a vector; CONV and POOL may not follow an FC.

ReLUs are implied: a ConvNet built from a spec puts one after every CONV and every FC except the
last. Pools never pad: a size that does not tile is an error, as in the notes.
"""

_INPUT_RE = re.compile(r"^INPUT\s*:?\s*\[?\s*(\d+)\s*X\s*(\d+)\s*X\s*(\d+)\s*\]?$")
_CONV_RE = re.compile(r"^CONV(\d+)-(\d+)((?:/[A-Z]\d+)*)$")
_POOL_RE = re.compile(r"^POOL(\d+)((?:/[A-Z]\d+)*)$")
_FC_RE = re.compile(r"^FC-(\d+)$")
_OPTION_RE = re.compile(r"/([A-Z])(\d+)")


@dataclass(frozen=True)
class Layer:
    """One parsed layer of a spec.

    - kind: 'input', 'conv', 'pool' or 'fc'
    - text: the layer as written in the spec (normalised to upper case, no spaces)
    - size: filter / pool size F (conv, pool)
    - stride, pad, dilation: conv and pool hyperparameters (pool: pad 0, dilation 1)
    - depth: number of filters K (conv), outputs (fc), or the image depth (input)
    - height, width: the image size (input only)
    """

    kind: str
    text: str
    size: int = 0
    stride: int = 1
    pad: int = 0
    dilation: int = 1
    depth: int = 0
    height: int = 0
    width: int = 0


def _parse_options(text, options, allowed):
    found = {}
    for letter, number in _OPTION_RE.findall(options):
        if letter not in allowed:
            raise ValueError(
                f"layer {text!r}: unknown option /{letter}; expected any of "
                + ", ".join(f"/{a}<n> ({allowed[a]})" for a in allowed)
            )
        if letter in found:
            raise ValueError(f"layer {text!r}: option /{letter} is given twice")
        found[letter] = int(number)
    return found


def parse_layer(text):
    """Parse one layer string (see ``SPEC_GRAMMAR``) into a ``Layer``."""
    if not isinstance(text, str):
        raise ValueError(f"a layer must be a string such as 'CONV3-64'; found {text!r}")
    t = re.sub(r"\s+", " ", text.strip().upper())
    m = _INPUT_RE.match(t)
    if m:
        h, w, d = (positive_int(f"{text!r}: {n}", int(v)) for n, v in zip("HWD", m.groups()))
        return Layer("input", f"INPUT {h}x{w}x{d}", height=h, width=w, depth=d)
    t = t.replace(" ", "")
    m = _CONV_RE.match(t)
    if m:
        F = positive_int(f"{text!r}: filter size", int(m.group(1)))
        K = positive_int(f"{text!r}: number of filters", int(m.group(2)))
        opts = _parse_options(text, m.group(3), {"S": "stride", "P": "padding", "D": "dilation"})
        S = positive_int(f"{text!r}: stride", opts.get("S", 1))
        D = positive_int(f"{text!r}: dilation", opts.get("D", 1))
        P = opts.get("P", (D * (F - 1)) // 2)
        return Layer("conv", t, size=F, stride=S, pad=P, dilation=D, depth=K)
    m = _POOL_RE.match(t)
    if m:
        F = positive_int(f"{text!r}: pool size", int(m.group(1)))
        opts = _parse_options(text, m.group(2), {"S": "stride"})
        S = positive_int(f"{text!r}: stride", opts.get("S", F))
        return Layer("pool", t, size=F, stride=S)
    m = _FC_RE.match(t)
    if m:
        K = positive_int(f"{text!r}: number of outputs", int(m.group(1)))
        return Layer("fc", t, depth=K)
    raise ValueError(
        f"cannot read layer {text!r}; expected one of 'INPUT 32x32x3', 'CONV3-64', "
        f"'CONV5-32/S2/P0', 'POOL2', 'POOL3/S2', 'FC-10' (ReLUs are implied, not written)"
    )


def parse_spec(spec):
    """Parse a network spec (see ``SPEC_GRAMMAR``) into a list of ``Layer``.

    Inputs:
    - spec: a list of layer strings (or ``Layer`` objects), or one string with the layers
      separated by '->', commas or new lines.

    Returns a list of ``Layer`` starting with the INPUT layer. Raises ``ValueError`` for an
    unreadable layer, a missing or repeated INPUT, or a CONV/POOL after an FC.
    """
    if isinstance(spec, str):
        items = [s for s in re.split(r"->|,|\n|;", spec) if s.strip()]
    else:
        try:
            items = list(spec)
        except TypeError:
            raise ValueError(f"a spec must be a list of layer strings; found {type(spec).__name__}") from None
    layers = [item if isinstance(item, Layer) else parse_layer(item) for item in items]
    if not layers or layers[0].kind != "input":
        first = layers[0].text if layers else "nothing"
        raise ValueError(f"a spec must start with an INPUT layer such as 'INPUT 32x32x3'; found {first!r}")
    seen_fc = False
    for i, layer in enumerate(layers[1:], start=1):
        if layer.kind == "input":
            raise ValueError(f"layer {i} {layer.text!r}: INPUT may appear only once, as the first layer")
        if layer.kind == "fc":
            seen_fc = True
        elif seen_fc:
            raise ValueError(
                f"layer {i} {layer.text!r}: a {layer.kind.upper()} cannot follow an FC layer "
                f"(an FC outputs a vector, not a volume)"
            )
    return layers


def _shape_text(shape):
    return "[" + "x".join(str(s) for s in ((1, 1) + shape if len(shape) == 1 else shape)) + "]"


def _short_count(n, digits=2):
    """Round a count to ``digits`` significant digits with a K/M/G suffix, as the notes write
    memory (802,816 -> '800K', 3,211,264 -> '3.2M'); counts below 10,000 are written in full."""
    if n < 10_000:
        return str(n)
    for scale, suffix in ((1_000_000_000, "G"), (1_000_000, "M"), (1_000, "K")):
        if n >= scale:
            value = float(f"{n / scale:.{digits}g}")
            return (f"{value:g}" if value < 1000 else f"{value:.0f}") + suffix
    return str(n)  # unreachable


@dataclass(frozen=True)
class LayerRow:
    """One row of a ``describe`` table.

    - name: the layer as written ('CONV3-64')
    - layer: the parsed ``Layer``
    - shape: output shape, (H, W, D) for a volume or (D,) after an FC
    - activations: number of output values (H*W*D or D)
    - weights, biases: parameter counts of the layer (0 for INPUT and POOL)
    - weight_shape: shape of the layer's weight array in this library's convention, conv
      (K, C, F, F) and FC (fan_in, K); None when the layer has no weights
    """

    name: str
    layer: Layer
    shape: tuple
    activations: int
    weights: int
    biases: int
    weight_shape: tuple | None

    @property
    def params(self):
        return self.weights + self.biases

    def memory_text(self):
        if len(self.shape) == 1:
            return str(self.activations)
        return "*".join(str(s) for s in self.shape) + "=" + _short_count(self.activations)

    def weights_text(self, input_shape):
        if self.weights == 0:
            return "0"
        if self.layer.kind == "conv":
            F, C, K = self.layer.size, input_shape[-1], self.layer.depth
            formula = f"({F}*{F}*{C})*{K}"
        else:
            formula = "*".join(str(s) for s in input_shape) + f"*{self.layer.depth}"
        return f"{formula} = {self.weights:,}"


@dataclass(frozen=True)
class NetworkDescription:
    """What ``describe`` returns: the rows of the sizing table and their totals.

    Totals (plain ints): ``weights``, ``biases``, ``params`` (= weights + biases) and
    ``activations`` (the sum of every row's activations, the INPUT row included). Memory in
    bytes: ``activation_bytes`` and ``param_bytes`` for ``dtype`` (float32 unless asked), or
    ``activation_memory(dtype)``. ``str(description)`` and ``.table()`` print the table.
    """

    rows: tuple
    dtype: np.dtype = np.dtype(np.float32)

    @property
    def weights(self):
        return sum(r.weights for r in self.rows)

    @property
    def biases(self):
        return sum(r.biases for r in self.rows)

    @property
    def params(self):
        return self.weights + self.biases

    @property
    def activations(self):
        return sum(r.activations for r in self.rows)

    @property
    def output_shape(self):
        return self.rows[-1].shape

    def activation_memory(self, dtype=None):
        """Bytes needed to hold every row's activations for one image in ``dtype``."""
        return self.activations * np.dtype(self.dtype if dtype is None else dtype).itemsize

    @property
    def activation_bytes(self):
        return self.activation_memory()

    @property
    def param_bytes(self):
        return self.params * self.dtype.itemsize

    def table(self):
        """The sizing table in the notes' layout, followed by the totals."""
        cells = []
        previous = None
        for r in self.rows:
            cells.append((
                f"{r.name}:", _shape_text(r.shape), f"memory: {r.memory_text()}",
                f"weights: {r.weights_text(previous) if previous else '0'}",
            ))
            previous = r.shape
        widths = [max(len(c[i]) for c in cells) for i in range(3)]
        lines = ["  ".join(c[i].ljust(widths[i]) if i < 3 else c[i] for i in range(4)) for c in cells]
        mib = self.activation_bytes / 2**20
        lines.append(
            f"TOTAL activations: {self.activations:,} (~{_short_count(self.activations, 3)}) "
            f"* {self.dtype.itemsize} bytes = {self.activation_bytes:,} bytes "
            f"(~{mib:.1f} MiB) / image, forward pass only"
        )
        lines.append(
            f"TOTAL params: {self.weights:,} weights + {self.biases:,} biases = {self.params:,} "
            f"(~{_short_count(self.params, 3)})"
        )
        return "\n".join(line.rstrip() for line in lines)

    def __str__(self):
        return self.table()


def _apply_layer(index, layer, shape):
    """Output shape, weight count, bias count and weight shape of ``layer`` on ``shape``."""
    where = f"layer {index} {layer.text!r} on a {_shape_text(shape)} input"
    if layer.kind in ("conv", "pool") and len(shape) == 1:
        raise ValueError(f"{where}: a {layer.kind.upper()} needs a volume, not a vector")
    try:
        if layer.kind == "conv":
            H, W, C = shape
            conv = dict(F=layer.size, S=layer.stride, P=layer.pad, dilation=layer.dilation)
            out = (conv_output_size(H, **conv), conv_output_size(W, **conv), layer.depth)
            w_shape = (layer.depth, C, layer.size, layer.size)
            return out, int(np.prod(w_shape)), layer.depth, w_shape
        if layer.kind == "pool":
            H, W, C = shape
            out = (pool_output_size(H, layer.size, layer.stride), pool_output_size(W, layer.size, layer.stride), C)
            return out, 0, 0, None
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from err
    if layer.kind == "fc":
        fan_in = int(np.prod(shape))
        return (layer.depth,), fan_in * layer.depth, layer.depth, (fan_in, layer.depth)
    raise ValueError(f"{where}: INPUT may appear only once, as the first layer")


def describe(spec, dtype=np.float32):
    """Size every layer of a network written as a spec (see ``SPEC_GRAMMAR``).

    Inputs:
    - spec: e.g. ["INPUT 224x224x3", "CONV3-64", "CONV3-64", "POOL2", ..., "FC-1000"]
    - dtype: the dtype used for the memory figures (float32 by default)

    Returns a ``NetworkDescription``: ``.rows`` (name, output shape, activations, weights,
    biases per layer), the totals ``.params``, ``.weights``, ``.biases``, ``.activations``,
    ``.activation_bytes``, and ``print(...)`` shows the table as the notes lay it out.

    A note on the VGG-16 example (``VGG16_SPEC``): the notes' rows sum to 15,237,608
    activations, about 58 MiB per image in float32, while the notes' total line says "24M * 4
    bytes ~= 93MB". This function reports the sum of the rows. The notes do not say how their
    24M was counted; it is not the sum of the rows printed above it.

    Raises ``ValueError`` naming the layer when a size does not work out.
    """
    layers = parse_spec(spec)
    first = layers[0]
    shape = (first.height, first.width, first.depth)
    rows = [LayerRow("INPUT", first, shape, int(np.prod(shape)), 0, 0, None)]
    for i, layer in enumerate(layers[1:], start=1):
        shape, n_weights, n_biases, w_shape = _apply_layer(i, layer, shape)
        rows.append(LayerRow(layer.text, layer, shape, int(np.prod(shape)), n_weights, n_biases, w_shape))
    return NetworkDescription(tuple(rows), np.dtype(dtype))


# The 16-layer VGG network of the notes' case study.
VGG16_SPEC = (
    ["INPUT 224x224x3"]
    + ["CONV3-64"] * 2 + ["POOL2"]
    + ["CONV3-128"] * 2 + ["POOL2"]
    + ["CONV3-256"] * 3 + ["POOL2"]
    + ["CONV3-512"] * 3 + ["POOL2"]
    + ["CONV3-512"] * 3 + ["POOL2"]
    + ["FC-4096", "FC-4096", "FC-1000"]
)


# ----------------------------------------------------------------------------------------------
# One conv layer, counted with and without parameter sharing (the notes' AlexNet example).
# ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ConvLayerCounts:
    """Counts for one conv layer: output shape (H, W, K), neurons, weights per neuron, and the
    parameters (weights + biases) with and without parameter sharing."""

    output_shape: tuple
    neurons: int
    weights_per_neuron: int
    params_shared: int
    params_unshared: int


def conv_layer_counts(input_shape, F, S=1, P=0, K=1):
    """Count the neurons and parameters of one conv layer.

    Inputs:
    - input_shape: (H, W, D) of the input volume, e.g. (227, 227, 3)
    - F, S, P: filter size, stride, padding; K: number of filters

    Returns ``ConvLayerCounts``. Each neuron has F*F*D weights and 1 bias. With parameter
    sharing all neurons of a depth slice use one filter: (F*F*D + 1) * K parameters. Without
    it every neuron has its own: (F*F*D + 1) * H_out * W_out * K. AlexNet's first layer
    (227x227x3, F=11, S=4, P=0, K=96) gives 55x55x96 = 290,400 neurons, 34,944 parameters
    shared and 105,705,600 unshared.
    """
    H, W, D = (positive_int(n, v) for n, v in zip(("H", "W", "D (depth)"), input_shape))
    K = positive_int("K (number of filters)", K)
    out = (conv_output_size(H, F, S, P), conv_output_size(W, F, S, P), K)
    neurons = out[0] * out[1] * K
    per_neuron = F * F * D
    return ConvLayerCounts(out, neurons, per_neuron, (per_neuron + 1) * K, (per_neuron + 1) * neurons)


# ----------------------------------------------------------------------------------------------
# Receptive fields and stacks of small filters.
# ----------------------------------------------------------------------------------------------

def _as_window(item):
    """(F, S, dilation) of a receptive-field item: a CONV/POOL layer string or tuple."""
    if isinstance(item, (str, Layer)):
        layer = item if isinstance(item, Layer) else parse_layer(item)
        if layer.kind == "fc":
            raise ValueError(
                f"{layer.text!r}: an FC layer sees its whole input, so it has no window; "
                f"give only the CONV and POOL layers"
            )
        if layer.kind == "input":
            return None
        return layer.size, layer.stride, layer.dilation
    if isinstance(item, (tuple, list)) and len(item) in (2, 3):
        F, S, *rest = item
        D = rest[0] if rest else 1
        return positive_int("F (filter size)", F), positive_int("S (stride)", S), positive_int("dilation", D)
    raise ValueError(f"expected a layer string such as 'CONV3-64' or a tuple (F, S[, dilation]); found {item!r}")


def receptive_field(layers):
    """Receptive field (in input pixels, along one axis) of a neuron at the top of a stack.

    Inputs:
    - layers: CONV/POOL layer strings ('CONV3-64', 'POOL2', an INPUT line is skipped) or
      tuples (F, S) or (F, S, dilation), first layer first.

    Returns the int ``r`` from the recurrence, starting at r = 1 and jump j = 1 (one input
    pixel)::

        r <- r + (F_eff - 1) * j        # each new window spans F_eff positions of the layer below,
        j <- j * S                      # which are j input pixels apart

    with F_eff = dilation * (F - 1) + 1. Three 3x3 stride-1 convs give 7; padding does not
    change the receptive field.
    """
    r, j = 1, 1
    for item in layers:
        window = _as_window(item)
        if window is None:
            continue
        F, S, D = window
        r += D * (F - 1) * j
        j *= S
    return r


def total_stride(layers):
    """Product of the strides of the CONV/POOL layers (INPUT and FC layers are skipped): how
    many input pixels one step of the top layer moves, the jump ``j`` of ``receptive_field``.
    VGG-16's five POOL2 give 32."""
    j = 1
    for item in layers:
        if isinstance(item, (str, Layer)):
            layer = item if isinstance(item, Layer) else parse_layer(item)
            if layer.kind in ("input", "fc"):
                continue
        j *= _as_window(item)[1]
    return j


@dataclass(frozen=True)
class StackComparison:
    """Weights of ``n`` stacked FxF conv layers versus one layer with the same receptive field."""

    stacked: int
    single: int
    single_filter_size: int


def stacked_vs_single_params(C, n=3, F=3):
    """Compare a stack of ``n`` FxF convs with the single conv of the same receptive field.

    Every volume has ``C`` channels; biases are not counted (they add n*C versus C). A stack has
    n * (C * F*F * C) weights; the single layer has filter size n*(F-1) + 1 (three 3x3 -> 7x7)
    and C * (7*7) * C weights. With n=3, F=3: 27*C^2 versus 49*C^2.

    Returns ``StackComparison(stacked, single, single_filter_size)``.
    """
    C = positive_int("C (channels)", C)
    n = positive_int("n (number of stacked layers)", n)
    F = positive_int("F (filter size)", F)
    big = receptive_field([(F, 1)] * n)
    return StackComparison(n * C * F * F * C, C * big * big * C, big)


# ----------------------------------------------------------------------------------------------
# Converting FC layers to CONV layers.
# ----------------------------------------------------------------------------------------------

def fc_to_conv_weights(W_fc, b_fc, in_shape):
    """Turn an FC layer that reads a C x H x W volume into an equivalent conv layer.

    Inputs:
    - W_fc: FC weights of shape (C*H*W, K), used as ``x.reshape(N, -1) @ W_fc + b_fc`` on an
      NCHW input (the ``affine_forward`` convention)
    - b_fc: FC biases, shape (K,)
    - in_shape: (C, H, W), the volume the FC layer reads; (K_prev, 1, 1) for an FC that
      follows another FC

    Returns ``(w, b)``: conv filters of shape (K, C, H, W) and biases (K,), same dtype. A conv
    with these filters, stride 1 and no padding gives the FC's output at 1x1 on the original
    volume, and slides over a larger volume in one pass.

    One pass of the converted net over a large image equals running the original net on every
    crop at steps of ``total_stride(spec)`` pixels exactly when the convs do not pad. With
    "same" padding a crop sees zeros at its border where the large image has pixels, so the
    scores near those borders differ (the notes' VGG statement holds only approximately).
    """
    W_fc = np.asarray(W_fc)
    b_fc = np.asarray(b_fc)
    C, H, W = (positive_int(n, v) for n, v in zip("CHW", in_shape))
    if W_fc.ndim != 2 or W_fc.shape[0] != C * H * W:
        raise ValueError(
            f"W_fc must have shape (C*H*W, K) = ({C * H * W}, K) for in_shape {(C, H, W)}; found {W_fc.shape}"
        )
    K = W_fc.shape[1]
    if b_fc.shape != (K,):
        raise ValueError(f"b_fc must have shape ({K},) to match W_fc {W_fc.shape}; found {b_fc.shape}")
    # Row c*H*W + h*W + w of W_fc multiplies x[n, c, h, w]: a plain reshape puts it at [k, c, h, w].
    return np.ascontiguousarray(W_fc.T.reshape(K, C, H, W)), b_fc.copy()


def fc_to_conv_spec(spec):
    """Rewrite a spec's FC layers as CONV layers (the notes' FC->CONV conversion).

    The first FC, reading an HxWxD volume, becomes 'CONVH-K/P0' (stride 1) (one filter as large as the
    volume); every later FC becomes 'CONV1-K/P0'. Returns the new list of layer strings.
    Raises ``ValueError`` when the volume before the first FC is not square (filters here are
    square).
    """
    layers = parse_spec(spec)
    rows = describe(layers).rows
    converted = [f"INPUT {layers[0].height}x{layers[0].width}x{layers[0].depth}"]
    for i, layer in enumerate(layers[1:], start=1):
        if layer.kind != "fc":
            converted.append(layer.text)
            continue
        shape = rows[i - 1].shape
        if len(shape) == 1:
            F = 1
        elif shape[0] != shape[1]:
            raise ValueError(
                f"layer {i} {layer.text!r} reads a non-square {_shape_text(shape)} volume; "
                f"only square filters are supported"
            )
        else:
            F = shape[0]
        converted.append(f"CONV{F}-{layer.depth}/P0")
    return converted


def with_input_size(spec, height, width=None):
    """The same spec with the INPUT layer resized to ``height`` x ``width`` (depth kept)."""
    layers = parse_spec(spec)
    width = height if width is None else width
    first = layers[0]
    return [f"INPUT {height}x{width}x{first.depth}"] + [layer.text for layer in layers[1:]]


def score_map_size(spec, height, width=None):
    """Size of the class-score map when the FC->CONV converted net runs on a larger image.

    Inputs:
    - spec: the original net (its INPUT is the size it was trained on, e.g. 224x224x3)
    - height, width: the larger image (width defaults to height)

    Returns (H_out, W_out, K): for VGG-16, 224 gives (1, 1, 1000) and 384 gives (6, 6, 1000),
    since 384 / 32 = 12 and the 7x7 filter of the first converted FC fits (12 - 7)/1 + 1 = 6
    times. Raises ``ValueError`` naming the layer when the image does not fit the net.
    """
    converted = with_input_size(fc_to_conv_spec(spec), height, width)
    return describe(converted).output_shape


# ----------------------------------------------------------------------------------------------
# Memory for training, and networks designed from the notes' pattern.
# ----------------------------------------------------------------------------------------------

#: Arrays of the size of the parameters that each update rule keeps between steps.
OPTIMIZER_STATE = {"sgd": 0, "momentum": 1, "nesterov": 1, "adagrad": 1, "rmsprop": 1, "adam": 2}


def _optimizer_buffers(optimizer):
    try:
        return OPTIMIZER_STATE[optimizer]
    except (KeyError, TypeError):
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZER_STATE)}; found {optimizer!r}") from None


def training_memory(params, activations, batch_size, optimizer="sgd", bytes_per_value=4):
    """Bytes one training step needs for a network's numbers (the notes' three sources, without
    the miscellaneous ones).

    Inputs:
    - params: the network's parameter count; activations: its activations per image (every
      layer's output, the input included)
    - batch_size: images per step; optimizer: a key of ``OPTIMIZER_STATE`` ("sgd" keeps no
      state, "momentum" one velocity per parameter, "adam" two moments)
    - bytes_per_value: 4 for float32, 8 for float64

    Returns a dict of byte counts: "activations" (batch_size * activations), "activation_grads"
    (as many again, for the backward pass), "params", "param_grads", "optimizer_state" and their
    "total".
    """
    params = nonnegative_int("params", params)
    activations = nonnegative_int("activations", activations)
    batch_size = nonnegative_int("batch_size", batch_size)
    size = positive_int("bytes_per_value", bytes_per_value)
    memory = {
        "activations": size * batch_size * activations,
        "activation_grads": size * batch_size * activations,
        "params": size * params,
        "param_grads": size * params,
        "optimizer_state": size * _optimizer_buffers(optimizer) * params,
    }
    memory["total"] = sum(memory.values())
    return memory


def largest_batch(params, activations, memory_bytes, optimizer="sgd", bytes_per_value=4):
    """The largest batch size whose ``training_memory`` total fits in ``memory_bytes``; 0 when
    the parameters, their gradients and the optimizer state alone do not leave room for one image.
    """
    fixed = training_memory(params, activations, 0, optimizer, bytes_per_value)["total"]
    per_image = training_memory(params, activations, 1, optimizer, bytes_per_value)["total"] - fixed
    if per_image == 0:
        raise ValueError("activations must be positive: with none, any batch fits")
    room = nonnegative_int("memory_bytes", memory_bytes) - fixed
    return room // per_image if room >= 0 else 0


def pattern_spec(input_shape, N, M, K, filters, hidden, num_classes, pool=True):
    """The notes' pattern INPUT -> [[CONV -> RELU]*N -> POOL?]*M -> [FC -> RELU]*K -> FC as a spec.

    Inputs:
    - input_shape: (H, W, D) of the image
    - N, M, K: the pattern's repetitions
    - filters: filters of the CONV3 layers of the first group; each later group doubles them
    - hidden: outputs of each of the K hidden FC layers; num_classes: outputs of the last FC
    - pool: whether each group ends with a POOL2

    Returns the list of layer strings (ReLUs implied), e.g. (32, 32, 3), N=2, M=2, K=1,
    filters=16, hidden=100, num_classes=10 gives INPUT 32x32x3, CONV3-16, CONV3-16, POOL2,
    CONV3-32, CONV3-32, POOL2, FC-100, FC-10.
    """
    H, W, D = (positive_int(n, v) for n, v in zip("HWD", input_shape))
    N, M, K = (nonnegative_int(n, v) for n, v in zip("NMK", (N, M, K)))
    filters, hidden = positive_int("filters", filters), positive_int("hidden", hidden)
    spec = [f"INPUT {H}x{W}x{D}"]
    for group in range(M):
        spec += [f"CONV3-{filters * 2 ** group}"] * N + (["POOL2"] if pool else [])
    return spec + [f"FC-{hidden}"] * K + [f"FC-{positive_int('num_classes', num_classes)}"]


def widest_pattern(input_shape, N, M, K, hidden, num_classes, max_params):
    """The largest first-group filter count for which ``pattern_spec`` stays within a parameter
    budget: designing a network from the pattern under a constraint.

    Returns the largest ``filters`` >= 1 with ``describe(pattern_spec(...)).params <=
    max_params``, or 0 when even one filter is over the budget. The count only grows with the
    filters, so the search doubles, then halves the gap (a binary search). Raises ``ValueError``
    (from ``describe``) when the pools do not tile the input.
    """
    def params(filters):
        return describe(pattern_spec(input_shape, N, M, K, filters, hidden, num_classes)).params

    budget = nonnegative_int("max_params", max_params)
    if params(1) > budget:
        return 0
    if N == 0 or M == 0:
        raise ValueError("with no CONV layer (N = 0 or M = 0) the filters do not matter: any number fits")
    low, high = 1, 2
    while params(high) <= budget:
        low, high = high, 2 * high
    while high - low > 1:  # params(low) <= budget < params(high)
        middle = (low + high) // 2
        low, high = (middle, high) if params(middle) <= budget else (low, middle)
    return low
