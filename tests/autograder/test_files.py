"""Atomic writes and the checks on names that came from students (autograder/files.py)."""

import os
import stat

import pytest

from autograder.files import is_notebook_file_name, safe_relative_parts, safe_relative_path, write_atomic


def test_write_atomic_replaces_the_file_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "deep" / "er" / "result.json"
    write_atomic(path, "first ünïcode")
    assert path.read_text(encoding="utf-8") == "first ünïcode"
    write_atomic(path, b"\x00second")
    assert path.read_bytes() == b"\x00second"
    assert sorted(os.listdir(path.parent)) == ["result.json"]


def test_write_atomic_gives_the_mode_asked_for(tmp_path):
    path = tmp_path / "launch.json"
    write_atomic(path, "{}", mode=0o600)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_write_atomic_keeps_the_old_file_when_the_write_fails(tmp_path):
    path = tmp_path / "grades.csv"
    write_atomic(path, "old")
    with pytest.raises(TypeError):
        write_atomic(path, 42)
    assert path.read_text() == "old"
    assert sorted(os.listdir(tmp_path)) == ["grades.csv"]


@pytest.mark.parametrize("name, parts", [
    ("a/b.txt", ("a", "b.txt")),
    ("./a//./b.txt", ("a", "b.txt")),
    ("dir\\nb.ipynb", ("dir", "nb.ipynb")),  # a zip made on Windows
    ("../x", None), ("a/../../b", None), ("toy/../../../up.py", None), ("..", None),
    ("/etc/passwd", None), ("\\etc\\passwd", None), ("C:\\Users\\x.py", None), ("c:x.py", None),
    ("", None), (".", None), ("./", None),
])
def test_safe_relative_parts(name, parts):
    assert safe_relative_parts(name) == parts


def test_safe_relative_path_raises_for_what_would_leave_the_folder():
    assert str(safe_relative_path("a/./b.txt")) == "a/b.txt"
    for bad in ("../x", "/etc/passwd", "a/../../b", "", "C:/x"):
        with pytest.raises(ValueError, match="relative path"):
            safe_relative_path(bad)


@pytest.mark.parametrize("name, ok", [
    ("conv.ipynb", True), ("conv 2.ipynb", True),
    ("a/conv.ipynb", False), ("a\\conv.ipynb", False), (".ipynb", False), ("..ipynb", False),
    (".hidden.ipynb", False), ("conv.py", False), ("", False), (None, False), (3, False),
])
def test_is_notebook_file_name(name, ok):
    assert is_notebook_file_name(name) is ok
