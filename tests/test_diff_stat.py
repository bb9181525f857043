"""`diff --stat`: rows inserted/deleted from fingerprints alone, equal to what the engine
counts (a revised row once each way), across schema changes, without the engine."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from conftest import ICE_RELEASES, FakeSnapshot, ice_published

import atdarchive.diff.snapshots
from atdarchive import Archive
from atdarchive.diff import DiffOptions, TableStat, diff_snapshots, stat_snapshots
from atdarchive.fingerprint import (
    Fingerprints,
    compute_fingerprints,
    count_not_in,
    rows_not_in,
    rows_not_in_each,
)

FACILITIES = "facilities__ice_enforcement_and_removal_operations_data"


def engine_stat(a, b, cache, **kw) -> dict[str, TableStat]:
    return {n: TableStat.of_diff(td)
            for n, td in diff_snapshots(a, b, cache_dir=cache, **kw).tables.items()}


def pair(tmp_path: Path, old: dict[str, pa.Table], new: dict[str, pa.Table]):
    a, b = FakeSnapshot(tmp_path, "a", old), FakeSnapshot(tmp_path, "b", new)
    cache = tmp_path / "fp"
    for s in (a, b):
        for n in s.table_names:
            compute_fingerprints(s.table_path(n), cache)
    return a, b, cache


MONTHS = {"Agency": ["Total", "CBP", "ICE", "Other"], "Jul": [10, 20, 30, 40],
          "Aug": [11, 21, 31, 41]}


@pytest.mark.parametrize("change", [
    "values", "int_to_float_same", "int_to_float_revised", "rolling_window", "rename",
    "column_added", "column_removed", "reorder", "rows", "keyless_duplicates", "text_to_int",
])
def test_stat_matches_the_engine(tmp_path: Path, change: str,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    old = pa.table(MONTHS)
    new = {
        "values": pa.table({**MONTHS, "Aug": [11, 22, 31, 41]}),
        "int_to_float_same": pa.table({**MONTHS, "Aug": [11.0, 21.0, 31.0, 41.0]}),
        "int_to_float_revised": pa.table({**MONTHS, "Aug": [11.0, 21.5, 31.0, None]}),
        "rolling_window": pa.table({"Agency": MONTHS["Agency"], "Aug": [11, 21, 31, 42],
                                    "Sep": [12, 22, 32, 42]}),
        "rename": pa.table({"Agency": MONTHS["Agency"], "July": MONTHS["Jul"],
                            "Aug": [11, 21, 31, 43]}),
        "column_added": pa.table({**MONTHS, "Sep": [1, 2, 3, 4]}),
        "column_removed": pa.table({"Agency": MONTHS["Agency"], "Aug": [11, 21, 0, 41]}),
        "reorder": pa.table({"Aug": MONTHS["Aug"], "Agency": MONTHS["Agency"],
                             "Jul": MONTHS["Jul"]}),
        "rows": pa.table({"Agency": ["Total", "CBP", "USBP"], "Jul": [10, 20, 5],
                          "Aug": [11, 21, 6]}),
        "keyless_duplicates": pa.table({"Agency": ["x", "x", "x", "y"], "Jul": [1, 1, 1, 2],
                                        "Aug": [1.5, 1.5, 1.5, 2.5]}),
        "text_to_int": pa.table({**MONTHS, "Agency": ["1", "2", "3", "4"]}),
    }[change]
    if change == "keyless_duplicates":
        old = pa.table({"Agency": ["x", "x", "y", "y"], "Jul": [1, 1, 2, 2],
                        "Aug": [1.5, 1.5, 2.5, 2.5]})
    a, b, cache = pair(tmp_path, {"t": old, "gone": old}, {"t": new, "fresh": new})
    if change not in ("rename", "text_to_int"):  # the others need no engine
        def engine(*args, **kwargs):
            raise AssertionError("stat used the engine")
        monkeypatch.setattr(atdarchive.diff.snapshots, "diff_snapshot_table", engine)
    stat = stat_snapshots(a, b, cache_dir=cache)
    monkeypatch.undo()
    assert stat.tables == engine_stat(a, b, cache)
    assert stat.tables["gone"] == TableStat("gone", "removed", 0, old.num_rows)
    assert stat.tables["fresh"] == TableStat("fresh", "added", new.num_rows, 0)


def test_stat_without_fingerprints_or_with_tolerances_uses_the_engine(tmp_path: Path) -> None:
    old = pa.table({"k": ["a", "b"], "v": [1.0, 2.0]})
    new = pa.table({"k": ["a", "b"], "v": [1.0, 2.001]})
    a, b, cache = pair(tmp_path, {"t": old}, {"t": new})
    assert stat_snapshots(a, b).tables["t"] == TableStat("t", "changed", 1, 1)  # no cache
    loose = stat_snapshots(a, b, cache_dir=cache, options=DiffOptions(abs_tol=0.01))
    assert loose.tables["t"] == TableStat("t", "unchanged") and loose.is_empty()


@pytest.fixture(scope="module")
def ice(tmp_path_factory: pytest.TempPathFactory) -> Archive:
    archive = Archive.init(tmp_path_factory.mktemp("ice") / "arc")
    archive.add_dataset("ice", keys={FACILITIES: ["Name", "City", "State"]})
    for path in ICE_RELEASES[2:]:
        archive.commit("ice", path, published=ice_published(path))
    return archive


def test_stat_of_ice_releases_matches_the_engine(ice: Archive,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    entries = ice.history("ice").channel("public")
    snaps = [ice.snapshot(f"ice@{e.short}") for e in entries]
    cache = ice.layout.fingerprints
    for a, b in [*zip(snaps, snaps[1:], strict=False), (snaps[0], snaps[-1])]:
        with monkeypatch.context() as m:  # every table from its fingerprints
            m.setattr(atdarchive.diff.snapshots, "diff_snapshot_table", None)
            stat = stat_snapshots(a, b, cache_dir=cache)
        assert stat.tables == engine_stat(a, b, cache)
        assert not stat.is_empty()


def test_stat_cli_reads_no_table_and_imports_no_engine(ice: Archive, cli) -> None:
    text = cli("-C", ice.root, "diff", "--stat", "ice")
    assert text.code == 0 and "unchanged;" in text.out.splitlines()[-1]
    assert max(len(line) for line in text.out.splitlines()) <= 80
    doc = json.loads(cli("-C", ice.root, "diff", "ice", "--stat", "--format", "json").out)
    assert doc["format"] == "atdarchive.diff-stat/1" and doc["counts"]["tables_changed"] > 0
    probe = ("import sys\nfrom atdarchive.cli import main\n"
             "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
             "print(sorted(m for m in sys.modules if m in ('pyarrow.compute', "
             "'pyarrow.parquet', 'atdarchive.diff.tables', 'duckdb')))")
    out = subprocess.run([sys.executable, "-c", probe, "-C", str(ice.root), "diff", "--stat",
                          "ice"], capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[-1] == "[]"


def test_one_search_answers_both_directions_and_counts_multisets() -> None:
    rng = np.random.default_rng(7)

    def fps(values: np.ndarray) -> Fingerprints:
        order = np.argsort(values, kind="stable")
        return Fingerprints(values[order], order.astype(np.uint32), "v", [])

    for _ in range(400):
        a, b = (fps(rng.integers(0, 12, rng.integers(0, 30)).astype(np.uint64)) for _ in "ab")
        for dup in (False, True):
            both = rows_not_in_each(a, b, include_duplicates=dup)
            assert np.array_equal(both[0], rows_not_in(a, b, include_duplicates=dup))
            assert np.array_equal(both[1], rows_not_in(b, a, include_duplicates=dup))
        left = list(a.fp)
        for v in b.fp:
            if v in left:
                left.remove(v)
        assert count_not_in(a.fp, b.fp) == len(left)
