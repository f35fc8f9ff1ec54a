"""``cs231n-grade``: release, autograde, validate and demo.

    cs231n-grade sync                          sync each solutions/<a>/<a>.ipynb with its .py, release, rebuild examples/
    cs231n-grade release                       regenerate assignments/ from solutions/
    cs231n-grade autograde SUBMISSIONS [--out DIR] [--workers N | --scheduler ADDRESS]
    cs231n-grade validate NOTEBOOK             run a notebook's visible checks before submitting
    cs231n-grade student-kit --out DIR         build what students get (notebooks, wheel, zip)
    cs231n-grade demo                          release, grade examples/submissions, print the table
"""

import argparse
import sys
from pathlib import Path

from . import batch, course
from .authoring import SyncError
from .files import printable


def _course_root(args):
    return Path(args.course).resolve() if getattr(args, "course", None) else batch.default_course_root()


def cmd_release(args):
    root = _course_root(args)
    paths = course.release(root, args.assignment or None)
    print(f"{len(paths)} student notebooks in {root / course.ASSIGNMENTS_DIR} are up to date.")
    return 0


def cmd_sync(args):
    from . import authoring

    root = _course_root(args)
    results = authoring.sync(root, args.assignment or None, prefer=args.prefer, check=args.check)
    for result in results:
        print(authoring.describe(result, root, check=args.check))
        for warning in result.warnings:
            print(f"  warning: {warning}")
    conflicts = [r for r in results if r.conflict]
    if conflicts:
        print(f"\n{len(conflicts)} conflict(s): nothing released. For each pair above marked conflict, keep one "
              f"side (--prefer script | --prefer notebook) or merge by hand, then run sync again.", file=sys.stderr)
        return 1
    if args.check:
        stale = [r for r in results if r.written]
        print(f"{len(stale)} of {len(results)} pairs need a sync." if stale else "Every pair is in sync.")
        return 1 if stale else 0
    if args.no_release:
        return 0
    paths = course.release(root, args.assignment or None)
    print(f"{len(paths)} student notebooks in {root / course.ASSIGNMENTS_DIR} are up to date.")
    if args.no_class:
        return 0
    rebuilt = authoring.rebuild_sample_class(root)
    if rebuilt is None:
        print("no examples/build_class.py or build_mistakes.py here: no example class to rebuild.")
    elif rebuilt[1] != 0:
        print(f"error: examples/{rebuilt[0]} failed (exit status {rebuilt[1]}); see its output above.", file=sys.stderr)
        return 1
    return 0


def cmd_student_kit(args):
    from . import kit

    root = _course_root(args)
    result = kit.build_student_kit(root, args.out)
    size = result.wheel.stat().st_size
    print(f"Student kit in {result.out}: {', '.join(result.assignments) or 'no assignments'} handed out; "
          f"answers withheld for {', '.join(result.withheld) or 'none'}.")
    print(f"  {result.wheel.name} ({size / 1024:.0f} KB): pip install it, then open assignments/ in Jupyter")
    print(f"  {result.zip} ({result.zip.stat().st_size / 1024:.0f} KB): the whole kit, for an LMS upload")
    return 0


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number of workers; found {value}")
    return value


def cmd_autograde(args):
    from . import report

    submissions = Path(args.submissions)
    if not submissions.is_dir():
        print(f"error: submissions folder {submissions} does not exist. Expected "
              f"SUBMISSIONS/<student>/<assignment>/*.ipynb or SUBMISSIONS/<student>.zip", file=sys.stderr)
        return 2
    outcome = batch.autograde(submissions, args.out, course_root=_course_root(args), workers=args.workers,
                              scheduler=args.scheduler, progress=not args.quiet, feedback=not args.no_feedback,
                              weak_sandbox=args.weak_sandbox)
    print(report.summary(outcome))
    return 1 if any(not r.graded for r in outcome.results) else 0


def cmd_validate(args):
    from . import engine

    path = Path(args.notebook)
    if not path.is_file():
        print(f"error: {path} is not a file; expected a notebook such as assignments/convolution/convolution.ipynb",
              file=sys.stderr)
        return 2
    print(f"Checking {path} (visible cases only) ...", flush=True)
    result = engine.validate_notebook(str(path), str(_course_root(args)))
    return _print_validation(result, _course_root(args))


def _allowed_library_uses(result, course_root):
    """Allowed library uses by grade_id of the result's assignment (a ``TaskResult``)."""
    from .batch import reference_flags

    if course_root is None or not result.assignment:
        return {}
    try:
        return reference_flags(course_root, result.assignment)
    except Exception:  # noqa: BLE001 - the context only adds words; the checks' verdicts stand
        return {}


def _print_validation(result, course_root=None):
    """Print the engine's validation result (a ``TaskResult``): per test its visible cases and the
    points they give (optional parts marked), library uses (allowed or not); returns 0 when every
    visible case of every required test passes, else 1. The messages quote what the notebook's code
    raised, which a student chose: every line is printed through ``files.printable``."""
    from .batch import allowed_library_use

    allowed = _allowed_library_uses(result, course_root)
    ok = result.graded
    if not ok:
        _say(f"Could not check this notebook: {result.error}")
    for note in result.notes:
        _say(f"note: {note}")
    for name, nb in sorted(result.notebooks.items()):
        if not nb.graded:
            _say(f"{name}: {nb.status}: {nb.message}")
            ok = False
            continue
        _say(f"{name}: visible checks")
        for line in nb.found:
            _say(f"  found: {line}")
        for note in nb.notes:
            _say(f"  note: {note}")
        earned = total = extra = extra_total = 0.0
        for test in nb.tests:
            cases = test.cases
            passed = sum(c.passed for c in cases)
            is_optional = test.optional
            score, points = test.score, test.points
            if is_optional:
                extra, extra_total = extra + score, extra_total + points
            else:
                earned, total = earned + score, total + points
                ok &= passed == len(cases)
            undone = all("not implemented" in c.message for c in cases) and cases and not passed
            state = "ok" if passed == len(cases) else ("todo" if is_optional and undone else "FAIL")
            _say(f"  [{state:>4}] {test.grade_id}{' (optional)' if is_optional else ''}: "
                 f"{passed} of {len(cases)} visible cases passed, {score:g} of {points:g} points"
                 + (": not done yet (an optional part)" if state == "todo" else ""))
            for number, case in enumerate(cases, 1):
                if case.passed:
                    continue
                _say(f"         case {number} ({case.description}): {case.outcome.upper()}")
                if case.message:
                    _say(f"           {case.message}")
                for hint in case.hints:
                    _say(f"           hint: {hint}")
        for cell in nb.cells:
            if cell.status in ("error", "timeout", "crashed", "flooded"):
                where = cell.grade_id or f"cell {cell.index + 1}"
                _say(f"  [warn] {where}: {cell.status} when run (see the notebook's output there)")
        for flag in nb.flags:
            if allowed_library_use(flag, allowed):
                _say(f"  [  ok] {flag.grade_id} uses {', '.join(sorted(flag.library_names()))}: allowed "
                     f"(the notebook asks for it)")
            else:
                _say(f"  [note] {flag.text()}")
        _say(f"  Visible cases give {earned:g} of {total:g} points"
             + (f", and {extra:g} of {extra_total:g} optional points" if extra_total else "")
             + " (more cases run at grading).")
    _say("All visible checks pass. More cases run when your notebook is graded." if ok
         else "Some visible checks fail: fix them before you submit.")
    return 0 if ok else 1


def _say(line):
    """Print one line that may quote what a student chose, its control characters escaped."""
    print(printable(line))


def cmd_demo(args):
    from . import report

    root = _course_root(args)
    submissions = root / "examples" / "submissions"
    if not submissions.is_dir():
        print(f"error: no sample class in {submissions}", file=sys.stderr)
        return 2
    print("1/2 release: solutions/ -> assignments/")
    course.release(root)
    out = Path(args.out) if args.out else root / "grading-output" / "demo"
    print(f"2/2 autograde {submissions} -> {out}")
    outcome = batch.autograde(submissions, out, course_root=root, workers=args.workers, progress=not args.quiet,
                              weak_sandbox=args.weak_sandbox)
    print()
    print(report.summary(outcome))
    return 0


def build_parser():
    parser = argparse.ArgumentParser(prog="cs231n-grade", description="Release, autograde and validate the course notebooks.")
    parser.add_argument("--course", help="the course repository holding solutions/ and assignments/ (default: this one)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "sync", help="bring each source notebook and its .py script in sync, then release and rebuild the sample class",
        description="For each solutions/<a>/<a>.ipynb and its jupytext script <a>.py: the side changed since the "
                    "last sync (else the newer file) is written into the other, both in canonical form (outputs "
                    "cleared). A pair where both sides changed is a conflict: nothing is written or released. "
                    "Then `release` runs, and examples/build_class.py and build_mistakes.py (the example classes).")
    p.add_argument("assignment", nargs="*", help="assignments to sync and release (default: all)")
    p.add_argument("--prefer", choices=("script", "notebook"), help="the side that wins when the two differ")
    p.add_argument("--check", action="store_true", help="change nothing; exit 1 when a pair needs a sync")
    p.add_argument("--no-release", action="store_true", help="sync the pairs only")
    p.add_argument("--no-class", action="store_true", help="do not rebuild the example classes in examples/")
    p.set_defaults(func=cmd_sync)

    p = sub.add_parser("release", help="regenerate assignments/ from solutions/ (nbgrader generate_assignment)")
    p.add_argument("assignment", nargs="*", help="assignments to release (default: all)")
    p.set_defaults(func=cmd_release)

    p = sub.add_parser(
        "autograde", help="grade every submission in a folder",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Grade every student's submissions in sandboxed kernels, in parallel, into an nbgrader "
                    "course folder.",
        epilog="""submissions layouts (mixed freely):
  SUBMISSIONS/<student>/<assignment>/*.ipynb   nbgrader's layout (timestamp.txt is read)
  SUBMISSIONS/<student>/<notebook>.ipynb       matched to an assignment by file name
  SUBMISSIONS/<student>.zip                    an LMS export: <assignment>/*.ipynb or the notebooks

outputs in --out (an nbgrader course: formgrader and `nbgrader export` work there):
  gradebook.db, autograded/<student>/<assignment>/, feedback/<student>/<assignment>/*.html,
  grades.csv (one row per student and assignment), report.html (class report)

Results are cached in --out/.cache by content: running again grades only new or changed
submissions, and a run stopped at any moment resumes where it was.

sandbox: as root, each kernel runs as a user of its own in mount and network namespaces; as a
normal user, in user, mount, network and PID namespaces (Linux with unprivileged user
namespaces). Where neither is possible, autograde refuses unless --weak-sandbox is given.""")
    p.add_argument("submissions", help="SUBMISSIONS/<student>/<assignment>/*.ipynb, or SUBMISSIONS/<student>.zip")
    p.add_argument("--out", default="grading-output", help="grading folder (default: grading-output/)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=_positive_int, default=None, help="local worker processes (default: CPU count)")
    where.add_argument("--scheduler", help="address of a Dask distributed scheduler, e.g. tcp://10.0.0.5:8786")
    p.add_argument("--no-feedback", action="store_true", help="skip the feedback HTML")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--weak-sandbox", action="store_true",
                   help="grade even where students' code cannot be isolated (not root and no user namespaces): "
                        "their code could then read the solutions and rewrite the gradebook; the summary and "
                        "report say so, and a later run with isolation grades those results again")
    p.set_defaults(func=cmd_autograde)

    p = sub.add_parser("student-kit", help="build what students get: released notebooks, the kit wheel, a zip",
                       description="Build the student distribution from solutions/, the library and course.toml: "
                                   "the notebooks of the closed and open assignments, one wheel with the student "
                                   "build of cs231n_lib and the visible checks (no answer to an open or future "
                                   "assignment, no hidden case), and a zip of the whole.")
    p.add_argument("--out", required=True, help="the kit folder to (re)build, e.g. dist/student-kit")
    p.set_defaults(func=cmd_student_kit)

    p = sub.add_parser("validate", help="run a notebook's visible checks, as a student does before submitting")
    p.add_argument("notebook")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("demo", help="release, grade the sample class in examples/submissions, print the table")
    p.add_argument("--out", help="grading folder (default: grading-output/demo)")
    p.add_argument("--workers", type=_positive_int, default=None)
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--weak-sandbox", action="store_true", help="as for autograde")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    course.ensure_alembic_on_path()
    try:
        return args.func(args)
    except (course.CourseError, FileNotFoundError, ValueError, SyncError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: finished results are kept; run the same command again to resume.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
