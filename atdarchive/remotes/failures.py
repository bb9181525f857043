"""One line that says why a transfer failed, out of DVC's and botocore's exception chains."""

from __future__ import annotations

import errno
import logging
from collections.abc import Sequence


def explain(exc: BaseException, records: Sequence[logging.LogRecord] = ()) -> str:
    """The most telling one-line cause of a DVC or botocore failure.

    `records` are what DVC logged meanwhile (its exceptions often travel only there).
    """
    causes: list[BaseException] = []
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    todo += [r.exc_info[1] for r in records if r.exc_info]
    while todo:
        item = todo.pop(0)
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        causes.append(item)
        todo += [item.__cause__, item.__context__]
    for cause in causes:  # a local directory's own problem says most
        if isinstance(cause, OSError) and cause.errno in (errno.EROFS, errno.EACCES, errno.EPERM,
                                                          errno.ENOSPC) and cause.filename:
            return (f"the remote directory is not writable here: {cause.filename}: "
                    f"{cause.strerror}" if cause.errno != errno.ENOSPC
                    else f"no space left on the remote: {cause.filename}")
    for cause in causes:  # credentials and connection problems say most
        name = type(cause).__name__
        text = str(cause)
        if "Credentials" in name or "InvalidAccessKeyId" in text or "SignatureDoesNotMatch" \
                in text:
            return f"credentials refused or missing ({one_line(text)})"
        if "Connect" in name or "connect" in text.lower():
            return f"cannot connect ({one_line(text)})"
        if isinstance(cause, PermissionError) or any(
                word in text for word in ("Forbidden", "AccessDenied", "Access Denied")):
            return ("access denied: credentials refused or lacking permission "
                    f"({one_line(text)})")
    for cause in causes:
        if type(cause).__module__.startswith(("botocore", "aiobotocore", "aiohttp")) or \
                isinstance(cause, FileNotFoundError):
            return one_line(str(cause))
    detail = "; ".join(one_line(m) for m in [r.getMessage() for r in records][-2:] if m)
    return one_line(str(exc)) + (f" ({detail})" if detail else "")


def one_line(text: str) -> str:
    return " ".join(text.split())[:300]
