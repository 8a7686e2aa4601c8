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


def test_run_case2_writes_results_provenance_and_archive(tmp_path, monkeypatch, capsys):
    import json

    import pandas as pd

    from dplpaper import results

    monkeypatch.setenv("DPLPAPER_RESULTS", str(tmp_path / "res"))
    monkeypatch.setenv("DPLPAPER_ARCHIVE", str(tmp_path / "arch"))
    assert cli.main(["run", "case2", "--mode", "quick", "--methods", "dpl", "--tag", "t", "--archive", "-q"]) == 0
    out = capsys.readouterr().out
    assert "dPL gA+HBV (8 attr)" in out and "archived to" in out
    med = pd.read_csv(tmp_path / "res" / "case2" / "medians_quick_t.csv", index_col=0)
    assert list(med.index) == ["dPL gA+HBV (8 attr)"] and med["n_basins"].iloc[0] == 40
    prov = json.loads((tmp_path / "res" / "case2" / "provenance_medians_quick_t.json").read_text())
    assert prov["command"] == "dplpaper run case2 --mode quick --methods dpl --tag t --archive -q" and prov["methods"] == ["dpl"] and prov["n_basins"] == 40
    assert prov["wall_time_s"] >= 0 and len(prov["git_commit"]) in (0, 40)
    table, p2 = results.archived("case2", "medians_quick_t.csv")
    pd.testing.assert_frame_equal(table.set_index("method"), med.rename_axis("method"))
    assert p2 == prov
    assert results.archived("case2", "no_such.csv") == (None, None)


def test_run_case3_pub_records_budget_override(tmp_path, monkeypatch, capsys):
    import json

    import pandas as pd

    monkeypatch.setenv("DPLPAPER_RESULTS", str(tmp_path / "res"))
    assert cli.main(["run", "case3", "--mode", "quick", "--parts", "pub", "--regionalization-evals", "100",
                     "--regionalization-refine-steps", "5", "--set", "dpl.epochs=2", "-q"]) == 0
    assert "regionalization HBV (8 attr)" in capsys.readouterr().out
    t = pd.read_csv(tmp_path / "res" / "case3" / "pub_metrics_quick.csv", dtype={"site": str})
    assert t.groupby("method")["site"].nunique().eq(40).all() and t["fold"].nunique() == 4
    prov = json.loads((tmp_path / "res" / "case3" / "provenance_pub_metrics_quick.json").read_text())
    assert prov["regionalization_max_evals"] == 100 and prov["parts"] == ["pub"] and prov["k_folds"] == 4
    assert prov["regionalization_refine_steps"] == 5 and prov["config"]["dpl"]["epochs"] == 2
