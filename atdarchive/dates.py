"""Where a release's publication date comes from.

A ledger is forever, so a release is never dated by accident: `published` is
given (`--published DATE`, or `now` for "as captured"), or read from the file
name (`FY25_detentionStats08292025.xlsx` -> 2025-08-29; `export_20250704_162107.csv`
keeps its time), or from the server's Last-Modified header in fetch evidence — and
the record says which (`published_source`) and in which zone it was read
(`published_zone`). Nothing else is guessed. Every form is read by
`atdarchive.instants`, the one parser.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from atdarchive import instants
from atdarchive.errors import IngestError
from atdarchive.instants import When

#: What `published_source` may say, in the order they are tried after an explicit date.
SOURCES = ("given", "now", "file_name", "last_modified")


def file_name_date(name: str) -> dt.date | None:
    """The day written in a file name (`FY25_detentionStats08292025.xlsx` -> 2025-08-29)."""
    when = instants.in_file_name(name)
    return when.day if when else None


def http_date(value: str | None) -> str | None:
    """An HTTP date (Last-Modified) as the stored UTC instant, or None."""
    when = instants.http_date(value)
    return when.text if when else None


def resolve_published(published: str | None, file_name: str,
                      evidence: dict[str, Any] | None = None, zone: str = instants.UTC
                      ) -> tuple[When, str]:
    """(when, source): given, `now`, the file name's date (and time), or Last-Modified;
    naive forms are read in ZONE, the dataset's.

    None of them is an error naming the file: a release dated today by default would
    become `latest` and make the audit accuse the agency of re-posting old data.
    """
    if published and published.strip().lower() == "now":
        return instants.now(), "now"
    if published:
        return instants.parse(published, zone, "--published"), "given"
    if (named := instants.in_file_name(file_name, zone)) is not None:
        return named, "file_name"
    if (modified := instants.http_date((evidence or {}).get("last_modified"))) is not None:
        return modified, "last_modified"
    raise IngestError(
        f"{file_name}: no publication date: give --published DATE (or --published now "
        "for the moment of capture); none is in the file name (MMDDYYYY, YYYYMMDD, "
        "YYYY-MM-DD, optionally with a time such as _162107 or T1301) or a Last-Modified "
        "header")
