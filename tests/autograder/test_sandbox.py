"""The sandboxed kernel: user, hidden folders, environment, limits, clean-up, output caps.

Kernels are real (ipykernel through jupyter_client). Tests that need root (dropping to the
sandbox user, the mount namespace, the process cap) skip elsewhere.
"""

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from autograder import sandbox as sb_mod
from autograder import sandbox_host
from autograder.kit import REPO, grading_kit
from autograder.sandbox import Limits, Sandbox, safe_relative_path, sandbox_protections

pytestmark = pytest.mark.slow
ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="dropping privileges and namespaces need root")


def run(box, code, timeout=30, **kw):
    result = box.execute(code, timeout, **kw)
    assert result.status in ("ok", "error"), (result.status, result.outputs)
    return result


def stdout(result):
    return "".join(o.get("text", "") for o in result.outputs if o["output_type"] == "stream" and o["name"] == "stdout")


@pytest.fixture(scope="module")
def secret_dirs(tmp_path_factory):
    base = tmp_path_factory.mktemp("secrets")
    solutions = base / "solutions"
    solutions.mkdir()
    (solutions / "answers.txt").write_text("the hidden answers")
    os.chmod(base, 0o755)
    return solutions


@pytest.fixture(scope="module")
def box(secret_dirs):
    files = {"conv.ipynb": b"{}", "data/small.txt": b"student data"}
    with Sandbox(files, Limits(nproc=64, fsize_mb=8, memory_mb=3072, disk_mb=64), hidden_paths=[str(secret_dirs)],
                 kit_dir=str(grading_kit(REPO, "convolution"))) as box:
        box.start()
        yield box


def test_working_folder_holds_only_the_students_files(box):
    out = stdout(run(box, "import os\nprint(sorted(os.listdir('.')), open('data/small.txt').read(), os.getcwd())"))
    assert out.startswith("['conv.ipynb', 'data'] student data ")
    assert out.strip().endswith("/work")


@needs_root
def test_kernel_runs_as_an_unprivileged_user(box):
    out = stdout(run(box, "import os\nprint(os.getuid(), os.geteuid(), os.getgid(), os.getgroups())"))
    uid, euid, gid, groups = out.split(" ", 3)
    assert int(uid) == int(euid) == box.uid != 0
    assert int(gid) == box.gid != 0 and groups.strip() == "[]"
    assert pwd.getpwuid(box.uid).pw_name.startswith(sb_mod.SANDBOX_USER_PREFIX)
    assert box.applied["mount_namespace"] is True
    status = stdout(run(box, "print([l for l in open('/proc/self/status') if l.startswith('NoNewPrivs')][0])"))
    assert status.split()[-1] == "1"


@needs_root
def test_hidden_folders_and_other_tmp_files_are_invisible(box, secret_dirs, tmp_path):
    marker = tmp_path / "other-student.txt"
    marker.write_text("another student's file")
    os.chmod(tmp_path, 0o755)
    os.chmod(marker, 0o644)
    code = (f"import os\nfor p in [{str(secret_dirs / 'answers.txt')!r}, {str(marker)!r}, '/root/.bashrc']:\n"
            "    try:\n        open(p).read(); print('READ', p)\n    except OSError as e:\n        print('denied', type(e).__name__)\n"
            f"print(os.listdir({str(secret_dirs)!r}) if os.access({str(secret_dirs)!r}, os.R_OK) else 'no access')")
    out = stdout(run(box, code))
    assert "READ" not in out
    assert out.count("denied") == 3
    # the grader's own files: launch settings and protections are root's
    out = stdout(run(box, f"import os\ntry:\n    open({os.path.join(box.root, 'launch.json')!r}).read(); print('READ')\nexcept OSError:\n    print('denied')"))
    assert out.strip() == "denied"


@pytest.fixture
def stray_copy():
    """A world-readable copy of the solutions outside the course and /tmp (an instructor's checkout)."""
    folder = Path(tempfile.mkdtemp(prefix="cs231n-stray-", dir="/srv" if os.path.isdir("/srv") else "/opt"))
    os.chmod(folder, 0o755)
    (folder / "solutions.ipynb").write_text("BEGIN HIDDEN TESTS")
    os.chmod(folder / "solutions.ipynb", 0o644)
    yield folder
    shutil.rmtree(folder)


@needs_root
def test_folders_outside_the_system_and_the_course_are_invisible(box, stray_copy):
    code = (f"import os\ntry:\n    print('READ', open({str(stray_copy / 'solutions.ipynb')!r}).read())\n"
            "except OSError as e:\n    print('denied', type(e).__name__)\n"
            "print(sorted(os.listdir('/home')) if os.path.isdir('/home') else [])\n"
            "import numpy, matplotlib, cs231n_lib\nprint('imports ok')")
    out = stdout(run(box, code)).splitlines()
    assert out[0] == "denied FileNotFoundError"
    assert out[1] == "[]"
    assert out[2] == "imports ok"
    assert any(h.startswith(str(stray_copy.parent)) for h in box.applied["hidden"])


@needs_root
def test_kernel_has_no_network(box):
    assert box.applied["network_namespace"] is True and box.applied["transport"] == "ipc"
    code = ("import socket\nfor addr in [('127.0.0.1', 22), ('1.1.1.1', 80)]:\n    try:\n"
            "        socket.create_connection(addr, timeout=2); print('connected')\n"
            "    except OSError as e:\n        print('refused', e.errno)")
    out = stdout(run(box, code)).split("\n")
    assert out[:2] == ["refused 101", "refused 101"]  # ENETUNREACH: not even a loopback


# A System V shared memory segment, made and left detached by the kernel (as a student's ctypes can)
SHM_KEY = 0x63733233
MAKE_SEGMENT = f"""
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
print(libc.shmget({SHM_KEY}, 1 << 20, 0o1000 | 0o600))
"""


def host_segments():
    """Keys of the System V shared memory segments of the host's IPC namespace (this process's)."""
    with open("/proc/sysvipc/shm") as fh:
        return {int(line.split()[0]) for line in list(fh)[1:]}


@needs_root
def test_system_v_ipc_is_the_kernels_own_and_ends_with_it(box):
    """A segment a kernel leaves would outlive it and fill the host's memory; in an IPC namespace
    of its own it is out of the host's sight and goes with the kernel."""
    shm_id = int(stdout(run(box, MAKE_SEGMENT)))
    try:
        assert shm_id >= 0 and SHM_KEY not in host_segments()
    finally:  # without the namespace, remove it from the host
        run(box, f"libc.shmctl({shm_id}, 0, None)")
    assert box.applied["ipc_namespace"] is True


def test_environment_is_scrubbed_and_says_nothing_about_grading(box):
    out = stdout(run(box, "import os\nprint(sorted(os.environ))"))
    names = set(eval(out))  # noqa: S307 - our own printed list
    assert not any("NBGRADER" in n or "GRAD" in n.upper() or "CS231N" in n.upper() for n in names)
    assert names <= set(sb_mod.KEPT_ENV) | {
        "HOME", "USER", "IPYTHONDIR", "MPLCONFIGDIR", "JUPYTER_RUNTIME_DIR", "JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR",
        "XDG_CACHE_HOME", "TMPDIR", "MPLBACKEND", "PYTHONDONTWRITEBYTECODE", "NUMBA_CACHE_DIR", "NUMBA_NUM_THREADS",
        "NUMBA_THREADING_LAYER", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "PYTHONHASHSEED", "PYTHONPATH",
        "PYDEVD_USE_FRAME_EVAL", "JPY_PARENT_PID", "JPY_SESSION_NAME", "CLICOLOR", "CLICOLOR_FORCE", "FORCE_COLOR", "PAGER", "GIT_PAGER", "TERM"}  # set by ipykernel itself
    assert stdout(run(box, "print(os.environ['HOME'], os.environ['MPLBACKEND'], os.environ['USER'])")).split() == [
        str(box.home), "Agg", "student"]
    seen = stdout(run(box, "import getpass\nprint(os.getcwd(), getpass.getuser(), *os.environ.values())"))
    assert "grad" not in seen.lower()


def test_resource_limits_apply(box):
    out = stdout(run(box, "import resource as r\nprint([r.getrlimit(getattr(r, n))[0] for n in "
                          "('RLIMIT_AS', 'RLIMIT_FSIZE', 'RLIMIT_CORE', 'RLIMIT_NPROC')])"))
    as_, fsize, core, nproc = eval(out)  # noqa: S307
    assert (as_, fsize, core) == (3072 << 20, 8 << 20, 0)
    if ROOT:
        assert nproc == 64
    out = stdout(run(box, "import numpy as np\ntry:\n    a = np.ones(int(5e8))\n    print('allocated')\nexcept MemoryError:\n    print('MemoryError')"))
    assert out.strip() == "MemoryError"
    out = stdout(run(box, "try:\n    open('big.bin', 'wb').write(b'x' * (9 << 20))\n    print('wrote')\nexcept OSError as e:\n    print('refused', e.errno)"))
    assert out.strip() == "refused 27"  # EFBIG
    assert stdout(run(box, "print('still alive')")).strip() == "still alive"


@needs_root
def test_disk_use_is_capped(box):
    assert os.path.ismount(box.root)
    code = ("import os\nwritten = 0\ntry:\n    for i in range(100):\n        with open(f'f{i}.bin', 'wb') as fh:\n"
            "            fh.write(b'x' * (7 << 20))\n        written += 7\nexcept OSError as e:\n    print(written, e.errno)\n"
            "for i in range(100):\n    if os.path.exists(f'f{i}.bin'):\n        os.remove(f'f{i}.bin')")
    written, errno = map(int, stdout(run(box, code)).split())
    assert written <= 64 and errno == 28  # ENOSPC at the sandbox's 64 MB
    out = stdout(run(box, "import resource as r\nprint(r.getrlimit(r.RLIMIT_CPU)[0])"))
    assert int(out) == 3600


def test_numba_cache_is_a_private_warm_copy(box):
    out = stdout(run(box, "import os\nd = os.environ['NUMBA_CACHE_DIR']\nprint(sum(len(f) for _, _, f in os.walk(d)), os.access(d, os.W_OK))"))
    count, writable = out.split()
    assert int(count) == box.numba_cache_files > 0 and writable == "True"


def test_output_is_capped_per_cell():
    with Sandbox({}, Limits(output_cap_bytes=10_000, flood_bytes=2_000_000)) as box:
        box.start()
        result = run(box, "for i in range(100):\n    print('y' * 999)")
        text = "".join(o.get("text", "") for o in result.outputs)
        assert text.count("y") == 10_000 - text[:10_000].count("\n")
        assert "[output truncated: 90000 more characters not shown]" in text
        flooded = box.execute("import time\nwhile True:\n    print('z' * 100000)\n    time.sleep(0.01)", 30)
        assert flooded.status == "flooded" and flooded.kernel_lost
        assert not box.alive()
        box.restart()
        assert stdout(run(box, "print(1 + 1)")).strip() == "2"
        # one giant burst (buffered by the kernel, sent as messages bigger than the client accepts):
        # caught by the disconnect it causes even when the byte count would allow it
        box.limits.flood_bytes = 1 << 40
        burst = box.execute("for _ in range(200):\n    print('x' * 1_000_000)\nprint('done')", 60)
        assert burst.status == "flooded" and burst.kernel_lost


# Output messages a student's code sends itself on the kernel's output channel, with the right parent
SEND = ("k = get_ipython().kernel\n"
        "k.session.send(k.iopub_socket, {kind!r}, {content!r}, parent=k.get_parent('shell'))\n")


def test_malformed_or_bloated_output_messages_cost_the_kernel_not_the_grader():
    import nbformat

    with Sandbox({}, Limits(output_cap_bytes=10_000, flood_bytes=2_000_000)) as box:
        box.start()
        malformed = [("stream", {"name": "x" * 1000, "text": ["a list"]}), ("stream", {"name": "stdout"}),
                     ("error", {"ename": "E", "evalue": "v", "traceback": 5}), ("display_data", {"data": "text"}),
                     ("execute_result", {"data": {"text/plain": "ok"}, "execution_count": "one"})]
        for kind, content in malformed:
            result = box.execute(SEND.format(kind=kind, content=content), 30)  # raised before
            assert result.status in ("ok", "error") and box.alive(), (kind, content, result.status)
            nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(outputs=[
                nbformat.from_dict(o) for o in result.outputs])])
            nbformat.validate(nb)
        # metadata counts: 3 MB of it per message passes the flood limit (the grader's memory held
        # all of it, with the kernel never stopped)
        bloated = box.execute("from IPython.display import display\nfor _ in range(50):\n"
                              "    display({'text/plain': 'x'}, metadata={'m': 'x' * 3_000_000}, raw=True)", 60)
        assert bloated.status == "flooded" and bloated.kernel_lost


@needs_root
def test_bounded_fork_bomb_is_capped_and_cleaned_up():
    with Sandbox({}, Limits(nproc=40)) as box:
        box.start()
        code = ("import os, time\nmade = failed = 0\nfor _ in range(300):\n    try:\n        pid = os.fork()\n"
                "    except OSError:\n        failed += 1\n        continue\n    if pid == 0:\n        time.sleep(60)\n        os._exit(0)\n"
                "    made += 1\nprint(made, failed)")
        made, failed = map(int, stdout(run(box, code)).split())
        assert made < 40 and failed == 300 - made
        uid = box.uid
        assert len(sandbox_host._processes_of(uid)) >= made
        began = time.perf_counter()
    assert sandbox_host._processes_of(uid) == []
    assert time.perf_counter() - began < 10


@needs_root
def test_escaped_daemons_are_killed_with_the_sandbox():
    with Sandbox({}) as box:
        box.start()
        code = ("import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        time.sleep(120)\n"
                "    os._exit(0)\ntime.sleep(0.5)\nprint('forked')")
        assert stdout(run(box, code)).strip() == "forked"
        uid = box.uid
        box.stop()  # the kernel and its process group are gone; the daemon has its own session
    assert sandbox_host._processes_of(uid) == []


@needs_root
def test_concurrent_sandboxes_get_different_users_and_cannot_see_each_other():
    with Sandbox({"mine.txt": b"a"}) as one, Sandbox({"theirs.txt": b"b"}) as two:
        one.start()
        two.start()
        assert one.uid != two.uid
        out = stdout(run(one, f"import os\nprint(os.path.exists({str(two.work)!r}), os.path.exists({str(one.work)!r}))"))
        assert out.split() == ["False", "True"]


def test_read_untrusted_refuses_links_fifos_and_big_files(box, tmp_path):
    outbox = box.outbox
    target = tmp_path / "secret"
    target.write_text("root only")
    os.symlink(target, outbox / "link.json")
    os.mkfifo(outbox / "fifo.json")
    (outbox / "big.json").write_bytes(b"x" * 2000)
    (outbox / "ok.json").write_bytes(b"{}")
    assert box.read_untrusted(str(outbox / "link.json"), 1000) is None
    assert box.read_untrusted(str(outbox / "fifo.json"), 1000) is None
    assert box.read_untrusted(str(outbox / "big.json"), 1000) is None
    assert box.read_untrusted(str(outbox / "missing.json"), 1000) is None
    assert box.read_untrusted(str(outbox / "ok.json"), 1000) == b"{}"


def test_kernel_cannot_write_the_input_folder(box):
    path, _, _, _ = box.new_exchange()
    out = stdout(run(box, f"try:\n    open({path!r}, 'w').write('x'); print('wrote')\nexcept OSError:\n    print('refused')"))
    assert out.strip() == ("refused" if ROOT else "wrote")


def test_protections_report():
    p = sandbox_protections()
    assert set(p) >= {"unprivileged_user", "mount_namespace", "rlimits", "process_cap", "network", "notes"}
    assert p["unprivileged_user"] is ROOT
    assert ("isolated: own network namespace" in p["network"]) is ROOT


def test_limits_and_paths_are_validated():
    assert Limits.coerce({"memory_mb": 100}).memory_mb == 100
    with pytest.raises(ValueError, match="unknown Limits fields"):
        Limits.coerce({"memroy_mb": 1})
    for bad in ("../x", "/etc/passwd", "a/../../b", ""):
        with pytest.raises(ValueError, match="relative path"):
            safe_relative_path(bad)
    assert str(safe_relative_path("a/./b.txt")) == "a/b.txt"


def test_without_root_or_user_namespaces_the_sandbox_degrades_and_says_so(monkeypatch):
    monkeypatch.setattr(sandbox_host, "is_root", lambda: False)
    monkeypatch.setattr(sandbox_host, "_PROBE", None)
    monkeypatch.setattr(sandbox_host, "_USERNS_REFUSAL", ())
    monkeypatch.setenv(sb_mod.NO_USERNS_ENV, "1")
    p = sandbox_protections()
    assert p["mode"] == "none"
    assert p["unprivileged_user"] is False and p["mount_namespace"] is False and p["process_cap"] is False
    assert any(n.startswith("NO ISOLATION: not root and user namespaces are switched off") for n in p["notes"])
    assert "not isolated" in p["network"]
    with Sandbox({"a.txt": b"x"}, Limits(memory_mb=2048)) as box:
        box.start()
        assert box.uid is None and box.applied["transport"] == "tcp"
        assert box.applied["mount_namespace"] is False and "RLIMIT_NPROC" not in box.applied["rlimits"]
        out = stdout(run(box, "import os, resource\nprint(os.listdir('.'), resource.getrlimit(resource.RLIMIT_AS)[0])"))
        assert out.strip() == f"['a.txt'] {2048 << 20}"
    monkeypatch.setattr(sandbox_host, "_PROBE", None)  # the next caller probes the real host again
    monkeypatch.setattr(sandbox_host, "_USERNS_REFUSAL", ())


@needs_root
def test_a_hidden_path_holding_the_interpreter_is_refused_not_fatal():
    repo = os.path.dirname(os.path.dirname(sb_mod.__file__))
    with Sandbox({}, hidden_paths=[repo], kit_dir=str(grading_kit(REPO, "convolution"))) as box:
        box.start()
        assert box.applied["hidden"][0].startswith(f"NOT {repo}")
        assert stdout(run(box, "import cs231n_checks.kernel_side\nprint('ok')")).strip() == "ok"


def test_the_kernel_imports_the_student_kit_and_not_the_repository(box):
    """The kernel's cs231n_lib is the kit's student build (answers of the open assignment are
    stubs); the repository's library, checks and grader are not importable."""
    code = ("import cs231n_lib, cs231n_checks\nprint(cs231n_lib.__file__.startswith(cs231n_checks.__file__.rsplit('/', 2)[0]))\n"
            "try:\n    cs231n_lib.conv_forward(None, None, None, None)\nexcept NotImplementedError as e:\n    print('withheld')\n"
            "try:\n    import autograder.checks\nexcept ImportError:\n    print('no grader')\n")
    assert stdout(run(box, code)).splitlines() == ["True", "withheld", "no grader"]


@needs_root
def test_without_a_mount_namespace_hidden_folders_are_closed_to_the_sandbox_users():
    tmp_path = Path(tempfile.mkdtemp(prefix="cs231n-course-", dir="/srv" if os.path.isdir("/srv") else "/opt"))
    course = tmp_path / "course"
    (course / "solutions").mkdir(parents=True)
    (course / "solutions" / "answers.txt").write_text("the hidden answers")
    for p in (tmp_path, course, course / "solutions", course / "solutions" / "answers.txt"):
        os.chmod(p, 0o755)
    uid, gid = sandbox_host._ensure_user(sb_mod.SANDBOX_USER_PREFIX + "0")
    as_sandbox_user = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "cat",
                       str(course / "solutions" / "answers.txt")]
    assert subprocess.run(as_sandbox_user, capture_output=True, text=True).stdout == "the hidden answers"
    sandbox_host.close_to_others([str(course / "solutions")])
    denied = subprocess.run(as_sandbox_user, capture_output=True, text=True)
    assert denied.returncode != 0 and "Permission denied" in denied.stderr
    assert os.stat(course / "solutions").st_mode & 0o777 == 0o750
    assert (course / "solutions" / "answers.txt").read_text() == "the hidden answers"  # the grader still reads it
    shutil.rmtree(tmp_path)


@needs_root
def test_a_sandbox_folder_is_closed_to_the_other_slot_users():
    """work/, home/ and out/ are 0700: without a mount namespace, a concurrent kernel (another
    slot's user) could otherwise read a student's files through the predictable path."""
    files = {"conv.ipynb": b'{"answer": "mine"}', "data/small.txt": b"student data"}
    with Sandbox(files, Limits(disk_mb=16)) as box:
        other = sb_mod.SANDBOX_USER_PREFIX + str((int(box.user[len(sb_mod.SANDBOX_USER_PREFIX):]) + 1) % sb_mod.MAX_SLOTS)
        ouid, ogid = sandbox_host._ensure_user(other)
        (box.outbox / "case-1.npz").write_bytes(b"outputs")
        (box.home / "notes.txt").write_text("home")

        def as_user(uid, gid, *cmd):
            return subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", *cmd],
                                  capture_output=True, text=True)

        for folder in (box.work, box.home, box.outbox):
            assert os.stat(folder).st_mode & 0o777 == 0o700, folder
            assert os.stat(folder).st_uid == box.uid
        assert as_user(box.uid, box.gid, "cat", str(box.work / "conv.ipynb")).stdout == '{"answer": "mine"}'
        for cmd in (["cat", str(box.work / "conv.ipynb")], ["cat", str(box.work / "data" / "small.txt")],
                    ["ls", str(box.work)], ["ls", str(box.home)], ["cat", str(box.home / "notes.txt")],
                    ["ls", str(box.outbox)], ["cat", str(box.outbox / "case-1.npz")]):
            denied = as_user(ouid, ogid, *cmd)
            assert denied.returncode != 0 and "Permission denied" in denied.stderr, (cmd, denied)
