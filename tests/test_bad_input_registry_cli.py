"""Bad input to the registry, fetch and the command line (issue 12, items 5, 6, 9): clear,
one-line errors before anything is loaded; no silent fallback; no hang."""
import hashlib
import http.server
import socket
import threading
import time

import pytest

from dplpaper import cli, reproduce
from dplpaper.data import DataFetchError, DataNotFoundError, DataSetIncompleteError, registry


# ----------------------------------------------------------------------------- registry (item 5)
def test_misspelt_dplpaper_data(tmp_path, monkeypatch):
    monkeypatch.setenv("DPLPAPER_DATA", str(tmp_path / "dat"))            # does not exist
    with pytest.raises(DataNotFoundError, match=r"\$DPLPAPER_DATA=.*dat' is not a directory \(misspelt\?\)"):
        registry.resolve("camels_us")
    assert cli.main(["data", "list"]) == 2


def test_incomplete_set_is_an_error_not_a_fallback(tmp_path, monkeypatch):
    ds = registry.get("camels_us")
    folder = tmp_path / ds.folder
    (folder / "camels_attributes_v2.0").mkdir(parents=True)
    (folder / ds.marker).write_text("gauge_id;gauge_lat\n")                # marker present, the rest missing
    monkeypatch.setenv("DPLPAPER_DATA", str(tmp_path))
    n_req = len(ds.required_files())
    with pytest.raises(DataSetIncompleteError, match=rf"data set 'camels_us' at {folder} \(\$DPLPAPER_DATA\) is "
                                                     rf"incomplete: missing .*\({n_req - 1} in all\).*data fetch camels_us"):
        registry.resolve("camels_us")                                       # quick=None: no fallback either
    with pytest.raises(DataSetIncompleteError):
        registry.find("camels_us")
    assert registry.resolve("camels_us", quick=True).name == "camels_us_quick"   # asked for: fine
    rows = {r["name"]: r for r in registry.status()}
    assert rows["camels_us"]["status"] == "incomplete" and "missing" in rows["camels_us"]["note"]


def test_incomplete_without_marker(tmp_path, monkeypatch):
    ds = registry.get("caravan_camels_us")
    (tmp_path / ds.folder / "Caravan-CAMELS").mkdir(parents=True)          # an empty download folder
    monkeypatch.setenv("DPLPAPER_DATA", str(tmp_path))
    with pytest.raises(DataSetIncompleteError, match=r"missing Caravan-CAMELS/01022500.csv.gz"):
        registry.locate("caravan_camels_us")


def test_absent_set_with_dplpaper_data_warns_on_fallback(tmp_path, monkeypatch):
    repo = tmp_path / "repo"                                              # a checkout without ../shared
    repo.mkdir()
    (repo / "data").symlink_to(registry.REPO_ROOT / "data")
    monkeypatch.setattr(registry, "REPO_ROOT", repo)
    (tmp_path / "dd").mkdir()
    monkeypatch.setenv("DPLPAPER_DATA", str(tmp_path / "dd"))             # exists, holds no set
    with pytest.warns(UserWarning, match=r"'camels_us' is not in \$DPLPAPER_DATA=.*using the shipped subset "
                                         r"'camels_us_quick' \(pass quick=False to require the full set\)"):
        assert registry.resolve("camels_us").name == "camels_us_quick"
    with pytest.raises(DataNotFoundError, match=r"data set 'camels_us' .* not found"):
        registry.resolve("camels_us", quick=False)


# ----------------------------------------------------------------------------- fetch (item 6)
def _entry(base, body=b"x" * 100):
    return {"path": "f.txt", "url": base + "/f.txt", "sha256": hashlib.sha256(body).hexdigest()}


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_fetch_offline_one_line_error(tmp_path):
    url = f"http://127.0.0.1:{_free_port()}"                               # nothing listens: refused
    with pytest.raises(DataFetchError, match=rf"data set 'demo': download of {url}/f.txt failed "
                                             r"\(URLError: .*(refused|Errno)") as e:
        registry.fetch_entries([_entry(url)], tmp_path, name="demo", show_progress=False, timeout=(2, 2))
    assert "\n" not in str(e.value)


def test_cli_fetch_offline_exit_2_one_line(tmp_path, monkeypatch, capsys):
    ds = registry.DataSet("offline_test", "offline_test", "t", "f.txt", "none", "none", "https://example.org")
    url = f"http://127.0.0.1:{_free_port()}"
    ds.manifest_entries = lambda: [_entry("https://example.org/repo")]
    registry.register(ds)
    try:
        assert cli.main(["data", "fetch", "offline_test", "--dest", str(tmp_path), "--mirror", url, "-q"]) == 2
    finally:
        registry.DATASETS.pop("offline_test")
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("dplpaper: error: data set 'offline_test': download of") and f"{url}/repo/f.txt" in err


class _Trickle(http.server.BaseHTTPRequestHandler):
    delay = 0.3
    status = 200

    def do_GET(self):  # noqa: N802
        if self.status != 200:
            self.send_error(self.status)
            return
        self.send_response(200)
        self.send_header("Content-Length", "100")
        self.end_headers()
        try:
            for _ in range(100):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(self.delay)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *a):
        pass


@pytest.fixture
def trickle():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Trickle)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", _Trickle
    _Trickle.status = 200
    httpd.shutdown()
    httpd.server_close()


def test_fetch_trickling_server_is_abandoned(tmp_path, trickle):
    base, _ = trickle
    t0 = time.monotonic()
    with pytest.raises(DataFetchError, match=rf"data set 'slow': download of {base}/f.txt failed "
                                             r"\(_Stalled: stalled: \d+ bytes in \d+ s\); a rerun resumes from f.txt.part"):
        registry.fetch_entries([_entry(base)], tmp_path, name="slow", show_progress=False, timeout=(2, 0.5))
    assert time.monotonic() - t0 < 3


def test_fetch_total_deadline(tmp_path, trickle):
    base, _ = trickle
    with pytest.raises(DataFetchError, match=r"total deadline of the fetch passed"):
        registry.fetch_entries([_entry(base)], tmp_path, name="slow", show_progress=False, timeout=(2, 30),
                               deadline_s=0.5)


def test_fetch_http_error_names_set_and_url(tmp_path, trickle):
    base, h = trickle
    h.status = 503
    with pytest.raises(DataFetchError, match=rf"data set 'x': download of {base}/f.txt failed \(HTTPError: HTTP Error 503"):
        registry.fetch_entries([_entry(base)], tmp_path, name="x", show_progress=False)


# ----------------------------------------------------------------------------- CLI (item 9)
@pytest.fixture
def no_data(monkeypatch):
    """Any data loading or case run fails the test: validation must come first."""
    from dplpaper.experiments import streamflow as sf

    def boom(*a, **k):
        raise AssertionError("data were loaded before the arguments were validated")
    for name in ("load_streamflow_data", "run_case2", "run_pub_folds", "scaling_curve"):
        monkeypatch.setattr(sf, name, boom)


@pytest.mark.parametrize("argv,pattern", [
    (["run", "case2", "--methods", "dlp"], r"case2: unknown --methods 'dlp'; valid: dpl, dpl_extra, .*vic_gz, "
                                           r"regionalization, vic_sceua, sceua"),
    (["run", "case2", "--methods", "dpl", "sceau"], r"unknown --methods 'sceau'"),
    (["run", "case3", "--methods", "sceua"], r"case3: unknown --methods 'sceua'; valid: dpl, regionalization"),
    (["run", "case3", "--folds", "4"], r"case3 --mode quick: --folds \[4\] out of range; valid: 0..3"),
    (["run", "case3", "--mode", "full", "--folds", "0", "10"], r"--folds \[10\] out of range; valid: 0..9"),
    (["run", "case3", "--folds", "-1"], r"--folds \[-1\] out of range"),
    (["run", "case2", "--folds", "0"], r"--folds applies to case3 only"),
    (["run", "case2", "--parts", "pub"], r"--parts applies to case3 only"),
    (["run", "case3", "--parts", "scaling", "--methods", "dpl"], r"--parts does not include 'pub'"),
    (["run", "case2", "--seeds", "-3"], r"--seeds must be >= 0"),
    (["run", "case3", "--regionalization-evals", "0"], r"--regionalization-evals must be >= 1"),
    (["run", "case2", "--regionalization-refine-steps", "-1"], r"--regionalization-refine-steps must be >= 0"),
])
def test_run_arguments_validated_before_loading(no_data, argv, pattern, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    import re
    assert re.search(pattern, err), err


def test_run_bad_part_names_the_valid_ones(no_data, capsys):
    # --parts is checked per case (case1: runs, sweep; case3: pub, scaling) before anything loads
    assert cli.main(["run", "case3", "--parts", "pbu"]) == 2
    assert "case3: unknown --parts 'pbu'; valid: pub, scaling" in capsys.readouterr().err
    assert cli.main(["run", "case1", "--parts", "swep"]) == 2
    assert "case1: unknown --parts 'swep'; valid: runs, sweep" in capsys.readouterr().err


def test_reproduce_only_typo_exits_nonzero(monkeypatch, capsys):
    def boom(*a, **k):
        raise AssertionError("notebooks ran")
    monkeypatch.setattr(reproduce, "execute_notebooks", boom)
    monkeypatch.setattr(reproduce, "build_book", boom)
    assert cli.main(["reproduce", "--only", "caes2", "--no-book"]) == 2
    err = capsys.readouterr().err
    assert "--only 'caes2' matches no notebook; notebooks: 01_camels_basin.ipynb" in err
    with pytest.raises(SystemExit) as e:
        reproduce.main(["--only", "case2", "xyz", "--no-book"])
    assert e.value.code == 2 and "--only 'xyz' matches no notebook" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        reproduce.main(["--mode", "full", "--refresh-outputs", "--no-book"])
    assert [p.name for p in reproduce.check_only(["case2"])] == ["20_case2_temporal.ipynb"]


def test_method_lists_match_the_dispatch():
    """cli's valid method names are exactly those streamflow.py dispatches on."""
    import inspect
    import re

    from dplpaper.experiments import streamflow as sf
    case2 = set(re.findall(r'"(\w+)" in methods', inspect.getsource(sf.run_case2))) | set(sf._learned_methods(sf.Case2Config.quick()))
    case3 = set(re.findall(r'"(\w+)" in methods', inspect.getsource(sf.run_pub_folds)))
    assert case2 == set(cli.CASE2_METHODS) and case3 == set(cli.CASE3_METHODS)
    assert set(cli._default_methods(sf.run_case2)) <= case2 and set(cli.CASE2_NEEDS) <= case2


def test_method_not_configured_in_mode(no_data, monkeypatch, capsys):
    from dataclasses import replace

    from dplpaper.experiments import streamflow as sf
    quick = sf.Case2Config.quick
    monkeypatch.setattr(sf.Case2Config, "quick", classmethod(lambda cls, seed=0: replace(quick(seed), lstm=None)))
    assert cli.main(["run", "case2", "--methods", "dpl", "lstm", "-q"]) == 2
    assert "method(s) ['lstm'] not configured in this mode (Case2Config.lstm is empty)" in capsys.readouterr().err
