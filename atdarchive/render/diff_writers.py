"""Writers for diffs: text, json, jsonl, csv, parquet, markdown, html.

The engine (`atdarchive.diff`) returns Arrow tables; this module only renders.

JSON (`--format json`) — always one valid JSON object, also for an empty diff
(non-finite numbers become the strings "NaN", "Infinity", "-Infinity"; dates
and times ISO strings; bytes hex)::

    {
      "format": "atdarchive.diff/1",
      "a": "<old snapshot id or null>",
      "b": "<new snapshot id or null>",
      "counts": {"rows_added": 0, "rows_removed": 0, "rows_changed": 0,
                 "cells_changed": 0, "schema_changes": 0,
                 "tables_added": 0, "tables_removed": 0},
      "tables_added": ["<name>", ...],
      "tables_removed": ["<name>", ...],
      "tables": {
        "<table>": {
          "key": ["<column>", ...] | null,       # null: rows diffed as a multiset
          "key_source": "given" | "declared" | "inferred" | "none",
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
                "old_cell": "Sheet!C7" | null, "new_cell": "Sheet!C7" | null}]
        }
      }
    }

For `column_reordered`, old/new are 1-based positions; for `type_changed`, types.

CSV / Parquet / JSONL (`--format csv|parquet|jsonl`) — one long table, one
line per change, with columns: `table, change, key, old_row, new_row, column,
old, new, abs_change, rel_change, old_cell, new_cell`. `change` is a schema
change kind, `row_added`, `row_removed` or `cell_changed`; `key` is a JSON
object of key values (null for keyless tables); for added/removed rows `new`
/`old` hold the whole row as a JSON object. (JSONL writes the same records with
`key` and row values as JSON objects rather than strings.)

Text — grouped by row: `Total  Feb 21631 → 21630 (−1)  Apr 22819 → 22817 (−2)`,
wrapped to 80 columns, coloured only when writing to a terminal; `limit` caps
the rows listed per section. Markdown and HTML (one self-contained file, inline
CSS, no scripts) show the same sections as tables.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import html
import io
import json
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pyarrow as pa

from atdarchive.diff import ROW_INDEX, SOURCE_ROW, SnapshotDiff, TableDiff

FORMATS = ("text", "json", "jsonl", "csv", "parquet", "markdown", "html")
JSON_FORMAT = "atdarchive.diff/1"
_ROW_EXTRAS = {ROW_INDEX, SOURCE_ROW, f"_{ROW_INDEX}", f"_{SOURCE_ROW}"}
LONG_SCHEMA = pa.schema(
    [
        ("table", pa.string()),
        ("change", pa.string()),
        ("key", pa.string()),
        ("old_row", pa.int64()),
        ("new_row", pa.int64()),
        ("column", pa.string()),
        ("old", pa.string()),
        ("new", pa.string()),
        ("abs_change", pa.float64()),
        ("rel_change", pa.float64()),
        ("old_cell", pa.string()),
        ("new_cell", pa.string()),
    ]
)


def _as_snapshot_diff(diff: TableDiff | SnapshotDiff) -> SnapshotDiff:
    if isinstance(diff, SnapshotDiff):
        return diff
    return SnapshotDiff(None, None, {diff.table: diff})


# ---------------------------------------------------------------- JSON values


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


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, allow_nan=False)


def _row_records(rows: pa.Table) -> list[dict]:
    out = []
    for r in rows.to_pylist():
        values = {k: jsonable(v) for k, v in r.items() if k not in _ROW_EXTRAS}
        out.append({
            "row_index": r.get(ROW_INDEX, r.get(f"_{ROW_INDEX}")),
            "source_row": r.get(SOURCE_ROW, r.get(f"_{SOURCE_ROW}")),
            "values": values,
        })
    return out


def _cell_records(td: TableDiff) -> list[dict]:
    keys = td.key_column_names()
    out = []
    for r in td.cells_changed.to_pylist():
        out.append({
            "key": {k: jsonable(r[kn]) for k, kn in zip(td.key or [], keys, strict=True)}
            if td.key else None,
            "old_row": r["old_row"],
            "new_row": r["new_row"],
            "column": r["column"],
            "old": r["old"],
            "new": r["new"],
            "old_value": _typed(r["old_number"], r["old"]),
            "new_value": _typed(r["new_number"], r["new"]),
            "abs_change": jsonable(r["abs_change"]),
            "rel_change": jsonable(r["rel_change"]),
            "old_cell": r["old_cell"],
            "new_cell": r["new_cell"],
        })
    return out


def to_json_obj(diff: TableDiff | SnapshotDiff) -> dict:
    """The JSON document described in the module docstring."""
    sd = _as_snapshot_diff(diff)
    tables = {}
    for name, td in sd.tables.items():
        tables[name] = {
            "key": td.key,
            "key_source": td.key_source,
            "counts": dict(td.counts),
            "notes": list(td.notes),
            "schema_changes": td.schema_changes.to_pylist(),
            "rows_added": _row_records(td.rows_added),
            "rows_removed": _row_records(td.rows_removed),
            "cells_changed": _cell_records(td),
        }
    return {
        "format": JSON_FORMAT,
        "a": sd.a_id,
        "b": sd.b_id,
        "counts": sd.counts,
        "tables_added": list(sd.tables_added),
        "tables_removed": list(sd.tables_removed),
        "tables": tables,
    }


def render_json(diff: TableDiff | SnapshotDiff) -> str:
    return _dumps(to_json_obj(diff)) + "\n"


# ---------------------------------------------------------------- long layout


def _long_records(diff: TableDiff | SnapshotDiff, as_objects: bool) -> Iterator[dict]:
    sd = _as_snapshot_diff(diff)

    def enc(obj: Any) -> Any:
        return obj if as_objects or obj is None else _dumps(obj)

    base = {f.name: None for f in LONG_SCHEMA}
    for name, td in sd.tables.items():
        for r in td.schema_changes.to_pylist():
            yield {**base, "table": name, **r}
        for kind, rows in (("row_removed", td.rows_removed), ("row_added", td.rows_added)):
            for rec in _row_records(rows):
                side = "old" if kind == "row_removed" else "new"
                key = {k: rec["values"].get(k) for k in td.key} if td.key else None
                yield {**base, "table": name, "change": kind, "key": enc(key),
                       f"{side}_row": rec["row_index"], side: enc(rec["values"])}
        for c in _cell_records(td):
            yield {**base, "table": name, "change": "cell_changed", "key": enc(c["key"]),
                   **{k: c[k] for k in ("old_row", "new_row", "column", "old", "new",
                                        "abs_change", "rel_change", "old_cell", "new_cell")}}


def long_table(diff: TableDiff | SnapshotDiff) -> pa.Table:
    """All changes as one Arrow table (the CSV/Parquet layout)."""
    recs = list(_long_records(diff, as_objects=False))
    for r in recs:
        for k in ("abs_change", "rel_change"):
            if isinstance(r[k], str):  # "NaN"/"Infinity" from jsonable
                r[k] = float(r[k].replace("Infinity", "inf"))
    return pa.Table.from_pylist(recs, schema=LONG_SCHEMA)


# ---------------------------------------------------------------- text


def _n(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _typed(number: float | None, text: str | None) -> Any:
    """JSON value of a cell: a number when numeric (int when integral), else its text."""
    if number is None:
        return text
    if math.isfinite(number) and number.is_integer() and abs(number) < 2**53:
        return int(number)
    return jsonable(number)


def _fmt_num(x: float) -> str:
    if math.isnan(x) or math.isinf(x):
        return str(x)
    if float(x).is_integer() and abs(x) < 1e15:
        return f"{int(x):,}".replace(",", "")
    return f"{x:.4g}"


def _delta(r: dict) -> str:
    d = r.get("abs_change")
    if d is None or d == 0:
        return ""
    sign = "+" if d > 0 else "\u2212"
    text = f"{sign}{_fmt_num(abs(d))}"
    rel = r.get("rel_change")
    if rel is not None and abs(rel) >= 1.0:  # a jump of 100% or more is worth a glance
        text += f", {sign}{abs(rel) * 100:.0f}%"
    return f" ({text})"


def _short(v: Any, width: int = 24) -> str:
    s = "null" if v is None else str(v)
    s = s.replace("\n", " ")
    return s if len(s) <= width else s[: width - 1] + "\u2026"


Segment = tuple[str, str]  # (text, rich style)


def _row_label(td: TableDiff, r: dict) -> str:
    if td.key:
        return " \u00b7 ".join(_short(r[k], 30) for k in td.key_column_names())
    return f"row {r['new_row'] + 1}"


def _wrap_items(label: str, label_w: int, items: list[list[Segment]], width: int,
                label_style: str) -> list[list[Segment]]:
    """Lay out `label  item  item ...`, wrapping items under the first one."""
    lines: list[list[Segment]] = []
    indent = "  " + " " * label_w + "  "
    cur: list[Segment] = [("  " + label.ljust(label_w) + "  ", label_style)]
    cur_len = len(indent)
    first = True
    for item in items:
        ilen = sum(len(t) for t, _ in item)
        if not first and cur_len + 2 + ilen > width:
            lines.append(cur)
            cur, cur_len, first = [(indent, "")], len(indent), True
        if not first:
            cur.append(("  ", ""))
            cur_len += 2
        cur.extend(item)
        cur_len += ilen
        first = False
    lines.append(cur)
    return lines


def _text_lines(diff: TableDiff | SnapshotDiff, limit: int | None,
                width: int) -> list[list[Segment]]:
    sd = _as_snapshot_diff(diff)
    c = sd.counts
    out: list[list[Segment]] = []
    head = ""
    if sd.a_id or sd.b_id:
        head = f"{(sd.a_id or '-')[:10]} \u2192 {(sd.b_id or '-')[:10]}: "
    summary = (
        f"{_n(c['rows_changed'], 'row')} changed ({_n(c['cells_changed'], 'cell')}), "
        f"{c['rows_added']} added, {c['rows_removed']} removed, "
        f"{c['schema_changes']} schema changes"
    )
    out.append([(head + ("no changes" if sd.is_empty() else summary), "bold")])
    for name, td in sd.tables.items():
        key_text = (f"key {', '.join(td.key)} ({td.key_source})" if td.key
                    else "no unique key: rows compared as a multiset")
        out.append([])
        title = f"\u2500\u2500 {name} "
        if len(title) + len(key_text) + 2 <= width:
            out.append([(title, "bold cyan"), (f"[{key_text}]", "dim")])
        else:  # long table names: the key goes on its own line, to stay within `width`
            out += [[(title, "bold cyan")], [(f"   [{key_text}]", "dim")]]
        for note in td.notes:
            out.append([("  note: " + note, "yellow")])
        if td.is_empty():
            out.append([("  no changes", "dim")])
            continue
        for r in td.schema_changes.to_pylist():
            ch, col, old, new = r["change"], r["column"], r["old"], r["new"]
            text = {
                "table_added": f"+ table added ({td.counts['rows_added']} rows)",
                "table_removed": f"- table removed ({td.counts['rows_removed']} rows)",
                "column_added": f"+ column {col} ({new})",
                "column_removed": f"- column {col} ({old})",
                "column_renamed": f"~ column {old} renamed to {new}",
                "column_reordered": f"~ column {col} moved from position {old} to {new}",
                "type_changed": f"~ column {col} type {old} \u2192 {new}",
            }.get(ch, f"{ch} {col} {old} {new}")
            style = "green" if text.startswith("+") else "red" if text.startswith("-") else "yellow"
            out.append([("  schema ", "dim"), (text, style)])
        table_level = any(r["change"] in ("table_added", "table_removed")
                          for r in td.schema_changes.to_pylist())
        cells = td.cells_changed
        if cells.num_rows:
            recs = cells.to_pylist()
            groups: dict[int, list[dict]] = {}
            for r in recs:
                groups.setdefault(r["new_row"], []).append(r)
            shown = list(groups.values())[: limit if limit is not None else None]
            label_w = min(max(len(_row_label(td, g[0])) for g in shown), 24)
            for g in shown:
                items = []
                for r in g:
                    items.append([
                        (f"{r['column']} ", "bold"),
                        (_short(r["old"]), "red"),
                        (" \u2192 ", ""),
                        (_short(r["new"]), "green"),
                        (_delta(r), "dim"),
                    ])
                label = _short(_row_label(td, g[0]), label_w)
                out.extend(_wrap_items(label, label_w, items, width, "bold"))
            if len(groups) > len(shown):
                out.append([(f"  \u2026 {len(groups) - len(shown)} more changed rows", "dim")])
        if table_level:
            continue
        for title, rows, mark, style in (
            ("added", td.rows_added, "+", "green"),
            ("removed", td.rows_removed, "-", "red"),
        ):
            if not rows.num_rows:
                continue
            n = rows.num_rows if limit is None else min(limit, rows.num_rows)
            for r in rows.slice(0, n).to_pylist():
                vals = {k: v for k, v in r.items() if k not in _ROW_EXTRAS}
                if td.key:
                    label = " \u00b7 ".join(_short(vals[k], 30) for k in td.key)
                    rest = [f"{k}={_short(v, 16)}" for k, v in vals.items() if k not in td.key]
                else:
                    label = f"row {r.get(ROW_INDEX, 0) + 1}"
                    rest = [f"{k}={_short(v, 16)}" for k, v in vals.items()]
                line = f"  {mark} {label}  " + "  ".join(rest)
                if len(line) > width:
                    line = line[: width - 1] + "\u2026"
                out.append([(line, style)])
            if rows.num_rows > n:
                out.append([(f"  \u2026 {rows.num_rows - n} more {title} rows", "dim")])
    return out


def render_text(diff: TableDiff | SnapshotDiff, *, limit: int | None = None,
                width: int = 80) -> str:
    """Plain text (no colour), lines at most `width` wide where values allow."""
    return "".join("".join(t for t, _ in line) + "\n"
                   for line in _text_lines(diff, limit, width))


def print_text(diff: TableDiff | SnapshotDiff, file: IO[str] | None = None, *,
               limit: int | None = None, color: bool | None = None, width: int = 80) -> None:
    """Write the text rendering; colour (via rich) only when `file` is a terminal."""
    file = file if file is not None else sys.stdout
    if color is None:
        color = bool(getattr(file, "isatty", lambda: False)())
    if not color:
        file.write(render_text(diff, limit=limit, width=width))
        return
    from rich.console import Console
    from rich.text import Text

    console = Console(file=file, force_terminal=True, width=max(width, 40), highlight=False)
    for line in _text_lines(diff, limit, width):
        text = Text()
        for t, style in line:
            text.append(t, style=style or None)
        console.print(text, soft_wrap=True)


# ---------------------------------------------------------------- markdown / html


def _md_escape(v: Any) -> str:
    return ("" if v is None else str(v)).replace("|", "\\|").replace("\n", " ")


def _sections(td: TableDiff, limit: int | None) -> list[tuple[str, list[str], list[list[Any]]]]:
    """(title, header, rows) per non-empty section; shared by markdown and html."""
    out = []
    if td.schema_changes.num_rows:
        out.append(("Schema changes", ["change", "column", "old", "new"],
                    [list(r.values()) for r in td.schema_changes.to_pylist()]))
    if td.cells_changed.num_rows:
        keys = td.key_column_names()
        head = (td.key or ["row"]) + ["column", "old", "new", "change", "cell"]
        rows = []
        for r in td.cells_changed.slice(0, limit).to_pylist():
            label = [r[k] for k in keys] if td.key else [r["new_row"] + 1]
            rows.append(label + [r["column"], r["old"], r["new"], _delta(r).strip(" ()"),
                                 r["new_cell"] or r["old_cell"]])
        out.append((f"Cells changed ({td.counts['cells_changed']})", head, rows))
    for title, tbl in (("Rows added", td.rows_added), ("Rows removed", td.rows_removed)):
        if tbl.num_rows:
            cols = [c for c in tbl.column_names if c not in _ROW_EXTRAS]
            rows = [[r[c] for c in cols] for r in tbl.slice(0, limit).to_pylist()]
            out.append((f"{title} ({tbl.num_rows})", cols, rows))
    return out


def render_markdown(diff: TableDiff | SnapshotDiff, *, limit: int | None = None) -> str:
    sd = _as_snapshot_diff(diff)
    title = f"Diff {sd.a_id} \u2192 {sd.b_id}" if sd.a_id or sd.b_id else "Diff"
    lines = [f"# {title}", ""]
    c = sd.counts
    lines.append(", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in c.items()))
    for name, td in sd.tables.items():
        lines += ["", f"## {name}", ""]
        lines.append(f"Key: {', '.join(td.key)} ({td.key_source})" if td.key
                     else "No unique key: rows compared as a multiset.")
        if td.is_empty():
            lines += ["", "No changes."]
        for title, head, rows in _sections(td, limit):
            lines += ["", f"### {title}", "", "| " + " | ".join(map(_md_escape, head)) + " |",
                      "|" + "---|" * len(head)]
            lines += ["| " + " | ".join(_md_escape(v) for v in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


_CSS = """body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:2px 8px;
text-align:left;font-variant-numeric:tabular-nums}th{background:#f3f3f3}.old{color:#b00020}
.new{color:#0a7d24}.muted{color:#777}"""


def render_html(diff: TableDiff | SnapshotDiff, *, limit: int | None = None) -> str:
    """One self-contained HTML page (inline CSS, no scripts, no external links)."""
    sd = _as_snapshot_diff(diff)
    e = html.escape
    title = f"Diff {sd.a_id} \u2192 {sd.b_id}" if sd.a_id or sd.b_id else "Diff"
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{e(title)}</title>"
             f"<style>{_CSS}</style></head><body><h1>{e(title)}</h1>"]
    parts.append("<p>" + e(", ".join(f"{k.replace('_', ' ')}: {v}"
                                     for k, v in sd.counts.items())) + "</p>")
    for name, td in sd.tables.items():
        parts.append(f"<h2>{e(name)}</h2>")
        parts.append("<p class='muted'>" + e(
            f"key {', '.join(td.key)} ({td.key_source})" if td.key
            else "no unique key: rows compared as a multiset") + "</p>")
        if td.is_empty():
            parts.append("<p>No changes.</p>")
        for sec_title, head, rows in _sections(td, limit):
            parts.append(f"<h3>{e(sec_title)}</h3><table><tr>"
                         + "".join(f"<th>{e(str(h))}</th>" for h in head) + "</tr>")
            for r in rows:
                cells = []
                for h, v in zip(head, r, strict=True):
                    cls = " class='old'" if h == "old" else " class='new'" if h == "new" else ""
                    cells.append(f"<td{cls}>{e('' if v is None else str(v))}</td>")
                parts.append("<tr>" + "".join(cells) + "</tr>")
            parts.append("</table>")
    parts.append("</body></html>\n")
    return "".join(parts)


# ---------------------------------------------------------------- entry point


def write_diff(
    diff: TableDiff | SnapshotDiff,
    fmt: str = "text",
    out: str | Path | IO[str] | None = None,
    *,
    limit: int | None = None,
    color: bool | None = None,
    width: int = 80,
) -> None:
    """Render `diff` as `fmt` to `out` (a path, a text stream, or None for stdout).

    `parquet` needs a path. Text is coloured only when writing to a terminal
    (override with `color`).
    """
    if fmt not in FORMATS:
        from atdarchive.errors import AtdError

        raise AtdError(f"unknown diff format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    if fmt == "parquet":
        import pyarrow.parquet as pq

        if out is None or not isinstance(out, str | Path):
            from atdarchive.errors import AtdError

            raise AtdError("--format parquet needs an output file (-o FILE)")
        pq.write_table(long_table(diff), str(out), compression="zstd")
        return
    if fmt == "text":
        if isinstance(out, str | Path):
            with open(out, "w", encoding="utf-8") as fh:
                print_text(diff, fh, limit=limit, color=False if color is None else color,
                           width=width)
        else:
            print_text(diff, out, limit=limit, color=color, width=width)
        return
    if fmt == "json":
        text = render_json(diff)
    elif fmt == "jsonl":
        text = "".join(_dumps(r) + "\n" for r in _long_records(diff, as_objects=True))
    elif fmt == "csv":
        import pyarrow.csv as pcsv

        buf = io.BytesIO()
        pcsv.write_csv(long_table(diff), buf)
        text = buf.getvalue().decode("utf-8")
    elif fmt == "markdown":
        text = render_markdown(diff, limit=limit)
    else:
        text = render_html(diff, limit=limit)
    if isinstance(out, str | Path):
        Path(out).write_text(text, encoding="utf-8")
    else:
        (out if out is not None else sys.stdout).write(text)


__all__ = [
    "FORMATS",
    "JSON_FORMAT",
    "LONG_SCHEMA",
    "jsonable",
    "long_table",
    "print_text",
    "render_html",
    "render_json",
    "render_markdown",
    "render_text",
    "to_json_obj",
    "write_diff",
]
