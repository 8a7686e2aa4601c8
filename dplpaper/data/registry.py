"""Data registry: the one place that says where each data set lives and where it comes from.

Search order for a data set folder ``<folder>`` (first hit wins):

1. ``$DPLPAPER_DATA/<folder>`` (env var ``DPLPAPER_DATA``, a directory holding data-set folders);
2. ``<repo>/data/<folder>`` (what ships with the repository: the ``*_quick`` subsets);
3. ``<repo>/../shared/data/<folder>`` when that directory exists (the full real data of the
   project workspace). This module is the only one that knows about that location.

Each data set has: a citation, a licence, the original public source URL, a key file
whose presence marks the folder as complete, sha256 checksums of key files, and (for the
full sets) a fetch manifest ``manifests/<name>.json`` listing every file with its public
download URL and sha256. ``fetch()`` downloads these with HTTP Range resume, verifies each
sha256 and shows a tqdm progress bar.

No silent fallbacks: a ``$DPLPAPER_DATA`` that is not a directory raises
:class:`DataNotFoundError`; a data set folder that exists in a search root but lacks its
marker or a file of its fetch manifest raises :class:`DataSetIncompleteError` naming the
missing files (instead of falling through to the next root or the shipped subset). ``fetch``
has connect and read timeouts, a stall limit, a total deadline, and raises
:class:`DataFetchError` (one line naming the data set and URL) on any network failure.
"""
from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import os
import http.client
import shutil
import socket
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Iterable

from .errors import DataFetchError, DataFormatError, DataNotFoundError, DataSetIncompleteError

REPO_ROOT = Path(__file__).resolve().parents[2]
MANIFEST_DIR = Path(__file__).resolve().parent / "manifests"
ENV_DATA = "DPLPAPER_DATA"


@dataclasses.dataclass
class DataSet:
    """One registered data set.

    name: registry key; folder: directory name looked for in each search root;
    marker: a file (relative to the folder) that must exist for the folder to count as found;
    checksums: {relative path: sha256} of key files (checked by ``verify``);
    manifest: name of a JSON fetch manifest in ``dplpaper/data/manifests`` (or None).
    """

    name: str
    folder: str
    description: str
    marker: str
    citation: str
    licence: str
    url: str
    checksums: dict = dataclasses.field(default_factory=dict)
    manifest: str | None = None
    shipped: bool = False

    def manifest_entries(self) -> list[dict]:
        if self.manifest is None:
            return []
        return json.loads((MANIFEST_DIR / self.manifest).read_text())["files"]

    def required_files(self) -> list[str]:
        """Relative paths a complete copy holds: the marker and every file of the fetch manifest."""
        if self.manifest is not None and self.manifest not in _REQUIRED_CACHE:
            paths = []
            for e in self.manifest_entries():
                paths += list(e["extract"].values()) if "extract" in e else [e["path"]]
            _REQUIRED_CACHE[self.manifest] = paths
        extra = _REQUIRED_CACHE.get(self.manifest, []) if self.manifest else []
        return [self.marker] + [p for p in extra if p != self.marker]


_REQUIRED_CACHE: dict[str, list[str]] = {}


_CAMELS_CITE = (
    "Newman et al. (2015) HESS 19, 209-223, doi:10.5194/hess-19-209-2015 (data doi:10.5065/D6MW2F4D); "
    "Addor et al. (2017) HESS 21, 5293-5313, doi:10.5194/hess-21-5293-2017 (attributes doi:10.5065/D6G73C3Q)"
)
_CARAVAN_CITE = (
    "Kratzert et al. (2023) Caravan, Sci. Data 10, 61, doi:10.1038/s41597-023-01975-w; "
    "Munoz Sabater (2019) ERA5-Land; " + _CAMELS_CITE
)
_SMAP_CITE = (
    "Fang, Shen, Kifer, Yang (2017) GRL 44, 11030-11039, doi:10.1002/2017GL075619; "
    "O'Neill et al. SMAP L3 radiometer soil moisture (NSIDC); Xia et al. (2012) NLDAS-2, doi:10.1029/2011JD016048"
)

DATASETS: dict[str, DataSet] = {}


def register(ds: DataSet) -> DataSet:
    """Add (or replace) a data set in the registry; returns it."""
    DATASETS[ds.name] = ds
    return ds


register(DataSet(
    name="camels_us", folder="camels_us",
    description="CAMELS-US attributes v2.0 (671), 531 list, MHPI PUB folds, Daymet forcing + USGS Q for 57 basins",
    marker="camels_attributes_v2.0/camels_topo.txt",
    citation=_CAMELS_CITE, licence="CAMELS data, NCAR/UCAR (CC-BY-4.0 per Caravan's CAMELS licence file)",
    url="https://gdex.ucar.edu/dataset/camels.html",
    checksums={"camels_attributes_v2.0/camels_topo.txt":
               "b64ca9923bcaccf21dde33137903797919e8d6732edd7849f8534e0ddcbec8e8"},
    manifest="camels_us.json"))
register(DataSet(
    name="caravan_camels_us", folder="caravan_camels_us",
    description="Caravan CAMELS-US part: daily ERA5-Land P, T, PET and observed Q (mm/d), 482 basins, 1981-2014",
    marker="Caravan-CAMELS/01022500.csv.gz",
    citation=_CARAVAN_CITE, licence="CC-BY-4.0 (Caravan); hosting repository CC BY-NC-SA 4.0",
    url="https://doi.org/10.5281/zenodo.7540792",
    manifest="caravan_camels_us.json"))
register(DataSet(
    name="hydrodl_smap_conusv4f1", folder="hydrodl_smap_conusv4f1",
    description="412 SMAP L3 36-km cells (CONUSv4f1): SMAP AM 2015-04..2017-03, NLDAS-2 forcing 2015-04..2018-03, statics",
    marker="CONUSv4f1/crd.csv",
    citation=_SMAP_CITE, licence="hydroDL example data (PSU non-commercial licence); NASA SMAP / NLDAS-2 open data",
    url="https://github.com/mhpi/hydroDL/tree/master/example/data",
    manifest="hydrodl_smap_conusv4f1.json"))
register(DataSet(
    name="leaf_river_02472000", folder="leaf_river_02472000",
    description="Leaf River near Collins MS (02472000): CAMELS Daymet forcing + USGS NWIS daily Q 1991-2021",
    marker="usgs_nwis_daily/leaf_river_near_collins_data.csv",
    citation=_CAMELS_CITE + "; USGS NWIS daily values (public domain)",
    licence="CAMELS (CC-BY-4.0); USGS public domain",
    url="https://waterdata.usgs.gov/nwis/dv?site_no=02472000",
    manifest="leaf_river_02472000.json"))
register(DataSet(
    name="neuralhydrology_testdata", folder="neuralhydrology_testdata",
    description="CAMELS samples (4 basins, 2000-2002) in Daymet, Maurer, Maurer-extended and NLDAS formats",
    marker="camels_us/basin_mean_forcing/nldas/01022500_lump_nldas_forcing_leap.txt",
    citation=_CAMELS_CITE + "; Kratzert et al. (2022) NeuralHydrology, JOSS 7(71), 4050",
    licence="BSD-3-Clause repository; CAMELS data",
    url="https://github.com/neuralhydrology/neuralhydrology/tree/master/test/test_data",
    manifest="neuralhydrology_testdata.json"))
register(DataSet(
    name="spotpy_examples", folder="spotpy_examples",
    description="spotpy 1.6.7 example data: Leaf River 1952-62 HYMOD record, Fulda climate, Schwingbach site 24",
    marker="hymod_exe/bound.txt",
    citation="Houska et al. (2015) SPOTPY, PLoS ONE 10(12), e0145180; Vrugt (2016) DREAM, EMS 75, 273-316",
    licence="MIT (spotpy)",
    url="https://pypi.org/project/spotpy/1.6.7/",
    manifest="spotpy_examples.json"))
# --- subsets shipped with the repository (data/), used by quick mode ---
register(DataSet(
    name="camels_us_quick", folder="camels_us_quick",
    description="shipped: CAMELS attributes (671), 531 list, PUB folds (ids), Daymet + USGS Q for 3 basins",
    marker="camels_attributes_v2.0/camels_topo.txt",
    citation=_CAMELS_CITE, licence="CAMELS data (CC-BY-4.0); see data/SOURCE.md",
    url="https://gdex.ucar.edu/dataset/camels.html", shipped=True))
register(DataSet(
    name="caravan_camels_us_quick", folder="caravan_camels_us_quick",
    description="shipped: Caravan CAMELS-US subset (basins of the 531 list, spread over HUC regions)",
    marker="Caravan-CAMELS/01022500.csv.gz",
    citation=_CARAVAN_CITE, licence="CC-BY-4.0 (Caravan); see data/SOURCE.md",
    url="https://doi.org/10.5281/zenodo.7540792", shipped=True))
register(DataSet(
    name="smap_conusv4f1_quick", folder="smap_conusv4f1_quick",
    description="shipped: all 412 SMAP cells as compact NetCDF + raw-format sample of 6 cells",
    marker="smap_conusv4f1.nc",
    citation=_SMAP_CITE, licence="NASA SMAP / NLDAS-2 open data via hydroDL example; see data/SOURCE.md",
    url="https://github.com/mhpi/hydroDL/tree/master/example/data", shipped=True))

# full set -> shipped subset used when the full one is absent (or quick mode is asked for)
QUICK_OF = {"camels_us": "camels_us_quick", "caravan_camels_us": "caravan_camels_us_quick",
            "hydrodl_smap_conusv4f1": "smap_conusv4f1_quick"}


def search_roots() -> list[tuple[str, Path]]:
    """The data roots in search order, as (label, path); roots that do not exist are left out,
    except ``$DPLPAPER_DATA``: set but not a directory (a typo?) raises DataNotFoundError."""
    roots = []
    env = os.environ.get(ENV_DATA)
    if env:
        p = Path(env).expanduser()
        if not p.is_dir():
            raise DataNotFoundError(f"${ENV_DATA}={env!r} is not a directory (misspelt?); set it to the folder "
                                    "that holds the data set folders, or unset it")
        roots.append((f"${ENV_DATA}", p))
    roots.append(("repo data/", REPO_ROOT / "data"))
    shared = REPO_ROOT.parent / "shared" / "data"
    if shared.is_dir():
        roots.append(("../shared/data", shared))
    return [(lab, p) for lab, p in roots if p.is_dir()]


def get(name: str) -> DataSet:
    try:
        return DATASETS[name]
    except KeyError:
        raise DataNotFoundError(f"unknown data set {name!r}; registered: {sorted(DATASETS)}") from None


def missing_files(name: str, folder: Path) -> list[str]:
    """Required files of data set ``name`` (:meth:`DataSet.required_files`) absent from ``folder``."""
    folder = Path(folder)
    return [rel for rel in get(name).required_files() if not (folder / rel).is_file()]


def find(name: str) -> Path | None:
    """Folder of data set ``name`` in the first search root that holds its folder, or None.

    A folder that exists but is incomplete (marker or manifest files missing) raises
    :class:`DataSetIncompleteError` naming what is missing: no fallback to a later root."""
    ds = get(name)
    for label, root in search_roots():
        cand = root / ds.folder
        if not cand.is_dir():
            continue
        missing = missing_files(name, cand)
        if not missing:
            return cand
        shown = ", ".join(missing[:5]) + (f", ... ({len(missing)} in all)" if len(missing) > 5 else "")
        hint = f"complete it with `dplpaper data fetch {name}`" + (f" --dest {root}" if label != f"${ENV_DATA}" else "")
        raise DataSetIncompleteError(f"data set {name!r} at {cand} ({label}) is incomplete: missing {shown}; "
                                     f"{hint} (resumes), or move the folder away")
    return None


def locate(name: str) -> Path:
    """Like :func:`find` but raises :class:`DataNotFoundError` with a hint when missing."""
    p = find(name)
    if p is None:
        ds = get(name)
        where = ", ".join(str(r) for _, r in search_roots()) or "(no data roots exist)"
        raise DataNotFoundError(
            f"data set {name!r} (folder {ds.folder!r}, marker {ds.marker!r}) not found in {where}. "
            f"Set ${ENV_DATA} or run `dplpaper data fetch {name}`.")
    return p


def resolve(name: str, quick: bool | None = None) -> Path:
    """Folder to read data set ``name`` from.

    quick=True: always the shipped subset (reproducible quick mode); quick=False: the full set
    (error if missing); quick=None: the full set when found, else the shipped subset.
    """
    if name in QUICK_OF:
        q = QUICK_OF[name]
        if quick:
            return locate(q)
        full = find(name)
        if full is not None:
            return full
        if quick is False:
            return locate(name)
        if os.environ.get(ENV_DATA):
            import warnings
            warnings.warn(f"data set {name!r} is not in ${ENV_DATA}={os.environ[ENV_DATA]!r} nor in any other data "
                          f"root: using the shipped subset {q!r} (pass quick=False to require the full set)",
                          UserWarning, stacklevel=2)
        return locate(q)
    return locate(name)


def quick_data_dir() -> Path:
    """The repository's ``data/`` directory (shipped quick-mode data)."""
    return REPO_ROOT / "data"


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def verify(name: str) -> dict[str, bool]:
    """Check the registered key-file checksums of a found data set: {relpath: ok}."""
    ds, root = get(name), locate(name)
    return {rel: (root / rel).is_file() and sha256_file(root / rel) == sha for rel, sha in ds.checksums.items()}


def status() -> list[dict]:
    """One row per registered data set: name, status ('found'/'missing'), where, description."""
    rows = []
    for name, ds in DATASETS.items():
        try:
            p, state, note = find(name), None, ""
        except DataSetIncompleteError as e:
            p, state, note = None, "incomplete", str(e)
        label = ""
        if p is not None:
            for lab, root in search_roots():
                if p.parent == root:
                    label = lab
                    break
        rows.append({"name": name, "status": state or ("found" if p else "missing"), "where": str(p) if p else "",
                     "root": label, "shipped": ds.shipped, "description": ds.description, "note": note})
    return rows


# ----------------------------------------------------------------------------------- fetch
#: default seconds: connect (and wait for the response headers), read (one socket read)
CONNECT_TIMEOUT, READ_TIMEOUT = 30.0, 60.0
#: a download that receives fewer than this many bytes in READ_TIMEOUT seconds is abandoned
MIN_BYTES_PER_WINDOW = 1024
#: default total deadline of one ``fetch`` (seconds)
FETCH_DEADLINE = 6 * 3600.0


class _Stalled(Exception):
    pass


def _download(url: str, part: Path, timeout=(CONNECT_TIMEOUT, READ_TIMEOUT), progress=None,
              deadline: float | None = None) -> None:
    """Download ``url`` into ``part``, resuming from its current size with an HTTP Range request.

    ``timeout``: seconds, or (connect, read); ``deadline``: a ``time.monotonic()`` value after
    which the download is abandoned. Fewer than MIN_BYTES_PER_WINDOW bytes in a read-timeout
    window also abandons it (a server trickling bytes). Raises on any failure (see
    :func:`fetch_entries`, which names the data set and URL)."""
    connect_t, read_t = (float(timeout), float(timeout)) if isinstance(timeout, (int, float)) else map(float, timeout)
    have = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url)
    if have:
        req.add_header("Range", f"bytes={have}-")
    t_conn = connect_t if deadline is None else max(0.001, min(connect_t, deadline - time.monotonic()))
    try:
        resp = urllib.request.urlopen(req, timeout=t_conn)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # already complete
            return
        raise
    sock = getattr(getattr(resp.fp, "raw", None), "_sock", None)
    if sock is not None:
        sock.settimeout(read_t)
    with resp:
        mode = "ab"
        if have and resp.status != 206:  # server ignored Range: start over
            mode, have = "wb", 0
        if progress is not None:
            total = resp.headers.get("Content-Length")
            progress.reset(total=(int(total) + have) if total else None)
            progress.update(have)
        with open(part, mode) as f:
            win_start, win_bytes = time.monotonic(), 0
            while True:
                block = resp.read1(1 << 16)  # returns what one socket read gives (no wait for 64 KiB)
                if not block:
                    break
                f.write(block)
                if progress is not None:
                    progress.update(len(block))
                now = time.monotonic()
                if deadline is not None and now > deadline:
                    raise _Stalled("total deadline of the fetch passed")
                win_bytes += len(block)
                if now - win_start >= read_t:
                    if win_bytes < MIN_BYTES_PER_WINDOW:
                        raise _Stalled(f"stalled: {win_bytes} bytes in {now - win_start:.0f} s")
                    win_start, win_bytes = now, 0


_NETWORK_ERRORS = (urllib.error.URLError, http.client.HTTPException, socket.timeout, socket.gaierror, TimeoutError,
                   ConnectionError, _Stalled)


def fetch_entries(entries: Iterable[dict], dest: Path, mirror: str | None = None,
                  show_progress: bool = True, name: str | None = None, timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
                  deadline_s: float | None = FETCH_DEADLINE) -> list[Path]:
    """Download manifest entries into ``dest``.

    Each entry: ``{"path": relpath, "url": str, "sha256": hex, "gzip": bool (optional),
    "extract": {member: relpath} (optional, for zip archives)}``. ``mirror`` replaces
    ``scheme://host`` of each URL (used for tests and local mirrors). A partial download
    ``<path>.part`` is resumed with HTTP Range; files already present with the right content
    are skipped. Raises :class:`DataFormatError` on a checksum mismatch (the bad file is kept
    as ``.part.bad`` for inspection). ``timeout``: seconds, or (connect, read); ``deadline_s``:
    total seconds for all entries. Any network failure (refused, offline, DNS, HTTP error,
    timeout, stalled transfer, deadline) raises :class:`DataFetchError` with a one-line message
    naming the data set (``name``) and the URL; the partial ``.part`` file is kept for resuming.
    """
    from dplpaper.progress import tqdm

    dest = Path(dest)
    out = []
    deadline = None if deadline_s is None else time.monotonic() + float(deadline_s)
    label = f"data set {name!r}" if name else "fetch"
    for e in entries:
        url = e["url"]
        if mirror:
            rest = url.split("://", 1)[1]
            url = mirror.rstrip("/") + "/" + rest.split("/", 1)[1]
        target = dest / e["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        if "extract" in e:
            done = all((dest / rel).is_file() for rel in e["extract"].values())
        else:
            done = target.is_file() and (e.get("gzip") or sha256_file(target) == e["sha256"])
        if done:
            out.append(target)
            continue
        part = target.with_name(target.name + ".part")
        bar = tqdm(desc=e["path"], unit="B", unit_scale=True, disable=not show_progress, leave=False)
        try:
            _download(url, part, timeout=timeout, progress=bar, deadline=deadline)
        except _NETWORK_ERRORS as err:
            if isinstance(err, urllib.error.URLError) and not isinstance(err, urllib.error.HTTPError):
                why = f"{type(err).__name__}: {err.reason}"
            else:
                why = f"{type(err).__name__}: {err}"
            resume = f"; a rerun resumes from {part.name}" if part.exists() and part.stat().st_size else ""
            raise DataFetchError(f"{label}: download of {url} failed ({why})".replace("\n", " ") + resume) from None
        finally:
            bar.close()
        got = sha256_file(part)
        if got != e["sha256"]:
            bad = part.with_name(part.name + ".bad")
            part.replace(bad)
            raise DataFormatError(f"sha256 mismatch: expected {e['sha256']}, got {got} (kept as {bad.name})",
                                  file=url, field="sha256")
        if "extract" in e:
            with zipfile.ZipFile(part) as z:
                for member, rel in e["extract"].items():
                    (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                    with z.open(member) as src, open(dest / rel, "wb") as dst:
                        shutil.copyfileobj(src, dst)
            part.unlink()
        elif e.get("gzip"):
            with open(part, "rb") as src, gzip.GzipFile(target, "wb", compresslevel=9, mtime=0) as dst:
                shutil.copyfileobj(src, dst)
            part.unlink()
        else:
            part.replace(target)
        out.append(target)
    return out


def fetch(name: str, dest: str | Path | None = None, mirror: str | None = None,
          show_progress: bool = True, timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
          deadline_s: float | None = FETCH_DEADLINE) -> Path:
    """Download data set ``name`` from its original public source into ``dest/<folder>``.

    dest defaults to ``$DPLPAPER_DATA`` or the repository's ``data/``. Returns the folder.
    ``timeout`` (connect, read seconds) and ``deadline_s`` (total): see :func:`fetch_entries`;
    network failures raise :class:`DataFetchError` naming the set and URL.
    """
    ds = get(name)
    if ds.shipped:
        return locate(name)
    entries = ds.manifest_entries()
    if not entries:
        raise DataNotFoundError(f"data set {name!r} has no fetch manifest")
    base = Path(dest) if dest is not None else Path(os.environ.get(ENV_DATA) or quick_data_dir())
    folder = base / ds.folder
    fetch_entries(entries, folder, mirror=mirror, show_progress=show_progress, name=name, timeout=timeout,
                  deadline_s=deadline_s)
    return folder


def write_manifest(name: str, root: Path, provenance: Path | None = None) -> Path:
    """Maintainer tool: write ``manifests/<name>.json`` from a local copy ``root`` of the set.

    ``provenance`` (default ``root/provenance.csv``) gives, per file, the public repository,
    commit and path; the URL is the raw GitHub URL at that commit; sha256 is of the bytes
    served there (for ``.gz`` files the collector gzipped, of the decompressed bytes).
    """
    import csv

    root = Path(root)
    provenance = Path(provenance) if provenance else root / "provenance.csv"
    files = []
    with open(provenance, newline="") as f:
        for row in csv.DictReader(f):
            local = root / row["file"]
            gz = local.suffix == ".gz" and not row["source_path"].endswith(".gz")
            data = gzip.decompress(local.read_bytes()) if gz else local.read_bytes()
            files.append({"path": row["file"],
                          "url": f"https://raw.githubusercontent.com/{row['source_repo']}/"
                                 f"{row['source_commit']}/{row['source_path']}",
                          "sha256": hashlib.sha256(data).hexdigest(), "size": len(data),
                          **({"gzip": True} if gz else {})})
    out = MANIFEST_DIR / f"{name}.json"
    out.write_text(json.dumps({"name": name, "files": files}, indent=0))
    return out
