"""The one place that decides which key identifies a table's rows (DESIGN §6/§12).

given (`--key`) > declared (`dataset.toml` [keys]) > declared in the release's record
(or its extraction spec) > hierarchy (derived on read) > inferred (`atdarchive.keys`),
chosen at the latest release of the channel holding the table. keys, blame, history,
vintages, revisions, diff, diff --stat, audit and the web app all ask `resolve_key`, so
they match a table's rows alike. Light to import (diff --stat imports it and must not
load pyarrow.compute): the inference is imported when a key has to be inferred.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from atdarchive.context import ArchiveContext
    from atdarchive.history import Entry

#: Key choices kept in memory (per process); each is one read of a table at most.
KEY_CHOICES_KEPT = 512
#: Sources whose key is used as written: its columns must exist in every release diffed.
WRITTEN_SOURCES = ("given", "declared", "spec")


@dataclass(frozen=True)
class KeyChoice:
    """Which key identifies a table's rows: `columns` (None: rows matched whole), where it
    came from (`source`: given, declared, spec, hierarchy, inferred, none), the release it
    was chosen at (`at`, the latest in the channel holding the table) and whether it is
    unique there (`unique`, None when not looked at)."""

    columns: tuple[str, ...] | None
    source: str
    at: str | None = None
    unique: bool | None = None

    @property
    def key(self) -> list[str] | None:
        """The key columns as a list (None when there is no key)."""
        return list(self.columns) if self.columns else None

    def pair(self) -> tuple[list[str] | None, str]:
        """(key, source), the form the diff engine and blame take."""
        return self.key, self.source


_CHOICES: OrderedDict[tuple[Any, ...], KeyChoice] = OrderedDict()


def resolve_key(archive: ArchiveContext, dataset: str, table: str, *,
                channel: str | None = "public", given: Sequence[str] | None = None
                ) -> KeyChoice:
    """The key of `table`'s rows, the one every command uses (DESIGN §6/§12).

    given (`--key`) > declared (`dataset.toml` [keys]) > declared in the release's
    record (or its extraction spec) > hierarchy (derived on read) > inferred, all at
    the latest release of `channel` holding the table (any channel when that one has
    none), so blame, history, vintages, revisions, diff, audit, keys and the web app
    match rows alike, and a diff of two old releases matches them as the series does.
    An inferred or hierarchy key a release lacks a column of is no key (`none (...)`):
    rows are then matched whole everywhere. Cached per (latest release, table, given,
    declared config)."""
    history = archive.history(dataset)
    holding = [e for e in history.publication_order(channel) if table in e.record["tables"]]
    if not holding and channel is not None:
        holding = [e for e in history.publication_order(None) if table in e.record["tables"]]
    if not holding:
        return KeyChoice(tuple(given) if given else None, "given" if given else "none")
    latest = holding[-1]
    declared = archive.dataset(dataset).keys.get(table)
    spec = archive.hierarchy(dataset, table)
    meta = latest.record["tables"][table]
    config = json.dumps([declared, meta.get("key"), meta.get("key_source"),
                         spec.to_json() if spec else None], sort_keys=True, default=str)
    cache = (str(getattr(archive, "root", "")), dataset, latest.id, table,
             tuple(given or ()), hashlib.sha256(config.encode()).hexdigest(),
             tuple(e.id for e in holding))
    hit = _CHOICES.get(cache)
    if hit is not None:
        _CHOICES.move_to_end(cache)
        return hit
    choice = _choose(archive, holding, table, given, declared)
    _CHOICES[cache] = choice
    while len(_CHOICES) > KEY_CHOICES_KEPT:
        _CHOICES.popitem(last=False)
    return choice


def _choose(archive: ArchiveContext, holding: Sequence[Entry], table: str,
            given: Sequence[str] | None, declared: Sequence[str] | None) -> KeyChoice:
    latest = holding[-1]
    meta = latest.record["tables"][table]
    if given:
        return KeyChoice(tuple(given), "given", latest.id)
    if declared:
        return KeyChoice(tuple(declared), "declared", latest.id)
    if meta.get("key") and meta.get("key_source") in ("declared", "spec"):
        return KeyChoice(tuple(meta["key"]), meta["key_source"], latest.id)
    from atdarchive.keys import derived_key, infer_key, is_unique_nonnull

    data = archive.snapshot_of(latest.record).table(table)
    key, source = derived_key(data.schema), "hierarchy"
    if not key:
        key, source = infer_key(data), "inferred"
    if not key:
        return KeyChoice(None, "none", latest.id)
    if source == "inferred":
        for entry in holding:
            stored = {c["name"] for c in entry.record["tables"][table].get("schema") or []}
            missing = [k for k in key if stored and k not in stored]
            if missing:
                why = (f"key ({', '.join(key)}) is missing (no column {missing[0]!r}) in "
                       f"{entry.dataset}@{entry.short}")
                archive.notices.append(f"{table}: inferred {why}; rows are matched as whole "
                                       "rows (keyless)")
                return KeyChoice(None, f"none ({why})", latest.id)
    return KeyChoice(tuple(key), source, latest.id, is_unique_nonnull(data, key))


def key_resolver(archive: ArchiveContext, snapshot: Any, given: Sequence[str] | None = None
                 ) -> Callable[[str], KeyChoice]:
    """`resolve_key` for the tables of `snapshot`'s dataset and channel (what the diff
    engine asks per table)."""
    dataset, channel = snapshot.dataset, getattr(snapshot, "channel", None) or "public"
    return lambda table: resolve_key(archive, dataset, table, channel=channel, given=given)
