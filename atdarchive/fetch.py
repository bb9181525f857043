"""Fetch a publication by URL, keep the HTTP evidence, archive it only if it is new.

Every fetch leaves a trace: new bytes become a snapshot whose record carries
the HTTP evidence; bytes equal to an archived snapshot become a `check` event
in the ledger ("re-checked, unchanged"), so the log shows the archive looked.
"""

from __future__ import annotations

import os
import re
import tempfile
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from atdarchive.commit import CommitResult, commit
from atdarchive.context import ArchiveContext
from atdarchive.errors import AtdError

SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class FetchResult:
    url: str
    evidence: dict[str, Any]
    commit: CommitResult | None = None
    unchanged_id: str | None = None


def download(url: str, directory: Path, timeout: float | None = None
             ) -> tuple[Path, dict[str, Any]]:
    """GET `url` into `directory` with watch's client and rules (`atdarchive.web`: only
    http/https, checked redirects and addresses, bounded bodies, deadlines, a body cut
    short is a failure); the whole of it within `net.fetch_deadline`. Returns the file
    and the HTTP evidence."""
    from atdarchive.web import Client, Deadline

    if urllib.parse.urlsplit(url).scheme.lower() not in ("http", "https"):
        raise AtdError(f"{url}: only http:// and https:// URLs can be fetched")
    deadline = Deadline.start("net.fetch_deadline", "the fetch's time")
    client = Client(timeout=timeout, retries=2, delay=0.0, deadline=deadline, home=url)
    response = client.get(url, directory)
    if response.status != 200:
        response.discard()
        raise AtdError(f"{url}: HTTP {response.status} {response.reason}".rstrip())
    assert response.body is not None
    name = _file_name(response.final_url, response.headers.get("content-disposition"))
    target = directory / "files" / name
    target.parent.mkdir(exist_ok=True)
    os.replace(response.body, target)
    return target, response.evidence()


def fetch(archive: ArchiveContext, dataset: str, url: str, *, published: str | None = None,
          period: str | None = None, channel: str = "public", archivist: str | None = None,
          message: str = "", timeout: float | None = None) -> FetchResult:
    """Download and archive `url` unless its bytes are already a snapshot of `dataset`."""
    archive.dataset(dataset)
    # outside the archive: recovery clears the archive's staging when commit takes the lock
    with tempfile.TemporaryDirectory(prefix="atdarchive-fetch-") as tmp:
        path, evidence = download(url, Path(tmp), timeout)
        same = archive.history(dataset).find_identical(evidence["sha256"])
        if same:
            _record_check(archive, dataset, evidence, same[-1].id)
            return FetchResult(url, evidence, unchanged_id=same[-1].id)
        result = commit(
            archive, dataset, path, published=published,
            period=period,
            source_url=evidence["final_url"], retrieved_at=evidence["fetched_at"],
            channel=channel, archivist=archivist, message=message, evidence=evidence,
        )
        return FetchResult(url, evidence, commit=result)


def _record_check(archive: ArchiveContext, dataset: str, evidence: dict[str, Any],
                  snapshot_id: str) -> None:
    with archive.write_lock():
        archive.record_events(
            dataset, [{"type": "check", "snapshot": snapshot_id, "unchanged": True,
                       "fetch": evidence}],
            f"{dataset}: re-checked {evidence['final_url']}, unchanged (= {snapshot_id[:10]})")


def _file_name(url: str, disposition: str | None) -> str:
    name = ""
    if disposition:
        match = re.search(r'filename\*?=(?:UTF-8\'\')?"?([^";]+)"?', disposition)
        if match:
            name = urllib.parse.unquote(match.group(1))
    if not name:
        name = urllib.parse.unquote(Path(urllib.parse.urlparse(url).path).name)
    name = SAFE_NAME.sub("_", Path(name).name).strip("._")
    return name[:120] or "download"
