"""`/datasets/{dataset}/diff/{a}..{b}`: what changed between two releases — cells
old -> new, rows added and removed, schema changes, the key in use — from
`Archive.diff`, whose JSON document (`diff --format json`) is the page's twin."""

from __future__ import annotations

from typing import Any

from atdarchive.webapp.pages.base import (
    BadRequest,
    NotFound,
    Page,
    Query,
    Redirect,
    Site,
    cell_url,
    crumbs,
    diff_url,
    int_param,
    page,
    release_ref,
    table_url,
)

SHOWN_PER_TABLE = 200


@page("/datasets/{dataset}/diff", "diff_form")
def pick(site: Site, query: Query, dataset: str) -> Page:
    """The timeline's form (?a=&b=) answered with the permalink of the pair, older first."""
    dataset = site.dataset(dataset)
    a, b = query.get("a"), query.get("b")
    if not a or not b:
        raise BadRequest("pick two releases to compare (?a=REF&b=REF)")
    old, new = sorted((site.entry(dataset, a), site.entry(dataset, b)),
                      key=lambda e: e.order_key())
    raise Redirect(diff_url(dataset, old.id, new.id, query.get("table") or None))


@page("/datasets/{dataset}/diff/{span}", "diff")
def diff(site: Site, query: Query, dataset: str, span: str) -> Page:
    dataset = site.dataset(dataset)
    a, sep, b = span.partition("..")
    if not sep or not a or not b:
        raise BadRequest(f"{span!r}: a diff is named A..B (two refs)")
    old, new = site.entry(dataset, a), site.entry(dataset, b)
    table = query.get("table") or None
    if table and table not in {**old.record.get("tables", {}), **new.record.get("tables", {})}:
        raise NotFound(f"neither release has a table {table!r}")
    limit = int_param(query, "limit", SHOWN_PER_TABLE)
    document = site.cached(dataset, ("diff", old.id, new.id, table),
                           lambda: _document(site, dataset, old.id, new.id, table))
    tables = []
    for name, td in sorted(document["tables"].items(),
                           key=lambda kv: (-sum(kv[1]["counts"].values()), kv[0])):
        if not any(td["counts"].values()) and not table:
            continue
        cells = [{**c, "url": cell_url(dataset, name, {k: "" if v is None else v
                                                       for k, v in c["key"].items()},
                                       c["column"], new.channel) if c["key"] else None}
                 for c in td["cells_changed"][:limit]]
        tables.append({"name": name, "key": td["key"], "key_source": td["key_source"],
                       "counts": td["counts"], "notes": td["notes"],
                       "schema_changes": td["schema_changes"], "cells": cells,
                       "cells_hidden": max(0, len(td["cells_changed"]) - limit),
                       "rows_added": td["rows_added"][:limit],
                       "rows_removed": td["rows_removed"][:limit],
                       "rows_renamed": td["rows_renamed"][:limit],
                       "new_url": table_url(dataset, new.id, name)
                       if name in new.record.get("tables", {}) else None,
                       "focus_url": diff_url(dataset, old.id, new.id, name)})
    channels = None if old.channel == new.channel else [old.channel, new.channel]
    added = [{"name": t, "url": table_url(dataset, new.id, t)} for t in document["tables_added"]]
    data = {"dataset": dataset, "a": release_ref(old), "b": release_ref(new), "table": table,
            "across_channels": channels,
            "permalink": diff_url(dataset, old.id, new.id, table), "diff": document}
    view = {**data, "tables": tables, "tables_added": added, "limit": limit}
    return Page("diff.html", f"{dataset}: {old.published} \u2192 {new.published}", data,
                crumbs(dataset, (f"{old.published} \u2192 {new.published}", data["permalink"])),
                view)


def _document(site: Site, dataset: str, a: str, b: str, table: str | None) -> dict[str, Any]:
    from atdarchive.render.diff_json import to_json_obj

    return to_json_obj(site.archive.diff(f"{dataset}@{a}", f"{dataset}@{b}", table=table))
