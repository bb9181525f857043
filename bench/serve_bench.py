"""Server time of every page of `atdarchive serve` over the six FY25 workbooks.

Builds (once, cached under bench/.cache/) an archive of the six real releases
(`tests/data/ice-fy25`), starts `atdarchive serve` as a real process and asks each
page over HTTP: once cold (first request after start), then `--runs` times warm.
Reports the median warm `Server-Timing` (time inside the app, from routing to the
last byte handed to the server) against the goal of 300 ms, and as a ratio to a
baseline measured in the same run: the same server answering its stylesheet
(routing, middleware and a file read, no archive work).

    python bench/serve_bench.py --runs 5
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import requests

HERE = Path(__file__).parent
CACHE = HERE / ".cache"
DATA = HERE.parent / "tests" / "data" / "ice-fy25"
DS = "ice-detention-stats"
BOOKINS = "detention__ice_initial_book_ins_by_arresting_agency_and_month"
FACILITIES = "facilities__ice_enforcement_and_removal_operations_data"
GOAL_MS = 300.0


def build() -> Path:
    from atdarchive import Archive

    root = CACHE / "serve-six"
    if (root / ".built").exists():
        return root
    subprocess.run(["rm", "-rf", str(root)], check=True)
    os.environ.setdefault("GIT_AUTHOR_NAME", "bench")
    os.environ.setdefault("GIT_AUTHOR_EMAIL", "bench@localhost")
    os.environ.setdefault("GIT_COMMITTER_NAME", "bench")
    os.environ.setdefault("GIT_COMMITTER_EMAIL", "bench@localhost")
    archive = Archive.init(root)
    archive.add_dataset(DS)
    for path in sorted(DATA.glob("v*.xlsx")):
        archive.commit(DS, path, published=path.name.split("_")[1])
    (root / ".built").touch()
    return root


def pages() -> list[tuple[str, str]]:
    return [
        ("datasets", "/"),
        ("timeline", f"/datasets/{DS}"),
        ("release", f"/datasets/{DS}/releases/latest"),
        ("table (book-ins)", f"/datasets/{DS}/releases/latest/tables/{BOOKINS}"),
        ("table (facilities)", f"/datasets/{DS}/releases/latest/tables/{FACILITIES}"),
        ("diff (all tables)", f"/datasets/{DS}/diff/latest~1..latest"),
        ("diff (one table)", f"/datasets/{DS}/diff/latest~1..latest?table={BOOKINS}"),
        ("cell history", f"/datasets/{DS}/tables/{BOOKINS}/cell?row=Agency%3DTotal&column=Nov"),
        ("audit", f"/datasets/{DS}/audit"),
        ("audit (JSON twin)", f"/datasets/{DS}/audit?format=json"),
    ]


def server_ms(url: str) -> float:
    response = requests.get(url, timeout=120)
    response.raise_for_status()
    match = re.search(r"dur=([\d.]+)", response.headers["server-timing"])
    assert match, response.headers
    return float(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    root = build()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    server = subprocess.Popen([sys.executable, "-m", "atdarchive.cli", "-C", str(root), "serve",
                               "--port", str(port)], stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                requests.get(base + "/static/app.css", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        baseline = statistics.median(server_ms(base + "/static/app.css")
                                     for _ in range(max(args.runs, 5)))
        print(f"baseline (stylesheet): {baseline:.1f} ms server time; goal {GOAL_MS:.0f} ms")
        print(f"{'page':22} {'cold ms':>9} {'warm ms':>9} {'x base':>8}  goal")
        worst = 0.0
        for name, path in pages():
            cold = server_ms(base + path)
            warm = statistics.median(server_ms(base + path) for _ in range(args.runs))
            worst = max(worst, warm)
            print(f"{name:22} {cold:9.1f} {warm:9.1f} {warm / baseline:8.0f}  "
                  f"{'met' if warm < GOAL_MS else 'NOT met'}")
        print(f"slowest warm page: {worst:.1f} ms ({'within' if worst < GOAL_MS else 'over'} "
              f"the {GOAL_MS:.0f} ms goal)")
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
