"""The repository's address in the notebooks and pages, written from ``book/_config.yml``.

The config's ``repository`` (``url``, ``branch``) is the one place the course's GitHub address is
written. ``course exercises build`` writes it, through the functions below, into

1. the "Open in Colab" badge in the first cell of every lesson, solution and exercise notebook
   (a solution's badge opens its exercise notebook: the solution is the exercise's source);
2. the Colab block of each notebook's install cell, the ``if "google.colab" in sys.modules:``
   block that pip-installs ``course-utils`` from git at the configured branch (the one the
   badge opens, so that the notebook and the code it installs are of one version), rewritten
   in one canonical form (the package extras it names, such as ``[quant]``, are kept);
3. the ``git clone`` lines (and the ``cd`` into the clone that follows) and ``git+`` addresses
   (with the branch) of ``README.md`` and the book's Markdown pages.

A fork is then one edit of ``book/_config.yml`` and one ``course exercises build``.
"""
from __future__ import annotations

import ast
import copy
import json
import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from nbformat import NotebookNode

from .transforms import LESSON_RE

BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"
BADGE_RE = re.compile(r"\[!\[Open In Colab\]\(" + re.escape(BADGE_IMAGE) + r"\)\]\(([^)\s]*)\)")
COLAB_IF = 'if "google.colab" in sys.modules:'
GITHUB_RE = r"https://github\.com/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+?(?:\.git)?"
NOTEBOOK_FOLDERS = ("notebooks", "solutions")   # written in place; exercises/ is generated
MAX_LINE = 88                                   # the course's limit for a line of code


class LinkError(ValueError):
    """A notebook whose install cell is not the expected Colab install (names file and cell)."""


@dataclass(frozen=True)
class Repository:
    """The course's repository: ``https://github.com/OWNER/NAME`` and the branch pages open from."""

    url: str
    branch: str = "main"

    def __post_init__(self):
        if not re.fullmatch(GITHUB_RE, self.url) or self.url.endswith(".git"):
            raise ValueError(f"repository url must be https://github.com/OWNER/NAME, got {self.url!r}")

    @property
    def name(self) -> str:
        """The repository's name, which is also the folder ``git clone`` makes."""
        return self.url.rsplit("/", 1)[1]

    def colab_url(self, notebook: str) -> str:
        """The Colab address that opens ``notebook`` (a path from the repository root)."""
        github = self.url.removeprefix("https://github.com/")
        return f"https://colab.research.google.com/github/{github}/blob/{self.branch}/{notebook}"

    @classmethod
    def from_config(cls, root: Path | str) -> "Repository":
        """The repository written in ``ROOT/book/_config.yml``."""
        from ..book import repository

        return cls(*repository(root))


def badge_target(name: str) -> str:
    """The notebook a badge opens: itself, except a solution, whose badge opens its exercise."""
    return re.sub(r"^solutions/", "exercises/", name)


def badge(url: str) -> str:
    """The Markdown of the "Open in Colab" badge linking to ``url``."""
    return f"[![Open In Colab]({BADGE_IMAGE})]({url})"


def set_badge(source: str, url: str) -> str:
    """``source`` (a first Markdown cell) with its Colab badge pointing at ``url``; a cell with
    no badge gets one after its title line."""
    if BADGE_RE.search(source):
        return BADGE_RE.sub(lambda m: badge(url), source)
    title, _, rest = source.partition("\n")
    if not title.startswith("# "):
        return source
    return f"{title}\n\n{badge(url)}" + (f"\n\n{rest.lstrip(chr(10))}" if rest.strip() else "")


def install_lines(url: str, extras: str = "", branch: str = "main") -> list[str]:
    """The canonical Colab block: ``repo`` is the repository, pip installs ``course-utils`` from
    its ``branch``."""
    repo = f'    repo = "{url}"'
    if len(repo) > MAX_LINE:  # a very long address: two literals, split after the owner
        owner, name = url.rsplit("/", 1)
        repo = f'    repo = ("{owner}/"\n            "{name}")'
    spec = f'                    f"course-utils{extras} @ git+{{repo}}@{branch}"], check=True)'
    if len(spec) > MAX_LINE:  # a very long branch name: its own literal on the next line
        spec = (f'                    f"course-utils{extras} @ git+{{repo}}@"\n'
                f'                    "{branch}"], check=True)')
    return [COLAB_IF, repo,
            '    subprocess.run([sys.executable, "-m", "pip", "install", "-q",', spec]


def _block(lines: list[str], start: int) -> int:
    """The index just past the indented block that follows the ``if`` line at ``start``."""
    end = start + 1
    while end < len(lines) and (lines[end].startswith((" ", "\t")) or not lines[end].strip()):
        end += 1
    while end > start + 1 and not lines[end - 1].strip():  # trailing blank lines are not the block's
        end -= 1
    return end


def _check_install_block(body: str, where: str) -> str:
    """The extras (``"[quant]"`` or ``""``) of a Colab block that only installs course-utils from
    git; raises ``LinkError`` if the block does anything else."""
    try:
        tree = ast.parse(textwrap.dedent(body))
    except SyntaxError as exc:
        raise LinkError(f"{where}: the Colab block of the install cell is not valid Python "
                        f"({exc.msg})") from None
    *assigns, call = tree.body or [None]
    is_run = (isinstance(call, ast.Expr) and isinstance(call.value, ast.Call)
              and ast.unparse(call.value.func) == "subprocess.run")
    plain = all(isinstance(a, ast.Assign) and isinstance(a.value, ast.Constant) for a in assigns)
    found = re.search(r"course-utils(\[[\w,\s-]*\])?\s*@\s*git\+", body)
    if not (is_run and plain and len(assigns) <= 1 and found):
        raise LinkError(f"{where}: the Colab block of the install cell should only pip-install "
                        "course-utils from git (`course exercises build` rewrites it)")
    return (found.group(1) or "").replace(" ", "")


def set_install(source: str, url: str, where: str = "", branch: str = "main") -> str:
    """``source`` (a code cell) with each Colab install block in canonical form for ``url`` at
    ``branch``."""
    lines = source.split("\n")
    out, i = [], 0
    while i < len(lines):
        if lines[i].strip() == COLAB_IF and "git+" in "\n".join(lines[i:_block(lines, i)]):
            end = _block(lines, i)
            extras = _check_install_block("\n".join(lines[i + 1:end]), where)
            indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
            out += [indent + line if line else line
                    for line in "\n".join(install_lines(url, extras, branch)).split("\n")]
            i = end
        else:
            out.append(lines[i])
            i += 1
    return "\n".join(out)


def is_install_cell(cell) -> bool:
    """Does this cell hold a Colab block that installs course-utils from git?"""
    return (cell.cell_type == "code" and COLAB_IF in cell.source and "git+" in cell.source
            and "course-utils" in cell.source)


def with_links(nb: NotebookNode, name: str, repo: Repository) -> NotebookNode:
    """A copy of ``nb`` (file ``name``, a path from the repository root) with its badge and
    install cells written from ``repo``."""
    nb = copy.deepcopy(nb)
    for i, cell in enumerate(nb.cells):
        if i == 0 and cell.cell_type == "markdown":
            cell.source = set_badge(cell.source, repo.colab_url(badge_target(name)))
        elif is_install_cell(cell):
            cell.source = set_install(cell.source, repo.url, where=f"{name}, cell {i + 1}",
                                      branch=repo.branch)
    return nb


def set_page_links(text: str, repo: Repository) -> str:
    """Markdown ``text`` with each ``git clone`` (and the ``cd`` into the clone right after it)
    and each ``git+`` address (``@`` its branch) pointing at ``repo``."""
    def clone(m: re.Match) -> str:
        old = m.group(2).rsplit("/", 1)[1].removesuffix(".git")
        after = re.sub(rf"^(\s*cd\s+){re.escape(old)}(?![\w.-])",
                       lambda c: c.group(1) + repo.name, m.group(3))
        return f"{m.group(1)}{repo.url}{after}"

    text = re.sub(rf"(git clone[^\S\n]+)({GITHUB_RE})(?![\w/.-])"
                  r"([^\S\n]*\n?[^\S\n]*cd[^\S\n]+\S+|)", clone, text)
    return re.sub(rf"(git\+)({GITHUB_RE})(?:@[\w./-]*[\w-])?(?![\w/@-]|\.\w)",
                  lambda m: f"{m.group(1)}{repo.url}@{repo.branch}", text)


def pages(root: Path) -> list[Path]:
    """The Markdown files that may name the repository: the README and the book's pages."""
    found = [root / "README.md"] + sorted((root / "book").glob("*.md"))
    return [p for p in found if p.is_file()]


def notebooks(root: Path, lessons: list[str] | None = None) -> list[Path]:
    """The lesson and solution notebooks ``NN_slug.ipynb`` (those of ``lessons`` if given)."""
    wanted = {n.zfill(2) for n in lessons or []}
    return [p for folder in NOTEBOOK_FOLDERS for p in sorted((root / folder).glob("*.ipynb"))
            if LESSON_RE.match(p.name) and (not wanted or p.name[:2] in wanted)]


def notebook_file_text(path: Path, name: str, repo: Repository) -> tuple[str, str]:
    """(the file as it is, the file with its links written); only changed cells are touched, so
    the JSON keeps its key order and layout."""
    from .transforms import read_notebook

    text = path.read_text(encoding="utf-8")
    new = with_links(read_notebook(path), name, repo)
    data = json.loads(text)
    changed = False
    for cell, new_cell in zip(data["cells"], new.cells):
        old = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if old != new_cell.source:
            lines = new_cell.source.splitlines(keepends=True)
            cell["source"] = lines if isinstance(cell["source"], list) else new_cell.source
            changed = True
    if not changed:
        return text, text
    return text, json.dumps(data, indent=1, ensure_ascii=False) + ("\n" if text.endswith("\n") else "")


@dataclass
class LinksReport:
    """The files whose links a sync wrote (or, with ``check``, would write)."""

    changed: list[Path] = field(default_factory=list)
    unchanged: list[Path] = field(default_factory=list)


def sync_links(root: Path | str, repo: Repository | None = None, lessons: list[str] | None = None,
               check: bool = False) -> LinksReport:
    """Write the repository's address into the lessons, the solutions and the pages of ``root``.

    Args:
        root: the course checkout.
        repo: default: the one in ``root/book/_config.yml``.
        lessons: only these lessons' notebooks (the pages are always done).
        check: write nothing; report what is out of date.
    Raises:
        LinkError: an install cell does something besides installing the course (nothing is
            written then).
    """
    from .build import _write_atomic

    root = Path(root)
    repo = repo or Repository.from_config(root)
    todo = {}
    for path in notebooks(root, lessons):
        todo[path] = notebook_file_text(path, path.relative_to(root).as_posix(), repo)
    for path in pages(root):
        text = path.read_text(encoding="utf-8")
        todo[path] = (text, set_page_links(text, repo))
    report = LinksReport()
    for path, (old, new) in todo.items():
        if old == new:
            report.unchanged.append(path)
            continue
        report.changed.append(path)
        if not check:
            _write_atomic(path, new)
    return report
