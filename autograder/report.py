"""The class report (``report.html``) and the summary printed at the end of a run.

The report is one self-contained HTML file: the score histogram per assignment, pass rates per
test, the most common kinds of failure and their messages, the slowest cells, the flags for
review and the submissions that could not be graded. Plots are matplotlib PNGs embedded as
base64. Every string that comes from a submission (student ids, messages) is escaped.
"""

import base64
import collections
import html
import io
import re
from pathlib import Path

from .files import printable, write_atomic
from .results import OUTCOMES


def _e(text):
    return html.escape(str(text), quote=True)


def iter_cases(result):
    """Yield ``(notebook, test, case)`` for every case of a graded result (a ``TaskResult``)."""
    for nb_name, test in result.tests():
        for case in test.cases:
            yield nb_name, test, case


def test_stats(results):
    """Per (assignment, grade_id): cases by outcome, mean score and points."""
    stats = {}
    for result in results:
        if not result.graded:
            continue
        for _, test in result.tests():
            entry = stats.setdefault((result.assignment, test.grade_id),
                                     {"outcomes": collections.Counter(), "scores": [], "points": test.points})
            entry["scores"].append(test.score)
            for case in test.cases:
                entry["outcomes"][case.outcome] += 1
    return stats


def _message_pattern(message):
    """A failure message with its numbers blurred, so the same mistake groups together."""
    first = (message or "").strip().splitlines()[0] if (message or "").strip() else "(no message)"
    return re.sub(r"\d+(\.\d+)?(e-?\d+)?", "#", first)[:160]


def common_failures(results, top=12):
    """The most common (outcome, test, message pattern) among failed cases, with counts."""
    counter = collections.Counter()
    for result in results:
        if not result.graded:
            continue
        for _, test, case in iter_cases(result):
            if not case.passed:
                counter[(case.outcome, test.grade_id, _message_pattern(case.message))] += 1
    return counter.most_common(top)


def _catalogue(check_name):
    """The known mistakes' hints of a graded function (empty for an unknown name)."""
    try:
        from .checks import get_check

        from cs231n_checks.compare import FIXED_HINTS

        check = get_check(check_name)
        # the check's own fixed hints name mistakes (the catalogue's and the kit's, such as a
        # float for an int); the comparison's say only where the differences sit
        return set(check.fixed_hints) - set(FIXED_HINTS) - {check.size_hint}
    except ValueError:
        return set()


def diagnosed_mistakes(results):
    """``[((assignment, grade_id, check, mistake), students)]``, most students first: how many
    students got each known mistake named in a test (a student counts once per test and mistake,
    however many cases named it), so that an instructor sees what to teach again."""
    students = collections.defaultdict(set)
    catalogues = {}
    for result in results:
        if not result.graded:
            continue
        for _, test, case in iter_cases(result):
            name = case.check
            if name not in catalogues:
                catalogues[name] = _catalogue(name)
            for hint in case.hints:
                if hint in catalogues[name]:
                    students[(result.assignment, test.grade_id, name, hint)].add(result.student)
    return sorted(((key, len(who)) for key, who in students.items()), key=lambda item: (-item[1], item[0]))


def slowest_cells(results, top=10):
    cells = []
    for result in results:
        for nb_name, nb in result.notebooks.items():
            for cell in nb.cells:
                cells.append((cell.seconds, result.student, result.assignment,
                              nb_name, cell.grade_id or f"cell {cell.index}", cell.status))
    return sorted(cells, key=lambda c: (-c[0], c[1:]))[:top]


def _png(fig):
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _histogram_top(scores, max_score, optional_points=0.0):
    """Where a score histogram's axis ends: extra credit (optional parts) can take a score past
    the maximum, and no score may fall off the plot."""
    return max([max_score + optional_points, *scores]) or 1


def _histogram(scores, max_score, title, optional_points=0.0):
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 2.8))
    top = _histogram_top(scores, max_score, optional_points)
    bins = max(5, min(20, int(top) + 1))
    ax.hist(scores, bins=bins, range=(0, top), color="#3b75af", edgecolor="white")
    if optional_points:
        ax.axvline(max_score, color="#888888", linestyle="--", linewidth=1)
    ax.set_xlabel(f"score (out of {max_score:g}" + (f", +{optional_points:g} optional)" if optional_points else ")"))
    ax.set_ylabel("submissions")
    ax.set_title(title)
    return _png(fig)


def _pass_rate_chart(stats):
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    labels = [f"{a}/{g}" for a, g in stats]
    rates = [s["outcomes"]["passed"] / max(1, sum(s["outcomes"].values())) for s in stats.values()]
    fig, ax = plt.subplots(figsize=(6.5, 0.35 * len(labels) + 1))
    ax.barh(labels[::-1], rates[::-1], color="#4a9a5b")
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of cases passed")
    return _png(fig)


def _table(header, rows):
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


CSS = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:70em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}
th{background:#f3f3f3}.failed{color:#b00}.flag{color:#a60}img{margin:.5em 1em .5em 0}
"""


def write_report(outcome, path):
    """Write ``report.html`` for a run (a ``batch.RunOutcome``); returns its path."""
    results = outcome.results
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>Grading report</title>"
             f"<style>{CSS}</style></head><body><h1>Grading report</h1>"]
    graded = [r for r in results if r.graded]
    failed = [r for r in results if not r.graded]
    flagged = {k: v for k, v in outcome.flags_by_task.items() if v}
    parts.append(f"<p>{len(results)} submissions from {len(outcome.collection.students)} students: "
                 f"{len(graded)} graded, {len(failed)} failed to grade, {len(flagged)} flagged for review.</p>")

    counts = sandbox_counts(results)
    if counts:
        parts.append("<p>Sandbox: " + "; ".join(f"{n} graded under {_e(SANDBOX_LABELS.get(m, m))}"
                                                for m, n in sorted(counts.items())) + ".</p>")
    if counts.get("none"):
        parts.append("<p class='failed'><b>No isolation (--weak-sandbox):</b> the code of the submissions marked "
                     "'NONE' below ran as the grader's user. It could read the solutions, rewrite the gradebook, "
                     "the result cache and other students' results: their scores, and those of everyone graded in "
                     "the same run, may be forged. Grade again as root or with user namespaces.</p>")
    notes = sandbox_warnings(results)
    if notes:
        parts.append("<p>Weaker sandbox: " + "<br>".join(_e(n) for n in notes) + "</p>")

    parts.append("<h2>Scores</h2>")
    for assignment in sorted({r.assignment for r in graded}):
        group = [r for r in graded if r.assignment == assignment]
        scores = [r.score for r in group]
        max_score = max(r.max_score for r in group)
        optional = max(r.optional_points for r in group)
        mean = sum(scores) / len(scores)
        # full marks: every point of the maximum, whatever the optional parts (extra credit) earned
        required = [r.score - r.extra_credit() for r in group]
        extra = (f" Optional parts are extra credit: up to {optional:g} points on top of the {max_score:g}, "
                 f"some earned by {sum(r.extra_credit() > 0 for r in group)}." if optional else "")
        parts.append(f"<h3>{_e(assignment)}</h3><p>{len(scores)} graded, mean {mean:.2f} / {max_score:g}, "
                     f"full marks: {sum(s >= max_score - 1e-9 for s in required)}.{_e(extra)}</p>")
        parts.append(f"<img alt='score histogram' src='{_histogram(scores, max_score, assignment, optional)}'>")

    stats = test_stats(results)
    if stats:
        parts.append("<h2>Pass rates per test</h2>")
        parts.append(f"<img alt='pass rates' src='{_pass_rate_chart(stats)}'>")
        rows = []
        for (assignment, grade_id), s in sorted(stats.items()):
            total = sum(s["outcomes"].values())
            rows.append([_e(assignment), _e(grade_id), f"{s['outcomes']['passed'] / max(1, total):.0%}",
                         f"{sum(s['scores']) / len(s['scores']):.2f} / {s['points']:g}"]
                        + [str(s["outcomes"][o]) for o in OUTCOMES])
        parts.append(_table(["assignment", "test", "cases passed", "mean score", *OUTCOMES], rows))

    mistakes = diagnosed_mistakes(results)
    if mistakes:
        parts.append("<h2>Mistakes the feedback named</h2><p>Students whose results matched a known mistake, "
                     "per test (each student counted once per test and mistake): what to teach again.</p>")
        parts.append(_table(["students", "assignment", "test", "function", "mistake"],
                            [[str(n), _e(a), _e(t), _e(c), _e(m)] for (a, t, c, m), n in mistakes]))

    failures = common_failures(results)
    if failures:
        parts.append("<h2>Most common failures</h2>")
        kinds = collections.Counter()
        for r in graded:
            for _, _, case in iter_cases(r):
                if not case.passed:
                    kinds[case.outcome] += 1
        parts.append("<p>" + ", ".join(f"{_e(k)}: {n}" for k, n in kinds.most_common()) + "</p>")
        parts.append(_table(["cases", "outcome", "test", "message"],
                            [[str(n), _e(o), _e(t), _e(m)] for (o, t, m), n in failures]))

    slow = slowest_cells(results)
    if slow:
        parts.append("<h2>Slowest cells</h2>")
        parts.append(_table(["seconds", "student", "assignment", "notebook", "cell", "status"],
                            [[f"{c[0]:.2f}", *(_e(x) for x in c[1:])] for c in slow]))

    moved = found_elsewhere(results)
    if moved:
        parts.append("<h2>Graded from another cell</h2><p>Code found outside its own cell (a cell re-created, "
                     "metadata lost in another editor) and graded where it was: nothing to do.</p>")
        parts.append(_table(["student", "assignment", "where"],
                            [[_e(s), _e(a), "<br>".join(_e(x) for x in v)] for (s, a), v in moved.items()]))
    if flagged:
        parts.append("<h2>Flagged for review</h2><p>Flags do not change scores; they ask a person to look.</p>")
        parts.append(_table(["student", "assignment", "flags"],
                            [[_e(s), _e(a), "<br>".join(_e(f) for f in v)] for (s, a), v in sorted(flagged.items())]))
    if failed:
        parts.append("<h2>Failed to grade</h2><p>These submissions hold a score of 0 and need a person.</p>")
        parts.append(_table(["student", "assignment", "reason"],
                            [[_e(r.student), _e(r.assignment), f"<span class='failed'>{_e(r.error)}</span>"]
                             for r in failed]))

    parts.append("<h2>All submissions</h2>")
    rows = []
    for r in sorted(results, key=lambda r: r.task):
        score = f"{r.score:g} / {r.max_score:g}" if r.graded else "—"
        mode = sandbox_mode(r)
        rows.append([_e(r.student), _e(r.assignment), _e(r.status), score,
                     str(len(outcome.flags_by_task.get(r.task, []))),
                     {"none": "<span class='failed'>NONE</span>", "user_namespace": "user namespaces",
                      None: "—"}.get(mode, _e(mode))])
    parts.append(_table(["student", "assignment", "status", "score", "flags", "sandbox"], rows))
    absent = outcome.absent_from_run or {}
    if any(absent.get(k) for k in ("students", "assignments", "submissions")):
        parts.append("<h2>In the gradebook but not in this run</h2><p>Kept as they were (manual grades "
                     "included); <code>nbgrader export</code> still exports them, this report does not.</p>")
        rows = [["students not in the submissions folder", _e(", ".join(absent.get("students") or []))],
                ["assignments with no submission in this run", _e(", ".join(absent.get("assignments") or []))],
                ["other submissions not graded in this run",
                 _e(", ".join(f"{s} / {a}" for s, a in absent.get("submissions") or []))]]
        parts.append(_table(["what", "which"], [r for r in rows if r[1]]))
    if outcome.collection.skipped:
        parts.append("<h2>Skipped in the submissions folder</h2>")
        parts.append(_table(["entry", "why"], [[_e(a), _e(b)] for a, b in outcome.collection.skipped]))
    parts.append("</body></html>")
    path = Path(path)
    write_atomic(path, "\n".join(parts))
    return path


# ------------------------------------------------------------------------------------------
# The printed summary


def class_table(outcome):
    """Rows ``student | <assignment> ... | flags`` with scores as ``s/max`` or FAILED."""
    assignments = sorted({r.assignment for r in outcome.results})
    by_task = {r.task: r for r in outcome.results}
    header = ["student", *assignments, "flags"]
    rows = []
    for student in outcome.collection.students:
        row = [student]
        nflags = 0
        for a in assignments:
            r = by_task.get((student, a))
            if r is None:
                row.append("-")
            elif not r.graded:
                row.append("FAILED")
            elif r.manual is not None:
                manual = r.manual
                row.append(f"{r.score + manual.score:g}/{r.max_score + manual.points:g}"
                           + (" +manual" if manual.pending else ""))
            else:
                row.append(f"{r.score:g}/{r.max_score:g}")
            nflags += len(outcome.flags_by_task.get((student, a), []))
        row.append(str(nflags) if nflags else "")
        rows.append(row)
    return header, rows


def _text_table(header, rows):
    rows = [[printable(str(c)) for c in r] for r in rows]  # escaped before the columns are measured
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


def sandbox_warnings(results):
    """What the sandboxes of these results lacked (the host's notes and the wrapper's errors), once each."""
    seen = []
    for r in results:
        protections = r.protections
        applied = protections.get("applied") or {}
        for text in list(protections.get("notes") or []) + list(applied.get("errors") or []):
            if text not in seen:
                seen.append(text)
    return seen


# What each sandbox mode means, for the summary and the report (``autograder.sandbox.MODES``).
SANDBOX_LABELS = {
    "root": "root: a user of its own per kernel, mount and network namespaces",
    "user_namespace": "user namespaces: the grader's user without capabilities, mount, network and PID namespaces",
    "none": "NO ISOLATION (--weak-sandbox)",
}


def sandbox_mode(result):
    """How the kernel of ``result`` was isolated: "root", "user_namespace", "none", or None when the
    result holds no record of it (not run in a kernel, or graded by a custom engine). Results graded
    before the mode was recorded are classified from what their wrapper applied."""
    protections = result.protections
    applied = protections.get("applied") or {}
    mode = applied.get("mode") or protections.get("mode")
    if mode:
        return mode
    if not applied:
        return None
    # before user namespaces, only a root grader had a mount namespace or a slot user
    as_root = applied.get("mount_namespace") or applied.get("uid") == 0 or \
        str(applied.get("user", "")).startswith("cs231n-sbx-")
    return "root" if as_root else "none"


def sandbox_counts(results):
    """{mode: number of results graded under it} (results with no kernel are not counted)."""
    counts = collections.Counter(sandbox_mode(r) for r in results)
    counts.pop(None, None)
    return dict(counts)


def sandbox_lines(results):
    """The summary's lines about the sandboxes: one saying which, and a section when some results had none."""
    counts = sandbox_counts(results)
    if not counts:
        return []
    order = [m for m in ("root", "user_namespace", "none") if m in counts] + sorted(set(counts) - set(SANDBOX_LABELS))
    out = ["", "Sandbox: " + "; ".join(f"{counts[m]} graded under {SANDBOX_LABELS.get(m, m)}" for m in order) + "."]
    unprotected = [r for r in results if sandbox_mode(r) == "none"]
    if unprotected:
        out += ["", f"NO ISOLATION ({len(unprotected)}): graded with --weak-sandbox. Students' code ran as the grader's "
                    "user with its rights: it could read the solutions (a thief gets full marks), rewrite the "
                    "gradebook, the result cache and other students' results, and a fork bomb shares the grader's "
                    "process count. Trust these scores only for students you trust; run again as root or with user "
                    "namespaces to re-grade them (the cache does so by itself).",
                "  " + _listing(f"{r.student} / {r.assignment}" for r in unprotected)]
    return out


def _listing(items, most=12):
    items = list(items)
    return ", ".join(items[:most]) + (f", ... {len(items) - most} more" if len(items) > most else "")


def absent_lines(outcome):
    """Summary lines about what the gradebook holds from earlier runs and this run did not grade."""
    absent = outcome.absent_from_run or {}
    students, assignments = absent.get("students") or [], absent.get("assignments") or []
    submissions = absent.get("submissions") or []
    if not (students or assignments or submissions):
        return []
    out = ["", "IN THE GRADEBOOK BUT NOT IN THIS RUN (from earlier runs): kept as they were, manual grades "
               "included; `nbgrader export` still exports them, grades.csv and report.html do not."]
    if students:
        out.append(f"  students not in the submissions folder ({len(students)}): {_listing(students)}")
    if assignments:
        out.append(f"  assignments with no submission in this run ({len(assignments)}): {_listing(assignments)}")
    if submissions:
        out.append(f"  other submissions not graded in this run ({len(submissions)}): "
                   + _listing(f"{s} / {a}" for s, a in submissions))
    out.append(f"  If they are gone for good, remove them in {outcome.out_dir}: "
               f"`nbgrader db student remove ID --force`, `nbgrader db assignment remove NAME --force`.")
    return out


def found_elsewhere(results):
    """{(student, assignment): [lines]}: answers graded from another place than their own cell.
    Functions that stand in their own cells, which only lost their metadata (VS Code, Colab),
    make one line per notebook."""
    from .matching import only_metadata_lost

    out = {}
    for r in results:
        lines = []
        for name, nb in sorted(r.notebooks.items()):
            kept = [only_metadata_lost(line) for line in nb.found if only_metadata_lost(line)]
            if kept:
                lines.append(f"{name}: {', '.join(kept)} in {'their' if len(kept) > 1 else 'its'} own "
                             f"cell{'s' if len(kept) > 1 else ''}, which lost the nbgrader metadata "
                             f"(saved by another editor?): graded")
            lines += [f"{name}: {line}" for line in nb.found if not only_metadata_lost(line)]
        if lines:
            out[r.task] = lines
    return dict(sorted(out.items()))


def summary(outcome, table=True):
    """The text printed at the end of a run: what happened and what needs a person."""
    results = outcome.results
    graded = [r for r in results if r.graded]
    failed = [r for r in results if not r.graded]
    flagged = {k: v for k, v in sorted(outcome.flags_by_task.items()) if v}
    now = (f"{outcome.graded_now} graded now on {outcome.workers} worker{'s' if outcome.workers != 1 else ''}"
           if outcome.graded_now else "none graded now")
    out = [f"Graded {len(graded)} of {len(results)} submissions from {len(outcome.collection.students)} students "
           f"in {outcome.seconds:.1f} s ({now}, {outcome.from_cache} unchanged from the cache"
           + (f", {outcome.retried} retried" if outcome.retried else "") + ")."]
    if table and results:
        out += ["", *_text_table(*class_table(outcome)).split("\n")]
        optional = sorted({r.assignment for r in graded if r.optional_points})
        if optional:
            out.append(f"Optional parts ({', '.join(optional)}) are extra credit: a score can exceed its maximum.")
    if outcome.calibration_problems:
        out += ["", "CHECK THE SOLUTIONS: grading limits were calibrated on notebooks that fail their own tests:"]
        out += [f"  {p}" for p in outcome.calibration_problems]
    if failed:
        out += ["", f"FAILED TO GRADE ({len(failed)}): score 0 in the gradebook until re-graded; fix and run again."]
        out += [f"  {r.student} / {r.assignment}: {r.error or 'unknown error'}" for r in failed]
    manual = [r for r in graded if r.manual is not None and r.manual.pending]
    if manual:
        out += ["", f"NEEDS MANUAL GRADING ({len(manual)}): written answers for a person in the formgrader "
                    "(`nbgrader formgrader` in the output folder); '+manual' scores count them as 0 until then."]
        out += [f"  {r.student} / {r.assignment}: {', '.join(r.manual.pending)}" for r in manual]
    moved = found_elsewhere(results)
    if moved:
        out += ["", f"Graded from another cell ({len(moved)}): code found outside its own cell (or in a cell that "
                    "lost its metadata) and graded there; "
                    "nothing to do."]
        for (student, assignment), lines in moved.items():
            out += [f"  {student} / {assignment}: {line}" for line in lines[:4]]
            if len(lines) > 4:
                out.append(f"  {student} / {assignment}: ... {len(lines) - 4} more in the report")
    if flagged:
        out += ["", f"FLAGGED FOR REVIEW ({len(flagged)}): scores stand; please look."]
        for (student, assignment), flags in flagged.items():
            out.append(f"  {student} / {assignment}:")
            out += [f"    - {f}" for f in flags[:6]]
            if len(flags) > 6:
                out.append(f"    - ... {len(flags) - 6} more in the report")
    out += sandbox_lines(results)
    weaker = sandbox_warnings(results)
    if weaker:
        out += ["", "WEAKER SANDBOX: some protections were not available on this host:"]
        out += [f"  {w}" for w in weaker]
    if outcome.feedback_problems:
        out += ["", f"FEEDBACK PROBLEMS ({len(outcome.feedback_problems)}):"]
        out += [f"  {s} / {a}: {p}" for s, a, p in outcome.feedback_problems]
    if outcome.collection.skipped:
        out += ["", f"Skipped in the submissions folder ({len(outcome.collection.skipped)}):"]
        out += [f"  {what}: {why}" for what, why in outcome.collection.skipped[:20]]
    no_work = [s for s in outcome.collection.students if not any(r.student == s for r in results)]
    if no_work:
        out += ["", "Students with nothing to grade: " + ", ".join(no_work)]
    out += absent_lines(outcome)
    d = outcome.out_dir
    out += ["", f"Outputs in {d}:",
            f"  grades.csv   {d / 'grades.csv'}",
            f"  report.html  {d / 'report.html'}" if outcome.report_path else "",
            f"  feedback/    {d / 'feedback'}/<student>/<assignment>/*.html",
            f"  gradebook    {d / 'gradebook.db'} (nbgrader formgrader and `nbgrader export` work in {d})"]
    return "\n".join(printable(x) for x in out if x is not None)
