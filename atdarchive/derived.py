"""Derived, rebuildable state kept under `.atdarchive/derived/` (never committed).

Per-row fingerprints (for fast diffs) and blame indexes are updated right
after each commit so later reads find them warm; any of it can be deleted
and is rebuilt on demand (`atdarchive reindex`, `atdarchive verify --repair`).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from atdarchive.archive import Archive
    from atdarchive.snapshot import Snapshot


def derived_dir(archive: Archive) -> Path:
    return archive.store.state / "derived"


def fingerprint_dir(archive: Archive) -> Path:
    return derived_dir(archive) / "fingerprints"


def warm_fingerprints(archive: Archive, snapshot: Snapshot) -> None:
    from atdarchive.fingerprint import compute_fingerprints

    for name in snapshot.table_names:
        meta = snapshot.table_meta(name)
        compute_fingerprints(snapshot.table_path(name), fingerprint_dir(archive),
                             sha256=snapshot.record["files"][meta["file"]]["sha256"])


def update_after_commit(archive: Archive, snapshot: Snapshot) -> None:
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


def _flags_file(archive: Archive, snapshot_id: str) -> Path:
    return derived_dir(archive) / "audit" / "flags" / f"{snapshot_id}.json"


def save_flags(archive: Archive, snapshot_id: str, flags: dict[str, Any]) -> None:
    """Remember a release's audit flags (kinds, counts, worst severity) for `log`."""
    path = _flags_file(archive, snapshot_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(flags))
    os.replace(tmp, path)


def cached_flags(archive: Archive, snapshot_id: str) -> dict[str, Any] | None:
    """The flags of the last audit of this release (at commit, or by `audit`), if any."""
    try:
        return json.loads(_flags_file(archive, snapshot_id).read_text())
    except (FileNotFoundError, ValueError):
        return None


def rebuild(archive: Archive) -> None:
    """Drop every derived index and rebuild them from the snapshots."""
    from atdarchive.blame import reindex

    shutil.rmtree(derived_dir(archive), ignore_errors=True)
    for dataset in archive.dataset_names():
        for entry in archive.history(dataset).entries:
            from atdarchive.snapshot import Snapshot

            warm_fingerprints(archive, Snapshot(archive.store, entry.record))
    reindex(archive)
