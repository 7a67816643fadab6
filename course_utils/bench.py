"""``course bench [LESSON...] [--full]``: run lesson notebooks headless and record their figures.

Each notebook runs in a fresh kernel with a time limit; the figures it ``record``s, its wall time,
the device, the machine and the mode go into ``benchmarks/results.json`` (one entry per lesson,
mode and device; a new run replaces the old one) and a Markdown table in ``benchmarks/RESULTS.md``
and the README. Full-mode figures come only from such runs.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import platform
import re
import tempfile
import time
from pathlib import Path

from .figures import table_cell, table_lines
from .paths import repo_root
from .results import RESULTS_FILE_ENV, read_recorded

README_START, README_END = "<!-- results:start -->", "<!-- results:end -->"


def describe_machine() -> str:
    """A one-line description of this machine: CPU model, cores, memory, GPU if any."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        mem = f", {kb / 1024 ** 2:.0f} GiB RAM"
    except (OSError, AttributeError):
        pass
    gpu = isa = ""
    try:
        import torch

        from .runtime import cpu_has_native_bf16

        # the widest vector unit PyTorch uses, and bf16 units: they decide CPU speed-ups
        units = [torch.backends.cpu.get_cpu_capability()]
        if getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)():
            units.append("AMX")
        elif cpu_has_native_bf16():
            units.append("AVX512-BF16")
        units = [u for u in units if u and u != "DEFAULT"]
        isa = f" ({', '.join(units)})" if units else ""
        if torch.cuda.is_available():
            gpu = f", GPU {torch.cuda.get_device_name(0)}"
    except ImportError:  # pragma: no cover
        pass
    return f"{cpu}{isa}, {os.cpu_count()} cores{mem}{gpu}"


def find_notebooks(root: Path, lessons: list[str]) -> list[Path]:
    """Lesson notebooks ``notebooks/NN_*.ipynb``, all or those whose number is in ``lessons``."""
    wanted = {lesson.zfill(2) for lesson in lessons}
    found = sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    return [p for p in found if not wanted or p.name[:2] in wanted]


def run_notebook(path: Path, full: bool, timeout: int, save_to: Path | None = None) -> dict:
    """Execute one notebook in a fresh kernel; returns the run's entry (status, time, figures).

    Args:
        save_to: a folder; the executed notebook, with its outputs, is written there under its
            own name (also when a cell failed, to show where), e.g. to read the epochs of a run.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    from .runtime import choose_device

    nb = nbformat.read(path, as_version=4)
    fd, results_file = tempfile.mkstemp(prefix="course-bench-", suffix=".jsonl")
    os.close(fd)
    saved = {k: os.environ.get(k) for k in ("COURSE_SMOKE", RESULTS_FILE_ENV, "MPLBACKEND")}
    os.environ[RESULTS_FILE_ENV] = results_file
    # Agg draws nothing into the notebook; a saved notebook is read for its figures, and a
    # full-mode run goes to the full book's cache (the book shows its figures)
    os.environ["MPLBACKEND"] = ("module://matplotlib_inline.backend_inline"
                                if save_to is not None or full else "Agg")
    if full:
        os.environ.pop("COURSE_SMOKE", None)
    else:
        os.environ["COURSE_SMOKE"] = "1"
    status, error = "ok", ""
    start = time.perf_counter()
    try:
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(path.parent)}})
        client.execute()
    except CellTimeoutError:
        status, error = "timeout", f"a cell ran longer than {timeout} s"
    except DeadKernelError as exc:
        status, error = "error", f"the kernel died: {exc}"
    except CellExecutionError as exc:
        status, error = "error", str(exc).strip().splitlines()[-1][:300]
    finally:
        wall = time.perf_counter() - start
        if save_to is not None:
            save_to.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, save_to / path.name)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    if full and status == "ok":
        _cache_for_book(path, nb, wall)
    figures = read_recorded(results_file)
    os.unlink(results_file)
    root = repo_root() or path.parent.parent
    return {
        "lesson": path.name[:2],
        "notebook": str(path.relative_to(root)) if path.is_relative_to(root) else str(path),
        "mode": "full" if full else "smoke",
        "device": choose_device().name,
        "machine": describe_machine(),
        "date": dt.date.today().isoformat(),
        "wall_time_s": round(wall, 1),
        "status": status,
        "error": error,
        "figures": figures,
    }


def _cache_for_book(path: Path, executed, seconds: float) -> None:
    """Hand a full-mode execution to ``course book build --full`` (its jupyter-cache); a
    failure to do so is reported, never fatal to the benchmark."""
    from .book import cache_executed_notebook, execution_cache

    root = repo_root()
    if root is None or not path.resolve().is_relative_to(root):
        return                                   # not a page of this course's book
    try:
        cache_executed_notebook(path, executed, seconds)
        print(f"  {path.name}: outputs cached for `course book build --full` "
              f"({execution_cache(full=True)})")
    except Exception as exc:                      # a locked or corrupt cache, no repo root
        print(f"  {path.name}: not cached for the full book ({type(exc).__name__}: {exc})")


def merge_runs(old: list[dict], new: list[dict]) -> list[dict]:
    """Replace runs of the same notebook, mode and device; keep the rest; sort for stable files."""
    key = lambda r: (r["notebook"], r["mode"], r["device"])  # noqa: E731
    merged = {key(r): r for r in old}
    merged.update({key(r): r for r in new})
    return [merged[k] for k in sorted(merged)]


def markdown_table(runs: list[dict]) -> str:
    """The results in Markdown, for the README and ``benchmarks/RESULTS.md``: each full-mode run
    (lesson, device, machine, wall time, date) with its figures under their titles, beside their
    targets and published anchors (``course_utils.figures``); then one table of the smoke runs,
    whose figures say nothing (tiny data, one epoch): only their wall times are shown."""
    if not runs:
        return "_No benchmark has been run yet: `course bench --full`._\n"
    def key(run: dict) -> tuple[str, str, str]:
        return str(run.get("lesson", "")), str(run.get("device", "")), str(run.get("notebook", ""))

    lines = []
    for run in sorted((r for r in runs if r.get("mode") != "smoke"), key=key):
        facts = [f"{run.get('mode', '?')} mode", run.get("device", "?"), run.get("machine", ""),
                 f"{run.get('wall_time_s', 0) / 60:.1f} min wall time", run.get("date", "")]
        lines += [f"**Lesson {run.get('lesson', '?')}** · " + " · ".join(f for f in facts if f), ""]
        if run.get("status", "ok") != "ok":
            lines += [f"Run **{run['status']}**: {run.get('error', '')}".rstrip(": ") + ".", ""]
        elif not run.get("figures"):
            lines += ["No figure recorded.", ""]
        else:
            lines += table_lines(run, for_book=False) + [""]
    smoke = sorted((r for r in runs if r.get("mode") == "smoke"), key=key)
    if smoke:
        lines += ["**Smoke runs** (tiny data, one epoch: only the wall time says something)", "",
                  "| lesson | device | wall time | status | machine | date |",
                  "|---|---|---|---|---|---|"]
        for r in smoke:
            status = r.get("status", "ok") + (f": {r['error']}" if r.get("error") else "")
            cells = [r.get("lesson", "?"), r.get("device", "?"), f"{r.get('wall_time_s', 0) / 60:.1f} min",
                     status, r.get("machine", ""), r.get("date", "")]
            lines.append("| " + " | ".join(table_cell(c) for c in cells) + " |")
        lines.append("")
    return "\n".join(lines)


def write_results(root: Path, runs: list[dict]) -> None:
    """Write ``benchmarks/results.json`` and everything rendered from it (``render_results``)."""
    bench_dir = root / "benchmarks"
    bench_dir.mkdir(exist_ok=True)
    (bench_dir / "results.json").write_text(json.dumps({"runs": runs}, indent=2, sort_keys=True) + "\n")
    render_results(root, runs)


def rendered_results(root: Path, runs: list[dict]) -> dict[Path, str]:
    """{file: its text} for what the results are rendered into: ``benchmarks/RESULTS.md``, the
    book's results page and the README's results section (between its markers)."""
    table = markdown_table(runs)
    out = {root / "benchmarks" / "RESULTS.md":
           "# Benchmark results\n\nWritten by `course bench`; do not edit by hand.\n\n" + table}
    if (root / "book").is_dir():  # the book's results page shows the same runs
        from .book import RESULTS_PAGE, results_markdown

        out[root / RESULTS_PAGE] = results_markdown({"runs": runs})
    readme = root / "README.md"
    if readme.exists():
        text = readme.read_text(encoding="utf-8")
        if README_START in text and README_END in text:
            head, rest = text.split(README_START, 1)
            _, tail = rest.split(README_END, 1)
            out[readme] = f"{head}{README_START}\n{table}{README_END}{tail}"
    return out


def render_results(root: Path, runs: list[dict] | None = None, check: bool = False) -> list[Path]:
    """Render the results (default: those in ``benchmarks/results.json``, which this never
    writes) into ``rendered_results``' files; returns the files that changed (with ``check``:
    that are out of date, writing nothing)."""
    runs = load_runs(root) if runs is None else runs
    changed = []
    for path, text in rendered_results(root, runs).items():
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        changed.append(path)
        if not check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    return changed


def load_runs(root: Path) -> list[dict]:
    """The runs already in ``benchmarks/results.json`` (none if it is missing or unreadable)."""
    try:
        return json.loads((root / "benchmarks" / "results.json").read_text()).get("runs", [])
    except (OSError, ValueError):
        return []


def cmd_bench(args) -> int:
    """Handler of ``course bench``."""
    root = Path(args.root).resolve() if args.root else repo_root()
    if root is None or not (root / "notebooks").is_dir():
        print("course bench: run it from the course checkout (or pass --root DIR)")
        return 2
    notebooks = find_notebooks(root, args.lessons)
    if not notebooks:
        print(f"course bench: no lesson notebooks match {args.lessons or 'any'} in {root / 'notebooks'}")
        return 2
    new = []
    for path in notebooks:
        print(f"running {path.relative_to(root)} in {'full' if args.full else 'smoke'} mode ...", flush=True)
        save_to = Path(args.save_executed) if args.save_executed else None
        run = run_notebook(path, args.full, args.timeout, save_to)
        print(f"  {run['status']} in {run['wall_time_s']:.1f} s on {run['device']}: "
              + ", ".join(f"{k}={v['value']:.4g}" for k, v in run["figures"].items()), flush=True)
        if run["error"]:
            print(f"  {run['error']}")
        new.append(run)
    if not args.no_write:
        write_results(root, merge_runs(load_runs(root), new))
        print(f"wrote {root / 'benchmarks' / 'results.json'} and {root / 'benchmarks' / 'RESULTS.md'}")
    return 0 if all(r["status"] == "ok" for r in new) else 1


def add_commands(sub) -> None:
    """Register ``course bench``."""
    p = sub.add_parser("bench", help="run lesson notebooks headless and record their figures and times")
    p.add_argument("lessons", nargs="*", help="lesson numbers, e.g. 01 03 (default: all)")
    p.add_argument("--full", action="store_true", help="full mode (what learners run); default: smoke mode")
    p.add_argument("--timeout", type=int, default=3600, help="time limit per cell in seconds (default 3600)")
    p.add_argument("--no-write", action="store_true", help="print only; do not update benchmarks/ and README")
    p.add_argument("--root", help="the course checkout (default: the one course_utils was installed from)")
    p.add_argument("--save-executed", metavar="DIR",
                   help="also write each executed notebook, with its outputs, into DIR")
    p.set_defaults(handler=cmd_bench)
