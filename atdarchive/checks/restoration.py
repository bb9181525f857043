"""`restoration`: a release that puts back the values of an earlier one.

After a bad release, the agency may post again the values of the last good one. A
cell revised against the parent back to the value it had before the parent changed it
(the grandparent's value), when that change was sizeable (5% and 10 or more), is restored:
reported once per table, naming the release it restores, and not counted again as a
revision (`silent_revision` leaves it out).
"""

from __future__ import annotations

from typing import Any

from atdarchive.checks import register
from atdarchive.checks.base import Finding, Release, finding, other, row_name

#: Smallest size of the change undone (relative, and absolute): values that flip by a
#: unit or two and back (a count of 10 -> 11 -> 10, an average recomputed) are
#: revisions, not a bad release put right.
MIN_SHARE = 0.05
MIN_SIZE = 10.0


def _sizeable(change: dict[str, Any]) -> bool:
    rel, size = change.get("rel_change"), change.get("abs_change")
    return (rel is None or abs(rel) >= MIN_SHARE) and (size is None or abs(size) >= MIN_SIZE)


def cell_key(cell: dict[str, Any]) -> tuple[Any, ...]:
    """A changed cell's identity across releases: its row key values and column."""
    return (*(cell.get("row") or {}).values(), cell["column"])


@register("restoration", "restoration", "warning", order=45)
def check(release: Release) -> list[Finding]:
    """Revisions that undo the previous release's revisions."""
    aud, entry, parent, pair = release.auditor, release.entry, release.parent, release.pair
    if parent is None or pair is None:
        return []
    grand = aud.history.parent(parent.id)
    if grand is None:
        return []
    out = []
    restored: dict[str, set[tuple[str, str]]] = release.notes.setdefault("restored", {})
    before = None
    for name, tab in pair["tables"].items():
        if not tab.get("revisions") or not tab.get("key"):
            continue
        before = before or aud.pair(grand, parent)
        earlier = before["tables"].get(name)
        if not earlier or not earlier.get("revisions"):
            continue
        undone = {cell_key(c): c for c in earlier.get("cells") or []}
        back = [c for c in tab.get("cells") or []
                if cell_key(c) in undone and undone[cell_key(c)]["old"] == c["new"]
                and _sizeable(undone[cell_key(c)])]
        if not back:
            continue
        restored[name] = {cell_key(c) for c in back}
        top = back[0]
        row = row_name(top)
        out.append(finding(
            "restoration", entry, name, "warning",
            f"{entry.published}: {name}: {len(back)} value(s) put back as they were in "
            f"{grand.short} ({grand.published}) after {parent.short} ({parent.published}) "
            f"had changed them, e.g. {row} {top['column']} {top['old']} -> {top['new']}",
            {**other(parent), "restores_snapshot": grand.id,
             "restores_published": grand.published, "cells_restored": len(back),
             "changes": [{**c, "value_before": undone[cell_key(c)]["old"]}
                         for c in back[:50]]},
            magnitude=sum(abs(c.get("abs_change") or 0) for c in back)))
    return out
