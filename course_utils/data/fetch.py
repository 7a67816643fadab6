"""Verified download, built on pooch (the download manager of SciPy, scikit-image and xarray).

pooch downloads each file to a temporary name, checks its SHA-256 against the registry's known
hash, retries a failed download, shows a tqdm progress bar and unzips archives; a download that
does not match never lands. What the course adds around it, because its learners rely on it:

- mirrors tried in turn (pooch knows one URL a file);
- the ``<root>/<dataset>/<file>`` layout and ``COURSE_DATA_DIR``, so a shared data folder works as is;
- a cache hit is verified too (pooch would silently download again): a corrupt or truncated file
  is never used, and the message says how to repair it;
- a file shipped inside a zip archive is verified by the member's own hash;
- without a network, the message says where to put the file and where to get it; nothing that
  was there before is lost (a download goes to a staging folder and replaces a file only once
  verified).
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import tempfile
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..paths import cache_dir, repo_root
from .registry import DataFile, Dataset, get_dataset

CHUNK = 1 << 20  # 1 MiB


class DataError(RuntimeError):
    """A dataset file is missing, corrupt or could not be downloaded; the message says what to do."""


def data_root() -> Path:
    """Where datasets live: ``$COURSE_DATA_DIR``, else ``<user cache>/data``.

    A relative ``COURSE_DATA_DIR`` is taken relative to the current folder, or failing that to the
    course checkout, so a notebook running in ``notebooks/`` finds the same folder as ``make test``.
    """
    env = os.environ.get("COURSE_DATA_DIR")
    if not env:
        return cache_dir() / "data"
    path = Path(env).expanduser()
    if path.is_absolute():
        return path
    if path.exists():
        return path.resolve()
    root = repo_root()
    if root is not None and (root / path).exists():
        return (root / path).resolve()
    return path.resolve()


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_path(dataset: Dataset, f: DataFile) -> Path:
    """Where ``f`` of ``dataset`` lives on disk: ``<root>/<dataset>/<file>``."""
    return data_root() / dataset.name / f.name


def _corrupt_message(dataset: Dataset, f: DataFile, path: Path, actual: str) -> str:
    size = path.stat().st_size
    return (
        f"{path} is corrupt or truncated ({size:,} bytes, expected {f.size:,}).\n"
        f"  expected SHA-256: {f.sha256}\n"
        f"  actual SHA-256:   {actual}\n"
        f"Repair it with:  course data verify {dataset.name} --redownload\n"
        f"(or delete the file and run the cell again)."
    )


def _missing_message(dataset: Dataset, f: DataFile, path: Path, errors: list[str]) -> str:
    tried = "\n".join(f"  - {e}" for e in errors) or "  (no mirror tried)"
    mirrors = "\n".join(f"  - {u}" + (f"  (file '{f.member}' inside the zip)" if f.member else "") for u in f.urls)
    return (
        f"Could not get {dataset.name}/{f.name}: it is not at {path} and no mirror could be downloaded.\n"
        f"Tried:\n{tried}\n"
        f"No network? Download it on a machine that has one, from:\n{mirrors}\n"
        f"and put it at {path}\n"
        f"(or set COURSE_DATA_DIR to a folder laid out as <dataset>/<file>, e.g. a shared course data folder).\n"
        f"Expected SHA-256: {f.sha256}"
    )


RETRIES = 1  # pooch retries a failed download this many times before the next mirror is tried


def _stream(src, dst, digest, bar) -> None:
    for chunk in iter(lambda: src.read(CHUNK), b""):
        dst.write(chunk)
        digest.update(chunk)
        if bar is not None:
            bar.update(len(chunk))


def _file_downloader(url: str, output_file, pooch_obj) -> None:
    """A pooch downloader for ``file://`` URLs (a mirror on a local or mounted disk)."""
    source = Path(urllib.request.url2pathname(urllib.parse.urlparse(url).path))
    with open(source, "rb") as src, open(output_file, "wb") as dst:
        _stream(src, dst, hashlib.sha256(), None)


def _downloader(url: str, timeout: float):
    if url.startswith("file:"):
        return _file_downloader
    import pooch

    return pooch.HTTPDownloader(progressbar=True, timeout=timeout, headers={"User-Agent": "course-utils"})


_POOCH_MISMATCH = re.compile(r"hash of downloaded file \((?P<actual>[0-9a-f]{64})\)")


def _via_pooch(url: str, f: DataFile, staging: Path, timeout: float) -> Path:
    """Download ``url`` into ``staging`` with pooch (known hash, retries, unzip); returns the file."""
    import pooch

    logging.getLogger("pooch").setLevel(logging.WARNING)  # no "SHA256 hash of ..." chatter
    name = Path(urllib.parse.urlparse(url).path).name or f.name
    known = None if f.member else f"sha256:{f.sha256}"  # an archive is checked by its member
    store = pooch.create(path=staging, base_url="", registry={name: known}, urls={name: url},
                         retry_if_failed=RETRIES)
    if f.member is None:
        return Path(store.fetch(name, downloader=_downloader(url, timeout)))
    members = store.fetch(name, downloader=_downloader(url, timeout),
                          processor=pooch.Unzip(members=[f.member], extract_dir="unzipped"))
    found = [Path(m) for m in members if Path(m).as_posix().endswith(f.member)]
    if not found:
        raise KeyError(f"no member {f.member!r} in the archive")
    return found[0]


def download(dataset: Dataset, f: DataFile, timeout: float = 60.0) -> Path:
    """Download ``f`` from its mirrors in order, verify it, and move it into place; returns its path."""
    import requests

    path = file_path(dataset, f)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(_missing_message(dataset, f, path, [f"cannot create {path.parent}: {exc}"])) from None
    errors: list[str] = []
    for url in f.urls:
        staging = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{f.name}.", suffix=".part"))
        try:
            got = _via_pooch(url, f, staging, timeout)
            actual = sha256_file(got)  # pooch checked it; a zip member is checked here
            if actual != f.sha256:
                errors.append(f"{url}: wrong SHA-256 {actual} (expected {f.sha256})")
                continue
            os.replace(got, path)  # atomic: a reader sees the old file or the whole new one
            return path
        except ValueError as exc:  # pooch: the downloaded bytes do not match the known hash
            m = _POOCH_MISMATCH.search(str(exc))
            actual = m.group("actual") if m else "of another file"
            errors.append(f"{url}: wrong SHA-256 {actual} (expected {f.sha256})")
        except (requests.RequestException, OSError, zipfile.BadZipFile, KeyError) as exc:
            errors.append(f"{url}: {getattr(exc, 'reason', None) or exc}")
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    raise DataError(_missing_message(dataset, f, path, errors))


def fetch_file(name: str, file: str, redownload: bool = False) -> Path:
    """Return the verified local path of ``file`` of dataset ``name``, downloading it if needed.

    Raises:
        DataError: the file is corrupt (with the repair command), or missing and not downloadable
            (with where to put it and where to get it).
    Example:
        >>> path = fetch_file("mnist", "t10k-labels-idx1-ubyte.gz")  # doctest: +SKIP
    """
    dataset = get_dataset(name)
    f = dataset.file(file)
    path = file_path(dataset, f)
    if path.exists() and not redownload:
        actual = sha256_file(path)
        if actual == f.sha256:
            return path
        raise DataError(_corrupt_message(dataset, f, path, actual))
    return download(dataset, f)


def fetch(name: str) -> Path:
    """Make sure every file of dataset ``name`` is present and verified; returns its folder."""
    dataset = get_dataset(name)
    for f in dataset.files:
        fetch_file(name, f.name)
    return data_root() / dataset.name


@dataclass
class FileStatus:
    """What ``verify`` found for one file: ok, missing, corrupt, repaired or failed."""

    dataset: str
    file: str
    status: str
    detail: str = ""


def verify(name: str, redownload: bool = False, download_missing: bool = False) -> list[FileStatus]:
    """Check every file of dataset ``name`` against its SHA-256; optionally repair or fetch.

    Args:
        redownload: download corrupt files again (and missing ones).
        download_missing: download missing files (corrupt ones are only reported).
    """
    dataset = get_dataset(name)
    report = []
    for f in dataset.files:
        path = file_path(dataset, f)
        if path.exists():
            actual = sha256_file(path)
            if actual == f.sha256:
                report.append(FileStatus(name, f.name, "ok", str(path)))
                continue
            status, detail = "corrupt", _corrupt_message(dataset, f, path, actual)
        else:
            status, detail = "missing", f"not at {path}"
        if redownload or (download_missing and status == "missing"):
            try:
                download(dataset, f)
                report.append(FileStatus(name, f.name, "repaired" if status == "corrupt" else "downloaded", str(path)))
            except DataError as exc:
                report.append(FileStatus(name, f.name, "failed", str(exc)))
        else:
            report.append(FileStatus(name, f.name, status, detail))
    return report
