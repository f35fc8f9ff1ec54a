"""The grading engine: one student's one assignment, graded in a sandboxed kernel, judged outside it.

Interface (used by ``autograder.executors`` and the ``cs231n-grade`` command)
-----------------------------------------------------------------------

``grade_submission(task: GradeTask) -> TaskResult``
    Grades ``task`` and returns its result (below). Never raises for anything a student did;
    raises only for grader faults (a broken course, a kernel that cannot start at all), which
    the coordinator reports and retries.

``GradeTask(student, assignment, files, course_root, limits=None, calibration=None, hidden_paths=[], cases="all")``
    - files: ``{relative posix path: bytes}``, the student's files for that assignment
      (``SUBMISSIONS/<student>/<assignment>/...`` or a zip, read by the coordinator);
    - course_root: the folder holding ``solutions/<assignment>/`` and ``assignments/<assignment>/``;
    - limits: a ``Limits`` or a dict of its fields (``autograder.sandbox.Limits``);
    - calibration: the dict returned by ``calibrate`` (per-case and per-cell time limits) or None;
    - hidden_paths: extra folders or files the student's kernel must not see (the submissions
      root, the grading output folder, the gradebook). Every top-level folder of the course root
      except ``assignments/`` and ``datasets/`` is always hidden (solutions/, .git/, build
      scripts holding hidden tests), and so are the installed ``cs231n_lib`` and ``autograder``
      (``grader_package_paths``);
      a path holding the Python installation is never hidden (reported in protections.applied);
    - cases: "all" (grading) or "visible" (what ``validate_notebook`` uses).

``validate_notebook(path, course_root, limits=None, assignment=None) -> TaskResult``
    Grades one notebook file with the visible cases only (hidden cases are not run and do not
    count), through the same engine; the assignment is the notebook's folder name (or file stem)
    when it names one in ``solutions/``. Same result shape.

``calibrate(course_root, assignment, limits=None) -> dict``
    Runs the SOURCE notebook (the instructor's solutions) through the engine with generous time
    limits and records each case's and cell's seconds (wall time of the call seen from the
    grader, on this machine); a case's time limit is ``max(limits.case_timeout_floor,
    limits.timeout_multiple * seconds)``, a cell's ``max(cell_timeout_floor, multiple * seconds)``;
    returns ``{"key", "grader_version",
    "assignment", "cases": {case_key: {"seconds", "timeout"}}, "cells": {cell_key: {...}},
    "score", "max_score"}``. ``key`` is a hash of the assignment's sources and the grader
    version and the timeout rules: cache the calibration under it (``cached_calibration(course_root,
    assignment, cache_dir, limits)`` does). ``score < max_score`` means the solutions fail their
    own tests (the coordinator should say so).

``grader_version() -> str``
    ``<version>+<hash>`` of the engine, the checks and cs231n_lib (which computes the
    references): changes whenever a change could change a grade.

``sandbox_protections() -> dict`` (re-exported from ``autograder.sandbox``)

Result of ``grade_submission``
------------------------------
A ``TaskResult`` (``autograder.results``, where its fields and their JSON form are described):
the task's status, error and notes, its score, max_score and optional points, per notebook a
``NotebookResult`` (its tests and their cases, the cells as they ran, the solution sources, the
flags for review, the written answers, the executed notebook: the rebuilt notebook with outputs,
whose test cells show their visible source and the feedback text), the timings and the sandbox's
protections (``sandbox_protections()`` of this host, and what the kernel's wrapper applied).

A missing or unreadable notebook still reports its ``max_score`` (so it counts as 0 of max).
The grader's own faults raise (``ValueError`` for a course that cannot be graded, e.g.
``assignments/`` out of date with ``solutions/`` or a test cell that is not literal ``check``
calls; ``RuntimeError`` when no kernel starts); ``autograder.executors.grade_task`` turns those into
a failed result with ``infrastructure`` set, which ``autograder.batch`` tries once more.

What the student sees (the test cells' feedback text in ``executed_notebook``, rendered into
the feedback page) never carries hidden inputs out. A hidden case shows its check's name, "hidden
case k", the outcome and a *limited* message; its ``describe(case)`` is not kept anywhere in the
result. The student's code writes everything that comes back from the kernel (outputs, the
status file, exception messages and class names, function names, array shapes, the numbers a
hint would derive from the outputs), and once it has run a hidden case it may hold that case's
inputs (in a global, in a file, across restarts and replays). So every case from the first
hidden one on, in the notebook, is limited (``CaseResult.limited``, sticky): per output only a fixed
verdict (``compare.Comparison.limited``: exact match / within tolerance / as expected / wrong
values / wrong value / wrong shape / wrong dtype / not finite / not an array / missing from the
result), for an exception only the name of a builtin exception (else "an exception") and the line
number, and only hints that are fixed text (``compare.FIXED_HINTS``, ``Check.fixed_hints``). A
limited visible case still shows its own trusted information: its description and facts about
its expected value (shape, dtype, tolerance, an expected name). For the same reason, code cells
that run after any hidden case show a note instead of their outputs in ``executed_notebook``.
Visible cases that run before any hidden case keep the full messages (relative error, where the
largest difference sits, the exception's message, every hint). To give every visible case that,
hidden cases wait: each test cell runs its visible cases when execution reaches it, and the hidden
cases of every test cell run after the notebook's last cell, in cell order, on the functions the
notebook defines by then.

A test cell's points are split evenly over its cases (visible and hidden); scores are rounded
to 3 decimals. After two time-outs in a row within one test cell, its remaining cases are not
run and count as time-outs (an endless loop costs about two time limits per test cell, not one
per case). Hidden cases appear in feedback as "hidden case k" with the outcome and the limited
message only: never the test source, seed, shapes, hyperparameters, input values or reference
outputs.
"""

import builtins
import copy
import hashlib
import io
import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import numpy as np
from cs231n_checks.validate import is_optional_test

from . import __version__, integrity, kit, rebuild
from .assignment_digest import source_digest
from .checks import get_check, judge
from .checks.base import MISSING
from .compare import coerce
from .course import ASSIGNMENTS_DIR, SOLUTIONS_DIR
from .files import safe_relative_path, write_atomic
from .results import CaseResult, CellRecord, Flag, NotebookResult, TaskResult, TestResult, WrittenAnswer
from .sandbox import Limits, Sandbox, sandbox_protections
from .testspec import parse_test_cell

__all__ = ["GradeTask", "Limits", "grade_submission", "validate_notebook", "calibrate", "cached_calibration",
           "grader_version", "sandbox_protections"]

MAX_RESULT_BYTES = 256 << 20  # a case's output file read back from the kernel (at most)
MAX_STATUS_BYTES = 1 << 20
MAX_RESTARTS = 12  # per notebook: beyond this the remaining cases are not run
TIMEOUTS_BEFORE_GIVING_UP = 2  # in a row, in one test cell: the rest of its cases count as timeouts
_SIDE = "__import__('cs231n_checks.kernel_side').kernel_side"


@dataclass
class GradeTask:
    """One student's one assignment (see the module docstring)."""

    student: str
    assignment: str
    files: dict
    course_root: str
    limits: Limits | dict | None = None
    calibration: dict | None = None
    hidden_paths: list = field(default_factory=list)
    #: "all" (grading) or "visible" (validate: hidden cases are not run)
    cases: str = "all"
    #: the coordinator's hash of everything the assignment's grading material depends on (grader
    #: version and ``source_digest``): a process that has loaded that material reuses it without
    #: reading a file; None (a direct call): the files are read to see whether they changed
    material_key: str | None = None

    def __post_init__(self):
        self.limits = Limits.coerce(self.limits)
        if self.cases not in ("all", "visible"):
            raise ValueError(f"cases must be 'all' or 'visible'; found {self.cases!r}")


# Everything a grade depends on: the engine, the checks and the library computing the references.
_ENGINE_FILES = ("engine.py", "sandbox.py", "limits.py", "sandbox_host.py", "sandbox_launcher.py", "sandbox_kernel.py",
                 "files.py", "rebuild.py", "matching.py", "notebook_bytes.py", "testspec.py", "integrity.py", "kit.py", "results.py",
                 "checks", "../cs231n_checks", "../cs231n_lib")


def grader_version():
    """``<package version>+<hash of the engine and checks sources>``: any change means re-grading."""
    here = Path(__file__).resolve().parent
    h = hashlib.sha256()
    # the library's data files (the bundled digits) too: the kit ships them and cases read them
    data = kit.library_data_files()
    for name in _ENGINE_FILES:
        path = (here / name).resolve()
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for f in files + (data if name == "../cs231n_lib" else []):
            h.update(f.relative_to(here.parent).as_posix().encode() + b"\0")
            h.update(f.read_bytes())
    return f"{__version__}+{h.hexdigest()[:12]}"


# ------------------------------------------------------------------------------------------
# Course files


#: per process: (course root, assignment) -> ``_Loaded`` of the notebooks as last read, kept while
#: their content digest is the same (one parse per assignment and process, not one per task)
_LOADED = {}
_LOADED_LOCK = threading.Lock()


@dataclass
class _Loaded:
    digest: str
    pairs: list  # [(name, source_nb, template_nb)], never handed out: callers get deep copies
    warmed: set = field(default_factory=set)  # (notebook name, cases) whose references were computed
    #: ``(the coordinator's material key, kit folder, extra files)``, replaced whole (never changed
    #: in place), so a reader without the lock sees one consistent triple
    material: tuple | None = None


def _loaded(course_root, assignment, material_key=None):
    """The assignment's notebooks, read (and checked) once per process and content; ValueError if
    broken. With the coordinator's ``material_key`` of a run, nothing is read again while it holds."""
    key = (str(Path(course_root).resolve()), assignment)
    if material_key is not None:
        with _LOADED_LOCK:
            loaded = _LOADED.get(key)
        if loaded is not None and loaded.material is not None and loaded.material[0] == material_key:
            return loaded
    src_dir = Path(course_root) / SOLUTIONS_DIR / assignment
    rel_dir = Path(course_root) / ASSIGNMENTS_DIR / assignment
    if not src_dir.is_dir():
        raise ValueError(f"no assignment {assignment!r}: {src_dir} does not exist")
    names = sorted(p.name for p in src_dir.glob("*.ipynb"))
    if not names:
        raise ValueError(f"no notebook in {src_dir}")
    raw, h = [], hashlib.sha256()
    for name in names:
        template_path = rel_dir / name
        if not template_path.exists():
            raise ValueError(f"{template_path} is missing: release the assignment (cs231n-grade release)")
        source, template = (src_dir / name).read_bytes(), template_path.read_bytes()
        for part in (name.encode(), hashlib.sha256(source).digest(), hashlib.sha256(template).digest()):
            h.update(part + b"\0")
        raw.append((name, source, template))
    digest = h.hexdigest()
    with _LOADED_LOCK:
        loaded = _LOADED.get(key)
        if loaded is not None and loaded.digest == digest:
            return loaded  # the data files and the kit of a new key: see _kit_and_extra_files
    pairs = []
    for name, source_bytes, template_bytes in raw:
        source, template = _read_notebook(source_bytes), _read_notebook(template_bytes)
        if len(source.cells) != len(template.cells) or any(
                a.cell_type != b.cell_type or rebuild.grade_id(a) != rebuild.grade_id(b)
                for a, b in zip(source.cells, template.cells)):
            raise ValueError(f"{rel_dir / name} does not match {src_dir / name} cell by cell: "
                             f"release the assignment again (cs231n-grade release)")
        pairs.append((name, source, template))
    loaded = _Loaded(digest, pairs)
    with _LOADED_LOCK:
        _LOADED[key] = loaded
    return loaded


def _kit_and_extra_files(loaded, task):
    """(the grading kit's folder, the data files released with the assignment) for ``task``: found
    once per material key and process (while the kit folder is still whole: a cleaner of the
    temporary folder may remove it under a long-lived worker), else (a direct call, no key) found
    for this task."""
    known = loaded.material
    if known is not None and task.material_key is not None and known[0] == task.material_key \
            and (Path(known[1]) / ".complete").exists():
        return known[1], known[2]
    # the kernel imports the student kit as it was while this assignment was open, never the library
    kit_dir = str(kit.grading_kit(task.course_root, task.assignment))
    extra = _extra_files(task.course_root, task.assignment)
    if task.material_key is not None:
        loaded.material = (task.material_key, kit_dir, extra)
    return kit_dir, extra


def _read_notebook(data):
    """``nbformat.read`` of a file's bytes (read as ``nbformat.read`` reads a path: UTF-8 text)."""
    return nbformat.read(io.TextIOWrapper(io.BytesIO(data), encoding="utf8"), as_version=4)


def _load_pair(course_root, assignment):
    """[(name, source_nb, template_nb)] for the notebooks of ``assignment`` (the caller's own copies);
    ValueError if broken."""
    return copy.deepcopy(_loaded(course_root, assignment).pairs)


def _extra_files(course_root, assignment):
    """Data files released with the assignment (not notebooks): they overwrite the student's copies."""
    folder = Path(course_root) / ASSIGNMENTS_DIR / assignment
    out = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if path.is_file() and not path.is_symlink() and not rel.endswith(".ipynb") \
                and not any(p.startswith(".") or p == "__pycache__" for p in rel.split("/")):
            out[rel] = path.read_bytes()
    return out


# ------------------------------------------------------------------------------------------
# Plans: what runs, in which order


@dataclass
class CellPlan:
    index: int
    kind: str  # "code" | "test" | "skipped" | "markdown"
    grade_id: str | None
    source: str  # what runs (code) or what is shown (test: visible part)
    checks: list = field(default_factory=list)  # test cells: [CheckCall]
    points: float = 0.0
    answer: bool = False  # a written answer (markdown solution + grade cell) for a person to grade
    optional: bool = False  # an optional part's test: extra credit, not in max_score


def plan_notebook(source_nb, template_nb, rebuilt_nb, cases="all"):
    plans = []
    for index, (src_cell, cell) in enumerate(zip(source_nb.cells, rebuilt_nb.cells)):
        gid = rebuild.grade_id(cell)
        if cell.cell_type != "code":
            answer = rebuild.is_answer_cell(src_cell)
            plans.append(CellPlan(index, "markdown", gid, cell.source,
                                  points=rebuild.cell_points(src_cell) if answer else 0.0, answer=answer))
        elif rebuild.is_test_cell(cell):
            label = f"test cell '{gid}' (cell {index + 1})"
            calls = parse_test_cell(src_cell.source, label)  # CheckSpecError: the instructor's to fix
            if cases == "visible":
                calls = [c for c in calls if not c.hidden]
            for call in calls:
                get_check(call.name)  # an unknown check name is the instructor's error: say it now
            plans.append(CellPlan(index, "test", gid, rebuild.visible_test_source(template_nb.cells[index].source),
                                  calls, rebuild.cell_points(src_cell), optional=is_optional_test(src_cell)))
        elif rebuild.is_skipped(src_cell):
            plans.append(CellPlan(index, "skipped", gid, cell.source))
        else:
            plans.append(CellPlan(index, "code", gid, cell.source))
    return plans


def case_key(notebook, grade_id, number):
    return f"{notebook}:{grade_id}:{number}"


def cell_key(notebook, index):
    return f"{notebook}:cell{index}"


# ------------------------------------------------------------------------------------------
# Running one notebook


class _Runner:
    """Runs a planned notebook in a sandbox, restarting and replaying after a lost kernel."""

    def __init__(self, sandbox, limits, calibration, notebook_name):
        self.sb, self.limits, self.name = sandbox, limits, notebook_name
        self.calibration = calibration or {}
        self.replayable = []  # (index, source, timeout) of code cells that ran and did not kill the kernel
        self.restarts = 0
        self.notes = []
        self.compile_seconds = 0.0
        #: sticky: once a hidden case has started in this notebook's kernel, the student's code may
        #: hold hidden inputs (in memory, in files, across restarts): every later case is limited
        self.hidden_ran = False
        self.arm_compile_timer()

    def arm_compile_timer(self):
        """Start Numba's compile timer in a fresh kernel (counted as kernel start-up time)."""
        began = time.perf_counter()
        self.sb.execute(f"{_SIDE}.start_compile_timer()", 60, store_history=False, keep_output=False)
        self.sb.kernel_start_seconds += time.perf_counter() - began

    def read_compile_timer(self):
        """Add the kernel's reported Numba compile time (untrusted, informative only)."""
        if not self.sb.alive():
            return
        result = self.sb.execute(f"print({_SIDE}.compile_seconds())", 10, store_history=False)
        text = "".join(o.get("text", "") for o in result.outputs if o.get("output_type") == "stream")
        try:
            self.compile_seconds += min(max(float(text.strip().splitlines()[-1]), 0.0), 1e5)
        except (ValueError, IndexError):
            pass

    def cell_timeout(self, index):
        entry = self.calibration.get("cells", {}).get(cell_key(self.name, index))
        return float(entry["timeout"]) if entry else self.limits.cell_timeout

    def case_timeout(self, grade_id, number):
        entry = self.calibration.get("cases", {}).get(case_key(self.name, grade_id, number))
        return float(entry["timeout"]) if entry else self.limits.case_timeout

    def recover(self):
        """Restart the kernel and replay the cells run so far; False when out of restarts."""
        while True:
            if self.restarts >= MAX_RESTARTS:
                return False
            self.restarts += 1
            self.read_compile_timer()
            try:
                self.sb.restart()
                self.arm_compile_timer()
            except RuntimeError as exc:
                self.notes.append(f"the kernel could not be restarted: {exc}")
                self.restarts = MAX_RESTARTS
                return False
            for entry in list(self.replayable):
                index, source, timeout = entry
                result = self.sb.execute(source, timeout, store_history=False, keep_output=False)
                if result.kernel_lost:
                    self.replayable.remove(entry)
                    self.notes.append(f"cell {index + 1} lost the kernel when it was replayed after a restart; "
                                      f"it is left out of later replays")
                    break
            else:
                return True

    def run_code(self, plan):
        timeout = self.cell_timeout(plan.index)
        result = self.sb.execute(plan.source, timeout)
        status = result.status
        if result.kernel_lost:
            self.recover()  # when out of restarts, the remaining cells and cases report not_run
        elif status != "timeout":
            self.replayable.append((plan.index, plan.source, timeout))
        return result, status

    def skipped_case(self, check_call, case, description):
        return CaseResult(check_call.name, check_call.hidden, "timeout", description=description,
                          limited=check_call.hidden or self.hidden_ran,
                          message=f"not run: the previous {TIMEOUTS_BEFORE_GIVING_UP} cases of this test timed out")

    def run_case(self, check_call, case, number, grade_id, description):
        """Run one case in the kernel; return its ``CaseResult`` (without points).

        ``description``: what the feedback says of the case (``describe(case)`` for a visible
        case, ``hidden case k`` for a hidden one).
        """
        check = get_check(check_call.name)
        entry = CaseResult(check_call.name, check_call.hidden, "not_run", description=description,
                           limited=check_call.hidden or self.hidden_ran)
        if not self.sb.alive():
            entry.message = "not run: the kernel was lost too many times"
            return entry
        # from here on the kernel may see (and keep) this case's inputs
        self.hidden_ran |= check_call.hidden
        inputs = check.make_inputs(case)
        expected = check.reference({k: np.array(v, copy=True) for k, v in inputs.items()})
        entry_inputs = {k: np.array(v, copy=True) for k, v in inputs.items()}
        in_path, out_path, status_path, nonce = self.sb.new_exchange()
        self.sb.write_inputs(in_path, inputs)
        driver = (f"{_SIDE}.run_case("
                  f"{check_call.name!r}, {in_path!r}, {out_path!r}, {status_path!r}, {nonce!r})")
        timeout = self.case_timeout(grade_id, number)
        result = self.sb.execute(driver, timeout, store_history=False, keep_output=False)
        entry.seconds = round(result.seconds, 4)
        try:
            if result.status == "timeout":
                _verdict(entry, "timeout", f"stopped after {timeout:.0f} s (the time limit of this case)",
                         hints=["look for a loop that never ends, or work repeated inside the loops"])
            elif result.status in ("crashed", "flooded"):
                why = ("the kernel died while running this case (a crash, os._exit or a signal)"
                       if result.status == "crashed" else
                       f"the kernel printed more than {self.limits.flood_bytes >> 20} MB (or one giant message) "
                       "and was stopped")
                _verdict(entry, "crashed", why)
            else:
                self._judge(entry, check, case, expected, out_path, status_path, nonce, result, entry_inputs)
        finally:
            self.sb.discard(in_path, out_path, status_path, out_path + ".tmp.npz", status_path + ".tmp")
        if result.kernel_lost:
            self.recover()
        return entry

    def _judge(self, entry, check, case, expected, out_path, status_path, nonce, result, inputs):
        raw = self.sb.read_untrusted(status_path, MAX_STATUS_BYTES)
        try:
            status = json.loads(raw) if raw is not None else None
        except (ValueError, RecursionError):  # not JSON, or nested past the parser's depth
            status = None
        if not isinstance(status, dict) or status.get("nonce") != nonce:
            _verdict(entry, "tampered", "the grading harness's result was missing or altered "
                     "(did the notebook change how code runs in the kernel?)")
            return
        # Everything in ``status`` and in the outputs is the student's code's to write. In a limited
        # entry (a hidden case, or any case after one) the message is made of fixed words only.
        limited = entry.limited
        kind = status.get("status")
        if kind == "error":
            exc_type = str(status.get("exc_type", "Exception"))[:100]
            message = str(status.get("message", ""))[:2000]
            frames = status.get("frames") if isinstance(status.get("frames"), list) else []
            last = frames[-1] if frames and isinstance(frames[-1], dict) else {}
            if exc_type == "NotImplementedError":
                _verdict(entry, "error", "not implemented yet (the function raises NotImplementedError)")
            elif limited:
                # the exception's message, its class name (the student can make a class named after
                # the inputs), the function's name: all could carry hidden inputs out
                line = last.get("line")
                where = f" (line {line})" if type(line) is int and 0 < line < 1_000_000 else ""
                why = ("messages of hidden cases are not shown" if entry.hidden else
                       "messages are not shown for cases that run after hidden cases")
                _verdict(entry, "error", f"{_builtin_exception_name(exc_type)}{where} ({why})")
            else:
                where = f" (line {last.get('line')} of {str(last.get('name'))[:100]})" if last else ""
                _verdict(entry, "error", f"{exc_type}: {message}{where}")
            return
        if kind == "interrupted":
            _verdict(entry, "timeout", "interrupted")
            return
        if kind != "ok":
            _verdict(entry, "tampered", "the grading harness's result was malformed")
            return
        # a right answer is about as big as the reference: refuse files far bigger (grader memory)
        cap = min(MAX_RESULT_BYTES, (1 << 20) + 16 * sum(np.asarray(v).nbytes for v in expected.values()))
        try:
            size = os.lstat(out_path).st_size
        except OSError:
            size = 0
        if size > cap:
            taken = "far more space" if limited else f"{size / 2**20:.1f} MB, far more"
            _verdict(entry, "wrong", f"the result takes {taken} than the expected one: check its shape",
                     hints=["print the shape of what the function returns"])
            return
        raw = self.sb.read_untrusted(out_path, cap)
        found = _load_npz(raw)
        if found is None:
            _verdict(entry, "tampered", "the outputs written in the kernel could not be read back as plain arrays")
            return
        problems = status.get("problems") if isinstance(status.get("problems"), dict) else {}
        lines = []
        unusable = [key for key in expected if key in problems and key not in found]
        for key in unusable:
            lines.append(f"{key}: not an array" if limited else f"{key}: {str(problems[key])[:300]}")
        clean = {}
        for key, value in found.items():
            array, problem = coerce(value)
            if problem is None:
                clean[key] = array
        passed, more_lines, more_hints, _ = judge(check, case, expected, clean, hidden=entry.hidden,
                                                  limited=limited, inputs=inputs)
        lines.extend(line for line in more_lines if line not in {f"{k}: {MISSING}" for k in unusable})
        _verdict(entry, "passed" if passed else "wrong", "; ".join(lines), hints=more_hints)


def _verdict(entry, outcome, message, hints=None):
    """Settle the case ``entry``: its outcome and message, and its hints when given."""
    entry.outcome, entry.message = outcome, message
    if hints is not None:
        entry.hints = list(hints)


def _builtin_exception_name(name):
    """``name`` when it names one of Python's builtin exceptions, else "an exception"."""
    obj = getattr(builtins, name, None) if name.isidentifier() else None
    return name if isinstance(obj, type) and issubclass(obj, BaseException) else "an exception"


def _load_npz(raw):
    """Arrays from untrusted ``.npz`` bytes (uncompressed members only, no pickles), or None."""
    import io
    import zipfile

    if raw is None:
        return None
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as zf:
            infos = zf.infolist()
            if len(infos) > 64 or any(i.compress_type != zipfile.ZIP_STORED for i in infos):
                return None
            for info in infos:  # a header may claim a shape far bigger than its data: refuse it
                with zf.open(info) as fh:
                    version = np.lib.format.read_magic(fh)
                    readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
                    if version not in readers:
                        return None
                    shape, _, dtype = readers[version](fh)
                    if dtype.hasobject or int(np.prod(shape, dtype=np.float64)) * dtype.itemsize > info.file_size:
                        return None
        with np.load(io.BytesIO(raw), allow_pickle=False) as data:
            return {key: np.array(data[key]) for key in data.files}
    except Exception:  # noqa: BLE001 - anything unreadable is tampering
        return None


# ------------------------------------------------------------------------------------------
# Feedback text of a test cell


def _round(x):
    return round(float(x) + 0.0, 3)


LIMITED_NOTE = ("(visible cases that run after hidden ones show short verdicts only; the check in your "
                "notebook prints their details)")


def feedback_text(test):
    """What the student reads under a test cell (a ``TestResult``): per case the outcome, the message
    and hints.

    A hidden case shows its check's name and "hidden case k", never its ``describe(case)``;
    the entries' messages and hints are already limited where they must be (see ``_Runner._judge``).
    """
    cases = test.cases
    passed = sum(c.passed for c in cases)
    unit = "point" if test.points == 1 else "points"
    if test.optional:
        # nbgrader's own line for this cell reads "x / 0": its points are outside the maximum
        lines = [f"{test.grade_id}: {test.score:g} of {test.points:g} {unit} of extra credit, an optional part "
                 f"outside the notebook's maximum; {passed} of {len(cases)} cases passed"]
    else:
        lines = [f"{test.grade_id}: {test.score:g} / {test.points:g} {unit} ({passed} of {len(cases)} cases passed)"]
    if any(c.limited and not c.hidden and not c.passed for c in cases):
        lines.append(LIMITED_NOTE)
    for number, case in enumerate(cases, 1):
        if case.hidden:
            lines.append(f"case {number} ({case.check}, {case.description}): {case.outcome.upper()}")
        else:
            lines.append(f"case {number} (visible; {case.check}: {case.description}): {case.outcome.upper()}")
        if case.message:
            lines.append(f"    {case.message}")
        for hint in case.hints:
            lines.append(f"    hint: {hint}")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------
# What the pages people open may show of a student's work
#
# The executed notebook becomes the student's feedback page (nbgrader's HTML) and the notebook a
# person grades in the formgrader, a page of the instructor's Jupyter server: a script there acts
# as the instructor. nbconvert renders HTML, JavaScript and Markdown outputs and the HTML in
# Markdown cells as they are, so nothing a student's code or text chooses may reach a page as
# HTML: outputs are kept as text and images only, and a written answer keeps its Markdown
# formatting and math but can open no HTML tag, link or image.

#: the output types kept from the kernel: text, and PNG or JPEG images (base64 text in an
#: ``<img>``). HTML, JavaScript, Markdown, SVG, LaTeX, widgets and any other type are dropped
KEPT_OUTPUT_TYPES = ("text/plain", "image/png", "image/jpeg")
DROPPED_OUTPUT_NOTE = ("[an output of another type than text or a PNG/JPEG image (HTML, JavaScript, Markdown, "
                       "SVG, a widget, ...): not shown in the feedback]")
_BASE64 = re.compile(r"[A-Za-z0-9+/=\s]*")


def inert_outputs(outputs):
    """The kernel's ``outputs`` (nbformat output dicts) as a page may show them: streams and errors
    as they are (rendered as escaped text), rich outputs reduced to ``KEPT_OUTPUT_TYPES`` (an
    image only when it is base64 text) without their metadata (its width or alt text would be
    written into the page's HTML), and a note in place of one left with nothing to show."""
    kept = []
    for out in outputs:
        if out.get("output_type") in ("display_data", "execute_result"):
            data = out.get("data") if isinstance(out.get("data"), dict) else {}
            shown = {mime: data[mime] for mime in KEPT_OUTPUT_TYPES if isinstance(data.get(mime), str)
                     and (mime == "text/plain" or _BASE64.fullmatch(data[mime]))}
            out = dict(out, data=shown or {"text/plain": DROPPED_OUTPUT_NOTE}, metadata={})
        kept.append(out)
    return kept


_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")


def inert_markdown(text):
    """A student's Markdown (a written answer) as a page may render it: emphasis, lists, code and
    math stay, but nothing becomes HTML. A space after each ``<`` that would open a tag, a comment
    or an autolink (``< script>`` is text), ``](`` escaped so that no inline link or image forms,
    and ``]:`` escaped so that no link definition does (nor the reference links that need one):
    no element, event handler or ``javascript:`` URL of the student's reaches the page."""
    return _TAG_START.sub("< ", text).replace("](", "]\\(").replace("]:", "]\\:")


# ------------------------------------------------------------------------------------------
# Grading


def answer_digest(text):
    """What identifies a written answer: its text without surrounding or trailing white space."""
    normal = "\n".join(line.rstrip() for line in (text or "").strip().splitlines())
    return hashlib.sha256(normal.encode("utf-8")).hexdigest()[:16]


def written_answer(plan, template_cell, cell):
    """The ``WrittenAnswer`` of a written answer cell: left for a person (the formgrader) to grade.

    ``answered`` is False when the cell still holds the released text (or nothing): nbgrader
    gives such a cell 0 points without a person, and so does the gradebook here.
    """
    answered = bool(cell.source.strip()) and answer_digest(cell.source) != answer_digest(template_cell.source)
    return WrittenAnswer(plan.grade_id, _round(plan.points), answered, answer_digest(cell.source))


def _max_score(plans):
    """The points a notebook is out of: its tests' points, optional parts left out (extra credit)."""
    return _round(sum(p.points for p in plans if p.kind == "test" and not p.optional))


def _optional_points(plans):
    """The points of a notebook's optional parts: earned on top of ``_max_score``."""
    return _round(sum(p.points for p in plans if p.kind == "test" and p.optional))


def grade_notebook(name, source_nb, template_nb, student_nb, sandbox, limits, calibration, cases="all"):
    """Grade one notebook in a started ``sandbox``; returns ``(NotebookResult, Numba compile seconds)``."""
    matched = rebuild.rebuild(template_nb, student_nb)
    rebuilt, sources, notes = matched.notebook, matched.sources, matched.notes
    plans = plan_notebook(source_nb, template_nb, rebuilt, cases)
    runner = _Runner(sandbox, limits, calibration, name)
    tests, cells, answers = [], [], []
    # hidden cases wait until every cell has run: the visible cases of every test cell run before
    # any hidden one, so that all of them get full feedback (see "hidden_ran")
    deferred = []
    for plan in plans:
        cell = rebuilt.cells[plan.index]
        record = CellRecord(plan.index, plan.kind, grade_id=plan.grade_id, kind=plan.kind)
        if plan.kind == "markdown":
            if plan.answer:
                answers.append(written_answer(plan, template_nb.cells[plan.index], cell))
                cell.source = inert_markdown(cell.source)  # after its digest: the student's own text
            cells.append(record)
            continue
        if plan.kind == "skipped":
            cells.append(record)
            continue
        if plan.kind == "code":
            if not sandbox.alive():
                record.status = "not_run"
                cells.append(record)
                continue
            result, status = runner.run_code(plan)
            record.seconds, record.status = round(result.seconds, 4), status
            if runner.hidden_ran:
                # the student's code has seen hidden inputs by now and could print them here
                note = f"[{status}; outputs of cells that run after hidden test cases are not shown]\n"
                cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=note)]
            else:
                cell.outputs = [nbformat.from_dict(o) for o in inert_outputs(result.outputs)]
            if plan.grade_id in matched.found:
                # where the graded code came from, said where the student looks for it
                said = "".join(f"[grader] {line}\n" for line in matched.found[plan.grade_id])
                cell.outputs.insert(0, nbformat.v4.new_output("stream", name="stdout", text=said))
            cells.append(record)
            continue
        # a test cell: its visible cases now, its hidden ones after the last cell
        test = TestResult(plan.grade_id, _round(plan.points), optional=plan.optional)
        pending, hidden_count = [], 0
        for call in plan.checks:
            for case in call.cases:
                hidden_count += call.hidden
                description = f"hidden case {hidden_count}" if call.hidden else get_check(call.name).describe(case)
                pending.append((call, case, len(pending) + 1, description))
        slots = [None] * len(pending)  # the cell's case results, in its order, as they are run
        visible = [item for item in pending if not item[0].hidden]
        timeouts = _run_cases(runner, plan, slots, visible, 0)
        tests.append(test)
        record.status = "test"
        cells.append(record)
        cell.source = plan.source
        deferred.append((plan, test, slots, record, cell, [item for item in pending if item[0].hidden], timeouts))
    for plan, test, slots, record, cell, hidden, timeouts in deferred:
        _run_cases(runner, plan, slots, hidden, timeouts)
        test.cases = slots
        per_case = plan.points / len(slots) if slots else 0.0
        test.score = _round(per_case * sum(c.passed for c in slots))
        record.seconds = round(sum(c.seconds for c in slots), 4)
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=feedback_text(test))]
    notes.extend(runner.notes)
    runner.read_compile_timer()
    entry = NotebookResult("graded", notes=notes, score=_round(sum(t.score for t in tests)),
                           max_score=_max_score(plans), optional_points=_optional_points(plans), tests=tests,
                           cells=cells, solution_sources=sources,
                           flags=_flags(integrity.delegation_flags(template_nb, sources)), answers=answers,
                           found=[line for gid in sorted(matched.found) for line in matched.found[gid]],
                           executed_notebook=json.loads(json.dumps(rebuilt)))
    return entry, round(runner.compile_seconds, 3)


def _flags(records):
    """``autograder.integrity``'s flags (plain records) as ``Flag``s."""
    return [Flag.from_json(record, "integrity flag") for record in records]


def _run_cases(runner, plan, slots, items, timeouts_in_a_row):
    """Run ``items`` (``(call, case, number, description)``) of a test cell, each into its place
    in ``slots`` (the cell's case results); returns the count of timeouts in a row at the end."""
    for call, case, number, description in items:
        if timeouts_in_a_row >= TIMEOUTS_BEFORE_GIVING_UP:
            entry = runner.skipped_case(call, case, description)
        else:
            entry = runner.run_case(call, case, number, plan.grade_id, description)
            timeouts_in_a_row = timeouts_in_a_row + 1 if entry.outcome == "timeout" else 0
        slots[number - 1] = entry
    return timeouts_in_a_row


def _warm_references(source_nb, template_nb, cases):
    """Compute every case's reference before the first kernel starts (``grade_submission`` does it
    once per process and assignment content).

    This compiles (or loads) the cs231n_lib Numba kernels the references use in the grader's
    own process before any kernel waits on it (the kernel's own compiled kernels come from the
    student kit's cache, warmed by ``kit.grading_kit``).
    """
    rebuilt = rebuild.rebuild(template_nb, None).notebook
    for plan in plan_notebook(source_nb, template_nb, rebuilt, cases):
        for call in plan.checks:
            check = get_check(call.name)
            for case in call.cases:
                check.reference(check.make_inputs(case))


def _unrun_notebook(status, message, source_nb, template_nb, cases="all"):
    rebuilt = rebuild.rebuild(template_nb, None).notebook
    plans = plan_notebook(source_nb, template_nb, rebuilt, cases)
    return NotebookResult(status, message, max_score=_max_score(plans), optional_points=_optional_points(plans))


def grade_submission(task):
    """Grade ``task`` (a ``GradeTask`` or a dict of its fields); returns its ``TaskResult``."""
    if isinstance(task, dict):
        task = GradeTask(**task)
    began = time.perf_counter()
    result = TaskResult(task.student, task.assignment, "graded", protections=sandbox_protections())
    loaded = _loaded(task.course_root, task.assignment, task.material_key)  # a broken course: raise
    pairs = copy.deepcopy(loaded.pairs)
    files = {}
    for rel, data in (task.files or {}).items():
        try:
            files[rebuild_path(rel)] = data
        except ValueError:
            result.notes.append(f"ignored a file with an unsafe name: {rel!r}")
    chosen, notes = rebuild.match_notebooks([n for n, _, _ in pairs], files)
    result.notes.extend(notes)
    hidden = (course_hidden_paths(task.course_root) + grader_package_paths()
              + [str(Path(p).resolve()) for p in task.hidden_paths])
    visible = [str(Path(task.course_root).resolve() / name) for name in sorted(VISIBLE_COURSE_FOLDERS)]
    kit_dir, extra_files = _kit_and_extra_files(loaded, task)
    workdir_files = dict(files)
    workdir_files.update(extra_files)
    timings = result.timings
    for name, source_nb, template_nb in pairs:
        rel = chosen.get(name)
        if rel is None:
            result.notebooks[name] = _unrun_notebook("missing", f"{name} was not in the submission",
                                                     source_nb, template_nb, task.cases)
            continue
        try:
            student_nb = rebuild.read_submitted(files[rel])
        except rebuild.NotebookUnreadable as exc:
            entry = _unrun_notebook("unreadable", f"{rel}: {exc}", source_nb, template_nb, task.cases)
            entry.submitted_as = rel
            result.notebooks[name] = entry
            continue
        if (name, task.cases) not in loaded.warmed:  # once per process and content
            _warm_references(source_nb, template_nb, task.cases)
            loaded.warmed.add((name, task.cases))
        with Sandbox(workdir_files, task.limits, hidden, visible, kit_dir=kit_dir) as sandbox:
            result.notes.extend(f"could not write {s} into the working folder" for s in sandbox.skipped_files)
            sandbox.start()
            result.protections = dict(result.protections, applied=sandbox.applied)
            entry, compile_seconds = grade_notebook(name, source_nb, template_nb, student_nb, sandbox, task.limits,
                                                    task.calibration, task.cases)
            timings.kernel_start += sandbox.kernel_start_seconds
            timings.kernel_starts += sandbox.kernel_starts
            timings.numba_compile = round((timings.numba_compile or 0.0) + compile_seconds, 3)
        entry.submitted_as = rel
        if entry.graded:
            # code the solution cells import from the student's own files is analysed too
            entry.flags = entry.flags + _flags(integrity.module_flags(entry.solution_sources, files))
        result.notebooks[name] = entry
    nbs = list(result.notebooks.values())
    result.score = _round(sum(nb.score for nb in nbs))
    result.max_score = _round(sum(nb.max_score for nb in nbs))
    result.optional_points = _round(sum(nb.optional_points for nb in nbs))
    if not any(nb.graded for nb in nbs):
        result.status = "failed"
        reasons = "; ".join(nb.message for nb in nbs)
        result.error = f"nothing to grade: {reasons}" if files else "nothing to grade: the submission is empty"
    timings.kernel_start = round(timings.kernel_start, 3)
    timings.total = round(time.perf_counter() - began, 3)
    return result


# Top-level folders of a course root that a student's kernel may see; every other one is hidden
# (solutions/, .git/, notebook build scripts holding hidden tests, grading output, ...). A folder
# holding the interpreter or this package (e.g. .venv) is never hidden: see sandbox_launcher._hide_paths.
VISIBLE_COURSE_FOLDERS = {ASSIGNMENTS_DIR, "datasets"}


def course_hidden_paths(course_root):
    """Folders of ``course_root`` hidden from the student's kernel: all but ``VISIBLE_COURSE_FOLDERS``."""
    root = Path(course_root).resolve()
    hidden = {str(root / SOLUTIONS_DIR)}
    for entry in root.iterdir():
        if entry.is_dir() and not entry.is_symlink() and entry.name not in VISIBLE_COURSE_FOLDERS:
            hidden.add(str(entry))
    return sorted(hidden)


def grader_package_paths():
    """The folders of the full library and of this package, as this process imports them: hidden
    from the kernel, which imports the student kit. They hold every answer (``cs231n_lib``) and
    a right version of every layer (the mistakes' catalogue in ``autograder/checks``). From a
    clone they are folders of the course root, hidden anyway; installed without ``-e`` (``pip
    install .`` into a JupyterHub's environment) they sit in the interpreter's site-packages,
    which the kernel must see: a student's cell loaded the library from there by its path and
    earned full marks."""
    import cs231n_lib

    return sorted({str(Path(cs231n_lib.__file__).resolve().parent), str(Path(__file__).resolve().parent)})


def rebuild_path(rel):
    """``rel`` as the posix path the student's file is written to; ValueError when unsafe."""
    return safe_relative_path(rel).as_posix()


# ------------------------------------------------------------------------------------------
# validate and calibrate


def validate_notebook(path, course_root, limits=None, assignment=None):
    """Grade the notebook at ``path`` with the visible cases only (see the module docstring)."""
    path = Path(path)
    names = {p.name for p in (Path(course_root) / SOLUTIONS_DIR).iterdir() if p.is_dir()}
    if assignment is None:
        assignment = path.parent.name if path.parent.name in names else path.stem
    if assignment not in names:
        assignment = assignment_of_notebook(path, course_root, names) or assignment
    if assignment not in names:
        raise ValueError(f"cannot tell the assignment of {path}: expected its folder or file name to be one "
                         f"of {', '.join(sorted(names))}")
    expected = {n for n, _, _ in _load_pair(course_root, assignment)}
    rel = path.name if path.name in expected or len(expected) != 1 else next(iter(expected))
    task = GradeTask("validate", assignment, {rel: path.read_bytes()}, str(course_root), limits=limits,
                     cases="visible")
    return grade_submission(task)


def _grade_ids(nb):
    return {c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells} - {None}


def _cell_names(nb, solutions_only):
    """Top-level functions and classes the code cells define (the solution cells only, if asked)."""
    return {name for cell in nb.cells if cell.cell_type == "code"
            and not (solutions_only and not rebuild.is_solution_cell(cell))
            for name in rebuild.defined_names(cell.source)}


def assignment_of_notebook(path, course_root, names):
    """The assignment a notebook belongs to, from its own cells' nbgrader metadata (their
    ``grade_id``s against each released notebook's), whatever the file or folder is called;
    None when it shares no graded cell with any."""
    try:
        nb = nbformat.read(str(path), as_version=4)
    except Exception:  # noqa: BLE001 - not a notebook: the caller says so
        return None
    # by grade_ids, or (a notebook whose metadata an editor dropped) by the graded functions it defines
    own, defined = _grade_ids(nb), None
    best, best_shared = None, 0
    for name in sorted(names):
        for released_path in sorted((Path(course_root) / ASSIGNMENTS_DIR / name).glob("*.ipynb")):
            released = nbformat.read(str(released_path), as_version=4)
            if own:
                shared = len(own & {g for g in _grade_ids(released) if g.startswith("test_") or g not in ("setup", "kit")})
            else:
                defined = _cell_names(nb, solutions_only=False) if defined is None else defined
                shared = len(defined & _cell_names(released, solutions_only=True))
            if shared > best_shared:
                best, best_shared = name, shared
    return best


def _sources_digest(course_root, assignment, limits=None):
    limits = Limits.coerce(limits)
    h = hashlib.sha256(grader_version().encode())
    h.update(repr((limits.case_timeout_floor, limits.timeout_multiple, limits.cell_timeout_floor)).encode())
    h.update(source_digest(course_root, assignment).encode())
    return h.hexdigest()[:32]


def calibrate(course_root, assignment, limits=None):
    """Time the instructor's solutions in the sandbox and derive per-case and per-cell time limits."""
    limits = Limits.coerce(limits)
    generous = Limits(**{**limits.__dict__, "case_timeout": max(limits.case_timeout, 600.0),
                         "cell_timeout": max(limits.cell_timeout, 1800.0)})
    files = {name: (Path(course_root) / SOLUTIONS_DIR / assignment / name).read_bytes()
             for name, _, _ in _load_pair(course_root, assignment)}
    res = grade_submission(GradeTask("calibration", assignment, files, str(course_root), limits=generous))
    cases, cells = {}, {}
    for name, nb in res.notebooks.items():
        for test in nb.tests:
            for number, case in enumerate(test.cases, 1):
                seconds = float(case.seconds)
                cases[case_key(name, test.grade_id, number)] = {
                    "seconds": seconds, "outcome": case.outcome,
                    "timeout": round(max(limits.case_timeout_floor, limits.timeout_multiple * seconds), 2)}
        for cell in nb.cells:
            if cell.kind == "code":
                seconds = float(cell.seconds)
                cells[cell_key(name, cell.index)] = {
                    "seconds": seconds, "status": cell.status,
                    "timeout": round(max(limits.cell_timeout_floor, limits.timeout_multiple * seconds), 2)}
    return {"key": _sources_digest(course_root, assignment, limits), "grader_version": grader_version(),
            "assignment": assignment, "cases": cases, "cells": cells, "score": res.score,
            "max_score": res.max_score, "optional_points": res.optional_points, "timings": res.timings.to_json()}


def cached_calibration(course_root, assignment, cache_dir, limits=None):
    """``calibrate``'s result, read from ``cache_dir`` when its key (sources, grader version,
    timeout rules) matches, else computed and stored there (atomically)."""
    key = _sources_digest(course_root, assignment, limits)
    path = Path(cache_dir) / f"calibration-{assignment}-{key}.json"
    try:
        cal = json.loads(path.read_text())
        if cal.get("key") == key:
            return cal
    except (OSError, ValueError):
        pass
    cal = calibrate(course_root, assignment, limits)
    write_atomic(path, json.dumps(cal, sort_keys=True))
    return cal
