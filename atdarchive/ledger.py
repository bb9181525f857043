"""The ledger: a dataset's append-only, hash-chained history of events.

One JSON object per line. Each line carries `prev`, the sha256 of the line
before it (the first carries GENESIS), so editing, reordering or deleting any
line breaks the chain. Events: `snapshot` (a snapshot record), `tag` (a name
given to a snapshot) and `check` (a fetch that found the publication unchanged).
The line is the commit point of a snapshot: it is appended last.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from atdarchive.errors import IntegrityError
from atdarchive.util import canonical_json, sha256_bytes

GENESIS = "0" * 64


@dataclass(frozen=True)
class ChainProblem:
    line: int
    problem: str


class Ledger:
    """Reads and appends one dataset's `ledger.jsonl`."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _lines(self) -> list[bytes]:
        """Complete lines only: a torn last line (no newline) is an unfinished append."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        lines = data.split(b"\n")
        return [line for line in lines[:-1] if line]

    def events(self) -> list[dict[str, Any]]:
        out = []
        for number, line in enumerate(self._lines(), 1):
            try:
                out.append(json.loads(line))
            except ValueError:
                raise IntegrityError(
                    f"{self.path}: line {number} is not valid JSON (ledger damaged; run "
                    "'atdarchive verify')"
                ) from None
        return out

    def head(self) -> str:
        lines = self._lines()
        return sha256_bytes(lines[-1]) if lines else GENESIS

    def append(self, event: dict[str, Any]) -> dict[str, Any]:
        """Append one event with the chain hash; one write, fsynced."""
        lines = self._lines()
        event = {**event, "prev": sha256_bytes(lines[-1]) if lines else GENESIS,
                 "seq": len(lines) + 1}
        line = canonical_json(event).encode() + b"\n"
        self._drop_torn_tail()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
        return event

    def _drop_torn_tail(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            with open(self.path, "r+b") as fh:
                fh.truncate(data.rfind(b"\n") + 1)

    def verify_chain(self) -> list[ChainProblem]:
        """Every line parses, carries the previous line's hash and the next sequence number."""
        problems: list[ChainProblem] = []
        prev = GENESIS
        for number, line in enumerate(self._lines(), 1):
            try:
                event = json.loads(line)
            except ValueError:
                problems.append(ChainProblem(number, "not valid JSON"))
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
