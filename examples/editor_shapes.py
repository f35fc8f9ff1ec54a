"""What editors and everyday accidents do to a notebook, reproduced on a released one.

Used by ``build_class.py`` (the sample class's moved-cell, VS Code and Colab students) and by the
tests of the grader's matching (``tests/autograder/test_matching.py``). Each function takes an
nbformat notebook and returns a changed copy (``colab_text`` returns the file's text), so that a
test can apply several in turn.

- ``vscode``: every cell's metadata gone, as when an editor that ignores cell metadata saves it;
- ``colab_text``: a Colab save: nbformat 4.0 without cell ids, ``metadata.colab``, Colab's own cell
  metadata in place of nbgrader's, outputs with Colab's fields;
- ``drop_grade_ids``: the solution cells' ``grade_id`` set to null (metadata half lost);
- ``recreate_at_end``: a solution cell deleted by accident and its code written again at the end;
- ``redefine_below``: the stub left in its cell and the function written in a new cell below;
- ``split``: a solution cell's helpers moved to a cell of their own just above it;
- ``merge``: two solution cells merged into the first;
- ``move_to_end``: solution cells dragged below everything else;
- ``duplicate``: a solution cell copied (same ``grade_id``) below its test, the copy edited;
- ``with_printed_output``: megabytes of printed output in one cell.
"""

import copy
import hashlib
import json

import nbformat


def _gid(cell):
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def _index(nb, grade_id):
    return next(i for i, c in enumerate(nb.cells) if _gid(c) == grade_id)


def _plain_cell(source):
    """A code cell as a student adds it: no nbgrader metadata; a fixed id so rebuilding changes no byte."""
    cell = nbformat.v4.new_code_cell(source)
    cell.id = "added-" + hashlib.sha256(source.encode()).hexdigest()[:12]
    return cell


def vscode(nb):
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        cell.metadata = {}
    nb.metadata = {key: nb.metadata[key] for key in ("kernelspec", "language_info") if key in nb.metadata}
    return nb


def colab_text(nb, name):
    """The text of ``nb`` as Colab saves it (as a file named ``name``)."""
    cells = []
    for number, cell in enumerate(nb.cells):
        cell_id = hashlib.sha256(f"{name}:{number}".encode()).hexdigest()[:12]
        out = {"cell_type": cell.cell_type, "metadata": {"id": cell_id}, "source": cell.source}
        if cell.cell_type == "code":
            out["metadata"]["colab"] = {"base_uri": "https://localhost:8080/"}
            out["metadata"]["outputId"] = cell_id[::-1]
            out["execution_count"] = number + 1
            out["outputs"] = [{"output_type": "stream", "name": "stdout", "text": [f"ran cell {number + 1}\n"]}]
            if number % 3 == 0:
                out["outputs"].append({"output_type": "execute_result", "execution_count": number + 1,
                                       "metadata": {}, "data": {"text/plain": [f"{number}"]}})
        cells.append(out)
    doc = {"nbformat": 4, "nbformat_minor": 0,
           "metadata": {"colab": {"provenance": [], "name": name, "collapsed_sections": []},
                        "kernelspec": {"name": "python3", "display_name": "Python 3"},
                        "language_info": {"name": "python"}, "accelerator": "None"},
           "cells": cells}
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def drop_grade_ids(nb):
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader")
        if meta and meta.get("solution"):
            meta["grade_id"] = None
    return nb


def recreate_at_end(nb, grade_id):
    nb = copy.deepcopy(nb)
    cell = nb.cells.pop(_index(nb, grade_id))
    nb.cells.append(_plain_cell(cell.source))
    return nb


def redefine_below(nb, grade_id, stub_source):
    """The cell ``grade_id`` gets back ``stub_source`` (the released stub); its code moves to a new cell below."""
    nb = copy.deepcopy(nb)
    at = _index(nb, grade_id)
    code = nb.cells[at].source
    nb.cells[at].source = stub_source
    nb.cells.insert(at + 1, _plain_cell(code))
    return nb


def split(nb, grade_id, helpers, function):
    """The cell ``grade_id`` keeps ``function``; ``helpers`` go to a new cell just above it."""
    nb = copy.deepcopy(nb)
    at = _index(nb, grade_id)
    nb.cells[at].source = function
    nb.cells.insert(at, _plain_cell(helpers))
    return nb


def merge(nb, first, second):
    nb = copy.deepcopy(nb)
    a, b = _index(nb, first), _index(nb, second)
    nb.cells[a].source = nb.cells[a].source.rstrip("\n") + "\n\n\n" + nb.cells[b].source
    del nb.cells[b]
    return nb


def move_to_end(nb, grade_ids):
    nb = copy.deepcopy(nb)
    moved = [nb.cells[_index(nb, g)] for g in grade_ids]
    nb.cells = [c for c in nb.cells if all(c is not m for m in moved)] + moved
    return nb


def duplicate(nb, grade_id, copy_source, after):
    """A copy of the cell ``grade_id`` (metadata and all) with ``copy_source``, placed after cell ``after``."""
    nb = copy.deepcopy(nb)
    twin = copy.deepcopy(nb.cells[_index(nb, grade_id)])
    twin.source = copy_source
    twin.id = "copy-" + twin.get("id", "cell")[:20]
    nb.cells.insert(_index(nb, after) + 1, twin)
    return nb


def with_printed_output(nb, grade_id, megabytes):
    """``megabytes`` MB of printed training log in the outputs of the cell ``grade_id``."""
    nb = copy.deepcopy(nb)
    line = "epoch 1, iteration 1000: loss 2.302585, train accuracy 0.1000\n"
    count = megabytes * 2**20 // len(line)
    nb.cells[_index(nb, grade_id)].outputs = [nbformat.v4.new_output("stream", name="stdout", text=line * count)]
    return nb
