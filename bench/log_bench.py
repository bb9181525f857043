"""How fast `atdarchive log` starts and prints on a dataset with many snapshots.

Builds (once, cached under bench/.cache/) an archive whose dataset has N real
snapshots committed through `Archive.commit` (tiny CSVs, real DVC and git),
then times the CLI in fresh processes, median of several runs, against two
baselines measured in the same run: a bare `python -c pass` and `git log` over
the same commits.

    python bench/log_bench.py --snapshots 1000
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

CACHE = Path(__file__).parent / ".cache"


def build(n: int) -> Path:
    from atdarchive import Archive

    root = CACHE / f"log-{n}"
    done = root / ".built"
    if done.exists():
        return root
    if root.exists():
        subprocess.run(["rm", "-rf", str(root)], check=True)
    archive = Archive.init(root)
    archive.add_dataset("series", title="Synthetic monthly series")
    src = CACHE / "src.csv"
    start = time.perf_counter()
    for i in range(n):
        src.write_text(f"agency,month,count\nTotal,M{i % 12},{1000 + i}\nCBP,M{i % 12},{i}\n")
        year, month = 1940 + i // 12, i % 12 + 1
        archive.commit("series", src, published=f"{year:04d}-{month:02d}-01",
                       message=f"release {i}")
        if (i + 1) % 100 == 0:
            rate = (time.perf_counter() - start) / (i + 1)
            print(f"  built {i + 1}/{n} snapshots ({rate:.2f} s/commit)", file=sys.stderr)
    done.touch()
    return root


def timed(cmd: list[str], runs: int) -> float:
    samples = []
    env = {**os.environ, "COLUMNS": "80"}
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True,
                       env=env)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshots", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    CACHE.mkdir(exist_ok=True)
    root = build(args.snapshots)
    exe = Path(sys.executable).with_name("atdarchive")
    rows = [
        ("python -c pass", timed([sys.executable, "-c", "pass"], args.runs)),
        (f"git log ({args.snapshots} commits)",
         timed(["git", "-C", str(root), "log", "--format=%h %s"], args.runs)),
        ("atdarchive log --oneline",
         timed([str(exe), "-C", str(root), "log", "series", "--oneline"], args.runs)),
        ("atdarchive log", timed([str(exe), "-C", str(root), "log", "series"], args.runs)),
        ("atdarchive log --json",
         timed([str(exe), "-C", str(root), "log", "series", "--json"], args.runs)),
    ]
    base = rows[0][1]
    print(f"\nlog over {args.snapshots} snapshots (median of {args.runs}, fresh processes)")
    print(f"{'command':<34}{'seconds':>9}{'× python':>10}")
    for name, seconds in rows:
        print(f"{name:<34}{seconds:>9.3f}{seconds / base:>10.1f}")


if __name__ == "__main__":
    main()
