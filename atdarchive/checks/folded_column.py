"""`folded_column`: a column dropped and its values added into another one.

New = old + dropped, on most of the rows where the dropped column held a number (e.g.
"probable deaths" folded into "confirmed deaths"): one event, named as such, instead
of a removed column plus a wave of revisions. `detect` runs in the audit's pair
analysis (it needs the old table); the check reports what it found.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from atdarchive.checks import register
from atdarchive.checks.base import Finding, Release, finding, other
from atdarchive.util import number

SHARE = 0.9


def detect(old: pa.Table, cells: pa.Table, removed: list[str]) -> list[dict[str, Any]]:
    """(dropped column, column it went into, rows) where new = old + dropped."""
    out: list[dict[str, Any]] = []
    if not removed or cells.num_rows == 0:
        return out
    cols = np.array(cells.column("column").to_pylist(), dtype=object)
    for gone in removed:
        f = old.schema.field(gone)
        if not (pa.types.is_integer(f.type) or pa.types.is_floating(f.type)):
            continue
        dropped = np.nan_to_num(old.column(gone).to_numpy(zero_copy_only=False).astype(float))
        carrying = int(np.count_nonzero(dropped))
        for into in sorted(set(cols.tolist())):
            sel = cols == into
            rows = cells.column("old_row").to_numpy()[sel]
            before = cells.column("old_number").to_numpy(zero_copy_only=False)[sel]
            after = cells.column("new_number").to_numpy(zero_copy_only=False)[sel]
            ok = np.isclose(before.astype(float) + dropped[rows], after.astype(float))
            if carrying and ok.sum() >= max(3, SHARE * carrying) and ok.mean() >= SHARE:
                out.append({"column": gone, "into": into, "rows": int(ok.sum()),
                            "added": float(dropped[rows][ok].sum())})
    return out


@register("folded_column", "column folded in", "warning", order=75)
def check(release: Release) -> list[Finding]:
    """A dropped column whose values were added into another column."""
    entry, parent, pair = release.entry, release.parent, release.pair
    if parent is None or pair is None:
        return []
    out = []
    for name, tab in pair["tables"].items():
        for fold in tab.get("folded") or []:
            out.append(finding(
                "folded_column", entry, name, "warning",
                f"{entry.published}: {name}: column {fold['column']!r} dropped and its "
                f"values added into {fold['into']!r} on {fold['rows']} row(s) "
                f"({number(fold['added'], sign=True)} in all)",
                {**other(parent), **fold}, magnitude=abs(fold["added"])))
    return out
