"""The grading engine end to end, with real sandboxed kernels on the fixture course.

Every submission is graded once (module fixture ``graded``) and the tests read the results in
their JSON form (``TaskResult.to_json``, what the cache holds).
The honest wrong answer (``WRONG``) scores 0.5 of 5: each hostile trick is the same wrong code
plus the trick, and must score no more than that.
"""

import json
import time

import numpy as np
import pytest
from autograder_testkit import (
    FORWARD_NO_BIAS, FORWARD_RIGHT, RIGHT, SIZE_RIGHT, SIZE_WRONG, student_nb, submission,
)

import nbformat

from autograder import engine
from autograder.checks import get_check
from autograder.sandbox import Limits
from autograder.testspec import parse_test_cell

pytestmark = pytest.mark.slow

LIMITS = Limits(case_timeout=2.0, cell_timeout=20.0, grace_seconds=1.0, flood_bytes=8 << 20)
WRONG = {"conv_output_size": SIZE_WRONG, "conv_forward_naive": FORWARD_NO_BIAS}
WRONG_SCORE = 0.5


def forward_right_but(trap):
    """FORWARD_RIGHT that runs ``trap`` (one line) first when the input has N == 3 (hidden case 3)."""
    return FORWARD_RIGHT.replace("    s, p = conv_param", f"    if x.shape[0] == 3:\n        {trap}\n    s, p = conv_param", 1)


FAKE_DRIVER = '''
import json as _json, re as _re, numpy as _np
def _fake(lines):
    code = "".join(lines)
    if "kernel_side" not in code:
        return lines
    a = _re.findall(r"'([^']*)'", code)
    return ["import json, numpy\\n",
            f"numpy.savez({a[3]!r}, out=numpy.ones((2, 3, 2, 2)), size=numpy.array(8), raised=numpy.array(''))\\n",
            f"json.dump({{'nonce': {a[5]!r}, 'status': 'ok', 'problems': {{}}}}, open({a[4]!r}, 'w'))\\n"]
get_ipython().input_transformers_cleanup.append(_fake)
'''

CLEVER = '''
class Clever:
    def __eq__(self, other): return True
    def __array__(self, *a, **k): raise RuntimeError("no")
    def __array_function__(self, *a, **k): return True
    def __float__(self): return 8.0
def conv_output_size(W, F, S, P):
    return Clever()
'''

SUBCLASS = FORWARD_NO_BIAS + '''
class Always(np.ndarray):
    def __sub__(self, other): return np.zeros_like(np.asarray(other))
    def __eq__(self, other): return np.ones(np.shape(other), bool)
_inner = conv_forward_naive
def conv_forward_naive(x, w, b, conv_param):
    out, cache = _inner(x, w, b, conv_param)
    return out.view(Always), cache
'''

# Students who try to carry the hidden cases' inputs out through the feedback. Each marks what it
# smuggles with "LEAK" and spells the inputs (W, F, S, P of conv_output_size, the shape of x of
# conv_forward_naive) in a form of its own; none of it may reach what the student reads.
VISIBLE_X = "[(2, 3, 4, 4), (1, 1, 5, 5)]"
STASH_SIZE = (  # right answers, keeping every case's inputs in a global
    "STASH = []\n"
    "def conv_output_size(W, F, S, P):\n"
    "    STASH.append((W, F, S, P))\n"
    "    if (W + 2 * P - F) % S:\n"
    "        raise ValueError('bad')\n"
    "    return (W + 2 * P - F) // S + 1\n")
LEAKS = {
    # a result that is a string built from the inputs; an object whose class is named after them
    "leak_string": {
        "conv_output_size": "def conv_output_size(W, F, S, P):\n"
                            "    return type(f'LEAK_{W}_{F}_{S}_{P}', (), {})()\n",
        "conv_forward_naive": "def conv_forward_naive(x, w, b, conv_param):\n"
                              "    return f'LEAK {x.shape} {w.shape} {conv_param}', None\n"},
    # exceptions of a class named after the inputs, raised in a function named after them
    "leak_exception": {
        "conv_output_size": "def conv_output_size(W, F, S, P):\n"
                            "    ns = {}\n"
                            "    exec(f'def LEAK_{W}_{F}_{S}_{P}():\\n    raise LEAK_{W}_{F}_{S}_{P}_Error()', ns)\n"
                            "    ns[f'LEAK_{W}_{F}_{S}_{P}_Error'] = type(f'LEAK_{W}_{F}_{S}_{P}_Error', (Exception,), {})\n"
                            "    ns[f'LEAK_{W}_{F}_{S}_{P}']()\n",
        "conv_forward_naive": "def conv_forward_naive(x, w, b, conv_param):\n"
                              "    raise type('LEAK_' + '_'.join(map(str, x.shape)), (ValueError,), {})('LEAK')\n"},
    # inputs kept in a global and in a file (which outlives a kernel restart: the last hidden size
    # case kills the kernel), raised in the later VISIBLE cases of conv_forward_naive
    "leak_stash": {
        "conv_output_size": STASH_SIZE.replace(
            "    STASH.append((W, F, S, P))\n",
            "    STASH.append((W, F, S, P))\n"
            "    open('stash.txt', 'a').write(f'{W}_{F}_{S}_{P} ')\n"
            "    if (W, S) == (10, 2):\n"
            "        import os; os._exit(1)\n"),
        "conv_forward_naive": "def conv_forward_naive(x, w, b, conv_param):\n"
                              "    raise ValueError('LEAK ' + open('stash.txt').read() + repr(STASH))\n"},
    # outputs whose shape spells the inputs: the hidden case's own, or (visible cases) stashed ones
    "leak_shape": {
        "conv_output_size": STASH_SIZE,
        "conv_forward_naive": "def conv_forward_naive(x, w, b, conv_param):\n"
                              f"    if str(x.shape) in {VISIBLE_X!r}:\n"
                              "        return np.zeros(STASH[2]), None\n"
                              "    return np.zeros(x.shape + w.shape), None\n"},
    # right outputs scaled by a number spelling the inputs (3275 for x (3, 2, 7, 5), 3251 for
    # W=32, F=5, S=1): the scale hint would print it
    "leak_scale": {
        "conv_output_size": STASH_SIZE,
        "conv_forward_naive": FORWARD_RIGHT.replace("    return out, (x, w, b, conv_param)\n", (
            "    W_, F_, S_, P_ = STASH[2]\n"
            f"    k = 100 * W_ + 10 * F_ + S_ if str(x.shape) in {VISIBLE_X!r} else int(''.join(map(str, x.shape)))\n"
            "    return out * k, (x, w, b, conv_param)\n"))},
    # an object that is no array, of a class named after the inputs, and a forged status file
    # whose "problems" spell them
    "leak_problems": {
        "conv_output_size": SIZE_RIGHT + (
            "import cs231n_checks.kernel_side as _side, json as _json, os as _os\n"
            "_real = _side.run_case\n"
            "def _forged(name, in_path, out_path, status_path, nonce):\n"
            "    _real(name, in_path, out_path, status_path, nonce)\n"
            "    if name != 'conv_output_size':\n"
            "        return\n"
            "    with np.load(in_path) as data:\n"
            "        spelled = '_'.join(str(data[k].item()) for k in 'WFSP')\n"
            "    np.savez(out_path + '.tmp.npz')\n"
            "    _os.replace(out_path + '.tmp.npz', out_path)\n"
            "    problems = {k: 'LEAK_' + spelled for k in ('size', 'error', 'type')}\n"
            "    _json.dump({'nonce': nonce, 'status': 'ok', 'problems': problems}, open(status_path, 'w'))\n"
            "_side.run_case = _forged\n"),
        "conv_forward_naive": "def conv_forward_naive(x, w, b, conv_param):\n"
                              "    return type('LEAK_' + '_'.join(map(str, x.shape)), (), {})(), None\n"},
}

HOSTILE = {
    "numpy_patched": {**WRONG, "conv_output_size": SIZE_WRONG + (
        "np.allclose = lambda *a, **k: True\nnp.array_equal = lambda *a, **k: True\n"
        "np.testing.assert_allclose = lambda *a, **k: None\nnp.max = lambda *a, **k: 0.0\n")},
    "check_replaced": {**WRONG, "conv_output_size": SIZE_WRONG + (
        "check = lambda *a, **k: None\nimport builtins\nbuiltins.AssertionError = type('Nope', (Exception,), {})\n")},
    "blank_transformer": {**WRONG, "conv_output_size": SIZE_WRONG + (
        "get_ipython().input_transformers_cleanup.append(lambda lines: [])\n")},
    "fake_driver": {**WRONG, "conv_output_size": SIZE_WRONG + FAKE_DRIVER},
    "harness_patched": {**WRONG, "conv_output_size": SIZE_WRONG + (
        "import cs231n_checks.kernel_side as _s\n_s.run_case = lambda *a, **k: None\n")},
    "judge_patched": {**WRONG, "conv_output_size": SIZE_WRONG + (
        "import autograder.checks.base as _b, autograder.compare as _c\n"
        "_b.judge = lambda *a, **k: (True, [], [], 0.0)\n"
        "_c.compare_output = lambda *a, **k: _c.Comparison('x', True, 'ok')\n"
        "_c.coerce = lambda v: (v, None)\n")},
    "clever_object": {**WRONG, "conv_output_size": CLEVER},
    "ndarray_subclass": {**WRONG, "conv_forward_naive": SUBCLASS},
    "huge_result": {**WRONG, "conv_forward_naive": "def conv_forward_naive(x, w, b, conv_param):\n"
                    "    return np.zeros((4000, 1000)), None\n"},
}

SUBMISSIONS = {
    "right": RIGHT,
    "wrong": WRONG,
    "stub": {},
    "crash_exit": {"conv_output_size": SIZE_RIGHT, "conv_forward_naive": forward_right_but("import os; os._exit(3)")},
    "crash_kill9": {"conv_output_size": SIZE_RIGHT, "conv_forward_naive": forward_right_but("import os, signal; os.kill(os.getpid(), signal.SIGKILL)")},
    "crash_segfault": {"conv_output_size": SIZE_RIGHT, "conv_forward_naive": forward_right_but("import ctypes; ctypes.string_at(0)")},
    "toplevel_crash": {"conv_output_size": SIZE_RIGHT + "import os\nos._exit(1)\n", "conv_forward_naive": FORWARD_RIGHT},
    "endless_loop": {"conv_output_size": SIZE_RIGHT, "conv_forward_naive": forward_right_but("while True: pass")},
    "always_loops": {"conv_output_size": SIZE_RIGHT, "conv_forward_naive": "def conv_forward_naive(x, w, b, conv_param):\n    while True:\n        pass\n"},
    "swallows_interrupt": {"conv_output_size": SIZE_RIGHT, "conv_forward_naive": forward_right_but(
        "import time\n        while True:\n            try:\n                time.sleep(10)\n            except BaseException:\n                pass")},
    "flood": {"conv_output_size": SIZE_RIGHT, "conv_forward_naive": forward_right_but(
        "import time\n        for _ in range(400):\n            print('x' * 1_000_000)\n            time.sleep(0.05)")},
    "raises": {"conv_output_size": SIZE_RIGHT, "conv_forward_naive": forward_right_but("raise IndexError('index 9 is out of bounds')")},
    "raises_visible": {  # in a visible case before any hidden one (size), and in one after (forward)
        "conv_output_size": SIZE_RIGHT.replace("    if (W", "    if W == 7:\n        raise IndexError('index 9 is out of bounds')\n    if (W", 1),
        "conv_forward_naive": FORWARD_RIGHT.replace(
            "    s, p = conv_param", "    if x.shape[0] == 2:\n        raise IndexError('index 9 is out of bounds')\n    s, p = conv_param", 1)},
    "leaky": {"conv_output_size": "STASH = []\n" + SIZE_RIGHT.replace("    if (W", "    STASH.append((W, F, S, P))\n    if (W"),
              "conv_forward_naive": "print('STOLEN', STASH)\n" + forward_right_but("raise ValueError('STOLEN' + repr(x.ravel()[:4]))")},
    "noisy": {"conv_output_size": SIZE_RIGHT + "import sys, warnings\nwarnings.warn('a warning')\nprint('to stderr', file=sys.stderr)\n",
              "conv_forward_naive": FORWARD_RIGHT.replace("    return out", "    print('debug', file=__import__('sys').stderr)\n    __import__('warnings').warn('w')\n    return out")},
    **{f"hostile_{k}": v for k, v in HOSTILE.items()},
    **LEAKS,
}


def _tampered_metadata(root):
    """RIGHT, but with every trick on the notebook's structure nbgrader falls for."""
    nb = student_nb(root, RIGHT)
    for cell in nb.cells:
        cell.metadata.setdefault("tags", []).append("skip-execution")
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade"):
            cell.source = "check = None\n"
            meta["points"] = 100
        if meta.get("grade_id") == "setup":
            cell.source = "def check(*a, **k):\n    pass\n"
    dup = nbformat.from_dict(json.loads(json.dumps(nb.cells[2])))
    dup.id = 'duplicate'
    nb.cells.append(dup)  # a duplicated cell
    nb.metadata["kernelspec"]["name"] = "nonexistent"
    return {"conv.ipynb": nbformat.writes(nb).encode()}


@pytest.fixture(scope="module")
def graded(course):
    results = {}
    for name, sources in SUBMISSIONS.items():
        began = time.perf_counter()
        results[name] = engine.grade_submission(engine.GradeTask(name, "conv", submission(course, sources), str(course), limits=LIMITS)).to_json()
        print(f"{name}: {time.perf_counter() - began:.1f} s")
    results["tampered_metadata"] = engine.grade_submission(
        engine.GradeTask("tampered_metadata", "conv", _tampered_metadata(course), str(course), limits=LIMITS)).to_json()
    return results


def outcomes(result, test_index):
    return [c["outcome"] for c in result["notebooks"]["conv.ipynb"]["tests"][test_index]["cases"]]


def test_right_answer_scores_full_marks(graded):
    r = graded["right"]
    assert r["status"] == "graded" and r["error"] is None
    assert (r["score"], r["max_score"]) == (5.0, 5.0)
    nb = r["notebooks"]["conv.ipynb"]
    assert [t["grade_id"] for t in nb["tests"]] == ["test_conv_output_size", "test_conv_forward_naive"]
    assert [len(t["cases"]) for t in nb["tests"]] == [4, 4]
    assert [c["hidden"] for c in nb["tests"][1]["cases"]] == [False, False, True, True]
    assert nb["solution_sources"] == RIGHT
    assert nb["flags"] == []
    statuses = {c["index"]: c["status"] for c in nb["cells"]}
    assert statuses == {0: "markdown", 1: "ok", 2: "ok", 3: "skipped", 4: "test", 5: "ok", 6: "ok", 7: "test"}
    # the ordinary cell ran before any hidden case (hidden cases run after the last cell): its
    # outputs are shown
    assert not any("outputs of cells that run after hidden" in o.get("text", "")
                   for o in nb["executed_notebook"]["cells"][5]["outputs"])
    t = r["timings"]
    assert t["kernel_starts"] == 1 and 0 < t["kernel_start"] < t["total"]
    assert isinstance(t["numba_compile"], float) and 0 <= t["numba_compile"] < t["total"]
    assert r["protections"]["applied"]["rlimits"]["RLIMIT_AS"] == LIMITS.memory_mb << 20


def test_scores_split_points_evenly_over_cases(graded):
    r = graded["wrong"]
    nb = r["notebooks"]["conv.ipynb"]
    assert outcomes(r, 0) == ["passed", "wrong", "wrong", "wrong"]
    assert outcomes(r, 1) == ["wrong"] * 4
    assert [t["score"] for t in nb["tests"]] == [0.5, 0.0]
    assert r["score"] == WRONG_SCORE and r["max_score"] == 5.0
    assert all("the bias is missing" in " ".join(c["hints"]) for c in nb["tests"][1]["cases"])
    # a visible case before any hidden one: the full message
    size = nb["tests"][0]["cases"][1]
    assert not size["limited"] and size["message"] == "size: 1 of 1 entries differ; error: as expected; type: as expected"
    # the visible cases of every test cell run before any hidden case: full messages for all of
    # them, fixed words for the hidden ones
    forward = nb["tests"][1]["cases"][0]
    assert not forward["limited"] and forward["message"].startswith("out: relative error ")
    hidden = nb["tests"][1]["cases"][2]
    assert hidden["limited"] and hidden["message"] == "out: wrong values"
    for test in nb["tests"]:
        assert [c["limited"] for c in test["cases"]] == [False, False, True, True]


def test_stub_scores_zero_with_not_implemented(graded):
    nb = graded["stub"]["notebooks"]["conv.ipynb"]
    assert graded["stub"]["score"] == 0.0
    for test in nb["tests"]:
        assert {c["outcome"] for c in test["cases"]} == {"error"}
        assert all("not implemented" in c["message"] for c in test["cases"])
    assert {c["index"]: c["status"] for c in nb["cells"]}[5] == "error"  # the demo cell calls the stub


@pytest.mark.parametrize("name", ["crash_exit", "crash_kill9", "crash_segfault"])
def test_a_dead_kernel_costs_only_the_case_it_hit(graded, name):
    r = graded[name]
    assert outcomes(r, 0) == ["passed"] * 4
    assert outcomes(r, 1) == ["passed", "passed", "crashed", "passed"]
    assert r["score"] == pytest.approx(2 + 3 * 3 / 4)
    assert r["timings"]["kernel_starts"] == 2


def test_a_cell_that_kills_the_kernel_is_recorded_and_skipped_on_replay(graded):
    r = graded["toplevel_crash"]
    nb = r["notebooks"]["conv.ipynb"]
    assert {c["index"]: c["status"] for c in nb["cells"]}[2] == "crashed"
    assert {c["outcome"] for c in nb["tests"][0]["cases"]} == {"error"}  # conv_output_size never defined
    assert "NameError" in nb["tests"][0]["cases"][0]["message"]
    assert outcomes(r, 1) == ["passed"] * 4
    assert r["score"] == 3.0


def test_timeouts_cost_only_their_case(graded):
    for name in ("endless_loop", "swallows_interrupt"):
        r = graded[name]
        assert outcomes(r, 1) == ["passed", "passed", "timeout", "passed"], name
        case = r["notebooks"]["conv.ipynb"]["tests"][1]["cases"][2]
        assert LIMITS.case_timeout <= case["seconds"] < LIMITS.case_timeout + LIMITS.grace_seconds + 2
    assert graded["endless_loop"]["timings"]["kernel_starts"] == 1  # the interrupt was enough
    assert graded["swallows_interrupt"]["timings"]["kernel_starts"] == 2  # killed after the grace period


def test_two_timeouts_in_a_row_end_the_test_cell(graded):
    r = graded["always_loops"]
    assert outcomes(r, 0) == ["passed"] * 4
    assert outcomes(r, 1) == ["timeout"] * 4
    cases = r["notebooks"]["conv.ipynb"]["tests"][1]["cases"]
    assert [c["seconds"] > 0 for c in cases] == [True, True, False, False]
    assert "not run" in cases[3]["message"] and r["score"] == 2.0


def test_output_flood_kills_the_kernel_and_costs_the_case(graded):
    r = graded["flood"]
    assert outcomes(r, 1) == ["passed", "passed", "crashed", "passed"]
    assert "MB" in r["notebooks"]["conv.ipynb"]["tests"][1]["cases"][2]["message"]


def test_student_exceptions_name_the_line(graded):
    case = graded["raises"]["notebooks"]["conv.ipynb"]["tests"][1]["cases"][2]
    assert case["outcome"] == "error" and case["hidden"]
    assert case["message"] == "IndexError (line 3) (messages of hidden cases are not shown)"
    tests = graded["raises_visible"]["notebooks"]["conv.ipynb"]["tests"]
    assert outcomes(graded["raises_visible"], 0) == ["passed", "error", "passed", "passed"]
    assert tests[0]["cases"][1]["message"] == "IndexError: index 9 is out of bounds (line 3 of conv_output_size)"
    # the forward test's visible cases run before the size test's hidden ones: full messages
    assert tests[1]["cases"][0]["message"].startswith("IndexError: index 9 is out of bounds (line ")


def test_hidden_inputs_cannot_be_carried_out(graded):
    nb = graded["leaky"]["notebooks"]["conv.ipynb"]
    assert outcomes(graded["leaky"], 1) == ["passed", "passed", "error", "passed"]
    outputs = [o for c in nb["executed_notebook"]["cells"] for o in c.get("outputs", [])]
    text = json.dumps(outputs) + json.dumps(nb["tests"])
    assert "(32, 5, 1, 2)" not in text  # a hidden case's inputs
    # the print runs before any hidden case: it shows the visible cases' inputs, which is fine
    assert "STOLEN [(10, 3, 1, 0), (7, 3, 2, 1), (10, 3, 1, 0)]" in text


def test_warnings_and_stderr_never_fail(graded):
    assert graded["noisy"]["score"] == 5.0


@pytest.mark.parametrize("trick", sorted(HOSTILE))
def test_hostile_tricks_gain_nothing(graded, trick):
    r = graded[f"hostile_{trick}"]
    assert r["status"] == "graded"
    assert r["score"] <= WRONG_SCORE, (trick, [outcomes(r, i) for i in range(2)])


def test_how_tricks_are_classified(graded):
    assert set(outcomes(graded["hostile_blank_transformer"], 0)) == {"tampered"}
    assert set(outcomes(graded["hostile_harness_patched"], 0)) == {"tampered"}
    # forged outputs are judged like any other, never trusted
    assert set(outcomes(graded["hostile_fake_driver"], 0)) <= {"passed", "wrong"}
    assert outcomes(graded["hostile_judge_patched"], 0) == ["passed", "wrong", "wrong", "wrong"]
    clever = graded["hostile_clever_object"]["notebooks"]["conv.ipynb"]["tests"][0]["cases"][0]
    assert clever["outcome"] == "wrong" and "Clever" in clever["message"]
    huge = graded["hostile_huge_result"]["notebooks"]["conv.ipynb"]["tests"][1]["cases"]
    assert {c["outcome"] for c in huge} == {"wrong"}
    # a visible case (before any hidden one): the size is the student's own
    assert huge[0]["message"].startswith("the result takes ") and \
        huge[0]["message"].endswith(" MB, far more than the expected one: check its shape")
    kinds = {f["kind"] for f in graded["hostile_harness_patched"]["notebooks"]["conv.ipynb"]["flags"]}
    assert "tampering" in kinds


def test_notebook_structure_tricks_have_no_effect(graded):
    r, right = graded["tampered_metadata"], graded["right"]
    assert r["score"] == 5.0 and r["max_score"] == 5.0
    assert [t["cases"] for t in r["notebooks"]["conv.ipynb"]["tests"]] == \
        [[dict(c, seconds=c2["seconds"]) for c, c2 in zip(t["cases"], t2["cases"])]
         for t, t2 in zip(right["notebooks"]["conv.ipynb"]["tests"], r["notebooks"]["conv.ipynb"]["tests"])]


def student_facing_text(result):
    """Everything of a result the student reads: the graded notebook's outputs (the feedback page
    renders them) and the cases' descriptions, messages and hints. Not the student's own sources."""
    nb = result["notebooks"]["conv.ipynb"]
    parts = [json.dumps(o) for c in nb["executed_notebook"]["cells"] for o in c.get("outputs", [])]
    for test in nb["tests"]:
        for case in test["cases"]:
            parts += [case["description"], case["message"], *case["hints"]]
    return "\n".join(parts)


def hidden_cases(course):
    """(check name, case) of every hidden case of the fixture course's source notebook."""
    source = nbformat.read(str(course / "solutions" / "conv" / "conv.ipynb"), as_version=4)
    return [(call.name, case) for cell in source.cells if cell.cell_type == "code" and "check(" in cell.source
            for call in parse_test_cell(cell.source) if call.hidden for case in call.cases]


# The hidden inputs as LEAKS spells them, and as Python prints tuples of them
HIDDEN_SPELLINGS = ["32_5_1_2", "10_3_2_0", "32, 5, 1, 2", "10, 3, 2, 0", "3_2_7_5", "1_2_6_6", "3, 2, 7, 5",
                    "1, 2, 6, 6", "4, 2, 3, 3", "2, 2, 3, 3", "3275", "1266", "3251", "3, 4, 4, 3"]


def assert_nothing_hidden(text, course):
    descriptions = [get_check(name).describe(case) for name, case in hidden_cases(course)]
    assert "W=32, F=5, S=1, P=2" in descriptions and len(descriptions) == 4  # the real rendered forms
    for description in descriptions:
        assert description not in text
    for spelled in HIDDEN_SPELLINGS:
        assert spelled not in text
    assert "BEGIN HIDDEN" not in text
    for seed in (11, 12):
        assert f'"seed": {seed}' not in text and f"seed={seed}" not in text and f"'seed': {seed}" not in text
    for name, case in hidden_cases(course):
        inputs = get_check(name).make_inputs(case)
        for value in inputs.values():
            for number in np.asarray(value, dtype=np.float64).ravel()[:5]:
                if abs(number) > 1e-3 and not float(number).is_integer():
                    assert f"{number:.6f}" not in text and f"{number:.4g}" not in text


def test_feedback_never_reveals_hidden_tests(graded, course):
    for name in sorted(graded):
        assert_nothing_hidden(student_facing_text(graded[name]), course), name
        cells = graded[name]["notebooks"]["conv.ipynb"]["executed_notebook"]["cells"]
        assert "BEGIN HIDDEN" not in json.dumps(cells)
    cell = graded["wrong"]["notebooks"]["conv.ipynb"]["executed_notebook"]["cells"][7]
    assert cell["source"].count("check(") == 1  # visible part only
    feedback = cell["outputs"][0]["text"]
    # every visible case ran before any hidden one: no "short verdicts" note
    assert feedback.startswith("test_conv_forward_naive: 0 / 3 points (0 of 4 cases passed)\ncase 1 (visible;")
    assert engine.LIMITED_NOTE not in feedback
    assert "case 1 (visible; conv_forward_naive: x (2, 3, 4, 4), w (3, 3, 4, 4), stride=2, pad=1, float64): WRONG" in feedback
    assert "case 3 (conv_forward_naive, hidden case 1): WRONG\n    out: wrong values\n" in feedback
    assert "case 4 (conv_forward_naive, hidden case 2): WRONG" in feedback
    size = graded["wrong"]["notebooks"]["conv.ipynb"]["executed_notebook"]["cells"][4]["outputs"][0]["text"]
    assert "case 3 (conv_output_size, hidden case 1): WRONG\n    size: wrong values; error: as expected; " \
        "type: as expected\n" in size
    assert engine.LIMITED_NOTE not in size  # its visible cases ran before the hidden ones


def _cases(result, test):
    return result["notebooks"]["conv.ipynb"]["tests"][test]["cases"]


@pytest.mark.parametrize("name", sorted(LEAKS))
def test_hostile_students_cannot_carry_hidden_inputs_out(graded, course, name):
    r = graded[name]
    assert r["status"] == "graded"
    assert_nothing_hidden(student_facing_text(r), course)
    for test in (0, 1):
        for case in _cases(r, test):
            assert case["limited"] == case["hidden"]  # every visible case runs before any hidden one
            if case["limited"]:  # nothing the student's code wrote, only fixed words
                assert "LEAK" not in case["message"] + " ".join(case["hints"]), (name, case)


def test_what_the_hostile_students_see(graded):
    """The smuggling does happen (visible cases before any hidden one show it: they are the
    student's own inputs), and the limited messages still say what went wrong."""
    string = graded["leak_string"]
    assert outcomes(string, 0) == ["wrong"] * 4 and outcomes(string, 1) == ["wrong"] * 4
    assert "type: expected 'int', found 'LEAK_10_3_1_0'" in _cases(string, 0)[0]["message"]
    assert _cases(string, 0)[2]["message"] == "size: wrong values; error: as expected; type: wrong value"
    # visible cases run before any hidden one: they show what the student's code returned
    assert _cases(string, 1)[0]["message"].startswith("out: expected 'array of shape (2, 3, 2, 2)', found \"LEAK")
    assert _cases(string, 1)[2]["message"] == "out: wrong value"

    exc = graded["leak_exception"]
    assert outcomes(exc, 0) == ["error"] * 4 and outcomes(exc, 1) == ["error"] * 4
    assert _cases(exc, 0)[0]["message"].startswith("LEAK_10_3_1_0_Error: ")
    assert _cases(exc, 0)[2]["message"] == "an exception (line 2) (messages of hidden cases are not shown)"
    assert _cases(exc, 1)[0]["message"] == "LEAK_2_3_4_4: LEAK (line 2 of conv_forward_naive)"
    assert _cases(exc, 1)[2]["message"] == "an exception (line 2) (messages of hidden cases are not shown)"

    stash = graded["leak_stash"]
    assert outcomes(stash, 0) == ["passed", "passed", "passed", "crashed"] and outcomes(stash, 1) == ["error"] * 4
    assert stash["timings"]["kernel_starts"] == 2  # the stash in the file outlived the restart
    # the visible forward cases ran before the size test's hidden cases: the stash holds
    # visible inputs only
    assert _cases(stash, 1)[0]["message"] == ("ValueError: LEAK 10_3_1_0 7_3_2_1 10_3_1_0 [(10, 3, 1, 0), "
                                              "(7, 3, 2, 1), (10, 3, 1, 0)] (line 2 of conv_forward_naive)")
    assert _cases(stash, 1)[2]["message"] == "ValueError (line 2) (messages of hidden cases are not shown)"

    shape = graded["leak_shape"]
    assert outcomes(shape, 0) == ["passed"] * 4 and outcomes(shape, 1) == ["wrong"] * 4
    assert _cases(shape, 1)[0]["message"] == "out: expected shape (2, 3, 2, 2), found (10, 3, 1, 0)"
    assert _cases(shape, 1)[2]["message"] == "out: wrong shape" and _cases(shape, 1)[2]["hints"] == []

    scale = graded["leak_scale"]
    assert outcomes(scale, 1) == ["wrong"] * 4
    # visible cases (their own inputs) show the scale; hidden ones never ("3275 times ..." is not shown)
    assert [c["hints"] for c in _cases(scale, 1)][2:] == [[]] * 2
    assert _cases(scale, 1)[0]["hints"] == ["the result is 1031 times the expected one: look for a missing or extra scale factor"]
    assert _cases(scale, 1)[3]["message"] == "out: wrong values"

    problems = graded["leak_problems"]
    assert outcomes(problems, 0) == ["wrong"] * 4 and outcomes(problems, 1) == ["wrong"] * 4
    assert "LEAK_10_3_1_0" in _cases(problems, 0)[0]["message"]
    assert _cases(problems, 0)[2]["message"] == "size: not an array; error: not an array; type: not an array"
    assert _cases(problems, 1)[2]["message"] == "out: not an array"


def test_result_is_json_serialisable_and_notebook_valid(graded):
    r = graded["right"]
    assert json.loads(json.dumps(r)) == r
    nbformat.validate(nbformat.from_dict(r["notebooks"]["conv.ipynb"]["executed_notebook"]))


# --- submissions that cannot be graded ----------------------------------------------------------


def test_course_files_outside_the_allowlist_are_hidden(course):
    (course / "tools").mkdir(exist_ok=True)
    (course / "tools" / "build.py").write_text("hidden tests here")
    spy = SIZE_RIGHT + (
        "import os\nfor p in ['tools/build.py', 'solutions/conv/conv.ipynb', 'assignments/conv/conv.ipynb']:\n"
        f"    try:\n        open(os.path.join({str(course)!r}, p)).read(); print('read', p)\n"
        "    except OSError:\n        print('denied', p)\n")
    r = engine.grade_submission(engine.GradeTask("spy", "conv", submission(course, {"conv_output_size": spy}),
                                                 str(course), limits=LIMITS)).to_json()
    text = r["notebooks"]["conv.ipynb"]["executed_notebook"]["cells"][2]["outputs"][0]["text"]
    assert text.split("\n")[:3] == ["denied tools/build.py", "denied solutions/conv/conv.ipynb",
                                     "read assignments/conv/conv.ipynb"]
    assert str(course / "tools") in engine.course_hidden_paths(course)


def test_empty_submission_fails_with_a_reason(course):
    r = engine.grade_submission(engine.GradeTask("empty", "conv", {}, str(course), limits=LIMITS)).to_json()
    assert r["status"] == "failed" and "empty" in r["error"]
    assert r["notebooks"]["conv.ipynb"]["status"] == "missing"
    assert (r["score"], r["max_score"]) == (0.0, 5.0)


def test_malformed_notebook_is_unreadable_not_a_crash(course):
    r = engine.grade_submission(engine.GradeTask("bad", "conv", {"conv.ipynb": b'{"cells": ['}, str(course), limits=LIMITS)).to_json()
    nb = r["notebooks"]["conv.ipynb"]
    assert r["status"] == "failed" and nb["status"] == "unreadable"
    assert "not valid JSON" in nb["message"] and nb["max_score"] == 5.0


def test_renamed_notebook_is_graded_with_a_note(course):
    files = {"conv-final (1).ipynb": submission(course, RIGHT)["conv.ipynb"], "notes.txt": b"hi"}
    r = engine.grade_submission(engine.GradeTask("renamed", "conv", files, str(course), limits=LIMITS)).to_json()
    assert r["score"] == 5.0
    assert r["notebooks"]["conv.ipynb"]["submitted_as"] == "conv-final (1).ipynb"
    assert any("graded in its place" in n for n in r["notes"])


def test_validate_runs_visible_cases_only(course, tmp_path):
    path = tmp_path / "conv.ipynb"
    nbformat.write(student_nb(course, WRONG), str(path))
    r = engine.validate_notebook(path, course, limits=LIMITS).to_json()
    tests = r["notebooks"]["conv.ipynb"]["tests"]
    assert [[c["hidden"] for c in t["cases"]] for t in tests] == [[False, False], [False, False]]
    assert [[c["outcome"] for c in t["cases"]] for t in tests] == [["passed", "wrong"], ["wrong", "wrong"]]
    assert r["score"] == 1.0 and r["max_score"] == 5.0


def test_calibrate_times_the_solutions(course):
    limits = Limits(case_timeout_floor=4.0, timeout_multiple=10.0, cell_timeout_floor=7.0)
    cal = engine.calibrate(course, "conv", limits=limits)
    assert cal["score"] == cal["max_score"] == 5.0
    assert len(cal["cases"]) == 8 and len(cal["cells"]) == 4  # setup, 2 solutions, demo (not the skipped cell)
    for entry in cal["cases"].values():
        assert entry["outcome"] == "passed"
        assert entry["timeout"] == pytest.approx(max(4.0, 10 * entry["seconds"]), abs=0.01)
    assert all(e["timeout"] >= 7.0 for e in cal["cells"].values())
    assert cal["key"] == engine._sources_digest(course, "conv", limits) != engine._sources_digest(course, "conv")
    # a calibration is used: a tiny limit makes the slow case time out
    tight = json.loads(json.dumps(cal))
    tight["cases"]["conv.ipynb:test_conv_forward_naive:3"]["timeout"] = 0.5
    r = engine.grade_submission(engine.GradeTask("s", "conv", submission(course, {
        "conv_output_size": SIZE_RIGHT, "conv_forward_naive": forward_right_but("import time; time.sleep(1.5)")}),
        str(course), limits=LIMITS, calibration=tight)).to_json()
    assert outcomes(r, 1) == ["passed", "passed", "timeout", "passed"]


def test_grader_version_is_stable():
    assert engine.grader_version() == engine.grader_version()
    assert engine.grader_version().startswith("0.1.0+")


def test_cached_calibration_is_reused(course, tmp_path, monkeypatch):
    fake = {"key": engine._sources_digest(course, "conv"), "cases": {}, "cells": {}}
    (tmp_path / f"calibration-conv-{fake['key']}.json").write_text(json.dumps(fake))
    monkeypatch.setattr(engine, "calibrate", lambda *a, **k: pytest.fail("calibrated again"))
    assert engine.cached_calibration(course, "conv", tmp_path) == fake


def test_a_solution_importing_the_students_own_module_is_graded_and_flagged(course):
    """helper.py sent with the notebook runs (it is the student's work) but is analysed like a cell."""
    helper = ("import cs231n_lib\n"
              "def forward(x, w, b, conv_param):\n"
              "    return cs231n_lib.conv_forward(x, w, b, conv_param)\n")
    sources = {"conv_output_size": SIZE_RIGHT,
               "conv_forward_naive": "from helper import forward as conv_forward_naive\n"}
    files = dict(submission(course, sources), **{"helper.py": helper.encode()})
    # its first case imports Numba and loads the library's compiled kernels (about 2 s here)
    limits = Limits(**{**LIMITS.__dict__, "case_timeout": 20.0})
    result = engine.grade_submission(engine.GradeTask("helper", "conv", files, str(course), limits=limits)).to_json()
    nb = result["notebooks"]["conv.ipynb"]
    assert result["status"] == "graded" and result["score"] == result["max_score"]
    assert [(f["kind"], f["grade_id"]) for f in nb["flags"]] == [("delegation", "conv_forward_naive")]
    assert nb["flags"][0]["detail"] == "imports helper from the submitted helper.py, which uses cs231n_lib.conv_forward"


def test_an_optional_parts_feedback_says_it_is_extra_credit():
    import dataclasses

    from autograder.engine import feedback_text
    from autograder.results import TestResult

    case = {"check": "conv_forward_dilated", "hidden": False, "description": "d=2", "outcome": "passed",
            "message": "", "hints": []}
    test = TestResult.from_json({"grade_id": "test_conv_forward_dilated", "points": 1.0, "score": 1.0,
                                 "optional": True, "cases": [case]})
    assert feedback_text(test).splitlines()[0] == (
        "test_conv_forward_dilated: 1 of 1 point of extra credit, an optional part outside the notebook's "
        "maximum; 1 of 1 cases passed")
    assert "extra credit" not in feedback_text(dataclasses.replace(test, optional=False))


def test_a_run_loads_an_assignments_material_once_per_process_and_key(tmp_path):
    """With the coordinator's material key, a worker reads the notebooks, the released data files
    and the kit once: a second task of the same run reads nothing (a file changed behind the run's
    back is not seen), a new key (a new run) finds everything again, and a direct call without a
    key always looks at the files."""
    import toycourse

    root = toycourse.course_copy(tmp_path / "repo")
    data = root / "assignments" / "toy" / "weights.txt"
    data.write_text("v1")
    first = engine.GradeTask("s", "toy", {}, str(root), material_key="run-1")
    loaded = engine._loaded(root, "toy", first.material_key)
    kit_dir, extra = engine._kit_and_extra_files(loaded, first)
    assert extra == {"weights.txt": b"v1"}
    data.write_text("v2")
    (root / "solutions" / "toy" / "toy.ipynb").write_text("not a notebook any more")
    again = engine._loaded(root, "toy", "run-1")
    assert again is loaded and engine._kit_and_extra_files(again, first) == (kit_dir, {"weights.txt": b"v1"})
    # a new run sees the files as they are (here: a broken source notebook, the grader's fault)
    with pytest.raises(ValueError):
        engine._loaded(root, "toy", "run-2")
    toycourse.course_copy(tmp_path / "fresh")
    fresh = tmp_path / "fresh" / "solutions" / "toy" / "toy.ipynb"
    (root / "solutions" / "toy" / "toy.ipynb").write_bytes(fresh.read_bytes())
    second = engine.GradeTask("s", "toy", {}, str(root), material_key="run-2")
    loaded2 = engine._loaded(root, "toy", "run-2")
    assert engine._kit_and_extra_files(loaded2, second)[1] == {"weights.txt": b"v2"}
    data.write_text("v3")
    direct = engine.GradeTask("s", "toy", {}, str(root))
    assert engine._kit_and_extra_files(engine._loaded(root, "toy"), direct)[1] == {"weights.txt": b"v3"}
