"""What every diff writer shares: JSON-safe values, row and cell records, output."""

from __future__ import annotations

import datetime as _dt
import decimal
import json
import math
import sys
from pathlib import Path
from typing import IO, Any

import pyarrow as pa

from atdarchive.diff.types import ROW_EXTRAS, ROW_INDEX, SOURCE_ROW, SnapshotDiff, TableDiff

#: Where a writer sends its output: a path, a text stream, or None for stdout.
Out = str | Path | IO[str] | None


def as_snapshot_diff(diff: TableDiff | SnapshotDiff) -> SnapshotDiff:
    """A one-table diff wrapped as a snapshot diff (writers handle only the latter)."""
    if isinstance(diff, SnapshotDiff):
        return diff
    about = diff.about or {}
    return SnapshotDiff((about.get("old") or {}).get("id"), (about.get("new") or {}).get("id"),
                        {diff.table: diff}, about=diff.about)


def diff_title(sd: SnapshotDiff) -> str:
    """`ice: 2025-08-29 (4f0c1e2a9b) → 2025-09-11 (77d2c0e1aa)`: dataset, dates, short ids."""
    if sd.about:
        old, new = sd.about["old"], sd.about["new"]
        channel = f" [{new['channel']}]" if new.get("channel") not in (None, "public") else ""
        return (f"{sd.about['dataset']}{channel}: {old['published']} ({old['short_id']}) "
                f"\u2192 {new['published']} ({new['short_id']})")
    if sd.a_id or sd.b_id:
        return f"Diff {(sd.a_id or '')[:10]} \u2192 {(sd.b_id or '')[:10]}"
    return "Diff"


def emit(text: str, out: Out) -> None:
    """Write `text` to a path, a stream or stdout."""
    if isinstance(out, str | Path):
        Path(out).write_text(text, encoding="utf-8")
    else:
        (out if out is not None else sys.stdout).write(text)


def jsonable(v: Any) -> Any:
    """A Python value from Arrow as something `json.dumps(allow_nan=False)` accepts."""
    if v is None or isinstance(v, bool | int | str):
        return v
    if isinstance(v, float):
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "Infinity" if v > 0 else "-Infinity"
        return v
    if isinstance(v, _dt.datetime | _dt.date | _dt.time):
        return v.isoformat()
    if isinstance(v, _dt.timedelta):
        return v.total_seconds()
    if isinstance(v, decimal.Decimal):
        return str(v)
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [jsonable(x) for x in v]
    return str(v)


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, allow_nan=False, check_circular=False)


def typed(number: float | None, text: str | None) -> Any:
    """JSON value of a cell: a number when numeric (int when integral), else its text."""
    if number is None:
        return text
    if math.isfinite(number) and number.is_integer() and abs(number) < 2**53:
        return int(number)
    return jsonable(number)


def json_column(arr: pa.Array | pa.ChunkedArray) -> list[Any]:
    """A column's values as `jsonable` makes them, converted column-wise: ints, text,
    booleans and finite floats pass as they are (most diffs are mostly those)."""
    import pyarrow.compute as pc

    t = arr.type.value_type if pa.types.is_dictionary(arr.type) else arr.type
    if pa.types.is_date32(t):
        return pc.cast(arr, pa.string()).to_pylist()  # ISO, as date.isoformat()
    values = arr.to_pylist()
    if pa.types.is_integer(t) or pa.types.is_string(t) or pa.types.is_large_string(t) \
            or pa.types.is_boolean(t) or pa.types.is_null(t):
        return values
    if pa.types.is_floating(t):  # only NaN and infinities need a name
        bad = pc.indices_nonzero(pc.fill_null(pc.invert(pc.is_finite(arr)), False))
        for i in bad.to_pylist():
            values[i] = jsonable(values[i])
        return values
    return [jsonable(v) for v in values]


def _extra(rows: pa.Table, name: str) -> list[Any]:
    """`row_index` / `source_row` of each row (`_row_index`... when the table has its own)."""
    col = name if name in rows.column_names else f"_{name}"
    return rows.column(col).to_pylist() if col in rows.column_names else [None] * rows.num_rows


def row_records(rows: pa.Table) -> list[dict]:
    """Added/removed rows as {row_index, source_row, values}."""
    names = [c for c in rows.column_names if c not in ROW_EXTRAS]
    values = zip(*(json_column(rows.column(c)) for c in names), strict=True) if names \
        else ((),) * rows.num_rows
    return [{"row_index": ri, "source_row": sr, "values": dict(zip(names, v, strict=True))}
            for ri, sr, v in zip(_extra(rows, ROW_INDEX), _extra(rows, SOURCE_ROW), values,
                                 strict=True)]


def cell_records(td: TableDiff) -> list[dict]:
    """Changed cells as the JSON layout's `cells_changed` records."""
    cells = td.cells_changed
    col = {c: json_column(cells.column(c)) if c.endswith("_change") else
           cells.column(c).to_pylist() for c in (
               "old_row", "new_row", "column", "old", "new", "old_number", "new_number",
               "abs_change", "rel_change", "old_cell", "new_cell")}
    if td.key:
        key_values = [json_column(cells.column(kn)) for kn in td.key_column_names()]
        keys = [dict(zip(td.key, kv, strict=True)) for kv in zip(*key_values, strict=True)]
    else:
        keys = [None] * cells.num_rows
    return [{"key": k, "old_row": orow, "new_row": nrow, "column": c, "old": o, "new": n,
             "old_value": typed(onum, o), "new_value": typed(nnum, n),
             "abs_change": ac, "rel_change": rc,
             "old_cell": ocell, "new_cell": ncell}
            for k, orow, nrow, c, o, n, onum, nnum, ac, rc, ocell, ncell in zip(
                keys, *col.values(), strict=True)]


def fmt_num(x: float) -> str:
    if math.isnan(x) or math.isinf(x):
        return str(x)
    if float(x).is_integer() and abs(x) < 1e15:
        return f"{int(x):,}".replace(",", "")
    return f"{x:.4g}"


def delta(r: dict) -> str:
    """` (−2)` / ` (+8102, +100%)` after a changed number; '' when not numeric."""
    d = r.get("abs_change")
    if d is None or d == 0:
        return ""
    sign = "+" if d > 0 else "\u2212"
    text = f"{sign}{fmt_num(abs(d))}"
    rel = r.get("rel_change")
    if rel is not None and abs(rel) >= 1.0:  # a jump of 100% or more is worth a glance
        text += f", {sign}{abs(rel) * 100:.0f}%"
    return f" ({text})"


def key_text(td: TableDiff) -> str:
    """`key Agency (inferred)` or the keyless phrase."""
    return (f"key {', '.join(td.key)} ({td.key_source})" if td.key
            else "no unique key: rows compared as a multiset")
