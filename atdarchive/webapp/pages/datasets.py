"""`/`: the datasets of the archive, each with its releases and channels."""

from __future__ import annotations

from atdarchive.webapp.pages.base import Page, Query, Site, audit_url, page, timeline_url


@page("/", "datasets")
def datasets(site: Site, query: Query) -> Page:
    rows = []
    for name in site.archive.dataset_names():
        config = site.archive.dataset(name)
        history = site.archive.history(name)
        latest = max(history.publication_order(), key=lambda e: e.order_key(), default=None)
        rows.append({"name": name, "title": config.title, "agency": config.agency,
                     "source_url": config.source_url, "releases": len(history.entries),
                     "channels": history.channels(),
                     "latest": latest.published if latest else None,
                     "url": timeline_url(name), "audit_url": audit_url(name)})
    return Page("datasets.html", "Datasets", {"archive": str(site.archive.root),
                                              "datasets": rows})
