"""Every setting an archive brings that names a location or acts on storage.

`archive_settings()` lists them from the files that travel with an archive:
`.dvc/config` and `.dvc/config.local` (`atdarchive.dvcconfig`), `atdarchive.toml`
(Object Lock policies, `atdarchive.remotes.config`) and each `dataset.toml`
(`[[sources]]` to watch, raised `[limits]`). Each is used only once confirmed
(`atdarchive.trust`); `waiting()` is what `verify` and `atdarchive trust` show.
"""

from __future__ import annotations

import configparser
from typing import TYPE_CHECKING

from atdarchive.dvcconfig import dvc_settings
from atdarchive.trust import Setting, limits_setting, unconfirmed

if TYPE_CHECKING:
    from atdarchive.context import ArchiveContext


def dataset_settings(archive: ArchiveContext) -> list[Setting]:
    from atdarchive.errors import AtdError
    from atdarchive.limits import raised
    from atdarchive.sources import source_setting

    out: list[Setting] = []
    for name in archive.dataset_names():
        try:
            config = archive.dataset(name)
        except AtdError:
            continue  # verify reports a broken dataset.toml on its own
        out += [source_setting(archive.root, name, s) for s in config.sources]
        declared = getattr(config, "limits", None) or {}
        if raised(declared):
            out.append(limits_setting(archive.root, name, declared))
    return out


def archive_settings(archive: ArchiveContext) -> list[Setting]:
    from atdarchive.remotes.config import lock_settings

    return dvc_settings(archive.root) + lock_settings(archive) + dataset_settings(archive)


def waiting(archive: ArchiveContext) -> list[Setting]:
    """What came with the archive and is not yet confirmed here."""
    try:
        return unconfirmed(archive.root, archive_settings(archive))
    except (configparser.Error, OSError):
        return []


def confirm_settings(archive: ArchiveContext, kind: str | None = None,
                     name: str | None = None) -> list[Setting]:
    """Confirm what waits (all of it, one kind, or one setting; a dataset's sources by
    the dataset's name); returns what was confirmed. Lock policies are bounds-checked."""
    from atdarchive.errors import AtdError
    from atdarchive.remotes.config import check_lock_policy
    from atdarchive.trust import confirm

    chosen = [s for s in waiting(archive) if (kind is None or s.kind == kind) and (
        name is None or s.name == name or s.name.split(":")[0] == name)]
    if not chosen and (kind or name):
        raise AtdError(f"nothing of {' '.join(filter(None, (kind, name)))} waits for "
                       "confirmation here (see 'atdarchive trust list')")
    for setting in chosen:
        if setting.kind == "lock":
            check_lock_policy(archive.root / setting.origin, setting.name, setting.value)
        confirm(archive.root, setting)
    return chosen
