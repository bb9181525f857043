"""What a push, pull or remote check moves: the snapshots a target names, and their DVC objects.

Each snapshot is one DVC-tracked directory: a directory listing object
(`<md5>.dir`, named by the snapshot's `.dvc` pointer) and one object per file.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from atdarchive.context import ArchiveContext
from atdarchive.errors import IntegrityError
from atdarchive.store import DVC_MD5_RE

DIR_OBJECT = ".dir"  # name of a snapshot's DVC directory listing among its objects


def select_snapshots(archive: ArchiveContext, target: str | None) -> list[tuple[str, str]]:
    """(dataset, snapshot id) for `DATASET@REF`, all of `DATASET`, or everything (None):
    every snapshot the ledger holds — retracted and evidence-only ones too, whose bytes
    are kept and verified like any other."""
    if target and "@" in target:
        snapshot = archive.snapshot(target)
        return [(snapshot.dataset, snapshot.id)]
    names = [target] if target else archive.dataset_names()
    out = []
    for name in names:
        history = archive.history(name)
        out += [(name, e.id) for e in history.entries]
    return out


def snapshot_objects(archive: ArchiveContext, dataset: str, snapshot_id: str,
                     read_listing: Callable[[str], bytes | None] | None = None
                     ) -> dict[str, str]:
    """The DVC objects of one snapshot: {".dir": "<md5>.dir", relpath: md5, ...}.

    The listing comes from the local cache, else from `read_listing(dir_object)`
    (a remote's copy) when given; without either, only the ".dir" entry.
    """
    pointer = archive.store.pointer(dataset, snapshot_id)
    if not pointer.exists():
        raise IntegrityError(f"{pointer}: DVC pointer of {dataset}@{snapshot_id[:10]} missing")
    match = DVC_MD5_RE.search(pointer.read_text())
    if not match:
        raise IntegrityError(f"{pointer}: not a DVC directory pointer (edited by hand?)")
    dir_obj = match.group(1) + ".dir"
    manifest = archive.store.directory_manifest(dataset, snapshot_id)
    if manifest is None and read_listing is not None:
        data = read_listing(dir_obj)
        if data is not None:
            manifest = {e["relpath"]: e["md5"] for e in json.loads(data)}
    objects = {DIR_OBJECT: dir_obj}
    objects.update(manifest or {})
    return objects
