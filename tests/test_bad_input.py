"""Bad input: one clear line naming the file and the problem, exit != 0, archive untouched."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import archive_state, write_csv

from atdarchive import Archive


@pytest.fixture
def committed(archive: Archive, tmp_path: Path) -> Archive:
    archive.commit("ds", write_csv(tmp_path / "ok.csv", [{"a": 1, "b": 2}]),
                   published="2024-01-01")
    return archive


def bad_files(tmp_path: Path) -> dict[str, tuple[list[str], str]]:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    latin = tmp_path / "latin1.csv"
    latin.write_bytes("name,count\nSão Paulo,3\n".encode("latin-1"))
    good = write_csv(tmp_path / "good.csv", [{"a": 5, "b": 6}])
    return {
        "missing file": (["ds", str(tmp_path / "nope.csv")], "nope.csv: no such file"),
        "a directory": (["ds", str(tmp_path)], f"{tmp_path}: is a directory"),
        "empty file": (["ds", str(empty)], "empty.csv: file is empty"),
        "unknown dataset": (["nosuch", str(good)], "unknown dataset 'nosuch'"),
        "unparseable date": (["ds", str(good), "--published", "01/02/2024"],
                             "--published: '01/02/2024' is ambiguous"),
        "non-UTF-8 CSV": (["ds", str(latin)], "latin1.csv: not valid UTF-8"),
    }


def bad_publications(tmp_path: Path) -> dict[str, tuple[list[str], str]]:
    """Files that look like publications but are not (issue: ingest of real workbooks)."""
    from openpyxl import Workbook

    good = tmp_path / "good.xlsx"
    wb = Workbook()
    wb.active.append(["agency", "count"])
    wb.active.append(["ICE", 1])
    wb.save(good)
    corrupt = tmp_path / "corrupt.xlsx"
    corrupt.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    locked = tmp_path / "locked.xlsx"   # an encrypted workbook is an OLE2 container
    locked.write_bytes(bytes.fromhex("D0CF11E0A1B11AE1") + b"\0" * 504
                       + "EncryptedPackage".encode("utf-16-le") + b"\0" * 1024)
    html = tmp_path / "page.xlsx"
    html.write_text("<!DOCTYPE html><html><body>Access denied</body></html>")
    blank = tmp_path / "blank.xlsx"
    Workbook().save(blank)
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a,b,c\n1,2,3\n4,5\n6,7,8\n")
    nested = tmp_path / "nested.json"
    nested.write_text('{"report": {"total": 5, "by_agency": {"ICE": 3}}}')
    return {
        "corrupt XLSX": (["ds", str(corrupt)], "corrupt.xlsx"),
        "password-protected XLSX": (["ds", str(locked)], "password-protected or encrypted"),
        "HTML named .xlsx": (["ds", str(html)], "page.xlsx: "),
        "workbook of empty sheets": (["ds", str(blank)], "blank.xlsx: "),
        "ragged CSV": (["ds", str(ragged)], "ragged.csv: "),
        "non-tabular JSON": (["ds", str(nested)], "nested.json: "),
    }


@pytest.mark.parametrize("case", ["corrupt XLSX", "password-protected XLSX",
                                  "HTML named .xlsx", "workbook of empty sheets", "ragged CSV",
                                  "non-tabular JSON"])
def test_bad_publication_leaves_archive_unchanged(committed: Archive, tmp_path: Path, cli,
                                                  case: str) -> None:
    args, expected = bad_publications(tmp_path)[case]
    before = archive_state(committed.root)
    result = cli("-C", committed.root, "commit", *args)
    assert result.code != 0 and result.out == ""
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], lines
    assert archive_state(committed.root) == before
    assert list(committed.store.staging.glob("*")) == []  # no half-written snapshot left


@pytest.mark.parametrize("case", ["missing file", "empty file", "unknown dataset",
                                  "unparseable date", "non-UTF-8 CSV"])
def test_bad_input_leaves_archive_unchanged(committed: Archive, tmp_path: Path, cli,
                                            case: str) -> None:
    args, expected = bad_files(tmp_path)[case]
    before = archive_state(committed.root)
    result = cli("-C", committed.root, "commit", *args)
    assert result.code != 0
    assert result.out == ""
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("error: ")
    assert expected in lines[0]
    assert "Traceback" not in result.err
    assert archive_state(committed.root) == before


def test_non_utf8_csv_commits_with_encoding(committed: Archive, tmp_path: Path, cli) -> None:
    latin = tmp_path / "latin1.csv"
    latin.write_bytes("name,count\nSão Paulo,3\n".encode("latin-1"))
    result = cli("-C", committed.root, "commit", "ds", latin, "--encoding", "latin-1",
                 "--published", "2024-02-01")
    assert result.code == 0, result.err
    assert committed.snapshot("ds@latest").table().column("name").to_pylist() == ["São Paulo"]


def test_not_an_archive(tmp_path: Path, cli) -> None:
    result = cli("-C", tmp_path, "log")
    assert result.code != 0
    assert "not an atdarchive archive" in result.err
    assert len(result.err.strip().splitlines()) == 1


def test_unknown_ref_is_one_line(committed: Archive, cli) -> None:
    result = cli("-C", committed.root, "show", "ds@zzz")
    assert result.code != 0
    assert result.err.startswith("error: ds@zzz: unknown ref")
    assert len(result.err.strip().splitlines()) == 1


def test_the_same_bytes_at_the_same_instant_are_one_release(archive: Archive, tmp_path: Path,
                                                            cli) -> None:
    path = write_csv(tmp_path / "f.csv", [{"a": 1}])
    archive.commit("ds", path, published="2025-09-12T18:21:41+00:00")
    before = archive_state(archive.root)
    for when in ("2025-09-12", "2025-09-12T18:21:41Z"):  # a bare date: the same day
        result = cli("-C", archive.root, "commit", "ds", path, "--published", when)
        assert result.code != 0 and "already archived as ds@" in result.err
        assert archive_state(archive.root) == before
    # the same bytes on another day are a re-post: a release of their own
    assert archive.commit("ds", path, published="2025-09-13").snapshot.published == \
        "2025-09-13"
