"""Citations of one snapshot (DESIGN.md §9): text, BibTeX, CSL-JSON.

A citation names the publisher's release (agency, title, publication date,
source URL, retrieval date) *and* the archived bytes (snapshot id, sha256 of
the original, table fingerprints, where the archive lives), so that a reader
can fetch exactly what the author used and check it.
"""

from __future__ import annotations

import json
import re
from typing import Any

from atdarchive import instants
from atdarchive.context import ArchiveContext
from atdarchive.errors import AtdError
from atdarchive.pinning import archive_location
from atdarchive.util import published_day

FORMATS = ("text", "bibtex", "csl-json")
MAX_LISTED_TABLES = 3  # more table fingerprints than this would drown a reference list


def citation_data(archive: ArchiveContext, ref: str) -> dict[str, Any]:
    """Everything a citation of DATASET@REF says, as plain data."""
    snapshot = archive.snapshot(ref)
    config = archive.dataset(snapshot.dataset)
    record = snapshot.record
    retrieved = retrieved_at(record) or ""
    return {
        "dataset": snapshot.dataset,
        "title": config.title or snapshot.dataset,
        "agency": config.agency or None,
        "published": snapshot.published,
        "published_day": published_day(snapshot.published,
                                       record.get("published_zone")).isoformat(),
        "channel": snapshot.channel,
        "period": record.get("period"),
        "source_url": record.get("source_url") or config.source_url or None,
        "retrieved": retrieved[:10] or None,
        "retrieved_at": retrieved or None,
        "committed_at": record.get("committed_at"),
        "snapshot": snapshot.id,
        "short_id": snapshot.short_id,
        "original_name": record["original"]["name"],
        "original_sha256": record["original"]["sha256"],
        "tables": {name: {"fingerprint": meta["fingerprint"],
                          "sha256": record["files"][meta["file"]]["sha256"]}
                   for name, meta in record["tables"].items()},
        "archive": archive_location(archive),
    }


def retrieved_at(record: dict[str, Any]) -> str | None:
    """When the archivist got the file, if the record knows it. Records before version 2
    wrote the moment of committing there when nothing was given; such a value (seconds
    from `committed_at`, no fetch evidence) is not a retrieval and is not shown as one."""
    value = record.get("retrieved_at")
    if not value or record.get("version", 1) >= 2 or record.get("fetch"):
        return value or None
    try:
        committed = instants.stored(record.get("committed_at") or "")
        got = instants.stored(value)
    except (ValueError, AtdError):
        return value
    if committed.utc and got.utc and abs((committed.utc - got.utc).total_seconds()) < 300:
        return None
    return value


def cite(archive: ArchiveContext, ref: str, format: str = "text") -> str:
    """The citation of DATASET@REF in one of FORMATS."""
    data = citation_data(archive, ref)
    if format == "text":
        return format_text(data)
    if format == "bibtex":
        return format_bibtex(data)
    if format in ("csl-json", "csl", "json"):
        return json.dumps(format_csl(data), indent=2, ensure_ascii=False)
    raise AtdError(f"--format {format!r}: choose one of {', '.join(FORMATS)}")


def _release(data: dict[str, Any]) -> str:
    channel = "" if data["channel"] == "public" else f", {data['channel']} channel"
    period = f", covering {data['period']}" if data.get("period") else ""
    return f"release of {data['published']}{period}{channel}"


def format_text(data: dict[str, Any]) -> str:
    """A reference-list entry, then the fixity line a reader needs to check the bytes."""
    author = data["agency"] or "Unknown agency"
    year = data["published_day"][:4]
    source = f" {data['source_url']}." if data["source_url"] else ""
    retrieved = f" Retrieved {data['retrieved']}." if data["retrieved"] else ""
    first = (f"{author}. ({year}). {data['title']} [Data set, {_release(data)}]."
             f"{source}{retrieved}")
    archived = f" on {data['committed_at'][:10]}" if data.get("committed_at") else ""
    second = (f"Archived{archived} as {data['dataset']}@{data['snapshot']} in "
              f"{data['archive']}; original file {data['original_name']} sha256 "
              f"{data['original_sha256']}.")
    return f"{first}\n{second}"


_BIB_SPECIAL = {"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "&": r"\&", "%": r"\%",
                "$": r"\$", "#": r"\#", "_": r"\_", "~": r"\textasciitilde{}",
                "^": r"\textasciicircum{}"}


def _bib(text: str) -> str:
    return "".join(_BIB_SPECIAL.get(ch, ch) for ch in " ".join(str(text).split()))


def _bib_url(url: str) -> str:
    """URLs go verbatim (for \\url); only braces and backslashes could break the entry."""
    return url.replace("\\", "%5C").replace("{", "%7B").replace("}", "%7D")


def format_bibtex(data: dict[str, Any]) -> str:
    """One `@misc` entry (BibTeX and biblatex both accept it), fields braced and escaped."""
    key = re.sub(r"[^A-Za-z0-9]+", "-", f"{data['dataset']}-{data['published_day']}").strip("-")
    key = f"{key}-{data['short_id']}"
    year, month, _ = data["published_day"].split("-")
    if len(data["tables"]) <= MAX_LISTED_TABLES:
        tables = "; ".join(f"table {name} fingerprint {t['fingerprint']}"
                           for name, t in sorted(data["tables"].items()))
    else:  # a workbook of 69 sheets: the lockfile carries every fingerprint
        tables = f"{len(data['tables'])} tables (fingerprints: atdarchive pin)"
    note = (f"Dataset, {_release(data)}. Archived snapshot {data['dataset']}@{data['snapshot']}"
            f" in {data['archive']}. Original file {data['original_name']} sha256 "
            f"{data['original_sha256']}" + (f"; {tables}" if tables else "") + ".")
    fields: list[tuple[str, str]] = [
        ("author", "{" + _bib(data["agency"] or "Unknown agency") + "}"),  # a body, not a person
        ("title", "{" + _bib(data["title"]) + "}"),
        ("year", year),
        ("month", month),
        ("date", data["published_day"]),
        ("howpublished", "Data set"),
        ("version", data["snapshot"]),
    ]
    if data["source_url"]:
        fields.append(("url", _bib_url(data["source_url"])))
    if data["retrieved"]:
        fields.append(("urldate", data["retrieved"]))
    fields.append(("note", _bib(note)))
    body = ",\n".join(f"  {name} = {{{value}}}" for name, value in fields)
    return f"@misc{{{key},\n{body}\n}}"


def _date_parts(day: str) -> dict[str, Any]:
    return {"date-parts": [[int(part) for part in day.split("-")]]}


def format_csl(data: dict[str, Any]) -> list[dict[str, Any]]:
    """CSL-JSON (a list of items), item type `dataset`."""
    item: dict[str, Any] = {
        "id": f"{data['dataset']}@{data['short_id']}",
        "type": "dataset",
        "title": data["title"],
        "author": [{"literal": data["agency"] or "Unknown agency"}],
        "publisher": data["agency"] or "Unknown agency",
        "issued": _date_parts(data["published_day"]),
        "version": data["snapshot"],
        "medium": "Data set",
        "archive": data["archive"],
        "archive_location": f"{data['dataset']}@{data['snapshot']}",
        "note": (f"{_release(data)}; original file {data['original_name']} sha256 "
                 f"{data['original_sha256']}"),
    }
    if data["source_url"]:
        item["URL"] = data["source_url"]
    if data["retrieved"]:
        item["accessed"] = _date_parts(data["retrieved"])
    return [item]
