"""The permanent record (README "Dates, refs and the permanent record"): no release is
dated by accident, false entries are retracted rather than deleted, unreadable
publications are kept as evidence, and what the archive prints keeps the data's
values, dates and times."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import archive_state, write_csv

from atdarchive import Archive
from atdarchive.audit import claimed_dates
from atdarchive.dates import resolve_published
from atdarchive.pinning import RetractedWarning

CONFLICT = "<<<<<<< HEAD\nk,v\n1,2\n=======\nk,v\n1,3\n>>>>>>> fix\n"


def one_error(result, *words: str) -> str:
    """The command failed with exactly one line naming every word."""
    lines = result.err.strip().splitlines()
    assert result.code != 0 and len(lines) == 1 and lines[0].startswith("error: "), result.err
    assert all(w in lines[0] for w in words), lines[0]
    return lines[0]


# ------------------------------------------------------------------ where dates come from


def test_published_is_required_unless_derived(archive: Archive, tmp_path: Path, cli) -> None:
    before = archive_state(archive.root)
    plain = write_csv(tmp_path / "data.csv", [{"k": 1, "v": 1}])
    one_error(cli("-C", archive.root, "commit", "ds", plain), "data.csv", "--published")
    assert archive_state(archive.root) == before  # no release dated today by default

    named = write_csv(tmp_path / "FY25_detentionStats08292025.csv", [{"k": 1, "v": 2}])
    result = cli("-C", archive.root, "commit", "ds", named)
    assert result.code == 0 and "date: from the file name" in result.out
    record = archive.snapshot("ds@latest").record
    assert (record["published"], record["published_source"]) == ("2025-08-29", "file_name")
    assert "file_name" not in claimed_dates(record)  # not a second witness of itself

    now = cli("-C", archive.root, "commit", "ds", plain, "--published", "now")
    assert now.code == 0 and "moment of capture" in now.out
    record = archive.snapshot("ds@latest").record
    assert record["published_source"] == "now" and "T" in record["published"]

    given = cli("-C", archive.root, "commit", "ds",
                write_csv(tmp_path / "stats_01222020.csv", [{"k": 1, "v": 3}]),
                "--published", "2020-02-03")
    assert given.code == 0 and "date:" not in given.out
    record = archive.history("ds").resolve("2020-02-03").record
    assert record["published_source"] == "given"
    assert claimed_dates(record)["file_name"] == "2020-01-22"  # still checked by the audit

    when, source = resolve_published(
        None, "x.csv", {"last_modified": "Tue, 01 Jul 2025 12:00:00 GMT"})
    assert (when.text, source) == ("2025-07-01T12:00:00Z", "last_modified")


def test_a_retracted_duplicate_may_be_archived_again(archive: Archive, tmp_path: Path,
                                                     cli) -> None:
    src = write_csv(tmp_path / "a.csv", [{"k": 1, "v": 1}])
    args = ("-C", archive.root, "commit", "ds", src, "--published", "2025-09-12T18:21:41")
    assert cli(*args).code == 0
    one_error(cli("-C", archive.root, "commit", "ds", src, "--published", "2025-09-12"),
              "already archived as ds@")
    assert cli("-C", archive.root, "retract", "ds@latest", "--reason", "wrong channel").code == 0
    assert cli(*args).code == 0


# ------------------------------------------------------------------ retract and annotate


@pytest.fixture
def three(archive: Archive, tmp_path: Path) -> Archive:
    """Three releases of one table, the middle one the false entry; its column is a
    period's (so that a change is a revision)."""
    config = archive.dataset_dir("ds") / "dataset.toml"
    config.write_text(config.read_text() + '\n[audit.tables.data]\nrole = "period_series"\n')
    for day, value in (("2025-01-01", 10), ("2025-02-01", 999), ("2025-03-01", 12)):
        archive.commit("ds", write_csv(tmp_path / f"{day}.csv",
                                       [{"k": "a", "v": value}, {"k": "b", "v": 5}]),
                       published=day)
    return archive


def test_retract_keeps_the_snapshot_but_history_views_skip_it(three: Archive, tmp_path: Path,
                                                              cli) -> None:
    root = three.root
    false = three.snapshot("ds@2025-02-01")
    three.pin("ds@2025-02-01", tmp_path / "paper.lock")
    one_error(cli("-C", root, "retract", "ds@2025-02-01"), "--reason")
    result = cli("-C", root, "retract", "ds@2025-02-01", "--reason", "the draft, not the release")
    assert result.code == 0, result.err
    one_error(cli("-C", root, "retract", f"ds@{false.short_id}", "--reason", "again"),
              "already retracted")

    oneline = cli("-C", root, "log", "--oneline").out.splitlines()
    assert [line.split()[0] for line in oneline] == [
        three.snapshot("ds@2025-03-01").short_id, false.short_id,
        three.snapshot("ds@2025-01-01").short_id]
    assert "[retracted] the draft, not the release" in oneline[1]
    log = json.loads(cli("-C", root, "log", "--json").out)
    assert log[1]["retracted"]["reason"] == "the draft, not the release"
    assert log[0]["parent"] == log[2]["id"]  # the next release follows the one before it
    assert len(json.loads(cli("-C", root, "log", "--json", "--hide-retracted").out)) == 2

    assert three.snapshot("ds@2025-02-15").published == "2025-01-01"  # date refs skip it
    assert three.snapshot("ds@latest~1").published == "2025-01-01"
    diff = json.loads(cli("-C", root, "diff", "ds@latest", "--format", "json").out)
    assert diff["a"] == three.snapshot("ds@2025-01-01").id
    assert [c["old"] for c in diff["tables"]["data"]["cells_changed"]] == ["10"]
    blame = json.loads(cli("-C", root, "blame", "ds@latest", "--json").out)
    assert false.id not in {c["snapshot"] for c in blame["cells"]}
    audit = json.loads(cli("-C", root, "audit", "ds", "--json").out)
    assert false.id not in {r["id"] for r in audit["releases"]}
    wide = json.loads(cli("-C", root, "audit", "ds", "--json", "--include-retracted").out)
    assert false.id in {r["id"] for r in wide["releases"]}

    released = three.sql("SELECT snapshot, retracted FROM releases ORDER BY published")
    assert released.column("retracted").to_pylist() == [False, True, False]
    by_id = cli("-C", root, "show", f"ds@{false.short_id}")  # an id still resolves
    assert by_id.code == 0 and "was retracted" in by_id.err
    with pytest.warns(RetractedWarning, match="the draft"):
        assert three.load_pinned("ds", tmp_path / "paper.lock").id == false.id
    assert cli("-C", root, "verify", "ds").code == 0


def test_an_annotation_announces_revisions(three: Archive, cli) -> None:
    def revision_severity() -> str:
        audit = json.loads(cli("-C", three.root, "audit", "ds", "--json").out)
        return next(f["severity"] for f in audit["findings"]
                    if f["kind"] == "silent_revision" and f["published"] == "2025-03-01")

    assert revision_severity() == "warning"
    result = cli("-C", three.root, "annotate", "ds@2025-03-01", "--announces-revision",
                 "--note", "ICE notice: February figures corrected")
    assert result.code == 0, result.err
    assert revision_severity() == "info"
    text = " ".join(cli("-C", three.root, "log").out.split())  # wrapped to 80 columns
    assert "agency's notice of a revision" in text and "February figures corrected" in text
    one_error(cli("-C", three.root, "annotate", "ds@latest", "--note", "  "), "--note")
    assert cli("-C", three.root, "verify", "ds").code == 0


# ------------------------------------------------------------------ evidence only, JSON


def test_keep_unparsed_archives_evidence_only(archive: Archive, tmp_path: Path, cli) -> None:
    root = archive.root
    good = archive.commit("ds", write_csv(tmp_path / "ok.csv", [{"k": 1, "v": 2}]),
                          published="2025-01-01").snapshot
    broken = tmp_path / "facilities.csv"
    broken.write_text(CONFLICT)
    for extra in ((), ("--format", "csv")):
        one_error(cli("-C", root, "commit", "ds", broken, "--published", "2025-02-01", *extra),
                  "merge-conflict markers", "line 1")
    result = cli("-C", root, "commit", "ds", broken, "--published", "2025-02-01",
                 "--keep-unparsed")
    assert result.code == 0 and "evidence only" in result.out
    kept = json.loads(cli("-C", root, "log", "--json").out)[0]
    assert kept["tables"] == {} and "merge-conflict" in kept["parse_error"]
    # it was published: refs reach it; commands that need tables say it has none
    assert archive.snapshot("ds@latest").id == archive.snapshot("ds").id == kept["id"]
    assert archive.snapshot("ds@latest~1").id == good.id
    assert archive.snapshot("ds@2025-02-01").id == kept["id"]
    for args in (("diff", "ds"), ("blame", "ds"), ("export", "ds@latest", "-o",
                                                  tmp_path / "t.csv")):
        one_error(cli("-C", root, *args), f"ds@{kept['id'][:10]}", "evidence only")
    later = archive.commit("ds", write_csv(tmp_path / "ok2.csv", [{"k": 1, "v": 3}]),
                           published="2025-03-01")
    assert later.parent is not None and later.parent.id == good.id  # a data release's parent
    out = tmp_path / "served.csv"
    assert cli("-C", root, "export", f"ds@{kept['id'][:10]}", "--original", "-o", out).code == 0
    assert out.read_bytes() == broken.read_bytes()
    audit = json.loads(cli("-C", root, "audit", "ds", "--json").out)
    assert [f["snapshot"] for f in audit["findings"] if f["kind"] == "unparsed_release"] == [
        kept["id"]]
    assert "evidence only" in cli("-C", root, "tables", f"ds@{kept['id'][:10]}").out
    assert cli("-C", root, "verify", "ds").code == 0


def test_json_records_inside_wrappers(archive: Archive, tmp_path: Path, cli) -> None:
    root = archive.root
    doc = tmp_path / "facilities.json"
    doc.write_text(json.dumps({"metadata": {"scraped": "2025-06-01"},
                               "facilities": [{"name": "A", "beds": 3},
                                              {"name": "B", "beds": 4}]}))
    assert cli("-C", root, "commit", "ds", doc, "--published", "2025-06-01").code == 0
    snap = archive.snapshot("ds@latest")
    assert snap.record["json_path"] == "facilities"
    assert snap.table("data").to_pylist() == [{"name": "A", "beds": 3}, {"name": "B", "beds": 4}]
    assert snap.original_path.read_bytes() == doc.read_bytes()  # the captured bytes

    two = tmp_path / "two.json"
    two.write_text(json.dumps({"a": [{"x": 1}], "b": {"c": [{"y": 2}]}}))
    one_error(cli("-C", root, "commit", "ds", two, "--published", "2025-06-02"),
              "a, b.c", "--json-path")
    one_error(cli("-C", root, "commit", "ds", two, "--published", "2025-06-02",
                  "--json-path", "b.d"), "'d'", "a, b.c")
    none = tmp_path / "none.json"
    none.write_text(json.dumps({"count": 3, "note": "x"}))
    one_error(cli("-C", root, "commit", "ds", none, "--published", "2025-06-02"),
              "keys found: 'count', 'note'")
    assert cli("-C", root, "commit", "ds", two, "--published", "2025-06-02",
               "--json-path", "b.c").code == 0
    assert archive.snapshot("ds@latest").table("data").to_pylist() == [{"y": 2}]
    assert cli("-C", root, "verify", "ds").code == 0  # re-read with the recorded path


# ------------------------------------------------------------------ date-times and data dates


def test_date_time_refs_and_times_where_a_day_is_shared(archive: Archive, tmp_path: Path,
                                                        cli) -> None:
    ids = {}
    for when, v in (("2020-12-22T09:00", 1), ("2020-12-22T12:30", 2), ("2020-12-22T18:00", 3),
                    ("2020-12-23", 4)):
        ids[when] = archive.commit("ds", write_csv(tmp_path / f"{v}.csv", [{"k": "a", "v": v}]),
                                   published=when).snapshot.short_id
    for ref, expected in (("2020-12-22T13:00", "2020-12-22T12:30"),
                          ("public:2020-12-22T13:00", "2020-12-22T12:30"),
                          ("2020-12-22T18:00:00Z", "2020-12-22T18:00"),
                          ("2020-12-22", "2020-12-22T18:00")):
        shown = cli("-C", archive.root, "show", f"ds@{ref}", "--json")
        assert shown.code == 0, shown.err
        assert json.loads(shown.out)["id"].startswith(ids[expected]), ref
    one_error(cli("-C", archive.root, "show", "ds@2020-12-22T08:00"), "nothing was published")
    oneline = cli("-C", archive.root, "log", "--oneline").out
    assert "2020-12-22 12:30" in oneline and "2020-12-23 " in oneline
    history = cli("-C", archive.root, "history", "ds", "--row", "k=a", "--column", "v").out
    assert "2020-12-22 09:00" in history and "2020-12-22 18:00" in history


def test_a_data_date_that_goes_back_is_a_finding(archive: Archive, tmp_path: Path,
                                                 cli) -> None:
    rows = [{"date_of_interest": f"12/0{d}/2020", "CASE_COUNT": d} for d in (7, 8, 9)]
    archive.commit("ds", write_csv(tmp_path / "a.csv", rows), published="2020-12-10")
    archive.commit("ds", write_csv(tmp_path / "b.csv", rows[:1]), published="2020-12-11")
    audit = json.loads(cli("-C", archive.root, "audit", "ds", "--json").out)
    found = [f for f in audit["findings"] if f["kind"] == "stated_date_regression"]
    assert len(found) == 1 and found[0]["severity"] == "alert"
    older = found[0]["evidence"]["older"][0]
    assert (older["date"], older["previous_date"]) == ("2020-12-07", "2020-12-09")
    assert older["text"] == "latest date_of_interest"


# ------------------------------------------------------------------ history, export, commit


def test_history_text_json_and_absences(archive: Archive, tmp_path: Path, cli) -> None:
    long = "x" * 150
    archive.commit("ds", write_csv(tmp_path / "a.csv", [{"k": "a", "n": 21129, "t": long}]),
                   published="2025-01-01")
    archive.commit("ds", write_csv(tmp_path / "b.csv", [{"k": "a", "n": 21128, "t": long}]),
                   published="2025-02-01")
    archive.commit("ds", write_csv(tmp_path / "c.csv", [{"k": "a", "t": long}]),
                   published="2025-03-01")
    root = archive.root
    text = cli("-C", root, "history", "ds", "--row", "k=a", "--column", "t").out  # no --table
    assert long in text  # into a pipe or file, nothing is cut
    cell = json.loads(cli("-C", root, "history", "ds", "--row", "k=a", "--column", "n",
                          "--json").out)
    assert [(r["status"], r["value"], r["previous"]) for r in cell] == [
        ("first", 21129, None), ("changed", 21128, 21129), ("absent", None, 21128)]
    assert cell[2]["absent"] == "column"
    rows = cli("-C", root, "history", "ds", "--row", "k=a").out
    assert "n: 21128 → (column absent)" in rows
    one_error(cli("-C", root, "history", "ds", "--row", "k=zz"), "no row k=zz")


def test_export_refuses_to_overwrite_and_commit_names_a_directory(archive: Archive,
                                                                  tmp_path: Path, cli) -> None:
    archive.commit("ds", write_csv(tmp_path / "a.csv", [{"k": 1}]), published="2025-01-01")
    out = tmp_path / "mine.csv"
    out.write_text("a researcher's own file\n")
    one_error(cli("-C", archive.root, "export", "ds", "-o", out), "already exists", "--force")
    assert out.read_text() == "a researcher's own file\n"
    assert cli("-C", archive.root, "export", "ds", "-o", out, "--force").code == 0
    assert out.read_text().startswith('"k"')
    folder = tmp_path / "releases"
    folder.mkdir()
    one_error(cli("-C", archive.root, "commit", "ds", folder, "--published", "2025-02-01"),
              "is a directory")


# ------------------------------------------------------------------ reports


def test_reports_show_numbers_titles_and_key_columns(three: Archive, tmp_path: Path,
                                                     cli) -> None:
    from atdarchive.util import number

    assert [number(v) for v in (-60980.0, 21129, 1234.5678, 0.12345)] == [
        "-60,980", "21,129", "1,234.57", "0.1235"]
    root = three.root
    cli("-C", root, "audit", "ds", "--html", tmp_path / "audit.html")
    page = (tmp_path / "audit.html").read_text()
    assert "e+0" not in page and "+989" in page  # the 10 -> 999 change, as an integer
    assert "max-width:1120px" not in page
    cli("-C", root, "diff", "ds@2025-01-01", "ds@2025-03-01", "--format", "html",
        "-o", tmp_path / "d.html")
    a, b = three.snapshot("ds@2025-01-01"), three.snapshot("ds@2025-03-01")
    title = f"ds: 2025-01-01 ({a.short_id}) → 2025-03-01 ({b.short_id})"
    assert f"<title>{title}</title>" in (tmp_path / "d.html").read_text()
    csv = cli("-C", root, "diff", "ds@2025-01-01", "ds@2025-03-01", "--format", "csv").out
    header, first = csv.splitlines()[:2]
    assert header.split(",")[:4] == ['"table"', '"change"', '"key"', '"k"']
    assert first.split(",")[3] == '"a"'
