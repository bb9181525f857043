"""Forensic audit: recycled releases, silent revisions, period mismatches — as data.

This is why the archive exists (DESIGN.md, "What counts as evidence of a silent
revision"): a release presented as September 2022 that carries May 2021 numbers
must be flagged automatically, with the evidence. `audit()` walks a dataset's
history in publication order and returns `Finding`s; rendering (HTML, Markdown,
text) lives in `atdarchive.render.audit_report`.

Kinds (severity in brackets; thresholds are fields of `AuditOptions`):

* ``identical_republish`` [warning] — same bytes as the parent (record
  ``identical_to``) or every table's content fingerprint equal to the parent's.
* ``recycled_release`` [alert; warning when only some tables match] — a table
  whose rows equal (on their *value columns*) at least ``recycled_share`` (90%)
  of the rows of an earlier release that is not the parent, and at least
  ``recycled_margin`` (5 points) more than they match the parent. Value columns
  are all columns except those constant over the whole table (a date stamp
  column) and stamp-like names (``as of``, ``updated``, ``run date``...), so a
  table equal to an older one apart from its date column is caught. The match
  uses per-row value hashes (DuckDB ``hash()``, cached under
  ``.atdarchive/derived/audit/vh/``) with a bottom-k sketch to pick candidates,
  never pairwise diffs of all history. Tables under ``recycled_min_rows`` rows
  are not judged (two-row tables flap back and forth honestly).
* ``period_mismatch`` [warning; alert when the data goes backwards] — the
  latest date the release states about its data (``record["stated_dates"]``:
  as of / data from / through / run date) is older than the parent's, or more
  than ``period_days`` (45) before the claimed period end, the file name's date
  (``..08292025.xlsx``) or the publication date; or the file name's date is
  more than ``period_days`` away from the publication date.
* ``silent_revision`` [warning; info when announced] — cells of rows present in
  both the parent and the release whose value changed (the diff engine's
  ``cells_changed``), excluding *fills* (a cell that was empty or 0, e.g. a
  month not yet reported), updates of the parent's *open period* (per row, the
  right-most month column holding a number: its month was still being counted)
  and running totals (a ``Total``/``YTD``/``Overall`` column) that moved on a row
  where a period grew.
  ``announced`` is true when the message matches ``revision_pattern``. One
  finding per release and table.
* ``outlier_change`` [alert] — a revised cell of a keyed table whose jump is at
  least ``outlier_threshold`` (1.0 = 100%; the jump is |new - old| / the smaller
  of the two, so a doubling and a halving both count 100%, a fall to 0 counts
  infinite) and whose old value is at least ``outlier_min_base`` (1 -> 3 is not
  news). Keyless tables pair rows by guesswork, so their changes are not judged.
* ``vanished_rows`` / ``reappeared_rows`` [warning / info] — keys that disappear
  from the next release / keys that come back after having vanished.
* ``duplicate_key`` [warning] — a key value that repeats within the release (ICE
  lists one facility twice): those rows are matched among themselves, by content,
  then order (`atdarchive.identity`), the rest of the table by key.
* ``row_renamed`` [info] — rows matched although their key changed slightly
  (truncation, case, spacing, one typo: "BINGHAMTON" -> "BINGHAMPTON"); their
  key cells are not counted as revisions.
* ``schema_change`` [warning; info when only period columns come and go, as in
  a rolling 12-month table] — column added, removed, renamed, type changed (not
  int <-> float: the reader types whole numbers as int), or unit changed (most
  rows of a numeric column scaled by the same power of ten).
* ``table_added`` / ``table_removed`` [info / warning]; a table that comes back
  identical to an earlier copy says so (``same_as``) rather than "recycled".
* ``channel_discrepancy`` [warning; alert past ``outlier_threshold``] — with
  two or more channels: each release of a later channel against the first
  channel's release of the same ``period`` (else the nearest publication date).

Derived data (value hashes, per-pair analyses) is cached under
``<archive>/.atdarchive/derived/audit/`` — rebuildable, never committed.
"""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from atdarchive import checks
from atdarchive.checks import folded_column, restoration, unparsed, watch_events
from atdarchive.checks.base import RANK as _RANK
from atdarchive.checks.base import SEVERITIES, AuditOptions, Finding, Release, row_name
from atdarchive.checks.base import finding as _finding
from atdarchive.checks.base import other as other_release
from atdarchive.context import ArchiveContext
from atdarchive.dates import file_name_date
from atdarchive.derived import flags_stamp, save_flags
from atdarchive.errors import AtdError
from atdarchive.formats import AUDIT_VERSION, HIERARCHY_VERSION
from atdarchive.history import Entry, History
from atdarchive.progress import Progress
from atdarchive.semantics import (
    TOTAL_COLUMN_RE,
    TableSemantics,
    data_date,
    date_column,
    describe,
    period_token,
)
from atdarchive.snapshot import Snapshot
from atdarchive.util import number, published_day

__all__ = [
    "SEVERITIES",
    "AuditOptions",
    "AuditReport",
    "Finding",
    "audit",
    "claimed_dates",
    "file_name_date",
    "findings_for_snapshot",
    "parse_period_end",
]

DATA_DATES_VERSION = 1  # bump when `semantics.data_date` changes what it finds
DATA_DATE_KINDS = ("as_of", "data_from", "through", "run_date")
#: Column names that are stamps of the release, not values (excluded from value hashes).
STAMP_COLUMN_RE = re.compile(
    r"(?i)(as[\s_]?of|updated|retrieved|run[\s_]?date|report[\s_]?date|extract|published)")
SKETCH_K = 128
#: Cells kept per table in the cached pair analysis (findings show `max_examples`).
CACHE_CELLS = 200
CACHE_KEYS = 10_000
UNIT_FACTORS = tuple(10.0 ** k for k in range(-6, 7) if k)


@dataclass
class AuditReport:
    """Everything `audit` found: the releases looked at and the findings about them."""

    dataset: str
    options: AuditOptions
    releases: list[dict[str, Any]]
    findings: list[Finding]
    channels: list[str]

    def counts(self) -> dict[str, Any]:
        by_kind: dict[str, int] = {}
        by_sev = dict.fromkeys(SEVERITIES, 0)
        for f in self.findings:
            by_kind[f.kind] = by_kind.get(f.kind, 0) + 1
            by_sev[f.severity] += 1
        return {"findings": len(self.findings), "by_severity": by_sev,
                "by_kind": dict(sorted(by_kind.items()))}

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "audit_version": AUDIT_VERSION,
            "channels": self.channels,
            "options": asdict(self.options),
            "counts": self.counts(),
            "releases": self.releases,
            "findings": [f.to_json() for f in self.findings],
        }


# ---------------------------------------------------------------- dates


def _date(text: str | None, zone: str | None = None) -> dt.date | None:
    """The day of a publication time, in the zone its record gives (AtdError-free)."""
    if not text:
        return None
    try:
        return published_day(text, zone)
    except (ValueError, AtdError):
        return None


def _month_end(year: int, month: int) -> dt.date:
    return dt.date(year, month, calendar.monthrange(year, month)[1])


def parse_period_end(period: str | None) -> dt.date | None:
    """Last day of a claimed period: 2022-09, 2022-09-15, 2022, 2022-Q3, FY2025, FY25 Q2."""
    if not period:
        return None
    text = period.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return dt.date.fromisoformat(text)
        if m := re.fullmatch(r"(\d{4})-(\d{1,2})", text):
            return _month_end(int(m[1]), int(m[2]))
        if m := re.fullmatch(r"(?i)fy\s?'?(\d{2}|\d{4})(?:[\s_-]*q([1-4]))?", text):
            year = int(m[1]) + (2000 if len(m[1]) == 2 else 0)
            if m[2]:  # federal fiscal quarters: Q1 = Oct-Dec of the year before
                month = (9 + 3 * int(m[2])) % 12 or 12
                return _month_end(year - 1 if month >= 10 else year, month)
            return dt.date(year, 9, 30)
        if m := re.fullmatch(r"(?i)(\d{4})[\s_-]*q([1-4])", text):
            return _month_end(int(m[1]), 3 * int(m[2]))
        if re.fullmatch(r"\d{4}", text):
            return dt.date(int(text), 12, 31)
    except ValueError:
        return None
    return None


def claimed_dates(record: dict[str, Any]) -> dict[str, str]:
    """What the release claims about its date: published, period end, file name date."""
    out: dict[str, str] = {}
    pub = _date(record.get("published"), record.get("published_zone"))
    if pub:
        out["published"] = pub.isoformat()
    end = parse_period_end(record.get("period"))
    if end:
        out["period"] = end.isoformat()
    name = (record.get("original") or {}).get("name") or ""
    fdate = file_name_date(name)
    if fdate and record.get("published_source") != "file_name":  # not a second witness
        out["file_name"] = fdate.isoformat()
    return out


def _stated(record: dict[str, Any]) -> list[dict[str, Any]]:
    return [d for d in record.get("stated_dates") or []
            if d.get("kind") in DATA_DATE_KINDS and _date(d.get("date"))]


def latest_stated(record: dict[str, Any], slack_days: int = 45,
                  data: Sequence[dict[str, Any]] = ()) -> dict[str, Any] | None:
    """The latest data date a release states about itself (ignoring dates far in its
    future), its `data` dates (what its tables reach, `_Auditor.data_dates`) counted too."""
    pub = _date(record.get("published"), record.get("published_zone"))
    dates = [d for d in [*_stated(record), *data]
             if pub is None or _date(d["date"]) <= pub + dt.timedelta(days=slack_days)]
    return max(dates, key=lambda d: d["date"]) if dates else None


# ---------------------------------------------------------------- the auditor


class _Auditor:
    """Caches shared by the findings of one audit (or one `findings_for_snapshot`)."""

    def __init__(self, archive: ArchiveContext, history: History, options: AuditOptions) -> None:
        self.archive = archive
        self.history = history
        self.options = options
        self.base = archive.layout.audit

        # the diff engine's per-row fingerprints, kept warm at commit time
        self.fp_dir = archive.layout.fingerprints
        config = archive.dataset(history.dataset)
        self.declared_keys = config.keys
        # cached pair analyses hold while the keys they were matched by hold
        self.keys_stamp = json.dumps([config.keys, config.hierarchy, HIERARCHY_VERSION],
                                     sort_keys=True)
        self.audit_config = config.audit
        self._snaps: dict[str, Snapshot] = {}
        self._vh: dict[tuple[str, str], _ValueHashes | None] = {}
        self._pairs: dict[tuple[str, str], dict[str, Any]] = {}  # the last few pairs
        self._revision_re = re.compile(options.revision_pattern)
        self._con: Any = None
        self._data_dates: dict[str, list[dict[str, Any]]] = {}

    def duckdb(self) -> Any:
        """One DuckDB connection for the whole audit (a connection costs ~50 ms)."""
        if self._con is None:
            import duckdb

            self._con = duckdb.connect()
        return self._con

    def snap(self, entry: Entry) -> Snapshot:
        if entry.id not in self._snaps:
            self._snaps[entry.id] = self.archive.snapshot_of(entry.record)
        return self._snaps[entry.id]

    def announced(self, record: dict[str, Any]) -> bool:
        """Revisions the agency announced: the release's message says so, or an
        annotation carries the agency's notice (`atdarchive annotate --announces-revision`)."""
        return bool(self._revision_re.search(record.get("message") or "")
                    or self.history.announced_revision(record.get("id", "")))

    def data_dates(self, entry: Entry) -> list[dict[str, Any]]:
        """Per table with periods or a date key, the latest date its data reaches, as a
        stated date of source "data" (cached on disk by the table file's sha256)."""
        if entry.id in self._data_dates:
            return self._data_dates[entry.id]
        out = []
        snap = self.snap(entry)
        for name, meta in entry.record["tables"].items():
            sem = self.semantics(entry, name)
            key = None if sem.periods else date_column(meta.get("schema") or [])
            if not sem.periods and key is None:
                continue
            # valid while the table and what is asked of it (periods, date key) are the same
            asked = hashlib.sha256(json.dumps([DATA_DATES_VERSION, sem.periods, key],
                                              sort_keys=True).encode()).hexdigest()[:16]
            path = self.base / "datadates" / f"{_table_sha(snap, name)}-{asked}.json"
            try:
                found = json.loads(path.read_text())
            except (FileNotFoundError, ValueError):
                columns = list(sem.periods) or [key]
                try:
                    found = data_date(snap.table(name, columns=columns), sem, key)
                except (OSError, AtdError):
                    continue  # not pulled here: no data date, no finding
                _write_cache(path, json.dumps(found).encode())
            if found:
                text = (f"latest period with values ({found['column']})"
                        if found["kind"] == "data_period" else f"latest {found['column']}")
                out.append({**found, "table": name, "source": "data",
                            "where": f"table {name}", "text": text})
        self._data_dates[entry.id] = out
        return out

    def semantics(self, entry: Entry, table: str) -> TableSemantics:
        """What the table means in time (`atdarchive.semantics`), with `[audit]` applied."""
        return describe(entry.record["tables"][table], self.audit_config, table)

    # -- value hashes (recycled detection) -----------------------------------
    def value_hashes(self, entry: Entry, table: str) -> _ValueHashes | None:
        cache_key = (entry.id, table)
        if cache_key not in self._vh:
            self._vh[cache_key] = _load_value_hashes(self, entry, table)
        return self._vh[cache_key]

    # -- pair analyses (diff vs parent) -------------------------------------
    def pair_keys(self, new: Entry) -> str:
        """What a pair analysis holds while: the key config and the keys `keyresolver.resolve_key`
        gives `new`'s tables now (a newer release can change an inferred key)."""
        from atdarchive.keyresolver import resolve_key

        return json.dumps([self.keys_stamp, {t: resolve_key(
            self.archive, new.dataset, t, channel=new.channel).pair() for t in sorted(
                new.record["tables"])}])

    def pair(self, old: Entry, new: Entry) -> dict[str, Any]:
        """The diff of `new` against `old`, boiled down (cached on disk and in memory:
        the next release's checks ask for it again)."""
        memo = (old.id, new.id)
        if memo in self._pairs:
            return self._pairs[memo]
        path = self.base / "pairs" / f"{old.id[:32]}-{new.id[:32]}.json"
        try:
            cached = json.loads(path.read_text())
            if cached.get("version") == AUDIT_VERSION and cached.get(
                    "keys") == self.pair_keys(new):
                self._pairs = {memo: cached, **dict(list(self._pairs.items())[-2:])}
                return cached
        except (FileNotFoundError, ValueError):
            pass
        result = {**_analyse_pair(self, self.snap(old), self.snap(new)),
                  "keys": self.pair_keys(new)}
        _write_cache(path, json.dumps(result, default=str).encode())
        self._pairs = {memo: result, **dict(list(self._pairs.items())[-2:])}
        return result


def _write_cache(path: Path, data: bytes) -> None:
    """Derived, rebuildable: written via rename (never half a file) but not fsynced."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


# ---------------------------------------------------------------- value hashes


@dataclass
class _ValueHashes:
    rows: int
    columns: list[str]          # value columns hashed (sorted by name)
    unique: np.ndarray          # distinct row hashes, ascending
    counts: np.ndarray          # multiplicity of each

    @property
    def sketch(self) -> np.ndarray:
        return self.unique[:SKETCH_K]


def _qi(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _table_sha(snapshot: Snapshot, table: str) -> str:
    meta = snapshot.record["tables"][table]
    return snapshot.record["files"][meta["file"]]["sha256"]


def _load_value_hashes(aud: _Auditor, entry: Entry, table: str) -> _ValueHashes | None:
    """Row hashes over the value columns, cached by the table file's sha256."""
    snapshot = aud.snap(entry)
    if table not in snapshot.record["tables"]:
        return None
    sha = _table_sha(snapshot, table)
    path = aud.base / "vh" / f"{sha}.arrow"
    try:
        reader = pa.ipc.open_file(pa.memory_map(str(path), "r"))
        data = reader.read_all()
        meta = json.loads(data.schema.metadata[b"atdarchive.vh"])
        if meta.get("version") == AUDIT_VERSION:
            return _ValueHashes(meta["rows"], meta["columns"],
                                data.column("h").to_numpy(), data.column("n").to_numpy())
    except (FileNotFoundError, OSError, pa.ArrowInvalid, KeyError, ValueError, TypeError):
        pass
    result = _compute_value_hashes(aud, snapshot.table(table))
    data = pa.table({"h": pa.array(result.unique, pa.uint64()),
                     "n": pa.array(result.counts, pa.int64())})
    data = data.replace_schema_metadata({b"atdarchive.vh": json.dumps(
        {"version": AUDIT_VERSION, "rows": result.rows, "columns": result.columns}).encode()})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, data.schema) as writer:
        writer.write_table(data)
    tmp.replace(path)
    return result


def _constant(col: pa.ChunkedArray) -> bool:
    """One value in every row (nulls count as a value)."""
    nulls = col.null_count
    if nulls:
        return nulls == len(col)
    try:
        bounds = pc.min_max(col)
        return bounds["min"].as_py() == bounds["max"].as_py()
    except (pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return pc.count_distinct(col).as_py() <= 1


def _compute_value_hashes(aud: _Auditor, table: pa.Table) -> _ValueHashes:
    rows = table.num_rows
    keep = [n for n in table.column_names if not STAMP_COLUMN_RE.search(n)]
    if rows >= 2 and keep:
        varying = [n for n in keep if not _constant(table.column(n))]
        keep = varying or keep
    keep = sorted(keep)
    if keep and rows:
        con = aud.duckdb()
        con.register("audit_t", table.select(keep))
        try:
            sql = f"SELECT hash({', '.join(_qi(n) for n in keep)}) FROM audit_t"
            hashes = con.sql(sql).to_arrow_table().column(0).to_numpy()
        finally:
            con.unregister("audit_t")
    else:
        hashes = np.zeros(rows, np.uint64)
    unique, counts = np.unique(np.asarray(hashes, np.uint64), return_counts=True)
    return _ValueHashes(int(rows), keep, unique, counts.astype(np.int64))


def _shared_rows(a: _ValueHashes, b: _ValueHashes) -> int:
    """Rows of `a` matched by rows of `b` (multiset intersection of row hashes)."""
    _, ia, ib = np.intersect1d(a.unique, b.unique, assume_unique=True, return_indices=True)
    return int(np.minimum(a.counts[ia], b.counts[ib]).sum())


def _share(a: _ValueHashes, b: _ValueHashes) -> float:
    if a.columns != b.columns or max(a.rows, b.rows) == 0:
        return 0.0
    return _shared_rows(a, b) / max(a.rows, b.rows)


def _sketch_screen(aud: _Auditor, mine: _ValueHashes, table: str, pool: list[Entry],
                   floor: float) -> list[Entry]:
    """The releases of `pool` whose bottom-k row-hash sketch shares at least `floor` of its
    entries with `mine`'s — one vectorised membership test for the whole pool."""
    if not pool:
        return []
    sketches = [aud.value_hashes(e, table) for e in pool]
    kept = [(e, v) for e, v in zip(pool, sketches, strict=True)
            if v is not None and v.columns == mine.columns and v.rows]
    if not kept:
        return []
    sizes = np.array([len(v.sketch) for _, v in kept])
    flat = np.concatenate([v.sketch for _, v in kept])
    hit = np.isin(flat, mine.sketch)
    owner = np.repeat(np.arange(len(kept)), sizes)
    shared = np.bincount(owner, weights=hit, minlength=len(kept))
    denom = np.maximum(np.maximum(sizes, len(mine.sketch)), 1)
    return [e for (e, _), ok in zip(kept, shared / denom >= floor, strict=True) if ok]


# ---------------------------------------------------------------- pair analysis


def _key_strings(table: pa.Table, key: Sequence[str]) -> list[str]:
    """One string per row for its key values (stable across the two sides of a diff)."""
    if table.num_rows == 0:
        return []
    parts = [pc.fill_null(pc.cast(table.column(k), pa.string()), "\u2400") for k in key]
    if len(parts) == 1:
        return parts[0].to_pylist()
    return pc.binary_join_element_wise(*parts, "\x1f").to_pylist()


def _row_dicts(table: pa.Table, columns: Sequence[str], limit: int) -> list[dict[str, Any]]:
    return table.select(list(columns)).slice(0, limit).to_pylist() if columns else []


def _per_column(cells: pa.Table) -> dict[str, dict[str, float]]:
    """Per column: cells revised and their net change (sum of new - old)."""
    if cells.num_rows == 0:
        return {}
    grouped = cells.select(["column", "abs_change"]).group_by("column").aggregate(
        [("abs_change", "sum"), ("column", "count")]).to_pylist()
    return {g["column"]: {"cells": g["column_count"], "net": g["abs_change_sum"] or 0.0}
            for g in grouped}


def _cells_to_examples(cells: pa.Table, key_cols: list[str], limit: int) -> list[dict[str, Any]]:
    """Cells ordered by |absolute change| (then |relative change|), as small dicts: the
    biggest number moved comes first, whatever its base."""
    if cells.num_rows == 0:
        return []
    rel = np.abs(cells.column("rel_change").to_numpy(zero_copy_only=False).astype(float))
    absc = np.abs(cells.column("abs_change").to_numpy(zero_copy_only=False).astype(float))
    rel = np.where(np.isnan(rel), -1.0, rel)
    absc = np.where(np.isnan(absc), -1.0, absc)
    order = np.lexsort((-rel, -absc))[:limit]
    picked = cells.take(pa.array(order))
    out = []
    fields = ["column", "old", "new", "abs_change", "rel_change", "old_cell", "new_cell",
              "old_row", "new_row"]
    for row in picked.to_pylist():
        item = {"row": {k: row[k] for k in key_cols}} if key_cols else {}
        item.update({f: row.get(f) for f in fields})
        for f in ("abs_change", "rel_change"):
            if isinstance(item[f], float) and not np.isfinite(item[f]):
                item[f] = None
        out.append(item)
    return out


def _unit_changes(cells: pa.Table, rows_common: int) -> list[dict[str, Any]]:
    """Numeric columns where most rows changed by the same power of ten (a unit change)."""
    out = []
    if cells.num_rows == 0 or rows_common < 3:
        return out
    old = cells.column("old_number").to_numpy(zero_copy_only=False).astype(float)
    new = cells.column("new_number").to_numpy(zero_copy_only=False).astype(float)
    cols = cells.column("column").to_numpy(zero_copy_only=False)
    for name in np.unique(cols):
        sel = (cols == name) & np.isfinite(old) & np.isfinite(new) & (old != 0)
        if sel.sum() < max(3, 0.8 * rows_common):
            continue
        ratio = new[sel] / old[sel]
        med = float(np.median(ratio))
        for factor in UNIT_FACTORS:
            if abs(med / factor - 1) < 0.02 and np.mean(np.abs(ratio / factor - 1) < 0.05) > 0.8:
                out.append({"column": str(name), "factor": factor, "rows": int(sel.sum())})
                break
    return out


def _analyse_pair(aud: _Auditor, old: Snapshot, new: Snapshot) -> dict[str, Any]:
    """The diff of a release against another, boiled down to what findings need (cached)."""
    from atdarchive.diff import diff_snapshots
    from atdarchive.keyresolver import key_resolver

    told, tnew = old.record["tables"], new.record["tables"]
    result: dict[str, Any] = {"version": AUDIT_VERSION, "old": old.id, "new": new.id,
                              "tables_added": sorted(set(tnew) - set(told)),
                              "tables_removed": sorted(set(told) - set(tnew)), "tables": {}}
    for name in sorted(set(told) & set(tnew)):
        if told[name]["fingerprint"] == tnew[name]["fingerprint"]:
            continue
        # a declared key column the table lacks is the same error as in diff and blame
        diff = diff_snapshots(old, new, table=name, cache_dir=aud.fp_dir,
                              key_for=key_resolver(aud.archive, new)).tables[name]
        tab = result["tables"][name] = _boil_table_diff(diff, told[name]["rows"],
                                                        _open_periods(old, name))
        removed = [r["column"] for r in tab["schema_changes"] if r["change"] == "column_removed"]
        if removed and diff.cells_changed.num_rows:
            tab["folded"] = folded_column.detect(old.table(name), diff.cells_changed, removed)
    return result


@dataclass
class _OpenPeriods:
    """Per row of the older table, the period still being counted: its right-most
    period column holding a non-zero number (with its siblings, e.g. July mid/end)."""

    token_of: dict[str, int]      # period column -> token number
    row_token: np.ndarray         # old row -> token number of its open period (-1: none)
    names: list[str]              # token number -> token

    def mask(self, cells: pa.Table) -> pa.Array:
        if not self.token_of or cells.num_rows == 0:
            return pa.array(np.zeros(cells.num_rows, bool))
        cols = cells.column("column").to_pylist()
        col_tok = np.array([self.token_of.get(c, -2) for c in cols], np.int64)
        rows = cells.column("old_row").to_numpy(zero_copy_only=False)
        return pa.array(col_tok == self.row_token[rows])

    def columns(self) -> list[str]:
        used = set(self.row_token[self.row_token >= 0].tolist())
        return sorted(c for c, t in self.token_of.items() if t in used)


def _open_periods(snapshot: Snapshot, table: str) -> _OpenPeriods:
    meta = snapshot.record["tables"][table]
    numeric = [c["name"] for c in meta["schema"]
               if c["type"].startswith(("int", "uint", "double", "float", "decimal"))]
    tokens = {c: period_token(c) for c in numeric}
    periods = [c for c in numeric if tokens[c]]
    names = list(dict.fromkeys(tokens[c] for c in periods))
    token_of = {c: names.index(tokens[c]) for c in periods}
    if len(periods) < 2:
        return _OpenPeriods({}, np.full(meta["rows"], -1, np.int64), [])
    data = snapshot.table(table, columns=periods)
    nonzero = np.column_stack([
        pc.fill_null(pc.not_equal(data.column(c), 0), False).to_numpy(zero_copy_only=False)
        for c in periods])
    last = nonzero.shape[1] - 1 - np.argmax(nonzero[:, ::-1], axis=1)
    col_tokens = np.array([token_of[c] for c in periods], np.int64)
    row_token = np.where(nonzero.any(axis=1), col_tokens[last], -1)
    return _OpenPeriods(token_of, row_token, names)


def _boil_table_diff(diff: Any, rows_old: int, open_periods: _OpenPeriods) -> dict[str, Any]:
    key_cols = diff.key_column_names()
    cells = diff.cells_changed
    schema = [r for r in diff.schema_changes.to_pylist() if r["change"] != "column_reordered"]
    rows_common = rows_old - diff.counts.get("rows_removed", 0)
    units = _unit_changes(cells, rows_common)
    unit_cols = [u["column"] for u in units]
    if unit_cols:
        cells = cells.filter(pc.invert(pc.is_in(cells.column("column"),
                                                pa.array(unit_cols, pa.string()))))
    old_num = cells.column("old_number")
    filled = pc.or_(pc.is_null(cells.column("old")),
                    pc.fill_null(pc.equal(old_num, 0.0), False))
    filled = pc.fill_null(filled, False)
    # the parent's open period (its last reported month, partly counted) is still filling
    in_open = open_periods.mask(cells)
    open_updates = pc.and_(in_open, pc.invert(filled))
    n_open = int(pc.sum(open_updates.cast(pa.int64())).as_py() or 0)
    growing = pc.or_(filled, open_updates)
    revisions = cells.filter(pc.invert(growing))
    if diff.key and revisions.num_rows:  # key cells change only on renamed rows
        revisions = revisions.filter(pc.invert(pc.is_in(revisions.column("column"),
                                                        pa.array(diff.key, pa.string()))))
    # a running total moves when a period is filled in on its row: not a revision
    totals = 0
    if revisions.num_rows and pc.any(growing).as_py():
        grow_rows = cells.filter(growing).column("new_row").to_numpy()
        names = [n for n in revisions.column("column").unique().to_pylist()
                 if TOTAL_COLUMN_RE.search(n or "")]
        moved = pc.and_(pc.is_in(revisions.column("column"), pa.array(names, pa.string())),
                        pa.array(np.isin(revisions.column("new_row").to_numpy(), grow_rows)))
        totals = int(pc.sum(moved.cast(pa.int64())).as_py() or 0)
        revisions = revisions.filter(pc.invert(moved))
    entry: dict[str, Any] = {
        "key": diff.key, "key_source": diff.key_source, "counts": dict(diff.counts),
        "rows_old": rows_old,
        "schema_changes": schema, "unit_changes": units,
        "fills": int(pc.sum(filled.cast(pa.int64())).as_py() or 0),
        "totals_moved": totals, "open_period_updates": n_open,
        "open_period_columns": open_periods.columns(),
        "revisions": revisions.num_rows,
        "revised_rows": len(np.unique(revisions.column("new_row").to_numpy()))
        if revisions.num_rows else 0,
        "revised_columns": sorted(set(revisions.column("column").to_pylist()))[:50],
        "revised_by_column": _per_column(revisions),
        "cells": _cells_to_examples(revisions, key_cols, CACHE_CELLS),
        "removed_count": diff.rows_removed.num_rows, "added_count": diff.rows_added.num_rows,
        "duplicate_keys": [d for d in diff.duplicate_keys if d["release"] == "new"],
        "renamed": [{"old_key": dict(zip(diff.key, r["old_key"], strict=True)),
                     "new_key": dict(zip(diff.key, r["new_key"], strict=True))}
                    for r in diff.rows_renamed.slice(0, 20).to_pylist()],
        "renamed_count": diff.rows_renamed.num_rows,
    }
    if diff.key:
        entry["removed_keys"] = _key_strings(diff.rows_removed.slice(0, CACHE_KEYS), diff.key)
        entry["added_keys"] = _key_strings(diff.rows_added.slice(0, CACHE_KEYS), diff.key)
        entry["removed_examples"] = _row_dicts(diff.rows_removed, diff.key, 20)
        entry["added_examples"] = _row_dicts(diff.rows_added, diff.key, 20)
    return entry


# ---------------------------------------------------------------- per-release checks


def _check_identical(aud: _Auditor, entry: Entry, parent: Entry | None) -> list[Finding]:
    if parent is None:
        return []
    same_bytes = any(i.get("id") == parent.id for i in entry.record.get("identical_to") or [])
    a, b = parent.record["tables"], entry.record["tables"]
    same_content = set(a) == set(b) and all(
        a[n]["fingerprint"] == b[n]["fingerprint"] for n in a)
    if not (same_bytes or same_content):
        return []
    how = "the same bytes as" if same_bytes else "the same table contents as"
    return [_finding(
        "identical_republish", entry, None, "warning",
        f"{entry.published}: {how} the previous release {parent.short} "
        f"({parent.published}), re-posted under a new date",
        {**other_release(parent), "same_bytes": same_bytes, "tables": len(b),
         "days_apart": (published_day(entry.published) - published_day(parent.published)).days},
    )]


def _recycled_candidates(aud: _Auditor, entry: Entry, parent: Entry | None) -> list[Entry]:
    """Earlier releases a release may have recycled: its channel's older ones (not its
    parent) and other channels' releases published more than `period_days` before it."""
    key = entry.order_key()
    out = []
    for earlier in aud.history.publication_order():
        if earlier.order_key() >= key or earlier.id == entry.id:
            continue
        if parent is not None and earlier.id == parent.id:
            continue
        if earlier.channel != entry.channel:
            gap = (published_day(entry.published) - published_day(earlier.published)).days
            if gap <= aud.options.period_days or (
                    earlier.record.get("period") and
                    earlier.record.get("period") == entry.record.get("period")):
                continue
        out.append(earlier)
    return out


def _byte_twin(aud: _Auditor, entry: Entry, parent: Entry | None, candidates: list[Entry],
               identical_ids: set[str]) -> Finding | None:
    """The same bytes as an older release that is neither its parent nor what its parent
    replaced (putting that back is a restoration): recycled, whatever share of rows the
    parent also has — in a daily series an old file differs from the parent by a day."""
    if parent is None or parent.id in identical_ids:
        return None
    grand = aud.history.parent(parent.id)
    twins = [c for c in candidates if c.id in identical_ids and c.channel == entry.channel
             and (grand is None or c.id != grand.id)]
    if not twins:
        return None
    other = twins[0]  # the first time those bytes were published
    tables = entry.record["tables"]
    return _finding(
        "recycled_release", entry, None, "alert",
        f"{entry.published}: the same file, byte for byte, as release {other.short} "
        f"published {other.published}, not as its parent {parent.short}",
        {**other_release(other), "share": 1.0, "tables": [], "tables_judged": len(tables),
         "whole_release": True, "same_bytes": True, "parent": parent.id,
         "parent_published": parent.published,
         "days_apart": (published_day(entry.published) - published_day(other.published)).days})


def _check_recycled(aud: _Auditor, entry: Entry, parent: Entry | None) -> list[Finding]:
    opts = aud.options
    candidates = _recycled_candidates(aud, entry, parent)
    if not candidates:
        return []
    tables = entry.record["tables"]
    ptables = parent.record["tables"] if parent else {}
    identical_ids = {i.get("id") for i in entry.record.get("identical_to") or []}
    if (twin := _byte_twin(aud, entry, parent, candidates, identical_ids)) is not None:
        return [twin]
    # per matched release: list of per-table matches
    matches: dict[str, list[dict[str, Any]]] = {}
    judged = 0
    # when a table's exact content occurs in several older releases, name the one that
    # shares the most tables with this release (the same bytes win outright)
    votes: dict[str, float] = {}
    for name, meta in tables.items():
        for c in candidates:
            if c.record["tables"].get(name, {}).get("fingerprint") == meta["fingerprint"]:
                votes[c.id] = votes.get(c.id, 0) + 1 + (1000 if c.id in identical_ids else 0)
    for name, meta in tables.items():
        if meta.get("rows", 0) < opts.recycled_min_rows:
            continue
        judged += 1
        if parent is not None and name not in ptables:
            continue  # a table (re)appearing is `table_added`, with its twin as evidence
        if name in ptables and ptables[name]["fingerprint"] == meta["fingerprint"]:
            continue  # unchanged from the parent: nothing was recycled here
        # fast path: the exact same table content in an older release
        exact = [c for c in candidates
                 if c.record["tables"].get(name, {}).get("fingerprint") == meta["fingerprint"]]
        if exact:
            other = max(exact, key=lambda c: votes.get(c.id, 0))  # ties: the earliest
            sp = _parent_share(aud, entry, parent, name)
            if sp <= 1 - opts.recycled_margin:
                matches.setdefault(other.id, []).append(
                    {"table": name, "share": 1.0, "rows": meta["rows"],
                     "matched_rows": meta["rows"], "parent_share": round(sp, 4),
                     "value_columns": None, "same_table_fingerprint": True})
            continue
        mine = aud.value_hashes(entry, name)
        if mine is None or mine.rows == 0:
            continue
        sp = _parent_share(aud, entry, parent, name)
        if sp > 1 - opts.recycled_margin:
            continue
        best: tuple[float, Entry, _ValueHashes] | None = None
        seen_fp: set[str] = set()
        pool: list[Entry] = []
        for other in candidates:
            ometa = other.record["tables"].get(name)
            if ometa is None or ometa["fingerprint"] in seen_fp:
                continue
            seen_fp.add(ometa["fingerprint"])
            if min(ometa["rows"], mine.rows) < opts.recycled_share * max(ometa["rows"], mine.rows):
                continue  # sizes alone rule it out
            pool.append(other)
        for other in _sketch_screen(aud, mine, name, pool, opts.recycled_share - 0.2):
            theirs = aud.value_hashes(other, name)
            if theirs is None or theirs.columns != mine.columns:
                continue
            share = _share(mine, theirs)
            if best is None or share > best[0] + 1e-12:
                best = (share, other, theirs)
        if best and best[0] >= opts.recycled_share and best[0] >= sp + opts.recycled_margin:
            share, other, theirs = best
            matches.setdefault(other.id, []).append(
                {"table": name, "share": round(share, 4), "rows": mine.rows,
                 "matched_rows": _shared_rows(mine, theirs), "parent_share": round(sp, 4),
                 "value_columns": mine.columns, "same_table_fingerprint": False})
    out = []
    for other_id, tabs in matches.items():
        other = aud.history.by_id[other_id]
        whole = len(tabs) == judged
        share = sum(t["matched_rows"] for t in tabs) / max(1, sum(t["rows"] for t in tabs))
        where = (f"table {tabs[0]['table']}" if len(tabs) == 1
                 else f"{len(tabs)} of {judged} tables")
        summary = (f"{entry.published}: {where} repeat{'s' if len(tabs) == 1 else ''} "
                   f"{share:.0%} of the rows of release {other.short} published "
                   f"{other.published}, not of its parent")
        out.append(_finding(
            "recycled_release", entry, tabs[0]["table"] if len(tabs) == 1 else None,
            "alert" if whole else "warning", summary,
            {**other_release(other), "share": round(share, 4), "tables": tabs,
             "tables_judged": judged, "whole_release": whole,
             "same_bytes": other_id in identical_ids,
             "parent": parent.id if parent else None,
             "parent_published": parent.published if parent else None,
             "days_apart": (published_day(entry.published)
                            - published_day(other.published)).days}))
    return out


def _parent_share(aud: _Auditor, entry: Entry, parent: Entry | None, name: str) -> float:
    if parent is None or name not in parent.record["tables"]:
        return 0.0
    if parent.record["tables"][name]["fingerprint"] == entry.record["tables"][name]["fingerprint"]:
        return 1.0
    mine, theirs = aud.value_hashes(entry, name), aud.value_hashes(parent, name)
    if mine is None or theirs is None:
        return 0.0
    return _share(mine, theirs)


def _check_period(aud: _Auditor, entry: Entry, parent: Entry | None) -> list[Finding]:
    days = aud.options.period_days
    record = entry.record
    claimed = claimed_dates(record)
    latest = latest_stated(record, days, aud.data_dates(entry))
    problems: list[dict[str, Any]] = []
    severity = "warning"
    if latest is not None:  # a date older than the parent's: `stated_date_regression`
        stated = dt.date.fromisoformat(latest["date"])
        for source, value in claimed.items():
            gap = (dt.date.fromisoformat(value) - stated).days
            if gap > days:
                problems.append({
                    "problem": f"stale_vs_{source}", "stated": latest["date"],
                    "claimed": value, "days": gap,
                    "text": f"latest stated data date {latest['date']} is {gap} days before "
                            f"the {source.replace('_', ' ')} date {value}"})
    if "file_name" in claimed and "published" in claimed:
        gap = abs((dt.date.fromisoformat(claimed["published"])
                   - dt.date.fromisoformat(claimed["file_name"])).days)
        if gap > days:
            problems.append({
                "problem": "file_name_vs_published", "claimed": claimed["file_name"],
                "published": claimed["published"], "days": gap,
                "text": f"file name is dated {claimed['file_name']}, {gap} days from its "
                        f"publication date {claimed['published']}"})
    if not problems:
        return []
    evidence: dict[str, Any] = {
        "claimed": claimed, "latest_stated": latest, "problems": problems,
        "stated_dates": _stated(record)[:20],
    }
    if parent is not None:
        evidence.update(other_release(parent))
        evidence["other_latest_stated"] = latest_stated(parent.record, days,
                                                        aud.data_dates(parent))
    worst = max(problems, key=lambda p: p["days"])
    return [_finding("period_mismatch", entry, None, severity,
                     f"{entry.published}: {worst['text']}", evidence)]


def _check_schema(aud: _Auditor, entry: Entry, parent: Entry | None,
                  pair: dict[str, Any] | None) -> list[Finding]:
    if parent is None:
        return []
    out = []
    a, b = parent.record["tables"], entry.record["tables"]
    for name in sorted(set(b) - set(a)):
        twin = next((e for e in aud.history.channel(entry.channel)
                     if e.order_key() < entry.order_key() and
                     e.record["tables"].get(name, {}).get("fingerprint") == b[name]["fingerprint"]),
                    None)
        again = f", identical to its copy in {twin.short} ({twin.published})" if twin else ""
        out.append(_finding("table_added", entry, name, "info",
                            f"{entry.published}: new table {name} ({b[name]['rows']} rows)"
                            f"{again}",
                            {**other_release(parent), "rows": b[name]["rows"],
                             "columns": [c["name"] for c in b[name]["schema"]][:50],
                             "same_as": {"snapshot": twin.id, "published": twin.published}
                             if twin else None}))
    for name in sorted(set(a) - set(b)):
        out.append(_finding("table_removed", entry, name, "warning",
                            f"{entry.published}: table {name} ({a[name]['rows']} rows) is gone",
                            {**other_release(parent), "rows": a[name]["rows"],
                             "columns": [c["name"] for c in a[name]["schema"]][:50]}))
    for name, tab in (pair or {}).get("tables", {}).items():
        changes = [dict(c) for c in tab["schema_changes"] if not _widening(c)]
        changes += [{"change": "unit_changed", "column": u["column"], "old": None,
                     "new": f"x{u['factor']:g}", "rows": u["rows"]} for u in tab["unit_changes"]]
        if not changes:
            continue
        words = ", ".join(f"{c['change'].replace('_', ' ')} {c['column']}"
                          + (f" ({c['old']} -> {c['new']})" if c.get("old") and c.get("new")
                             else "") for c in changes[:3])
        more = f" and {len(changes) - 3} more" if len(changes) > 3 else ""
        rolling = all(c["change"] in ("column_added", "column_removed")
                      and period_token(c["column"] or "") for c in changes)
        out.append(_finding("schema_change", entry, name, "info" if rolling else "warning",
                            f"{entry.published}: {name}: {words}{more}",
                            {**other_release(parent), "changes": changes,
                             "period_columns_only": rolling}))
    return out


def _widening(change: dict[str, Any]) -> bool:
    """int <-> float: the reader types whole numbers as int; not a change of meaning."""
    if change.get("change") != "type_changed":
        return False
    kinds = {re.sub(r"\d+", "", t or "") for t in (change.get("old"), change.get("new"))}
    return kinds <= {"int", "uint", "double", "float", "halffloat"}


def _judged_columns(sem: TableSemantics, tab: dict[str, Any]) -> tuple[set[str], set[str]]:
    """(columns whose revisions count, derived columns counted apart) of a period series:
    flag and ignored columns and the provisional periods are not judged."""
    provisional = set(sem.period_columns) - set(sem.closed_periods)
    folded_into = {f["into"] for f in tab.get("folded") or []}  # `folded_column` says it
    skip = set(sem.flag_columns) | set(sem.ignore_columns) | provisional | folded_into
    revised = set(tab.get("revised_by_column") or {})
    derived = (revised & set(sem.derived_columns)) - skip
    return revised - skip - derived, derived


def _row_name(cell: dict[str, Any]) -> str:
    """`row_name` with a space after it, to lead a column name."""
    name = row_name(cell)
    return f"{name} " if name else ""


def _check_revisions(release: Release) -> list[Finding]:
    """Closed periods of period series revised against the parent (as-of, running and
    reference tables change by design: an update, not a revision)."""
    aud, entry, parent, pair = release.auditor, release.entry, release.parent, release.pair
    if parent is None or pair is None:
        return []
    opts = aud.options
    announced = aud.announced(entry.record)
    restored = release.notes.get("restored", {})  # cells `restoration` put back
    out = []
    for name, tab in pair["tables"].items():
        sem = aud.semantics(entry, name)
        if sem.role != "period_series" or not tab["revisions"]:
            continue
        judged, derived = _judged_columns(sem, tab)
        per_col = tab.get("revised_by_column") or {}
        back = restored.get(name, set())
        n = int(sum(per_col[c]["cells"] for c in judged)) - len(back)
        if n <= 0:
            continue
        cells = [c for c in tab["cells"] if c["column"] in judged
                 and restoration.cell_key(c) not in back]
        top = cells[0] if cells else None
        biggest = ""
        if top is not None:
            size = top.get("abs_change")
            change = f" ({number(size, sign=True)})" if size is not None else ""
            biggest = (f"; largest {_row_name(top)}{top['column']} {top['old']} -> "
                       f"{top['new']}{change}")
        net = {c: round(per_col[c]["net"], 6) for c in sorted(judged)}
        out.append(_finding(
            "silent_revision", entry, name, "info" if announced else "warning",
            f"{entry.published}: {n} past value(s) of {name} revised "
            f"{'(announced)' if announced else 'without notice'}{biggest}",
            {**other_release(parent), "announced": announced, "message": entry.record.get(
                "message") or "", "cells_revised": n,
             "derived_cells_revised": int(sum(per_col[c]["cells"] for c in derived)),
             "derived_columns": sorted(derived),
             "rows_revised": tab["revised_rows"], "cells_filled": tab["fills"],
             "totals_moved": tab.get("totals_moved", 0),
             "open_period_updates": tab.get("open_period_updates", 0),
             "columns": sorted(judged), "net_change": net, "key": tab["key"],
             "rows_matched_by": "key" if tab["key"] else "row pairing (no key)",
             "changes": cells[:opts.max_examples],
             "changes_shown": len(cells[:opts.max_examples])},
            magnitude=abs(top["abs_change"]) if top and top.get("abs_change") else n))
        outliers = _outliers(cells, opts) if tab.get("key") else []
        if outliers:
            top = outliers[0]
            out.append(_finding(
                "outlier_change", entry, name, "alert",
                f"{entry.published}: {name} {_row_name(top)}{top['column']} {top['old']} -> "
                f"{top['new']} ({_pct(top['rel_change'])}); {len(outliers)} change(s) beyond "
                f"{opts.outlier_threshold:.0%}",
                {**other_release(parent), "threshold": opts.outlier_threshold,
                 "min_base": opts.outlier_min_base, "count": len(outliers),
                 "max_rel_change": top["rel_change"], "max_jump": top["jump"],
                 "changes": outliers[:opts.max_examples],
                 "announced": announced},
                magnitude=abs(top.get("abs_change") or 0)))
    return out


def jump(old: float | None, new: float | None) -> float | None:
    """How far out of line a change is, the same both ways: 100 -> 200 and 200 -> 100
    are both 1.0 (100%); a value that falls to 0 or flips sign is infinite."""
    if old is None or new is None or old == new:
        return None if old is None or new is None else 0.0
    if old == 0 or new == 0 or (old < 0) != (new < 0):
        return float("inf")
    return abs(new - old) / min(abs(old), abs(new))


def _outliers(cells: list[dict[str, Any]], opts: AuditOptions) -> list[dict[str, Any]]:
    """Changed cells whose jump passes the threshold and whose size is worth it."""
    out = []
    for c in cells:
        old, new = _num(c.get("old")), _num(c.get("new"))
        size = jump(old, new)
        if size is None or size < opts.outlier_threshold:
            continue
        if abs(old) < opts.outlier_min_base:  # type: ignore[arg-type]
            continue
        out.append({**c, "jump": None if size == float("inf") else round(size, 4)})
    out.sort(key=lambda c: -(c["jump"] if c["jump"] is not None else float("inf")))
    return out


def _pct(rel: float | None) -> str:
    return "n/a" if rel is None else f"{rel:+.0%}"


def _num(text: Any) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def _row_identity_findings(entry: Entry, parent: Entry, name: str,
                           tab: dict[str, Any]) -> list[Finding]:
    """`duplicate_key` and `row_renamed` of one table of a release."""
    out = []
    dups = tab.get("duplicate_keys") or []
    if dups:
        shown = "; ".join(", ".join(str(v) for v in d["key"].values()) + f" ×{d['rows']}"
                          for d in dups[:3])
        out.append(_finding(
            "duplicate_key", entry, name, "warning",
            f"{entry.published}: key ({', '.join(tab['key'])}) of {name} repeats: {shown}",
            {**other_release(parent), "key": tab["key"], "examples": dups}))
    if tab.get("renamed_count"):
        first = tab["renamed"][0]
        out.append(_finding(
            "row_renamed", entry, name, "info",
            f"{entry.published}: {tab['renamed_count']} row(s) of {name} renamed, e.g. "
            f"{' | '.join(map(str, first['old_key'].values()))!r} -> "
            f"{' | '.join(map(str, first['new_key'].values()))!r}",
            {**other_release(parent), "count": tab["renamed_count"], "key": tab["key"],
             "examples": tab["renamed"]}))
    return out


def _check_vanished(aud: _Auditor, entry: Entry, parent: Entry | None,
                    pair: dict[str, Any] | None,
                    vanished: dict[tuple[str, str], dict[str, Entry]] | None) -> list[Finding]:
    """Keys that disappear, and keys that come back (`vanished`: the full audit's running
    map (channel, table) -> key -> release it vanished in; None: look back in history)."""
    if parent is None or pair is None:
        return []
    out = []
    for name, tab in pair["tables"].items():
        if not tab.get("key"):
            continue
        out += _row_identity_findings(entry, parent, name, tab)
        removed = tab.get("removed_keys") or []
        if removed:
            share = tab["removed_count"] / max(1, tab["rows_old"])
            # rows of an as-of count come and go (a facility with no one detained today)
            as_of = aud.semantics(entry, name).role == "as_of"
            out.append(_finding(
                "vanished_rows", entry, name, "info" if as_of else "warning",
                f"{entry.published}: {tab['removed_count']} row(s) of {name} vanished "
                f"({share:.0%} of {tab['rows_old']})",
                {**other_release(parent), "count": tab["removed_count"], "share": round(share, 4),
                 "key": tab["key"], "examples": tab.get("removed_examples", [])}))
        added = tab.get("added_keys") or []
        if not added:
            if vanished is not None:
                _remember_vanished(vanished, entry, name, removed)
            continue
        if vanished is not None:
            gone = vanished.get((entry.channel, name), {})
            back = {k: gone.pop(k) for k in added if k in gone}
        else:
            back = _look_back(aud, entry, parent, name, tab["key"], added)
        if vanished is not None:
            _remember_vanished(vanished, entry, name, removed)
        if not back:
            continue
        since = sorted({e.id: e for e in back.values()}.values(), key=Entry.order_key)
        examples = [dict(zip(tab["key"], k.split("\x1f"), strict=False))
                    for k in list(back)[:20]]
        out.append(_finding(
            "reappeared_rows", entry, name, "info",
            f"{entry.published}: {len(back)} row(s) of {name} reappeared after vanishing "
            f"(last gone in {since[0].short}, {since[0].published})",
            {**other_release(since[0]), "count": len(back), "key": tab["key"], "examples": examples,
             "vanished_in": [{"snapshot": e.id, "published": e.published} for e in since]}))
    return out


def _remember_vanished(vanished: dict[tuple[str, str], dict[str, Entry]], entry: Entry,
                       table: str, removed: Iterable[str]) -> None:
    slot = vanished.setdefault((entry.channel, table), {})
    for k in removed:
        slot[k] = entry


def _look_back(aud: _Auditor, entry: Entry, parent: Entry, table: str, key: list[str],
               added: list[str]) -> dict[str, Entry]:
    """Added keys that an earlier release (before the parent) had: where they last were,
    answered as the release *after* that one (where they vanished)."""
    series = aud.history.channel(entry.channel)
    index = series.index(parent)
    wanted = set(added)
    found: dict[str, Entry] = {}
    seen_fp: set[str] = set()
    for i in range(index - 1, -1, -1):
        older = series[i]
        meta = older.record["tables"].get(table)
        if meta is None or meta["fingerprint"] in seen_fp:
            continue
        seen_fp.add(meta["fingerprint"])
        if not all(k in [c["name"] for c in meta["schema"]] for k in key):
            continue
        keys = set(_key_strings(aud.snap(older).table(table, columns=key), key))
        for k in wanted & keys:
            found[k] = series[i + 1]
        wanted -= keys
        if not wanted:
            break
    return found


def _check_channels(aud: _Auditor, channels: list[str], since: dt.date | None) -> list[Finding]:
    """Each release of a later channel against the first channel's release of the same
    period (else the nearest publication date)."""
    base = aud.history.channel(channels[0])
    if not base:
        return []
    out = []
    for channel in channels[1:]:
        for entry in aud.history.channel(channel):
            if since and published_day(entry.published) < since:
                continue
            period = entry.record.get("period")
            same = [b for b in base if period and b.record.get("period") == period]
            day = published_day(entry.published)
            ref = same[-1] if same else min(
                base, key=lambda b: abs((published_day(b.published) - day).days))
            pair = aud.pair(ref, entry)
            out.extend(_channel_finding(aud, entry, ref, pair, "period" if same else "nearest"))
    return out


def _channel_finding(aud: _Auditor, entry: Entry, ref: Entry, pair: dict[str, Any],
                     matched_by: str) -> list[Finding]:
    opts = aud.options
    tables = []
    cells: list[dict[str, Any]] = []
    for name, tab in pair["tables"].items():
        n = tab["counts"].get("cells_changed", 0)
        if not (n or tab["added_count"] or tab["removed_count"]):
            continue
        tables.append({"table": name, "cells_differing": n,
                       "rows_only_here": tab["added_count"],
                       "rows_only_there": tab["removed_count"]})
        cells += [{**c, "table": name} for c in tab["cells"][:opts.max_examples]]
    if not (tables or pair["tables_added"] or pair["tables_removed"]):
        return []
    cells.sort(key=lambda c: -abs(c["rel_change"]) if c.get("rel_change") is not None else 1)
    max_rel = max((abs(c["rel_change"]) for c in cells if c.get("rel_change") is not None),
                  default=None)
    total = sum(t["cells_differing"] for t in tables)
    severity = "alert" if max_rel is not None and max_rel >= opts.outlier_threshold else "warning"
    summary = (f"{entry.channel} {entry.published} differs from {ref.channel} "
               f"{ref.published} in {total} cell(s)"
               + (f", up to {max_rel:.0%}" if max_rel is not None else ""))
    return [_finding("channel_discrepancy", entry, tables[0]["table"] if len(tables) == 1
                     else None, severity, summary,
                     {**other_release(ref), "matched_by": matched_by, "cells_differing": total,
                      "max_rel_change": max_rel, "tables": tables,
                      "tables_only_here": pair["tables_added"],
                      "tables_only_there": pair["tables_removed"],
                      "changes": cells[:opts.max_examples]})]


# ---------------------------------------------------------------- the registry

# The audit's own checks, registered like those of `atdarchive.checks` (one file each):
# order = run order and the order of kinds in reports.
checks.register("identical_republish", "identical republish", "warning", 10)(
    lambda r: _check_identical(r.auditor, r.entry, r.parent))
checks.register("recycled_release", "recycled release", "alert", 20)(
    lambda r: _check_recycled(r.auditor, r.entry, r.parent))
checks.register("period_mismatch", "period mismatch", "warning", 30)(
    lambda r: _check_period(r.auditor, r.entry, r.parent))
checks.register("silent_revision", "revision", "warning", 50)(_check_revisions)
checks.declare("outlier_change", "outlier change", "alert", 51)
checks.register("vanished_rows", "rows vanished", "warning", 60)(
    lambda r: _check_vanished(r.auditor, r.entry, r.parent, r.pair, r.notes.get("vanished")))
checks.declare("reappeared_rows", "rows reappeared", "info", 61)
checks.declare("duplicate_key", "duplicate key", "warning", 62)
checks.declare("row_renamed", "rows renamed", "info", 63)
checks.register("schema_change", "schema change", "warning", 70)(
    lambda r: _check_schema(r.auditor, r.entry, r.parent, r.pair))
checks.declare("table_added", "table added", "info", 71)
checks.declare("table_removed", "table removed", "warning", 72)
checks.declare("channel_discrepancy", "channel discrepancy", "warning", 90)


def _release_findings(aud: _Auditor, entry: Entry, *, deep: bool = True,
                      vanished: dict[tuple[str, str], dict[str, Entry]] | None = None,
                      ) -> tuple[list[Finding], dict[str, Any] | None]:
    """Every registered check, in order, on one release."""
    parent = aud.history.parent(entry.id)
    pair = aud.pair(parent, entry) if (deep and parent is not None) else None
    release = Release(aud, entry, parent, pair, {"vanished": vanished})
    findings: list[Finding] = []
    for check in sorted(checks.load().values(), key=lambda c: (c.order, c.kind)):
        if check.run is not None:
            findings += check.run(release)
    return findings, pair


def _sort(findings: list[Finding], history: History) -> list[Finding]:
    """Per release (publication order), the most significant first."""
    order = {e.id: e.order_key() for e in history.entries}
    kind_rank = {k: i for i, k in enumerate(checks.kinds())}
    return sorted(findings, key=lambda f: (order[f.snapshot], -f.score, -_RANK[f.severity],
                                           kind_rank.get(f.kind, 99), f.table or ""))


# ---------------------------------------------------------------- public API


def findings_for_snapshot(archive: ArchiveContext, snapshot: Snapshot,
                          options: AuditOptions | None = None) -> list[Finding]:
    """Findings about one release against its history — cheap enough for `commit`/`log`.

    Uses table fingerprints and cached value hashes for recycling, the stated
    dates for the period, and one diff (against the parent) for revisions.
    """
    options = options or AuditOptions()
    history = archive.history(snapshot.dataset)
    if options.include_retracted or history.retracted(snapshot.id):
        history = archive.history(snapshot.dataset, include_retracted=True)
    entry = history.by_id.get(snapshot.id)
    if entry is None:
        raise AtdError(f"{snapshot.ref}: not in the history of {snapshot.dataset}")
    if entry.record.get("parse_error"):
        return unparsed.findings(entry)
    aud = _Auditor(archive, history, options)
    findings, _ = _release_findings(aud, entry)
    return _sort(findings, history)


def flag_summary(findings: list[Finding]) -> dict[str, Any]:
    """Finding kinds with counts and the worst severity: what `log` shows of an audit."""
    counts: dict[str, int] = {}
    for finding in findings:
        counts[finding.kind] = counts.get(finding.kind, 0) + 1
    worst = max((f.severity for f in findings), key=_RANK.__getitem__, default=None)
    return {"kinds": counts, "severity": worst}


def audit(archive: ArchiveContext, dataset: str, options: AuditOptions | None = None,
          progress: Progress | None = None) -> AuditReport:
    """Audit every release of DATASET (publication order, per channel); see module doc.

    `progress`, when given, is called as `progress(dataset, done, total)` after each release.
    """
    options = options or AuditOptions()
    # stamped before reading: a commit meanwhile makes these flags stale
    stamp = flags_stamp(archive, dataset)
    history = archive.history(dataset, include_retracted=options.include_retracted)
    available = history.channels()
    channels = list(options.channels) if options.channels else sorted(
        available, key=lambda c: (c != "public", c))
    unknown = [c for c in channels if c not in available]
    if unknown and history.entries:
        raise AtdError(f"{dataset}: no channel {', '.join(map(repr, unknown))} "
                       f"(channels: {', '.join(available) or 'none'})")
    channels = [c for c in channels if c in available] or channels
    since = None
    if options.since:
        try:
            since = dt.date.fromisoformat(options.since)
        except ValueError:
            raise AtdError(f"--since: cannot parse {options.since!r} as YYYY-MM-DD") from None
    aud = _Auditor(archive, history, options)
    findings: list[Finding] = []
    releases: list[dict[str, Any]] = []
    entries = [e for c in channels for e in history.channel(c)]
    vanished: dict[tuple[str, str], dict[str, Entry]] = {}
    for done, entry in enumerate(sorted(entries, key=Entry.order_key), start=1):
        found, pair = _release_findings(aud, entry, vanished=vanished)
        if progress is not None:
            progress(dataset, done, len(entries))
        if since and published_day(entry.published) < since:
            continue
        findings += found
        releases.append(_release_row(aud, entry, pair))
    for entry in history.listed():  # evidence-only snapshots: outside the series walked
        if (entry.record.get("parse_error") and entry.channel in channels
                and not (since and published_day(entry.published) < since)):
            findings += unparsed.findings(entry)
            releases.append(_release_row(aud, entry, None))
    order = {e.id: e.order_key() for e in history.entries}
    releases.sort(key=lambda row: order[row["id"]])
    findings += watch_events.findings(history, channels, since)
    if options.channels and len(channels) > 1:
        findings += _check_channels(aud, channels, since)
    findings = _sort(findings, history)
    by_release: dict[str, list[Finding]] = {}
    for f in findings:
        by_release.setdefault(f.snapshot, []).append(f)
    if (not options.channels or len(channels) == 1) and _default_thresholds(options):
        # per-release flags for `log`, stamped with the inputs they were made from
        for row in releases:
            save_flags(archive, row["id"], flag_summary(by_release.get(row["id"], [])),
                       dataset=dataset, stamp=stamp)
    for row in releases:
        mine = by_release.get(row["id"], [])
        kind_rank = {k: i for i, k in enumerate(checks.kinds())}
        row["flags"] = sorted({f.kind for f in mine}, key=lambda k: kind_rank.get(k, 99))
        row["severity"] = max((f.severity for f in mine), key=_RANK.__getitem__, default=None)
        row["findings"] = len(mine)
    return AuditReport(dataset, options, releases, findings, channels)


def _default_thresholds(options: AuditOptions) -> bool:
    """Whether the flags this audit finds are the ones `log` shows (which releases are
    listed (`since`) and channels aside, every option at its default)."""
    mine, default = asdict(options), asdict(AuditOptions())
    return all(mine[k] == default[k] for k in mine if k not in ("since", "channels"))


def _release_row(aud: _Auditor, entry: Entry, pair: dict[str, Any] | None) -> dict[str, Any]:
    record = entry.record
    parent = aud.history.parent(entry.id)
    revisions = sum(t["revisions"] for t in (pair or {}).get("tables", {}).values())
    fills = sum(t["fills"] for t in (pair or {}).get("tables", {}).values())
    latest = latest_stated(record, aud.options.period_days,
                           [] if record.get("parse_error") else aud.data_dates(entry))
    return {
        "id": entry.id, "short_id": entry.short, "published": entry.published,
        "channel": entry.channel, "period": record.get("period"),
        "message": record.get("message") or "",
        "original": (record.get("original") or {}).get("name"),
        "parent": parent.id if parent else None,
        "tables": len(record.get("tables") or {}),
        "rows": sum(t.get("rows", 0) for t in (record.get("tables") or {}).values()),
        "latest_stated": latest["date"] if latest else None,
        "claimed": claimed_dates(record),
        "cells_revised": revisions, "cells_filled": fills,
        "announced": aud.announced(record) if parent else False,
    }
