"""Run the grader as a normal (non-root) user, as an instructor on a laptop or a JupyterHub does.

CI and the development machines run everything as root. These helpers create a normal login user
(``GRADER_USER``, with a home) and run commands as that user through ``setpriv``. When the
Python installation sits under a folder other users cannot enter (here ``/root/.pyenv``), the
command first gets a private mount namespace, made as root before dropping, in which that folder
is an empty tmpfs showing only the installation: the grader then sees the machine as an
instructor whose Python is their own. Nothing on the host changes. When the tests themselves run
as a normal user, commands run directly.

``user_folder(prefix)`` makes a fresh folder under /tmp that the user owns; ``run_as_user(argv)``
runs a command with the user's HOME, the virtual environment's bin first on PATH, and a Numba
cache the user can write (a copy of the grader's warm one: no 30 s cold compile per run).
"""

import grp
import os
import pwd
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from autograder import sandbox_host

GRADER_USER = "cs231n-instructor"
REPO = Path(__file__).resolve().parents[2]
_NUMBA_CACHE = {}


def is_root():
    return os.geteuid() == 0


def ensure_user():
    """(uid, gid, home) of the normal user the tests grade as (created when missing, root only)."""
    if not is_root():
        me = pwd.getpwuid(os.getuid())
        return me.pw_uid, me.pw_gid, me.pw_dir
    try:
        entry = pwd.getpwnam(GRADER_USER)
    except KeyError:
        group = ["--gid", GRADER_USER] if _group_exists(GRADER_USER) else ["--user-group"]
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", *group, GRADER_USER],
                       check=True, capture_output=True, timeout=30)
        entry = pwd.getpwnam(GRADER_USER)
    os.makedirs(entry.pw_dir, exist_ok=True)
    os.chown(entry.pw_dir, entry.pw_uid, entry.pw_gid)
    return entry.pw_uid, entry.pw_gid, entry.pw_dir


def _group_exists(name):
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


def chown_tree(path):
    uid, gid, _ = ensure_user()
    if not is_root():
        return
    for folder, dirs, files in os.walk(path):
        os.lchown(folder, uid, gid)
        for name in dirs + files:
            os.lchown(os.path.join(folder, name), uid, gid)


def user_folder(prefix="cs231n-user-", parent=None):
    """A fresh folder (under /tmp unless ``parent``) owned by the user, readable by nobody else."""
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    chown_tree(folder)
    return folder


def numba_cache():
    """A NUMBA_CACHE_DIR the user owns, holding a copy of the grader's compiled cs231n_lib kernels."""
    if "dir" not in _NUMBA_CACHE:
        # one folder for every test run (refreshed here), not a new one per process
        folder = Path(tempfile.gettempdir()) / f"cs231n-numba-cache-{GRADER_USER}"
        folder.mkdir(mode=0o700, exist_ok=True)
        try:
            from numba.core import caching

            from cs231n_lib import kernels

            locator = getattr(caching, "UserProvidedCacheLocator", None) or caching._UserProvidedCacheLocator
            source = next((v._cache._cache_path for v in vars(kernels).values()
                           if os.path.isdir(getattr(getattr(v, "_cache", None), "_cache_path", "") or "")), None)
            if source:
                shutil.copytree(source, folder / locator.get_suitable_cache_subpath(kernels.__file__),
                                dirs_exist_ok=True)
        except Exception:  # noqa: BLE001 - a cold cache is only slower
            pass
        chown_tree(folder)
        _NUMBA_CACHE["dir"] = str(folder)
    return _NUMBA_CACHE["dir"]


def _expose_interpreter_script():
    """Shell lines (run as root in a private mount namespace) that make the interpreter reachable."""
    lines = []
    by_top = {}
    for top, needed in sandbox_host._unreachable_interpreter_dirs():
        by_top.setdefault(top, []).append(needed)
    for i, (top, needed) in enumerate(sorted(by_top.items())):
        needed = [n for n in sorted(set(needed)) if not any(o != n and n.startswith(o + "/") for o in needed)]
        for j, n in enumerate(needed):
            hold = f"$hold/{i}-{j}"
            lines += [f"mkdir -p {hold}", f"mount --bind {shlex.quote(n)} {hold}"]
        lines.append(f"mount -t tmpfs -o mode=0755,size=64k tmpfs {shlex.quote(top)}")
        for j, n in enumerate(needed):
            lines += [f"mkdir -p {shlex.quote(n)}", f"mount --move $hold/{i}-{j} {shlex.quote(n)}"]
    return lines


def command_as_user(argv):
    """``argv`` wrapped to run as the normal user (unchanged when not root)."""
    if not is_root():
        return list(argv)
    uid, gid, _ = ensure_user()
    drop = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--init-groups", "--"]
    expose = _expose_interpreter_script()
    if not expose:
        return drop + list(argv)
    script = "\n".join(["set -e", "hold=$(mktemp -d)", "mount --make-rprivate /", *expose,
                        'rmdir "$hold"/* "$hold"', 'exec "$@"'])
    return ["unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", script, "sh", *drop, *argv]


def user_env(**extra):
    _, _, home = ensure_user()
    env = {"HOME": home, "LANG": os.environ.get("LANG", "C.UTF-8"),
           "PATH": str(Path(sys.executable).parent) + os.pathsep + "/usr/local/bin:/usr/bin:/bin",
           "NUMBA_CACHE_DIR": numba_cache(), "PYTHONPATH": str(REPO)}
    env.update({k: v for k, v in extra.items() if v is not None})
    return env


def run_as_user(argv, timeout=600, cwd=None, **env):
    """Run ``argv`` as the normal user; returns the CompletedProcess (text output)."""
    return subprocess.run(command_as_user(argv), env=user_env(**env), cwd=cwd or "/tmp", capture_output=True,
                          text=True, timeout=timeout)


def python_as_user(code, timeout=600, **env):
    """Run Python ``code`` (a script written to a file the user can read) as the normal user."""
    folder = user_folder("cs231n-user-script-")
    script = folder / "script.py"
    script.write_text(code)
    chown_tree(folder)
    try:
        return run_as_user([sys.executable, str(script)], timeout=timeout, cwd=str(folder), **env)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def available():
    """None when the tests can run the grader as a normal user with user namespaces; else why not."""
    if sys.platform != "linux":
        return "not Linux"
    if is_root() and not (shutil.which("setpriv") and shutil.which("unshare") and shutil.which("useradd")):
        return "needs setpriv, unshare and useradd to act as a normal user"
    try:
        ensure_user()
        probe = python_as_user("import autograder.sandbox as s\nprint(s.userns_refusal())", timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"cannot run as a normal user: {exc}"
    if probe.returncode != 0 or probe.stdout.strip() != "None":
        return f"user namespaces unavailable to a normal user here: {probe.stdout.strip()} {probe.stderr.strip()[-300:]}"
    return None
