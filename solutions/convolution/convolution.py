# %% [markdown]
# # Assignment 1: the convolutional layer, from the ground up
#
# A convolutional layer is the workhorse of a ConvNet: it holds most of the computation and, in
# the first layers, learns the edge and colour detectors that everything later builds on. In this
# notebook you will
#
# 1. see **why** ConvNets use local connectivity and parameter sharing instead of fully connected
#    layers, and what a *depth column* and a *depth slice* are;
# 2. work out the **output-size rule** $(W - F + 2P)/S + 1$ and write `conv_output_size`, which
#    refuses impossible settings;
# 3. write the **forward pass** `conv_forward_naive` with plain loops, step through it in an
#    interactive demo, and run it on real photographs with hand-made filters;
# 4. derive and write the **backward pass** `conv_backward_naive`, and check it against
#    numerical gradients;
# 5. meet **1x1 convolutions** and **dilated convolutions** (the last, optional graded part).
#
# **Grading: 14 points in total**: 10 points for the functions, checked automatically, and 4 points
# for two written answers, graded by a person (not by the checks). The optional part (dilation,
# section 9) is **1 point of extra credit** on top of the 14: leaving it undone costs nothing.
#
# | graded function | points |
# |---|---|
# | `conv_output_size` | 2 |
# | `conv_forward_naive` | 4 |
# | `conv_backward_naive` | 4 |
# | `conv_forward_naive` with dilation (*optional*) | 1 |
# | written answers: same padding (section 2), shared gradients (section 7) | 2 + 2 |
#
# Write your code between `# YOUR CODE HERE` and the end of its block, replacing
# `raise NotImplementedError()`. Every graded function is followed by a check cell: run it and it
# prints, case by case, whether your result matches the reference library `cs231n_lib`, the
# relative error (largest absolute difference divided by the largest magnitude), and a hint when
# the pattern of the mistake says something (wrong borders: look at the padding; every other
# column wrong: look at the stride). When your notebook is graded the same checks run again on
# **more cases you do not see** (other shapes, strides, paddings, float32 inputs and random seeds),
# so write general code, not code that fits the visible cases. Cells that only plot or
# demonstrate are not run when grading.
#
# Keep your functions simple and loop-based: speed is the topic of the next notebook (im2col).
# Setting the environment variable `CS231N_QUICK=1` before starting Jupyter makes the image demo
# use small images (handy while debugging).

# %% [markdown]
# **On Colab** (or anywhere the course's student kit is not installed yet), the next cell installs
# it: the visible checks and the library these notebooks use. Where the kit is installed already
# (your own virtual environment, JupyterHub), it does nothing. Run it first.

# %% nbgrader={"grade": false, "grade_id": "kit", "locked": true, "schema_version": 3, "solution": false}
# Installs the student kit when it is missing; nothing here needs changing.
import importlib
import importlib.util
import os
import subprocess
import sys

# Where the kit comes from: a URL of its wheel, a path, or a Google Drive path (set by your instructor).
KIT_SOURCE = ""

if importlib.util.find_spec("cs231n_checks") is None:
    if not KIT_SOURCE:
        raise RuntimeError("The course's student kit is not installed. Install the wheel your instructor "
                           "handed out (pip install cs231n_student-...-py3-none-any.whl) in the environment "
                           "of this notebook, or ask your instructor for the kit's address.")
    if KIT_SOURCE.startswith("/content/drive") and not os.path.exists(KIT_SOURCE):
        from google.colab import drive

        drive.mount("/content/drive")
    subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", KIT_SOURCE])
    importlib.invalidate_caches()
    print("Installed the student kit from", KIT_SOURCE)

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false}
# Run this cell next. It only imports; nothing here needs changing.
import os

import matplotlib.pyplot as plt
import numpy as np

from cs231n_checks import check
from cs231n_lib.gradient_check import eval_numerical_gradient_array, rel_error

np.set_printoptions(precision=4, suppress=True)
plt.rcParams["figure.dpi"] = 80

# %% [markdown]
# ## 1. Why not fully connected layers?
#
# An ordinary neural network treats its input as one long vector, and every neuron of the first
# hidden layer has one weight per input number. For a tiny CIFAR-10 image of $32 \times 32$ pixels
# and 3 colour channels, that is $32 \cdot 32 \cdot 3 = 3072$ weights per neuron: manageable. For a
# modest $200 \times 200 \times 3$ photo it is already $120{,}000$ weights *per neuron*, and we
# want many neurons in many layers. Full connectivity wastes parameters and overfits quickly.
#
# ConvNets use the fact that the input is an image, and arrange their neurons in **volumes** with
# a width, a height and a depth. Two ideas make the layer small and fast:
#
# ### Local connectivity
#
# Each neuron looks only at a small patch of the input: its **receptive field**, say
# $F \times F$ pixels (this $F$ is the *filter size*). Along the depth, however, it always sees
# **all** channels. Connections are local in space (width and height) but full in depth.
#
# *Examples.*
# - Input $32 \times 32 \times 3$, receptive field $5 \times 5$: each neuron has
#   $5 \cdot 5 \cdot 3 = 75$ weights and one bias.
# - Input $16 \times 16 \times 20$, receptive field $3 \times 3$: each neuron has
#   $3 \cdot 3 \cdot 20 = 180$ weights: small in space, but all 20 channels deep.
#
# A neuron still computes what neurons always compute, a dot product of its weights with its
# inputs plus a bias (usually followed by a non-linearity such as ReLU); only its inputs are fewer.
#
# ### Depth columns and depth slices
#
# The output of a conv layer is itself a volume. Several neurons look at **the same** patch, each
# with different weights, looking for something different (an edge at some angle, a blob of some
# colour). The neurons stacked along the depth at one position form a **depth column** (also
# called a *fibre*). All neurons at one depth form a **depth slice**, a 2-D **activation map**.
#
# In this kit arrays are stored **NCHW**: `x[n, c, i, j]` is sample `n`, channel `c`, row `i`,
# column `j`. So for one sample `n`,
#
# - the depth column at position `(i, j)` is `x[n, :, i, j]` (a vector of length C);
# - the depth slice (activation map) number `d` is `x[n, d, :, :]` (an H x W image).
#
# (The course notes write volumes as width x height x depth, e.g. `X[x, y, :]`; NCHW just puts the
# depth first. Filters are stored as `w[f, c, i, j]`: filter `f`, channel `c`, row `i`, column `j`.)

# %%
# A depth column and a depth slice of a small random volume (one sample, 4 channels, 5x6).
volume = np.arange(4 * 5 * 6).reshape(1, 4, 5, 6)
print("volume shape (N, C, H, W):", volume.shape)
print("depth column at row 2, column 3:", volume[0, :, 2, 3])
print("depth slice number 1 (an activation map):")
print(volume[0, 1])

# %% [markdown]
# ## 2. How big is the output?
#
# Three hyperparameters fix how many neurons there are and where they sit:
#
# 1. The **depth** $K$ of the output: the number of filters. Each filter produces one activation
#    map.
# 2. The **stride** $S$: how many pixels the filter moves between neighbouring outputs. $S = 1$
#    visits every position; $S = 2$ skips every other one and roughly halves the width and height.
# 3. The **zero padding** $P$: how many rings of zeros we add around the input (on every side).
#    Padding lets us control the output size; most often it is used to keep it equal to the input
#    size.
#
# Along one axis, an input of size $W$ padded by $P$ on both sides has $W + 2P$ positions. A filter
# of size $F$ fits in $W + 2P - F + 1$ places when moved one step at a time; with stride $S$ we
# take one of every $S$ of them, starting at the first. The number of outputs is therefore
#
# $$
# W_{out} = \frac{W - F + 2P}{S} + 1 .
# $$
#
# The same rule gives the height. *Worked examples:*
#
# | input $W$ | filter $F$ | stride $S$ | pad $P$ | $(W - F + 2P)/S + 1$ |
# |---|---|---|---|---|
# | 7 | 3 | 1 | 0 | $(7 - 3)/1 + 1 = 5$ |
# | 7 | 3 | 2 | 0 | $(7 - 3)/2 + 1 = 3$ |
# | 5 | 3 | 1 | 1 | $(5 - 3 + 2)/1 + 1 = 5$ (same size as the input) |
# | 5 | 3 | 2 | 1 | $(5 - 3 + 2)/2 + 1 = 3$ |
# | 5 | 3 | 3 | 1 | $(5 - 3 + 2)/3 + 1 = 2.33$: **invalid** |
# | 10 | 3 | 2 | 0 | $(10 - 3)/2 + 1 = 4.5$: **invalid** |
#
# **"Same" padding.** With stride 1, choosing $P = (F - 1)/2$ gives $W_{out} = W$: a $3 \times 3$
# filter with $P = 1$, a $5 \times 5$ filter with $P = 2$. This is the most common setting
# ($F = 3, S = 1, P = 1$), because it lets the architecture decide where the size shrinks (in
# pooling layers) rather than every conv layer eating away the borders.
#
# **Invalid settings.** When $(W - F + 2P)$ is not a multiple of $S$ the result is not an integer:
# the neurons do not tile the input neatly and symmetrically. In the last row, positions
# $0, 2, 4, 6$ fit (covering inputs $0..8$) and input 9 would be left over. A library can crop,
# pad unevenly, or refuse; ours **refuses** with a `ValueError` that shows the arithmetic, so that
# a badly sized network fails loudly instead of silently dropping pixels. A filter larger than the
# padded input ($F > W + 2P$) cannot be placed at all, and is refused as well.
#
# **A real example.** The first layer of AlexNet (Krizhevsky et al., 2012, the ImageNet winner)
# takes $227 \times 227 \times 3$ images with $F = 11$, $S = 4$, $P = 0$:
# $(227 - 11)/4 + 1 = 55$, and with $K = 96$ filters its output is $55 \times 55 \times 96$. The
# paper says the input was $224 \times 224$, but $(224 - 11)/4 + 1 = 54.25$: that cannot be right.
# No symmetric padding rescues it either, because $224 - 11 + 2P$ is always odd. Three extra pixels
# on one side (reaching 227) would, which is the usual guess about what happened.
#
# *The same in one dimension, with numbers.* Below, one neuron with weights $(1, 0, -1)$ and
# bias 0 slides over the input $(0, 1, 2, -1, 1)$ padded with one zero on each side ($W = 5$,
# $F = 3$, $P = 1$). With $S = 1$ it fits 5 times, with $S = 2$ three times. With $S = 3$ the
# windows would start at padded indices 0 and 3, and the next one would need indices 6 to 8, past
# the end of the 7 padded entries; stopping after two windows leaves the last entry unused:
# $(5 - 3 + 2)/3 + 1 = 2.33$ does not tile.

# %%
signal = np.array([0.0, 1, 2, -1, 1])
weights = np.array([1.0, 0, -1])
padded = np.pad(signal, 1)
print("padded input:", padded)
for S in (1, 2):
    starts = range(0, len(padded) - len(weights) + 1, S)
    outputs = [float(np.dot(padded[s:s + 3], weights)) for s in starts]
    print(f"stride {S}: windows start at {list(starts)}, outputs {outputs}")


# %% [markdown]
# ### Your task: `conv_output_size`
#
# Implement the rule for one axis. Return an `int`. Raise a `ValueError` (with a message that
# shows the numbers) when the filter does not fit into the padded input or when the result is not
# an integer. Use integer arithmetic (`%` and `//`), not floats: `4.0` is not an acceptable size.

# %% nbgrader={"grade": false, "grade_id": "conv_output_size", "locked": false, "schema_version": 3, "solution": true}
def conv_output_size(W, F, S=1, P=0):
    """Number of positions of a filter along one axis.

    Inputs:
    - W: input size along the axis (width or height), a positive int
    - F: filter size, a positive int
    - S: stride, a positive int
    - P: zero padding added on each side, an int >= 0

    Returns the output size (W - F + 2P)/S + 1 as an int.
    Raises ValueError if the filter does not fit into the padded input (F > W + 2P) or if
    (W - F + 2P) is not a multiple of S.
    """
    ### BEGIN SOLUTION
    span = W - F + 2 * P
    if span < 0:
        raise ValueError(f"filter does not fit: F = {F} is larger than W + 2P = {W + 2 * P}")
    if span % S != 0:
        raise ValueError(
            f"(W - F + 2P)/S + 1 = ({W} - {F} + {2 * P})/{S} + 1 = {span / S + 1:g} is not an integer"
        )
    return span // S + 1
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test_conv_output_size", "locked": true, "points": 2, "schema_version": 3, "solution": false}
# conv_output_size: 2 points, 5 visible cases here, more when graded.
# A case passes when the size matches, or when both your function and the library raise ValueError.
check("conv_output_size", cases=[
    {"W": 7, "F": 3, "S": 1, "P": 0},
    {"W": 7, "F": 3, "S": 2, "P": 0},
    {"W": 5, "F": 3, "S": 1, "P": 1},
    {"W": 10, "F": 3, "S": 2, "P": 0},
    {"W": 227, "F": 11, "S": 4, "P": 0},
])
### BEGIN HIDDEN TESTS
check("conv_output_size", cases=[
    {"W": 5, "F": 3, "S": 3, "P": 1},
    {"W": 224, "F": 11, "S": 4, "P": 0},
    {"W": 32, "F": 5, "S": 1, "P": 2},
    {"W": 3, "F": 5, "S": 1, "P": 0},
    {"W": 3, "F": 7, "S": 2, "P": 0},
    {"W": 3, "F": 5, "S": 1, "P": 1},
    {"W": 1, "F": 1, "S": 1, "P": 0},
    {"W": 6, "F": 1, "S": 2, "P": 0},
    {"W": 14, "F": 4, "S": 3, "P": 1},
    {"W": 13, "F": 4, "S": 3, "P": 1},
])
### END HIDDEN TESTS

# %% cs231n={"grading": "skip"}
# Try your function on a few settings, including the invalid ones from the table above.
settings = [(7, 3, 1, 0), (7, 3, 2, 0), (5, 3, 3, 1), (10, 3, 2, 0), (227, 11, 4, 0), (224, 11, 4, 0)]
for W, F, S, P in settings:
    try:
        print(f"W={W:3d} F={F:2d} S={S} P={P}: output size {conv_output_size(W, F, S, P)}")
    except NotImplementedError:
        print("implement conv_output_size first")
        break
    except ValueError as err:
        print(f"W={W:3d} F={F:2d} S={S} P={P}: ValueError: {err}")

# %% [markdown]
# **Written answer (2 points, graded by a person).** With stride 1, a 3x3 filter and zero padding $P = 1$
# the output has the same width and height as the input. Use the output-size rule to say why, give
# the padding that keeps the size for any odd filter size $F$, and say what goes wrong with an even $F$.
# Then give one reason, beyond bookkeeping, why keeping the spatial size is useful in a deep network.
# Write your answer in the cell below.

# %% [markdown] nbgrader={"grade": true, "grade_id": "q_same_padding", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# ### BEGIN SOLUTION
# Rubric (2 points):
# - 1 point: with $S = 1$ the rule gives $W - F + 2P + 1$, which equals $W$ exactly when $2P = F - 1$,
#   i.e. $P = (F - 1)/2$ (so $P = 1$ for $F = 3$, $P = 2$ for $F = 5$). For an even $F$, $(F-1)/2$ is not
#   an integer: the padding would have to be uneven (one more row/column on one side).
# - 1 point: one real reason: without padding every layer shrinks the map by $F - 1$, so a deep stack
#   runs out of pixels and the border is used by fewer windows than the centre (information at the
#   edges is washed out); with "same" padding the depth of the network and the spatial size can be
#   chosen independently, and the downsampling is left to the pooling/strided layers.
# Half a point for the formula without the reason for even F.
# ### END SOLUTION

# %% [markdown]
# ## 3. Parameter sharing
#
# Count AlexNet's first layer with local connectivity alone: $55 \cdot 55 \cdot 96 = 290{,}400$
# neurons, each with $11 \cdot 11 \cdot 3 = 363$ weights and 1 bias, i.e.
# $290{,}400 \cdot 364 = 105{,}705{,}600$ parameters for one layer. Far too many.
#
# The fix is one reasonable assumption: **if a feature is worth detecting at one position, it is
# worth detecting at every position.** A horizontal edge is a horizontal edge wherever it sits in
# the image. So all neurons of one depth slice share **the same weights and bias**. Now the layer
# has only 96 distinct weight sets: $96 \cdot 363 = 34{,}848$ weights plus 96 biases,
# $34{,}944$ parameters, 3000 times fewer.
#
# Because every neuron of a slice applies the same weights at a different position, computing a
# slice means *sliding* one set of weights over the input, taking a dot product at each position.
# That is a (discrete) **convolution** of the input with the weights, hence the name of the layer,
# and the shared weight set is called a **filter** or **kernel**.
#
# During backpropagation every neuron of a slice contributes a gradient for the shared weights;
# these contributions are **summed** into the one gradient of the filter (you will write this sum
# in section 7).
#
# Parameter sharing is an assumption, and it can be wrong: for photos of faces that are all
# centred the same way, eye features belong near the top and mouth features near the bottom. A
# layer that keeps local connectivity but drops the sharing is called a **locally connected
# layer**.

# %%
# The counts of AlexNet's first layer, with and without sharing.
out_side, depth, field = 55, 96, 11 * 11 * 3
neurons = out_side * out_side * depth
print(f"neurons: {neurons:,}")
print(f"without sharing: {neurons:,} x ({field} weights + 1 bias) = {neurons * (field + 1):,} parameters")
print(f"with sharing:    {depth} x {field} weights + {depth} biases = {depth * field + depth:,} parameters")


# %% [markdown]
# ## 4. The forward pass
#
# Put together, a conv layer takes an input `x` of shape $(N, C, H, W)$, filters `w` of shape
# $(F, C, HH, WW)$ (here $F$ counts the *filters*; their height and width are $HH$ and $WW$) and
# biases `b` of shape $(F,)$, plus a stride $S$ and padding $P$. With $x_{pad}$ the input padded by
# $P$ zeros on every side of the height and width, output $(n, f, i, j)$ is
#
# $$
# \text{out}[n, f, i, j] = b[f] + \sum_{c=0}^{C-1} \sum_{p=0}^{HH-1} \sum_{q=0}^{WW-1}
# w[f, c, p, q]\; x_{pad}[n, c,\; iS + p,\; jS + q],
# $$
#
# for $0 \le i < H_{out}$ and $0 \le j < W_{out}$, with $H_{out} = (H - HH + 2P)/S + 1$ and
# $W_{out} = (W - WW + 2P)/S + 1$. The output has shape $(N, F, H_{out}, W_{out})$: one activation
# map per filter, stacked along the depth.
#
# In NumPy the triple sum over $c, p, q$ is one line: take the receptive field
# `x_pad[n, :, i*S:i*S+HH, j*S:j*S+WW]` (shape $(C, HH, WW)$), multiply it elementwise by
# `w[f]` (same shape) and sum.
#
# *A worked example.* Let `x` have shape `(1, 4, 11, 11)`, 5x5 filters, $S = 2$, $P = 0$. The
# output is $(11 - 5)/2 + 1 = 4$ positions wide and high. The first activation map starts
#
# ```
# out[0, 0, 0, 0] = np.sum(x[0, :, 0:5, 0:5]  * w[0]) + b[0]
# out[0, 0, 0, 1] = np.sum(x[0, :, 0:5, 2:7]  * w[0]) + b[0]   # one step right: columns move by S = 2
# out[0, 0, 0, 3] = np.sum(x[0, :, 0:5, 6:11] * w[0]) + b[0]   # the last position ends at column 10
# out[0, 0, 2, 3] = np.sum(x[0, :, 4:9, 6:11] * w[0]) + b[0]   # two steps down, three right
# ```
#
# and the second map uses the second filter and bias everywhere: `... * w[1]) + b[1]`. Notice the
# same `w[0]` at every position of map 0 (parameter sharing) and the windows advancing by 2 (the
# stride).
#
# *A remark on the name.* In signal processing, a convolution flips the kernel before sliding it;
# what we compute (no flip) is strictly a *cross-correlation*. Deep-learning libraries all call it
# convolution; since the filters are learned, the flip makes no difference to what a network can
# express. The flip will come back, though, in the backward pass (notebook 2).
#
# ### Your task: `conv_forward_naive`
#
# Write the forward pass with loops over the outputs: clarity first, speed later. Hints:
#
# - `np.pad(x, ((0, 0), (0, 0), (P, P), (P, P)))` pads only the height and width with zeros;
# - use your `conv_output_size` for the output size (it refuses impossible settings for you);
# - create the output with the input's dtype (`np.zeros(..., dtype=x.dtype)`): a float32 input
#   must give a float32 output;
# - the optional `conv_param['dilation']` is the subject of section 9; leave it for now (the
#   graded checks up to section 9 never pass it).

# %% nbgrader={"grade": false, "grade_id": "conv_forward_naive", "locked": false, "schema_version": 3, "solution": true}
def conv_forward_naive(x, w, b, conv_param):
    """Forward pass of a convolutional layer, written with loops.

    Inputs:
    - x: input data of shape (N, C, H, W)
    - w: filter weights of shape (F, C, HH, WW)
    - b: biases of shape (F,)
    - conv_param: dict with
      - 'stride': number of pixels between neighbouring receptive fields (both directions)
      - 'pad': number of zeros added on every side of the height and width
      - 'dilation' (optional, default 1; section 9): spacing between the filter taps

    Returns a tuple of:
    - out: output of shape (N, F, H_out, W_out) and the dtype of x, where
      H_out = (H - HH + 2 * pad) / stride + 1 and W_out = (W - WW + 2 * pad) / stride + 1
    - cache: (x, w, b, conv_param), for the backward pass
    """
    out = None
    ### BEGIN SOLUTION
    stride, pad = conv_param["stride"], conv_param["pad"]
    dilation = conv_param.get("dilation", 1)
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    # a dilated filter spans more input than it has taps: (taps - 1) * dilation + 1
    span_h, span_w = (HH - 1) * dilation + 1, (WW - 1) * dilation + 1
    H_out = conv_output_size(H, span_h, stride, pad)
    W_out = conv_output_size(W, span_w, stride, pad)
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out = np.zeros((N, F, H_out, W_out), dtype=x.dtype)
    for n in range(N):
        for f in range(F):
            for i in range(H_out):
                for j in range(W_out):
                    top, left = i * stride, j * stride
                    field = x_pad[n, :, top:top + span_h:dilation, left:left + span_w:dilation]
                    out[n, f, i, j] = np.sum(field * w[f]) + b[f]
    ### END SOLUTION
    cache = (x, w, b, conv_param)
    return out, cache


# %% nbgrader={"grade": true, "grade_id": "test_conv_forward_naive", "locked": true, "points": 4, "schema_version": 3, "solution": false}
# conv_forward_naive: 4 points, 3 visible cases here, more when graded.
check("conv_forward_naive", cases=[
    {"x": (2, 3, 4, 4), "w": (3, 3, 3, 3), "stride": 1, "pad": 1, "seed": 0},
    {"x": (1, 2, 7, 7), "w": (2, 2, 3, 3), "stride": 2, "pad": 0, "seed": 1},
    {"x": (2, 3, 5, 7), "w": (2, 3, 3, 3), "stride": 2, "pad": 1, "seed": 2, "dtype": "float32"},
])
### BEGIN HIDDEN TESTS
check("conv_forward_naive", cases=[
    {"x": (3, 2, 7, 5), "w": (4, 2, 3, 3), "stride": 2, "pad": 1, "seed": 11, "dtype": "float32"},
    {"x": (2, 3, 6, 6), "w": (2, 3, 1, 1), "stride": 1, "pad": 0, "seed": 12},
    {"x": (1, 1, 9, 9), "w": (1, 1, 5, 5), "stride": 2, "pad": 2, "seed": 13},
    {"x": (2, 4, 5, 8), "w": (3, 4, 2, 4), "stride": 1, "pad": 0, "seed": 14},
    {"x": (1, 3, 11, 11), "w": (2, 3, 5, 5), "stride": 3, "pad": 3, "seed": 15},
    {"x": (4, 1, 6, 6), "w": (5, 1, 3, 3), "stride": 1, "pad": 2, "seed": 16, "dtype": "float32"},
    {"x": (1, 2, 3, 3), "w": (1, 2, 3, 3), "stride": 1, "pad": 0, "seed": 17},
])
### END HIDDEN TESTS

# %% [markdown]
# ## 5. Watch it happen: an interactive convolution
#
# The course notes show a famous animation of a conv layer. Let us rebuild it. The input is
# $5 \times 5 \times 3$ (one sample, three channels) padded with $P = 1$ (the grey border), there
# are $K = 2$ filters of size $3 \times 3 \times 3$, and the stride is $S = 2$, so the output is
# $(5 - 3 + 2)/2 + 1 = 3$ wide and high, and 2 deep. Small integers keep the arithmetic readable.
#
# Each row of the figure is one input channel: the padded channel with the receptive field
# outlined in red, the matching channel of the filter, and their elementwise products. The output
# value is the sum of all 27 products plus the bias. Move the slider through the 18 output
# positions (if the slider does not show up, the static figure below it shows every position of
# the first filter).

# %% cs231n={"grading": "skip"}
# The demo's volumes: integers so that the sums can be checked by eye.
demo_rng = np.random.default_rng(231)
demo_x = demo_rng.integers(0, 3, size=(1, 3, 5, 5)).astype(np.float64)
demo_w = demo_rng.integers(-1, 2, size=(2, 3, 3, 3)).astype(np.float64)
demo_b = np.array([1.0, 0.0])
demo_param = {"stride": 2, "pad": 1}
demo_x_pad = np.pad(demo_x, ((0, 0), (0, 0), (1, 1), (1, 1)))
DEMO_OUT = 3  # (5 - 3 + 2*1)/2 + 1

# The output from the definition, one receptive field at a time.
demo_out = np.zeros((1, 2, DEMO_OUT, DEMO_OUT))
for f in range(2):
    for i in range(DEMO_OUT):
        for j in range(DEMO_OUT):
            field = demo_x_pad[0, :, 2 * i:2 * i + 3, 2 * j:2 * j + 3]
            demo_out[0, f, i, j] = np.sum(field * demo_w[f]) + demo_b[f]

try:
    yours, _ = conv_forward_naive(demo_x, demo_w, demo_b, demo_param)
    print("your conv_forward_naive agrees with the demo:", np.allclose(yours, demo_out))
except NotImplementedError:
    print("implement conv_forward_naive to compare it with the demo")

# %% cs231n={"grading": "skip"}
from matplotlib.patches import Rectangle


def draw_grid(ax, values, title, vmin=-2, vmax=2, cmap="coolwarm", box=None, shade_border=False, done=None):
    # Draw a small matrix with its numbers written in, optionally outlining a box; entries
    # where `done` is False are left blank (outputs not computed yet).
    shown = values if done is None else np.where(done, values, np.nan)
    ax.imshow(shown, cmap=cmap, vmin=vmin, vmax=vmax)
    rows, cols = values.shape
    for r in range(rows):
        for c in range(cols):
            hidden = done is not None and not done[r, c]
            text = "" if hidden else f"{values[r, c] + 0.0:g}"  # + 0.0 turns -0 into 0
            ax.text(c, r, text, ha="center", va="center", fontsize=9)
            if shade_border and (r in (0, rows - 1) or c in (0, cols - 1)):
                ax.add_patch(Rectangle((c - 0.5, r - 0.5), 1, 1, color="0.85", zorder=0.5))
    if box is not None:
        top, left, size = box
        ax.add_patch(Rectangle((left - 0.5, top - 0.5), size, size, fill=False, edgecolor="red", lw=3))
    ax.set_xticks(np.arange(-0.5, cols, 1), minor=True)
    ax.set_yticks(np.arange(-0.5, rows, 1), minor=True)
    ax.grid(which="minor", color="white", lw=1)
    ax.tick_params(which="both", length=0, labelbottom=False, labelleft=False)
    ax.set_title(title, fontsize=10)


def show_position(k):
    # Output position k = 0..17: filter k // 9, row (k % 9) // 3, column k % 3.
    f, rest = divmod(k, DEMO_OUT * DEMO_OUT)
    i, j = divmod(rest, DEMO_OUT)
    top, left = 2 * i, 2 * j
    fig, axes = plt.subplots(3, 4, figsize=(11, 8))
    sums = []
    for c in range(3):
        products = demo_x_pad[0, c, top:top + 3, left:left + 3] * demo_w[f, c]
        sums.append(products.sum())
        draw_grid(axes[c, 0], demo_x_pad[0, c], f"x channel {c} (padded)", 0, 4, "Blues",
                  box=(top, left, 3), shade_border=True)
        draw_grid(axes[c, 1], demo_w[f, c], f"filter w{f}, channel {c}", -2, 2, "RdBu_r")
        draw_grid(axes[c, 2], products, f"products, sum = {products.sum():g}", -3, 3, "PiYG")
    order = np.arange(2 * DEMO_OUT * DEMO_OUT).reshape(2, DEMO_OUT, DEMO_OUT)
    for g in range(2):
        draw_grid(axes[g, 3], demo_out[0, g], f"output map {g}", -15, 15, "PRGn",
                  box=(i, j, 1) if g == f else None, done=order[g] <= k)
    axes[2, 3].axis("off")
    equation = " + ".join(f"({s:g})" for s in sums) + f" + b{f} ({demo_b[f]:g}) = {demo_out[0, f, i, j]:g}"
    axes[2, 3].text(0, 0.5, f"out[0, {f}, {i}, {j}] =\n{equation}", fontsize=10, va="center", wrap=True)
    fig.suptitle(f"output position {k}: filter {f}, row {i}, column {j} "
                 f"(receptive field rows {top}-{top + 2}, columns {left}-{left + 2} of the padded input)")
    fig.tight_layout()
    plt.show()


try:
    import ipywidgets as widgets
except ImportError:
    widgets = None

if widgets is not None:
    widgets.interact(show_position, k=widgets.IntSlider(min=0, max=17, step=1, value=0, description="position"))
else:
    print("ipywidgets is not installed: showing the first position; see the static overview below")
    show_position(0)

# %% cs231n={"grading": "skip"}
# Static overview (works everywhere, e.g. in an exported HTML): every position of filter 0. Each
# row of panels is one output position; its three panels are the three channels of the padded
# input with the receptive field outlined, each titled with the sum of its products with the
# filter's channel. The output value is the sum of the three plus the bias b0.
fig, axes = plt.subplots(DEMO_OUT * DEMO_OUT, 3, figsize=(8, 2.6 * DEMO_OUT * DEMO_OUT))
for i in range(DEMO_OUT):
    for j in range(DEMO_OUT):
        top, left = 2 * i, 2 * j
        sums = [np.sum(demo_x_pad[0, c, top:top + 3, left:left + 3] * demo_w[0, c]) for c in range(3)]
        for c in range(3):
            title = f"channel {c}: products sum to {sums[c]:g}"
            if c == 1:  # the middle panel's title carries the sum over the channels
                title = (f"out[0,0,{i},{j}] = {' + '.join(f'({s:g})' for s in sums)} + b0 ({demo_b[0]:g})"
                         f" = {demo_out[0, 0, i, j]:g}\n" + title)
            draw_grid(axes[i * DEMO_OUT + j, c], demo_x_pad[0, c], title, 0, 4, "Blues",
                      box=(top, left, 3), shade_border=True)
fig.suptitle("filter 0, stride 2: the receptive field jumps two pixels between outputs")
fig.tight_layout(rect=(0, 0, 1, 0.98))
plt.show()

# %% [markdown]
# ## 6. Image processing with convolutions
#
# Before any learning happens, we can *design* filters by hand and see what a conv layer does to
# real pictures. We load two that ship with matplotlib's sample data, a photograph of Grace Hopper
# and an MRI scan of a head (a gray picture, copied to the three colour channels), crop them to
# squares and shrink them so that your loop implementation stays quick. They form one batch of
# shape $(2, 3, H, W)$.
#
# We build four filters, each $3 \times 3 \times 3$, and apply them with $S = 1, P = 1$ so the
# output keeps the image size:
#
# - **grayscale**: only the centre tap is non-zero, weighting red, green and blue by
#   $0.30, 0.59, 0.11$ (how bright each colour looks to the eye). Such a filter is really a
#   $1 \times 1$ convolution (section 8): it mixes the channels of each pixel and ignores the
#   neighbours.
# - **horizontal edges** and **vertical edges**: the *Sobel* kernels
#   $$
#   G_y = \begin{pmatrix} 1 & 2 & 1 \\ 0 & 0 & 0 \\ -1 & -2 & -1 \end{pmatrix}, \qquad
#   G_x = \begin{pmatrix} 1 & 0 & -1 \\ 2 & 0 & -2 \\ 1 & 0 & -1 \end{pmatrix},
#   $$
#   applied to the grayscale image (each channel's slice is the kernel times that channel's gray
#   weight). On a flat region the weights cancel and the response is zero; across an edge the two
#   sides differ and the response is large, with a sign that tells which side is brighter.
# - **blur**: the average of the 3x3 neighbourhood of the grayscale image.
#
# Filters like the edge detectors are what the first layer of a trained ConvNet learns by itself.

# %% cs231n={"grading": "skip"}
import matplotlib.cbook as cbook


def square_thumbnail(image, size):
    # Centre-crop to a square and shrink by averaging k x k blocks; returns (3, size, size) floats.
    H, W, _ = image.shape
    k = min(H, W) // size
    side = k * size
    top, left = (H - side) // 2, (W - side) // 2
    crop = image[top:top + side, left:left + side].astype(np.float64)
    return crop.reshape(size, k, size, k, 3).mean(axis=(1, 3)).transpose(2, 0, 1)


def mri_slice():
    # A 256x256 16-bit scan (matplotlib's MRI demo), scaled to 0..255 and copied to 3 channels.
    with cbook.get_sample_data("s1045.ima.gz") as f:
        scan = np.frombuffer(f.read(), np.uint16).reshape(256, 256).astype(np.float64)
    return np.repeat((255 * scan / scan.max())[:, :, None], 3, axis=2)


# CS231N_QUICK=1 shrinks the pictures (used by the tests and for quick debugging).
photo_size = 48 if os.environ.get("CS231N_QUICK", "") == "1" else 128
photos = np.stack([
    square_thumbnail(plt.imread(cbook.get_sample_data("grace_hopper.jpg")), photo_size),
    square_thumbnail(mri_slice(), photo_size),
])
print("batch of pictures:", photos.shape, photos.dtype)

gray = np.array([0.30, 0.59, 0.11])
sobel_y = np.array([[1, 2, 1], [0, 0, 0], [-1, -2, -1]], dtype=np.float64)
blur = np.full((3, 3), 1 / 9)
photo_filters = np.zeros((4, 3, 3, 3))
photo_filters[0, :, 1, 1] = gray                                   # grayscale (a 1x1 filter in disguise)
photo_filters[1] = gray[:, None, None] * sobel_y                   # horizontal edges
photo_filters[2] = gray[:, None, None] * sobel_y.T                 # vertical edges
photo_filters[3] = gray[:, None, None] * blur                      # blur
photo_bias = np.zeros(4)
filter_names = ["grayscale", "horizontal edges", "vertical edges", "blur"]

# %% cs231n={"grading": "skip"}
import time

try:
    start = time.perf_counter()
    filtered, _ = conv_forward_naive(photos, photo_filters, photo_bias, {"stride": 1, "pad": 1})
    print(f"conv_forward_naive on {photos.shape}: {time.perf_counter() - start:.2f} s")
except NotImplementedError:
    filtered = None
    print("implement conv_forward_naive first, then run this cell again")

if filtered is not None:
    fig, axes = plt.subplots(2, 6, figsize=(15, 5.6))
    for n in range(2):
        axes[n, 0].imshow(photos[n].transpose(1, 2, 0).astype(np.uint8))
        axes[n, 0].set_title("original")
        for f in range(4):
            # edge maps have both signs: show them around a mid gray
            cmap, lim = ("gray", None) if f in (0, 3) else ("RdBu_r", np.abs(filtered[n, f]).max())
            axes[n, f + 1].imshow(filtered[n, f], cmap=cmap, vmin=-lim if lim else None, vmax=lim)
            axes[n, f + 1].set_title(filter_names[f])
        magnitude = np.hypot(filtered[n, 1], filtered[n, 2])
        axes[n, 5].imshow(magnitude, cmap="gray_r")
        axes[n, 5].set_title("edge strength")
    for ax in axes.ravel():
        ax.axis("off")
    fig.tight_layout()
    plt.show()


# %% [markdown]
# Look at the edge maps: red and blue mark the two directions of a brightness change. On the
# photograph the zero padding shows up as a strong response all along the border: to the filter,
# the image suddenly "drops" to black there. The scan's border is already black, so the padding
# changes nothing there.
# *Edge strength* combines both directions, $\sqrt{G_x^2 + G_y^2}$, and looks like a pencil
# sketch.

# %% [markdown]
# ## 7. The backward pass
#
# During training we receive `dout`, the gradient of the loss with respect to every output
# $\partial L / \partial\,\text{out}[n, f, i, j]$, shape $(N, F, H_{out}, W_{out})$, and must return
# the gradients with respect to `x`, `w` and `b`. Differentiate the forward formula term by term.
# Each output is a sum of products, and each product involves one weight and one input; the chain
# rule sums over every output that a parameter or input took part in:
#
# **Bias.** $b[f]$ is added to every output of map $f$, in every sample:
# $$
# db[f] = \sum_{n, i, j} \text{dout}[n, f, i, j].
# $$
#
# **Weights.** $w[f, c, p, q]$ multiplies $x_{pad}[n, c, iS + p, jS + q]$ at every output
# position of map $f$ (this is parameter sharing seen from the gradient side: one weight, many
# uses, so the gradients of all its uses add up):
# $$
# dw[f, c, p, q] = \sum_{n, i, j} \text{dout}[n, f, i, j]\; x_{pad}[n, c, iS + p, jS + q].
# $$
# In code: for every output position, `dw[f] += dout[n, f, i, j] * receptive_field`.
#
# **Inputs.** An input pixel belongs to every receptive field that covers it (neighbouring
# fields overlap when $S < HH$), and gets a contribution from each:
# $$
# dx_{pad}[n, c, iS + p, jS + q] \mathrel{+}= w[f, c, p, q]\; \text{dout}[n, f, i, j]
# \quad \text{for all } f, i, j, p, q .
# $$
# In code: for every output position, `dx_pad[n, :, window] += dout[n, f, i, j] * w[f]`. Finally
# the padding was not part of the input: drop it, `dx = dx_pad[:, :, P:P+H, P:P+W]`.
#
# *A one-dimensional sanity check.* Input $x = (x_0, x_1, x_2, x_3)$, filter $w = (w_0, w_1)$,
# $S = 1$, $P = 0$: the outputs are $o_0 = w_0 x_0 + w_1 x_1$, $o_1 = w_0 x_1 + w_1 x_2$,
# $o_2 = w_0 x_2 + w_1 x_3$. Then $\partial L/\partial x_1 = w_1\, d o_0 + w_0\, d o_1$ (two fields
# cover $x_1$) and $\partial L/\partial w_0 = x_0\, d o_0 + x_1\, d o_1 + x_2\, d o_2$ (one weight,
# three uses).
#
# ### Your task: `conv_backward_naive`
#
# Use the cache your forward pass returned. Return arrays in the dtype of the input. If you
# implemented dilation in the forward pass, the same strided windows work here; it is not graded
# for the backward pass.

# %% nbgrader={"grade": false, "grade_id": "conv_backward_naive", "locked": false, "schema_version": 3, "solution": true}
def conv_backward_naive(dout, cache):
    """Backward pass of a convolutional layer, written with loops.

    Inputs:
    - dout: upstream derivatives, shape (N, F, H_out, W_out)
    - cache: the tuple (x, w, b, conv_param) returned by conv_forward_naive

    Returns a tuple of:
    - dx: gradient with respect to x, shape (N, C, H, W)
    - dw: gradient with respect to w, shape (F, C, HH, WW)
    - db: gradient with respect to b, shape (F,)
    """
    dx, dw, db = None, None, None
    ### BEGIN SOLUTION
    x, w, b, conv_param = cache
    stride, pad = conv_param["stride"], conv_param["pad"]
    dilation = conv_param.get("dilation", 1)
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    _, _, H_out, W_out = dout.shape
    span_h, span_w = (HH - 1) * dilation + 1, (WW - 1) * dilation + 1
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dx_pad = np.zeros_like(x_pad)
    dw = np.zeros_like(w)
    db = dout.sum(axis=(0, 2, 3)).astype(x.dtype)
    for n in range(N):
        for f in range(F):
            for i in range(H_out):
                for j in range(W_out):
                    top, left = i * stride, j * stride
                    rows = slice(top, top + span_h, dilation)
                    cols = slice(left, left + span_w, dilation)
                    dw[f] += dout[n, f, i, j] * x_pad[n, :, rows, cols]
                    dx_pad[n, :, rows, cols] += dout[n, f, i, j] * w[f]
    dx = dx_pad[:, :, pad:pad + H, pad:pad + W]
    ### END SOLUTION
    return dx, dw, db


# %% nbgrader={"grade": true, "grade_id": "test_conv_backward_naive", "locked": true, "points": 4, "schema_version": 3, "solution": false}
# conv_backward_naive: 4 points, 3 visible cases here, more when graded.
# The cache comes from your conv_forward_naive on the same inputs.
check("conv_backward_naive", cases=[
    {"x": (2, 3, 4, 4), "w": (3, 3, 3, 3), "stride": 1, "pad": 1, "seed": 0},
    {"x": (1, 2, 7, 7), "w": (2, 2, 3, 3), "stride": 2, "pad": 0, "seed": 1},
    {"x": (2, 3, 5, 7), "w": (2, 3, 3, 3), "stride": 2, "pad": 1, "seed": 2, "dtype": "float32"},
])
### BEGIN HIDDEN TESTS
check("conv_backward_naive", cases=[
    {"x": (3, 2, 7, 5), "w": (4, 2, 3, 3), "stride": 2, "pad": 1, "seed": 21, "dtype": "float32"},
    {"x": (2, 3, 6, 6), "w": (2, 3, 1, 1), "stride": 1, "pad": 0, "seed": 22},
    {"x": (1, 1, 9, 9), "w": (1, 1, 5, 5), "stride": 2, "pad": 2, "seed": 23},
    {"x": (2, 4, 5, 8), "w": (3, 4, 2, 4), "stride": 1, "pad": 0, "seed": 24},
    {"x": (1, 3, 11, 11), "w": (2, 3, 5, 5), "stride": 3, "pad": 3, "seed": 25},
    {"x": (4, 1, 6, 6), "w": (5, 1, 3, 3), "stride": 1, "pad": 2, "seed": 26, "dtype": "float32"},
    {"x": (1, 2, 3, 3), "w": (1, 2, 3, 3), "stride": 1, "pad": 0, "seed": 27},
])
### END HIDDEN TESTS

# %% [markdown]
# ### Gradient check: numbers instead of calculus
#
# A second, independent way to get the same gradients is to measure them. For a function $L$ of
# an array $x$, nudge one entry by a small $h$ in both directions:
# $$
# \frac{\partial L}{\partial x_k} \approx \frac{L(x + h e_k) - L(x - h e_k)}{2h},
# $$
# the *centred difference*, whose error shrinks like $h^2$. Here $L = \sum \text{out} \odot
# \text{dout}$ (exactly what a backward pass differentiates), and
# `eval_numerical_gradient_array(f, x, dout)` computes this for every entry of `x` (one pair of
# forward passes per entry, so only for small arrays). In float64 with $h = 10^{-5}$ the relative
# error between a correct analytic gradient and the numerical one is typically $10^{-7}$ or
# smaller (`rel_error` reports the worst entry, and entries close to zero are the least precise);
# errors around $10^{-2}$ or larger mean a bug. The cell ends with a verdict: `OK` when every
# error is below $10^{-6}$, `MISMATCH` otherwise.

# %% cs231n={"grading": "skip"}
from cs231n_lib.gradient_check import report_gradient_errors
from cs231n_checks import inputs_changed_by, visible_check_passes

grad_rng = np.random.default_rng(7)
gx = grad_rng.standard_normal((2, 3, 5, 5))
gw = grad_rng.standard_normal((3, 3, 3, 3))
gb = grad_rng.standard_normal(3)
gparam = {"stride": 2, "pad": 1}

try:
    gout, gcache = conv_forward_naive(gx, gw, gb, gparam)
    gdout = grad_rng.standard_normal(gout.shape)
    dx, dw, db = conv_backward_naive(gdout, gcache)
except NotImplementedError:
    print("implement conv_forward_naive and conv_backward_naive first")
else:
    dx_num = eval_numerical_gradient_array(lambda v: conv_forward_naive(v, gw, gb, gparam)[0], gx, gdout)
    dw_num = eval_numerical_gradient_array(lambda v: conv_forward_naive(gx, v, gb, gparam)[0], gw, gdout)
    db_num = eval_numerical_gradient_array(lambda v: conv_forward_naive(gx, gw, v, gparam)[0], gb, gdout)
    errors = {"dx": rel_error(dx, dx_num), "dw": rel_error(dw, dw_num), "db": rel_error(db, db_num)}
    report_gradient_errors(errors, 1e-6, look_at="conv_backward_naive", forward="conv_forward_naive",
                           forward_ok=visible_check_passes("conv_forward_naive"),
                           forward_changes=inputs_changed_by("conv_forward_naive"))
    print()
    print("the first few entries of dw, side by side:")
    print("  analytic:", dw.ravel()[:5])
    print("  numeric: ", dw_num.ravel()[:5])

# %% [markdown]
# **Written answer (2 points, graded by a person).** In your backward pass, `dw` for one filter is a
# *sum* over every image in the batch and every output position, while `dx` at one input pixel gets
# contributions only from a few filters' taps. Explain why, in terms of parameter sharing and
# local connectivity, and say what the sum in `dw` would become if the layer were a locally connected
# layer (a different filter at every position) instead of a convolution.

# %% [markdown] nbgrader={"grade": true, "grade_id": "q_shared_gradient", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# ### BEGIN SOLUTION
# Rubric (2 points):
# - 1 point: parameter sharing: the same weights are used at every output position (and for every
#   image), so by the multivariate chain rule their gradient is the sum of the contributions of
#   every place they were used; this is why `dw` accumulates over n, i, j.
# - 1 point: local connectivity: an input pixel only lies inside the windows that cover it (at most
#   $F \times F$ positions per filter, fewer at the borders and with a stride), so `dx` at that pixel
#   sums only over those windows' taps (and over the filters). For a locally connected layer each
#   position has its own weights: `dw` at a position is the contribution of that position alone
#   (summed over the batch only), with no sum over positions.
# Half a point for "the gradient is summed because the weights are shared" with no reason.
# ### END SOLUTION

# %% [markdown]
# ## 8. 1x1 convolutions
#
# A $1 \times 1$ filter looks puzzling if you think of signals as 2-D: it would only rescale each
# pixel. But our filters always extend through the **full depth** of the input. On a
# $32 \times 32 \times 3$ input, a $1 \times 1$ filter takes a 3-dimensional dot product at each
# pixel; on a $56 \times 56 \times 256$ volume, it takes a 256-dimensional one. A layer of $K$
# such filters applies the same $K \times C$ matrix to the depth column of every pixel:
# $$
# \text{out}[n, :, i, j] = W\, x[n, :, i, j] + b, \qquad W = w[:, :, 0, 0] \in \mathbb{R}^{K \times C}.
# $$
# It mixes channels without looking at neighbours. Networks use it (since *Network in Network*,
# Lin et al. 2013) to change the depth cheaply: going from 256 to 64 channels costs
# $256 \cdot 64 + 64 = 16{,}448$ parameters, against $590{,}080$ for a $3 \times 3$ layer with 256
# filters. The grayscale filter of section 6 was a $1 \times 1$ convolution in disguise.

# %% cs231n={"grading": "skip"}
one_rng = np.random.default_rng(3)
x1 = one_rng.standard_normal((2, 8, 5, 5))
w1 = one_rng.standard_normal((4, 8, 1, 1))
b1 = one_rng.standard_normal(4)
# the same thing as a matrix product applied to every depth column
as_matrix = np.einsum("kc,nchw->nkhw", w1[:, :, 0, 0], x1) + b1[None, :, None, None]
try:
    out1, _ = conv_forward_naive(x1, w1, b1, {"stride": 1, "pad": 0})
    print("1x1 convolution == matrix product on every depth column:", np.allclose(out1, as_matrix))
except NotImplementedError:
    print("implement conv_forward_naive first")


# %% [markdown]
# ## 9. Dilated convolutions (optional graded part)
#
# So far the taps of a filter touch neighbouring pixels. A **dilated** filter leaves gaps: with
# dilation $d$, consecutive taps are $d$ pixels apart. In one dimension, a filter $w$ of size 3
# computes
#
# - $d = 1$ (ordinary): $w_0 x_0 + w_1 x_1 + w_2 x_2$,
# - $d = 2$: $w_0 x_0 + w_1 x_2 + w_2 x_4$ (a gap of one pixel between taps),
# - $d = 3$: $w_0 x_0 + w_1 x_3 + w_2 x_6$.
#
# *Mind the convention.* The course notes count the **gap** ("dilation 0" is ordinary, "dilation
# 1" skips one pixel). This kit, like PyTorch, counts the **spacing**: `dilation=1` is ordinary and
# `dilation=2` skips one pixel. Gap = spacing - 1.
#
# A filter of $F$ taps with dilation $d$ spans $F_{eff} = d(F - 1) + 1$ input pixels, with the
# same number of weights. The output-size rule is unchanged with $F_{eff}$ in place of $F$:
# $$
# W_{out} = \frac{W - F_{eff} + 2P}{S} + 1 .
# $$
# In the forward formula, the tap $(p, q)$ reads $x_{pad}[n, c, iS + pd, jS + qd]$; in NumPy, a
# receptive field is the strided slice `x_pad[n, :, top:top + span_h:d, left:left + span_w:d]`.
#
# **Why bother?** The *effective receptive field* of a stack of layers (how many input pixels one
# neuron depends on) grows by $F_{eff} - 1$ per stride-1 layer. Two $3 \times 3$ layers see
# $5 \times 5$, three see $7 \times 7$. With dilations $1, 2, 4$ the three layers see
# $3, 7, 15$ pixels across: exponential growth for the same weights. This lets a network merge
# information from a wide area in few layers without shrinking the image, which matters for
# dense prediction such as segmentation (Yu and Koltun, 2015).

# %% cs231n={"grading": "skip"}
def stacked_receptive_field(filter_sizes, dilations):
    # Receptive field of a stack of stride-1 layers: 1 + sum of (F_eff - 1).
    field = 1
    for F, d in zip(filter_sizes, dilations):
        field += d * (F - 1)
    return field


print("layers  ordinary 3x3  dilated 3x3 (d = 1, 2, 4, ...)")
for depth in range(1, 5):
    plain = stacked_receptive_field([3] * depth, [1] * depth)
    dilated = stacked_receptive_field([3] * depth, [2 ** k for k in range(depth)])
    print(f"{depth:6d}  {plain:6d} x {plain:<5d} {dilated:6d} x {dilated}")

fig, axes = plt.subplots(1, 3, figsize=(9, 3))
for ax, d in zip(axes, (1, 2, 3)):
    taps = np.zeros((7, 7))
    taps[0:(3 - 1) * d + 1:d, 0:(3 - 1) * d + 1:d] = 1
    ax.imshow(taps, cmap="Reds", vmin=0, vmax=1.5)
    ax.set_xticks(np.arange(-0.5, 7, 1), minor=True)
    ax.set_yticks(np.arange(-0.5, 7, 1), minor=True)
    ax.grid(which="minor", color="0.7")
    ax.tick_params(which="both", length=0, labelbottom=False, labelleft=False)
    ax.set_title(f"3x3 filter, dilation {d}: spans {(3 - 1) * d + 1}")
fig.tight_layout()
plt.show()

# %% [markdown]
# ### Optional task: dilation in `conv_forward_naive`
#
# Go back to your `conv_forward_naive` (section 4), read `dilation = conv_param.get('dilation', 1)`
# and make the receptive fields dilated. Run that cell again, then the check below. Two things
# change: the output size uses $F_{eff}$, and the window takes every $d$-th pixel. Without
# dilation in `conv_param` your function must behave exactly as before.

# %% nbgrader={"grade": true, "grade_id": "test_conv_forward_dilated", "locked": true, "points": 1, "schema_version": 3, "solution": false}
# OPTIONAL. conv_forward_naive with conv_param['dilation']: 1 point, 2 visible cases here, more when graded.
check("conv_forward_dilated", cases=[
    {"x": (1, 2, 7, 7), "w": (2, 2, 3, 3), "stride": 1, "pad": 2, "dilation": 2, "seed": 0},
    {"x": (2, 3, 9, 9), "w": (3, 3, 3, 3), "stride": 2, "pad": 1, "dilation": 2, "seed": 1},
])
### BEGIN HIDDEN TESTS
check("conv_forward_dilated", cases=[
    {"x": (2, 3, 9, 9), "w": (3, 3, 3, 2), "stride": 2, "pad": 2, "dilation": 2, "seed": 31, "dtype": "float32"},
    {"x": (1, 1, 10, 10), "w": (1, 1, 3, 3), "stride": 1, "pad": 0, "dilation": 3, "seed": 32},
    {"x": (2, 2, 8, 6), "w": (2, 2, 2, 2), "stride": 1, "pad": 1, "dilation": 4, "seed": 33},
])
### END HIDDEN TESTS

# %% [markdown]
# ## Summary
#
# - A conv layer connects each neuron to a small $F \times F$ patch through the full depth
#   (local connectivity) and shares one filter across all positions of a depth slice (parameter
#   sharing): AlexNet's first layer drops from 105.7 million to 34,944 parameters.
# - The output size along each axis is $(W - F + 2P)/S + 1$; settings where this is not an
#   integer, or where the filter does not fit, are errors.
# - The forward pass is a dot product between each filter and each receptive field, plus a bias.
# - The backward pass sums: `db` over all outputs of a map, `dw` over every use of each weight,
#   `dx` over every receptive field that covers a pixel.
# - $1 \times 1$ convolutions mix channels; dilated convolutions widen receptive fields for free.
#
# Your loops are correct but slow: the next notebook, **im2col**, turns the whole layer into one
# matrix multiplication.
