"""How snapshot tables are written to and read from Parquet (one place, one set of options)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

#: Rows per Parquet row group. Smaller than pyarrow's default (1Mi) so a diff that
#: needs a few rows (those whose fingerprint changed, see atdarchive.fingerprint)
#: reads only the row groups holding them; 128Ki rows costs ~nothing in size or speed.
ROW_GROUP_SIZE = 131_072


def write_table(table: pa.Table, path: Path) -> None:
    """Write one snapshot table; zstd keeps the archive small at little CPU cost."""
    pq.write_table(table, path, compression="zstd", row_group_size=ROW_GROUP_SIZE)


def read_table(path: Path, columns: list[str] | None = None) -> pa.Table:
    return pq.read_table(path, columns=columns)
