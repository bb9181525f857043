"""How fast the `atdarchive` command starts: `--help` and `log --oneline`.

Times whole fresh processes, best of N runs, interleaved in the same run with
two baselines: a bare `python -c pass` (the floor) and `python -c "import
pyarrow"` (what one heavy import costs). `log --oneline` runs on the
repository's own archive (`datasets/ice-detention-stats`). The budget: each
command at most 0.15 s above bare Python.

Processes run as an installed command does: with cached bytecode. So that no
`__pycache__` lands in the source tree (and PYTHONDONTWRITEBYTECODE does not
make every run recompile), bytecode goes to bench/.cache/pycache, and one
untimed warm-up run of each command fills it.

    python bench/startup_bench.py [--runs 15] [--budget 0.15]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYCACHE = Path(__file__).resolve().parent / ".cache" / "pycache"


def commands() -> list[tuple[str, list[str], bool]]:
    """(label, argv, has a budget) for every process timed."""
    exe = str(Path(sys.executable).with_name("atdarchive"))
    return [
        ("python -c pass", [sys.executable, "-c", "pass"], False),
        ('python -c "import pyarrow"', [sys.executable, "-c", "import pyarrow"], False),
        ("atdarchive --help", [exe, "--help"], True),
        ("atdarchive log --oneline", [exe, "-C", str(ROOT), "log", "--oneline"], True),
    ]


def best_of(cmds: list[tuple[str, list[str], bool]], runs: int) -> dict[str, float]:
    """Best wall time of each command; runs interleave so load affects all alike."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(COLUMNS="80", PYTHONPYCACHEPREFIX=str(PYCACHE))
    best = {label: float("inf") for label, _, _ in cmds}
    for run in range(runs + 1):  # run 0 warms the bytecode cache and is not counted
        for label, argv, _ in cmds:
            start = time.perf_counter()
            subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           check=True, env=env, cwd=ROOT)
            if run:
                best[label] = min(best[label], time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--budget", type=float, default=0.15,
                        help="Seconds allowed above bare Python (default 0.15).")
    args = parser.parse_args()
    cmds = commands()
    best = best_of(cmds, args.runs)
    bare, pyarrow = best[cmds[0][0]], best[cmds[1][0]]
    print(f"\nstart-up (best of {args.runs}, fresh processes; budget: "
          f"≤ {args.budget:.2f} s above bare Python)")
    print(f"{'command':<30}{'seconds':>9}{'- python':>10}{'× python':>10}"
          f"{'× pyarrow':>11}  budget")
    failed = False
    for label, _, budgeted in cmds:
        seconds = best[label]
        above = seconds - bare
        verdict = ""
        if budgeted:
            ok = above <= args.budget
            failed |= not ok
            verdict = "met" if ok else f"MISSED by {above - args.budget:.3f} s"
        print(f"{label:<30}{seconds:>9.3f}{above:>+10.3f}{seconds / bare:>10.1f}"
              f"{seconds / pyarrow:>11.2f}  {verdict}")
    print("budgets met" if not failed else "a budget was missed")


if __name__ == "__main__":
    main()
