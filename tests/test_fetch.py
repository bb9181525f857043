"""fetch: HTTP evidence, commit only new bytes, record 'unchanged' checks (local server only)."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from atdarchive import Archive
from atdarchive.fetch import fetch


class _Handler(http.server.BaseHTTPRequestHandler):
    files: dict[str, tuple[bytes, dict[str, str]]] = {}

    def do_GET(self) -> None:  # noqa: N802 (http.server API)
        if self.path == "/old-location.csv":
            self.send_response(302)
            self.send_header("Location", "/stats.csv")
            self.end_headers()
            return
        if self.path not in self.files:
            self.send_error(404, "Not Found")
            return
        body, headers = self.files[self.path]
        self.send_response(200)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, dict]]:
    files: dict[str, tuple[bytes, dict[str, str]]] = {}
    handler = type("H", (_Handler,), {"files": files})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}", files
    httpd.shutdown()
    httpd.server_close()


def serve(files: dict, body: bytes, etag: str, modified: str) -> None:
    files["/stats.csv"] = (body, {"Content-Type": "text/csv", "ETag": etag,
                                  "Last-Modified": modified})


def test_fetch_commits_new_bytes_and_records_rechecks(archive: Archive, server, cli) -> None:
    base, files = server
    serve(files, b"agency,count\nCBP,10\nICE,20\n", '"v1"', "Tue, 01 Jul 2025 12:00:00 GMT")
    first = fetch(archive, "ds", f"{base}/old-location.csv")
    assert first.commit is not None
    record = first.commit.snapshot.record
    assert record["published"] == "2025-07-01T12:00:00Z"  # from Last-Modified (UTC)
    assert record["published_source"] == "last_modified"
    assert record["source_url"] == f"{base}/stats.csv"  # the final URL after the redirect
    ev = record["fetch"]
    assert ev["status"] == 200 and ev["etag"] == '"v1"'
    assert ev["requested_url"] == f"{base}/old-location.csv"
    assert ev["content_type"] == "text/csv" and ev["content_length"] == str(ev["size"])
    assert ev["sha256"] == record["original"]["sha256"]
    assert record["original"]["name"] == "stats.csv"

    again = fetch(archive, "ds", f"{base}/stats.csv")    # same bytes: a check, no snapshot
    assert again.commit is None and again.unchanged_id == first.commit.snapshot.id
    assert len(archive.history("ds").entries) == 1
    checks = [e for e in archive.ledger("ds").events() if e["type"] == "check"]
    assert len(checks) == 1 and checks[0]["snapshot"] == first.commit.snapshot.id

    serve(files, b"agency,count\nCBP,11\nICE,20\n", '"v2"', "Fri, 01 Aug 2025 12:00:00 GMT")
    result = cli("-C", archive.root, "fetch", "ds", f"{base}/stats.csv")
    assert result.code == 0, result.err
    assert "new release" in result.out
    log = json.loads(cli("-C", archive.root, "log", "ds", "--json").out)
    assert [e["published"][:10] for e in log] == ["2025-08-01", "2025-07-01"]
    assert log[0]["summary"]["cells_changed"] == 1
    assert len(log[1]["checks"]) == 1
    text = cli("-C", archive.root, "log", "ds").out
    assert "re-fetched 1 time(s), unchanged" in text


def test_fetch_errors_are_one_line_and_change_nothing(archive: Archive, server, cli) -> None:
    from conftest import archive_state

    base, _ = server
    before = archive_state(archive.root)
    for url, expected in ((f"{base}/missing.csv", "HTTP 404"),
                          ("http://127.0.0.1:9/x.csv", "cannot fetch"),
                          ("file:///etc/passwd", "only http:// and https://")):
        result = cli("-C", archive.root, "fetch", "ds", url)
        assert result.code != 0
        assert expected in result.err and len(result.err.strip().splitlines()) == 1
    assert archive_state(archive.root) == before


def test_fetch_file_name_is_sanitised(archive: Archive, server) -> None:
    base, files = server
    files["/dl"] = (b"a,b\n1,2\n", {"Content-Disposition": 'attachment; filename="../../evil.csv"'})
    result = fetch(archive, "ds", f"{base}/dl", published="2025-01-01")
    assert result.commit.snapshot.record["original"]["name"] == "evil.csv"
    assert not (Path(archive.root).parent / "evil.csv").exists()
