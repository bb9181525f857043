"""`atdarchive diff`: what changed between two releases, in any format."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from atdarchive.cli.common import note, open_archive
from atdarchive.errors import AtdError

if TYPE_CHECKING:
    from atdarchive.diff.stat import SnapshotStat

#: The `--stat --format json` document: {format, a, b, counts, tables: {name: {status,
#: inserted, deleted, schema_changed}}} (unchanged tables left out).
STAT_FORMAT = "atdarchive.diff-stat/1"


def register(app: typer.Typer) -> None:
    app.command("diff")(diff)


def _split(values: str | None) -> list[str] | None:
    return [v.strip() for v in values.split(",") if v.strip()] if values else None


def diff(
    ctx: typer.Context,
    a: str = typer.Argument(..., help="DATASET[@REF]: alone, that release against its parent."),
    b: str = typer.Argument(None, help="DATASET@REF to compare A with (A is the old side)."),
    table: str = typer.Option(None, "--table", "-t", help="Only this table."),
    key: str = typer.Option(None, help="Key columns COL,COL (overrides declared/inferred)."),
    columns: str = typer.Option(None, help="Compare only these value columns."),
    ignore: str = typer.Option(None, help="Columns to leave out of the comparison."),
    abs_tol: float = typer.Option(0.0, "--abs-tol", help="Numbers within this are equal."),
    rel_tol: float = typer.Option(0.0, "--rel-tol", help="Relative tolerance for numbers."),
    ignore_case: bool = typer.Option(False, "--ignore-case", help="Compare text caselessly."),
    ignore_whitespace: bool = typer.Option(False, "--ignore-whitespace",
                                           help="Ignore surrounding/repeated whitespace."),
    stat: bool = typer.Option(False, "--stat", help="Rows inserted/deleted per table only "
                              "(like git: a revised row counts as both; from fingerprints)."),
    exit_code: bool = typer.Option(False, "--exit-code",
                                   help="Exit 1 when there are differences."),
    fmt: str = typer.Option("text", "--format", "-f",
                            help="text|json|jsonl|csv|parquet|markdown|html"),
    output: Path = typer.Option(None, "-o", "--output", help="Write to this file."),
    limit: int = typer.Option(None, "--limit", help="At most N rows per section (text)."),
    raw: bool = typer.Option(False, "--raw", help="CSV: write text cells exactly, even those "
                             "a spreadsheet would run as formulas."),
) -> None:
    """Row, cell and schema changes between two snapshots (or one and its parent)."""
    from atdarchive.render.diff_writers import FORMATS, JSON_FORMAT

    if fmt not in FORMATS:
        raise AtdError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    archive = open_archive(ctx)
    options = {"key": _split(key), "columns": _split(columns), "ignore": _split(ignore),
               "abs_tol": abs_tol, "rel_tol": rel_tol, "ignore_case": ignore_case,
               "ignore_whitespace": ignore_whitespace}
    try:
        result = archive.diff_stat(a, b, table=table, **options) if stat else \
            archive.diff(a, b, table=table, **options)
    except AtdError as exc:
        if fmt == "json":  # machines get valid JSON even when the diff cannot be made
            json.dump({"format": JSON_FORMAT, "error": str(exc)}, sys.stdout)
            sys.stdout.write("\n")
        raise
    if stat:
        _print_stat(result, fmt)
    else:
        from atdarchive.render.diff_writers import write_diff

        write_diff(result, fmt, output, limit=limit, raw=raw)
        if output is not None:
            note(f"wrote {output}")
    if exit_code and not result.is_empty():
        raise typer.Exit(1)


def _print_stat(result: SnapshotStat, fmt: str) -> None:
    if fmt == "json":
        json.dump({"format": STAT_FORMAT, **result.to_json()}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    changed = {n: ts for n, ts in result.tables.items() if not ts.is_empty()}
    width = min(max((len(n) for n in changed), default=10), 42)  # lines <= 80 columns
    for name, ts in changed.items():
        head = (width - 1) // 2  # cut the middle: both ends tell tables apart
        label = name if len(name) <= width else \
            f"{name[:head]}…{name[len(name) - (width - 1 - head):]}"
        extra = {"added": "  (new table)", "removed": "  (table removed)"}.get(
            ts.status, "  (schema changed)" if ts.schema_changed else "")
        print(f"{label:<{width}}  +{ts.inserted:<5} −{ts.deleted:<5} rows{extra}")
    c = result.counts
    whole = ", ".join(f"{c[f'tables_{s}']} {s}" for s in ("added", "removed")
                      if c[f"tables_{s}"])
    print(f"{len(changed)} table(s) changed{f' ({whole})' if whole else ''}, "
          f"{c['tables_unchanged']} unchanged; {c['rows_inserted']} rows inserted, "
          f"{c['rows_deleted']} deleted")
