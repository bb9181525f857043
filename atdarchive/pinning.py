"""Pinning for papers (DESIGN.md §9): a lockfile names the exact snapshots a work used.

`pin` writes `atdarchive.lock` (TOML): per dataset the snapshot id, its
publication metadata, the sha256 of every file (original, Parquet tables,
cell layer) and each table's content fingerprint, and where the archive and
its data live. `load` returns exactly the pinned snapshot after re-hashing
every file in full (never the stat-stamp cache) and fails loudly on any
difference, so a result computed in ten years is computed on the same bytes.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from atdarchive import gitops
from atdarchive.context import ArchiveContext
from atdarchive.errors import AtdError, IntegrityError
from atdarchive.remotes import get_remote
from atdarchive.snapshot import Snapshot
from atdarchive.tomlwriter import dumps
from atdarchive.util import atomic_write, canonical_json, sha256_bytes, sha256_file, utc_now

DEFAULT_LOCK = "atdarchive.lock"
LOCK_VERSION = 1
LOCK_HEADER = """atdarchive.lock: the exact snapshots this work used.
Load them with atdarchive.load("DATASET", lock="atdarchive.lock"), which
re-hashes every file; check all pins with 'atdarchive verify --lock FILE'."""


# -- where the archive is ------------------------------------------------------
def archive_location(archive: ArchiveContext) -> str:
    """The archive's git remote URL (what others can clone), else its path."""
    remotes = gitops.git(archive.root, "remote", check=False).stdout.split()
    for name in ("origin", *remotes):
        if name in remotes:
            url = gitops.git(archive.root, "remote", "get-url", name, check=False).stdout
            if url.strip():
                return url.strip()
    return str(archive.root)


def _data_remote(archive: ArchiveContext) -> tuple[str | None, str | None]:
    try:
        remote = get_remote(archive)
    except AtdError:
        return None, None
    return remote.name, remote.url


# -- reading and writing the lockfile -------------------------------------------
def read_lock(path: str | os.PathLike[str]) -> dict[str, Any]:
    lock = Path(path)
    if not lock.exists():
        raise AtdError(f"{lock}: no such lockfile; create it with "
                       f"'atdarchive pin DATASET@REF --lock {lock}'")
    try:
        data = tomllib.loads(lock.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise AtdError(f"{lock}: invalid TOML: {exc}") from None
    if data.get("version") != LOCK_VERSION or not isinstance(data.get("datasets"), dict):
        raise AtdError(f"{lock}: not an atdarchive lockfile (version {LOCK_VERSION} with "
                       "[datasets.NAME] tables)")
    return data


def _pin_entry(archive: ArchiveContext, snapshot: Snapshot) -> dict[str, Any]:
    record = snapshot.record
    files: dict[str, str] = {}
    for rel, info in sorted(record["files"].items()):
        # a pin is a promise about bytes: check them now, not just copy the record
        archive.store.verified_path(snapshot.dataset, snapshot.id, rel, info["sha256"])
        files[rel] = info["sha256"]
    remote, remote_url = _data_remote(archive)
    tables = {}
    for name, meta in record["tables"].items():
        tables[name] = {"file": meta["file"], "rows": meta["rows"],
                        "fingerprint": meta["fingerprint"],
                        "sha256": record["files"][meta["file"]]["sha256"]}
    entry: dict[str, Any] = {
        "snapshot": snapshot.id,
        "ref": f"{snapshot.dataset}@{snapshot.short_id}",
        "published": snapshot.published,
        "channel": snapshot.channel,
        "retrieved_at": record.get("retrieved_at"),
        "source_url": record.get("source_url"),
        "archive": archive_location(archive),
        "archive_path": str(archive.root),
        "remote": remote,
        "remote_url": remote_url,
        "pinned_at": utc_now(),
        "original": {"name": record["original"]["name"], "file": record["original"]["file"],
                     "sha256": record["original"]["sha256"]},
        "tables": tables,
        "files": files,
    }
    return {k: v for k, v in entry.items() if v is not None}


def pin(archive: ArchiveContext, ref: str, lock: str | os.PathLike[str] = DEFAULT_LOCK
        ) -> dict[str, Any]:
    """Pin DATASET@REF in the lockfile (one pin per dataset; other pins kept). Returns the pin."""
    snapshot = archive.snapshot(ref)
    path = Path(lock)
    data = read_lock(path) if path.exists() else {"version": LOCK_VERSION, "datasets": {}}
    data["datasets"][snapshot.dataset] = _pin_entry(archive, snapshot)
    atomic_write(path, lock_toml(data).encode("utf-8"))
    return data["datasets"][snapshot.dataset]


def lock_toml(data: dict[str, Any]) -> str:
    """The lockfile's text: its version and one table per pinned dataset, sorted."""
    return dumps({"version": LOCK_VERSION, "datasets": dict(sorted(data["datasets"].items()))},
                 comments={"": LOCK_HEADER})


# -- loading and checking --------------------------------------------------------
def _open_archive(lock_path: Path, pin_entry: dict[str, Any],
                  archive: ArchiveContext | str | os.PathLike[str] | None) -> ArchiveContext:
    if isinstance(archive, ArchiveContext):
        return archive
    if archive is not None:
        return ArchiveContext(archive)
    recorded = pin_entry.get("archive_path")
    if recorded and (Path(recorded) / ".dvc").is_dir():
        return ArchiveContext(recorded)
    for start in (lock_path.resolve().parent, Path.cwd()):
        try:
            return ArchiveContext(start)
        except AtdError:
            continue
    raise AtdError(f"{lock_path}: cannot find the archive (pinned at {recorded}); pass "
                   f"archive=PATH, or clone it: atdarchive clone "
                   f"{pin_entry.get('archive', 'GIT_URL')} DIR --pull {pin_entry.get('ref')}")


def _pin_for(data: dict[str, Any], dataset: str, lock_path: Path) -> dict[str, Any]:
    entry = data["datasets"].get(dataset)
    if entry is None:
        pinned = ", ".join(sorted(data["datasets"])) or "none"
        raise AtdError(f"{lock_path}: dataset {dataset!r} is not pinned (pinned: {pinned}); "
                       f"run 'atdarchive pin {dataset}@REF --lock {lock_path}'")
    return entry


def _check_pin(archive: ArchiveContext, dataset: str, entry: dict[str, Any]
               ) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The pinned record, and every problem of the pin (record, files, hashes)."""
    problems: list[dict[str, Any]] = []
    snapshot_id = entry.get("snapshot", "")

    def problem(file: str | None, text: str) -> None:
        problems.append({"dataset": dataset, "snapshot": snapshot_id, "file": file,
                         "problem": text})

    history = archive.history(dataset)
    found = history.by_id.get(snapshot_id)
    if found is None:
        problem(None, f"pinned snapshot {dataset}@{snapshot_id[:10]} is not in the archive at "
                      f"{archive.root} (pull the ledger: git pull)")
        return None, problems
    record = found.record
    recomputed = sha256_bytes(canonical_json(
        {k: v for k, v in record.items() if k != "id"}).encode())
    if recomputed != snapshot_id:
        problem(None, f"ledger record of {dataset}@{snapshot_id[:10]} was altered (its hash is "
                      f"{recomputed}, the pinned id {snapshot_id})")
    pinned_files: dict[str, str] = entry.get("files", {})
    for rel in sorted(set(pinned_files) | set(record["files"])):
        expected = pinned_files.get(rel)
        recorded = record["files"].get(rel, {}).get("sha256")
        if expected is None or recorded is None:
            problem(rel, f"file set differs: {rel} is "
                         f"{'not pinned' if expected is None else 'not in the record'}")
            continue
        if expected != recorded:
            problem(rel, f"pinned sha256 {expected} but the record says {recorded}")
            continue
        path = archive.store.locate(dataset, snapshot_id, rel)
        if path is None:
            problem(rel, f"not present locally; run 'atdarchive pull {dataset}@"
                         f"{snapshot_id[:10]}'")
            continue
        actual = sha256_file(path)  # full hash: a pin never trusts the stamp cache
        if actual != expected:
            problem(rel, f"{path}: sha256 {actual} does not match the pinned {expected}")
    for name, meta in entry.get("tables", {}).items():
        current = record["tables"].get(name)
        if current is None:
            problem(meta.get("file"), f"pinned table {name!r} is not in the snapshot")
        elif current["fingerprint"] != meta.get("fingerprint"):
            problem(meta.get("file"), f"table {name!r}: fingerprint "
                                      f"{current['fingerprint']} is not the pinned "
                                      f"{meta.get('fingerprint')}")
    return record, problems


def load_pinned(archive: ArchiveContext, dataset: str, lock: str | os.PathLike[str] = DEFAULT_LOCK
                ) -> Snapshot:
    """The pinned snapshot of DATASET from ARCHIVE, every file re-hashed; loud on mismatch."""
    lock_path = Path(lock)
    entry = _pin_for(read_lock(lock_path), dataset, lock_path)
    record, problems = _check_pin(archive, dataset, entry)
    if problems:
        first = problems[0]
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        where = f"{first['file']}: " if first["file"] else ""
        raise IntegrityError(f"{lock_path} pin {dataset}@{entry.get('snapshot', '')[:10]}: "
                             f"{where}{first['problem']}{more}")
    assert record is not None
    history = archive.history(dataset)
    if (event := history.retracted(record["id"])) is not None:  # it loads: a paper used it
        import warnings

        archive.warn_if_retracted(history, record["id"])
        warnings.warn(f"{dataset}@{record['id'][:10]} was retracted {event['at'][:10]}: "
                      f"{event['reason']}", RetractedWarning, stacklevel=2)
    return archive.snapshot_of(record)


class RetractedWarning(UserWarning):
    """A pinned snapshot was retracted after the pin: it loads, but is no longer a release."""


def load(dataset: str, lock: str | os.PathLike[str] = DEFAULT_LOCK,
         archive: ArchiveContext | str | os.PathLike[str] | None = None) -> Snapshot:
    """`atdarchive.load("ice-detention-stats", lock="atdarchive.lock")` — exactly the pinned bytes.

    The archive is `archive` if given, else the one recorded in the pin, else
    the one around the lockfile or the current directory.
    """
    if "@" in dataset:
        raise AtdError(f"load({dataset!r}): give the dataset name only; the lockfile "
                       "chooses the snapshot")
    lock_path = Path(lock)
    entry = _pin_for(read_lock(lock_path), dataset, lock_path)
    return load_pinned(_open_archive(lock_path, entry, archive), dataset, lock_path)


def verify_lockfile(archive: ArchiveContext, lock_path: str | os.PathLike[str]
                    ) -> list[dict[str, Any]]:
    """Every problem of every pin: {"dataset", "snapshot", "file", "problem"}."""
    path = Path(lock_path)
    data = read_lock(path)
    problems: list[dict[str, Any]] = []
    for dataset, entry in sorted(data["datasets"].items()):
        if dataset not in archive.dataset_names():
            problems.append({"dataset": dataset, "snapshot": entry.get("snapshot"),
                             "file": None, "problem": f"dataset {dataset!r} is not in the "
                             f"archive at {archive.root}"})
            continue
        problems += _check_pin(archive, dataset, entry)[1]
    return problems


def pins(lock_path: str | os.PathLike[str] = DEFAULT_LOCK) -> list[dict[str, Any]]:
    """The pins of a lockfile, for listing."""
    data = read_lock(lock_path)
    return [{"dataset": name, **{k: v for k, v in entry.items() if not isinstance(v, dict)}}
            for name, entry in sorted(data["datasets"].items())]


__all__ = ["DEFAULT_LOCK", "load", "load_pinned", "pin", "pins", "read_lock",
           "verify_lockfile"]
