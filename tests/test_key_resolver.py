"""One key per table: every command asks `keys.resolve_key` and gets one answer (issue #25).

On the six real ICE FY25 releases, with no key declared, the facilities list is
identified by Name+Address (two different CLINTON COUNTY JAILs, NY and IN, share a
name). keys, diff, blame, history, audit, vintages and revisions — run as real CLI
processes — must all match its rows by that key, and the audit must not call the two
jails one duplicated row.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import six_releases

from atdarchive import Archive
from atdarchive.keyresolver import KeyChoice, resolve_key

DATASET = "ice-detention-stats"
FACILITIES = "facilities__ice_enforcement_and_removal_operations_data"
BOOK_INS = "detention__ice_initial_book_ins_by_arresting_agency_and_month"
#: The real entry point, as installed in the venv running the tests.
CLI = Path(sys.executable).with_name("atdarchive")
EXPECTED = {FACILITIES: ["Name", "Address"], BOOK_INS: ["Agency"]}


@pytest.fixture(scope="module")
def ice(_six_releases: Path, tmp_path_factory: pytest.TempPathFactory) -> Archive:
    return six_releases(_six_releases, tmp_path_factory)


def run(archive: Archive, *args: str) -> str:
    """The real CLI in a child process, in the archive's folder; its stdout."""
    done = subprocess.run([str(CLI), *args], cwd=archive.root,
                          capture_output=True, text=True, env=os.environ.copy())
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return done.stdout


def releases(archive: Archive) -> list[str]:
    return [e.id for e in archive.history(DATASET).publication_order("public")]


def test_no_key_is_declared(ice: Archive) -> None:
    """The premise: the facilities key is chosen, not written down."""
    assert not ice.dataset(DATASET).keys.get(FACILITIES)
    choice = resolve_key(ice, DATASET, FACILITIES)
    assert isinstance(choice, KeyChoice)
    assert (choice.key, choice.source, choice.unique) == (EXPECTED[FACILITIES], "inferred",
                                                          True)
    assert choice.at == releases(ice)[-1]
    assert resolve_key(ice, DATASET, FACILITIES) is choice  # cached
    given = resolve_key(ice, DATASET, FACILITIES, given=["Name"])
    assert given.pair() == (["Name"], "given")


@pytest.mark.parametrize("table", [FACILITIES, BOOK_INS])
def test_every_command_uses_the_one_key(ice: Archive, table: str,
                                        tmp_path: Path) -> None:
    key = EXPECTED[table]
    ids = releases(ice)

    report = json.loads(run(ice, "keys", DATASET, "--table", table, "--json"))
    keys_said = report[0] if isinstance(report, list) else report["tables"][0]
    assert (keys_said["key"], keys_said["source"]) == (key, "inferred")

    # every pair of releases, as one process each for the first and last pair, is
    # matched by the same key — not one chosen per pair
    for old, new in ((ids[0], ids[1]), (ids[1], ids[2]), (ids[-2], ids[-1])):
        diff = json.loads(run(ice, "diff", f"{DATASET}@{old}", f"{DATASET}@{new}",
                              "--table", table, "--format", "json"))
        assert (diff["tables"][table]["key"], diff["tables"][table]["key_source"]) == (
            key, "inferred"), (old, new)
    for old, new in zip(ids, ids[1:], strict=False):  # the library, every pair
        assert ice.diff(f"{DATASET}@{old}", f"{DATASET}@{new}", table=table).key == key

    blame = json.loads(run(ice, "blame", f"{DATASET}@latest", "--table", table, "--json",
                           "--limit", "1"))
    assert (blame["key"], blame["key_source"]) == (key, "inferred")
    old_blame = json.loads(run(ice, "blame", f"{DATASET}@{ids[1]}", "--table", table,
                               "--json", "--limit", "1"))
    assert old_blame["key"] == key  # an older release: the series' key, not its own

    out = tmp_path / "v.parquet"
    run(ice, "vintages", DATASET, "--table", table, "-f", "parquet", "-o", str(out))
    meta = pq.read_schema(out).metadata or {}
    assert meta.get(b"key", b"").decode().split(",") == key

    # revisions counts the cells the vintages name: one per key value, column, period
    rev = json.loads(run(ice, "revisions", DATASET, "--table", table, "--json"))
    named = [*key, "column", "period"]
    cells = pq.read_table(out, columns=named).group_by(named).aggregate([]).num_rows
    assert sum(r["cells"] for r in rev) == cells


def test_history_and_audit_tell_the_two_clinton_jails_apart(ice: Archive) -> None:
    for address, state in (("25 MCCARTHY DRIVE", "NY"), ("301 E WALNUT STREET", "IN")):
        rows = json.loads(run(ice, "history", DATASET, "--table", FACILITIES,
                              "--row", "Name=CLINTON COUNTY JAIL", "--row",
                              f"Address={address}", "--json"))
        present = [r for r in rows if r["status"] != "absent"]
        assert present, address
        assert {r["values"]["State"] for r in present} == {state}

    report = json.loads(run(ice, "audit", DATASET, "--json", "--all"))
    facility = [f for f in report["findings"] if f.get("table") == FACILITIES]
    for finding in facility:
        used = (finding.get("evidence") or {}).get("key")
        if used is not None:
            assert used == EXPECTED[FACILITIES], finding["summary"]
    dups = [f for f in facility if f["kind"] == "duplicate_key"]
    assert not any("CLINTON COUNTY JAIL" in json.dumps(f) for f in dups), dups
