"""`atdarchive diff` end to end: real ICE releases, every format, scripting options."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import ICE_RELEASES, ice_published

from atdarchive import Archive

BOOKINS = "detention__ice_initial_book_ins_by_arresting_agency_and_month"
FACILITIES = "facilities__ice_enforcement_and_removal_operations_data"


@pytest.fixture(scope="module")
def ice(tmp_path_factory: pytest.TempPathFactory) -> Archive:
    archive = Archive.init(tmp_path_factory.mktemp("ice") / "arc")
    archive.add_dataset("ice", keys={FACILITIES: ["Name", "City", "State"]})
    for path in ICE_RELEASES[4:]:   # 2025-08-29 and 2025-09-11
        archive.commit("ice", path, published=ice_published(path))
    return archive


def test_book_ins_revisions_between_the_last_two_releases(ice: Archive) -> None:
    diff = ice.diff("ice@2025-08-29", "ice@2025-09-11", table=BOOKINS)
    assert diff.key == ["Agency"] and diff.key_source == "inferred"
    total = {r["column"]: (r["old"], r["new"], r["new_cell"])
             for r in diff.cells_changed.to_pylist() if r["Agency"] == "Total"}
    for month, old, new in (("Feb", 21631, 21630), ("Apr", 22819, 22817),
                            ("May", 28882, 28880), ("Jun", 36709, 36700),
                            ("Jul", 31273, 31261)):
        assert total[month][:2] == (str(old), str(new))
    assert total["Feb"][2] == "Detention FY25!N20"   # the cell, in the newer workbook
    assert diff.counts["rows_added"] == diff.counts["rows_removed"] == 0


def test_facilities_added_and_removed_by_name_city_state(ice: Archive) -> None:
    diff = ice.diff("ice@2025-08-29", "ice@2025-09-11", table=FACILITIES)
    assert diff.key == ["Name", "City", "State"] and diff.key_source == "declared"
    old = ice.snapshot("ice@2025-08-29").table(FACILITIES).select(["Name", "City", "State"])
    new = ice.snapshot("ice@2025-09-11").table(FACILITIES).select(["Name", "City", "State"])
    as_keys = lambda t: {tuple(r.values()) for r in t.to_pylist()}  # noqa: E731
    added = {tuple(r[c] for c in ("Name", "City", "State")) for r in diff.rows_added.to_pylist()}
    removed = {tuple(r[c] for c in ("Name", "City", "State"))
               for r in diff.rows_removed.to_pylist()}
    renamed = {tuple(r["new_key"]): tuple(r["old_key"])
               for r in diff.rows_renamed.to_pylist()}
    # ICE spells Binghamton "BINGHAMPTON" in this release: one facility renamed, not a
    # facility closed and another opened
    assert renamed == {("BROOME COUNTY JAIL", "BINGHAMPTON", "NY"):
                       ("BROOME COUNTY JAIL", "BINGHAMTON", "NY")}
    assert added | set(renamed) == as_keys(new) - as_keys(old) and added
    assert removed | set(renamed.values()) == as_keys(old) - as_keys(new) and removed


def test_text_output_groups_changes_by_row(ice: Archive, cli) -> None:
    result = cli("-C", ice.root, "diff", "ice", "--table", BOOKINS)  # latest vs its parent
    assert result.code == 0
    assert "[key Agency (inferred)]" in result.out  # on its own line: the name is long
    total_line = next(line for line in result.out.splitlines() if line.strip().startswith("Total"))
    assert "Feb 21631 → 21630 (−1)" in total_line
    assert max(len(line) for line in result.out.splitlines()) <= 80


def test_formats_and_exit_code(ice: Archive, cli, tmp_path: Path) -> None:
    as_json = json.loads(cli("-C", ice.root, "diff", "ice@latest~1", "ice@latest", "--table",
                             BOOKINS, "--format", "json").out)
    assert as_json["format"] == "atdarchive.diff/1"
    cells = as_json["tables"][BOOKINS]["cells_changed"]
    assert {"key": {"Agency": "Total"}, "column": "Feb", "old_value": 21631,
            "new_value": 21630}.items() <= next(
        c for c in cells if c["key"] == {"Agency": "Total"} and c["column"] == "Feb").items()
    out = tmp_path / "d.parquet"
    assert cli("-C", ice.root, "diff", "ice", "--format", "parquet", "-o", out).code == 0
    long = pq.read_table(out)
    assert set(long.column("change").to_pylist()) >= {"cell_changed", "row_added"}
    html = tmp_path / "d.html"
    assert cli("-C", ice.root, "diff", "ice", "--table", BOOKINS, "--format", "html",
               "-o", html).code == 0
    assert "<html" in html.read_text() and "http" not in html.read_text().split("<body", 1)[0]
    assert cli("-C", ice.root, "diff", "ice", "--exit-code", "--stat").code == 1
    assert cli("-C", ice.root, "diff", "ice@latest", "ice@latest", "--exit-code").code == 0


def test_errors_stay_valid_json_and_one_line(ice: Archive, cli) -> None:
    result = cli("-C", ice.root, "diff", "ice", "--table", BOOKINS, "--key", "Nope",
                 "--format", "json")
    assert result.code != 0
    assert "error" in json.loads(result.out)
    assert len(result.err.strip().splitlines()) == 1 and "Nope" in result.err
    first = cli("-C", ice.root, "diff", "ice@latest~1")
    assert first.code != 0 and "first release" in first.err


def test_declared_key_with_duplicates_degrades_per_row(tmp_path: Path) -> None:
    archive = Archive.init(tmp_path / "arc")
    archive.add_dataset("ice", keys={FACILITIES: ["Name", "City", "State"]})
    for path in ICE_RELEASES[:2]:   # the 2025-07-07 release repeats a facility
        archive.commit("ice", path, published=ice_published(path))
    diff = archive.diff("ice@latest~1", "ice@latest", table=FACILITIES)
    assert diff.key == ["Name", "City", "State"] and diff.key_source == "declared"
    assert [(d["release"], d["key"]["Name"], d["rows"]) for d in diff.duplicate_keys] == [
        ("new", "NASSAU COUNTY CORRECTIONAL CENTER", 2)]
    assert any(n.startswith("duplicate_key") and "NASSAU" in n for n in diff.notes)
    # one facility listed once before and twice now: one matched, one added
    nassau = [r for r in diff.rows_added.to_pylist()
              if r["Name"] == "NASSAU COUNTY CORRECTIONAL CENTER"]
    assert len(nassau) == 1
