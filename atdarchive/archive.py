"""The public Python API: `Archive` — init, datasets, commit, log, snapshots, tags, export.

Every CLI command is a thin layer over a method here, so a researcher can do
in a notebook whatever the command line does.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from atdarchive import gitops
from atdarchive.dataset import DatasetConfig, new_config
from atdarchive.errors import AtdError, IngestError
from atdarchive.history import History, split_ref
from atdarchive.ledger import Ledger
from atdarchive.locking import exclusive
from atdarchive.snapshot import Snapshot
from atdarchive.store import STATE_DIR, SnapshotStore
from atdarchive.util import (
    canonical_json,
    check_name,
    fsync_dir,
    parse_published,
    sha256_bytes,
    sha256_file,
    utc_now,
)

RECORD_VERSION = 1
GITIGNORE = f"/{STATE_DIR}/\n"


@dataclass
class CommitResult:
    """What `commit` did: the new snapshot, its parent, and how it differs from it."""

    snapshot: Snapshot
    parent: Snapshot | None
    summary: dict[str, Any]
    identical_to: list[dict[str, str]] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    findings: list[Any] = field(default_factory=list)  # audit.Finding of this release


class Archive:
    """A directory that is both a git and a DVC repository, holding `datasets/`."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        start = Path(path or ".").resolve()
        root = _find_root(start)
        if root is None:
            raise AtdError(
                f"{start}: not an atdarchive archive (no datasets/ and .dvc/ here or above); "
                "run 'atdarchive init'"
            )
        self.root = root
        self.store = SnapshotStore(root)
        self.notices: list[str] = []
        self._histories: dict[str, tuple[Any, History]] = {}

    # -- creation ------------------------------------------------------------
    @classmethod
    def init(cls, path: str | os.PathLike[str] = ".") -> Archive:
        """Make PATH an archive: git init and DVC init where missing, `datasets/`. Idempotent."""
        root = Path(path).resolve()
        root.mkdir(parents=True, exist_ok=True)
        if not gitops.is_repo(root):
            gitops.init(root)
        created: list[Path] = []
        if not (root / ".dvc").is_dir():
            from dvc.repo import Repo

            from atdarchive.store import quiet_dvc

            with quiet_dvc():
                Repo.init(str(root))
            _configure_dvc(root)
            created += [root / ".dvc" / "config", root / ".dvc" / ".gitignore",
                        root / ".dvcignore"]
        datasets = root / "datasets"
        datasets.mkdir(exist_ok=True)
        keep = datasets / ".gitkeep"
        if not keep.exists():
            keep.touch()
            created.append(keep)
        gitignore = root / ".gitignore"
        text = gitignore.read_text() if gitignore.exists() else ""
        if GITIGNORE.strip() not in text.splitlines():
            gitignore.write_text(text + ("" if not text or text.endswith("\n") else "\n")
                                 + GITIGNORE)
            created.append(gitignore)
        if created:
            gitops.commit(root, created, "atdarchive: initialise archive")
        return cls(root)

    # -- datasets ------------------------------------------------------------
    def dataset_dir(self, name: str) -> Path:
        return self.root / "datasets" / name

    def dataset_names(self) -> list[str]:
        base = self.root / "datasets"
        return sorted(p.parent.name for p in base.glob("*/dataset.toml"))

    def dataset(self, name: str) -> DatasetConfig:
        path = self.dataset_dir(check_name("dataset", name)) / "dataset.toml"
        if not path.exists():
            known = ", ".join(self.dataset_names()) or "none yet"
            raise AtdError(
                f"unknown dataset {name!r} (datasets: {known}); "
                f"create it with 'atdarchive dataset add {name}'"
            )
        return DatasetConfig.load(path)

    def add_dataset(self, name: str, *, title: str = "", agency: str = "",
                    source_url: str = "", description: str = "",
                    keys: dict[str, list[str]] | None = None,
                    extract: dict[str, Any] | None = None) -> DatasetConfig:
        """Create `datasets/NAME/dataset.toml` and commit it."""
        config = new_config(name, title=title, agency=agency, source_url=source_url,
                            description=description, keys=keys or {}, extract=extract or {})
        path = self.dataset_dir(name) / "dataset.toml"
        with self.write_lock():
            if path.exists():
                raise AtdError(f"dataset {name!r} already exists ({path})")
            path.parent.mkdir(parents=True, exist_ok=True)
            config.save(path)
            gitops.commit(self.root, [path], f"{name}: add dataset")
        return config

    # -- reading ---------------------------------------------------------------
    def ledger(self, dataset: str) -> Ledger:
        return Ledger(self.dataset_dir(dataset) / "ledger.jsonl")

    def history(self, dataset: str) -> History:
        """The dataset's history, re-read whenever its ledger file changes on disk
        (another process may have committed since)."""
        path = self.ledger(dataset).path
        try:
            st = path.stat()
            stamp = (st.st_size, st.st_mtime_ns, st.st_ino)
        except FileNotFoundError:
            stamp = None
        cached = self._histories.get(dataset)
        if cached is None or cached[0] != stamp:
            self.dataset(dataset)
            self._histories[dataset] = (stamp, History(dataset, self.ledger(dataset).events()))
        return self._histories[dataset][1]

    def snapshot(self, ref: str) -> Snapshot:
        """`archive.snapshot("ice-detention-stats@latest")` — any ref form of DESIGN.md §4."""
        dataset, name = split_ref(ref)
        return Snapshot(self.store, self.history(dataset).resolve(name).record)

    def parent(self, snapshot: Snapshot) -> Snapshot | None:
        """The release before this one in publication order (its channel)."""
        entry = self.history(snapshot.dataset).parent(snapshot.id)
        return Snapshot(self.store, entry.record) if entry else None

    def log(self, dataset: str | None = None, *, channel: str | None = None,
            limit: int | None = None) -> list[dict[str, Any]]:
        """Snapshots newest first (publication order), each with its parent and change summary."""
        from atdarchive.changes import summary_against
        from atdarchive.derived import cached_flags

        names = [dataset] if dataset else self.dataset_names()
        rows: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
        for name in names:
            history = self.history(name)
            checks: dict[str, list[dict[str, Any]]] = {}
            for check in history.checks:
                checks.setdefault(check["snapshot"], []).append(check["fetch"])
            for entry in history.publication_order(channel):
                parent = history.parent(entry.id)
                rows.append((entry.order_key(), {
                    "id": entry.id, "short_id": entry.short, "dataset": name,
                    "parent": parent.id if parent else None,
                    "record": entry.record,
                    "tags": sorted(t for t, i in history.tags.items() if i == entry.id),
                    "checks": checks.get(entry.id, []),
                }))
        rows.sort(key=lambda pair: pair[0], reverse=True)
        out = [row for _, row in rows[:limit]] if limit else [row for _, row in rows]
        for row in out:  # per-row lookups only for the rows shown
            row["summary"] = summary_against(self, row["record"], row["parent"])
            row["audit"] = cached_flags(self, row["id"])
        return out

    # -- writing ---------------------------------------------------------------
    @contextlib.contextmanager
    def write_lock(self) -> Iterator[None]:
        """Serialise writers; recover what a crashed writer left before writing."""
        from atdarchive.recovery import recover

        with exclusive(self.root / STATE_DIR / "lock") as state:
            if state.stale_pid is not None:
                self.notices.append(
                    f"found a stale lock of writer pid {state.stale_pid} (it died); "
                    "recovering its interrupted work"
                )
            self.notices.extend(recover(self))
            self._histories.clear()
            try:
                yield
            finally:
                self._histories.clear()

    def commit(self, dataset: str, file: str | os.PathLike[str], *,
               published: str | None = None, period: str | None = None,
               source_url: str | None = None, retrieved_at: str | None = None,
               channel: str = "public", archivist: str | None = None, message: str = "",
               format: str | None = None, delimiter: str | None = None,
               encoding: str | None = None, evidence: dict[str, Any] | None = None,
               ) -> CommitResult:
        """Ingest FILE as a new immutable snapshot of DATASET (one ledger line, one git commit)."""
        from atdarchive.ingest import read_publication

        config = self.dataset(dataset)
        check_name("channel", channel)
        path = Path(file)
        retrieved = parse_published(retrieved_at, "--retrieved-at") if retrieved_at else utc_now()
        published = (parse_published(published) if published
                     else parse_published(retrieved[:10]))
        if not path.is_file():
            raise IngestError(f"{path}: no such file")
        if path.stat().st_size == 0:
            raise IngestError(f"{path.name}: file is empty")
        original_sha = sha256_file(path)
        archivist = archivist or _default_archivist(self.root)

        with self.write_lock():
            history = self.history(dataset)
            identical = history.find_identical(original_sha)
            for entry in identical:
                if entry.published == published and entry.channel == channel:
                    raise AtdError(
                        f"{path.name}: already archived as {dataset}@{entry.short} "
                        f"(same bytes, published {entry.published}, channel {channel})"
                    )
            publication = read_publication(path, format=format, delimiter=delimiter,
                                           encoding=encoding, spec=config.extract or None)
            staged = self.store.new_staging_dir(dataset)
            try:
                record = self._stage(staged, config, path, original_sha, publication)
                parent_entry = _parent_for(history, channel, published)
                record.update({
                    "dataset": dataset, "channel": channel, "published": published,
                    "period": period, "retrieved_at": retrieved,
                    "source_url": source_url or config.source_url or None,
                    "archivist": archivist, "message": message, "committed_at": utc_now(),
                    "parent": parent_entry.id if parent_entry else None,
                    "version": RECORD_VERSION,
                    # how the original was read, so `verify` re-derives the tables exactly
                    "read_options": {k: v for k, v in (("format", format),
                                                       ("delimiter", delimiter),
                                                       ("encoding", encoding)) if v} or None,
                })
                if evidence:
                    record["fetch"] = evidence
                if identical:
                    record["identical_to"] = [
                        {"id": e.id, "published": e.published, "channel": e.channel}
                        for e in identical
                    ]
                record = {k: v for k, v in record.items() if v is not None or k == "parent"}
                record["summary"] = self._summary_for_commit(staged, record, parent_entry)
                record["id"] = sha256_bytes(canonical_json(record).encode())
            except BaseException:
                shutil.rmtree(staged, ignore_errors=True)
                raise
            self._publish(staged, record)
            snapshot = Snapshot(self.store, record)
            self._update_derived(snapshot)
        parent = Snapshot(self.store, parent_entry.record) if parent_entry else None
        return CommitResult(snapshot, parent, record["summary"],
                            record.get("identical_to", []), list(self.notices),
                            self._audit_new_release(snapshot))

    def _audit_new_release(self, snapshot: Snapshot) -> list[Any]:
        """Flag a release the moment it arrives (recycled, period mismatch, revisions...)."""
        from atdarchive.audit import findings_for_snapshot, flag_summary
        from atdarchive.derived import save_flags

        findings = findings_for_snapshot(self, snapshot)
        save_flags(self, snapshot.id, flag_summary(findings))
        series = self.history(snapshot.dataset).channel(snapshot.channel)
        position = [e.id for e in series].index(snapshot.id)
        if position + 1 < len(series):  # a backfill: the next release has a new parent
            successor = Snapshot(self.store, series[position + 1].record)
            save_flags(self, successor.id,
                       flag_summary(findings_for_snapshot(self, successor)))
        return findings

    def _stage(self, staged: Path, config: DatasetConfig, path: Path, original_sha: str,
               publication: Any) -> dict[str, Any]:
        """Write original + tables into the staging directory; return the record's data part."""
        import pyarrow as pa

        from atdarchive.parquetio import write_table
        from atdarchive.store import table_fingerprint

        files: dict[str, dict[str, Any]] = {}

        def add_file(relpath: str) -> None:
            file = staged / relpath
            with open(file, "rb+") as fh:  # durable before the commit point, not just written
                os.fsync(fh.fileno())
            files[relpath] = {"sha256": sha256_file(file), "size": file.stat().st_size}

        original_rel = f"original.{_safe_suffix(path)}"
        shutil.copyfile(path, staged / original_rel)
        if sha256_file(staged / original_rel) != original_sha:
            raise IngestError(f"{path.name}: file changed while it was being archived")
        add_file(original_rel)
        (staged / "tables").mkdir()
        tables: dict[str, dict[str, Any]] = {}
        for table in publication.tables:
            name = check_name("table", table.name)
            if name in tables:
                raise IngestError(f"{path.name}: two tables named {name!r}")
            rel = f"tables/{name}.parquet"
            write_table(table.data, staged / rel)
            add_file(rel)
            meta = table.meta()
            meta.update({
                "file": rel, "rows": table.data.num_rows, "columns": table.data.num_columns,
                "schema": [{"name": f.name, "type": str(f.type)} for f in table.data.schema],
                "fingerprint": table_fingerprint(table.data),
            })
            if name in config.keys:
                meta["key"] = config.keys[name]
                meta["key_source"] = "declared"
            elif table.key:
                meta["key_source"] = "spec"
            if table.source_rows is not None:
                rows_rel = f"tables/{name}.rows.parquet"
                write_table(pa.table({"source_row": pa.array(table.source_rows, pa.int32())}),
                            staged / rows_rel)
                add_file(rows_rel)
                meta["rows_file"] = rows_rel
            tables[name] = meta
        if publication.cells is not None:
            write_table(publication.cells, staged / "cells.parquet")
            add_file("cells.parquet")
        return {
            "original": {"name": path.name, "file": original_rel, "size": path.stat().st_size,
                         "sha256": original_sha, "format": publication.format},
            "tables": tables,
            "files": files,
            "stated_dates": [d.to_json() for d in publication.stated_dates],
            "notes": list(publication.notes),
            "reader": publication.reader,
        }

    def _summary_for_commit(self, staged: Path, record: dict[str, Any],
                            parent_entry: Any) -> dict[str, Any]:
        from atdarchive.changes import summarize
        from atdarchive.derived import fingerprint_dir, warm_fingerprints

        if parent_entry is None:
            return summarize(None, None)
        parent = Snapshot(self.store, parent_entry.record)
        staged_snapshot = Snapshot(self.store, record, directory=staged)
        # fingerprints are keyed by file sha256: made now, they serve the published files too
        cache = fingerprint_dir(self)
        warm_fingerprints(self, staged_snapshot)
        warm_fingerprints(self, parent)
        return summarize(parent, staged_snapshot, cache)

    def _publish(self, staged: Path, record: dict[str, Any]) -> None:
        """Rename into place, hand to DVC, append the ledger line, commit to git."""
        from atdarchive.recovery import recover

        dataset, snapshot_id = record["dataset"], record["id"]
        target = self.store.publish(staged, dataset, snapshot_id)
        fsync_dir(target.parent)
        try:
            pointer = self.store.track(dataset, snapshot_id)
        except BaseException:
            recover(self)  # before the ledger line nothing exists: undo at once
            raise
        self.ledger(dataset).append({"type": "snapshot", "record": record})  # commit point
        try:
            self._git_commit_ledger(dataset, [pointer, pointer.parent / ".gitignore"],
                                    f"{dataset}: snapshot {snapshot_id[:10]} published "
                                    f"{record['published']} ({record['channel']})",
                                    record.get("message", ""), snapshot_id)
        except AtdError as exc:  # the snapshot exists; only git lags behind
            self.notices.append(
                f"snapshot {snapshot_id[:10]} is recorded, but the git commit failed ({exc}); "
                "the next write or 'atdarchive verify --repair' commits it")

    def _git_commit_ledger(self, dataset: str, extra: list[Path], subject: str,
                           body: str = "", snapshot_id: str | None = None) -> None:
        ledger = self.ledger(dataset)
        trailer = f"atdarchive-ledger-head: {ledger.head()}"
        if snapshot_id:
            trailer = f"atdarchive-snapshot: {snapshot_id}\n{trailer}"
        text = f"{subject}\n\n{body.strip()}\n\n{trailer}" if body.strip() else \
            f"{subject}\n\n{trailer}"
        gitops.commit(self.root, [ledger.path, *[p for p in extra if p.exists()]], text)

    def _update_derived(self, snapshot: Snapshot) -> None:
        """Derived, rebuildable indexes (fingerprints, blame) — best kept warm at commit."""
        from atdarchive.derived import update_after_commit

        update_after_commit(self, snapshot)

    def tag(self, ref: str, name: str, *, force: bool = False,
            archivist: str | None = None) -> Snapshot:
        """Name a snapshot; tags are ledger events committed to git (moving one needs force)."""
        check_name("tag", name)
        if name == "latest" or name.startswith("latest~") or len(name) == 10 and name[4] == "-":
            raise AtdError(f"invalid tag name {name!r}: it reads as a ref (latest, a date)")
        snapshot = self.snapshot(ref)
        with self.write_lock():
            history = self.history(snapshot.dataset)
            current = history.tags.get(name)
            if current == snapshot.id:
                return snapshot
            if current and not force:
                raise AtdError(
                    f"tag {name!r} already names {snapshot.dataset}@{current[:10]}; "
                    "use --force to move it (the move is recorded)"
                )
            self.ledger(snapshot.dataset).append({
                "type": "tag", "name": name, "target": snapshot.id, "tagged_at": utc_now(),
                "archivist": archivist or _default_archivist(self.root),
                **({"moved_from": current} if current else {}),
            })
            self._git_commit_ledger(snapshot.dataset, [],
                                    f"{snapshot.dataset}: tag {name} -> {snapshot.short_id}")
        return snapshot

    def tags(self, dataset: str | None = None) -> list[dict[str, Any]]:
        out = []
        for name in [dataset] if dataset else self.dataset_names():
            history = self.history(name)
            for tag, target in sorted(history.tags.items()):
                entry = history.by_id[target]
                out.append({"dataset": name, "tag": tag, "id": target,
                            "short_id": entry.short, "published": entry.published,
                            "channel": entry.channel})
        return out

    # -- forensics (thin layers over diff, blame, audit) ------------------------
    def diff(self, a: str, b: str | None = None, *, table: str | None = None,
             key: list[str] | None = None, **options: Any) -> Any:
        """Diff two snapshots (B defaults to A's parent, i.e. what A changed).

        Returns a `TableDiff` when `table` is given, else a `SnapshotDiff`;
        `options` are `DiffOptions` fields (columns, ignore, abs_tol, rel_tol, ...).
        """
        from atdarchive.derived import fingerprint_dir
        from atdarchive.diff import DiffOptions, diff_snapshots

        old, new = self.snapshot(a), None
        if b is None:
            new, old = old, self.parent(old)
            if old is None:
                raise AtdError(f"{new.ref} is the first release of its channel; "
                               "name two refs to compare")
        else:
            new = self.snapshot(b)
        result = diff_snapshots(old, new, table=table,
                                options=DiffOptions(key=key, **options),
                                cache_dir=fingerprint_dir(self))
        return result.tables[table] if table else result

    def blame(self, ref: str, *, table: str | None = None, **options: Any) -> Any:
        """Per cell: the release that gave it its value (a `pyarrow.Table`)."""
        from atdarchive.blame import blame

        return blame(self, ref, table=table, **options)

    def history_of(self, dataset: str, *, table: str, row: dict[str, str],
                   column: str | None = None, channel: str = "public") -> Any:
        """One row (or cell) in every release, oldest first (a `pyarrow.Table`)."""
        from atdarchive.blame import history

        return history(self, dataset, table=table, row=row, column=column, channel=channel)

    def export(self, ref: str, out: str | os.PathLike[str], *, table: str | None = None,
               original: bool = False) -> Path:
        """Write one table as .csv/.parquet, or the original file byte for byte."""
        snapshot = self.snapshot(ref)
        target = Path(out)
        if original:
            shutil.copyfile(snapshot.original_path, target)
            return target
        suffix = target.suffix.lower()
        if suffix not in (".csv", ".parquet"):
            raise AtdError(f"{target}: export writes .csv or .parquet (or use --original)")
        data = snapshot.table(snapshot.default_table(table))
        if suffix == ".parquet":
            from atdarchive.parquetio import write_table

            write_table(data, target)
        else:
            import pyarrow.csv as pacsv

            pacsv.write_csv(data, target)
        return target


def _find_root(start: Path) -> Path | None:
    for candidate in (start, *start.parents):
        if (candidate / ".dvc").is_dir() and (candidate / "datasets").is_dir():
            return candidate
    return None


def _configure_dvc(root: Path) -> None:
    """No analytics (offline, private); hardlinks keep one copy and leave files read-only."""
    config = root / ".dvc" / "config"
    text = config.read_text() if config.exists() else ""
    text += "[core]\n    analytics = false\n    autostage = false\n"
    text += "[cache]\n    type = \"reflink,hardlink,copy\"\n"
    config.write_text(text)


def _default_archivist(root: Path) -> str:
    name = gitops.git(root, "config", "user.name", check=False).stdout.strip()
    if name:
        return name
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _safe_suffix(path: Path) -> str:
    suffix = path.suffix.lower().lstrip(".")
    return suffix if suffix.isalnum() and 0 < len(suffix) <= 8 else "bin"


def _parent_for(history: History, channel: str, published: str) -> Any:
    """The release a new one follows: the last in its channel published no later than it."""
    from atdarchive.util import published_sort_key

    key = published_sort_key(published)
    before = [e for e in history.channel(channel) if published_sort_key(e.published) <= key]
    return before[-1] if before else None

