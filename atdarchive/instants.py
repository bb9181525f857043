"""One parser for every way a date or an instant reaches the archive.

A ledger is forever, so a publication time is read once, the same way, whatever wrote
it: a flag (`--published`, `--retrieved-at`, `--as-of`), a ref (`ds@2025-08-20`,
`ds@2025-08-20T13:00`), a file name (`FY25_detentionStats08292025.xlsx`,
`export_20250704_162107.csv`, `report-2020-12-09T1301.xlsx`), an HTTP header, a WARC or
CDX date. The answer is a `When`: a calendar day, or an aware UTC instant, plus the zone
it was given in. Naive input is read in the dataset's zone (`dataset.toml` `timezone`,
default UTC) and says so. Input with two readings (`01/02/2025`: January 2 or
February 1) is refused with one line naming both, never guessed.

Stored forms: a day is `YYYY-MM-DD`; an instant is `YYYY-MM-DDTHH:MM:SSZ` (UTC), with
the zone beside it (`published_zone`). Records written before zones existed keep their
strings: a naive date-time there is read as UTC, as it always was.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import functools
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from atdarchive.errors import AtdError

UTC = "UTC"
#: What a record's `published` may hold: a day, an instant in UTC (`Z`), or — written
#: before zones — a naive or offset date-time.
STORED_RE = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2}(Z|[+-]\d{2}:\d{2})?)?$")
_YEAR = r"(?:19|20)\d{2}"
_ISO_DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_COMPACT8 = re.compile(r"^\d{8}$")
_SLASHED = re.compile(r"^(\d{1,2})[/.](\d{1,2})[/.](\d{4})$")
_TIME = (r"(?P<H>\d{2}):?(?P<M>\d{2})(?::?(?P<S>\d{2})(?:\.\d+)?)?"
         r"(?P<tz>Z|[+-]\d{2}:?\d{2})?")
_DATETIME = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2}|\d{8})[T _-]" + _TIME + r"$", re.IGNORECASE)
_CDX14 = re.compile(r"^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})$")
# In a file name: a date (ISO or compact, or US MMDDYYYY), optionally followed by a time.
_NAME_STAMP = re.compile(
    r"(?<!\d)(?P<date>" + _YEAR + r"-\d{2}-\d{2}|" + _YEAR + r"\d{4}|\d{4}" + _YEAR + r")"
    r"(?:[T_-](?P<H>\d{2}):?(?P<M>\d{2})(?::?(?P<S>\d{2}))?(?P<tz>Z)?)?(?!\d)",
    re.IGNORECASE)


@dataclass(frozen=True)
class When:
    """A publication time as the archive keeps it: a day, or an instant (aware, UTC)."""

    day: dt.date  # the calendar day where it was given (for an instant: its local day)
    utc: dt.datetime | None = None  # None: a bare day
    zone: str = UTC  # the zone it was given in, or read in
    read_in_zone: bool = False  # naive input, read in the dataset's zone

    @property
    def text(self) -> str:
        """The stored form: `YYYY-MM-DD`, or `YYYY-MM-DDTHH:MM:SSZ`."""
        if self.utc is None:
            return self.day.isoformat()
        return self.utc.strftime("%Y-%m-%dT%H:%M:%SZ")

    @property
    def is_day(self) -> bool:
        return self.utc is None

    def local(self) -> dt.datetime | None:
        return None if self.utc is None else self.utc.astimezone(zone_info(self.zone))

    def describe(self) -> str:
        """For the commit line: what was read, in which zone."""
        if self.utc is None:
            return self.day.isoformat()
        local = self.local()
        assert local is not None
        shown = local.strftime("%Y-%m-%dT%H:%M:%S")
        how = " (naive: read in the dataset's zone)" if self.read_in_zone else ""
        return f"{shown} {self.zone}{how} = {self.text}"

    def sort_key(self) -> tuple[str, int]:
        """One order across zones: an instant by its UTC time; a day at the start of that
        day where it was given, before the instants of that moment."""
        if self.utc is None:
            return (_utc_text(day_start(self.day, self.zone)), 0)
        return (self.text, 1)


def _utc_text(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def day_start(day: dt.date, zone: str) -> dt.datetime:
    """Midnight at the start of DAY in ZONE, as an aware instant."""
    return dt.datetime(day.year, day.month, day.day, tzinfo=zone_info(zone))


def through_day_key(day: dt.date, zone: str) -> tuple[str, int]:
    """The sort key just after DAY ends in ZONE: what was published on or before it sorts
    below it."""
    return (_utc_text(day_start(day + dt.timedelta(days=1), zone)), 0)


@functools.cache
def zone_info(name: str) -> dt.tzinfo:
    """A zone by IANA name (`America/New_York`), `UTC`, or a fixed offset (`+05:30`)."""
    if name.upper() in ("UTC", "Z"):
        return dt.UTC
    offset = re.fullmatch(r"([+-])(\d{2}):?(\d{2})", name)
    if offset:
        sign = 1 if offset[1] == "+" else -1
        return dt.timezone(sign * dt.timedelta(hours=int(offset[2]), minutes=int(offset[3])))
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, IsADirectoryError):
        raise AtdError(f"time zone {name!r}: not an IANA zone name (e.g. America/New_York), "
                       "UTC, or an offset such as +05:30") from None


def check_zone(name: str) -> str:
    zone_info(name)
    return name


def _day(y: int, m: int, d: int) -> dt.date | None:
    try:
        return dt.date(y, m, d)
    except ValueError:
        return None


def _eight_digits(text: str) -> list[tuple[dt.date, str]]:
    """The readings of `YYYYMMDD` / `MMDDYYYY` (years 1900-2099) that are real dates."""
    out = []
    if re.fullmatch(_YEAR + r"\d{4}", text) and (day := _day(
            int(text[:4]), int(text[4:6]), int(text[6:]))):
        out.append((day, READING["YMD"]))
    if re.fullmatch(r"\d{4}" + _YEAR, text):
        for day, how in ((_day(int(text[4:]), int(text[:2]), int(text[2:4])), READING["MDY"]),
                         (_day(int(text[4:]), int(text[2:4]), int(text[:2])), READING["DMY"])):
            if day is not None and day not in {d for d, _ in out}:
                out.append((day, how))
    return out


#: How each reading is named, by the order of its parts.
READING = {"YMD": "year-month-day", "MDY": "US month-day-year", "DMY": "day-month-year"}


def _one_day(readings: list[tuple[dt.date, str]], text: str, what: str,
             order: str | None = None) -> dt.date:
    if order is not None and len({d for d, _ in readings}) > 1:  # a declared convention
        readings = [r for r in readings if r[1] == READING[order]] or readings
    distinct = {day for day, _ in readings}
    if len(distinct) > 1:
        named = " or ".join(f"{day.isoformat()} ({how})" for day, how in readings)
        raise AtdError(f"{what}: {text!r} is ambiguous: {named}; write it as YYYY-MM-DD")
    if not readings:
        raise AtdError(f"{what}: {text!r} is not a date")
    return readings[0][0]


def calendar_day(text: str, what: str = "date", order: str | None = None) -> dt.date:
    """A written day: ISO, compact `YYYYMMDD`, US `MMDDYYYY`, or `M/D/YYYY` vs `D/M/YYYY`
    (refused when both readings are real days, unless ORDER — `MDY` or `DMY`, a source's
    declared convention — says which is meant)."""
    text = text.strip()
    if match := _ISO_DAY.match(text):
        return _one_day([(d, "ISO")] if (d := _day(*map(int, match.groups()))) else [],
                        text, what)
    if _COMPACT8.match(text):
        return _one_day(_eight_digits(text), text, what, order)
    if match := _SLASHED.match(text):
        a, b, y = map(int, match.groups())
        readings = [(d, how) for d, how in ((_day(y, a, b), READING["MDY"]),
                                            (_day(y, b, a), READING["DMY"])) if d]
        return _one_day(readings, text, what, order)
    raise AtdError(f"{what}: cannot read {text!r} as a date (YYYY-MM-DD, YYYYMMDD, "
                   "MM/DD/YYYY)")


def _instant(day: dt.date, hour: str, minute: str, second: str | None, tz: str | None,
             zone: str, what: str, text: str) -> When:
    try:
        naive = dt.datetime(day.year, day.month, day.day, int(hour), int(minute),
                            int(second or 0))
    except ValueError:
        raise AtdError(f"{what}: {text!r} is not a time of day") from None
    if tz:
        given = UTC if tz.upper() == "Z" else (tz if ":" in tz else f"{tz[:3]}:{tz[3:]}")
        aware = naive.replace(tzinfo=zone_info(given))
        read_in_zone = False
        if given != UTC and zone != UTC and aware.utcoffset() == naive.replace(
                tzinfo=zone_info(zone)).utcoffset():
            given = zone  # the offset the dataset's own zone has then: keep its name
    else:
        given, read_in_zone = zone, True
        aware = naive.replace(tzinfo=zone_info(zone))
        if aware.astimezone(dt.UTC).astimezone(zone_info(zone)).replace(tzinfo=None) != naive:
            before = (naive - dt.timedelta(hours=3)).replace(tzinfo=zone_info(zone))
            offset = before.strftime("%z")
            raise AtdError(f"{what}: {text!r} does not exist in {zone} (the clocks jumped); "
                           f"give the offset, e.g. {naive.isoformat(timespec='minutes')}"
                           f"{offset[:3]}:{offset[3:]}")
    utc = aware.astimezone(dt.UTC)
    local_day = utc.astimezone(zone_info(given)).date()
    return When(local_day, utc, given, read_in_zone)


def parse(text: str, zone: str = UTC, what: str = "--published") -> When:
    """A day or an instant typed by a person (flags, refs): every written form, naive
    times read in ZONE; ambiguous or impossible input is one line naming the readings."""
    raw = str(text).strip()
    if not raw:
        raise AtdError(f"{what}: empty date")
    if match := _DATETIME.match(raw):
        day = calendar_day(match["date"], what)
        return _instant(day, match["H"], match["M"], match["S"], match["tz"], zone, what, raw)
    if match := _CDX14.match(raw):
        y, mo, d, h, mi, s = match.groups()
        return _instant(calendar_day(f"{y}-{mo}-{d}", what), h, mi, s, "Z", zone, what, raw)
    try:
        return When(calendar_day(raw, what), zone=zone)
    except AtdError as exc:
        if "ambiguous" in exc.message:
            raise
    try:  # ISO forms Python reads and the patterns above do not (e.g. fractional zone)
        value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise AtdError(f"{what}: cannot read {raw!r} as a date (YYYY-MM-DD) or date-time "
                       "(YYYY-MM-DDTHH:MM[:SS][Z|+HH:MM], YYYYMMDD_HHMMSS)") from None
    if value.tzinfo is None:
        return _instant(value.date(), f"{value.hour:02d}", f"{value.minute:02d}",
                        f"{value.second:02d}", None, zone, what, raw)
    utc = value.astimezone(dt.UTC)
    return When(value.date(), utc.replace(microsecond=0), UTC if value.utcoffset() ==
                dt.timedelta(0) else value.strftime("%z")[:3] + ":" + value.strftime("%z")[3:])


def in_file_name(name: str, zone: str = UTC) -> When | None:
    """The date (and time, when written) in a file name, or None; a name with two
    readings (`01022025`: ...) counts as none, for the caller to ask for --published."""
    for match in _NAME_STAMP.finditer(name):
        readings = _eight_digits(match["date"].replace("-", "")) if "-" not in match["date"] \
            else [(d, "ISO") for d in [_day(*map(int, match["date"].split("-")))] if d]
        if len({d for d, _ in readings}) != 1:
            continue
        day = readings[0][0]
        if match["H"] is not None:
            try:
                return _instant(day, match["H"], match["M"], match["S"], match["tz"], zone,
                                "file name", match[0])
            except AtdError:
                pass  # digits that are not a time: the day alone
        return When(day, zone=zone)
    return None


def http_date(value: str | None) -> When | None:
    """An HTTP date (Last-Modified, Date): always UTC by RFC 9110; None when unreadable."""
    if not value:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    utc = when.astimezone(dt.UTC).replace(microsecond=0)
    return When(utc.date(), utc, UTC)


def now() -> When:
    utc = dt.datetime.now(dt.UTC).replace(microsecond=0)
    return When(utc.date(), utc, UTC)


def stored(published: str, zone: str | None = None) -> When:
    """A `published` string as a record keeps it (any version) back as a `When`."""
    if len(published) == 10:
        return When(dt.date.fromisoformat(published), zone=zone or UTC)
    value = dt.datetime.fromisoformat(published.replace("Z", "+00:00"))
    if value.tzinfo is None:  # written before zones: naive times were compared as UTC
        value = value.replace(tzinfo=dt.UTC)
    utc = value.astimezone(dt.UTC)
    name = zone or UTC
    return When(utc.astimezone(zone_info(name)).date(), utc, name)


def same_instant(a: When, b: When) -> bool:
    """The same publication: equal instants, or the same day when either is a bare day."""
    if a.utc is None or b.utc is None:
        return a.day == b.day
    return a.utc == b.utc
