"""The student's kernel: a real Jupyter kernel behind every protection the host allows.

One ``Sandbox`` holds one student's kernel for one assignment. Its folder (``root``) is fresh::

    root/            root-owned, 0711: the sandbox user cannot rename or add anything here;
                     when root, a tmpfs of ``Limits.disk_mb`` at <tmp>/cs231n-sbx/<user>
      launch.json    launch settings (read by the wrapper as root, 0600)
      protections.json  what the wrapper actually applied (written as root before dropping)
      kernels/       the kernelspec whose argv is the wrapper (``python -m autograder.sandbox_launcher``)
      work/          the kernel's working folder: only this student's files (sandbox user, 0700)
      home/          HOME, IPython and Matplotlib settings, the private Numba cache (sandbox user, 0700)
      in/            case inputs written by the trusted side (root-owned, read-only to the kernel)
      out/           case outputs written by the kernel (sandbox user, 0700); read back with care

The kernel's argv is the wrapper, ``sandbox_launcher``, which applies the protections that
``sandbox_host`` found this host gives (see there) and ``exec``s ipykernel. This module is the
grader's side: it prepares the folder, starts and restarts the kernel through jupyter_client,
runs code in it with time and output caps, and exchanges arrays with it through files, reading
what the kernel wrote with care (``read_untrusted``).

The grader talks to the kernel over Unix sockets (jupyter_client's ipc transport, in the
sandbox's home folder) when the kernel has a network namespace of its own. Measured here: 40 of
40 starts, about 1 s each, like TCP; the user-namespace path starts within 3% of the root path
(``benchmarks/sandbox_start.py``). Without isolation (or with ``Limits.isolate_network=False``, or
when ipc starts fail) the kernel uses TCP on localhost and its network is not isolated;
``applied["network_namespace"]`` says which.
"""

import contextlib
import json
import os
import queue
import secrets
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .files import safe_relative_path, write_atomic
from .limits import Limits, launch_settings
from .sandbox_host import chown_tree, claim_slot, close_to_others, kill_user_processes, sandbox_protections
from .sandbox_launcher import MS_NODEV, MS_NOSUID, check_libc, load_libc, mount

# Environment variables passed to the kernel (values from the grader's environment when set).
KEPT_ENV = ("PATH", "LANG", "LC_ALL", "TZ")


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


def _output(msg_type, content):
    """The nbformat output dict of one output message, made of what nbformat allows only.

    The message comes from the kernel, whose code can send any JSON on its output channel with
    the right parent (a stream whose text is a list, a traceback that is a number, a 40 MB stream
    name): text fields become strings (a malformed one empty), an error's fields are capped, and
    data and metadata stay only when they are JSON objects."""
    def text(value, cap=None):
        return (value if isinstance(value, str) else "")[:cap]

    if msg_type == "stream":
        return {"output_type": "stream", "name": "stderr" if content.get("name") == "stderr" else "stdout",
                "text": text(content.get("text"))}
    if msg_type == "error":
        traceback = content.get("traceback")
        return {"output_type": "error", "ename": text(content.get("ename"), 1000),
                "evalue": text(content.get("evalue"), 10000),
                "traceback": [text(t, 10000) for t in traceback[:100]] if isinstance(traceback, list) else []}
    out = {"output_type": msg_type, "data": content.get("data") if isinstance(content.get("data"), dict) else {},
           "metadata": content.get("metadata") if isinstance(content.get("metadata"), dict) else {}}
    if msg_type == "execute_result":
        count = content.get("execution_count")
        out["execution_count"] = count if type(count) is int else None
    return out


def _output_bytes(output):
    """The size of an output: its text, or all of it (data, metadata and their keys) as JSON."""
    if output["output_type"] == "stream":
        return len(output["text"])
    return len(json.dumps(output, default=str))


class _Collector:
    """Keeps up to ``cap`` bytes of output, in nbformat output dicts."""

    def __init__(self, cap):
        self.cap, self.kept, self.seen, self.dropped = cap, 0, 0, 0
        self.outputs = []

    def add(self, msg_type, content):
        """Keep (within the cap) the output message ``msg_type`` ("stream", "display_data",
        "execute_result" or "error") with ``content`` (a dict); returns its output dict."""
        out = _output(msg_type, content)
        size = _output_bytes(out)
        self.seen += size
        if self.kept + size > self.cap:
            if msg_type != "stream" or self.kept >= self.cap:
                self.dropped += size
                return out
            room = self.cap - self.kept
            self.dropped += size - room
            out, size = dict(out, text=out["text"][:room]), room
        self.kept += size
        last = self.outputs[-1] if self.outputs else None
        if msg_type == "stream" and last and last["output_type"] == "stream" and last["name"] == out["name"]:
            last["text"] += out["text"]
        else:
            self.outputs.append(dict(out))
        return out

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
        self._slot_fd, self.user, self.uid, self.gid = claim_slot()
        self._kill_user_processes()  # leftovers of a grader killed mid-task

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
            load_libc().umount2(str(path).encode(), 2)
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(mode=0o711)
        self.root = str(path)
        try:
            mount(load_libc(), "tmpfs", self.root, "tmpfs", MS_NOSUID | MS_NODEV,
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
                chown_tree(d, self.uid, self.gid)
            if not self.protections["mount_namespace"]:
                close_to_others(self.hidden_paths)
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
            **launch_settings(self.limits),
            "uid": self.uid, "gid": self.gid, "user": self.user,
            "transport": "tcp", "userns": self.protections["mode"] == "user_namespace", "out": str(self.outbox),
        }
        self.launch = launch
        self.ipc_prefix = str(self.home / "k")
        self.use_ipc = bool(self.protections["mount_namespace"] and self.limits.isolate_network
                            and len(self.ipc_prefix) < 80)
        self._write_launch("ipc" if self.use_ipc else "tcp")
        spec = {"argv": [sys.executable, "-m", "autograder.sandbox_launcher", str(root), "{connection_file}"],
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
        kill_user_processes(self.uid, self.gid)

    def close(self):
        self.stop()
        if self.root is not None:
            if self._mounted:
                with contextlib.suppress(OSError):
                    check_libc(load_libc().umount2(self.root.encode(), 2), f"umount {self.root}")
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
            parent, content = msg.get("parent_header"), msg.get("content")
            if not (isinstance(parent, dict) and parent.get("msg_id") == msg_id and isinstance(content, dict)):
                continue  # another request's, or malformed: the kernel's code can send anything
            kind = msg.get("msg_type")
            if kind == "status" and content.get("execution_state") == "idle":
                idle = time.perf_counter()
            elif kind in ("stream", "display_data", "execute_result", "error"):
                out = collector.add(kind, content)
                if kind == "error":
                    error = {key: out[key] for key in ("ename", "evalue", "traceback")}
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
            parent, content = msg.get("parent_header"), msg.get("content")
            if isinstance(parent, dict) and parent.get("msg_id") == msg_id:
                return content if isinstance(content, dict) else {"status": "unknown"}

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
