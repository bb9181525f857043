"""The diff engine: two tables (or snapshots) in, Arrow tables of changes out.

A diff is data (DESIGN §5): `TableDiff` holds Arrow tables for schema changes,
added rows, removed rows and changed cells; rendering lives in
`atdarchive.render.diff_writers`. Nothing here prints.

    types      DiffOptions, TableDiff, SnapshotDiff, the change-table schemas
    compare    value comparison (NaN == NaN, tolerances, text forms), shared by
               blame and audit
    cells      one side of a diff; changed-cell and added/removed-row tables
    keyed      key resolution (given > declared > hierarchy > inferred); rows
               matched per row by `atdarchive.identity` (repeated keys among
               themselves, renamed rows paired)
    keyless    tables without a unique key: multisets of rows, then removed
               and added rows differing in one or two cells paired into edits
    tables     diff_tables: one table's diff assembled (schema changes too)
    sources    what is read from a snapshot's record (tables, file sha256s,
               declared keys)
    snapshots  diff_snapshots: per table, only rows whose cached fingerprints
               differ are read (cost follows the size of the change)
    apply      apply_diff: the new table rebuilt from the old one and a diff
    stat       stat_snapshots: rows inserted/deleted per table from the cached
               fingerprints alone (`diff --stat`), the engine only as a fallback

The layout of each change table is described in `atdarchive.diff.types`.
Names are imported from their module on first use, so `import atdarchive.diff.stat`
(a `diff --stat`) does not pay for the engine's imports.
"""

from __future__ import annotations

import importlib
from typing import Any

#: Public name -> the module that defines it.
_HOMES = {
    "apply_diff": "atdarchive.diff.apply",
    **dict.fromkeys(("decode", "equal_mask", "occurrence_rank", "to_text"),
                    "atdarchive.diff.compare"),
    **dict.fromkeys(("PAIR_CANDIDATE_CAP", "PAIR_MAX_DIFFERING"), "atdarchive.diff.keyless"),
    "diff_snapshots": "atdarchive.diff.snapshots",
    **dict.fromkeys(("SnapshotStat", "TableStat", "stat_snapshots"), "atdarchive.diff.stat"),
    "diff_tables": "atdarchive.diff.tables",
    **dict.fromkeys(("CELL_FIELDS", "ROW_EXTRAS", "ROW_INDEX", "SCHEMA_CHANGE_KINDS",
                     "SCHEMA_CHANGES_SCHEMA", "SOURCE_ROW", "DiffOptions", "SnapshotDiff",
                     "TableDiff", "key_out_name", "summarize"), "atdarchive.diff.types"),
    **dict.fromkeys(("infer_key", "validate_key"), "atdarchive.keys"),
}
__all__ = [
    "CELL_FIELDS",
    "PAIR_CANDIDATE_CAP",
    "PAIR_MAX_DIFFERING",
    "ROW_EXTRAS",
    "ROW_INDEX",
    "SCHEMA_CHANGES_SCHEMA",
    "SCHEMA_CHANGE_KINDS",
    "SOURCE_ROW",
    "DiffOptions",
    "SnapshotDiff",
    "SnapshotStat",
    "TableDiff",
    "TableStat",
    "apply_diff",
    "decode",
    "diff_snapshots",
    "diff_tables",
    "equal_mask",
    "infer_key",
    "key_out_name",
    "occurrence_rank",
    "stat_snapshots",
    "summarize",
    "to_text",
    "validate_key",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOMES))
