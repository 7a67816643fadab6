"""Sphinx extension of the course book: Chinese names marked up, and glossary entries in the search.

- ``{zh}`池化``` renders ``<span lang="zh">池化</span>``: the page is in English, and a screen reader
  (and axe-core's ``valid-lang`` rule) needs to know which words are Chinese. docutils writes a
  ``language-zh`` class as the ``lang`` attribute.
- Each Chinese name marked ``{zh}`` on the first line of a ``{glossary}`` entry becomes a search
  object that links to the entry itself (``glossary.html#term-gradient`` for 梯度). Sphinx's
  full-text index is of whole words, which Chinese text does not separate (梯度下降 is one "word"),
  and it finds pages, not entries; its glossary terms are no search objects (priority -1), and
  the index entries they make match an English query only. The object search matches any part of
  a name, so 梯度 finds 梯度, 梯度下降 and 随机梯度下降, the exact name first. No Chinese word
  splitter (jieba, for ``html_search_language = "zh"``) is needed, and the rest of the site's
  search stays English.
"""
from __future__ import annotations

from docutils import nodes
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.domains import Domain, ObjType

LANG = "zh"
LANG_CLASS = f"language-{LANG}"   # docutils' HTML writers turn it into lang="zh"


def zh_role(name, rawtext, text, lineno, inliner, options=None, content=None):
    """``{zh}`中文```: the text, marked as Chinese."""
    return [nodes.inline(rawtext, text, classes=[LANG_CLASS])], []


def glossary_names(document) -> list[tuple[str, str]]:
    """(Chinese name, anchor of its entry) for each ``{zh}`` name on the first line of each
    glossary entry of ``document`` (its anchor: the id of the entry's first term)."""
    out = []
    for glossary in document.findall(addnodes.glossary):
        for item in glossary.findall(nodes.definition_list_item):
            terms = [t for t in item.children if isinstance(t, nodes.term) and t["ids"]]
            definition = next((c for c in item.children if isinstance(c, nodes.definition)), None)
            first = next(iter(definition.findall(nodes.paragraph)), None) if definition else None
            if terms and first is not None:
                out += [(n.astext(), terms[0]["ids"][0]) for n in first.findall(nodes.inline)
                        if LANG_CLASS in n["classes"]]
    return out


class GlossarySearch(Domain):
    """Objects for the search index: one per Chinese name of a glossary entry, linking to it."""

    name = "course"
    label = "Glossary"
    object_types = {"term": ObjType("entry", "term", searchprio=1)}
    initial_data: dict = {"entries": {}}   # docname -> [(name, anchor)]

    def process_doc(self, env, docname, document) -> None:
        entries = glossary_names(document)
        if entries:
            self.data["entries"][docname] = entries

    def clear_doc(self, docname: str) -> None:
        self.data["entries"].pop(docname, None)

    def merge_domaindata(self, docnames, otherdata) -> None:
        for docname in docnames:
            if docname in otherdata["entries"]:
                self.data["entries"][docname] = otherdata["entries"][docname]

    def resolve_any_xref(self, env, fromdocname, builder, target, node, contnode):
        return []   # only for the search: {term} keeps linking through the std domain

    def get_objects(self):
        for docname, entries in sorted(self.data["entries"].items()):
            for name, anchor in entries:
                yield name, name, "term", docname, anchor, 1


def setup(app: Sphinx) -> dict:
    """Register the role and the domain."""
    app.add_role("zh", zh_role)
    app.add_domain(GlossarySearch)
    return {"version": "1.0", "env_version": 1, "parallel_read_safe": True,
            "parallel_write_safe": True}
