"""`stated_date_regression`: the dates a release states about its data go backwards.

Each statement ("FY2025 YTD ICE Detention data are updated through 09/06/2025", a
table's "Data from BI Inc. Participants Report, 9.06.2025") is matched with the
parent's statement of the same wording (digits aside); one that names an older date
than the parent's is a regression (alert). The dates the data itself reaches count as
statements too (source "data": a table's latest period with values, or the latest value
of its date key), so a daily table whose latest `date_of_interest` goes back is found
without any note. A table whose values changed while its own statement — or its date
key — still names the parent's date (not monthly "through" notes or periods, which stay
while a month is counted) is a warning. One finding per release, naming every statement.
"""

from __future__ import annotations

import re
from typing import Any

from atdarchive.checks import register
from atdarchive.checks.base import Finding, Release, finding, other

DATA_DATE_KINDS = ("as_of", "data_from", "through", "run_date")


def template(text: str) -> str:
    """The wording of a statement with its numbers blanked (dates move, words stay)."""
    return re.sub(r"\d+", "#", " ".join(text.split()))


def statements(record: dict[str, Any], data: list[dict[str, Any]] = ()  # type: ignore[assignment]
               ) -> dict[tuple[str, str, str], dict[str, Any]]:
    """(table, kind, wording) -> the latest such statement of a release; `data`: the
    dates its tables reach (source "data"), one per table whatever the column."""
    out: dict[tuple[str, str, str], dict[str, Any]] = {
        (d["table"], d["kind"], "data"): d for d in data}
    for s in record.get("stated_dates") or []:
        if s.get("kind") not in DATA_DATE_KINDS or not s.get("date"):
            continue
        key = (s.get("table") or "", s["kind"], template(s.get("text") or ""))
        if key not in out or s["date"] > out[key]["date"]:
            out[key] = s
    return out


@register("stated_date_regression", "stated date regression", "alert", order=31)
def check(release: Release) -> list[Finding]:
    """Stated data dates older than the parent's, or stuck while the data changed."""
    entry, parent = release.entry, release.parent
    if parent is None:
        return []
    aud = release.auditor
    mine = statements(entry.record, aud.data_dates(entry))
    theirs = statements(parent.record, aud.data_dates(parent))
    older, stuck = [], []
    tables, ptables = entry.record["tables"], parent.record["tables"]
    for key, s in mine.items():
        before = theirs.get(key)
        if before is None:
            continue
        item = {"text": s.get("text"), "where": s.get("where"), "table": s.get("table"),
                "date": s["date"], "previous_date": before["date"],
                "previous_where": before.get("where")}
        if s["date"] < before["date"]:
            older.append(item)
        elif (s["date"] == before["date"] and s.get("table")
              and s["kind"] not in ("through", "data_period")
              and s["table"] in tables and s["table"] in ptables
              and tables[s["table"]]["fingerprint"] != ptables[s["table"]]["fingerprint"]):
            stuck.append(item)
    if not (older or stuck):
        return []
    first = (older or stuck)[0]
    if older:
        summary = (f"{entry.published}: {len(older)} stated data date(s) older than the "
                   f"previous release's: {first['text']!r} ({first['where']}) names "
                   f"{first['date']}, the previous {first['previous_date']}")
    else:
        summary = (f"{entry.published}: table {first['table']} changed but its stated date "
                   f"{first['date']} ({first['where']}) did not move")
    return [finding("stated_date_regression", entry, None if older else first["table"],
                    "alert" if older else "warning", summary,
                    {**other(parent), "older": older, "unchanged_while_data_changed": stuck},
                    magnitude=len(older) * 10 + len(stuck))]
