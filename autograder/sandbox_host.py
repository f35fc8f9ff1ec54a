"""What this host lets the grader do to a kernel, and the grading users.

``sandbox_protections`` probes once per process which sandbox kernels get here (``MODES``:
root with a user per kernel, user namespaces, or nothing) and describes it for people and
reports; ``userns_refusal`` says why user namespaces are refused; ``no_isolation_message`` is
``autograde``'s refusal. As root, each concurrent kernel runs as a slot user of its own
(``claim_slot``: ``cs231n-sbx-<slot>``, created when missing, held through a lock file), whose
processes are all killed after the kernel (``kill_user_processes``). Without a mount namespace
(a container that refuses ``unshare``) the hidden paths are closed to the slot users by taking
away their "others" permissions (``close_to_others``).
"""

import contextlib
import fcntl
import grp
import os
import pwd
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .files import file_lock
from .sandbox_launcher import interpreter_dirs, is_root

SANDBOX_USER_PREFIX = "cs231n-sbx-"
MAX_SLOTS = 32


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
    if not is_root():
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
        [sys.executable, "-c", "from autograder.sandbox_launcher import probe_namespace; probe_namespace()"],
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
            probe = subprocess.run([sys.executable, "-c", "from autograder.sandbox_launcher import probe_user_namespace; probe_user_namespace()"],
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
# The grading users (as root): one per concurrent kernel


def claim_slot():
    """A free slot for one kernel: ``(lock fd, user name, uid, gid)``. The slot is the caller's while
    it keeps the fd open; its system user is created when missing."""
    for slot in range(MAX_SLOTS):
        fd = os.open(_state_dir() / f"slot-{slot}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        user = SANDBOX_USER_PREFIX + str(slot)
        try:
            uid, gid = _ensure_user(user)
        except BaseException:
            os.close(fd)
            raise
        return fd, user, uid, gid
    raise RuntimeError(f"all {MAX_SLOTS} sandbox slots are busy")


def kill_user_processes(uid, gid):
    """Kill every process of the slot user ``uid`` (``kill(-1)`` run as that user: no race with forks)."""
    if uid is None:
        return
    for _ in range(5):
        with contextlib.suppress(Exception):
            # the shell's builtin kill (the interpreter may not be reachable by the slot user)
            subprocess.run(["/bin/sh", "-c", "kill -9 -1"], user=uid, group=gid,
                           extra_groups=[], env={}, capture_output=True, timeout=20, cwd="/")
        if not _processes_of(uid):
            return
        time.sleep(0.1)
    for pid in _processes_of(uid):  # last resort, from the grader's side
        with contextlib.suppress(OSError):
            os.kill(pid, 9)


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


def chown_tree(path, uid, gid):
    os.chown(path, uid, gid)
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            os.lchown(os.path.join(dirpath, name), uid, gid)


def close_to_others(paths):
    """Without a mount namespace, hidden paths are kept from the sandbox users by their mode:
    take away the permissions of "others" (the sandbox users are never owner or group)."""
    needed = interpreter_dirs()
    for path in paths:
        if any(n == path or n.startswith(path.rstrip("/") + "/") for n in needed):
            continue
        with contextlib.suppress(OSError):
            st = os.lstat(path)
            if not stat.S_ISLNK(st.st_mode) and st.st_mode & 0o007:
                os.chmod(path, stat.S_IMODE(st.st_mode) & ~0o007)


def _unreachable_interpreter_dirs():
    """(top folder others cannot traverse, needed folder inside it) pairs, outermost first."""
    pairs = []
    for needed in interpreter_dirs():
        parts = Path(needed).parts
        for i in range(2, len(parts) + 1):
            ancestor = str(Path(*parts[:i]))
            if not os.stat(ancestor).st_mode & 0o001:
                pairs.append((ancestor, needed))
                break
    return pairs
