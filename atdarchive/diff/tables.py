"""Diffing two versions of one table: rows matched (keyed or keyless), schema compared,
the change tables assembled into a `TableDiff`."""

from __future__ import annotations

import bisect
from typing import Any

import numpy as np
import pyarrow as pa

from atdarchive.diff.cells import Side, with_rows
from atdarchive.diff.compare import decode
from atdarchive.diff.keyed import (
    duplicate_note,
    duplicate_report,
    key_values,
    match_keyed,
    repeats_report,
    resolve_key,
)
from atdarchive.diff.keyless import match_keyless
from atdarchive.diff.types import (
    RENAMED_SCHEMA,
    ColumnPlan,
    DiffOptions,
    Matching,
    SchemaRow,
    TableDiff,
    cells_schema,
    key_out_name,
    schema_table,
)
from atdarchive.errors import AtdError
from atdarchive.keys import flat


def check_columns_exist(options: DiffOptions, names: set[str], where: str) -> None:
    """Raise AtdError when `--columns` / `--ignore` name a column not in `names`."""
    for opt, label in ((options.columns, "--columns"), (options.ignore, "--ignore")):
        missing = [c for c in opt or [] if c not in names]
        if missing:
            raise AtdError(
                f"{label} names {', '.join(map(repr, missing))}, not a column of {where}; "
                f"columns are: {', '.join(sorted(names))}"
            )


def same_columns(a: pa.Schema, b: pa.Schema) -> bool:
    """The same (name, type) pairs, in any order."""
    return sorted((f.name, str(f.type)) for f in a) == sorted((f.name, str(f.type)) for f in b)


def diff_tables(
    old: pa.Table | None,
    new: pa.Table | None,
    *,
    name: str = "data",
    options: DiffOptions | None = None,
    old_meta: dict | None = None,
    new_meta: dict | None = None,
    old_fingerprints: Any = None,
    new_fingerprints: Any = None,
    old_source_rows: pa.Array | None = None,
    new_source_rows: pa.Array | None = None,
) -> TableDiff:
    """Diff two versions of one table (either may be None: table added/removed).

    `old_fingerprints`/`new_fingerprints` (row-aligned uint64 arrays from
    `fingerprint.fingerprint_table`, or `fingerprint.Fingerprints`) let the
    engine skip rows that are identical on both sides.
    """
    options = options or DiffOptions()
    if old is None and new is None:
        raise ValueError("diff_tables needs at least one table")
    names = set(old.column_names if old is not None else []) | set(
        new.column_names if new is not None else []
    )
    check_columns_exist(options, names, f"table '{name}'")
    key, key_source = resolve_key(old, new, options, name)
    if old is None or new is None:
        return one_sided(old, new, name, key, key_source, old_source_rows, new_source_rows)
    old_side = Side.whole(old, old_source_rows, old_meta)
    new_side = Side.whole(new, new_source_rows, new_meta)
    dups = None  # whole sides: matching reports the repeated keys itself
    if old_fingerprints is not None and new_fingerprints is not None \
            and same_columns(old.schema, new.schema):
        from atdarchive.fingerprint import Fingerprints, from_row_aligned, rows_not_in

        fa = old_fingerprints if isinstance(old_fingerprints, Fingerprints) else \
            from_row_aligned(old_fingerprints, old)
        fb = new_fingerprints if isinstance(new_fingerprints, Fingerprints) else \
            from_row_aligned(new_fingerprints, new)
        multiset = key is None or fa.has_duplicate_rows() or fb.has_duplicate_rows()
        old_side = old_side.subset(rows_not_in(fa, fb, include_duplicates=multiset))
        new_side = new_side.subset(rows_not_in(fb, fa, include_duplicates=multiset))
        if key:  # row subsets: the repeats are counted on the whole tables
            dups = duplicate_report(old, key, "old") + duplicate_report(new, key, "new")
    return diff_core(old_side, new_side, name, key, key_source, options, dups)


def one_sided(
    old: pa.Table | None,
    new: pa.Table | None,
    name: str,
    key: list[str] | None,
    key_source: str,
    old_src: pa.Array | None,
    new_src: pa.Array | None,
) -> TableDiff:
    """The diff of a table that only one side has (table added or removed)."""
    present = new if new is not None else old
    assert present is not None
    change = "table_added" if new is not None else "table_removed"
    rows = with_rows(present, np.arange(present.num_rows),
                     new_src if new is not None else old_src)
    other = with_rows(present.schema.empty_table(), np.zeros(0, np.int64), None)
    key_fields = [present.schema.field(k) for k in key or []]
    added, removed = (rows, other) if new is not None else (other, rows)
    return TableDiff(
        table=name,
        key=key,
        key_source=key_source,
        schema_changes=schema_table([(change, None, None, None)]),
        rows_added=added,
        rows_removed=removed,
        cells_changed=cells_schema(key_fields).empty_table(),
        counts={
            "rows_added": added.num_rows,
            "rows_removed": removed.num_rows,
            "rows_changed": 0,
            "rows_renamed": 0,
            "cells_changed": 0,
            "schema_changes": 1,
        },
    )


def diff_core(
    old: Side,
    new: Side,
    name: str,
    key: list[str] | None,
    key_source: str,
    options: DiffOptions,
    duplicates: list[dict] | None = None,
) -> TableDiff:
    """Diff two sides whose key is already resolved (they may be row subsets);
    `duplicates` are the key values that repeat in either whole table (None: the sides
    are whole tables, and matching finds them)."""
    ot, nt = old.table, new.table
    plan = ColumnPlan.of(ot.column_names, nt.column_names, key, options)
    m = match_keyed(old, new, key, plan, options) if key else match_keyless(
        old, new, plan, options)
    schema_rows = schema_changes(ot.schema, nt.schema, plan, m.renames)
    if m.pieces:
        cells = pa.concat_tables(m.pieces)
        col_pos = {c: i for i, c in enumerate(nt.column_names)}
        order_col = np.array([col_pos[c] for c in cells.column("column").to_pylist()],
                             dtype=np.int64)
        order = np.lexsort((order_col, cells.column("new_row").to_numpy()))
        cells = cells.take(pa.array(order))
    else:
        cells = cells_schema(m.key_fields).empty_table()
    rows_added = new.rows_table(m.added)
    rows_removed = old.rows_table(m.removed)
    rows_changed = len(np.unique(cells.column("new_row").to_numpy())) if cells.num_rows else 0
    renamed = _renamed_table(old, new, key, m.renamed_rows)
    if duplicates is None:
        duplicates = [] if not key or m.repeats is None else (
            repeats_report(ot, key, "old", m.repeats[0])
            + repeats_report(nt, key, "new", m.repeats[1]))
    notes = list(m.notes)
    if duplicates:
        notes.insert(0, duplicate_note(key or [], duplicates))
    return TableDiff(
        table=name,
        key=list(key) if key else None,
        key_source=key_source,
        schema_changes=schema_table(schema_rows),
        rows_added=rows_added,
        rows_removed=rows_removed,
        cells_changed=cells,
        counts={
            "rows_added": rows_added.num_rows,
            "rows_removed": rows_removed.num_rows,
            "rows_changed": rows_changed,
            "rows_renamed": renamed.num_rows,
            "cells_changed": cells.num_rows,
            "schema_changes": len(schema_rows),
        },
        added_values=_added_values(old, new, plan, m),
        notes=notes,
        rows_renamed=renamed,
        duplicate_keys=list(duplicates or []),
    )


def _renamed_table(old: Side, new: Side, key: list[str] | None,
                   renamed: tuple[np.ndarray, np.ndarray] | None) -> pa.Table:
    """`rows_renamed`: global row numbers and the key text on each side."""
    if not key or renamed is None or not len(renamed[0]):
        return RENAMED_SCHEMA.empty_table()
    o, n = renamed
    return pa.table({"old_row": pa.array(old.index[o]), "new_row": pa.array(new.index[n]),
                     "old_key": pa.array(key_values(old.table, key, o), pa.list_(pa.string())),
                     "new_key": pa.array(key_values(new.table, key, n), pa.list_(pa.string()))},
                    schema=RENAMED_SCHEMA)


def _added_values(old: Side, new: Side, plan: ColumnPlan, m: Matching) -> pa.Table | None:
    """Values of columns added to rows present on both sides (for `apply_diff`)."""
    renamed_new = {n for _, n in m.renames}
    plain_added = [c for c in plan.added if c not in renamed_new]
    if not plain_added or m.matched is None or not len(m.matched[0]):
        return None
    o_m, n_m = m.matched
    nt = new.table
    cols: dict[str, pa.Array] = {}
    for f in m.key_fields:
        cols[key_out_name(f.name)] = decode(nt.column(f.name)).take(pa.array(n_m))
    cols["old_row"] = pa.array(old.index[o_m])
    cols["new_row"] = pa.array(new.index[n_m])
    for c in plain_added:
        cols[c] = flat(nt.column(c)).take(pa.array(n_m))
    return pa.table(cols)


def schema_changes(old: pa.Schema, new: pa.Schema, plan: ColumnPlan,
                   renames: list[tuple[str, str]]) -> list[SchemaRow]:
    """Columns added, removed, renamed, retyped and reordered between two schemas."""
    renamed_old = {o for o, _ in renames}
    renamed_new = {n for _, n in renames}
    rows: list[SchemaRow] = []
    for c in plan.added:
        if c not in renamed_new:
            rows.append(("column_added", c, None, str(new.field(c).type)))
    for c in plan.removed:
        if c not in renamed_old:
            rows.append(("column_removed", c, str(old.field(c).type), None))
    for o, n in renames:
        rows.append(("column_renamed", n, o, n))
    for o, n in [(c, c) for c in plan.common] + renames:
        to, tn = old.field(o).type, new.field(n).type
        if to != tn:
            rows.append(("type_changed", n, str(to), str(tn)))
    # reorder: columns present on both sides whose relative order changed
    rename_map = dict(renames)
    common = set(plan.common)
    old_order = [rename_map.get(c, c) for c in old.names if c in common or c in rename_map]
    new_order = [c for c in new.names if c in common or c in renamed_new]
    pos_old = {c: i for i, c in enumerate(old_order)}
    keep = _lis_keep([pos_old[c] for c in new_order])
    for i, c in enumerate(new_order):
        if i not in keep:
            rows.append(("column_reordered", c, str(pos_old[c] + 1), str(i + 1)))
    return rows


def _lis_keep(seq: list[int]) -> set[int]:
    """Indices of one longest increasing subsequence (columns that did not move)."""
    tails: list[int] = []
    tails_idx: list[int] = []
    prev = [-1] * len(seq)
    for i, v in enumerate(seq):
        j = bisect.bisect_left(tails, v)
        if j == len(tails):
            tails.append(v)
            tails_idx.append(i)
        else:
            tails[j] = v
            tails_idx[j] = i
        prev[i] = tails_idx[j - 1] if j else -1
    keep: set[int] = set()
    i = tails_idx[-1] if tails_idx else -1
    while i != -1:
        keep.add(i)
        i = prev[i]
    return keep
