"""cs231n_checks: the visible checks of the course notebooks (part of the student kit).

``from cs231n_checks import check`` in a notebook's setup cell; each test cell calls
``check(name, cases)``. See ``base`` for how a check works and why it holds no answers.
"""

from . import batchnorm, convnet, convolution, im2col, pooling  # noqa: F401  (register the checks)
from .base import (CHECKS, MISSING, Check, case_key, check, get_check, inputs_changed_by, judge, register,
                   visible_check_passes)

__all__ = ["CHECKS", "MISSING", "Check", "case_key", "check", "get_check", "inputs_changed_by", "judge", "register",
           "visible_check_passes"]
