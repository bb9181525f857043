"""`atdarchive cite`: a citation naming the snapshot id and hashes."""

from __future__ import annotations

import typer

from atdarchive.cli.common import open_archive


def register(app: typer.Typer) -> None:
    app.command("cite")(cite)


def cite(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help="DATASET@REF to cite."),
    format: str = typer.Option("text", "--format", "-f", help="text, bibtex or csl-json."),
) -> None:
    """Print a citation naming the snapshot id and hashes."""
    print(open_archive(ctx).cite(ref, format))
