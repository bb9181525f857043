"""Moving snapshot data: push, pull (restored and verified), clone.

An archive's ledger travels by git; its data travels by DVC remotes (a local
directory, or S3 through dvc-s3). Pushes and pulls go DVC call by DVC call in
batches of snapshots; DVC's log is captured, so a failure is one line.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from atdarchive import gitops
from atdarchive.context import ArchiveContext
from atdarchive.dvcconfig import require_dvc_trusted
from atdarchive.errors import AtdError, IntegrityError
from atdarchive.progress import Progress
from atdarchive.remotes.config import (
    Remote,
    UnconfirmedRemote,
    confirm_remote,
    get_remote,
    remotes,
)
from atdarchive.remotes.failures import explain
from atdarchive.remotes.objectlock import S3Remote, recorded_object, remote_copies, retain_pushed
from atdarchive.remotes.objects import DIR_OBJECT, select_snapshots, snapshot_objects
from atdarchive.util import atomic_write, sha256_file

PUSH_BATCH = 20  # snapshots per DVC call: progress granularity vs. DVC's per-call overhead
_DVC_LOGGERS = ("dvc", "dvc_data", "dvc_objects", "dvc_s3")


@dataclass
class TransferResult:
    """What push or pull did, per snapshot."""

    remote: str
    snapshots: list[str] = field(default_factory=list)  # "dataset@id"
    transferred: int = 0
    locked: int = 0  # snapshot objects put under retention (push) or restored (pull)
    notices: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"remote": self.remote, "snapshots": self.snapshots,
                "transferred": self.transferred, "locked": self.locked,
                "notices": self.notices}


# -- DVC calls -----------------------------------------------------------------
class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class _Dvc:
    """A DVC Repo and what it logged while we used it."""

    repo: Any
    log: _Capture

    def explain(self, exc: BaseException) -> str:
        return explain(exc, self.log.records)


@contextlib.contextmanager
def _dvc(archive: ArchiveContext) -> Iterator[_Dvc]:
    """A DVC Repo whose log goes to us (not the terminal): failures become one line."""
    from dvc.repo import Repo

    archive.store.cache_dir()  # refuses a committed cache.dir outside the archive
    require_dvc_trusted(archive.root)  # DVC acts on cache/site-cache settings as it opens
    capture = _Capture()
    loggers = [logging.getLogger(name) for name in _DVC_LOGGERS]
    saved = [(lg.level, lg.propagate, list(lg.handlers)) for lg in loggers]
    for lg in loggers:
        lg.handlers = [capture]
        lg.propagate = False
        lg.setLevel(logging.WARNING)
    try:
        with gitops.neutralised_environment(archive.root), Repo(str(archive.root)) as repo:
            yield _Dvc(repo, capture)
    finally:
        for lg, (level, propagate, handlers) in zip(loggers, saved, strict=True):
            lg.setLevel(level)
            lg.propagate = propagate
            lg.handlers = handlers


def _batches(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


# -- push ------------------------------------------------------------------------
def push(archive: ArchiveContext, target: str | None = None, *, remote: str | None = None,
         progress: Progress | None = None) -> TransferResult:
    """Upload snapshot data to a remote; on a locked S3 remote, put it under retention."""
    chosen = get_remote(archive, remote)
    chosen.require_confirmed(archive.root)
    selected = select_snapshots(archive, target)
    result = TransferResult(chosen.name)
    for dataset, snapshot_id in selected:
        if archive.store.directory_manifest(dataset, snapshot_id) is None:
            raise AtdError(f"{dataset}@{snapshot_id[:10]} is not in the local cache; pull it "
                           "before pushing it elsewhere")
    done = 0
    with _dvc(archive) as dvc:
        for batch in _batches(selected, PUSH_BATCH):
            targets = [str(archive.store.pointer(d, i)) for d, i in batch]
            try:
                result.transferred += dvc.repo.push(targets=targets, remote=chosen.name)
            except Exception as exc:
                raise AtdError(f"push to remote {chosen.name} ({chosen.url}) failed: "
                               f"{dvc.explain(exc)}") from None
            done += len(batch)
            if progress:
                progress(f"push → {chosen.name}", done, len(selected))
    result.snapshots = [f"{d}@{i}" for d, i in selected]
    if chosen.locked:
        result.locked = retain_pushed(archive, chosen, selected, progress)
    return result


# -- pull ------------------------------------------------------------------------
def pull(archive: ArchiveContext, target: str | None = None, *, remote: str | None = None,
         progress: Progress | None = None) -> TransferResult:
    """Fetch snapshot data from a remote, restore what is recorded but hidden, verify every hash.

    Only the selected snapshots are fetched. Each file is checked against the
    sha256 in its record; a mismatch removes the bad copy and raises
    IntegrityError, so nothing unverified stays in the cache.
    """
    chosen = get_remote(archive, remote)
    chosen.require_confirmed(archive.root)
    selected = select_snapshots(archive, target)
    result = TransferResult(chosen.name)
    copies = remote_copies(archive, chosen.name) if chosen.kind == "s3" else {}
    for dataset, snapshot_id in selected:  # DVC follows a pointer's paths: check them first
        archive.store.check_pointer(dataset, snapshot_id)
        archive.store.snapshot_dir(dataset, snapshot_id)
    done = 0
    with _dvc(archive) as dvc:
        for batch in _batches(selected, PUSH_BATCH):
            targets = [str(archive.store.pointer(d, i)) for d, i in batch]
            failure: BaseException | None = None
            reason = ""
            try:
                result.transferred += dvc.repo.fetch(targets=targets, remote=chosen.name)
            except Exception as exc:  # partial: restore from recorded versions below
                failure = exc
                reason = dvc.explain(exc)
            restored = 0
            for dataset, snapshot_id in batch:
                restored += _restore_recorded(archive, chosen, dataset, snapshot_id,
                                              copies.get(snapshot_id))
            result.locked += restored
            if restored:
                result.notices.append(f"restored {restored} object(s) from their recorded "
                                      f"locked versions on {chosen.name}")
            missing = [(d, i) for d, i in batch if _missing_objects(archive, d, i)]
            if missing:
                d, i = missing[0]
                why = reason if failure is not None else "objects missing on the remote"
                raise AtdError(f"pull from remote {chosen.name} ({chosen.url}) failed for "
                               f"{d}@{i[:10]}: {why}")
            for dataset, snapshot_id in batch:
                _check_listing(archive, dataset, snapshot_id)
            try:
                dvc.repo.checkout(targets=targets, force=True)
            except Exception as exc:
                raise AtdError(f"checkout of pulled data failed: {dvc.explain(exc)}") from None
            for dataset, snapshot_id in batch:
                copy = copies.get(snapshot_id)
                try:
                    _verify_pulled(archive, dataset, snapshot_id)
                except IntegrityError:
                    if copy is None:
                        raise
                    # the current remote object is not the locked one: use the recorded version
                    result.locked += _restore_recorded(archive, chosen, dataset, snapshot_id,
                                                       copy)
                    dvc.repo.checkout(targets=[str(archive.store.pointer(dataset, snapshot_id))],
                                      force=True)
                    _verify_pulled(archive, dataset, snapshot_id)
                    result.notices.append(f"{dataset}@{snapshot_id[:10]}: the remote's current "
                                          "copy was altered; restored the recorded locked version")
            done += len(batch)
            if progress:
                progress(f"pull ← {chosen.name}", done, len(selected))
    result.snapshots = [f"{d}@{i}" for d, i in selected]
    return result


def _missing_objects(archive: ArchiveContext, dataset: str, snapshot_id: str) -> list[str]:
    store = archive.store
    objects = snapshot_objects(archive, dataset, snapshot_id)
    if not store.cache_path(objects[DIR_OBJECT]).exists():
        return [DIR_OBJECT]
    return [rel for rel, md5 in objects.items()
            if rel != DIR_OBJECT and not store.cache_path(md5).exists()]


def _restore_recorded(archive: ArchiveContext, remote: Remote, dataset: str, snapshot_id: str,
                      copy: dict[str, Any] | None) -> int:
    """Fetch cache objects that DVC could not from their recorded (locked) S3 versions."""
    if copy is None:
        return 0
    s3 = S3Remote(remote)
    restored = 0
    for _ in range(2):  # the .dir listing first, then the files it names
        for rel in _missing_objects(archive, dataset, snapshot_id):
            info = copy["objects"].get(rel)
            if info is None:
                continue
            obj = recorded_object(info)
            data = s3.get(obj, info["version_id"])
            if data is None:
                continue
            expected = obj.removesuffix(".dir")
            actual = hashlib.md5(data).hexdigest()  # noqa: S324 - DVC's address
            if actual != expected:
                raise IntegrityError(
                    f"{remote.name}:{info['key']} version {info['version_id']}: md5 "
                    f"{actual} does not match its address {expected}")
            path = archive.store.cache_path(obj)
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, data)
            path.chmod(0o444)
            restored += 1
    return restored


def _check_listing(archive: ArchiveContext, dataset: str, snapshot_id: str) -> None:
    """The fetched DVC directory listing names exactly the record's files (DVC checks out
    what the listing says: a listing naming other paths must never reach the disk)."""
    listing = archive.store.directory_manifest(dataset, snapshot_id) or {}
    record = archive.history(dataset).by_id[snapshot_id].record
    if set(listing) != set(record["files"]):
        extra = sorted(set(listing) - set(record["files"]))[:3]
        raise IntegrityError(f"{dataset}@{snapshot_id[:10]}: the remote's directory listing "
                             f"does not match the record (extra: {extra}); refused to check out")


def _verify_pulled(archive: ArchiveContext, dataset: str, snapshot_id: str) -> None:
    """Full sha256 of every pulled file against the record; remove and fail on mismatch."""
    store = archive.store
    record = archive.history(dataset).by_id[snapshot_id].record
    objects = snapshot_objects(archive, dataset, snapshot_id)
    for rel, info in record["files"].items():
        path = store.locate(dataset, snapshot_id, rel)
        if path is None:
            raise IntegrityError(f"{dataset}@{snapshot_id[:10]}: {rel} missing after pull")
        actual = sha256_file(path)
        if actual != info["sha256"]:
            bad = [path]
            if rel in objects:
                bad.append(store.cache_path(objects[rel]))
            for item in bad:
                with contextlib.suppress(OSError):
                    item.unlink()
            raise IntegrityError(
                f"{dataset}@{snapshot_id[:10]} {rel}: pulled data has sha256 {actual}, the "
                f"record says {info['sha256']} (remote copy altered; bad copy removed)")


# -- clone -----------------------------------------------------------------------
def clone(git_url: str, directory: str | os.PathLike[str], *,
          pulls: list[str] | tuple[str, ...] = (), remote: str | None = None,
          progress: Progress | None = None, confirm_remotes: bool = False,
          confirm_sources: bool = False) -> ArchiveContext:
    """git clone an archive, then pull (and verify) the asked snapshots.

    A directory remote outside the clone that the archive's config names is
    used only when `confirm_remotes` says so; its `[[sources]]` when `confirm_sources` does.
    Returns the clone's context; `Archive.clone` gives the full façade.
    """
    target = Path(directory).resolve()
    if target.exists() and any(target.iterdir()):
        raise AtdError(f"{target}: exists and is not empty")
    target.parent.mkdir(parents=True, exist_ok=True)
    gitops.git(target.parent, "clone", "-q", "--", git_url, str(target))
    archive = ArchiveContext(target)
    if confirm_remotes:
        for known in remotes(archive):
            if not known.confirmed:
                confirm_remote(archive, known.name)
    if confirm_sources:
        from atdarchive.settings import confirm_settings, waiting

        if any(s.kind == "source" for s in waiting(archive)):
            confirm_settings(archive, "source")
    try:
        for ref in pulls:
            if "@" not in ref and ref not in archive.dataset_names():
                raise AtdError(f"--pull {ref!r}: expected DATASET or DATASET@REF")
            pull(archive, ref, remote=remote, progress=progress)
    except AtdError as exc:  # leave nothing half-made behind
        shutil.rmtree(target, ignore_errors=True)
        if isinstance(exc, UnconfirmedRemote):
            message = (f"{exc.message.split(' and is not used')[0]}: refused — if you "
                       "trust it, clone with --confirm-remotes")
        else:
            message = exc.message
        raise type(exc)(f"{message} (the clone at {target} was removed)") from None
    return archive
