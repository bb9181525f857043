"""Run every benchmark at its default (README) sizes; each prints its own table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
BENCHES = [
    ("startup", ["startup_bench.py"]),
    ("log", ["log_bench.py", "--snapshots", "1000"]),
    ("ingest", ["ingest_bench.py"]),
    ("diff", ["diff_bench.py", "--rows", "1000000,5000000"]),
    ("identity", ["identity_bench.py", "--rows", "1000000"]),
    ("blame", ["blame_bench.py", "--releases", "10,50,200"]),
    ("audit", ["audit_bench.py"]),
    ("vintages", ["vintages_bench.py", "--rows", "100000", "--releases", "50"]),
    ("serve", ["serve_bench.py", "--runs", "5"]),
]

if __name__ == "__main__":
    for name, args in BENCHES:
        print(f"\n===== {name} =====", flush=True)
        subprocess.run([sys.executable, str(HERE / args[0]), *args[1:]], check=True)
