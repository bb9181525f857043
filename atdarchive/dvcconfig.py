"""DVC's repository config as an archive brings it, read without importing DVC.

`.dvc/config` is committed and `.dvc/config.local` may travel in a copied folder: both
are the archive author's word. `dvc_settings()` lists what in them names a place or acts
on storage (remotes, endpoints, cache and site-cache directories, sections beyond the
inert ones) — each a `trust.Setting` used only once confirmed.
"""

from __future__ import annotations

import configparser
import os
import re
from pathlib import Path

from atdarchive.errors import IntegrityError
from atdarchive.paths import ensure_no_symlink
from atdarchive.trust import Setting, archive_setting, require


def read_dvc_config(path: Path) -> configparser.ConfigParser | None:
    """A DVC config file (INI), or None if absent; a malformed one is a one-line error."""
    if not path.exists():
        return None
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(path.read_text(encoding="utf-8", errors="replace"), str(path))
    except configparser.Error as exc:
        first = str(exc).splitlines()[0]
        raise IntegrityError(f"{path}: not a valid DVC config ({first})") from None
    return parser


REMOTE_SECTION_RE = re.compile(r"""^'?remote\s+"(.+)"'?$""")
#: DVC options that neither name a place nor act on storage.
INERT = {"core": {"remote", "check_update", "interactive", "hardlink_lock", "no_scm"},
         "cache": {"type", "shared", "protected", "slow_link_warning"}}


def dvc_config(root: Path) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """DVC's repository config as DVC sees it (`config` overlaid by `config.local`):
    ({section: {option: value}}, {section: the file that last set it})."""
    merged: dict[str, dict[str, str]] = {}
    origin: dict[str, str] = {}
    for name in ("config", "config.local"):
        parser = read_dvc_config(ensure_no_symlink(root, root / ".dvc" / name, "a DVC config"))
        if parser is None:
            continue
        for section in parser.sections():
            merged.setdefault(section, {}).update(parser[section])
            origin[section] = f".dvc/{name}"
    return merged, origin


def _inside(root: Path, value: str) -> bool:
    path = Path(value.removeprefix("file://"))
    resolved = path if path.is_absolute() else (root / ".dvc" / path)
    return Path(os.path.normpath(resolved)).resolve().is_relative_to(root.resolve())


def _is_directory_url(url: str) -> bool:
    return "://" not in url or url.startswith("file://")


def dvc_settings(root: Path) -> list[Setting]:
    """Remotes and DVC options that would move data or write outside the archive."""
    out: list[Setting] = []
    sections, origin = dvc_config(root)
    for section, options in sections.items():
        where = origin[section]
        if match := REMOTE_SECTION_RE.match(section):
            url = options.get("url", "")
            if _is_directory_url(url) and _inside(root, url) and set(options) <= {"url"}:
                continue
            out.append(archive_setting(root, "remote", match.group(1),
                                       dict(sorted(options.items())), where))
            continue
        for key, value in sorted(options.items()):
            if key in INERT.get(section, set()):
                continue
            if section == "core" and key in ("analytics", "autostage") and value.lower() in (
                    "false", "0", "no", "off"):
                continue  # off is inert; on would phone home / let DVC drive git
            if section == "cache" and key == "dir" and _inside(root, value):
                continue
            out.append(archive_setting(root, "dvc", f"{section}.{key}", value, where))
    return out




def require_dvc_trusted(root: Path) -> None:
    """Before DVC opens the repository: every DVC option beyond remotes confirmed (DVC acts
    on cache and site-cache directories as soon as it opens)."""
    for setting in dvc_settings(root):
        if setting.kind == "dvc":
            require(root, setting)
