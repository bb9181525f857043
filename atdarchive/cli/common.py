"""Helpers shared by the CLI modules: opening the archive, printing, JSON, progress."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from atdarchive.archive import Archive
    from atdarchive.progress import Progress


OPENED: list[Archive] = []  # every archive a command opened: `main` prints what they noticed


def open_archive(ctx: typer.Context) -> Archive:
    """The archive at `-C PATH`, else the one the working directory is in."""
    from atdarchive.archive import Archive

    archive = Archive(directory(ctx))
    OPENED.append(archive)
    return archive


def directory(ctx: typer.Context) -> Path | None:
    """The `-C PATH` given, if any."""
    return (ctx.find_root().obj or {}).get("directory")


def new_archive_path(ctx: typer.Context, path: Path) -> Path:
    """An archive location to create (init, clone), relative to `-C PATH` when given."""
    base = directory(ctx)
    return path if base is None else base / path


def emit_json(data: Any) -> None:
    """JSON on stdout; controls that JSON leaves raw (C1, bidi) as \\u escapes."""
    from atdarchive.render.safe import json_text

    sys.stdout.write(json_text(json.dumps(data, indent=2, ensure_ascii=False, default=str)))
    sys.stdout.write("\n")


def note(message: str) -> None:
    """A line on stderr; control characters from data are shown escaped."""
    from atdarchive.render.safe import controls

    print(controls(message), file=sys.stderr)


def flush_notices(archive: Archive) -> None:
    for message in archive.notices:
        note(f"note: {message}")
    archive.notices.clear()


def flush_all() -> None:
    """Print what every opened archive still has to say (skipped ledger lines, recovery)."""
    while OPENED:
        flush_notices(OPENED.pop())


@contextlib.contextmanager
def progress_bar(verb: str = "", *, enabled: bool = True) -> Iterator[Progress | None]:
    """A rich progress bar on stderr, one task per label, fed by the `Progress` protocol.

    Yields the `progress(label, done, total)` callback to hand to an `Archive`
    method, or None (no progress work at all) when stderr is not a terminal or
    `enabled` is false (e.g. under `--json`). VERB prefixes each label
    ("verifying" + dataset). The bar is transient: it leaves no trace.
    """
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn
    from rich.progress import Progress as Bar

    with Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
             console=Console(stderr=True), transient=True) as bar:
        tasks: dict[str, Any] = {}

        def update(label: str, done: int, total: int) -> None:
            if label not in tasks:
                tasks[label] = bar.add_task(f"{verb} {label}".strip(), total=total)
            bar.update(tasks[label], completed=done, total=total)

        yield update


JSON_OPTION = typer.Option(False, "--json", help="Machine-readable JSON on stdout.")
