"""Derived, rebuildable state kept under `.atdarchive/derived/` (never committed).

Per-row fingerprints (for fast diffs) and blame indexes are updated right
after each commit so later reads find them warm; any of it can be deleted
and is rebuilt on demand (`atdarchive reindex`, `atdarchive verify --repair`).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from typing import TYPE_CHECKING, Any

from atdarchive.context import ArchiveContext
from atdarchive.util import atomic_write

if TYPE_CHECKING:
    from atdarchive.snapshot import Snapshot


def warm_fingerprints(archive: ArchiveContext, snapshot: Snapshot) -> None:
    from atdarchive.fingerprint import compute_fingerprints

    for name in snapshot.table_names:
        meta = snapshot.table_meta(name)
        compute_fingerprints(snapshot.table_path(name), archive.layout.fingerprints,
                             sha256=snapshot.record["files"][meta["file"]]["sha256"])


def update_after_commit(archive: ArchiveContext, snapshot: Snapshot) -> None:
    """Hook run inside the write lock after a snapshot is published.

    The snapshot is already committed; a failure here only leaves an index
    cold (rebuilt on next use), so it becomes a note, not an error.
    """
    from atdarchive.blame import update_index

    try:
        warm_fingerprints(archive, snapshot)
        update_index(archive, snapshot)
    except (OSError, ValueError) as exc:
        archive.notices.append(f"derived indexes not updated ({exc}); they rebuild on use")


from atdarchive.formats import AUDIT_VERSION, FLAGS_FORMAT, HIERARCHY_VERSION  # noqa: E402

_STAMPS: dict[tuple[str, str], tuple[tuple[Any, ...], str]] = {}


def flags_stamp(archive: ArchiveContext, dataset: str) -> str:
    """What a release's flags are a function of: the dataset's whole ledger (releases,
    retractions, annotations: a backfill changes a parent, a new release can change an
    inferred key), its effective settings and the versions of the flags, the audit and
    the hierarchy derivation (all owned here). Flags stamped otherwise were made from
    other inputs (or by another version): stale. Light: `log` asks it."""
    ledger = archive.ledger(dataset).path
    config = archive.dataset(dataset)
    settings = json.dumps([config.keys, config.hierarchy, config.audit, config.timezone,
                           config.extract], sort_keys=True, default=str)
    try:
        st = ledger.stat()
        probe: tuple[Any, ...] = (st.st_size, st.st_mtime_ns, st.st_ino, settings)
    except FileNotFoundError:
        probe = (None, settings)
    hit = _STAMPS.get((str(ledger), dataset))
    if hit is not None and hit[0] == probe:
        return hit[1]
    try:
        ledger_digest = hashlib.sha256(ledger.read_bytes()).hexdigest()
    except FileNotFoundError:
        ledger_digest = ""
    stamp = hashlib.sha256(json.dumps(
        [FLAGS_FORMAT, AUDIT_VERSION, HIERARCHY_VERSION, ledger_digest, settings]
    ).encode()).hexdigest()
    _STAMPS[(str(ledger), dataset)] = (probe, stamp)
    return stamp


def current_flags(archive: ArchiveContext, snapshot_id: str, dataset: str
                  ) -> dict[str, Any] | None:
    """The release's flags as the full audit of its dataset gave them, if that audit is
    current (same ledger, settings and versions); None when it is not (`audit` brings it
    up to date): a stale flag is never shown as a finding."""
    data = read_flags(archive, snapshot_id)
    return data.get("flags") if data.get("stamp") == flags_stamp(archive, dataset) else None


def save_flags(archive: ArchiveContext, snapshot_id: str, flags: dict[str, Any], *,
               dataset: str | None = None, stamp: str | None = None) -> None:
    """Remember a release's audit flags (kinds, counts, worst severity) for `log`.

    Only a full audit with default thresholds passes `stamp` (`flags_stamp`); flags
    saved without one (a commit's or an annotation's one-release look) are never shown
    as they are: `cached_flags` re-audits, so `log` says what `audit` says."""
    atomic_write(archive.layout.flags(snapshot_id), json.dumps(
        {"format": FLAGS_FORMAT, "dataset": dataset, "stamp": stamp, "flags": flags}),
        durable=False, mkdir=True)


def read_flags(archive: ArchiveContext, snapshot_id: str) -> dict[str, Any]:
    """The saved flags file of one release ({} when absent or of another format)."""
    try:
        data = json.loads(archive.layout.flags(snapshot_id).read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return data if isinstance(data, dict) and data.get("format") == FLAGS_FORMAT else {}


def rebuild(archive: ArchiveContext, dataset: str | None = None) -> list[str]:
    """Drop every derived index and rebuild those of DATASET (or all) from the snapshots.

    A dataset whose data is not all present (a partial clone) is skipped with a
    note: its indexes rebuild when its data is pulled and used.
    """
    from atdarchive.blame import reindex

    shutil.rmtree(archive.layout.derived, ignore_errors=True)
    notes = []
    for name in [dataset] if dataset else archive.dataset_names():
        entries = archive.history(name).entries
        absent = [e for e in entries if any(
            archive.store.locate(name, e.id, rel) is None for rel in e.record["files"])]
        if absent:
            notes.append(f"{name}: indexes not rebuilt: data of {len(absent)} snapshot(s) is "
                         f"not present (atdarchive pull {name})")
            continue
        for entry in entries:
            warm_fingerprints(archive, archive.snapshot_of(entry.record))
        reindex(archive, name)
        notes.append(f"{name}: rebuilt derived indexes")
    return notes
