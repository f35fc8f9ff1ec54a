"""The student kit: what an instructor hands to students, and what a grading kernel sees.

The instructor's repository holds the answers (``solutions/``, the full ``cs231n_lib``, the
hidden cases). The student kit holds only what the released notebooks need:

- ``cs231n_lib``, a *student build* of the library: every module as it is, except that each
  definition answering a graded function of an open or future assignment (the readable function,
  its Numba kernels and private helpers, listed in ``ANSWERS``) is replaced by a stub that raises
  ``NotImplementedError`` saying why;
- ``cs231n_checks``, the visible checks, with the inputs, expected outputs and known mistakes of
  every visible case computed here by the reference library (``expected/<assignment>.npz``);
- the released notebooks of the closed and open assignments.

``course.toml`` (at the course root) is the schedule: each assignment ``closed`` (past its
deadline: its answers may ship), ``open`` or ``future``. A notebook whose cells use the answers
of another assignment can only be handed out once that assignment is closed.

The grader builds the same student library for each assignment X *as it is while X is open*
(X's answers and those of every later assignment absent, whatever today's schedule says), and
that is what the grading kernel imports: a solution cell that calls the reference of a graded
function gets the stub's ``NotImplementedError``.
"""

import ast
import base64
import contextlib
import csv
import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import numpy as np

from . import course
from .files import file_lock, write_atomic
from .testspec import parse_test_cell

REPO = Path(__file__).resolve().parent.parent
LIBRARY = REPO / "cs231n_lib"
CHECKS_PACKAGE = REPO / "cs231n_checks"
COURSE_FILE = "course.toml"
STATES = ("closed", "open", "future")
KIT_NAME = "cs231n_student"

#: The library's definitions that answer each assignment's graded functions, by module (relative
#: to cs231n_lib/). Withheld from a kit while the assignment is open or future. A definition that
#: only *calls* one of these needs no entry: it meets the stub and fails.
ANSWERS = {
    "convolution": {
        # pool_output_size is conv_output_size with P = 0
        "sizing.py": ["conv_output_size", "pool_output_size"],
        # the frameworks' rounding: conv_output_size without the tiling check, on tiling sizes the same
        "architectures.py": ["window_output_size"],
        "conv.py": ["conv_forward", "conv_backward", "_im2col", "_col2im_add"],
        "kernels.py": ["im2col_rows", "im2col_columns", "col2im_planes_add", "col2im_columns_add"],
    },
    "im2col": {
        "conv.py": ["im2col", "col2im", "conv_forward", "conv_backward", "_im2col", "_col2im_add"],
        "kernels.py": ["im2col_rows", "im2col_columns", "col2im_planes_add", "col2im_columns_add"],
    },
    "pooling": {
        "pooling.py": ["max_pool_forward", "max_pool_backward", "avg_pool_forward", "avg_pool_backward"],
        "kernels.py": ["max_pool_forward_planes", "max_pool_backward_planes", "avg_pool_forward_planes",
                       "avg_pool_backward_planes"],
    },
    "batchnorm": {
        "normalization.py": ["batchnorm_forward", "batchnorm_backward", "batchnorm_backward_alt",
                             "spatial_batchnorm_forward", "spatial_batchnorm_backward", "layernorm_forward",
                             "layernorm_backward", "spatial_groupnorm_forward", "spatial_groupnorm_backward",
                             "_update_running"],
        "kernels_norm.py": ["_channels_forward", "_channels_backward", "batchnorm_channels_forward",
                            "batchnorm_channels_backward"],
    },
    "convnet": {
        "sizing.py": ["describe", "_apply_layer", "receptive_field", "fc_to_conv_weights", "training_memory",
                      "largest_batch", "pattern_spec", "widest_pattern"],
        "architectures.py": ["resnet", "basic_block"],
        "classifiers/cnn.py": ["ThreeLayerConvNet", "conv_bn_net_loss"],
        "layer_utils.py": ["residual_block_forward", "residual_block_backward"],
    },
}


class KitError(course.CourseError):
    """The schedule or a notebook does not allow the kit asked for; the message says why."""


# ------------------------------------------------------------------------------------------
# The schedule


@dataclass
class Schedule:
    """The assignments in course order with their states, and where Colab installs the kit from."""

    states: dict  # name -> "closed" | "open" | "future", in course order
    install_from: str = ""

    @property
    def order(self):
        return list(self.states)

    def withheld(self):
        """Assignments whose answers stay out of the kit (open and future)."""
        return [name for name, state in self.states.items() if state != "closed"]

    def handed_out(self):
        """Assignments whose notebooks are in the kit (closed and open)."""
        return [name for name, state in self.states.items() if state != "future"]

    def while_open(self, assignment):
        """The schedule of the day ``assignment`` was open: earlier ones closed, later ones future."""
        order = self.order
        at = order.index(assignment)
        return Schedule({name: "closed" if i < at else "open" if i == at else "future"
                         for i, name in enumerate(order)}, self.install_from)


def load_schedule(course_root):
    """Read ``course.toml``: ``[[assignment]]`` tables with ``name`` and ``state``, in course order.

    Every assignment of ``solutions/`` must be listed once; without the file, the assignments
    of ``solutions/`` in the course's usual order (that of ``ANSWERS``, then by name), all open
    (no answers ship).
    """
    course_root = Path(course_root)
    known = course.list_assignments(course_root)
    path = course_root / COURSE_FILE
    if not path.is_file():
        usual = list(ANSWERS)
        known = sorted(known, key=lambda name: (usual.index(name) if name in usual else len(usual), name))
        return Schedule({name: "open" for name in known})
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise KitError(f"{path}: not valid TOML ({exc})") from None
    states = {}
    for number, entry in enumerate(data.get("assignment", []), 1):
        name, state = entry.get("name"), entry.get("state")
        if name not in known:
            raise KitError(f"{path}: assignment {number} is {name!r}; expected one of {', '.join(known)}")
        if state not in STATES:
            raise KitError(f"{path}: {name} has state {state!r}; expected one of {', '.join(STATES)}")
        if name in states:
            raise KitError(f"{path}: {name} is listed twice")
        states[name] = state
    missing = [name for name in known if name not in states]
    if missing:
        raise KitError(f"{path}: no state for {', '.join(missing)}; list every assignment of solutions/ in course order")
    install_from = str(data.get("kit", {}).get("install_from", ""))
    return Schedule(states, install_from)


# ------------------------------------------------------------------------------------------
# The student build of the library


def withheld_definitions(schedule):
    """``{module: {name: assignment}}``: the library definitions the kit of ``schedule`` stubs."""
    withheld = {}
    for assignment in schedule.withheld():
        for module, names in ANSWERS.get(assignment, {}).items():
            for name in names:
                withheld.setdefault(module, {}).setdefault(name, assignment)
    return withheld


def _stub(node, assignment, module):
    qualified = f"cs231n_lib.{module[:-3].replace('/', '.')}.{node.name}"
    message = (f"{qualified} is not in the student kit while the assignment {assignment!r} is open: "
               f"it answers that assignment. Use your own function from the notebook.")
    indent = " " * node.col_offset
    if isinstance(node, ast.ClassDef):
        return (f"{indent}class {node.name}:\n"
                f'{indent}    """Not in the student kit (assignment {assignment!r})."""\n\n'
                f"{indent}    def __init__(self, *args, **kwargs):\n"
                f"{indent}        raise NotImplementedError({message!r})\n")
    return (f"{indent}def {node.name}(*args, **kwargs):\n"
            f'{indent}    """Not in the student kit (assignment {assignment!r})."""\n'
            f"{indent}    raise NotImplementedError({message!r})\n")


def strip_module(source, names, module):
    """``source`` with each top-level definition in ``names`` ({name: assignment}) replaced by a stub.

    Everything else (comments, docstrings, other definitions) is kept as written; a name that the
    module does not define is an error, so that ``ANSWERS`` cannot go stale silently.
    """
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    found = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in names:
            found[node.name] = node
    missing = sorted(set(names) - set(found))
    if missing:
        raise KitError(f"cs231n_lib/{module} defines no {', '.join(missing)} (listed in autograder.kit.ANSWERS)")
    for name, node in sorted(found.items(), key=lambda item: -item[1].lineno):
        start = min([node.lineno] + [d.lineno for d in node.decorator_list]) - 1
        lines[start:node.end_lineno] = [_stub(node, names[name], module)]
    return "".join(lines)


def build_library(dest, schedule):
    """Write the student build of ``cs231n_lib`` for ``schedule`` into ``dest/cs231n_lib``."""
    withheld = withheld_definitions(schedule)
    target = Path(dest) / "cs231n_lib"
    for path in sorted(LIBRARY.rglob("*.py")):
        rel = path.relative_to(LIBRARY).as_posix()
        if "__pycache__" in rel:
            continue
        text = path.read_text(encoding="utf-8")
        if rel in withheld:
            text = strip_module(text, withheld[rel], rel)
        out = target / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    for path in library_data_files():
        out = target / path.relative_to(LIBRARY)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, out)
    return target


def library_data_files():
    """The package data of ``cs231n_lib`` (e.g. the bundled digits): every file that is not
    Python source or bytecode, outside ``__pycache__``. The student build ships them as they are."""
    return [path for path in sorted(LIBRARY.rglob("*"))
            if path.is_file() and path.suffix not in (".py", ".pyc")
            and "__pycache__" not in path.relative_to(LIBRARY).parts]


def build_checks(dest, expected=None):
    """Copy ``cs231n_checks`` into ``dest`` with ``expected`` ({assignment: npz entries}) as its data."""
    target = Path(dest) / "cs231n_checks"
    for path in sorted(CHECKS_PACKAGE.rglob("*.py")):
        rel = path.relative_to(CHECKS_PACKAGE)
        if "__pycache__" in rel.parts:
            continue
        out = target / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, out)
    for assignment, entries in (expected or {}).items():
        (target / "expected").mkdir(exist_ok=True)
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **entries)
        (target / "expected" / f"{assignment}.npz").write_bytes(buffer.getvalue())
    return target


def grading_kits_dir():
    """Where the grader keeps the kits its kernels import: outside the course and the output
    folder (both hidden from kernels), one folder per content, shared by runs of this user."""
    return Path(tempfile.gettempdir()) / f"cs231n-kits-{os.getuid()}"


#: Compiles every Numba kernel the student build still has (each layer, float32 and float64,
#: small and threaded sizes) into NUMBA_CACHE_DIR; the withheld ones are stubs and are skipped.
_WARM_KERNELS = """
import numpy as np
import cs231n_lib
from cs231n_lib import conv, layers, normalization, pooling

def attempt(fn, *args):
    try:
        return fn(*args)
    except NotImplementedError:
        return None

for dt in (np.float32, np.float64):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 3, 3, 3)).astype(dt)
    for shape in ((4, 3, 32, 32), (1, 3, 64, 64), (2, 3, 8, 8)):
        x = rng.standard_normal(shape).astype(dt)
        done = attempt(conv.conv_forward, x, w, np.zeros(4, dt), {"stride": 1, "pad": 1})
        if done is not None:
            attempt(conv.conv_backward, done[0], done[1])
        cols = attempt(conv.im2col, x, 3, 3, 1, 1)
        if cols is not None:
            attempt(conv.col2im, cols, x.shape, 3, 3, 1, 1)
        for kind in ("max", "avg"):
            done = attempt(getattr(pooling, kind + "_pool_forward"), x,
                           {"pool_height": 2, "pool_width": 2, "stride": 2})
            if done is not None:
                attempt(getattr(pooling, kind + "_pool_backward"), done[0], done[1])
        done = attempt(normalization.spatial_batchnorm_forward, x, np.ones(3, dt), np.zeros(3, dt), {"mode": "train"})
        if done is not None:
            attempt(normalization.spatial_batchnorm_backward, done[0], done[1])
    big = rng.standard_normal(1 << 16).astype(dt)
    layers.relu_backward(big, layers.relu_forward(big)[1])
"""


def _warm_numba_cache(folder):
    """Compile the kit's kernels once into ``folder/.numba-cache`` (copied into each kernel).
    Returns ``(compiled, reused)``: how many compiled kernels were written, and how many were
    loaded from that cache as it was (seeded from the store of compiled kernels)."""
    env = dict(os.environ, PYTHONPATH=str(folder), NUMBA_CACHE_DIR=str(folder / ".numba-cache"),
               PYTHONDONTWRITEBYTECODE="1", NUMBA_DEBUG_CACHE="1")
    done = subprocess.run([sys.executable, "-c", _WARM_KERNELS], env=env, cwd=str(folder),
                          capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise KitError(f"the student build of cs231n_lib in {folder} does not work: "
                       f"{(done.stderr.strip().splitlines() or ['no message'])[-1]}")
    log = done.stdout.splitlines()
    return (sum(line.startswith("[cache] data saved to") for line in log),
            sum(line.startswith("[cache] data loaded from") for line in log))


# ------------------------------------------------------------------------------------------
# Compiled kernels shared between kits
#
# Every kit is a folder of its own, and Numba files its cache by the source's folder and checks
# it against the source's modification time and size. Kits whose Numba modules are the same
# bytes (the kits of one assignment before and after an edit of a check or a docstring, and
# assignments that withhold no kernel) would each compile the same kernels, about a minute per
# kit. The store keeps what one kit compiled, keyed by the content of its Numba modules; a new
# kit with the same modules gets their modification times and a copy of the compiled files
# before its warm-up, which then loads them instead of compiling. A changed module has another
# key and never meets an older compilation (Numba also checks each function's bytecode).

COMPILED_STORE = ".compiled-kernels"


def _numba_modules(library):
    """The modules of a student build of cs231n_lib that Numba compiles, relative to it."""
    return sorted(path.relative_to(library).as_posix() for path in library.rglob("*.py")
                  if "__pycache__" not in path.parts and b"numba" in path.read_bytes())


def _numba_cache_subdir(module_path):
    """Where Numba files the cache of ``module_path`` inside NUMBA_CACHE_DIR (its own rule)."""
    from numba.core.caching import _CacheLocator  # a private rule, used so that ours cannot drift

    return _CacheLocator.get_suitable_cache_subpath(str(module_path))


def _compiled_store_entry(kits_dir, folder):
    """The store's folder for the Numba modules of the kit in ``folder``."""
    import numba

    library = folder / "cs231n_lib"
    digest = hashlib.sha256(f"{numba.__version__}\0{sys.version}\0".encode())
    for rel in _numba_modules(library):
        digest.update(rel.encode() + b"\0" + (library / rel).read_bytes() + b"\0")
    return kits_dir / COMPILED_STORE / digest.hexdigest()[:24]


def _cache_units(folder):
    """{file stem: [files]} of a Numba cache folder: one index (``.nbi``) and its data (``.nbc``)
    per compiled function, which only travel together."""
    units = {}
    for path in sorted(folder.iterdir()) if folder.is_dir() else ():
        if path.suffix in (".nbi", ".nbc") and ".py" in path.name:  # kernels.relu-375.py311.1.nbc
            units.setdefault(path.name[:path.name.rindex(".py")], []).append(path)
    return units


def _seed_from_store(entry, folder):
    """Before the warm-up: give the kit's Numba modules the store's modification times and copy
    the compiled functions in. Returns the number of functions seeded."""
    library = folder / "cs231n_lib"
    try:
        stamps = json.loads((entry / "stamps.json").read_text())
    except (OSError, ValueError):
        return 0
    if not (isinstance(stamps, dict) and sorted(stamps) == _numba_modules(library)
            and all(type(ns) is int for ns in stamps.values())):
        return 0  # not a record this code wrote for these modules
    seeded = 0
    for rel, mtime_ns in stamps.items():
        module = library / rel
        os.utime(module, ns=(mtime_ns, mtime_ns))
        target = folder / ".numba-cache" / _numba_cache_subdir(module)
        for stem, files in _cache_units(entry / "cache" / Path(rel).parent.as_posix()).items():
            if not stem.startswith(Path(rel).stem + "."):
                continue
            target.mkdir(parents=True, exist_ok=True)
            for path in files:
                shutil.copyfile(path, target / path.name)
            seeded += 1
    return seeded


def _save_to_store(entry, folder):
    """After the warm-up: keep what the kit compiled, each function in the version with the most
    compiled signatures (a kit may reach fewer of a module's kernels than another)."""
    library = folder / "cs231n_lib"
    modules = _numba_modules(library)
    stamps = {rel: os.stat(library / rel).st_mtime_ns for rel in modules}
    try:
        recorded = json.loads((entry / "stamps.json").read_text())
    except (OSError, ValueError):
        recorded = None
    if isinstance(recorded, dict) and sorted(recorded) == modules and recorded != stamps:
        return  # built beside the kit that filled the store, not seeded from it: its files are stamped otherwise
    if recorded != stamps:  # no record, or one this code did not write: start the entry afresh
        shutil.rmtree(entry, ignore_errors=True)
        write_atomic(entry / "stamps.json", json.dumps(stamps).encode(), mode=0o644)
    for rel in modules:
        module = library / rel
        kept = entry / "cache" / Path(rel).parent.as_posix()
        theirs = _cache_units(kept)
        for stem, files in _cache_units(folder / ".numba-cache" / _numba_cache_subdir(module)).items():
            if not stem.startswith(Path(rel).stem + ".") or len(files) <= len(theirs.get(stem, ())):
                continue
            for path in theirs.get(stem, ()):
                path.unlink()
            for path in files:  # sorted: the data first, the index that points to them last
                write_atomic(kept / path.name, path.read_bytes(), mode=0o644)
    # the grader's warm-up loads this code: only its user may write here, whatever the umask
    for path in [entry.parent, *entry.rglob("*"), entry]:
        os.chmod(path, 0o644 if path.is_file() else 0o755)


def _compile_kernels(kits_dir, folder):
    """Compile the kit's kernels, starting from what the store holds for its Numba modules, and
    keep what was compiled there. Returns the build record written to ``.complete``."""
    entry = _compiled_store_entry(kits_dir, folder)
    lock = kits_dir / f"{COMPILED_STORE}.lock"
    with file_lock(lock):
        try:
            seeded = _seed_from_store(entry, folder)
        except OSError:  # the store only saves time: without it, the kernels are compiled
            shutil.rmtree(folder / ".numba-cache", ignore_errors=True)
            seeded = 0
    try:
        compiled, reused = _warm_numba_cache(folder)
    except KitError:
        if not seeded:
            raise
        # a damaged store entry must not stop grading: drop it and compile
        with file_lock(lock):
            shutil.rmtree(entry, ignore_errors=True)
        shutil.rmtree(folder / ".numba-cache", ignore_errors=True)
        seeded, (compiled, reused) = 0, _warm_numba_cache(folder)
    with file_lock(lock), contextlib.suppress(OSError, ValueError):
        _save_to_store(entry, folder)  # a full disk costs the next kit its head start, not this one
    return {"kernels_compiled": compiled, "kernels_reused": reused, "functions_seeded": seeded}


def grading_kit(course_root, assignment, kits_dir=None):
    """The folder a grading kernel of ``assignment`` puts first on its path: the student build of
    the library and the checks as they were while ``assignment`` was open, with their Numba
    kernels compiled. Built once per content (the schedule of that day and the sources)."""
    schedule = load_schedule(course_root).while_open(assignment)
    digest = hashlib.sha256(json.dumps(schedule.states).encode())
    for root in (LIBRARY, CHECKS_PACKAGE):
        for path in sorted(root.rglob("*.py")):
            digest.update(path.relative_to(REPO).as_posix().encode() + b"\0" + path.read_bytes())
    for path in library_data_files():
        digest.update(path.relative_to(REPO).as_posix().encode() + b"\0" + path.read_bytes())
    kits_dir = Path(kits_dir) if kits_dir else grading_kits_dir()
    kits_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
    # the grader runs code from here (the Numba warm-up): nobody else may have made or changed it
    st = os.lstat(kits_dir)
    if stat.S_ISLNK(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o022:
        raise KitError(f"{kits_dir} is not a folder of this user's that only it can write; remove it or "
                       f"set TMPDIR to a private folder")
    folder = kits_dir / f"{assignment}-{digest.hexdigest()[:16]}"
    if (folder / ".complete").exists():
        return folder
    # built in place (Numba's cache is tied to the sources' path), one builder at a time
    with file_lock(kits_dir / f".{folder.name}.lock"):
        if not (folder / ".complete").exists():
            shutil.rmtree(folder, ignore_errors=True)
            build_library(folder, schedule)
            build_checks(folder)
            built = _compile_kernels(kits_dir, folder)
            for path in folder.rglob("*"):
                os.chmod(path, 0o755 if path.is_dir() else 0o644)
            os.chmod(folder, 0o755)
            (folder / ".complete").write_text(json.dumps(built))
    return folder


# ------------------------------------------------------------------------------------------
# Which assignments a notebook needs


def library_names_used(nb):
    """Names of ``cs231n_lib`` a notebook's code cells use (solution cells excluded)."""
    used = set()
    for cell in nb.cells:
        if cell.cell_type != "code" or cell.metadata.get("nbgrader", {}).get("solution"):
            continue
        try:
            tree = ast.parse(_python_only(cell.source))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "cs231n_lib":
                used.update(alias.name for alias in node.names)
            elif isinstance(node, ast.Attribute):
                chain = _attribute_chain(node)
                if chain and chain[0] == "cs231n_lib":
                    used.update(chain[1:])
    return used


def _python_only(source):
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())


def _attribute_chain(node):
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return [node.id] + parts[::-1]
    return None


def _library_references():
    """{definition name: names it references} over every top-level definition of cs231n_lib."""
    refs = {}
    for path in sorted(LIBRARY.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
                names |= {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)}
                refs.setdefault(node.name, set()).update(names - {node.name})
    return refs


def needed_assignments(nb, own):
    """Assignments other than ``own`` whose answers the notebook's cells reach, directly or through
    the library (e.g. ``conv_relu_pool_forward`` reaches convolution and pooling)."""
    owners = {}
    for assignment, modules in ANSWERS.items():
        for names in modules.values():
            for name in names:
                owners.setdefault(name, set()).add(assignment)
    refs = _library_references()
    seen, todo = set(), list(library_names_used(nb))
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(refs.get(name, ()))
    needed = set()
    for name in seen:
        needed |= owners.get(name, set())
    return needed - {own}, sorted(name for name in seen if own in owners.get(name, ()))


def check_dependencies(course_root, schedule):
    """Refuse a schedule that hands out a notebook needing answers that are not closed yet."""
    for name in schedule.handed_out():
        nb = _released_notebook(course_root, name)
        needed, own = needed_assignments(nb, name)
        for other in sorted(needed, key=schedule.order.index):
            if schedule.states[other] != "closed":
                raise KitError(f"{name} cannot be handed out while {other} is {schedule.states[other]}: "
                               f"its notebook uses {other}'s answers from cs231n_lib; close {other} first "
                               f"in {COURSE_FILE}")
        if own:
            raise KitError(f"the {name} notebook uses {', '.join(own)} from cs231n_lib outside its solution "
                           f"cells, but the kit withholds them while {name} is open; use the student's own "
                           f"functions there")


def _released_notebook(course_root, name):
    path = Path(course_root) / course.ASSIGNMENTS_DIR / name / f"{name}.ipynb"
    if not path.is_file():
        raise KitError(f"no released notebook {path}; run `cs231n-grade release` first")
    return nbformat.read(path, as_version=4)


# ------------------------------------------------------------------------------------------
# Expected data of the visible cases


def visible_case_data(course_root, assignment):
    """``.npz`` entries (inputs, expected outputs, known mistakes) of every visible case of
    ``assignment``, computed with the trusted checks. Hidden cases are never read here."""
    from cs231n_checks.base import case_key, pack_case

    from .checks import get_check

    source = nbformat.read(Path(course_root) / course.SOLUTIONS_DIR / assignment / f"{assignment}.ipynb",
                           as_version=4)
    entries = {}
    for cell in source.cells:
        if cell.cell_type != "code" or not cell.metadata.get("nbgrader", {}).get("grade"):
            continue
        for call in parse_test_cell(cell.source):
            if call.hidden:
                continue
            check = get_check(call.name)
            for case in call.cases:
                inputs = check.make_inputs(case)
                expected = check.reference({k: np.array(v, copy=True) for k, v in inputs.items()})
                mistakes = check.mistakes(case, inputs)
                entries.update(pack_case(case_key(call.name, case), inputs, expected, mistakes, call.name, case))
    return entries


# ------------------------------------------------------------------------------------------
# The wheel and the distribution


KIT_README = """\
# The student kit of {course}

Install the kit, then open the notebooks:

    python -m venv .venv && . .venv/bin/activate
    pip install {wheel}
    jupyter lab assignments/

Each notebook's test cells check your functions on the visible cases and name the usual
mistakes. Before you submit, run

    cs231n-grade validate assignments/<name>/<name>.ipynb

which runs your notebook top to bottom in a fresh kernel and prints the points its visible
cases give. More cases, with other shapes and hyperparameters, run when your notebook is graded.

Assignments in this kit: {assignments}.
"""

KIT_DEPENDENCIES = ["numpy>=1.26", "numba>=0.60", "matplotlib>=3.8", "tqdm>=4.66", "threadpoolctl>=3.2",
                    "ipywidgets>=8.1", "ipykernel>=6.29", "nbclient>=0.10", "nbformat>=5.9"]


def _record_hash(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def write_wheel(package_dir, out_dir, version):
    """Write ``cs231n_student-<version>-py3-none-any.whl`` from the packages in ``package_dir``.

    A wheel is a zip with a ``.dist-info`` folder; writing it here keeps the build offline,
    byte-stable and independent of a build backend.
    """
    name = f"{KIT_NAME}-{version}"
    wheel = Path(out_dir) / f"{name}-py3-none-any.whl"
    files = []
    for path in sorted(Path(package_dir).rglob("*")):
        if path.is_file():
            files.append((path.relative_to(package_dir).as_posix(), path.read_bytes()))
    info = f"{name}.dist-info"
    metadata = "\n".join(["Metadata-Version: 2.1", f"Name: {KIT_NAME.replace('_', '-')}", f"Version: {version}",
                          "Summary: The student kit of the cs231n course: notebooks' library and visible checks",
                          "Requires-Python: >=3.11"] + [f"Requires-Dist: {d}" for d in KIT_DEPENDENCIES]) + "\n"
    files += [
        (f"{info}/METADATA", metadata.encode()),
        (f"{info}/WHEEL", b"Wheel-Version: 1.0\nGenerator: cs231n-grade\nRoot-Is-Purelib: true\nTag: py3-none-any\n"),
        (f"{info}/entry_points.txt", b"[console_scripts]\ncs231n-grade = cs231n_checks.validate:main\n"),
        (f"{info}/top_level.txt", b"cs231n_checks\ncs231n_lib\n"),
    ]
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    for rel, data in files:
        writer.writerow([rel, _record_hash(data), len(data)])
    writer.writerow([f"{info}/RECORD", "", ""])
    files.append((f"{info}/RECORD", record.getvalue().encode()))
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
        for rel, data in files:
            entry = zipfile.ZipInfo(rel, date_time=(2026, 1, 1, 0, 0, 0))
            entry.external_attr = 0o644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(entry, data)
    return wheel


INSTALL_LINE = 'KIT_SOURCE = ""'


def with_install_source(notebook_text, install_from):
    """The notebook with its kit cell's ``KIT_SOURCE = ""`` line set to ``install_from`` (where
    Colab installs the kit from); unchanged when no address is set."""
    if not install_from:
        return notebook_text
    from nbgrader.utils import compute_checksum

    nb = nbformat.reads(notebook_text, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and INSTALL_LINE in cell.source.splitlines():
            cell.source = "\n".join(f"KIT_SOURCE = {json.dumps(install_from)}" if line == INSTALL_LINE else line
                                    for line in cell.source.splitlines())
            if "checksum" in cell.metadata.get("nbgrader", {}):
                # a locked cell: nbgrader's validate compares its source with this checksum
                cell.metadata["nbgrader"]["checksum"] = compute_checksum(cell)
    return nbformat.writes(nb) + "\n"


@dataclass
class KitResult:
    out: Path
    wheel: Path
    zip: Path
    assignments: list = field(default_factory=list)
    withheld: list = field(default_factory=list)


def build_student_kit(course_root, out, schedule=None, *, version=None):
    """Build the student distribution into ``out`` (see the module docstring); returns a ``KitResult``.

    ``out`` gets ``assignments/<name>/<name>.ipynb`` for the closed and open assignments, the
    wheel, a README and ``<out>.zip`` of the whole. Refuses a schedule that hands out a notebook
    needing answers that are not closed.
    """
    from . import __version__

    course_root = Path(course_root).resolve()
    schedule = schedule or load_schedule(course_root)
    check_dependencies(course_root, schedule)
    out = Path(out).resolve()
    if out == course_root or out in course_root.parents:
        raise KitError(f"{out} holds the course itself; give a folder of its own for the kit")
    if out.exists():
        if any(out.iterdir()) and not (out / ".cs231n-student-kit").exists():
            raise KitError(f"{out} exists and is not a student kit folder; give an empty or new folder")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / ".cs231n-student-kit").write_text("built by cs231n-grade student-kit\n")
    handed_out = schedule.handed_out()
    expected = {name: visible_case_data(course_root, name) for name in handed_out}
    staging = out / ".build"
    build_library(staging, schedule)
    build_checks(staging, expected)
    kit_version = version or __version__
    wheel = write_wheel(staging, out, kit_version)
    shutil.rmtree(staging)
    for name in handed_out:
        target = out / "assignments" / name
        target.mkdir(parents=True)
        for path in sorted((course_root / course.ASSIGNMENTS_DIR / name).iterdir()):
            if path.suffix == ".ipynb":
                (target / path.name).write_text(with_install_source(path.read_text(encoding="utf-8"),
                                                                    schedule.install_from), encoding="utf-8")
            elif path.is_file():
                shutil.copyfile(path, target / path.name)
    (out / "README.md").write_text(KIT_README.format(course=course.COURSE_ID, wheel=wheel.name,
                                                     assignments=", ".join(handed_out) or "none yet"))
    archive = out.parent / f"{out.name}.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(out.rglob("*")):
            if path.is_file() and path.name != ".cs231n-student-kit":
                zf.write(path, Path(out.name) / path.relative_to(out))
    return KitResult(out, wheel, archive, handed_out, schedule.withheld())
