"""Derived state is a pure function of the ledger and the snapshots (issue #25, item 4).

The same archive must give the same JSON from every command whether its derived caches
(`.atdarchive/derived/`) were built commit by commit, rebuilt from nothing, or left by
another version. Real data, real CLI processes, real git.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ICE_RELEASES, SHARED_DATA, fixture_env, ice_published, shared_series

from atdarchive import Archive

ATDARCHIVE = Path(sys.executable).parent / "atdarchive"  # the installed entry point
ICE_DIR = SHARED_DATA / "ice-detention-stats-fy25"
NZ_DIR = SHARED_DATA / "nz-covid-cases-by-location-xlsx-2023"
#: Tables whose blame and vintages are compared (the facilities table changes key choice
#: with the releases present; the segregation one is small).
ICE_TABLES = ("facilities__ice_enforcement_and_removal_operations_data",)


def _cli(root: Path, *args: str) -> tuple[int, str, str]:
    proc = subprocess.run([str(ATDARCHIVE), "-C", str(root), *args],
                          capture_output=True, text=True, env=os.environ.copy())
    return proc.returncode, proc.stdout, proc.stderr


def _answers(root: Path, dataset: str, tables: tuple[str, ...], old_ref: str | None
             ) -> dict[str, tuple[int, str]]:
    """Every command's JSON about the archive (exit code and stdout)."""
    # log first (its flags are shown only when an audit is current: none yet, in both),
    # then the audit, then log again (now the audit's flags, in both)
    cmds = [("log", "--json", dataset), ("audit", dataset, "--json"),
            ("log", dataset, "--json")]
    if old_ref:
        cmds.append(("diff", old_ref, f"{dataset}@latest", "--format", "json"))
    for table in tables:
        cmds += [("blame", f"{dataset}@latest", "--table", table, "--json"),
                 ("vintages", dataset, "--table", table, "--format", "json"),
                 ("revisions", dataset, "--table", table, "--json")]
    out = {}
    for cmd in cmds:
        code, stdout, stderr = _cli(root, *cmd)
        assert code == 0, f"{' '.join(cmd)}: {stderr}"
        out[" ".join(cmd)] = (code, stdout)
    return out


def _from_nothing(src: Path, dest: Path) -> Path:
    """A copy of the archive with its derived state deleted."""
    shutil.copytree(src, dest, symlinks=True)
    shutil.rmtree(dest / ".atdarchive" / "derived")
    return dest


def _assert_same(built: dict[str, tuple[int, str]], rebuilt: dict[str, tuple[int, str]]
                 ) -> None:
    assert built.keys() == rebuilt.keys()
    for cmd in built:
        assert built[cmd] == rebuilt[cmd], f"{cmd}: incremental and rebuilt answers differ"


def _ice(name: str) -> Path:
    return next(ICE_DIR.glob(f"{name}_*.xlsx")) if ICE_DIR.exists() else next(
        p for p in ICE_RELEASES if p.name.startswith(name))


@pytest.fixture(scope="module")
def backfilled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three ICE releases committed one by one, v02 last (a backfill: v03's parent changes
    after v03's flags, pair analyses and blame states were made, and v02 is the one release
    where (Name, Address) repeats, so the facilities table's inferred key changes)."""
    root = tmp_path_factory.mktemp("backfill")
    with fixture_env(root):
        archive = Archive.init(root / "arc")
        archive.add_dataset("ice")
        for name in ("v01", "v03", "v02"):
            path = _ice(name)
            archive.commit("ice", path, published=ice_published(path))
    return archive.root


def test_six_releases_incremental_equals_rebuilt(_six_releases: Path, tmp_path: Path) -> None:
    """As `commit` built it (the session's archive, never audited) vs from nothing."""
    built = _from_nothing(_six_releases, tmp_path / "copy-rebuilt")
    warm = tmp_path / "copy-built"
    shutil.copytree(_six_releases, warm, symlinks=True)
    ds = "ice-detention-stats"
    _assert_same(_answers(warm, ds, ICE_TABLES, f"{ds}@2025-07-05"),
                 _answers(built, ds, ICE_TABLES, f"{ds}@2025-07-05"))


def test_backfill_incremental_equals_rebuilt(backfilled: Path, tmp_path: Path) -> None:
    warm = tmp_path / "built"
    shutil.copytree(backfilled, warm, symlinks=True)
    cold = _from_nothing(backfilled, tmp_path / "rebuilt")
    built = _answers(warm, "ice", ICE_TABLES, "ice@2025-07-05")
    _assert_same(built, _answers(cold, "ice", ICE_TABLES, "ice@2025-07-05"))
    # log shows what audit says, release by release (not a commit-time look)
    log = json.loads(built["log ice --json"][1])
    report = json.loads(built["audit ice --json"][1])
    flags = {r["id"]: sorted(r["flags"]) for r in report["releases"]}
    assert {row["id"]: sorted((row["audit"] or {}).get("kinds", {})) for row in log} == flags


def _tamper(path: Path) -> None:
    """Make a cached file look written by another version of atdarchive."""
    data = json.loads(path.read_text())
    if "format" in data:
        data["format"] = -1
    if "version" in data:
        data["version"] = -1
    path.write_text(json.dumps(data))


def test_cache_of_another_version_is_rebuilt(backfilled: Path, tmp_path: Path) -> None:
    arc = tmp_path / "arc"
    shutil.copytree(backfilled, arc, symlinks=True)
    args = ("ice", ICE_TABLES, None)
    truth = _answers(arc, *args)
    derived = arc / ".atdarchive" / "derived"
    flags = sorted((derived / "audit" / "flags").glob("*.json"))
    pairs = sorted((derived / "audit" / "pairs").glob("*.json"))
    manifests = sorted((derived / "blame").rglob("manifest.json"))
    vintages = sorted((derived / "vintages").glob("*.parquet"))
    assert flags and pairs and manifests and vintages
    for path in [*flags, *pairs, *manifests]:
        _tamper(path)
    # a stamped flags file that claims the wrong flags: stamped for another ledger
    poisoned = json.loads(flags[0].read_text())
    poisoned.update(format=2, stamp="0" * 64, flags={"kinds": {"recycled_release": 99},
                                                     "severity": "alert"})
    flags[0].write_text(json.dumps(poisoned))
    # stale or forged flags are never shown: log without an audit shows none of them
    code, out, _ = _cli(arc, "log", "--json", "ice")
    assert code == 0 and all(row["audit"] is None for row in json.loads(out))
    for path in vintages:  # a vintages file with the right name but not this code's stamp
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        pq.write_table(table.replace_schema_metadata(None).slice(0, 1), path)
    assert _answers(arc, *args) == truth


def test_nz_series_incremental_equals_rebuilt(tmp_path: Path) -> None:
    """NZ releases v01, v03, v05 then v02: a backfill committed after its byte-identical
    twin v05 (a re-publication of v02's workbook), so v05's parent and twin change."""
    files = {f.name[:3]: f for f in shared_series(NZ_DIR.name).glob("v*.xlsx")}
    order = [files[v] for v in ("v01", "v03", "v05", "v02")]
    with fixture_env(tmp_path):
        archive = Archive.init(tmp_path / "arc")
        archive.add_dataset("nz", timezone="UTC")
        for path in order:
            stamp = path.name.split("_")[1]  # 2023-02-05T2008, UTC (README of the data)
            archive.commit("nz", path,
                           published=f"{stamp[:13]}:{stamp[13:]}", zone="UTC")
    root = archive.root
    tables = tuple(sorted(json.loads(_cli(root, "tables", "nz@latest", "--json")[1])["tables"]))
    cold = _from_nothing(root, tmp_path / "rebuilt")
    _assert_same(_answers(root, "nz", tables[:1], "nz@2023-02-06"),
                 _answers(cold, "nz", tables[:1], "nz@2023-02-06"))

