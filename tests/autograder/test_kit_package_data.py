"""The student build of cs231n_lib carries its package data (the offline digits), and the kit
needs no scikit-learn: its wheel ships ``cs231n_lib/digits.npz`` and the fallback of
``get_CIFAR10_data`` works from that build alone."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

from autograder import kit

REPO = Path(__file__).resolve().parents[2]


def test_library_data_files_are_the_non_python_files_of_the_package():
    files = [p.relative_to(kit.LIBRARY).as_posix() for p in kit.library_data_files()]
    assert "digits.npz" in files
    assert not [f for f in files if f.endswith((".py", ".pyc")) or "__pycache__" in f]


def test_the_student_build_ships_the_digits_and_its_fallback_needs_no_scikit_learn(tmp_path):
    schedule = kit.load_schedule(REPO).while_open("convolution")
    library = kit.build_library(tmp_path / "build", schedule)
    assert (library / "digits.npz").read_bytes() == (kit.LIBRARY / "digits.npz").read_bytes()

    wheel = kit.write_wheel(tmp_path / "build", tmp_path, "0.0.1")
    with zipfile.ZipFile(wheel) as zf:
        assert "cs231n_lib/digits.npz" in zf.namelist()
        metadata = zf.read("cs231n_student-0.0.1.dist-info/METADATA").decode()
    assert not [d for d in kit.KIT_DEPENDENCIES if d.lower().startswith(("scikit-learn", "scipy"))]
    assert "scikit-learn" not in metadata

    code = """
import sys

class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("sklearn", "scipy"):
            raise ImportError(name + " is blocked for this test")

sys.meta_path.insert(0, Refuse())
import cs231n_lib
from cs231n_lib.data import get_CIFAR10_data
data = get_CIFAR10_data(100, 20, 20)
print(cs231n_lib.__file__)
print(data["source"], data["X_train"].shape)
"""
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "build"), CS231N_DATA_DIR=str(tmp_path / "no-data"))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[-2].startswith(str(tmp_path / "build")), "the student build, not the repository"
    assert lines[-1] == "sklearn-digits (offline fallback) (100, 3, 32, 32)"
