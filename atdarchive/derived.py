"""Derived, rebuildable state kept under `.atdarchive/derived/` (never committed).

Per-row fingerprints (for fast diffs) and blame indexes are updated right
after each commit so later reads find them warm; any of it can be deleted
and is rebuilt on demand (`atdarchive reindex`, `atdarchive verify --repair`).
"""

from __future__ import annotations

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


def save_flags(archive: ArchiveContext, snapshot_id: str, flags: dict[str, Any]) -> None:
    """Remember a release's audit flags (kinds, counts, worst severity) for `log`."""
    atomic_write(archive.layout.flags(snapshot_id), json.dumps(flags), durable=False,
                 mkdir=True)


def cached_flags(archive: ArchiveContext, snapshot_id: str) -> dict[str, Any] | None:
    """The flags of the last audit of this release (at commit, or by `audit`), if any."""
    try:
        return json.loads(archive.layout.flags(snapshot_id).read_text())
    except (FileNotFoundError, ValueError):
        return None


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
