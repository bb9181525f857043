"""`atdarchive serve`: the read-only local web app (`atdarchive.webapp`)."""

from __future__ import annotations

import typer

from atdarchive.cli.common import open_archive


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def serve(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (this machine "
                             "only unless told otherwise)."),
    port: int = typer.Option(8000, "--port", "-p", help="Port (0: any free one)."),
) -> None:
    """Browse the archive: timelines, releases, blame heatmaps, diffs, cell histories
    and the audit, each page with a permalink and a JSON twin (?format=json)."""
    open_archive(ctx).serve(host=host, port=port)
