"""A dataset's history, derived from its ledger: the two orders and refs (DESIGN.md §3, §4).

The ledger is in commit order. Publication order (per channel) is what users
mean by "the release before": a backfilled old release slots in by its
`published` date and becomes the parent of the next one, without any rewrite.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from atdarchive.errors import RefError
from atdarchive.util import published_day, published_sort_key

DEFAULT_CHANNEL = "public"
SHORT_ID = 10
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
LATEST_RE = re.compile(r"^latest(?:~(\d+))?$")
HEX_RE = re.compile(r"^[0-9a-f]{4,64}$")


class RecordFields:
    """The fields every view of a snapshot record reads the same way."""

    record: dict[str, Any]

    @property
    def id(self) -> str:
        return self.record.get("id", "staged")  # a staged snapshot has no id yet

    @property
    def short_id(self) -> str:
        return self.id[:SHORT_ID]

    @property
    def dataset(self) -> str:
        return self.record["dataset"]

    @property
    def channel(self) -> str:
        return self.record["channel"]

    @property
    def published(self) -> str:
        return self.record["published"]


@dataclass(frozen=True, eq=False)
class Entry(RecordFields):
    """One snapshot in the history: its record and where it sits in the ledger."""

    record: dict[str, Any]
    seq: int

    @property
    def short(self) -> str:
        return self.short_id

    def order_key(self) -> tuple[Any, ...]:
        """Publication order (dates before date-times of their day, UTC), then ledger order."""
        key = self.__dict__.get("_order_key")  # computed once: sorting calls it O(n log n)
        if key is None:
            key = (*published_sort_key(self.published), self.seq)
            self.__dict__["_order_key"] = key
        return key


class History:
    """Snapshots, tags and checks of one dataset, with both orders."""

    def __init__(self, dataset: str, events: list[dict[str, Any]],
                 previous: History | None = None) -> None:
        """`previous`: the history of an earlier read of the same ledger, whose entries
        are reused for the same event objects (a re-read after an append costs the new
        lines, not a rebuild of every entry)."""
        self.dataset = dataset
        self.entries: list[Entry] = []
        self.tags: dict[str, str] = {}
        self.tag_events: list[dict[str, Any]] = []
        self.checks: list[dict[str, Any]] = []
        known = previous.entry_of if previous is not None else {}
        self.entry_of: dict[int, Entry] = {}  # id(record) -> its entry
        for event in events:
            kind = event.get("type")
            if kind == "snapshot":
                record = event["record"]
                entry = known.get(id(record))
                if entry is None or entry.record is not record:  # (ids of live objects only)
                    entry = Entry(record, event["seq"])
                self.entry_of[id(record)] = entry
                self.entries.append(entry)
            elif kind == "tag":
                self.tags[event["name"]] = event["target"]
                self.tag_events.append(event)
            elif kind == "check":
                self.checks.append(event)
        self.by_id = {e.id: e for e in self.entries}
        self._channels: dict[str, list[Entry]] = {}
        self._position: dict[str, int] = {}
        self._ordered = sorted(self.entries, key=Entry.order_key)
        for entry in self._ordered:
            series = self._channels.setdefault(entry.channel, [])
            self._position[entry.id] = len(series)
            series.append(entry)

    # -- orders ------------------------------------------------------------
    def channels(self) -> list[str]:
        return sorted(self._channels)

    def channel(self, name: str) -> list[Entry]:
        """Publication order, oldest first."""
        return self._channels.get(name, [])

    def publication_order(self, channel: str | None = None) -> list[Entry]:
        """Oldest first; all channels interleaved when `channel` is None."""
        if channel is not None:
            return self.channel(channel)
        return list(self._ordered)

    def parent(self, snapshot_id: str) -> Entry | None:
        """The release before this one in its channel's publication order."""
        index = self._position[snapshot_id]
        return self.channel(self.by_id[snapshot_id].channel)[index - 1] if index > 0 else None

    def find_identical(self, sha256: str) -> list[Entry]:
        return [e for e in self.entries if e.record["original"]["sha256"] == sha256]

    # -- refs --------------------------------------------------------------
    def resolve(self, ref: str) -> Entry:
        """An id prefix, `latest`, `latest~N`, a tag, a date, optionally `channel:`."""
        if not self.entries:
            raise RefError(f"{self.dataset}: no snapshots yet")
        channel, sep, rest = ref.partition(":")
        if not sep:
            channel, rest = "", ref
        elif channel not in self._channels:
            raise RefError(
                f"{self.dataset}@{ref}: no channel {channel!r} "
                f"(channels: {', '.join(self.channels())})"
            )
        series = self.channel(channel or self._default_channel())
        if match := LATEST_RE.match(rest):
            back = int(match.group(1) or 0)
            if back >= len(series):
                raise RefError(
                    f"{self.dataset}@{ref}: only {len(series)} snapshot(s) in channel "
                    f"{series[0].channel if series else channel!r}"
                )
            return series[-1 - back]
        if DATE_RE.match(rest):
            return self._in_force(rest, series, ref)
        if not channel and rest in self.tags:
            return self.by_id[self.tags[rest]]
        pool = series if channel else self.entries
        if HEX_RE.match(rest):
            matches = [e for e in pool if e.id.startswith(rest)]
            if len(matches) == 1:
                return matches[0]
            if matches:
                listed = ", ".join(f"{e.short} ({e.published})" for e in matches[:10])
                raise RefError(f"{self.dataset}@{ref}: ambiguous id prefix; candidates: {listed}")
        candidates = [f"{e.short} ({e.published}, {e.channel})" for e in
                      sorted(pool, key=Entry.order_key)[-5:]]
        tags = ", ".join(sorted(self.tags)) or "none"
        raise RefError(
            f"{self.dataset}@{ref}: unknown ref; recent snapshots: {', '.join(candidates)}; "
            f"tags: {tags}"
        )

    def _default_channel(self) -> str:
        if DEFAULT_CHANNEL in self._channels or not self._channels:
            return DEFAULT_CHANNEL
        return self.channels()[0]

    def _in_force(self, day: str, series: list[Entry], ref: str) -> Entry:
        """The release in force on `day`: the last one published on or before it."""
        try:
            when = dt.date.fromisoformat(day)
        except ValueError:
            raise RefError(f"{self.dataset}@{ref}: {day!r} is not a valid date") from None
        before = [e for e in series if published_day(e.published) <= when]
        if not before:
            first = series[0] if series else None
            raise RefError(
                f"{self.dataset}@{ref}: nothing was published by {day}"
                + (f" (first release: {first.published})" if first else "")
            )
        return before[-1]


def split_ref(text: str, default_ref: str = "latest") -> tuple[str, str]:
    """`DATASET@REF` into (dataset, ref); a bare DATASET means its latest snapshot."""
    dataset, sep, ref = text.partition("@")
    if not dataset:
        raise RefError(f"{text!r}: expected DATASET@REF (e.g. ice-detention-stats@latest)")
    return dataset, (ref if sep and ref else default_ref)
