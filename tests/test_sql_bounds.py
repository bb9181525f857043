"""`atdarchive sql` is bounded and sandboxed (README "SQL"): a query past its time,
memory or spill limit stops with one line naming the limit and how to raise it; no
statement reads or writes a file outside the archive's data, installs an extension or
changes the locked configuration. Every command runs as a real CLI process."""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pytest
from conftest import archive_state, fixture_env, run_measured, write_parquet

from atdarchive import Archive
from atdarchive.limits import LimitExceeded

CLI = Path(sys.executable).parent / "atdarchive"
ROWS = 3000
# Four copies of a 3,000-row table: 8.1e13 combinations, hours of work unbounded.
CROSS = ("SELECT count(*) AS n FROM data a, data b, data c, data d "
         "WHERE a.n + b.n + c.n + d.n = -1")
# One string of 9 million joined cells: ~2.5 GB of memory unbounded.
HUNGRY = "SELECT string_agg(a.s || b.s, ',') AS s FROM data a, data b"


@dataclass
class Run:
    code: int
    out: str
    err: str
    maxrss_kib: int


@pytest.fixture(scope="module")
def gen(tmp_path_factory: pytest.TempPathFactory) -> Archive:
    """An archive with one generated dataset `gen` (table `data`: n, s)."""
    root = tmp_path_factory.mktemp("sqlb")
    with fixture_env(root):
        archive = Archive.init(root / "arc")
        archive.add_dataset("gen")
        table = pa.table({"n": pa.array(range(ROWS), pa.int64()),
                          "s": [f"row-{i:05d}-" + "x" * 24 for i in range(ROWS)]})
        archive.commit("gen", write_parquet(root / "gen.parquet", table),
                       published="2025-01-01")
    return archive


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    """The child's working directory and TMPDIR: checked for leftovers after each run."""
    (tmp_path / "tmp").mkdir()
    (tmp_path / "victim.txt").write_text("keep me\n")
    return tmp_path


def tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def sql(gen: Archive, sandbox: Path, *args: str, env: dict[str, str] | None = None) -> Run:
    """`atdarchive sql ARGS` in a child process, with its own peak RSS."""
    done = run_measured("-C", gen.root, "sql", "--dataset", "gen", *args, cwd=sandbox,
                        env=env, scratch=sandbox / "tmp")
    result = Run(done.code, done.out, done.err, done.peak_kb)
    assert list((sandbox / "tmp").iterdir()) == [], "the spill directory was left behind"
    return result


def one_line_error(run: Run, *words: str) -> None:
    assert run.code != 0, run
    assert "Traceback" not in run.err, run.err
    lines = run.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), run.err
    for word in words:
        assert word in lines[0], (word, lines[0])


def test_cross_join_stops_at_the_timeout(gen: Archive, sandbox: Path) -> None:
    before, around = archive_state(gen.root), tree(sandbox)
    run = sql(gen, sandbox, CROSS, "--timeout", "1")
    one_line_error(run, "sql: the query's running time", "limit of 1 second ", "sql.seconds",
                   "--timeout SECONDS", "ATDARCHIVE_LIMIT_SQL_SECONDS")
    assert run.code == 2
    assert archive_state(gen.root) == before and tree(sandbox) == around


def test_timeout_from_the_environment(gen: Archive, sandbox: Path) -> None:
    run = sql(gen, sandbox, CROSS, env={"ATDARCHIVE_LIMIT_SQL_SECONDS": "1"})
    one_line_error(run, "sql.seconds")


def test_memory_hungry_query_stops_at_the_memory_limit(gen: Archive, sandbox: Path) -> None:
    before, around = archive_state(gen.root), tree(sandbox)
    run = sql(gen, sandbox, HUNGRY, "--memory-limit", "64MB")
    one_line_error(run, "memory", "64 MB", "sql.memory_bytes", "--memory-limit SIZE",
                   "ATDARCHIVE_LIMIT_SQL_MEMORY_BYTES")
    # Unbounded this query holds ~2.5 GB; Python, pyarrow and DuckDB themselves ~150 MB.
    assert run.maxrss_kib < 600 * 1024, run.maxrss_kib
    assert archive_state(gen.root) == before and tree(sandbox) == around


def test_a_result_larger_than_the_memory_limit_is_refused(gen: Archive, sandbox: Path) -> None:
    run = sql(gen, sandbox, "SELECT a.s || b.s AS s FROM data a, data b",
              "--memory-limit", "32MiB", "--format", "csv", "-o", "out.csv")
    one_line_error(run, "result", "32 MiB", "sql.memory_bytes")
    assert not (sandbox / "out.csv").exists()
    assert run.maxrss_kib < 600 * 1024, run.maxrss_kib


def test_spill_to_disk_is_bounded_too(gen: Archive, sandbox: Path) -> None:
    run = sql(gen, sandbox, "SELECT a.s || b.s AS s FROM data a, data b ORDER BY s",
              "--memory-limit", "64MB", env={"ATDARCHIVE_LIMIT_SQL_TEMP_BYTES": "1000000"})
    one_line_error(run, "spill", "sql.temp_bytes", "ATDARCHIVE_LIMIT_SQL_TEMP_BYTES")


def test_bad_limits_are_one_line_errors(gen: Archive, sandbox: Path) -> None:
    one_line_error(sql(gen, sandbox, "SELECT 1", "--timeout", "0"), "--timeout")
    one_line_error(sql(gen, sandbox, "SELECT 1", "--memory-limit", "lots"), "--memory-limit")


def test_within_bounds_the_query_answers(gen: Archive, sandbox: Path) -> None:
    run = sql(gen, sandbox, "SELECT count(*) AS n FROM data a, data b WHERE a.n = b.n",
              "--timeout", "600", "--memory-limit", "256MB", "--format", "csv")
    assert run.code == 0 and run.out.splitlines() == ['"n"', str(ROWS)], run


def test_library_keywords(gen: Archive) -> None:
    with pytest.raises(LimitExceeded, match="sql.seconds"):
        gen.sql(CROSS, timeout=0.5)
    with pytest.raises(LimitExceeded, match="sql.memory_bytes"):
        gen.sql(HUNGRY, memory_limit="64MB")
    assert gen.sql("SELECT current_setting('memory_limit') AS m, "
                   "current_setting('enable_external_access') AS x, "
                   "current_setting('lock_configuration') AS l",
                   memory_limit=256 * 2**20).to_pylist() == [
        {"m": "256.0 MiB", "x": False, "l": True}]


# ---------------------------------------------------------------- sandbox

ESCAPES = [
    ("SELECT * FROM read_csv('/etc/passwd')", "disabled by configuration"),
    ("SELECT * FROM read_text('{victim}')", "disabled by configuration"),
    ("SELECT * FROM glob('{dir}/*')", "disabled by configuration"),
    ("COPY (SELECT 1) TO '/tmp/x.csv'", "this is COPY"),
    ("COPY (SELECT 1) TO '{dir}/x.csv'", "this is COPY"),
    ("EXPLAIN ANALYZE COPY (SELECT 1) TO '{dir}/x.csv'", "this is EXPLAIN COPY"),
    ("EXPLAIN (ANALYZE) CREATE TABLE t AS SELECT 1", "this is EXPLAIN CREATE"),
    ("ATTACH '/tmp/x.db'", "this is ATTACH"),
    ("SELECT 1; ATTACH '{dir}/x.db' AS x", "this is ATTACH"),
    ("EXPORT DATABASE '{dir}/out'", "this is EXPORT"),
    ("INSTALL httpfs", "this is INSTALL/LOAD"),
    ("LOAD '{dir}/evil.duckdb_extension'", "this is INSTALL/LOAD"),
    ("SELECT * FROM read_parquet('http://127.0.0.1:9/x.parquet')",
     "disabled by configuration"),
    ("SET memory_limit='100GB'", "this is SET"),
    ("RESET lock_configuration", "this is SET"),
    ("PRAGMA memory_limit='100GB'", "this is SET"),
    ("PRAGMA threads=64", "this is SET"),
    ("PRAGMA enable_profiling='json'", "this is "),
    ("CALL pragma_version()", "this is CALL"),
    ("SELECT * FROM query('SET enable_external_access=true')", "single SELECT"),
    ("SELECT * FROM duckdb_secrets()", "disabled by configuration"),
    ("DELETE FROM data", "this is DELETE"),
]


@pytest.mark.parametrize(("query", "words"), ESCAPES, ids=[q for q, _ in ESCAPES])
def test_statements_that_reach_outside_are_refused(gen: Archive, sandbox: Path, query: str,
                                                   words: str) -> None:
    targets = [Path("/tmp/x.csv"), Path("/tmp/x.db")]
    seen = {t: t.stat().st_mtime_ns if t.exists() else None for t in targets}
    before, around = archive_state(gen.root), tree(sandbox)
    run = sql(gen, sandbox, query.format(victim=sandbox / "victim.txt", dir=sandbox))
    one_line_error(run, words)
    assert "keep me" not in run.out
    assert tree(sandbox) == around and archive_state(gen.root) == before
    assert {t: t.stat().st_mtime_ns if t.exists() else None for t in targets} == seen


def test_the_connection_configuration_is_locked(gen: Archive, tmp_path: Path) -> None:
    """Behind the reading-statements check: DuckDB itself refuses a changed setting."""
    import duckdb

    from atdarchive.limits.sql import SqlBounds
    from atdarchive.sql import connect

    scratch, elsewhere = tmp_path / "scratch", tmp_path / "elsewhere"
    scratch.mkdir()
    elsewhere.mkdir()
    con, _ = connect(gen, "gen", ["data"], SqlBounds.resolve(5, "128MB"), scratch)
    try:
        for statement in ("SET memory_limit='100GB'", "SET threads=64",
                          "SET enable_external_access=true", "SET lock_configuration=false",
                          f"SET temp_directory='{elsewhere}'",
                          "SET max_temp_directory_size='1TB'"):
            with pytest.raises(duckdb.Error, match="locked"):
                con.execute(statement)
        with pytest.raises(duckdb.Error, match="disabled"):
            con.execute(f"COPY (SELECT 1) TO '{elsewhere}/x.csv'")
        with pytest.raises(duckdb.Error, match="disabled"):
            con.execute(f"COPY (SELECT 1) TO '{scratch}/../x.csv'")
        assert con.execute("SELECT count(*) FROM data").fetchone() == (ROWS,)
    finally:
        con.close()
    assert list(elsewhere.iterdir()) == [] and not (tmp_path / "x.csv").exists()
