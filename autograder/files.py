"""Writing files so that no reader sees half of one, and telling safe names from unsafe ones.

Every file the grader writes for someone else to read (the result cache, the gradebook's CSV,
feedback and report pages, the notebook pair's sync state, a kernel's launch settings) goes
through ``write_atomic``; every name that came from a student (a file in a submission folder, a
zip member, a notebook name in a result) goes through the checks below before it becomes a path,
and ``printable`` before it is printed or written where a terminal may show it.
This module imports nothing from the package, so that every other module may use it.
"""

import contextlib
import fcntl
import os
from pathlib import Path, PurePosixPath


def write_atomic(path, data, *, mode=0o666):
    """Replace ``path`` by ``data`` (str, written as UTF-8, or bytes) in one step.

    The data goes to a temporary file next to ``path`` (named after this process, so that two
    processes writing the same file never share one), is flushed to disk, and is renamed over
    ``path``: a reader sees the old file or the new one, never a torn one, even after a crash.
    ``mode`` is the new file's permissions before the umask (e.g. 0o600 for a file only its
    owner may read, which it is from its first byte). Missing parent folders are created.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def file_lock(path):
    """Hold an exclusive lock on ``path`` (created if missing, 0600) for the duration of the block."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def safe_relative_parts(name):
    """The parts of ``name`` as a relative path that stays inside its folder, or None.

    Backslashes count as separators (zips made on Windows use them), empty and ``.`` parts are
    dropped. None for a name that is empty, absolute (``/x``, ``\\x``, a drive such as ``C:``)
    or climbs out with ``..``.
    """
    name = str(name).replace("\\", "/")
    if name.startswith("/") or PurePosixPath(name).is_absolute() or (len(name) > 1 and name[1] == ":"):
        return None
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if not parts or ".." in parts:
        return None
    return parts


def safe_relative_path(name):
    """``name`` as a relative ``Path`` that stays inside its folder (see ``safe_relative_parts``);
    ValueError otherwise."""
    parts = safe_relative_parts(name)
    if parts is None:
        raise ValueError(f"expected a relative path inside the submission; found {name!r}")
    return Path(*parts)


def is_notebook_file_name(name):
    """True for a notebook's plain file name: ``<name>.ipynb``, no folder in it, not hidden.

    A result's notebook names come from a worker (possibly another machine): only such names
    become files in the output folder.
    """
    return (isinstance(name, str) and name.endswith(".ipynb") and not name.startswith(".")
            and "/" not in name and "\\" not in name)


def printable(text):
    """``text`` as a terminal may show it: what is not printable (an escape sequence that clears
    the screen, retitles the window or rewrites earlier lines, a newline or carriage return that
    forges a line, a bidirectional override) as a ``\\x1b``-style escape. For the run's summary and
    ``grades.csv``, which quote names that students chose: their files' names, inside zips too."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)
