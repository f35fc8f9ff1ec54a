"""Tests for cs231n_lib/data.py: fetching CIFAR-10 (from a loopback server only), loading it,
and the offline fallback.

The fixture archive is written here in the real CIFAR-10 format: a gzip tar holding
``cifar-10-batches-py/`` with pickles laid out as Python 2's cPickle wrote them (protocol 2,
byte strings, ``numpy.core.multiarray._reconstruct``), only with fewer images per batch.
No test contacts any host but 127.0.0.1.
"""

import hashlib
import http.server
import importlib.util
import io
import os
import pickle
import signal
import socket
import struct
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import cs231n_lib
from cs231n_lib import data as cdata

IMAGES_PER_BATCH = 24


# ------------------------------------------------------------------------------------------
# A Python-2-style pickle writer (what the real batches are), independent of pickle.dumps
# ------------------------------------------------------------------------------------------

def _py2_pickle(obj):
    out = io.BytesIO()
    out.write(b"\x80\x02")
    _py2_write(out, obj)
    out.write(b".")
    return out.getvalue()


def _py2_write(out, obj):
    if obj is None:
        out.write(b"N")
    elif obj is True or obj is False:
        out.write(b"\x88" if obj else b"\x89")
    elif isinstance(obj, int):
        if 0 <= obj < 256:
            out.write(b"K" + bytes([obj]))
        elif 0 <= obj < 65536:
            out.write(b"M" + struct.pack("<H", obj))
        else:
            out.write(b"J" + struct.pack("<i", obj))
    elif isinstance(obj, (bytes, str)):  # a Python 2 str
        raw = obj.encode("latin1") if isinstance(obj, str) else obj
        if len(raw) < 256:
            out.write(b"U" + bytes([len(raw)]) + raw)
        else:
            out.write(b"T" + struct.pack("<i", len(raw)) + raw)
    elif isinstance(obj, tuple):
        if 1 <= len(obj) <= 3:
            for item in obj:
                _py2_write(out, item)
            out.write({1: b"\x85", 2: b"\x86", 3: b"\x87"}[len(obj)])
        else:
            out.write(b"(")
            for item in obj:
                _py2_write(out, item)
            out.write(b"t")
    elif isinstance(obj, list):
        out.write(b"](")
        for item in obj:
            _py2_write(out, item)
        out.write(b"e")
    elif isinstance(obj, dict):
        out.write(b"}(")
        for key, value in obj.items():
            _py2_write(out, key)
            _py2_write(out, value)
        out.write(b"u")
    elif isinstance(obj, np.ndarray):
        _py2_array_pickle(out, obj)
    else:
        raise TypeError(type(obj))


def _py2_array_pickle(out, array):
    """cPickle's bytes for a uint8 array: _reconstruct(ndarray, (0,), 'b') then its state."""
    assert array.dtype == np.uint8
    out.write(b"cnumpy.core.multiarray\n_reconstruct\n")
    out.write(b"cnumpy\nndarray\n")
    _py2_write(out, (0,))
    _py2_write(out, "b")
    out.write(b"\x87R")
    out.write(b"(")
    _py2_write(out, 1)
    _py2_write(out, tuple(array.shape))
    out.write(b"cnumpy\ndtype\n")
    _py2_write(out, ("u1", 0, 1))
    out.write(b"R")
    _py2_write(out, (3, "|", None, None, None, -1, -1, 0))
    out.write(b"b")
    _py2_write(out, False)
    _py2_write(out, np.ascontiguousarray(array).tobytes())
    out.write(b"tb")


def _py2_batch(data, labels, label):
    """The bytes of one batch file: {'batch_label', 'labels', 'data', 'filenames'}."""
    return _py2_pickle({
        "batch_label": label,
        "labels": [int(v) for v in labels],
        "data": data,
        "filenames": [f"image_{i:05d}.png" for i in range(len(labels))],
    })


def _add_file(tar, name, payload):
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    info.mtime = 1_200_000_000
    tar.addfile(info, io.BytesIO(payload))


def write_cifar_tarball(path, images_per_batch=IMAGES_PER_BATCH, seed=0, extra=()):
    """Write a CIFAR-10-format archive; return the raw rows and labels it holds."""
    rng = np.random.default_rng(seed)
    batches = {}
    for name in cdata.CIFAR10_TRAIN_BATCHES + (cdata.CIFAR10_TEST_BATCH,):
        rows = rng.integers(0, 256, size=(images_per_batch, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, size=images_per_batch)
        batches[name] = (rows, labels)
    with tarfile.open(path, "w:gz") as tar:
        folder = tarfile.TarInfo("cifar-10-batches-py")
        folder.type = tarfile.DIRTYPE
        folder.mode = 0o755
        tar.addfile(folder)
        for name, (rows, labels) in batches.items():
            _add_file(tar, f"cifar-10-batches-py/{name}", _py2_batch(rows, labels, name))
        meta = _py2_pickle({"label_names": list(cdata.CIFAR10_CLASSES),
                            "num_cases_per_batch": images_per_batch})
        _add_file(tar, "cifar-10-batches-py/batches.meta", meta)
        _add_file(tar, "cifar-10-batches-py/readme.html", b"<html>fixture</html>")
        for name, payload in extra:
            _add_file(tar, name, payload)
    return batches


def md5_of(path):
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def image_oracle(row):
    """Row of 3072 bytes -> (3, 32, 32) with explicit loops: red plane, green, blue, row-major."""
    image = np.zeros((3, 32, 32), dtype=np.uint8)
    for c in range(3):
        for y in range(32):
            for x in range(32):
                image[c, y, x] = row[c * 1024 + y * 32 + x]
    return image


@pytest.fixture(scope="module")
def fixture_archive(tmp_path_factory):
    folder = tmp_path_factory.mktemp("archive")
    path = folder / cdata.CIFAR10_ARCHIVE
    batches = write_cifar_tarball(path)
    return path, md5_of(path), batches


@pytest.fixture(scope="module")
def extracted(fixture_archive, tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    path, md5, batches = fixture_archive
    cdata.fetch_cifar10(data_dir=home, source=path, md5=md5, progress=False)
    return home, batches


# ------------------------------------------------------------------------------------------
# Loopback HTTP server
# ------------------------------------------------------------------------------------------

class _Server:
    """Serves registered byte strings on 127.0.0.1; ``mode`` decides how the body ends."""

    def __init__(self):
        self.routes = {}
        self.requests = []
        self.released = threading.Event()  # ends the "hang" mode's wait
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                if self.path not in server.routes:
                    self.send_error(404)
                    return
                payload, mode = server.routes[self.path]
                self.send_response(200)
                self.send_header("Content-Type", "application/gzip")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if mode == "full":
                    self.wfile.write(payload)
                elif mode == "cut":  # the connection drops halfway through the body
                    self.wfile.write(payload[: len(payload) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                elif mode == "stall":  # half the body, then silence
                    self.wfile.write(payload[: len(payload) // 2])
                    self.wfile.flush()
                    time.sleep(1.5)
                elif mode == "hang":  # half the body, then silence until released (or 30 s)
                    self.wfile.write(payload[: len(payload) // 2])
                    self.wfile.flush()
                    server.released.wait(30)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def url(self, path):
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def serve(self, path, payload, mode="full"):
        self.routes[path] = (payload, mode)
        return self.url(path)

    def close(self):
        self.released.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(monkeypatch):
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    s = _Server()
    yield s
    s.close()


def leftovers(home):
    """Anything a failed fetch could leave behind."""
    return sorted(p.name for p in Path(home).iterdir())


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------------------------------
# Fetch
# ------------------------------------------------------------------------------------------

def test_download_verifies_and_extracts(server, fixture_archive, tmp_path, capsys):
    path, md5, batches = fixture_archive
    url = server.serve("/cifar.tar.gz", path.read_bytes())
    target = cdata.fetch_cifar10(data_dir=tmp_path, source=url, md5=md5, progress=False)
    assert target == tmp_path / "cifar-10-batches-py"
    assert server.requests == ["/cifar.tar.gz"]
    assert sorted(p.name for p in target.iterdir()) == sorted(
        list(batches) + ["batches.meta", "readme.html"])
    assert leftovers(tmp_path) == ["cifar-10-batches-py"]  # no .part, no scratch folder
    X, y = cdata.load_CIFAR_batch(target / "data_batch_3")
    rows, labels = batches["data_batch_3"]
    np.testing.assert_array_equal(X[5], image_oracle(rows[5]))
    np.testing.assert_array_equal(y, labels)


def test_second_run_does_nothing(server, fixture_archive, tmp_path, capsys):
    path, md5, _ = fixture_archive
    url = server.serve("/cifar.tar.gz", path.read_bytes())
    target = cdata.fetch_cifar10(data_dir=tmp_path, source=url, md5=md5, progress=False)
    stamp = (target / "data_batch_1").stat().st_mtime_ns
    capsys.readouterr()
    again = cdata.fetch_cifar10(data_dir=tmp_path, source=url, md5=md5, progress=False)
    assert again == target
    assert len(server.requests) == 1
    assert (target / "data_batch_1").stat().st_mtime_ns == stamp
    assert "nothing to do" in capsys.readouterr().out


def test_keep_archive_keeps_a_verified_copy(server, fixture_archive, tmp_path):
    path, md5, _ = fixture_archive
    url = server.serve("/cifar.tar.gz", path.read_bytes())
    cdata.fetch_cifar10(data_dir=tmp_path, source=url, md5=md5, progress=False, keep_archive=True)
    assert md5_of(tmp_path / cdata.CIFAR10_ARCHIVE) == md5
    assert leftovers(tmp_path) == sorted([cdata.CIFAR10_ARCHIVE, "cifar-10-batches-py"])


def test_checksum_mismatch_keeps_nothing(server, fixture_archive, tmp_path):
    path, md5, _ = fixture_archive
    url = server.serve("/cifar.tar.gz", path.read_bytes())
    wrong = "0" * 32
    with pytest.raises(cdata.ChecksumError) as info:
        cdata.fetch_cifar10(data_dir=tmp_path, source=url, md5=wrong, progress=False)
    assert md5 in str(info.value) and wrong in str(info.value)
    assert leftovers(tmp_path) == []


def test_default_checksum_is_the_published_one(server, fixture_archive, tmp_path):
    path, md5, _ = fixture_archive
    assert cdata.CIFAR10_MD5 == "c58f30108f718f92721af3b95e74349a"
    url = server.serve("/cifar.tar.gz", path.read_bytes())
    with pytest.raises(cdata.ChecksumError, match="c58f30108f718f92721af3b95e74349a"):
        cdata.fetch_cifar10(data_dir=tmp_path, source=url, progress=False)
    assert leftovers(tmp_path) == []


def test_connection_cut_midway_keeps_nothing(server, fixture_archive, tmp_path):
    path, md5, _ = fixture_archive
    payload = path.read_bytes()
    url = server.serve("/cut.tar.gz", payload, mode="cut")
    with pytest.raises(cdata.DownloadError) as info:
        cdata.fetch_cifar10(data_dir=tmp_path, source=url, md5=md5, progress=False)
    message = str(info.value)
    assert f"{len(payload) // 2:,} of {len(payload):,} bytes" in message
    assert "Nothing was kept" in message
    assert leftovers(tmp_path) == []


def test_stalled_download_times_out_and_keeps_nothing(server, fixture_archive, tmp_path):
    path, md5, _ = fixture_archive
    url = server.serve("/stall.tar.gz", path.read_bytes(), mode="stall")
    start = time.monotonic()
    with pytest.raises(cdata.DownloadError, match="interrupted after"):
        cdata.fetch_cifar10(data_dir=tmp_path, source=url, md5=md5, progress=False, timeout=0.3)
    assert time.monotonic() - start < 5  # well under the default 10 s: the 0.3 s timeout acted (slack for a loaded CI)
    assert leftovers(tmp_path) == []


def test_ctrl_c_during_download_keeps_nothing(server, fixture_archive, tmp_path, monkeypatch):
    path, md5, _ = fixture_archive
    url = server.serve("/cifar.tar.gz", path.read_bytes())

    class InterruptingBar:
        def __init__(self, *args, **kwargs):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def update(self, n):
            raise KeyboardInterrupt

    monkeypatch.setattr(cdata, "tqdm", InterruptingBar)
    monkeypatch.setattr(cdata, "_CHUNK_BYTES", 1024)
    with pytest.raises(KeyboardInterrupt):
        cdata.fetch_cifar10(data_dir=tmp_path, source=url, md5=md5, progress=False)
    assert leftovers(tmp_path) == []


def _fetch_in_a_process(url, md5, home):
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    # the command line's main(), reading 1 kB at a time so that half the body reaches the file
    code = ("import sys\nfrom cs231n_lib import data\ndata._CHUNK_BYTES = 1024\n"
            "sys.exit(data.main(sys.argv[1:]))")
    return subprocess.Popen(
        [sys.executable, "-c", code, "fetch", "cifar10", "--from", url, "--dir", str(home),
         "--md5", md5, "--quiet", "--timeout", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _wait_for_a_part_file(home, proc, size):
    """Wait until the fetch in ``proc`` has written ``size`` bytes into its .part file (its
    writes are buffered: ask for less than the server sends)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        parts = list(Path(home).glob("*.part"))
        if parts and parts[0].stat().st_size >= size:
            return parts[0]
        time.sleep(0.02)
    proc.kill()
    raise AssertionError(f"no .part file of {size} bytes appeared (fetch: {proc.poll()}, "
                         f"{list(Path(home).iterdir())}, {proc.communicate()})")


def test_sigterm_during_download_keeps_nothing(server, fixture_archive, tmp_path):
    path, md5, _ = fixture_archive
    payload = path.read_bytes()
    url = server.serve("/hang.tar.gz", payload, mode="hang")
    proc = _fetch_in_a_process(url, md5, tmp_path)
    _wait_for_a_part_file(tmp_path, proc, len(payload) // 4)
    proc.terminate()
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGTERM  # it still ends as SIGTERM asked
    assert "partial download and extraction were removed" in err and "Traceback" not in err
    assert leftovers(tmp_path) == []


def test_a_fetch_removes_what_killed_fetches_left_and_nothing_else(server, fixture_archive, tmp_path):
    path, md5, _ = fixture_archive
    payload = path.read_bytes()
    proc = _fetch_in_a_process(server.serve("/hang.tar.gz", payload, mode="hang"), md5, tmp_path)
    part = _wait_for_a_part_file(tmp_path, proc, len(payload) // 4)
    proc.kill()  # SIGKILL: no clean-up possible
    proc.wait()
    assert part.exists()
    scratch = tmp_path / ".cifar-10-batches-py.k2x_9a0q.part"  # an extraction killed midway
    (scratch / "cifar-10-batches-py").mkdir(parents=True)
    (scratch / "cifar-10-batches-py" / "data_batch_1").write_bytes(b"half")
    # not ours: other names, a symbolic link, and the .part of a fetch running now (locked)
    mine = ["cifar-10-python.tar.gz.part", "notes.part", "cifar-10-python.tar.gz.abc.part",
            ".cifar-10-batches-py.part", "data.tar.gz.abcd1234.part"]
    for name in mine:
        (tmp_path / name).write_text("keep me")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "x").write_text("keep me")
    (tmp_path / ".cifar-10-batches-py.linkzzzz.part").symlink_to(tmp_path / "elsewhere")
    running = tmp_path / "cifar-10-python.tar.gz.runn1ng_.part"
    running.write_bytes(b"being downloaded")
    import fcntl

    with open(running, "rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        url = server.serve("/cifar.tar.gz", payload)
        target = cdata.fetch_cifar10(data_dir=tmp_path, source=url, md5=md5, progress=False)
        assert running.read_bytes() == b"being downloaded"
    assert target == tmp_path / "cifar-10-batches-py"
    assert not part.exists() and not scratch.exists()
    assert leftovers(tmp_path) == sorted(mine + ["cifar-10-batches-py", ".cifar-10-batches-py.linkzzzz.part",
                                                 "cifar-10-python.tar.gz.runn1ng_.part", "elsewhere"])
    assert (tmp_path / "elsewhere" / "x").read_text() == "keep me"
    # once nothing holds it, it is a leftover too; even a fetch with nothing to do removes it
    cdata.fetch_cifar10(data_dir=tmp_path, source=url, md5=md5, progress=False)
    assert not running.exists()


def test_http_error_is_named(server, tmp_path):
    with pytest.raises(cdata.DownloadError, match="HTTP 404"):
        cdata.fetch_cifar10(data_dir=tmp_path, source=server.url("/missing"), progress=False)
    assert leftovers(tmp_path) == []


def test_offline_fails_fast_naming_fallback_and_from(tmp_path, monkeypatch):
    url = f"http://127.0.0.1:{closed_port()}/cifar-10-python.tar.gz"
    start = time.monotonic()
    with pytest.raises(cdata.DownloadError) as info:
        cdata.fetch_cifar10(data_dir=tmp_path, source=url, progress=False)
    assert time.monotonic() - start < 5  # no wait for the 10 s timeout: a refused connection fails at once
    message = str(info.value)
    assert url in message and "--from" in message and "handwritten digits" in message
    assert leftovers(tmp_path) == []


def test_silent_server_fails_within_the_timeout(tmp_path):
    # A listener that never answers: the kernel accepts the connection, nobody replies.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/cifar.tar.gz"
        start = time.monotonic()
        with pytest.raises(cdata.DownloadError, match="--from"):
            cdata.fetch_cifar10(data_dir=tmp_path, source=url, progress=False, timeout=0.3)
        assert time.monotonic() - start < 5  # well under the default 10 s: the 0.3 s timeout acted
    assert leftovers(tmp_path) == []


def test_from_local_file_leaves_it_in_place(fixture_archive, tmp_path, capsys):
    path, md5, batches = fixture_archive
    home = tmp_path / "home"
    code = cdata.main(["fetch", "cifar10", "--from", str(path), "--dir", str(home), "--md5", md5,
                       "--quiet"])
    assert code == 0
    assert md5_of(path) == md5  # the user's archive is untouched
    Xtr, Ytr, Xte, Yte = cdata.load_CIFAR10(home / "cifar-10-batches-py")
    np.testing.assert_array_equal(Yte, batches["test_batch"][1])
    assert leftovers(home) == ["cifar-10-batches-py"]


def test_from_folder_holding_the_archive(fixture_archive, tmp_path):
    path, md5, _ = fixture_archive
    target = cdata.fetch_cifar10(data_dir=tmp_path, source=path.parent, md5=md5, progress=False)
    assert (target / "test_batch").is_file()


def test_archive_copied_into_data_home_is_used_without_network(fixture_archive, tmp_path):
    path, md5, _ = fixture_archive
    (tmp_path / cdata.CIFAR10_ARCHIVE).write_bytes(path.read_bytes())
    target = cdata.fetch_cifar10(data_dir=tmp_path, md5=md5, progress=False)
    assert (target / "data_batch_5").is_file()


def test_from_local_file_with_wrong_checksum_keeps_the_file(fixture_archive, tmp_path, capsys):
    path, md5, _ = fixture_archive
    home = tmp_path / "home"
    code = cdata.main(["fetch", "cifar10", "--from", str(path), "--dir", str(home), "--quiet"])
    assert code == 1
    err = capsys.readouterr().err
    assert f"has MD5 {md5}, expected {cdata.CIFAR10_MD5}" in err and "untouched" in err
    assert path.is_file() and leftovers(home) == []


def test_from_missing_file_says_so(tmp_path, capsys):
    code = cdata.main(["fetch", "cifar10", "--from", str(tmp_path / "nope.tar.gz"),
                       "--dir", str(tmp_path)])
    assert code == 1
    assert "No CIFAR-10 archive at" in capsys.readouterr().err


@pytest.mark.parametrize("member", ["../escape", "/abs/file", "cifar-10-batches-py/../../up",
                                    "elsewhere/data"])
def test_unsafe_archive_members_are_refused(tmp_path, member):
    archive = tmp_path / "evil.tar.gz"
    write_cifar_tarball(archive, images_per_batch=2, extra=[(member, b"x")])
    home = tmp_path / "home"
    with pytest.raises(RuntimeError, match="Refusing to extract"):
        cdata.fetch_cifar10(data_dir=home, source=archive, md5=md5_of(archive), progress=False)
    assert leftovers(home) == []
    assert not (tmp_path / "escape").exists() and not (tmp_path / "up").exists()


def test_symlink_member_is_refused(tmp_path):
    archive = tmp_path / "link.tar.gz"
    write_cifar_tarball(archive, images_per_batch=2)
    with tarfile.open(archive, "r:gz") as tar:
        members = [(m, tar.extractfile(m).read() if m.isfile() else None) for m in tar]
    with tarfile.open(archive, "w:gz") as tar:
        for m, payload in members:
            tar.addfile(m, io.BytesIO(payload) if payload is not None else None)
        link = tarfile.TarInfo("cifar-10-batches-py/passwd")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tar.addfile(link)
    home = tmp_path / "home"
    with pytest.raises(RuntimeError, match="Refusing to extract 'cifar-10-batches-py/passwd'"):
        cdata.fetch_cifar10(data_dir=home, source=archive, md5=md5_of(archive), progress=False)
    assert leftovers(home) == []


def test_truncated_archive_with_matching_checksum_keeps_nothing(fixture_archive, tmp_path):
    path, _, _ = fixture_archive
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size * 2 // 3])
    home = tmp_path / "home"
    with pytest.raises(RuntimeError, match="Could not extract"):
        cdata.fetch_cifar10(data_dir=home, source=truncated, md5=md5_of(truncated), progress=False)
    assert leftovers(home) == []


def test_archive_without_the_batches_is_refused(tmp_path):
    archive = tmp_path / "empty.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        _add_file(tar, "cifar-10-batches-py/readme.html", b"hello")
    home = tmp_path / "home"
    with pytest.raises(RuntimeError, match="does not contain data_batch_1"):
        cdata.fetch_cifar10(data_dir=home, source=archive, md5=md5_of(archive), progress=False)
    assert leftovers(home) == []


def test_incomplete_existing_folder_is_reported(tmp_path):
    (tmp_path / "cifar-10-batches-py").mkdir()
    with pytest.raises(RuntimeError, match="Delete that folder"):
        cdata.fetch_cifar10(data_dir=tmp_path, source="http://127.0.0.1:9/x", progress=False)


def test_module_command_line_offline_message(tmp_path):
    url = f"http://127.0.0.1:{closed_port()}/cifar-10-python.tar.gz"
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    result = subprocess.run(
        [sys.executable, "-m", "cs231n_lib.data", "fetch", "cifar10", "--from", url,
         "--dir", str(tmp_path)],
        capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 1
    assert "offline" in result.stderr and "--from" in result.stderr
    assert "Traceback" not in result.stderr


# ------------------------------------------------------------------------------------------
# Load
# ------------------------------------------------------------------------------------------

def test_load_cifar10_matches_the_raw_rows(extracted):
    home, batches = extracted
    Xtr, Ytr, Xte, Yte = cdata.load_CIFAR10(home / "cifar-10-batches-py")
    n = IMAGES_PER_BATCH
    assert Xtr.shape == (5 * n, 3, 32, 32) and Xtr.dtype == np.uint8
    assert Xte.shape == (n, 3, 32, 32) and Yte.dtype == np.int64
    for b, name in enumerate(cdata.CIFAR10_TRAIN_BATCHES):
        rows, labels = batches[name]
        for i in (0, n - 1):
            np.testing.assert_array_equal(Xtr[b * n + i], image_oracle(rows[i]))
        np.testing.assert_array_equal(Ytr[b * n:(b + 1) * n], labels)
    np.testing.assert_array_equal(Xte[3], image_oracle(batches["test_batch"][0][3]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_get_cifar10_data_splits_and_subtracts_the_mean(extracted, dtype):
    home, batches = extracted
    data = cs231n_lib.get_CIFAR10_data(50, 30, 10, dtype=dtype, data_dir=home)
    assert data["source"] == "cifar10"
    assert data["class_names"] == list(cdata.CIFAR10_CLASSES)
    train_rows = np.concatenate([batches[name][0] for name in cdata.CIFAR10_TRAIN_BATCHES])
    train_labels = np.concatenate([batches[name][1] for name in cdata.CIFAR10_TRAIN_BATCHES])
    raw_train = np.stack([image_oracle(r) for r in train_rows[:50]]).astype(np.float64)
    mean = raw_train.mean(axis=0)
    raw_val = np.stack([image_oracle(r) for r in train_rows[50:80]]).astype(np.float64)
    raw_test = np.stack([image_oracle(r) for r in batches["test_batch"][0][:10]]).astype(np.float64)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    for split, raw in (("X_train", raw_train), ("X_val", raw_val), ("X_test", raw_test)):
        assert data[split].dtype == dtype
        np.testing.assert_allclose(data[split], raw - mean, atol=tol)
    np.testing.assert_array_equal(data["y_train"], train_labels[:50])
    np.testing.assert_array_equal(data["y_val"], train_labels[50:80])
    np.testing.assert_array_equal(data["y_test"], batches["test_batch"][1][:10])
    assert abs(data["X_train"].mean()) < 1e-3


def test_get_cifar10_data_without_mean_subtraction_and_with_the_folder_itself(extracted):
    home, batches = extracted
    data = cdata.get_CIFAR10_data(5, 0, 2, subtract_mean=False,
                                  data_dir=home / "cifar-10-batches-py")
    np.testing.assert_array_equal(data["X_train"][4], image_oracle(batches["data_batch_1"][0][4]))
    assert data["X_val"].shape == (0, 3, 32, 32)


def test_environment_variable_chooses_the_data_home(extracted, monkeypatch):
    home, _ = extracted
    monkeypatch.setenv("CS231N_DATA_DIR", str(home))
    assert cdata.data_home() == home
    assert cdata.get_CIFAR10_data(10, 10, 10)["source"] == "cifar10"


@settings(max_examples=15, deadline=None)
@given(num_training=st.integers(1, 100), num_validation=st.integers(0, 20),
       num_test=st.integers(0, IMAGES_PER_BATCH))
def test_split_shapes_follow_the_request(extracted, num_training, num_validation, num_test):
    home, _ = extracted
    data = cdata.get_CIFAR10_data(num_training, num_validation, num_test, data_dir=home)
    for split, n in (("train", num_training), ("val", num_validation), ("test", num_test)):
        assert data[f"X_{split}"].shape == (n, 3, 32, 32)
        assert data[f"y_{split}"].shape == (n,)


def test_too_many_images_requested_names_the_numbers(extracted):
    home, _ = extracted
    with pytest.raises(ValueError, match=r"has 120 training and 24 test images.*110 \+ 20 = 130"):
        cdata.get_CIFAR10_data(110, 20, 5, data_dir=home)
    with pytest.raises(ValueError, match="num_test = 25"):
        cdata.get_CIFAR10_data(10, 10, 25, data_dir=home)


@pytest.mark.parametrize("kwargs, expected", [
    (dict(num_training=0), "num_training must be a positive integer; found 0"),
    (dict(num_validation=-1), "num_validation must be a non-negative integer"),
    (dict(dtype=np.int32), "dtype must be float32 or float64; found int32"),
])
def test_bad_arguments_raise(kwargs, expected, tmp_path):
    with pytest.raises(ValueError, match=expected):
        cdata.get_CIFAR10_data(data_dir=tmp_path, **kwargs)


def _batch_folder(tmp_path, extracted, payload):
    """A copy of the extracted folder whose data_batch_2 is replaced by ``payload``."""
    home, _ = extracted
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for p in (home / "cifar-10-batches-py").iterdir():
        (folder / p.name).write_bytes(p.read_bytes())
    (folder / "data_batch_2").write_bytes(payload)
    return folder


def _good_batch(n=4, labels=None, data=None):
    rng = np.random.default_rng(1)
    rows = rng.integers(0, 256, (n, 3072), dtype=np.uint8) if data is None else data
    return _py2_batch(rows, list(range(n)) if labels is None else labels, "b")


class _Boom:
    def __reduce__(self):
        return (print, ("unpickling ran code",))


@pytest.mark.parametrize("payload, detail", [
    (_good_batch()[:-200], "unpickling failed"),                     # truncated
    (b"<html>404 Not Found</html>", "unpickling failed"),            # a foreign file
    (b"", "unpickling failed (EOFError"),                            # empty
    (pickle.dumps([1, 2, 3], protocol=2), "expected a dict, found list"),
    (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8)}), "keys ['labels'] are missing"),
    (pickle.dumps(_Boom()), "refers to builtins.print"),               # code in the pickle
    (_good_batch(labels=[0, 1, 2, 10]), "labels must lie in 0..9; found 0..10"),
    (_good_batch(labels=[0, 1, 2]), "4 images but labels of shape (3,)"),
    (pickle.dumps({b"data": np.zeros((2, 1024), np.uint8), b"labels": [0, 1]}),
     "found uint8 array of shape (2, 1024)"),
    (pickle.dumps({b"data": np.zeros((2, 3072), np.float32), b"labels": [0, 1]}),
     "found float32 array"),
])
def test_truncated_or_foreign_batches_are_named(tmp_path, extracted, payload, detail):
    folder = _batch_folder(tmp_path, extracted, payload)
    with pytest.raises(ValueError) as info:
        cdata.get_CIFAR10_data(10, 0, 1, data_dir=tmp_path)
    message = str(info.value)
    assert str(folder / "data_batch_2") in message
    assert detail in message
    assert "fetch cifar10" in message


def test_python3_pickles_with_str_keys_also_load(tmp_path):
    rows = np.arange(2 * 3072, dtype=np.int64).astype(np.uint8).reshape(2, 3072)
    path = tmp_path / "batch"
    path.write_bytes(pickle.dumps({"data": rows, "labels": [3, 7]}, protocol=4))
    X, y = cdata.load_CIFAR_batch(path)
    np.testing.assert_array_equal(X[1], image_oracle(rows[1]))
    assert y.tolist() == [3, 7]


def test_incomplete_cifar_folder_is_an_error_not_a_fallback(tmp_path):
    (tmp_path / "cifar-10-batches-py").mkdir()
    with pytest.raises(FileNotFoundError, match="lacks data_batch_1"):
        cdata.get_CIFAR10_data(data_dir=tmp_path)


# ------------------------------------------------------------------------------------------
# Offline fallback
# ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def digits():
    """The bundled digits, with scikit-learn's attribute names."""
    images, labels = cdata.load_digits()
    return type("Digits", (), {"images": images, "target": labels})


def test_bundled_digits_are_scikit_learns():
    """cs231n_lib/digits.npz holds exactly what scikit-learn's load_digits returns, in order."""
    images, labels = cdata.load_digits()
    assert images.shape == (1797, 8, 8) and images.dtype == np.float64
    assert labels.shape == (1797,) and labels.dtype == np.int64
    assert images.min() == 0 and images.max() == 16 and set(labels.tolist()) == set(range(10))
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    reference = sklearn_datasets.load_digits()
    np.testing.assert_array_equal(images, reference.images)
    np.testing.assert_array_equal(labels, reference.target)


def test_bundled_digits_file_is_what_the_script_writes():
    """datasets/make_digits.py regenerates the committed file byte for byte from scikit-learn's copy."""
    script = Path(cdata.__file__).resolve().parent.parent / "datasets" / "make_digits.py"
    if not script.is_file():
        pytest.skip("not a source tree")
    if importlib.util.find_spec("sklearn") is None:
        pytest.skip("scikit-learn's copy of the digits is not installed")
    done = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "up to date" in done.stdout


def test_fallback_works_without_scikit_learn(tmp_path):
    """With scikit-learn and SciPy unimportable, the fallback still loads (and never tries them)."""
    code = f"""
import sys

class Refuse:
    tried = []
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("sklearn", "scipy"):
            Refuse.tried.append(name)
            raise ImportError(f"{{name}} is blocked for this test")
        return None

sys.meta_path.insert(0, Refuse())
import numpy as np
from cs231n_lib import get_CIFAR10_data
data = get_CIFAR10_data(data_dir={str(tmp_path)!r}, subtract_mean=False)
print(data["source"], data["X_train"].shape, data["X_test"].shape, data["y_train"][:5].tolist())
print("tried", Refuse.tried)
try:
    import sklearn.datasets
except ImportError:
    print("the block works")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=dict(os.environ, CS231N_DATA_DIR=""))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert "offline fallback" in lines[0]
    expected = cdata.get_CIFAR10_data(data_dir=tmp_path, subtract_mean=False)["y_train"][:5].tolist()
    assert lines[1] == f"sklearn-digits (offline fallback) (1439, 3, 32, 32) (179, 3, 32, 32) {expected}"
    assert lines[2:] == ["tried []", "the block works"]


def _digit_indices(X, y, digits):
    """Recover which digit image each returned image is, with a check of the label."""
    lookup = {}
    for index, image in enumerate(digits.images):
        lookup.setdefault(image.astype(np.float64).tobytes(), []).append(index)
    found = []
    for image, label in zip(X, y):
        assert np.all(image == image[:1]), "the three channels must be equal"
        blocks = image[0].reshape(8, 4, 8, 4)
        assert np.all(blocks == blocks[:, :1, :, :1]), "each 8x8 pixel must be a 4x4 block"
        small = np.rint(image[0, ::4, ::4].astype(np.float64) * 16 / 255)
        candidates = lookup[small.tobytes()]
        assert label in {int(digits.target[i]) for i in candidates}
        found.append(candidates)
    return found


def test_fallback_returns_real_digits_in_cifar_layout(tmp_path, digits, capsys):
    data = cs231n_lib.get_CIFAR10_data(data_dir=tmp_path, subtract_mean=False)
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 1
    assert "offline fallback" in printed[0] and "fetch cifar10" in printed[0]
    assert "split 1439/179/179 instead of the requested 49000/1000/1000" in printed[0]
    assert data["source"] == "sklearn-digits (offline fallback)"
    assert data["class_names"] == [str(d) for d in range(10)]
    sizes = {"train": 1439, "val": 179, "test": 179}
    indices = []
    for split, n in sizes.items():
        X, y = data[f"X_{split}"], data[f"y_{split}"]
        assert X.shape == (n, 3, 32, 32) and X.dtype == np.float32 and y.dtype == np.int64
        assert 0 <= X.min() and X.max() <= 255
        indices += _digit_indices(X, y, digits)
    # Every digit image is used exactly once across the three splits.
    assert len(indices) == len(digits.images)
    counts = {}
    for candidates in indices:
        counts[tuple(candidates)] = counts.get(tuple(candidates), 0) + 1
    assert all(count == len(key) for key, count in counts.items())
    assert set(data["y_train"].tolist()) == set(range(10))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fallback_honours_small_requests_and_subtracts_the_mean(tmp_path, dtype, capsys):
    data = cdata.get_CIFAR10_data(100, 50, 40, dtype=dtype, data_dir=tmp_path)
    assert "instead of the requested" not in capsys.readouterr().out
    assert [data[f"X_{s}"].shape[0] for s in ("train", "val", "test")] == [100, 50, 40]
    assert all(data[f"X_{s}"].dtype == dtype for s in ("train", "val", "test"))
    np.testing.assert_allclose(data["X_train"].mean(axis=0), 0, atol=1e-3)
    raw = cdata.get_CIFAR10_data(100, 50, 40, subtract_mean=False, dtype=np.float64,
                                 data_dir=tmp_path)
    mean = raw["X_train"].mean(axis=0)
    np.testing.assert_allclose(data["X_val"], raw["X_val"] - mean, atol=1e-3)
    np.testing.assert_array_equal(data["y_test"], raw["y_test"])


def test_fallback_is_deterministic(tmp_path, capsys):
    a = cdata.get_CIFAR10_data(30, 10, 10, data_dir=tmp_path)
    b = cdata.get_CIFAR10_data(30, 10, 10, data_dir=tmp_path)
    np.testing.assert_array_equal(a["X_test"], b["X_test"])
    np.testing.assert_array_equal(a["y_train"], b["y_train"])


def test_fallback_can_be_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m cs231n_lib.data fetch cifar10"):
        cdata.get_CIFAR10_data(data_dir=tmp_path, fallback=False)


def test_default_data_home_is_the_repository_datasets_folder(monkeypatch):
    monkeypatch.delenv("CS231N_DATA_DIR", raising=False)
    repository = Path(cdata.__file__).resolve().parent.parent
    assert cdata.data_home() == repository / "datasets"
