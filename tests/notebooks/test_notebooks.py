"""The course notebooks themselves: they run, the solutions earn full marks, the releases earn zero.

The tests use real Jupyter kernels: nbclient for top-to-bottom execution (each notebook runs
once per module, in quick mode, and several tests read its outputs), and the grading engine
(sandboxed kernels, out-of-process checks) for the marks. That each solution notebook is in
sync with its jupytext script is tested in tests/autograder/test_authoring.py.
"""

import os
import re
import time
from pathlib import Path

import nbformat
import pytest

from autograder.engine import GradeTask, grade_submission
from cs231n_checks.validate import is_optional
from student_kit_env import paste_solutions

REPO = Path(__file__).resolve().parents[2]
ASSIGNMENTS = ("convolution", "im2col", "pooling", "batchnorm", "convnet")
pytestmark = pytest.mark.slow


def notebook_path(folder, assignment):
    return REPO / folder / assignment / f"{assignment}.ipynb"


def present(folder):
    return [a for a in ASSIGNMENTS if notebook_path(folder, a).exists()]


def test_all_five_notebooks_exist_in_solutions_and_assignments():
    assert present("solutions") == list(ASSIGNMENTS)
    assert present("assignments") == list(ASSIGNMENTS)


@pytest.mark.parametrize("folder", ["solutions", "assignments"])
def test_notebooks_are_stored_with_outputs_cleared(folder):
    for assignment in present(folder):
        nb = nbformat.read(notebook_path(folder, assignment), as_version=4)
        dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
        assert dirty == [], f"{folder}/{assignment}: cells {dirty} have outputs"


# The budget: the five solution notebooks, executed in quick mode, in under 10 minutes.
TOTAL_SECONDS_BUDGET = 600

# How many verdict lines ("OK: ..." when a numerical verification holds) each solution notebook
# prints: gradient checks, the flipped-filter identities, the FC->CONV crops, conv = avg pooling.
OK_VERDICTS = {"convolution": 1, "im2col": 1, "pooling": 2, "batchnorm": 1, "convnet": 2}


class Run:
    """One top-to-bottom execution of a notebook: the executed notebook and its wall time."""

    def __init__(self, nb, seconds):
        self.nb, self.seconds = nb, seconds

    def errors(self):
        """(cell index, cell kind, exception name, message) of every error output."""
        found = []
        for index, cell in enumerate(self.nb.cells):
            if cell.cell_type != "code":
                continue
            for output in cell.outputs:
                if output.output_type == "error":
                    found.append((index, cell_kind(cell), output.ename, output.evalue.splitlines()[0] if output.evalue else ""))
        return found

    def stdout_lines(self):
        # A kernel may flush one print() in pieces, as several stream outputs: join a cell's
        # stdout before splitting it into lines.
        return [line for cell in self.nb.cells if cell.cell_type == "code"
                for line in "".join(output.text for output in cell.outputs
                                    if output.output_type == "stream" and output.name == "stdout").splitlines()]


def cell_kind(cell):
    meta = cell.metadata.get("nbgrader", {})
    if meta.get("solution"):
        return "solution"
    if meta.get("grade"):
        return "test"
    if meta.get("locked"):
        return "setup"
    return "demo"


@pytest.fixture(scope="module")
def executed(student_env):
    """executed(folder, assignment) -> Run: each notebook runs once per module, errors allowed.

    Notebooks run where students run them: in a fresh environment holding only the student kit
    of the day the assignment is open (``conftest.StudentEnv``), in a folder outside the
    repository. ``"assignments"`` is the released notebook as handed out; ``"solutions"`` is the
    same notebook with the instructor's solution cells pasted in (the kit has data for the
    visible cases only, so the source notebook's hidden cases have no place there).
    """
    runs = {}

    def run(folder, assignment):
        if (folder, assignment) not in runs:
            env = student_env(assignment)
            path = env.notebook_copy()
            if folder == "solutions":
                paste_solutions(path, assignment)
            nb = nbformat.read(path, as_version=4)
            with pytest.MonkeyPatch.context() as menv:
                menv.setenv("CS231N_QUICK", "1")
                menv.setenv("MPLBACKEND", "Agg")
                start = time.perf_counter()
                env.client(nb, path.parent).execute()
                seconds = time.perf_counter() - start
            print(f"{folder}/{assignment}: executed in {seconds:.1f} s")
            runs[(folder, assignment)] = Run(nb, seconds)
        return runs[(folder, assignment)]

    return run


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solution_notebook_runs_top_to_bottom(assignment, executed, record_property):
    """The instructor's notebook, every cell (plots, demos, short training) on a real kernel."""
    run = executed("solutions", assignment)
    record_property("seconds", round(run.seconds, 1))
    assert run.errors() == []


def test_the_five_solution_notebooks_run_in_under_ten_minutes_in_total(executed):
    seconds = {assignment: executed("solutions", assignment).seconds for assignment in ASSIGNMENTS}
    total = sum(seconds.values())
    detail = ", ".join(f"{assignment} {s:.0f} s" for assignment, s in seconds.items())
    assert total < TOTAL_SECONDS_BUDGET, f"{total:.0f} s in total ({detail}), budget {TOTAL_SECONDS_BUDGET} s"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solution_notebook_numerical_verifications_say_ok(assignment, executed):
    """Cells that verify a result numerically end with a verdict line: OK or MISMATCH."""
    lines = executed("solutions", assignment).stdout_lines()
    assert [line for line in lines if line.startswith("MISMATCH")] == []
    ok = [line for line in lines if line.startswith("OK:")]
    assert len(ok) == OK_VERDICTS[assignment], ok


def test_convnet_solution_overfits_fifty_examples(executed):
    """The overfit run is never shortened; on the offline digits it reaches the 100% target."""
    lines = executed("solutions", "convnet").stdout_lines()
    pattern = re.compile(r"final training accuracy on the 50 examples: ([0-9.]+) \(target 1\.000\)")
    found = [float(m.group(1)) for m in map(pattern.search, lines) if m]
    assert len(found) == 1, lines
    assert found[0] >= 0.99


def test_pooling_shift_demo_measures_what_its_text_says(executed):
    """The one-pixel-shift table: on edge features max pooling changes less than average pooling
    and than the features, and keeps more outputs unchanged; the cell's verdict line says so."""
    lines = executed("solutions", "pooling").stdout_lines()
    assert any(line.startswith("as described above: ") for line in lines), lines
    assert not any(line.startswith("NOT as described above") for line in lines)


def test_curriculum_text_states_what_is_true():
    """Claims a reader once found wrong (issue 13), pinned to the sources."""
    text = {a: (REPO / "solutions" / a / f"{a}.py").read_text() for a in ASSIGNMENTS}
    assert "no FC layers at the end" not in text["convnet"]
    assert "global average pooling and a single FC layer" in text["convnet"]
    assert r"$\gamma_j = \sigma_j$" not in text["batchnorm"]
    assert r"$\gamma_j = \sqrt{\sigma_j^2 + \epsilon}$ and $\beta_j = \mu_j$" in text["batchnorm"]
    # the conv demo's static overview labels sums over all three channels: it draws all three
    assert "draw_grid(axes[i * DEMO_OUT + j, c], demo_x_pad[0, c]" in text["convolution"]


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_untouched_release_runs_top_to_bottom_failing_only_in_graded_cells(assignment, executed):
    """A student's first Run All: only solution stubs and check cells may raise, and only
    NotImplementedError (or the check's AssertionError); demo, plot and setup cells cope."""
    errors = executed("assignments", assignment).errors()
    allowed = {"solution": {"NotImplementedError"}, "test": {"NotImplementedError", "AssertionError"}}
    unexpected = [e for e in errors if e[2] not in allowed.get(e[1], set())]
    assert unexpected == []
    nb = executed("assignments", assignment).nb
    test_cells = {i for i, cell in enumerate(nb.cells) if cell.cell_type == "code" and cell_kind(cell) == "test"}
    assert {e[0] for e in errors if e[1] == "test"} == test_cells, "every check cell should report the missing code"


def _grade(folder, assignment, student):
    path = notebook_path(folder, assignment)
    task = GradeTask(student=student, assignment=assignment, files={path.name: path.read_bytes()},
                     course_root=str(REPO))
    return grade_submission(task).to_json()


def _cases(result):
    for notebook in result["notebooks"].values():
        for test in notebook["tests"]:
            yield from test["cases"]


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solution_graded_as_a_submission_earns_full_marks(assignment):
    result = _grade("solutions", assignment, "instructor")
    assert result["status"] == "graded", result.get("error")
    failed = [(c["check"], c["description"], c["outcome"], c["message"]) for c in _cases(result) if c["outcome"] != "passed"]
    assert failed == []
    assert result["max_score"] > 0
    # optional parts are extra credit: the solutions earn them on top of the maximum
    optional = sum(t["points"] for nb in result["notebooks"].values() for t in nb["tests"] if t["optional"])
    assert result["optional_points"] == pytest.approx(optional)
    assert result["score"] == pytest.approx(result["max_score"] + optional)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_untouched_release_earns_zero_without_a_grader_error(assignment):
    result = _grade("assignments", assignment, "untouched")
    assert result["status"] == "graded", result.get("error")
    notebook = next(iter(result["notebooks"].values()))
    assert notebook["status"] == "graded"
    outcomes = {c["outcome"] for c in _cases(result)}
    assert outcomes and "passed" not in outcomes
    assert outcomes <= {"error", "wrong"}, outcomes
    assert result["score"] == 0 and result["max_score"] > 0


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_total_points_are_stated_at_the_top_and_match_the_test_cells(assignment):
    nb = nbformat.read(notebook_path("solutions", assignment), as_version=4)
    tests = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade") and c.cell_type == "code"]
    total = sum(c.metadata["nbgrader"].get("points", 0) for c in tests if not is_optional(c))
    extra = sum(c.metadata["nbgrader"].get("points", 0) for c in tests if is_optional(c))
    intro = "\n".join(c.source for c in nb.cells[:3] if c.cell_type == "markdown").replace("*", "")
    assert total > 0
    assert f"{total:g} points" in intro, f"the top of {assignment} should state the total: {total:g} points"
    if extra:
        said = f"{extra:g} point{'s' if extra != 1 else ''} of extra credit"
        assert said in intro, f"the top of {assignment} should state the optional parts: {said}"


def test_quick_mode_is_read_from_the_environment_only_by_cells_skipped_at_grading():
    """Grading must carry no signal: the short configuration lives only in skipped cells."""
    for assignment in present("solutions"):
        nb = nbformat.read(notebook_path("solutions", assignment), as_version=4)
        for index, cell in enumerate(nb.cells):
            if cell.cell_type == "code" and "CS231N_QUICK" in cell.source:
                assert cell.metadata.get("cs231n", {}).get("grading") == "skip", (assignment, index)


def test_no_solution_or_hidden_test_leaks_into_the_released_notebooks():
    for assignment in present("assignments"):
        text = notebook_path("assignments", assignment).read_text()
        assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text
        assert os.path.getsize(notebook_path("assignments", assignment)) > 0


def _write_cifar10_folder(root, per_batch=64, test_images=128, seed=0):
    """A small dataset in CIFAR-10's own format (python pickles of uint8 rows), written here.

    Each class has its own mean colour, so the images carry a signal a net can learn.
    """
    import pickle

    import numpy as np

    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)

    def batch(n):
        labels = rng.integers(0, 10, n)
        colours = np.linspace(30, 220, 10)[labels]
        planes = colours[:, None, None] + rng.normal(0, 25, (n, 3, 1024)) * np.array([1.0, 0.5, 0.25])[None, :, None]
        return {b"data": np.clip(planes, 0, 255).astype(np.uint8).reshape(n, 3072), b"labels": labels.tolist()}

    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(folder / name, "wb") as f:
            pickle.dump(batch(test_images if name == "test_batch" else per_batch), f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog",
                                      b"horse", b"ship", b"truck"]}, f)
    return root


@pytest.mark.parametrize("assignment", ["batchnorm", "convnet"])
def test_training_sections_run_on_cifar10_when_it_is_there(assignment, tmp_path, monkeypatch, student_env):
    """The other path of the data: CIFAR-10 present (a small copy in its real format), not the fallback."""
    data_home = _write_cifar10_folder(tmp_path / "data")
    env = student_env(assignment)
    path = env.notebook_copy()
    nb = paste_solutions(path, assignment)
    monkeypatch.setenv("CS231N_QUICK", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("CS231N_DATA_DIR", str(data_home))
    env.client(nb, path.parent).execute()
    run = Run(nb, 0.0)
    assert run.errors() == []
    assert "data source: cifar10" in run.stdout_lines()
    assert not any("fallback" in line for line in run.stdout_lines())


def test_convnet_training_text_states_the_reference_run_on_the_digits(tmp_path, monkeypatch):
    """The text quotes a run of the reference solution on the offline digits (6 epochs: 96.1%
    validation accuracy after the first, 98.9% at best, 95.0% test). Re-run here: the first epoch
    of the same configuration, with the solution's own cells, must reach at least 95% of the 179
    validation images (96.1% in the quoted run, 172 images). The training-accuracy measurements are
    left out (their random draws kept): 9 s instead of 12 s here (2026-12-03, 2 cores, loaded)."""
    import numpy as np

    source = (REPO / "solutions" / "convnet" / "convnet.py").read_text()
    assert "reached 96.1% validation accuracy after the first epoch,\n# 98.9% at best, and 95.0% on the test set" in source
    cells = re.split(r"^# %%", source, flags=re.M)
    namespace = {"__name__": "convnet_reference_run"}
    for cell in cells:
        head, _, body = cell.partition("\n")
        if '"grade_id": "setup"' in head or '"grade_id": "three_layer_convnet_loss"' in head \
                or "class MyThreeLayerConvNet" in body:
            exec(compile(body, "<convnet cell>", "exec"), namespace)
    monkeypatch.setenv("CS231N_DATA_DIR", str(tmp_path))  # no CIFAR-10 there: the offline digits
    data = namespace["get_CIFAR10_data"]()
    assert data["source"] != "cifar10"

    class Replay(namespace["Solver"]):
        """The same run without the training-accuracy measurements (a third of its forward passes):
        their random sample is still drawn, so the minibatches, and the run, stay the same."""

        def check_accuracy(self, X, y, num_samples=None, batch_size=100):
            if X is self.X_train:
                if num_samples is not None and len(X) > num_samples:
                    self.rng.choice(len(X), num_samples)
                return 0.0
            return super().check_accuracy(X, y, num_samples, batch_size)

    np.random.seed(231)
    model = namespace["MyThreeLayerConvNet"](num_filters=32, filter_size=7, hidden_dim=100, weight_scale=1e-3, reg=1e-3)
    solver = Replay(model, data, num_epochs=1, batch_size=50, update_rule="adam",
                    optim_config={"learning_rate": 1e-3}, lr_decay=0.9, verbose=False)
    solver.train()
    assert solver.val_acc_history[-1] >= 0.95, solver.val_acc_history
    # 172 of the 179 validation images, as in the quoted run (float32 sums may move it by one)
    assert abs(solver.val_acc_history[-1] - 0.961) < 0.006, solver.val_acc_history
