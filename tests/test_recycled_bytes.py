"""A release that is byte for byte an older release (not its parent, nor what its parent
replaced) is recycled — the headline — even when a daily series makes it differ from its
parent by only a day. Real releases: the New Zealand Ministry of Health's case workbook,
whose fifth release is the second one again (its README documents it)."""

from __future__ import annotations

import json

import pytest
from conftest import shared_series

from atdarchive import Archive

NZ = "nz-covid-cases-by-location-xlsx-2023"


@pytest.fixture(scope="module")
def nz(tmp_path_factory: pytest.TempPathFactory) -> Archive:
    from conftest import fixture_env

    root = tmp_path_factory.mktemp("nz")
    with fixture_env(root):
        arc = Archive.init(root / "arc")
        arc.add_dataset("nz", timezone="Pacific/Auckland")
        for path in sorted(shared_series(NZ).glob("v0[1-6]_*.xlsx")):
            arc.commit("nz", path, zone="UTC")  # the file names' times are UTC
    return arc


def test_the_republished_old_file_is_the_headline(nz: Archive, cli) -> None:
    audit = json.loads(cli("-C", nz.root, "audit", "nz", "--json").out)
    history = nz.history("nz")
    v02, v04, v05, v06 = (history.publication_order()[i] for i in (1, 3, 4, 5))
    recycled = [f for f in audit["findings"] if f["kind"] == "recycled_release"]
    assert [(f["snapshot"], f["evidence"]["other_snapshot"]) for f in recycled] == [
        (v05.id, v02.id)]
    assert recycled[0]["severity"] == "alert" and recycled[0]["evidence"]["same_bytes"]
    top = [f for f in audit["findings"] if f["snapshot"] == v05.id][0]
    assert top["kind"] == "recycled_release"  # first among that release's findings
    # v06 puts back v04 (what v05 replaced): a restoration, not a recycling
    assert v06.record["original"]["sha256"] == v04.record["original"]["sha256"]
    assert not [f for f in recycled if f["snapshot"] == v06.id]
