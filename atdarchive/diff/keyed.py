"""Keyed tables: resolving the key (given > declared > hierarchy > inferred) and matching
rows by it.

Key values are turned into compact integer codes with Arrow's hash-based
`dictionary_encode`, then matched by `atdarchive.identity` (numpy scatter/gather; rows
of a repeated key value among themselves; renamed rows paired) — no join, no Python
loop over rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pyarrow as pa

from atdarchive.diff.cells import Side, compare_pairs
from atdarchive.diff.compare import equal_mask, joint_codes, pair_renames, same_contents, to_text
from atdarchive.diff.types import ColumnPlan, DiffOptions, Matching
from atdarchive.errors import AtdError
from atdarchive.identity import RENAME_CANDIDATE_CAP, match_by_key, pair_renamed_rows
from atdarchive.keyresolver import WRITTEN_SOURCES
from atdarchive.keys import (
    derived_key,
    duplicate_examples,
    flat,
    infer_key,
    is_key_type,
    is_near_unique,
    is_unique_nonnull,
    leading_candidates,
    pick_key,
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
    import difflib

    missing = [k for k in key if k not in columns]
    if missing:
        near = difflib.get_close_matches(missing[0], list(columns), n=1, cutoff=0.6)
        hint = f"did you mean {near[0]!r}? " if near else ""
        shown = ", ".join(list(columns)[:12]) + (", ..." if len(columns) > 12 else "")
        raise AtdError(
            f"{source} key column {', '.join(map(repr, missing))} not in table '{name}' "
            f"({side}); {hint}columns are: {shown}"
        )


def use_resolved(choice: tuple[list[str] | None, str], name: str, *,
                 old: Sequence[str] | None, new: Sequence[str] | None
                 ) -> tuple[list[str] | None, str]:
    """The archive's key (`keyresolver.resolve_key`) for a pair: a written (given, declared,
    spec) key must have its columns on both sides; a chosen one (hierarchy, inferred)
    a side lacks is no key for this pair, said in its source."""
    key, source = choice
    if not key:
        return None, source
    for columns, side in ((old, "old"), (new, "new")):
        if columns is None:
            continue
        if source in WRITTEN_SOURCES:
            check_key_columns(columns, key, name, f"{side} release", source)
        elif any(k not in columns for k in key):
            missing = next(k for k in key if k not in columns)
            return None, f"none ({source} key ({', '.join(key)}) has no column {missing!r} " \
                         f"in the {side} release)"
    return list(key), source


def infer_leading_key(base: pa.Schema, other: pa.Schema, unique: Callable[[list[str]], bool],
                      near_unique: Callable[[list[str]], bool]) -> list[str] | None:
    """Smallest leading column set of `base`, present in `other` and of key types on both
    sides (never float), that is unique on both sides, else nearly unique on both."""
    def key_type(c: str) -> bool:
        return c in other.names and is_key_type(base.field(c).type) and is_key_type(
            other.field(c).type)

    return pick_key(leading_candidates(base.names, key_type), unique, near_unique)


def shared_derived_key(a: pa.Schema | None, b: pa.Schema | None) -> list[str] | None:
    """The hierarchy key both sides derive (the one side's when the other is absent)."""
    keys = [derived_key(s) for s in (a, b) if s is not None]
    return keys[0] if keys and all(k == keys[0] for k in keys) and keys[0] else None


def resolve_key(old: pa.Table | None, new: pa.Table | None, options: DiffOptions,
                name: str) -> tuple[list[str] | None, str]:
    """(key, key source) for two in-memory tables; (None, "none") when there is none.

    Given and declared keys are used as they are (a value the agency repeats is
    matched per row, `atdarchive.identity`); a column they name must exist."""
    if options.resolved_key is not None:
        return use_resolved(options.resolved_key, name,
                            old=old.column_names if old is not None else None,
                            new=new.column_names if new is not None else None)
    given = given_key(options)
    if given:
        key, source = given
        for t, side in ((old, "old"), (new, "new")):
            if t is not None:
                check_key_columns(t.column_names, key, name, f"{side} release", source)
        return key, source
    derived = shared_derived_key(old.schema if old is not None else None,
                                 new.schema if new is not None else None)
    if derived:
        return derived, "hierarchy"
    if new is None or old is None:
        present = new if new is not None else old
        key = infer_key(present) if present is not None else None
    else:
        key = infer_leading_key(
            new.schema, old.schema,
            lambda c: is_unique_nonnull(new, c) and is_unique_nonnull(old, c),
            lambda c: is_near_unique(new, c) and is_near_unique(old, c))
    return (key, "inferred") if key else (None, "none")


#: Most repeated key values listed per release.
DUPLICATES_SHOWN = 5


def duplicate_report(table: pa.Table, key: Sequence[str], side: str,
                     limit: int = DUPLICATES_SHOWN) -> list[dict]:
    """`duplicate_key` entries of one release: the key values that repeat, with counts."""
    return [{"release": side, "key": {k: d[k] for k in key}, "rows": d["_count"]}
            for d in duplicate_examples(table, key, limit)]


def repeats_report(table: pa.Table, key: Sequence[str], side: str,
                   repeats: tuple[np.ndarray, np.ndarray]) -> list[dict]:
    """`duplicate_report` from what matching found (rows of `table`, which is whole)."""
    rows, counts = repeats[0][:DUPLICATES_SHOWN], repeats[1][:DUPLICATES_SHOWN]
    values = table.select(list(key)).take(pa.array(rows)).to_pylist()
    return [{"release": side, "key": v, "rows": int(c)}
            for v, c in zip(values, counts, strict=True)]


def duplicate_note(key: Sequence[str], dups: list[dict]) -> str:
    """One line: which key repeats where, and how its rows were matched."""
    shown = "; ".join(
        f"{', '.join(str(v) for v in d['key'].values())} ×{d['rows']} ({d['release']})"
        for d in dups[:3])
    more = f" (+{len(dups) - 3} more)" if len(dups) > 3 else ""
    return (f"duplicate_key: ({', '.join(key)}) repeats: {shown}{more}; those rows are "
            "matched among themselves, by content, then order")


# ---------------------------------------------------------------- matching rows


def key_field(ot: pa.Table, nt: pa.Table, k: str) -> pa.Field:
    """The field key column `k` has in `cells_changed` (the new side's value type)."""
    tn = nt.schema.field(k).type
    return pa.field(k, tn.value_type if pa.types.is_dictionary(tn) else tn)


def match_keyed(old: Side, new: Side, key: list[str], plan: ColumnPlan,
                options: DiffOptions) -> Matching:
    """Rows matched by key, per row (`identity.match_by_key`); renamed rows paired; cells
    compared on matched rows; renamed columns detected."""
    ot, nt = old.table, new.table
    key_fields = [key_field(ot, nt, k) for k in key]
    o_code, n_code, card = joint_codes([ot.column(k) for k in key],
                                       [nt.column(k) for k in key], options)
    content_pairs = plan.pairs([])

    def content(o_rows: np.ndarray, n_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        oi, ni = pa.array(o_rows), pa.array(n_rows)
        co, cn, _ = joint_codes([flat(ot.column(o)).take(oi) for o, _ in content_pairs],
                                [flat(nt.column(c)).take(ni) for _, c in content_pairs],
                                options)
        return co, cn

    rm = match_by_key(o_code, n_code, card, content if content_pairs else None)
    o_match, n_match, removed, added = rm.old, rm.new, rm.removed, rm.added
    renames = _detect_renames_aligned(ot, nt, plan.removed, plan.added, o_match, n_match,
                                      options)
    pairs = plan.pairs(renames)
    ro, rn, capped = _renamed_rows(ot, nt, key, removed, added, pairs)
    pieces = compare_pairs(old, new, o_match, n_match, pairs, options, key_fields)
    notes = [f"renamed rows not looked for: more than {RENAME_CANDIDATE_CAP} removed × added "
             "row pairs"] if capped else []
    renamed = None
    if len(ro):
        renamed = (removed[ro], added[rn])
        key_pairs = [(k, k) for k in key]
        pieces += compare_pairs(old, new, renamed[0], renamed[1], key_pairs + pairs, options,
                                key_fields)
        o_match = np.concatenate([o_match, renamed[0]])
        n_match = np.concatenate([n_match, renamed[1]])
        removed = np.setdiff1d(removed, renamed[0])
        added = np.setdiff1d(added, renamed[1])
    return Matching(renames, removed, added, (o_match, n_match), pieces, key_fields, notes,
                    renamed_rows=renamed,
                    repeats=(rm.repeats_old, rm.repeats_new) if rm.duplicated else None)


def key_values(table: pa.Table, key: Sequence[str], rows: np.ndarray) -> list[list[str | None]]:
    """Key values of `rows` as text, one list per row."""
    idx = pa.array(rows)
    parts = [to_text(flat(table.column(k)).take(idx)).to_pylist() for k in key]
    return [list(vals) for vals in zip(*parts, strict=True)]


def joined(values: list[str | None]) -> str:
    """One text for a key (parts joined by ' | '; null as empty)."""
    return " | ".join("" if v is None else v for v in values)


def _renamed_rows(ot: pa.Table, nt: pa.Table, key: list[str], removed: np.ndarray,
                  added: np.ndarray, pairs: list[tuple[str, str]],
                  ) -> tuple[np.ndarray, np.ndarray, bool]:
    """Positions into `removed` / `added` of rows paired as renames (`identity`), and
    whether the search was skipped for size."""
    if not len(removed) or not len(added):
        return np.zeros(0, np.int64), np.zeros(0, np.int64), False
    if len(removed) * len(added) > RENAME_CANDIDATE_CAP:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), True

    def closeness(ri: np.ndarray, ai: np.ndarray) -> np.ndarray:
        if not pairs:
            return np.ones(len(ri))
        oi, ni = pa.array(removed[ri]), pa.array(added[ai])
        close = np.zeros(len(ri))
        near = DiffOptions(rel_tol=0.1, ignore_case=True, ignore_whitespace=True)
        for o, c in pairs:
            close += equal_mask(flat(ot.column(o)).take(oi), flat(nt.column(c)).take(ni), near)
        return close / len(pairs)

    return pair_renamed_rows([joined(v) for v in key_values(ot, key, removed)],
                             [joined(v) for v in key_values(nt, key, added)], closeness)


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

