"""One writer at a time: an advisory lock on `.atdarchive/lock`.

The kernel drops a `flock` when its holder dies (even under kill -9), so a
lock can never be left held by a crashed writer. The holder writes its pid
into the file; a file still naming a dead pid means the last writer crashed,
which the caller reports before it recovers the archive.

`ATDARCHIVE_LOCK_TIMEOUT` (seconds) overrides how long a writer waits for another.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from atdarchive.errors import AtdError


class LockState:
    """What the lock file said when we took it: the crashed writer's pid, if any."""

    def __init__(self, stale_pid: int | None) -> None:
        self.stale_pid = stale_pid


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (ours or another user's)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def exclusive(lock_path: Path, timeout: float | None = None,
              on_wait: Callable[[str], None] | None = None) -> Iterator[LockState]:
    """Hold the archive's write lock; waits for a live writer up to `timeout` seconds.

    `on_wait(message)` is called once if another writer holds the lock.
    """
    if timeout is None:
        timeout = float(os.environ.get("ATDARCHIVE_LOCK_TIMEOUT") or 600.0)
    if lock_path.parent.is_symlink():
        raise AtdError(f"{lock_path.parent}: is a symbolic link; an archive must not bring "
                       "links — refused; remove the link")
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as exc:
        if lock_path.is_symlink():
            raise AtdError(f"{lock_path}: is a symbolic link; an archive must not bring links "
                           "— refused; remove the link") from None
        if isinstance(exc, PermissionError) or exc.errno == 30:  # EACCES, EROFS
            raise AtdError(f"{lock_path.parent.parent}: the archive is read-only here; "
                           "commands that write need a writable copy") from None
        raise
    try:
        deadline = time.monotonic() + timeout
        waited = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip()
                if on_wait is not None and not waited:
                    on_wait(f"waiting for another atdarchive writer (pid {holder or '?'}) "
                            "to finish")
                waited = True
                if time.monotonic() > deadline:
                    raise AtdError(
                        f"{lock_path}: another atdarchive writer (pid {holder or '?'}) "
                        f"holds the archive lock; gave up after {timeout:.0f}s"
                    ) from None
                time.sleep(0.05)
        previous = os.pread(fd, 64, 0).decode(errors="replace").strip()
        stale = int(previous) if previous.isdigit() and int(previous) != os.getpid() else None
        if stale is not None and pid_alive(stale):
            stale = None  # a live process that released cleanly but left its pid: not a crash
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        try:
            yield LockState(stale)
        finally:
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # closing releases the flock
