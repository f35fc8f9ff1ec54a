# %% [markdown]
# # Assignment 4: Batch normalization
#
# Deep networks are hard to train when the numbers flowing through them drift in scale from
# layer to layer. Batch normalization fixes the scale of every feature, inside the network, on
# every minibatch. In this notebook you implement it (forward, backward twice, and for
# convolutional feature maps), then watch what it does to the training of a deep network.
#
# **Grading.** The notebook is worth **21 points**: 17 points for the functions of sections 2 to
# 5, checked automatically, and **4 points** for two written answers, graded by a person (not by
# the checks). Section 6 is **optional**: layer normalization and group normalization, one point
# per function, **4 points of extra credit** on top of the 21; leaving it undone costs nothing.
#
# | function | points |
# |---|---|
# | `batchnorm_forward` | 4 |
# | `batchnorm_backward` | 4 |
# | `batchnorm_backward_alt` | 3 |
# | `spatial_batchnorm_forward` | 3 |
# | `spatial_batchnorm_backward` | 3 |
# | *optional:* `layernorm_forward`, `layernorm_backward` | 1 + 1 |
# | *optional:* `spatial_groupnorm_forward`, `spatial_groupnorm_backward` | 1 + 1 |
# | written answers: test mode (section 2), small batches (section 7) | 2 + 2 |
#
# **How to work.** Write your code where a cell says `# YOUR CODE HERE` and
# `raise NotImplementedError()`, then run the check cell below it. A check compares your
# function with the reference library `cs231n_lib` on small random inputs and prints the
# relative error of every output (largest absolute difference divided by the largest
# magnitude) with a verdict, plus a hint when it can locate the mistake. When your notebook is
# graded, the same checks run on more cases you do not see (other shapes, momentum values,
# `float32` inputs), so write functions that are right in general. Keep the dtype of the input
# (a `float32` batch gives `float32` outputs).
#
# The experiments in section 7 train small networks with *your* layers. They take a few minutes
# with the full configuration; they are not graded.

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
from cs231n_lib import (Solver, affine_backward, affine_forward, get_CIFAR10_data, relu_backward,
                        relu_forward, softmax_loss)
from cs231n_lib.gradient_check import eval_numerical_gradient_array, rel_error
from cs231n_checks import check

plt.rcParams["figure.figsize"] = (10.0, 4.0)

# %% cs231n={"grading": "skip"}
# CS231N_QUICK=1 shrinks the timings and experiments to a few seconds (the course kit's tests set it).
QUICK = os.environ.get("CS231N_QUICK") == "1"


# %% [markdown]
# ## 1. Why normalise inside the network?
#
# Most learning methods work better when their input features are uncorrelated, centred at
# zero and of unit variance, which is why we preprocess data (subtract the mean image, scale).
# But preprocessing only helps the first layer. The activations of deeper layers are outputs of
# earlier layers: nothing keeps them centred or of unit scale, and, worse, their distribution
# keeps moving during training as the weights below them change. Ioffe and Szegedy (2015) called
# this *internal covariate shift* and proposed to normalise inside the network.
#
# A **batch normalization** layer does, for every feature $j$ of a minibatch
# $x_1, \dots, x_N$ (during training):
#
# $$\mu_j = \frac1N\sum_{i=1}^N x_{ij}, \qquad
#   \sigma_j^2 = \frac1N\sum_{i=1}^N (x_{ij} - \mu_j)^2, \qquad
#   \hat x_{ij} = \frac{x_{ij} - \mu_j}{\sqrt{\sigma_j^2 + \epsilon}}, \qquad
#   y_{ij} = \gamma_j\,\hat x_{ij} + \beta_j .$$
#
# * $\epsilon$ (say $10^{-5}$) keeps the division safe when a feature is constant over the batch.
# * $\sigma_j^2$ is the **biased** variance: divide by $N$, not $N - 1$.
# * $\gamma$ and $\beta$ are **learned**. Forcing every feature to zero mean and unit variance
#   could take away something the network needs (a ReLU behind a layer may want most inputs
#   positive, for instance). With $\gamma_j = \sqrt{\sigma_j^2 + \epsilon}$ and $\beta_j = \mu_j$
#   the layer gives back its input $x_{ij}$ exactly (for that batch: $\mu_j$ and $\sigma_j$ are the
#   batch's statistics), so normalization costs no expressive power; what it changes is how easy the
#   network is to optimise.
#
# **Test time.** A prediction for one image must not depend on which other images share its
# batch. So during training the layer keeps **running averages** of the batch statistics and at
# test time normalises with those instead:
#
# $$\mu_{\text{run}} \leftarrow m\,\mu_{\text{run}} + (1 - m)\,\mu,\qquad
#   \sigma^2_{\text{run}} \leftarrow m\,\sigma^2_{\text{run}} + (1 - m)\,\sigma^2$$
#
# (stored in `bn_param` as `running_mean` and `running_var`).
#
# In this kit **the momentum $m$ is the weight of the old value** ($m = 0.9$ by default): each
# update moves the average 10% of the way towards the new batch, so it remembers roughly the
# last $1/(1-m) = 10$ batches. Mind the convention when you read other code: some texts (and
# PyTorch's `momentum=0.1`) give the momentum to the *new* value instead, and one version of the
# course notes even writes the update with the two weights swapped. The checks use random
# running averages, so a swapped update cannot slip through.
#
# (The course notes also mention older "normalization layers", such as local response
# normalization, loosely modelled on inhibition between neighbouring neurons. They fell out of
# use because they helped little. Batch normalization is a different idea and became a standard
# part of deep networks: ResNets use it after nearly every convolution.)

# %% [markdown]
# ## 2. Forward pass
#
# `bn_param` is a dict that the layer reads and *updates*:
#
# * `mode`: `'train'` or `'test'`;
# * `eps` (default `1e-5`) and `momentum` (default `0.9`);
# * `running_mean`, `running_var`: arrays of shape $(D,)$. If they are missing, start from
#   zeros (mean) and ones (variance). In train mode, store the updated averages back into
#   `bn_param`; in test mode, use them and leave them unchanged.
#
# The backward pass in section 3 will need the intermediate values of this computation, so put
# them in `cache` (a tuple or a dict, as you like: only your own backward pass reads it). In test
# mode the cache is not checked.

# %% nbgrader={"grade": false, "grade_id": "batchnorm_forward", "locked": false, "schema_version": 3, "solution": true, "task": false}
def batchnorm_forward(x, gamma, beta, bn_param):
    """Forward pass of batch normalization.

    Inputs:
    - x: data of shape (N, D)
    - gamma: scale, shape (D,)
    - beta: shift, shape (D,)
    - bn_param: dict with 'mode' ('train' or 'test'), optional 'eps', 'momentum',
      'running_mean' and 'running_var' (shape (D,)); the running averages are updated
      in place of the old ones in train mode

    Returns a tuple of:
    - out: shape (N, D), dtype of x
    - cache: what batchnorm_backward needs
    """
    mode = bn_param["mode"]
    eps = bn_param.get("eps", 1e-5)
    momentum = bn_param.get("momentum", 0.9)
    N, D = x.shape
    running_mean = bn_param.get("running_mean", np.zeros(D, dtype=x.dtype))
    running_var = bn_param.get("running_var", np.ones(D, dtype=x.dtype))

    ### BEGIN SOLUTION
    if mode == "train":
        mean = x.mean(axis=0)
        x_centered = x - mean
        var = (x_centered ** 2).mean(axis=0)
        std = np.sqrt(var + eps)
        inv_std = 1.0 / std
        x_hat = x_centered * inv_std
        out = gamma * x_hat + beta
        running_mean = momentum * running_mean + (1 - momentum) * mean
        running_var = momentum * running_var + (1 - momentum) * var
        cache = (x_hat, x_centered, std, inv_std, gamma)
    elif mode == "test":
        x_hat = (x - running_mean) / np.sqrt(running_var + eps)
        out = gamma * x_hat + beta
        cache = None
    else:
        raise ValueError(f"bn_param['mode'] must be 'train' or 'test'; found {mode!r}")
    ### END SOLUTION

    bn_param["running_mean"] = running_mean
    bn_param["running_var"] = running_var
    return out, cache


# %% nbgrader={"grade": true, "grade_id": "test_batchnorm_forward", "locked": true, "points": 4, "schema_version": 3, "solution": false, "task": false}
# batchnorm_forward: 4 points, 4 visible cases here, more when graded.
# Graded: out, and bn_param['running_mean'] / bn_param['running_var'] after the call.
check("batchnorm_forward", cases=[
    {"x": (8, 5), "mode": "train", "momentum": 0.9, "seed": 0},
    {"x": (20, 3), "mode": "train", "momentum": 0.7, "eps": 1e-3, "seed": 1},
    {"x": (6, 4), "mode": "test", "seed": 2},
    {"x": (10, 6), "mode": "train", "seed": 3, "dtype": "float32"},
])
### BEGIN HIDDEN TESTS
check("batchnorm_forward", cases=[
    {"x": (2, 7), "mode": "train", "momentum": 0.99, "seed": 11},
    {"x": (33, 4), "mode": "train", "momentum": 0.0, "seed": 12},
    {"x": (16, 9), "mode": "test", "momentum": 0.8, "seed": 13, "dtype": "float32"},
    {"x": (5, 1), "mode": "train", "eps": 1e-2, "seed": 14},
    {"x": (64, 12), "mode": "train", "momentum": 0.95, "seed": 15, "dtype": "float32"},
])
### END HIDDEN TESTS

# %% [markdown]
# Two quick sanity checks. In train mode, each output feature should have mean $\beta_j$ and
# standard deviation $|\gamma_j|$ (up to the tiny $\epsilon$), whatever the input's scale. And
# after many training batches drawn from one distribution, the running averages should have
# found its mean and variance, so that test mode produces nearly the same normalisation.

# %% cs231n={"grading": "skip"}
rng = np.random.default_rng(0)
N, D = 200, 3
gamma, beta = np.array([1.0, 2.0, 3.0]), np.array([0.0, -1.0, 5.0])
make_batch = lambda: 4.0 * rng.standard_normal((N, D)) + np.array([10.0, -3.0, 0.5])
try:
    out, _ = batchnorm_forward(make_batch(), gamma, beta, {"mode": "train"})
    print("train mode, means:", np.round(out.mean(axis=0), 4) + 0.0, " stds:", np.round(out.std(axis=0), 4))

    bn_param = {"mode": "train", "momentum": 0.9}
    for _ in range(100):
        batchnorm_forward(make_batch(), gamma, beta, bn_param)
    print("running_mean after 100 batches:", np.round(bn_param["running_mean"], 2), "(true mean: [10, -3, 0.5])")
    print("running_var after 100 batches: ", np.round(bn_param["running_var"], 2), "(true variance: 16)")
    bn_param["mode"] = "test"
    out, _ = batchnorm_forward(make_batch(), gamma, beta, bn_param)
    print("test mode, means:", np.round(out.mean(axis=0), 2), " stds:", np.round(out.std(axis=0), 2))
except NotImplementedError:
    print("implement batchnorm_forward first")


# %% [markdown]
# **Written answer (2 points, graded by a person).** At training time batch normalization uses the
# mean and variance of the current minibatch; at test time it uses running averages. Give two
# reasons why the test-time layer must not use the statistics of the test batch, and say what is
# wrong with the running averages if you forget to update them during training.

# %% [markdown] nbgrader={"grade": true, "grade_id": "q_bn_test_mode", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# ### BEGIN SOLUTION
# Rubric (2 points):
# - 1 point, any two of: a prediction must depend on its input only, not on which other examples
#   happen to be in the batch (deterministic output, the same answer for the same image); at test
#   time one may have a single example (batch of 1: the variance is 0 and every output is beta);
#   test batches can be small or unrepresentative (sorted, one class), so their statistics are
#   noisy or biased.
# - 1 point: the running averages estimate the training data's statistics, so test time applies one
#   fixed affine map (the same one the network was trained for). Never updated, they keep their
#   initial values (mean 0, variance 1): the test-time layer then does not normalise at all and the
#   outputs are on a different scale than in training, so accuracy collapses.
# ### END SOLUTION

# %% [markdown]
# ## 3. Backward pass through the computation graph
#
# The safest way to differentiate a composite function is to cut it into small steps, each
# with a simple local derivative, and walk them backwards. For one feature (drop the index $j$;
# every line is elementwise over the batch index $i$ unless it sums):
#
# | step | forward | backward (given $\partial L/\partial y_i$, written $dy_i$) |
# |---|---|---|
# | 1 | $\mu = \frac1N\sum_i x_i$ | $dx_i \mathrel{+}= d\mu / N$ |
# | 2 | $\bar x_i = x_i - \mu$ | $dx_i = d\bar x_i$, $\;d\mu = -\sum_i d\bar x_i$ |
# | 3 | $v = \frac1N\sum_i \bar x_i^2$ | $d\bar x_i \mathrel{+}= \frac2N\,\bar x_i\,dv$ |
# | 4 | $s = \sqrt{v + \epsilon}$ | $dv = ds / (2s)$ |
# | 5 | $r = 1/s$ | $ds = -dr / s^2$ |
# | 6 | $\hat x_i = \bar x_i\, r$ | $dr = \sum_i d\hat x_i\,\bar x_i$, $\;d\bar x_i = d\hat x_i\, r$ |
# | 7 | $y_i = \gamma\hat x_i + \beta$ | $d\beta = \sum_i dy_i$, $\;d\gamma = \sum_i dy_i\,\hat x_i$, $\;d\hat x_i = \gamma\, dy_i$ |
#
# Read the backward column from the bottom up. Two rules produce every line:
#
# * **A value used twice collects the gradients of both uses.** $\bar x$ feeds step 6 *and*
#   step 3, so $d\bar x$ starts with the step-6 term and step 3 *adds* to it. Likewise $x$ reaches
#   the output directly (step 2) and through the mean (step 1).
# * **Broadcasting forward means summing backward.** A per-feature quantity ($\mu$, $r$,
#   $\gamma$, $\beta$) is used by all $N$ rows, so its gradient is a sum over the batch axis:
#   `axis=0`.
#
# Write `batchnorm_backward` this way, one step at a time, using what your forward pass put in
# the cache. (It is only called on caches from train mode.)

# %% nbgrader={"grade": false, "grade_id": "batchnorm_backward", "locked": false, "schema_version": 3, "solution": true, "task": false}
def batchnorm_backward(dout, cache):
    """Backward pass of batch normalization, step by step through the computation graph.

    Inputs:
    - dout: upstream derivatives, shape (N, D)
    - cache: from batchnorm_forward in train mode

    Returns a tuple of:
    - dx: gradient with respect to x, shape (N, D)
    - dgamma: gradient with respect to gamma, shape (D,)
    - dbeta: gradient with respect to beta, shape (D,)
    """
    ### BEGIN SOLUTION
    x_hat, x_centered, std, inv_std, gamma = cache
    N = dout.shape[0]
    # step 7: y = gamma * x_hat + beta
    dbeta = dout.sum(axis=0)
    dgamma = (dout * x_hat).sum(axis=0)
    dx_hat = dout * gamma
    # step 6: x_hat = x_centered * inv_std
    dinv_std = (dx_hat * x_centered).sum(axis=0)
    dx_centered = dx_hat * inv_std
    # step 5: inv_std = 1 / std
    dstd = -dinv_std / std ** 2
    # step 4: std = sqrt(var + eps)
    dvar = dstd / (2 * std)
    # step 3: var = mean(x_centered ** 2)
    dx_centered += 2.0 / N * x_centered * dvar
    # step 2: x_centered = x - mean
    dx = dx_centered.copy()
    dmean = -dx_centered.sum(axis=0)
    # step 1: mean = mean(x)
    dx += dmean / N
    ### END SOLUTION
    return dx, dgamma, dbeta


# %% nbgrader={"grade": true, "grade_id": "test_batchnorm_backward", "locked": true, "points": 4, "schema_version": 3, "solution": false, "task": false}
# batchnorm_backward: 4 points, 3 visible cases here, more when graded.
# The backward pass gets the cache of YOUR batchnorm_forward (train mode).
check("batchnorm_backward", cases=[
    {"x": (8, 5), "seed": 0},
    {"x": (20, 3), "eps": 1e-3, "seed": 1},
    {"x": (10, 6), "seed": 2, "dtype": "float32"},
])
### BEGIN HIDDEN TESTS
check("batchnorm_backward", cases=[
    {"x": (3, 7), "seed": 11},
    {"x": (33, 4), "seed": 12},
    {"x": (16, 9), "seed": 13, "dtype": "float32"},
    {"x": (5, 1), "eps": 1e-2, "seed": 14},
])
### END HIDDEN TESTS

# %% [markdown]
# An independent confirmation: compare with numerical gradients (centred differences of
# $L = \sum_{ij} y_{ij}\,dy_{ij}$). Relative errors around $10^{-8}$ or below mean the analytic
# gradient is right; the cell says `OK` below $10^{-7}$ and `MISMATCH` above.

# %% cs231n={"grading": "skip"}
from cs231n_lib.gradient_check import report_gradient_errors
from cs231n_checks import inputs_changed_by, visible_check_passes

rng = np.random.default_rng(231)
N, D = 4, 5
x = 5 * rng.standard_normal((N, D)) + 12
gamma, beta, dout = rng.standard_normal(D), rng.standard_normal(D), rng.standard_normal((N, D))
forward = lambda x, gamma, beta: batchnorm_forward(x, gamma, beta, {"mode": "train"})[0]
try:
    _, cache = batchnorm_forward(x, gamma, beta, {"mode": "train"})
    dx, dgamma, dbeta = batchnorm_backward(dout, cache)
    dx_num = eval_numerical_gradient_array(lambda x: forward(x, gamma, beta), x, dout)
    dgamma_num = eval_numerical_gradient_array(lambda g: forward(x, g, beta), gamma, dout)
    dbeta_num = eval_numerical_gradient_array(lambda b: forward(x, gamma, b), beta, dout)
    errors = {"dx": rel_error(dx, dx_num), "dgamma": rel_error(dgamma, dgamma_num),
              "dbeta": rel_error(dbeta, dbeta_num)}
    report_gradient_errors(errors, 1e-7, look_at="batchnorm_backward", forward="batchnorm_forward",
                           forward_ok=visible_check_passes("batchnorm_forward"),
                           forward_changes=inputs_changed_by("batchnorm_forward"))
except NotImplementedError:
    print("implement batchnorm_forward and batchnorm_backward first")


# %% [markdown]
# ## 4. The same gradient in closed form
#
# The graph is a safe way to get a gradient, not the shortest. Work the derivative out on paper
# and it collapses. Write $r = 1/\sqrt{\sigma^2 + \epsilon}$ and $g_i = \gamma\,dy_i$ (the gradient
# reaching $\hat x_i$). Differentiating $\hat x_j = (x_j - \mu)\,r$ with respect to $x_i$, using
# $\partial\mu/\partial x_i = 1/N$, $\partial\sigma^2/\partial x_i = \frac2N (x_i - \mu)$ (the
# term from $\mu$ vanishes because the deviations sum to zero) and $\partial r/\partial\sigma^2 = -r^3/2$:
#
# $$\frac{\partial \hat x_j}{\partial x_i}
#   = r\Big(\delta_{ij} - \frac1N\Big) - (x_j - \mu)\,\frac{r^3}{2}\cdot\frac2N (x_i - \mu)
#   = \frac rN\big(N\delta_{ij} - 1 - \hat x_i\,\hat x_j\big).$$
#
# Then the chain rule $dx_i = \sum_j g_j\,\partial\hat x_j/\partial x_i$ gives
#
# $$\boxed{\;dx_i = \frac{r}{N}\Big(N g_i - \sum_j g_j - \hat x_i \sum_j g_j\,\hat x_j\Big)\;}$$
#
# which reads nicely: take the incoming gradient, remove its mean, and remove its component
# along $\hat x$ (the two directions in which normalization makes the output insensitive: adding
# a constant to a feature, or scaling it, changes nothing after normalizing). $d\gamma$ and
# $d\beta$ are as before. Implement `batchnorm_backward_alt` with this formula: a few vectorised
# lines, no graph.

# %% nbgrader={"grade": false, "grade_id": "batchnorm_backward_alt", "locked": false, "schema_version": 3, "solution": true, "task": false}
def batchnorm_backward_alt(dout, cache):
    """Backward pass of batch normalization with the closed-form gradient.

    Inputs and returns: as batchnorm_backward (the same cache, from your forward pass).
    """
    ### BEGIN SOLUTION
    x_hat, _, _, inv_std, gamma = cache
    N = dout.shape[0]
    dbeta = dout.sum(axis=0)
    dgamma = (dout * x_hat).sum(axis=0)
    g = dout * gamma
    dx = inv_std / N * (N * g - g.sum(axis=0) - x_hat * (g * x_hat).sum(axis=0))
    ### END SOLUTION
    return dx, dgamma, dbeta


# %% nbgrader={"grade": true, "grade_id": "test_batchnorm_backward_alt", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
# batchnorm_backward_alt: 3 points, 3 visible cases here, more when graded.
check("batchnorm_backward_alt", cases=[
    {"x": (8, 5), "seed": 0},
    {"x": (20, 3), "eps": 1e-3, "seed": 1},
    {"x": (10, 6), "seed": 2, "dtype": "float32"},
])
### BEGIN HIDDEN TESTS
check("batchnorm_backward_alt", cases=[
    {"x": (3, 7), "seed": 11},
    {"x": (33, 4), "seed": 12},
    {"x": (16, 9), "seed": 13, "dtype": "float32"},
    {"x": (5, 1), "eps": 1e-2, "seed": 14},
])
### END HIDDEN TESTS

# %% [markdown]
# How much does the closed form save? Both versions run on the same batch below; the ratio
# depends on the shape and the machine (each graph step makes a full pass over an $N\times D$
# array, the closed form makes fewer).

# %% cs231n={"grading": "skip"}
def best_time(fn, *args, repeats=5):
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn(*args)
        best = min(best, time.perf_counter() - start)
    return best

rng = np.random.default_rng(0)
shapes = [(64, 256), (256, 1024)] if QUICK else [(64, 256), (256, 1024), (1024, 4096)]
try:
    print(f"{'(N, D)':<14}{'graph':>10}{'closed form':>14}{'speed-up':>10}")
    for N, D in shapes:
        x, dout = rng.standard_normal((N, D)), rng.standard_normal((N, D))
        _, cache = batchnorm_forward(x, np.ones(D), np.zeros(D), {"mode": "train"})
        dx1, dgamma1, dbeta1 = batchnorm_backward(dout, cache)
        dx2, dgamma2, dbeta2 = batchnorm_backward_alt(dout, cache)
        if rel_error(dx1, dx2) >= 1e-8:
            print(f"MISMATCH: the two backward passes disagree on {(N, D)} (relative error "
                  f"{rel_error(dx1, dx2):.1e}); fix them before timing them")
            break
        t_graph, t_alt = best_time(batchnorm_backward, dout, cache), best_time(batchnorm_backward_alt, dout, cache)
        print(f"{str((N, D)):<14}{t_graph * 1e3:>8.2f}ms{t_alt * 1e3:>12.2f}ms{t_graph / t_alt:>9.1f}x")
except NotImplementedError:
    print("implement batchnorm_forward, batchnorm_backward and batchnorm_backward_alt first")


# %% [markdown]
# ## 5. Spatial batch normalization, for convolutional layers
#
# After a convolution, the features are **channels**: filter $c$ is applied at every position,
# so all the values of channel $c$, over the whole batch *and* every position, measure the same
# thing. Spatial batch normalization therefore keeps one mean and one variance per channel,
# taken over $N\cdot H\cdot W$ values, and one $\gamma_c, \beta_c$ per channel:
#
# $$\mu_c = \frac{1}{NHW}\sum_{n,h,w} x_{nchw}, \qquad
#   \sigma_c^2 = \frac{1}{NHW}\sum_{n,h,w} (x_{nchw}-\mu_c)^2, \qquad
#   y_{nchw} = \gamma_c\,\frac{x_{nchw}-\mu_c}{\sqrt{\sigma_c^2+\epsilon}} + \beta_c .$$
#
# That is exactly ordinary batch normalization of a matrix with $N\cdot H\cdot W$ rows and $C$
# columns. Build that matrix by moving the channel axis last,
# `x.transpose(0, 2, 3, 1).reshape(-1, C)`, call your `batchnorm_forward`, and undo the reshape
# and the transpose (in that order). The backward pass uses the same trick on `dout` with
# your `batchnorm_backward` (or `_alt`). Running averages behave as before, with shape $(C,)$.

# %% nbgrader={"grade": false, "grade_id": "spatial_batchnorm_forward", "locked": false, "schema_version": 3, "solution": true, "task": false}
def spatial_batchnorm_forward(x, gamma, beta, bn_param):
    """Forward pass of spatial batch normalization.

    Inputs:
    - x: data of shape (N, C, H, W)
    - gamma: scale, shape (C,)
    - beta: shift, shape (C,)
    - bn_param: as for batchnorm_forward, with running averages of shape (C,)

    Returns a tuple of:
    - out: shape (N, C, H, W), dtype of x
    - cache: what spatial_batchnorm_backward needs
    """
    ### BEGIN SOLUTION
    N, C, H, W = x.shape
    rows = x.transpose(0, 2, 3, 1).reshape(-1, C)
    out_rows, cache = batchnorm_forward(rows, gamma, beta, bn_param)
    out = out_rows.reshape(N, H, W, C).transpose(0, 3, 1, 2)
    ### END SOLUTION
    return out, cache


# %% nbgrader={"grade": true, "grade_id": "test_spatial_batchnorm_forward", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
# spatial_batchnorm_forward: 3 points, 3 visible cases here, more when graded.
check("spatial_batchnorm_forward", cases=[
    {"x": (2, 3, 4, 5), "mode": "train", "seed": 0},
    {"x": (3, 2, 3, 3), "mode": "test", "seed": 1},
    {"x": (4, 3, 2, 2), "mode": "train", "momentum": 0.8, "seed": 2, "dtype": "float32"},
])
### BEGIN HIDDEN TESTS
check("spatial_batchnorm_forward", cases=[
    {"x": (1, 4, 5, 5), "mode": "train", "momentum": 0.99, "seed": 11},
    {"x": (5, 2, 3, 7), "mode": "test", "seed": 12, "dtype": "float32"},
    {"x": (2, 6, 4, 3), "mode": "train", "momentum": 0.0, "eps": 1e-3, "seed": 13},
])
### END HIDDEN TESTS

# %% nbgrader={"grade": false, "grade_id": "spatial_batchnorm_backward", "locked": false, "schema_version": 3, "solution": true, "task": false}
def spatial_batchnorm_backward(dout, cache):
    """Backward pass of spatial batch normalization.

    Inputs:
    - dout: upstream derivatives, shape (N, C, H, W)
    - cache: from spatial_batchnorm_forward in train mode

    Returns a tuple of:
    - dx: shape (N, C, H, W)
    - dgamma: shape (C,)
    - dbeta: shape (C,)
    """
    ### BEGIN SOLUTION
    N, C, H, W = dout.shape
    rows = dout.transpose(0, 2, 3, 1).reshape(-1, C)
    dx_rows, dgamma, dbeta = batchnorm_backward_alt(rows, cache)
    dx = dx_rows.reshape(N, H, W, C).transpose(0, 3, 1, 2)
    ### END SOLUTION
    return dx, dgamma, dbeta


# %% nbgrader={"grade": true, "grade_id": "test_spatial_batchnorm_backward", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
# spatial_batchnorm_backward: 3 points, 2 visible cases here, more when graded.
# The backward pass gets the cache of YOUR spatial_batchnorm_forward (train mode).
check("spatial_batchnorm_backward", cases=[
    {"x": (2, 3, 4, 5), "seed": 0},
    {"x": (4, 3, 2, 2), "seed": 2, "dtype": "float32"},
])
### BEGIN HIDDEN TESTS
check("spatial_batchnorm_backward", cases=[
    {"x": (1, 4, 5, 5), "seed": 11},
    {"x": (5, 2, 3, 7), "seed": 12, "dtype": "float32"},
    {"x": (2, 6, 4, 3), "eps": 1e-3, "seed": 13},
])
### END HIDDEN TESTS

# %% [markdown]
# ## 6. Optional: layer normalization and group normalization (4 points)
#
# Batch normalization has a weak spot: its statistics come from the batch. With small batches
# (large images, large models, limited memory) they are noisy, and training and test behaviour
# differ. Two relatives normalise **each sample on its own**, so they do the same thing in
# training and at test time and need no running averages:
#
# * **Layer normalization** (Ba, Kiros and Hinton, 2016), for $x$ of shape $(N, D)$: the mean and
#   variance are taken over the $D$ features *of one sample*, then each feature gets its own
#   $\gamma_j, \beta_j$ as before:
#   $\;\mu_i = \frac1D\sum_j x_{ij},\; \sigma_i^2 = \frac1D\sum_j (x_{ij}-\mu_i)^2,\;
#   y_{ij} = \gamma_j\frac{x_{ij}-\mu_i}{\sqrt{\sigma_i^2+\epsilon}}+\beta_j.$
#   It is batch normalization of the transposed matrix, and its backward pass is your closed
#   form with the sums taken over the features (`axis=1`) instead of the batch.
# * **Group normalization** (Wu and He, 2018), for feature maps $(N, C, H, W)$: the $C$ channels
#   of a sample are split into $G$ groups of $C/G$ consecutive channels, and each group is
#   normalised over its $(C/G)\cdot H\cdot W$ values; then a per-channel $\gamma_c, \beta_c$ (here
#   of shape $(1, C, 1, 1)$). With $G = 1$ it is layer normalization of the whole feature map;
#   with $G = C$ each channel of each sample is normalised alone (instance normalization).
#   Hint: `x.reshape(N, G, -1)` puts each group in one row.
#
# The parameter dicts `ln_param` and `gn_param` may hold `eps` (default `1e-5`). These four
# functions are optional, one point each.

# %% nbgrader={"grade": false, "grade_id": "layernorm_forward", "locked": false, "schema_version": 3, "solution": true, "task": false}
def layernorm_forward(x, gamma, beta, ln_param):
    """Forward pass of layer normalization (optional).

    Inputs:
    - x: data of shape (N, D)
    - gamma, beta: shape (D,)
    - ln_param: dict with optional 'eps'

    Returns a tuple of:
    - out: shape (N, D), dtype of x
    - cache: what layernorm_backward needs
    """
    ### BEGIN SOLUTION
    eps = ln_param.get("eps", 1e-5)
    mean = x.mean(axis=1, keepdims=True)
    x_centered = x - mean
    inv_std = 1.0 / np.sqrt((x_centered ** 2).mean(axis=1, keepdims=True) + eps)
    x_hat = x_centered * inv_std
    out = gamma * x_hat + beta
    cache = (x_hat, inv_std, gamma)
    ### END SOLUTION
    return out, cache


# %% nbgrader={"grade": true, "grade_id": "test_layernorm_forward", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
# OPTIONAL. layernorm_forward: 1 point, 3 visible cases here, more when graded.
check("layernorm_forward", cases=[
    {"x": (4, 6), "seed": 0},
    {"x": (3, 5), "eps": 1e-3, "seed": 1, "dtype": "float32"},
    {"x": (5, 4), "eps": 1e-2, "seed": 2},
])
### BEGIN HIDDEN TESTS
check("layernorm_forward", cases=[
    {"x": (1, 9), "seed": 11},
    {"x": (7, 2), "seed": 12, "dtype": "float32"},
    {"x": (6, 5), "eps": 1e-3, "seed": 13},
])
### END HIDDEN TESTS

# %% nbgrader={"grade": false, "grade_id": "layernorm_backward", "locked": false, "schema_version": 3, "solution": true, "task": false}
def layernorm_backward(dout, cache):
    """Backward pass of layer normalization (optional).

    Returns a tuple (dx of shape (N, D), dgamma of shape (D,), dbeta of shape (D,)).
    """
    ### BEGIN SOLUTION
    x_hat, inv_std, gamma = cache
    D = dout.shape[1]
    dbeta = dout.sum(axis=0)
    dgamma = (dout * x_hat).sum(axis=0)
    g = dout * gamma
    dx = inv_std / D * (D * g - g.sum(axis=1, keepdims=True) - x_hat * (g * x_hat).sum(axis=1, keepdims=True))
    ### END SOLUTION
    return dx, dgamma, dbeta


# %% nbgrader={"grade": true, "grade_id": "test_layernorm_backward", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
# OPTIONAL. layernorm_backward: 1 point, 2 visible cases here, more when graded.
check("layernorm_backward", cases=[
    {"x": (4, 6), "seed": 0},
    {"x": (3, 5), "eps": 1e-3, "seed": 1, "dtype": "float32"},
])
### BEGIN HIDDEN TESTS
check("layernorm_backward", cases=[
    {"x": (1, 9), "seed": 11},
    {"x": (7, 4), "seed": 12, "dtype": "float32"},  # not D = 2: there x_hat = +-1 and dx is ~0, all cancellation
])
### END HIDDEN TESTS

# %% nbgrader={"grade": false, "grade_id": "spatial_groupnorm_forward", "locked": false, "schema_version": 3, "solution": true, "task": false}
def spatial_groupnorm_forward(x, gamma, beta, G, gn_param):
    """Forward pass of group normalization (optional).

    Inputs:
    - x: data of shape (N, C, H, W)
    - gamma, beta: shape (1, C, 1, 1)
    - G: number of groups, divides C
    - gn_param: dict with optional 'eps'

    Returns a tuple of:
    - out: shape (N, C, H, W), dtype of x
    - cache: what spatial_groupnorm_backward needs
    """
    ### BEGIN SOLUTION
    eps = gn_param.get("eps", 1e-5)
    N, C, H, W = x.shape
    groups = x.reshape(N, G, -1)
    x_centered = groups - groups.mean(axis=2, keepdims=True)
    inv_std = 1.0 / np.sqrt((x_centered ** 2).mean(axis=2, keepdims=True) + eps)
    x_hat = (x_centered * inv_std).reshape(N, C, H, W)
    out = gamma * x_hat + beta
    cache = (x_hat, inv_std, gamma, G)
    ### END SOLUTION
    return out, cache


# %% nbgrader={"grade": true, "grade_id": "test_spatial_groupnorm_forward", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
# OPTIONAL. spatial_groupnorm_forward: 1 point, 2 visible cases here, more when graded.
check("spatial_groupnorm_forward", cases=[
    {"x": (2, 6, 3, 3), "G": 3, "seed": 0},
    {"x": (3, 4, 2, 5), "G": 2, "seed": 1, "dtype": "float32"},
])
### BEGIN HIDDEN TESTS
check("spatial_groupnorm_forward", cases=[
    {"x": (2, 4, 3, 3), "G": 1, "seed": 11},
    {"x": (1, 6, 4, 2), "G": 6, "eps": 1e-3, "seed": 12},
])
### END HIDDEN TESTS

# %% nbgrader={"grade": false, "grade_id": "spatial_groupnorm_backward", "locked": false, "schema_version": 3, "solution": true, "task": false}
def spatial_groupnorm_backward(dout, cache):
    """Backward pass of group normalization (optional).

    Returns a tuple (dx of shape (N, C, H, W), dgamma and dbeta of shape (1, C, 1, 1)).
    """
    ### BEGIN SOLUTION
    x_hat, inv_std, gamma, G = cache
    N = dout.shape[0]
    dbeta = dout.sum(axis=(0, 2, 3), keepdims=True)
    dgamma = (dout * x_hat).sum(axis=(0, 2, 3), keepdims=True)
    g = (dout * gamma).reshape(N, G, -1)
    x_hat_groups = x_hat.reshape(N, G, -1)
    M = g.shape[2]
    dx = inv_std / M * (M * g - g.sum(axis=2, keepdims=True)
                        - x_hat_groups * (g * x_hat_groups).sum(axis=2, keepdims=True))
    dx = dx.reshape(dout.shape)
    ### END SOLUTION
    return dx, dgamma, dbeta


# %% nbgrader={"grade": true, "grade_id": "test_spatial_groupnorm_backward", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
# OPTIONAL. spatial_groupnorm_backward: 1 point, 2 visible cases here, more when graded.
check("spatial_groupnorm_backward", cases=[
    {"x": (2, 6, 3, 3), "G": 3, "seed": 0},
    {"x": (3, 4, 2, 5), "G": 2, "seed": 1, "dtype": "float32"},
])
### BEGIN HIDDEN TESTS
check("spatial_groupnorm_backward", cases=[
    {"x": (2, 4, 3, 3), "G": 1, "seed": 11},
    {"x": (1, 6, 4, 2), "G": 6, "eps": 1e-3, "seed": 12},
])
### END HIDDEN TESTS

# %% [markdown]
# ## 7. Experiments: what batch normalization does to training
#
# Time to use your layers. The network below is a plain fully connected classifier,
#
# $$\big[\text{affine} \to \text{(batchnorm or layernorm)} \to \text{ReLU}\big]\times(L-1) \to \text{affine} \to \text{softmax},$$
#
# built from the library's affine, ReLU and softmax layers and **your** normalization layers,
# and trained with the library's `Solver` (Adam). The data come from
# `cs231n_lib.get_CIFAR10_data`; without the CIFAR-10 files on disk it falls back to the
# handwritten digits bundled with the kit, upscaled to $3\times32\times32$ (the printed `source`
# says which one you got; `make fetch-cifar10` downloads CIFAR-10). We use a small training set
# on purpose: the point is to compare how fast and how reliably the networks learn, not to reach
# a good test accuracy.
#
# These cells are not graded. With `CS231N_QUICK=1` they run a tiny configuration in seconds;
# otherwise they take a few minutes.

# %% cs231n={"grading": "skip"}
if QUICK:
    NUM_TRAIN, NUM_VAL, NUM_EPOCHS, HIDDEN = 200, 100, 2, [50, 50, 50]
else:
    NUM_TRAIN, NUM_VAL, NUM_EPOCHS, HIDDEN = 1000, 300, 5, [100, 100, 100, 100, 100]

data = get_CIFAR10_data(num_training=NUM_TRAIN, num_validation=NUM_VAL, num_test=100, dtype=np.float64)
print("data source:", data["source"])
for split in ("X_train", "X_val"):
    print(f"{split}: {data[split].shape}")


# %% cs231n={"grading": "skip"}
class FullyConnectedNet:
    """[affine - (batchnorm | layernorm) - relu] x (L - 1) - affine - softmax.

    The normalization layers are the ones you wrote in this notebook; the rest comes from
    cs231n_lib. The model follows the Solver's interface: ``params`` and ``loss(X, y=None)``.
    """

    def __init__(self, hidden_dims, input_dim=3 * 32 * 32, num_classes=10, normalization=None,
                 weight_scale=1e-2, seed=0):
        if normalization not in (None, "batchnorm", "layernorm"):
            raise ValueError(f"normalization must be None, 'batchnorm' or 'layernorm'; found {normalization!r}")
        rng = np.random.default_rng(seed)
        dims = [input_dim] + list(hidden_dims) + [num_classes]
        self.normalization = normalization
        self.num_layers = len(dims) - 1
        self.params = {}
        for layer in range(1, self.num_layers + 1):
            fan_in, fan_out = dims[layer - 1], dims[layer]
            self.params[f"W{layer}"] = weight_scale * rng.standard_normal((fan_in, fan_out))
            self.params[f"b{layer}"] = np.zeros(fan_out)
            if normalization and layer < self.num_layers:
                self.params[f"gamma{layer}"] = np.ones(fan_out)
                self.params[f"beta{layer}"] = np.zeros(fan_out)
        # one bn_param per batchnorm layer, by layer number (as in cs231n_lib's models): it
        # carries the running averages between calls, and the Solver saves and restores it
        self.bn_params = {}
        if normalization == "batchnorm":
            self.bn_params = {layer: {"mode": "train"} for layer in range(1, self.num_layers)}

    def loss(self, X, y=None):
        mode = "test" if y is None else "train"
        p, caches, h = self.params, [], X
        for layer in range(1, self.num_layers):
            h, affine_cache = affine_forward(h, p[f"W{layer}"], p[f"b{layer}"])
            norm_cache = None
            if self.normalization == "batchnorm":
                bn_param = self.bn_params[layer]
                bn_param["mode"] = mode
                h, norm_cache = batchnorm_forward(h, p[f"gamma{layer}"], p[f"beta{layer}"], bn_param)
            elif self.normalization == "layernorm":
                h, norm_cache = layernorm_forward(h, p[f"gamma{layer}"], p[f"beta{layer}"], {})
            h, relu_cache = relu_forward(h)
            caches.append((affine_cache, norm_cache, relu_cache))
        L = self.num_layers
        scores, last_cache = affine_forward(h, p[f"W{L}"], p[f"b{L}"])
        if y is None:
            return scores

        loss, dscores = softmax_loss(scores, y)
        grads = {}
        dh, grads[f"W{L}"], grads[f"b{L}"] = affine_backward(dscores, last_cache)
        for layer in range(L - 1, 0, -1):
            affine_cache, norm_cache, relu_cache = caches[layer - 1]
            dh = relu_backward(dh, relu_cache)
            if self.normalization == "batchnorm":
                dh, grads[f"gamma{layer}"], grads[f"beta{layer}"] = batchnorm_backward_alt(dh, norm_cache)
            elif self.normalization == "layernorm":
                dh, grads[f"gamma{layer}"], grads[f"beta{layer}"] = layernorm_backward(dh, norm_cache)
            dh, grads[f"W{layer}"], grads[f"b{layer}"] = affine_backward(dh, affine_cache)
        return loss, grads


def train(model, update_rule="adam", learning_rate=1e-3, batch_size=50):
    """Train for NUM_EPOCHS epochs; returns the Solver, or None when a layer is not implemented yet.

    A run whose loss overflows stops there; its Solver gets ``diverged = True``.
    """
    solver = Solver(model, data, update_rule=update_rule, optim_config={"learning_rate": learning_rate},
                    batch_size=batch_size, num_epochs=NUM_EPOCHS, verbose=False, seed=0)
    solver.diverged = False
    try:
        with np.errstate(over="ignore", invalid="ignore"):  # a diverging run overflows on purpose
            solver.train()
    except NotImplementedError:
        return None
    except FloatingPointError:
        solver.diverged = True
    return solver


# %% [markdown]
# ### Experiment 1: a deep network with and without batch normalization
#
# Both networks below start from the same weights (scale $2\cdot10^{-2}$) and see the same
# minibatches. They are trained with plain SGD with momentum, at two learning rates: Adam would
# rescale every parameter's gradient and hide part of the effect. Watch the training loss, and
# the accuracies measured after every epoch on training data and on the validation set (the
# batchnorm network is evaluated in test mode, with its running averages). Expect the batchnorm
# network to learn much faster, and to put up with the larger learning rate, at which the
# baseline typically diverges (its curves then stop early).

# %% cs231n={"grading": "skip"}
runs = {}
for learning_rate in [1e-2, 3e-2]:
    for label, normalization in [("baseline", None), ("batchnorm", "batchnorm")]:
        name = f"{label}, lr {learning_rate:g}"
        model = FullyConnectedNet(HIDDEN, normalization=normalization, weight_scale=2e-2)
        solver = train(model, update_rule="sgd_momentum", learning_rate=learning_rate)
        if solver is None:
            print(f"{name}: implement batchnorm_forward and batchnorm_backward_alt first")
            continue
        runs[name] = solver
        status = "diverged" if solver.diverged else f"final training loss {solver.loss_history[-1]:.3f}"
        print(f"{name:>22}: {status}, best validation accuracy {solver.best_val_acc:.3f}")

fig, axes = plt.subplots(1, 3, figsize=(15, 4))
for name, solver in runs.items():
    style = "--" if name.startswith("baseline") else "-"
    axes[0].plot(solver.loss_history, style, alpha=0.7, label=name)
    axes[1].plot(solver.train_acc_history, style, marker="o", label=name)
    axes[2].plot(solver.val_acc_history, style, marker="o", label=name)
axes[0].set_ylim(0, 3)
for ax, title, xlabel in zip(axes, ["training loss", "training accuracy", "validation accuracy"],
                             ["iteration", "epoch", "epoch"]):
    ax.set_title(title); ax.set_xlabel(xlabel); ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ### Experiment 2: sensitivity to the scale of the initial weights
#
# Without normalization, the scale of the initial weights decides whether the signal survives
# a deep stack: too small and activations (and gradients) shrink layer after layer until
# nothing learns; too large and they explode. Batch normalization rescales every layer's
# output, so the network should train over a much wider range of initial scales. The cell trains
# both networks (with Adam this time) for a range of `weight_scale` values and plots the best
# validation accuracy and the final training loss (on a log scale: a diverging baseline reaches
# huge values).

# %% cs231n={"grading": "skip"}
weight_scales = np.logspace(-4, 0, 3 if QUICK else 7)
results = {"baseline": [], "batchnorm": []}
for scale in weight_scales:
    for label, normalization in [("baseline", None), ("batchnorm", "batchnorm")]:
        solver = train(FullyConnectedNet(HIDDEN, normalization=normalization, weight_scale=scale))
        if solver is None:
            results[label].append((np.nan, np.nan))
            continue
        loss = solver.loss_history[-1] if solver.loss_history else np.nan
        results[label].append((solver.best_val_acc, loss))
    print(f"weight scale {scale:.1e}: best validation accuracy baseline {results['baseline'][-1][0]:.3f}, "
          f"batchnorm {results['batchnorm'][-1][0]:.3f}")
if np.isnan([acc for acc, _ in results["batchnorm"]]).all():
    print("implement batchnorm_forward and batchnorm_backward_alt first to see the batchnorm curve")

fig, axes = plt.subplots(1, 2, figsize=(12, 4))
for label, marker in [("baseline", "o-"), ("batchnorm", "s-")]:
    accs, losses = np.array(results[label]).T
    axes[0].semilogx(weight_scales, accs, marker, label=label)
    axes[1].loglog(weight_scales, losses, marker, label=label)
axes[0].set_title("best validation accuracy"); axes[1].set_title("final training loss")
for ax in axes:
    ax.set_xlabel("weight scale at initialisation"); ax.legend()
plt.show()

# %% [markdown]
# ### Experiment 3: sensitivity to the batch size
#
# Batch normalization estimates its statistics from the batch, so small batches give noisy
# estimates: the same image is normalised differently depending on its batch-mates, and the
# running averages used at test time fit the training-time behaviour less well. The cell trains
# batchnorm networks with several batch sizes (the same number of epochs) next to the baseline.
# If you did the optional layer normalization, a layernorm network joins in: its statistics come
# from each sample alone, so the batch size does not matter to it.
#
# Read the curves with care: with the same number of epochs, a smaller batch takes more update
# steps, which helps it early on whatever the normalization. The fair comparisons are
# batchnorm against layernorm *at the same batch size*, and the gap between training and
# validation accuracy of each run. On an easy data set (such as the digits fallback) the effect
# is modest; on CIFAR-10 it is larger.

# %% cs231n={"grading": "skip"}
batch_sizes = [5, 50] if QUICK else [5, 10, 50]
curves = {}
for batch_size in batch_sizes:
    for label, normalization in [("baseline", None), ("batchnorm", "batchnorm"), ("layernorm", "layernorm")]:
        if label == "baseline" and batch_size != batch_sizes[-1]:
            continue
        model = FullyConnectedNet(HIDDEN, normalization=normalization, weight_scale=2e-2)
        solver = train(model, batch_size=batch_size)
        if solver is None:
            print(f"{label}, batch size {batch_size}: not implemented yet, skipped")
            continue
        curves[f"{label}, batch {batch_size}"] = solver

fig, axes = plt.subplots(1, 2, figsize=(14, 4))
for name, solver in curves.items():
    style = "--" if name.startswith("baseline") else (":" if name.startswith("layernorm") else "-")
    axes[0].plot(solver.train_acc_history, style, marker="o", label=name)
    axes[1].plot(solver.val_acc_history, style, marker="o", label=name)
axes[0].set_title("training accuracy"); axes[1].set_title("validation accuracy")
for ax in axes:
    ax.set_xlabel("epoch"); ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# **Written answer (2 points, graded by a person).** In experiment 3, why do the smallest batches hurt
# the batchnorm network's *validation* accuracy more than its training accuracy? Relate your answer to
# the difference between the statistics used in training and at test time, and name a normalization
# from section 6 that avoids the problem.

# %% [markdown] nbgrader={"grade": true, "grade_id": "q_bn_small_batches", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
# ### BEGIN SOLUTION
# Rubric (2 points):
# - 1 point: with tiny batches the batch mean and variance are very noisy estimates; in training each
#   example is normalised by its own batch (noise the network partly fits, and that also normalises
#   the batch by itself, so the training accuracy still looks fine), while at test time the running
#   averages are used, which differ from what each training batch saw: train and test layers compute
#   different functions, so validation accuracy drops (and the running variance of tiny batches is
#   biased low).
# - 1 point: layer normalization or group normalization: their statistics are per example, computed
#   the same way in training and at test time, and independent of the batch size.
# ### END SOLUTION

# %% [markdown]
# **Questions to think about** (not graded):
#
# 1. In experiment 2, at which scales does the baseline fail to learn, and why does batch
#    normalization rescue it? Does batch normalization make the network insensitive to the
#    scale of the weights *feeding into* a batchnorm layer? (Hint: what happens to
#    $\hat x$ if you multiply $x$ by a constant?)
# 2. At test time a batchnorm layer is an affine function of its input. How could you fold it
#    into the preceding affine or convolutional layer to make inference free of it?
#
# ## Summary
#
# * Batch normalization standardises every feature with the statistics of the minibatch, then
#   rescales with learned $\gamma$ and $\beta$; at test time it uses running averages,
#   $\text{running} \leftarrow m\cdot\text{running} + (1-m)\cdot\text{batch statistic}$.
# * Its gradient can be obtained by walking the computation graph (sums for broadcasts, added
#   gradients for values used twice) or in closed form,
#   $dx = \frac{r}{N}\big(Ng - \sum g - \hat x\sum g\hat x\big)$ with $g = \gamma\,dy$.
# * For convolutions the statistics are per channel, over the batch and all positions.
# * Layer and group normalization normalise each sample on its own and do not depend on the
#   batch size.
#
# Before you submit, run the whole notebook from the top (Kernel → Restart & Run All) and check
# that every check cell says that its visible cases passed.
