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
    allow_host: list[str] = typer.Option([], "--allow-host", metavar="NAME",
                                         help="A Host name the server answers besides "
                                         "localhost and the --host address (repeatable), "
                                         "e.g. this machine's name on the LAN."),
) -> None:
    """Browse the archive: timelines, releases, blame heatmaps, diffs, cell histories
    and the audit, each page with a permalink and a JSON twin (?format=json). Each
    request is bounded (ATDARCHIVE_LIMIT_SERVE_*: see README, Bounds)."""
    open_archive(ctx).serve(host, port, allow_hosts=allow_host)
