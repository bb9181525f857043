"""Hierarchy keys: a label column that mixes group rows and member rows becomes two key
columns, derived from the stored table on read (README "Row identity").

Two shapes of publication table are recognised:

    mixed   one label column holding group rows and their member rows, as ICE's
            "Active ATD Participants ... by AOR and Technology": `Atlanta 5930`
            followed by `SmartLINK 4773`, `VoiceID 5`, ... Member labels repeat
            between group labels that occur once; a once-only label after a group's
            first member, while the members do not yet sum to the group row, is a
            member too (so a group's first member must be a recurring label). Accepted when the
            members of most groups sum to their group row (first integer column),
            or when most member labels recur across groups; every (group, member)
            pair must be unique.
            Key: `AOR`, `Technology` (the label split at "/", else `<label> group`,
            `<label> member`); a group row's member is null.
    sparse  the group label written only on the first row of its group, the members
            in the next column ("Release Reason" / "Criminality" in the final
            book-outs table). Key: `<group> (group)` (filled down) and the member column.

The step is deterministic and versioned (`VERSION`); it never writes a snapshot (they
are immutable and `verify` re-derives the stored tables), so every release already
archived gets the same key columns in export, diff, blame and SQL. The original label
column stays. `dataset.toml` may override it per table (`[hierarchy.TABLE]`).
Indentation is not used: the readers do not keep it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from atdarchive.formats import HIERARCHY_VERSION as VERSION  # noqa: E402 - one owner
from atdarchive.keys import DERIVED_KEY_META, flat

#: Tables longer than this are not examined (hierarchies are publication tables).
MAX_ROWS = 5000
#: Fewest rows a detected hierarchy has (two groups of two members).
MIN_ROWS = 6
#: Smallest share of groups-with-members whose members must sum to the group row.
SUM_EVIDENCE = 0.6
SHAPES = ("mixed", "sparse", "none")


@dataclass(frozen=True)
class Hierarchy:
    """How to derive a table's two key columns."""

    shape: str  # "mixed" or "sparse"
    label: str  # the label column (mixed) or the group column (sparse)
    names: tuple[str, str]  # the key columns
    member: str | None = None  # sparse: the member column (= names[1])
    source: str = "detected"  # or "dataset.toml"

    @property
    def key(self) -> list[str]:
        return list(self.names)

    def to_json(self) -> dict[str, Any]:
        return {"shape": self.shape, "label": self.label, "key": self.key,
                "source": self.source, "version": VERSION}


def could_be(meta: dict[str, Any]) -> bool:
    """From a table's record alone: small enough, with a text column first."""
    schema = meta.get("schema") or []
    rows = meta.get("rows")
    return bool(schema) and schema[0].get("type") in ("string", "large_string") and (
        rows is None or rows <= MAX_ROWS)


def _is_text(t: pa.DataType) -> bool:
    t = t.value_type if pa.types.is_dictionary(t) else t
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _labels(table: pa.Table, column: str) -> list[str | None]:
    col = flat(table.column(column))
    if pa.types.is_dictionary(col.type):
        col = col.dictionary_decode()
    return [None if v is None else " ".join(v.split()) for v in col.to_pylist()]


def _free_names(table: pa.Table, wanted: tuple[str, str]) -> tuple[str, str]:
    taken = set(table.column_names)
    return tuple(n if n not in taken else f"{n} (key)" for n in wanted)  # type: ignore[return-value]


def _mixed_names(label: str) -> tuple[str, str]:
    parts = [p.strip() for p in label.split("/")]
    if len(parts) == 2 and all(parts):
        return parts[0], parts[1]
    return f"{label} group", f"{label} member"


def _measure(table: pa.Table, label: str) -> np.ndarray | None:
    """The first integer column (else the first numeric one) as float, nulls as 0."""
    fields = [f for f in table.schema if f.name != label]
    for want in (pa.types.is_integer, lambda t: pa.types.is_floating(t) or
                 pa.types.is_decimal(t)):
        for f in fields:
            if want(f.type):
                arr = pc.cast(flat(table.column(f.name)), pa.float64()).fill_null(0.0)
                return arr.to_numpy(zero_copy_only=False)
    return None


def _walk_mixed(labels: list[str | None], value: np.ndarray | None) -> list[int] | None:
    """Group number of each row (-1 for nothing yet), or None when the shape breaks;
    group rows are the first row of their group."""
    counts: dict[str | None, int] = {}
    for v in labels:
        counts[v] = counts.get(v, 0) + 1
    group = -1
    starts: list[int] = []
    filled = 0.0
    out: list[int] = []
    for i, v in enumerate(labels):
        if v is None:
            return None
        repeated = counts[v] > 1
        if not repeated and group >= 0 and value is not None and i - starts[group] > 1:
            target = value[starts[group]]
            if filled + value[i] <= target * (1 + 1e-9) and filled < target:
                repeated = True  # a once-only member (e.g. "No Tech") inside a group
        if repeated:
            if group < 0:
                return None
            filled += 0.0 if value is None else value[i]
        else:
            group += 1
            starts.append(i)
            filled = 0.0
        out.append(group)
    return out


def _members_recur(labels: list[str | None], groups: list[int], members: list[int]) -> bool:
    """Most member rows carry a label that recurs in other groups, and no group repeats
    a member label (a table of states and counties fails the second)."""
    seen: dict[str | None, set[int]] = {}
    for i in members:
        seen.setdefault(labels[i], set()).add(groups[i])
    if sum(len(g) for g in seen.values()) != len(members):
        return False
    recurring = [g for g in seen.values() if len(g) > 1]
    return len(recurring) >= 2 and sum(len(g) for g in recurring) >= 0.5 * len(members)


def _members_sum(value: np.ndarray | None, groups: list[int], starts: dict[int, int],
                 members: list[int], with_members: set[int]) -> bool:
    """The members of most groups sum to their group row."""
    if value is None or not members or not np.any(value[[starts[g] for g in with_members]]):
        return False
    sums = np.zeros(len(starts))
    np.add.at(sums, np.array([groups[i] for i in members]), value[members])
    ok = sum(1 for g in with_members
             if abs(sums[g] - value[starts[g]]) <= 1e-6 * max(1.0, abs(value[starts[g]])))
    return ok >= SUM_EVIDENCE * len(with_members)


def detect_mixed(table: pa.Table, label: str, forced: bool = False) -> tuple[
        list[str | None], list[str | None]] | None:
    """(group, member) labels per row for the mixed shape, or None."""
    labels = _labels(table, label)
    n = len(labels)
    counts: dict[str | None, int] = {}
    for v in labels:
        counts[v] = counts.get(v, 0) + 1
    repeated_rows = sum(c for c in counts.values() if c > 1)
    if not forced and (n < MIN_ROWS or not repeated_rows or len(counts) - len(
            [c for c in counts.values() if c > 1]) < 2):
        return None
    value = _measure(table, label)
    groups = _walk_mixed(labels, value)
    if groups is None:
        return None
    starts = {g: i for i, g in reversed(list(enumerate(groups)))}
    members = [i for i, g in enumerate(groups) if starts[g] != i]
    with_members = {groups[i] for i in members}
    if not forced and len(with_members) < 2:
        return None
    if not forced and not (_members_recur(labels, groups, members)
                           or _members_sum(value, groups, starts, members, with_members)):
        return None
    group_col = [labels[starts[g]] for g in groups]
    member_col = [None if starts[g] == i else labels[i] for i, g in enumerate(groups)]
    return group_col, member_col


def detect_sparse(table: pa.Table, group: str, member: str,
                  forced: bool = False) -> list[str | None] | None:
    """The group label filled down, for the sparse shape, or None."""
    labels = _labels(table, group)
    n = len(labels)
    if n == 0 or labels[0] is None:
        return None
    present = [v for v in labels if v is not None]
    nulls = n - len(present)
    if not forced and (nulls < 0.3 * n or len(set(present)) != len(present) or len(present) < 2):
        return None
    members = _labels(table, member)
    if not forced and any(m is None for m, g in zip(members, labels, strict=True) if g is None):
        return None
    filled: list[str | None] = []
    last: str | None = None
    for v in labels:
        last = v if v is not None else last
        filled.append(last)
    return filled


def _unique_pairs(a: list[str | None], b: list[str | None]) -> bool:
    return len(set(zip(a, b, strict=True))) == len(a)


def detect(table: pa.Table, override: dict[str, Any] | None = None) -> Hierarchy | None:
    """The hierarchy of a stored table (or None), as `dataset.toml` may override it."""
    override = override or {}
    shape = override.get("shape")
    if shape == "none" or (shape is None and table.num_rows > MAX_ROWS):
        return None
    text = [f.name for f in table.schema if _is_text(f.type)]
    if not text:
        return None
    source = "dataset.toml" if shape else "detected"
    label = override.get("label") or table.column_names[0]
    if label not in table.column_names or not _is_text(table.schema.field(label).type):
        return None
    forced = shape is not None
    names = override.get("names")
    if shape in (None, "sparse"):
        after = table.column_names.index(label) + 1
        member = override.get("member") or (table.column_names[after]
                                            if after < table.num_columns else None)
        if member and member in text:
            filled = detect_sparse(table, label, member, forced)
            if filled is not None and (forced or _unique_pairs(filled, _labels(table, member))):
                first = (names or [f"{label} (group)"])[0]
                return Hierarchy("sparse", label, (_free_names(table, (first, first))[0],
                                                   member), member, source)
        if shape == "sparse":
            return None
    found = detect_mixed(table, label, forced)
    if found is None or not (forced or _unique_pairs(*found)):
        return None
    wanted = tuple(names) if names and len(names) == 2 else _mixed_names(label)
    return Hierarchy("mixed", label, _free_names(table, wanted), None, source)


def apply(table: pa.Table, h: Hierarchy) -> pa.Table:
    """The table with its derived key columns in front (marked in field metadata)."""
    if h.shape == "sparse":
        filled = detect_sparse(table, h.label, h.member or "", forced=True) or []
        derived = [(h.names[0], pa.array(filled, pa.string()))]
    else:
        found = detect_mixed(table, h.label, forced=True)
        group, member = found if found is not None else ([None] * table.num_rows,) * 2
        derived = [(h.names[0], pa.array(group, pa.string())),
                   (h.names[1], pa.array(member, pa.string()))]
    tag = f"hierarchy-v{VERSION}"
    for pos, (name, arr) in reversed(list(enumerate(derived))):
        field = pa.field(name, pa.string(), metadata={DERIVED_KEY_META: f"{tag}:{pos}"})
        table = table.add_column(0, field, arr)
    if h.shape == "sparse":
        i = table.schema.get_field_index(h.names[1])
        f = table.schema.field(i)
        table = table.set_column(i, f.with_metadata({DERIVED_KEY_META: f"{tag}:1"}),
                                 table.column(i))
    return table

