"""`watch`: one pass over every source of the datasets (README "Watch").

A pass fetches each landing page (kept as evidence), finds the file links the
source's regex matches, asks for known URLs conditionally (If-None-Match /
If-Modified-Since), downloads new ones, commits new bytes with their WARC capture,
and records what else it saw as `watch` ledger events: `same_url_revision` (a file
replaced in place), `repost` (bytes already archived, under another name or date),
`withdrawn` (a URL answering 404/410, or a link gone from its page), `reinstated`,
`page_changed` (the page moved, no new file), `no_link`, `check` and `failed`.
What a pass knows of earlier ones comes from the ledger alone (so a fresh clone in a
CI job watches as well as a long-lived machine). `check`, `failed` and `no_link` are
coalesced: the first of a source's day is written, with its capture; later ones that
day are only counted locally (`.atdarchive/local/watch-counts.json`) and the count goes
into the next one written, so a 15-minute schedule adds one git commit per source and
day, not ninety-six.
"""

from __future__ import annotations

import contextlib
import hashlib
import html.parser
import json
import os
import re
import shutil
import tempfile
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from atdarchive.context import ArchiveContext
from atdarchive.errors import AtdError
from atdarchive.paths import ensure_no_symlink
from atdarchive.sources import Source, trusted_sources
from atdarchive.util import atomic_write, utc_now

#: How much each event matters, as audit severities (`--fail-on`).
EVENT_SEVERITY = {"same_url_revision": "alert", "withdrawn": "warning", "repost": "warning",
                  "reinstated": "info", "page_changed": "info", "no_link": "warning",
                  "failed": "warning", "check": None}
COALESCED = ("check", "failed", "no_link")
#: An event's capture goes into git only below this size (pages, 304s, revisits do).
MAX_GIT_CAPTURE = 256 << 10
#: A source's `published` policy as the record's `published_source` (`atdarchive.dates`).
POLICY_SOURCE = {"filename": "file_name", "last-modified": "last_modified", "captured": "now"}
FILE_SUFFIXES = (".xlsx", ".xlsm", ".xls", ".xlsb", ".ods", ".csv", ".tsv", ".json",
                 ".parquet", ".zip")


@dataclass
class WatchOptions:
    timeout: float | None = None  # seconds without a byte (None: net.idle_timeout)
    retries: int = 3
    backoff: float = 0.5
    delay: float = 1.0           # seconds between two requests to one host
    budget: float | None = None  # seconds for the whole pass (None: net.watch_budget)


@dataclass
class SourceOutcome:
    """What one pass found at one source."""

    dataset: str
    source: Source
    snapshots: list[str] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)   # written to the ledger
    counted: list[str] = field(default_factory=list)             # coalesced, counted only
    notes: list[str] = field(default_factory=list)
    findings: list[Any] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def failed(self) -> str | None:
        return "; ".join(self.failures) or None

    def fail(self, reason: str) -> str:
        self.failures.append(reason)
        return reason

    def to_json(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "source": self.source.id, "where": self.source.label,
                "snapshots": self.snapshots,
                "events": [{k: v for k, v in e.items() if k != "type"} for e in self.events],
                "counted": self.counted, "notes": self.notes,
                "findings": [f.to_json() for f in self.findings], "failed": self.failed}


@dataclass
class WatchResult:
    outcomes: list[SourceOutcome]

    @property
    def failed(self) -> bool:
        return any(o.failed for o in self.outcomes)

    @property
    def news(self) -> list[dict[str, Any]]:
        """New snapshots and events other than routine checks."""
        return [e for o in self.outcomes for e in o.events if e["kind"] not in COALESCED] + [
            {"kind": "new_release", "snapshot": s, "dataset": o.dataset}
            for o in self.outcomes for s in o.snapshots]

    def worst(self) -> str | None:
        from atdarchive.checks.base import RANK

        severities = [f.severity for o in self.outcomes for f in o.findings]
        severities += [s for e in self.news if (s := EVENT_SEVERITY.get(e["kind"]))]
        return max(severities, key=RANK.__getitem__, default=None)

    def to_json(self) -> dict[str, Any]:
        return {"sources": [o.to_json() for o in self.outcomes], "failed": self.failed,
                "new_snapshots": [s for o in self.outcomes for s in o.snapshots],
                "events": self.news and [e for e in self.news if e["kind"] != "new_release"],
                "worst": self.worst(), "text": self.text()}

    def text(self) -> str:
        """One line per source that saw something (for chat webhooks and the terminal)."""
        lines = []
        for o in self.outcomes:
            said = [f"new release {s[:10]}" for s in o.snapshots]
            said += [f"{e['kind'].replace('_', ' ')}: {e.get('reason') or e.get('url', '')}"
                     for e in o.events if e["kind"] not in ("check", "failed")]
            said += [f"failed: {reason}" for reason in o.failures]
            lines.append(f"{o.dataset} {o.source.label}: " + ("; ".join(said) or "unchanged"))
        return "\n".join(lines)


# ---------------------------------------------------------------- what the ledger knows


@dataclass
class _Known:
    """A source's and its URLs' last state, read from the ledger."""

    urls: dict[str, dict[str, Any]] = field(default_factory=dict)  # url -> last evidence
    page: dict[str, Any] | None = None
    written_today: set[str] = field(default_factory=set)  # coalesced kinds already in
    #: every link list the ledger holds, by `links_digest` (a page's list is written once)
    link_lists: dict[str, list[str]] = field(default_factory=dict)

    def see_page(self, page: Any) -> None:
        """A page's evidence from the ledger: the latest page, and its links if inline."""
        if not isinstance(page, dict):
            return
        links = page.get("links")
        if isinstance(links, list):
            kept = [url for url in links if isinstance(url, str)]
            self.link_lists[links_digest(kept)] = kept
        self.page = page

    def page_links(self) -> list[str]:
        """The links of the latest page seen (inline, or by its digest)."""
        page = self.page or {}
        if isinstance(page.get("links"), list):
            return [url for url in page["links"] if isinstance(url, str)]
        return list(self.link_lists.get(str(page.get("links_sha256")), []))


def links_digest(links: list[str]) -> str:
    """The digest a page's link list is stored and referred to by."""
    return hashlib.sha256(json.dumps(links).encode()).hexdigest()


def _known(ctx: ArchiveContext, dataset: str, source: Source, today: str) -> _Known:
    known = _Known()
    history = ctx.history(dataset, include_retracted=True)
    mine = [(e.seq, "snapshot", e.record.get("fetch") or {}, e.id) for e in history.entries
            if (e.record.get("fetch") or {}).get("source") == source.id]
    mine += [(w["seq"], "watch", w, None) for w in history.watch_events
             if w.get("source") == source.id]
    for _, kind, item, snapshot_id in sorted(mine, key=lambda m: m[0]):  # ledger order
        if kind == "snapshot":
            state = {**item, "snapshot": snapshot_id, "withdrawn": False}
            for url in {item.get("requested_url"), item.get("final_url")} - {None}:
                known.urls[url] = state
            if item.get("page"):
                known.see_page(item["page"])
            continue
        event = item
        if event.get("page"):
            known.see_page(event["page"])
        url = event.get("url")
        if url and event["kind"] in ("withdrawn", "reinstated", "check", "repost",
                                     "same_url_revision"):
            state = dict(known.urls.get(url, {}))
            state.update({k: v for k, v in (event.get("evidence") or {}).items()
                          if k in ("etag", "last_modified", "sha256")})
            state["withdrawn"] = event["kind"] == "withdrawn"
            known.urls[url] = state
        if event["kind"] in COALESCED and event["at"][:10] == today:
            known.written_today.add(event["kind"])
    return known


# ---------------------------------------------------------------- links


class _Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[str, str]] = []
        self._href: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._href = dict(attrs).get("href")
            self._text = []

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._href is not None:
            self.links.append((self._href, " ".join("".join(self._text).split())))
            self._href = None


def find_links(page: str, base: str, pattern: str) -> list[str]:
    """Absolute URLs of the page's links whose URL or text matches `pattern`, in page
    order, each once."""
    parser = _Links()
    with contextlib.suppress(Exception):  # broken HTML: the links read so far count
        parser.feed(page)
        parser.close()
    regex = re.compile(pattern)
    out: dict[str, None] = {}  # ordered, each once, without a quadratic `in`
    for href, text in parser.links:
        url = urllib.parse.urljoin(base, href.strip())
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            continue
        url = urllib.parse.urldefrag(url)[0]
        if url not in out and (regex.search(url) or regex.search(text)):
            out[url] = None
    return list(out)


def _looks_like_html(path: Path, headers: dict[str, str], url: str) -> bool:
    """An HTML page where a file was expected (an error page served with status 200)."""
    with open(path, "rb") as fh:
        head = fh.read(512).lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    markup = head.startswith((b"<!doctype html", b"<html", b"<head", b"<body"))
    wanted = urllib.parse.urlsplit(url).path.lower().endswith(FILE_SUFFIXES)
    return markup and (wanted or "html" in headers.get("content-type", ""))


# ---------------------------------------------------------------- one pass


def watch(ctx: ArchiveContext, datasets: list[str] | None = None,
          options: WatchOptions | None = None, progress: Any = None) -> WatchResult:
    """One pass over every source of DATASETS (default: every dataset with sources)."""
    from atdarchive.web import Client, Deadline

    options = options or WatchOptions()
    names = datasets or [d for d in ctx.dataset_names() if ctx.dataset(d).sources]
    work = [(d, s) for d in names for s in trusted_sources(ctx, d)]
    if datasets and not work:
        raise AtdError(f"{', '.join(datasets)}: no [[sources]] to watch; add one with "
                       "'atdarchive source add DATASET --page URL --link REGEX' (or --url)")
    budget = Deadline.start("net.watch_budget", "the pass's time budget", "--budget",
                            options.budget)
    client = Client(timeout=options.timeout, retries=options.retries, backoff=options.backoff,
                    delay=options.delay, deadline=budget)
    outcomes = []
    try:
        for done, (dataset, source) in enumerate(work, 1):
            outcomes.append(_watch_source(ctx, client, dataset, source))
            if progress is not None:
                progress("watch", done, len(work))
    finally:
        client.close()
    return WatchResult(outcomes)


class _Pass:
    """One source's pass: its scratch directory, captures and the events it makes."""

    def __init__(self, ctx: ArchiveContext, client: Any, dataset: str, source: Source,
                 scratch: Path) -> None:
        self.ctx, self.client, self.dataset, self.source = ctx, client, dataset, source
        self.scratch = scratch
        self.today = utc_now()[:10]
        self.known = _known(ctx, dataset, source, self.today)
        self.out = SourceOutcome(dataset, source)
        self.pending: list[tuple[dict[str, Any], Path | None]] = []
        self.page_ev: dict[str, Any] | None = None  # the page's evidence (links by digest)
        self.page_links: list[str] = []
        self.page_capture: Path | None = None
        self.page_written = False  # the page's capture is in the ledger for this pass
        self.removed: list[str] = []
        self.page_changed = False

    def event(self, kind: str, capture: Path | None = None, **fields: Any) -> None:
        event = {"type": "watch", "kind": kind, "source": self.source.id, "at": utc_now(),
                 "channel": self.source.channel,
                 **{k: v for k, v in fields.items() if v is not None}}
        self.pending.append((event, capture))

    def capture(self) -> Any:
        from atdarchive.web import Capture

        return Capture(self.scratch)

    def with_page(self, capture: Path) -> Path:
        """A file's capture preceded by the page that linked it (one WARC)."""
        from atdarchive.web import join_captures

        page = self.page_capture
        return join_captures([page, capture], self.scratch) if page else capture

    def page_for_ledger(self, page: dict[str, Any] | None, stored: set[str]
                        ) -> dict[str, Any] | None:
        """The page's evidence as a ledger line keeps it: its link list inline only the
        first time the ledger sees that list (`stored`: digests written in this batch)."""
        digest = (page or {}).get("links_sha256")
        if not page or digest is None or digest in self.known.link_lists or digest in stored:
            return page
        stored.add(digest)
        return {**page, "links": self.page_links}

    def archived(self, sha256: str) -> tuple[str, str] | None:
        """(uri, date) of an archived copy of these bytes: its WARC record is a revisit."""
        same = self.ctx.history(self.dataset, include_retracted=True).find_identical(sha256)
        if not same:
            return None
        record = same[-1].record
        fetch = record.get("fetch") or {}
        return (fetch.get("final_url") or record.get("source_url") or
                f"urn:atdarchive:{self.dataset}:{record['id']}",
                fetch.get("fetched_at") or record.get("retrieved_at") or record["published"])


def _watch_source(ctx: ArchiveContext, client: Any, dataset: str,
                  source: Source) -> SourceOutcome:
    from atdarchive.web import Deadline

    scratch = Path(tempfile.mkdtemp(prefix="atdarchive-watch-"))
    run = _Pass(ctx, client, dataset, source, scratch)
    try:
        # the configured URL's own origin may be a non-public address; nothing else may
        with client.scope(str(source.page or source.url),
                          Deadline.start("net.source_deadline", "this source's time")):
            urls = _page_links(run) if source.page else [str(source.url)]
            for done, url in enumerate(urls or []):
                spent = client.spent() if source.page else None
                if spent is not None:  # one line for the rest, not one per link
                    run.out.fail(f"{source.page}: {len(urls or []) - done:,} link(s) not "
                                 f"requested: {spent.what} is spent ({spent.limit}, "
                                 f"{spent.seconds:g} s)")
                    break
                _watch_file(run, url)
        _withdrawn_links(run)
        _record(run)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return run.out


def _page_links(run: _Pass) -> list[str] | None:
    """The file links on the source's page (None when the page could not be read); at
    most `net.max_links_per_page` of them, the excess reported and not stored."""
    from atdarchive import limits
    from atdarchive.web import FetchFailed

    source, known = run.source, run.known
    capture = run.capture()
    headers = {"If-None-Match": known.page["etag"]} if known.page and known.page.get(
        "etag") else {}
    try:
        response = run.client.get(str(source.page), run.scratch, headers=headers,
                                  capture=capture, max_bytes="net.max_page_bytes")
    except FetchFailed as exc:
        run.out.fail(str(exc))
        run.event("failed", capture.close(), url=source.page, reason=str(exc))
        return None
    page_ev = response.evidence()
    try:
        if response.status == 304 and known.page:
            links = known.page_links()
            page_ev["sha256"] = known.page.get("sha256")
        elif response.status != 200:
            reason = run.out.fail(f"{source.page}: the page answered {response.status}")
            run.event("failed", capture.close(), url=source.page, reason=reason,
                      page=page_ev)
            return None
        else:
            assert response.body is not None
            text = response.body.read_text(encoding="utf-8", errors="replace")
            links = find_links(text, response.final_url, str(source.link))
            del text
    finally:
        response.discard()
    most = int(limits.value("net.max_links_per_page"))
    cut = len(links) > most
    if cut:
        run.out.fail(str(limits.LimitExceeded(
            str(source.page), "net.max_links_per_page", len(links),
            detail=f"the first {most:,} are watched, the other {len(links) - most:,} "
                   "ignored and not stored")))
        links = links[:most]
    page_ev.update(links_sha256=links_digest(links), links_count=len(links))
    run.page_ev, run.page_links = page_ev, links
    run.page_capture = capture.close()
    before = known.page_links()
    now = set(links)
    run.removed = [] if cut else [  # a cut list does not say what was removed
        url for url in before if url not in now and not known.urls.get(url, {}).get(
            "withdrawn")]
    if not links:
        note = f"{source.page}: no link matches {source.link!r}"
        run.out.notes.append(note)
        run.event("no_link", run.page_capture, url=source.page, reason=note, page=page_ev)
    elif known.page and page_ev.get("sha256") != known.page.get("sha256") and now == set(
            before):
        run.page_changed = True
    return links


def _withdrawn_links(run: _Pass) -> None:
    """Links gone from the page: withdrawn, unless a new release took their place in this
    pass (ICE links only the current file: the old one is superseded, not withdrawn)."""
    if run.out.snapshots:
        return
    for url in run.removed:
        run.event("withdrawn", run.page_capture, url=url, page=run.page_ev,
                  snapshot=run.known.urls.get(url, {}).get("snapshot"),
                  reason=f"the link to {url} was removed from {run.source.page}")
        run.known.urls.setdefault(url, {})["withdrawn"] = True


def _watch_file(run: _Pass, url: str) -> None:
    from atdarchive.web import FetchFailed

    known = run.known.urls.get(url)
    headers: dict[str, str] = {}
    if known and not known.get("withdrawn"):
        if known.get("etag"):
            headers["If-None-Match"] = known["etag"]
        if known.get("last_modified"):
            headers["If-Modified-Since"] = known["last_modified"]
    capture = run.capture()
    page = run.page_ev
    try:
        response = run.client.get(url, run.scratch, headers=headers, capture=capture,
                                  archived=run.archived)
    except FetchFailed as exc:
        run.out.fail(str(exc))
        run.event("failed", capture.close(), url=url, reason=str(exc), page=page)
        return
    try:
        _judge_file(run, url, response, capture.close(), known)
    finally:
        response.discard()  # scratch holds one download at a time


def _judge_file(run: _Pass, url: str, response: Any, warc: Path,
                known: dict[str, Any] | None) -> None:
    """What a file's answer means: an event, or a new release (`warc`: this exchange;
    the page that linked it goes into the pass's first event written, or the snapshot)."""
    page = run.page_ev
    evidence = response.evidence()
    if response.status == 304:
        run.event("check", warc, url=url, evidence=evidence, page=page,
                  snapshot=(known or {}).get("snapshot"))
        return
    if response.status in (404, 410):
        if known and not known.get("withdrawn"):
            run.event("withdrawn", warc, url=url, evidence=evidence, page=page,
                      snapshot=known.get("snapshot"), reason=f"{url} answered {response.status}")
        elif not known:
            reason = run.out.fail(f"{url}: answered {response.status}")
            run.event("failed", warc, url=url, evidence=evidence, page=page, reason=reason)
        else:
            run.event("check", warc, url=url, evidence=evidence, page=page,
                      reason="still withdrawn")
        return
    if response.status != 200:
        reason = run.out.fail(f"{url}: answered {response.status}")
        run.event("failed", warc, url=url, evidence=evidence, page=page, reason=reason)
        return
    if _looks_like_html(response.body, response.headers, url):
        reason = run.out.fail(f"{url}: an HTML page was served with status 200 where a file "
                              "was expected; refused")
        run.event("failed", warc, url=url, evidence=evidence, page=page, reason=reason)
        return
    if known and known.get("withdrawn"):
        run.event("reinstated", warc, url=url, evidence=evidence, page=page,
                  snapshot=known.get("snapshot"), reason=f"{url} serves again")
    history = run.ctx.history(run.dataset, include_retracted=True)
    if known and response.sha256 == known.get("sha256"):
        run.event("check", warc, url=url, evidence=evidence, page=page,
                  snapshot=known.get("snapshot"))
        return
    same = history.find_identical(response.sha256 or "")
    if same:
        run.event("repost", warc, url=url, evidence=evidence, page=page, snapshot=same[-1].id,
                  reason=f"{url}: the same bytes as {run.dataset}@{same[-1].short} "
                         f"(published {same[-1].published})")
        return
    _commit_new(run, url, response, warc, known)


def _commit_new(run: _Pass, url: str, response: Any, warc: Path,
                known: dict[str, Any] | None) -> None:
    from atdarchive.commit import commit

    source = run.source
    evidence = {**response.evidence(), "source": source.id}
    if run.page_ev:
        evidence["page"] = run.page_ev  # the page that linked it (its links by digest)
    try:
        published = source.published_at(response.final_url, response.headers,
                                         response.fetched_at)
    except AtdError as exc:
        run.out.fail(str(exc))
        run.event("failed", warc, url=url, evidence=evidence, reason=str(exc))
        return
    name = _file_name(response.final_url)
    target = run.scratch / "files" / name
    target.parent.mkdir(exist_ok=True)
    os.replace(response.body, target)
    _record(run)  # what came before it, in order
    stored: set[str] = set()
    record_evidence = {**evidence, "page": run.page_for_ledger(run.page_ev, stored)
                       } if run.page_ev else evidence
    snapshot_capture = run.with_page(warc)  # the snapshot's own evidence: page, then file
    try:
        result = commit(run.ctx, run.dataset, target, published=published,
                        source_url=response.final_url, retrieved_at=response.fetched_at,
                        channel=source.channel, evidence=record_evidence,
                        capture=snapshot_capture, message=f"watch: {source.label}",
                        keep_unparsed=True,
                        published_source=POLICY_SOURCE[source.published.partition(":")[0]])
    except AtdError as exc:
        reason = run.out.fail(f"{name}: not archived: {exc}")
        run.event("failed", warc, url=url, evidence=evidence, reason=reason)
        return
    finally:
        target.unlink(missing_ok=True)  # scratch stays linear in what one file needs
        if snapshot_capture != warc:
            snapshot_capture.unlink(missing_ok=True)
    for digest in stored:
        run.known.link_lists[digest] = run.page_links
    snap = result.snapshot
    run.out.snapshots.append(snap.id)
    run.out.findings += result.findings
    run.known.urls[url] = {**evidence, "snapshot": snap.id, "withdrawn": False}
    if known and known.get("sha256"):
        run.event("same_url_revision", None, url=url, snapshot=snap.id,
                  reason=f"{url} was replaced in place: new bytes under the same URL "
                         f"(was {str(known['sha256'])[:12]}, now {str(response.sha256)[:12]})",
                  evidence={"previous_sha256": known["sha256"],
                            "previous_snapshot": known.get("snapshot"), **evidence})


def _file_name(url: str) -> str:
    name = urllib.parse.unquote(Path(urllib.parse.urlsplit(url).path).name)
    name = re.sub(r"[^A-Za-z0-9._-]", "_", name).strip("._")
    return name[:120] or "download"


# ---------------------------------------------------------------- writing events


def _counts_path(ctx: ArchiveContext) -> Path:
    return ctx.layout.local / "watch-counts.json"


def _record(run: _Pass) -> None:
    """Append the pass's pending events (one git commit), captures beside the ledger;
    coalesced kinds already written today are counted instead."""
    if run.page_changed and not any(
            e["kind"] not in COALESCED for e, _ in run.pending) and not run.out.snapshots:
        run.event("page_changed", run.page_capture, url=run.source.page, page=run.page_ev,
                  reason=f"{run.source.page} changed, with no new file")
        run.page_changed = False
    if not run.pending:
        return
    ctx, dataset = run.ctx, run.dataset
    counts_file = _counts_path(ctx)
    try:
        counts = json.loads(counts_file.read_text())
    except (FileNotFoundError, ValueError):
        counts = {}
    keep: list[tuple[dict[str, Any], Path | None]] = []
    for event, capture in run.pending:
        slot = f"{dataset}/{run.source.id}/{event['kind']}"
        if event["kind"] in COALESCED and event["kind"] in run.known.written_today:
            counts[slot] = counts.get(slot, 0) + 1
            run.out.counted.append(event["kind"])
            continue
        if event["kind"] in COALESCED:
            event["checks_since_last"] = counts.pop(slot, 0)
            run.known.written_today.add(event["kind"])
        keep.append((event, capture))
    run.pending = []
    if keep:
        lists: set[str] = set()
        with ctx.write_lock():
            paths = []
            for event, capture in keep:
                if event.get("page"):
                    event["page"] = run.page_for_ledger(event["page"], lists)
                if capture is not None and capture.exists():
                    stored = _store_event_capture(run, event, capture)
                    if "omitted" in stored:
                        event["capture_omitted"] = stored["omitted"]
                        continue
                    event["capture"] = stored
                    paths.append(ctx.dataset_dir(dataset) / stored["file"])
            kinds = ", ".join(sorted({e["kind"] for e, _ in keep}))
            ctx.record_events(dataset, [e for e, _ in keep],
                              f"{dataset}: watch {run.source.id} ({kinds})", paths=paths)
        for digest in lists:
            run.known.link_lists[digest] = run.page_links
        run.out.events += [e for e, _ in keep]
    with contextlib.suppress(OSError):
        atomic_write(counts_file, json.dumps(counts).encode(), durable=False, mkdir=True)


def _store_event_capture(run: _Pass, event: dict[str, Any], capture: Path
                         ) -> dict[str, Any]:
    """An event's capture; the first one of the pass that concerns the page starts with
    the page's exchange (the page is kept once a pass, not once per link)."""
    page = run.page_capture
    first = (page is not None and not run.page_written and capture != page
             and event.get("page") is not None)
    joined = run.with_page(capture) if first else capture
    try:
        stored = _store_capture(run.ctx, run.dataset, joined)
    finally:
        if joined != capture:
            joined.unlink(missing_ok=True)
    if "omitted" not in stored and (first or capture == page):
        run.page_written = True
    return stored


def _store_capture(ctx: ArchiveContext, dataset: str, capture: Path) -> dict[str, Any]:
    """A capture into `datasets/<ds>/captures/<sha256>.warc.gz` (committed to git with
    its event: page captures are small, and content-addressed)."""
    size = capture.stat().st_size
    if size > MAX_GIT_CAPTURE:  # a whole workbook in a failed check: not into git
        return {"omitted": f"{size} bytes, over {MAX_GIT_CAPTURE >> 10} KiB"}
    digest = hashlib.sha256(capture.read_bytes()).hexdigest()
    rel = f"captures/{digest}.warc.gz"
    # a cloned archive may bring `captures` as a link: never write through it
    target = ensure_no_symlink(ctx.root, ctx.dataset_dir(dataset) / rel, "a capture")
    if not target.exists():
        target.parent.mkdir(exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        shutil.copyfile(capture, tmp)
        os.replace(tmp, target)
    return {"file": rel, "sha256": digest, "size": target.stat().st_size}
