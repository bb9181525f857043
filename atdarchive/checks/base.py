"""What every check shares: `Finding`, `AuditOptions`, the `Release` it looks at, scores."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from atdarchive.history import Entry, History
    from atdarchive.semantics import TableSemantics
    from atdarchive.snapshot import Snapshot

SEVERITIES = ("info", "warning", "alert")
RANK = {s: i for i, s in enumerate(SEVERITIES)}
#: Score of a finding = weight of its severity x (1 + log10(1 + magnitude)): any alert
#: outranks any warning of up to a billion-fold magnitude, and within a severity the
#: bigger evidence (cells, rows, absolute size of a change) comes first.
WEIGHT = {"info": 1.0, "warning": 10.0, "alert": 100.0}


@dataclass
class AuditOptions:
    """Thresholds of the audit (README "Thresholds and tuning")."""

    recycled_share: float = 0.90
    recycled_margin: float = 0.05
    recycled_min_rows: int = 3
    period_days: int = 45
    outlier_threshold: float = 1.0
    outlier_min_base: float = 10.0
    max_examples: int = 50
    revision_pattern: str = r"(?i)revis|correct|updat|amend|restat"
    since: str | None = None
    channels: list[str] | None = None
    stale_days: int = 7
    include_retracted: bool = False  # audit retracted releases as if still published


@dataclass
class Finding:
    """One piece of evidence about one release (and table, when it is about one)."""

    kind: str
    snapshot: str
    published: str
    table: str | None
    severity: str
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)
    channel: str = "public"
    score: float = 0.0

    @property
    def short_id(self) -> str:
        return self.snapshot[:10]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Auditor(Protocol):
    """The audit's shared caches, as checks see them."""

    options: AuditOptions
    history: History

    def snap(self, entry: Entry) -> Snapshot: ...
    def pair(self, old: Entry, new: Entry) -> dict[str, Any]: ...
    def announced(self, record: dict[str, Any]) -> bool: ...
    def semantics(self, entry: Entry, table: str) -> TableSemantics: ...


@dataclass
class Release:
    """One release under audit: its parent, the cached diff against it, and what earlier
    checks noted for later ones (e.g. the tables a restoration explains)."""

    auditor: Auditor
    entry: Entry
    parent: Entry | None
    pair: dict[str, Any] | None
    notes: dict[str, Any] = field(default_factory=dict)


def score(severity: str, magnitude: float = 0.0) -> float:
    return WEIGHT[severity] * (1.0 + math.log10(1.0 + max(0.0, magnitude)))


def finding(kind: str, entry: Entry, table: str | None, severity: str, summary: str,
            evidence: dict[str, Any], magnitude: float = 0.0) -> Finding:
    """A finding about `entry`, scored by its severity and the size of its evidence."""
    return Finding(kind, entry.id, entry.published, table, severity, summary, evidence,
                   entry.channel, round(score(severity, magnitude), 3))


def other(entry: Entry) -> dict[str, Any]:
    """Evidence naming the release compared with."""
    return {"other_snapshot": entry.id, "other_published": entry.published,
            "other_channel": entry.channel}


def row_name(cell: dict[str, Any]) -> str:
    """A changed cell's row as text ("CBP", "Atlanta · SmartLINK"), '' when keyless."""
    return " · ".join(str(v) for v in (cell.get("row") or {}).values())
