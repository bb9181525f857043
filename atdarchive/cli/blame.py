"""`atdarchive blame`, `history`, `reindex`: who gave each cell its value, and when."""

from __future__ import annotations

import json

import typer

from atdarchive.cli.common import JSON_OPTION, emit_json, flush_notices, note, open_archive
from atdarchive.errors import AtdError
from atdarchive.render.records import crowded_days, when

WIDTH = 80
ROWS_OPTION = typer.Option([], "--row", help="Only rows with COL=VAL (repeat).")
COLUMNS_OPTION = typer.Option([], "--column", help="Only this column (repeat).")
ROW_OPTION = typer.Option(..., "--row", help="The row: COL=VAL (repeat).")


def register(app: typer.Typer) -> None:
    app.command("blame")(blame_cmd)
    app.command("history")(history_cmd)
    app.command("reindex")(reindex_cmd)


def _parse_rows(items: list[str]) -> dict[str, str]:
    rows: dict[str, str] = {}
    for item in items:
        col, sep, val = item.partition("=")
        if not sep or not col:
            raise AtdError(f"--row {item!r}: expected COL=VAL (e.g. --row Agency=Total)")
        rows[col] = val
    return rows


def _clip(text: str, width: int | None) -> str:
    """Cut to the terminal's width; into a file or a pipe (width None) nothing is cut."""
    if width is None or len(text) <= width:
        return text
    return text[: max(width - 1, 0)] + "…"


def _width() -> int | None:
    """The terminal's width (COLUMNS respected), or None when stdout is not a terminal."""
    import shutil
    import sys

    return shutil.get_terminal_size((WIDTH, 24)).columns if sys.stdout.isatty() else None


def _show(value: object) -> str:
    return "∅" if value is None else str(value)


def _key_text(key: dict[str, object], row: int) -> str:
    return "/".join(_show(v) for v in key.values()) if key else f"row {row}"


def blame_cmd(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help="DATASET@REF (REF: id prefix, latest, tag, date)."),
    table: str = typer.Option(None, "--table", help="Table (needed when there are several)."),
    row: list[str] = ROWS_OPTION,
    column: list[str] = COLUMNS_OPTION,
    as_of: str = typer.Option(None, "--as-of", help="Blame as it stood on DATE."),
    include_retracted: bool = typer.Option(False, "--include-retracted",
                                           help="Count retracted releases as published."),
    strict: bool = typer.Option(False, "--strict",
                                help="Count type/format-only changes as revisions."),
    cells: bool = typer.Option(False, "--cells", help="One line per cell."),
    limit: int = typer.Option(None, "--limit", help="At most N lines (rows, or cells)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Which release gave each value of a table, from what, and when it was published."""
    from atdarchive.blame import FORMAT_NOTE, META, STRICT_NOTE, by_row, row_changes

    archive = open_archive(ctx)
    result = archive.blame(ref, table=table, rows=_parse_rows(row) or None,
                           columns=column or None, as_of=as_of, strict=strict,
                           include_retracted=include_retracted)
    flush_notices(archive)
    meta = json.loads(result.schema.metadata[META])
    width = _width()
    if as_json or cells:
        result = by_row(result)
    if as_json:
        data = result.to_pylist()
        emit_json({**meta, "cells": data[:limit] if limit else data})
        return
    entry = archive.history(meta["dataset"]).by_id[meta["snapshot"]]
    key = ", ".join(meta["key"]) if meta["key"] else "none (rows matched whole)"
    print(f"# {meta['dataset']}@{entry.short} published {entry.published} ({entry.channel})")
    print(_clip(f"# table {meta['table']}", width))
    print(_clip(f"# key {key} [{meta['key_source']}]", width))
    print(f"# {STRICT_NOTE if strict else FORMAT_NOTE}")
    if result.num_rows == 0:
        note("no cells match")
        return
    crowded = crowded_days([e.published for e in
                            archive.history(meta["dataset"]).channel(entry.channel)])
    if cells:
        for rec in result.slice(0, limit).to_pylist() if limit else result.to_pylist():
            keys = {k: rec[k] for k in result.column_names[1:result.column_names.index(
                "column")]}
            head = (f"{rec['short_id']} {when(rec['published'], crowded)}  "
                    f"{_clip(_key_text(keys, rec['row']), 14):<14} ")
            tail = f"{rec['column']}: {_show(rec['value'])}"
            if rec["previous"] is not None:
                tail += f" (was {rec['previous']}; {rec['revisions']} rev.)"
            print(_clip(head + tail, width))
        return
    lines = row_changes(result)
    for item in lines[:limit] if limit else lines:
        head = (f"{item['short_id']} {when(item['published'], crowded)}  "
                f"{_clip(_key_text(item['key'], item['row']), 14):<14} ")
        if item["added"]:
            tail = "(first published)"
        else:
            first = item["changes"][0]
            tail = f"{first['column']}: {_show(first['old'])} → {_show(first['new'])}"
            if len(item["changes"]) > 1:
                tail += f" (+{len(item['changes']) - 1} more)"
        print(_clip(head + tail, width))


def history_cmd(
    ctx: typer.Context,
    dataset: str = typer.Argument(..., help="Dataset."),
    table: str = typer.Option(None, "--table", help="Table (needed when there are several)."),
    row: list[str] = ROW_OPTION,
    column: str = typer.Option(None, "--column", help="Only this cell of the row."),
    channel: str = typer.Option("public", "--channel", help="Channel."),
    strict: bool = typer.Option(False, "--strict",
                                help="Count type/format-only changes as revisions."),
    as_json: bool = JSON_OPTION,
) -> None:
    """A row (or one cell) in every release, oldest first: changes, republications, gaps."""
    from atdarchive.blame import FORMAT_NOTE, STRICT_NOTE

    archive = open_archive(ctx)
    rows = _parse_rows(row)
    where = {"table": table, "row": rows, "column": column, "channel": channel}
    result = archive.history_of(dataset, **where, strict=strict)
    flush_notices(archive)
    if as_json:
        emit_json([_typed(rec) for rec in result.to_pylist()])
        return
    width = _width()
    table = json.loads(result.schema.metadata[b"table"]) if result.schema.metadata else table
    spec = ", ".join(f"{k}={v}" for k, v in rows.items())
    print(_clip(f"# {dataset} ({channel}) table {table}", width))
    print(_clip(f"# row {spec}" + (f", column {column}" if column else ""), width))
    print(f"# {STRICT_NOTE if strict else FORMAT_NOTE}")
    crowded = crowded_days(result.column("published").to_pylist())
    for rec in result.to_pylist():
        head = (f"{rec['short_id']} {when(rec['published'], crowded):<{16 if crowded else 10}}"
                f"  {rec['status']:<11} ")
        if rec["status"] == "absent":
            tail = f"— ({ABSENT[rec['absent']]})"
        elif column is not None:
            if rec["status"] in ("changed", "reappeared") and rec["previous"] != rec["value"]:
                tail = f"{_show(rec['previous'])} → {_show(rec['value'])}"
            else:
                tail = _show(rec["value"])
            if rec.get("source_cell"):
                tail += f"  [{rec['source_cell']}]"
        else:
            tail = ", ".join(
                f"{c['column']}: {_show(c['old'])} → "
                f"{'(column absent)' if c['absent'] else _show(c['new'])}"
                for c in rec["changes"])
        print(_clip(head + tail, width).rstrip())


ABSENT = {"row": "no such row", "column": "column absent", "table": "no such table"}


def _typed(rec: dict) -> dict:
    """A history record for JSON: values with their own types, not as text."""
    out = {k: v for k, v in rec.items() if not k.endswith("_json")}
    for name in ("value", "previous"):
        if f"{name}_json" in rec:
            text = rec[f"{name}_json"]
            out[name] = None if text is None else json.loads(text)
    if "values_json" in rec:
        out["values"] = json.loads(rec["values_json"]) if rec["values_json"] else {}
        for name in out["values"]:
            out.pop(name, None)
            out.pop(f"col:{name}", None)
    return out


def reindex_cmd(
    ctx: typer.Context,
    dataset: str = typer.Argument(None, help="Dataset (default: all)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Rebuild the derived blame indexes (safe any time; they are local state)."""
    archive = open_archive(ctx)
    built = archive.reindex(dataset)
    flush_notices(archive)
    if as_json:
        emit_json(built)
        return
    per: dict[str, list[dict]] = {}
    for item in built:
        per.setdefault(item["dataset"], []).append(item)
    for name, items in per.items():
        releases = max(i["releases"] for i in items)
        print(f"{name}: rebuilt {len(items)} blame index(es) over {releases} release(s)")
    if not built:
        note("nothing to index")
