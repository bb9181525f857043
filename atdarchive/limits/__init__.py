"""Every resource bound in one registry: one owner for "what is the limit".

Each area declares its bounds in its own file (`limits/ingest.py`, `limits/network.py`,
…) with `register(...)`; every command asks `value(name)`. A bound is raised or
lowered by the user's environment (`ATDARCHIVE_LIMIT_<NAME>`, e.g.
`ATDARCHIVE_LIMIT_INGEST_MAX_COLUMNS=50000`), by a command's flag for one run, or by a
caller's overrides (a dataset's `[limits]`, a library caller's settings). Precedence,
the one rule every command follows: flag > environment > overrides > default. README's
"Guarantees → Bounds" table is `table()`, so the documentation cannot drift from the code.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from collections.abc import Mapping
from dataclasses import dataclass

from atdarchive.errors import AtdError
from atdarchive.util import number


@dataclass(frozen=True)
class Limit:
    name: str  # "area.what", e.g. "ingest.max_columns"
    default: float
    unit: str  # "bytes", "columns", "seconds", ...
    what: str  # one line for README and error messages

    @property
    def env(self) -> str:
        return "ATDARCHIVE_LIMIT_" + self.name.replace(".", "_").upper()


LIMITS: dict[str, Limit] = {}


class LimitExceeded(AtdError):
    """Input that would cost more than a documented bound: refused before the expensive step.
    The one wording of every refusal: what, how much, the bound in force, how to raise it."""

    def __init__(self, subject: str, name: str, actual: float | None = None,
                 detail: str = "", limit: float | None = None, *, what: str | None = None,
                 flag: str | None = None, source: str | None = None) -> None:
        """LIMIT: the bound in force when it is not the registry's (a flag, an override);
        WHAT: the measured thing when not the registry's words; FLAG: the command flag
        that raises it too; SOURCE: the file that set the bound in force."""
        bound = LIMITS[name]
        limit = value(name) if limit is None else limit
        got = f" ({human(actual, bound.unit)})" if actual is not None else ""
        where = f", set by {source}" if source else ""
        how = f"{flag} or {bound.env}=N" if flag else f"{bound.env}=N"
        more = f"; {detail}" if detail else ""
        super().__init__(f"{subject}: {what or bound.what}{got} exceeds the limit of "
                         f"{human(limit, bound.unit)} ({name}{where}; raise it with "
                         f"{how}){more}")


def register(name: str, default: float, unit: str, what: str) -> Limit:
    """Declare one bound (at import of its area's module)."""
    if name in LIMITS:
        raise ValueError(f"limit {name} registered twice")
    LIMITS[name] = limit = Limit(name, default, unit, what)
    return limit


def _load_all() -> None:
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")


def value(name: str, overrides: Mapping[str, float] | None = None,
          flag: float | None = None) -> float:
    """The bound in force: a command's FLAG, else the user's environment, else the
    caller's OVERRIDES (a dataset's `[limits]`), else the default."""
    if name not in LIMITS:
        _load_all()
    bound = LIMITS[name]
    if flag is not None:
        if not flag > 0:
            raise AtdError(f"{name}: {flag!r} must be positive")
        return flag
    raw = os.environ.get(bound.env)
    if raw:
        try:
            parsed = float(raw)
        except ValueError:
            raise AtdError(f"{bound.env}={raw!r}: not a number") from None
        if parsed <= 0:
            raise AtdError(f"{bound.env}={raw!r}: must be positive")
        return int(parsed) if parsed.is_integer() else parsed
    if overrides and name in overrides:
        return overrides[name]
    return bound.default


def check(subject: str, name: str, actual: float,
          overrides: Mapping[str, float] | None = None, detail: str = "") -> None:
    """Raise `LimitExceeded` when `actual` is over the bound `name`."""
    limit = value(name, overrides)
    if actual > limit:
        raise LimitExceeded(subject, name, actual, detail, limit)


def raised(declared: Mapping[str, object]) -> dict[str, float]:
    """The entries of a dataset's `[limits]` (names without `ingest.`) above the defaults:
    those came with the archive and wait for the user's confirmation."""
    known = {bound.name: bound for bound in table()}
    out = {}
    for key, amount in declared.items():
        bound = known.get(key if "." in key else f"ingest.{key}")
        if bound is not None and isinstance(amount, int | float) and amount > bound.default:
            out[key] = amount
    return out


def human(amount: float, unit: str) -> str:
    """A bound as a person would write it: `64 MB` or `2 GiB` when exact, `1 second`."""
    if unit == "bytes":
        for scale, suffix in ((2**30, "GiB"), (10**9, "GB"), (2**20, "MiB"), (10**6, "MB"),
                              (2**10, "KiB"), (10**3, "kB")):
            if amount >= scale and amount % scale == 0:
                return f"{int(amount // scale)} {suffix}"
        for scale, suffix in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
            if amount >= scale:
                return f"{amount / scale:.3g} {suffix}"
        return f"{number(int(amount))} bytes"
    shown = number(int(amount)) if float(amount).is_integer() else f"{amount:g}"
    return f"{shown} {unit.removesuffix('s') if amount == 1 else unit}"


def table() -> list[Limit]:
    """Every registered bound, by name (README's bounds table)."""
    _load_all()
    return sorted(LIMITS.values(), key=lambda b: b.name)
