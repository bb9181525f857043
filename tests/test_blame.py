"""Blame, history and the blame index: attribution, backfills, format-only changes,
gaps, keyless tables, the CLI, and the six real ICE FY25 releases."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pytest
from conftest import ICE_RELEASES, ice_published, six_releases, write_csv, write_parquet

from atdarchive import Archive
from atdarchive import blame as blame_mod
from atdarchive.blame import blame, by_row, history, reindex, update_index
from atdarchive.errors import AtdError

BOOK_INS = "detention__ice_initial_book_ins_by_arresting_agency_and_month"


def commit_rows(archive: Archive, tmp_path: Path, rows: list[dict], published: str,
                **kw) -> str:
    path = write_csv(tmp_path / f"r-{published}-{len(os.listdir(tmp_path))}.csv", rows)
    return archive.commit("ds", path, published=published, **kw).snapshot.id


def commit_table(archive: Archive, tmp_path: Path, table: pa.Table, published: str) -> str:
    path = write_parquet(tmp_path / f"t-{published}.parquet", table)
    return archive.commit("ds", path, published=published).snapshot.id


def cells(table: pa.Table) -> dict[tuple[str, str], dict]:
    """(key text, column) -> blame record, for keyed test tables with key `k`."""
    return {(str(r["k"]), r["column"]): r for r in table.to_pylist()}


def test_blame_attributes_each_cell_to_the_release_that_set_it(archive, tmp_path):
    s1 = commit_rows(archive, tmp_path, [{"k": "a", "x": 1, "y": 10},
                                         {"k": "b", "x": 2, "y": 20}], "2024-01-01")
    s2 = commit_rows(archive, tmp_path, [{"k": "a", "x": 1, "y": 11},
                                         {"k": "b", "x": 2, "y": 20},
                                         {"k": "c", "x": 3, "y": 30}], "2024-02-01")
    s3 = commit_rows(archive, tmp_path, [{"k": "a", "x": 1, "y": 12},
                                         {"k": "b", "x": 5, "y": 20},
                                         {"k": "c", "x": 3, "y": 30}], "2024-03-01")
    result = blame(archive, "ds@latest")
    meta = json.loads(result.schema.metadata[b"atdarchive.blame"])
    assert meta["key"] == ["k"] and meta["key_source"] == "inferred"
    assert result.num_rows == 9
    assert result.column("row").to_pylist() == [0, 1, 2] * 3
    assert result.column("column").to_pylist() == ["k"] * 3 + ["x"] * 3 + ["y"] * 3
    by = cells(result)
    ay = by[("a", "y")]
    assert (ay["value"], ay["snapshot"], ay["previous"], ay["revisions"]) == ("12", s3, "11", 2)
    assert ay["published"] == "2024-03-01" and ay["short_id"] == s3[:10]
    assert ay["original_name"].endswith(".csv") and ay["channel"] == "public"
    assert ay["source_cell"] == "C2"  # CSV: column C, line 2 of the release it came from
    ax = by[("a", "x")]
    assert (ax["snapshot"], ax["previous"], ax["revisions"]) == (s1, None, 0)
    assert by[("b", "x")]["snapshot"] == s3 and by[("b", "x")]["previous"] == "2"
    assert by[("c", "y")]["snapshot"] == s2 and by[("c", "y")]["previous"] is None
    assert by[("a", "x")]["row_first_seen"] == s1 and by[("a", "x")]["row_last_changed"] == s3
    assert by[("c", "x")]["row_first_seen"] == s2 and by[("c", "x")]["row_last_changed"] == s2
    # an older ref: the blame as it stood then
    older = cells(blame(archive, "ds@latest~1"))
    assert older[("a", "y")]["snapshot"] == s2 and older[("a", "y")]["revisions"] == 1
    assert ("b", "x") in older and older[("b", "x")]["value"] == "2"
    # filters
    only = blame(archive, "ds@latest", rows={"k": "b"}, columns=["x"])
    assert only.to_pylist()[0]["value"] == "5" and only.num_rows == 1
    # --as-of: the release in force that day, counting only what was published by then
    as_of = cells(blame(archive, "ds@latest", as_of="2024-02-15"))
    assert as_of[("a", "y")]["snapshot"] == s2 and as_of[("b", "x")]["snapshot"] == s1


def test_backfill_changes_blame_of_newer_releases(archive, tmp_path):
    jan = commit_rows(archive, tmp_path, [{"k": "a", "v": 1}, {"k": "b", "v": 5}], "2024-01-01")
    mar = commit_rows(archive, tmp_path, [{"k": "a", "v": 2}, {"k": "b", "v": 5}], "2024-03-01")
    before = cells(blame(archive, "ds@latest"))
    assert before[("a", "v")]["snapshot"] == mar and before[("a", "v")]["previous"] == "1"
    assert before[("b", "v")]["snapshot"] == jan
    # recovered later from a web archive: February already had a=2, and b=6 for a while
    feb = commit_rows(archive, tmp_path, [{"k": "a", "v": 2}, {"k": "b", "v": 6}],
                      "2024-02-01")
    update_index(archive, archive.snapshot(f"ds@{feb[:10]}"))
    after = cells(blame(archive, "ds@latest"))
    assert after[("a", "v")]["snapshot"] == feb and after[("a", "v")]["previous"] == "1"
    assert after[("a", "v")]["revisions"] == 1
    assert after[("b", "v")]["snapshot"] == mar and after[("b", "v")]["previous"] == "6"
    assert after[("b", "v")]["revisions"] == 2
    # the same answer from scratch
    reindex(archive, "ds")
    assert cells(blame(archive, "ds@latest")) == after


def test_type_or_format_change_is_not_a_revision_unless_strict(archive, tmp_path):
    first = commit_table(archive, tmp_path, pa.table({
        "k": ["Total ", "CBP"], "n": pa.array([1, 2], pa.int64()), "s": ["12", "x"]}),
        "2024-01-01")
    second = commit_table(archive, tmp_path, pa.table({
        "k": ["Total", "CBP"], "n": pa.array([1.0, 3.0]), "s": ["12", "x"]}), "2024-02-01")
    third = commit_table(archive, tmp_path, pa.table({
        "k": ["Total", "CBP"], "n": pa.array([1.0, 3.0]), "s": pa.array([12, None])}),
        "2024-03-01")
    loose = cells(blame(archive, "ds@latest"))
    assert loose[("Total", "k")]["snapshot"] == first  # trailing space dropped: same label
    assert loose[("Total", "n")]["snapshot"] == first  # 1 -> 1.0
    assert loose[("Total", "n")]["revisions"] == 0
    assert loose[("Total", "s")]["snapshot"] == first  # "12" -> 12
    assert loose[("Total", "s")]["value"] == "12"
    assert loose[("CBP", "n")]["snapshot"] == second and loose[("CBP", "n")]["previous"] == "2"
    assert loose[("CBP", "s")]["snapshot"] == third  # "x" -> null is a real change
    strict = cells(blame(archive, "ds@latest", strict=True))
    assert strict[("Total", "k")]["snapshot"] == second
    assert strict[("Total", "k")]["previous"] == "Total "
    assert strict[("Total", "n")]["snapshot"] == second
    assert strict[("Total", "s")]["snapshot"] == third and strict[("Total", "s")]["revisions"] == 1
    assert json.loads(blame(archive, "ds@latest", strict=True).schema.metadata[
        b"atdarchive.blame"])["strict"] is True


def test_rows_that_vanish_and_reappear_keep_their_history(archive, tmp_path):
    s1 = commit_rows(archive, tmp_path, [{"k": "a", "v": 1}, {"k": "b", "v": 7}], "2024-01-01")
    s2 = commit_rows(archive, tmp_path, [{"k": "a", "v": 1}], "2024-02-01")
    s3 = commit_rows(archive, tmp_path, [{"k": "b", "v": 7}, {"k": "a", "v": 2}], "2024-03-01")
    s4 = commit_rows(archive, tmp_path, [{"k": "b", "v": 8}, {"k": "a", "v": 2}], "2024-04-01")
    by = cells(blame(archive, "ds@latest~1"))
    assert by[("b", "v")]["snapshot"] == s1  # unchanged across the gap
    assert by[("b", "v")]["row_first_seen"] == s1
    assert blame(archive, "ds@latest~1", rows={"k": "b"}).column("row").to_pylist()[0] == 0
    assert cells(blame(archive, "ds@latest"))[("b", "v")]["previous"] == "7"
    hist = history(archive, "ds", table="data", row={"k": "b"}, column="v").to_pylist()
    assert [h["status"] for h in hist] == ["first", "absent", "reappeared", "changed"]
    assert [h["snapshot"] for h in hist] == [s1, s2, s3, s4]
    assert [h["value"] for h in hist] == ["7", None, "7", "8"]
    assert hist[3]["previous"] == "7" and hist[0]["previous"] is None
    assert hist[3]["source_cell"] == "B2"
    row = history(archive, "ds", table="data", row={"k": "a"}).to_pylist()
    assert [h["status"] for h in row] == ["first", "unchanged", "changed", "unchanged"]
    assert row[2]["changes"] == [{"column": "v", "old": "1", "new": "2", "absent": False}]
    assert [h["absent"] for h in hist] == [None, "row", None, None]


def test_history_marks_republished_identical_bytes(archive, tmp_path):
    path = write_csv(tmp_path / "same.csv", [{"k": "a", "v": 1}])
    archive.commit("ds", path, published="2024-01-01")
    archive.commit("ds", path, published="2024-02-01")
    commit_rows(archive, tmp_path, [{"k": "a", "v": 1}, {"k": "b", "v": 2}], "2024-03-01")
    hist = history(archive, "ds", table="data", row={"k": "a"}, column="v").to_pylist()
    assert [h["status"] for h in hist] == ["first", "republished", "unchanged"]


def test_keyless_table_changed_row_is_removed_plus_added(archive, tmp_path):
    rows = [{"a": 1, "b": 1}, {"a": 1, "b": 1}, {"a": 2, "b": 2}]
    s1 = commit_rows(archive, tmp_path, rows, "2024-01-01")
    s2 = commit_rows(archive, tmp_path, rows[:2] + [{"a": 2, "b": 3}], "2024-02-01")
    result = blame(archive, "ds@latest")
    meta = json.loads(result.schema.metadata[b"atdarchive.blame"])
    assert meta["key"] is None
    got = [(r["row"], r["column"], r["snapshot"], r["previous"])
           for r in by_row(result).to_pylist()]
    assert got == [(0, "a", s1, None), (0, "b", s1, None), (1, "a", s1, None),
                   (1, "b", s1, None), (2, "a", s2, None), (2, "b", s2, None)]


def test_a_repeated_key_costs_only_its_rows(archive, tmp_path):
    s1 = commit_rows(archive, tmp_path, [{"k": "a", "v": 1}, {"k": "a", "v": 2},
                                         {"k": "c", "v": 3}], "2024-01-01")
    s2 = commit_rows(archive, tmp_path, [{"k": "a", "v": 1}, {"k": "b", "v": 2},
                                         {"k": "c", "v": 4}], "2024-02-01")
    result = blame(archive, "ds@latest")
    meta = json.loads(result.schema.metadata[b"atdarchive.blame"])
    assert meta["key"] == ["k"] and not any("keyless" in n for n in archive.notices)
    got = {(r["k"], r["column"]): (r["snapshot"], r["previous"]) for r in result.to_pylist()}
    # ('a', 1) matched by content among the two 'a' rows; 'c' by key, its value revised
    assert got[("a", "v")] == (s1, None) and got[("b", "v")] == (s2, None)
    assert got[("c", "v")] == (s2, "3")


def test_declared_key_missing_from_a_release_is_a_clear_error(archive, tmp_path, cli):
    commit_rows(archive, tmp_path, [{"k": "a", "v": 1}], "2024-01-01")
    commit_rows(archive, tmp_path, [{"k": "a", "v": 2}], "2024-02-01")
    config = archive.dataset("ds")
    config.keys["data"] = ["kk"]
    config.save(archive.dataset_dir("ds") / "dataset.toml")
    with pytest.raises(AtdError, match="declared key column 'kk' not in table 'data'.*"
                                       "did you mean 'k'"):
        blame(archive, "ds@latest")
    diff = cli("-C", archive.root, "diff", "ds", "--table", "data")
    blamed = cli("-C", archive.root, "blame", "ds@latest")
    for res in (diff, blamed):
        assert res.code != 0 and "declared key column 'kk' not in table 'data'" in res.err
        assert len(res.err.strip().splitlines()) == 1


def test_inferred_key_missing_from_an_old_release_falls_back_to_whole_rows(archive, tmp_path):
    commit_rows(archive, tmp_path, [{"x": "a", "v": 1}], "2024-01-01")
    s2 = commit_rows(archive, tmp_path, [{"k": "a", "v": 1}, {"k": "b", "v": 2}], "2024-02-01")
    result = blame(archive, "ds@latest")
    meta = json.loads(result.schema.metadata[b"atdarchive.blame"])
    assert meta["key"] is None and "missing" in meta["key_source"]
    assert any("keyless" in n for n in archive.notices)
    # whole-row identity: no row of the latest is a row of the first release
    assert {r["snapshot"] for r in result.to_pylist()} == {s2}


def test_index_is_read_not_rebuilt_and_goes_stale_on_backfill(archive, tmp_path, monkeypatch):
    commit_rows(archive, tmp_path, [{"k": "a", "v": 1}], "2024-01-01")
    s2 = commit_rows(archive, tmp_path, [{"k": "a", "v": 2}], "2024-03-01")
    assert update_index(archive, archive.snapshot("ds@latest")) == ["data"]
    index_dir = archive.store.state / "derived" / "blame" / "ds" / "public" / "data" / "normal"
    assert len(list(index_dir.glob("state-*.arrow"))) == 1
    calls = []
    real = blame_mod._advance
    monkeypatch.setattr(blame_mod, "_advance", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert cells(blame(archive, "ds@latest"))[("a", "v")]["snapshot"] == s2
    assert calls == []  # one read of the index, no replay
    s0 = commit_rows(archive, tmp_path, [{"k": "a", "v": 2}], "2023-12-01")  # backfill first
    result = cells(blame(archive, "ds@latest"))
    assert len(calls) == 3  # the whole prefix changed: replayed from scratch
    assert result[("a", "v")]["revisions"] == 2 and result[("a", "v")]["snapshot"] == s2
    assert cells(blame(archive, f"ds@{s0[:10]}"))[("a", "v")]["snapshot"] == s0


def test_blame_cli_views(archive, tmp_path, cli):
    commit_rows(archive, tmp_path, [{"k": "Total", "Oct": 5, "Nov": 21127},
                                    {"k": "CBP", "Oct": 1, "Nov": 9}], "2025-08-01")
    s2 = commit_rows(archive, tmp_path, [{"k": "Total", "Oct": 6, "Nov": 21123},
                                         {"k": "CBP", "Oct": 1, "Nov": 9}], "2025-08-14")
    root = archive.root
    res = cli("-C", root, "blame", "ds@latest")
    assert res.code == 0, res.err
    lines = res.out.splitlines()
    assert "type/format-only changes are not revisions; use --strict" in res.out
    body = [line for line in lines if not line.startswith("#")]
    assert body[0].startswith(f"{s2[:10]} 2025-08-14  Total")
    assert "Oct: 5 → 6 (+1 more)" in body[0]
    assert body[1].endswith("(first published)")
    assert all(len(line) <= 80 for line in lines)
    res = cli("-C", root, "blame", "ds@latest", "--cells", "--row", "k=Total", "--column",
              "Nov")
    body = [line for line in res.out.splitlines() if not line.startswith("#")]
    assert len(body) == 1 and "Nov: 21123 (was 21127; 1 rev.)" in body[0]
    res = cli("-C", root, "blame", "ds@latest", "--json", "--limit", "2")
    data = json.loads(res.out)
    assert data["key"] == ["k"] and len(data["cells"]) == 2
    assert data["cells"][1]["column"] == "Oct" and data["cells"][1]["snapshot"] == s2
    res = cli("-C", root, "blame", "ds@latest", "--strict")
    assert "# strict" in res.out
    res = cli("-C", root, "blame", "ds@latest", "--row", "nocolon")
    assert res.code == 2 and "expected COL=VAL" in res.err
    res = cli("-C", root, "history", "ds", "--table", "data", "--row", "k=Total",
              "--column", "Nov")
    assert res.code == 0, res.err
    body = [line for line in res.out.splitlines() if not line.startswith("#")]
    assert body[0].split()[2:] == ["first", "21127", "[C2]"]
    assert "changed" in body[1] and "21127 → 21123" in body[1]
    res = cli("-C", root, "history", "ds", "--table", "data", "--row", "k=Nope", "--json")
    assert res.code != 0 and "no row k=Nope in table 'data' in any of the 2" in res.err
    res = cli("-C", root, "reindex")
    assert res.code == 0 and "ds: rebuilt 1 blame index(es) over 2 release(s)" in res.out


# ---------------------------------------------------------------- real data


@pytest.fixture(scope="module")
def ice(_six_releases, tmp_path_factory) -> Archive:
    """One archive holding the six real FY25 releases (committed once for the run)."""
    if len(ICE_RELEASES) != 6:
        pytest.skip("the six ICE FY25 workbooks are not in tests/data/ice-fy25")
    return six_releases(_six_releases, tmp_path_factory)


def test_ice_book_ins_totals_blamed_to_the_revising_release(ice):
    result = blame(ice, "ice-detention-stats@latest", table=BOOK_INS,
                   rows={"Agency": "Total"}, columns=["Oct", "Nov"])
    by = {r["column"]: r for r in result.to_pylist()}
    assert by["Oct"]["value"] == "23613" and by["Oct"]["published"] == "2025-08-01"
    assert by["Oct"]["previous"] == "23616"
    assert by["Nov"]["value"] == "21123" and by["Nov"]["published"] == "2025-08-14"
    assert by["Nov"]["previous"] == "21127" and by["Nov"]["revisions"] == 3
    assert by["Nov"]["source_cell"] == "Detention FY25!K20"
    assert by["Nov"]["original_name"] == ICE_RELEASES[3].name
    assert by["Oct"]["row_first_seen"] == ice.history("ice-detention-stats").channel(
        "public")[0].id


def test_ice_history_of_november_total(ice):
    hist = history(ice, "ice-detention-stats", table=BOOK_INS, row={"Agency": "Total"},
                   column="Nov").to_pylist()
    assert [h["published"] for h in hist] == [ice_published(p) for p in ICE_RELEASES]
    changes = [(h["value"], h["published"]) for h in hist if h["status"] in ("first",
                                                                            "changed")]
    assert changes == [("21129", "2025-07-04"), ("21128", "2025-07-07"),
                       ("21127", "2025-08-01"), ("21123", "2025-08-14")]
    assert [h["status"] for h in hist[4:]] == ["unchanged", "unchanged"]


def test_ice_cli_blame_row_view(ice, cli):
    res = cli("-C", ice.root, "blame", "ice-detention-stats@latest", "--table", BOOK_INS,
              "--row", "Agency=Total", "--column", "Nov", "--column", "Oct")
    assert res.code == 0, res.err
    body = [line for line in res.out.splitlines() if not line.startswith("#")]
    assert len(body) == 1 and "2025-08-14  Total" in body[0]
    assert "Nov: 21127 → 21123" in body[0]
