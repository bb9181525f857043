"""CSV for people: text that a spreadsheet would run as a formula is written as text.

A publication's cells are someone else's text. A CSV cell beginning with `=`, `+`,
`-`, `@`, a tab or a carriage return (OWASP, "CSV Injection") is a live formula when
the file is opened in Excel, LibreOffice or Sheets: `=cmd|' /C calc'!A0` runs a
program, `=HYPERLINK(...)` sends data away. So every CSV this tool writes for people
prefixes such a *text* cell with one `'`, as OWASP advises:

- a text cell whose first character is a tab or carriage return, or whose first
  non-blank character is `=`, `+`, `-`, `@` (or their full-width forms `＝＋－＠`,
  which some spreadsheets also read as formulas), gets a leading `'`;
- a text cell that is a plain number (`-5`, `+1.5`, `-60,980`, `-1e3`: a sign, digits,
  separators, an exponent, nothing else) stays as it is: it cannot call anything, and
  a spreadsheet reads it as the same number either way (as Oracle APEX and Superset do);
- a text cell that already begins with `'` gets one more, so the rule inverts exactly:
  remove one leading `'` from every cell that has one and you have the data back;
- column names get the same treatment (the header is a row of cells too);
- numbers, dates and booleans are not text and are written as they are (`-5` in an
  integer column stays `-5`).

`raw=True` (the commands' `--raw`) writes every cell exactly. Parquet and JSON outputs
are data for programs, not opened as spreadsheets, and are never changed. Vectorised
with Arrow compute: no Python loop over rows.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import IO, TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

if TYPE_CHECKING:
    from atdarchive.diff.types import SnapshotDiff, TableDiff
    from atdarchive.render.diff_records import Out

PREFIX = "'"
#: Cells a spreadsheet may run: a tab/CR first, or a formula sign after any blanks.
FORMULA = "^(?:[\t\r]|[ \t\n\x0b\f\r]*[=+\\-@＝＋－＠])"
#: A plain number: harmless, and read as the same number with or without the prefix.
NUMBER = r"^[+-]?(?:[0-9][0-9,]*(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"


def _is_text(type_: pa.DataType) -> bool:
    if pa.types.is_dictionary(type_):
        return _is_text(type_.value_type)
    return (pa.types.is_string(type_) or pa.types.is_large_string(type_)
            or pa.types.is_string_view(type_))


def needs_prefix(array: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Per text cell: does it get the leading `'` (null for a null cell)."""
    formula = pc.and_(pc.match_substring_regex(array, FORMULA),
                      pc.invert(pc.match_substring_regex(array, NUMBER)))
    return pc.or_(formula, pc.starts_with(array, PREFIX))


def neutralise_array(array: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """A text column with its formula-looking cells prefixed; other columns unchanged."""
    if not _is_text(array.type):
        return array
    if not pa.types.is_string(array.type) and not pa.types.is_large_string(array.type):
        array = array.cast(pa.string())
    prefixed = pc.binary_join_element_wise(PREFIX, array, "")
    return pc.if_else(needs_prefix(array), prefixed, array)


def neutralise_name(name: str) -> str:
    return str(neutralise_array(pa.array([name], pa.string()))[0])


def neutralise(table: pa.Table) -> pa.Table:
    """TABLE as it may be written to a CSV for people (module docstring)."""
    columns = [neutralise_array(c) for c in table.columns]
    names = [neutralise_name(n) for n in table.column_names]
    return pa.Table.from_arrays(columns, names=names)


def write_csv(table: pa.Table, out: str | Path | IO[bytes], *, raw: bool = False) -> None:
    """TABLE as CSV to a path or binary stream; formula-looking text neutralised unless RAW."""
    import pyarrow.csv as pacsv

    pacsv.write_csv(table if raw else neutralise(table), out)


def csv_text(table: pa.Table, *, raw: bool = False) -> str:
    """TABLE as CSV text (for stdout)."""
    buffer = io.BytesIO()
    write_csv(table, buffer, raw=raw)
    return buffer.getvalue().decode("utf-8")


def write_diff_csv(diff: TableDiff | SnapshotDiff, out: Out, *, raw: bool = False,
                   **_: object) -> None:
    """`diff --format csv`: the long layout (`diff_long.long_table`), neutralised unless RAW."""
    from atdarchive.render.diff_long import long_table
    from atdarchive.render.diff_records import emit

    emit(csv_text(long_table(diff), raw=raw), out)
