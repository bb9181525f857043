"""`rows_added`: new rows of a reference table (a new facility is the news)."""

from __future__ import annotations

from atdarchive.checks import register
from atdarchive.checks.base import Finding, Release, finding, other


@register("rows_added", "rows added", "info", order=64)
def check(release: Release) -> list[Finding]:
    """Rows new in a keyed reference table (renamed rows are not new)."""
    aud, entry, parent, pair = release.auditor, release.entry, release.parent, release.pair
    if parent is None or pair is None:
        return []
    out = []
    for name, tab in pair["tables"].items():
        added = tab.get("added_count") or 0
        if not added or not tab.get("key") or aud.semantics(entry, name).role != "reference":
            continue
        examples = tab.get("added_examples") or []
        shown = "; ".join(" · ".join(str(v) for v in r.values()) for r in examples[:3])
        out.append(finding(
            "rows_added", entry, name, "info",
            f"{entry.published}: {added} new row(s) of {name}: {shown}",
            {**other(parent), "count": added, "key": tab["key"], "examples": examples},
            magnitude=added))
    return out
