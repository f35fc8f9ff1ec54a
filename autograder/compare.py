"""The grader's name for the one array comparison, which lives in the student kit's
``cs231n_checks.compare`` (the visible checks and the grader compare with the same code)."""

from cs231n_checks.compare import *  # noqa: F401,F403
