"""Benchmark vintages: built from the blame index vs a naive per-release loop.

    .venv/bin/python bench/vintages_bench.py --rows 100000 --releases 50

A table of N rows x 10 columns (string key `id` + 9 int64 columns) goes through R
releases, each revising ~0.5% of the cells; every release is committed for real
(`Archive.commit` of a Parquet file: DVC layout, ledger, git, blame index kept warm at
commit — setup, not timed). Then, best of --repeat:

    cold       `Archive.vintages(ds, "data")` with no cached result: walk the blame
               index's states in order (stored ones read, the others one step each) and
               follow each column's runs with numpy
    warm       the same call again: the derived result of exactly these releases, read
    naive      per release: read its table and the previous one, diff them with the
               engine (`diff_tables`, key `id`), and close/open vintages of the changed
               cells — re-diffing every pair, as one would without the index

Reported as a ratio (vintages / naive) measured in the same run.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from blame_bench import releases, timed  # noqa: E402

from atdarchive import Archive  # noqa: E402
from atdarchive.diff import DiffOptions, diff_tables  # noqa: E402
from atdarchive.parquetio import write_table  # noqa: E402


def naive(archive: Archive) -> int:
    """Vintages by re-diffing every consecutive pair (count of vintages, to compare)."""
    series = archive.history("ds").channel("public")
    previous = None
    vintages = 0
    for entry in series:
        table = archive.snapshot_of(entry.record).table("data")
        if previous is None:
            vintages += table.num_rows * table.num_columns
        else:
            d = diff_tables(previous, table, name="data", options=DiffOptions(key=["id"]))
            vintages += d.cells_changed.num_rows + d.rows_added.num_rows * table.num_columns
        previous = table
    return vintages


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--releases", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        archive = Archive.init(base / "arc")
        archive.add_dataset("ds", keys={"data": ["id"]})
        start = time.perf_counter()
        for i, table in enumerate(releases(args.rows, args.releases)):
            path = base / f"r{i}.parquet"
            write_table(table, path)
            archive.commit("ds", path, published=f"2025-01-01T{i // 60:02d}:{i % 60:02d}")
            path.unlink()
        print(f"setup: {args.releases} commits of {args.rows:,} rows in "
              f"{time.perf_counter() - start:.0f} s", file=sys.stderr)
        cache = archive.layout.derived / "vintages"

        def cold():
            shutil.rmtree(cache, ignore_errors=True)
            return archive.vintages("ds", "data")

        ours = cold()
        count = naive(archive)
        t_cold = timed(cold, args.repeat)
        t_warm = timed(lambda: archive.vintages("ds", "data"), args.repeat)
        t_naive = timed(lambda: naive(archive), args.repeat)
        print("| rows | releases | vintages | cold | warm | naive (re-diff) | cold / naive "
              "| warm / naive |")
        print("|---|---|---|---|---|---|---|---|")
        print(f"| {args.rows:,} | {args.releases} | {ours.num_rows:,} (naive counts "
              f"{count:,}) | {t_cold:.2f} s | {t_warm:.2f} s | {t_naive:.2f} s | "
              f"**{t_cold / t_naive:.2f}×** | **{t_warm / t_naive:.2f}×** |")


if __name__ == "__main__":
    main()
