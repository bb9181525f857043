"""Text renderings of records for the terminal: log entries, show, tables (≤ 80 columns)."""

from __future__ import annotations

import textwrap
from typing import Any

from atdarchive.changes import describe

WIDTH = 80


def _fmt_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def flags(record: dict[str, Any], summary: dict[str, Any]) -> list[str]:
    """Short evidence markers shown next to a release (republication, identical content)."""
    out = []
    for other in record.get("identical_to", []):
        out.append(f"identical to {other['id'][:10]} published {other['published']}")
    if summary.get("identical") and not record.get("identical_to"):
        out.append(f"same content as {summary['against'][:10]}")
    return out


def log_entry(row: dict[str, Any]) -> str:
    rec = row["record"]
    head = f"snapshot {row['short_id']}  {rec['dataset']}  published {rec['published']}"
    lines = [head + (f"  ({rec['channel']})" if rec["channel"] != "public" else "")]
    if row["tags"]:
        lines[0] += "  tags: " + ", ".join(row["tags"])
    fields = [
        ("period", rec.get("period")),
        ("source", rec.get("source_url")),
        ("file", f"{rec['original']['name']} ({_fmt_size(rec['original']['size'])})"),
        ("archivist", f"{rec.get('archivist', '')}, retrieved {rec.get('retrieved_at', '')}"),
        ("tables", f"{len(rec['tables'])}, "
                   f"{sum(t['rows'] for t in rec['tables'].values()):,} rows"),
        ("parent", row["parent"][:10] if row["parent"] else "none"),
        ("change", describe(row["summary"])),
    ]
    for name, value in fields:
        if value:
            lines.append(_field(name, str(value)))
    for flag in flags(rec, row["summary"]):
        lines.append(_field("flag", flag))
    if row.get("checks"):
        last = row["checks"][-1]
        lines.append(_field("checked", f"re-fetched {len(row['checks'])} time(s), unchanged; "
                                       f"last {last['fetched_at']} from {last['final_url']}"))
    if rec.get("message"):
        lines.append("")
        lines += textwrap.wrap(rec["message"], WIDTH - 4, initial_indent="    ",
                               subsequent_indent="    ")
    return "\n".join(lines)


def log_oneline(row: dict[str, Any]) -> str:
    rec = row["record"]
    channel = "" if rec["channel"] == "public" else f" [{rec['channel']}]"
    change = describe(row["summary"])
    marks = " !" if flags(rec, row["summary"]) else ""
    text = f"{row['short_id']} {rec['published'][:10]}{channel} {change}{marks}"
    if rec.get("message"):
        text += f" — {rec['message'].splitlines()[0]}"
    return text if len(text) <= WIDTH else text[: WIDTH - 1] + "…"


def _field(name: str, value: str) -> str:
    prefix = f"{name + ':':<11}"
    return textwrap.fill(value, WIDTH, initial_indent=prefix,
                         subsequent_indent=" " * len(prefix), break_on_hyphens=False)


def show(record: dict[str, Any], parent: str | None, tags: list[str]) -> str:
    orig = record["original"]
    lines = [f"snapshot {record['id']}"]
    for name, value in (
        ("dataset", record["dataset"]), ("channel", record["channel"]),
        ("published", record["published"]), ("period", record.get("period")),
        ("retrieved", record.get("retrieved_at")), ("committed", record.get("committed_at")),
        ("source", record.get("source_url")), ("archivist", record.get("archivist")),
        ("parent", parent), ("tags", ", ".join(tags)),
        ("original", f"{orig['name']}  {orig['size']:,} bytes  {orig['format']}"),
        ("sha256", orig["sha256"]),
        ("message", record.get("message")),
    ):
        if value:
            lines.append(_field(name, str(value)))
    for flag in flags(record, record.get("summary", {})):
        lines.append(_field("flag", flag))
    if record.get("stated_dates"):
        lines.append("")
        lines.append("stated dates (what the publication says about itself):")
        for item in record["stated_dates"]:
            where = f" at {item['where']}" if item.get("where") else ""
            lines.append(_wrap(f"{item['date']}  {item['kind']:<9} {item['text']}{where}", 2))
    lines.append("")
    lines.append(f"tables ({len(record['tables'])}):")
    for name, meta in record["tables"].items():
        lines.append(table_block(name, meta, schema=True))
    return "\n".join(lines)


def table_block(name: str, meta: dict[str, Any], schema: bool = False) -> str:
    lines = [f"  {name}  {meta['rows']:,} rows × {meta['columns']} columns"]
    where = " ".join(x for x in (meta.get("sheet") and f"sheet {meta['sheet']!r}",
                                 meta.get("cell_range")) if x)
    if where:
        lines.append(f"    from {where}")
    if meta.get("title"):
        lines.append(_wrap(f"title: {meta['title']}", 4))
    if meta.get("key"):
        lines.append(f"    key: {', '.join(meta['key'])} ({meta.get('key_source', 'declared')})")
    if schema:
        cols = ", ".join(f"{c['name']}:{c['type']}" for c in meta["schema"])
        lines.append(_wrap(f"columns: {cols}", 4))
        lines.append(f"    fingerprint: {meta['fingerprint'][:16]}")
    for note_text in meta.get("notes", []):
        lines.append(_wrap(f"note: {note_text}", 4))
    return "\n".join(lines)


def _wrap(text: str, indent: int) -> str:
    return textwrap.fill(text, WIDTH, initial_indent=" " * indent,
                         subsequent_indent=" " * (indent + 2), break_on_hyphens=False)
