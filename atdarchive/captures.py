"""WARC captures: what `watch` fetched, in the web-archiving standard (ISO 28500).

A snapshot that watch committed holds the exchange that fetched it as
`evidence/capture.warc.gz` (tracked by DVC with the snapshot); a `watch` event
holds its capture in `datasets/<ds>/captures/<sha256>.warc.gz` (content-addressed,
committed to git with the event). `export_warc` concatenates them in ledger order —
gzipped WARC records concatenate into a valid WARC file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from atdarchive.context import ArchiveContext
from atdarchive.errors import AtdError, IntegrityError
from atdarchive.events import CAPTURE_RE
from atdarchive.paths import ensure_no_symlink, open_nofollow
from atdarchive.util import sha256_bytes


def capture_files(ctx: ArchiveContext, dataset: str) -> Iterator[tuple[str, bytes]]:
    """(what it is, WARC bytes) of every capture of DATASET that is here, ledger order;
    each checked against the digest its record or event names."""
    history = ctx.history(dataset, include_retracted=True)
    events = sorted([(e.seq, "snapshot", e.record) for e in history.entries]
                    + [(w["seq"], "watch", w) for w in history.watch_events],
                    key=lambda item: item[0])
    for _, kind, item in events:
        if kind == "snapshot":
            rel = item.get("capture")
            if not rel:
                continue
            try:
                path = ctx.store.verified_path(dataset, item["id"], rel,
                                               item["files"][rel]["sha256"])  # hash-checked
            except IntegrityError:
                if ctx.store.locate(dataset, item["id"], rel) is None:
                    continue  # not pulled into this copy
                raise
            yield f"{dataset}@{item['id'][:10]}", path.read_bytes()
        elif item.get("capture"):
            capture = item["capture"]
            match = CAPTURE_RE.fullmatch(capture["file"])
            if match is None:
                continue
            path = ensure_no_symlink(ctx.root, ctx.dataset_dir(dataset) / capture["file"],
                                     "a capture")
            try:
                fd = open_nofollow(path, os.O_RDONLY)  # a cloned archive brings no links
            except FileNotFoundError:
                continue
            with os.fdopen(fd, "rb") as fh:
                data = fh.read()
            if sha256_bytes(data) != match.group(1):
                raise IntegrityError(f"{path}: sha256 does not match its name (edited?)")
            yield f"{dataset} watch {item['kind']} {item['at']}", data


def export_warc(ctx: ArchiveContext, dataset: str, out: Path, *, force: bool = False) -> Path:
    if (out.exists() or out.is_symlink()) and not force:
        raise AtdError(f"{out}: already exists; use --force to overwrite it")
    if not out.name.endswith(".warc.gz"):
        raise AtdError(f"{out}: a WARC export is written as .warc.gz")
    partial = out.with_name(f".{out.name}.{os.getpid()}.partial")
    count = 0
    try:
        with open(partial, "wb") as fh:
            for _, data in capture_files(ctx, dataset):
                fh.write(data)
                count += 1
        if count == 0:
            raise AtdError(f"{dataset}: no WARC captures here (watch makes them)")
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    return out
