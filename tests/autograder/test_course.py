"""The one nbgrader configuration (autograder/course.py) and the grading folder made with it
(``gradebook.prepare_grading_course``)."""

import os
import subprocess

import toycourse
from autograder import course
from autograder.gradebook import prepare_grading_course


def test_grading_course_config_clears_hidden_tests_in_feedback(tmp_path):
    c = course.nbgrader_config(tmp_path)
    names = [p.__name__ for p in c.GenerateFeedback.preprocessors]
    assert names == ["GetGrades", "ClearHiddenTests", "CSSHTMLHeaderPreprocessor"]
    assert c.CourseDirectory.db_url == f"sqlite:///{tmp_path.resolve() / 'gradebook.db'}"
    assert c.Execute.skip_cells_with_tag != "skip-execution"


def test_grading_folder_is_an_nbgrader_course_knowing_the_grade_cells(tmp_path):
    import os

    root = toycourse.course_copy(tmp_path / "repo", assignments=("toy", "extra"))
    out = tmp_path / "out"
    cwd = os.getcwd()
    prepare_grading_course(out, root, ["toy", "extra"])
    assert os.getcwd() == cwd  # nbgrader's chdir does not leak out
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{out / 'gradebook.db'}", course_id=course.COURSE_ID) as gb:
        toy = gb.find_assignment("toy")
        assert toy.max_score == 5.0
        assert sorted(c.name for nb in toy.notebooks for c in nb.grade_cells) == [
            "test_conv_forward_naive", "test_conv_output_size"]
        assert gb.find_assignment("extra").max_score == 2.0
    # nbgrader's own command line reads the folder's config (course id, gradebook)
    env = dict(os.environ, PATH=course.str_bin_dir() + os.pathsep + os.environ["PATH"])
    listed = subprocess.run([course.str_bin_dir() + "/nbgrader", "db", "assignment", "list"], cwd=out, env=env,
                            capture_output=True, text=True, check=True)
    assert "toy" in listed.stdout + listed.stderr and "extra" in listed.stdout + listed.stderr


def test_grading_folder_is_prepared_once_per_source_version(tmp_path):
    root = toycourse.course_copy(tmp_path / "repo")
    out = tmp_path / "out"
    prepare_grading_course(out, root, ["toy"])
    db = out / "gradebook.db"
    before = db.stat().st_mtime_ns
    prepare_grading_course(out, root, ["toy"])
    assert db.stat().st_mtime_ns == before  # unchanged source: nbgrader not run again
    nb = root / "solutions" / "toy" / "toy.ipynb"
    nb.write_text(nb.read_text().replace("Toy assignment", "Toy assignment, revised"))
    course.release(root, quiet=True)
    prepare_grading_course(out, root, ["toy"])
    assert "revised" in (out / "release" / "toy" / "toy.ipynb").read_text()


def test_alembic_is_put_on_path(monkeypatch):
    monkeypatch.setenv("PATH", "/usr/bin")
    course.ensure_alembic_on_path()
    assert os.environ["PATH"].split(os.pathsep)[0] == course.str_bin_dir()
