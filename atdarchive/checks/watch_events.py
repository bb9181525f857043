"""Findings from what `watch` saw at the agency's pages (`watch` ledger events).

`same_url_revision` (alert; info when an annotation carries the agency's notice): a
file replaced in place, new bytes under a URL already archived. `repost` (warning):
bytes already archived, served again under another name or date. `withdrawn`
(warning): a URL answering 404/410, or its link gone from the page. `reinstated`
(info): a withdrawn URL serving again. `page_changed` (info): the landing page
moved with no new file. Each finding is about the snapshot the event names, or the
release in force when it came.
"""

from __future__ import annotations

from typing import Any

from atdarchive.checks import declare
from atdarchive.checks.base import Finding, finding
from atdarchive.history import History

SEVERITY = {"same_url_revision": "alert", "repost": "warning", "withdrawn": "warning",
            "reinstated": "info", "page_changed": "info"}
LABELS = {"same_url_revision": "same-URL revision", "repost": "re-post",
          "withdrawn": "withdrawn", "reinstated": "reinstated", "page_changed": "page changed"}
for _order, (_kind, _severity) in enumerate(SEVERITY.items(), 80):
    declare(_kind, LABELS[_kind], _severity, order=_order)


def findings(history: History, channels: list[str], since: Any = None) -> list[Finding]:
    """One finding per watch event that matters, in the channels audited."""
    from atdarchive.util import published_day

    out = []
    for event in history.watch_events:
        kind = event.get("kind")
        entry = history.by_id.get(event.get("about") or "")
        if kind not in SEVERITY or entry is None or entry.channel not in channels:
            continue
        if since and published_day(event["at"]) < since:
            continue
        severity = SEVERITY[kind]
        notice = history.announced_revision(entry.id)
        if kind == "same_url_revision" and notice:
            severity = "info"
        summary = f"{event['at'][:16].replace('T', ' ')}: {event.get('reason') or kind}"
        evidence = {k: event.get(k) for k in ("at", "url", "source", "reason", "evidence",
                                               "capture") if event.get(k) is not None}
        if notice:
            evidence["notice"] = notice["note"]
        out.append(finding(kind, entry, None, severity, summary, evidence,
                           magnitude=1 if severity != "info" else 0))
    return out
