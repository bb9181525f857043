"""Workbook reader (XLSX/XLSM/XLSB, XLS, ODS via python-calamine): every sheet split into tables.

Agencies lay out several small titled tables per sheet. The layout rules, in order:

1. Blocks. Non-blank cells (whitespace-only text counts as blank) form connected regions:
   cells touching vertically or horizontally, merged ranges counting as filled when their
   top-left cell holds a value. Regions whose bounding boxes overlap are one block. So tables
   side by side are split by an empty column, tables one under another by an empty row.
2. Inside a block, read top-down: leading rows holding a single text cell at the block's left
   edge are title lines; the nearest one that is not a note is the title, the others are
   notes. A block with no title adopts a lone title-like text line up to 3 empty rows above
   it ("Detainees" over a table).
3. The body starts at the first row with a number whose next row also has a number (or is a
   single-label section row, or is the last row). The rows between title and body are the
   header rows, except a row holding only a label in the first column right above the body,
   which is a section label and stays a data row. Header cells that read as notes ("Data
   Source: ...", sentences longer than 150 characters) move to the notes.
4. Trailing rows holding a single text cell are notes ("Data from ...", "*Only ..."). Lone
   text lines below a table (up to 2 empty rows down) are its notes too; other loose text
   lines are the publication's notes. Text is a note when it starts with "*", mentions "data
   from"/"data source" near its start, ends with a full stop, or is longer than 150 characters.
5. A block without numbers but with 2+ columns (a glossary: "Term" | "Definition") is a text
   table; its first row is the header when every cell in it is short text.
6. Column names: header rows joined with " / " (a merged label fills its range and, in upper
   header rows, an unmerged label fills the empty cells to its right: "2023 / January /
   mid"); numbers written as integers, dates as ISO; then the rules of
   `tabular.unique_names`. Columns without any own cell (the right part of a merged label)
   are dropped. In data rows a vertically merged label is repeated on every row it spans.
7. Names: ``<sheet>__<title>``, each part slugged (``[a-z0-9_]``) after removing the dates and
   period words that change every release (see `dates.strip_period_words`), so
   "FY25 thru August Court Appearance: Total Hearings*" on sheet "ATD FY25 YTD" is
   ``atd__court_appearance_total_hearings``. A title that is only a period ("August 2025")
   is named by the period (``monthly_segregation__2025_08``); same names within a sheet are
   told apart by period when their titles name distinct periods, else by ``_2``, ``_3``.

Types: cells keep Excel's types. A column is int64 when every value is a whole number (Excel
stores 23616 as 23616.0), float64 when some are fractions, bool, date32 (all dates),
timestamp[us] (dates and date-times), time64/duration when all are times/durations; numbers
written as text follow `tabular` ("1,234", "12*"); anything mixed is text, numbers written
as "23616" and dates as ISO. An all-empty column is text. Text has surrounding whitespace
stripped ("ICE  " -> "ICE"); the lossless `cells` layer keeps every original string as is.

Limits (`atdarchive.limits.ingest`): the zip's members may unpack to at most
``ingest.max_zip_uncompressed_bytes``. calamine builds each sheet as a dense grid from A1 to
its last cell with content, so (XLSX/XLSM) a sheet whose grid would pass
``ingest.max_sheet_cells`` (20 million), or whose width passes ``ingest.max_columns``, is
refused before calamine sees it, its extent read from the worksheet XML (`sheet_extent`);
other workbook formats are checked on the grid calamine returns, before the layout
analysis. Merged ranges may cover at most ``ingest.max_merged_cells`` cells inside the grid.

The `cells` layer keeps every non-empty cell: `text` is the original string of a text cell
(whitespace included), the shortest round-trip decimal of a number (pyarrow's cast: 23616,
0.25, 1e+20), ISO for dates and times, true/false for booleans; `number` is the float value
of numeric cells. `number_format` is null: python-calamine 0.9 exposes neither number formats
nor error values (error cells such as #DIV/0! read as empty, so they are absent).
"""

from __future__ import annotations

import io
import posixpath
import re
import zipfile
import zlib
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pyarrow as pa
import pyarrow.compute as pc
import python_calamine

from atdarchive.errors import IngestError
from atdarchive.ingest.dates import (
    find_stated_dates,
    is_period_only,
    period_key,
    strip_period_words,
)
from atdarchive.ingest.model import (
    ExtractedTable,
    Publication,
    StatedDate,
    cell_address,
    column_letter,
)
from atdarchive.ingest.tabular import number_text_value, numbers_to_array, unique_names
from atdarchive.limits.ingest import DEFAULT, IngestBounds

MAX_RATIO = 200
RATIO_FLOOR = 100 << 20  # the ratio matters only past 100 MB uncompressed
TITLE_GAP = 3  # empty rows allowed between a lone title line and its table
NOTE_GAP = 2  # empty rows allowed between a table and a lone note under it
LONG_TEXT = 150
SHORT_HEADER = 40
SLUG_MAX = 100
# calamine loads a sheet as a dense grid from A1 to its last used cell (Python lists on our
# side: ~50 bytes a cell), so one cell at XFD1048576 asks for 17 billion cells and aborts the
# process. ingest.max_sheet_cells, 20 million cells (e.g. 1 million rows x 20 columns), costs
# ~1 GB and ~4 s; ingest.max_merged_cells bounds the `cover` dict (one entry a cell).
# A cell with content (`<c r="B12" ...>...</c>`), matched in the reversed XML from its rare
# closing tag back to its start tag: calamine drops cells without content (`<c r="XFD9"
# s="3"/>`, which Excel writes for formatting), so only these extend the grid, and scanning
# back from `</c>` skips the formatting-only cells cheaply. The start tag's attributes are
# parsed quote-aware; captures the reversed row digits and column letters of its one `r`
# (empty without one). A cell nested in a cell, a duplicate `r` or a prefixed `</x:c>` make
# the count of matches differ from the count of `</c>`.
_ATTR_REV = rb'(?:\s*"[^"<]*"\s*=\s*(?!r\s)[^\s="<>/]+)'
_VALUED_REV_RE = re.compile(
    rb">c/<.*?>" + _ATTR_REV + rb'*?(?:\s*"([0-9]+)([A-Za-z]*)"\s*=\s*r(?=\s))?'
    + _ATTR_REV + rb"*\s*c<",
    re.S,
)
_REL_NS = "{http://schemas.openxmlformats.org/package/2006/relationships}"

_NOTE_START = re.compile(r"^\W*\*|^.{0,40}\bdata\s+(?:from|source)\b", re.I | re.S)
_RANGE_RE = re.compile(r"^\s*([A-Za-z]{1,3})(\d+)\s*:\s*([A-Za-z]{1,3})(\d+)\s*$")

Cell = Any  # what calamine returns: str, float, int, bool, date, datetime, time, timedelta
Row = tuple[int, list[tuple[int, Cell]], bool]  # sheet row, its non-blank cells, lone text?


@dataclass(frozen=True)
class Block:
    """A rectangle of a sheet, 0-based inclusive rows r0..r1 and columns c0..c1."""

    r0: int
    r1: int
    c0: int
    c1: int

    def overlaps(self, other: Block) -> bool:
        return (
            self.r0 <= other.r1
            and other.r0 <= self.r1
            and self.c0 <= other.c1
            and other.c0 <= self.c1
        )

    def union(self, other: Block) -> Block:
        return Block(
            min(self.r0, other.r0),
            max(self.r1, other.r1),
            min(self.c0, other.c0),
            max(self.c1, other.c1),
        )


@dataclass
class Line:
    """A lone text cell: a title or a note, with its position for stated dates."""

    text: str
    row: int
    col: int


@dataclass
class Sheet:
    """One sheet's values at absolute 0-based positions, and its merged ranges."""

    name: str
    rows: list[list[Cell]]
    # covered cell -> top-left cell of its merged range (only ranges whose top-left holds a value)
    cover: dict[tuple[int, int], tuple[int, int]] = field(default_factory=dict)
    # per row, the columns of its non-blank cells, ascending (computed once, used everywhere)
    filled: list[list[int]] = field(init=False)

    def __post_init__(self) -> None:
        self.filled = [
            [c for c, v in enumerate(row) if v != "" and (type(v) is not str or not v.isspace())]
            for row in self.rows
        ]

    def value(self, r: int, c: int) -> Cell | None:
        """The cell's own value, None when blank (empty or whitespace-only text)."""
        if r >= len(self.rows) or c >= len(self.rows[r]):
            return None
        v = self.rows[r][c]
        return None if _blank(v) else v

    def occupied(self, r: int, c: int, *, vertical_only: bool = False) -> bool:
        """Own value, or covered by a merged range (from another row when `vertical_only`)."""
        if self.value(r, c) is not None:
            return True
        top = self.cover.get((r, c))
        return top is not None and (not vertical_only or top[0] != r)


@dataclass
class Draft:
    """A table found in a sheet, before it gets its name."""

    block: Block
    sheet: str
    title: Line | None
    notes: list[Line]
    columns: list[str]
    letters: list[str]
    data: list[pa.Array]
    source_rows: list[int]
    first_row: int
    last_row: int
    text_only: bool
    body_text: list[Line]
    name: str = ""
    key: list[str] | None = None

    @property
    def cell_range(self) -> str:
        return f"{self.letters[0]}{self.first_row + 1}:{self.letters[-1]}{self.last_row + 1}"


def _blank(v: Cell) -> bool:
    return v == "" or v is None or (type(v) is str and v.isspace())


def _is_number(v: Cell) -> bool:
    return isinstance(v, int | float)


def _text(v: Cell) -> str:
    """A value as text: whole floats without ".0", dates ISO, booleans lowercase."""
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() else repr(v)
    if isinstance(v, date | time):
        return v.isoformat()
    return str(v)


def is_note(text: str) -> bool:
    """Footnote/source text rather than a title or label (see rule 4)."""
    text = text.strip()
    return bool(
        _NOTE_START.search(text)
        or (text.endswith(".") and len(text) > SHORT_HEADER)
        or len(text) > LONG_TEXT
    )


def slug(text: str) -> str:
    """Lowercase `[a-z0-9_]` identifier; never holds `/` or `..`, may be empty."""
    out = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    if len(out) > SLUG_MAX:
        out = out[:SLUG_MAX].rsplit("_", 1)[0]
    return out


# --------------------------------------------------------------------------- blocks


def _runs(cols: Sequence[int]) -> list[tuple[int, int]]:
    """Sorted columns -> maximal runs of adjacent columns."""
    runs: list[tuple[int, int]] = []
    for c in cols:
        if runs and c == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], c)
        else:
            runs.append((c, c))
    return runs


def find_blocks(sheet: Sheet) -> list[Block]:
    """Connected regions of non-blank cells (rule 1), in reading order."""
    covered_by_row: dict[int, set[int]] = {}
    for r, c in sheet.cover:
        covered_by_row.setdefault(r, set()).add(c)
    parent: list[int] = []
    boxes: list[Block] = []

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    previous: list[tuple[int, int, int]] = []  # (start, end, run id) of the row above
    for r in range(len(sheet.rows)):
        cols = set(sheet.filled[r]) | covered_by_row.get(r, set())
        current: list[tuple[int, int, int]] = []
        for a, b in _runs(sorted(cols)):
            parent.append(len(parent))
            boxes.append(Block(r, r, a, b))
            current.append((a, b, len(parent) - 1))
        i = j = 0
        while i < len(previous) and j < len(current):
            pa_, pb, pid = previous[i]
            ca, cb, cid = current[j]
            if pa_ <= cb and ca <= pb:
                parent[find(cid)] = find(pid)
            if pb < cb:
                i += 1
            else:
                j += 1
        previous = current
    merged: dict[int, Block] = {}
    for i, box in enumerate(boxes):
        root = find(i)
        merged[root] = merged[root].union(box) if root in merged else box
    return _merge_overlapping(list(merged.values()))


def _merge_overlapping(blocks: list[Block]) -> list[Block]:
    """Join blocks whose bounding boxes overlap until none do."""
    changed = True
    while changed:
        changed = False
        blocks.sort(key=lambda b: (b.r0, b.c0))
        done: list[Block] = []
        active: list[Block] = []  # blocks still reaching down to the current row
        for block in blocks:
            done += [b for b in active if b.r1 < block.r0]
            active = [b for b in active if b.r1 >= block.r0]
            for k, other in enumerate(active):
                if other.overlaps(block):
                    active[k] = other.union(block)
                    changed = True
                    break
            else:
                active.append(block)
        blocks = done + active
    return sorted(blocks, key=lambda b: (b.r0, b.c0))


# --------------------------------------------------------------------------- one block


def _row_cells(sheet: Sheet, r: int, block: Block) -> list[tuple[int, Cell]]:
    filled, row = sheet.filled[r], sheet.rows[r]
    start, end = bisect_left(filled, block.c0), bisect_right(filled, block.c1)
    return [(c, row[c]) for c in filled[start:end]]


def _lone_text(sheet: Sheet, r: int, block: Block, cells: list[tuple[int, Cell]]) -> bool:
    """The row holds exactly one text cell and no cell merged down from above."""
    if len(cells) != 1 or not isinstance(cells[0][1], str):
        return False
    return not any(
        sheet.occupied(r, c, vertical_only=True)
        for c in range(block.c0, block.c1 + 1)
        if c != cells[0][0]
    )


def _has_number(cells: list[tuple[int, Cell]]) -> bool:
    return any(_is_number(v) for _, v in cells)


def _body_start(rows: list[Row]) -> int | None:
    """Index of the first data row (rule 3), None for a block without numbers."""
    for i, (_, cells, _) in enumerate(rows):
        if not _has_number(cells):
            continue
        if i + 1 == len(rows) or _has_number(rows[i + 1][1]) or rows[i + 1][2]:
            return i
    return None


def _header_names(sheet: Sheet, header: list[Row], cols: list[int]) -> list[str]:
    """Column names from the header rows (rule 6), before `unique_names`."""
    grid: list[list[str]] = []
    for depth, (r, cells, _) in enumerate(header):
        own = dict(cells)
        line: list[str] = []
        merged: list[bool] = []  # part of a merged range, whose extent is then already known
        for c in cols:
            v = own.get(c)
            if v is None and (r, c) in sheet.cover:
                v = sheet.value(*sheet.cover[(r, c)])
            line.append(" ".join(_text(v).split()) if v is not None else "")
            merged.append((r, c) in sheet.cover or sheet.cover.get((r, c + 1)) == (r, c))
        if depth < len(header) - 1:  # upper rows: an unmerged label spans empty cells rightwards
            for k in range(1, len(line)):
                if not line[k] and not merged[k - 1]:
                    line[k] = line[k - 1]
        grid.append(line)
    names: list[str] = []
    for k in range(len(cols)):
        parts: list[str] = []
        for line in grid:
            if line[k] and (not parts or parts[-1] != line[k]):
                parts.append(line[k])
        names.append(" / ".join(parts))
    return names


def _column_array(values: list[Cell | None]) -> pa.Array:
    """One tidy column from raw cell values (see the module's type rules)."""
    kinds = {type(v) for v in values if v is not None}
    if not kinds:
        return pa.array(values, pa.string())
    if kinds == {bool}:
        return pa.array(values, pa.bool_())
    if kinds == {int}:
        return pa.array(values, pa.int64())
    if kinds <= {int, float}:
        return numbers_to_array(values)
    if kinds <= {int, float, str}:
        numbers = [v if type(v) is not str else number_text_value(v) for v in values]
        if all(n is not None for v, n in zip(values, numbers, strict=True) if v is not None):
            return numbers_to_array(numbers)
    if kinds == {date}:
        return pa.array(values, pa.date32())
    if kinds <= {date, datetime}:
        stamps = [v if type(v) is not date else datetime(v.year, v.month, v.day) for v in values]
        return pa.array(stamps, pa.timestamp("us"))
    if kinds == {time}:
        return pa.array(values, pa.time64("us"))
    if kinds == {timedelta}:
        return pa.array(values, pa.duration("us"))
    return pa.array([None if v is None else _text(v).strip() or None for v in values], pa.string())


def _pick_title(lines: list[Line]) -> Line | None:
    """The title-like line nearest the table; a note whose first line is a short heading
    ("November 2024\n\nThis ... data represents ...") gives that heading."""
    for ln in reversed(lines):
        if not is_note(ln.text):
            return ln
        head = ln.text.split("\n", 1)[0].strip()
        if head != ln.text and head and not is_note(head):
            return Line(head, ln.row, ln.col)
    return None


def extract_block(sheet: Sheet, block: Block, header_rows: int | None = None) -> Draft | list[Line]:
    """The table in `block`, or its text lines when it holds no table."""
    rows = []
    for r in range(block.r0, block.r1 + 1):
        cells = _row_cells(sheet, r, block)
        if cells:
            rows.append((r, cells, _lone_text(sheet, r, block, cells)))
    if not rows:
        return []
    lines = [Line(v.strip(), r, c) for r, cells, _ in rows for c, v in cells if isinstance(v, str)]
    n_title = 0  # title lines start at the block's left edge; an indented one is a group label
    while n_title < len(rows) and rows[n_title][2] and rows[n_title][1][0][0] == block.c0:
        n_title += 1
    title_rows, rest = rows[:n_title], rows[n_title:]
    if not rest:
        return lines
    notes: list[Line] = []
    while len(rest) > 1 and rest[-1][2] and block.c1 > block.c0:
        r, cells, _ = rest.pop()
        notes.insert(0, Line(cells[0][1].strip(), r, cells[0][0]))
    start = header_rows if header_rows is not None else _body_start(rest)
    text_only = start is None
    if start is None:
        first = rest[0][1]
        short = len(first) > 1 and all(
            isinstance(v, str) and len(v.strip()) <= SHORT_HEADER for _, v in first
        )
        start = 1 if short and len(rest) > 1 else 0
        if len({c for _, cells, _ in rest for c, _ in cells}) < 2:
            return lines
    header, body = rest[:start], rest[start:]
    if not body:
        return lines
    header_notes = []
    if header_rows is None:
        kept = []
        for r, cells, lone in header:
            keep = [(c, v) for c, v in cells if not (isinstance(v, str) and is_note(v))]
            header_notes += [Line(v.strip(), r, c) for c, v in cells if (c, v) not in keep]
            if keep:
                kept.append((r, keep, lone))
        first_col = min(c for _, cells, _ in rest for c, _ in cells)
        while len(kept) > 1 and len(kept[-1][1]) == 1 and kept[-1][1][0][0] == first_col:
            body.insert(0, kept.pop())
        header = kept
    title_lines = [Line(cells[0][1].strip(), r, cells[0][0]) for r, cells, _ in title_rows]
    title = _pick_title(title_lines)
    notes = [ln for ln in title_lines if ln.text != (title and title.text)] + header_notes + notes

    used_rows = [r for r, _, _ in header] + [r for r, _, _ in body]
    cols = sorted({c for _, cells, _ in header + body for c, _ in cells})
    names = unique_names(_header_names(sheet, header, cols))
    position = {c: k for k, c in enumerate(cols)}
    index = {r: i for i, (r, _, _) in enumerate(body)}
    columns: list[list[Cell | None]] = [[None] * len(body) for _ in cols]
    for i, (_, cells, _) in enumerate(body):
        for c, v in cells:
            columns[position[c]][i] = v
    for (r, c), top in sheet.cover.items():  # a vertically merged label fills the rows it spans
        if r in index and c in position and top[1] == c:
            columns[position[c]][index[r]] = sheet.value(*top)
    data = [_column_array(values) for values in columns]
    body_text = []
    if text_only:
        body_text = [
            Line(v.strip(), r, c) for r, cells, _ in body for c, v in cells if isinstance(v, str)
        ]
    return Draft(
        block=block,
        sheet=sheet.name,
        title=title,
        notes=notes,
        columns=names,
        letters=[column_letter(c) for c in cols],
        data=data,
        source_rows=[r + 1 for r, _, _ in body],
        first_row=(title.row if title else used_rows[0]),
        last_row=body[-1][0],
        text_only=text_only,
        body_text=body_text,
    )


# --------------------------------------------------------------------------- one sheet


def _columns_meet(a: Block, b: Block) -> bool:
    return a.c0 <= b.c1 and b.c0 <= a.c1


def _place_loose_text(
    drafts: list[Draft], loose: list[tuple[Block, list[Line]]], sheet_notes: list[Line]
) -> None:
    """Lone text blocks become titles of the table below, notes of the one above, or
    publication notes (rules 2 and 4)."""
    for block, lines in loose:
        lines = [ln for ln in lines if re.search(r"\w", ln.text)]
        if not lines:
            continue
        last = lines[-1]
        below = [
            d
            for d in drafts
            if d.title is None
            and _columns_meet(block, d.block)
            and 0 <= d.block.r0 - block.r1 - 1 <= TITLE_GAP
        ]
        above = [
            d
            for d in drafts
            if _columns_meet(block, d.block) and 0 <= block.r0 - d.block.r1 - 1 <= NOTE_GAP
        ]
        if below and not is_note(last.text):
            target = min(below, key=lambda d: d.block.r0)
            target.title = last
            target.first_row = last.row
            target.notes[:0] = lines[:-1]
        elif above:
            max(above, key=lambda d: d.block.r1).notes.extend(lines)
        else:
            sheet_notes.extend(lines)


def _title_slug(title: str) -> str:
    if is_period_only(title):
        return period_key(title) or slug(title)
    return slug(strip_period_words(title))


def _name_drafts(drafts: list[Draft], sheet_slug: str, taken: set[str]) -> None:
    """Give each unnamed draft of one sheet its stable name (rule 7)."""
    groups: dict[str, list[Draft]] = {}
    for d in drafts:
        if not d.name:
            base = _title_slug(d.title.text) if d.title else ""
            groups.setdefault(base, []).append(d)
    for base, group in groups.items():
        stem = f"{sheet_slug}__{base}" if base else sheet_slug
        keys = [period_key(d.title.text) if d.title else None for d in group]
        by_period = (
            len(group) > 1
            and all(keys)
            and len(set(keys)) == len(keys)
            and not is_period_only(group[0].title.text if group[0].title else "")
        )
        for n, (d, key) in enumerate(zip(group, keys, strict=True), start=1):
            name = f"{stem}_{key}" if by_period else stem if n == 1 else f"{stem}_{n}"
            unique, k = name, 2
            while unique in taken:
                unique, k = f"{name}_{k}", k + 1
            d.name = unique
            taken.add(unique)


# --------------------------------------------------------------------------- spec


def _parse_range(text: str) -> Block:
    m = _RANGE_RE.match(text)
    if not m:
        raise ValueError(text)
    cols = [_letter_index(m[1]), _letter_index(m[3])]
    rows = [int(m[2]) - 1, int(m[4]) - 1]
    return Block(min(rows), max(rows), min(cols), max(cols))


def _letter_index(letters: str) -> int:
    n = 0
    for ch in letters.upper():
        n = n * 26 + ord(ch) - 64
    return n - 1


def _fold(text: str) -> str:
    return " ".join(text.split()).casefold()


def _apply_spec(
    path: Path, spec: dict[str, Any], sheets: dict[str, Sheet], drafts: dict[str, list[Draft]]
) -> None:
    """Override detection for the tables named in `spec["tables"]` (see `read_workbook`)."""
    tables = spec.get("tables", {})
    if not isinstance(tables, dict):
        raise IngestError(f"{path.name}: extraction spec: 'tables' must be a table of tables")
    for name, entry in tables.items():
        where = f"{path.name}: extraction spec table {name!r}"
        if slug(name) != name:
            raise IngestError(f"{where}: a table name must be lowercase [a-z0-9_]")
        if not isinstance(entry, dict) or not ("anchor" in entry or "range" in entry):
            raise IngestError(f"{where}: needs 'anchor' or 'range'")
        wanted = entry.get("sheet")
        names = [s for s in sheets if wanted is None or s.strip() == str(wanted).strip()]
        if not names:
            raise IngestError(f"{where}: no sheet {wanted!r}")
        header_rows = entry.get("header_rows")
        if header_rows is not None and (not isinstance(header_rows, int) or header_rows < 0):
            raise IngestError(f"{where}: header_rows must be a whole number >= 0")
        draft = _spec_draft(where, entry, names, sheets, drafts, header_rows)
        draft.name = name
        rename = entry.get("rename", {})
        missing = [old for old in rename if old not in draft.columns]
        if missing:
            raise IngestError(f"{where}: no column {missing[0]!r} to rename (has {draft.columns})")
        draft.columns = unique_names([rename.get(c, c) for c in draft.columns])
        key = entry.get("key")
        if key is not None:
            absent = [k for k in key if k not in draft.columns]
            if absent:
                raise IngestError(f"{where}: key column {absent[0]!r} not found")
            draft.key = list(key)


def _spec_draft(
    where: str,
    entry: dict[str, Any],
    sheet_names: list[str],
    sheets: dict[str, Sheet],
    drafts: dict[str, list[Draft]],
    header_rows: int | None,
) -> Draft:
    if "range" in entry:
        try:
            box = _parse_range(str(entry["range"]))
        except ValueError:
            raise IngestError(f"{where}: range {entry['range']!r} is not like A7:AB200") from None
        sheet = sheets[sheet_names[0]]
        box = Block(box.r0, min(box.r1, len(sheet.rows) - 1), box.c0, box.c1)
        found = extract_block(sheet, box, header_rows) if box.r0 <= box.r1 else []
        if not isinstance(found, Draft):
            raise IngestError(f"{where}: no table in {entry['range']}")
        drafts[sheet.name] = [d for d in drafts[sheet.name] if not d.block.overlaps(box)]
        drafts[sheet.name].append(found)
        return found
    anchor = _fold(str(entry["anchor"]))
    for sheet_name in sheet_names:
        for k, draft in enumerate(drafts[sheet_name]):
            if draft.name or not draft.title or anchor not in _fold(draft.title.text):
                continue
            if header_rows is not None:
                found = extract_block(sheets[sheet_name], draft.block, header_rows)
                if not isinstance(found, Draft):
                    raise IngestError(f"{where}: no table under {entry['anchor']!r}")
                found.title = found.title or draft.title
                found.first_row = min(found.first_row, draft.first_row)
                found.notes = draft.notes if not found.notes else found.notes
                drafts[sheet_name][k] = draft = found
            return draft
    raise IngestError(f"{where}: no table titled like {entry['anchor']!r}")


# --------------------------------------------------------------------------- workbook


def check_zip(path: Path, bounds: IngestBounds = DEFAULT) -> set[str]:
    """Member names of a zip workbook, refusing corrupt archives and zip bombs (from the
    sizes its central directory declares: nothing is unpacked)."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise IngestError(
            f"{path.name}: corrupt workbook: not a readable zip archive ({exc})"
        ) from None
    total = sum(info.file_size for info in infos)
    packed = sum(info.compress_size for info in infos) or 1
    if total > RATIO_FLOOR and total / packed > MAX_RATIO:
        raise IngestError(
            f"{path.name}: refused: unpacks to {total} bytes from {packed} "
            f"(ratio {total // packed}); looks like a zip bomb"
        )
    bounds.check(path.name, "ingest.max_zip_uncompressed_bytes", total)
    return {info.filename for info in infos}


def _sheet_parts(archive: zipfile.ZipFile) -> dict[str, str]:
    """Sheet name -> its worksheet part in the zip, through workbook.xml and its .rels."""
    try:
        book = ElementTree.fromstring(archive.read("xl/workbook.xml"))
        rels = ElementTree.fromstring(archive.read("xl/_rels/workbook.xml.rels"))
    except (KeyError, ElementTree.ParseError):
        return {}  # calamine reports the broken workbook
    targets = {
        rel.get("Id"): rel.get("Target", "")
        for rel in rels.iter(f"{_REL_NS}Relationship")
    }
    parts: dict[str, str] = {}
    for element in book.iter():
        if not element.tag.endswith("}sheet") or element.get("name") is None:
            continue
        rid = next((v for k, v in element.attrib.items() if k.endswith("}id")), None)
        target = targets.get(rid, "")
        if target:
            path = target.lstrip("/") if target.startswith("/") else f"xl/{target}"
            parts[element.get("name", "")] = posixpath.normpath(path)
    return parts


def _column_number(letters: bytes) -> int:
    n = 0
    for ch in letters.upper():
        n = n * 26 + ch - 64
    return n


def _parsed_extent(data: bytes) -> tuple[int, int]:
    """Rows and columns up to the last cell with content, by a real XML parse that places
    cells without `r` by order, as calamine does (for unusual sheets only: it is slow)."""
    rows = cols = row = col = 0
    at = (0, 0)
    for event, element in ElementTree.iterparse(io.BytesIO(data), events=("start", "end")):
        tag = element.tag.rsplit("}", 1)[-1]
        if event == "start" and tag == "row":
            r = element.get("r", "")
            row, col = (int(r) if r.isdigit() else row + 1), 0
        elif event == "start" and tag == "c":
            ref = re.fullmatch(r"([A-Za-z]*)([0-9]+)", element.get("r", ""))
            col = _column_number(ref[1].encode()) if ref else col + 1
            at = (int(ref[2]) if ref else row, col)
        elif event == "end" and tag in ("c", "row"):
            if tag == "c" and (len(element) or (element.text or "").strip()):
                rows, cols = max(rows, at[0]), max(cols, at[1])
            element.clear()
    return rows, cols


def _plain_xml(data: bytes) -> bool:
    """No markup (CDATA, comments, processing instructions) that could hide or fake a cell
    from `_VALUED_REV_RE`, and no single-quoted attribute values (it reads double quotes)."""
    start = data.find(b"?>") + 2 if data.lstrip(b"\xef\xbb\xbf").startswith(b"<?") else 0
    return not any(  # a scan for the rare byte first: fast
        data.find(needle[-1:], start) >= 0 and data.find(needle, start) >= 0
        for needle in (b"<!", b"<?", b"'")
    )


def sheet_extent(data: bytes) -> tuple[int, int]:
    """Rows and columns from A1 to the last cell calamine keeps (one with content), read
    from the worksheet XML without building the sheet. `<dimension>` is only a claim, and
    calamine ignores it."""
    refs = _VALUED_REV_RE.findall(data[::-1]) if _plain_xml(data) else []
    if len(refs) != data.count(b"</c>") or any(not digits for digits, _ in refs):
        try:
            return _parsed_extent(data)
        except ElementTree.ParseError as exc:
            raise ValueError(f"worksheet XML is not well-formed ({exc})") from None
    rows = max((int(d[::-1]) for d in {d for d, _ in refs}), default=0)
    cols = max((_column_number(a[::-1]) for a in {a for _, a in refs}), default=0)
    return rows, cols


def _check_grid(path: Path, name: str, rows: int, cols: int, bounds: IngestBounds) -> None:
    where = f"{path.name}: sheet {name!r} (A1:{column_letter(max(cols, 1) - 1)}{rows})"
    bounds.check(where, "ingest.max_sheet_cells", rows * cols)
    bounds.check(where, "ingest.max_columns", cols)


def _check_extents(path: Path, bounds: IngestBounds = DEFAULT) -> None:
    """Refuse a sheet whose dense grid would pass the bounds, before calamine allocates
    it (a far-away cell makes calamine abort the whole process). Each worksheet part is read
    whole: check_zip has bounded its size."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = set(archive.namelist())
            for name, part in _sheet_parts(archive).items():
                rows, cols = sheet_extent(archive.read(part)) if part in members else (0, 0)
                _check_grid(path, name, rows, cols, bounds)
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError,
            ValueError, zlib.error) as exc:  # a damaged member: calamine must not see it either
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise IngestError(f"{path.name}: corrupt or unreadable XLSX workbook: {first}") from None


def _load_sheet(book: python_calamine.CalamineWorkbook, name: str, path: Path,
                bounds: IngestBounds = DEFAULT) -> Sheet:
    raw = book.get_sheet_by_name(name)
    rows = raw.to_python(skip_empty_area=False)
    width = max(map(len, rows), default=0)
    _check_grid(path, name, len(rows), width, bounds)  # XLS, ODS, XLSB: not checked before
    sheet = Sheet(name=name, rows=rows)
    budget = bounds.value("ingest.max_merged_cells")
    for (r0, c0), (r1, c1) in raw.merged_cell_ranges or []:
        if sheet.value(r0, c0) is None:
            continue
        # cells past the sheet's last row and column hold nothing: no need to cover them
        r1, c1 = min(r1, len(rows) - 1), min(c1, width - 1)
        budget -= max(0, r1 - r0 + 1) * max(0, c1 - c0 + 1)
        if budget < 0:
            bounds.refuse(f"{path.name}: sheet {name!r}", "ingest.max_merged_cells")
        for r in range(r0, r1 + 1):
            for c in range(c0, c1 + 1):
                if (r, c) != (r0, c0):
                    sheet.cover[(r, c)] = (r0, c0)
    return sheet


_TYPE_NAMES = {
    str: "string",
    float: "float",
    int: "int",
    bool: "bool",
    datetime: "datetime",
    date: "date",
    time: "time",
    timedelta: "duration",
}


def _cells_table(sheets: list[Sheet]) -> pa.Table:
    """The lossless layer: every non-empty cell of every sheet, built column-wise."""
    names: list[str] = []
    rows: list[int] = []
    cols: list[int] = []
    values: list[Cell] = []
    for sheet in sheets:
        before = len(values)
        for r, row in enumerate(sheet.rows, start=1):
            for c, v in enumerate(row, start=1):
                if v != "":
                    rows.append(r)
                    cols.append(c)
                    values.append(v)
        names += [sheet.name] * (len(values) - before)
    letters = [column_letter(i) for i in range(max(cols, default=0))]
    kinds = list(map(type, values))
    pairs = list(zip(values, kinds, strict=True))
    numbers = pa.array([v if k is float or k is int else None for v, k in pairs], pa.float64())
    others = [v if k is str else None if k is float or k is int else _text(v) for v, k in pairs]
    return pa.table(
        {
            "sheet": pa.array(names, pa.string()),
            "address": pa.array(
                [f"{letters[c - 1]}{r}" for r, c in zip(rows, cols, strict=True)], pa.string()
            ),
            "row": pa.array(rows, pa.int32()),
            "column": pa.array(cols, pa.int32()),
            "text": pc.coalesce(pa.array(others, pa.string()), numbers.cast(pa.string())),
            "number": numbers,
            "type": pa.array(
                [_TYPE_NAMES.get(k, k.__name__) for k in kinds],
                pa.string(),
            ),
            "number_format": pa.nulls(len(values), pa.string()),
        }
    )


def _stated_dates(drafts: list[Draft], loose: dict[str, list[Line]]) -> list[StatedDate]:
    found: list[StatedDate] = []
    for d in drafts:
        if d.title:
            where = cell_address(d.sheet, column_letter(d.title.col), d.title.row + 1)
            found += find_stated_dates(d.title.text, where=where, table=d.name, is_title=True)
        for ln in d.notes:
            where = cell_address(d.sheet, column_letter(ln.col), ln.row + 1)
            found += find_stated_dates(ln.text, where=where, table=d.name)
        for ln in d.body_text:
            where = cell_address(d.sheet, column_letter(ln.col), ln.row + 1)
            found += find_stated_dates(ln.text, where=where)
    for sheet_name, lines in loose.items():
        for ln in lines:
            where = cell_address(sheet_name, column_letter(ln.col), ln.row + 1)
            found += find_stated_dates(ln.text, where=where)
    unique: dict[tuple[str, str, str | None], StatedDate] = {}
    for stated in found:
        unique.setdefault((stated.date, stated.kind, stated.where), stated)
    return list(unique.values())


def read_workbook(
    path: Path, spec: dict[str, Any] | None = None, *, fmt: str = "xlsx",
    bounds: IngestBounds = DEFAULT,
) -> Publication:
    """Read a workbook and split every sheet into named tables.

    `spec` (from the dataset's ``dataset.toml``) overrides detection per table:
    ``{"tables": {"book_ins": {"sheet": "Detention FY25", "anchor": "Initial Book-Ins",
    "header_rows": 1, "key": ["agency"], "rename": {"Agency": "agency"}}}}``. ``anchor``
    picks the first detected table whose title contains it (case and spacing ignored),
    ``range`` ("A7:AB200") reads exactly those cells as a table instead; ``header_rows``
    forces the header depth (title lines above still peel off), ``rename`` maps detected
    column names to new ones and ``key`` names the columns that identify a row.
    """
    if fmt in ("xlsx", "xlsm", "xlsb", "ods"):
        check_zip(path, bounds)
    if fmt in ("xlsx", "xlsm"):
        _check_extents(path, bounds)
    try:
        book = python_calamine.CalamineWorkbook.from_path(path)
        sheets = [_load_sheet(book, name, path, bounds) for name in book.sheet_names]
    except IngestError:
        raise
    except python_calamine.PasswordError:
        raise IngestError(f"{path.name}: password-protected or encrypted workbook") from None
    except Exception as exc:  # calamine raises assorted types on malformed files
        if fmt == "xls" and path.suffix.lower() in (".xlsx", ".xlsm"):
            raise IngestError(
                f"{path.name}: password-protected or encrypted workbook "
                "(an OLE2 container, not a zip, and not a readable XLS)"
            ) from None
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise IngestError(
            f"{path.name}: corrupt or unreadable {fmt.upper()} workbook: {first}"
        ) from None

    by_sheet: dict[str, list[Draft]] = {}
    loose_lines: dict[str, list[Line]] = {}
    for sheet in sheets:
        drafts: list[Draft] = []
        loose: list[tuple[Block, list[Line]]] = []
        for block in find_blocks(sheet):
            found = extract_block(sheet, block)
            if isinstance(found, Draft):
                drafts.append(found)
            else:
                loose.append((block, found))
        notes: list[Line] = []
        _place_loose_text(drafts, loose, notes)
        by_sheet[sheet.name] = drafts
        loose_lines[sheet.name] = notes
    if spec:
        _apply_spec(path, spec, {s.name: s for s in sheets}, by_sheet)

    taken = {d.name for drafts in by_sheet.values() for d in drafts if d.name}
    for index, sheet in enumerate(sheets, start=1):
        sheet_slug = slug(strip_period_words(sheet.name)) or slug(sheet.name) or f"sheet{index}"
        _name_drafts(by_sheet[sheet.name], sheet_slug, taken)
    all_drafts = [d for s in sheets for d in by_sheet[s.name]]
    if not all_drafts:
        empty = all(not any(not _blank(v) for row in s.rows for v in row) for s in sheets)
        reason = "every sheet is empty" if empty else "no block of cells looks like a table"
        raise IngestError(f"{path.name}: no tables found ({reason})")

    tables = [
        ExtractedTable(
            name=d.name,
            data=pa.table(d.data, names=d.columns),
            sheet=d.sheet,
            cell_range=d.cell_range,
            title=" ".join(d.title.text.split()) if d.title else None,
            notes=[ln.text for ln in d.notes],
            key=d.key,
            source_rows=d.source_rows,
            source_columns=dict(zip(d.columns, d.letters, strict=True)),
        )
        for d in all_drafts
    ]
    return Publication(
        format=fmt,
        tables=tables,
        cells=_cells_table(sheets),
        stated_dates=_stated_dates(all_drafts, loose_lines),
        notes=[ln.text for s in sheets for ln in loose_lines[s.name]],
        reader=f"python-calamine {version('python-calamine')}",
    )
