"""Delegation flags and the normal form used for similarity."""

import pytest
from autograder_testkit import FORWARD_RIGHT, SIZE_RIGHT, released

from autograder.integrity import (delegation_flags, library_uses, module_flags, normalise_source, student_modules,
                                  suspicious_constructs)


@pytest.mark.parametrize("source, expected", [
    ("def conv_forward_naive(x, w, b, p):\n    return cs231n_lib.conv_forward(x, w, b, p)\n", ["cs231n_lib.conv_forward"]),
    ("from cs231n_lib.conv import conv_forward as cf\ndef conv_forward_naive(x, w, b, p):\n    return cf(x, w, b, p)\n",
     ["cs231n_lib.conv.conv_forward"]),
    ("from cs231n_lib import *\n", ["cs231n_lib.*"]),
    ("import cs231n_lib.conv as C\ndef f(x):\n    return C.im2col(x)\n", ["cs231n_lib.conv.im2col"]),
    ("import importlib\nm = importlib.import_module('cs231n_lib')\n", ["the string 'cs231n_lib'"]),
    ("def f(x):\n    return x + 1\n", []),
])
def test_library_uses(source, expected):
    assert library_uses(source, {"cs231n_lib": "cs231n_lib"}) == expected


def test_delegation_flags_on_the_fixture_course(course):
    template = released(course)  # its setup cell does `import cs231n_lib`
    sources = {
        "conv_output_size": SIZE_RIGHT,
        "conv_forward_naive": "def conv_forward_naive(x, w, b, conv_param):\n    lib = cs231n_lib\n    return lib.conv_forward(x, w, b, conv_param)\n",
    }
    flags = delegation_flags(template, sources)
    assert [(f["kind"], f["grade_id"]) for f in flags] == [("delegation", "conv_forward_naive")]
    assert "cs231n_lib" in flags[0]["detail"]
    helper = {"conv_forward_naive": FORWARD_RIGHT.replace("Ho, Wo = (H + 2 * p - HH) // s + 1, (W + 2 * p - WW) // s + 1",
                                                          "Ho, Wo = cs231n_lib.conv_output_size(H, HH, s, p), cs231n_lib.conv_output_size(W, WW, s, p)")}
    assert [f["kind"] for f in delegation_flags(template, helper)] == ["library_use"]
    assert delegation_flags(template, {"conv_forward_naive": FORWARD_RIGHT, "conv_output_size": SIZE_RIGHT}) == []


def test_hidden_delegation_is_flagged_as_dynamic_and_tampering(course):
    template = released(course)
    source = ("def conv_forward_naive(x, w, b, p):\n"
              "    m = __import__('cs231' + 'n_lib')\n"
              "    return getattr(m, 'conv_' + 'forward')(x, w, b, p)\n"
              "import cs231n_checks.kernel_side as s\n")
    kinds = {f["kind"] for f in delegation_flags(template, {"conv_forward_naive": source})}
    assert kinds == {"dynamic_code", "tampering"}
    assert suspicious_constructs("get_ipython().input_transformers_cleanup.append(f)") == (
        ["get_ipython", "input_transformers_cleanup"], [])


def test_solutions_importing_the_students_own_modules_are_flagged():
    files = {
        "convolution.ipynb": b"{}",
        "helper.py": b"import cs231n_lib\ndef conv_forward_naive(x, w, b, p):\n    return cs231n_lib.conv_forward(x, w, b, p)\n",
        "tools/__init__.py": b"",
        "tools/loops.py": b"def pad(x, p):\n    return x\n",
        "sneaky.py": b"import ctypes\n",
        "data/notes.txt": b"not code",
        "bad-name.py": b"",
    }
    assert sorted(student_modules(files)) == ["helper", "sneaky", "tools"]
    sources = {
        "conv_forward_naive": "from helper import conv_forward_naive\n",
        "conv_backward_naive": "import tools.loops as L\nimport numpy as np\nimport os\n",
        "conv_output_size": "import sneaky\nimport written_at_run_time\n",
    }
    flags = [(f["kind"], f["grade_id"], f["detail"]) for f in module_flags(sources, files)]
    assert flags == [
        ("delegation", "conv_forward_naive", "imports helper from the submitted helper.py, which uses cs231n_lib.conv_forward"),
        ("own_module", "conv_backward_naive",
         "imports tools from the submitted tools/__init__.py, tools/loops.py: part of the solution lives outside the notebook"),
        ("dynamic_code", "conv_output_size", "imports sneaky from the submitted sneaky.py, which uses ctypes"),
        ("own_module", "conv_output_size", "imports written_at_run_time, which is neither installed nor among the "
                                           "submitted files (written by the notebook while it runs?)"),
    ]
    assert module_flags({"conv_forward_naive": "import numpy as np\nimport cs231n_lib\n"}, files) == []


def test_normalise_source_ignores_names_comments_and_docstrings():
    a = ("def conv_forward_naive(x, w, b, conv_param):\n    '''My docstring.'''\n    # loop over images\n"
         "    out = np.zeros(3)\n    for n in range(x.shape[0]):\n        out += x[n]\n    return out\n")
    b = ("def my_conv(inp, filt, bias, params):\n    acc = np.zeros(3)  # accumulator\n"
         "    for k in range(inp.shape[0]):\n        acc += inp[k]\n    return acc\n")
    c = a.replace("out += x[n]", "out -= x[n]")
    assert normalise_source(a) == normalise_source(b)
    assert normalise_source(a) != normalise_source(c)
    assert "range" in normalise_source(a) and "#" not in normalise_source(a)


def test_normalise_source_survives_syntax_errors():
    assert normalise_source("def f(:\n    return 1  # x\n\n") == "def f(:\nreturn 1"


# ------------------------------------------------------------------------------------------
# a helper of the student's own named like a library function is not library use


def test_a_local_definition_shadows_the_setup_cells_library_name():
    setup = {"im2col": "cs231n_lib.im2col", "pool_output_size": "cs231n_lib.pool_output_size"}
    own_helper = ("def max_pool_forward_fast(x, pool_param):\n"
                  "    def im2col(a, h, w, s):\n"
                  "        return a\n"
                  "    return im2col(x, 2, 2, 2), None\n")
    assert library_uses(own_helper, setup) == []
    uses_library = "def max_pool_forward_fast(x, pool_param):\n    return im2col(x, 2, 2, 2, 0), None\n"
    assert library_uses(uses_library, setup) == ["cs231n_lib.im2col"]
    # an import from the library is the library's, whatever else the cell defines
    assert library_uses("from cs231n_lib import im2col\ndef f(x):\n    return im2col(x)\n", setup) == \
        ["cs231n_lib.im2col"]


# ------------------------------------------------------------------------------------------
# the similarity threshold, calibrated on the sample class


def _sample_codes(assignment="convolution"):
    from pathlib import Path

    import nbformat

    from autograder import similarity

    root = Path(__file__).resolve().parents[2]
    stubs = similarity.template_stubs(root, assignment)
    codes = {}
    for folder in sorted((root / "examples" / "submissions").iterdir()):
        path = folder / assignment / f"{assignment}.ipynb"
        try:
            nb = nbformat.read(str(path), as_version=4)
        except Exception:  # noqa: BLE001 - absent or broken on purpose (olek, rosa)
            continue
        sources = {c.metadata["nbgrader"]["grade_id"]: c.source for c in nb.cells
                   if c.metadata.get("nbgrader", {}).get("solution")}
        codes[folder.name] = (sources, similarity.student_code(_with_sources(sources), stubs))
    return codes, stubs


def _with_sources(sources):
    """A graded result whose one notebook has these solution sources."""
    from autograder.results import NotebookResult, TaskResult

    return TaskResult("s", "a", "graded", notebooks={"nb": NotebookResult("graded", solution_sources=sources)})


def test_the_threshold_flags_the_sample_classs_copy_and_no_independent_pair():
    from autograder import similarity

    codes, _ = _sample_codes()
    pairs = similarity.similar_pairs({k: code for k, (_, code) in codes.items()})
    assert [(a, b) for a, b, _ in pairs] == [("ada", "farid")]
    import difflib

    independent = [difflib.SequenceMatcher(None, codes[a][1], codes[b][1], autojunk=False).ratio()
                   for a in codes for b in codes if a < b and {a, b} != {"ada", "farid"}
                   and min(len(codes[a][1]), len(codes[b][1])) >= similarity.MIN_CHARS]
    assert independent and max(independent) < similarity.THRESHOLD - 0.05


def test_a_disguised_copy_is_flagged():
    """ada's code, renamed, re-commented, with docstrings and two asserts added and one
    statement changed: the kind of copy that scored 0.80-0.94 before asserts and strings
    were dropped from the normal form."""
    import re

    from autograder import similarity

    codes, stubs = _sample_codes()
    sources, original = codes["ada"]
    disguised = {}
    for gid, source in sources.items():
        text = re.sub(r"\bout\b", "result", source)
        text = re.sub(r"\bstride\b", "step", text).replace("#", "# note:")
        text = re.sub(r"(def \w+\(.*\):\n)", r'\1    """My own implementation."""\n    assert True, "checked"\n', text)
        text = text.replace("    return ", "    assert 1 + 1 == 2\n    return ", 1)
        disguised[gid] = text
    copy = similarity.student_code(_with_sources(disguised), stubs)
    assert copy != original  # the disguise changed the text ...
    pairs = similarity.similar_pairs({"ada": original, "copycat": copy})
    assert pairs and pairs[0][2] >= similarity.THRESHOLD  # ... not what it computes


@pytest.mark.timeout(120)
def test_two_long_repetitive_solutions_are_flagged_without_holding_the_run():
    """difflib's matching is cubic on repetitive code: two students who send 26,000 characters of
    one repeated statement would hold the run for hours before any grade reaches the gradebook."""
    import time
    from pathlib import Path

    from autograder import similarity
    from autograder.results import NotebookResult, TaskResult

    def result(student, op):
        body = "".join(f"    v = v {op} {i % 7}\n" for i in range(2600))
        sources = {"conv_forward_naive": f"def conv_forward_naive(x, w, b, conv_param):\n    v = 0\n{body}    return v\n"}
        return TaskResult(student, "convolution", "graded",
                          notebooks={"convolution.ipynb": NotebookResult("graded", solution_sources=sources)})

    began = time.perf_counter()
    flags = similarity.find_similar([result("kim", "+"), result("lee", "-")], Path(__file__).resolve().parents[2])
    assert time.perf_counter() - began < 60
    assert flags == {("kim", "convolution"): ["solutions alike at a glance to lee's, too long or repetitive to compare in full"],
                     ("lee", "convolution"): ["solutions alike at a glance to kim's, too long or repetitive to compare in full"]}


def test_a_huge_solution_is_compared_without_parsing_it():
    """The normal form costs about 7 s and 200 MB of the coordinator's memory per megabyte; a notebook
    may hold 20 MB of solution: above ``MAX_NORMALISED_CHARS`` the code is compared as written."""
    import time

    from autograder import similarity

    huge = "def conv_output_size(W, F, S, P):\n" + "".join(f"    v{i} = W + {i} * F - P\n" for i in range(100_000))
    began = time.perf_counter()
    code = similarity.student_code(_with_sources({"conv_output_size": huge}), {})
    assert time.perf_counter() - began < 5  # 22 s when parsed
    assert code.startswith("def conv_output_size(W, F, S, P):\nv0 = W + 0 * F - P\n")
    small = "def f(a):\n    b = a + 1  # a comment\n    return b\n"
    assert similarity.student_code(_with_sources({"f": small}), {}) == normalise_source(small)  # parsed
