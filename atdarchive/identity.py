"""Row identity: which row of one release is which row of the next.

One implementation for diff, the blame index and the audit (README "Row identity").

Keys degrade per row, not per table. Rows whose key value is unique on both
sides match by key. Rows sharing a key value that repeats on either side (ICE
lists one facility twice) are matched among themselves: first rows whose
compared content is identical, then the rest in table order; what is left over
is added or removed. A release that breaks its key therefore costs only the rows
that share the broken value, never the table's history.

Row renames: a removed and an added row whose keys differ only slightly
(truncation, case, spacing, one typo) and whose values are close are paired
(`pair_renamed_rows`). The search is bounded by `RENAME_CANDIDATE_CAP` pairs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from atdarchive.diff.compare import occurrence_rank

#: Most (removed, added) row pairs examined when looking for renamed rows.
RENAME_CANDIDATE_CAP = 100_000
#: Shortest key text whose prefix may be a truncation of a longer one.
TRUNCATION_MIN = 8
#: Smallest share of a renamed row's compared cells that must be close.
RENAME_MIN_CLOSE = 0.5

#: (old rows, new rows) -> joint content codes of those rows (old codes, new codes).
ContentCodes = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass
class RowMatch:
    """Matched row pairs (aligned, ascending by old row) and the rows left over."""

    old: np.ndarray
    new: np.ndarray
    removed: np.ndarray
    added: np.ndarray
    duplicated: bool  # some key value repeats on a side (rows were matched among themselves)
    #: per side, (first row, rows sharing it) of each repeated key value, in table order
    repeats_old: tuple[np.ndarray, np.ndarray] = (np.zeros(0, np.int64),) * 2
    repeats_new: tuple[np.ndarray, np.ndarray] = (np.zeros(0, np.int64),) * 2


def pair_occurrences(o_code: np.ndarray, n_code: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pair the k-th row of each code on one side with its k-th row on the other.

    Returns positions into `o_code` and `n_code` (aligned)."""
    if len(o_code) == 0 or len(n_code) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    ro, rn = occurrence_rank(o_code), occurrence_rank(n_code)
    width = int(max(ro.max(), rn.max())) + 1
    ko, kn = o_code * width + ro, n_code * width + rn
    order = np.argsort(kn, kind="stable")
    sorted_n = kn[order]
    pos = np.minimum(np.searchsorted(sorted_n, ko), len(sorted_n) - 1)
    hit = sorted_n[pos] == ko
    return np.flatnonzero(hit), order[pos[hit]]


def match_by_key(o_code: np.ndarray, n_code: np.ndarray, card: int,
                 content: ContentCodes | None = None) -> RowMatch:
    """Rows matched by key codes (joint codes of both sides), degrading per row.

    `content(old_rows, new_rows)` gives joint content codes for rows in duplicated
    key groups (only those rows are asked for); without it they match in order."""
    n_old, n_new = len(o_code), len(n_code)
    cnt_o = np.bincount(o_code, minlength=card)
    cnt_n = np.bincount(n_code, minlength=card)
    dup = (cnt_o > 1) | (cnt_n > 1)
    duplicated = bool(dup.any())
    if duplicated:
        o_uni, n_uni = np.flatnonzero(~dup[o_code]), np.flatnonzero(~dup[n_code])
    else:
        o_uni, n_uni = np.arange(n_old), np.arange(n_new)
    pos_new = np.full(card, -1, dtype=np.int64)
    pos_new[n_code[n_uni]] = n_uni
    hit = pos_new[o_code[o_uni]]
    got = hit >= 0
    pieces_o, pieces_n = [o_uni[got]], [hit[got]]
    if duplicated:
        o_dup, n_dup = np.flatnonzero(dup[o_code]), np.flatnonzero(dup[n_code])
        if len(o_dup) and len(n_dup):
            po, pn = _pair_duplicates(o_dup, n_dup, o_code[o_dup], n_code[n_dup], content)
            pieces_o.append(po)
            pieces_n.append(pn)
    if len(pieces_o) == 1:
        mo, mn = pieces_o[0], pieces_n[0]  # already ascending by old row
    else:  # one scatter puts the pairs in old-row order (no sort)
        new_of_old = np.full(n_old, -1, dtype=np.int64)
        for po, pn in zip(pieces_o, pieces_n, strict=True):
            new_of_old[po] = pn
        mo = np.flatnonzero(new_of_old >= 0)
        mn = new_of_old[mo]
    out = RowMatch(mo, mn, _rest(n_old, mo), _rest(n_new, mn), duplicated)
    if duplicated:
        out.repeats_old = _repeats(o_code, cnt_o, np.flatnonzero(dup[o_code]))
        out.repeats_new = _repeats(n_code, cnt_n, np.flatnonzero(dup[n_code]))
    return out


def _repeats(code: np.ndarray, counts: np.ndarray,
             candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first row, count) of each code that occurs more than once on this side, in table
    order (`candidates`: the rows of duplicated groups, ascending)."""
    rows = candidates[counts[code[candidates]] > 1]
    _, first = np.unique(code[rows], return_index=True)
    rows = np.sort(rows[first])
    return rows, counts[code[rows]]


def _pair_duplicates(o_rows: np.ndarray, n_rows: np.ndarray, ko: np.ndarray, kn: np.ndarray,
                     content: ContentCodes | None) -> tuple[np.ndarray, np.ndarray]:
    """Rows of duplicated key groups: identical content first, then table order."""
    out_o, out_n = [], []
    if content is not None:
        co, cn = content(o_rows, n_rows)
        both = _joint(np.concatenate([ko, kn]), np.concatenate([co, cn]))
        a, b = pair_occurrences(both[: len(ko)], both[len(ko):])
        out_o.append(o_rows[a])
        out_n.append(n_rows[b])
        keep_o, keep_n = _rest(len(o_rows), a), _rest(len(n_rows), b)
        o_rows, n_rows, ko, kn = o_rows[keep_o], n_rows[keep_n], ko[keep_o], kn[keep_n]
    a, b = pair_occurrences(ko, kn)
    out_o.append(o_rows[a])
    out_n.append(n_rows[b])
    return np.concatenate(out_o), np.concatenate(out_n)


def _joint(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """One compact code per distinct (a, b) pair (both non-negative codes)."""
    combined = a.astype(np.int64) * (int(b.max(initial=0)) + 1) + b
    return np.unique(combined, return_inverse=True)[1].reshape(-1).astype(np.int64)


def _rest(n: int, used: np.ndarray) -> np.ndarray:
    """Positions 0..n-1 not in `used`."""
    keep = np.ones(n, dtype=bool)
    keep[used] = False
    return np.flatnonzero(keep)


# ---------------------------------------------------------------- renamed rows


def _squash(text: str) -> str:
    return " ".join(text.casefold().split())


_LETTER = re.compile(r"[^\W\d_]")


def keys_alike(a: str, b: str) -> bool:
    """Whether two key texts differ only by truncation, case, spacing or one typo.

    Only words are misspelt: keys without letters (dates, codes, numbers — 12/08/2020
    and 12/06/2020) are different rows, however close their characters."""
    if a == b or not (_LETTER.search(a) and _LETTER.search(b)):
        return False
    sa, sb = _squash(a), _squash(b)
    if sa == sb or sa.replace(" ", "") == sb.replace(" ", ""):
        return True
    short, long = sorted((sa, sb), key=len)
    if len(short) >= TRUNCATION_MIN and long.startswith(short):
        return True
    return len(short) >= 4 and len(long) - len(short) <= 1 and _one_edit(short, long)


def _one_edit(short: str, long: str) -> bool:
    """At most one substitution, insertion or deletion apart (`len(short) <= len(long)`)."""
    i = 0
    while i < len(short) and short[i] == long[i]:
        i += 1
    if len(short) == len(long):
        return short[i + 1:] == long[i + 1:]
    return short[i:] == long[i + 1:]


def pair_renamed_rows(removed_keys: Sequence[str], added_keys: Sequence[str],
                      closeness: Callable[[np.ndarray, np.ndarray], np.ndarray],
                      ) -> tuple[np.ndarray, np.ndarray, bool]:
    """Removed and added rows paired as renames: alike keys, close values.

    `closeness(removed_pos, added_pos)` gives, per candidate pair, the share of the
    compared cells that are close. Pairs are taken greedily, closest first, each
    row at most once. Returns (positions into removed, into added, capped)."""
    empty = np.zeros(0, np.int64)
    if not removed_keys or not added_keys:
        return empty, empty, False
    capped = len(removed_keys) * len(added_keys) > RENAME_CANDIDATE_CAP
    if capped:
        return empty, empty, True
    cand = [(i, j) for i, a in enumerate(removed_keys) for j, b in enumerate(added_keys)
            if a is not None and b is not None and keys_alike(a, b)]
    if not cand:
        return empty, empty, False
    ri = np.array([c[0] for c in cand], np.int64)
    ai = np.array([c[1] for c in cand], np.int64)
    score = closeness(ri, ai)
    order = np.argsort(-score, kind="stable")
    order = order[score[order] >= RENAME_MIN_CLOSE]
    return (*greedy_pairs(ri, ai, order), False)


def greedy_pairs(left: np.ndarray, right: np.ndarray,
                 order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Candidate pairs (left[i], right[i]) taken in `order`, each side's row at most once."""
    used_l: set[int] = set()
    used_r: set[int] = set()
    out_l, out_r = [], []
    for i in order.tolist():
        a, b = int(left[i]), int(right[i])
        if a in used_l or b in used_r:
            continue
        used_l.add(a)
        used_r.add(b)
        out_l.append(a)
        out_r.append(b)
    return np.array(out_l, np.int64), np.array(out_r, np.int64)
