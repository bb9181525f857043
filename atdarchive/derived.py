"""Derived, rebuildable state kept under `.atdarchive/derived/` (never committed).

Per-row fingerprints (for fast diffs) and blame indexes are updated right
after each commit so later reads find them warm; any of it can be deleted
and is rebuilt on demand (`atdarchive reindex`, `atdarchive verify --repair`).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from atdarchive.context import ArchiveContext
from atdarchive.util import atomic_write

if TYPE_CHECKING:
    from atdarchive.snapshot import Snapshot


def fingerprint_dir(archive: ArchiveContext) -> Path:
    return archive.layout.fingerprints


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


def rebuild(archive: ArchiveContext) -> None:
    """Drop every derived index and rebuild them from the snapshots."""
    from atdarchive.blame import reindex

    shutil.rmtree(archive.layout.derived, ignore_errors=True)
    for dataset in archive.dataset_names():
        for entry in archive.history(dataset).entries:
            warm_fingerprints(archive, archive.snapshot_of(entry.record))
    reindex(archive)
