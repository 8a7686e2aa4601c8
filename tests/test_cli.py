"""`dplpaper` console script: data list / data fetch (loopback)."""
import hashlib
import http.server
import threading

import pytest

from dplpaper import cli
from dplpaper.data import registry


def test_data_list(capsys):
    assert cli.main(["data", "list"]) == 0
    out = capsys.readouterr().out
    for name in registry.DATASETS:
        assert name in out
    line = next(l for l in out.splitlines() if l.startswith("camels_us_quick"))
    assert "found" in line and "repo data/" in line
    assert cli.main(["data", "list", "-v"]) == 0 and "licence:" in capsys.readouterr().out


def test_data_list_missing(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(registry, "REPO_ROOT", tmp_path)                   # no data/, no ../shared
    cli.main(["data", "list"])
    out = capsys.readouterr().out
    assert all("missing" in l for l in out.splitlines() if l.strip())


def test_data_fetch_loopback(tmp_path, capsys):
    body = b"01022500\n"

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    man = tmp_path / "m.json"
    import json
    man.write_text(json.dumps({"files": [{"path": "list.txt", "url": "https://example.org/list.txt",
                                          "sha256": hashlib.sha256(body).hexdigest()}]}))
    ds = registry.DataSet("clitest", "clitest", "test", "list.txt", "none", "none", "https://example.org")
    ds.manifest_entries = lambda: json.loads(man.read_text())["files"]
    registry.register(ds)
    try:
        rc = cli.main(["data", "fetch", "clitest", "--dest", str(tmp_path), "--mirror",
                       f"http://127.0.0.1:{httpd.server_address[1]}", "-q"])
        assert rc == 0 and (tmp_path / "clitest" / "list.txt").read_bytes() == body
        assert "clitest" in capsys.readouterr().out
        assert cli.main(["data", "fetch", "no_such_set"]) == 2
        assert "unknown data set" in capsys.readouterr().err
    finally:
        registry.DATASETS.pop("clitest")
        httpd.shutdown()
        httpd.server_close()
