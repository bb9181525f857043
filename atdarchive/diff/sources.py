"""What the diff reads from a snapshot's record: its tables, their files' sha256 (which
key the fingerprint cache), declared keys, and which tables a diff covers.

A snapshot here is anything with `id`, `record`, `table_names`,
`table_path(name)`, `table(name, columns=None)` and `source_rows(name)`.
"""

from __future__ import annotations

from typing import Any

from atdarchive.diff.types import DiffOptions
from atdarchive.errors import AtdError


def record_tables(snap: Any) -> dict:
    """The `tables` entry of a snapshot's record ({} when it has none)."""
    rec = getattr(snap, "record", None) or {}
    return rec.get("tables", {}) if isinstance(rec, dict) else {}


def table_sha(snap: Any, name: str) -> str | None:
    """The recorded sha256 of a table's Parquet file (keys its fingerprint cache)."""
    rec = getattr(snap, "record", None) or {}
    rel = record_tables(snap).get(name, {}).get("file")
    if rel and isinstance(rec.get("files"), dict):
        return (rec["files"].get(rel) or {}).get("sha256")
    return None


def declared_key_for(name: str, a: Any, b: Any, options: DiffOptions,
                     declared_keys: dict[str, list[str]] | None) -> list[str] | None:
    """The declared key of table `name`: `declared_keys`, the options, else the records."""
    if declared_keys and declared_keys.get(name):
        return list(declared_keys[name])
    if options.declared_key:
        return list(options.declared_key)
    for snap in (b, a):
        meta = record_tables(snap).get(name, {})
        if meta.get("key") and meta.get("key_source", "declared") == "declared":
            return list(meta["key"])
    return None


def table_names(a: Any, b: Any, table: str | None) -> list[str]:
    """The tables to diff: `table` (which one side must have), else all, old ones first."""
    names_a, names_b = list(a.table_names), list(b.table_names)
    if table is None:
        return names_a + [n for n in names_b if n not in names_a]
    if table not in names_a and table not in names_b:
        raise AtdError(
            f"no table {table!r} in either snapshot; tables: "
            f"{', '.join(dict.fromkeys(names_a + names_b))}"
        )
    return [table]
