"""HTTP for `watch`: requests with urllib3's retry policy, politeness, a time budget, and
every exchange written as WARC records (warcio; ISO 28500).

Retries: timeouts, connection errors, 5xx and 429, three times with exponential
backoff, honouring Retry-After (urllib3's `Retry`); a body cut short (fewer bytes than
Content-Length, a broken chunked stream) is retried the same way and, if it stays
short, is a failure that leaves no file. One request per host at a time, at least
`delay` seconds apart. A `Capture` collects the request and response records of one
pass over one source into a gzipped WARC file (the page, the file, redirects).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from atdarchive.errors import AtdError

USER_AGENT = "atdarchive-watch (+https://github.com/; archiving public releases)"
MAX_BYTES = 2 << 30
RETRY_STATUSES = (429, 500, 502, 503, 504)


class FetchFailed(AtdError):
    """A request that failed after its retries (network, timeout, 5xx, cut short)."""


@dataclass
class Response:
    """One completed exchange: where it ended, its status, headers and body (a file)."""

    url: str
    final_url: str
    status: int
    headers: dict[str, str]
    body: Path | None
    sha256: str | None
    size: int
    fetched_at: str
    redirects: list[str] = field(default_factory=list)

    def evidence(self) -> dict[str, Any]:
        """What the record keeps of the exchange (DESIGN.md: fetch evidence)."""
        h = self.headers
        out = {"requested_url": self.url, "final_url": self.final_url, "status": self.status,
               "etag": h.get("etag"), "last_modified": h.get("last-modified"),
               "content_type": h.get("content-type"),
               "content_length": h.get("content-length"), "fetched_at": self.fetched_at,
               "sha256": self.sha256, "size": self.size,
               "redirects": self.redirects or None}
        return {k: v for k, v in out.items() if v is not None}


class Capture:
    """The WARC records of one source's pass, written to a temporary gzipped WARC file."""

    def __init__(self, directory: Path) -> None:
        from warcio.warcwriter import WARCWriter

        fd, name = tempfile.mkstemp(prefix="capture-", suffix=".warc.gz", dir=directory)
        self.path = Path(name)
        self._fh = os.fdopen(fd, "wb")
        self._writer = WARCWriter(self._fh, gzip=True, warc_version="1.1")
        self.records = 0
        info = self._writer.create_warcinfo_record(self.path.name, {
            "software": "atdarchive watch", "format": "WARC File Format 1.1",
            "conformsTo": "https://iso.org/standard/68004.html"})
        self._writer.write_record(info)

    def add(self, method: str, url: str, request_headers: dict[str, str], status: int,
            reason: str, headers: list[tuple[str, str]], body: Path | bytes | None,
            when: str, revisit: tuple[str, str, str] | None = None) -> None:
        """A request record and its response record (linked by WARC-Concurrent-To).

        `revisit` (digest, uri, date of the archived copy): the body is one already
        archived, so a `revisit` record (identical-payload-digest profile) stands for it
        instead of a second copy of the bytes."""
        from warcio.statusandheaders import StatusAndHeaders

        date = when.replace("+00:00", "Z")
        http = StatusAndHeaders(f"{status} {reason or ''}".strip(), headers,
                                protocol="HTTP/1.1")
        if revisit is not None:
            digest, uri, then = revisit
            response = self._writer.create_revisit_record(
                url, f"sha256:{digest}", uri, then.replace("+00:00", "Z"), http_headers=http,
                warc_headers_dict={"WARC-Date": date})
            self._writer.write_record(response)
        else:
            payload: Any = (open(body, "rb") if isinstance(body, Path)  # noqa: SIM115
                            else io.BytesIO(body or b""))
            try:
                response = self._writer.create_warc_record(
                    url, "response", payload=payload, http_headers=http,
                    warc_headers_dict={"WARC-Date": date})
                self._writer.write_record(response)
            finally:
                payload.close()
        parts = urllib.parse.urlsplit(url)
        target = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
        req = StatusAndHeaders(f"{method} {target} HTTP/1.1",
                               [("Host", parts.netloc), *request_headers.items()],
                               is_http_request=True)
        request = self._writer.create_warc_record(
            url, "request", http_headers=req, warc_headers_dict={
                "WARC-Date": date,
                "WARC-Concurrent-To": response.rec_headers.get_header("WARC-Record-ID")})
        self._writer.write_record(request)
        self.records += 2

    def close(self) -> Path:
        if not self._fh.closed:
            self._fh.close()
        return self.path


def join_captures(parts: list[Path], directory: Path) -> Path:
    """One WARC file of several (gzipped WARC records concatenate)."""
    fd, name = tempfile.mkstemp(prefix="capture-", suffix=".warc.gz", dir=directory)
    with os.fdopen(fd, "wb") as out:
        for part in parts:
            out.write(part.read_bytes())
    return Path(name)


class Client:
    """A `requests` session with retries, politeness per host and a deadline."""

    def __init__(self, *, timeout: float = 30.0, retries: int = 3, backoff: float = 0.5,
                 delay: float = 1.0, budget: float | None = None) -> None:
        import requests
        from requests.adapters import HTTPAdapter

        self.timeout, self.retries, self.backoff, self.delay = timeout, retries, backoff, delay
        self.deadline = time.monotonic() + budget if budget else None
        self._last: dict[str, float] = {}
        self.retry = _Retry(total=retries, connect=retries, read=retries, status=retries,
                            backoff_factor=backoff, backoff_max=30,
                            status_forcelist=RETRY_STATUSES,
                            allowed_methods=frozenset({"GET", "HEAD"}),
                            respect_retry_after_header=True, raise_on_status=False)
        self.session = requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        adapter = HTTPAdapter(max_retries=self.retry)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def close(self) -> None:
        self.session.close()

    def _polite(self, url: str) -> None:
        host = urllib.parse.urlsplit(url).netloc
        wait = self._last.get(host, 0.0) + self.delay - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        self._last[host] = time.monotonic()

    def _left(self, url: str) -> float:
        if self.deadline is None:
            return self.timeout
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise FetchFailed(f"{url}: the pass's time budget is spent; not requested")
        return min(self.timeout, left)

    def get(self, url: str, directory: Path, *, headers: dict[str, str] | None = None,
            capture: Capture | None = None,
            archived: Callable[[str], tuple[str, str] | None] | None = None) -> Response:
        """GET `url` into a file under `directory`; every exchange into `capture`.
        `archived(sha256)`: (uri, date) of a copy already kept, for a revisit record."""
        import requests

        headers = dict(headers or {})
        for attempt in range(self.retries + 1):
            self._polite(url)
            timeout = self._left(url)
            try:
                with self.session.get(url, headers=headers, timeout=timeout, stream=True,
                                      allow_redirects=True) as response:
                    return self._receive(url, response, directory, headers, capture,
                                         archived)
            except (requests.exceptions.ChunkedEncodingError,
                    requests.exceptions.ContentDecodingError, _CutShort) as exc:
                if attempt == self.retries:
                    raise FetchFailed(f"{url}: download cut short ({_first_line(exc)}); "
                                      "nothing kept") from None
                time.sleep(min(self.backoff * 2 ** attempt, 30))
            except requests.exceptions.RetryError as exc:
                raise FetchFailed(f"{url}: gave up after {self.retries} retries "
                                  f"({_first_line(exc)})") from None
            except requests.exceptions.Timeout:
                raise FetchFailed(f"{url}: no answer within {timeout:g} s after "
                                  f"{self.retries} retries") from None
            except requests.exceptions.RequestException as exc:
                if ("IncompleteRead" in str(exc) or "Connection broken" in str(exc)) and (
                        attempt < self.retries):
                    time.sleep(min(self.backoff * 2 ** attempt, 30))
                    continue
                if "IncompleteRead" in str(exc) or "Connection broken" in str(exc):
                    raise FetchFailed(f"{url}: download cut short ({_first_line(exc)}); "
                                      "nothing kept") from None
                if "timed out" in str(exc):
                    raise FetchFailed(f"{url}: no answer within {timeout:g} s after "
                                      f"{self.retries} retries") from None
                raise FetchFailed(f"{url}: {_first_line(exc)}") from None
        raise AssertionError("unreachable")

    def _receive(self, url: str, response: Any, directory: Path, headers: dict[str, str],
                 capture: Capture | None,
                 archived: Callable[[str], tuple[str, str] | None] | None) -> Response:
        when = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
        for hop in response.history:  # redirects, kept as evidence too
            if capture is not None:
                capture.add("GET", hop.url, headers, hop.status_code, hop.reason,
                            list(hop.headers.items()), hop.content, when)
        fd, name = tempfile.mkstemp(prefix="download-", dir=directory)
        body = Path(name)
        digest, size = hashlib.sha256(), 0
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in response.iter_content(1 << 20):
                    size += len(chunk)
                    if size > MAX_BYTES:
                        raise FetchFailed(f"{url}: larger than {MAX_BYTES >> 30} GiB; refused")
                    digest.update(chunk)
                    out.write(chunk)
            expected = response.headers.get("Content-Length")
            if (expected and expected.isdigit() and "Content-Encoding" not in response.headers
                    and int(expected) != size):
                raise _CutShort(f"{size} of {expected} bytes")
        except BaseException:
            body.unlink(missing_ok=True)
            raise
        lowered = {k.lower(): v for k, v in response.headers.items()}
        if capture is not None:
            sha = digest.hexdigest()
            copy = archived(sha) if archived and response.status_code == 200 else None
            capture.add("GET", response.url, headers, response.status_code, response.reason,
                        list(response.headers.items()), body, when,
                        revisit=(sha, *copy) if copy else None)
        return Response(url, response.url, response.status_code, lowered, body,
                        digest.hexdigest() if response.status_code == 200 else None, size,
                        when.replace("+00:00", "Z"), [h.url for h in response.history])


def _retry_class() -> type:
    from urllib3.util.retry import Retry

    class CappedRetry(Retry):
        """urllib3's policy, with a server's Retry-After capped (a pass must end)."""

        def get_retry_after(self, response: Any) -> float | None:
            value = super().get_retry_after(response)
            return None if value is None else min(value, MAX_RETRY_AFTER)

    return CappedRetry


def _Retry(**options: Any) -> Any:  # noqa: N802 - reads as the class it makes
    return _retry_class()(**options)


MAX_RETRY_AFTER = 120.0


class _CutShort(Exception):
    """Fewer body bytes than Content-Length promised."""


def _first_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]
