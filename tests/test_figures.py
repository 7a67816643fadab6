"""Tests of course_utils.figures: every figure a lesson records has a title, its unit, and the
target and published anchor the results show beside it; and the results rendered from
benchmarks/results.json (the book's page, benchmarks/RESULTS.md, the README) show them."""
from __future__ import annotations

import ast
import json
import re
import shutil
from pathlib import Path

import pytest
from IPython.core.inputtransformer2 import TransformerManager

from course_utils import bench, book, figures
from course_utils.authoring.transforms import read_notebook
from course_utils.cli import main

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(p for folder in ("notebooks", "solutions", "exercises")
                   for p in (ROOT / folder).glob("[0-9][0-9]_*.ipynb"))


def record_calls(path: Path) -> list[tuple[str, str, str | None]]:
    """(lesson, pattern of the name, unit or None if not a literal) of each ``record(...)`` call
    in the code of a notebook; an f-string name becomes a pattern (``f"{cell}_val_loss"``
    matches ``gru_val_loss``)."""
    manager, out = TransformerManager(), []
    for cell in read_notebook(path).cells:
        if cell.cell_type != "code" or "record(" not in cell.source:
            continue
        for node in ast.walk(ast.parse(manager.transform_cell(cell.source))):
            func = getattr(node, "func", None)
            name = getattr(func, "id", getattr(func, "attr", ""))
            if not (isinstance(node, ast.Call) and name == "record"):
                continue
            keywords = {k.arg: k.value for k in node.keywords}
            arg = node.args[0] if node.args else keywords.get("name")
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                pattern = re.escape(arg.value)
            elif isinstance(arg, ast.JoinedStr):
                pattern = "".join(re.escape(v.value) if isinstance(v, ast.Constant) else "[A-Za-z0-9]+"
                                  for v in arg.values)
            else:
                raise AssertionError(f"{path.name}: record() needs a literal name, "
                                     f"got {ast.unparse(arg)}")
            unit = keywords.get("unit")
            unit = (unit.value if isinstance(unit, ast.Constant) else None) if unit is not None else ""
            out.append((path.name[:2], pattern, unit))
    return out


CALLS = [call for path in NOTEBOOKS for call in record_calls(path)]


def test_the_notebooks_record_figures():
    """Does the test see the record() calls of every lesson, f-string names included?"""
    assert {lesson for lesson, _, _ in CALLS} >= {f"{n:02d}" for n in range(1, 10)}
    assert ("04", "[A-Za-z0-9]+_val_loss", "nats/char") in CALLS


def test_every_recorded_name_has_a_title():
    """Does every name a notebook records (each name an f-string can make, at least one) have a
    title in course_utils.figures.FIGURES, with the unit the notebook records it in?"""
    missing, wrong_unit = [], []
    for lesson, pattern, unit in CALLS:
        known = {n: f for n, f in figures.FIGURES.get(lesson, {}).items() if re.fullmatch(pattern, n)}
        if not known:
            missing.append(f"{lesson}: {pattern}")
        wrong_unit += [f"{lesson}: {n} records {unit!r}, the table says {f.unit!r}"
                       for n, f in known.items() if unit is not None and f.unit != unit]
    assert not missing, f"add a title to course_utils/figures.py for: {missing}"
    assert not wrong_unit, wrong_unit


def test_every_title_belongs_to_a_recorded_figure():
    """Is every entry of the table a figure that its lesson records (no title left behind by a
    renamed figure)?"""
    stale = [f"{lesson}: {name}" for lesson, table in figures.FIGURES.items() for name in table
             if not any(l == lesson and re.fullmatch(p, name) for l, p, _ in CALLS)]
    assert not stale, stale


def test_lesson_07s_compiled_torchao_figure_has_its_title():
    """Is the compiled torchao speed-up of lesson 07 described as what it measures?"""
    figure = figures.describe("07", "torchao_int8_dynamic_compiled_speedup_b32")
    assert figure.unit == "x" and "compiled" in figure.title and "batch 32" in figure.title


def test_every_figure_of_the_results_has_a_title_and_its_unit():
    """Does every figure in benchmarks/results.json have a title, with the unit it was recorded in?"""
    results = book.read_results(ROOT) or {"runs": []}
    for run in results["runs"]:
        for name, fig in (run.get("figures") or {}).items():
            about = figures.describe(run["lesson"], name)
            assert about is not None, f"{run['lesson']}: {name}"
            assert about.unit == fig.get("unit", ""), f"{run['lesson']}: {name}"


def test_titles_targets_and_anchors_are_fit_to_show():
    """Is every title short enough for a table, free of the raw identifier and of table pipes,
    and does every anchor say who published it, with a key of book/references.bib?"""
    keys = set(re.findall(r"^@\w+\{([^,\s]+),", (ROOT / "book" / "references.bib").read_text(), re.M))
    for lesson, table in figures.FIGURES.items():
        for name, about in table.items():
            for text in (about.title, about.target, about.anchor):
                assert "|" not in text and "\n" not in text, (lesson, name)
            assert name not in about.title and len(about.title) <= 110, (lesson, name)
            if about.anchor:
                assert about.source and about.cite in keys, (lesson, name)
    anchored = [n for table in figures.FIGURES.values() for n, f in table.items() if f.anchor]
    assert len(anchored) >= 6


# ----------------------------------------------------------------------------- rendering

RUN = {"lesson": "03", "notebook": "notebooks/03_convolutional_networks.ipynb", "mode": "full",
       "device": "cpu", "machine": "Intel Xeon | 2 cores", "date": "2026-12-04",
       "wall_time_s": 762.4, "status": "ok", "error": "",
       "figures": {"train_time_s": {"value": 740.2, "unit": "s"},
                   "resnet_mnist_test_accuracy": {"value": 0.9957, "unit": "fraction"},
                   "lenet_mnist_test_accuracy": {"value": 0.9807, "unit": "fraction"},
                   "new_unknown_figure": {"value": 3.0, "unit": "x"}}}


def test_a_run_table_shows_titles_values_targets_and_anchors():
    """Does a full run's table give each figure's title (in the lesson's order), its value in the
    unit shown (a fraction in per cent), the target and the anchor (cited in the book, with its
    source in the README), an unknown name as code; and a smoke run's table no targets?"""
    lines = figures.table_lines(RUN, for_book=True)
    assert lines[0] == "| Figure | Value | Unit | Target | Published |"
    assert lines[2].startswith("| LeNet-5, MNIST test accuracy | 98.07 | % | – | 99.05 (")
    assert lines[2].endswith("{cite:p}`lecun1998` |")
    assert lines[3] == "| SmallResNet, MNIST test accuracy | 99.57 | % | ≥ 99.5 | – |"
    assert lines[4] == "| Training time of the networks | 740.2 | s | – | – |"
    assert lines[5] == "| `new_unknown_figure` | 3 | × | – | – |"
    readme = figures.table_lines(RUN, for_book=False)
    assert readme[2].endswith(", LeCun et al. 1998 |") and "cite" not in "".join(readme)
    smoke = figures.table_lines({**RUN, "mode": "smoke"})
    assert smoke[0] == "| Figure | Value | Unit |" and "≥ 99.5" not in "".join(smoke)


def test_the_book_page_and_the_readme_name_the_machine_and_no_raw_identifier():
    """Do the book's page and the README's table give each run's machine (escaped), and the titles
    in place of the recorded names?"""
    results = {"runs": [RUN, {**RUN, "mode": "smoke", "wall_time_s": 15.0}]}
    page = book.results_markdown(results)
    readme = bench.markdown_table(results["runs"])
    assert "**{lesson}`03`**, on `cpu` · Intel Xeon \\| 2 cores · 2026-12-04" in page
    for text in (page, readme):
        assert "SmallResNet, MNIST test accuracy" in text
        assert "resnet_mnist_test_accuracy" not in text
    assert "**Lesson 03** · full mode · cpu · Intel Xeon | 2 cores · 12.7 min wall time" in readme
    assert "| 03 | cpu | 0.2 min | ok | Intel Xeon \\| 2 cores | 2026-12-04 |" in readme


def test_course_book_results_renders_the_json_into_the_page_results_md_and_readme(tmp_path, monkeypatch,
                                                                                  capsys):
    """Does `course book results` write the book's page, benchmarks/RESULTS.md and the README's
    block from benchmarks/results.json (left as it is), and --check then pass?"""
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "book").mkdir()
    source = json.dumps({"runs": [RUN]}, indent=2, sort_keys=True) + "\n"
    (tmp_path / "benchmarks" / "results.json").write_text(source)
    (tmp_path / "README.md").write_text(f"intro\n{bench.README_START}\nold\n{bench.README_END}\nend\n")
    monkeypatch.setattr(book, "_root", lambda root=None: tmp_path)
    assert main(["book", "results", "--check"]) == 1
    assert main(["book", "results"]) == 0
    assert (tmp_path / "benchmarks" / "results.json").read_text() == source
    readme = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert "SmallResNet, MNIST test accuracy | 99.57 | % | ≥ 99.5" in readme and "old" not in readme
    assert readme.startswith("intro\n") and readme.endswith("end\n")
    assert "SmallResNet" in (tmp_path / "benchmarks" / "RESULTS.md").read_text(encoding="utf-8")
    assert "SmallResNet" in (tmp_path / "book" / "results.md").read_text(encoding="utf-8")
    capsys.readouterr()
    assert main(["book", "results", "--check"]) == 0


def test_the_committed_results_are_rendered_from_the_json():
    """Are book/results.md, benchmarks/RESULTS.md and the README's results what
    `course book results` makes of benchmarks/results.json?"""
    stale = bench.render_results(ROOT, check=True)
    assert stale == [], f"run `course book results`: {[str(p.relative_to(ROOT)) for p in stale]}"
