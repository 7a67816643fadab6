"""Tests of the glossary (book/glossary.md) and of book/_ext/course_glossary.py: Chinese names
marked lang="zh", d2l's names where they differ, and each entry found by the search under them.

The fast tests read the source. The ``slow`` ones build the book's Markdown pages alone (a copy of
book/ without notebooks, a few seconds) and read the HTML and the search index.
"""
from __future__ import annotations

import html.parser
import importlib.util
import json
import re
import shutil
from pathlib import Path

import pytest

from course_utils import book

ROOT = Path(__file__).resolve().parent.parent
GLOSSARY = ROOT / "book" / "glossary.md"
CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
ZH_ROLE = re.compile(r"\{zh\}`([^`]+)`")

# d2l-zh's names (zh.d2l.ai, the 2023 edition, checked in its text: "中文（English）") for terms where
# ours differ or where an issue named them: {term: d2l's name}.
D2L_NAMES = {
    "pooling": "汇聚", "batch normalization": "批量规范化", "feature map": "特征映射",
    "epoch": "迭代周期", "dropout": "暂退法", "weight decay": "权重衰减",
    "mini-batch gradient descent": "小批量随机梯度下降", "attention": "注意力汇聚",
    "multi-head attention": "多头注意力", "causal mask": "掩蔽", "token": "词元",
    "perplexity": "困惑度", "layer normalization": "层规范化", "masked language modelling": "掩蔽语言模型",
    "momentum": "动量法", "logistic regression": "对数几率回归", "data augmentation": "图像增广",
    "global average pooling": "全局平均汇聚层", "mean pooling": "平均汇聚", "tokenizer": "词元分析器",
    "weight initialization": "参数初始化", "domain shift": "分布偏移",
}


def entries() -> dict[str, tuple[list[str], str]]:
    """{first term: (its terms, the first line of its definition)} for every glossary entry."""
    text = GLOSSARY.read_text(encoding="utf-8")
    out = {}
    for block in re.findall(r"```\{glossary\}\n(.*?)```", text, flags=re.S):
        for entry in re.split(r"\n\n+(?=\S)", block.strip()):
            lines = entry.splitlines()
            terms = [line.strip() for line in lines if line and not line[0].isspace()]
            first = next(line.strip() for line in lines if line.startswith("  "))
            out[terms[0]] = (terms, first)
    return out


def ext():
    """book/_ext/course_glossary.py, imported from its file."""
    spec = importlib.util.spec_from_file_location("course_glossary",
                                                  ROOT / "book" / "_ext" / "course_glossary.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_chinese_word_of_the_glossary_source_is_marked():
    """Is every Chinese character of book/glossary.md (outside math) inside a {zh} role, and
    does every entry's first line start with its name marked so?"""
    text = GLOSSARY.read_text(encoding="utf-8")
    bare = ZH_ROLE.sub("", re.sub(r"\$[^$]+\$", "", text))
    assert not CJK.findall(bare), sorted(set(re.findall(r".{0,10}[\u4e00-\u9fff].{0,10}", bare)))[:10]
    found = entries()
    assert len(found) >= 100
    for term, (_, first) in found.items():
        assert re.match(r"\*\*(\{zh\}`[^`]+`|logits|softmax|Transformer)\*\*", first), (term, first)


def test_d2l_names_are_given_where_they_differ():
    """Does each of these entries give d2l's name, as its own name or as "d2l: ..." marked zh?"""
    found = entries()
    for term, d2l in D2L_NAMES.items():
        _, first = found[term]
        own = re.match(r"\*\*\{zh\}`([^`]+)`\*\*", first).group(1)
        assert own == d2l or re.search(r"\(d2l: [^)]*\{zh\}`" + re.escape(d2l) + "`", first), \
            f"{term}: {first}"
    assert len(D2L_NAMES) >= 20


def test_a_d2l_note_only_follows_a_different_name():
    """Does no entry say "d2l: X" where X is already its own name?"""
    for term, (_, first) in entries().items():
        own = ZH_ROLE.findall(first.split(" (d2l:")[0])
        note = re.search(r"\(d2l: (.*?)\) ·", first)
        if note:
            assert not set(ZH_ROLE.findall(note.group(1))) & set(own), (term, first)


def test_zh_role_writes_a_lang_attribute():
    """Does {zh}`池化` become <span lang="zh">池化</span> in HTML (docutils turns the node's
    language-zh class into the attribute)?"""
    from docutils.core import publish_parts
    from docutils.parsers.rst import roles

    roles.register_local_role("zh", ext().zh_role)
    body = publish_parts("Pooling, :zh:`池化`.", writer_name="html5")["body"]
    assert '<span lang="zh">池化</span>' in body


# ----------------------------------------------------------------------------- the built pages

@pytest.fixture(scope="module")
def pages_site(tmp_path_factory):
    """The book's Markdown pages built alone (no notebooks: those pages are left out)."""
    root = tmp_path_factory.mktemp("pages")
    shutil.copytree(ROOT / "book", root / "book", ignore=shutil.ignore_patterns("_build"))
    (root / "benchmarks").mkdir()
    assert book.build("learner", root, quiet=True) == 0, (
        root / "book" / "_build" / "logs" / "learner.log").read_text()[-3000:]
    return book.site_dir("learner", root)


class _ChineseOutsideLang(html.parser.HTMLParser):
    """Collects Chinese text of a page that no element with lang="zh" encloses."""

    VOID = {"br", "img", "input", "meta", "link", "hr", "wbr", "source", "col", "area", "base"}

    def __init__(self):
        super().__init__()
        self.stack, self.bare = [], []

    def handle_starttag(self, tag, attrs):
        if tag not in self.VOID:
            self.stack.append(dict(attrs).get("lang", "").startswith("zh") or tag in ("script", "style"))

    def handle_endtag(self, tag):
        if tag not in self.VOID and self.stack:
            self.stack.pop()

    def handle_data(self, data):
        if CJK.search(data) and not any(self.stack):
            self.bare.append(data.strip())


@pytest.mark.slow
def test_every_chinese_word_of_the_built_glossary_has_lang_zh(pages_site):
    """In the built glossary, is every piece of Chinese text inside an element with lang="zh",
    and is there one such span per {zh} name of the source?"""
    page = (pages_site / "book" / "glossary.html").read_text(encoding="utf-8")
    parser = _ChineseOutsideLang()
    parser.feed(page)
    assert parser.bare == []
    names = ZH_ROLE.findall(GLOSSARY.read_text(encoding="utf-8"))
    assert page.count('<span lang="zh">') == len(names) > 150


def _search_index(site: Path) -> dict:
    text = (site / "searchindex.js").read_text(encoding="utf-8")
    return json.loads(text[text.index("(") + 1:text.rindex(")")])


@pytest.mark.slow
def test_every_chinese_name_is_a_search_object_linking_to_its_entry(pages_site):
    """Does the search index hold each Chinese name of the glossary as an object that links to its
    entry's anchor on the glossary page (梯度 to #term-gradient), an anchor the page has?"""
    index = _search_index(pages_site)
    glossary = index["docnames"].index("book/glossary")
    objects = {}
    for prefix, rows in index["objects"].items():
        for doc, _, _, anchor, name in rows:
            if doc == glossary:
                objects.setdefault((prefix + "." if prefix else "") + name, set()).add(anchor)
    assert objects["梯度"] == {"term-gradient"}
    assert objects["汇聚"] == {"term-pooling"} and objects["池化"] == {"term-pooling"}
    assert objects["词元"] == {"term-token"} and objects["迭代周期"] == {"term-epoch"}
    page = (pages_site / "book" / "glossary.html").read_text(encoding="utf-8")
    ids = set(re.findall(r'\sid="([^"]+)"', page))
    for _, (_, first) in entries().items():
        for name in ZH_ROLE.findall(first):
            assert name in objects, name
    assert all(anchor in ids for anchors in objects.values() for anchor in anchors)
