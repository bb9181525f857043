"""The one TOML writer: `dumps(data)` is what `tomllib.loads` reads back as `data`.

The standard library reads TOML but does not write it; every TOML file the
archive writes (`dataset.toml`, `atdarchive.toml`, `atdarchive.lock`) goes
through here. Nested dicts become `[a.b]` tables, dicts inside arrays inline
tables; strings are basic strings with every control character escaped. Keys
keep their order (callers sort where the file should be stable).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f",
            "\r": "\\r"}


def dumps(data: Mapping[str, Any], *, comments: Mapping[str, str] | None = None) -> str:
    """DATA as a TOML document.

    `comments` maps a table's dotted path ("keys", "remote.origin") to a
    comment written above its header; "" is the document's opening comment.
    Values: str, int, float, bool, date/time, lists and dicts of them.
    """
    notes = dict(comments or {})
    lines = _comment(notes.pop("", ""))
    _table(lines, [], data, notes)
    return "\n".join(lines) + "\n"


def _table(lines: list[str], path: list[str], table: Mapping[str, Any],
           notes: Mapping[str, str]) -> None:
    scalars = [(k, v) for k, v in table.items() if not isinstance(v, Mapping)]
    nested = [(k, v) for k, v in table.items() if isinstance(v, Mapping)]
    note = notes.get(".".join(path), "") if path else ""
    if path and (scalars or not nested or note):  # a table of tables needs no header
        if lines:
            lines.append("")
        lines += _comment(note)
        lines.append("[" + ".".join(key(p) for p in path) + "]")
    lines += [f"{key(k)} = {value(v)}" for k, v in scalars]
    for name, sub in nested:
        _table(lines, [*path, name], sub, notes)


def _comment(text: str) -> list[str]:
    """Comment lines; control characters (not allowed even in comments) become spaces."""
    text = "".join(" " if (ch < " " and ch not in "\t\n") or ch == "\x7f" else ch
                   for ch in text)
    return [f"# {line}".rstrip() for line in text.splitlines()]


def key(name: str) -> str:
    """A key: bare when TOML allows it, else a quoted string."""
    return name if _BARE_KEY.fullmatch(name) else string(name)


def string(text: str) -> str:
    """A TOML basic string (quotes, backslashes and control characters escaped)."""
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ch < " " or ch == "\x7f":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def value(item: Any) -> str:
    """One value as it stands on the right of `key = ` (dicts as inline tables)."""
    if isinstance(item, bool):
        return "true" if item else "false"
    if isinstance(item, int):
        return str(int(item))
    if isinstance(item, float):
        return repr(float(item))  # always has '.', 'e', inf or nan: a TOML float
    if isinstance(item, str):
        return string(item)
    if isinstance(item, dt.date) or isinstance(item, dt.time) and item.tzinfo is None:
        return item.isoformat()  # TOML has no time of day with an offset
    if isinstance(item, list | tuple):
        return "[" + ", ".join(value(v) for v in item) + "]"
    if isinstance(item, Mapping):
        return "{" + ", ".join(f"{key(k)} = {value(v)}" for k, v in item.items()) + "}"
    raise TypeError(f"cannot write {type(item).__name__} {item!r} as TOML")
