"""`/datasets/{dataset}/diff/{a}..{b}`: what changed between two releases — cells
old -> new, rows added and removed, schema changes, the key in use — from
`Archive.diff`, whose JSON document (`diff --format json`) is the page's twin."""

from __future__ import annotations

import dataclasses
from urllib.parse import urlencode

from atdarchive.diff.types import SnapshotDiff
from atdarchive.render.diff_json import to_json_obj
from atdarchive.render.diff_records import as_snapshot_diff
from atdarchive.webapp.pages.base import (
    BadRequest,
    NotFound,
    Page,
    PageBudget,
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
    """The diff as Arrow tables is computed once and cached (bounded by bytes); a page
    turns only its slice — ?offset= and ?limit= per table, within the page's budget of
    cells and rows — into records."""
    dataset = site.dataset(dataset)
    a, sep, b = span.partition("..")
    if not sep or not a or not b:
        raise BadRequest(f"{span!r}: a diff is named A..B (two refs)")
    old, new = site.entry(dataset, a), site.entry(dataset, b)
    table = query.get("table") or None
    if table and table not in {**old.record.get("tables", {}), **new.record.get("tables", {})}:
        raise NotFound(f"neither release has a table {table!r}")
    most = int(site.limit("serve.max_cells_per_page"))
    wanted = int_param(query, "limit", most if query.get("format") == "json"
                       else SHOWN_PER_TABLE)
    limit = min(wanted, most)
    offset = int_param(query, "offset", 0)
    whole = as_snapshot_diff(site.cached(dataset, ("diff", old.id, new.id, table),
                                         lambda: site.archive.diff(f"{dataset}@{old.id}",
                                                                   f"{dataset}@{new.id}",
                                                                   table=table)))
    shown, budget = _page_of(whole, offset, limit, PageBudget(site))
    document = to_json_obj(shown)
    tables = []
    for name, td in sorted(document["tables"].items(),
                           key=lambda kv: (-sum(kv[1]["counts"].values()), kv[0])):
        if not any(td["counts"].values()) and not table:
            continue
        cells = [{**c, "url": cell_url(dataset, name, {k: "" if v is None else v
                                                       for k, v in c["key"].items()},
                                       c["column"], new.channel) if c["key"] else None}
                 for c in td["cells_changed"]]
        total = whole.tables[name].cells_changed.num_rows
        focus = diff_url(dataset, old.id, new.id, name)
        lengths = {"cells_changed": len(cells), **{k: len(td[k]) for k in LISTS[1:]}}
        behind = [n for k, n in lengths.items()
                  if offset + n < getattr(whole.tables[name], k).num_rows]
        step = max(1, min(behind)) if behind else 0  # nothing skipped on the next page
        tables.append({"name": name, "key": td["key"], "key_source": td["key_source"],
                       "counts": td["counts"], "notes": td["notes"],
                       "schema_changes": td["schema_changes"], "cells": cells,
                       "cells_before": min(offset, total),
                       "cells_hidden": max(0, total - offset - len(cells)),
                       "rows_added": td["rows_added"], "rows_removed": td["rows_removed"],
                       "rows_renamed": td["rows_renamed"],
                       "new_url": table_url(dataset, new.id, name)
                       if name in new.record.get("tables", {}) else None,
                       "focus_url": focus,
                       "next_url": f"{focus}&{urlencode({'offset': offset + step, 'limit': limit})}"
                       if step else None})
    channels = None if old.channel == new.channel else [old.channel, new.channel]
    added = [{"name": t, "url": table_url(dataset, new.id, t)} for t in document["tables_added"]]
    data = {"dataset": dataset, "a": release_ref(old), "b": release_ref(new), "table": table,
            "across_channels": channels,
            "permalink": diff_url(dataset, old.id, new.id, table),
            "page": {"offset": offset, "limit": limit, "complete": offset == 0 and not budget.cut,
                     "max_cells_per_page": most,
                     "max_rows_per_page": int(site.limit("serve.max_rows_per_page"))},
            "diff": document}
    view = {**data, "tables": tables, "tables_added": added, "limit": limit,
            "clamped": wanted > limit}
    return Page("diff.html", f"{dataset}: {old.published} \u2192 {new.published}", data,
                crumbs(dataset, (f"{old.published} \u2192 {new.published}", data["permalink"])),
                view)


LISTS = ("cells_changed", "rows_added", "rows_removed", "rows_renamed")


def _page_of(whole: SnapshotDiff, offset: int, limit: int,
             budget: PageBudget) -> tuple[SnapshotDiff, PageBudget]:
    """WHOLE with each table's lists cut to [offset, offset + limit) and to what the
    page's budget still allows (tables with the most changes first, as shown)."""
    order = sorted(whole.tables.items(), key=lambda kv: (-sum(kv[1].counts.values()), kv[0]))
    tables = {}
    for name, td in order:
        cut = {}
        for what in LISTS:
            rows = getattr(td, what)
            available = max(0, rows.num_rows - offset)
            wanted = min(available, limit)
            if what in ("rows_added", "rows_removed"):
                n = budget.take(wanted, width=rows.num_columns, rows=True)
            else:
                n = budget.take(wanted)
            budget.cut = budget.cut or n < available
            cut[what] = rows.slice(min(offset, rows.num_rows), n)
        dups = td.duplicate_keys[:budget.take(min(limit, len(td.duplicate_keys)))]
        tables[name] = dataclasses.replace(td, **cut, duplicate_keys=dups)
    ordered = {name: tables[name] for name in whole.tables}
    return dataclasses.replace(whole, tables=ordered), budget
