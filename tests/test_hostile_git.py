"""An archive received as a directory copy brings its `.git/`: nothing in it may run.

Each test copies a real archive the way a tarball or shared folder would (with `.git/`),
plants one of git's execution points in the copy, then runs the commands that call git
(`verify` — a read —, `tag`, `commit`, `annotate`, `retract`, `log`). The planted program
would write a marker outside the archive; the marker must never appear and nothing
around the archive may change. `verify` must name what it found.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from conftest import write_csv
from test_untrusted_archive import no_traceback, tree_state

from atdarchive import Archive

DS = "ds"


@pytest.fixture
def copied(tmp_path: Path) -> tuple[Path, Path]:
    """(the copy of an author's archive, the marker file any planted program would write)."""
    author = Archive.init(tmp_path / "author")
    author.add_dataset(DS, title="Shared", agency="Nobody")
    author.commit(DS, write_csv(tmp_path / "a.csv", [{"k": i, "v": i} for i in range(3)]),
                  published="2024-01-01")
    copy = tmp_path / "received" / "arc"
    shutil.copytree(author.root, copy, symlinks=True)
    return copy, tmp_path / "PWNED"


def payload(tmp_path: Path, marker: Path, name: str = "evil") -> Path:
    """A program that leaves MARKER behind (and passes its input through, as a filter)."""
    script = tmp_path / "bin" / name
    script.parent.mkdir(exist_ok=True)
    script.write_text(f"#!/bin/sh\necho \"$0 $*\" >> {marker}\ncat\nexit 0\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


def git_config(root: Path, *pairs: tuple[str, str]) -> None:
    for key, value in pairs:
        subprocess.run(["git", "config", "--file", str(root / ".git" / "config"), key, value],
                       check=True)


def plant_hooks(root: Path, script: Path) -> None:
    hooks = root / ".git" / "hooks"
    for name in ("pre-commit", "commit-msg", "post-commit", "reference-transaction",
                 "post-index-change", "pre-auto-gc", "post-checkout", "prepare-commit-msg"):
        shutil.copy(script, hooks / name)


def plant_gitattributes_filter(root: Path, script: Path) -> None:
    (root / ".gitattributes").write_text("* filter=evil diff=evil merge=evil\n")
    subprocess.run(["git", "-C", str(root), "-c", "core.hooksPath=/dev/null", "add",
                    ".gitattributes"], check=True)
    subprocess.run(["git", "-C", str(root), "-c", "core.hooksPath=/dev/null", "commit", "-qm",
                    "attributes"], check=True)
    git_config(root, ("filter.evil.clean", str(script)), ("filter.evil.smudge", str(script)),
               ("filter.evil.required", "true"), ("diff.evil.textconv", str(script)),
               ("diff.evil.command", str(script)), ("merge.evil.driver", str(script)))


def plant_included_filter(root: Path, script: Path) -> None:
    """The driver defined in a file `.git/config` includes (git follows includes)."""
    plant_gitattributes_filter(root, script)
    text = (root / ".git" / "config").read_text()
    cut = text.index('[filter "evil"]')
    (root / "extra.gitconfig").write_text(text[cut:].split("[diff", 1)[0])
    (root / ".git" / "config").write_text(text[:cut] + "[include]\n\tpath = ../extra.gitconfig\n"
                                          + "[diff" + text[cut:].split("[diff", 1)[1])


PLANTS = {
    "filter driver in an included config": plant_included_filter,
    "hooks in .git/hooks": lambda root, script: plant_hooks(root, script),
    "core.hooksPath": lambda root, script: (
        plant_hooks(root.parent, script) if False else None,
        (root.parent / "hooks").mkdir(exist_ok=True),
        [shutil.copy(script, root.parent / "hooks" / n)
         for n in ("pre-commit", "post-commit", "reference-transaction", "post-index-change")],
        git_config(root, ("core.hooksPath", str(root.parent / "hooks")))),
    "core.fsmonitor": lambda root, script: git_config(root, ("core.fsmonitor", str(script))),
    "gpg.program + commit.gpgsign": lambda root, script: git_config(
        root, ("commit.gpgsign", "true"), ("tag.gpgsign", "true"), ("gpg.program", str(script)),
        ("gpg.format", "openpgp")),
    "gpg.ssh.program": lambda root, script: git_config(
        root, ("commit.gpgsign", "true"), ("gpg.format", "ssh"),
        ("gpg.ssh.program", str(script)), ("user.signingkey", "key::ssh-ed25519 AAAA")),
    ".gitattributes filter driver": plant_gitattributes_filter,
    "diff.external + pager": lambda root, script: git_config(
        root, ("diff.external", str(script)), ("core.pager", str(script)),
        ("pager.log", str(script)), ("core.editor", str(script))),
}


@pytest.mark.parametrize("plant", list(PLANTS))
def test_planted_git_programs_never_run(tmp_path, copied, cli, plant) -> None:
    root, marker = copied
    script = payload(tmp_path, marker)
    PLANTS[plant](root, script)
    bystanders = tmp_path / "bystander"
    bystanders.mkdir()
    (bystanders / "notes.txt").write_text("mine\n")
    before = tree_state(bystanders)
    steps = [
        ("verify", DS),
        ("log", DS),
        ("commit", DS, write_csv(tmp_path / "b.csv", [{"k": i, "v": i + 1} for i in range(3)]),
         "--published", "2024-02-01"),
        ("tag", f"{DS}@latest", "v2"),
        ("annotate", f"{DS}@latest", "--note", "checked"),
        ("retract", f"{DS}@latest", "--reason", "test"),
        ("remote", "add", "mine", tmp_path / "store", "--default"),
        ("push",),
        ("pull", DS),
        ("verify", DS),
    ]
    for args in steps:
        result = cli("-C", root, *args)
        no_traceback(result)
        assert result.code == 0 or args[0] == "verify", (args, result.err)
        assert not marker.exists(), f"{plant}: {args[0]} ran {marker.read_text()}"
    assert tree_state(bystanders) == before
    # The work landed in this archive's git, not elsewhere.
    log = subprocess.run(["git", "-C", str(root), "-c", "core.hooksPath=/dev/null", "log",
                          "--format=%s"], capture_output=True, text=True, check=True).stdout
    assert "remote: add mine" in log.splitlines()[0]
    assert any("retract" in line for line in log.splitlines())


def test_verify_reports_execution_points(tmp_path, copied, cli) -> None:
    root, marker = copied
    script = payload(tmp_path, marker)
    plant_hooks(root, script)
    plant_gitattributes_filter(root, script)
    git_config(root, ("core.fsmonitor", str(script)), ("gpg.program", str(script)),
               ("commit.gpgsign", "true"))
    result = cli("-C", root, "verify", DS)
    no_traceback(result)
    text = result.out + result.err
    for expected in ("core.fsmonitor", "gpg.program", "commit.gpgsign", "filter.evil.clean",
                     "post-commit", "archive .git/hooks", ".gitattributes"):
        assert expected in text, (expected, text)
    assert not marker.exists()


def test_worktree_elsewhere_is_ignored(tmp_path, copied, cli) -> None:
    """`core.worktree` pointing outside would make git add and write files there."""
    root, _ = copied
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "secret.txt").write_text("do not commit me\n")
    git_config(root, ("core.worktree", str(elsewhere)))
    before = tree_state(elsewhere)
    result = cli("-C", root, "commit", DS,
                 write_csv(tmp_path / "b.csv", [{"k": 1, "v": 9}]), "--published", "2024-03-01")
    no_traceback(result)
    assert result.code == 0, result.err
    assert tree_state(elsewhere) == before
    files = subprocess.run(["git", "--git-dir", str(root / ".git"), "ls-tree", "-r",
                            "--name-only", "HEAD"], capture_output=True, text=True).stdout
    assert "secret.txt" not in files and f"datasets/{DS}/ledger.jsonl" in files
    assert "core.worktree" in cli("-C", root, "verify", DS).err + \
        cli("-C", root, "verify", DS).out


def test_git_dir_symlink_is_refused(tmp_path, copied, cli) -> None:
    root, _ = copied
    real = tmp_path / "real-git"
    shutil.move(root / ".git", real)
    os.symlink(real, root / ".git")
    before = tree_state(real)
    result = cli("-C", root, "tag", f"{DS}@latest", "x")
    no_traceback(result)
    assert result.code != 0 and "symbolic link" in result.err and result.err.count("\n") == 1
    assert tree_state(real) == before


def test_git_environment_cannot_redirect_or_run(tmp_path, copied, cli, monkeypatch) -> None:
    """Variables git obeys (a config injected by the environment, another GIT_DIR, an
    external diff) do not steer atdarchive's git."""
    root, marker = copied
    script = payload(tmp_path, marker)
    other = tmp_path / "other"
    subprocess.run(["git", "init", "-q", str(other)], check=True)
    before = tree_state(other)
    for key, value in {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "core.fsmonitor",
                       "GIT_CONFIG_VALUE_0": str(script), "GIT_DIR": str(other / ".git"),
                       "GIT_WORK_TREE": str(other), "GIT_EXTERNAL_DIFF": str(script),
                       "GIT_SSH_COMMAND": str(script), "GIT_PAGER": str(script)}.items():
        monkeypatch.setenv(key, value)
    for args in (("commit", DS, write_csv(tmp_path / "b.csv", [{"k": 1, "v": 2}]),
                  "--published", "2024-02-01"), ("tag", f"{DS}@latest", "t"), ("verify", DS)):
        result = cli("-C", root, *args)
        no_traceback(result)
        assert result.code == 0, (args, result.err)
    assert not marker.exists()
    assert tree_state(other) == before
