"""Near-identical solutions across students: a flag for a person to review, never a penalty.

For each assignment, a student's code is the concatenation of their solution cells (matched by
``grade_id``), each normalised by ``autograder.integrity.normalise_source`` (comments, blank
lines, formatting and local names do not count) and with cells still equal to the released
template stub left out. Two students are flagged when the ``difflib`` similarity ratio of their
codes is at least ``THRESHOLD`` and both wrote at least ``MIN_CHARS`` normalised characters
(short functions such as a one-line size formula come out alike when written independently).

``THRESHOLD = 0.90``, calibrated on the sample class (``tests/autograder/test_integrity.py``): on
normalised code (names, comments, docstrings, asserts and bare strings gone) the independently
written convolution solutions of ``examples/`` score 0.79 at most between any two, while a copy
with renamed variables, new comments, docstrings and asserts added scores 1.0, and one with a
few statements changed as well stays above 0.9.

One comparison does at most ``MAX_STEPS`` steps of difflib's matching (about 20 s here): its cost
is cubic on repetitive text, and two students who each sent 8,000 characters of one repeated
statement held the run for 4.5 minutes (26,000 characters: hours), before any grade reached the
gradebook. A pair that needs more is flagged for a person without a ratio.
"""

import difflib
from pathlib import Path

import nbformat

from . import course

THRESHOLD = 0.90
MIN_CHARS = 150
#: steps of difflib's inner loop (positions looked at) one pair may take; the course's longest
#: solutions (5,000 characters) take 3 million against a near copy, 26 million against unrelated code
MAX_STEPS = 50_000_000
#: longer sources are compared as written (blank space aside), not parsed into the normal form,
#: which costs about 7 s and 200 MB of the coordinator's memory per megabyte of source (a notebook
#: may hold 20 MB), while the course's longest solutions have 5,000 characters
MAX_NORMALISED_CHARS = 100_000


class _TooCostly(Exception):
    """A comparison that would take more than ``MAX_STEPS`` steps."""


class _BoundedMatcher(difflib.SequenceMatcher):
    """difflib's matcher (no junk heuristic) that raises ``_TooCostly`` once the positions its
    searches look at pass ``MAX_STEPS`` since ``steps`` was last set to 0; each search is charged
    before it runs, with the positions it may look at."""

    def __init__(self):
        super().__init__(None, autojunk=False)
        self.steps = 0

    def find_longest_match(self, alo=0, ahi=None, blo=0, bhi=None):
        ahi = len(self.a) if ahi is None else ahi
        self.steps += sum(len(self.b2j.get(x, ())) for x in self.a[alo:ahi])
        if self.steps > MAX_STEPS:
            raise _TooCostly
        return super().find_longest_match(alo, ahi, blo, bhi)


def _normalise(source):
    if len(source) <= MAX_NORMALISED_CHARS:
        try:
            from .integrity import normalise_source

            return normalise_source(source)
        except Exception:  # noqa: BLE001 - code that does not parse: compared as written
            pass
    return "\n".join(line.strip() for line in source.splitlines() if line.strip())


def template_stubs(course_root, assignment):
    """Normalised sources of the released notebook's solution cells, by grade_id."""
    stubs = {}
    folder = Path(course_root) / course.ASSIGNMENTS_DIR / assignment
    for path in sorted(folder.glob("*.ipynb")):
        nb = nbformat.read(str(path), as_version=4)
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader", {})
            if meta.get("solution") and meta.get("grade_id"):
                stubs[meta["grade_id"]] = _normalise(cell.source)
    return stubs


def student_code(result, stubs):
    """One student's normalised code for an assignment (a ``TaskResult``; stub cells left out)."""
    parts = []
    for nb_name in sorted(result.notebooks):
        sources = result.notebooks[nb_name].solution_sources
        for grade_id in sorted(sources):
            code = _normalise(sources[grade_id])
            if code and code != stubs.get(grade_id):
                parts.append(code)
    return "\n".join(parts)


def similar_pairs(codes, threshold=THRESHOLD, min_chars=MIN_CHARS):
    """Pairs ``(a, b, ratio)`` of keys of ``codes`` (key -> code) at least ``threshold`` alike;
    ``ratio`` is None for a pair alike at a glance (same length and characters) whose comparison
    would take more than ``MAX_STEPS``."""
    keys = sorted(k for k, code in codes.items() if len(code) >= min_chars)
    pairs = []
    for i, a in enumerate(keys):
        matcher = _BoundedMatcher()
        matcher.set_seq2(codes[a])
        for b in keys[i + 1:]:
            matcher.set_seq1(codes[b])
            if matcher.real_quick_ratio() < threshold or matcher.quick_ratio() < threshold:
                continue
            matcher.steps = 0
            try:
                ratio = 1.0 if codes[a] == codes[b] else matcher.ratio()
            except _TooCostly:
                ratio = None
            if ratio is None or ratio >= threshold:
                pairs.append((a, b, ratio))
    return pairs


def find_similar(results, course_root, threshold=THRESHOLD):
    """Flags ``{(student, assignment): [text, ...]}`` for near-identical solutions (``results``: ``TaskResult``s)."""
    flags = {}
    by_assignment = {}
    for result in results:
        if result is not None and result.graded:
            by_assignment.setdefault(result.assignment, []).append(result)
    for assignment, group in sorted(by_assignment.items()):
        stubs = template_stubs(course_root, assignment)
        codes = {r.student: student_code(r, stubs) for r in group}
        for a, b, ratio in similar_pairs(codes, threshold):
            for one, other in ((a, b), (b, a)):
                flags.setdefault((one, assignment), []).append(
                    f"solutions near-identical to {other}'s (similarity {ratio:.2f})" if ratio is not None else
                    f"solutions alike at a glance to {other}'s, too long or repetitive to compare in full")
    return flags
