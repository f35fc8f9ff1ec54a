"""Integrity checks on solution sources: delegation to cs231n_lib, and a normal form for similarity.

``delegation_flags`` flags (never zeroes) a solution cell that uses ``cs231n_lib``: the reference
library the grader compares against. Using it for the very function being graded (e.g.
``cs231n_lib.conv_forward`` inside ``conv_forward_naive``) is ``delegation``; any other use is
``library_use`` (an instructor may allow helpers such as ``conv_output_size``). The analysis is
on the syntax tree: imports, attribute access through any name bound to the library (in the
setup cells or the solution itself), star imports, and strings naming the library (``importlib``,
``__import__``, ``sys.modules[...]``).

It also flags ``tampering`` (the solution names the grading harness, ``get_ipython`` or IPython's
input/AST transformers) and ``dynamic_code`` (``__import__``, ``exec``, ``eval``, ``getattr``,
``importlib``, ``sys``, ``ctypes``...): ways to hide a delegation from the analysis above.
Flags are for a person to look at; they never change a score.

``module_flags`` covers code outside the solution cells: a solution that imports a module the
student sent along (``helper.py`` next to the notebook; its source is analysed the same way) or
a module that is not installed (the notebook may write it while it runs).

``normalise_source`` gives a canonical form of a source (no comments or docstrings, identifiers
renamed in order of first appearance) for the coordinator's cross-student similarity.
"""

import ast
import builtins
import re

LIBRARY = "cs231n_lib"
_SUFFIXES = ("_naive", "_fast", "_vectorized", "_vectorised", "_loops", "_loop")


def _library_names(tree):
    """Names bound to the library or to things imported from it, in ``tree``: {name: "cs231n_lib.x"}."""
    bound = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == LIBRARY:
                    bound[(alias.asname or alias.name).split(".")[0]] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == LIBRARY:
            for alias in node.names:
                if alias.name != "*":
                    bound[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return bound


def _stem(name):
    for suffix in _SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def library_uses(source, setup_bindings=None):
    """Sorted list of ``cs231n_lib`` things ``source`` uses (dotted names, or descriptions)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, MemoryError, RecursionError):  # hostile nesting ends in the last two
        return ["cs231n_lib (text)"] if LIBRARY in source else []
    # a name the source binds itself (a helper `def im2col`, an argument, an assignment) is its
    # own, not the library's that the setup cell imported under that name
    shadowed = _locally_bound(tree)
    bindings = {k: v for k, v in (setup_bindings or {}).items() if k not in shadowed}
    local = _library_names(tree)
    bindings.update(local)
    uses = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == LIBRARY:
            for alias in node.names:
                uses.add(f"{node.module}.{alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == LIBRARY:
                    uses.add(alias.name)
        elif isinstance(node, ast.Attribute):
            chain, base = [node.attr], node.value
            while isinstance(base, ast.Attribute):
                chain.append(base.attr)
                base = base.value
            if isinstance(base, ast.Name) and base.id in bindings:
                uses.add(".".join([bindings[base.id]] + chain[::-1]))
        elif isinstance(node, ast.Name) and node.id in bindings and isinstance(node.ctx, ast.Load):
            uses.add(bindings[node.id])
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and LIBRARY in node.value:
            uses.add(f"the string {node.value[:60]!r}")
    # a bare name used under an attribute chain is reported by the chain; drop the prefix alone
    return sorted(u for u in uses if not any(o != u and o.startswith(u + ".") for o in uses))


def _locally_bound(tree):
    """Names ``tree`` binds anywhere (functions, classes, arguments, assignment targets, imports
    from elsewhere than the library), at any depth."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, ast.Import):
            names.update((a.asname or a.name).split(".")[0] for a in node.names if a.name.split(".")[0] != LIBRARY)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] != LIBRARY:
            names.update(a.asname or a.name for a in node.names)
    return names


def _defined_functions(source):
    """Names a cell defines at its top level: functions, and names bound by an import
    (``from cs231n_lib import conv_backward as conv_backward_naive`` defines the graded name)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, MemoryError, RecursionError):  # hostile nesting ends in the last two
        return []
    names = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names.extend(alias.asname for alias in node.names if alias.asname)
    return names


_DYNAMIC_CALLS = {"__import__", "exec", "eval", "compile", "globals", "vars", "getattr", "setattr"}
_DYNAMIC_MODULES = {"importlib", "sys", "builtins", "ctypes", "inspect", "gc"}
_HARNESS_NAMES = {"autograder", "cs231n_checks", "get_ipython", "kernel_side", "input_transformers_cleanup",
                  "input_transformers_post", "ast_transformers", "run_case"}


def suspicious_constructs(source):
    """``(tampering, dynamic)``: names in ``source`` that reach the grading harness or IPython's
    machinery, and dynamic imports/lookups that can hide what is called (sorted lists)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, MemoryError, RecursionError):  # hostile nesting ends in the last two
        return [], []
    tampering, dynamic = set(), set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Name):
            names.append(node.id)
            if node.id in _DYNAMIC_CALLS:
                dynamic.add(node.id)
        elif isinstance(node, ast.Attribute):
            names.append(node.attr)
        elif isinstance(node, ast.Import):
            names.extend(a.name.split(".")[0] for a in node.names)
            dynamic.update(a.name.split(".")[0] for a in node.names if a.name.split(".")[0] in _DYNAMIC_MODULES)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module.split(".")[0])
            if node.module.split(".")[0] in _DYNAMIC_MODULES:
                dynamic.add(node.module.split(".")[0])
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names.extend(n for n in _HARNESS_NAMES if n in node.value)
        tampering.update(n for n in names if n in _HARNESS_NAMES)
    return sorted(tampering), sorted(dynamic)


def student_modules(files):
    """{module name: {relative path: source}} of the Python modules among a submission's files.

    The kernel's working folder holds the student's files and is on ``sys.path``, so a top-level
    ``helper.py`` or a folder ``helper/`` holding ``.py`` files is importable as ``helper``.
    """
    modules = {}
    for rel, data in (files or {}).items():
        parts = rel.split("/")
        if not parts[-1].endswith(".py"):
            continue
        name = parts[0][:-3] if len(parts) == 1 else parts[0]
        if not name.isidentifier():
            continue
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
        modules.setdefault(name, {})[rel] = text
    return modules


def _imported_modules(source):
    """Top-level names of the modules ``source`` imports (absolute imports only)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, MemoryError, RecursionError):  # hostile nesting ends in the last two
        return set()
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def _installed(name):
    """True when ``name`` is importable in the grader's environment (found, never imported)."""
    import importlib.util
    import sys

    if name in sys.builtin_module_names or name in sys.stdlib_module_names:
        return True
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def module_flags(sources, files):
    """Flags for solution ``sources`` that import code the analysis of the cells cannot see:
    the student's own modules (sent with the notebook; analysed for use of the library here)
    and modules that are not installed (written by the notebook at run time?)."""
    modules = student_modules(files)
    flags = []
    for gid, source in sources.items():
        for name in sorted(_imported_modules(source)):
            if name in modules:
                paths = ", ".join(sorted(modules[name]))
                uses = sorted({u for text in modules[name].values() for u in library_uses(text)})
                tampering, dynamic = set(), set()
                for text in modules[name].values():
                    t, d = suspicious_constructs(text)
                    tampering.update(t)
                    dynamic.update(d)
                detail = f"imports {name} from the submitted {paths}"
                if uses:
                    flags.append({"kind": "delegation", "grade_id": gid,
                                  "detail": f"{detail}, which uses {', '.join(uses)}"})
                elif tampering or dynamic:
                    flags.append({"kind": "tampering" if tampering else "dynamic_code", "grade_id": gid,
                                  "detail": f"{detail}, which uses {', '.join(sorted(tampering | dynamic))}"})
                else:
                    flags.append({"kind": "own_module", "grade_id": gid,
                                  "detail": f"{detail}: part of the solution lives outside the notebook"})
            elif name != LIBRARY and not _installed(name):
                flags.append({"kind": "own_module", "grade_id": gid,
                              "detail": f"imports {name}, which is neither installed nor among the submitted "
                                        "files (written by the notebook while it runs?)"})
    return flags


def delegation_flags(template_nb, sources):
    """Flags for the solution ``sources`` ({grade_id: source}) of a notebook built on ``template_nb``."""
    from .rebuild import is_solution_cell, is_test_cell

    setup = {}
    for cell in template_nb.cells:
        if cell.cell_type == "code" and not is_solution_cell(cell) and not is_test_cell(cell):
            try:
                setup.update(_library_names(ast.parse(cell.source)))
            except (SyntaxError, ValueError, MemoryError, RecursionError):  # hostile nesting ends in the last two
                continue
    flags = []
    for gid, source in sources.items():
        tampering, dynamic = suspicious_constructs(source)
        if tampering:
            flags.append({"kind": "tampering", "grade_id": gid,
                          "detail": f"reaches the grading harness or IPython's machinery: {', '.join(tampering)}"})
        if dynamic:
            flags.append({"kind": "dynamic_code", "grade_id": gid,
                          "detail": f"uses dynamic imports or lookups that can hide what is called: {', '.join(dynamic)}"})
        uses = library_uses(source, setup)
        if not uses:
            continue
        stems = {_stem(f) for f in _defined_functions(source)}
        same = [u for u in uses if _stem(u.rsplit(".", 1)[-1]) in stems or u.endswith(LIBRARY)
                or u.startswith("the string")]
        star = any(u.endswith(".*") for u in uses)
        kind = "delegation" if same or star else "library_use"
        flags.append({"kind": kind, "grade_id": gid,
                      "detail": f"uses {', '.join(uses)}" + (" (the library's version of the graded function)"
                                                             if same else "")})
    return flags


# ------------------------------------------------------------------------------------------
# Normal form for similarity


class _Canon(ast.NodeTransformer):
    def __init__(self):
        self.names = {}
        self.keep = set(dir(builtins))

    def rename(self, name):
        if name in self.keep:
            return name
        if name not in self.names:
            self.names[name] = f"v{len(self.names)}"
        return self.names[name]

    def visit_Name(self, node):
        node.id = self.rename(node.id)
        return node

    def visit_arg(self, node):
        node.arg = self.rename(node.arg)
        node.annotation = None
        return node

    def visit_FunctionDef(self, node):
        node.name = self.rename(node.name)
        node.returns = None
        _drop_docstring(node)
        self.generic_visit(node)
        return node

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node):
        node.name = self.rename(node.name)
        _drop_docstring(node)
        self.generic_visit(node)
        return node

    def visit_alias(self, node):
        # imported modules keep their names (np is np for everyone); aliases are canonical
        if node.asname:
            node.asname = self.rename(node.asname)
        else:
            self.keep.add(node.name.split(".")[0])
        return node


class _Quiet(ast.NodeTransformer):
    """Drops what computes nothing: asserts and bare constants (docstrings, strings as comments)
    anywhere, so that a copy with asserts and docstrings added reads as the same code."""

    def generic_visit(self, node):
        super().generic_visit(node)
        for field in ("body", "orelse", "finalbody"):
            body = getattr(node, field, None)
            if isinstance(body, list) and body and all(isinstance(s, ast.stmt) for s in body):
                kept = [s for s in body if not isinstance(s, ast.Assert) and not (
                    isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
                setattr(node, field, kept or ([ast.Pass()] if field == "body" else []))
        return node


def _drop_docstring(node):
    body = node.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        node.body = body[1:] or [ast.Pass()]


def normalise_source(src):
    """Canonical text of ``src``: comments, docstrings, annotations gone; identifiers renamed v0, v1, ...

    Sources that do not parse are reduced to their non-blank, comment-free lines.
    """
    try:
        tree = ast.parse(src)
    except (SyntaxError, ValueError, MemoryError, RecursionError):  # hostile nesting ends in the last two
        lines = [re.sub(r"#.*", "", line).strip() for line in src.splitlines()]
        return "\n".join(line for line in lines if line)
    _drop_docstring(tree)
    tree = _Quiet().visit(tree)
    # imports first, so that module names are known before they are used
    canon = _Canon()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            canon.keep.update(a.name.split(".")[0] for a in node.names if not a.asname)
    tree = canon.visit(tree)
    return ast.unparse(tree)
