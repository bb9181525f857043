"""`unparsed_release`: the agency served a file no reader could parse.

An evidence-only snapshot (`commit --keep-unparsed`) holds the original bytes and the
parse error, and no tables, so it never enters the publication order that the other
checks walk; the audit raises this finding for each one (a warning: a broken
publication is a publication failure, and what it replaced stayed in force).
"""

from __future__ import annotations

from atdarchive.checks import declare
from atdarchive.checks.base import Finding, finding
from atdarchive.history import Entry

declare("unparsed_release", "unparsed release", "warning", order=5)


def findings(entry: Entry) -> list[Finding]:
    """The finding for one evidence-only snapshot (none for a readable one)."""
    error = entry.record.get("parse_error")
    if not error:
        return []
    name = (entry.record.get("original") or {}).get("name") or "the file"
    return [finding("unparsed_release", entry, None, "warning",
                    f"{entry.published}: {name} could not be read as a table; kept as "
                    f"evidence only ({error})",
                    {"parse_error": error, "original": entry.record.get("original")},
                    magnitude=1)]
