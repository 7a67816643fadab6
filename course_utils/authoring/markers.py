"""The solution markers of ``solutions/*.ipynb``, in one table, and the function that strips them.

In code cells (the style of nbgrader's ``ClearSolutions``)::

    def mse_loss(y_pred, y):
        ### BEGIN SOLUTION
        return ((y_pred - y) ** 2).mean()
        ### END SOLUTION
    lr = 0.1  # SOLUTION

becomes::

    def mse_loss(y_pred, y):
        # YOUR CODE HERE
        raise NotImplementedError()
    lr = ...

An answer can start PRE-FILLED in the exercise (a wrong answer to debug, say): an
``### BEGIN EXERCISE`` ... ``### END EXERCISE`` region right after ``### END SOLUTION`` replaces
the stub. Its lines are commented out in the solution (so the solution never runs them) and are
uncommented in the exercise::

    def add(a, b):
        ### BEGIN SOLUTION
        return a + b
        ### END SOLUTION
        ### BEGIN EXERCISE
        # print(a + b)
        ### END EXERCISE

becomes::

    def add(a, b):
        print(a + b)

In markdown cells, ``<!-- BEGIN SOLUTION -->`` ... ``<!-- END SOLUTION -->`` becomes
``_Your answer here._``. Malformed markers (nested, unclosed, unopened, misspelt, a one-line
marker on a line that is not an assignment, an exercise region not right after a solution region
or with a line that is not commented out) raise ``MarkerError`` naming the file, cell and line.
"""
from __future__ import annotations

import io
import re
import tokenize
from dataclasses import dataclass


@dataclass(frozen=True)
class Marker:
    """One kind of marker: the regular expression of its line and what it stands for."""

    name: str
    cell_type: str  # "code" or "markdown"
    pattern: re.Pattern


# The one table of markers. Matched against a whole line (``fullmatch``), leading spaces allowed.
MARKERS = {
    "begin": Marker("begin", "code", re.compile(r"(?P<indent>[ \t]*)#+[ \t]*BEGIN SOLUTION[ \t]*")),
    "end": Marker("end", "code", re.compile(r"(?P<indent>[ \t]*)#+[ \t]*END SOLUTION[ \t]*")),
    "ex_begin": Marker("ex_begin", "code", re.compile(r"(?P<indent>[ \t]*)#+[ \t]*BEGIN EXERCISE[ \t]*")),
    "ex_end": Marker("ex_end", "code", re.compile(r"(?P<indent>[ \t]*)#+[ \t]*END EXERCISE[ \t]*")),
    "line": Marker("line", "code", re.compile(r"(?P<code>[ \t]*\S.*?)[ \t]*#[ \t]*SOLUTION[ \t]*")),
    "md_begin": Marker("md_begin", "markdown", re.compile(r"[ \t]*<!--[ \t]*BEGIN SOLUTION[ \t]*-->[ \t]*")),
    "md_end": Marker("md_end", "markdown", re.compile(r"[ \t]*<!--[ \t]*END SOLUTION[ \t]*-->[ \t]*")),
}

# What replaces a solution. The stub of a region is indented like its BEGIN marker.
CODE_STUB = ["# YOUR CODE HERE", "raise NotImplementedError()"]
LINE_STUB = "..."  # `lr = 0.1  # SOLUTION` becomes `lr = ...`
MARKDOWN_STUB = "_Your answer here._"

# Anything that looks like a marker but is not one of the table above is an error, not solution text.
_LOOKS_LIKE_MARKER = {
    "code": re.compile(r"(?i)#.*\b(begin|end)[ \t_-]*(solutions?|exercises?)\b|#[ \t]*solutions?[ \t]*$"),
    "markdown": re.compile(r"(?i)<!--.*\bsolutions?\b.*-->"),
}


class MarkerError(ValueError):
    """A malformed solution marker; the message names the file, the cell and the line."""

    def __init__(self, message: str, source: str = "", cell: int | None = None, line: int | None = None):
        self.source, self.cell, self.line, self.reason = source, cell, line, message
        where = ", ".join(p for p in (source, f"cell {cell}" if cell is not None else "",
                                      f"line {line}" if line is not None else "") if p)
        super().__init__(f"{where}: {message}" if where else message)


def _marker_of(line: str, cell_type: str) -> tuple[str, re.Match] | None:
    for marker in MARKERS.values():
        if marker.cell_type == cell_type:
            m = marker.pattern.fullmatch(line)
            if m:
                return marker.name, m
    return None


def _assignment_target(code: str) -> str | None:
    """The text up to and including the first top-level ``=`` of a plain assignment, else None."""
    depth = 0
    try:
        for tok in tokenize.generate_tokens(io.StringIO(code.strip() + "\n").readline):
            if tok.type == tokenize.OP:
                if tok.string in "([{":
                    depth += 1
                elif tok.string in ")]}":
                    depth -= 1
                elif tok.string == "=" and depth == 0:
                    indent = code[: len(code) - len(code.lstrip())]
                    return indent + code.strip()[: tok.end[1]]
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return None
    return None


def _uncomment(line: str, indent: str) -> str | None:
    """``indent + "# code"`` -> ``indent + "code"`` (a blank line stays blank), else None."""
    if not line.strip():
        return ""
    if not line.startswith(indent + "#"):
        return None
    rest = line[len(indent) + 1:]
    code = rest[1:] if rest.startswith(" ") else rest
    return indent + code if code.strip() else ""


def clear_source(source: str, cell_type: str = "code", *, where: str = "", cell: int | None = None) -> str:
    """Replace every solution in one cell's source by its stub; raise ``MarkerError`` if malformed."""
    out: list[str] = []
    open_at: int | None = None  # line number of the BEGIN marker of the solution region we are in
    exercise: tuple[int, str] | None = None  # (line, indent) of the BEGIN EXERCISE we are in
    stub_at: int | None = None  # where in `out` the stub of a region that just closed starts
    for lineno, line in enumerate(source.split("\n"), start=1):
        found = _marker_of(line, cell_type)
        kind = found[0] if found else None
        just_closed, stub_at = stub_at, None
        if exercise is not None and kind != "ex_end":
            if kind is not None:
                raise MarkerError(f"a marker inside the BEGIN EXERCISE region opened at line {exercise[0]}",
                                  where, cell, lineno)
            text = _uncomment(line, exercise[1])
            if text is None:
                raise MarkerError("a line of an exercise region must be commented out ('# ' after the "
                                  "indentation of its BEGIN EXERCISE marker), so that the solution does "
                                  f"not run it; got {line.strip()!r}", where, cell, lineno)
            out.append(text)
        elif kind in ("begin", "md_begin"):
            if open_at is not None:
                raise MarkerError(f"nested BEGIN SOLUTION (the region opened at line {open_at} is not closed)",
                                  where, cell, lineno)
            open_at = lineno
            if kind == "begin":
                indent = found[1].group("indent")
                out.extend(indent + stub for stub in CODE_STUB)
            else:
                out.append(MARKDOWN_STUB)
        elif kind in ("end", "md_end"):
            if open_at is None:
                raise MarkerError("END SOLUTION without a BEGIN SOLUTION before it", where, cell, lineno)
            open_at = None
            if kind == "end":
                stub_at = len(out) - len(CODE_STUB)
        elif kind == "ex_begin":
            if open_at is not None:
                raise MarkerError(f"BEGIN EXERCISE inside the solution region opened at line {open_at}",
                                  where, cell, lineno)
            if just_closed is None:
                raise MarkerError("a BEGIN EXERCISE region must come right after an END SOLUTION line "
                                  "(it replaces that region's stub)", where, cell, lineno)
            del out[just_closed:]  # the pre-filled answer replaces the stub
            exercise = (lineno, found[1].group("indent"))
        elif kind == "ex_end":
            if exercise is None:
                raise MarkerError("END EXERCISE without a BEGIN EXERCISE before it", where, cell, lineno)
            exercise = None
        elif open_at is not None:
            continue  # a solution line: dropped
        elif kind == "line":
            code = found[1].group("code")
            target = _assignment_target(code)
            if target is None:
                raise MarkerError("a line ending in '# SOLUTION' must be a plain assignment such as "
                                  f"'lr = 0.1  # SOLUTION'; got {line.strip()!r}", where, cell, lineno)
            out.append(f"{target} {LINE_STUB}")
        elif cell_type in _LOOKS_LIKE_MARKER and _LOOKS_LIKE_MARKER[cell_type].search(line):
            raise MarkerError(f"this looks like a solution marker but is not one: {line.strip()!r} "
                              "(see the table MARKERS in course_utils/authoring/markers.py)",
                              where, cell, lineno)
        else:
            out.append(line)
    if open_at is not None:
        raise MarkerError("BEGIN SOLUTION is never closed by an END SOLUTION", where, cell, open_at)
    if exercise is not None:
        raise MarkerError("BEGIN EXERCISE is never closed by an END EXERCISE", where, cell, exercise[0])
    return "\n".join(out)


def has_markers(source: str, cell_type: str = "code") -> bool:
    """Does this cell source hold any solution marker?"""
    return any(_marker_of(line, cell_type) for line in source.split("\n"))


def solution_lines(source: str, cell_type: str = "code") -> tuple[list[str], list[str]]:
    """Split a (well-formed) cell into its solution lines and its other lines, markers left out.

    A one-line answer ``lr = 0.1  # SOLUTION`` counts as solution line ``lr = 0.1``; the lines of an
    exercise region count, uncommented, as other lines (the exercise shows them). Used by the
    test that scans every exercise for solution lines that survived.
    """
    inside, outside, is_open, exercise_indent = [], [], False, None
    for line in source.split("\n"):
        found = _marker_of(line, cell_type)
        kind = found[0] if found else None
        if kind in ("begin", "md_begin", "end", "md_end"):
            is_open = kind in ("begin", "md_begin")
        elif kind in ("ex_begin", "ex_end"):
            exercise_indent = found[1].group("indent") if kind == "ex_begin" else None
        elif exercise_indent is not None:
            outside.append(_uncomment(line, exercise_indent) or "")  # shown in the exercise
        elif is_open:
            inside.append(line)
        elif kind == "line":
            inside.append(found[1].group("code"))
        else:
            outside.append(line)
    return inside, outside
