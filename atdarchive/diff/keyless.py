"""Tables without a unique key: diffed as multisets of rows, then edits paired.

Each distinct row is counted on both sides; surplus copies are removed/added
rows. Removed and added rows that differ in one or two cells are then paired
into edits by a bounded search (see `PAIR_CANDIDATE_CAP`).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from atdarchive.diff.cells import Side, compare_pairs
from atdarchive.diff.compare import (
    equal_mask,
    joint_codes,
    occurrence_rank,
    pair_renames,
    same_contents,
    sorted_values,
)
from atdarchive.diff.types import ColumnPlan, DiffOptions, Matching
from atdarchive.identity import greedy_pairs
from atdarchive.keys import flat

#: Most (removed, added) row pairs examined when pairing keyless rows into edits.
#: Candidates come from blocking on column groups (a pair differing in <= 2 cells
#: agrees on one of 3 column groups); beyond the cap, rows stay added/removed.
PAIR_CANDIDATE_CAP = 10_000

#: Most cells a keyless pair may differ in and still count as an edit.
PAIR_MAX_DIFFERING = 2


def match_keyless(old: Side, new: Side, plan: ColumnPlan, options: DiffOptions) -> Matching:
    """Rows matched as multisets over the compared columns, then edits paired."""
    ot, nt = old.table, new.table
    renames = _detect_renames_multiset(ot, nt, plan.removed, plan.added, options)
    pairs = plan.pairs(renames)
    rem_rows, add_rows, matched = _multiset(ot, nt, pairs, options,
                                            need_pairs=bool(plan.added))
    pr, pn, capped = _pair_edits(ot, nt, rem_rows, add_rows, pairs, options)
    notes = []
    if capped:
        notes.append(
            f"pairing of removed/added rows into edits stopped at {PAIR_CANDIDATE_CAP} "
            "candidates; remaining rows are reported as added/removed"
        )
    pieces: list[pa.Table] = []
    if len(pr):
        keep_r = np.ones(len(rem_rows), bool)
        keep_r[pr] = False
        keep_a = np.ones(len(add_rows), bool)
        keep_a[pn] = False
        o_pair, n_pair = rem_rows[pr], add_rows[pn]
        pieces = compare_pairs(old, new, o_pair, n_pair, pairs, options, [])
        rem_rows, add_rows = rem_rows[keep_r], add_rows[keep_a]
        if matched is not None:
            matched = (np.concatenate([matched[0], o_pair]), np.concatenate([matched[1], n_pair]))
    return Matching(renames, rem_rows, add_rows, matched, pieces, notes=notes)


def _detect_renames_multiset(
    ot: pa.Table, nt: pa.Table, removed: list[str], added: list[str], options: DiffOptions
) -> list[tuple[str, str]]:
    """A removed and an added column holding the same multiset of values: a rename."""
    if not removed or not added or ot.num_rows != nt.num_rows or ot.num_rows == 0:
        return []

    def same(a: pa.Array, c: str) -> bool:
        b = flat(nt.column(c))
        return same_contents(a, b, options) or same_contents(sorted_values(a),
                                                             sorted_values(b), options)

    return pair_renames(removed, added, lambda r: flat(ot.column(r)), same)


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
        o_code, n_code, card = joint_codes(
            [ot.column(o) for o, _ in pairs], [nt.column(n) for _, n in pairs], options
        )
    else:
        o_code, n_code, card = np.zeros(n_o, np.int64), np.zeros(n_n, np.int64), 1
    cnt_o = np.bincount(o_code, minlength=card)
    cnt_n = np.bincount(n_code, minlength=card)
    r_o, r_n = occurrence_rank(o_code), occurrence_rank(n_code)
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
    sub_o = {o: flat(ot.column(o)).take(ri) for o, _ in pairs}
    sub_n = {n: flat(nt.column(n)).take(ai) for _, n in pairs}
    budget = PAIR_CANDIDATE_CAP
    capped = False
    cand_r, cand_a = [], []
    for g in groups:
        rc, ac, _ = joint_codes([sub_o[o] for o, _ in g], [sub_n[n] for _, n in g], options)
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
        ndiff += ~equal_mask(sub_o[o].take(ri2), sub_n[n].take(ai2), options)
    ok = ndiff <= limit
    rr, aa, ndiff = rr[ok], aa[ok], ndiff[ok]
    order = np.lexsort((aa, rr, ndiff))  # fewest differing cells first; bounded by the cap
    return (*greedy_pairs(rr, aa, order), capped)
