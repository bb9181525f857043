"""Diffing two snapshots, table by table, reading only the rows that changed.

`diff_snapshots` uses per-row fingerprints cached at commit time
(`atdarchive.fingerprint`) to skip rows that are identical on both sides and
reads only the Parquet row groups holding the rest, so its cost follows the
size of the change (plus a binary search over 8-byte fingerprints).

A snapshot here is anything with `id`, `record`, `table_names`,
`table_path(name)`, `table(name, columns=None)` and `source_rows(name)`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import pyarrow as pa

from atdarchive.diff.cells import Side
from atdarchive.diff.keyed import (
    check_key_columns,
    duplicate_report,
    given_key,
    infer_leading_key,
    use_resolved,
)
from atdarchive.diff.sources import declared_key_for, record_tables, table_names, table_sha
from atdarchive.diff.tables import check_columns_exist, diff_core, diff_tables
from atdarchive.diff.types import DiffOptions, SnapshotDiff, TableDiff, release_sides
from atdarchive.keys import is_near_unique, is_unique_nonnull

#: Rows read from Parquet per batch of row groups (bounds memory while taking rows).
READ_BATCH_ROWS = 262_144


def diff_snapshots(
    a: Any,
    b: Any,
    *,
    table: str | None = None,
    options: DiffOptions | None = None,
    cache_dir: Any = None,
    declared_keys: dict[str, list[str]] | None = None,
    key_for: Callable[[str], Any] | None = None,
) -> SnapshotDiff:
    """Diff every table of two snapshots (or just `table`).

    Declared keys come from `declared_keys[table]`, else `options.declared_key`,
    else the snapshot records' declared `key`. `key_for(table)` (a `keyresolver.KeyChoice`,
    `keyresolver.key_resolver`) overrides all that with the archive's one answer (a given
    `options.key` still wins). When both tables have cached
    fingerprints (`fingerprint.compute_fingerprints` into `cache_dir`) and the
    same columns, only rows whose fingerprint is not on the other side are read.
    """
    options = options or DiffOptions()
    names_a, names_b = set(a.table_names), set(b.table_names)
    names = table_names(a, b, table)
    if options.columns or options.ignore:
        allcols: set[str] = set()
        for n in names:
            for snap, present in ((a, names_a), (b, names_b)):
                if n in present:
                    allcols |= {c["name"] for c in record_tables(snap).get(n, {}).get(
                        "schema", [])} or set(parquet_schema(snap, n).names)
        check_columns_exist(options, allcols, "either snapshot")
    out = SnapshotDiff(getattr(a, "id", None), getattr(b, "id", None), {},
                       about=release_sides(a, b))
    for n in names:
        if n not in names_b:
            out.tables_removed.append(n)
        elif n not in names_a:
            out.tables_added.append(n)
        out.tables[n] = diff_snapshot_table(a, b, n, options, cache_dir=cache_dir,
                                            declared_keys=declared_keys, key_for=key_for)
        out.tables[n].about = out.about
    return out


def diff_snapshot_table(a: Any, b: Any, name: str, options: DiffOptions, *,
                        cache_dir: Any = None, declared_keys: dict[str, list[str]] | None = None,
                        key_for: Callable[[str], Any] | None = None) -> TableDiff:
    """One table of a snapshot diff (`diff_snapshots` for each of its tables)."""
    in_a, in_b = name in a.table_names, name in b.table_names
    opts = replace(options, declared_key=declared_key_for(name, a, b, options, declared_keys))
    if key_for is not None and not options.key:
        opts = replace(opts, resolved_key=key_for(name).pair())
    opts = _restrict_columns(opts, a if in_a else None, b if in_b else None, name)
    meta_a, meta_b = record_tables(a).get(name), record_tables(b).get(name)
    if not in_b:
        return diff_tables(a.table(name), None, name=name, options=opts, old_meta=meta_a,
                           old_source_rows=a.source_rows(name))
    if not in_a:
        return diff_tables(None, b.table(name), name=name, options=opts, new_meta=meta_b,
                           new_source_rows=b.source_rows(name))
    return _diff_both(a, b, name, opts, cache_dir, meta_a, meta_b)


def derives_columns(snap: Any, name: str) -> bool:
    """Whether reading the table adds derived (hierarchy) key columns to the stored ones."""
    derived = getattr(snap, "hierarchy", None)
    return derived is not None and derived(name) is not None


def parquet_schema(snap: Any, name: str) -> pa.Schema:
    """The schema of one table, from its Parquet footer."""
    import pyarrow.parquet as pq

    return pq.read_schema(snap.table_path(name))


def _restrict_columns(opts: DiffOptions, a: Any, b: Any, name: str) -> DiffOptions:
    """--columns/--ignore were checked across tables; keep those this table has."""
    if not (opts.columns or opts.ignore):
        return opts
    have: set[str] = set()
    for snap in (a, b):
        if snap is not None:
            have |= set(parquet_schema(snap, name).names)
    cols = [c for c in opts.columns if c in have] if opts.columns else None
    return replace(opts, columns=cols,
                   ignore=[c for c in opts.ignore or [] if c in have] or None)


def _diff_both(
    a: Any, b: Any, name: str, options: DiffOptions, cache_dir: Any,
    meta_a: dict | None, meta_b: dict | None,
) -> TableDiff:
    from atdarchive.fingerprint import load_fingerprints, rows_not_in_each

    path_a, path_b = a.table_path(name), b.table_path(name)
    fa = fb = None
    if cache_dir is not None:
        fa = load_fingerprints(path_a, cache_dir, sha256=table_sha(a, name))
        fb = load_fingerprints(path_b, cache_dir, sha256=table_sha(b, name))
    if fa is None or fb is None or not fa.compatible(fb) or derives_columns(
            a, name) or derives_columns(b, name):
        return diff_tables(a.table(name), b.table(name), name=name, options=options,
                           old_meta=meta_a, new_meta=meta_b,
                           old_source_rows=a.source_rows(name),
                           new_source_rows=b.source_rows(name))
    schema_a, schema_b = parquet_schema(a, name), parquet_schema(b, name)
    key, key_source = resolve_key_cached(a, b, name, schema_a, schema_b, fa, fb, options)
    multiset = key is None or fa.has_duplicate_rows() or fb.has_duplicate_rows()

    # one binary search answers both directions; the rows themselves are read one
    # side at a time (memory)
    rows_a, rows_b = rows_not_in_each(fa, fb, include_duplicates=multiset)
    side_a = _changed_side(a, name, path_a, rows_a, schema_a, cache_dir, meta_a)
    side_b = _changed_side(b, name, path_b, rows_b, schema_b, cache_dir, meta_b)
    dups = []
    for snap, fp, side in ((a, fa, "old"), (b, fb, "new")):
        if key and not fp.key_unique(key):
            dups += duplicate_report(snap.table(name, columns=key), key, side)
    return diff_core(side_a, side_b, name, key, key_source, options, dups)


def _changed_side(snap: Any, name: str, path: Any, rows: np.ndarray, schema: pa.Schema,
                  cache_dir: Any, meta: dict | None) -> Side:
    """The rows of one side that fingerprints could not pair (source rows read only
    when there are some)."""
    table = read_rows(path, rows, schema, cache_dir, table_sha(snap, name))
    src = snap.source_rows(name) if len(rows) else None
    return Side(table, rows, src.take(pa.array(rows)) if src is not None else None, meta)


def resolve_key_cached(
    a: Any, b: Any, name: str, schema_a: pa.Schema, schema_b: pa.Schema,
    fa: Any, fb: Any, options: DiffOptions,
) -> tuple[list[str] | None, str]:
    """Resolve the key using uniqueness recorded with the fingerprints when possible."""
    if options.resolved_key is not None:
        return use_resolved(options.resolved_key, name, old=schema_a.names, new=schema_b.names)
    given = given_key(options)
    if given:
        key, source = given
        for schema, side in ((schema_a, "old"), (schema_b, "new")):
            check_key_columns(schema.names, key, name, f"{side} release", source)
        return key, source

    def unique(cand: list[str]) -> bool:
        for snap, fp in ((a, fa), (b, fb)):
            known, nonnull = fp.key_unique(cand), fp.key_nonnull(cand)
            if known is False or nonnull is False:
                return False
            if not (known and nonnull) and not is_unique_nonnull(
                    snap.table(name, columns=cand), cand):
                return False
        return True

    def near_unique(cand: list[str]) -> bool:
        return all(is_near_unique(snap.table(name, columns=cand), cand) for snap in (a, b))

    key = infer_leading_key(schema_b, schema_a, unique, near_unique)
    return (key, "inferred") if key else (None, "none")


def read_rows(path: Any, rows: np.ndarray, schema: pa.Schema, cache_dir: Any = None,
              sha256: str | None = None) -> pa.Table:
    """Rows (ascending numbers) of a Parquet file: from the memory-mapped Arrow copy
    kept at commit for big tables (cost grows with the rows taken), else by reading
    only the row groups that hold them, a few at a time so memory stays bounded by
    the rows kept plus one batch of groups.
    """
    import pyarrow.parquet as pq

    from atdarchive.fingerprint import take_rows

    if len(rows) == 0:
        return schema.empty_table()
    if cache_dir is not None:
        taken = take_rows(path, rows, cache_dir, sha256)
        if taken is not None and taken.schema.names == schema.names:
            return taken.cast(schema) if taken.schema != schema else taken
    pf = pq.ParquetFile(path)
    md = pf.metadata
    sizes = np.array([md.row_group(i).num_rows for i in range(md.num_row_groups)], np.int64)
    ends = np.cumsum(sizes)
    starts = ends - sizes
    rg_of = np.searchsorted(ends, rows, side="right")
    pieces = []
    batch: list[int] = []
    batch_rows = 0

    def flush() -> None:
        nonlocal batch, batch_rows
        if not batch:
            return
        tbl = pf.read_row_groups(batch, use_threads=True)
        offset = np.cumsum([0] + [int(sizes[g]) for g in batch[:-1]])
        sel = np.isin(rg_of, batch)
        loc_rows, loc_rg = rows[sel], rg_of[sel]
        base = offset[np.searchsorted(np.array(batch), loc_rg)]
        pieces.append(tbl.take(pa.array(base + loc_rows - starts[loc_rg])))
        batch, batch_rows = [], 0

    for g in np.unique(rg_of).tolist():
        batch.append(g)
        batch_rows += int(sizes[g])
        if batch_rows >= READ_BATCH_ROWS:
            flush()
    flush()
    out = pa.concat_tables(pieces)
    return out.cast(schema) if out.schema != schema else out
