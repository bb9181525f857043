"""Small shared helpers: canonical JSON, hashing, names, dates, atomic file writes."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import math
import os
import re
import threading
from pathlib import Path
from typing import Any

from atdarchive.errors import AtdError

HASH_CHUNK = 1 << 20
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
MAX_NAME = {"table": 200}  # tables carry long slugged titles; files stay under 255 bytes


def canonical_json(obj: Any) -> str:
    """One spelling per value, so that hashes of records are reproducible."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    return _file_digest(path, hashlib.sha256())


def md5_file(path: Path) -> str:
    """DVC's content address of a file (not a security hash)."""
    return _file_digest(path, hashlib.md5())  # noqa: S324


def _file_digest(path: Path, digest: Any) -> str:
    with open(path, "rb") as fh:
        while chunk := fh.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def check_name(kind: str, name: str) -> str:
    """Dataset, tag and channel names become paths and refs: keep them plain."""
    limit = MAX_NAME.get(kind, 100)
    if not NAME_RE.match(name) or ".." in name or len(name) > limit:
        raise AtdError(
            f"invalid {kind} name {name!r}: use letters, digits, '.', '_' or '-' "
            f"(no slashes, no '..', at most {limit} characters)"
        )
    return name


def published_day(published: str, zone: str | None = None) -> dt.date:
    """The calendar day of a stored publication time (in ZONE, its record's)."""
    from atdarchive.instants import stored

    return stored(published, zone).day


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def atomic_write(path: Path, data: bytes | str, *, durable: bool = True,
                 mkdir: bool = False) -> None:
    """Write via a temporary file and rename, so readers never see half a file.

    `durable` fsyncs before the rename (records, configs); caches skip it.
    `mkdir` creates the parent directory first.
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    if mkdir:
        path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def number(value: float | int, sign: bool = False) -> str:
    """A number as the data writes it: whole values as integers with thousands
    separators (21,129; -60,980), others to two decimals (four significant digits
    when smaller), never an exponent."""
    if isinstance(value, bool) or value != value or value in (float("inf"), float("-inf")):
        return str(value)
    plus = "+" if sign else ""
    if float(value).is_integer():
        return f"{int(value):{plus},}"
    digits = max(2, 3 - int(math.floor(math.log10(abs(value))))) if value else 0
    text = f"{value:{plus},.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text
