"""The real series against the ingest bounds: how far below each default they sit.

    .venv/bin/python bench/real_series_limits.py [DATA_DIR] [--ledger]

Reads every release in DATA_DIR (default /work/shared/data: CSV, XLSX, JSON) and prints,
per bound of `atdarchive.limits.ingest`, the largest value seen, where, and the default.
There is no real Parquet release: each table read is written as Parquet (as the archive
stores it) and its footer measured. `--ledger` also commits every series into a scratch
archive and measures its ledger lines (slow: a minute or two).
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import zipfile
from collections import defaultdict
from pathlib import Path

import pyarrow.parquet as pq
import python_calamine

from atdarchive import limits
from atdarchive.errors import AtdError
from atdarchive.ingest import read_publication, sniff_format
from atdarchive.ingest.xlsx import _sheet_parts, sheet_extent

JSON_PATHS = {"calfire-incidents-2021": "AllYearIncidents"}


def measure(root: Path, scratch: Path) -> dict[str, tuple[float, str]]:
    best: dict[str, tuple[float, str]] = defaultdict(lambda: (0, ""))

    def see(name: str, amount: float, where: str) -> None:
        if amount > best[name][0]:
            best[name] = (amount, where)

    for path in sorted(root.glob("*/v*")):
        if path.stat().st_size == 0:
            continue
        where = f"{path.parent.name}/{path.name[:3]}"
        see("ingest.max_file_bytes", path.stat().st_size, where)
        fmt = sniff_format(path)
        raw = path.read_bytes()
        if fmt == "csv":
            first = next(line for line in raw.splitlines() if line.strip())
            see("ingest.max_header_bytes", len(first), where)
        if fmt == "json":
            see("ingest.max_json_bytes", len(raw), where)
            see("JSON number (characters)", max(map(len, re.findall(
                rb"-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?", raw)), default=0), where)
        if fmt == "xlsx":
            with zipfile.ZipFile(path) as archive:
                see("ingest.max_zip_uncompressed_bytes",
                    sum(i.file_size for i in archive.infolist()), where)
                for part in _sheet_parts(archive).values():
                    rows, cols = sheet_extent(archive.read(part))
                    see("ingest.max_sheet_cells", rows * cols, where)
                    see("ingest.max_columns (sheet width)", cols, where)
            book = python_calamine.CalamineWorkbook.from_path(path)
            for name in book.sheet_names:
                ranges = book.get_sheet_by_name(name).merged_cell_ranges or []
                see("ingest.max_merged_cells", sum(
                    (r1 - r0 + 1) * (c1 - c0 + 1) for (r0, c0), (r1, c1) in ranges), where)
        try:
            publication = read_publication(path, json_path=JSON_PATHS.get(path.parent.name))
        except AtdError as exc:
            print(f"  not read: {where}: {str(exc)[:100]}")
            continue
        for table in publication.tables:
            data = table.data
            see("ingest.max_columns", data.num_columns, where)
            see("ingest.max_rows", data.num_rows, where)
            see("ingest.max_cells", data.num_rows * data.num_columns, where)
            see("ingest.max_column_name_chars", max(map(len, data.column_names)), where)
            written = scratch / "t.parquet"
            pq.write_table(data, written)
            meta = pq.read_metadata(written)
            see("ingest.max_parquet_footer_bytes", meta.serialized_size, where)
            see("ingest.max_parquet_uncompressed_bytes", sum(
                meta.row_group(i).total_byte_size for i in range(meta.num_row_groups)), where)
    return best


def ledger_lines(root: Path, scratch: Path) -> tuple[int, str]:
    from atdarchive import Archive

    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    archive = Archive.init(scratch / "archive")
    longest = (0, "")
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        archive.add_dataset(folder.name)
        for day, path in enumerate(sorted(folder.glob("v*")), start=1):
            if path.stat().st_size == 0:
                continue
            try:
                archive.commit(folder.name, path, published=f"2000-01-01T00:{day:02d}:00Z",
                               json_path=JSON_PATHS.get(folder.name), keep_unparsed=True)
            except AtdError as exc:
                print(f"  not committed: {path.name}: {str(exc)[:100]}")
        for line in archive.ledger(folder.name).path.read_bytes().splitlines():
            longest = max(longest, (len(line), folder.name))
    return longest


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    root = Path(args[0] if args else "/work/shared/data")
    with tempfile.TemporaryDirectory() as tmp:
        best = measure(root, Path(tmp))
        if "--ledger" in sys.argv:
            best["ledger.max_line_bytes"] = ledger_lines(root, Path(tmp))
    print(f"| {'bound':40} | {'largest seen':>14} | {'where':42} | {'default':>14} |")
    for name, (amount, where) in sorted(best.items()):
        key = name.split(" ")[0]
        default = limits.LIMITS[key].default if key in limits.LIMITS else None
        shown = f"{default:,.0f}" if default is not None else "-"
        print(f"| {name:40} | {amount:>14,.0f} | {where:42} | {shown:>14} |")


if __name__ == "__main__":
    main()
