"""Finish or undo what an interrupted writer left behind (DESIGN.md §11).

The ledger line is a snapshot's commit point. Before it, nothing is visible:
staging, a published directory, a `.dvc` pointer or a `.gitignore` line
without a ledger line are rolled back. After it, the snapshot exists: a
missing git commit is made — but only when the ledger merely grew since git
last saw it; an edited ledger is left alone for `atdarchive verify` to report.

A writer killed inside git or DVC also leaves their locks: a `.git/*.lock`
no running git process can own is removed; a DVC `rwlock` file torn by the
kill, or naming dead processes, is reset. Recovery never removes anything
git already holds (a pointer committed at HEAD is evidence, not a leftover).

Every step is idempotent and derived from what is on disk, so a recovery
that is itself killed is finished by the next one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import time
from pathlib import Path

from atdarchive import gitops
from atdarchive.errors import AtdError
from atdarchive.ledger import GENESIS
from atdarchive.locking import pid_alive
from atdarchive.paths import ensure_no_symlink, open_nofollow
from atdarchive.store import IGNORE_SNAPSHOT_DIRS, SNAPSHOT_LINE_RE, SnapshotStore
from atdarchive.util import atomic_write, sha256_bytes

TEMP_FILE_RE = re.compile(r"^\..+\.tmp-\d+(-\d+)?$")  # what `util.atomic_write` writes first
GIT_LOCK_WAIT = 15.0  # seconds a live git command may keep its lock before we give up
STALE_LOCK_AGE = 10.0  # without /proc, a git lock this old with no git running is stale


def recover(store: SnapshotStore, *, thorough: bool = False) -> list[str]:
    """Run under the write lock; returns notices of what was repaired.

    A ledger is compared with git only when a write left it marked pending
    (`SnapshotStore.git_pending`), or always when `thorough` (`verify --repair`).
    """
    notices = clear_git_locks(store.root)
    notices += repair_dvc_state(store.root)
    staging = store.staging
    if staging.exists() and any(staging.iterdir()):
        shutil.rmtree(staging)
        notices.append("removed leftover staging from an interrupted commit")
    for dataset in store.dataset_names():
        try:
            notices += _recover_dataset(store, dataset, thorough)
        except AtdError as exc:  # one damaged dataset must not block writes to the others
            notices.append(f"{dataset}: not recovered ({exc}); run 'atdarchive verify {dataset}'")
    return notices


def _recover_dataset(store: SnapshotStore, dataset: str, thorough: bool = False) -> list[str]:
    notices = []
    ledger = store.ledger(dataset)
    if _drop_torn_tail(ledger.path):
        notices.append(f"{dataset}: dropped a torn ledger line left by an interrupted append")
    trusted, _ = ledger.trusted(dataset)
    ids = {e["record"]["id"] for e in trusted if e["type"] == "snapshot"}
    snapshots = store.snapshots_dir(dataset)
    gitignore = snapshots / ".gitignore"
    names = sorted(os.listdir(snapshots)) if snapshots.exists() else []  # strings: fast
    for name in [n for n in names if TEMP_FILE_RE.match(n)]:  # a write cut short
        (snapshots / name).unlink(missing_ok=True)
        notices.append(f"{dataset}: removed {name}, left by an interrupted write")
    strays = [n for n in names if not n.startswith(".") and n.removesuffix(".dvc") not in ids]
    keep = ids | _committed_pointers(store, snapshots, ids, strays, gitignore)
    rolled: set[str] = set()
    if gitignore.exists():
        lines = gitignore.read_text().splitlines(keepends=True)
        kept = [line for line in lines
                if not SNAPSHOT_LINE_RE.match(line.strip()) or line.strip()[1:] in keep]
        if kept != lines:
            rel_gitignore = gitignore.relative_to(store.root).as_posix()
            rest = {line.strip() for line in kept} - {"", IGNORE_SNAPSHOT_DIRS}
            if not rest and gitops.show_file(
                    store.root, "HEAD", rel_gitignore) is None:
                gitignore.unlink()  # DVC created it for the rolled-back snapshot alone
            else:
                atomic_write(gitignore, "".join(kept).encode())
            rolled |= {line.strip()[1:] for line in lines if line not in kept}
    for name in strays:
        snapshot_id, path = name.removesuffix(".dvc"), snapshots / name
        if snapshot_id not in keep:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
            rolled.add(snapshot_id)
    notices += [f"{dataset}: rolled back unfinished snapshot {i[:10]}" for i in sorted(rolled)]
    pending = store.git_pending(dataset)
    if not pending.exists() and not thorough:  # every ledger write since was committed
        return notices
    rel = ledger.path.relative_to(store.root).as_posix()
    at_head = gitops.show_file(store.root, "HEAD", rel)
    committed = at_head or b""
    current = ledger.path.read_bytes() if ledger.path.exists() else b""
    if at_head is None and not current and ledger.path.exists():
        ledger.path.unlink()  # made by a first append killed before its line: nothing recorded
    if current != committed and current.startswith(committed):
        tail = len(committed.splitlines())
        done = [e["record"]["id"] for e in trusted if e["seq"] > tail and e["type"] == "snapshot"]
        paths = [ledger.path, gitignore, *(store.pointer(dataset, i) for i in ids)]
        lines = [line for line in current.split(b"\n") if line]
        trailers = "".join(f"atdarchive-snapshot: {i}\n" for i in done)
        trailers += f"atdarchive-ledger-head: {sha256_bytes(lines[-1]) if lines else GENESIS}"
        gitops.commit(store.root, [p for p in paths if p.exists()],
                      f"{dataset}: complete interrupted commit\n\n{trailers}")
        notices.append(f"{dataset}: committed to git what an interrupted commit had recorded")
    if current == committed or current.startswith(committed):
        pending.unlink(missing_ok=True)  # (an edited ledger stays pending for verify to see)
    return notices


def _committed_pointers(store: SnapshotStore, snapshots: Path, ids: set[str],
                        strays: list[str], gitignore: Path) -> set[str]:
    """Ids of `.dvc` pointers committed at HEAD — asked of git only when something on disk
    (STRAYS, .gitignore lines) is not in the ledger: the common case needs no git call."""
    lines = gitignore.read_text().split() if gitignore.exists() else []
    unknown = strays + [line[1:] for line in lines
                        if SNAPSHOT_LINE_RE.match(line) and line[1:] not in ids]
    if not unknown:
        return set()
    rel = snapshots.relative_to(store.root).as_posix()
    tracked = gitops.git(store.root, "ls-tree", "-r", "--name-only", "HEAD", "--", rel,
                         check=False).stdout.splitlines()
    return {Path(p).name.removesuffix(".dvc") for p in tracked if p.endswith(".dvc")}


def _drop_torn_tail(path: Path) -> bool:
    """Cut a last line without its newline: that append never finished (never the commit point)."""
    try:
        fd = open_nofollow(path, os.O_RDWR)
    except FileNotFoundError:
        return False
    with os.fdopen(fd, "r+b") as fh:
        data = fh.read()
        if not data or data.endswith(b"\n"):
            return False
        fh.truncate(data.rfind(b"\n") + 1)
        fh.flush()
        os.fsync(fh.fileno())
    return True


# --------------------------------------------------------------------------- git locks

def git_lock_files(root: Path) -> list[Path]:
    """Lock files a `git add`/`git commit` takes: index, HEAD, packed-refs, branch refs."""
    git_dir = root / ".git"
    found = [git_dir / name for name in ("index.lock", "HEAD.lock", "packed-refs.lock")]
    found = [p for p in found if p.exists()]
    heads = git_dir / "refs" / "heads"
    if heads.is_dir():
        found += sorted(heads.rglob("*.lock"))
    return found


def _git_pids(root: Path) -> list[int] | None:
    """Pids of git processes working in this repository; None where /proc is unavailable."""
    proc = Path("/proc")
    if not (proc / "self" / "cwd").exists():
        return None
    root_text = str(root.resolve())
    pids = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if not (entry / "comm").read_text().startswith("git"):
                continue
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if cwd == root_text or cwd.startswith(root_text + os.sep):
            pids.append(int(entry.name))
    return pids


def clear_git_locks(root: Path, wait: float = GIT_LOCK_WAIT) -> list[str]:
    """Remove git locks left by a killed writer; wait for a git command still running.

    A writer killed with `kill -9` can leave its git child running (it finishes
    on its own) or killed mid-write (its lock stays forever, and every later
    `git add` fails with "index.lock: File exists").
    """
    notices: list[str] = []
    deadline = time.monotonic() + wait
    while locks := git_lock_files(root):
        pids = _git_pids(root)
        if pids is None:  # no /proc: judge by age
            stale = [p for p in locks if time.time() - _mtime(p) > STALE_LOCK_AGE]
        else:
            stale = [] if pids else locks
        for lock in stale:
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()
            notices.append(f"removed stale git lock {lock.relative_to(root)} left by an "
                           "interrupted git command")
        if stale:
            continue
        if time.monotonic() > deadline:
            owner = f" (git pid {pids[0]})" if pids else ""
            raise AtdError(
                f"{locks[0]}: a git command{owner} is working in this archive and holds its "
                f"lock; gave up after {wait:.0f}s (if no git is running, delete the file)"
            )
        time.sleep(0.02)
    return notices


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return time.time()


# --------------------------------------------------------------------------- DVC state

def _read_rwlock(path: Path) -> tuple[dict | None, str | None]:
    if path.is_symlink():
        return None, "a symbolic link (an archive must not bring links)"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None, None
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None, "torn (not JSON)"
    if not isinstance(data, dict):
        return None, "not a JSON object"
    return data, None


def _dead_entries(data: dict) -> int:
    dead = 0
    for mode in ("read", "write"):
        for infos in (data.get(mode) or {}).values():
            for info in infos if isinstance(infos, list) else [infos]:
                pid = info.get("pid") if isinstance(info, dict) else None
                if isinstance(pid, int) and not pid_alive(pid):
                    dead += 1
    return dead


def dvc_lock_problems(root: Path) -> list[str]:
    """What a killed `dvc add` left in `.dvc/tmp` (read-only; `repair_dvc_state` fixes it)."""
    data, broken = _read_rwlock(root / ".dvc" / "tmp" / "rwlock")
    if broken:
        return [f"DVC rwlock file is {broken} (a DVC command was killed); the next write resets it"]
    if data and (dead := _dead_entries(data)):
        return [f"DVC rwlock file names {dead} dead process(es); the next write clears them"]
    return []


def repair_dvc_state(root: Path) -> list[str]:
    """Reset DVC's rwlock file when a killed `dvc add` tore it or left dead pids in it.

    Runs under the archive lock, and takes DVC's own guard (`rwlock.lock`, a
    flock like zc.lockfile's) so a user's concurrent `dvc` command is respected.
    """
    tmp = ensure_no_symlink(root, root / ".dvc" / "tmp", "DVC's state directory")
    path = ensure_no_symlink(root, tmp / "rwlock", "DVC's lock file")
    if not path.exists():
        return []
    fd = open_nofollow(tmp / "rwlock.lock", os.O_RDWR | os.O_CREAT)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return []  # a live DVC command holds it: it is not ours to touch
        data, broken = _read_rwlock(path)
        if broken:
            path.unlink()
            return [f"reset DVC's rwlock file ({broken}) left by an interrupted DVC command"]
        if not data or not _dead_entries(data):
            return []
        for mode in ("read", "write"):
            table = data.get(mode) or {}
            for key in list(table):
                infos = table[key]
                alive = [i for i in (infos if isinstance(infos, list) else [infos])
                         if not (isinstance(i, dict) and isinstance(i.get("pid"), int)
                                 and not pid_alive(i["pid"]))]
                if not alive:
                    del table[key]
                else:
                    table[key] = alive if isinstance(infos, list) else alive[0]
        atomic_write(path, json.dumps(data).encode())
        return ["cleared DVC rwlock entries of processes that were killed"]
    finally:
        os.close(fd)
