"""Tests of course_utils.authoring.links: the repository's address, written from book/_config.yml
into every notebook's Colab badge and install cell, the README and the book's pages."""
from __future__ import annotations

import ast
import re
import shutil
import textwrap
from pathlib import Path

import nbformat
import pytest

from course_utils.authoring import build_exercises
from course_utils.authoring.links import (BADGE_RE, COLAB_IF, LinkError, Repository, badge, badge_target,
                                          install_lines, is_install_cell, set_badge, set_install,
                                          set_page_links, sync_links, with_links)
from course_utils.authoring.transforms import read_notebook
from course_utils.cli import main

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(p for folder in ("notebooks", "solutions", "exercises")
                   for p in (ROOT / folder).glob("[0-9][0-9]_*.ipynb"))
LESSONS = sorted({p.name[:2] for p in NOTEBOOKS})
FORK = Repository("https://github.com/a-fork/dl-course-fork", "spring")


# ----------------------------------------------------------------------------- an independent reading

def pip_specs(source: str) -> list[str]:
    """The package specs that the Colab block of a code cell pip-installs, worked out from the
    code itself (names bound to strings, f-strings, adjacent literals), not from its layout."""
    tree = ast.parse(source)
    specs = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.If)
                and ast.unparse(node.test) == "'google.colab' in sys.modules"):
            continue
        names = {t.id: a.value.value for a in node.body if isinstance(a, ast.Assign)
                 for t in a.targets if isinstance(t, ast.Name) and isinstance(a.value, ast.Constant)}

        def value(expr):
            if isinstance(expr, ast.Constant):
                return str(expr.value)
            if isinstance(expr, ast.Name):
                return names.get(expr.id, "")
            if isinstance(expr, ast.JoinedStr):
                return "".join(value(v.value if isinstance(v, ast.FormattedValue) else v)
                               for v in expr.values)
            return ""

        for call in ast.walk(ast.Module(body=node.body, type_ignores=[])):
            if isinstance(call, ast.Call) and ast.unparse(call.func) == "subprocess.run":
                args = call.args[0].elts if call.args and isinstance(call.args[0], ast.List) else []
                specs += [value(a) for a in args if "git+" in value(a)]
    return sorted(set(specs))


def link_problems(nb, name: str, repo: Repository) -> list[str]:
    """What in a notebook does not agree with ``repo``: its badge, its install cell."""
    problems = []
    first = nb.cells[0].source if nb.cells and nb.cells[0].cell_type == "markdown" else ""
    badges = BADGE_RE.findall(first)
    expected = repo.colab_url(badge_target(name))
    if badges != [expected]:
        problems.append(f"{name}: badge {badges}, expected [{expected}]")
    installs = [c for c in nb.cells if is_install_cell(c)]
    if len(installs) != 1:
        problems.append(f"{name}: {len(installs)} install cells, expected 1")
    for cell in installs:
        specs = pip_specs(cell.source)
        where = f"{repo.url}@{repo.branch}"
        if len(specs) != 1 or not re.fullmatch(
                r"course-utils(\[[\w,-]+\])? @ git\+" + re.escape(where), specs[0]):
            problems.append(f"{name}: installs {specs}, expected course-utils @ git+{where}")
    return problems


# ----------------------------------------------------------------------------- the course itself

@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_badge_and_install_cell_agree_with_the_config(path):
    """Does this notebook's Colab badge open it (a solution: its exercise) from the repository
    and branch of book/_config.yml, and does its install cell pip-install course-utils from that
    repository and branch, and no other?"""
    name = path.relative_to(ROOT).as_posix()
    assert link_problems(read_notebook(path), name, Repository.from_config(ROOT)) == []


def test_the_check_sees_a_hand_edited_badge_or_install_cell():
    """Does that check fail for a badge or an install cell edited by hand to another address,
    whatever the layout of the install cell (the split literal of an older form included)?"""
    repo = Repository.from_config(ROOT)
    name = "notebooks/01_gradient_descent.ipynb"
    nb = read_notebook(ROOT / name)
    assert link_problems(nb, name, repo) == []
    edited = with_links(nb, name, FORK)
    edited.cells[0].source = with_links(nb, name, repo).cells[0].source  # only the install cell
    assert [p for p in link_problems(edited, name, repo) if "installs" in p]
    edited = with_links(nb, name, repo)
    edited.cells[0].source = edited.cells[0].source.replace("/blob/main/", "/blob/dev/")
    assert [p for p in link_problems(edited, name, repo) if "badge" in p]
    other_branch = Repository(repo.url, "dev")  # the right address, another branch
    edited = with_links(nb, name, other_branch)
    edited.cells[0].source = with_links(nb, name, repo).cells[0].source
    assert [p for p in link_problems(edited, name, repo) if "installs" in p]
    split = nbformat.v4.new_code_cell(
        'import sys, subprocess\nif "google.colab" in sys.modules:\n'
        '    subprocess.run([sys.executable, "-m", "pip", "install", "-q",\n'
        '                    "course-utils @ git+https://github.com/a-fork/"\n'
        '                    "dl-course-fork"], check=True)')
    assert pip_specs(split.source) == ["course-utils @ git+https://github.com/a-fork/dl-course-fork"]
    nb.cells[1] = split
    assert [p for p in link_problems(nb, name, repo) if "installs" in p]


@pytest.mark.parametrize("lesson", LESSONS)
def test_the_generator_has_nothing_left_to_write(lesson):
    """Is this lesson's every notebook what `course exercises build` writes from the config
    (the badges and install cells of its lesson and solution, its generated exercise)?"""
    repo = Repository.from_config(ROOT)
    links = sync_links(ROOT, repo, [lesson], check=True)
    exercises = build_exercises(ROOT / "solutions", ROOT / "exercises", check=True, repo=repo,
                                lessons=[lesson])
    stale = [p.relative_to(ROOT).as_posix() for p in links.changed + exercises.stale]
    assert stale == [], f"run `course exercises build {lesson}`"


def test_every_clone_and_git_address_of_the_pages_is_the_config():
    """Does every `git clone` and `git+` address of the README and the book's pages name the
    repository of book/_config.yml (a `git+` address at its branch), and does a `cd` after a clone enter the clone's folder?"""
    repo = Repository.from_config(ROOT)
    texts = {p.relative_to(ROOT).as_posix(): p.read_text(encoding="utf-8")
             for p in [ROOT / "README.md", *sorted((ROOT / "book").glob("*.md"))]}
    found = 0
    for name, text in texts.items():
        for url in re.findall(r"git clone\s+(https://github\.com/[\w./-]+)", text):
            assert url == repo.url, f"{name}: {url}"
            found += 1
        for url in re.findall(r"git\+(https://github\.com/[\w./@-]+)", text):
            assert url == f"{repo.url}@{repo.branch}", f"{name}: {url}"
            found += 1
        for folder in re.findall(r"git clone\s+\S+\s*\n?\s*cd\s+([\w.-]+)", text):
            assert folder == repo.name, f"{name}: cd {folder}"
    assert found >= 3  # the README's pip line, the set-up page's and the intro's clone


# ----------------------------------------------------------------------------- the transforms

OLD_FORMS = {
    "spec": '    spec = "course-utils @ git+https://github.com/o/n"\n'
            '    subprocess.run([sys.executable, "-m", "pip", "install", "-q", spec], check=True)',
    "repo": '    repo = "https://github.com/o/n"\n'
            '    subprocess.run([sys.executable, "-m", "pip", "install", "-q",\n'
            '                    f"course-utils[quant] @ git+{repo}"], check=True)',
    "one literal": '    subprocess.run(\n        [sys.executable, "-m", "pip", "install", "-q",\n'
                   '         "course-utils @ git+https://github.com/o/n"],\n        check=True)',
    "split literal": '    subprocess.run([sys.executable, "-m", "pip", "install", "-q",\n'
                     '                    "course-utils @ git+https://github.com/o/"\n'
                     '                    "n"], check=True)',
}


@pytest.mark.parametrize("form", OLD_FORMS)
def test_every_form_of_install_cell_becomes_the_canonical_one(form):
    """Does each layout the course's install cells had become the one canonical block for the new
    address, keeping the extras, the lines around the block, and valid Python?"""
    cell = ("# Set-up\nimport sys, subprocess\n" + COLAB_IF + "\n" + OLD_FORMS[form]
            + "\nfrom course_utils import describe_runtime\ndescribe_runtime();")
    out = set_install(cell, FORK.url, branch=FORK.branch)
    extras = "[quant]" if form == "repo" else ""
    block = "\n".join(install_lines(FORK.url, extras, FORK.branch))
    assert out == ("# Set-up\nimport sys, subprocess\n" + block
                   + "\nfrom course_utils import describe_runtime\ndescribe_runtime();")
    assert pip_specs(out) == [f"course-utils{extras} @ git+{FORK.url}@{FORK.branch}"]
    assert set_install(out, FORK.url, branch=FORK.branch) == out


def test_an_install_block_that_does_more_is_refused():
    """Is a Colab block that does something besides installing the course an error naming the
    cell, rather than silently rewritten away?"""
    cell = (COLAB_IF + '\n    repo = "https://github.com/o/n"\n'
            '    subprocess.run(["pip", "install", f"course-utils @ git+{repo}"], check=True)\n'
            '    from google.colab import drive; drive.mount("/content/drive")')
    with pytest.raises(LinkError, match="notebooks/01_x.ipynb, cell 2"):
        set_install(cell, FORK.url, where="notebooks/01_x.ipynb, cell 2")


def test_a_long_address_stays_within_the_line_limit():
    """Does an address too long for one 88-character line still give short, valid code that
    installs from it?"""
    url = "https://github.com/" + "o" * 39 + "/" + "n" * 60
    for branch in ("main", "release/" + "b" * 40):  # and a branch too long for the spec's line
        out = set_install(COLAB_IF + "\n" + OLD_FORMS["spec"], url, branch=branch)
        assert max(len(line) for line in out.split("\n")) <= 88
        assert pip_specs("import sys, subprocess\n" + out) == [f"course-utils @ git+{url}@{branch}"]
        assert set_install(out, url, branch=branch) == out


def test_badges_open_the_notebook_and_a_missing_one_is_added():
    """Does a badge open its notebook from the fork's branch (a solution: its exercise), and does
    a first cell without one get it under its title?"""
    assert badge_target("solutions/03_cnn.ipynb") == "exercises/03_cnn.ipynb"
    url = FORK.colab_url("notebooks/01_x.ipynb")
    assert url == ("https://colab.research.google.com/github/a-fork/dl-course-fork/blob/spring/"
                   "notebooks/01_x.ipynb")
    old = "# 01 · X\n\n[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]" \
          "(https://colab.research.google.com/github/o/n/blob/main/notebooks/01_x.ipynb)\n\nText."
    assert BADGE_RE.findall(set_badge(old, url)) == [url]
    assert set_badge(old, url).endswith("\n\nText.")
    assert set_badge("# 01 · X\n\nText.", url) == f"# 01 · X\n\n{badge(url)}\n\nText."
    assert set_badge("No title.", url) == "No title."


def test_pages_get_the_clone_and_its_folder_and_keep_other_addresses():
    """Does a page's `git clone` get the fork's address and the `cd` after it the fork's folder
    name, a `git+` address the fork's, while other GitHub links stay as they are?"""
    text = textwrap.dedent("""\
        ```bash
        git clone https://github.com/o/deep-learning-course
        cd deep-learning-course
        ```
          git clone https://github.com/o/deep-learning-course.git
          cd deep-learning-course && make lab
        `pip install "course-utils @ git+https://github.com/o/deep-learning-course"`
        `pip install "course-utils[quant] @ git+https://github.com/o/deep-learning-course@dev"`.
        See https://github.com/karpathy/micrograd and `cd deep-learning-course-old`.
        """)
    out = set_page_links(text, FORK)
    assert out.count("git clone https://github.com/a-fork/dl-course-fork\n") == 2
    assert "\ncd dl-course-fork\n" in out and "  cd dl-course-fork && make lab" in out
    assert "git+https://github.com/a-fork/dl-course-fork@spring\"`\n" in out
    assert "git+https://github.com/a-fork/dl-course-fork@spring\"`.\n" in out  # not @dev
    assert "https://github.com/karpathy/micrograd" in out and "cd deep-learning-course-old" in out
    assert set_page_links(out, FORK) == out


def test_only_badge_and_install_cells_change():
    """Does writing the links leave every other cell of a lesson alone, GitHub links in its text
    included?"""
    name = "notebooks/02_backpropagation.ipynb"
    nb = read_notebook(ROOT / name)
    out = with_links(nb, name, FORK)
    changed = [i for i, (a, b) in enumerate(zip(nb.cells, out.cells)) if a.source != b.source]
    install = next(i for i, c in enumerate(nb.cells) if is_install_cell(c))
    assert changed == [0, install]
    assert "https://github.com/karpathy/micrograd" in "".join(c.source for c in out.cells)


# ----------------------------------------------------------------------------- the command

@pytest.fixture
def fork(tmp_path):
    """A copy of part of the course (a lesson, two solutions, the README and two pages) whose
    book/_config.yml names a fork."""
    (tmp_path / "book").mkdir()
    for rel in ("notebooks/01_gradient_descent.ipynb", "notebooks/02_backpropagation.ipynb",
                "solutions/00_warmup.ipynb", "solutions/03_convolutional_networks.ipynb",
                "README.md", "book/setup.md", "book/intro.md"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / rel, tmp_path / rel)
    config = (ROOT / "book" / "_config.yml").read_text(encoding="utf-8")
    config = re.sub(r"(?m)^(\s*url:).*$", rf"\1 {FORK.url}", config, count=1)
    config = re.sub(r"(?m)^(\s*branch:).*$", rf"\1 {FORK.branch}", config, count=1)
    (tmp_path / "book" / "_config.yml").write_text(config, encoding="utf-8")
    assert Repository.from_config(tmp_path) == FORK
    return tmp_path


def test_a_fork_is_one_config_edit_and_one_build(fork, capsys):
    """After the fork's address is written in book/_config.yml, does one `course exercises build`
    point every badge, install cell, exercise, clone line and pip line at the fork, leaving no
    trace of the old address; and is a second build a no-op that --check passes?"""
    args = ["exercises", "build", "--solutions", str(fork / "solutions")]
    assert main(args + ["--check"]) == 1
    assert main(args) == 0
    files = sorted(p for p in fork.rglob("*") if p.suffix in (".ipynb", ".md"))
    assert {p.relative_to(fork).as_posix() for p in files} >= {
        "exercises/00_warmup.ipynb", "exercises/03_convolutional_networks.ipynb"}
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert "open-dl-course" not in text, path
        if path.suffix == ".ipynb":
            name = path.relative_to(fork).as_posix()
            assert link_problems(read_notebook(path), name, FORK) == []
            nbformat.validate(nbformat.reads(text, as_version=4))
    assert "git clone https://github.com/a-fork/dl-course-fork\ncd dl-course-fork\n" in (
        fork / "book" / "setup.md").read_text(encoding="utf-8")
    capsys.readouterr()
    assert main(args) == 0
    assert "wrote" not in capsys.readouterr().out
    assert main(args + ["--check"]) == 0


def test_the_lessons_given_are_the_only_ones_written(fork, capsys):
    """Does `course exercises build 03` write lesson 03 only (and the pages), leaving lesson 01's
    notebook and solution 00 with the old address?"""
    args = ["exercises", "build", "--solutions", str(fork / "solutions")]
    assert main(args + ["03"]) == 0
    assert "open-dl-course" not in (fork / "solutions" / "03_convolutional_networks.ipynb").read_text()
    assert (fork / "exercises" / "03_convolutional_networks.ipynb").exists()
    assert not (fork / "exercises" / "00_warmup.ipynb").exists()
    assert "open-dl-course" in (fork / "notebooks" / "01_gradient_descent.ipynb").read_text()
    assert main(args + ["3x"]) == 2


def test_a_course_without_config_keeps_its_links(tmp_path, capsys):
    """Without book/_config.yml (a folder of solutions on its own), does the build write the
    exercises and leave their links as the solutions have them?"""
    (tmp_path / "solutions").mkdir()
    shutil.copyfile(ROOT / "solutions" / "00_warmup.ipynb", tmp_path / "solutions" / "00_warmup.ipynb")
    assert main(["exercises", "build", "--solutions", str(tmp_path / "solutions")]) == 0
    assert "left as they are" in capsys.readouterr().out
    solution = read_notebook(tmp_path / "solutions" / "00_warmup.ipynb")
    exercise = read_notebook(tmp_path / "exercises" / "00_warmup.ipynb")
    assert exercise.cells[0].source == solution.cells[0].source
