"""Helpers shared by the CLI modules: opening the archive, printing, JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from atdarchive.archive import Archive


def open_archive(ctx: typer.Context) -> Archive:
    directory: Path | None = (ctx.obj or {}).get("directory")
    return Archive(directory)


def emit_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, ensure_ascii=False, default=str)
    sys.stdout.write("\n")


def note(message: str) -> None:
    print(message, file=sys.stderr)


def flush_notices(archive: Archive) -> None:
    for message in archive.notices:
        note(f"note: {message}")
    archive.notices.clear()


JSON_OPTION = typer.Option(False, "--json", help="Machine-readable JSON on stdout.")
