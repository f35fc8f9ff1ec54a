"""The limits of one grading task: resources and timeouts (``Limits``), and how they become rlimits.

The grader's side fills the kernel's launch settings from a ``Limits`` (``launch_settings``); the
kernel's wrapper (``sandbox_launcher``) turns those settings into resource limits
(``rlimit_values``). Both directions live here so that a limit is named and converted once.
"""

from dataclasses import dataclass


@dataclass
class Limits:
    """Resource limits and timeouts of one grading task (all optional; defaults in brackets).

    - case_timeout_floor [10 s], timeout_multiple [20]: a case's time limit is
      ``max(floor, multiple * reference seconds)`` when a calibration is given;
    - case_timeout [60 s]: a case's time limit without calibration;
    - cell_timeout_floor [30 s], cell_timeout [300 s]: the same for non-test cells;
    - grace_seconds [3 s]: after an interrupt, how long before the kernel is killed;
    - memory_mb [4096]: address-space cap of the kernel (measured: 1.1-1.2 GB of address space
      and 150-230 MB resident for the course notebooks, a cold Numba compile included);
    - nproc [128]: processes and threads of the kernel (the slot user as root; the kernel's user
      namespace otherwise; not capped without isolation);
    - fsize_mb [256]: largest file the kernel may write;
    - output_cap_bytes [1 MB]: kernel output kept per cell, the rest is dropped with a note;
    - flood_bytes [64 MB]: output received in one cell beyond which the kernel is killed;
    - threads [1]: OpenBLAS/OpenMP/Numba threads in the kernel (several kernels share the cores);
    - start_timeout [60 s], start_attempts [3]: kernel start (port races are retried);
    - disk_mb [1024]: when root, the sandbox folder is a tmpfs of this size (a kernel cannot fill
      the grader's disk; only what is written uses memory);
    - cpu_seconds [3600]: CPU time of one kernel process (RLIMIT_CPU), a catch-all for busy
      background threads;
    - isolate_network [True]: the kernel gets its own empty network namespace and
      the grader talks to it over Unix sockets (ipc transport) instead of TCP.
    """

    case_timeout_floor: float = 10.0
    timeout_multiple: float = 20.0
    case_timeout: float = 60.0
    cell_timeout_floor: float = 30.0
    cell_timeout: float = 300.0
    grace_seconds: float = 3.0
    memory_mb: int = 4096
    nproc: int = 128
    fsize_mb: int = 256
    output_cap_bytes: int = 1 << 20
    flood_bytes: int = 64 << 20
    threads: int = 1
    start_timeout: float = 60.0
    start_attempts: int = 3
    isolate_network: bool = True
    disk_mb: int = 1024
    cpu_seconds: int = 3600

    @classmethod
    def coerce(cls, value):
        """A ``Limits`` from a ``Limits``, a dict of its fields (unknown keys refused) or None."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, dict):
            unknown = set(value) - set(cls.__dataclass_fields__)
            if unknown:
                raise ValueError(f"unknown Limits fields {sorted(unknown)}; known: {sorted(cls.__dataclass_fields__)}")
            return cls(**value)
        raise ValueError(f"limits must be a Limits or a dict; found {type(value).__name__}")


def launch_settings(limits):
    """The resource limits of ``limits`` as the kernel's launch settings carry them (bytes, counts, seconds)."""
    return {"memory_bytes": int(limits.memory_mb) << 20, "fsize_bytes": int(limits.fsize_mb) << 20,
            "nproc": int(limits.nproc), "cpu_seconds": int(limits.cpu_seconds)}


def rlimit_values(settings, nproc):
    """``{resource.RLIMIT_* name: value}`` for the launch ``settings``. The process cap
    (RLIMIT_NPROC) only with ``nproc``: it binds only a user (or user namespace) of the kernel's
    own, and would otherwise count the grader's processes too."""
    values = {"RLIMIT_AS": settings["memory_bytes"], "RLIMIT_FSIZE": settings["fsize_bytes"], "RLIMIT_CORE": 0,
              "RLIMIT_CPU": settings["cpu_seconds"]}
    if nproc:
        values["RLIMIT_NPROC"] = settings["nproc"]
    return values
