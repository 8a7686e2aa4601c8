"""Registry search order and fetch (sha256, HTTP Range resume, tqdm) against a loopback HTTP server."""
import hashlib
import http.server
import threading
from pathlib import Path

import pytest

from dplpaper.data import DataFormatError, DataNotFoundError, registry


class RangeHandler(http.server.BaseHTTPRequestHandler):
    files: dict = {}
    log: list = []

    def do_GET(self):  # noqa: N802
        body = self.files.get(self.path)
        rng = self.headers.get("Range")
        self.log.append((self.path, rng))
        if body is None:
            self.send_error(404)
            return
        start = 0
        if rng:
            start = int(rng.split("=")[1].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        self.wfile.write(body[start:])

    def log_message(self, *a):
        pass


@pytest.fixture
def server():
    RangeHandler.files, RangeHandler.log = {}, []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", RangeHandler
    httpd.shutdown()
    httpd.server_close()


def _entries(handler, base):
    a = b"line one\n" * 5000
    b = bytes(range(256)) * 300
    handler.files.update({"/repo/a.txt": a, "/repo/sub/b.bin": b})
    return [{"path": "a.txt", "url": base + "/repo/a.txt", "sha256": hashlib.sha256(a).hexdigest()},
            {"path": "sub/b.bin", "url": base + "/repo/sub/b.bin", "sha256": hashlib.sha256(b).hexdigest()}], a, b


def test_fetch_and_resume(server, tmp_path):
    base, h = server
    entries, a, b = _entries(h, base)
    dest = tmp_path / "out"
    (dest / "sub").mkdir(parents=True)
    (dest / "sub" / "b.bin.part").write_bytes(b[:1000])         # a partial earlier download
    registry.fetch_entries(entries, dest, show_progress=True)
    assert (dest / "a.txt").read_bytes() == a and (dest / "sub/b.bin").read_bytes() == b
    assert ("/repo/sub/b.bin", "bytes=1000-") in h.log and ("/repo/a.txt", None) in h.log
    assert not list(dest.rglob("*.part"))
    n = len(h.log)
    registry.fetch_entries(entries, dest, show_progress=False)   # complete and verified: no request
    assert len(h.log) == n


def test_fetch_checksum_mismatch(server, tmp_path):
    base, h = server
    entries, _, _ = _entries(h, base)
    entries[0]["sha256"] = "0" * 64
    with pytest.raises(DataFormatError, match=r"a.txt, field 'sha256'.*mismatch"):
        registry.fetch_entries(entries[:1], tmp_path, show_progress=False)
    assert (tmp_path / "a.txt.part.bad").is_file() and not (tmp_path / "a.txt").exists()


def test_fetch_mirror_gzip_and_missing(server, tmp_path):
    import gzip
    base, h = server
    entries, a, _ = _entries(h, base)
    e = dict(entries[0], path="a.csv.gz", url="https://raw.githubusercontent.com/repo/a.txt", gzip=True)
    registry.fetch_entries([e], tmp_path, mirror=base, show_progress=False)
    assert gzip.decompress((tmp_path / "a.csv.gz").read_bytes()) == a
    with pytest.raises(Exception, match="404"):
        registry.fetch_entries([dict(e, path="x", url=base + "/nope", gzip=False)], tmp_path, show_progress=False)


def test_search_order(tmp_path, monkeypatch):
    ds = registry.get("camels_us_quick")
    assert registry.find("camels_us_quick") == registry.REPO_ROOT / "data" / "camels_us_quick"
    fake = tmp_path / ds.folder / ds.marker
    fake.parent.mkdir(parents=True)
    fake.write_text("gauge_id\n")
    monkeypatch.setenv("DPLPAPER_DATA", str(tmp_path))
    assert registry.find("camels_us_quick") == tmp_path / "camels_us_quick"      # env var wins
    assert registry.search_roots()[0] == ("$DPLPAPER_DATA", tmp_path)
    with pytest.raises(DataNotFoundError, match="unknown data set"):
        registry.find("nope")


def test_manifests_and_checksums():
    for name, ds in registry.DATASETS.items():
        assert ds.citation and ds.licence and ds.url.startswith("https://"), name
        if not ds.shipped:
            entries = ds.manifest_entries()
            assert entries and all(len(e["sha256"]) == 64 and e["url"].startswith("https://") for e in entries)
    nh = {e["path"]: e for e in registry.get("neuralhydrology_testdata").manifest_entries()}
    assert len(nh) == 22 and "76d08502a8bb2c0433a93dd4b82dca2cb38605ea" in nh["1_basin_test_set.txt"]["url"]
    # the shipped attributes are byte-identical to the registered checksum of the full set
    sha = registry.get("camels_us").checksums["camels_attributes_v2.0/camels_topo.txt"]
    assert registry.sha256_file(registry.locate("camels_us_quick") / "camels_attributes_v2.0/camels_topo.txt") == sha


def test_manifest_matches_local_copy(full_data):
    root = full_data("neuralhydrology_testdata")
    for e in registry.get("neuralhydrology_testdata").manifest_entries():
        assert registry.sha256_file(root / e["path"]) == e["sha256"], e["path"]


def test_resolve_quick():
    assert registry.resolve("camels_us", quick=True).name == "camels_us_quick"
    p = registry.resolve("camels_us")
    assert p.name in ("camels_us", "camels_us_quick")
