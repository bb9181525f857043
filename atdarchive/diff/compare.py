"""Comparing values: the rules every diff, blame and audit shares.

NaN equals NaN; null differs from any value; `abs_tol`/`rel_tol` apply to
numbers (like `math.isclose`); `ignore_case`/`ignore_whitespace` to strings
(whitespace: trimmed, inner runs collapsed). With `strict_types=False`
(default) a column whose type changed compares by value (int 1 == float 1.0,
"12" == 12), so an int -> float change is ONE schema change, not a change of
every cell.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from atdarchive.diff.types import DiffOptions
from atdarchive.keys import encode_columns, flat

NUMERIC_KINDS = frozenset({"int", "float", "decimal"})


def decode(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One contiguous array with dictionaries decoded (what the comparisons work on)."""
    arr = flat(arr)
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    return arr


def value_kind(t: pa.DataType) -> str:
    """The comparison family of a type: bool, int, float, decimal, str, time, binary,
    null or other (dictionaries count as their value type)."""
    if pa.types.is_dictionary(t):
        return value_kind(t.value_type)
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


def to_text(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Values as text: numbers shortest round-trip ("1e+20", "nan"), dates ISO, bytes hex."""
    arr = decode(arr)
    kind = value_kind(arr.type)
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


def from_text(text: pa.Array, target: pa.DataType) -> pa.Array:
    """Parse `to_text`'s form back into `target` (its inverse)."""
    base = target.value_type if pa.types.is_dictionary(target) else target
    if value_kind(base) == "str":
        return text.cast(base)
    if value_kind(base) == "binary":
        return pa.array([None if v is None else bytes.fromhex(v) for v in text.to_pylist()], base)
    return pc.cast(text, base)


def to_number(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Values as float64 when the column is numeric, else all null."""
    arr = decode(arr)
    if value_kind(arr.type) in NUMERIC_KINDS:
        return pc.cast(arr, pa.float64(), safe=False)
    return pa.nulls(len(arr), pa.float64())


def normalize_text(arr: pa.Array, options: DiffOptions) -> pa.Array:
    """Strings as compared under `ignore_whitespace` / `ignore_case`."""
    if options.ignore_whitespace:
        arr = pc.replace_substring_regex(pc.utf8_trim_whitespace(arr), r"\s+", " ")
    if options.ignore_case:
        arr = pc.utf8_lower(arr)
    return arr


def _np_bool(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    arr = flat(arr)
    if arr.null_count:
        arr = arr.fill_null(False)
    return arr.to_numpy(zero_copy_only=False)


def _null_mask(arr: pa.Array) -> np.ndarray:
    if arr.null_count == 0:
        return np.zeros(len(arr), dtype=bool)
    return _np_bool(arr.is_null())


def equal_mask(a: pa.Array | pa.ChunkedArray, b: pa.Array | pa.ChunkedArray,
               options: DiffOptions) -> np.ndarray:
    """Element-wise "same value" of two aligned columns under `options`, as a numpy bool
    array (NaN == NaN; null equals only null; types may differ, see the module doc)."""
    a, b = decode(a), decode(b)
    n = len(a)
    an, bn = _null_mask(a), _null_mask(b)
    ka, kb = value_kind(a.type), value_kind(b.type)
    tol = options.abs_tol > 0 or options.rel_tol > 0
    if options.strict_types and a.type != b.type and not (ka == kb == "str"):
        eq = np.zeros(n, dtype=bool)
    elif ka in NUMERIC_KINDS and kb in NUMERIC_KINDS:
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
        eq = _np_bool(pc.equal(normalize_text(a.cast(pa.string()), options),
                               normalize_text(b.cast(pa.string()), options)))
    elif a.type == b.type and ka not in ("other", "binary"):
        eq = _np_bool(pc.equal(a, b))
    elif a.type == b.type:
        eq = np.array([x == y for x, y in zip(a.to_pylist(), b.to_pylist(), strict=True)], bool)
    else:
        ta, tb = _comparable_text(a, b, ka, kb, options)
        eq = _np_bool(pc.equal(ta, tb))
    eq = eq.copy() if not eq.flags.writeable else eq
    eq[an & bn] = True
    eq[an ^ bn] = False
    return eq


def _comparable_text(a: pa.Array, b: pa.Array, ka: str, kb: str,
                     options: DiffOptions) -> tuple[pa.Array, pa.Array]:
    """Two columns of different types as text (normalized when one of them is text)."""
    ta, tb = to_text(a), to_text(b)
    if "str" in (ka, kb):
        ta, tb = normalize_text(ta, options), normalize_text(tb, options)
    return ta, tb


def same_contents(a: pa.Array, b: pa.Array, options: DiffOptions) -> bool:
    """Equal length and every element equal under `options`."""
    if len(a) != len(b):
        return False
    return bool(np.all(equal_mask(a, b, options)))


def pair_renames(removed: Sequence[str], added: Sequence[str],
                 values: Callable[[str], pa.Array],
                 same: Callable[[pa.Array, str], bool]) -> list[tuple[str, str]]:
    """Greedy (removed, added) column pairs whose values are the `same`; removed columns
    that are all null never pair (they would match any other all-null column)."""
    out: list[tuple[str, str]] = []
    used: set[str] = set()
    for r in removed:
        a = values(r)
        if a.null_count == len(a):
            continue
        for c in added:
            if c not in used and same(a, c):
                out.append((r, c))
                used.add(c)
                break
    return out


def sorted_values(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    """The column sorted (unchanged when its type cannot be sorted)."""
    arr = decode(arr)
    try:
        return arr.take(pc.sort_indices(arr))
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
        return arr


def identity_arrays(a: pa.Array | pa.ChunkedArray, b: pa.Array | pa.ChunkedArray,
                    options: DiffOptions) -> tuple[pa.Array, pa.Array]:
    """Two columns brought to one type so that equal values hash equal (keys, keyless rows)."""
    a, b = decode(a), decode(b)
    ka, kb = value_kind(a.type), value_kind(b.type)
    if ka == kb == "str":
        return (normalize_text(a.cast(pa.large_string()), options),
                normalize_text(b.cast(pa.large_string()), options))
    if a.type == b.type:
        return a, b
    if options.strict_types:
        return (
            pc.binary_join_element_wise(str(a.type) + ":", to_text(a), ""),
            pc.binary_join_element_wise(str(b.type) + ":", to_text(b), ""),
        )
    if ka in NUMERIC_KINDS and kb in NUMERIC_KINDS:
        target = pa.int64() if ka == kb == "int" else pa.float64()
        return pc.cast(a, target, safe=False), pc.cast(b, target, safe=False)
    return _comparable_text(a, b, ka, kb, options)


def joint_codes(
    old_cols: Sequence[pa.Array | pa.ChunkedArray],
    new_cols: Sequence[pa.Array | pa.ChunkedArray],
    options: DiffOptions,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Integer codes for the rows of both sides over paired columns: equal rows (under
    `options`), equal codes. Returns (old codes, new codes, number of codes)."""
    n_old = len(old_cols[0]) if old_cols else 0
    joint = []
    for a, b in zip(old_cols, new_cols, strict=True):
        x, y = identity_arrays(a, b, options)
        joint.append(pa.concat_arrays([x, y.cast(x.type)]))
    if not joint:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), 1
    codes, card = encode_columns(joint)
    return codes[:n_old], codes[n_old:], card


def occurrence_rank(codes: np.ndarray) -> np.ndarray:
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
