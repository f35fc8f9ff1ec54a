"""The trusted side of the graded checks, registered by name (see ``base`` for the protocol).

The student kit's ``cs231n_checks`` holds how each graded function is called; this package adds
the inputs, the references and the known mistakes, which never leave the instructor's side.
"""

from . import batchnorm, convnet, convolution, im2col, pooling  # noqa: F401  (register the checks)
from .base import CHECKS, Trusted, check, get_check, judge, register

__all__ = ["CHECKS", "Trusted", "check", "get_check", "judge", "register"]
