"""A hostile or broken web server against `watch` and `fetch` (README "Watch" → "What a
server can cost"; bounds in `atdarchive/limits/network.py`).

Every server here is real and on 127.0.0.1 (`AgencySite`, threads of this process); every
`atdarchive` is a real child process, run under a 64 MiB ceiling on the size of any file
it writes (RLIMIT_FSIZE: a bomb decoded to disk would kill it), with its peak memory
read from `wait4`'s rusage. Addresses that must never be contacted (169.254.169.254,
10.x, fd00:ec2::254) are refused before any connection is attempted; a second server on
another port stands in for the "internal service" that a redirect may point at, and
proves it was never asked.
"""

from __future__ import annotations

import functools
import gzip
import json
import os
import socket
import sys
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest
from agency_site import AgencySite
from conftest import archive_state, run_measured

from atdarchive import Archive

ATDARCHIVE = str(Path(sys.executable).with_name("atdarchive"))
FILE_CEILING = 64 << 20   # RLIMIT_FSIZE of the child: no file it writes may grow past this
MEMORY_CEILING_KB = 400 << 10  # peak RSS the child must stay under
FAST = ("--delay", "0", "--timeout", "5", "--retries", "1")
CSV = b"k,v\nr0,1\nr1,2\n"

@dataclass
class Child:
    code: int
    out: str
    err: str
    max_rss_kb: int

    def errors(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.startswith("error:")]


def run(*args: str | os.PathLike[str], scratch: Path, **limits: str) -> Child:
    """`atdarchive ARGS` in a child process; its exit code, output and peak memory."""
    done = run_measured(*args, scratch=scratch, fsize_limit=FILE_CEILING,
                        env={f"ATDARCHIVE_LIMIT_{k.upper()}": v for k, v in limits.items()})
    return Child(done.code, done.out, done.err, done.peak_kb)


def refused(child: Child, *needles: str) -> str:
    """The child failed with exactly one error line saying all of NEEDLES, no traceback,
    within the memory ceiling; that line."""
    assert child.code != 0, child.out + child.err
    assert "Traceback" not in child.err, child.err
    assert child.max_rss_kb < MEMORY_CEILING_KB, child.max_rss_kb
    lines = [line for line in child.errors() if all(n in line for n in needles)]
    assert len(lines) == 1, child.err
    return lines[0]


def disk_usage(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


@functools.cache
def bomb(decoded: int = 512 << 20) -> bytes:
    """A gzip body of DECODED zero bytes (~1,000x smaller), built without holding them."""
    z = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1 << 20)
    return b"".join([z.compress(block) for _ in range(decoded >> 20)] + [z.flush()])


@pytest.fixture
def site():
    with AgencySite() as running:
        yield running


@pytest.fixture
def inside():
    """Another server on this machine: the internal service a redirect must not reach."""
    with AgencySite() as running:
        running.file("/secret.csv", CSV)
        yield running


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    path = tmp_path / "scratch"
    path.mkdir()
    return path


@pytest.fixture
def watched(archive: Archive):
    """The archive and what a failed pass may leave: no snapshot, only `failed` events."""
    before = archive.ledger("ds").path.read_bytes() if archive.ledger("ds").path.exists() \
        else b""
    yield archive
    assert archive.history("ds").entries == []
    after = archive.ledger("ds").path.read_bytes() if archive.ledger("ds").path.exists() \
        else b""
    assert after.startswith(before)
    added = [json.loads(line) for line in after[len(before):].splitlines()]
    assert all(e.get("type") == "watch" and e.get("kind") == "failed" for e in added), added


def watch(archive: Archive, scratch: Path, *extra: str, **limits: str) -> Child:
    return run("-C", archive.root, "watch", *FAST, "--json", *extra, scratch=scratch,
               **limits)


# ---------------------------------------------------------------- redirects and addresses


TARGETS = {
    "another loopback port": "http://127.0.0.1:{port}/secret.csv",
    "localhost, another port": "http://localhost:{port}/secret.csv",
    "[::1]": "http://[::1]:{port}/secret.csv",
    "cloud metadata": "http://169.254.169.254/latest/meta-data/iam/",
    "cloud metadata (IPv6)": "http://[fd00:ec2::254]/latest/meta-data/",
    "private 10.x": "http://10.0.0.7/secret.csv",
    "IPv4-mapped loopback": "http://[::ffff:127.0.0.1]:{port}/secret.csv",
    "a file: URL": "file:///etc/passwd",
}
RULES = {"another loopback port": "a loopback address", "localhost, another port": "loopback",
         "[::1]": "a loopback address", "cloud metadata": "a cloud metadata address",
         "cloud metadata (IPv6)": "a cloud metadata address",
         "private 10.x": "a private address", "IPv4-mapped loopback": "loopback",
         "a file: URL": "only http:// and https://"}


@pytest.mark.parametrize("target", list(TARGETS))
def test_a_redirect_off_the_configured_origin_to_a_non_public_address_is_refused(
        watched: Archive, site: AgencySite, inside: AgencySite, scratch: Path,
        target: str) -> None:
    to = TARGETS[target].format(port=inside.server.server_port)
    watched.add_source("ds", url=f"{site.base}/stats_07042025.csv")
    site.file("/stats_07042025.csv", b"", redirect=to)
    child = watch(watched, scratch)
    assert child.code == 2
    line = refused(child, to, "refused", RULES[target])
    if target != "a file: URL":
        assert "net rule" in line and site.base.removeprefix("http://") in line
    assert inside.log == []  # the internal service was never asked
    assert list(scratch.iterdir()) == []


def test_a_link_on_the_page_to_another_local_origin_is_refused(
        watched: Archive, site: AgencySite, inside: AgencySite, scratch: Path) -> None:
    watched.add_source("ds", page=f"{site.base}/detain", link=r"\.csv")
    secret = f"http://127.0.0.1:{inside.server.server_port}/secret.csv"
    site.page("/detain", [(secret, "stats")])
    child = watch(watched, scratch)
    refused(child, secret, "a loopback address", "net rule")
    assert inside.log == []


def test_the_configured_origin_may_redirect_within_itself(
        archive: Archive, site: AgencySite, scratch: Path) -> None:
    """The rule's exception: the user's own URL, here on 127.0.0.1, works as before."""
    archive.add_source("ds", url=f"{site.base}/old_07042025.csv")
    site.file("/old_07042025.csv", b"", redirect=f"{site.base}/new_07042025.csv")
    site.file("/new_07042025.csv", CSV)
    child = watch(archive, scratch)
    assert child.code == 0, child.err
    assert archive.snapshot("ds@latest").record["fetch"]["redirects"] == [
        f"{site.base}/old_07042025.csv"]


def test_fetch_refuses_a_redirect_to_another_local_origin(
        archive: Archive, site: AgencySite, inside: AgencySite, scratch: Path) -> None:
    secret = f"http://localhost:{inside.server.server_port}/secret.csv"
    site.file("/stats.csv", b"", redirect=secret)
    before = archive_state(archive.root)
    child = run("-C", archive.root, "fetch", "ds", f"{site.base}/stats.csv", scratch=scratch)
    refused(child, secret, "loopback", "net rule")
    assert inside.log == [] and archive_state(archive.root) == before


def test_too_many_redirects(watched: Archive, site: AgencySite, scratch: Path) -> None:
    watched.add_source("ds", url=f"{site.base}/r0_07042025.csv")
    for i in range(12):
        site.file(f"/r{i}_07042025.csv", b"", redirect=f"/r{i + 1}_07042025.csv")
    child = watch(watched, scratch)
    refused(child, f"{site.base}/r0_07042025.csv", "net.max_redirects", "(11 redirects)")
    assert len(site.log) == 11  # the first request and ten redirects, then no more


# ---------------------------------------------------------------- what a body may cost


@pytest.mark.parametrize("command", ["watch", "fetch"])
def test_a_gzip_bomb_is_refused_while_it_streams(
        archive: Archive, site: AgencySite, scratch: Path, command: str) -> None:
    site.file("/stats_07042025.csv", bomb(), headers={"Content-Encoding": "gzip"})
    archive.add_source("ds", url=f"{site.base}/stats_07042025.csv")
    before, size = archive_state(archive.root), disk_usage(archive.root)
    if command == "watch":
        child = watch(archive, scratch)
    else:
        child = run("-C", archive.root, "fetch", "ds", f"{site.base}/stats_07042025.csv",
                    scratch=scratch)
    refused(child, f"{site.base}/stats_07042025.csv", "net.max_compression_ratio",
            "nothing kept")
    assert archive.history("ds").entries == []
    assert list(scratch.iterdir()) == []
    assert disk_usage(archive.root) - size < 256 << 10  # at most a failed event
    if command == "fetch":
        assert archive_state(archive.root) == before


def test_the_decoded_size_is_capped_whatever_the_ratio(
        watched: Archive, site: AgencySite, scratch: Path) -> None:
    site.file("/stats_07042025.csv", bomb(), headers={"Content-Encoding": "gzip"})
    watched.add_source("ds", url=f"{site.base}/stats_07042025.csv")
    child = watch(watched, scratch, net_max_compression_ratio="100000",
                  net_max_body_bytes=str(48 << 20))
    refused(child, f"{site.base}/stats_07042025.csv", "net.max_body_bytes",
            "exceeds the limit of 48 MiB")


def test_a_double_gzip_redirect_body_is_never_read(
        archive: Archive, site: AgencySite, scratch: Path) -> None:
    """A redirect whose body is a bomb inside a bomb: the hop is followed, its body left
    unread, and the file it points to lands."""
    site.file("/stats_07042025.csv", gzip.compress(bomb(), 1), redirect="/real_07042025.csv",
              headers={"Content-Encoding": "gzip"})
    site.file("/real_07042025.csv", CSV)
    archive.add_source("ds", url=f"{site.base}/stats_07042025.csv")
    child = watch(archive, scratch)
    assert child.code == 0 and "Traceback" not in child.err, child.err
    assert child.max_rss_kb < MEMORY_CEILING_KB
    assert json.loads(child.out)["new_snapshots"]
    snapshot = archive.snapshot("ds@latest")
    assert snapshot.record["fetch"]["final_url"] == f"{site.base}/real_07042025.csv"
    assert snapshot.record["fetch"]["sha256"] == snapshot.record["original"]["sha256"]


def test_an_encoding_not_asked_for_is_refused(watched: Archive, site: AgencySite,
                                              scratch: Path) -> None:
    site.file("/stats_07042025.csv", b"\x00" * 100, headers={"Content-Encoding": "br"})
    watched.add_source("ds", url=f"{site.base}/stats_07042025.csv")
    refused(watch(watched, scratch), "Content-Encoding 'br' was not asked for")
    assert site.log[0][1]["Accept-Encoding"] == "gzip, identity"


def test_fetch_refuses_a_body_shorter_than_its_content_length(
        archive: Archive, site: AgencySite, scratch: Path) -> None:
    site.file("/stats.csv", b"x" * 100_000, cut_after=14)
    before = archive_state(archive.root)
    child = run("-C", archive.root, "fetch", "ds", f"{site.base}/stats.csv", scratch=scratch)
    refused(child, f"{site.base}/stats.csv", "cut short (14 of 100,000 bytes)", "nothing kept")
    assert archive_state(archive.root) == before
    assert list(scratch.iterdir()) == []


# ---------------------------------------------------------------- time


DEADLINES = {  # which deadline, set how: what the one line must say
    "pass budget (--budget 3)": ({}, ("the pass's time budget ran out", "limit 3 s",
                                      "--budget", "net.watch_budget")),
    "a source's time": ({"net_source_deadline": "2"},
                        ("this source's time ran out", "limit 2 s", "net.source_deadline")),
    "a response's time": ({"net_response_deadline": "2"},
                          ("this response's time ran out", "limit 2 s",
                           "net.response_deadline")),
}


@pytest.mark.parametrize(("deadline", "part"), [
    ("pass budget (--budget 3)", "body"), ("pass budget (--budget 3)", "status line"),
    ("a source's time", "body"), ("a response's time", "status line")])
def test_a_dribbling_server_cannot_outlast_a_deadline(
        watched: Archive, site: AgencySite, scratch: Path, deadline: str, part: str) -> None:
    """One byte every 0.4 s keeps any idle timeout happy; the deadline is enforced by the
    clock during the transfer, the client hangs up, and the error names the limit hit."""
    route = site.file("/stats_07042025.csv", b"k,v\n" + b"r,1\n" * 100, dribble=0.4,
                      dribble_head=part != "body")
    watched.add_source("ds", url=f"{site.base}/stats_07042025.csv")
    limits, says = DEADLINES[deadline]
    line = refused(watch(watched, scratch, "--budget", "3" if "--budget" in deadline else "60",
                         "--timeout", "30", **limits),
                   f"{site.base}/stats_07042025.csv", "nothing kept", *says)
    assert "no answer within" not in line
    route.dribbled.wait()  # the dribble ends by itself: all sent, or the client hung up
    assert route.hung_up and route.hits == 1


class TlsDribbler:
    """A raw TCP server on 127.0.0.1 that answers a TLS ClientHello with the header of a
    16 KiB handshake record and then one byte every 0.4 s (at most 200: it stops by
    itself); notes whether the client hung up first."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.hung_up = False
        self.done = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        try:
            conn.recv(4096)  # the ClientHello
            conn.sendall(b"\x16\x03\x03\x40\x00")
            for _ in range(200):
                time.sleep(0.4)
                conn.sendall(b"\x00")
        except OSError:
            self.hung_up = True
        finally:
            conn.close()
            self.listener.close()
            self.done.set()


def test_a_dribbled_tls_handshake_cannot_outlast_the_budget(
        watched: Archive, scratch: Path) -> None:
    server = TlsDribbler()
    url = f"https://127.0.0.1:{server.port}/stats_07042025.csv"
    watched.add_source("ds", url=url)
    refused(watch(watched, scratch, "--budget", "3", "--timeout", "30"), url,
            "the pass's time budget ran out", "net.watch_budget")
    server.done.wait()
    assert server.hung_up


def test_fetch_has_an_overall_deadline(archive: Archive, site: AgencySite,
                                       scratch: Path) -> None:
    route = site.file("/stats.csv", b"k,v\n" + b"r,1\n" * 100, dribble=0.4)
    before = archive_state(archive.root)
    child = run("-C", archive.root, "fetch", "ds", f"{site.base}/stats.csv", scratch=scratch,
                net_fetch_deadline="2")
    refused(child, f"{site.base}/stats.csv", "the fetch's time ran out", "net.fetch_deadline",
            "limit 2 s")
    route.dribbled.wait()
    assert route.hung_up and archive_state(archive.root) == before


def test_retry_after_beyond_the_budget_gives_up_at_once(
        watched: Archive, site: AgencySite, scratch: Path) -> None:
    route = site.file("/stats_07042025.csv", CSV, fail_first=10, fail_status=503,
                      retry_after="60")
    watched.add_source("ds", url=f"{site.base}/stats_07042025.csv")
    child = watch(watched, scratch, "--budget", "5", "--retries", "3")
    refused(child, f"{site.base}/stats_07042025.csv", "answered 503",
            "asked to retry after 60 s", "the pass's time budget", "gave up")
    assert route.hits == 1  # no retry it could not afford


# ---------------------------------------------------------------- links


def test_twenty_thousand_links_are_bounded_and_stored_once(
        archive: Archive, site: AgencySite, scratch: Path) -> None:
    links = [(f"/doc/f{i:05d}_07042025.csv", f"file {i}") for i in range(20_000)]
    site.page("/detain", links)
    archive.add_source("ds", page=f"{site.base}/detain", link=r"_\d{8}\.csv")
    ledger = archive.ledger("ds").path
    before = ledger.read_bytes() if ledger.exists() else b""
    size = disk_usage(archive.root)
    for notice in ("", "(revised notice)"):  # the second pass: a changed page, same list
        site.page("/detain", [(links[0][0], f"file 0 {notice}"), *links[1:]])
        child = watch(archive, scratch)
        refused(child, f"{site.base}/detain", "net.max_links_per_page", "(20,000 links)",
                "the other 19,000 ignored")
        assert list(scratch.iterdir()) == []
    events = archive.history("ds").watch_events
    assert [e["kind"] for e in events] == ["failed", "page_changed"]
    first, second = (e["page"] for e in events)
    assert first["links_sha256"] == second["links_sha256"] and second["links_count"] == 1000
    assert "links" in first and "links" not in second  # the list once, then its digest
    added = ledger.read_bytes()[len(before):]
    assert added.count(f"{site.base}/doc/f00999_07042025.csv".encode()) == 1  # once, inline
    assert b"f01000_07042025" not in added  # the excess: never stored ...
    asked = {path for path, _ in site.log}
    assert "/doc/f01000_07042025.csv" not in asked  # ... nor requested
    assert len(added) < 512 << 10 and disk_usage(archive.root) - size < 1 << 20
