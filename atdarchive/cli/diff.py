"""`atdarchive diff`: what changed between two releases, in any format."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from atdarchive.cli.common import note, open_archive
from atdarchive.errors import AtdError


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
    stat: bool = typer.Option(False, "--stat", help="Counts per table only."),
    exit_code: bool = typer.Option(False, "--exit-code",
                                   help="Exit 1 when there are differences."),
    fmt: str = typer.Option("text", "--format", "-f",
                            help="text|json|jsonl|csv|parquet|markdown|html"),
    output: Path = typer.Option(None, "-o", "--output", help="Write to this file."),
    limit: int = typer.Option(None, "--limit", help="At most N rows per section (text)."),
) -> None:
    """Row, cell and schema changes between two snapshots (or one and its parent)."""
    from atdarchive.render.diff_writers import FORMATS, write_diff

    if fmt not in FORMATS:
        raise AtdError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    archive = open_archive(ctx)
    try:
        result = archive.diff(
            a, b, table=table, key=_split(key), columns=_split(columns), ignore=_split(ignore),
            abs_tol=abs_tol, rel_tol=rel_tol, ignore_case=ignore_case,
            ignore_whitespace=ignore_whitespace,
        )
    except AtdError as exc:
        if fmt == "json":  # machines get valid JSON even when the diff cannot be made
            json.dump({"format": "atdarchive.diff/1", "error": str(exc)}, sys.stdout)
            sys.stdout.write("\n")
        raise
    from atdarchive.diff import SnapshotDiff

    tables = result.tables if isinstance(result, SnapshotDiff) else {result.table: result}
    if stat:
        _print_stat(result, tables, fmt)
    else:
        write_diff(result, fmt, output, limit=limit)
        if output is not None:
            note(f"wrote {output}")
    if exit_code and not result.is_empty():
        raise typer.Exit(1)


def _print_stat(result: object, tables: dict, fmt: str) -> None:
    from atdarchive.diff import summarize

    if fmt == "json":
        json.dump({"counts": summarize(result),
                   "tables": {n: td.counts for n, td in tables.items() if not td.is_empty()}},
                  sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    changed = {n: td for n, td in tables.items() if not td.is_empty()}
    width = min(max((len(n) for n in changed), default=10), 44)
    for name, td in changed.items():
        c = td.counts
        label = name if len(name) <= width else name[: width - 1] + "…"
        print(f"{label:<{width}}  +{c['rows_added']:<4} −{c['rows_removed']:<4} "
              f"~{c['cells_changed']:<5} cells")
    print(f"{len(changed)} table(s) changed, {len(tables) - len(changed)} unchanged")
