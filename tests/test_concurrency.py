"""Concurrent writers (DESIGN.md §11): serialised by one lock, nothing lost or interleaved."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from atdarchive import Archive
from atdarchive.locking import exclusive
from atdarchive.verify import verify

CLI = "import sys; from atdarchive.cli import main; main(sys.argv[1:])"
WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from atdarchive import Archive

    root, writer, count, inputs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
    archive = Archive(root)
    for i in range(count):
        path = inputs / f"w{writer}_{i}.csv"
        path.write_text(f"writer,release,value\\n{writer},{i},{writer * 1000 + i}\\n")
        result = archive.commit("ds", path, published=f"2021-{writer + 1:02d}-{i + 1:02d}",
                                channel=f"w{writer}", message=f"writer {writer} release {i}")
        if i % 10 == 0:
            archive.tag(f"ds@{result.snapshot.id}", f"w{writer}-r{i}")
        print(result.snapshot.id, flush=True)
""")


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True,
                          text=True).stdout


def test_four_writers_all_commits_land_in_order(archive: Archive, tmp_path: Path) -> None:
    writers, count = 4, 25
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(archive.root), str(w),
                               str(count), str(inputs)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for w in range(writers)]
    reported = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        reported += out.split()
    assert len(reported) == len(set(reported)) == writers * count

    fresh = Archive(archive.root)
    ledger = fresh.ledger("ds")
    assert ledger.verify_chain() == []
    events = ledger.events()
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    snapshots = [e["record"] for e in events if e["type"] == "snapshot"]
    assert sorted(r["id"] for r in snapshots) == sorted(reported)
    for w in range(writers):  # each writer's releases land in its own order, none missing
        mine = [r["message"] for r in snapshots if r["channel"] == f"w{w}"]
        assert mine == [f"writer {w} release {i}" for i in range(count)]
    assert len([e for e in events if e["type"] == "tag"]) == writers * 3
    subjects = git(archive.root, "log", "--format=%s").splitlines()
    assert len([s for s in subjects if ": snapshot " in s]) == writers * count
    trailers = git(archive.root, "log", "--format=%(trailers:key=atdarchive-snapshot,valueonly)")
    assert sorted(t for t in trailers.split() if t) == sorted(reported)
    assert git(archive.root, "status", "--porcelain", "--untracked-files=all") == ""
    assert verify(fresh, fast=True) == []


def test_waiting_writer_gives_up_with_a_clear_message(archive: Archive, tmp_path: Path,
                                                      cli) -> None:
    from conftest import write_csv

    path = write_csv(tmp_path / "a.csv", [{"a": 1}])
    env = {**os.environ, "ATDARCHIVE_LOCK_TIMEOUT": "1"}
    with exclusive(archive.root / ".atdarchive" / "lock"):
        result = subprocess.run([sys.executable, "-c", CLI, "-C", str(archive.root),
                                 "commit", "ds", str(path)], capture_output=True, text=True,
                                env=env, timeout=60)
    assert result.returncode == 2
    assert f"another atdarchive writer (pid {os.getpid()}) holds the archive lock; " \
           "gave up after 1s" in result.stderr
    assert Archive(archive.root).history("ds").entries == []


def test_stale_lock_of_a_killed_writer_is_reported_and_recovered(archive: Archive,
                                                                 tmp_path: Path, cli) -> None:
    """A writer killed after its ledger line: the next one says so and finishes its commit."""
    from conftest import write_csv

    worker = Path(__file__).with_name("crash_worker.py")
    (tmp_path / "inputs").mkdir()
    os.symlink(archive.root, tmp_path / "archive")
    script = textwrap.dedent(f"""
        import sys; sys.path.insert(0, {str(worker.parent)!r})
        import crash_worker
        from pathlib import Path
        crash_worker.committer(Path({str(tmp_path / 'archive')!r}), 1, "phase:appended")
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == -9, proc.stderr
    lock_text = (archive.root / ".atdarchive" / "lock").read_text()
    assert lock_text.isdigit()  # the dead writer's pid is still in the lock file
    result = cli("-C", archive.root, "commit", "ds", write_csv(tmp_path / "b.csv", [{"a": 2}]),
                 "--published", "2024-03-01")
    assert result.code == 0, result.err
    assert f"note: found a stale lock of writer pid {lock_text} (it died)" in result.err
    assert "committed to git what an interrupted commit had recorded" in result.err
    fresh = Archive(archive.root)
    assert len(fresh.history("ds").entries) == 2
    assert verify(fresh) == []
    assert json.loads(cli("-C", archive.root, "verify", "--json").out)["ok"] is True
