"""The diff engine: two tables (or snapshots) in, Arrow tables of changes out.

A diff is data (DESIGN §5): `TableDiff` holds Arrow tables for schema changes,
added rows, removed rows and changed cells; rendering lives in
`atdarchive.render.diff_writers`. Nothing here prints.

Matching rows
    Keyed tables (key given > declared > inferred, DESIGN §6) match rows by key.
    Key values are turned into compact integer codes with Arrow's hash-based
    `dictionary_encode`, then matched with one numpy scatter/gather (no join, no
    Python loop over rows). Tables without a unique key are diffed as multisets
    of rows (each distinct row counted); removed and added rows that differ in
    one or two cells are then paired into edits by a bounded search (see
    `PAIR_CANDIDATE_CAP`).

Comparing values
    NaN equals NaN; null differs from any value; `abs_tol`/`rel_tol` apply to
    numbers (like `math.isclose`); `ignore_case`/`ignore_whitespace` to strings
    (whitespace: trimmed, inner runs collapsed). With `strict_types=False`
    (default) a column whose type changed compares by value (int 1 == float 1.0,
    "12" == 12), so an int -> float change is ONE schema change, not a change of
    every cell.

Large snapshots
    `diff_snapshots` uses per-row fingerprints cached at commit time
    (`atdarchive.fingerprint`) to skip rows that are identical on both sides and
    reads only the Parquet row groups holding the rest, so its cost follows the
    size of the change (plus a binary search over 8-byte fingerprints).

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
`added_values`: for columns added to rows present on both sides, their values
(so `apply_diff` can rebuild the new table); `old_row`, `new_row`, key, columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .errors import AtdError
from .ingest.model import cell_addresses
from .keys import (
    MAX_INFERRED_KEY_COLUMNS,
    _flat,
    _is_key_type,
    encode_columns,
    infer_key,
    is_unique_nonnull,
    validate_key,
)

__all__ = [
    "DiffOptions",
    "TableDiff",
    "SnapshotDiff",
    "diff_tables",
    "diff_snapshots",
    "apply_diff",
    "infer_key",
    "validate_key",
    "summarize",
    "PAIR_CANDIDATE_CAP",
]

#: Most (removed, added) row pairs examined when pairing keyless rows into edits.
#: Candidates come from blocking on column groups (a pair differing in <= 2 cells
#: agrees on one of 3 column groups); beyond the cap, rows stay added/removed.
PAIR_CANDIDATE_CAP = 10_000

#: Most cells a keyless pair may differ in and still count as an edit.
PAIR_MAX_DIFFERING = 2

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
_FIXED = {f.name for f in CELL_FIELDS}
ROW_INDEX = "row_index"
SOURCE_ROW = "source_row"


@dataclass
class DiffOptions:
    """How to match rows and compare values (see the module docstring)."""

    key: list[str] | None = None
    declared_key: list[str] | None = None
    columns: list[str] | None = None
    ignore: list[str] | None = None
    abs_tol: float = 0.0
    rel_tol: float = 0.0
    ignore_case: bool = False
    ignore_whitespace: bool = False
    strict_types: bool = False


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

    @property
    def counts(self) -> dict[str, int]:
        out = {k: 0 for k in _COUNT_KEYS}
        for td in self.tables.values():
            for k in _COUNT_KEYS:
                out[k] += td.counts.get(k, 0)
        out["tables_added"] = len(self.tables_added)
        out["tables_removed"] = len(self.tables_removed)
        return out

    def is_empty(self) -> bool:
        return not any(self.counts.values())


_COUNT_KEYS = ("rows_added", "rows_removed", "rows_changed", "cells_changed", "schema_changes")


def key_out_name(k: str) -> str:
    return f"key:{k}" if k in _FIXED else k


def summarize(diff: TableDiff | SnapshotDiff) -> dict[str, Any]:
    """Counts (and key info for one table) for a one-line summary."""
    if isinstance(diff, SnapshotDiff):
        return {"a": diff.a_id, "b": diff.b_id, **diff.counts}
    return {"table": diff.table, "key": diff.key, "key_source": diff.key_source, **diff.counts}


# ---------------------------------------------------------------- values


def _decode(arr: pa.Array) -> pa.Array:
    arr = _flat(arr)
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    return arr


def _kind(t: pa.DataType) -> str:
    if pa.types.is_dictionary(t):
        return _kind(t.value_type)
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_integer(t):
        return "int"
    if pa.types.is_floating(t):
        return "float"
    if pa.types.is_decimal(t):
        return "decimal"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "str"
    if pa.types.is_temporal(t):
        return "time"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return "binary"
    if pa.types.is_null(t):
        return "null"
    return "other"


_NUMERIC = {"int", "float", "decimal"}


def _to_text(arr: pa.Array) -> pa.Array:
    """Values as text: numbers shortest round-trip ("1e+20", "nan"), dates ISO."""
    arr = _decode(arr)
    kind = _kind(arr.type)
    if kind == "str":
        return arr.cast(pa.string())
    if kind == "null":
        return pa.nulls(len(arr), pa.string())
    if kind == "binary":
        return pa.array([None if v is None else v.hex() for v in arr.to_pylist()], pa.string())
    try:
        return pc.cast(arr, pa.string())
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
        return pa.array([None if v is None else str(v) for v in arr.to_pylist()], pa.string())


def _to_number(arr: pa.Array) -> pa.Array:
    arr = _decode(arr)
    if _kind(arr.type) in _NUMERIC:
        return pc.cast(arr, pa.float64(), safe=False)
    return pa.nulls(len(arr), pa.float64())


def _norm_text(arr: pa.Array, options: DiffOptions) -> pa.Array:
    if options.ignore_whitespace:
        arr = pc.replace_substring_regex(pc.utf8_trim_whitespace(arr), r"\s+", " ")
    if options.ignore_case:
        arr = pc.utf8_lower(arr)
    return arr


def _np_bool(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    arr = _flat(arr)
    if arr.null_count:
        arr = arr.fill_null(False)
    return arr.to_numpy(zero_copy_only=False)


def _null_mask(arr: pa.Array) -> np.ndarray:
    if arr.null_count == 0:
        return np.zeros(len(arr), dtype=bool)
    return _np_bool(arr.is_null())


def _equal_mask(a: pa.Array, b: pa.Array, options: DiffOptions) -> np.ndarray:
    """Element-wise "same value" under the options (NaN == NaN, null == null only)."""
    a, b = _decode(a), _decode(b)
    n = len(a)
    an, bn = _null_mask(a), _null_mask(b)
    ka, kb = _kind(a.type), _kind(b.type)
    tol = options.abs_tol > 0 or options.rel_tol > 0
    if options.strict_types and a.type != b.type and not (ka == kb == "str"):
        eq = np.zeros(n, dtype=bool)
    elif ka in _NUMERIC and kb in _NUMERIC:
        exact = not tol and (ka == kb == "int" or (ka == kb == "decimal" and a.type == b.type))
        if exact:
            eq = _np_bool(pc.equal(a, b))
        else:
            xa = pc.cast(a, pa.float64(), safe=False).to_numpy(zero_copy_only=False)
            xb = pc.cast(b, pa.float64(), safe=False).to_numpy(zero_copy_only=False)
            with np.errstate(invalid="ignore", over="ignore"):
                eq = (xa == xb) | (np.isnan(xa) & np.isnan(xb))
                if tol:
                    lim = np.maximum(
                        options.abs_tol, options.rel_tol * np.maximum(np.abs(xa), np.abs(xb))
                    )
                    eq |= np.abs(xa - xb) <= lim
    elif ka == kb == "str":
        eq = _np_bool(pc.equal(_norm_text(a.cast(pa.string()), options), _norm_text(
            b.cast(pa.string()), options)))
    elif a.type == b.type and ka not in ("other", "binary"):
        eq = _np_bool(pc.equal(a, b))
    elif a.type == b.type:
        eq = np.array([x == y for x, y in zip(a.to_pylist(), b.to_pylist(), strict=True)], bool)
    else:
        ta, tb = _to_text(a), _to_text(b)
        if "str" in (ka, kb):
            ta, tb = _norm_text(ta, options), _norm_text(tb, options)
        eq = _np_bool(pc.equal(ta, tb))
    eq = eq.copy() if not eq.flags.writeable else eq
    eq[an & bn] = True
    eq[an ^ bn] = False
    return eq


def _identity_arrays(a: pa.Array, b: pa.Array, options: DiffOptions) -> tuple[pa.Array, pa.Array]:
    """Bring two columns to one type so equal values hash equal (keys, keyless rows)."""
    a, b = _decode(a), _decode(b)
    ka, kb = _kind(a.type), _kind(b.type)
    if ka == kb == "str":
        return _norm_text(a.cast(pa.large_string()), options), _norm_text(
            b.cast(pa.large_string()), options
        )
    if a.type == b.type:
        return a, b
    if options.strict_types:
        return (
            pc.binary_join_element_wise(str(a.type) + ":", _to_text(a), ""),
            pc.binary_join_element_wise(str(b.type) + ":", _to_text(b), ""),
        )
    if ka in _NUMERIC and kb in _NUMERIC:
        target = pa.int64() if ka == kb == "int" else pa.float64()
        return pc.cast(a, target, safe=False), pc.cast(b, target, safe=False)
    ta, tb = _to_text(a), _to_text(b)
    if "str" in (ka, kb):
        ta, tb = _norm_text(ta, options), _norm_text(tb, options)
    return ta, tb


def _joint_codes(
    old_cols: Sequence[pa.Array], new_cols: Sequence[pa.Array], options: DiffOptions
) -> tuple[np.ndarray, np.ndarray, int]:
    """Integer codes for rows of both sides over paired columns (equal rows, equal codes)."""
    n_old = len(old_cols[0]) if old_cols else 0
    joint = []
    for a, b in zip(old_cols, new_cols, strict=True):
        x, y = _identity_arrays(a, b, options)
        joint.append(pa.concat_arrays([x, y.cast(x.type)]))
    if not joint:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), 1
    codes, card = encode_columns(joint)
    return codes[:n_old], codes[n_old:], card


# ---------------------------------------------------------------- building blocks


def _empty_schema_changes() -> pa.Table:
    return SCHEMA_CHANGES_SCHEMA.empty_table()


def _schema_table(rows: list[tuple[str, str | None, str | None, str | None]]) -> pa.Table:
    if not rows:
        return _empty_schema_changes()
    cols = list(zip(*rows, strict=True))
    return pa.table(
        {f.name: pa.array(list(c), pa.string()) for f, c in zip(SCHEMA_CHANGES_SCHEMA, cols,
                                                                   strict=True)}
    )


def _cells_schema(key_fields: Sequence[pa.Field]) -> pa.Schema:
    return pa.schema([pa.field(key_out_name(f.name), f.type) for f in key_fields] + CELL_FIELDS)


def _with_rows(
    table: pa.Table, index: np.ndarray, src: pa.Array | None
) -> pa.Table:
    """Append `row_index` (and `source_row`) to a table of added/removed rows."""
    extras = {ROW_INDEX: pa.array(index.astype(np.int64))}
    if src is not None:
        extras[SOURCE_ROW] = pc.cast(src, pa.int64())
    for name, arr in extras.items():
        col = name if name not in table.column_names else f"_{name}"
        table = table.append_column(col, arr)
    return table


@dataclass
class _Side:
    """One side of a diff: the (possibly subset) table and how its rows map back."""

    table: pa.Table
    index: np.ndarray  # global row number of each row of `table`
    src: pa.Array | None  # source rows aligned with `table`
    meta: dict | None


def _cells_piece(
    old: _Side,
    new: _Side,
    o_local: np.ndarray,
    n_local: np.ndarray,
    old_col: str,
    new_col: str,
    key: list[str] | None,
    key_types: list[pa.Field],
) -> pa.Table:
    """The cells_changed rows for one column (already known to differ)."""
    a = _decode(old.table.column(old_col)).take(pa.array(o_local))
    b = _decode(new.table.column(new_col)).take(pa.array(n_local))
    xa, xb = _to_number(a), _to_number(b)
    na = xa.to_numpy(zero_copy_only=False)
    nb = xb.to_numpy(zero_copy_only=False)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        d = nb - na
        rel = d / np.abs(na)
    valid_d = np.isfinite(d)
    valid_rel = valid_d & (na != 0) & np.isfinite(rel)
    cols: dict[str, pa.Array] = {}
    for f in key_types:
        col = _decode(new.table.column(f.name)).take(pa.array(n_local))
        cols[key_out_name(f.name)] = col.cast(f.type)
    cols.update(
        {
            "old_row": pa.array(old.index[o_local].astype(np.int64)),
            "new_row": pa.array(new.index[n_local].astype(np.int64)),
            "column": pa.array([new_col] * len(o_local), pa.string()),
            "old": _to_text(a),
            "new": _to_text(b),
            "old_number": xa,
            "new_number": xb,
            "abs_change": pa.array(d, pa.float64(), mask=~valid_d),
            "rel_change": pa.array(rel, pa.float64(), mask=~valid_rel),
            "old_cell": cell_addresses(old.meta, old_col, old.src, o_local),
            "new_cell": cell_addresses(new.meta, new_col, new.src, n_local),
        }
    )
    return pa.table(cols, schema=_cells_schema(key_types))


def _compare_pairs(
    old: _Side,
    new: _Side,
    o_local: np.ndarray,
    n_local: np.ndarray,
    pairs: list[tuple[str, str]],
    options: DiffOptions,
    key: list[str] | None,
    key_types: list[pa.Field],
) -> list[pa.Table]:
    """Compare paired rows column by column; one cells piece per column with changes."""
    pieces = []
    if len(o_local) == 0:
        return pieces
    oi, ni = pa.array(o_local), pa.array(n_local)
    for oc, nc in pairs:
        a = _flat(old.table.column(oc)).take(oi)
        b = _flat(new.table.column(nc)).take(ni)
        diff = ~_equal_mask(a, b, options)
        p = np.flatnonzero(diff)
        if len(p):
            pieces.append(
                _cells_piece(old, new, o_local[p], n_local[p], oc, nc, key, key_types)
            )
    return pieces


def _lis_keep(seq: list[int]) -> set[int]:
    """Indices of one longest increasing subsequence (columns that did not move)."""
    import bisect

    tails: list[int] = []
    tails_idx: list[int] = []
    prev = [-1] * len(seq)
    for i, v in enumerate(seq):
        j = bisect.bisect_left(tails, v)
        if j == len(tails):
            tails.append(v)
            tails_idx.append(i)
        else:
            tails[j] = v
            tails_idx[j] = i
        prev[i] = tails_idx[j - 1] if j else -1
    keep: set[int] = set()
    i = tails_idx[-1] if tails_idx else -1
    while i != -1:
        keep.add(i)
        i = prev[i]
    return keep


def _same_contents(a: pa.Array, b: pa.Array, options: DiffOptions) -> bool:
    if len(a) != len(b):
        return False
    return bool(np.all(_equal_mask(a, b, options)))


def _sorted(arr: pa.Array) -> pa.Array:
    arr = _decode(arr)
    try:
        return arr.take(pc.sort_indices(arr))
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
        return arr


# ---------------------------------------------------------------- keys


def _check_key_columns(table: pa.Table | None, key: list[str], name: str, side: str,
                       what: str) -> None:
    if table is None:
        return
    missing = [k for k in key if k not in table.column_names]
    if missing:
        raise AtdError(
            f"{what} key column {', '.join(map(repr, missing))} not in table '{name}' ({side}); "
            f"columns are: {', '.join(table.column_names)}"
        )


def _infer_pair_key(old: pa.Table | None, new: pa.Table | None) -> list[str] | None:
    """Leading columns of the new table, unique and non-null on both sides."""
    base = new if new is not None else old
    other = old if base is new else None
    if base is None:
        return None
    if other is None:
        return infer_key(base)
    names = base.column_names
    for k in range(1, min(MAX_INFERRED_KEY_COLUMNS, len(names)) + 1):
        cand = names[:k]
        last = cand[-1]
        if last not in other.column_names:
            return None
        if not (_is_key_type(base.schema.field(last).type)
                and _is_key_type(other.schema.field(last).type)):
            return None
        if is_unique_nonnull(base, cand) and is_unique_nonnull(other, cand):
            return list(cand)
    return None


def _resolve_key(
    old: pa.Table | None, new: pa.Table | None, options: DiffOptions, name: str
) -> tuple[list[str] | None, str]:
    for given, source in ((options.key, "given"), (options.declared_key, "declared")):
        if given:
            key = list(given)
            for t, side in ((old, "old"), (new, "new")):
                _check_key_columns(t, key, name, side, source)
                if t is not None:
                    validate_key(t, key, name, side)
            return key, source
    key = _infer_pair_key(old, new)
    return (key, "inferred") if key else (None, "none")


def _check_columns_exist(options: DiffOptions, names: set[str], where: str) -> None:
    for opt, label in ((options.columns, "--columns"), (options.ignore, "--ignore")):
        missing = [c for c in opt or [] if c not in names]
        if missing:
            raise AtdError(
                f"{label} names {', '.join(map(repr, missing))}, not a column of {where}; "
                f"columns are: {', '.join(sorted(names))}"
            )


# ---------------------------------------------------------------- the diff


def diff_tables(
    old: pa.Table | None,
    new: pa.Table | None,
    *,
    name: str = "data",
    options: DiffOptions | None = None,
    old_meta: dict | None = None,
    new_meta: dict | None = None,
    old_fingerprints: Any = None,
    new_fingerprints: Any = None,
    old_source_rows: pa.Array | None = None,
    new_source_rows: pa.Array | None = None,
) -> TableDiff:
    """Diff two versions of one table (either may be None: table added/removed).

    `old_fingerprints`/`new_fingerprints` (row-aligned uint64 arrays from
    `fingerprint.fingerprint_table`, or `fingerprint.Fingerprints`) let the
    engine skip rows that are identical on both sides.
    """
    options = options or DiffOptions()
    if old is None and new is None:
        raise ValueError("diff_tables needs at least one table")
    names = set(old.column_names if old is not None else []) | set(
        new.column_names if new is not None else []
    )
    _check_columns_exist(options, names, f"table '{name}'")
    key, key_source = _resolve_key(old, new, options, name)
    if old is None or new is None:
        return _one_sided(old, new, name, key, key_source, old_meta, new_meta,
                          old_source_rows, new_source_rows)
    old_side = _Side(old, np.arange(old.num_rows, dtype=np.int64), old_source_rows, old_meta)
    new_side = _Side(new, np.arange(new.num_rows, dtype=np.int64), new_source_rows, new_meta)
    if old_fingerprints is not None and new_fingerprints is not None:
        from .fingerprint import Fingerprints, from_row_aligned, rows_not_in

        fa = old_fingerprints if isinstance(old_fingerprints, Fingerprints) else \
            from_row_aligned(old_fingerprints, old)
        fb = new_fingerprints if isinstance(new_fingerprints, Fingerprints) else \
            from_row_aligned(new_fingerprints, new)
        if _same_columns(old.schema, new.schema):
            keyless = key is None
            ia = rows_not_in(fa, fb, include_duplicates=keyless)
            ib = rows_not_in(fb, fa, include_duplicates=keyless)
            old_side = _subset(old_side, ia)
            new_side = _subset(new_side, ib)
    return _diff_core(old_side, new_side, name, key, key_source, options)


def _same_columns(a: pa.Schema, b: pa.Schema) -> bool:
    return sorted((f.name, str(f.type)) for f in a) == sorted((f.name, str(f.type)) for f in b)


def _subset(side: _Side, rows: np.ndarray) -> _Side:
    idx = pa.array(rows)
    return _Side(
        side.table.take(idx),
        side.index[rows],
        side.src.take(idx) if side.src is not None else None,
        side.meta,
    )


def _one_sided(
    old: pa.Table | None,
    new: pa.Table | None,
    name: str,
    key: list[str] | None,
    key_source: str,
    old_meta: dict | None,
    new_meta: dict | None,
    old_src: pa.Array | None,
    new_src: pa.Array | None,
) -> TableDiff:
    present = new if new is not None else old
    assert present is not None
    change = "table_added" if new is not None else "table_removed"
    rows = _with_rows(present, np.arange(present.num_rows), new_src if new is not None else old_src)
    empty = present.schema.empty_table()
    other = _with_rows(empty, np.zeros(0, np.int64), None)
    key_fields = [present.schema.field(k) for k in key or []]
    schema = _schema_table([(change, None, None, None)])
    added, removed = (rows, other) if new is not None else (other, rows)
    return TableDiff(
        table=name,
        key=key,
        key_source=key_source,
        schema_changes=schema,
        rows_added=added,
        rows_removed=removed,
        cells_changed=_cells_schema(key_fields).empty_table(),
        counts={
            "rows_added": added.num_rows,
            "rows_removed": removed.num_rows,
            "rows_changed": 0,
            "cells_changed": 0,
            "schema_changes": 1,
        },
    )


def _diff_core(
    old: _Side,
    new: _Side,
    name: str,
    key: list[str] | None,
    key_source: str,
    options: DiffOptions,
) -> TableDiff:
    """Diff two sides whose key is already resolved (they may be row subsets)."""
    ot, nt = old.table, new.table
    old_names, new_names = ot.column_names, nt.column_names
    removed_cols = [c for c in old_names if c not in new_names]
    added_cols = [c for c in new_names if c not in old_names]
    common = [c for c in new_names if c in old_names]
    wanted = set(options.columns) if options.columns is not None else None
    ignored = set(options.ignore or [])

    def compared(oc: str, nc: str) -> bool:
        if key and nc in key:
            return False
        if oc in ignored or nc in ignored:
            return False
        return wanted is None or oc in wanted or nc in wanted

    notes: list[str] = []
    key_fields: list[pa.Field] = []
    pieces: list[pa.Table] = []
    renames: list[tuple[str, str]] = []

    if key:
        key_fields = [_key_field(ot, nt, k) for k in key]
        o_code, n_code, card = _joint_codes(
            [ot.column(k) for k in key], [nt.column(k) for k in key], options
        )
        pos_new = np.full(card, -1, dtype=np.int64)
        pos_new[n_code] = np.arange(len(n_code))
        match = pos_new[o_code]
        o_match = np.flatnonzero(match >= 0)
        n_match = match[o_match]
        seen_new = np.zeros(len(n_code), dtype=bool)
        seen_new[n_match] = True
        rem_rows = np.flatnonzero(match < 0)
        add_rows = np.flatnonzero(~seen_new)
        renames = _detect_renames_aligned(ot, nt, removed_cols, added_cols, o_match, n_match,
                                          options)
        pairs = [(c, c) for c in common] + renames
        pairs = [(o, n) for o, n in pairs if compared(o, n)]
        pieces = _compare_pairs(old, new, o_match, n_match, pairs, options, key, key_fields)
        matched = (o_match, n_match)
    else:
        renames = _detect_renames_multiset(ot, nt, removed_cols, added_cols, options)
        pairs = [(c, c) for c in common] + renames
        pairs = [(o, n) for o, n in pairs if compared(o, n)]
        rem_rows, add_rows, matched = _multiset(ot, nt, pairs, options,
                                                 need_pairs=bool(added_cols))
        pr, pn, capped = _pair_edits(ot, nt, rem_rows, add_rows, pairs, options)
        if capped:
            notes.append(
                f"pairing of removed/added rows into edits stopped at {PAIR_CANDIDATE_CAP} "
                "candidates; remaining rows are reported as added/removed"
            )
        if len(pr):
            keep_r = np.ones(len(rem_rows), bool)
            keep_r[pr] = False
            keep_a = np.ones(len(add_rows), bool)
            keep_a[pn] = False
            o_pair, n_pair = rem_rows[pr], add_rows[pn]
            pieces = _compare_pairs(old, new, o_pair, n_pair, pairs, options, None, [])
            rem_rows, add_rows = rem_rows[keep_r], add_rows[keep_a]
            if matched is not None:
                matched = (np.concatenate([matched[0], o_pair]),
                           np.concatenate([matched[1], n_pair]))

    renamed_old = {o for o, _ in renames}
    renamed_new = {n for _, n in renames}
    schema_rows: list[tuple[str, str | None, str | None, str | None]] = []
    for c in added_cols:
        if c not in renamed_new:
            schema_rows.append(("column_added", c, None, str(nt.schema.field(c).type)))
    for c in removed_cols:
        if c not in renamed_old:
            schema_rows.append(("column_removed", c, str(ot.schema.field(c).type), None))
    for o, n in renames:
        schema_rows.append(("column_renamed", n, o, n))
    for o, n in [(c, c) for c in common] + renames:
        to, tn = ot.schema.field(o).type, nt.schema.field(n).type
        if to != tn:
            schema_rows.append(("type_changed", n, str(to), str(tn)))
    # reorder: columns present on both sides whose relative order changed
    rename_map = dict(renames)
    old_order = [rename_map.get(c, c) for c in old_names if c in common or c in rename_map]
    new_order = [c for c in new_names if c in common or c in renamed_new]
    pos_old = {c: i for i, c in enumerate(old_order)}
    seq = [pos_old[c] for c in new_order]
    keep = _lis_keep(seq)
    for i, c in enumerate(new_order):
        if i not in keep:
            schema_rows.append(("column_reordered", c, str(pos_old[c] + 1), str(i + 1)))

    cells_schema = _cells_schema(key_fields)
    if pieces:
        cells = pa.concat_tables(pieces)
        col_pos = {c: i for i, c in enumerate(new_names)}
        order_col = np.array([col_pos[c] for c in cells.column("column").to_pylist()],
                             dtype=np.int64)
        order = np.lexsort((order_col, cells.column("new_row").to_numpy()))
        cells = cells.take(pa.array(order))
    else:
        cells = cells_schema.empty_table()

    added_values = None
    plain_added = [c for c in added_cols if c not in renamed_new]
    if plain_added and matched is not None and len(matched[0]):
        o_m, n_m = matched
        cols: dict[str, pa.Array] = {}
        for f in key_fields:
            cols[key_out_name(f.name)] = _decode(nt.column(f.name)).take(pa.array(n_m))
        cols["old_row"] = pa.array(old.index[o_m])
        cols["new_row"] = pa.array(new.index[n_m])
        for c in plain_added:
            cols[c] = _flat(nt.column(c)).take(pa.array(n_m))
        added_values = pa.table(cols)

    rows_added = _with_rows(nt.take(pa.array(add_rows)), new.index[add_rows],
                            new.src.take(pa.array(add_rows)) if new.src is not None else None)
    rows_removed = _with_rows(ot.take(pa.array(rem_rows)), old.index[rem_rows],
                              old.src.take(pa.array(rem_rows)) if old.src is not None else None)
    rows_changed = len(np.unique(cells.column("new_row").to_numpy())) if cells.num_rows else 0
    return TableDiff(
        table=name,
        key=list(key) if key else None,
        key_source=key_source,
        schema_changes=_schema_table(schema_rows),
        rows_added=rows_added,
        rows_removed=rows_removed,
        cells_changed=cells,
        counts={
            "rows_added": rows_added.num_rows,
            "rows_removed": rows_removed.num_rows,
            "rows_changed": rows_changed,
            "cells_changed": cells.num_rows,
            "schema_changes": len(schema_rows),
        },
        added_values=added_values,
        notes=notes,
    )


def _key_field(ot: pa.Table, nt: pa.Table, k: str) -> pa.Field:
    to, tn = ot.schema.field(k).type, nt.schema.field(k).type
    if pa.types.is_dictionary(tn):
        tn = tn.value_type
    if pa.types.is_dictionary(to):
        to = to.value_type
    return pa.field(k, tn)


def _detect_renames_aligned(
    ot: pa.Table,
    nt: pa.Table,
    removed: list[str],
    added: list[str],
    o_idx: np.ndarray,
    n_idx: np.ndarray,
    options: DiffOptions,
) -> list[tuple[str, str]]:
    """A removed and an added column with equal values on every matched row: a rename."""
    if not removed or not added or len(o_idx) == 0:
        return []
    out: list[tuple[str, str]] = []
    used: set[str] = set()
    oi, ni = pa.array(o_idx), pa.array(n_idx)
    for r in removed:
        a = _flat(ot.column(r)).take(oi)
        if a.null_count == len(a):
            continue
        for c in added:
            if c in used:
                continue
            if _same_contents(a, _flat(nt.column(c)).take(ni), options):
                out.append((r, c))
                used.add(c)
                break
    return out


def _detect_renames_multiset(
    ot: pa.Table, nt: pa.Table, removed: list[str], added: list[str], options: DiffOptions
) -> list[tuple[str, str]]:
    """Keyless: a removed and an added column holding the same multiset of values."""
    if not removed or not added or ot.num_rows != nt.num_rows or ot.num_rows == 0:
        return []
    out: list[tuple[str, str]] = []
    used: set[str] = set()
    for r in removed:
        a = _flat(ot.column(r))
        if a.null_count == len(a):
            continue
        sa = _sorted(a)
        for c in added:
            if c in used:
                continue
            b = _flat(nt.column(c))
            if _same_contents(a, b, options) or _same_contents(sa, _sorted(b), options):
                out.append((r, c))
                used.add(c)
                break
    return out


def _occurrence_rank(codes: np.ndarray) -> np.ndarray:
    """For each element, how many equal codes precede it (0 for the first)."""
    n = len(codes)
    if n == 0:
        return np.zeros(0, np.int64)
    order = np.argsort(codes, kind="stable")
    sc = codes[order]
    start = np.empty(n, dtype=bool)
    start[0] = True
    start[1:] = sc[1:] != sc[:-1]
    first = np.maximum.accumulate(np.where(start, np.arange(n), 0))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - first
    return rank


def _multiset(
    ot: pa.Table,
    nt: pa.Table,
    pairs: list[tuple[str, str]],
    options: DiffOptions,
    need_pairs: bool,
) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
    """Rows removed/added as multisets over `pairs`; optionally the matched row pairs."""
    n_o, n_n = ot.num_rows, nt.num_rows
    if pairs:
        o_code, n_code, card = _joint_codes(
            [ot.column(o) for o, _ in pairs], [nt.column(n) for _, n in pairs], options
        )
    else:
        o_code, n_code, card = np.zeros(n_o, np.int64), np.zeros(n_n, np.int64), 1
    cnt_o = np.bincount(o_code, minlength=card)
    cnt_n = np.bincount(n_code, minlength=card)
    r_o, r_n = _occurrence_rank(o_code), _occurrence_rank(n_code)
    removed = r_o >= cnt_n[o_code]
    added = r_n >= cnt_o[n_code]
    matched = None
    if need_pairs:
        mo, mn = np.flatnonzero(~removed), np.flatnonzero(~added)
        width = int(max(r_o.max(initial=0), r_n.max(initial=0))) + 1
        ko = o_code[mo] * width + r_o[mo]
        kn = n_code[mn] * width + r_n[mn]
        matched = (mo[np.argsort(ko, kind="stable")], mn[np.argsort(kn, kind="stable")])
    return np.flatnonzero(removed), np.flatnonzero(added), matched


def _pair_edits(
    ot: pa.Table,
    nt: pa.Table,
    rem: np.ndarray,
    add: np.ndarray,
    pairs: list[tuple[str, str]],
    options: DiffOptions,
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Pair removed and added rows differing in <= 2 cells (bounded search).

    Returns positions into `rem` and `add` of the pairs chosen (greedy by fewest
    differing cells) and whether the candidate cap was hit.
    """
    ncols = len(pairs)
    limit = min(PAIR_MAX_DIFFERING, ncols - 1)
    empty = np.zeros(0, np.int64)
    if limit < 1 or len(rem) == 0 or len(add) == 0:
        return empty, empty, False
    n_groups = limit + 1  # pigeonhole: some group has no differing cell
    groups = [pairs[g::n_groups] for g in range(n_groups)]
    ri, ai = pa.array(rem), pa.array(add)
    sub_o = {o: _flat(ot.column(o)).take(ri) for o, _ in pairs}
    sub_n = {n: _flat(nt.column(n)).take(ai) for _, n in pairs}
    budget = PAIR_CANDIDATE_CAP
    capped = False
    cand_r, cand_a = [], []
    for g in groups:
        rc, ac, _ = _joint_codes([sub_o[o] for o, _ in g], [sub_n[n] for _, n in g], options)
        order_a = np.argsort(ac, kind="stable")
        sac = ac[order_a]
        lo = np.searchsorted(sac, rc, "left")
        cnt = np.searchsorted(sac, rc, "right") - lo
        cum = np.cumsum(cnt)
        keep = cum <= budget
        if not keep.all():
            capped = True
        cnt = np.where(keep, cnt, 0)
        tot = int(cnt.sum())
        if tot:
            rr = np.repeat(np.arange(len(rc)), cnt)
            starts = np.repeat(lo, cnt)
            offs = np.arange(tot) - np.repeat(np.cumsum(cnt) - cnt, cnt)
            cand_r.append(rr)
            cand_a.append(order_a[starts + offs])
        budget -= tot
        if budget <= 0:
            capped = capped or g is not groups[-1]
            break
    if not cand_r:
        return empty, empty, capped
    comb = np.unique(np.concatenate(cand_r) * len(add) + np.concatenate(cand_a))
    rr, aa = comb // len(add), comb % len(add)
    ndiff = np.zeros(len(rr), dtype=np.int64)
    ri2, ai2 = pa.array(rr), pa.array(aa)
    for o, n in pairs:
        ndiff += ~_equal_mask(sub_o[o].take(ri2), sub_n[n].take(ai2), options)
    ok = ndiff <= limit
    rr, aa, ndiff = rr[ok], aa[ok], ndiff[ok]
    order = np.lexsort((aa, rr, ndiff))
    used_r: set[int] = set()
    used_a: set[int] = set()
    out_r, out_a = [], []
    for i in order.tolist():  # bounded by PAIR_CANDIDATE_CAP
        r, a = int(rr[i]), int(aa[i])
        if r in used_r or a in used_a:
            continue
        used_r.add(r)
        used_a.add(a)
        out_r.append(r)
        out_a.append(a)
    return np.array(out_r, np.int64), np.array(out_a, np.int64), capped


# ---------------------------------------------------------------- apply


def _from_text(text: pa.Array, target: pa.DataType) -> pa.Array:
    """Parse the engine's text form back into `target` (inverse of `_to_text`)."""
    base = target.value_type if pa.types.is_dictionary(target) else target
    if _kind(base) == "str":
        return text.cast(base)
    if _kind(base) == "binary":
        return pa.array([None if v is None else bytes.fromhex(v) for v in text.to_pylist()], base)
    return pc.cast(text, base)


def _cast_column(arr: pa.Array, target: pa.DataType) -> pa.Array:
    arr = _decode(arr)
    if arr.type == target:
        return arr
    try:
        return pc.cast(arr, target, safe=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return _from_text(_to_text(arr), target)


def apply_diff(old: pa.Table, diff: TableDiff) -> pa.Table:
    """Rebuild the new table from the old one and a diff (tests the diff is complete)."""
    extras = {ROW_INDEX, SOURCE_ROW, f"_{ROW_INDEX}", f"_{SOURCE_ROW}"}
    target = pa.schema([f for f in diff.rows_added.schema if f.name not in extras])
    sc = diff.schema_changes.to_pylist()
    if any(r["change"] == "table_removed" for r in sc):
        return target.empty_table()
    renames = {r["old"]: r["new"] for r in sc if r["change"] == "column_renamed"}
    n = old.num_rows
    cols: dict[str, pa.Array] = {}
    for c in old.column_names:
        nc = renames.get(c, c)
        if nc in target.names:
            cols[nc] = _cast_column(_flat(old.column(c)), target.field(nc).type)
    cells = diff.cells_changed
    if cells.num_rows:
        rows = cells.column("old_row").to_numpy()
        colnames = cells.column("column").to_pylist()
        new_text = _flat(cells.column("new"))
        by_col: dict[str, list[int]] = {}
        for i, c in enumerate(colnames):
            by_col.setdefault(c, []).append(i)
        for c, idx in by_col.items():
            sel = np.array(idx)
            pos = rows[sel]
            order = np.argsort(pos, kind="stable")
            values = _from_text(new_text.take(pa.array(sel[order])), target.field(c).type)
            mask = np.zeros(n, dtype=bool)
            mask[pos] = True
            cols[c] = pc.replace_with_mask(cols[c], pa.array(mask), values)
    if diff.added_values is not None:
        av = diff.added_values
        pos = av.column("old_row").to_numpy()
        for c in target.names:
            if c in cols or c not in av.column_names:
                continue
            order = np.argsort(pos, kind="stable")
            mask = np.zeros(n, dtype=bool)
            mask[pos] = True
            base = pa.nulls(n, target.field(c).type)
            vals = _flat(av.column(c)).take(pa.array(order)).cast(target.field(c).type)
            cols[c] = pc.replace_with_mask(base, pa.array(mask), vals)
    for c in target.names:
        if c not in cols:
            cols[c] = pa.nulls(n, target.field(c).type)
    table = pa.table({c: cols[c] for c in target.names}, schema=target)
    keep = np.ones(n, dtype=bool)
    keep[diff.rows_removed.column(ROW_INDEX).to_numpy()] = False
    table = table.filter(pa.array(keep))
    added = diff.rows_added.select(target.names).cast(target)
    return pa.concat_tables([table, added])


# ---------------------------------------------------------------- snapshots


def _record_tables(snap: Any) -> dict:
    rec = getattr(snap, "record", None) or {}
    return rec.get("tables", {}) if isinstance(rec, dict) else {}


def _table_sha(snap: Any, name: str) -> str | None:
    rec = getattr(snap, "record", None) or {}
    meta = _record_tables(snap).get(name, {})
    rel = meta.get("file")
    if rel and isinstance(rec.get("files"), dict):
        return (rec["files"].get(rel) or {}).get("sha256")
    return None


def _declared_for(name: str, a: Any, b: Any, options: DiffOptions,
                  declared_keys: dict[str, list[str]] | None) -> list[str] | None:
    if declared_keys and declared_keys.get(name):
        return list(declared_keys[name])
    if options.declared_key:
        return list(options.declared_key)
    for snap in (b, a):
        meta = _record_tables(snap).get(name, {})
        if meta.get("key") and meta.get("key_source", "declared") == "declared":
            return list(meta["key"])
    return None


def diff_snapshots(
    a: Any,
    b: Any,
    *,
    table: str | None = None,
    options: DiffOptions | None = None,
    cache_dir: Any = None,
    declared_keys: dict[str, list[str]] | None = None,
) -> SnapshotDiff:
    """Diff every table of two snapshots (or just `table`).

    Declared keys come from `declared_keys[table]`, else `options.declared_key`,
    else the snapshot records' declared `key`. When both tables have cached
    fingerprints (`fingerprint.compute_fingerprints` into `cache_dir`) and the
    same columns, only rows whose fingerprint is not on the other side are read.
    """
    options = options or DiffOptions()
    names_a, names_b = list(a.table_names), list(b.table_names)
    if table is not None:
        if table not in names_a and table not in names_b:
            raise AtdError(
                f"no table {table!r} in either snapshot; tables: "
                f"{', '.join(dict.fromkeys(names_a + names_b))}"
            )
        names = [table]
    else:
        names = names_a + [n for n in names_b if n not in names_a]
    if options.columns or options.ignore:
        allcols: set[str] = set()
        for n in names:
            for snap, present in ((a, names_a), (b, names_b)):
                if n in present:
                    allcols |= {c["name"] for c in _record_tables(snap).get(n, {}).get(
                        "schema", [])} or set(_parquet_schema(snap, n).names)
        _check_columns_exist(options, allcols, "either snapshot")
    out = SnapshotDiff(getattr(a, "id", None), getattr(b, "id", None), {})
    for n in names:
        opts = replace(options, declared_key=_declared_for(n, a, b, options, declared_keys))
        opts = _restrict_columns(opts, a if n in names_a else None, b if n in names_b else None, n)
        meta_a, meta_b = _record_tables(a).get(n), _record_tables(b).get(n)
        if n not in names_b:
            out.tables_removed.append(n)
            out.tables[n] = diff_tables(a.table(n), None, name=n, options=opts, old_meta=meta_a,
                                        old_source_rows=a.source_rows(n))
        elif n not in names_a:
            out.tables_added.append(n)
            out.tables[n] = diff_tables(None, b.table(n), name=n, options=opts, new_meta=meta_b,
                                        new_source_rows=b.source_rows(n))
        elif table is None and opts.declared_key and not opts.key:
            # One table whose declared key the agency broke must not sink the whole
            # diff: that table is diffed as rows, and says why (asked for alone, it errs).
            try:
                out.tables[n] = _diff_snapshot_table(a, b, n, opts, cache_dir, meta_a, meta_b)
            except AtdError as exc:
                out.tables[n] = _diff_snapshot_table(
                    a, b, n, replace(opts, declared_key=None), cache_dir, meta_a, meta_b)
                out.tables[n].notes.append(f"declared key not used: {exc}")
        else:
            out.tables[n] = _diff_snapshot_table(a, b, n, opts, cache_dir, meta_a, meta_b)
    return out


def _parquet_schema(snap: Any, name: str) -> pa.Schema:
    import pyarrow.parquet as pq

    return pq.read_schema(snap.table_path(name))


def _restrict_columns(opts: DiffOptions, a: Any, b: Any, name: str) -> DiffOptions:
    """--columns/--ignore were checked across tables; keep those this table has."""
    if not (opts.columns or opts.ignore):
        return opts
    have: set[str] = set()
    for snap in (a, b):
        if snap is not None:
            have |= set(_parquet_schema(snap, name).names)
    cols = [c for c in opts.columns if c in have] if opts.columns else None
    return replace(opts, columns=cols,
                   ignore=[c for c in opts.ignore or [] if c in have] or None)


def _diff_snapshot_table(
    a: Any, b: Any, name: str, options: DiffOptions, cache_dir: Any,
    meta_a: dict | None, meta_b: dict | None,
) -> TableDiff:
    from .fingerprint import load_fingerprints, rows_not_in

    path_a, path_b = a.table_path(name), b.table_path(name)
    fa = fb = None
    if cache_dir is not None:
        fa = load_fingerprints(path_a, cache_dir, sha256=_table_sha(a, name))
        fb = load_fingerprints(path_b, cache_dir, sha256=_table_sha(b, name))
    if fa is None or fb is None or not fa.compatible(fb):
        return diff_tables(a.table(name), b.table(name), name=name, options=options,
                           old_meta=meta_a, new_meta=meta_b,
                           old_source_rows=a.source_rows(name),
                           new_source_rows=b.source_rows(name))
    schema_a, schema_b = _parquet_schema(a, name), _parquet_schema(b, name)
    key, key_source = _resolve_key_cached(a, b, name, schema_a, schema_b, fa, fb, options)
    keyless = key is None

    # the two fingerprint comparisons are independent and numpy releases the GIL:
    # one thread each; the rows themselves are read one side at a time (memory)
    with ThreadPoolExecutor(max_workers=2) as pool:
        job = pool.submit(rows_not_in, fb, fa, include_duplicates=keyless)
        rows_a = rows_not_in(fa, fb, include_duplicates=keyless)
        rows_b = job.result()
    table_a = _read_rows(path_a, rows_a, schema_a, cache_dir, _table_sha(a, name))
    table_b = _read_rows(path_b, rows_b, schema_b, cache_dir, _table_sha(b, name))
    src_a, src_b = a.source_rows(name), b.source_rows(name)
    side_a = _Side(table_a, rows_a,
                   src_a.take(pa.array(rows_a)) if src_a is not None else None, meta_a)
    side_b = _Side(table_b, rows_b,
                   src_b.take(pa.array(rows_b)) if src_b is not None else None, meta_b)
    return _diff_core(side_a, side_b, name, key, key_source, options)


def _resolve_key_cached(
    a: Any, b: Any, name: str, schema_a: pa.Schema, schema_b: pa.Schema,
    fa: Any, fb: Any, options: DiffOptions,
) -> tuple[list[str] | None, str]:
    """Resolve the key using uniqueness recorded with the fingerprints when possible."""
    for given, source in ((options.key, "given"), (options.declared_key, "declared")):
        if not given:
            continue
        key = list(given)
        for snap, schema, fp, side in ((a, schema_a, fa, "old"), (b, schema_b, fb, "new")):
            missing = [k for k in key if k not in schema.names]
            if missing:
                raise AtdError(
                    f"{source} key column {', '.join(map(repr, missing))} not in table "
                    f"'{name}' ({side}); columns are: {', '.join(schema.names)}"
                )
            if not fp.key_unique(key):
                validate_key(snap.table(name, columns=key), key, name, side)
        return key, source
    names = schema_b.names
    for k in range(1, min(MAX_INFERRED_KEY_COLUMNS, len(names)) + 1):
        cand = names[:k]
        if cand[-1] not in schema_a.names or not (
            _is_key_type(schema_a.field(cand[-1]).type)
            and _is_key_type(schema_b.field(cand[-1]).type)
        ):
            return None, "none"
        ok = True
        for snap, fp in ((a, fa), (b, fb)):
            known, nonnull = fp.key_unique(cand), fp.key_nonnull(cand)
            if known is False or nonnull is False:
                ok = False
            elif not (known and nonnull):
                ok = is_unique_nonnull(snap.table(name, columns=cand), cand)
            if not ok:
                break
        if ok:
            return list(cand), "inferred"
    return None, "none"


def _read_rows(path: Any, rows: np.ndarray, schema: pa.Schema, cache_dir: Any = None,
               sha256: str | None = None) -> pa.Table:
    """Rows (ascending numbers) of a Parquet file: from the memory-mapped Arrow copy
    kept at commit for big tables (cost grows with the rows taken), else by reading
    only the row groups that hold them, a few at a time so memory stays bounded by
    the rows kept plus one batch of groups.
    """
    import pyarrow.parquet as pq

    from .fingerprint import take_rows

    if len(rows) == 0:
        return schema.empty_table()
    if cache_dir is not None:
        taken = take_rows(path, rows, cache_dir, sha256)
        if taken is not None and taken.schema.names == schema.names:
            return taken.cast(schema) if taken.schema != schema else taken
    pf = pq.ParquetFile(path)
    md = pf.metadata
    sizes = np.array([md.row_group(i).num_rows for i in range(md.num_row_groups)], np.int64)
    ends = np.cumsum(sizes)
    starts = ends - sizes
    rg_of = np.searchsorted(ends, rows, side="right")
    groups = np.unique(rg_of)
    pieces = []
    batch: list[int] = []
    batch_rows = 0

    def flush() -> None:
        nonlocal batch, batch_rows
        if not batch:
            return
        tbl = pf.read_row_groups(batch, use_threads=True)
        offset = np.cumsum([0] + [int(sizes[g]) for g in batch[:-1]])
        sel = np.isin(rg_of, batch)
        loc_rows, loc_rg = rows[sel], rg_of[sel]
        base = offset[np.searchsorted(np.array(batch), loc_rg)]
        pieces.append(tbl.take(pa.array(base + loc_rows - starts[loc_rg])))
        batch, batch_rows = [], 0

    for g in groups.tolist():
        batch.append(g)
        batch_rows += int(sizes[g])
        if batch_rows >= 262_144:
            flush()
    flush()
    out = pa.concat_tables(pieces)
    return out.cast(schema) if out.schema != schema else out
