"""The archive itself: init, dataset add/list, commit, fetch, log, show, tables, export, tag(s).

Each command is a thin layer over one `Archive` method.
"""

from __future__ import annotations

from pathlib import Path

import typer

from atdarchive.cli.common import JSON_OPTION, emit_json, flush_notices, note, open_archive

dataset_app = typer.Typer(help="Create and list datasets.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.add_typer(dataset_app, name="dataset")
    app.command("commit")(commit)
    app.command("fetch")(fetch)
    app.command("log")(log)
    app.command("show")(show)
    app.command("tables")(tables)
    app.command("export")(export)
    app.command("tag")(tag)
    app.command("tags")(tags)


def init(ctx: typer.Context,
         path: Path = typer.Argument(Path("."), help="Directory to make an archive.")) -> None:
    """Make PATH (under -C, if given) an archive: git and DVC init where missing. Repeatable."""
    from atdarchive.archive import Archive
    from atdarchive.cli.common import new_archive_path

    archive = Archive.init(new_archive_path(ctx, path))
    print(f"archive ready at {archive.root}")


@dataset_app.command("add")
def dataset_add(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Dataset name, e.g. ice-detention-stats."),
    title: str = typer.Option("", help="Human title."),
    agency: str = typer.Option("", help="Publishing agency."),
    source_url: str = typer.Option("", "--source-url", help="Where releases are published."),
    description: str = typer.Option("", help="What the dataset is."),
    key: list[str] = typer.Option([], "--key", help="Key columns: TABLE=COL,COL (repeat)."),
    timezone: str = typer.Option("UTC", "--timezone", help="The agency's time zone (IANA, "
                                 "e.g. America/New_York): naive times are read in it."),
) -> None:
    """Create datasets/NAME/dataset.toml."""
    from atdarchive.dataset import parse_key_option

    archive = open_archive(ctx)
    config = archive.add_dataset(name, title=title, agency=agency, source_url=source_url,
                                 description=description, keys=parse_key_option(key),
                                 timezone=timezone)
    flush_notices(archive)
    print(f"dataset {config.name} created (datasets/{config.name}/dataset.toml)")


@dataset_app.command("list")
def dataset_list(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """List datasets with their snapshot counts."""
    archive = open_archive(ctx)
    rows = []
    for name in archive.dataset_names():
        history = archive.history(name)
        from atdarchive.errors import RefError

        try:  # the newest publication, an evidence-only one included
            latest = history.resolve("latest") if history.entries else None
        except RefError:
            latest = None
        rows.append({**archive.dataset(name).to_json(), "snapshots": len(history.entries),
                     "channels": history.channels(),
                     "latest": latest.published if latest else None})
    if as_json:
        emit_json(rows)
        return
    if not rows:
        note("no datasets yet; add one with 'atdarchive dataset add NAME'")
    for row in rows:
        latest = f", latest {row['latest']}" if row["latest"] else ""
        print(f"{row['name']}  {row['snapshots']} snapshot(s){latest}  {row['timezone']}  "
              f"{row['title']}")


PUBLISHED_FROM = {"file_name": "from the file name (give --published to override)",
                  "last_modified": "from the server's Last-Modified header",
                  "now": "the moment of capture (--published now)"}


def commit(
    ctx: typer.Context,
    dataset: str = typer.Argument(..., help="Dataset name."),
    file: Path = typer.Argument(..., help="The publication (CSV, TSV, XLSX, JSON, Parquet)."),
    published: str = typer.Option(
        None, help="When the agency published it: a date, a date-time (naive times are read "
        "in the dataset's zone, or --zone) or 'now'. Required unless the file name carries "
        "the date (MMDDYYYY, YYYYMMDD, YYYY-MM-DD, with a time such as _162107 or T1301)."),
    zone: str = typer.Option(None, "--zone", help="Read this commit's naive times "
                             "(--published, --retrieved-at, the file name) in ZONE, e.g. "
                             "UTC for a scraper's file names (default: the dataset's)."),
    period: str = typer.Option(None, help="Period the data claims to cover."),
    source_url: str = typer.Option(None, "--source-url", help="Where it was published."),
    retrieved_at: str = typer.Option(None, "--retrieved-at", help="When it was retrieved."),
    channel: str = typer.Option("public", help="Route it came by: public, foia, ..."),
    archivist: str = typer.Option(None, help="Who archived it (default: git user.name)."),
    message: str = typer.Option("", "-m", "--message", help="Notes on this release."),
    format: str = typer.Option(None, "--format", help="Force the reader: csv, xlsx, ..."),
    delimiter: str = typer.Option(None, help="CSV delimiter (default: sniffed)."),
    encoding: str = typer.Option(None, help="Text encoding (default: UTF-8)."),
    json_path: str = typer.Option(None, "--json-path",
                                  help="Where the records sit in a JSON document (a.b)."),
    keep_unparsed: bool = typer.Option(
        False, "--keep-unparsed",
        help="Archive a file no reader can parse as an evidence-only snapshot."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Archive FILE as a new immutable snapshot of DATASET."""
    from atdarchive.changes import describe
    from atdarchive.render import records

    archive = open_archive(ctx)
    result = archive.commit(
        dataset, file, published=published, period=period, source_url=source_url,
        retrieved_at=retrieved_at, channel=channel, archivist=archivist, message=message,
        format=format, delimiter=delimiter, encoding=encoding, json_path=json_path,
        keep_unparsed=keep_unparsed, zone=zone,
    )
    flush_notices(archive)
    snap = result.snapshot
    if as_json:
        emit_json({"id": snap.id, "short_id": snap.short_id, "record": snap.record,
                   "parent": result.parent.id if result.parent else None,
                   "summary": result.summary, "identical_to": result.identical_to,
                   "findings": [f.to_json() for f in result.findings]})
        return
    print(f"{snap.short_id}  {snap.dataset} published {snap.published} ({snap.channel})")
    source = snap.record.get("published_source")
    read = result.when.describe() if result.when and not result.when.is_day else ""
    if source in PUBLISHED_FROM or result.when and result.when.read_in_zone:
        how = PUBLISHED_FROM.get(source, "as given")
        print(f"  date: {how}" + (f"; read as {read}" if read else ""))
    if snap.record.get("parse_error"):
        print(f"  evidence only (no tables): {snap.record['parse_error']}")
        return
    against = f" vs {result.parent.short_id}" if result.parent else ""
    print(f"  {describe(result.summary)}{against}")
    history = archive.history(snap.dataset)
    for other in (o for o in result.identical_to if history.retracted(o["id"]) is None):
        print(f"  flag: identical to {other['id'][:10]} published {other['published']} "
              "(republication of the same bytes)")
    for line in records.findings_block(result.findings):
        print(line)


def fetch(
    ctx: typer.Context,
    dataset: str = typer.Argument(..., help="Dataset name."),
    urls: list[str] = typer.Argument(..., help="URL(s) of the publication."),
    published: str = typer.Option(None, help="Publication date (default: Last-Modified)."),
    period: str = typer.Option(None, help="Period the data claims to cover."),
    channel: str = typer.Option("public", help="Route it came by."),
    archivist: str = typer.Option(None, help="Who archived it."),
    message: str = typer.Option("", "-m", "--message", help="Notes on this release."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Download publication(s); archive new bytes, record an 'unchanged' check otherwise."""
    from atdarchive.changes import describe

    archive = open_archive(ctx)
    results = []
    for url in urls:
        result = archive.fetch(dataset, url, published=published, period=period,
                               channel=channel, archivist=archivist, message=message)
        flush_notices(archive)
        results.append(result)
        if as_json:
            continue
        if result.commit:
            snap = result.commit.snapshot
            print(f"{snap.short_id}  new release from {result.evidence['final_url']}")
            print(f"  {describe(result.commit.summary)}")
        else:
            print(f"unchanged  {url} = {dataset}@{result.unchanged_id[:10]} (check recorded)")
    if as_json:
        emit_json([{"url": r.url, "evidence": r.evidence,
                    "snapshot": r.commit.snapshot.id if r.commit else None,
                    "unchanged": r.unchanged_id} for r in results])


def log(
    ctx: typer.Context,
    dataset: str = typer.Argument(None, help="Dataset (default: all)."),
    channel: str = typer.Option(None, help="Only this channel."),
    oneline: bool = typer.Option(False, "--oneline", help="One line per snapshot."),
    n: int = typer.Option(None, "-n", help="At most N snapshots."),
    hide_retracted: bool = typer.Option(False, "--hide-retracted",
                                        help="Leave retracted snapshots out."),
    audit: bool = typer.Option(False, "--audit", help="Bring the audit flags up to date "
                               "first (they are shown only when current)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """History in publication order, newest first (retracted snapshots struck out)."""
    import sys

    from atdarchive.render import records

    archive = open_archive(ctx)
    rows = archive.log(dataset, channel=channel, limit=n, include_retracted=not hide_retracted,
                       audit=audit)
    for name in sorted({r["dataset"] for r in rows if not r["audit_current"]}):
        note(f"note: {name}: audit flags are not current (a release, retraction or note "
             f"since the last audit); 'atdarchive audit {name}' or 'log --audit' shows them")
    if as_json:
        # the record's fields, then what the history says now (the parent in force,
        # which a backfill or a retraction may have changed since the record was made)
        emit_json([{"id": r["id"],
                    **{k: v for k, v in r["record"].items() if k not in ("files", "id")},
                    "recorded_parent": r["record"].get("parent"),
                    "dataset": r["dataset"], "parent": r["parent"],
                    "tags": r["tags"], "summary": r["summary"], "checks": r["checks"],
                    "audit": r["audit"], "retracted": r["retracted"],
                    "annotations": r["annotations"], "events": r["events"]}
                   for r in rows])
        return
    if not rows:
        note("no snapshots yet")
    terminal = sys.stdout.isatty()
    if oneline:
        crowded = records.crowded_days([r["record"]["published"] for r in rows])
        print("\n".join(records.log_oneline(r, crowded, terminal) for r in rows))
    else:
        print("\n\n".join(records.log_entry(r, terminal) for r in rows))


def show(ctx: typer.Context, ref: str = typer.Argument(..., help="DATASET@REF"),
         as_json: bool = JSON_OPTION) -> None:
    """The full record of one snapshot: provenance, tables, schema, hashes."""
    from atdarchive.render import records

    archive = open_archive(ctx)
    snap = archive.snapshot(ref)
    parent = archive.parent(snap)
    tag_names = [t["tag"] for t in archive.tags(snap.dataset) if t["id"] == snap.id]
    if as_json:
        emit_json({**snap.record, "parent_in_history": parent.id if parent else None,
                   "tags": tag_names})
        return
    print(records.show(snap.record, parent.id if parent else None, tag_names))


def tables(ctx: typer.Context, ref: str = typer.Argument(..., help="DATASET@REF"),
           as_json: bool = JSON_OPTION) -> None:
    """What was extracted: each table's sheet, cell range, shape, key, time role, notes."""
    from atdarchive.render import records

    archive = open_archive(ctx)
    snap = archive.snapshot(ref)
    semantics = archive.semantics(ref)
    if as_json:
        emit_json({"id": snap.id, "tables": snap.record["tables"], "semantics": semantics,
                   "stated_dates": snap.record.get("stated_dates", [])})
        return
    print(f"{snap.ref} published {snap.published}: {len(snap.table_names)} table(s)")
    if snap.record.get("parse_error"):
        print(f"  evidence only: no reader could parse it ({snap.record['parse_error']})")
    for name, meta in snap.record["tables"].items():
        print(records.table_block(name, meta, semantics=semantics[name]))


def export(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help="DATASET@REF"),
    out: Path = typer.Option(None, "-o", "--output", help="Output file (.csv or .parquet)."),
    table: str = typer.Option(None, help="Table to export (needed if several)."),
    original: bool = typer.Option(False, "--original", help="The original file, byte for byte."),
    warc: Path = typer.Option(None, "--warc", help="Every WARC capture of the dataset, as "
                              "one OUT.warc.gz (give DATASET)."),
    force: bool = typer.Option(False, "--force", help="Overwrite OUT if it exists."),
    raw: bool = typer.Option(False, "--raw", help="CSV: write text cells exactly, even those "
                             "a spreadsheet would run as formulas (=, +, -, @, tab, CR)."),
) -> None:
    """Write a table (CSV/Parquet), the original publication, or the dataset's WARC."""
    archive = open_archive(ctx)
    if warc is not None:
        path = archive.export_warc(ref.partition("@")[0], warc, force=force)
        note(f"wrote {path}")
        return
    if out is None:
        from atdarchive.errors import AtdError

        raise AtdError("export needs -o OUT (or --warc OUT.warc.gz)")
    path = archive.export(ref, out, table=table, original=original, force=force, raw=raw)
    note(f"wrote {path}")


def tag(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help="DATASET@REF"),
    name: str = typer.Argument(..., help="Tag name."),
    force: bool = typer.Option(False, "--force", help="Move an existing tag (recorded)."),
) -> None:
    """Name a snapshot (stored in the ledger and committed to git)."""
    archive = open_archive(ctx)
    snap = archive.tag(ref, name, force=force)
    flush_notices(archive)
    print(f"{snap.dataset}@{name} -> {snap.short_id} (published {snap.published})")


def tags(ctx: typer.Context, dataset: str = typer.Argument(None, help="Dataset (default: all)."),
         as_json: bool = JSON_OPTION) -> None:
    """List tags."""
    archive = open_archive(ctx)
    rows = archive.tags(dataset)
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        print(f"{row['dataset']}@{row['tag']}  {row['short_id']}  {row['published']}")
