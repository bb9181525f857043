"""The long layout: one line per change (`--format csv|parquet|jsonl`).

Columns `table, change, key, old_row, new_row, column, old, new, abs_change,
rel_change, old_cell, new_cell` (see `atdarchive.render.diff_writers`); CSV and
Parquet also carry each key column as a real column after `key` (named as in the
table, `key:NAME` where that clashes), so a spreadsheet or DuckDB can filter on it.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from atdarchive.diff.types import SnapshotDiff, TableDiff
from atdarchive.errors import AtdError
from atdarchive.render import diff_records as records

_S, _I, _F = pa.string(), pa.int64(), pa.float64()
LONG_SCHEMA = pa.schema([
    ("table", _S), ("change", _S), ("key", _S), ("old_row", _I), ("new_row", _I),
    ("column", _S), ("old", _S), ("new", _S), ("abs_change", _F), ("rel_change", _F),
    ("old_cell", _S), ("new_cell", _S),
])
_CELL_FIELDS = ("old_row", "new_row", "column", "old", "new", "abs_change", "rel_change",
                "old_cell", "new_cell")


def long_records(diff: TableDiff | SnapshotDiff, as_objects: bool) -> Iterator[dict]:
    """The changes as long-layout dicts; `key` and row values as JSON text unless
    `as_objects`."""
    sd = records.as_snapshot_diff(diff)

    def enc(obj: Any) -> Any:
        return obj if as_objects or obj is None else records.dumps(obj)

    base = {f.name: None for f in LONG_SCHEMA}
    for name, td in sd.tables.items():
        for r in td.schema_changes.to_pylist():
            yield {**base, "table": name, **r}
        for kind, rows in (("row_removed", td.rows_removed), ("row_added", td.rows_added)):
            side = "old" if kind == "row_removed" else "new"
            for rec in records.row_records(rows):
                key = {k: rec["values"].get(k) for k in td.key} if td.key else None
                yield {**base, "table": name, "change": kind, "key": enc(key),
                       f"{side}_row": rec["row_index"], side: enc(rec["values"])}
        for c in records.cell_records(td):
            yield {**base, "table": name, "change": "cell_changed", "key": enc(c["key"]),
                   **{k: c[k] for k in _CELL_FIELDS}}


def long_table(diff: TableDiff | SnapshotDiff) -> pa.Table:
    """All changes as one Arrow table (the CSV/Parquet layout), key columns included."""
    recs = list(long_records(diff, as_objects=True))
    names = list(dict.fromkeys(k for td in records.as_snapshot_diff(diff).tables.values()
                               for k in (td.key or [])))
    keys = [r["key"] or {} for r in recs]
    for r in recs:
        for k in ("abs_change", "rel_change"):
            if isinstance(r[k], str):  # "NaN"/"Infinity" from jsonable
                r[k] = float(r[k].replace("Infinity", "inf"))
        for k in ("key", "old", "new"):
            if isinstance(r[k], dict):
                r[k] = records.dumps(r[k])
    table = pa.Table.from_pylist(recs, schema=LONG_SCHEMA)
    at = LONG_SCHEMA.get_field_index("key") + 1
    for offset, name in enumerate(names):
        values = [None if (v := key.get(name)) is None else str(v) for key in keys]
        label = f"key:{name}" if name in LONG_SCHEMA.names else name
        table = table.add_column(at + offset, label, pa.array(values, pa.string()))
    return table


def write_jsonl(diff: TableDiff | SnapshotDiff, out: records.Out, **_: object) -> None:
    records.emit("".join(records.dumps(r) + "\n" for r in long_records(diff, as_objects=True)), out)


def write_csv(diff: TableDiff | SnapshotDiff, out: records.Out, **_: object) -> None:
    import pyarrow.csv as pcsv

    buf = io.BytesIO()
    pcsv.write_csv(long_table(diff), buf)
    records.emit(buf.getvalue().decode("utf-8"), out)


def write_parquet(diff: TableDiff | SnapshotDiff, out: records.Out, **_: object) -> None:
    import pyarrow.parquet as pq

    if out is None or not isinstance(out, str | Path):
        raise AtdError("--format parquet needs an output file (-o FILE)")
    pq.write_table(long_table(diff), str(out), compression="zstd")
