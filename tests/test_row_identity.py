"""Row identity on real ICE releases: per-row key degradation, renamed rows, hierarchy
keys, declared-key checks and `atdarchive keys` (README "Row identity")."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from conftest import ICE_RELEASES, ice_published, six_releases

from atdarchive import Archive

FACILITIES = "facilities__ice_enforcement_and_removal_operations_data"
ATD = "atd__active_atd_participants_and_average_length_in_program_by_aor_and_technology"
BOOKOUTS = "detention__ice_final_book_outs_by_release_reason_month_and_criminality"
KEY = ["Name", "City", "State"]
SIX = "ice-detention-stats"  # the session archive of the six releases (conftest)
#: ICE's ATD technologies: the member rows of the AOR/Technology table (domain knowledge,
#: used to key the table independently of the library's detection).
TECHNOLOGIES = {"SmartLINK", "VoiceID", "Ankle Monitor", "Wristworn", "Dual Tech", "No Tech",
                "Other"}


@pytest.fixture(scope="module")
def ice(_six_releases, tmp_path_factory: pytest.TempPathFactory) -> Archive:
    """The six FY25 workbooks (the session's archive, copied), and the facility list of
    each as its own CSV publication."""
    base = tmp_path_factory.mktemp("identity")
    archive = six_releases(_six_releases, tmp_path_factory)
    archive.add_dataset("facilities", keys={"data": KEY})
    for path in ICE_RELEASES:
        published = ice_published(path)
        table = archive.snapshot(f"{SIX}@{published}").table(FACILITIES)
        csv = base / f"facilities_{published}.csv"
        pacsv.write_csv(table, csv)
        archive.commit("facilities", csv, published=published)
    return archive


def _releases(archive: Archive, dataset: str) -> list[str]:
    return [e.published for e in archive.history(dataset).channel("public")]


def _rows(table: pa.Table, key: list[str]) -> list[tuple[tuple, dict]]:
    out = []
    for row in table.to_pylist():
        out.append((tuple(row[k] for k in key), {c: v for c, v in row.items() if c not in key}))
    return out


def _same(a: object, b: object) -> bool:
    """Equal as the diff documents it: NaN equals NaN; a column whose type changed
    compares by value ("1100" == 1100, "2025-01-16" == date(2025, 1, 16))."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if a is None or b is None or type(a) is type(b):
        return a == b
    try:
        return float(a) == float(b)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(a) == str(b)


def _squash(v: object) -> object:
    """Blame does not count a change of spacing alone as a revision."""
    return " ".join(v.split()) if isinstance(v, str) else v


def independent_keyed_count(old: pa.Table, new: pa.Table, key: list[str],
                            columns: list[str]) -> dict[str, int]:
    """Plain Python: rows matched by key value; within a repeated value, identical rows
    first, then in order; cells compared on `columns`."""
    groups_old: dict[tuple, list[dict]] = {}
    groups_new: dict[tuple, list[dict]] = {}
    for k, v in _rows(old, key):
        groups_old.setdefault(k, []).append(v)
    for k, v in _rows(new, key):
        groups_new.setdefault(k, []).append(v)
    added = removed = changed_rows = cells = 0
    for k in set(groups_old) | set(groups_new):
        olds, news = list(groups_old.get(k, [])), list(groups_new.get(k, []))
        pairs = []
        for o in list(olds):  # identical content first
            hit = next((n for n in news if all(_same(o[c], n[c]) for c in columns)), None)
            if hit is not None:
                pairs.append((o, hit))
                olds.remove(o)
                news.remove(hit)
        pairs += list(zip(olds, news, strict=False))  # then in order
        removed += max(0, len(olds) - len(news))
        added += max(0, len(news) - len(olds))
        for o, n in pairs:
            diff = sum(1 for c in columns if not _same(o[c], n[c]))
            cells += diff
            changed_rows += diff > 0
    return {"rows_added": added, "rows_removed": removed, "rows_changed": changed_rows,
            "cells_changed": cells}


def test_facility_diffs_equal_an_independent_keyed_count(ice: Archive) -> None:
    days = _releases(ice, "facilities")
    assert len(days) == 6
    saw_duplicate = saw_rename = False
    for a, b in zip(days, days[1:], strict=False):
        old = ice.snapshot(f"facilities@{a}").table()
        new = ice.snapshot(f"facilities@{b}").table()
        common = [c for c in new.column_names if c in old.column_names and c not in KEY]
        diff = ice.diff(f"facilities@{a}", f"facilities@{b}", table="data", columns=common)
        assert diff.key == KEY and diff.key_source == "declared"
        want = independent_keyed_count(old, new, KEY, common)
        renamed = diff.counts["rows_renamed"]
        assert diff.counts["rows_added"] + renamed == want["rows_added"], (a, b)
        assert diff.counts["rows_removed"] + renamed == want["rows_removed"], (a, b)
        key_cells = sum(1 for c in diff.cells_changed.column("column").to_pylist() if c in KEY)
        on_renamed = 0  # the renamed rows' other cells, which the plain count cannot pair
        for r in diff.rows_renamed.to_pylist():
            o = old.slice(r["old_row"], 1).to_pylist()[0]
            n = new.slice(r["new_row"], 1).to_pylist()[0]
            assert [o[k] for k in KEY] == r["old_key"] and [n[k] for k in KEY] == r["new_key"]
            on_renamed += sum(1 for c in common if not _same(o[c], n[c]))
        assert diff.counts["cells_changed"] - key_cells == want["cells_changed"] + on_renamed
        assert diff.counts["rows_changed"] - renamed <= want["rows_changed"] <= diff.counts[
            "rows_changed"]
        saw_duplicate |= bool(diff.duplicate_keys)
        saw_rename |= bool(renamed)
    assert saw_duplicate and saw_rename  # v02 lists Nassau twice; ICE flips BINGHAM(P)TON


def test_the_repeated_facility_does_not_make_the_table_keyless(ice: Archive) -> None:
    diff = ice.diff("facilities@2025-07-04", "facilities@2025-07-07", table="data")
    assert [(d["release"], d["key"]["Name"], d["rows"]) for d in diff.duplicate_keys] == [
        ("new", "NASSAU COUNTY CORRECTIONAL CENTER", 2)]
    # the old listing had Nassau once: one of the two new rows is it, the other is added
    assert [r["Name"] for r in diff.rows_added.to_pylist()].count(
        "NASSAU COUNTY CORRECTIONAL CENTER") == 1
    report = ice.keys("facilities")[0]
    assert report["key"] == KEY and report["source"] == "declared"
    assert report["unique_in"] == 5
    broken = [r for r in report["releases"] if not r["unique"]]
    assert [(r["published"], r["duplicated_rows"]) for r in broken] == [("2025-07-07", 2)]


def test_blame_credits_an_unchanged_facility_to_the_release_that_first_had_it(
        ice: Archive) -> None:
    days = _releases(ice, "facilities")
    tables = {d: ice.snapshot(f"facilities@{d}").table() for d in days}
    ids = {e.published: e.id for e in ice.history("facilities").channel("public")}
    blamed = ice.blame("facilities@latest")
    assert json.loads(blamed.schema.metadata[b"atdarchive.blame"])["key"] == KEY
    by_key = {d: dict(_rows(t, KEY)) for d, t in tables.items()}
    repeated = {k for t in tables.values() for k, n in Counter(
        k for k, _ in _rows(t, KEY)).items() if n > 1}  # Nassau: see the diff test
    latest = days[-1]
    checked = 0
    for r in blamed.to_pylist():
        k = tuple(r[c] for c in KEY)
        if r["column"] in KEY or k in repeated or "BROOME" in k[0]:
            continue
        value = by_key[latest][k][r["column"]]
        first = latest  # naive walk back while the facility had this value (a release
        for d in reversed(days[:-1]):  # that lacks the facility or column is a gap)
            row = by_key[d].get(k)
            if row is None or r["column"] not in row:
                continue
            if not _same(_squash(row[r["column"]]), _squash(value)):
                break
            first = d
        assert r["snapshot"] == ids[first], (k, r["column"])
        checked += 1
    assert checked > 1000
    # the renamed facility keeps its history: only its City changed in 2025-09-11
    broome = {r["column"]: r for r in blamed.to_pylist() if r["Name"] == "BROOME COUNTY JAIL"}
    assert broome["City"]["snapshot"] == ids[latest]
    assert broome["City"]["previous"] == "BINGHAMTON"
    assert broome["Name"]["snapshot"] == ids[days[0]]


def test_renamed_rows_are_shown_by_diff_and_audit(ice: Archive, cli) -> None:
    res = cli("-C", ice.root, "diff", "facilities@2025-08-29", "facilities@2025-09-11")
    assert res.code == 0
    assert "renamed" in res.out and "BINGHAMPTON" in res.out
    as_json = json.loads(cli("-C", ice.root, "diff", "facilities@2025-08-29",
                             "facilities@2025-09-11", "--format", "json").out)
    table = as_json["tables"]["data"]
    assert table["counts"]["rows_renamed"] == 1
    assert table["rows_renamed"][0]["new_key"] == {"Name": "BROOME COUNTY JAIL",
                                                   "City": "BINGHAMPTON", "State": "NY"}
    findings = ice.audit("facilities").findings
    kinds = Counter(f.kind for f in findings)
    assert kinds["row_renamed"] == 2 and kinds["duplicate_key"] == 1
    dup = next(f for f in findings if f.kind == "duplicate_key")
    assert dup.published == "2025-07-07" and "NASSAU" in dup.summary


def _atd_keys(table: pa.Table) -> list[tuple[str, str | None]]:
    aor = None
    out = []
    for label in table.column("AOR/Technology").to_pylist():
        if label in TECHNOLOGIES:
            out.append((aor, label))
        else:
            aor = label
            out.append((aor, None))
    return out


def _bookout_keys(table: pa.Table) -> list[tuple[str, str | None]]:
    reason = None
    out = []
    for r, c in zip(table.column("Release Reason").to_pylist(),
                    table.column("Criminality").to_pylist(), strict=True):
        reason = r if r is not None else reason
        out.append((reason, c))
    return out


@pytest.mark.parametrize(("name", "keyer", "key"), [
    (ATD, _atd_keys, ["AOR", "Technology"]),
    (BOOKOUTS, _bookout_keys, ["Release Reason (group)", "Criminality"]),
])
def test_hierarchical_tables_get_two_column_keys_on_every_release(ice, name, keyer, key):
    report = ice.keys(SIX, table=name)[0]
    assert report["key"] == key and report["source"] == "hierarchy"
    assert report["unique_in"] == len(report["releases"]) == 6
    days = _releases(ice, SIX)
    for d in days:
        t = ice.snapshot(f"{SIX}@{d}").table(name)
        assert list(zip(*(t.column(k).to_pylist() for k in key), strict=True)) == keyer(t)
        # the stored table is untouched: the key columns are derived on read
        assert ice.snapshot(f"{SIX}@{d}").table(name, derived=False).column_names == \
            t.column_names[len(t.column_names) - len(ice.snapshot(f"{SIX}@{d}").table(
                name, derived=False).column_names):]
    for a, b in zip(days, days[1:], strict=False):
        old, new = (ice.snapshot(f"{SIX}@{x}").table(name, derived=False) for x in (a, b))
        values_old = {k: row for k, row in zip(keyer(old), old.to_pylist(), strict=True)}
        values_new = {k: row for k, row in zip(keyer(new), new.to_pylist(), strict=True)}
        diff = ice.diff(f"{SIX}@{a}", f"{SIX}@{b}", table=name)
        assert diff.key == key and diff.key_source == "hierarchy"
        for cell in diff.cells_changed.to_pylist():  # every change is one the data shows
            k = (cell[key[0]], cell[key[1]])
            for side, values in (("old", values_old), ("new", values_new)):
                number = cell[f"{side}_number"]
                assert _same(values[k][cell["column"]],
                             number if number is not None else cell[side])
        common = [c for c in new.column_names if c in old.column_names][1:]
        want = sum(1 for k in set(values_old) & set(values_new) for c in common
                   if not _same(values_old[k][c], values_new[k][c]))
        assert diff.counts["cells_changed"] == want
        assert {(r[key[0]], r[key[1]]) for r in diff.rows_added.to_pylist()} == \
            set(values_new) - set(values_old)


def test_misspelt_declared_key_warns_at_commit_and_errs_alike(tmp_path: Path, cli) -> None:
    root = tmp_path / "arc"
    assert cli("init", root).code == 0
    assert cli("-C", root, "dataset", "add", "x", "--key", "data=date_of_intrest").code == 0
    for day, rows in (("2024-01-01", "date_of_interest,n\n2024-01-01,1\n"),
                      ("2024-01-02", "date_of_interest,n\n2024-01-01,2\n2024-01-02,5\n")):
        path = tmp_path / f"{day}.csv"
        path.write_text(rows)
        res = cli("-C", root, "commit", "x", path, "--published", day)
        assert res.code == 0
        assert "declared key column 'date_of_intrest' is not a column of table 'data'" in \
            res.err and "did you mean 'date_of_interest'" in res.err
    for args in (["diff", "x"], ["blame", "x@latest"], ["audit", "x"],
                 ["history", "x", "--table", "data", "--row", "date_of_interest=2024-01-01"]):
        res = cli("-C", root, *args)
        assert res.code != 0 and len(res.err.strip().splitlines()) == 1
        assert "declared key column 'date_of_intrest' not in table 'data'" in res.err
        assert "did you mean 'date_of_interest'" in res.err


def test_keys_command_text_and_json(ice: Archive, cli) -> None:
    res = cli("-C", ice.root, "keys", "facilities")
    assert res.code == 0
    assert "key Name, City, State (declared)" in res.out
    assert "unique in 5 of 6 release(s)" in res.out
    assert "2025-07-07" in res.out and "NASSAU COUNTY CORRECTIONAL" in res.out and "×2" in res.out
    assert max(len(line) for line in res.out.splitlines()) <= 80
    data = json.loads(cli("-C", ice.root, "keys", SIX, "--table", ATD, "--json").out)
    entry = data["tables"][0]
    assert entry["key"] == ["AOR", "Technology"] and entry["hierarchy"]["shape"] == "mixed"
    bad = cli("-C", ice.root, "keys", SIX, "--table", "atd_nope")
    assert bad.code != 0 and "no table 'atd_nope'" in bad.err


def test_hierarchy_override_in_dataset_toml(ice: Archive, tmp_path: Path) -> None:
    archive = Archive.init(tmp_path / "arc")
    archive.add_dataset("ice")
    archive.commit("ice", ICE_RELEASES[-1], published=ice_published(ICE_RELEASES[-1]))
    config = archive.dataset("ice")
    config.hierarchy = {ATD: {"names": ["Area of Responsibility", "Device"]},
                        BOOKOUTS: {"shape": "none"}}
    config.save(archive.dataset_dir("ice") / "dataset.toml")
    fresh = Archive(archive.root)
    atd = fresh.snapshot("ice@latest").table(ATD)
    assert atd.column_names[:2] == ["Area of Responsibility", "Device"]
    assert fresh.snapshot("ice@latest").table(BOOKOUTS).column_names[0] == "Release Reason"
    (archive.dataset_dir("ice") / "dataset.toml").write_text(
        'name = "ice"\n[hierarchy.x]\nshape = "tree"\n')
    with pytest.raises(Exception, match="hierarchy.x.shape must be one of"):
        Archive(archive.root).dataset("ice")


def test_history_follows_a_renamed_row(ice: Archive, cli) -> None:
    res = cli("-C", ice.root, "history", "facilities", "--table", "data",
              "--row", "Name=BROOME COUNTY JAIL", "--row", "City=BINGHAMPTON",
              "--row", "State=NY", "--column", "City", "--json")
    assert res.code == 0, res.err
    rows = json.loads(res.out)
    rows = rows["releases"] if isinstance(rows, dict) else rows
    assert [(r["published"], r["status"], r["value"]) for r in rows] == [
        ("2025-07-04", "first", "BINGHAMPTON"), ("2025-07-07", "unchanged", "BINGHAMPTON"),
        ("2025-08-01", "renamed", "BINGHAMTON"), ("2025-08-14", "unchanged", "BINGHAMTON"),
        ("2025-08-29", "unchanged", "BINGHAMTON"), ("2025-09-11", "renamed", "BINGHAMPTON")]


def test_config_names_that_match_nothing_are_said(ice: Archive, cli, tmp_path: Path) -> None:
    root = tmp_path / "arc"
    assert cli("init", root).code == 0
    assert cli("-C", root, "dataset", "add", "f", "--key", "dta=Name").code == 0
    path = tmp_path / "f.csv"
    path.write_text("Name,n\nA,1\nB,2\n")
    assert cli("-C", root, "commit", "f", path, "--published", "2024-01-01").code == 0
    toml = root / "datasets" / "f" / "dataset.toml"
    toml.write_text(toml.read_text() + '[hierarchy.data]\nlabel = "Nmae"\n'
                    '[audit]\nignore_columns = ["Reprot Date"]\n')
    res = cli("-C", root, "keys", "f")
    assert res.code == 0
    assert "[keys] names table 'dta', which no release has (did you mean 'data'?" in res.err
    assert "[hierarchy.data] label 'Nmae' is not a column of that table" in res.err
    assert "[audit] ignore_columns names 'Reprot Date', a column no table has" in res.err
    assert "names table 'dta'" in cli("-C", root, "audit", "f").err
