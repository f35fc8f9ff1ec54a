"""The conditioning guard: a case whose references disagree stops the release, in one line."""

from pathlib import Path

import nbformat
import pytest

from autograder import conditioning, course
from autograder.checks import get_check
import toycourse

ROOT = Path(__file__).resolve().parents[2]


def test_the_degenerate_layernorm_case_is_caught_and_its_neighbours_are_not():
    kind = get_check("layernorm_backward")
    found = conditioning.reference_disagreements(kind, {"x": (7, 2), "seed": 12, "dtype": "float32"})
    # with D = 2, x_hat is +-1 and the exact dx is ~0: the float32 reference is mostly rounding
    assert {what for what, _, _ in found} == {"float64", "a second order of operations"}
    assert all(key == "dx" and error > 10 * kind.tolerance_for({"dtype": "float32"}) for _, key, error in found)
    for shape in ((7, 4), (3, 5), (4, 6)):
        assert conditioning.reference_disagreements(kind, {"x": shape, "seed": 12, "dtype": "float32"}) == []


@pytest.mark.parametrize("assignment", ["convolution", "im2col", "pooling", "batchnorm", "convnet"])
def test_every_case_of_the_course_is_well_conditioned(assignment):
    assert conditioning.notebook_problems(ROOT / "solutions" / assignment / f"{assignment}.ipynb") == []


def test_second_references_agree_with_the_library():
    """The second order of operations is right (else the guard would cry wolf)."""
    for name, case in [("conv_backward_naive", {"x": (2, 3, 7, 5), "w": (2, 3, 3, 3), "stride": 2, "pad": 1}),
                       ("conv_forward_dilated", {"x": (2, 2, 9, 9), "w": (2, 2, 3, 2), "stride": 1, "pad": 1,
                                                 "dilation": 2}),
                       ("avg_pool_forward_naive", {"x": (2, 2, 5, 6), "pool": (2, 3), "stride": 1}),
                       ("spatial_batchnorm_backward", {"x": (2, 3, 4, 5)}),
                       ("spatial_groupnorm_backward", {"x": (2, 6, 3, 3), "G": 3}),
                       ("layernorm_forward", {"x": (4, 6)})]:
        assert conditioning.reference_disagreements(get_check(name), case) == [], name


def test_release_stops_with_one_line_naming_the_case(tmp_path):
    root = toycourse.course_copy(tmp_path / "repo")
    path = root / "solutions" / "toy" / "toy.ipynb"
    nb = nbformat.read(str(path), as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(
        'check("layernorm_backward", cases=[{"x": (7, 2), "seed": 12, "dtype": "float32"}])',
        metadata={"nbgrader": {"grade": True, "solution": False, "locked": True, "points": 1,
                               "grade_id": "test_ln", "schema_version": 3}}))
    nbformat.write(nb, str(path))
    with pytest.raises(course.CourseError) as raised:
        course.release(root, quiet=True)
    message = str(raised.value)
    assert "\n" not in message and message.startswith("release stopped: toy.ipynb: visible case")
    assert "{'x': (7, 2), 'seed': 12, 'dtype': 'float32'} of layernorm_backward (test cell test_ln)" in message
    assert "change the case" in message
