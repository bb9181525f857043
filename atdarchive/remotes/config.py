"""Which remotes an archive has: `.dvc/config` (URLs) and `atdarchive.toml` (lock policies).

Remote URLs live in `.dvc/config` (committed), overlaid by `.dvc/config.local`;
credentials never go to git (environment, `~/.aws`, `config.local`). The
archive's own settings — each remote's Object Lock policy — live in
`atdarchive.toml`, committed.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from atdarchive import gitops
from atdarchive.context import ArchiveContext
from atdarchive.dvcconfig import (
    REMOTE_SECTION_RE,
    dvc_config,
    dvc_settings,
    require_dvc_trusted,
)
from atdarchive.errors import AtdError
from atdarchive.tomlwriter import dumps
from atdarchive.trust import Setting, Unconfirmed, archive_setting, confirm, is_confirmed
from atdarchive.util import atomic_write, check_name

ARCHIVE_CONFIG = "atdarchive.toml"
LOCK_MODES = ("compliance", "governance")
ARCHIVE_CONFIG_HEADER = """atdarchive archive settings (committed). Remote data policies live here;
remote URLs live in .dvc/config, credentials never in git."""


class UnconfirmedRemote(Unconfirmed):
    """A remote (or its lock policy, or a DVC option) that only the archive's config names."""


@dataclass
class Remote:
    """One DVC remote of the archive, with its Object Lock policy if any."""

    name: str
    url: str
    endpoint_url: str | None = None
    default: bool = False
    lock_days: int | None = None
    lock_mode: str | None = None
    options: dict[str, str] = field(default_factory=dict)
    waiting: list[Setting] = field(default_factory=list)  # what came with the archive
    problem: str | None = None  # a lock policy out of bounds: the remote is not used

    @property
    def confirmed(self) -> bool:
        return not self.waiting

    def require_confirmed(self, root: Path) -> None:
        """Refuse to move data through a remote the archive's own config chose for us."""
        if self.problem:
            raise AtdError(self.problem)
        if self.waiting:
            first = self.waiting[0]
            raise UnconfirmedRemote(f"{first.describe()} came with the archive and is not "
                                    f"used until you confirm it: {first.confirm}")

    @property
    def kind(self) -> str:
        if self.url.startswith("s3://"):
            return "s3"
        if "://" not in self.url or self.url.startswith("file://"):
            return "local"
        return "other"

    @property
    def locked(self) -> bool:
        return self.lock_days is not None

    def local_path(self) -> Path:
        return Path(self.url.removeprefix("file://"))

    def object_path(self, obj: str) -> str:
        """Where DVC keeps the object `obj` (an md5, or md5 + '.dir') on this remote.

        DVC's layout: `<prefix>/files/md5/<xx>/<rest>`, a directory listing
        being `<xx>/<rest>.dir`.
        """
        rest = f"files/md5/{obj[:2]}/{obj[2:]}"
        if self.kind == "local":
            return str(self.local_path() / rest)
        if self.kind == "s3":
            _, prefix = split_s3(self.url)
            return f"{prefix}/{rest}" if prefix else rest
        return f"{self.url.rstrip('/')}/{rest}"

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "url": self.url, "kind": self.kind,
                "endpoint_url": self.endpoint_url, "default": self.default,
                "lock": ({"days": self.lock_days, "mode": self.lock_mode}
                         if self.locked else None),
                "waiting": [s.describe() for s in self.waiting], "problem": self.problem}


def split_s3(url: str) -> tuple[str, str]:
    """`s3://BUCKET/PREFIX` -> (bucket, prefix without slashes at either end)."""
    rest = url.removeprefix("s3://")
    bucket, _, prefix = rest.partition("/")
    return bucket, prefix.strip("/")


# -- .dvc/config -----------------------------------------------------------------
def _read_dvc_config(root: Path) -> tuple[dict[str, dict[str, str]], str | None]:
    """Remote sections and the default remote, as DVC merges its config files."""
    sections, _ = dvc_config(root)
    found = {match.group(1): dict(options) for section, options in sections.items()
             if (match := REMOTE_SECTION_RE.match(section))}
    return found, sections.get("core", {}).get("remote")


def _edit_dvc_config(archive: ArchiveContext, name: str, section: dict[str, Any], *,
                     default: bool) -> None:
    from dvc.repo import Repo

    from atdarchive.store import quiet_dvc

    require_dvc_trusted(archive.root)
    with quiet_dvc(), gitops.neutralised_environment(archive.root), \
            Repo(str(archive.root)) as repo, repo.config.edit("repo") as conf:
        conf["remote"][name] = section
        if default:
            conf["core"]["remote"] = name


# -- atdarchive.toml ---------------------------------------------------------------
def read_archive_config(archive: ArchiveContext) -> dict[str, Any]:
    """The archive's own settings (`atdarchive.toml`); {} when there are none."""
    path = archive.root / ARCHIVE_CONFIG
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise AtdError(f"{path}: invalid TOML: {exc}") from None


def write_archive_config(archive: ArchiveContext, config: dict[str, Any], message: str) -> None:
    """Write `atdarchive.toml` and commit it to git. Call inside `write_lock`."""
    path = archive.root / ARCHIVE_CONFIG
    ordered = dict(config)
    if "remote" in config:
        ordered["remote"] = dict(sorted(config["remote"].items()))
    atomic_write(path, dumps(ordered, comments={"": ARCHIVE_CONFIG_HEADER}).encode("utf-8"))
    gitops.commit(archive.root, [path], message)


def lock_settings(archive: ArchiveContext) -> list[Setting]:
    """Object Lock policies in `atdarchive.toml`: each acts on storage, irreversibly."""
    policies = read_archive_config(archive).get("remote", {})
    return [archive_setting(archive.root, "lock", name, dict(sorted(body["lock"].items())),
                            ARCHIVE_CONFIG)
            for name, body in sorted(policies.items())
            if isinstance(body, dict) and isinstance(body.get("lock"), dict)]


def remote_trust(root: Path, name: str, archive: ArchiveContext | None = None
                 ) -> list[Setting]:
    """The unconfirmed settings a transfer through remote NAME would act on."""
    pending = [s for s in dvc_settings(root) if s.kind == "dvc" or
               (s.kind == "remote" and s.name == name)]
    if archive is not None:
        pending += [s for s in lock_settings(archive) if s.name == name]
    return [s for s in pending if not is_confirmed(root, s)]


# -- the remotes ---------------------------------------------------------------------
def remotes(archive: ArchiveContext) -> list[Remote]:
    """The archive's remotes, default first, then by name."""
    sections, default = _read_dvc_config(archive.root)
    locks = read_archive_config(archive).get("remote", {})
    out = []
    for name, options in sections.items():
        lock = locks.get(name, {}).get("lock") or {}
        url = options.get("url", "")
        if url and "://" not in url and not os.path.isabs(url):
            url = str((archive.root / ".dvc" / url).resolve())  # DVC: relative to .dvc/
        problem = None
        try:
            days, mode = check_lock_policy(archive.root / ARCHIVE_CONFIG, name, lock)
        except AtdError as exc:
            days, mode, problem = None, None, exc.message
        out.append(Remote(name=name, url=url, endpoint_url=options.get("endpointurl"),
                          default=name == default, lock_days=days, lock_mode=mode,
                          options=dict(options), problem=problem,
                          waiting=remote_trust(archive.root, name, archive)))
    out.sort(key=lambda r: (not r.default, r.name))
    return out


def check_lock_policy(where: Path, name: str, lock: dict[str, Any]
                      ) -> tuple[int | None, str | None]:
    """(days, mode) of an Object Lock policy, within bounds whoever wrote it."""
    from atdarchive import limits

    if not lock:
        return None, None
    days, mode = lock.get("days"), lock.get("mode", "compliance")
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise AtdError(f"{where}: remote.{name}.lock.days must be a whole number of days >= 1")
    if days > limits.value("remote.max_lock_days"):
        raise limits.LimitExceeded(f"{where}: remote.{name}.lock.days", "remote.max_lock_days",
                                   days)
    if mode not in LOCK_MODES:
        raise AtdError(f"{where}: remote.{name}.lock.mode must be compliance or governance")
    return days, mode


def get_remote(archive: ArchiveContext, name: str | None = None) -> Remote:
    """The named remote; without a name, the default (or the only) one."""
    known = remotes(archive)
    if name is not None:
        for remote in known:
            if remote.name == name:
                return remote
        names = ", ".join(r.name for r in known) or "none yet"
        raise AtdError(f"no remote named {name!r} (remotes: {names}); add one with "
                       f"'atdarchive remote add {name} URL'")
    if not known:
        raise AtdError("this archive has no remote; add one with "
                       "'atdarchive remote add NAME URL --default'")
    defaults = [r for r in known if r.default]
    if defaults:
        return defaults[0]
    if len(known) == 1:
        return known[0]
    raise AtdError(f"several remotes ({', '.join(r.name for r in known)}) and no default; "
                   "choose one with --remote NAME")


def add_remote(archive: ArchiveContext, name: str, url: str, *,
               endpoint_url: str | None = None, default: bool = False) -> Remote:
    """Add a DVC remote to `.dvc/config` and commit it (credentials stay out of git)."""
    check_name("remote", name)
    if any(r.name == name for r in remotes(archive)):
        raise AtdError(f"remote {name!r} already exists; see 'atdarchive remote list'")
    if "://" not in url:
        url = str(Path(url).expanduser().resolve())  # typed relative to cwd; keep it exact
    elif not url.startswith(("s3://", "file://")):
        raise AtdError(f"{url}: unsupported remote URL (use a directory path or s3://BUCKET/PREFIX)")
    if endpoint_url and not url.startswith("s3://"):
        raise AtdError("--endpoint-url applies to s3:// remotes only")
    if url.startswith("s3://") and not split_s3(url)[0]:
        raise AtdError(f"{url}: no bucket name (expected s3://BUCKET/PREFIX)")
    section: dict[str, Any] = {"url": url}
    if endpoint_url:
        section["endpointurl"] = endpoint_url
    with archive.write_lock():
        _edit_dvc_config(archive, name, section, default=default)
        if not url.startswith("s3://"):
            Path(url.removeprefix("file://")).mkdir(parents=True, exist_ok=True)
        gitops.commit(archive.root, [archive.root / ".dvc" / "config"],
                      f"remote: add {name} ({url})")
        for setting in dvc_settings(archive.root):  # you typed it: confirmed
            if setting.kind == "remote" and setting.name == name:
                confirm(archive.root, setting)
    return get_remote(archive, name)


def confirm_remote(archive: ArchiveContext, name: str) -> Remote:
    """Trust a remote that came with the archive, and its Object Lock policy (within
    bounds): recorded in your own trust store, outside every archive (`atdarchive.trust`)."""
    remote = get_remote(archive, name)
    if remote.problem:
        raise AtdError(remote.problem)
    for setting in dvc_settings(archive.root) + lock_settings(archive):
        if setting.kind in ("remote", "lock") and setting.name == name:
            confirm(archive.root, setting)
    return get_remote(archive, remote.name)
