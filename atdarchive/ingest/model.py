"""What a reader hands to the archive: the logical tables of one publication.

Readers (CSV, Parquet, JSON, XLSX) turn an original file into a `Publication`.
The snapshot store then writes each `ExtractedTable` as Parquet and keeps the
rest (notes, stated dates, provenance, the lossless cell layer) beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa


@dataclass
class StatedDate:
    """A date the publication states about itself ("as of 9/06/2025").

    `kind` is one of: "as_of", "data_from", "through", "run_date", "other".
    `date` is ISO (YYYY-MM-DD); `where` is the source cell (`sheet!A1`) or None.
    """

    date: str
    kind: str
    text: str
    where: str | None = None
    table: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class ExtractedTable:
    """One logical table of a publication.

    `source_rows[i]` is the 1-based row number (sheet row, or CSV line) that
    data row i came from; `source_columns[c]` is the column letter (XLSX) or
    position as a letter (CSV: the letter a spreadsheet would show) that
    column c came from. Together with `sheet` they
    give each value's source cell, see `cell_address`.
    """

    name: str
    data: pa.Table
    sheet: str | None = None
    cell_range: str | None = None
    title: str | None = None
    notes: list[str] = field(default_factory=list)
    key: list[str] | None = None
    source_rows: list[int] | None = None
    source_columns: dict[str, str] | None = None

    def meta(self) -> dict[str, Any]:
        """The table's description as kept in the snapshot record."""
        out: dict[str, Any] = {}
        for attr in ("sheet", "cell_range", "title", "key"):
            value = getattr(self, attr)
            if value is not None:
                out[attr] = value
        if self.notes:
            out["notes"] = list(self.notes)
        if self.source_columns:
            out["source_columns"] = dict(self.source_columns)
        return out


@dataclass
class Publication:
    """Everything a reader extracted from one original file."""

    format: str
    tables: list[ExtractedTable]
    cells: pa.Table | None = None
    stated_dates: list[StatedDate] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    reader: str = ""
    json_path: str | None = None  # where in a JSON document the records were found


def cell_address(sheet: str | None, column: str, row: int) -> str:
    """`sheet!A1` style address; CSV sources (no sheet) give `A1`-like `C3`."""
    prefix = f"{sheet}!" if sheet is not None else ""
    return f"{prefix}{column}{row}"


def cell_addresses(meta: dict[str, Any] | None, column: str, source_rows: pa.Array | None,
                   rows: Any) -> pa.Array:
    """`sheet!C7` for some data rows (positions `rows`) of one column, column-wise.

    `meta` is a table's record entry (`sheet`, `source_columns`); null where unknown.
    """
    import pyarrow.compute as pc

    letter = ((meta or {}).get("source_columns") or {}).get(column)
    if source_rows is None or letter is None:
        return pa.nulls(len(rows), pa.string())
    prefix = cell_address((meta or {}).get("sheet"), str(letter), 1)[:-1]
    numbers = pc.cast(source_rows.take(pa.array(rows)), pa.string())
    return pc.binary_join_element_wise(prefix, numbers, "")


def column_letter(index: int) -> str:
    """0-based column index to spreadsheet letters (0 -> A, 26 -> AA)."""
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters
