"""Does the built book work for a reader, offline, in a real browser?

Debian's ``/usr/bin/chromium``, driven by Playwright (never a downloaded browser), opens the learner
edition from a loopback HTTP server. Every page of the table of contents is visited once; the tests
below check what that visit saw. Requests that would leave the machine are blocked and reported.
Screenshots of the intro and a lesson go to ``tests/_artifacts/screenshots/``.
"""
from __future__ import annotations

import functools
import http.server
import re
import threading
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from browser import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS, require_chromium

from course_utils import book

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest's output readable
        pass


@pytest.fixture(scope="module")
def site():
    """The learner edition, brought up to date (incremental: a no-op when nothing changed)."""
    require_chromium()
    assert book.build("learner", ROOT, quiet=True) == 0, "the book does not build: see book/_build/logs/learner.log"
    return book.site_dir("learner", ROOT)


@pytest.fixture(scope="module")
def server(site):
    """A loopback HTTP server on a free port serving the site; yields its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}/"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser():
    """Debian chromium under Playwright, headless."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


def toc_pages() -> list[str]:
    """The pages of the learner edition as last built, in reading order."""
    return book.toc_docnames(book.built_toc("learner", ROOT))


DESKTOP = {"viewport": {"width": 1280, "height": 900}}
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True,
         "device_scale_factor": 2}


def _new_page(browser, base: str, record: dict, screen: dict = DESKTOP):
    """A page that blocks (and records) every request leaving the loopback server."""
    page = browser.new_page(**screen)

    def route(r):
        if r.request.url.startswith(base) or r.request.url.startswith("data:"):
            r.continue_()
        else:
            record["external"].append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.on("console", lambda m: m.type == "error" and record["console"].append(m.text))
    page.on("pageerror", lambda e: record["console"].append(f"uncaught: {e}"))
    page.on("response", lambda r: r.status >= 400 and record["http"].append(f"{r.status} {r.url}"))
    return page


VISIT_JS = """() => {
  const text = document.querySelector('main') ? document.querySelector('main').innerText : document.body.innerText;
  return {
    title: document.title,
    links: Array.from(document.querySelectorAll('a[href]')).map(a => a.href),
    images: Array.from(document.querySelectorAll('main img')).map(
        i => ({src: i.currentSrc || i.src, width: i.naturalWidth, complete: i.complete})),
    math_nodes: document.querySelectorAll('main .math, main span.math, main div.math').length,
    mjx: document.querySelectorAll('mjx-container').length,
    mjx_errors: document.querySelectorAll('mjx-merror').length,
    raw_math: /\\$\\$|\\\\\\(|\\\\\\[/.test(text),
    launch: Array.from(document.querySelectorAll('.dropdown-launch-buttons a, a.btn')).map(
        a => ({text: a.innerText.trim(), href: a.href})),
  };
}"""


@pytest.fixture(scope="module")
def visits(browser, server):
    """Each page of the table of contents, visited once: what it logged, linked to and showed."""
    out, lesson = {}, _screenshot_lesson()
    for docname in toc_pages():
        record = {"console": [], "external": [], "http": []}
        page = _new_page(browser, server, record)
        page.goto(server + docname + ".html", wait_until="load")
        if page.evaluate("() => document.querySelector('main .math, main div.math, main span.math') !== null"):
            page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=20_000)
            page.evaluate("() => MathJax.startup.promise")
        record.update(page.evaluate(VISIT_JS))
        for name, wanted in (("intro", "book/intro"), ("lesson", lesson), ("glossary", "book/glossary")):
            if docname == wanted:
                SCREENSHOTS.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
        page.close()
        out[docname] = record
    return out


def _screenshot_lesson() -> str:
    """The page shot as 'a lesson': the first lesson if written, else the warm-up exercises."""
    pages = toc_pages()
    lessons = [p for p in pages if p.startswith("notebooks/")] or [p for p in pages if p.startswith("exercises/")]
    return lessons[0] if lessons else "book/intro"


def test_every_toc_page_loads_without_console_errors(visits):
    """Does every page of the table of contents load with no console error, no failed request and
    no request leaving the machine?"""
    problems = {d: {k: v for k, v in r.items() if k in ("console", "external", "http") and v}
                for d, r in visits.items()}
    problems = {d: p for d, p in problems.items() if p}
    assert not problems, problems
    assert all(r["title"] for r in visits.values())


def _ids(path: Path) -> set[str]:
    return set(re.findall(r'\sid="([^"]+)"', path.read_text(encoding="utf-8")))


def test_no_internal_link_is_broken(visits, server, site):
    """Does every link into the site lead to a file that exists, and every #fragment to an id on
    that page?"""
    broken, ids = [], {}
    for docname, record in visits.items():
        for href in record["links"]:
            if not href.startswith(server):
                continue
            parts = urlsplit(href)
            rel = unquote(parts.path[len(urlsplit(server).path):]) or "index.html"
            target = site / rel
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file():
                broken.append(f"{docname}: {href}")
                continue
            if parts.fragment and target.suffix == ".html":
                ids.setdefault(target, _ids(target))
                if unquote(parts.fragment) not in ids[target]:
                    broken.append(f"{docname}: {href} (no such anchor)")
    assert not broken, "\n".join(broken)


def test_math_is_typeset(visits):
    """Is the math of every page rendered by the self-hosted MathJax, with no raw TeX left?"""
    with_math = {d: r for d, r in visits.items() if r["math_nodes"]}
    assert "book/glossary" in with_math, "the glossary has formulas; the test should see them"
    for docname, record in with_math.items():
        assert record["mjx"] > 0, f"{docname}: no mjx-container, math not typeset"
        assert record["mjx_errors"] == 0, f"{docname}: MathJax reported {record['mjx_errors']} error(s)"
        assert not record["raw_math"], f"{docname}: raw $$ or \\( left in the text"


def test_figures_load(visits):
    """Does every image of every page load (natural width > 0)?"""
    bad = [f"{d}: {i['src']}" for d, r in visits.items() for i in r["images"] if not i["width"]]
    assert not bad, bad
    notebooks = [d for d in visits if d.startswith("notebooks/")]
    for docname in notebooks:  # a lesson without a single plot would be a poor lesson page
        assert visits[docname]["images"], f"{docname} shows no figure"


def test_launch_links_open_each_notebook(visits, server, site):
    """Does each notebook page's Colab button open that notebook, Binder open it in JupyterLab, and
    the download button give its .ipynb?"""
    notebooks = [d for d in visits if d.split("/")[0] in ("notebooks", "exercises", "solutions")]
    assert notebooks or not any(book.doc_path(d, ROOT) for d in toc_pages() if d.startswith("exercises/"))
    for docname in notebooks:
        hrefs = [link["href"] for link in visits[docname]["launch"]] + visits[docname]["links"]
        colab = [h for h in hrefs if h.startswith("https://colab.research.google.com/")]
        assert book.colab_url(docname + ".ipynb", ROOT) in colab, (docname, colab)
        binder = [h for h in hrefs if h.startswith("https://mybinder.org/")]
        assert any(h.endswith(f"urlpath=lab/tree/{docname}.ipynb") for h in binder), (docname, binder)
        assert (site / "_sources" / f"{docname}.ipynb").is_file(), f"no downloadable {docname}.ipynb"


def test_search_finds_a_term(browser, server):
    """Does the site's own search (no network) find the glossary for 'gradient'?"""
    record = {"console": [], "external": [], "http": []}
    page = _new_page(browser, server, record)
    page.goto(server + "search.html?q=gradient", wait_until="load")
    page.wait_for_selector("#search-results ul.search li", timeout=20_000)
    # Sphinx adds the results one by one; its summary is written when the last is shown
    page.wait_for_function(
        "() => { const s = document.querySelector('#search-results p.search-summary');"
        " return s !== null && s.innerText.length > 0; }", timeout=20_000)
    results = page.eval_on_selector_all("#search-results ul.search li a", "els => els.map(a => a.href)")
    page.close()
    assert any("book/glossary.html" in h for h in results), results
    assert not record["console"] and not record["external"], record


@pytest.fixture(scope="module")
def pages_server(tmp_path_factory):
    """The book's Markdown pages built alone (a copy of book/, no notebooks: seconds), served on
    loopback; yields the base URL."""
    require_chromium()
    import shutil

    root = tmp_path_factory.mktemp("pages")
    shutil.copytree(ROOT / "book", root / "book", ignore=shutil.ignore_patterns("_build"))
    (root / "benchmarks").mkdir()
    assert book.build("learner", root, quiet=True) == 0, "see the copy's book/_build/logs/learner.log"
    handler = functools.partial(_QuietHandler, directory=str(book.site_dir("learner", root)))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_port}/"
    httpd.shutdown()
    httpd.server_close()


def _search(browser, base: str, query: str) -> tuple[list[tuple[str, str]], dict]:
    """The site's own search for ``query``: [(link, text)] of its results, in order, and what the
    page logged."""
    record = {"console": [], "external": [], "http": []}
    page = _new_page(browser, base, record)
    page.goto(base + "search.html?q=" + query, wait_until="load")
    page.wait_for_function(
        "() => { const s = document.querySelector('#search-results p.search-summary');"
        " return s !== null && s.innerText.length > 0; }", timeout=20_000)
    results = page.eval_on_selector_all(
        "#search-results ul.search li",
        "els => els.map(li => [li.querySelector('a').href, li.innerText])")
    page.close()
    return [tuple(r) for r in results], record


@pytest.mark.parametrize("query, anchor", [("梯度", "term-gradient"), ("汇聚", "term-pooling"),
                                           ("批量规范化", "term-batch-normalization")])
def test_search_finds_the_entry_of_a_chinese_name(browser, pages_server, query, anchor):
    """Does the site's search, for a Chinese name (ours or d2l's), put the glossary entry itself
    first (the page with its #anchor, not only the glossary page), and also find the entries whose
    names contain it (梯度 in 随机梯度下降)?"""
    results, record = _search(browser, pages_server, query)
    assert results and results[0][0].endswith(f"book/glossary.html#{anchor}"), results[:3]
    assert results[0][1].startswith(query)
    if query == "梯度":
        anchors = {link.split("#")[-1] for link, _ in results}
        assert {"term-stochastic-gradient-descent", "term-vanishing-gradient"} <= anchors, anchors
    assert not record["console"] and not record["external"], record


# ----------------------------------------------------------------------------- navigation
def _visible(page, selector: str) -> list[int]:
    """Indices of the elements matching ``selector`` that a reader can see and tap."""
    return page.eval_on_selector_all(selector, """els => els.map((e, i) => {
        const r = e.getBoundingClientRect(), s = getComputedStyle(e);
        return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' ? i : -1;
    }).filter(i => i >= 0)""")


def _dialog_open(page, dialog_id: str) -> bool:
    return page.evaluate(f"() => document.getElementById('{dialog_id}').open")


def test_phone_menu_opens_and_follows_a_lesson_link(browser, server):
    """At phone width, does every visible menu button open the table of contents (as a
    drawer), and does a lesson link in it lead to the lesson?"""
    record = {"console": [], "external": [], "http": []}
    page = _new_page(browser, server, record, PHONE)
    page.goto(server + "book/intro.html", wait_until="load")
    toggles = _visible(page, ".primary-toggle")
    assert toggles, "no menu button is visible at phone width"
    for index in toggles:
        page.reload(wait_until="load")
        assert not _dialog_open(page, "pst-primary-sidebar-modal")
        page.locator(".primary-toggle").nth(index).tap()
        page.wait_for_function(
            "() => document.getElementById('pst-primary-sidebar-modal').open", timeout=5_000)
        link = page.locator("#pst-primary-sidebar-modal a[href*='notebooks/01_']").first
        assert link.is_visible(), f"menu button {index}: no visible link to lesson 01"
    link.tap()
    page.wait_for_url("**/notebooks/01_*.html", timeout=10_000)
    assert page.locator("main h1").first.inner_text().startswith("01")
    page.close()
    assert not record["console"] and not record["external"], record


def test_phone_page_contents_open(browser, server):
    """At phone width, does the page-contents button of a lesson open its sections?"""
    record = {"console": [], "external": [], "http": []}
    page = _new_page(browser, server, record, PHONE)
    page.goto(server + _screenshot_lesson() + ".html", wait_until="load")
    toggles = _visible(page, ".secondary-toggle")
    assert toggles, "no page-contents button is visible at phone width"
    page.locator(".secondary-toggle").nth(toggles[0]).tap()
    page.wait_for_function(
        "() => document.getElementById('pst-secondary-sidebar-modal').open", timeout=5_000)
    sections = page.locator("#pst-secondary-sidebar-modal nav a")
    assert sections.count() >= 3 and sections.first.is_visible()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "lesson-phone-contents.png"))
    page.close()
    assert not record["console"] and not record["external"], record


def test_desktop_menu_button_collapses_and_restores_the_sidebar(browser, server):
    """On a desktop screen, does the visible menu button hide the sidebar and show it again
    (not open a drawer)?"""
    record = {"console": [], "external": [], "http": []}
    page = _new_page(browser, server, record)
    page.goto(server + "book/intro.html", wait_until="load")
    toggles = _visible(page, ".primary-toggle")
    assert toggles, "no menu button is visible on desktop"
    sidebar = page.locator("#pst-primary-sidebar")
    assert sidebar.is_visible()
    page.locator(".primary-toggle").nth(toggles[0]).click()
    page.wait_for_function("() => document.getElementById('pst-primary-sidebar')"
                           ".classList.contains('pst-sidebar-hidden')", timeout=5_000)
    assert not _dialog_open(page, "pst-primary-sidebar-modal")
    page.locator(".primary-toggle").nth(toggles[0]).click()
    page.wait_for_function("() => !document.getElementById('pst-primary-sidebar')"
                           ".classList.contains('pst-sidebar-hidden')", timeout=5_000)
    page.close()
    assert not record["console"] and not record["external"], record


def test_smoke_banner_is_visible_and_leads_to_the_results(browser, server):
    """Does a page of the smoke edition show the banner, above the lesson, and does its link
    open the results page?"""
    record = {"console": [], "external": [], "http": []}
    page = _new_page(browser, server, record, PHONE)
    page.goto(server + _screenshot_lesson() + ".html", wait_until="load")
    banner = page.locator(".course-smoke-banner")
    assert banner.is_visible() and "smoke" in banner.inner_text().lower()
    title = page.locator("main h1:visible").first
    assert banner.bounding_box()["y"] < title.bounding_box()["y"]
    banner.locator("a").tap()
    page.wait_for_url("**/book/results.html", timeout=10_000)
    page.close()
    assert not record["console"] and not record["external"], record


# ----------------------------------------------------------------------------- accessibility
# Violations that come from the theme's own markup, not from the course's content, each with
# the upstream issue (book/instructors.md lists them): (axe rule, CSS selector prefix).
THEME_VIOLATIONS = ()


@pytest.fixture(scope="module")
def axe_js():
    """axe-core's source, from the verified npm tarball (course_utils.book.axe_core_js)."""
    return book.axe_core_js()


AXE_RUN = """async () => {
  const r = await axe.run(document, {resultTypes: ['violations']});
  return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.map(n => n.target.join(' '))}));
}"""


def _axe_pages() -> list[str]:
    pages = toc_pages()
    exercise = next((p for p in pages if p.startswith("exercises/0")), None)
    keras = "notebooks/03_convolutional_networks"      # Keras' rich model summary
    return [p for p in dict.fromkeys(["book/intro", _screenshot_lesson(), keras, exercise,
                                      "book/glossary"]) if p in pages]


def _axe_violations(browser, server, axe_js, docname: str, mode: str) -> list[str]:
    record = {"console": [], "external": [], "http": []}
    page = _new_page(browser, server, record)
    page.add_init_script(f"localStorage.setItem('theme', '{mode}');"
                         f"localStorage.setItem('mode', '{mode}');")
    page.goto(server + docname + ".html", wait_until="load")
    page.wait_for_function(f"() => document.documentElement.dataset.theme === '{mode}'",
                           timeout=5_000)
    if page.evaluate("() => !!document.querySelector('main .math')"):
        page.wait_for_function("() => window.MathJax && MathJax.startup", timeout=20_000)
        page.evaluate("() => MathJax.startup.promise")
    page.add_script_tag(content=axe_js)
    found = page.evaluate(AXE_RUN)
    page.close()
    out = []
    for v in found:
        if v["impact"] not in ("serious", "critical"):
            continue
        nodes = [n for n in v["nodes"] if not any(
            v["id"] == rule and n.startswith(prefix) for rule, prefix in THEME_VIOLATIONS)]
        out += [f"{docname} ({mode}) {v['id']} [{v['impact']}]: {v['help']}: {n}"
                for n in nodes]
    return out


@pytest.mark.parametrize("mode", ["light", "dark"])
def test_no_serious_accessibility_violation(browser, server, axe_js, mode):
    """Does axe-core find no serious or critical violation on the landing page, a lesson, an
    exercise and the glossary, in light and in dark mode, apart from the theme's own listed
    ones?"""
    found = []
    for docname in _axe_pages():
        found += _axe_violations(browser, server, axe_js, docname, mode)
    assert not found, f"{len(found)} violation(s):\n" + "\n".join(found[:60])


def test_no_lesson_is_wider_than_a_phone(browser, server):
    """At phone width, does every lesson page fit the screen (wide equations, tables and code
    scroll inside their own boxes, not the page)?"""
    wide = []
    for docname in [p for p in toc_pages() if p.startswith("notebooks/")]:
        record = {"console": [], "external": [], "http": []}
        page = _new_page(browser, server, record, PHONE)
        page.goto(server + docname + ".html", wait_until="load")
        if page.evaluate("() => !!document.querySelector('main .math')"):
            page.wait_for_function("() => window.MathJax && MathJax.startup", timeout=20_000)
            page.evaluate("() => MathJax.startup.promise")
        # a phone widens its layout viewport (innerWidth) to fit a too-wide page, so the page
        # is measured against the screen's own width
        screen = PHONE["viewport"]["width"]
        width = page.evaluate("() => document.documentElement.scrollWidth")
        if width > screen + 1:
            culprits = page.evaluate("""w => Array.from(document.querySelectorAll('main *'))
                .filter(e => e.getBoundingClientRect().right > w + 1)
                .slice(0, 3).map(e => e.tagName + '.' + e.className)""", screen)
            wide.append(f"{docname}: {width} px > {screen} ({culprits})")
        page.close()
    assert not wide, wide
