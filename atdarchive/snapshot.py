"""A snapshot as readers see it: its record and lazily loaded, hash-checked tables."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from atdarchive.errors import AtdError
from atdarchive.history import RecordFields

if TYPE_CHECKING:
    import pyarrow as pa

    from atdarchive.hierarchy import Hierarchy
    from atdarchive.store import SnapshotStore

#: table name -> its hierarchy, as the archive decides it for the whole dataset.
HierarchyOf = Callable[[str], "Hierarchy | None"]


class Snapshot(RecordFields):
    """One immutable publication: `.record`, `.tables`, `.table(name)`, `.original_path`."""

    def __init__(self, store: SnapshotStore, record: dict[str, Any],
                 directory: Path | None = None, hierarchy: HierarchyOf | None = None) -> None:
        self._store = store
        self.record = record
        self._directory = directory  # a staged snapshot, read before it is published
        self._hierarchy = hierarchy

    def __repr__(self) -> str:
        return f"<Snapshot {self.ref} published {self.published} ({self.channel})>"

    @property
    def ref(self) -> str:
        return f"{self.dataset}@{self.short_id}"

    @property
    def table_names(self) -> list[str]:
        return list(self.record["tables"])

    @property
    def tables(self) -> Mapping[str, pa.Table]:
        """Name -> table, each read (and hash-checked) on first access."""
        return _LazyTables(self)

    def require_tables(self, what: str = "read") -> Snapshot:
        """Refuse, in one line, to treat an evidence-only publication as data."""
        problem = self.record.get("parse_error")
        if problem is not None:
            raise AtdError(f"{self.ref} (published {self.published}) is evidence only: no "
                           f"reader could parse it ({str(problem)[:160]}); it has no tables "
                           f"to {what}; name a data release (e.g. {self.dataset}@latest~1)")
        return self

    def table_meta(self, name: str) -> dict[str, Any]:
        self.require_tables()
        try:
            return self.record["tables"][name]
        except KeyError:
            raise AtdError(f"{self.ref}: no table {name!r} ({choices(name, self.table_names)})"
                           ) from None

    def file_path(self, relpath: str) -> Path:
        """The verified copy of one file of the snapshot (by its path in the record)."""
        if self._directory is not None:
            return self._directory / relpath
        info = self.record["files"][relpath]
        return self._store.verified_path(self.dataset, self.id, relpath, info["sha256"])

    def table_path(self, name: str) -> Path:
        """The verified Parquet file of one table."""
        return self.file_path(self.table_meta(name)["file"])

    def table(self, name: str | None = None, columns: list[str] | None = None, *,
              derived: bool = True) -> pa.Table:
        """One table as Arrow; `name` may be omitted when the snapshot has one table.

        With `derived` (the default) a hierarchical table gets its two key columns in
        front (`atdarchive.hierarchy`); `derived=False` gives the table as stored."""
        from atdarchive.parquetio import read_table

        name = self.default_table(name)
        spec = self.hierarchy(name) if derived else None
        if spec is None:
            return read_table(self.table_path(name), columns=columns)
        from atdarchive.hierarchy import apply

        table = apply(read_table(self.table_path(name)), spec)
        return table.select(columns) if columns is not None else table

    def hierarchy(self, name: str) -> Hierarchy | None:
        """The hierarchy key the table is read with (None for a flat table)."""
        from atdarchive.hierarchy import could_be, detect

        meta = self.table_meta(name)
        if self._hierarchy is not None:
            return self._hierarchy(name)
        if not could_be(meta):
            return None
        from atdarchive.parquetio import read_table

        return detect(read_table(self.table_path(name)))

    def default_table(self, name: str | None) -> str:
        self.require_tables()
        if name is not None:
            self.table_meta(name)
            return name
        if len(self.table_names) == 1:
            return self.table_names[0]
        raise AtdError(
            f"{self.ref} has {len(self.table_names)} tables; choose one with --table "
            f"({', '.join(self.table_names[:8])}{', ...' if len(self.table_names) > 8 else ''})"
        )

    def source_rows(self, name: str) -> pa.Array | None:
        """Sheet row (1-based) of each data row, for `sheet!A1` provenance."""
        from atdarchive.parquetio import read_table

        relpath = self.table_meta(name).get("rows_file")
        if relpath is None:
            return None
        return read_table(self.file_path(relpath)).column(0).combine_chunks()

    def cells(self) -> pa.Table | None:
        """The lossless layer: every non-empty cell of every sheet (XLSX only)."""
        from atdarchive.parquetio import read_table

        if "cells.parquet" not in self.record["files"]:
            return None
        return read_table(self.file_path("cells.parquet"))

    @property
    def original_path(self) -> Path:
        return self.file_path(self.record["original"]["file"])

    def to_pandas(self, name: str | None = None) -> Any:
        """The table as a pandas DataFrame (needs pandas installed)."""
        try:
            import pandas  # noqa: F401
        except ImportError:
            raise AtdError("to_pandas needs pandas: pip install pandas") from None
        return self.table(name).to_pandas()


def choices(wrong: str, names: list[str], shown: int = 3) -> str:
    """'did you mean …' and a short list of NAMES, for a one-line error about WRONG."""
    import difflib

    def squash(text: str) -> str:
        return "".join(ch for ch in text.casefold() if ch.isalnum())

    near = [n for n in names if squash(wrong) and squash(wrong) in squash(n)]
    near = near or difflib.get_close_matches(wrong, names, n=1, cutoff=0.6)
    listed = ", ".join(names[:shown]) + (f", … ({len(names)} in all; see 'atdarchive "
                                         "tables')" if len(names) > shown else "")
    return (f"did you mean {near[0]!r}? " if near else "") + f"tables: {listed}"


class _LazyTables(Mapping):
    def __init__(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot
        self._loaded: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name not in self._snapshot.record["tables"]:
            raise KeyError(name)
        if name not in self._loaded:
            self._loaded[name] = self._snapshot.table(name)
        return self._loaded[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._snapshot.record["tables"])

    def __len__(self) -> int:
        return len(self._snapshot.record["tables"])
