"""The text rendering of a diff: grouped by row, wrapped to 80 columns, coloured (via
rich) only on a terminal."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO, Any

from atdarchive.diff.types import ROW_EXTRAS, ROW_INDEX, SnapshotDiff, TableDiff
from atdarchive.render.diff_records import Out, as_snapshot_diff, delta, diff_title, key_text

Segment = tuple[str, str]  # (text, rich style)


def _n(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _short(v: Any, width: int = 24) -> str:
    s = "null" if v is None else str(v)
    s = s.replace("\n", " ")
    return s if len(s) <= width else s[: width - 1] + "\u2026"


def _key_part(v: Any) -> str:
    """One key value in a row label; a hierarchy's group row has no member: ∅ (as blame)."""
    return "\u2205" if v is None else _short(v, 30)


def _row_label(td: TableDiff, r: dict) -> str:
    if td.key:
        return " \u00b7 ".join(_key_part(r[k]) for k in td.key_column_names())
    return f"row {r['new_row'] + 1}"


def _wrap_items(label: str, label_w: int, items: list[list[Segment]], width: int,
                label_style: str) -> list[list[Segment]]:
    """Lay out `label  item  item ...`, wrapping items under the first one."""
    lines: list[list[Segment]] = []
    indent = "  " + " " * label_w + "  "
    cur: list[Segment] = [("  " + label.ljust(label_w) + "  ", label_style)]
    cur_len = len(indent)
    first = True
    for item in items:
        ilen = sum(len(t) for t, _ in item)
        if not first and cur_len + 2 + ilen > width:
            lines.append(cur)
            cur, cur_len, first = [(indent, "")], len(indent), True
        if not first:
            cur.append(("  ", ""))
            cur_len += 2
        cur.extend(item)
        cur_len += ilen
        first = False
    lines.append(cur)
    return lines


_SCHEMA_TEXT = {
    "column_added": "+ column {col} ({new})",
    "column_removed": "- column {col} ({old})",
    "column_renamed": "~ column {old} renamed to {new}",
    "column_reordered": "~ column {col} moved from position {old} to {new}",
    "type_changed": "~ column {col} type {old} \u2192 {new}",
}


def _schema_lines(td: TableDiff) -> list[list[Segment]]:
    out = []
    for r in td.schema_changes.to_pylist():
        ch, col, old, new = r["change"], r["column"], r["old"], r["new"]
        if ch == "table_added":
            text = f"+ table added ({td.counts['rows_added']} rows)"
        elif ch == "table_removed":
            text = f"- table removed ({td.counts['rows_removed']} rows)"
        else:
            text = _SCHEMA_TEXT.get(ch, "{ch} {col} {old} {new}").format(
                ch=ch, col=col, old=old, new=new)
        style = "green" if text.startswith("+") else "red" if text.startswith("-") else "yellow"
        out.append([("  schema ", "dim"), (text, style)])
    return out


def _cell_lines(td: TableDiff, limit: int | None, width: int) -> list[list[Segment]]:
    out: list[list[Segment]] = []
    groups: dict[int, list[dict]] = {}
    for r in td.cells_changed.to_pylist():
        groups.setdefault(r["new_row"], []).append(r)
    shown = list(groups.values())[: limit if limit is not None else None]
    label_w = min(max((len(_row_label(td, g[0])) for g in shown), default=0), 24)
    for g in shown:
        items = [[(f"{r['column']} ", "bold"), (_short(r["old"]), "red"), (" \u2192 ", ""),
                  (_short(r["new"]), "green"), (delta(r), "dim")] for r in g]
        label = _short(_row_label(td, g[0]), label_w)
        out.extend(_wrap_items(label, label_w, items, width, "bold"))
    if len(groups) > len(shown):
        out.append([(f"  \u2026 {len(groups) - len(shown)} more changed rows", "dim")])
    return out


def _renamed_lines(td: TableDiff, width: int) -> list[list[Segment]]:
    """`~ renamed City BINGHAMTON → BINGHAMPTON (BROOME COUNTY JAIL · NY)`: the key parts
    that changed first, the rest of the key after."""
    out: list[list[Segment]] = []
    for r in td.rows_renamed.to_pylist():
        parts = list(zip(td.key or [], r["old_key"], r["new_key"], strict=True))
        changed = "  ".join(f"{k} {_short(o, 30)} \u2192 {_short(n, 30)}"
                            for k, o, n in parts if o != n)
        same = " \u00b7 ".join(_short(n, 30) for _, o, n in parts if o == n)
        line = f"  ~ renamed {changed}" + (f"  ({same})" if same else "")
        out.append([(line if len(line) <= width else line[: width - 1] + "\u2026", "yellow")])
    return out


def _row_lines(td: TableDiff, limit: int | None, width: int) -> list[list[Segment]]:
    out: list[list[Segment]] = []
    for title, rows, mark, style in (
        ("added", td.rows_added, "+", "green"),
        ("removed", td.rows_removed, "-", "red"),
    ):
        if not rows.num_rows:
            continue
        n = rows.num_rows if limit is None else min(limit, rows.num_rows)
        for r in rows.slice(0, n).to_pylist():
            vals = {k: v for k, v in r.items() if k not in ROW_EXTRAS}
            if td.key:
                label = " \u00b7 ".join(_key_part(vals[k]) for k in td.key)
                rest = [f"{k}={_short(v, 16)}" for k, v in vals.items() if k not in td.key]
            else:
                label = f"row {r.get(ROW_INDEX, 0) + 1}"
                rest = [f"{k}={_short(v, 16)}" for k, v in vals.items()]
            line = f"  {mark} {label}  " + "  ".join(rest)
            if len(line) > width:
                line = line[: width - 1] + "\u2026"
            out.append([(line, style)])
        if rows.num_rows > n:
            out.append([(f"  \u2026 {rows.num_rows - n} more {title} rows", "dim")])
    return out


def _text_lines(diff: TableDiff | SnapshotDiff, limit: int | None,
                width: int) -> list[list[Segment]]:
    sd = as_snapshot_diff(diff)
    c = sd.counts
    out: list[list[Segment]] = []
    head = ""
    if sd.about:  # dataset, dates and short ids on a line of their own
        out.append([(diff_title(sd), "bold")])
    elif sd.a_id or sd.b_id:
        head = f"{(sd.a_id or '-')[:10]} \u2192 {(sd.b_id or '-')[:10]}: "
    summary = (
        f"{_n(c['rows_changed'], 'row')} changed ({_n(c['cells_changed'], 'cell')}), "
        f"{c['rows_added']} added, {c['rows_removed']} removed, "
        + (f"{c['rows_renamed']} renamed, " if c.get("rows_renamed") else "")
        + f"{c['schema_changes']} schema changes"
    )
    out.append([(head + ("no changes" if sd.is_empty() else summary), "bold")])
    for name, td in sd.tables.items():
        keys = key_text(td)
        out.append([])
        title = f"\u2500\u2500 {name} "
        if len(title) + len(keys) + 2 <= width:
            out.append([(title, "bold cyan"), (f"[{keys}]", "dim")])
        else:  # long table names: the key goes on its own line, to stay within `width`
            out += [[(title, "bold cyan")], [(f"   [{keys}]", "dim")]]
        for note in td.notes:
            out.append([("  note: " + note, "yellow")])
        if td.is_empty():
            out.append([("  no changes", "dim")])
            continue
        out += _schema_lines(td)
        out += _renamed_lines(td, width)
        out += _cell_lines(td, limit, width)
        table_level = any(r["change"] in ("table_added", "table_removed")
                          for r in td.schema_changes.to_pylist())
        if not table_level:
            out += _row_lines(td, limit, width)
    return out


def render_text(diff: TableDiff | SnapshotDiff, *, limit: int | None = None,
                width: int = 80) -> str:
    """Plain text (no colour), lines at most `width` wide where values allow."""
    return "".join("".join(t for t, _ in line) + "\n"
                   for line in _text_lines(diff, limit, width))


def print_text(diff: TableDiff | SnapshotDiff, file: IO[str] | None = None, *,
               limit: int | None = None, color: bool | None = None, width: int = 80) -> None:
    """Write the text rendering; colour (via rich) only when `file` is a terminal."""
    file = file if file is not None else sys.stdout
    if color is None:
        color = bool(getattr(file, "isatty", lambda: False)())
    if not color:
        file.write(render_text(diff, limit=limit, width=width))
        return
    from rich.console import Console
    from rich.text import Text

    from atdarchive.render.safe import cell

    # our colour codes go to the terminal itself; the data in them is escaped first
    console = Console(file=getattr(file, "raw", file), force_terminal=True,
                      width=max(width, 40), highlight=False)
    for line in _text_lines(diff, limit, width):
        text = Text()
        for t, style in line:
            text.append(cell(t), style=style or None)
        console.print(text, soft_wrap=True)


def write_text(diff: TableDiff | SnapshotDiff, out: Out, *, limit: int | None = None,
               color: bool | None = None, width: int = 80) -> None:
    """Text to a path (never coloured unless asked), a stream or stdout."""
    if isinstance(out, str | Path):
        with open(out, "w", encoding="utf-8") as fh:
            print_text(diff, fh, limit=limit, color=bool(color), width=width)
    else:
        print_text(diff, out, limit=limit, color=color, width=width)
