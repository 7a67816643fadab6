"""Do answers that compute nothing score 0, for every registered question, in `check` and in `course grade`?

For each lesson, its solution notebook runs once in a fresh kernel (smoke mode). Then, in that
kernel, every question's trivial variants (``course_utils.grading.trivial``: None, pass, raise,
the first input, zeros / ones / a constant of the right shape, an empty class, a string for a
number) are checked with ``check``; and for each variant the answers are rebound in the kernel's
globals and the grading cell of ``course grade`` (``inkernel.grading_code``) grades the lesson, its
results verified as ``course grade`` verifies them.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import nbformat
import pytest

from course_utils.grading.grade import _PACKAGE_DIR, _verified
from course_utils.grading.inkernel import grading_code
from course_utils.grading.registry import questions_for_lesson
from course_utils.grading.results import QuestionResult
from course_utils.grading.trivial import trivial_variants, variants_for

ROOT = Path(__file__).resolve().parent.parent
# What no message may show: object reprs, an empty traceback, NumPy scalar reprs, ANSI codes,
# a pointer to a case that may not exist.
BAD_TEXT = re.compile(r"<[\w.]+ object at 0x|<function [\w.<>]+ at 0x|NoneType: None|np\.(float|int)\d+\(|"
                      r"\x1b\[|see the shape case")
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))


def _run(client, nb, source: str):
    cell = nbformat.v4.new_code_cell(source)
    nb.cells.append(cell)
    client.execute_cell(cell, len(nb.cells) - 1, store_history=False)
    errors = [o for o in cell.outputs if o.get("output_type") == "error"]
    assert not errors, f"{source[:80]!r} raised {errors[0]['ename']}: {errors[0]['evalue']}"
    return cell


def test_variants_cover_functions_classes_and_values():
    """Are the stand-ins what the docstring promises, and do they leave their inputs alone?"""
    import numpy as np
    import torch

    def double(x):
        return 2 * x

    v = trivial_variants(double)
    x = np.array([1.0, 2.0])
    assert v["returns None (pass)"](x) is None and v["returns its first input"](x) is x
    assert v["zeros of the right shape"](x).tolist() == [0.0, 0.0] and x.tolist() == [1.0, 2.0]
    assert v["a constant of the right shape"](x).tolist() == [0.5, 0.5]
    with pytest.raises(RuntimeError):
        v["raises"](x)
    assert set(trivial_variants(0.1)) == {"None", "0", "1", "a constant", "the number as a string"}
    module = trivial_variants(torch.nn.Linear)["a module whose forward returns zeros"](3, 2)
    assert module(torch.ones(4, 3)).abs().sum().item() == 0.0


@pytest.mark.slow
@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.name[:2])
def test_trivial_answers_score_zero(solution, tmp_path):
    """Does every trivial variant of every question of the lesson score 0 in check and in course grade?"""
    from nbclient import NotebookClient

    lesson = solution.name[:2]
    questions = questions_for_lesson(lesson)
    nb = nbformat.read(solution, as_version=4)
    env = {**os.environ, "COURSE_SMOKE": "1", "COURSE_NO_PROGRESS": "1", "MPLBACKEND": "Agg",
           "PYTHONHASHSEED": "0"}
    client = NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=False,
                            resources={"metadata": {"path": str(solution.parent)}})
    scored = []  # (where, qid, variant, score, first problem)
    with client.setup_kernel(env=env):
        for i, cell in enumerate(list(nb.cells)):
            client.execute_cell(cell, i)
        # check(): every variant of every question
        rows_path = tmp_path / "check.json"
        _run(client, nb, "import json as _j\nfrom course_utils.grading.trivial import check_every_variant as _c\n"
                         f"open({str(rows_path)!r}, 'w').write(_j.dumps(_c({lesson!r})))")
        rows = json.loads(rows_path.read_text())
        for row in rows:
            scored.append(("check", row["id"], row["variant"], row["score"], row["first_problem"]))
        # course grade's grading pass: one per variant, with the answers rebound in the kernel
        names = sorted({v for q in questions for v in _variant_names(q, client, nb, tmp_path)})
        for variant in names:
            affected_path = tmp_path / "affected.json"
            _run(client, nb, "import json as _j\nfrom course_utils.grading.trivial import rebind as _r\n"
                             f"open({str(affected_path)!r}, 'w').write(_j.dumps(_r({lesson!r}, {variant!r})))")
            affected = set(json.loads(affected_path.read_text()))
            out = tmp_path / f"grade-{len(scored)}.json"
            _run(client, nb, grading_code(lesson, str(out), [], _PACKAGE_DIR))
            _run(client, nb, "from course_utils.grading.trivial import restore as _s\n_s()")
            results = _verified([QuestionResult.from_dict(d) for d in json.loads(out.read_text())["questions"]],
                                questions)
            for r in results:
                if r.qid in affected:
                    scored.append(("grade", r.qid, variant, r.score, r.first_problem()))
    assert {s[1] for s in scored if s[0] == "check"} == {q.qid for q in questions}
    earned = [f"{where} {qid} [{variant}]: {score:g} ({problem[:120]})"
              for where, qid, variant, score, problem in scored if score != 0]
    assert earned == [], "trivial answers earned credit:\n" + "\n".join(earned)
    unreadable = [f"{row['id']} [{row['variant']}]: {m.group(0)!r}" for row in rows
                  for m in [BAD_TEXT.search(row["text"])] if m]
    assert unreadable == [], "messages a learner should never see:\n" + "\n".join(unreadable)


def _variant_names(question, client, nb, tmp_path) -> list[str]:
    """The variant names of ``question``, read from the real answers in the kernel."""
    path = tmp_path / "names.json"
    _run(client, nb, "import json as _j, sys as _s\nfrom course_utils.grading.trivial import variants_for as _v\n"
                     "from course_utils.grading.registry import get_question as _g\n"
                     f"open({str(path)!r}, 'w').write(_j.dumps(sorted(_v(_g({question.qid!r}), "
                     "vars(_s.modules['__main__'])))))")
    return json.loads(path.read_text())


def test_variants_for_pairs_every_answer():
    """With two answers, does each variant name give a stand-in (or None) for both?"""
    from course_utils.grading.registry import Question

    q = Question("97.pair", "pair", ["f", "lr"])
    v = variants_for(q, {"f": abs, "lr": 0.1})
    assert v["None"] == {"f": None, "lr": None} and v["raises"]["lr"] is None


def test_bad_text_pattern_finds_what_it_forbids():
    """Does the scan for unreadable messages catch each thing it is meant to (so it can fail)?"""
    for text in ("got <torch.nn.Linear object at 0x7f>", "NoneType: None", "np.float64(5.5)",
                 "\x1b[1mError", "see the shape case", "<function f at 0x1>"):
        assert BAD_TEXT.search(text), text
    assert not BAD_TEXT.search("add(2, 3) is -1, expected 5.")
