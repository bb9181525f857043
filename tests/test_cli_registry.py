"""The command registry: one table, modules imported only when run, `-C` for every command,
one-line usage errors, and a start-up that never loads the heavy libraries."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import write_csv

from atdarchive import Archive
from atdarchive.cli import COMMANDS, command, registered

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("pyarrow", "dvc", "duckdb", "numpy", "pydantic")


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory that is not the archive."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


@pytest.fixture
def committed(archive: Archive, tmp_path: Path) -> Archive:
    src = write_csv(tmp_path / "r1.csv", [{"k": "a", "v": 1}, {"k": "b", "v": 2}])
    archive.commit("ds", src, published="2025-01-01")
    return archive


def test_init_with_C_makes_the_archive_there_and_nothing_here(tmp_path: Path, elsewhere: Path,
                                                              cli) -> None:
    other = tmp_path / "other"
    result = cli("-C", tmp_path, "init", "other")
    assert result.code == 0, result.err
    assert (other / ".dvc").is_dir() and (other / "datasets").is_dir()
    assert list(elsewhere.iterdir()) == []
    assert Path.cwd() == elsewhere
    second = tmp_path / "second"
    second.mkdir()
    assert cli("-C", second, "init").code == 0
    assert (second / ".dvc").is_dir() and list(elsewhere.iterdir()) == []


def test_C_for_log_show_verify_and_subgroups(committed: Archive, elsewhere: Path, cli) -> None:
    snap = committed.snapshot("ds@latest")
    log = cli("-C", committed.root, "log", "--oneline")
    assert log.code == 0, log.err
    assert log.out.startswith(snap.short_id)
    show = cli("-C", committed.root, "show", "ds@latest", "--json")
    assert show.code == 0 and json.loads(show.out)["id"] == snap.id
    verify = cli("-C", committed.root, "verify", "--fast")
    assert verify.code == 0 and verify.out.startswith("ok: 1 snapshot(s)"), verify.err
    added = cli("-C", committed.root, "dataset", "add", "second", "--title", "Second")
    assert added.code == 0, added.err
    listed = cli("-C", committed.root, "dataset", "list", "--json")
    assert [row["name"] for row in json.loads(listed.out)] == ["ds", "second"]
    assert cli("-C", committed.root, "remote", "list", "--json").out.strip() == "[]"
    assert cli("log").code == 2  # and the working directory is still not an archive


def test_other_paths_stay_relative_to_the_working_directory(committed: Archive,
                                                            elsewhere: Path, cli) -> None:
    """-C names the archive; a paper's lockfile or an export lands where you are (README)."""
    result = cli("-C", committed.root, "export", "ds@latest", "-o", "out.csv")
    assert result.code == 0, result.err
    assert (elsewhere / "out.csv").read_text().splitlines()[0].replace('"', "") == "k,v"
    pinned = cli("-C", committed.root, "pin", "ds@latest", "--lock", "atdarchive.lock")
    assert pinned.code == 0, pinned.err
    assert (elsewhere / "atdarchive.lock").is_file()
    assert not (committed.root / "out.csv").exists()
    assert not (committed.root / "atdarchive.lock").exists()


def test_plain_values_are_parsed_and_checked(committed: Archive, tmp_path: Path, cli) -> None:
    src = write_csv(tmp_path / "r2.csv", [{"k": "a", "v": 3}])
    committed.commit("ds", src, published="2025-02-01")
    assert len(cli("-C", committed.root, "log", "--oneline", "-n", "1").out.splitlines()) == 1
    bad = cli("-C", committed.root, "log", "-n", "many")
    assert bad.code == 2
    assert bad.err.startswith("error: Invalid value for '-n': 'many' is not a valid integer")
    assert len(bad.err.strip().splitlines()) == 1


def test_help_lists_every_command_from_the_table(cli) -> None:
    result = cli("--help")
    assert result.code == 0
    commands = result.out.split("Commands:", 1)[1]
    for name, (_, short) in COMMANDS.items():
        assert f"  {name} " in commands and short in commands, name
    assert "-C PATH" in result.out


@pytest.mark.parametrize("args, message", [
    (["frobnicate"], "error: No such command 'frobnicate'"),
    (["lgo"], "error: No such command 'lgo'. Did you mean 'log'?"),
    (["show"], "error: Missing argument 'ref'"),
    (["log", "--frob"], "error: No such option: --frob"),
    (["-C", "/nonexistent/atdarchive", "log"], "error: -C /nonexistent/atdarchive: no such"),
])
def test_usage_errors_are_one_line(cli, args: list[str], message: str) -> None:
    result = cli(*args)
    assert result.code == 2
    assert result.err.startswith(message), result.err
    assert len(result.err.strip().splitlines()) == 1
    assert "Traceback" not in result.err


def test_bare_command_prints_help(cli) -> None:
    result = cli()
    assert result.code == 2 and "Commands:" in result.err
    sub = cli("dataset")
    assert sub.code == 2 and "add" in sub.err and "list" in sub.err


def test_table_and_modules_agree() -> None:
    """Each module registers exactly the commands the table gives it, under those names."""
    for module in {module for module, _ in COMMANDS.values()}:
        app = registered(module)
        names = ({info.name for info in app.registered_commands}
                 | {info.name for info in app.registered_groups})
        assert names == {n for n, (m, _) in COMMANDS.items() if m == module}, module
    for name in COMMANDS:
        assert command(name) is not None and command(name).name == name
    assert command("no-such-command") is None


def _modules_after(*args: str) -> set[str]:
    """The modules loaded by `atdarchive ARGS` in a fresh interpreter."""
    probe = ("import json, sys\nfrom atdarchive.cli import main\n"
             "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
             "finally:\n    sys.stderr.write('\\nMODULES ' + json.dumps(sorted(sys.modules)))\n")
    done = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "COLUMNS": "80"})
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stderr.rsplit("MODULES ", 1)[1]))


def _heavy(modules: set[str]) -> set[str]:
    return {m for m in modules if m.split(".")[0] in HEAVY}


def test_help_imports_no_command_module_and_nothing_heavy() -> None:
    modules = _modules_after("--help")
    assert _heavy(modules) == set()
    commands = {f"atdarchive.cli.{module}" for module, _ in COMMANDS.values()}
    assert modules & commands == set()
    assert "atdarchive.archive" not in modules


def test_log_oneline_imports_nothing_heavy() -> None:
    """`log --oneline` on the repository's own archive: only the log's own module."""
    modules = _modules_after("-C", str(ROOT), "log", "--oneline")
    assert _heavy(modules) == set()
    assert {m for m in modules if m.startswith("atdarchive.cli.")} == {
        "atdarchive.cli.common", "atdarchive.cli.core"}


def test_version_prints_the_installed_version(cli) -> None:
    from importlib.metadata import version

    result = cli("--version")
    assert result.code == 0 and result.out.strip() == f"atdarchive {version('atdarchive')}"
