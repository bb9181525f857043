"""Benchmark the forensic audit: a whole history vs one pairwise diff.

    .venv/bin/python bench/audit_bench.py --rows 10000 --releases 200

A table of N rows x 10 columns (a string key `id` + 9 int64 columns) goes through R
releases, one a day; each revises 1% of the cells (so ~10% of rows differ from the parent:
the recycled-release scan runs for every release, its worst case) and adds 0.1% rows.
Release R*3/4 is planted as a copy of release R/5 (a recycled release), and the audit
must find exactly that one.

The releases are written as Parquet (`atdarchive.parquetio.write_table`, as commits do)
straight into the snapshot directories of a real archive (`Archive.init`) with records
built like `Archive.commit` builds them, each appended as a real ledger line: *no* DVC
add and git commit per release (those would dominate and are not the audit's cost). Timings:

    diff       one pairwise diff: read both Parquet files + `diff_tables` with key `id`
    audit      `audit(archive, "bench")` on a cold derived cache (value hashes, pair
               analyses computed and written under .atdarchive/derived/audit)
    warm       the same audit again (everything cached)
    snapshot   `findings_for_snapshot` of the latest release, warm
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from atdarchive import Archive  # noqa: E402
from atdarchive.audit import audit, findings_for_snapshot  # noqa: E402
from atdarchive.diff import DiffOptions, diff_tables  # noqa: E402
from atdarchive.parquetio import write_table  # noqa: E402
from atdarchive.store import table_fingerprint  # noqa: E402
from atdarchive.util import canonical_json, sha256_bytes, sha256_file  # noqa: E402


def releases(n: int, count: int, seed: int = 0):
    """Yield `count` tables: each revises 1% of cells and appends 0.1% new rows."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"r{i:08d}" for i in range(n)], dtype=object)
    values = rng.integers(0, 100_000, size=(n, 9))
    next_id = n
    for _ in range(count):
        yield pa.table({"id": pa.array(ids, pa.string()),
                        **{f"v{j}": pa.array(values[:, j]) for j in range(9)}})
        cells = max(1, values.size // 100)
        rows = rng.integers(0, len(values), cells)
        cols = rng.integers(0, 9, cells)
        values[rows, cols] += rng.integers(1, 50, cells)
        new = max(1, n // 1000)
        ids = np.concatenate([ids, np.array([f"r{i:08d}" for i in range(next_id,
                                                                        next_id + new)])])
        values = np.vstack([values, rng.integers(0, 100_000, size=(new, 9))])
        next_id += new


def build(base: Path, rows: int, count: int) -> tuple[Archive, list[Path]]:
    arc = Archive.init(base / "arc")
    arc.add_dataset("bench", keys={"data": ["id"]})
    tables = list(releases(rows, count))
    planted_from, planted_at = count // 5, count * 3 // 4
    tables[planted_at] = tables[planted_from]
    ledger, paths = arc.ledger("bench"), []
    day = dt.date(2020, 1, 1)
    for i, table in enumerate(tables):
        staged = base / f"stage{i}"
        (staged / "tables").mkdir(parents=True)
        path = staged / "tables" / "data.parquet"
        write_table(table, path)
        record = {
            "dataset": "bench", "channel": "public",
            "published": (day + dt.timedelta(days=i)).isoformat(), "message": "",
            "original": {"name": f"bench-{i}.parquet", "file": "tables/data.parquet",
                         "sha256": sha256_file(path), "size": path.stat().st_size},
            "files": {"tables/data.parquet": {"sha256": sha256_file(path),
                                              "size": path.stat().st_size}},
            "tables": {"data": {"file": "tables/data.parquet", "rows": table.num_rows,
                                "columns": table.num_columns,
                                "schema": [{"name": f.name, "type": str(f.type)}
                                           for f in table.schema],
                                "fingerprint": table_fingerprint(table), "key": ["id"],
                                "key_source": "declared"}},
            "stated_dates": [],
        }
        record["id"] = sha256_bytes(canonical_json(record).encode())
        target = arc.store.snapshot_dir("bench", record["id"])
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(staged), target)
        paths.append(target / "tables" / "data.parquet")
        ledger.append({"type": "snapshot", "record": record})  # a real ledger line, no git
    return arc, paths


def run(rows: int, count: int, base: Path) -> dict:
    t0 = time.perf_counter()
    arc, paths = build(base, rows, count)
    built = time.perf_counter() - t0

    def one_diff() -> None:
        a, b = pq.read_table(paths[-2]), pq.read_table(paths[-1])
        diff_tables(a, b, name="data", options=DiffOptions(declared_key=["id"]))

    one_diff()
    t = time.perf_counter()
    for _ in range(3):
        one_diff()
    diff = (time.perf_counter() - t) / 3
    # warm the verified-hash stamps so the audit timing is the audit's own work
    for entry in arc.history("bench").entries:
        arc.snapshot(f"bench@{entry.short}").table_path("data")
    t = time.perf_counter()
    report = audit(arc, "bench")
    cold = time.perf_counter() - t
    t = time.perf_counter()
    audit(arc, "bench")
    warm = time.perf_counter() - t
    latest = arc.snapshot("bench@latest")
    t = time.perf_counter()
    findings_for_snapshot(arc, latest)
    one = time.perf_counter() - t
    recycled = [f for f in report.findings if f.kind == "recycled_release"]
    history = arc.history("bench").publication_order()
    expected = (history[count * 3 // 4].id, history[count // 5].id)
    ok = [(f.snapshot, f.evidence["other_snapshot"]) for f in recycled] == [expected]
    return {"rows": rows, "releases": count, "build_s": built, "diff_s": diff,
            "audit_s": cold, "warm_s": warm, "snapshot_s": one,
            "ratio": cold / diff, "findings": len(report.findings), "recycled_ok": ok}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--releases", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        r = run(args.rows, args.releases, Path(tmp))
    print(f"{r['releases']} releases x {r['rows']:,} rows ({r['findings']} findings; "
          f"planted recycled release found: {'yes' if r['recycled_ok'] else 'NO'})")
    print(f"  one diff            {r['diff_s'] * 1000:8.1f} ms")
    print(f"  audit (cold cache)  {r['audit_s']:8.2f} s  = {r['ratio']:.0f} x one diff "
          f"({r['audit_s'] / r['releases'] * 1000:.1f} ms per release)")
    print(f"  audit (warm cache)  {r['warm_s']:8.2f} s")
    print(f"  findings_for_snapshot (latest, warm) {r['snapshot_s'] * 1000:.0f} ms")
    if not r["recycled_ok"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
