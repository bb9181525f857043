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
Small tables (`COLUMN_HASH_MAX_CELLS`) also get one uint64 column `h<i>` per table
column, in `fp` order: that column's value hash (numbers as float64 where exact), and
metadata `column_hashes` ({null: hash of a null, classes: [[name, class]...]}), from
which `diff --stat` counts rows across a schema change (`Fingerprints.rows_over`).
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

from atdarchive.util import atomic_write

FP_FORMAT = 1
_META = b"atdarchive.fp"
_SEP = "\x1f"


@functools.cache
def hash_identity() -> str:
    """Name of the row-hash function in use (fingerprints only compare within one).

    Read from DuckDB's installed metadata so that a diff need not import DuckDB (~0.3 s).
    """
    return f"duckdb-{_duckdb_version()}-hash-v{FP_FORMAT}"


def _duckdb_version() -> str:
    """DuckDB's version from the name of its `.dist-info` directory next to the package
    (what `importlib.metadata` finds too, without its ~20 ms import)."""
    import importlib.util

    spec = importlib.util.find_spec("duckdb")
    if spec is not None and spec.origin:
        site = Path(spec.origin).parent.parent
        found = sorted(site.glob("duckdb-*.dist-info"))
        if len(found) == 1:
            return found[0].name.removeprefix("duckdb-").removesuffix(".dist-info")
    from importlib.metadata import version

    return version("duckdb")


def default_cache_dir() -> Path:
    base = os.environ.get("ATDARCHIVE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "atdarchive"
    )
    return Path(base) / "fingerprints"


def _qi(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _qs(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _cache_digest(table_path: Path | None, sha256: str | None) -> str:
    if sha256:
        return "sha256-" + sha256
    if table_path is None:
        raise ValueError("a fingerprint cache entry needs the table's sha256 or its path")
    st = table_path.stat()
    ident = f"{table_path.resolve()}\0{st.st_size}\0{st.st_mtime_ns}"
    return "stat-" + hashlib.sha256(ident.encode()).hexdigest()[:32]


def cache_path(table_path: Path | None, cache_dir: Path | None = None,
               sha256: str | None = None) -> Path:
    """The cache file of a table: by its sha256 when known (then `table_path` may be
    None), else by its path, size and mtime."""
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = Path(table_path) if table_path is not None else None
    return cache_dir / f"{_cache_digest(path, sha256)}.fp.arrow"


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
    """The table as an uncompressed Arrow file (memory-mapped by `take_rows`)."""
    import pyarrow.parquet as pq

    _stream_arrow_file(out, pq.read_table(table_path))


def _stream_arrow_file(out: Path, table: pa.Table) -> None:
    """Write a table as an Arrow IPC file that readers see whole or not at all.

    The streaming counterpart of `util.atomic_write` (temporary file, then rename):
    big tables go to disk batch by batch instead of through an in-memory copy.
    """
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@dataclass
class Fingerprints:
    """Sorted row fingerprints of one table plus what is known about its keys."""

    fp: np.ndarray  # uint64, ascending
    row: np.ndarray  # row number in the table for each fp
    version: str
    columns: list[tuple[str, str]]
    unique: dict[str, bool] = field(default_factory=dict)
    nonnull: dict[str, bool] = field(default_factory=dict)
    #: Per-column value hashes in `fp` order (small tables only, see `COLUMN_HASH_MAX_CELLS`):
    #: column -> uint64 array, numbers hashed as float64 so that int 1 and float 1.0 agree.
    column_hashes: dict[str, np.ndarray] | None = None
    #: column -> its hash class ("num", "str", else the Arrow type): values of two columns
    #: compare by hash only within one class.
    column_classes: dict[str, str] = field(default_factory=dict)
    null_hash: int | None = None  # the hash of a null value

    @property
    def num_rows(self) -> int:
        return len(self.fp)

    def rows_over(self, columns: Sequence[str]) -> np.ndarray:
        """Row hashes over some `columns` only, from the column hashes, in `fp` order
        (equal for rows equal on those columns, whatever the column order)."""
        assert self.column_hashes is not None
        acc = np.zeros(len(self.fp), np.uint64)
        with np.errstate(over="ignore"):
            for c in columns:
                acc += _mix(self.column_hashes[c] ^ _name_salt(c))
        return acc

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


#: Tables of at most this many cells also get per-column hashes (8 bytes a cell), so a
#: `diff --stat` can count changed rows across a schema change without the engine.
COLUMN_HASH_MAX_CELLS = 2_000_000
_EXACT_FLOAT_INT = 2**53  # integers up to this size are exact as float64


def _hash_class(t: pa.DataType, int_range: tuple[int, int] | None) -> tuple[str, str]:
    """(class, SQL template) of one column's value hash: numbers as float64 where that
    is exact (the engine compares int and float columns as float64), text as text."""
    if pa.types.is_dictionary(t):
        t = t.value_type
    exact_ints = int_range is None or max(map(abs, int_range)) <= _EXACT_FLOAT_INT
    if pa.types.is_floating(t) or (pa.types.is_integer(t) and exact_ints):
        return "num", "hash({}::DOUBLE)"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "str", "hash({})"
    return str(t), "hash({})"


_MIX1, _MIX2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer: spreads hash bits before hashes are added up."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * _MIX1
        x = (x ^ (x >> np.uint64(27))) * _MIX2
    return x ^ (x >> np.uint64(31))


@functools.cache
def _name_salt(name: str) -> np.uint64:
    return np.uint64(int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(),
                                    "little"))


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
    import pyarrow.parquet as pq

    from atdarchive.keys import MAX_INFERRED_KEY_COLUMNS, is_key_type

    table_path = Path(table_path)
    out = cache_path(table_path, cache_dir, sha256)
    if out.exists() and not force:
        return out
    schema = pq.read_schema(table_path)
    names = list(schema.names)
    prefixes: list[list[str]] = []
    for k in range(1, min(MAX_INFERRED_KEY_COLUMNS, len(names)) + 1):
        if not is_key_type(schema.field(names[k - 1]).type):
            break
        prefixes.append(names[:k])
    if key and list(key) not in prefixes and all(k in names for k in key):
        prefixes.append(list(key))

    keycols = sorted({c for p in prefixes for c in p})
    int_cols = [f.name for f in schema if pa.types.is_integer(
        f.type.value_type if pa.types.is_dictionary(f.type) else f.type)]
    con = duckdb.connect()
    try:
        src = f"read_parquet({_qs(str(table_path))})"
        stats = [f"count({_qi(c)})" for c in keycols]
        stats += [f"min({_qi(c)}), max({_qi(c)})" for c in int_cols]
        counts = con.sql(f"SELECT {', '.join([*stats, 'count(*)'])} FROM {src}").fetchall()[0]
        nrows = int(counts[-1])
        exprs = [f"{_row_hash_sql(names)} AS fp"]
        exprs += [f"hash({', '.join(_qi(c) for c in p)}) AS k{i}" for i, p in enumerate(prefixes)]
        classes: list[list[str]] = []
        if nrows * len(names) <= COLUMN_HASH_MAX_CELLS:
            bounds = counts[len(keycols):-1]  # min, max of each integer column
            ranges = {c: (bounds[2 * i], bounds[2 * i + 1]) for i, c in enumerate(int_cols)}
            for i, f in enumerate(schema):
                rng = ranges.get(f.name)
                kind, sql = _hash_class(f.type, None if rng is None or rng[0] is None else rng)
                classes.append([f.name, kind])
                exprs.append(f"{sql.format(_qi(f.name))} AS h{i}")
        tbl = con.sql(f"SELECT {', '.join(exprs)} FROM {src}").to_arrow_table()
        null_hash = con.sql("SELECT hash(NULL)").fetchall()[0][0]
    finally:
        con.close()
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
    cols = {"fp": pa.array(fp[order]), "row": pa.array(order.astype(row_dtype))}
    for i in range(len(classes)):
        cols[f"h{i}"] = pa.array(tbl.column(f"h{i}").to_numpy()[order])
    data = pa.table(cols)
    meta = {
        "version": hash_identity(),
        "rows": nrows,
        "columns": [[f.name, str(f.type)] for f in schema],
        "unique": unique,
        "nonnull": nonnull,
    }
    if classes:
        meta["column_hashes"] = {"null": null_hash, "classes": classes}
    data = data.replace_schema_metadata({_META: json.dumps(meta).encode()})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, data.schema) as writer:
        writer.write_table(data)
    atomic_write(out, sink.getvalue().to_pybytes(), durable=False, mkdir=True)
    if nrows >= ROW_COPY_MIN_ROWS:
        _write_rows_copy(table_path, rows_copy_path(table_path, cache_dir, sha256))
    return out


def load_fingerprints(
    table_path: Path | None, cache_dir: Path | None = None, *, sha256: str | None = None
) -> Fingerprints | None:
    """The cached fingerprints of a table (memory-mapped), or None when absent/stale.

    With `sha256` the table file itself is not touched (`table_path` may be None).
    """
    path = cache_path(table_path, cache_dir, sha256)
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

    def column(name: str, dtype: type) -> np.ndarray:
        return tbl.column(name).chunk(0).to_numpy() if tbl.num_rows else np.zeros(0, dtype)

    try:
        fp = Fingerprints(column("fp", np.uint64), column("row", np.uint32), meta["version"],
                          [tuple(c) for c in meta["columns"]], dict(meta.get("unique", {})),
                          dict(meta.get("nonnull", {})))
        hashes = meta.get("column_hashes")
        if hashes:  # optional (small tables, caches made since atdarchive kept them)
            classes = [(str(c), str(kind)) for c, kind in hashes["classes"]]
            fp.column_hashes = {c: column(f"h{i}", np.uint64) for i, (c, _) in enumerate(classes)}
            fp.column_classes, fp.null_hash = dict(classes), int(hashes["null"])
    except (KeyError, IndexError, TypeError, ValueError):  # not a cache file this code wrote
        return None
    return fp


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
        # repeated in b: the value right after the match is equal too
        nxt = np.minimum(pos + 1, len(b.fp) - 1)
        dup_b = (~missing) & (nxt != pos_c) & (b.fp[nxt] == a.fp)
        missing |= _repeated(a.fp) | dup_b
    return np.sort(a.row[missing].astype(np.int64))


def rows_not_in_each(a: Fingerprints, b: Fingerprints,
                     include_duplicates: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """`(rows_not_in(a, b, ...), rows_not_in(b, a, ...))` from one binary search of `a`
    in `b` instead of two (the runs of `b` that `a` hits are the rows of `b` found)."""
    if len(a.fp) == 0 or len(b.fp) == 0:
        return rows_not_in(a, b, include_duplicates), rows_not_in(b, a, include_duplicates)
    pos = np.minimum(np.searchsorted(b.fp, a.fp), len(b.fp) - 1)  # b's run of a's value
    found = b.fp[pos] == a.fp
    run_b = np.cumsum(_run_starts(b.fp)) - 1  # run number of each b element
    in_a = np.zeros(int(run_b[-1]) + 1, bool)
    in_a[run_b[pos[found]]] = True
    missing_a, missing_b = ~found, ~in_a[run_b]
    if include_duplicates:  # a value repeated on either side is for the caller to count
        dup_a, dup_b = _repeated(a.fp), _repeated(b.fp)
        twice_in_a = np.zeros_like(in_a)
        twice_in_a[run_b[pos[found & dup_a]]] = True
        missing_a |= dup_a | (found & dup_b[pos])
        missing_b |= dup_b | twice_in_a[run_b]
    return (np.sort(a.row[missing_a].astype(np.int64)),
            np.sort(b.row[missing_b].astype(np.int64)))


def _run_starts(x: np.ndarray) -> np.ndarray:
    """True where a run of equal values begins in sorted `x`."""
    start = np.empty(len(x), bool)
    start[:1] = True
    np.not_equal(x[1:], x[:-1], out=start[1:])
    return start


def _repeated(x: np.ndarray) -> np.ndarray:
    """True for the elements of sorted `x` whose value occurs more than once."""
    same = x[1:] == x[:-1]
    dup = np.zeros(len(x), bool)
    dup[1:] |= same
    dup[:-1] |= same
    return dup


def count_not_in(a: np.ndarray, b: np.ndarray) -> int:
    """How many elements of sorted `a` have no counterpart in sorted `b`, as multisets
    (two copies in `a` and one in `b` leave one): with row fingerprints, the rows a diff
    shows as deleted or revised."""
    if len(a) == 0 or len(b) == 0:
        return len(a)
    rank = np.arange(len(a)) - np.searchsorted(a, a, "left")  # rank among its copies in a
    in_b = np.searchsorted(b, a, "right") - np.searchsorted(b, a, "left")
    return int(np.count_nonzero(rank >= in_b))
