"""Per-row fingerprints, computed once per snapshot table and cached.

Why: a diff of two large snapshots that differ in a few rows should not read
every column of both. At commit time we hash every row (all columns, in
column-*name* order so that a reorder does not change it) with DuckDB's
`hash()` and store the 64-bit fingerprints **sorted**, with the row number each
came from. A later diff then finds the rows present unchanged on both sides
with two binary searches over narrow uint64 arrays (memory-mapped), and reads
full rows only for the rest (see `diff.diff_snapshots`).

Soundness: equal fingerprints are taken to mean equal rows (a false match needs
a 64-bit collision between a row and its changed version); unequal fingerprints
only mean "compare for real", so a different hash function (another DuckDB
version) or an option like `--abs-tol` can only cost time, never correctness.
The cache records the hash identity and both sides must match to be used.

Cache file: `<cache_dir>/<digest>.fp.arrow`, an uncompressed Arrow IPC file with
columns `fp` (uint64, ascending) and `row` (uint32/uint64, the 0-based row of the
Parquet file), and schema metadata `atdarchive.fp` (JSON: version, rows, columns
[[name, type]...], unique: {"a\\x1fb": true|false...}, nonnull: {...}). The digest is the
file's sha256 when the caller knows it, else its resolved path + size + mtime.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

FP_FORMAT = 1
_META = b"atdarchive.fp"
_SEP = "\x1f"


@functools.cache
def hash_identity() -> str:
    """Name of the row-hash function in use (fingerprints only compare within one).

    Read from package metadata so that a diff need not import DuckDB (~0.3 s).
    """
    from importlib.metadata import version

    return f"duckdb-{version('duckdb')}-hash-v{FP_FORMAT}"


def default_cache_dir() -> Path:
    base = os.environ.get("ATDARCHIVE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "atdarchive"
    )
    return Path(base) / "fingerprints"


def _qi(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _qs(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _cache_digest(table_path: Path, sha256: str | None) -> str:
    if sha256:
        return "sha256-" + sha256
    st = table_path.stat()
    ident = f"{table_path.resolve()}\0{st.st_size}\0{st.st_mtime_ns}"
    return "stat-" + hashlib.sha256(ident.encode()).hexdigest()[:32]


def cache_path(table_path: Path, cache_dir: Path | None = None, sha256: str | None = None) -> Path:
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return cache_dir / f"{_cache_digest(Path(table_path), sha256)}.fp.arrow"


#: Tables with at least this many rows also get an uncompressed Arrow copy in the cache,
#: memory-mapped by diffs to take just the rows whose fingerprints differ (a Parquet file
#: can only be decoded a whole row group at a time). Smaller tables are read whole.
ROW_COPY_MIN_ROWS = 131_072


def rows_copy_path(table_path: Path, cache_dir: Path | None = None,
                   sha256: str | None = None) -> Path:
    fp_path = cache_path(table_path, cache_dir, sha256)
    return fp_path.with_name(fp_path.name.removesuffix(".fp.arrow") + ".rows.arrow")


def take_rows(table_path: Path, rows: np.ndarray, cache_dir: Path | None = None,
              sha256: str | None = None) -> pa.Table | None:
    """Rows of a table from its memory-mapped Arrow copy; None when there is no copy."""
    path = rows_copy_path(table_path, cache_dir, sha256)
    if not path.exists():
        return None
    table = pa.ipc.open_file(pa.memory_map(str(path))).read_all()
    return table.take(pa.array(rows))


def _write_rows_copy(table_path: Path, out: Path) -> None:
    table = pq.read_table(table_path)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    os.replace(tmp, out)


def _is_key_type(t: pa.DataType) -> bool:
    return not (pa.types.is_floating(t) or pa.types.is_nested(t) or pa.types.is_null(t))


@dataclass
class Fingerprints:
    """Sorted row fingerprints of one table plus what is known about its keys."""

    fp: np.ndarray  # uint64, ascending
    row: np.ndarray  # row number in the table for each fp
    version: str
    columns: list[tuple[str, str]]
    unique: dict[str, bool] = field(default_factory=dict)
    nonnull: dict[str, bool] = field(default_factory=dict)

    @property
    def num_rows(self) -> int:
        return len(self.fp)

    def compatible(self, other: Fingerprints) -> bool:
        """Same hash function and same columns (as a set): fingerprints comparable."""
        return self.version == other.version and sorted(self.columns) == sorted(other.columns)

    def key_unique(self, key: Sequence[str]) -> bool | None:
        """True/False when uniqueness of `key` was recorded, None when unknown."""
        return self.unique.get(_SEP.join(key))

    def key_nonnull(self, key: Sequence[str]) -> bool | None:
        vals = [self.nonnull.get(k) for k in key]
        if any(v is None for v in vals):
            return None
        return all(vals)

    def has_duplicate_rows(self) -> bool:
        return bool(len(self.fp) > 1 and np.any(self.fp[1:] == self.fp[:-1]))


def _row_hash_sql(names: Sequence[str]) -> str:
    cols = ", ".join(_qi(c) for c in sorted(names))
    return f"hash({cols})" if names else "0::UBIGINT"


def fingerprint_table(table: pa.Table) -> pa.Array:
    """Row-aligned uint64 fingerprints of an in-memory table (same hash as the cache)."""
    import duckdb

    con = duckdb.connect()
    try:
        con.register("t", table)
        sql = f"SELECT {_row_hash_sql(table.column_names)} AS fp FROM t"
        out = con.sql(sql).to_arrow_table()
    finally:
        con.close()
    return out.column("fp").combine_chunks()


def from_row_aligned(fp: pa.Array | np.ndarray, table: pa.Table | None = None) -> Fingerprints:
    """Wrap row-aligned fingerprints (e.g. from `fingerprint_table`) as sorted `Fingerprints`."""
    arr = fp.to_numpy(zero_copy_only=False) if isinstance(fp, pa.Array | pa.ChunkedArray) else fp
    arr = np.asarray(arr, dtype=np.uint64)
    order = np.argsort(arr, kind="stable")
    cols = [(f.name, str(f.type)) for f in table.schema] if table is not None else []
    return Fingerprints(arr[order], order, hash_identity(), cols)


def compute_fingerprints(
    table_path: Path,
    cache_dir: Path | None = None,
    *,
    sha256: str | None = None,
    key: Sequence[str] | None = None,
    force: bool = False,
) -> Path:
    """Fingerprint a snapshot's Parquet table into the cache; return the cache file.

    Meant to run at commit time. Also records whether the leading 1..3 columns
    (and `key`, when given) are unique and non-null, so a later diff can infer
    or trust a key without reading the key columns again. Uniqueness is judged
    on hashes, which can only under-report it (then the diff checks for real).
    """
    import duckdb

    table_path = Path(table_path)
    out = cache_path(table_path, cache_dir, sha256)
    if out.exists() and not force:
        return out
    schema = pq.read_schema(table_path)
    names = list(schema.names)
    prefixes: list[list[str]] = []
    for k in range(1, min(3, len(names)) + 1):
        if not _is_key_type(schema.field(names[k - 1]).type):
            break
        prefixes.append(names[:k])
    if key and list(key) not in prefixes and all(k in names for k in key):
        prefixes.append(list(key))

    con = duckdb.connect()
    try:
        src = f"read_parquet({_qs(str(table_path))})"
        exprs = [f"{_row_hash_sql(names)} AS fp"]
        exprs += [f"hash({', '.join(_qi(c) for c in p)}) AS k{i}" for i, p in enumerate(prefixes)]
        tbl = con.sql(f"SELECT {', '.join(exprs)} FROM {src}").to_arrow_table()
        keycols = sorted({c for p in prefixes for c in p})
        count_sql = ", ".join(f"count({_qi(c)})" for c in keycols) or "0"
        counts = con.sql(f"SELECT {count_sql}, count(*) FROM {src}").fetchall()[0]
    finally:
        con.close()
    nrows = tbl.num_rows
    nonnull = {c: int(counts[i]) == nrows for i, c in enumerate(keycols)}
    unique: dict[str, bool] = {}
    for i, p in enumerate(prefixes):
        h = np.sort(tbl.column(f"k{i}").to_numpy())
        # distinct hashes => distinct values; equal hashes almost surely mean a
        # duplicate (a 64-bit collision could only make a key look non-unique)
        unique[_SEP.join(p)] = bool(len(h) < 2 or not np.any(h[1:] == h[:-1]))
    fp = tbl.column("fp").to_numpy()
    order = np.argsort(fp, kind="stable")
    row_dtype = np.uint32 if nrows < 2**32 else np.uint64
    data = pa.table({"fp": pa.array(fp[order]), "row": pa.array(order.astype(row_dtype))})
    meta = {
        "version": hash_identity(),
        "rows": nrows,
        "columns": [[f.name, str(f.type)] for f in schema],
        "unique": unique,
        "nonnull": nonnull,
    }
    data = data.replace_schema_metadata({_META: json.dumps(meta).encode()})
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, data.schema) as writer:
        writer.write_table(data)
    os.replace(tmp, out)
    if nrows >= ROW_COPY_MIN_ROWS:
        _write_rows_copy(table_path, rows_copy_path(table_path, cache_dir, sha256))
    return out


def load_fingerprints(
    table_path: Path, cache_dir: Path | None = None, *, sha256: str | None = None
) -> Fingerprints | None:
    """The cached fingerprints of a table (memory-mapped), or None when absent/stale."""
    path = cache_path(Path(table_path), cache_dir, sha256)
    if not path.exists():
        return None
    try:
        reader = pa.ipc.open_file(pa.memory_map(str(path), "r"))
        tbl = reader.read_all()
        meta = json.loads((tbl.schema.metadata or {})[_META])
    except (pa.ArrowInvalid, KeyError, OSError, ValueError):
        return None
    if meta.get("version") != hash_identity():
        return None
    fp = tbl.column("fp").chunk(0).to_numpy() if tbl.num_rows else np.zeros(0, np.uint64)
    row = tbl.column("row").chunk(0).to_numpy() if tbl.num_rows else np.zeros(0, np.uint32)
    return Fingerprints(
        fp,
        row,
        meta["version"],
        [tuple(c) for c in meta["columns"]],
        dict(meta.get("unique", {})),
        dict(meta.get("nonnull", {})),
    )


def rows_not_in(a: Fingerprints, b: Fingerprints, include_duplicates: bool = False) -> np.ndarray:
    """Rows of `a` (ascending row numbers) whose fingerprint does not occur in `b`.

    Both arrays are sorted, so this is one vectorised binary search. With
    `include_duplicates`, rows whose fingerprint repeats on either side are
    returned too (a multiset diff must count those itself).
    """
    if len(a.fp) == 0:
        return np.zeros(0, dtype=np.int64)
    if len(b.fp) == 0:
        return np.sort(a.row.astype(np.int64))
    pos = np.searchsorted(b.fp, a.fp)
    pos_c = np.minimum(pos, len(b.fp) - 1)
    missing = b.fp[pos_c] != a.fp
    if include_duplicates:
        dup_a = np.zeros(len(a.fp), dtype=bool)
        same = a.fp[1:] == a.fp[:-1]
        dup_a[1:] |= same
        dup_a[:-1] |= same
        # repeated in b: the value right after the match is equal too
        nxt = np.minimum(pos + 1, len(b.fp) - 1)
        dup_b = (~missing) & (nxt != pos_c) & (b.fp[nxt] == a.fp)
        missing |= dup_a | dup_b
    return np.sort(a.row[missing].astype(np.int64))
