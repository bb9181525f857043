"""`atdarchive retract` and `annotate`: ledger events about a release after the fact."""

from __future__ import annotations

import typer

from atdarchive.cli.common import JSON_OPTION, emit_json, flush_notices, open_archive


def register(app: typer.Typer) -> None:
    app.command("retract")(retract)
    app.command("annotate")(annotate)


def retract(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help="DATASET@REF of the false entry."),
    reason: str = typer.Option(..., "--reason", help="Why it is retracted (kept forever)."),
    archivist: str = typer.Option(None, help="Who retracts it (default: git user.name)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Retract a snapshot: its bytes and record stay, history views skip it."""
    archive = open_archive(ctx)
    snap = archive.retract(ref, reason, archivist=archivist)
    flush_notices(archive)
    if as_json:
        emit_json({"id": snap.id, "dataset": snap.dataset, "retracted": True,
                   "reason": reason.strip()})
        return
    print(f"retracted {snap.dataset}@{snap.short_id} (published {snap.published}); "
          "log shows it struck out, latest, dates, diff, blame and audit skip it")


def annotate(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help="DATASET@REF"),
    note: str = typer.Option(..., "--note", help="The note (kept forever)."),
    announces_revision: bool = typer.Option(
        False, "--announces-revision",
        help="The note carries the agency's own notice of revisions in this release."),
    archivist: str = typer.Option(None, help="Who writes it (default: git user.name)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Attach a note to a snapshot (e.g. the agency's notice of a revision)."""
    archive = open_archive(ctx)
    event = archive.annotate(ref, note, announces_revision=announces_revision,
                             archivist=archivist)
    flush_notices(archive)
    if as_json:
        emit_json(event)
        return
    what = " (the audit counts its revisions as announced)" if announces_revision else ""
    print(f"annotated {ref.partition('@')[0]}@{event['snapshot'][:10]}{what}")
