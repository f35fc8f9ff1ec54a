"""Find the student's answer to each solution cell, wherever it stands in the notebook.

The released notebook names each solution cell by its nbgrader ``grade_id``, but a student's
notebook loses that metadata in ordinary ways: a cell deleted and written again, a cell split or
copied, a save from VS Code (which drops cell metadata) or Colab (which rewrites it). So a code
solution cell is answered by the *definitions* it asks for (the functions and classes its
released stub defines), looked up the way the student's kernel would see them after running the
notebook top to bottom:

- every top-level ``def``/``class`` of one of those names, in any code cell of the student's
  notebook, is a candidate; the last one in notebook order wins (in a cell, the last one there);
- an unchanged copy of the released stub loses to any other definition (a stub pasted twice is not
  an answer);
- when the winner stands in the student's own copy of the solution cell (same ``grade_id``), that
  cell's source is graded as it is; when it stands elsewhere, the solution cell is graded with the
  student's own copy (if it still parses) followed by the winning definition and what it needs from
  its cell: the imports, helper functions, classes and constants it refers to (found by the names
  it reads from the global scope, transitively; a name no cell defines is left to the notebook's
  own setup cells);
- a helper the graded code needs but defines in none of its own statements (a ``_pad`` in a cell
  of its own) is taken from the last cell that defines it, in the same way.

Only definitions and the statements they need are taken from other cells, never other top-level
code: a demo call or a test the student wrote in an extra cell is not run. The code found runs in
the solution cell's place in the same sandbox as any solution cell.

A written answer (a markdown solution cell) without its ``grade_id`` is matched by the question
that precedes it in the released notebook: the first markdown cell after that question, in the
student's notebook, that is not a cell of the released notebook. When the question cannot be
found, the answer is left for a person (a note says which).
"""

import ast
import builtins
import symtable
from dataclasses import dataclass, field

_BUILTINS = set(dir(builtins))
#: what parsing or analysing a student's code may raise: hostile nesting ends in the last two
UNPARSABLE = (SyntaxError, ValueError, MemoryError, RecursionError)


def cell_text(cell):
    source = cell.get("source", "") if isinstance(cell, dict) else ""
    if isinstance(source, list):
        source = "".join(s for s in source if isinstance(s, str))
    return source if isinstance(source, str) else ""


def as_python(text):
    """The cell's text as plain Python (IPython's ``%magic`` and ``!shell`` lines turned into the
    calls the kernel makes); the text itself when it already parses or cannot be transformed."""
    try:
        ast.parse(text)
        return text
    except UNPARSABLE:
        pass
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        return TransformerManager().transform_cell(text)
    except Exception:  # noqa: BLE001 - IPython missing or the cell beyond repair: keep the text
        return text


@dataclass
class CodeCell:
    """One code cell of the student's notebook, parsed once."""

    index: int
    text: str  # as Python
    body: list | None  # top-level statements, None when the cell does not parse
    lines: list = field(default_factory=list)

    @classmethod
    def parse(cls, index, raw_text):
        text = as_python(raw_text)
        try:
            body = ast.parse(text).body
        except UNPARSABLE:
            body = None
        return cls(index, text, body, text.splitlines(keepends=True))

    def segment(self, node):
        """The source lines of a top-level statement, decorators included."""
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        return "".join(self.lines[first - 1:node.end_lineno])


def bound_names(node):
    """Names a top-level statement binds in the global scope."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return {(a.asname or a.name).split(".")[0] for a in node.names if a.name != "*"}
    targets = []
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, (ast.AnnAssign, ast.AugAssign)) and node.value is not None:
        targets = [node.target]
    names = set()
    for target in targets:
        for sub in ast.walk(target):
            if isinstance(sub, ast.Name):
                names.add(sub.id)
    return names


def _table_globals(table):
    """Global names read anywhere inside a symbol table (nested functions, lambdas, comprehensions)."""
    names = set()
    for symbol in table.get_symbols():
        if symbol.is_referenced() and (symbol.is_global() or (table.get_type() == "module" and not symbol.is_assigned()
                                                              and not symbol.is_imported())):
            names.add(symbol.get_name())
    for child in table.get_children():
        names |= _table_globals(child)
    return names


def global_reads(source):
    """Names ``source`` (one top-level statement) reads from the global scope when it runs or its
    functions are called; the names it binds itself are left out."""
    try:
        table = symtable.symtable(source, "<cell>", "exec")
    except UNPARSABLE:
        return set()
    return _table_globals(table)


def is_definition(node, names):
    return isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name in names


def _is_stub(cell, stub_text):
    try:
        return ast.dump(ast.parse(stub_text)) == ast.dump(ast.Module(body=cell.body, type_ignores=[]))
    except UNPARSABLE:
        return False


def _normal(node):
    try:
        return ast.dump(node, annotate_fields=False, include_attributes=False)
    except UNPARSABLE:
        return f"<unreadable {id(node)}>"  # equal to nothing else


#: how a found line says the code stands in its own cell, which only lost its metadata (the
#: report gathers such lines into one per notebook)
METADATA_LOST = "its own cell, which has lost its nbgrader metadata (saved by another editor?)"


def metadata_lost_line(name, index):
    """The found line of ``name`` standing in cell ``index`` (0-based), its own, without metadata."""
    return f"{name} found in cell {index + 1}, {METADATA_LOST}: graded"


def only_metadata_lost(line):
    """The name in a found line made by ``metadata_lost_line``, else None."""
    name, _, rest = line.partition(" found in cell ")
    return name if rest.endswith(f", {METADATA_LOST}: graded") else None


@dataclass
class Answer:
    """What answers one code solution cell: the source to grade and how it was found."""

    source: str | None  # None: nothing found, the released stub is graded
    found: list = field(default_factory=list)  # lines for the student and the summary (not flags)
    notes: list = field(default_factory=list)  # lines for a person to review (flags)


class StudentCode:
    """The code cells of a student's notebook, and where each top-level name is last defined."""

    def __init__(self, cells, provided, running=()):
        """``cells``: the student's notebook cells; ``provided``: names the rebuilt notebook defines
        itself (setup cells, the graded definitions), never looked up in the student's cells;
        ``running``: indices of the student's cells that run in the rebuilt notebook anyway (their
        own solution cells): what they bind is there already, and running a statement of theirs
        twice (``STASH = []``) would change it."""
        self.cells = [CodeCell.parse(i, cell_text(c)) for i, c in enumerate(cells)
                      if isinstance(c, dict) and c.get("cell_type") == "code"]
        self.by_index = {c.index: c for c in self.cells}
        self.provided = set(provided)
        self.running = set(running)
        for index in self.running:
            cell = self.by_index.get(index)
            if cell is not None and cell.body is not None:
                for node in cell.body:
                    self.provided |= bound_names(node)

    def definitions(self, name):
        """[(cell, node)] of the top-level definitions of ``name``, in notebook order (the last one
        per cell: the one the kernel keeps)."""
        out = []
        for cell in self.cells:
            if cell.body is None:
                continue
            last = None
            for node in cell.body:
                if is_definition(node, {name}):
                    last = node
            if last is not None:
                out.append((cell, last))
        return out

    def last_binding(self, name, exclude=()):
        """(cell, node) of the last top-level statement that binds ``name`` (a definition, an
        import or an assignment), skipping cells in ``exclude``; None when no cell binds it."""
        for cell in reversed(self.cells):
            if cell.body is None or cell.index in exclude:
                continue
            for node in reversed(cell.body):
                if name in bound_names(node):
                    return cell, node
        return None

    def needed(self, cell, node, already):
        """The statements a definition needs, in (cell index, line) order: those of its own cell that
        bind the global names it reads, transitively, and for names its cell does not bind, the last
        statement of another cell that does. ``already``: names the graded source binds itself."""
        chosen = {}  # (cell index, lineno) -> (cell, node)
        bound = set(already) | self.provided | _BUILTINS
        todo = [(cell, node)]
        while todo:
            here, stmt = todo.pop()
            for name in sorted(global_reads(here.segment(stmt))):
                if name in bound:
                    continue
                bound.add(name)
                found = None
                if here.body is not None:
                    for other in reversed(here.body):
                        if name in bound_names(other):
                            found = (here, other)
                            break
                if found is None:
                    found = self.last_binding(name)
                if found is None:
                    continue  # the notebook's own cells or the builtins provide it, or nothing does
                key = (found[0].index, found[1].lineno)
                if key not in chosen:
                    chosen[key] = found
                    todo.append(found)
        return [chosen[k] for k in sorted(chosen)]


def answer_code_cell(code, grade_id, names, own_indices, stub_text, released_index=None):
    """Find the source to grade for the code solution cell ``grade_id`` whose released stub
    (``stub_text``) defines ``names``; ``own_indices``: the student's cells that carry this
    ``grade_id`` (in order); ``released_index``: where the cell is in the released notebook, given
    when the submission's cells carry no grade_id at all (the metadata is gone, not the cell).
    Returns an ``Answer``."""
    try:
        stub_defs = {n.name: _normal(n) for n in ast.parse(stub_text).body if is_definition(n, names)}
    except UNPARSABLE:
        stub_defs = {}
    winners = {}
    for name in names:
        candidates = code.definitions(name)
        real = [(c, n) for c, n in candidates if _normal(n) != stub_defs.get(name)]
        pool = real or candidates
        if pool:
            winners[name] = pool[-1]
    own = [code.by_index[i] for i in own_indices if i in code.by_index]
    answer = Answer(None)
    if len(own_indices) > 1:
        held = sorted({cell.index for cell, _ in winners.values() if cell.index in own_indices})
        which = f"cell {held[-1] + 1}, the last definition," if held else "no copy"
        answer.found.append(f"the cell '{grade_id}' appears {len(own_indices)} times (cells "
                            f"{', '.join(str(i + 1) for i in own_indices)}); {which} was graded")
    # the student's own copy that holds a winner (the last such), else their first copy
    holders = [c for c in own if any(w[0] is c for w in winners.values())]
    base = holders[-1] if holders else (own[0] if own else None)
    if base is not None and base.body is None and winners and not holders:
        base = None  # a copy that does not even parse would hide the definitions found elsewhere
    own_names = set(names)
    if base is not None and base.body is not None:
        for node in base.body:
            own_names |= bound_names(node)
    # the student's own copy first, then what was found elsewhere: functions read their globals
    # when called, so code placed after them still serves them, and a statement found elsewhere
    # that fails cannot stop the student's own definitions from running
    parts = [base.text] if base is not None else []
    if base is not None and not holders and base.body is not None and _is_stub(base, stub_text):
        parts = []  # the released stub left in place adds nothing to the code found elsewhere
    taken = set()

    def take(statements, skip=None):
        pieces = []
        for where, stmt in statements:
            key = (where.index, stmt.lineno)
            if where is skip or key in taken:
                continue
            taken.add(key)
            pieces.append(where.segment(stmt).rstrip("\n") + "\n")
        return pieces

    moved = sorted(((cell.index, name, cell, node) for name, (cell, node) in winners.items()
                    if base is None or cell is not base), key=lambda item: item[:2])
    for _, name, cell, node in moved:
        pieces = take(code.needed(cell, node, own_names) + [(cell, node)])
        parts.append(f"# {name}: found in cell {cell.index + 1} of the submission\n" + "\n".join(pieces))
        if cell.index == released_index:
            # an editor dropped the metadata; the code still stands where it was released
            answer.found.append(metadata_lost_line(name, cell.index))
        else:
            answer.found.append(f"{name} found in cell {cell.index + 1}, not in its own cell: graded")
    if base is not None and base.body is not None:
        # helpers the student's own copy reads but defines in other cells (a `_pad` cell of its own)
        needs = []
        for node in base.body:
            needs += [(w, s) for w, s in code.needed(base, node, own_names) if w is not base]
        pieces = take(sorted(needs, key=lambda ws: (ws[0].index, ws[1].lineno)), skip=base)
        if pieces:
            where = sorted({w.index + 1 for w, _ in needs})
            parts.append("# what the code above uses from other cells of the submission\n" + "\n".join(pieces))
            answer.found.append(f"the cell '{grade_id}' uses definitions of cell{'s' if len(where) > 1 else ''} "
                                f"{', '.join(map(str, where))}: graded with them")
    if base is not None and parts == [base.text]:
        answer.source = base.text  # exactly the student's cell, as before
    elif parts:
        answer.source = "\n\n".join(p.rstrip("\n") for p in parts) + "\n"
    return answer


def _normal_text(text):
    return " ".join(text.split())


def match_answer(template_cells, index, student_cells):
    """Index in ``student_cells`` of the written answer to the template's markdown solution cell at
    ``index``, matched by the question before it; None when it cannot be matched."""
    question = None
    for cell in reversed(template_cells[:index]):
        if cell.get("cell_type") == "markdown" and cell_text(cell).strip():
            question = _normal_text(cell_text(cell))
            break
    if question is None:
        return None
    template_texts = {_normal_text(cell_text(c)) for c in template_cells} - {_normal_text(cell_text(template_cells[index]))}
    for i, cell in enumerate(student_cells):
        if cell.get("cell_type") == "markdown" and _normal_text(cell_text(cell)) == question:
            for j in range(i + 1, len(student_cells)):
                after = student_cells[j]
                if after.get("cell_type") != "markdown":
                    continue
                if _normal_text(cell_text(after)) in template_texts:
                    return None  # the next markdown cell is the released notebook's own: no answer here
                return j
            return None
    return None
