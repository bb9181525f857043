"""Markdown and HTML renderings of a diff (the HTML one self-contained: inline CSS,
no scripts, no external links)."""

from __future__ import annotations

import html
from typing import Any

from atdarchive.diff.types import ROW_EXTRAS, SnapshotDiff, TableDiff
from atdarchive.render.diff_records import (
    Out,
    as_snapshot_diff,
    delta,
    diff_title,
    emit,
    key_text,
)

Section = tuple[str, list[str], list[list[Any]]]  # (title, header, rows)


def _sections(td: TableDiff, limit: int | None) -> list[Section]:
    """(title, header, rows) per non-empty section; shared by markdown and html."""
    out: list[Section] = []
    if td.schema_changes.num_rows:
        out.append(("Schema changes", ["change", "column", "old", "new"],
                    [list(r.values()) for r in td.schema_changes.to_pylist()]))
    if td.cells_changed.num_rows:
        keys = td.key_column_names()
        head = (td.key or ["row"]) + ["column", "old", "new", "change", "cell"]
        rows = []
        for r in td.cells_changed.slice(0, limit).to_pylist():
            label = [r[k] for k in keys] if td.key else [r["new_row"] + 1]
            rows.append(label + [r["column"], r["old"], r["new"], delta(r).strip(" ()"),
                                 r["new_cell"] or r["old_cell"]])
        out.append((f"Cells changed ({td.counts['cells_changed']})", head, rows))
    for title, tbl in (("Rows added", td.rows_added), ("Rows removed", td.rows_removed)):
        if tbl.num_rows:
            cols = [c for c in tbl.column_names if c not in ROW_EXTRAS]
            rows = [[r[c] for c in cols] for r in tbl.slice(0, limit).to_pylist()]
            out.append((f"{title} ({tbl.num_rows})", cols, rows))
    return out


def _counts_line(sd: SnapshotDiff) -> str:
    return ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in sd.counts.items())


def _md_escape(v: Any) -> str:
    """A value for a Markdown table cell: HTML escaped (Markdown renders inline HTML),
    `|` escaped, newlines folded."""
    text = html.escape("" if v is None else str(v), quote=False)
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(diff: TableDiff | SnapshotDiff, *, limit: int | None = None) -> str:
    sd = as_snapshot_diff(diff)
    lines = [f"# {diff_title(sd)}", "", _counts_line(sd)]
    for name, td in sd.tables.items():
        lines += ["", f"## {name}", ""]
        lines.append(f"Key: {_md_escape(', '.join(td.key))} ({td.key_source})" if td.key
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
    sd = as_snapshot_diff(diff)
    e = html.escape
    title = diff_title(sd)
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{e(title)}</title>"
             f"<style>{_CSS}</style></head><body><h1>{e(title)}</h1>",
             "<p>" + e(_counts_line(sd)) + "</p>"]
    for name, td in sd.tables.items():
        parts.append(f"<h2>{e(name)}</h2>")
        parts.append("<p class='muted'>" + e(key_text(td)) + "</p>")
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


def write_markdown(diff: TableDiff | SnapshotDiff, out: Out, *, limit: int | None = None,
                   **_: object) -> None:
    emit(render_markdown(diff, limit=limit), out)


def write_html(diff: TableDiff | SnapshotDiff, out: Out, *, limit: int | None = None,
               **_: object) -> None:
    emit(render_html(diff, limit=limit), out)
