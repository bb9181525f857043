"""Lockfiles: pin a snapshot, load exactly it (fully re-hashed), fail loudly on any change."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest
from conftest import write_csv

import atdarchive
from atdarchive import Archive, AtdError, IntegrityError
from atdarchive.pinning import load, load_pinned, verify_lockfile


@pytest.fixture
def pinned(archive: Archive, tmp_path: Path, cli):
    v1 = write_csv(tmp_path / "v1.csv", [{"k": 1, "v": 10}, {"k": 2, "v": 20}])
    first = archive.commit("ds", v1, published="2024-01-01").snapshot
    v2 = write_csv(tmp_path / "v2.csv", [{"k": 1, "v": 11}, {"k": 2, "v": 20}])
    archive.commit("ds", v2, published="2024-02-01")
    lock = tmp_path / "paper" / "atdarchive.lock"
    lock.parent.mkdir()
    result = cli("-C", archive.root, "pin", f"ds@{first.short_id}", "--lock", lock)
    assert result.code == 0, result.err
    assert f"pinned ds@{first.short_id}" in result.out
    return archive, lock, first


def test_lockfile_names_ids_and_hashes(pinned) -> None:
    archive, lock, first = pinned
    data = tomllib.loads(lock.read_text())
    entry = data["datasets"]["ds"]
    assert entry["snapshot"] == first.id
    assert entry["published"] == "2024-01-01" and entry["channel"] == "public"
    assert entry["original"]["sha256"] == first.record["original"]["sha256"]
    assert entry["files"] == {rel: info["sha256"] for rel, info in
                              first.record["files"].items()}
    (name, table), = entry["tables"].items()
    assert table["fingerprint"] == first.record["tables"][name]["fingerprint"]
    assert table["sha256"] == first.record["files"][table["file"]]["sha256"]
    assert entry["archive"] == str(archive.root)  # no git remote: the path


def test_load_returns_exactly_the_pinned_snapshot(pinned, monkeypatch) -> None:
    archive, lock, first = pinned
    snap = atdarchive.load("ds", lock=lock) if hasattr(atdarchive, "load") else \
        load("ds", lock=lock)
    assert snap.id == first.id  # not latest
    assert snap.table().column("v").to_pylist() == [10, 20]
    monkeypatch.chdir(lock.parent)
    assert load("ds", archive=archive.root).id == first.id  # default lock name, cwd


def test_altered_cached_file_makes_load_fail(pinned) -> None:
    archive, lock, first = pinned
    # warm the stat-stamp cache so that only a full re-hash can catch the change
    first.table()
    rel = first.record["tables"][first.table_names[0]]["file"]
    path = archive.store.locate("ds", first.id, rel)
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    stat = path.stat()
    path.write_bytes(bytes(data))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size, same mtime
    with pytest.raises(IntegrityError) as info:
        load_pinned(archive, "ds", lock)
    message = str(info.value)
    assert rel in message and first.record["files"][rel]["sha256"] in message
    assert "does not match the pinned" in message and "\n" not in message
    problems = verify_lockfile(archive, lock)
    assert [(p["snapshot"], p["file"]) for p in problems] == [(first.id, rel)]


def test_verify_lockfile_is_clean_then_catches_an_edited_record(pinned) -> None:
    archive, lock, first = pinned
    assert verify_lockfile(archive, lock) == []
    text = lock.read_text()
    sha = first.record["original"]["sha256"]
    lock.write_text(text.replace(f'"{first.record["original"]["file"]}" = "{sha}"',
                                 f'"{first.record["original"]["file"]}" = "{"0" * 64}"'))
    problems = verify_lockfile(archive, lock)
    assert [p["file"] for p in problems] == [first.record["original"]["file"]]
    assert "the record says" in problems[0]["problem"]


def test_pin_errors(pinned, cli, tmp_path) -> None:
    archive, lock, _ = pinned
    with pytest.raises(AtdError, match="not pinned"):
        load_pinned(archive, "other", lock)
    with pytest.raises(AtdError, match="no such lockfile"):
        load_pinned(archive, "ds", tmp_path / "missing.lock")
    result = cli("-C", archive.root, "pin", "ds@nothere", "--lock", lock)
    assert result.code == 2
