"""Real-time vintages: for every value, the interval in which it was the published one.

As in ALFRED (`realtime_start` / `realtime_end`) and the Philadelphia Fed's real-time
data set: a vintage starts with the publication of the release that first showed the
value and ends with the publication of the release that replaced it (null while it is
current); a value that goes A → B → A has two vintages of A; a row that vanishes ends
its vintages. Built from the blame index (each release's state names, per cell, the
release that gave it its value), not by re-diffing every pair: the states are walked in
order and each column's runs followed with numpy (a run ends where the blamed release
changes or the cell is absent). The result for exactly these releases and keys is kept
in `.atdarchive/derived/vintages/` (derived, rebuildable), so asking again is one read.
One channel at a time; retracted releases are skipped (not in the publication order).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from typing import Any

import pyarrow as pa

from atdarchive.context import ArchiveContext
from atdarchive.errors import AtdError
from atdarchive.instants import When

MODES = ("all", "first-release", "latest")
FORMAT = 2  # of the cached vintages (`.atdarchive/derived/vintages/`): bump on change
FIXED = ("column", "period", "value", "value_number", "realtime_start", "realtime_end",
         "snapshot_start", "snapshot_end", "source_cell")


def vintages(ctx: ArchiveContext, dataset: str, table: str | None = None, *,
             channel: str = "public", as_of: str | None = None, mode: str = "all",
             strict: bool = False) -> pa.Table:
    """The vintages of one table (see the module docstring) as an Arrow table.

    Columns: the table's key columns (text; `row` for a keyless table), `column`,
    `period` (YYYY-MM where the column is a period, `atdarchive.semantics`), `value`
    (text), `value_number` (float64 where numeric), `realtime_start`, `realtime_end`
    (publication dates; end null while current), `snapshot_start`, `snapshot_end`
    (ids), `source_cell` (where the value stood in the release that first showed it).
    `as_of`: only what was published by then (ends after it are null). `mode`:
    `first-release` (each cell's first vintage) or `latest` (the current ones).
    """
    import numpy as np
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    if mode not in MODES:
        raise AtdError(f"vintages: mode {mode!r}: one of {', '.join(MODES)}")
    history = ctx.history(dataset)
    series = history.channel(channel)
    if as_of:
        series = [e for e in series if _on_or_before(e.when, as_of, history.zone)]
    if not series:
        raise AtdError(f"{dataset}: no releases in channel {channel!r}"
                       + (f" published by {as_of}" if as_of else ""))
    from atdarchive.history import only_table

    table = table or only_table(dataset, series)
    latest = next((e for e in reversed(series) if table in e.record["tables"]), None)
    if latest is None:
        raise AtdError(f"{dataset}: no release in channel {channel!r} has a table {table!r}")
    cache = _cache_path(ctx, dataset, table, channel, strict, series)
    result = _read_cache(cache)  # derived: the same releases give the same vintages
    if result is None:
        result = _build(ctx, dataset, table, channel, strict, series, latest)
        with contextlib.suppress(OSError):
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_name(f".{cache.name}.{os.getpid()}.tmp")
            pq.write_table(result.replace_schema_metadata(
                {**(result.schema.metadata or {}), STAMP_META: cache.stem.encode()}), tmp)
            os.replace(tmp, cache)
    ended = pc.is_valid(result["realtime_end"])
    if mode == "latest":
        result = result.filter(pc.invert(ended))
    elif mode == "first-release":  # ordered by cell, then start: each cell's first
        cell = [result[k] for k in result.column_names[:result.column_names.index("column")]]
        joined = pc.binary_join_element_wise(
            *[pc.fill_null(c.cast(pa.string()), "\x00") for c in [*cell, result["column"]]],
            "\x1f").combine_chunks()
        keep = np.ones(len(joined), bool)
        if len(joined) > 1:
            keep[1:] = pc.not_equal(joined.slice(1), joined.slice(0, len(joined) - 1)
                                    ).to_numpy(zero_copy_only=False)
        result = result.filter(pa.array(keep))
    return result


STAMP_META = b"atdarchive.vintages"


def _read_cache(path: Any) -> pa.Table | None:
    """The cached vintages at `path`, if the file says it is the one its name promises
    (its stamp: format, releases, keys); a file written otherwise is rebuilt, not trusted."""
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid):
        return None
    meta = dict(table.schema.metadata or {})
    if meta.pop(STAMP_META, None) != path.stem.encode():
        return None
    return table.replace_schema_metadata(meta or None)


def _cache_path(ctx: ArchiveContext, dataset: str, table: str, channel: str, strict: bool,
                series: list[Any]) -> Any:
    """Where the vintages of exactly these releases (and keys) are kept, derived."""
    config = ctx.dataset(dataset)
    stamp = json.dumps([FORMAT, dataset, table, channel, strict, [e.id for e in series],
                        config.keys.get(table), config.hierarchy.get(table)], default=str)
    digest = hashlib.sha256(stamp.encode()).hexdigest()[:32]
    return ctx.layout.derived / "vintages" / f"{digest}.parquet"


def _build(ctx: ArchiveContext, dataset: str, table: str, channel: str, strict: bool,
           series: list[Any], latest: Any) -> pa.Table:
    import numpy as np
    import pyarrow.compute as pc

    from atdarchive.blame import states
    from atdarchive.semantics import describe

    key, views = states(ctx, dataset, table, series, channel=channel, strict=strict)
    runs = _Runs(key or [])
    for pos, view in enumerate(views):
        runs.step(pos, view)
    out = runs.finish(len(series))
    ids = pa.array([e.id for e in series], pa.string())
    published = pa.array([e.published for e in series], pa.string())
    start, end = out.pop("start"), out.pop("end")
    sem = describe(latest.record["tables"][table], ctx.dataset(dataset).audit, table)
    column = out.pop("column")
    value = out.pop("value")
    numeric = pc.match_substring_regex(
        value, r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")
    has_end = pa.array(end >= 0)
    end_at = pa.array(np.where(end >= 0, end, 0))
    result = pa.table({
        **out, "column": column,
        "period": pc.take(pa.array([sem.periods.get(c) for c in runs.names], pa.string()),
                          pa.array(runs.column_codes(column))),
        "value": value,
        "value_number": pc.cast(pc.if_else(pc.fill_null(numeric, False), value, None),
                                pa.float64()),
        "realtime_start": published.take(pa.array(start)),
        "realtime_end": pc.if_else(has_end, published.take(end_at), None),
        "snapshot_start": ids.take(pa.array(start)),
        "snapshot_end": pc.if_else(has_end, ids.take(end_at), None),
        "source_cell": runs.cells(),
    }).take(pa.array(runs.order))
    return result.replace_schema_metadata({"table": table, "key": ",".join(key or [])})


class _Runs:
    """The vintages being followed: per (row, column), the run of consecutive releases in
    which the cell kept the value one release gave it (numpy, per column; no row loop)."""

    def __init__(self, key: list[str]) -> None:
        import numpy as np

        self.np = np
        self.key = key
        self.names: list[str] = []          # column code -> name
        self.open: dict[int, dict[str, Any]] = {}   # state column j -> its runs
        self.done: list[dict[str, Any]] = []

    def key_names(self) -> list[str]:
        return list(self.key) if self.key else ["row"]

    def column_codes(self, column: pa.Array) -> Any:
        return pa.compute.index_in(column, pa.array(self.names, pa.string()))

    def step(self, pos: int, view: Any) -> None:
        np = self.np
        present = view.present()
        n = view.rows
        columns = view.columns()
        keys = {k: columns.get(k) for k in self.key}
        for name in columns:
            if name not in self.names:
                self.names.append(name)
        for run in self.open.values():
            self._grow(run, n)
        for j in set(self.open) - set(columns.values()):  # the column is gone: runs end
            self._close(j, np.flatnonzero(self.open[j]["start"] >= 0), pos)
        for name, j in columns.items():
            if name in self.key:  # the key names the cell; it is not one of its values
                continue
            run = self.open.setdefault(j, self._empty(name, n))
            b = view.blamed(j)
            valid = present & (b >= 0)
            going = run["start"][:n] >= 0
            cont = valid & going & (b == run["b"][:n])
            self._close(j, np.flatnonzero(going & ~cont), pos)
            started = np.flatnonzero(valid & ~cont)
            if len(started):
                run["start"][started] = pos
                run["b"][started] = b[started]
                run["value"][started] = view.text(j, started).to_numpy(zero_copy_only=False)
                run["cell"][started] = view.cells(j, started).to_numpy(zero_copy_only=False)
                for k, jk in keys.items():
                    if jk is not None:
                        run["keys"][k][started] = view.text(jk, started).to_numpy(
                            zero_copy_only=False)
                if not self.key:
                    run["keys"]["row"][started] = started

    def _empty(self, name: str, n: int) -> dict[str, Any]:
        np = self.np
        return {"name": name, "start": np.full(n, -1, np.int32),
                "b": np.full(n, -1, np.int32), "value": np.full(n, None, object),
                "cell": np.full(n, None, object),
                "keys": {k: np.full(n, None, object) for k in self.key_names()}}

    def _grow(self, run: dict[str, Any], n: int) -> None:
        """Room for N rows (doubling: rows are added a few per release)."""
        np = self.np
        if n <= len(run["start"]):
            return
        extra = max(n, 2 * len(run["start"])) - len(run["start"])
        run["start"] = np.concatenate([run["start"], np.full(extra, -1, np.int32)])
        run["b"] = np.concatenate([run["b"], np.full(extra, -1, np.int32)])
        for field in ("value", "cell"):
            run[field] = np.concatenate([run[field], np.full(extra, None, object)])
        for k in run["keys"]:
            run["keys"][k] = np.concatenate([run["keys"][k], np.full(extra, None, object)])

    def _close(self, j: int, rows: Any, end: int) -> None:
        if not len(rows):
            return
        run = self.open[j]
        self.done.append({"name": run["name"], "rows": rows, "start": run["start"][rows].copy(),
                          "end": self.np.full(len(rows), end, self.np.int32),
                          "value": run["value"][rows], "cell": run["cell"][rows],
                          "keys": {k: v[rows] for k, v in run["keys"].items()}})
        run["start"][rows] = -1

    def finish(self, count: int) -> dict[str, Any]:
        np = self.np
        for j, run in self.open.items():
            rows = np.flatnonzero(run["start"] >= 0)
            if len(rows):
                self._close(j, rows, -1)
        parts = self.done
        cat = (lambda field: np.concatenate([p[field] for p in parts])) if parts else (
            lambda field: np.zeros(0, np.int32 if field in ("start", "end") else object))
        out: dict[str, Any] = {}
        for k in self.key_names():
            values = np.concatenate([p["keys"][k] for p in parts]) if parts else np.zeros(
                0, object)
            out[k] = pa.array(values, pa.int64() if k == "row" and not self.key
                              else pa.string())
        out["column"] = pa.array(np.concatenate(
            [np.full(len(p["start"]), p["name"], object) for p in parts]) if parts
            else np.zeros(0, object), pa.string())
        out["value"] = pa.array(cat("value"), pa.string())
        self._cells = pa.array(cat("cell"), pa.string())
        out["start"], out["end"] = cat("start"), cat("end")
        codes = np.concatenate([np.full(len(p["start"]), self.names.index(p["name"]), np.int32)
                                for p in parts]) if parts else np.zeros(0, np.int32)
        # by row (first seen first), column (table order), start: integers, one lexsort
        self.order = np.lexsort((out["start"], codes, cat("rows")))
        return out

    def cells(self) -> pa.Array:
        return self._cells



def _on_or_before(published: When, as_of: str, zone: str) -> bool:
    """Published by AS_OF (a day: by its end; naive times read in the dataset's ZONE)."""
    from atdarchive.instants import parse, through_day_key

    at = parse(as_of, zone, "--as-of")
    if at.is_day:
        return published.sort_key() < through_day_key(at.day, zone)
    return published.sort_key() <= at.sort_key()


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def revisions(ctx: ArchiveContext, dataset: str, table: str | None = None, *,
              channel: str = "public") -> pa.Table:
    """Per table, column and period: how often and how much values were revised.

    `cells` (values ever published), `revised_cells` and `share_revised`, `revisions`
    (vintages after the first, but not `fills`: a value where there was nothing or 0 —
    a month filled in — as the audit counts them), `mean_abs_revision` and
    `mean_rel_revision` (each revision against the value it replaced, numeric only),
    `mean_lag_days` / `max_lag_days` (first release to last revision, revised cells),
    `net_change` (latest − first value given, over revised cells)."""
    import duckdb

    names = [table] if table else sorted({
        t for e in ctx.history(dataset).channel(channel) for t in e.record["tables"]})
    parts = []
    for name in names:
        v = vintages(ctx, dataset, name, channel=channel)
        keys = [c for c in v.column_names if c not in FIXED]
        con = duckdb.connect()
        con.register("v", v)
        cell = ", ".join(_q(k) for k in keys) + ', "column"'
        part = con.sql(f"""
            WITH ordered AS (
                SELECT *, lag(value_number) OVER w AS before, lag(value) OVER w AS before_text,
                       row_number() OVER w AS nth,
                       first_value(realtime_start) OVER w AS first_start
                FROM v WINDOW w AS (PARTITION BY {cell} ORDER BY realtime_start)),
            steps AS (  -- a fill (nothing, or 0, before: a month filled in) is no revision
                SELECT *, nth > 1 AND NOT (coalesce(before_text, '') = '' OR before = 0)
                          AS revised
                FROM ordered),
            per_cell AS (
                SELECT {cell}, period, bool_or(revised) AS any_revised,
                       -- latest - first value given (fills and zeros aside)
                       arg_max(value_number, nth) - arg_min(value_number, nth)
                           FILTER (WHERE coalesce(value_number, 0) <> 0
                                   AND (nth = 1 OR revised)) AS net,
                       max(date_diff('day', TRY_CAST(left(first_start, 10) AS DATE),
                                     TRY_CAST(left(realtime_start, 10) AS DATE)))
                           FILTER (WHERE revised) AS lag
                FROM steps GROUP BY {cell}, period)
            SELECT '{name.replace("'", "''")}' AS "table", s."column", s.period,
                   count(DISTINCT ({cell})) AS cells,
                   (SELECT count(*) FROM per_cell c WHERE c."column" = s."column"
                      AND c.period IS NOT DISTINCT FROM s.period AND c.any_revised)
                       AS revised_cells,
                   count(*) FILTER (WHERE s.revised) AS revisions,
                   count(*) FILTER (WHERE s.nth > 1 AND NOT s.revised) AS fills,
                   -- floats summed in value order: the same answer whatever order
                   -- the rows come in (a cached or a freshly built vintages table)
                   avg(abs(s.value_number - s.before) ORDER BY abs(s.value_number - s.before))
                       FILTER (WHERE s.revised) AS mean_abs_revision,
                   avg(abs(s.value_number - s.before) / nullif(abs(s.before), 0)
                       ORDER BY abs(s.value_number - s.before) / nullif(abs(s.before), 0))
                       FILTER (WHERE s.revised) AS mean_rel_revision,
                   (SELECT avg(lag) FROM per_cell c WHERE c."column" = s."column"
                      AND c.period IS NOT DISTINCT FROM s.period) AS mean_lag_days,
                   (SELECT max(lag) FROM per_cell c WHERE c."column" = s."column"
                      AND c.period IS NOT DISTINCT FROM s.period) AS max_lag_days,
                   (SELECT sum(net ORDER BY net) FILTER (WHERE any_revised) FROM per_cell c
                      WHERE c."column" = s."column"
                      AND c.period IS NOT DISTINCT FROM s.period) AS net_change
            FROM steps s GROUP BY s."column", s.period
            ORDER BY s.period NULLS LAST, s."column"
        """).to_arrow_table()
        con.close()
        parts.append(part)
    out = pa.concat_tables(parts, promote_options="permissive") if parts else pa.table({})
    if out.num_rows:
        import pyarrow.compute as pc

        share = pc.divide(pc.cast(out["revised_cells"], pa.float64()),
                          pc.cast(out["cells"], pa.float64()))
        out = out.append_column("share_revised", share)
    return out

