"""The graded checks of every notebook, registered by name (see ``base`` for the protocol)."""

from . import batchnorm, convnet, convolution, im2col, pooling  # noqa: F401  (register the checks)
from .base import CHECKS, Check, check, get_check, judge, register

__all__ = ["CHECKS", "Check", "check", "get_check", "judge", "register"]
