"""A fast stand-in for ``autograder.engine.grade_submission``, for the coordinator's tests.

It returns results of the engine's documented shape without starting kernels. A case passes
when the student's solution cell defining the checked function was changed from the template
stub and does not contain the word ``WRONG``. Markers in a solution cell drive the coordinator's
failure paths: ``FAKE_SLEEP=<seconds>``, ``FAKE_RAISE`` (the engine raises), ``FAKE_DIE`` (the
worker process dies), ``FAKE_FLAG`` (an engine flag). Every call appends one line to the file
named by ``$FAKE_ENGINE_LOG`` when set, so tests can count engine calls.
"""

import copy
import json
import os
import re
import time
from pathlib import Path

import nbformat

from autograder.testspec import parse_test_cell

VERSION = "fake-1"


def _cells_by_grade_id(nb):
    return {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("grade_id")}


def grade(task):
    student, assignment, files = task["student"], task["assignment"], task["files"]
    log = os.environ.get("FAKE_ENGINE_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(f"{student}\t{assignment}\n")
    root = Path(task["course_root"])
    result = {"student": student, "assignment": assignment, "status": "graded", "error": None,
              "notebooks": {}, "score": 0.0, "max_score": 0.0, "timings": {"kernel_start": 0.01}}
    for source_path in sorted((root / "solutions" / assignment).glob("*.ipynb")):
        name = source_path.name
        source = nbformat.read(str(source_path), as_version=4)
        template = nbformat.read(str(root / "assignments" / assignment / name), as_version=4)
        stubs = {gid: c.source for gid, c in _cells_by_grade_id(template).items()}
        entry = {"status": "graded", "message": "", "score": 0.0, "max_score": 0.0, "tests": [], "cells": [],
                 "solution_sources": {}, "flags": [], "executed_notebook": None}
        result["notebooks"][name] = entry
        student_sources = {}
        if name not in files:
            entry["status"], entry["message"] = "missing", f"{name} was not submitted"
        else:
            try:
                student_nb = nbformat.reads(files[name].decode("utf-8"), as_version=4)
                for gid, cell in _cells_by_grade_id(student_nb).items():
                    if gid in stubs and source.cells and template:
                        student_sources[gid] = cell.source
            except Exception as exc:
                entry["status"], entry["message"] = "unreadable", f"{name} is not a readable notebook ({type(exc).__name__})"
        solution_ids = [c.metadata["nbgrader"]["grade_id"] for c in source.cells
                        if c.metadata.get("nbgrader", {}).get("solution")]
        entry["solution_sources"] = {gid: student_sources.get(gid, stubs[gid]) for gid in solution_ids}
        for src in entry["solution_sources"].values():
            if "FAKE_RAISE" in src:
                raise RuntimeError("fake engine asked to raise")
            if "FAKE_DIE" in src:
                os._exit(3)
            m = re.search(r"FAKE_SLEEP=([\d.]+)", src)
            if m:
                time.sleep(float(m.group(1)))
            if "FAKE_FLAG" in src:
                entry["flags"].append({"kind": "delegation", "message": "calls the library instead of implementing"})
        executed = copy.deepcopy(template)
        for index, cell in enumerate(executed.cells):
            meta = cell.metadata.get("nbgrader", {})
            gid = meta.get("grade_id")
            if meta.get("solution") and gid in entry["solution_sources"]:
                cell.source = entry["solution_sources"][gid]
            if not meta.get("grade"):
                continue
            points = float(meta.get("points", 0))
            src_cell = _cells_by_grade_id(source)[gid]
            cases = []
            for call in parse_test_cell(src_cell.source, gid):
                owner = next((s for s in entry["solution_sources"].values() if f"def {call.name}" in s), "")
                ok = entry["status"] == "graded" and owner and "WRONG" not in owner and \
                    "NotImplementedError" not in owner
                for _ in call.cases:
                    cases.append({"check": call.name, "hidden": call.hidden, "description": f"case of {call.name}",
                                  "outcome": "passed" if ok else "wrong",
                                  "message": "" if ok else f"{call.name}: relative error 1.0e+00 > 1e-08",
                                  "hints": [], "seconds": 0.001})
            passed = sum(c["outcome"] == "passed" for c in cases)
            score = round(points * passed / len(cases), 6) if cases else 0.0
            entry["tests"].append({"grade_id": gid, "points": points, "score": score, "cases": cases})
            entry["score"] += score
            entry["max_score"] += points
            text = "\n".join(f"{c['description']}: {c['outcome'].upper()}" for c in cases)
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text + "\n")]
            entry["cells"].append({"index": index, "grade_id": gid, "seconds": 0.01, "status": "ok"})
        entry["executed_notebook"] = json.loads(nbformat.writes(executed))
        result["score"] += entry["score"]
        result["max_score"] += entry["max_score"]
    return result


grade.VERSION = VERSION
