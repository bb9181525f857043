"""The Starlette application: the registered pages as routes, file downloads, local
assets, and the rules every response follows.

- Read-only: any method but GET and HEAD is refused (405) before a route runs.
- Local: a Content-Security-Policy of `'self'` only, so a page can load nothing
  from elsewhere — even a value that slipped past escaping could not fetch or run
  anything; the Host header must name this machine (no DNS rebinding) and other web
  sites cannot make the browser ask it (`atdarchive.webapp.guard`).
- Bounded: each page runs on a bounded pool of workers with a clock
  (`serve.request_seconds`, 503 past it, 503 "busy" when every slot is taken), shows at
  most `serve.max_cells_per_page` / `serve.max_rows_per_page`, and keeps results in a
  cache bounded by bytes (`atdarchive.webapp.work`).
- Escaped: templates autoescape; links out are kept only when http(s).
- Timed: `Server-Timing: app;dur=MS` on every answer (what `bench/serve_bench.py` reads).
- Errors are one line: 404 for what the archive does not hold, 400 for a request the
  library refuses (its `AtdError` message), never a traceback in a page.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from atdarchive import limits
from atdarchive.errors import AtdError
from atdarchive.limits import LimitExceeded
from atdarchive.render.diff_records import jsonable
from atdarchive.webapp.guard import Guard
from atdarchive.webapp.pages import PAGES, BadRequest, NotFound, Page, Redirect, Site
from atdarchive.webapp.pages.base import Browsed
from atdarchive.webapp.work import Busy, TimedOut, Workers

HERE = Path(__file__).parent
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
SAFE_METHODS = ("GET", "HEAD")
HEADERS = [(b"content-security-policy", CSP.encode()),
           (b"x-content-type-options", b"nosniff"),
           (b"referrer-policy", b"no-referrer"),
           (b"x-frame-options", b"DENY")]


class ReadOnly:
    """ASGI middleware: refuse writes, add the security headers and `Server-Timing`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] not in SAFE_METHODS:
            response = Response(f"{scope['method']} refused: this archive is served read-only\n",
                                405, {"Allow": ", ".join(SAFE_METHODS)}, "text/plain")
            await _with_headers(response, scope, receive, send, time.perf_counter())
            return
        started = time.perf_counter()

        async def timed(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], *HEADERS, _timing(started)]
            await send(message)

        await self.app(scope, receive, timed)


async def _with_headers(response: Response, scope: Scope, receive: Receive, send: Send,
                        started: float) -> None:
    async def headed(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", []), *HEADERS, _timing(started)]
        await send(message)

    await response(scope, receive, headed)


def _timing(started: float) -> tuple[bytes, bytes]:
    return b"server-timing", f"app;dur={(time.perf_counter() - started) * 1000:.1f}".encode()


def safe_href(url: Any) -> str | None:
    """URL when it is an http(s) link, else None (no `javascript:` from an archive)."""
    text = str(url or "")
    return text if text.lower().startswith(("http://", "https://")) else None


def _templates() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"),
                             autoescape=True,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["href"] = safe_href
    env.filters["short"] = lambda text, n=10: (text or "")[:n]
    return env


def create_app(archive: Browsed, *, hosts: list[str] | None = None,
               overrides: Mapping[str, float] | None = None) -> Starlette:
    """The web app over ARCHIVE (`Archive.web_app`); `hosts`: Host header names accepted
    besides localhost; `overrides`: bounds (`serve.*`, `atdarchive.limits`) for this app."""
    site = Site(archive, overrides)
    env = _templates()
    workers = Workers(int(site.limit("serve.workers")), int(site.limit("serve.pending")))

    def answer(request: Request, handler: Any) -> Response:
        fmt = request.query_params.get("format") or "html"
        wants_json = fmt == "json"
        try:
            if fmt not in ("html", "json"):
                raise BadRequest(f"?format={fmt[:40]!r}: html or json")
            result = handler(site, request.query_params, **request.path_params)
            if isinstance(result, Response):
                return result
            if wants_json:
                return _json(result.data)
            return _html(env, result, request)
        except Redirect as move:
            return RedirectResponse(move.url, 303)
        except NotFound as exc:
            return _error(env, 404, str(exc), wants_json)
        except AtdError as exc:  # BadRequest, or a request the library refuses
            return _error(env, 400, str(exc), wants_json)
        except Exception as exc:  # a bug: one line to the user, the trace to the terminal
            import traceback

            traceback.print_exc(file=sys.stderr)
            return _error(env, 500, f"internal error: {type(exc).__name__}", wants_json)

    def endpoint(handler: Any) -> Any:
        async def run(request: Request) -> Response:
            wants_json = request.query_params.get("format") == "json"
            seconds = site.limit("serve.request_seconds")
            try:
                return await workers.run(seconds, answer, request, handler)
            except Busy as busy:
                message = str(LimitExceeded(request.url.path, "serve.pending", busy.args[0] + 1,
                                            "try again shortly"))
            except TimedOut:
                message = str(LimitExceeded(request.url.path, "serve.request_seconds", None,
                                            "still computing: a retry may find its result"))
            response = _error(env, 503, message, wants_json)
            response.headers["retry-after"] = "5"
            return response
        return run

    def server(site: Site, query: Any) -> Page:
        """What the server holds and computes now, and the bounds in force (cheap)."""
        bounds = {b.name: site.limit(b.name) for b in limits.table()
                  if b.name.startswith("serve.")}
        data = {"cache": site.results.stats(), "admitted": workers.admitted,
                "workers": workers.size, "pending_limit": workers.pending, "limits": bounds}
        return Page("server.html", "Server", data, [("Datasets", "/"), ("Server", "/server")])

    routes: list[Any] = [Route(spec.path, endpoint(spec.handler), name=spec.name,
                               methods=list(SAFE_METHODS)) for spec in PAGES]
    routes += [
        Route("/server", endpoint(server), methods=list(SAFE_METHODS)),
        Route("/datasets/{dataset}/releases/{ref}/original",
              endpoint(lambda s, q, dataset, ref: _download(s, dataset, ref, "original"))),
        Route("/datasets/{dataset}/releases/{ref}/capture.warc.gz",
              endpoint(lambda s, q, dataset, ref: _download(s, dataset, ref, "capture"))),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]

    async def unknown(request: Request, exc: Exception) -> Response:
        return _error(env, 404, f"no page at {request.url.path[:200]}",
                      request.query_params.get("format") == "json")

    return Starlette(routes=routes, exception_handlers={404: unknown}, middleware=[
        Middleware(ReadOnly), Middleware(Guard, hosts=hosts or [])])


def _download(site: Site, dataset: str, ref: str, what: str) -> Response:
    """The release's original file or WARC capture, hash-checked before it is sent."""
    dataset = site.dataset(dataset)
    entry = site.entry(dataset, ref)
    record = entry.record
    snapshot = site.archive.snapshot_of(record)
    if what == "original":
        import mimetypes

        path, name = snapshot.original_path, record["original"]["name"]
        kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
    else:
        if record.get("capture") not in record.get("files", {}):
            raise NotFound(f"{dataset}@{entry.short} has no WARC capture (committed by hand)")
        path, name = snapshot.file_path(record["capture"]), f"{entry.short}.warc.gz"
        kind = "application/warc"
    return FileResponse(path, media_type=kind, filename=Path(name).name,
                        content_disposition_type="attachment")


def _json(data: dict[str, Any]) -> Response:
    body = json.dumps(jsonable(data), ensure_ascii=False, allow_nan=False)
    return Response(body, media_type="application/json")


def _html(env: jinja2.Environment, result: Page, request: Request) -> Response:
    view = result.view if result.view is not None else result.data
    json_url = request.url.include_query_params(format="json")
    body = env.get_template(result.template).render(
        page_title=result.title, crumbs=result.crumbs, json_url=f"{json_url.path}?{json_url.query}",
        **view)
    return HTMLResponse(body)


def _error(env: jinja2.Environment, status: int, message: str, wants_json: bool) -> Response:
    if wants_json:
        return Response(json.dumps({"error": message, "status": status}), status,
                        media_type="application/json")
    body = env.get_template("error.html").render(
        page_title=f"{status}", crumbs=[("Datasets", "/")], json_url=None, status=status,
        message=message)
    return HTMLResponse(body, status)
