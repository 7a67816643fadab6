"""Is the course consistent? Registry and solution notebooks agree, exercises are generated and hold no
solution, every solution scores full marks and every exercise scores 0 with "not implemented yet" (a
question whose answer the exercise ships pre-filled with a bug, an EXERCISE region, fails instead).

Covers whatever lessons exist: solutions/*.ipynb, exercises/*.ipynb and checks/lessonNN.py.
The notebooks are graded by ONE `course grade` call (smoke mode), shared by the tests below.
"""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from course_utils.authoring import build_exercises
from course_utils.authoring.markers import MARKERS, solution_lines
from course_utils.authoring.transforms import read_notebook
from course_utils.grading.registry import load_all
from course_utils.grading.results import FAILED, NOT_IMPLEMENTED

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))
EXERCISES = sorted((ROOT / "exercises").glob("*.ipynb"))
CHECK_CALL = re.compile(r"""\bcheck\(\s*["'](\d\d\.[a-z][a-z0-9_]*)["']""")
HEADING = re.compile(r"^#{2,4} Question \d+ · `(\d\d\.[a-z][a-z0-9_]*)`", re.M)
MIN_LEAK_LEN = 8  # shorter solution lines (`return x`) may well appear elsewhere in an exercise


def _ids_in(path: Path) -> tuple[set, set]:
    nb = read_notebook(path)
    checked = {m for c in nb.cells if c.cell_type == "code" for m in CHECK_CALL.findall(c.source)}
    headed = {m for c in nb.cells if c.cell_type == "markdown" for m in HEADING.findall(c.source)}
    return checked, headed


def _prefilled(path: Path) -> set[str]:
    """The ids of the questions whose answer the exercise ships pre-filled (a BEGIN EXERCISE region
    between the question's heading and the next one)."""
    out, qid = set(), None
    for cell in read_notebook(path).cells:
        if cell.cell_type == "markdown":
            found = HEADING.findall(cell.source)
            qid = found[-1] if found else qid
        elif cell.cell_type == "code" and qid is not None and any(
                MARKERS["ex_begin"].pattern.fullmatch(line) for line in cell.source.split("\n")):
            out.add(qid)
    return out


def test_the_warmup_starts_with_a_prefilled_bug():
    """Does lesson 00's exercise start with an answer pre-filled with a bug (Question 1), and only one?"""
    assert _prefilled(ROOT / "solutions" / "00_warmup.ipynb") == {"00.add"}
    source = next(c.source for c in read_notebook(ROOT / "exercises" / "00_warmup.ipynb").cells
                  if c.cell_type == "code" and c.source.startswith("def add("))
    assert "print(a + b)" in source and "NotImplementedError" not in source


def test_every_question_is_in_exactly_one_solution_notebook_and_vice_versa():
    """Is each registered question checked in exactly one solution notebook of its lesson, with a heading,
    and is every id checked in a solution notebook registered?"""
    registered = set(load_all())
    where: dict[str, list[str]] = {}
    for path in SOLUTIONS:
        checked, headed = _ids_in(path)
        assert checked == headed, f"{path.name}: check() ids {sorted(checked)} differ from headings {sorted(headed)}"
        for qid in checked:
            where.setdefault(qid, []).append(path.name)
            assert path.name.startswith(qid[:2] + "_"), f"{qid} is checked in {path.name}, another lesson"
    assert sorted(set(where) - registered) == [], "checked in a solution notebook but not registered"
    assert sorted(registered - set(where)) == [], "registered but in no solution notebook"
    assert {q: p for q, p in where.items() if len(p) > 1} == {}, "question in more than one notebook"


def test_exercises_are_generated_from_solutions():
    """Is exercises/ exactly what `course exercises build` makes of solutions/ (what CI's --check checks)?"""
    report = build_exercises(ROOT / "solutions", ROOT / "exercises", check=True)
    assert [p.name for p in report.stale] == [], "run `course exercises build`"
    assert [p.name for p in EXERCISES] == [p.name for p in SOLUTIONS]


@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.name)
def test_no_solution_line_survives_into_the_exercise(solution):
    """Does no line of a solution region (or one-line answer) appear in the exercise, and no marker?"""
    exercise = ROOT / "exercises" / solution.name
    text = exercise.read_text(encoding="utf-8")
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "# SOLUTION", "BEGIN EXERCISE", "END EXERCISE"):
        assert marker not in text, f"{exercise.name} still holds a '{marker}' marker"
    secret, public = set(), set()
    for cell in read_notebook(solution).cells:
        if cell.cell_type in ("code", "markdown"):
            inside, outside = solution_lines(cell.source, cell.cell_type)
            secret |= {line.strip() for line in inside if len(line.strip()) >= MIN_LEAK_LEN}
            public |= {line.strip() for line in outside}
    lines = {line.strip() for c in read_notebook(exercise).cells for line in c.source.split("\n")}
    assert sorted((secret - public) & lines) == [], f"solution lines survived into {exercise.name}"


@pytest.fixture(scope="module")
def grades():
    """`course grade --json` on every solution and every exercise, in one call, in smoke mode."""
    paths = [str(p.relative_to(ROOT)) for p in SOLUTIONS + EXERCISES]
    env = {**os.environ, "COURSE_SMOKE": "1"}
    proc = subprocess.run([sys.executable, "-m", "course_utils", "grade", *paths, "--json", "--timeout", "300"],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=3000)
    assert proc.returncode == 0, proc.stderr
    return {r["path"]: r for r in json.loads(proc.stdout)["results"]}


@pytest.mark.slow
@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.name)
def test_solution_scores_full_marks(grades, solution):
    """Does every solution notebook run without an error in any cell and score every point?"""
    r = grades[f"solutions/{solution.name}"]
    assert r["error"] is None and r["cell_errors"] == []
    failed = {q["id"]: [c["message"] for c in q["cases"] if not c["passed"]] for q in r["questions"] if not q["passed"]}
    assert failed == {} and r["score"] == r["possible"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("exercise", EXERCISES, ids=lambda p: p.name)
def test_exercise_scores_zero_with_not_implemented_yet(grades, exercise):
    """Does every untouched exercise run to the end, score 0, and say "not implemented yet" for each question,
    with no cell failing for any other reason than a stub, except that a pre-filled answer fails (the
    checks find its bug)?"""
    r = grades[f"exercises/{exercise.name}"]
    prefilled = _prefilled(ROOT / "solutions" / exercise.name)
    assert r["error"] is None and r["score"] == 0 and r["possible"] > 0
    assert [e for e in r["cell_errors"] if e["ename"] != "NotImplementedError"] == [], \
        "a cell after a stub crashed (it should not depend on an unanswered question)"
    assert {q["id"]: q["status"] for q in r["questions"]} == \
        {q["id"]: FAILED if q["id"] in prefilled else NOT_IMPLEMENTED for q in r["questions"]}
    for q in r["questions"]:
        said = [c["message"].lower() for c in q["cases"]]
        if q["id"] in prefilled:
            assert q["score"] == 0 and not any("not implemented yet" in m for m in said), q["id"]
        else:
            assert any("not implemented yet" in m for m in said), q["id"]


MIN_HINT_LEAK = 10  # characters (spaces removed) of a solution expression that a hint may not contain


def _solution_expressions(path: Path) -> dict[str, set[str]]:
    """{question id: the expressions of its solution lines, spaces removed}, read from the solution
    notebook: every solution line between a question's heading and the next heading, and for an
    assignment or a return also its right-hand side."""
    out: dict[str, set[str]] = {}
    qid = None
    for cell in read_notebook(path).cells:
        if cell.cell_type == "markdown":
            found = HEADING.findall(cell.source)
            qid = found[-1] if found else qid
            continue
        if cell.cell_type != "code" or qid is None:
            continue
        inside, _ = solution_lines(cell.source, "code")
        for line in inside:
            code = line.split("#", 1)[0].strip()
            parts = {code, code.removeprefix("return ").strip()}
            if "=" in code and "==" not in code:
                parts.add(code.split("=", 1)[1].strip())
            out.setdefault(qid, set()).update(
                p.replace(" ", "") for p in parts if len(p.replace(" ", "")) >= MIN_HINT_LEAK)
    return out


def test_no_hint_prints_its_questions_solution():
    """Does no hint (and no question-level message) of a question contain an expression of its solution?"""
    expressions = {}
    for path in SOLUTIONS:
        expressions.update(_solution_expressions(path))
    leaks = []
    for qid, q in load_all().items():
        for case in q.cases:
            hint = case.hint.replace(" ", "").replace("`", "")
            leaks += [f"{qid} [{case.name}]: {e}" for e in sorted(expressions.get(qid, ())) if e in hint]
    assert leaks == [], "hints that print the solution:\n" + "\n".join(leaks)


def test_the_hint_leak_test_can_fail():
    """Would a hint that spells out the solution be caught (the test above is not vacuous)?"""
    expressions = _solution_expressions(ROOT / "solutions" / "00_warmup.ipynb")
    assert "X.sum(axis=0)/X.shape[0]" in expressions["00.mean"]


def test_every_question_has_core_cases():
    """Does every question have at least one core case (the only kind that earns credit), and every
    question whose answer is a function at least two, so partial credit means something?"""
    few = {qid: len(q.core_cases) for qid, q in load_all().items() if len(q.core_cases) < 2}
    assert {qid: n for qid, n in few.items() if n == 0} == {}, "questions no answer can score on"
    allowed_single = {"00.lr"}  # a one-number answer: one value to compare
    assert sorted(set(few) - allowed_single) == [], f"questions with fewer than 2 core cases: {few}"


NOTATION = ["\\mathcal{L}", "$L$", "\\mu", "\\kappa", "\\eta", "\\beta", "\\beta_1, \\beta_2", "$K$", "$k$", "$B$",
            "$N$", "$D$", "$T_w$", "\\delta", "$H$", "$W$", "\\nabla^2 \\mathcal{L}", "\\mathcal{B}",
            "\\frac{t + 1}{T_w}"]


def test_the_notation_page_lists_every_convention_and_is_in_the_book():
    """Does book/notation.md give each symbol of the course's conventions a row (loss, smoothness,
    strong convexity, condition number, learning rate, momentum, Adam, depth, batch, examples,
    features, warmup length, finite-difference step, hidden width, weights, Hessian, the batch's
    index set, the one warmup formula), and is it in the book's table of contents?"""
    from course_utils import book

    text = (ROOT / "book" / "notation.md").read_text(encoding="utf-8")
    rows = [line for line in text.split("\n") if line.startswith("| $")]
    for symbol in NOTATION[:-1]:
        assert any(row.split("|")[1].strip().replace("$", "") == symbol.replace("$", "") for row in rows), symbol
    assert NOTATION[-1] in text
    assert "book/notation" in book.toc_docnames(book.load_toc(ROOT / "book" / "_toc.yml"))
