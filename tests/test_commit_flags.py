"""Audit findings surface the moment a release arrives (commit) and in `log`."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import write_csv

from atdarchive import Archive


def series(bump: int) -> list[dict]:
    return [{"agency": a, "oct": 100 * i + bump, "nov": 50 * i + 2 * bump}
            for i, a in enumerate(["Total", "CBP", "ICE", "OFO", "BP", "HSI"], start=1)]


def test_recycled_release_is_flagged_at_commit_and_in_log(archive: Archive, tmp_path: Path,
                                                          cli) -> None:
    may = write_csv(tmp_path / "may.csv", series(0))
    cli("-C", archive.root, "commit", "ds", may, "--published", "2021-05-13")
    june = write_csv(tmp_path / "june.csv", series(7))
    clean = cli("-C", archive.root, "commit", "ds", june, "--published", "2021-06-13")
    assert clean.code == 0 and "recycled_release" not in clean.out
    # "September 2022" carrying May 2021's numbers, in other bytes (TSV, not CSV)
    recycled = tmp_path / "sept.tsv"
    recycled.write_text(may.read_text().replace(",", "\t"))
    result = cli("-C", archive.root, "commit", "ds", recycled, "--published", "2022-09-15")
    assert result.code == 0, result.err
    assert "alert:" in result.out and "recycled_release" in result.out
    may_id = archive.snapshot("ds@2021-05-13").short_id
    assert may_id in result.out  # names the release it repeats

    plain = cli("-C", archive.root, "log", "ds", "--oneline")  # no audit since: said
    assert "audit flags are not current" in plain.err and "!" not in plain.out
    oneline = cli("-C", archive.root, "log", "ds", "--oneline", "--audit").out.splitlines()
    assert oneline[0].split()[2] == "!" and "!" not in oneline[1].split()[:3]
    log = json.loads(cli("-C", archive.root, "log", "ds", "--json").out)  # current now
    assert "recycled_release" in log[0]["audit"]["kinds"]
    assert log[0]["audit"]["severity"] == "alert"
    assert "recycled_release" not in (log[1]["audit"] or {}).get("kinds", {})
    assert "audit:" in cli("-C", archive.root, "log", "ds", "-n", "1").out


def test_backfill_refreshes_the_next_releases_flags(archive: Archive, tmp_path: Path,
                                                    cli) -> None:
    jan = write_csv(tmp_path / "jan.csv", series(0))
    archive.commit("ds", jan, published="2024-01-31")
    march = tmp_path / "mar.tsv"
    march.write_text(jan.read_text().replace(",", "\t"))  # January's numbers again
    archive.commit("ds", march, published="2024-03-31")
    before = json.loads(cli("-C", archive.root, "log", "ds", "--json", "--audit").out
                        )[0]["audit"]
    assert "recycled_release" not in before["kinds"]        # same as its parent: a republish
    assert "identical_republish" in before["kinds"]
    archive.commit("ds", write_csv(tmp_path / "feb.csv", series(9)), published="2024-02-29")
    after = json.loads(cli("-C", archive.root, "log", "ds", "--json", "--audit").out)[0]
    assert after["published"] == "2024-03-31"
    assert "recycled_release" in after["audit"]["kinds"]    # now it repeats an older release
