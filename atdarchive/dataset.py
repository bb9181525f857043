"""A dataset's configuration: `datasets/<name>/dataset.toml`.

Holds the title, agency, source URL, description, the key columns of each
table, hierarchy overrides (`[hierarchy.TABLE]`: shape = "mixed" | "sparse" |
"none", label, member, names; `atdarchive.hierarchy`), an optional
extraction spec that overrides table detection, and optional `[limits]` on ingest
(`atdarchive.limits.ingest`: lowered ones apply, raised ones once confirmed).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from atdarchive.errors import AtdError
from atdarchive.sources import Source, parse_sources, sources_problem
from atdarchive.tomlwriter import dumps
from atdarchive.util import atomic_write, check_name


@dataclass
class DatasetConfig:
    name: str
    title: str = ""
    agency: str = ""
    source_url: str = ""
    description: str = ""
    keys: dict[str, list[str]] = field(default_factory=dict)
    extract: dict[str, Any] = field(default_factory=dict)
    hierarchy: dict[str, dict[str, Any]] = field(default_factory=dict)
    audit: dict[str, Any] = field(default_factory=dict)
    sources: list[Source] = field(default_factory=list)  # watched pages and URLs
    timezone: str = "UTC"  # where naive times (flags, file names, refs) are read
    limits: dict[str, float] = field(default_factory=dict)  # ingest bounds, "ingest." dropped

    @classmethod
    def load(cls, path: Path) -> DatasetConfig:
        """Read and check `dataset.toml` against SCHEMA: one line naming the bad key."""
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError, RecursionError) as exc:
            raise AtdError(f"{path}: invalid TOML: {str(exc).splitlines()[0]}") from None
        problem = schema_problem(data)
        if problem:
            raise AtdError(f"{path}: {problem}")
        return cls(
            name=data.get("name", path.parent.name),
            title=data.get("title", ""),
            agency=data.get("agency", ""),
            source_url=data.get("source_url", ""),
            description=data.get("description", ""),
            keys={k: list(v) for k, v in data.get("keys", {}).items()},
            extract=dict(data.get("extract", {})),
            hierarchy={k: dict(v) for k, v in data.get("hierarchy", {}).items()},
            audit=dict(data.get("audit", {})),
            sources=parse_sources(data.get("sources", [])),
            timezone=data.get("timezone", "UTC"),
            limits=dict(data.get("limits", {})),
        )

    def save(self, path: Path) -> None:
        atomic_write(path, self.to_toml().encode("utf-8"))

    def to_toml(self) -> str:
        data: dict[str, Any] = {"name": self.name, "title": self.title, "agency": self.agency,
                                "source_url": self.source_url, "description": self.description,
                                "timezone": self.timezone,
                                "keys": dict(sorted(self.keys.items()))}
        if self.extract:
            data["extract"] = self.extract
        if self.hierarchy:
            data["hierarchy"] = self.hierarchy
        if self.audit:
            data["audit"] = self.audit
        if self.sources:
            data["sources"] = [s.to_toml() for s in self.sources]
        if self.limits:
            data["limits"] = dict(sorted(self.limits.items()))
        return dumps(data, comments={
            "keys": "key columns per table; tables not listed get an inferred key"})

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "title": self.title, "agency": self.agency,
            "source_url": self.source_url, "description": self.description,
            "keys": self.keys, "hierarchy": self.hierarchy, "audit": self.audit,
            "limits": self.limits, "timezone": self.timezone,
        }


TEXT_FIELDS = ("title", "agency", "source_url", "description")
SPEC_FIELDS = {"sheet": str, "anchor": str, "range": str, "header_rows": int, "rename": dict,
               "key": list}


def _is_str_list(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) for v in value)


def schema_problem(data: dict[str, Any]) -> str | None:
    """Why a parsed `dataset.toml` is not a dataset config (None when it is one).

    A config can come from someone else's archive, so every key's type is
    checked here once; nothing downstream has to guess.
    """
    from atdarchive.limits.ingest import limits_problem

    allowed = {"name", *TEXT_FIELDS, "timezone", "keys", "extract", "hierarchy", "audit",
               "sources", "limits"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        return f"unknown key {unknown[0]!r} (known: {', '.join(sorted(allowed))})"
    name = data.get("name")
    if name is not None:
        try:
            check_name("dataset", name if isinstance(name, str) else repr(name))
        except AtdError as exc:
            return f"name: {exc}"
    for field_name in TEXT_FIELDS:
        if not isinstance(data.get(field_name, ""), str):
            return f"{field_name} must be a string"
    if "timezone" in data:
        from atdarchive.instants import check_zone

        try:
            check_zone(data["timezone"] if isinstance(data["timezone"], str) else "?")
        except AtdError as exc:
            return f"timezone: {exc}"
    keys = data.get("keys", {})
    if not isinstance(keys, dict):
        return "[keys] must be a table mapping table names to lists of column names"
    for table, columns in keys.items():
        if not _is_str_list(columns):
            return f"keys.{table} must be a non-empty list of column names"
    problem = (_hierarchy_problem(data.get("hierarchy", {}))
               or _audit_problem(data.get("audit", {}))
               or sources_problem(data.get("sources", []))
               or (limits_problem(data["limits"]) if "limits" in data else None))
    if problem:
        return problem
    extract = data.get("extract", {})
    if not isinstance(extract, dict):
        return "extract must be a table (e.g. [extract.tables.NAME] with sheet, anchor ...)"
    if set(extract) - {"tables"}:
        return f"extract: unknown key {sorted(set(extract) - {'tables'})[0]!r} (known: tables)"
    tables = extract.get("tables", {})
    if not isinstance(tables, dict):
        return "extract.tables must be a table of tables"
    for table, entry in tables.items():
        where = f"extract.tables.{table}"
        if not isinstance(entry, dict):
            return f"{where} must be a table (sheet, anchor or range, header_rows, key ...)"
        problem = _typed_fields(entry, SPEC_FIELDS, where)
        if problem:
            return problem
        if "key" in entry and not _is_str_list(entry["key"]):
            return f"{where}.key must be a non-empty list of column names"
        if not all(isinstance(v, str) for v in entry.get("rename", {}).values()):
            return f"{where}.rename must map column names to new names"
    return None


HIERARCHY_FIELDS = {"shape": str, "label": str, "member": str, "names": list}


TYPE_WORDS = {int: "an integer", str: "a string", list: "a list", dict: "a table",
              bool: "true or false"}


def _typed_fields(entry: dict[str, Any], fields: dict[str, type], where: str,
                  bools: tuple[str, ...] = ()) -> str | None:
    """The first key of `entry` that `fields` does not know, or whose value has the wrong
    type (TOML booleans are not ints, except the `bools`)."""
    for key, value in entry.items():
        kind = fields.get(key)
        if kind is None:
            return f"{where}: unknown key {key!r} (known: {', '.join(fields)})"
        if not isinstance(value, kind) or (isinstance(value, bool) and key not in bools):
            return f"{where}.{key} must be {TYPE_WORDS.get(kind, 'a ' + kind.__name__)}"
        if kind is list and not all(isinstance(v, str) for v in value):
            return f"{where}.{key} must be a list of column names"
    return None


def _hierarchy_problem(tables: object) -> str | None:
    if not isinstance(tables, dict):
        return "[hierarchy] must be a table of [hierarchy.TABLE] tables"
    for table, entry in tables.items():
        where = f"hierarchy.{table}"
        if not isinstance(entry, dict):
            return f"{where} must be a table (shape, label, member, names)"
        problem = _typed_fields(entry, HIERARCHY_FIELDS, where)
        if problem:
            return problem
        if entry.get("shape", "mixed") not in ("mixed", "sparse", "none"):
            return f"{where}.shape must be one of mixed, sparse, none"
        names = entry.get("names")
        if names is not None and not (_is_str_list(names) and len(names) == 2):
            return f"{where}.names must be two column names"
    return None


AUDIT_FIELDS = {"ignore_columns": list, "flag_columns": list, "provisional_periods": int}
AUDIT_TABLE_FIELDS = {**AUDIT_FIELDS, "role": str, "totals": bool}


def _audit_problem(section: object) -> str | None:
    """`[audit]`: columns to ignore, flag columns, provisional periods; per table also the
    time role and whether totals are checked (`atdarchive.semantics`)."""
    from atdarchive.semantics import ROLES

    if not isinstance(section, dict):
        return "[audit] must be a table (ignore_columns, flag_columns, provisional_periods, " \
               "[audit.tables.TABLE])"
    tables = section.get("tables", {})
    problem = _typed_fields({k: v for k, v in section.items() if k != "tables"},
                            AUDIT_FIELDS, "audit")
    if problem or not isinstance(tables, dict):
        return problem or "audit.tables must be a table of [audit.tables.TABLE] tables"
    for table, entry in tables.items():
        where = f"audit.tables.{table}"
        if not isinstance(entry, dict):
            return f"{where} must be a table (role, ignore_columns, flag_columns, ...)"
        problem = _typed_fields(entry, AUDIT_TABLE_FIELDS, where, bools=("totals",))
        if problem:
            return problem
        if entry.get("role", ROLES[0]) not in ROLES:
            return f"{where}.role must be one of {', '.join(ROLES)}"
    return None


def parse_key_option(values: list[str]) -> dict[str, list[str]]:
    """`--key TABLE=COL,COL` (repeatable) into {table: [cols]}."""
    keys: dict[str, list[str]] = {}
    for value in values:
        table, sep, cols = value.partition("=")
        columns = [c.strip() for c in cols.split(",") if c.strip()]
        if not sep or not table.strip() or not columns:
            raise AtdError(f"--key {value!r}: expected TABLE=COLUMN[,COLUMN...]")
        keys[table.strip()] = columns
    return keys


def new_config(name: str, **fields: Any) -> DatasetConfig:
    if fields.get("timezone"):
        from atdarchive.instants import check_zone

        check_zone(fields["timezone"])
    return DatasetConfig(name=check_name("dataset", name), **fields)

