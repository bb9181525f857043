"""What every page shares: the registry, the `Site` (an archive plus its page caches),
links, and the errors a page raises for a bad URL."""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, urlencode

from atdarchive.errors import AtdError


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
    """An archive as the web app sees it: the façade plus a small cache of the results
    of its heavier calls (audit, diffs, blame), each valid while the dataset's ledger and
    `dataset.toml` are unchanged on disk — a commit made meanwhile is seen at once."""

    MAX_CACHED = 128

    def __init__(self, archive: Browsed) -> None:
        self.archive = archive
        self._cache: collections.OrderedDict[tuple[Any, ...], Any] = collections.OrderedDict()
        self._lock = threading.Lock()

    def dataset(self, name: str) -> str:
        if name not in self.archive.dataset_names():
            raise NotFound(f"no dataset {name!r} in this archive")
        return name

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
        """COMPUTE() once per archive state of DATASET (LRU of `MAX_CACHED` results)."""
        full = (dataset, self.state(dataset), *key)
        with self._lock:
            if full in self._cache:
                self._cache.move_to_end(full)
                return self._cache[full]
        value = compute()
        with self._lock:
            self._cache[full] = value
            while len(self._cache) > self.MAX_CACHED:
                self._cache.popitem(last=False)
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


def int_param(query: Query, name: str, default: int) -> int:
    """A whole, non-negative query parameter (?limit=, ?offset=)."""
    text = query.get(name)
    if text in (None, ""):
        return default
    try:
        value = int(text)
    except ValueError:
        raise BadRequest(f"?{name}={text!r}: not a whole number") from None
    if value < 0:
        raise BadRequest(f"?{name}={text!r}: must not be negative")
    return value


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
