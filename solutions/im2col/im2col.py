# %% [markdown]
# # Assignment 2: convolution as one matrix multiplication (im2col)
#
# Your naive convolution from assignment 1 is correct, and slow: Python runs its innermost loop
# once per output number, and each pass costs about a microsecond of interpreter overhead before
# any arithmetic happens. A layer of a real network has millions of outputs.
#
# Every output of a conv layer is a **dot product** between one filter and one receptive field.
# Collect all receptive fields as the columns of one matrix, all filters as the rows of another,
# and the whole layer becomes **one matrix product**, which optimized linear-algebra libraries
# (BLAS) compute at close to the peak speed of the processor. This trick is called **im2col**
# ("image to columns"), and most CPU (and many GPU) convolution implementations use it or a
# close relative. In this notebook you will
#
# 1. write `im2col`, which unrolls receptive fields into columns, in exactly the layout the
#    library `cs231n_lib` uses;
# 2. measure what it **costs in memory** (AlexNet's first layer as the example);
# 3. write `conv_forward_im2col`: the forward pass as one matrix product;
# 4. write `col2im`, the operation that folds columns back onto the image, and with it
#    `conv_backward_im2col`;
# 5. see that the backward pass is itself **a convolution with flipped filters**;
# 6. **time** the naive loops against your im2col version, and see where the time of a larger
#    layer goes.
#
# **Grading: 14 points in total**: 10 points for the functions, checked automatically, and 4 points
# for two written answers, graded by a person (not by the checks).
#
# | graded function | points |
# |---|---|
# | `im2col` | 3 |
# | `col2im` | 3 |
# | `conv_forward_im2col` | 2 |
# | `conv_backward_im2col` | 2 |
# | written answers: the cost of the column matrix (section 2), why `col2im` adds (section 4) | 2 + 2 |
#
# Write your code between `# YOUR CODE HERE` and the end of its block, replacing
# `raise NotImplementedError()`. Each graded function is followed by a check cell that compares
# your result with `cs231n_lib` on a few cases and prints the relative error, a verdict and, where
# the pattern of the error allows, a hint. When your notebook is graded the same checks run on
# **more cases you do not see** (other shapes, strides, paddings, float32 inputs, seeds). Cells
# that only plot, time or demonstrate are not run when grading. Setting the environment variable
# `CS231N_QUICK=1` before starting Jupyter makes the timing section use small sizes.

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
import time

import matplotlib.pyplot as plt
import numpy as np

from cs231n_checks import check
from cs231n_lib.gradient_check import rel_error

np.set_printoptions(precision=4, suppress=True, linewidth=110)
plt.rcParams["figure.dpi"] = 80

# %% cs231n={"grading": "skip"}
# CS231N_QUICK=1 shrinks the timing runs (used by the tests and for quick debugging).
QUICK = os.environ.get("CS231N_QUICK", "") == "1"


# %% [markdown]
# ## 1. The column matrix
#
# Take an input `x` of shape $(N, C, H, W)$, filters of size $HH \times WW$, stride $S$ and
# padding $P$, so that there are $H_{out} \times W_{out}$ output positions per sample
# ($H_{out} = (H - HH + 2P)/S + 1$, likewise $W_{out}$). A receptive field holds
# $K = C \cdot HH \cdot WW$ numbers, and there are $N \cdot H_{out} \cdot W_{out}$ of them. `im2col`
# returns the matrix
#
# $$
# \text{cols} \in \mathbb{R}^{K \times (N H_{out} W_{out})}
# $$
#
# whose columns are the receptive fields, laid out **exactly** as follows (this is the layout of
# `cs231n_lib.im2col`, and the checks compare against it):
#
# - **row** $k = (c \cdot HH + i) \cdot WW + j$ holds filter tap $(c, i, j)$: channel $c$, row $i$,
#   column $j$ of the filter. This is the order of `w.reshape(F, -1)`, so filter $f$'s weights,
#   flattened, line up with every column.
# - **column** $g = (n \cdot H_{out} + o_y) \cdot W_{out} + o_x$ is output position $(o_y, o_x)$ of
#   sample $n$: the samples one after another, each in row-major order.
# - the entry is the padded input under that tap at that position:
#   $$
#   \text{cols}[k, g] = x_{pad}[n,\; c,\; o_y S + i,\; o_x S + j].
#   $$
#
# In NumPy terms: `cols.reshape(C, HH, WW, N, H_out, W_out)[c, i, j, n, oy, ox]` is
# `x_pad[n, c, oy*S + i, ox*S + j]`.
#
# *A worked example.* One sample, one channel, $x = \begin{pmatrix} 1 & 2 & 3 \\ 4 & 5 & 6 \\ 7 & 8 & 9
# \end{pmatrix}$, a $2 \times 2$ filter, $S = 1$, $P = 0$. There are $2 \times 2$ positions and
# $K = 4$ taps:
#
# $$
# \text{cols} = \begin{pmatrix}
# 1 & 2 & 4 & 5 \\
# 2 & 3 & 5 & 6 \\
# 4 & 5 & 7 & 8 \\
# 5 & 6 & 8 & 9
# \end{pmatrix}
# \qquad
# \begin{array}{l}
# \leftarrow \text{tap } (0, 0) \\ \leftarrow \text{tap } (0, 1) \\ \leftarrow \text{tap } (1, 0) \\
# \leftarrow \text{tap } (1, 1)
# \end{array}
# $$
#
# Column 0 is the top-left window $\begin{pmatrix} 1 & 2 \\ 4 & 5 \end{pmatrix}$ read row by row,
# column 1 the window one step right, and so on. Note that the number 5 appears **four times**:
# receptive fields overlap, and `im2col` copies every input number into each field that covers
# it.
#
# ### Your task: `im2col`
#
# Any correct approach passes, but here is one that is both short and fast. Instead of looping
# over the (many) output positions, loop over the (few) filter taps $(i, j)$: for a fixed tap, the
# values it sees at all output positions form a **strided slice** of the padded input,
# `x_pad[:, :, i : i + S*H_out : S, j : j + S*W_out : S]`, of shape $(N, C, H_{out}, W_{out})$. Write
# each such slice into an array of shape $(C, HH, WW, N, H_{out}, W_{out})$ and reshape it to
# $(K, N H_{out} W_{out})$ at the end. Mind the axis order: the slice is $(N, C, \dots)$ but the
# target wants $C$ before $N$. Compute the output size with integer division,
# `H_out = (H - HH + 2 * pad) // stride + 1` (every case in this notebook is a valid setting; the
# checks of assignment 1 already made sure your `conv_output_size` refuses the others, and you
# may paste it here and use it instead). Return the dtype of `x`.

# %% nbgrader={"grade": false, "grade_id": "im2col", "locked": false, "schema_version": 3, "solution": true}
def im2col(x, HH, WW, stride, pad):
    """Unroll the receptive fields of x into the columns of a matrix.

    Inputs:
    - x: input of shape (N, C, H, W)
    - HH, WW: filter height and width
    - stride: step between neighbouring receptive fields
    - pad: zeros added on every side of the height and width

    Returns cols of shape (C*HH*WW, N*H_out*W_out) and the dtype of x, with
    cols[(c*HH + i)*WW + j, (n*H_out + oy)*W_out + ox] = x_pad[n, c, oy*stride + i, ox*stride + j].
    """
    cols = None
    ### BEGIN SOLUTION
    N, C, H, W = x.shape
    H_out = (H - HH + 2 * pad) // stride + 1
    W_out = (W - WW + 2 * pad) // stride + 1
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    blocks = np.empty((C, HH, WW, N, H_out, W_out), dtype=x.dtype)
    for i in range(HH):
        for j in range(WW):
            seen = x_pad[:, :, i:i + stride * H_out:stride, j:j + stride * W_out:stride]
            blocks[:, i, j] = seen.transpose(1, 0, 2, 3)
    cols = blocks.reshape(C * HH * WW, N * H_out * W_out)
    ### END SOLUTION
    return cols


# %% nbgrader={"grade": true, "grade_id": "test_im2col", "locked": true, "points": 3, "schema_version": 3, "solution": false}
# im2col: 3 points, 4 visible cases here, more when graded.
check("im2col", cases=[
    {"x": (1, 1, 3, 3), "HH": 2, "WW": 2, "stride": 1, "pad": 0, "seed": 0},
    {"x": (2, 3, 4, 4), "HH": 3, "WW": 3, "stride": 1, "pad": 1, "seed": 1},
    {"x": (2, 2, 7, 7), "HH": 3, "WW": 3, "stride": 2, "pad": 0, "seed": 2},
    {"x": (3, 2, 5, 6), "HH": 2, "WW": 3, "stride": 1, "pad": 1, "seed": 3, "dtype": "float32"},
])
### BEGIN HIDDEN TESTS
check("im2col", cases=[
    {"x": (2, 3, 9, 9), "HH": 5, "WW": 5, "stride": 2, "pad": 2, "seed": 11},
    {"x": (1, 4, 6, 8), "HH": 1, "WW": 1, "stride": 1, "pad": 0, "seed": 12},
    {"x": (3, 1, 11, 11), "HH": 3, "WW": 3, "stride": 4, "pad": 0, "seed": 13, "dtype": "float32"},
    {"x": (2, 2, 5, 7), "HH": 4, "WW": 2, "stride": 1, "pad": 3, "seed": 14},
    {"x": (4, 3, 3, 3), "HH": 3, "WW": 3, "stride": 1, "pad": 0, "seed": 15},
])
### END HIDDEN TESTS

# %% cs231n={"grading": "skip"}
# The worked example: your im2col on the 3x3 image above.
example = np.arange(1, 10, dtype=np.float64).reshape(1, 1, 3, 3)
try:
    print(im2col(example, 2, 2, stride=1, pad=0))
except NotImplementedError:
    print("implement im2col first")


# %% [markdown]
# ## 2. What the column matrix costs
#
# The price of one big matrix product is memory: every input number is copied into every
# receptive field that covers it, about $HH \cdot WW / S^2$ times in the interior of the image.
#
# *AlexNet's first layer.* The input is $227 \times 227 \times 3$, the filters are
# $11 \times 11 \times 3$ with $S = 4$ and $P = 0$, so there are $(227 - 11)/4 + 1 = 55$ positions
# along each axis. Each receptive field has $11 \cdot 11 \cdot 3 = 363$ numbers and there are
# $55 \cdot 55 = 3025$ fields: the column matrix of **one image** is $363 \times 3025$. With 96
# filters the weight matrix is $96 \times 363$ and the product is $96 \times 3025$, which is
# reshaped to the $55 \times 55 \times 96$ output. Let us count bytes.

# %%
def column_matrix_bytes(x_shape, HH, WW, stride, pad, itemsize):
    # Bytes of the im2col matrix of an input of shape (N, C, H, W).
    N, C, H, W = x_shape
    H_out, W_out = (H - HH + 2 * pad) // stride + 1, (W - WW + 2 * pad) // stride + 1
    return C * HH * WW * N * H_out * W_out * itemsize


def megabytes(n_bytes):
    return f"{n_bytes / 1e6:8.1f} MB"


alexnet = (1, 3, 227, 227)
rows, columns = 3 * 11 * 11, 55 * 55
print(f"AlexNet CONV1, one image: columns matrix {rows} x {columns} = {rows * columns:,} numbers")
for name, itemsize in (("float32", 4), ("float64", 8)):
    image = np.prod(alexnet) * itemsize
    cols = column_matrix_bytes(alexnet, 11, 11, 4, 0, itemsize)
    print(f"  {name}: image {megabytes(image)}, columns {megabytes(cols)} ({cols / image:.1f}x the image)")
print(f"  a batch of 128 images in float32: {megabytes(column_matrix_bytes((128, 3, 227, 227), 11, 11, 4, 0, 4))}")

print()
print("3x3 convolutions with stride 1 duplicate every number about 9 times:")
for label, shape in (("VGG-16 conv1_2 (input 64 x 224 x 224), one image", (1, 64, 224, 224)),
                     ("the same layer, a batch of 32 images", (32, 64, 224, 224))):
    print(f"  {label}: columns {megabytes(column_matrix_bytes(shape, 3, 3, 1, 1, 4))} in float32, "
          f"{megabytes(column_matrix_bytes(shape, 3, 3, 1, 1, 8))} in float64")


# %% [markdown]
# The duplication factor for AlexNet is about $121/16 \approx 7.6$ in the interior ($7.1$ overall,
# because the border pixels are covered less often), and for $3 \times 3$ stride-1 layers it is
# about 9. A whole batch through a VGG-like network would need gigabytes just for column matrices.
# Practical implementations therefore never build the whole matrix at once: `cs231n_lib` walks
# over it in slices of a few megabytes, reusing one buffer, and multiplies slice by slice. The
# arithmetic is the same; only the memory traffic changes. For the small arrays in this notebook
# the whole matrix is fine.

# %% [markdown]
# **Written answer (2 points, graded by a person).** The column matrix repeats every input value many
# times. For an input of shape $(N, C, H, W)$, filters $F \times F$ with stride $S$ and an output of
# $H' \times W'$ positions, how many numbers does the column matrix hold, and roughly how many times
# larger than the input is it for a 3x3 filter with stride 1? Why is the convolution with im2col
# still much faster than the loops, despite copying all of that?

# %% [markdown] nbgrader={"grade": true, "grade_id": "q_im2col_cost", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# ### BEGIN SOLUTION
# Rubric (2 points):
# - 1 point: the column matrix has $C F^2$ rows and $N H' W'$ columns, $C F^2 N H' W'$ numbers; with
#   $F = 3$, $S = 1$ and "same" padding $H'W' \approx HW$, so it is about $F^2 = 9$ times the input
#   (each input value appears in up to 9 windows). Memory grows with $F^2/S^2$.
# - 1 point: it is still faster because the work becomes one large matrix product (GEMM): optimised
#   BLAS code with cache blocking and SIMD (and several cores), instead of millions of small
#   Python-level operations; the copy is linear in the size of the matrix while the multiply does
#   $C F^2$ multiply-adds per entry of the output, and memory is cheap compared with the interpreter's
#   overhead. A note that the extra memory can become the limit for big layers (hence other
#   algorithms: FFT, Winograd, implicit GEMM) is welcome but not required.
# ### END SOLUTION

# %% [markdown]
# ## 3. The forward pass as one matrix product
#
# With `cols` from `im2col` and the filters flattened to rows,
# $W_{row} = $ `w.reshape(F, -1)` of shape $(F, K)$, the product
#
# $$
# \text{out}_{mat} = W_{row}\, \text{cols} + b\, \mathbf{1}^\top \in \mathbb{R}^{F \times (N H_{out} W_{out})}
# $$
#
# evaluates every filter on every receptive field at once: entry $(f, g)$ is exactly the dot
# product your naive loop computed for output position $g$ with filter $f$. Because the columns
# are ordered (sample, row, column), reshaping gives an array indexed
# $(f, n, o_y, o_x)$; one transpose brings it to the NCHW layout $(n, f, o_y, o_x)$.
#
# ### Your task: `conv_forward_im2col`
#
# Use your `im2col`, one matrix product (`@`), the bias added with broadcasting, a reshape and a
# transpose. No loops. Keep `cols` in the cache: the backward pass needs it.

# %% nbgrader={"grade": false, "grade_id": "conv_forward_im2col", "locked": false, "schema_version": 3, "solution": true}
def conv_forward_im2col(x, w, b, conv_param):
    """Forward pass of a convolutional layer as one matrix product.

    Inputs:
    - x: input of shape (N, C, H, W)
    - w: filters of shape (F, C, HH, WW)
    - b: biases of shape (F,)
    - conv_param: dict with 'stride' and 'pad'

    Returns a tuple of:
    - out: output of shape (N, F, H_out, W_out), the dtype of x
    - cache: (x, w, b, conv_param, cols) for conv_backward_im2col
    """
    out, cols = None, None
    ### BEGIN SOLUTION
    stride, pad = conv_param["stride"], conv_param["pad"]
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    H_out = (H - HH + 2 * pad) // stride + 1
    W_out = (W - WW + 2 * pad) // stride + 1
    cols = im2col(x, HH, WW, stride, pad)
    out = w.reshape(F, -1) @ cols + b[:, None]
    out = out.reshape(F, N, H_out, W_out).transpose(1, 0, 2, 3)
    ### END SOLUTION
    cache = (x, w, b, conv_param, cols)
    return out, cache


# %% nbgrader={"grade": true, "grade_id": "test_conv_forward_im2col", "locked": true, "points": 2, "schema_version": 3, "solution": false}
# conv_forward_im2col: 2 points, 3 visible cases here, more when graded.
check("conv_forward_im2col", cases=[
    {"x": (2, 3, 4, 4), "w": (3, 3, 3, 3), "stride": 1, "pad": 1, "seed": 0},
    {"x": (1, 2, 7, 7), "w": (2, 2, 3, 3), "stride": 2, "pad": 0, "seed": 1},
    {"x": (2, 3, 5, 7), "w": (4, 3, 3, 3), "stride": 2, "pad": 1, "seed": 2, "dtype": "float32"},
])
### BEGIN HIDDEN TESTS
check("conv_forward_im2col", cases=[
    {"x": (3, 2, 7, 5), "w": (4, 2, 3, 3), "stride": 2, "pad": 1, "seed": 11, "dtype": "float32"},
    {"x": (2, 3, 6, 6), "w": (2, 3, 1, 1), "stride": 1, "pad": 0, "seed": 12},
    {"x": (1, 1, 9, 9), "w": (1, 1, 5, 5), "stride": 2, "pad": 2, "seed": 13},
    {"x": (2, 4, 5, 8), "w": (3, 4, 2, 4), "stride": 1, "pad": 0, "seed": 14},
    {"x": (1, 3, 11, 11), "w": (2, 3, 5, 5), "stride": 3, "pad": 3, "seed": 15},
    {"x": (8, 3, 16, 16), "w": (8, 3, 3, 3), "stride": 1, "pad": 1, "seed": 16, "dtype": "float32"},
])
### END HIDDEN TESTS

# %% [markdown]
# ## 4. Going back: `col2im` and the backward pass
#
# The forward pass is $\text{out}_{mat} = W_{row}\,\text{cols} + b\mathbf{1}^\top$, a matrix
# product, and the gradients of a matrix product are matrix products. With
# $\text{dout}_{mat}$ the upstream gradient arranged like $\text{out}_{mat}$ (shape
# $(F, N H_{out} W_{out})$, the inverse of the forward's reshape and transpose):
#
# $$
# dW_{row} = \text{dout}_{mat}\; \text{cols}^\top, \qquad
# db = \text{dout}_{mat}\, \mathbf{1}, \qquad
# d\text{cols} = W_{row}^\top\; \text{dout}_{mat}.
# $$
#
# (Shapes confirm it: $(F, M)(M, K) = (F, K)$ and $(K, F)(F, M) = (K, M)$ with
# $M = N H_{out} W_{out}$.) $dW_{row}$ reshaped to `w.shape` is `dw`. What is left is to turn
# $d\text{cols}$, the gradient with respect to every *copy* of every input number, into the
# gradient with respect to the input itself.
#
# **`col2im`** does this. Each entry of `cols` was copied from one position of the padded
# input, and a number that was copied into several columns influenced the loss through each
# copy, so its gradient is the **sum** of the gradients of its copies (the same rule as in the
# backward pass of a fan-out in any network). `col2im` therefore *adds* every entry of $d\text{cols}$
# back into the position it came from, then drops the padding. It is not the inverse of
# `im2col` (`col2im(im2col(x))` is not `x`: interior values come back multiplied by the number
# of fields covering them) but its **adjoint** (transpose): for all `x` and `y`,
#
# $$
# \langle \text{im2col}(x),\, y \rangle = \langle x,\, \text{col2im}(y) \rangle .
# $$
#
# ### Your task: `col2im`
#
# Mirror your `im2col`: reshape `cols` to $(C, HH, WW, N, H_{out}, W_{out})$, loop over the taps
# $(i, j)$, and **add** (`+=`) each block into the strided slice of a zero padded array that it
# came from. Within one tap, the positions of the slice are all different, so `+=` on the slice is
# safe; different taps hit the same positions, and the `+=` over the tap loop does the summing.
# Return the un-padded part, of shape `x_shape`, in the dtype of `cols`.

# %% nbgrader={"grade": false, "grade_id": "col2im", "locked": false, "schema_version": 3, "solution": true}
def col2im(cols, x_shape, HH, WW, stride, pad):
    """Fold a column matrix back onto the input, adding up overlapping contributions.

    Inputs:
    - cols: array of shape (C*HH*WW, N*H_out*W_out), laid out as im2col's output
    - x_shape: (N, C, H, W), the shape of the input that im2col unrolled
    - HH, WW, stride, pad: as for im2col

    Returns dx of shape x_shape and the dtype of cols: every entry of cols is added to the input
    position it was copied from (entries that came from the padding are dropped).
    """
    dx = None
    ### BEGIN SOLUTION
    N, C, H, W = x_shape
    H_out = (H - HH + 2 * pad) // stride + 1
    W_out = (W - WW + 2 * pad) // stride + 1
    blocks = cols.reshape(C, HH, WW, N, H_out, W_out)
    dx_pad = np.zeros((N, C, H + 2 * pad, W + 2 * pad), dtype=cols.dtype)
    for i in range(HH):
        for j in range(WW):
            dx_pad[:, :, i:i + stride * H_out:stride, j:j + stride * W_out:stride] += blocks[:, i, j].transpose(1, 0, 2, 3)
    dx = dx_pad[:, :, pad:pad + H, pad:pad + W]
    ### END SOLUTION
    return dx


# %% nbgrader={"grade": true, "grade_id": "test_col2im", "locked": true, "points": 3, "schema_version": 3, "solution": false}
# col2im: 3 points, 4 visible cases here, more when graded.
check("col2im", cases=[
    {"x": (1, 1, 3, 3), "HH": 2, "WW": 2, "stride": 1, "pad": 0, "seed": 0},
    {"x": (2, 3, 4, 4), "HH": 3, "WW": 3, "stride": 1, "pad": 1, "seed": 1},
    {"x": (2, 2, 7, 7), "HH": 3, "WW": 3, "stride": 2, "pad": 0, "seed": 2},
    {"x": (3, 2, 5, 6), "HH": 2, "WW": 3, "stride": 1, "pad": 1, "seed": 3, "dtype": "float32"},
])
### BEGIN HIDDEN TESTS
check("col2im", cases=[
    {"x": (2, 3, 9, 9), "HH": 5, "WW": 5, "stride": 2, "pad": 2, "seed": 11},
    {"x": (1, 4, 6, 8), "HH": 1, "WW": 1, "stride": 1, "pad": 0, "seed": 12},
    {"x": (3, 1, 11, 11), "HH": 3, "WW": 3, "stride": 4, "pad": 0, "seed": 13, "dtype": "float32"},
    {"x": (2, 2, 5, 7), "HH": 4, "WW": 2, "stride": 1, "pad": 3, "seed": 14},
    {"x": (4, 3, 3, 3), "HH": 3, "WW": 3, "stride": 1, "pad": 0, "seed": 15},
])
### END HIDDEN TESTS

# %% cs231n={"grading": "skip"}
# col2im is the adjoint of im2col (not its inverse): check both facts on random arrays.
adj_rng = np.random.default_rng(0)
ax_ = adj_rng.standard_normal((2, 3, 6, 6))
try:
    ay = adj_rng.standard_normal(im2col(ax_, 3, 3, 1, 1).shape)
    left, right = np.sum(im2col(ax_, 3, 3, 1, 1) * ay), np.sum(ax_ * col2im(ay, ax_.shape, 3, 3, 1, 1))
    print(f"<im2col(x), y> = {left:.10f}")
    print(f"<x, col2im(y)> = {right:.10f}")
    counts = col2im(im2col(np.ones((1, 1, 5, 5)), 3, 3, 1, 1), (1, 1, 5, 5), 3, 3, 1, 1)
    print("col2im(im2col(ones)) counts how many 3x3 fields (pad 1) cover each pixel:")
    print(counts[0, 0])
except NotImplementedError:
    print("implement im2col and col2im first")


# %% [markdown]
# ### Your task: `conv_backward_im2col`
#
# Bring `dout` from $(N, F, H_{out}, W_{out})$ into the $(F, N H_{out} W_{out})$ layout of
# $\text{out}_{mat}$ (transpose, then reshape), apply the three formulas above, reshape `dw` to
# the filters' shape, and let your `col2im` produce `dx`. Only matrix products, no loops over
# positions.

# %% nbgrader={"grade": false, "grade_id": "conv_backward_im2col", "locked": false, "schema_version": 3, "solution": true}
def conv_backward_im2col(dout, cache):
    """Backward pass of a convolutional layer with matrix products and col2im.

    Inputs:
    - dout: upstream derivatives of shape (N, F, H_out, W_out)
    - cache: (x, w, b, conv_param, cols) from conv_forward_im2col

    Returns a tuple of:
    - dx: gradient with respect to x, shape (N, C, H, W)
    - dw: gradient with respect to w, shape (F, C, HH, WW)
    - db: gradient with respect to b, shape (F,)
    """
    dx, dw, db = None, None, None
    ### BEGIN SOLUTION
    x, w, b, conv_param, cols = cache
    stride, pad = conv_param["stride"], conv_param["pad"]
    F, _, HH, WW = w.shape
    dout_mat = dout.transpose(1, 0, 2, 3).reshape(F, -1)
    db = dout_mat.sum(axis=1)
    dw = (dout_mat @ cols.T).reshape(w.shape)
    dcols = w.reshape(F, -1).T @ dout_mat
    dx = col2im(dcols, x.shape, HH, WW, stride, pad)
    ### END SOLUTION
    return dx, dw, db


# %% nbgrader={"grade": true, "grade_id": "test_conv_backward_im2col", "locked": true, "points": 2, "schema_version": 3, "solution": false}
# conv_backward_im2col: 2 points, 3 visible cases here, more when graded.
# The cache comes from your conv_forward_im2col on the same inputs.
check("conv_backward_im2col", cases=[
    {"x": (2, 3, 4, 4), "w": (3, 3, 3, 3), "stride": 1, "pad": 1, "seed": 0},
    {"x": (1, 2, 7, 7), "w": (2, 2, 3, 3), "stride": 2, "pad": 0, "seed": 1},
    {"x": (2, 3, 5, 7), "w": (4, 3, 3, 3), "stride": 2, "pad": 1, "seed": 2, "dtype": "float32"},
])
### BEGIN HIDDEN TESTS
check("conv_backward_im2col", cases=[
    {"x": (3, 2, 7, 5), "w": (4, 2, 3, 3), "stride": 2, "pad": 1, "seed": 21, "dtype": "float32"},
    {"x": (2, 3, 6, 6), "w": (2, 3, 1, 1), "stride": 1, "pad": 0, "seed": 22},
    {"x": (1, 1, 9, 9), "w": (1, 1, 5, 5), "stride": 2, "pad": 2, "seed": 23},
    {"x": (2, 4, 5, 8), "w": (3, 4, 2, 4), "stride": 1, "pad": 0, "seed": 24},
    {"x": (1, 3, 11, 11), "w": (2, 3, 5, 5), "stride": 3, "pad": 3, "seed": 25},
    {"x": (8, 3, 16, 16), "w": (8, 3, 3, 3), "stride": 1, "pad": 1, "seed": 26, "dtype": "float32"},
])
### END HIDDEN TESTS

# %% [markdown]
# **Written answer (2 points, graded by a person).** `col2im` must *add* each column entry into the
# image (`+=`), not assign it (`=`). Explain why, and describe a case (filter size, stride) where
# assignment gives the right result anyway, so that a check on only that case would not catch the
# mistake.

# %% [markdown] nbgrader={"grade": true, "grade_id": "q_col2im_adds", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# ### BEGIN SOLUTION
# Rubric (2 points):
# - 1 point: an input pixel is copied into the column matrix once for every window that covers it;
#   in the backward pass each copy carries its own gradient, and the gradient of a value used several
#   times is the sum of the gradients of its uses. Assignment keeps only the last window's
#   contribution and drops the others.
# - 1 point: when windows do not overlap (stride $S \ge F$, e.g. 2x2 with stride 2, or a 1x1 filter)
#   every pixel is in at most one window, so `=` and `+=` agree; a test needs overlapping windows
#   (stride smaller than the filter) to see the difference.
# ### END SOLUTION

# %% [markdown]
# ## 5. The backward pass is a convolution with flipped filters
#
# The course notes state it in one line: the backward pass of a convolution, for the data and for
# the weights, is again a convolution (with spatially flipped filters). Let us derive it in one
# dimension and then check it in two.
#
# *One dimension, stride 1.* With a filter $w_0, \dots, w_{F-1}$ the forward pass computes
# $o_i = \sum_p w_p\, x_{i+p}$ (on the padded input). Input $x_k$ is used by every output $o_i$
# with $i + p = k$, that is $p = k - i$, so
# $$
# dx_k = \sum_i do_i\; w_{k-i} = \sum_{q=0}^{F-1} \tilde w_q\; do_{k - (F-1) + q},
# \qquad \tilde w_q = w_{F-1-q},
# $$
# substituting $q = F - 1 - (k - i)$. The right-hand side is the same sliding dot product as
# the forward pass, applied to `dout` padded with $F - 1$ zeros on each side (a **full**
# convolution: the filter also visits positions where it only partly overlaps), using the
# **reversed** filter $\tilde w$.
#
# *In two dimensions with channels*, reverse both spatial axes (a $180^\circ$ rotation) and swap the
# roles of the channels: the forward pass maps $C$ input channels to $F$ output channels, the
# backward pass maps $F$ channels of `dout` back to $C$. The backward filter bank is
#
# $$
# w_{back}[c, f, p, q] = w[f, c,\; HH - 1 - p,\; WW - 1 - q],
# $$
#
# i.e. `w.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1]`, of shape $(C, F, HH, WW)$. If the forward
# pass padded by $P$, the backward convolution pads `dout` by $HH - 1 - P$ (for "same" padding
# $P = (HH-1)/2$ this is $P$ again), and its output is exactly `dx`:
#
# $$
# dx = \text{conv}\big(\text{dout},\; w_{back},\; b = 0,\; S = 1,\; P' = HH - 1 - P\big).
# $$
#
# The weight gradient is a convolution too, without a flip: $dw[f, c] = \sum_n x_{pad}[n, c]
# \star \text{dout}[n, f]$ (slide `dout` over the padded input). Treating the channels $C$ as a
# "batch" and the samples $N$ as "channels" turns it into one call of the forward pass.
#
# For stride $S > 1$ the same holds after inserting $S - 1$ zeros between the entries of `dout`
# (this is the "transposed convolution" used to upsample in segmentation and generative networks).
#
# The cell below checks both identities numerically with your own layer: `dx` and `dw` come
# from your `conv_backward_im2col`, and the convolutions on the right-hand sides are computed by
# your `conv_forward_im2col`. It ends with a verdict: `OK` when both sides agree up to rounding
# (relative error below $10^{-10}$), `MISMATCH` otherwise. The identities hold for any correct
# convolution, so a `MISMATCH` means that your forward and backward passes disagree with each
# other; the checks above tell which one is wrong.

# %% cs231n={"grading": "skip"}
flip_rng = np.random.default_rng(5)


def convolve(x, w, stride, pad):
    # A convolution without bias, computed by your conv_forward_im2col.
    b = np.zeros(w.shape[0], dtype=x.dtype)
    return conv_forward_im2col(x, w, b, {"stride": stride, "pad": pad})[0]


try:
    worst = 0.0
    for HH, pad in ((3, 1), (3, 0), (5, 2), (5, 1)):
        x = flip_rng.standard_normal((2, 3, 7, 7))
        w = flip_rng.standard_normal((4, 3, HH, HH))
        b = flip_rng.standard_normal(4)
        out, cache = conv_forward_im2col(x, w, b, {"stride": 1, "pad": pad})
        dout = flip_rng.standard_normal(out.shape)
        dx, dw, db = conv_backward_im2col(dout, cache)

        w_back = w.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1]
        dx_as_conv = convolve(dout, w_back, stride=1, pad=HH - 1 - pad)
        x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
        dw_as_conv = convolve(x_pad.transpose(1, 0, 2, 3), dout.transpose(1, 0, 2, 3), stride=1, pad=0).transpose(1, 0, 2, 3)
        dx_error, dw_error = rel_error(dx, dx_as_conv), rel_error(dw, dw_as_conv)
        worst = max(worst, dx_error, dw_error)
        print(f"{HH}x{HH} filters, pad {pad}: dx vs flipped-filter convolution of dout: rel. error "
              f"{dx_error:.1e}; dw vs convolution of x with dout: {dw_error:.1e}")
except NotImplementedError:
    print("implement conv_forward_im2col and conv_backward_im2col first")
else:
    # both sides are exact formulas, so only rounding may separate them
    if worst < 1e-10:
        print(f"OK: both identities hold in all four settings (largest relative error {worst:.1e} < 1e-10)")
    else:
        print(f"MISMATCH: an identity fails (largest relative error {worst:.1e}, expected < 1e-10); "
              "see what the checks of conv_forward_im2col and conv_backward_im2col above say")


# %% [markdown]
# ## 6. How much faster?
#
# Time to measure. We compare two implementations of the same layer, forward and backward:
#
# - **naive loops**: the loop version of assignment 1, given below so that this notebook stands
#   on its own;
# - **your im2col**: `conv_forward_im2col` and `conv_backward_im2col`.
#
# Each measurement is the best of a few repetitions (the minimum is the least disturbed by other
# programs). The matrix products run with BLAS limited to one thread (`threadpool_limits(1)`): that measures
# the algorithms rather than how many idle cores your machine has, and it avoids a trap of small
# products on a busy machine, where waiting for a second BLAS thread can cost more than the work.
# With `CS231N_QUICK=1` the sizes are small and the ratios less telling.

# %% cs231n={"grading": "skip"}
def conv_forward_loops(x, w, b, conv_param):
    # The naive forward pass (assignment 1), for timing only.
    stride, pad = conv_param["stride"], conv_param["pad"]
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    H_out, W_out = (H - HH + 2 * pad) // stride + 1, (W - WW + 2 * pad) // stride + 1
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out = np.zeros((N, F, H_out, W_out), dtype=x.dtype)
    for n in range(N):
        for f in range(F):
            for i in range(H_out):
                for j in range(W_out):
                    field = x_pad[n, :, i * stride:i * stride + HH, j * stride:j * stride + WW]
                    out[n, f, i, j] = np.sum(field * w[f]) + b[f]
    return out, (x, w, b, conv_param)


def conv_backward_loops(dout, cache):
    # The naive backward pass (assignment 1), for timing only.
    x, w, b, conv_param = cache
    stride, pad = conv_param["stride"], conv_param["pad"]
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dx_pad, dw = np.zeros_like(x_pad), np.zeros_like(w)
    for n in range(N):
        for f in range(F):
            for i in range(dout.shape[2]):
                for j in range(dout.shape[3]):
                    rows, cols = slice(i * stride, i * stride + HH), slice(j * stride, j * stride + WW)
                    dw[f] += dout[n, f, i, j] * x_pad[n, :, rows, cols]
                    dx_pad[n, :, rows, cols] += dout[n, f, i, j] * w[f]
    return dx_pad[:, :, pad:pad + H, pad:pad + W], dw, dout.sum(axis=(0, 2, 3))


# %% cs231n={"grading": "skip"}
from threadpoolctl import threadpool_limits


def best_time(fn, repeats):
    # Smallest wall time of `repeats` calls, in seconds.
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def time_layer(forward, backward, x, w, b, param, repeats):
    out, cache = forward(x, w, b, param)
    dout = np.ones_like(out)
    return best_time(lambda: forward(x, w, b, param), repeats), best_time(lambda: backward(dout, cache), repeats)


speed_rng = np.random.default_rng(0)
if QUICK:
    x_shape, w_shape, repeats = (2, 3, 16, 16), (8, 3, 3, 3), 2
else:
    x_shape, w_shape, repeats = (8, 3, 32, 32), (16, 3, 3, 3), 3
sx = speed_rng.standard_normal(x_shape)
sw = speed_rng.standard_normal(w_shape)
sb = speed_rng.standard_normal(w_shape[0])
sparam = {"stride": 1, "pad": 1}

implementations = {
    "naive loops": (conv_forward_loops, conv_backward_loops),
    "your im2col": (conv_forward_im2col, conv_backward_im2col),
}
timings = {}
for name, (forward, backward) in implementations.items():
    try:
        with threadpool_limits(1):
            timings[name] = time_layer(forward, backward, sx, sw, sb, sparam, 1 if name == "naive loops" else repeats)
    except NotImplementedError:
        print(f"{name}: not implemented yet, left out")

print(f"x {x_shape}, w {w_shape}, stride 1, pad 1, float64")
print(f"{'implementation':<14} {'forward':>10} {'backward':>10} {'speed-up (fwd + bwd)':>22}")
slowest = sum(timings["naive loops"])
for name, (fwd, bwd) in timings.items():
    print(f"{name:<14} {fwd * 1e3:8.2f} ms {bwd * 1e3:8.2f} ms {slowest / (fwd + bwd):20.0f}x")

# %% cs231n={"grading": "skip"}
names = list(timings)
positions = np.arange(len(names))
fig, ax = plt.subplots(figsize=(7, 3.5))
ax.bar(positions - 0.2, [timings[n][0] * 1e3 for n in names], width=0.4, label="forward")
ax.bar(positions + 0.2, [timings[n][1] * 1e3 for n in names], width=0.4, label="backward")
ax.set_xticks(positions, names)
ax.set_yscale("log")
ax.set_ylabel("time (ms, log scale)")
ax.set_title(f"convolution of x {x_shape} with w {w_shape}")
ax.legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# Expect the loops to be hundreds of times slower than your im2col version: they pay interpreter
# overhead for every output, while the matrix product runs compiled, vectorized code. (With
# `CS231N_QUICK=1` the layer is tiny and the ratio smaller.)
#
# Where does the time of the im2col version go? Not only into the matrix product: building the
# column matrix copies every input number about nine times (for $3 \times 3$ filters at stride 1)
# into a matrix that, for a real layer, is far larger than the processor's caches. The next cell
# times a larger layer in float32 (the loops are left out: they would take a minute) and splits
# your forward pass into the `im2col` call and the rest (the product, the bias and the reshape).
# The copy does no arithmetic, and its cost does not depend on the number of filters $F$, while
# the product does $F$ multiply-adds per entry of the column matrix: the fewer the filters, the
# larger the share of the copy. That share is why practical implementations (`cs231n_lib` among
# them) fill the column matrix with compiled loops, one cache-sized slice at a time, instead of
# building it whole.

# %% cs231n={"grading": "skip"}
if QUICK:
    big_x, big_w, big_repeats = (4, 8, 16, 16), (16, 8, 3, 3), 2
else:
    big_x, big_w, big_repeats = (32, 16, 32, 32), (32, 16, 3, 3), 3
bx = speed_rng.standard_normal(big_x).astype(np.float32)
bw = speed_rng.standard_normal(big_w).astype(np.float32)
bb = np.zeros(big_w[0], dtype=np.float32)
print(f"x {big_x}, w {big_w}, stride 1, pad 1, float32; "
      f"column matrix {column_matrix_bytes(big_x, 3, 3, 1, 1, 4) / 1e6:.1f} MB")
try:
    with threadpool_limits(1):
        fwd, bwd = time_layer(conv_forward_im2col, conv_backward_im2col, bx, bw, bb, sparam, big_repeats)
        unroll = best_time(lambda: im2col(bx, 3, 3, 1, 1), big_repeats)
except NotImplementedError:
    print("implement im2col, conv_forward_im2col and conv_backward_im2col first")
else:
    print(f"your im2col version: forward {fwd * 1e3:8.2f} ms, backward {bwd * 1e3:8.2f} ms")
    print(f"  of the forward pass, im2col alone takes {unroll * 1e3:.2f} ms ({unroll / fwd:.0%}), "
          f"the matrix product and the rest {max(fwd - unroll, 0.0) * 1e3:.2f} ms")

# %% [markdown]
# ## Summary
#
# - `im2col` turns every receptive field into a column: layout row $(c \cdot HH + i) \cdot WW + j$,
#   column $(n \cdot H_{out} + o_y) \cdot W_{out} + o_x$. A whole conv layer is then
#   `w.reshape(F, -1) @ cols + b`, reshaped to NCHW.
# - The price is memory: each input number is copied about $HH \cdot WW / S^2$ times (AlexNet
#   CONV1: a $363 \times 3025$ matrix, 4.4 MB per image in float32, seven times the image).
# - The backward pass is two more products, `dout @ cols.T` for `dw` and `w_rows.T @ dout` for
#   the column gradients, which `col2im` (the adjoint of `im2col`) sums back onto the image.
# - Mathematically the backward pass is itself a convolution: `dout` convolved with the
#   channel-transposed, $180^\circ$-rotated filters gives `dx` (stride 1).
# - One matrix product instead of loops buys two to three orders of magnitude.
