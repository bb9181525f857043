"""Storage-enforced immutability: S3 Object Lock on a remote (DESIGN.md §10).

A remote may be *locked* (`lock_remote`): the policy (days, mode) is kept in
the archive's `atdarchive.toml`, committed. Pushing to a locked S3 remote puts
every object of every pushed snapshot under S3 Object Lock retention and
records each object's version id as a `remote_copy` ledger event. Those
version ids are what `verify_remote` checks and what `pull` restores from when
an object was hidden (a delete marker, e.g. from `dvc gc --cloud`) or
overwritten on the remote.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from atdarchive.context import ArchiveContext
from atdarchive.errors import AtdError
from atdarchive.progress import Progress
from atdarchive.remotes.config import (
    LOCK_MODES,
    Remote,
    check_lock_policy,
    get_remote,
    lock_settings,
    read_archive_config,
    split_s3,
    write_archive_config,
)
from atdarchive.remotes.failures import explain
from atdarchive.remotes.objects import DIR_OBJECT, select_snapshots, snapshot_objects
from atdarchive.trust import confirm
from atdarchive.util import md5_file, utc_now

#: S3 error codes that mean "no such object or version" (a HEAD says 404/400/405).
MISSING_CODES = ("404", "NoSuchKey", "NoSuchVersion", "400", "405")


def lock_remote(archive: ArchiveContext, name: str, days: int, mode: str = "compliance"
                ) -> Remote:
    """Set the remote's Object Lock policy in `atdarchive.toml` (committed to git)."""
    remote = get_remote(archive, name)
    mode = mode.lower()
    if mode not in LOCK_MODES:
        raise AtdError(f"--mode {mode!r}: choose compliance or governance")
    check_lock_policy(Path("--days"), name, {"days": days, "mode": mode})
    if remote.kind != "s3":
        raise AtdError(f"remote {name!r} ({remote.url}) is not S3: Object Lock needs an "
                       "s3:// remote on a bucket created with Object Lock enabled")
    with archive.write_lock():
        config = read_archive_config(archive)
        config.setdefault("remote", {}).setdefault(name, {})["lock"] = {"days": days,
                                                                       "mode": mode}
        write_archive_config(archive, config, f"remote: lock {name} for {days} days ({mode})")
        for setting in lock_settings(archive):  # you chose it: confirmed
            if setting.name == name:
                confirm(archive.root, setting)
    return get_remote(archive, name)


def recorded_object(info: dict[str, Any]) -> str:
    """The DVC object (md5, or md5.dir) of one recorded remote copy `{"key", "version_id"}`."""
    return info["key"].rsplit("files/md5/", 1)[-1].replace("/", "", 1)


class S3Remote:
    """boto3 access to one S3 remote: object versions, retention, restore."""

    def __init__(self, remote: Remote) -> None:
        import boto3
        from botocore.config import Config

        self.remote = remote
        self.bucket, self.prefix = split_s3(remote.url)
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
                        f"{explain(exc)}")

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
            obj = recorded_object(info)
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


# -- the ledger's record of locked copies ----------------------------------------
def remote_copies(archive: ArchiveContext, remote: str,
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


def retain_pushed(archive: ArchiveContext, remote: Remote, selected: list[tuple[str, str]],
                  progress: Progress | None = None) -> int:
    """Retention on every object of every pushed snapshot; record versions in the ledger.

    Returns how many objects were put under retention.
    """
    s3 = S3Remote(remote)
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
                archive.record_events(
                    dataset, items, f"{dataset}: {len(items)} snapshot(s) locked on remote "
                    f"{remote.name} until {until.date().isoformat()}")
    return count


# -- checking a remote -------------------------------------------------------------
def _read_remote_object(remote: Remote, obj: str) -> bytes | None:
    """The current copy of `obj` on a directory or S3 remote (None: not there)."""
    if remote.kind == "local":
        path = Path(remote.object_path(obj))
        return path.read_bytes() if path.exists() else None
    if remote.kind == "s3":
        return S3Remote(remote).get(obj)
    return None


def verify_remote(archive: ArchiveContext, remote: str) -> list[dict[str, Any]]:
    """Every object of every snapshot that is missing, unlocked or hidden on the remote.

    Each problem: {"dataset", "snapshot", "object" (remote key), "file" (relpath or
    ".dir"), "problem"}. On a locked remote the recorded versions are checked;
    elsewhere the current objects (and their md5 where the remote can tell).
    """
    chosen = get_remote(archive, remote)
    if chosen.kind == "other":
        raise AtdError(f"remote {chosen.name} ({chosen.url}): verify supports directory "
                       "and s3:// remotes")
    s3 = S3Remote(chosen) if chosen.kind == "s3" else None
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
        objects = snapshot_objects(archive, dataset, snapshot_id,
                                   lambda obj: _read_remote_object(chosen, obj))
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
                elif md5_file(path) != expected:
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
