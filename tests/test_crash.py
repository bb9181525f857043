"""Crash safety (DESIGN.md §11): kill -9 at any point of a commit leaves an archive that
`verify` passes and that holds the interrupted snapshot whole or not at all.

A pre-imported worker (tests/crash_worker.py) forks committers; each is killed either at
a named phase (it kills itself there) or after a random delay spread over a whole commit.
After each kill: verify passes (crash leftovers are only notes); then recovery (what the
next writer runs) leaves a clean archive where the in-flight release is all or nothing and
every release acknowledged before the kill is present.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from atdarchive import Archive
from atdarchive.verify import ERROR, verify

WORKER = Path(__file__).with_name("crash_worker.py")
sys.path.insert(0, str(WORKER.parent))
from crash_worker import PHASES, csv_bytes  # noqa: E402


class Zygote:
    """The worker process: forks committers on request, reports their death."""

    def __init__(self, stderr: Path) -> None:
        self._err = open(stderr, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen([sys.executable, str(WORKER)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self._err, env=os.environ)
        self._buf = b""
        assert self._line(60) == "ready"

    def _line(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError("crash worker did not answer")
            chunk = os.read(fd, 4096)
            if not chunk:
                raise RuntimeError("crash worker died")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line.decode()

    def spawn(self, root: Path, first: int, mode: str) -> int:
        self.proc.stdin.write(f"go {root} {first} {mode}\n".encode())
        self.proc.stdin.flush()
        kind, pid = self._line(30).split()
        assert kind == "pid"
        return int(pid)

    def reaped(self, pid: int, timeout: float = 60) -> int:
        kind, dead, status = self._line(timeout).split()
        assert (kind, int(dead)) == ("exit", pid)
        return int(status)

    def close(self) -> None:
        try:
            self.proc.stdin.write(b"quit\n")
            self.proc.stdin.flush()
            self.proc.wait(10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
        self._err.close()


@dataclass
class Run:
    root: Path
    next_input: int = 0
    kills: int = 0
    outcomes: dict[str, int] = field(default_factory=lambda: {"present": 0, "absent": 0,
                                                              "idle": 0})


def new_archive(base: Path, index: int) -> Run:
    work = base / f"arc{index}"
    (work / "inputs").mkdir(parents=True)
    archive = Archive.init(work / "archive")
    archive.add_dataset("ds")
    return Run(archive.root)


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True,
                          text=True).stdout


def progress(run: Run) -> tuple[dict[int, str], dict[int, str]]:
    started, done = {}, {}
    path = run.root.parent / "progress.log"
    for line in path.read_text().splitlines() if path.exists() else []:
        parts = line.split()
        if len(parts) == 3:
            (started if parts[0] == "start" else done)[int(parts[1])] = parts[2]
    return started, done


def check_after_kill(run: Run) -> None:
    """verify passes now; after recovery the archive is clean and the release all-or-nothing."""
    archive = Archive(run.root)
    found = verify(archive, fast=True)
    assert [p for p in found if p.severity == ERROR] == [], found
    with archive.write_lock():  # what the next writer does first
        pass
    archive = Archive(run.root)
    assert verify(archive, fast=True) == []
    started, done = progress(run)
    history = archive.history("ds")
    by_sha = {e.record["original"]["sha256"]: e for e in history.entries}
    assert len(by_sha) == len(history.entries)
    for n, snapshot_id in done.items():  # acknowledged releases are never lost
        assert history.by_id[snapshot_id].record["message"] == f"release {n}"
    last = max(started, default=None)
    inflight = [last] if last is not None and last not in done else []
    snaps = archive.store.snapshots_dir("ds")
    on_disk = {p.name for p in snaps.iterdir() if p.is_dir()} if snaps.exists() else set()
    pointers = {p.name[:-4] for p in snaps.glob("*.dvc")} if snaps.exists() else set()
    assert on_disk == pointers == set(history.by_id)  # nothing half-made anywhere
    assert git(run.root, "status", "--porcelain", "--untracked-files=all") == ""
    trailers = git(run.root, "log", "--format=%(trailers:key=atdarchive-snapshot,valueonly)")
    assert sorted(t for t in trailers.split() if t) == sorted(history.by_id)
    if not inflight:
        run.outcomes["idle"] += 1
        return
    entry = by_sha.get(started[inflight[0]])
    if entry is None:
        run.outcomes["absent"] += 1
        return
    run.outcomes["present"] += 1  # whole: readable, hashes match, committed to git
    snapshot = archive.snapshot(f"ds@{entry.id}")
    assert snapshot.original_path.read_bytes() == csv_bytes(inflight[0])
    assert snapshot.table().column("site").to_pylist()[0] == f"A{inflight[0]}"


def kill_loop(tmp_path: Path, random_kills: int, phase_rounds: int, rotate: int) -> dict:
    """Run phase kills and random-delay kills; returns counts for the report."""
    rng = random.Random(int(os.environ.get("ATDARCHIVE_CRASH_SEED", "20240611")))
    zygote = Zygote(tmp_path / "worker.err")
    runs = [new_archive(tmp_path, 0)]
    stats = {"phase_kills": 0, "random_kills": 0, "group_kills": 0, "pid_only_kills": 0}
    try:
        # calibrate: how long a freshly forked committer takes to its first commit
        run = runs[-1]
        firsts = []
        for _ in range(3):
            pid = zygote.spawn(run.root, run.next_input, "loop")
            t0 = time.monotonic()
            while run.next_input not in progress(run)[1]:
                time.sleep(0.005)
            firsts.append(time.monotonic() - t0)
            os.killpg(pid, signal.SIGKILL)
            zygote.reaped(pid)
            run.next_input = max(progress(run)[0]) + 1
            check_after_kill(run)
        first_commit = sorted(firsts)[1]
        stats["first_commit_seconds"] = round(first_commit, 3)

        schedule = [f"phase:{p}" for p in PHASES for _ in range(phase_rounds)]
        schedule += ["random"] * random_kills
        rng.shuffle(schedule)
        for mode in schedule:
            run = runs[-1]
            if run.kills >= rotate:
                runs.append(new_archive(tmp_path, len(runs)))
                run = runs[-1]
            if mode == "phase:recovering":
                _leave_a_crash(zygote, run)
            pid = zygote.spawn(run.root, run.next_input, "loop" if mode == "random" else mode)
            if mode == "random":
                time.sleep(rng.uniform(0, 1.6 * first_commit))
                if rng.random() < 0.8:  # the whole process group: git children die too
                    _kill(os.killpg, pid)
                    stats["group_kills"] += 1
                else:  # kill -9 of the writer only: its git child may finish on its own
                    _kill(os.kill, pid)
                    stats["pid_only_kills"] += 1
                stats["random_kills"] += 1
            else:
                stats["phase_kills"] += 1
            status = zygote.reaped(pid)
            assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, (
                mode, status, (tmp_path / "worker.err").read_text()[-3000:])
            run.kills += 1
            run.next_input = max(progress(run)[0], default=run.next_input) + 1
            check_after_kill(run)
    finally:
        zygote.close()
    for key in ("present", "absent", "idle"):
        stats[key] = sum(r.outcomes[key] for r in runs)
    stats["snapshots"] = sum(len(Archive(r.root).history("ds").entries) for r in runs)
    for r in runs:  # the slow checks once per archive: re-derive every table
        assert verify(Archive(r.root)) == []
    return stats


def _kill(how, pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        how(pid, signal.SIGKILL)


def _leave_a_crash(zygote: Zygote, run: Run) -> None:
    """Kill a committer after its ledger append, so the next one has something to recover."""
    pid = zygote.spawn(run.root, run.next_input, "phase:appended")
    zygote.reaped(pid)
    run.next_input = max(progress(run)[0], default=run.next_input) + 1
    run.kills += 1
    found = verify(Archive(run.root), fast=True)
    assert [p for p in found if p.severity == ERROR] == [], found


def test_kill_minus_nine_at_every_phase_and_random_times(tmp_path: Path) -> None:
    started = time.monotonic()
    stats = kill_loop(tmp_path, random_kills=200, phase_rounds=3, rotate=40)
    stats["seconds"] = round(time.monotonic() - started, 1)
    print("crash stats:", json.dumps(stats))
    assert stats["random_kills"] + stats["phase_kills"] >= 220
    # kills landed both before and after the commit point
    assert stats["present"] > 0 and stats["absent"] > 0


@pytest.mark.slow
def test_kill_minus_nine_long_run(tmp_path: Path) -> None:
    stats = kill_loop(tmp_path, random_kills=1500, phase_rounds=20, rotate=150)
    print("crash stats:", json.dumps(stats))
    assert stats["present"] > 0 and stats["absent"] > 0
