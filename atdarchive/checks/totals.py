"""`total_mismatch`: a total that no longer equals the sum of its components.

Totals checked, on whole-number columns of tables up to 5,000 rows:

* a `Total` row of a flat table against the other rows (label: the first text column);
* in a hierarchy (`atdarchive.hierarchy`): each group row against its members, the
  grand total against the group rows (ATD's AOR rows and their technologies; the
  book-outs' release reasons and their criminality rows);
* a `Total` column against the period columns of its row.

Across tables: grand totals that agreed in the parent (ATD's active population is
181,401 by AOR and technology, by status and by technology alike) must still agree;
pairs that no longer do are named with both values.

Agencies' tables do not all add up (rounded averages, suppressed cells, a group that
overlaps others: ICE's "Bonded Out" is the sum of the two bond reasons below it), so a
total is judged only where it added up in the parent, and was not zero there (an
empty month adds up trivially): a mismatch that is new in this release,
named by its cell (`sheet!A1`), the sum found and the difference.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from atdarchive.checks import register
from atdarchive.checks.base import Finding, Release, finding, other
from atdarchive.keys import derived_key
from atdarchive.util import number

TOTAL_RE = re.compile(r"(?i)^\s*(grand\s+)?total\b")
MAX_ROWS = 5000
#: (kind, where) -> (stated, summed, components): one total and what it should add up to.
Check = dict[tuple[str, str, str], tuple[float, float, int, int]]


def _labels(table: pa.Table, column: str) -> list[str | None]:
    return [None if v is None else str(v) for v in table.column(column).to_pylist()]


def _whole_numbers(table: pa.Table, skip: set[str]) -> list[str]:
    out = []
    for f in table.schema:
        if f.name in skip or not (pa.types.is_integer(f.type) or pa.types.is_floating(f.type)):
            continue
        values = table.column(f.name).drop_null()
        if len(values) and pc.all(pc.equal(pc.round(values), values)).as_py():
            out.append(f.name)
    return out


def _row_groups(table: pa.Table) -> list[tuple[int, list[int], str]]:
    """(total row, component rows, label) of every row total the table carries."""
    key = derived_key(table.schema)
    if key and len(key) == 2:
        groups, members = _labels(table, key[0]), _labels(table, key[1])
        is_total = [m is None or bool(TOTAL_RE.match(m)) for m in members]
        out = []
        grand = [i for i, g in enumerate(groups) if g and TOTAL_RE.match(g) and is_total[i]]
        subtotal = [i for i, t in enumerate(is_total) if t and i not in grand]
        for i in subtotal:
            comps = [j for j, g in enumerate(groups) if g == groups[i] and not is_total[j]]
            if comps:
                out.append((i, comps, f"{groups[i]}"))
        for i in grand:
            out.append((i, subtotal, str(groups[i])))
        return out
    text = [f.name for f in table.schema if pa.types.is_string(f.type)]
    if not text:
        return []
    labels = _labels(table, text[0])
    totals = [i for i, v in enumerate(labels) if v and TOTAL_RE.match(v)]
    if len(totals) != 1:
        return []
    return [(totals[0], [i for i in range(table.num_rows) if i != totals[0]], labels[totals[0]])]


def _label_of(table: pa.Table, row: int) -> str:
    key = derived_key(table.schema)
    cols = key or [f.name for f in table.schema if pa.types.is_string(f.type)][:1]
    return " · ".join(str(table.column(c)[row].as_py()) for c in cols
                      if table.column(c)[row].as_py() is not None)


def totals(table: pa.Table, period_columns: list[str], total_columns: list[str],
           skip: set[str]) -> tuple[Check, dict[tuple[str, str, str], int]]:
    """Every total of the table: (what, row label, column) -> (stated, sum, count), and
    the table row of each (for its cell address)."""
    out: Check = {}
    rows: dict[tuple[str, str, str], int] = {}
    numbers = _whole_numbers(table, skip)
    data = {c: np.nan_to_num(table.column(c).to_numpy(zero_copy_only=False).astype(float))
            for c in numbers}
    for total_row, comps, _label in _row_groups(table):
        name = _label_of(table, total_row)
        for c in numbers:
            where = ("row", name, c)
            out[where] = (float(data[c][total_row]), float(data[c][comps].sum()), len(comps), 0)
            rows[where] = total_row
    periods = [c for c in period_columns if c in data]
    for c in total_columns:
        if c not in data or len(periods) < 2:
            continue
        summed = sum(data[p] for p in periods)
        for i in range(table.num_rows):
            where = ("column", _label_of(table, i), c)
            out[where] = (float(data[c][i]), float(summed[i]), len(periods), 0)
            rows[where] = i
    return out, rows


def _off(stated: float, summed: float) -> bool:
    return abs(stated - summed) > 0.5


def _table_totals(aud: Any, entry: Any, name: str) -> tuple[Check, dict, Any]:
    sem = aud.semantics(entry, name)
    skip = set(sem.ignore_columns) | set(sem.flag_columns) | set(sem.derived_columns)
    found, rows = totals(aud.snap(entry).table(name), sem.period_columns, sem.total_columns,
                         skip)
    return found, rows, sem


def _judged(meta: dict[str, Any]) -> bool:
    return (meta.get("rows") or 0) <= MAX_ROWS


def _grand(found: Check) -> dict[str, float]:
    """Column -> the table's grand total (its `Total` row), when it has one."""
    return {w[2]: v[0] for w, v in found.items()
            if w[0] == "row" and TOTAL_RE.match(w[1]) and v[0] != 0}


def _cross_table(release: Release, memo: dict[tuple[str, str], Check]) -> list[Finding]:
    """Grand totals of two tables that agreed in the parent and no longer do."""
    aud, entry, parent = release.auditor, release.entry, release.parent
    assert parent is not None
    tables, ptables = entry.record["tables"], parent.record["tables"]

    def columns(meta: dict[str, Any]) -> set[str]:
        return {c["name"] for c in meta.get("schema") or []}

    shared: dict[str, list[str]] = {}
    for name, meta in tables.items():
        if name in ptables and _judged(meta) and aud.semantics(entry, name).check_totals:
            for c in columns(meta):
                shared.setdefault(c, []).append(name)
    names = sorted({n for group in shared.values() if len(group) > 1 for n in group})
    if not any(tables[n]["fingerprint"] != ptables[n]["fingerprint"] for n in names):
        return []

    def grand(which: Any, name: str) -> dict[str, float]:
        if (which.id, name) not in memo:
            memo[(which.id, name)] = _table_totals(aud, which, name)[0]
        return _grand(memo[(which.id, name)])

    now = {n: grand(entry, n) for n in names}
    then = {n: grand(parent, n) for n in names}
    pairs = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            for c in set(now[a]) & set(now[b]) & set(then[a]) & set(then[b]):
                if then[a][c] == then[b][c] and now[a][c] != now[b][c]:
                    pairs.append({"table": a, "other_table": b, "column": c,
                                  "value": now[a][c], "other_value": now[b][c],
                                  "previous": then[a][c],
                                  "difference": now[a][c] - now[b][c]})
    if not pairs:
        return []
    pairs.sort(key=lambda p: -abs(p["difference"]))
    top = pairs[0]
    return [finding(
        "total_mismatch", entry, top["table"], "alert",
        f"{entry.published}: the {top['column']} totals of {top['table']} ({number(top['value'])})"
        f" and {top['other_table']} ({number(top['other_value'])}) no longer agree (both were "
        f"{number(top['previous'])}); {len(pairs)} pair(s) of tables",
        {**other(parent), "cross_table": pairs[:50], "count": len(pairs)},
        magnitude=abs(top["difference"]))]


@register("total_mismatch", "total mismatch", "alert", order=40)
def check(release: Release) -> list[Finding]:
    """Totals that added up in the parent and no longer do, within and across tables."""
    from atdarchive.ingest.model import cell_addresses

    aud, entry, parent = release.auditor, release.entry, release.parent
    if parent is None:
        return []
    out = []
    memo: dict[tuple[str, str], Check] = {}
    tables, ptables = entry.record["tables"], parent.record["tables"]
    for name, meta in tables.items():
        pmeta = ptables.get(name)
        if pmeta is None or meta["fingerprint"] == pmeta["fingerprint"] or not _judged(meta):
            continue
        mine, where_rows, sem = _table_totals(aud, entry, name)
        if not sem.check_totals:
            continue
        theirs = _table_totals(aud, parent, name)[0]
        memo[(entry.id, name)], memo[(parent.id, name)] = mine, theirs
        snap = aud.snap(entry)
        # judged where the parent's total was a real one (not an empty month) and held
        bad = [w for w, (stated, summed, _n, _) in mine.items()
               if _off(stated, summed) and w in theirs and theirs[w][0] != 0
               and not _off(*theirs[w][:2])]
        if not bad:
            continue
        src = snap.source_rows(name)
        items: list[dict[str, Any]] = []
        for w in bad:
            stated, summed, n, _ = mine[w]
            cell = cell_addresses(meta, w[2], src, np.array([where_rows[w]]))[0].as_py() \
                if src is not None else None
            items.append({"total": w[0], "row": w[1], "column": w[2], "cell": cell,
                          "stated": stated, "sum_of_components": summed,
                          "difference": stated - summed, "components": n})
        items.sort(key=lambda i: -abs(i["difference"]))
        top = items[0]
        out.append(finding(
            "total_mismatch", entry, name, "alert",
            f"{entry.published}: {name}: {top['total']} total {top['row']} {top['column']}"
            f"{' (' + top['cell'] + ')' if top['cell'] else ''} is {number(top['stated'])} but "
            f"its components sum to {number(top['sum_of_components'])} "
            f"({number(top['difference'], sign=True)}); "
            f"{len(items)} total(s) off",
            {**other(parent), "mismatches": items[:50], "count": len(items)},
            magnitude=abs(top["difference"])))
    return out + _cross_table(release, memo)
