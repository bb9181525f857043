"""Benchmark the blame index: blame of the latest release vs one read of its Parquet,
flat over history length; the index update at commit vs one pairwise diff.

    .venv/bin/python bench/blame_bench.py --rows 100000 --releases 10,50,200

A table of N rows x 10 columns (a string key `id` + 9 int64 columns) goes through R
releases; each revises ~0.5% of the cells (random rows and columns) and adds 0.1% rows.
Releases are written as Parquet (`atdarchive.parquetio.write_table`, as commits do) in a
temp dir and fed to the index's update step (`blame._advance` + its state-file write)
directly, *not* through `Archive.commit` (DVC and git would dominate; the update step is
exactly what `update_index` runs at commit). Timings are the best of --repeat runs:

    read       pyarrow.parquet.read_table of the latest release's Parquet (the reference)
    blame      blame of the latest release: read its state file + build the per-cell
               Arrow table (what `blame(archive, "ds@latest")` does after ref resolution)
    update     one index step: read the previous state + the new Parquet, compare,
               write the new state (what a commit adds)
    diff       one pairwise diff: read both Parquet files + `diff_tables` with key `id`
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from atdarchive.blame import (  # noqa: E402
    _advance,
    _blame_table,
    _options,
    _read_state,
    _write_state,
)
from atdarchive.diff import DiffOptions, diff_tables  # noqa: E402
from atdarchive.history import Entry  # noqa: E402
from atdarchive.parquetio import write_table  # noqa: E402


def releases(n: int, count: int, seed: int = 0):
    """Yield `count` tables: the first, then each revising ~0.5% of cells, adding rows."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"R{i:08d}" for i in range(n)], dtype=object)
    values = rng.integers(0, 100_000, size=(9, n))
    next_id = n
    for _ in range(count):
        yield pa.table({"id": pa.array(ids, pa.string()),
                        **{f"c{j}": pa.array(values[j]) for j in range(9)}})
        rows = len(ids)
        hits = int(rows * 10 * 0.005)
        r = rng.integers(0, rows, hits)
        c = rng.integers(0, 9, hits)
        values[c, r] += rng.integers(1, 50, hits)
        add = max(1, rows // 1000)
        ids = np.concatenate([ids, np.array([f"R{next_id + i:08d}" for i in range(add)],
                                            dtype=object)])
        values = np.concatenate([values, rng.integers(0, 100_000, size=(9, add))], axis=1)
        next_id += add


def timed(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)  # the machine may be shared: the least-disturbed run


def run(rows: int, count: int, repeat: int, base: Path) -> dict:
    key = ["id"]
    options = _options(False)
    state = None
    series: list[Entry] = []
    paths: list[Path] = []
    state_paths: list[Path] = []
    for pos, table in enumerate(releases(rows, count)):
        path = base / f"r{pos:04d}.parquet"
        write_table(table, path)
        paths.append(path)
        series.append(Entry({"id": f"{pos:064x}", "channel": "public",
                             "published": f"2025-01-01T{pos // 60:02d}:{pos % 60:02d}:00",
                             "original": {"name": path.name}, "source_url": None}, pos))
        state = _advance(state, table, pos, key=key, options=options)
        state_path = base / f"state-{pos:06d}.arrow"
        _write_state(state_path, state, compress=False)
        state_paths.append(state_path)
        if pos >= 2:
            state_paths[pos - 2].unlink()
    latest, previous = paths[-1], paths[-2]
    last_state, prev_state = state_paths[-1], state_paths[-2]

    def read() -> None:
        pq.read_table(latest)

    def blame_latest() -> None:
        _blame_table(_read_state(last_state), series, key, rows=None, columns=None)

    def index_read() -> None:
        _read_state(last_state)

    def update() -> None:
        st = _read_state(prev_state)
        new = _advance(st, pq.read_table(latest), count - 1, key=key, options=options)
        _write_state(base / "scratch.arrow", new, compress=False)

    def diff() -> None:
        diff_tables(pq.read_table(previous), pq.read_table(latest), name="t",
                    options=DiffOptions(declared_key=key))

    out = {"releases": count, "rows": pq.read_metadata(latest).num_rows,
           "cells": len(_blame_table(_read_state(last_state), series, key, rows=None,
                                     columns=None))}
    for name, fn in (("read", read), ("blame", blame_latest), ("index_read", index_read),
                     ("update", update), ("diff", diff)):
        fn()  # warm
        out[name] = timed(fn, repeat)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--releases", default="10,50,200")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    print(f"# blame bench: {args.rows} rows x 10 columns, ~0.5% of cells revised and 0.1% "
          "rows added per release;")
    print("# index driven directly on generated Parquet (not through Archive.commit); "
          f"best of {args.repeat}")
    print()
    print("| releases | rows | cells | read Parquet | blame latest | ratio | index read "
          "| update at commit | pairwise diff | ratio |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for count in [int(x) for x in args.releases.split(",")]:
        with tempfile.TemporaryDirectory() as tmp:
            r = run(args.rows, count, args.repeat, Path(tmp))
        print(f"| {r['releases']} | {r['rows']:,} | {r['cells']:,} | {r['read'] * 1e3:.1f} ms "
              f"| {r['blame'] * 1e3:.1f} ms | {r['blame'] / r['read']:.2f}x "
              f"| {r['index_read'] * 1e3:.1f} ms | {r['update'] * 1e3:.1f} ms "
              f"| {r['diff'] * 1e3:.1f} ms | {r['update'] / r['diff']:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
