"""The kernel's wrapper: the code that runs as root, or inside new namespaces, before the kernel.

jupyter_client starts it as the kernel's argv (``python -m autograder.sandbox_launcher <root>
<connection_file>``, written in the sandbox's kernelspec by ``sandbox_kernel.Sandbox``); it reads
``<root>/launch.json``, applies every protection, writes what it applied to
``<root>/protections.json`` and ``exec``s ipykernel. A security review reads this module alone:
it imports only the standard library and ``autograder.limits`` (the rlimit values), and nothing
else of the grader runs in this process.

As root it: enters a private mount namespace, mounts empty read-only tmpfs over every hidden
path (solutions/, the submissions and output folders) and a private /tmp, /var/tmp and /dev/shm
holding only ``root``; replaces every top-level folder outside the operating system (/home,
/root, /srv, /opt, /work, ...) by an empty tmpfs that shows only the folders the kernel needs
(the Python installation, this package, the visible course folders), so that copies of the
solutions elsewhere on the machine are out of reach too; sets the resource limits (address
space, process count, file size, no core files); copies the connection file where the sandbox
user can read it; drops to a dedicated unprivileged user (``cs231n-sbx-<slot>``, one per
concurrent kernel so that process caps and clean-up never touch another student) with no
supplementary groups and ``no_new_privs``; then ``exec``s ipykernel with a scrubbed environment.

Without root (an instructor's laptop, a JupyterHub server, CI), it gives the kernel the same file
system view through unprivileged user namespaces (``_launch_in_user_namespace``): it calls
unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWNET) itself through ctypes and maps
the grader's uid and gid to themselves. Done directly rather than through bubblewrap or
util-linux's ``unshare``: no dependency to install (this and many hosts have no bubblewrap), the
same code (``_hide_paths``, ``_hide_outside_system``, ``interpreter_dirs``) builds the view for
both paths, and the wrapper keeps control of the order of the steps. The first process of the
new PID namespace mounts a fresh /proc (only the kernel's processes: the grader, the same user,
is out of reach), hides what root hides, binds the kernel's own folders (work/, home/, out/) and
remounts everything else read-only (the kernel runs as the grader's user and would otherwise
rewrite what that user owns: the course, the virtual environment), forbids nested user
namespaces, sets the limits, then forks the kernel, which ``exec``s with uid != 0 inside and so
keeps no capability. The process cap is RLIMIT_NPROC, which since Linux 5.14 counts per user
*and user namespace*: it binds the kernel's processes only, and the grader's user keeps starting
processes during a fork bomb. When the kernel ends, or the wrapper is killed (PR_SET_PDEATHSIG),
the PID namespace ends and Linux kills every process in it.

Network: in both paths the wrapper also gives the kernel its own network namespace (no
interfaces at all) when the launch settings ask for Unix sockets (``transport: ipc``).

System V IPC: in both paths the kernel gets an IPC namespace of its own. A shared memory segment
made in the host's namespace outlives the process that made it (no rlimit counts it once it is
detached): a kernel could fill the machine's memory with segments that stay after it is killed,
for the rest of the run and beyond, and see the segments of another kernel of the same user. The
segments, semaphores and message queues of a namespace of its own end with the kernel.

``probe_namespace`` and ``probe_user_namespace`` run the same namespace steps in a throwaway
process, for ``sandbox_host`` to learn what this host allows.
"""

import contextlib
import ctypes
import errno
import json
import os
import pwd
import resource
import shutil
import signal
import sys
import tempfile

from .limits import rlimit_values


def is_root():
    """True when the grader (or this wrapper) runs as root: the sandbox then has a user of its own."""
    return os.geteuid() == 0


# ------------------------------------------------------------------------------------------
# Linux calls (also used by the grader's side to mount and unmount a sandbox folder's tmpfs)

_CLONE_NEWNS = 0x00020000
_CLONE_NEWIPC = 0x08000000
_CLONE_NEWUSER = 0x10000000
_CLONE_NEWPID = 0x20000000
_CLONE_NEWNET = 0x40000000
_MS_RDONLY, MS_NOSUID, MS_NODEV, _MS_NOEXEC, _MS_REMOUNT = 1, 2, 4, 8, 32
_MS_NOATIME, _MS_NODIRATIME, _MS_BIND, _MS_REC = 1024, 2048, 4096, 16384
_MS_PRIVATE, _MS_RELATIME, _MS_STRICTATIME = 1 << 18, 1 << 21, 1 << 24
_PR_SET_PDEATHSIG, _PR_SET_NO_NEW_PRIVS = 1, 38


def load_libc():
    return ctypes.CDLL(None, use_errno=True)


def check_libc(rc, what):
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def mount(libc, source, target, fstype, flags, data=None):
    check_libc(libc.mount(source and source.encode(), target.encode(), fstype and fstype.encode(),
                      ctypes.c_ulong(flags), data and data.encode()), f"mount {target}")


def _private_namespace(libc):
    check_libc(libc.unshare(_CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    mount(libc, None, "/", None, _MS_REC | _MS_PRIVATE)


def probe_namespace():
    libc = load_libc()
    _private_namespace(libc)
    target = tempfile.mkdtemp(prefix="cs231n-probe-")
    try:
        mount(libc, "tmpfs", target, "tmpfs", _MS_RDONLY | MS_NOSUID | MS_NODEV, "size=4k,mode=000")
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
    check_libc(libc.unshare(_CLONE_NEWUSER | flags), "unshare(CLONE_NEWUSER)")
    for name, text in (("uid_map", f"{uid} {uid} 1"), ("setgroups", "deny"), ("gid_map", f"{gid} {gid} 1")):
        with open(f"/proc/self/{name}", "w") as fh:
            fh.write(text)


def _mount_fresh_proc(libc):
    """A /proc of the new PID namespace: only the kernel's own processes, so that no /proc/<pid>/root,
    environ or fd of the grader (the same user) is reachable. Run by the namespace's first process."""
    mount(libc, "proc", "/proc", "proc", MS_NOSUID | MS_NODEV | _MS_NOEXEC)


def probe_user_namespace():
    """Exit 0 when the user-namespace sandbox can be built here (run in a throwaway process)."""
    libc = load_libc()
    _enter_user_namespace(libc, _CLONE_NEWNS | _CLONE_NEWNET | _CLONE_NEWPID | _CLONE_NEWIPC)
    pid = os.fork()
    if pid == 0:
        try:
            mount(libc, None, "/", None, _MS_REC | _MS_PRIVATE)
            _mount_fresh_proc(libc)
            mount(libc, "tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "size=4k")
            os.mkdir("/tmp/ro")
            mount(libc, "/tmp/ro", "/tmp/ro", None, _MS_BIND)
            _remount_read_only(libc, "/tmp/ro")
            os._exit(0)
        except BaseException as exc:  # noqa: BLE001 - reported through the exit status
            print(f"{type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    sys.exit(os.waitstatus_to_exitcode(status))


_ST_FLAGS_KEPT = ((os.ST_NOSUID, MS_NOSUID), (os.ST_NODEV, MS_NODEV), (os.ST_NOEXEC, _MS_NOEXEC),
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
    mount(libc, None, path, None, _MS_REMOUNT | _MS_BIND | _MS_RDONLY | kept)


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
    needed = interpreter_dirs()
    for path in hidden:
        if any(n == path or n.startswith(path.rstrip("/") + "/") for n in needed):
            applied.append(f"NOT {path}: it holds the Python installation or this package")
            continue
        if os.path.isdir(path) and not os.path.islink(path):
            mount(libc, "tmpfs", path, "tmpfs", _MS_RDONLY | MS_NOSUID | MS_NODEV | _MS_NOEXEC, "size=4k,mode=000")
            applied.append(path)
        elif os.path.isfile(path) and not os.path.islink(path):
            mount(libc, "/dev/null", path, None, _MS_BIND)
            applied.append(path)
    tops = [t for t in ("/tmp", "/var/tmp", "/dev/shm") if os.path.isdir(t)]
    under = [os.path.realpath(d) for d in keep_dirs if os.path.isdir(d)]
    under = sorted({d for d in under if any(d.startswith(t + "/") for t in tops)})
    under = [d for d in under if not any(o != d and d.startswith(o + "/") for o in under)]
    keep_fds = {d: os.open(d, os.O_PATH | os.O_DIRECTORY) for d in under}
    private = []
    for top in tops:
        mount(libc, "tmpfs", top, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=64m")
        private.append(top)
    for d, fd in keep_fds.items():
        os.makedirs(d, exist_ok=True)
        mount(libc, f"/proc/self/fd/{fd}", d, None, _MS_BIND | _MS_REC)
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
            mount(libc, "tmpfs", top, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=64k")
            for d, fd in fds.items():
                os.makedirs(d, exist_ok=True)
                mount(libc, f"/proc/self/fd/{fd}", d, None, _MS_BIND | _MS_REC)
        finally:
            for fd in fds.values():
                os.close(fd)
        applied.append(f"{top} (only {', '.join(inner)} visible)" if inner else top)
    return applied


def interpreter_dirs():
    """Folders the kernel needs to read: the interpreter's installation and the venv. Not the
    course repository: the kernel imports the student kit (``Sandbox.kit_dir``), and the
    repository's cs231n_lib and autograder hold the answers."""
    dirs = {os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix)}
    return sorted(dirs)


def launch(argv):
    """Kernelspec argv entry: ``python -m autograder.sandbox_launcher <root> <connection_file>``.

    Applies the protections (see the module docstring) and ``exec``s the kernel. Writes what it
    applied to ``<root>/protections.json`` before the kernel's code can run.
    """
    root, connection_file = argv[0], argv[1]
    with open(os.path.join(root, "launch.json")) as fh:
        cfg = json.load(fh)
    home = cfg["home"]
    conn = os.path.join(home, "connection.json")
    shutil.copyfile(connection_file, conn)  # before /tmp is replaced
    applied = {"mode": "root" if is_root() else "none", "uid": os.getuid(),
               "user": pwd.getpwuid(os.getuid()).pw_name, "mount_namespace": False,
               "network_namespace": False, "ipc_namespace": False, "transport": cfg.get("transport", "tcp"),
               "hidden": [], "private_tmp": [], "rlimits": {}, "errors": []}
    if not is_root() and cfg.get("userns"):
        _launch_in_user_namespace(root, cfg, conn, applied)  # never returns
    uid, gid = cfg.get("uid"), cfg.get("gid")
    if is_root() and cfg.get("namespace"):
        try:
            libc = load_libc()
            _private_namespace(libc)
            keep = [root] + interpreter_dirs() + cfg.get("visible_paths", [])
            applied["hidden"], applied["private_tmp"] = _hide_paths(libc, cfg["hidden_paths"], keep)
            applied["mount_namespace"] = True
        except OSError as exc:
            applied["errors"].append(f"mount namespace: {exc}")
    if is_root() and cfg.get("transport") == "ipc":
        try:
            check_libc(load_libc().unshare(_CLONE_NEWNET), "unshare(CLONE_NEWNET)")
            applied["network_namespace"] = True
        except OSError as exc:
            applied["errors"].append(f"network namespace: {exc}")
    if is_root():
        try:
            check_libc(load_libc().unshare(_CLONE_NEWIPC), "unshare(CLONE_NEWIPC)")
            applied["ipc_namespace"] = True
        except OSError as exc:
            applied["errors"].append(f"IPC namespace: {exc}")
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
    for name, value in rlimit_values(cfg, nproc).items():
        try:
            resource.setrlimit(getattr(resource, name), (value, value))
            applied["rlimits"][name] = value
        except (ValueError, OSError) as exc:
            applied["errors"].append(f"{name}: {exc}")


def _exec_kernel(cfg, conn):
    with contextlib.suppress(Exception):
        check_libc(load_libc().prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(NO_NEW_PRIVS)")
    os.umask(0o077)
    # -P: the working folder (the student's files) is not on the path while ipykernel starts, so
    # that a student's ipykernel_launcher.py or logging.py cannot stand in for the kernel's own
    # code and stop it from starting (which reads as a grader fault); once the kernel runs, the
    # folder goes first on the path, as in Jupyter, and the student's modules import as usual.
    os.execve(sys.executable, [sys.executable, "-P", "-m", "ipykernel_launcher", "-f", conn,
                               "--HistoryManager.enabled=False", "--IPKernelApp.quiet=True",
                               "--IPKernelApp.exec_lines=__import__('sys').path.insert(0, '')"], cfg["env"])


def _launch_in_user_namespace(root, cfg, conn, applied):
    """The wrapper of a grader that is not root (see the module docstring). Never returns.

    Three processes: this one (the process jupyter_client started and watches) enters the new
    user, mount, PID, IPC and network namespaces and waits; its child is the PID namespace's first
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
    libc = load_libc()
    try:
        _enter_user_namespace(libc, _CLONE_NEWNS | _CLONE_NEWPID | _CLONE_NEWIPC | (_CLONE_NEWNET if network else 0))
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
    libc = load_libc()
    check_libc(libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(PR_SET_PDEATHSIG)")
    mount(libc, None, "/", None, _MS_REC | _MS_PRIVATE)
    _mount_fresh_proc(libc)
    keep = [root] + interpreter_dirs() + cfg.get("visible_paths", [])
    applied["hidden"], applied["private_tmp"] = _hide_paths(libc, cfg["hidden_paths"], keep)
    # The kernel's own folders become mounts of their own, so that they stay writable while the
    # sandbox folder around them (launch.json, in/, protections.json) turns read-only with the rest.
    writable = [cfg["work"], cfg["home"], cfg["out"]]
    for folder in writable:
        mount(libc, folder, folder, None, _MS_BIND)
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
                   network_namespace=network, ipc_namespace=True, process_cap="RLIMIT_NPROC" in applied["rlimits"])
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


if __name__ == "__main__":
    launch(sys.argv[1:])
