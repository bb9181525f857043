"""A dataset's history, derived from its ledger: the two orders and refs (DESIGN.md §3, §4).

The ledger is in commit order. Publication order (per channel) is what users
mean by "the release before": a backfilled old release slots in by its
`published` date and becomes the parent of the next one, without any rewrite.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from atdarchive import instants
from atdarchive.errors import AtdError, RefError
from atdarchive.instants import When

DEFAULT_CHANNEL = "public"
SHORT_ID = 10
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
LATEST_RE = re.compile(r"^latest(?:~(\d+))?$")
HEX_RE = re.compile(r"^[0-9a-f]{4,64}$")
DATETIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2})?(?:Z|[+-]\d{2}:?\d{2})?$")


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

    @property
    def when(self) -> When:
        """The publication time as read: a day, or a UTC instant with its zone."""
        when = self.__dict__.get("_when")  # computed once: sorting asks often
        if when is None:
            when = instants.stored(self.published, self.record.get("published_zone"))
            self.__dict__["_when"] = when
        return when

    @property
    def evidence_only(self) -> bool:
        """A publication no reader could parse: kept, dated and listed, but no tables."""
        return "parse_error" in self.record

    def order_key(self) -> tuple[Any, ...]:
        """Publication order (days before the instants of their day), then ledger order."""
        return (*self.when.sort_key(), self.seq)


class History:
    """Snapshots, tags and checks of one dataset, with both orders."""

    def __init__(self, dataset: str, events: list[dict[str, Any]],
                 previous: History | None = None, *, include_retracted: bool = False,
                 zone: str = instants.UTC) -> None:
        """`previous`: the history of an earlier read of the same ledger, whose entries
        are reused for the same event objects (a re-read after an append costs the new
        lines, not a rebuild of every entry).

        Retracted snapshots stay in `entries` and `by_id` (an id still resolves, a pin
        still loads) but leave the publication order — `latest`, dates, parents, diff,
        blame and audit — unless `include_retracted`. Evidence-only snapshots (files no
        reader could parse) were published: refs (`latest`, dates) reach them, but they
        are never a data release (parents, blame, audit). ZONE: the dataset's, where a
        ref's naive date or time is read.
        """
        self.dataset = dataset
        self.zone = zone
        self.include_retracted = include_retracted
        self.entries: list[Entry] = []
        self.tags: dict[str, str] = {}
        self.tag_events: list[dict[str, Any]] = []
        self.checks: list[dict[str, Any]] = []
        self.retractions: dict[str, dict[str, Any]] = {}  # snapshot id -> retract event
        self.annotations: dict[str, list[dict[str, Any]]] = {}  # snapshot id -> annotate
        self.watch_events: list[dict[str, Any]] = []  # what `watch` saw, ledger order
        last_in: dict[str, str] = {}  # channel -> the snapshot last recorded in it
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
                last_in[record["channel"]] = record["id"]
            elif kind == "tag":
                self.tags[event["name"]] = event["target"]
                self.tag_events.append(event)
            elif kind == "check":
                self.checks.append(event)
            elif kind == "retract":
                self.retractions.setdefault(event["snapshot"], event)
            elif kind == "annotate":
                self.annotations.setdefault(event["snapshot"], []).append(event)
            elif kind == "watch":  # about its snapshot, else the one in force when it came
                about = event.get("snapshot") or last_in.get(event.get("channel") or "public")
                self.watch_events.append({**event, "about": about})
        self.by_id = {e.id: e for e in self.entries}
        self._channels: dict[str, list[Entry]] = {}
        self._position: dict[str, int] = {}
        # evidence-only snapshots (no tables) are kept and listed, never a data release
        self._ordered = sorted((e for e in self.entries if "parse_error" not in e.record and (
            include_retracted or e.id not in self.retractions)), key=Entry.order_key)
        for entry in self._ordered:
            series = self._channels.setdefault(entry.channel, [])
            self._position[entry.id] = len(series)
            series.append(entry)
        # every publication refs reach: the data releases and the evidence-only ones
        self._published: dict[str, list[Entry]] = {}
        for entry in sorted((e for e in self.entries if include_retracted
                             or e.id not in self.retractions), key=Entry.order_key):
            self._published.setdefault(entry.channel, []).append(entry)

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
        """The release before this one in its channel's publication order (for a
        retracted one left out of it: the release in force when it was published)."""
        entry = self.by_id[snapshot_id]
        index = self._position.get(snapshot_id)
        if index is None:
            before = [e for e in self.channel(entry.channel)
                      if e.order_key() < entry.order_key()]
            return before[-1] if before else None
        return self.channel(entry.channel)[index - 1] if index > 0 else None

    def listed(self, channel: str | None = None) -> list[Entry]:
        """Every snapshot `log` lists, oldest first: the publication order plus the
        evidence-only ones (and retracted ones when this history includes them)."""
        return sorted((e for e in self.entries if (channel is None or e.channel == channel)
                       and (self.include_retracted or e.id not in self.retractions)),
                      key=Entry.order_key)

    def events_about(self, snapshot_id: str) -> list[dict[str, Any]]:
        """The watch events about one snapshot (its own, or those that came while it was
        the release in force), ledger order."""
        return [e for e in self.watch_events if e.get("about") == snapshot_id]

    def retracted(self, snapshot_id: str) -> dict[str, Any] | None:
        """The retract event of a snapshot, or None."""
        return self.retractions.get(snapshot_id)

    def announced_revision(self, snapshot_id: str) -> dict[str, Any] | None:
        """An annotation carrying the agency's own notice of revisions in this release."""
        return next((a for a in self.annotations.get(snapshot_id, [])
                     if a.get("announces_revision")), None)

    def find_identical(self, sha256: str) -> list[Entry]:
        return [e for e in self.entries if e.record["original"]["sha256"] == sha256]

    # -- refs --------------------------------------------------------------
    def resolve(self, ref: str) -> Entry:
        """An id prefix, `latest`, `latest~N`, a tag, a date or date-time (the release in
        force then), optionally `channel:`. `latest` and dates reach evidence-only
        publications too: they were published."""
        if not self.entries:
            raise RefError(f"{self.dataset}: no snapshots yet")
        channel, sep, rest = ref.partition(":")
        if not sep or DATETIME_RE.match(ref):  # a date-time's own colons are no channel
            channel, rest = "", ref
        elif channel not in self._published:
            raise RefError(
                f"{self.dataset}@{ref}: no channel {channel!r} "
                f"(channels: {', '.join(sorted(self._published))})"
            )
        name = channel or self._default_channel()
        series = self._published.get(name, [])
        if match := LATEST_RE.match(rest):
            back = int(match.group(1) or 0)
            if back >= len(series):
                held = f"only {len(series)} release(s)" if series else "no releases"
                raise RefError(f"{self.dataset}@{ref}: {held} in channel {name!r}")
            return series[-1 - back]
        if DATE_RE.match(rest) or DATETIME_RE.match(rest):
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
        if DEFAULT_CHANNEL in self._published or not self._published:
            return DEFAULT_CHANNEL
        return sorted(self._published)[0]

    def _in_force(self, when: str, series: list[Entry], ref: str) -> Entry:
        """The release in force at `when`: the last one published on or before it (a day
        means its end; a release dated by day alone counts from the start of its day)."""
        try:
            at = instants.parse(when, self.zone, f"{self.dataset}@{ref}")
        except AtdError as exc:
            raise RefError(exc.message) from None
        if at.is_day:  # the end of that day in the dataset's zone
            end = instants.through_day_key(at.day, self.zone)
            before = [e for e in series if e.when.sort_key() < end]
        else:
            before = [e for e in series if e.when.sort_key() <= at.sort_key()]
        if not before:
            first = series[0] if series else None
            raise RefError(
                f"{self.dataset}@{ref}: nothing was published by {when}"
                + (f" (first release: {first.published})" if first else "")
            )
        return before[-1]


def only_table(dataset: str, series: list[Entry]) -> str:
    """The one table every release of SERIES has (else an error listing them): what a
    command over a whole history uses when `--table` is left out."""
    names = sorted({t for e in series for t in e.record["tables"]})
    if len(names) != 1:
        raise RefError(f"{dataset} has {len(names)} tables; choose one with --table "
                       f"({', '.join(names[:8])}{', ...' if len(names) > 8 else ''})")
    return names[0]


def split_ref(text: str, default_ref: str = "latest") -> tuple[str, str]:
    """`DATASET@REF` into (dataset, ref); a bare DATASET means its latest snapshot."""
    dataset, sep, ref = text.partition("@")
    if not dataset:
        raise RefError(f"{text!r}: expected DATASET@REF (e.g. ice-detention-stats@latest)")
    return dataset, (ref if sep and ref else default_ref)
