"""Fetch a publication by URL, keep the HTTP evidence, archive it only if it is new.

Every fetch leaves a trace: new bytes become a snapshot whose record carries
the HTTP evidence; bytes equal to an archived snapshot become a `check` event
in the ledger ("re-checked, unchanged"), so the log shows the archive looked.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from atdarchive.commit import CommitResult, commit
from atdarchive.context import ArchiveContext
from atdarchive.errors import AtdError
from atdarchive.util import utc_now

MAX_BYTES = 2 << 30  # refuse downloads over 2 GiB: no agency spreadsheet is that large
CHUNK = 1 << 20
SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class FetchResult:
    url: str
    evidence: dict[str, Any]
    commit: CommitResult | None = None
    unchanged_id: str | None = None


def download(url: str, directory: Path, timeout: float = 60.0) -> tuple[Path, dict[str, Any]]:
    """GET `url` into `directory`; returns the file and the HTTP evidence."""
    if urllib.parse.urlparse(url).scheme not in ("http", "https"):
        raise AtdError(f"{url}: only http:// and https:// URLs can be fetched")
    request = urllib.request.Request(url, headers={"User-Agent": "atdarchive/0.1"})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 (checked above)
    except urllib.error.HTTPError as exc:
        raise AtdError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise AtdError(f"{url}: cannot fetch ({reason})") from None
    with response:
        headers = response.headers
        name = _file_name(response.url, headers.get("Content-Disposition"))
        target = directory / name
        digest = hashlib.sha256()
        size = 0
        with open(target, "wb") as out:
            while chunk := response.read(CHUNK):
                size += len(chunk)
                if size > MAX_BYTES:
                    raise AtdError(f"{url}: larger than {MAX_BYTES >> 30} GiB; refused")
                digest.update(chunk)
                out.write(chunk)
        evidence = {
            "requested_url": url, "final_url": response.url, "status": response.status,
            "etag": headers.get("ETag"), "last_modified": headers.get("Last-Modified"),
            "content_type": headers.get("Content-Type"),
            "content_length": headers.get("Content-Length"),
            "fetched_at": utc_now(), "sha256": digest.hexdigest(), "size": size,
        }
    return target, {k: v for k, v in evidence.items() if v is not None}


def fetch(archive: ArchiveContext, dataset: str, url: str, *, published: str | None = None,
          period: str | None = None, channel: str = "public", archivist: str | None = None,
          message: str = "", timeout: float = 60.0) -> FetchResult:
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
