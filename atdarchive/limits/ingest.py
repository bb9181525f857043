"""Bounds on what reading one publication file may cost (README "Guarantees" → bounds).

Each is checked against what the file says about itself *before* the expensive step:
the file's size (stat), a CSV's first record (from a bounded prefix), a Parquet footer
(rows, columns, uncompressed row-group sizes), a workbook's zip directory and sheet
extents. What passes is checked once more on the tables read, so no
reader can hand the archive a table (or a ledger line) past these bounds. Real releases
sit far below every default (README: the table of real-series maxima).

A dataset may set its own in `dataset.toml`'s `[limits]` (names without ``ingest.``):
a value below the default always applies; a value above it came with the archive and
applies only once the user confirmed it (`atdarchive.trust`). The user's environment
(`ATDARCHIVE_LIMIT_INGEST_...`) overrides both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from atdarchive.errors import IngestError
from atdarchive.limits import LIMITS, LimitExceeded, human, register
from atdarchive.limits import value as limit_value

PREFIX = "ingest."

register("ingest.max_file_bytes", 1 << 30, "bytes", "publication file size")
register("ingest.max_json_bytes", 256 << 20, "bytes", "JSON document size")
register("ingest.max_header_bytes", 1 << 20, "bytes", "CSV header record")
register("ingest.max_column_name_chars", 1_000, "characters", "column name")
register("ingest.max_columns", 10_000, "columns", "columns in one table")
register("ingest.max_rows", 50_000_000, "rows", "rows in one table")
register("ingest.max_cells", 200_000_000, "cells", "cells (rows x columns) in one table")
register("ingest.max_parquet_footer_bytes", 16 << 20, "bytes",
         "Parquet footer (metadata, parsed into ~13x its size)")
register("ingest.max_parquet_uncompressed_bytes", 2 << 30, "bytes",
         "Parquet data uncompressed (footer's row groups)")
register("ingest.max_zip_uncompressed_bytes", 1 << 30, "bytes",
         "workbook unpacked (zip members)")
register("ingest.max_sheet_cells", 20_000_000, "cells", "sheet grid (A1 to its last cell)")
register("ingest.max_merged_cells", 1_000_000, "cells", "cells covered by merged ranges")
register("ledger.max_line_bytes", 16 << 20, "bytes", "ledger line")

#: The names a dataset's `[limits]` may use (without the ``ingest.`` prefix).
DATASET_KEYS = tuple(sorted(n.removeprefix(PREFIX) for n in LIMITS if n.startswith(PREFIX)))


class IngestLimitExceeded(LimitExceeded, IngestError):
    """A publication over an ingest bound: refused before it is read (one line naming the
    file and the bound). An `IngestError` too, so `--keep-unparsed` keeps it as evidence."""

    def __init__(self, subject: str, name: str, actual: float | None = None,
                 detail: str = "", overrides: Mapping[str, float] | None = None,
                 source: str = "") -> None:
        # the registry's wording, with the bound in force (a dataset's may differ)
        LimitExceeded.__init__(self, subject, name, actual, detail,
                               limit_value(name, overrides), source=source or None)


@dataclass(frozen=True)
class IngestBounds:
    """The ingest bounds in force for one commit: defaults and environment, plus a
    dataset's `[limits]` (lowered, or raised and confirmed); `waiting` holds raised
    values not yet confirmed, named in the refusal with `confirm`."""

    overrides: Mapping[str, float] = field(default_factory=dict)
    waiting: Mapping[str, float] = field(default_factory=dict)
    origin: str = ""
    confirm: str = ""

    def value(self, name: str) -> float:
        return limit_value(name, self.overrides)

    def check(self, subject: str, name: str, actual: float, detail: str = "") -> None:
        """Raise `IngestLimitExceeded` when `actual` is over the bound `name`."""
        if actual > self.value(name):
            self.refuse(subject, name, actual, detail)

    def refuse(self, subject: str, name: str, actual: float | None = None,
               detail: str = "") -> NoReturn:
        waiting = self.waiting.get(name)
        if waiting is not None:
            detail = "; ".join(filter(None, (detail, (
                f"{self.origin} raises it to {human(waiting, LIMITS[name].unit)}, waiting "
                f"for your confirmation: {self.confirm}"))))
        source = self.origin if name in self.overrides else ""
        raise IngestLimitExceeded(subject, name, actual, detail, self.overrides, source)


DEFAULT = IngestBounds()


def limits_problem(table: object) -> str | None:
    """Why a `dataset.toml` `[limits]` table is not one (None when it is): known names,
    positive numbers."""
    if not isinstance(table, dict):
        return "[limits] must be a table of limit names (without 'ingest.') and numbers"
    for key, amount in table.items():
        if key not in DATASET_KEYS:
            return f"limits: unknown key {key!r} (known: {', '.join(DATASET_KEYS)})"
        if isinstance(amount, bool) or not isinstance(amount, int | float) or not amount > 0:
            return f"limits.{key} must be a positive number"
    return None


def dataset_bounds(root: Path, dataset: str, declared: Mapping[str, Any]) -> IngestBounds:
    """The bounds for committing to DATASET: its lowered limits always, its raised ones
    only once confirmed for this archive (`atdarchive trust confirm limits DATASET`)."""
    if not declared:
        return DEFAULT
    from atdarchive.trust import is_confirmed, limits_setting

    named = {PREFIX + k: float(v) for k, v in declared.items() if PREFIX + k in LIMITS}
    raised = {n: v for n, v in named.items() if v > LIMITS[n].default}
    setting = limits_setting(root, dataset, dict(declared))
    confirmed = bool(raised) and is_confirmed(root, setting)
    overrides = {n: _whole(v) for n, v in named.items() if n not in raised or confirmed}
    return IngestBounds(overrides=overrides,
                        waiting={} if confirmed else {n: _whole(v) for n, v in raised.items()},
                        origin=setting.origin, confirm=setting.confirm)


def _whole(amount: float) -> float:
    return int(amount) if float(amount).is_integer() else amount
