"""The archive context: the one floor every service stands on.

`ArchiveContext` owns what all services share — the root, the snapshot store,
the layout of local state (`Layout`), the cached histories, the write lock,
notices for the user, and the one way to record ledger events and commit them
to git. `Archive` (the public façade) is an `ArchiveContext` with a method per
feature; services take an `ArchiveContext` and never reach into each other.

It is also where everything read from an archive is checked before it is used
to touch the filesystem (DESIGN.md §15): ledger events are validated as they are
read (`Ledger.trusted`, `atdarchive.events`), paths go through the store's
resolver (`paths.resolve_inside`: relative, inside, no links) and `dataset.toml`
through one schema (`DatasetConfig.load`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from atdarchive import gitops
from atdarchive.dataset import DatasetConfig
from atdarchive.errors import AtdError
from atdarchive.history import History, split_ref
from atdarchive.ledger import Ledger
from atdarchive.locking import exclusive
from atdarchive.paths import ensure_no_symlink
from atdarchive.store import STATE_DIR, SnapshotStore
from atdarchive.util import fsync_dir

if TYPE_CHECKING:
    from atdarchive.hierarchy import Hierarchy
    from atdarchive.snapshot import Snapshot


class Layout:
    """Where local (never committed) state lives: one owner for every path under `.atdarchive/`.

    Derived indexes are rebuildable caches. When the archive cannot be written
    (a read-only mount of a published copy) they go to the user's cache
    directory instead, so read commands still work.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.state = root / STATE_DIR
        self.staging = self.state / "staging"
        self.lock = self.state / "lock"
        self.local = self._local_dir()
        self.stamps = self.local / "verified.json"  # a cache: deleting it costs re-hashing
        self.derived = self.local / "derived"
        self.fingerprints = self.derived / "fingerprints"
        self.blame = self.derived / "blame"
        self.audit = self.derived / "audit"
        self.summaries = self.derived / "summaries"

    def _local_dir(self) -> Path:
        """Where caches go: `.atdarchive/`, or a per-archive folder of the user's cache
        directory when that cannot be written (read-only archive) or is a symbolic link
        (an archive must not bring links)."""
        usable = (not self.state.is_symlink()
                  and _writable(self.state if self.state.exists() else self.root))
        if usable:
            return self.state
        digest = hashlib.sha256(str(self.root).encode()).hexdigest()[:16]
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        return base / "atdarchive" / digest

    def flags(self, snapshot_id: str) -> Path:
        return self.audit / "flags" / f"{snapshot_id}.json"


def _writable(path: Path) -> bool:
    return os.access(path, os.W_OK)


class ArchiveContext:
    """A directory that is both a git and a DVC repository, holding `datasets/`."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        start = Path(path or ".").resolve()
        root = find_root(start)
        if root is None:
            raise AtdError(
                f"{start}: not an atdarchive archive (no datasets/ and .dvc/ here or above); "
                "run 'atdarchive init'"
            )
        self.root = root
        self.layout = Layout(root)
        self.store = SnapshotStore(root, self.layout.stamps)
        self.notices: list[str] = []
        self._histories: dict[str, tuple[Any, History]] = {}
        self._hierarchies: dict[tuple[str, str, Any, str], Hierarchy | None] = {}
        self._configs: dict[str, tuple[Any, DatasetConfig]] = {}
        self._hierarchy_of: dict[tuple[str, str], tuple[Any, Hierarchy | None]] = {}

    # -- datasets ---------------------------------------------------------------
    def dataset_dir(self, name: str) -> Path:
        return self.store.dataset_dir(name)

    def dataset_names(self) -> list[str]:
        return self.store.dataset_names()

    def dataset(self, name: str) -> DatasetConfig:
        path = ensure_no_symlink(self.root, self.dataset_dir(name) / "dataset.toml",
                                 "a dataset config")
        try:
            st = path.stat()
        except FileNotFoundError:
            known = ", ".join(self.dataset_names()) or "none yet"
            raise AtdError(
                f"unknown dataset {name!r} (datasets: {known}); "
                f"create it with 'atdarchive dataset add {name}'"
            ) from None
        stamp = (st.st_size, st.st_mtime_ns, st.st_ino)
        cached = self._configs.get(name)
        if cached is None or cached[0] != stamp:  # re-read when the file changes
            cached = self._configs[name] = (stamp, DatasetConfig.load(path))
        return cached[1]

    # -- reading ----------------------------------------------------------------
    def ledger(self, dataset: str) -> Ledger:
        return self.store.ledger(dataset)

    def history(self, dataset: str, *, include_retracted: bool = False) -> History:
        """The dataset's history, re-read whenever its ledger file changes on disk
        (another process may have committed since). Retracted releases leave the
        publication order unless `include_retracted` (`History`)."""
        path = self.ledger(dataset).path
        try:
            st = path.stat()
            stamp = (st.st_size, st.st_mtime_ns, st.st_ino)
        except FileNotFoundError:
            stamp = None
        slot = dataset if not include_retracted else f"{dataset}\0retracted"
        cached = self._histories.get(slot)
        if cached is None or cached[0] != stamp:
            zone = self.dataset(dataset).timezone
            events, problems = self.ledger(dataset).trusted(dataset)
            if problems and not include_retracted:
                first = problems[0]
                self.notices.append(
                    f"{dataset}: skipped {len(problems)} ledger line(s) that cannot be trusted "
                    f"(line {first.line}: {first.problem}); run 'atdarchive verify {dataset}'")
            previous = cached[1] if cached is not None else None
            self._histories[slot] = (stamp, History(dataset, events, previous, zone=zone,
                                                    include_retracted=include_retracted))
        return self._histories[slot][1]

    def snapshot(self, ref: str) -> Snapshot:
        """`archive.snapshot("ice-detention-stats@latest")` — any ref form of DESIGN.md §4."""

        dataset, name = split_ref(ref)
        history = self.history(dataset)
        entry = history.resolve(name)
        self.warn_if_retracted(history, entry.id)
        return self.snapshot_of(entry.record)

    def warn_if_retracted(self, history: History, snapshot_id: str) -> None:
        """A retracted snapshot still loads (its bytes are evidence), with a warning."""
        if (event := history.retracted(snapshot_id)) is not None:
            self.notices.append(
                f"{history.dataset}@{snapshot_id[:10]} was retracted {event['at'][:10]} "
                f"({event['reason']}); it loads, but history views skip it")

    def snapshot_of(self, record: dict[str, Any]) -> Snapshot:
        """The snapshot a history entry's record describes."""
        from atdarchive.snapshot import Snapshot

        dataset = record["dataset"]
        return Snapshot(self.store, record,
                        hierarchy=lambda table: self.hierarchy(dataset, table))

    def hierarchy(self, dataset: str, table: str) -> Hierarchy | None:
        """A table's hierarchy key, decided once for the dataset so that every release
        gets the same key columns: `dataset.toml`'s `[hierarchy.TABLE]`, else detected
        on the latest release holding the table that this copy has pulled
        (`atdarchive.hierarchy`)."""
        config = self.dataset(dataset)
        self.history(dataset)
        # valid while the ledger and dataset.toml are as they were (their stat stamps)
        stamp = (self._histories[dataset][0], self._configs[dataset][0])
        known = self._hierarchy_of.get((dataset, table))
        if known is not None and known[0] == stamp:
            return known[1]
        found = self._decide_hierarchy(dataset, table, config)
        self._hierarchy_of[(dataset, table)] = (stamp, found)
        return found

    def _decide_hierarchy(self, dataset: str, table: str,
                          config: DatasetConfig) -> Hierarchy | None:
        from atdarchive import hierarchy
        from atdarchive.snapshot import Snapshot

        override = config.hierarchy.get(table)
        if (override or {}).get("shape") == "none" or (override is None and table in config.keys):
            return None  # a declared key needs no derived one
        # the latest release holding the table that this copy has (a partial clone
        # may not have pulled the newest)
        latest = next((e for e in reversed(self.history(dataset).publication_order())
                       if table in e.record["tables"] and self.store.locate(
                           dataset, e.id, e.record["tables"][table]["file"]) is not None), None)
        if latest is None:
            return None
        meta = latest.record["tables"][table]
        if override is None and not hierarchy.could_be(meta):
            return None
        memo = (dataset, table, meta.get("fingerprint"), repr(sorted((override or {}).items())))
        if memo not in self._hierarchies:
            raw = Snapshot(self.store, latest.record).table(table, derived=False)
            self._hierarchies[memo] = hierarchy.detect(raw, override)
        return self._hierarchies[memo]

    def parent(self, snapshot: Snapshot) -> Snapshot | None:
        """The release before this one in publication order (its channel)."""
        entry = self.history(snapshot.dataset).parent(snapshot.id)
        return self.snapshot_of(entry.record) if entry else None

    # -- writing ----------------------------------------------------------------
    @contextlib.contextmanager
    def write_lock(self) -> Iterator[None]:
        """Serialise writers; recover what a crashed writer left before writing."""
        from atdarchive.recovery import recover

        with exclusive(self.layout.lock) as state:
            if state.stale_pid is not None:
                self.notices.append(
                    f"found a stale lock of writer pid {state.stale_pid} (it died); "
                    "recovering its interrupted work"
                )
            self.notices.extend(recover(self.store))
            yield

    def record_events(self, dataset: str, events: Sequence[dict[str, Any]], subject: str, *,
                      body: str = "", snapshot_id: str | None = None,
                      paths: Sequence[Path] = ()) -> None:
        """Append EVENTS to DATASET's ledger and commit them (with PATHS) to git.

        Call inside `write_lock`. The ledger append is the commit point: if git
        fails afterwards the events stand, the failure becomes a notice, and
        recovery (the next write, or `verify --repair`) makes the git commit.
        """
        ledger = self.ledger(dataset)
        pending = self.store.git_pending(dataset)
        pending.parent.mkdir(parents=True, exist_ok=True)
        pending.touch()
        fsync_dir(pending.parent)
        for event in events:
            ledger.append(event)
        for slot in (dataset, f"{dataset}\0retracted"):
            if slot in self._histories:  # re-read on next use (its entries are reused)
                self._histories[slot] = (None, self._histories[slot][1])
        trailer = f"atdarchive-ledger-head: {ledger.head()}"
        if snapshot_id:
            trailer = f"atdarchive-snapshot: {snapshot_id}\n{trailer}"
        text = (f"{subject}\n\n{body.strip()}\n\n{trailer}" if body.strip()
                else f"{subject}\n\n{trailer}")
        try:
            gitops.commit(self.root, [ledger.path, *[p for p in paths if p.exists()]], text)
            with contextlib.suppress(OSError):  # a leftover marker only costs a git check
                pending.unlink()
        except AtdError as exc:
            self.notices.append(
                f"{dataset}: recorded in the ledger, but the git commit failed ({exc}); "
                "the next write or 'atdarchive verify --repair' commits it")

    def default_archivist(self) -> str:
        import getpass

        name = gitops.git(self.root, "config", "user.name", check=False).stdout.strip()
        if name:
            return name
        try:
            return getpass.getuser()
        except (KeyError, OSError):
            return "unknown"


def find_root(start: Path) -> Path | None:
    for candidate in (start, *start.parents):
        if (candidate / ".dvc").is_dir() and (candidate / "datasets").is_dir():
            return candidate
    return None
