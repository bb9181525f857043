"""Property: the indexed blame equals a naive walk over every snapshot in publication
order, for random histories (adds, removes, edits, republications, backfills)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from conftest import write_csv
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from atdarchive import Archive
from atdarchive.blame import blame, update_index

KEYS = ["a", "b", "c", "d"]
COLUMNS = ["x", "y"]

# a new table: any subset of keys (adds, removes), small values (edits and reverts)
table = st.dictionaries(st.sampled_from(KEYS),
                        st.tuples(st.integers(0, 2), st.integers(0, 2)), min_size=1)
release = st.one_of(table, table,
                    st.integers(0, 10).map(lambda i: ("republish", i)))  # re-post bytes


@st.composite
def histories(draw):
    releases = [draw(table), *draw(st.lists(release, min_size=1, max_size=4))]
    # distinct publication days in a random commit order: later commits may be backfills
    days = draw(st.lists(st.integers(1, 28), min_size=len(releases), max_size=len(releases),
                         unique=True))
    warm = draw(st.booleans())  # index kept warm at each commit, or built lazily at the end
    older = draw(st.integers(0, len(releases) - 1))
    return releases, days, warm, older


def naive_blame(tables: list[tuple[str, dict]]) -> dict:
    """Cell -> (snapshot, previous, revisions, value) after the last table, in plain Python."""
    state: dict[tuple[str, str], dict] = {}
    first_seen: dict[str, str] = {}
    for snap, rows in tables:
        for key, values in rows.items():
            first_seen.setdefault(key, snap)
            for column, value in zip(["k", *COLUMNS], [key, *values], strict=True):
                cell = state.get((key, column))
                if cell is None:
                    state[(key, column)] = {"snapshot": snap, "previous": None,
                                            "revisions": 0, "value": str(value)}
                elif cell["value"] != str(value):
                    state[(key, column)] = {"snapshot": snap, "previous": cell["value"],
                                            "revisions": cell["revisions"] + 1,
                                            "value": str(value)}
    last_snap, last_rows = tables[-1]
    out = {}
    for key in last_rows:
        order = [snap for snap, _ in tables]
        newest = max((state[(key, c)]["snapshot"] for c in ["k", *COLUMNS]), key=order.index)
        for column in ["k", *COLUMNS]:
            out[(key, column)] = {**state[(key, column)], "row_first_seen": first_seen[key],
                                  "row_last_changed": newest}
    return out


def indexed(archive: Archive, ref: str) -> dict:
    return {(r["k"], r["column"]): {f: r[f] for f in ("snapshot", "previous", "revisions",
                                                      "value", "row_first_seen",
                                                      "row_last_changed")}
            for r in blame(archive, ref).to_pylist()}


@settings(max_examples=15, deadline=None, derandomize=bool(os.environ.get("CI")),
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(histories())
def test_indexed_blame_equals_naive_walk(spec):
    releases, days, warm, older = spec
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        archive = Archive.init(base / "arc")
        archive.add_dataset("ds")
        files: list[tuple[Path, dict]] = []
        for i, (content, day) in enumerate(zip(releases, days, strict=True)):
            if isinstance(content, tuple):
                path, rows = files[content[1] % len(files)]
            else:
                rows = dict(sorted(content.items()))
                path = write_csv(base / f"r{i}.csv", [
                    {"k": k, "x": v[0], "y": v[1]} for k, v in rows.items()])
            result = archive.commit("ds", path, published=f"2024-01-{day:02d}")
            files.append((path, rows))
            if warm:
                update_index(archive, result.snapshot)
        series = archive.history("ds").channel("public")
        content = {}
        for entry in series:  # each snapshot's rows, read back from the naive side's files
            content[entry.id] = next(rows for path, rows in files
                                     if path.name == entry.record["original"]["name"])
        walk = [(e.id, content[e.id]) for e in series]
        assert indexed(archive, "ds@latest") == naive_blame(walk)
        pos = older % len(series)
        assert indexed(archive, f"ds@{series[pos].id[:12]}") == naive_blame(walk[: pos + 1])
