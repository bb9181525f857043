"""Text renderings of records for the terminal: log entries, show, tables (≤ 80 columns)."""

from __future__ import annotations

import textwrap
from collections.abc import Collection
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


def audit_line(flags: dict[str, Any] | None) -> str:
    """`silent_revision ×20, schema_change ×3` from cached audit flags ('' if none)."""
    if not flags or not flags.get("kinds"):
        return ""
    kinds = sorted(flags["kinds"].items(), key=lambda kv: -kv[1])
    return ", ".join(k if n == 1 else f"{k} ×{n}" for k, n in kinds)


def findings_block(findings: list[Any], shown: int = 5) -> list[str]:
    """Commit output: alerts in full, then one line counting every kind."""
    alerts = [f for f in findings if f.severity == "alert"]
    lines = [_wrap(f"alert: {f.summary}", 2) for f in alerts[:shown]]
    counts: dict[str, int] = {}
    for finding in findings:
        counts[finding.kind] = counts.get(finding.kind, 0) + 1
    if counts:
        lines.append(_wrap("audit: " + audit_line({"kinds": counts}), 2))
    return lines


def flags(record: dict[str, Any], summary: dict[str, Any],
          retracted: Collection[str] = ()) -> list[str]:
    """Short evidence markers shown next to a release (republication, identical content);
    a twin since RETRACTED was no publication and is not one."""
    out = []
    for other in record.get("identical_to", []):
        if other["id"] not in retracted:
            out.append(f"identical to {other['id'][:10]} published {other['published']}")
    if summary.get("identical") and not record.get("identical_to"):
        out.append(f"same content as {summary['against'][:10]}")
    return out


def crowded_days(published: list[str]) -> set[str]:
    """Days on which more than one of these releases was published: there, times show."""
    seen: set[str] = set()
    crowded: set[str] = set()
    for value in published:
        (crowded if value[:10] in seen else seen).add(value[:10])
    return crowded


def when(published: str, crowded: set[str]) -> str:
    """A release's date, with its time (UTC as recorded, `Z`) when its day is crowded."""
    if published[:10] in crowded and len(published) > 10:
        return published[:16].replace("T", " ") + ("Z" if published.endswith("Z") else "")
    return published[:10]


STRIKE, PLAIN = "\x1b[9m", "\x1b[0m"


def struck(text: str, terminal: bool) -> str:
    """Struck out on a terminal; elsewhere the words say it (`[retracted]`)."""
    return f"{STRIKE}{text}{PLAIN}" if terminal else text


def log_entry(row: dict[str, Any], terminal: bool = False) -> str:
    rec = row["record"]
    head = f"snapshot {row['short_id']}  {rec['dataset']}  published {rec['published']}"
    if row.get("retracted"):
        head = struck(head, terminal) + "  [retracted]"
    lines = [head + (f"  ({rec['channel']})" if rec["channel"] != "public" else "")]
    if row.get("retracted"):
        event = row["retracted"]
        lines.append(_field("retracted", f"{event['at'][:10]} by {event.get('archivist', '')}: "
                                         f"{event['reason']}"))
    if row["tags"]:
        lines[0] += "  tags: " + ", ".join(row["tags"])
    fields = [
        ("period", rec.get("period")),
        ("source", rec.get("source_url")),
        ("file", f"{rec['original']['name']} ({_fmt_size(rec['original']['size'])})"),
        ("archivist", f"{rec.get('archivist', '')}, retrieved "
                      f"{rec.get('retrieved_at') or 'unknown'}, committed "
                      f"{rec.get('committed_at', '')}"),
        ("tables", f"{len(rec['tables'])}, "
                   f"{sum(t['rows'] for t in rec['tables'].values()):,} rows"),
        ("parent", row["parent"][:10] if row["parent"] else "none"),
        ("change", describe(row["summary"])),
    ]
    for name, value in fields:
        if value:
            lines.append(_field(name, str(value)))
    for flag in flags(rec, row["summary"], row.get("retracted_twins", ())):
        lines.append(_field("flag", flag))
    if audit := audit_line(row.get("audit")):
        lines.append(_field("audit", audit))
    if row.get("checks"):
        last = row["checks"][-1]
        lines.append(_field("checked", f"re-fetched {len(row['checks'])} time(s), unchanged; "
                                       f"last {last['fetched_at']} from {last['final_url']}"))
    watched = [e for e in row.get("events") or [] if e["kind"] != "check"]
    checks = [e for e in row.get("events") or [] if e["kind"] == "check"]
    for event in watched:
        when = event["at"][:16].replace("T", " ")
        lines.append(_field("watch", f"{when} {event['kind'].replace('_', ' ')}: "
                                     f"{event.get('reason') or event.get('url', '')}"))
    if checks:
        count = sum(1 + (e.get("checks_since_last") or 0) for e in checks)
        lines.append(_field("watched", f"checked {count} time(s) by watch, unchanged; last "
                                       f"recorded {checks[-1]['at']}"))
    for note in row.get("annotations") or []:
        announced = " (agency's notice of a revision)" if note.get("announces_revision") else ""
        lines.append(_field("note", f"{note['at'][:10]}{announced}: {note['note']}"))
    if rec.get("message"):
        lines.append("")
        lines += textwrap.wrap(rec["message"], WIDTH - 4, initial_indent="    ",
                               subsequent_indent="    ")
    return "\n".join(lines)


def log_oneline(row: dict[str, Any], crowded: set[str] = frozenset(),  # type: ignore[assignment]
                terminal: bool = False) -> str:
    rec = row["record"]
    channel = "" if rec["channel"] == "public" else f" [{rec['channel']}]"
    change = describe(row["summary"])
    severity = (row.get("audit") or {}).get("severity")
    marks = " !" if flags(rec, row["summary"], row.get("retracted_twins", ())) \
        or severity == "alert" else ""
    head = f"{row['short_id']} {when(rec['published'], crowded)}{channel}"
    if row.get("retracted"):
        text = f"{head} [retracted] {row['retracted']['reason']}"
        text = text if len(text) <= WIDTH else text[: WIDTH - 1] + "…"
        return struck(text, terminal)
    text = f"{head}{marks} {change}"
    if rec.get("parse_error"):
        text += f" ({rec['parse_error'].split(': ', 1)[-1]})"
    elif rec.get("message"):
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
        lines += stated_dates(record["stated_dates"])
    lines.append("")
    lines.append(f"tables ({len(record['tables'])}):")
    for name, meta in record["tables"].items():
        lines.append(table_block(name, meta, schema=True))
    return "\n".join(lines)


def stated_dates(items: list[dict[str, Any]], shown: int = 12) -> list[str]:
    """The dates a publication states about itself, one line per (date, kind)."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for item in items:
        groups.setdefault((item["date"], item["kind"]), []).append(item)
    ordered = sorted(groups.items(), key=lambda kv: kv[0], reverse=True)
    lines = [f"stated dates ({len(items)} statements the publication makes about itself):"]
    for (day, kind), group in ordered[:shown]:
        first = group[0]
        where = f" ({first['where']})" if first.get("where") else ""
        more = f" ×{len(group)}" if len(group) > 1 else ""
        lines.append(_wrap(f"{day}  {kind}{more}: {first['text']}{where}", 2))
    if len(ordered) > shown:
        lines.append(f"  ... {len(ordered) - shown} more dates (--json lists all)")
    return lines


def table_block(name: str, meta: dict[str, Any], schema: bool = False,
                semantics: dict[str, Any] | None = None) -> str:
    shape = f"{meta['rows']:,} rows × {meta['columns']} columns"
    where = " ".join(x for x in (meta.get("sheet") and f"sheet {meta['sheet']!r}",
                                 meta.get("cell_range")) if x)
    if len(name) + len(shape) + 4 <= WIDTH:
        lines = [f"  {name}  {shape}"]
        if where:
            lines.append(f"    from {where}")
    else:
        lines = [f"  {name}", f"    {shape}" + (f" from {where}" if where else "")]
    if meta.get("title"):
        lines.append(_wrap(f"title: {meta['title']}", 4))
    if meta.get("key"):
        lines.append(f"    key: {', '.join(meta['key'])} ({meta.get('key_source', 'declared')})")
    if semantics:
        periods = semantics.get("periods") or {}
        span = f", periods {min(periods.values())} … {max(periods.values())}" if periods else ""
        lines.append(f"    role: {semantics['role']} ({semantics['source']}){span}")
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


def keys_block(entry: dict[str, Any]) -> str:
    """`atdarchive keys`: one table's key, its source, and the releases that repeat it."""
    lines = [entry["table"]]
    key = ", ".join(entry["key"]) if entry["key"] else "none (rows matched whole)"
    source = entry["source"]
    if entry.get("hierarchy"):
        h = entry["hierarchy"]
        source += f": {h['shape']} label {h['label']!r}, v{h['version']}"
    lines.append(_wrap(f"key {key} ({source})", 2))
    if entry.get("inferred"):
        lines.append(_wrap(f"inferred instead: {', '.join(entry['inferred'])}", 2))
    releases = entry["releases"]
    if entry["key"]:
        lines.append(f"  unique in {entry['unique_in']} of {len(releases)} release(s)")
    for rel in releases:
        where = f"{rel['published']} {rel['short_id']}"
        if rel["missing"]:
            lines.append(_wrap(f"{where}: no column {', '.join(map(repr, rel['missing']))}",
                               4))
        elif rel["duplicates"]:
            shown = "; ".join(", ".join(str(v) for v in d["key"].values()) + f" ×{d['rows']}"
                              for d in rel["duplicates"][:3])
            lines.append(_wrap(f"{where}: {rel['duplicated_rows']} rows share a key: {shown}",
                               4))
    return "\n".join(lines)
