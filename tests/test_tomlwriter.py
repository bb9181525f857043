"""The one TOML writer: whatever it writes, tomllib reads back unchanged."""

from __future__ import annotations

import datetime as dt
import tomllib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atdarchive.tomlwriter import dumps

KEYS = st.text(max_size=8) | st.sampled_from(["a", "b-c", "d_e", "1", "a.b", "x y", ""])
SCALARS = (st.text() | st.integers(min_value=-(2**63), max_value=2**63 - 1)
           | st.floats(allow_nan=False) | st.booleans())
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(KEYS, inner, max_size=4), max_leaves=20)
DOCUMENTS = st.dictionaries(KEYS, VALUES, max_size=6)


@settings(max_examples=300, deadline=None)
@given(DOCUMENTS)
def test_round_trips_through_tomllib(data: dict) -> None:
    assert tomllib.loads(dumps(data)) == data


@settings(max_examples=50, deadline=None)
@given(DOCUMENTS, st.dictionaries(st.sampled_from(["", "a", "a.b", "zz"]), st.text(), max_size=3))
def test_comments_never_change_the_data(data: dict, comments: dict) -> None:
    assert tomllib.loads(dumps(data, comments=comments)) == data


def test_the_hard_strings() -> None:
    data = {'quote"key': 'say "hi"\\ now\n\ttab\r\x00\x1f\x7f\b\f é ☃',
            "nested": {"deeper": {"list": [1, 2.5, -0.0, float("inf"), True, "x"],
                                  "inline": [{"a": 1}, {}, [[]]]}, "empty": {}}}
    assert tomllib.loads(dumps(data)) == data


def test_layout_tables_headers_and_comments() -> None:
    text = dumps({"name": "x", "keys": {"t": ["a", "b"]}, "deep": {"er": {"v": 1}}},
                 comments={"": "top\n\nsecond", "keys": "key columns"})
    assert text == ('# top\n#\n# second\nname = "x"\n\n# key columns\n[keys]\n'
                    't = ["a", "b"]\n\n[deep.er]\nv = 1\n')


def test_dates_round_trip_and_other_types_are_refused() -> None:
    data = {"d": dt.date(2025, 8, 29), "t": dt.datetime(2025, 8, 29, 7, 32, 1, 5),
            "z": dt.datetime(2025, 8, 29, 7, 32, tzinfo=dt.UTC), "h": dt.time(7, 32)}
    assert tomllib.loads(dumps(data)) == data
    with pytest.raises(TypeError):
        dumps({"x": None})
