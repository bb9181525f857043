"""The snapshot store: where a snapshot's files live, how they get there, how reads find them.

Layout of one snapshot (DESIGN.md §2, all snapshots side by side at HEAD)::

    datasets/<dataset>/snapshots/<id>/original.<ext>        the publication, byte for byte
    datasets/<dataset>/snapshots/<id>/tables/<t>.parquet    one per logical table
    datasets/<dataset>/snapshots/<id>/tables/<t>.rows.parquet  source row of each data row
    datasets/<dataset>/snapshots/<id>/cells.parquet         every cell of every sheet (XLSX)
    datasets/<dataset>/snapshots/<id>.dvc                   DVC pointer, committed to git

Files are written to `.atdarchive/staging/` first and published with one
rename; DVC then moves them into its cache. Reads never import DVC
(DESIGN.md §8): they use the workspace copy, or resolve the `.dvc` pointer to
the cache themselves, and check each file's sha256 against the record (a
stat-stamp cache avoids re-hashing unchanged files).
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import io
import json
import logging
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from atdarchive.errors import IntegrityError
from atdarchive.ledger import Ledger
from atdarchive.paths import ensure_no_symlink, is_hex_id, is_safe_relpath, resolve_inside
from atdarchive.util import atomic_write, check_name, md5_file, sha256_file

STATE_DIR = ".atdarchive"
#: One line in `snapshots/.gitignore` keeps every snapshot directory out of git. DVC would
#: otherwise add one line per snapshot, and parse them all (slowly) on every `dvc add`.
IGNORE_SNAPSHOT_DIRS = "/*/"
SNAPSHOT_LINE_RE = re.compile(r"^/[0-9a-f]{64}$")
DVC_MD5_RE = re.compile(r"md5:\s*([0-9a-f]{32})\.dir")
MD5_RE = re.compile(r"^[0-9a-f]{32}$")
POINTER_RE = re.compile(r"outs:\n- md5: (?P<md5>[0-9a-f]{32})\.dir\n(?:  (?:size|nfiles): \d+\n)*"
                        r"  hash: md5\n  path: (?P<path>[0-9a-f]{64})\n")


def table_fingerprint(table: Any) -> str:
    """Content hash of a table, independent of Parquet encoding, writer and chunking.

    sha256 of the Arrow IPC stream of a canonical copy — one chunk per column,
    no schema metadata, zeros (or empty strings) under null slots, whose bytes
    Arrow leaves undefined — followed by the stream of the validity masks.
    Equal tables (same schema, values and row order) give equal fingerprints.
    """
    import hashlib

    import pyarrow as pa

    table = table.replace_schema_metadata(None).combine_chunks()
    filled, masks = [], []
    for column in table.columns:
        array = column.combine_chunks()
        masks.append(array.is_valid())
        filled.append(_zero_nulls(array) if array.null_count else array)
    digest = hashlib.sha256()
    for part in (pa.table(filled, names=table.column_names),
                 pa.table(masks, names=table.column_names)):
        sink = io.BytesIO()
        with pa.ipc.new_stream(sink, part.schema) as writer:
            writer.write_table(part)
        digest.update(sink.getbuffer())
    return digest.hexdigest()


def _zero_nulls(array: Any) -> Any:
    """The array with a canonical value under its null slots (nested types left as is)."""
    import pyarrow as pa

    kind = array.type
    if pa.types.is_boolean(kind):
        return array.fill_null(False)
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        return array.fill_null(pa.scalar(0, kind))
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return array.fill_null(pa.scalar("", kind))
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return array.fill_null(pa.scalar(b"", kind))
    if pa.types.is_temporal(kind) and kind.bit_width in (32, 64):
        storage = pa.int32() if kind.bit_width == 32 else pa.int64()
        return array.view(storage).fill_null(0).view(kind)
    return array


@contextlib.contextmanager
def quiet_dvc() -> Iterator[None]:
    """DVC logs git hints ("To track the changes with git...") we act on ourselves."""
    logger = logging.getLogger("dvc")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def _id(snapshot_id: str) -> str:
    if not is_hex_id(snapshot_id):
        raise IntegrityError(f"{str(snapshot_id)[:80]!r} is not a snapshot id (64 hex digits)")
    return snapshot_id


class SnapshotStore:
    """Paths and file access for the snapshots of one archive."""

    def __init__(self, root: Path, stamps: Path | None = None) -> None:
        self.root = root
        self.state = root / STATE_DIR
        self.staging = self.state / "staging"
        self._stamp_path = stamps or self.state / "verified.json"
        self._stamps: dict[str, list[Any]] | None = None
        self._stamps_dirty = False

    # -- layout ----------------------------------------------------------
    def dataset_names(self) -> list[str]:
        """Datasets are directories of `datasets/` holding a `dataset.toml`."""
        return sorted(p.parent.name for p in (self.root / "datasets").glob("*/dataset.toml"))

    def dataset_dir(self, dataset: str) -> Path:
        return ensure_no_symlink(self.root, self.root / "datasets" / check_name("dataset", dataset),
                                 "a dataset directory")

    def ledger(self, dataset: str) -> Ledger:
        return Ledger(self.dataset_dir(dataset) / "ledger.jsonl")

    def snapshots_dir(self, dataset: str) -> Path:
        return ensure_no_symlink(self.root, self.dataset_dir(dataset) / "snapshots",
                                 "a snapshots directory")

    def snapshot_dir(self, dataset: str, snapshot_id: str) -> Path:
        return ensure_no_symlink(self.root, self.snapshots_dir(dataset) / _id(snapshot_id),
                                 "a snapshot directory")

    def pointer(self, dataset: str, snapshot_id: str) -> Path:
        return ensure_no_symlink(self.root, self.snapshots_dir(dataset)
                                 / f"{_id(snapshot_id)}.dvc", "a DVC pointer")

    def check_pointer(self, dataset: str, snapshot_id: str) -> str:
        """The `.dir` md5 of a snapshot's DVC pointer, after checking that the pointer is the
        one DVC writes for it (one directory output at the snapshot's own path, nothing else):
        DVC follows a pointer's `path` and `wdir` when it checks data out."""
        pointer = self.pointer(dataset, snapshot_id)
        text = pointer.read_text(encoding="utf-8", errors="replace")
        match = POINTER_RE.fullmatch(text)
        if not match or match.group("path") != snapshot_id:
            raise IntegrityError(f"{pointer}: not a DVC directory pointer of snapshot "
                                 f"{snapshot_id[:10]} (it must name one directory output at the "
                                 "snapshot's own path; edited by hand?); refused")
        return match.group("md5")

    def ignore_file(self, dataset: str) -> Path:
        """`snapshots/.gitignore`, holding IGNORE_SNAPSHOT_DIRS (added if missing)."""
        path = self.snapshots_dir(dataset) / ".gitignore"
        path.parent.mkdir(parents=True, exist_ok=True)
        text = path.read_text() if path.exists() else ""
        if IGNORE_SNAPSHOT_DIRS not in text.splitlines():
            atomic_write(path, text + ("" if not text or text.endswith("\n") else "\n")
                         + IGNORE_SNAPSHOT_DIRS + "\n")
        return path

    def git_pending(self, dataset: str) -> Path:
        """A marker that DATASET's ledger may be ahead of git: made before each ledger
        write, removed once git has the write; recovery compares with git only then."""
        return self.state / "pending-git" / check_name("dataset", dataset)

    def new_staging_dir(self, label: str) -> Path:
        self.staging.mkdir(parents=True, exist_ok=True)
        path = self.staging / f"{label}-{os.getpid()}"
        if path.exists():
            shutil.rmtree(path)
        path.mkdir()
        return path

    # -- publishing --------------------------------------------------------
    def publish(self, staged: Path, dataset: str, snapshot_id: str) -> Path:
        """Move a fully written staging directory into place with one rename."""
        target = self.snapshot_dir(dataset, snapshot_id)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.rename(staged, target)
        return target

    def track(self, dataset: str, snapshot_id: str) -> Path:
        """What `dvc add DIR` leaves, written directly: each file's object in DVC's cache
        (`files/md5/xx/rest`, read-only), the directory listing object (`<md5>.dir`: the
        sorted `[{"md5", "relpath"}]` JSON DVC hashes) and the `.dvc` pointer.

        DVC's own `add` reads the whole git index and walks every sibling snapshot on
        each call, so its cost grew with the history; this costs only the new files.
        `dvc status` is clean afterwards and push, pull and checkout work as after `dvc
        add` (tested), since the cache layout and the listing's bytes are DVC's.
        """
        directory = self.snapshot_dir(dataset, snapshot_id)
        entries, total = [], 0
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            md5 = md5_file(path)
            self._cache_object(md5, lambda tmp, src=path: shutil.copyfile(src, tmp))
            entries.append({"md5": md5, "relpath": path.relative_to(directory).as_posix()})
            total += path.stat().st_size
        listing = json.dumps(sorted(entries, key=lambda e: e["relpath"]),
                             sort_keys=True).encode("utf-8")
        dir_md5 = hashlib.md5(listing).hexdigest()  # noqa: S324 - DVC's content address
        self._cache_object(dir_md5 + ".dir", lambda tmp: tmp.write_bytes(listing))
        pointer = self.pointer(dataset, snapshot_id)
        atomic_write(pointer, f"outs:\n- md5: {dir_md5}.dir\n  size: {total}\n  nfiles: "
                              f"{len(entries)}\n  hash: md5\n  path: {snapshot_id}\n")
        return pointer

    def _cache_object(self, address: str, write: Any) -> None:
        """Put one object into DVC's cache unless it is there (read-only, as DVC keeps it)."""
        target = self.cache_path(address)
        if target.exists():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        try:
            write(tmp)
            tmp.chmod(0o444)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise

    # -- reading -----------------------------------------------------------
    def cache_dir(self) -> Path:
        """DVC's cache directory, read from `.dvc/config` without importing DVC.

        The config comes with the archive, so a `cache.dir` that leaves the archive
        is used only once the user confirmed it (`atdarchive.settings`).
        """
        from atdarchive.dvcconfig import dvc_config, dvc_settings
        from atdarchive.trust import require

        sections, _ = dvc_config(self.root)
        value = sections.get("cache", {}).get("dir")
        if value is None:
            return self.root / ".dvc" / "cache"
        path = Path(value)
        resolved = path if path.is_absolute() else (self.root / ".dvc" / path).resolve()
        if not resolved.is_relative_to(self.root):
            for setting in dvc_settings(self.root):
                if setting.kind == "dvc" and setting.name == "cache.dir":
                    require(self.root, setting)
        return resolved

    def cache_path(self, md5: str) -> Path:
        """A DVC cache object by its address (`md5` or `md5.dir`), which must be one."""
        if not isinstance(md5, str) or not MD5_RE.match(md5.removesuffix(".dir")):
            raise IntegrityError(f"{str(md5)[:80]!r} is not a DVC object address; refused")
        return self.cache_dir() / "files" / "md5" / md5[:2] / md5[2:]

    def directory_manifest(self, dataset: str, snapshot_id: str) -> dict[str, str] | None:
        """relpath -> md5 from the DVC pointer's `.dir` object, or None if not cached."""
        if not self.pointer(dataset, snapshot_id).exists():
            return None
        manifest = self.cache_path(self.check_pointer(dataset, snapshot_id) + ".dir")
        if not manifest.exists():
            return None
        try:
            listing = {e["relpath"]: e["md5"] for e in json.loads(manifest.read_text())}
        except (ValueError, KeyError, TypeError, RecursionError):
            raise IntegrityError(f"{manifest}: DVC directory listing of {dataset}@"
                                 f"{snapshot_id[:10]} is damaged") from None
        for rel, md5 in listing.items():
            if not is_safe_relpath(rel) or not isinstance(md5, str) or not MD5_RE.match(md5):
                raise IntegrityError(f"{manifest}: DVC directory listing of {dataset}@"
                                     f"{snapshot_id[:10]} names {str(rel)[:200]!r}, a path "
                                     "outside its snapshot; refused")
        return listing

    def locate(self, dataset: str, snapshot_id: str, relpath: str) -> Path | None:
        """The readable copy of one snapshot file: workspace first, then DVC's cache."""
        workspace = resolve_inside(self.snapshot_dir(dataset, snapshot_id), relpath,
                                   what="a snapshot file")
        if workspace.exists():
            return workspace
        manifest = self.directory_manifest(dataset, snapshot_id)
        if manifest and relpath in manifest:
            path = self.cache_path(manifest[relpath])
            if path.exists():
                return path
        return None

    def verified_path(self, dataset: str, snapshot_id: str, relpath: str,
                      expected_sha256: str) -> Path:
        """Locate a file and check its sha256 against the record; loud on mismatch."""
        path = self.locate(dataset, snapshot_id, relpath)
        if path is None:
            raise IntegrityError(
                f"{dataset}@{snapshot_id[:12]}: {relpath} is not in the workspace or the local "
                f"cache; run 'atdarchive pull {dataset}@{snapshot_id[:12]}'"
            )
        if self._stamp_ok(path, expected_sha256):
            return path
        actual = sha256_file(path)
        if actual != expected_sha256:
            raise IntegrityError(
                f"{path}: sha256 {actual[:12]} does not match the record's "
                f"{expected_sha256[:12]} (file altered after commit)"
            )
        self._remember(path, expected_sha256)
        return path

    # -- verified-hash stamps (a cache: deleting it only costs re-hashing) --
    def _stamp_file(self) -> Path:
        return self._stamp_path

    def forget_stamps(self) -> None:
        """Drop the in-memory stamps (after the stamp file was deleted): re-hash from now on."""
        self._stamps = {}

    def _load_stamps(self) -> dict[str, list[Any]]:
        if self._stamps is None:
            try:
                self._stamps = json.loads(self._stamp_file().read_text())
            except (FileNotFoundError, ValueError):
                self._stamps = {}
        return self._stamps

    @staticmethod
    def _stat_key(path: Path) -> list[Any]:
        st = path.stat()  # ctime too: a user can put mtime back after an edit, not ctime
        return [st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns]

    def _stamp_ok(self, path: Path, sha: str) -> bool:
        stamp = self._load_stamps().get(str(path))
        return stamp is not None and stamp == [*self._stat_key(path), sha]

    def _remember(self, path: Path, sha: str) -> None:
        stamps = self._load_stamps()
        stamps[str(path)] = [*self._stat_key(path), sha]
        if not self._stamps_dirty:
            self._stamps_dirty = True
            atexit.register(self.flush_stamps)

    def flush_stamps(self) -> None:
        """Write the stamp cache once (at exit): it is a cache, so no fsync."""
        if not self._stamps_dirty:
            return
        with contextlib.suppress(OSError):  # a cache: a full or read-only disk keeps none
            atomic_write(self._stamp_file(), json.dumps(self._stamps).encode(), durable=False,
                         mkdir=True)
        self._stamps_dirty = False
