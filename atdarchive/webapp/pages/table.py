"""`/datasets/{dataset}/releases/{ref}/tables/{table}`: a table as a release published
it, each cell coloured by the release that last changed it (a blame heatmap, from
`Archive.blame`), a click showing the value, the previous value, how often it was
revised and its source cell."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pyarrow as pa
import pyarrow.compute as pc

from atdarchive.blame import META
from atdarchive.webapp.pages.base import (
    NotFound,
    Page,
    PageBudget,
    Query,
    Site,
    cell_path,
    crumbs,
    int_param,
    page,
    release_ref,
    release_url,
    row_query,
    table_url,
)

HEAT_LEVELS = 8  # CSS classes h0 (oldest release) .. h7 (this release)
DEFAULT_LIMIT = 1000  # rows; at most serve.max_rows_per_page, and their cells at most
# serve.max_cells_per_page


@page("/datasets/{dataset}/releases/{ref}/tables/{table}", "table")
def table(site: Site, query: Query, dataset: str, ref: str, table: str) -> Page:
    dataset = site.dataset(dataset)
    entry = site.entry(dataset, ref)
    if table not in entry.record.get("tables", {}):
        raise NotFound(f"{dataset}@{entry.short} has no table {table!r}")
    offset = int_param(query, "offset", 0)
    width = entry.record["tables"][table].get("columns")
    budget = PageBudget(site)
    limit = budget.take(int_param(query, "limit", DEFAULT_LIMIT),
                        width=width if isinstance(width, int) else 1, rows=True)
    data = site.cached(dataset, ("table", entry.id, table, offset, limit),
                       lambda: _table_data(site, dataset, entry, table, offset, limit))
    return Page("table.html", f"{table} at {entry.published}", data,
                crumbs(dataset, (f"{entry.published} {entry.short}",
                                 release_url(dataset, entry.id)),
                       (table, table_url(dataset, entry.id, table))))


def _table_data(site: Site, dataset: str, entry: Any, table: str, offset: int,
                limit: int) -> dict[str, Any]:
    retracted = site.archive.history(dataset, include_retracted=True).retracted(entry.id)
    blame = site.archive.blame(f"{dataset}@{entry.id}", table=table,
                               include_retracted=bool(retracted))
    meta = json.loads(blame.schema.metadata[META])
    series = site.archive.history(dataset, include_retracted=bool(retracted)).channel(
        entry.channel)
    ids = [e.id for e in series]
    series = series[: ids.index(entry.id) + 1] if entry.id in ids else [entry]
    grid = _grid(blame, meta.get("key") or [], series, offset, limit)
    per_release = grid.pop("per_release")
    releases = [{**release_ref(e), "heat": _heat(i, len(series)),
                 "cells": per_release.get(i, 0)} for i, e in enumerate(series)]
    for row in grid["rows"]:
        row["key_query"] = urlencode(row_query(row["key"], entry.channel))
    tmeta = entry.record["tables"][table]
    return {"dataset": dataset, "release": release_ref(entry), "table": table,
            "title": tmeta.get("title", ""), "sheet": tmeta.get("sheet"),
            "key": meta.get("key"), "key_source": meta.get("key_source"),
            "permalink": table_url(dataset, entry.id, table), "releases": releases,
            "cell_base": cell_path(dataset, table),
            "offset": offset, "limit": limit, **grid}


def _heat(position: int, count: int) -> int:
    return round(position * (HEAT_LEVELS - 1) / max(1, count - 1)) if count > 1 \
        else HEAT_LEVELS - 1


def _grid(blame: pa.Table, key: list[str], series: list[Any], offset: int,
          limit: int) -> dict[str, Any]:
    """The blame table pivoted to rows x columns (the page's slice of rows), column-wise
    until the cells of the slice are turned into records."""
    columns = pc.unique(blame["column"].cast(pa.string())).to_pylist()
    col = pc.index_in(blame["column"].cast(pa.string()), pa.array(columns, pa.string()))
    rows = blame["row"]
    total = int(pc.max(rows).as_py()) + 1 if blame.num_rows else 0
    wanted = pc.and_(pc.greater_equal(rows, offset), pc.less(rows, offset + limit))
    part = blame.filter(wanted)
    col = pc.filter(col, wanted)
    position = pc.index_in(part["snapshot"].cast(pa.string()),
                           pa.array([e.id for e in series], pa.string()))
    n_shown = max(0, min(limit, total - offset))
    width = len(columns)
    cells: list[dict[str, Any] | None] = [None] * (n_shown * width)
    per_release: dict[int, int] = {}
    count = len(series)
    for r, c, value, previous, revisions, source, pos, short, published in zip(
            part["row"].to_pylist(), col.to_pylist(), part["value"].to_pylist(),
            part["previous"].to_pylist(), part["revisions"].to_pylist(),
            part["source_cell"].to_pylist(), position.to_pylist(),
            part["short_id"].to_pylist(), part["published"].to_pylist(), strict=True):
        per_release[pos] = per_release.get(pos, 0) + 1
        cells[(r - offset) * width + c] = {
            "value": value, "previous": previous, "revisions": revisions,
            "source_cell": source, "release": short, "published": published,
            "position": pos, "heat": _heat(pos, count) if pos is not None else None}
    key_names = [f"key:{k}" if f"key:{k}" in blame.column_names else k for k in key]
    first = part.filter(pc.equal(col, 0)) if width else part
    keys = {r: {k: v for k, v in zip(key, vals, strict=True)}
            for r, *vals in zip(first["row"].to_pylist(),
                                *(first[n].to_pylist() for n in key_names), strict=True)}
    out_rows = []
    for i in range(n_shown):
        r = offset + i
        row_cells = [c or {"value": None, "heat": None, "position": None}
                     for c in cells[i * width:(i + 1) * width]]
        ident = keys.get(r) if key else None
        if not ident:  # keyless: the row is named by its first value
            ident = {columns[0]: row_cells[0]["value"]} if columns else {}
        out_rows.append({"row": r, "key": {k: "" if v is None else str(v)
                                           for k, v in ident.items()}, "cells": row_cells})
    return {"columns": columns, "rows": out_rows, "total_rows": total,
            "per_release": per_release}
