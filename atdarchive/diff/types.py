"""What a diff is: options in, `TableDiff` / `SnapshotDiff` (Arrow tables of changes) out.

`cells_changed` layout (one row per changed cell, ordered by new row then column):
    <key columns...>   key values (keyed diffs only; a key column whose name
                       clashes with a field below is prefixed `key:`)
    old_row, new_row   int64, 0-based row numbers in the old / new table
    column             str, the column name (new name for renamed columns)
    old, new           str, the value as text (null for a null cell; NaN as "nan")
    old_number, new_number  float64, the value when numeric, else null
    abs_change         float64, new - old for numbers, else null
    rel_change         float64, (new - old) / |old|, null when old is 0 or not numeric
    old_cell, new_cell str, source cell (`Sheet!C7`) when provenance is known
`rows_added` / `rows_removed`: the rows (that side's columns) plus `row_index`
(0-based row in that side's table) and `source_row` (1-based sheet row, when known).
`rows_renamed`: rows matched although their key changed slightly (truncation, case,
spacing, one typo; `atdarchive.identity`): `old_row`, `new_row`, `old_key`, `new_key`
(the key values as text, one per key column); their key cells are in `cells_changed` too.
`duplicate_keys`: key values that repeat within a release (`release` old/new, `key`,
`rows`): those rows were matched among themselves, by content, then order.
`added_values`: for columns added to rows present on both sides, their values
(so `apply_diff` can rebuild the new table); `old_row`, `new_row`, key, columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa

if TYPE_CHECKING:
    import numpy as np

SCHEMA_CHANGE_KINDS = (
    "column_added",
    "column_removed",
    "column_renamed",
    "column_reordered",
    "type_changed",
    "table_added",
    "table_removed",
)
SCHEMA_CHANGES_SCHEMA = pa.schema(
    [("change", pa.string()), ("column", pa.string()), ("old", pa.string()), ("new", pa.string())]
)
CELL_FIELDS = [
    pa.field("old_row", pa.int64()),
    pa.field("new_row", pa.int64()),
    pa.field("column", pa.string()),
    pa.field("old", pa.string()),
    pa.field("new", pa.string()),
    pa.field("old_number", pa.float64()),
    pa.field("new_number", pa.float64()),
    pa.field("abs_change", pa.float64()),
    pa.field("rel_change", pa.float64()),
    pa.field("old_cell", pa.string()),
    pa.field("new_cell", pa.string()),
]
CELL_FIELD_NAMES = frozenset(f.name for f in CELL_FIELDS)
ROW_INDEX = "row_index"
SOURCE_ROW = "source_row"
#: Every name `row_index`/`source_row` may appear under in rows_added/rows_removed
#: (prefixed with `_` when the table has a column of that name).
ROW_EXTRAS = frozenset({ROW_INDEX, SOURCE_ROW, f"_{ROW_INDEX}", f"_{SOURCE_ROW}"})
COUNT_KEYS = ("rows_added", "rows_removed", "rows_changed", "rows_renamed", "cells_changed",
              "schema_changes")
RENAMED_SCHEMA = pa.schema([("old_row", pa.int64()), ("new_row", pa.int64()),
                            ("old_key", pa.list_(pa.string())),
                            ("new_key", pa.list_(pa.string()))])

#: One schema change: (change, column, old, new).
SchemaRow = tuple[str, str | None, str | None, str | None]


@dataclass
class DiffOptions:
    """How to match rows (`key`, `declared_key`) and compare values (the rest, see
    `atdarchive.diff.compare`)."""

    key: list[str] | None = None
    declared_key: list[str] | None = None
    #: (key, source) chosen by `atdarchive.keyresolver.resolve_key` for the archive; when set,
    #: the diff matches by it instead of choosing a key for the pair itself.
    resolved_key: tuple[list[str] | None, str] | None = None
    columns: list[str] | None = None
    ignore: list[str] | None = None
    abs_tol: float = 0.0
    rel_tol: float = 0.0
    ignore_case: bool = False
    ignore_whitespace: bool = False
    strict_types: bool = False

    def exact(self) -> bool:
        """True when values compare as stored (no tolerance, case, whitespace or column
        choice), so rows with equal fingerprints are equal rows for these options too."""
        return not (self.abs_tol or self.rel_tol or self.ignore_case or self.ignore_whitespace
                    or self.columns is not None or self.ignore)


@dataclass
class TableDiff:
    """The changes between two versions of one table, as Arrow tables."""

    table: str
    key: list[str] | None
    key_source: str
    schema_changes: pa.Table
    rows_added: pa.Table
    rows_removed: pa.Table
    cells_changed: pa.Table
    counts: dict[str, int]
    added_values: pa.Table | None = None
    notes: list[str] = field(default_factory=list)
    rows_renamed: pa.Table = field(default_factory=RENAMED_SCHEMA.empty_table)
    duplicate_keys: list[dict] = field(default_factory=list)
    about: dict | None = None  # the releases compared (`release_sides`), for titles

    def is_empty(self) -> bool:
        return not any(self.counts.values())

    def key_column_names(self) -> list[str]:
        """Names of the key columns as they appear in `cells_changed`."""
        return [key_out_name(k) for k in self.key or []]


@dataclass
class SnapshotDiff:
    """Per-table diffs between two snapshots."""

    a_id: str | None
    b_id: str | None
    tables: dict[str, TableDiff]
    tables_added: list[str] = field(default_factory=list)
    tables_removed: list[str] = field(default_factory=list)
    about: dict | None = None  # the releases compared (`release_sides`), for titles

    @property
    def counts(self) -> dict[str, int]:
        return total_counts(td.counts for td in self.tables.values()) | {
            "tables_added": len(self.tables_added),
            "tables_removed": len(self.tables_removed),
        }

    def is_empty(self) -> bool:
        return not any(self.counts.values())


def release_sides(a: Any, b: Any) -> dict | None:
    """Dataset, publication dates and short ids of the two snapshots a diff compares
    (None when they are not archived snapshots)."""
    ra, rb = getattr(a, "record", None), getattr(b, "record", None)
    if not (isinstance(ra, dict) and isinstance(rb, dict) and "id" in ra and "id" in rb):
        return None
    side = {k: {"id": r["id"], "short_id": r["id"][:10], "published": r.get("published"),
                "channel": r.get("channel")} for k, r in (("old", ra), ("new", rb))}
    return {"dataset": rb.get("dataset"), **side}


def total_counts(counts: Any) -> dict[str, int]:
    """Sum of per-table `counts` dicts over `COUNT_KEYS`."""
    out = dict.fromkeys(COUNT_KEYS, 0)
    for c in counts:
        for k in COUNT_KEYS:
            out[k] += c.get(k, 0)
    return out


def key_out_name(k: str) -> str:
    """The name of key column `k` in `cells_changed` (prefixed when it clashes)."""
    return f"key:{k}" if k in CELL_FIELD_NAMES else k


def summarize(diff: TableDiff | SnapshotDiff) -> dict[str, Any]:
    """Counts (and key info for one table) for a one-line summary."""
    if isinstance(diff, SnapshotDiff):
        return {"a": diff.a_id, "b": diff.b_id, **diff.counts}
    return {"table": diff.table, "key": diff.key, "key_source": diff.key_source, **diff.counts}


def schema_table(rows: Sequence[SchemaRow]) -> pa.Table:
    """Schema changes as a table with `SCHEMA_CHANGES_SCHEMA` (empty when no rows)."""
    if not rows:
        return SCHEMA_CHANGES_SCHEMA.empty_table()
    cols = list(zip(*rows, strict=True))
    return pa.table({f.name: pa.array(list(c), pa.string())
                     for f, c in zip(SCHEMA_CHANGES_SCHEMA, cols, strict=True)})


def cells_schema(key_fields: Sequence[pa.Field]) -> pa.Schema:
    """The `cells_changed` schema for a diff keyed on `key_fields` (none: keyless)."""
    return pa.schema([pa.field(key_out_name(f.name), f.type) for f in key_fields] + CELL_FIELDS)


# ---------------------------------------------------------------- engine internals


@dataclass
class ColumnPlan:
    """Which columns two sides share, lost and gained, and which of them are compared."""

    removed: list[str]
    added: list[str]
    common: list[str]
    key: list[str] | None
    wanted: set[str] | None
    ignored: set[str]

    @classmethod
    def of(cls, old_names: Sequence[str], new_names: Sequence[str], key: list[str] | None,
           options: DiffOptions) -> ColumnPlan:
        return cls(
            removed=[c for c in old_names if c not in new_names],
            added=[c for c in new_names if c not in old_names],
            common=[c for c in new_names if c in old_names],
            key=key,
            wanted=set(options.columns) if options.columns is not None else None,
            ignored=set(options.ignore or []),
        )

    def compared(self, old_col: str, new_col: str) -> bool:
        if self.key and new_col in self.key:
            return False
        if old_col in self.ignored or new_col in self.ignored:
            return False
        return self.wanted is None or old_col in self.wanted or new_col in self.wanted

    def pairs(self, renames: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
        """(old, new) column pairs to compare: common columns, then renamed ones."""
        return [(o, n) for o, n in [(c, c) for c in self.common] + list(renames)
                if self.compared(o, n)]


@dataclass
class Matching:
    """How the rows of two sides correspond, and the cells that changed on matched rows."""

    renames: list[tuple[str, str]]
    removed: np.ndarray  # positions into the old side's table
    added: np.ndarray  # positions into the new side's table
    matched: tuple[np.ndarray, np.ndarray] | None  # row pairs on both sides, when needed
    pieces: list[pa.Table]  # cells_changed pieces
    key_fields: list[pa.Field] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    renamed_rows: tuple[np.ndarray, np.ndarray] | None = None  # (old, new) positions
    #: per side, (first row, rows sharing it) of each repeated key value (positions)
    repeats: tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None
