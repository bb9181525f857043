"""Row keys: inference and validation (DESIGN §6).

A key is a list of column names whose values identify a row. Given keys
(`--key`) win over declared ones (`dataset.toml`), which win over hierarchy
keys derived from the table (`atdarchive.hierarchy`), which win over inferred
ones (`atdarchive.keyresolver.resolve_key` decides, for every command). Inference
takes the smallest unique, non-null *leading* column set (first column, then the
first two, ...) because publication tables put their row labels first; failing
that, the smallest leading set that is *nearly* unique (no nulls, at most
`NEAR_UNIQUE_SHARE` of the rows sharing a value: agencies repeat a row now and
then, and `atdarchive.identity` matches those rows among themselves).
Floating-point columns are never inferred as keys (a float that happens to be
unique is a measurement, not a label).

Equality of key values is exact, with null == null and NaN == NaN, so that a
key validated here matches rows the same way the diff engine does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .errors import AtdError

#: Most columns an inferred key may have.
MAX_INFERRED_KEY_COLUMNS = 3
#: Field metadata marking a key column derived on read (`atdarchive.hierarchy`):
#: b"hierarchy-v1:<position in the key>".
DERIVED_KEY_META = b"atdarchive.derived_key"
#: Largest share of a table's rows that may share key values in a nearly unique key.
NEAR_UNIQUE_SHARE = 0.05
#: Fewest rows a table needs before a nearly unique key may be inferred for it.
NEAR_UNIQUE_MIN_ROWS = 20


def flat(col: pa.ChunkedArray | pa.Array) -> pa.Array:
    """One contiguous array (chunks combined; a single chunk is returned as is)."""
    if isinstance(col, pa.ChunkedArray):
        return col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    return col


def _normalize_for_hash(arr: pa.Array) -> pa.Array:
    """Make equal values encode equally: -0.0 -> 0.0, dictionary -> values."""
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if pa.types.is_floating(arr.type):
        # x + 0.0 turns -0.0 into +0.0 and leaves NaN a NaN
        arr = pc.add(arr, pa.scalar(0.0, arr.type))
    return arr


def encode_columns(columns: Sequence[pa.Array]) -> tuple[np.ndarray, int]:
    """Compact int64 codes for rows of `columns`: equal rows, equal codes.

    Built from `dictionary_encode` (a hash table per column, O(n)); nulls get a
    code of their own, NaNs compare equal. Returns (codes, number of codes).
    """
    n = len(columns[0]) if columns else 0
    if not columns:
        return np.zeros(n, dtype=np.int64), 1 if n else 0
    code: np.ndarray | None = None
    card = 1
    for col in columns:
        arr = _normalize_for_hash(flat(col))
        try:
            enc = pc.dictionary_encode(arr, null_encoding="encode")
            idx = enc.indices.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
            m = max(len(enc.dictionary), 1)
        except (pa.ArrowNotImplementedError, pa.ArrowInvalid, pa.ArrowTypeError):
            # nested or exotic types: fall back to their text form
            values = [repr(v) for v in arr.to_pylist()]
            enc = pc.dictionary_encode(pa.array(values, pa.string()))
            idx = enc.indices.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
            m = max(len(enc.dictionary), 1)
        if code is None:
            code, card = idx, m
            continue
        code = code * m + idx
        enc2 = pc.dictionary_encode(pa.array(code))
        code = enc2.indices.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
        card = max(len(enc2.dictionary), 1)
    assert code is not None
    return code, card


def derived_key(schema: pa.Schema) -> list[str] | None:
    """The key columns a table was given on read (hierarchy), in key order; or None."""
    marked = [(f.metadata[DERIVED_KEY_META], f.name) for f in schema
              if f.metadata and DERIVED_KEY_META in f.metadata]
    return [name for _, name in sorted(marked)] or None


def is_key_type(t: pa.DataType) -> bool:
    """Whether a column of type `t` may be part of an inferred key (no float, nested, null)."""
    return not (pa.types.is_floating(t) or pa.types.is_nested(t) or pa.types.is_null(t))


def is_unique_nonnull(table: pa.Table, key: Sequence[str]) -> bool:
    """True when the columns have no nulls and no duplicate value combination."""
    if table.num_rows == 0:
        return True
    cols = [table.column(k) for k in key]
    if any(c.null_count for c in cols):
        return False
    codes, card = encode_columns(cols)
    return card == table.num_rows


def duplicated_rows(table: pa.Table, key: Sequence[str]) -> int:
    """How many rows share their key value with another row."""
    if table.num_rows == 0:
        return 0
    codes, card = encode_columns([table.column(k) for k in key])
    if card == table.num_rows:
        return 0
    counts = np.bincount(codes, minlength=card)
    return int(counts[counts > 1].sum())


def is_near_unique(table: pa.Table, key: Sequence[str]) -> bool:
    """No nulls, and at most `NEAR_UNIQUE_SHARE` of the rows (at least 2) share a value;
    tables under `NEAR_UNIQUE_MIN_ROWS` rows must be unique."""
    if table.num_rows < NEAR_UNIQUE_MIN_ROWS or any(table.column(k).null_count for k in key):
        return is_unique_nonnull(table, key)
    limit = max(2, int(NEAR_UNIQUE_SHARE * table.num_rows))
    return duplicated_rows(table, key) <= limit


def leading_candidates(names: Sequence[str], key_type: Callable[[str], bool],
                       max_columns: int = MAX_INFERRED_KEY_COLUMNS) -> list[list[str]]:
    """The leading column sets an inferred key may be (first 1, 2, ... columns), stopping
    at the first column that cannot be part of a key."""
    out: list[list[str]] = []
    for k in range(1, min(max_columns, len(names)) + 1):
        if not key_type(names[k - 1]):
            break
        out.append(list(names[:k]))
    return out


def pick_key(candidates: Sequence[list[str]], unique: Callable[[list[str]], bool],
             near_unique: Callable[[list[str]], bool]) -> list[str] | None:
    """The first candidate that is `unique`, else the first that is `near_unique`."""
    for test in (unique, near_unique):
        for cand in candidates:
            if test(cand):
                return cand
    return None


def infer_key(table: pa.Table, max_columns: int = MAX_INFERRED_KEY_COLUMNS) -> list[str] | None:
    """Smallest unique (else nearly unique) leading column set, floats excluded; or None."""
    cands = leading_candidates(table.column_names,
                               lambda c: is_key_type(table.schema.field(c).type), max_columns)
    return pick_key(cands, lambda c: is_unique_nonnull(table, c),
                    lambda c: is_near_unique(table, c))


def duplicate_examples(table: pa.Table, key: Sequence[str], limit: int = 3) -> list[dict]:
    """Up to `limit` duplicated key values (as dicts) with their row counts."""
    if table.num_rows == 0:
        return []
    codes, card = encode_columns([table.column(k) for k in key])
    if card == table.num_rows:
        return []
    counts = np.bincount(codes, minlength=card)
    dup_codes = np.flatnonzero(counts > 1)
    # first row of each duplicated code, in table order
    first = np.full(card, -1, dtype=np.int64)
    first[codes[::-1]] = np.arange(len(codes) - 1, -1, -1)
    rows = np.sort(first[dup_codes])[:limit]
    sub = table.select(list(key)).take(pa.array(rows)).to_pylist()
    return [{**row, "_count": int(counts[codes[r]])} for row, r in zip(sub, rows, strict=True)]


def validate_key(table: pa.Table, key: Sequence[str], table_name: str, side: str = "") -> None:
    """Raise AtdError if `key` names missing columns or is not unique in `table`."""
    where = f"table '{table_name}'" + (f" ({side})" if side else "")
    missing = [k for k in key if k not in table.column_names]
    if missing:
        raise AtdError(
            f"key column {', '.join(map(repr, missing))} not in {where}; "
            f"columns are: {', '.join(table.column_names)}"
        )
    dups = duplicate_examples(table, key)
    if dups:
        shown = "; ".join(
            ", ".join(f"{k}={d[k]!r}" for k in key) + f" ({d['_count']} rows)" for d in dups
        )
        raise AtdError(f"key ({', '.join(key)}) is not unique in {where}: duplicates e.g. {shown}")

