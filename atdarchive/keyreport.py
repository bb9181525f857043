"""Which key identifies a table's rows, where it came from, and how it holds up in each
release (`atdarchive keys`).

The key in force is `atdarchive.keyresolver.resolve_key`'s, the one blame, history, vintages,
revisions, diff, audit and the web app use: declared (`dataset.toml` [keys], or an
extraction spec) > hierarchy (derived on read, `atdarchive.hierarchy`) > inferred on the
latest release (unique, else nearly unique) > none (rows matched whole).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from atdarchive.errors import AtdError
from atdarchive.keyresolver import resolve_key
from atdarchive.keys import (
    derived_key,
    duplicate_examples,
    duplicated_rows,
    infer_key,
)

if TYPE_CHECKING:

    from atdarchive.context import ArchiveContext
    from atdarchive.history import Entry


def key_in_force(archive: ArchiveContext, dataset: str, table: str,
                 channel: str | None = None) -> tuple[list[str] | None, str]:
    """(key, source) of a table: `keyresolver.resolve_key`, the one answer every command uses."""
    return resolve_key(archive, dataset, table, channel=channel or "public").pair()


def key_report(archive: ArchiveContext, dataset: str, table: str | None = None,
               channel: str | None = None) -> list[dict[str, Any]]:
    """Per table: the key in force, its source, the inferred alternative, and per
    release whether the key is there, unique, and which values repeat."""
    history = archive.history(dataset)
    series = history.publication_order(channel)
    names = list(dict.fromkeys(n for e in series for n in e.record["tables"]))
    if table is not None:
        if table not in names:
            from atdarchive.snapshot import choices

            raise AtdError(f"{dataset}: no table {table!r} in any release "
                           f"({choices(table, names)})")
        names = [table]
    out = []
    for name in names:
        holding = [e for e in series if name in e.record["tables"]]
        latest = holding[-1]
        latest_table = archive.snapshot_of(latest.record).table(name)
        key, source = key_in_force(archive, dataset, name, channel)
        spec = archive.hierarchy(dataset, name)
        releases = [_release_check(archive, entry, name, key) for entry in holding]
        alternative = derived_key(latest_table.schema) or infer_key(latest_table)
        out.append({
            "table": name, "key": key, "source": source,
            "hierarchy": spec.to_json() if spec else None,
            "inferred": alternative if alternative != key else None,
            "releases": releases,
            "unique_in": sum(1 for r in releases if r["unique"]),
        })
    return out


def _release_check(archive: ArchiveContext, entry: Entry, table: str,
                   key: list[str] | None) -> dict[str, Any]:
    base = {"snapshot": entry.id, "short_id": entry.short, "published": entry.published,
            "channel": entry.channel}
    if key is None:
        return {**base, "missing": [], "unique": False, "duplicated_rows": None,
                "duplicates": []}
    data = archive.snapshot_of(entry.record).table(table)
    missing = [k for k in key if k not in data.column_names]
    if missing:
        return {**base, "missing": missing, "unique": False, "duplicated_rows": None,
                "duplicates": []}
    dups = duplicate_examples(data, key, limit=5)
    return {**base, "missing": [], "unique": not dups,
            "duplicated_rows": duplicated_rows(data, key),
            "duplicates": [{"key": {k: d[k] for k in key}, "rows": d["_count"]} for d in dups]}


def config_warnings(archive: ArchiveContext, dataset: str) -> list[str]:
    """Names in `dataset.toml` ([keys], [hierarchy], [audit]) that match nothing archived:
    a typo there would otherwise change nothing, silently."""
    from atdarchive.snapshot import choices

    config = archive.dataset(dataset)
    series = archive.history(dataset).publication_order()
    columns: dict[str, set[str]] = {}
    for entry in series:
        for name, meta in entry.record["tables"].items():
            columns.setdefault(name, set()).update(c["name"] for c in meta.get("schema") or [])
    if not columns:
        return []
    names = sorted(columns)
    out = []
    audit_tables = (config.audit.get("tables") or {})
    for section, tables in (("keys", config.keys), ("hierarchy", config.hierarchy),
                            ("audit.tables", audit_tables)):
        for table in tables:
            if table not in columns:
                out.append(f"dataset.toml [{section}] names table {table!r}, which no release "
                           f"has ({choices(table, names)})")
    for table, spec in config.hierarchy.items():
        for field in ("label", "member"):
            if table in columns and spec.get(field) and spec[field] not in columns[table]:
                out.append(f"dataset.toml [hierarchy.{table}] {field} {spec[field]!r} is not a "
                           f"column of that table")
    every = set().union(*columns.values())
    for field in ("ignore_columns", "flag_columns"):
        for column in config.audit.get(field, []):
            if column not in every:
                out.append(f"dataset.toml [audit] {field} names {column!r}, a column no table "
                           "has")
    return out
