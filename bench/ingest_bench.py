"""Ingest speed: `read_publication` against the bare reader it is built on.

For each real ICE FY25 workbook (tests/data/ice-fy25) and a generated
50k-row × 10-column sheet, times (median of several runs, same process):
  bare   — python-calamine reading every sheet to Python rows;
  ingest — atdarchive's full extraction (tables, types, notes, stated dates,
           provenance, the lossless cell layer).
and prints the ratio ingest / bare.

    python bench/ingest_bench.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).parent.parent
CACHE = Path(__file__).parent / ".cache"


def bare_read(path: Path) -> int:
    from python_calamine import CalamineWorkbook

    wb = CalamineWorkbook.from_path(str(path))
    return sum(len(wb.get_sheet_by_name(n).to_python()) for n in wb.sheet_names)


def ingest(path: Path) -> int:
    from atdarchive.ingest import read_publication

    return len(read_publication(path).tables)


def big_sheet() -> Path:
    """A 50k × 10 sheet (ids, labels, ints, floats, dates), written once by openpyxl."""
    import datetime as dt

    from openpyxl import Workbook

    path = CACHE / "big_50k_x_10.xlsx"
    if path.exists():
        return path
    CACHE.mkdir(exist_ok=True)
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("Data")
    ws.append(["Big synthetic table"])
    ws.append([])
    ws.append(["id", "label", "a", "b", "c", "x", "y", "z", "day", "note"])
    base = dt.date(2024, 10, 1)
    for i in range(50_000):
        ws.append([i, f"row {i % 977}", i * 3, i % 17, i // 7, i / 3, (i % 101) / 7,
                   i * 0.5, base + dt.timedelta(days=i % 365), "ok" if i % 5 else "check"])
    wb.save(path)
    return path


def median_time(fn, path: Path, runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn(path)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    files = sorted((ROOT / "tests" / "data" / "ice-fy25").glob("v*.xlsx")) + [big_sheet()]
    ingest(files[0])  # warm imports
    bare_read(files[0])
    print(f"{'file':<46}{'bare s':>8}{'ingest s':>10}{'ratio':>7}")
    for path in files:
        bare = median_time(bare_read, path, args.runs)
        ours = median_time(ingest, path, args.runs)
        print(f"{path.name[:45]:<46}{bare:>8.3f}{ours:>10.3f}{ours / bare:>7.2f}")


if __name__ == "__main__":
    main()
