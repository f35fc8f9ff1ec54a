"""The named architectures of the notes, counted layer by layer: AlexNet, VGG-16, GoogLeNet and
ResNet-18/34, with their parameters and the activations one image leaves for the backward pass.

A spec string (``sizing.describe``) can write a plain chain of layers; GoogLeNet's inception
modules and ResNet's residual blocks branch, so each network here has a builder that walks it
with the small ``NetworkCounter``. Each builder follows one stated variant, the one whose figures
are published (torchvision's models, or the original paper):

========================  ================================================  =============
builder                   variant                                           parameters
========================  ================================================  =============
``alexnet("paper")``      Krizhevsky et al. 2012: 227x227 input, 96-256-     60,965,224
                          384-384-256 filters, CONV2/4/5 split in two
                          groups (the two GPUs)
``alexnet()``             torchvision's single-tower AlexNet: 224x224,        61,100,840
                          64-192-384-256-256 filters, no groups
``vgg16()``               configuration D of Simonyan & Zisserman (the       138,357,544
                          notes' table; torchvision's vgg16)
``googlenet("paper")``    Szegedy et al. 2014, Table 1, without the           6,998,552
                          auxiliary classifiers (convs with biases)
``googlenet()``           torchvision's googlenet without the auxiliary       6,624,904
                          classifiers (batchnorm after every conv, conv
                          biases dropped, 3x3 convs in the "5x5" branch)
``resnet(18)``            He et al. 2015 / torchvision resnet18              11,689,512
``resnet(34)``            He et al. 2015 / torchvision resnet34              21,797,672
========================  ================================================  =============

What counts as an activation: the output of every layer listed in the table (the input image,
each CONV, BATCHNORM, POOL, FC, the sum of a residual block and the concatenation of an
inception module), once per image. ReLUs are taken as in place (they overwrite their input) and
are not counted, as in the notes' VGG table. Sizes follow the frameworks' rule: a window that
does not tile the input is cut short (floor), or for the pools GoogLeNet marks ``ceil``, extended.
"""

from dataclasses import dataclass

from ._validate import nonnegative_int, positive_int


def window_output_size(W, F, S=1, P=0, ceil=False):
    """Output size of a conv or pooling window along one axis, as frameworks compute it.

    Inputs:
    - W: input size; F: window size; S: stride; P: padding on each side
    - ceil: round up instead of down (the pools' ``ceil_mode``); a last window that would start
      in the right padding is dropped

    Returns ``floor((W + 2P - F) / S) + 1`` (or ``ceil``). Unlike ``sizing.conv_output_size``,
    this does not insist that the windows tile the input exactly: real networks such as
    GoogLeNet and ResNet rely on the rounding.
    """
    span = W + 2 * P - F
    if span < 0:
        raise ValueError(f"window F = {F} does not fit the padded input W + 2P = {W} + {2 * P} = {W + 2 * P}")
    out = (span + S - 1) // S + 1 if ceil else span // S + 1
    if ceil and (out - 1) * S >= W + P:
        out -= 1
    return out


@dataclass(frozen=True)
class Row:
    """One layer of an architecture: its name, output shape (C, H, W) or (K,), parameters."""

    name: str
    shape: tuple
    params: int

    @property
    def activations(self):
        count = 1
        for s in self.shape:
            count *= s
        return count


@dataclass(frozen=True)
class Architecture:
    """A named network, counted: ``rows`` (one per layer), ``params``, ``activations`` (per
    image, the input included), ``output_shape``; ``table()`` prints it."""

    name: str
    variant: str
    rows: tuple

    @property
    def params(self):
        return sum(r.params for r in self.rows)

    @property
    def activations(self):
        return sum(r.activations for r in self.rows)

    @property
    def output_shape(self):
        return self.rows[-1].shape

    def table(self):
        width = max(len(r.name) for r in self.rows)
        lines = [f"{self.name} ({self.variant})"]
        for r in self.rows:
            shape = "x".join(map(str, r.shape))
            lines.append(f"  {r.name:<{width}}  [{shape:>12}]  activations {r.activations:>10,}  params {r.params:>11,}")
        lines.append(f"  TOTAL params {self.params:,}, activations {self.activations:,} per image")
        return "\n".join(lines)

    def __str__(self):
        return self.table()


class NetworkCounter:
    """Walks a network layer by layer, keeping the current volume (C, H, W) and a row per layer.

    ``conv``, ``batchnorm``, ``pool``, ``global_avg_pool`` and ``fc`` add a row and move the
    volume on; ``branch()`` starts a side path from the current volume (for residual blocks and
    inception modules) and ``merge`` adds the row of their sum or concatenation.
    """

    def __init__(self, C, H, W):
        self.shape = (positive_int("C", C), positive_int("H", H), positive_int("W", W))
        self.rows = [Row("INPUT", self.shape, 0)]

    def _add(self, name, shape, params):
        self.rows.append(Row(name, shape, params))
        self.shape = shape
        return self

    def conv(self, name, K, F, S=1, P=0, bias=True, groups=1):
        C, H, W = self.shape
        if C % groups or K % groups:
            raise ValueError(f"{name}: {C} input and {K} output channels do not split into {groups} groups")
        weights = K * (C // groups) * F * F
        out = (K, window_output_size(H, F, S, P), window_output_size(W, F, S, P))
        return self._add(name, out, weights + (K if bias else 0))

    def batchnorm(self, name):
        return self._add(name, self.shape, 2 * self.shape[0])  # gamma and beta per channel

    def conv_bn(self, name, K, F, S=1, P=0):
        """A conv without bias followed by batchnorm (the batchnorm's beta is the bias)."""
        return self.conv(name, K, F, S, P, bias=False).batchnorm(name + "-BN")

    def pool(self, name, F, S, P=0, ceil=False):
        C, H, W = self.shape
        return self._add(name, (C, window_output_size(H, F, S, P, ceil), window_output_size(W, F, S, P, ceil)), 0)

    def global_avg_pool(self, name="AVGPOOL"):
        return self._add(name, (self.shape[0], 1, 1), 0)

    def fc(self, name, K):
        fan_in = 1
        for s in self.shape:
            fan_in *= s
        return self._add(name, (K,), fan_in * K + K)

    def branch(self):
        """A counter for a side path that starts from the current volume (its rows join ours)."""
        side = NetworkCounter.__new__(NetworkCounter)
        side.shape, side.rows = self.shape, self.rows
        return side

    def merge(self, name, branches, how):
        """The row of a residual sum (``how="add"``, equal shapes) or an inception concatenation
        (``how="concat"``, along the channels) of the branches' outputs."""
        shapes = [b.shape for b in branches]
        if how == "add":
            if len(set(shapes)) != 1:
                raise ValueError(f"{name}: cannot add volumes of shapes {shapes}")
            return self._add(name, shapes[0], 0)
        if len({s[1:] for s in shapes}) != 1:
            raise ValueError(f"{name}: cannot concatenate volumes of spatial sizes {[s[1:] for s in shapes]}")
        return self._add(name, (sum(s[0] for s in shapes),) + shapes[0][1:], 0)

    def build(self, name, variant):
        return Architecture(name, variant, tuple(self.rows))


# ----------------------------------------------------------------------------------------------
# The builders


def alexnet(variant="torchvision", num_classes=1000):
    """AlexNet counted layer by layer.

    - variant "paper": the network of Krizhevsky et al. (2012) on a 227x227x3 image (the paper
      says 224; only 227 makes (227 - 11)/4 + 1 = 55 work), 96-256-384-384-256 filters, CONV2,
      CONV4 and CONV5 in two groups (each half of the filters saw half of the channels, one GPU
      each): 60,965,224 parameters.
    - variant "torchvision": the single-tower model torchvision ships (and most courses train):
      224x224x3, 64-192-384-256-256 filters, no groups, a 6x6 average pool before the FCs:
      61,100,840 parameters.
    """
    if variant == "paper":
        net = NetworkCounter(3, 227, 227)
        net.conv("CONV1", 96, 11, S=4).pool("POOL1", 3, 2)
        net.conv("CONV2", 256, 5, P=2, groups=2).pool("POOL2", 3, 2)
        net.conv("CONV3", 384, 3, P=1).conv("CONV4", 384, 3, P=1, groups=2).conv("CONV5", 256, 3, P=1, groups=2)
        net.pool("POOL5", 3, 2)
        label = "Krizhevsky et al. 2012, two groups, 227x227 input"
    elif variant == "torchvision":
        net = NetworkCounter(3, 224, 224)
        net.conv("CONV1", 64, 11, S=4, P=2).pool("POOL1", 3, 2)
        net.conv("CONV2", 192, 5, P=2).pool("POOL2", 3, 2)
        net.conv("CONV3", 384, 3, P=1).conv("CONV4", 256, 3, P=1).conv("CONV5", 256, 3, P=1)
        net.pool("POOL5", 3, 2)  # 6x6x256; torchvision's adaptive average pool to 6x6 keeps it
        label = "torchvision single tower, 224x224 input"
    else:
        raise ValueError(f"AlexNet variant must be 'paper' or 'torchvision'; found {variant!r}")
    net.fc("FC6", 4096).fc("FC7", 4096).fc("FC8", num_classes)
    return net.build("AlexNet", label)


def vgg16(num_classes=1000):
    """VGG-16 (configuration D): 13 CONV3 layers in five blocks, each closed by a 2x2 pool, and
    three FC layers; the notes' table. 138,357,544 parameters."""
    net = NetworkCounter(3, 224, 224)
    for block, (K, repeats) in enumerate(((64, 2), (128, 2), (256, 3), (512, 3), (512, 3)), start=1):
        for i in range(1, repeats + 1):
            net.conv(f"CONV{block}_{i}", K, 3, P=1)
        net.pool(f"POOL{block}", 2, 2)
    net.fc("FC6", 4096).fc("FC7", 4096).fc("FC8", num_classes)
    return net.build("VGG-16", "configuration D, 224x224 input")


# torchvision's inception modules: (1x1, 3x3 reduce, 3x3, "5x5" reduce, "5x5", pool projection)
GOOGLENET_MODULES = {
    "3a": (64, 96, 128, 16, 32, 32), "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64), "4b": (160, 112, 224, 24, 64, 64), "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64), "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128), "5b": (384, 192, 384, 48, 128, 128),
}


def inception(net, name, c1, r3, c3, r5, c5, proj, paper=False):
    """One inception module: four branches from the same volume, concatenated along channels.
    The paper's convs have biases and a 5x5 conv in the third branch; torchvision's are conv +
    batchnorm, with a 3x3 conv in that branch."""
    def conv(branch, suffix, K, F, P=0):
        if paper:
            return branch.conv(f"{name}/{suffix}", K, F, P=P)
        return branch.conv_bn(f"{name}/{suffix}", K, F, P=P)

    big = 5 if paper else 3
    branches = [
        conv(net.branch(), "1x1", c1, 1),
        conv(conv(net.branch(), "3x3reduce", r3, 1), "3x3", c3, 3, P=1),
        conv(conv(net.branch(), "5x5reduce", r5, 1), "5x5", c5, big, P=big // 2),
        conv(net.branch().pool(f"{name}/pool", 3, 1, P=1, ceil=True), "poolproj", proj, 1),
    ]
    return net.merge(f"INCEPTION{name}", branches, "concat")


def googlenet(variant="torchvision", num_classes=1000):
    """GoogLeNet without the auxiliary classifiers (used only in training); the pools round up,
    and global average pooling feeds a single FC layer.

    - variant "torchvision": every conv is conv (no bias) + batchnorm, 3x3 convs in the "5x5"
      branch: 6,624,904 parameters.
    - variant "paper": the layers of Table 1 of Szegedy et al. (2014), convs with biases, 5x5
      convs, no batchnorm (its local response normalisation has no parameters): 6,998,552.
    """
    if variant not in ("torchvision", "paper"):
        raise ValueError(f"GoogLeNet variant must be 'paper' or 'torchvision'; found {variant!r}")
    paper = variant == "paper"
    net = NetworkCounter(3, 224, 224)
    if paper:
        net.conv("CONV1", 64, 7, S=2, P=3).pool("POOL1", 3, 2, ceil=True)
        net.conv("CONV2", 64, 1).conv("CONV3", 192, 3, P=1).pool("POOL2", 3, 2, ceil=True)
    else:
        net.conv_bn("CONV1", 64, 7, S=2, P=3).pool("POOL1", 3, 2, ceil=True)
        net.conv_bn("CONV2", 64, 1).conv_bn("CONV3", 192, 3, P=1).pool("POOL2", 3, 2, ceil=True)
    for name in ("3a", "3b"):
        inception(net, name, *GOOGLENET_MODULES[name], paper=paper)
    net.pool("POOL3", 3, 2, ceil=True)
    for name in ("4a", "4b", "4c", "4d", "4e"):
        inception(net, name, *GOOGLENET_MODULES[name], paper=paper)
    net.pool("POOL4", 2, 2, ceil=True)
    for name in ("5a", "5b"):
        inception(net, name, *GOOGLENET_MODULES[name], paper=paper)
    net.global_avg_pool().fc("FC", num_classes)
    label = "Szegedy et al. 2014, no auxiliary classifiers" if paper else "torchvision, no auxiliary classifiers"
    return net.build("GoogLeNet", label + ", 224x224 input")


RESNET_BLOCKS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}


def basic_block(net, name, K, stride):
    """A residual block of two 3x3 conv-batchnorm layers plus a shortcut: the identity, or a 1x1
    conv with batchnorm (the projection) when the block changes the size or the channels."""
    main = net.branch().conv_bn(f"{name}/conv1", K, 3, S=stride, P=1).conv_bn(f"{name}/conv2", K, 3, P=1)
    shortcut = net.branch()
    if stride != 1 or net.shape[0] != K:
        shortcut.conv_bn(f"{name}/shortcut", K, 1, S=stride)
    return net.merge(f"{name}/add", [main, shortcut], "add")


def resnet(depth=18, num_classes=1000, blocks=None, widths=(64, 128, 256, 512), size=224):
    """A ResNet of basic blocks (He et al. 2015, torchvision's resnet18/34).

    Inputs:
    - depth: 18 or 34 (blocks per stage (2, 2, 2, 2) or (3, 4, 6, 3)); or give ``blocks``
    - widths: the channels of the four stages; size: the input's height and width

    The stem is a 7x7 stride-2 conv, batchnorm and a 3x3 stride-2 pool; every stage after the
    first starts with a stride-2 block; global average pooling feeds one FC layer.
    ResNet-18: 11,689,512 parameters; ResNet-34: 21,797,672.
    """
    if blocks is None:
        if depth not in RESNET_BLOCKS:
            raise ValueError(f"depth must be one of {sorted(RESNET_BLOCKS)} (or give blocks); found {depth!r}")
        blocks = RESNET_BLOCKS[depth]
    if len(blocks) != len(widths):
        raise ValueError(f"blocks {tuple(blocks)} and widths {tuple(widths)} must have one entry per stage")
    net = NetworkCounter(3, size, size)
    net.conv_bn("CONV1", widths[0], 7, S=2, P=3).pool("POOL1", 3, 2, P=1)
    for stage, (repeats, K) in enumerate(zip(blocks, widths), start=1):
        for i in range(nonnegative_int("blocks per stage", repeats)):
            basic_block(net, f"stage{stage}.{i}", K, 2 if stage > 1 and i == 0 else 1)
    net.global_avg_pool().fc("FC", num_classes)
    name = f"ResNet-{2 + 2 * sum(blocks)}"
    return net.build(name, f"basic blocks {tuple(blocks)}, {size}x{size} input")


def named_architectures():
    """The architectures of Part 3 of the convnet notebook, by name."""
    return {
        "AlexNet (paper)": alexnet("paper"), "AlexNet (torchvision)": alexnet(),
        "VGG-16": vgg16(), "GoogLeNet (paper)": googlenet("paper"), "GoogLeNet (torchvision)": googlenet(), "ResNet-18": resnet(18), "ResNet-34": resnet(34),
    }
