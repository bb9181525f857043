"""Forensic audit: each finding kind from real-shaped histories through the real commit.

Tables are shaped like ICE's: an agency x month book-ins table (months not yet
reported hold 0, a Total column), a facilities list keyed by (Name, City, State)
with a name that exists in two states. The six real FY25 workbooks close the file.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import openpyxl
import pytest
from conftest import ICE_RELEASES, ice_published, six_releases, write_csv

from atdarchive import Archive
from atdarchive.audit import (
    AuditOptions,
    audit,
    claimed_dates,
    file_name_date,
    findings_for_snapshot,
    jump,
    parse_period_end,
)

MONTHS = ["Oct", "Nov", "Dec", "Jan", "Feb", "Mar"]
BASE = {"CBP": [11000, 9800, 10500, 12000, 11500, 12500],
        "ICE": [12616, 11329, 12000, 13000, 12400, 13100]}
FACILITIES = [
    ("Adams County Jail", "Natchez", "MS"), ("Adams County Jail", "Hastings", "NE"),
    ("Adelanto ICE Processing Center", "Adelanto", "CA"), ("Otay Mesa", "San Diego", "CA"),
    ("Krome North SPC", "Miami", "FL"), ("Port Isabel SPC", "Los Fresnos", "TX"),
    ("Stewart Detention Center", "Lumpkin", "GA"), ("Eloy Federal Contract", "Eloy", "AZ"),
    ("Moshannon Valley", "Philipsburg", "PA"), ("Winn Correctional", "Winnfield", "LA"),
]


def bookins(filled: int, edits: dict[tuple[str, str], int] | None = None) -> list[dict]:
    """Agency x month rows (CBP, ICE, Total); months past `filled` hold 0."""
    edits = edits or {}
    rows = []
    for agency in ("Total", "CBP", "ICE"):
        row: dict = {"Agency": agency}
        for i, month in enumerate(MONTHS):
            if i >= filled:
                value = 0
            elif agency == "Total":
                value = sum(edits.get((a, month), BASE[a][i]) for a in ("CBP", "ICE"))
            else:
                value = BASE[agency][i]
            row[month] = edits.get((agency, month), value)
        row["Total"] = sum(row[m] for m in MONTHS)
        rows.append(row)
    return rows


def facilities(seed: int, *, drop: tuple[int, ...] = (), stamp: str | None = None,
               n: int = 10) -> list[dict]:
    rows = []
    for i, (name, city, state) in enumerate(FACILITIES[:n]):
        if i in drop:
            continue
        row = {"Name": name, "City": city, "State": state,
               "ADP": round(100 + 37.5 * i + 11.25 * seed, 2)}
        if stamp:
            row["Report Date"] = stamp
        rows.append(row)
    return rows


def workbook(path: Path, *, as_of: str, filled: int, seed: int = 0,
             edits: dict | None = None, extra_sheet: bool = False) -> Path:
    """An ICE-like workbook: book-ins sheet with a 'Data from' line, a facilities sheet."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Detention FY21"
    ws.append(["ICE Initial Book-Ins by Arresting Agency and Month: FY2021"])
    rows = bookins(filled, edits)
    ws.append(list(rows[0]))
    for row in rows:
        ws.append(list(row.values()))
    ws.append([])
    ws.append([f"Data from ICE Integrated Decision Support (IIDS), {as_of}"])
    fs = wb.create_sheet("Facilities FY21")
    fs.append([f"Detention Facilities, data as of {as_of}"])
    frows = facilities(seed)
    fs.append(list(frows[0]))
    for row in frows:
        fs.append(list(row.values()))
    if extra_sheet:
        bs = wb.create_sheet("Monthly Bond Statistics")
        bs.append(["Bonds Set by Month"])
        bs.append(["Month", "Bonds"])
        for i, month in enumerate(MONTHS[:3]):
            bs.append([month, 40 + i])
    wb.save(path)
    return path


def kinds(findings) -> list[str]:
    return sorted(f.kind for f in findings)


def of_kind(report_or_list, kind: str) -> list:
    findings = getattr(report_or_list, "findings", report_or_list)
    return [f for f in findings if f.kind == kind]


# ---------------------------------------------------------------- pure helpers


def test_dates_claimed_by_a_release():
    assert file_name_date("FY25_detentionStats08292025.xlsx").isoformat() == "2025-08-29"
    assert file_name_date("ice_detention_stats_20250704_160809.xlsx").isoformat() == "2025-07-04"
    assert file_name_date("report-2021-05-13.csv").isoformat() == "2021-05-13"
    assert file_name_date("data.csv") is None
    assert parse_period_end("2022-09").isoformat() == "2022-09-30"
    assert parse_period_end("FY2025").isoformat() == "2025-09-30"
    assert parse_period_end("FY25 Q1").isoformat() == "2024-12-31"
    assert parse_period_end("2024-Q2").isoformat() == "2024-06-30"
    assert parse_period_end("sometime") is None
    record = {"published": "2022-09-15T10:00:00+00:00", "period": "2022-09",
              "original": {"name": "stats05132021.xlsx"}}
    assert claimed_dates(record) == {"published": "2022-09-15", "period": "2022-09-30",
                                     "file_name": "2021-05-13"}


def test_jump_is_symmetric_and_infinite_for_zeroing():
    assert jump(100, 200) == pytest.approx(1.0)
    assert jump(200, 100) == pytest.approx(1.0)
    assert jump(100, 18100) == pytest.approx(180.0)
    assert jump(50, 0) == float("inf")
    assert jump(5, 5) == 0.0


# ---------------------------------------------------------------- a clean history


@pytest.fixture
def ice_like(tmp_path: Path) -> Archive:
    arc = Archive.init(tmp_path / "arc")
    arc.add_dataset("ds", keys={"facilities_fy21__detention_facilities_data": [
        "Name", "City", "State"]})
    return arc


def test_clean_history_has_no_findings(ice_like: Archive, tmp_path: Path):
    dates = [("2021-01-12", "01/10/2021", 3), ("2021-02-09", "02/07/2021", 4),
             ("2021-03-10", "03/07/2021", 5)]
    for published, as_of, filled in dates:
        mm, dd, yyyy = as_of.split("/")
        path = workbook(tmp_path / f"FY21_detentionStats{mm}{dd}{yyyy}.xlsx", as_of=as_of,
                        filled=filled)
        ice_like.commit("ds", path, published=published)
    report = audit(ice_like, "ds")
    assert [r["published"] for r in report.releases] == [d[0] for d in dates]
    assert report.findings == []
    # new months were filled in and totals moved: counted, but not as revisions
    assert [r["cells_filled"] for r in report.releases] == [0, 3, 3]
    assert all(r["cells_revised"] == 0 for r in report.releases)
    assert report.releases[-1]["latest_stated"] == "2021-03-07"


# ---------------------------------------------------------------- revisions, outliers


def test_silent_and_announced_revisions_and_an_outlier(archive: Archive, tmp_path: Path):
    def commit(rows, published, message=""):
        path = write_csv(tmp_path / f"bookins-{published}.csv", rows)
        return archive.commit("ds", path, published=published, message=message)

    commit(bookins(3), "2025-01-10")
    r2 = commit(bookins(4, {("Total", "Oct"): 23613}), "2025-02-10")
    r3 = commit(bookins(5, {("Total", "Oct"): 23613, ("Total", "Nov"): 21128}), "2025-03-10",
                "Revised November figures after data cleanup")
    r4 = commit(bookins(5, {("Total", "Oct"): 23613, ("Total", "Nov"): 21128,
                            ("CBP", "Dec"): 10500 * 181}), "2025-04-10")
    report = audit(archive, "ds")
    revisions = of_kind(report, "silent_revision")
    assert [f.snapshot for f in revisions] == [r2.snapshot.id, r3.snapshot.id, r4.snapshot.id]
    first = revisions[0]
    assert first.severity == "warning" and first.evidence["announced"] is False
    assert first.evidence["cells_revised"] == 1
    assert first.evidence["other_snapshot"] == archive.history("ds").entries[0].id
    change = first.evidence["changes"][0]
    assert (change["row"], change["column"], change["old"], change["new"]) == (
        {"Agency": "Total"}, "Oct", "23616", "23613")
    assert change["rel_change"] == pytest.approx(-3 / 23616)
    assert first.evidence["cells_filled"] == 3  # Jan filled in for each agency: not revisions
    second = revisions[1]
    assert second.evidence["announced"] is True and second.severity == "info"
    assert [(c["column"], c["old"], c["new"]) for c in second.evidence["changes"]] == [
        ("Nov", "21129", "21128")]
    outliers = of_kind(report, "outlier_change")
    assert len(outliers) == 1 and outliers[0].snapshot == r4.snapshot.id
    top = outliers[0].evidence["changes"][0]
    assert (top["row"], top["column"], top["old"], top["new"]) == (
        {"Agency": "CBP"}, "Dec", "10500", str(10500 * 181))
    assert top["rel_change"] == pytest.approx(180.0)
    assert outliers[0].severity == "alert"
    # the threshold is tunable: at 20000% the 18000% jump is not an outlier
    strict = audit(archive, "ds", AuditOptions(outlier_threshold=200.0))
    assert of_kind(strict, "outlier_change") == []
    # findings_for_snapshot gives the same findings for one release
    assert kinds(findings_for_snapshot(archive, r4.snapshot)) == [
        "outlier_change", "silent_revision"]
    assert kinds(findings_for_snapshot(archive, archive.snapshot("ds@latest~3"))) == []


# ---------------------------------------------------------------- recycled releases


@pytest.fixture
def facility_history(tmp_path: Path) -> tuple[Archive, list]:
    """Six releases of a facilities list (ADP changes every release), then a
    "2022-09-15" release that carries the 2021-05-13 rows under a new Report Date."""
    arc = Archive.init(tmp_path / "arc")
    arc.add_dataset("fac", keys={"data": ["Name", "City", "State"]})
    dates = ["2021-03-11", "2021-05-13", "2021-07-15", "2021-09-16", "2022-05-12",
             "2022-07-14"]
    results = []
    for seed, published in enumerate(dates):
        path = write_csv(tmp_path / f"fac-{published}.csv",
                         facilities(seed, stamp=published))
        results.append(arc.commit("fac", path, published=published))
    return arc, results


def test_recycled_release_names_the_older_release(facility_history, tmp_path: Path):
    arc, results = facility_history
    clean = audit(arc, "fac")
    assert of_kind(clean, "recycled_release") == []
    assert of_kind(clean, "identical_republish") == []
    recycled = write_csv(tmp_path / "fac-2022-09-15.csv",
                         facilities(1, stamp="2022-09-15"))  # the 2021-05-13 numbers
    new = arc.commit("fac", recycled, published="2022-09-15", message="September release")
    findings = of_kind(findings_for_snapshot(arc, new.snapshot), "recycled_release")
    assert len(findings) == 1
    f = findings[0]
    assert f.severity == "alert" and f.snapshot == new.snapshot.id and f.table == "data"
    assert f.evidence["other_snapshot"] == results[1].snapshot.id
    assert f.evidence["other_published"] == "2021-05-13"
    assert f.evidence["share"] == 1.0 and f.evidence["whole_release"] is True
    table = f.evidence["tables"][0]
    assert table["matched_rows"] == table["rows"] == 10
    assert table["parent_share"] < 0.9
    assert "Report Date" not in table["value_columns"]  # the date column is not a value
    assert "2021-05-13" in f.summary
    # the full audit reports it once, on the new release only
    report = audit(arc, "fac")
    assert [x.snapshot for x in of_kind(report, "recycled_release")] == [new.snapshot.id]


def test_nearly_recycled_release_and_threshold(facility_history, tmp_path: Path):
    arc, results = facility_history
    rows = facilities(1, stamp="2022-09-15")
    rows[0]["ADP"] = 999.5  # one of ten rows differs: 90% identical
    new = arc.commit("fac", write_csv(tmp_path / "near.csv", rows), published="2022-09-15")
    f = of_kind(findings_for_snapshot(arc, new.snapshot), "recycled_release")
    assert len(f) == 1 and f[0].evidence["share"] == pytest.approx(0.9)
    assert f[0].evidence["other_snapshot"] == results[1].snapshot.id
    strict = findings_for_snapshot(arc, new.snapshot, AuditOptions(recycled_share=0.95))
    assert of_kind(strict, "recycled_release") == []


def test_small_revision_of_the_parent_is_not_recycled(facility_history, tmp_path: Path):
    arc, _ = facility_history
    rows = facilities(5, stamp="2022-09-15")
    rows[3]["ADP"] += 1.5
    new = arc.commit("fac", write_csv(tmp_path / "rev.csv", rows), published="2022-09-15")
    found = findings_for_snapshot(arc, new.snapshot)
    assert of_kind(found, "recycled_release") == []
    # a reference list's numbers (a facility's year-to-date ADP) move by design
    assert kinds(found) == []
    config = arc.dataset("fac")
    config.audit = {"tables": {"data": {"role": "period_series"}}}
    config.save(arc.dataset_dir("fac") / "dataset.toml")
    assert kinds(findings_for_snapshot(Archive(arc.root), new.snapshot)) == ["silent_revision"]


def test_identical_republish_same_bytes_and_same_content(archive: Archive, tmp_path: Path):
    first = write_csv(tmp_path / "a.csv", bookins(3))
    archive.commit("ds", first, published="2025-01-10")
    again = archive.commit("ds", first, published="2025-02-10")
    crlf = tmp_path / "b.csv"
    crlf.write_bytes(first.read_bytes().replace(b"\n", b"\r\n"))
    third = archive.commit("ds", crlf, published="2025-03-10")
    report = audit(archive, "ds")
    found = of_kind(report, "identical_republish")
    assert [f.snapshot for f in found] == [again.snapshot.id, third.snapshot.id]
    assert [f.evidence["same_bytes"] for f in found] == [True, False]
    assert found[0].evidence["days_apart"] == 31
    assert of_kind(report, "recycled_release") == []
    # same bytes as an OLDER release (not the parent): that is recycling
    archive.commit("ds", write_csv(tmp_path / "c.csv", bookins(4)), published="2025-04-10")
    back = archive.commit("ds", first, published="2025-05-10")
    rec = of_kind(findings_for_snapshot(archive, back.snapshot), "recycled_release")
    assert len(rec) == 1 and rec[0].evidence["same_bytes"] is True
    assert rec[0].evidence["other_published"] == "2025-01-10"


# ---------------------------------------------------------------- periods


def test_period_mismatch_from_stated_dates_and_file_name(ice_like: Archive, tmp_path: Path):
    ice_like.commit("ds", workbook(tmp_path / "FY21_stats05132021.xlsx", as_of="05/13/2021",
                                   filled=3), published="2021-05-14")
    ice_like.commit("ds", workbook(tmp_path / "FY21_stats06102021.xlsx", as_of="06/10/2021",
                                   filled=4, seed=1), published="2021-06-11")
    # a "September 2022" release that states May 2021 data inside
    stale = workbook(tmp_path / "FY22_stats09152022.xlsx", as_of="05/13/2021", filled=3,
                     seed=2)
    new = ice_like.commit("ds", stale, published="2022-09-15", period="2022-09")
    every = findings_for_snapshot(ice_like, new.snapshot)
    found = of_kind(every, "period_mismatch")
    assert len(found) == 1
    f = found[0]
    assert f.severity == "warning"
    assert f.evidence["latest_stated"]["date"] == "2021-05-13"
    assert f.evidence["latest_stated"]["where"].startswith(("Detention FY21!",
                                                            "Facilities FY21!"))
    problems = {p["problem"]: p for p in f.evidence["problems"]}
    # the date going backwards is reported once, under its own kind, as an alert
    back = of_kind(every, "stated_date_regression")
    assert [b.severity for b in back] == ["alert"]
    # the stated date, and the data itself: its latest filled month went from Jan to Dec
    older = {o["previous_date"]: o for o in back[0].evidence["older"]}
    assert set(older) == {"2021-06-10", "2021-01-31"}
    assert older["2021-01-31"]["date"] == "2020-12-31"
    assert every[0].kind == "stated_date_regression"  # the most significant first
    assert problems["stale_vs_period"]["days"] == (
        datetime.date(2022, 9, 30) - datetime.date(2021, 5, 13)).days
    assert problems["stale_vs_published"]["claimed"] == "2022-09-15"
    assert "file_name_vs_published" not in problems
    # a file name dated long before its publication is flagged on its own
    old_name = workbook(tmp_path / "FY21_stats01252021.xlsx", as_of="07/08/2021", filled=4,
                        seed=3)
    later = ice_like.commit("ds", old_name, published="2022-10-01")
    f2 = of_kind(findings_for_snapshot(ice_like, later.snapshot), "period_mismatch")[0]
    assert f2.severity == "warning"
    assert "file_name_vs_published" in {p["problem"] for p in f2.evidence["problems"]}
    # tolerance is tunable
    lax = findings_for_snapshot(ice_like, later.snapshot, AuditOptions(period_days=1000))
    assert of_kind(lax, "period_mismatch") == []


# ---------------------------------------------------------------- rows, schema, tables


def test_vanished_and_reappeared_rows(archive: Archive, tmp_path: Path, cli):
    arc = Archive.init(tmp_path / "fac")
    arc.add_dataset("fac", keys={"data": ["Name", "City", "State"]})
    arc.commit("fac", write_csv(tmp_path / "1.csv", facilities(0)), published="2025-01-01")
    gone = arc.commit("fac", write_csv(tmp_path / "2.csv", facilities(0, drop=(1, 4))),
                      published="2025-02-01")
    arc.commit("fac", write_csv(tmp_path / "3.csv", facilities(0, drop=(1, 4))),
               published="2025-03-01")
    back = arc.commit("fac", write_csv(tmp_path / "4.csv", facilities(0, drop=(4,))),
                      published="2025-04-01")
    report = audit(arc, "fac")
    vanished = of_kind(report, "vanished_rows")
    assert [f.snapshot for f in vanished] == [gone.snapshot.id]
    assert vanished[0].evidence["count"] == 2
    assert {tuple(e.values()) for e in vanished[0].evidence["examples"]} == {
        ("Adams County Jail", "Hastings", "NE"), ("Krome North SPC", "Miami", "FL")}
    for source in (of_kind(report, "reappeared_rows"),
                   of_kind(findings_for_snapshot(arc, back.snapshot), "reappeared_rows")):
        assert len(source) == 1
        f = source[0]
        assert f.snapshot == back.snapshot.id and f.evidence["count"] == 1
        assert f.evidence["examples"] == [
            {"Name": "Adams County Jail", "City": "Hastings", "State": "NE"}]
        assert f.evidence["vanished_in"][0]["snapshot"] == gone.snapshot.id


def test_schema_changes_and_tables_added_removed(ice_like: Archive, tmp_path: Path):
    ice_like.commit("ds", workbook(tmp_path / "s1.xlsx", as_of="01/10/2021", filled=3),
                    published="2021-01-12")
    added = ice_like.commit("ds", workbook(tmp_path / "s2.xlsx", as_of="02/07/2021", filled=3,
                                           extra_sheet=True), published="2021-02-09")
    removed = ice_like.commit("ds", workbook(tmp_path / "s3.xlsx", as_of="03/07/2021",
                                             filled=3), published="2021-03-10")
    report = audit(ice_like, "ds")
    assert [(f.snapshot, f.table) for f in of_kind(report, "table_added")] == [
        (added.snapshot.id, "monthly_bond_statistics__bonds_set_by_month")]
    assert [(f.snapshot, f.severity) for f in of_kind(report, "table_removed")] == [
        (removed.snapshot.id, "warning")]
    assert of_kind(report, "schema_change") == []

    arc = Archive.init(tmp_path / "schema")
    arc.add_dataset("fac", keys={"data": ["Name", "City", "State"]})
    rows = facilities(0)
    arc.commit("fac", write_csv(tmp_path / "f1.csv", rows), published="2025-01-01")
    renamed = [{"Name": r["Name"], "City": r["City"], "State": r["State"],
                "Average Daily Population": r["ADP"]} for r in rows]
    r2 = arc.commit("fac", write_csv(tmp_path / "f2.csv", renamed), published="2025-02-01")
    scaled = [{**r, "Average Daily Population": round(r["Average Daily Population"] * 100, 2)}
              for r in renamed]
    r3 = arc.commit("fac", write_csv(tmp_path / "f3.csv", scaled), published="2025-03-01")
    report = audit(arc, "fac")
    changes = {f.snapshot: f.evidence["changes"] for f in of_kind(report, "schema_change")}
    assert [(c["change"], c["old"], c["new"]) for c in changes[r2.snapshot.id]] == [
        ("column_renamed", "ADP", "Average Daily Population")]
    unit = changes[r3.snapshot.id]
    assert [(c["change"], c["column"], c["new"]) for c in unit] == [
        ("unit_changed", "Average Daily Population", "x100")]
    # a unit change is one finding, not ten revisions and ten outliers
    assert of_kind(report, "silent_revision") == []
    assert of_kind(report, "outlier_change") == []


# ---------------------------------------------------------------- channels


def test_channel_discrepancy_public_vs_foia(archive: Archive, tmp_path: Path, cli):
    archive.commit("ds", write_csv(tmp_path / "p1.csv", bookins(3)), published="2025-01-10",
                   period="2024-12")
    archive.commit("ds", write_csv(tmp_path / "p2.csv", bookins(4)), published="2025-02-10",
                   period="2025-01")
    foia_rows = bookins(3, {("ICE", "Nov"): 11329 * 181})  # ICE told a FOIA requester otherwise
    foia = archive.commit("ds", write_csv(tmp_path / "f1.csv", foia_rows),
                          published="2025-03-20", period="2024-12", channel="foia")
    alone = audit(archive, "ds")
    assert of_kind(alone, "channel_discrepancy") == []
    report = audit(archive, "ds", AuditOptions(channels=["public", "foia"]))
    found = of_kind(report, "channel_discrepancy")
    assert len(found) == 1
    f = found[0]
    assert f.snapshot == foia.snapshot.id and f.channel == "foia"
    assert f.evidence["matched_by"] == "period"
    assert f.evidence["other_published"] == "2025-01-10"
    # the changed ICE cell and the Total column and row that follow from it
    assert f.evidence["cells_differing"] == 4
    assert f.evidence["max_rel_change"] == pytest.approx(180.0)
    assert f.severity == "alert"
    res = cli("-C", archive.root, "audit", "ds", "--channels", "public,foia", "--json")
    assert res.code == 0
    data = json.loads(res.out)
    assert [x["kind"] for x in data["findings"] if x["kind"] == "channel_discrepancy"] == [
        "channel_discrepancy"]
    assert cli("-C", archive.root, "audit", "ds", "--channels", "public,nope").code == 2


# ---------------------------------------------------------------- CLI


def test_cli_json_on_every_path(tmp_path: Path, cli):
    arc = Archive.init(tmp_path / "arc")
    res = cli("-C", arc.root, "audit", "nothing", "--json")
    assert res.code == 2
    assert "unknown dataset" in json.loads(res.out)["error"]
    arc.add_dataset("ds")
    empty = json.loads(cli("-C", arc.root, "audit", "ds", "--json").out)
    assert empty["releases"] == [] and empty["findings"] == []
    assert empty["counts"]["findings"] == 0
    arc.commit("ds", write_csv(tmp_path / "a.csv", bookins(3)), published="2025-01-10")
    one = cli("-C", arc.root, "audit", "ds", "--json")
    assert one.code == 0
    data = json.loads(one.out)
    assert len(data["releases"]) == 1 and data["findings"] == []
    arc.commit("ds", write_csv(tmp_path / "b.csv", bookins(4, {("CBP", "Oct"): 100})),
               published="2025-02-10")
    data = json.loads(cli("-C", arc.root, "audit", "ds", "--json").out)
    assert {f["kind"] for f in data["findings"]} == {"silent_revision", "outlier_change"}
    finding = data["findings"][0]
    assert set(finding) >= {"kind", "snapshot", "published", "table", "severity", "summary",
                            "evidence"}
    since = json.loads(cli("-C", arc.root, "audit", "ds", "--json", "--since",
                           "2025-02-01").out)
    assert [r["published"] for r in since["releases"]] == ["2025-02-10"]
    assert len(since["findings"]) == 2
    raised = json.loads(cli("-C", arc.root, "audit", "ds", "--json", "--threshold",
                            "1000000").out)
    assert {f["kind"] for f in raised["findings"]} == {"silent_revision"}
    text = cli("-C", arc.root, "audit", "ds")
    assert text.code == 0 and "WARNING silent_revision" in text.out
    assert max(len(line) for line in text.out.splitlines()) <= 80
    assert cli("-C", arc.root, "audit", "ds", "--since", "last week").code == 2
    html, md = tmp_path / "r.html", tmp_path / "r.md"
    res = cli("-C", arc.root, "audit", "ds", "--html", html, "--md", md)
    assert res.code == 0 and "wrote" in res.err
    assert "<svg" in html.read_text() and "outlier change" in md.read_text()


# ---------------------------------------------------------------- the real FY25 releases


@pytest.fixture(scope="module")
def ice_archive(_six_releases: Path, tmp_path_factory: pytest.TempPathFactory) -> Archive:
    return six_releases(_six_releases, tmp_path_factory)


def _bookins_changes(findings) -> list[tuple[str, str, str, str]]:
    out = []
    for f in findings:
        if f.kind == "silent_revision" and f.table and "book_ins" in f.table and \
                "agency" in f.table:
            for c in f.evidence["changes"]:
                if "Total" in json.dumps(c.get("row", {})):
                    out.append((f.published, c["column"], c["old"], c["new"]))
    return out


def test_ice_fy25_releases(ice_archive: Archive):
    report = audit(ice_archive, "ice-detention-stats")  # its speed: bench/audit_bench.py
    assert len(report.releases) == 6
    assert of_kind(report, "recycled_release") == []
    assert of_kind(report, "identical_republish") == []
    assert of_kind(report, "period_mismatch") == []
    revised = {f.published for f in of_kind(report, "silent_revision")}
    assert revised == {ice_published(p) for p in ICE_RELEASES[1:]}
    changes = _bookins_changes(report.findings)
    oct_ = [c for c in changes if c[1].startswith("Oct")]
    nov = [c for c in changes if c[1].startswith("Nov")]
    assert ("2025-08-01", "23616", "23613") in [(p, o, n) for p, _, o, n in oct_]
    assert [(o, n) for _, _, o, n in sorted(nov)] == [
        ("21129", "21128"), ("21128", "21127"), ("21127", "21123")]
    # per-release findings agree with the full audit
    latest = ice_archive.snapshot("ice-detention-stats@latest")
    mine = findings_for_snapshot(ice_archive, latest)
    assert {f.kind for f in mine} == {f.kind for f in report.findings
                                      if f.snapshot == latest.id}


def test_open_period_growing_is_not_a_revision(archive: Archive, tmp_path: Path):
    """The parent's last reported month was still being counted (data as of mid-month):
    it growing, and the totals moving with it, is not a revision; an older month is."""
    archive.commit("ds", write_csv(tmp_path / "a.csv", bookins(3)), published="2025-01-10")
    archive.commit("ds", write_csv(tmp_path / "b.csv", bookins(3, {("CBP", "Dec"): 10600})),
                   published="2025-01-20")
    report = audit(archive, "ds")
    assert report.findings == []
    archive.commit("ds", write_csv(tmp_path / "c.csv", bookins(3, {("CBP", "Dec"): 10600,
                                                                  ("CBP", "Nov"): 9790})),
                   published="2025-01-30")
    revised = of_kind(audit(archive, "ds"), "silent_revision")
    assert len(revised) == 1
    ev = revised[0].evidence
    # CBP Nov and the Total row's Nov are revisions; the FY totals moved with them
    assert sorted((c["row"]["Agency"], c["column"]) for c in ev["changes"]) == [
        ("CBP", "Nov"), ("CBP", "Total"), ("Total", "Nov"), ("Total", "Total")]
