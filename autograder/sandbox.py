"""The student's kernel behind every protection the host allows: the names callers use.

The sandbox is split at the process boundary, so that each part can be read on its own:

- ``autograder.limits``: ``Limits`` (resources and timeouts of a grading task) and how they
  become the kernel's rlimits;
- ``autograder.sandbox_host``: what this host gives (``sandbox_protections``, ``MODES``,
  ``userns_refusal``, ``no_isolation_message``) and the grading users (one per concurrent kernel
  as root);
- ``autograder.sandbox_launcher``: the kernel's wrapper, the only code that runs as root or
  inside the new namespaces, in the kernel's own process before ipykernel (a security review
  reads it alone);
- ``autograder.sandbox_kernel``: ``Sandbox``, the grader's side: the sandbox folder, starting
  and talking to the kernel, exchanging arrays, reading what the kernel wrote.

This module re-exports their public names.
"""

from .files import safe_relative_path
from .limits import Limits
from .sandbox_host import (MAX_SLOTS, MODES, NO_USERNS_ENV, SANDBOX_USER_PREFIX, no_isolation_message,
                           sandbox_protections, userns_refusal)
from .sandbox_kernel import KEPT_ENV, Execution, Sandbox
from .sandbox_launcher import SYSTEM_TOP_FOLDERS

__all__ = ["KEPT_ENV", "MAX_SLOTS", "MODES", "NO_USERNS_ENV", "SANDBOX_USER_PREFIX", "SYSTEM_TOP_FOLDERS", "Execution",
           "Limits", "Sandbox", "no_isolation_message", "safe_relative_path", "sandbox_protections", "userns_refusal"]
