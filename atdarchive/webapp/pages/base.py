"""What every page shares: the registry, the `Site` (an archive plus its page caches),
links, and the errors a page raises for a bad URL."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, urlencode

from atdarchive import limits
from atdarchive.errors import AtdError
from atdarchive.webapp.work import ResultCache


class Browsed(Protocol):
    """What the pages call on an `atdarchive.Archive` (named here, not imported: the
    façade imports this package for `Archive.web_app`)."""

    root: Path

    def dataset_names(self) -> list[str]: ...
    def dataset(self, name: str) -> Any: ...
    def dataset_dir(self, name: str) -> Path: ...
    def ledger(self, dataset: str) -> Any: ...
    def history(self, dataset: str, *, include_retracted: bool = False) -> Any: ...
    def snapshot_of(self, record: dict[str, Any]) -> Any: ...
    def log(self, dataset: str | None = None, **options: Any) -> list[dict[str, Any]]: ...
    def diff(self, a: str, b: str | None = None, **options: Any) -> Any: ...
    def blame(self, ref: str, **options: Any) -> Any: ...
    def history_of(self, dataset: str, **options: Any) -> Any: ...
    def audit(self, dataset: str, options: Any = None, **kw: Any) -> Any: ...


class NotFound(AtdError):
    """The URL names something the archive does not hold (answered with 404)."""


class BadRequest(AtdError):
    """The URL's query is malformed (answered with 400)."""


class Redirect(Exception):  # noqa: N818 - control flow, not an error
    """A page's answer is another URL (a form's choice turned into a permalink)."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.url = url


@dataclass
class Page:
    """One rendered page: `data` is its JSON twin and what its template reads."""

    template: str
    title: str
    data: dict[str, Any]
    crumbs: list[tuple[str, str]] = field(default_factory=list)
    view: dict[str, Any] | None = None  # what the template reads, when more than `data`


Query = Mapping[str, Any]  # the request's query parameters (`getlist` for repeats)
Handler = Callable[..., Page]


@dataclass(frozen=True)
class PageSpec:
    path: str
    name: str
    handler: Handler


PAGES: list[PageSpec] = []


def page(path: str, name: str) -> Callable[[Handler], Handler]:
    """Register a page handler `(site, query, **path_params) -> Page` under PATH."""
    def register(handler: Handler) -> Handler:
        PAGES.append(PageSpec(path, name, handler))
        return handler
    return register


class Site:
    """An archive as the web app sees it: the façade plus a cache of the results of its
    heavier calls (audit, diffs, blame), each valid while the dataset's ledger and
    `dataset.toml` are unchanged on disk — a commit made meanwhile is seen at once. The
    cache is bounded by bytes (`serve.cache_bytes`) and computes each result once
    however many requests ask for it (`atdarchive.webapp.work.ResultCache`)."""

    def __init__(self, archive: Browsed, overrides: Mapping[str, float] | None = None) -> None:
        self.archive = archive
        self.overrides = dict(overrides or {})
        self.results = ResultCache(int(self.limit("serve.cache_bytes")))
        self._ledgers: dict[str, tuple[Any, ...]] = {}
        self._ledger_lock = threading.Lock()

    def limit(self, name: str) -> float:
        """The bound NAME in force for this app (`atdarchive.limits`)."""
        return limits.value(name, self.overrides)

    def dataset(self, name: str) -> str:
        if name not in self.archive.dataset_names():
            raise NotFound(f"no dataset {name!r} in this archive")
        self._refresh(name)
        return name

    def _refresh(self, dataset: str) -> None:
        """Read a ledger that changed on disk once, under a lock, before pages use it:
        the library's in-process ledger cache is updated in place when a ledger grows."""
        stamp = self.state(dataset)
        if self._ledgers.get(dataset) == stamp:
            return
        with self._ledger_lock:
            if self._ledgers.get(dataset) != stamp:
                self.archive.history(dataset, include_retracted=True)
                self._ledgers[dataset] = stamp

    def state(self, dataset: str) -> tuple[Any, ...]:
        """What a cached result of DATASET depends on: its ledger and config, as stat'ed."""
        stamps = []
        for path in (self.archive.ledger(dataset).path,
                     self.archive.dataset_dir(dataset) / "dataset.toml"):
            try:
                st = path.stat()
                stamps.append((st.st_size, st.st_mtime_ns, st.st_ino))
            except FileNotFoundError:
                stamps.append(None)
        return tuple(stamps)

    def cached(self, dataset: str, key: tuple[Any, ...], compute: Callable[[], Any]) -> Any:
        """COMPUTE() once per archive state of DATASET (kept while `serve.cache_bytes`
        allows; computed once for every request asking meanwhile)."""
        full = (dataset, self.state(dataset), *key)
        value, _ = self.results.get(dataset, full, compute, f"{dataset}: {key[0]} {key[1:]}")
        return value

    def entry(self, dataset: str, ref: str) -> Any:
        """The history entry REF names — `latest`, dates and tags as the CLI resolves them
        (retracted releases skipped); an id finds a retracted one too (permalinks hold)."""
        try:
            return self.archive.history(dataset).resolve(ref)
        except AtdError as exc:
            try:
                return self.archive.history(dataset, include_retracted=True).resolve(ref)
            except AtdError:
                raise NotFound(str(exc)) from None

    def audit(self, dataset: str) -> Any:
        return self.cached(dataset, ("audit",), lambda: self.archive.audit(dataset))


#: a count in a URL above this is refused, not clamped: no page is that big, so it is a
#: mistake or a probe (and Arrow's int64 arithmetic stays far from overflow)
ABSURD = 10**9


def int_param(query: Query, name: str, default: int, cap: int | None = None) -> int:
    """The one parser of counts in a URL (?limit=, ?offset=): ASCII digits, at most
    `ABSURD`, else a one-line `BadRequest`; then at most CAP (a page's bound), silently —
    the page reports the count it used."""
    text = query.get(name)
    if text in (None, ""):
        value = default
    else:
        shown = text if len(text) <= 40 else text[:40] + "…"
        negative = text.startswith("-")
        digits = text[1:] if negative else text
        if not (digits.isascii() and digits.isdigit()):
            raise BadRequest(f"?{name}={shown!r}: not a whole number")
        if negative:
            raise BadRequest(f"?{name}={shown!r}: must not be negative")
        if len(text) > 10 or int(text) > ABSURD:
            raise BadRequest(f"?{name}={shown!r}: more than {ABSURD:,}, no page is that big")
        value = int(text)
    return value if cap is None else min(value, cap)


class PageBudget:
    """What one page may still show: cells (each changed cell, each value of a row) up
    to `serve.max_cells_per_page`, rows of one list up to `serve.max_rows_per_page`."""

    def __init__(self, site: Site) -> None:
        self.cells = int(site.limit("serve.max_cells_per_page"))
        self.rows = int(site.limit("serve.max_rows_per_page"))
        self.cut = False  # something was left out to keep within the bounds

    def take(self, wanted: int, width: int = 1, rows: bool = False) -> int:
        """How many of WANTED items (each WIDTH cells) fit; charged to the budget."""
        n = min(wanted, self.cells // max(1, width))
        if rows:
            n = min(n, self.rows)
        self.cut = self.cut or n < wanted
        self.cells -= n * max(1, width)
        return max(0, n)


# -- links: every page's permalink is built here -----------------------------------
def _q(text: str) -> str:
    return quote(str(text), safe="")


def datasets_url() -> str:
    return "/"


def timeline_url(dataset: str) -> str:
    return f"/datasets/{_q(dataset)}"


def release_url(dataset: str, ref: str) -> str:
    return f"/datasets/{_q(dataset)}/releases/{_q(ref)}"


def table_url(dataset: str, ref: str, table: str) -> str:
    return f"{release_url(dataset, ref)}/tables/{_q(table)}"


def download_url(dataset: str, ref: str, what: str) -> str:
    return f"{release_url(dataset, ref)}/{what}"


def diff_url(dataset: str, a: str, b: str, table: str | None = None) -> str:
    url = f"/datasets/{_q(dataset)}/diff/{_q(a)}..{_q(b)}"
    return url + (f"?{urlencode({'table': table})}" if table else "")


def cell_path(dataset: str, table: str) -> str:
    """Where a cell's history lives; the cell is named in the query (`cell_url`)."""
    return f"/datasets/{_q(dataset)}/tables/{_q(table)}/cell"


def row_query(row: Mapping[str, Any], channel: str = "public") -> list[tuple[str, str]]:
    """A row as query parameters: one `row=COLUMN=VALUE` per key column (and the channel)."""
    return [("row", f"{k}={v}") for k, v in row.items()] + (
        [("channel", channel)] if channel != "public" else [])


def cell_url(dataset: str, table: str, row: Mapping[str, Any], column: str,
             channel: str = "public") -> str:
    params = [*row_query(row), ("column", column), *row_query({}, channel)]
    return f"{cell_path(dataset, table)}?{urlencode(params)}"


def audit_url(dataset: str) -> str:
    return f"/datasets/{_q(dataset)}/audit"


def crumbs(dataset: str, *more: tuple[str, str]) -> list[tuple[str, str]]:
    """The page's trail: Datasets / DATASET / MORE..."""
    return [("Datasets", datasets_url()), (dataset, timeline_url(dataset)), *more]


def release_ref(entry: Any) -> dict[str, Any]:
    """How a page names a release: ids, date, channel and its permalink."""
    return {"id": entry.id, "short_id": entry.short, "published": entry.published,
            "channel": entry.channel, "url": release_url(entry.dataset, entry.id)}
