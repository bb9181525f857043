"""`atdarchive keys`: the key in force per table, where it came from, how it holds up."""

from __future__ import annotations

import typer

from atdarchive.cli.common import JSON_OPTION, emit_json, flush_notices, open_archive


def register(app: typer.Typer) -> None:
    app.command("keys")(keys)


def keys(
    ctx: typer.Context,
    dataset: str = typer.Argument(..., help="Dataset name."),
    table: str = typer.Option(None, "--table", "-t", help="One table only."),
    channel: str = typer.Option(None, "--channel", help="Releases of one channel only."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Per table: the key in force, its source, whether it is unique in each release."""
    from atdarchive.render import records

    archive = open_archive(ctx)
    report = archive.keys(dataset, table=table, channel=channel)
    flush_notices(archive)
    if as_json:
        emit_json({"dataset": dataset, "tables": report})
        return
    if not report:
        print(f"{dataset}: no releases yet")
        return
    print("\n".join(records.keys_block(entry) for entry in report))
