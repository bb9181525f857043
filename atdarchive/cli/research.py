"""`atdarchive vintages`, `revisions`, `sql`: the whole history as data, for researchers."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from atdarchive.cli.common import JSON_OPTION, emit_json, flush_notices, note, open_archive
from atdarchive.errors import AtdError

FORMATS = ("text", "csv", "json", "parquet")


def register(app: typer.Typer) -> None:
    app.command("vintages")(vintages)
    app.command("revisions")(revisions)
    app.command("sql")(sql)


_RAW_OPTION = typer.Option(False, "--raw", help="CSV: write text cells exactly, even those "
                           "a spreadsheet would run as formulas.")


def _write(table, fmt: str, out: Path | None, force: bool = False, raw: bool = False) -> None:
    """An Arrow table as text (aligned, ≤ 80 columns where it fits), CSV, JSON or Parquet;
    CSV cells a spreadsheet would run as formulas are neutralised unless `raw`."""
    if fmt not in FORMATS:
        raise AtdError(f"--format {fmt!r}: one of {', '.join(FORMATS)}")
    if out is not None and (out.exists() or out.is_symlink()) and not force:
        raise AtdError(f"{out}: already exists; use --force to overwrite it")
    if fmt == "parquet":
        if out is None:
            raise AtdError("--format parquet needs -o FILE")
        from atdarchive.parquetio import write_table

        write_table(table, out)
    elif fmt == "csv":
        from atdarchive.render.csv_safe import csv_text, write_csv

        if out is not None:
            write_csv(table, out, raw=raw)
        else:
            sys.stdout.write(csv_text(table, raw=raw))
    elif fmt == "json":
        rows = table.to_pylist()
        if out is None:
            emit_json(rows)
        else:
            import json

            out.write_text(json.dumps(rows, default=str, ensure_ascii=False, indent=1) + "\n")
    else:
        text = _text(table)
        if out is None:
            sys.stdout.write(text)
        else:
            out.write_text(text)
    if out is not None:
        note(f"wrote {out}")


def _text(table, limit: int = 200) -> str:
    from atdarchive.render.safe import cell

    names = table.column_names
    rows = [["" if v is None else cell(str(v)) for v in r.values()]
            for r in table.slice(0, limit).to_pylist()]
    widths = [min(max([len(n), *(len(r[i]) for r in rows)]), 40) for i, n in enumerate(names)]
    clip = lambda s, w: s if len(s) <= w else s[: w - 1] + "…"  # noqa: E731
    lines = ["  ".join(clip(n, w).ljust(w) for n, w in zip(names, widths, strict=True))]
    lines += ["  ".join(clip(v, w).ljust(w) for v, w in zip(r, widths, strict=True)).rstrip()
              for r in rows]
    more = f"… {table.num_rows - limit} more row(s); --format csv for all\n" \
        if table.num_rows > limit else ""
    return "\n".join(line.rstrip() for line in lines) + "\n" + more


def vintages(
    ctx: typer.Context,
    dataset: str = typer.Argument(..., help="Dataset."),
    table: str = typer.Option(None, "--table", help="Table (needed when there are several)."),
    as_of: str = typer.Option(None, "--as-of", help="Only what was published by DATE."),
    first_release: bool = typer.Option(False, "--first-release",
                                       help="Each cell's first published value."),
    latest: bool = typer.Option(False, "--latest", help="The values current now."),
    channel: str = typer.Option("public", "--channel", help="Channel."),
    fmt: str = typer.Option("text", "--format", "-f", help="text|csv|json|parquet"),
    out: Path = typer.Option(None, "-o", "--output", help="Write to this file."),
    force: bool = typer.Option(False, "--force", help="Overwrite OUT if it exists."),
    raw: bool = _RAW_OPTION,
) -> None:
    """Every value with the interval in which it was the published one (realtime_start,
    realtime_end), as in ALFRED."""
    if first_release and latest:
        raise AtdError("--first-release and --latest exclude each other")
    archive = open_archive(ctx)
    mode = "first-release" if first_release else "latest" if latest else "all"
    result = archive.vintages(dataset, table, channel=channel, as_of=as_of, mode=mode)
    flush_notices(archive)
    _write(result, fmt, out, force, raw)


def revisions(
    ctx: typer.Context,
    dataset: str = typer.Argument(..., help="Dataset."),
    table: str = typer.Option(None, "--table", help="One table (default: every table)."),
    channel: str = typer.Option("public", "--channel", help="Channel."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Per table, column and period: how often, how much and how late values were revised."""
    archive = open_archive(ctx)
    result = archive.revisions(dataset, table, channel=channel)
    flush_notices(archive)
    if as_json:
        emit_json(result.to_pylist())
        return
    shown = result.filter(result["revisions"].cast("int64").to_numpy() > 0) \
        if result.num_rows else result
    if not shown.num_rows:
        print(f"{dataset}: no value was ever revised")
        return
    from atdarchive.util import number

    by_table: dict[str, list[dict]] = {}
    for row in shown.to_pylist():
        by_table.setdefault(row["table"], []).append(row)
    for name, rows in by_table.items():
        print(f"── {name}" if len(name) <= 77 else f"── {name[:76]}…")
        print(f"   {'column':<16} {'period':<7} {'revised':>9} {'revs':>4} {'mean |Δ|':>9} "
              f"{'mean %':>7} {'lag d':>5} {'net':>9}")
        for r in rows:
            pct = "" if r["mean_rel_revision"] is None else f"{r['mean_rel_revision']:.2%}"
            size, lag, net = (("" if r[k] is None else number(r[k])) for k in (
                "mean_abs_revision", "mean_lag_days", "net_change"))
            print(f"   {r['column'][:16]:<16} {r['period'] or '':<7} "
                  f"{r['revised_cells']:>4}/{r['cells']:<4} {r['revisions']:>4} "
                  f"{size[:9]:>9} {pct:>7} {lag[:5]:>5} {net[:9]:>9}")


def sql(
    ctx: typer.Context,
    query: str = typer.Argument(None, help="One reading statement (SELECT, WITH, ...)."),
    dataset: str = typer.Option(None, "--dataset", help="Dataset (needed when several)."),
    fmt: str = typer.Option("text", "--format", "-f", help="text|csv|json|parquet"),
    out: Path = typer.Option(None, "-o", "--output", help="Write the result to this file."),
    export: Path = typer.Option(None, "--export", help="Write every view as a table into "
                                "FILE.duckdb or FILE.sqlite (for Datasette)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
    timeout: float = typer.Option(None, "--timeout", metavar="SECONDS",
                                  help="Stop the query after SECONDS (default: sql.seconds, "
                                  "300)."),
    memory_limit: str = typer.Option(None, "--memory-limit", metavar="SIZE",
                                     help="Memory for the query, e.g. 512MB, 2GiB (default: "
                                     "sql.memory_bytes, 2 GiB)."),
    raw: bool = _RAW_OPTION,
) -> None:
    """SQL over the history (DuckDB, read-only): releases, <table>, history.<table>,
    vintages.<table>, blame.<table>, diffs.<table>, findings."""
    archive = open_archive(ctx)
    if export is not None:
        path = archive.sql_export(export, dataset, force=force)
        flush_notices(archive)
        note(f"wrote {path}")
        return
    if not query:
        raise AtdError("sql needs a QUERY (or --export FILE)")
    result = archive.sql(query, dataset=dataset, timeout=timeout, memory_limit=memory_limit)
    flush_notices(archive)
    _write(result, fmt, out, force, raw)
