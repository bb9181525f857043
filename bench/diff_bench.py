"""Benchmark the diff engine against a hand-written DuckDB join, plain reads and datacompy.

    .venv/bin/python bench/diff_bench.py --rows 100000,1000000,5000000

For each N it writes two Parquet snapshots (through `atdarchive.parquetio.write_table`,
as the archive does): a composite key (string, int), 8 value columns of mixed
types with nulls and NaN; 1% of rows get 1-3 changed cells, 0.5% are deleted,
0.5% added, and both sides' rows are shuffled. Fingerprints are computed once
(the commit-time cost, reported separately), then each method runs in its own
subprocess (so peak RSS is per method), repeated, and the median is reported:

    ours       diff_snapshots with cached fingerprints (the archive's normal path)
    ours-nofp  diff_snapshots without fingerprints (full in-memory diff)
    duckdb     full outer join on the key + IS DISTINCT FROM per column -> Arrow
    read-both  pyarrow.parquet.read_table of both files (a floor for full reads)
    datacompy  datacompy.Compare on pandas frames (when installed; N <= 1M)
    cli        `atdarchive diff ... --format json -o FILE`, a fresh process each time
    duckdb-process  the duckdb join as a fresh `python -c` process (the fair baseline
               for `cli`: both pay for the interpreter and their imports)

Ratios are against `duckdb` (in-process methods) and `duckdb-process` (`cli`), both
measured in the same run.

    .venv/bin/python bench/diff_bench.py --stat-ice [--repeat 9]

times `atdarchive diff --stat` between the last two ICE workbooks (a real archive of
69 tables, set up once) against `python -c "import pyarrow"`, interleaved in the same
run, and prints the ratio of the medians (and of the minima).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

KEY = ["region", "seq"]
VALUES = ["count", "amount", "category", "day", "flag", "ratio", "small", "note"]


# ---------------------------------------------------------------- data


def _make(n: int, start: int, rng: np.random.Generator) -> pa.Table:
    i = np.arange(start, start + n)
    region = pc.binary_join_element_wise("r", pc.cast(pa.array(i // 1000), pa.string()), "")
    amount = rng.normal(1000, 300, n)
    amount[rng.random(n) < 0.02] = np.nan
    cats = np.array([f"cat-{j}" for j in range(40)], dtype=object)
    return pa.table({
        "region": region,
        "seq": pa.array(i % 1000, pa.int64()),
        "count": pa.array(rng.integers(0, 100_000, n), mask=rng.random(n) < 0.05),
        "amount": pa.array(amount, mask=rng.random(n) < 0.03),
        "category": pa.array(cats[rng.integers(0, 40, n)].tolist(), pa.string(),
                             mask=rng.random(n) < 0.02),
        "day": pa.array(rng.integers(18000, 20000, n).astype("int32"), pa.int32()).cast(
            pa.date32()),
        "flag": pa.array(rng.random(n) < 0.5),
        "ratio": pa.array(rng.random(n).astype("float32"), mask=rng.random(n) < 0.01),
        "small": pa.array(rng.integers(-100, 100, n).astype("int32")),
        "note": pc.binary_join_element_wise(
            "n", pc.cast(pa.array(rng.integers(0, 10**9, n)), pa.string()), ""),
    })


def _change(t: pa.Table, rows: np.ndarray, rng: np.random.Generator) -> pa.Table:
    """Change 1-3 random value cells in each of `rows`."""
    m = len(rows)
    k = rng.integers(1, 4, m)
    order = np.argsort(rng.random((m, len(VALUES))), axis=1)
    pick = np.zeros((m, len(VALUES)), bool)
    for j in range(3):
        sel = k > j
        pick[np.flatnonzero(sel), order[sel, j]] = True
    for c, col in enumerate(VALUES):
        r = rows[pick[:, c]]
        if not len(r):
            continue
        mask = np.zeros(t.num_rows, bool)
        mask[r] = True
        old = t.column(col).combine_chunks().take(pa.array(r))
        typ = old.type
        if pa.types.is_boolean(typ):
            new = pc.invert(old)
        elif pa.types.is_date(typ):
            new = pa.array(pc.cast(old, pa.int32()).to_numpy(zero_copy_only=False) + 1,
                           pa.int32()).cast(pa.date32())
        elif pa.types.is_string(typ):
            new = pc.binary_join_element_wise(pc.fill_null(old, ""), "x", "")
        else:
            new = pc.cast(pc.add(pc.fill_null(old, pa.scalar(0, typ)), pa.scalar(1, typ)), typ)
        t = t.set_column(t.schema.get_field_index(col), col,
                         pc.replace_with_mask(t.column(col).combine_chunks(), pa.array(mask),
                                              new))
    return t


def generate(n: int, out: Path, seed: int = 0, rate: float = 0.01) -> tuple[Path, Path]:
    """Old and new snapshots: `rate` of rows edited, rate/2 deleted, rate/2 added."""
    from atdarchive.parquetio import write_table

    rng = np.random.default_rng(seed)
    old = _make(n, 0, rng)
    r = rng.random(n)
    changed = np.flatnonzero(r < rate)
    deleted = r >= 1 - rate / 2
    new = _change(old, changed, rng).filter(pa.array(~deleted))
    new = pa.concat_tables([new, _make(int(n * rate / 2), 10**9, rng)])
    old = old.take(pa.array(rng.permutation(old.num_rows)))
    new = new.take(pa.array(rng.permutation(new.num_rows)))
    a, b = out / "old.parquet", out / "new.parquet"
    write_table(old, a)
    write_table(new, b)
    return a, b


# ---------------------------------------------------------------- methods


class _Snap:
    """Minimal Snapshot stand-in over one Parquet file."""

    def __init__(self, path: Path) -> None:
        self.id = path.stem
        self.path = path
        self.record = {"tables": {"data": {}}}
        self.table_names = ["data"]

    def table_path(self, name: str) -> Path:
        return self.path

    def table(self, name: str, columns: list[str] | None = None) -> pa.Table:
        return pq.read_table(self.path, columns=columns)

    def source_rows(self, name: str) -> None:
        return None


def run_ours(a: Path, b: Path, cache: Path, use_fp: bool) -> dict:
    from atdarchive.diff import diff_snapshots

    sd = diff_snapshots(_Snap(a), _Snap(b), cache_dir=cache if use_fp else None)
    return sd.counts


def run_duckdb(a: Path, b: Path) -> dict:
    import duckdb

    con = duckdb.connect()
    t = con.sql(duckdb_sql(a, b)).to_arrow_table()
    con.close()
    return {"rows": t.num_rows}


def duckdb_sql(a: Path, b: Path) -> str:
    """The hand-written diff: full outer join on the key, rows that differ anywhere."""
    on = " AND ".join(f"o.{k} = n.{k}" for k in KEY)
    distinct = " OR ".join(f"o.{c} IS DISTINCT FROM n.{c}" for c in VALUES)
    return (f"SELECT o.*, n.* FROM read_parquet('{a}') o FULL OUTER JOIN read_parquet('{b}') n "
            f"ON {on} WHERE o.{KEY[0]} IS NULL OR n.{KEY[0]} IS NULL OR {distinct}")


def duckdb_process(a: Path, b: Path) -> list[str]:
    """`run_duckdb` as a whole process: interpreter start, `import duckdb`, the join."""
    script = ("import duckdb; con = duckdb.connect(); "
              f"print(con.sql({duckdb_sql(a, b)!r}).to_arrow_table().num_rows)")
    return [sys.executable, "-c", script]


def run_read_both(a: Path, b: Path) -> dict:
    return {"rows": pq.read_table(a).num_rows + pq.read_table(b).num_rows}


def run_datacompy(a: Path, b: Path) -> dict:
    import datacompy

    x, y = pq.read_table(a).to_pandas(), pq.read_table(b).to_pandas()
    compare = getattr(datacompy, "Compare", None) or datacompy.PandasCompare
    cmp = compare(x, y, join_columns=KEY)
    return {"mismatch_rows": int(cmp.all_mismatch().shape[0])}


def cli_archive(a: Path, b: Path, work: Path) -> Path:
    """A real archive holding both files as snapshots (set up once, not timed)."""
    from atdarchive import Archive

    root = work / "cli-archive"
    if not (root / "datasets" / "bench" / "ledger.jsonl").exists():
        git_identity()
        archive = Archive.init(root)
        archive.add_dataset("bench")
        archive.commit("bench", a, published="2025-01-01")
        archive.commit("bench", b, published="2025-02-01")
    return root


def process_env() -> dict[str, str]:
    """The environment of timed processes: bytecode cached (as in any installation) in a
    private folder, even where PYTHONDONTWRITEBYTECODE is set (otherwise every run would
    compile atdarchive's modules, but not pyarrow's, which come with their bytecode)."""
    import os

    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(Path(tempfile.gettempdir()) / "atdarchive-bench-pycache")
    return env


def git_identity() -> None:
    """Commits need an author; a bench machine may have none configured."""
    import os

    for var, value in (("GIT_AUTHOR_NAME", "bench"), ("GIT_AUTHOR_EMAIL", "bench@example.org"),
                       ("GIT_COMMITTER_NAME", "bench"),
                       ("GIT_COMMITTER_EMAIL", "bench@example.org")):
        os.environ.setdefault(var, value)


def cli_command(root: Path, out: Path) -> list[str]:
    """The real CLI: `atdarchive diff ... --format json -o FILE`."""
    exe = Path(sys.executable).with_name("atdarchive")
    return [str(exe), "-C", str(root), "diff", "bench@latest~1", "bench@latest",
            "--format", "json", "-o", str(out)]


def time_processes(cmds: dict[str, list[str]], repeat: int) -> dict[str, dict]:
    """Run each command `repeat` times, interleaved (so all see the same machine load),
    after one warm-up run each; median and minimum seconds, peak RSS of the process
    (from GNU time when installed: a child's own rusage would count this big process's
    memory, which it inherits until exec)."""
    env = process_env()
    gnu_time = Path("/usr/bin/time").exists()
    for cmd in cmds.values():  # warm-up: bytecode cached, files in the page cache
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)
    times: dict[str, list[float]] = {k: [] for k in cmds}
    rss: dict[str, float] = dict.fromkeys(cmds, 0.0)
    for _ in range(repeat):
        for name, cmd in cmds.items():
            wrapped = ["/usr/bin/time", "-f", "%M", *cmd] if gnu_time else cmd
            t0 = time.perf_counter()
            proc = subprocess.run(wrapped, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  env=env, text=True)
            times[name].append(time.perf_counter() - t0)
            if proc.returncode:
                raise SystemExit(f"{name}: exit {proc.returncode}: {proc.stderr[-300:]}")
            if gnu_time:
                rss[name] = max(rss[name], int(proc.stderr.split()[-1]) / 1024)
    return {k: {"median": statistics.median(v), "min": min(v), "rss_mb": rss[k], "info": {}}
            for k, v in times.items()}


def child(method: str, a: Path, b: Path, cache: Path, repeat: int) -> None:
    """Run one method `repeat` times in this process; print median seconds and peak RSS."""
    fns = {
        "ours": lambda: run_ours(a, b, cache, True),
        "ours-nofp": lambda: run_ours(a, b, cache, False),
        "duckdb": lambda: run_duckdb(a, b),
        "read-both": lambda: run_read_both(a, b),
        "datacompy": lambda: run_datacompy(a, b),
    }
    times, info = [], {}
    for _ in range(repeat):
        t0 = time.perf_counter()
        info = fns[method]()
        times.append(time.perf_counter() - t0)
    rss = _peak_rss_mb()
    print(json.dumps({"median": statistics.median(times), "rss_mb": rss, "info": info}))


def _peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM; ru_maxrss would include the parent's before exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(method: str, a: Path, b: Path, cache: Path, repeat: int) -> dict | None:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", method, str(a), str(b), str(cache),
         "--repeat", str(repeat)],
        capture_output=True, text=True,
    )
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        print(f"  {method}: skipped ({last[:100]})", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rows", default="100000,1000000")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--change-rate", type=float, default=0.01,
                    help="share of rows edited (half as many deleted and added)")
    ap.add_argument("--methods",
                    default="ours,ours-nofp,duckdb,read-both,datacompy,cli,duckdb-process")
    ap.add_argument("--nofp-max", type=int, default=5_000_000,
                    help="skip ours-nofp above this N")
    ap.add_argument("--datacompy-max", type=int, default=1_000_000)
    ap.add_argument("--keep", help="directory to keep generated data in")
    ap.add_argument("--child", nargs=4, metavar=("METHOD", "A", "B", "CACHE"))
    ap.add_argument("--stat-ice", action="store_true",
                    help="time `diff --stat` of two ICE workbooks against `import pyarrow`")
    args = ap.parse_args()
    if args.child:
        m, a, b, c = args.child
        child(m, Path(a), Path(b), Path(c), args.repeat)
        return
    if args.stat_ice:
        stat_ice(args.repeat, Path(args.keep) if args.keep else None)
        return
    from atdarchive.fingerprint import compute_fingerprints

    methods = args.methods.split(",")
    results = []
    for n in [int(x) for x in args.rows.split(",")]:
        work = Path(args.keep) / str(n) if args.keep else Path(tempfile.mkdtemp(prefix="atdbench"))
        work.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        a, b = generate(n, work, rate=args.change_rate)
        gen = time.perf_counter() - t0
        cache = work / "fp-cache"
        shutil.rmtree(cache, ignore_errors=True)
        t0 = time.perf_counter()
        compute_fingerprints(a, cache)
        compute_fingerprints(b, cache)
        fp_time = (time.perf_counter() - t0) / 2
        print(f"N={n:,}: generated in {gen:.1f}s, fingerprints {fp_time:.2f}s per snapshot",
              file=sys.stderr)
        row = {"n": n, "fingerprint": fp_time}
        for m in methods:
            if m in PROCESSES or (m == "ours-nofp" and n > args.nofp_max) or (
                    m == "datacompy" and n > args.datacompy_max):
                continue
            r = measure(m, a, b, cache, args.repeat)
            if r:
                row[m] = r
        cmds = {}
        if "cli" in methods:
            cmds["cli"] = cli_command(cli_archive(a, b, work), work / "cli-out.json")
        if "duckdb-process" in methods:
            cmds["duckdb-process"] = duckdb_process(a, b)
        row.update(time_processes(cmds, args.repeat) if cmds else {})
        for m in methods:
            if m in row:
                r = row[m]
                print(f"  {m}: {r['median']:.3f}s  rss {r['rss_mb']:.0f} MB  {r['info']}",
                      file=sys.stderr)
        results.append(row)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print_table(results, methods)


def print_table(results: list[dict], methods: list[str]) -> None:
    def cell(row: dict, m: str) -> str:
        r = row.get(m)
        return f"{r['median']:.2f}s / {r['rss_mb']:.0f} MB" if r else "-"

    def ratio(row: dict, m: str) -> str:
        r, d = row.get(m), row.get(BASELINE.get(m, "duckdb"))
        return f"{r['median'] / d['median']:.2f}" if r and d else "-"

    shown = [m for m in methods if any(m in r for r in results)]
    compared = [m for m in shown if m not in ("duckdb", "duckdb-process")]
    head = ["N", "fingerprint (commit)"] + [f"{m} (time / peak RSS)" for m in shown]
    head += [f"{m} / {BASELINE.get(m, 'duckdb')}" for m in compared]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for row in results:
        cells = [f"{row['n']:,}", f"{row['fingerprint']:.2f}s"]
        cells += [cell(row, m) for m in shown]
        cells += [ratio(row, m) for m in compared]
        print("| " + " | ".join(cells) + " |")


#: The baseline of each method's ratio (default: duckdb in-process).
BASELINE = {"cli": "duckdb-process"}
#: Methods timed as whole processes.
PROCESSES = ("cli", "duckdb-process")


# ---------------------------------------------------------------- diff --stat of ICE workbooks


def ice_workbooks() -> list[Path]:
    """The last two ICE FY25 workbooks (tests' copy, else the shared data set)."""
    for folder in (ROOT / "tests" / "data" / "ice-fy25",
                   ROOT.parent / "shared" / "data" / "ice-detention-stats-fy25"):
        found = sorted(folder.glob("v*.xlsx"))
        if len(found) >= 2:
            return found[-2:]
    raise SystemExit("no ICE workbooks found (tests/data/ice-fy25)")


def stat_ice(repeat: int, keep: Path | None) -> None:
    """`atdarchive diff --stat` of two ICE releases vs `python -c "import pyarrow"`."""
    from atdarchive import Archive

    work = keep or Path(tempfile.mkdtemp(prefix="atdbench-stat"))
    root = work / "ice-archive"
    if not (root / "datasets" / "ice" / "ledger.jsonl").exists():
        git_identity()
        archive = Archive.init(root)
        archive.add_dataset("ice")
        for path in ice_workbooks():  # v05_2025-08-29_... -> published 2025-08-29
            archive.commit("ice", path, published=path.name.split("_")[1])
    exe = str(Path(sys.executable).with_name("atdarchive"))
    cmds = {
        "import pyarrow": [sys.executable, "-c", "import pyarrow"],
        "diff --stat": [exe, "-C", str(root), "diff", "--stat", "ice@latest~1", "ice@latest"],
    }
    res = time_processes(cmds, repeat)
    print("| what | median | min | peak RSS |")
    print("|---|---|---|---|")
    for name, r in res.items():
        print(f"| {name} | {r['median']:.3f}s | {r['min']:.3f}s | {r['rss_mb']:.0f} MB |")
    ours, base = res["diff --stat"], res["import pyarrow"]
    print(f"| diff --stat / import pyarrow | **{ours['median'] / base['median']:.2f}** | "
          f"{ours['min'] / base['min']:.2f} | |")
    if keep is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
