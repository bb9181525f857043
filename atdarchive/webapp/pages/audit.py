"""`/datasets/{dataset}/audit`: the forensic audit (`Archive.audit`), the most
significant findings first, each linking to its release, the diff it rests on and
the cells it names."""

from __future__ import annotations

from atdarchive.checks.base import SEVERITIES
from atdarchive.webapp.pages.base import (
    BadRequest,
    Page,
    Query,
    Site,
    audit_url,
    crumbs,
    page,
    release_url,
)
from atdarchive.webapp.pages.findings import finding_view

HEADLINE = 5


@page("/datasets/{dataset}/audit", "audit")
def audit(site: Site, query: Query, dataset: str) -> Page:
    dataset = site.dataset(dataset)
    severity = query.get("severity") or None
    if severity and severity not in SEVERITIES:
        raise BadRequest(f"?severity={severity!r}: one of {', '.join(SEVERITIES)}")
    report = site.audit(dataset)
    ranked = sorted(report.findings, key=lambda f: (-f.score, f.published, f.kind))
    if severity:
        ranked = [f for f in ranked if f.severity == severity]
    findings = [finding_view(dataset, f) for f in ranked]
    data = {"dataset": dataset, "permalink": audit_url(dataset), "severity": severity,
            "counts": report.counts(),
            "releases": [{**r, "url": release_url(dataset, r["id"])} for r in report.releases],
            "headline": HEADLINE, "findings": findings}
    return Page("audit.html", f"{dataset}: audit", data,
                crumbs(dataset, ("audit", audit_url(dataset))))
