"""`atdarchive pin`: pin a snapshot (ids and hashes) in a lockfile for reproducible loads."""

from __future__ import annotations

from pathlib import Path

import typer

from atdarchive.cli.common import JSON_OPTION, emit_json, flush_notices, open_archive


def register(app: typer.Typer) -> None:
    app.command("pin")(pin)


def pin(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help="DATASET@REF to pin."),
    lock: Path = typer.Option(Path("atdarchive.lock"), "--lock", help="Lockfile to write."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Pin a snapshot in a lockfile (ids and hashes) for reproducible loads."""
    archive = open_archive(ctx)
    entry = archive.pin(ref, lock)
    flush_notices(archive)
    if as_json:
        emit_json(entry)
        return
    print(f"pinned {entry['ref']} (published {entry['published']}, {len(entry['files'])} "
          f"file(s) hashed) in {lock}")
