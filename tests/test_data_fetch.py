"""Tests of course_utils.data.fetch: verified download, cache hits, corrupt files, no network."""
import hashlib
import io
import zipfile

import pytest

from course_utils.data import DATASETS, DataError, DataFile, Dataset, fetch, fetch_file, verify
import importlib

fetch_module = importlib.import_module("course_utils.data.fetch")  # the module, not the function of the same name

PAYLOAD = b"0123456789" * 1000


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def mirror(tmp_path):
    """A local 'mirror' folder served through file:// URLs."""
    folder = tmp_path / "mirror"
    folder.mkdir()
    (folder / "toy.bin").write_bytes(PAYLOAD)
    return folder


@pytest.fixture
def toy(monkeypatch, tmp_path, mirror):
    """A dataset 'toy' whose one file lives on the local mirror; data root in a temporary folder."""
    root = tmp_path / "data"
    monkeypatch.setenv("COURSE_DATA_DIR", str(root))
    f = DataFile("toy.bin", _sha(PAYLOAD), len(PAYLOAD), (mirror.as_uri() + "/toy.bin",))
    ds = Dataset("toy", "Toy", (f,), "CC0", "Nobody 2026", "https://example.invalid")
    monkeypatch.setitem(DATASETS, "toy", ds)
    return root / "toy" / "toy.bin"


def test_download_verifies_and_places_file(toy):
    """Does a missing file get downloaded, verified and put at <root>/<dataset>/<file>?"""
    path = fetch_file("toy", "toy.bin")
    assert path == toy and path.read_bytes() == PAYLOAD
    assert not list(toy.parent.glob("*.part")), "no temporary file may be left behind"


def test_cache_hit_is_verified_and_corruption_named(toy):
    """Does a cache hit with one corrupt byte raise an error naming the file, both hashes and the fix?"""
    fetch_file("toy", "toy.bin")
    data = bytearray(toy.read_bytes())
    data[10] ^= 0xFF
    toy.write_bytes(bytes(data))
    with pytest.raises(DataError) as err:
        fetch_file("toy", "toy.bin")
    msg = str(err.value)
    assert str(toy) in msg and _sha(PAYLOAD) in msg and _sha(bytes(data)) in msg
    assert "course data verify toy --redownload" in msg


def test_truncated_file_is_not_a_cache_hit(toy):
    """Is a truncated file reported with its size, not used?"""
    toy.parent.mkdir(parents=True)
    toy.write_bytes(PAYLOAD[:100])
    with pytest.raises(DataError, match="100 bytes, expected 10,000"):
        fetch_file("toy", "toy.bin")


def test_redownload_repairs_corrupt_file(toy):
    """Does `verify --redownload` replace a corrupt file with a verified one?"""
    toy.parent.mkdir(parents=True)
    toy.write_bytes(b"garbage")
    report = verify("toy", redownload=True)
    assert [r.status for r in report] == ["repaired"]
    assert toy.read_bytes() == PAYLOAD


def test_wrong_hash_download_never_lands(toy, mirror):
    """Is a download whose bytes do not match the registry rejected, leaving nothing in the cache?"""
    (mirror / "toy.bin").write_bytes(b"tampered mirror")
    with pytest.raises(DataError, match="wrong SHA-256"):
        fetch_file("toy", "toy.bin")
    assert not toy.exists() and not list(toy.parent.glob("*.part"))


def test_half_written_download_never_becomes_a_cache_hit(toy, monkeypatch):
    """If the connection dies mid-download, is the partial file removed and the next call clean?"""
    real = fetch_module._stream

    def dying(src, dst, digest, bar):
        dst.write(src.read(500))
        raise OSError("connection reset")

    monkeypatch.setattr(fetch_module, "_stream", dying)
    with pytest.raises(DataError, match="connection reset"):
        fetch_file("toy", "toy.bin")
    assert not toy.exists() and not list(toy.parent.glob("*.part"))
    monkeypatch.setattr(fetch_module, "_stream", real)
    assert fetch_file("toy", "toy.bin").read_bytes() == PAYLOAD


def test_mirrors_are_tried_in_order(monkeypatch, tmp_path, mirror):
    """When the first mirror fails, is the second one used?"""
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "data"))
    f = DataFile("toy.bin", _sha(PAYLOAD), len(PAYLOAD),
                 ((tmp_path / "nowhere").as_uri() + "/toy.bin", mirror.as_uri() + "/toy.bin"))
    monkeypatch.setitem(DATASETS, "toy", Dataset("toy", "Toy", (f,), "CC0", "c", "h"))
    assert fetch_file("toy", "toy.bin").read_bytes() == PAYLOAD


def test_no_network_and_no_copy_says_where_to_put_it(monkeypatch, tmp_path):
    """With no network and no local copy, does the error say where to put the file and where to get it?"""
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "data"))
    url = "http://127.0.0.1:9/toy.bin"  # the discard port: connection refused, no traffic leaves the machine
    f = DataFile("toy.bin", _sha(PAYLOAD), len(PAYLOAD), (url,))
    monkeypatch.setitem(DATASETS, "toy", Dataset("toy", "Toy", (f,), "CC0", "c", "h"))
    with pytest.raises(DataError) as err:
        fetch_file("toy", "toy.bin")
    msg = str(err.value)
    assert str(tmp_path / "data" / "toy" / "toy.bin") in msg and url in msg and "COURSE_DATA_DIR" in msg


def test_zip_member_is_extracted_and_verified(monkeypatch, tmp_path):
    """Is a file that mirrors ship inside a zip archive extracted and verified by its own hash?"""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("pack/inner.txt", PAYLOAD)
    archive = tmp_path / "pack.zip"
    archive.write_bytes(buf.getvalue())
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "data"))
    f = DataFile("inner.txt", _sha(PAYLOAD), len(PAYLOAD), (archive.as_uri(),), member="pack/inner.txt")
    monkeypatch.setitem(DATASETS, "toy", Dataset("toy", "Toy", (f,), "CC0", "c", "h"))
    assert fetch("toy") == tmp_path / "data" / "toy"
    assert (tmp_path / "data" / "toy" / "inner.txt").read_bytes() == PAYLOAD


def test_relative_data_dir_resolves_against_checkout(monkeypatch, tmp_path):
    """Does a relative COURSE_DATA_DIR (as CI sets it) still work from a notebook's own folder?"""
    from course_utils.paths import repo_root

    root = repo_root()
    if root is None:
        pytest.skip("not an editable checkout")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COURSE_DATA_DIR", "notebooks")
    assert fetch_module.data_root() == (root / "notebooks").resolve()


def test_registry_matches_shared_sha256sums(shared_data):
    """Does every registry hash agree with the shared data folder's SHA256SUMS, and every file verify?"""
    sums = {}
    for line in (shared_data / "SHA256SUMS").read_text().splitlines():
        digest, rel = line.split(maxsplit=1)
        sums[rel.strip()] = digest
    for ds in DATASETS.values():
        for f in ds.files:
            rel = f"{ds.name}/{f.name}"
            assert sums.get(rel) == f.sha256, rel
        assert all(r.status == "ok" for r in verify(ds.name)), ds.name


def test_every_dataset_has_mirrors_license_and_citation():
    """Does every file have at least two URLs, and every dataset a license and citation?"""
    for ds in DATASETS.values():
        assert ds.license and ds.citation and ds.homepage
        for f in ds.files:
            assert len(f.urls) >= 2, f"{ds.name}/{f.name} needs a mirror"
            assert len(f.sha256) == 64 and f.size > 0


def test_http_mirror_through_pooch_with_a_retry(monkeypatch, tmp_path, mirror):
    """Is a file served over HTTP (a loopback server) fetched through pooch, verified, and is a mirror
    that first fails once retried before the next mirror is tried?"""
    import functools
    import http.server
    import threading

    served = []

    class Flaky(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):
            served.append(self.path)
            if len(served) == 1:  # the first request fails, as a busy mirror would
                self.send_error(503)
                return
            super().do_GET()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Flaky, directory=str(mirror)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "data"))
        url = f"http://127.0.0.1:{server.server_address[1]}/toy.bin"
        f = DataFile("toy.bin", _sha(PAYLOAD), len(PAYLOAD), (url,))
        monkeypatch.setitem(DATASETS, "toy", Dataset("toy", "Toy", (f,), "CC0", "c", "h"))
        assert fetch_file("toy", "toy.bin").read_bytes() == PAYLOAD
        assert served == ["/toy.bin", "/toy.bin"]
    finally:
        server.shutdown()
        server.server_close()
