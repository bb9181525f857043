"""Archive core: init, commit, duplicates, refs, backfill order, export, git/DVC consistency."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import write_csv, write_parquet

from atdarchive import Archive, AtdError, RefError
from atdarchive.store import table_fingerprint


def rows(n: int, bump: int = 0) -> list[dict]:
    return [{"agency": f"A{i}", "month": "Oct", "count": 100 + i + (bump if i == 0 else 0)}
            for i in range(n)]


def git_log(root: Path) -> list[str]:
    out = subprocess.run(["git", "-C", str(root), "log", "--format=%s"],
                         capture_output=True, text=True, check=True).stdout
    return out.splitlines()


def test_init_is_idempotent(tmp_path: Path) -> None:
    first = Archive.init(tmp_path / "a")
    commits = git_log(first.root)
    again = Archive.init(tmp_path / "a")
    assert again.root == first.root
    assert git_log(first.root) == commits == ["atdarchive: initialise archive"]
    assert (first.root / ".dvc" / "config").exists()
    assert (first.root / "datasets").is_dir()
    assert ".atdarchive/" in (first.root / ".gitignore").read_text()


def test_init_existing_git_repo_keeps_history(tmp_path: Path) -> None:
    root = tmp_path / "r"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / "x.txt").write_text("x")
    subprocess.run(["git", "-C", str(root), "add", "x.txt"], check=True)
    subprocess.run(["git", "-C", str(root), "commit", "-qm", "mine"], check=True)
    Archive.init(root)
    assert git_log(root) == ["atdarchive: initialise archive", "mine"]


def test_commit_csv_and_parquet(archive: Archive, tmp_path: Path) -> None:
    csv = write_csv(tmp_path / "r1.csv", rows(5))
    first = archive.commit("ds", csv, published="2024-01-31", period="2024-01")
    snap = first.snapshot
    table = snap.table()
    assert table.column("count").to_pylist() == [100, 101, 102, 103, 104]
    assert pa.types.is_integer(table.schema.field("count").type)
    assert snap.record["original"]["name"] == "r1.csv"
    assert snap.original_path.read_bytes() == csv.read_bytes()
    assert first.parent is None and first.summary == {"against": None}

    pq_file = write_parquet(tmp_path / "r2.parquet", pa.Table.from_pylist(rows(6, bump=7)))
    second = archive.commit("ds", pq_file, published="2024-02-29")
    assert second.parent is not None and second.parent.id == snap.id
    assert second.summary["rows_added"] == 1
    assert second.summary["cells_changed"] == 1
    assert archive.snapshot("ds@latest").table().num_rows == 6


def test_duplicate_refused_and_republication_flagged(archive: Archive, tmp_path: Path,
                                                     cli) -> None:
    csv = write_csv(tmp_path / "r.csv", rows(3))
    first = archive.commit("ds", csv, published="2024-01-31")
    with pytest.raises(AtdError, match=f"already archived as ds@{first.snapshot.short_id}"):
        archive.commit("ds", csv, published="2024-01-31")
    again = archive.commit("ds", csv, published="2024-03-31")
    assert again.identical_to == [{"id": first.snapshot.id, "published": "2024-01-31",
                                   "channel": "public"}]
    assert again.summary["identical"] is True
    result = cli("-C", archive.root, "log", "ds", "--oneline")
    assert result.code == 0
    assert "!" in result.out.splitlines()[0]
    result = cli("-C", archive.root, "log", "ds")
    assert f"identical to {first.snapshot.short_id} published 2024-01-31" in result.out


def test_every_ref_form(archive: Archive, tmp_path: Path) -> None:
    ids = []
    for i, day in enumerate(["2024-01-10", "2024-02-10", "2024-03-10"]):
        ids.append(archive.commit("ds", write_csv(tmp_path / f"{i}.csv", rows(3, bump=i)),
                                  published=day).snapshot.id)
    foia = archive.commit("ds", write_csv(tmp_path / "f.csv", rows(4)),
                          published="2024-02-15", channel="foia").snapshot.id
    archive.tag(f"ds@{ids[0][:8]}", "paper-2024")
    resolve = lambda ref: archive.snapshot(ref).id  # noqa: E731
    assert resolve("ds@latest") == resolve("ds") == ids[2]
    assert resolve("ds@latest~1") == ids[1]
    assert resolve("ds@latest~2") == ids[0]
    assert resolve(f"ds@{ids[1][:7]}") == ids[1]
    assert resolve("ds@paper-2024") == ids[0]
    assert resolve("ds@2024-02-20") == ids[1]   # in force that day
    assert resolve("ds@2024-02-10") == ids[1]   # published that day
    assert resolve("ds@2024-02-09") == ids[0]
    assert resolve("ds@foia:latest") == foia
    assert resolve("ds@public:latest~1") == ids[1]
    with pytest.raises(RefError, match="nothing was published by 2023-12-31"):
        resolve("ds@2023-12-31")
    with pytest.raises(RefError, match="only 3 release"):
        resolve("ds@latest~3")
    with pytest.raises(RefError, match="unknown ref; recent snapshots: .*tags: paper-2024"):
        resolve("ds@nosuchtag")
    with pytest.raises(RefError, match="no channel 'press'"):
        resolve("ds@press:latest")


def test_ambiguous_prefix_lists_candidates() -> None:
    from atdarchive.history import History

    def event(seq: int, snapshot_id: str, day: str) -> dict:
        record = {"id": snapshot_id, "channel": "public", "published": day,
                  "original": {"sha256": snapshot_id}}
        return {"type": "snapshot", "seq": seq, "record": record}

    history = History("ds", [event(1, "abcd1" + "0" * 59, "2024-01-01"),
                             event(2, "abcd2" + "0" * 59, "2024-02-01")])
    with pytest.raises(RefError, match=r"ambiguous id prefix; candidates: abcd10.*abcd20"):
        history.resolve("abcd")
    assert history.resolve("abcd2").id.startswith("abcd2")


def test_backfill_gets_publication_order_parents(archive: Archive, tmp_path: Path,
                                                 cli) -> None:
    jan = archive.commit("ds", write_csv(tmp_path / "jan.csv", rows(3)),
                         published="2024-01-31").snapshot
    mar = archive.commit("ds", write_csv(tmp_path / "mar.csv", rows(3, bump=5)),
                         published="2024-03-31").snapshot
    assert archive.parent(mar).id == jan.id
    ledger_before = archive.ledger("ds").path.read_bytes()
    feb = archive.commit("ds", write_csv(tmp_path / "feb.csv", rows(3, bump=2)),
                         published="2024-02-29", message="recovered from a web archive")
    # the backfilled release slots in by date; the ledger only grew
    assert feb.parent.id == jan.id
    assert archive.ledger("ds").path.read_bytes().startswith(ledger_before)
    assert archive.parent(archive.snapshot(f"ds@{mar.id}")).id == feb.snapshot.id
    log = archive.log("ds")
    assert [r["id"] for r in log] == [mar.id, feb.snapshot.id, jan.id]
    assert [r["parent"] for r in log] == [feb.snapshot.id, jan.id, None]
    # mar's summary is recomputed against its new parent: 102+5 vs 102+2 -> one cell
    assert log[0]["summary"]["against"] == feb.snapshot.id
    assert log[0]["summary"]["cells_changed"] == 1
    result = cli("-C", archive.root, "log", "ds", "--json")
    data = json.loads(result.out)
    assert [d["published"] for d in data] == ["2024-03-31", "2024-02-29", "2024-01-31"]
    assert data[1]["message"] == "recovered from a web archive"


def test_same_day_releases_keep_commit_order(archive: Archive, tmp_path: Path) -> None:
    a = archive.commit("ds", write_csv(tmp_path / "a.csv", rows(2)),
                       published="2024-05-01T09:00:00").snapshot
    b = archive.commit("ds", write_csv(tmp_path / "b.csv", rows(2, bump=1)),
                       published="2024-05-01T17:30:00").snapshot
    c = archive.commit("ds", write_csv(tmp_path / "c.csv", rows(2, bump=2)),
                       published="2024-05-01").snapshot
    order = [r["id"] for r in archive.log("ds")]
    assert order == [b.id, a.id, c.id]   # a bare date sorts before times of that day


def test_export_round_trips_exact_table(archive: Archive, tmp_path: Path, cli) -> None:
    table = pa.table({
        "key": ["a", "b", "ü"], "n": pa.array([1, None, 3], pa.int64()),
        "x": [1.5, float("nan"), None], "d": pa.array([19000, 19001, None], pa.date32()),
    })
    archive.commit("ds", write_parquet(tmp_path / "in.parquet", table), published="2024-01-01")
    out = tmp_path / "out.parquet"
    assert cli("-C", archive.root, "export", "ds@latest", "-o", out).code == 0
    exported = pq.read_table(out)
    assert exported.schema == table.schema
    assert table_fingerprint(exported) == table_fingerprint(table)  # bit-exact, NaN included
    csv_out = tmp_path / "out.csv"
    assert cli("-C", archive.root, "export", "ds", "-o", csv_out).code == 0
    assert csv_out.read_text().splitlines()[0] == '"key","n","x","d"'
    orig = tmp_path / "orig.bin"
    assert cli("-C", archive.root, "export", "ds", "--original", "-o", orig).code == 0
    assert orig.read_bytes() == (tmp_path / "in.parquet").read_bytes()


def test_git_log_mirrors_ledger_and_dvc_is_clean(archive: Archive, tmp_path: Path) -> None:
    before = git_log(archive.root)
    for i in range(3):
        archive.commit("ds", write_csv(tmp_path / f"{i}.csv", rows(2, bump=i)),
                       published=f"2024-0{i + 1}-01")
    snapshot_commits = git_log(archive.root)[: len(git_log(archive.root)) - len(before)]
    assert len(snapshot_commits) == 3
    assert all(s.startswith("ds: snapshot ") for s in snapshot_commits)
    status = subprocess.run(["git", "-C", str(archive.root), "status", "--porcelain"],
                            capture_output=True, text=True).stdout
    assert status == ""
    from dvc.repo import Repo

    with Repo(str(archive.root)) as repo:
        assert repo.status() == {}
    body = subprocess.run(["git", "-C", str(archive.root), "log", "-1", "--format=%B"],
                          capture_output=True, text=True).stdout
    assert f"atdarchive-ledger-head: {archive.ledger('ds').head()}" in body


def test_read_commands_do_not_import_dvc(archive: Archive, tmp_path: Path) -> None:
    archive.commit("ds", write_csv(tmp_path / "a.csv", rows(3)), published="2024-01-01")
    archive.commit("ds", write_csv(tmp_path / "b.csv", rows(3, bump=1)), published="2024-02-01")
    out = tmp_path / "x.csv"
    script = (
        "import sys\n"
        "from atdarchive.cli import main\n"
        "for argv in (['log'], ['log','--oneline'], ['show','ds@latest'], "
        f"['tables','ds'], ['export','ds@latest~1','-o',{str(out)!r}], ['tags'], "
        "['dataset','list']):\n"
        "    try:\n"
        "        main(['-C', sys.argv[1], *argv])\n"
        "    except SystemExit as e:\n"
        "        assert not e.code, (argv, e.code)\n"
        "assert not [m for m in sys.modules if m == 'dvc' or m.startswith('dvc.')], 'dvc loaded'\n"
        "print('NO-DVC-OK', file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", script, str(archive.root)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "NO-DVC-OK" in result.stderr
    assert out.read_text().count("\n") == 4


def test_reads_fall_back_to_dvc_cache(archive: Archive, tmp_path: Path) -> None:
    import shutil

    snap = archive.commit("ds", write_csv(tmp_path / "a.csv", rows(3)),
                          published="2024-01-01").snapshot
    shutil.rmtree(archive.store.snapshot_dir("ds", snap.id))  # workspace copy gone
    fresh = Archive(archive.root)
    assert fresh.snapshot("ds@latest").table().num_rows == 3
    assert fresh.snapshot("ds@latest").original_path.is_relative_to(archive.root / ".dvc")


def test_show_and_tables_cli(archive: Archive, tmp_path: Path, cli) -> None:
    snap = archive.commit("ds", write_csv(tmp_path / "a.csv", rows(3)), published="2024-01-01",
                          message="first", period="FY24").snapshot
    result = cli("-C", archive.root, "show", "ds@latest")
    assert result.code == 0
    assert f"snapshot {snap.id}" in result.out
    assert "period:    FY24" in result.out
    assert snap.record["original"]["sha256"] in result.out
    assert max(len(line) for line in result.out.splitlines()) <= 80
    data = json.loads(cli("-C", archive.root, "show", "ds@latest", "--json").out)
    assert data["tables"]["data"]["rows"] == 3
    assert data["original"]["sha256"] == snap.record["original"]["sha256"]


def test_tags(archive: Archive, tmp_path: Path, cli) -> None:
    a = archive.commit("ds", write_csv(tmp_path / "a.csv", rows(2)), published="2024-01-01")
    b = archive.commit("ds", write_csv(tmp_path / "b.csv", rows(2, 1)), published="2024-02-01")
    assert cli("-C", archive.root, "tag", "ds@latest~1", "v1").code == 0
    moved = cli("-C", archive.root, "tag", "ds@latest", "v1")
    assert moved.code != 0 and "already names" in moved.err
    assert cli("-C", archive.root, "tag", "ds@latest", "v1", "--force").code == 0
    listing = json.loads(cli("-C", archive.root, "tags", "--json").out)
    assert listing == [{"dataset": "ds", "tag": "v1", "id": b.snapshot.id,
                        "short_id": b.snapshot.short_id, "published": "2024-02-01",
                        "channel": "public"}]
    events = [e for e in archive.ledger("ds").events() if e["type"] == "tag"]
    assert [e["target"] for e in events] == [a.snapshot.id, b.snapshot.id]
    assert events[1]["moved_from"] == a.snapshot.id
    bad = cli("-C", archive.root, "tag", "ds@latest", "../x")
    assert bad.code != 0 and "invalid tag name" in bad.err


def test_unknown_table_error_suggests_the_table_meant() -> None:
    from atdarchive.snapshot import choices

    names = ["atd__active_population", "detention__ice_initial_book_ins_by_arresting_agency",
             "detention__ice_removals", "facilities__list"]
    text = choices("detention__ice_initial_bookins", names)
    assert text.startswith("did you mean 'detention__ice_initial_book_ins_by_arresting_agency'?")
    assert "… (4 in all" in text and "facilities__list" not in text  # a short list
    assert not choices("zzz", names[:2]).startswith("did you mean")


def test_a_commit_never_takes_what_the_user_staged(archive: Archive, tmp_path: Path) -> None:
    archive.commit("ds", write_csv(tmp_path / "a.csv", [{"k": 1}]), published="2024-01-01")
    notes = archive.root / "NOTES.md"
    notes.write_text("my own notes\n")
    subprocess.run(["git", "-C", str(archive.root), "add", "NOTES.md"], check=True)
    archive.tag("ds@latest", "v1")
    archive.commit("ds", write_csv(tmp_path / "b.csv", [{"k": 2}]), published="2024-02-01")
    status = subprocess.run(["git", "-C", str(archive.root), "status", "--porcelain"],
                            capture_output=True, text=True, check=True).stdout
    assert status == "A  NOTES.md\n"  # still staged, in no atdarchive commit
    shown = subprocess.run(["git", "-C", str(archive.root), "log", "--name-only",
                            "--format=%s"], capture_output=True, text=True, check=True).stdout
    assert "NOTES.md" not in shown
