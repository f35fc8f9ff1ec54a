# %% [markdown]
# # Assignment 3: Pooling layers
#
# A convolutional network alternates layers that *look* (convolutions) with layers that *shrink*
# (pooling). In this notebook you write the pooling layers yourself: max pooling and average
# pooling, forward and backward, first as plain loops and then as a fast vectorised version.
#
# **Grading.** This notebook is worth **17 points**: 13 points for the functions, checked
# automatically, and 4 points for two written answers, graded by a person (not by the checks):
#
# | function | points |
# |---|---|
# | `max_pool_forward_naive` | 3 |
# | `max_pool_backward_naive` | 3 |
# | `avg_pool_forward_naive` | 2 |
# | `avg_pool_backward_naive` | 2 |
# | `max_pool_forward_fast` | 3 |
# | written answers: ties in max pooling's backward pass (section 3), pooling or strided convolution (section 6) | 2 + 2 |
#
# **How to work.** Write your code between the lines `# YOUR CODE HERE` in the cells that
# `raise NotImplementedError()`, then run the check cell right below. Each check compares your
# function with the reference library `cs231n_lib` on a few small inputs and prints, for every
# case, the relative error (largest absolute difference divided by the largest magnitude) and a
# verdict. When it can tell *where* a result is wrong (the borders, every other column, a
# factor), it prints a hint. When the notebook is graded, the same checks run on more cases that
# you do not see here (other shapes, strides, windows that overlap, `float32` inputs), so aim
# for a function that is right in general, not just on the visible cases.
#
# Your functions should work for `float64` and `float32` inputs and return the dtype they were
# given (`np.zeros(shape, dtype=x.dtype)` does that). Cells marked as demos, plots or timings are
# not graded; they show what your code does.

# %% [markdown]
# **On Colab** (or anywhere the course's student kit is not installed yet), the next cell installs
# it: the visible checks and the library these notebooks use. Where the kit is installed already
# (your own virtual environment, JupyterHub), it does nothing. Run it first.

# %% nbgrader={"grade": false, "grade_id": "kit", "locked": true, "schema_version": 3, "solution": false, "task": false}
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

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
import os
import time

import matplotlib.pyplot as plt
import numpy as np

import cs231n_lib
from cs231n_lib import im2col, pool_output_size
from cs231n_checks import check

plt.rcParams["figure.figsize"] = (10.0, 4.0)
plt.rcParams["image.cmap"] = "gray"

# %% cs231n={"grading": "skip"}
# CS231N_QUICK=1 shrinks the timing experiments to a few seconds (the course kit's tests set it).
QUICK = os.environ.get("CS231N_QUICK") == "1"

# %% [markdown]
# ## 1. Why pool?
#
# A pooling layer slides a small window over each **depth slice** (channel) of its input and
# replaces the window by one number that summarises it: the maximum, or the mean. Three
# properties make it useful between convolutions.
#
# * **It downsamples.** With a $2\times2$ window moved by 2 pixels, every channel shrinks by 2 in
#   height and in width: a $224\times224\times64$ volume becomes $112\times112\times64$, and 75% of
#   the activations are dropped. Every later layer then does four times less work, and the fully
#   connected layers at the end need far fewer weights, which also limits overfitting.
# * **It has no parameters.** Pooling computes a fixed function of its input. There is nothing to
#   learn, only two hyperparameters to choose.
# * **It tolerates small shifts.** If a feature moves by a pixel but stays inside the same window,
#   the maximum (or the mean) barely changes. The network becomes less sensitive to small
#   translations and distortions of the input.
#
# The depth is never pooled: each channel is pooled on its own, so $D_2 = D_1$.
#
# ### Sizes
#
# A pooling layer takes a volume of size $W_1\times H_1\times D_1$ and two hyperparameters, the
# window size (spatial extent) $F$ and the stride $S$. It produces $W_2\times H_2\times D_2$ with
#
# $$W_2 = \frac{W_1 - F}{S} + 1, \qquad H_2 = \frac{H_1 - F}{S} + 1, \qquad D_2 = D_1 .$$
#
# This is the convolution rule with no padding: zero-padding is rarely used with pooling. The
# window may also be rectangular (`pool_height` $\neq$ `pool_width`); the stride is the same in
# both directions here.
#
# In practice you meet two settings: $F=2, S=2$ (by far the most common) and $F=3, S=2$, called
# **overlapping pooling** because neighbouring windows share a row or column (AlexNet used it).
# Larger windows throw away too much information.
#
# The kit computes these sizes in one place, `cs231n_lib.pool_output_size(W, F, S)`, which
# raises a `ValueError` explaining the arithmetic when a setting does not tile the input. Use it
# in your code.

# %% cs231n={"grading": "skip"}
for W, F, S, what in [(224, 2, 2, "VGG: 2x2 windows, stride 2"),
                      (55, 3, 2, "AlexNet: overlapping 3x3 windows, stride 2"),
                      (32, 3, 2, "3x3 windows, stride 2 on a 32x32 input")]:
    try:
        print(f"{what}: {W} -> {pool_output_size(W, F, S)}")
    except ValueError as err:
        print(f"{what}: impossible. {err}")


# %% [markdown]
# ## 2. Max pooling, forward pass
#
# We use the layout of the whole course: a batch `x` of shape $(N, C, H, W)$, and
# `pool_param = {'pool_height': PH, 'pool_width': PW, 'stride': S}`. The output has shape
# $(N, C, H', W')$ with $H' = (H - PH)/S + 1$ and $W' = (W - PW)/S + 1$, and
#
# $$\text{out}[n, c, i, j] = \max_{0 \le p < PH,\; 0 \le q < PW} \; x[n, c,\; iS + p,\; jS + q].$$
#
# In NumPy, the window of output $(i, j)$ is the slice `x[n, c, i*S:i*S+PH, j*S:j*S+PW]`.
# Loops over $n, c, i, j$ are perfectly fine here (you will write a fast version at the end).
#
# Like every layer of the course, the function returns `(out, cache)`: `cache` holds whatever
# the backward pass will need. Here `(x, pool_param)` is enough.

# %% nbgrader={"grade": false, "grade_id": "max_pool_forward_naive", "locked": false, "schema_version": 3, "solution": true, "task": false}
def max_pool_forward_naive(x, pool_param):
    """Forward pass of max pooling, with loops.

    Inputs:
    - x: input of shape (N, C, H, W)
    - pool_param: dict with 'pool_height', 'pool_width' and 'stride'

    Returns a tuple of:
    - out: shape (N, C, H', W') with H' = (H - pool_height) / stride + 1 (likewise W'),
      the dtype of x
    - cache: (x, pool_param)
    """
    ### BEGIN SOLUTION
    PH, PW, S = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    N, C, H, W = x.shape
    Hout, Wout = pool_output_size(H, PH, S), pool_output_size(W, PW, S)
    out = np.zeros((N, C, Hout, Wout), dtype=x.dtype)
    for n in range(N):
        for c in range(C):
            for i in range(Hout):
                for j in range(Wout):
                    out[n, c, i, j] = x[n, c, i * S:i * S + PH, j * S:j * S + PW].max()
    ### END SOLUTION
    return out, (x, pool_param)


# %% nbgrader={"grade": true, "grade_id": "test_max_pool_forward_naive", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
# max_pool_forward_naive: 3 points, 3 visible cases here, more when graded.
check("max_pool_forward_naive", cases=[
    {"x": (2, 3, 4, 4), "pool": (2, 2), "stride": 2, "seed": 0},
    {"x": (1, 2, 7, 7), "pool": (3, 3), "stride": 2, "seed": 1},
    {"x": (2, 1, 5, 6), "pool": (2, 3), "stride": 1, "seed": 2},
])
### BEGIN HIDDEN TESTS
check("max_pool_forward_naive", cases=[
    {"x": (3, 2, 9, 9), "pool": (3, 3), "stride": 2, "seed": 11},
    {"x": (2, 3, 8, 6), "pool": (2, 2), "stride": 2, "seed": 12, "dtype": "float32"},
    {"x": (1, 4, 5, 9), "pool": (2, 3), "stride": 3, "seed": 13},
    {"x": (2, 2, 4, 4), "pool": (4, 4), "stride": 1, "seed": 14},
    {"x": (2, 2, 7, 7), "pool": (3, 3), "stride": 2, "seed": 15, "ties": True},
])
### END HIDDEN TESTS

# %% [markdown]
# ## 3. Max pooling, backward pass: the switches
#
# Recall what backpropagation does with $z = \max(a, b)$: the local gradient is 1 for the input
# that won and 0 for the other, so the upstream gradient is **routed** to the winner and the
# loser gets nothing. A max-pooling window is a max of $PH\cdot PW$ numbers, so
#
# $$\frac{\partial L}{\partial x[n, c, iS+p, jS+q]} \mathrel{+}= \begin{cases}
# \text{dout}[n, c, i, j] & \text{if } (p, q) \text{ is the position of the maximum of window } (i, j),\\
# 0 & \text{otherwise.}\end{cases}$$
#
# The positions of the maxima are often called the **switches**; frameworks record them during
# the forward pass so that the backward pass is a cheap scatter. Here you may recompute them from
# `x` in the cache.
#
# Two details matter:
#
# * **Overlapping windows add up.** With $F=3, S=2$ an input pixel can belong to several windows
#   and be the maximum of more than one. Its gradient is the **sum** of what each window sends,
#   so accumulate with `+=`, never assign.
# * **Ties.** When a window holds the same maximum twice, the function is not differentiable
#   there and any choice is a valid subgradient. The kit (like most frameworks) picks **the first
#   maximum in row-major order**: the smallest row $p$, then the smallest column $q$. That is
#   exactly what `np.argmax` returns on a flattened window; `np.unravel_index(k, (PH, PW))` (or
#   `divmod(k, PW)`) turns the flat index $k$ back into $(p, q)$. The checks include windows with
#   ties, and a gradient sent to *every* tied maximum is counted wrong.

# %% nbgrader={"grade": false, "grade_id": "max_pool_backward_naive", "locked": false, "schema_version": 3, "solution": true, "task": false}
def max_pool_backward_naive(dout, cache):
    """Backward pass of max pooling, with loops.

    Inputs:
    - dout: upstream derivatives, shape (N, C, H', W')
    - cache: (x, pool_param) as returned by max_pool_forward_naive

    Returns:
    - dx: gradient with respect to x, shape and dtype of x. Each dout entry goes to the first
      maximum (row-major order) of its window; overlapping windows add up.
    """
    ### BEGIN SOLUTION
    x, pool_param = cache
    PH, PW, S = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    N, C, Hout, Wout = dout.shape
    dx = np.zeros_like(x)
    for n in range(N):
        for c in range(C):
            for i in range(Hout):
                for j in range(Wout):
                    window = x[n, c, i * S:i * S + PH, j * S:j * S + PW]
                    p, q = divmod(int(np.argmax(window)), PW)
                    dx[n, c, i * S + p, j * S + q] += dout[n, c, i, j]
    ### END SOLUTION
    return dx


# %% nbgrader={"grade": true, "grade_id": "test_max_pool_backward_naive", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
# max_pool_backward_naive: 3 points, 3 visible cases here, more when graded.
# The backward pass is called with the cache of YOUR max_pool_forward_naive.
check("max_pool_backward_naive", cases=[
    {"x": (2, 3, 4, 4), "pool": (2, 2), "stride": 2, "seed": 0},
    {"x": (1, 2, 7, 7), "pool": (3, 3), "stride": 2, "seed": 1},
    {"x": (2, 2, 5, 5), "pool": (3, 3), "stride": 1, "seed": 2, "ties": True},
])
### BEGIN HIDDEN TESTS
check("max_pool_backward_naive", cases=[
    {"x": (3, 2, 9, 9), "pool": (3, 3), "stride": 2, "seed": 11},
    {"x": (2, 3, 8, 6), "pool": (2, 2), "stride": 2, "seed": 12, "dtype": "float32"},
    {"x": (1, 4, 5, 9), "pool": (2, 3), "stride": 3, "seed": 13},
    {"x": (2, 2, 7, 7), "pool": (3, 3), "stride": 2, "seed": 14, "ties": True},
    {"x": (2, 2, 6, 6), "pool": (2, 2), "stride": 2, "seed": 15, "ties": True, "dtype": "float32"},
])
### END HIDDEN TESTS

# %% [markdown]
# The check above compares with the library. An independent way to convince yourself is the
# **numerical gradient**: nudge every input by $\pm h$ and watch the loss
# $L = \sum \text{out}\cdot\text{dout}$ change,
# $\partial L/\partial x \approx \big(L(x + h) - L(x - h)\big)/2h$. For max pooling this works
# as long as no nudge changes which element is the maximum, which is almost surely the case for
# random inputs and a small $h$. The cell prints `OK` when the relative error is below
# $10^{-7}$ and `MISMATCH` otherwise.

# %% cs231n={"grading": "skip"}
from cs231n_lib.gradient_check import eval_numerical_gradient_array, rel_error

rng = np.random.default_rng(231)
x = rng.standard_normal((2, 3, 7, 7))
pool_param = {"pool_height": 3, "pool_width": 3, "stride": 2}
try:
    out, cache = max_pool_forward_naive(x, pool_param)
    dout = rng.standard_normal(out.shape)
    dx = max_pool_backward_naive(dout, cache)
    dx_num = eval_numerical_gradient_array(lambda x: max_pool_forward_naive(x, pool_param)[0], x, dout)
    error = rel_error(dx, dx_num)
    print(f"max pooling, overlapping 3x3 windows: relative error against the numerical gradient {error:.1e}")
    if error < 1e-7:
        print(f"OK: max_pool_backward_naive matches the numerical gradient ({error:.1e} < 1e-7)")
    else:
        print(f"MISMATCH: max_pool_backward_naive differs from the numerical gradient ({error:.1e}, expected < 1e-7)")
except NotImplementedError:
    print("implement max_pool_forward_naive and max_pool_backward_naive first")


# %% [markdown]
# **Written answer (2 points, graded by a person).** In the backward pass of max pooling, the
# upstream gradient of a window goes to the position of its maximum. What should happen when two
# entries of a window tie for the maximum, what does your implementation do, and why is sending the
# full gradient to *every* tied entry wrong? How likely are ties with real-valued activations, and
# where do they become common?

# %% [markdown] nbgrader={"grade": true, "grade_id": "q_max_pool_ties", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# ### BEGIN SOLUTION
# Rubric (2 points):
# - 1 point: max is not differentiable at a tie; any convex combination of the tied positions is a
#   valid subgradient, and the convention (as in the reference) is to route the whole gradient to one
#   of them, e.g. the first maximum found in scan order (as `argmax` does). Giving the full gradient
#   to every tied entry multiplies it: the gradients no longer sum to the upstream gradient and fail
#   a numerical check (splitting it evenly would be a valid alternative).
# - 1 point: with continuous random inputs ties almost never happen, but they are common after a
#   ReLU (many exact zeros), with quantised inputs such as uint8 images, or with constant regions
#   (padding); so the rule matters in practice and a test should plant ties on purpose.
# ### END SOLUTION

# %% [markdown]
# ## 4. Average pooling
#
# Average pooling keeps the mean of each window instead of the maximum:
#
# $$\text{out}[n, c, i, j] = \frac{1}{PH\cdot PW}\sum_{p=0}^{PH-1}\sum_{q=0}^{PW-1} x[n, c,\; iS + p,\; jS + q].$$
#
# It is linear, so its backward pass is simple: every input of window $(i, j)$ contributed with
# weight $1/(PH\cdot PW)$, hence receives $\text{dout}[n,c,i,j]/(PH\cdot PW)$, and where windows
# overlap the contributions add up again.
#
# Average pooling was common in early networks; max pooling has since been found to work better
# in the middle of a network, probably because "is the feature present somewhere in this
# window?" is the more useful summary. Averaging survives at the very end of many modern
# networks (GoogLeNet, ResNet): *global* average pooling, one window covering the whole final
# feature map, replaces large fully connected layers.

# %% nbgrader={"grade": false, "grade_id": "avg_pool_forward_naive", "locked": false, "schema_version": 3, "solution": true, "task": false}
def avg_pool_forward_naive(x, pool_param):
    """Forward pass of average pooling, with loops.

    Inputs:
    - x: input of shape (N, C, H, W)
    - pool_param: dict with 'pool_height', 'pool_width' and 'stride'

    Returns a tuple of:
    - out: shape (N, C, H', W'), the mean of each window, dtype of x
    - cache: (x, pool_param)
    """
    ### BEGIN SOLUTION
    PH, PW, S = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    N, C, H, W = x.shape
    Hout, Wout = pool_output_size(H, PH, S), pool_output_size(W, PW, S)
    out = np.zeros((N, C, Hout, Wout), dtype=x.dtype)
    for n in range(N):
        for c in range(C):
            for i in range(Hout):
                for j in range(Wout):
                    out[n, c, i, j] = x[n, c, i * S:i * S + PH, j * S:j * S + PW].mean()
    ### END SOLUTION
    return out, (x, pool_param)


# %% nbgrader={"grade": true, "grade_id": "test_avg_pool_forward_naive", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# avg_pool_forward_naive: 2 points, 2 visible cases here, more when graded.
check("avg_pool_forward_naive", cases=[
    {"x": (2, 3, 4, 4), "pool": (2, 2), "stride": 2, "seed": 0},
    {"x": (1, 2, 7, 7), "pool": (3, 3), "stride": 2, "seed": 1},
])
### BEGIN HIDDEN TESTS
check("avg_pool_forward_naive", cases=[
    {"x": (3, 2, 9, 9), "pool": (3, 3), "stride": 2, "seed": 11, "dtype": "float32"},
    {"x": (1, 4, 5, 9), "pool": (2, 3), "stride": 3, "seed": 12},
    {"x": (2, 1, 5, 6), "pool": (2, 3), "stride": 1, "seed": 13},
])
### END HIDDEN TESTS

# %% nbgrader={"grade": false, "grade_id": "avg_pool_backward_naive", "locked": false, "schema_version": 3, "solution": true, "task": false}
def avg_pool_backward_naive(dout, cache):
    """Backward pass of average pooling, with loops.

    Inputs:
    - dout: upstream derivatives, shape (N, C, H', W')
    - cache: (x, pool_param) as returned by avg_pool_forward_naive

    Returns:
    - dx: gradient with respect to x, shape and dtype of x
    """
    ### BEGIN SOLUTION
    x, pool_param = cache
    PH, PW, S = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    N, C, Hout, Wout = dout.shape
    dx = np.zeros_like(x)
    share = 1.0 / (PH * PW)
    for n in range(N):
        for c in range(C):
            for i in range(Hout):
                for j in range(Wout):
                    dx[n, c, i * S:i * S + PH, j * S:j * S + PW] += dout[n, c, i, j] * share
    ### END SOLUTION
    return dx


# %% nbgrader={"grade": true, "grade_id": "test_avg_pool_backward_naive", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# avg_pool_backward_naive: 2 points, 2 visible cases here, more when graded.
# The backward pass is called with the cache of YOUR avg_pool_forward_naive.
check("avg_pool_backward_naive", cases=[
    {"x": (2, 3, 4, 4), "pool": (2, 2), "stride": 2, "seed": 0},
    {"x": (1, 2, 7, 7), "pool": (3, 3), "stride": 2, "seed": 1},
])
### BEGIN HIDDEN TESTS
check("avg_pool_backward_naive", cases=[
    {"x": (3, 2, 9, 9), "pool": (3, 3), "stride": 2, "seed": 11, "dtype": "float32"},
    {"x": (1, 4, 5, 9), "pool": (2, 3), "stride": 3, "seed": 12},
    {"x": (2, 1, 5, 6), "pool": (2, 3), "stride": 1, "seed": 13},
])
### END HIDDEN TESTS

# %% [markdown]
# ### What pooling does to an image
#
# Below, a $128\times128$ grey-scale crop of a photograph (the badge on Grace Hopper's cap, from
# matplotlib's sample data) goes through your layers. With $4\times4$ windows the difference is
# easy to see: max pooling keeps the brightest detail of every window, so thin bright lines
# survive and the picture gets lighter; average pooling blurs. The last panel uses overlapping
# $3\times3$ windows with stride 2; since $(128 - 3)/2 + 1$ is not an integer, the image is first
# cropped to $127\times127$, which gives $63\times63$.

# %% cs231n={"grading": "skip"}
import matplotlib.cbook as cbook

photo = plt.imread(cbook.get_sample_data("grace_hopper.jpg")).mean(axis=2) / 255.0  # grey levels in [0, 1]
image = photo[30:158, 170:298][None, None]                                          # (1, 1, 128, 128)
panels = [("input", lambda: image[0, 0])]
for title, layer, F, S, crop in [
    ("max 4x4, stride 4", "max_pool_forward_naive", 4, 4, image),
    ("average 4x4, stride 4", "avg_pool_forward_naive", 4, 4, image),
    ("max 3x3, stride 2 (overlapping)", "max_pool_forward_naive", 3, 2, image[..., :127, :127]),
]:
    param = {"pool_height": F, "pool_width": F, "stride": S}
    panels.append((title, lambda layer=layer, crop=crop, param=param: globals()[layer](crop, param)[0][0, 0]))

fig, axes = plt.subplots(1, len(panels), figsize=(13, 3.6))
for ax, (title, make) in zip(axes, panels):
    try:
        picture = make()
        ax.imshow(picture, vmin=0, vmax=1)
        ax.set_title(f"{title}\n{picture.shape[0]}x{picture.shape[1]}", fontsize=9)
    except NotImplementedError:
        ax.text(0.5, 0.5, "not implemented yet", ha="center", va="center")
        print(f"{title}: implement the naive pooling functions first")
    ax.axis("off")
plt.show()

# %% [markdown]
# ### Small shifts
#
# How much does a one-pixel shift of the input change the downsampled output? The cell below
# shifts 50 digits one pixel to the right and halves the resolution three ways: keeping every
# other pixel (what a stride alone would do), and $2\times2$ max and average pooling with your
# `max_pool_forward_naive` and `avg_pool_forward_naive` (a pooling you have not written yet is
# left out of the table). It measures the relative change $\lVert y(\text{shifted}) - y\rVert /
# \lVert y\rVert$ and the share of the outputs that did not change at all (among those that are not
# zero both times: zero background stays zero whatever the method), on two kinds of input:
#
# * **pixels**: the digits themselves, smooth blobs of ink;
# * **edge features**: what a pooling layer sees inside a network, the ReLU of edge detectors
#   (four Sobel filters, one per direction) applied to the digits: thin, peaked maps, mostly zero.
#
# Pooling is only *approximately* invariant: an output stays put when the value that decided it
# stays inside its window, and changes otherwise. What to expect (the last lines of the cell
# check these on the run you just made):
#
# * On edge features, max pooling is the least disturbed: its output changes clearly less than
#   the features themselves and than average pooling's, and more of its outputs stay exactly the
#   same than of the features themselves (the peak of a window often stays in the window), while
#   almost none of average pooling's do. This is the invariance max pooling is used for.
# * On raw pixels, max pooling buys little: the digits' strokes are wide and flat, so the maximum
#   of a window moves about as much as the picture does. Average pooling, a blur, changes least
#   there, yet it leaves far fewer outputs exactly unchanged than max pooling, since any pixel
#   entering or leaving its window moves it.
#
# Stacking several pooling layers extends the tolerance to larger shifts.

# %% cs231n={"grading": "skip"}
from cs231n_lib.data import load_digits  # the 1797 handwritten 8x8 digits bundled with the kit


def relative_change(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(a)


def edge_features(x):
    """ReLU of four Sobel responses (edges going right, left, down, up): (N, 1, H, W) -> (N, 4, H, W)."""
    p = np.pad(x[:, 0], ((0, 0), (1, 1), (1, 1)))
    smooth_rows = p[:, :-2] + 2 * p[:, 1:-1] + p[:, 2:]           # (N, H, W + 2)
    smooth_cols = p[:, :, :-2] + 2 * p[:, :, 1:-1] + p[:, :, 2:]  # (N, H + 2, W)
    gx = smooth_rows[:, :, 2:] - smooth_rows[:, :, :-2]
    gy = smooth_cols[:, 2:] - smooth_cols[:, :-2]
    return np.maximum(np.stack([gx, -gx, gy, -gy], axis=1), 0)


digits = np.kron(load_digits()[0][:50], np.ones((3, 3)))[:, None]  # (50, 1, 24, 24)
shifted = np.roll(digits, 1, axis=3)
param = {"pool_height": 2, "pool_width": 2, "stride": 2}
downsamplers = {
    "every other pixel": lambda x: x[..., ::2, ::2],
    "2x2 max pooling": lambda x: max_pool_forward_naive(x, param)[0],
    "2x2 average pooling": lambda x: avg_pool_forward_naive(x, param)[0],
}
inputs = {"pixels": (digits, shifted), "edge features": (edge_features(digits), edge_features(shifted))}
change = {}
print(f"{'one-pixel shift':<22}" + "".join(f"{kind + ': change, unchanged':>34}" for kind in inputs))
rows = [("the input itself", lambda x: x)] + list(downsamplers.items())
for name, down in rows:
    try:
        cells = []
        for kind, (before, after) in inputs.items():
            y0, y1 = down(before), down(after)
            active = (y0 != 0) | (y1 != 0)
            change[name, kind] = relative_change(y0, y1), np.mean(y0[active] == y1[active])
            cells.append(f"{change[name, kind][0]:>25.2f}{change[name, kind][1]:>9.0%}")
        print(f"{name:<22}" + "".join(cells))
    except NotImplementedError:
        print(f"{name:<22}  left out: implement {'max' if 'max' in name else 'avg'}_pool_forward_naive first")

if ("2x2 max pooling", "edge features") in change and ("2x2 average pooling", "edge features") in change:
    edge = {name: change[name, "edge features"] for name in ("the input itself", "2x2 max pooling", "2x2 average pooling")}
    expected = (edge["2x2 max pooling"][0] < edge["2x2 average pooling"][0] < edge["the input itself"][0]
                and edge["2x2 max pooling"][1] > edge["the input itself"][1] > edge["2x2 average pooling"][1]
                and change["2x2 max pooling", "pixels"][1] > change["2x2 average pooling", "pixels"][1])
    print(("as described above: " if expected else "NOT as described above (look at your pooling): ")
          + f"on edge features max pooling changed {edge['2x2 max pooling'][0]:.2f}, average pooling "
          f"{edge['2x2 average pooling'][0]:.2f}, the features {edge['the input itself'][0]:.2f}; unchanged: "
          f"{edge['2x2 max pooling'][1]:.0%}, {edge['2x2 average pooling'][1]:.0%} and {edge['the input itself'][1]:.0%}")


# %% [markdown]
# ## 5. Aside: L2-norm pooling and the family it belongs to
#
# Max and average are not the only summaries. **L2-norm pooling** keeps
# $\sqrt{\sum_{(p,q)\in\text{window}} x_{pq}^2}$. All three belong to one family, the
# (normalised) $p$-norm of the window $R$,
#
# $$\text{pool}_p(R) = \Big(\frac{1}{|R|}\sum_{r\in R} |x_r|^p\Big)^{1/p},$$
#
# which is the average of $|x|$ for $p=1$, the root mean square (L2 pooling up to the factor
# $\sqrt{|R|}$) for $p=2$, and tends to $\max_r |x_r|$ as $p\to\infty$: the largest term
# dominates the sum. On non-negative inputs, such as the output of a ReLU, $p$ slides smoothly
# from average pooling to max pooling. The demo below (not graded) computes it with
# `cs231n_lib.im2col`, a trick you will use yourself in section 7, and measures how far it is
# from your average and max pooling layers as $p$ grows.

# %% cs231n={"grading": "skip"}
def p_norm_pool(x, F, S, p):
    """(1/|R| sum |x|^p)^(1/p) over each F x F window (stride S) of each channel."""
    N, C, H, W = x.shape
    Hout, Wout = pool_output_size(H, F, S), pool_output_size(W, F, S)
    windows = im2col(x.reshape(N * C, 1, H, W), F, F, S, 0)  # one column per window
    if np.isinf(p):
        pooled = np.abs(windows).max(axis=0)
    else:
        pooled = np.mean(np.abs(windows) ** p, axis=0) ** (1 / p)
    return pooled.reshape(N, C, Hout, Wout)

rng = np.random.default_rng(0)
activations = np.maximum(rng.standard_normal((4, 8, 16, 16)), 0)  # like the output of a ReLU
try:
    average = avg_pool_forward_naive(activations, {"pool_height": 2, "pool_width": 2, "stride": 2})[0]
    maximum = max_pool_forward_naive(activations, {"pool_height": 2, "pool_width": 2, "stride": 2})[0]
except NotImplementedError:
    print("implement avg_pool_forward_naive and max_pool_forward_naive first")
else:
    powers = [1, 2, 4, 8, 16, 32, 64]
    to_average = [np.abs(p_norm_pool(activations, 2, 2, p) - average).max() for p in powers]
    to_max = [np.abs(p_norm_pool(activations, 2, 2, p) - maximum).max() for p in powers]
    plt.figure(figsize=(6, 3.5))
    plt.semilogx(powers, to_average, "o-", base=2, label="distance to your average pooling")
    plt.semilogx(powers, to_max, "s-", base=2, label="distance to your max pooling")
    plt.xlabel("p"); plt.ylabel("largest difference"); plt.legend(); plt.title("p-norm pooling of ReLU outputs")
    plt.show()

# %% [markdown]
# ## 6. Do we need pooling at all?
#
# Pooling is not universally liked. *Striving for Simplicity: The All Convolutional Net*
# (Springenberg et al., 2015) drops the pooling layers and lets an occasional convolution with
# stride 2 do the downsampling instead. Generative models (variational autoencoders, GANs) train
# better without pooling too, and many recent architectures use very little of it.
#
# Why is a strided convolution a natural replacement? Average pooling *is* a convolution: a
# $2\times2$ average with stride 2 is the stride-2 convolution whose filter for output channel $c$
# has weight $\tfrac14$ on input channel $c$ and 0 on the others. A learned strided convolution
# can therefore represent average pooling and much more, at the price of parameters
# ($F\cdot F\cdot C\cdot C$ weights instead of none). It cannot represent max pooling, which is
# not linear. The cell below verifies the equivalence: the library's convolution (assignment 1)
# against your `avg_pool_forward_naive`.

# %% cs231n={"grading": "skip"}
rng = np.random.default_rng(1)
x = rng.standard_normal((2, 3, 8, 8))
C = x.shape[1]
w = np.zeros((C, C, 2, 2))
w[np.arange(C), np.arange(C)] = 0.25  # channel c only sees channel c, with weight 1/4
by_conv, _ = cs231n_lib.conv_forward(x, w, np.zeros(C), {"stride": 2, "pad": 0})
try:
    by_pool, _ = avg_pool_forward_naive(x, {"pool_height": 2, "pool_width": 2, "stride": 2})
except NotImplementedError:
    print("implement avg_pool_forward_naive first")
else:
    difference = np.abs(by_conv - by_pool).max()
    print(f"largest difference between the stride-2 convolution and your 2x2 average pooling: {difference:.1e}")
    if difference < 1e-12:
        print(f"OK: the stride-2 convolution is 2x2 average pooling (difference {difference:.1e} < 1e-12)")
    else:
        print(f"MISMATCH: the stride-2 convolution differs from your 2x2 average pooling by {difference:.1e}; "
              "see what the check of avg_pool_forward_naive says")


# %% [markdown]
# **Written answer (2 points, graded by a person).** Some architectures drop pooling and downsample
# with a convolution of stride 2 instead. Give one thing a 2x2 max pool with stride 2 has that a
# stride-2 convolution does not, and one thing the convolution has that the pool does not.

# %% [markdown] nbgrader={"grade": true, "grade_id": "q_pool_or_stride", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# ### BEGIN SOLUTION
# Rubric (2 points), 1 point per side, any correct pair:
# - max pooling: no parameters and little computation; a built-in small invariance to where in the
#   window the feature lies (the maximum survives a one-pixel shift inside the window); a fixed,
#   simple gradient (switches).
# - strided convolution: it learns how to downsample (can learn max-like, average-like or any
#   weighting, and mix channels), it does not throw away 75% of the activations by a fixed rule, and
#   it keeps the network fully convolutional with one kind of layer; it is used e.g. in generative
#   models (GANs, VAEs) and in all-convolutional networks (Springenberg et al.).
# ### END SOLUTION

# %% [markdown]
# ## 7. Fast max pooling
#
# Your naive functions run a Python loop over $N\cdot C\cdot H'\cdot W'$ windows: fine for the
# checks, far too slow for training (a batch of 64 feature maps of $64\times32\times32$ has a
# million windows). Write `max_pool_forward_fast` without Python loops over the data, with
# two tricks.
#
# **The reshape trick (windows that tile the input).** When the window is square, equal to the
# stride ($PH = PW = S$) and the input sizes are multiples of it, the windows tile the input
# exactly. Then
#
# ```python
# x.reshape(N, C, H // S, S, W // S, S)
# ```
#
# is a view in which axis 2 picks the window row $i$, axis 3 the row $p$ inside it, axis 4 the
# window column $j$ and axis 5 the column $q$, because row $iS + p$ of the image is exactly
# "block $i$, offset $p$". A maximum over axes 3 and 5 finishes the job, with no copy.
#
# **im2col (every other case).** When windows overlap or do not tile, unroll them.
# `im2col(x, HH, WW, stride, pad)` from the previous assignment returns a matrix of shape
# $(C\cdot HH\cdot WW,\; N\cdot H'\cdot W')$ whose column $(n\,H' + i)\,W' + j$ holds the receptive
# field of output $(i, j)$ of sample $n$, channel after channel. Pooling must not mix channels,
# so treat each channel as its own one-channel image: reshape `x` to $(N\cdot C, 1, H, W)$, call
# `im2col(..., PH, PW, S, 0)`, take the maximum of each column and reshape the result to
# $(N, C, H', W')$ (the columns come out in the order sample-and-channel, then $i$, then $j$).
#
# Return `(out, cache)` like the naive version (the cache is not checked; `(x, pool_param)` is
# fine).

# %% nbgrader={"grade": false, "grade_id": "max_pool_forward_fast", "locked": false, "schema_version": 3, "solution": true, "task": false}
def max_pool_forward_fast(x, pool_param):
    """Fast forward pass of max pooling: the reshape trick when the windows tile the input,
    im2col otherwise. No Python loop over the data.

    Inputs and returns: as max_pool_forward_naive.
    """
    ### BEGIN SOLUTION
    PH, PW, S = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    N, C, H, W = x.shape
    Hout, Wout = pool_output_size(H, PH, S), pool_output_size(W, PW, S)
    if PH == PW == S and H % S == 0 and W % S == 0:
        out = x.reshape(N, C, Hout, S, Wout, S).max(axis=(3, 5))
    else:
        windows = im2col(x.reshape(N * C, 1, H, W), PH, PW, S, 0)
        out = windows.max(axis=0).reshape(N, C, Hout, Wout)
    ### END SOLUTION
    return out, (x, pool_param)


# %% nbgrader={"grade": true, "grade_id": "test_max_pool_forward_fast", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
# max_pool_forward_fast: 3 points, 3 visible cases here, more when graded.
check("max_pool_forward_fast", cases=[
    {"x": (2, 3, 8, 8), "pool": (2, 2), "stride": 2, "seed": 0},
    {"x": (2, 3, 9, 9), "pool": (3, 3), "stride": 2, "seed": 1},
    {"x": (1, 2, 5, 9), "pool": (2, 3), "stride": 3, "seed": 2},
])
### BEGIN HIDDEN TESTS
check("max_pool_forward_fast", cases=[
    {"x": (4, 5, 16, 12), "pool": (4, 4), "stride": 4, "seed": 11, "dtype": "float32"},
    {"x": (3, 4, 15, 15), "pool": (3, 3), "stride": 2, "seed": 12, "dtype": "float32"},
    {"x": (2, 3, 7, 10), "pool": (2, 2), "stride": 1, "seed": 13},
    {"x": (2, 3, 9, 9), "pool": (3, 3), "stride": 3, "seed": 14},
    {"x": (2, 2, 12, 12), "pool": (2, 2), "stride": 2, "seed": 15, "ties": True},
])
### END HIDDEN TESTS

# %% [markdown]
# ### How much faster?
#
# The table times your naive and fast forward passes on one batch, once with tiling $2\times2$
# windows (your reshape path) and once with overlapping $3\times3$ windows (your im2col path);
# both give the same number of outputs. Both fast paths leave the loops far behind. Which of the
# two is faster is for the measurement to say, and the cell's last line says it: the reshape
# copies nothing, but NumPy's maximum over the interleaved axes 3 and 5 reads memory in short
# strided runs, while im2col first copies every window (more than twice the input for
# $F=3, S=2$, with the library's compiled loops) and then takes the maximum down contiguous
# columns. Extra copying is not necessarily slower; memory access patterns matter as much.

# %% cs231n={"grading": "skip"}
def best_time(fn, *args, repeats=3):
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn(*args)
        best = min(best, time.perf_counter() - start)
    return best

shape = (4, 8, 16, 16) if QUICK else (32, 16, 32, 32)
rng = np.random.default_rng(0)
fast_times, missing = {}, []
print(f"input of shape {shape} (N, C, H, W), float64; best of 3 runs")
print(f"{'windows':<22}{'naive':>12}{'fast':>12}{'naive / fast':>14}")
for label, F, S, size in [("2x2, stride 2", 2, 2, shape[2]), ("3x3, stride 2 (overlap)", 3, 2, shape[2] + 1)]:
    x = rng.standard_normal(shape[:2] + (size, size))
    param = {"pool_height": F, "pool_width": F, "stride": S}
    times = {}
    for name, fn in [("naive", max_pool_forward_naive), ("fast", max_pool_forward_fast)]:
        try:
            times[name] = best_time(fn, x, param)
        except NotImplementedError:
            if fn.__name__ not in missing:
                missing.append(fn.__name__)
            times[name] = float("nan")
    shown = {name: ("-" if np.isnan(t) else f"{t * 1e3:.2f}ms") for name, t in times.items()}
    ratio = times["naive"] / times["fast"]
    print(f"{label:<22}{shown['naive']:>12}{shown['fast']:>12}"
          f"{'-' if np.isnan(ratio) else f'{ratio:.0f}x':>14}")
    fast_times[label] = times["fast"]
if missing:
    print(f"implement {' and '.join(missing)} first: left out of the table")
reshape_time, im2col_time = fast_times.values()
if not np.isnan(reshape_time + im2col_time):
    winner, factor = ("reshape", im2col_time / reshape_time) if reshape_time < im2col_time else ("im2col", reshape_time / im2col_time)
    print(f"fast paths, same number of outputs: reshape {reshape_time * 1e3:.2f} ms, im2col {im2col_time * 1e3:.2f} ms: "
          f"the {winner} path is {factor:.1f}x faster here")

# %% [markdown]
# ## Summary
#
# * Pooling shrinks each channel on its own, has no parameters and makes the network less
#   sensitive to small shifts. Output size: $(W - F)/S + 1$; usual settings $F=2,S=2$ and the
#   overlapping $F=3, S=2$.
# * Max pooling routes each upstream gradient to the first maximum of its window (the switch);
#   average pooling spreads it evenly. Where windows overlap, gradients add up.
# * Average and L2 pooling are members of the $p$-norm family; max pooling is its limit.
# * A strided convolution can take over the downsampling, and can express average pooling but
#   not max pooling.
# * Vectorised: reshape when the windows tile the input, im2col otherwise.
#
# Before you submit, run the whole notebook from the top (Kernel → Restart & Run All) and check
# that every check cell says that its visible cases passed.
