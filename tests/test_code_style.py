"""Are the code cells of every notebook (lessons, exercises, solutions) at most 88
characters a line, the course's limit for code? Markdown cells may be longer."""
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(p for d in ("notebooks", "solutions", "exercises")
                   for p in (ROOT / d).glob("*.ipynb"))
MAX_LINE = 88


def long_lines(nb) -> list[str]:
    """'cell C, line L (N characters): ...' for every code line of nb longer than
    MAX_LINE (cells and lines counted from 1, as the editors show them)."""
    out = []
    for c, cell in enumerate(nb.cells, 1):
        if cell.cell_type != "code":
            continue
        for n, line in enumerate(cell.source.split("\n"), 1):
            if len(line) > MAX_LINE:
                out.append(f"cell {c}, line {n} ({len(line)} characters): "
                           f"{line[:60]}...")
    return out


def test_there_are_notebooks_to_check():
    """Does the test see the lessons, the exercises and the solutions?"""
    assert {p.parent.name for p in NOTEBOOKS} == {"notebooks", "solutions", "exercises"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_code_lines_are_at_most_88_characters(path):
    """Is every line of every code cell of this notebook at most 88 characters long?"""
    found = long_lines(nbformat.read(path, as_version=4))
    where = path.relative_to(ROOT)
    header = (f"{where}: {len(found)} code line(s) longer than {MAX_LINE} characters "
              "(cells and lines counted from 1):")
    assert not found, "\n".join([header] + [f"  {where}, {line}" for line in found])


def test_the_check_counts_characters_and_ignores_markdown():
    """Does the check flag an 89-character code line (counting characters, not bytes:
    § is one), pass an 88-character one, and leave a long markdown line alone?"""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("m" * 200),
                nbformat.v4.new_code_cell("x = 1\n" + "§" * 88),
                nbformat.v4.new_code_cell("y = 2\n\n" + "#" * 89)]
    found = long_lines(nb)
    assert len(found) == 1 and found[0].startswith("cell 3, line 3 (89 characters)")
