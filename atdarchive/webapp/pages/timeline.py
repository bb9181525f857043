"""`/datasets/{dataset}`: releases in publication order per channel, with what the
audit flagged, the dates each states and reaches, checks, retractions, notes and
watch events; two radio columns pick the releases to diff."""

from __future__ import annotations

from typing import Any

from atdarchive.webapp.pages.base import (
    Page,
    Query,
    Site,
    audit_url,
    crumbs,
    page,
    release_url,
    timeline_url,
)


@page("/datasets/{dataset}", "timeline")
def timeline(site: Site, query: Query, dataset: str) -> Page:
    dataset = site.dataset(dataset)
    config = site.archive.dataset(dataset)
    log = site.cached(dataset, ("log",), lambda: site.archive.log(dataset))
    audited = {r["id"]: r for r in site.audit(dataset).releases}
    history = site.archive.history(dataset, include_retracted=True)
    channels: dict[str, list[dict[str, Any]]] = {}
    for row in reversed(log):  # log is newest first; a timeline reads oldest first
        record = row["record"]
        release = audited.get(row["id"], {})
        channels.setdefault(record["channel"], []).append({
            "id": row["id"], "short_id": row["short_id"], "published": record["published"],
            "published_source": record.get("published_source"),
            "original": record["original"]["name"], "message": record.get("message", ""),
            "tables": len(record.get("tables", {})), "tags": row["tags"],
            "stated_latest": _latest(record.get("stated_dates") or []),
            "data_reaches": release.get("latest_stated"),
            "claimed": release.get("claimed", {}),
            "severity": release.get("severity"), "flags": release.get("flags", []),
            "findings": release.get("findings", 0),
            "summary": row["summary"], "checks": len(row["checks"]),
            "last_checked": max((c.get("fetched_at", "") for c in row["checks"]), default=None),
            "retracted": row["retracted"], "annotations": row["annotations"],
            "evidence_only": "parse_error" in record,
            "url": release_url(dataset, row["id"]),
        })
    watch = [{"at": w.get("at"), "kind": w.get("kind"), "url": w.get("url"),
              "reason": w.get("reason"), "about": w.get("about"),
              "about_url": release_url(dataset, w["about"]) if w.get("about") else None}
             for w in history.watch_events]
    data = {"dataset": dataset, "title": config.title, "agency": config.agency,
            "source_url": config.source_url, "channels": channels, "watch_events": watch,
            "audit_url": audit_url(dataset), "diff_form": f"{timeline_url(dataset)}/diff"}
    return Page("timeline.html", f"{dataset}: timeline", data,
                crumbs(dataset))


def _latest(stated: list[dict[str, Any]]) -> str | None:
    return max((s["date"] for s in stated if s.get("date")), default=None)
