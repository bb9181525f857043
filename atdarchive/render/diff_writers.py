"""Writers for diffs: text, json, jsonl, csv, parquet, markdown, html.

The engine (`atdarchive.diff`) returns Arrow tables; writers only render. This
module is the registry (`WRITERS`: format -> module and function, imported only
when that format is asked for, so choosing one format costs only its imports)
and `write_diff`; the writers live in `diff_text`, `diff_json`, `diff_long`
(csv, parquet, jsonl) and `diff_pages` (markdown, html), sharing `diff_records`.
A new format is one entry here plus its function `write(diff, out, *, limit,
color, width)`.

JSON (`--format json`) — always one valid JSON object, also for an empty diff
(non-finite numbers become the strings "NaN", "Infinity", "-Infinity"; dates
and times ISO strings; bytes hex)::

    {
      "format": "atdarchive.diff/1",
      "a": "<old snapshot id or null>",
      "b": "<new snapshot id or null>",
      "counts": {"rows_added": 0, "rows_removed": 0, "rows_changed": 0,
                 "rows_renamed": 0, "cells_changed": 0, "schema_changes": 0,
                 "tables_added": 0, "tables_removed": 0},
      "tables_added": ["<name>", ...],
      "tables_removed": ["<name>", ...],
      "tables": {
        "<table>": {
          "key": ["<column>", ...] | null,       # null: rows diffed as a multiset
          "key_source": "given" | "declared" | "hierarchy" | "inferred" | "none",
          "counts": {... as above, without tables_*},
          "notes": ["..."],
          "schema_changes": [{"change": "column_added" | "column_removed" |
                "column_renamed" | "column_reordered" | "type_changed" |
                "table_added" | "table_removed",
                "column": str | null, "old": str | null, "new": str | null}],
          "rows_added":   [{"row_index": int, "source_row": int | null,
                            "values": {"<column>": value, ...}}],
          "rows_removed": [... same ...],
          "cells_changed": [{"key": {"<key column>": value} | null,
                "old_row": int, "new_row": int, "column": str,
                "old": str | null, "new": str | null,     # values as text
                "old_value": value, "new_value": value,   # JSON-typed values
                "abs_change": float | null, "rel_change": float | null,
                "old_cell": "Sheet!C7" | null, "new_cell": "Sheet!C7" | null}],
          "rows_renamed": [{"old_row": int, "new_row": int,    # key changed slightly;
                "old_key": {"<key column>": str}, "new_key": {...}}],  # its cells above
          "duplicate_keys": [{"release": "old" | "new", "key": {...}, "rows": int}]
        }
      }
    }

For `column_reordered`, old/new are 1-based positions; for `type_changed`, types.

CSV / Parquet / JSONL (`--format csv|parquet|jsonl`) — one long table, one
line per change, with columns: `table, change, key, old_row, new_row, column,
old, new, abs_change, rel_change, old_cell, new_cell`. `change` is a schema
change kind, `row_added`, `row_removed` or `cell_changed`; `key` is a JSON
object of key values (null for keyless tables); for added/removed rows `new`
/`old` hold the whole row as a JSON object. CSV and Parquet add each key column as a
real column after `key` (named as in the table; `key:NAME` on a clash). (JSONL writes
the same records with `key` and row values as JSON objects rather than strings.) CSV is
for spreadsheets: a text cell that would run as a formula (`=`, `+`, `-`, `@`, tab, CR
first) gets a leading `'` unless `raw=True` (`atdarchive.render.csv_safe`); Parquet and
JSONL keep every value exactly.

Text — grouped by row: `Total  Feb 21631 → 21630 (−1)  Apr 22819 → 22817 (−2)`,
wrapped to 80 columns, coloured only when writing to a terminal; `limit` caps
the rows listed per section. Markdown and HTML (one self-contained file, inline
CSS, no scripts) show the same sections as tables.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from atdarchive.diff.types import SnapshotDiff, TableDiff

JSON_FORMAT = "atdarchive.diff/1"

#: format -> (module, function) of its writer.
WRITERS: dict[str, tuple[str, str]] = {
    "text": ("atdarchive.render.diff_text", "write_text"),
    "json": ("atdarchive.render.diff_json", "write_json"),
    "jsonl": ("atdarchive.render.diff_long", "write_jsonl"),
    "csv": ("atdarchive.render.csv_safe", "write_diff_csv"),  # formulas neutralised
    "parquet": ("atdarchive.render.diff_long", "write_parquet"),
    "markdown": ("atdarchive.render.diff_pages", "write_markdown"),
    "html": ("atdarchive.render.diff_pages", "write_html"),
}
FORMATS = tuple(WRITERS)

#: Public helpers of the writer modules, importable from here as before the split.
_EXPORTS = {
    "LONG_SCHEMA": "atdarchive.render.diff_long",
    "long_table": "atdarchive.render.diff_long",
    "jsonable": "atdarchive.render.diff_records",
    "to_json_obj": "atdarchive.render.diff_json",
    "render_json": "atdarchive.render.diff_json",
    "render_text": "atdarchive.render.diff_text",
    "print_text": "atdarchive.render.diff_text",
    "render_markdown": "atdarchive.render.diff_pages",
    "render_html": "atdarchive.render.diff_pages",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def check_format(fmt: str) -> None:
    """Raise AtdError unless `fmt` names a writer."""
    if fmt not in WRITERS:
        from atdarchive.errors import AtdError

        raise AtdError(f"unknown diff format {fmt!r}; choose one of: {', '.join(FORMATS)}")


def write_diff(
    diff: TableDiff | SnapshotDiff,
    fmt: str = "text",
    out: str | Path | IO[str] | None = None,
    *,
    limit: int | None = None,
    color: bool | None = None,
    width: int = 80,
    raw: bool = False,
) -> None:
    """Render `diff` as `fmt` to `out` (a path, a text stream, or None for stdout).

    `parquet` needs a path. Text is coloured only when writing to a terminal
    (override with `color`); `limit` caps rows per section (text, markdown, html);
    `raw` keeps CSV cells that look like formulas exactly.
    """
    check_format(fmt)
    module, function = WRITERS[fmt]
    writer = getattr(importlib.import_module(module), function)
    extra = {"raw": raw} if fmt == "csv" else {}
    writer(diff, out, limit=limit, color=color, width=width, **extra)


__all__ = [
    "FORMATS",
    "JSON_FORMAT",
    "WRITERS",
    "check_format",
    "write_diff",
    *_EXPORTS,
]
