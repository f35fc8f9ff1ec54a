"""Task keys and the result cache (coordinator side).

A task's result is a pure function of the assignment's source notebooks, that student's files,
the grader version, the grading limits (``Limits``) and the calibration's time limits, so it is
cached in ``<out>/.cache/<key>.json`` under a content hash of exactly those (``task_key``),
written atomically, in its JSON form (``autograder.results``). A cached result graded in a weaker
sandbox than this host now gives (``graded_in_a_weaker_sandbox``) is graded again rather than reused.
"""

import dataclasses
import hashlib
import json
import os
from pathlib import Path

from .executors import DEFAULT_ENGINE, ENGINE_ENV, engine_module, load_engine
from .files import write_atomic
from .results import TaskResult


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
    """True when ``result`` (a ``TaskResult``) was graded without a protection this host gives (a mount
    namespace, a user of its own, a process cap): such a cached result is graded again rather than
    reused. So a result graded with ``--weak-sandbox`` is graded again once user namespaces or root are
    available, and one graded in user namespaces is graded again as root (which adds a user of its own)."""
    applied = result.protections.get("applied") if result is not None else None
    if not applied or not host:
        return False
    return bool(_host_gives(host) - _result_protections(applied, os.getuid()))


class ResultCache:
    """``<out>/.cache/<key>.json`` holding one task's result (its JSON form), written atomically."""

    def __init__(self, out_dir):
        self.folder = Path(out_dir) / ".cache"
        self.folder.mkdir(parents=True, exist_ok=True)

    def path(self, key):
        return self.folder / f"{key}.json"

    def load(self, key):
        """The ``TaskResult`` stored under ``key``, or None: absent, a torn file from a crash long ago,
        or not a result (``ResultFormatError``): grade again."""
        try:
            return TaskResult.from_json(json.loads(self.path(key).read_text(encoding="utf-8")))
        except (OSError, ValueError):  # a ResultFormatError is a ValueError too
            return None

    def store(self, key, result):
        """Store ``result`` (a ``TaskResult``) under ``key``."""
        write_atomic(self.path(key), json.dumps(result.to_json(), sort_keys=True))
