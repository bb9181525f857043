"""Building the change tables: one side of a diff, changed cells, added/removed rows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from atdarchive.diff.compare import decode, equal_mask, to_number, to_text
from atdarchive.diff.types import ROW_INDEX, SOURCE_ROW, DiffOptions, cells_schema, key_out_name
from atdarchive.keys import flat


@dataclass
class Side:
    """One side of a diff: the (possibly subset) table and how its rows map back."""

    table: pa.Table
    index: np.ndarray  # global row number of each row of `table`
    src: pa.Array | None  # source (sheet) rows aligned with `table`
    meta: dict | None  # the table's record entry (sheet, source columns)

    @classmethod
    def whole(cls, table: pa.Table, src: pa.Array | None, meta: dict | None) -> Side:
        return cls(table, np.arange(table.num_rows, dtype=np.int64), src, meta)

    def subset(self, rows: np.ndarray) -> Side:
        """The side restricted to `rows` (positions into `table`)."""
        idx = pa.array(rows)
        return Side(self.table.take(idx), self.index[rows], self.take_src(rows), self.meta)

    def take_src(self, rows: np.ndarray) -> pa.Array | None:
        return self.src.take(pa.array(rows)) if self.src is not None else None

    def rows_table(self, rows: np.ndarray) -> pa.Table:
        """Rows (positions into `table`) with their `row_index` / `source_row`."""
        return with_rows(self.table.take(pa.array(rows)), self.index[rows], self.take_src(rows))


def with_rows(table: pa.Table, index: np.ndarray, src: pa.Array | None) -> pa.Table:
    """Append `row_index` (and `source_row`) to a table of added/removed rows."""
    extras = {ROW_INDEX: pa.array(index.astype(np.int64))}
    if src is not None:
        extras[SOURCE_ROW] = pc.cast(src, pa.int64())
    for name, arr in extras.items():
        col = name if name not in table.column_names else f"_{name}"
        table = table.append_column(col, arr)
    return table


def _cell_addresses(side: Side, column: str, rows: np.ndarray) -> pa.Array:
    if side.src is None or not (side.meta or {}).get("source_columns"):
        return pa.nulls(len(rows), pa.string())  # no provenance: the readers stay unimported
    from atdarchive.ingest.model import cell_addresses

    return cell_addresses(side.meta, column, side.src, rows)


def cells_piece(old: Side, new: Side, o_local: np.ndarray, n_local: np.ndarray,
                old_col: str, new_col: str, key_fields: Sequence[pa.Field]) -> pa.Table:
    """The cells_changed rows for one column (already known to differ)."""
    a = decode(old.table.column(old_col)).take(pa.array(o_local))
    b = decode(new.table.column(new_col)).take(pa.array(n_local))
    xa, xb = to_number(a), to_number(b)
    na = xa.to_numpy(zero_copy_only=False)
    nb = xb.to_numpy(zero_copy_only=False)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        d = nb - na
        rel = d / np.abs(na)
    valid_d = np.isfinite(d)
    valid_rel = valid_d & (na != 0) & np.isfinite(rel)
    cols: dict[str, pa.Array] = {}
    for f in key_fields:
        col = decode(new.table.column(f.name)).take(pa.array(n_local))
        cols[key_out_name(f.name)] = col.cast(f.type)
    cols.update(
        {
            "old_row": pa.array(old.index[o_local].astype(np.int64)),
            "new_row": pa.array(new.index[n_local].astype(np.int64)),
            "column": pa.array([new_col] * len(o_local), pa.string()),
            "old": to_text(a),
            "new": to_text(b),
            "old_number": xa,
            "new_number": xb,
            "abs_change": pa.array(d, pa.float64(), mask=~valid_d),
            "rel_change": pa.array(rel, pa.float64(), mask=~valid_rel),
            "old_cell": _cell_addresses(old, old_col, o_local),
            "new_cell": _cell_addresses(new, new_col, n_local),
        }
    )
    return pa.table(cols, schema=cells_schema(key_fields))


def compare_pairs(old: Side, new: Side, o_local: np.ndarray, n_local: np.ndarray,
                  pairs: Sequence[tuple[str, str]], options: DiffOptions,
                  key_fields: Sequence[pa.Field]) -> list[pa.Table]:
    """Compare paired rows column by column; one cells piece per column with changes."""
    pieces: list[pa.Table] = []
    if len(o_local) == 0:
        return pieces
    oi, ni = pa.array(o_local), pa.array(n_local)
    for oc, nc in pairs:
        a = flat(old.table.column(oc)).take(oi)
        b = flat(new.table.column(nc)).take(ni)
        p = np.flatnonzero(~equal_mask(a, b, options))
        if len(p):
            pieces.append(cells_piece(old, new, o_local[p], n_local[p], oc, nc, key_fields))
    return pieces
