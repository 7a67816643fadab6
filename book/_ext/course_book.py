"""Sphinx extension of the course book: the ``{lesson}`` role and error-tolerant exercise pages.

- ``{lesson}`01``` links to the page of lesson 01 (``notebooks/01_*``) with its title; while that
  lesson is not written yet it renders as plain text "Lesson 01", so pages that name lessons (the
  glossary, the results) build at every stage of the course. ``{lesson}`01 <exercises>``` links to
  the lesson's exercise page instead.
- A link (``{doc}`` or a Markdown link to the ``.ipynb``/``.md`` file) to a page that
  ``book/_toc.yml`` plans but that is not written yet renders as its plain text instead of failing
  the build (``course book build`` leaves such pages out of the table of contents).
- The notebooks' "Open in Colab" badge image is served from the site (``_static/colab-badge.svg``)
  instead of colab.research.google.com, so a page loads nothing from the network; the badge still
  links to Colab.
- ``author_year_round``: sphinxcontrib-bibtex's author-year citations with round brackets,
  "(Rumelhart et al., 1986)" and "Rumelhart et al. (1986)", as the lessons' reference lists write them.
- A smoke build (``COURSE_SMOKE=1``, as ``course book build`` runs by default) puts a banner at
  the top of every page saying that its outputs come from smoke mode and linking to the results
  page; a full build (``course book build --full``) has none.
- A figure a notebook draws gets alt text from the titles its cell sets (``set_title``,
  ``suptitle``, ``title=``), else from its section, instead of its hashed file name.
- Exercise pages (``exercises/*.ipynb``) execute with errors allowed: their stubs raise
  ``NotImplementedError`` by design, and the page shows each check saying "not implemented yet".
  This sets the notebook's ``mystnb.execution_allow_errors`` in memory only (myst-nb reads that
  per-file key); the file on disk is untouched and the execution cache key (code cells and
  kernelspec) does not change.
"""
from __future__ import annotations

import ast
import json
import posixpath
import re
from functools import lru_cache
from pathlib import Path

from docutils import nodes
from sphinx.addnodes import pending_xref
from sphinx.application import Sphinx
from sphinx.transforms.post_transforms import SphinxPostTransform

ALLOW_ERRORS_PREFIXES = ("exercises/",)


def _allow_errors_in_exercises(app: Sphinx, docname: str, source: list[str]) -> None:
    """``source-read``: mark an exercise notebook so that its execution may raise."""
    if not docname.startswith(ALLOW_ERRORS_PREFIXES):
        return
    if not str(app.env.doc2path(docname)).endswith(".ipynb"):
        return
    notebook = json.loads(source[0])
    notebook.setdefault("metadata", {}).setdefault("mystnb", {})["execution_allow_errors"] = True
    source[0] = json.dumps(notebook, ensure_ascii=False)


def _find_doc(env, folder: str, number: str) -> str | None:
    """The docname ``folder/NN_*`` that is part of this build, if any."""
    pattern = re.compile(rf"^{folder}/{re.escape(number)}_[A-Za-z0-9_]+$")
    matches = sorted(d for d in env.found_docs if pattern.match(d))
    return matches[0] if matches else None


def lesson_role(name, rawtext, text, lineno, inliner, options=None, content=None):
    """``{lesson}`NN``` (lesson page) or ``{lesson}`NN <exercises>``` (its exercise page)."""
    env = inliner.document.settings.env
    match = re.fullmatch(r"\s*(\d{2})\s*(?:<\s*(exercises|notebooks|solutions)\s*>)?\s*", text)
    if not match:
        msg = inliner.reporter.error(f"{{lesson}} expects 'NN' or 'NN <exercises>', got {text!r}", line=lineno)
        return [inliner.problematic(rawtext, rawtext, msg)], [msg]
    number, folder = match.group(1), match.group(2) or "notebooks"
    target = _find_doc(env, folder, number)
    label = f"Lesson {number}" if folder == "notebooks" else f"Exercises {number}"
    if target is None:  # not written yet: plain text, no dangling link
        return [nodes.inline(rawtext, label, classes=["course-lesson-pending"])], []
    ref = pending_xref(rawtext, refdomain="std", reftype="doc", reftarget="/" + target,
                       refexplicit=False, refwarn=True, refdoc=env.docname)
    ref += nodes.inline(rawtext, label, classes=["xref", "std", "std-doc"])
    return [ref], []


def _planned_pages(app: Sphinx) -> frozenset[str]:
    """Pages that the planned table of contents lists but whose file does not exist yet."""
    return _unwritten(str(app.srcdir), app.config.course_book_planned_toc)


@lru_cache(maxsize=4)
def _unwritten(srcdir: str, toc_name: str) -> frozenset[str]:
    import yaml

    toc_path = Path(srcdir) / toc_name
    if not toc_path.is_file():
        return frozenset()
    names = []

    def walk(items):
        for item in items or []:
            if "file" in item:
                names.append(item["file"])
            walk(item.get("sections"))

    toc = yaml.safe_load(toc_path.read_text(encoding="utf-8"))
    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    return frozenset(n for n in names
                     if not any((Path(srcdir) / f"{n}{suffix}").is_file() for suffix in (".md", ".ipynb")))


def _link_to_unwritten_page(app: Sphinx, env, node, contnode):
    """``missing-reference``: a {doc} link to a planned, unwritten page becomes its plain text."""
    if node.get("reftype") != "doc":
        return None
    from sphinx.util import docname_join

    target = docname_join(node.get("refdoc", ""), node["reftarget"]).lstrip("/")
    if target in _planned_pages(app):
        return contnode
    return None


class UnwrittenPageLinks(SphinxPostTransform):
    """A Markdown link to a planned, unwritten page becomes its text (before MyST warns about it)."""

    default_priority = 5  # MyST's reference resolver runs at 9

    def run(self, **kwargs) -> None:
        planned = _planned_pages(self.app)
        if not planned:
            return
        for node in list(self.document.findall(pending_xref)):
            if node.get("reftype") != "myst":
                continue
            target = node["reftarget"].split("#", 1)[0]
            if node.get("refdomain") == "doc":
                docname = target
            else:
                base = posixpath.dirname(node.get("refdoc", self.env.docname))
                docname = posixpath.normpath(posixpath.join(base, target))
                docname = re.sub(r"\.(ipynb|md)$", "", docname)
            if docname in planned:
                node.replace_self(node[0].deepcopy() if len(node) else nodes.Text(target))


REMOTE_IMAGES = {
    "https://colab.research.google.com/assets/colab-badge.svg": "_static/colab-badge.svg",
}


def _self_host_badges(app: Sphinx, doctree, docname: str) -> None:
    """``doctree-resolved``: point known remote badge images at their copies in ``_static``."""
    up = "../" * docname.count("/")
    for image in doctree.findall(nodes.image):
        local = REMOTE_IMAGES.get(image.get("uri", ""))
        if local:
            image["uri"] = up + local
            image["candidates"] = {"*": up + local}


# title strings a plotting cell sets: ax.set_title("..."), fig.suptitle("..."), set(title="...")
_TITLE = re.compile(r"""(?:set_title|suptitle|\btitle)\s*[(=]\s*(?:f|rf|fr)?("|')(.+?)\1""")
_TITLE_CALLS = {"set_title", "suptitle", "title"}


def _literal_text(node) -> str | None:
    """The text of a string literal (adjacent literals joined, f-string fields as an
    ellipsis); None for anything else."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "…" for v in node.values)
    return None


def _title_literals(code: str) -> list[str]:
    """The title literals of a cell, in the order of the code: the first argument of
    ``set_title``, ``suptitle`` and ``title`` calls and every ``title=`` keyword. Code that
    does not parse (IPython magics, say) is read with a regular expression instead."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return [re.sub(r"\{[^{}]*\}", "…", text).replace("\\n", "\n")
                for _, text in _TITLE.findall(code)]
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = getattr(node.func, "attr", getattr(node.func, "id", ""))
        args = node.args[:1] if name in _TITLE_CALLS else []
        for arg in args + [k.value for k in node.keywords if k.arg == "title"]:
            text = _literal_text(arg)
            if text is not None:
                found.append((arg.lineno, arg.col_offset, text))
    return [text for *_, text in sorted(found)]


def _titles(code: str) -> list[str]:
    """The literal titles set in a cell's code, f-string fields written as an ellipsis. A
    title that is mostly fields (fewer than two words of its own, such as a panel title
    ``f"{pred} (true {label})"`` set in a loop) says nothing read aloud: it is left out when
    the cell sets another title."""
    out = []
    for text in _title_literals(code):
        text = re.sub(r"\s+", " ", text).strip()  # a title's line breaks read as spaces
        if text and text not in out:
            out.append(text)
    worded = [t for t in out if "…" not in t or len(re.findall(r"[^\W\d_]{2,}", t)) >= 2]
    return worded or out


def _figure_alt_text(app: Sphinx, doctree, docname: str) -> None:
    """``doctree-resolved``: alt text for the images of cell outputs, which myst-nb leaves
    without one (the HTML then shows the hashed file name): the titles the cell's code sets,
    else "Figure of the section <title>"."""
    for image in doctree.findall(nodes.image):
        if image.get("alt"):
            continue
        cell = image.parent
        while cell is not None and "cell" not in cell.get("classes", []):
            cell = cell.parent
        if cell is None:
            continue
        code = next((block.astext() for block in cell.findall(nodes.literal_block)), "")
        titles = _titles(code)
        if titles:
            image["alt"] = "Figure: " + "; ".join(titles)
            continue
        section = image.parent
        while section is not None and not isinstance(section, nodes.section):
            section = section.parent
        heading = section.next_node(nodes.title).astext() if section is not None else docname
        image["alt"] = f"Figure of the section {heading}"


def _register_round_author_year() -> None:
    """Register the ``author_year_round`` referencing style (sphinxcontrib-bibtex's documented way)."""
    import dataclasses

    import sphinxcontrib.bibtex.plugin
    from sphinxcontrib.bibtex.style.referencing import BracketStyle
    from sphinxcontrib.bibtex.style.referencing.author_year import AuthorYearReferenceStyle

    def round_brackets() -> BracketStyle:
        return BracketStyle(left="(", right=")")

    @dataclasses.dataclass
    class RoundAuthorYearReferenceStyle(AuthorYearReferenceStyle):
        bracket_parenthetical: BracketStyle = dataclasses.field(default_factory=round_brackets)
        bracket_textual: BracketStyle = dataclasses.field(default_factory=round_brackets)
        bracket_author: BracketStyle = dataclasses.field(default_factory=round_brackets)
        bracket_label: BracketStyle = dataclasses.field(default_factory=round_brackets)
        bracket_year: BracketStyle = dataclasses.field(default_factory=round_brackets)

    sphinxcontrib.bibtex.plugin.register_plugin("sphinxcontrib.bibtex.style.referencing", "author_year_round",
                                                RoundAuthorYearReferenceStyle, force=True)


SMOKE_BANNER = (
    '<div class="course-smoke-banner" role="note"><strong>Smoke edition.</strong> The outputs '
    "on this page come from smoke mode (a few hundred examples, one epoch or a few steps): they "
    "show that the code runs, not what it learns. The figures of the full lab are on the "
    '<a href="{results}">results page</a>; run the notebook to see them yourself.</div>\n')
RESULTS_DOC = "book/results"


def is_smoke_build() -> bool:
    """True when the book is built with ``COURSE_SMOKE`` set (course_utils.runtime.smoke_mode)."""
    import os

    return os.environ.get("COURSE_SMOKE", "").strip().lower() in {"1", "true", "yes", "on"}


def _smoke_banner(app: Sphinx, pagename: str, templatename: str, context: dict,
                  doctree) -> None:
    """``html-page-context``: in a smoke build, the banner goes first in every page's body."""
    if is_smoke_build() and "body" in context:
        context["body"] = (SMOKE_BANNER.format(results=context["pathto"](RESULTS_DOC))
                           + context["body"])


def setup(app: Sphinx) -> dict:
    """Register the role, the citation style and the hooks."""
    _register_round_author_year()
    app.add_config_value("course_book_planned_toc", "book/_toc.yml", "env")
    app.connect("source-read", _allow_errors_in_exercises)
    app.connect("missing-reference", _link_to_unwritten_page)
    app.connect("doctree-resolved", _self_host_badges)
    app.connect("doctree-resolved", _figure_alt_text)
    app.connect("html-page-context", _smoke_banner)
    app.add_post_transform(UnwrittenPageLinks)
    app.add_role("lesson", lesson_role)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
