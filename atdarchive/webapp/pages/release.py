"""`/datasets/{dataset}/releases/{ref}`: one release's record and provenance, its
tables, its audit findings, what was noted about it, and its files for download."""

from __future__ import annotations

from typing import Any

from atdarchive.webapp.pages.base import (
    Page,
    Query,
    Site,
    crumbs,
    diff_url,
    download_url,
    page,
    release_ref,
    release_url,
    table_url,
)
from atdarchive.webapp.pages.findings import finding_view

PROVENANCE = ("published", "published_source", "channel", "source_url", "retrieved_at",
              "committed_at", "archivist", "reader", "message", "period")


@page("/datasets/{dataset}/releases/{ref}", "release")
def release(site: Site, query: Query, dataset: str, ref: str) -> Page:
    dataset = site.dataset(dataset)
    entry = site.entry(dataset, ref)
    record = entry.record
    history = site.archive.history(dataset, include_retracted=True)
    parent = site.archive.history(dataset).parent(entry.id)
    tables = [{"name": name, "title": meta.get("title", ""), "sheet": meta.get("sheet"),
               "cell_range": meta.get("cell_range"), "rows": meta.get("rows"),
               "columns": meta.get("columns"), "url": table_url(dataset, entry.id, name)}
              for name, meta in record.get("tables", {}).items()]
    findings = [finding_view(dataset, f) for f in site.audit(dataset).findings
                if f.snapshot == entry.id]
    downloads = [{"what": "original", "name": record["original"]["name"],
                  "size": record["original"].get("size"),
                  "sha256": record["original"].get("sha256"),
                  "url": download_url(dataset, entry.id, "original")}]
    if record.get("capture"):
        info = record["files"].get(record["capture"], {})
        downloads.append({"what": "capture", "name": "capture.warc.gz",
                          "size": info.get("size"), "sha256": info.get("sha256"),
                          "url": download_url(dataset, entry.id, "capture.warc.gz")})
    data: dict[str, Any] = {
        "dataset": dataset, "release": release_ref(entry),
        "permalink": release_url(dataset, entry.id),
        "provenance": {k: record[k] for k in PROVENANCE if record.get(k) not in (None, "")},
        "original": record["original"], "stated_dates": record.get("stated_dates", []),
        "notes": record.get("notes", []), "parse_error": record.get("parse_error"),
        "parent": release_ref(parent) if parent else None,
        "diff_parent_url": diff_url(dataset, parent.id, entry.id) if parent else None,
        "tags": sorted(t for t, i in history.tags.items() if i == entry.id),
        "retracted": history.retracted(entry.id),
        "annotations": history.annotations.get(entry.id, []),
        "events": [{k: e.get(k) for k in ("type", "kind", "at", "reason", "url")}
                   for e in history.events_about(entry.id)],
        "tables": tables, "findings": findings, "downloads": downloads,
    }
    return Page("release.html", f"{dataset}@{entry.short} ({entry.published})", data,
                crumbs(dataset, (f"{entry.published} {entry.short}",
                                 release_url(dataset, entry.id))))
