"""The git side of an archive: the ledger and `.dvc` pointers are committed to git.

git runs here as the archive's *tool*, never as the archive's *program*. An archive
received as a directory copy brings its own `.git/config`, hooks and `.gitattributes`;
every git call therefore goes through `git()`, which switches off each place where
git would run a program the repository names (`NEUTRALISED`, README "Guarantees"),
pins the repository and work tree to the archive (a `core.worktree` elsewhere is
ignored), ignores replace refs and grafts, and never lets git read the terminal.
`execution_points()` lists what a repository asks for, so `verify` can report it.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

from atdarchive.errors import AtdError

# Used only when the user has no git identity configured (fresh CI machines, containers).
FALLBACK_IDENTITY = ["-c", "user.name=atdarchive", "-c", "user.email=atdarchive@localhost"]

#: Every git setting that can make git run a program, and what atdarchive forces it to.
#: Filter drivers (`filter.<name>.clean/smudge/process`) are emptied by name, per
#: repository (`_filter_overrides`); diff drivers and external diff are never consulted
#: because no call here asks for a patch or textconv.
NEUTRALISED: dict[str, str] = {
    "core.hooksPath": os.devnull,  # every hook, incl. post-commit, reference-transaction
    "core.fsmonitor": "false",
    "core.sshCommand": "false",
    "core.askPass": "",
    "core.pager": "cat",
    "core.editor": "false",
    "sequence.editor": "false",
    "credential.helper": "",
    "commit.gpgSign": "false",
    "tag.gpgSign": "false",
    "tag.forceSignAnnotated": "false",
    "push.gpgSign": "false",
    "log.showSignature": "false",
    "gpg.program": "false",
    "gpg.openpgp.program": "false",
    "gpg.ssh.program": "false",
    "gpg.x509.program": "false",
    "gpg.ssh.defaultKeyCommand": "false",
    "diff.external": "false",
    "submodule.recurse": "false",
    "diff.ignoreSubmodules": "all",
    "status.submoduleSummary": "false",
    "protocol.ext.allow": "never",
    "core.gitProxy": "",
    "maintenance.auto": "false",
}

#: Environment variables that would redirect git or make it run something; the user's
#: identity and global config are kept.
_STRIPPED_ENV = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY",
                 "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_COMMON_DIR", "GIT_NAMESPACE",
                 "GIT_EXTERNAL_DIFF", "GIT_PAGER", "PAGER", "GIT_EDITOR", "GIT_SEQUENCE_EDITOR",
                 "GIT_SSH", "GIT_SSH_COMMAND", "GIT_ASKPASS", "SSH_ASKPASS", "GIT_PROXY_COMMAND",
                 "GIT_EXEC_PATH", "GIT_TEMPLATE_DIR", "GIT_CONFIG", "GIT_CONFIG_PARAMETERS",
                 "GIT_CONFIG_COUNT", "GIT_TRACE", "GIT_TRACE2", "GIT_TRACE2_EVENT",
                 "GIT_TRACE2_PERF", "GIT_TRACE_PACKET")

#: `.git/config` keys (regexes, lower case) that name a program or an outside location.
_EXECUTION_KEYS = re.compile(
    r"^(core\.(hookspath|fsmonitor|sshcommand|askpass|pager|editor|gitproxy|worktree"
    r"|alternaterefscommand)|sequence\.editor|credential\..*|gpg\..*program|gpg\..*command"
    r"|(commit|tag|push)\.gpgsign|diff\.external|(diff|merge|filter)\..+\."
    r"(command|textconv|driver|clean|smudge|process)|pager\..*|alias\..*|include(if)?\..*"
    r"|uploadpack\.packobjectshook|remote\.[^.]+\.(uploadpack|receivepack|proxy)"
    r"|trailer\..*\.(cmd|command))$", re.IGNORECASE)


@functools.cache
def repository_config(root: Path) -> tuple[tuple[str, str], ...]:
    """(origin, key) of every setting the repository itself brings — `.git/config`,
    `config.worktree` and every file they include — as git reads them (reading config
    runs nothing)."""
    argv = ["git", "-C", str(root),
            *[item for key, value in NEUTRALISED.items() for item in ("-c", f"{key}={value}")],
            "config", "--list", "--show-scope", "--show-origin", "--name-only", "-z"]
    try:
        out = subprocess.run(argv, capture_output=True, check=False, stdin=subprocess.DEVNULL,
                             env=_environment(root, pinned=True)).stdout
    except FileNotFoundError:
        raise AtdError("git is not installed (atdarchive needs git on PATH)") from None
    fields = out.decode("utf-8", "replace").split("\0")
    return tuple((_relative(root, origin.removeprefix("file:")), key)
                 for scope, origin, key in zip(fields[0::3], fields[1::3], fields[2::3],
                                               strict=False)
                 if scope in ("local", "worktree"))


def _relative(root: Path, origin: str) -> str:
    path = Path(os.path.normpath(root / origin))
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)


def _filter_overrides(root: Path) -> tuple[str, ...]:
    """`-c filter.X.clean= …` for every filter driver the repository's config defines."""
    names = {key.split(".", 1)[1].rsplit(".", 1)[0] for _, key in repository_config(root)
             if key.startswith("filter.") and key.count(".") >= 2}
    out: list[str] = []
    for name in sorted(names):
        for option in ("clean", "smudge", "process"):
            out += ["-c", f"filter.{name}.{option}="]
        out += ["-c", f"filter.{name}.required=false"]
    return tuple(out)


def _environment(root: Path, pinned: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in _STRIPPED_ENV and not k.startswith(("GIT_CONFIG_KEY_", "GIT_CONFIG_VALUE_"))}
    env.update(GIT_TERMINAL_PROMPT="0", GIT_NO_REPLACE_OBJECTS="1", GIT_GRAFT_FILE=os.devnull)
    git_dir = root / ".git"
    if git_dir.is_symlink():
        raise AtdError(f"{git_dir}: is a symbolic link; an archive must not bring links")
    if pinned and git_dir.exists():
        env["GIT_DIR"] = str(git_dir)
        env["GIT_WORK_TREE"] = str(root)
    return env


def _argv(root: Path, args: tuple[str, ...]) -> list[str]:
    overrides = [item for key, value in NEUTRALISED.items() for item in ("-c", f"{key}={value}")]
    return ["git", "-C", str(root), *overrides, *_filter_overrides(root), *args]


@contextlib.contextmanager
def neutralised_environment(root: Path) -> Iterator[None]:
    """While DVC works in this process: any git it runs (scmrepo may call the git
    program) inherits the same switches, through git's own GIT_CONFIG_* variables."""
    overrides = {**NEUTRALISED}
    pairs = _filter_overrides(root)
    overrides.update(dict(item.split("=", 1) for item in pairs[1::2]))
    saved = dict(os.environ)
    os.environ.update(_environment(root, pinned=True))
    os.environ["GIT_CONFIG_COUNT"] = str(len(overrides))
    for i, (key, value) in enumerate(overrides.items()):
        os.environ[f"GIT_CONFIG_KEY_{i}"] = key
        os.environ[f"GIT_CONFIG_VALUE_{i}"] = value
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def run(root: Path, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    """git with every execution point switched off (bytes in, bytes out)."""
    try:
        return subprocess.run(_argv(root, args), input=input, capture_output=True, check=False,
                              stdin=None if input is not None else subprocess.DEVNULL,
                              env=_environment(root, pinned=args[0] not in ("init", "clone")))
    except FileNotFoundError:
        raise AtdError("git is not installed (atdarchive needs git on PATH)") from None


def git(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = run(root, *args)
    text = subprocess.CompletedProcess(
        result.args, result.returncode, result.stdout.decode("utf-8", "surrogateescape"),
        result.stderr.decode("utf-8", "replace"))
    if check and text.returncode != 0:
        message = (text.stderr or text.stdout).strip().splitlines()
        raise AtdError(f"git {args[0]} failed in {root}: {message[-1] if message else '?'}")
    return text


def execution_points(root: Path) -> list[str]:
    """What this repository asks git to run or where it points git outside itself.

    atdarchive neutralises all of it; `verify` reports it because a plain `git` in
    this folder would obey.
    """
    found: list[str] = []
    git_dir = root / ".git"
    if git_dir.is_file():
        found.append(".git is a file pointing at a repository elsewhere (gitdir)")
    found += [f"{origin}: {key}" for origin, key in repository_config(root)
              if _EXECUTION_KEYS.match(key)]
    hooks = git_dir / "hooks"
    if hooks.is_dir() and not hooks.is_symlink():
        found += [f".git/hooks/{p.name}: a hook" for p in sorted(hooks.iterdir())
                  if not p.name.endswith(".sample")]
    for rel in ("info/attributes", "objects/info/alternates", "info/grafts"):
        if (git_dir / rel).exists():
            found.append(f".git/{rel}: present")
    if (git_dir / "refs" / "replace").is_dir() and any((git_dir / "refs" / "replace").iterdir()):
        found.append(".git/refs/replace: replace refs")
    attributes = git(root, "ls-files", "-z", "--", "*.gitattributes", ".gitattributes",
                     check=False).stdout.split("\0")
    for rel in filter(None, attributes):
        path = root / rel
        if path.is_file() and not path.is_symlink() and re.search(
                r"\b(filter|diff|merge)=", path.read_text(encoding="utf-8", errors="replace")):
            found.append(f"{rel}: names filter/diff/merge drivers")
    return found


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
    result = run(root, "cat-file", "blob", f"{rev}:{path}")
    return result.stdout if result.returncode == 0 else None
