"""Workbook reader: table extraction, types, provenance, stated dates, spec, real ICE releases."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
import sys
import time
import zipfile
from functools import cache
from pathlib import Path

import openpyxl
import pyarrow as pa
import pytest

from atdarchive.errors import IngestError
from atdarchive.ingest import read_publication
from atdarchive.ingest.dates import (
    find_stated_dates,
    fiscal_month_end,
    is_period_only,
    parse_date,
    period_key,
    strip_period_words,
)
from atdarchive.ingest.model import Publication

DATA = Path(__file__).parent / "data" / "ice-fy25"
RELEASES = sorted(DATA.glob("v0*.xlsx"))
LATEST = RELEASES[-1]

BOOK_INS = "detention__ice_initial_book_ins_by_arresting_agency_and_month"
FACILITIES = "facilities__ice_enforcement_and_removal_operations_data"
ATD_TECH = "atd__atd_active_population_counts_and_daily_cost_by_technology"
ATD_STATUS = "atd__atd_active_population_by_status_extended_case_management_service_count_and_alip"
ATD_AOR = "atd__active_atd_participants_and_average_length_in_program_by_aor_and_technology"
HEARINGS = "atd__court_appearance_total_hearings"
BOND = (
    "monthly_bond_statistics__bonded_out_book_outs_count_and_alos_prior_12_months_plus_current_month"
)
MONTHS = ["Oct", "Nov", "Dec", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep"]

# Tables the agency did not keep in every release (checked in the workbooks by hand):
# the Monthly Segregation sheet gains a month table with each new month, but v05 went back to
# the v03 sheet (no July 2025); the Vulnerable & Special Population sheet had an FY2025 Q3
# table only in v04.
VARYING = {
    "monthly_segregation__2025_06": {"v02", "v03", "v04", "v05", "v06"},
    "monthly_segregation__2025_07": {"v04", "v06"},
    "monthly_segregation__2025_08": {"v06"},
    "vulnerable_special_population__fy2025_q3": {"v04"},
}


@cache
def release(path: Path) -> Publication:
    return read_publication(path)


def tables(path: Path) -> dict:
    return {t.name: t for t in release(path).tables}


def version(path: Path) -> str:
    return path.name[:3]


# --------------------------------------------------------------------------- real releases


def test_six_releases_present() -> None:
    assert [version(p) for p in RELEASES] == ["v01", "v02", "v03", "v04", "v05", "v06"]


def test_same_table_names_release_to_release() -> None:
    names = {version(p): set(tables(p)) for p in RELEASES}
    stable = set.intersection(*names.values())
    for name in set.union(*names.values()) - stable:
        assert name in VARYING, f"{name} appears only in some releases"
        assert {v for v, found in names.items() if name in found} == VARYING[name]
    for name in (
        BOOK_INS,
        FACILITIES,
        ATD_TECH,
        ATD_STATUS,
        ATD_AOR,
        HEARINGS,
        BOND,
        "footnotes__ice_footnotes",
        "iclos_and_detainees__detainees",
        "monthly_segregation__2025_05",
        "vulnerable_special_population__fy2022_q2",
    ):
        assert name in stable
    assert len(stable) == 66


@pytest.mark.parametrize("path", RELEASES, ids=version)
def test_table_names_are_safe_slugs_and_unique(path: Path) -> None:
    names = [t.name for t in release(path).tables]
    assert len(names) == len(set(names))
    for name in names:
        assert re.fullmatch(r"[a-z0-9_]+", name), name
        assert not any(word in name for word in ("thru", "as_of", "9_06", "fy25_"))


NOV_TOTAL = {"v01": 21129, "v02": 21128, "v03": 21127, "v04": 21123, "v05": 21123, "v06": 21123}
OCT_TOTAL = {"v01": 23616, "v02": 23616, "v03": 23613, "v04": 23613, "v05": 23613, "v06": 23613}


@pytest.mark.parametrize("path", RELEASES, ids=version)
def test_book_ins_by_agency_and_month(path: Path) -> None:
    table = tables(path)[BOOK_INS]
    # The sheet's own month labels ("Oct".."Sep", then "Total") are kept as column names.
    assert table.data.column_names == ["Agency", *MONTHS, "Total"]
    assert table.data.column("Agency").to_pylist() == ["Total", "CBP", "ICE"]  # "ICE  " stripped
    assert table.data.schema.field("Oct").type == pa.int64()
    total = table.data.to_pylist()[0]
    assert total["Oct"] == OCT_TOTAL[version(path)]
    assert total["Nov"] == NOV_TOTAL[version(path)]
    assert total["Total"] == sum(total[m] for m in MONTHS)
    assert table.sheet == "Detention FY25"
    assert table.source_rows == [20, 21, 22]
    assert table.source_columns["Oct"] == "J" and table.source_columns["Total"] == "V"
    assert table.cell_range == "I18:V22"
    assert table.title == "ICE Initial Book-Ins by Arresting Agency and Month: FY2025"


def test_lossless_layer_keeps_trailing_spaces_the_tidy_table_strips() -> None:
    cells = release(LATEST).cells
    rows = [
        r for r in cells.to_pylist() if r["sheet"] == "Detention FY25" and r["address"] == "I22"
    ]
    assert rows == [
        {
            "sheet": "Detention FY25",
            "address": "I22",
            "row": 22,
            "column": 9,
            "text": "ICE  ",
            "number": None,
            "type": "string",
            "number_format": None,
        }
    ]
    assert " ICLOS and Detainees" in set(cells.column("sheet").to_pylist())


def test_cells_layer_schema_and_numbers() -> None:
    cells = release(LATEST).cells
    assert cells.schema == pa.schema(
        [
            ("sheet", pa.string()),
            ("address", pa.string()),
            ("row", pa.int32()),
            ("column", pa.int32()),
            ("text", pa.string()),
            ("number", pa.float64()),
            ("type", pa.string()),
            ("number_format", pa.string()),
        ]
    )
    b10 = [r for r in cells.to_pylist() if r["sheet"] == "ATD FY25 YTD" and r["address"] == "B10"]
    assert b10[0]["number"] == 29089.0 and b10[0]["text"] == "29089" and b10[0]["type"] == "float"


def test_known_cell_provenance_ankle_monitor() -> None:
    table = tables(LATEST)[ATD_TECH]
    assert table.data.column_names == ["Technology", "Count", "Daily Tech Cost"]
    i = table.data.column("Technology").to_pylist().index("Ankle Monitor")
    assert table.data.column("Count")[i].as_py() == 29089
    assert (table.sheet, table.source_columns["Count"], table.source_rows[i]) == (
        "ATD FY25 YTD",
        "B",
        10,
    )
    assert table.cell_range == "A7:C15"
    assert table.notes[0] == "Data from BI Inc. Participants Report, 9.06.2025"
    assert "Data from" not in " ".join(table.data.column("Technology").to_pylist())


@cache
def openpyxl_book(path: Path) -> openpyxl.Workbook:
    return openpyxl.load_workbook(path, data_only=True)


def _tidy(value: object) -> object:
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dt.datetime) and value.time() == dt.time():
        return value.date()  # openpyxl reads date cells as midnight datetimes
    return value


def test_every_value_traces_to_its_source_cell() -> None:
    """First and last data row of every table, checked against openpyxl's reading."""
    book = openpyxl_book(LATEST)
    checked = 0
    for table in release(LATEST).tables:
        sheet = book[table.sheet]
        rows = table.data.to_pylist()
        for i in {0, len(rows) - 1}:
            for name, letter in table.source_columns.items():
                got = rows[i][name]
                raw = _tidy(sheet[f"{letter}{table.source_rows[i]}"].value)
                if raw is None:  # blank own cell: only a vertically merged label may fill it
                    continue
                if isinstance(got, float):
                    assert got == pytest.approx(float(raw))
                else:
                    assert got == raw or str(got) == str(raw), (table.name, name, i)
                checked += 1
    assert checked > 800


@pytest.mark.parametrize("path", RELEASES, ids=version)
def test_facilities_one_per_row(path: Path) -> None:
    table = tables(path)[FACILITIES]
    for column in ("Name", "City", "State"):
        assert table.data.schema.field(column).type == pa.string()
    assert table.data.column_names[:8] == [
        "Name",
        "Address",
        "City",
        "State",
        "Zip",
        "AOR",
        "Type Detailed",
        "Male/Female",
    ]
    assert table.source_rows[0] == 8 and table.source_rows == list(
        range(8, 8 + len(table.source_rows))
    )
    assert table.source_columns["Name"] == "A"
    assert table.notes[-1].startswith("Data Source: ICE Integrated Decision Support (IIDS)")
    names = table.data.column("Name").to_pylist()
    assert all(isinstance(n, str) and n for n in names)
    assert names.count("CLINTON COUNTY JAIL") == 2  # same name, two states
    expected = {"v01": 163, "v02": 201, "v03": 179, "v04": 181, "v05": 186, "v06": 187}
    assert table.data.num_rows == expected[version(path)]


def test_facility_repeated_in_one_release_is_kept() -> None:
    table = tables(RELEASES[1])[FACILITIES]
    keys = [(r["Name"], r["City"], r["State"]) for r in table.data.to_pylist()]
    nassau = ("NASSAU COUNTY CORRECTIONAL CENTER", "EAST MEADOW", "NY")
    assert keys.count(nassau) == 2
    assert [table.source_rows[i] for i, k in enumerate(keys) if k == nassau] == [144, 146]


def test_monthly_bond_statistics() -> None:
    table = tables(LATEST)[BOND]
    assert table.data.column_names[:3] == ["col_1", "2024-08-01", "2024-09-01"]
    assert table.data.column("col_1").to_pylist()[0] == "Total ICE Final Book Outs"
    assert table.data.column("2024-08-01").to_pylist()[0] == 23626
    assert table.title.startswith("FY2025 Bonded Out Book Outs Count and ALOS")


def test_atd_status_and_hearings_tables() -> None:
    status = tables(LATEST)[ATD_STATUS].data
    assert status.column_names == ["FAMU Status", "Count", "ALIP"]
    assert status.column("FAMU Status").to_pylist() == ["FAMU", "Single Adult", "Total"]
    assert status.column("Count").to_pylist() == [79648, 101753, 181401]
    hearings = tables(LATEST)[HEARINGS]
    assert hearings.data.column_names == ["Metric", "Count", "%"]
    assert hearings.data.schema.field("%").type == pa.float64()
    assert hearings.notes == [
        "Court Data from BI Inc.",
        "*Only Participants with court tracking assigned",
    ]
    assert hearings.cell_range == "E7:G11"


def test_multi_row_header_with_merged_months() -> None:
    detainees = tables(LATEST)["iclos_and_detainees__detainees"]
    assert detainees.data.column_names[:4] == [
        "Population",
        "2023 / January / mid",
        "2023 / January / end",
        "2023 / February / mid",
    ]
    labels = detainees.data.column("Population").to_pylist()
    assert labels[0] == "Adult Facility Aliens"  # a section label row stays a data row
    assert detainees.data.column("2023 / January / mid").to_pylist()[:2] == [None, 18356]


STATED = {
    # version: (ATD "Data from" date, AOR "as of", hearings "thru" month end, book-ins through)
    "v01": ("2025-06-14", "2025-06-14", "2025-05-31", "2025-06-14"),
    "v06": ("2025-09-06", "2025-09-06", "2025-08-31", "2025-09-06"),
}


@pytest.mark.parametrize("path", [RELEASES[0], RELEASES[-1]], ids=version)
def test_stated_dates_per_release(path: Path) -> None:
    stated = release(path).stated_dates
    data_from, as_of, thru, book_ins = STATED[version(path)]
    by = {(s.table, s.kind): s for s in stated if s.table}
    assert by[(ATD_TECH, "data_from")].date == data_from
    assert by[(ATD_TECH, "data_from")].where in ("ATD FY25 YTD!A15", "ATD FY25 YTD!A16")
    assert by[(ATD_AOR, "as_of")].date == as_of
    assert by[(HEARINGS, "through")].date == thru
    footnote = [s for s in stated if "Book-ins data is updated" in s.text]
    assert {(s.kind, s.date) for s in footnote} >= {("through", book_ins)}
    assert all(s.where.startswith("Footnotes!B") and s.table is None for s in footnote)
    keys = [(s.date, s.kind, s.where) for s in stated]
    assert len(keys) == len(set(keys))


def test_detention_snapshot_date_v01() -> None:
    snapshot = [s for s in release(RELEASES[0]).stated_dates if "National Docket" in s.text]
    assert [(s.kind, s.date) for s in snapshot] == [
        ("as_of", "2025-06-15"),
        ("run_date", "2025-06-16"),
    ]


@pytest.mark.parametrize("path", RELEASES, ids=version)
def test_ingest_speed(path: Path) -> None:
    start = time.perf_counter()
    read_publication(path)
    assert time.perf_counter() - start < 2.0


# --------------------------------------------------------------------------- synthetic workbooks


def _layout(ws, as_of: str) -> None:
    """Two titled tables side by side, one stacked below, notes, a merged title."""
    ws["A1"] = "Agency report"
    ws["A3"] = f"Counts by Agency, FY25, as of {as_of}"
    ws.merge_cells("A3:C3")
    ws.append([])
    for cell, value in {"A4": "Agency", "B4": "Count", "C4": "Share"}.items():
        ws[cell] = value
    for r, (agency, count, share) in enumerate(
        [("ICE  ", 23616.0, 0.25), ("CBP", 1.0, 0.5), ("Total", 23617.0, 0.75)], start=5
    ):
        ws[f"A{r}"], ws[f"B{r}"], ws[f"C{r}"] = agency, count, share
    ws["A8"] = f"Data from Agency Report, {as_of.replace('/', '.')}"
    ws["E3"] = "FY25 thru August Hearings*"
    ws["E4"], ws["F4"] = "Metric", "Count"
    ws["E5"], ws["F5"] = "Attended", "1,234"
    ws["E6"], ws["F6"] = "Missed", "12*"
    ws["E7"] = "*Only tracked participants"
    ws["A11"] = "Dates table"
    ws["A12"], ws["B12"], ws["C12"] = "When", "Value", "Label"
    ws["A13"], ws["B13"], ws["C13"] = dt.date(2025, 1, 2), 1, "N/A"
    ws["A14"], ws["B14"], ws["C14"] = dt.date(2025, 2, 3), 2.5, 7


def _workbook(path: Path, as_of: str = "9/06/2025", sheet: str = "Report FY25") -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = sheet
    _layout(ws, as_of)
    wb.create_sheet("Empty")
    wb.save(path)
    return path


@pytest.fixture
def book(tmp_path: Path) -> Publication:
    return read_publication(_workbook(tmp_path / "report.xlsx"))


def test_side_by_side_and_stacked_tables(book: Publication) -> None:
    names = [t.name for t in book.tables]
    assert names == ["report__counts_by_agency", "report__hearings", "report__dates_table"]
    counts, hearings, dated = book.tables
    assert counts.data.to_pydict() == {
        "Agency": ["ICE", "CBP", "Total"],
        "Count": [23616, 1, 23617],
        "Share": [0.25, 0.5, 0.75],
    }
    assert counts.data.schema.types == [pa.string(), pa.int64(), pa.float64()]
    assert counts.cell_range == "A3:C7" and counts.source_rows == [5, 6, 7]
    assert counts.notes == ["Data from Agency Report, 9.06.2025"]
    assert hearings.data.to_pydict() == {"Metric": ["Attended", "Missed"], "Count": [1234, 12]}
    assert hearings.notes == ["*Only tracked participants"]
    assert hearings.source_columns == {"Metric": "E", "Count": "F"}
    assert dated.data.schema.types == [pa.date32(), pa.float64(), pa.string()]
    assert dated.data.column("Label").to_pylist() == ["N/A", "7"]
    assert book.notes == ["Agency report"]
    assert book.cells.filter(pa.compute.equal(book.cells["sheet"], "Empty")).num_rows == 0


def test_names_do_not_depend_on_release_dates(tmp_path: Path) -> None:
    first = read_publication(_workbook(tmp_path / "a.xlsx", as_of="9/06/2025"))
    second = read_publication(_workbook(tmp_path / "b.xlsx", as_of="10/12/2025"))
    assert [t.name for t in first.tables] == [t.name for t in second.tables]
    assert first.tables[0].title != second.tables[0].title


def test_stated_dates_of_synthetic_book(book: Publication) -> None:
    got = {(s.date, s.kind, s.where, s.table) for s in book.stated_dates}
    assert got == {
        ("2025-09-06", "as_of", "Report FY25!A3", "report__counts_by_agency"),
        ("2025-09-06", "data_from", "Report FY25!A8", "report__counts_by_agency"),
        ("2025-08-31", "through", "Report FY25!E3", "report__hearings"),
    }


def test_header_names_made_unique_and_joined(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws["A1"] = "Wide table"
    ws["B2"] = "Group"
    ws.merge_cells("B2:C2")
    for c, v in zip("ABCDE", ["Label", "count", "count", None, "  Spaced\nname "], strict=True):
        ws[f"{c}3"] = v
    ws.append(["x", 1, 2, 3, 4])
    ws.append(["y", 5, 6, 7, 8])
    path = tmp_path / "wide.xlsx"
    wb.save(path)
    table = read_publication(path).tables[0]
    assert table.data.column_names == [
        "Label",
        "Group / count",
        "Group / count_2",
        "col_4",
        "Spaced name",
    ]
    assert table.source_columns["col_4"] == "D"


def test_path_like_sheet_name_slugs_safely(tmp_path: Path) -> None:
    path = _workbook(tmp_path / "evil.xlsx", sheet="EVILSHEET")
    patched = tmp_path / "patched.xlsx"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(patched, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "xl/workbook.xml":
                data = data.replace(b"EVILSHEET", b"../../etc")
            dst.writestr(item, data)
    pub = read_publication(patched)
    assert pub.tables[0].sheet == "../../etc"
    assert [t.name for t in pub.tables][0] == "etc__counts_by_agency"
    assert all("/" not in t.name and ".." not in t.name for t in pub.tables)


def test_spec_anchor_renames_keys_and_forces_header(tmp_path: Path) -> None:
    path = _workbook(tmp_path / "spec.xlsx")
    spec = {
        "tables": {
            "counts": {
                "sheet": "Report FY25",
                "anchor": "counts by  AGENCY",
                "header_rows": 1,
                "key": ["agency"],
                "rename": {"Agency": "agency"},
            },
            "dates": {"sheet": "Report FY25", "range": "A12:C14", "key": ["When"]},
        }
    }
    pub = read_publication(path, spec=spec)
    by = {t.name: t for t in pub.tables}
    assert set(by) == {"counts", "dates", "report__hearings"}
    assert by["counts"].key == ["agency"]
    assert by["counts"].data.column("agency").to_pylist() == ["ICE", "CBP", "Total"]
    assert by["dates"].data.column_names == ["When", "Value", "Label"]
    assert by["dates"].cell_range == "A12:C14" and by["dates"].source_rows == [13, 14]


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ({"sheet": "Report FY25", "anchor": "No such title"}, "no table titled"),
        ({"sheet": "Nope", "anchor": "Counts"}, "no sheet"),
        ({"sheet": "Report FY25", "anchor": "Counts", "key": ["zzz"]}, "key column 'zzz'"),
        ({"sheet": "Report FY25", "range": "A1-B2"}, "is not like"),
        ({"sheet": "Report FY25"}, "needs 'anchor' or 'range'"),
    ],
)
def test_spec_errors(tmp_path: Path, entry: dict, problem: str) -> None:
    path = _workbook(tmp_path / "bad-spec.xlsx")
    with pytest.raises(IngestError, match=problem) as info:
        read_publication(path, spec={"tables": {"t": entry}})
    assert str(info.value).startswith("bad-spec.xlsx: ")


def test_copy_of_release_reads_identically(tmp_path: Path) -> None:
    copy = tmp_path / "renamed.bin"
    shutil.copy(LATEST, copy)
    assert [t.name for t in read_publication(copy).tables] == list(tables(LATEST))


# --------------------------------------------------------------------------- dates.py


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Data from BI Inc. Participants Report, 9.06.2025", [("2025-09-06", "data_from")]),
        ("Program, FY25,  as of 9/06/2025, by AOR", [("2025-09-06", "as_of")]),
        ("FY25 thru August Court Appearance", [("2025-08-31", "through")]),
        ("FY25 thru November hearings", [("2024-11-30", "through")]),
        (
            "Data Source: ICE Integrated Decision Support (IIDS), 06/09/2025",
            [("2025-06-09", "data_from")],
        ),
        (
            "FY2025 YTD ICE Book-ins data is updated through 06/14/2025 (IIDS Run Date 06/16/2025;"
            " EID as of 06/14/2025).",
            [("2025-06-14", "through"), ("2025-06-16", "run_date")],
        ),
        (
            "ICE National Docket data are a snapshot as of 09/07/2025 (IIDS Run Date 09/08/2025).",
            [("2025-09-07", "as_of"), ("2025-09-08", "run_date")],
        ),
        ("Burma (Myanmar) designated TPS as of 05/25/2021.", []),
        ("Data were received on 09/09/2025.", []),
        ("updated through 2/30/2025", []),  # not a calendar date
    ],
)
def test_find_stated_dates(text: str, expected: list[tuple[str, str]]) -> None:
    found = find_stated_dates(text, where="S!A1", table="t", is_title="Program" in text)
    assert [(s.date, s.kind) for s in found] == expected
    assert all(s.where == "S!A1" and s.table == "t" for s in found)


def test_as_of_in_a_note_needs_data_words() -> None:
    assert find_stated_dates("as of 9/06/2025") == []
    assert [s.kind for s in find_stated_dates("as of 9/06/2025", is_title=True)] == ["as_of"]


def test_parse_date_formats() -> None:
    assert parse_date("on 9.6.25") == dt.date(2025, 9, 6)
    assert parse_date("2025-09-06") == dt.date(2025, 9, 6)
    assert parse_date("September 6, 2025") == dt.date(2025, 9, 6)
    assert parse_date("no date") is None


def test_fiscal_month_end() -> None:
    assert fiscal_month_end(25, 8) == dt.date(2025, 8, 31)
    assert fiscal_month_end(2025, 10) == dt.date(2024, 10, 31)
    assert fiscal_month_end(2024, 2) == dt.date(2024, 2, 29)


@pytest.mark.parametrize(
    ("title", "stripped"),
    [
        ("FY25 thru August Court Appearance: Total Hearings*", "Court Appearance: Total Hearings*"),
        (
            "Active ATD Participants, FY25,  as of 9/06/2025, by AOR",
            "Active ATD Participants, , , by AOR",
        ),
        ("United States Citizen Arrests FY2018 - FY2025 YTD", "United States Citizen Arrests -"),
        ("Snapshot 06/15/2025 of May Reports", "Snapshot of May Reports"),
    ],
)
def test_strip_period_words(title: str, stripped: str) -> None:
    assert strip_period_words(title) == stripped


def test_period_only_titles() -> None:
    assert is_period_only("August 2025") and period_key("August 2025") == "2025_08"
    assert period_key("Fiscal Year (FY)  2022 Quarter 2 Data") == "fy2022_q2"
    assert is_period_only("Fiscal Year (FY)  2022 Quarter 2 Data")
    assert not is_period_only("ICE Removals: FY2025")


def test_spec_on_real_release() -> None:
    spec = {
        "tables": {
            "book_ins": {
                "sheet": "Detention FY25",
                "anchor": "Initial Book-Ins by Arresting Agency",
                "header_rows": 1,
                "key": ["agency"],
                "rename": {"Agency": "agency"},
            },
            "facilities": {
                "sheet": "Facilities FY25",
                "range": "A7:AB200",
                "key": ["Name", "City", "State"],
            },
        }
    }
    by = {t.name: t for t in read_publication(LATEST, spec=spec).tables}
    assert BOOK_INS not in by and FACILITIES not in by
    book_ins = by["book_ins"]
    assert book_ins.data.column_names == ["agency", *MONTHS, "Total"]
    assert book_ins.data.column("Oct").to_pylist() == [23613, 15004, 8609]
    assert book_ins.key == ["agency"] and book_ins.cell_range == "I18:V22"
    facilities = by["facilities"]
    assert facilities.cell_range == "A7:AB194"  # the range is clipped to the sheet's cells
    assert facilities.data.column_names[8:10] == ["FY25 ALOS", "Level A"]
    assert facilities.data.num_rows == tables(LATEST)[FACILITIES].data.num_rows
    assert facilities.key == ["Name", "City", "State"]


def test_ods_read_through_calamine(tmp_path: Path) -> None:
    ns = (
        'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
        'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
        'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"'
    )

    def cell(value: str, number: bool = False) -> str:
        kind = (
            f'office:value-type="float" office:value="{value}"'
            if number
            else ('office:value-type="string"')
        )
        return f"<table:table-cell {kind}><text:p>{value}</text:p></table:table-cell>"

    rows = [cell("Agency") + cell("Count"), cell("ICE  ") + cell("23616", True)]
    content = (
        f'<?xml version="1.0" encoding="UTF-8"?><office:document-content {ns}>'
        '<office:body><office:spreadsheet><table:table table:name="Book-ins FY25">'
        + "".join(f"<table:table-row>{r}</table:table-row>" for r in rows)
        + "</table:table></office:spreadsheet></office:body></office:document-content>"
    )
    path = tmp_path / "stats.ods"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        archive.writestr("content.xml", content)
        archive.writestr(
            "META-INF/manifest.xml",
            '<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:'
            'xmlns:manifest:1.0">'
            '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
            "</manifest:manifest>",
        )
    pub = read_publication(path)
    assert pub.format == "ods"
    assert [(t.name, t.data.to_pydict()) for t in pub.tables] == [
        ("book_ins", {"Agency": ["ICE"], "Count": [23616]})
    ]


def test_cells_layer_of_synthetic_book(book: Publication) -> None:
    cells = {(r["sheet"], r["address"]): r for r in book.cells.to_pylist()}
    assert cells[("Report FY25", "A5")]["text"] == "ICE  "
    assert cells[("Report FY25", "B5")] | {"sheet": None} == {
        "sheet": None, "address": "B5", "row": 5, "column": 2, "text": "23616",
        "number": 23616.0, "type": "float", "number_format": None,
    }
    assert cells[("Report FY25", "C5")]["text"] == "0.25"
    assert cells[("Report FY25", "F5")]["type"] == "string"  # "1,234" as written
    assert (cells[("Report FY25", "A13")]["type"], cells[("Report FY25", "A13")]["text"]) == (
        "date", "2025-01-02",
    )
    assert cells[("Report FY25", "A13")]["number"] is None
    assert len(cells) == book.cells.num_rows == 33


# --------------------------------------------------------------------------- sheet extent (F2)


def _edit_sheet(path: Path, edit) -> Path:
    """Rewrite the first worksheet's XML of a small openpyxl workbook with `edit`."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["Agency", "Count"])
    ws.append(["ICE", 1])
    source = path.with_suffix(".src.xlsx")
    wb.save(source)
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            member = src.read(info.filename)
            if info.filename == "xl/worksheets/sheet1.xml":
                member = edit(member)
            out.writestr(info.filename, member)
    return path


def _add_cell(xml: str):
    end = b"</row></sheetData>"
    return lambda member: member.replace(end, b"</row>" + xml.encode() + b"</sheetData>")


FAR_VALUE = '<c r="XFD1048576"><v>2</v></c>'
HOSTILE_FAR_CELLS = {  # each makes python-calamine allocate 17 billion cells and abort
    "plain": FAR_VALUE,
    "error-value": '<c r="XFD1048576" t="e"><v>#N/A</v></c>',
    "empty-inline-string": '<c r="XFD1048576" t="inlineStr"><is><t></t></is></c>',
    "gt-in-attribute": '<c foo=">" r="XFD1048576"><v>2</v></c>',
    "fake-r-in-single-quotes": "<c r=\"XFD1048576\" a='x r=\"A1\" y'><v>2</v></c>",
    "spaced-r": "<c r = 'XFD1048576'><v>2</v></c>",
    "fake-child-cell": '<c r="XFD1048576"><v>2</v><cx r="A1"/></c>',
    "comment-in-cell": '<c r="XFD1048576"><!-- <c r="A1"> --><v>2</v></c>',
    "implicit-positions": '<row r="1048576"><c><v>1</v></c></row><row r="7"><c r="XFD7"><v>1'
    "</v></c></row>",
}


def test_far_away_cells_are_refused_before_calamine(tmp_path: Path) -> None:
    # Run in a child under an address-space limit: before the fix calamine aborted (SIGABRT).
    paths = {
        name: _edit_sheet(tmp_path / f"{name}.xlsx", _add_cell(xml))
        for name, xml in HOSTILE_FAR_CELLS.items()
    }
    probe = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))\n"
        "from pathlib import Path\n"
        "from atdarchive.errors import IngestError\n"
        "from atdarchive.ingest import read_publication\n"
        "for arg in sys.argv[1:]:\n"
        "    try:\n"
        "        read_publication(Path(arg)); print('read', arg)\n"
        "    except IngestError as exc:\n"
        "        print('error', exc)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe, *map(str, paths.values())],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-400:]
    lines = proc.stdout.splitlines()
    assert len(lines) == len(paths), proc.stdout
    for name, line in zip(paths, lines, strict=True):
        assert line.startswith(f"error {name}.xlsx: sheet 'Sheet' (A1:XFD"), (name, line)
        assert "exceeds the limit of 20,000,000 cells (ingest.max_sheet_cells;" in line, line


def test_far_cell_message_names_extent(tmp_path: Path) -> None:
    path = _edit_sheet(tmp_path / "far.xlsx", _add_cell(FAR_VALUE))
    started = time.perf_counter()
    with pytest.raises(IngestError) as info:
        read_publication(path)
    assert str(info.value) == (
        "far.xlsx: sheet 'Sheet' (A1:XFD1048576): sheet grid (A1 to its last cell) "
        "(17,179,869,184 cells) exceeds the limit of 20,000,000 cells (ingest.max_sheet_cells; "
        "raise it with ATDARCHIVE_LIMIT_INGEST_MAX_SHEET_CELLS=N)"
    )
    assert time.perf_counter() - started < 2


def test_far_formatting_only_cells_are_not_refused(tmp_path: Path) -> None:
    # formatting only, as Excel writes it: calamine keeps no such cell (`<c ...></c>`, which
    # Excel does not write, is counted as content: a refusal on the safe side)
    path = _edit_sheet(tmp_path / "fmt.xlsx", _add_cell('<c r="XFD1048576" s="0"/>'))
    publication = read_publication(path)
    assert publication.tables[0].data.to_pylist() == [{"Agency": "ICE", "Count": 1}]


def test_sheet_extent_counts_cells_with_content() -> None:
    from atdarchive.ingest.xlsx import sheet_extent

    xml = (
        b'<worksheet><sheetData><row r="2"><c r="B2"><v>1</v></c><c r="ZZ2" s="1"/></row>'
        b'<row r="40"><c r="AB40" t="s"><v>0</v></c></row></sheetData>'
        b'<dimension ref="A1:XFD1048576"/></worksheet>'
    )
    assert sheet_extent(xml) == (40, 28)  # AB40; the empty ZZ2 and the claimed dimension ignored
    rowless = b"<worksheet><sheetData><row><c><v>1</v></c><c><v>2</v></c></row><row/><row>" \
        b"<c><v>3</v></c></row></sheetData></worksheet>"
    assert sheet_extent(rowless) == (3, 2)


def test_real_releases_are_within_the_extent_limit() -> None:
    # sheet "Monthly Segregation" is formatted out to column XFD on ~1000 rows (17 million
    # cells if formatting counted): only cells with content may count, or it is refused.
    from atdarchive import limits
    from atdarchive.ingest.xlsx import _sheet_parts, sheet_extent

    max_sheet_cells = limits.value("ingest.max_sheet_cells")

    with zipfile.ZipFile(LATEST) as archive:
        extents = {
            name: sheet_extent(archive.read(part)) for name, part in _sheet_parts(archive).items()
        }
    assert extents["Monthly Segregation"][1] < 30
    assert all(rows * cols < max_sheet_cells for rows, cols in extents.values())


def test_huge_merged_range_is_clipped_to_the_sheet(tmp_path: Path) -> None:
    # A merge A1:XFD1048576 asked for 17 billion `cover` entries (a hang or MemoryError).
    merge = b'</sheetData><mergeCells count="1"><mergeCell ref="A1:XFD1048576"/></mergeCells>'
    path = _edit_sheet(tmp_path / "merge.xlsx", lambda m: m.replace(b"</sheetData>", merge))
    started = time.perf_counter()
    read_publication(path)
    assert time.perf_counter() - started < 5


def test_merged_ranges_over_the_budget_are_refused(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("ATDARCHIVE_LIMIT_INGEST_MAX_MERGED_CELLS", "3")  # A1:B2 covers 4 cells
    merge = b'</sheetData><mergeCells count="1"><mergeCell ref="A1:B2"/></mergeCells>'
    path = _edit_sheet(tmp_path / "merge.xlsx", lambda m: m.replace(b"</sheetData>", merge))
    with pytest.raises(IngestError) as info:
        read_publication(path)
    assert str(info.value) == (
        "merge.xlsx: sheet 'Sheet': cells covered by merged ranges exceeds the limit of 3 cells "
        "(ingest.max_merged_cells; raise it with ATDARCHIVE_LIMIT_INGEST_MAX_MERGED_CELLS=N)"
    )
