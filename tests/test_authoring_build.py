"""Tests of course_utils.authoring.build and transforms: the golden exercise, idempotence, --check.

Regenerate the golden file after an intended change with ``UPDATE_GOLDEN=1 pytest tests/test_authoring_build.py``.
"""
import json
import os
import shutil
from pathlib import Path

import nbformat
import pytest

from course_utils.authoring import MarkerError, build_exercises
from course_utils.authoring.transforms import (TRANSFORMS, clear_outputs, normalize_metadata, read_notebook,
                                               stable_cell_ids)
from course_utils.cli import main

GOLDEN = Path(__file__).resolve().parent / "golden"
SOURCE = GOLDEN / "99_markers.ipynb.fixture"  # a solution notebook with every marker, outputs and odd metadata
NAME = "99_markers.ipynb"                        # its name in the course folder
EXPECTED = GOLDEN / "99_markers_exercise.ipynb"  # what the build must make of it


@pytest.fixture
def course(tmp_path):
    """A course folder with solutions/99_markers.ipynb and an empty exercises/."""
    (tmp_path / "solutions").mkdir()
    (tmp_path / "exercises").mkdir()
    shutil.copyfile(SOURCE, tmp_path / "solutions" / NAME)
    return tmp_path


def test_generated_exercise_matches_golden(course):
    """Is the exercise built from the golden solution byte for byte the golden exercise?"""
    report = build_exercises(course / "solutions", course / "exercises")
    out = course / "exercises" / NAME
    assert report.changed == [out]
    text = out.read_text(encoding="utf-8")
    if os.environ.get("UPDATE_GOLDEN"):
        EXPECTED.write_text(text, encoding="utf-8")
    assert text == EXPECTED.read_text(encoding="utf-8"), "run with UPDATE_GOLDEN=1 if the change is intended"
    nbformat.validate(nbformat.reads(text, as_version=4))


def test_golden_exercise_has_no_solution_and_no_output():
    """Does the golden exercise hold stubs, no solution text, no outputs, and only the kept metadata?"""
    nb = read_notebook(EXPECTED)
    text = EXPECTED.read_text(encoding="utf-8")
    for secret in ("np.maximum", "0.05", "self.w = 1", "gradient is 1", "model = Net()", "SOLUTION"):
        assert secret not in text
    assert text.count("raise NotImplementedError()") == 4
    assert "lr = ...\\n" in text and "batch_size = 32" in text
    assert nb.metadata == {"course": {"lesson": "99"}, "language_info": {"name": "python"},
                           "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python",
                                          "name": "python3"}}
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in nb.cells if c.cell_type == "code")
    assert [c.id for c in nb.cells] == ["intro", "setup", "relu", "cell-03", "settings", "why", "cell-06", "net",
                                        "cell-08"]
    assert nb.cells[1].metadata == {"tags": ["setup"]}


def test_building_twice_changes_nothing(course):
    """Is the build idempotent: a second run writes nothing and leaves the bytes as they were?"""
    build_exercises(course / "solutions", course / "exercises")
    out = course / "exercises" / NAME
    first, mtime = out.read_bytes(), out.stat().st_mtime_ns
    report = build_exercises(course / "solutions", course / "exercises")
    assert report.changed == [] and report.unchanged == [out]
    assert out.read_bytes() == first and out.stat().st_mtime_ns == mtime


def test_transforms_are_pure_and_idempotent():
    """Does each transform leave its input alone and give the same notebook when applied twice?"""
    nb = read_notebook(SOURCE)
    before = json.dumps(nb, sort_keys=True)
    for transform in TRANSFORMS:
        once = transform(nb, NAME)
        assert json.dumps(nb, sort_keys=True) == before, f"{transform.__name__} modified its input"
        assert transform(once, NAME) == once, f"{transform.__name__} is not idempotent"
    assert clear_outputs(nb, "x").cells[1].outputs == []
    assert normalize_metadata(nb, "x.ipynb").metadata.get("course") is None  # no lesson in that name
    assert stable_cell_ids(nb, "x").cells[6].id == "cell-06"  # the cell without an id


def test_check_names_stale_and_orphan_files(course, capsys):
    """Does 'course exercises build --check' exit 1 naming stale and orphan files, and 0 once built?"""
    args = ["exercises", "build", "--solutions", str(course / "solutions"), "--exercises", str(course / "exercises")]
    assert main(args + ["--check"]) == 1
    assert f"stale: {os.path.relpath(course / 'exercises' / NAME)} (run" in capsys.readouterr().out
    assert not (course / "exercises" / NAME).exists(), "--check must not write"
    assert main(args) == 0
    assert main(args + ["--check"]) == 0
    assert "up to date" in capsys.readouterr().out
    (course / "exercises" / "98_old.ipynb").write_text("{}")
    assert main(args + ["--check"]) == 1
    assert "98_old.ipynb has no solutions/98_old.ipynb" in capsys.readouterr().out
    (course / "exercises" / "98_old.ipynb").unlink()
    out = course / "exercises" / NAME
    out.write_text(out.read_text().replace("raise NotImplementedError()", "pass"))  # hand-edited exercise
    assert main(args + ["--check"]) == 1


def test_malformed_marker_fails_the_build_naming_file_cell_line(course, capsys):
    """Does a solution with an unclosed region stop the build with file, cell and line, writing nothing?"""
    nb = stable_cell_ids(read_notebook(SOURCE), NAME)  # unique ids: nbformat.writes would warn
    nb.cells[2].source = nb.cells[2].source.replace("    ### END SOLUTION", "")
    (course / "solutions" / "97_bad.ipynb").write_text(nbformat.writes(nb))
    with pytest.raises(MarkerError) as info:
        build_exercises(course / "solutions", course / "exercises")
    assert str(info.value).startswith("solutions/97_bad.ipynb, cell 3, line 3: BEGIN SOLUTION is never closed")
    assert list((course / "exercises").iterdir()) == [], "nothing is written when one source is malformed"
    args = ["exercises", "build", "--solutions", str(course / "solutions"), "--exercises", str(course / "exercises")]
    assert main(args) == 1
    assert "97_bad.ipynb, cell 3, line 3" in capsys.readouterr().err


def test_a_stub_indented_less_than_its_code_is_an_error(course):
    """Is an exercise that would not be valid Python (marker indented less than the code) rejected?"""
    nb = stable_cell_ids(read_notebook(SOURCE), NAME)  # unique ids: nbformat.writes would warn
    nb.cells[2].source = "def relu(x):\n### BEGIN SOLUTION\n    return x\n### END SOLUTION\n    y = 1"
    (course / "solutions" / "97_bad.ipynb").write_text(nbformat.writes(nb))
    with pytest.raises(MarkerError, match="cell 3.*not valid Python"):
        build_exercises(course / "solutions", course / "exercises", check=True)


def test_colab_gpu_request_survives_into_the_exercise():
    """Does an exercise keep the solution's Colab GPU request (accelerator, colab.gpuType) and drop other metadata?"""
    nb = nbformat.v4.new_notebook()
    nb.metadata.update({"accelerator": "GPU", "colab": {"gpuType": "T4"}, "widgets": {"state": {}}, "toc": {}})
    out = normalize_metadata(nb, "03_convolutional_networks.ipynb")
    assert out.metadata["accelerator"] == "GPU" and out.metadata["colab"] == {"gpuType": "T4"}
    assert "widgets" not in out.metadata and "toc" not in out.metadata


def test_a_prefilled_answer_is_built_into_the_exercise(course):
    """Does a solution cell with an exercise region build into an exercise that ships the pre-filled
    (wrong) answer, valid Python, with no stub and no marker, while the solution keeps its answer?"""
    nb = stable_cell_ids(read_notebook(SOURCE), NAME)  # unique ids: nbformat.writes would warn
    nb.cells[2].source = ("def relu(x):\n    ### BEGIN SOLUTION\n    return np.maximum(x, 0)\n"
                          "    ### END SOLUTION\n    ### BEGIN EXERCISE\n    # return np.minimum(x, 0)\n"
                          "    ### END EXERCISE")
    (course / "solutions" / NAME).write_text(nbformat.writes(nb))
    build_exercises(course / "solutions", course / "exercises")
    cell = read_notebook(course / "exercises" / NAME).cells[2]
    assert cell.source == "def relu(x):\n    return np.minimum(x, 0)"
    assert "np.maximum" in read_notebook(course / "solutions" / NAME).cells[2].source
