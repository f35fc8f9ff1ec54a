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

Where the released notebook's cells stand in the student's is one alignment (``Alignment``): the
cells the student is not asked to change (markdown, setup and test cells) are matched by their
text, in order, so that a cell the student added or deleted elsewhere shifts nothing. It places:

- a written answer (a markdown solution cell) without its ``grade_id``, by the question that
  precedes it in the released notebook: the first markdown cell after that question, in the
  student's notebook, that is not a cell of the released notebook. When the question cannot be
  found, the answer is left for a person (a note says which);
- code found in a notebook whose cells carry no ``grade_id`` at all (VS Code, Colab): when the cell
  stands in the released solution cell's place, the line says it is its own cell, which only lost
  its metadata.
"""

import ast
import bisect
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


def answer_code_cell(code, grade_id, names, own_indices, stub_text, in_released_place=None):
    """Find the source to grade for the code solution cell ``grade_id`` whose released stub
    (``stub_text``) defines ``names``; ``own_indices``: the student's cells that carry this
    ``grade_id`` (in order); ``in_released_place``: given when the submission's cells carry no
    grade_id at all (the metadata is gone, not the cell), a function of a student cell's index,
    True when that cell stands in the released solution cell's place (``Alignment.holds``).
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
        if in_released_place is not None and in_released_place(cell.index):
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


def _anchor_key(cell):
    """What a cell is recognised by: its type and its text, white space aside; None when empty."""
    text = _normal_text(cell_text(cell)) if isinstance(cell, dict) else ""
    return (cell.get("cell_type"), text) if text else None


def _once(keys, lo, hi):
    """{key: index} of the keys found exactly once in ``keys[lo:hi]`` (None aside)."""
    seen = {}
    for i in range(lo, hi):
        if keys[i] is not None:
            seen[keys[i]] = None if keys[i] in seen else i
    return {key: i for key, i in seen.items() if i is not None}


def _increasing(pairs):
    """The longest sub-list of ``pairs`` (sorted by their first item) whose second items increase."""
    tails, ends, back = [], [], [None] * len(pairs)  # ends[k]: the smallest last item of a run of k + 1
    for k, (_, second) in enumerate(pairs):
        at = bisect.bisect_left(ends, second)
        back[k] = tails[at - 1] if at else None
        if at == len(ends):
            tails.append(k)
            ends.append(second)
        else:
            tails[at], ends[at] = k, second
    out, k = [], tails[-1] if tails else None
    while k is not None:
        out.append(pairs[k])
        k = back[k]
    return out[::-1]


def _align(t_keys, s_keys):
    """[(template index, student index)] of cells with equal keys, in the same order in both
    notebooks: first the keys found once in each, the longest run of them in the same order; then
    the same again between each two cells matched (a patience diff). A key still repeated there
    matches nothing."""
    pairs, todo = [], [(-1, len(t_keys), -1, len(s_keys))]
    while todo:
        t_lo, t_hi, s_lo, s_hi = todo.pop()
        t_once, s_once = _once(t_keys, t_lo + 1, t_hi), _once(s_keys, s_lo + 1, s_hi)
        found = _increasing(sorted((t, s_once[key]) for key, t in t_once.items() if key in s_once))
        if not found:
            continue
        pairs += found
        bounds = [(t_lo, s_lo)] + found + [(t_hi, s_hi)]
        todo += [(a[0], b[0], a[1], b[1]) for a, b in zip(bounds, bounds[1:]) if b[0] - a[0] > 1 and b[1] - a[1] > 1]
    return sorted(pairs)


class Alignment:
    """Where the released notebook's cells stand in a student's notebook, by their content.

    The released cells the student is not asked to change (all but ``movable``, the solution cells:
    markdown, setup and test cells) are the *anchors*: each is matched to a student cell of the same
    type and text (white space aside), keeping the order of both notebooks (``_align``). An anchor
    the student edited or deleted, or whose text stays ambiguous (repeated in the same stretch of
    both notebooks), matches nothing: it only widens the stretch between the anchors around it.
    A released cell's *place* in the student's notebook is the stretch between the images of the
    nearest matched anchors before and after it, so cells added or deleted elsewhere do not move it.
    """

    def __init__(self, template_cells, student_cells, movable=()):
        self.template_cells, self.student_cells = list(template_cells), list(student_cells)
        movable = set(movable)
        t_keys = [None if i in movable else _anchor_key(c) for i, c in enumerate(self.template_cells)]
        s_keys = [_anchor_key(c) for c in self.student_cells]
        self.pairs = _align(t_keys, s_keys)
        self.image = dict(self.pairs)  # {template index: student index} of the matched anchors
        self._matched = [t for t, _ in self.pairs]
        # an anchor moved out of order has no image, but its text may still be found once on each side
        t_once, s_once = _once(t_keys, 0, len(t_keys)), _once(s_keys, 0, len(s_keys))
        self.moved = {t: s_once[key] for key, t in t_once.items() if key in s_once and t not in self.image}

    def find(self, index):
        """The student's cell that is the released anchor ``index``: its matched cell, else the one
        cell with its text (moved out of order); None when there is none."""
        return self.image.get(index, self.moved.get(index))

    def holds(self, index, student_index):
        """True when the student's cell ``student_index`` stands in the place of the released cell
        ``index``: it has the same type and stands between the images of the matched anchors around
        it, where the released notebook has no other cell of that type, or as many as the
        student's, in the same position. Cells of that type that differ in number there (an edited
        test cell and an added cell) say no: which one is the released cell cannot be told."""
        if index in self.image:
            return self.image[index] == student_index
        kind = self.template_cells[index].get("cell_type")
        if not 0 <= student_index < len(self.student_cells) or self.student_cells[student_index].get("cell_type") != kind:
            return False
        at = bisect.bisect_left(self._matched, index)
        t_lo, s_lo = self.pairs[at - 1] if at else (-1, -1)
        t_hi, s_hi = self.pairs[at] if at < len(self.pairs) else (len(self.template_cells), len(self.student_cells))
        if not s_lo < student_index < s_hi:
            return False
        released = [t for t in range(t_lo + 1, t_hi) if self.template_cells[t].get("cell_type") == kind]
        if released == [index]:
            return True
        theirs = [s for s in range(s_lo + 1, s_hi) if self.student_cells[s].get("cell_type") == kind]
        return len(released) == len(theirs) and released.index(index) == theirs.index(student_index)


def match_answer(alignment, index):
    """Index in the student's cells of the written answer to the released markdown solution cell at
    ``index``, matched by the question before it (found by ``alignment``); None when it cannot be
    matched."""
    template_cells, student_cells = alignment.template_cells, alignment.student_cells
    question = next((q for q in range(index - 1, -1, -1) if template_cells[q].get("cell_type") == "markdown"
                     and cell_text(template_cells[q]).strip()), None)
    start = alignment.find(question) if question is not None else None
    if start is None:
        return None
    template_texts = {_normal_text(cell_text(c)) for c in template_cells} - {_normal_text(cell_text(template_cells[index]))}
    for j in range(start + 1, len(student_cells)):
        after = student_cells[j]
        if after.get("cell_type") != "markdown":
            continue
        if _normal_text(cell_text(after)) in template_texts:
            return None  # the next markdown cell is the released notebook's own: no answer here
        return j
    return None
