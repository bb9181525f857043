"""A dataset's configuration: `datasets/<name>/dataset.toml`.

Holds the title, agency, source URL, description, the key columns of each
table, and an optional extraction spec that overrides table detection.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from atdarchive.errors import AtdError
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

    @classmethod
    def load(cls, path: Path) -> DatasetConfig:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise AtdError(f"{path}: invalid TOML: {exc}") from None
        keys = data.get("keys", {})
        if not isinstance(keys, dict) or not all(
            isinstance(v, list) and all(isinstance(c, str) for c in v) for v in keys.values()
        ):
            raise AtdError(f"{path}: [keys] must map table names to lists of column names")
        return cls(
            name=str(data.get("name", path.parent.name)),
            title=str(data.get("title", "")),
            agency=str(data.get("agency", "")),
            source_url=str(data.get("source_url", "")),
            description=str(data.get("description", "")),
            keys={str(k): list(v) for k, v in keys.items()},
            extract=dict(data.get("extract", {})),
        )

    def save(self, path: Path) -> None:
        atomic_write(path, self.to_toml().encode("utf-8"))

    def to_toml(self) -> str:
        lines = [f"name = {_toml_value(self.name)}"]
        for attr in ("title", "agency", "source_url", "description"):
            lines.append(f"{attr} = {_toml_value(getattr(self, attr))}")
        lines.append("")
        lines.append("# key columns per table; tables not listed get an inferred key")
        lines.append("[keys]")
        for table, cols in sorted(self.keys.items()):
            lines.append(f"{_toml_key(table)} = {_toml_value(cols)}")
        if self.extract:
            lines.append("")
            lines.extend(_toml_tables(["extract"], self.extract))
        return "\n".join(lines) + "\n"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "title": self.title, "agency": self.agency,
            "source_url": self.source_url, "description": self.description,
            "keys": self.keys,
        }


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
    return DatasetConfig(name=check_name("dataset", name), **fields)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        inner = ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items())
        return "{" + inner + "}"
    text = str(value)
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _toml_key(key: str) -> str:
    if key and all(c.isalnum() or c in "_-" for c in key):
        return key
    return _toml_value(key)


def _toml_tables(prefix: list[str], table: dict[str, Any]) -> list[str]:
    scalars = {k: v for k, v in table.items() if not isinstance(v, dict)}
    nested = {k: v for k, v in table.items() if isinstance(v, dict)}
    lines = ["[" + ".".join(_toml_key(p) for p in prefix) + "]"]
    lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in scalars.items()]
    for key, sub in nested.items():
        lines.append("")
        lines.extend(_toml_tables([*prefix, key], sub))
    return lines
