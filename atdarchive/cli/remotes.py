"""Remote, pinning and citation commands: remote add/list/lock, push, pull, clone, pin, cite."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import typer

from atdarchive.cli.common import JSON_OPTION, emit_json, flush_notices, note, open_archive

_DIR_ARG = typer.Argument(..., help="New directory.")
_PULL_OPTION = typer.Option([], "--pull", help="DATASET[@REF] to pull (repeat).")
_LOCK_OPTION = typer.Option(Path("atdarchive.lock"), "--lock", help="Lockfile to write.")

remote_app = typer.Typer(help="Shared storage for snapshot data (DVC remotes).",
                         no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(remote_app, name="remote")
    app.command("push")(push)
    app.command("pull")(pull)
    app.command("clone")(clone)
    app.command("pin")(pin)
    app.command("cite")(cite)


@contextlib.contextmanager
def _progress_bar() -> Iterator[object]:
    """A rich progress bar on stderr; yields the (description, done, total) callback."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    console = Console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  console=console, transient=True, disable=not console.is_terminal) as bar:
        tasks: dict[str, int] = {}

        def update(description: str, done: int, total: int) -> None:
            if description not in tasks:
                tasks[description] = bar.add_task(description, total=total)
            bar.update(tasks[description], completed=done, total=total)

        yield update


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
    from atdarchive.remotes import add_remote

    archive = open_archive(ctx)
    remote = add_remote(archive, name, url, endpoint_url=endpoint_url, default=default)
    flush_notices(archive)
    print(f"remote {remote.name} added: {remote.url}{' (default)' if remote.default else ''}")
    if remote.kind == "s3":
        note("note: S3 credentials come from the environment (AWS_ACCESS_KEY_ID, ...), "
             "~/.aws, or 'dvc remote modify --local'; they are never committed")


@remote_app.command("list")
def remote_list(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """List data remotes, the default first."""
    from atdarchive.remotes import remotes

    rows = [r.to_json() for r in remotes(open_archive(ctx))]
    if as_json:
        emit_json(rows)
        return
    if not rows:
        note("no remotes yet; add one with 'atdarchive remote add NAME URL --default'")
    for row in rows:
        flags = [flag for flag, on in (("default", row["default"]),) if on]
        if row["lock"]:
            flags.append(f"locked {row['lock']['days']}d {row['lock']['mode']}")
        extra = f"  ({', '.join(flags)})" if flags else ""
        endpoint = f"  endpoint {row['endpoint_url']}" if row["endpoint_url"] else ""
        print(f"{row['name']}  {row['url']}{endpoint}{extra}")


@remote_app.command("lock")
def remote_lock(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="An s3:// remote on an Object Lock bucket."),
    days: int = typer.Option(..., "--days", help="Retention period of pushed objects."),
    mode: str = typer.Option("compliance", "--mode", help="compliance or governance."),
) -> None:
    """Put every object pushed to this remote under S3 Object Lock retention."""
    from atdarchive.remotes import lock_remote

    archive = open_archive(ctx)
    remote = lock_remote(archive, name, days, mode)
    flush_notices(archive)
    print(f"remote {remote.name} locked: pushes retain objects {remote.lock_days} days "
          f"({remote.lock_mode}); already pushed snapshots are locked on the next push")


def _report(result: object, verb: str, as_json: bool) -> None:
    from atdarchive.remotes import TransferResult

    assert isinstance(result, TransferResult)
    for message in result.notices:
        note(f"note: {message}")
    if as_json:
        emit_json(result.to_json())
        return
    locked = f", {result.locked} object(s) locked" if verb == "pushed" and result.locked else ""
    print(f"{verb} {len(result.snapshots)} snapshot(s) ({result.transferred} file(s) "
          f"transferred{locked}) {'to' if verb == 'pushed' else 'from'} {result.remote}")


def push(
    ctx: typer.Context,
    target: str = typer.Argument(None, metavar="[DATASET[@REF]]",
                                 help="One snapshot, a dataset, or (default) everything."),
    remote: str = typer.Option(None, "--remote", "-r", help="Remote name (default: default)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Upload snapshot data; on a locked remote, put it under Object Lock retention."""
    from atdarchive.remotes import push as push_data

    archive = open_archive(ctx)
    with _progress_bar() as progress:
        result = push_data(archive, target, remote=remote, progress=progress)
    flush_notices(archive)
    _report(result, "pushed", as_json)


def pull(
    ctx: typer.Context,
    target: str = typer.Argument(None, metavar="[DATASET[@REF]]",
                                 help="One snapshot, a dataset, or (default) everything."),
    remote: str = typer.Option(None, "--remote", "-r", help="Remote name (default: default)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Download snapshot data (only what is asked) and verify every file's sha256."""
    from atdarchive.remotes import pull as pull_data

    archive = open_archive(ctx)
    with _progress_bar() as progress:
        result = pull_data(archive, target, remote=remote, progress=progress)
    flush_notices(archive)
    _report(result, "pulled", as_json)


def clone(
    git_url: str = typer.Argument(..., help="Git URL or path of an archive."),
    directory: Path = _DIR_ARG,
    pull_refs: list[str] = _PULL_OPTION,
    remote: str = typer.Option(None, "--remote", "-r", help="Remote name (default: default)."),
) -> None:
    """Clone an archive (its ledgers by git) and pull the asked snapshots, verified."""
    from atdarchive.remotes import clone as clone_archive

    with _progress_bar() as progress:
        archive = clone_archive(git_url, directory, pulls=pull_refs, remote=remote,
                                progress=progress)
    print(f"cloned {git_url} into {archive.root}"
          + (f"; pulled {', '.join(pull_refs)}" if pull_refs else ""))


def pin(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help="DATASET@REF to pin."),
    lock: Path = _LOCK_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Pin a snapshot in a lockfile (ids and hashes) for reproducible loads."""
    from atdarchive.pinning import pin as pin_snapshot

    archive = open_archive(ctx)
    entry = pin_snapshot(archive, ref, lock)
    flush_notices(archive)
    if as_json:
        emit_json(entry)
        return
    print(f"pinned {entry['ref']} (published {entry['published']}, {len(entry['files'])} "
          f"file(s) hashed) in {lock}")


def cite(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help="DATASET@REF to cite."),
    format: str = typer.Option("text", "--format", "-f", help="text, bibtex or csl-json."),
) -> None:
    """Print a citation naming the snapshot id and hashes."""
    from atdarchive.citation import cite as make_citation

    print(make_citation(open_archive(ctx), ref, format))
