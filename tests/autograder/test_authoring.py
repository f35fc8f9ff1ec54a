"""Authoring: each source notebook and its jupytext script hold the same cells, and its points add up."""

from pathlib import Path

import nbformat
import pytest

from autograder import authoring, course

REPO = Path(__file__).resolve().parents[2]
ASSIGNMENTS = ("convolution", "im2col", "pooling", "batchnorm", "convnet")


def _stored(assignment):
    return REPO / "solutions" / assignment / f"{assignment}.ipynb"


def _cells(nb):
    return [(c.cell_type, c.source, dict(c.metadata)) for c in nb.cells]


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_script_parses_to_exactly_the_stored_notebooks_cells(assignment):
    path = _stored(assignment)
    stored = nbformat.read(path, as_version=4)
    script = authoring.read_script(authoring.script_path(path))
    assert _cells(script) == _cells(stored), (
        f"solutions/{assignment}: the .py and the .ipynb differ: run `make notebooks` (cs231n-grade sync)")
    # and the notebook is stored in its canonical form: outputs cleared, the script's ids kept
    assert authoring.notebook_text(authoring.notebook_from_script(script, stored)) == path.read_text(encoding="utf-8")
    assert authoring.script_text(stored) == authoring.script_path(path).read_text(encoding="utf-8")
