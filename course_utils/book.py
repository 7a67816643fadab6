"""``course book``: build the course site with Jupyter Book 1.x, learner and instructor editions.

The book is built from the repository root (``jupyter-book build . --config book/_config.yml``), so
every notebook exists once, where it lives (``notebooks/``, ``exercises/``, ``solutions/``). Before
calling jupyter-book, :func:`build`

1. writes ``book/results.md`` from ``benchmarks/results.json`` (:func:`results_markdown`);
2. vendors MathJax 3 from the npm registry into ``book/_build/vendor/mathjax`` (:func:`vendor_mathjax`),
   so that the site typesets math with no network;
3. writes the table of contents of the edition into ``book/_build/toc/``: ``book/_toc.yml`` without
   the pages that are not written yet (:func:`prune_toc`), plus, for the instructor edition, the
   solution notebook of every exercise page (:func:`instructor_toc`).

Notebooks execute in smoke mode (``COURSE_SMOKE=1``) and jupyter-cache keeps their outputs in
``book/_build/.jupyter_cache``, shared by both editions; warnings are errors (``-W -n --keep-going``).
Every page of a smoke build carries a banner saying so (``book/_ext/course_book.py``).

``--full`` builds the edition people should read: notebooks execute in full mode, with their own
jupyter-cache (``book/_build/.jupyter_cache_full``; the two modes run the same code, so one cache
would hand smoke outputs to a full build) and their own site (``book/_build/full/<edition>``).
``course bench --full`` puts each notebook it runs into that cache (:func:`cache_executed_notebook`),
so the figures of the benchmark and of the book come from one execution.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from .figures import table_lines
from .paths import cache_dir, repo_root

EDITIONS = ("learner", "instructor")
SOLUTIONS_CAPTION = "Solutions (instructor edition)"

# MathJax 3, served from the site's _static folder (https://docs.mathjax.org/en/v3.2-latest/web/hosting.html).
# The npm tarball is verified against this hash (sha256 of the registry's mathjax-3.2.2.tgz).
MATHJAX_VERSION = "3.2.2"
MATHJAX_SHA256 = "1b9c0a1c44df864e915690558e72adb9cc5203360daefd385084ced3b6c64c09"
# What the site needs from the package's es5/ folder: the combined TeX + CommonHTML component, its
# web fonts, and the components its menu loads on demand (accessibility, speech rules).
MATHJAX_FILES = ("tex-chtml-full.js", "output/chtml/fonts/woff-v2/", "ui/", "a11y/", "sre/")
MATHJAX_TGZ_ENV = "COURSE_MATHJAX_TGZ"  # a local mathjax-3.2.2.tgz, for machines without the npm registry


# ----------------------------------------------------------------------------- paths and config

def _root(root: Path | str | None = None) -> Path:
    """The repository root: ``root`` if given, else the course checkout, else the current folder."""
    return Path(root).resolve() if root else (repo_root() or Path.cwd().resolve())


def site_dir(edition: str = "learner", root: Path | str | None = None,
             full: bool = False) -> Path:
    """The folder holding the built HTML of an edition (``index.html`` and the pages)."""
    return output_dir(edition, root, full) / "_build" / "html"


def output_dir(edition: str = "learner", root: Path | str | None = None,
               full: bool = False) -> Path:
    """What ``jupyter-book --path-output`` gets for an edition (it appends ``_build/html``):
    ``book`` and ``book/_build/instructor`` in smoke mode, ``book/_build/full/<edition>`` in
    full mode."""
    root = _root(root)
    if edition not in EDITIONS:
        raise ValueError(f"edition must be one of {EDITIONS}, got {edition!r}")
    if full:
        return root / "book" / "_build" / "full" / edition
    return root / "book" if edition == "learner" else root / "book" / "_build" / "instructor"


FULL_CACHE = "book/_build/.jupyter_cache_full"   # relative to the repository root
FULL_CELL_TIMEOUT_S = 3600                       # a full-mode training cell may take minutes


def execution_cache(root: Path | str | None = None, full: bool = False) -> Path:
    """The jupyter-cache folder of a build: the config's for smoke mode, ``FULL_CACHE`` for full."""
    root = _root(root)
    return root / (FULL_CACHE if full else read_config(root)["execute"]["cache"])


def build_config(root: Path | str | None = None, full: bool = False) -> Path:
    """The config file of a build: ``book/_config.yml`` itself in smoke mode; in full mode a
    copy in ``book/_build/config/full.yml`` with the full-mode cache, a longer cell timeout, and
    the local extensions' folder made absolute (it is relative to the config file)."""
    import yaml

    root = _root(root)
    source = root / "book" / "_config.yml"
    if not full:
        return source
    config = read_config(root)
    config["execute"]["cache"] = FULL_CACHE
    config["execute"]["timeout"] = FULL_CELL_TIMEOUT_S
    extensions = config["sphinx"]["local_extensions"]
    config["sphinx"]["local_extensions"] = {
        name: str((source.parent / folder).resolve()) for name, folder in extensions.items()}
    path = root / "book" / "_build" / "config" / "full.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# Written by `course book build --full` from book/_config.yml: edit that.\n"
                    + yaml.safe_dump(config, sort_keys=False, allow_unicode=True),
                    encoding="utf-8")
    return path


def cache_executed_notebook(source: Path | str, executed, seconds: float | None = None,
                            root: Path | str | None = None) -> int:
    """Put a full-mode execution of ``source`` (``course bench --full``) in the full build's
    jupyter-cache; returns the cache record's id.

    jupyter-cache matches a notebook by a hash of its code cells (source and metadata) and its
    kernelspec, so the cached copy is the source notebook itself with the executed outputs
    copied in: the execution's own cell metadata (nbclient's timings) would change the hash.

    Raises:
        ValueError: ``executed`` does not have the code cells of ``source``.
    """
    import nbformat
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    source = Path(source).resolve()
    nb = nbformat.read(source, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    done = [c for c in executed.cells if c.cell_type == "code"]
    if [c.source for c in code] != [c.source for c in done]:
        raise ValueError(f"the executed notebook is not {source.name} as it is on disk "
                         "(its code cells differ): run it again")
    for cell, ran in zip(code, done):
        cell.outputs, cell.execution_count = ran.outputs, ran.execution_count
    if "language_info" in executed.metadata:        # the page's code highlighting
        nb.metadata["language_info"] = executed.metadata["language_info"]
    cache = get_cache(str(execution_cache(root, full=True)))
    record = cache.cache_notebook_bundle(
        CacheBundleIn(nb, str(source), data={"execution_seconds": seconds}),
        check_validity=False, overwrite=True)
    return record.pk


def read_config(root: Path | str | None = None) -> dict:
    """``book/_config.yml`` as a dict."""
    import yaml

    return yaml.safe_load((_root(root) / "book" / "_config.yml").read_text(encoding="utf-8"))


def repository(root: Path | str | None = None) -> tuple[str, str]:
    """The repository URL and branch from the book's config (the one place they are written)."""
    repo = read_config(root)["repository"]
    return repo["url"].rstrip("/"), repo.get("branch", "main")


def colab_url(notebook: str, root: Path | str | None = None) -> str:
    """The Colab address that opens ``notebook`` (a path from the repository root) from GitHub."""
    url, branch = repository(root)
    github = url.removeprefix("https://github.com/")
    return f"https://colab.research.google.com/github/{github}/blob/{branch}/{notebook}"


# ----------------------------------------------------------------------------- table of contents

def load_toc(path: Path | str) -> dict:
    """A ``_toc.yml`` (jb-book format) as a dict."""
    import yaml

    return yaml.safe_load(Path(path).read_text(encoding="utf-8"))


def _entries(toc: dict):
    """Every entry dict that names a file, depth first, in reading order (the root excluded)."""
    def walk(items):
        for item in items or []:
            if "file" in item:
                yield item
            yield from walk(item.get("sections"))
    for part in toc.get("parts", [{"chapters": toc.get("chapters", [])}]):
        yield from walk(part.get("chapters"))


def toc_docnames(toc: dict) -> list[str]:
    """The pages of a table of contents in reading order, root first (paths without suffix)."""
    return [toc["root"]] + [entry["file"] for entry in _entries(toc)]


def doc_path(docname: str, root: Path | str | None = None) -> Path | None:
    """The source file of a page (``.md`` or ``.ipynb``), or None if it does not exist."""
    root = _root(root)
    for suffix in (".ipynb", ".md"):
        path = root / f"{docname}{suffix}"
        if path.is_file():
            return path
    return None


def prune_toc(toc: dict, root: Path | str | None = None) -> tuple[dict, list[str]]:
    """A copy of ``toc`` without the pages whose file does not exist; returns (toc, missing pages).

    A missing chapter takes its sections with it only if they are missing too: an existing section
    is promoted to take the chapter's place. Parts left empty are dropped.
    """
    missing: list[str] = []

    def keep(items):
        kept = []
        for item in items or []:
            sections = keep(item.get("sections"))
            if doc_path(item["file"], root) is None:
                missing.append(item["file"])
                kept.extend(sections)
                continue
            item = {k: v for k, v in item.items() if k != "sections"}
            if sections:
                item["sections"] = sections
            kept.append(item)
        return kept

    pruned = {k: v for k, v in toc.items() if k != "parts"}
    if doc_path(toc["root"], root) is None:
        raise FileNotFoundError(f"the root page of the book does not exist: {toc['root']}")
    parts = []
    for part in toc.get("parts", []):
        chapters = keep(part.get("chapters"))
        if chapters:
            parts.append({**{k: v for k, v in part.items() if k != "chapters"}, "chapters": chapters})
    pruned["parts"] = parts
    return pruned, missing


def instructor_toc(toc: dict) -> dict:
    """The learner ``toc`` plus a part with the solution notebook of every exercise page."""
    toc = copy.deepcopy(toc)
    solutions = [
        {"file": "solutions/" + entry["file"].removeprefix("exercises/")}
        for entry in _entries(toc) if entry["file"].startswith("exercises/")
    ]
    if solutions:
        toc.setdefault("parts", []).append({"caption": SOLUTIONS_CAPTION, "chapters": solutions})
    return toc


def write_toc(toc: dict, path: Path) -> Path:
    """Write a table of contents as YAML (with a header saying it is generated)."""
    import yaml

    path.parent.mkdir(parents=True, exist_ok=True)
    text = "# Generated by `course book build` from book/_toc.yml; do not edit.\n"
    path.write_text(text + yaml.safe_dump(toc, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def edition_toc(edition: str, root: Path | str | None = None) -> tuple[dict, list[str]]:
    """The table of contents of an edition, pruned to pages that exist; returns (toc, missing)."""
    toc = load_toc(_root(root) / "book" / "_toc.yml")
    if edition == "instructor":
        toc = instructor_toc(toc)
    return prune_toc(toc, root)


def built_toc(edition: str = "learner", root: Path | str | None = None) -> dict:
    """The table of contents that the last build of an edition used (``book/_build/toc/<edition>.yml``)."""
    return load_toc(_root(root) / "book" / "_build" / "toc" / f"{edition}.yml")


# ----------------------------------------------------------------------------- results page

RESULTS_JSON = Path("benchmarks") / "results.json"
RESULTS_PAGE = Path("book") / "results.md"


def _cell(value) -> str:
    """Text safe inside a Markdown table cell."""
    return str(value).replace("|", "\\|").replace("\n", " ").strip() or "–"


def _lesson(lesson: str) -> str:
    """The lesson cell: a ``{lesson}`` link when the lesson is a two-digit number."""
    lesson = str(lesson)
    return f"{{lesson}}`{lesson}`" if re.fullmatch(r"\d{2}", lesson) else _cell(lesson)


def results_markdown(results: dict | None) -> str:
    """The Markdown of the results page for the content of ``benchmarks/results.json`` (or None)."""
    lines = [
        "# Results",
        "",
        "% Generated by `course book results` from benchmarks/results.json; do not edit.",
        "",
        "The headline figures of each lesson, recorded by the notebook itself (`record(...)`) when",
        "`course bench` ran it headless in a fresh kernel. **Full mode** is the lesson as a learner",
        "runs it; **smoke mode** (tiny data, one epoch) only shows that the notebook runs, and its",
        "figures say nothing about the method. Each run names its device, machine, date and wall time.",
        "Beside each full-mode figure: the lesson's target for it, and where the lesson sets it",
        "against one, the figure a well-known source published (on other hardware, often with a",
        "larger model or budget: a reference point, not a target).",
        "",
    ]
    runs = list((results or {}).get("runs") or [])
    if not runs:
        lines += [
            "```{note}",
            "Nothing measured yet. Run `course bench` (smoke mode) or `course bench --full`, then",
            "`make book` to bring the figures here.",
            "```",
            "",
        ]
        return "\n".join(lines)
    for mode, title in (("full", "Full mode"), ("smoke", "Smoke mode")):
        mode_runs = sorted((r for r in runs if r.get("mode") == mode),
                           key=lambda r: (str(r.get("lesson", "")), str(r.get("device", "")),
                                          str(r.get("notebook", ""))))
        lines += [f"## {title}", ""]
        if not mode_runs:
            lines += [f"No {mode}-mode run yet (`course bench{' --full' if mode == 'full' else ''}`).", ""]
            continue
        for run in mode_runs:
            wall = run.get("wall_time_s")
            facts = [f"on `{_cell(run.get('device', '?'))}`", _cell(run.get("machine", "")), _cell(run.get("date", ""))]
            if isinstance(wall, (int, float)):
                facts.append(f"{wall:.0f} s wall time")
            lines += [f"**{_lesson(run.get('lesson', ''))}**, " + " · ".join(f for f in facts if f != "–"), ""]
            figures = run.get("figures") or {}
            status = run.get("status", "ok")
            if status != "ok":
                lines += [f"Run **{_cell(status)}**" + (f": {_cell(run['error'])}" if run.get("error") else "") + ".", ""]
                continue
            if not figures:
                lines += ["No figure recorded.", ""]
                continue
            lines += table_lines(run, for_book=True) + [""]
    return "\n".join(lines)


def read_results(root: Path | str | None = None) -> dict | None:
    """``benchmarks/results.json``, or None when it is missing, empty or not valid JSON."""
    path = _root(root) / RESULTS_JSON
    try:
        text = path.read_text(encoding="utf-8")
        return json.loads(text) if text.strip() else None
    except (OSError, ValueError):
        return None


def write_results_page(root: Path | str | None = None) -> bool:
    """Write ``book/results.md`` from the benchmark results; True if the file changed."""
    path = _root(root) / RESULTS_PAGE
    text = results_markdown(read_results(root))
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    path.write_text(text, encoding="utf-8")
    return True


# ----------------------------------------------------------------------------- MathJax

def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def npm_tarball(package: str, version: str, sha256: str, env: str | None = None) -> Path:
    """A verified npm tarball ``<package>-<version>.tgz``: the file named by ``$env``, the user
    cache (``cache_dir()/vendor``), or ``npm pack`` from the registry into that cache. Its SHA-256
    is checked on every use; a wrong file is never used."""
    if env and os.environ.get(env):
        candidates = [Path(os.environ[env])]
    else:
        candidates = [cache_dir() / "vendor" / f"{package}-{version}.tgz"]
    for path in candidates:
        if path.is_file() and _sha256(path) == sha256:
            return path
    if env and os.environ.get(env):
        raise RuntimeError(f"{candidates[0]} is not {package}-{version}.tgz (SHA-256 should be {sha256})")
    npm = shutil.which("npm")
    if npm is None:
        hint = f" and set {env} to its path" if env else f" into {candidates[0].parent}"
        raise RuntimeError(
            f"{package} {version} is needed and npm is not installed. Install Node.js and npm "
            "(Debian: apt-get install nodejs npm, or run .ci/install-system-deps.sh), or download "
            f"{package}-{version}.tgz from the npm registry{hint}.")
    target = candidates[0]
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([npm, "pack", f"{package}@{version}", "--silent"], cwd=tmp, check=True,
                       stdout=subprocess.DEVNULL)
        packed = Path(tmp) / f"{package}-{version}.tgz"
        actual = _sha256(packed)
        if actual != sha256:
            raise RuntimeError(f"npm gave a {package}-{version}.tgz with SHA-256 {actual}, expected {sha256}")
        partial = target.with_suffix(".part")
        shutil.copyfile(packed, partial)
        partial.replace(target)  # atomic: a half-copied file never becomes a cache hit
    return target


def _mathjax_tarball() -> Path:
    """The verified MathJax npm tarball: ``$COURSE_MATHJAX_TGZ``, the user cache, or ``npm pack``."""
    return npm_tarball("mathjax", MATHJAX_VERSION, MATHJAX_SHA256, MATHJAX_TGZ_ENV)


# axe-core, the accessibility engine the browser tests run in each page (never part of the site).
AXE_VERSION = "4.14.1"
AXE_SHA256 = "e6b0ce02b84d892e2e33e403485e7f3d6c29e2be6df65daf44d89ba564139745"


def axe_core_js() -> str:
    """The source of ``axe.min.js`` from the verified axe-core npm tarball."""
    with tarfile.open(npm_tarball("axe-core", AXE_VERSION, AXE_SHA256)) as tar:
        return tar.extractfile("package/axe.min.js").read().decode("utf-8")


def vendor_mathjax(dest: Path | str | None = None) -> Path:
    """Put MathJax's files for the site into ``dest`` (default ``book/_build/vendor``); returns the
    folder holding ``mathjax/tex-chtml-full.js``. Does nothing when that version is already there."""
    dest = Path(dest) if dest else _root() / "book" / "_build" / "vendor"
    folder = dest / "mathjax"
    stamp = folder / ".version"
    if stamp.is_file() and stamp.read_text().strip() == MATHJAX_VERSION and (folder / MATHJAX_FILES[0]).is_file():
        return dest
    tarball = _mathjax_tarball()
    dest.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".mathjax-", dir=dest))  # same file system: the final move is atomic
    try:
        with tarfile.open(tarball) as tar:
            members = [m for m in tar.getmembers()
                       if m.isfile() and (m.name == "package/LICENSE" or any(
                           m.name == f"package/es5/{f}" or (f.endswith("/") and m.name.startswith(f"package/es5/{f}"))
                           for f in MATHJAX_FILES))]
            tar.extractall(tmp, members=members, filter="data")
        staged = tmp / "mathjax"
        shutil.copytree(tmp / "package" / "es5", staged)
        shutil.copy2(tmp / "package" / "LICENSE", staged / "LICENSE")
        (staged / ".version").write_text(MATHJAX_VERSION + "\n")
        if folder.exists():
            shutil.rmtree(folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        staged.replace(folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


# ----------------------------------------------------------------------------- build

def _jupyter_book() -> list[str]:
    """The command that runs jupyter-book with this Python."""
    script = Path(sys.executable).parent / "jupyter-book"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from jupyter_book.cli.main import main; main()"]


def build_env(smoke: bool = True) -> dict:
    """The environment of a book build: smoke mode or full mode, inline figures."""
    env = dict(os.environ)
    if smoke:
        env["COURSE_SMOKE"] = "1"
    else:
        env.pop("COURSE_SMOKE", None)
    # The kernel must draw figures inline; MPLBACKEND=Agg (set by `make test`) would drop them.
    env.pop("MPLBACKEND", None)
    env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    return env


def _refresh_static(root: Path, site: Path) -> list[str]:
    """Copy the course's own static files (``book/_static``) into a built site where they differ.

    Sphinx copies static files only when some page is rebuilt: after an edit of ``course.css``
    or a script alone, an incremental build says "no targets are out of date" and keeps the old
    copies. Returns the names copied."""
    copied = []
    for path in sorted((root / "book" / "_static").glob("*")):
        target = site / "_static" / path.name
        if path.is_file() and target.parent.is_dir() and (
                not target.exists() or target.read_bytes() != path.read_bytes()):
            shutil.copyfile(path, target)
            copied.append(path.name)
    return copied


def build(edition: str = "learner", root: Path | str | None = None, all_pages: bool = False,
          strict: bool = False, smoke: bool = True, quiet: bool = False) -> int:
    """Build one edition of the book; returns jupyter-book's exit status (0 = no warning).

    The log goes to ``book/_build/logs/<edition>.log``; it says which notebooks executed and which
    came from the cache.
    """
    root = _root(root)
    start = time.perf_counter()
    if write_results_page(root):
        print(f"wrote {RESULTS_PAGE}")
    vendor_mathjax(root / "book" / "_build" / "vendor")
    toc, missing = edition_toc(edition, root)
    if missing:
        print("not written yet, left out of the table of contents: " + ", ".join(missing))
        if strict:
            print("--strict: every page of book/_toc.yml must exist", file=sys.stderr)
            return 1
    toc_path = write_toc(toc, root / "book" / "_build" / "toc" / f"{edition}.yml")
    cmd = _jupyter_book() + [
        "build", str(root), "--config", str(build_config(root, full=not smoke)),
        "--toc", str(toc_path),
        "--path-output", str(output_dir(edition, root, full=not smoke)), "-W", "-n",
        "--keep-going",
    ] + (["--all"] if all_pages else [])
    log_path = root / "book" / "_build" / "logs" / f"{edition}{'' if smoke else '-full'}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    executed = cached = 0
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.Popen(cmd, cwd=root, env=build_env(smoke), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, bufsize=1)
        for line in proc.stdout:
            log.write(line)
            executed += "Executing notebook using" in line
            cached += "Using cached notebook" in line
            if not quiet:
                sys.stdout.write(line)
        rc = proc.wait()
    if rc == 0:
        _refresh_static(root, site_dir(edition, root, not smoke))
    seconds = time.perf_counter() - start
    print(f"{edition} edition ({'smoke' if smoke else 'full'} mode): {'built' if rc == 0 else f'FAILED (exit {rc})'} in {seconds:.0f} s; "
          f"{executed} notebook(s) executed, {cached} from the cache; log: {log_path.relative_to(root)}; "
          f"site: {site_dir(edition, root, not smoke).relative_to(root)}/index.html")
    return rc


# ----------------------------------------------------------------------------- CLI

def _cmd_build(args) -> int:
    return build("instructor" if args.instructor else "learner", all_pages=args.all,
                 strict=args.strict, smoke=not args.full, quiet=args.quiet)


def _cmd_results(args) -> int:
    """``course book results [--check]``: render benchmarks/results.json (never rewritten here)
    into the results page, benchmarks/RESULTS.md and the README's results section."""
    from .bench import render_results

    root = _root()
    changed = render_results(root, check=args.check)
    names = ", ".join(str(p.relative_to(root)) for p in changed)
    if args.check:
        print(f"out of date: {names} (run `course book results`)" if changed
              else "the results page, benchmarks/RESULTS.md and the README are up to date")
        return 1 if changed else 0
    print(f"wrote {names}" if changed else "unchanged: the results page, RESULTS.md, the README")
    return 0


def _cmd_serve(args) -> int:
    import functools
    import http.server

    folder = site_dir("instructor" if args.instructor else "learner", full=args.full)
    if not (folder / "index.html").exists():
        target = "book" + ("-instructor" if args.instructor else "") + ("-full" if args.full else "")
        print(f"{folder} has no site yet: run `make {target}` first")
        return 1
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    with http.server.ThreadingHTTPServer(("127.0.0.1", args.port), handler) as server:
        print(f"serving {folder} at http://127.0.0.1:{server.server_port}/ (Ctrl-C stops)")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
    return 0


def add_commands(sub) -> None:
    """Register ``course book build|results|serve``."""
    p = sub.add_parser("book", help="build the course site (Jupyter Book)")
    bsub = p.add_subparsers(dest="book_command", metavar="ACTION")
    p_build = bsub.add_parser("build", help="build the learner edition (or --instructor) into book/_build")
    p_build.add_argument("--instructor", action="store_true", help="the instructor edition, with solutions")
    p_build.add_argument("--all", action="store_true", help="re-read every page (outputs still come from the cache)")
    p_build.add_argument("--strict", action="store_true", help="fail if a page of book/_toc.yml does not exist")
    p_build.add_argument("--full", action="store_true", help="execute notebooks in full mode, not smoke mode")
    p_build.add_argument("--quiet", action="store_true", help="print only the summary (the log has the rest)")
    p_build.set_defaults(handler=_cmd_build)
    p_results = bsub.add_parser("results", help="write book/results.md, benchmarks/RESULTS.md and the "
                                "README's results from benchmarks/results.json")
    p_results.add_argument("--check", action="store_true", help="only check that it is up to date")
    p_results.set_defaults(handler=_cmd_results)
    p_serve = bsub.add_parser("serve", help="serve the built site on http://127.0.0.1:PORT/")
    p_serve.add_argument("--instructor", action="store_true")
    p_serve.add_argument("--port", type=int, default=8000)
    p_serve.add_argument("--full", action="store_true", help="the full-mode site (`make book-full`)")
    p_serve.set_defaults(handler=_cmd_serve)
    p.set_defaults(handler=lambda args: (p.print_help(), 2)[1])
