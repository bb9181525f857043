"""S3 remotes against a real endpoint (moto's server on 127.0.0.1): push, clone, pull,
tamper detection, Object Lock retention, delete markers, unreachable and refusing endpoints."""

from __future__ import annotations

import datetime as dt
import itertools
import os
from pathlib import Path

import pytest
import s3server
from botocore.exceptions import ClientError
from conftest import archive_state
from test_remotes import objects_of, two_snapshots

from atdarchive import Archive
from atdarchive import remotes as rem

_buckets = itertools.count(1)


@pytest.fixture(scope="module")
def s3():
    with s3server.running() as server:
        yield server


@pytest.fixture
def bucket(s3) -> str:
    return s3.make_bucket(f"atd-test-{next(_buckets)}")


@pytest.fixture
def aws_env(s3) -> None:
    """Tests run with the fake credentials the module's server was started with."""
    assert os.environ["AWS_ACCESS_KEY_ID"] == "testing"


def add_s3_remote(cli, archive: Archive, endpoint: str, bucket: str, *extra: str) -> None:
    result = cli("-C", archive.root, "remote", "add", "s3", f"s3://{bucket}/archive",
                 "--endpoint-url", endpoint, "--default", *extra)
    assert result.code == 0, result.err


def test_push_clone_pull_identical_bytes(archive, tmp_path, s3, bucket, cli) -> None:
    first, second = two_snapshots(archive, tmp_path)
    add_s3_remote(cli, archive, s3.endpoint, bucket)
    result = cli("-C", archive.root, "push")
    assert result.code == 0, result.err
    keys = {o["Key"] for o in s3.client().list_objects_v2(Bucket=bucket)["Contents"]}
    expected = {f"archive/files/md5/{obj[:2]}/{obj[2:]}"
                for sid in (first, second) for obj in objects_of(archive, sid).values()}
    assert keys == expected
    assert not (archive.root / ".dvc" / "config.local").exists()
    b_dir = tmp_path / "b"
    result = cli("clone", archive.root, b_dir, "--pull", "ds", "--confirm-remotes")
    assert result.code == 0, result.err
    b = Archive(b_dir)
    for sid in (first, second):
        for rel in archive.snapshot(f"ds@{sid}").record["files"]:
            assert (b.store.locate("ds", sid, rel).read_bytes()
                    == archive.store.locate("ds", sid, rel).read_bytes())
    assert rem.verify_remote(b, "s3") == []


def test_tampered_s3_object_is_detected_on_pull(archive, tmp_path, s3, bucket, cli) -> None:
    first, _ = two_snapshots(archive, tmp_path)
    add_s3_remote(cli, archive, s3.endpoint, bucket)
    assert cli("-C", archive.root, "push", f"ds@{first[:10]}").code == 0
    objs = objects_of(archive, first)
    table = next(rel for rel in objs if rel.startswith("tables/"))
    key = f"archive/files/md5/{objs[table][:2]}/{objs[table][2:]}"
    s3.client().put_object(Bucket=bucket, Key=key, Body=b"forged")
    problems = rem.verify_remote(archive, "s3")
    assert [(p["file"], p["problem"].split(":")[0]) for p in problems
            if p["snapshot"] == first] == [(table, "corrupt")]
    assert {p["problem"] for p in problems if p["snapshot"] != first} == {"missing"}
    b_dir = tmp_path / "b"
    assert cli("clone", archive.root, b_dir, "--confirm-remotes").code == 0
    result = cli("-C", b_dir, "pull", f"ds@{first[:10]}")
    assert result.code == 3, result.err
    assert len(result.err.strip().splitlines()) == 1
    assert f"{table}: pulled data has sha256" in result.err
    assert not Archive(b_dir).store.cache_path(objs[table]).exists()


def test_object_lock_delete_marker_and_restore(archive, tmp_path, s3, bucket, cli) -> None:
    first, second = two_snapshots(archive, tmp_path)
    add_s3_remote(cli, archive, s3.endpoint, bucket)
    result = cli("-C", archive.root, "remote", "lock", "s3", "--days", "30")
    assert result.code == 0, result.err
    assert 'mode = "compliance"' in (archive.root / "atdarchive.toml").read_text()
    result = cli("-C", archive.root, "push")
    assert result.code == 0, result.err
    events = [e for e in archive.ledger("ds").events() if e["type"] == "remote_copy"]
    assert {e["snapshot"] for e in events} == {first, second}
    copy = next(e for e in events if e["snapshot"] == first)
    assert set(copy["objects"]) == set(objects_of(archive, first))
    client = s3.client()
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(days=29)
    for info in copy["objects"].values():
        head = client.head_object(Bucket=bucket, Key=info["key"], VersionId=info["version_id"])
        assert head["ObjectLockMode"] == "COMPLIANCE"
        assert head["ObjectLockRetainUntilDate"] > soon
    assert rem.verify_remote(archive, "s3") == []
    # a second push records nothing new (git log unchanged)
    before = archive_state(archive.root)
    assert cli("-C", archive.root, "push").code == 0
    assert archive_state(archive.root) == before

    table = next(rel for rel in copy["objects"] if rel.startswith("tables/"))
    info = copy["objects"][table]
    with pytest.raises(ClientError, match="AccessDenied"):
        client.delete_object(Bucket=bucket, Key=info["key"], VersionId=info["version_id"])
    client.delete_object(Bucket=bucket, Key=info["key"])  # what `dvc gc --cloud` does
    problems = rem.verify_remote(archive, "s3")
    assert [(p["snapshot"], p["file"]) for p in problems] == [(first, table)]
    assert "delete marker" in problems[0]["problem"]

    b_dir = tmp_path / "b"
    result = cli("clone", archive.root, b_dir, "--pull", f"ds@{first[:10]}",
                 "--confirm-remotes")
    assert result.code == 0, result.err
    b = Archive(b_dir)
    for rel in archive.snapshot(f"ds@{first}").record["files"]:
        assert (b.store.locate("ds", first, rel).read_bytes()
                == archive.store.locate("ds", first, rel).read_bytes())


def test_overwritten_locked_object_is_restored_from_recorded_version(archive, tmp_path, s3,
                                                                     bucket, cli) -> None:
    first, _ = two_snapshots(archive, tmp_path)
    add_s3_remote(cli, archive, s3.endpoint, bucket)
    assert cli("-C", archive.root, "remote", "lock", "s3", "--days", "1").code == 0
    assert cli("-C", archive.root, "push", f"ds@{first[:10]}").code == 0
    objs = objects_of(archive, first)
    original = next(rel for rel in objs if rel.startswith("original"))
    key = f"archive/files/md5/{objs[original][:2]}/{objs[original][2:]}"
    s3.client().put_object(Bucket=bucket, Key=key, Body=b"forged,data\n")
    problems = rem.verify_remote(archive, "s3")
    assert [p["problem"].split(":")[0] for p in problems
            if p["snapshot"] == first] == ["overwritten"]
    b_dir = tmp_path / "b"
    assert cli("clone", archive.root, b_dir, "--confirm-remotes").code == 0
    result = cli("-C", b_dir, "pull", f"ds@{first[:10]}")
    assert result.code == 0, result.err
    assert "restored the recorded locked version" in result.err
    b = Archive(b_dir)
    assert (b.store.locate("ds", first, original).read_bytes()
            == archive.store.locate("ds", first, original).read_bytes())


def test_unreachable_endpoint_fails_fast_in_one_line(archive, tmp_path, s3, cli) -> None:
    two_snapshots(archive, tmp_path)
    closed = f"http://127.0.0.1:{s3server.free_port()}"
    add_s3_remote(cli, archive, closed, "atd-nowhere")
    before = archive_state(archive.root)
    result = cli("-C", archive.root, "push")
    assert result.code == 2
    assert len(result.err.strip().splitlines()) == 1, result.err
    assert result.err.startswith("error: push to remote s3") and "connect" in result.err
    assert archive_state(archive.root) == before
    b_dir = tmp_path / "b"
    assert cli("clone", archive.root, b_dir, "--confirm-remotes").code == 0
    b_before = archive_state(b_dir)
    result = cli("-C", b_dir, "pull")
    assert result.code == 2 and "connect" in result.err
    assert len(result.err.strip().splitlines()) == 1, result.err
    assert archive_state(b_dir) == b_before


def test_refused_credentials_fail_in_one_line(archive, tmp_path, s3, bucket, cli) -> None:
    two_snapshots(archive, tmp_path)
    add_s3_remote(cli, archive, s3.endpoint, bucket)
    before = archive_state(archive.root)
    s3server.enforce_auth(s3, True)
    try:
        result = cli("-C", archive.root, "push")
    finally:
        s3server.enforce_auth(s3, False)
    assert result.code == 2
    assert len(result.err.strip().splitlines()) == 1, result.err
    assert "credentials" in result.err
    assert archive_state(archive.root) == before
    assert not any(True for _ in Path(archive.root / ".dvc").glob("config.local"))
