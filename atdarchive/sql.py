"""SQL over a dataset's whole history: DuckDB in-process, read-only (README "SQL").

Views, in the manner of Dolt's system tables:

    releases              one row per snapshot (record fields, flattened)
    "<table>"             the table in the latest release
    history."<table>"     every row of every release, with snapshot and published
    vintages."<table>"    `atdarchive.vintages` (realtime_start / realtime_end per value)
    blame."<table>"       the latest release's blame (the release behind each cell)
    diffs."<table>"       cell changes between consecutive releases
    findings              the audit's findings

Views are built only for the names a query mentions (each costs reading releases).
Only reading statements run (SELECT, WITH, DESCRIBE, SUMMARIZE, SHOW, EXPLAIN — DuckDB's
own parser says which a statement is, and an EXPLAIN must explain one of those, as
EXPLAIN ANALYZE runs it); the connection's external access is off and its configuration
locked before the query runs, so no file, URL or extension outside the archive's data
can be read or written: the data is handed to DuckDB as Arrow tables, never as paths.
Each query is bounded (`atdarchive.limits.sql`): a timer interrupts it after
`sql.seconds`; DuckDB's memory_limit, threads and spill directory (a private temporary
directory, removed afterwards, at most `sql.temp_bytes`) are set before the lock; the
result is fetched in batches and refused past `sql.memory_bytes`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pyarrow as pa

from atdarchive.context import ArchiveContext
from atdarchive.errors import AtdError
from atdarchive.limits import human
from atdarchive.limits.sql import SqlBounds, SqlLimitExceeded

SCHEMAS = ("history", "vintages", "blame", "diffs")
RELEASES = pa.schema([
    *((n, pa.string()) for n in ("snapshot", "short_id", "published", "published_source",
                                 "channel", "period", "original_name", "original_sha256",
                                 "source_url", "retrieved_at", "archivist", "message")),
    ("tables", pa.int64()), ("rows", pa.int64()), ("retracted", pa.bool_()),
    ("evidence_only", pa.bool_())])
READING = ("SELECT", "EXPLAIN")


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class Catalog:
    """The views of one dataset, each built on first use."""

    def __init__(self, ctx: ArchiveContext, dataset: str) -> None:
        self.ctx, self.dataset = ctx, dataset
        self.history = ctx.history(dataset)
        series = self.history.channel("public") or self.history.publication_order()
        self.series = series
        self.tables = sorted({t for e in series for t in e.record["tables"]})
        self._memo: dict[str, pa.Table] = {}

    def names(self) -> list[str]:
        return ["releases", "findings", *self.tables,
                *(f"{s}.{t}" for s in SCHEMAS for t in self.tables)]

    def build(self, name: str) -> pa.Table:
        """The view's data (memoized: `diffs` reuses `vintages`, an export all of them)."""
        if name not in self._memo:
            self._memo[name] = self._build(name)
        return self._memo[name]

    def _build(self, name: str) -> pa.Table:
        schema, _, table = name.rpartition(".")
        if name == "releases":
            return self._releases()
        if name == "findings":
            return self._findings()
        if table not in self.tables:
            raise AtdError(f"no view {name!r}")
        if not schema:
            latest = next(e for e in reversed(self.series) if table in e.record["tables"])
            return self.ctx.snapshot_of(latest.record).table(table)
        return getattr(self, f"_{schema}")(table)

    def _releases(self) -> pa.Table:
        rows = []
        every = self.ctx.history(self.dataset, include_retracted=True)
        for e in every.listed():
            r = e.record
            rows.append({"snapshot": e.id, "short_id": e.short, "published": e.published,
                         "published_source": r.get("published_source"),
                         "channel": e.channel, "period": r.get("period"),
                         "original_name": r["original"]["name"],
                         "original_sha256": r["original"]["sha256"],
                         "source_url": r.get("source_url"), "retrieved_at": r.get("retrieved_at"),
                         "archivist": r.get("archivist"), "message": r.get("message"),
                         "tables": len(r["tables"]),
                         "rows": sum(t.get("rows", 0) for t in r["tables"].values()),
                         "retracted": self.history.retracted(e.id) is not None,
                         "evidence_only": "parse_error" in r})
        return pa.Table.from_pylist(rows, schema=RELEASES)

    def _findings(self) -> pa.Table:
        from atdarchive.audit import audit

        report = audit(self.ctx, self.dataset)
        rows = [{"kind": f.kind, "severity": f.severity, "snapshot": f.snapshot,
                 "published": f.published, "table": f.table, "summary": f.summary,
                 "score": f.score, "evidence": json.dumps(f.evidence, default=str)}
                for f in report.findings]
        schema = pa.schema([(n, pa.float64() if n == "score" else pa.string()) for n in (
            "kind", "severity", "snapshot", "published", "table", "summary", "score",
            "evidence")])
        return pa.Table.from_pylist(rows, schema=schema)

    def _history(self, table: str) -> pa.Table:
        parts = []
        for e in self.series:
            if table not in e.record["tables"]:
                continue
            data = self.ctx.snapshot_of(e.record).table(table)
            n = data.num_rows
            data = data.append_column("snapshot", pa.array([e.id] * n, pa.string()))
            parts.append(data.append_column("published", pa.array([e.published] * n,
                                                                  pa.string())))
        return concat_releases(parts)

    def _vintages(self, table: str) -> pa.Table:
        from atdarchive.vintages import vintages

        return vintages(self.ctx, self.dataset, table)

    def _blame(self, table: str) -> pa.Table:
        from atdarchive.blame import blame

        latest = next(e for e in reversed(self.series) if table in e.record["tables"])
        cells = blame(self.ctx, f"{self.dataset}@{latest.id}", table=table)
        return pa.table({n: (c.cast(pa.string()) if pa.types.is_dictionary(c.type) else c)
                         for n, c in zip(cells.column_names, cells.columns, strict=True)})

    def _diffs(self, table: str) -> pa.Table:
        """Cell changes between consecutive releases, from the vintages: a vintage that
        is not a cell's first is a change at its realtime_start."""
        import duckdb

        v = self.build(f"vintages.{table}")
        keys = [c for c in v.column_names if c not in (
            "column", "period", "value", "value_number", "realtime_start", "realtime_end",
            "snapshot_start", "snapshot_end", "source_cell")]
        cell = ", ".join(_q(k) for k in keys) + ', "column"'
        con = duckdb.connect()
        con.register("v", v)
        out = con.sql(f"""
            SELECT {cell}, period, lag(value) OVER w AS old, value AS new,
                   value_number - lag(value_number) OVER w AS abs_change,
                   lag(snapshot_start) OVER w AS old_snapshot, snapshot_start AS new_snapshot,
                   realtime_start AS published, source_cell
            FROM v WINDOW w AS (PARTITION BY {cell} ORDER BY realtime_start)
            QUALIFY row_number() OVER w > 1 AND lag(realtime_end) OVER w = realtime_start
        """).to_arrow_table()
        con.close()
        return out


def concat_releases(parts: list[pa.Table]) -> pa.Table:
    """Tables of several releases as one: a column whose type changed between releases
    (ICE's text "N/A" where a number was) is kept as text in all of them."""
    try:
        return pa.concat_tables(parts, promote_options="permissive")
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        types: dict[str, set[str]] = {}
        for part in parts:
            for f in part.schema:
                types.setdefault(f.name, set()).add(str(f.type))
        mixed = {name for name, kinds in types.items() if len(kinds) > 1}
        parts = [part.cast(pa.schema([pa.field(f.name, pa.string()) if f.name in mixed
                                      else f for f in part.schema])) for part in parts]
        return pa.concat_tables(parts, promote_options="permissive")


def _mentioned(query: str, catalog: Catalog) -> list[str]:
    """The views a query names (quoted or bare, with or without a schema)."""
    found = []
    text = query
    for name in sorted(catalog.names(), key=len, reverse=True):
        schema, _, table = name.rpartition(".")
        forms = [re.escape(_q(table)), rf"\b{re.escape(table)}\b"]
        if schema:
            pattern = rf"\b{schema}\s*\.\s*(?:{'|'.join(forms)})"
        else:
            pattern = rf"(?<![.\w\"])(?:{'|'.join(forms)})"
        if re.search(pattern, text, re.IGNORECASE):
            found.append(name)
            if schema:  # "history.t" also contains "t": do not build the plain view for it
                text = re.sub(pattern, " ", text, flags=re.IGNORECASE)
    return found


# `EXPLAIN [ANALYZE] [(options)]` and the comments around it: what follows is the statement
# that EXPLAIN ANALYZE runs, and it must be a reading one too.
_WS = r"(?:\s|--[^\n]*|/\*.*?\*/)*"
_EXPLAIN = re.compile(rf"^{_WS}EXPLAIN\b{_WS}(?:ANALY[SZ]E\b{_WS})?"
                      rf"(?:\((?:[^()'\"]|'[^']*'|\"[^\"]*\")*\){_WS})?", re.I | re.S)


def _kind(statement: Any) -> str:
    return str(statement.type).rpartition(".")[2]


def check_reading(con: Any, query: str) -> None:
    """Refuse anything but reading statements (DuckDB's parser decides), and an EXPLAIN
    (whose ANALYZE form runs its statement) of anything but a reading statement."""
    import duckdb

    try:
        statements = con.extract_statements(query)
    except duckdb.Error as exc:
        raise AtdError(f"sql: {str(exc).splitlines()[0]}") from None
    if not statements:
        raise AtdError("sql: no statement given")
    for statement in statements:
        kind = _kind(statement)
        if kind == "EXPLAIN":
            kind = _explained(con, statement.query)
        kind = {"LOAD": "INSTALL/LOAD"}.get(kind, kind)
        if kind not in READING:
            raise AtdError(f"sql: only reading statements run (SELECT, WITH, DESCRIBE, "
                           f"SUMMARIZE, SHOW, EXPLAIN); this is {kind}")


def _explained(con: Any, text: str) -> str:
    """The kind of the statement an EXPLAIN names ("EXPLAIN" when it reads; fail closed)."""
    import duckdb

    match = _EXPLAIN.match(text)
    try:
        inner = con.extract_statements(text[match.end():]) if match else []
    except duckdb.Error:
        inner = []
    if len(inner) != 1:
        return "EXPLAIN of something not recognised as a SELECT"
    kind = _kind(inner[0])
    return "EXPLAIN" if kind == "SELECT" else f"EXPLAIN {kind}"


def connect(ctx: ArchiveContext, dataset: str, views: list[str], bounds: SqlBounds,
            scratch: Path) -> tuple[Any, Catalog]:
    """A DuckDB connection holding VIEWS as Arrow tables: external access off, memory,
    threads and spill (into SCRATCH) bounded, configuration locked."""
    import duckdb

    catalog = Catalog(ctx, dataset)
    con = duckdb.connect(config={"enable_external_access": False,
                                 "autoinstall_known_extensions": False,
                                 "autoload_known_extensions": False,
                                 "allow_community_extensions": False,
                                 "memory_limit": f"{bounds.memory_bytes}B",
                                 "threads": bounds.threads,
                                 "temp_directory": str(scratch),
                                 "max_temp_directory_size": f"{bounds.temp_bytes}B"})
    for schema in SCHEMAS:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    for number, name in enumerate(views):
        data = catalog.build(name)
        alias = f"__v{number}"
        con.register(alias, data)
        schema, _, table = name.rpartition(".")
        target = f"{schema}.{_q(table)}" if schema else _q(table)
        con.execute(f"CREATE VIEW {target} AS SELECT * FROM {alias}")
    con.execute("SET lock_configuration = true")
    return con, catalog


def sql(ctx: ArchiveContext, query: str, dataset: str | None = None, *,
        timeout: float | None = None, memory_limit: str | float | None = None) -> pa.Table:
    """Run one reading QUERY over DATASET's views; the result as an Arrow table.

    Bounded (`atdarchive.limits.sql`): TIMEOUT seconds (else `sql.seconds`) for DuckDB's
    work and fetching the result, MEMORY_LIMIT (`512MB`, `2GiB`, bytes; else
    `sql.memory_bytes`) for DuckDB's memory and again for the result, `sql.temp_bytes`
    of spill into a private directory removed afterwards, `sql.threads` threads."""
    import shutil
    import tempfile

    import duckdb

    bounds = SqlBounds.resolve(timeout, memory_limit)
    dataset = _dataset(ctx, dataset)
    probe = duckdb.connect(config={"enable_external_access": False})
    check_reading(probe, query)
    probe.close()
    catalog = Catalog(ctx, dataset)
    scratch = Path(tempfile.mkdtemp(prefix="atdarchive-sql-"))
    con = None
    try:
        con, catalog = connect(ctx, dataset, _mentioned(query, catalog), bounds, scratch)
        return _run(con, query, bounds, catalog)
    finally:
        if con is not None:
            con.close()
        shutil.rmtree(scratch, ignore_errors=True)


def _run(con: Any, query: str, bounds: SqlBounds, catalog: Catalog) -> pa.Table:
    """QUERY's result, streamed in batches so that neither time nor the result's size can
    run past the bounds: a timer interrupts DuckDB; the batches are counted as they come."""
    import threading

    import duckdb

    stopped = threading.Event()

    def stop() -> None:
        stopped.set()
        con.interrupt()

    timer = threading.Timer(bounds.seconds, stop)
    timer.daemon = True
    timer.start()
    try:
        reader = con.sql(query)
        if reader is None:
            return pa.table({})
        batches, size = [], 0
        stream = reader.to_arrow_reader(64 * 1024)
        for batch in stream:
            size += batch.nbytes
            if size > bounds.memory_bytes:
                raise SqlLimitExceeded("sql.memory_bytes", bounds,
                                       f"the query's result (over {human(size, 'bytes')})")
            batches.append(batch)
        return pa.Table.from_batches(batches, schema=stream.schema)
    except duckdb.CatalogException as exc:
        first = str(exc).splitlines()[0]
        if "Table" not in first and "table" not in first:
            raise AtdError(f"sql: {first}") from None
        views = ", ".join(["releases", "findings", "<table>", *(f"{s}.<table>" for s in
                                                                 SCHEMAS)])
        more = ", ..." if len(catalog.tables) > 6 else ""
        raise AtdError(f"sql: {first} (views: {views}; tables: "
                       f"{', '.join(catalog.tables[:6])}{more})") from None
    except (duckdb.Error, OSError, RuntimeError) as exc:
        # DuckDB raises some of its errors as OSError/RuntimeError (a streamed interrupt).
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if stopped.is_set() or "INTERRUPT" in first:
            if stopped.is_set():
                raise SqlLimitExceeded("sql.seconds", bounds,
                                       "the query's running time") from None
            raise KeyboardInterrupt from None
        if "Out of Memory" in first:
            if "offload" in first:  # the spill directory is full
                raise SqlLimitExceeded("sql.temp_bytes", bounds,
                                       "the query's spill to disk") from None
            raise SqlLimitExceeded("sql.memory_bytes", bounds, "the query's memory") from None
        raise AtdError(f"sql: {first}") from None
    finally:
        timer.cancel()


def _dataset(ctx: ArchiveContext, dataset: str | None) -> str:
    if dataset:
        ctx.dataset(dataset)
        return dataset
    names = ctx.dataset_names()
    if len(names) != 1:
        raise AtdError(f"sql: the archive holds {len(names)} datasets; choose one with "
                       f"--dataset ({', '.join(names) or 'none'})")
    return names[0]


def export(ctx: ArchiveContext, out: Path, dataset: str | None = None, *,
           force: bool = False) -> Path:
    """Every view written as a table into OUT: a DuckDB database (.duckdb) or SQLite
    (.sqlite, .db; written with Python's sqlite3 — DuckDB's SQLite extension is not
    installable offline), for Datasette and friends."""
    import os

    dataset = _dataset(ctx, dataset)
    if (out.exists() or out.is_symlink()) and not force:
        raise AtdError(f"{out}: already exists; use --force to overwrite it")
    suffix = out.suffix.lower()
    if suffix not in (".duckdb", ".sqlite", ".db", ".sqlite3"):
        raise AtdError(f"{out}: export writes .duckdb or .sqlite")
    catalog = Catalog(ctx, dataset)
    partial = out.with_name(f".{out.name}.{os.getpid()}.partial")
    partial.unlink(missing_ok=True)
    try:
        if suffix == ".duckdb":
            _export_duckdb(catalog, partial)
        else:
            _export_sqlite(catalog, partial)
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    return out


def _flat_name(name: str) -> str:
    schema, _, table = name.rpartition(".")
    return f"{schema}__{table}" if schema else table


def _export_duckdb(catalog: Catalog, path: Path) -> None:
    import duckdb

    con = duckdb.connect(str(path))
    try:
        for schema in SCHEMAS:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        for name in catalog.names():
            con.register("__data", catalog.build(name))
            schema, _, table = name.rpartition(".")
            target = f"{schema}.{_q(table)}" if schema else _q(table)
            con.execute(f"CREATE TABLE {target} AS SELECT * FROM __data")
            con.unregister("__data")
    finally:
        con.close()


def _export_sqlite(catalog: Catalog, path: Path) -> None:
    """SQLite has no schemas: `history."t"` becomes the table `history__t`."""
    import sqlite3

    con = sqlite3.connect(path)
    try:
        for name in catalog.names():
            data = catalog.build(name)
            columns = ", ".join(_q(c) for c in data.column_names)
            table = _q(_flat_name(name))
            con.execute(f"CREATE TABLE {table} ({columns})")
            marks = ", ".join("?" for _ in data.column_names)
            for batch in data.to_batches(50_000):
                rows = zip(*(_sqlite_values(c) for c in batch.columns), strict=True)
                con.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)
        con.commit()
    finally:
        con.close()


def _sqlite_values(column: pa.Array) -> list[Any]:
    values = column.to_pylist()
    if pa.types.is_integer(column.type) or pa.types.is_floating(column.type) or \
            pa.types.is_string(column.type) or pa.types.is_boolean(column.type):
        return values
    return [None if v is None else str(v) for v in values]
