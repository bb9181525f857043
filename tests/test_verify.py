"""`verify`: every kind of tampering is found (and caught on read); crash leftovers are notes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import ICE_RELEASES, ice_published, write_csv

from atdarchive import Archive
from atdarchive.errors import IntegrityError
from atdarchive.ledger import GENESIS
from atdarchive.util import canonical_json, sha256_bytes
from atdarchive.verify import ERROR, NOTE, verify


def errors(problems):
    return [p for p in problems if p.severity == ERROR]


def notes(problems):
    return [p for p in problems if p.severity == NOTE]


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True,
                          text=True).stdout


@pytest.fixture
def filled(archive: Archive, tmp_path: Path) -> Archive:
    for i in range(3):
        archive.commit("ds", write_csv(tmp_path / f"r{i}.csv",
                                       [{"site": "A", "count": i}, {"site": "B", "count": 10 + i}]),
                       published=f"2024-0{i + 1}-01")
    archive.tag("ds@latest", "v3")
    return Archive(archive.root)


def small_workbook(path: Path) -> Path:
    """A two-sheet workbook with a title, a table and a note (exercises the cell layer)."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "Detention FY24"
    sheet.append(["Detention statistics as of 01/15/2024"])
    sheet.append([])
    sheet.append(["Facility", "State", "Population"])
    for i in range(5):
        sheet.append([f"Facility {i}", "TX", 100 + i])
    sheet.append([])
    sheet.append(["* Data from ICE IIDS"])
    other = book.create_sheet("Removals")
    other.append(["Country", "Removals"])
    other.append(["Mexico", 1200])
    other.append(["Guatemala", 800])
    book.save(path)
    return path


def first(archive: Archive):
    return archive.history("ds").entries[0]


def workspace_file(archive: Archive, snapshot_id: str, rel: str) -> Path:
    return archive.store.snapshot_dir("ds", snapshot_id) / rel


def cache_file(archive: Archive, snapshot_id: str, rel: str) -> Path:
    return archive.store.cache_path(archive.store.directory_manifest("ds", snapshot_id)[rel])


def flip_byte(path: Path, *, keep_mtime: bool = True) -> None:
    """Change one byte, keep size (and mtime): only a re-hash can notice."""
    st = path.stat()
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    if keep_mtime:
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


# --------------------------------------------------------------------------- clean

def test_clean_archive_verifies_including_xlsx(archive: Archive, tmp_path: Path, cli) -> None:
    archive.commit("ds", write_csv(tmp_path / "a.csv", [{"x": 1, "y": "z"}]),
                   published="2024-01-01")
    archive.add_dataset("book")
    archive.commit("book", small_workbook(tmp_path / "book.xlsx"), published="2024-02-01")
    archive.add_dataset("ice")
    archive.commit("ice", ICE_RELEASES[0], published=ice_published(ICE_RELEASES[0]))
    assert verify(archive) == []
    result = cli("-C", archive.root, "verify")
    assert result.code == 0, result.out + result.err
    assert "ok: 1 snapshot(s)" in cli("-C", archive.root, "verify", "ds").out
    data = json.loads(cli("-C", archive.root, "verify", "--json", "--fast").out)
    assert data == {"ok": True, "snapshots": 3, "fast": True, "problems": []}


# --------------------------------------------------------------------------- tampering

def test_edited_ledger_line_is_detected(filled: Archive, cli) -> None:
    path = filled.ledger("ds").path
    lines = path.read_bytes().splitlines(keepends=True)
    event = json.loads(lines[0])
    event["record"]["message"] = "quietly revised"
    lines[0] = canonical_json(event).encode() + b"\n"
    path.write_bytes(b"".join(lines))
    problems = errors(verify(filled, fast=True))
    texts = [p.problem for p in problems]
    assert any("not the sha256 of its record" in t for t in texts)
    assert any("hash chain broken" in t and "line 2" in t for t in texts)
    assert any("differs from its committed version" in t for t in texts)
    assert any(p.snapshot == event["record"]["id"] for p in problems)
    result = cli("-C", filled.root, "verify")
    assert result.code == 3
    assert "verify FAILED" in result.out


def test_forged_ledger_rechained_and_committed_is_caught_by_git_history(filled: Archive) -> None:
    """A forger who re-computes ids and the chain and commits with plain git: history says no."""
    path = filled.ledger("ds").path
    events = [json.loads(line) for line in path.read_bytes().splitlines()]
    prev = GENESIS
    out = []
    for event in events:
        if event["type"] == "snapshot":
            record = event["record"]
            record.pop("id")
            record["message"] = "forged"
            record["id"] = sha256_bytes(canonical_json(record).encode())
        if event["type"] == "tag":
            event["target"] = out[-1]["record"]["id"]
        event["prev"] = prev
        line = canonical_json(event).encode()
        prev = sha256_bytes(line)
        out.append(event)
    path.write_bytes(b"".join(canonical_json(e).encode() + b"\n" for e in out))
    git(filled.root, "commit", "-q", "-m", "tidy", "--", str(path.relative_to(filled.root)))
    texts = [p.problem for p in errors(verify(filled, fast=True))]
    assert not any("chain" in t for t in texts)  # the forgery is internally consistent
    assert any("rewrites ledger history" in t for t in texts)
    assert any("has no atdarchive-ledger-head" in t for t in texts)
    assert any("no ledger line" in t for t in texts)  # the old pointers are orphans now


def test_removed_last_ledger_line_is_detected(filled: Archive) -> None:
    path = filled.ledger("ds").path
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:-1]))
    assert any("differs from its committed version" in p.problem
               for p in errors(verify(filled, fast=True)))


def test_edited_parquet_is_detected_by_verify_and_on_read(filled: Archive) -> None:
    entry = first(filled)
    rel = entry.record["tables"]["data"]["file"]
    snapshot = filled.snapshot(f"ds@{entry.id}")
    snapshot.table()  # warms the stat-stamp cache
    flip_byte(workspace_file(filled, entry.id, rel), keep_mtime=False)  # an ordinary edit
    found = errors(verify(filled, fast=True))
    assert [(p.snapshot, p.file) for p in found] == [(entry.id, rel)]
    assert "file altered" in found[0].problem
    fresh = Archive(filled.root)
    with pytest.raises(IntegrityError, match="does not match the record"):
        fresh.snapshot(f"ds@{entry.id}").table()


def test_edited_cache_copy_is_detected(filled: Archive) -> None:
    entry = first(filled)
    rel = entry.record["tables"]["data"]["file"]
    flip_byte(cache_file(filled, entry.id, rel))
    found = errors(verify(filled, fast=True))
    assert any(p.snapshot == entry.id and p.file == rel and "DVC cache" in p.problem
               for p in found)
    # a read that has only the cache (workspace copy gone) refuses the altered file
    shutil.rmtree(filled.store.snapshot_dir("ds", entry.id))
    with pytest.raises(IntegrityError, match="does not match the record"):
        Archive(filled.root).snapshot(f"ds@{entry.id}").table()


def test_edited_original_is_detected_by_verify_and_on_read(filled: Archive) -> None:
    entry = first(filled)
    rel = entry.record["original"]["file"]
    flip_byte(workspace_file(filled, entry.id, rel))
    found = errors(verify(filled))
    assert [(p.snapshot, p.file) for p in found] == [(entry.id, rel)]
    with pytest.raises(IntegrityError):
        _ = Archive(filled.root).snapshot(f"ds@{entry.id}").original_path


def test_edited_dvc_pointer_is_detected_and_cache_reads_fail(filled: Archive) -> None:
    entries = filled.history("ds").entries
    victim, other = entries[0], entries[1]
    pointer = filled.store.pointer("ds", victim.id)
    other_md5 = filled.store.pointer("ds", other.id).read_text().split("md5: ")[1].split()[0]
    text = pointer.read_text()
    own_md5 = text.split("md5: ")[1].split()[0]
    pointer.write_text(text.replace(own_md5, other_md5))  # points at another snapshot's data
    found = errors(verify(filled, fast=True))
    assert any(p.snapshot == victim.id and "pointer differs from its committed version"
               in p.problem for p in found)
    assert any(p.snapshot == victim.id and "md5" in p.problem for p in found)
    shutil.rmtree(filled.store.snapshot_dir("ds", victim.id))
    with pytest.raises(IntegrityError, match="does not match the record"):
        Archive(filled.root).snapshot(f"ds@{victim.id}").table()
    pointer.write_text("outs:\n- path: nothing\n")  # not a pointer at all
    with pytest.raises(IntegrityError, match="not a DVC directory pointer"):
        Archive(filled.root).snapshot(f"ds@{victim.id}").table()
    assert any("not a DVC directory pointer" in p.problem for p in errors(verify(filled)))


def test_missing_and_extra_files_are_detected(filled: Archive) -> None:
    entries = filled.history("ds").entries
    rel = entries[0].record["tables"]["data"]["file"]
    workspace_file(filled, entries[0].id, rel).unlink()
    cache_file(filled, entries[0].id, rel).unlink()
    smuggled = filled.store.snapshot_dir("ds", entries[1].id) / "tables" / "smuggled.parquet"
    smuggled.write_bytes(b"x")
    found = errors(verify(filled, fast=True))
    assert any(p.snapshot == entries[0].id and p.file == rel and "missing" in p.problem
               for p in found)
    assert any(p.snapshot == entries[1].id and p.file == "tables/smuggled.parquet"
               for p in found)


def test_verify_rehashes_and_ignores_the_stamp_cache(filled: Archive) -> None:
    """Stamps (size, mtime, inode) speed up reads; verify must not trust them."""
    entry = first(filled)
    rel = entry.record["tables"]["data"]["file"]
    path = workspace_file(filled, entry.id, rel)
    filled.snapshot(f"ds@{entry.id}").table()
    filled.store.flush_stamps()
    flip_byte(path)
    stamps = json.loads((filled.store.state / "verified.json").read_text())
    st = path.stat()
    sha = entry.record["files"][rel]["sha256"]
    stamps[str(path)] = [st.st_size, st.st_mtime_ns, st.st_ino, sha]
    (filled.store.state / "verified.json").write_text(json.dumps(stamps))  # a forged stamp
    assert [p.file for p in errors(verify(Archive(filled.root), fast=True))] == [rel]


def test_table_that_does_not_rederive_is_reported_unless_fast(filled: Archive, monkeypatch) -> None:
    import pyarrow as pa

    import atdarchive.ingest as ingest
    real = ingest.read_publication

    def skewed(*args, **kwargs):
        publication = real(*args, **kwargs)
        table = publication.tables[0]
        table.data = table.data.set_column(1, "count", pa.array([99] * table.data.num_rows))
        return publication

    monkeypatch.setattr(ingest, "read_publication", skewed)
    found = errors(verify(filled))
    assert len(found) == 3
    assert all("does not re-derive from the original" in p.problem for p in found)
    assert errors(verify(filled, fast=True)) == []


# --------------------------------------------------------------------------- crash leftovers

def test_crash_leftovers_are_notes_and_repair_cleans_them(filled: Archive, cli) -> None:
    root = filled.root
    staging = filled.store.staging / "ds-99999"
    staging.mkdir(parents=True)
    (staging / "original.csv").write_text("a\n1\n")
    orphan = "f" * 64
    (filled.store.snapshot_dir("ds", orphan) / "tables").mkdir(parents=True)
    filled.store.pointer("ds", orphan).write_text("outs:\n- md5: 0123.dir\n")
    with open(filled.store.snapshots_dir("ds") / ".gitignore", "a") as fh:
        fh.write(f"/{'e' * 64}\n")
    with open(filled.ledger("ds").path, "ab") as fh:
        fh.write(b'{"type":"snapshot","rec')  # torn append
    (root / ".git" / "index.lock").write_text("")
    (root / ".dvc" / "tmp").mkdir(exist_ok=True)
    (root / ".dvc" / "tmp" / "rwlock").write_text('{"read": {')
    before = verify(filled, fast=True)
    assert errors(before) == [], before
    kinds = " | ".join(p.problem for p in notes(before))
    for expected in ("leftover staging", "unfinished commit", ".gitignore names", "torn last line",
                     "git lock file", "DVC rwlock file is torn"):
        assert expected in kinds
    assert cli("-C", root, "verify", "--fast").code == 0
    result = cli("-C", root, "verify", "--repair")
    assert result.code == 0, result.out + result.err
    assert verify(Archive(root)) == []
    assert not staging.exists() and not filled.store.snapshot_dir("ds", orphan).exists()
    assert not (root / ".git" / "index.lock").exists()
    assert git(root, "status", "--porcelain") == ""


def test_ledgered_but_uncommitted_snapshot_is_a_note_and_repair_commits_it(filled: Archive,
                                                                            tmp_path: Path) -> None:
    root = filled.root
    result = filled.commit("ds", write_csv(tmp_path / "n.csv", [{"site": "C", "count": 7}]),
                           published="2024-05-01")
    git(root, "reset", "-q", "--soft", "HEAD~1")  # as if killed between ledger append and git
    git(root, "reset", "-q")
    found = verify(filled, fast=True)
    assert errors(found) == []
    assert any(p.snapshot == result.snapshot.id and "not yet committed" in p.problem
               for p in notes(found))
    verify(filled, repair=True)
    assert verify(Archive(root)) == []
    body = git(root, "log", "-1", "--format=%B")
    assert f"atdarchive-snapshot: {result.snapshot.id}" in body
    assert git(root, "status", "--porcelain") == ""


def test_repair_rebuilds_derived_state_and_never_touches_snapshots(filled: Archive,
                                                                   monkeypatch) -> None:
    from conftest import archive_state

    import atdarchive.derived as derived

    calls = []
    monkeypatch.setattr(derived, "rebuild", lambda archive, *_: calls.append(archive.root) or [],
                        raising=False)
    state = filled.store.state
    (state / "derived").mkdir(parents=True, exist_ok=True)
    (state / "derived" / "blame.parquet").write_bytes(b"stale")
    (state / "verified.json").write_text('{"/stale/marker": [1, 2, 3, "x"]}')
    before = archive_state(filled.root)
    found = verify(filled, repair=True)
    assert errors(found) == []
    assert calls == [filled.root]
    assert not (state / "derived" / "blame.parquet").exists()
    stamps = state / "verified.json"
    assert not stamps.exists() or "/stale/marker" not in stamps.read_text()
    assert archive_state(filled.root) == before


def test_edit_that_restores_mtime_is_still_caught_on_read(filled: Archive) -> None:
    entry = first(filled)
    rel = entry.record["tables"]["data"]["file"]
    filled.snapshot(f"ds@{entry.id}").table()  # hash-checked, stamped...
    filled.store.flush_stamps()                # ...and the stamp saved, as at process exit
    assert (filled.store.state / "verified.json").exists()
    flip_byte(workspace_file(filled, entry.id, rel), keep_mtime=True)  # same size and mtime
    with pytest.raises(IntegrityError, match="does not match the record"):
        Archive(filled.root).snapshot(f"ds@{entry.id}").table()    # ctime gave it away
