"""The package's public surface: every advertised name imports from the top level."""

import subprocess
import sys

import pytest

import cs231n_lib


@pytest.mark.parametrize("name", cs231n_lib.__all__)
def test_every_exported_name_is_importable_from_the_top_level(name):
    value = getattr(cs231n_lib, name)
    assert callable(value), f"cs231n_lib.{name} should be a function or class, found {type(value).__name__}"
    assert value.__module__.startswith("cs231n_lib."), value.__module__


def test_unknown_name_raises_attribute_error_naming_it():
    with pytest.raises(AttributeError, match="no_such_layer"):
        cs231n_lib.no_such_layer  # noqa: B018


def test_importing_the_package_does_not_load_numba():
    # `import cs231n_lib` must stay cheap: the kernels load on first use of a layer.
    code = "import sys, cs231n_lib; print('numba' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
