"""Diff engine: keys, schema changes, value semantics, snapshots, and an oracle."""

from __future__ import annotations

import datetime as dt
import math
import random

import pyarrow as pa
import pytest
from conftest import FakeSnapshot

from atdarchive.diff import (
    DiffOptions,
    apply_diff,
    diff_snapshots,
    diff_tables,
    infer_key,
    summarize,
    validate_key,
)
from atdarchive.errors import AtdError
from atdarchive.fingerprint import compute_fingerprints, fingerprint_table, load_fingerprints

MONTHS = ["Oct", "Nov", "Dec", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep"]


def ice_table(values: dict[str, list[int]] | None = None) -> pa.Table:
    base = {m: [21000 + i * 10, 1000 + i, 20000 + i * 9] for i, m in enumerate(MONTHS)}
    base.update(values or {})
    return pa.table({"agency": ["Total", "CBP", "ICE"], **base,
                     "Total": [sum(v[j] for v in base.values()) for j in range(3)]})


def rows_of(t: pa.Table) -> list[dict]:
    """Rows with NaN made comparable (Table.equals treats NaN != NaN)."""
    def fix(v):
        return "NaN" if isinstance(v, float) and math.isnan(v) else v
    return [{k: fix(v) for k, v in r.items()} for r in t.to_pylist()]


def same(a: pa.Table, b: pa.Table) -> bool:
    return a.schema.equals(b.schema) and rows_of(a) == rows_of(b)


def cells(d) -> list[tuple]:
    return [(r.get("agency", r["new_row"]), r["column"], r["old"], r["new"])
            for r in d.cells_changed.to_pylist()]


# ---------------------------------------------------------------- keys


def test_infer_key_leading_columns():
    t = pa.table({"a": [1, 1, 2], "b": ["x", "y", "x"], "c": [1.0, 2.0, 3.0]})
    assert infer_key(t) == ["a", "b"]
    assert infer_key(pa.table({"a": [1, 2], "b": [1, 1]})) == ["a"]
    # nulls disqualify a column set; floats are never inferred
    assert infer_key(pa.table({"a": [1, None]})) is None
    assert infer_key(pa.table({"x": [1.5, 2.5]})) is None
    assert infer_key(pa.table({"a": [1, 1, 1, 1], "b": [1, 1, 2, 2], "c": [1, 2, 1, 1]})) is None


def test_key_source_reported():
    old, new = ice_table(), ice_table({"Feb": [21630, 1004, 20036]})
    d = diff_tables(old, new)
    assert (d.key, d.key_source) == (["agency"], "inferred")
    d = diff_tables(old, new, options=DiffOptions(declared_key=["agency"]))
    assert d.key_source == "declared"
    d = diff_tables(old, new, options=DiffOptions(key=["agency"], declared_key=["Oct"]))
    assert d.key_source == "given"
    d = diff_tables(pa.table({"v": [1.0, 1.0]}), pa.table({"v": [1.0, 2.0]}))
    assert (d.key, d.key_source) == (None, "none")


def test_duplicate_declared_key_degrades_per_row_and_names_examples():
    old = pa.table({"agency": ["A", "A", "B", "B", "B", "C"], "v": [1, 2, 3, 4, 5, 6]})
    new = pa.table({"agency": ["A", "A", "B", "B", "C"], "v": [2, 1, 3, 9, 7]})
    d = diff_tables(old, new, name="book_ins", options=DiffOptions(declared_key=["agency"]))
    assert d.key == ["agency"] and d.key_source == "declared"
    # A: the same two rows in another order -> nothing; B: 3 kept, one edited (4 -> 9,
    # in order), one removed; C: unique on both sides, matched by key
    assert d.counts["rows_removed"] == 1 and d.counts["rows_added"] == 0
    assert sorted((c["agency"], c["old"], c["new"]) for c in d.cells_changed.to_pylist()) == [
        ("B", "4", "9"), ("C", "6", "7")]
    assert d.rows_removed.column("v").to_pylist() == [5]
    assert {(x["release"], x["key"]["agency"], x["rows"]) for x in d.duplicate_keys} == {
        ("old", "A", 2), ("old", "B", 3), ("new", "A", 2), ("new", "B", 2)}
    note = next(n for n in d.notes if n.startswith("duplicate_key"))
    assert "B ×3 (old)" in note and "\n" not in note
    assert apply_diff(old, d).sort_by("v").equals(new.sort_by("v"))
    with pytest.raises(AtdError, match="not unique"):
        validate_key(old, ["agency"], "t")
    validate_key(old, ["agency", "v"], "t")


def test_unknown_key_and_columns_are_user_errors():
    t = ice_table()
    with pytest.raises(AtdError, match="'nope'"):
        diff_tables(t, t, options=DiffOptions(key=["nope"]))
    with pytest.raises(AtdError, match="--columns"):
        diff_tables(t, t, options=DiffOptions(columns=["Feb", "Febr"]))


# ---------------------------------------------------------------- values


def test_wide_period_table_cells():
    old = ice_table()
    new = ice_table({"Feb": [21631, 1004, 20036], "Apr": [22819, 1006, 20054]})
    old = ice_table({"Feb": [21632, 1004, 20036], "Apr": [22821, 1006, 20054]})
    d = diff_tables(old, new)
    assert d.counts["rows_changed"] == 1
    got = cells(d)
    assert got[:2] == [("Total", "Feb", "21632", "21631"), ("Total", "Apr", "22821", "22819")]
    assert got[2][1] == "Total"  # the row total changed too
    ab = d.cells_changed.column("abs_change").to_pylist()
    assert ab[:2] == [-1.0, -2.0]


def test_nan_equal_null_differs():
    old = pa.table({"k": [1, 2, 3, 4], "x": [float("nan"), 1.0, None, None]})
    new = pa.table({"k": [1, 2, 3, 4], "x": [float("nan"), None, 5.0, None]})
    d = diff_tables(old, new)
    assert [(r["k"], r["old"], r["new"]) for r in d.cells_changed.to_pylist()] == [
        (2, "1", None), (3, None, "5")]
    nan_vs_num = diff_tables(pa.table({"k": [1], "x": [float("nan")]}),
                             pa.table({"k": [1], "x": [0.0]}))
    assert nan_vs_num.counts["cells_changed"] == 1


def test_tolerances_and_string_options():
    old = pa.table({"k": [1, 2, 3], "x": [100.0, 100.0, 100.0], "s": ["Abc", " a  b", "z"]})
    new = pa.table({"k": [1, 2, 3], "x": [100.4, 101.0, 100.0], "s": ["abc", "a b", "Z "]})
    assert diff_tables(old, new).counts["cells_changed"] == 5
    d = diff_tables(old, new, options=DiffOptions(abs_tol=0.5))
    assert [(r["k"], r["column"]) for r in d.cells_changed.to_pylist()] == [
        (1, "s"), (2, "x"), (2, "s"), (3, "s")]
    d = diff_tables(old, new, options=DiffOptions(rel_tol=0.02, ignore_case=True))
    assert [(r["k"], r["column"]) for r in d.cells_changed.to_pylist()] == [(2, "s"), (3, "s")]
    d = diff_tables(old, new, options=DiffOptions(rel_tol=0.02, ignore_case=True,
                                                   ignore_whitespace=True))
    assert d.is_empty()
    d = diff_tables(old, new, options=DiffOptions(columns=["x"]))
    assert {r["column"] for r in d.cells_changed.to_pylist()} == {"x"}
    d = diff_tables(old, new, options=DiffOptions(ignore=["x"]))
    assert {r["column"] for r in d.cells_changed.to_pylist()} == {"s"}


def test_int_to_float_is_one_type_change():
    old = pa.table({"k": ["a", "b", "c"], "v": [1, 2, 3]})
    new = pa.table({"k": ["a", "b", "c"], "v": [1.0, 2.0, 3.5]})
    d = diff_tables(old, new)
    assert d.schema_changes.to_pylist() == [
        {"change": "type_changed", "column": "v", "old": "int64", "new": "double"}]
    assert cells(d) == [(2, "v", "3", "3.5")]
    strict = diff_tables(old, new, options=DiffOptions(strict_types=True))
    assert strict.counts["cells_changed"] == 3
    s2n = diff_tables(pa.table({"k": [1, 2], "v": ["12", "x"]}),
                      pa.table({"k": [1, 2], "v": [12, 13]}))
    assert [r["k"] for r in s2n.cells_changed.to_pylist()] == [2]


def test_schema_changes_and_apply():
    old = pa.table({"k": [1, 2, 3], "a": [1, 2, 3], "b": ["x", "y", "z"], "gone": [0, 0, 0]})
    new = pa.table({"k": [3, 1, 2], "b": ["z", "x", "y"], "a_renamed": [3, 1, 2],
                    "added": [9.0, 7.0, 8.0]})
    d = diff_tables(old, new)
    changes = {(r["change"], r["column"], r["old"], r["new"]) for r in d.schema_changes.to_pylist()}
    assert ("column_renamed", "a_renamed", "a", "a_renamed") in changes
    assert ("column_added", "added", None, "double") in changes
    assert ("column_removed", "gone", "int64", None) in changes
    assert any(c[0] == "column_reordered" for c in changes)
    assert d.counts["cells_changed"] == 0 and d.counts["rows_added"] == 0
    rebuilt = apply_diff(old, d).sort_by("k")
    assert rebuilt.equals(new.sort_by("k"))


def test_reorder_only():
    old = pa.table({"k": [1], "a": [1], "b": [2], "c": [3]})
    new = old.select(["k", "c", "a", "b"])
    d = diff_tables(old, new)
    assert d.schema_changes.to_pylist() == [
        {"change": "column_reordered", "column": "c", "old": "4", "new": "2"}]


def test_source_cells():
    old, new = ice_table(), ice_table({"Feb": [1, 1004, 20036]})
    meta = {"sheet": "Book-Ins", "source_columns": {m: chr(66 + i) for i, m in enumerate(MONTHS)}}
    d = diff_tables(old, new, old_meta=meta, new_meta=meta,
                    old_source_rows=pa.array([8, 9, 10]), new_source_rows=pa.array([9, 10, 11]))
    r = d.cells_changed.to_pylist()[0]
    assert (r["column"], r["old_cell"], r["new_cell"]) == ("Feb", "Book-Ins!F8", "Book-Ins!F9")


def test_keyless_multiset_and_pairing():
    old = pa.table({"a": [1, 1, 2, 3, 4], "b": ["x", "x", "y", "z", "w"], "c": [1, 1, 2, 3, 4]})
    new = pa.table({"a": [1, 2, 3, 3, 9], "b": ["x", "y", "z", "q", "v"], "c": [1, 2, 30, 3, 99]})
    d = diff_tables(old, new)
    assert d.key is None
    # (3,z,3) -> (3,z,30) is one edit; duplicate (1,x,1) removed; (4,w,4) vs (9,v,99) differ in 3
    assert [(r["old_row"], r["column"], r["old"], r["new"]) for r in d.cells_changed.to_pylist()
            ] == [(3, "c", "3", "30")]
    assert sorted(r["a"] for r in d.rows_removed.to_pylist()) == [1, 4]
    assert sorted(r["a"] for r in d.rows_added.to_pylist()) == [3, 9]


def test_table_added_removed_and_summary(tmp_path):
    t = ice_table()
    a = FakeSnapshot(tmp_path, "a", {"x": t, "old_only": t})
    b = FakeSnapshot(tmp_path, "b", {"x": t, "new_only": t})
    sd = diff_snapshots(a, b)
    assert sd.tables_added == ["new_only"] and sd.tables_removed == ["old_only"]
    assert sd.tables["x"].is_empty()
    assert sd.tables["new_only"].schema_changes.column("change").to_pylist() == ["table_added"]
    assert sd.counts["tables_added"] == 1 and not sd.is_empty()
    assert summarize(sd)["rows_added"] == 3
    with pytest.raises(AtdError, match="no table"):
        diff_snapshots(a, b, table="zzz")


# ---------------------------------------------------------------- fingerprints


def _random_keyed(n: int, seed: int) -> tuple[pa.Table, pa.Table]:
    rnd = random.Random(seed)
    rows = []
    for i in range(n):
        rows.append({"site": f"s{i // 7}", "n": i % 7,
                     "v": rnd.choice([None, rnd.randint(-5, 5)]),
                     "f": rnd.choice([None, float("nan"), rnd.random()]),
                     "s": rnd.choice([None, "a", "b", "é", ""]),
                     "d": rnd.choice([None, dt.date(2024, 1, rnd.randint(1, 28))])})
    new = []
    for r in rows:
        x = rnd.random()
        if x < 0.05:
            continue
        r2 = dict(r)
        if x < 0.2:
            col = rnd.choice(["v", "f", "s", "d"])
            r2[col] = {"v": rnd.randint(-5, 5), "f": rnd.choice([None, 0.5]),
                       "s": rnd.choice(["a", "zz", None]), "d": None}[col]
        new.append(r2)
    for j in range(n // 20):
        new.append({"site": "new", "n": j, "v": j, "f": None, "s": "n", "d": None})
    rnd.shuffle(new)
    schema = pa.schema([("site", pa.string()), ("n", pa.int64()), ("v", pa.int64()),
                        ("f", pa.float64()), ("s", pa.string()), ("d", pa.date32())])
    return pa.Table.from_pylist(rows, schema), pa.Table.from_pylist(new, schema)


def _oracle(old: pa.Table, new: pa.Table, key: list[str]) -> tuple[set, set, set]:
    """Plain-Python keyed diff: (removed keys, added keys, changed (key, column, old, new))."""
    def same(x, y):
        if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
            return True
        return x == y and (x is None) == (y is None)

    o = {tuple(r[k] for k in key): r for r in old.to_pylist()}
    n = {tuple(r[k] for k in key): r for r in new.to_pylist()}
    changed = set()
    for k in o.keys() & n.keys():
        for c in new.column_names:
            if c not in key and not same(o[k][c], n[k][c]):
                changed.add((k, c))
    return set(o) - set(n), set(n) - set(o), changed


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_oracle_agrees(seed):
    old, new = _random_keyed(300, seed)
    d = diff_tables(old, new, options=DiffOptions(declared_key=["site", "n"]))
    rem, add, changed = _oracle(old, new, ["site", "n"])
    got = {((r["site"], r["n"]), r["column"]) for r in d.cells_changed.to_pylist()}
    assert got == changed
    assert {(r["site"], r["n"]) for r in d.rows_removed.to_pylist()} == rem
    assert {(r["site"], r["n"]) for r in d.rows_added.to_pylist()} == add
    assert d.counts["rows_changed"] == len({k for k, _ in changed})
    # inference finds the same key; fingerprints give the same answer
    d2 = diff_tables(old, new, old_fingerprints=fingerprint_table(old),
                     new_fingerprints=fingerprint_table(new))
    assert d2.key == ["site", "n"]
    assert same(d2.cells_changed, d.cells_changed)
    assert same(d2.rows_added, d.rows_added) and same(d2.rows_removed, d.rows_removed)


@pytest.mark.parametrize("row_copy", [False, True], ids=["row-groups", "arrow-row-copy"])
def test_snapshot_fast_path_matches_slow_path(tmp_path, monkeypatch, row_copy):
    import atdarchive.fingerprint as fingerprint

    # with the row copy, changed rows come from a memory-mapped Arrow file, not Parquet
    monkeypatch.setattr(fingerprint, "ROW_COPY_MIN_ROWS", 1 if row_copy else 10**12)
    old, new = _random_keyed(2000, 7)
    src = {"t": list(range(5, 5 + old.num_rows))}
    meta = {"t": {"sheet": "S", "source_columns": {"v": "C", "f": "D"}}}
    a = FakeSnapshot(tmp_path, "a", {"t": old}, meta, src, row_group_size=256)
    b = FakeSnapshot(tmp_path, "b", {"t": new}, meta, {"t": list(range(5, 5 + new.num_rows))},
                     row_group_size=256)
    slow = diff_snapshots(a, b).tables["t"]
    cache = tmp_path / "cache"
    for s in (a, b):
        path = compute_fingerprints(s.table_path("t"), cache)
        assert path.exists() and compute_fingerprints(s.table_path("t"), cache) == path
    fp = load_fingerprints(a.table_path("t"), cache)
    assert fp is not None and fp.key_unique(["site", "n"]) and not fp.key_unique(["site"])
    assert fingerprint.rows_copy_path(a.table_path("t"), cache).exists() == row_copy
    fast = diff_snapshots(a, b, cache_dir=cache).tables["t"]
    assert (fast.key, fast.key_source) == (slow.key, slow.key_source) == (["site", "n"],
                                                                          "inferred")
    assert same(fast.cells_changed, slow.cells_changed)
    assert same(fast.rows_added, slow.rows_added)
    assert same(fast.rows_removed, slow.rows_removed)
    assert fast.counts == slow.counts and fast.counts["cells_changed"] > 0
    assert any(c for c in fast.cells_changed.column("old_cell").to_pylist())
    # keyless through the fast path (a table with duplicate rows)
    dup_old = pa.table({"x": [1.5, 1.5, 2.5, 3.5], "y": ["a", "a", "b", "c"]})
    dup_new = pa.table({"x": [1.5, 2.5, 2.5, 3.5], "y": ["a", "b", "b", "d"]})
    a2 = FakeSnapshot(tmp_path, "a2", {"t": dup_old})
    b2 = FakeSnapshot(tmp_path, "b2", {"t": dup_new})
    for s in (a2, b2):
        compute_fingerprints(s.table_path("t"), cache)
    f2 = diff_snapshots(a2, b2, cache_dir=cache).tables["t"]
    s2 = diff_snapshots(a2, b2).tables["t"]
    assert f2.counts == s2.counts == {"rows_added": 1, "rows_removed": 1, "rows_changed": 1,
                                      "rows_renamed": 0, "cells_changed": 1,
                                      "schema_changes": 0}


def test_declared_duplicate_key_reported_through_fast_path(tmp_path):
    t = pa.table({"k": [1, 1, 2], "v": [1, 2, 3]})
    u = pa.table({"k": [1, 1, 2], "v": [2, 5, 3]})
    a = FakeSnapshot(tmp_path, "a", {"t": t}, {"t": {"key": ["k"]}})
    b = FakeSnapshot(tmp_path, "b", {"t": u}, {"t": {"key": ["k"]}})
    for s in (a, b):
        compute_fingerprints(s.table_path("t"), tmp_path / "c")
    fast = diff_snapshots(a, b, table="t", cache_dir=tmp_path / "c").tables["t"]
    slow = diff_snapshots(a, b, table="t").tables["t"]
    for d in (fast, slow):
        assert d.key == ["k"] and d.key_source == "declared"
        assert [(x["release"], x["key"], x["rows"]) for x in d.duplicate_keys] == [
            ("old", {"k": 1}, 2), ("new", {"k": 1}, 2)]
        # the row (1, 2) is on both sides; the other k=1 row changed 1 -> 5
        assert [(c["old"], c["new"]) for c in d.cells_changed.to_pylist()] == [("1", "5")]
    assert fast.counts == slow.counts


