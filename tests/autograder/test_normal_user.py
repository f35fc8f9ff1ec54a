"""The grader run by a normal user (an instructor's laptop, a JupyterHub server, CI without root):
each kernel is isolated by user, mount, network and PID namespaces; where the host gives none,
``autograde`` refuses unless ``--weak-sandbox`` is given.

CI runs as root, so these tests create a normal user and run the real grader as that user
(``normal_user``). Real kernels, real namespaces, a real course folder and output folder that the
user owns. The fork bomb is bounded (300 forks against a cap of 40).
"""

import csv
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

import normal_user
import toycourse
from autograder import batch, cli
from autograder import sandbox as sb_mod
from autograder import sandbox_host

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
_WHY_NOT = normal_user.available()
needs_user_namespaces = pytest.mark.skipif(_WHY_NOT is not None, reason=str(_WHY_NOT))
MARK = "PWNED" + "-" + str(6 * 7)  # written by the writer; appears in no source


# ------------------------------------------------------------------------------------------
# One kernel, probed from the inside

KERNEL_PROBE = r'''
import json, os, socket, subprocess, sys, time
from autograder.sandbox import Limits, Sandbox

cfg = json.loads(sys.argv[1])
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen()
cfg["port"] = listener.getsockname()[1]


def mine():
    """Pids of this user's processes (from the host's /proc), apart from this script's own chain."""
    found = set()
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.stat(f"/proc/{name}").st_uid == os.getuid():
                    state = open(f"/proc/{name}/stat").read().rsplit(")", 1)[1].split()[0]
                    if state not in ("Z", "X"):
                        found.add(int(name))
            except (OSError, IndexError):
                pass
    return found


def run(box, code, timeout=120):
    r = box.execute(code, timeout)
    text = "".join(o.get("text", "") for o in r.outputs if o["output_type"] == "stream")
    return {"status": r.status, "out": text, "error": r.error and r.error["evalue"]}


INSIDE = """
import ctypes, errno, json, os, socket
cfg = json.loads(%r)
seen = {}
def attempt(key, fn):
    try:
        fn()
        seen[key] = "DONE"
    except OSError as e:
        seen[key] = errno.errorcode.get(e.errno, str(e.errno))
for p in cfg["secret_files"]:
    attempt("read " + p, lambda p=p: open(p, "rb").read())
for p in cfg["write_files"]:
    attempt("append " + p, lambda p=p: open(p, "ab").write(b"x"))
for d in cfg["write_dirs"]:
    attempt("create in " + d, lambda d=d: open(os.path.join(d, "pwned.txt"), "w").write("x"))
names = set(cfg["secret_names"])
found = []
for top in ("/",):
    for folder, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if os.path.join(folder, d) not in ("/proc", "/sys", "/dev")]
        found += [os.path.join(folder, f) for f in files if f in names]
seen["found"] = found
attempt("connect", lambda: socket.create_connection(("127.0.0.1", cfg["port"]), timeout=3))
libc = ctypes.CDLL(None, use_errno=True)
seen["nested_userns"] = libc.unshare(0x10000000) == 0
seen["shm_id"] = libc.shmget(0x63733234, 1 << 20, 0o1000 | 0o600)  # a System V segment, left detached
status = open("/proc/self/status").read()
seen["cap_eff"] = status.split("CapEff:")[1].split()[0]
seen["no_new_privs"] = status.split("NoNewPrivs:")[1].split()[0]
seen["pid"] = os.getpid()
seen["processes"] = len([p for p in os.listdir("/proc") if p.isdigit()])
open("mine.txt", "a").write("more")
seen["work_folder"] = open("mine.txt").read()
import numpy as np
seen["numpy"] = float(np.arange(10.0).sum())
print(json.dumps(seen))
"""

BOMB = """
import os, time
made = failed = 0
for _ in range(300):
    try:
        pid = os.fork()
    except OSError:
        failed += 1
        continue
    if pid == 0:
        time.sleep(60)
        os._exit(0)
    made += 1
print(made, failed)
"""

report = {}
before = mine()
with Sandbox({"mine.txt": b"x"}, Limits(nproc=40), hidden_paths=cfg["hidden"], visible_paths=cfg["visible"]) as box:
    report["start_seconds"] = box.start()
    report["applied"] = box.applied
    cfg["write_files"] += [os.path.join(box.root, "launch.json"), os.path.join(box.root, "protections.json")]
    cfg["write_dirs"] += [str(box.inbox), box.root]
    report["inside"] = run(box, INSIDE % json.dumps(cfg))
    report["host_shm_keys"] = [int(line.split()[0]) for line in list(open("/proc/sysvipc/shm"))[1:]]
    report["bomb"] = run(box, BOMB)
    report["kernel_processes_during_bomb"] = len(mine() - before)
    # the grader's own user still starts processes while the bomb's children are alive
    report["grader_starts"] = sum(subprocess.run(["/bin/true"]).returncode == 0 for _ in range(50))
    box.stop()
    # the PID namespace's processes are killed with it; on a loaded machine the kernel takes a
    # moment to reap them, so wait up to 10 s before calling one left behind
    for _ in range(100):
        left = sorted(mine() - before)
        if not left:
            break
        time.sleep(0.1)
    report["left_after_stop"] = left
print(json.dumps(report))
'''


@pytest.fixture(scope="module")
def stray_copy():
    """A world-readable copy of the solutions outside the course and /tmp (another checkout)."""
    folder = Path(tempfile.mkdtemp(prefix="cs231n-stray-", dir="/srv" if os.path.isdir("/srv") else "/opt"))
    os.chmod(folder, 0o755)
    (folder / "stray-solutions.ipynb").write_text("BEGIN HIDDEN TESTS")
    os.chmod(folder / "stray-solutions.ipynb", 0o644)
    yield folder
    shutil.rmtree(folder)


@needs_user_namespaces
def test_a_normal_users_kernel_sees_nothing_writes_nothing_reaches_no_network_and_cannot_fork_bomb(stray_copy):
    base = normal_user.user_folder()
    _, _, home = normal_user.ensure_user()
    files = {
        "course/solutions/toy/toy.ipynb": "BEGIN HIDDEN TESTS",
        "course/assignments/toy/toy.ipynb": "{}",
        "out/gradebook.db": "the gradebook",
        "out/.cache/0123.json": "{}",
        "subs/bob/toy/toy.ipynb": "bob's notebook",
    }
    for rel, text in files.items():
        (base / rel).parent.mkdir(parents=True, exist_ok=True)
        (base / rel).write_text(text)
    home_copy = Path(home) / "kit-copy" / "solutions"
    home_copy.mkdir(parents=True, exist_ok=True)
    (home_copy / "home-solutions.ipynb").write_text("BEGIN HIDDEN TESTS")
    normal_user.chown_tree(base)
    normal_user.chown_tree(Path(home) / "kit-copy")
    cfg = {
        "hidden": [str(base / "course" / "solutions"), str(base / "out"), str(base / "subs")],
        "visible": [str(base / "course" / "assignments")],
        "secret_files": [str(base / "course/solutions/toy/toy.ipynb"), str(base / "out/gradebook.db"),
                         str(base / "subs/bob/toy/toy.ipynb"), str(home_copy / "home-solutions.ipynb"),
                         str(stray_copy / "stray-solutions.ipynb")],
        "secret_names": ["0123.json", "home-solutions.ipynb", "stray-solutions.ipynb"],
        "write_files": [str(base / "out/gradebook.db"), str(base / "out/.cache/0123.json"),
                        str(base / "subs/bob/toy/toy.ipynb"), str(base / "course/assignments/toy/toy.ipynb")],
        "write_dirs": [str(base / "out"), str(base / "out/.cache"), str(base / "subs/bob/toy"),
                       str(base / "course/assignments/toy"), str(home_copy)],
    }
    try:
        done = normal_user.python_as_user(KERNEL_PROBE.replace("sys.argv[1]", repr(json.dumps(cfg))), timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        report = json.loads(done.stdout.strip().splitlines()[-1])
        applied = report["applied"]
        assert applied["mode"] == "user_namespace" and applied["uid"] != 0
        assert applied["user_namespace"] and applied["pid_namespace"] and applied["mount_namespace"]
        assert applied["network_namespace"] and applied["transport"] == "ipc"
        assert applied["process_cap"] and applied["rlimits"]["RLIMIT_NPROC"] == 40
        assert applied["errors"] == [] and applied["read_only_mounts"] > 5

        assert report["inside"]["status"] == "ok", report["inside"]
        seen = json.loads(report["inside"]["out"])
        # the solutions (in the course, in the user's home, elsewhere on disk), the gradebook and
        # another student's notebook: not there at all
        for path in cfg["secret_files"]:
            assert seen["read " + path] == "ENOENT", (path, seen["read " + path])
        assert seen["found"] == []
        # nothing outside the kernel's own folders can be written, even what the user owns
        for path in cfg["write_files"] + cfg["write_dirs"]:
            key = ("append " if path in cfg["write_files"] else "create in ") + path
            assert seen[key] in ("ENOENT", "EROFS"), (key, seen[key])
        assert seen["append " + str(base / "course/assignments/toy/toy.ipynb")] == "EROFS"
        assert seen["create in " + str(base / "course/assignments/toy")] == "EROFS"
        for key in [k for k in seen if "launch.json" in k or "protections.json" in k or k.endswith("/in")]:
            assert seen[key] == "EROFS", key
        assert seen["connect"] == "ENETUNREACH"
        assert seen["nested_userns"] is False
        # the kernel's System V IPC is its own: out of the host's sight, gone with the kernel
        assert seen["shm_id"] >= 0 and 0x63733234 not in report["host_shm_keys"] and applied["ipc_namespace"]
        assert seen["cap_eff"] == "0000000000000000" and seen["no_new_privs"] == "1"
        assert seen["pid"] == 2 and seen["processes"] <= 3  # its init, itself and `ls`-like helpers
        assert seen["work_folder"] == "xmore" and seen["numpy"] == 45.0
        assert (base / "out/gradebook.db").read_text() == "the gradebook"
        assert sorted(p.name for p in (base / "out").iterdir()) == [".cache", "gradebook.db"]

        made, failed = map(int, report["bomb"]["out"].split())
        assert made < 40 and failed == 300 - made
        assert report["kernel_processes_during_bomb"] >= made
        assert report["grader_starts"] == 50
        assert report["left_after_stop"] == []
        assert report["start_seconds"] < 30
    finally:
        shutil.rmtree(base, ignore_errors=True)
        shutil.rmtree(Path(home) / "kit-copy", ignore_errors=True)


# ------------------------------------------------------------------------------------------
# A class graded by the normal user: refusal, --weak-sandbox, then user namespaces

def _thief():
    # finds any notebook holding the solutions anywhere it can walk and runs its solution cells
    return (
        "import json as _json, os as _os\n"
        "def _steal():\n"
        "    marker, name = 'BEGIN ' + 'SOLUTION', 'def conv_' + 'output_size('\n"
        "    for top in ['/tmp', '/var/tmp', '/home', '/srv', '/opt', '/root', '/work', '/mnt']:\n"
        "        for folder, dirs, files in _os.walk(top):\n"
        "            for f in files:\n"
        "                if not f.endswith('.ipynb'):\n"
        "                    continue\n"
        "                try:\n"
        "                    nb = _json.load(open(_os.path.join(folder, f)))\n"
        "                except Exception:\n"
        "                    continue\n"
        "                cells = [''.join(c['source']) if isinstance(c['source'], list) else c['source']\n"
        "                         for c in nb.get('cells', []) if c.get('cell_type') == 'code']\n"
        "                if any(marker in c and name in c for c in cells):\n"
        "                    for c in cells:\n"
        "                        if marker in c:\n"
        "                            exec(c, globals())\n"
        "                    return\n"
        "_steal()\n")


def _writer(targets_files, target_dirs):
    attack = (
        "import os as _os\n"
        f"_mark = 'PWNED' + '-' + str(6 * 7)\n"
        f"for _p in {targets_files!r}:\n"
        "    try:\n"
        "        open(_p, 'a').write(_mark)\n"
        "    except Exception:\n"
        "        pass\n"
        f"for _d in {target_dirs!r}:\n"
        "    try:\n"
        "        open(_os.path.join(_d, 'pwned.txt'), 'w').write(_mark)\n"
        "    except Exception:\n"
        "        pass\n"
        "    try:\n"
        "        for _n in _os.listdir(_d):\n"
        "            try:\n"
        "                open(_os.path.join(_d, _n), 'a').write(_mark)\n"
        "            except Exception:\n"
        "                pass\n"
        "    except Exception:\n"
        "        pass\n")
    return toycourse.SIZE_RIGHT + "\n" + attack


def _grades(out):
    with open(out / "grades.csv", encoding="utf-8") as fh:
        return {r["student"]: float(r["score"]) for r in csv.DictReader(fh)}


def _grade_as_user(course, subs, out, *extra, **env):
    return normal_user.run_as_user([str(Path(sys.executable).parent / "cs231n-grade"), "--course", str(course),
                                    "autograde", str(subs), "--out", str(out), "--workers", "1", "--quiet",
                                    "--no-feedback", *extra], timeout=600, **env)


def _files_holding(folder, needle):
    hits = []
    for path in Path(folder).rglob("*"):
        if path.is_file() and (needle.encode() in path.read_bytes() or path.name == "pwned.txt"):
            hits.append(str(path))
    return hits


@needs_user_namespaces
def test_a_normal_user_grades_a_class_refused_weak_then_isolated(stray_copy):
    base = normal_user.user_folder()
    course = toycourse.course_copy(base / "course")
    _, _, home = normal_user.ensure_user()
    subs, out = base / "subs", base / "out"
    toycourse.write_submission(subs, course, "alice", "toy", toycourse.CLASS["alice"])
    toycourse.write_submission(subs, course, "thief", "toy", {"conv_output_size": _thief(),
                                                               "conv_forward_naive": _thief()})
    normal_user.chown_tree(base)
    try:
        # 1. no namespaces (the probe made to fail): refused in one line, nothing written
        refused = _grade_as_user(course, subs, out, **{sb_mod.NO_USERNS_ENV: "1"})
        assert refused.returncode == 2, refused.stdout + refused.stderr
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: no sandbox for students' code on this host")
        for way in ("Run as root", "enable unprivileged user namespaces", "--weak-sandbox",
                    f"user namespaces are switched off by {sb_mod.NO_USERNS_ENV}"):
            assert way in lines[0]
        assert not out.exists()

        # 2. --weak-sandbox: graded, and the thief profits; the summary and the report say so
        weak = _grade_as_user(course, subs, out, "--weak-sandbox", **{sb_mod.NO_USERNS_ENV: "1"})
        assert weak.returncode == 0, weak.stdout + weak.stderr
        assert "NO ISOLATION (2): graded with --weak-sandbox" in weak.stdout
        assert "Sandbox: 2 graded under NO ISOLATION (--weak-sandbox)." in weak.stdout
        assert "No isolation (--weak-sandbox)" in (out / "report.html").read_text()
        weak_scores = _grades(out)
        assert weak_scores["alice"] == 5.0 and weak_scores["thief"] >= 2.0

        # 3. user namespaces: both are graded again (weaker sandbox in the cache), the thief gets 0,
        #    the writer (new) changes nothing anywhere, honest students get full marks
        target_files = [str(out / "gradebook.db"), str(subs / "alice" / "toy" / "toy.ipynb")]
        target_dirs = [str(out), str(out / ".cache"), str(out / "autograded" / "alice" / "toy"),
                       str(subs / "alice" / "toy"), str(course / "solutions" / "toy"), str(course / "assignments" / "toy")]
        toycourse.write_submission(subs, course, "writer", "toy", {
            "conv_output_size": _writer(target_files, target_dirs), "conv_forward_naive": toycourse.FORWARD_RIGHT})
        toycourse.write_submission(subs, course, "bob", "toy", toycourse.CLASS["bob"])
        normal_user.chown_tree(subs)
        isolated = _grade_as_user(course, subs, out)
        assert isolated.returncode == 0, isolated.stdout + isolated.stderr
        first = isolated.stdout.splitlines()[0]
        assert "Graded 4 of 4 submissions" in first and "(4 graded now on 1 worker, 0 unchanged from the cache)" in first
        assert "Sandbox: 4 graded under user namespaces" in isolated.stdout and "NO ISOLATION" not in isolated.stdout
        assert _grades(out) == {"alice": 5.0, "bob": 4.0, "thief": 0.0, "writer": 5.0}
        assert _files_holding(base, MARK) == []
        modes = {}  # the cache records the sandbox of every result (the weak ones stay, under their keys)
        for path in (out / ".cache").glob("*.json"):
            result = json.loads(path.read_text())
            if result.get("student") in ("alice", "bob", "thief", "writer") and "protections" in result:
                modes.setdefault(result["student"], set()).add(result["protections"]["applied"]["mode"])
        assert all("user_namespace" in m for m in modes.values()) and len(modes) == 4, modes

        # 4. nothing changed, nothing graded again
        again = _grade_as_user(course, subs, out)
        assert "(none graded now, 4 unchanged from the cache)" in again.stdout.splitlines()[0], again.stdout
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_without_isolation_autograde_refuses_in_one_line_and_weak_sandbox_is_explicit(tmp_path, monkeypatch, capsys):
    """The probe made to fail in-process (a host with user namespaces disabled, or macOS): refused
    before anything is written; ``weak_sandbox=True`` passes the check (the class itself is graded
    as the normal user in the test above)."""
    monkeypatch.setattr(sandbox_host, "is_root", lambda: False)
    monkeypatch.setattr(sandbox_host, "_PROBE", None)
    monkeypatch.setattr(sandbox_host, "_USERNS_REFUSAL", "unprivileged user namespaces are refused (Operation not permitted)")
    course = toycourse.course_copy(tmp_path / "course")
    subs, out = tmp_path / "subs", tmp_path / "out"
    toycourse.write_submission(subs, course, "alice", "toy", toycourse.CLASS["alice"])
    assert cli.main(["--course", str(course), "autograde", str(subs), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("error: no sandbox for students' code on this host: not root and unprivileged user "
                             "namespaces are refused (Operation not permitted). Run as root, or enable")
    assert "--weak-sandbox" in err[0] and not out.exists()
    with pytest.raises(batch.NoSandbox):
        batch.autograde(subs, out, course_root=course, workers=0, progress=False)
    batch.refuse_without_sandbox(batch.DEFAULT_ENGINE, None, weak_sandbox=True)  # accepted: no raise
    batch.refuse_without_sandbox("tests/fake_engine.py:grade", None, weak_sandbox=False)  # no sandbox used
    monkeypatch.setattr(sandbox_host, "_PROBE", None)
    monkeypatch.setattr(sandbox_host, "_USERNS_REFUSAL", ())


def test_a_result_is_graded_again_only_when_the_host_protects_more():
    from autograder.results import TaskResult

    def graded_under(applied):
        return TaskResult("s", "a", "graded", protections={"applied": applied})

    weak = graded_under({"mode": "none", "uid": os.getuid(), "mount_namespace": False, "process_cap": False})
    userns = graded_under({"mode": "user_namespace", "uid": os.getuid(), "mount_namespace": True, "process_cap": True})
    as_root = graded_under({"mode": "root", "uid": 54321, "mount_namespace": True,
                            "rlimits": {"RLIMIT_NPROC": 128}})  # cached before process_cap
    host_userns = {"mode": "user_namespace", "mount_namespace": True, "unprivileged_user": False, "process_cap": True}
    host_root = {"mode": "root", "mount_namespace": True, "unprivileged_user": True, "process_cap": True}
    host_none = {"mode": "none", "mount_namespace": False, "unprivileged_user": False, "process_cap": False}
    weaker = batch.graded_in_a_weaker_sandbox
    assert weaker(weak, host_userns) and weaker(weak, host_root) and not weaker(weak, host_none)
    assert weaker(userns, host_root) and not weaker(userns, host_userns) and not weaker(userns, host_none)
    assert not weaker(as_root, host_root) and not weaker(as_root, host_userns)


# ------------------------------------------------------------------------------------------
# The hostile sample class


@needs_user_namespaces
def test_the_sample_class_gets_the_same_grades_as_a_normal_user_as_as_root():
    """examples/expected.json holds what the class gets as root (test_examples checks that)."""
    if not (REPO / "examples" / "submissions").is_dir():
        pytest.skip("no sample class")
    base = normal_user.user_folder()
    course = base / "course"
    shutil.copytree(REPO, course, symlinks=True, ignore=shutil.ignore_patterns(
        ".venv", ".git", "grading-output", "__pycache__", ".pytest_cache", ".hypothesis", "datasets", "benchmarks"))
    normal_user.chown_tree(base)
    # the workers are spawned processes that import this script again: the work sits in main()
    script = (
        "import json\nfrom autograder import batch\n\n"
        "def main():\n"
        f"    o = batch.autograde({str(course / 'examples' / 'submissions')!r}, {str(base / 'out')!r}, "
        f"course_root={str(course)!r}, workers=2, progress=False, feedback=False)\n"
        "    view = {}\n"
        "    for r in (r.to_json() for r in o.results):\n"
        "        tests = {t['grade_id']: [c['outcome'] for c in t['cases']]\n"
        "                 for nb in r.get('notebooks', {}).values() for t in nb.get('tests', [])}\n"
        "        view[r['student'] + '/' + r['assignment']] = {\n"
        "            'status': r['status'], 'score': r.get('score'), 'max_score': r.get('max_score'),\n"
        "            'tests': tests, 'mode': (r.get('protections') or {}).get('mode'), 'error': r.get('error')}\n"
        "    print(json.dumps(view))\n\n"
        "if __name__ == '__main__':\n"
        "    main()\n")
    try:
        done = normal_user.python_as_user(script, timeout=900)
        assert done.returncode == 0, done.stderr[-3000:]
        got = json.loads(done.stdout.strip().splitlines()[-1])
        expected = json.loads((REPO / "examples" / "expected.json").read_text(encoding="utf-8"))["students"]
        problems = []
        for student, entry in expected.items():
            for assignment, want in entry["assignments"].items():
                have = got.get(f"{student}/{assignment}")
                if have is None or have["status"] != want["status"]:
                    problems.append(f"{student}/{assignment}: {have and have['status']} ({have and have['error']}), "
                                    f"expected {want['status']}")
                    continue
                if want["status"] != "graded":
                    continue
                assert have["mode"] == "user_namespace"
                if abs(have["score"] - want["score"]) > 1e-6 or have["max_score"] != want["max_score"]:
                    problems.append(f"{student}/{assignment}: {have['score']}/{have['max_score']}, "
                                    f"expected {want['score']}/{want['max_score']}")
                for grade_id, test in want["tests"].items():
                    outcomes = {}
                    for outcome in have["tests"].get(grade_id, []):
                        outcomes[outcome] = outcomes.get(outcome, 0) + 1
                    if outcomes != test["outcomes"]:
                        problems.append(f"{student}/{assignment}/{grade_id}: {outcomes}, expected {test['outcomes']}")
        assert not problems, "\n".join(problems)
    finally:
        shutil.rmtree(base, ignore_errors=True)
