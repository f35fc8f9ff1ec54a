"""One run of ``cs231n-grade autograde``: the coordinator, in phases.

``autograde`` runs, in order: collect (read the submissions folder, prepare the grading course),
calibrate (the engine's time limits of each assignment), plan (each task's key, what the result
cache already holds, the payloads of the rest), grade (send the rest to an executor; each result
is stored in the cache as it arrives, so a run killed at any moment, even by SIGKILL, resumes
where it was), record (one idempotent pass over every result, cached ones included: flags, the
gradebook, the graded notebooks; this is what makes a resumed run equal a fresh one), feedback
(pages, in parallel processes) and report (``grades.csv``, ``report.html``). Only this process
writes anything (cache, gradebook, outputs): workers return results and nothing else.

Reading submissions is ``autograder.submissions``, task keys and the result cache
``autograder.cache``, the executors (in-process, local processes, Dask) ``autograder.executors``;
their names are re-exported here. Results are ``autograder.results.TaskResult``s throughout.
"""

import concurrent.futures as cf
import dataclasses
import hashlib
import multiprocessing
import os
import time
from pathlib import Path

from . import course
from .cache import (  # noqa: F401 - re-exported: autograder.batch is where callers find them
    ResultCache,
    _host_gives,
    _host_protections,
    _result_protections,
    calibration_key,
    grader_version,
    graded_in_a_weaker_sandbox,
    limits_key,
    task_key,
)
from .executors import (  # noqa: F401 - re-exported
    DEFAULT_ENGINE,
    ENGINE_ENV,
    SCHEDULER_TIMEOUT,
    DaskExecutor,
    InlineExecutor,
    LocalExecutor,
    _worker_init,
    engine_module,
    failed_result,
    load_engine,
    run_task,
)
from .files import is_notebook_file_name, write_atomic
from .results import Flag
from .submissions import (  # noqa: F401 - re-exported
    MAX_FILE_BYTES,
    MAX_FILES,
    MAX_SUBMISSION_BYTES,
    Collection,
    Submission,
    collect_submissions,
)
from .testspec import without_solution_markers

#: how many times a task that failed for infrastructure reasons is tried again
INFRA_RETRIES = 1


# ------------------------------------------------------------------------------------------
# The coordinator: one run of `cs231n-grade autograde`


@dataclasses.dataclass
class RunOutcome:
    """Everything a run produced, for the summary, the report and tests."""

    out_dir: Path
    collection: Collection
    results: list  # one TaskResult per submission, same order as collection.submissions
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

    folder = Path(out_dir) / "autograded" / result.student / result.assignment
    if not result.graded:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
        return
    wanted = set()
    for name, nb_result in sorted(result.notebooks.items()):
        executed = nb_result.executed_notebook
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
        for flag in map(Flag.from_json, delegation_flags(template, sources)):
            if flag.kind == "library_use":
                allowed.setdefault(flag.grade_id, set()).update(flag.library_names())
    return allowed


def allowed_library_use(flag, allowed):
    """True for a ``library_use`` flag naming only library helpers in ``allowed`` (``reference_flags``)."""
    names = flag.library_names()
    return flag.kind == "library_use" and bool(names) and names <= allowed.get(flag.grade_id, set())


def drop_expected_flags(result, allowed):
    """Remove from ``result`` (in place) the ``library_use`` flags covered by ``allowed``."""
    for nb in result.notebooks.values():
        nb.flags = [flag for flag in nb.flags if not allowed_library_use(flag, allowed)]
    return result


def explain_nothing_to_grade(result, notes):
    """A failed result whose files were skipped while reading says why (a notebook over every size
    cap, say), rather than that the submission was empty."""
    if result.status != "failed" or not notes or result.infrastructure:
        return result
    error = result.error or ""
    if error.endswith("the submission is empty"):
        result.error = "nothing to grade: " + "; ".join(notes)
    elif not any(note in error for note in notes):
        result.error = f"{error} ({'; '.join(notes)})"
    return result


def _engine_flags(result):
    """The engine's flags and notes of a result, as lines for people (notes: renamed notebook, ...)."""
    out = list(result.notes)
    for name, nb in sorted(result.notebooks.items()):
        out.extend(f"{name}: {flag.text()}" for flag in nb.flags)
        out.extend(f"{name}: {note}" for note in nb.notes)
    return out


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
    - submissions: the submissions folder (layouts: see ``autograder.submissions``)
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
    started = time.perf_counter()
    engine_spec = engine or os.environ.get(ENGINE_ENV) or DEFAULT_ENGINE
    refuse_without_sandbox(engine_spec, scheduler, weak_sandbox)
    run = _Run(engine_spec, Path(course_root or default_course_root()).resolve(), Path(out_dir).resolve(),
               Path(submissions).resolve(), limits, workers, scheduler, progress)
    phases = {}
    collection, assignments = _collect(run)
    phases["prepare"] = time.perf_counter() - started
    mark = time.perf_counter()
    # The calibration (time limits) is part of every task's key, so it is needed first; the
    # engine keeps it in <out>/.cache, so a run with nothing new only reads it back.
    calibrations, calibration_problems = _calibrate(run, assignments)
    phases["calibrate"] = time.perf_counter() - mark
    outcome, plan = _plan(run, collection, assignments, calibrations, calibration_problems, phases)
    mark = time.perf_counter()
    _grade(run, outcome, plan)
    phases["grade"] = time.perf_counter() - mark
    mark = time.perf_counter()
    _record(run, outcome)
    phases["record"] = time.perf_counter() - mark
    mark = time.perf_counter()
    if feedback:
        from . import feedback as feedback_mod

        local_workers = 1 if workers == 0 else (workers or os.cpu_count() or 1)
        _feedback(outcome, run.course_root, feedback_mod, local_workers, progress)
    phases["feedback"] = time.perf_counter() - mark
    mark = time.perf_counter()
    _report(outcome, report)
    phases["report"] = time.perf_counter() - mark
    outcome.seconds = time.perf_counter() - started
    return outcome


@dataclasses.dataclass
class _Run:
    """What every phase of one ``autograde`` run needs to know."""

    engine_spec: str
    course_root: Path
    out_dir: Path
    submissions_root: Path
    limits: dict | None
    workers: int | None
    scheduler: str | None
    progress: bool


@dataclasses.dataclass
class _Plan:
    """The plan phase's answer: which submissions to grade now, and what to send for each."""

    todo: list  # indices into the collection's submissions, not served by the cache
    payloads: dict  # index -> ``run_task`` payload
    allowed: dict  # assignment -> the library helpers its reference solution uses (``reference_flags``)


def _collect(run):
    """Collect phase: read the submissions and make the grading folder an nbgrader course for them.
    Returns ``(collection, assignments submitted)``."""
    from . import gradebook

    collection = collect_submissions(run.submissions_root, run.course_root, course.list_assignments(run.course_root))
    assignments = sorted({s.assignment for s in collection.submissions})
    gradebook.prepare_grading_course(run.out_dir, run.course_root, assignments)
    return collection, assignments


def _calibrate(run, assignments):
    """Calibrate phase: each assignment's calibration (None with a custom engine or when it failed)
    and the problems to report."""
    problems = []
    calibrations = {a: _calibration(run.out_dir, run.course_root, a, run.engine_spec, run.limits, problems)
                    for a in assignments}
    return calibrations, problems


def _plan(run, collection, assignments, calibrations, calibration_problems, phases):
    """Plan phase: every task's key; the results the cache holds for them (reused unless graded in
    a weaker sandbox than this host gives); the payloads of the others. Returns ``(outcome, plan)``."""
    from .assignment_digest import source_digest

    subs = collection.submissions
    version = grader_version(run.engine_spec)
    digests = {a: source_digest(run.course_root, a) for a in assignments}
    # what a worker keys its loaded copy of an assignment's material by (engine.GradeTask.material_key)
    material_keys = {a: hashlib.sha256(f"{version}\0{digests[a]}".encode()).hexdigest()[:32] for a in assignments}
    keys = [task_key(version, digests[s.assignment], s, run.limits, calibrations[s.assignment]) for s in subs]
    outcome = RunOutcome(run.out_dir, collection, [None] * len(subs), keys, phases=phases,
                         notebooks_by_assignment={a: course.assignment_notebooks(run.course_root, a)
                                                  for a in assignments},
                         calibration_problems=calibration_problems)
    allowed = {}
    for a in assignments:
        try:
            allowed[a] = reference_flags(run.course_root, a)
        except Exception:  # noqa: BLE001 - a filter only: without it, flags are shown as they are
            allowed[a] = {}
    cache = ResultCache(run.out_dir)
    todo = []
    host = None if run.scheduler else _host_protections()
    for i, key in enumerate(keys):
        cached = cache.load(key)
        reusable = (cached is not None and cached.student == subs[i].student
                    and not graded_in_a_weaker_sandbox(cached, host))
        if reusable:
            outcome.results[i] = drop_expected_flags(cached, allowed[subs[i].assignment])
            outcome.from_cache += 1
        else:
            todo.append(i)

    hidden = _hidden_paths(run.course_root, run.submissions_root, run.out_dir)
    payloads = {}
    for i in todo:
        sub = subs[i]
        payloads[i] = {"engine": run.engine_spec, "key": keys[i], "task": {
            "student": sub.student, "assignment": sub.assignment, "files": sub.files,
            "course_root": str(run.course_root), "limits": dict(run.limits or {}) or None,
            "calibration": calibrations[sub.assignment], "hidden_paths": hidden,
            "material_key": material_keys[sub.assignment]}}

    outcome.calibration_problems += solutions_short_of_full_marks(calibrations)
    return outcome, _Plan(todo, payloads, allowed)


def solutions_short_of_full_marks(calibrations):
    """Lines for the assignments whose instructor's solutions (``{assignment: calibration}``) do
    not earn every point, the optional parts' (extra credit) included."""
    problems = []
    for assignment, cal in sorted(calibrations.items()):
        if not isinstance(cal, dict):
            continue
        top, extra = float(cal.get("max_score") or 0), float(cal.get("optional_points") or 0)
        if top + extra and float(cal.get("score", 0)) < top + extra:
            problems.append(f"{assignment}: the instructor's own solutions score {cal['score']:g} of {top + extra:g} "
                            f"points ({top:g}" + (f" and {extra:g} of extra credit)" if extra else ")"))
    return problems


def _executor(run):
    if run.scheduler:
        return DaskExecutor(run.scheduler)
    if run.workers == 0:
        return InlineExecutor()
    return LocalExecutor(run.workers or os.cpu_count() or 1)


def _grade(run, outcome, plan):
    """Grade phase: run the planned tasks. Each result goes into the cache as it arrives (so a run
    killed midway keeps what was graded; a result failed for infrastructure reasons is tried once
    more, then kept out of the cache) and into ``outcome.results``. The gradebook and the graded
    notebooks are written once per result, by the record phase."""
    if not plan.todo:
        return
    subs = outcome.collection.submissions
    cache = ResultCache(run.out_dir)
    executor = _executor(run)
    outcome.workers = executor.workers
    bar = _progress_bar(len(plan.todo), run.progress)
    try:
        attempt, rounds = {i: 0 for i in plan.todo}, list(plan.todo)
        while rounds:
            order = list(rounds)
            rounds = []
            for j, result in executor.run([plan.payloads[i] for i in order]):
                i = order[j]
                attempt[i] += 1
                if result.status == "failed" and result.infrastructure and not result.final \
                        and attempt[i] <= INFRA_RETRIES:
                    rounds.append(i)  # a kernel-start race or a lost worker: once more
                    outcome.retried += 1
                    continue
                outcome.graded_now += 1
                if not result.infrastructure:
                    cache.store(outcome.keys[i], result)
                outcome.results[i] = drop_expected_flags(result, plan.allowed[subs[i].assignment])
                bar.update(1)
                if not result.graded:
                    bar.set_postfix_str(f"failed: {subs[i].student}/{subs[i].assignment}", refresh=False)
    finally:
        bar.close()
        executor.close()


def _record(run, outcome):
    """Record phase: one idempotent pass over every result (cached ones included), the only place
    results are written to the gradebook: coordinator flags, the gradebook row, the graded
    notebooks, what the gradebook holds that this run did not grade. This is what makes a resumed
    run equal a fresh one (a killed run left its results in the cache, not in the gradebook)."""
    from . import gradebook, similarity

    subs = outcome.collection.submissions
    with gradebook.open_gradebook(run.out_dir) as gb:
        similar = similarity.find_similar(outcome.results, run.course_root)
        for i, result in enumerate(outcome.results):
            task = result.task
            explain_nothing_to_grade(result, subs[i].notes)
            outcome.flags_by_task[task] = _engine_flags(result) + list(subs[i].notes) + similar.get(task, [])
            gradebook.record_result(gb, result, subs[i].timestamp, outcome.keys[i])
            if result.graded:
                # written answers: what the gradebook holds (a person may have graded them)
                result.manual = gradebook.manual_grading(gb, result.assignment, result.student)
            write_autograded(run.out_dir, result)
            if similar.get(task):
                _flag_notebooks(gb, result)
        outcome.absent_from_run = gradebook.absent_from_run(gb, outcome.results, outcome.collection.students)


def _report(outcome, report):
    """Report phase: ``grades.csv`` and (unless ``report`` is false) ``report.html``."""
    from . import gradebook

    outcome.grades_path = outcome.out_dir / "grades.csv"
    gradebook.write_grades_csv(outcome.grades_path, outcome.results, outcome.notebooks_by_assignment,
                               outcome.flags_by_task)
    if report:
        from . import report as report_mod

        outcome.report_path = report_mod.write_report(outcome, outcome.out_dir / "report.html")


def _flag_notebooks(gb, result):
    """Mark every notebook of a submission as flagged in the gradebook (formgrader shows it)."""
    from nbgrader.api import MissingEntry

    try:
        submission = gb.find_submission(result.assignment, result.student)
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
        student, assignment = result.student, result.assignment
        mark = marks / (hashlib.sha256(f"{student}\0{assignment}".encode()).hexdigest()[:32] + ".txt")
        if not result.graded:
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
