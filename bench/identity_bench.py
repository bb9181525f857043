"""Benchmark row identity: a keyed diff whose key repeats in places against the same
diff with a unique key (the per-row degradation of `atdarchive.identity`).

    .venv/bin/python bench/identity_bench.py --rows 1000000 [--repeat 5] [--dup-share 0.01]

Two versions of an N-row table keyed on (region, seq) with 4 value columns; 1% of
rows get a changed cell, 0.5% are removed and 0.5% added. The *unique* case diffs
them as they are (today's keyed diff); the *duplicates* case first gives `--dup-share`
of the rows the key of their neighbour (the same rows on both sides), so those rows
are matched among themselves by content, then order, and reported as `duplicate_key`.
Both run in this process, interleaved, `--repeat` times; the ratio of the medians is
the target (<= 1.2x).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from atdarchive.diff import DiffOptions, diff_tables  # noqa: E402


def make(n: int, rng: np.random.Generator) -> tuple[pa.Table, pa.Table]:
    seq = np.arange(n)
    region = np.array([f"R{i:03d}" for i in range(1000)])[seq % 1000]
    old = pa.table({"region": region, "seq": seq, "count": rng.integers(0, 10**6, n),
                    "amount": rng.random(n), "category": region, "small": seq % 7})
    keep = rng.random(n) >= 0.005
    new = old.filter(pa.array(keep))
    count = new.column("count").to_numpy().copy()
    edit = rng.random(len(count)) < 0.01
    count[edit] += 1
    new = new.set_column(2, "count", pa.array(count))
    extra = n // 200
    added = pa.table({"region": np.full(extra, "NEW"), "seq": np.arange(n, n + extra),
                      "count": rng.integers(0, 10**6, extra), "amount": rng.random(extra),
                      "category": np.full(extra, "NEW"), "small": np.arange(extra) % 7})
    return old, pa.concat_tables([new, added])


def with_duplicates(table: pa.Table, chosen: np.ndarray) -> pa.Table:
    """Rows whose seq is in `chosen` take the key of seq - 1 (the same rows on both sides,
    as when an agency lists a row twice in consecutive releases)."""
    seq = table.column("seq").to_numpy().copy()
    region = table.column("region").to_numpy(zero_copy_only=False).copy()
    rows = np.flatnonzero(np.isin(seq, chosen))
    seq[rows] -= 1
    region[rows] = np.array([f"R{i:03d}" for i in range(1000)])[seq[rows] % 1000]
    return table.set_column(0, "region", pa.array(region)).set_column(1, "seq", pa.array(seq))


def timed(old: pa.Table, new: pa.Table) -> tuple[float, object]:
    start = time.perf_counter()
    diff = diff_tables(old, new, options=DiffOptions(key=["region", "seq"]))
    return time.perf_counter() - start, diff


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dup-share", type=float, default=0.01)
    args = parser.parse_args()
    rng = np.random.default_rng(7)
    old, new = make(args.rows, rng)
    chosen = np.flatnonzero(rng.random(args.rows) < args.dup_share)
    chosen = chosen[chosen > 0]
    dup_old, dup_new = with_duplicates(old, chosen), with_duplicates(new, chosen)
    unique_times, dup_times = [], []
    for _ in range(args.repeat):
        t, plain = timed(old, new)
        unique_times.append(t)
        t, dup = timed(dup_old, dup_new)
        dup_times.append(t)
    a, b = statistics.median(unique_times), statistics.median(dup_times)
    print(f"rows {args.rows:,}; duplicated keys on {args.dup_share:.1%} of rows per side")
    print(f"  unique key   {a * 1000:8.0f} ms  {plain.counts}")
    print(f"  duplicates   {b * 1000:8.0f} ms  {dup.counts}")
    print(f"  duplicate_key entries reported: {len(dup.duplicate_keys)}")
    print(f"  ratio duplicates / unique = {b / a:.2f}x (target <= 1.2x: "
          f"{'met' if b / a <= 1.2 else 'not met'})")


if __name__ == "__main__":
    main()
