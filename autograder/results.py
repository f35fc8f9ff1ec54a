"""What grading one task produces, as typed objects, and their JSON form.

The engine builds these objects, the executors carry them, the coordinator reads them (the cache,
the gradebook, the failure pages, the report). Only at the edges are they JSON: the cache files
(``<out>/.cache/<key>.json``), what a worker process hands back to the coordinator
(``executors.run_task``), and the plain dict a custom engine (``CS231N_GRADE_ENGINE``) returns.

Every class has ``to_json() -> dict`` and ``from_json(dict) -> cls``, with
``cls.from_json(x.to_json()) == x``. ``to_json`` writes exactly the keys below (those the grader
wrote before these classes existed, and the extra-credit fields), so older cache files read back. ``from_json`` fills in a default for
each field marked *default* that a dict leaves out (results cached by an older grader, a custom
engine's result), leaves out keys it does not know, and raises ``ResultFormatError`` naming the
field, what was expected and what was found for anything else. The JSON form of a task result::

    {"student": str, "assignment": str,
     "status": "graded" | "failed",     # failed: the GRADER could not grade (e.g. no notebook sent)
     "error": str | None,               # why, when failed (default None)
     "notes": [str],                    # e.g. "convolution.ipynb was not found; ... graded in its place" (default [])
     "score": float, "max_score": float,  # score counts optional points earned; max_score does not
     "optional_points": float,          # points of the optional tests, not in max_score (default 0)
     "notebooks": {"<name>.ipynb": NotebookResult},   # (default {})
     "timings": Timings,                # (default: zeros)
     "protections": {...,               # sandbox_protections() of the host (default {})
                     "applied": {...}}, # what the kernel's wrapper applied (user, mounts, rlimits)
     "infrastructure": true,            # only when set: failed for the grader's own reasons (a lost
                                        # worker, an engine fault); never cached, tried once more
     "final": true,                     # only when set: such a failure already retried on its own
     "manual": ManualGrading}           # only when set: the written answers as the gradebook holds
                                        # them (added by the record phase, never cached)

    NotebookResult: {
     "status": "graded" | "missing" | "unreadable",
     "message": str,                    # for missing/unreadable: why (for the student) (default "")
     "submitted_as": str | None,        # the submitted file that was graded (default None)
     "notes": [str],                    # for review: solution cells or answers not found, the stub
                                        # graded (default [])
     "found": [str],                    # answers graded from another cell than their own, not for review,
                                        # e.g. "max_pool_forward_naive found in cell 14, not in its own
                                        # cell: graded" (default [])
     "score": float, "max_score": float,
     "optional_points": float,          # (default 0)
     "tests": [TestResult], "cells": [CellRecord],          # (default [])
     "solution_sources": {grade_id: source},                # (default {})
     "flags": [Flag],                   # for a person to review; never change a score (default [])
     "answers": [WrittenAnswer],        # written answers, for a person to grade (default [])
     "executed_notebook": nbformat v4 dict | None}          # the rebuilt notebook with outputs; test
                                        # cells show their visible source and the feedback (default None)

    TestResult: {"grade_id": str, "points": float, "score": float,
                 "optional": bool,      # extra credit: its points are not in max_score (default false)
                 "cases": [CaseResult]}                     # (default [])
    CaseResult: {"check": str, "hidden": bool,
                 "description": str,    # describe(case); "hidden case k" for a hidden case (default "")
                 "outcome": "passed"|"wrong"|"error"|"timeout"|"crashed"|"tampered"|"not_run",
                 "limited": bool,       # message and hints in fixed words only (default false)
                 "message": str, "hints": [str], "seconds": float}      # (defaults "", [], 0)
    CellRecord: {"index": int, "grade_id": str | None,                  # (default None)
                 "kind": "code"|"test"|"skipped"|"markdown",            # (default "code")
                 "seconds": float,                                       # (default 0)
                 "status": "ok"|"error"|"timeout"|"crashed"|"flooded"|"skipped"|"test"|"not_run"|...}
    Flag: {"kind": "delegation"|"library_use"|"tampering"|"dynamic_code"|"own_module"|...,
           "grade_id": str | None, "detail": str}   # (defaults None, ""; "message" is read as "detail")
                                        # autograder.integrity's flags: for a person, never a score
    WrittenAnswer: {"grade_id": str, "points": float, "answered": bool, "digest": str}
    Timings: {"kernel_start": s, "kernel_starts": n, "numba_compile": s | None, "total": s,
              "task_seconds": s}        # only when set: the whole task, measured by run_task
    ManualGrading: {"points": float, "answers": int, "pending": [grade_id], "score": float}
"""

from dataclasses import dataclass, field

__all__ = ["ResultFormatError", "TaskResult", "NotebookResult", "TestResult", "CaseResult", "CellRecord", "Flag",
           "WrittenAnswer", "Timings", "ManualGrading", "TASK_STATUSES", "NOTEBOOK_STATUSES", "OUTCOMES"]

TASK_STATUSES = ("graded", "failed")
NOTEBOOK_STATUSES = ("graded", "missing", "unreadable")
OUTCOMES = ("passed", "wrong", "error", "timeout", "crashed", "tampered", "not_run")


class ResultFormatError(ValueError):
    """A result's JSON form that is not the one described above (which field, expected, found)."""


# ------------------------------------------------------------------------------------------
# Reading a JSON object field by field


_REQUIRED = object()  # a field without a default: a dict without it is refused


def _shown(value):
    """A found value as an error message shows it: short, with its type."""
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return f"{text} ({type(value).__name__})"


class _Fields:
    """The fields of one JSON object (``where`` names it in errors, e.g. ``result.notebooks['a.ipynb']``)."""

    def __init__(self, data, where):
        if not isinstance(data, dict):
            raise ResultFormatError(f"{where}: expected an object (a dict), found {_shown(data)}")
        self.data, self.where = data, where

    def _value(self, key, default):
        """``(value, present)``; raises when a field without a default is missing."""
        if key in self.data:
            return self.data[key], True
        if default is _REQUIRED:
            raise ResultFormatError(f"{self.where}: expected a field {key!r}, found only "
                                    f"{', '.join(map(repr, sorted(self.data, key=str))) or 'no fields'}")
        return default, False

    def refuse(self, key, expected, value):
        """Raise the error for field ``key``: what was expected, what was found."""
        raise ResultFormatError(f"{self.where}.{key}: expected {expected}, found {_shown(value)}")

    def text(self, key, default=_REQUIRED, choices=None, or_none=False):
        value, present = self._value(key, default)
        if not present or (or_none and value is None):
            return value
        if not isinstance(value, str):
            self.refuse(key, "a string" + (" or null" if or_none else ""), value)
        if choices is not None and value not in choices:
            self.refuse(key, f"one of {', '.join(map(repr, choices))}", value)
        return value

    def number(self, key, default=_REQUIRED, or_none=False):
        value, present = self._value(key, default)
        if not present or (or_none and value is None):
            return value
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.refuse(key, "a number" + (" or null" if or_none else ""), value)
        return float(value)

    def integer(self, key, default=_REQUIRED):
        value, present = self._value(key, default)
        if present and (isinstance(value, bool) or not isinstance(value, int)):
            self.refuse(key, "an integer", value)
        return value

    def boolean(self, key, default=_REQUIRED):
        value, present = self._value(key, default)
        if present and not isinstance(value, bool):
            self.refuse(key, "true or false", value)
        return value

    def texts(self, key, default=()):
        """A list of strings (a new list)."""
        value, present = self._value(key, default)
        if present and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            self.refuse(key, "a list of strings", value)
        return list(value)

    def read(self, key, read):
        """An object read by ``read(item, where)``, or None when absent or null."""
        value, _ = self._value(key, None)
        return None if value is None else read(value, f"{self.where}.{key}")

    def objects(self, key, read, default=()):
        """A list of objects, each read by ``read(item, where)``."""
        value, present = self._value(key, default)
        if present and not isinstance(value, list):
            self.refuse(key, "a list", value)
        return [read(item, f"{self.where}.{key}[{i}]") for i, item in enumerate(value)]

    def mapping(self, key, or_none=False):
        """A JSON object kept as it is (when absent: a new empty dict, or None if ``or_none``)."""
        value, present = self._value(key, None)
        if not present or (or_none and value is None):
            return None if or_none else {}
        if not isinstance(value, dict):
            self.refuse(key, "an object (a dict)" + (" or null" if or_none else ""), value)
        return value


# ------------------------------------------------------------------------------------------
# The parts of a result, from the smallest


@dataclass
class CaseResult:
    """One case of a check: what happened when the student's function met one input."""

    check: str
    hidden: bool
    outcome: str  # one of OUTCOMES
    description: str = ""  # describe(case), or "hidden case k"
    limited: bool = False  # message and hints in fixed words only (see autograder.engine)
    message: str = ""
    hints: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self):
        return self.outcome == "passed"

    def to_json(self):
        return {"check": self.check, "hidden": self.hidden, "description": self.description,
                "outcome": self.outcome, "limited": self.limited, "message": self.message,
                "hints": list(self.hints), "seconds": self.seconds}

    @classmethod
    def from_json(cls, data, where="case"):
        f = _Fields(data, where)
        return cls(check=f.text("check"), hidden=f.boolean("hidden"), outcome=f.text("outcome", choices=OUTCOMES),
                   description=f.text("description", ""), limited=f.boolean("limited", False),
                   message=f.text("message", ""), hints=f.texts("hints"), seconds=f.number("seconds", 0.0))


@dataclass
class TestResult:
    """One test cell: its points, split evenly over its cases, and the score they earned."""

    __test__ = False  # not a pytest test class, whatever its name

    grade_id: str
    points: float
    score: float = 0.0
    cases: list[CaseResult] = field(default_factory=list)
    optional: bool = False  # extra credit: its points are not part of max_score

    def to_json(self):
        return {"grade_id": self.grade_id, "points": self.points, "score": self.score,
                "optional": self.optional, "cases": [case.to_json() for case in self.cases]}

    @classmethod
    def from_json(cls, data, where="test"):
        f = _Fields(data, where)
        return cls(grade_id=f.text("grade_id"), points=f.number("points"), score=f.number("score"),
                   cases=f.objects("cases", CaseResult.from_json), optional=f.boolean("optional", False))


@dataclass
class CellRecord:
    """How one cell of the rebuilt notebook ran."""

    index: int
    status: str  # "ok", "error", "timeout", "crashed", "flooded", "skipped", "test", "not_run", ...
    grade_id: str | None = None
    kind: str = "code"  # "code", "test", "skipped" or "markdown"
    seconds: float = 0.0

    def to_json(self):
        return {"index": self.index, "grade_id": self.grade_id, "kind": self.kind, "seconds": self.seconds,
                "status": self.status}

    @classmethod
    def from_json(cls, data, where="cell"):
        f = _Fields(data, where)
        return cls(index=f.integer("index"), status=f.text("status"), grade_id=f.text("grade_id", None, or_none=True),
                   kind=f.text("kind", "code"), seconds=f.number("seconds", 0.0))


@dataclass
class Flag:
    """Something for a person to review (``autograder.integrity``); it never changes a score."""

    kind: str
    grade_id: str | None = None
    detail: str = ""

    def text(self):
        """The flag in one line: ``kind in grade_id: detail``."""
        where = f" in {self.grade_id}" if self.grade_id else ""
        return f"{self.kind}{where}: {self.detail}" if self.detail else f"{self.kind}{where}"

    def library_names(self):
        """The library names a ``library_use`` flag lists (``uses a.b, a.c`` -> {"a.b", "a.c"})."""
        return set(self.detail[len("uses "):].split(", ")) if self.detail.startswith("uses ") else set()

    def to_json(self):
        return {"kind": self.kind, "grade_id": self.grade_id, "detail": self.detail}

    @classmethod
    def from_json(cls, data, where="flag"):
        f = _Fields(data, where)
        detail = f.text("detail", None, or_none=True)
        if detail is None:  # a custom engine's flag may say it as "message"
            detail = f.text("message", "", or_none=True) or ""
        return cls(kind=f.text("kind"), grade_id=f.text("grade_id", None, or_none=True), detail=detail)


@dataclass
class WrittenAnswer:
    """A written answer (a markdown solution cell): left for a person to grade."""

    grade_id: str
    points: float
    answered: bool  # False when the cell still holds the released text (0 points without a person)
    digest: str  # what identifies the answer's text (engine.answer_digest)

    def to_json(self):
        return {"grade_id": self.grade_id, "points": self.points, "answered": self.answered, "digest": self.digest}

    @classmethod
    def from_json(cls, data, where="answer"):
        f = _Fields(data, where)
        return cls(grade_id=f.text("grade_id"), points=f.number("points"), answered=f.boolean("answered"),
                   digest=f.text("digest"))


@dataclass
class NotebookResult:
    """One notebook of an assignment: graded, or why not (missing, unreadable) and what it was worth."""

    status: str  # one of NOTEBOOK_STATUSES
    message: str = ""
    submitted_as: str | None = None
    notes: list[str] = field(default_factory=list)
    found: list[str] = field(default_factory=list)
    score: float = 0.0
    max_score: float = 0.0
    optional_points: float = 0.0
    tests: list[TestResult] = field(default_factory=list)
    cells: list[CellRecord] = field(default_factory=list)
    solution_sources: dict[str, str] = field(default_factory=dict)
    flags: list[Flag] = field(default_factory=list)
    answers: list[WrittenAnswer] = field(default_factory=list)
    executed_notebook: dict | None = None

    @property
    def graded(self):
        return self.status == "graded"

    def to_json(self):
        """The JSON form (``executed_notebook`` is the same dict, not a copy)."""
        return {"status": self.status, "message": self.message, "submitted_as": self.submitted_as,
                "notes": list(self.notes), "score": self.score, "max_score": self.max_score,
                "optional_points": self.optional_points, "tests": [t.to_json() for t in self.tests],
                "cells": [c.to_json() for c in self.cells], "solution_sources": dict(self.solution_sources),
                "flags": [f.to_json() for f in self.flags], "executed_notebook": self.executed_notebook,
                "answers": [a.to_json() for a in self.answers], "found": list(self.found)}

    @classmethod
    def from_json(cls, data, where="notebook"):
        f = _Fields(data, where)
        sources = f.mapping("solution_sources")
        for grade_id, source in sources.items():
            if not isinstance(source, str):
                f.refuse(f"solution_sources[{grade_id!r}]", "a string", source)
        return cls(status=f.text("status", choices=NOTEBOOK_STATUSES), message=f.text("message", ""),
                   submitted_as=f.text("submitted_as", None, or_none=True), notes=f.texts("notes"),
                   found=f.texts("found"), score=f.number("score"), max_score=f.number("max_score"),
                   optional_points=f.number("optional_points", 0.0),
                   tests=f.objects("tests", TestResult.from_json), cells=f.objects("cells", CellRecord.from_json),
                   solution_sources=dict(sources), flags=f.objects("flags", Flag.from_json),
                   answers=f.objects("answers", WrittenAnswer.from_json),
                   executed_notebook=f.mapping("executed_notebook", or_none=True))


@dataclass
class Timings:
    """Where a task's time went (seconds)."""

    kernel_start: float = 0.0  # starting kernels (all restarts included) and arming the Numba timer
    kernel_starts: int = 0  # 1 per notebook, +1 per restart after a crash or a kill
    numba_compile: float | None = None  # reported by the kernels; None when nothing ran
    total: float = 0.0  # the engine's own time
    task_seconds: float | None = None  # the whole task as run_task measured it (written only when set)

    def to_json(self):
        out = {"kernel_start": self.kernel_start, "kernel_starts": self.kernel_starts,
               "numba_compile": self.numba_compile, "total": self.total}
        if self.task_seconds is not None:
            out["task_seconds"] = self.task_seconds
        return out

    @classmethod
    def from_json(cls, data, where="timings"):
        f = _Fields(data, where)
        return cls(kernel_start=f.number("kernel_start", 0.0), kernel_starts=f.integer("kernel_starts", 0),
                   numba_compile=f.number("numba_compile", None, or_none=True), total=f.number("total", 0.0),
                   task_seconds=f.number("task_seconds", None, or_none=True))


@dataclass
class ManualGrading:
    """The written answers of a submission as the gradebook holds them (``gradebook.manual_grading``)."""

    points: float  # what the written answers are worth
    answers: int  # how many there are
    pending: list[str]  # grade_ids still waiting for a person
    score: float  # what they have earned so far (manual grades, 0 for blank answers)

    def to_json(self):
        return {"points": self.points, "answers": self.answers, "pending": list(self.pending), "score": self.score}

    @classmethod
    def from_json(cls, data, where="manual"):
        f = _Fields(data, where)
        return cls(points=f.number("points"), answers=f.integer("answers"), pending=f.texts("pending", _REQUIRED),
                   score=f.number("score"))


@dataclass
class TaskResult:
    """One student's one assignment, graded (or why it could not be)."""

    student: str
    assignment: str
    status: str  # one of TASK_STATUSES
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    score: float = 0.0  # optional points earned included
    max_score: float = 0.0  # optional points not included
    optional_points: float = 0.0
    notebooks: dict[str, NotebookResult] = field(default_factory=dict)
    timings: Timings = field(default_factory=Timings)
    protections: dict = field(default_factory=dict)
    infrastructure: bool = False  # failed for the grader's own reasons: never cached, tried once more
    final: bool = False  # such a failure, already retried on its own: not tried again in this run
    manual: ManualGrading | None = None  # the written answers (the record phase); never cached

    @property
    def graded(self):
        return self.status == "graded"

    @property
    def task(self):
        """``(student, assignment)``."""
        return self.student, self.assignment

    def tests(self):
        """``(notebook name, test)`` for every test of every notebook, notebooks by name."""
        return [(name, test) for name, nb in sorted(self.notebooks.items()) for test in nb.tests]

    def extra_credit(self):
        """The points earned on optional parts (in ``score``, outside ``max_score``)."""
        return sum(test.score for _, test in self.tests() if test.optional)

    def to_json(self):
        out = {"student": self.student, "assignment": self.assignment, "status": self.status, "error": self.error,
               "notes": list(self.notes), "notebooks": {name: nb.to_json() for name, nb in self.notebooks.items()},
               "score": self.score, "max_score": self.max_score, "optional_points": self.optional_points,
               "timings": self.timings.to_json(), "protections": self.protections}
        if self.infrastructure:
            out["infrastructure"] = True
        if self.final:
            out["final"] = True
        if self.manual is not None:
            out["manual"] = self.manual.to_json()
        return out

    @classmethod
    def from_json(cls, data, where="result"):
        f = _Fields(data, where)
        notebooks = f.mapping("notebooks")
        for name in notebooks:
            if not isinstance(name, str):
                f.refuse("notebooks", "notebook names (strings) as keys", name)
        return cls(student=f.text("student"), assignment=f.text("assignment"),
                   status=f.text("status", choices=TASK_STATUSES), error=f.text("error", None, or_none=True),
                   notes=f.texts("notes"), score=f.number("score"), max_score=f.number("max_score"),
                   optional_points=f.number("optional_points", 0.0),
                   notebooks={name: NotebookResult.from_json(nb, f"{where}.notebooks[{name!r}]")
                              for name, nb in notebooks.items()},
                   timings=Timings.from_json(f.mapping("timings"), f"{where}.timings"),
                   protections=f.mapping("protections"), infrastructure=f.boolean("infrastructure", False),
                   final=f.boolean("final", False),
                   manual=f.read("manual", ManualGrading.from_json))

    @classmethod
    def coerce(cls, value, where="result"):
        """``value`` itself when it is a ``TaskResult``, else read from its JSON form (a custom engine's dict)."""
        return value if isinstance(value, cls) else cls.from_json(value, where)
