"""Remotes: shared storage for snapshot data, and storage-enforced immutability (DESIGN.md §10).

- `config`: which remotes there are (`.dvc/config`, `atdarchive.toml`): `Remote`,
  `remotes`, `get_remote`, `add_remote`.
- `objects`: the snapshots a target names and their DVC objects.
- `transfer`: `push`, `pull` (restored and verified), `clone`.
- `objectlock`: S3 Object Lock: `lock_remote`, retention of pushed objects,
  `verify_remote`.
"""

from __future__ import annotations

from atdarchive.remotes.config import (
    ARCHIVE_CONFIG,
    Remote,
    add_remote,
    confirm_remote,
    get_remote,
    remotes,
)
from atdarchive.remotes.objectlock import (
    LOCK_MODES,
    S3Remote,
    lock_remote,
    remote_copies,
    verify_remote,
)
from atdarchive.remotes.objects import DIR_OBJECT, select_snapshots, snapshot_objects
from atdarchive.remotes.transfer import TransferResult, clone, pull, push

__all__ = ["ARCHIVE_CONFIG", "DIR_OBJECT", "LOCK_MODES", "Remote", "S3Remote",
           "TransferResult", "add_remote", "clone", "confirm_remote", "get_remote", "lock_remote",
           "pull", "push", "remote_copies", "remotes", "select_snapshots", "snapshot_objects",
           "verify_remote"]
