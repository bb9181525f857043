"""Dates a publication states about itself, and the date words that make titles unstable.

Agencies write the period a table covers into its title and notes ("as of 9/06/2025",
"FY25 thru August", "Data from BI Inc. Participants Report, 9.06.2025"). Two jobs follow:

* `find_stated_dates` turns such text into `StatedDate`s, the evidence of what period a
  release covers. Only phrases that speak about the data count, so an unrelated date in a
  sentence ("designated TPS as of 05/25/2021") is not mistaken for one:

  - ``Data from ..., DATE`` and ``Data Source: ..., DATE``   -> ``data_from``
  - ``as of DATE`` in a title, or after "data"/"snapshot"/"report" in the same clause
    (not inside parentheses, so "(... EID as of DATE)" is skipped)       -> ``as_of``
  - ``through DATE`` / ``thru DATE``                                     -> ``through``
  - ``FY25 thru August`` -> ``through``, the last day of that month in the fiscal year
    (FY25 runs October 2024 .. September 2025, so August -> 2025-08-31)
  - ``Run Date DATE``                                                    -> ``run_date``

  DATE is US month/day/year with ``/``, ``.`` or ``-`` (``9/06/2025``, ``9.06.2025``,
  two-digit years are 20xx), ISO ``2025-09-06``, or ``September 6, 2025``.

* `strip_period_words` removes those dates, fiscal-year tokens (FY25, FY2025), years, "YTD"
  and "Month YYYY" from a title so that the same table keeps the same name release after
  release; `period_key` recovers the period for titles that are nothing but a period
  ("August 2025" -> ``2025_08``, "Fiscal Year (FY) 2022 Quarter 2 Data" -> ``fy2022_q2``).
"""

from __future__ import annotations

import calendar
import re
from datetime import date

from atdarchive.ingest.model import StatedDate

MONTHS = {
    name: number
    for number in range(1, 13)
    for name in (calendar.month_name[number].lower(), calendar.month_abbr[number].lower())
}
MONTHS["sept"] = 9
_MONTH = r"(?:" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")\.?"

# One date token; the named groups are read by `_to_date`.
_DATE = (
    r"(?:(?P<iy>\d{4})-(?P<im>\d{1,2})-(?P<id>\d{1,2})"
    r"|(?P<m>\d{1,2})[/.\-](?P<d>\d{1,2})[/.\-](?P<y>\d{4}|\d{2})(?!\d|[/.]\d)"
    r"|(?P<nm>" + _MONTH + r")\s+(?P<nd>\d{1,2}),?\s+(?P<ny>\d{4}))"
)
_DATE_RE = re.compile(_DATE, re.IGNORECASE)

_RULES: list[tuple[str, re.Pattern[str], bool]] = [
    # (kind, pattern with the date as its last token, applies to titles only)
    ("data_from", re.compile(r"\bdata\s+(?:from|source)\b[^\n]*?" + _DATE, re.I), False),
    (
        "as_of",
        re.compile(r"\b(?:data|snapshot|report)\b[^.()\n]*?\bas\s+(?:of\s+)?" + _DATE, re.I),
        False,
    ),
    ("as_of", re.compile(r"\bas\s+of\s+" + _DATE, re.I), True),
    ("through", re.compile(r"\b(?:through|thru)\s+" + _DATE, re.I), False),
    ("run_date", re.compile(r"\brun\s+date:?\s+" + _DATE, re.I), False),
]
_FY_THRU_RE = re.compile(
    r"\bFY\s?'?(?P<fy>\d{4}|\d{2})\s+(?:thru|through)\s+(?P<month>" + _MONTH + r")(?!\s*\d)",
    re.I,
)

_STRIP_RES = [
    re.compile(r"\b(?:as\s+of|as|through|thru|from)\s+" + _DATE, re.I),
    re.compile(r"\b(?:through|thru)\s+" + _MONTH + r"(?:\s+\d{4})?\b", re.I),
    _DATE_RE,
    re.compile(r"\b" + _MONTH + r"\s+\d{4}\b", re.I),
    re.compile(r"\bFY\s?'?\d{2,4}\b", re.I),
    re.compile(r"\b(?:19|20)\d{2}\b"),
    re.compile(r"\bYTD\b", re.I),
]
_PERIOD_FILLER = {"fiscal", "year", "fy", "quarter", "q", "data", "month", "ytd", "of", "and"}


#: How a workbook's numeric dates are read when both orders make a real day: month first,
#: the convention of the U.S. agencies' own text ("as of 9/06/2025"). Passed to the one
#: parser (`atdarchive.instants`) as a declared order, never guessed per date.
STATED_ORDER = "MDY"


def _to_date(match: re.Match[str]) -> date | None:
    """The date of a `_DATE` match, or None when it is not a real calendar date."""
    from atdarchive.errors import AtdError
    from atdarchive.instants import calendar_day

    g = match.groupdict()
    try:
        if g.get("iy"):
            return calendar_day(f"{int(g['iy']):04d}-{int(g['im']):02d}-{int(g['id']):02d}")
        if g.get("y"):
            year = int(g["y"])
            year = year + 2000 if year < 100 else year
            return calendar_day(f"{int(g['m'])}/{int(g['d'])}/{year}", order=STATED_ORDER)
        if g.get("ny"):
            month = MONTHS[g["nm"].rstrip(".").lower()]
            return date(int(g["ny"]), month, int(g["nd"]))
    except (ValueError, AtdError):
        return None
    return None


def parse_date(text: str) -> date | None:
    """The first date written in `text` (US month/day/year, ISO, or "June 3, 2025")."""
    match = _DATE_RE.search(text)
    return _to_date(match) if match else None


def fiscal_month_end(fiscal_year: int, month: int) -> date:
    """Last day of `month` in US federal fiscal year `fiscal_year` (FY25: Oct 2024 .. Sep 2025)."""
    if fiscal_year < 100:
        fiscal_year += 2000
    year = fiscal_year - 1 if month >= 10 else fiscal_year
    return date(year, month, calendar.monthrange(year, month)[1])


def find_stated_dates(
    text: str, *, where: str | None = None, table: str | None = None, is_title: bool = False
) -> list[StatedDate]:
    """Stated dates in one title or note, in order of appearance, without repeats."""
    found: list[tuple[int, StatedDate]] = []
    seen: set[tuple[str, str]] = set()
    clean = " ".join(text.split())

    def add(pos: int, day: date | None, kind: str) -> None:
        if day is not None and (day.isoformat(), kind) not in seen:
            seen.add((day.isoformat(), kind))
            found.append((pos, StatedDate(day.isoformat(), kind, clean, where, table)))

    for kind, pattern, title_only in _RULES:
        if title_only and not is_title:
            continue
        for match in pattern.finditer(text):
            add(match.start(), _to_date(match), kind)
    for match in _FY_THRU_RE.finditer(text):
        month = MONTHS[match["month"].rstrip(".").lower()]
        add(match.start(), fiscal_month_end(int(match["fy"]), month), "through")
    return [stated for _, stated in sorted(found, key=lambda item: item[0])]


def strip_period_words(text: str) -> str:
    """`text` without the dates and period words that change from release to release."""
    for pattern in _STRIP_RES:
        text = pattern.sub(" ", text)
    return " ".join(text.split())


def is_period_only(text: str) -> bool:
    """True when a title says nothing but a period ("August 2025", "FY2022 Quarter 2 Data")."""
    words = re.findall(r"[a-z]+|\d+", strip_period_words(text).lower())
    return all(word in _PERIOD_FILLER or word.isdigit() for word in words)


def period_key(text: str) -> str | None:
    """A slug-safe key for the period a title names: 2025_08, fy2022_q2, fy2022, or None."""
    month = re.search(r"\b(" + _MONTH + r")\s+(\d{4})\b", text, re.I)
    if month:
        return f"{month[2]}_{MONTHS[month[1].rstrip('.').lower()]:02d}"
    year = re.search(r"\b((?:19|20)\d{2})\b", text) or re.search(r"\bFY\s?'?(\d{2})\b", text, re.I)
    quarter = re.search(r"\b(?:quarter\s*|q)([1-4])\b", text, re.I)
    if year is None:
        return f"q{quarter[1]}" if quarter else None
    fiscal = year[1] if len(year[1]) == 4 else f"20{year[1]}"
    return f"fy{fiscal}_q{quarter[1]}" if quarter else f"fy{fiscal}"
