"""Who may ask: the Host header must name this server (DNS rebinding), and another web
site may not make the user's browser fire requests at it (cross-site requests).

A page on any site the user visits can make the browser request
`http://127.0.0.1:8000/…` — an `<img>`, a `fetch()` in `no-cors` mode — and although it
cannot read the answer, it can make the server compute. Browsers say where a request
comes from: `Sec-Fetch-Site` (`same-origin`, `same-site`, `cross-site`, or `none` for a
URL typed or bookmarked) and, on `fetch`/XHR, `Origin`. This app's own pages only ever
make same-origin requests, so anything else is refused (403), with one exception: a
plain top-level navigation (`Sec-Fetch-Mode: navigate`, `Sec-Fetch-Dest: document`,
GET) — a link to a diff in a report or a chat. It opens in the user's own tab, the
other site cannot read the answer, frames are refused anyway (`frame-ancestors
'none'`), and it costs what any request may cost (the per-request bounds).
Clients that send none of these headers (curl, scripts) are not browsers fired by a
page and are answered as before.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

LOCAL_NAMES = ("127.0.0.1", "localhost", "[::1]")
FOREIGN_SITES = ("cross-site", "same-site")


def host_name(value: str) -> str:
    """The name part of a Host header (`[::1]:8000` -> `[::1]`, `Example:80` -> `example`)."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        return value[: end + 1] if end > 0 else value
    return value.split(":", 1)[0].rstrip(".")


def as_host(name: str) -> str:
    """An address or name as it appears in a Host header (IPv6 in brackets)."""
    name = name.strip().lower()
    return f"[{name}]" if ":" in name and not name.startswith("[") else name


class Guard:
    """ASGI middleware: refuse a foreign Host (400) and cross-site requests (403)."""

    def __init__(self, app: ASGIApp, hosts: Iterable[str] = ()) -> None:
        self.app = app
        self.hosts = frozenset([*LOCAL_NAMES, *(as_host(h) for h in hosts)])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        refusal = self.refusal(scope, headers)
        if refusal is None:
            await self.app(scope, receive, send)
            return
        status, message = refusal
        await Response(message + "\n", status, media_type="text/plain")(scope, receive, send)

    def refusal(self, scope: Scope, headers: Headers) -> tuple[int, str] | None:
        """(status, one line) when the request is refused, else None."""
        raw = headers.get("host", "")
        host = host_name(raw)
        if host not in self.hosts:
            shown = raw[:100]
            return 400, (f"Host {shown!r} does not name this server (accepted: "
                         f"{', '.join(sorted(self.hosts))}; `serve --allow-host NAME` adds one)")
        site = headers.get("sec-fetch-site", "").lower()
        if site in FOREIGN_SITES and not _navigation(scope, headers):
            return 403, (f"{scope['path'][:200]}: refused a {site} request (Sec-Fetch-Site); "
                         "only this app's own pages and plain links may ask it")
        origin = headers.get("origin")
        if origin is not None and not _same_origin(origin, raw):
            return 403, (f"{scope['path'][:200]}: refused a request from {origin[:100]!r} "
                         "(Origin is not this server)")
        return None


def _navigation(scope: Scope, headers: Headers) -> bool:
    """A plain top-level navigation: the user following a link into a tab of their own."""
    return (scope["method"] in ("GET", "HEAD")
            and headers.get("sec-fetch-mode", "").lower() == "navigate"
            and headers.get("sec-fetch-dest", "").lower() == "document")


def _same_origin(origin: str, host: str) -> bool:
    """Whether ORIGIN (`http://name:port`) is this server as the Host header names it."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return False
    if parts.scheme != "http" or not parts.hostname:
        return False
    return as_host(parts.hostname) == host_name(host) and str(port or 80) == _port(host)


def _port(host: str) -> str:
    """The port a Host header names (80 when it names none)."""
    host = host.strip()
    tail = host[host.rfind("]") + 1:] if host.startswith("[") else host
    _, sep, port = tail.rpartition(":")
    return port if sep and port.isdigit() else "80"
