"""Checks of the im2col notebook."""

import numpy as np  # noqa: F401

from .base import Check, register  # noqa: F401
