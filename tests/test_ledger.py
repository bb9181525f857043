"""The ledger's hash chain: any edit, deletion or reordering of history is detected."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import write_csv

from atdarchive import Archive
from atdarchive.ledger import GENESIS, Ledger
from atdarchive.util import canonical_json


def make_history(archive: Archive, tmp_path: Path, n: int = 4) -> Ledger:
    for i in range(n):
        archive.commit("ds", write_csv(tmp_path / f"{i}.csv", [{"k": i, "v": i * 10}]),
                       published=f"2024-0{i + 1}-01")
    return archive.ledger("ds")


def test_chain_is_intact_after_commits(archive: Archive, tmp_path: Path) -> None:
    ledger = make_history(archive, tmp_path)
    assert ledger.verify_chain() == []
    events = ledger.events()
    assert events[0]["prev"] == GENESIS
    assert [e["seq"] for e in events] == [1, 2, 3, 4]


def test_edited_line_is_detected(archive: Archive, tmp_path: Path) -> None:
    ledger = make_history(archive, tmp_path)
    lines = ledger.path.read_text().splitlines()
    event = json.loads(lines[1])
    event["record"]["published"] = "2023-12-31"   # rewrite history, keep canonical form
    lines[1] = canonical_json(event)
    ledger.path.write_text("\n".join(lines) + "\n")
    problems = ledger.verify_chain()
    assert [p.line for p in problems] == [3]
    assert "hash chain broken" in problems[0].problem


def test_deleted_line_is_detected(archive: Archive, tmp_path: Path) -> None:
    ledger = make_history(archive, tmp_path)
    lines = ledger.path.read_text().splitlines()
    del lines[2]
    ledger.path.write_text("\n".join(lines) + "\n")
    problems = ledger.verify_chain()
    assert {p.line for p in problems} == {3}
    assert any("sequence 4 where 3" in p.problem for p in problems)


def test_reordered_lines_are_detected(archive: Archive, tmp_path: Path) -> None:
    ledger = make_history(archive, tmp_path)
    lines = ledger.path.read_text().splitlines()
    lines[1], lines[2] = lines[2], lines[1]
    ledger.path.write_text("\n".join(lines) + "\n")
    assert len(ledger.verify_chain()) >= 2


def test_non_canonical_edit_is_detected(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    ledger.append({"type": "check", "n": 1})
    text = ledger.path.read_text().replace('"n":1', '"n": 1')
    ledger.path.write_text(text)
    assert any("canonical" in p.problem for p in ledger.verify_chain())


def test_torn_last_line_is_ignored_and_dropped_on_append(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    ledger.append({"type": "check", "n": 1})
    with open(ledger.path, "ab") as fh:
        fh.write(b'{"type":"check","n":2')   # a crash mid-append
    assert len(ledger.events()) == 1
    ledger.append({"type": "check", "n": 3})
    assert [e["n"] for e in ledger.events()] == [1, 3]
    assert ledger.verify_chain() == []
