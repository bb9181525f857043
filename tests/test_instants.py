"""One parser for every written form of a day or an instant (`atdarchive.instants`)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atdarchive.errors import AtdError
from atdarchive.instants import When, calendar_day, http_date, in_file_name, parse, stored

NY = "America/New_York"


@pytest.mark.parametrize("text", ["2020-12-22", "20201222", "12222020", "12/22/2020",
                                  "22/12/2020", " 2020-12-22 "])
def test_every_written_day_is_one_day(text: str) -> None:
    when = parse(text, NY)
    assert when.is_day and when.text == "2020-12-22" and when.utc is None


@pytest.mark.parametrize("text", ["2020-12-22T12:57", "2020-12-22T12:57:00",
                                  "2020-12-22 12:57", "20201222_125700", "20201222T1257",
                                  "2020-12-22T1257", "2020-12-22T17:57:00Z",
                                  "2020-12-22T12:57-05:00", "2020-12-22T17:57:00+00:00",
                                  "2020-12-22T18:57+0100"])
def test_every_written_form_of_an_instant_is_one_instant(text: str) -> None:
    """Naive forms are read in the dataset's zone (New York, EST in December)."""
    assert parse(text, NY).text == "2020-12-22T17:57:00Z"


def test_naive_input_says_which_zone_read_it() -> None:
    naive = parse("2025-08-20T13:00", NY)
    assert naive.read_in_zone and naive.zone == NY and naive.text == "2025-08-20T17:00:00Z"
    assert "read in the dataset's zone" in naive.describe()
    aware = parse("2025-08-20T13:00Z", NY)
    assert not aware.read_in_zone and aware.zone == "UTC"
    # an offset equal to the dataset zone's at that moment keeps the zone's name
    assert parse("2025-08-20T13:00-04:00", NY).zone == NY


@pytest.mark.parametrize("text, readings", [
    ("01/02/2025", ("2025-01-02", "2025-02-01")),
    ("09112025", ("2025-09-11", "2025-11-09")),
    ("03.04.2024", ("2024-03-04", "2024-04-03")),
])
def test_ambiguous_days_are_refused_naming_both_readings(text: str, readings) -> None:
    with pytest.raises(AtdError) as exc:
        parse(text, NY)
    message = str(exc.value)
    assert "ambiguous" in message and all(r in message for r in readings)
    assert "\n" not in message


@pytest.mark.parametrize("text", ["2025-02-30", "2025-13-01", "yesterday", "2025-08-20T25:00",
                                  "", "2025-03-09T02:30"])
def test_impossible_input_is_one_line(text: str) -> None:
    with pytest.raises(AtdError) as exc:
        parse(text, NY)
    assert "\n" not in str(exc.value)


def test_a_time_that_does_not_exist_in_the_zone_is_refused() -> None:
    with pytest.raises(AtdError, match="does not exist in America/New_York") as exc:
        parse("2025-03-09T02:30", NY)  # clocks jump from 02:00 to 03:00
    assert "e.g. 2025-03-09T02:30-05:00" in str(exc.value)  # the zone's own offset
    with pytest.raises(AtdError, match=r"e\.g\. 2021-03-14T02:30-08:00"):
        parse("2021-03-14T02:30", "America/Los_Angeles")
    assert parse("2025-03-09T02:30-05:00", NY).text == "2025-03-09T07:30:00Z"


@pytest.mark.parametrize("name, text", [
    ("FY25_detentionStats08292025.xlsx", "2025-08-29"),
    ("v03_2025-08-01_FY25_detentionStats08012025.xlsx", "2025-08-01"),
    ("export_20250704_162107.csv", "2025-07-04T20:21:07Z"),
    ("report-2020-12-09T1301.xlsx", "2020-12-09T18:01:00Z"),
    ("kev_20250115.json", "2025-01-15"),
    ("cases_2023-03-01T0930Z.csv", "2023-03-01T09:30:00Z"),
])
def test_file_names_keep_their_times(name: str, text: str) -> None:
    when = in_file_name(name, NY)
    assert when is not None and when.text == text


@pytest.mark.parametrize("name", ["data.csv", "FY2025_q3.xlsx", "v2.xlsx", "20251340.csv"])
def test_names_without_a_date_give_none(name: str) -> None:
    assert in_file_name(name, NY) is None


def test_http_dates_are_utc() -> None:
    when = http_date("Tue, 22 Dec 2020 17:57:00 GMT")
    assert when is not None and when.text == "2020-12-22T17:57:00Z"
    assert http_date("not a date") is None and http_date(None) is None


def test_records_written_before_zones_read_as_they_always_did() -> None:
    assert stored("2020-12-22T12:57:00").text == "2020-12-22T12:57:00Z"  # naive: UTC
    assert stored("2020-12-22T12:57:00+00:00").text == "2020-12-22T12:57:00Z"
    assert stored("2020-12-22").is_day


ZONES = st.sampled_from(["UTC", NY, "Europe/Berlin", "Pacific/Auckland", "Asia/Kolkata"])
INSTANTS = st.datetimes(min_value=dt.datetime(1990, 1, 1), max_value=dt.datetime(2090, 1, 1),
                        timezones=st.just(dt.UTC)).map(lambda d: d.replace(microsecond=0, fold=0))


@settings(max_examples=300, deadline=None)
@given(instant=INSTANTS, zone=ZONES, dataset_zone=ZONES,
       form=st.sampled_from(["iso", "compact", "offset", "z"]))
def test_instants_round_trip_through_every_written_form(instant, zone, dataset_zone,
                                                        form) -> None:
    """An instant written in any zone and form parses back to itself, and so does its
    stored text; naive forms are written in the zone they are read in."""
    from atdarchive.instants import zone_info

    local = instant.astimezone(zone_info(dataset_zone))
    written = {"iso": local.strftime("%Y-%m-%dT%H:%M:%S"),
               "compact": local.strftime("%Y%m%d_%H%M%S"),
               "offset": instant.astimezone(zone_info(zone)).isoformat(),
               "z": instant.strftime("%Y-%m-%dT%H:%M:%SZ")}[form]
    when = parse(written, dataset_zone)
    if form in ("iso", "compact") and local.utcoffset() != local.replace(fold=0).utcoffset():
        # the repeated hour of a fall-back night: a naive wall time names its first pass
        assert when.utc is not None and when.utc < instant
        return
    assert when.utc == instant
    assert parse(when.text, dataset_zone).utc == instant
    assert stored(when.text, when.zone).utc == instant


@settings(max_examples=200, deadline=None)
@given(day=st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2099, 12, 31)))
def test_days_round_trip(day: dt.date) -> None:
    assert calendar_day(day.isoformat()) == day
    assert calendar_day(day.strftime("%Y%m%d")) == day
    us = day.strftime("%m/%d/%Y")
    try:
        assert calendar_day(us) == day
    except AtdError as exc:
        assert "ambiguous" in str(exc) and day.day <= 12 and day.day != day.month
    assert When(day).text == day.isoformat()
