"""Notebooks over the size cap are read without their outputs; really oversized ones are refused
with their size named, unread. The oracle for the streamed stripping is ``json``: parse, drop the
outputs, compare."""

import io
import json
import os
import tracemalloc
import zipfile

import nbformat
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autograder import batch, rebuild
from autograder.notebook_bytes import NotJson, TooLarge, strip_outputs
from autograder.results import TaskResult


def _without_outputs(doc):
    doc = json.loads(json.dumps(doc))
    for cell in doc.get("cells", []):
        if isinstance(cell, dict) and "outputs" in cell:
            cell["outputs"] = []
    return doc


tricky_text = st.text(alphabet=st.sampled_from(list('ab"\\[]{},: \n\té€😀\x00')), max_size=40)
output = st.fixed_dictionaries({"output_type": st.just("stream"), "name": st.just("stdout"),
                                "text": st.one_of(tricky_text, st.lists(tricky_text, max_size=4))})
cell = st.fixed_dictionaries({
    "cell_type": st.sampled_from(["code", "markdown"]),
    "source": tricky_text,
    "metadata": st.dictionaries(st.sampled_from(["outputs", "tags", "x"]), st.one_of(tricky_text, st.integers())),
    "outputs": st.lists(output, max_size=3),
    "execution_count": st.one_of(st.none(), st.integers(0, 10**6), st.floats(allow_nan=False, allow_infinity=False)),
})
notebook = st.fixed_dictionaries({"nbformat": st.just(4), "nbformat_minor": st.integers(0, 5),
                                  "metadata": st.dictionaries(st.sampled_from(["kernelspec", "colab"]), tricky_text),
                                  "cells": st.lists(cell, max_size=4)})


@settings(max_examples=150, deadline=None)
@given(doc=notebook, chunk=st.integers(1, 64), indent=st.sampled_from([None, 1]), ascii_only=st.booleans())
def test_stripping_equals_dropping_the_outputs_after_parsing(doc, chunk, indent, ascii_only):
    data = json.dumps(doc, indent=indent, ensure_ascii=ascii_only).encode()
    stripped = strip_outputs(io.BytesIO(data), limit=len(data) + 10, chunk=chunk)
    # the cells' metadata may hold a key "outputs" too; dropping it is harmless, and nothing else changes
    expected = _without_outputs(doc)
    found = json.loads(stripped)
    for a, b in zip(found["cells"], expected["cells"]):
        a["metadata"].pop("outputs", None), b["metadata"].pop("outputs", None)
    assert found == expected


@pytest.mark.parametrize("data", [b'{"cells": [{"outputs": ["abc', b'{"cells": [', b'{"cells": [{"outputs": [1, 2]}]',
                                  b'', b'   '])
def test_cut_off_files_are_not_json(data):
    with pytest.raises(NotJson):
        strip_outputs(io.BytesIO(data), limit=100, chunk=3)


def test_sources_over_the_limit_stop_the_reading_early():
    doc = {"cells": [{"cell_type": "code", "source": "x" * 5000, "outputs": []}]}
    with pytest.raises(TooLarge):
        strip_outputs(io.BytesIO(json.dumps(doc).encode()), limit=1000, chunk=64)


def _notebook_with_output(megabytes, lines=True):
    nb = nbformat.v4.new_notebook()
    code = nbformat.v4.new_code_cell("def f():\n    return 1\n")
    text = ("epoch 1: loss 2.3025850929940455\n" * (megabytes * 2**20 // 32)) if lines else "y" * (megabytes * 2**20)
    code.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)]
    nb.cells = [nbformat.v4.new_markdown_cell("# title"), code]
    return nb


def test_a_notebook_with_30_mb_of_printed_output_is_read_without_it():
    data = nbformat.writes(_notebook_with_output(30)).encode()
    assert len(data) > rebuild.MAX_NOTEBOOK_BYTES
    nb = rebuild.read_submitted(data)
    assert [c.source for c in nb.cells] == ["# title", "def f():\n    return 1\n"]
    assert nb.cells[1].outputs == []


def _collect(tmp_path, files, zipped=False):
    course_root = tmp_path / "course"
    (course_root / "solutions" / "conv").mkdir(parents=True)
    (course_root / "assignments" / "conv").mkdir(parents=True)
    subs = tmp_path / "submissions"
    if zipped:
        subs.mkdir()
        with zipfile.ZipFile(subs / "kim.zip", "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for rel, writer in files.items():
                with zf.open(rel, "w", force_zip64=True) as member:
                    writer(member)
    else:
        for rel, writer in files.items():
            path = subs / "kim" / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "wb") as handle:
                writer(handle)
    return batch.collect_submissions(subs, course_root, ["conv"])


def _writer(nb):
    return lambda handle: handle.write(nbformat.writes(nb).encode())


def _streamed(megabytes):
    """A writer of a notebook whose one output holds ``megabytes`` MB, written piece by piece."""
    head = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# title"), nbformat.v4.new_code_cell("x = 1\n")])
    text = nbformat.writes(head)
    before, after = text.split('"outputs": []', 1)

    def write(handle):
        handle.write(before.encode() + b'"outputs": [{"output_type": "stream", "name": "stdout", "text": ["')
        line = b"iteration 100: loss 2.3025850929940455\\n\", \""
        block = line * (2**20 // len(line))
        for _ in range(megabytes):
            handle.write(block)
        handle.write(b'end"]}]' + after.encode())

    return write


def test_the_memory_used_does_not_grow_with_the_outputs():
    peaks = []
    for megabytes in (8, 32):
        buffer = io.BytesIO()
        _streamed(megabytes)(buffer)
        stream = io.BytesIO(buffer.getvalue())
        del buffer
        tracemalloc.start()
        try:
            strip_outputs(stream, rebuild.MAX_NOTEBOOK_BYTES)
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
    # a read chunk and the pattern matcher's work space, the same for 8 MB and for 32 MB
    assert abs(peaks[1] - peaks[0]) < 2**20 and peaks[1] < 32 * 2**20


@pytest.mark.parametrize("megabytes, zipped", [(300, False), (30, True)], ids=["300 MB in a folder", "30 MB in a zip"])
def test_outputs_are_dropped_while_reading(tmp_path, megabytes, zipped):
    collection = _collect(tmp_path, {"conv/conv.ipynb": _streamed(megabytes)}, zipped)
    (sub,) = collection.submissions
    assert sub.notes == []
    kept = rebuild.read_submitted(sub.files["conv.ipynb"])
    assert [c.source for c in kept.cells] == ["# title", "x = 1\n"] and kept.cells[1].outputs == []


def test_a_2_gb_file_is_refused_by_its_size_without_being_read(tmp_path):
    def sparse(handle):
        handle.truncate(2 * 2**30)  # 2 GB that take no disk space

    tracemalloc.start()
    try:
        collection = _collect(tmp_path, {"conv/conv.ipynb": sparse})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50 * 2**20
    (sub,) = collection.submissions
    assert sub.files == {}
    assert sub.notes == ["conv/conv.ipynb: skipped, the notebook file is 2048.0 MB: over the 1024 MB a notebook "
                         "may have with its outputs, so it was not read (clear the outputs and submit again)"]
    assert os.path.getsize(tmp_path / "submissions" / "kim" / "conv" / "conv.ipynb") == 2 * 2**30


def test_a_notebook_over_every_cap_says_its_size_never_that_the_submission_is_empty(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1\n" + "#" * (25 * 2**20))]  # 25 MB of source, no outputs
    collection = _collect(tmp_path, {"conv/conv.ipynb": _writer(nb)})
    (sub,) = collection.submissions
    assert sub.files == {}
    assert sub.notes == ["conv/conv.ipynb: skipped, the notebook is 25.0 MB and over 20 MB even without its "
                         "outputs: at most 20 MB of cells are read"]
    failed = TaskResult("kim", "conv", "failed", error="nothing to grade: the submission is empty")
    assert batch.explain_nothing_to_grade(failed, sub.notes).error == "nothing to grade: " + sub.notes[0]
