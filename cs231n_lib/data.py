"""Datasets for the ConvNet notebooks: fetch CIFAR-10 once, load it fast, or fall back offline.

Fetch (once, on a machine with internet, or from a copy of the archive)::

    python -m cs231n_lib.data fetch cifar10                      # official address
    python -m cs231n_lib.data fetch cifar10 --from ~/Downloads/cifar-10-python.tar.gz
    python -m cs231n_lib.data fetch cifar10 --from http://mirror.lab/cifar-10-python.tar.gz
    make fetch-cifar10

Load (in a notebook)::

    data = get_CIFAR10_data()          # X_train (49000, 3, 32, 32) float32, y_train (49000,), ...
    print(data["source"])              # "cifar10" or "sklearn-digits (offline fallback)"

Where the data lives: the ``datasets/`` folder of the repository, unless the environment
variable ``CS231N_DATA_DIR`` or a ``data_dir=`` argument says otherwise.

When CIFAR-10 is not there, ``get_CIFAR10_data`` prints one line and returns the handwritten
digits bundled with this package instead (``digits.npz``: UCI's 1797 real 8x8 scans, the copy
scikit-learn also ships, so they work offline), upscaled to 3x32x32 so that models built for
CIFAR-10 run unchanged. ``load_digits()`` gives them at their own size.
"""

import argparse
import codecs
import contextlib
import hashlib
import http.client
import os
import pickle
import re
import shutil
import signal
import sys
import tarfile
import tempfile
import threading
import time
import urllib.error
import urllib.request
import zlib
from pathlib import Path, PurePosixPath

import numpy as np
from tqdm.auto import tqdm

from ._validate import FLOAT_DTYPES, nonnegative_int, positive_int

try:
    import fcntl
except ImportError:  # Windows: no advisory locks (see _remove_stale_parts)
    fcntl = None

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_ARCHIVE = "cifar-10-python.tar.gz"
CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_BATCH = "test_batch"
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)
CIFAR10_SOURCE = "cifar10"
# The name predates the bundled copy (the images were read through scikit-learn); it is kept
# because notebooks and students compare ``data["source"]`` with it.
DIGITS_SOURCE = "sklearn-digits (offline fallback)"
DIGITS_FILE = Path(__file__).resolve().parent / "digits.npz"
DATA_DIR_ENV = "CS231N_DATA_DIR"
FETCH_COMMAND = "python -m cs231n_lib.data fetch cifar10"

_PIXELS_PER_IMAGE = 3 * 32 * 32
_CHUNK_BYTES = 1 << 20
# The temporary entries a fetch makes in the data home (tempfile's 8 random characters): a
# download ``cifar-10-python.tar.gz.<random>.part`` and an extraction folder
# ``.cifar-10-batches-py.<random>.part``. Nothing else is ever removed as a leftover.
_PART_NAMES = re.compile(
    rf"^(?:{re.escape(CIFAR10_ARCHIVE)}|\.{re.escape(CIFAR10_FOLDER)})\.[a-z0-9_]{{8}}\.part$")
# Without advisory locks (Windows), a leftover is one untouched for this long.
_STALE_SECONDS_WITHOUT_LOCKS = 24 * 3600


class DownloadError(RuntimeError):
    """The archive could not be downloaded completely (no network, server error, cut connection)."""


class ChecksumError(DownloadError):
    """The archive's MD5 is not the expected one (corrupt or different file)."""


# ---------------------------------------------------------------------------------------------
# Where the data lives
# ---------------------------------------------------------------------------------------------

def data_home(data_dir=None):
    """Return the folder that holds the datasets.

    Inputs:
    - data_dir: explicit folder, or None to use ``$CS231N_DATA_DIR``, else the repository's
      ``datasets/`` folder (editable install), else ``~/.cache/cs231n_lib/datasets``.

    Returns a ``pathlib.Path`` (the folder may not exist yet).
    """
    if data_dir is not None:
        return Path(data_dir).expanduser()
    from_env = os.environ.get(DATA_DIR_ENV)
    if from_env:
        return Path(from_env).expanduser()
    repository = Path(__file__).resolve().parent.parent
    # Only trust the source tree of an editable install: next to a wheel install the parent is
    # site-packages, where "datasets" is another package's name.
    if (repository / "pyproject.toml").is_file() and (repository / "datasets").is_dir():
        return repository / "datasets"
    return Path.home() / ".cache" / "cs231n_lib" / "datasets"


def cifar10_folder(data_dir=None):
    """Return the ``cifar-10-batches-py`` folder under the data home.

    ``data_dir`` may also name that folder itself (as CS231n's ``cifar10_dir`` did).
    """
    home = data_home(data_dir)
    if (home / CIFAR10_TRAIN_BATCHES[0]).is_file():
        return home
    return home / CIFAR10_FOLDER


def _missing_files(folder, names):
    return [name for name in names if not (folder / name).is_file()]


# ---------------------------------------------------------------------------------------------
# Fetch
# ---------------------------------------------------------------------------------------------

def fetch_cifar10(data_dir=None, source=None, md5=CIFAR10_MD5, timeout=10.0, progress=True,
                  keep_archive=False):
    """Download, verify and extract CIFAR-10 (python version) into the data home.

    Idempotent: when the extracted folder is already complete, nothing is downloaded. Safe: the
    download goes to a temporary ``.part`` file and the extraction to a temporary folder that is
    renamed into place only when complete; on any failure (or Ctrl-C, or SIGTERM) both are
    removed. A fetch killed outright (SIGKILL, power loss) cannot clean up: its ``.part`` entries
    are removed by the next fetch, which starts by deleting those of earlier runs (only the two
    names a fetch makes, and never one that a fetch running now holds locked).

    While it runs in the main thread of a program that left SIGTERM to its default action, a
    SIGTERM is handled like Ctrl-C: the partial files are removed, then the process ends by
    SIGTERM as it would have.

    Inputs:
    - data_dir: data home (see ``data_home``).
    - source: None (use ``<data home>/cifar-10-python.tar.gz`` if present, else the official
      address), a local path to the archive (or a folder holding it), or an http(s)/file URL
      of a mirror.
    - md5: expected MD5 of the archive; the published one by default.
    - timeout: seconds to wait for the server before giving up (connect and each read).
    - progress: show a progress bar while downloading.
    - keep_archive: keep a downloaded archive as ``<data home>/cifar-10-python.tar.gz``.

    Returns the path of the extracted ``cifar-10-batches-py`` folder.
    Raises ``DownloadError`` / ``ChecksumError`` / ``RuntimeError`` with what happened and what to do.
    """
    home = data_home(data_dir)
    home.mkdir(parents=True, exist_ok=True)
    with _sigterm_as_interrupt():
        removed = _remove_stale_parts(home)
        if removed:
            print(f"Removed {len(removed)} unfinished download or extraction left in {home} by an "
                  f"interrupted fetch: {', '.join(removed)}.")
        target = home / CIFAR10_FOLDER
        if target.exists():
            missing = _missing_files(target, CIFAR10_TRAIN_BATCHES + (CIFAR10_TEST_BATCH,))
            if missing:
                raise RuntimeError(
                    f"{target} exists but lacks {', '.join(missing)}. Delete that folder and run "
                    f"`{FETCH_COMMAND}` again.")
            print(f"CIFAR-10 is already in {target}; nothing to do.")
            return target

        archive, is_temporary, lock = _obtain_archive(home, source, md5, timeout, progress, keep_archive)
        try:
            _extract_cifar10(archive, home)
        finally:
            if is_temporary:
                archive.unlink(missing_ok=True)
            _release(lock)
        print(f"CIFAR-10 is ready in {target}.")
        return target


class _Terminated(KeyboardInterrupt):
    """SIGTERM during a fetch, raised like Ctrl-C so that the partial files are removed."""


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """Turn SIGTERM into ``_Terminated`` while the block runs, then end the process by SIGTERM.

    Only in the main thread, and only when SIGTERM has its default action (a program with its
    own handler keeps it).
    """
    if threading.current_thread() is not threading.main_thread() \
            or signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        yield
        return
    received = []

    def handler(signum, frame):
        received.append(signum)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second one must not stop the clean-up
        raise _Terminated()

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if received:
            print("Terminated: the partial download and extraction were removed.", file=sys.stderr)
            sys.stderr.flush()
            os.kill(os.getpid(), signal.SIGTERM)


def _lock_temporary(make, directory=False):
    """Create a temporary entry with ``make()`` and hold an exclusive lock on it.

    Returns ``(path, descriptor)``; the lock lasts until the descriptor is closed (or the process
    dies). The lock tells a running fetch's entries from leftovers (``_remove_stale_parts``); an
    entry that such a clean-up removed between its creation and the lock is made again.
    """
    for _ in range(10):
        made = make()
        fd, path = made if isinstance(made, tuple) else (None, made)
        if fcntl is None:  # no locks to take (Windows, where an open file cannot be deleted)
            _release(fd)
            return Path(path), None
        try:
            if fd is None:
                fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
            fcntl.flock(fd, fcntl.LOCK_EX)
            if os.path.samestat(os.stat(path), os.fstat(fd)):
                return Path(path), fd
        except FileNotFoundError:
            pass
        _release(fd)
    raise RuntimeError(f"Could not create a temporary file in {Path(path).parent}; try again.")


def _release(fd):
    """Close a descriptor from ``_lock_temporary`` (releasing its lock); None is allowed."""
    if fd is not None:
        os.close(fd)


def _remove_stale_parts(home):
    """Delete the ``.part`` entries of earlier, interrupted fetches in ``home``; returns their names.

    Only names a fetch makes (``_PART_NAMES``), only regular files and folders (no symbolic
    link), and never one a running fetch holds locked (without locks: one untouched for a day).
    """
    removed = []
    try:
        entries = sorted(os.scandir(home), key=lambda e: e.name)
    except OSError:
        return removed
    for entry in entries:
        if not _PART_NAMES.match(entry.name):
            continue
        try:
            is_dir = entry.is_dir(follow_symlinks=False)
            if entry.is_symlink() or not (is_dir or entry.is_file(follow_symlinks=False)):
                continue
            if fcntl is None:
                if time.time() - entry.stat(follow_symlinks=False).st_mtime >= _STALE_SECONDS_WITHOUT_LOCKS:
                    _delete(entry.path, is_dir)
                    removed.append(entry.name)
                continue
            fd = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW | (os.O_DIRECTORY if is_dir else 0))
        except OSError:
            continue  # gone already, or not ours to remove
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            _delete(entry.path, is_dir)  # under the lock: a fetch starting now makes a new one
            removed.append(entry.name)
        except OSError:
            continue  # locked: a fetch running now
        finally:
            os.close(fd)
    return removed


def _delete(path, is_dir):
    if is_dir:
        shutil.rmtree(path)
    else:
        os.unlink(path)


def _is_url(source):
    return re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", str(source)) is not None


def _obtain_archive(home, source, md5, timeout, progress, keep_archive):
    """Return (path of a verified archive, whether it is a temporary file to delete after use,
    the descriptor holding the temporary file's lock or None; the caller closes it)."""
    if source is None:
        local_copy = home / CIFAR10_ARCHIVE
        source = local_copy if local_copy.is_file() else CIFAR10_URL
    if not _is_url(source):
        return _verified_local_archive(Path(source).expanduser(), md5), False, None

    part, lock = _lock_temporary(lambda: tempfile.mkstemp(prefix=f"{CIFAR10_ARCHIVE}.", suffix=".part", dir=home))
    try:
        _download(str(source), part, md5, timeout, progress)
        if keep_archive:
            kept = home / CIFAR10_ARCHIVE
            os.replace(part, kept)
            _release(lock)
            return kept, False, None
    except BaseException:
        part.unlink(missing_ok=True)
        _release(lock)
        raise
    return part, True, lock


def _verified_local_archive(path, md5):
    if path.is_dir():
        path = path / CIFAR10_ARCHIVE
    if not path.is_file():
        raise FileNotFoundError(
            f"No CIFAR-10 archive at {path}. Give --from the path of cifar-10-python.tar.gz "
            f"(or of the folder that holds it), or a URL.")
    print(f"Checking the MD5 of {path} ...")
    hasher = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK_BYTES):
            hasher.update(chunk)
    found = hasher.hexdigest()
    if found != md5:
        raise ChecksumError(
            f"{path} has MD5 {found}, expected {md5}: the file is corrupt, incomplete or not the "
            f"CIFAR-10 python archive. It was left untouched; get a fresh copy.")
    return path


def _offline_message(url, reason, home):
    return (
        f"Could not reach {url} ({reason}). This machine seems to be offline. The notebooks still "
        f"run: get_CIFAR10_data() falls back to the kit's bundled handwritten digits when CIFAR-10 is "
        f"absent. To install CIFAR-10 without internet, bring cifar-10-python.tar.gz from another "
        f"machine and run `{FETCH_COMMAND} --from /path/to/cifar-10-python.tar.gz` (or copy it "
        f"into {home} and run `{FETCH_COMMAND}`), or use --from with the URL of a mirror.")


def _download(url, part, md5, timeout, progress):
    """Stream ``url`` into ``part`` while computing its MD5; raise unless complete and correct."""
    try:
        response = urllib.request.urlopen(url, timeout=timeout)
    except urllib.error.HTTPError as e:
        raise DownloadError(
            f"The server at {url} answered HTTP {e.code} {e.reason}. Check the address, or use "
            f"--from with a local copy of cifar-10-python.tar.gz.") from e
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as e:
        reason = getattr(e, "reason", e)
        raise DownloadError(_offline_message(url, reason, part.parent)) from e

    hasher = hashlib.md5()
    received = 0
    with response:
        length = response.headers.get("Content-Length")
        expected = int(length) if length and length.isdigit() else None
        try:
            with open(part, "wb") as f, tqdm(
                    total=expected, unit="B", unit_scale=True, unit_divisor=1024,
                    desc=CIFAR10_ARCHIVE, disable=not progress) as bar:
                while chunk := response.read(_CHUNK_BYTES):
                    f.write(chunk)
                    hasher.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
        except (OSError, http.client.HTTPException) as e:
            raise DownloadError(
                f"The download from {url} was interrupted after {received:,} bytes ({e}). "
                f"Nothing was kept; run the command again.") from e
    if expected is not None and received != expected:
        raise DownloadError(
            f"The connection to {url} closed after {received:,} of {expected:,} bytes. "
            f"Nothing was kept; run the command again.")
    found = hasher.hexdigest()
    if found != md5:
        raise ChecksumError(
            f"The file downloaded from {url} has MD5 {found}, expected {md5}: it is corrupt or not "
            f"the CIFAR-10 python archive. Nothing was kept; try again or use another --from.")


def _check_member(member):
    """Refuse anything but plain files and folders inside ``cifar-10-batches-py/``."""
    path = PurePosixPath(member.name)
    safe = (not path.is_absolute() and ".." not in path.parts and path.parts
            and path.parts[0] == CIFAR10_FOLDER and (member.isfile() or member.isdir()))
    if not safe:
        raise RuntimeError(
            f"Refusing to extract {member.name!r}: the CIFAR-10 archive holds only files under "
            f"{CIFAR10_FOLDER}/. This archive is not the CIFAR-10 python version.")


def _extract_cifar10(archive, home):
    """Extract into a temporary folder, check it, then rename it into place in one step."""
    target = home / CIFAR10_FOLDER
    scratch, lock = _lock_temporary(
        lambda: tempfile.mkdtemp(prefix=f".{CIFAR10_FOLDER}.", suffix=".part", dir=home), directory=True)
    try:
        print(f"Extracting CIFAR-10 into {target} ...")
        try:
            with tarfile.open(archive, "r:gz") as tar:
                members = tar.getmembers()
                for member in members:
                    _check_member(member)
                tar.extractall(scratch, members=members, filter="data")
        except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
            raise RuntimeError(
                f"Could not extract {archive}: {e}. The archive is damaged or not a gzip tar "
                f"file; nothing was kept.") from e
        extracted = scratch / CIFAR10_FOLDER
        missing = _missing_files(extracted, CIFAR10_TRAIN_BATCHES + (CIFAR10_TEST_BATCH,))
        if missing:
            raise RuntimeError(
                f"{archive} does not contain {', '.join(missing)} under {CIFAR10_FOLDER}/; it is "
                f"not the CIFAR-10 python archive. Nothing was kept.")
        try:
            os.rename(extracted, target)
        except OSError:
            # Another process may have finished the same fetch first; its copy is as good.
            if _missing_files(target, CIFAR10_TRAIN_BATCHES + (CIFAR10_TEST_BATCH,)):
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        _release(lock)


# ---------------------------------------------------------------------------------------------
# Load
# ---------------------------------------------------------------------------------------------

# The batches were written by Python 2's cPickle: a dict of byte strings, lists of ints and one
# uint8 array. Unpickling may run code named in the file, so only the names such a file needs
# are allowed; anything else marks a foreign file. NumPy's own rebuild functions are looked up
# from live objects because their module moved between NumPy versions.
_ALLOWED_GLOBALS = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): codecs.encode,
}
for _module in ("numpy.core", "numpy._core"):
    _ALLOWED_GLOBALS[(f"{_module}.multiarray", "_reconstruct")] = np.zeros(0).__reduce__()[0]
    _ALLOWED_GLOBALS[(f"{_module}.multiarray", "scalar")] = np.int64(0).__reduce__()[0]
    _ALLOWED_GLOBALS[(f"{_module}.numeric", "_frombuffer")] = np.zeros(1).__reduce_ex__(5)[0]


class _BatchUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"it refers to {module}.{name}, which a CIFAR-10 batch never does") from None


def _unreadable(path, detail):
    return ValueError(
        f"{path} is not a CIFAR-10 python batch: {detail}. The file may be truncated or foreign; "
        f"delete {Path(path).parent} and run `{FETCH_COMMAND}` again.")


def load_CIFAR_batch(path):
    """Read one CIFAR-10 batch file and check what it holds.

    Inputs:
    - path: a batch file such as ``.../cifar-10-batches-py/data_batch_1``.

    Returns a tuple of:
    - X: uint8 array of shape (N, 3, 32, 32), channels first (N = 10000 in the real batches).
    - y: int64 array of shape (N,), labels in 0..9.
    """
    try:
        with open(path, "rb") as f:
            batch = _BatchUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError, OverflowError, MemoryError) as e:
        raise _unreadable(path, f"unpickling failed ({type(e).__name__}: {e})") from e
    if not isinstance(batch, dict):
        raise _unreadable(path, f"expected a dict, found {type(batch).__name__}")
    batch = {k.encode() if isinstance(k, str) else k: v for k, v in batch.items()}
    missing = [k.decode() for k in (b"data", b"labels") if k not in batch]
    if missing:
        raise _unreadable(path, f"keys {missing} are missing (found {sorted(map(repr, batch))})")

    data = batch[b"data"]
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2
            and data.shape[1] == _PIXELS_PER_IMAGE):
        found = (f"{data.dtype} array of shape {data.shape}" if isinstance(data, np.ndarray)
                 else type(data).__name__)
        raise _unreadable(path, f"'data' must be a uint8 array of shape (N, 3072); found {found}")
    try:
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except (TypeError, ValueError, OverflowError) as e:
        raise _unreadable(path, f"'labels' are not integers ({e})") from e
    if labels.shape != (data.shape[0],):
        raise _unreadable(
            path, f"{data.shape[0]} images but labels of shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise _unreadable(
            path, f"labels must lie in 0..9; found {labels.min()}..{labels.max()}")
    # Each row stores the red, green and blue 32x32 planes one after another: that is NCHW.
    return data.reshape(-1, 3, 32, 32), labels


def load_CIFAR10(root):
    """Load all of CIFAR-10 from its extracted folder.

    Inputs:
    - root: the ``cifar-10-batches-py`` folder.

    Returns a tuple of (all uint8 pixel values, NCHW, unlike CS231n's float NHWC):
    - Xtr: (50000, 3, 32, 32) uint8, Ytr: (50000,) int64, the five training batches in order.
    - Xte: (10000, 3, 32, 32) uint8, Yte: (10000,) int64.
    """
    root = Path(root)
    missing = _missing_files(root, CIFAR10_TRAIN_BATCHES + (CIFAR10_TEST_BATCH,))
    if missing:
        raise FileNotFoundError(
            f"{root} lacks {', '.join(missing)}. Run `{FETCH_COMMAND}` to (re)install CIFAR-10.")
    train = [load_CIFAR_batch(root / name) for name in CIFAR10_TRAIN_BATCHES]
    Xtr = np.concatenate([X for X, _ in train])
    Ytr = np.concatenate([y for _, y in train])
    Xte, Yte = load_CIFAR_batch(root / CIFAR10_TEST_BATCH)
    return Xtr, Ytr, Xte, Yte


def load_digits():
    """The 1797 handwritten digits bundled with cs231n_lib, at their own size.

    They are the test set of UCI's "Optical Recognition of Handwritten Digits" (E. Alpaydin and
    C. Kaynak, 1998, CC BY 4.0), the same images and order as scikit-learn's ``load_digits``:
    each pixel counts the inked dots of a 4x4 block of a 32x32 scan. ``datasets/make_digits.py``
    in the course repository writes the file.

    Returns a tuple of:
    - images: (1797, 8, 8) float64, gray levels 0..16 (0 is background).
    - labels: (1797,) int64, the digit 0..9 each image shows.
    """
    try:
        with np.load(DIGITS_FILE, allow_pickle=False) as bundled:
            images, labels = bundled["images"], bundled["labels"]
    except (OSError, KeyError, ValueError) as e:
        raise RuntimeError(
            f"The bundled digits {DIGITS_FILE} are missing or damaged ({e}); reinstall the kit, "
            f"or run `{FETCH_COMMAND}` to use CIFAR-10.") from e
    return images.astype(np.float64), labels.astype(np.int64)


def _digits_as_cifar():
    """The bundled handwritten digits (``load_digits``) as CIFAR-like images.

    Returns X: (1797, 3, 32, 32) float64 in 0..255, y: (1797,) int64, shuffled with a fixed seed.
    Each 8x8 pixel becomes a 4x4 block (nearest neighbour) and the gray plane is copied to the
    three channels, so that a network built for CIFAR-10's (3, 32, 32) runs unchanged.
    """
    images, labels = load_digits()
    order = np.random.default_rng(0).permutation(len(labels))
    gray = images[order] * (255.0 / 16.0)
    big = np.repeat(np.repeat(gray, 4, axis=1), 4, axis=2)
    return np.repeat(big[:, None], 3, axis=1), labels[order]


def _fallback_sizes(available, num_training, num_validation, num_test):
    """Honour the requested split when it fits, else keep a tenth each for validation and test."""
    if num_training + num_validation + num_test <= available:
        return num_training, num_validation, num_test
    num_validation = min(num_validation, available // 10)
    num_test = min(num_test, available // 10)
    return min(num_training, available - num_validation - num_test), num_validation, num_test


def get_CIFAR10_data(num_training=49000, num_validation=1000, num_test=1000, subtract_mean=True,
                     dtype=np.float32, *, data_dir=None, fallback=True):
    """Load CIFAR-10 split into train / validation / test, ready for a ConvNet.

    The validation images are the ones right after the training images in the training set;
    the test images come from the test batch. Without CIFAR-10 (see ``fetch_cifar10``) and
    with ``fallback=True``, one line is printed and the bundled handwritten digits are
    returned instead in the same layout, upscaled to (3, 32, 32) (see ``_digits_as_cifar``);
    sizes that do not fit its 1797 images are reduced (the printed line says to what).

    Inputs:
    - num_training, num_validation, num_test: number of images in each split.
    - subtract_mean: subtract the mean training image from every split.
    - dtype: np.float32 or np.float64, the dtype of the images.
    - data_dir: data home or the ``cifar-10-batches-py`` folder (see ``data_home``).
    - fallback: when False, raise ``FileNotFoundError`` instead of falling back.

    Returns a dict with:
    - X_train (num_training, 3, 32, 32), y_train (num_training,) int64, likewise X_val, y_val,
      X_test, y_test;
    - class_names: list of the 10 class names, indexed by label;
    - source: "cifar10" or "sklearn-digits (offline fallback)".
    """
    dtype = np.dtype(dtype)
    if dtype not in FLOAT_DTYPES:
        raise ValueError(f"dtype must be float32 or float64; found {dtype}")
    num_training = positive_int("num_training", num_training)
    num_validation = nonnegative_int("num_validation", num_validation)
    num_test = nonnegative_int("num_test", num_test)

    folder = cifar10_folder(data_dir)
    if folder.exists():
        Xtr, ytr, X_test, y_test = load_CIFAR10(folder)
        if num_training + num_validation > len(Xtr) or num_test > len(X_test):
            raise ValueError(
                f"CIFAR-10 in {folder} has {len(Xtr)} training and {len(X_test)} test images; "
                f"asked for num_training + num_validation = {num_training} + {num_validation} = "
                f"{num_training + num_validation} and num_test = {num_test}")
        class_names, source = list(CIFAR10_CLASSES), CIFAR10_SOURCE
    elif fallback:
        X, y = _digits_as_cifar()
        sizes = _fallback_sizes(len(X), num_training, num_validation, num_test)
        reduced = ""
        if sizes != (num_training, num_validation, num_test):
            reduced = (f"; split {sizes[0]}/{sizes[1]}/{sizes[2]} instead of the requested "
                       f"{num_training}/{num_validation}/{num_test}")
        num_training, num_validation, num_test = sizes
        print(f"CIFAR-10 not found in {folder}: using the offline fallback, the kit's "
              f"{len(X)} bundled handwritten digits (8x8 gray, upscaled to 3x32x32){reduced}. "
              f"Run `{FETCH_COMMAND}` to get CIFAR-10.")
        Xtr, ytr = X, y
        X_test = X[num_training + num_validation:num_training + num_validation + num_test]
        y_test = y[num_training + num_validation:num_training + num_validation + num_test]
        class_names, source = [str(digit) for digit in range(10)], DIGITS_SOURCE
    else:
        raise FileNotFoundError(
            f"CIFAR-10 is not in {folder}. Run `{FETCH_COMMAND}` (or `make fetch-cifar10`), set "
            f"{DATA_DIR_ENV}, or pass fallback=True to use the offline digits.")

    end = num_training + num_validation
    data = {
        "X_train": Xtr[:num_training].astype(dtype), "y_train": ytr[:num_training].copy(),
        "X_val": Xtr[num_training:end].astype(dtype), "y_val": ytr[num_training:end].copy(),
        "X_test": X_test[:num_test].astype(dtype), "y_test": y_test[:num_test].copy(),
    }
    if subtract_mean:
        mean_image = data["X_train"].mean(axis=0, dtype=np.float64).astype(dtype)
        for split in ("X_train", "X_val", "X_test"):
            data[split] -= mean_image
    data["class_names"] = class_names
    data["source"] = source
    return data


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------

def main(argv=None):
    """``python -m cs231n_lib.data fetch cifar10 [--from PATH_OR_URL] [--dir DIR]``."""
    parser = argparse.ArgumentParser(
        prog="python -m cs231n_lib.data", description="Fetch the course datasets.")
    commands = parser.add_subparsers(dest="command", required=True)
    fetch = commands.add_parser(
        "fetch", help="download, verify and extract a dataset into the data home")
    fetch.add_argument("dataset", choices=["cifar10"])
    fetch.add_argument("--from", dest="source", metavar="PATH_OR_URL",
                       help="a local cifar-10-python.tar.gz (or its folder) or a mirror URL "
                            "(default: the official address)")
    fetch.add_argument("--dir", dest="data_dir", metavar="DIR",
                       help=f"data home (default: ${DATA_DIR_ENV}, else the repository's datasets/)")
    fetch.add_argument("--md5", default=CIFAR10_MD5,
                       help="expected MD5 of the archive (default: the published one)")
    fetch.add_argument("--timeout", type=float, default=10.0,
                       help="seconds to wait for the server (default: 10)")
    fetch.add_argument("--keep-archive", action="store_true",
                       help="keep the downloaded archive next to the extracted folder")
    fetch.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)

    try:
        fetch_cifar10(data_dir=args.data_dir, source=args.source, md5=args.md5,
                      timeout=args.timeout, progress=not args.quiet,
                      keep_archive=args.keep_archive)
    except KeyboardInterrupt as e:
        if not isinstance(e, _Terminated):  # SIGTERM: said and done by _sigterm_as_interrupt
            print("Interrupted: the partial download and extraction were removed.", file=sys.stderr)
        return 130
    except (RuntimeError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
