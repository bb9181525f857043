"""`atdarchive serve` stays bounded: what one request may compute, show and keep, that
a slow page does not hold up the others, and who may ask at all (Host, cross-site).

A real server process over a real archive: a dataset `big` whose two CSV releases
differ in 600,000 cells (200,000 rows x 3 columns), committed through the library, and
a small one; requests over real HTTP (http.client, so the test sets every header)."""

from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import fixture_env

from atdarchive import Archive

BIG, SMALL = "big", "small"
ROWS = 200_000  # x 3 changed columns = 600,000 changed cells
MAX_CELLS = 5_000  # serve.max_cells_per_page of the main server
CACHE = 4 * 2**20  # serve.cache_bytes of the main server: the big diff is too big to keep
RSS_CEILING_KB = 900 * 1024  # the unbounded page took ~1.8 GB on this diff


def _release(path: Path, rows: int, bump: int) -> Path:
    with path.open("w") as fh:
        fh.write("id,a,b,c,name\n")
        fh.writelines(f"r{i},{i + bump},{2 * i + bump},{3 * i + bump},n{i}\n"
                      for i in range(rows))
    return path


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Archive:
    tmp = tmp_path_factory.mktemp("bounds")
    with fixture_env(tmp):
        arc = Archive.init(tmp / "archive")
        arc.add_dataset(BIG)
        arc.commit(BIG, _release(tmp / "v1.csv", ROWS, 0), published="2025-01-01")
        arc.commit(BIG, _release(tmp / "v2.csv", ROWS, 1), published="2025-02-01")
        arc.add_dataset(SMALL)
        arc.commit(SMALL, _release(tmp / "s1.csv", 5, 0), published="2025-01-01")
        arc.commit(SMALL, _release(tmp / "s2.csv", 5, 1), published="2025-02-01")
    return arc


@dataclass
class Server:
    proc: subprocess.Popen
    port: int
    stderr: Path

    def request(self, path: str, headers: dict[str, str] | None = None,
                host: str | None = None) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
        try:
            conn.putrequest("GET", path, skip_host=True)
            conn.putheader("Host", f"127.0.0.1:{self.port}" if host is None else host)
            for name, value in (headers or {}).items():
                conn.putheader(name, value)
            conn.endheaders()
            response = conn.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, \
                response.read()
        finally:
            conn.close()

    def json(self, path: str, **kw: object) -> tuple[int, dict]:
        sep = "&" if "?" in path else "?"
        status, _, body = self.request(f"{path}{sep}format=json", **kw)
        return status, json.loads(body)

    def status(self) -> dict:
        return self.json("/server")[1]

    def rss_kb(self) -> dict[str, int]:
        text = Path(f"/proc/{self.proc.pid}/status").read_text()
        return {k: int(v) for k, v in re.findall(r"(VmRSS|VmHWM):\s+(\d+) kB", text)}


def _start(root: Path, tmp: Path, *args: str, **env: str) -> Server:
    stderr = tmp / f"serve-{len(list(tmp.iterdir()))}.err"
    full = {**os.environ, **{f"ATDARCHIVE_LIMIT_SERVE_{k.upper()}": v for k, v in env.items()}}
    proc = subprocess.Popen([sys.executable, "-m", "atdarchive.cli", "-C", str(root), "serve",
                             "--port", "0", *args], stderr=stderr.open("w"), env=full)
    deadline = time.monotonic() + 60
    while not re.search(r":(\d+)/ \(Ctrl-C", stderr.read_text()):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"serve did not start: {stderr.read_text()}")
        time.sleep(0.05)
    port = int(re.search(r":(\d+)/ \(Ctrl-C", stderr.read_text()).group(1))
    server = Server(proc, port, stderr)
    while True:  # the socket is bound before uvicorn listens on it
        try:
            server.request("/static/app.css")
            return server
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _stop(server: Server) -> str:
    server.proc.terminate()
    server.proc.wait(30)
    return server.stderr.read_text()


@pytest.fixture(scope="module")
def served(archive: Archive, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The main server: small pages (5,000 cells) and a 4 MiB cache."""
    server = _start(archive.root, tmp_path_factory.mktemp("logs"),
                    max_cells_per_page=str(MAX_CELLS), cache_bytes=str(CACHE))
    yield server
    log = _stop(server)
    assert "Traceback" not in log, log  # nothing in this module is a bug


def _one_line_error(status: int, body: bytes, expected: int, words: str) -> str:
    assert status == expected, body[:500]
    text = body.decode()
    assert "Traceback" not in text and 'File "' not in text
    if text.startswith("{"):
        message = json.loads(text)["error"]
    elif text.lstrip().startswith("<"):
        message = re.search(r'<p class="error" id="error">(.*?)</p>', text, re.S).group(1)
    else:
        message = text.rstrip("\n")
    assert "\n" not in message and words in message.replace("&#39;", "'"), message
    return message


DIFF = f"/datasets/{BIG}/diff/latest~1..latest"


# -- per-request bounds --------------------------------------------------------------
def test_a_huge_limit_is_clamped_to_the_page_bound_and_memory_stays_bounded(served):
    """The request of the security review (`?limit=100000000` on a diff of 600,000 cells):
    answered with one page of at most serve.max_cells_per_page cells; the server's peak
    memory stays far below what building the whole document took."""
    status, page = served.json(f"{DIFF}?limit=100000000")
    assert status == 200
    data = page["diff"]["tables"]["data"]
    assert page["diff"]["counts"]["cells_changed"] == 3 * ROWS  # the counts are whole
    assert len(data["cells_changed"]) == MAX_CELLS
    assert page["page"] == {"offset": 0, "limit": MAX_CELLS, "complete": False,
                            "max_cells_per_page": MAX_CELLS, "max_rows_per_page": 5000}
    status, _, html = served.request(f"{DIFF}?limit=100000000")
    assert status == 200 and html.count(b'class="changed-cell"') == MAX_CELLS
    assert b'id="clamped"' in html

    # paging on reaches the last cells, equal to the library's
    status, last = served.json(f"{DIFF}?offset={3 * ROWS - 2}")
    cells = last["diff"]["tables"]["data"]["cells_changed"]
    assert status == 200 and [(c["key"]["id"], c["column"]) for c in cells] == \
        [(f"r{ROWS - 1}", "b"), (f"r{ROWS - 1}", "c")]
    assert last["page"]["complete"] is False and last["page"]["offset"] == 3 * ROWS - 2

    rss = served.rss_kb()
    assert rss["VmHWM"] < RSS_CEILING_KB, rss


@pytest.mark.parametrize("query, words", [
    ("offset=100000000000000000000", "more than 1,000,000,000"),
    ("offset=1000000001", "more than 1,000,000,000"),
    ("limit=10000000000", "more than 1,000,000,000"),
    ("offset=-1", "must not be negative"),
    ("limit=-5", "must not be negative"),
    ("offset=x", "not a whole number"),
    ("offset=1e9", "not a whole number"),
    ("limit=0x10", "not a whole number"),
    ("offset=%D9%A1%D9%A2", "not a whole number"),  # Arabic-Indic digits: not ASCII
    ("offset=%00", "not a whole number"),
    ("limit=" + "9" * 5000, "more than 1,000,000,000"),
])
@pytest.mark.parametrize("path", [DIFF, f"/datasets/{BIG}/releases/latest/tables/data"])
def test_absurd_counts_are_one_line_400s(served, path, query, words):
    status, _, body = served.request(f"{path}?{query}")
    _one_line_error(status, body, 400, words)
    status, _, body = served.request(f"{path}?{query}&format=json")
    _one_line_error(status, body, 400, words)


def test_a_table_page_is_bounded_by_cells_and_an_offset_past_the_end_is_empty(served):
    status, page = served.json(f"/datasets/{BIG}/releases/latest/tables/data?limit=999999")
    assert status == 200
    assert page["limit"] == MAX_CELLS // 5 and len(page["rows"]) == MAX_CELLS // 5  # 5 columns
    status, page = served.json(f"/datasets/{BIG}/releases/latest/tables/data"
                               f"?offset={ROWS + 10}")
    assert status == 200 and page["rows"] == [] and page["total_rows"] == ROWS


def test_the_cache_is_bounded_by_bytes(served):
    served.request(DIFF)  # 30 MB of Arrow: computed, answered, not kept
    for offset in range(0, 50_000, 10_000):  # pages of the blame grid: kept, within 4 MiB
        served.request(f"/datasets/{BIG}/releases/latest/tables/data?offset={offset}"
                       "&limit=200")
    cache = served.status()["cache"]
    assert cache["limit_bytes"] == CACHE
    assert 0 < cache["bytes"] <= CACHE and cache["entries"] >= 1
    assert cache["too_big_to_keep"] >= 1
    assert served.rss_kb()["VmRSS"] < RSS_CEILING_KB


# -- one slow request does not hold up the others ---------------------------------------
def test_cheap_pages_are_served_while_a_slow_diff_computes(served):
    served.request(f"/datasets/{SMALL}/releases/latest")  # its audit computed and kept
    done = threading.Event()
    result: dict[str, int] = {}

    def slow() -> None:  # the 600,000-cell diff: its Arrow result is too big to keep
        result["status"] = served.request(f"{DIFF}?table=data")[0]
        done.set()

    thread = threading.Thread(target=slow)
    thread.start()
    try:
        while not any("diff" in c["what"] for c in served.status()["cache"]["computing"]):
            assert not done.is_set(), "the slow diff finished before it was seen computing"
        answers = [served.request("/static/app.css")[0], served.request("/")[0],
                   served.request(f"/datasets/{SMALL}/releases/latest")[0],
                   served.request(f"/datasets/{SMALL}/releases/latest?format=json")[0]]
        computing = served.status()["cache"]["computing"]
        assert not done.is_set()  # every cheap page answered while the diff computes
        assert any("diff" in c["what"] for c in computing)
        assert answers == [200, 200, 200, 200]
    finally:
        thread.join()
    assert result["status"] == 200


def test_past_its_time_a_request_is_a_503_and_abandoned_work_cannot_pile_up(
        archive, tmp_path_factory):
    """One worker, one slot, a clock of a millisecond: the diff is answered 503 while it
    goes on computing in the background; meanwhile the only slot is taken, so the next
    request is an immediate 503 "busy"; once the work is done the slot is free again."""
    server = _start(archive.root, tmp_path_factory.mktemp("logs"), workers="1",
                    pending="1", request_seconds="0.001", cache_bytes=str(CACHE))
    try:
        status, _, body = server.request(DIFF)
        message = _one_line_error(status, body, 503, "serve.request_seconds")
        assert DIFF.split("~")[0] in message
        status, headers, body = server.request("/?format=json")
        _one_line_error(status, body, 503, "serve.pending")
        assert headers["retry-after"]
        assert server.request("/static/app.css")[0] == 200  # files need no worker
        deadline = time.monotonic() + 120  # a safety net, not what the test decides
        while b"serve.pending" in body and time.monotonic() < deadline:
            status, _, body = server.request("/?format=json")
        assert b"serve.pending" not in body  # the diff finished: its slot is free again
        assert status == 200 or b"serve.request_seconds" in body
    finally:
        log = _stop(server)
    assert "Traceback" not in log


# -- who may ask ------------------------------------------------------------------------
@pytest.mark.parametrize("headers, words", [
    ({"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "image"},
     "cross-site"),
    ({"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "iframe"},
     "cross-site"),
    ({"Sec-Fetch-Site": "same-site", "Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty"},
     "same-site"),
    ({"Origin": "http://evil.example"}, "evil.example"),
    ({"Origin": "null"}, "null"),
    ({"Origin": "http://127.0.0.1:1"}, "Origin is not this server"),
])
def test_cross_site_requests_are_refused_before_any_work(served, headers, words):
    before = served.status()["cache"]
    status, _, body = served.request(f"{DIFF}?table=data&limit=100000000", headers=headers)
    _one_line_error(status, body, 403, words)
    after = served.status()["cache"]
    assert (after["entries"], after["too_big_to_keep"]) == \
        (before["entries"], before["too_big_to_keep"])


@pytest.mark.parametrize("headers", [
    {"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty"},
    {"Sec-Fetch-Site": "none", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"},
    {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate",
     "Sec-Fetch-Dest": "document"},  # a link followed from elsewhere: a tab of the user's own
    {},  # curl, a script
])
def test_own_pages_typed_urls_and_plain_links_are_answered(served, headers):
    own = {**headers, "Origin": f"http://127.0.0.1:{served.port}"} \
        if headers.get("Sec-Fetch-Site") == "same-origin" else headers
    assert served.request(f"/datasets/{SMALL}", headers=own)[0] == 200


def test_the_host_check_applies_on_any_address(archive, served, tmp_path_factory):
    status, _, body = served.request("/", host="evil.example")
    _one_line_error(status, body, 400, "does not name this server")
    server = _start(archive.root, tmp_path_factory.mktemp("logs"), "--host", "0.0.0.0",
                    "--allow-host", "archive.lan", "--allow-host", "10.1.2.3")
    try:
        for host in ("evil.example", "evil.example:80", "archive.lan.evil.example",
                     "0.0.0.0", ""):
            status, _, body = server.request("/", host=host)
            _one_line_error(status, body, 400, "does not name this server")
        for host in ("archive.lan", f"ARCHIVE.LAN:{server.port}", "10.1.2.3",
                     f"127.0.0.1:{server.port}", f"localhost:{server.port}"):
            assert server.request("/", host=host)[0] == 200, host
    finally:
        log = _stop(server)
    assert "Host names answered: 127.0.0.1, localhost, [::1], archive.lan, 10.1.2.3" in log


@pytest.mark.parametrize("name", ["*", "archive.lan:8000", "a b"])
def test_the_host_check_cannot_be_turned_off(archive, name):
    result = subprocess.run([sys.executable, "-m", "atdarchive.cli", "-C", str(archive.root),
                             "serve", "--port", "0", "--allow-host", name],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert result.stderr.strip().count("\n") == 0 and "--allow-host" in result.stderr
    assert "Traceback" not in result.stderr
