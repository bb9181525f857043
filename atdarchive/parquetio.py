"""How snapshot tables are written to and read from Parquet (one place, one set of options)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


def write_table(table: pa.Table, path: Path) -> None:
    """Write one snapshot table; zstd keeps the archive small at little CPU cost."""
    pq.write_table(table, path, compression="zstd")


def read_table(path: Path, columns: list[str] | None = None) -> pa.Table:
    return pq.read_table(path, columns=columns)
