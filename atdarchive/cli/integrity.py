"""`atdarchive verify`: re-check every hash, the ledger chain, DVC pointers and git history."""

from __future__ import annotations

from pathlib import Path

import typer

from atdarchive.cli.common import JSON_OPTION, emit_json, note, open_archive


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
    from atdarchive import verify as v

    archive = open_archive(ctx)
    problems = v.verify(archive, dataset, repair=repair, fast=fast,
                        progress=None if as_json else _progress())
    if remote:
        problems += v.verify_remote(archive, remote)
    if lock is not None:
        problems += v.verify_lockfile(archive, lock)
    errors = [p for p in problems if p.severity == v.ERROR]
    snapshots = sum(len(archive.history(n).entries) for n in
                    ([dataset] if dataset else archive.dataset_names()))
    if as_json:
        emit_json({"ok": not errors, "snapshots": snapshots, "fast": fast,
                   "problems": [p.to_json() for p in problems]})
    else:
        for problem in problems:
            (print if problem.severity == v.ERROR else note)(str(problem))
        if errors:
            print(f"verify FAILED: {len(errors)} problem(s) in {snapshots} snapshot(s)")
        else:
            notes = len(problems) - len(errors)
            extra = f" ({notes} note(s))" if notes else ""
            print(f"ok: {snapshots} snapshot(s) verified{' (fast)' if fast else ''}{extra}")
    if errors:
        raise typer.Exit(3)


def _progress():  # noqa: ANN202 - a small closure
    """A one-line progress report on stderr for long runs (only on a terminal)."""
    import sys

    if not sys.stderr.isatty():
        return None

    def show(dataset: str, done: int, total: int) -> None:
        end = "\n" if done == total else ""
        sys.stderr.write(f"\rverifying {dataset}: {done}/{total} snapshot(s)" + end)
        sys.stderr.flush()

    return show
