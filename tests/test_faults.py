"""Faults from the machine, not the data: a full disk, a read-only archive, Ctrl-C, an
unwritable cache or remote. Each is one clear line, and the archive stays consistent.

Root ignores file modes, so read-only and full disks are made real: a read-only bind
mount or a small tmpfs inside a private mount namespace (`unshare -m`), which the
kernel tears down with the process — no mount outlives a failing test.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import write_csv

from atdarchive import Archive
from atdarchive.verify import verify

EXE = str(Path(sys.executable).with_name("atdarchive"))
NAMESPACES = os.geteuid() == 0 and shutil.which("unshare") is not None
needs_namespaces = pytest.mark.skipif(
    not NAMESPACES, reason="needs root and unshare(1) for private mounts (CI runs as root)")

DRIVER = textwrap.dedent("""
    import json, os, subprocess, sys
    spec = json.loads(sys.argv[1])
    for command in spec["setup"]:
        subprocess.run(command, shell=True, check=True)
    out = []
    for step in spec["steps"]:
        if isinstance(step, str):
            subprocess.run(step, shell=True, check=True)
            continue
        done = subprocess.run(step, capture_output=True, text=True, env=spec.get("env"))
        out.append({"args": step, "code": done.returncode, "out": done.stdout,
                    "err": done.stderr})
    print(json.dumps(out))
""")


def in_namespace(setup: list[str], steps: list, env: dict | None = None) -> list[dict]:
    """Run shell SETUP (mounts) then STEPS (argv lists, or shell strings) in a private mount
    namespace; returns each argv step's exit code and output."""
    spec = json.dumps({"setup": setup, "steps": steps, "env": env or dict(os.environ)})
    done = subprocess.run(["unshare", "-m", "--propagation", "private", sys.executable, "-c",
                           DRIVER, spec], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def assert_one_line(result: dict) -> None:
    assert "Traceback" not in result["err"], result["err"]
    lines = [line for line in result["err"].splitlines() if line.startswith("error:")]
    assert len(lines) <= 1, result["err"]


@pytest.fixture
def two_releases(archive: Archive, tmp_path: Path) -> Archive:
    archive.commit("ds", write_csv(tmp_path / "a.csv", [{"k": i, "v": i} for i in range(50)]),
                   published="2024-01-01")
    archive.commit("ds", write_csv(tmp_path / "b.csv", [{"k": i, "v": i + (i == 7)}
                                                        for i in range(50)]),
                   published="2024-02-01")
    return archive


# -- a read-only archive (a mounted published copy) --------------------------------------
@needs_namespaces
def test_read_commands_work_on_a_read_only_archive(two_releases: Archive, tmp_path: Path):
    root = str(two_releases.root)
    cache = tmp_path / "user-cache"
    env = {**os.environ, "XDG_CACHE_HOME": str(cache), "COLUMNS": "100"}
    reads = [[EXE, "-C", root, *args] for args in (
        ("log", "ds"), ("show", "ds@latest"), ("diff", "ds@latest"),
        ("blame", "ds@latest"), ("history", "ds", "--table", "data", "--row", "k=7"),
        ("audit", "ds"),
        ("verify", "ds"), ("export", "ds@latest", "-o", str(tmp_path / "out.csv")))]
    writes = [[EXE, "-C", root, *args] for args in (
        ("tag", "ds@latest", "v1"),
        ("commit", "ds", str(write_csv(tmp_path / "c.csv", [{"k": 1, "v": 1}])),
         "--published", "2024-03-01"))]
    results = in_namespace([f"mount --bind {root} {root}", f"mount -o remount,bind,ro {root}"],
                           reads + writes, env)
    for result in results[:len(reads)]:
        assert result["code"] == 0, result
        assert_one_line(result)
    for result in results[len(reads):]:
        assert result["code"] == 2, result
        assert_one_line(result)
        assert "read-only" in result["err"]
    assert (tmp_path / "out.csv").exists()
    assert any(cache.rglob("*")), "derived state went to the user cache"
    assert verify(Archive(root)) == []


# -- a full disk -------------------------------------------------------------------------
@needs_namespaces
def test_a_full_disk_never_half_archives(two_releases: Archive, tmp_path: Path):
    """At every level of free space a commit either lands (exit 0) or leaves nothing
    (one line, ledger unchanged); afterwards the archive verifies."""
    src = str(two_releases.root)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    work = mnt / "arc"
    new = write_csv(tmp_path / "new.csv", [{"k": i, "v": i * 3} for i in range(2000)])
    levels = [0, 4096, 32768, 131072, 262144, 524288, 1 << 20, 4 << 20]
    steps: list = []
    for free in levels:
        steps += [f"rm -rf {work} {mnt}/fill && cp -a {src} {work}",
                  f"python3 -c \"import os; s=os.statvfs('{mnt}'); "
                  f"n=max(s.f_bavail*s.f_frsize-{free},0); "
                  f"f=open('{mnt}/fill','wb'); f.truncate(0); os.posix_fallocate(f.fileno(),0,n) "
                  f"if n else None\"",
                  [EXE, "-C", str(work), "commit", "ds", str(new), "--published", "2024-03-01"],
                  f"rm -f {mnt}/fill",
                  [EXE, "-C", str(work), "log", "ds", "--json"],
                  [EXE, "-C", str(work), "verify", "ds", "--json"]]
    results = in_namespace([f"mount -t tmpfs -o size=24m tmpfs {mnt}"], steps)
    outcomes = []
    for commit, log, check in zip(results[0::3], results[1::3], results[2::3], strict=True):
        assert_one_line(commit)
        landed = len(json.loads(log["out"])) == 3
        if commit["code"] == 0:
            assert landed
        else:
            assert not landed or "landed" in commit["err"], commit["err"]
        report = json.loads(check["out"])
        assert report["ok"], report
        outcomes.append(commit["code"] == 0)
    assert outcomes[0] is False and outcomes[-1] is True  # both sides were really exercised


# -- Ctrl-C after the commit point -------------------------------------------------------
def test_interrupt_after_the_commit_point_reports_the_release_as_landed(
        archive: Archive, tmp_path: Path):
    csv = write_csv(tmp_path / "a.csv", [{"k": 1, "v": 2}])
    script = textwrap.dedent(f"""
        import os, signal
        from atdarchive import derived
        from atdarchive.cli import main
        def interrupted(*args, **kwargs):
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C right after the ledger line
        derived.update_after_commit = interrupted
        import atdarchive.commit as commit
        commit.update_after_commit = interrupted
        main(["-C", {str(archive.root)!r}, "commit", "ds", {str(csv)!r},
              "--published", "2024-01-01"])
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 130, done.stderr
    assert "Traceback" not in done.stderr
    assert "had already landed" in done.stderr
    fresh = Archive(archive.root)
    assert len(fresh.history("ds").entries) == 1
    assert [p for p in verify(fresh) if p.severity == "error"] == []


def test_interrupt_before_the_commit_point_leaves_nothing(archive: Archive, tmp_path: Path):
    csv = write_csv(tmp_path / "a.csv", [{"k": 1, "v": 2}])
    script = textwrap.dedent(f"""
        import os, signal
        from atdarchive import store
        from atdarchive.cli import main
        real = store.SnapshotStore.track
        def track(self, *args):
            os.kill(os.getpid(), signal.SIGINT)
            return real(self, *args)
        store.SnapshotStore.track = track
        main(["-C", {str(archive.root)!r}, "commit", "ds", {str(csv)!r},
              "--published", "2024-01-01"])
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 130 and "interrupted" in done.stderr, done.stderr
    assert "landed" not in done.stderr
    fresh = Archive(archive.root)
    assert fresh.history("ds").entries == []
    assert [p for p in verify(fresh) if p.severity == "error"] == []


def test_a_kill_between_creating_the_ledger_and_its_first_line(archive: Archive,
                                                              tmp_path: Path):
    """The first commit of a dataset killed inside its ledger append, after the file was
    created and before a byte was written: recovery removes the empty file (nothing was
    recorded), so git status is clean and the next commit is the first release."""
    csv = write_csv(tmp_path / "a.csv", [{"k": 1, "v": 2}])
    script = textwrap.dedent(f"""
        import os, signal
        from atdarchive import ledger
        from atdarchive.cli import main
        from atdarchive.paths import open_nofollow
        def append(self, event):
            os.close(open_nofollow(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT))
            os.kill(os.getpid(), signal.SIGKILL)
        ledger.Ledger.append = append
        main(["-C", {str(archive.root)!r}, "commit", "ds", {str(csv)!r},
              "--published", "2024-01-01"])
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == -9, done.stderr
    ledger_path = archive.ledger("ds").path
    assert ledger_path.exists() and ledger_path.stat().st_size == 0
    fresh = Archive(archive.root)
    with fresh.write_lock():  # what the next writer does first
        pass
    assert not ledger_path.exists()
    status = subprocess.run(["git", "-C", str(archive.root), "status", "--porcelain",
                             "--untracked-files=all"], capture_output=True, text=True).stdout
    assert status == ""
    assert fresh.commit("ds", csv, published="2024-01-01").parent is None


# -- an immutable DVC cache, an unwritable directory remote --------------------------------
@needs_namespaces
def test_an_unwritable_dvc_cache_is_one_line_and_rolls_back(archive: Archive, tmp_path: Path):
    archive.commit("ds", write_csv(tmp_path / "a.csv", [{"k": 1, "v": 1}]),
                   published="2024-01-01")
    cache = archive.root / ".dvc" / "cache"
    new = write_csv(tmp_path / "b.csv", [{"k": 1, "v": 2}])
    results = in_namespace(
        [f"mount --bind {cache} {cache}", f"mount -o remount,bind,ro {cache}"],
        [[EXE, "-C", str(archive.root), "commit", "ds", str(new), "--published", "2024-02-01"]])
    assert results[0]["code"] == 2, results[0]
    assert_one_line(results[0])
    assert "nothing was recorded" in results[0]["err"]
    fresh = Archive(archive.root)
    assert len(fresh.history("ds").entries) == 1
    assert [p for p in verify(fresh) if p.severity == "error"] == []


@needs_namespaces
def test_an_unwritable_directory_remote_says_what_is_wrong(archive: Archive, tmp_path: Path):
    archive.commit("ds", write_csv(tmp_path / "a.csv", [{"k": 1, "v": 1}]),
                   published="2024-01-01")
    store = tmp_path / "store"
    archive.add_remote("shared", str(store), default=True)
    results = in_namespace([f"mount --bind {store} {store}", f"mount -o remount,bind,ro {store}"],
                           [[EXE, "-C", str(archive.root), "push"]])
    assert results[0]["code"] == 2
    assert_one_line(results[0])
    err = results[0]["err"]
    assert "credentials" not in err and ("read-only" in err or "not writable" in err), err


def test_repair_of_one_dataset_in_a_partial_clone(tmp_path: Path, cli):
    author = Archive.init(tmp_path / "author")
    for number, name in enumerate(("one", "two")):
        author.add_dataset(name)
        author.commit(name, write_csv(tmp_path / f"{name}.csv", [{"k": 1, "v": number}]),
                      published="2024-01-01")
    author.add_remote("shared", str(tmp_path / "store"), default=True)
    author.push()
    result = cli("clone", author.root, tmp_path / "clone", "--pull", "one", "--confirm-remotes")
    assert result.code == 0, result.err
    repaired = cli("-C", tmp_path / "clone", "verify", "--repair", "one")
    assert repaired.code == 0, repaired.out + repaired.err
    everything = cli("-C", tmp_path / "clone", "verify", "--repair")
    assert "two: indexes not rebuilt" in everything.out + everything.err
    listing = cli("-C", tmp_path / "clone", "verify", "two")  # not pulled: said once
    assert listing.code == 3
    assert [line for line in listing.out.splitlines() if line.startswith("error:")] == [
        f"error: two@{Archive(tmp_path / 'clone').history('two').entries[0].short}: data not "
        f"present here (not pulled): atdarchive pull two@"
        f"{Archive(tmp_path / 'clone').history('two').entries[0].short}"]
