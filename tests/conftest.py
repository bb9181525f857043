"""Shared fixtures: real archives (git + DVC) in temp dirs, the real CLI in-process."""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from atdarchive import Archive

DATA = Path(__file__).parent / "data"
#: Real series, as published (CI lays ../shared beside the clone): never copied in here.
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_series(name: str) -> Path:
    """A real series under ../shared/data; a one-line failure when it is missing."""
    folder = SHARED_DATA / name
    if not folder.is_dir():
        pytest.fail(f"{folder}: missing (the tests read real series from ../shared/data)",
                    pytrace=False)
    return folder
ICE_RELEASES = sorted((DATA / "ice-fy25").glob("v*.xlsx"))


def ice_published(path: Path) -> str:
    """`v03_2025-08-01_...xlsx` -> 2025-08-01 (the capture date in the file name)."""
    return path.name.split("_")[1]


@contextlib.contextmanager
def fixture_env(root: Path) -> Iterator[None]:
    """What module- and session-scoped fixtures build archives in (the autouse fixture
    sets it per test): the test identity, no analytics, a trust store of their own."""
    with pytest.MonkeyPatch.context() as mp:
        for var in ("GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME"):
            mp.setenv(var, "Test Archivist")
        for var in ("GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"):
            mp.setenv(var, "test@example.org")
        mp.setenv("DVC_NO_ANALYTICS", "1")
        mp.setenv("ATDARCHIVE_CONFIG_HOME", str(root / "config"))
        yield


@pytest.fixture(scope="session")
def _six_releases(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An archive of the six real FY25 releases as `ice-detention-stats`, committed once
    for the whole run; `six_releases` hands each module its own copy."""
    root = tmp_path_factory.mktemp("six")
    with fixture_env(root):
        archive = Archive.init(root / "arc")
        archive.add_dataset("ice-detention-stats")
        for path in ICE_RELEASES:
            archive.commit("ice-detention-stats", path, published=ice_published(path))
    return archive.root


def six_releases(source: Path, tmp_path_factory: pytest.TempPathFactory) -> Archive:
    """A module's own copy of the session's six-release archive (git, DVC cache, ledger)."""
    import shutil

    target = tmp_path_factory.mktemp("ice") / "arc"
    shutil.copytree(source, target, symlinks=True)
    return Archive(target)


@pytest.fixture(autouse=True)
def _git_identity(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
                  ) -> None:
    # Each test confirms archive settings in its own trust store, never the user's.
    monkeypatch.setenv("ATDARCHIVE_CONFIG_HOME", str(tmp_path_factory.mktemp("config")))
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Test Archivist")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "test@example.org")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "Test Archivist")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "test@example.org")
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")


@pytest.fixture
def archive(tmp_path: Path) -> Archive:
    arc = Archive.init(tmp_path / "arc")
    arc.add_dataset("ds", title="Test dataset", agency="Test Agency",
                    source_url="https://example.gov/data")
    return arc


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]):
    """Run `atdarchive ARGS` in-process through the real entry point."""
    from atdarchive.cli import main

    def run(*args: str | os.PathLike[str]) -> CliResult:
        capsys.readouterr()
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


def write_csv(path: Path, rows: list[dict]) -> Path:
    cols = list(rows[0])
    lines = [",".join(cols)] + [",".join(str(r[c]) for c in cols) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_parquet(path: Path, table: pa.Table) -> Path:
    pq.write_table(table, path)
    return path


def archive_state(root: Path) -> dict[str, str]:
    """Everything a failed command must leave untouched: ledgers, git HEAD, DVC cache, datasets."""
    state: dict[str, str] = {}
    head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"],
                          capture_output=True, text=True).stdout.strip()
    state["HEAD"] = head
    for base in ("datasets", ".dvc/cache"):
        for path in sorted((root / base).rglob("*")):
            if path.is_file():
                state[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return state


class FakeSnapshot:
    """The duck-typed Snapshot interface diff_snapshots uses, over Parquet files."""

    def __init__(self, root: Path, sid: str, tables: dict[str, pa.Table],
                 meta: dict[str, dict] | None = None,
                 source_rows: dict[str, list[int]] | None = None,
                 row_group_size: int | None = None) -> None:
        self.id = sid
        self.dir = root / sid
        self.dir.mkdir(parents=True)
        self._src = source_rows or {}
        self.record: dict = {"id": sid, "tables": {}}
        for name, t in tables.items():
            pq.write_table(t, self.dir / f"{name}.parquet", row_group_size=row_group_size)
            self.record["tables"][name] = {"rows": t.num_rows, **((meta or {}).get(name, {}))}

    @property
    def table_names(self) -> list[str]:
        return list(self.record["tables"])

    def table_path(self, name: str) -> Path:
        return self.dir / f"{name}.parquet"

    def table(self, name: str, columns: list[str] | None = None) -> pa.Table:
        return pq.read_table(self.table_path(name), columns=columns)

    def source_rows(self, name: str) -> pa.Array | None:
        rows = self._src.get(name)
        return pa.array(rows, pa.int32()) if rows is not None else None


# -- a real `atdarchive` process, measured -------------------------------------------------
# The child becomes a fresh Python (so its memory starts small), sets its ceilings, runs the
# CLI's entry point, and at exit writes its own peak RSS (VmHWM: the kernel's high-water
# mark of this image). `wait4`'s ru_maxrss would not do: it counts the RSS of the forked
# copy of the test process before exec, which grows as the suite runs.
_MEASURED = """
import atexit, os, resource, sys
as_limit, fsize_limit, peak = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
if as_limit:
    resource.setrlimit(resource.RLIMIT_AS, (as_limit, as_limit))
if fsize_limit:
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize_limit, fsize_limit))
def _peak():
    with open("/proc/self/status") as status, open(peak, "w") as out:
        out.write(next(line for line in status if line.startswith("VmHWM")).split()[1])
atexit.register(_peak)
from atdarchive.cli import main
sys.argv = ["atdarchive", *sys.argv[4:]]
main(sys.argv[1:])
"""


@dataclass
class MeasuredRun:
    code: int
    out: str
    err: str
    peak_kb: int  # the child's own peak resident memory


def run_measured(*args: str | os.PathLike[str], env: dict[str, str] | None = None,
                 cwd: Path | None = None, as_limit: int = 0, fsize_limit: int = 0,
                 scratch: Path | None = None) -> MeasuredRun:
    """`atdarchive ARGS` in a child process under optional address-space and file-size
    ceilings; its exit code, output and peak RSS."""
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as box:
        peak = Path(box) / "peak"
        proc = subprocess.run(
            [sys.executable, "-c", _MEASURED, str(as_limit), str(fsize_limit), str(peak),
             *map(str, args)], capture_output=True, text=True, errors="replace",
            stdin=subprocess.DEVNULL, cwd=cwd,
            env={**os.environ, **(env or {}), **({"TMPDIR": str(scratch)} if scratch else {})})
        kb = int(peak.read_text()) if peak.exists() else 1 << 62  # unmeasured: no bound holds
    return MeasuredRun(proc.returncode, proc.stdout, proc.stderr, kb)
