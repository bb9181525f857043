"""Paths read from an archive are input (DESIGN.md §15): check them before they touch a disk.

An archive cloned from someone else can name any path in a record, a DVC
listing or a config, and can commit symlinks. Nothing it says may make a
command read or write outside it: relative paths are checked for form, and
every component between the archive root and the file is checked not to be
a symbolic link before it is opened, written or deleted.
"""

from __future__ import annotations

import os
import posixpath
import re
import stat
from pathlib import Path

from atdarchive.errors import IntegrityError

HEX64_RE = re.compile(r"^[0-9a-f]{64}$")


def is_safe_relpath(rel: object) -> bool:
    """A plain relative POSIX path: normalised, no `..`, no absolute, no NUL or backslash."""
    if not isinstance(rel, str) or not rel or len(rel) > 1024:
        return False
    if rel.startswith("/") or "\\" in rel or "\x00" in rel or rel.startswith("~"):
        return False
    if posixpath.normpath(rel) != rel:
        return False
    return all(part not in ("", ".", "..") for part in rel.split("/"))


def resolve_inside(root: Path, *parts: str, what: str = "") -> Path:
    """ROOT/PARTS, where each part is a plain relative path and no component is a link:
    the one way a path read from an archive becomes a path on disk."""
    for part in parts:
        if not is_safe_relpath(part):
            raise IntegrityError(f"{str(part)[:200]!r}: not a plain relative path inside the "
                                 "archive (absolute, '..', or not normalised); refused")
    return ensure_no_symlink(root, root.joinpath(*parts), what)


def is_hex_id(value: object) -> bool:
    return isinstance(value, str) and bool(HEX64_RE.match(value))


def symlink_on_path(root: Path, path: Path) -> Path | None:
    """The first component of PATH below ROOT that is a symbolic link, if any.

    PATH must lie below ROOT lexically; components that do not exist yet end the walk.
    """
    try:
        rel = path.relative_to(root)
    except ValueError:
        return path
    current = root
    for part in rel.parts:
        current = current / part
        try:
            mode = os.lstat(current).st_mode
        except FileNotFoundError:
            return None
        if stat.S_ISLNK(mode):
            return current
    return None


def ensure_no_symlink(root: Path, path: Path, what: str = "") -> Path:
    """PATH, after checking that no component of it below ROOT is a symbolic link."""
    link = symlink_on_path(root, path)
    if link is not None:
        shown = link.relative_to(root) if link.is_relative_to(root) else link
        raise IntegrityError(
            f"{shown}: is a symbolic link{f' ({what})' if what else ''}; an archive must not "
            "bring links (they could point outside it) — refused; remove the link")
    return path


def open_nofollow(path: Path, flags: int, mode: int = 0o644) -> int:
    """os.open that refuses a symbolic link as the last component (with a clear error)."""
    try:
        return os.open(path, flags | os.O_NOFOLLOW, mode)
    except OSError as exc:
        if exc.errno == 40 or (os.path.islink(path)):  # ELOOP: the path is a symlink
            raise IntegrityError(f"{path}: is a symbolic link; an archive must not bring links "
                                 "— refused; remove the link") from None
        raise
