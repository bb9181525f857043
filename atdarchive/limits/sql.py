"""Bounds on one `atdarchive sql` query: time, memory, spill to disk, threads.

A query is code the user types (or pastes from someone else): a cross join or a
`string_agg` over a large history would otherwise run until killed or fill the machine's
memory and disk. Each bound has a flag on `atdarchive sql` and a keyword on
`Archive.sql`; a flag given on the command line wins over the environment, which wins
over the default (a flag is the user asking for this one query).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from atdarchive.errors import AtdError
from atdarchive.limits import LimitExceeded, register, value

register("sql.seconds", 300, "seconds",
         "time a SQL query may run (DuckDB's work and fetching its result)")
register("sql.memory_bytes", 2 * 2**30, "bytes",
         "memory a SQL query may use (DuckDB's memory_limit, and again its result)")
register("sql.temp_bytes", 4 * 2**30, "bytes",
         "disk a SQL query may spill to (DuckDB's max_temp_directory_size)")
register("sql.threads", 4, "threads", "threads DuckDB may use for one SQL query")

FLAGS = {"sql.seconds": "--timeout SECONDS", "sql.memory_bytes": "--memory-limit SIZE"}
_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$", re.IGNORECASE)


def parse_size(text: str | float, option: str = "--memory-limit") -> int:
    """`512MB`, `2GiB`, `1.5GB` or a number of bytes (DuckDB's units: MB = 10^6 bytes,
    MiB = 2^20)."""
    if isinstance(text, int | float):
        size = float(text)
    else:
        match = _SIZE.match(text)
        unit = match.group(2).lower() if match else ""
        if not match or unit not in _UNITS:
            raise AtdError(f"{option} {text!r}: give a size such as 512MB, 2GiB or a number "
                           "of bytes")
        size = float(match.group(1)) * _UNITS[unit]
    if size < 1:
        raise AtdError(f"{option} {text!r}: must be positive")
    return int(size)


def parse_seconds(seconds: float, option: str = "--timeout") -> float:
    if not seconds > 0:
        raise AtdError(f"{option} {seconds!r}: must be a positive number of seconds")
    return float(seconds)


@dataclass(frozen=True)
class SqlBounds:
    """The bounds in force for one query."""

    seconds: float
    memory_bytes: int
    temp_bytes: int
    threads: int

    @classmethod
    def resolve(cls, timeout: float | None = None,
                memory_limit: str | float | None = None) -> SqlBounds:
        """Flags (TIMEOUT, MEMORY_LIMIT) over the environment over the defaults."""
        threads = max(1, min(int(value("sql.threads")), os.cpu_count() or 1))
        return cls(
            seconds=parse_seconds(timeout) if timeout is not None else
            float(value("sql.seconds")),
            memory_bytes=parse_size(memory_limit) if memory_limit is not None else
            int(value("sql.memory_bytes")),
            temp_bytes=int(value("sql.temp_bytes")), threads=threads)

    def limit(self, name: str) -> float:
        return {"sql.seconds": self.seconds, "sql.memory_bytes": self.memory_bytes,
                "sql.temp_bytes": self.temp_bytes}[name]


class SqlLimitExceeded(LimitExceeded):
    """A query stopped at one of its bounds: one line naming the bound in force (the flag's
    value, not only the default) and both ways to raise it."""

    def __init__(self, name: str, bounds: SqlBounds, what: str) -> None:
        super().__init__("sql", name, None, "the query was stopped", bounds.limit(name),
                         what=what, flag=FLAGS.get(name))
