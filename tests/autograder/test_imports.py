"""The grader's modules import on their own, and no two of them import each other, even lazily.

A cycle makes the order of imports matter and hides a module's real dependencies; an import
made inside a function to dodge one is still one. The graph is read from the source (every
``import`` and ``from ... import`` anywhere in a module, functions included), so a lazy import
counts like a top-level one.
"""

import ast
import importlib
from pathlib import Path

import pytest

import autograder

PACKAGE = Path(autograder.__file__).resolve().parent


def _module_name(path):
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _ancestors(name):
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def import_graph():
    """``{module: set of package modules it imports}``, lazy imports included.

    ``from .x import y`` counts as importing ``x`` (and ``x.y`` when that is a module);
    importing ``a.b`` also runs the package ``a`` unless the importer is inside it already.
    """
    graph = {}
    for name, path in MODULES.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                targets.add(module)
                targets.update(f"{module}.{alias.name}" for alias in node.names)
        # a module's own packages are running already when it is imported: no edge to them
        edges = set()
        for target in targets & set(MODULES):
            edges.update(t for t in _ancestors(target) | {target} if t not in _ancestors(name) | {name})
        graph[name] = edges
    return graph


def find_cycle(graph):
    """One cycle of ``graph`` as a list of modules (first == last), or None."""
    state = {}  # 1: on the current path, 2: done

    def visit(node, path):
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt, path)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start, [])
            if found:
                return found
    return None


def test_the_walk_sees_lazy_imports_and_cycles():
    graph = import_graph()
    assert "autograder.files" in graph["autograder.batch"]
    assert "autograder.gradebook" in graph["autograder.batch"]  # imported inside autograde()
    assert "autograder.checks.base" in graph["autograder.checks.batchnorm"]
    assert "autograder.checks" not in graph["autograder.checks.batchnorm"]  # its own package
    assert "autograder.checks" in graph["autograder.engine"]  # `from .checks.base import` runs checks/__init__
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_package_has_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_module_imports(name):
    importlib.import_module(name)


def test_the_kernels_wrapper_imports_nothing_of_the_grader_but_the_limits():
    """The launcher runs as root in the kernel's process: a review of it must not need the rest."""
    graph = import_graph()
    assert graph["autograder.sandbox_launcher"] == {"autograder.limits"}
    assert graph["autograder.limits"] == set()
