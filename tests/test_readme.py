"""The README's promises: its Python example runs as written; its CLI table is real."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()


def test_python_example_runs(capsys: pytest.CaptureFixture[str],
                             monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    assert blocks, "README has no python example"
    monkeypatch.chdir(ROOT)
    exec(compile(blocks[0], "README.md", "exec"), {"__name__": "readme"})
    out = capsys.readouterr().out
    assert "tests/data" not in out or os.sep in out
    assert len(out.splitlines()) >= 8


def test_setup_commands_are_exactly_demo_and_test() -> None:
    setup = README.split("## Set-up on a fresh machine", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```sh\n(.*?)```", setup, flags=re.S)[0].strip().splitlines()
    assert [c.split("#")[0].strip() for c in commands] == ["make demo", "make test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci


def test_every_cli_command_in_readme_exists() -> None:
    from atdarchive.cli import app, register_all

    register_all()
    names = {c.name for c in app.registered_commands} | {g.name for g in app.registered_groups}
    table = README.split("## Command reference", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| `atdarchive")]
    mentioned = {m for line in rows for m in re.findall(r"`atdarchive ([a-z-]+)", line)}
    assert mentioned, "README has no CLI reference table"
    assert mentioned <= names, mentioned - names
    assert names <= mentioned, f"undocumented commands: {names - mentioned}"


def test_bounds_table_is_the_registry() -> None:
    """Every bound the code enforces is in README, with the default the code uses."""
    from atdarchive.limits.__main__ import markdown

    table = README.split("<!-- bounds:start -->\n", 1)[1].split("<!-- bounds:end -->", 1)[0]
    assert table == markdown()
