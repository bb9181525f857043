"""A finding as the pages show it: the library's `Finding`, plus links to the release,
table, diff and cells it is about (shared by the release and audit pages)."""

from __future__ import annotations

from typing import Any

from atdarchive.webapp.pages.base import cell_url, diff_url, release_url, table_url

MAX_CELL_LINKS = 25


def finding_view(dataset: str, finding: Any) -> dict[str, Any]:
    """`Finding.to_json()` with `links`: release, table, diff, and one per cell named."""
    view = finding.to_json()
    evidence = finding.evidence
    links: dict[str, Any] = {"release": release_url(dataset, finding.snapshot)}
    if finding.table:
        links["table"] = table_url(dataset, finding.snapshot, finding.table)
    other = evidence.get("other_snapshot")
    if other:
        links["diff"] = diff_url(dataset, other, finding.snapshot, finding.table)
    cells = []
    for item in _cell_items(evidence):
        table = item.get("table") or finding.table
        if not table or len(cells) >= MAX_CELL_LINKS:
            continue
        cells.append({"row": item["row"], "column": item["column"], "old": item.get("old"),
                      "new": item.get("new"), "cell": item.get("new_cell") or item.get("cell"),
                      "url": cell_url(dataset, table, item["row"], item["column"],
                                      finding.channel)})
    links["cells"] = cells
    view["links"] = links
    view["facts"] = {k: v for k, v in evidence.items()
                     if isinstance(v, str | int | float | bool) and k != "other_channel"}
    return view


def _cell_items(evidence: dict[str, Any]) -> list[dict[str, Any]]:
    """Evidence entries naming one cell: a `row` (its key) and a `column`."""
    return [item for value in evidence.values() if isinstance(value, list)
            for item in value if isinstance(item, dict) and isinstance(item.get("row"), dict)
            and isinstance(item.get("column"), str) and item["row"]]
