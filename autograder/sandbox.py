"""The student's kernel: a real Jupyter kernel behind every protection the host allows.

One ``Sandbox`` holds one student's kernel for one assignment. Its folder (``root``) is fresh::

    root/            root-owned, 0711: the sandbox user cannot rename or add anything here;
                     when root, a tmpfs of ``Limits.disk_mb`` at <tmp>/cs231n-sbx/<user>
      launch.json    launch settings (read by the wrapper as root, 0600)
      protections.json  what the wrapper actually applied (written as root before dropping)
      kernels/       the kernelspec whose argv is the wrapper (``python -m autograder.sandbox``)
      work/          the kernel's working folder: only this student's files (sandbox user, 0700)
      home/          HOME, IPython and Matplotlib settings, the private Numba cache (sandbox user, 0700)
      in/            case inputs written by the trusted side (root-owned, read-only to the kernel)
      out/           case outputs written by the kernel (sandbox user, 0700); read back with care

The wrapper (``_launch``, run by jupyter_client as the kernel's argv) starts as the grader's
user. When that is root it: enters a private mount namespace, mounts empty read-only tmpfs over
every hidden path (solutions/, the submissions and output folders) and a private /tmp,
/var/tmp and /dev/shm holding only ``root``; replaces every top-level folder outside the
operating system (/home, /root, /srv, /opt, /work, ...) by an empty tmpfs that shows only the
folders the kernel needs (the Python installation, this package, the visible course folders),
so that copies of the solutions elsewhere on the machine are out of reach too; sets the resource limits (address space, process
count, file size, no core files); copies the connection file where the sandbox user can read
it; drops to a dedicated unprivileged user (``cs231n-sbx-<slot>``, one per concurrent kernel so
that process caps and clean-up never touch another student) with no supplementary groups and
``no_new_privs``; then ``exec``s ipykernel with a scrubbed environment.

Without root (an instructor's laptop, a JupyterHub server, CI), the wrapper gives the kernel the
same file system view through unprivileged user namespaces (``_launch_in_user_namespace``): it
calls unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET) itself through ctypes and
maps the grader's uid and gid to themselves. Done directly rather than through bubblewrap or
util-linux's ``unshare``: no dependency to install (this and many hosts have no bubblewrap), the
same code (``_hide_paths``, ``_hide_outside_system``, ``_interpreter_dirs``) builds the view for
both paths, and the wrapper keeps control of the order of the steps. The first process of the
new PID namespace mounts a fresh /proc (only the kernel's processes: the grader, the same user,
is out of reach), hides what root hides, binds the kernel's own folders (work/, home/, out/) and
remounts everything else read-only (the kernel runs as the grader's user and would otherwise
rewrite what that user owns: the course, the virtual environment), forbids nested user namespaces,
sets the limits, then forks the kernel, which ``exec``s with uid != 0 inside and so keeps no
capability. The process cap is RLIMIT_NPROC, which since Linux 5.14 counts per user *and user
namespace*: it binds the kernel's processes only, and the grader's user keeps starting processes
during a fork bomb. When the kernel ends, or the wrapper is killed (PR_SET_PDEATHSIG), the PID
namespace ends and Linux kills every process in it. Not capped there: the size of the sandbox
folder (root mounts a tmpfs; a normal user's tmpfs would be invisible to the grader), only single
files (RLIMIT_FSIZE) and the private /tmp. Where user namespaces are refused (a sysctl, AppArmor,
a container, macOS) kernels get only the resource limits (mode "none", ``--weak-sandbox``).
``sandbox_protections()["mode"]`` says which: "root", "user_namespace" or "none".
Without a mount namespace (a container that refuses ``unshare``) the hidden paths are closed to
the sandbox users by taking away their "others" permissions.

Network: in both paths the wrapper also gives the kernel its own network namespace (no
interfaces at all), and the grader talks to it over Unix sockets (jupyter_client's ipc transport,
in the sandbox's home folder). Measured here: 40 of 40 starts, about 1 s each, like TCP; the
user-namespace path starts within 3% of the root path (``benchmarks/sandbox_start.py``). Without
isolation (or with ``Limits.isolate_network=False``, or when ipc starts fail) the kernel uses TCP
on localhost and its network is not isolated; ``applied["network_namespace"]`` says which.
"""

import contextlib
import ctypes
import errno
import fcntl
import grp
import json
import os
import pwd
import queue
import resource
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .files import file_lock, safe_relative_path, write_atomic

SANDBOX_USER_PREFIX = "cs231n-sbx-"
MAX_SLOTS = 32
# Environment variables passed to the kernel (values from the grader's environment when set).
KEPT_ENV = ("PATH", "LANG", "LC_ALL", "TZ")


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


# ------------------------------------------------------------------------------------------
# What the host allows


def _is_root():
    return os.geteuid() == 0


def _state_dir():
    """Root-owned folder for slot locks (never inside a folder the sandbox can see)."""
    path = Path(tempfile.gettempdir()) / f"cs231n-grade-state-{os.getuid()}"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def _ensure_user(name):
    """The uid and gid of system user ``name``, created (no home, no shell) when missing."""
    try:
        entry = pwd.getpwnam(name)
        return entry.pw_uid, entry.pw_gid
    except KeyError:
        pass
    with file_lock(_state_dir() / "useradd.lock"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            try:
                grp.getgrnam(name)
                group = ["--gid", name]  # left by an earlier, interrupted creation
            except KeyError:
                group = ["--user-group"]
            subprocess.run(["useradd", "--system", "--no-create-home", *group,
                            "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", name],
                           check=True, capture_output=True, timeout=30)
            entry = pwd.getpwnam(name)
    return entry.pw_uid, entry.pw_gid


_PROBE = None

# Set (to anything but "" or "0") to make the user-namespace probe fail, as on a host that refuses
# unprivileged user namespaces: for tests, and for an instructor who wants to see what happens there.
NO_USERNS_ENV = "CS231N_GRADE_NO_USERNS"

# How a kernel is isolated, strongest first (``sandbox_protections()["mode"]``):
#   "root": a slot user per kernel, mount and network namespaces (the grader runs as root);
#   "user_namespace": the grader's own user inside user, mount, network and PID namespaces;
#   "none": nothing but resource limits (only with ``--weak-sandbox``).
MODES = ("root", "user_namespace", "none")


def _userns_refused_by_env():
    return os.environ.get(NO_USERNS_ENV, "") not in ("", "0")


def sandbox_protections():
    """Which protections kernels started by this process get, as a dict for people and reports.

    Keys: ``mode`` (see ``MODES``), ``unprivileged_user`` (a user other than the grader's),
    ``user`` (description), ``mount_namespace`` (hidden paths and /tmp replaced by empty tmpfs),
    ``rlimits`` (list of the limits set), ``process_cap`` (a process count that a fork bomb
    cannot get past), ``process_cleanup``, ``network`` (description), ``environment``
    (description), ``notes`` (what is missing and why; printed by the summary).
    """
    global _PROBE
    if _PROBE is not None:
        return dict(_PROBE)
    if not _is_root():
        _PROBE = _unprivileged_protections()
        return dict(_PROBE)
    notes = []
    user_ok = ns_ok = False
    try:
        _ensure_user(SANDBOX_USER_PREFIX + "0")
        user_ok = True
    except (OSError, subprocess.SubprocessError) as exc:
        notes.append(f"cannot create the sandbox user ({exc}): kernels run as root")
    probe = subprocess.run(
        [sys.executable, "-c", "import autograder.sandbox as s; s._probe_namespace()"],
        capture_output=True, text=True, timeout=30)
    ns_ok = probe.returncode == 0
    if user_ok and not ns_ok and _unreachable_interpreter_dirs():
        user_ok = False
        notes.append("the Python installation is not readable by other users and no mount "
                     "namespace is available to expose it: kernels run as root")
    if not ns_ok:
        notes.append("no private mount namespace (unshare/mount refused): hidden folders are closed to "
                     "other users (o-rwx) and the rest of the machine is protected by its file "
                     "permissions only: " + probe.stderr.strip()[-200:])
    _PROBE = {
        "mode": "root",
        "unprivileged_user": user_ok,
        "user": (f"{SANDBOX_USER_PREFIX}<slot> (one unprivileged system user per concurrent kernel)"
                 if user_ok else pwd.getpwuid(os.getuid()).pw_name + " (the grader's own user)"),
        "mount_namespace": ns_ok,
        "rlimits": ["address space", "file size", "CPU time", "core files off"] + (["processes"] if user_ok else []),
        "disk": ("the sandbox folder is a size-capped tmpfs; /tmp, /var/tmp and /dev/shm are private 64 MB tmpfs"
                 if user_ok and ns_ok else "not capped (only single files, by RLIMIT_FSIZE)"),
        "process_cap": user_ok,
        "process_cleanup": ("every process of the slot user is killed after the kernel"
                            if user_ok else "the kernel's process group is killed"),
        "network": ("isolated: own network namespace, no interfaces; the grader talks to the kernel over "
                    "Unix sockets" if ns_ok else "not isolated (the kernel talks to the grader over TCP on localhost)"),
        "environment": "scrubbed: PATH, locale, HOME in the sandbox, thread and Numba settings only",
        "notes": notes,
    }
    return dict(_PROBE)


def _unprivileged_protections():
    """``sandbox_protections()`` for a grader that is not root: user namespaces, or nothing."""
    me = pwd.getpwuid(os.getuid()).pw_name
    refusal = userns_refusal()
    common = {"unprivileged_user": False,
              "environment": "scrubbed: PATH, locale, HOME in the sandbox, thread and Numba settings only"}
    if refusal is None:
        return dict(common, **{
            "mode": "user_namespace",
            "user": f"{me} (the grader's own user, without capabilities, inside a user namespace)",
            "mount_namespace": True,
            "rlimits": ["address space", "file size", "CPU time", "core files off", "processes"],
            "disk": "/tmp, /var/tmp and /dev/shm are private 64 MB tmpfs; the sandbox folder is not capped "
                    "(only single files, by RLIMIT_FSIZE)",
            "process_cap": True,
            "process_cleanup": "the kernel's PID namespace: every process dies with the kernel",
            "network": "isolated: own network namespace, no interfaces; the grader talks to the kernel over "
                       "Unix sockets",
            "notes": ["user namespaces (not root): the sandbox folder's size is not capped, only single files "
                      "(RLIMIT_FSIZE) and the private /tmp"],
        })
    return dict(common, **{
        "mode": "none",
        "user": f"{me} (the grader's own user)",
        "mount_namespace": False,
        "rlimits": ["address space", "file size", "CPU time", "core files off"],
        "disk": "not capped (only single files, by RLIMIT_FSIZE)",
        "process_cap": False,
        "process_cleanup": "the kernel's process group is killed",
        "network": "not isolated (the kernel talks to the grader over TCP on localhost)",
        "notes": [f"NO ISOLATION: not root and {refusal}: students' code ran as {me} and could read "
                  "whatever it can read (the solutions included) and write the output folder (the gradebook, "
                  "the result cache, other students' results); a fork bomb shares its process count"],
    })


_USERNS_REFUSAL = ()


def userns_refusal():
    """None when this (non-root) process can give kernels user, mount, network and PID namespaces
    with a fresh /proc and read-only remounts; else why not, in a few words. Probed once."""
    global _USERNS_REFUSAL
    if _USERNS_REFUSAL != ():
        return _USERNS_REFUSAL
    if _userns_refused_by_env():
        _USERNS_REFUSAL = f"user namespaces are switched off by {NO_USERNS_ENV}"
    elif not sys.platform.startswith("linux"):
        _USERNS_REFUSAL = f"{sys.platform} has no Linux namespaces"
    else:
        try:
            probe = subprocess.run([sys.executable, "-c", "import autograder.sandbox as s; s._probe_user_namespace()"],
                                   capture_output=True, text=True, timeout=30)
            ok, why = probe.returncode == 0, (probe.stderr.strip().splitlines() or ["no reason given"])[-1][-200:]
        except (OSError, subprocess.SubprocessError) as exc:
            ok, why = False, str(exc)
        _USERNS_REFUSAL = None if ok else f"unprivileged user namespaces are refused ({why})"
    return _USERNS_REFUSAL


def no_isolation_message():
    """The one line ``autograde`` prints when it refuses to grade without isolation (None when it need not)."""
    p = sandbox_protections()
    if p["mode"] != "none":
        return None
    return (f"no sandbox for students' code on this host: not root and {userns_refusal()}. Run as root, or "
            "enable unprivileged user namespaces (sysctl user.max_user_namespaces=10000 and, on Debian-like "
            "kernels, kernel.unprivileged_userns_clone=1; on Ubuntu 24.04+ also "
            "kernel.apparmor_restrict_unprivileged_userns=0 or an AppArmor profile for this Python), or pass "
            "--weak-sandbox to grade anyway: students' code would then read the solutions and write the gradebook.")


# ------------------------------------------------------------------------------------------
# Linux calls used by the wrapper

_CLONE_NEWNS = 0x00020000
_CLONE_NEWUSER = 0x10000000
_CLONE_NEWPID = 0x20000000
_CLONE_NEWNET = 0x40000000
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC, _MS_REMOUNT = 1, 2, 4, 8, 32
_MS_NOATIME, _MS_NODIRATIME, _MS_BIND, _MS_REC = 1024, 2048, 4096, 16384
_MS_PRIVATE, _MS_RELATIME, _MS_STRICTATIME = 1 << 18, 1 << 21, 1 << 24
_PR_SET_PDEATHSIG, _PR_SET_NO_NEW_PRIVS = 1, 38


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _check(rc, what):
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(libc, source, target, fstype, flags, data=None):
    _check(libc.mount(source and source.encode(), target.encode(), fstype and fstype.encode(),
                      ctypes.c_ulong(flags), data and data.encode()), f"mount {target}")


def _private_namespace(libc):
    _check(libc.unshare(_CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    _mount(libc, None, "/", None, _MS_REC | _MS_PRIVATE)


def _probe_namespace():
    libc = _libc()
    _private_namespace(libc)
    target = tempfile.mkdtemp(prefix="cs231n-probe-")
    try:
        _mount(libc, "tmpfs", target, "tmpfs", _MS_RDONLY | _MS_NOSUID | _MS_NODEV, "size=4k,mode=000")
    finally:
        with contextlib.suppress(OSError):
            libc.umount2(target.encode(), 2)
        os.rmdir(target)


def _enter_user_namespace(libc, flags):
    """unshare(CLONE_NEWUSER | flags) and map the caller's own uid and gid to themselves (the only
    mapping an unprivileged process may write). Inside, the caller holds every capability of the
    new namespace (enough to mount there, nowhere else); a process that then ``exec``s with that
    uid, which is not 0 inside, loses them all."""
    uid, gid = os.getuid(), os.getgid()
    _check(libc.unshare(_CLONE_NEWUSER | flags), "unshare(CLONE_NEWUSER)")
    for name, text in (("uid_map", f"{uid} {uid} 1"), ("setgroups", "deny"), ("gid_map", f"{gid} {gid} 1")):
        with open(f"/proc/self/{name}", "w") as fh:
            fh.write(text)


def _mount_fresh_proc(libc):
    """A /proc of the new PID namespace: only the kernel's own processes, so that no /proc/<pid>/root,
    environ or fd of the grader (the same user) is reachable. Run by the namespace's first process."""
    _mount(libc, "proc", "/proc", "proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC)


def _probe_user_namespace():
    """Exit 0 when the user-namespace sandbox can be built here (run in a throwaway process)."""
    libc = _libc()
    _enter_user_namespace(libc, _CLONE_NEWNS | _CLONE_NEWNET | _CLONE_NEWPID)
    pid = os.fork()
    if pid == 0:
        try:
            _mount(libc, None, "/", None, _MS_REC | _MS_PRIVATE)
            _mount_fresh_proc(libc)
            _mount(libc, "tmpfs", "/tmp", "tmpfs", _MS_NOSUID | _MS_NODEV, "size=4k")
            os.mkdir("/tmp/ro")
            _mount(libc, "/tmp/ro", "/tmp/ro", None, _MS_BIND)
            _remount_read_only(libc, "/tmp/ro")
            os._exit(0)
        except BaseException as exc:  # noqa: BLE001 - reported through the exit status
            print(f"{type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    sys.exit(os.waitstatus_to_exitcode(status))


_ST_FLAGS_KEPT = ((os.ST_NOSUID, _MS_NOSUID), (os.ST_NODEV, _MS_NODEV), (os.ST_NOEXEC, _MS_NOEXEC),
                  (os.ST_NOATIME, _MS_NOATIME), (os.ST_NODIRATIME, _MS_NODIRATIME),
                  (os.ST_RELATIME, _MS_RELATIME))


def _remount_read_only(libc, path):
    """Make the mount at ``path`` read-only. In a user namespace the flags the mount came with are
    locked, so they are read back and passed again (as bubblewrap does), else the kernel refuses."""
    flags = os.statvfs(path).f_flag
    kept = 0
    for st, ms in _ST_FLAGS_KEPT:
        if flags & st:
            kept |= ms
    if not kept & (_MS_NOATIME | _MS_RELATIME):
        kept |= _MS_STRICTATIME
    _mount(libc, None, path, None, _MS_REMOUNT | _MS_BIND | _MS_RDONLY | kept)


def _mount_points():
    """Mount points of this process's mount namespace, from /proc/self/mountinfo (octal escapes decoded)."""
    points = []
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            raw = line.split(" ")[4]
            points.append(raw.encode().decode("unicode_escape").encode("latin-1").decode("utf-8", "replace"))
    return points


def _read_only_except(libc, writable, writable_points=()):
    """Remount every mount read-only except /proc, the ``writable`` folders (and what lies below
    them) and the ``writable_points`` themselves (the private /tmp, whose bound-back folders do not stay writable).

    Without it, the kernel, which runs as the grader's own user, could rewrite every file that user
    owns and still sees: the virtual environment, this package, the course's assignments. Returns
    (how many mounts were made read-only, the ones that could not be, with why)."""
    keep = [w.rstrip("/") or "/" for w in writable] + ["/proc"]
    done, failed = 0, []
    for point in sorted(set(_mount_points())):
        if point in writable_points or any(point == k or point.startswith(k + "/") for k in keep):
            continue
        try:
            _remount_read_only(libc, point)
            done += 1
        except OSError as exc:
            # a mount under a hidden folder (its path now leads into the covering tmpfs, or nowhere)
            # is out of reach anyway
            if exc.errno not in (errno.ENOENT, errno.EACCES) and os.path.ismount(point):
                failed.append(f"{point}: {exc.strerror}")
    return done, failed


def _hide_paths(libc, hidden, keep_dirs):
    """Cover each hidden path with an empty read-only tmpfs; give the kernel a private /tmp.

    ``keep_dirs`` (the sandbox root, the interpreter and package folders, the course folders
    the kernel may read) stay visible at the same path when they live under /tmp, /var/tmp or
    /dev/shm: they are bound back (recursively, so hidden paths inside them stay hidden).
    """
    applied = []
    needed = _interpreter_dirs()
    for path in hidden:
        if any(n == path or n.startswith(path.rstrip("/") + "/") for n in needed):
            applied.append(f"NOT {path}: it holds the Python installation or this package")
            continue
        if os.path.isdir(path) and not os.path.islink(path):
            _mount(libc, "tmpfs", path, "tmpfs", _MS_RDONLY | _MS_NOSUID | _MS_NODEV | _MS_NOEXEC, "size=4k,mode=000")
            applied.append(path)
        elif os.path.isfile(path) and not os.path.islink(path):
            _mount(libc, "/dev/null", path, None, _MS_BIND)
            applied.append(path)
    tops = [t for t in ("/tmp", "/var/tmp", "/dev/shm") if os.path.isdir(t)]
    under = [os.path.realpath(d) for d in keep_dirs if os.path.isdir(d)]
    under = sorted({d for d in under if any(d.startswith(t + "/") for t in tops)})
    under = [d for d in under if not any(o != d and d.startswith(o + "/") for o in under)]
    keep_fds = {d: os.open(d, os.O_PATH | os.O_DIRECTORY) for d in under}
    private = []
    for top in tops:
        _mount(libc, "tmpfs", top, "tmpfs", _MS_NOSUID | _MS_NODEV, "mode=1777,size=64m")
        private.append(top)
    for d, fd in keep_fds.items():
        os.makedirs(d, exist_ok=True)
        _mount(libc, f"/proc/self/fd/{fd}", d, None, _MS_BIND | _MS_REC)
        os.close(fd)
    applied.extend(_hide_outside_system(libc, list(keep_dirs) + needed + ["/var/tmp"]))
    return applied, private


# Top-level folders every kernel sees: the operating system. Every other top-level folder (/home,
# /root, /srv, /opt, /var, /mnt, /work, ...) is replaced by an empty tmpfs showing only the
# folders the kernel needs, so that a copy of the solutions or a gradebook anywhere else on the
# machine (an instructor's home, a second checkout, an nbgrader exchange) stays out of reach
# even when its files are world-readable.
SYSTEM_TOP_FOLDERS = frozenset({"bin", "sbin", "lib", "lib32", "lib64", "libx32", "usr", "etc", "proc",
                                "sys", "dev", "tmp"})


def _hide_outside_system(libc, keep_dirs):
    """Cover each non-system top-level folder with a tmpfs, binding back the ``keep_dirs`` inside it."""
    keep = sorted({os.path.realpath(d) for d in keep_dirs if os.path.isdir(d)})
    keep = [d for d in keep if not any(o != d and d.startswith(o.rstrip("/") + "/") for o in keep)]
    applied = []
    for entry in sorted(os.scandir("/"), key=lambda e: e.name):
        if entry.name in SYSTEM_TOP_FOLDERS or entry.is_symlink() or not entry.is_dir(follow_symlinks=False):
            continue
        top = entry.path
        inner = [d for d in keep if d == top or d.startswith(top + "/")]
        if top in inner:
            continue
        fds = {d: os.open(d, os.O_PATH | os.O_DIRECTORY) for d in inner}
        try:
            _mount(libc, "tmpfs", top, "tmpfs", _MS_NOSUID | _MS_NODEV, "mode=0755,size=64k")
            for d, fd in fds.items():
                os.makedirs(d, exist_ok=True)
                _mount(libc, f"/proc/self/fd/{fd}", d, None, _MS_BIND | _MS_REC)
        finally:
            for fd in fds.values():
                os.close(fd)
        applied.append(f"{top} (only {', '.join(inner)} visible)" if inner else top)
    return applied


def _close_to_others(paths):
    """Without a mount namespace, hidden paths are kept from the sandbox users by their mode:
    take away the permissions of "others" (the sandbox users are never owner or group)."""
    needed = _interpreter_dirs()
    for path in paths:
        if any(n == path or n.startswith(path.rstrip("/") + "/") for n in needed):
            continue
        with contextlib.suppress(OSError):
            st = os.lstat(path)
            if not stat.S_ISLNK(st.st_mode) and st.st_mode & 0o007:
                os.chmod(path, stat.S_IMODE(st.st_mode) & ~0o007)


def _interpreter_dirs():
    """Folders the kernel needs to read: the interpreter's installation and the venv. Not the
    course repository: the kernel imports the student kit (``Sandbox.kit_dir``), and the
    repository's cs231n_lib and autograder hold the answers."""
    dirs = {os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix)}
    return sorted(dirs)


def _unreachable_interpreter_dirs():
    """(top folder others cannot traverse, needed folder inside it) pairs, outermost first."""
    pairs = []
    for needed in _interpreter_dirs():
        parts = Path(needed).parts
        for i in range(2, len(parts) + 1):
            ancestor = str(Path(*parts[:i]))
            if not os.stat(ancestor).st_mode & 0o001:
                pairs.append((ancestor, needed))
                break
    return pairs


def _launch(argv):
    """Kernelspec argv entry: ``python -m autograder.sandbox <root> <connection_file>``.

    Applies the protections (see the module docstring) and ``exec``s the kernel. Writes what it
    applied to ``<root>/protections.json`` before the kernel's code can run.
    """
    root, connection_file = argv[0], argv[1]
    with open(os.path.join(root, "launch.json")) as fh:
        cfg = json.load(fh)
    home = cfg["home"]
    conn = os.path.join(home, "connection.json")
    shutil.copyfile(connection_file, conn)  # before /tmp is replaced
    applied = {"mode": "root" if _is_root() else "none", "uid": os.getuid(),
               "user": pwd.getpwuid(os.getuid()).pw_name, "mount_namespace": False,
               "network_namespace": False, "transport": cfg.get("transport", "tcp"),
               "hidden": [], "private_tmp": [], "rlimits": {}, "errors": []}
    if not _is_root() and cfg.get("userns"):
        _launch_in_user_namespace(root, cfg, conn, applied)  # never returns
    uid, gid = cfg.get("uid"), cfg.get("gid")
    if _is_root() and cfg.get("namespace"):
        try:
            libc = _libc()
            _private_namespace(libc)
            keep = [root] + _interpreter_dirs() + cfg.get("visible_paths", [])
            applied["hidden"], applied["private_tmp"] = _hide_paths(libc, cfg["hidden_paths"], keep)
            applied["mount_namespace"] = True
        except OSError as exc:
            applied["errors"].append(f"mount namespace: {exc}")
    if _is_root() and cfg.get("transport") == "ipc":
        try:
            _check(_libc().unshare(_CLONE_NEWNET), "unshare(CLONE_NEWNET)")
            applied["network_namespace"] = True
        except OSError as exc:
            applied["errors"].append(f"network namespace: {exc}")
    _set_rlimits(cfg, applied, nproc=uid is not None)
    # RLIMIT_NPROC binds only a user of its own: the grader's user (root or not) shares its count
    applied["process_cap"] = uid is not None and "RLIMIT_NPROC" in applied["rlimits"]
    if uid is not None:
        os.chown(conn, uid, gid)
        applied["uid"], applied["user"] = uid, cfg["user"]
    os.chmod(conn, 0o600)
    with open(os.path.join(root, "protections.json"), "w") as fh:
        json.dump(applied, fh)
    os.chdir(cfg["work"])
    if uid is not None:
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
    _exec_kernel(cfg, conn)


def _set_rlimits(cfg, applied, nproc):
    limits = {"RLIMIT_AS": cfg["memory_bytes"], "RLIMIT_FSIZE": cfg["fsize_bytes"], "RLIMIT_CORE": 0,
              "RLIMIT_CPU": cfg["cpu_seconds"]}
    if nproc:
        limits["RLIMIT_NPROC"] = cfg["nproc"]
    for name, value in limits.items():
        try:
            resource.setrlimit(getattr(resource, name), (value, value))
            applied["rlimits"][name] = value
        except (ValueError, OSError) as exc:
            applied["errors"].append(f"{name}: {exc}")


def _exec_kernel(cfg, conn):
    with contextlib.suppress(Exception):
        _check(_libc().prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(NO_NEW_PRIVS)")
    os.umask(0o077)
    os.execve(sys.executable, [sys.executable, "-m", "ipykernel_launcher", "-f", conn,
                               "--HistoryManager.enabled=False", "--IPKernelApp.quiet=True"], cfg["env"])


def _launch_in_user_namespace(root, cfg, conn, applied):
    """The wrapper of a grader that is not root (see the module docstring). Never returns.

    Three processes: this one (the process jupyter_client started and watches) enters the new
    user, mount, PID and network namespaces and waits; its child is the PID namespace's first
    process, which builds the file system view and then only reaps orphans; its grandchild
    ``exec``s the kernel. When the kernel exits the first process follows it, and the Linux kernel
    kills every process left in the namespace; when this process is killed (jupyter_client kills
    the process group), the first process gets SIGKILL through PR_SET_PDEATHSIG. Any failure
    before the kernel starts ends the start with an error: a kernel is never run with less
    isolation than the grader announced.
    """
    # Opened here, before the namespaces: written through later, once the sandbox folder is read-only.
    report = os.open(os.path.join(root, "protections.json"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.chmod(conn, 0o600)
    network = cfg.get("transport") == "ipc"  # over TCP the kernel must reach the grader's loopback
    libc = _libc()
    try:
        _enter_user_namespace(libc, _CLONE_NEWNS | _CLONE_NEWPID | (_CLONE_NEWNET if network else 0))
    except OSError as exc:
        print(f"cs231n sandbox: cannot enter a user namespace: {exc}", file=sys.stderr, flush=True)
        os._exit(70)
    # Interrupts are for the kernel: jupyter_client sends SIGINT to the whole process group.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    first = os.fork()
    if first == 0:
        try:
            _namespace_init(root, cfg, conn, applied, report, network)
        except BaseException as exc:  # noqa: BLE001 - no kernel without its protections
            print(f"cs231n sandbox: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        os._exit(70)
    os.close(report)
    _, status = os.waitpid(first, 0)
    code = os.waitstatus_to_exitcode(status)
    os._exit(code if code >= 0 else 128 - code)


def _namespace_init(root, cfg, conn, applied, report, network):
    """First process of the kernel's PID namespace: mounts, limits, report; then the kernel's init."""
    libc = _libc()
    _check(libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(PR_SET_PDEATHSIG)")
    _mount(libc, None, "/", None, _MS_REC | _MS_PRIVATE)
    _mount_fresh_proc(libc)
    keep = [root] + _interpreter_dirs() + cfg.get("visible_paths", [])
    applied["hidden"], applied["private_tmp"] = _hide_paths(libc, cfg["hidden_paths"], keep)
    # The kernel's own folders become mounts of their own, so that they stay writable while the
    # sandbox folder around them (launch.json, in/, protections.json) turns read-only with the rest.
    writable = [cfg["work"], cfg["home"], cfg["out"]]
    for folder in writable:
        _mount(libc, folder, folder, None, _MS_BIND)
    applied["read_only_mounts"], failed = _read_only_except(libc, writable, applied["private_tmp"])
    applied["errors"].extend(f"could not make read-only: {f}" for f in failed)
    try:  # no nested user namespace: it would give the kernel's code capabilities of its own
        with open("/proc/sys/user/max_user_namespaces", "w") as fh:
            fh.write("0")
        applied["nested_user_namespaces"] = False
    except OSError as exc:
        applied["errors"].append(f"nested user namespaces stay allowed: {exc}")
    # RLIMIT_NPROC counts per user *and user namespace* (Linux >= 5.14): the cap binds the kernel's
    # processes only, and the grader's user keeps its own count.
    _set_rlimits(cfg, applied, nproc=True)
    applied.update(mode="user_namespace", user_namespace=True, pid_namespace=True, mount_namespace=True,
                   network_namespace=network, process_cap="RLIMIT_NPROC" in applied["rlimits"])
    os.write(report, json.dumps(applied).encode())
    os.close(report)
    kernel = os.fork()
    if kernel == 0:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.chdir(cfg["work"])
        _exec_kernel(cfg, conn)
    # Reap every orphan (the namespace's processes are re-parented here); leave with the kernel.
    while True:
        pid, status = os.wait()
        if pid == kernel:
            code = os.waitstatus_to_exitcode(status)
            os._exit(code if code >= 0 else 128 - code)


# ------------------------------------------------------------------------------------------
# Numba: a private copy of the grader's warm cache for each kernel


def _copy_numba_cache(target, kit_dir):
    """Copy the kit's compiled kernels (``<kit_dir>/.numba-cache``, filled when the grader built
    the kit) into ``target`` (the kernel's NUMBA_CACHE_DIR); returns the number of files copied."""
    source = os.path.join(kit_dir, ".numba-cache") if kit_dir else None
    if not source or not os.path.isdir(source):
        return 0
    copied = 0
    for folder, _, names in os.walk(source):
        dst = os.path.join(target, os.path.relpath(folder, source))
        os.makedirs(dst, exist_ok=True)
        for name in names:
            if name.endswith((".nbi", ".nbc")):
                shutil.copyfile(os.path.join(folder, name), os.path.join(dst, name))
                copied += 1
    return copied


# ------------------------------------------------------------------------------------------
# Executing code in the kernel


@dataclass
class Execution:
    """What happened when one piece of code ran in the kernel.

    status: "ok" | "error" (an exception) | "timeout" | "crashed" (kernel died) | "flooded"
    (output beyond ``flood_bytes``, or one output message beyond 64 MB; the kernel was killed). After "crashed", "flooded" and a
    timeout that needed a kill, ``kernel_lost`` is True: the caller restarts and replays.
    """

    status: str
    seconds: float
    outputs: list = field(default_factory=list)
    error: dict | None = None  # {"ename", "evalue", "traceback"}
    kernel_lost: bool = False
    truncated_bytes: int = 0


def _output_bytes(content):
    if "text" in content:
        return len(content["text"])
    data = content.get("data", {})
    return sum(len(v) if isinstance(v, str) else len(json.dumps(v)) for v in data.values())


class _Collector:
    """Keeps up to ``cap`` bytes of output, in nbformat output dicts."""

    def __init__(self, cap):
        self.cap, self.kept, self.seen, self.dropped = cap, 0, 0, 0
        self.outputs = []

    def add(self, msg_type, content):
        size = _output_bytes(content)
        self.seen += size
        if self.kept + size > self.cap:
            if msg_type == "stream" and self.kept < self.cap:
                room = self.cap - self.kept
                content = dict(content, text=content["text"][:room])
                self.dropped += size - room
                size = room
            else:
                self.dropped += size
                return
        self.kept += size
        if msg_type == "stream":
            if self.outputs and self.outputs[-1]["output_type"] == "stream" and self.outputs[-1]["name"] == content["name"]:
                self.outputs[-1]["text"] += content["text"]
            else:
                self.outputs.append({"output_type": "stream", "name": content["name"], "text": content["text"]})
        elif msg_type in ("display_data", "execute_result"):
            out = {"output_type": msg_type, "data": content.get("data", {}), "metadata": content.get("metadata", {})}
            if msg_type == "execute_result":
                out["execution_count"] = content.get("execution_count")
            self.outputs.append(out)
        elif msg_type == "error":
            self.outputs.append({"output_type": "error", "ename": str(content.get("ename", "")),
                                 "evalue": str(content.get("evalue", ""))[:10000],
                                 "traceback": [str(t)[:10000] for t in content.get("traceback", [])[:100]]})

    def finish(self):
        if self.dropped:
            self.outputs.append({"output_type": "stream", "name": "stderr",
                                 "text": f"\n[output truncated: {self.dropped} more characters not shown]\n"})
        return self.outputs


def _client_class():
    import zmq
    from jupyter_client.blocking import BlockingKernelClient

    class CappedClient(BlockingKernelClient):
        """A kernel client whose sockets refuse single messages larger than ``max_message``."""

        # a bigger message (one giant print) is dropped by ZMQ before it reaches the grader's memory
        max_message = 64 << 20

        def _create_connected_socket(self, channel, identity=None):
            url = self._make_url(channel)
            sock = self.context.socket(_socket_type(channel))
            sock.linger = 1000
            sock.setsockopt(zmq.MAXMSGSIZE, self.max_message)
            if identity:
                sock.identity = identity
            sock.connect(url)
            return sock

    return CappedClient


def _socket_type(channel):
    from jupyter_client.connect import channel_socket_types

    return channel_socket_types[channel]


class Sandbox:
    """One sandboxed kernel, restartable, with a folder holding only one student's files.

    Inputs:
    - files: relative posix path -> bytes, written into the working folder before the kernel starts
    - limits: ``Limits``
    - hidden_paths: folders (or files) the kernel must not see (e.g. solutions/, submissions,
      the grading output); covered by empty tmpfs in the kernel's mount namespace when root
    - visible_paths: folders the kernel must still see when they live under /tmp (which the
      kernel gets a private, empty copy of), e.g. the course's assignments/ and datasets/
    Use as a context manager; ``close`` kills every process the sandbox started.
    """

    def __init__(self, files, limits=None, hidden_paths=(), visible_paths=(), kit_dir=None):
        self.limits = Limits.coerce(limits)
        self.hidden_paths = [os.path.realpath(p) for p in hidden_paths]
        # the student kit the kernel imports (cs231n_lib's student build and cs231n_checks)
        self.kit_dir = os.path.realpath(kit_dir) if kit_dir else None
        self.visible_paths = [os.path.realpath(p) for p in visible_paths] + ([self.kit_dir] if self.kit_dir else [])
        self.km = self.kc = None
        self.uid = self.gid = None
        self.user = None
        self._slot_fd = None
        self.kernel_start_seconds = 0.0
        self.kernel_starts = 0
        self.applied = {}
        self.protections = sandbox_protections()
        self.root = None
        self._mounted = False
        try:
            self._make_root()
            self._prepare(files)
        except BaseException:
            self.close()
            raise

    # --- setup --------------------------------------------------------------------------------
    def _claim_slot(self):
        for slot in range(MAX_SLOTS):
            fd = os.open(_state_dir() / f"slot-{slot}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            self._slot_fd = fd
            self.user = SANDBOX_USER_PREFIX + str(slot)
            self.uid, self.gid = _ensure_user(self.user)
            self._kill_user_processes()  # leftovers of a grader killed mid-task
            return
        raise RuntimeError(f"all {MAX_SLOTS} sandbox slots are busy")

    def _make_root(self):
        """A fresh sandbox folder: a size-capped tmpfs per slot when root, else a temporary folder."""
        if not self.protections["unprivileged_user"]:
            self.root = tempfile.mkdtemp(prefix="cs231n-sbx-")
            os.chmod(self.root, 0o711)
            return
        self._claim_slot()
        base = Path(tempfile.gettempdir()) / "cs231n-sbx"
        base.mkdir(mode=0o711, exist_ok=True)
        os.chmod(base, 0o711)
        path = base / self.user
        if os.path.ismount(path):  # left by a grader killed mid-task (we hold the slot now)
            _libc().umount2(str(path).encode(), 2)
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(mode=0o711)
        self.root = str(path)
        try:
            _mount(_libc(), "tmpfs", self.root, "tmpfs", _MS_NOSUID | _MS_NODEV,
                   f"size={int(self.limits.disk_mb)}m,mode=0711")
            self._mounted = True
        except OSError:
            pass  # no size cap on the folder; everything else still applies

    def _prepare(self, files):
        root = Path(self.root)
        self.work, self.home, self.inbox, self.outbox = (root / n for n in ("work", "home", "in", "out"))
        for d in (self.work, self.home, self.inbox, self.outbox, root / "kernels" / "cs231n-sandbox"):
            d.mkdir(parents=True)
        for d in (self.work, self.home, self.outbox):
            # the kernel's own folders: without a mount namespace, another student's concurrent
            # kernel (another slot user) must not read them through their predictable path
            os.chmod(d, 0o700)
        self.skipped_files = []
        for rel, data in files.items():
            try:
                target = self.work / safe_relative_path(rel)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            except (OSError, ValueError) as exc:  # e.g. both "a" and "a/b" were sent
                self.skipped_files.append(f"{rel}: {type(exc).__name__}")
        self.numba_cache = self.home / "numba-cache"
        self.numba_cache.mkdir()
        self.numba_cache_files = _copy_numba_cache(str(self.numba_cache), self.kit_dir)
        os.chmod(self.inbox, 0o711)  # the kernel may read a file it is told about, not list them
        if self.uid is not None:
            for d in (self.work, self.home, self.outbox):
                _chown_tree(d, self.uid, self.gid)
            if not self.protections["mount_namespace"]:
                _close_to_others(self.hidden_paths)
        threads = str(self.limits.threads)
        env = {k: os.environ[k] for k in KEPT_ENV if k in os.environ}
        env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent)] + [
            p for p in env["PATH"].split(os.pathsep) if p != str(Path(sys.executable).parent)])
        # USER is neutral: the slot user's own name would tell the kernel that it is being graded
        env.update({
            "HOME": str(self.home), "USER": "student",
            "IPYTHONDIR": str(self.home / ".ipython"), "MPLCONFIGDIR": str(self.home / ".matplotlib"),
            "JUPYTER_RUNTIME_DIR": str(self.home / ".runtime"), "JUPYTER_CONFIG_DIR": str(self.home / ".jupyter"),
            "JUPYTER_DATA_DIR": str(self.home / ".jupyter-data"), "XDG_CACHE_HOME": str(self.home / ".cache"),
            "TMPDIR": "/tmp", "MPLBACKEND": "Agg", "PYTHONDONTWRITEBYTECODE": "1",
            "NUMBA_CACHE_DIR": str(self.numba_cache), "NUMBA_NUM_THREADS": threads,
            # the kit comes first on the path: the course repository is hidden from the kernel
            "PYTHONPATH": self.kit_dir or "",
            "NUMBA_THREADING_LAYER": "workqueue", "OMP_NUM_THREADS": threads,
            "OPENBLAS_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "PYTHONHASHSEED": "0",
        })
        launch = {
            "work": str(self.work), "home": str(self.home), "env": env,
            "hidden_paths": self.hidden_paths, "visible_paths": self.visible_paths,
            "namespace": self.protections["mount_namespace"],
            "memory_bytes": int(self.limits.memory_mb) << 20, "fsize_bytes": int(self.limits.fsize_mb) << 20,
            "nproc": int(self.limits.nproc), "cpu_seconds": int(self.limits.cpu_seconds),
            "uid": self.uid, "gid": self.gid, "user": self.user,
            "transport": "tcp", "userns": self.protections["mode"] == "user_namespace", "out": str(self.outbox),
        }
        self.launch = launch
        self.ipc_prefix = str(self.home / "k")
        self.use_ipc = bool(self.protections["mount_namespace"] and self.limits.isolate_network
                            and len(self.ipc_prefix) < 80)
        self._write_launch("ipc" if self.use_ipc else "tcp")
        spec = {"argv": [sys.executable, "-m", "autograder.sandbox", str(root), "{connection_file}"],
                "display_name": "cs231n sandbox", "language": "python", "interrupt_mode": "signal"}
        (root / "kernels" / "cs231n-sandbox" / "kernel.json").write_text(json.dumps(spec))
        self.env = env

    def _write_launch(self, transport):
        self.launch["transport"] = transport
        # read by the wrapper as root: only the grader's user may read it, from its first byte
        write_atomic(Path(self.root) / "launch.json", json.dumps(self.launch), mode=0o600)

    # --- kernel life cycle ----------------------------------------------------------------------
    def start(self):
        """Start the kernel (retrying port races); returns the seconds it took."""
        from jupyter_client import KernelManager
        from jupyter_client.kernelspec import KernelSpecManager

        began = time.perf_counter()
        last = None
        attempts = max(1, self.limits.start_attempts)
        for attempt in range(attempts + (1 if self.use_ipc else 0)):
            if self.use_ipc and attempt == attempts:  # ipc kept failing: last try over TCP
                self.use_ipc = False
                self._write_launch("tcp")
            ksm = KernelSpecManager(kernel_dirs=[str(Path(self.root) / "kernels")])
            transport = {"transport": "ipc", "ip": self.ipc_prefix} if self.use_ipc else {}
            km = KernelManager(kernel_name="cs231n-sandbox", kernel_spec_manager=ksm, **transport)
            km.client_factory = _client_class()
            kc = None
            try:
                # the launcher's own environment: the wrapper builds the kernel's from launch.json
                km.start_kernel(env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                kc = km.client()
                kc.start_channels()
                kc.wait_for_ready(timeout=self.limits.start_timeout)
                self.km, self.kc = km, kc
                self._watch_iopub()
                break
            except Exception as exc:  # noqa: BLE001 - ZMQ port race, slow start: try again
                last = exc
                with contextlib.suppress(Exception):
                    if kc is not None:
                        kc.stop_channels()
                with contextlib.suppress(Exception):
                    km.shutdown_kernel(now=True)
                self._kill_user_processes()
                time.sleep(0.5 * (2 ** attempt))
        else:
            raise RuntimeError(f"the sandboxed kernel did not start after {attempts} attempts: "
                               f"{type(last).__name__}: {last}")
        with contextlib.suppress(OSError, ValueError):
            self.applied = json.loads((Path(self.root) / "protections.json").read_text())
        seconds = time.perf_counter() - began
        self.kernel_start_seconds += seconds
        self.kernel_starts += 1
        return seconds

    def _watch_iopub(self):
        """Watch the output channel for disconnects: ZMQ drops the connection when one message is
        larger than ``CappedClient.max_message`` (a print bomb), before it reaches our memory."""
        import zmq

        self._iopub_monitor = None
        with contextlib.suppress(Exception):
            self._iopub_monitor = self.kc.iopub_channel.socket.get_monitor_socket(zmq.EVENT_DISCONNECTED)

    def _iopub_dropped(self):
        monitor = getattr(self, "_iopub_monitor", None)
        try:
            return monitor is not None and bool(monitor.poll(0))
        except Exception:  # noqa: BLE001
            return False

    def stop(self):
        """Kill the kernel and every process it started."""
        monitor = getattr(self, "_iopub_monitor", None)
        if monitor is not None:
            with contextlib.suppress(Exception):
                self.kc.iopub_channel.socket.disable_monitor()
            with contextlib.suppress(Exception):
                monitor.close(linger=0)
            self._iopub_monitor = None
        if self.kc is not None:
            with contextlib.suppress(Exception):
                self.kc.stop_channels()
        if self.km is not None:
            with contextlib.suppress(Exception):
                self.km.shutdown_kernel(now=True)
            with contextlib.suppress(Exception):
                self.km.cleanup_resources()
        self.km = self.kc = None
        self._kill_user_processes()

    def restart(self):
        self.stop()
        return self.start()

    def alive(self):
        return self.km is not None and self.km.is_alive()

    def _kill_user_processes(self):
        """Kill every process of the slot user (``kill(-1)`` run as that user: no race with forks)."""
        if self.uid is None:
            return
        for _ in range(5):
            with contextlib.suppress(Exception):
                # the shell's builtin kill (the interpreter may not be reachable by the slot user)
                subprocess.run(["/bin/sh", "-c", "kill -9 -1"], user=self.uid, group=self.gid,
                               extra_groups=[], env={}, capture_output=True, timeout=20, cwd="/")
            if not _processes_of(self.uid):
                return
            time.sleep(0.1)
        for pid in _processes_of(self.uid):  # last resort, from the grader's side
            with contextlib.suppress(OSError):
                os.kill(pid, 9)

    def close(self):
        self.stop()
        if self.root is not None:
            if self._mounted:
                with contextlib.suppress(OSError):
                    _check(_libc().umount2(self.root.encode(), 2), f"umount {self.root}")
                self._mounted = False
            shutil.rmtree(self.root, ignore_errors=True)
        if self._slot_fd is not None:
            os.close(self._slot_fd)
            self._slot_fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- running code ------------------------------------------------------------------------------
    def execute(self, code, timeout, *, store_history=True, keep_output=True):
        """Run ``code``; wait at most ``timeout`` seconds (then interrupt, then kill). Never raises."""
        if not self.alive():
            return Execution("crashed", 0.0, kernel_lost=True)
        lim = self.limits
        collector = _Collector(lim.output_cap_bytes if keep_output else 0)
        began = time.perf_counter()
        try:
            msg_id = self.kc.execute(code, silent=False, store_history=store_history,
                                     allow_stdin=False, stop_on_error=False)
        except Exception:  # noqa: BLE001 - channel gone
            return Execution("crashed", 0.0, kernel_lost=True)
        deadline = began + timeout
        interrupted_at = reply = idle = error = None
        reply_at = 0.0
        while True:
            now = time.perf_counter()
            if idle is not None and reply is not None:
                break
            if interrupted_at is None and now > deadline:
                with contextlib.suppress(Exception):
                    self.km.interrupt_kernel()
                interrupted_at = now
            if interrupted_at is not None and now > interrupted_at + lim.grace_seconds:
                self.stop()
                return Execution("timeout", now - began, collector.finish(), kernel_lost=True)
            if collector.seen > lim.flood_bytes:
                self.stop()
                return Execution("flooded", now - began, collector.finish(), kernel_lost=True)
            if not self.km.is_alive():
                self.stop()
                return Execution("crashed", now - began, collector.finish(), kernel_lost=True)
            if self._iopub_dropped():  # a giant message, or the kernel dying: tell them apart
                time.sleep(0.5)
                status = "crashed" if not self.km.is_alive() else "flooded"
                self.stop()
                return Execution(status, now - began, collector.finish(), kernel_lost=True)
            if reply is None:
                reply = self._shell_reply(msg_id, 0.05 if idle is not None else 0)
                reply_at = now
                if reply is None and idle is not None and now - idle > 5.0:
                    reply = {"status": "unknown"}  # the kernel never answered on the shell channel
            elif idle is None and now - reply_at > 2.0:
                idle = now  # the idle message was lost (e.g. an oversized message was refused)
            if idle is not None:
                continue
            try:
                msg = self.kc.get_iopub_msg(timeout=0.05)
            except queue.Empty:
                continue
            except Exception:  # noqa: BLE001 - a malformed message: the kernel is not trusted
                continue
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "status" and content.get("execution_state") == "idle":
                idle = time.perf_counter()
            elif kind in ("stream", "display_data", "execute_result", "error"):
                collector.add(kind, content)
                if kind == "error":
                    error = {"ename": str(content.get("ename", "")), "evalue": str(content.get("evalue", ""))[:10000],
                             "traceback": [str(t)[:10000] for t in content.get("traceback", [])[:100]]}
            elif kind == "clear_output":
                collector.outputs.clear()
        seconds = time.perf_counter() - began
        if interrupted_at is not None:
            return Execution("timeout", seconds, collector.finish())
        status = "error" if reply.get("status") == "error" or error else "ok"
        if status == "error" and error is None:
            error = {"ename": str(reply.get("ename", "")), "evalue": str(reply.get("evalue", ""))[:10000], "traceback": []}
        return Execution(status, seconds, collector.finish(), error=error)

    def _shell_reply(self, msg_id, timeout):
        end = time.perf_counter() + timeout
        while True:
            try:
                msg = self.kc.get_shell_msg(timeout=max(0.0, end - time.perf_counter()))
            except queue.Empty:
                return None
            except Exception:  # noqa: BLE001
                return None
            if msg.get("parent_header", {}).get("msg_id") == msg_id:
                return msg.get("content", {})

    # --- exchanging arrays ----------------------------------------------------------------------------
    def new_exchange(self):
        """Fresh unguessable names: (input path, output path, status path, nonce)."""
        nonce = secrets.token_hex(16)
        return (str(self.inbox / f"{nonce}.npz"), str(self.outbox / f"{nonce}.npz"),
                str(self.outbox / f"{nonce}.json"), nonce)

    def write_inputs(self, path, arrays):
        """Write plain arrays (no pickles) to ``path`` in the root-owned input folder."""
        import numpy as np

        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **{k: np.asarray(v) for k, v in arrays.items()})

    def read_untrusted(self, path, max_bytes):
        """Bytes of a file the kernel wrote, or None: never follows links, refuses non-files and big files."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            return None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or info.st_size > max_bytes:
                return None
            chunks, total = [], 0
            while total <= max_bytes:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
                total += len(chunk)
            return b"".join(chunks) if total <= max_bytes else None
        finally:
            os.close(fd)

    def discard(self, *paths):
        for p in paths:
            with contextlib.suppress(OSError):
                os.unlink(p)


def _processes_of(uid):
    """Pids of the live (not zombie) processes owned by ``uid``."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                if os.stat(entry.path).st_uid == uid:
                    with open(os.path.join(entry.path, "stat"), "rb") as fh:
                        state = fh.read().rsplit(b")", 1)[1].split()[0]
                    if state not in (b"Z", b"X"):
                        found.append(int(entry.name))
    return found


def _chown_tree(path, uid, gid):
    os.chown(path, uid, gid)
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            os.lchown(os.path.join(dirpath, name), uid, gid)


if __name__ == "__main__":
    _launch(sys.argv[1:])
