"""The repository is itself an archive: its datasets/ must be consistent in a fresh clone."""

from __future__ import annotations

import subprocess
from pathlib import Path

from conftest import ICE_RELEASES, ice_published

from atdarchive import Archive
from atdarchive.util import sha256_file
from atdarchive.verify import verify

ROOT = Path(__file__).parent.parent
DATASET = "ice-detention-stats"


def test_repository_archives_the_bundled_releases() -> None:
    archive = Archive(ROOT)
    assert archive.root == ROOT.resolve()
    series = archive.history(DATASET).publication_order("public")
    assert [e.record["original"]["sha256"] for e in series] == [
        sha256_file(p) for p in ICE_RELEASES]
    assert [e.published for e in series] == [ice_published(p) for p in ICE_RELEASES]
    assert archive.ledger(DATASET).verify_chain() == []
    config = archive.dataset(DATASET)
    assert config.keys["facilities__ice_enforcement_and_removal_operations_data"] == [
        "Name", "City", "State"]


def test_fresh_clone_pulls_offline_and_verifies(tmp_path: Path, cli) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    result = cli("-C", clone, "log", DATASET, "--oneline")  # the ledger needs no data
    assert result.code == 0 and len(result.out.splitlines()) == len(ICE_RELEASES)
    result = cli("-C", clone, "pull", DATASET)
    assert result.code == 0, result.err
    archive = Archive(clone)
    problems = [p for p in verify(archive, DATASET) if p.severity == "error"]
    assert problems == []  # hashes, chain, pointers, git — and tables re-derive from originals
    latest = archive.snapshot(f"{DATASET}@latest")
    assert latest.original_path.read_bytes() == ICE_RELEASES[-1].read_bytes()
