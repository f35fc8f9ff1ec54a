"""What defines an assignment for grading, as one content hash.

``source_digest`` covers the assignment's source and released files and its place in the course
schedule (the assignments before it decide which answers its kit ships). The result cache, the
calibration and the grading folder's copy of the source are keyed by it.

It lives apart from ``course`` because it reads the schedule, which belongs to ``kit``, and
``kit`` builds on ``course``: here both are imported and neither imports the other back.
"""

import hashlib
from pathlib import Path

from .course import ASSIGNMENTS_DIR, SOLUTIONS_DIR, assignment_files
from .kit import load_schedule


def source_digest(course_root, assignment):
    """Content hash of everything that defines ``assignment``: its source and released files, and
    the assignments before it in the course schedule (they decide which answers its kit ships)."""
    h = hashlib.sha256()
    h.update(repr(load_schedule(course_root).while_open(assignment).states).encode())
    for top in (SOLUTIONS_DIR, ASSIGNMENTS_DIR):
        folder = Path(course_root) / top / assignment
        h.update(f"\0{top}\0".encode())
        if folder.is_dir():
            for rel, path in assignment_files(folder):
                h.update(f"{rel.as_posix()}\0".encode())
                h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()
