"""Properties of row identity (`atdarchive.identity`): random keyed tables with repeated
keys, renamed keys and group rows — the diff of A -> B applied to A gives B, and the
indexed blame equals a plain-Python walk of the documented matching rules."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pyarrow as pa
from conftest import write_csv
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from atdarchive import Archive
from atdarchive.blame import blame
from atdarchive.diff import DiffOptions, apply_diff, diff_tables
from atdarchive.hierarchy import apply as derive
from atdarchive.hierarchy import detect
from atdarchive.identity import keys_alike
from atdarchive.keys import derived_key

SETTINGS = settings(max_examples=40, deadline=None, derandomize=bool(os.environ.get("CI")),
                    suppress_health_check=[HealthCheck.too_slow])
#: Keys one typo, one case change or one truncation apart, and unrelated ones.
KEYS = ["alpha", "alphb", "Alpha", "beta", "gamma", "gamma ray", "gamma rays"]
rows = st.lists(st.tuples(st.sampled_from(KEYS), st.integers(0, 3), st.integers(0, 3)),
                max_size=8)


def as_table(data: list[tuple[str, int, int]]) -> pa.Table:
    return pa.table({"k": pa.array([r[0] for r in data], pa.string()),
                     "x": pa.array([r[1] for r in data], pa.int64()),
                     "y": pa.array([r[2] for r in data], pa.int64())})


def multiset(table: pa.Table) -> list[tuple]:
    return sorted((tuple(r.values()) for r in table.to_pylist()), key=repr)


def test_keys_alike_examples() -> None:
    assert keys_alike("ALEXANDRIA STAGING FACILI", "ALEXANDRIA STAGING FACILITY")
    assert keys_alike("BINGHAMTON", "BINGHAMPTON") and keys_alike("Nassau", "NASSAU")
    assert keys_alike("El  Paso", "El Paso")
    assert not keys_alike("Atlanta", "Boston") and not keys_alike("CBP", "ICE")
    assert not keys_alike("abc", "abd")  # too short to call a typo
    assert not keys_alike("same", "same")


@SETTINGS
@given(rows, rows)
def test_apply_diff_with_repeated_and_renamed_keys(old_rows, new_rows) -> None:
    old, new = as_table(old_rows), as_table(new_rows)
    diff = diff_tables(old, new, options=DiffOptions(declared_key=["k"]))
    assert diff.key == ["k"]
    assert multiset(apply_diff(old, diff)) == multiset(new)
    for r in diff.rows_renamed.to_pylist():
        assert keys_alike(r["old_key"][0], r["new_key"][0])


def _hierarchical(groups: list[tuple[str, list[tuple[str, int]]]]) -> pa.Table:
    labels, counts = [], []
    for group, members in groups:
        labels.append(group)
        counts.append(sum(c for _, c in members))
        for member, count in members:
            labels.append(member)
            counts.append(count)
    return pa.table({"AOR/Technology": labels, "Count": counts})


# as in ICE's table, each AOR lists SmartLINK (every AOR has it) before the others
members = st.tuples(st.integers(1, 50), st.lists(st.tuples(
    st.sampled_from(["VoiceID", "Wristworn", "Ankle Monitor"]), st.integers(1, 50)),
    min_size=1, max_size=3, unique_by=lambda m: m[0])).map(
        lambda m: [("SmartLINK", m[0]), *m[1]])
hierarchies = st.lists(st.tuples(st.sampled_from(["Atlanta", "Boston", "Chicago", "Denver"]),
                                 members), min_size=2, max_size=4, unique_by=lambda g: g[0])


@SETTINGS
@given(hierarchies, hierarchies)
def test_apply_diff_on_hierarchy_keys(a, b) -> None:
    old, new = _hierarchical(a), _hierarchical(b)
    spec = detect(old)
    assert spec is not None and spec.key == ["AOR", "Technology"]
    old_d, new_d = derive(old, spec), derive(new, spec)
    assert derived_key(old_d.schema) == ["AOR", "Technology"]
    diff = diff_tables(old_d, new_d)
    assert diff.key == ["AOR", "Technology"] and diff.key_source == "hierarchy"
    assert multiset(apply_diff(old_d, diff)) == multiset(new_d)
    # a change is reported exactly where the (AOR, Technology) value changed
    before = {(r["AOR"], r["Technology"]): r["Count"] for r in old_d.to_pylist()}
    after = {(r["AOR"], r["Technology"]): r["Count"] for r in new_d.to_pylist()}
    changed = {(c["AOR"], c["Technology"]) for c in diff.cells_changed.to_pylist()}
    assert changed == {k for k in set(before) & set(after) if before[k] != after[k]}


# ---------------------------------------------------------------- blame vs a naive walk


def _close(a: object, b: object) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) <= 0.1 * max(abs(a), abs(b))  # type: ignore[operator]


def naive_blame(releases: list[tuple[str, list[tuple[str, int, int]]]]) -> list[dict]:
    """Cells of the last release -> (snapshot, previous, revisions), by the README's rules:
    keys unique on both sides match; repeated keys match identical rows first, then in
    order; rows that just vanished pair with new rows as renames (alike keys, close
    values, closest first)."""
    state: list[dict] = []  # {"k", "cells": {col: [value, snap, prev, revs]}, "present"}
    for snap, data in releases:
        n_state = len(state)
        count_s: dict[str, int] = {}
        for s in state:
            count_s[s["k"]] = count_s.get(s["k"], 0) + 1
        count_r: dict[str, int] = {}
        for k, _, _ in data:
            count_r[k] = count_r.get(k, 0) + 1
        rid: list[int | None] = [None] * len(data)
        for i, (k, _, _) in enumerate(data):
            if count_s.get(k, 0) <= 1 and count_r[k] <= 1:
                rid[i] = next((j for j, s in enumerate(state) if s["k"] == k), None)
        for k in {k for k, _, _ in data if count_s.get(k, 0) > 1 or count_r[k] > 1}:
            olds = [j for j, s in enumerate(state) if s["k"] == k]
            news = [i for i, r in enumerate(data) if r[0] == k]
            for content in dict.fromkeys((r[1], r[2]) for r in (data[i] for i in news)):
                o = [j for j in olds if (state[j]["cells"]["x"][0],
                                         state[j]["cells"]["y"][0]) == tuple(map(str, content))]
                n = [i for i in news if (data[i][1], data[i][2]) == content]
                for j, i in zip(o, n, strict=False):
                    rid[i] = j
                    olds.remove(j)
                    news.remove(i)
            for j, i in zip(olds, news, strict=False):
                rid[i] = j
        matched = {j for j in rid if j is not None}
        gone = [j for j in range(n_state) if state[j]["present"] and j not in matched]
        fresh = [i for i in range(len(data)) if rid[i] is None]
        cand = [(j, i) for j in gone for i in fresh if keys_alike(state[j]["k"], data[i][0])]
        scores = [sum(_close(int(state[j]["cells"][c][0]), data[i][p])
                      for c, p in (("x", 1), ("y", 2))) / 2 for j, i in cand]
        used_j: set[int] = set()
        used_i: set[int] = set()
        for pos in sorted(range(len(cand)), key=lambda p: -scores[p]):
            if scores[pos] < 0.5:
                break
            j, i = cand[pos]
            if j not in used_j and i not in used_i:
                used_j.add(j)
                used_i.add(i)
                rid[i] = j
        for s in state:
            s["present"] = False
        for i, (k, x, y) in enumerate(data):
            if rid[i] is None:
                state.append({"k": k, "cells": {c: [str(v), snap, None, 0] for c, v in
                                                (("k", k), ("x", x), ("y", y))}})
                rid[i] = len(state) - 1
            s = state[rid[i]]
            s["present"], s["k"] = True, k
            for c, v in (("k", k), ("x", x), ("y", y)):
                cell = s["cells"][c]
                if cell[0] != str(v):
                    s["cells"][c] = [str(v), snap, cell[0], cell[3] + 1]
        rows_of = rid
    out = []
    for row, j in enumerate(rows_of):
        for c in ("k", "x", "y"):
            value, snap, prev, revs = state[j]["cells"][c]
            out.append({"row": row, "column": c, "value": value, "snapshot": snap,
                        "previous": prev, "revisions": revs})
    return sorted(out, key=lambda r: (r["row"], r["column"]))


@settings(max_examples=12, deadline=None, derandomize=bool(os.environ.get("CI")),
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(rows.filter(bool), min_size=2, max_size=4))
def test_indexed_blame_equals_naive_walk_with_repeats_and_renames(history) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        archive = Archive.init(base / "arc")
        archive.add_dataset("ds", keys={"data": ["k"]})
        walk = []
        for i, data in enumerate(history):
            path = write_csv(base / f"r{i}.csv", [{"k": k, "x": x, "y": y} for k, x, y in data])
            result = archive.commit("ds", path, published=f"2024-01-{i + 1:02d}")
            walk.append((result.snapshot.id, data))
        got = sorted(({f: r[f] for f in ("row", "column", "value", "snapshot", "previous",
                                         "revisions")} for r in blame(archive, "ds@latest")
                      .to_pylist()), key=lambda r: (r["row"], r["column"]))
        assert got == naive_blame(walk)
