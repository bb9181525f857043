"""A real HTTP server on 127.0.0.1 that plays an agency's site over time (for watch tests
and the demo): routes are set and changed while it runs; each can answer slowly, fail a
few times first, ask to retry later, redirect (with a body of its own), cut its body
short, or dribble its answer a byte at a time (and note when the client hung up)."""

from __future__ import annotations

import email.utils
import http.server
import sys
import threading
import time
from dataclasses import dataclass, field


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    fail_first: int = 0            # answer `fail_status` this many times first
    fail_status: int = 500
    retry_after: str | None = None  # sent with the failures
    delay: float = 0.0             # seconds before answering
    cut_after: int | None = None   # send only this many body bytes (Content-Length full)
    redirect: str | None = None    # its `body` and `headers` go with the redirect
    dribble: float | None = None   # seconds between bytes...
    dribble_head: bool = False     # ...of the whole answer, status line first (else body)
    modified: float | None = None  # Last-Modified (and If-Modified-Since support)
    etag: str | None = None        # ETag (and If-None-Match support)
    hits: int = 0
    sent: int = 0                  # bytes a dribble got out
    hung_up: bool = False          # the client closed the connection mid-dribble
    dribbled: threading.Event = field(default_factory=threading.Event)  # a dribble ended


class AgencySite:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.log: list[tuple[str, dict[str, str]]] = []
        self.posts: list[bytes] = []  # what was POSTed (a chat webhook's view)
        site = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                site.posts.append(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                self._send(204, b"", {})

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                site.log.append((self.path, dict(self.headers)))
                route = site.routes.get(self.path)
                if route is None:
                    return self._send(404, b"<html>not found</html>", {"Content-Type":
                                                                      "text/html"})
                route.hits += 1
                if route.delay:
                    time.sleep(route.delay)
                if route.hits <= route.fail_first:
                    extra = {"Retry-After": route.retry_after} if route.retry_after else {}
                    return self._send(route.fail_status, b"busy", extra)
                if route.redirect:
                    return self._send(302, route.body, {"Location": route.redirect,
                                                        **route.headers})
                if route.dribble is not None:
                    return self._dribble(route)
                headers = dict(route.headers)
                if route.etag:
                    headers["ETag"] = route.etag
                    if self.headers.get("If-None-Match") == route.etag:
                        return self._send(304, b"", headers)
                if route.modified is not None:
                    headers["Last-Modified"] = email.utils.formatdate(route.modified,
                                                                      usegmt=True)
                    since = self.headers.get("If-Modified-Since")
                    if since and email.utils.parsedate_to_datetime(since).timestamp() >= int(
                            route.modified) and not route.etag:
                        return self._send(304, b"", headers)
                self._send(route.status, route.body, headers, route.cut_after)

            def _dribble(self, route: Route) -> None:
                """The answer a byte at a time, `route.dribble` s apart (bounded by its
                length); a write that fails means the client hung up."""
                head = (f"HTTP/1.1 {route.status} OK\r\nContent-Length: {len(route.body)}"
                        "\r\nConnection: close\r\n"
                        + "".join(f"{k}: {v}\r\n" for k, v in route.headers.items())
                        + "\r\n").encode()
                self.close_connection = True
                try:
                    if not route.dribble_head:
                        self.wfile.write(head)
                        self.wfile.flush()
                    for i, byte in enumerate((head if route.dribble_head else b"")
                                             + route.body):
                        if i:
                            time.sleep(route.dribble or 0)
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        route.sent += 1
                except OSError:
                    route.hung_up = True
                finally:
                    route.dribbled.set()

            def _send(self, status: int, body: bytes, headers: dict[str, str],
                      cut: int | None = None) -> None:
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                if cut is not None:
                    self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body if cut is None else body[:cut])
                if cut is not None:
                    self.wfile.flush()
                    self.close_connection = True

        class Server(http.server.ThreadingHTTPServer):
            def handle_error(self, request: object, client_address: object) -> None:
                if not isinstance(sys.exc_info()[1], ConnectionError):
                    super().handle_error(request, client_address)  # type: ignore[arg-type]
                # else: a client that hung up (a timeout, a refusal): expected here

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> AgencySite:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def page(self, path: str, links: list[tuple[str, str]]) -> None:
        """A landing page at PATH linking (href, text) pairs."""
        items = "".join(f'<li><a href="{href}">{text}</a></li>' for href, text in links)
        self.routes[path] = Route(f"<html><body><h1>Statistics</h1><ul>{items}</ul>"
                                  "</body></html>".encode(), headers={"Content-Type":
                                                                      "text/html"})

    def file(self, path: str, body: bytes, **options: object) -> Route:
        self.routes[path] = Route(body, **options)  # type: ignore[arg-type]
        return self.routes[path]
