"""cs231n-grade: release, sandboxed autograding, feedback and reports on top of nbgrader."""

__version__ = "0.1.0"
