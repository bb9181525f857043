"""The watch part of the demo: a local server plays ice.gov's detention-management page
over a season — the six FY25 workbooks as successive releases, then one silent
same-name revision and one withdrawal — and `atdarchive watch` keeps an archive current.

Usage: python demo/watch_demo.py DATA_DIR OUT_DIR   (offline: 127.0.0.1 only)
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.agency_site import AgencySite  # noqa: E402
from tests.xlsx_plant import plant, read_cells  # noqa: E402

DS = "ice-detention-stats"


def run(*args: str, check: bool = True) -> None:
    print(f"\n\033[1m$ atdarchive {' '.join(args)}\033[0m", flush=True)
    done = subprocess.run(["atdarchive", *args], check=False)
    if check and done.returncode not in (0, 1):
        raise SystemExit(done.returncode)


def main() -> None:
    data, out = Path(sys.argv[1]), Path(sys.argv[2])
    releases = sorted(data.glob("v0*.xlsx"))
    root = str(out / "watched")
    with AgencySite() as site:
        run("init", root)
        run("-C", root, "dataset", "add", DS, "--title", "ICE Detention Statistics FY2025")
        run("-C", root, "source", "add", DS, "--page", f"{site.base}/detain/detention-management",
            "--link", r"detentionStats.*\.xlsx", "--published", "filename:%m%d%Y")
        names = []
        for path in releases:  # each release under ICE's own file name, dated by it
            day = path.name.split("_")[1]
            name = f"FY25_detentionStats{day[5:7]}{day[8:10]}{day[:4]}.xlsx"
            names.append(name)
            site.page("/detain/detention-management", [(f"/doclib/detention/{name}",
                                                        "FY 2025 Detention Statistics")])
            site.file(f"/doclib/detention/{name}", path.read_bytes())
            print(f"\n-- the page now links {name}")
            run("-C", root, "watch", "--delay", "0")
        print("\n-- nothing new: the pass is a check (one per source and day in the ledger)")
        run("-C", root, "watch", "--delay", "0", "--exit-code")

        print(f"\n-- ICE silently replaces {names[-1]} under the same name (the SmartLINK "
              "count changed)")
        revised = out / "revised.xlsx"
        cell = read_cells(releases[-1], "ATD FY25 YTD", ["B9"])["B9"]
        plant(releases[-1], revised, {("ATD FY25 YTD", "B9"): str(int(cell) + 400)})
        site.file(f"/doclib/detention/{names[-1]}", revised.read_bytes())
        run("-C", root, "watch", "--delay", "0", "--exit-code")

        print("\n-- the file is withdrawn: its URL answers 404")
        del site.routes[f"/doclib/detention/{names[-1]}"]
        run("-C", root, "watch", "--delay", "0", "--exit-code")

        print("\n-- a hostile page: a new link redirects to the cloud metadata address "
              "(server-side request forgery); the hop is refused before any connection")
        bad = "FY25_detentionStats09302025.xlsx"
        site.page("/detain/detention-management", [(f"/doclib/detention/{bad}", "FY 2025")])
        site.file(f"/doclib/detention/{bad}", b"", redirect="http://169.254.169.254/latest/")
        run("-C", root, "watch", "--delay", "0", check=False)
    run("-C", root, "log", DS, "--oneline")
    run("-C", root, "log", DS, "-n", "1")
    run("-C", root, "audit", DS, "--since", "2025-09-01")
    run("-C", root, "verify", DS)
    run("-C", root, "export", DS, "--warc", str(out / "watched.warc.gz"))
    from warcio.archiveiterator import ArchiveIterator

    with open(out / "watched.warc.gz", "rb") as fh:
        kinds = [r.rec_type for r in ArchiveIterator(fh)]
    print(f"warcio reads back {len(kinds)} WARC records: "
          + ", ".join(f"{kinds.count(k)} {k}" for k in sorted(set(kinds))))


if __name__ == "__main__":
    main()
