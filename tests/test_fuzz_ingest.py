"""Hostile input: every file gives a clear error (AtdError) or a correct snapshot.

Never a traceback of another type, a write outside the archive, a hang, or an
unbounded memory spike. Readers are fuzzed directly with hypothesis (fast);
a hostile corpus is committed through the real archive; resource-heavy cases
run in a subprocess under an address-space limit and a timeout.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import subprocess
import sys
import textwrap
import zipfile
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from atdarchive import Archive
from atdarchive.errors import AtdError
from atdarchive.ingest import read_publication
from atdarchive.verify import verify

COUNTS: Counter[str] = Counter()
FUZZ = settings(max_examples=250, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])

# characters agencies' files and attackers both produce
HOSTILE_CHARS = st.sampled_from(
    list(',;\t|"\'\n\r =+-@\\/.\x00\x07\x1b\x7f\u200b\u202e\ufeffé漢🙂'))
CELL = st.one_of(
    st.text(HOSTILE_CHARS, max_size=12),
    st.text(max_size=12),
    st.sampled_from(["=cmd|' /C calc'!A0", "=HYPERLINK(\"http://x\")", "+1+1", "@SUM(A1)",
                     "-2+3", "1,234", "12*", "02863", "2025-02-30", "NaN", "inf", "-0",
                     "9" * 30, "true", "FALSE", "../../etc/passwd", "\x00"]),
    st.integers().map(str),
    st.floats(allow_nan=True).map(str),
)


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    print("\nfuzz inputs by kind:", json.dumps(dict(sorted(COUNTS.items()))))


def read_or_error(path: Path, kind: str, **kwargs):
    """The reader's contract: a Publication of well-formed tables, or an AtdError."""
    COUNTS[kind] += 1
    try:
        publication = read_publication(path, **kwargs)
    except AtdError as exc:
        assert "\n" not in str(exc).strip(), str(exc)
        COUNTS[f"{kind}:error"] += 1
        return None
    assert publication.tables
    for table in publication.tables:
        assert isinstance(table.data, pa.Table)
        assert table.name and "/" not in table.name and ".." not in table.name
        assert len(set(table.data.column_names)) == table.data.num_columns
        if table.source_rows is not None:
            assert len(table.source_rows) == table.data.num_rows
    COUNTS[f"{kind}:ok"] += 1
    return publication


# The reader bugs this suite found (F1-F6 in the project history) are fixed; their
# reproducers stay as plain tests below (test_known_reader_bugs).


KNOWN_READER_BUGS = {
    "F4-blank-line-before-header": ("a.csv", b"\n;\n"),
    "F4-two-blank-lines": ("d.csv", b"\n\nx\n1\n"),
    "F5-cr-line-endings": ("mac.csv", b"a,b\r1,2\r"),
    "F5-cr-in-unquoted-cell": ("cr.csv", b"a,b\rx\r,2\n"),
    "F6-record-without-fields": ("e.json", b"[{}]"),
    "F6-no-columns": ("f.json", b'{"columns": [], "data": [[]]}'),
}


@pytest.mark.parametrize("bug", list(KNOWN_READER_BUGS))
def test_known_reader_bugs(tmp_path: Path, bug: str) -> None:
    name, data = KNOWN_READER_BUGS[bug]
    path = tmp_path / name
    path.write_bytes(data)
    publication = read_or_error(path, "known-bug")
    if bug.startswith("F4"):  # provenance must match: 1 data row on line 3 or 4
        assert publication is not None
        table = publication.tables[0]
        assert len(table.source_rows) == table.data.num_rows
    if bug.startswith("F6"):
        assert publication is None


# --------------------------------------------------------------------------- readers

@FUZZ
@given(rows=st.lists(st.lists(CELL, min_size=1, max_size=6), min_size=1, max_size=8),
       delimiter=st.sampled_from([",", ";", "\t", "|"]), quote=st.booleans(),
       ending=st.sampled_from(["\n", "\r\n", "\r", ""]))
def test_csv_text(tmp_path_factory, rows, delimiter, quote, ending) -> None:
    def field(value: str) -> str:
        return '"' + value.replace('"', '""') + '"' if quote else value

    text = ending.join(delimiter.join(field(v) for v in row) for row in rows) + ending
    path = tmp_path_factory.mktemp("csv") / "f.csv"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    read_or_error(path, "csv-text")


@FUZZ
@given(data=st.binary(min_size=1, max_size=400),
       suffix=st.sampled_from([".csv", ".tsv", ".txt", ".json", ".parquet", ".xlsx", ".bin"]))
def test_random_bytes_any_extension(tmp_path_factory, data, suffix) -> None:
    path = tmp_path_factory.mktemp("bin") / f"f{suffix}"
    path.write_bytes(data)
    read_or_error(path, "random-bytes")


JSON_SCALAR = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                        st.text(max_size=8))
JSON_VALUE = st.recursive(JSON_SCALAR, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)),
    max_leaves=20)
KEYS = st.one_of(st.text(max_size=8), st.sampled_from(["../x", "", "a/b", ".", "\x00", "id"]))


@FUZZ
@given(doc=st.one_of(
    JSON_VALUE,
    st.lists(st.dictionaries(KEYS, JSON_SCALAR, max_size=5), min_size=1, max_size=6),
    st.fixed_dictionaries({"columns": st.lists(KEYS, max_size=4),
                           "data": st.lists(st.lists(JSON_SCALAR, max_size=4), max_size=5)}),
))
def test_json_documents(tmp_path_factory, doc) -> None:
    path = tmp_path_factory.mktemp("json") / "f.json"
    path.write_text(json.dumps(doc))
    read_or_error(path, "json")


COLUMN = st.one_of(
    st.lists(st.one_of(st.none(), st.integers(-2**63, 2**63 - 1)), min_size=3, max_size=3),
    st.lists(st.one_of(st.none(), st.text(max_size=6)), min_size=3, max_size=3),
    st.lists(st.one_of(st.none(), st.floats()), min_size=3, max_size=3),
    st.lists(st.lists(st.integers(0, 9), max_size=2), min_size=3, max_size=3),
    st.lists(st.fixed_dictionaries({"a": st.integers(0, 9)}), min_size=3, max_size=3),
)


@FUZZ
@given(columns=st.dictionaries(KEYS, COLUMN, min_size=1, max_size=4),
       damage=st.one_of(st.none(), st.tuples(st.integers(0, 10_000), st.integers(1, 255)),
                        st.integers(1, 400)))
def test_parquet_tables_and_damage(tmp_path_factory, columns, damage) -> None:
    sink = io.BytesIO()
    pq.write_table(pa.table({k: pa.array(v) for k, v in columns.items()}), sink)
    data = bytearray(sink.getvalue())
    if isinstance(damage, tuple):  # flip one byte
        position, mask = damage
        data[position % len(data)] ^= mask
    elif isinstance(damage, int):  # truncate
        data = data[: max(1, len(data) - damage)]
    path = tmp_path_factory.mktemp("pq") / "f.parquet"
    path.write_bytes(bytes(data))
    read_or_error(path, "parquet" + ("" if damage is None else "-damaged"))


def workbook_bytes(sheets: dict[str, list[list[object]]]) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    book.remove(book.active)
    for index, (name, rows) in enumerate(sheets.items()):
        sheet = book.create_sheet(f"S{index}")
        sheet.title = f"S{index}"
        for row in rows:
            sheet.append(row)
        sheet.sheet_properties.codeName = name[:20] or "x"
    sink = io.BytesIO()
    book.save(sink)
    return rename_sheets(sink.getvalue(), {f"S{i}": n for i, n in enumerate(sheets)})


def rename_sheets(data: bytes, names: dict[str, str]) -> bytes:
    """Give sheets names Excel would refuse (`../../etc`, control characters) by editing XML."""
    from xml.sax.saxutils import quoteattr

    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            member = source.read(info.filename)
            if info.filename == "xl/workbook.xml":
                for placeholder, name in names.items():
                    member = member.replace(f'name="{placeholder}"'.encode(),
                                            f"name={quoteattr(name)}".encode())
            target.writestr(info.filename, member)
    return out.getvalue()


XLSX_CELL = st.one_of(st.none(), st.integers(-10**12, 10**12), st.floats(allow_nan=False,
                      allow_infinity=False), st.text(st.characters(
                          blacklist_categories=("Cs", "Cc")), max_size=10),
                      st.sampled_from(["=1+1", "=SUM(A1:A3)", "=cmd|' /C calc'!A0", "Total",
                                       "* Data from IIDS", "As of 9/06/2025"]))
SHEET_NAME = st.one_of(st.text(st.characters(blacklist_categories=("Cs",),
                                             blacklist_characters="\x00"), min_size=1,
                               max_size=12),
                       st.sampled_from(["../../etc", "..", "a/b", "con", ".hidden", "x" * 31]))


@settings(FUZZ, max_examples=60)
@given(sheets=st.dictionaries(SHEET_NAME, st.lists(st.lists(XLSX_CELL, min_size=1, max_size=5),
                                                   min_size=1, max_size=7),
                              min_size=1, max_size=3))
def test_xlsx_workbooks(tmp_path_factory, sheets) -> None:
    path = tmp_path_factory.mktemp("xlsx") / "f.xlsx"
    path.write_bytes(workbook_bytes(sheets))
    read_or_error(path, "xlsx")


@settings(FUZZ, max_examples=120)
@given(cut=st.integers(1, 6000), flips=st.lists(st.tuples(st.integers(0, 10**6),
                                                          st.integers(1, 255)), max_size=4))
def test_xlsx_damaged(tmp_path_factory, cut, flips) -> None:
    data = bytearray(workbook_bytes({"Data": [["Facility", "Count"], ["A", 1], ["B", 2]]}))
    for position, mask in flips:
        data[position % len(data)] ^= mask
    if cut < len(data) and not flips:
        data = data[:cut]
    path = tmp_path_factory.mktemp("xlsx") / "f.xlsx"
    path.write_bytes(bytes(data))
    read_or_error(path, "xlsx-damaged")


# --------------------------------------------------------------------------- through the archive

def tree_state(base: Path, skip: Path) -> dict[str, str]:
    out = {}
    for path in sorted(base.rglob("*")):
        if path.is_file() and skip not in path.parents:
            out[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def hostile_corpus(tmp: Path) -> dict[str, Path]:
    corpus = tmp / "corpus"
    corpus.mkdir()
    files = {
        "formulas.csv": b"name,value\n=cmd|' /C calc'!A0,1\n+SUM(1),2\n@x,3\n-1+1,4\n",
        "control.csv": "name,value\na\x07b,1\n\x1b[31mred,2\n\u202eevil,3\n".encode(),
        "traversal.csv": b"../../etc/passwd,../x\n/abs/path,2\n",
        "dup-headers.csv": b"a,a,,a\n1,2,3,4\n",
        "bom-crlf.csv": b"\xef\xbb\xbfa,b\r\n1,2\r\n",
        "records.json": json.dumps([{"../x": 1, "": "y", "a/b": None}]).encode(),
        "path-sheets.xlsx": workbook_bytes({"../../etc": [["k", "v"], ["a", 1]],
                                            "..\\..\\win": [["k", "v"], ["b", 2]],
                                            "/abs": [["k", "v"], ["c", 3]]}),
        "formula-cells.xlsx": workbook_bytes({"Data": [["name", "v"], ["=1+1", 1],
                                                       ["=cmd|' /C calc'!A0", 2]]}),
        "not-xlsx.xlsx": b"<html><body>error</body></html>",
        "empty-zip.xlsx": b"PK\x05\x06" + b"\x00" * 18,
    }
    out = {}
    for name, data in files.items():
        (corpus / name).write_bytes(data)
        out[name] = corpus / name
    sink = io.BytesIO()
    pq.write_table(pa.table({"../x": [1, 2], "a/b": ["p", "q"]}), sink)
    (corpus / "odd-names.parquet").write_bytes(sink.getvalue())
    out["odd-names.parquet"] = corpus / "odd-names.parquet"
    return out


def test_hostile_corpus_commits_cleanly_or_fails_clearly(archive: Archive, tmp_path: Path) -> None:
    outside = tmp_path.parent
    before = tree_state(outside, archive.root)
    committed = 0
    for i, (name, path) in enumerate(sorted(hostile_corpus(tmp_path).items())):
        COUNTS["corpus"] += 1
        expected = None
        with contextlib.suppress(AtdError):
            expected = read_publication(path)
        try:
            result = archive.commit("ds", path, published=f"2024-01-{i + 1:02d}")
        except AtdError as exc:
            assert "\n" not in str(exc), name
            continue
        committed += 1
        snapshot = result.snapshot
        assert expected is not None, name
        assert snapshot.original_path.read_bytes() == path.read_bytes()
        assert snapshot.table_names == [t.name for t in expected.tables]
        for table in expected.tables:  # the archived table is exactly what the reader saw
            assert snapshot.table(table.name).equals(table.data), (name, table.name)
    assert committed >= 6
    assert verify(Archive(archive.root)) == []
    after = tree_state(outside, archive.root)
    # only the corpus was added outside the archive; nothing else was created or altered
    assert {k: v for k, v in after.items() if "/corpus/" not in k} == \
           {k: v for k, v in before.items() if "/corpus/" not in k}


@pytest.mark.parametrize("kind,name", [
    ("dataset", "../escape"), ("dataset", "a/b"), ("dataset", ".hidden"), ("dataset", ".."),
    ("dataset", "x/../../y"), ("dataset", "a\\b"), ("dataset", "a" * 101), ("dataset", ""),
    ("tag", "../t"), ("tag", "a/b"), ("tag", ".."), ("tag", "x..y"),
    ("channel", "../c"), ("channel", "a/b"), ("channel", ".."),
])
def test_hostile_names_are_refused_without_writes(archive: Archive, tmp_path: Path, kind: str,
                                                  name: str) -> None:
    from conftest import archive_state, write_csv

    COUNTS["names"] += 1
    good = write_csv(tmp_path / "ok.csv", [{"a": 1}])
    if kind == "tag":
        archive.commit("ds", good, published="2024-01-01")
    before = archive_state(archive.root)
    outside = tree_state(tmp_path.parent, archive.root)
    with pytest.raises(AtdError, match=f"invalid {kind} name"):
        if kind == "dataset":
            archive.add_dataset(name)
        elif kind == "tag":
            archive.tag("ds@latest", name)
        else:
            archive.commit("ds", good, published="2024-02-01", channel=name)
    assert archive_state(archive.root) == before
    assert tree_state(tmp_path.parent, archive.root) == outside


# --------------------------------------------------------------------------- resource bounds

LIMIT_BYTES = 3 << 30  # address space for the reader process (pyarrow reserves some)
MAX_RSS_MB = 1000
TIMEOUT = 60

PROBE = textwrap.dedent("""
    import json, resource, sys, time
    resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
    from pathlib import Path
    from atdarchive.errors import AtdError
    from atdarchive.ingest import read_publication
    start = time.monotonic()
    try:
        publication = read_publication(Path(sys.argv[1]))
        outcome = "ok " + ",".join(t.name for t in publication.tables)
    except AtdError as exc:
        outcome = "error " + str(exc)
    peak = [line for line in open("/proc/self/status") if line.startswith("VmHWM")]
    rss_mb = int(peak[0].split()[1]) / 1024 if peak else 0.0  # this process's own peak RSS
    print(json.dumps({{"outcome": outcome, "seconds": time.monotonic() - start,
                       "rss_mb": rss_mb}}))
""").format(limit=LIMIT_BYTES)


def _bomb(path: Path) -> None:
    """A real workbook whose sheet unpacks to 600 MB of XML from ~600 KB."""
    data = workbook_bytes({"S": [["a"]]})
    source = zipfile.ZipFile(io.BytesIO(data))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            member = source.read(info.filename)
            if info.filename != "xl/worksheets/sheet1.xml":
                target.writestr(info.filename, member)
                continue
            head, tail = member.split(b"</sheetData>")
            with target.open(info.filename, "w", force_zip64=True) as out:  # streamed
                out.write(head + b"</sheetData><!--")
                block = b"A" * (1 << 20)
                for _ in range(600):
                    out.write(block)
                out.write(b"-->" + tail)


def _far_cell(path: Path) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet["A1"], sheet["B2"], sheet["XFD1048576"] = "x", 1, 2
    book.save(path)


def _wide(path: Path) -> None:
    path.write_text(",".join(f"c{i}" for i in range(100_000)) + "\n"
                    + ",".join("1" for _ in range(100_000)) + "\n")


def _long(path: Path) -> None:
    path.write_text("site,count\n" + "".join(f"s{i},{i}\n" for i in range(500_000)))


RESOURCE_CASES = {
    "zip-bomb-xlsx": ("bomb.xlsx", _bomb, "error"),
    "far-cell-xlsx": ("far.xlsx", _far_cell, "error"),
    "huge-cell-csv": ("huge.csv", lambda p: p.write_text("a,b\n" + "x" * (50 << 20) + ",1\n"),
                      None),
    "deep-json": ("deep.json", lambda p: p.write_text("[" * 200_000 + "]" * 200_000), "error"),
    "deep-json-records": ("deep2.json", lambda p: p.write_text(
        '[{"a": ' + "[" * 50_000 + "]" * 50_000 + "}]"), "error"),
    "wide-csv": ("wide.csv", _wide, "error wide.csv: columns in one table (100,000 columns)"),
    "half-million-rows-csv": ("long.csv", _long, "ok"),
}


@pytest.mark.parametrize("case", list(RESOURCE_CASES))
def test_resource_bounds(tmp_path: Path, case: str) -> None:
    """Each hostile file: an answer (ok or a clear error) in bounded time and memory."""
    name, make, expect = RESOURCE_CASES[case]
    path = tmp_path / name
    make(path)
    COUNTS["resource:" + case] += 1
    proc = subprocess.run([sys.executable, "-c", PROBE, str(path)], capture_output=True,
                          text=True, timeout=TIMEOUT)
    assert proc.returncode == 0, f"{case}: exit {proc.returncode}: {proc.stderr[-500:]}"
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"\n{case}: {result}")
    assert result["rss_mb"] < MAX_RSS_MB, result
    assert "\n" not in result["outcome"]
    if expect:
        assert result["outcome"].startswith(expect), result
