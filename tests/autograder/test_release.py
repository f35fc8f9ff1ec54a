"""`cs231n-grade release`: solutions/ -> assignments/ with nbgrader's generate_assignment."""

import shutil
from pathlib import Path

import nbformat
import pytest

import toycourse
from autograder import course


def _tree(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(Path(folder).rglob("*")) if p.is_file()}


@pytest.fixture
def repo(tmp_path):
    return toycourse.make_course(tmp_path / "repo", assignments=("toy", "extra"))


def test_release_strips_solutions_and_hidden_tests_and_clears_outputs(repo):
    nb = nbformat.read(str(repo / "assignments" / "toy" / "toy.ipynb"), as_version=4)
    text = (repo / "assignments" / "toy" / "toy.ipynb").read_text()
    assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text
    assert "4242" not in text and "9137" not in text  # hidden seeds
    assert "(W - F + 2 * P) // S + 1" not in text  # the reference solution
    stubs = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")]
    assert len(stubs) == 2 and all("raise NotImplementedError" in c.source for c in stubs)
    tests = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
    assert [c.metadata["nbgrader"]["points"] for c in tests] == [2, 3]
    assert all(c.outputs == [] and c.execution_count is None for c in nb.cells if c.cell_type == "code")
    # both assignments released, nothing else written into the repository
    assert sorted(p.name for p in (repo / "assignments").iterdir()) == ["extra", "toy"]
    assert sorted(p.name for p in repo.iterdir()) == ["assignments", "solutions"]


def test_release_is_idempotent_and_removes_stale_files(repo):
    before = _tree(repo / "assignments")
    (repo / "assignments" / "toy" / "stale.ipynb").write_text("{}")
    course.release(repo, quiet=True)
    assert _tree(repo / "assignments") == before
    mtimes = {p: p.stat().st_mtime_ns for p in (repo / "assignments").rglob("*.ipynb")}
    course.release(repo, quiet=True)
    assert {p: p.stat().st_mtime_ns for p in (repo / "assignments").rglob("*.ipynb")} == mtimes  # not rewritten


def test_release_follows_a_changed_source(repo):
    path = repo / "solutions" / "toy" / "toy.ipynb"
    nb = nbformat.read(str(path), as_version=4)
    nb.cells[0].source = "# Toy assignment, second edition"
    nbformat.write(nb, str(path))
    course.release(repo, ["toy"], quiet=True)
    assert "second edition" in (repo / "assignments" / "toy" / "toy.ipynb").read_text()


def test_failed_release_names_the_problem_and_keeps_the_committed_version(repo):
    before = _tree(repo / "assignments")
    path = repo / "solutions" / "toy" / "toy.ipynb"
    nb = nbformat.read(str(path), as_version=4)
    nb.cells[3].metadata["nbgrader"]["grade_id"] = "conv_output_size"  # duplicate grade_id
    nbformat.write(nb, str(path))
    with pytest.raises(course.CourseError, match="generate_assignment toy"):
        course.release(repo, ["toy"], quiet=True)
    assert _tree(repo / "assignments") == before


def test_unknown_assignment_is_refused_with_the_known_ones(repo):
    with pytest.raises(course.CourseError, match="found: extra, toy"):
        course.release(repo, ["nope"], quiet=True)


def test_release_command_from_the_cli(repo, capsys):
    from autograder.cli import main

    (repo / "assignments" / "toy" / "toy.ipynb").unlink()
    assert main(["--course", str(repo), "release", "toy"]) == 0
    assert (repo / "assignments" / "toy" / "toy.ipynb").exists()
    assert "up to date" in capsys.readouterr().out


def test_real_repository_assignments_are_fresh(tmp_path):
    """assignments/ in the repository is what `cs231n-grade release` makes of solutions/ (run `make release`)."""
    root = Path(__file__).resolve().parents[2]
    names = course.list_assignments(root) if (root / "solutions").is_dir() else []
    if not names:
        pytest.skip("no notebooks in solutions/ yet")
    shutil.copytree(root / "solutions", tmp_path / "solutions")
    course.release(tmp_path, quiet=True)
    fresh, committed = _tree(tmp_path / "assignments"), _tree(root / "assignments")
    stale = sorted(k for k in fresh.keys() | committed.keys() if fresh.get(k) != committed.get(k))
    assert not stale, f"assignments/ differs from a fresh release of solutions/ in {stale}: run `make release`"
