"""CSV/TSV, JSON and Parquet readers, and format sniffing by content."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from atdarchive.errors import IngestError
from atdarchive.ingest import read_publication, sniff_format
from atdarchive.ingest.tabular import read_csv, read_json, read_parquet, unique_names


def write(path: Path, content: str | bytes) -> Path:
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


# --------------------------------------------------------------------------- CSV


def test_csv_types_and_fixed_name(tmp_path: Path) -> None:
    path = write(
        tmp_path / "stats_20250704.csv",
        "agency,count,share,zip,when,flag,label\n"
        "ICE  ,23616,0.25,02863,2025-06-14,true,N/A\n"
        "CBP,9007199254740993,0.5,10001,2025-06-15,False,x\n",
    )
    pub = read_publication(path)
    assert pub.format == "csv" and pub.reader.startswith("pyarrow")
    (table,) = pub.tables
    assert table.name == "data"
    assert table.data.schema == pa.schema(
        [
            ("agency", pa.string()),
            ("count", pa.int64()),
            ("share", pa.float64()),
            ("zip", pa.string()),
            ("when", pa.date32()),
            ("flag", pa.bool_()),
            ("label", pa.string()),
        ]
    )
    assert table.data.column("agency").to_pylist() == ["ICE", "CBP"]
    assert table.data.column("count").to_pylist() == [23616, 9007199254740993]  # exact int64
    assert table.data.column("zip").to_pylist() == ["02863", "10001"]  # leading zero kept
    assert table.source_rows == [2, 3]
    assert list(table.source_columns.values()) == ["A", "B", "C", "D", "E", "F", "G"][
        : table.data.num_columns]


def test_csv_decorated_numbers_and_mixed_columns(tmp_path: Path) -> None:
    path = write(
        tmp_path / "d.csv",
        'a,b,c,d\n"1,234",12*,1.5,-\n"23,616",7,2,4\n',
    )
    data = read_csv(path).tables[0].data
    assert data.column("a").to_pylist() == [1234, 23616]
    assert data.column("b").to_pylist() == [12, 7]
    assert data.schema.field("c").type == pa.float64()
    assert data.column("d").to_pylist() == ["-", "4"]  # one non-number: the column stays text


def test_csv_empty_cells_are_null_but_na_is_text(tmp_path: Path) -> None:
    data = read_csv(write(tmp_path / "n.csv", "a,b\n1,NA\n,  \n3,x\n")).tables[0].data
    assert data.column("a").to_pylist() == [1, None, 3]
    assert data.column("b").to_pylist() == ["NA", None, "x"]


@pytest.mark.parametrize(("sep", "name"), [(";", "semi.csv"), ("\t", "tabs.tsv"), ("|", "p.txt")])
def test_csv_delimiter_sniffed(tmp_path: Path, sep: str, name: str) -> None:
    path = write(tmp_path / name, f"x{sep}y\n1{sep}2,5\n3{sep}4\n")
    pub = read_publication(path)
    assert pub.format == ("tsv" if sep == "\t" else "csv")
    data = pub.tables[0].data
    assert data.column_names == ["x", "y"]
    assert data.column("x").to_pylist() == [1, 3]


def test_csv_delimiter_override(tmp_path: Path) -> None:
    path = write(tmp_path / "o.csv", "a;b\n1;2\n")
    assert read_publication(path, delimiter=",").tables[0].data.column_names == ["a;b"]
    tabs = write(tmp_path / "t.csv", "a\tb,c\n1\t2,3\n")
    assert read_publication(tabs, delimiter="\\t").tables[0].data.column_names == ["a", "b,c"]


def test_csv_utf8_bom_and_explicit_encoding(tmp_path: Path) -> None:
    bom = write(tmp_path / "bom.csv", b"\xef\xbb\xbfname,n\nS\xc3\xa3o Paulo,1\n")
    data = read_publication(bom).tables[0].data
    assert data.column_names == ["name", "n"]
    assert data.column("name").to_pylist() == ["São Paulo"]
    latin = write(tmp_path / "latin.csv", "name,n\nS\xe3o Paulo,1\n".encode("latin-1"))
    data = read_publication(latin, encoding="latin-1").tables[0].data
    assert data.column("name").to_pylist() == ["São Paulo"]


def test_csv_invalid_utf8_names_byte_and_offset(tmp_path: Path) -> None:
    path = write(tmp_path / "latin.csv", "name,n\nS\xe3o,1\n".encode("latin-1"))
    with pytest.raises(IngestError) as info:
        read_publication(path)
    assert str(info.value) == (
        "latin.csv: not valid UTF-8 (byte 0xe3 at offset 8); pass --encoding"
    )


def test_csv_line_numbers_with_quoted_newlines_and_blank_lines(tmp_path: Path) -> None:
    path = write(tmp_path / "q.csv", 'a,b\n"multi\nline",1\n\n"x",2\r\ny,3\n')
    table = read_csv(path).tables[0]
    assert table.data.column("a").to_pylist() == ["multi\nline", "x", "y"]
    assert table.source_rows == [2, 5, 6]


def test_csv_header_names_normalised(tmp_path: Path) -> None:
    path = write(tmp_path / "h.csv", ' a ,,count,count,"two\nlines"\n1,2,3,4,5\n')
    assert read_csv(path).tables[0].data.column_names == [
        "a",
        "col_2",
        "count",
        "count_2",
        "two lines",
    ]


def test_unique_names() -> None:
    assert unique_names(["x", "x", "", "x_2", " "]) == ["x", "x_2", "col_3", "x_2_2", "col_5"]


# --------------------------------------------------------------------------- JSON


def test_json_records(tmp_path: Path) -> None:
    records = [{"agency": "ICE  ", "n": 1, "r": 0.5}, {"agency": "CBP", "n": 2, "r": 1, "x": True}]
    table = read_json(write(tmp_path / "r.json", json.dumps(records))).tables[0]
    assert table.name == "data"
    assert table.data.to_pydict() == {
        "agency": ["ICE", "CBP"],
        "n": [1, 2],
        "r": [0.5, 1.0],
        "x": [None, True],
    }
    assert table.data.schema.field("n").type == pa.int64()
    assert table.source_rows == [1, 2]


@pytest.mark.parametrize(
    "doc",
    [
        {"columns": ["a", "b"], "data": [[1, "x"], [2, "y"]]},
        {"data": [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]},
    ],
)
def test_json_split_and_wrapped_records(tmp_path: Path, doc: dict) -> None:
    data = read_publication(write(tmp_path / "s.json", json.dumps(doc))).tables[0].data
    assert data.to_pydict() == {"a": [1, 2], "b": ["x", "y"]}


# --------------------------------------------------------------------------- Parquet


def test_parquet_roundtrip(tmp_path: Path) -> None:
    original = pa.table({"a": [1, 2], "b": ["x", " y "]})
    pq.write_table(original, tmp_path / "t.parquet")
    pub = read_parquet(tmp_path / "t.parquet")
    assert pub.format == "parquet" and pub.tables[0].name == "data"
    assert pub.tables[0].data.equals(original)  # already typed: passed through unchanged


# --------------------------------------------------------------------------- sniffing


def test_content_wins_over_extension(tmp_path: Path) -> None:
    pq.write_table(pa.table({"a": [1]}), tmp_path / "looks.csv")
    assert sniff_format(tmp_path / "looks.csv") == "parquet"
    write(tmp_path / "rows.txt", '  [{"a": 1}]')
    assert sniff_format(tmp_path / "rows.txt") == "json"
    write(tmp_path / "noext", "a,b\n1,2\n")
    assert sniff_format(tmp_path / "noext") == "csv"
    assert read_publication(tmp_path / "rows.txt").tables[0].data.to_pydict() == {"a": [1]}


def test_format_override(tmp_path: Path) -> None:
    path = write(tmp_path / "data.json", "a\tb\n1\t2\n")
    assert read_publication(path, format="tsv").tables[0].data.column_names == ["a", "b"]
    with pytest.raises(IngestError, match="unknown format 'pdf'"):
        read_publication(path, format="pdf")


# --------------------------------------------------------------------------- F3-F6 regressions


@pytest.mark.parametrize(
    ("content", "rows", "lines"),
    [
        (b"\n\nzip,n\n02863,1\n", [{"zip": "02863", "n": 1}], [4]),  # header was taken as []
        (b"\n;\n", [], []),  # two blank columns, no rows: not one phantom source row
        (b"\r\n\r\nx\r\n1\r\n\r\n2\r\n", [{"x": 1}, {"x": 2}], [4, 6]),
    ],
)
def test_csv_blank_lines_before_header(
    tmp_path: Path, content: bytes, rows: list, lines: list
) -> None:
    table = read_csv(write(tmp_path / "b.csv", content)).tables[0]
    assert table.data.to_pylist() == rows
    assert table.source_rows == lines


@pytest.mark.parametrize(
    ("content", "lines"),
    [
        (b"a,b\r1,2\r3,4\r", [2, 3]),  # classic Mac OS line ends
        (b"a,b\r1,2\r\r3,4", [2, 4]),  # a blank line, no final line end
        (b'a,b\r"x\ry",2\r3,4\n', [2, 4]),  # a quoted CR inside a cell; mixed line ends
    ],
)
def test_csv_cr_line_endings(tmp_path: Path, content: bytes, lines: list) -> None:
    table = read_csv(write(tmp_path / "mac.csv", content)).tables[0]
    assert table.data.column_names == ["a", "b"]
    assert table.source_rows == lines
    assert table.data.column("b").to_pylist() == [2, 4]


def test_csv_cells_over_the_csv_field_limit(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # 3 MB cells: over pyarrow's 1 MB block and the csv module's 128 KiB field limit, in the
    # header and in a row whose line numbers need the csv module (a quoted line break).
    # A 3 MB header name is over the ingest bounds: raised here as a user would.
    monkeypatch.setenv("ATDARCHIVE_LIMIT_INGEST_MAX_HEADER_BYTES", str(8 << 20))
    monkeypatch.setenv("ATDARCHIVE_LIMIT_INGEST_MAX_COLUMN_NAME_CHARS", str(8 << 20))
    big = "x" * (3 << 20)
    path = write(tmp_path / "huge.csv", f'{big},b\n"{big}\nz",1\n\n2,3\n')
    table = read_csv(path).tables[0]
    assert table.data.column_names == [big, "b"]
    assert table.data.column(0).to_pylist() == [f"{big}\nz", "2"]
    assert table.source_rows == [2, 5]
    import csv

    assert csv.field_size_limit() == 131072  # the process-wide limit is restored
