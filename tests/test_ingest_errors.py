"""Bad input: every problem is a one-line IngestError that names the file."""

from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path

import openpyxl
import pytest

from atdarchive.errors import IngestError
from atdarchive.ingest import read_publication
from atdarchive.ingest import xlsx as xlsx_module

DATA = Path(__file__).parent / "data" / "ice-fy25"
OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def fails(path: Path, problem: str, **kwargs: object) -> str:
    """Read `path`, expecting an IngestError mentioning `problem`; return the message."""
    with pytest.raises(IngestError) as info:
        read_publication(path, **kwargs)
    message = str(info.value)
    assert message.startswith(f"{path.name}: "), message
    assert "\n" not in message
    assert problem in message, message
    assert info.value.__cause__ is None or info.value.__suppress_context__
    return message


def small_workbook(path: Path) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["Agency", "Count"])
    ws.append(["ICE", 1])
    wb.save(path)
    return path


def test_missing_file(tmp_path: Path) -> None:
    fails(tmp_path / "nowhere.xlsx", "file not found")


def test_directory(tmp_path: Path) -> None:
    (tmp_path / "dir.csv").mkdir()
    fails(tmp_path / "dir.csv", "not a regular file")


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.xlsx").write_bytes(b"")
    fails(tmp_path / "empty.xlsx", "empty file (0 bytes)")


def test_truncated_xlsx(tmp_path: Path) -> None:
    whole = (DATA / "v06_2025-09-11_FY25_detentionStats09112025.xlsx").read_bytes()
    (tmp_path / "cut.xlsx").write_bytes(whole[: len(whole) // 2])
    fails(tmp_path / "cut.xlsx", "not a readable zip archive")


def test_zip_with_broken_workbook_xml(tmp_path: Path) -> None:
    good = small_workbook(tmp_path / "good.xlsx")
    bad = tmp_path / "broken.xlsx"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            dst.writestr(
                item, b"<workbook><sheets><sheet" if "worksheets/" in item.filename else data
            )
    fails(bad, "corrupt or unreadable XLSX workbook")


def test_zip_that_is_not_a_workbook(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "docs.xlsx", "w") as archive:
        archive.writestr("readme.txt", "hello")
    fails(tmp_path / "docs.xlsx", "a zip archive but not an XLSX or ODS workbook")


def _fake_encrypted(path: Path) -> Path:
    """An OLE2 container with the stream names Office uses for a password-protected XLSX."""
    header = OLE2 + bytes(16) + struct.pack("<HH", 0x3E, 3) + bytes(512 - 28)
    names = b"".join(
        name.encode("utf-16-le").ljust(64, b"\0") + bytes(64)
        for name in ("Root Entry", "EncryptionInfo", "EncryptedPackage")
    )
    path.write_bytes(header + names)
    return path


def test_password_protected_xlsx(tmp_path: Path) -> None:
    fails(_fake_encrypted(tmp_path / "locked.xlsx"), "password-protected or encrypted workbook")


def test_ole2_garbage_named_xlsx(tmp_path: Path) -> None:
    (tmp_path / "odd.xlsx").write_bytes(OLE2 + bytes(1024))
    fails(tmp_path / "odd.xlsx", "password-protected or encrypted workbook")


def test_ole2_garbage_named_xls(tmp_path: Path) -> None:
    (tmp_path / "odd.xls").write_bytes(OLE2 + bytes(1024))
    fails(tmp_path / "odd.xls", "corrupt or unreadable XLS workbook")


@pytest.mark.parametrize(
    "content",
    [b"<!DOCTYPE html><html><body>Access denied</body></html>", b"\n  <html><head>", b"<table>"],
)
def test_html_named_xlsx(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "stats.xlsx").write_bytes(content)
    fails(tmp_path / "stats.xlsx", "is HTML, not a spreadsheet")


def test_text_named_xlsx(tmp_path: Path) -> None:
    (tmp_path / "stats.xlsx").write_bytes(b"a,b\n1,2\n")
    fails(tmp_path / "stats.xlsx", "not a spreadsheet")


def test_every_sheet_empty(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    wb.create_sheet("Second")
    wb.active["C3"] = "   "  # whitespace only: still nothing to read
    wb.save(tmp_path / "blank.xlsx")
    fails(tmp_path / "blank.xlsx", "no tables found (every sheet is empty)")


def test_empty_sheet_is_skipped(tmp_path: Path) -> None:
    path = small_workbook(tmp_path / "partly.xlsx")
    wb = openpyxl.load_workbook(path)
    wb.create_sheet("Nothing here", 0)
    wb.save(path)
    pub = read_publication(path)
    assert [(t.name, t.sheet) for t in pub.tables] == [("sheet", "Sheet")]


def test_only_text_no_tables(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    wb.active["A1"] = "Read me"
    wb.save(tmp_path / "prose.xlsx")
    fails(tmp_path / "prose.xlsx", "no tables found (no block of cells looks like a table)")


def _forge_size(path: Path, size: int) -> None:
    """Make the central directory claim `size` uncompressed bytes for every member."""
    data = bytearray(path.read_bytes())
    at = data.find(b"PK\x01\x02")
    while at != -1:
        data[at + 24 : at + 28] = struct.pack("<I", size)
        at = data.find(b"PK\x01\x02", at + 4)
    path.write_bytes(bytes(data))


def test_zip_bomb_by_declared_size(tmp_path: Path) -> None:
    path = small_workbook(tmp_path / "bomb.xlsx")
    _forge_size(path, 0xFFFF0000)
    fails(path, "looks like a zip bomb")


def test_zip_bomb_by_ratio(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A real 10 MB -> ~10 kB member; the 100 MB floor is lowered so the test stays small.
    monkeypatch.setattr(xlsx_module, "RATIO_FLOOR", 1 << 20)
    path = small_workbook(tmp_path / "ratio.xlsx")
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/media/zeros.bin", bytes(10 << 20))
    fails(path, "looks like a zip bomb")


def test_ragged_csv_names_line(tmp_path: Path) -> None:
    (tmp_path / "ragged.csv").write_text('a,b,c\n1,2,3\n"x\ny",5,6\n4,5\n7,8,9\n')
    message = fails(tmp_path / "ragged.csv", "ragged row at line 5")
    assert message.endswith("expected 3 fields, got 2")


def test_csv_only_whitespace(tmp_path: Path) -> None:
    (tmp_path / "blank.csv").write_text("\n  \n")
    fails(tmp_path / "blank.csv", "no data")


def test_unknown_encoding(tmp_path: Path) -> None:
    (tmp_path / "e.csv").write_text("a\n1\n")
    fails(tmp_path / "e.csv", "unknown encoding 'klingon'", encoding="klingon")


@pytest.mark.parametrize(
    ("doc", "problem"),
    [
        ("42", "single value"),
        ('"text"', "single value"),
        ("[]", "list is empty"),
        ("[[1, 2], [3, 4]]", "a list of lists needs"),
        ('[{"a": 1}, 2]', "expected a list of records"),
        ('{"a": {"b": 1}}', "not tabular"),
        ('[{"a": {"b": 1}}]', "record 1 field 'a' is nested (dict)"),
        ('[{"a": [1]}]', "is nested (list)"),
        ('[{"a": 1}, {"a": "x"}]', "column 'a' mixes types (int, str)"),
        ('[{"a": true}, {"a": 1}]', "mixes types (bool, int)"),
        ('{"columns": ["a"], "data": [[1, 2]]}', "row 1 has 2 values for 1 columns"),
        ('{"columns": [1], "data": []}', "'columns' must be a list of names"),
        ('[{"a": 1}', "invalid JSON at line 1"),
        ("[{}]", "not tabular: the records have no fields"),
        ("[{}, {}]", "not tabular: the records have no fields"),
        ('{"columns": [], "data": [[]]}', "not tabular: the records have no fields"),
    ],
)
def test_json_not_tabular(tmp_path: Path, doc: str, problem: str) -> None:
    (tmp_path / "bad.json").write_text(doc)
    fails(tmp_path / "bad.json", problem)


def test_deeply_nested_json(tmp_path: Path) -> None:
    depth = 200_000
    (tmp_path / "deep.json").write_text("[" * depth + "]" * depth)
    fails(tmp_path / "deep.json", "nested too deeply")


def test_json_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "l.json").write_bytes(
        json.dumps([{"a": "é"}]).encode("ascii").replace(b"\\u00e9", b"\xe9")
    )
    fails(tmp_path / "l.json", "not valid UTF-8 (byte 0xe9")


def test_corrupt_parquet(tmp_path: Path) -> None:
    (tmp_path / "c.parquet").write_bytes(b"PAR1" + bytes(100))
    fails(tmp_path / "c.parquet", "corrupt or unreadable Parquet file")


def test_unknown_binary(tmp_path: Path) -> None:
    (tmp_path / "blob.bin").write_bytes(b"\x00\x01\x02garbage")
    fails(tmp_path / "blob.bin", "unrecognised binary format")


def test_given_workbook_format_still_checks_content(tmp_path: Path) -> None:
    (tmp_path / "page.bin").write_bytes(b"<html><body>Not found</body></html>")
    fails(tmp_path / "page.bin", "is HTML, not a spreadsheet", format="xlsx")
    (tmp_path / "rows.bin").write_bytes(b"a,b\n1,2\n")
    fails(tmp_path / "rows.bin", "not a workbook (its content reads as csv)", format="xlsx")
    fails(_fake_encrypted(tmp_path / "locked.bin"), "password-protected", format="xlsx")


def test_csv_cr_line_endings_ragged_names_line(tmp_path: Path) -> None:
    # a lone CR ends a line (as in Excel and pyarrow); was `_csv.Error: new-line character
    # seen in unquoted field`
    (tmp_path / "cr.csv").write_bytes(b"a,b\rx\r,2\n")
    message = fails(tmp_path / "cr.csv", "ragged row at line 2")
    assert message.endswith("expected 2 fields, got 1")


def test_csv_huge_ragged_row_is_an_ingest_error(tmp_path: Path) -> None:
    # a 1 MB cell in a ragged row: the csv module's field limit raised `_csv.Error`
    (tmp_path / "big.csv").write_text("a,b\n1,2\n" + "y" * (1 << 20) + "\n")
    fails(tmp_path / "big.csv", "ragged row at line 3: expected 2 fields, got 1")


def test_csv_error_from_the_csv_module_names_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import csv

    from atdarchive.ingest import tabular

    def strict_reader(text: str, delimiter: str):  # strict mode refuses a stray quote
        import io

        return csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)

    monkeypatch.setattr(tabular, "_reader", strict_reader)
    (tmp_path / "q.csv").write_text('a,b\n1,2\n3,"x"y\n4\n')
    fails(tmp_path / "q.csv", "cannot parse as CSV: line 3: ")


def test_parquet_with_a_damaged_column_name_is_a_clear_error(tmp_path: Path) -> None:
    """Found by the fuzz suite: one flipped byte made a column name that is not UTF-8."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    from atdarchive.errors import IngestError
    from atdarchive.ingest import read_publication

    sink = io.BytesIO()
    pq.write_table(pa.table({"\x80\x80\x80": [None, "\x80", "000\x80\x80\U00010000"]}), sink)
    data = bytearray(sink.getvalue())
    data[1029 % len(data)] ^= 32
    path = tmp_path / "bad.parquet"
    path.write_bytes(bytes(data))
    with pytest.raises(IngestError, match="bad.parquet: corrupt"):
        read_publication(path)
