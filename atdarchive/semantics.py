"""What a table means in time: its role, its period and total columns, its own data date.

The audit judges a change by what the table is (README "Forensic judgement"):

    period_series  columns are periods (months of a fiscal year, ISO months, dates):
                   a change to a closed period is a revision
    as_of          a count at one moment ("ICE Currently Detained by ...", "ATD Active
                   Population ... as of ..."): it is meant to change every release; a
                   change is an update, and being identical two weeks later is suspect
    running        year-to-date figures ("FY25 thru August ...", "FY25 ADP"): they move
                   as the year goes on
    reference      lists of things (the facilities list: names, addresses, several text
                   columns; footnotes) and fixed records of one past period ("April
                   2024", "FY 2022 Quarter 2 Data"): new rows are the news

Inferred from the table's record (title, notes, schema) — deterministic and cheap, so
it is derived when read rather than stored (records are immutable; every release
already archived gets the same judgement). `dataset.toml` overrides it:

    [audit]
    ignore_columns = ["..."]        # never judged
    flag_columns = ["..."]          # provisional / status flags: a reset is not news
    provisional_periods = 1         # the last N period columns are still being counted
    [audit.tables.TABLE]
    role = "as_of"                  # period_series | as_of | running | reference
    ignore_columns, flag_columns, provisional_periods, totals = false
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

ROLES = ("period_series", "as_of", "running", "reference")
#: Running-total columns: they move when a new period is filled in on the same row.
TOTAL_COLUMN_RE = re.compile(r"(?i)\b(total|overall|ytd|year[\s_-]*to[\s_-]*date|cumulative|sum)\b")
ISO_MONTH_RE = re.compile(r"\b((?:19|20)\d{2})-(\d{2})(?:-\d{2})?\b")
MONTH_NAME_RE = re.compile(
    r"(?i)\b(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
    r"sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\b")
AS_OF_RE = re.compile(r"(?i)\b(currently|as of|active|on hand|snapshot|pending)\b")
RUNNING_RE = re.compile(r"(?i)\b(fy\s?\d{2,4}|ytd|year[\s-]to[\s-]date|thru|through|to date)\b")
#: Derived columns: rolling averages and shares of another column.
DERIVED_RE = re.compile(r"(?i)(\b\d+[\s_-]*day\b|rolling|\bavg\b|average|%|percent|\bpct\b|"
                        r"\brate\b|share|ratio)")
#: A title that names one past period ("April 2024", "FY 2022 Quarter 2 Data"): a fixed
#: record of a closed period, kept as it was.
ONE_PERIOD_RE = re.compile(
    r"(?i)^\s*[a-z]+\s+(19|20)\d{2}\s*$|\bquarter\s*[1-4]\b|\bq[1-4]\b")
FLAG_RE = re.compile(r"(?i)\b(flag|provisional|incomplete|preliminary)\b")
NUMERIC_TYPES = ("int", "uint", "double", "float", "decimal")


def period_token(column: str) -> str | None:
    """The period a column name names ("Oct", "2025 / July / end" -> "2025 jul"), or None."""
    if TOTAL_COLUMN_RE.search(column):
        return None
    if m := ISO_MONTH_RE.search(column):
        return f"{m[1]}-{m[2]}"
    if m := MONTH_NAME_RE.search(column):
        year = re.search(r"\b(?:19|20)\d{2}\b", column)
        return f"{year[0] if year else ''} {m[1][:3].lower()}".strip()
    return None


MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
FISCAL_YEAR_RE = re.compile(r"(?i)\bFY\s?'?(\d{4}|\d{2})\b")


def period_of(column: str, fiscal_year: int | None = None) -> str | None:
    """The month (YYYY-MM) a period column stands for: ISO months as they are, "2025 /
    July / end" -> 2025-07, and a bare month of a US federal fiscal year (October to
    September): FY2025 Oct -> 2024-10, FY2025 Sep -> 2025-09. None when unknown."""
    token = period_token(column)
    if token is None:
        return None
    if re.fullmatch(r"\d{4}-\d{2}", token):
        return token
    year, _, month = token.rpartition(" ")
    number = MONTHS.index(month) + 1
    if year:
        return f"{year}-{number:02d}"
    if fiscal_year is None:
        return None
    return f"{fiscal_year - 1 if number >= 10 else fiscal_year}-{number:02d}"


def fiscal_year(text: str) -> int | None:
    """The one fiscal year a title names ("... Month: FY2025", "FY25 ADP"), else None."""
    years = {int(m) + (2000 if len(m) == 2 else 0) for m in FISCAL_YEAR_RE.findall(text or "")}
    return years.pop() if len(years) == 1 else None  # "FY2023 - FY2025": which one?


@dataclass
class TableSemantics:
    """One table's meaning in time (see the module docstring)."""

    role: str
    source: str  # "inferred" or "dataset.toml"
    period_columns: list[str] = field(default_factory=list)
    periods: dict[str, str] = field(default_factory=dict)  # period column -> YYYY-MM
    total_columns: list[str] = field(default_factory=list)
    derived_columns: list[str] = field(default_factory=list)
    flag_columns: list[str] = field(default_factory=list)
    ignore_columns: list[str] = field(default_factory=list)
    provisional_periods: int = 0
    check_totals: bool = True

    @property
    def closed_periods(self) -> list[str]:
        """Period columns not within the provisional window."""
        n = self.provisional_periods
        return self.period_columns[:-n] if n else list(self.period_columns)

    def to_json(self) -> dict[str, Any]:
        return {"role": self.role, "source": self.source,
                "period_columns": self.period_columns, "periods": self.periods,
                "total_columns": self.total_columns,
                "derived_columns": self.derived_columns, "flag_columns": self.flag_columns,
                "ignore_columns": self.ignore_columns,
                "provisional_periods": self.provisional_periods}


def describe(meta: dict[str, Any], audit_config: dict[str, Any] | None = None,
             table: str = "") -> TableSemantics:
    """The semantics of a table from its record entry and `dataset.toml`'s [audit]."""
    config = audit_config or {}
    own = (config.get("tables") or {}).get(table, {})
    schema = meta.get("schema") or []
    names = [c["name"] for c in schema]
    numeric = [c["name"] for c in schema if str(c["type"]).startswith(NUMERIC_TYPES)]
    text = [c["name"] for c in schema if str(c["type"]) in ("string", "large_string")]
    periods = [c for c in numeric if period_token(c)]
    words = " ".join([meta.get("title") or "", *(meta.get("notes") or [])])
    role, source = own.get("role"), "dataset.toml"
    if role is None:
        source = "inferred"
        first_is_date = bool(schema) and str(schema[0]["type"]).startswith(("date", "timestamp"))
        if len(periods) >= 2 or (first_is_date and (meta.get("rows") or 0) > 5):
            role = "period_series"
        elif len(text) >= 3 or not numeric or ONE_PERIOD_RE.search(meta.get("title") or ""):
            role = "reference"
        elif AS_OF_RE.search(words):
            role = "as_of"
        elif RUNNING_RE.search(words) or any(RUNNING_RE.search(c) for c in numeric):
            role = "running"
        else:
            role = "as_of"
    flags = [c for c in names if FLAG_RE.search(c)]
    flags += [c for c in (*config.get("flag_columns", []), *own.get("flag_columns", []))
              if c in names and c not in flags]
    ignore = [c for c in (*config.get("ignore_columns", []), *own.get("ignore_columns", []))
              if c in names]
    fy = fiscal_year(meta.get("title") or "")
    mapped = {c: p for c in periods if (p := period_of(c, fy)) is not None}
    return TableSemantics(
        role=role, source=source, period_columns=periods, periods=mapped,
        total_columns=[c for c in numeric if re.fullmatch(r"(?i)\s*(grand\s+)?total\s*", c)],
        derived_columns=[c for c in numeric if DERIVED_RE.search(c) and c not in periods],
        flag_columns=flags, ignore_columns=ignore,
        provisional_periods=int(own.get("provisional_periods",
                                        config.get("provisional_periods", 0))),
        check_totals=bool(own.get("totals", True)))


DATE_NAME_RE = re.compile(r"(?i)(date|day)")
DATE_FORMATS = ("%Y-%m-%d", "%m/%d/%Y", "%Y-%m-%dT%H:%M:%S", "%m/%d/%Y %H:%M:%S")


def date_column(schema: list[dict[str, Any]]) -> str | None:
    """The table's date key: its first column when that is a date/timestamp, or text
    named for dates ("date_of_interest"); None otherwise (a date further right, such
    as a facility's last inspection, describes a row, not how far the data reaches)."""
    if not schema:
        return None
    first, kind = schema[0]["name"], str(schema[0]["type"])
    if kind.startswith(("date", "timestamp")) or (
            kind in ("string", "large_string") and DATE_NAME_RE.search(first)):
        return first
    return None


def data_date(table: Any, sem: TableSemantics, date_key: str | None) -> dict[str, str] | None:
    """The latest date the data itself reaches: the latest period column holding a
    value (its month's end), or the latest value of the date key. Column-wise."""
    import calendar

    import pyarrow as pa
    import pyarrow.compute as pc

    if sem.periods:
        filled = [c for c in sem.periods if c in table.column_names
                  and pc.any(pc.fill_null(pc.not_equal(table[c], 0), False)).as_py()]
        if not filled:
            return None
        column = max(filled, key=lambda c: sem.periods[c])
        year, month = map(int, sem.periods[column].split("-"))
        end = f"{year:04d}-{month:02d}-{calendar.monthrange(year, month)[1]:02d}"
        return {"kind": "data_period", "column": column, "date": end}
    if date_key is None or date_key not in table.column_names:
        return None
    values = table[date_key]
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        for fmt in DATE_FORMATS:  # the first format every non-null value parses with
            parsed = pc.strptime(values, format=fmt, unit="s", error_is_null=True)
            if parsed.null_count == values.null_count and len(values) > values.null_count:
                values = parsed
                break
        else:
            return None
    latest = pc.max(values).as_py()
    if latest is None:
        return None
    return {"kind": "data_date", "column": date_key, "date": latest.isoformat()[:10]}
