"""Reading the submissions folder: one ``Submission`` per student and assignment.

Layouts (``SUBMISSIONS`` below), mixed freely:

- nbgrader's: ``SUBMISSIONS/<student>/<assignment>/*.ipynb`` (plus any data files the student
  sent; ``timestamp.txt``, as written by ``nbgrader collect``, is read as the submission time);
- notebooks straight in the student folder: ``SUBMISSIONS/<student>/<notebook>.ipynb``, matched
  to an assignment by the notebook's file name;
- LMS exports: ``SUBMISSIONS/<student>.zip`` holding ``<assignment>/*.ipynb`` or just the
  notebooks (matched by file name), optionally all under one top folder. Zips are read in
  memory, never extracted: a member whose name is absolute or climbs out (``..``) is refused,
  and sizes are capped (``MAX_FILE_BYTES`` per file, ``MAX_SUBMISSION_BYTES`` per student,
  ``MAX_FILES`` members), counting the bytes actually decompressed, not the sizes the zip claims.
  A notebook over the file cap is kept without its outputs when the rest fits.

Names starting with ``.`` are ignored, symbolic links are never followed, and everything that
is skipped is reported in the run summary. Runs in the coordinating process only.
"""

import dataclasses
import os
import unicodedata
import zipfile
from pathlib import Path

from . import course, rebuild
from .files import safe_relative_parts

MAX_FILE_BYTES = 20 * 2**20
MAX_SUBMISSION_BYTES = 50 * 2**20
MAX_FILES = 200
MAX_NOTES = 20  # notes on one student's files (and skipped entries); the rest are counted in one more


@dataclasses.dataclass
class Submission:
    """One student's files for one assignment, as read from the submissions folder."""

    student: str
    assignment: str
    files: dict  # relative posix path -> bytes
    origin: str  # where it came from, for people
    timestamp: str | None = None
    notes: list = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Collection:
    submissions: list
    students: list  # every student seen, including those with nothing gradable
    skipped: list  # (what, why) pairs for the summary


def _is_ignored(name):
    return name.startswith(".") or name in course.IGNORED_NAMES or name.endswith(".pyc")


def _clean_student_id(name):
    """A student id from a folder or zip name: NFC-normalised; None when unusable.

    Refused: empty, '.', '..', path separators, control characters, and glob characters
    (``* ? [ ]``), which nbgrader would read as a pattern matching other students.
    """
    student = unicodedata.normalize("NFC", name).strip()
    if not student or student in (".", "..") or any(c in student for c in "/\\*?[]") \
            or any(ord(c) < 32 for c in student) or len(student) > 128:
        return None
    return student


class _Budget:
    """Caps on one student's submission; counts the bytes really read."""

    def __init__(self, origin):
        self.origin, self.total, self.count, self._notes, self._unsaid = origin, 0, 0, [], 0

    def note(self, text):
        """Say ``text`` about a file: the first ``MAX_NOTES`` are kept, the rest counted (a zip of
        300,000 files made as many notes, 13 MB of grades.csv and of the report)."""
        if len(self._notes) < MAX_NOTES:
            self._notes.append(text)
        else:
            self._unsaid += 1

    @property
    def notes(self):
        return self._notes + ([f"... and {self._unsaid} more files skipped or unreadable"] if self._unsaid else [])

    def admit(self, rel, size):
        if self.count >= MAX_FILES:
            self.note(f"{rel}: skipped, more than {MAX_FILES} files")
            return False
        if size > MAX_FILE_BYTES:
            self.note(f"{rel}: skipped, {size / 2**20:.1f} MB is over the {MAX_FILE_BYTES // 2**20} MB file cap")
            return False
        if self.total + size > MAX_SUBMISSION_BYTES:
            self.note(f"{rel}: skipped, the submission would exceed {MAX_SUBMISSION_BYTES // 2**20} MB")
            return False
        self.count += 1
        self.total += size
        return True


def _read_folder(folder, budget, prefix=""):
    """All regular files under ``folder`` (no symlinks followed), relative posix path -> bytes."""
    files = {}
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        for d in dirnames:
            if os.path.islink(os.path.join(dirpath, d)):
                rel = (Path(dirpath) / d).relative_to(folder).as_posix()
                budget.note(f"{prefix}{rel}: skipped, not a regular folder (symbolic links are not followed)")
        dirnames[:] = sorted(d for d in dirnames if not _is_ignored(d) and not os.path.islink(os.path.join(dirpath, d)))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            rel = path.relative_to(folder).as_posix()
            if _is_ignored(name):
                continue
            if path.is_symlink() or not path.is_file():
                budget.note(f"{prefix}{rel}: skipped, not a regular file (symbolic links are not followed)")
                continue
            size = path.stat().st_size
            if _is_large_notebook(rel, size):
                _admit_large_notebook(files, rel, size, lambda p=path: open(p, "rb"), budget, prefix)
            elif budget.admit(prefix + rel, size):
                files[rel] = path.read_bytes()[:MAX_FILE_BYTES]
    return files


def _is_large_notebook(rel, size):
    return rel.lower().endswith(".ipynb") and size > MAX_FILE_BYTES


def _admit_large_notebook(files, rel, size, opener, budget, prefix=""):
    """A notebook over the file cap: kept without its outputs when the rest fits (outputs never count
    against a cap); else a note saying its size and the cap. A file over the hard cap is not read."""
    try:
        with opener() as stream:
            data = rebuild.without_outputs(stream, size)
    except rebuild.NotebookUnreadable as exc:
        budget.note(f"{prefix}{rel}: skipped, {exc}")
        return
    except (OSError, zipfile.BadZipFile, NotImplementedError, RuntimeError) as exc:
        budget.note(f"{prefix}{rel}: unreadable ({type(exc).__name__})")
        return
    if budget.admit(prefix + rel, len(data)):
        files[rel] = data


def _read_zip(path, budget):
    """Members of a zip as relative posix path -> bytes, refusing unsafe names and bombs."""
    files = {}
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        budget.note(f"{path.name}: not a readable zip file ({exc})")
        return files
    with archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            parts = safe_relative_parts(info.filename)
            if parts is None:
                budget.note(f"{info.filename}: refused, the name points outside the archive")
                continue
            if any(_is_ignored(p) for p in parts) or parts[0] == "__MACOSX":
                continue
            rel = "/".join(parts)
            if _is_large_notebook(rel, info.file_size):
                _admit_large_notebook(files, rel, info.file_size, lambda i=info: archive.open(i), budget)
                continue
            if not budget.admit(rel, info.file_size):
                continue
            try:
                with archive.open(info) as member:
                    data = member.read(MAX_FILE_BYTES + 1)
            except (zipfile.BadZipFile, OSError, NotImplementedError, RuntimeError) as exc:
                budget.note(f"{rel}: unreadable in the zip ({type(exc).__name__})")
                continue
            if len(data) > MAX_FILE_BYTES:  # the header lied about the size: a zip bomb
                budget.note(f"{rel}: skipped, decompresses past the {MAX_FILE_BYTES // 2**20} MB file cap")
                continue
            budget.total += len(data) - info.file_size
            files[rel] = data
    return files


def _notebook_owner(course_root, assignments):
    """Map notebook file name -> assignment, for notebooks sent without their assignment folder."""
    owner = {}
    for name in assignments:
        for nb in course.assignment_notebooks(course_root, name):
            owner.setdefault(nb, name)
        owner.setdefault(f"{name}.ipynb", name)
    return owner


def _split_by_assignment(student, files, assignments, owner, origin, budget):
    """Group a student's files (relative paths) into per-assignment submissions."""
    # a single top folder wrapping everything (e.g. the student's own name) is unwrapped
    tops = {rel.split("/", 1)[0] for rel in files}
    if len(tops) == 1 and all("/" in rel for rel in files) and next(iter(tops)) not in assignments:
        files = {rel.split("/", 1)[1]: data for rel, data in files.items()}
    grouped, skipped = {}, []
    for rel, data in sorted(files.items()):
        head, _, rest = rel.partition("/")
        if rest and head in assignments:
            grouped.setdefault(head, {})[rest] = data
        elif not rest and rel in owner:
            grouped.setdefault(owner[rel], {})[rel] = data
        else:
            skipped.append((f"{origin}/{rel}", "not inside a known assignment folder and not named like an assignment notebook"))
    subs = []
    for assignment, afiles in sorted(grouped.items()):
        timestamp = None
        if "timestamp.txt" in afiles:
            timestamp = afiles.pop("timestamp.txt").decode("utf-8", "replace").strip()[:64] or None
        subs.append(Submission(student, assignment, afiles, f"{origin}/{assignment}", timestamp, list(budget.notes)))
    return subs, skipped


def collect_submissions(root, course_root, assignments=None):
    """Read every student's submissions under ``root`` (see the module docstring for layouts).

    Returns a ``Collection``: the submissions sorted by (student, assignment), every student
    seen, and what was skipped and why. Empty assignment folders give a submission with no files
    (graded as missing notebooks, so the student gets zero and appears in the report).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"submissions folder {root} does not exist")
    assignments = list(assignments) if assignments is not None else course.list_assignments(course_root)
    owner = _notebook_owner(course_root, assignments)
    subs, students, skipped = [], [], []
    for entry in sorted(root.iterdir(), key=lambda p: p.name):
        if _is_ignored(entry.name):
            continue
        if entry.is_symlink():
            skipped.append((entry.name, "symbolic link, not followed"))
            continue
        if entry.is_dir():
            student = _clean_student_id(entry.name)
            if student is None:
                skipped.append((entry.name, "not usable as a student id"))
                continue
            budget = _Budget(entry.name)
            files = _read_folder(entry, budget)
            found, skip = _split_by_assignment(student, files, assignments, owner, entry.name, budget)
            # an assignment folder that exists but holds nothing still counts as a (blank) submission
            for sub in entry.iterdir():
                if sub.is_dir() and not sub.is_symlink() and sub.name in assignments and \
                        not any(s.assignment == sub.name for s in found):
                    found.append(Submission(student, sub.name, {}, f"{entry.name}/{sub.name}", None, list(budget.notes)))
        elif entry.is_file() and entry.suffix.lower() == ".zip":
            student = _clean_student_id(entry.stem)
            if student is None:
                skipped.append((entry.name, "not usable as a student id"))
                continue
            budget = _Budget(entry.name)
            files = _read_zip(entry, budget)
            found, skip = _split_by_assignment(student, files, assignments, owner, entry.name, budget)
        else:
            skipped.append((entry.name, "neither a student folder nor a .zip"))
            continue
        if student in students:
            skipped.append((entry.name, f"student {student!r} already read from another folder or zip"))
            continue
        students.append(student)
        skipped.extend(skip)
        if not found and budget.notes:
            skipped.extend((entry.name, note) for note in budget.notes)
        subs.extend(sorted(found, key=lambda s: s.assignment))
    subs.sort(key=lambda s: (s.student, s.assignment))
    return Collection(subs, sorted(students), skipped)
