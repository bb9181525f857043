"""Blame and history: every cell attributed to the publication that gave it its value.

Semantics (DESIGN §3, §7)
    Blame follows *publication* order within the snapshot's channel
    (`History.channel`). A cell's blame is the release in which it last took its
    current value; `previous` is the value before that, `revisions` how often
    the cell has been revised. A change of type or format alone (1 -> 1.0,
    "12" -> 12, "Total " -> "Total") is not a revision unless `strict=True`;
    values compare with the diff engine's rules (`diff.compare.equal_mask`;
    non-strict = `DiffOptions(ignore_whitespace=True)`, strict =
    `DiffOptions(strict_types=True)`).

    Rows match by the key in force (`keyreport.key_in_force`: declared, hierarchy,
    else inferred on the channel's latest snapshot holding the table), per row
    (`atdarchive.identity`): a key value repeated in a release costs only the rows
    sharing it, and a row whose key changed slightly keeps its history (renamed).
    A declared key column a release lacks is an error; an inferred one makes the
    table blamed *keyless*: a row's identity is its whole content (plus its
    occurrence number among identical rows), so an edited row is a removed row
    plus an added row whose cells are all "first published" there. Key values
    match as normalised text (trimmed, inner whitespace collapsed; 1 and 1.0 and
    "1" are one key). Rows that vanish and reappear keep their history: a
    cell's blame continues across the gap, compared with its last seen value.
    A column is identified by its name (a rename is a removed plus an added
    column). A release that lacks the table makes every row absent there.

The index (derived, rebuildable; `.atdarchive/derived/blame/<ds>/<channel>/<table>/<mode>/`)
    The state after the k-th release of the channel is one Arrow IPC file
    (lz4) holding, for every row ever seen: its identity `_id`, `_first` (the
    position where it appeared), `_present`/`_row` (its row in release k), and
    per column j ever seen: the last value `v{j}` (typed), blame position
    `b{j}` (-1: never published), previous value text `p{j}`, revisions `r{j}`
    and source cell `s{j}`. A file is named by a hash chained over the key and
    the ids of releases 0..k, so it is valid exactly while that prefix of the
    publication order stands: a backfill invalidates the files after the
    insertion point only, and the next update replays from the newest valid
    file below it. Kept: the latest state and every `CHECKPOINT`-th one.
    Commit (`update_index`) = one pairwise step: read the previous state,
    match the new table's rows to it by identity (hash codes, one numpy
    scatter), compare each column once, write the new state. Blame of the
    latest release = one read of its state file; of an older release = the
    nearest checkpoint at or below it plus at most CHECKPOINT-1 replay steps.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from atdarchive.context import ArchiveContext
from atdarchive.diff.compare import decode, equal_mask, occurrence_rank, to_text
from atdarchive.diff.keyed import check_key_columns
from atdarchive.diff.types import DiffOptions
from atdarchive.errors import AtdError
from atdarchive.history import Entry, only_table, split_ref
from atdarchive.identity import match_by_key, pair_renamed_rows
from atdarchive.ingest.model import cell_addresses
from atdarchive.keyreport import key_in_force
from atdarchive.keyresolver import key_resolver
from atdarchive.keys import encode_columns, flat
from atdarchive.snapshot import Snapshot  # noqa: TC001

__all__ = ["blame", "history", "reindex", "update_index", "BLAME_FIELDS", "FORMAT_NOTE"]

FORMAT = 2
#: Besides the latest, keep the state after every CHECKPOINT-th release.
CHECKPOINT = 8
SEP = "\x1f"
META = b"atdarchive.blame"
FORMAT_NOTE = "type/format-only changes are not revisions; use --strict"
STRICT_NOTE = "strict: a change of type or format counts as a revision"

#: Fixed output columns of `blame` (key columns come after `row`).
BLAME_FIELDS = ("row", "column", "value", "snapshot", "short_id", "published", "channel",
                "source_url", "original_name", "previous", "revisions", "source_cell",
                "row_first_seen", "row_last_changed")


def _options(strict: bool) -> DiffOptions:
    return DiffOptions(strict_types=True) if strict else DiffOptions(ignore_whitespace=True)


# ---------------------------------------------------------------- identities


def _ident_text(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Values as normalised text for matching rows: trimmed, inner runs of spaces collapsed."""
    text = pc.utf8_trim_whitespace(to_text(decode(flat(arr))).cast(pa.string()))
    if pc.any(pc.match_substring(text, "  ")).as_py():
        text = pc.replace_substring_regex(text, r"\s+", " ")
    return text.fill_null("\x00")


def _norm_given(value: str) -> str:
    return _ident_text(pa.array([value], pa.string()))[0].as_py()


def _row_ids(table: pa.Table, key: list[str] | None) -> pa.Array:
    """Row identity: key text, or (keyless) the whole row's text plus its occurrence."""
    names = list(key) if key else sorted(table.column_names)
    if not names:
        return pa.array([f"#{i}" for i in range(table.num_rows)], pa.string())
    parts = [_ident_text(table.column(c)) for c in names]
    ids = parts[0] if len(parts) == 1 else pc.binary_join_element_wise(*parts, SEP)
    if key:
        return ids
    codes, _ = encode_columns([ids])
    rank = pa.array(occurrence_rank(codes)).cast(pa.string())
    return pc.binary_join_element_wise(ids, rank, SEP + "#")


# ---------------------------------------------------------------- state


@dataclass
class _State:
    """The index after one release: see the module docstring for the columns."""

    table: pa.Table
    columns: list[str]  # j -> column name, every column ever seen
    present: list[int]  # j of the release's columns, in its table order

    @classmethod
    def empty(cls) -> _State:
        return cls(pa.table({"_id": pa.array([], pa.string()),
                             "_first": pa.array([], pa.int32()),
                             "_present": pa.array([], pa.bool_()),
                             "_row": pa.array([], pa.int64())}), [], [])

    def np(self, name: str) -> np.ndarray:
        col = flat(self.table.column(name))
        return col.to_numpy(zero_copy_only=False)

    def col(self, name: str) -> pa.Array:
        return flat(self.table.column(name))


def _extend(arr: pa.Array, n: int) -> pa.Array:
    return arr if n == 0 else pa.concat_arrays([arr, pa.nulls(n, arr.type)])


def _scatter(old: pa.Array, new: pa.Array, where: np.ndarray) -> pa.Array:
    """`old` with old[where[i]] = new[i] (both Arrow, one take)."""
    if len(where) == 0:
        return old
    n = len(old)
    idx = np.arange(n, dtype=np.int64)
    idx[where] = n + np.arange(len(new), dtype=np.int64)
    return pa.concat_arrays([old, new]).take(pa.array(idx))


def _unify(old: pa.Array, new: pa.Array) -> tuple[pa.Array, pa.Array]:
    """One type for a column's stored values: the new type when the old cast safely."""
    if old.type == new.type:
        return old, new
    if pa.types.is_null(old.type) or old.null_count == len(old):
        return pa.nulls(len(old), new.type), new
    try:
        return pc.cast(old, new.type, safe=True), new
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return to_text(old).cast(pa.string()), to_text(new).cast(pa.string())


class _KeyBroken(Exception):
    """A release lacks a key column (an inferred key -> keyless; a declared one: an error)."""

    def __init__(self, why: str, columns: list[str]) -> None:
        super().__init__(why)
        self.why = why
        self.columns = columns
        self.where = "?"


def _advance(state: _State | None, table: pa.Table | None, pos: int, *,
             key: list[str] | None, options: DiffOptions, meta: dict | None = None,
             src: pa.Array | None = None) -> _State:
    """The state after one more release (column-wise; no loop over rows)."""
    state = state or _State.empty()
    t = state.table
    n_old = t.num_rows
    if table is None:
        t = t.set_column(t.schema.get_field_index("_present"), "_present",
                         pa.array(np.zeros(n_old, bool)))
        t = t.set_column(t.schema.get_field_index("_row"), "_row", pa.nulls(n_old, pa.int64()))
        return _State(t, list(state.columns), [])
    if key is not None:
        missing = [k for k in key if k not in table.column_names]
        if missing:
            raise _KeyBroken(f"missing (no column {missing[0]!r})", table.column_names)
    n = table.num_rows
    ids = _row_ids(table, key)
    old_ids = state.col("_id")
    ids = ids.cast(old_ids.type)
    rid, renamed = _match_state(state, table, ids, key, options)
    if len(renamed):
        old_ids = _scatter(old_ids, ids.take(pa.array(renamed)), rid[renamed])
    fresh_rows = rid < 0
    n_add = int(fresh_rows.sum())
    rid[fresh_rows] = n_old + np.arange(n_add)
    size = n_old + n_add
    present = np.zeros(size, bool)
    present[rid] = True
    rowpos = np.full(size, -1, np.int64)
    rowpos[rid] = np.arange(n)
    first = np.concatenate([state.np("_first").astype(np.int32),
                            np.full(n_add, pos, np.int32)])
    out: dict[str, pa.Array] = {
        "_id": pa.concat_arrays([old_ids, ids.filter(pa.array(fresh_rows))]),
        "_first": pa.array(first),
        "_present": pa.array(present),
        "_row": pa.array(rowpos, mask=rowpos < 0),
    }
    columns = list(state.columns)
    where = {name: j for j, name in enumerate(columns)}
    rid_arr = pa.array(rid)
    # the common case: every known row present, in the same order (no takes needed)
    aligned = n == size and bool(np.array_equal(rid, np.arange(n)))
    for name in table.column_names:
        new = decode(flat(table.column(name)))
        if name in where:
            j = where[name]
            v_old = _extend(state.col(f"v{j}"), n_add)
            b_old = np.concatenate([state.np(f"b{j}"), np.full(n_add, -1, np.int32)])
            r_old = np.concatenate([state.np(f"r{j}"), np.zeros(n_add, np.int32)])
            p_old = _extend(state.col(f"p{j}"), n_add)
            s_old = _extend(state.col(f"s{j}"), n_add)
        else:
            j = len(columns)
            columns.append(name)
            where[name] = j
            v_old = pa.nulls(size, new.type)
            b_old = np.full(size, -1, np.int32)
            r_old = np.zeros(size, np.int32)
            p_old = pa.nulls(size, pa.string())
            s_old = pa.nulls(size, pa.string())
        old_al = v_old if aligned else v_old.take(rid_arr)
        seen = b_old[rid] >= 0
        eq = _same(old_al, new, options) if seen.any() else np.ones(n, bool)
        changed = seen & ~eq
        touched = changed | ~seen
        b_new, r_new = b_old.copy(), r_old.copy()
        b_new[rid[touched]] = pos
        r_new[rid[changed]] += 1
        p_new, s_new = p_old, s_old
        hit = np.flatnonzero(touched)
        if len(hit):
            hit_arr = pa.array(hit)
            prev = pc.if_else(pa.array(changed[hit]),
                              to_text(old_al.take(hit_arr)).cast(pa.string()),
                              pa.nulls(len(hit), pa.string()))
            p_new = _scatter(p_old, prev, rid[hit])
            where_from = cell_addresses(meta, name, src, hit)
            if where_from.null_count < len(where_from) or s_old.null_count < len(s_old):
                s_new = _scatter(s_old, where_from.cast(pa.string()), rid[hit])
        if aligned:
            out[f"v{j}"] = new
        else:
            v_keep, v_in = _unify(v_old, new)
            out[f"v{j}"] = _scatter(v_keep, v_in, rid)
        out[f"b{j}"] = pa.array(b_new)
        out[f"r{j}"] = pa.array(r_new)
        out[f"p{j}"] = p_new
        out[f"s{j}"] = s_new
    for j in range(len(columns)):
        if f"v{j}" in out:
            continue
        out[f"v{j}"] = _extend(state.col(f"v{j}"), n_add)
        out[f"b{j}"] = pa.array(np.concatenate([state.np(f"b{j}"), np.full(n_add, -1, np.int32)]))
        out[f"r{j}"] = pa.array(np.concatenate([state.np(f"r{j}"), np.zeros(n_add, np.int32)]))
        out[f"p{j}"] = _extend(state.col(f"p{j}"), n_add)
        out[f"s{j}"] = _extend(state.col(f"s{j}"), n_add)
    return _State(pa.table(out), columns, [where[c] for c in table.column_names])


def _match_state(state: _State, table: pa.Table, ids: pa.Array, key: list[str] | None,
                 options: DiffOptions) -> tuple[np.ndarray, np.ndarray]:
    """The state row of each row of the release (-1: a new row), matched by identity
    per row (`atdarchive.identity`); and the release rows matched as renamed rows."""
    n_old, n = state.table.num_rows, len(ids)
    old_ids = state.col("_id")
    none = np.zeros(0, np.int64)
    if n >= n_old and pc.all(pc.equal(old_ids, ids.slice(0, n_old))).as_py() is not False \
            and (key is None or pc.count_distinct(ids).as_py() == n):
        rid = np.arange(n, dtype=np.int64)  # known rows in place; the rest are new
        rid[n_old:] = -1
        return rid, none
    codes, card = encode_columns([pa.concat_arrays([old_ids, ids])])
    where = {name: j for j, name in enumerate(state.columns)}
    shared = [c for c in table.column_names if c in where and c not in (key or [])]

    def content(o_rows: np.ndarray, n_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not shared:
            return np.zeros(len(o_rows), np.int64), np.zeros(len(n_rows), np.int64)
        oi, ni = pa.array(o_rows), pa.array(n_rows)
        both = [pa.concat_arrays([_ident_text(state.col(f"v{where[c]}").take(oi)),
                                  _ident_text(flat(table.column(c)).take(ni))]) for c in shared]
        joint, _ = encode_columns(both)
        return joint[: len(o_rows)], joint[len(o_rows):]

    rm = match_by_key(codes[:n_old], codes[n_old:], card, content)
    rid = np.full(n, -1, np.int64)
    rid[rm.new] = rm.old
    if key is None or not len(rm.added):
        return rid, none
    gone = rm.removed[state.np("_present").astype(bool)[rm.removed]]  # vanished just now
    if not len(gone):
        return rid, none
    near = DiffOptions(rel_tol=0.1, ignore_case=True, ignore_whitespace=True)

    def closeness(gi: np.ndarray, ai: np.ndarray) -> np.ndarray:
        if not shared:
            return np.ones(len(gi))
        oi, ni = pa.array(gone[gi]), pa.array(rm.added[ai])
        close = np.zeros(len(gi))
        for c in shared:
            old_v, new_v = state.col(f"v{where[c]}").take(oi), flat(table.column(c)).take(ni)
            close += equal_mask(old_v, new_v, near)
        return close / len(shared)

    gi, ai, _ = pair_renamed_rows(old_ids.take(pa.array(gone)).to_pylist(),
                                  ids.take(pa.array(rm.added)).to_pylist(), closeness)
    rid[rm.added[ai]] = gone[gi]
    return rid, rm.added[ai]


def _same(old: pa.Array, new: pa.Array, options: DiffOptions) -> np.ndarray:
    """The diff engine's equality, asked only where the values are not plainly equal
    (equal values of one type are equal under any options)."""
    if old.type != new.type:
        return equal_mask(old, new, options)
    eq = _np(pc.equal(old, new))
    rest = np.flatnonzero(~eq)
    if len(rest):
        idx = pa.array(rest)
        eq[rest] = equal_mask(old.take(idx), new.take(idx), options)
    return eq


def _write_state(path: Path, state: _State, compress: bool = True) -> None:
    """Arrow IPC; the latest state uncompressed (memory-mapped reads cost ~nothing),
    checkpoints lz4 (several times smaller)."""
    meta = json.dumps({"format": FORMAT, "columns": state.columns, "present": state.present})
    table = state.table.replace_schema_metadata({META: meta.encode()})
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(
            sink, table.schema,
            options=pa.ipc.IpcWriteOptions(compression="lz4" if compress else None)) as writer:
        writer.write_table(table)
    os.replace(tmp, path)


def _read_state(path: Path) -> _State:
    with pa.memory_map(str(path)) as source:
        table = pa.ipc.open_file(source).read_all()
    meta = json.loads(table.schema.metadata[META])
    return _State(table.replace_schema_metadata(None), meta["columns"], meta["present"])


# ---------------------------------------------------------------- the index


class _Index:
    """The blame index of one (dataset, channel, table, mode)."""

    def __init__(self, archive: ArchiveContext, dataset: str, channel: str, table: str,
                 strict: bool) -> None:
        self.archive = archive
        self.dataset, self.channel, self.table, self.strict = dataset, channel, table, strict
        self.dir = _base(archive) / dataset / channel / table / ("strict" if strict else "normal")
        self.options = _options(strict)
        self._tables: dict[str, tuple[pa.Table, dict, pa.Array | None]] = {}

    # -- key ---------------------------------------------------------------
    def key(self, series: Sequence[Entry]) -> tuple[list[str] | None, str]:
        """(key, how it was chosen), cached per latest release holding the table."""
        latest = _latest_with(series, self.table)
        if latest is None:
            raise AtdError(f"{self.dataset}: no release in channel {self.channel!r} has a "
                           f"table {self.table!r}")
        meta = latest.record["tables"][self.table]
        manifest = self._manifest()
        declared_now = self._declared(meta)
        # the key (and a key known to break) holds for exactly these releases: a new
        # release, a backfill or a retraction can change the inferred key or break it
        holding = hashlib.sha256(json.dumps(
            [e.id for e in series if self.table in e.record["tables"]]).encode()).hexdigest()
        if (manifest.get("format") == FORMAT and manifest.get("declared") == declared_now
                and manifest.get("series") == holding):
            return manifest["key"], manifest["key_source"]
        key, source = key_in_force(self.archive, self.dataset, self.table, self.channel)
        # other releases (or another format): nothing known about breaking holds
        self._save_manifest({"format": FORMAT, "latest": latest.id, "key": key,
                             "key_source": source, "fingerprint": meta["fingerprint"],
                             "declared": declared_now, "series": holding})
        return key, source

    def _declared(self, meta: dict[str, Any]) -> Any:
        """What the key choice depends on besides the table: declared keys, hierarchy."""
        spec = self.archive.hierarchy(self.dataset, self.table)
        return [self.archive.dataset(self.dataset).keys.get(self.table), meta.get("key"),
                spec.to_json() if spec else None]

    def _manifest(self) -> dict[str, Any]:
        try:
            return json.loads((self.dir / "manifest.json").read_text())
        except (FileNotFoundError, ValueError):
            return {}

    def _save_manifest(self, manifest: dict[str, Any]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / "manifest.json"
        tmp = path.with_name(f".manifest.json.tmp-{os.getpid()}")
        tmp.write_text(json.dumps(manifest))  # derived state: a rename, no fsync needed
        os.replace(tmp, path)

    # -- states ------------------------------------------------------------
    def _names(self, series: Sequence[Entry], key: list[str] | None) -> list[str]:
        digest = hashlib.sha256(json.dumps([FORMAT, self.strict, key]).encode())
        names = []
        for pos, entry in enumerate(series):
            digest.update(entry.id.encode())
            names.append(f"state-{pos:06d}-{digest.copy().hexdigest()[:24]}.arrow")
        return names

    def state_at(self, pos: int, series: Sequence[Entry]) -> tuple[_State, list[str] | None,
                                                                   str]:
        """The state after release `pos` (the latest is built first, so the key is
        checked against every release before anything is answered)."""
        for _attempt in range(2):
            key, source = self.key(series)
            names = self._names(series, key)
            try:
                latest = self._build(len(series) - 1, series, names, key, latest=True)
                if pos == len(series) - 1:
                    return latest, key, source
                return self._build(pos, series, names, key), key, source
            except _KeyBroken as broken:
                if source not in ("inferred", "hierarchy"):
                    check_key_columns(broken.columns, key or [], self.table,
                                      f"{self.dataset}@{broken.where}", source)
                manifest = self._manifest()
                why = (f"key ({', '.join(key or [])}) is {broken.why} in "
                       f"{self.dataset}@{broken.where}")
                self.archive.notices.append(
                    f"blame {self.table}: {why}; rows are matched as whole rows (keyless)")
                manifest.update({"key": None, "key_source": f"none ({why})",
                                 "broken_key": key})
                self._save_manifest(manifest)
        raise AssertionError("unreachable: keyless replay cannot break its key")

    def each_state(self, series: Sequence[Entry]) -> Any:
        """(key, iterator of the state after each release, oldest first): stored states
        where they are, one pairwise step from the one before elsewhere."""
        _, key, _ = self.state_at(len(series) - 1, series)  # settles the key, warms it
        names = self._names(series, key)

        def walk() -> Any:
            have = set(os.listdir(self.dir))
            state: _State | None = None
            for p in range(len(series)):
                if names[p] in have:
                    try:
                        state = _read_state(self.dir / names[p])
                        yield state
                        continue
                    except (OSError, pa.ArrowInvalid, KeyError, ValueError):
                        pass
                state = self._step(state, series, p, key)
                yield state

        return key, walk()

    def _build(self, pos: int, series: Sequence[Entry], names: list[str],
               key: list[str] | None, latest: bool = False) -> _State:
        self.dir.mkdir(parents=True, exist_ok=True)
        have = set(os.listdir(self.dir))
        if names[pos] in have:
            try:
                return _read_state(self.dir / names[pos])
            except (FileNotFoundError, OSError, pa.ArrowInvalid, KeyError, ValueError):
                have.discard(names[pos])
        start = pos
        while start >= 0 and names[start] not in have:
            start -= 1
        state: _State | None = None
        if start >= 0:
            try:
                state = _read_state(self.dir / names[start])
            except (FileNotFoundError, OSError, pa.ArrowInvalid, KeyError, ValueError):
                start, state = -1, None
        for p in range(start + 1, pos + 1):
            state = self._step(state, series, p, key)
            if p == pos or (p + 1) % CHECKPOINT == 0:
                _write_state(self.dir / names[p], state, compress=not (latest and p == pos))
        assert state is not None
        if latest:
            keep = {names[p] for p in range(len(names)) if (p + 1) % CHECKPOINT == 0}
            keep |= {names[pos], "manifest.json"}
            for name in have - keep:
                if name.startswith("state-"):
                    (self.dir / name).unlink(missing_ok=True)
        return state

    def _step(self, state: _State | None, series: Sequence[Entry], p: int,
              key: list[str] | None) -> _State:
        entry = series[p]
        tables = entry.record["tables"]
        if self.table not in tables:
            return _advance(state, None, p, key=key, options=self.options)
        if p > 0 and state is not None:
            before = series[p - 1].record["tables"].get(self.table)
            if before and before["fingerprint"] == tables[self.table]["fingerprint"]:
                return state  # the same table content: nothing moves
        table, meta, src = self._read(entry)
        try:
            return _advance(state, table, p, key=key, options=self.options, meta=meta, src=src)
        except _KeyBroken as broken:
            broken.where = entry.short
            raise

    def _read(self, entry: Entry) -> tuple[pa.Table, dict, pa.Array | None]:
        if entry.id not in self._tables:
            snap = self.archive.snapshot_of(entry.record)
            meta = snap.table_meta(self.table)
            self._tables = {entry.id: (snap.table(self.table), meta,
                                       snap.source_rows(self.table))}
        return self._tables[entry.id]


def _base(archive: ArchiveContext) -> Path:
    return archive.layout.blame


@dataclass(frozen=True)
class StateView:
    """One release's blame state, read-only: every row ever seen (stable positions, new
    rows appended), which are present, and per column the release each value is from."""

    state: _State

    @property
    def rows(self) -> int:
        return self.state.table.num_rows

    def present(self) -> np.ndarray:
        return self.state.np("_present").astype(bool)

    def columns(self) -> dict[str, int]:
        """The release's columns -> their index j in the state."""
        return {self.state.columns[j]: j for j in self.state.present}

    def blamed(self, j: int) -> np.ndarray:
        """Per row: the series position that gave column j its value (-1: never)."""
        return self.state.np(f"b{j}").astype(np.int32, copy=False)

    def text(self, j: int, rows: np.ndarray) -> pa.Array:
        return to_text(self.state.col(f"v{j}").take(pa.array(rows))).cast(pa.string())

    def cells(self, j: int, rows: np.ndarray) -> pa.Array:
        return self.state.col(f"s{j}").take(pa.array(rows))


def states(archive: ArchiveContext, dataset: str, table: str, series: Sequence[Entry], *,
           channel: str = "public", strict: bool = False) -> tuple[list[str] | None, Any]:
    """(key, iterator of `StateView` after each release of SERIES) — a publication-order
    prefix of CHANNEL — from the blame index (what `atdarchive.vintages` reads)."""
    key, walk = _Index(archive, dataset, channel, table, strict).each_state(series)
    return key, (StateView(state) for state in walk)


def _latest_with(series: Sequence[Entry], table: str) -> Entry | None:
    for entry in reversed(series):
        if table in entry.record["tables"]:
            return entry
    return None


# ---------------------------------------------------------------- blame


def _target(archive: ArchiveContext, ref: str, as_of: str | None,
            include_retracted: bool = False) -> tuple[str, list[Entry], int]:
    dataset, name = split_ref(ref)
    hist = archive.history(dataset, include_retracted=include_retracted)
    entry = hist.resolve(name)
    if hist.retracted(entry.id) and not include_retracted:  # by id: in the history it was in
        archive.warn_if_retracted(hist, entry.id)
        hist = archive.history(dataset, include_retracted=True)
    series = hist.channel(entry.channel)
    pos = [e.id for e in series].index(entry.id)
    if as_of is not None:
        in_force = hist.resolve(f"{entry.channel}:{as_of}")
        pos = min(pos, [e.id for e in series].index(in_force.id))
    return dataset, series, pos


def blame(archive: ArchiveContext, ref: str, *, table: str | None = None,
          rows: dict[str, str] | None = None, columns: list[str] | None = None,
          as_of: str | None = None, strict: bool = False,
          include_retracted: bool = False) -> pa.Table:
    """One row per cell of the snapshot's table, with the release that gave it its value.

    Columns: `row` (0-based row in the snapshot's table), the key columns (a
    name clashing with a field below is prefixed `key:`), `column`, `value`
    (text), `snapshot`, `short_id`, `published`, `channel`, `source_url`,
    `original_name` (of the blamed release), `previous` (text; null when the
    cell was first published there), `revisions`, `source_cell` (`Sheet!C7`
    in the blamed release, where known), `row_first_seen`, `row_last_changed`
    (snapshot ids). Snapshot columns are dictionary-encoded (codes follow
    publication order). Order: grouped by column (table order), rows in the
    snapshot's order within each (cheapest to build; `by_row` re-sorts).
    `as_of=DATE`: the blame as it stood that day (of the release then in force;
    only releases published by then count).
    Schema metadata `atdarchive.blame` (JSON) gives snapshot, table, key,
    key_source and strict.
    """
    dataset, series, pos = _target(archive, ref, as_of, include_retracted)
    snap = archive.snapshot_of(series[pos].record)
    name = snap.default_table(table)
    index = _Index(archive, dataset, series[pos].channel, name, strict)
    state, key, source = index.state_at(pos, series)
    out = _blame_table(state, series[: pos + 1], key, rows=rows, columns=columns)
    meta = {"snapshot": snap.id, "table": name, "key": key, "key_source": source,
            "strict": strict, "dataset": dataset}
    return out.replace_schema_metadata({META: json.dumps(meta).encode()})


def _present_order(state: _State) -> np.ndarray:
    """State rows present in the release, in the release's row order."""
    present = state.np("_present").astype(bool)
    rids = np.flatnonzero(present)
    rowpos = flat(state.table.column("_row")).fill_null(-1).to_numpy(zero_copy_only=False)
    order = np.empty(len(rids), np.int64)
    order[rowpos[rids]] = rids
    return order


def _blame_table(state: _State, series: Sequence[Entry], key: list[str] | None, *,
                 rows: dict[str, str] | None, columns: list[str] | None) -> pa.Table:
    """The per-cell table, built column by column: one chunk per table column, sharing
    row-level arrays between chunks (no copy of keys, no per-cell Python)."""
    names = [state.columns[j] for j in state.present]
    where = {state.columns[j]: j for j in state.present}
    for wanted, what in ((columns or [], "--column"), (list(rows or {}), "--row")):
        unknown = [c for c in wanted if c not in where]
        if unknown:
            raise AtdError(f"{what} names {', '.join(map(repr, unknown))}, not a column of "
                           f"the table; columns are: {', '.join(names)}")
    selected = [c for c in names if c in set(columns)] if columns else names
    order = _present_order(state)
    if rows:
        mask = np.ones(len(order), bool)
        for col, val in rows.items():
            text = _ident_text(state.col(f"v{where[col]}").take(pa.array(order)))
            mask &= _np(pc.equal(text, _norm_given(str(val))))
        order = order[mask]
    m = len(order)
    # the common case (no absent rows, none reordered): state rows are the release's rows
    same = m == state.table.num_rows and bool(np.all(order == np.arange(m)))
    order_arr = pa.array(order)

    def pick(name: str) -> pa.Array:
        arr = state.col(name)
        return arr if same else arr.take(order_arr)

    def pick_np(name: str) -> np.ndarray:
        arr = state.np(name)
        return arr if same else arr[order]

    blamed = [pick_np(f"b{where[c]}").astype(np.int32, copy=False) for c in selected]
    last = np.zeros(m, np.int32)
    for c in names:
        last = np.maximum(last, pick_np(f"b{where[c]}"))
    first = pick_np("_first").astype(np.int32, copy=False)
    ids = [e.id for e in series]
    fields = {
        "snapshot": ids,
        "short_id": [e.short for e in series],
        "published": [e.published for e in series],
        "channel": [e.channel for e in series],
        "source_url": [e.record.get("source_url") for e in series],
        "original_name": [e.record["original"]["name"] for e in series],
    }

    def chunks(arrays: list[pa.Array], kind: pa.DataType) -> pa.ChunkedArray:
        return pa.chunked_array(arrays, kind)

    def repeated(arr: pa.Array) -> pa.ChunkedArray:
        return pa.chunked_array([arr] * len(selected), arr.type)

    out: dict[str, pa.ChunkedArray] = {"row": repeated(pick("_row"))}
    for k in key or []:
        if k in where:
            out[f"key:{k}" if k in BLAME_FIELDS else k] = repeated(decode(pick(f"v{where[k]}")))
    out["column"] = pa.chunked_array(
        [pa.DictionaryArray.from_arrays(pa.array(np.full(m, i, np.int32)),
                                        pa.array(selected, pa.string()))
         for i in range(len(selected))])
    out["value"] = chunks([to_text(pick(f"v{where[c]}")).cast(pa.string())
                           for c in selected], pa.string())
    blamed_all = np.concatenate(blamed) if blamed else np.zeros(0, np.int32)
    for field, values in fields.items():
        out[field] = pa.chunked_array([_dictionary(values, blamed_all)])
    out["previous"] = chunks([pick(f"p{where[c]}") for c in selected], pa.string())
    out["revisions"] = chunks([pa.array(pick_np(f"r{where[c]}").astype(np.int32, copy=False))
                               for c in selected], pa.int32())
    out["source_cell"] = chunks([pick(f"s{where[c]}") for c in selected], pa.string())
    out["row_first_seen"] = repeated(_dictionary(ids, first))
    out["row_last_changed"] = repeated(_dictionary(ids, last))
    table = pa.table(out)
    return table if len(selected) else table.slice(0, 0)


def _dictionary(per_position: list[str | None], positions: np.ndarray) -> pa.Array:
    """A dictionary array of per-release values (unique, non-null dictionary entries,
    so pandas turns it into a categorical); codes follow publication order."""
    uniq: dict[str, int] = {}
    remap = np.full(len(per_position), -1, np.int32)
    for pos, value in enumerate(per_position):
        if value is not None:
            remap[pos] = uniq.setdefault(value, len(uniq))
    dictionary = pa.array(list(uniq), pa.string())
    n = len(positions)
    if not uniq:
        return pa.DictionaryArray.from_arrays(pa.nulls(n, pa.int32()), dictionary)
    if np.array_equal(remap, np.arange(len(per_position))):
        codes = pa.array(positions.astype(np.int32, copy=False))
    elif len(uniq) == 1 and not (remap < 0).any():
        codes = pa.array(np.zeros(n, np.int32))
    else:
        mapped = remap[positions]
        codes = pa.array(mapped, pa.int32(), mask=mapped < 0 if (remap < 0).any() else None)
    return pa.DictionaryArray.from_arrays(codes, dictionary)


def _np(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    arr = flat(arr)
    return arr.fill_null(False).to_numpy(zero_copy_only=False)


# ---------------------------------------------------------------- maintenance


def update_index(archive: ArchiveContext, snapshot: Snapshot) -> list[str]:
    """Bring the blame indexes of the snapshot's channel up to date after a commit.

    Called by `derived.update_after_commit` inside the write lock. One pairwise
    step per table (or a replay from the insertion point after a backfill).
    The strict index of a table is kept warm only once someone asked for it.
    Returns the tables updated.
    """
    dataset, channel = snapshot.dataset, snapshot.channel
    series = archive.history(dataset).channel(channel)
    base = _base(archive) / dataset / channel
    names = set(snapshot.record["tables"])
    if base.is_dir():
        names |= {p.name for p in base.iterdir() if p.is_dir()}
    done = []
    for name in sorted(names):
        for strict in (False, True):
            if strict and not (base / name / "strict").is_dir():
                continue
            if _latest_with(series, name) is None:
                shutil.rmtree(base / name, ignore_errors=True)
                continue
            try:
                _Index(archive, dataset, channel, name, strict).state_at(len(series) - 1,
                                                                         series)
            except AtdError:  # a declared key the table lacks: commit warned; blame errs
                break
        else:
            done.append(name)
    return done


def reindex(archive: ArchiveContext, dataset: str | None = None) -> list[dict[str, Any]]:
    """Throw away and rebuild the blame indexes (every channel and table) of one or all
    datasets. Returns one dict per index built: dataset, channel, table, releases, rows."""
    built = []
    for name in [dataset] if dataset else archive.dataset_names():
        hist = archive.history(name)
        shutil.rmtree(_base(archive) / name, ignore_errors=True)
        for channel in hist.channels():
            series = hist.channel(channel)
            tables = sorted({t for e in series for t in e.record["tables"]})
            for table in tables:
                index = _Index(archive, name, channel, table, strict=False)
                state, key, source = index.state_at(len(series) - 1, series)
                built.append({"dataset": name, "channel": channel, "table": table,
                              "releases": len(series), "rows": state.table.num_rows,
                              "key": key, "key_source": source})
    return built


# ---------------------------------------------------------------- history

HISTORY_STATUSES = ("first", "changed", "unchanged", "republished", "absent", "reappeared")


def history(archive: ArchiveContext, dataset: str, *, table: str | None, row: dict[str, str],
            column: str | None = None, channel: str = "public",
            strict: bool = False) -> pa.Table:
    """A row (or one cell) in every release of the channel, oldest first.

    `status`: first, changed, unchanged, republished (value unchanged and the
    release's file is byte-identical to an earlier one), absent (row or table
    missing), reappeared (present again after an absence), renamed (its key
    changed slightly: the row is followed back through renames, `identity`). `previous` is the
    last value seen before the release. With `column`: value, previous,
    source_cell. Without: `changes` (list of {column, old, new, absent}) and one text
    column per table column. `absent` says what was missing (row, column, table);
    `value_json` / `values_json` keep the values' own types (JSON text). Rows are
    matched as blame matches them (its key). `table` may be None when every release
    has the same one table.
    """
    if not row:
        raise AtdError("history needs --row COL=VAL (e.g. --row Agency=Total)")
    hist = archive.history(dataset)
    series = hist.channel(channel)
    if not series:
        raise AtdError(f"{dataset}: no releases in channel {channel!r} "
                       f"(channels: {', '.join(hist.channels()) or 'none'})")
    table = table or only_table(dataset, series)
    if _latest_with(series, table) is None:
        raise AtdError(f"{dataset}: no release in channel {channel!r} has a table {table!r}")
    key, source = _Index(archive, dataset, channel, table, strict).key(series)
    columns = list(dict.fromkeys(c["name"] for e in series if table in e.record["tables"]
                                 for c in e.record["tables"][table]["schema"]))
    latest = _latest_with(series, table)
    assert latest is not None
    derived = archive.snapshot_of(latest.record).table(table).column_names
    known = list(dict.fromkeys([*derived, *columns]))
    if key and source not in ("inferred", "hierarchy"):
        check_key_columns(known, key, table, f"{dataset}@{latest.short}", source)
    for name, option in [*((r, "--row") for r in row), *([(column, "--column")] if column
                                                          else [])]:
        if name not in known:
            import difflib

            near = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
            raise AtdError(f"{option} names {name!r}, not a column of table {table!r} in any "
                           f"release of {dataset}" + (f"; did you mean {near[0]!r}?" if near
                                                      else ""))
    options = _options(strict)
    by_key = bool(key) and set(row) == set(key)
    target = SEP.join(_norm_given(str(row[k])) for k in key) if by_key and key else None
    spec = ", ".join(f"{k}={v}" for k, v in row.items())
    targets = _renamed_targets(archive, series, table, row, key, target, spec) \
        if target is not None else {}
    seen_sha: set[str] = set()
    last: dict[str, pa.Array] = {}
    last_typed: dict[str, Any] = {}
    last_columns: set[str] = set()  # the columns of the last release holding the row
    last_target = None
    ever = was_present = False
    out: list[dict[str, Any]] = []
    order: list[str] = []
    for entry in series:
        if target is not None:
            target = targets[entry.id]
        sha = entry.record["original"]["sha256"]
        republished = sha in seen_sha
        seen_sha.add(sha)
        base = {"snapshot": entry.id, "short_id": entry.short, "published": entry.published,
                "channel": entry.channel, "source_url": entry.record.get("source_url"),
                "original_name": entry.record["original"]["name"]}
        found = _find_row(archive, entry, table, row, key if by_key else None, target, spec)
        if found is None:
            out.append({**base, "status": "absent", "values": {}, "typed": {}, "changes": [],
                        "previous": _texts(last), "previous_typed": dict(last_typed),
                        "cells": {},
                        "absent": "row" if table in entry.record["tables"] else "table"})
            was_present = False
            continue
        data, index, cells = found
        values = {c: decode(flat(data.column(c))).slice(index, 1) for c in data.column_names}
        if column is not None and column not in values:  # the row is there, the column not
            out.append({**base, "status": "absent", "values": {}, "typed": {}, "changes": [],
                        "previous": _texts(last), "previous_typed": dict(last_typed),
                        "cells": {}, "absent": "column"})
            ever = was_present = True
            continue
        for c in data.column_names:
            if c not in order:
                order.append(c)
        changes = []
        for c, v in values.items():
            if column is not None and c != column:
                continue
            if c in last and not equal_mask(last[c], v, options)[0]:
                changes.append({"column": c, "old": _text1(last[c]), "new": _text1(v),
                                "absent": False})
            elif c not in last and ever:
                changes.append({"column": c, "old": None, "new": _text1(v), "absent": False})
        if column is None and was_present:  # columns the agency dropped
            changes += [{"column": c, "old": _text1(last[c]), "new": None, "absent": True}
                        for c in sorted(last_columns - set(values), key=order.index)]
        if not ever:
            status = "first"
        elif not was_present:
            status = "reappeared"
        elif target != last_target:
            status = "renamed"
        elif changes:
            status = "changed"
        else:
            status = "republished" if republished else "unchanged"
        typed = {c: v.to_pylist()[0] for c, v in values.items()}
        out.append({**base, "status": status, "values": _texts(values), "changes": changes,
                    "typed": typed, "previous": _texts(last),
                    "previous_typed": dict(last_typed), "cells": cells, "absent": None})
        last.update(values)
        last_typed.update(typed)
        last_columns = set(values)
        ever = was_present = True
        last_target = target
    if not ever:
        raise AtdError(f"{dataset}: no row {spec} in table {table!r} in any of the "
                       f"{len(series)} release(s) of channel {channel!r}")
    return _history_table(out, column, order).replace_schema_metadata(
        {"table": json.dumps(table)})


def _renamed_targets(archive: ArchiveContext, series: Sequence[Entry], table: str,
                     row: dict[str, str], key: list[str] | None, target: str,
                     spec: str) -> dict[str, str]:
    """The row's key text in each release, following renames back from the newest
    release that has it (`identity`: the diff pairs a renamed row)."""
    from atdarchive.diff.snapshots import diff_snapshots

    targets: dict[str, str] = {}
    current = target
    found_after = False
    for i in range(len(series) - 1, -1, -1):
        entry = series[i]
        targets[entry.id] = current
        found = _find_row(archive, entry, table, row, key, current, spec) is not None
        if found_after and not found and i + 1 < len(series):
            newer = series[i + 1]
            new_snap = archive.snapshot_of(newer.record)
            td = diff_snapshots(archive.snapshot_of(entry.record), new_snap, table=table,
                                cache_dir=archive.layout.fingerprints,
                                key_for=key_resolver(archive, new_snap)).tables[table]
            for r in td.rows_renamed.to_pylist():
                if SEP.join(_norm_given(str(v)) for v in r["new_key"]) == current:
                    current = SEP.join(_norm_given(str(v)) for v in r["old_key"])
                    targets[entry.id] = current
                    found = True
                    break
        found_after = found
    return targets


def _json_value(typed: dict[str, Any], column: str) -> str | None:
    """A value as JSON text, its type kept (21129, not "21129"); None when absent."""
    return json.dumps(typed[column], default=str) if column in typed else None


def _text1(arr: pa.Array) -> str | None:
    return to_text(arr).cast(pa.string())[0].as_py()


def _texts(values: dict[str, pa.Array]) -> dict[str, str | None]:
    return {c: _text1(v) for c, v in values.items()}


def _find_row(archive: ArchiveContext, entry: Entry, table: str, row: dict[str, str],
              key: list[str] | None, target: str | None,
              spec: str) -> tuple[pa.Table, int, dict[str, str]] | None:
    """(table, row index, source cells) of the row in one release, or None when absent."""
    if table not in entry.record["tables"]:
        return None
    snap = archive.snapshot_of(entry.record)
    data = snap.table(table)
    if key is not None:
        if any(k not in data.column_names for k in key):
            return None
        hits = np.flatnonzero(_np(pc.equal(_row_ids(data, key), target)))
    else:
        if any(c not in data.column_names for c in row):
            return None
        mask = np.ones(data.num_rows, bool)
        for col, val in row.items():
            mask &= _np(pc.equal(_ident_text(data.column(col)), _norm_given(str(val))))
        hits = np.flatnonzero(mask)
    if len(hits) == 0:
        return None
    if len(hits) > 1:
        raise AtdError(f"{entry.record['dataset']}@{entry.short}: --row {spec} matches "
                       f"{len(hits)} rows of table {table!r}; add COL=VAL for more columns")
    index = int(hits[0])
    meta, src = snap.table_meta(table), snap.source_rows(table)
    cells = {}
    if src is not None:
        rows = np.array([index])
        for c in data.column_names:
            cells[c] = cell_addresses(meta, c, src, rows)[0].as_py()
    return data, index, cells


def _history_table(out: list[dict[str, Any]], column: str | None,
                   order: list[str]) -> pa.Table:
    fixed = ["snapshot", "short_id", "published", "channel", "status", "absent",
             "source_url", "original_name"]
    base = {f: pa.array([r[f] for r in out], pa.string()) for f in fixed}
    if column is not None:
        if column not in order and out:
            raise AtdError(f"--column {column!r} is not a column of the row in any release "
                           f"(columns: {', '.join(order)})")
        base["value"] = pa.array([r["values"].get(column) for r in out], pa.string())
        base["value_json"] = pa.array([_json_value(r["typed"], column) for r in out],
                                      pa.string())
        base["previous_json"] = pa.array(
            [_json_value(r["previous_typed"], column) if r["status"] != "first" else None
             for r in out], pa.string())
        base["previous"] = pa.array(
            [r["previous"].get(column) if r["status"] != "first" else None for r in out],
            pa.string())
        base["source_cell"] = pa.array([r["cells"].get(column) for r in out], pa.string())
        return pa.table(base)
    change_type = pa.list_(pa.struct([("column", pa.string()), ("old", pa.string()),
                                      ("new", pa.string()), ("absent", pa.bool_())]))
    base["changes"] = pa.array([r["changes"] for r in out], change_type)
    base["values_json"] = pa.array(
        [json.dumps(r["typed"], default=str) if r["typed"] else None for r in out],
        pa.string())
    for c in order:
        name = f"col:{c}" if c in base else c
        base[name] = pa.array([r["values"].get(c) for r in out], pa.string())
    return pa.table(base)


# ---------------------------------------------------------------- row view


def by_row(cells: pa.Table) -> pa.Table:
    """A blame table re-ordered git-blame style: by row, then column (stable sort)."""
    if cells.num_rows == 0:
        return cells
    return cells.take(pc.sort_indices(cells.select(["row"]), [("row", "ascending")]))


def row_changes(cells: pa.Table) -> list[dict[str, Any]]:
    """Per row of a `blame` table, its most recent change among the cells shown
    (git-blame's one line per row): row, key (values), snapshot/short_id/published,
    `added` (those cells were first published with the row) and `changes`
    [{column, old, new}] of the cells it touched. A presentation helper."""
    if cells.num_rows == 0:
        return []
    cells = by_row(cells)
    meta = json.loads((cells.schema.metadata or {}).get(META, b"{}"))
    key_names = [f"key:{k}" if k in BLAME_FIELDS else k for k in meta.get("key") or []]
    key_names = [k for k in key_names if k in cells.column_names]
    # snapshot dictionary codes follow publication order; cells come grouped by row
    blamed = flat(cells.column("snapshot")).indices.to_numpy(zero_copy_only=False)
    rows = flat(cells.column("row")).to_numpy(zero_copy_only=False)
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    newest = np.maximum.reduceat(blamed, starts)
    group = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(rows)]))
    touched = cells.filter(pa.array(blamed == newest[group]))
    out: dict[int, dict[str, Any]] = {}
    for rec in touched.select(["row", *key_names, "column", "value", "previous", "snapshot",
                               "short_id", "published", "row_first_seen"]).to_pylist():
        item = out.setdefault(rec["row"], {
            "row": rec["row"], "key": {k: rec[k] for k in key_names},
            "snapshot": rec["snapshot"], "short_id": rec["short_id"],
            "published": rec["published"], "added": True, "changes": []})
        if rec["previous"] is not None or rec["snapshot"] != rec["row_first_seen"]:
            item["added"] = False
        item["changes"].append({"column": rec["column"], "old": rec["previous"],
                                "new": rec["value"]})
    for item in out.values():
        if not item["added"]:
            item["changes"] = [c for c in item["changes"] if c["old"] is not None] or \
                item["changes"]
    return [out[r] for r in sorted(out)]
