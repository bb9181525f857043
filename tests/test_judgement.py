"""Forensic judgement on real ICE releases: errors planted into the real 2025-09-11 workbook
by editing its cell XML (`xlsx_plant`), with the five earlier FY25 releases as history;
each must be reported for its release, as a warning or alert, among the five most
significant findings. And the clean releases: no revision on as-of tables."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from conftest import ICE_RELEASES, ice_published, write_csv
from xlsx_plant import plant, read_cells

from atdarchive import Archive
from atdarchive.ingest import read_publication
from atdarchive.ingest.model import cell_addresses
from atdarchive.semantics import describe

V04, V05, V06 = ICE_RELEASES[3], ICE_RELEASES[4], ICE_RELEASES[5]
ATD_COUNTS = "atd__atd_active_population_counts_and_daily_cost_by_technology"
BOOKINS = "detention__ice_initial_book_ins_by_arresting_agency_and_month"
TOP = 5


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An archive holding the first five FY25 releases (copied for each planted error)."""
    root = tmp_path_factory.mktemp("judgement") / "arc"
    archive = Archive.init(root)
    archive.add_dataset("ice")
    for path in ICE_RELEASES[:5]:
        archive.commit("ice", path, published=ice_published(path))
    return root


def _copy(base: Path, tmp_path: Path) -> Archive:
    shutil.copytree(base, tmp_path / "arc", symlinks=True)
    return Archive(tmp_path / "arc")


def _top(archive: Archive, ref: str) -> list:
    return archive.findings(ref)[:TOP]


def _cell(path: Path, table: str, row_label: str, column: str) -> tuple[str, str]:
    """(sheet, A1 ref) of one cell of a table, found by the library's own reader."""
    pub = read_publication(path)
    t = next(t for t in pub.tables if t.name == table)
    meta = t.meta()
    row = t.data.column(0).to_pylist().index(row_label)
    where = cell_addresses(meta, column, pa.array(t.source_rows, pa.int32()),
                           np.array([row]))[0].as_py()
    sheet, ref = where.split("!")
    return sheet, ref


def test_stale_table_is_an_alert(base: Path, tmp_path: Path) -> None:
    """ATD's active population by technology, values and note exactly as two weeks before."""
    sheet = "ATD FY25 YTD"
    refs = [f"{col}{row}" for row in range(7, 17) for col in "ABC"]
    old, new = read_cells(V05, sheet, refs), read_cells(V06, sheet, refs)
    edits = {(sheet, r): old[r] for r in refs if old[r] != new[r]}
    assert edits  # the block really moved between the two releases
    planted = tmp_path / V06.name
    plant(V06, planted, edits)
    archive = _copy(base, tmp_path)
    archive.commit("ice", planted, published=ice_published(V06))
    top = _top(archive, "ice@latest")
    stale = [f for f in top if f.kind == "stale_table" and f.table == ATD_COUNTS]
    assert stale and stale[0].severity == "alert", [(f.kind, f.table) for f in top]
    assert stale[0].evidence["own_date"] == "2025-08-23"
    assert stale[0].evidence["release_date"] > "2025-09-01"
    # and its total no longer agrees with the other two ATD tables' (181,401)
    cross = [f for f in top if f.kind == "total_mismatch" and "cross_table" in f.evidence]
    assert cross and {p["other_value"] for p in cross[0].evidence["cross_table"]} | {
        p["value"] for p in cross[0].evidence["cross_table"]} >= {181401.0}


def test_periods_are_mapped_to_months() -> None:
    meta = {"title": "ICE Initial Book-Ins by Arresting Agency and Month: FY2025",
            "rows": 3, "schema": [{"name": "Agency", "type": "string"},
                                  *({"name": m, "type": "int64"} for m in ("Oct", "Sep")),
                                  {"name": "Total", "type": "int64"}]}
    sem = describe(meta, {}, "t")
    assert sem.role == "period_series" and sem.total_columns == ["Total"]
    assert sem.periods == {"Oct": "2024-10", "Sep": "2025-09"}
    bonds = describe({"title": "Bonds", "rows": 5, "schema": [
        {"name": "col_1", "type": "string"}, {"name": "2024-08-01", "type": "double"},
        {"name": "2024-09-01", "type": "double"}]}, {}, "b")
    assert bonds.periods == {"2024-08-01": "2024-08", "2024-09-01": "2024-09"}


def test_stated_date_going_backwards_is_an_alert(base: Path, tmp_path: Path) -> None:
    sheet = "Footnotes"
    text = read_cells(V06, sheet, ["B50"])["B50"]
    assert "09/06/2025" in text
    planted = tmp_path / V06.name
    plant(V06, planted, {(sheet, "B50"): text.replace("09/06/2025", "08/16/2025")})
    archive = _copy(base, tmp_path)
    archive.commit("ice", planted, published=ice_published(V06))
    top = _top(archive, "ice@latest")
    back = [f for f in top if f.kind == "stated_date_regression"]
    assert back and back[0].severity == "alert", [(f.kind, f.table) for f in top]
    older = back[0].evidence["older"]
    assert [(o["where"], o["date"], o["previous_date"]) for o in older] == [
        ("Footnotes!B50", "2025-08-16", "2025-08-23")]


def test_a_component_changed_without_its_totals_is_an_alert(base: Path,
                                                             tmp_path: Path) -> None:
    sheet, ref = _cell(V06, BOOKINS, "CBP", "Mar")
    value = read_cells(V06, sheet, [ref])[ref]
    planted = tmp_path / V06.name
    plant(V06, planted, {(sheet, ref): value + 250})
    archive = _copy(base, tmp_path)
    archive.commit("ice", planted, published=ice_published(V06))
    top = _top(archive, "ice@latest")
    off = [f for f in top if f.kind == "total_mismatch" and f.table == BOOKINS]
    assert off and off[0].severity == "alert", [(f.kind, f.table) for f in top]
    found = {(m["total"], m["row"], m["column"]): m for m in off[0].evidence["mismatches"]}
    assert found[("row", "Total", "Mar")]["difference"] == -250
    assert found[("column", "CBP", "Total")]["difference"] == -250
    assert found[("row", "Total", "Mar")]["cell"].startswith("Detention FY25!")


def test_a_restoration_is_named_once(base: Path, tmp_path: Path) -> None:
    """After 2025-08-29, a bad release (one month of CBP book-ins inflated), then the
    clean 2025-09-11 puts the value back."""
    months = ["Oct", "Nov", "Dec", "Jan", "Feb", "Mar"]
    rows = [next(t for t in read_publication(p).tables if t.name == BOOKINS).data
            .to_pylist()[1] for p in (V05, V06)]
    month = next(m for m in months if rows[0][m] == rows[1][m])  # not revised by v06
    sheet, ref = _cell(V05, BOOKINS, "CBP", month)
    bad = tmp_path / "FY25_detentionStats09052025.xlsx"
    plant(V05, bad, {(sheet, ref): rows[0][month] + 900})
    archive = _copy(base, tmp_path)
    archive.commit("ice", bad, published="2025-09-05")
    archive.commit("ice", V06, published=ice_published(V06))
    top = _top(archive, "ice@latest")
    restored = [f for f in top if f.kind == "restoration" and f.table == BOOKINS]
    assert restored and restored[0].severity == "warning", [(f.kind, f.table) for f in top]
    assert restored[0].evidence["restores_published"] == "2025-08-29"
    change = next(c for c in restored[0].evidence["changes"] if c["column"] == month)
    assert float(change["new"]) == rows[0][month] and change["row"] == {"Agency": "CBP"}
    revision = [f for f in archive.findings("ice@latest")
                if f.kind == "silent_revision" and f.table == BOOKINS]
    assert all(not (c["column"] == month and c["row"] == {"Agency": "CBP"})
               for f in revision for c in f.evidence["changes"])


@pytest.fixture(scope="module")
def clean(base: Path, tmp_path_factory: pytest.TempPathFactory) -> Archive:
    root = tmp_path_factory.mktemp("clean") / "arc"
    shutil.copytree(base, root, symlinks=True)
    archive = Archive(root)
    archive.commit("ice", V06, published=ice_published(V06))
    return archive


def test_clean_releases_no_revisions_of_as_of_tables(clean: Archive) -> None:
    report = clean.audit("ice")
    by_table = {}
    for e in clean.history("ice").channel("public"):
        for name, meta in e.record["tables"].items():
            by_table[name] = describe(meta, {}, name).role
    revised = {f.table for f in report.findings if f.kind == "silent_revision"}
    assert revised and all(by_table[t] == "period_series" for t in revised)
    assert not [f for f in report.findings if f.severity == "alert"]
    # the book-ins past-month revisions are still reported, the largest by size, named
    last = [f for f in report.findings if f.kind == "silent_revision" and f.table == BOOKINS
            and f.published == "2025-09-11"]
    assert last and "largest ICE Jul 27475 -> 27457 (-18)" in last[0].summary
    assert last[0].evidence["net_change"]["Jul"] < 0


def test_folded_column_is_named(archive: Archive, tmp_path: Path) -> None:
    """NYC's deaths: probable deaths folded into confirmed ones, one event."""
    rows = [{"date": f"2023-05-{d:02d}", "confirmed": 100 + d, "probable": 10 + d}
            for d in range(1, 9)]
    archive.commit("ds", write_csv(tmp_path / "a.csv", rows), published="2023-05-10")
    folded = [{"date": r["date"], "confirmed": r["confirmed"] + r["probable"]} for r in rows]
    archive.commit("ds", write_csv(tmp_path / "b.csv", folded), published="2023-05-11")
    found = archive.findings("ds@latest")
    fold = [f for f in found if f.kind == "folded_column"]
    assert fold and fold[0].evidence["column"] == "probable"
    assert fold[0].evidence["into"] == "confirmed" and fold[0].evidence["rows"] == 8
    assert not [f for f in found if f.kind == "silent_revision"]


def test_audit_config_is_checked_and_applied(archive: Archive, tmp_path: Path) -> None:
    path = archive.dataset_dir("ds") / "dataset.toml"
    path.write_text('name = "ds"\n[audit.tables.data]\nrole = "weekly"\n')
    with pytest.raises(Exception, match="audit.tables.data.role must be one of"):
        Archive(archive.root).dataset("ds")
    path.write_text('name = "ds"\n[audit]\nflag_columns = ["x"]\nprovisional_periods = "2"\n')
    with pytest.raises(Exception, match="audit.provisional_periods must be an integer"):
        Archive(archive.root).dataset("ds")


def test_tables_shows_each_tables_time_role(clean: Archive, cli) -> None:
    sem = clean.semantics("ice@latest", BOOKINS)[BOOKINS]
    assert sem["role"] == "period_series" and sem["periods"]["Oct"] == "2024-10"
    res = cli("-C", clean.root, "tables", "ice@latest")
    assert res.code == 0
    assert "role: period_series (inferred), periods 2024-10 … 2025-09" in res.out
    assert "role: as_of (inferred)" in res.out and "role: reference (inferred)" in res.out
