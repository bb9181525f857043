"""`/datasets/{dataset}/tables/{table}/cell?row=K=V&column=C`: one cell in every
release (`Archive.history_of`), as a chart over releases and as a table of values,
statuses and source cells."""

from __future__ import annotations

import math
from typing import Any

from atdarchive.util import number
from atdarchive.webapp.pages.base import (
    BadRequest,
    Page,
    Query,
    Site,
    cell_url,
    crumbs,
    diff_url,
    page,
    release_url,
    table_url,
)

WIDTH, HEIGHT, PAD = 640, 240, 48


@page("/datasets/{dataset}/tables/{table}/cell", "cell")
def cell(site: Site, query: Query, dataset: str, table: str) -> Page:
    dataset = site.dataset(dataset)
    row: dict[str, str] = {}
    for spec in query.getlist("row"):
        name, sep, value = spec.partition("=")
        if not sep or not name:
            raise BadRequest(f"?row={spec!r}: expected COLUMN=VALUE")
        row[name] = value
    column = query.get("column")
    if not row or not column:
        raise BadRequest("a cell is named by ?row=COLUMN=VALUE (one per key column) and ?column=")
    channel = query.get("channel") or "public"
    history = site.cached(dataset, ("cell", table, tuple(row.items()), column, channel),
                          lambda: site.archive.history_of(dataset, table=table, row=row,
                                                          column=column, channel=channel))
    values = []
    previous_id = None
    for item in history.to_pylist():
        values.append({**item, "number": _numeric(item["value"]),
                       "url": release_url(dataset, item["snapshot"]),
                       "diff_url": diff_url(dataset, previous_id, item["snapshot"], table)
                       if previous_id and item["status"] == "changed" else None})
        previous_id = item["snapshot"]
    data = {"dataset": dataset, "table": table, "row": row, "column": column,
            "channel": channel, "permalink": cell_url(dataset, table, row, column, channel),
            "values": values,
            "revisions": sum(v["status"] == "changed" for v in values)}
    label = ", ".join(f"{k}={v}" for k, v in row.items())
    return Page("cell.html", f"{table}: {label}, {column}", data,
                crumbs(dataset, (table, table_url(dataset, "latest", table)),
                       (f"{label} \u00b7 {column}", data["permalink"])),
                {**data, "chart": chart(values)})


def chart(values: list[dict[str, Any]]) -> dict[str, Any]:
    """Points and axis ticks of the value over releases (an inline SVG, no script)."""
    numbers = [v["number"] for v in values if v["number"] is not None
               and math.isfinite(v["number"])]
    if not numbers:
        return {"points": [], "width": WIDTH, "height": HEIGHT}
    low, high = min(numbers), max(numbers)
    if low == high:
        low, high = low - 1, high + 1
    step = (WIDTH - 2 * PAD) / max(1, len(values) - 1)

    def y(v: float) -> float:
        return round(HEIGHT - PAD - (v - low) / (high - low) * (HEIGHT - 2 * PAD), 1)

    points = [{"x": round(PAD + i * step, 1), "y": y(v["number"]), "value": v["value"],
               "published": v["published"], "status": v["status"]}
              for i, v in enumerate(values) if v["number"] is not None
              and math.isfinite(v["number"])]
    return {"points": points, "width": WIDTH, "height": HEIGHT, "pad": PAD,
            "line": " ".join(f"{p['x']},{p['y']}" for p in points),
            "ticks": [{"y": y(t), "label": number(t)} for t in (low, (low + high) / 2, high)]}


def _numeric(text: str | None) -> float | None:
    try:
        return float(text.replace(",", "")) if text else None
    except ValueError:
        return None
