"""Turning a solution notebook into an exercise notebook: an ordered list of small, pure transforms.

Each transform takes a notebook and the name of its file and returns a new notebook (the input is
never modified). ``TRANSFORMS`` is the order they run in; the only order that matters is that
``normalize_metadata`` (which sets nbformat 4.5) runs before ``stable_cell_ids`` (cell ids need 4.5).
"""
from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Callable

import nbformat
from nbformat import NotebookNode

from .markers import MarkerError, clear_source

Transform = Callable[[NotebookNode, str], NotebookNode]

LESSON_RE = re.compile(r"^(\d\d)_[A-Za-z0-9_-]+\.ipynb$")
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
CELL_METADATA_KEPT = ("tags",)
_CELL_ID_RE = re.compile(r"^[a-zA-Z0-9-_]{1,64}$")  # nbformat 4.5's rule for cell ids


def lesson_of(name: str) -> str | None:
    """The lesson number ``"NN"`` of a file named ``NN_slug.ipynb``, else None."""
    m = LESSON_RE.match(name.rsplit("/", 1)[-1])
    return m.group(1) if m else None


def clear_solutions(nb: NotebookNode, name: str) -> NotebookNode:
    """Replace every marked solution by its stub (see ``markers``); malformed markers raise ``MarkerError``."""
    nb = copy.deepcopy(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type in ("code", "markdown"):
            cell.source = clear_source(cell.source, cell.cell_type, where=name, cell=i + 1)
    return nb


def clear_outputs(nb: NotebookNode, name: str) -> NotebookNode:
    """Drop every output and execution count."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return nb


# Notebook metadata that survives into exercises: Colab reads these to open a lab on a GPU runtime.
NOTEBOOK_METADATA_KEPT = ("accelerator", "colab")


def normalize_metadata(nb: NotebookNode, name: str) -> NotebookNode:
    """Keep only the kernelspec, the language name, the lesson and Colab's runtime request; keep
    only cell tags; nbformat 4.5."""
    nb = copy.deepcopy(nb)
    nb.nbformat, nb.nbformat_minor = 4, 5
    metadata = {"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"}}
    metadata.update({k: copy.deepcopy(nb.metadata[k]) for k in NOTEBOOK_METADATA_KEPT if k in nb.metadata})
    lesson = lesson_of(name)
    if lesson:
        metadata["course"] = {"lesson": lesson}
    nb.metadata = nbformat.from_dict(metadata)
    for cell in nb.cells:
        cell.metadata = nbformat.from_dict({k: cell.metadata[k] for k in CELL_METADATA_KEPT if k in cell.metadata})
        if cell.cell_type == "markdown" and not cell.get("attachments"):
            cell.pop("attachments", None)
    return nb


def stable_cell_ids(nb: NotebookNode, name: str) -> NotebookNode:
    """Keep each valid, unique cell id of the source; give any other cell the id ``cell-NN``."""
    nb = copy.deepcopy(nb)
    seen: set[str] = set()
    for i, cell in enumerate(nb.cells):
        cid = cell.get("id")
        if not (isinstance(cid, str) and _CELL_ID_RE.match(cid)) or cid in seen:
            cid = f"cell-{i:02d}"
            while cid in seen:
                cid += "-x"
        cell["id"] = cid
        seen.add(cid)
    return nb


TRANSFORMS: list[Transform] = [clear_solutions, clear_outputs, normalize_metadata, stable_cell_ids]


def check_syntax(nb: NotebookNode, name: str) -> None:
    """Raise ``MarkerError`` if a code cell of the exercise is not valid (IPython) Python."""
    from IPython.core.inputtransformer2 import TransformerManager

    manager = TransformerManager()
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        try:
            compile(manager.transform_cell(cell.source), f"{name} cell {i}", "exec")
        except SyntaxError as exc:
            raise MarkerError(f"the exercise cell is not valid Python after clearing solutions: {exc.msg} "
                              "(is a BEGIN SOLUTION marker indented less than the code it replaces?)",
                              name, i + 1, exc.lineno) from None


def to_exercise(nb: NotebookNode, name: str) -> NotebookNode:
    """The exercise notebook made from solution notebook ``nb`` (file ``name``), validated."""
    for transform in TRANSFORMS:
        nb = transform(nb, name)
    check_syntax(nb, name)
    nbformat.validate(nb)
    return nb


def read_notebook(path) -> NotebookNode:
    """Read a notebook as it is on disk (nbformat.read would replace missing or duplicate ids at random)."""
    text = Path(path).read_text(encoding="utf-8")
    data = json.loads(text)
    if data.get("nbformat") == 4:
        from nbformat.v4.rwbase import rejoin_lines  # cell sources stored as lists of lines

        return rejoin_lines(nbformat.from_dict(data))
    return nbformat.reads(text, as_version=4)


def notebook_text(nb: NotebookNode) -> str:
    """The bytes we write for a notebook: nbformat's JSON (sorted keys, indent 1) and a final newline."""
    return nbformat.writes(nb) + "\n"
