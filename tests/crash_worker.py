"""Crash-test worker: a pre-imported "zygote" that forks committers for the test to kill.

Importing pyarrow, DVC and atdarchive costs ~1 s; a fork costs milliseconds, so
hundreds of kills fit in CI time. Protocol (one line each way, on stdin/stdout):

    parent -> zygote:  go ROOT FIRST MODE      (MODE: "loop" or "phase:<name>")
    zygote -> parent:  pid PID                 (the committer, leader of its own group)
    zygote -> parent:  exit PID STATUS         (when the committer has died)

The committer commits tiny CSVs `FIRST, FIRST+1, ...` in a loop, logging
`start N SHA256` before and `done N ID` after each commit to ROOT/../progress.log.
With `phase:<name>` it kills itself (SIGKILL) at that point of its first commit.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import sys
from pathlib import Path

PHASES = (
    "staged",          # staging written, before the rename into snapshots/
    "published",       # renamed into place, before `dvc add`
    "tracked",         # `dvc add` done (pointer, .gitignore), before the ledger line
    "torn",            # half a ledger line written (a torn append)
    "appended",        # ledger line written (commit point), before git
    "git_added",       # `git add` done, before `git commit`
    "committed",       # git commit done, before derived indexes
    "recovering",      # inside recovery of an earlier crash, after its first repair step
)


def csv_bytes(n: int) -> bytes:
    return f"site,count,note\nA{n},{n},first\nB{n},{n * 7 % 13},second\n".encode()


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _install(phase: str) -> None:
    """Monkeypatch the commit path so the process kills itself at `phase`."""
    from atdarchive import gitops, ledger, recovery, store

    if phase in ("staged", "published", "tracked"):
        real_publish, real_track = store.SnapshotStore.publish, store.SnapshotStore.track

        def publish(self, *args, **kwargs):
            if phase == "staged":
                _die()
            out = real_publish(self, *args, **kwargs)
            if phase == "published":
                _die()
            return out

        def track(self, *args, **kwargs):
            out = real_track(self, *args, **kwargs)
            _die()
            return out

        store.SnapshotStore.publish = publish
        if phase == "tracked":
            store.SnapshotStore.track = track
    elif phase in ("torn", "appended"):
        real_append = ledger.Ledger.append

        def append(self, event):
            if phase == "torn":
                from atdarchive.util import canonical_json

                lines = self._lines()
                event = {**event, "prev": hashlib.sha256(lines[-1]).hexdigest()
                         if lines else ledger.GENESIS, "seq": len(lines) + 1}
                line = canonical_json(event).encode() + b"\n"
                with open(self.path, "ab") as fh:
                    fh.write(line[: len(line) // 2])
                _die()
            out = real_append(self, event)
            _die()
            return out

        ledger.Ledger.append = append
    elif phase in ("git_added", "committed"):
        real_commit = gitops.commit

        def commit(root, paths, message):
            if phase == "git_added":
                rel = [str(p.relative_to(root)) if p.is_absolute() else str(p) for p in paths]
                gitops.git(root, "add", "-f", "--", *rel)
                _die()
            out = real_commit(root, paths, message)
            if ": snapshot " in message:
                _die()
            return out

        gitops.commit = commit
    elif phase == "recovering":
        real_recover = recovery._recover_dataset

        def recover_dataset(*args):
            out = real_recover(*args)
            if out:
                _die()
            return out

        recovery._recover_dataset = recover_dataset
    else:
        raise SystemExit(f"unknown phase {phase}")


def committer(root: Path, first: int, mode: str) -> None:
    from atdarchive import Archive

    if mode.startswith("phase:"):
        _install(mode.split(":", 1)[1])
    archive = Archive(root)
    inputs = root.parent / "inputs"
    log = open(root.parent / "progress.log", "a", buffering=1)  # noqa: SIM115
    n = first
    while True:
        data = csv_bytes(n)
        path = inputs / f"c{n}.csv"
        path.write_bytes(data)
        log.write(f"start {n} {hashlib.sha256(data).hexdigest()}\n")
        result = archive.commit("ds", path, published=f"2020-01-01T00:00:{n % 60:02d}",
                                message=f"release {n}")
        log.write(f"done {n} {result.snapshot.id}\n")
        if mode != "loop":
            raise SystemExit(f"phase {mode} was never reached")
        n += 1


def _warm_up() -> None:
    """One real commit in a throwaway archive: DVC imports lazily, forks then start warm."""
    import shutil
    import tempfile

    from atdarchive import Archive

    scratch = Path(tempfile.mkdtemp(prefix="atd-warm-"))
    try:
        archive = Archive.init(scratch / "archive")
        archive.add_dataset("ds")
        (scratch / "w.csv").write_bytes(csv_bytes(0))
        archive.commit("ds", scratch / "w.csv", published="2020-01-01")
        archive.snapshot("ds@latest").table()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def zygote() -> None:
    import pyarrow  # noqa: F401
    import pyarrow.csv  # noqa: F401
    import pyarrow.parquet  # noqa: F401
    from dvc.repo import Repo  # noqa: F401

    import atdarchive.archive  # noqa: F401
    import atdarchive.changes  # noqa: F401
    import atdarchive.ingest  # noqa: F401
    import atdarchive.recovery  # noqa: F401

    _warm_up()
    print("ready", flush=True)
    for line in sys.stdin:
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "quit":
            return
        _, root, first, mode = parts
        pid = os.fork()
        if pid == 0:
            os.setpgid(0, 0)  # its own process group, so the test can kill it with its git
            try:
                committer(Path(root), int(first), mode)
            finally:
                os._exit(1)
        with contextlib.suppress(OSError):  # the child may have done it already, or died
            os.setpgid(pid, pid)  # both sides set it: no window where killpg(pid) misses
        print(f"pid {pid}", flush=True)
        _, status = os.waitpid(pid, 0)
        print(f"exit {pid} {status}", flush=True)


if __name__ == "__main__":
    zygote()
