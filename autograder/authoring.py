"""Authoring the course notebooks: each source notebook and its jupytext script, kept in sync.

Every assignment's source is a pair in ``solutions/<a>/``:

- ``<a>.py``, the notebook in jupytext's *percent* format: one ``# %%`` block per cell, markdown
  cells as ``# %% [markdown]`` comment blocks, and the cell metadata in the block's header
  (``# %% nbgrader={"grade": true, "grade_id": "test_x", "points": 2, ...}``,
  ``# %% cs231n={"grading": "skip"}``). It is what one reads, edits and reviews.
- ``<a>.ipynb``, the same cells as an nbgrader source notebook, stored with outputs cleared: what
  JupyterLab (and nbgrader's Create Assignment panel), ``cs231n-grade release`` and the grader read.

``solutions/jupytext.toml`` pairs them for JupyterLab (jupytext is installed with the kit): saving
the notebook there writes the script too, and opening it takes the cells from the script when
the script is newer. ``sync`` does the same from the command line, for every pair, and brings
both files to their canonical form (outputs cleared, run-time metadata dropped, the notebook's
cell ids kept). The script carries no cell ids and no notebook metadata: those stay in the
``.ipynb`` (a cell keeps its id while it can be matched by content or position; a new cell gets
its ``grade_id`` or a ``code-NN``/``md-NN`` id).

Which side wins when they differ: the side that changed since the last sync (recorded in
``solutions/.sync-state.json``, not committed, and in the last git commit when there is one);
when the record cannot tell, the newer file, as ``jupytext --sync`` does. When both sides
changed, nothing is written for that pair and the conflict is reported; ``prefer`` settles it.
"""

import hashlib
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import jupytext
import nbformat
from jupytext.combine import map_outputs_to_inputs
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_raw_cell

from . import course
from .files import write_atomic

# The script: percent format, no YAML header (the notebook metadata stays in the .ipynb), so the
# file does not change with the jupytext version. solutions/jupytext.toml says the same to JupyterLab.
SCRIPT_FORMAT = {"extension": ".py", "format_name": "percent", "notebook_metadata_filter": "-all"}
JUPYTEXT_TOML = 'formats = "ipynb,py:percent"\nnotebook_metadata_filter = "-all"\n'
STATE_FILE = ".sync-state.json"

# Cell metadata that is run-time state or jupytext's own layout notes: never stored, on either side.
TRANSIENT_CELL_METADATA = {"autoscroll", "collapsed", "scrolled", "trusted", "execution", "ExecuteTime",
                           "skipline", "noskipline", "cell_marker", "lines_to_next_cell",
                           "lines_to_end_of_cell_marker"}
DEFAULT_NOTEBOOK_METADATA = {
    "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
}


class SyncError(RuntimeError):
    """A pair could not be synced (a conflict, or a script jupytext cannot read)."""


# ------------------------------------------------------------------------------------------
# One notebook in its two forms


def script_path(notebook_path):
    """``solutions/<a>/<a>.py`` for ``solutions/<a>/<a>.ipynb``."""
    return Path(notebook_path).with_suffix(".py")


def canonical(nb):
    """The stored form of ``nb``: outputs and execution counts cleared, transient metadata dropped.

    Notebook metadata keeps only the kernelspec and the language's name (JupyterLab adds the
    Python version and more on save; jupytext adds its own notes).
    """
    cells = []
    for cell in nb.cells:
        metadata = {k: v for k, v in cell.get("metadata", {}).items() if k not in TRANSIENT_CELL_METADATA}
        kwargs = {"metadata": metadata}
        if cell.get("id"):
            kwargs["id"] = cell["id"]
        if cell.cell_type == "code":
            new = new_code_cell(cell.source, **kwargs)
        elif cell.cell_type == "markdown":
            new = new_markdown_cell(cell.source, **kwargs)
            if cell.get("attachments"):
                new.attachments = cell.attachments
        else:
            new = new_raw_cell(cell.source, **kwargs)
        if not cell.get("id"):
            del new["id"]  # assigned by ``_assign_ids``
        cells.append(new)
    metadata = {}
    if "kernelspec" in nb.metadata:
        metadata["kernelspec"] = nb.metadata["kernelspec"]
    language = nb.metadata.get("language_info", {}).get("name")
    if language:
        metadata["language_info"] = {"name": language}
    out = new_notebook(metadata=metadata)
    out.cells = cells  # set after: new_notebook would validate cells that have no id yet
    return out


def cell_content(nb):
    """What the two forms must agree on: each cell's type, source and metadata, in order."""
    return [(c.cell_type, c.source, dict(c.metadata)) for c in canonical(nb).cells]


def fingerprint(nb):
    text = json.dumps(cell_content(nb), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def notebook_text(nb):
    """The bytes a stored notebook has (nbformat's layout and a final newline, as JupyterLab writes)."""
    return nbformat.writes(canonical(nb)) + "\n"


def script_text(nb):
    """The percent script of ``nb``."""
    return jupytext.writes(canonical(nb), fmt=SCRIPT_FORMAT)


def read_script(path_or_text, *, is_text=False):
    """The cells of a percent script, as a notebook without ids; SyncError if jupytext cannot read it."""
    text = path_or_text if is_text else Path(path_or_text).read_text(encoding="utf-8")
    where = "script" if is_text else str(path_or_text)
    try:
        nb = jupytext.reads(text, fmt=SCRIPT_FORMAT)
    except Exception as exc:  # jupytext raises many kinds on a malformed cell header
        raise SyncError(f"{where}: jupytext cannot read it ({exc}); check the `# %%` cell headers") from exc
    for number, cell in enumerate(nb.cells, 1):
        cell.pop("id", None)
        bad = cell.metadata.get("incorrectly_encoded_metadata")
        if bad is not None:
            raise SyncError(f"{where}, cell {number}: jupytext cannot read the metadata in its `# %%` cell header "
                            f"({bad!r}); write it as key={{JSON}}, e.g. "
                            f'nbgrader={{"grade": true, "grade_id": "test_x", "locked": true, "points": 2, '
                            f'"schema_version": 3, "solution": false}}')
    return nb


def notebook_from_script(script_nb, stored=None):
    """The stored notebook for the cells of ``script_nb``.

    Cell ids and notebook metadata come from ``stored`` (the current .ipynb) where there is one:
    each script cell takes the id of the stored cell it matches (same content, else same place).
    """
    nb = canonical(script_nb)
    ids = [None] * len(nb.cells)
    if stored is not None:
        stored = canonical(stored)
        nb.metadata = stored.metadata
        for i, j in enumerate(map_outputs_to_inputs(nb.cells, stored.cells)):
            if j is not None and stored.cells[j].get("id"):
                ids[i] = stored.cells[j]["id"]
    else:
        nb.metadata = json.loads(json.dumps(DEFAULT_NOTEBOOK_METADATA))
    _assign_ids(nb, ids)
    return nb


def _assign_ids(nb, ids):
    """Give every cell an id: the matched one, else its grade_id, else code-NN / md-NN (unique)."""
    taken = {i for i in ids if i}
    for index, (cell, given) in enumerate(zip(nb.cells, ids)):
        if given:
            cell["id"] = given
            continue
        prefix = {"markdown": "md", "code": "code"}.get(cell.cell_type, "raw")
        candidates = [cell.metadata.get("nbgrader", {}).get("grade_id"), f"{prefix}-{index:02d}"]
        new = next((c for c in candidates if c and _valid_id(c) and c not in taken), None)
        suffix = 2
        while new is None:
            attempt = f"{prefix}-{index:02d}-{suffix}"
            new = attempt if attempt not in taken else None
            suffix += 1
        cell["id"] = new
        taken.add(new)


def _valid_id(text):
    return bool(re.fullmatch(r"[a-zA-Z0-9-_]{1,64}", text))


# ------------------------------------------------------------------------------------------
# Points: what the notebook says and what its test cells give

_TOTAL_PATTERNS = (re.compile(r"(\d+) points in total"), re.compile(r"worth \*\*(\d+) points\*\*"))
# the optional parts' points, stated apart: "**2 points of extra credit**"
_EXTRA_CREDIT_PATTERN = re.compile(r"(\d+) points? of extra credit")
# the automatically checked part of the total: "10 points for the functions"
_FUNCTIONS_PATTERN = re.compile(r"(\d+) points for the functions")
# a row of the points table that names only graded functions: "| `training_memory`, `largest_batch` | 2 + 2 |"
_TABLE_ROW = re.compile(r"^\|\s*(?:\*optional:\*\s*)?((?:`\w+`)(?:\s*,\s*`\w+`)*)\s*\|\s*(\d+(?:\s*\+\s*\d+)*)\s*\|\s*$")
# a test cell's opening comment: "# conv_forward_naive: 4 points, 3 visible cases here, more when graded."
_CELL_STATEMENT = re.compile(r"(\d+) points?, (\d+) visible cases? here")


def stated_total(nb):
    """The total the notebook's text states ("**Grading: 11 points in total.**", "worth **13 points**"), or None."""
    return _first_number(nb, _TOTAL_PATTERNS)


def stated_extra_credit(nb):
    """The optional parts' points the notebook's text states ("**2 points of extra credit**"), or None."""
    return _first_number(nb, (_EXTRA_CREDIT_PATTERN,))


def _table_problems(nb, tests, optional):
    """What the "N points for the functions" sentence and the points table say against the test
    cells. A table row is checked when it names only functions (each with a ``test_<name>`` cell);
    a row with words besides the names ("with dilation") is the text's own to explain."""
    problems = []
    points = {c.metadata["nbgrader"].get("grade_id"): c.metadata["nbgrader"].get("points", 0) for c in tests}
    functions = sum(c.metadata["nbgrader"].get("points", 0) for c in tests if c not in optional)
    said = _first_number(nb, (_FUNCTIONS_PATTERN,))
    if said is not None and said != functions:
        problems.append(f"the text states {said} points for the functions; the test cells give {functions:g} "
                        "(optional parts left out)")
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        for line in cell.source.splitlines():
            match = _TABLE_ROW.match(line.strip())
            if not match:
                continue
            names = re.findall(r"`(\w+)`", match.group(1))
            stated = [int(x) for x in re.findall(r"\d+", match.group(2))]
            if len(names) != len(stated) or not all(f"test_{n}" in points for n in names):
                continue
            for name, number in zip(names, stated):
                if number != points[f"test_{name}"]:
                    problems.append(f"the points table gives {name} {number} points; its test cell gives "
                                    f"{points[f'test_{name}']:g}")
    return problems


def _first_number(nb, patterns):
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for pattern in patterns:
                match = pattern.search(cell.source)
                if match:
                    return int(match.group(1))
    return None


def point_problems(nb):
    """Where what a notebook states disagrees with its test cells (empty: they agree).

    Checked: the total stated in the text equals the sum of the ``points`` of the test cells and of
    the written answers graded by a person (manually graded markdown cells), optional parts left
    out; the optional parts' points (extra credit) are stated apart ("N points of extra credit");
    a test cell's opening comment (``# conv_forward_naive: 4 points, 3 visible cases here, ...``)
    states that cell's points and the number of its visible cases.
    """
    from cs231n_checks.validate import is_optional_test

    from .testspec import CheckSpecError, parse_test_cell

    problems = []
    graded = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
    tests = [c for c in graded if c.cell_type == "code"]
    # the total counts the test cells and the written answers graded by a person (markdown cells
    # with points), as the grader's max_score does: optional parts are extra credit, outside it
    optional = [c for c in tests if is_optional_test(c)]
    total = sum(c.metadata["nbgrader"].get("points", 0) for c in graded if c not in optional)
    stated = stated_total(nb)
    if stated is None:
        problems.append(f"no total stated in the text (e.g. '**Grading: {total:g} points in total.**')")
    elif stated != total:
        what = "the test cells and written answers give" if len(graded) > len(tests) else "the test cells give"
        problems.append(f"the text states {stated} points in total; {what} {total:g}"
                        + (" (optional parts left out)" if optional else ""))
    extra = sum(c.metadata["nbgrader"].get("points", 0) for c in optional)
    stated_extra = stated_extra_credit(nb)
    if optional and stated_extra is None:
        problems.append(f"the optional parts' points are not stated (e.g. '**{extra:g} points of extra credit**')")
    elif (stated_extra or 0) != extra:
        problems.append(f"the text states {stated_extra} points of extra credit; the optional parts give {extra:g}")
    problems += _table_problems(nb, tests, optional)
    for cell in tests:
        grade_id = cell.metadata["nbgrader"].get("grade_id")
        match = _CELL_STATEMENT.search(cell.source.split("\n", 1)[0])
        if not match:
            continue
        points = cell.metadata["nbgrader"].get("points", 0)
        if int(match.group(1)) != points:
            problems.append(f"test cell {grade_id}: its comment states {match.group(1)} points, "
                            f"its metadata gives {points:g}")
        try:
            visible = sum(len(call.cases) for call in parse_test_cell(cell.source, grade_id) if not call.hidden)
        except CheckSpecError as exc:
            problems.append(str(exc))
            continue
        if int(match.group(2)) != visible:
            problems.append(f"test cell {grade_id}: its comment states {match.group(2)} visible cases, "
                            f"its check calls hold {visible}")
    return problems


# ------------------------------------------------------------------------------------------
# Syncing the pairs of a course


@dataclass
class PairResult:
    notebook: Path
    # "in sync" | "script -> notebook" | "notebook -> script" | "created script" | "created notebook" | "conflict"
    action: str
    detail: str = ""
    written: list = field(default_factory=list)
    warnings: list = field(default_factory=list)

    @property
    def conflict(self):
        return self.action == "conflict"


def pairs(course_root):
    """The notebooks of ``solutions/`` (with or without a script yet), and scripts that have no notebook yet.

    A script without a notebook counts when it is ``solutions/<a>/<a>.py`` (a new assignment
    written as a script first).
    """
    solutions = Path(course_root) / course.SOLUTIONS_DIR
    found = set()
    if solutions.is_dir():
        for folder in sorted(p for p in solutions.iterdir() if p.is_dir() and p.name not in course.IGNORED_NAMES):
            found.update(folder.glob("*.ipynb"))
            if (folder / f"{folder.name}.py").is_file():
                found.add(folder / f"{folder.name}.ipynb")
    return sorted(found)


def _state_path(course_root):
    return Path(course_root) / course.SOLUTIONS_DIR / STATE_FILE


def _load_state(course_root):
    try:
        return json.loads(_state_path(course_root).read_text())
    except (OSError, ValueError):
        return {}


def _save_state(course_root, state):
    write_atomic(_state_path(course_root), json.dumps(state, indent=1, sort_keys=True) + "\n")


def _committed_fingerprints(notebook, script):
    """Fingerprints of the pair as of the last git commit (nothing when not in a git repository)."""
    prints = set()
    for path, parse in ((notebook, lambda t: _as_the_script_reads_it(nbformat.reads(t, as_version=4), notebook)),
                        (script, lambda t: read_script(t, is_text=True))):
        try:
            done = subprocess.run(["git", "show", f"HEAD:./{path.name}"], cwd=path.parent,
                                  capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            return prints
        if done.returncode == 0:
            try:
                prints.add(fingerprint(parse(done.stdout)))
            except Exception:  # a committed file that does not parse is no record of a sync
                pass
    return prints


def _differing_cells(a, b):
    ca, cb = cell_content(a), cell_content(b)
    numbers = [i + 1 for i, (x, y) in enumerate(zip(ca, cb)) if x != y]
    if len(ca) != len(cb):
        return f"{len(ca)} cells against {len(cb)}"
    return "cell" + ("s " if len(numbers) > 1 else " ") + ", ".join(map(str, numbers[:8])) + \
        (" ..." if len(numbers) > 8 else "")


def sync_pair(notebook, *, state=None, prefer=None, check=False):
    """Bring ``notebook`` and its script to the same cells; returns a ``PairResult``.

    Inputs:
    - notebook: ``solutions/<a>/<a>.ipynb`` (it or its script may not exist yet)
    - state: {file name relative to solutions/: fingerprint at the last sync}; updated in place
    - prefer: "script" or "notebook": the side that wins a conflict
    - check: change nothing; the result lists the files that would be written
    """
    notebook = Path(notebook)
    script = script_path(notebook)
    key = f"{notebook.parent.name}/{notebook.name}"
    state = {} if state is None else state
    if not notebook.exists() and not script.exists():
        raise SyncError(f"neither {notebook} nor {script} exists")

    def finish(result, nb):
        nb = _as_the_script_reads_it(nb, notebook)
        for path, text in ((notebook, notebook_text(nb)), (script, script_text(nb))):
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                result.written.append(path)
                if not check:
                    write_atomic(path, text)  # a reader never sees half a notebook
        if not check:
            state[key] = fingerprint(nb)
        result.warnings = point_problems(nb)
        return result

    if not script.exists():
        stored = nbformat.read(notebook, as_version=4)
        return finish(PairResult(notebook, "created script"), stored)
    from_script = read_script(script)
    if not notebook.exists():
        return finish(PairResult(notebook, "created notebook"), notebook_from_script(from_script))

    # compared as the script would hold them (a final newline JupyterLab keeps is no difference)
    stored = _as_the_script_reads_it(nbformat.read(notebook, as_version=4), notebook)
    if cell_content(stored) == cell_content(from_script):
        return finish(PairResult(notebook, "in sync"), stored)

    differ = _differing_cells(from_script, stored)
    known = {state[key]} if key in state else set()
    known |= _committed_fingerprints(notebook, script)
    script_changed = fingerprint(from_script) not in known
    notebook_changed = fingerprint(stored) not in known
    if prefer in ("script", "notebook"):
        winner, why = prefer, f"--prefer {prefer}"
    elif known and script_changed and notebook_changed:
        result = PairResult(notebook, "conflict", (
            f"{script.name} and {notebook.name} both changed since the last sync ({differ} differ); "
            f"nothing written. Keep one side with `cs231n-grade sync --prefer script` or "
            f"`--prefer notebook`, or copy the changes of one into the other by hand and sync again."))
        result.warnings = []
        return result
    elif known and script_changed != notebook_changed:
        winner, why = ("script" if script_changed else "notebook"), "the only side changed since the last sync"
    else:
        newer = script.stat().st_mtime_ns >= notebook.stat().st_mtime_ns
        winner, why = ("script" if newer else "notebook"), "the newer file"
    if winner == "script":
        nb = notebook_from_script(from_script, stored)
        return finish(PairResult(notebook, "script -> notebook", f"{differ} differed; {why}"), nb)
    return finish(PairResult(notebook, "notebook -> script", f"{differ} differed; {why}"), stored)


def _as_the_script_reads_it(nb, notebook):
    """``nb`` as its script reads back: what both files of the pair will hold.

    jupytext's percent format drops a cell's final newline (and a last line of spaces); those
    are normalised away here so that the two files hold exactly the same cells. A line starting
    with ``# %%`` inside a code cell would start a new cell in the script: refused, naming the cell.
    """
    back = read_script(script_text(nb), is_text=True)
    if len(back.cells) != len(nb.cells):
        original = [c.source for c in canonical(nb).cells]
        split = next((i for i, c in enumerate(back.cells) if i >= len(original) or c.source != original[i]), 0)
        raise SyncError(f"{notebook}, cell {split + 1}: it cannot be written as a percent script (a line starting "
                        f"with `# %%` starts a new cell there); reword that line")
    return notebook_from_script(back, nb)


def sync(course_root, assignments=None, *, prefer=None, check=False):
    """Sync every pair of ``course_root/solutions`` (or those of ``assignments``); list of PairResult."""
    course_root = Path(course_root).resolve()
    notebooks = pairs(course_root)
    if assignments:
        known = {p.parent.name for p in notebooks}
        unknown = [a for a in assignments if a not in known]
        if unknown:
            raise SyncError(f"no assignment {', '.join(unknown)} in {course_root / course.SOLUTIONS_DIR}; "
                            f"found: {', '.join(sorted(known)) or 'none'}")
        notebooks = [p for p in notebooks if p.parent.name in assignments]
    state = _load_state(course_root)
    results = [sync_pair(p, state=state, prefer=prefer, check=check) for p in notebooks]
    if not check and (course_root / course.SOLUTIONS_DIR).is_dir():
        _save_state(course_root, state)
        config = course_root / course.SOLUTIONS_DIR / "jupytext.toml"
        if not config.exists():
            config.write_text(JUPYTEXT_TOML)
    return results


#: The scripts that make the example classes from the notebooks, in the order they run.
SAMPLE_CLASS_SCRIPTS = ("build_class.py", "build_mistakes.py")


def rebuild_sample_class(course_root):
    """Run the ``examples/`` scripts of ``course_root`` that make its example classes (the sample
    class, the class of common mistakes), those it has; returns ``(script, exit status)`` of the
    first that fails, ``(None, 0)`` when all ran, or None when it has none."""
    scripts = [Path(course_root) / "examples" / name for name in SAMPLE_CLASS_SCRIPTS]
    scripts = [s for s in scripts if s.is_file()]
    if not scripts:
        return None
    for script in scripts:
        status = subprocess.run([sys.executable, str(script)], cwd=course_root).returncode
        if status != 0:
            return script.name, status
    return None, 0


def describe(result, course_root, check=False):
    """One line for a person: what happened to the pair."""
    where = os.path.relpath(result.notebook.with_suffix(""), course_root)
    line = f"{where}.{{ipynb,py}}: {result.action}"
    if result.detail:
        line += f" ({result.detail})"
    if result.written:
        line += ("; would write " if check else "; wrote ") + ", ".join(p.name for p in result.written)
    return line
