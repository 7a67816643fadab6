"""Unit tests of course_utils.authoring.markers: solution regions, one-line answers, malformed markers."""
import pytest

from course_utils.authoring.markers import (CODE_STUB, MARKDOWN_STUB, MARKERS, MarkerError, clear_source, has_markers,
                                            solution_lines)


def test_region_becomes_stub_at_marker_indentation():
    """Does a BEGIN/END SOLUTION region become '# YOUR CODE HERE' + raise, indented like its marker?"""
    src = ('def mse_loss(y_pred, y):\n'
           '    """Mean squared error."""\n'
           '    ### BEGIN SOLUTION\n'
           '    diff = y_pred - y\n'
           '    return (diff ** 2).mean()\n'
           '    ### END SOLUTION\n'
           'print("after")')
    assert clear_source(src) == ('def mse_loss(y_pred, y):\n'
                                 '    """Mean squared error."""\n'
                                 '    # YOUR CODE HERE\n'
                                 '    raise NotImplementedError()\n'
                                 'print("after")')


def test_deeper_indentation_and_top_level_regions():
    """Is each region's stub indented like that region's own marker (top level and nested blocks)?"""
    src = ("class Net:\n"
           "    def forward(self, x):\n"
           "        if x is None:\n"
           "            ### BEGIN SOLUTION\n"
           "            return 0\n"
           "            ### END SOLUTION\n"
           "### BEGIN SOLUTION\n"
           "model = Net()\n"
           "### END SOLUTION")
    out = clear_source(src).split("\n")
    assert out[3:5] == ["            " + CODE_STUB[0], "            " + CODE_STUB[1]]
    assert out[5:] == CODE_STUB


def test_one_line_answer_keeps_left_hand_side():
    """Does 'lr = 0.1  # SOLUTION' become 'lr = ...', keeping indentation, annotations and attributes?"""
    src = ("lr = 0.1  # SOLUTION\n"
           "num_epochs: int = 5 # SOLUTION\n"
           "    self.fc = nn.Linear(4, 2, bias=True)  #SOLUTION\n"
           "x = f(a=1)  # SOLUTION")
    assert clear_source(src) == "lr = ...\nnum_epochs: int = ...\n    self.fc = ...\nx = ..."


@pytest.mark.parametrize("line", ["x += 1  # SOLUTION", "print(x)  # SOLUTION", "f(a=1)  # SOLUTION",
                                  "x == 1  # SOLUTION"])
def test_one_line_marker_on_a_non_assignment_is_an_error(line):
    """Is a '# SOLUTION' line that is not a plain assignment rejected (it would leave no valid stub)?"""
    with pytest.raises(MarkerError, match="plain assignment"):
        clear_source(f"a = 1\n{line}", where="solutions/01_x.ipynb", cell=3)


@pytest.mark.parametrize("src, line, words", [
    ("### BEGIN SOLUTION\nx = 1\n### BEGIN SOLUTION\ny = 2\n### END SOLUTION\n### END SOLUTION", 3, "nested"),
    ("a = 0\n### BEGIN SOLUTION\nx = 1\n", 2, "never closed"),
    ("x = 1\n### END SOLUTION", 2, "without a BEGIN"),
    ("## begin solution\nx = 1", 1, "looks like a solution marker"),
    ("x = 1\n# END SOLUTIONS", 2, "looks like a solution marker"),
    ("x = 1  # solution", 1, "looks like a solution marker"),
])
def test_malformed_markers_name_file_cell_and_line(src, line, words):
    """Does every malformed marker raise an error naming the file, the cell and the line?"""
    with pytest.raises(MarkerError) as info:
        clear_source(src, where="solutions/01_x.ipynb", cell=7)
    message = str(info.value)
    assert words in message
    assert message.startswith(f"solutions/01_x.ipynb, cell 7, line {line}: ")
    assert (info.value.cell, info.value.line) == (7, line)


def test_markdown_solution_region():
    """Does a markdown '<!-- BEGIN SOLUTION -->' region become a placeholder, and a malformed one fail?"""
    src = "Why?\n<!-- BEGIN SOLUTION -->\nBecause the gradient vanishes.\n<!-- END SOLUTION -->\nNext."
    assert clear_source(src, "markdown") == f"Why?\n{MARKDOWN_STUB}\nNext."
    with pytest.raises(MarkerError, match="never closed"):
        clear_source("<!-- BEGIN SOLUTION -->\nsecret", "markdown")
    with pytest.raises(MarkerError, match="looks like"):
        clear_source("<!-- BEGIN SOLUTIONS -->", "markdown")


def test_code_markers_are_left_alone_in_markdown_and_prose_is_not_a_marker():
    """Is ordinary text (a '# Solution' heading, prose about solutions) left untouched?"""
    text = "# Solution of the exercise\nThe solution is short."
    assert clear_source(text, "markdown") == text
    code = "solution = 3  # the best solution found\nprint(solution)"
    assert clear_source(code) == code


def test_clearing_is_idempotent_and_leaves_no_marker():
    """Does clearing an already cleared cell change nothing, and does no marker or solution line survive?"""
    src = "def f(x):\n    ### BEGIN SOLUTION\n    return secret_formula(x)\n    ### END SOLUTION\nlr = 3e-4  # SOLUTION"
    once = clear_source(src)
    assert clear_source(once) == once
    assert not has_markers(once)
    assert "secret_formula" not in once and "3e-4" not in once


def test_marker_table_covers_code_and_markdown():
    """Does the one table of markers hold the code region, one-line and markdown markers?"""
    assert {m.name for m in MARKERS.values()} == {"begin", "end", "ex_begin", "ex_end", "line", "md_begin",
                                                  "md_end"}
    assert {m.cell_type for m in MARKERS.values()} == {"code", "markdown"}


PREFILLED = ("def add(a, b):\n"
             "    \"\"\"Return a + b.\"\"\"\n"
             "    ### BEGIN SOLUTION\n"
             "    return a + b\n"
             "    ### END SOLUTION\n"
             "    ### BEGIN EXERCISE\n"
             "    # print(a + b)  # a classic bug: prints, returns None\n"
             "    #\n"
             "    #     # indented comment\n"
             "    ### END EXERCISE\n"
             "x = 1")


def test_exercise_region_replaces_the_stub_uncommented():
    """Does a BEGIN/END EXERCISE region right after a solution become the exercise's code, uncommented
    at its marker's indentation, in place of the stub?"""
    assert clear_source(PREFILLED) == ("def add(a, b):\n"
                                       "    \"\"\"Return a + b.\"\"\"\n"
                                       "    print(a + b)  # a classic bug: prints, returns None\n"
                                       "\n"
                                       "        # indented comment\n"
                                       "x = 1")
    assert clear_source(clear_source(PREFILLED)) == clear_source(PREFILLED)
    assert "NotImplementedError" not in clear_source(PREFILLED)


def test_solution_with_an_exercise_region_runs_the_solution_only():
    """Does the solution notebook run the solution and not the (commented-out) pre-filled answer?"""
    scope: dict = {}
    exec(PREFILLED, scope)
    assert scope["add"](2, 3) == 5
    scope = {}
    exec(clear_source(PREFILLED), scope)
    assert scope["add"](2, 3) is None  # the exercise ships the bug


def test_exercise_lines_are_public_not_secret():
    """Does solution_lines count an exercise region's lines (uncommented) as public, not as solution?"""
    inside, outside = solution_lines(PREFILLED)
    assert inside == ["    return a + b"]
    assert "    print(a + b)  # a classic bug: prints, returns None" in outside
    assert not any("EXERCISE" in line for line in inside + outside)


@pytest.mark.parametrize("src, line, words", [
    ("x = 1\n### BEGIN EXERCISE\n# y = 2\n### END EXERCISE", 2, "right after an END SOLUTION"),
    ("### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n\n### BEGIN EXERCISE\n# x = 2\n### END EXERCISE", 5,
     "right after an END SOLUTION"),
    ("### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n### BEGIN EXERCISE\nx = 2\n### END EXERCISE", 5,
     "must be commented out"),
    ("### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n### BEGIN EXERCISE\n# x = 2", 4, "never closed"),
    ("x = 1\n### END EXERCISE", 2, "without a BEGIN EXERCISE"),
    ("### BEGIN SOLUTION\nx = 1\n### BEGIN EXERCISE\n# x = 2\n### END EXERCISE\n### END SOLUTION", 3,
     "inside the solution region"),
    ("### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n### BEGIN EXERCISE\n### BEGIN SOLUTION\n### END EXERCISE",
     5, "inside the BEGIN EXERCISE"),
    ("x = 1\n# begin exercise", 2, "looks like a solution marker"),
    ("x = 1\n# END EXERCISES", 2, "looks like a solution marker"),
])
def test_malformed_exercise_regions_name_file_cell_and_line(src, line, words):
    """Is every malformed exercise region (misplaced, uncommented, unclosed, misspelt) an error at its line?"""
    with pytest.raises(MarkerError) as info:
        clear_source(src, where="solutions/01_x.ipynb", cell=2)
    assert words in str(info.value)
    assert (info.value.cell, info.value.line) == (2, line)
