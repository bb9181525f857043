"""One-line change summaries between a snapshot and its parent (for commit and log).

Tables whose content fingerprints match are unchanged without reading them;
only changed tables go through the diff engine.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from atdarchive.context import ArchiveContext
from atdarchive.errors import AtdError
from atdarchive.util import atomic_write

if TYPE_CHECKING:
    from atdarchive.snapshot import Snapshot

COUNTS = ("rows_added", "rows_removed", "rows_changed", "cells_changed", "schema_changes")


def summarize(parent: Snapshot | None, snapshot: Snapshot | None,
              cache_dir: Path | None = None) -> dict[str, Any]:
    """Counts of what changed from `parent` to `snapshot`, summed over tables.

    Tables with equal content fingerprints are skipped unread; the others go
    through the diff engine (its fast path when fingerprints are in `cache_dir`).
    """
    if parent is None or snapshot is None:
        return {"against": None}
    from atdarchive.diff import diff_snapshots, diff_tables

    old, new = parent.record["tables"], snapshot.record["tables"]
    summary: dict[str, Any] = {
        "against": parent.id,
        "tables_added": sorted(set(new) - set(old)),
        "tables_removed": sorted(set(old) - set(new)),
        "tables_changed": [],
        **dict.fromkeys(COUNTS, 0),
    }
    for name in sorted(set(old) & set(new)):
        if old[name]["fingerprint"] == new[name]["fingerprint"]:
            continue
        try:
            table_diff = diff_snapshots(parent, snapshot, table=name,
                                        cache_dir=cache_dir).tables[name]
        except AtdError:  # a declared key the agency broke: summarise as rows, not keys
            table_diff = diff_tables(parent.table(name), snapshot.table(name), name=name)
        if table_diff.is_empty():
            continue
        summary["tables_changed"].append(name)
        for count in COUNTS:
            summary[count] += table_diff.counts.get(count, 0)
    summary["identical"] = not (summary["tables_added"] or summary["tables_removed"]
                                or summary["tables_changed"])
    return summary


def summary_against(archive: ArchiveContext, record: dict[str, Any],
                    parent_id: str | None) -> dict[str, Any]:
    """The summary against the *current* parent: the record's own unless a backfill
    changed the parent, then computed once and cached (derived, rebuildable)."""
    stored = record.get("summary", {})
    if stored.get("against") == parent_id or stored.get("evidence_only"):
        return stored
    if parent_id is None:
        return {"against": None}
    cache = archive.layout.summaries / f"{parent_id}-{record['id']}.json"
    try:
        return json.loads(cache.read_text())
    except (FileNotFoundError, ValueError):
        pass
    dataset = record["dataset"]
    parent = archive.snapshot_of(archive.history(dataset).by_id[parent_id].record)
    summary = summarize(parent, archive.snapshot_of(record), archive.layout.fingerprints)
    cache.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(cache, json.dumps(summary).encode())
    return summary


def describe(summary: dict[str, Any]) -> str:
    """`+3 −1 rows, 47 cells changed in 2 tables` — the one-line form."""
    if summary.get("evidence_only"):
        return "evidence only: no reader could parse it"
    if summary.get("against") is None:
        return "first snapshot"
    if summary.get("identical"):
        return f"identical content to {summary['against'][:10]}"
    parts = [f"+{summary['rows_added']} −{summary['rows_removed']} rows",
             f"{summary['cells_changed']} cells changed"]
    if summary["tables_changed"]:
        parts[-1] += f" in {len(summary['tables_changed'])} table(s)"
    if summary["tables_added"]:
        parts.append(f"{len(summary['tables_added'])} table(s) added")
    if summary["tables_removed"]:
        parts.append(f"{len(summary['tables_removed'])} table(s) removed")
    if summary["schema_changes"]:
        parts.append(f"{summary['schema_changes']} schema change(s)")
    return ", ".join(parts)
