"""Whether the cost of one commit stays flat as a dataset's history grows.

Builds (once, cached under bench/.cache/) archives whose dataset already holds
N snapshots (tiny CSVs through `Archive.commit`, real DVC and git), copies
each, then times the next K commits into the copy. Reports the per-commit time
at every N and its ratio to the smallest N, measured in the same run (goal: at
1,000 snapshots within 1.5x of the time at 10).

    python bench/commit_bench.py --history 10,1000 --commits 10
    python bench/commit_bench.py --history 1000 --profile   # where the time goes
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

CACHE = Path(__file__).parent / ".cache"


def release(src: Path, i: int) -> str:
    """Write the i-th synthetic release and return its publication date."""
    src.write_text(f"agency,month,count\nTotal,M{i % 12},{1000 + i}\nCBP,M{i % 12},{i}\n")
    return f"{1900 + i // 12:04d}-{i % 12 + 1:02d}-01"


def build(n: int) -> Path:
    from atdarchive import Archive

    root = CACHE / f"commit-{n}"
    if (root / ".built").exists():
        return root
    if root.exists():
        shutil.rmtree(root)
    archive = Archive.init(root)
    archive.add_dataset("series", title="Synthetic monthly series")
    src = CACHE / f"src-{n}.csv"
    for i in range(n):
        archive.commit("series", src, published=release(src, i), message=f"release {i}")
        if (i + 1) % 100 == 0:
            print(f"  built {i + 1}/{n} snapshots", file=sys.stderr)
    # pack git's objects, as `git gc --auto` does in a used archive: timing commits while a
    # background gc repacks thousands of loose objects measures the gc, not the commit
    subprocess.run(["git", "-C", str(root), "gc", "-q"], check=True)
    (root / ".built").touch()
    return root


def time_commits(root: Path, n: int, k: int, profile: bool) -> list[float]:
    from atdarchive import Archive

    work = CACHE / f"commit-{n}-work"
    if work.exists():
        shutil.rmtree(work)
    subprocess.run(["cp", "-a", str(root), str(work)], check=True)
    archive = Archive(work)
    src = CACHE / f"src-{n}-work.csv"
    samples = []
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
    for i in range(n, n + k):
        published = release(src, i)
        start = time.perf_counter()
        if profiler:
            profiler.enable()
        archive.commit("series", src, published=published, message=f"release {i}")
        if profiler:
            profiler.disable()
        samples.append(time.perf_counter() - start)
    if profiler:
        import pstats

        pstats.Stats(profiler).sort_stats("cumulative").print_stats(35)
    shutil.rmtree(work)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history", default="10,1000")
    parser.add_argument("--commits", type=int, default=10)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    CACHE.mkdir(exist_ok=True)
    sizes = [int(s) for s in args.history.split(",")]
    results = []
    for n in sizes:
        root = build(n)
        results.append((n, statistics.median(time_commits(root, n, args.commits, args.profile))))
    base = results[0][1]
    print(f"\nper-commit time (median of {args.commits} commits) by history length")
    print(f"{'snapshots before':>17}{'s/commit':>10}{'ratio':>8}")
    for n, seconds in results:
        print(f"{n:>17}{seconds:>10.3f}{seconds / base:>8.2f}")
    if len(results) > 1:
        ratio = results[-1][1] / base
        verdict = "met" if ratio <= 1.5 else "NOT met"
        print(f"goal: {results[-1][0]} within 1.5x of {results[0][0]} -> {ratio:.2f}x ({verdict})")


if __name__ == "__main__":
    main()
