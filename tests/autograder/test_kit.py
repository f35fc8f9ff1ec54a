"""The student kit (autograder/kit.py): the schedule, the student build of the library, what the
kit holds and what it never holds (answers of open or future assignments, hidden cases)."""

import ast
import copy
import json
import zipfile
from pathlib import Path

import nbformat
import numpy as np
import pytest

from autograder import kit
from autograder.testspec import parse_test_cell
from cs231n_checks.base import case_key

REPO = Path(__file__).resolve().parents[2]
ORDER = ["convolution", "im2col", "pooling", "batchnorm", "convnet"]


def write_course_file(root, text):
    root = Path(root)
    for name in ORDER:
        (root / "solutions" / name).mkdir(parents=True, exist_ok=True)
        (root / "solutions" / name / f"{name}.ipynb").write_text("{}")
    (root / "course.toml").write_text(text)
    return root


def entries(pairs):
    return "".join(f'[[assignment]]\nname = "{n}"\nstate = "{s}"\n\n' for n, s in pairs)


# ------------------------------------------------------------------------------------------
# The schedule


def test_the_sample_course_opens_the_first_assignment_and_lists_all_in_course_order():
    schedule = kit.load_schedule(REPO)
    assert schedule.order == ORDER
    assert schedule.states == {"convolution": "open", "im2col": "future", "pooling": "future",
                               "batchnorm": "future", "convnet": "future"}
    assert schedule.handed_out() == ["convolution"] and schedule.withheld() == ORDER


@pytest.mark.parametrize("text,message", [
    (entries([("convolution", "opened")]), "convolution has state 'opened'; expected one of closed, open, future"),
    (entries([("conv", "open")]), "assignment 1 is 'conv'; expected one of"),
    (entries([(n, "open") for n in ORDER] + [("im2col", "closed")]), "im2col is listed twice"),
    (entries([(n, "open") for n in ORDER[:3]]), "no state for batchnorm, convnet"),
    ("[[assignment]\nname=", "not valid TOML"),
])
def test_a_bad_schedule_is_refused_naming_the_problem(tmp_path, text, message):
    root = write_course_file(tmp_path, text)
    with pytest.raises(kit.KitError, match=message.replace("(", r"\(").replace(")", r"\)")):
        kit.load_schedule(root)


def test_while_open_closes_the_earlier_assignments_and_withholds_the_later_ones():
    day = kit.load_schedule(REPO).while_open("pooling")
    assert day.states == {"convolution": "closed", "im2col": "closed", "pooling": "open",
                          "batchnorm": "future", "convnet": "future"}
    withheld = kit.withheld_definitions(day)
    assert "max_pool_forward" in withheld["pooling.py"] and "conv_forward" not in withheld.get("conv.py", {})
    assert withheld["sizing.py"] == {name: "convnet" for name in (
        "describe", "_apply_layer", "receptive_field", "fc_to_conv_weights", "training_memory", "largest_batch",
        "pattern_spec", "widest_pattern")}
    assert withheld["architectures.py"] == {"resnet": "convnet", "basic_block": "convnet"}
    assert withheld["classifiers/cnn.py"] == {"ThreeLayerConvNet": "convnet", "conv_bn_net_loss": "convnet"}
    assert withheld["layer_utils.py"] == {"residual_block_forward": "convnet", "residual_block_backward": "convnet"}


@pytest.mark.parametrize("opened,blocker", [("pooling", "im2col"), ("pooling", "convolution"), ("convnet", "pooling")])
def test_a_notebook_needing_answers_that_are_not_closed_is_refused_in_one_line(tmp_path, opened, blocker):
    """pooling's notebook uses im2col from the library, the convnet's trains with earlier layers."""
    states = kit.load_schedule(REPO).while_open(opened).states
    states[blocker] = "open"
    needed, _ = kit.needed_assignments(kit._released_notebook(REPO, opened), opened)
    assert blocker in needed
    with pytest.raises(kit.KitError) as info:
        kit.build_student_kit(REPO, tmp_path / "kit", kit.Schedule(states))
    assert str(info.value).startswith(f"{opened} cannot be handed out while {blocker} is open")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "kit").exists()


def test_the_notebooks_use_no_answer_of_their_own_assignment_outside_solution_cells():
    for name in ORDER:
        _, own = kit.needed_assignments(kit._released_notebook(REPO, name), name)
        assert own == [], f"{name} uses {own} from cs231n_lib, which its kit withholds"


# ------------------------------------------------------------------------------------------
# The student build of the library


def test_strip_module_replaces_only_the_listed_definitions_and_keeps_the_rest_verbatim():
    source = ('"""doc"""\nimport numpy as np\n\n\n@decorate(1)\ndef answer(x):\n    """the answer"""\n    return x + 1\n\n\n'
              '# a comment that stays\ndef helper(y):\n    return y * 2\n\n\nclass Model:\n    def loss(self):\n        return 3\n')
    out = kit.strip_module(source, {"answer": "convolution", "Model": "convnet"}, "sizing.py")
    assert "# a comment that stays\ndef helper(y):\n    return y * 2\n" in out
    assert "decorate" not in out and "x + 1" not in out and "return 3" not in out
    namespace = {}
    exec(compile(out, "sizing.py", "exec"), namespace)
    assert namespace["helper"](2) == 4
    with pytest.raises(NotImplementedError, match="cs231n_lib.sizing.answer is not in the student kit while the "
                                                  "assignment 'convolution' is open"):
        namespace["answer"](1)
    with pytest.raises(NotImplementedError, match="'convnet'"):
        namespace["Model"]()


def test_strip_module_refuses_a_name_the_module_does_not_define():
    with pytest.raises(kit.KitError, match="defines no gone"):
        kit.strip_module("def here():\n    pass\n", {"gone": "im2col"}, "conv.py")


def test_every_listed_answer_exists_in_the_library():
    """ANSWERS cannot go stale: building the kit with everything withheld strips every entry."""
    everything = kit.Schedule({name: "open" for name in ORDER})
    for module, names in kit.withheld_definitions(everything).items():
        kit.strip_module((kit.LIBRARY / module).read_text(), names, module)


# ------------------------------------------------------------------------------------------
# A built kit: what it holds and what it never holds


@pytest.fixture(scope="module", params=["convolution", "pooling", "convnet"])
def built(request, tmp_path_factory):
    """The kit of the day ``param`` is open (earlier assignments closed), unpacked."""
    schedule = kit.load_schedule(REPO).while_open(request.param)
    result = kit.build_student_kit(REPO, tmp_path_factory.mktemp("kit") / "student-kit", schedule)
    unpacked = tmp_path_factory.mktemp("unpacked")
    with zipfile.ZipFile(result.wheel) as zf:
        zf.extractall(unpacked)
    return request.param, schedule, result, unpacked


def test_the_kit_holds_the_released_notebooks_of_closed_and_open_assignments_a_wheel_and_a_zip(built):
    opened, schedule, result, unpacked = built
    handed_out = ORDER[:ORDER.index(opened) + 1]
    assert sorted(p.name for p in (result.out / "assignments").iterdir()) == sorted(handed_out)
    for name in handed_out:
        assert (result.out / "assignments" / name / f"{name}.ipynb").read_bytes() == \
            (REPO / "assignments" / name / f"{name}.ipynb").read_bytes()
    assert sorted(p.name for p in unpacked.iterdir()) == ["cs231n_checks", "cs231n_lib",
                                                          "cs231n_student-0.1.0.dist-info"]
    assert sorted(p.stem for p in (unpacked / "cs231n_checks" / "expected").iterdir()) == sorted(handed_out)
    with zipfile.ZipFile(result.zip) as zf:
        names = zf.namelist()
    assert f"student-kit/{result.wheel.name}" in names and "student-kit/README.md" in names
    assert all(not n.startswith("student-kit/.") for n in names)
    entry_points = (unpacked / "cs231n_student-0.1.0.dist-info" / "entry_points.txt").read_text()
    assert "cs231n-grade = cs231n_checks.validate:main" in entry_points


def test_the_kit_holds_no_solution_no_grader_and_no_hidden_case(built):
    opened, schedule, result, unpacked = built
    files = [p for p in list(result.out.rglob("*")) + list(unpacked.rglob("*")) if p.is_file()]
    assert not any(part in ("solutions", "autograder") for p in files for part in p.parts)
    texts = [p.read_text(errors="replace") for p in files if p.suffix in (".py", ".ipynb", ".md", ".txt")]
    stored = set()
    for path in (unpacked / "cs231n_checks" / "expected").glob("*.npz"):
        with np.load(path, allow_pickle=False) as data:
            stored |= {entry.split(".")[0] for entry in data.files}
    visible, hidden_lines = set(), []
    for name in schedule.handed_out():
        source = nbformat.read(REPO / "solutions" / name / f"{name}.ipynb", as_version=4)
        for cell in source.cells:
            if cell.cell_type != "code" or not cell.metadata.get("nbgrader", {}).get("grade"):
                continue
            for call in parse_test_cell(cell.source):
                keys = {case_key(call.name, case) for case in call.cases}
                (visible.update(keys) if not call.hidden else None)
            inside = False
            for line in cell.source.splitlines():
                if "BEGIN HIDDEN TESTS" in line:
                    inside = True
                elif "END HIDDEN TESTS" in line:
                    inside = False
                elif inside and line.strip().startswith("{"):
                    hidden_lines.append(line.strip())
    assert stored == visible, "the kit's data holds exactly the visible cases"
    assert hidden_lines, "the source notebooks have hidden cases"
    assert not [line for line in hidden_lines if any(line in text for text in texts)]
    assert not any("BEGIN SOLUTION" in text or "BEGIN HIDDEN TESTS" in text for text in texts)


def _normalised_functions(source):
    """Every function in ``source`` as a syntax tree with docstrings dropped and every name,
    argument and function name replaced by its order of appearance (comments are already gone)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    shapes = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        node = copy.deepcopy(node)
        for inner in ast.walk(node):
            body = getattr(inner, "body", None)
            if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                    and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
                inner.body = body[1:] or [ast.Pass()]
        names = {}
        for inner in ast.walk(node):
            for attr in ("id", "arg", "name"):
                value = getattr(inner, attr, None)
                if isinstance(value, str) and not isinstance(inner, (ast.alias, ast.ImportFrom)):
                    setattr(inner, attr, names.setdefault(value, f"n{len(names)}"))
        size = sum(1 for _ in ast.walk(node))
        if size >= 12:  # a one-line wrapper has nothing to leak
            shapes.append(ast.dump(node, include_attributes=False))
    return shapes


def _answer_shapes(assignments):
    """Normalised functions that answer ``assignments``: the instructor's solution cells and the
    library's definitions listed for them."""
    shapes = set()
    for name in assignments:
        source = nbformat.read(REPO / "solutions" / name / f"{name}.ipynb", as_version=4)
        for cell in source.cells:
            if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("solution"):
                shapes.update(_normalised_functions(cell.source))
        for module, names in kit.ANSWERS.get(name, {}).items():
            tree = ast.parse((kit.LIBRARY / module).read_text())
            for node in tree.body:
                if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in names:
                    shapes.update(_normalised_functions(ast.unparse(node)))
    return shapes


def _kit_shapes(result, unpacked):
    shapes = set()
    for path in unpacked.rglob("*.py"):
        shapes.update(_normalised_functions(path.read_text()))
    for path in result.out.rglob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                shapes.update(_normalised_functions(cell.source))
    return shapes


def test_no_function_in_the_kit_matches_an_answer_of_an_open_or_future_assignment(built):
    """Names, comments and docstrings ignored: not the readable function, not its kernel, not a
    renamed copy."""
    opened, schedule, result, unpacked = built
    leaks = _kit_shapes(result, unpacked) & _answer_shapes(schedule.withheld())
    assert not leaks, f"{len(leaks)} functions of the kit answer an open or future assignment"


def test_the_leak_scan_finds_answers_where_they_are(built):
    """The scan is not blind: the library code of a closed assignment is in the kit and is found;
    on the first day, when nothing is closed, the open assignment's answers are found in the
    repository's own library, which holds them."""
    opened, schedule, result, unpacked = built
    closed = [name for name, state in schedule.states.items() if state == "closed"]
    if closed:
        assert _kit_shapes(result, unpacked) & _answer_shapes(closed)
    else:
        repository, listed = set(), set()
        for path in kit.LIBRARY.rglob("*.py"):
            repository.update(_normalised_functions(path.read_text()))
        for module, names in kit.ANSWERS[opened].items():
            for node in ast.parse((kit.LIBRARY / module).read_text()).body:
                if isinstance(node, ast.FunctionDef) and node.name in names:
                    listed.update(_normalised_functions(ast.unparse(node)))
        assert len(listed) >= 5 and listed <= repository & _answer_shapes([opened])


def test_a_kit_folder_is_rebuilt_but_a_foreign_folder_is_never_overwritten(tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("keep me")
    with pytest.raises(kit.KitError, match="is not a student kit folder"):
        kit.build_student_kit(REPO, foreign)
    assert (foreign / "thesis.tex").read_text() == "keep me"
    with pytest.raises(kit.KitError, match="holds the course itself"):
        kit.build_student_kit(REPO, REPO)


def test_the_grading_kit_is_the_kit_of_the_day_the_assignment_was_open(tmp_path):
    folder = kit.grading_kit(REPO, "im2col", tmp_path)
    conv = (folder / "cs231n_lib" / "conv.py").read_text()
    assert "raise NotImplementedError(\"cs231n_lib.conv.im2col is not in the student kit" in conv
    assert "def conv_output_size(W, F, S=1, P=0, dilation=1):" in (folder / "cs231n_lib" / "sizing.py").read_text()
    assert (folder / ".complete").exists() and any((folder / ".numba-cache").rglob("*.nbi"))
    assert kit.grading_kit(REPO, "im2col", tmp_path) == folder  # built once per content


def _course_with_extra_assignments(root, extras):
    """The sample course's assignments plus ``extras`` after them: the kit of an assignment of
    ORDER is another folder than in the sample course, with the same Numba modules."""
    for name in ORDER + extras:
        (root / "solutions" / name).mkdir(parents=True, exist_ok=True)
        (root / "solutions" / name / f"{name}.ipynb").write_text("{}")
    return root


def _relu_backward_in_kit(folder, tmp_path):
    """Run the kit's Numba ReLU backward as a grading kernel does (a copy of the kit's cache as
    NUMBA_CACHE_DIR); returns (largest error against NumPy, Numba's cache log)."""
    import shutil
    import subprocess
    import sys

    cache = tmp_path / f"cache-{folder.name}"
    shutil.copytree(folder / ".numba-cache", cache)
    code = ("import numpy as np\nfrom cs231n_lib import layers\n"
            "x = np.random.default_rng(1).standard_normal(1 << 16)\ndout = np.cos(x)\n"
            "dx = layers.relu_backward(dout, layers.relu_forward(x)[1])\n"
            "print('error', np.abs(dx - np.where(x > 0, dout, 0.0)).max())\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(folder), "NUMBA_CACHE_DIR": str(cache),
                               "NUMBA_DEBUG_CACHE": "1", "HOME": str(tmp_path)})
    error = float(next(line for line in done.stdout.splitlines() if line.startswith("error")).split()[1])
    return error, done.stdout


def test_kits_with_the_same_numba_modules_share_their_compiled_kernels(tmp_path):
    """Building the kit of another content (here: another course file) with the same kernels
    compiles nothing: the store of compiled kernels seeds it, and its kernels load from it."""
    kits = tmp_path / "kits"
    first = kit.grading_kit(REPO, "im2col", kits)
    second = kit.grading_kit(_course_with_extra_assignments(tmp_path / "course", ["extra"]), "im2col", kits)
    assert second != first
    built_first, built_second = (json.loads((f / ".complete").read_text()) for f in (first, second))
    assert built_first["kernels_compiled"] > 0 and built_first["functions_seeded"] == 0
    assert built_second["kernels_compiled"] == 0 and built_second["functions_seeded"] > 0
    assert built_second["kernels_reused"] >= built_second["functions_seeded"]
    error, log = _relu_backward_in_kit(second, tmp_path)
    assert error == 0.0 and "data loaded from" in log and "data saved to" not in log


def test_a_damaged_store_of_compiled_kernels_is_dropped_and_the_kit_compiled(tmp_path):
    kits = tmp_path / "kits"
    kit.grading_kit(REPO, "im2col", kits)
    data = [p for p in (kits / kit.COMPILED_STORE).rglob("*.nbc")]
    assert data
    for path in data:
        path.write_bytes(path.read_bytes()[:16])  # cut short, as by a crash or a full disk
    folder = kit.grading_kit(_course_with_extra_assignments(tmp_path / "course", ["extra"]), "im2col", kits)
    built = json.loads((folder / ".complete").read_text())
    assert built["kernels_compiled"] > 0 and built["functions_seeded"] == 0
    assert all(path.stat().st_size > 16 for path in (kits / kit.COMPILED_STORE).rglob("*.nbc"))
    assert _relu_backward_in_kit(folder, tmp_path)[0] == 0.0


def test_a_store_record_that_is_not_ours_is_ignored_and_the_store_is_only_ours_to_write(tmp_path):
    kits = tmp_path / "kits"
    first = kit.grading_kit(REPO, "im2col", kits)
    (entry,) = (kits / kit.COMPILED_STORE).iterdir()
    assert all((path.stat().st_mode & 0o022) == 0 for path in [entry.parent, entry, *entry.rglob("*")])
    (entry / "stamps.json").write_text('["not", "a", "record"]')
    folder = kit.grading_kit(_course_with_extra_assignments(tmp_path / "course", ["extra"]), "im2col", kits)
    built = json.loads((folder / ".complete").read_text())
    assert folder != first and built["functions_seeded"] == 0 and built["kernels_compiled"] > 0
    assert _relu_backward_in_kit(folder, tmp_path)[0] == 0.0
    # the record was written afresh: the next kit with these kernels starts from it again
    third = kit.grading_kit(_course_with_extra_assignments(tmp_path / "course", ["extra", "more"]), "im2col", kits)
    assert json.loads((third / ".complete").read_text())["kernels_compiled"] == 0


def test_a_changed_numba_module_has_its_own_entry_in_the_store(tmp_path):
    import shutil

    folder = kit.grading_kit(REPO, "im2col", tmp_path / "kits")
    copy_ = tmp_path / "copy"
    shutil.copytree(folder / "cs231n_lib", copy_ / "cs231n_lib")
    same = kit._compiled_store_entry(tmp_path / "kits", copy_)
    assert same == kit._compiled_store_entry(tmp_path / "kits", folder)
    with open(copy_ / "cs231n_lib" / "kernels.py", "a") as fh:
        fh.write("\n# an instructor's edit\n")
    assert kit._compiled_store_entry(tmp_path / "kits", copy_) != same


@pytest.mark.slow
def test_a_solution_calling_the_library_gets_no_points_for_that_function_and_full_points_for_the_rest():
    """The grading kernel imports the kit of the day convolution was open: the library's
    conv_backward is a stub there, whatever course.toml says today."""
    from autograder.engine import GradeTask, grade_submission

    released = nbformat.read(REPO / "assignments" / "convolution" / "convolution.ipynb", as_version=4)
    source = nbformat.read(REPO / "solutions" / "convolution" / "convolution.ipynb", as_version=4)
    answers = {c.metadata["nbgrader"]["grade_id"]: c.source for c in source.cells
               if c.metadata.get("nbgrader", {}).get("solution")}
    answers["conv_backward_naive"] = "from cs231n_lib.conv import conv_backward as conv_backward_naive\n"
    for cell in released.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.metadata.get("nbgrader", {}).get("solution") and grade_id in answers:
            cell.source = answers[grade_id]
    files = {"convolution.ipynb": nbformat.writes(released).encode()}
    result = grade_submission(GradeTask("delegating", "convolution", files, str(REPO))).to_json()
    tests = {t["grade_id"]: t for t in result["notebooks"]["convolution.ipynb"]["tests"]}
    assert {g: (t["score"], t["points"]) for g, t in tests.items()} == {
        "test_conv_output_size": (2, 2), "test_conv_forward_naive": (4, 4), "test_conv_backward_naive": (0, 4),
        "test_conv_forward_dilated": (1, 1)}
    assert {c["outcome"] for c in tests["test_conv_backward_naive"]["cases"]} == {"error"}
    flagged = {f["grade_id"] for f in result["notebooks"]["convolution.ipynb"]["flags"] if f["kind"] == "delegation"}
    assert flagged == {"conv_backward_naive"}


def test_the_kit_cell_gets_the_install_address_of_the_course_file_and_stays_valid_for_nbgrader(tmp_path):
    from nbgrader.utils import compute_checksum

    schedule = kit.Schedule(kit.load_schedule(REPO).states, install_from="https://example.org/kit/cs231n.whl")
    result = kit.build_student_kit(REPO, tmp_path / "kit", schedule)
    nb = nbformat.read(result.out / "assignments" / "convolution" / "convolution.ipynb", as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "code")
    assert 'KIT_SOURCE = "https://example.org/kit/cs231n.whl"' in cell.source.splitlines()
    assert kit.INSTALL_LINE not in cell.source.splitlines()
    assert cell.metadata["nbgrader"]["locked"] and cell.metadata["nbgrader"]["checksum"] == compute_checksum(cell)
    released = nbformat.read(REPO / "assignments" / "convolution" / "convolution.ipynb", as_version=4)
    index = nb.cells.index(cell)
    assert [c.source for i, c in enumerate(nb.cells) if i != index] == \
        [c.source for i, c in enumerate(released.cells) if i != index]


def test_a_kits_folder_others_can_write_is_refused(tmp_path):
    """The grader runs the kit's code (the Numba warm-up): a folder planted or opened by another
    user is never used."""
    shared = tmp_path / "kits"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    with pytest.raises(kit.KitError, match="only it can write"):
        kit.grading_kit(REPO, "convolution", shared)
    assert list(shared.iterdir()) == []


def test_without_a_course_file_the_usual_order_holds_and_nothing_ships(tmp_path):
    root = tmp_path / "course"
    for name in ORDER + ["extra"]:
        (root / "solutions" / name).mkdir(parents=True)
        (root / "solutions" / name / f"{name}.ipynb").write_text("{}")
    schedule = kit.load_schedule(root)
    assert schedule.order == ORDER + ["extra"]
    assert schedule.withheld() == ORDER + ["extra"]
    assert schedule.while_open("convnet").states["convolution"] == "closed"
