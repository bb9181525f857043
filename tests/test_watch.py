"""watch against a real HTTP server on 127.0.0.1 playing an agency's site over time
(README "Watch"): each scenario lands as specified, nothing is half-written, verify
passes and the WARC captures read back with warcio's own reader."""

from __future__ import annotations

import gzip
import json
import sys
import time
from pathlib import Path

import pytest
from agency_site import AgencySite
from conftest import ICE_RELEASES, archive_state
from warcio.archiveiterator import ArchiveIterator

from atdarchive import Archive

FAST = ("--delay", "0", "--timeout", "2", "--retries", "2")


def csv(*values: int) -> bytes:
    return ("k,v\n" + "".join(f"r{i},{v}\n" for i, v in enumerate(values))).encode()


@pytest.fixture
def site():
    with AgencySite() as running:
        yield running


def watch(cli, archive: Archive, *extra: str) -> tuple[int, dict]:
    result = cli("-C", archive.root, "watch", *FAST, "--json", *extra)
    return result.code, json.loads(result.out)


def kinds(archive: Archive) -> list[str]:
    return [e["kind"] for e in archive.history("ds").watch_events]


def warc_records(path: Path) -> list[tuple[str, str | None]]:
    with open(path, "rb") as fh:
        return [(r.rec_type, r.rec_headers.get_header("WARC-Target-URI"))
                for r in ArchiveIterator(fh)]


def test_a_page_over_time(archive: Archive, site: AgencySite, cli, tmp_path: Path) -> None:
    """New file names, a same-name revision, an identical re-post, a removed link."""
    archive.add_source("ds", page=f"{site.base}/detain", link=r"detentionStats.*\.csv")
    site.page("/detain", [("/doc/FY25_detentionStats07042025.csv", "FY25 stats")])
    site.file("/doc/FY25_detentionStats07042025.csv", csv(1, 2))
    code, out = watch(cli, archive)
    assert code == 0 and len(out["new_snapshots"]) == 1
    first = archive.snapshot("ds@latest")
    assert first.published == "2025-07-04" and first.record["published_source"] == "file_name"
    assert first.record["fetch"]["source"] == archive.dataset("ds").sources[0].id

    # a new release under a new name, the old link kept
    site.page("/detain", [("/doc/FY25_detentionStats07042025.csv", "old"),
                          ("/doc/FY25_detentionStats08012025.csv", "new")])
    site.file("/doc/FY25_detentionStats08012025.csv", csv(1, 3))
    code, out = watch(cli, archive, "--exit-code")
    assert code == 1 and archive.snapshot("ds@latest").published == "2025-08-01"

    # the August file replaced in place: a snapshot and an alert
    site.file("/doc/FY25_detentionStats08012025.csv", csv(1, 4))
    code, out = watch(cli, archive)
    revision = [e for e in archive.history("ds").watch_events
                if e["kind"] == "same_url_revision"]
    assert len(revision) == 1 and revision[0]["snapshot"] == archive.snapshot("ds@latest").id
    assert archive.snapshot("ds@latest").table("data").column("v").to_pylist() == [1, 4]

    # the same bytes as July, re-posted under a September name: an event, no snapshot
    before = len(archive.history("ds").entries)
    site.page("/detain", [("/doc/FY25_detentionStats08012025.csv", "Aug"),
                          ("/doc/FY25_detentionStats09122025.csv", "Sep")])
    site.file("/doc/FY25_detentionStats09122025.csv", csv(1, 2))
    code, out = watch(cli, archive)
    assert len(archive.history("ds").entries) == before
    repost = next(e for e in archive.history("ds").watch_events if e["kind"] == "repost")
    assert repost["snapshot"] == first.id and "09122025" in repost["url"]
    # ... and July's link is gone, with no new release in its place: withdrawn
    july = [e for e in archive.history("ds").watch_events if e["kind"] == "withdrawn"]
    assert [e["url"][-12:] for e in july] == ["07042025.csv"]
    assert july[0]["snapshot"] == first.id

    # the page changes (a new notice), the same links, no new file: page_changed
    site.page("/detain", [("/doc/FY25_detentionStats08012025.csv", "Aug (revised notice)"),
                          ("/doc/FY25_detentionStats09122025.csv", "Sep")])
    watch(cli, archive)
    assert kinds(archive)[-1] == "page_changed"

    # the August link taken down, nothing in its place: withdrawn
    site.page("/detain", [("/doc/FY25_detentionStats09122025.csv", "Sep")])
    watch(cli, archive)
    withdrawn = [e for e in archive.history("ds").watch_events if e["kind"] == "withdrawn"][-1]
    assert withdrawn["url"].endswith("08012025.csv") and "was removed from" in withdrawn["reason"]

    audit = json.loads(cli("-C", archive.root, "audit", "ds", "--json").out)
    severity = {f["kind"]: f["severity"] for f in audit["findings"]}
    assert severity["same_url_revision"] == "alert" and severity["repost"] == "warning"
    assert severity["withdrawn"] == "warning"
    text = cli("-C", archive.root, "log").out
    assert "same url revision" in text and "withdrawn" in text
    assert cli("-C", archive.root, "verify", "ds").code == 0

    out_warc = tmp_path / "all.warc.gz"
    assert cli("-C", archive.root, "export", "ds", "--warc", out_warc).code == 0
    records = warc_records(out_warc)
    assert ("response", f"{site.base}/detain") in records
    assert ("request", f"{site.base}/doc/FY25_detentionStats07042025.csv") in records
    assert {t for t, _ in records} >= {"warcinfo", "request", "response", "revisit"}
    # each snapshot keeps its own capture, named in its record (and hashed by verify)
    snap = archive.snapshot("ds@latest")
    assert snap.record["capture"] in snap.record["files"]


def test_checks_are_coalesced_and_conditional(archive: Archive, site: AgencySite,
                                             cli) -> None:
    archive.add_source("ds", url=f"{site.base}/data.csv", published="captured")
    site.file("/data.csv", csv(5), etag='"v1"')
    assert watch(cli, archive, "--notify", f"{site.base}/hook")[0] == 0
    posted = json.loads(site.posts[0])  # something new: the webhook was told
    assert posted["new_snapshots"] and "new release" in posted["text"]
    code, out = watch(cli, archive, "--exit-code")
    assert code == 0 and out["new_snapshots"] == []
    result = cli("-C", archive.root, "watch", *FAST, "--every", "0.1s", "--passes", "2",
                 "--notify", f"{site.base}/hook")
    assert result.code == 0 and result.out.count("unchanged") == 2
    assert len(site.posts) == 1  # nothing new since: no more notifications
    assert kinds(archive) == ["check"]  # one check event for the day
    assert site.log[-1][1].get("If-None-Match") == '"v1"'  # asked conditionally
    counts = json.loads((archive.layout.local / "watch-counts.json").read_text())
    assert sum(counts.values()) == 2  # the two later checks, counted for the next event
    assert archive.snapshot("ds@latest").record["published_source"] == "now"


def test_withdrawn_and_reinstated(archive: Archive, site: AgencySite, cli) -> None:
    archive.add_source("ds", url=f"{site.base}/current.csv", published="last-modified")
    site.file("/current.csv", csv(1), modified=time.time() - 3600)
    assert watch(cli, archive)[0] == 0
    assert archive.snapshot("ds@latest").record["published_source"] == "last_modified"
    del site.routes["/current.csv"]
    code, _ = watch(cli, archive, "--exit-code")
    assert code == 1 and kinds(archive)[-1] == "withdrawn"
    site.file("/current.csv", csv(1), modified=time.time() - 3600)
    watch(cli, archive)
    assert "reinstated" in kinds(archive)
    assert len(archive.history("ds").entries) == 1


@pytest.mark.parametrize("scenario", ["500 then success", "429 with Retry-After", "redirect"])
def test_transient_failures_and_redirects_land(archive: Archive, site: AgencySite, cli,
                                               scenario: str) -> None:
    archive.add_source("ds", url=f"{site.base}/stats_07042025.csv")
    if scenario == "redirect":
        site.file("/stats_07042025.csv", b"", redirect="/moved/stats_07042025.csv")
        site.file("/moved/stats_07042025.csv", csv(7))
    else:
        site.file("/stats_07042025.csv", csv(7), fail_first=2 if scenario[0] == "5" else 1,
                  fail_status=500 if scenario[0] == "5" else 429,
                  retry_after="1" if scenario[0] == "4" else None)
    started = time.monotonic()
    code, out = watch(cli, archive)
    assert code == 0 and len(out["new_snapshots"]) == 1, out
    fetch = archive.snapshot("ds@latest").record["fetch"]
    if scenario == "redirect":
        assert fetch["final_url"] == f"{site.base}/moved/stats_07042025.csv"
        assert fetch["redirects"] == [f"{site.base}/stats_07042025.csv"]
    elif scenario[0] == "4":
        assert time.monotonic() - started >= 1.0  # Retry-After honoured
    else:
        assert site.routes["/stats_07042025.csv"].hits == 3


@pytest.mark.parametrize("scenario", ["slower than the timeout", "HTML error page",
                                      "cut short", "not dated by its name", "404 unknown"])
def test_failures_leave_nothing_half_written(archive: Archive, site: AgencySite, cli,
                                             scenario: str) -> None:
    path = "/stats_07042025.xlsx" if scenario != "not dated by its name" else "/stats.xlsx"
    archive.add_source("ds", url=f"{site.base}{path}")
    body = ICE_RELEASES[0].read_bytes()
    if scenario == "slower than the timeout":
        site.file(path, body, delay=3)
    elif scenario == "HTML error page":
        site.file(path, b"<!DOCTYPE html><html><body>Service unavailable</body></html>",
                  headers={"Content-Type": "text/html"})
    elif scenario == "cut short":
        site.file(path, body, cut_after=1000)
    elif scenario == "not dated by its name":
        site.file(path, body)
    before = archive_state(archive.root)
    result = cli("-C", archive.root, "watch", "--delay", "0", "--timeout", "1",
                 "--retries", "1")
    assert result.code == 2, result.out + result.err
    assert "Traceback" not in result.err
    assert archive.history("ds").entries == []
    assert list(archive.store.staging.glob("*")) == []
    failed = archive.history("ds").watch_events
    assert [e["kind"] for e in failed] == ["failed"]
    reason = failed[0]["reason"]
    expected = {"slower than the timeout": "no answer within", "HTML error page": "HTML page",
                "cut short": "cut short", "not dated by its name": "not dated by guess",
                "404 unknown": "answered 404"}[scenario]
    assert expected in reason
    if scenario == "not dated by its name":  # a whole workbook: not committed to git
        assert "KiB" in failed[0]["capture_omitted"] and "capture" not in failed[0]
    else:
        assert failed[0]["capture"]["file"].startswith("captures/")
    assert archive_state(archive.root) != before  # only the failed check was recorded
    assert cli("-C", archive.root, "verify", "ds").code == 0


def test_real_workbooks_and_a_page_without_links(archive: Archive, site: AgencySite,
                                                 cli, tmp_path: Path) -> None:
    archive.add_source("ds", page=f"{site.base}/detention-management",
                       link="detentionStats")
    site.page("/detention-management", [("/news", "News")])
    code, out = watch(cli, archive)
    assert code == 0 and kinds(archive) == ["no_link"]
    assert "no link matches" in out["sources"][0]["notes"][0]
    v02, v03 = ICE_RELEASES[1], ICE_RELEASES[2]
    site.page("/detention-management", [(f"/doclib/{v02.name.split('_', 2)[2]}", "FY25")])
    site.file(f"/doclib/{v02.name.split('_', 2)[2]}", v02.read_bytes())
    notified = tmp_path / "notified.json"
    hook = f"{sys.executable} -c \"import sys; open('{notified}', 'w').write(sys.stdin.read())\""
    code, out = watch(cli, archive, "--notify-cmd", hook)
    assert code == 0 and archive.snapshot("ds@latest").published == "2025-07-07"
    summary = json.loads(notified.read_text())
    assert summary["new_snapshots"] == out["new_snapshots"] and "new release" in summary["text"]
    snap = archive.snapshot("ds@latest")
    with gzip.open(snap.file_path(snap.record["capture"]), "rb") as fh:
        assert fh.read(9) == b"WARC/1.1\r"  # the web-archiving standard's own header
    records = warc_records(snap.file_path(snap.record["capture"]))
    assert ("response", f"{site.base}/detention-management") in records
    site.page("/detention-management", [(f"/doclib/{v03.name.split('_', 2)[2]}", "FY25")])
    site.file(f"/doclib/{v03.name.split('_', 2)[2]}", v03.read_bytes())
    watch(cli, archive)
    assert [e.published for e in archive.history("ds").channel("public")] == [
        "2025-07-07", "2025-08-01"]
    assert cli("-C", archive.root, "verify", "ds").code == 0


def test_source_configuration_errors_are_one_line(archive: Archive, cli) -> None:
    root = archive.root
    bad = cli("-C", root, "source", "add", "ds", "--page", "https://x.gov/p")
    assert bad.code != 0 and "link is required" in bad.err and len(bad.err.splitlines()) == 1
    bad = cli("-C", root, "source", "add", "ds", "--url", "https://x.gov/f.csv", "--published",
              "yesterday")
    assert bad.code != 0 and "published must be" in bad.err
    config = archive.dataset_dir("ds") / "dataset.toml"
    config.write_text(config.read_text() + '\n[[sources]]\nurl = "https://x.gov/a"\nlnk = "x"\n')
    bad = cli("-C", root, "watch")
    assert bad.code != 0 and "sources[0]: unknown key 'lnk'" in bad.err
    assert len(bad.err.strip().splitlines()) == 1


def test_politeness_delay_and_time_budget(archive: Archive, site: AgencySite, cli) -> None:
    archive.add_source("ds", page=f"{site.base}/p", link=r"\.csv")
    site.page("/p", [("/a_07042025.csv", "a")])
    site.file("/a_07042025.csv", csv(1))
    started = time.monotonic()
    result = cli("-C", archive.root, "watch", "--delay", "0.6", "--timeout", "2")
    assert result.code == 0 and time.monotonic() - started >= 0.6  # page, then file: apart
    gaps = len(site.log)
    result = cli("-C", archive.root, "watch", "--delay", "0", "--budget", "0.000001")
    assert result.code == 2 and "time budget is spent" in result.out
    assert len(site.log) == gaps  # nothing was requested once the budget was spent


def test_a_captures_link_from_a_cloned_archive_is_never_written_through(
        archive: Archive, site: AgencySite, cli, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (archive.dataset_dir("ds") / "captures").symlink_to(outside)
    archive.add_source("ds", url=f"{site.base}/gone_07042025.csv")  # a 404: a failed check
    result = cli("-C", archive.root, "watch", "--delay", "0")
    assert result.code != 0 and "symbolic link" in result.err and "Traceback" not in result.err
    assert list(outside.iterdir()) == []
