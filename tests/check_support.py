"""What the tests of every lesson's checks share: run a question on an answer, find a case by name."""
from __future__ import annotations

import re
from pathlib import Path

from course_utils.authoring.markers import solution_lines
from course_utils.authoring.transforms import read_notebook
from course_utils.grading.registry import get_question
from course_utils.grading.runner import run_question
from course_utils.grading.trivial import variants_for

CHECK_CALL = re.compile(r"""\bcheck\(\s*["'](\d\d\.[a-z][a-z0-9_]*)["']""")


def run(qid: str, *answers):
    """Run question ``qid`` against the given answer(s), as ``check`` would (without saving progress)."""
    return run_question(get_question(qid), *answers)


def case_of(result, name: str):
    """The case called ``name``, or else the one case whose name starts with ``name``."""
    exact = [c for c in result.cases if c.name == name]
    if exact:
        return exact[0]
    matches = [c for c in result.cases if c.name.startswith(name)]
    assert len(matches) == 1, f"no single case named {name!r}: {[c.name for c in result.cases]}"
    return matches[0]


def stub(*args, **kwargs):
    """An answer still raising NotImplementedError, as a generated exercise does."""
    raise NotImplementedError()


def solution_expressions(path: Path) -> dict[str, set[str]]:
    """{question id: the solution lines of its answer cell and their right-hand sides},
    without spaces."""
    out, pending = {}, set()
    for cell in read_notebook(path).cells:
        if cell.cell_type != "code":
            continue
        inside, _ = solution_lines(cell.source, "code")
        if inside:
            pending = set()
            for line in inside:
                code = line.split("#")[0].strip()
                for text in (code, code.removeprefix("return "),
                             code.split(" = ", 1)[-1]):
                    squeezed = "".join(text.split())
                    if len(squeezed) >= 6:
                        pending.add(squeezed)
        for qid in CHECK_CALL.findall(cell.source):
            out[qid] = pending
    return out


def _said(case) -> str:
    return (case.hint + " " + case.message).lower()


def assert_shows(result, case_name, word):
    """The case fails with its own diagnosis: its hint is shown, naming the mistake."""
    case = case_of(result, case_name)
    assert not case.passed and case.shows_hint, (case.name, case.message)
    assert word.lower() in _said(case), (case.hint, case.message)


def assert_not_blamed(result, case_name):
    """The case does not blame its mistake: it passes, or fails without its hint."""
    case = case_of(result, case_name)
    assert case.passed or not case.shows_hint, (case.name, case.message)


def assert_all_pass(result):
    failing = [(c.name, c.message) for c in result.cases if not c.passed]
    assert not failing, failing


def assert_trivial_scores_zero(qid, *real):
    """Every trivial stand-in for the real answers (None, pass, raise, the input,
    zeros...) earns nothing."""
    q = get_question(qid)
    namespace = dict(zip(q.answers, real))
    earned = {name: run(qid, *[answers[a] for a in q.answers]).score
              for name, answers in variants_for(q, namespace).items()}
    assert earned and all(score == 0 for score in earned.values()), earned
