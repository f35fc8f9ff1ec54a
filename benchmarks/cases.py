"""The benchmark cases (shapes from research/perf-baseline.md) and FLOP counts."""

import numpy as np

# name: (x shape, w shape, stride, pad)
CONV_CASES = {
    "a": ((100, 3, 31, 31), (25, 3, 3, 3), 2, 1),  # CS231n's speed test
    "b": ((50, 3, 32, 32), (32, 3, 7, 7), 1, 3),  # three-layer net, conv1
    "c": ((16, 64, 56, 56), (64, 64, 3, 3), 1, 1),  # VGG-ish
}
POOL_CASES = {"d1": (100, 3, 32, 32), "d2": (16, 64, 56, 56)}  # max pool 2x2 stride 2
BATCHNORM_CASES = {"e": (16, 64, 56, 56)}  # spatial batchnorm, training mode
DTYPES = {"f64": np.float64, "f32": np.float32}
# one training step (forward, loss, backward) of ThreeLayerConvNet on a CIFAR-sized batch
STEP_BATCH = (50, 3, 32, 32)


def conv_flops(case):
    """Forward FLOPs 2*N*F*C*HH*WW*Hout*Wout (backward dx + dw = twice that)."""
    (N, C, H, W), (F, _, HH, WW), stride, pad = CONV_CASES[case]
    Hout = (H + 2 * pad - HH) // stride + 1
    Wout = (W + 2 * pad - WW) // stride + 1
    return 2 * N * F * C * HH * WW * Hout * Wout
