"""Remotes: shared storage for snapshot data, and storage-enforced immutability (DESIGN.md §10).

An archive's ledger travels by git; its data travels by DVC remotes (a local
directory, or S3 through dvc-s3). Remote configuration lives in `.dvc/config`
(committed); credentials never do (environment, `~/.aws`, `.dvc/config.local`).

A remote may be *locked* (`lock_remote`): the policy (days, mode) is kept in
the archive's `atdarchive.toml`, committed. Pushing to a locked S3 remote puts
every object of every pushed snapshot under S3 Object Lock retention and
records each object's version id as a `remote_copy` ledger event. Those
version ids are what `verify_remote` checks and what `pull` restores from when
an object was hidden (a delete marker, e.g. from `dvc gc --cloud`) or
overwritten on the remote.

DVC's S3 layout: `<prefix>/files/md5/<xx>/<rest>` for files and the
directory listing object `<xx>/<rest>.dir`.
"""

from __future__ import annotations

import configparser
import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import re
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from atdarchive import gitops
from atdarchive.errors import AtdError, IntegrityError
from atdarchive.store import DVC_MD5_RE
from atdarchive.util import atomic_write, check_name, sha256_file, utc_now

if TYPE_CHECKING:
    from atdarchive.archive import Archive

ARCHIVE_CONFIG = "atdarchive.toml"
LOCK_MODES = ("compliance", "governance")
DIR_OBJECT = ".dir"  # name of a snapshot's DVC directory listing among its objects
PUSH_BATCH = 20  # snapshots per DVC call: progress granularity vs. DVC's per-call overhead
_DVC_LOGGERS = ("dvc", "dvc_data", "dvc_objects", "dvc_s3")
_SECTION_RE = re.compile(r"""^'?remote\s+"(.+)"'?$""")

# (description, done, total) — the CLI draws it as a rich progress bar on stderr
Progress = Callable[[str, int, int], None]


# -- configuration ------------------------------------------------------------
#: S3 error codes that mean "no such object or version" (a HEAD says 404/400/405).
MISSING_CODES = ("404", "NoSuchKey", "NoSuchVersion", "400", "405")


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
        """Where DVC keeps the object `obj` (an md5, or md5 + '.dir') on this remote."""
        rest = f"files/md5/{obj[:2]}/{obj[2:]}"
        if self.kind == "local":
            return str(self.local_path() / rest)
        if self.kind == "s3":
            _, prefix = _split_s3(self.url)
            return f"{prefix}/{rest}" if prefix else rest
        return f"{self.url.rstrip('/')}/{rest}"

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "url": self.url, "kind": self.kind,
                "endpoint_url": self.endpoint_url, "default": self.default,
                "lock": ({"days": self.lock_days, "mode": self.lock_mode}
                         if self.locked else None)}


def _read_dvc_config(root: Path) -> tuple[dict[str, dict[str, str]], str | None]:
    """Remote sections and the default remote, `.dvc/config` overlaid by `config.local`.

    Read with configparser so that read-only commands need not import DVC.
    """
    sections: dict[str, dict[str, str]] = {}
    default = None
    for name in ("config", "config.local"):
        path = root / ".dvc" / name
        if not path.exists():
            continue
        parser = configparser.ConfigParser(interpolation=None)
        parser.read(path)
        for section in parser.sections():
            if match := _SECTION_RE.match(section):
                sections.setdefault(match.group(1), {}).update(parser[section])
        if parser.has_option("core", "remote"):
            default = parser.get("core", "remote")
    return sections, default


def _archive_config_path(archive: Archive) -> Path:
    return archive.root / ARCHIVE_CONFIG


def _read_archive_config(archive: Archive) -> dict[str, Any]:
    path = _archive_config_path(archive)
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise AtdError(f"{path}: invalid TOML: {exc}") from None


def remotes(archive: Archive) -> list[Remote]:
    """The archive's remotes, default first, then by name."""
    sections, default = _read_dvc_config(archive.root)
    locks = _read_archive_config(archive).get("remote", {})
    out = []
    for name, options in sections.items():
        lock = locks.get(name, {}).get("lock") or {}
        url = options.get("url", "")
        if url and "://" not in url and not os.path.isabs(url):
            url = str((archive.root / ".dvc" / url).resolve())  # DVC: relative to .dvc/
        out.append(Remote(name=name, url=url, endpoint_url=options.get("endpointurl"),
                          default=name == default,
                          lock_days=int(lock["days"]) if "days" in lock else None,
                          lock_mode=lock.get("mode"), options=dict(options)))
    out.sort(key=lambda r: (not r.default, r.name))
    return out


def get_remote(archive: Archive, name: str | None = None) -> Remote:
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


def add_remote(archive: Archive, name: str, url: str, *, endpoint_url: str | None = None,
               default: bool = False) -> Remote:
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
    if url.startswith("s3://") and not _split_s3(url)[0]:
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


def _edit_dvc_config(archive: Archive, name: str, section: dict[str, Any], *,
                     default: bool) -> None:
    from dvc.repo import Repo

    from atdarchive.store import quiet_dvc

    with quiet_dvc(), Repo(str(archive.root)) as repo, repo.config.edit("repo") as conf:
        conf["remote"][name] = section
        if default:
            conf["core"]["remote"] = name


def lock_remote(archive: Archive, name: str, days: int, mode: str = "compliance") -> Remote:
    """Set the remote's Object Lock policy in `atdarchive.toml` (committed to git)."""
    remote = get_remote(archive, name)
    mode = mode.lower()
    if mode not in LOCK_MODES:
        raise AtdError(f"--mode {mode!r}: choose compliance or governance")
    if days < 1:
        raise AtdError(f"--days {days}: retention must be at least 1 day")
    if remote.kind != "s3":
        raise AtdError(f"remote {name!r} ({remote.url}) is not S3: Object Lock needs an "
                       "s3:// remote on a bucket created with Object Lock enabled")
    with archive.write_lock():
        config = _read_archive_config(archive)
        config.setdefault("remote", {}).setdefault(name, {})["lock"] = {"days": days,
                                                                       "mode": mode}
        path = _archive_config_path(archive)
        atomic_write(path, _archive_config_toml(config).encode("utf-8"))
        gitops.commit(archive.root, [path], f"remote: lock {name} for {days} days ({mode})")
    return get_remote(archive, name)


def _archive_config_toml(config: dict[str, Any]) -> str:
    lines = ["# atdarchive archive settings (committed). Remote data policies live here;",
             "# remote URLs live in .dvc/config, credentials never in git.", ""]
    for name, remote in sorted(config.get("remote", {}).items()):
        lock = remote.get("lock")
        if lock:
            lines.append(f'[remote."{name}".lock]')
            lines.append(f"days = {int(lock['days'])}")
            lines.append(f'mode = "{lock["mode"]}"')
            lines.append("")
    return "\n".join(lines)


# -- which snapshots -----------------------------------------------------------
def select_snapshots(archive: Archive, target: str | None) -> list[tuple[str, str]]:
    """(dataset, snapshot id) for `DATASET@REF`, all of `DATASET`, or everything (None)."""
    if target and "@" in target:
        snapshot = archive.snapshot(target)
        return [(snapshot.dataset, snapshot.id)]
    names = [target] if target else archive.dataset_names()
    out = []
    for name in names:
        history = archive.history(name)
        out += [(name, e.id) for e in history.publication_order()]
    return out


def snapshot_objects(archive: Archive, dataset: str, snapshot_id: str,
                     remote: Remote | None = None) -> dict[str, str]:
    """The DVC objects of one snapshot: {".dir": "<md5>.dir", relpath: md5, ...}.

    The listing comes from the local cache, else from the remote itself.
    """
    pointer = archive.store.pointer(dataset, snapshot_id)
    if not pointer.exists():
        raise IntegrityError(f"{pointer}: DVC pointer of {dataset}@{snapshot_id[:10]} missing")
    match = DVC_MD5_RE.search(pointer.read_text())
    if not match:
        raise IntegrityError(f"{pointer}: not a DVC directory pointer (edited by hand?)")
    dir_obj = match.group(1) + ".dir"
    manifest = archive.store.directory_manifest(dataset, snapshot_id)
    if manifest is None and remote is not None:
        data = _read_remote_object(archive, remote, dir_obj)
        if data is not None:
            manifest = {e["relpath"]: e["md5"] for e in json.loads(data)}
    objects = {DIR_OBJECT: dir_obj}
    objects.update(manifest or {})
    return objects


def _read_remote_object(archive: Archive, remote: Remote, obj: str,
                        version_id: str | None = None) -> bytes | None:
    if remote.kind == "local":
        path = Path(remote.object_path(obj))
        return path.read_bytes() if path.exists() else None
    if remote.kind == "s3":
        s3 = S3Remote(archive, remote)
        return s3.get(obj, version_id)
    return None


# -- DVC calls -----------------------------------------------------------------
class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def _dvc_repo(archive: Archive) -> Iterator[Any]:
    """A DVC Repo whose log goes to us (not the terminal): failures become one line."""
    from dvc.repo import Repo

    capture = _Capture()
    loggers = [logging.getLogger(name) for name in _DVC_LOGGERS]
    saved = [(lg.level, lg.propagate, list(lg.handlers)) for lg in loggers]
    for lg in loggers:
        lg.handlers = [capture]
        lg.propagate = False
        lg.setLevel(logging.WARNING)
    try:
        with Repo(str(archive.root)) as repo:
            repo._atd_capture = capture  # read back by _explain
            yield repo
    finally:
        for lg, (level, propagate, handlers) in zip(loggers, saved, strict=True):
            lg.setLevel(level)
            lg.propagate = propagate
            lg.handlers = handlers


def _explain(exc: BaseException, repo: Any | None = None) -> str:
    """The most telling one-line cause of a DVC or botocore failure."""
    causes: list[BaseException] = []
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    capture = getattr(repo, "_atd_capture", None)
    if capture is not None:
        todo += [r.exc_info[1] for r in capture.records if r.exc_info]
    while todo:
        item = todo.pop(0)
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        causes.append(item)
        todo += [item.__cause__, item.__context__]
    for cause in causes:  # credentials and connection problems say most
        name = type(cause).__name__
        text = str(cause)
        if "Credentials" in name or "InvalidAccessKeyId" in text or "SignatureDoesNotMatch" \
                in text:
            return f"credentials refused or missing ({_one_line(text)})"
        if "Connect" in name or "connect" in text.lower():
            return f"cannot connect ({_one_line(text)})"
        if isinstance(cause, PermissionError) or any(
                word in text for word in ("Forbidden", "AccessDenied", "Access Denied")):
            return ("access denied: credentials refused or lacking permission "
                    f"({_one_line(text)})")
    for cause in causes:
        if type(cause).__module__.startswith(("botocore", "aiobotocore", "aiohttp")) or \
                isinstance(cause, FileNotFoundError):
            return _one_line(str(cause))
    messages = [r.getMessage() for r in capture.records] if capture is not None else []
    detail = "; ".join(_one_line(m) for m in messages[-2:] if m)
    return _one_line(str(exc)) + (f" ({detail})" if detail else "")


def _one_line(text: str) -> str:
    return " ".join(text.split())[:300]


@dataclass
class TransferResult:
    """What push or pull did, per snapshot."""

    remote: str
    snapshots: list[str] = field(default_factory=list)  # "dataset@id"
    transferred: int = 0
    locked: int = 0  # snapshot objects put under retention (push) or restored (pull)
    notices: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"remote": self.remote, "snapshots": self.snapshots,
                "transferred": self.transferred, "locked": self.locked,
                "notices": self.notices}


def _batches(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def push(archive: Archive, target: str | None = None, *, remote: str | None = None,
         progress: Progress | None = None) -> TransferResult:
    """Upload snapshot data to a remote; on a locked S3 remote, put it under retention."""
    chosen = get_remote(archive, remote)
    selected = select_snapshots(archive, target)
    result = TransferResult(chosen.name)
    for dataset, snapshot_id in selected:
        if archive.store.directory_manifest(dataset, snapshot_id) is None:
            raise AtdError(f"{dataset}@{snapshot_id[:10]} is not in the local cache; pull it "
                           "before pushing it elsewhere")
    done = 0
    with _dvc_repo(archive) as repo:
        for batch in _batches(selected, PUSH_BATCH):
            targets = [str(archive.store.pointer(d, i)) for d, i in batch]
            try:
                result.transferred += repo.push(targets=targets, remote=chosen.name)
            except Exception as exc:
                raise AtdError(f"push to remote {chosen.name} ({chosen.url}) failed: "
                               f"{_explain(exc, repo)}") from None
            done += len(batch)
            if progress:
                progress(f"push → {chosen.name}", done, len(selected))
    result.snapshots = [f"{d}@{i}" for d, i in selected]
    if chosen.locked:
        result.locked = _lock_pushed(archive, chosen, selected, progress)
    return result


def _lock_pushed(archive: Archive, remote: Remote, selected: list[tuple[str, str]],
                 progress: Progress | None) -> int:
    """Retention on every object of every pushed snapshot; record versions in the ledger."""
    s3 = S3Remote(archive, remote)
    until = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=remote.lock_days
                                                                         or 0)
    now = dt.datetime.now(dt.UTC)
    recorded = remote_copies(archive, remote.name)
    events: dict[str, list[dict[str, Any]]] = {}
    count = 0
    for number, (dataset, snapshot_id) in enumerate(selected, 1):
        previous = recorded.get(snapshot_id)
        if previous and all(_parse_time(o["retain_until"]) > now
                            for o in previous["objects"].values()) \
                and not s3.version_problems(previous):
            continue  # already locked and intact: nothing to record
        objects: dict[str, dict[str, Any]] = {}
        for name, obj in snapshot_objects(archive, dataset, snapshot_id).items():
            objects[name] = s3.retain(obj, until, (remote.lock_mode or "compliance").upper())
            count += 1
        events.setdefault(dataset, []).append({
            "type": "remote_copy", "snapshot": snapshot_id, "remote": remote.name,
            "url": remote.url, "mode": remote.lock_mode, "locked_at": utc_now(),
            "objects": objects,
        })
        if progress:
            progress(f"lock on {remote.name}", number, len(selected))
    if events:
        with archive.write_lock():
            for dataset, items in events.items():
                ledger = archive.ledger(dataset)
                for event in items:
                    ledger.append(event)
                archive._git_commit_ledger(  # noqa: SLF001 - the lead's commit pattern
                    dataset, [], f"{dataset}: {len(items)} snapshot(s) locked on remote "
                    f"{remote.name} until {until.date().isoformat()}")
    return count


def remote_copies(archive: Archive, remote: str,
                  dataset: str | None = None) -> dict[str, dict[str, Any]]:
    """snapshot id -> the latest `remote_copy` event for that remote (from the ledgers)."""
    out: dict[str, dict[str, Any]] = {}
    for name in [dataset] if dataset else archive.dataset_names():
        for event in archive.ledger(name).events():
            if event.get("type") == "remote_copy" and event.get("remote") == remote:
                out[event["snapshot"]] = event
    return out


def _parse_time(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def pull(archive: Archive, target: str | None = None, *, remote: str | None = None,
         progress: Progress | None = None) -> TransferResult:
    """Fetch snapshot data from a remote, restore what is recorded but hidden, verify every hash.

    Only the selected snapshots are fetched. Each file is checked against the
    sha256 in its record; a mismatch removes the bad copy and raises
    IntegrityError, so nothing unverified stays in the cache.
    """
    chosen = get_remote(archive, remote)
    selected = select_snapshots(archive, target)
    result = TransferResult(chosen.name)
    copies = remote_copies(archive, chosen.name) if chosen.kind == "s3" else {}
    done = 0
    with _dvc_repo(archive) as repo:
        for batch in _batches(selected, PUSH_BATCH):
            targets = [str(archive.store.pointer(d, i)) for d, i in batch]
            failure: BaseException | None = None
            reason = ""
            try:
                result.transferred += repo.fetch(targets=targets, remote=chosen.name)
            except Exception as exc:  # partial: restore from recorded versions below
                failure = exc
                reason = _explain(exc, repo)
            restored = 0
            for dataset, snapshot_id in batch:
                restored += _restore_recorded(archive, chosen, dataset, snapshot_id,
                                              copies.get(snapshot_id))
            result.locked += restored
            if restored:
                result.notices.append(f"restored {restored} object(s) from their recorded "
                                      f"locked versions on {chosen.name}")
            missing = [(d, i) for d, i in batch if _missing_objects(archive, d, i)]
            if missing:
                d, i = missing[0]
                why = reason if failure is not None else "objects missing on the remote"
                raise AtdError(f"pull from remote {chosen.name} ({chosen.url}) failed for "
                               f"{d}@{i[:10]}: {why}")
            try:
                repo.checkout(targets=targets, force=True)
            except Exception as exc:
                raise AtdError(f"checkout of pulled data failed: {_explain(exc, repo)}") from None
            for dataset, snapshot_id in batch:
                copy = copies.get(snapshot_id)
                try:
                    _verify_pulled(archive, dataset, snapshot_id)
                except IntegrityError:
                    if copy is None:
                        raise
                    # the current remote object is not the locked one: use the recorded version
                    result.locked += _restore_recorded(archive, chosen, dataset, snapshot_id,
                                                       copy)
                    repo.checkout(targets=[str(archive.store.pointer(dataset, snapshot_id))],
                                  force=True)
                    _verify_pulled(archive, dataset, snapshot_id)
                    result.notices.append(f"{dataset}@{snapshot_id[:10]}: the remote's current "
                                          "copy was altered; restored the recorded locked version")
            done += len(batch)
            if progress:
                progress(f"pull ← {chosen.name}", done, len(selected))
    result.snapshots = [f"{d}@{i}" for d, i in selected]
    return result


def _missing_objects(archive: Archive, dataset: str, snapshot_id: str) -> list[str]:
    store = archive.store
    objects = snapshot_objects(archive, dataset, snapshot_id)
    if not store.cache_path(objects[DIR_OBJECT]).exists():
        return [DIR_OBJECT]
    return [rel for rel, md5 in objects.items()
            if rel != DIR_OBJECT and not store.cache_path(md5).exists()]


def _restore_recorded(archive: Archive, remote: Remote, dataset: str, snapshot_id: str,
                      copy: dict[str, Any] | None) -> int:
    """Fetch cache objects that DVC could not from their recorded (locked) S3 versions."""
    if copy is None:
        return 0
    s3 = S3Remote(archive, remote)
    restored = 0
    for _ in range(2):  # the .dir listing first, then the files it names
        for rel in _missing_objects(archive, dataset, snapshot_id):
            info = copy["objects"].get(rel)
            if info is None:
                continue
            obj = info["key"].rsplit("files/md5/", 1)[-1].replace("/", "", 1)
            data = s3.get(obj, info["version_id"])
            if data is None:
                continue
            expected = obj.removesuffix(".dir")
            if hashlib.md5(data).hexdigest() != expected:  # noqa: S324 - DVC's address
                raise IntegrityError(
                    f"{remote.name}:{info['key']} version {info['version_id']}: md5 "
                    f"{hashlib.md5(data).hexdigest()} does not match its address {expected}")  # noqa: S324
            path = archive.store.cache_path(obj)
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, data)
            path.chmod(0o444)
            restored += 1
    return restored


def _verify_pulled(archive: Archive, dataset: str, snapshot_id: str) -> None:
    """Full sha256 of every pulled file against the record; remove and fail on mismatch."""
    store = archive.store
    record = archive.history(dataset).by_id[snapshot_id].record
    objects = snapshot_objects(archive, dataset, snapshot_id)
    for rel, info in record["files"].items():
        path = store.locate(dataset, snapshot_id, rel)
        if path is None:
            raise IntegrityError(f"{dataset}@{snapshot_id[:10]}: {rel} missing after pull")
        actual = sha256_file(path)
        if actual != info["sha256"]:
            bad = [path]
            if rel in objects:
                bad.append(store.cache_path(objects[rel]))
            for item in bad:
                with contextlib.suppress(OSError):
                    item.unlink()
            raise IntegrityError(
                f"{dataset}@{snapshot_id[:10]} {rel}: pulled data has sha256 {actual}, the "
                f"record says {info['sha256']} (remote copy altered; bad copy removed)")


def clone(git_url: str, directory: str | os.PathLike[str], *, pulls: list[str] | tuple[str, ...]
          = (), remote: str | None = None, progress: Progress | None = None) -> Archive:
    """git clone an archive, then pull (and verify) the asked snapshots."""
    from atdarchive.archive import Archive

    target = Path(directory).resolve()
    if target.exists() and any(target.iterdir()):
        raise AtdError(f"{target}: exists and is not empty")
    target.parent.mkdir(parents=True, exist_ok=True)
    gitops.git(target.parent, "clone", "-q", git_url, str(target))
    archive = Archive(target)
    for ref in pulls:
        if "@" not in ref and ref not in archive.dataset_names():
            raise AtdError(f"--pull {ref!r}: expected DATASET or DATASET@REF")
        pull(archive, ref, remote=remote, progress=progress)
    return archive


# -- S3 and Object Lock --------------------------------------------------------
def _split_s3(url: str) -> tuple[str, str]:
    rest = url.removeprefix("s3://")
    bucket, _, prefix = rest.partition("/")
    return bucket, prefix.strip("/")


class S3Remote:
    """boto3 access to one S3 remote: object versions, retention, restore."""

    def __init__(self, archive: Archive, remote: Remote) -> None:
        import boto3
        from botocore.config import Config

        self.remote = remote
        self.bucket, self.prefix = _split_s3(remote.url)
        options = remote.options
        session = boto3.session.Session(
            aws_access_key_id=options.get("access_key_id"),
            aws_secret_access_key=options.get("secret_access_key"),
            aws_session_token=options.get("session_token"),
            profile_name=options.get("profile"),
            region_name=options.get("region"),
        )
        self.client = session.client(
            "s3", endpoint_url=remote.endpoint_url,
            config=Config(connect_timeout=int(options.get("connect_timeout", 10)),
                          read_timeout=int(options.get("read_timeout", 60))),
        )

    def key(self, obj: str) -> str:
        return self.remote.object_path(obj)

    def _fail(self, exc: Exception, what: str) -> AtdError:
        return AtdError(f"remote {self.remote.name} ({self.remote.url}): {what} failed: "
                        f"{_explain(exc)}")

    def _missing_or(self, what: str, call: Any) -> Any:
        """`call()`, or None when the object (version) does not exist; else a one-line error."""
        from botocore.exceptions import ClientError

        try:
            return call()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in MISSING_CODES:
                return None
            raise self._fail(exc, what) from None
        except Exception as exc:
            raise self._fail(exc, what) from None

    def head(self, obj: str, version_id: str | None = None) -> dict[str, Any] | None:
        kwargs = {"VersionId": version_id} if version_id else {}
        return self._missing_or(f"head {self.key(obj)}", lambda: self.client.head_object(
            Bucket=self.bucket, Key=self.key(obj), **kwargs))

    def get(self, obj: str, version_id: str | None = None) -> bytes | None:
        kwargs = {"VersionId": version_id} if version_id else {}
        return self._missing_or(f"get {self.key(obj)}", lambda: self.client.get_object(
            Bucket=self.bucket, Key=self.key(obj), **kwargs)["Body"].read())

    def latest_is_delete_marker(self, obj: str) -> bool:
        key = self.key(obj)
        try:
            listing = self.client.list_object_versions(Bucket=self.bucket, Prefix=key)
        except Exception as exc:
            raise self._fail(exc, f"list versions of {key}") from None
        return any(m["Key"] == key and m.get("IsLatest") for m in listing.get("DeleteMarkers", []))

    def retain(self, obj: str, until: dt.datetime, mode: str) -> dict[str, Any]:
        """Put the current version of `obj` under retention; returns key, version, date."""
        head = self.head(obj)
        if head is None:
            raise AtdError(f"remote {self.remote.name}: {self.key(obj)} missing right after "
                           "push (is the bucket versioned with Object Lock?)")
        version = head.get("VersionId")
        if not version or version == "null":
            raise AtdError(f"remote {self.remote.name}: bucket {self.bucket} is not versioned; "
                           "Object Lock needs a bucket created with Object Lock enabled")
        current = head.get("ObjectLockRetainUntilDate")
        if current is not None and current >= until:
            until = current  # retention can only be extended, never shortened
        else:
            try:
                self.client.put_object_retention(
                    Bucket=self.bucket, Key=self.key(obj), VersionId=version,
                    Retention={"Mode": mode, "RetainUntilDate": until})
            except Exception as exc:
                raise self._fail(exc, f"Object Lock retention on {self.key(obj)}") from None
        return {"key": self.key(obj), "version_id": version,
                "retain_until": until.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")}

    def version_problems(self, copy: dict[str, Any]) -> list[tuple[str, str, str]]:
        """(name, key, problem) for every recorded object that is not safely locked."""
        problems = []
        now = dt.datetime.now(dt.UTC)
        for name, info in copy["objects"].items():
            obj = info["key"].rsplit("files/md5/", 1)[-1].replace("/", "", 1)
            head = self.head(obj, info["version_id"])
            if head is None:
                problems.append((name, info["key"],
                                 f"missing: recorded version {info['version_id']} is gone"))
                continue
            until = head.get("ObjectLockRetainUntilDate")
            if until is None:
                problems.append((name, info["key"], "unlocked: no Object Lock retention"))
            elif until <= now:
                problems.append((name, info["key"],
                                 f"unlocked: retention expired {until.isoformat()}"))
            current = self.head(obj)
            if current is None:
                if self.latest_is_delete_marker(obj):
                    problems.append((name, info["key"], "hidden behind a delete marker "
                                     "(restorable: 'atdarchive pull' uses the recorded version)"))
                else:
                    problems.append((name, info["key"], "missing: no current version"))
            elif current.get("VersionId") != info["version_id"]:
                problems.append((name, info["key"],
                                 f"overwritten: current version {current.get('VersionId')} is "
                                 f"not the locked version {info['version_id']}"))
        return problems


def verify_remote(archive: Archive, remote: str) -> list[dict[str, Any]]:
    """Every object of every snapshot that is missing, unlocked or hidden on the remote.

    Each problem: {"dataset", "snapshot", "object" (remote key), "file" (relpath or
    ".dir"), "problem"}. On a locked remote the recorded versions are checked;
    elsewhere the current objects (and their md5 where the remote can tell).
    """
    chosen = get_remote(archive, remote)
    if chosen.kind == "other":
        raise AtdError(f"remote {chosen.name} ({chosen.url}): verify supports directory "
                       "and s3:// remotes")
    s3 = S3Remote(archive, chosen) if chosen.kind == "s3" else None
    copies = remote_copies(archive, chosen.name) if s3 else {}
    problems: list[dict[str, Any]] = []

    def report(dataset: str, snapshot_id: str, name: str, key: str, problem: str) -> None:
        problems.append({"dataset": dataset, "snapshot": snapshot_id, "file": name,
                         "object": key, "problem": problem})

    for dataset, snapshot_id in select_snapshots(archive, None):
        copy = copies.get(snapshot_id)
        if s3 is not None and copy is not None:
            for name, key, problem in s3.version_problems(copy):
                report(dataset, snapshot_id, name, key, problem)
            continue
        objects = snapshot_objects(archive, dataset, snapshot_id, chosen)
        if len(objects) == 1:
            report(dataset, snapshot_id, DIR_OBJECT, chosen.object_path(objects[DIR_OBJECT]),
                   "missing: directory listing not on the remote (never pushed?)")
            continue
        for name, obj in objects.items():
            key = chosen.object_path(obj)
            expected = obj.removesuffix(".dir")
            if s3 is None:
                path = Path(key)
                if not path.exists():
                    report(dataset, snapshot_id, name, key, "missing")
                elif _md5_file(path) != expected:
                    report(dataset, snapshot_id, name, key, "corrupt: md5 does not match "
                           "its address")
                continue
            head = s3.head(obj)
            if head is None:
                hidden = s3.latest_is_delete_marker(obj)
                report(dataset, snapshot_id, name, key,
                       "hidden behind a delete marker (no recorded version to restore)"
                       if hidden else "missing")
                continue
            etag = head.get("ETag", "").strip('"')
            if etag and "-" not in etag and etag != expected:
                report(dataset, snapshot_id, name, key, "corrupt: md5 (ETag) does not match "
                       "its address")
            if chosen.locked:
                report(dataset, snapshot_id, name, key,
                       "unlocked: no recorded locked version (run 'atdarchive push' to lock)")
    return problems


def _md5_file(path: Path) -> str:
    digest = hashlib.md5()  # noqa: S324 - DVC's content address, not security
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
