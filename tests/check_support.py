"""What the tests of every lesson's checks share: run a question on an answer, find a case by name."""
from __future__ import annotations

import re
from pathlib import Path

from course_utils.authoring.markers import solution_lines
from course_utils.authoring.transforms import read_notebook
from course_utils.grading.registry import get_question
from course_utils.grading.runner import run_question

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
