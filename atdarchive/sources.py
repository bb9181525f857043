"""Where a dataset's releases are watched: `[[sources]]` in `dataset.toml`.

    [[sources]]
    page = "https://www.ice.gov/detain/detention-management"   # a landing page ...
    link = "detentionStats.*\\\\.xlsx"    # ... and a regex for the file links on it
    published = "filename:%m%d%Y"        # or "last-modified", or "captured"
    channel = "public"

    [[sources]]
    url = "https://example.gov/data/current.csv"                 # or one direct file URL

`link` is matched (re.search) against each link's absolute URL and its text. The
`published` policy says how a new file is dated: `filename:FORMAT` (strptime codes
%Y %m %d %H %M %S, matched against the last segment of the URL path; a name that does
not match is a failed check, never today's date), `last-modified` (the response
header, required) or `captured` (the moment of download, as `--published now`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import urllib.parse
from dataclasses import dataclass
from typing import Any

from atdarchive.errors import AtdError
from atdarchive.trust import Setting, archive_setting, confirm, require
from atdarchive.util import check_name

SOURCE_FIELDS = ("page", "link", "url", "published", "channel")
POLICIES = ("filename:", "last-modified", "captured")
_CODES = {"%Y": r"(?:19|20)\d{2}", "%m": r"\d{2}", "%d": r"\d{2}", "%H": r"\d{2}",
          "%M": r"\d{2}", "%S": r"\d{2}", "%y": r"\d{2}"}


@dataclass(frozen=True)
class Source:
    """One watched place: a landing page and a link pattern, or a direct file URL."""

    page: str | None = None
    link: str | None = None
    url: str | None = None
    published: str = "filename:%m%d%Y"
    channel: str = "public"

    @property
    def id(self) -> str:
        """A stable short id of the source (what it watches, not how it dates)."""
        what = {"page": self.page, "link": self.link} if self.page else {"url": self.url}
        return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:12]

    @property
    def label(self) -> str:
        return f"{self.page} [{self.link}]" if self.page else str(self.url)

    def to_toml(self) -> dict[str, str]:
        out = {k: getattr(self, k) for k in ("page", "link", "url") if getattr(self, k)}
        return {**out, "published": self.published, "channel": self.channel}

    def published_at(self, final_url: str, headers: dict[str, str], captured: str) -> str:
        """The publication date this policy gives a downloaded file (AtdError if none)."""
        from atdarchive.dates import http_date

        if self.published == "captured":
            return captured
        if self.published == "last-modified":
            when = http_date(headers.get("last-modified"))
            if when is None:
                raise AtdError(f"{final_url}: published = \"last-modified\" but the response "
                               "has no usable Last-Modified header")
            return when
        fmt = self.published.removeprefix("filename:")
        segment = urllib.parse.unquote(urllib.parse.urlparse(final_url).path.rsplit("/", 1)[-1])
        pattern = re.escape(fmt)
        for code, regex in _CODES.items():
            pattern = pattern.replace(re.escape(code), regex)
        for match in re.finditer(pattern, segment):
            try:
                parsed = dt.datetime.strptime(match.group(0), fmt)
            except ValueError:
                continue
            return (parsed.date().isoformat() if not re.search(r"%[HMS]", fmt)
                    else parsed.isoformat(timespec="seconds"))
        raise AtdError(f"{segment}: does not match published = \"{self.published}\"; the file "
                       "is not dated by guess (fix the policy, or commit it with --published)")


def source_problem(entry: object, where: str) -> str | None:
    """Why one `[[sources]]` entry is not a source (one line naming the key), or None."""
    if not isinstance(entry, dict):
        return f"{where} must be a table (page + link, or url)"
    for key, value in entry.items():
        if key not in SOURCE_FIELDS:
            return f"{where}: unknown key {key!r} (known: {', '.join(SOURCE_FIELDS)})"
        if not isinstance(value, str) or not value.strip():
            return f"{where}.{key} must be a non-empty string"
    if ("page" in entry) == ("url" in entry):
        return f"{where}: give either page (with link) or url"
    if "page" in entry and "link" not in entry:
        return f"{where}.link is required with page (a regex for the file links)"
    if "url" in entry and "link" in entry:
        return f"{where}.link only applies to a page"
    for key in ("page", "url"):
        if key in entry and urllib.parse.urlparse(entry[key]).scheme not in ("http", "https"):
            return f"{where}.{key} must be an http(s) URL"
    if "link" in entry:
        try:
            re.compile(entry["link"])
        except re.error as exc:
            return f"{where}.link is not a valid regex ({exc})"
    policy = entry.get("published", "filename:%m%d%Y")
    if not (policy in ("last-modified", "captured") or (
            policy.startswith("filename:") and re.search(r"%[Ymd]", policy))):
        return (f"{where}.published must be \"filename:FORMAT\" (e.g. filename:%m%d%Y), "
                "\"last-modified\" or \"captured\"")
    try:
        check_name("channel", entry.get("channel", "public"))
    except AtdError as exc:
        return f"{where}.channel: {exc}"
    return None


def sources_problem(value: object) -> str | None:
    if not isinstance(value, list):
        return "sources must be an array of tables ([[sources]])"
    for i, entry in enumerate(value):
        if problem := source_problem(entry, f"sources[{i}]"):
            return problem
    return None


def parse_sources(value: list[dict[str, Any]]) -> list[Source]:
    return [Source(**entry) for entry in value]


def add_source(ctx: Any, dataset: str, source: Source) -> Source:
    """Append SOURCE to DATASET's `dataset.toml` (validated; a duplicate is refused)."""
    from atdarchive import gitops

    entry = source.to_toml()
    if problem := source_problem(entry, "the source"):
        raise AtdError(f"{dataset}: {problem}")
    with ctx.write_lock():
        config = ctx.dataset(dataset)
        if any(s.id == source.id for s in config.sources):
            raise AtdError(f"{dataset}: already watches {source.label}")
        config.sources.append(source)
        path = ctx.dataset_dir(dataset) / "dataset.toml"
        config.save(path)
        gitops.commit(ctx.root, [path], f"{dataset}: watch {source.label}")
        confirm(ctx.root, source_setting(ctx.root, dataset, source))  # you typed it
    return source


def source_setting(root: Any, dataset: str, source: Source) -> Setting:
    """One source as a setting to confirm: it came with the archive unless you added it."""
    return archive_setting(root, "source", f"{dataset}:{source.id}", source.to_toml(),
                           f"datasets/{dataset}/dataset.toml")


def trusted_sources(ctx: Any, dataset: str) -> list[Source]:
    """DATASET's sources, each confirmed by the user: a `[[sources]]` entry that came with
    the archive may point anywhere (an intranet service, 127.0.0.1), so it is not fetched
    until confirmed (`source confirm`)."""
    sources = ctx.dataset(dataset).sources
    for source in sources:
        require(ctx.root, source_setting(ctx.root, dataset, source))
    return sources
