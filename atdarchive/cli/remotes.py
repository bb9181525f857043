"""Remotes: remote add/list/lock, push, pull, clone (shared storage for snapshot data)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from atdarchive.cli.common import JSON_OPTION, emit_json, flush_notices, note, open_archive

if TYPE_CHECKING:
    from atdarchive.remotes import TransferResult

_DIR_ARG = typer.Argument(..., help="New directory.")
_PULL_OPTION = typer.Option([], "--pull", help="DATASET[@REF] to pull (repeat).")
_TARGET_ARG = typer.Argument(None, metavar="[DATASET[@REF]]",
                             help="One snapshot, a dataset, or (default) everything.")
_REMOTE_OPTION = typer.Option(None, "--remote", "-r", help="Remote name (default: default).")

remote_app = typer.Typer(help="Shared storage for snapshot data (DVC remotes).",
                         no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(remote_app, name="remote")
    app.command("push")(push)
    app.command("pull")(pull)
    app.command("clone")(clone)


@remote_app.command("add")
def remote_add(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Remote name, e.g. storage."),
    url: str = typer.Argument(..., help="A directory path, or s3://BUCKET/PREFIX."),
    endpoint_url: str = typer.Option(None, "--endpoint-url",
                                     help="S3-compatible endpoint (MinIO, Ceph, ...)."),
    default: bool = typer.Option(False, "--default", help="Use it when --remote is not given."),
) -> None:
    """Add a data remote (committed to .dvc/config; credentials stay out of git)."""
    archive = open_archive(ctx)
    remote = archive.add_remote(name, url, endpoint_url=endpoint_url, default=default)
    flush_notices(archive)
    print(f"remote {remote.name} added: {remote.url}{' (default)' if remote.default else ''}")
    if remote.kind == "s3":
        note("note: S3 credentials come from the environment (AWS_ACCESS_KEY_ID, ...), "
             "~/.aws, or 'dvc remote modify --local'; they are never committed")


@remote_app.command("list")
def remote_list(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """List data remotes, the default first."""
    rows = [r.to_json() for r in open_archive(ctx).remotes()]
    if as_json:
        emit_json(rows)
        return
    if not rows:
        note("no remotes yet; add one with 'atdarchive remote add NAME URL --default'")
    for row in rows:
        flags = [flag for flag, on in (("default", row["default"]),) if on]
        if row["lock"]:
            flags.append(f"locked {row['lock']['days']}d {row['lock']['mode']}")
        if row["problem"]:
            flags.append("NOT USED: " + row["problem"])
        elif row["waiting"]:
            flags.append("waiting for 'remote confirm'")
        extra = f"  ({', '.join(flags)})" if flags else ""
        endpoint = f"  endpoint {row['endpoint_url']}" if row["endpoint_url"] else ""
        print(f"{row['name']}  {row['url']}{endpoint}{extra}")


@remote_app.command("confirm")
def remote_confirm(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="A remote that came with the archive."),
) -> None:
    """Trust a remote the archive's config names, and its Object Lock policy (recorded in
    your own trust store, outside the archive)."""
    archive = open_archive(ctx)
    remote = archive.confirm_remote(name)
    flush_notices(archive)
    lock = f", lock {remote.lock_days} days {remote.lock_mode}" if remote.locked else ""
    print(f"remote {remote.name} confirmed: {remote.url}{lock}")


@remote_app.command("lock")
def remote_lock(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="An s3:// remote on an Object Lock bucket."),
    days: int = typer.Option(..., "--days", help="Retention period of pushed objects."),
    mode: str = typer.Option("compliance", "--mode", help="compliance or governance."),
) -> None:
    """Put every object pushed to this remote under S3 Object Lock retention."""
    archive = open_archive(ctx)
    remote = archive.lock_remote(name, days, mode)
    flush_notices(archive)
    print(f"remote {remote.name} locked: pushes retain objects {remote.lock_days} days "
          f"({remote.lock_mode}); already pushed snapshots are locked on the next push")


def _transfer(ctx: typer.Context, verb: str, target: str | None, remote: str | None,
              as_json: bool) -> None:
    """Push or pull (VERB "pushed" or "pulled") with a progress bar, then report."""
    from atdarchive.cli.common import progress_bar

    archive = open_archive(ctx)
    move = archive.push if verb == "pushed" else archive.pull
    with progress_bar(enabled=not as_json) as progress:
        result = move(target, remote=remote, progress=progress)
    flush_notices(archive)
    _report(result, verb, as_json)


def _report(result: TransferResult, verb: str, as_json: bool) -> None:
    for message in result.notices:
        note(f"note: {message}")
    if as_json:
        emit_json(result.to_json())
        return
    locked = f", {result.locked} object(s) locked" if verb == "pushed" and result.locked else ""
    print(f"{verb} {len(result.snapshots)} snapshot(s) ({result.transferred} file(s) "
          f"transferred{locked}) {'to' if verb == 'pushed' else 'from'} {result.remote}")


def push(ctx: typer.Context, target: str = _TARGET_ARG, remote: str = _REMOTE_OPTION,
         as_json: bool = JSON_OPTION) -> None:
    """Upload snapshot data; on a locked remote, put it under Object Lock retention."""
    _transfer(ctx, "pushed", target, remote, as_json)


def pull(ctx: typer.Context, target: str = _TARGET_ARG, remote: str = _REMOTE_OPTION,
         as_json: bool = JSON_OPTION) -> None:
    """Download snapshot data (only what is asked) and verify every file's sha256."""
    _transfer(ctx, "pulled", target, remote, as_json)


def clone(
    ctx: typer.Context,
    git_url: str = typer.Argument(..., help="Git URL or path of an archive."),
    directory: Path = _DIR_ARG,
    pull_refs: list[str] = _PULL_OPTION,
    remote: str = _REMOTE_OPTION,
    confirm_remotes: bool = typer.Option(
        False, "--confirm-remotes",
        help="Trust the remotes (and their lock policies) the clone's config names."),
    confirm_sources: bool = typer.Option(
        False, "--confirm-sources", help="Trust the [[sources]] its datasets watch."),
) -> None:
    """Clone an archive (its ledgers by git) and pull the asked snapshots, verified."""
    from atdarchive.archive import Archive
    from atdarchive.cli.common import new_archive_path, progress_bar

    with progress_bar() as progress:
        archive = Archive.clone(git_url, new_archive_path(ctx, directory), pulls=pull_refs,
                                remote=remote, progress=progress,
                                confirm_remotes=confirm_remotes,
                                confirm_sources=confirm_sources)
    flush_notices(archive)
    for setting in archive.waiting_settings():
        note(f"waiting: {setting.describe()}; confirm: {setting.confirm}")
    print(f"cloned {git_url} into {archive.root}"
          + (f"; pulled {', '.join(pull_refs)}" if pull_refs else ""))
