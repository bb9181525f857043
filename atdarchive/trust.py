"""One trust model for settings that come with an archive.

An archive travels (git clones, tarballs, shared folders), so whatever it says about
*where* to read or write or *what to do to storage* — remotes and their endpoints,
Object Lock policies, DVC cache and site-cache directories, `[[sources]]` to watch,
raised `[limits]` — is the archive author's word, not the user's. Such a setting is
used only once the user has confirmed that exact value for that archive.

Confirmations live outside every archive, in the user's own config directory
(`$ATDARCHIVE_CONFIG_HOME`, else `$XDG_CONFIG_HOME/atdarchive`, else
`~/.config/atdarchive`), keyed by the archive's real path, the setting and a hash of
its value: nothing an archive carries (not even a copied `.dvc/config.local`) can
confirm itself, and a changed value needs confirming again.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from atdarchive.errors import AtdError
from atdarchive.util import atomic_write, canonical_json, utc_now


class Unconfirmed(AtdError):
    """A setting that came with the archive and that the user has not confirmed."""


@dataclass(frozen=True)
class Setting:
    """One archive-supplied setting that acts on a location or on storage."""

    kind: str  # "remote", "lock", "cache", "source", "limits"
    name: str  # remote name, dataset name, config key...
    value: Any  # the exact value to confirm (JSON-able)
    origin: str  # the file that says it, relative to the archive
    confirm: str  # the command that confirms it

    def describe(self) -> str:
        shown = canonical_json(self.value)
        if len(shown) > 120:
            shown = shown[:117] + "..."
        return f"{self.kind} {self.name} = {shown} (from {self.origin})"


def confirm_command(root: Path, kind: str, name: str) -> str:
    """The one command that confirms a setting of KIND named NAME."""
    if kind in ("remote", "lock"):
        return f"atdarchive -C {root} remote confirm {name}"
    if kind == "source":
        return f"atdarchive -C {root} source confirm {name.split(':')[0]}"
    return f"atdarchive -C {root} trust confirm {kind} {name}"


def archive_setting(root: Path, kind: str, name: str, value: Any, origin: str) -> Setting:
    return Setting(kind, name, value, origin, confirm_command(root, kind, name))


def limits_setting(root: Path, dataset: str, declared: dict[str, Any]) -> Setting:
    """A dataset's `[limits]` table, as a setting to confirm when it raises a bound."""
    return archive_setting(root, "limits", dataset, dict(sorted(declared.items())),
                           f"datasets/{dataset}/dataset.toml")


def config_home() -> Path:
    explicit = os.environ.get("ATDARCHIVE_CONFIG_HOME")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "atdarchive"


def _store_file() -> Path:
    return config_home() / "trust.json"


def _digest(value: Any) -> str:
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()


def _key(root: Path, setting: Setting) -> tuple[str, str, str, str]:
    return (str(Path(root).resolve()), setting.kind, setting.name, _digest(setting.value))


def _entries() -> list[dict[str, Any]]:
    path = _store_file()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise AtdError(f"{path}: unreadable trust store ({exc}); fix or remove it") from None
    entries = data.get("confirmed") if isinstance(data, dict) else None
    return [e for e in entries or [] if isinstance(e, dict)]


def is_confirmed(root: Path, setting: Setting) -> bool:
    wanted = _key(root, setting)
    return any((e.get("archive"), e.get("kind"), e.get("name"), e.get("digest")) == wanted
               for e in _entries())


def confirm(root: Path, setting: Setting) -> None:
    """Record the user's confirmation of exactly this value for this archive."""
    path = _store_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / ".trust.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        archive, kind, name, digest = _key(root, setting)
        kept = [e for e in _entries()
                if (e.get("archive"), e.get("kind"), e.get("name")) != (archive, kind, name)]
        kept.append({"archive": archive, "kind": kind, "name": name, "digest": digest,
                     "value": setting.value, "confirmed_at": utc_now()})
        atomic_write(path, json.dumps({"version": 1, "confirmed": kept}, indent=1) + "\n")


def require(root: Path, setting: Setting) -> None:
    """Refuse with one line saying what is waiting and how to confirm it."""
    if not is_confirmed(root, setting):
        raise Unconfirmed(f"{setting.describe()} came with the archive and is not used until "
                          f"you confirm it: {setting.confirm}")


def unconfirmed(root: Path, settings: list[Setting]) -> list[Setting]:
    return [s for s in settings if not is_confirmed(root, s)]


def forget(root: Path) -> None:
    """Drop every confirmation for one archive (tests, `trust reset`)."""
    path = _store_file()
    with contextlib.suppress(FileNotFoundError):
        archive = str(Path(root).resolve())
        kept = [e for e in _entries() if e.get("archive") != archive]
        atomic_write(path, json.dumps({"version": 1, "confirmed": kept}, indent=1) + "\n")
