"""The ledger: a dataset's append-only, hash-chained history of events.

One JSON object per line. Each line carries `prev`, the sha256 of the line
before it (the first carries GENESIS), so editing, reordering or deleting any
line breaks the chain. Events: `snapshot` (a snapshot record), `tag` (a name
given to a snapshot) and `check` (a fetch that found the publication unchanged).
The line is the commit point of a snapshot: it is appended last.

A line is at most `ledger.max_line_bytes` (16 MiB; `atdarchive.limits`): a longer one is
refused before anything is written, and one already in a ledger (written by an older
version) is skipped unread by every command and reported by `verify`, so one oversized
release cannot wedge the dataset.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from atdarchive import limits
from atdarchive.events import EventProblem, Validator
from atdarchive.paths import open_nofollow
from atdarchive.util import canonical_json, sha256_bytes

GENESIS = "0" * 64
LINE_LIMIT = "ledger.max_line_bytes"


@dataclass(frozen=True)
class ChainProblem:
    line: int
    problem: str


class _Trusted:
    """What `Ledger.trusted` learnt from a ledger's first `size` bytes."""

    def __init__(self) -> None:
        self.size = 0
        self.last_line = b""
        self.lines = 0
        self.good: list[dict[str, Any]] = []
        self.problems: list[EventProblem] = []
        self.validator = Validator()


_TRUSTED: dict[tuple[str, str], _Trusted] = {}
_TRUSTED_LOCK = threading.Lock()


def _last_line(data: bytes, size: int) -> bytes:
    """The last complete line within the first SIZE bytes (each line chains the one before)."""
    if size > len(data):
        return b"\x00"  # shrunk: never equal to a real line
    return data[data.rfind(b"\n", 0, max(size - 1, 0)) + 1: size]


def _over_limit(line: bytes, limit: float) -> str | None:
    if len(line) <= limit:
        return None
    return (f"line of {limits.human(len(line), 'bytes')} is over the ledger line limit of "
            f"{limits.human(limit, 'bytes')} ({LINE_LIMIT}; raise it with "
            f"{limits.LIMITS[LINE_LIMIT].env}=N), skipped unread")


def _parse(lines: list[bytes], offset: int) -> tuple[list[tuple[int, Any]], list[EventProblem]]:
    out: list[tuple[int, Any]] = []
    problems: list[EventProblem] = []
    limit = limits.value(LINE_LIMIT)
    for number, line in enumerate(lines, offset + 1):
        if (over := _over_limit(line, limit)) is not None:
            problems.append(EventProblem(number, over))
            continue
        try:
            out.append((number, json.loads(line)))
        except (ValueError, RecursionError):
            problems.append(EventProblem(number, "not valid JSON (or nested too deep)"))
    return out, problems


class Ledger:
    """Reads and appends one dataset's `ledger.jsonl`."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _data(self) -> bytes:
        """The ledger's complete lines: a torn last line (no newline) is an unfinished append."""
        try:
            fd = open_nofollow(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return b""
        with os.fdopen(fd, "rb") as fh:
            data = fh.read()
        return data[: data.rfind(b"\n") + 1]

    def _lines(self) -> list[bytes]:
        return [line for line in self._data().split(b"\n") if line]

    def parsed(self) -> tuple[list[tuple[int, Any]], list[EventProblem]]:
        """(line number, value) of each line that parses as JSON, and the lines that do not."""
        return _parse(self._lines(), 0)

    def events(self) -> list[Any]:
        """Every line that parses, unchecked (see `trusted` for what commands may rely on)."""
        return [value for _, value in self.parsed()[0]]

    def trusted(self, dataset: str) -> tuple[list[dict[str, Any]], list[EventProblem]]:
        """The events whose shape is sound (see `atdarchive.events`), and every bad line.

        Incremental within a process: when the ledger only grew since the last
        read (same bytes up to the old end), only the appended lines are parsed
        and checked, so a long history costs a read and a hash, not a re-parse.
        """
        data = self._data()
        with _TRUSTED_LOCK:  # the web app reads ledgers from several threads
            return self._trusted(data, dataset)

    def _trusted(self, data: bytes, dataset: str
                 ) -> tuple[list[dict[str, Any]], list[EventProblem]]:
        key = (str(self.path), dataset)
        cached = _TRUSTED.get(key)
        if cached is None or _last_line(data, cached.size) != cached.last_line:
            cached = _Trusted()  # not the ledger we read before, grown: read it afresh
        tail = [line for line in data[cached.size:].split(b"\n") if line]
        if tail:
            parsed, bad = _parse(tail, cached.lines)
            good, problems = cached.validator.feed(parsed, dataset)
            cached.good += good
            cached.problems = sorted(cached.problems + bad + problems, key=lambda p: p.line)
            cached.lines += len(tail)
        cached.size, cached.last_line = len(data), _last_line(data, len(data))
        _TRUSTED[key] = cached
        return list(cached.good), list(cached.problems)

    def head(self) -> str:
        lines = self._lines()
        return sha256_bytes(lines[-1]) if lines else GENESIS

    def check_size(self, event: dict[str, Any], subject: str) -> None:
        """Refuse EVENT if its line would pass `ledger.max_line_bytes` (before anything is
        staged or written; `append` checks again)."""
        chained = {**event, "prev": GENESIS, "seq": len(self._lines()) + 1}
        limits.check(subject, LINE_LIMIT, len(canonical_json(chained).encode()),
                     detail="nothing was recorded")

    def append(self, event: dict[str, Any]) -> dict[str, Any]:
        """Append one event with the chain hash; one write, fsynced. A line over
        `ledger.max_line_bytes` is refused and nothing is written."""
        lines = self._lines()
        event = {**event, "prev": sha256_bytes(lines[-1]) if lines else GENESIS,
                 "seq": len(lines) + 1}
        line = canonical_json(event).encode() + b"\n"
        limits.check(f"{self.path.parent.name}: {event.get('type', 'event')} event",
                     LINE_LIMIT, len(line) - 1, detail="nothing was recorded")
        self._drop_torn_tail()
        fd = open_nofollow(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            written = os.write(fd, line)
            if written != len(line):  # a full disk can cut a write short
                os.ftruncate(fd, os.fstat(fd).st_size - written)
                raise OSError(28, f"{self.path}: short write ({written} of {len(line)} bytes)")
            os.fsync(fd)
        finally:
            os.close(fd)
        return event

    def _drop_torn_tail(self) -> None:
        if not self.path.exists():
            return
        fd = open_nofollow(self.path, os.O_RDWR)
        with os.fdopen(fd, "r+b") as fh:
            data = fh.read()
            if data and not data.endswith(b"\n"):
                fh.truncate(data.rfind(b"\n") + 1)

    def verify_chain(self) -> list[ChainProblem]:
        """Every line parses, carries the previous line's hash and the next sequence number."""
        problems: list[ChainProblem] = []
        prev = GENESIS
        limit = limits.value(LINE_LIMIT)
        for number, line in enumerate(self._lines(), 1):
            if _over_limit(line, limit):  # reported by `trusted`; its hash still chains
                prev = sha256_bytes(line)
                continue
            try:
                event = json.loads(line)
            except (ValueError, RecursionError):
                problems.append(ChainProblem(number, "not valid JSON"))
                prev = sha256_bytes(line)
                continue
            if not isinstance(event, dict):
                problems.append(ChainProblem(number, "not a JSON object"))
                prev = sha256_bytes(line)
                continue
            if event.get("prev") != prev:
                problems.append(ChainProblem(
                    number, "hash chain broken: the previous line was edited, removed or "
                    "reordered"))
            if event.get("seq") != number:
                problems.append(ChainProblem(
                    number, f"sequence {event.get('seq')} where {number} was expected"))
            if canonical_json(event).encode() != line:
                problems.append(ChainProblem(number, "line is not in canonical form (edited)"))
            prev = sha256_bytes(line)
        return problems
