"""Ledger events, validated: what a ledger line must say before any command trusts it.

A ledger may come from someone else's archive (DESIGN.md §15). Each line is
checked for shape — ids of 64 hex digits, names that pass the name rules,
file paths that stay inside their snapshot directory, dates that parse —
before its values reach the filesystem. A line that fails is skipped by every
command and reported by `verify` (dataset, line number, problem).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from atdarchive.errors import AtdError
from atdarchive.instants import STORED_RE, check_zone, stored
from atdarchive.paths import is_hex_id, is_safe_relpath
from atdarchive.util import check_name

KNOWN_TYPES = ("snapshot", "tag", "check", "remote_copy", "retract", "annotate", "watch")
#: What a `watch` event says happened at a source (README "Watch").
WATCH_KINDS = ("check", "failed", "no_link", "same_url_revision", "repost", "withdrawn",
               "reinstated", "page_changed")
CAPTURE_RE = re.compile(r"captures/([0-9a-f]{64})\.warc\.gz")
MAX_TEXT = 10_000  # a reason or note longer than this is not a note


@dataclass(frozen=True)
class EventProblem:
    """A ledger line that cannot be trusted: its number (1-based) and why."""

    line: int
    problem: str


def _name_ok(kind: str, value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        check_name(kind, value)
    except AtdError:
        return False
    return True


def record_problem(record: object, dataset: str) -> str | None:
    """Why a snapshot record cannot be used, or None when its shape is sound."""
    if not isinstance(record, dict):
        return "record is not a JSON object"
    if not is_hex_id(record.get("id")):
        return f"record id {str(record.get('id'))[:80]!r} is not 64 hex digits"
    if record.get("dataset") != dataset:
        return f"record names dataset {str(record.get('dataset'))[:80]!r}, not {dataset!r}"
    if not _name_ok("channel", record.get("channel")):
        return f"channel {str(record.get('channel'))[:80]!r} is not a valid name"
    published, zone = record.get("published"), record.get("published_zone")
    if not isinstance(published, str) or not STORED_RE.match(published):
        return f"published {str(published)[:40]!r} is not a normalised ISO date or date-time"
    try:
        if zone is not None:
            check_zone(zone if isinstance(zone, str) and len(zone) <= 64 else "?")
        stored(published, zone)
    except (AtdError, ValueError):
        return f"published {str(published)[:40]!r} (zone {str(zone)[:40]!r}) is not a time"
    if record.get("parent") is not None and not is_hex_id(record.get("parent")):
        return "parent is not a snapshot id"
    files = record.get("files")
    if not isinstance(files, dict) or not files:
        return "record has no file list"
    for rel, info in files.items():
        if not is_safe_relpath(rel):
            return f"file {rel[:200]!r} leaves the snapshot directory (absolute, '..', or odd)"
        if not isinstance(info, dict) or not is_hex_id(info.get("sha256")):
            return f"file {rel!r} has no sha256"
    original = record.get("original")
    if not isinstance(original, dict) or original.get("file") not in files:
        return "original file is not in the record's file list"
    if record.get("capture") is not None and record["capture"] not in files:
        return "capture file is not in the record's file list"
    tables = record.get("tables")
    if not isinstance(tables, dict):
        return "tables is not a JSON object"
    for name, meta in tables.items():
        if not _name_ok("table", name):
            return f"table name {name[:200]!r} is not a valid name"
        if not isinstance(meta, dict) or meta.get("file") not in files:
            return f"table {name!r}: its file is not in the record's file list"
        if meta.get("rows_file") is not None and meta["rows_file"] not in files:
            return f"table {name!r}: its rows file is not in the record's file list"
    return None


def event_problem(event: object, dataset: str, seq: int) -> str | None:
    """Why one parsed ledger line cannot be trusted, or None."""
    if not isinstance(event, dict):
        return "not a JSON object"
    kind = event.get("type")
    if kind not in KNOWN_TYPES:
        return f"unknown event type {str(kind)[:40]!r}"
    if event.get("seq") != seq:
        return f"sequence {str(event.get('seq'))[:20]} where {seq} was expected"
    if kind == "snapshot":
        return record_problem(event.get("record"), dataset)
    if kind == "tag":
        if not _name_ok("tag", event.get("name")):
            return f"tag name {str(event.get('name'))[:80]!r} is not a valid name"
        if not is_hex_id(event.get("target")):
            return "tag target is not a snapshot id"
    elif kind == "check":
        if not is_hex_id(event.get("snapshot")) or not isinstance(event.get("fetch"), dict):
            return "check event without a snapshot id and fetch evidence"
    elif kind == "remote_copy" and not is_hex_id(event.get("snapshot")):
        return "remote copy event without a snapshot id"
    elif kind == "watch":
        return watch_problem(event)
    elif kind in ("retract", "annotate"):
        field = "reason" if kind == "retract" else "note"
        text = event.get(field)
        if not is_hex_id(event.get("snapshot")):
            return f"{kind} event without a snapshot id"
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT:
            return f"{kind} event without a {field} (or one over {MAX_TEXT} characters)"
        if not isinstance(event.get("at"), str):
            return f"{kind} event without a time"
    return None


def watch_problem(event: dict[str, Any]) -> str | None:
    """Why a `watch` event cannot be trusted: its kind, source id, snapshot and capture."""
    if event.get("kind") not in WATCH_KINDS:
        return f"watch event of unknown kind {str(event.get('kind'))[:40]!r}"
    source = event.get("source")
    if not (isinstance(source, str) and len(source) == 12 and is_hex_id(source + "0" * 52)):
        return "watch event without a source id"
    if not isinstance(event.get("at"), str):
        return "watch event without a time"
    if event.get("snapshot") is not None and not is_hex_id(event.get("snapshot")):
        return "watch event naming a snapshot that is not an id"
    capture = event.get("capture")
    if capture is not None:
        match = CAPTURE_RE.fullmatch(str((capture or {}).get("file", ""))) if isinstance(
            capture, dict) else None
        if match is None or capture.get("sha256") != match.group(1):
            return "watch event capture is not captures/<sha256>.warc.gz with that digest"
    return None


class Validator:
    """Checks ledger lines in order, remembering the snapshot ids seen so far.

    Besides each line's shape it refuses references that do not resolve: a tag
    or check naming no snapshot recorded before it, and a second record with
    an id already seen.
    """

    def __init__(self, dataset: str | None = None) -> None:
        self.dataset = dataset
        self.ids: set[str] = set()

    def feed(self, events: list[tuple[int, Any]], dataset: str | None = None
             ) -> tuple[list[dict[str, Any]], list[EventProblem]]:
        """Split (line number, parsed line) pairs into trusted events and problems."""
        dataset = dataset or self.dataset or ""
        good: list[dict[str, Any]] = []
        problems: list[EventProblem] = []
        for number, event in events:
            problem = event_problem(event, dataset, number)
            if problem is None:
                problem = self._reference_problem(event)
            if problem is None:
                good.append(event)
            else:
                problems.append(EventProblem(number, problem))
        return good, problems

    def _reference_problem(self, event: dict[str, Any]) -> str | None:
        kind = event["type"]
        if kind == "snapshot":
            if event["record"]["id"] in self.ids:
                return "a second record with the same id"
            self.ids.add(event["record"]["id"])
        elif kind == "tag" and event["target"] not in self.ids:
            return "tag names no snapshot recorded before it"
        elif (kind in ("check", "remote_copy", "retract", "annotate")
              and event["snapshot"] not in self.ids) or (
                kind == "watch" and event.get("snapshot") is not None
                and event["snapshot"] not in self.ids):
            return f"{kind} event names no snapshot recorded before it"
        return None
