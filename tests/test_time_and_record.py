"""Time is part of the record: one instant however it is written, read in the dataset's
zone; file-name times kept; ambiguity refused; refs read the same way; published,
retrieved and committed never presented as one another."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from conftest import write_csv
from hypothesis import given, settings
from hypothesis import strategies as st

from atdarchive import Archive
from atdarchive.history import History
from atdarchive.instants import zone_info

NY = "America/New_York"
ROWS = [{"k": "a", "v": 1}, {"k": "b", "v": 2}]


def one_line(result, *words: str) -> str:
    lines = result.err.strip().splitlines()
    assert result.code != 0 and len(lines) == 1 and lines[0].startswith("error: "), result.err
    assert all(w in lines[0] for w in words), lines[0]
    return lines[0]


def zoned(tmp_path: Path, zone: str = NY, name: str = "ds") -> Archive:
    arc = Archive.init(tmp_path / "arc")
    arc.add_dataset(name, timezone=zone)
    return arc


def test_the_same_release_in_every_written_form_is_one_release(tmp_path, cli) -> None:
    arc = zoned(tmp_path)
    file = write_csv(tmp_path / "release.csv", ROWS)
    first = cli("-C", arc.root, "commit", "ds", file, "--published", "2020-12-22T12:57")
    assert first.code == 0, first.err
    assert "read as 2020-12-22T12:57:00 America/New_York (naive: read in the dataset's " \
           "zone) = 2020-12-22T17:57:00Z" in " ".join(first.out.split())
    record = arc.snapshot("ds@latest").record
    assert (record["published"], record["published_zone"]) == ("2020-12-22T17:57:00Z", NY)
    short = record["id"][:10]
    before = (arc.root / "datasets" / "ds" / "ledger.jsonl").read_bytes()
    for form in ("2020-12-22T17:57:00Z", "2020-12-22T12:57:00", "20201222_125700",
                 "2020-12-22T12:57-05:00", "2020-12-22T18:57+01:00", "2020-12-22 12:57",
                 "20201222", "2020-12-22", "12/22/2020"):
        one_line(cli("-C", arc.root, "commit", "ds", file, "--published", form),
                 f"already archived as ds@{short}")
    assert (arc.root / "datasets" / "ds" / "ledger.jsonl").read_bytes() == before


def test_two_zones_name_one_instant(tmp_path, cli) -> None:
    arc = zoned(tmp_path)
    arc.add_dataset("berlin", timezone="Europe/Berlin")
    file = write_csv(tmp_path / "r.csv", ROWS)
    ny = arc.commit("ds", file, published="2020-12-22T12:57").snapshot.record
    de = arc.commit("berlin", file, published="2020-12-22T18:57").snapshot.record
    assert ny["published"] == de["published"] == "2020-12-22T17:57:00Z"
    assert (ny["published_zone"], de["published_zone"]) == (NY, "Europe/Berlin")
    listed = {row["name"]: row["timezone"]
              for row in json.loads(cli("-C", arc.root, "dataset", "list", "--json").out)}
    assert listed == {"ds": NY, "berlin": "Europe/Berlin"}
    assert NY in cli("-C", arc.root, "dataset", "list").out
    one_line(cli("-C", arc.root, "dataset", "add", "mars", "--timezone", "Mars/Olympus"),
             "Mars/Olympus")


def test_file_name_times_are_kept(tmp_path, cli) -> None:
    arc = zoned(tmp_path)
    for name, expected in (("export_20250704_162107.csv", "2025-07-04T20:21:07Z"),
                           ("report-2020-12-09T1301.csv", "2020-12-09T18:01:00Z"),
                           ("stats08292025.csv", "2025-08-29")):
        result = cli("-C", arc.root, "commit", "ds",
                     write_csv(tmp_path / name, [{"k": name, "v": 1}]))
        assert result.code == 0, result.err
        assert "from the file name" in result.out
        record = next(e.record for e in arc.history("ds").entries
                      if e.record["original"]["name"] == name)
        assert record["published"] == expected, (name, record["published"])


def test_ambiguous_and_impossible_dates_are_refused(tmp_path, cli) -> None:
    arc = zoned(tmp_path)
    file = write_csv(tmp_path / "r.csv", ROWS)
    one_line(cli("-C", arc.root, "commit", "ds", file, "--published", "01/02/2025"),
             "ambiguous", "2025-01-02", "2025-02-01")
    one_line(cli("-C", arc.root, "commit", "ds", file, "--published", "2025-03-09T02:30"),
             "does not exist in America/New_York")
    one_line(cli("-C", arc.root, "commit", "ds", file, "--published", "2025-02-30"),
             "2025-02-30")
    assert not arc.history("ds").entries


def test_refs_are_read_in_the_dataset_zone(tmp_path, cli) -> None:
    arc = zoned(tmp_path)
    early = arc.commit("ds", write_csv(tmp_path / "a.csv", ROWS),
                       published="2020-12-22T12:57").snapshot.id
    # 22:30 in New York on the 22nd is already the 23rd in UTC
    late = arc.commit("ds", write_csv(tmp_path / "b.csv", [{"k": "a", "v": 5}]),
                      published="2020-12-22T22:30").snapshot.id
    resolve = lambda ref: arc.snapshot(ref).id  # noqa: E731
    assert resolve("ds@2020-12-22T12:57") == early
    assert resolve("ds@2020-12-22T17:57Z") == early
    assert resolve("ds@2020-12-22T22:29") == early
    assert resolve("ds@2020-12-22T22:30") == late
    assert resolve("ds@2020-12-22") == late  # the end of that day, in New York
    assert resolve("ds@latest") == late and resolve("ds@latest~1") == early
    one_line(cli("-C", arc.root, "show", "ds@2020-12-22T12:56"), "nothing was published by")


def test_cite_tells_published_retrieved_and_committed_apart(tmp_path, cli) -> None:
    arc = zoned(tmp_path)
    arc.commit("ds", write_csv(tmp_path / "a.csv", ROWS), published="2020-12-22")
    record = arc.snapshot("ds@latest").record
    assert "retrieved_at" not in record and record["committed_at"]
    text = cli("-C", arc.root, "cite", "ds@latest").out
    assert "Retrieved" not in text and f"Archived on {record['committed_at'][:10]}" in text
    assert "(2020)" in text
    arc.commit("ds", write_csv(tmp_path / "b.csv", [{"k": "z", "v": 9}]),
               published="2021-01-05", retrieved_at="2021-01-06T09:00")
    record = arc.snapshot("ds@latest").record
    assert record["retrieved_at"] == "2021-01-06T14:00:00Z"
    text = cli("-C", arc.root, "cite", "ds@latest").out
    assert "Retrieved 2021-01-06." in text
    csl = json.loads(cli("-C", arc.root, "cite", "ds@latest", "--format", "csl-json").out)[0]
    assert csl["issued"] == {"date-parts": [[2021, 1, 5]]}
    assert csl["accessed"] == {"date-parts": [[2021, 1, 6]]}


ZONES = st.sampled_from(["UTC", NY, "Asia/Kolkata", "Pacific/Auckland"])
MOMENTS = st.lists(st.datetimes(min_value=dt.datetime(2015, 1, 1),
                                max_value=dt.datetime(2030, 1, 1)).map(
    lambda d: d.replace(microsecond=0, second=0, fold=0)), min_size=1, max_size=8, unique=True)


@settings(max_examples=150, deadline=None)
@given(moments=MOMENTS, zone=ZONES, probe=st.integers(0, 7))
def test_a_ref_written_like_a_release_resolves_to_it(moments, zone, probe) -> None:
    """Releases given as naive local times; a ref naming one's local time, in any written
    form, resolves to the last release at or before it (ledger order breaks ties)."""
    from atdarchive.instants import parse

    events, whens = [], []
    for seq, naive in enumerate(moments, 1):
        written = naive.strftime("%Y-%m-%dT%H:%M")
        try:
            when = parse(written, zone)
        except Exception:  # a wall time that does not exist there: not a release
            continue
        whens.append(when)
        events.append({"type": "snapshot", "seq": seq, "record": {
            "id": f"{seq:064x}", "dataset": "ds", "channel": "public",
            "published": when.text, "published_zone": when.zone,
            "original": {"sha256": f"{seq:064x}"}}})
    if not events:
        return
    history = History("ds", events, zone=zone)
    target = whens[probe % len(whens)]
    local = target.utc.astimezone(zone_info(zone))
    for ref in (local.strftime("%Y-%m-%dT%H:%M"), target.text):
        entry = history.resolve(ref)
        assert entry.when.utc <= target.utc
        assert not [w for w in whens if entry.when.utc < w.utc <= target.utc]


def test_a_commit_may_read_its_naive_times_in_another_zone(tmp_path, cli) -> None:
    """A scraper names captures in UTC; the agency's zone is Los Angeles."""
    arc = zoned(tmp_path, "America/Los_Angeles")
    name = tmp_path / "v01_2021-04-08T0410_8bd0d3e.csv"
    write_csv(name, ROWS)
    result = cli("-C", arc.root, "commit", "ds", name, "--zone", "UTC")
    assert result.code == 0, result.err
    record = arc.snapshot("ds@latest").record
    assert (record["published"], record["published_zone"]) == ("2021-04-08T04:10:00Z", "UTC")
    assert arc.snapshot("ds@2021-04-07T21:10").id == record["id"]  # 04:10Z in Los Angeles
    one_line(cli("-C", arc.root, "commit", "ds", name, "--zone", "Mars/Base"), "Mars/Base")


def test_a_file_name_date_with_two_readings_is_not_guessed(tmp_path, cli) -> None:
    arc = zoned(tmp_path)
    one_line(cli("-C", arc.root, "commit", "ds", write_csv(tmp_path / "incidents_04052021.csv",
                                                           ROWS)), "no publication date")
    ok = cli("-C", arc.root, "commit", "ds", write_csv(tmp_path / "stats08292025.csv", ROWS))
    assert ok.code == 0 and arc.snapshot("ds@latest").published == "2025-08-29"
