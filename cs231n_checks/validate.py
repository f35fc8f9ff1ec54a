"""``cs231n-grade validate NOTEBOOK`` in the student kit: check a notebook before submitting it.

Runs the notebook top to bottom in a fresh kernel, as the grader will (the cells the grader skips,
plots, timings and training runs, are skipped here too), and prints for each test cell the
points its visible cases give. Hidden cases run only at grading: a test that passes here can
still lose points there.
"""

import argparse
import json
import re
import sys
import tempfile
from pathlib import Path

SKIPPED = "cs231n-grade validate: skipped (the grader does not run this cell)"


_POINTS = re.compile(r":\s*(\d+(?:\.\d+)?)\s*points?\b")


def has_grading_metadata(nb):
    return any(cell.metadata.get("nbgrader", {}).get("grade") for cell in nb.cells)


def _grade_cells(nb):
    """(index, cell, nbgrader metadata) of the test cells. A notebook saved by an editor that drops
    cell metadata (VS Code, Colab) has none: its test cells are then known by their ``check(...)``
    calls and their first line (``# conv_forward_naive: 4 points, ...``)."""
    with_metadata = has_grading_metadata(nb)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        meta = cell.metadata.get("nbgrader", {})
        if with_metadata:
            if meta.get("grade"):
                yield index, cell, meta
            continue
        if any(line.startswith("check(") for line in cell.source.splitlines()):
            first = (cell.source.strip().splitlines() or [""])[0]
            points = _POINTS.search(first)
            label = first[:points.start()].lstrip("# ").removeprefix("OPTIONAL.").strip() if points else ""
            yield index, cell, {"grade_id": (f"test_{label}" if label.isidentifier() else label) or f"cell {index + 1}",
                                "points": float(points.group(1)) if points else 0.0}


def is_optional(cell):
    """An optional part's test cell: ``cs231n: {"optional": true}`` in its metadata, or a first
    comment line starting with ``# OPTIONAL.`` (as the notebooks write it)."""
    if cell.metadata.get("cs231n", {}).get("optional"):
        return True
    return cell.source.lstrip().upper().startswith("# OPTIONAL.")


def is_optional_test(cell):
    """An autograded test cell of an optional part (extra credit at grading): an nbgrader grade
    cell with code and no solution, marked optional (``is_optional``). The one rule the grader,
    the gradebook and the notebook checks share."""
    meta = cell.metadata.get("nbgrader", {})
    return (cell.cell_type == "code" and bool(meta.get("grade")) and not meta.get("solution")
            and is_optional(cell))


def _outcome(cell):
    """("ok" | "todo" | "fail", first line of the error) of an executed test cell."""
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            if output.get("ename") == "NotImplementedError":
                return "todo", output.get("evalue", "")
            return "fail", f"{output.get('ename')}: {output.get('evalue', '')}".strip()
    return "ok", ""


def validate(path, timeout=600):
    """Run ``path``'s notebook and print what its visible cases give; returns the exit status."""
    import nbformat
    from jupyter_client import KernelManager
    from jupyter_client.kernelspec import KernelSpecManager
    from nbclient import NotebookClient

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    run = nbformat.from_dict(nb)
    skipped = 0
    for cell in run.cells:
        if cell.cell_type == "code" and cell.metadata.get("cs231n", {}).get("grading") == "skip":
            cell.source = f"# {SKIPPED}"
            skipped += 1
    print(f"Running {path} in a fresh kernel ({skipped} plot, timing and training cells skipped) ...", flush=True)
    if not has_grading_metadata(nb):
        print("note: this notebook's cells have lost their grading metadata (saved by VS Code or Colab?). The "
              "grader still finds your functions by their names; the points below are read from the test cells' "
              "first lines.", flush=True)
    with tempfile.TemporaryDirectory(prefix="cs231n-validate-") as kernels:
        # the kernel runs this very Python (where the kit is installed), whatever other
        # "python3" kernels Jupyter knows of on this machine
        spec = Path(kernels) / "cs231n-kit"
        spec.mkdir()
        (spec / "kernel.json").write_text(json.dumps({
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "cs231n kit", "language": "python"}))
        km = KernelManager(kernel_name="cs231n-kit", kernel_spec_manager=KernelSpecManager(kernel_dirs=[kernels]))
        NotebookClient(run, km=km, timeout=timeout, allow_errors=True,
                       resources={"metadata": {"path": str(path.parent.resolve())}}).execute()
    earned = total = 0.0
    failures = 0
    for index, cell, meta in _grade_cells(run):
        points = float(meta.get("points", 0))
        optional = is_optional(cell)
        total += 0 if optional else points
        state, detail = _outcome(cell)
        label = f"{meta.get('grade_id', f'cell {index + 1}')} ({points:g} point{'s' if points != 1 else ''}"
        label += ", optional)" if optional else ")"
        if state == "ok":
            earned += points if not optional else 0
            print(f"  [  ok] {label}: every visible case passed")
        elif state == "todo":
            print(f"  [todo] {label}: not implemented yet" + (" (optional part)" if optional else ""))
            failures += not optional
        else:
            print(f"  [FAIL] {label}: {detail}")
            failures += 1
    for index, cell in enumerate(run.cells):
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and not meta.get("grade"):
            state, detail = _outcome(cell)
            if state == "fail":
                where = meta.get("grade_id") or f"cell {index + 1}"
                print(f"  [warn] {where} raised {detail}")
    print(f"Visible cases give {earned:g} of {total:g} points.")
    print("All visible checks pass. More cases run when your notebook is graded." if not failures
          else "Some visible checks fail: fix them before you submit.")
    return 0 if not failures else 1


def main(argv=None):
    parser = argparse.ArgumentParser(prog="cs231n-grade", description="The student kit's checks.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("validate", help="run a notebook's visible checks, as the grader will, before submitting")
    p.add_argument("notebook")
    args = parser.parse_args(argv)
    path = Path(args.notebook)
    if not path.is_file():
        print(f"error: {path} is not a file; expected a notebook such as assignments/convolution/convolution.ipynb",
              file=sys.stderr)
        return 2
    return validate(path)


if __name__ == "__main__":
    sys.exit(main())
