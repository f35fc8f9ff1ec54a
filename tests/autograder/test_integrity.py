"""Delegation flags and the normal form used for similarity."""

import pytest
from autograder_testkit import FORWARD_RIGHT, SIZE_RIGHT, released

from autograder.integrity import delegation_flags, library_uses, normalise_source, suspicious_constructs


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
              "import autograder.sandbox_side as s\n")
    kinds = {f["kind"] for f in delegation_flags(template, {"conv_forward_naive": source})}
    assert kinds == {"dynamic_code", "tampering"}
    assert suspicious_constructs("get_ipython().input_transformers_cleanup.append(f)") == (
        ["get_ipython", "input_transformers_cleanup"], [])


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
