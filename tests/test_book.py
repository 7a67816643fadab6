"""Tests of course_utils.book and of the built site: table of contents, results page, glossary,
bibliography, launch links, no solutions in the learner edition, no CDN, execution cache.

The fast tests read sources only. The ``slow`` ones build the book (incrementally: outputs come from
the jupyter-cache, so once ``make book`` has run they take seconds) and read the built HTML.
"""
from __future__ import annotations

import html
import json
import re
import shutil
from pathlib import Path

import nbformat
import pytest

from course_utils import book

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_FOLDERS = ("notebooks", "exercises", "solutions")
CDN_HOSTS = ("cdn.jsdelivr", "unpkg", "googleapis", "cdnjs", "gstatic", "cloudflare")


def all_notebooks() -> list[Path]:
    return sorted(p for folder in NOTEBOOK_FOLDERS for p in (ROOT / folder).glob("*.ipynb"))


def book_sources() -> list[Path]:
    """Every source of the book: its Markdown pages and every notebook."""
    return sorted((ROOT / "book").glob("*.md")) + all_notebooks()


def source_text(path: Path) -> str:
    """The Markdown a page is written in (for a notebook: its Markdown cells)."""
    if path.suffix == ".md":
        return path.read_text(encoding="utf-8")
    nb = nbformat.read(path, as_version=4)
    return "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


# ----------------------------------------------------------------------------- table of contents

TOC = {
    "format": "jb-book",
    "root": "book/intro",
    "parts": [
        {"caption": "Introduction", "chapters": [{"file": "book/setup"}, {"file": "exercises/00_warmup"}]},
        {"caption": "Lessons", "chapters": [
            {"file": "notebooks/01_a", "sections": [{"file": "exercises/01_a"}]},
            {"file": "notebooks/02_b", "sections": [{"file": "exercises/02_b"}]},
        ]},
        {"caption": "Later", "chapters": [{"file": "notebooks/09_z"}]},
    ],
}


def _touch(root: Path, *names: str) -> None:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("# x\n")


def test_prune_toc_keeps_written_pages_in_order(tmp_path):
    """Does pruning drop unwritten pages, promote a written exercise of an unwritten lesson, and
    drop a part left empty?"""
    _touch(tmp_path, "book/intro.md", "book/setup.md", "notebooks/01_a.ipynb", "exercises/01_a.ipynb",
           "exercises/02_b.ipynb")
    toc, missing = book.prune_toc(TOC, tmp_path)
    assert missing == ["exercises/00_warmup", "notebooks/02_b", "notebooks/09_z"]
    assert book.toc_docnames(toc) == ["book/intro", "book/setup", "notebooks/01_a", "exercises/01_a", "exercises/02_b"]
    assert [p["caption"] for p in toc["parts"]] == ["Introduction", "Lessons"]


def test_prune_toc_needs_the_root_page(tmp_path):
    """Does a book whose root page is missing fail with a message naming it?"""
    with pytest.raises(FileNotFoundError, match="book/intro"):
        book.prune_toc(TOC, tmp_path)


def test_instructor_toc_adds_the_solution_of_every_exercise():
    """Does the instructor edition list solutions/NN_slug for each exercises/NN_slug, and nothing
    else new?"""
    toc = book.instructor_toc(TOC)
    extra = [d for d in book.toc_docnames(toc) if d not in book.toc_docnames(TOC)]
    assert extra == ["solutions/00_warmup", "solutions/01_a", "solutions/02_b"]
    assert "solutions/00_warmup" not in book.toc_docnames(TOC)  # the learner toc is not modified


def test_learner_toc_has_no_solutions():
    """Does book/_toc.yml (the learner edition) leave every solution notebook out?"""
    names = book.toc_docnames(book.load_toc(ROOT / "book" / "_toc.yml"))
    assert not [n for n in names if n.startswith("solutions/")]
    for name in ("book/intro", "book/setup", "book/checking", "book/glossary", "book/notation",
                 "book/references", "book/data", "book/results", "book/instructors"):
        assert name in names


# ----------------------------------------------------------------------------- results page

RUNS = {"runs": [
    {"lesson": "01", "notebook": "notebooks/01_gradient_descent.ipynb", "mode": "full", "device": "cuda",
     "machine": "NVIDIA H100 | 16 cores", "date": "2026-11-24", "wall_time_s": 123.4, "status": "ok",
     "figures": {"mnist_test_accuracy": {"value": 0.9812, "unit": "fraction"}}},
    {"lesson": "03", "notebook": "notebooks/03_convolutional_networks.ipynb", "mode": "smoke", "device": "cpu",
     "machine": "2 cores", "date": "2026-11-23", "wall_time_s": 80.0, "status": "timeout",
     "error": "a cell ran longer than 600 s", "figures": {}},
]}


def test_results_page_says_nothing_measured_without_results():
    """Does the results page say that nothing is measured yet when results.json is missing or empty?"""
    for results in (None, {}, {"runs": []}):
        assert "Nothing measured yet" in book.results_markdown(results)


def test_results_page_lists_each_figure_with_mode_device_and_date():
    """Does the results page give each figure's value and unit, under its run's lesson, device,
    machine (escaped) and date, in the section of its mode, and show a failed run as failed?"""
    text = book.results_markdown(RUNS)
    full, smoke = text.split("## Full mode")[1].split("## Smoke mode")
    run_line = next(line for line in full.splitlines() if line.startswith("**{lesson}`01`**"))
    for expected in ("cuda", "NVIDIA H100 \\| 16 cores", "2026-11-24", "123 s"):
        assert expected in run_line
    # lesson 01 records no such figure: its name stands in for the title it lacks
    assert "| `mnist_test_accuracy` | 98.12 | % | – | – |" in full
    assert "Run **timeout**: a cell ran longer than 600 s." in smoke
    assert "mnist_test_accuracy" not in smoke


def test_results_file_is_read_gracefully(tmp_path):
    """Does a missing, empty or broken benchmarks/results.json read as 'no results'?"""
    assert book.read_results(tmp_path) is None
    (tmp_path / "benchmarks").mkdir()
    for text in ("", "{not json"):
        (tmp_path / "benchmarks" / "results.json").write_text(text)
        assert book.read_results(tmp_path) is None


# ----------------------------------------------------------------------------- MathJax

def test_a_mathjax_tarball_with_the_wrong_hash_is_refused(tmp_path, monkeypatch):
    """Does vendoring refuse a MathJax tarball whose SHA-256 is not the pinned one?"""
    fake = tmp_path / "mathjax-3.2.2.tgz"
    fake.write_bytes(b"not mathjax")
    monkeypatch.setenv(book.MATHJAX_TGZ_ENV, str(fake))
    with pytest.raises(RuntimeError, match="SHA-256"):
        book.vendor_mathjax(tmp_path / "vendor")
    assert not (tmp_path / "vendor" / "mathjax" / "tex-chtml-full.js").exists()


# ----------------------------------------------------------------------------- sources

def test_colab_badges_agree_with_the_config():
    """Does every notebook's 'Open in Colab' badge open that very notebook, from the repository and
    branch written in book/_config.yml?"""
    badge = re.compile(r"\]\((https://colab\.research\.google\.com/github/[^)\s]+)\)")
    for path in all_notebooks():
        nb = nbformat.read(path, as_version=4)
        first = nb.cells[0].source if nb.cells else ""
        links = badge.findall(first)
        rel = path.relative_to(ROOT).as_posix()
        # A solution notebook is the source of its exercise notebook: its badge opens the exercise.
        expected = book.colab_url(rel.replace("solutions/", "exercises/", 1), ROOT)
        assert links == [expected], f"{rel}: badge {links}, expected {expected}"


def test_colab_url_is_built_from_the_config(tmp_path):
    """Is the Colab address made of the configured repository, branch and the notebook's path
    (a fork's config gives the fork's)?"""
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "_config.yml").write_text(
        "repository:\n  url: https://github.com/a-fork/dl-fork/\n  branch: spring\n")
    assert book.repository(tmp_path) == ("https://github.com/a-fork/dl-fork", "spring")
    assert book.colab_url("notebooks/01_x.ipynb", tmp_path) == (
        "https://colab.research.google.com/github/a-fork/dl-fork/blob/spring/notebooks/01_x.ipynb")


def glossary_terms() -> set[str]:
    """The terms the glossary defines, lower-cased (Sphinx matches terms case-insensitively)."""
    text = (ROOT / "book" / "glossary.md").read_text(encoding="utf-8")
    terms = set()
    for block in re.findall(r"```\{glossary\}\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            if line and not line[0].isspace():
                terms.add(line.strip().lower())
    return terms


def used_terms() -> dict[str, set[str]]:
    """{term: {pages}} for every {term}`...` role in the book's sources (the target of `text <target>`)."""
    used: dict[str, set[str]] = {}
    for path in book_sources():
        for content in re.findall(r"\{term\}`([^`]+)`", source_text(path)):
            target = re.search(r"<([^>]+)>\s*$", content)
            term = re.sub(r"\s+", " ", (target.group(1) if target else content)).strip().lower()
            used.setdefault(term, set()).add(path.relative_to(ROOT).as_posix())
    return used


def test_glossary_defines_every_term_the_pages_use():
    """Does the glossary define every {term} used by a lesson, an exercise or a book page?"""
    missing = {t: sorted(p) for t, p in used_terms().items() if t not in glossary_terms()}
    assert not missing, f"add these to book/glossary.md: {missing}"


def test_glossary_gives_a_chinese_name_for_every_entry():
    """Does every glossary entry start with its Chinese name (bold) and the lesson that defines it?"""
    text = (ROOT / "book" / "glossary.md").read_text(encoding="utf-8")
    firsts = re.findall(r"\n  (\*\*[^\n]*)\n", text)
    assert len(firsts) >= 40
    for line in firsts:
        assert re.search(r"[\u4e00-\u9fff]|\*\*(softmax|logits|Transformer|Adam)", line), line
        assert "{lesson}`" in line or "a later lesson" in line, line


def bib_keys() -> set[str]:
    return set(re.findall(r"^@\w+\{([^,\s]+),", (ROOT / "book" / "references.bib").read_text(encoding="utf-8"), re.M))


REQUIRED_KEYS = """rumelhart1986 lecun1998 cho2014 hochreiter1997 vaswani2017 hinton2015 jacob2018 hu2021
kingma2015 xiao2017 socher2013 wang2019glue kotzias2015 karpathy2015 glorot2010 he2015 ioffe2015
srivastava2014 polyak1964 nesterov1983 loshchilov2017 goyal2017 sutskever2013 zeiler2014 selvaraju2017
simonyan2014 pedregosa2011 efron2004 street1993""".split()


def test_bibliography_has_the_course_keys_and_every_cited_one():
    """Does references.bib hold every key the authors were given and every key a page cites?"""
    keys = bib_keys()
    assert not set(REQUIRED_KEYS) - keys
    cited = {}
    for path in book_sources():
        for group in re.findall(r"\{cite(?::\w+)?\}`([^`]+)`", source_text(path)):
            for key in group.split(","):
                cited.setdefault(key.strip(), set()).add(path.relative_to(ROOT).as_posix())
    unknown = {k: sorted(v) for k, v in cited.items() if k not in keys}
    assert not unknown, f"cited but not in book/references.bib: {unknown}"


# ----------------------------------------------------------------------------- the built site

def solution_lines(path: Path) -> set[str]:
    """The code lines of a solution notebook that are answers: inside ### BEGIN/END SOLUTION, or
    marked ``# SOLUTION`` (without the marker)."""
    lines, inside = set(), False
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type != "code":
            continue
        for line in cell.source.splitlines():
            stripped = line.strip()
            if stripped.startswith("### BEGIN SOLUTION"):
                inside = True
            elif stripped.startswith("### END SOLUTION"):
                inside = False
            elif inside:
                lines.add(stripped)
            elif re.search(r"#\s*SOLUTION\s*$", stripped):
                lines.add(re.sub(r"#\s*SOLUTION\s*$", "", stripped).strip())
    return {line for line in lines if len(line) >= 6 and not line.startswith("#")}


def learner_source_lines() -> set[str]:
    """Every stripped line of the learner edition's notebooks (a solution line that a lesson or an
    exercise also contains is not a leak)."""
    out = set()
    for folder in ("notebooks", "exercises"):
        for path in (ROOT / folder).glob("*.ipynb"):
            for cell in nbformat.read(path, as_version=4).cells:
                out.update(line.strip() for line in cell.source.splitlines())
    return out


def site_lines(site: Path) -> set[str]:
    """Every stripped line of text of the built site: HTML with tags removed, and downloadable sources."""
    out = set()
    for path in site.rglob("*"):
        if path.suffix == ".html":
            text = html.unescape(re.sub(r"<[^>]+>", "", path.read_text(encoding="utf-8")))
        elif path.suffix == ".ipynb":
            nb = json.loads(path.read_text(encoding="utf-8"))
            text = "\n".join("".join(c["source"]) if isinstance(c["source"], list) else c["source"] for c in nb["cells"])
        else:
            continue
        out.update(line.strip() for line in text.splitlines())
    return out


@pytest.fixture(scope="module")
def learner_site():
    """The learner edition, brought up to date (incremental; outputs from the execution cache)."""
    assert book.build("learner", ROOT, quiet=True) == 0, "see book/_build/logs/learner.log"
    return book.site_dir("learner", ROOT)


@pytest.fixture(scope="module")
def instructor_site():
    """The instructor edition, brought up to date."""
    assert book.build("instructor", ROOT, quiet=True) == 0, "see book/_build/logs/instructor.log"
    return book.site_dir("instructor", ROOT)


@pytest.mark.slow
def test_every_toc_page_is_built(learner_site):
    """Is there an HTML page for every page of the learner table of contents (and an index)?"""
    toc = book.built_toc("learner", ROOT)
    assert book.toc_docnames(toc)[:2] == ["book/intro", "book/setup"]
    for docname in book.toc_docnames(toc):
        assert (learner_site / f"{docname}.html").is_file(), docname
    assert (learner_site / "index.html").is_file()
    assert (learner_site / "search.html").is_file()


@pytest.mark.slow
def test_learner_site_contains_no_solution(learner_site):
    """Does the learner edition leave out every solution page, marker and answer line?"""
    assert not (learner_site / "solutions").exists()
    assert not (learner_site / "_sources" / "solutions").exists()
    # The markers themselves may be explained on a book page (book/instructors.md), never left in a notebook.
    notebook_pages = [p for folder in ("notebooks", "exercises") for p in (learner_site / folder).glob("*.html")]
    notebook_pages += list((learner_site / "_sources").rglob("*.ipynb"))
    leaked_markers = [p for p in notebook_pages if "BEGIN SOLUTION" in p.read_text(encoding="utf-8")]
    assert notebook_pages and not leaked_markers
    public = learner_source_lines()
    text = site_lines(learner_site)
    for path in sorted((ROOT / "solutions").glob("*.ipynb")):
        leaked = sorted((solution_lines(path) - public) & text)
        assert not leaked, f"{path.name}: answer lines in the learner site: {leaked[:5]}"


@pytest.mark.slow
def test_instructor_site_contains_the_solutions(instructor_site):
    """Does the instructor edition show each solution notebook, answers included (which also proves
    the learner test above can see an answer line when there is one)?"""
    text = site_lines(instructor_site)
    solutions = sorted((ROOT / "solutions").glob("*.ipynb"))
    for path in solutions:
        if book.doc_path(f"exercises/{path.stem}", ROOT) is None:
            continue  # an exercise page not in the book yet
        assert (instructor_site / "solutions" / f"{path.stem}.html").is_file()
        lines = solution_lines(path)
        assert lines & text, f"no answer line of {path.name} found in the instructor site"


@pytest.mark.slow
def test_no_cdn_in_the_built_html(learner_site):
    """Does no page load a script, stylesheet, font or image from another host (MathJax included)?"""
    tag = re.compile(r"<(script|link|img|iframe)\b[^>]*?\b(?:src|href)=\"([^\"]+)\"", re.I)
    offenders = []
    for path in learner_site.rglob("*.html"):
        text = path.read_text(encoding="utf-8")
        for kind, url in tag.findall(text):
            if re.match(r"(https?:)?//", url) or any(h in url for h in CDN_HOSTS):
                offenders.append(f"{path.relative_to(learner_site)}: <{kind}> {url}")
    assert not offenders, "\n".join(offenders)
    assert (learner_site / "_static" / "mathjax" / "tex-chtml-full.js").is_file()
    assert list((learner_site / "_static" / "mathjax" / "output" / "chtml" / "fonts" / "woff-v2").glob("*.woff"))


@pytest.mark.slow
def test_results_page_lists_the_measured_figures(learner_site):
    """Does the built results page show every figure of benchmarks/results.json, under its title
    (or say that nothing is measured yet)?"""
    page = html.unescape(re.sub(r"<[^>]+>", "", (learner_site / "book" / "results.html").read_text(encoding="utf-8")))
    page = page.replace("\u2019", "'")  # Sphinx's smart quotes
    from course_utils.figures import describe

    results = book.read_results(ROOT) or {}
    titles = {describe(run["lesson"], name).title for run in results.get("runs", [])
              for name in (run.get("figures") or {})}
    if not results.get("runs"):
        assert "Nothing measured yet" in page
    for title in titles:
        assert title in page, title


@pytest.mark.slow
def test_rebuild_executes_nothing(learner_site):
    """Does a rebuild that re-reads every page take every notebook from the execution cache?"""
    assert book.build("learner", ROOT, all_pages=True, quiet=True) == 0
    log = (ROOT / "book" / "_build" / "logs" / "learner.log").read_text(encoding="utf-8")
    toc = book.built_toc("learner", ROOT)
    notebooks = [d for d in book.toc_docnames(toc) if str(book.doc_path(d, ROOT)).endswith(".ipynb")]
    assert "Executing notebook" not in log
    assert log.count("Using cached notebook") == len(notebooks)


@pytest.mark.slow
def test_a_book_with_unwritten_lessons_builds(tmp_path):
    """While lessons are still being written, does the book build without warnings: unwritten pages
    left out, links to them shown as text, and an exercise whose stub raises executed to the end?"""
    shutil.copytree(ROOT / "book", tmp_path / "book", ignore=shutil.ignore_patterns("_build"))
    (tmp_path / "benchmarks").mkdir()
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nb.cells = [
        nbformat.v4.new_markdown_cell("# 01 · Demo exercises\n\nSee [the lesson](../notebooks/01_gradient_descent.ipynb) "
                                      "and {doc}`../notebooks/02_backpropagation`.", id="cell-00"),
        nbformat.v4.new_code_cell("def answer():\n    raise NotImplementedError()\nanswer()", id="cell-01"),
        nbformat.v4.new_code_cell("print('the cells after a stub still run')", id="cell-02"),
    ]
    (tmp_path / "exercises").mkdir()
    nbformat.write(nb, tmp_path / "exercises" / "01_gradient_descent.ipynb")
    assert book.build("learner", tmp_path, quiet=True) == 0, (tmp_path / "book/_build/logs/learner.log").read_text()[-3000:]
    names = book.toc_docnames(book.built_toc("learner", tmp_path))
    assert "exercises/01_gradient_descent" in names and "notebooks/01_gradient_descent" not in names
    page = (book.site_dir("learner", tmp_path) / "exercises" / "01_gradient_descent.html").read_text(encoding="utf-8")
    assert "NotImplementedError" in page and "the cells after a stub still run" in page
    assert "the lesson" in page and "notebooks/01_gradient_descent.html" not in page


# ----------------------------------------------------------------------------- full edition
def test_full_builds_have_their_own_cache_site_and_config():
    """Does a full build get its own jupyter-cache (the modes run the same code, so a shared
    cache would hand smoke outputs to it), its own site and a config that Sphinx can load?"""
    import yaml

    assert book.build_config(ROOT, full=False) == ROOT / "book" / "_config.yml"
    smoke_cache = book.execution_cache(ROOT, full=False)
    full_cache = book.execution_cache(ROOT, full=True)
    assert smoke_cache != full_cache and full_cache.is_relative_to(ROOT / "book" / "_build")
    assert book.site_dir("learner", ROOT, full=True) != book.site_dir("learner", ROOT)
    assert book.site_dir("instructor", ROOT, full=True) != book.site_dir("learner", ROOT, True)
    config = yaml.safe_load(book.build_config(ROOT, full=True).read_text(encoding="utf-8"))
    assert ROOT / config["execute"]["cache"] == full_cache
    assert config["execute"]["timeout"] >= 1800
    for folder in config["sphinx"]["local_extensions"].values():
        assert Path(folder).is_absolute() and (Path(folder) / "course_book.py").exists()
    source = book.read_config(ROOT)
    assert config["repository"] == source["repository"] and config["title"] == source["title"]


def _tiny_notebook(path: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell("# Tiny"),
                nbformat.v4.new_code_cell("x = 6 * 7\nprint(x)")]
    nbformat.write(nb, path)
    return path


def test_a_bench_execution_is_found_by_the_full_book(tmp_path):
    """Is a notebook cached by cache_executed_notebook matched by jupyter-cache from the file
    on disk (as myst-nb looks it up), with the executed outputs, although the execution added
    cell metadata (nbclient's timings); and is a notebook whose code changed refused?"""
    from jupyter_cache import get_cache

    (tmp_path / "book").mkdir()
    shutil.copy(ROOT / "book" / "_config.yml", tmp_path / "book" / "_config.yml")
    source = _tiny_notebook(tmp_path / "tiny.ipynb")
    executed = nbformat.read(source, as_version=4)
    cell = executed.cells[1]
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="42\n")]
    cell.execution_count = 1
    cell.metadata["execution"] = {"iopub.execute_input": "2026-12-04T03:00:00Z"}
    executed.metadata["language_info"] = {"name": "python", "version": "3.11"}
    book.cache_executed_notebook(source, executed, 1.5, root=tmp_path)

    cache = get_cache(str(book.execution_cache(tmp_path, full=True)))
    record = cache.match_cache_notebook(nbformat.read(source, as_version=4))
    assert record.data["execution_seconds"] == 1.5
    _, merged = cache.merge_match_into_notebook(nbformat.read(source, as_version=4))
    assert merged.cells[1].outputs[0]["text"] == "42\n"
    assert merged.metadata["language_info"]["name"] == "python"
    with pytest.raises(KeyError):                 # the smoke cache knows nothing of it
        get_cache(str(book.execution_cache(tmp_path))).match_cache_notebook(
            nbformat.read(source, as_version=4))
    executed.cells[1].source = "x = 0"
    with pytest.raises(ValueError, match="code cells differ"):
        book.cache_executed_notebook(source, executed, root=tmp_path)


def test_smoke_banner_only_in_smoke_builds(monkeypatch):
    """Does the book extension put the smoke banner, linking to the results page by a path
    relative to the page, first in a page's body when COURSE_SMOKE is set, and nothing in a
    full build?"""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "course_book", ROOT / "book" / "_ext" / "course_book.py")
    ext = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ext)

    def context():
        return {"body": "<h1>Lesson</h1>",
                "pathto": lambda doc: "../" + doc + ".html"}

    monkeypatch.setenv("COURSE_SMOKE", "1")
    page = context()
    ext._smoke_banner(None, "notebooks/03_x", "page.html", page, None)
    assert page["body"].startswith('<div class="course-smoke-banner"')
    assert 'href="../book/results.html"' in page["body"]
    assert page["body"].endswith("<h1>Lesson</h1>")
    monkeypatch.delenv("COURSE_SMOKE")
    page = context()
    ext._smoke_banner(None, "notebooks/03_x", "page.html", page, None)
    assert page["body"] == "<h1>Lesson</h1>"


@pytest.mark.slow
def test_every_smoke_page_carries_the_banner(learner_site):
    """Does every page of the (smoke) learner edition show the banner, with a working link
    to the results page?"""
    pages = sorted(p for p in learner_site.rglob("*.html")
                   if not p.relative_to(learner_site).parts[0].startswith("_")
                   and p.name not in ("search.html", "genindex.html"))
    assert pages
    for page in pages:
        text = page.read_text(encoding="utf-8")
        if re.search(r'http-equiv="refresh"', text, re.I):
            continue                               # the site's index: a redirect, no body
        found = re.search(r'class="course-smoke-banner".*?href="([^"]+)"', text, re.S)
        assert found, f"{page.relative_to(learner_site)} has no smoke banner"
        href = found.group(1).split("#")[0]
        target = (page.parent / href).resolve() if href else page.resolve()
        assert target == (learner_site / "book" / "results.html").resolve(), page


# Messages that libraries print for their own developers, and that a reader of the book must
# not meet under a cell (course_utils._quiet and the lessons drop them at the source).
KNOWN_NOISE = (
    "absl::InitializeLog",                     # TensorFlow's C++ start-up
    "oneDNN custom operations are on",
    "fully_quantize:",                         # the TFLite converter
    "XNNPACK delegate",                        # the LiteRT interpreter
    "Kernel is running over TCP",              # jupyter's kernel start-up
    "To copy construct from a tensor",         # Inductor's own code
    "_stable_hash_for_caching",                # torchao's tensor subclasses
    "is_gradient_checkpointing` is deprecated",   # a transformers property
    "natively supported by torch.compile",
    "IProgress not found",
)


def _executed_notebooks(edition: str = "learner"):
    """(docname, executed notebook) of every notebook page, from the build's cache."""
    from jupyter_cache import get_cache

    cache = get_cache(str(book.execution_cache(ROOT)))
    for docname in book.toc_docnames(book.built_toc(edition, ROOT)):
        path = ROOT / f"{docname}.ipynb"
        if path.exists():
            nb = nbformat.read(path, as_version=4)
            try:
                yield docname, cache.merge_match_into_notebook(nb)[1]
            except KeyError:
                pytest.fail(f"{docname}: its outputs are not in the build's cache (an "
                            "incremental build that did not re-read it?): rebuild with --all")


@pytest.mark.slow
def test_no_known_noise_under_any_cell(learner_site):
    """Does no executed page show a known start-up or deprecation message in its outputs, nor
    a stray value of a call made for its effect (`seed_everything(0)` printing 0)?"""
    found = []
    for docname, nb in _executed_notebooks():
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            last = cell.source.strip().splitlines()[-1] if cell.source.strip() else ""
            for out in cell.outputs:
                text = out.get("text", "") or "".join(
                    out.get("data", {}).get("text/plain", ""))
                found += [f"{docname}: {noise!r}" for noise in KNOWN_NOISE if noise in text]
                if out.output_type == "execute_result" and re.match(
                        r"(seed_everything|record|describe_runtime)\(", last):
                    found.append(f"{docname}: stray output {text!r} of {last!r}")
    assert not found, found


def test_every_lesson_links_the_notation_page():
    """Does the first cell of every lesson link to the notation page (one symbol, one
    meaning, across the course), by a path that exists?"""
    lessons = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert lessons
    for path in lessons:
        first = nbformat.read(path, as_version=4).cells[0].source
        links = re.findall(r"\]\(([^)]*notation\.md)\)", first)
        assert links, f"{path.name}: no link to the notation page in its first cell"
        assert all((path.parent / link).resolve() == ROOT / "book" / "notation.md"
                   for link in links), (path.name, links)


def _book_extension():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "course_book_ext", ROOT / "book" / "_ext" / "course_book.py")
    ext = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ext)
    return ext


def test_figure_alt_text_comes_from_the_titles_a_cell_sets():
    """Does the book extension read the titles of a plotting cell (set_title, suptitle,
    set(title=...), f-strings with their fields elided), each once, leaving out a title of
    fields only when the cell sets a worded one?"""
    ext = _book_extension()
    code = ('fig.suptitle("Lesson 06\'s classifier, quantized", y=1.02)\n'
            'ax.set(xlabel="bits", title="Accuracy against bit width")\n'
            'ax.set_title(f"batch {B}: {name}")\nax2.set_title("Accuracy against bit width")\n'
            'plt.plot(x, y, label="title")\n')
    assert ext._titles(code) == ["Lesson 06's classifier, quantized",
                                 "Accuracy against bit width"]
    # a title of fields only is left out beside a worded one, kept when it is alone
    panels = 'ax.set_title(f"{pred[i]} (true {y[i]})")\nfig.suptitle("the first test errors")'
    assert ext._titles(panels) == ["the first test errors"]
    assert ext._titles('ax.set_title(f"{pred[i]} (true {y[i]})")') == ["… (true …)"]
    assert ext._titles('ax.set_title(f"step {t}: loss {loss:.2f}")') == ["step …: loss …"]
    # a title written over several lines, as adjacent literals, is read whole
    two_lines = ('ax.set_title("validation accuracy after each epoch\\n"\n'
                 '             f"(test, once at the end: {acc:.2%})")')
    assert ext._titles(two_lines) == ["validation accuracy after each epoch (test, once at "
                                      "the end: …)"]
    assert ext._titles("%matplotlib inline\nax.set_title('loss curve')") == ["loss curve"]
    assert ext._titles("plt.plot(x, y)\nplt.show()") == []


@pytest.mark.slow
def test_no_figure_is_described_by_its_file_name(learner_site):
    """Has every image of every lesson page an alt text that is words, not a file name?"""
    bad = []
    for page in sorted((learner_site / "notebooks").glob("*.html")):
        for alt in re.findall(r'<img[^>]*\balt="([^"]*)"', page.read_text(encoding="utf-8")):
            if not alt.strip() or re.search(r"\.(png|jpe?g|svg|gif)$", alt):
                bad.append(f"{page.name}: {alt!r}")
    assert not bad, bad[:20]


def test_an_edited_static_file_reaches_the_built_site(tmp_path):
    """Does _refresh_static copy a changed or new file of book/_static into the site (Sphinx
    skips that when no page changed), and leave identical ones alone?"""
    (tmp_path / "book" / "_static").mkdir(parents=True)
    site = tmp_path / "site"
    (site / "_static").mkdir(parents=True)
    (tmp_path / "book" / "_static" / "course.css").write_text("a { color: red }")
    (tmp_path / "book" / "_static" / "same.js").write_text("x")
    (site / "_static" / "course.css").write_text("a { color: blue }")
    (site / "_static" / "same.js").write_text("x")
    assert book._refresh_static(tmp_path, site) == ["course.css"]
    assert (site / "_static" / "course.css").read_text() == "a { color: red }"
    assert book._refresh_static(tmp_path, site) == []
