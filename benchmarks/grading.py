"""Grading benchmark: seconds per submission on 1 and 2 workers, and plain nbgrader.

    .venv/bin/python -m benchmarks.grading [--students 40] [--skip-nbgrader] [--json out.json]

A class of ``--students`` convolution submissions is copied from ``examples/submissions``
(the students whose code neither loops forever nor crashes: complete, partial, untouched,
broken, delegating, tampered, snooping), each copy under its own student id. It is graded

1. by ``cs231n-grade autograde`` with 1 worker process, then with 2, each into a fresh folder
   (no cache), without feedback HTML (``nbgrader autograde`` makes none either);
2. by plain sequential ``nbgrader autograde`` of the same submissions in an nbgrader course
   made from ``solutions/`` (the test cells run in the student's kernel, as nbgrader does, and
   with the same cells: the demo, plot and timing cells that cs231n-grade skips are removed
   from the source and submitted copies, and each test cell gets a final ``None`` so that
   nbgrader does not read ``check``'s return value as a partial score).

Reported: wall seconds per submission (the grading phase, and the whole command including the
gradebook and report), the speed-up of 2 workers over 1, and the share of the engine's task
time spent starting kernels and compiling Numba (from the engine's per-task timings). The load
average before each run is printed: on a shared machine, other processes slow a run down.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUBMISSIONS = ROOT / "examples" / "submissions"
ASSIGNMENT = "convolution"
# students whose convolution code runs to the end without timeouts or kernel deaths
STEADY = ["ada", "ben", "chloe", "dmitri", "eve", "farid", "lars", "mia", "noor", "oscar", "quinn", "zoë"]


def make_class(folder, count):
    """``count`` submissions ``<nn>-<student>/convolution/convolution.ipynb`` cycling over STEADY."""
    folder.mkdir(parents=True)
    for i in range(count):
        student = STEADY[i % len(STEADY)]
        src = next((SUBMISSIONS / student / ASSIGNMENT).glob("*.ipynb"))
        dst = folder / f"{i:02d}-{student}" / ASSIGNMENT
        dst.mkdir(parents=True)
        shutil.copy(src, dst / f"{ASSIGNMENT}.ipynb")
    return folder


def ours(subs, out, workers):
    from autograder import batch

    start = time.perf_counter()
    outcome = batch.autograde(subs, out, course_root=ROOT, workers=workers, progress=False, feedback=False)
    wall = time.perf_counter() - start
    tasks = [r.timings for r in outcome.results]
    task_seconds = sum((t.total if t.task_seconds is None else t.task_seconds) or 0.0 for t in tasks)
    return {
        "workers": workers, "submissions": len(outcome.results), "wall": wall,
        "grade_phase": outcome.phases.get("grade", wall), "calibrate": outcome.phases.get("calibrate", 0.0),
        "graded": sum(r.graded for r in outcome.results),
        "task_seconds": task_seconds,
        "kernel_start": sum(t.kernel_start or 0.0 for t in tasks),
        "numba_compile": sum(t.numba_compile or 0.0 for t in tasks),
        "scores": {r.student: r.score for r in outcome.results},
    }


def _drop_skipped_cells(path, sources):
    """Remove the cells cs231n-grade does not run at grading (demos, timings, plots), so that both
    graders execute the same cells; in the source notebook they are the cells marked
    ``cs231n.grading = "skip"``, in a submission the code cells with the same source.
    Returns the sources removed."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    keep, removed = [], set()
    for cell in nb.cells:
        marked = cell.metadata.get("cs231n", {}).get("grading") == "skip"
        if cell.cell_type == "code" and (marked or cell.source in sources) and \
                not cell.metadata.get("nbgrader", {}).get("grade_id"):
            removed.add(cell.source)
            continue
        keep.append(cell)
    nb.cells = keep
    nbformat.write(nb, str(path))
    return removed


def _end_test_cells_with_none(path):
    """``check(...)`` returns the number of passed cases; as a test cell's last expression nbgrader
    would read it as a partial-credit score (and fail the submission when it exceeds the points).
    End each test cell with ``None`` so that nbgrader scores it by errors only, as intended."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade") and cell.cell_type == "code":
            cell.source = cell.source.rstrip("\n") + "\nNone\n"
    nbformat.write(nb, str(path))


def plain_nbgrader(subs, course):
    """Sequential ``nbgrader autograde`` of the same submissions; returns wall seconds and scores."""
    from autograder import course as course_mod

    shutil.copytree(ROOT / "solutions" / ASSIGNMENT, course / "source" / ASSIGNMENT)
    source = course / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    skipped = _drop_skipped_cells(source, set())
    _end_test_cells_with_none(source)
    for student_dir in sorted(subs.iterdir()):
        dst = course / "submitted" / student_dir.name / ASSIGNMENT
        shutil.copytree(student_dir / ASSIGNMENT, dst)
        _drop_skipped_cells(dst / f"{ASSIGNMENT}.ipynb", skipped)
    course_mod.write_nbgrader_config_file(course)
    env = dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
    nbgrader = str(Path(sys.executable).parent / "nbgrader")
    subprocess.run([nbgrader, "generate_assignment", ASSIGNMENT, "--force"], cwd=course, env=env,
                   check=True, capture_output=True)
    start = time.perf_counter()
    proc = subprocess.run([nbgrader, "autograde", ASSIGNMENT, "--force", "--Execute.timeout=120"],
                          cwd=course, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    from nbgrader.api import Gradebook

    scores = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", course_id=course_mod.COURSE_ID) as gb:
        for sub in gb.find_assignment(ASSIGNMENT).submissions:
            scores[sub.student.id] = sub.score
    graded = {p.parent.name for p in (course / "autograded").glob(f"*/{ASSIGNMENT}")}
    return {"wall": wall, "submissions": len(list(subs.iterdir())), "exit_status": proc.returncode,
            "graded": len(graded), "failed": sorted(p.name for p in subs.iterdir() if p.name not in graded),
            "scores": scores}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=40)
    parser.add_argument("--skip-nbgrader", action="store_true")
    parser.add_argument("--json", help="write the raw figures here")
    args = parser.parse_args(argv)
    from autograder import course

    course.ensure_alembic_on_path()
    report = {"students": args.students, "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="cs231n-grading-bench-") as tmp:
        tmp = Path(tmp)
        subs = make_class(tmp / "subs", args.students)
        # calibrate once, outside the timed runs (it is cached per grading folder)
        from autograder import engine

        for n in (1, 2):
            engine.cached_calibration(str(ROOT), ASSIGNMENT, tmp / f"ours-{n}" / ".cache")
        for n in (1, 2):
            print(f"cs231n-grade, {n} worker(s), load average {os.getloadavg()[0]:.1f} ...", flush=True)
            report[f"ours_{n}"] = ours(subs, tmp / f"ours-{n}", n)
        if not args.skip_nbgrader:
            print(f"nbgrader autograde, sequential, load average {os.getloadavg()[0]:.1f} ...", flush=True)
            report["nbgrader"] = plain_nbgrader(subs, tmp / "nbgrader-course")
    print(table(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, ensure_ascii=False))
    return report


def table(report):
    one, two = report["ours_1"], report["ours_2"]
    n = one["submissions"]
    rows = [("run", "s / submission (grading)", "s / submission (whole command)", "graded")]
    for key, label in (("ours_1", "cs231n-grade, 1 worker"), ("ours_2", "cs231n-grade, 2 workers")):
        r = report[key]
        rows.append((label, f"{r['grade_phase'] / n:.2f}", f"{r['wall'] / n:.2f}", f"{r['graded']}/{n}"))
    if "nbgrader" in report:
        r = report["nbgrader"]
        rows.append(("nbgrader autograde, sequential", f"{r['wall'] / n:.2f}", f"{r['wall'] / n:.2f}",
                     f"{r['graded']}/{n}"))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append("")
    if report.get("nbgrader", {}).get("failed"):
        lines.append(f"nbgrader failed to grade: {', '.join(report['nbgrader']['failed'])}")
    lines.append(f"2 workers vs 1: {one['grade_phase'] / two['grade_phase']:.2f}x faster (target >= 1.7x)")
    if "nbgrader" in report:
        lines.append(f"1 worker vs sequential nbgrader: {report['nbgrader']['wall'] / one['grade_phase']:.2f}x "
                     f"(> 1 means less time per submission than nbgrader)")
    for key in ("ours_1", "ours_2"):
        r = report[key]
        busy = r["task_seconds"] or 1.0
        lines.append(f"{key}: of {r['task_seconds']:.1f} s of task time, kernel starts {r['kernel_start']:.1f} s "
                     f"({100 * r['kernel_start'] / busy:.0f}%), Numba compilation {r['numba_compile']:.1f} s "
                     f"({100 * r['numba_compile'] / busy:.0f}%)")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
