"""`diff --stat`: rows inserted and deleted per table, from cached fingerprints alone.

Counted like `git diff --stat` counts lines: a row of the new table with no
identical row in the old one is *inserted*, a row of the old table with none
in the new one *deleted* (as multisets), so a revised row counts once each
way. This needs no key and reads nothing but, per changed table, the two
memory-mapped fingerprint files made at commit (`atdarchive.fingerprint`);
tables whose record content fingerprint did not change are not opened at all,
and the Parquet tables are not read (nor verified: the fingerprints are keyed
by the files' recorded sha256). Neither the engine nor pyarrow.compute is
imported, so a stat costs little more than starting Python with pyarrow.

Where fingerprints cannot answer — none cached, columns or types that differ
between the sides (the engine compares int 1 and float 1.0 as equal), options
under which unequal values compare equal (tolerances, case, whitespace,
`--columns`, `--ignore`) — that table goes through the engine and its counts
are put in the same terms: inserted = rows added + rows changed, deleted =
rows removed + rows changed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from atdarchive.diff.sources import record_tables, table_names, table_sha
from atdarchive.diff.types import DiffOptions, TableDiff

STATUSES = ("changed", "unchanged", "added", "removed")


@dataclass
class TableStat:
    """Rows inserted/deleted in one table; `status` is one of `STATUSES`."""

    table: str
    status: str
    inserted: int = 0
    deleted: int = 0
    schema_changed: bool = False

    def is_empty(self) -> bool:
        return self.status == "unchanged"

    @classmethod
    def of_diff(cls, td: TableDiff) -> TableStat:
        """The stat of an engine diff (revised rows count as inserted and deleted)."""
        c = td.counts
        kinds = set(td.schema_changes.column("change").to_pylist())
        status = ("added" if "table_added" in kinds else "removed" if "table_removed" in kinds
                  else "unchanged" if td.is_empty() else "changed")
        return cls(td.table, status, c["rows_added"] + c["rows_changed"],
                   c["rows_removed"] + c["rows_changed"],
                   bool(kinds - {"table_added", "table_removed"}))


@dataclass
class SnapshotStat:
    """Per-table stats between two snapshots."""

    a_id: str | None
    b_id: str | None
    tables: dict[str, TableStat]

    @property
    def counts(self) -> dict[str, int]:
        out = {f"tables_{s}": 0 for s in STATUSES}
        for ts in self.tables.values():
            out[f"tables_{ts.status}"] += 1
        out["rows_inserted"] = sum(ts.inserted for ts in self.tables.values())
        out["rows_deleted"] = sum(ts.deleted for ts in self.tables.values())
        return out

    def is_empty(self) -> bool:
        return all(ts.is_empty() for ts in self.tables.values())

    def to_json(self) -> dict[str, Any]:
        return {"a": self.a_id, "b": self.b_id, "counts": self.counts,
                "tables": {n: {"status": ts.status, "inserted": ts.inserted,
                               "deleted": ts.deleted, "schema_changed": ts.schema_changed}
                           for n, ts in self.tables.items() if not ts.is_empty()}}


def stat_snapshots(a: Any, b: Any, *, table: str | None = None,
                   options: DiffOptions | None = None, cache_dir: Any = None,
                   declared_keys: dict[str, list[str]] | None = None,
                   key_for: Callable[[str], Any] | None = None) -> SnapshotStat:
    """Rows inserted/deleted per table from `a` to `b` (or in `table` only); arguments
    as for `diff_snapshots`, which answers for the tables fingerprints cannot."""
    options = options or DiffOptions()
    out = SnapshotStat(getattr(a, "id", None), getattr(b, "id", None), {})
    if not options.exact():  # unequal values may compare equal: the engine decides
        from atdarchive.diff.snapshots import diff_snapshots

        sd = diff_snapshots(a, b, table=table, options=options, cache_dir=cache_dir,
                            declared_keys=declared_keys, key_for=key_for)
        out.tables = {n: TableStat.of_diff(td) for n, td in sd.tables.items()}
        return out
    meta_a, meta_b = record_tables(a), record_tables(b)
    in_a, in_b = set(a.table_names), set(b.table_names)
    for name in table_names(a, b, table):
        if name not in in_b:
            out.tables[name] = TableStat(name, "removed", deleted=_rows(a, name))
        elif name not in in_a:
            out.tables[name] = TableStat(name, "added", inserted=_rows(b, name))
        elif meta_a.get(name, {}).get("fingerprint") is not None and \
                meta_a[name]["fingerprint"] == meta_b.get(name, {}).get("fingerprint"):
            out.tables[name] = TableStat(name, "unchanged")  # same content, not opened
        else:
            stat = _from_fingerprints(a, b, name, cache_dir, options)
            if stat is None:
                from atdarchive.diff.snapshots import diff_snapshot_table

                stat = TableStat.of_diff(diff_snapshot_table(
                    a, b, name, options, cache_dir=cache_dir, declared_keys=declared_keys,
                    key_for=key_for))
            out.tables[name] = stat
    return out


def _rows(snap: Any, name: str) -> int:
    rows = record_tables(snap).get(name, {}).get("rows")
    return int(rows) if rows is not None else snap.table(name).num_rows


def _from_fingerprints(a: Any, b: Any, name: str, cache_dir: Any,
                       options: DiffOptions) -> TableStat | None:
    """The stat of a table both sides have, or None when fingerprints cannot tell."""
    from atdarchive.fingerprint import count_not_in, load_fingerprints

    if cache_dir is None:
        return None
    fps = []
    for snap in (a, b):
        sha = table_sha(snap, name)
        fp = load_fingerprints(None if sha else snap.table_path(name), cache_dir, sha256=sha)
        if fp is None:
            return None
        fps.append(fp)
    fa, fb = fps
    if fa.compatible(fb):
        inserted, deleted = count_not_in(fb.fp, fa.fp), count_not_in(fa.fp, fb.fp)
        reordered = [c for c, _ in fa.columns] != [c for c, _ in fb.columns]
        status = "changed" if inserted or deleted or reordered else "unchanged"
        return TableStat(name, status, inserted, deleted, reordered)
    if fa.version != fb.version or options.strict_types:
        return None
    return _across_schema_change(name, fa, fb)


def _across_schema_change(name: str, fa: Any, fb: Any) -> TableStat | None:
    """Rows inserted/deleted over the columns both sides share, from per-column hashes:
    what the engine counts when columns were added, removed or changed type (int <->
    float compare by value). None when the hashes are missing, a shared column changed
    to another class of values, or a column may have been renamed (the engine compares
    renamed columns too; which ones it pairs depends on its row matching)."""
    from atdarchive.fingerprint import count_not_in

    ha, hb = fa.column_hashes, fb.column_hashes
    if ha is None or hb is None or fa.null_hash != fb.null_hash:
        return None
    common = [c for c in hb if c in ha]
    if any(fa.column_classes[c] != fb.column_classes[c] for c in common):
        return None
    rows_a, rows_b = fa.rows_over(common), fb.rows_over(common)
    removed, added = [c for c in ha if c not in hb], [c for c in hb if c not in ha]
    if removed and added and _rename_possible(fa, fb, rows_a, rows_b, removed, added):
        return None
    rows_a.sort()
    rows_b.sort()
    return TableStat(name, "changed", count_not_in(rows_b, rows_a),
                     count_not_in(rows_a, rows_b), True)


def _rename_possible(fa: Any, fb: Any, rows_a: Any, rows_b: Any, removed: list[str],
                     added: list[str]) -> bool:
    """Whether the engine could take a removed column for a renamed added one.

    Keyless, it renames a column whose values are the same multiset; keyed, one whose
    values are equal on every row matched by key. Rows equal on all shared columns
    are matched under any key (it is among them), so one such pair that differs in
    (removed, added) rules the rename out; so do value sets with nothing in common.
    A key is possible only when rows are unique over the shared columns.
    """
    # (np.unique / intersect1d would import numpy.ma, ~15 ms: sorted arrays instead)
    order_a = np.argsort(rows_a, kind="stable")
    sorted_a, sorted_b = rows_a[order_a], np.sort(rows_b)
    keyed = not (np.any(sorted_a[1:] == sorted_a[:-1]) or np.any(sorted_b[1:] == sorted_b[:-1]))
    same_b, same_a = _positions_in(sorted_a, rows_b)
    same_a = order_a[same_a]  # rows unchanged on the shared columns, paired
    null = np.uint64(fa.null_hash)
    for r in removed:
        hr = fa.column_hashes[r]
        if np.all(hr == null):
            continue  # an all-null column is never taken for a rename
        for c in added:
            hc = fb.column_hashes[c]
            if fa.column_classes[r] != fb.column_classes[c]:
                return True  # values compare as text across classes: cannot tell
            multiset = len(hr) == len(hc) and np.array_equal(np.sort(hr), np.sort(hc))
            if multiset or (keyed and not np.any(hr[same_a] != hc[same_b])
                            and len(_positions_in(np.sort(hr[hr != null]), hc[hc != null])[0])):
                return True
    return False


def _positions_in(sorted_values: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(positions into `values`, positions into `sorted_values`) of the values found."""
    if len(sorted_values) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    pos = np.minimum(np.searchsorted(sorted_values, values), len(sorted_values) - 1)
    found = np.flatnonzero(sorted_values[pos] == values)
    return found, pos[found]
