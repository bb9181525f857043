"""The write pipeline: one publication in, one immutable snapshot out.

stage (original + tables in `.atdarchive/staging/`) → record and change
summary → publish (one rename) → track (DVC) → ledger line (the commit point)
→ git commit → derived indexes and audit flags. Before the ledger line
nothing is visible; after it, failures only leave notes (DESIGN.md §11).

Reading is bounded (`atdarchive.limits.ingest`, with the dataset's `[limits]`), and the
record's ledger line is measured before the snapshot is published: a publication over a
bound leaves nothing behind (no staging, snapshot, ledger line or git commit).
"""

from __future__ import annotations

import errno
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from atdarchive import instants
from atdarchive.context import ArchiveContext
from atdarchive.dataset import DatasetConfig
from atdarchive.dates import resolve_published
from atdarchive.errors import AtdError, IngestError, LandedButInterrupted
from atdarchive.history import History
from atdarchive.instants import When
from atdarchive.snapshot import Snapshot
from atdarchive.util import (
    canonical_json,
    check_name,
    fsync_dir,
    sha256_bytes,
    sha256_file,
    utc_now,
)

#: 2: `published` is a day or a UTC instant (`…Z`) with `published_zone`; `retrieved_at`
#: only when known (given, or fetch evidence), never the moment of committing.
RECORD_VERSION = 2
CAPTURE_FILE = "evidence/capture.warc.gz"  # the WARC of the fetch, when watch fetched it


@dataclass
class CommitResult:
    """What `commit` did: the new snapshot, its parent, and how it differs from it."""

    snapshot: Snapshot
    parent: Snapshot | None
    summary: dict[str, Any]
    identical_to: list[dict[str, str]] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    findings: list[Any] = field(default_factory=list)  # audit.Finding of this release
    when: When | None = None  # how the publication time was read (zone, naive or not)


def commit(ctx: ArchiveContext, dataset: str, file: str | os.PathLike[str], *,
           published: str | None = None, period: str | None = None,
           source_url: str | None = None, retrieved_at: str | None = None,
           channel: str = "public", archivist: str | None = None, message: str = "",
           format: str | None = None, delimiter: str | None = None,
           encoding: str | None = None, evidence: dict[str, Any] | None = None,
           json_path: str | None = None, keep_unparsed: bool = False,
           capture: Path | None = None, published_source: str | None = None,
           zone: str | None = None) -> CommitResult:
    """Ingest FILE as a new immutable snapshot of DATASET (one ledger line, one git commit).

    `keep_unparsed`: a file no reader can parse is still what the agency served; it
    is archived as an evidence-only snapshot (no tables, `parse_error` in the record).
    `capture`: a WARC file of the exchange that fetched it, kept in the snapshot as
    `evidence/capture.warc.gz` (its digest in the record, like every file).
    """
    from atdarchive.ingest import read_publication
    from atdarchive.ingest.model import Publication
    from atdarchive.limits.ingest import dataset_bounds

    config = ctx.dataset(dataset)
    bounds = dataset_bounds(ctx.root, dataset, config.limits)
    check_name("channel", channel)
    path = Path(file)
    zone = instants.check_zone(zone) if zone else config.timezone  # for naive times
    # unknown unless given or in fetch evidence: never the moment of committing
    retrieved = instants.parse(retrieved_at, zone, "--retrieved-at").text if retrieved_at \
        else None
    if path.is_dir():
        raise IngestError(f"{path}: is a directory; commit takes one publication file")
    if not path.is_file():
        raise IngestError(f"{path}: no such file")
    if path.stat().st_size == 0 and not keep_unparsed:
        raise IngestError(f"{path.name}: file is empty (what was served is kept as evidence "
                          "with --keep-unparsed)")
    given = resolve_published(published, path.name, zone=zone) if published else None
    original_sha = sha256_file(path)
    archivist = archivist or ctx.default_archivist()

    with ctx.write_lock():
        history = ctx.history(dataset)
        if given is not None:  # a duplicate is refused before the file is read
            _refuse_duplicate(history, path, original_sha, channel, given[0])
        parse_error = None
        try:
            publication = read_publication(path, format=format, delimiter=delimiter,
                                           encoding=encoding, spec=config.extract or None,
                                           json_path=json_path, bounds=bounds)
        except IngestError as exc:
            if not keep_unparsed:
                raise
            parse_error = str(exc)
            publication = Publication(format="unparsed", tables=[], reader="none")
        # the file's own problems first, then a missing date
        when, derived_from = given or resolve_published(None, path.name, evidence, zone)
        published_source = published_source or derived_from  # watch says which policy
        if given is None:
            _refuse_duplicate(history, path, original_sha, channel, when)
        staged = ctx.store.new_staging_dir(dataset)
        try:
            record = _unless_no_space(path, lambda: stage(staged, config, path, original_sha,
                                                          publication, capture))
            parent_entry = None if parse_error else parent_for(history, channel, when)
            record.update({
                "dataset": dataset, "channel": channel, "published": when.text,
                "published_zone": when.zone, "published_source": published_source,
                "period": period, "retrieved_at": retrieved,
                "source_url": source_url or config.source_url or None,
                "archivist": archivist, "message": message, "committed_at": utc_now(),
                "parent": parent_entry.id if parent_entry else None,
                "version": RECORD_VERSION,
                # how the original was read, so `verify` re-derives the tables exactly
                "read_options": {k: v for k, v in (("format", format),
                                                   ("delimiter", delimiter),
                                                   ("encoding", encoding),
                                                   ("json_path", json_path)) if v} or None,
                "parse_error": parse_error,
            })
            if evidence:
                record["fetch"] = evidence
            identical = history.find_identical(original_sha)
            if identical:
                record["identical_to"] = [
                    {"id": e.id, "published": e.published, "channel": e.channel}
                    for e in identical
                ]
            record = {k: v for k, v in record.items() if v is not None or k == "parent"}
            record["summary"] = ({"against": None, "evidence_only": True} if parse_error
                                 else _summary(ctx, staged, record, parent_entry))
            record["id"] = sha256_bytes(canonical_json(record).encode())
            ctx.ledger(dataset).check_size({"type": "snapshot", "record": record},
                                           path.name)
        except BaseException:
            shutil.rmtree(staged, ignore_errors=True)
            raise
        try:
            _unless_no_space(path, lambda: publish(ctx, staged, record))
            snapshot = ctx.snapshot_of(record)
            ctx.notices.extend(key_warnings(config, record, path.name))
            _update_derived(ctx, snapshot)
            flags = _flag_new_release(ctx, snapshot)
        except KeyboardInterrupt:
            if record["id"] not in ctx.history(dataset).by_id:
                raise  # before the commit point: nothing was recorded
            raise LandedButInterrupted(
                f"interrupted, but {dataset}@{record['id'][:10]} (published "
                f"{record['published']}) had already landed; what was cut (git commit, "
                "indexes) completes on the next write or 'atdarchive verify --repair'") from None
    parent = ctx.snapshot_of(parent_entry.record) if parent_entry else None
    return CommitResult(snapshot, parent, record["summary"],
                        record.get("identical_to", []), list(ctx.notices), flags, when)


def key_warnings(config: DatasetConfig, record: dict[str, Any], file: str) -> list[str]:
    """A declared key naming a column the committed table lacks: said now, refused by
    diff and blame until `dataset.toml`'s [keys] is fixed."""
    import difflib

    out = []
    for table, key in config.keys.items():
        meta = record["tables"].get(table)
        if meta is None:
            continue
        columns = [c["name"] for c in meta["schema"]]
        for column in (k for k in key if k not in columns):
            near = difflib.get_close_matches(column, columns, n=1, cutoff=0.6)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            out.append(f"{file}: declared key column {column!r} is not a column of "
                       f"table {table!r}{hint}; diff and blame refuse that key until "
                       "dataset.toml's [keys] names columns the table has")
    return out


def _unless_no_space(path: Path, step: Any) -> Any:
    """Run STEP; a full or read-only disk before the commit point is one line, not a trace."""
    try:
        return step()
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES,
                             errno.EPERM):
            raise
        where = exc.filename or "the archive"
        raise AtdError(f"{path.name}: not archived: {where}: {exc.strerror} (nothing was "
                       "recorded; the archive is as it was)") from None


def stage(staged: Path, config: DatasetConfig, path: Path, original_sha: str,
          publication: Any, capture: Path | None = None) -> dict[str, Any]:
    """Write original + tables into the staging directory; return the record's data part."""
    import pyarrow as pa

    from atdarchive.parquetio import write_table
    from atdarchive.store import table_fingerprint

    files: dict[str, dict[str, Any]] = {}

    def add_file(relpath: str) -> None:
        file = staged / relpath
        with open(file, "rb+") as fh:  # durable before the commit point, not just written
            os.fsync(fh.fileno())
        files[relpath] = {"sha256": sha256_file(file), "size": file.stat().st_size}

    original_rel = f"original.{_safe_suffix(path)}"
    shutil.copyfile(path, staged / original_rel)
    if sha256_file(staged / original_rel) != original_sha:
        raise IngestError(f"{path.name}: file changed while it was being archived")
    add_file(original_rel)
    (staged / "tables").mkdir()
    tables: dict[str, dict[str, Any]] = {}
    for table in publication.tables:
        name = check_name("table", table.name)
        if name in tables:
            raise IngestError(f"{path.name}: two tables named {name!r}")
        rel = f"tables/{name}.parquet"
        write_table(table.data, staged / rel)
        add_file(rel)
        meta = table.meta()
        meta.update({
            "file": rel, "rows": table.data.num_rows, "columns": table.data.num_columns,
            "schema": [{"name": f.name, "type": str(f.type)} for f in table.data.schema],
            "fingerprint": table_fingerprint(table.data),
        })
        if name in config.keys:
            meta["key"] = config.keys[name]
            meta["key_source"] = "declared"
        elif table.key:
            meta["key_source"] = "spec"
        if table.source_rows is not None:
            rows_rel = f"tables/{name}.rows.parquet"
            write_table(pa.table({"source_row": pa.array(table.source_rows, pa.int32())}),
                        staged / rows_rel)
            add_file(rows_rel)
            meta["rows_file"] = rows_rel
        tables[name] = meta
    if publication.cells is not None:
        write_table(publication.cells, staged / "cells.parquet")
        add_file("cells.parquet")
    if capture is not None:
        (staged / "evidence").mkdir()
        shutil.copyfile(capture, staged / CAPTURE_FILE)
        add_file(CAPTURE_FILE)
    return {
        "original": {"name": path.name, "file": original_rel, "size": path.stat().st_size,
                     "sha256": original_sha, "format": publication.format},
        "tables": tables,
        "files": files,
        "stated_dates": [d.to_json() for d in publication.stated_dates],
        "notes": list(publication.notes),
        "reader": publication.reader,
        "json_path": publication.json_path,
        "capture": CAPTURE_FILE if capture is not None else None,
    }


def publish(ctx: ArchiveContext, staged: Path, record: dict[str, Any]) -> None:
    """Rename into place, hand to DVC, append the ledger line, commit to git."""
    from atdarchive.recovery import recover

    dataset, snapshot_id = record["dataset"], record["id"]
    ignore = ctx.store.ignore_file(dataset)
    target = ctx.store.publish(staged, dataset, snapshot_id)
    fsync_dir(target.parent)
    try:
        pointer = ctx.store.track(dataset, snapshot_id)
    except BaseException as exc:
        recover(ctx.store)  # before the ledger line nothing exists: undo at once
        if isinstance(exc, Exception) and not isinstance(exc, AtdError | OSError):
            first = (str(exc).splitlines() or [type(exc).__name__])[0]
            raise AtdError(f"DVC could not track snapshot {snapshot_id[:10]} ({first}); "
                           "nothing was recorded") from None
        raise
    try:
        ctx.record_events(  # the ledger line is the commit point
            dataset, [{"type": "snapshot", "record": record}],
            f"{dataset}: snapshot {snapshot_id[:10]} published {record['published']} "
            f"({record['channel']})",
            body=record.get("message", ""), snapshot_id=snapshot_id,
            paths=[pointer, ignore])
    except BaseException:
        recover(ctx.store)  # no ledger line: roll back; a line without git: complete it
        raise


def _refuse_duplicate(history: History, path: Path, sha256: str, channel: str,
                      when: When) -> None:
    """Same bytes, channel and instant — however either was written — is the same release,
    not a new one (a retracted entry is no longer a release: it may be redone)."""
    for entry in history.find_identical(sha256):
        if (entry.channel == channel and instants.same_instant(entry.when, when)
                and history.retracted(entry.id) is None):
            raise AtdError(f"{path.name}: already archived as {history.dataset}@{entry.short} "
                           f"(same bytes, published {entry.published}, channel {channel})")


def parent_for(history: History, channel: str, when: When) -> Any:
    """The release a new one follows: the last in its channel published no later than it."""
    key = when.sort_key()
    before = [e for e in history.channel(channel) if e.when.sort_key() <= key]
    return before[-1] if before else None


def _summary(ctx: ArchiveContext, staged: Path, record: dict[str, Any],
             parent_entry: Any) -> dict[str, Any]:
    from atdarchive.changes import summarize
    from atdarchive.derived import warm_fingerprints

    if parent_entry is None:
        return summarize(None, None)
    parent = ctx.snapshot_of(parent_entry.record)
    staged_snapshot = Snapshot(ctx.store, record, directory=staged)
    # fingerprints are keyed by file sha256: made now, they serve the published files too
    warm_fingerprints(ctx, staged_snapshot)
    warm_fingerprints(ctx, parent)
    return summarize(parent, staged_snapshot, ctx.layout.fingerprints)


def _update_derived(ctx: ArchiveContext, snapshot: Snapshot) -> None:
    """Derived, rebuildable indexes (fingerprints, blame) — best kept warm at commit."""
    from atdarchive.derived import update_after_commit

    update_after_commit(ctx, snapshot)


def _flag_new_release(ctx: ArchiveContext, snapshot: Snapshot) -> list[Any]:
    """Flag a release the moment it arrives (recycled, period mismatch, revisions...)."""
    from atdarchive.audit import findings_for_snapshot, flag_summary
    from atdarchive.derived import save_flags

    try:
        findings = findings_for_snapshot(ctx, snapshot)
        save_flags(ctx, snapshot.id, flag_summary(findings))
        if snapshot.record.get("parse_error"):
            return findings
        series = ctx.history(snapshot.dataset).channel(snapshot.channel)
        position = [e.id for e in series].index(snapshot.id)
        if position + 1 < len(series):  # a backfill: the next release has a new parent
            successor = ctx.snapshot_of(series[position + 1].record)
            save_flags(ctx, successor.id,
                       flag_summary(findings_for_snapshot(ctx, successor)))
    except (OSError, AtdError) as exc:  # after the commit point: the release stands
        ctx.notices.append(f"audit flags not saved ({exc}); 'atdarchive audit' makes them")
        return []
    return findings


def _safe_suffix(path: Path) -> str:
    suffix = path.suffix.lower().lstrip(".")
    return suffix if suffix.isalnum() and 0 < len(suffix) <= 8 else "bin"
