"""Plant errors into a real agency XLSX workbook by editing cell XML inside the zip.

Re-saving through openpyxl would rewrite every part of the file (styles, shared strings,
extensions, zip layout), so a test could not tell whether the archive reacted to the planted
error or to the re-save. Here only the asked-for `<c>` elements change: every other zip member
is copied as its raw compressed bytes, in the same order, and the edited worksheet XML is
spliced, not re-serialised. Stdlib only.

Limits, on purpose: no ZIP64, no encrypted members, worksheets whose rows and cells all carry
`r=` (Excel always writes it) and use the default namespace (no `x:` prefixes). A cell that is
the master of a shared formula other cells still use is refused (dropping its `<f>` would
orphan them: their formulas become empty, openpyxl reads each as "="). `xl/calcChain.xml` is
left as is; it is a cache that may now name cells without a formula. `<dimension>` and row
`spans` are not updated when a cell is added outside them (both are hints; readers do not
depend on them). A new cell gets no style. Date cells read back as their serial number.
"""

from __future__ import annotations

import math
import posixpath
import re
import struct
import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path

Value = str | int | float | bool | None

_REF = re.compile(r"([A-Z]{1,3})([1-9][0-9]{0,6})")
_MAX_COL = 16384  # XFD
_MAX_ROW = 1048576
_ATTR = re.compile(rb"([\w:.-]+)\s*=\s*(?:\"([^\"]*)\"|'([^']*)')")
_ROW_TAG = re.compile(rb"<row\b([^>]*?)(/?)>")
_CELL = re.compile(rb"<c\b([^>]*?)(?:/>|>(.*?)</c>)", re.S)
_T_TEXT = re.compile(r"<t\b[^>]*?(?:/>|>(.*?)</t>)", re.S)
_ENTITY = re.compile(r"&(#x[0-9A-Fa-f]+|#[0-9]+|lt|gt|amp|quot|apos);")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"', "apos": "'"}
# Characters XML 1.0 cannot carry, even escaped.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


# -- references ---------------------------------------------------------------------------


def _parse_ref(sheet: str, ref: str) -> tuple[int, int]:
    """(row, column) of an A1 ref, 1-based; ValueError names sheet and cell, so a typo in a
    test's edit list points at itself instead of silently editing nothing."""
    m = _REF.fullmatch(ref) if isinstance(ref, str) else None
    if m is None:
        raise ValueError(f"sheet {sheet!r}: malformed cell ref {ref!r} (expected like 'N20')")
    col = 0
    for ch in m.group(1):
        col = col * 26 + ord(ch) - 64
    row = int(m.group(2))
    if col > _MAX_COL or row > _MAX_ROW:
        raise ValueError(f"sheet {sheet!r}: cell ref {ref!r} is outside the XLSX grid")
    return row, col


def _attrs(tag: bytes) -> dict[str, str]:
    """Attributes of one start tag, unescaped (Excel writes double quotes; both accepted)."""
    return {
        k.decode(): _unescape((a if a is not None else b).decode("utf-8"))
        for k, a, b in (
            (m.group(1), m.group(2), m.group(3)) for m in _ATTR.finditer(tag)
        )
    }


def _unescape(text: str) -> str:
    """Element or attribute text as an XML parser returns it: line ends folded to LF (Excel
    writes literal CR LF inside shared strings; calamine, like any parser, reads LF), then
    entity and character references resolved (so an escaped CR survives)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")

    def one(m: re.Match[str]) -> str:
        name = m.group(1)
        if name.startswith("#x"):
            return chr(int(name[2:], 16))
        if name.startswith("#"):
            return chr(int(name[1:]))
        return _NAMED[name]

    return _ENTITY.sub(one, text)


def _escape(text: str) -> str:
    """Escape for element text; CR as a character reference, since parsers fold a literal
    CR LF into LF."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace(
        "\r", "&#13;"
    )


# -- workbook structure -------------------------------------------------------------------


def _sheet_paths(zf: zipfile.ZipFile) -> dict[str, str]:
    wb = zf.read("xl/workbook.xml")
    rels = zf.read("xl/_rels/workbook.xml.rels")
    targets: dict[str, str] = {}
    for m in re.finditer(rb"<Relationship\b[^>]*>", rels):
        a = _attrs(m.group(0))
        if "Id" in a and "Target" in a and a.get("TargetMode") != "External":
            t = a["Target"]
            # Targets are relative to xl/ unless absolute within the package.
            targets[a["Id"]] = t.lstrip("/") if t.startswith("/") else posixpath.normpath(
                posixpath.join("xl", t)
            )
    out: dict[str, str] = {}
    for m in re.finditer(rb"<sheet\b[^>]*>", wb):
        a = _attrs(m.group(0))
        rid = next((v for k, v in a.items() if k.endswith(":id")), None)
        if "name" in a and rid in targets:
            out[a["name"]] = targets[rid]
    return out


def sheet_paths(xlsx: Path) -> dict[str, str]:
    """Sheet name -> zip member path, from xl/workbook.xml and its rels: sheet N is not
    necessarily xl/worksheets/sheetN.xml, so tests must not guess the member."""
    with zipfile.ZipFile(xlsx) as zf:
        return _sheet_paths(zf)


def _member_for(zf: zipfile.ZipFile, sheet: str, refs: Iterable[str]) -> str:
    paths = _sheet_paths(zf)
    if sheet not in paths:
        cells = ", ".join(refs)
        raise ValueError(
            f"unknown sheet {sheet!r} (cells {cells}); the workbook has {sorted(paths)}"
        )
    return paths[sheet]


def _shared_strings(zf: zipfile.ZipFile) -> list[str]:
    """Shared strings in order; rich-text runs concatenated, phonetic runs (rPh) skipped,
    as Excel displays them."""
    try:
        xml = zf.read("xl/sharedStrings.xml").decode("utf-8")
    except KeyError:
        return []
    out = []
    for m in re.finditer(r"<si\b[^>]*?(?:/>|>(.*?)</si>)", xml, re.S):
        out.append(_inline_text(m.group(1) or ""))
    return out


def _inline_text(body: str) -> str:
    body = re.sub(r"<rPh\b.*?</rPh>", "", body, flags=re.S)
    return "".join(_unescape(t.group(1) or "") for t in _T_TEXT.finditer(body))


# -- worksheet scanning -------------------------------------------------------------------


class _Sheet:
    """Byte offsets of the rows and cells of one worksheet part, found by regex so the part
    can be spliced without re-serialising it."""

    def __init__(self, name: str, xml: bytes) -> None:
        self.name = name
        self.xml = xml
        m = re.search(rb"<sheetData\b[^>]*?(/?)>", xml)
        if m is None:
            raise ValueError(f"sheet {name!r}: no <sheetData> (prefixed namespaces unsupported)")
        self.empty_tag = (m.start(), m.end()) if m.group(1) else None
        self.start = m.end()
        self.end = m.end() if self.empty_tag else xml.index(b"</sheetData>", m.end())
        # row number -> (tag start, tag end, content end or None if self-closing, row end)
        self.rows: dict[int, tuple[int, int, int | None, int]] = {}
        self.order: list[tuple[int, int]] = []  # (row number, tag start)
        pos = self.start
        while True:
            rm = _ROW_TAG.search(xml, pos, self.end)
            if rm is None:
                break
            r = _attrs(rm.group(1)).get("r")
            if r is None or not r.isdigit():
                raise ValueError(f"sheet {name!r}: a <row> without r= is not supported")
            if rm.group(2):
                self.rows[int(r)] = (rm.start(), rm.end(), None, rm.end())
                pos = rm.end()
            else:
                close = xml.index(b"</row>", rm.end())
                self.rows[int(r)] = (rm.start(), rm.end(), close, close + 6)
                pos = close + 6
            self.order.append((int(r), rm.start()))

    def cells(self, row: int) -> list[tuple[int, int, int, dict[str, str], bytes]]:
        """(column, start, end, attributes, body) of each cell in a row, in file order."""
        if row not in self.rows:
            return []
        _, tag_end, content_end, _ = self.rows[row]
        if content_end is None:
            return []
        out = []
        for cm in _CELL.finditer(self.xml, tag_end, content_end):
            a = _attrs(cm.group(1))
            if "r" not in a:
                raise ValueError(f"sheet {self.name!r}: a <c> without r= in row {row}")
            r, c = _parse_ref(self.name, a["r"])
            if r != row:
                raise ValueError(f"sheet {self.name!r}: cell {a['r']} inside row {row}")
            out.append((c, cm.start(), cm.end(), a, cm.group(2) or b""))
        return out


def _cell_value(attrs: dict[str, str], body: bytes, sst: list[str]) -> Value:
    text = body.decode("utf-8")
    t = attrs.get("t", "n")
    if t == "inlineStr":
        m = re.search(r"<is\b[^>]*>(.*?)</is>", text, re.S)
        return _inline_text(m.group(1)) if m else None
    m = re.search(r"<v\b[^>]*?(?:/>|>(.*?)</v>)", text, re.S)
    if m is None or m.group(1) is None:
        return None
    v = _unescape(m.group(1))
    if t == "s":
        return sst[int(v)]
    if t == "b":
        return v.strip() in ("1", "true")
    if t in ("str", "e", "d"):  # formula string, error like '#DIV/0!', ISO date
        return v
    return float(v)


def read_cells(
    xlsx: Path, sheet: str, refs: Iterable[str]
) -> dict[str, str | float | bool | None]:
    """Current values of the given cells, so a test can copy values from one workbook into
    another (shared strings resolved, numbers as float, None when empty or absent; a t="b"
    cell gives a bool, an error cell its text such as '#N/A')."""
    refs = list(refs)
    with zipfile.ZipFile(xlsx) as zf:
        member = _member_for(zf, sheet, refs)
        wanted = {ref: _parse_ref(sheet, ref) for ref in refs}
        ws = _Sheet(sheet, zf.read(member))
        sst = _shared_strings(zf)
    by_row: dict[int, dict[int, Value]] = {}
    for row in {r for r, _ in wanted.values()}:
        by_row[row] = {c: _cell_value(a, body, sst) for c, _, _, a, body in ws.cells(row)}
    return {ref: by_row[r].get(c) for ref, (r, c) in wanted.items()}


# -- worksheet editing --------------------------------------------------------------------


def _new_cell(sheet: str, ref: str, style: str | None, value: Value) -> bytes:
    s = f' s="{style}"' if style is not None else ""
    if value is None:
        return f'<c r="{ref}"{s}/>'.encode()
    if isinstance(value, bool):
        return f'<c r="{ref}"{s} t="b"><v>{int(value)}</v></c>'.encode()
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError(f"sheet {sheet!r} cell {ref}: XLSX cannot store {value!r}")
        if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
            value = int(value)  # '23613', as Excel writes it, not '23613.0'
        return f'<c r="{ref}"{s}><v>{value!r}</v></c>'.encode()
    if isinstance(value, str):
        if _XML_INVALID.search(value):
            raise ValueError(f"sheet {sheet!r} cell {ref}: character XML 1.0 cannot hold")
        space = ' xml:space="preserve"' if value != value.strip() else ""
        return (
            f'<c r="{ref}"{s} t="inlineStr"><is><t{space}>{_escape(value)}</t></is></c>'
        ).encode()
    raise TypeError(f"sheet {sheet!r} cell {ref}: unsupported value type {type(value)!r}")


def _edit_sheet(ws: _Sheet, edits: dict[str, Value]) -> bytes:
    """The worksheet XML with the edited cells replaced or inserted, everything else kept."""
    sheet = ws.name
    by_row: dict[int, dict[int, tuple[str, Value]]] = {}
    for ref, value in edits.items():
        r, c = _parse_ref(sheet, ref)
        by_row.setdefault(r, {})[c] = (ref, value)
    splices: list[tuple[int, int, int, int, bytes]] = []  # (start, row, col, end, bytes)
    dropped_masters: list[tuple[str, str, str]] = []  # (ref, si, range)
    for r, row_edits in sorted(by_row.items()):
        if r in ws.rows:
            tag_start, tag_end, content_end, _ = ws.rows[r]
            cells = ws.cells(r)
            existing = {c: (start, end, a, body) for c, start, end, a, body in cells}
            if content_end is None:  # <row .../> has to open to take a cell
                tag = ws.xml[tag_start:tag_end]
                splices.append((tag_start, r, 0, tag_end, tag[:-2].rstrip() + b">"))
                splices.append((tag_end, r, _MAX_COL + 1, tag_end, b"</row>"))
            for c, (ref, value) in sorted(row_edits.items()):
                if c in existing:
                    start, end, a, body = existing[c]
                    f = re.search(rb"<f\b([^>]*)>", body)
                    if f is not None:
                        fa = _attrs(f.group(1))
                        if fa.get("t") == "shared" and "ref" in fa:
                            dropped_masters.append((ref, fa.get("si", ""), fa["ref"]))
                    splices.append((start, r, c, end, _new_cell(sheet, ref, a.get("s"), value)))
                elif value is not None:
                    before = [e for cc, _, e, _, _ in cells if cc < c]
                    pos = before[-1] if before else tag_end
                    splices.append((pos, r, c, pos, _new_cell(sheet, ref, None, value)))
        else:
            new = [
                _new_cell(sheet, ref, None, v)
                for _, (ref, v) in sorted(row_edits.items())
                if v is not None
            ]
            if new:
                later = [start for rr, start in ws.order if rr > r]
                pos = later[0] if later else ws.end
                splices.append((pos, r, 0, pos, f'<row r="{r}">'.encode() + b"".join(new)
                                + b"</row>"))
    if ws.empty_tag and splices:  # <sheetData/> has to open to take a row
        a, b = ws.empty_tag
        tag = ws.xml[a:b]
        splices.append((a, 0, -1, b, tag[:-2].rstrip() + b">"))
        splices.append((b, _MAX_ROW + 1, 0, b, b"</sheetData>"))
    out, cur = [], 0
    for start, _, _, end, data in sorted(splices, key=lambda s: s[:3]):
        out.append(ws.xml[cur:start])
        out.append(data)
        cur = end
    out.append(ws.xml[cur:])
    new_xml = b"".join(out)
    for ref, si, rng in dropped_masters:
        dependents = re.compile(rb'<f\b[^>]*\bsi="' + re.escape(si.encode()) + rb'"[^>]*>')
        if any(b't="shared"' in m.group(0) for m in dependents.finditer(new_xml)):
            raise ValueError(
                f"sheet {sheet!r} cell {ref}: it holds the shared formula si={si} for {rng}; "
                "replacing it would orphan the other cells of that range (plant one of them "
                "instead, or all of them)"
            )
    return new_xml


# -- zip rewriting ------------------------------------------------------------------------

_EOCD = struct.Struct("<4s4H2LH")
_CDIR = struct.Struct("<4s6H3L5H2L")
_LOCAL = struct.Struct("<4s5H3L2H")


def _rewrite_zip(raw: bytes, replaced: dict[str, bytes]) -> bytes:
    """The zip with the named members' contents replaced. Every other member's local header,
    compressed data and central-directory record is copied byte for byte (only offsets move),
    so the file differs from the source in the replaced members alone."""
    pos = raw.rfind(b"PK\x05\x06", max(0, len(raw) - 65557))
    # The record's comment must run to the end of the file; else the signature was in a comment.
    while pos >= 0 and pos + _EOCD.size + _EOCD.unpack_from(raw, pos)[-1] != len(raw):
        pos = raw.rfind(b"PK\x05\x06", max(0, len(raw) - 65557), pos)
    if pos < 0:
        raise ValueError("not a zip file (no end of central directory)")
    sig, disk, cd_disk, n_disk, n_total, cd_size, cd_off, clen = _EOCD.unpack_from(raw, pos)
    if 0xFFFF in (n_disk, n_total) or 0xFFFFFFFF in (cd_size, cd_off) or disk or cd_disk:
        raise ValueError("ZIP64 or multi-disk archives are not supported")
    entries = []  # (central record bytes, name, local offset)
    p = cd_off
    for _ in range(n_total):
        rec = _CDIR.unpack_from(raw, p)
        nlen, xlen, klen = rec[10], rec[11], rec[12]
        size = _CDIR.size + nlen + xlen + klen
        name = raw[p + _CDIR.size : p + _CDIR.size + nlen].decode(
            "utf-8" if rec[3] & 0x800 else "cp437"
        )
        if 0xFFFFFFFF in (rec[8], rec[9], rec[16]):
            raise ValueError(f"member {name!r}: ZIP64 is not supported")
        entries.append((raw[p : p + size], name, rec[16]))
        p += size
    missing = set(replaced) - {name for _, name, _ in entries}
    if missing:
        raise ValueError(f"no such zip members: {sorted(missing)}")
    # A member's local record runs up to the next one (by offset) or to the central directory,
    # which keeps any data descriptor with it.
    offsets = sorted(off for _, _, off in entries)
    span_end = {a: b for a, b in zip(offsets, [*offsets[1:], cd_off], strict=True)}
    out = bytearray(raw[: offsets[0]] if offsets else b"")
    new_off: dict[int, int] = {}
    new_rec: dict[int, tuple[int, int, int, int]] = {}  # flags, crc, csize, usize
    by_off = {off: name for _, name, off in entries}
    for off in offsets:
        new_off[off] = len(out)
        name = by_off[off]
        if name not in replaced:
            out += raw[off : span_end[off]]
            continue
        (lsig, ver, flags, method, mtime, mdate, _, _, _, nlen, xlen) = _LOCAL.unpack_from(
            raw, off
        )
        if flags & 0x1:
            raise ValueError(f"member {name!r} is encrypted")
        data = replaced[name]
        if method == zipfile.ZIP_DEFLATED:
            co = zlib.compressobj(6, zlib.DEFLATED, -15)
            packed = co.compress(data) + co.flush()
        elif method == zipfile.ZIP_STORED:
            packed = data
        else:
            raise ValueError(f"member {name!r}: compression method {method} not supported")
        flags &= ~0x08  # sizes go in the header; no data descriptor
        crc = zlib.crc32(data)
        head = _LOCAL.pack(lsig, ver, flags, method, mtime, mdate, crc, len(packed), len(data),
                           nlen, xlen)
        out += head + raw[off + _LOCAL.size : off + _LOCAL.size + nlen + xlen] + packed
        new_rec[off] = (flags, crc, len(packed), len(data))
    cd_start = len(out)
    for rec_bytes, _, off in entries:
        rec = bytearray(rec_bytes)
        struct.pack_into("<L", rec, 42, new_off[off])
        if off in new_rec:
            flags, crc, csize, usize = new_rec[off]
            struct.pack_into("<H", rec, 8, flags)
            struct.pack_into("<3L", rec, 16, crc, csize, usize)
        out += rec
    cd_len = len(out) - cd_start
    out += _EOCD.pack(sig, 0, 0, n_disk, n_total, cd_len, cd_start, clen)
    out += raw[pos + _EOCD.size : pos + _EOCD.size + clen]
    return bytes(out)


def plant(src: Path, dst: Path, edits: dict[tuple[str, str], Value]) -> None:
    """Copy src to dst with each (sheet name, cell ref) set to its value: a number as a plain
    `<v>`, a str as an inline string, None as an empty cell; the cell keeps its style and loses
    any formula and type so the planted value stands alone. Nothing else in the file moves, so
    a test sees exactly the planted change. Everything is checked before dst is written."""
    raw = Path(src).read_bytes()
    by_sheet: dict[str, dict[str, Value]] = {}
    for key, value in edits.items():
        sheet, ref = key
        _parse_ref(sheet, ref)
        by_sheet.setdefault(sheet, {})[ref] = value
    replaced: dict[str, bytes] = {}
    with zipfile.ZipFile(src) as zf:
        for sheet, cells in by_sheet.items():
            member = _member_for(zf, sheet, cells)
            xml = zf.read(member)
            edited = _edit_sheet(_Sheet(sheet, xml), cells)
            if edited != xml:  # e.g. None for an absent cell: keep the member as stored
                replaced[member] = edited
    Path(dst).write_bytes(_rewrite_zip(raw, replaced) if replaced else raw)
