"""The public Python API: `Archive`, one method per feature.

`Archive` is the façade over the services (commit pipeline, diff, blame,
audit, verify, remotes, pinning, citation, fetch). Every CLI command calls
one of these methods, so a researcher can do in a notebook whatever the
command line does. The services themselves stand on `ArchiveContext`.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from atdarchive import gitops
from atdarchive.commit import CommitResult
from atdarchive.context import ArchiveContext
from atdarchive.dataset import DatasetConfig, new_config
from atdarchive.errors import AtdError
from atdarchive.progress import Progress
from atdarchive.snapshot import Snapshot
from atdarchive.store import STATE_DIR
from atdarchive.util import check_name, utc_now

if TYPE_CHECKING:
    from atdarchive.audit import AuditOptions, AuditReport, Finding
    from atdarchive.fetch import FetchResult
    from atdarchive.remotes import Remote, TransferResult
    from atdarchive.sources import Source
    from atdarchive.verify import Problem
    from atdarchive.watch import WatchOptions, WatchResult

GITIGNORE = f"/{STATE_DIR}/\n"

__all__ = ["Archive", "CommitResult"]


class Archive(ArchiveContext):
    """A directory that is both a git and a DVC repository, holding `datasets/`."""

    # -- the web app ---------------------------------------------------------------
    def web_app(self, *, hosts: list[str] | None = None) -> Any:
        """The read-only web app over this archive, a Starlette ASGI application
        (`atdarchive.webapp`); `hosts`: Host names accepted besides localhost."""
        from atdarchive.webapp import create_app

        return create_app(self, hosts=hosts)

    def serve(self, host: str = "127.0.0.1", port: int = 8000, *,
              allow_hosts: list[str] | tuple[str, ...] = ()) -> None:
        """Serve `web_app()` with uvicorn at http://HOST:PORT/ until interrupted; Host
        names other than localhost's and HOST's must be listed in `allow_hosts`."""
        from atdarchive.webapp.server import serve

        serve(self, host, port, allow_hosts=list(allow_hosts))

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

    # -- datasets --------------------------------------------------------------
    def add_dataset(self, name: str, *, title: str = "", agency: str = "",
                    source_url: str = "", description: str = "",
                    keys: dict[str, list[str]] | None = None,
                    extract: dict[str, Any] | None = None,
                    timezone: str = "UTC") -> DatasetConfig:
        """Create `datasets/NAME/dataset.toml` and commit it. TIMEZONE (IANA name): where
        naive times given for this dataset (flags, file names, refs) are read."""
        config = new_config(name, title=title, agency=agency, source_url=source_url,
                            description=description, keys=keys or {}, extract=extract or {},
                            timezone=timezone or "UTC")
        path = self.dataset_dir(name) / "dataset.toml"
        with self.write_lock():
            if path.exists():
                raise AtdError(f"dataset {name!r} already exists ({path})")
            path.parent.mkdir(parents=True, exist_ok=True)
            config.save(path)
            gitops.commit(self.root, [path, self.store.ignore_file(name)],
                          f"{name}: add dataset")
        return config

    # -- reading ---------------------------------------------------------------
    def log(self, dataset: str | None = None, *, channel: str | None = None,
            limit: int | None = None, include_retracted: bool = True,
            audit: bool = False) -> list[dict[str, Any]]:
        """Snapshots newest first (publication order), each with its parent, change summary,
        annotations and — for a retracted one, listed unless `include_retracted` is False —
        its retraction (parents and summaries skip retracted releases). `audit` flags are
        the full audit's when it is current; with `audit=True` a stale one is run first
        (else the row's `audit` is None and `audit_current` False)."""
        from atdarchive.changes import summary_against
        from atdarchive.derived import current_flags

        names = [dataset] if dataset else self.dataset_names()
        rows: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
        for name in names:
            history = self.history(name)
            listed = self.history(name, include_retracted=include_retracted)
            checks: dict[str, list[dict[str, Any]]] = {}
            for check in history.checks:
                checks.setdefault(check["snapshot"], []).append(check["fetch"])
            for entry in listed.listed(channel):
                parent = history.parent(entry.id)
                rows.append((entry.order_key(), {
                    "id": entry.id, "short_id": entry.short, "dataset": name,
                    "parent": parent.id if parent else None,
                    "record": entry.record,
                    "tags": sorted(t for t, i in history.tags.items() if i == entry.id),
                    "checks": checks.get(entry.id, []),
                    "retracted": history.retracted(entry.id),
                    # a retracted twin is no publication: no "republication" flag for it
                    "retracted_twins": [i["id"] for i in entry.record.get("identical_to", [])
                                        if history.retracted(i["id"])],
                    "annotations": history.annotations.get(entry.id, []),
                    "events": history.events_about(entry.id),
                }))
        rows.sort(key=lambda pair: pair[0], reverse=True)
        out = [row for _, row in rows[:limit]] if limit else [row for _, row in rows]
        stale = {row["dataset"] for row in out if not row["retracted"]
                 and current_flags(self, row["id"], row["dataset"]) is None}
        if audit:
            from atdarchive.audit import audit as run_audit

            for name in sorted(stale):
                try:
                    run_audit(self, name)
                except AtdError as exc:  # e.g. data not pulled here
                    self.notices.append(f"{name}: audit flags not refreshed ({exc})")
        for row in out:  # per-row lookups only for the rows shown
            row["summary"] = summary_against(self, row["record"], row["parent"])
            row["audit"] = None if row["retracted"] else current_flags(
                self, row["id"], row["dataset"])
            row["audit_current"] = bool(row["retracted"] or row["audit"] is not None)
        return out

    def add_source(self, dataset: str, *, page: str | None = None, link: str | None = None,
                   url: str | None = None, published: str = "filename:%m%d%Y",
                   channel: str = "public") -> Source:
        """Watch a landing page (`page` + `link` regex) or a direct `url` for DATASET."""
        from atdarchive.sources import Source, add_source

        return add_source(self, dataset, Source(page=page, link=link, url=url,
                                                published=published, channel=channel))

    def watch(self, datasets: list[str] | None = None, options: WatchOptions | None = None,
              *, progress: Progress | None = None) -> WatchResult:
        """One pass over every source: new releases committed with their WARC capture,
        everything else a `watch` ledger event (`atdarchive.watch`)."""
        from atdarchive.watch import watch

        return watch(self, datasets, options, progress=progress)

    def export_warc(self, dataset: str, out: str | os.PathLike[str], *,
                    force: bool = False) -> Path:
        """Every WARC capture of DATASET (snapshots' and watch events'), ledger order, as
        one `.warc.gz` file that standard tools replay."""
        from atdarchive.captures import export_warc

        return export_warc(self, dataset, Path(out), force=force)

    def retract(self, ref: str, reason: str, *, archivist: str | None = None) -> Snapshot:
        """Record DATASET@REF as a false entry: kept, but out of the history views."""
        from atdarchive.notes import retract

        return retract(self, ref, reason, archivist=archivist)

    def annotate(self, ref: str, note: str, *, announces_revision: bool = False,
                 archivist: str | None = None) -> dict[str, Any]:
        """Attach a note to DATASET@REF; `announces_revision` marks the agency's own notice
        of revisions in it (the audit then counts them as announced)."""
        from atdarchive.notes import annotate

        return annotate(self, ref, note, announces_revision=announces_revision,
                        archivist=archivist)

    # -- writing -------------------------------------------------------------
    def commit(self, dataset: str, file: str | os.PathLike[str], **options: Any
               ) -> CommitResult:
        """Ingest FILE as a new immutable snapshot of DATASET (one ledger line, one git commit).

        `options`: published, period, source_url, retrieved_at, channel, archivist,
        message, format, delimiter, encoding, evidence, zone (the zone naive times of
        this commit are read in; default the dataset's) — see `atdarchive.commit.commit`.
        """
        from atdarchive.commit import commit

        return commit(self, dataset, file, **options)

    def fetch(self, dataset: str, url: str, **options: Any) -> FetchResult:
        """Download URL and archive it unless its bytes are already a snapshot."""
        from atdarchive.fetch import fetch

        return fetch(self, dataset, url, **options)

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
            event = {
                "type": "tag", "name": name, "target": snapshot.id, "tagged_at": utc_now(),
                "archivist": archivist or self.default_archivist(),
                **({"moved_from": current} if current else {}),
            }
            self.record_events(snapshot.dataset, [event],
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
    def semantics(self, ref: str, table: str | None = None) -> dict[str, dict[str, Any]]:
        """What each table of a snapshot means in time (role, periods as months, totals,
        derived and flag columns), as the audit judges it (`atdarchive.semantics`)."""
        from atdarchive.semantics import describe

        snap = self.snapshot(ref)
        config = self.dataset(snap.dataset).audit
        names = [snap.default_table(table)] if table else snap.table_names
        return {n: describe(snap.table_meta(n), config, n).to_json() for n in names}

    def keys(self, dataset: str, *, table: str | None = None,
             channel: str | None = None) -> list[dict[str, Any]]:
        """Per table: the key in force, its source (declared, hierarchy, inferred), the
        inferred alternative, and per release whether it is unique (`atdarchive keys`)."""
        from atdarchive.keyreport import config_warnings, key_report

        self.notices.extend(config_warnings(self, dataset))
        return key_report(self, dataset, table=table, channel=channel)

    def diff(self, a: str, b: str | None = None, *, table: str | None = None,
             key: list[str] | None = None, **options: Any) -> Any:
        """Diff two snapshots (B defaults to A's parent, i.e. what A changed).

        Returns a `TableDiff` when `table` is given, else a `SnapshotDiff`;
        `options` are `DiffOptions` fields (columns, ignore, abs_tol, rel_tol, ...).
        """
        from atdarchive.diff import DiffOptions, diff_snapshots
        from atdarchive.keyresolver import key_resolver

        old, new = self.compared(a, b)
        result = diff_snapshots(old, new, table=table,
                                options=DiffOptions(key=key, **options),
                                cache_dir=self.layout.fingerprints,
                                key_for=key_resolver(self, new))
        return result.tables[table] if table else result

    def diff_stat(self, a: str, b: str | None = None, *, table: str | None = None,
                  **options: Any) -> Any:
        """Rows inserted and deleted per table (`git diff --stat`), from fingerprints alone
        where they can answer; a `SnapshotStat`."""
        from atdarchive.diff.stat import stat_snapshots
        from atdarchive.diff.types import DiffOptions
        from atdarchive.keyresolver import key_resolver

        old, new = self.compared(a, b)
        return stat_snapshots(old, new, table=table, options=DiffOptions(**options),
                              cache_dir=self.layout.fingerprints,
                              key_for=key_resolver(self, new))

    def compared(self, a: str, b: str | None = None) -> tuple[Snapshot, Snapshot]:
        """(old, new) for a diff: A and B, or — B omitted — A's parent and A."""
        if b is not None:
            return (self.snapshot(a).require_tables("diff"),
                    self.snapshot(b).require_tables("diff"))
        new = self.snapshot(a).require_tables("diff")
        old = self.parent(new)
        if old is None:
            raise AtdError(f"{new.ref} is the first release of its channel; "
                           "name two refs to compare")
        return old, new

    def blame(self, ref: str, *, table: str | None = None, **options: Any) -> Any:
        """Per cell: the release that gave it its value (a `pyarrow.Table`)."""
        from atdarchive.blame import blame

        self.snapshot(ref).require_tables("blame")
        return blame(self, ref, table=table, **options)

    def history_of(self, dataset: str, *, table: str, row: dict[str, str],
                   column: str | None = None, channel: str = "public",
                   strict: bool = False) -> Any:
        """One row (or cell) in every release, oldest first (a `pyarrow.Table`)."""
        from atdarchive.blame import history

        return history(self, dataset, table=table, row=row, column=column, channel=channel,
                       strict=strict)

    def reindex(self, dataset: str | None = None) -> list[dict[str, Any]]:
        """Rebuild the blame indexes (derived state) of DATASET or of every dataset."""
        from atdarchive.blame import reindex

        return reindex(self, dataset)

    def audit(self, dataset: str, options: AuditOptions | None = None, *,
              progress: Progress | None = None) -> AuditReport:
        """Every finding of the forensic audit over DATASET's history."""
        from atdarchive.audit import audit
        from atdarchive.keyreport import config_warnings

        self.notices.extend(config_warnings(self, dataset))
        return audit(self, dataset, options, progress=progress)

    def findings(self, ref: str, options: AuditOptions | None = None) -> list[Finding]:
        """The audit findings of one release against its history."""
        from atdarchive.audit import findings_for_snapshot

        return findings_for_snapshot(self, self.snapshot(ref), options)

    def vintages(self, dataset: str, table: str | None = None, *, channel: str = "public",
                 as_of: str | None = None, mode: str = "all") -> Any:
        """Every value of a table with its `realtime_start` / `realtime_end` (a
        `pyarrow.Table`; `atdarchive.vintages`). `mode`: all, first-release, latest."""
        from atdarchive.vintages import vintages

        return vintages(self, dataset, table, channel=channel, as_of=as_of, mode=mode)

    def revisions(self, dataset: str, table: str | None = None, *,
                  channel: str = "public") -> Any:
        """Per table, column and period: revision counts, sizes, lags (`pyarrow.Table`)."""
        from atdarchive.vintages import revisions

        return revisions(self, dataset, table, channel=channel)

    def sql(self, query: str, *, dataset: str | None = None, timeout: float | None = None,
            memory_limit: str | float | None = None) -> Any:
        """Run one reading SQL statement over the dataset's views (DuckDB, read-only);
        a `pyarrow.Table` (`atdarchive.sql`). `timeout` seconds and `memory_limit`
        (`"512MB"`, `"2GiB"` or bytes) override `sql.seconds` / `sql.memory_bytes`; a
        query past either stops with `LimitExceeded`."""
        from atdarchive.sql import sql

        return sql(self, query, dataset, timeout=timeout, memory_limit=memory_limit)

    def sql_export(self, out: str | os.PathLike[str], dataset: str | None = None, *,
                   force: bool = False) -> Path:
        """Every SQL view written as a table into a .duckdb or .sqlite file."""
        from atdarchive.sql import export

        return export(self, Path(out), dataset, force=force)

    # -- integrity ---------------------------------------------------------------
    def verify(self, dataset: str | None = None, *, repair: bool = False, fast: bool = False,
               progress: Progress | None = None) -> list[Problem]:
        """Re-hash and re-derive everything; `repair` first cleans crash leftovers."""
        from atdarchive.verify import verify

        return verify(self, dataset, repair=repair, fast=fast, progress=progress)

    def verify_remote(self, name: str) -> list[Problem]:
        """Every snapshot's objects present (and protected) on remote NAME."""
        from atdarchive.verify import verify_remote

        return verify_remote(self, name)

    def verify_lockfile(self, path: str | os.PathLike[str]) -> list[Problem]:
        """A lockfile still resolves to the same snapshots and hashes."""
        from atdarchive.verify import verify_lockfile

        return verify_lockfile(self, Path(path))

    # -- remotes -----------------------------------------------------------------
    def remotes(self) -> list[Remote]:
        from atdarchive.remotes import remotes

        return remotes(self)

    def add_remote(self, name: str, url: str, *, endpoint_url: str | None = None,
                   default: bool = False) -> Remote:
        from atdarchive.remotes import add_remote

        return add_remote(self, name, url, endpoint_url=endpoint_url, default=default)

    def confirm_remote(self, name: str) -> Remote:
        """Trust a directory remote that came with the archive (recorded in config.local)."""
        from atdarchive.remotes import confirm_remote

        return confirm_remote(self, name)

    def waiting_settings(self) -> list[Any]:
        """Settings that came with the archive and are not used until confirmed."""
        from atdarchive.settings import waiting

        return waiting(self)

    def confirm_settings(self, kind: str | None = None, name: str | None = None
                         ) -> list[Any]:
        """Confirm what waits (all, one kind, or one setting) in your own trust store."""
        from atdarchive.settings import confirm_settings

        return confirm_settings(self, kind, name)

    def lock_remote(self, name: str, days: int, mode: str = "compliance") -> Remote:
        """Put pushed snapshot objects under S3 Object Lock retention from now on."""
        from atdarchive.remotes import lock_remote

        return lock_remote(self, name, days, mode)

    def push(self, target: str | None = None, *, remote: str | None = None,
             progress: Progress | None = None) -> TransferResult:
        from atdarchive.remotes import push

        return push(self, target, remote=remote, progress=progress)

    def pull(self, target: str | None = None, *, remote: str | None = None,
             progress: Progress | None = None) -> TransferResult:
        from atdarchive.remotes import pull

        return pull(self, target, remote=remote, progress=progress)

    @classmethod
    def clone(cls, git_url: str, directory: str | os.PathLike[str], *,
              pulls: list[str] | tuple[str, ...] = (), remote: str | None = None,
              progress: Progress | None = None, confirm_remotes: bool = False,
              confirm_sources: bool = False) -> Archive:
        """git clone a published archive, then pull the named snapshots' data.

        `confirm_remotes` trusts the remotes (and lock policies) the archive's config
        names, `confirm_sources` its `[[sources]]`; otherwise they wait (`trust list`).
        """
        from atdarchive.remotes import clone

        context = clone(git_url, directory, pulls=pulls, remote=remote, progress=progress,
                        confirm_remotes=confirm_remotes, confirm_sources=confirm_sources)
        archive = cls(directory)
        archive.notices.extend(context.notices)
        return archive

    # -- researchers ---------------------------------------------------------------
    def pin(self, ref: str, lock: str | os.PathLike[str] = "atdarchive.lock") -> dict[str, Any]:
        """Pin DATASET@REF in a lockfile (ids and hashes) for `atdarchive.load`."""
        from atdarchive.pinning import pin

        return pin(self, ref, lock)

    def load_pinned(self, dataset: str, lock: str | os.PathLike[str] = "atdarchive.lock"
                    ) -> Snapshot:
        """The pinned snapshot, every file re-hashed; loud on a mismatch."""
        from atdarchive.pinning import load_pinned

        return load_pinned(self, dataset, lock)

    def cite(self, ref: str, format: str = "text") -> str:
        """A citation of DATASET@REF: text, bibtex or csl-json."""
        from atdarchive.citation import cite

        return cite(self, ref, format)

    def export(self, ref: str, out: str | os.PathLike[str], *, table: str | None = None,
               original: bool = False, force: bool = False, raw: bool = False) -> Path:
        """Write one table as .csv/.parquet, or the original file byte for byte.

        An existing OUT is refused unless `force` (a researcher's file is not ours to
        replace); the file appears whole or not at all (written beside it, renamed).
        CSV is for spreadsheets: text cells that would run as formulas get a leading `'`
        unless `raw` (`atdarchive.render.csv_safe`); Parquet and the original are exact."""
        snapshot = self.snapshot(ref)
        target = Path(out)
        if target.is_dir():
            raise AtdError(f"{target}: is a directory; give a file name")
        if (target.exists() or target.is_symlink()) and not force:
            raise AtdError(f"{target}: already exists; use --force to overwrite it")
        suffix = target.suffix.lower()
        if not original and suffix not in (".csv", ".parquet"):
            raise AtdError(f"{target}: export writes .csv or .parquet (or use --original)")
        data = None if original else snapshot.table(snapshot.default_table(table))
        partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
        try:
            if original:
                shutil.copyfile(snapshot.original_path, partial)
            elif suffix == ".parquet":
                from atdarchive.parquetio import write_table

                write_table(data, partial)
            else:
                from atdarchive.render.csv_safe import write_csv

                write_csv(data, partial, raw=raw)
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
        return target


def _configure_dvc(root: Path) -> None:
    """No analytics (offline, private); hardlinks keep one copy and leave files read-only."""
    config = root / ".dvc" / "config"
    text = config.read_text() if config.exists() else ""
    text += "[core]\n    analytics = false\n    autostage = false\n"
    text += "[cache]\n    type = \"reflink,hardlink,copy\"\n"
    config.write_text(text)
