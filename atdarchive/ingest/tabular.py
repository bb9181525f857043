"""Readers for single-table formats (CSV/TSV, JSON, Parquet) and the typing rules shared with XLSX.

Every single-table file yields one table named ``data``: the file name changes from
release to release ("stats_20250704.csv"), the table's identity must not.

Tidy-table rules (CSV here, XLSX cells in `xlsx.py`, same outcome):

* Column names: header text with surrounding whitespace stripped and inner runs of
  whitespace (newlines included) collapsed to one space; an empty name becomes ``col_N``
  (N = 1-based position) and a repeated one gets ``_2``, ``_3``...
* Strings: surrounding whitespace stripped (``"ICE  "`` -> ``"ICE"``); a cell that is empty
  after stripping is null. Nothing else is treated as null: "NA", "-" and "N/A" stay text.
* Numbers: a column becomes numeric when every non-null value is a number, written plainly
  or with thousands separators and trailing footnote stars (``1,234``, ``12*``). Numbers with
  a leading zero (``02863``, zip codes) are text, so such a column stays text. A numeric column
  is ``int64`` when every value is whole (and fits), else ``float64``. One non-number
  (``"(D)"``, ``"-"``, ``"12%"``) keeps the whole column as text: a column never mixes.
* ISO dates (``2025-06-14``) -> ``date32``; ISO date-times -> ``timestamp[us]``; a column of
  only ``true``/``false`` (any case) -> ``bool``.

JSON keeps its own types (no parsing of numbers out of strings); strings are stripped the
same way, and a column mixing kinds (text and numbers) is refused as not tabular. Parquet is
already typed and tidy: its table passes through unchanged.

Provenance: CSV ``source_rows`` are 1-based line numbers where each record starts (the
header is line 1, blank lines and quoted line breaks are accounted for), ``source_columns``
the field's position as a spreadsheet column letter (A, B, ...), as Excel shows
a CSV. JSON ``source_rows`` are 1-based record numbers.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from atdarchive.errors import IngestError
from atdarchive.ingest.model import ExtractedTable, Publication, column_letter
from atdarchive.limits import human
from atdarchive.limits.ingest import DEFAULT, IngestBounds

TABLE_NAME = "data"
# A number as agencies write it: plain, with thousands separators, trailing footnote stars.
NUMBER_PATTERN = (
    r"^[+-]?(?:0|[1-9][0-9]{0,2}(?:,[0-9]{3})+|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?\**$"
)
_INT_PATTERN = r"^[+-]?[0-9]+$"
_DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_DATETIME_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?$"
NUMBER_RE = re.compile(NUMBER_PATTERN)
_SNIFF_BYTES = 64 * 1024
_PREFIX = 4 * _SNIFF_BYTES + 16  # bytes read before the whole file: >= _SNIFF_BYTES characters
_INT64_LIMIT = 2**63
_BLOCK = pacsv.ReadOptions().block_size  # pyarrow's default, 1 MiB
_MAX_BLOCK = 2**31 - 1  # pyarrow's block size is a 32-bit int


def unique_names(raw: Sequence[str]) -> list[str]:
    """Column names: whitespace-normalised, empty -> col_N, repeats -> name_2, name_3..."""
    names: list[str] = []
    seen: set[str] = set()
    for position, text in enumerate(raw, start=1):
        base = " ".join(text.split()) or f"col_{position}"
        name, suffix = base, 2
        while name in seen:
            name, suffix = f"{base}_{suffix}", suffix + 1
        seen.add(name)
        names.append(name)
    return names


def number_text_value(text: str) -> float | None:
    """The value of a number written as text ("1,234", "12*"), or None when it is not one."""
    text = text.strip()
    if not NUMBER_RE.match(text):
        return None
    return float(text.replace(",", "").rstrip("*"))


def numbers_to_array(values: Sequence[float | None]) -> pa.Array:
    """int64 when every value is whole and fits, float64 otherwise."""
    array = pa.array(values, pa.float64())
    try:
        return array.cast(pa.int64())  # a safe cast: refuses fractions and out-of-range values
    except pa.ArrowInvalid:
        return array


def _all_match(values: pa.Array, pattern: str) -> bool:
    return bool(pc.all(pc.match_substring_regex(values, pattern)).as_py())


def infer_text_column(column: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Apply the module's typing rules to a column read as text."""
    column = pc.utf8_trim_whitespace(column)
    column = pc.if_else(pc.equal(column, ""), pa.scalar(None, pa.string()), column)
    present = column.drop_null()
    if len(present) == 0:
        return column
    if _all_match(present, NUMBER_PATTERN):
        clean = pc.replace_substring_regex(column, r"[,*]", "")
        if _all_match(clean.drop_null(), _INT_PATTERN):
            try:
                return pc.cast(clean, pa.int64())
            except pa.ArrowInvalid:  # beyond int64: keep the value as a float
                pass
        return pc.cast(clean, pa.float64())
    for pattern, target in ((_DATE_PATTERN, pa.date32()), (_DATETIME_PATTERN, pa.timestamp("us"))):
        if _all_match(present, pattern):
            try:
                return pc.cast(column, target)
            except pa.ArrowInvalid:  # 2025-02-30 and the like: keep the text
                return column
    lowered = pc.utf8_lower(present)
    if bool(pc.all(pc.is_in(lowered, pa.array(["true", "false"]))).as_py()):
        return pc.equal(pc.utf8_lower(column), "true")
    return column


def _decode(path: Path, raw: bytes, encoding: str | None, *, final: bool = True
            ) -> tuple[str, str]:
    """The text of a CSV and the encoding used; a bad byte is a one-line IngestError.
    `final=False`: RAW is a prefix, a character cut at its end is left out."""
    if encoding is None:
        if raw.startswith(b"\xef\xbb\xbf"):
            encoding = "utf-8-sig"
        elif raw.startswith((b"\xff\xfe", b"\xfe\xff")):
            encoding = "utf-16"
    used = encoding or "utf-8"
    try:
        if not final:
            return codecs.getincrementaldecoder(used)().decode(raw, final=False), used
        return raw.decode(used), used
    except LookupError:
        raise IngestError(f"{path.name}: unknown encoding {encoding!r}") from None
    except UnicodeDecodeError as exc:
        bad = raw[exc.start]
        if encoding is None:
            raise IngestError(
                f"{path.name}: not valid UTF-8 (byte 0x{bad:02x} at offset {exc.start}); "
                "pass --encoding"
            ) from None
        raise IngestError(
            f"{path.name}: not valid {encoding} (byte 0x{bad:02x} at offset {exc.start})"
        ) from None


def _sniff_delimiter(path: Path, text: str) -> str:
    if path.suffix.lower() in (".tsv", ".tab"):
        return "\t"
    try:
        return csv.Sniffer().sniff(text[:_SNIFF_BYTES], delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


@contextmanager
def _csv_errors(name: str, reader_line: Callable[[], int], size: int) -> Iterator[None]:
    """Let the stdlib csv module take fields as long as the file, and turn its errors into
    one-line IngestErrors naming the line (its default 128 KiB field limit is a guard for
    streams; here the whole text is already in memory)."""
    limit = csv.field_size_limit()
    csv.field_size_limit(max(limit, min(size + 1, sys.maxsize)))
    try:
        yield
    except csv.Error as exc:
        raise IngestError(f"{name}: cannot parse as CSV: line {reader_line()}: {exc}") from None
    finally:
        csv.field_size_limit(limit)


def _reader(text: str, delimiter: str) -> Any:
    """A csv.reader that sees line breaks as Excel and pyarrow do: \\n, \\r\\n and a lone \\r."""
    return csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)


def _line_count(text: str) -> int:
    """Physical lines: \\n, \\r\\n and a lone \\r each end one; a last unterminated line counts."""
    breaks = text.count("\n") + text.count("\r") - text.count("\r\n")
    return breaks + (0 if text.endswith(("\n", "\r")) else 1)


def _read_header(name: str, text: str, delimiter: str) -> tuple[list[str], int]:
    """The header record and the line it ends on; blank lines before it are skipped, as
    pyarrow skips them."""
    reader = _reader(text, delimiter)
    with _csv_errors(name, lambda: reader.line_num, len(text)):
        for record in reader:
            if record:
                return record, reader.line_num
    return [], reader.line_num


def _record_lines(
    name: str, text: str, delimiter: str, header_lines: int, rows: int
) -> list[int]:
    """1-based line where each data record starts; exact even with quoted line breaks."""
    if _line_count(text) == header_lines + rows:
        return list(range(header_lines + 1, header_lines + rows + 1))
    reader = _reader(text, delimiter)
    lines: list[int] = []
    end = 0
    header_seen = False
    with _csv_errors(name, lambda: reader.line_num, len(text)):
        for record in reader:
            start, end = end + 1, reader.line_num
            if record and header_seen:
                lines.append(start)
            header_seen = header_seen or bool(record)
    if len(lines) != rows:  # the two parsers disagree: no provenance is better than wrong
        raise IngestError(
            f"{name}: cannot parse as CSV: found {len(lines)} records where pyarrow read {rows}"
        )
    return lines


def _ragged_line(name: str, text: str, delimiter: str) -> tuple[int, int, int] | None:
    """(line, expected, actual) of the first record whose field count differs from the header."""
    reader = _reader(text, delimiter)
    expected = None
    with _csv_errors(name, lambda: reader.line_num, len(text)):
        for record in reader:
            if not record:
                continue
            if expected is None:
                expected = len(record)
            elif len(record) != expected:
                return reader.line_num, expected, len(record)
    return None


def _arrow_csv(data: bytes, delimiter: str, header: list[str]) -> pa.Table:
    """pyarrow's CSV reader with every column as text. A record longer than a block (one
    huge cell: "straddling object", or "cannot infer number of columns" for a header) fails,
    so a failed read of a multi-block file is retried with one block for the whole file."""
    options = {
        "parse_options": pacsv.ParseOptions(delimiter=delimiter),
        "convert_options": pacsv.ConvertOptions(
            column_types=dict.fromkeys(header, pa.string()),
            strings_can_be_null=False,
            null_values=[],
        ),
    }
    try:
        return pacsv.read_csv(pa.py_buffer(data), **options)
    except pa.ArrowInvalid:
        if len(data) < _BLOCK:  # one block already: a real parse error
            raise
    block = min(len(data) + 1, _MAX_BLOCK)
    return pacsv.read_csv(
        pa.py_buffer(data), read_options=pacsv.ReadOptions(block_size=block), **options
    )


def _bounded_header(path: Path, delimiter: str | None, encoding: str | None,
                    bounds: IngestBounds) -> str:
    """The delimiter, and the header checked against the bounds, from a prefix of the file:
    a 100 MB header or 100,000 columns are refused before the file is read whole."""
    limit = int(bounds.value("ingest.max_header_bytes"))
    want = max(limit, _PREFIX) + 1
    with path.open("rb") as handle:
        head = handle.read(want)
    whole = len(head) < want
    text, used = _decode(path, head, encoding, final=whole)
    text = text.removeprefix("\ufeff")
    delimiter = {"\\t": "\t", "tab": "\t"}.get(delimiter or "", delimiter)
    delimiter = delimiter or _sniff_delimiter(path, text)
    if len(delimiter) != 1:
        raise IngestError(f"{path.name}: delimiter must be one character, got {delimiter!r}")
    stream = io.StringIO(text, newline="")
    reader = csv.reader(stream, delimiter=delimiter)
    header: list[str] = []
    with _csv_errors(path.name, lambda: reader.line_num, len(text)):
        header = next((record for record in reader if record), [])
    end = stream.tell()
    if not whole and end >= len(text):
        bounds.refuse(path.name, "ingest.max_header_bytes", None,
                      f"its first record does not end within the first "
                      f"{human(len(head) - 1, 'bytes')}")
    bounds.check(path.name, "ingest.max_header_bytes", len(text[:end].encode(used, "replace")))
    bounds.check(path.name, "ingest.max_columns", len(header))
    check_names(path.name, header, bounds)
    return delimiter


def check_names(subject: str, names: Sequence[str], bounds: IngestBounds) -> None:
    """Each column name (as `unique_names` makes it) within the bound: a name is kept in
    the record, the Parquet footer and every diff."""
    limit = bounds.value("ingest.max_column_name_chars")
    for position, text in enumerate(names):
        if len(text) > limit and len(" ".join(text.split())) > limit:
            bounds.check(f"{subject}: column {column_letter(position)}",
                         "ingest.max_column_name_chars", len(" ".join(text.split())))


def read_csv(
    path: Path, *, delimiter: str | None = None, encoding: str | None = None,
    bounds: IngestBounds = DEFAULT,
) -> Publication:
    """Read a CSV/TSV file as one table named `data` (delimiter and encoding sniffed)."""
    delimiter = _bounded_header(path, delimiter, encoding, bounds)
    raw = path.read_bytes()
    text, used = _decode(path, raw, encoding)
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise IngestError(f"{path.name}: no data (the file holds only whitespace)")
    header, header_lines = _read_header(path.name, text, delimiter)
    lines = _line_count(text) - header_lines  # data rows are at most these: checked first
    counted = "counted as lines after the header, before parsing"
    bounds.check(path.name, "ingest.max_rows", lines, counted)
    bounds.check(path.name, "ingest.max_cells", lines * len(header), counted)
    data = raw if used == "utf-8" and not raw.startswith(b"\xef\xbb\xbf") else text.encode()
    try:
        table = _arrow_csv(data, delimiter, header)
    except pa.ArrowInvalid as exc:
        ragged = _ragged_line(path.name, text, delimiter)
        if ragged:
            line, expected, actual = ragged
            raise IngestError(
                f"{path.name}: ragged row at line {line}: expected {expected} fields, got {actual}"
            ) from None
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise IngestError(f"{path.name}: cannot parse as CSV: {first}") from None
    names = unique_names(table.column_names)
    columns = [
        infer_text_column(col if col.type == pa.string() else pc.cast(col, pa.string()))
        for col in table.columns
    ]
    data_table = pa.table(columns, names=names)
    extracted = ExtractedTable(
        name=TABLE_NAME,
        data=data_table,
        source_rows=_record_lines(
            path.name, text, delimiter, header_lines, data_table.num_rows
        ),
        source_columns={name: column_letter(i) for i, name in enumerate(names)},
    )
    return Publication(
        format="tsv" if delimiter == "\t" else "csv",
        tables=[extracted],
        reader=f"pyarrow {pa.__version__}",
    )


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _json_column(path: Path, name: str, values: list[Any]) -> pa.Array:
    """Typed Arrow array for one JSON column; mixed kinds are not tabular."""
    kinds = {type(v) for v in values if v is not None}
    if not kinds:
        return pa.array(values, pa.string())
    if kinds == {str}:
        stripped = [None if v is None else v.strip() or None for v in values]
        return pa.array(stripped, pa.string())
    if kinds == {bool}:
        return pa.array(values, pa.bool_())
    if kinds == {int}:
        if all(v is None or abs(v) < _INT64_LIMIT for v in values):
            return pa.array(values, pa.int64())
        raise IngestError(f"{path.name}: column {name!r} holds an integer beyond 64 bits")
    if kinds <= {int, float}:
        return pa.array([None if v is None else float(v) for v in values], pa.float64())
    found = ", ".join(sorted(k.__name__ for k in kinds))
    raise IngestError(f"{path.name}: not tabular: column {name!r} mixes types ({found})")


def _json_rows(path: Path, obj: Any, bounds: IngestBounds = DEFAULT
               ) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of a records list or a {"columns", "data"} object; its size checked
    against the bounds before the rows are built (rows x columns values)."""
    if isinstance(obj, dict):
        if "columns" in obj and "data" in obj:
            columns, data = obj["columns"], obj["data"]
            if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
                raise IngestError(f"{path.name}: not tabular: 'columns' must be a list of names")
            if not isinstance(data, list) or not all(isinstance(r, list) for r in data):
                raise IngestError(f"{path.name}: not tabular: 'data' must be a list of rows")
            _check_shape(path, len(data), len(columns), bounds)
            for number, row in enumerate(data, start=1):
                if len(row) != len(columns):
                    raise IngestError(
                        f"{path.name}: row {number} has {len(row)} values for "
                        f"{len(columns)} columns"
                    )
            return columns, data
        if isinstance(obj.get("data"), list):
            return _json_rows(path, obj["data"], bounds)
        raise IngestError(
            f"{path.name}: not tabular: expected a list of records or "
            '{"columns": [...], "data": [[...]]}; keys found: '
            + ", ".join(repr(k) for k in list(obj)[:20])
        )
    if not isinstance(obj, list):
        raise IngestError(f"{path.name}: not tabular: the JSON document is a single value")
    if not obj:
        raise IngestError(f"{path.name}: not tabular: the JSON list is empty")
    if not all(isinstance(r, dict) for r in obj):
        raise IngestError(
            f"{path.name}: not tabular: expected a list of records (objects), "
            'a list of lists needs {"columns": [...], "data": [...]}'
        )
    columns = list(dict.fromkeys(key for record in obj for key in record))
    _check_shape(path, len(obj), len(columns), bounds)
    return columns, [[record.get(key) for key in columns] for record in obj]


def _check_shape(path: Path, rows: int, columns: int, bounds: IngestBounds) -> None:
    bounds.check(path.name, "ingest.max_columns", columns)
    bounds.check(path.name, "ingest.max_rows", rows)
    bounds.check(path.name, "ingest.max_cells", rows * columns)


def record_lists(obj: Any, prefix: str = "", depth: int = 0) -> list[str]:
    """Dotted paths of every non-empty list of records (objects) inside wrapper objects."""
    out: list[str] = []
    if not isinstance(obj, dict) or depth > 8:
        return out
    for key, value in obj.items():
        where = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            out.append(where)
        elif isinstance(value, dict):
            out += record_lists(value, where, depth + 1)
    return out


def _at_path(path: Path, obj: Any, json_path: str) -> Any:
    here = obj
    for part in json_path.split("."):
        if not isinstance(here, dict) or part not in here:
            found = record_lists(obj)
            raise IngestError(
                f"{path.name}: --json-path {json_path!r}: no {part!r} there; lists of "
                f"records found: {', '.join(found) or 'none'}")
        here = here[part]
    return here


def _unwrap(path: Path, obj: Any, json_path: str | None) -> tuple[Any, str | None]:
    """The list of records a document holds: at `json_path`, or the one list inside
    wrapper objects (`{"metadata": {...}, "facilities": [...]}`), with its path."""
    if json_path:
        return _at_path(path, obj, json_path), json_path
    if not isinstance(obj, dict) or ("columns" in obj and "data" in obj) or isinstance(
            obj.get("data"), list):
        return obj, None
    found = record_lists(obj)
    if len(found) == 1:
        return _at_path(path, obj, found[0]), found[0]
    if len(found) > 1:
        raise IngestError(f"{path.name}: several lists of records ({', '.join(found[:10])}); "
                          "pick one with --json-path")
    return obj, None


def read_json(path: Path, json_path: str | None = None, bounds: IngestBounds = DEFAULT
              ) -> Publication:
    """Read a JSON list of records or a {"columns", "data"} object as one table `data`;
    records inside wrapper objects are found (or picked with `json_path`)."""
    bounds.check(path.name, "ingest.max_json_bytes", path.stat().st_size)
    raw = path.read_bytes()
    try:
        obj = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise IngestError(
            f"{path.name}: not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})"
        ) from None
    except json.JSONDecodeError as exc:
        raise IngestError(
            f"{path.name}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    except RecursionError:
        raise IngestError(f"{path.name}: not tabular: JSON nested too deeply") from None
    except ValueError as exc:  # an integer past Python's conversion limit (4,300 digits)
        first = (str(exc).split(";")[0] or type(exc).__name__).splitlines()[0]
        raise IngestError(f"{path.name}: a JSON number cannot be read: {first}") from None
    obj, found_at = _unwrap(path, obj, json_path)
    columns, rows = _json_rows(path, obj, bounds)
    if not columns:  # `[{}]`: rows without any column are no table at all
        raise IngestError(f"{path.name}: not tabular: the records have no fields")
    for number, row in enumerate(rows, start=1):
        for key, value in zip(columns, row, strict=True):
            if not _is_scalar(value):
                raise IngestError(
                    f"{path.name}: not tabular: record {number} field {key!r} is nested "
                    f"({type(value).__name__})"
                )
    names = unique_names(columns)
    arrays = [_json_column(path, name, [row[i] for row in rows]) for i, name in enumerate(names)]
    extracted = ExtractedTable(
        name=TABLE_NAME,
        data=pa.table(arrays, names=names),
        source_rows=list(range(1, len(rows) + 1)),
    )
    notes = [f"records read from the JSON path {found_at!r}"] if found_at else []
    return Publication(format="json", tables=[extracted], reader="json", notes=notes,
                       json_path=found_at)


def _schema_elements(head: bytes) -> int | None:
    """How many schema elements (the root, groups and columns) a Parquet footer declares,
    from its first bytes: thrift compact, field 1 the version (i32), field 2 the schema
    (a list of structs). None when the footer starts otherwise (pyarrow then judges)."""
    at = 0

    def varint() -> int:
        nonlocal at
        result = shift = 0
        while at < len(head) and shift < 64:
            byte = head[at]
            at += 1
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return result
            shift += 7
        raise IndexError("truncated varint")

    try:
        if head[:1] != b"\x15":  # field 1, i32
            return None
        at = 1
        varint()
        if head[at] != 0x19 or head[at + 1] & 0x0F != 0x0C:  # field 2, a list of structs
            return None
        size = head[at + 1] >> 4
        at += 2
        return varint() if size == 15 else size
    except IndexError:
        return None


def _check_footer(path: Path, bounds: IngestBounds) -> None:
    """What a Parquet file declares in its footer (rows, columns, names, uncompressed row
    groups), against the bounds, before any data page is decoded; the footer's size and
    its column count (from its first bytes) before pyarrow parses it: pyarrow aborts the
    process (std::bad_alloc) on a 14 MB footer of 100,000 columns under 1.5 GiB."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        handle.seek(max(size - 8, 0))
        tail = handle.read(8)
        footer = int.from_bytes(tail[:4], "little") if len(tail) == 8 else 0
        if tail.endswith(b"PAR1") and 0 < footer <= size - 12:  # else pyarrow says why
            bounds.check(path.name, "ingest.max_parquet_footer_bytes", footer)
            handle.seek(size - 8 - footer)
            elements = _schema_elements(handle.read(32))
            if elements is not None:
                bounds.check(path.name, "ingest.max_columns", elements - 1,
                             "counted as schema elements in the footer")
    meta = pq.read_metadata(path)
    names = meta.schema.to_arrow_schema().names
    columns = max(meta.num_columns, len(names))  # leaf columns: nested fields count each
    bounds.check(path.name, "ingest.max_columns", columns)
    check_names(path.name, names, bounds)
    rows = uncompressed = 0
    for index in range(meta.num_row_groups):  # the groups decide what the reader allocates
        group = meta.row_group(index)
        rows += max(group.num_rows, 0)
        uncompressed += max(group.total_byte_size, 0)
    rows = max(rows, meta.num_rows)
    bounds.check(path.name, "ingest.max_rows", rows)
    bounds.check(path.name, "ingest.max_cells", rows * columns)
    bounds.check(path.name, "ingest.max_parquet_uncompressed_bytes", uncompressed)


def read_parquet(path: Path, bounds: IngestBounds = DEFAULT) -> Publication:
    """Read a Parquet file as one table `data`, unchanged (its footer checked first)."""
    try:
        _check_footer(path, bounds)
        table = pq.read_table(path)
        table.validate(full=True)  # damaged bytes can still decode: bad UTF-8, offsets
        table.schema.names  # noqa: B018 - raises on a column name that is not UTF-8
    except (pa.ArrowException, OSError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise IngestError(f"{path.name}: corrupt or unreadable Parquet file: {first}") from None
    except UnicodeDecodeError:
        raise IngestError(f"{path.name}: corrupt Parquet file: a column name is not "
                          "valid UTF-8") from None
    return Publication(
        format="parquet",
        tables=[ExtractedTable(name=TABLE_NAME, data=table)],
        reader=f"pyarrow {pa.__version__}",
    )
