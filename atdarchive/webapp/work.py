"""Where the web app's work runs and what it keeps: a bounded pool of worker threads
with a clock on each request, and a cache bounded by (approximate) bytes in which the
same expensive computation runs once however many requests ask for it.

Why threads with a clock rather than one lock: a slow diff must not hold up the
stylesheet, the datasets list or a release page. Python cannot stop a thread, so a
request that runs out of time is answered 503 while its computation finishes in the
background (its result is cached for the retry); the pool's admission count includes
such abandoned work, so it cannot pile up — when every slot is taken the answer is an
immediate 503 "busy".
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import sys
import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pyarrow as pa


class Busy(Exception):  # noqa: N818 - answered 503, not a bug
    """Every worker slot is taken (running or waiting, abandoned work included)."""


class TimedOut(Exception):  # noqa: N818 - answered 503, not a bug
    """The request's computation did not finish within its time."""


class Workers:
    """A fixed pool of threads; at most `pending` jobs admitted (queued, running, or
    running for a request that gave up on them)."""

    def __init__(self, workers: int, pending: int) -> None:
        self.size = max(1, int(workers))
        self.pending = max(self.size, int(pending))
        self._executor = ThreadPoolExecutor(max_workers=self.size,
                                            thread_name_prefix="atdarchive-serve")
        self._lock = threading.Lock()
        self._admitted = 0

    @property
    def admitted(self) -> int:
        return self._admitted

    def _release(self, _: Future[Any]) -> None:
        with self._lock:
            self._admitted -= 1

    async def run(self, seconds: float, fn: Callable[..., Any], *args: Any) -> Any:
        """FN(*ARGS) on a worker; `Busy` when no slot is free, `TimedOut` after SECONDS
        (the job still runs to its end, holding its slot, so a retry finds its result
        cached; Python cannot stop a thread)."""
        with self._lock:
            if self._admitted >= self.pending:
                raise Busy(self._admitted)
            self._admitted += 1
        try:
            future = self._executor.submit(fn, *args)
        except BaseException:
            with self._lock:
                self._admitted -= 1
            raise
        future.add_done_callback(self._release)
        try:
            return await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)),
                                          seconds)
        except TimeoutError:
            raise TimedOut(seconds) from None


def approx_bytes(obj: Any) -> int:
    """Roughly what OBJ holds in memory: Arrow buffers by their size, containers and
    dataclasses walked (each object once), anything else by `sys.getsizeof`."""
    total = 0
    seen: set[int] = set()
    stack = [obj]
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, pa.Table | pa.RecordBatch | pa.Array | pa.ChunkedArray):
            total += item.nbytes
            continue
        total += sys.getsizeof(item)
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            stack.extend(item)
        elif dataclasses.is_dataclass(item) and not isinstance(item, type):
            stack.extend(getattr(item, f.name) for f in dataclasses.fields(item))
    return total


@dataclasses.dataclass
class _Flight:
    """One computation in progress, shared by every request that asks for it meanwhile."""

    what: str
    started: float = dataclasses.field(default_factory=time.monotonic)
    done: threading.Event = dataclasses.field(default_factory=threading.Event)
    value: Any = None
    error: BaseException | None = None


class ResultCache:
    """Results of expensive computations, least recently used dropped first once their
    approximate bytes pass `limit`; a result bigger than `limit` on its own is returned
    but not kept. `get` computes a missing key once however many threads ask for it
    (single flight), holding the lock of its `group` (a dataset) meanwhile: the
    library's derived caches are written per process, not per thread."""

    def __init__(self, limit: int) -> None:
        self.limit = int(limit)
        self.bytes = 0
        self.skipped = 0  # results too big to keep
        self._items: collections.OrderedDict[Hashable, tuple[Any, int]] = \
            collections.OrderedDict()
        self._flights: dict[Hashable, _Flight] = {}
        self._groups: dict[Hashable, threading.Lock] = {}
        self._lock = threading.Lock()

    def get(self, group: Hashable, key: Hashable, compute: Callable[[], Any],
            what: str = "") -> tuple[Any, str]:
        """(value, how): `hit`, `miss` (computed and kept), `skip` (computed, too big to
        keep) or `shared` (computed by another request meanwhile)."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key][0], "hit"
            flight = self._flights.get(key)
            leader = flight is None
            if leader:
                flight = self._flights[key] = _Flight(what or repr(key))
            group_lock = self._groups.setdefault(group, threading.Lock())
        if not leader:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            return flight.value, "shared"
        how = "miss"
        try:
            with group_lock:
                flight.value = compute()
            how = self._keep(key, flight.value)
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with self._lock:
                del self._flights[key]
            flight.done.set()
        return flight.value, how

    def _keep(self, key: Hashable, value: Any) -> str:
        size = approx_bytes(value)
        with self._lock:
            if size > self.limit:
                self.skipped += 1
                return "skip"
            old = self._items.pop(key, None)
            if old is not None:
                self.bytes -= old[1]
            self._items[key] = (value, size)
            self.bytes += size
            while self.bytes > self.limit:
                _, (_, dropped) = self._items.popitem(last=False)
                self.bytes -= dropped
        return "miss"

    def stats(self) -> dict[str, Any]:
        """What the cache holds and what is being computed (the `/server` page)."""
        now = time.monotonic()
        with self._lock:
            return {"bytes": self.bytes, "limit_bytes": self.limit,
                    "entries": len(self._items), "too_big_to_keep": self.skipped,
                    "computing": [{"what": f.what, "seconds": round(now - f.started, 3)}
                                  for f in self._flights.values()]}
