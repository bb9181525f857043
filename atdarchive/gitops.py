"""The git side of an archive: the ledger and `.dvc` pointers are committed to git."""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path

from atdarchive.errors import AtdError

# Used only when the user has no git identity configured (fresh CI machines, containers).
FALLBACK_IDENTITY = ["-c", "user.name=atdarchive", "-c", "user.email=atdarchive@localhost"]


def git(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        result = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        raise AtdError("git is not installed (atdarchive needs git on PATH)") from None
    if check and result.returncode != 0:
        message = (result.stderr or result.stdout).strip().splitlines()
        raise AtdError(f"git {args[0]} failed in {root}: {message[-1] if message else '?'}")
    return result


def is_repo(root: Path) -> bool:
    return (root / ".git").exists()


def init(root: Path) -> None:
    git(root, "init", "-q", "-b", "main")


@functools.cache
def has_identity(root: Path) -> bool:
    """Whether git has a user name and email here (asked once per process and archive)."""
    if os.environ.get("GIT_AUTHOR_NAME") and os.environ.get("GIT_AUTHOR_EMAIL") and \
            os.environ.get("GIT_COMMITTER_NAME") and os.environ.get("GIT_COMMITTER_EMAIL"):
        return True
    found = git(root, "config", "--get-regexp", r"^user\.(name|email)$", check=False).stdout
    keys = {line.split(" ", 1)[0] for line in found.splitlines()}
    return {"user.name", "user.email"} <= keys


def commit(root: Path, paths: list[Path], message: str) -> None:
    """Stage exactly `paths` and commit them (and nothing else the user may have staged).

    When nothing else is staged, the index is committed as it is: a commit limited
    by pathspec builds a second index and hashes the paths again (on a long ledger,
    the larger part of a commit's git time).
    """
    rel = [(p.relative_to(root) if p.is_absolute() else p).as_posix() for p in paths]
    git(root, "add", "-f", "--", *rel)
    identity = [] if has_identity(root) else FALLBACK_IDENTITY
    staged = set(git(root, "diff", "--cached", "--name-only", "-z").stdout.split("\0")) - {""}
    only = [] if staged <= set(rel) else ["--", *rel]
    git(root, *identity, "commit", "-q", "--no-verify", "-m", message, *only)


def head(root: Path) -> str | None:
    result = git(root, "rev-parse", "--verify", "-q", "HEAD", check=False)
    return result.stdout.strip() or None


def dirty_paths(root: Path, under: str = "") -> list[str]:
    """Paths git sees as modified or untracked (porcelain), optionally below `under`."""
    args = ["status", "--porcelain", "--untracked-files=all"]
    if under:
        args += ["--", under]
    out = git(root, *args).stdout
    return [line[3:] for line in out.splitlines() if line]


def show_file(root: Path, rev: str, path: str) -> bytes | None:
    result = subprocess.run(
        ["git", "-C", str(root), "show", f"{rev}:{path}"], capture_output=True, check=False
    )
    return result.stdout if result.returncode == 0 else None
