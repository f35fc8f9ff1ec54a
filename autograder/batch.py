"""Collecting submissions and running the grading tasks: local processes or a Dask cluster.

One task grades one student's one assignment. A task's result is a pure function of the
assignment's source notebooks, that student's files, the grader version, the grading limits
(``Limits``) and the calibration's time limits, so it is cached in ``<out>/.cache/<key>.json``
under a content hash of exactly those (``task_key``), written atomically. Re-running
grades only what is new or changed; a run killed at any moment (even by SIGKILL) is resumed by
running it again. Only the coordinating process writes anything (cache, gradebook, outputs):
workers return results and nothing else.

Submissions folder layouts (``SUBMISSIONS`` below), mixed freely:

- nbgrader's: ``SUBMISSIONS/<student>/<assignment>/*.ipynb`` (plus any data files the student
  sent; ``timestamp.txt``, as written by ``nbgrader collect``, is read as the submission time);
- notebooks straight in the student folder: ``SUBMISSIONS/<student>/<notebook>.ipynb``, matched
  to an assignment by the notebook's file name;
- LMS exports: ``SUBMISSIONS/<student>.zip`` holding ``<assignment>/*.ipynb`` or just the
  notebooks (matched by file name), optionally all under one top folder. Zips are read in
  memory, never extracted: a member whose name is absolute or climbs out (``..``) is refused,
  and sizes are capped (``MAX_FILE_BYTES`` per file, ``MAX_SUBMISSION_BYTES`` per student,
  ``MAX_FILES`` members), counting the bytes actually decompressed, not the sizes the zip claims.

Names starting with ``.`` are ignored, symbolic links are never followed, and everything that
is skipped is reported in the run summary.
"""

import concurrent.futures as cf
import dataclasses
import hashlib
import importlib
import importlib.util
import json
import multiprocessing
import os
import threading
import time
import traceback
import unicodedata
import zipfile
from pathlib import Path

from . import course, rebuild
from .files import is_notebook_file_name, safe_relative_parts, write_atomic
from .testspec import without_solution_markers

MAX_FILE_BYTES = 20 * 2**20
MAX_SUBMISSION_BYTES = 50 * 2**20
MAX_FILES = 200
DEFAULT_ENGINE = "autograder.engine:grade_submission"
ENGINE_ENV = "CS231N_GRADE_ENGINE"  # "module:function" or "path/to/file.py:function" (tests, benchmarks)
SCHEDULER_TIMEOUT = "30s"  # connecting to a Dask scheduler
#: how many times a task that failed for infrastructure reasons is tried again
INFRA_RETRIES = 1


@dataclasses.dataclass
class Submission:
    """One student's files for one assignment, as read from the submissions folder."""

    student: str
    assignment: str
    files: dict  # relative posix path -> bytes
    origin: str  # where it came from, for people
    timestamp: str | None = None
    notes: list = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Collection:
    submissions: list
    students: list  # every student seen, including those with nothing gradable
    skipped: list  # (what, why) pairs for the summary


def _is_ignored(name):
    return name.startswith(".") or name in course.IGNORED_NAMES or name.endswith(".pyc")


def _clean_student_id(name):
    """A student id from a folder or zip name: NFC-normalised; None when unusable.

    Refused: empty, '.', '..', path separators, control characters, and glob characters
    (``* ? [ ]``), which nbgrader would read as a pattern matching other students.
    """
    student = unicodedata.normalize("NFC", name).strip()
    if not student or student in (".", "..") or any(c in student for c in "/\\*?[]") \
            or any(ord(c) < 32 for c in student) or len(student) > 128:
        return None
    return student


class _Budget:
    """Caps on one student's submission; counts the bytes really read."""

    def __init__(self, origin):
        self.origin, self.total, self.count, self.notes = origin, 0, 0, []

    def admit(self, rel, size):
        if self.count >= MAX_FILES:
            self.notes.append(f"{rel}: skipped, more than {MAX_FILES} files")
            return False
        if size > MAX_FILE_BYTES:
            self.notes.append(f"{rel}: skipped, {size / 2**20:.1f} MB is over the {MAX_FILE_BYTES // 2**20} MB file cap")
            return False
        if self.total + size > MAX_SUBMISSION_BYTES:
            self.notes.append(f"{rel}: skipped, the submission would exceed {MAX_SUBMISSION_BYTES // 2**20} MB")
            return False
        self.count += 1
        self.total += size
        return True


def _read_folder(folder, budget, prefix=""):
    """All regular files under ``folder`` (no symlinks followed), relative posix path -> bytes."""
    files = {}
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        for d in dirnames:
            if os.path.islink(os.path.join(dirpath, d)):
                rel = (Path(dirpath) / d).relative_to(folder).as_posix()
                budget.notes.append(f"{prefix}{rel}: skipped, not a regular folder (symbolic links are not followed)")
        dirnames[:] = sorted(d for d in dirnames if not _is_ignored(d) and not os.path.islink(os.path.join(dirpath, d)))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            rel = path.relative_to(folder).as_posix()
            if _is_ignored(name):
                continue
            if path.is_symlink() or not path.is_file():
                budget.notes.append(f"{prefix}{rel}: skipped, not a regular file (symbolic links are not followed)")
                continue
            size = path.stat().st_size
            if _is_large_notebook(rel, size):
                _admit_large_notebook(files, rel, size, lambda p=path: open(p, "rb"), budget, prefix)
            elif budget.admit(prefix + rel, size):
                files[rel] = path.read_bytes()[:MAX_FILE_BYTES]
    return files


def _is_large_notebook(rel, size):
    return rel.lower().endswith(".ipynb") and size > MAX_FILE_BYTES


def _admit_large_notebook(files, rel, size, opener, budget, prefix=""):
    """A notebook over the file cap: kept without its outputs when the rest fits (outputs never count
    against a cap); else a note saying its size and the cap. A file over the hard cap is not read."""
    try:
        with opener() as stream:
            data = rebuild.without_outputs(stream, size)
    except rebuild.NotebookUnreadable as exc:
        budget.notes.append(f"{prefix}{rel}: skipped, {exc}")
        return
    except (OSError, zipfile.BadZipFile, NotImplementedError, RuntimeError) as exc:
        budget.notes.append(f"{prefix}{rel}: unreadable ({type(exc).__name__})")
        return
    if budget.admit(prefix + rel, len(data)):
        files[rel] = data


def _read_zip(path, budget):
    """Members of a zip as relative posix path -> bytes, refusing unsafe names and bombs."""
    files = {}
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        budget.notes.append(f"{path.name}: not a readable zip file ({exc})")
        return files
    with archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            parts = safe_relative_parts(info.filename)
            if parts is None:
                budget.notes.append(f"{info.filename}: refused, the name points outside the archive")
                continue
            if any(_is_ignored(p) for p in parts) or parts[0] == "__MACOSX":
                continue
            rel = "/".join(parts)
            if _is_large_notebook(rel, info.file_size):
                _admit_large_notebook(files, rel, info.file_size, lambda i=info: archive.open(i), budget)
                continue
            if not budget.admit(rel, info.file_size):
                continue
            try:
                with archive.open(info) as member:
                    data = member.read(MAX_FILE_BYTES + 1)
            except (zipfile.BadZipFile, OSError, NotImplementedError, RuntimeError) as exc:
                budget.notes.append(f"{rel}: unreadable in the zip ({type(exc).__name__})")
                continue
            if len(data) > MAX_FILE_BYTES:  # the header lied about the size: a zip bomb
                budget.notes.append(f"{rel}: skipped, decompresses past the {MAX_FILE_BYTES // 2**20} MB file cap")
                continue
            budget.total += len(data) - info.file_size
            files[rel] = data
    return files


def _notebook_owner(course_root, assignments):
    """Map notebook file name -> assignment, for notebooks sent without their assignment folder."""
    owner = {}
    for name in assignments:
        for nb in course.assignment_notebooks(course_root, name):
            owner.setdefault(nb, name)
        owner.setdefault(f"{name}.ipynb", name)
    return owner


def _split_by_assignment(student, files, assignments, owner, origin, budget):
    """Group a student's files (relative paths) into per-assignment submissions."""
    # a single top folder wrapping everything (e.g. the student's own name) is unwrapped
    tops = {rel.split("/", 1)[0] for rel in files}
    if len(tops) == 1 and all("/" in rel for rel in files) and next(iter(tops)) not in assignments:
        files = {rel.split("/", 1)[1]: data for rel, data in files.items()}
    grouped, skipped = {}, []
    for rel, data in sorted(files.items()):
        head, _, rest = rel.partition("/")
        if rest and head in assignments:
            grouped.setdefault(head, {})[rest] = data
        elif not rest and rel in owner:
            grouped.setdefault(owner[rel], {})[rel] = data
        else:
            skipped.append((f"{origin}/{rel}", "not inside a known assignment folder and not named like an assignment notebook"))
    subs = []
    for assignment, afiles in sorted(grouped.items()):
        timestamp = None
        if "timestamp.txt" in afiles:
            timestamp = afiles.pop("timestamp.txt").decode("utf-8", "replace").strip()[:64] or None
        subs.append(Submission(student, assignment, afiles, f"{origin}/{assignment}", timestamp, list(budget.notes)))
    return subs, skipped


def collect_submissions(root, course_root, assignments=None):
    """Read every student's submissions under ``root`` (see the module docstring for layouts).

    Returns a ``Collection``: the submissions sorted by (student, assignment), every student
    seen, and what was skipped and why. Empty assignment folders give a submission with no files
    (graded as missing notebooks, so the student gets zero and appears in the report).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"submissions folder {root} does not exist")
    assignments = list(assignments) if assignments is not None else course.list_assignments(course_root)
    owner = _notebook_owner(course_root, assignments)
    subs, students, skipped = [], [], []
    for entry in sorted(root.iterdir(), key=lambda p: p.name):
        if _is_ignored(entry.name):
            continue
        if entry.is_symlink():
            skipped.append((entry.name, "symbolic link, not followed"))
            continue
        if entry.is_dir():
            student = _clean_student_id(entry.name)
            if student is None:
                skipped.append((entry.name, "not usable as a student id"))
                continue
            budget = _Budget(entry.name)
            files = _read_folder(entry, budget)
            found, skip = _split_by_assignment(student, files, assignments, owner, entry.name, budget)
            # an assignment folder that exists but holds nothing still counts as a (blank) submission
            for sub in entry.iterdir():
                if sub.is_dir() and not sub.is_symlink() and sub.name in assignments and \
                        not any(s.assignment == sub.name for s in found):
                    found.append(Submission(student, sub.name, {}, f"{entry.name}/{sub.name}", None, list(budget.notes)))
        elif entry.is_file() and entry.suffix.lower() == ".zip":
            student = _clean_student_id(entry.stem)
            if student is None:
                skipped.append((entry.name, "not usable as a student id"))
                continue
            budget = _Budget(entry.name)
            files = _read_zip(entry, budget)
            found, skip = _split_by_assignment(student, files, assignments, owner, entry.name, budget)
        else:
            skipped.append((entry.name, "neither a student folder nor a .zip"))
            continue
        if student in students:
            skipped.append((entry.name, f"student {student!r} already read from another folder or zip"))
            continue
        students.append(student)
        skipped.extend(skip)
        if not found and budget.notes:
            skipped.extend((entry.name, note) for note in budget.notes)
        subs.extend(sorted(found, key=lambda s: s.assignment))
    subs.sort(key=lambda s: (s.student, s.assignment))
    return Collection(subs, sorted(students), skipped)


# ------------------------------------------------------------------------------------------
# Task keys and the result cache


def engine_module():
    return importlib.import_module("autograder.engine")


def grader_version(engine_spec=None):
    """The grader's version string: changes whenever a change could change a grade."""
    spec = engine_spec or os.environ.get(ENGINE_ENV) or DEFAULT_ENGINE
    if spec == DEFAULT_ENGINE:
        return str(engine_module().grader_version())
    fn = load_engine(spec)
    return f"custom:{spec}:{getattr(fn, 'VERSION', '0')}"


def limits_key(limits):
    """The grading limits as canonical text: every ``Limits`` field, defaults filled in, so that
    ``None``, ``{}`` and the defaults spelled out are the same limits."""
    from .sandbox import Limits

    try:
        value = dataclasses.asdict(Limits.coerce(limits))
    except (ValueError, TypeError):  # a custom engine's own limits: taken as they are
        value = limits
    return json.dumps(value, sort_keys=True, default=repr)


def calibration_key(calibration):
    """What of a calibration changes a grade: its key (sources, grader version, timeout rules)
    and the time limit of every case and cell it measured. ``"none"`` without a calibration."""
    if not isinstance(calibration, dict):
        return "none"
    timeouts = {kind: {name: entry.get("timeout") if isinstance(entry, dict) else entry
                       for name, entry in (calibration.get(kind) or {}).items()}
                for kind in ("cases", "cells")}
    text = json.dumps({"key": calibration.get("key"), **timeouts}, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def task_key(version, source_digest, submission, limits=None, calibration=None):
    """Content hash of (grader version, assignment source, grading limits, the calibration's time
    limits, student id, student files): a result is cached only for exactly these."""
    h = hashlib.sha256()
    for part in (version, source_digest, limits_key(limits), calibration_key(calibration),
                 submission.assignment, submission.student, submission.timestamp or ""):
        h.update(str(part).encode("utf-8") + b"\0")
    for rel in sorted(submission.files):
        h.update(rel.encode("utf-8") + b"\0")
        h.update(hashlib.sha256(submission.files[rel]).digest())
    return h.hexdigest()[:40]


def _host_protections():
    from .sandbox import sandbox_protections

    try:
        return sandbox_protections()
    except Exception:  # noqa: BLE001 - no probe, no comparison: the cache is used as it is
        return None


def _result_protections(applied, grader_uid):
    """The protections that count for re-grading, as a set, from what a kernel's wrapper applied:
    ``hidden`` (a mount namespace), ``own_user`` (a user other than the grader's), ``process_cap``
    (a process count a fork bomb cannot pass). Results cached before ``process_cap`` was recorded
    had one exactly when they ran as a user of their own with RLIMIT_NPROC."""
    have = set()
    if applied.get("mount_namespace"):
        have.add("hidden")
    own_user = applied.get("uid") not in (None, 0, grader_uid)
    if own_user:
        have.add("own_user")
    cap = applied.get("process_cap")
    if cap is None:
        cap = own_user and "RLIMIT_NPROC" in (applied.get("rlimits") or {})
    if cap:
        have.add("process_cap")
    return have


def _host_gives(host):
    gives = set()
    if host.get("mount_namespace"):
        gives.add("hidden")
    if host.get("unprivileged_user"):
        gives.add("own_user")
    if host.get("process_cap"):
        gives.add("process_cap")
    return gives


def graded_in_a_weaker_sandbox(result, host):
    """True when ``result`` was graded without a protection this host gives (a mount namespace, a
    user of its own, a process cap): such a cached result is graded again rather than reused. So a
    result graded with ``--weak-sandbox`` is graded again once user namespaces or root are available,
    and one graded in user namespaces is graded again as root (which adds a user of its own)."""
    applied = ((result or {}).get("protections") or {}).get("applied")
    if not applied or not host:
        return False
    return bool(_host_gives(host) - _result_protections(applied, os.getuid()))


class ResultCache:
    """``<out>/.cache/<key>.json`` holding one task's result, written atomically."""

    def __init__(self, out_dir):
        self.folder = Path(out_dir) / ".cache"
        self.folder.mkdir(parents=True, exist_ok=True)

    def path(self, key):
        return self.folder / f"{key}.json"

    def load(self, key):
        try:
            return json.loads(self.path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None  # absent, or a torn file from a crash long ago: grade again

    def store(self, key, result):
        write_atomic(self.path(key), json.dumps(result, sort_keys=True))


# ------------------------------------------------------------------------------------------
# Running one task (in a worker process)

_ENGINE_LOCK = threading.Lock()  # Dask workers may run tasks in threads; nbgrader is process-global


def load_engine(spec):
    """The grading function named by ``module:function`` or ``path/to/file.py:function``."""
    module_name, _, func = spec.rpartition(":")
    if module_name.endswith(".py"):
        loaded = importlib.util.spec_from_file_location(f"_cs231n_engine_{abs(hash(module_name))}", module_name)
        module = importlib.util.module_from_spec(loaded)
        loaded.loader.exec_module(module)
    else:
        module = importlib.import_module(module_name)
    return getattr(module, func)


def failed_result(student, assignment, error, infrastructure=False):
    return {"student": student, "assignment": assignment, "status": "failed", "error": error,
            "infrastructure": infrastructure, "notebooks": {}, "score": 0.0, "max_score": 0.0, "timings": {}}


def run_task(payload):
    """Grade one task; never raises. ``payload``: a plain dict (see ``Coordinator.payload``)."""
    start = time.perf_counter()
    try:
        with _ENGINE_LOCK:
            grade = load_engine(payload["engine"])
            if payload["engine"] == DEFAULT_ENGINE:
                engine = engine_module()
                task = engine.GradeTask(**payload["task"])
            else:
                task = payload["task"]
            result = grade(task)
    except Exception as exc:  # an engine bug or a lost kernel: the coordinator retries once
        t = payload["task"]
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        result = failed_result(t["student"], t["assignment"], f"grader error: {detail}", infrastructure=True)
    result.setdefault("timings", {})["task_seconds"] = time.perf_counter() - start
    return result


def _worker_init():
    """Pool worker start-up: die with the coordinator (Linux), so a killed run leaves no orphans."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


# ------------------------------------------------------------------------------------------
# Executors: the same tasks, on local processes or a Dask cluster


class LocalExecutor:
    """A pool of worker processes (spawned, never threads) that survives a worker dying.

    When a worker process dies (the pool breaks), the tasks that were in flight are suspects:
    they are run again one at a time in a one-worker pool, while the others carry on. A task
    that kills a pool on its own is reported as failed (``infrastructure``, so it is not cached
    and the next run tries again); the others are graded normally.
    """

    def __init__(self, workers):
        self.workers = max(1, int(workers))

    @staticmethod
    def _pool(workers):
        ctx = multiprocessing.get_context("spawn")
        return cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_init)

    def _run_pool(self, payloads, indices, workers, suspects):
        """Yield ``(i, result)``; indices in flight when the pool breaks go to ``suspects``."""
        pool = self._pool(workers)
        queue, futures = list(indices), {}
        try:
            while queue or futures:
                while queue and len(futures) < 2 * workers:
                    i = queue.pop(0)
                    futures[pool.submit(run_task, payloads[i])] = i
                done, _ = cf.wait(futures, return_when=cf.FIRST_COMPLETED)
                broken = False
                for fut in done:
                    i = futures.pop(fut)
                    try:
                        result = fut.result()
                    except cf.process.BrokenProcessPool:
                        suspects.append(i)
                        broken = True
                        continue
                    yield i, result
                if broken:
                    suspects.extend(futures.values())
                    futures = {}
                    pool.shutdown(wait=False, cancel_futures=True)
                    pool = self._pool(workers)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def run(self, payloads):
        """Yield ``(index, result)`` as tasks finish, in completion order."""
        suspects = []
        yield from self._run_pool(payloads, range(len(payloads)), self.workers, suspects)
        for i in sorted(set(suspects)):
            alone = []
            yield from self._run_pool(payloads, [i], 1, alone)
            if alone:
                t = payloads[i]["task"]
                result = failed_result(t["student"], t["assignment"],
                                       "the grading process died while grading this submission, twice",
                                       infrastructure=True)
                result["final"] = True  # already retried on its own: do not retry again now
                yield i, result

    def close(self):
        pass


class InlineExecutor:
    """Grade in this very process, one task after another (tests and debugging: no isolation)."""

    workers = 1

    def run(self, payloads):
        for i, payload in enumerate(payloads):
            yield i, run_task(payload)

    def close(self):
        pass


class DaskExecutor:
    """Send tasks to a Dask distributed scheduler at ``address``.

    Workers must see the course at the same path as the coordinator (a shared filesystem or the
    same machine) and have this package installed. Tasks run ``autograder.batch.run_task``; a
    worker running several threads grades one task at a time (nbgrader is process-global), so
    start workers with ``--nthreads 1`` and as many ``--nworkers`` as cores.
    """

    def __init__(self, address):
        from distributed import Client

        try:
            self.client = Client(address, timeout=SCHEDULER_TIMEOUT)
        except (OSError, TimeoutError) as exc:
            raise course.CourseError(f"cannot reach the Dask scheduler at {address} ({type(exc).__name__}: {exc}); "
                                     f"start one with `dask scheduler` and workers with "
                                     f"`dask worker ADDRESS --nthreads 1 --nworkers N`") from None
        self.workers = max(1, len(self.client.scheduler_info().get("workers", {})))

    def run(self, payloads):
        from distributed import as_completed

        futures = {}
        for i, payload in enumerate(payloads):
            key = f"grade-{payload['key']}-{os.urandom(4).hex()}"
            futures[self.client.submit(run_task, payload, key=key, pure=False)] = i
        for fut in as_completed(list(futures)):
            i = futures[fut]
            try:
                result = fut.result()
            except Exception as exc:  # KilledWorker, lost connection, ...
                t = payloads[i]["task"]
                result = failed_result(t["student"], t["assignment"],
                                       f"Dask task failed: {type(exc).__name__}: {exc}", infrastructure=True)
            fut.release()
            yield i, result

    def close(self):
        self.client.close()


# ------------------------------------------------------------------------------------------
# The coordinator: one run of `cs231n-grade autograde`


@dataclasses.dataclass
class RunOutcome:
    """Everything a run produced, for the summary, the report and tests."""

    out_dir: Path
    collection: Collection
    results: list  # one per submission, same order as collection.submissions
    keys: list
    graded_now: int = 0
    from_cache: int = 0
    retried: int = 0
    seconds: float = 0.0
    workers: int = 1
    flags_by_task: dict = dataclasses.field(default_factory=dict)
    feedback_problems: list = dataclasses.field(default_factory=list)
    notebooks_by_assignment: dict = dataclasses.field(default_factory=dict)
    report_path: Path | None = None
    grades_path: Path | None = None
    #: seconds spent in each phase of the run (prepare, calibrate, grade, record, feedback, report)
    phases: dict = dataclasses.field(default_factory=dict)
    #: assignments whose own solutions do not get full marks (the instructor must look)
    calibration_problems: list = dataclasses.field(default_factory=list)
    #: what the gradebook holds from earlier runs that this run did not grade (kept as it is;
    #: ``gradebook.absent_from_run``): students, assignments, (student, assignment) submissions
    absent_from_run: dict = dataclasses.field(default_factory=dict)


def default_course_root():
    """The repository holding ``solutions/``: this package's parent, else the working folder."""
    here = Path(__file__).resolve().parents[1]
    return here if (here / course.SOLUTIONS_DIR).is_dir() else Path.cwd()


def _calibration(out_dir, course_root, assignment, engine_spec, limits, problems):
    """The engine's timing calibration of an assignment (cached in ``<out>/.cache`` by the engine).

    Calibration runs the instructor's solutions in the sandbox; if that fails twice (a kernel
    that will not start), grading goes on with the engine's default time limits and says so.
    """
    if engine_spec != DEFAULT_ENGINE:
        return None
    engine = engine_module()
    for _ in range(1 + INFRA_RETRIES):
        try:
            return engine.cached_calibration(str(course_root), assignment, Path(out_dir) / ".cache", limits or None)
        except RuntimeError as exc:
            error = exc
    problems.append(f"{assignment}: could not time the instructor's solutions ({error}); "
                    f"default time limits were used")
    return None


def _hidden_paths(course_root, submissions_root, out_dir):
    """Folders the student's sandbox must never see."""
    paths = [Path(course_root) / course.SOLUTIONS_DIR, Path(course_root) / ".git",
             Path(submissions_root), Path(out_dir)]
    return sorted({str(p.resolve()) for p in paths})


def write_autograded(out_dir, result):
    """Write the engine's executed notebooks to ``autograded/<student>/<assignment>/`` (or remove them)."""
    import nbformat

    folder = Path(out_dir) / "autograded" / result["student"] / result["assignment"]
    if result.get("status") != "graded":
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
        return
    wanted = set()
    for name, nb_result in sorted(result.get("notebooks", {}).items()):
        executed = nb_result.get("executed_notebook")
        if not is_notebook_file_name(name) or not executed:
            continue
        text = nbformat.writes(nbformat.from_dict(executed))
        path = folder / name
        wanted.add(path)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            write_atomic(path, text)
    if folder.is_dir():
        for path in folder.glob("*.ipynb"):
            if path not in wanted:
                path.unlink()


def _flag_names(flag):
    """The library names a ``library_use`` flag lists (``uses a.b, a.c`` -> {"a.b", "a.c"})."""
    detail = str(flag.get("detail", ""))
    return set(detail[len("uses "):].split(", ")) if detail.startswith("uses ") else set()


def reference_flags(course_root, assignment):
    """The engine's flags for the instructor's own solutions, by grade_id.

    A library helper that the reference solution itself uses (e.g. the output-size helper) is
    expected in students' code too, so a ``library_use`` flag naming only such helpers is dropped.
    """
    import nbformat

    from .integrity import delegation_flags

    allowed = {}
    for name in course.assignment_notebooks(course_root, assignment):
        source = nbformat.read(str(Path(course_root) / course.SOLUTIONS_DIR / assignment / name), as_version=4)
        template = nbformat.read(str(Path(course_root) / course.ASSIGNMENTS_DIR / assignment / name), as_version=4)
        sources = {}
        for cell in source.cells:
            meta = cell.metadata.get("nbgrader", {})
            if meta.get("solution") and meta.get("grade_id"):
                sources[meta["grade_id"]] = without_solution_markers(cell.source)
        for flag in delegation_flags(template, sources):
            if flag.get("kind") == "library_use":
                allowed.setdefault(flag.get("grade_id"), set()).update(_flag_names(flag))
    return allowed


def drop_expected_flags(result, allowed):
    """Remove from ``result`` (in place) the ``library_use`` flags covered by ``allowed``."""
    for nb in result.get("notebooks", {}).values():
        nb["flags"] = [f for f in nb.get("flags", []) if not (
            isinstance(f, dict) and f.get("kind") == "library_use"
            and _flag_names(f) and _flag_names(f) <= allowed.get(f.get("grade_id"), set()))]
    return result


def explain_nothing_to_grade(result, notes):
    """A failed result whose files were skipped while reading says why (a notebook over every size
    cap, say), rather than that the submission was empty."""
    if result.get("status") != "failed" or not notes or result.get("infrastructure"):
        return result
    error = result.get("error") or ""
    if error.endswith("the submission is empty"):
        result["error"] = "nothing to grade: " + "; ".join(notes)
    elif not any(note in error for note in notes):
        result["error"] = f"{error} ({'; '.join(notes)})"
    return result


def _engine_flags(result):
    """The engine's flags and notes of a result, as lines for people (notes: renamed notebook, ...)."""
    out = [str(note) for note in result.get("notes", [])]
    for name, nb in sorted(result.get("notebooks", {}).items()):
        out.extend(f"{name}: {_flag(f)}" for f in nb.get("flags", []))
        out.extend(f"{name}: {note}" for note in nb.get("notes", []))
    return out


def _flag(flag):
    from .gradebook import flag_text

    return flag_text(flag)


class NoSandbox(ValueError):
    """``autograde`` refused: this host gives kernels no isolation and ``weak_sandbox`` was not set."""


def refuse_without_sandbox(engine_spec, scheduler, weak_sandbox):
    """Raise ``NoSandbox`` when students' code would run here without any isolation (not root, no
    user namespaces) and the instructor did not accept that with ``--weak-sandbox``. A custom engine
    and a Dask cluster (whose workers report their own protections in each result) are not checked."""
    if weak_sandbox or scheduler or engine_spec != DEFAULT_ENGINE:
        return
    from .sandbox import no_isolation_message

    message = no_isolation_message()
    if message:
        raise NoSandbox(message)


def autograde(submissions, out_dir="grading-output", *, course_root=None, workers=None, scheduler=None,
              progress=True, feedback=True, report=True, engine=None, limits=None, weak_sandbox=False):
    """Grade every submission under ``submissions`` into the nbgrader course ``out_dir``.

    Inputs:
    - submissions: the submissions folder (layouts: see the module docstring)
    - out_dir: the grading folder (gradebook, autograded/, feedback/, grades.csv, report.html)
    - course_root: the repository with ``solutions/`` and ``assignments/`` (default: this one)
    - workers: local worker processes (default: CPU count); ignored with ``scheduler``;
      0 grades in this process (tests, debugging; no isolation from the coordinator)
    - scheduler: address of a Dask distributed scheduler to send the tasks to instead
    - engine: ``module:function`` grading one task (default: the sandboxed engine)
    - limits: a dict of ``autograder.sandbox.Limits`` fields (default: the defaults); part of
      every task's cache key, like the calibration made with them
    - weak_sandbox: grade even when this host gives kernels no isolation (not root and no user
      namespaces); without it such a run raises ``NoSandbox`` before anything is written

    Returns a ``RunOutcome``. Safe to interrupt at any moment and run again.
    """
    from . import feedback as feedback_mod
    from . import gradebook, similarity
    from .assignment_digest import source_digest

    started = time.perf_counter()
    engine_spec = engine or os.environ.get(ENGINE_ENV) or DEFAULT_ENGINE
    refuse_without_sandbox(engine_spec, scheduler, weak_sandbox)
    course_root = Path(course_root or default_course_root()).resolve()
    out_dir = Path(out_dir).resolve()
    submissions_root = Path(submissions).resolve()
    all_assignments = course.list_assignments(course_root)
    collection = collect_submissions(submissions_root, course_root, all_assignments)
    subs = collection.submissions
    assignments = sorted({s.assignment for s in subs})
    gradebook.prepare_grading_course(out_dir, course_root, assignments)
    phases = {"prepare": time.perf_counter() - started}
    version = grader_version(engine_spec)
    digests = {a: source_digest(course_root, a) for a in assignments}
    cache = ResultCache(out_dir)
    # The calibration (time limits) is part of every task's key, so it is needed first; the
    # engine keeps it in <out>/.cache, so a run with nothing new only reads it back.
    mark = time.perf_counter()
    calibration_problems = []
    calibrations = {a: _calibration(out_dir, course_root, a, engine_spec, limits, calibration_problems)
                    for a in assignments}
    phases["calibrate"] = time.perf_counter() - mark
    keys = [task_key(version, digests[s.assignment], s, limits, calibrations[s.assignment]) for s in subs]
    outcome = RunOutcome(out_dir, collection, [None] * len(subs), keys, phases=phases,
                         notebooks_by_assignment={a: course.assignment_notebooks(course_root, a) for a in assignments},
                         calibration_problems=calibration_problems)

    allowed = {}
    for a in assignments:
        try:
            allowed[a] = reference_flags(course_root, a)
        except Exception:  # noqa: BLE001 - a filter only: without it, flags are shown as they are
            allowed[a] = {}
    todo = []
    host = None if scheduler else _host_protections()
    for i, key in enumerate(keys):
        cached = cache.load(key)
        reusable = (cached is not None and cached.get("student") == subs[i].student
                    and not graded_in_a_weaker_sandbox(cached, host))
        if reusable:
            outcome.results[i] = drop_expected_flags(cached, allowed[subs[i].assignment])
            outcome.from_cache += 1
        else:
            todo.append(i)

    hidden = _hidden_paths(course_root, submissions_root, out_dir)
    payloads = {}
    for i in todo:
        sub = subs[i]
        payloads[i] = {"engine": engine_spec, "key": keys[i], "task": {
            "student": sub.student, "assignment": sub.assignment, "files": sub.files,
            "course_root": str(course_root), "limits": dict(limits or {}) or None,
            "calibration": calibrations[sub.assignment], "hidden_paths": hidden}}

    for assignment, cal in sorted(calibrations.items()):
        if isinstance(cal, dict) and cal.get("max_score") and float(cal.get("score", 0)) < float(cal["max_score"]):
            outcome.calibration_problems.append(
                f"{assignment}: the instructor's own solutions score {cal['score']:g} / {cal['max_score']:g}")
    mark = time.perf_counter()
    with gradebook.open_gradebook(out_dir) as gb:
        if todo:
            if scheduler:
                executor = DaskExecutor(scheduler)
            elif workers == 0:
                executor = InlineExecutor()
            else:
                executor = LocalExecutor(workers or os.cpu_count() or 1)
            outcome.workers = executor.workers
            bar = _progress_bar(len(todo), progress)
            try:
                attempt, rounds = {i: 0 for i in todo}, list(todo)
                while rounds:
                    order = list(rounds)
                    rounds = []
                    for j, result in executor.run([payloads[i] for i in order]):
                        i = order[j]
                        attempt[i] += 1
                        if result.get("status") == "failed" and result.get("infrastructure") \
                                and not result.get("final") and attempt[i] <= INFRA_RETRIES:
                            rounds.append(i)  # a kernel-start race or a lost worker: once more
                            outcome.retried += 1
                            continue
                        outcome.graded_now += 1
                        if not result.get("infrastructure"):
                            cache.store(keys[i], result)
                        outcome.results[i] = result = drop_expected_flags(result, allowed[subs[i].assignment])
                        gradebook.record_result(gb, result, subs[i].timestamp, keys[i])
                        write_autograded(out_dir, result)
                        bar.update(1)
                        if result.get("status") != "graded":
                            bar.set_postfix_str(f"failed: {subs[i].student}/{subs[i].assignment}", refresh=False)
            finally:
                bar.close()
                executor.close()

        phases["grade"] = time.perf_counter() - mark
        mark = time.perf_counter()
        # Final, idempotent pass over every result (cached ones included): coordinator flags,
        # gradebook rows, graded notebooks. This is what makes a resumed run equal a fresh one.
        similar = similarity.find_similar(outcome.results, course_root)
        for i, result in enumerate(outcome.results):
            task = (result["student"], result["assignment"])
            explain_nothing_to_grade(result, subs[i].notes)
            outcome.flags_by_task[task] = _engine_flags(result) + list(subs[i].notes) + similar.get(task, [])
            gradebook.record_result(gb, result, subs[i].timestamp, keys[i])
            if result.get("status") == "graded":
                # written answers: what the gradebook holds (a person may have graded them)
                result["manual"] = gradebook.manual_grading(gb, result["assignment"], result["student"])
            write_autograded(out_dir, result)
            if similar.get(task):
                _flag_notebooks(gb, result)
        outcome.absent_from_run = gradebook.absent_from_run(gb, outcome.results, collection.students)

    phases["record"] = time.perf_counter() - mark
    mark = time.perf_counter()
    if feedback:
        local_workers = 1 if workers == 0 else (workers or os.cpu_count() or 1)
        _feedback(outcome, course_root, feedback_mod, local_workers, progress)
    phases["feedback"] = time.perf_counter() - mark
    mark = time.perf_counter()
    outcome.grades_path = out_dir / "grades.csv"
    gradebook.write_grades_csv(outcome.grades_path, outcome.results, outcome.notebooks_by_assignment,
                               outcome.flags_by_task)
    if report:
        from . import report as report_mod

        outcome.report_path = report_mod.write_report(outcome, out_dir / "report.html")
    phases["report"] = time.perf_counter() - mark
    outcome.seconds = time.perf_counter() - started
    return outcome


def _flag_notebooks(gb, result):
    """Mark every notebook of a submission as flagged in the gradebook (formgrader shows it)."""
    from nbgrader.api import MissingEntry

    try:
        submission = gb.find_submission(result["assignment"], result["student"])
    except MissingEntry:
        return
    for nb in submission.notebooks:
        nb.flagged = True
    gb.db.commit()


def feedback_task(args):
    """Render one submission's feedback pages (in a worker process); returns ``(index, problems)``."""
    from . import feedback as feedback_mod

    index, out_dir, course_root, student, assignment = args
    try:
        _, problems = feedback_mod.generate(out_dir, course_root, student, assignment)
    except Exception as exc:  # one broken page must not stop the run
        problems = [f"feedback not generated: {type(exc).__name__}: {str(exc).strip().splitlines()[-1][:200]}"]
    return index, problems


def _feedback(outcome, course_root, feedback_mod, workers=1, progress=False):
    """Feedback HTML for every submission whose result changed since its page was made.

    nbgrader renders one page in about a second, so with several workers the pages are made in
    parallel processes (each reads the gradebook, which is complete by now, and writes only its
    own student's folder). A submission that could not be graded gets a short page per notebook
    saying why instead (``failure_page``, made here: no nbgrader, no notebook).
    """
    from . import failure_page

    marks = outcome.out_dir / ".cache" / "feedback"
    todo = []
    for index, (result, key) in enumerate(zip(outcome.results, outcome.keys)):
        student, assignment = result["student"], result["assignment"]
        mark = marks / (hashlib.sha256(f"{student}\0{assignment}".encode()).hexdigest()[:32] + ".txt")
        if result.get("status") != "graded":
            mark.unlink(missing_ok=True)
            notes = outcome.collection.submissions[index].notes if index < len(outcome.collection.submissions) else []
            try:
                _, problems = failure_page.write(outcome.out_dir, course_root, result,
                                                 outcome.notebooks_by_assignment.get(assignment), notes)
            except Exception as exc:  # one broken page must not stop the run
                feedback_mod.remove(outcome.out_dir, student, assignment)
                problems = [f"failure page not written: {type(exc).__name__}: {exc}"]
            outcome.feedback_problems.extend((student, assignment, p) for p in problems)
            continue
        pages = feedback_mod.feedback_paths(outcome.out_dir, student, assignment)
        if pages and mark.exists() and mark.read_text() == key:
            continue
        todo.append((index, mark, key, (index, str(outcome.out_dir), str(course_root), student, assignment)))
    if not todo:
        return
    bar = _progress_bar(len(todo), progress, "feedback")
    jobs = [args for _, _, _, args in todo]
    if workers > 1 and len(todo) > 2:
        ctx = multiprocessing.get_context("spawn")
        with cf.ProcessPoolExecutor(max_workers=min(workers, len(todo)), mp_context=ctx,
                                    initializer=_worker_init) as pool:
            done = {}
            for index, problems in pool.map(feedback_task, jobs):
                done[index] = problems
                bar.update(1)
    else:
        done = {}
        for job in jobs:
            index, problems = feedback_task(job)
            done[index] = problems
            bar.update(1)
    bar.close()
    for index, mark, key, args in todo:
        problems = done[index]
        for problem in problems:
            outcome.feedback_problems.append((args[3], args[4], problem))
        if not problems:
            write_atomic(mark, key)


class _NoBar:
    def update(self, n=1):
        pass

    def set_postfix_str(self, *args, **kwargs):
        pass

    def close(self):
        pass


def _progress_bar(total, enabled, what="grading"):
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=what, unit="submission", dynamic_ncols=True,
                bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}{postfix}]")
