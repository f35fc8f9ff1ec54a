"""A class of hostile students graded end to end (``batch.autograde``, the real engine and
sandboxed kernels), for what reaches the people who run the grader: the feedback pages and the
graded notebooks they open in a browser (the formgrader is a page of the instructor's Jupyter
server, where a script acts as the instructor), and the summary printed in their terminal.

Each student's code is right: the tricks are in what it prints and writes, and cost no points.
"""

import csv
import io
import json
import zipfile
from html.parser import HTMLParser

import nbformat
import pytest
from autograder_testkit import RIGHT, SIZE_RIGHT, source_notebook, student_nb, write_course
from nbformat.v4 import new_markdown_cell

from autograder import batch, engine, report

pytestmark = pytest.mark.slow

# a 1x1 PNG: an honest plot stays on the page
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="

RICH_OUTPUTS = SIZE_RIGHT + f'''
from IPython.display import display, HTML, Javascript
display(HTML('<script>alert("pwned")</script><b>HTML</b>'))
display(Javascript('alert("pwned")'))
display({{'text/markdown': '<img src=x onerror=alert("pwned")>'}}, raw=True)
display({{'image/svg+xml': '<svg onload=alert("pwned")></svg>'}}, raw=True)
display({{'image/png': 'AAAA" onerror="alert(1)'}}, raw=True)
display({{'image/png': '{PNG}'}}, metadata={{'image/png': {{'width': '1 onerror=alert("pwned")'}}}}, raw=True)
print("PLAIN TEXT STAYS")
'''
ANSWER = ('The padding keeps the size: **bold stays**, $a<b$ too. <script>alert("pwned")</script>'
          '<img src=x onerror=alert("pwned")> [click](javascript:alert("pwned")) <javascript:alert(1)>\n\n'
          '[ref]: javascript:alert("pwned")\n\nsee [ref]')


class _ActiveContent(HTMLParser):
    """What of a page would act in a browser: event handlers, ``javascript:`` URLs, scripts that
    call ``alert`` (nbconvert's own scripts do not), and elements that run code of their own."""

    def __init__(self, page):
        super().__init__()
        self.found, self._in_script = [], False
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        self._in_script = tag == "script"
        if tag in ("svg", "iframe", "object", "embed"):
            self.found.append(f"<{tag}>")
        for name, value in attrs:
            if name.startswith("on") or (name in ("href", "src") and (value or "").strip().lower().startswith("javascript:")):
                self.found.append(f"<{tag} {name}={value!r}>")

    def handle_data(self, data):
        if self._in_script and "alert(" in data:
            self.found.append(f"<script>{data.strip()[:60]}")

    def handle_endtag(self, tag):
        self._in_script = False


# The harness's status file, rewritten as JSON nested past the parser's depth
DEEP_STATUS = SIZE_RIGHT + """
import cs231n_checks.kernel_side as _side
_real = _side.run_case
def _deep(name, in_path, out_path, status_path, nonce):
    _real(name, in_path, out_path, status_path, nonce)
    open(status_path, "w").write("[" * 100000 + "]" * 100000)
_side.run_case = _deep
"""

# A student id and a file name that a spreadsheet would run as formulas in grades.csv
FORMULA_ID = '=HYPERLINK("evil.example","open me")'
FORMULA_FILE = "@SUM(1+1)*cmd|' -C calc'!A0"

# Terminal escape sequences (clear the screen, retitle the window) and a newline forging a summary
# line, in the names of a student's files; a C1 control (CSI) in the zip's name, the student id
ESCAPES = "\x1b[2J\x1b]0;pwned\x07\n  ada / conv: 7/7 FORGED"


def _zip(members):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def _course(root):
    question = new_markdown_cell("**Written answer (2 points, graded by a person).** Why pad?")
    answer = new_markdown_cell("### BEGIN SOLUTION\nRubric: the size.\n### END SOLUTION")
    answer.metadata["nbgrader"] = {"schema_version": 3, "grade": True, "solution": True, "locked": False,
                                   "task": False, "points": 2, "grade_id": "q_padding"}
    return write_course(root, notebook=source_notebook([question, answer]))


def _notebook(root, sources, answer=None):
    nb = student_nb(root, sources)
    for cell in nb.cells:
        if answer is not None and cell.metadata.get("nbgrader", {}).get("grade_id") == "q_padding":
            cell.source = answer
    return nbformat.writes(nb).encode()


@pytest.fixture(scope="module")
def hostile_class(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    root = _course(tmp / "repo")
    students = {"rich": _notebook(root, dict(RIGHT, conv_output_size=RICH_OUTPUTS), ANSWER),
                "deep": _notebook(root, dict(RIGHT, conv_output_size=DEEP_STATUS))}
    subs = tmp / "subs"
    for student, data in students.items():
        (subs / student / "conv").mkdir(parents=True)
        (subs / student / "conv" / "conv.ipynb").write_bytes(data)
    # files named after what starts the kernel, sent with a right notebook
    (subs / "shadow" / "conv").mkdir(parents=True)
    (subs / "shadow" / "conv" / "conv.ipynb").write_bytes(_notebook(root, RIGHT))
    for name in ("ipykernel_launcher.py", "logging.py", "asyncio.py"):
        (subs / "shadow" / "conv" / name).write_text("raise SystemExit(3)\n")
    (subs / FORMULA_ID).mkdir(parents=True)  # the notebook straight in the student's folder
    (subs / FORMULA_ID / "conv.ipynb").write_bytes(_notebook(root, RIGHT))
    (subs / FORMULA_ID / FORMULA_FILE).symlink_to("/etc/passwd")  # skipped, with a note
    (subs / "eve\x9b2J.zip").write_bytes(_zip({f"conv/conv{ESCAPES}.ipynb": _notebook(root, RIGHT),
                                               f"notes{ESCAPES}.txt": b"junk"}))
    out = tmp / "out"
    run = batch.autograde(subs, out, course_root=root, workers=0, progress=False)
    return run, out


def test_the_pages_people_open_show_no_html_of_the_students(hostile_class):
    run, out = hostile_class
    assert {r.student: r.score for r in run.results} == {"rich": 5.0, "eve\x9b2J": 5.0, FORMULA_ID: 5.0, "shadow": 5.0,
                                                         "deep": 0.0}
    page = (out / "feedback" / "rich" / "conv" / "conv.html").read_text()
    assert _ActiveContent(page).found == []
    # what is not HTML still shows: text, an image, the answer's Markdown and math
    assert "PLAIN TEXT STAYS" in page and f'src="data:image/png;base64,{PNG}"' in page
    assert "<strong>bold stays</strong>" in page and "The padding keeps the size" in page
    assert engine.DROPPED_OUTPUT_NOTE in page
    # the graded notebook (what the formgrader renders) holds only text and images
    graded = json.loads((out / "autograded" / "rich" / "conv" / "conv.ipynb").read_text())
    types = {mime for cell in graded["cells"] for o in cell.get("outputs", []) for mime in o.get("data", {})}
    assert types <= set(engine.KEPT_OUTPUT_TYPES) and "image/png" in types
    assert all(not o.get("metadata") for cell in graded["cells"] for o in cell.get("outputs", [])
               if "data" in o)
    # the class report quotes names and messages students chose: as text
    report_page = (out / "report.html").read_text()
    assert _ActiveContent(report_page).found == [] and "open me&quot;)" in report_page


def test_the_summary_prints_no_control_character_a_student_chose(hostile_class):
    run, _ = hostile_class
    text = report.summary(run)
    # the names are there, their control characters shown as escapes: nothing a terminal obeys
    assert "eve\\x9b2J" in text and "notes\\x1b[2J\\x1b]0;pwned\\x07\\n  ada / conv: 7/7 FORGED.txt" in text
    assert "conv\\x1b[2J" in text  # the renamed notebook, graded in its place
    assert not any(c in text for c in "\x1b\x07\x9b\r")
    assert not any(line.startswith("  ada / conv") for line in text.splitlines())


def test_grades_csv_holds_no_cell_a_spreadsheet_would_run(hostile_class):
    _, out = hostile_class
    with open(out / "grades.csv", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    cells = [value for row in rows for value in row.values()]
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]
    # the text is all there, behind a quote that keeps it text
    assert {r["student"] for r in rows} == {"rich", "eve\\x9b2J", "'" + FORMULA_ID, "shadow", "deep"}
    assert not any(c in "".join(cells) for c in "\x1b\x07\x9b\n")  # a terminal that shows the file obeys none
    formula = next(r for r in rows if r["student"] == "'" + FORMULA_ID)
    assert formula["score"] == "5" and formula["flags"].startswith("'" + FORMULA_FILE + ": skipped")


def test_the_installed_library_and_grader_are_hidden_from_every_kernel(hostile_class):
    """Installed without ``-e`` (``pip install .``), the full library (every answer) and the grader
    (a right version of every layer) sit in site-packages, which the kernel sees: a student's
    cell loaded ``cs231n_lib`` from there by its path and earned full marks. The kernel's wrapper
    covers them wherever they are."""
    run, _ = hostile_class
    packages = engine.grader_package_paths()
    assert [p.rsplit("/", 1)[1] for p in packages] == ["autograder", "cs231n_lib"]
    for result in run.results:
        assert set(packages) <= set(result.protections["applied"]["hidden"]), result.student


def test_a_students_files_cannot_stand_in_for_the_kernels_own_code(hostile_class):
    """``python -m ipykernel_launcher`` in the working folder ran a student's ipykernel_launcher.py
    (or logging.py, asyncio.py) instead of the kernel: it never started, and the submission
    failed as a grader error, retried, with a page telling the student the grader had a problem."""
    run, _ = hostile_class
    shadow = next(r for r in run.results if r.student == "shadow")
    assert shadow.status == "graded" and not shadow.infrastructure and shadow.timings.kernel_starts == 1
    assert shadow.score == 5.0


def test_a_status_file_nested_past_the_parsers_depth_is_tampering_not_a_grader_error(hostile_class):
    """json.loads raises RecursionError, not ValueError, on deep nesting: the task failed as a
    grader error, retried, instead of costing the cases whose status the student rewrote."""
    run, _ = hostile_class
    deep = next(r for r in run.results if r.student == "deep")
    assert deep.status == "graded" and not deep.infrastructure
    assert {c.outcome for test in deep.notebooks["conv.ipynb"].tests for c in test.cases} == {"tampered"}
