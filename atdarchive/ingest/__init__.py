"""Turn an original publication file into tables: `read_publication` picks the reader.

The format is recognised from the file's first bytes before its extension, because agencies
rename files freely and web servers hand out HTML error pages under ``.xlsx`` names:

* zip with ``xl/workbook.xml`` (or ``xl/workbook.bin``) -> XLSX (XLSB); zip with an
  OpenDocument spreadsheet ``mimetype`` -> ODS; any other zip is refused;
* OLE2 (``D0 CF 11 E0``) -> XLS, unless it holds an ``EncryptedPackage`` stream, which is how
  Office stores a password-protected XLSX: refused as "password-protected or encrypted";
* ``PAR1`` -> Parquet; ``{`` or ``[`` after whitespace -> JSON;
* ``<`` (HTML, XML) -> refused, "is HTML, not a spreadsheet";
* otherwise the extension decides (.csv/.txt, .tsv/.tab, .json, .parquet); a text file under
  a spreadsheet extension is refused, any other text file is read as CSV.

Every read is bounded (`atdarchive.limits.ingest`): the file's size first, then what the
file declares (a CSV's header, a Parquet footer, a zip directory, sheet extents) before
the expensive step, and the tables read once more before they reach the archive.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import Any

from atdarchive.errors import IngestError
from atdarchive.ingest.model import Publication
from atdarchive.ingest.tabular import check_names, read_csv, read_json, read_parquet
from atdarchive.ingest.xlsx import check_zip, read_workbook
from atdarchive.limits.ingest import DEFAULT, IngestBounds

__all__ = ["FORMATS", "check_tables", "read_publication", "sniff_format"]

FORMATS = ("xlsx", "xlsm", "xlsb", "xls", "ods", "csv", "tsv", "json", "parquet")
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ENCRYPTED = "EncryptedPackage".encode("utf-16-le")
_ODS_MIME = b"application/vnd.oasis.opendocument.spreadsheet"
_HEAD = 4096
_BY_EXTENSION = {
    ".csv": "csv",
    ".txt": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".json": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
}
_SPREADSHEET_EXTENSIONS = {".xlsx", ".xlsm", ".xlsb", ".xls", ".ods"}
_WORKBOOKS = ("xlsx", "xlsm", "xlsb", "xls", "ods")


def _zip_format(path: Path, bounds: IngestBounds) -> str:
    names = check_zip(path, bounds)
    if "xl/workbook.xml" in names:
        return "xlsx"
    if "xl/workbook.bin" in names:
        return "xlsb"
    if "mimetype" in names and "content.xml" in names:
        with zipfile.ZipFile(path) as archive:
            if archive.read("mimetype").strip() == _ODS_MIME:
                return "ods"
    raise IngestError(f"{path.name}: a zip archive but not an XLSX or ODS workbook")


def _markup_error(path: Path, text: bytes) -> IngestError:
    lowered = text.lower()
    if b"urn:schemas-microsoft-com:office:spreadsheet" in lowered:
        return IngestError(
            f"{path.name}: is an XML Spreadsheet 2003 file, not supported; save it as XLSX"
        )
    return IngestError(f"{path.name}: is HTML, not a spreadsheet (starts with {text[:20]!r})")


_CONFLICT_RE = re.compile(rb"^(?:<{7}|={7}|>{7})(?: |\r?$)", re.MULTILINE)
_CONFLICT_SCAN = 4 << 20  # the first 4 MiB: markers sit near what was edited


def conflict_marker_error(path: Path) -> IngestError | None:
    """A text file holding git merge-conflict markers: the agency published a file in the
    middle of an unresolved merge. Said as such, not as "HTML" or "ragged row"."""
    with path.open("rb") as handle:
        data = handle.read(_CONFLICT_SCAN)
    match = _CONFLICT_RE.search(data)
    if match is None or b"\x00" in data[:_HEAD]:
        return None
    line = data.count(b"\n", 0, match.start()) + 1
    shown = data[match.start():data.find(b"\n", match.start())].decode("utf-8", "replace")
    return IngestError(f"{path.name}: holds git merge-conflict markers ({shown.strip()[:40]!r} "
                       f"at line {line}): an unresolved merge was published, not a table")


def sniff_format(path: Path, bounds: IngestBounds = DEFAULT) -> str:
    """The reader to use for `path`, from its first bytes, then its extension."""
    with path.open("rb") as handle:
        head = handle.read(_HEAD)
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return _zip_format(path, bounds)
    if head.startswith(_OLE2):
        if _ENCRYPTED in path.read_bytes():
            raise IngestError(f"{path.name}: password-protected or encrypted workbook")
        return "xls"
    if head.startswith(b"PAR1"):
        return "parquet"
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if text.startswith(b"<"):
        raise conflict_marker_error(path) or _markup_error(path, text)
    if text.startswith((b"{", b"[")):
        return "json"
    suffix = path.suffix.lower()
    if suffix in _BY_EXTENSION:
        return _BY_EXTENSION[suffix]
    if suffix in _SPREADSHEET_EXTENSIONS:
        raise IngestError(
            f"{path.name}: not a spreadsheet (no XLSX/XLS/ODS signature; starts with {head[:16]!r})"
        )
    if b"\x00" in head:
        raise IngestError(f"{path.name}: unrecognised binary format (starts with {head[:8]!r})")
    return "csv"


def read_publication(
    path: Path,
    *,
    format: str | None = None,
    delimiter: str | None = None,
    encoding: str | None = None,
    spec: dict[str, Any] | None = None,
    json_path: str | None = None,
    bounds: IngestBounds = DEFAULT,
) -> Publication:
    """Read one original publication file into its tables, notes and stated dates.

    `format` skips sniffing (one of `FORMATS`); `delimiter`/`encoding` apply to CSV/TSV;
    `spec` is the extraction spec for workbooks (see `xlsx.read_workbook`); `json_path`
    picks the list of records inside a JSON document (`a.b`); `bounds` are the resource
    bounds in force (a dataset's `[limits]`, see `limits.ingest.dataset_bounds`). Every
    problem with the file is an `IngestError` naming it (`IngestLimitExceeded` for a bound).
    """
    path = Path(path)
    if not path.exists():
        raise IngestError(f"{path.name}: file not found ({path})")
    if not path.is_file():
        raise IngestError(f"{path.name}: not a regular file ({path})")
    size = path.stat().st_size
    if size == 0:
        raise IngestError(f"{path.name}: empty file (0 bytes)")
    bounds.check(path.name, "ingest.max_file_bytes", size)
    if format is not None and format.lower() not in FORMATS:
        raise IngestError(f"{path.name}: unknown format {format!r} (one of {', '.join(FORMATS)})")
    fmt = format.lower() if format else sniff_format(path, bounds)
    if fmt in _WORKBOOKS:  # a given workbook format still gets its container checked
        fmt = sniff_format(path, bounds)
        if fmt not in _WORKBOOKS:
            raise IngestError(f"{path.name}: not a workbook (its content reads as {fmt})")
    if fmt in ("csv", "tsv", "json") and (conflict := conflict_marker_error(path)):
        raise conflict
    if fmt in ("csv", "tsv"):
        publication = read_csv(path, delimiter=delimiter or ("\t" if fmt == "tsv" else None),
                               encoding=encoding, bounds=bounds)
    elif fmt == "json":
        publication = read_json(path, json_path, bounds)
    elif fmt == "parquet":
        publication = read_parquet(path, bounds)
    else:
        publication = read_workbook(path, spec, fmt=fmt, bounds=bounds)
    check_tables(path, publication, bounds)
    return publication


def check_tables(path: Path, publication: Publication, bounds: IngestBounds = DEFAULT) -> None:
    """The tables a reader made, against the bounds once more: whatever a reader could not
    check beforehand (a workbook's header names) never reaches the record or the ledger."""
    for table in publication.tables:
        subject = f"{path.name}: table {table.name!r}"
        data = table.data
        bounds.check(subject, "ingest.max_columns", data.num_columns)
        bounds.check(subject, "ingest.max_rows", data.num_rows)
        bounds.check(subject, "ingest.max_cells", data.num_rows * data.num_columns)
        check_names(subject, data.column_names, bounds)
