"""Where a release's publication date comes from, and the dates written in file names.

A ledger is forever, so a release is never dated by accident: `published` is
given (`--published DATE`, or `now` for "as captured"), or read from the file
name (`FY25_detentionStats08292025.xlsx` -> 2025-08-29), or from the server's
Last-Modified header in fetch evidence — and the record says which
(`published_source`). Nothing else is guessed.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import re
from typing import Any

from atdarchive.errors import IngestError
from atdarchive.util import parse_published, utc_now

#: What `published_source` may say, in the order they are tried after an explicit date.
SOURCES = ("given", "now", "file_name", "last_modified")

_FN_ISO = re.compile(r"(?<!\d)((?:19|20)\d{2})[-_.]?(\d{2})[-_.]?(\d{2})(?!\d)")
_FN_US = re.compile(r"(?<!\d)(\d{2})[-_.]?(\d{2})[-_.]?((?:19|20)\d{2})(?!\d)")


def file_name_date(name: str) -> dt.date | None:
    """The date written in a file name: `FY25_detentionStats08292025.xlsx` -> 2025-08-29.

    YYYYMMDD / YYYY-MM-DD first, then US MMDDYYYY; impossible dates are skipped.
    """
    for pattern, order in ((_FN_ISO, (0, 1, 2)), (_FN_US, (2, 0, 1))):
        for match in pattern.finditer(name):
            parts = match.groups()
            y, m, d = (int(parts[i]) for i in order)
            try:
                return dt.date(y, m, d)
            except ValueError:
                continue
    return None


def http_date(value: str | None) -> str | None:
    """An HTTP date (Last-Modified) as a normalised UTC date-time, or None."""
    if not value:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return parse_published(when.astimezone(dt.UTC).isoformat())


def resolve_published(published: str | None, file_name: str,
                      evidence: dict[str, Any] | None = None) -> tuple[str, str]:
    """(published, source): given, `now`, the file name's date, or Last-Modified.

    None of them is an error naming the file: a release dated today by default would
    become `latest` and make the audit accuse the agency of re-posting old data.
    """
    if published and published.strip().lower() == "now":
        return parse_published(utc_now()), "now"
    if published:
        return parse_published(published), "given"
    if (day := file_name_date(file_name)) is not None:
        return day.isoformat(), "file_name"
    if (modified := http_date((evidence or {}).get("last_modified"))) is not None:
        return modified, "last_modified"
    raise IngestError(
        f"{file_name}: no publication date: give --published DATE (or --published now "
        "for the moment of capture); none is in the file name (MMDDYYYY, YYYYMMDD, "
        "YYYY-MM-DD) or a Last-Modified header")
