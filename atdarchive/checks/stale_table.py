"""`stale_table`: a table left as it was while the release moved on.

The most frequent real error (FORENSICS.md): a table's values wholly duplicated from
the previous report. A table identical to the parent's, in a release published at least
`stale_days` later in which other tables changed, is judged against its own cadence:

* its own stated date (a note "Data from ... Report, 9.06.2025", an "as of" title)
  advanced while the values stayed: alert (it claims newer data);
* its own date did not advance while the release's did: alert for as-of tables (a
  count at one moment should move), warning otherwise; monthly "through" notes are
  not stale until the release's data run a month past them;
* no date of its own: warning for as-of tables; period series only after 28 days.

Reference tables (lists of facilities, footnotes, records of one past period) may stay
as they were and are not judged.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from atdarchive.checks import register
from atdarchive.checks.base import Finding, Release, finding, other
from atdarchive.checks.stated_dates import DATA_DATE_KINDS


def _day(text: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(str(text)[:10]) if text else None
    except ValueError:
        return None


def latest_date(record: dict[str, Any], table: str | None = None) -> dt.date | None:
    """The latest data date the release (or one table's own notes) states."""
    pub = _day(record.get("published"))
    days = [_day(s.get("date")) for s in record.get("stated_dates") or []
            if s.get("kind") in DATA_DATE_KINDS and (table is None or s.get("table") == table)]
    days = [d for d in days if d and (pub is None or d <= pub + dt.timedelta(days=45))]
    return max(days) if days else None


def _own_kinds(record: dict[str, Any], table: str) -> set[str]:
    return {s.get("kind") for s in record.get("stated_dates") or [] if s.get("table") == table}


@register("stale_table", "stale table", "warning", order=25)
def check(release: Release) -> list[Finding]:
    """Tables identical to the parent's while the rest of the release moved on."""
    aud, entry, parent = release.auditor, release.entry, release.parent
    if parent is None:
        return []
    days = (_day(entry.published) - _day(parent.published)).days  # type: ignore[operator]
    tables, ptables = entry.record["tables"], parent.record["tables"]
    common = [n for n in tables if n in ptables]
    same = [n for n in common if tables[n]["fingerprint"] == ptables[n]["fingerprint"]]
    moved = len(common) - len(same)
    if days < aud.options.stale_days or not moved or moved < 0.2 * len(common):
        return []
    release_now, release_then = latest_date(entry.record), latest_date(parent.record)
    advanced = bool(release_now and release_then and release_now > release_then)
    out = []
    for name in same:
        sem = aud.semantics(entry, name)
        if sem.role == "reference":
            continue  # a list of facilities or footnotes may well stay as it was
        own_now, own_then = latest_date(entry.record, name), latest_date(parent.record, name)
        severity, why = None, ""
        if own_now and own_then and own_now > own_then:
            severity = "alert"
            why = f"its own date moved from {own_then} to {own_now} but not one value did"
        elif own_now and own_then and advanced:
            monthly = _own_kinds(entry.record, name) == {"through"}
            lag = (release_now - own_now).days  # type: ignore[operator]
            if not monthly or lag > 38:
                severity = "alert" if sem.role == "as_of" else "warning"
                why = (f"its own data date stayed {own_now} while the release's moved to "
                       f"{release_now}")
        elif own_now is None and advanced and (sem.role == "as_of" or (
                sem.role == "period_series" and days >= 28)):
            severity = "warning"
            why = f"the release's data moved from {release_then} to {release_now}"
        if severity is None:
            continue
        meta = tables[name]
        out.append(finding(
            "stale_table", entry, name, severity,
            f"{entry.published}: {name} ({sem.role}) is identical to the previous release "
            f"{parent.short} ({parent.published}, {days} days earlier); {why}",
            {**other(parent), "role": sem.role, "days_apart": days, "rows": meta.get("rows"),
             "own_date": str(own_now) if own_now else None,
             "previous_own_date": str(own_then) if own_then else None,
             "release_date": str(release_now) if release_now else None,
             "previous_release_date": str(release_then) if release_then else None,
             "tables_changed": moved, "tables_compared": len(common),
             "sheet": meta.get("sheet"), "cell_range": meta.get("cell_range")},
            magnitude=(meta.get("rows") or 0) * (meta.get("columns") or 1)))
    return out
