"""What the tests of every lesson's checks share: run a question on an answer, find a case by name."""
from __future__ import annotations

from course_utils.grading.registry import get_question
from course_utils.grading.runner import run_question


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
