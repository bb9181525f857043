"""The JSON writer's column-wise encoding writes exactly `json.dumps(to_json_obj(diff))`."""

from __future__ import annotations

import datetime as dt
import decimal
import json

import numpy as np
import pyarrow as pa
import pytest

from atdarchive.diff import DiffOptions, SnapshotDiff, diff_tables
from atdarchive.render.diff_json import render_json, to_json_obj


def table(rng: np.random.Generator, n: int, shift: int) -> pa.Table:
    """Every kind of value the writer handles, nulls and non-finite numbers included."""
    x = rng.normal(0, 1e6, n)
    x[rng.random(n) < 0.05] = np.nan
    x[rng.random(n) < 0.01] = np.inf
    x[rng.random(n) < 0.01] = -0.0
    whole = rng.random(n) < 0.1  # integral floats: int-like JSON values
    x[whole] = np.round(x[whole])
    texts = np.array(['plain', 'quote "q"', "back\\slash", "new\nline", "tab\t", "é ü 中",
                      "\u2028", "\x01ctl", ""], dtype=object)
    nulls = rng.random(n) < 0.1
    return pa.table({
        "id": pa.array(np.arange(n) + shift),
        "count": pa.array(rng.integers(-10**12, 10**12, n), mask=nulls),
        "small": pa.array(rng.integers(0, 5, n).astype("int8")),
        "amount": pa.array(x, mask=rng.random(n) < 0.05),
        "ratio": pa.array(rng.random(n).astype("float32")),
        "label": pa.array(texts[rng.integers(0, len(texts), n)].tolist(), mask=nulls),
        "cat": pa.array(texts[rng.integers(0, 3, n)].tolist()).dictionary_encode(),
        "flag": pa.array(rng.random(n) < 0.5, mask=rng.random(n) < 0.1),
        "day": pa.array([dt.date(1990, 1, 1) + dt.timedelta(days=int(d))
                         for d in rng.integers(0, 20000, n)], mask=nulls),
        "at": pa.array([dt.datetime(2020, 1, 1, 12) + dt.timedelta(seconds=int(s))
                        for s in rng.integers(0, 10**7, n)]),
        "price": pa.array([decimal.Decimal(int(c)) / 100 for c in rng.integers(0, 10**6, n)],
                          pa.decimal128(12, 2)),
        "blob": pa.array([bytes([int(b)]) for b in rng.integers(0, 256, n)]),
    })


def changed(t: pa.Table, rng: np.random.Generator) -> pa.Table:
    """About a third of the rows revised in some column, some rows dropped."""
    n = t.num_rows
    cols = {}
    for name in t.column_names:
        col = t.column(name).combine_chunks()
        if name != "id":
            pick = rng.random(n) < 0.08
            other = col.take(pa.array(rng.permutation(n)))
            col = pa.array([o if p else v for v, o, p in zip(
                col.to_pylist(), other.to_pylist(), pick, strict=True)], col.type)
        cols[name] = col
    keep = rng.random(n) > 0.05
    return pa.table(cols).filter(pa.array(keep))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("key", [["id"], None])
def test_render_json_equals_dumps_of_the_object(seed: int, key: list[str] | None) -> None:
    rng = np.random.default_rng(seed)
    old = table(rng, 1500, 0)
    new = pa.concat_tables([changed(old, rng), table(rng, 300, 10_000)])
    if key is None:  # keyless: rows as a multiset
        old, new = old.drop_columns(["id"]), new.drop_columns(["id"])
    src = pa.array(np.arange(new.num_rows, dtype=np.int32) + 8)
    td = diff_tables(old, new, name="t", options=DiffOptions(key=key), new_source_rows=src)
    assert td.cells_changed.num_rows + td.rows_added.num_rows > 1000  # the column-wise path
    small = diff_tables(old.slice(0, 20), new.slice(0, 20), name="s", options=DiffOptions())
    for diff in (td, SnapshotDiff("a" * 64, "b" * 64, {"t": td, "s": small}, ["s"], [])):
        text = render_json(diff)
        assert text == json.dumps(to_json_obj(diff), ensure_ascii=False, allow_nan=False) + "\n"
        json.loads(text)
