"""Vintages, revisions and SQL over the history (README "For researchers: vintages and
SQL"): vintages agree with a plain walk of every release (hypothesis, with backfills
and retractions), the FY25 book-ins read as published, and SQL only reads."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import duckdb
import pyarrow.compute as pc
import pytest
from conftest import ICE_RELEASES, ice_published, six_releases, write_csv
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from atdarchive import Archive

DS = "ice-detention-stats"
BOOKINS = "detention__ice_initial_book_ins_by_arresting_agency_and_month"


@pytest.fixture(scope="module")
def ice(_six_releases: Path, tmp_path_factory: pytest.TempPathFactory) -> Archive:
    return six_releases(_six_releases, tmp_path_factory)


def test_book_ins_total_for_november_reads_as_published(ice: Archive, cli) -> None:
    v = ice.vintages(DS, BOOKINS)
    nov = v.filter(pc.and_(pc.equal(v["Agency"], "Total"), pc.equal(v["column"], "Nov")))
    assert [(r["value_number"], r["realtime_start"], r["realtime_end"], r["period"])
            for r in nov.to_pylist()] == [
        (21129, "2025-07-04", "2025-07-07", "2024-11"), (21128, "2025-07-07", "2025-08-01",
                                                         "2024-11"),
        (21127, "2025-08-01", "2025-08-14", "2024-11"), (21123, "2025-08-14", None, "2024-11")]
    assert nov.column("source_cell").to_pylist() == ["Detention FY25!K20"] * 4
    first = ice.vintages(DS, BOOKINS, mode="first-release")
    latest = ice.vintages(DS, BOOKINS, mode="latest")
    assert first.num_rows == latest.num_rows  # one per cell each
    as_of = ice.vintages(DS, BOOKINS, as_of="2025-08-01")
    assert max(as_of.column("realtime_start").to_pylist()) <= "2025-08-01"
    out = cli("-C", ice.root, "vintages", DS, "--table", BOOKINS, "--format", "json")
    rows = json.loads(out.out)
    assert {"realtime_start", "realtime_end", "value_number"} <= set(rows[0])


def test_revisions_table_and_cli(ice: Archive, cli) -> None:
    rev = ice.revisions(DS, BOOKINS)
    nov = next(r for r in rev.to_pylist() if r["column"] == "Nov")
    assert nov["revisions"] >= 3 and nov["period"] == "2024-11"
    assert 0 < nov["share_revised"] <= 1
    assert "Agency" not in {r["column"] for r in rev.to_pylist()}  # the key names cells
    sep = next(r for r in rev.to_pylist() if r["column"] == "Sep")
    assert sep["fills"] >= 1  # 0 -> a count: a month filled in, not a revision
    periods = [r["period"] for r in rev.to_pylist() if r["period"]]
    assert periods == sorted(periods)
    text = cli("-C", ice.root, "revisions", DS, "--table", BOOKINS).out
    assert "Nov" in text and "2024-11" in text
    assert max(len(line) for line in text.splitlines()) <= 80
    as_json = json.loads(cli("-C", ice.root, "revisions", DS, "--table", BOOKINS,
                             "--json").out)
    assert {r["column"] for r in as_json} == {r["column"] for r in rev.to_pylist()}


def test_sql_views_and_safety(ice: Archive, cli, tmp_path: Path) -> None:
    rows = ice.sql(f'SELECT published, count(*) AS n FROM history."{BOOKINS}" '
                   "GROUP BY 1 ORDER BY 1").to_pylist()
    assert [r["published"] for r in rows] == [ice_published(p) for p in ICE_RELEASES]
    nov = ice.sql(f"SELECT value, realtime_start FROM vintages.{BOOKINS} "
                  "WHERE Agency = 'Total' AND \"column\" = 'Nov' ORDER BY realtime_start")
    assert nov.column("value").to_pylist() == ["21129", "21128", "21127", "21123"]
    changes = ice.sql(f"SELECT old, new FROM diffs.{BOOKINS} WHERE Agency = 'Total' "
                      "AND \"column\" = 'Nov' ORDER BY published").to_pylist()
    assert [(c["old"], c["new"]) for c in changes] == [("21129", "21128"), ("21128", "21127"),
                                                        ("21127", "21123")]
    assert ice.sql("SELECT count(*) AS n FROM releases").column("n").to_pylist() == [6]
    latest = ice.sql(f"SELECT * FROM {BOOKINS}")
    assert latest.num_rows == ice.snapshot(f"{DS}@latest").table(BOOKINS).num_rows
    blame = ice.sql(f"SELECT DISTINCT published FROM blame.{BOOKINS}")
    assert blame.num_rows >= 2
    for bad, words in ((f"DELETE FROM {BOOKINS}", "this is DELETE"),
                       ("ATTACH 'x.db'", "this is ATTACH"),
                       ("INSTALL httpfs", "this is INSTALL/LOAD"),
                       ("COPY (SELECT 1) TO '/tmp/x.csv'", "this is COPY"),
                       ("EXPLAIN ANALYZE COPY (SELECT 1) TO 'x.csv'", "this is EXPLAIN COPY"),
                       ("SELECT * FROM read_text('/etc/passwd')", "disabled"),
                       ("SELECT * FROM read_csv('/etc/hostname')", "disabled"),
                       ("SET enable_external_access = true", "this is SET"),
                       ("SELECT * FROM nope", "views:")):
        result = cli("-C", ice.root, "sql", bad)
        assert result.code != 0 and words in result.err, (bad, result.err)
        assert len(result.err.strip().splitlines()) == 1 and "Traceback" not in result.err
    csv = cli("-C", ice.root, "sql", "SELECT count(*) AS n FROM findings", "--format", "csv")
    assert csv.code == 0 and csv.out.splitlines()[0] == '"n"'

    db = tmp_path / "ice.sqlite"
    assert cli("-C", ice.root, "sql", "--export", db).code == 0
    con = sqlite3.connect(db)
    names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"releases", "findings", BOOKINS, f"vintages__{BOOKINS}"} <= names
    assert con.execute(f'SELECT count(*) FROM "history__{BOOKINS}"').fetchone()[0] == 18
    con.close()
    duck = tmp_path / "ice.duckdb"
    assert cli("-C", ice.root, "sql", "--export", duck).code == 0
    with duckdb.connect(str(duck), read_only=True) as con:
        assert con.execute(f'SELECT count(*) FROM vintages."{BOOKINS}"').fetchone()[0] == \
            ice.vintages(DS, BOOKINS).num_rows
    assert cli("-C", ice.root, "sql", "--export", duck).code != 0  # exists: --force


# ---------------------------------------------------------------- property

VALUES = st.integers(min_value=0, max_value=3)
RELEASE = st.dictionaries(st.sampled_from(["a", "b", "c"]), st.tuples(VALUES, VALUES),
                          min_size=1)


@settings(max_examples=12, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(releases=st.lists(RELEASE, min_size=2, max_size=5),
       order=st.permutations(range(5)), retract=st.sets(st.integers(0, 4), max_size=1))
def test_vintages_agree_with_a_plain_walk(tmp_path_factory, releases, order, retract) -> None:
    archive = Archive.init(tmp_path_factory.mktemp("prop") / "arc")
    archive.add_dataset("ds", keys={"data": ["k"]})
    tmp = archive.root.parent
    days = [f"2025-01-{i + 1:02d}" for i in range(len(releases))]
    ids = {}
    for i in [o for o in order if o < len(releases)]:  # committed in any order: backfills
        rows = [{"k": k, "v": v, "w": w} for k, (v, w) in sorted(releases[i].items())]
        ids[i] = archive.commit("ds", write_csv(tmp / f"r{i}.csv", rows),
                                published=days[i]).snapshot.id
    gone = {i for i in retract if i < len(releases)}
    for i in gone:
        archive.retract(f"ds@{ids[i][:12]}", "a false entry")
    kept = [i for i in range(len(releases)) if i not in gone]

    expected = set()
    for key in "abc":
        for col, at in (("v", 0), ("w", 1)):
            run = None  # (value, start) of the vintage running
            for n, i in enumerate(kept):
                here = releases[i].get(key)
                value = None if here is None else here[at]
                if run and (value is None or value != run[0]):
                    expected.add((key, col, str(run[0]), run[1], days[i]))
                    run = None
                if value is not None and run is None:
                    run = (value, days[i])
                if n == len(kept) - 1 and run:
                    expected.add((key, col, str(run[0]), run[1], None))
    got = {(r["k"], r["column"], r["value"], r["realtime_start"], r["realtime_end"])
           for r in archive.vintages("ds", "data").to_pylist()}
    assert got == expected  # the key column names cells: no vintages of its own
    for key in sorted({k for i in kept for k in releases[i]}):  # and `history` agrees
        steps = archive.history_of("ds", table="data", row={"k": key}, column="v").to_pylist()
        starts = {s["published"] for s in steps if s["status"] in ("first", "changed")
                  or (s["status"] == "reappeared")}
        assert starts == {g[3] for g in got if g[0] == key and g[1] == "v"}
