"""Authoring: each source notebook and its jupytext script hold the same cells, and its points add up."""

import os
from pathlib import Path

import nbformat
import pytest

import toycourse
from autograder import authoring, course
from autograder.assignment_digest import source_digest
from autograder.gradebook import prepare_grading_course
from autograder.testspec import parse_test_cell
from cs231n_checks.validate import is_optional

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


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_stated_total_and_test_cell_comments_match_the_points(assignment):
    nb = nbformat.read(_stored(assignment), as_version=4)
    graded = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
    required = [c.metadata["nbgrader"]["points"] for c in graded if not is_optional(c)]
    optional = [c.metadata["nbgrader"]["points"] for c in graded if is_optional(c)]
    assert authoring.stated_total(nb) == sum(required) > 0
    # optional parts (extra credit) are stated apart from the total
    assert (authoring.stated_extra_credit(nb) or 0) == sum(optional)
    assert authoring.point_problems(nb) == []


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_written_answers_are_graded_by_a_person_and_their_rubric_stays_with_the_instructor(assignment):
    """At least two written answers per notebook (issue 13): markdown cells graded by hand, each
    after its question, with a rubric in the source that the release replaces by nbgrader's stub."""
    def answers(nb):
        return {c.metadata["nbgrader"]["grade_id"]: (i, c) for i, c in enumerate(nb.cells)
                if c.cell_type == "markdown" and c.metadata.get("nbgrader", {}).get("grade")}

    source = nbformat.read(_stored(assignment), as_version=4)
    released = nbformat.read(REPO / "assignments" / assignment / f"{assignment}.ipynb", as_version=4)
    mine, theirs = answers(source), answers(released)
    assert len(mine) >= 2 and set(mine) == set(theirs)
    text = (REPO / "assignments" / assignment / f"{assignment}.ipynb").read_text(encoding="utf-8")
    for grade_id, (i, cell) in mine.items():
        meta = cell.metadata["nbgrader"]
        assert grade_id.startswith("q_") and meta["solution"] and not meta["locked"] and 1 <= meta["points"] <= 2
        assert "written answer" in source.cells[i - 1].source.lower()  # the question, right above
        assert cell.source.startswith("### BEGIN SOLUTION\nRubric") and cell.source.endswith("### END SOLUTION")
        assert theirs[grade_id][1].source.strip() == "YOUR ANSWER HERE"
        rubric = cell.source.splitlines()[2:-1]
        assert not [line for line in rubric if len(line) > 30 and line in text], grade_id


def test_point_problems_name_each_disagreement():
    """One more point and one more case in a test cell, the text and the comment left as they were:
    each disagreement is named (the numbers are read from today's notebook, so that an exercise
    changed as docs/grading.md shows keeps this test meaningful)."""
    nb = nbformat.read(_stored("convolution"), as_version=4)
    assert authoring.point_problems(nb) == []
    stated = authoring.stated_total(nb)
    test = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_conv_forward_naive")
    points = test.metadata["nbgrader"]["points"]
    visible = sum(len(call.cases) for call in parse_test_cell(test.source) if not call.hidden)
    test.metadata["nbgrader"]["points"] = points + 1
    new_case = '    {"x": (1, 1, 4, 4), "w": (1, 1, 3, 3), "stride": 1, "pad": 0, "seed": 3},\n'
    test.source = test.source.replace("cases=[\n", "cases=[\n" + new_case, 1)
    functions = sum(c.metadata["nbgrader"]["points"] for c in nb.cells if c.cell_type == "code"
                    and c.metadata.get("nbgrader", {}).get("grade") and not is_optional(c)) - 1
    problems = authoring.point_problems(nb)
    assert problems == [
        f"the text states {stated} points in total; the test cells and written answers give {stated + 1} "
        "(optional parts left out)",
        f"the text states {functions} points for the functions; the test cells give {functions + 1} "
        "(optional parts left out)",
        f"the points table gives conv_forward_naive {points} points; its test cell gives {points + 1}",
        f"test cell test_conv_forward_naive: its comment states {points} points, its metadata gives {points + 1}",
        f"test cell test_conv_forward_naive: its comment states {visible} visible cases, its check calls hold "
        f"{visible + 1}",
    ]


def test_optional_points_must_be_stated_as_extra_credit():
    """An optional part is outside the stated total: its points are stated apart, and a change to
    them without the text is named."""
    nb = nbformat.read(_stored("convnet"), as_version=4)
    assert authoring.stated_total(nb) == 32 and authoring.stated_extra_credit(nb) == 2
    test = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_residual_block_forward")
    test.metadata["nbgrader"]["points"] = 2
    test.source = test.source.replace("1 point,", "2 points,", 1)
    assert authoring.point_problems(nb) == ["the text states 2 points of extra credit; the optional parts give 3",
                                            "the points table gives residual_block_forward 1 points; its test "
                                            "cell gives 2"]
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = cell.source.replace("points of extra credit", "bonus points")
    assert authoring.point_problems(nb)[0] == (
        "the optional parts' points are not stated (e.g. '**3 points of extra credit**')")


# ------------------------------------------------------------------------------------------
# Syncing a course (a temporary copy of the toy course)


@pytest.fixture
def repo(tmp_path):
    root = toycourse.course_copy(tmp_path / "repo")
    results = authoring.sync(root)
    assert [r.action for r in results] == ["created script"]
    return root


def _paths(root):
    nb = root / "solutions" / "toy" / "toy.ipynb"
    return nb, nb.with_suffix(".py")


def _touch_later(path, than):
    """Make ``path`` newer than ``than`` (mtimes may tie on a fast filesystem)."""
    t = than.stat().st_mtime_ns + 2_000_000_000
    os.utime(path, ns=(t, t))


def test_a_changed_script_is_synced_into_the_notebook_and_released(repo):
    nb_path, py_path = _paths(repo)
    ids = [c.id for c in nbformat.read(nb_path, as_version=4).cells]
    text = py_path.read_text()
    assert '# %% nbgrader={"grade": true, "grade_id": "test_conv_output_size", "locked": true, "points": 2,' in text
    text = text.replace('"grade_id": "test_conv_output_size", "locked": true, "points": 2',
                        '"grade_id": "test_conv_output_size", "locked": true, "points": 7')
    text = text.replace('cases=[{"W": 10, "F": 3, "S": 1, "P": 0}]',
                        'cases=[{"W": 10, "F": 3, "S": 1, "P": 0}, {"W": 9, "F": 3, "S": 3, "P": 0}]')
    text = text.replace("# %% [markdown]\n# # Toy assignment",
                        "# %% [markdown]\n# A new first cell\n\n# %% [markdown]\n# # Toy assignment")
    py_path.write_text(text)

    (result,) = authoring.sync(repo)
    assert (result.action, result.written) == ("script -> notebook", [nb_path])
    nb = nbformat.read(nb_path, as_version=4)
    assert nb.cells[0].source == "A new first cell" and nb.cells[0].id == "md-00"
    assert [c.id for c in nb.cells[1:]] == ids  # every other cell keeps its id
    test = nb.cells[4]
    assert test.metadata["nbgrader"]["points"] == 7 and '"W": 9' in test.source
    assert authoring.read_script(py_path).cells[4].source == test.source

    course.release(repo, quiet=True)
    released = nbformat.read(repo / "assignments" / "toy" / "toy.ipynb", as_version=4)
    assert released.cells[4].metadata["nbgrader"]["points"] == 7
    assert '"W": 9' in released.cells[4].source
    assert sorted(p.name for p in (repo / "assignments" / "toy").iterdir()) == ["toy.ipynb"]  # no script released
    assert authoring.sync(repo)[0].action == "in sync"


def test_a_notebook_saved_by_jupyterlab_is_synced_into_the_script_and_stored_clean(repo):
    nb_path, py_path = _paths(repo)
    nb = nbformat.read(nb_path, as_version=4)
    nb.cells[2].source = nb.cells[2].source.replace("// S + 1", "// S + 1  # floor division")
    # what a JupyterLab session leaves in the file: outputs, counts, run-time metadata
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", text="hello\n")]
    nb.cells[1].execution_count = 3
    nb.cells[1].metadata["execution"] = {"iopub.status.idle": "2026-12-03T10:00:00Z"}
    nb.metadata["language_info"] = {"name": "python", "version": "3.11.9", "mimetype": "text/x-python"}
    nb.metadata["jupytext"] = {"notebook_metadata_filter": "-all"}
    nbformat.write(nb, nb_path)

    (result,) = authoring.sync(repo)
    assert result.action == "notebook -> script" and set(result.written) == {nb_path, py_path}
    assert "# floor division" in py_path.read_text()
    stored = nbformat.read(nb_path, as_version=4)
    assert stored.cells[1].outputs == [] and stored.cells[1].execution_count is None
    assert "execution" not in stored.cells[1].metadata
    assert stored.metadata == {"kernelspec": nb.metadata["kernelspec"], "language_info": {"name": "python"}}
    assert authoring.sync(repo)[0].action == "in sync"


def test_both_sides_changed_is_a_conflict_that_writes_nothing_until_settled(repo, capsys):
    from autograder.cli import main

    nb_path, py_path = _paths(repo)
    py_path.write_text(py_path.read_text().replace("# Toy assignment", "# Toy assignment, script edition"))
    nb = nbformat.read(nb_path, as_version=4)
    nb.cells[0].source = "# Toy assignment, notebook edition"
    nbformat.write(nb, nb_path)
    before = (nb_path.read_bytes(), py_path.read_bytes())

    (result,) = authoring.sync(repo)
    assert result.conflict and "both changed since the last sync (cell 1 differ)" in result.detail
    assert (nb_path.read_bytes(), py_path.read_bytes()) == before
    assert main(["--course", str(repo), "sync"]) == 1
    out = capsys.readouterr()
    assert "conflict" in out.out and "nothing released" in out.err
    assert (nb_path.read_bytes(), py_path.read_bytes()) == before

    (result,) = authoring.sync(repo, prefer="notebook")
    assert result.action == "notebook -> script"
    assert "notebook edition" in py_path.read_text() and "script edition" not in py_path.read_text()


def test_without_a_record_of_the_last_sync_the_newer_file_wins(repo):
    nb_path, py_path = _paths(repo)
    (repo / "solutions" / authoring.STATE_FILE).unlink()
    py_path.write_text(py_path.read_text().replace("# Toy assignment", "# Toy assignment (script)"))
    nb = nbformat.read(nb_path, as_version=4)
    nb.cells[0].source = "# Toy assignment (notebook)"
    nbformat.write(nb, nb_path)
    _touch_later(nb_path, py_path)
    (result,) = authoring.sync(repo)
    assert result.action == "notebook -> script" and "the newer file" in result.detail
    assert "(notebook)" in py_path.read_text()


def test_check_changes_nothing_and_a_new_script_makes_its_notebook(repo, capsys):
    from autograder.cli import main

    nb_path, py_path = _paths(repo)
    py_path.write_text(py_path.read_text().replace("# Toy assignment", "# Toy assignment, edited"))
    before = nb_path.read_bytes()
    assert main(["--course", str(repo), "sync", "--check"]) == 1
    assert nb_path.read_bytes() == before and "would write toy.ipynb" in capsys.readouterr().out

    # a new assignment written as a script only
    (repo / "solutions" / "extra").mkdir()
    (repo / "solutions" / "extra" / "extra.py").write_text(py_path.read_text())
    assert main(["--course", str(repo), "sync", "--no-class"]) == 0
    out = capsys.readouterr().out
    assert "solutions/extra/extra.{ipynb,py}: created notebook" in out
    assert "solutions/toy/toy.{ipynb,py}: script -> notebook" in out
    assert "no total stated" in out  # the toy notebook states no total: a warning, not an error
    extra = nbformat.read(repo / "solutions" / "extra" / "extra.ipynb", as_version=4)
    assert [c.id for c in extra.cells][:3] == ["md-00", "setup", "conv_output_size"]
    assert (repo / "assignments" / "extra" / "extra.ipynb").exists()
    assert not (repo / "assignments" / "extra" / "extra.py").exists()


def test_a_script_jupytext_cannot_read_is_named():
    with pytest.raises(authoring.SyncError, match=r"cell 2: jupytext cannot read the metadata in its `# %%` cell"):
        authoring.read_script('# %%\nx = 1\n\n# %% nbgrader={"grade": tru\nx = 1\n', is_text=True)


def test_a_code_line_that_would_start_a_cell_is_refused(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1\n# %% not a cell\ny = 2", id="a")])
    path = tmp_path / "solutions" / "a" / "a.ipynb"
    path.parent.mkdir(parents=True)
    nbformat.write(nb, path)
    with pytest.raises(authoring.SyncError, match="cell 1: it cannot be written as a percent script"):
        authoring.sync(tmp_path)
    assert not path.with_suffix(".py").exists()


# ------------------------------------------------------------------------------------------
# JupyterLab with jupytext: the contents manager keeps the pair in sync through solutions/jupytext.toml


def test_jupyterlab_pairing_writes_the_same_script_and_reads_an_edited_one(repo):
    from jupyter_server.services.contents.largefilemanager import LargeFileManager
    from jupytext.sync_contentsmanager import build_sync_jupytext_contents_manager_class

    assert (repo / "solutions" / "jupytext.toml").read_text() == (REPO / "solutions" / "jupytext.toml").read_text()
    nb_path, py_path = _paths(repo)
    script = py_path.read_text()
    manager = build_sync_jupytext_contents_manager_class(LargeFileManager)(root_dir=str(repo))
    rel = "solutions/toy/toy.ipynb"
    model = manager.get(rel)
    manager.save(model, rel)  # JupyterLab's save
    assert py_path.read_text() == script  # the same script as `cs231n-grade sync` writes
    assert authoring.sync(repo)[0].action == "in sync"

    _touch_later(py_path, nb_path)
    py_path.write_text(script.replace("# Toy assignment", "# Toy assignment, edited in an editor"))
    _touch_later(py_path, nb_path)
    cells = manager.get(rel)["content"]["cells"]
    assert cells[0]["source"].startswith("# Toy assignment, edited in an editor")
    assert [c["id"] for c in cells] == [c.id for c in nbformat.read(nb_path, as_version=4).cells]


def test_a_pair_changed_by_a_pull_is_no_conflict_when_one_side_is_edited_next(repo):
    """The record of the last sync is local; the last commit counts as a sync too (a pull brings both sides)."""
    import subprocess

    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args], cwd=repo,
                       check=True, capture_output=True)

    nb_path, py_path = _paths(repo)
    git("init", "-q")
    # someone else's commit: both sides changed together (this checkout never synced them)
    py_path.write_text(py_path.read_text().replace("# Toy assignment", "# Toy assignment, second edition"))
    nb = nbformat.read(nb_path, as_version=4)
    nb.cells[0].source = nb.cells[0].source.replace("# Toy assignment", "# Toy assignment, second edition")
    nbformat.write(nb, nb_path)
    git("add", "solutions")
    git("commit", "-q", "-m", "pulled")
    py_path.write_text(py_path.read_text().replace("Output sizes", "Output sizes (edited)"))
    _touch_later(nb_path, py_path)  # the notebook looks newer, yet only the script changed since the commit
    (result,) = authoring.sync(repo)
    assert result.action == "script -> notebook" and "the only side changed" in result.detail
    assert "(edited)" in nbformat.read(nb_path, as_version=4).cells[0].source


def test_the_script_is_no_part_of_an_assignments_files(repo, tmp_path):
    digest = source_digest(repo, "toy")
    _, py_path = _paths(repo)
    py_path.write_text(py_path.read_text() + "\n# %%\nx = 1\n")  # an unsynced edit
    assert source_digest(repo, "toy") == digest
    prepare_grading_course(tmp_path / "out", repo, ["toy"])
    assert sorted(p.name for p in (tmp_path / "out" / "source" / "toy").iterdir()) == ["toy.ipynb"]


def test_the_kit_cell_is_the_same_in_every_notebook():
    """The first code cell installs the student kit before anything can be imported, so it cannot
    share code: every notebook carries its own copy, and the copies must stay identical."""
    root = Path(__file__).resolve().parents[2]
    cells = {}
    for path in sorted((root / "solutions").glob("*/*.ipynb")):
        nb = nbformat.read(str(path), as_version=4)
        kit = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "kit"]
        assert len(kit) == 1 and nb.cells.index(kit[0]) == next(
            i for i, c in enumerate(nb.cells) if c.cell_type == "code"), path
        cells[path.stem] = kit[0].source
    assert len(cells) == 5 and len(set(cells.values())) == 1, sorted(cells)


def test_the_points_table_and_the_functions_total_are_checked_against_the_cells():
    nb = nbformat.read(_stored("pooling"), as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = (cell.source.replace("| `avg_pool_forward_naive` | 2 |", "| `avg_pool_forward_naive` | 3 |")
                           .replace("13 points for the functions", "14 points for the functions"))
    assert authoring.point_problems(nb) == [
        "the text states 14 points for the functions; the test cells give 13 (optional parts left out)",
        "the points table gives avg_pool_forward_naive 3 points; its test cell gives 2",
    ]
    convnet = nbformat.read(_stored("convnet"), as_version=4)
    for cell in convnet.cells:
        if cell.cell_type == "markdown":
            cell.source = cell.source.replace("| `training_memory`, `largest_batch` | 2 + 2 |",
                                              "| `training_memory`, `largest_batch` | 2 + 1 |")
    assert authoring.point_problems(convnet) == ["the points table gives largest_batch 1 points; its test cell gives 2"]


def test_both_example_classes_are_rebuilt_and_a_failing_script_is_named(tmp_path):
    examples = tmp_path / "examples"
    examples.mkdir()
    assert authoring.rebuild_sample_class(tmp_path) is None
    for name in authoring.SAMPLE_CLASS_SCRIPTS:
        (examples / name).write_text(f"open({name!r} + '.ran', 'w').close()\n")
    assert authoring.rebuild_sample_class(tmp_path) == (None, 0)
    assert sorted(p.name for p in tmp_path.glob("*.ran")) == ["build_class.py.ran", "build_mistakes.py.ran"]
    (examples / "build_class.py").write_text("raise SystemExit(3)\n")
    assert authoring.rebuild_sample_class(tmp_path) == ("build_class.py", 3)
