"""Keyed tables: resolving the key (given > declared > inferred, DESIGN §6) and matching
rows by it.

Key values are turned into compact integer codes with Arrow's hash-based
`dictionary_encode`, then matched with one numpy scatter/gather (no join, no
Python loop over rows).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pyarrow as pa

from atdarchive.diff.cells import Side, compare_pairs
from atdarchive.diff.compare import joint_codes, pair_renames, same_contents
from atdarchive.diff.types import ColumnPlan, DiffOptions, Matching
from atdarchive.errors import AtdError
from atdarchive.keys import (
    MAX_INFERRED_KEY_COLUMNS,
    flat,
    infer_key,
    is_key_type,
    is_unique_nonnull,
    validate_key,
)

# ---------------------------------------------------------------- resolving the key


def given_key(options: DiffOptions) -> tuple[list[str], str] | None:
    """The key the caller gave (`--key`) or the dataset declares, with its source."""
    for given, source in ((options.key, "given"), (options.declared_key, "declared")):
        if given:
            return list(given), source
    return None


def check_key_columns(columns: Sequence[str], key: Sequence[str], name: str, side: str,
                      source: str) -> None:
    """Raise AtdError naming the key columns missing from one side's `columns`."""
    missing = [k for k in key if k not in columns]
    if missing:
        raise AtdError(
            f"{source} key column {', '.join(map(repr, missing))} not in table '{name}' ({side}); "
            f"columns are: {', '.join(columns)}"
        )


def infer_leading_key(base: pa.Schema, other: pa.Schema,
                      unique: Callable[[list[str]], bool]) -> list[str] | None:
    """Smallest leading column set of `base`, present in `other` and of key types on both
    sides (never float), that `unique` accepts (unique and non-null on both sides)."""
    names = base.names
    for k in range(1, min(MAX_INFERRED_KEY_COLUMNS, len(names)) + 1):
        cand = names[:k]
        last = cand[-1]
        if last not in other.names or not (is_key_type(base.field(last).type)
                                           and is_key_type(other.field(last).type)):
            return None
        if unique(cand):
            return list(cand)
    return None


def resolve_key(old: pa.Table | None, new: pa.Table | None, options: DiffOptions,
                name: str) -> tuple[list[str] | None, str]:
    """(key, key source) for two in-memory tables; (None, "none") when there is none."""
    given = given_key(options)
    if given:
        key, source = given
        for t, side in ((old, "old"), (new, "new")):
            if t is not None:
                check_key_columns(t.column_names, key, name, side, source)
                validate_key(t, key, name, side)
        return key, source
    if new is None or old is None:
        present = new if new is not None else old
        key = infer_key(present) if present is not None else None
    else:
        key = infer_leading_key(new.schema, old.schema, lambda c: is_unique_nonnull(
            new, c) and is_unique_nonnull(old, c))
    return (key, "inferred") if key else (None, "none")


# ---------------------------------------------------------------- matching rows


def key_field(ot: pa.Table, nt: pa.Table, k: str) -> pa.Field:
    """The field key column `k` has in `cells_changed` (the new side's value type)."""
    tn = nt.schema.field(k).type
    return pa.field(k, tn.value_type if pa.types.is_dictionary(tn) else tn)


def match_keyed(old: Side, new: Side, key: list[str], plan: ColumnPlan,
                options: DiffOptions) -> Matching:
    """Rows matched by key; cells compared on matched rows; renamed columns detected."""
    ot, nt = old.table, new.table
    key_fields = [key_field(ot, nt, k) for k in key]
    o_code, n_code, card = joint_codes([ot.column(k) for k in key],
                                       [nt.column(k) for k in key], options)
    pos_new = np.full(card, -1, dtype=np.int64)
    pos_new[n_code] = np.arange(len(n_code))
    match = pos_new[o_code]
    o_match = np.flatnonzero(match >= 0)
    n_match = match[o_match]
    seen_new = np.zeros(len(n_code), dtype=bool)
    seen_new[n_match] = True
    renames = _detect_renames_aligned(ot, nt, plan.removed, plan.added, o_match, n_match,
                                      options)
    pieces = compare_pairs(old, new, o_match, n_match, plan.pairs(renames), options, key_fields)
    return Matching(renames, np.flatnonzero(match < 0), np.flatnonzero(~seen_new),
                    (o_match, n_match), pieces, key_fields)


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
    oi, ni = pa.array(o_idx), pa.array(n_idx)
    return pair_renames(removed, added, lambda r: flat(ot.column(r)).take(oi),
                        lambda a, c: same_contents(a, flat(nt.column(c)).take(ni), options))

