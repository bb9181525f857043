"""HTTP for `watch` and `fetch`: one client, one set of rules against a hostile server,
and every exchange written as WARC records (warcio; ISO 28500).

The rules (README "Watch" → "What a server can cost"; bounds in `limits/network.py`):

- Only http:// and https://. Redirects are followed by hand, at most
  `net.max_redirects`, and every hop is checked like the first request; a redirect's
  body is never read.
- Before connecting, the host name is resolved and every address it resolves to is
  checked: loopback, private, link-local, unique-local, CGNAT, multicast, reserved and
  cloud-metadata addresses are refused, unless the request's origin (scheme, host,
  port) is exactly the origin of the URL the user configured (`home`). The connection
  goes to the addresses that were checked, never to a second resolution.
- `Accept-Encoding: gzip, identity`; a gzip body is decoded while it streams, capped at
  `net.max_body_bytes` decoded and `net.max_compression_ratio`.
- Every read is bounded by the clock: the socket's timeout is the idle timeout or the
  time left, whichever is shorter, and the time left is checked before each read — a
  server dribbling one byte a second cannot outlast a deadline. Deadlines: per response,
  plus whatever the caller adds (a source's time, the pass's `--budget`, a fetch's).
- Retries: timeouts, connection errors, 5xx and 429, `retries` times with exponential
  backoff, honouring Retry-After (capped at `net.max_retry_after`) only within the time
  left; a body cut short (fewer bytes than Content-Length, a broken chunked or gzip
  stream) is retried the same way and, if it stays short, is a failure that leaves no
  file. One request per host at a time, at least `delay` seconds apart.

A `Capture` collects the request and response records of one exchange chain into a
gzipped WARC file (the page, the file, redirects).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email.utils
import hashlib
import http.client
import io
import ipaddress
import os
import socket
import ssl
import tempfile
import time
import urllib.parse
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from atdarchive import limits
from atdarchive.errors import AtdError

USER_AGENT = "atdarchive (+https://github.com/; archiving public releases)"
RETRY_STATUSES = (429, 500, 502, 503, 504)
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
ACCEPT_ENCODING = "gzip, identity"
CHUNK = 1 << 16
#: Below this many decoded bytes the compression ratio is not checked (small pages
#: compress well and cost nothing).
RATIO_FREE_BYTES = 16 << 20
#: Where clouds answer with instance credentials: named as such in refusals.
METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}


class FetchFailed(AtdError):
    """A request that failed after its retries (network, timeout, 5xx, cut short)."""


class Refused(FetchFailed):
    """A URL this client will not request (scheme, address, encoding): never retried."""


class NetLimit(FetchFailed, limits.LimitExceeded):
    """A network bound (`limits/network.py`) that a response would exceed: never retried."""


class DeadlineHit(NetLimit):
    """A deadline that ran out; the message names the limit in force (a flag's too)."""

    def __init__(self, subject: str, deadline: Deadline, *, before: bool = False) -> None:
        bound = limits.LIMITS[deadline.limit]
        how = f"{deadline.flag} or {bound.env}=N" if deadline.flag else f"{bound.env}=N"
        limit = f"limit {deadline.seconds:g} s ({deadline.limit}; raise it with {how})"
        if before:
            text = f"{subject}: not requested: {deadline.what} is spent; {limit}"
        else:
            text = (f"{subject}: {deadline.what} ran out after "
                    f"{deadline.seconds - deadline.left():.1f} s; nothing kept; {limit}")
        AtdError.__init__(self, text)


@dataclass(frozen=True)
class Deadline:
    """A time bound from a registered limit: when it ends and how to name it."""

    limit: str      # e.g. "net.watch_budget"
    seconds: float
    end: float      # time.monotonic()
    what: str       # "the pass's time budget"
    flag: str = ""  # the command flag that sets it, if any

    @classmethod
    def start(cls, limit: str, what: str, flag: str = "",
              given: float | None = None) -> Deadline:
        """GIVEN: the value of FLAG on this command line, if it was given."""
        seconds = float(limits.value(limit, flag=given))
        return cls(limit, seconds, time.monotonic() + seconds, what, flag)

    def left(self) -> float:
        return self.end - time.monotonic()


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
    reason: str = ""

    def evidence(self) -> dict[str, Any]:
        """What the record keeps of the exchange (DESIGN.md: fetch evidence)."""
        h = self.headers
        out = {"requested_url": self.url, "final_url": self.final_url, "status": self.status,
               "etag": h.get("etag"), "last_modified": h.get("last-modified"),
               "content_type": h.get("content-type"),
               "content_length": h.get("content-length"),
               "content_encoding": h.get("content-encoding"), "fetched_at": self.fetched_at,
               "sha256": self.sha256, "size": self.size,
               "redirects": self.redirects or None}
        return {k: v for k, v in out.items() if v is not None}

    def discard(self) -> None:
        """Remove the body file (the caller has what it needs of it)."""
        if self.body is not None:
            self.body.unlink(missing_ok=True)


class Capture:
    """The WARC records of one exchange chain, written to a temporary gzipped WARC file."""

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
    import shutil

    fd, name = tempfile.mkstemp(prefix="capture-", suffix=".warc.gz", dir=directory)
    with os.fdopen(fd, "wb") as out:
        for part in parts:
            with open(part, "rb") as fh:
                shutil.copyfileobj(fh, out)
    return Path(name)


# ---------------------------------------------------------------- addresses


def origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of URL, the default port filled in."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port or (443 if scheme == "https" else 80)


def address_rule(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why an address is not a public one (None when it is)."""
    if ip in METADATA:
        return "a cloud metadata address"
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None:
            rule = address_rule(embedded)
            if rule:
                return f"{rule} (inside an IPv6 address)"
        if ip in ipaddress.ip_network("fc00::/7"):
            return "a unique-local (ULA) address"
        if ip.is_site_local:
            return "a site-local address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_unspecified:
        return "an unspecified address"
    if isinstance(ip, ipaddress.IPv4Address) and ip in ipaddress.ip_network("100.64.0.0/10"):
        return "a carrier-grade NAT (100.64/10) address"
    if ip.is_private:
        return "a private address"
    if ip.is_reserved or not ip.is_global:
        return "a reserved address"
    return None


# ---------------------------------------------------------------- the clock


class _Clock:
    """The deadlines one response is under, and the idle timeout: what each read may wait."""

    def __init__(self, url: str, idle: float, deadlines: list[Deadline]) -> None:
        self.url, self.idle, self.deadlines = url, idle, deadlines

    def first(self) -> Deadline:
        return min(self.deadlines, key=lambda d: d.end)

    def wait(self) -> float:
        """Seconds the next read may block; DeadlineHit when a deadline has passed."""
        deadline = self.first()
        left = deadline.left()
        if left <= 0:
            raise DeadlineHit(self.url, deadline)
        return min(self.idle, left)

    def timed_out(self, waited: float) -> None:
        """A read timed out after `waited` s: a deadline's end, if that is what it was."""
        if waited < self.idle:
            raise DeadlineHit(self.url, self.first())


class _ClockedRaw(io.RawIOBase):
    """A socket's reading side whose every read is bounded by the clock."""

    def __init__(self, sock: socket.socket, clock: _Clock) -> None:
        self.sock, self.clock = sock, clock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        wait = self.clock.wait()
        self.sock.settimeout(wait)
        try:
            return self.sock.recv_into(buffer)
        except TimeoutError:
            self.clock.timed_out(wait)
            raise


class _ClockedSocket:
    """What `http.client` sees as its socket: sends and reads under the clock; closing is
    left to the client (one connection per exchange)."""

    def __init__(self, sock: socket.socket, clock: _Clock) -> None:
        self.sock, self.clock = sock, clock

    def sendall(self, data: bytes) -> None:
        wait = self.clock.wait()
        self.sock.settimeout(wait)
        try:
            self.sock.sendall(data)
        except TimeoutError:
            self.clock.timed_out(wait)
            raise

    def makefile(self, mode: str, *args: Any, **kwargs: Any) -> io.BufferedReader:
        return io.BufferedReader(_ClockedRaw(self.sock, self.clock), CHUNK)

    def close(self) -> None:
        pass


# ---------------------------------------------------------------- the client


class _Retry(Exception):
    """An attempt that may be tried again: (what happened, wait hint from Retry-After)."""

    def __init__(self, kind: str, message: str, wait: float | None = None) -> None:
        super().__init__(message)
        self.kind, self.wait = kind, wait


@dataclass
class _Answer:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: Path | None = None
    sha256: str | None = None
    size: int = 0
    location: str | None = None

    def header(self, name: str) -> str | None:
        name = name.lower()
        found = [v for k, v in self.headers if k.lower() == name]
        return found[-1] if found else None


class Client:
    """One HTTP client for `watch` and `fetch`: the rules in the module docstring."""

    def __init__(self, *, timeout: float | None = None, retries: int = 3,
                 backoff: float = 0.5, delay: float = 1.0, deadline: Deadline | None = None,
                 home: str | None = None) -> None:
        self.idle = float(limits.value("net.idle_timeout", flag=timeout))
        self.retries, self.backoff, self.delay = retries, backoff, delay
        self.deadlines: list[Deadline] = [deadline] if deadline else []
        self.home = origin(home) if home else None
        self._last: dict[str, float] = {}
        self._tls: ssl.SSLContext | None = None

    def close(self) -> None:
        """Nothing stays open between exchanges; kept for callers' `finally`."""

    def spent(self) -> Deadline | None:
        """The first of the caller's deadlines that has run out, if any."""
        return next((d for d in self.deadlines if d.left() <= 0), None)

    @contextlib.contextmanager
    def scope(self, home: str, deadline: Deadline | None = None) -> Iterator[None]:
        """Requests for one configured URL: its origin is trusted, its deadline added."""
        saved = self.home, list(self.deadlines)
        self.home = origin(home)
        if deadline is not None:
            self.deadlines.append(deadline)
        try:
            yield
        finally:
            self.home, self.deadlines = saved

    # -- one GET, redirects followed --------------------------------------------------
    def get(self, url: str, directory: Path, *, headers: dict[str, str] | None = None,
            capture: Capture | None = None,
            archived: Callable[[str], tuple[str, str] | None] | None = None,
            max_bytes: str = "net.max_body_bytes") -> Response:
        """GET `url` into a file under `directory`; every exchange into `capture`.
        `archived(sha256)`: (uri, date) of a copy already kept, for a revisit record.
        `max_bytes`: the limit on the decoded body of a 200 answer."""
        sent = {"User-Agent": USER_AGENT, "Accept-Encoding": ACCEPT_ENCODING,
                **(headers or {})}
        when = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
        hops: list[str] = []
        current = url
        most = int(limits.value("net.max_redirects"))
        while True:
            answer = self._attempts(current, sent, directory, max_bytes)
            if answer.location is None:
                break
            if capture is not None:  # the redirect, kept as evidence; its body never read
                capture.add("GET", current, sent, answer.status, answer.reason,
                            _as_stored(answer.headers, kept=False), b"", when)
            hops.append(current)
            if len(hops) > most:
                raise NetLimit(url, "net.max_redirects", len(hops),
                               detail=f"the last one to {answer.location[:200]}")
            current = urllib.parse.urldefrag(urllib.parse.urljoin(current, answer.location))[0]
        try:
            ok = answer.status == 200
            if capture is not None:
                copy = archived(answer.sha256) if archived and ok and answer.sha256 else None
                capture.add("GET", current, sent, answer.status, answer.reason,
                            _as_stored(answer.headers), answer.body, when,
                            revisit=(answer.sha256, *copy) if copy else None)
        except BaseException:
            if answer.body is not None:
                answer.body.unlink(missing_ok=True)
            raise
        lowered = {k.lower(): v for k, v in answer.headers}
        return Response(url, current, answer.status, lowered, answer.body,
                        answer.sha256 if ok else None, answer.size,
                        when.replace("+00:00", "Z"), hops, answer.reason)

    # -- one hop, retried ----------------------------------------------------------------
    def _attempts(self, url: str, headers: dict[str, str], directory: Path,
                  max_bytes: str) -> _Answer:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise Refused(f"{url}: refused: only http:// and https:// URLs with a host are "
                          "requested")
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            self._before(url)
            try:
                return self._exchange(url, headers, directory, max_bytes, last)
            except _Retry as problem:
                if last:
                    raise FetchFailed(_gave_up(url, problem, self.retries, self.idle)) from None
                wait = problem.wait
                if wait is None:
                    wait = min(self.backoff * 2 ** attempt, 30.0)
                self._sleep_within(url, wait, problem)
        raise AssertionError("unreachable")

    def _before(self, url: str) -> None:
        """The caller's deadlines, then politeness: one request per host, `delay` apart."""
        for deadline in self.deadlines:
            if deadline.left() <= 0:
                raise DeadlineHit(url, deadline, before=True)
        host = urllib.parse.urlsplit(url).netloc
        wait = self._last.get(host, 0.0) + self.delay - time.monotonic()
        if wait > 0:
            left = min((d.left() for d in self.deadlines), default=wait)
            time.sleep(max(0.0, min(wait, left)))
            for deadline in self.deadlines:
                if deadline.left() <= 0:
                    raise DeadlineHit(url, deadline, before=True)
        self._last[host] = time.monotonic()

    def _sleep_within(self, url: str, wait: float, problem: _Retry) -> None:
        """Wait before a retry, only if the time left allows it."""
        if self.deadlines:
            deadline = min(self.deadlines, key=lambda d: d.end)
            left = deadline.left()
            if wait >= left:
                asked = "asked to retry after" if problem.kind == "status" else "a retry after"
                raise FetchFailed(
                    f"{url}: {problem} and {asked} {wait:g} s, beyond the {max(left, 0):.1f} "
                    f"s left of {deadline.what} ({deadline.limit}, {deadline.seconds:g} s); "
                    "gave up") from None
        time.sleep(wait)

    def _exchange(self, url: str, headers: dict[str, str], directory: Path, max_bytes: str,
                  last: bool) -> _Answer:
        clock = _Clock(url, self.idle, [*self.deadlines, Deadline.start(
            "net.response_deadline", "this response's time")])
        sock = self._connect(url, clock)
        response: http.client.HTTPResponse | None = None
        try:
            parts = urllib.parse.urlsplit(url)
            conn = http.client.HTTPConnection(_ascii_host(url), origin(url)[2])
            conn.sock = _ClockedSocket(sock, clock)  # type: ignore[assignment]
            target = urllib.parse.quote(
                urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, "")),
                safe="!#$%&'()*+,/:;=?@[]~")
            try:
                conn.request("GET", target, headers={**headers, "Connection": "close"})
                response = conn.getresponse()
            except http.client.InvalidURL as exc:
                raise Refused(f"{url}: refused: not a valid URL ({_first_line(exc)})") from None
            except TimeoutError:
                raise _Retry("timeout", "no answer") from None
            except (OSError, http.client.HTTPException) as exc:
                raise _Retry("connection", _first_line(exc)) from None
            answer = _Answer(response.status, response.reason, response.getheaders())
            if answer.status in REDIRECT_STATUSES and answer.header("location"):
                answer.location = str(answer.header("location")).strip()
                return answer
            if answer.status in RETRY_STATUSES and not last:
                raise _Retry("status", f"answered {answer.status}", _retry_after(answer))
            limit = max_bytes if answer.status == 200 else "net.max_page_bytes"
            self._receive(url, response, answer, directory, limit)
            return answer
        finally:
            if response is not None:
                response.close()
            with contextlib.suppress(OSError):
                sock.close()

    def _connect(self, url: str, clock: _Clock) -> socket.socket:
        """A connection to the checked addresses of URL's host (TLS for https)."""
        scheme, host, port = origin(url)
        name = _ascii_host(url)
        try:
            infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise _Retry("connection", f"cannot resolve {host} ({_first_line(exc)})") from None
        addresses = list(dict.fromkeys((family, sockaddr[:2]) for family, _, _, _, sockaddr
                                       in infos))
        if (scheme, host, port) != self.home:
            for _, sockaddr in addresses:
                ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
                rule = address_rule(ip)
                if rule:
                    trusted = (f"{self.home[0]}://{self.home[1]}:{self.home[2]}"
                               if self.home else "none")
                    said = (f"{host} is {rule}" if _is_literal(host)
                            else f"{host} resolves to {ip}, {rule}")
                    raise Refused(
                        f"{url}: refused: {said} (net rule: a "
                        "non-public address is requested only at the origin of the URL you "
                        f"configured, here {trusted})")
        problem: Exception | None = None
        for family, sockaddr in addresses:
            sock = socket.socket(family, socket.SOCK_STREAM)
            wait = clock.wait()
            sock.settimeout(wait)
            try:
                sock.connect(sockaddr)
            except TimeoutError:
                sock.close()
                clock.timed_out(wait)
                problem = TimeoutError("connection timed out")
                continue
            except OSError as exc:
                sock.close()
                problem = exc
                continue
            if scheme == "https":
                try:
                    sock = self._handshake(sock, name, clock)
                except ssl.SSLCertVerificationError as exc:
                    sock.close()
                    raise FetchFailed(f"{url}: TLS certificate refused "
                                      f"({_first_line(exc)})") from None
                except TimeoutError:
                    sock.close()
                    raise _Retry("timeout", "no answer") from None
                except OSError as exc:
                    sock.close()
                    raise _Retry("connection", f"TLS: {_first_line(exc)}") from None
            return sock
        if isinstance(problem, TimeoutError):
            raise _Retry("timeout", "no answer")
        raise _Retry("connection", _first_line(problem or OSError("no address")))

    def _handshake(self, sock: socket.socket, name: str, clock: _Clock) -> ssl.SSLSocket:
        """TLS over `sock`. CPython bounds a TLS operation's total time by the socket's
        timeout (not each read's), so a dribbled certificate cannot outlast the clock."""
        wait = clock.wait()
        sock.settimeout(wait)
        try:
            return self._tls_context().wrap_socket(sock, server_hostname=name)
        except TimeoutError:
            clock.timed_out(wait)
            raise

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            try:
                import certifi

                self._tls = ssl.create_default_context(cafile=certifi.where())
            except ImportError:
                self._tls = ssl.create_default_context()
        return self._tls

    def _receive(self, url: str, response: http.client.HTTPResponse, answer: _Answer,
                 directory: Path, limit: str) -> None:
        """The body into a file, decoded as it streams, within the limits; the file only
        when it is whole."""
        decoder = _Decoder(url, answer.header("content-encoding"))
        most = limits.value(limit)
        length = answer.header("content-length")
        if (decoder.identity and length and length.strip().isdigit()
                and int(length) > most):
            raise NetLimit(url, limit, int(length), detail="by its Content-Length; not read")
        ratio = limits.value("net.max_compression_ratio")
        fd, name = tempfile.mkstemp(prefix="download-", dir=directory)
        body = Path(name)
        digest, size, raw = hashlib.sha256(), 0, 0
        try:
            with os.fdopen(fd, "wb") as out:
                while True:
                    try:
                        chunk = response.read1(CHUNK)
                    except TimeoutError:
                        raise _Retry("timeout", "no answer") from None
                    except http.client.IncompleteRead as exc:
                        raise _Retry("short", f"download cut short ({_first_line(exc)})"
                                     ) from None
                    except (OSError, http.client.HTTPException) as exc:
                        raise _Retry("short", f"download cut short ({_first_line(exc)})"
                                     ) from None
                    if not chunk:
                        break
                    raw += len(chunk)
                    for piece in decoder.feed(chunk):
                        size += len(piece)
                        if size > most:
                            raise NetLimit(url, limit, size, detail="nothing kept")
                        if (not decoder.identity and size > RATIO_FREE_BYTES
                                and size > ratio * raw):
                            raise NetLimit(url, "net.max_compression_ratio", size / raw,
                                           detail=f"{size:,} bytes from {raw:,}; nothing kept")
                        digest.update(piece)
                        out.write(piece)
            left = response.length
            if left:  # the connection closed before Content-Length was reached
                raise _Retry("short", f"download cut short ({raw:,} of {raw + left:,} bytes)")
            decoder.finish()
        except BaseException:
            body.unlink(missing_ok=True)
            raise
        answer.body, answer.sha256, answer.size = body, digest.hexdigest(), size


class _Decoder:
    """identity or gzip (the only encodings asked for), decoded in bounded pieces."""

    def __init__(self, url: str, encoding: str | None) -> None:
        coding = (encoding or "identity").strip().lower()
        self.url = url
        if coding in ("", "identity"):
            self.identity = True
        elif coding in ("gzip", "x-gzip"):
            self.identity = False
            self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        else:
            raise Refused(f"{url}: refused: Content-Encoding {coding[:40]!r} was not asked "
                          f"for (Accept-Encoding: {ACCEPT_ENCODING})")

    def feed(self, chunk: bytes) -> Iterator[bytes]:
        if self.identity:
            yield chunk
            return
        data = chunk
        while True:
            try:
                out = self._z.decompress(data, CHUNK)
            except zlib.error as exc:
                raise FetchFailed(f"{self.url}: a gzip body that does not decode ({exc}); "
                                  "nothing kept") from None
            if out:
                yield out
            data = self._z.unconsumed_tail
            if self._z.eof:
                data = self._z.unused_data
                if not data:
                    return
                self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)  # another gzip member
                continue
            if not data and len(out) < CHUNK:
                return

    def finish(self) -> None:
        if not self.identity and not self._z.eof:
            raise _Retry("short", "download cut short (the gzip stream ends early)")


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _ascii_host(url: str) -> str:
    """URL's host as DNS and the Host header have it (IDNA)."""
    host = origin(url)[1]
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        raise Refused(f"{url}: refused: {host[:80]!r} is not a host name") from None


def _as_stored(headers: list[tuple[str, str]], *, kept: bool = True
               ) -> list[tuple[str, str]]:
    """The headers as the WARC record keeps them: the body there is decoded (or, for a
    redirect, not kept), so the headers that describe the bytes on the wire are kept
    under X-Archive-Orig-*."""
    if kept and not any(k.lower() == "content-encoding" for k, _ in headers):
        return headers
    renamed = ("content-encoding", "content-length", "transfer-encoding")
    return [(f"X-Archive-Orig-{k}" if k.lower() in renamed else k, v) for k, v in headers]


def _retry_after(answer: _Answer) -> float | None:
    """The server's Retry-After (seconds or a date), capped by `net.max_retry_after`."""
    value = (answer.header("retry-after") or "").strip()
    if not value:
        return None
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        seconds = (when - dt.datetime.now(dt.UTC)).total_seconds()
    return max(0.0, min(seconds, float(limits.value("net.max_retry_after"))))


def _gave_up(url: str, problem: _Retry, retries: int, idle: float) -> str:
    after = f"after {retries} retries" if retries else "(no retries)"
    if problem.kind == "timeout":
        return f"{url}: no answer within {idle:g} s (--timeout, net.idle_timeout) {after}"
    if problem.kind == "short":
        return f"{url}: {problem} {after}; nothing kept"
    return f"{url}: cannot fetch ({problem}) {after}"


def _first_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]
