"""Rebuilding the new table from the old one and a diff (proof that a diff is complete)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from atdarchive.diff.compare import decode, from_text, to_text
from atdarchive.diff.types import ROW_EXTRAS, ROW_INDEX, TableDiff
from atdarchive.keys import flat


def _cast_column(arr: pa.Array, target: pa.DataType) -> pa.Array:
    arr = decode(arr)
    if arr.type == target:
        return arr
    try:
        return pc.cast(arr, target, safe=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return from_text(to_text(arr), target)


def _scatter(base: pa.Array, n: int, positions: np.ndarray, values: pa.Array) -> pa.Array:
    """`base` with `values` put at `positions` (given in the order of `values`)."""
    order = np.argsort(positions, kind="stable")
    mask = np.zeros(n, dtype=bool)
    mask[positions] = True
    return pc.replace_with_mask(base, pa.array(mask), values.take(pa.array(order)))


def apply_diff(old: pa.Table, diff: TableDiff) -> pa.Table:
    """Rebuild the new table from the old one and a diff (tests the diff is complete)."""
    target = pa.schema([f for f in diff.rows_added.schema if f.name not in ROW_EXTRAS])
    sc = diff.schema_changes.to_pylist()
    if any(r["change"] == "table_removed" for r in sc):
        return target.empty_table()
    renames = {r["old"]: r["new"] for r in sc if r["change"] == "column_renamed"}
    n = old.num_rows
    cols: dict[str, pa.Array] = {}
    for c in old.column_names:
        nc = renames.get(c, c)
        if nc in target.names:
            cols[nc] = _cast_column(flat(old.column(c)), target.field(nc).type)
    cells = diff.cells_changed
    if cells.num_rows:
        rows = cells.column("old_row").to_numpy()
        new_text = flat(cells.column("new"))
        by_col: dict[str, list[int]] = {}
        for i, c in enumerate(cells.column("column").to_pylist()):
            by_col.setdefault(c, []).append(i)
        for c, idx in by_col.items():
            sel = np.array(idx)
            values = from_text(new_text.take(pa.array(sel)), target.field(c).type)
            cols[c] = _scatter(cols[c], n, rows[sel], values)
    if diff.added_values is not None:
        av = diff.added_values
        pos = av.column("old_row").to_numpy()
        for c in target.names:
            if c in cols or c not in av.column_names:
                continue
            typ = target.field(c).type
            cols[c] = _scatter(pa.nulls(n, typ), n, pos, flat(av.column(c)).cast(typ))
    for c in target.names:
        if c not in cols:
            cols[c] = pa.nulls(n, target.field(c).type)
    table = pa.table({c: cols[c] for c in target.names}, schema=target)
    keep = np.ones(n, dtype=bool)
    keep[diff.rows_removed.column(ROW_INDEX).to_numpy()] = False
    table = table.filter(pa.array(keep))
    added = diff.rows_added.select(target.names).cast(target)
    return pa.concat_tables([table, added])
