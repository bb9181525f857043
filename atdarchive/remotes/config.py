"""Which remotes an archive has: `.dvc/config` (URLs) and `atdarchive.toml` (lock policies).

Remote URLs live in `.dvc/config` (committed), overlaid by `.dvc/config.local`;
credentials never go to git (environment, `~/.aws`, `config.local`). The
archive's own settings — each remote's Object Lock policy — live in
`atdarchive.toml`, committed.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from atdarchive import gitops
from atdarchive.context import ArchiveContext
from atdarchive.errors import AtdError
from atdarchive.paths import ensure_no_symlink
from atdarchive.store import read_dvc_config
from atdarchive.tomlwriter import dumps
from atdarchive.util import atomic_write, check_name

ARCHIVE_CONFIG = "atdarchive.toml"
ARCHIVE_CONFIG_HEADER = """atdarchive archive settings (committed). Remote data policies live here;
remote URLs live in .dvc/config, credentials never in git."""
_SECTION_RE = re.compile(r"""^'?remote\s+"(.+)"'?$""")
LOCAL_URL = "\0local-url"  # the url the user's own config.local gives (the confirmation)


class UnconfirmedRemote(AtdError):
    """A directory remote outside the archive that only the archive's own config names."""


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
    confirmed: bool = True  # False: a local path outside the archive that only git named

    def require_confirmed(self, root: Path) -> None:
        """Refuse to move data through a remote the archive's own config chose for us."""
        if not self.confirmed:
            raise UnconfirmedRemote(
                f"remote {self.name}: {self.url} is a directory outside the archive, named by "
                "the committed .dvc/config (it came with the archive); refused until you "
                f"confirm it: atdarchive -C {root} remote confirm {self.name}")


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
                         if self.locked else None)}


def split_s3(url: str) -> tuple[str, str]:
    """`s3://BUCKET/PREFIX` -> (bucket, prefix without slashes at either end)."""
    rest = url.removeprefix("s3://")
    bucket, _, prefix = rest.partition("/")
    return bucket, prefix.strip("/")


# -- .dvc/config -----------------------------------------------------------------
def _read_dvc_config(root: Path) -> tuple[dict[str, dict[str, str]], str | None]:
    """Remote sections and the default remote, `.dvc/config` overlaid by `config.local`.

    Read with configparser so that read-only commands need not import DVC.
    """
    sections: dict[str, dict[str, str]] = {}
    default = None
    for name in ("config", "config.local"):
        parser = read_dvc_config(ensure_no_symlink(root, root / ".dvc" / name, "a DVC config"))
        if parser is None:
            continue
        for section in parser.sections():
            if match := _SECTION_RE.match(section):
                options = sections.setdefault(match.group(1), {})
                options.update(parser[section])
                if name == "config.local" and "url" in parser[section]:
                    options[LOCAL_URL] = parser[section]["url"]
        if parser.has_option("core", "remote"):
            default = parser.get("core", "remote")
    return sections, default


def _edit_dvc_config(archive: ArchiveContext, name: str, section: dict[str, Any], *,
                     default: bool) -> None:
    from dvc.repo import Repo

    from atdarchive.store import quiet_dvc

    with quiet_dvc(), Repo(str(archive.root)) as repo:
        with repo.config.edit("repo") as conf:
            conf["remote"][name] = section
            if default:
                conf["core"]["remote"] = name
        if "://" not in section["url"] or section["url"].startswith("file://"):
            with repo.config.edit("local") as conf:  # you chose this directory: confirmed
                conf["remote"][name] = {"url": section["url"]}


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
        local = "://" not in url or url.startswith("file://")
        outside = local and not Path(url.removeprefix("file://")).resolve().is_relative_to(
            archive.root)
        confirmed = not outside or options.get(LOCAL_URL) == options.get("url")
        try:
            days = int(lock["days"]) if "days" in lock else None
        except (TypeError, ValueError):
            raise AtdError(f"{archive.root / ARCHIVE_CONFIG}: remote.{name}.lock.days must be "
                           "a whole number of days") from None
        out.append(Remote(name=name, url=url, endpoint_url=options.get("endpointurl"),
                          default=name == default, lock_days=days,
                          lock_mode=lock.get("mode"),
                          options={k: v for k, v in options.items() if k != LOCAL_URL},
                          confirmed=confirmed))
    out.sort(key=lambda r: (not r.default, r.name))
    return out


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
    return get_remote(archive, name)


def confirm_remote(archive: ArchiveContext, name: str) -> Remote:
    """Trust a directory remote that came with the archive: record its URL in your own
    `.dvc/config.local` (never committed), which is what push and pull ask for."""
    from dvc.repo import Repo

    from atdarchive.store import quiet_dvc

    remote = get_remote(archive, name)
    raw = remotes_raw_url(archive, name)
    with archive.write_lock(), quiet_dvc(), Repo(str(archive.root)) as repo, \
            repo.config.edit("local") as conf:
        conf["remote"][name] = {"url": raw}
    return get_remote(archive, remote.name)


def remotes_raw_url(archive: ArchiveContext, name: str) -> str:
    """The URL as the committed config spells it (relative paths stay relative to .dvc/)."""
    sections, _ = _read_dvc_config(archive.root)
    return sections.get(name, {}).get("url", "")
