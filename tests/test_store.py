"""Snapshot store details: canonical table fingerprints."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from atdarchive.store import table_fingerprint


def with_garbage_under_nulls(values: list[int], valid: list[bool], arrow_type: pa.DataType,
                             storage: pa.DataType) -> pa.Array:
    """An array whose null slots hold arbitrary bytes (Arrow leaves them undefined)."""
    data = np.array([v if ok else 987654 for v, ok in zip(values, valid, strict=True)],
                    dtype=storage.to_pandas_dtype())
    mask = pa.array(valid).buffers()[1]
    return pa.Array.from_buffers(arrow_type, len(values), [mask, pa.py_buffer(data.tobytes())],
                                 null_count=valid.count(False))


@pytest.mark.parametrize("arrow_type,storage", [(pa.int64(), pa.int64()),
                                                (pa.float64(), pa.float64()),
                                                (pa.date32(), pa.int32()),
                                                (pa.timestamp("us"), pa.int64())])
def test_fingerprint_ignores_bytes_under_nulls(arrow_type: pa.DataType,
                                               storage: pa.DataType) -> None:
    garbage = with_garbage_under_nulls([5, 0, 9], [True, False, True], arrow_type, storage)
    clean = pa.array([5, None, 9], storage).view(arrow_type)
    assert garbage.equals(clean)
    assert table_fingerprint(pa.table({"x": garbage})) == table_fingerprint(
        pa.table({"x": clean}))


def test_fingerprint_tells_values_nulls_chunks_and_schema_apart() -> None:
    base = pa.table({"k": ["a", "b", None], "n": pa.array([1, None, 3])})
    fp = table_fingerprint(base)
    assert table_fingerprint(pa.table({"k": ["a", "b", None], "n": [1, 0, 3]})) != fp
    assert table_fingerprint(pa.table({"k": ["a", "b", ""], "n": pa.array([1, None, 3])})) != fp
    assert table_fingerprint(base.rename_columns(["k", "m"])) != fp
    assert table_fingerprint(base.cast(pa.schema([("k", pa.string()), ("n", pa.int32())]))) != fp
    rechunked = pa.concat_tables([base.slice(0, 1), base.slice(1)])
    assert rechunked.column(0).num_chunks == 2
    assert table_fingerprint(rechunked) == fp
    assert table_fingerprint(base.replace_schema_metadata({"x": "y"})) == fp
