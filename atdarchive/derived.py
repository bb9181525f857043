"""Derived, rebuildable state kept under `.atdarchive/derived/` (never committed).

Updated right after each commit so later reads find it warm; any of it can
be deleted and is rebuilt on demand (`atdarchive reindex`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from atdarchive.archive import Archive
    from atdarchive.snapshot import Snapshot


def update_after_commit(archive: Archive, snapshot: Snapshot) -> None:
    """Hook run inside the write lock after a snapshot is published."""
