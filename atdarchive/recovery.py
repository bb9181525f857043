"""Finish or undo what an interrupted writer left behind (DESIGN.md §11).

The ledger line is a snapshot's commit point. Before it, nothing is visible:
staging, a published directory or a `.dvc` pointer without a ledger line are
rolled back. After it, the snapshot exists: a missing git commit is made —
but only when the ledger merely grew since git last saw it; an edited ledger
is left alone for `atdarchive verify` to report.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from atdarchive import gitops

if TYPE_CHECKING:
    from atdarchive.archive import Archive


def recover(archive: Archive) -> list[str]:
    """Run under the write lock; returns notices of what was repaired."""
    notices: list[str] = []
    staging = archive.store.staging
    if staging.exists() and any(staging.iterdir()):
        shutil.rmtree(staging)
        notices.append("removed leftover staging from an interrupted commit")
    for dataset in archive.dataset_names():
        notices += _recover_dataset(archive, dataset)
    return notices


def _recover_dataset(archive: Archive, dataset: str) -> list[str]:
    notices = []
    ledger = archive.ledger(dataset)
    ids = {e["record"]["id"] for e in ledger.events() if e.get("type") == "snapshot"}
    snapshots = archive.store.snapshots_dir(dataset)
    if snapshots.exists():
        for path in sorted(snapshots.iterdir()):
            snapshot_id = path.name.removesuffix(".dvc")
            if path.name.startswith(".") or snapshot_id in ids:
                continue
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
            _drop_gitignore_line(snapshots / ".gitignore", snapshot_id)
            notices.append(f"{dataset}: rolled back unfinished snapshot {snapshot_id[:10]}")
    rel = ledger.path.relative_to(archive.root).as_posix()
    committed = gitops.show_file(archive.root, "HEAD", rel) or b""
    current = ledger.path.read_bytes() if ledger.path.exists() else b""
    if current != committed and current.startswith(committed):
        paths = [ledger.path, snapshots / ".gitignore",
                 *(archive.store.pointer(dataset, i) for i in ids)]
        gitops.commit(archive.root, [p for p in paths if p.exists()],
                      f"{dataset}: complete interrupted commit")
        notices.append(f"{dataset}: committed to git what an interrupted commit had recorded")
    return notices


def _drop_gitignore_line(path: Path, snapshot_id: str) -> None:
    if not path.exists():
        return
    lines = path.read_text().splitlines(keepends=True)
    kept = [line for line in lines if line.strip() != f"/{snapshot_id}"]
    if kept != lines:
        path.write_text("".join(kept))
