"""Does an exercise notebook work for a learner in a real JupyterLab, driven in a real browser?

A JupyterLab server starts on a free loopback port with a token, on a temporary copy of the warm-up
exercise and its solution (its settings, workspaces and the course's progress store are temporary
too). Debian's chromium, driven by Playwright, opens the exercise, runs all cells and must see each
check rendered: the pre-filled buggy answer failing with its message, every other one "not implemented
yet"; then it opens the solution, runs it, and every check must pass. Screenshots go to ``tests/_artifacts/screenshots/``. Everything is stopped at the end.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from browser import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS, require_chromium

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = "00_warmup.ipynb"  # the grading engineer's warm-up: four quick questions
JUPYTER = Path(sys.executable).parent / "jupyter"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def number_of_checks(path: Path) -> int:
    """How many code cells of a notebook call ``check(...)``."""
    nb = nbformat.read(path, as_version=4)
    return sum(c.cell_type == "code" and c.source.lstrip().startswith("check(") for c in nb.cells)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on a temporary copy of the exercise and its solution; yields (url, token, root)."""
    require_chromium()
    for folder in ("exercises", "solutions"):
        if not (ROOT / folder / NOTEBOOK).is_file():
            pytest.skip(f"{folder}/{NOTEBOOK} is not written yet")
    tmp = tmp_path_factory.mktemp("lab")
    root = tmp / "course"
    for folder in ("exercises", "solutions"):
        (root / folder).mkdir(parents=True)
        shutil.copy2(ROOT / folder / NOTEBOOK, root / folder / NOTEBOOK)
    # Render every cell (no virtual scrolling), so that every check result is in the page.
    settings = tmp / "settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    # No "get notified about Jupyter news?" toast over the notebook.
    apputils = tmp / "settings" / "@jupyterlab" / "apputils-extension"
    apputils.mkdir(parents=True)
    (apputils / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
    port, token = free_port(), secrets.token_hex(16)
    env = dict(os.environ, COURSE_SMOKE="1", COURSE_CACHE_DIR=str(tmp / "cache"),
               JUPYTER_CONFIG_DIR=str(tmp / "config"), JUPYTER_RUNTIME_DIR=str(tmp / "runtime"))
    env.pop("MPLBACKEND", None)
    log = open(tmp / "jupyterlab.log", "w")
    proc = subprocess.Popen(
        [str(JUPYTER), "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}", "--ServerApp.port_retries=0",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
         "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
         "--LabApp.extension_manager=readonly",  # no PyPI queries
         f"--LabServerApp.user_settings_dir={tmp / 'settings'}",
         f"--LabServerApp.workspaces_dir={tmp / 'workspaces'}"]
        + (["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []),  # CI containers run as root
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}api/status?token={token}", timeout=2).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("JupyterLab did not start: " + (tmp / "jupyterlab.log").read_text()[-2000:])
                time.sleep(0.5)
        yield url, token, root
    finally:
        try:  # shuts down the kernels, then the server
            urllib.request.urlopen(urllib.request.Request(f"{url}api/shutdown?token={token}", method="POST"), timeout=5)
        except OSError:
            pass
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


@pytest.fixture(scope="module")
def page(lab):
    """A chromium page that may talk to the JupyterLab server only."""
    from playwright.sync_api import sync_playwright

    url, _, _ = lab
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.route("**/*", lambda r: r.continue_() if r.request.url.startswith((url, "data:", "blob:")) else r.abort())
        yield context.new_page()
        context.close()
        browser.close()


RUN_ALL_JS = """async (path) => {
  const app = window.jupyterapp;
  let panel = null;
  const start = Date.now();
  while (!panel && Date.now() - start < 60000) {  // the notebook's panel, not a restored one
    panel = Array.from(app.shell.widgets('main')).find(w => w.context && w.context.path === path) || null;
    if (!panel) { await new Promise(r => setTimeout(r, 250)); }
  }
  app.shell.activateById(panel.id);
  await panel.context.ready;
  await panel.sessionContext.ready;
  await app.commands.execute('notebook:run-all-cells');
  // Wait until the kernel is idle again and no cell is still queued ([*]).
  const busy = () => panel.sessionContext.session.kernel.status !== 'idle' ||
      panel.content.widgets.some(c => c.model.type === 'code' && c.promptNode && c.promptNode.textContent.includes('*'));
  while (busy() && Date.now() - start < 180000) { await new Promise(r => setTimeout(r, 250)); }
  return {id: panel.id,
          counts: panel.content.widgets.filter(c => c.model.type === 'code').map(c => c.model.executionCount)};
}"""


def open_and_run(page, lab, path: str) -> tuple[str, list]:
    """Open a notebook in JupyterLab and run all its cells; returns (CSS selector of its panel,
    execution counts of its code cells)."""
    url, token, _ = lab
    page.goto(f"{url}lab/tree/{path}?reset&token={token}", wait_until="domcontentloaded")  # reset: no restored tabs
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell", timeout=60_000)
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=60_000)
    ran = page.evaluate(RUN_ALL_JS, path)
    return f"#{ran['id']}", ran["counts"]


def shoot(page, panel: str, name: str) -> None:
    """Screenshot with the first check result in view."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.locator(f"{panel} .jp-OutputArea-output .course-check").first.scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / name))


def test_exercise_shows_the_bug_and_not_implemented_yet(page, lab):
    """Run all cells of the fresh exercise notebook: does every check render, the pre-filled buggy answer
    (00.add prints instead of returning) failing with what went wrong, the others 'not implemented yet'?"""
    panel, counts = open_and_run(page, lab, f"exercises/{NOTEBOOK}")
    assert all(counts), f"some code cells did not run: {counts}"
    checks = page.locator(f"{panel} .jp-OutputArea-output .course-check")
    expected = number_of_checks(ROOT / "exercises" / NOTEBOOK)
    assert expected and checks.count() == expected
    todo = page.locator(f"{panel} .jp-OutputArea-output .course-check-not-implemented-yet")
    assert todo.count() == expected - 1
    failed = page.locator(f"{panel} .jp-OutputArea-output .course-check-failed")
    assert failed.count() == 1 and "did you forget to `return` it?" in failed.first.inner_text()
    assert "not implemented yet" in todo.first.inner_text().lower()
    shoot(page, panel, "lab_exercise.png")


def test_solution_passes_every_check(page, lab):
    """Run all cells of the solution notebook: does every check render as passed?"""
    panel, counts = open_and_run(page, lab, f"solutions/{NOTEBOOK}")
    assert all(counts), f"some code cells did not run: {counts}"
    expected = number_of_checks(ROOT / "solutions" / NOTEBOOK)
    checks = page.locator(f"{panel} .jp-OutputArea-output .course-check")
    assert expected and checks.count() == expected
    passed = page.locator(f"{panel} .jp-OutputArea-output .course-check-passed")
    assert passed.count() == expected, [checks.nth(i).inner_text()[:300] for i in range(checks.count())]
    shoot(page, panel, "lab_solution.png")
