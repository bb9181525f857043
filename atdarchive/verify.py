"""`atdarchive verify`: prove that nothing was lost or silently altered.

Every check re-reads the evidence itself (full re-hash, never the stat-stamp
cache): each snapshot's files against its record, the record against its id,
the ledger's hash chain, the Parquet tables against a re-read of the original,
the DVC pointers and cache against the record, and git against the ledger
(committed, and only ever appended to).

What a crash leaves behind (staging, a rolled-back-to-be snapshot directory,
a ledger line not yet committed to git) is reported as a *note*, not an
error: DESIGN.md §11 promises that a crash at any point leaves an archive that
verify passes; `--repair` (or the next write) finishes the cleanup.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from atdarchive import gitops
from atdarchive.context import ArchiveContext
from atdarchive.errors import AtdError
from atdarchive.ledger import GENESIS
from atdarchive.paths import is_hex_id, is_safe_relpath, symlink_on_path
from atdarchive.progress import Progress
from atdarchive.util import HASH_CHUNK, canonical_json, sha256_bytes

ERROR = "error"
NOTE = "note"
TRAILER = "atdarchive-ledger-head:"


@dataclass(frozen=True)
class Problem:
    """One finding. `severity` is "error" (verify fails) or "note" (crash leftover, harmless)."""

    dataset: str | None
    snapshot: str | None
    file: str | None
    problem: str
    severity: str = ERROR

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        where = self.dataset or "archive"
        if self.snapshot:
            where += f"@{self.snapshot[:10]}"
        if self.file:
            where += f" {self.file}"
        return f"{self.severity}: {where}: {self.problem}"




def verify(archive: ArchiveContext, dataset: str | None = None, *, repair: bool = False,
           fast: bool = False, progress: Progress | None = None) -> list[Problem]:
    """Check DATASET (or every dataset); `repair` first cleans crash leftovers and derived state.

    `fast` skips re-deriving tables from the originals (slow for big workbooks).
    `progress(dataset, done, total)` is called after each snapshot.
    """
    problems: list[Problem] = []
    if dataset and dataset not in archive.dataset_names():
        archive.dataset(dataset)  # an unknown name is a usage error, not a finding
    if repair:
        problems += [Problem(None, None, None, f"repaired: {n}", NOTE)
                     for n in repair_archive(archive, dataset)]
    names = [dataset] if dataset else archive.dataset_names()
    problems += (_archive_leftovers(archive) + _committed_links(archive)
                 + _git_execution_points(archive) + _waiting_settings(archive))
    for name in names:
        try:
            config = archive.dataset(name)  # by directory; the file's own name must agree
            if config.name != name:
                problems.append(Problem(name, None, "dataset.toml", f"dataset.toml names "
                                        f"dataset {config.name!r}, but it lives in "
                                        f"datasets/{name}/"))
            problems += _Verifier(archive, name, fast=fast, progress=progress).run()
        except AtdError as exc:  # what stops one dataset's check is its problem; go on
            problems.append(Problem(name, None, None, str(exc)))
    return problems


def repair_archive(archive: ArchiveContext, dataset: str | None = None) -> list[str]:
    """Recover interrupted commits and rebuild derived state; never touches a snapshot."""
    from atdarchive.derived import rebuild
    from atdarchive.recovery import recover

    notices: list[str] = []
    with archive.write_lock():  # runs recovery: staging, unfinished snapshots, git, DVC locks
        notices += archive.notices + recover(archive.store, thorough=True)
        archive.notices.clear()
        layout = archive.layout
        if layout.derived.exists():
            shutil.rmtree(layout.derived)
            notices.append("deleted derived indexes (.atdarchive/derived/)")
        if layout.stamps.exists():
            layout.stamps.unlink()
            notices.append("deleted the verified-hash stamp cache (.atdarchive/verified.json)")
        archive.store.forget_stamps()  # the store caches them in memory too
        notices += rebuild(archive, dataset)
    return notices


def verify_remote(archive: ArchiveContext, name: str) -> list[Problem]:
    """Objects of every snapshot present (and protected) on remote NAME (remotes module)."""
    from atdarchive.remotes import verify_remote as check

    return _adopt(lambda: check(archive, name), f"remote {name}")


def verify_lockfile(archive: ArchiveContext, path: str | Path) -> list[Problem]:
    """A researcher's lockfile still resolves to the same snapshots and hashes (pinning)."""
    from atdarchive.pinning import verify_lockfile as check

    return _adopt(lambda: check(archive, Path(path)), str(path))


def _adopt(call: Callable[[], Any], label: str) -> list[Problem]:
    """Turn another module's findings (Problems, dicts, objects or strings) into Problems."""
    try:
        found = call()
    except AtdError as exc:
        return [Problem(None, None, label, str(exc), ERROR)]
    if found is None or isinstance(found, bool):
        return [] if found in (None, True) else [Problem(None, None, label, "check failed")]
    if isinstance(found, str | dict) or not isinstance(found, Iterable):
        found = [found]
    out = []
    for item in found:
        if isinstance(item, Problem):
            out.append(item)
            continue
        get = item.get if isinstance(item, dict) else (lambda k, d=None, i=item: getattr(i, k, d))
        text = get("problem") or get("message") or str(item)
        out.append(Problem(get("dataset"), get("snapshot") or get("id"),
                           get("file") or get("path") or label, str(text),
                           get("severity") if get("severity") in (ERROR, NOTE) else ERROR))
    return out


# --------------------------------------------------------------------------- archive level

def _committed_links(archive: ArchiveContext) -> list[Problem]:
    """Symbolic links and local state committed to git: an archive must bring neither."""
    out = []
    listing = gitops.git(archive.root, "ls-files", "-s", "-z", check=False).stdout
    for entry in filter(None, listing.split("\0")):
        meta, _, path = entry.partition("\t")
        if meta.startswith("120000"):
            out.append(Problem(None, None, path, "committed symbolic link: an archive must not "
                               "bring links (they can point outside it); commands refuse them"))
        elif path.startswith(".atdarchive/"):
            out.append(Problem(None, None, path, "local state (.atdarchive/) committed to git; "
                               "it is never shared: remove it from git"))
    return out


def _git_execution_points(archive: ArchiveContext) -> list[Problem]:
    """What the repository asks git to run, one note per file: never obeyed here."""
    by_file: dict[str, list[str]] = {}
    for point in gitops.execution_points(archive.root):
        where, _, what = point.partition(": ")
        if where.startswith(".git/hooks/"):
            where, what = ".git/hooks", where.removeprefix(".git/hooks/")
        by_file.setdefault(where, []).append(what)
    return [Problem(None, None, where, f"{', '.join(what)}: git would run a program or look "
                    "outside the archive here; atdarchive switches this off (a plain `git` in "
                    "this folder would obey it)", NOTE) for where, what in by_file.items()]


def _waiting_settings(archive: ArchiveContext) -> list[Problem]:
    """Settings that came with the archive and wait for the user's confirmation."""
    from atdarchive.settings import waiting

    return [Problem(None, None, s.origin, f"{s.describe()}: not used until you confirm it "
                    f"({s.confirm})", NOTE) for s in waiting(archive)]


def _archive_leftovers(archive: ArchiveContext) -> list[Problem]:
    from atdarchive.recovery import dvc_lock_problems, git_lock_files

    out = []
    staging = archive.store.staging
    if staging.exists():
        for path in sorted(staging.iterdir()):
            out.append(Problem(None, None, str(path.relative_to(archive.root)),
                               "leftover staging of an interrupted commit (removed by "
                               "--repair or the next write)", NOTE))
    for path in git_lock_files(archive.root):
        out.append(Problem(None, None, str(path.relative_to(archive.root)),
                           "git lock file present (a git command is running, or one was "
                           "killed; the next write clears a stale one)", NOTE))
    for text in dvc_lock_problems(archive.root):
        out.append(Problem(None, None, ".dvc/tmp", text, NOTE))
    return out


# --------------------------------------------------------------------------- one dataset

def _hash_file(path: Path) -> tuple[str, str, int]:
    """sha256, md5 and size in one pass (the record uses sha256, DVC uses md5)."""
    sha, md5, size = hashlib.sha256(), hashlib.md5(), 0
    with open(path, "rb") as fh:
        while chunk := fh.read(HASH_CHUNK):
            sha.update(chunk)
            md5.update(chunk)
            size += len(chunk)
    return sha.hexdigest(), md5.hexdigest(), size


def _split_torn(data: bytes) -> tuple[bytes, bytes]:
    """(complete lines, torn tail): a tail without newline is an unfinished append."""
    cut = data.rfind(b"\n") + 1
    return data[:cut], data[cut:]


class _NotPulled(Exception):
    """A snapshot whose data this clone never pulled: one problem, not one per file."""


class _Verifier:
    def __init__(self, archive: ArchiveContext, dataset: str, *, fast: bool,
                 progress: Progress | None) -> None:
        self.archive = archive
        self.store = archive.store
        self.dataset = dataset
        self.fast = fast
        self.progress = progress
        self.ledger = archive.ledger(dataset)
        self.rel_ledger = self.ledger.path.relative_to(archive.root).as_posix()
        self.snapdir = self.store.snapshots_dir(dataset)
        self.rel_snapdir = self.snapdir.relative_to(archive.root).as_posix()
        self.problems: list[Problem] = []
        self.cache_root = self.store.cache_dir() / "files" / "md5"

    def cache_path(self, md5: str) -> Path:
        return self.cache_root / md5[:2] / md5[2:]

    def add(self, problem: str, snapshot: str | None = None, file: str | None = None,
            severity: str = ERROR) -> None:
        self.problems.append(Problem(self.dataset, snapshot, file, problem, severity))

    def run(self) -> list[Problem]:
        data = self.ledger.path.read_bytes() if self.ledger.path.exists() else b""
        complete, torn = _split_torn(data)
        if torn:
            self.add(f"torn last line ({len(torn)} bytes, an interrupted append) is ignored; "
                     "--repair or the next write drops it", file="ledger.jsonl", severity=NOTE)
        for chain in self.ledger.verify_chain():
            self.add(f"line {chain.line}: {chain.problem}", file="ledger.jsonl")
        events, untrusted = self.ledger.trusted(self.dataset)
        for bad in untrusted:
            if "sequence" not in bad.problem and "valid JSON" not in bad.problem:  # chain's
                self.add(f"line {bad.line}: {bad.problem} (the line is not trusted: every "
                         "other command skips it)", file="ledger.jsonl")
        records = self._records(events)
        self._captures(events)
        committed_ids = self._git(complete, records)
        self._orphans(set(records), committed_ids)
        total = len(records)
        for done, (snapshot_id, record) in enumerate(records.items(), 1):
            self._snapshot(snapshot_id, record)
            if self.progress:
                self.progress(self.dataset, done, total)
        return self.problems

    def _captures(self, events: list[Any]) -> None:
        """Each watch event's WARC capture is there, a file (no link), of its digest."""
        from atdarchive.errors import IntegrityError
        from atdarchive.paths import ensure_no_symlink, open_nofollow

        for event in events:
            capture = event.get("capture") if event.get("type") == "watch" else None
            if not capture:
                continue
            path = self.archive.dataset_dir(self.dataset) / capture["file"]
            try:
                fd = open_nofollow(ensure_no_symlink(self.archive.root, path, "a capture"),
                                   os.O_RDONLY)
            except FileNotFoundError:
                self.add(f"watch capture missing (event line {event['seq']})",
                         file=capture["file"])
                continue
            except (OSError, IntegrityError) as exc:
                self.add(f"watch capture refused (event line {event['seq']}): "
                         f"{str(exc).splitlines()[0]}", file=capture["file"])
                continue
            with os.fdopen(fd, "rb") as fh:
                actual = hashlib.sha256(fh.read()).hexdigest()
            if actual != capture["sha256"]:
                self.add(f"watch capture has sha256 {actual[:12]}, its event says "
                         f"{capture['sha256'][:12]}", file=capture["file"])

    # -- records -------------------------------------------------------------
    def _records(self, events: list[Any]) -> dict[str, dict[str, Any]]:
        """Trusted snapshot records (shape already checked), each against its id."""
        records: dict[str, dict[str, Any]] = {}
        for event in events:
            if event["type"] != "snapshot":
                continue
            record = event["record"]
            snapshot_id = record["id"]
            body = {k: v for k, v in record.items() if k != "id"}
            if sha256_bytes(canonical_json(body).encode()) != snapshot_id:
                self.add("snapshot id is not the sha256 of its record (record edited)",
                         snapshot_id, "ledger.jsonl")
            records[snapshot_id] = record
        return records

    # -- one snapshot --------------------------------------------------------
    def _snapshot(self, snapshot_id: str, record: dict[str, Any]) -> None:
        files = record.get("files")
        if not isinstance(files, dict) or not files:
            self.add("record lists no files", snapshot_id)
            return
        pointer = self.snapdir / f"{snapshot_id}.dvc"  # checked here, not refused
        workdir = self.snapdir / snapshot_id
        for path in (pointer, workdir):
            link = symlink_on_path(self.archive.root, path)
            if link is not None:
                self.add(f"{link.relative_to(self.archive.root)} is a symbolic link (an archive "
                         "must not bring links; commands refuse to read or write through it)",
                         snapshot_id)
                return
        manifest: dict[str, str] | None = None
        if not pointer.exists():
            self.add("DVC pointer missing", snapshot_id, pointer.name)
        else:
            try:
                manifest = self._manifest(snapshot_id, pointer)
            except _NotPulled:
                return
        if manifest is not None and set(manifest) != set(files):
            extra = sorted(set(manifest) - set(files))
            missing = sorted(set(files) - set(manifest))
            self.add(f"DVC manifest does not list exactly the record's files (extra: {extra}, "
                     f"missing: {missing})", snapshot_id, pointer.name)
        if workdir.is_dir():
            present = {p.relative_to(workdir).as_posix() for p in workdir.rglob("*")
                       if p.is_file() or p.is_symlink()}
            for extra in sorted(present - set(files)):
                self.add("file in the snapshot directory that the record does not list",
                         snapshot_id, extra)
        intact = True
        for relpath, info in sorted(files.items()):
            intact &= self._file(snapshot_id, relpath, info, workdir, manifest)
        if intact:
            self._tables(snapshot_id, record)

    def _manifest(self, snapshot_id: str, pointer: Path) -> dict[str, str] | None:
        from atdarchive.store import DVC_MD5_RE

        text = pointer.read_text(errors="replace")
        match = DVC_MD5_RE.search(text)
        if not match:
            self.add("not a DVC directory pointer (edited by hand?)", snapshot_id, pointer.name)
            return None
        if f"path: {snapshot_id}" not in text:
            self.add("pointer names another path than its snapshot", snapshot_id, pointer.name)
        md5 = match.group(1)
        path = self.cache_path(md5 + ".dir")
        if not path.exists():
            if not (self.snapdir / snapshot_id).exists():  # a partial clone: say it once
                self.add(f"data not present here (not pulled): atdarchive pull "
                         f"{self.dataset}@{snapshot_id[:10]}", snapshot_id)
                raise _NotPulled
            self.add(f"DVC directory object {md5}.dir is not in the local cache "
                     "(pointer edited, or data not pulled)", snapshot_id, pointer.name)
            return None
        raw = path.read_bytes()
        if hashlib.md5(raw).hexdigest() != md5:
            self.add(f"DVC directory object {md5}.dir does not hash to its name (cache damaged)",
                     snapshot_id, pointer.name)
        try:
            listing = {e["relpath"]: e["md5"] for e in json.loads(raw)}
        except (ValueError, KeyError, TypeError, RecursionError):
            self.add(f"DVC directory object {md5}.dir is not a manifest", snapshot_id,
                     pointer.name)
            return None
        unsafe = sorted(str(rel)[:200] for rel in listing if not is_safe_relpath(rel))
        if unsafe:
            self.add(f"DVC directory object {md5}.dir lists paths outside the snapshot "
                     f"directory ({', '.join(map(repr, unsafe[:3]))}); pull refuses it",
                     snapshot_id, pointer.name)
            return None
        return listing

    def _file(self, snapshot_id: str, relpath: str, info: dict[str, Any], workdir: Path,
              manifest: dict[str, str] | None) -> bool:
        """Re-hash one file (workspace and cache copies); True when it matches the record."""
        workspace = workdir / relpath
        cached = self.cache_path(manifest[relpath]) if manifest and relpath in manifest \
            else None
        copies = [p for p in (workspace, cached) if p is not None and p.exists()]
        if not copies:
            self.add("missing: not in the workspace or the local DVC cache (run 'atdarchive "
                     "pull')", snapshot_id, relpath)
            return False
        if len(copies) == 2 and copies[0].stat().st_ino == copies[1].stat().st_ino:
            copies = copies[:1]  # a hardlink: one hash covers both
        ok = True
        for copy in copies:
            where = "workspace" if copy == workspace else "DVC cache"
            sha, md5, size = _hash_file(copy)
            if sha != info.get("sha256"):
                self.add(f"{where} copy has sha256 {sha[:12]}, the record says "
                         f"{str(info.get('sha256'))[:12]} (file altered)", snapshot_id, relpath)
                ok = False
            elif size != info.get("size"):
                self.add(f"{where} copy has {size} bytes, the record says {info.get('size')}",
                         snapshot_id, relpath)
                ok = False
            elif manifest is not None and relpath in manifest and md5 != manifest[relpath]:
                self.add(f"{where} copy has md5 {md5[:12]}, the DVC manifest says "
                         f"{manifest[relpath][:12]}", snapshot_id, relpath)
                ok = False
        if manifest is not None and relpath in manifest and cached is not None \
                and not cached.exists():
            self.add("not in the local DVC cache although the manifest lists it "
                     f"(md5 {manifest[relpath][:12]})", snapshot_id, relpath)
        return ok

    def _tables(self, snapshot_id: str, record: dict[str, Any]) -> None:
        """Each Parquet table matches its fingerprint and (unless fast) re-derives."""
        from atdarchive.parquetio import read_table
        from atdarchive.snapshot import Snapshot
        from atdarchive.store import table_fingerprint

        snapshot = Snapshot(self.store, record)
        stored: dict[str, Any] = {}
        for name, meta in (record.get("tables") or {}).items():
            try:
                table = read_table(snapshot.table_path(name))
            except AtdError as exc:
                self.add(str(exc), snapshot_id, meta.get("file"))
                continue
            except Exception as exc:  # noqa: BLE001 - a damaged Parquet file is a finding
                self.add(f"unreadable Parquet: {exc}".splitlines()[0], snapshot_id,
                         meta.get("file"))
                continue
            stored[name] = table
            if table_fingerprint(table) != meta.get("fingerprint"):
                self.add("table content does not match the record's fingerprint", snapshot_id,
                         meta.get("file"))
            if (table.num_rows, table.num_columns) != (meta.get("rows"), meta.get("columns")):
                self.add(f"table is {table.num_rows}x{table.num_columns}, the record says "
                         f"{meta.get('rows')}x{meta.get('columns')}", snapshot_id, meta.get("file"))
        if not self.fast:
            self._rederive(snapshot, stored)

    def _rederive(self, snapshot: Any, stored: dict[str, Any]) -> None:
        from atdarchive.ingest import FORMATS, read_publication
        from atdarchive.limits import LimitExceeded
        from atdarchive.limits.ingest import dataset_bounds
        from atdarchive.parquetio import read_table
        from atdarchive.store import table_fingerprint

        record = snapshot.record
        if record.get("parse_error"):  # evidence only: its original is its whole content
            return
        original = record.get("original") or {}
        options = record.get("read_options") or {}
        fmt = original.get("format")
        try:
            config = self.archive.dataset(self.dataset)
            publication = read_publication(
                snapshot.original_path, format=fmt if fmt in FORMATS else None,
                delimiter=options.get("delimiter"), encoding=options.get("encoding"),
                spec=config.extract or None, json_path=options.get("json_path"),
                bounds=dataset_bounds(self.archive.root, self.dataset, config.limits))
        except LimitExceeded as exc:  # a bound protects this machine; not a sign of tampering
            self.add(f"not re-derived: {exc}", snapshot.id, original.get("file"), NOTE)
            return
        except AtdError as exc:
            self.add(f"the original no longer reads: {exc}", snapshot.id, original.get("file"))
            return
        derived = {t.name: t for t in publication.tables}
        recorded = record.get("tables") or {}
        if set(derived) != set(recorded):
            self.add(f"re-reading the original gives tables {sorted(derived)}, the record has "
                     f"{sorted(recorded)} (reader or extract spec changed?)", snapshot.id,
                     original.get("file"))
        for name, meta in recorded.items():
            table = derived.get(name)
            if table is None:
                continue
            # equal values with different bytes under nulls hash differently (see store notes):
            # the stored table, already hash-verified, decides then
            if table_fingerprint(table.data) != meta.get("fingerprint") and not (
                    name in stored and table.data.equals(stored[name])):
                self.add(f"table {name!r} does not re-derive from the original (fingerprint "
                         "differs; table edited, or reader/extract spec changed)", snapshot.id,
                         meta.get("file"))
            rows_file = meta.get("rows_file")
            if rows_file and table.source_rows is not None:
                try:
                    rows = read_table(snapshot.file_path(rows_file)).column(0).to_pylist()
                except AtdError as exc:
                    self.add(str(exc), snapshot.id, rows_file)
                    continue
                if rows != list(table.source_rows):
                    self.add("source rows do not re-derive from the original", snapshot.id,
                             rows_file)
        if "cells.parquet" in (record.get("files") or {}) and publication.cells is not None:
            try:
                cells = read_table(snapshot.file_path("cells.parquet"))
            except AtdError as exc:
                self.add(str(exc), snapshot.id, "cells.parquet")
                return
            if not cells.equals(publication.cells):
                self.add("cell layer does not re-derive from the original", snapshot.id,
                         "cells.parquet")

    # -- leftovers and strays ------------------------------------------------
    def _orphans(self, ledgered: set[str], committed_pointers: set[str]) -> None:
        """Snapshot dirs, pointers and .gitignore lines without a ledger line."""
        if not self.snapdir.exists():
            return
        seen: set[str] = set()
        for path in sorted(self.snapdir.iterdir()):
            if path.name.startswith("."):
                continue
            snapshot_id = path.name.removesuffix(".dvc")
            if snapshot_id in ledgered:
                continue
            seen.add(snapshot_id)
            if snapshot_id in committed_pointers:
                self.add("pointer committed to git but the snapshot has no ledger line "
                         "(ledger line removed?)", snapshot_id, path.name)
            else:
                self.add("unfinished commit (no ledger line): rolled back by --repair or "
                         "the next write", snapshot_id, path.name, NOTE)
        for snapshot_id in sorted(committed_pointers - ledgered - seen):
            self.add("pointer committed to git but the snapshot has no ledger line "
                     "(ledger line removed?)", snapshot_id, f"{snapshot_id}.dvc")
        gitignore = self.snapdir / ".gitignore"
        if gitignore.exists():
            for line in gitignore.read_text(errors="replace").splitlines():
                name = line.strip().lstrip("/")
                if is_hex_id(name) and name not in ledgered and name not in seen:
                    self.add(".gitignore names a snapshot without a ledger line (leftover of "
                             "an interrupted commit)", name, ".gitignore", NOTE)

    # -- git -------------------------------------------------------------------
    def _git(self, complete: bytes, records: dict[str, dict[str, Any]]) -> set[str]:
        """Ledger and pointers committed; history only appended; trailers match.

        Returns the snapshot ids whose pointers are committed at HEAD.
        """
        root = self.archive.root
        at_head = gitops.show_file(root, "HEAD", self.rel_ledger)
        tracked = gitops.git(root, "ls-tree", "-r", "--name-only", "HEAD", "--",
                             self.rel_snapdir, check=False).stdout.splitlines()
        committed_pointers = {Path(p).name.removesuffix(".dvc") for p in tracked
                              if p.endswith(".dvc")}
        if at_head is None:
            if complete:
                self.add("ledger is not committed to git", file="ledger.jsonl",
                         severity=NOTE if len(complete.split(b"\n")) <= 2 else ERROR)
            head_ids: set[str] = set()
        else:
            head_complete, _ = _split_torn(at_head)
            head_ids = {json.loads(line)["record"]["id"] for line in head_complete.split(b"\n")
                        if line and b'"type":"snapshot"' in line and _parses(line)}
            if complete == at_head:
                pass
            elif complete.startswith(at_head):
                for snapshot_id in records:
                    if snapshot_id not in head_ids:
                        self.add("recorded in the ledger but not yet committed to git "
                                 "(interrupted commit): committed by --repair or the next "
                                 "write", snapshot_id, "ledger.jsonl", NOTE)
                extra = complete[len(at_head):].count(b"\n")
                if not any(s not in head_ids for s in records):
                    self.add(f"{extra} ledger line(s) not yet committed to git: committed by "
                             "--repair or the next write", file="ledger.jsonl", severity=NOTE)
            else:
                self.add("ledger differs from its committed version at HEAD beyond appended "
                         "lines (edited, truncated or rewritten)", file="ledger.jsonl")
        dirty = gitops.git(root, "status", "--porcelain", "--untracked-files=all", "--",
                           self.rel_snapdir, check=False).stdout.splitlines()
        dirty_names = {Path(line[3:].strip('"')).name: line[:2] for line in dirty}
        for snapshot_id in records:
            name = f"{snapshot_id}.dvc"
            if snapshot_id in head_ids:
                if snapshot_id not in committed_pointers:
                    self.add("DVC pointer is not committed to git", snapshot_id, name)
                elif name in dirty_names:
                    self.add(f"DVC pointer differs from its committed version "
                             f"({dirty_names[name].strip() or 'modified'}; edited by hand?)",
                             snapshot_id, name)
        self._history(root)
        return committed_pointers

    def _history(self, root: Path) -> None:
        """Each committed version of the ledger extends the one before; trailers match."""
        log = gitops.git(root, "log", "--reverse", "--format=%H%x00%B%x01", "--",
                         self.rel_ledger, check=False).stdout
        commits = []
        for chunk in log.split("\x01"):
            chunk = chunk.strip("\n")
            if chunk:
                sha, _, body = chunk.partition("\x00")
                commits.append((sha.strip(), body))
        if not commits:
            return
        blobs = _cat_files(root, [f"{sha}:{self.rel_ledger}" for sha, _ in commits])
        previous = b""
        for (sha, body), blob in zip(commits, blobs, strict=True):
            if blob is None:
                self.add(f"commit {sha[:10]} deletes the ledger", file="ledger.jsonl")
                continue
            if not blob.startswith(previous):
                self.add(f"commit {sha[:10]} rewrites ledger history (an earlier committed "
                         "version is not a prefix of it)", file="ledger.jsonl")
            previous = blob
            lines = [line for line in _split_torn(blob)[0].split(b"\n") if line]
            head = sha256_bytes(lines[-1]) if lines else GENESIS
            trailers = [line.split(":", 1)[1].strip() for line in body.splitlines()
                        if line.startswith(TRAILER)]
            if trailers and trailers[-1] != head:
                self.add(f"commit {sha[:10]}: {TRAILER} {trailers[-1][:12]} does not match the "
                         f"committed ledger's head {head[:12]}", file="ledger.jsonl")
            elif not trailers and sha == commits[-1][0]:
                self.add(f"commit {sha[:10]}, the last to touch the ledger, has no {TRAILER} "
                         "trailer (committed outside atdarchive?)", file="ledger.jsonl")


def _parses(line: bytes) -> bool:
    try:
        event = json.loads(line)
        return isinstance(event.get("record", {}).get("id"), str)
    except (ValueError, AttributeError):
        return False


def _cat_files(root: Path, specs: list[str]) -> list[bytes | None]:
    """Many `rev:path` blobs through one `git cat-file --batch` (None for a missing one)."""
    proc = gitops.run(root, "cat-file", "--batch",
                      input="".join(f"{s}\n" for s in specs).encode())
    out, pos, blobs = proc.stdout, 0, []
    for _ in specs:
        end = out.index(b"\n", pos)
        header = out[pos:end].split()
        pos = end + 1
        if len(header) < 3 or header[-1] == b"missing":
            blobs.append(None)
            continue
        size = int(header[2])
        blobs.append(out[pos:pos + size])
        pos += size + 1
    return blobs


def has_errors(problems: list[Problem]) -> bool:
    return any(p.severity == ERROR for p in problems)
