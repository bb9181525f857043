"""`atdarchive verify`: re-check every hash, the ledger chain, DVC pointers and git history."""

from __future__ import annotations

from pathlib import Path

import typer

from atdarchive.cli.common import JSON_OPTION, emit_json, note, open_archive, progress_bar


def register(app: typer.Typer) -> None:
    app.command("verify")(verify)


def verify(
    ctx: typer.Context,
    dataset: str = typer.Argument(None, help="Only this dataset (default: all)."),
    as_json: bool = JSON_OPTION,
    repair: bool = typer.Option(
        False, "--repair",
        help="Clean up interrupted commits and rebuild derived indexes first "
             "(never deletes or rewrites a snapshot)."),
    fast: bool = typer.Option(
        False, "--fast", help="Skip re-deriving tables from the originals (slow for big XLSX)."),
    remote: str = typer.Option(
        None, "--remote", metavar="NAME",
        help="Also check that every snapshot is present (and protected) on remote NAME."),
    lock: Path = typer.Option(
        None, "--lock", metavar="FILE",
        help="Also check a lockfile's pinned snapshots and hashes."),
) -> None:
    """Re-hash every snapshot and check ledger, pointers and git; exit 3 on any problem."""
    from atdarchive.verify import ERROR

    archive = open_archive(ctx)
    with progress_bar("verifying", enabled=not as_json) as progress:
        problems = archive.verify(dataset, repair=repair, fast=fast, progress=progress)
    if remote:
        problems += archive.verify_remote(remote)
    if lock is not None:
        problems += archive.verify_lockfile(lock)
    errors = [p for p in problems if p.severity == ERROR]
    snapshots = sum(len(archive.history(n).entries) for n in
                    ([dataset] if dataset else archive.dataset_names()))
    if as_json:
        emit_json({"ok": not errors, "snapshots": snapshots, "fast": fast,
                   "problems": [p.to_json() for p in problems]})
    else:
        for problem in problems:
            (print if problem.severity == ERROR else note)(str(problem))
        if errors:
            print(f"verify FAILED: {len(errors)} problem(s) in {snapshots} snapshot(s)")
        else:
            notes = len(problems) - len(errors)
            extra = f" ({notes} note(s))" if notes else ""
            print(f"ok: {snapshots} snapshot(s) verified{' (fast)' if fast else ''}{extra}")
    if errors:
        raise typer.Exit(3)
