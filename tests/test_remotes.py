"""Remotes on a local directory: push, clone, pull one snapshot only, verify, tamper."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import archive_state, write_csv

from atdarchive import Archive, AtdError, IntegrityError
from atdarchive import remotes as rem


def two_snapshots(archive: Archive, tmp_path: Path) -> tuple[str, str]:
    """Two releases with no file in common (so their cache objects are distinct)."""
    a = write_csv(tmp_path / "a.csv", [{"facility": "A", "beds": 10}, {"facility": "B",
                                                                         "beds": 20}])
    first = archive.commit("ds", a, published="2024-01-01").snapshot.id
    b = write_csv(tmp_path / "b.csv", [{"facility": "A", "beds": 11}, {"facility": "C",
                                                                         "beds": 30}])
    second = archive.commit("ds", b, published="2024-02-01").snapshot.id
    return first, second


def objects_of(archive: Archive, snapshot_id: str) -> dict[str, str]:
    return rem.snapshot_objects(archive, "ds", snapshot_id)


@pytest.fixture
def pushed(archive: Archive, tmp_path: Path, cli):
    """Archive A with two snapshots pushed to a directory remote."""
    first, second = two_snapshots(archive, tmp_path)
    store = tmp_path / "remote-store"
    result = cli("-C", archive.root, "remote", "add", "shared", store, "--default")
    assert result.code == 0, result.err
    result = cli("-C", archive.root, "push")
    assert result.code == 0, result.err
    assert "pushed 2 snapshot(s)" in result.out
    return archive, store, first, second


def test_remote_config_is_committed_and_listed(pushed, cli) -> None:
    archive, store, *_ = pushed
    committed = subprocess.run(["git", "-C", archive.root, "show", "HEAD~0:.dvc/config"],
                               capture_output=True, text=True).stdout
    assert 'remote "shared"' in committed and str(store) in committed
    assert subprocess.run(["git", "-C", archive.root, "status", "--porcelain", ".dvc"],
                          capture_output=True, text=True).stdout == ""
    listing = json.loads(cli("-C", archive.root, "remote", "list", "--json").out)
    assert listing == [{"name": "shared", "url": str(store), "kind": "local",
                        "endpoint_url": None, "default": True, "lock": None,
                            "waiting": [], "problem": None}]
    again = cli("-C", archive.root, "remote", "add", "shared", store)
    assert again.code == 2 and "already exists" in again.err


def test_clone_pulls_only_the_asked_snapshot(pushed, tmp_path: Path, cli) -> None:
    archive, _, first, second = pushed
    b_dir = tmp_path / "b"
    result = cli("clone", archive.root, b_dir, "--pull", f"ds@{first[:10]}", "--confirm-remotes")
    assert result.code == 0, result.err
    b = Archive(b_dir)
    assert [e.id for e in b.history("ds").entries] == [first, second]  # the whole ledger
    only_second = set(objects_of(archive, second).values()) - set(
        objects_of(archive, first).values())
    assert only_second
    for obj in only_second:
        assert not b.store.cache_path(obj).exists(), obj
    assert not b.store.snapshot_dir("ds", second).exists()
    for rel in archive.snapshot(f"ds@{first}").record["files"]:
        assert (b.store.locate("ds", first, rel).read_bytes()
                == archive.store.locate("ds", first, rel).read_bytes())
    assert b.snapshot(f"ds@{first[:10]}").table().num_rows == 2
    with pytest.raises(IntegrityError, match="atdarchive pull ds@"):
        b.snapshot(f"ds@{second[:10]}").table()
    # the rest comes on request, by dataset
    result = cli("-C", b_dir, "pull", "ds")
    assert result.code == 0, result.err
    assert b.snapshot(f"ds@{second[:10]}").table().num_rows == 2


def test_verify_remote_reports_missing_and_corrupt(pushed) -> None:
    archive, store, first, second = pushed
    assert rem.verify_remote(archive, "shared") == []
    objs = objects_of(archive, first)
    original = next(rel for rel in objs if rel.startswith("original"))
    gone = store / "files" / "md5" / objs[original][:2] / objs[original][2:]
    gone.unlink()
    table = next(rel for rel in objs if rel.startswith("tables/"))
    bad = store / "files" / "md5" / objs[table][:2] / objs[table][2:]
    os.chmod(bad, 0o644)
    bad.write_bytes(b"not parquet")
    problems = rem.verify_remote(archive, "shared")
    assert {(p["snapshot"], p["file"], p["problem"].split(":")[0]) for p in problems} == {
        (first, original, "missing"), (first, table, "corrupt")}


def test_tampered_remote_copy_fails_pull_and_leaves_no_bad_data(pushed, tmp_path, cli) -> None:
    archive, store, first, _ = pushed
    objs = objects_of(archive, first)
    table = next(rel for rel in objs if rel.startswith("tables/"))
    bad = store / "files" / "md5" / objs[table][:2] / objs[table][2:]
    os.chmod(bad, 0o644)
    bad.write_bytes(b"PAR1 forged bytes PAR1")
    b_dir = tmp_path / "b"
    assert cli("clone", archive.root, b_dir, "--confirm-remotes").code == 0
    result = cli("-C", b_dir, "pull", f"ds@{first[:10]}")
    assert result.code == 3
    assert len(result.err.strip().splitlines()) == 1
    assert table in result.err and "sha256" in result.err
    assert archive.snapshot(f"ds@{first}").record["files"][table]["sha256"] in result.err
    b = Archive(b_dir)
    assert not b.store.cache_path(objs[table]).exists()
    assert not (b.store.snapshot_dir("ds", first) / table).exists()


def test_push_errors_are_one_line_and_change_nothing(archive: Archive, tmp_path, cli) -> None:
    two_snapshots(archive, tmp_path)
    before = archive_state(archive.root)
    result = cli("-C", archive.root, "push")
    assert result.code == 2 and "no remote" in result.err
    assert len(result.err.strip().splitlines()) == 1
    result = cli("-C", archive.root, "push", "--remote", "nowhere")
    assert result.code == 2 and "no remote named 'nowhere'" in result.err
    assert archive_state(archive.root) == before
    rem.add_remote(archive, "dir", str(tmp_path / "r"))
    with pytest.raises(AtdError, match="not S3"):
        rem.lock_remote(archive, "dir", 30)


def test_push_sends_retracted_and_evidence_only_snapshots_too(archive: Archive, tmp_path,
                                                              cli) -> None:
    """Every snapshot the ledger holds is pushed, so a full clone verifies."""
    first, second = two_snapshots(archive, tmp_path)
    assert cli("-C", archive.root, "retract", f"ds@{second[:10]}", "--reason", "draft").code == 0
    empty = tmp_path / "served-empty-2024-03-01.csv"
    empty.write_bytes(b"")
    assert cli("-C", archive.root, "commit", "ds", empty, "--keep-unparsed").code == 0
    assert cli("-C", archive.root, "remote", "add", "shared", tmp_path / "store",
               "--default").code == 0
    pushed = cli("-C", archive.root, "push")
    assert pushed.code == 0 and "pushed 3 snapshot(s)" in pushed.out, pushed.out
    clone = tmp_path / "clone"
    done = cli("clone", archive.root, clone, "--pull", "ds", "--confirm-remotes")
    assert done.code == 0, done.err
    verified = cli("-C", clone, "verify", "ds")
    assert verified.code == 0, verified.err
