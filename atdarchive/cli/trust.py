"""`atdarchive trust`: settings that came with the archive and wait for your confirmation."""

from __future__ import annotations

import typer

from atdarchive.cli.common import JSON_OPTION, emit_json, note, open_archive

trust_app = typer.Typer(help="Settings that came with the archive (remotes, locks, caches, "
                        "sources, limits) and your confirmations.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(trust_app, name="trust")


def _rows(settings: list) -> list[dict]:
    return [{"kind": s.kind, "name": s.name, "value": s.value, "origin": s.origin,
             "confirm": s.confirm} for s in settings]


@trust_app.command("list")
def trust_list(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """What waits for confirmation (nothing of it is used until confirmed)."""
    pending = open_archive(ctx).waiting_settings()
    if as_json:
        emit_json(_rows(pending))
        return
    if not pending:
        note("nothing waits: every setting that names a place or acts on storage is confirmed")
    for setting in pending:
        print(f"{setting.describe()}\n    confirm: {setting.confirm}")


@trust_app.command("confirm")
def trust_confirm(
    ctx: typer.Context,
    kind: str = typer.Argument(None, help="remote | lock | dvc | source | limits"),
    name: str = typer.Argument(None, help="The setting's name (a remote, a dataset, a key)."),
    everything: bool = typer.Option(False, "--all", help="Confirm everything that waits."),
) -> None:
    """Confirm settings that came with the archive, exactly as they are now."""
    if not (everything or kind):
        raise typer.BadParameter("name KIND [NAME], or --all")
    done = open_archive(ctx).confirm_settings(kind, name)
    for setting in done:
        print(f"confirmed {setting.describe()}")
    if not done:
        note("nothing waited for confirmation")
