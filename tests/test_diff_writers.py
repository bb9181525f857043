"""Diff writers: JSON validity and shape, text grouping/plainness, html self-containment."""

from __future__ import annotations

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from atdarchive.diff import DiffOptions, SnapshotDiff, diff_tables
from atdarchive.render.diff_writers import (
    LONG_SCHEMA,
    long_table,
    render_html,
    render_markdown,
    render_text,
    to_json_obj,
    write_diff,
)

MONTHS = ["Oct", "Nov", "Dec", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep"]


def book_ins(feb_total: int, apr_total: int, extra_row: bool = False) -> pa.Table:
    cols = {m: [20000 + i, 900 + i, 19000 + i] for i, m in enumerate(MONTHS)}
    cols["Feb"][0], cols["Apr"][0] = feb_total, apr_total
    t = pa.table({"agency": ["Total", "CBP", "ICE"], **cols,
                  "Total": [250000, 11000, 239000]})
    if extra_row:
        t = pa.concat_tables([t, pa.table({"agency": ["Other"], **{m: [1] for m in MONTHS},
                                           "Total": [12]})])
    return t


@pytest.fixture
def diff():
    old = book_ins(21631, 22819)
    new = book_ins(21630, 22817, extra_row=True)
    new = new.set_column(1, "Oct", pa.array([20000, 900, float("nan"), 1.0]))  # int -> float
    return diff_tables(old, new, name="ICE Initial Book-Ins by Arresting Agency and Month",
                       new_meta={"sheet": "Book-Ins", "source_columns": {"Feb": "F"}},
                       new_source_rows=pa.array([8, 9, 10, 11]))


def test_text_groups_by_row_and_is_plain(diff):
    buf = io.StringIO()  # not a tty: no escape codes
    write_diff(diff, "text", buf)
    out = buf.getvalue()
    assert "\x1b[" not in out
    lines = out.splitlines()
    total = [ln for ln in lines if ln.strip().startswith("Total")]
    assert len(total) == 1
    assert "Feb 21631 \u2192 21630 (\u22121)" in total[0]
    assert "Apr 22819 \u2192 22817 (\u22122)" in total[0]
    assert total[0].index("Feb") < total[0].index("Apr")
    assert any("ICE" in ln and "Oct 19000 \u2192 nan" in ln for ln in lines)
    assert any("type int64 \u2192 double" in ln for ln in lines)
    assert any(ln.strip().startswith("+ Other") for ln in lines)
    assert all(len(ln) <= 80 for ln in lines), [ln for ln in lines if len(ln) > 80]
    coloured = io.StringIO()
    write_diff(diff, "text", coloured, color=True)
    assert "\x1b[" in coloured.getvalue()


def test_text_limit_and_wrap():
    old = pa.table({"k": list(range(10)), **{f"c{i}": list(range(10)) for i in range(12)}})
    new = pa.table({"k": list(range(10)),
                    **{f"c{i}": [v + 1000 for v in range(10)] for i in range(12)}})
    d = diff_tables(old, new)
    out = render_text(d, limit=3)
    assert "7 more changed rows" in out
    assert all(len(ln) <= 80 for ln in out.splitlines())
    # the 12 changes of a row wrap onto continuation lines indented under the first item
    first = out.splitlines().index(next(ln for ln in out.splitlines() if ln.startswith("  0 ")))
    assert out.splitlines()[first + 1].startswith(" " * 5)


def test_json_valid_and_shaped(diff):
    buf = io.StringIO()
    write_diff(diff, "json", buf)
    doc = json.loads(buf.getvalue())  # valid JSON (NaN became a string)
    assert doc["format"] == "atdarchive.diff/1"
    t = doc["tables"]["ICE Initial Book-Ins by Arresting Agency and Month"]
    assert t["key"] == ["agency"] and t["key_source"] == "inferred"
    feb = next(c for c in t["cells_changed"] if c["column"] == "Feb")
    assert feb["key"] == {"agency": "Total"}
    assert (feb["old_value"], feb["new_value"], feb["abs_change"]) == (21631, 21630, -1.0)
    assert feb["new_cell"] == "Book-Ins!F8"
    nan = next(c for c in t["cells_changed"] if c["new"] == "nan")
    assert nan["new_value"] == "NaN"
    assert t["rows_added"][0]["values"]["agency"] == "Other"
    assert t["rows_added"][0]["source_row"] == 11
    assert {"change": "type_changed", "column": "Oct", "old": "int64", "new": "double"} in \
        t["schema_changes"]
    assert doc["counts"]["cells_changed"] == t["counts"]["cells_changed"] == len(
        t["cells_changed"])


def test_json_of_empty_diff():
    t = pa.table({"k": [1], "v": [float("nan")]})
    d = diff_tables(t, t)
    doc = json.loads(json.dumps(to_json_obj(SnapshotDiff("a1", "b2", {"data": d}))))
    assert doc["a"] == "a1" and doc["tables"]["data"]["cells_changed"] == []
    assert not any(doc["counts"].values())
    assert "no changes" in render_text(d)


def test_long_formats(diff, tmp_path):
    lt = long_table(diff)
    assert lt.select(LONG_SCHEMA.names).schema.equals(LONG_SCHEMA)
    assert lt.column_names[3] == "agency"  # the key column, as a real column after `key`
    assert "Other" in lt.column("agency").to_pylist()
    kinds = set(lt.column("change").to_pylist())
    assert {"cell_changed", "row_added", "type_changed"} <= kinds
    write_diff(diff, "parquet", tmp_path / "d.parquet")
    assert pq.read_table(tmp_path / "d.parquet").num_rows == lt.num_rows
    write_diff(diff, "csv", tmp_path / "d.csv")
    assert (tmp_path / "d.csv").read_text().count("\n") == lt.num_rows + 1
    buf = io.StringIO()
    write_diff(diff, "jsonl", buf)
    recs = [json.loads(x) for x in buf.getvalue().splitlines()]
    assert len(recs) == lt.num_rows
    added = next(r for r in recs if r["change"] == "row_added")
    assert added["new"]["agency"] == "Other" and added["key"] == {"agency": "Other"}


def test_markdown_and_html(diff):
    md = render_markdown(diff)
    assert "| Total | Feb | 21631 | 21630 | \u22121 | Book-Ins!F8 |" in md
    page = render_html(diff)
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page
    low = page.lower()
    assert "<script" not in low and "http" not in low and "src=" not in low and "<link" not in low
    assert "21631" in page and "Book-Ins!F8" in page


def test_options_flow_to_writers():
    old = pa.table({"k": [1, 2], "s": ["A", "b"]})
    new = pa.table({"k": [1, 2], "s": ["a", "b"]})
    assert to_json_obj(diff_tables(old, new, options=DiffOptions(ignore_case=True)))[
        "counts"]["cells_changed"] == 0
