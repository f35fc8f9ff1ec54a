"""Running grading tasks: in this process, on local worker processes or on a Dask cluster.

One task grades one student's one assignment (``grade_task``: a plain payload in, a
``results.TaskResult`` out; it never raises). A worker process hands its result back in the JSON
form (``run_task``), and the executor reads it back: every executor yields ``(index, TaskResult)``
as tasks finish. Workers return results and nothing else: only the coordinating process writes
anything (cache, gradebook, outputs). A task failed for infrastructure reasons (an engine fault, a
custom engine's malformed result, a worker that died, a lost Dask worker) comes back as a
``failed_result`` with ``infrastructure`` set, which is never cached.
"""

import concurrent.futures as cf
import importlib
import importlib.util
import multiprocessing
import os
import threading
import time
import traceback

from . import course
from .results import ResultFormatError, TaskResult

DEFAULT_ENGINE = "autograder.engine:grade_submission"
ENGINE_ENV = "CS231N_GRADE_ENGINE"  # "module:function" or "path/to/file.py:function" (tests, benchmarks)
SCHEDULER_TIMEOUT = "30s"  # connecting to a Dask scheduler


def engine_module():
    return importlib.import_module("autograder.engine")



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
    """The result of a task that could not be graded (``infrastructure``: for the grader's own reasons)."""
    return TaskResult(student, assignment, "failed", error=error, infrastructure=infrastructure)


def grade_task(payload):
    """Grade one task; never raises. ``payload``: a plain dict ``{"engine": "module:function",
    "key": task key, "task": the engine's task fields}`` (built by ``batch``'s plan phase).

    The default engine returns a ``TaskResult``; a custom engine may return its JSON form (a dict),
    read here. An engine that raises, or returns something that is not a result, costs this task
    only: it comes back failed, for infrastructure reasons (the coordinator tries it once more).
    """
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
        result = TaskResult.coerce(result)
    except ResultFormatError as exc:  # a custom engine's result that is not one
        result = _grader_fault(payload, f"grader error: {payload['engine']} returned a malformed result: {exc}")
    except Exception as exc:  # an engine bug or a lost kernel: the coordinator retries once
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        result = _grader_fault(payload, f"grader error: {detail}")
    result.timings.task_seconds = time.perf_counter() - start
    return result


def _grader_fault(payload, error):
    """The failed result of the task of ``payload``, for the grader's own reasons."""
    t = payload["task"]
    return failed_result(t["student"], t["assignment"], error, infrastructure=True)


def run_task(payload):
    """``grade_task`` in a worker process: the result in its JSON form (what crosses the process
    boundary; the executor reads it back with ``from_worker``)."""
    return grade_task(payload).to_json()


def from_worker(data, payload):
    """The ``TaskResult`` of the JSON form a worker sent back for ``payload``; a malformed one (a
    worker running another version of the grader) costs this task only."""
    try:
        return TaskResult.from_json(data)
    except ResultFormatError as exc:
        return _grader_fault(payload, f"grader error: the worker sent back a malformed result: {exc}")


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
                        data = fut.result()
                    except cf.process.BrokenProcessPool:
                        suspects.append(i)
                        broken = True
                        continue
                    yield i, from_worker(data, payloads[i])
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
                result = _grader_fault(payloads[i], "the grading process died while grading this submission, twice")
                result.final = True  # already retried on its own: do not retry again now
                yield i, result

    def close(self):
        pass


class InlineExecutor:
    """Grade in this very process, one task after another (tests and debugging: no isolation)."""

    workers = 1

    def run(self, payloads):
        for i, payload in enumerate(payloads):
            yield i, grade_task(payload)

    def close(self):
        pass


class DaskExecutor:
    """Send tasks to a Dask distributed scheduler at ``address``.

    Workers must see the course at the same path as the coordinator (a shared filesystem or the
    same machine) and have this package installed. Tasks run ``autograder.executors.run_task``; a
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
                result = from_worker(fut.result(), payloads[i])
            except Exception as exc:  # KilledWorker, lost connection, ...
                result = _grader_fault(payloads[i], f"Dask task failed: {type(exc).__name__}: {exc}")
            fut.release()
            yield i, result

    def close(self):
        self.client.close()
