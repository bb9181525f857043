"""tests/xlsx_plant.py on a real ICE workbook: planted cells change, nothing else moves."""

from __future__ import annotations

import re
import struct
import zipfile
from pathlib import Path

import pytest
from python_calamine import CalamineWorkbook
from xlsx_plant import plant, read_cells, sheet_paths

DATA = Path(__file__).parent / "data" / "ice-fy25"
V05 = DATA / "v05_2025-08-29_FY25_detentionStats08292025.xlsx"
V06 = DATA / "v06_2025-09-11_FY25_detentionStats09112025.xlsx"
SHEET = "Detention FY25"

# B11 holds a plain number, A20 the shared string 'Total', D11 the formula SUM(B11:C11).
EDITS = {
    (SHEET, "B11"): 12345,
    (SHEET, "A20"): "Planted <&> 'text'",
    (SHEET, "D11"): 0.125,
}


def _grid(path: Path, sheet: str) -> list[list[object]]:
    return CalamineWorkbook.from_path(str(path)).get_sheet_by_name(sheet).to_python()


def _rc(ref: str) -> tuple[int, int]:
    """0-based (row, column) of an A1 ref, for indexing calamine's grid."""
    letters, digits = re.fullmatch(r"([A-Z]+)(\d+)", ref).groups()
    col = 0
    for ch in letters:
        col = col * 26 + ord(ch) - 64
    return int(digits) - 1, col - 1


def _local_records(path: Path) -> dict[str, bytes]:
    """Each member's local header plus compressed data, as stored in the file."""
    data = path.read_bytes()
    out = {}
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            nlen, xlen = struct.unpack_from("<2H", data, info.header_offset + 26)
            end = info.header_offset + 30 + nlen + xlen + info.compress_size
            out[info.filename] = data[info.header_offset : end]
    return out


def _cut(xml: bytes, refs: list[str]) -> bytes:
    """The XML with the `<c>` elements of the given cells removed (each must occur once)."""
    for ref in refs:
        tag = f'<c r="{ref}"'.encode()
        assert xml.count(tag) == 1, ref
        start = xml.index(tag)
        tag_end = xml.index(b">", start) + 1
        end = tag_end if xml[tag_end - 2 : tag_end] == b"/>" else xml.index(b"</c>", start) + 4
        xml = xml[:start] + xml[end:]
    return xml


def _element(xml: bytes, ref: str) -> bytes:
    return re.search(rb'<c r="' + ref.encode() + rb'"(?: [^>]*?)?(?:/>|>.*?</c>)', xml,
                     re.S).group(0)


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dst = tmp_path_factory.mktemp("plant") / "planted.xlsx"
    plant(V06, dst, EDITS)
    return dst


def test_sheet_paths_follow_the_workbook_rels() -> None:
    paths = sheet_paths(V06)
    assert paths[SHEET] == "xl/worksheets/sheet3.xml"
    assert paths["Monthly Segregation"] == "xl/worksheets/sheet8.xml"
    assert paths["Vulnerable & Special Population"] == "xl/worksheets/sheet9.xml"  # &amp;
    assert len(paths) == 10


def test_read_cells_agrees_with_calamine() -> None:
    # Detention FY25 holds numbers, shared strings and formula results, and no dates
    # (read_cells gives date cells as their serial number, calamine as a date).
    grid = _grid(V06, SHEET)
    refs = {}
    for r, row in enumerate(grid):
        for c, _ in enumerate(row):
            col, n = "", c + 1
            while n:
                n, rem = divmod(n - 1, 26)
                col = chr(65 + rem) + col
            refs[f"{col}{r + 1}"] = (r, c)
    got = read_cells(V06, SHEET, refs)
    assert {ref: (grid[r][c] if grid[r][c] != "" else None) for ref, (r, c) in refs.items()} == got
    assert got["A20"] == "Total" and got["B11"] == 238.0
    assert read_cells(V06, SHEET, ["ZZ999", "B11"]) == {"ZZ999": None, "B11": 238.0}


def test_planted_values_read_back(planted: Path) -> None:
    assert read_cells(planted, SHEET, ["B11", "A20", "D11"]) == {
        "B11": 12345.0,
        "A20": "Planted <&> 'text'",
        "D11": 0.125,
    }


def test_other_members_are_byte_identical(planted: Path) -> None:
    with zipfile.ZipFile(V06) as a, zipfile.ZipFile(planted) as b:
        assert b.testzip() is None
        assert a.namelist() == b.namelist()  # same members, same order
        infos_a, infos_b = a.infolist(), b.infolist()
        for ia, ib in zip(infos_a, infos_b, strict=True):
            assert ia.compress_type == ib.compress_type, ia.filename
            assert (ia.date_time, ia.external_attr, ia.extra) == (
                ib.date_time, ib.external_attr, ib.extra
            ), ia.filename
        member = sheet_paths(V06)[SHEET]
        for name in a.namelist():
            if name != member:
                assert a.read(name) == b.read(name), name
    raw_a, raw_b = _local_records(V06), _local_records(planted)
    assert {n: r for n, r in raw_a.items() if n != member} == {
        n: r for n, r in raw_b.items() if n != member
    }
    assert raw_a[member] != raw_b[member]


def test_sheet_xml_differs_only_inside_the_edited_cells(planted: Path) -> None:
    member = sheet_paths(V06)[SHEET]
    with zipfile.ZipFile(V06) as a, zipfile.ZipFile(planted) as b:
        old, new = a.read(member), b.read(member)
    refs = [ref for _, ref in EDITS]
    assert old != new
    assert _cut(old, refs) == _cut(new, refs)
    # The cells keep their style and lose formula and type.
    assert _element(old, "B11") == b'<c r="B11" s="197"><v>238</v></c>'
    assert _element(new, "B11") == b'<c r="B11" s="197"><v>12345</v></c>'
    assert _element(old, "A20") == b'<c r="A20" s="189" t="s"><v>943</v></c>'
    assert _element(new, "A20") == (
        b'<c r="A20" s="189" t="inlineStr"><is><t>Planted &lt;&amp;&gt; \'text\'</t></is></c>'
    )
    assert _element(old, "D11") == b'<c r="D11" s="198"><f>SUM(B11:C11)</f><v>6740</v></c>'
    assert _element(new, "D11") == b'<c r="D11" s="198"><v>0.125</v></c>'


def test_calamine_reads_planted_cells_and_nothing_else_changed(planted: Path) -> None:
    old, new = _grid(V06, SHEET), _grid(planted, SHEET)
    assert len(old) == len(new) and len(old[0]) == len(new[0])
    planted_at = {_rc(ref): value for (_, ref), value in EDITS.items()}
    for r, (row_old, row_new) in enumerate(zip(old, new, strict=True)):
        for c, (x, y) in enumerate(zip(row_old, row_new, strict=True)):
            assert y == planted_at.get((r, c), x), (r, c)
    # Other sheets are untouched (their members are copied as stored).
    for sheet in ("ATD FY25 YTD", "Facilities FY25", "Footnotes"):
        assert _grid(V06, sheet) == _grid(planted, sheet), sheet


def test_copy_a_block_from_v05_into_v06(tmp_path: Path) -> None:
    # Book-in counts by criminality (B11:C14) and the last two months by arresting agency
    # (T21:U22): plain numbers that v06 revised.
    block = [f"{c}{r}" for r in range(11, 15) for c in "BC"] + ["T21", "U21", "T22", "U22"]
    old = read_cells(V05, SHEET, block)
    new = read_cells(V06, SHEET, block)
    assert all(isinstance(v, float) for v in old.values())
    assert all(old[ref] != new[ref] for ref in block)
    dst = tmp_path / "v06_with_v05_block.xlsx"
    plant(V06, dst, {(SHEET, ref): value for ref, value in old.items()})
    assert read_cells(dst, SHEET, block) == old
    grid_v06, grid = _grid(V06, SHEET), _grid(dst, SHEET)
    for ref in block:
        r, c = _rc(ref)
        assert grid[r][c] == old[ref]
    # Totals are formulas whose cached values still say v06: exactly the inconsistency a
    # planted error makes.
    assert grid[10][3] == grid_v06[10][3] == 6740.0  # D11 = SUM(B11:C11) as cached
    assert grid[20][21] == grid_v06[20][21]  # V21 = SUM(J21:U21)


def test_new_cells_rows_and_emptied_cells(tmp_path: Path) -> None:
    dst = tmp_path / "inserted.xlsx"
    edits = {
        (SHEET, "H21"): 7,  # absent: row 21 goes from F21 to I21
        (SHEET, "AZ21"): "end of row",  # after the last cell of the row
        (SHEET, "B250"): 1.5,  # a new row after the last one
        (SHEET, "C11"): None,  # emptied, style kept
    }
    plant(V06, dst, edits)
    member = sheet_paths(V06)[SHEET]
    with zipfile.ZipFile(dst) as zf:
        xml = zf.read(member)
    row21 = re.search(rb'<row r="21".*?</row>', xml, re.S).group(0)
    cols = re.findall(rb'<c r="([A-Z]+)21"', row21)
    assert cols.index(b"H") == cols.index(b"F") + 1 == cols.index(b"I") - 1
    assert cols[-1] == b"AZ"
    assert _element(xml, "H21") == b'<c r="H21"><v>7</v></c>'
    assert _element(xml, "C11") == b'<c r="C11" s="197"/>'
    assert xml.index(b'<row r="250"><c r="B250"><v>1.5</v></c></row></sheetData>') > 0
    assert read_cells(dst, SHEET, ["H21", "AZ21", "B250", "C11"]) == {
        "H21": 7.0, "AZ21": "end of row", "B250": 1.5, "C11": None
    }
    grid = _grid(dst, SHEET)
    assert grid[20][7] == 7.0 and grid[20][51] == "end of row" and grid[249][1] == 1.5
    assert grid[10][2] == ""


def test_shared_formula_master_is_refused_unless_its_range_goes_too(tmp_path: Path) -> None:
    # J20 holds SUM(J21:J22) shared by J20:U20; dropping it alone would orphan K20:U20.
    with pytest.raises(ValueError, match=r"Detention FY25.*J20.*shared formula"):
        plant(V06, tmp_path / "x.xlsx", {(SHEET, "J20"): 1})
    assert not (tmp_path / "x.xlsx").exists()
    plant(V06, tmp_path / "y.xlsx", {(SHEET, f"{c}20"): 1 for c in "JKLMNOPQRSTU"})
    plant(V06, tmp_path / "z.xlsx", {(SHEET, "K20"): 1})  # a dependent is fine
    assert read_cells(tmp_path / "z.xlsx", SHEET, ["K20", "L20"]) == {"K20": 1.0, "L20": 22120.0}


def test_unknown_sheet_raises(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"'No such sheet'.*N20"):
        plant(V06, tmp_path / "x.xlsx", {("No such sheet", "N20"): 1})
    with pytest.raises(ValueError, match="'No such sheet'"):
        read_cells(V06, "No such sheet", ["N20"])
    assert not (tmp_path / "x.xlsx").exists()


@pytest.mark.parametrize("ref", ["n20", "20N", "A0", "$A$1", "XFE1", "A1048577", "", "A1:B2"])
def test_malformed_ref_raises(tmp_path: Path, ref: str) -> None:
    with pytest.raises(ValueError, match=rf"Detention FY25.*{re.escape(repr(ref))}"):
        plant(V06, tmp_path / "x.xlsx", {(SHEET, ref): 1})
    with pytest.raises(ValueError, match="Detention FY25"):
        read_cells(V06, SHEET, [ref])
