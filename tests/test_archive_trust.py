"""Settings that come with an archive are not used until the user confirms them.

A clone (or a copied folder) is someone else's word about where to read and write:
remotes and their endpoints, Object Lock policies, DVC cache and site-cache directories,
`[[sources]]` to watch. Each test builds the hostile setting as an author could commit
it, then shows the refusal (one line: what waits, the command that confirms it), that
nothing outside was touched or contacted, and that confirming makes it work.
"""

from __future__ import annotations

import http.server
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from test_s3 import add_s3_remote, aws_env, bucket, s3  # noqa: F401 - fixtures
from test_untrusted_archive import DS, author_archive, clone, git, no_traceback, outside

from atdarchive import Archive


@contextmanager
def listener() -> Iterator[list[str]]:
    """An HTTP server on 127.0.0.1 that records every request it gets (any method)."""
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _any(self) -> None:
            seen.append(f"{self.command} {self.path}")
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _any  # noqa: N815

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    seen.append(f"port {server.server_address[1]}")
    try:
        yield seen
    finally:
        server.shutdown()
        server.server_close()


def commit_dvc_config(author: Archive, text: str, default: str | None = None,
                      **options: str) -> None:
    """Append TEXT to the author's .dvc/config; OPTIONS `section__key=value` go into the
    sections DVC already wrote (core, cache)."""
    config = author.root / ".dvc" / "config"
    base = config.read_text()
    if default:
        options["core__remote"] = default
    for name, value in options.items():
        section, key = name.split("__")
        base = base.replace(f"[{section}]\n", f"[{section}]\n    {key} = {value}\n")
    config.write_text(base + text)
    git(author.root, "commit", "-qam", "config")


def one_line_refusal(result, *needles: str) -> None:
    no_traceback(result)
    assert result.code != 0, result.out
    assert len(result.err.strip().splitlines()) == 1, result.err
    for needle in needles:
        assert needle in result.err, (needle, result.err)


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch) -> Path:
    box = tmp_path / "sandbox"
    box.mkdir()
    monkeypatch.setenv("XDG_CACHE_HOME", str(box / "cache"))
    (tmp_path / "victim").mkdir()
    (tmp_path / "victim" / "keep.txt").write_text("mine\n")
    return box


def test_committed_endpoint_is_never_contacted_until_confirmed(tmp_path, sandbox, cli,
                                                                monkeypatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAUSERSOWNKEY")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    author = author_archive(tmp_path)
    with listener() as seen:
        port = seen[0].split()[1]
        commit_dvc_config(author, f"['remote \"store\"']\n    url = s3://bucket/x\n"
                          f"    endpointurl = http://127.0.0.1:{port}\n", default="store")
        root = clone(author, sandbox)
        for args in (("pull", DS), ("push",)):
            one_line_refusal(cli("-C", root, *args), "endpointurl",
                             f"atdarchive -C {root} remote confirm store")
        assert seen == [f"port {port}"]  # not one request: no key id, no signature
        listed = cli("-C", root, "trust", "list")
        assert "remote store" in listed.out and "remote confirm store" in listed.out


def test_committed_http_remote_is_not_used_unconfirmed(tmp_path, sandbox, cli) -> None:
    author = author_archive(tmp_path)
    with listener() as seen:
        port = seen[0].split()[1]
        commit_dvc_config(author, f"['remote \"web\"']\n    url = http://127.0.0.1:{port}/d\n",
                          default="web")
        root = clone(author, sandbox)
        one_line_refusal(cli("-C", root, "pull", DS), "remote web", "remote confirm web")
        refused = cli("clone", author.root, sandbox / "c2", "--pull", DS)
        assert refused.code != 0 and "--confirm-remotes" in refused.err
        assert not (sandbox / "c2").exists()
        assert seen == [f"port {port}"]


@pytest.mark.parametrize("option, text", [
    ("cache__local=elsewhere", "['remote \"elsewhere\"']\n    url = {victim}\n"),
    ("core__site_cache_dir={victim}/site", ""),
    ("cache__dir={victim}/cache", ""),
])
def test_committed_cache_settings_leave_the_outside_alone(tmp_path, sandbox, cli, option,
                                                          text) -> None:
    victim = tmp_path / "victim"
    author = author_archive(tmp_path)
    store = tmp_path / "remote-store"
    author.add_remote("shared", str(store), default=True)
    author.push(DS)
    key, value = option.split("=")
    commit_dvc_config(author, text.format(victim=victim), **{key: value.format(victim=victim)})
    root = clone(author, sandbox)
    assert cli("-C", root, "remote", "confirm", "shared").code == 0
    before = outside(tmp_path, sandbox)
    for args in (("pull", DS), ("remote", "add", "mine", str(sandbox / "mine")),
                 ("export", f"{DS}@latest", "-o", sandbox / "o.csv")):
        result = cli("-C", root, *args)
        no_traceback(result)
        if args[0] != "export" or "cache__dir" in option:
            one_line_refusal(result, "trust confirm dvc")
    assert outside(tmp_path, sandbox) == before
    assert "dvc " in cli("-C", root, "verify", DS).err


def test_lock_policy_for_an_undefined_remote_waits_and_is_bounded(
        tmp_path, sandbox, cli, s3, bucket) -> None:  # noqa: F811 - the imported fixtures
    author = author_archive(tmp_path)
    (author.root / "atdarchive.toml").write_text(
        '[remote.s3.lock]\ndays = 36500\nmode = "compliance"\n')
    git(author.root, "add", "atdarchive.toml")
    git(author.root, "commit", "-qm", "a policy for a remote you may add one day")
    root = sandbox / "received"  # a copied folder: data, ledger and policy
    shutil.copytree(author.root, root, symlinks=True)
    add_s3_remote(cli, Archive(root), s3.endpoint, bucket)  # your own bucket, that name
    one_line_refusal(cli("-C", root, "push"), "remote.s3.lock.days", "36,500 days",
                     "remote.max_lock_days")
    assert "Contents" not in s3.client().list_objects_v2(Bucket=bucket)  # nothing locked
    one_line_refusal(cli("-C", root, "remote", "confirm", "s3"), "remote.max_lock_days",
                     "36,500")
    one_line_refusal(cli("-C", root, "trust", "confirm", "--all"), "remote.max_lock_days")
    # a sane policy, confirmed, is applied
    (root / "atdarchive.toml").write_text('[remote.s3.lock]\ndays = 2\nmode = "governance"\n')
    one_line_refusal(cli("-C", root, "push"), "lock s3",
                     f"atdarchive -C {root} remote confirm s3")
    assert "Contents" not in s3.client().list_objects_v2(Bucket=bucket)
    assert cli("-C", root, "remote", "confirm", "s3").code == 0
    result = cli("-C", root, "push")
    assert result.code == 0, result.err
    keys = s3.client().list_objects_v2(Bucket=bucket)["Contents"]
    head = s3.client().head_object(Bucket=bucket, Key=keys[0]["Key"])
    assert head["ObjectLockMode"] == "GOVERNANCE"


@pytest.mark.parametrize("policy, problem", [
    ('days = 0\nmode = "compliance"', "lock.days"),
    ('days = "30"\nmode = "compliance"', "lock.days"),
    ('days = 30\nmode = "forever"', "lock.mode"),
])
def test_lock_values_are_range_checked(tmp_path, cli, policy, problem) -> None:
    author = author_archive(tmp_path)
    author.add_remote("shared", str(tmp_path / "store"), default=True)
    (author.root / "atdarchive.toml").write_text(f"[remote.shared.lock]\n{policy}\n")
    one_line_refusal(cli("-C", author.root, "push"), problem)
    assert "NOT USED" in cli("-C", author.root, "remote", "list").out
    one_line_refusal(cli("-C", author.root, "remote", "lock", "shared", "--days", "40000"),
                     "remote.max_lock_days")


def test_cloned_sources_are_not_fetched_until_confirmed(tmp_path, sandbox, cli) -> None:
    author = author_archive(tmp_path)
    with listener() as seen:
        port = seen[0].split()[1]
        toml = author.root / "datasets" / DS / "dataset.toml"
        toml.write_text(toml.read_text() + f'\n[[sources]]\nurl = "http://127.0.0.1:{port}/'
                        'admin/export.csv"\npublished = "captured"\n')
        git(author.root, "commit", "-qam", "watch an internal service")
        root = clone(author, sandbox)
        for args in (("watch",), ("watch", DS)):
            one_line_refusal(cli("-C", root, *args), "source ds:",
                             f"atdarchive -C {root} source confirm {DS}")
        assert seen == [f"port {port}"]
        assert cli("-C", root, "source", "confirm", DS).code == 0
        cli("-C", root, "watch", DS)  # the source answers 404: a failed check, but asked
        assert "GET /admin/export.csv" in seen
        # a source the user adds is theirs: no confirmation needed
        added = cli("-C", root, "source", "add", DS, "--url",
                    f"http://127.0.0.1:{port}/other.csv", "--published", "captured")
        assert added.code == 0, added.err
        assert not [s for s in Archive(root).waiting_settings() if s.kind == "source"]


def test_confirmations_stay_outside_the_archive_and_follow_the_value(tmp_path, sandbox,
                                                                     cli) -> None:
    """A copied archive (with its .dvc/config.local) is not confirmed; a changed value
    needs confirming again."""
    author = author_archive(tmp_path)
    commit_dvc_config(author, "['remote \"web\"']\n    url = https://example.org/d\n")
    root = clone(author, sandbox)
    assert cli("-C", root, "trust", "confirm", "remote", "web").code == 0
    assert not Archive(root).waiting_settings()
    assert not (root / ".dvc" / "config.local").exists()
    copy = sandbox / "copy"
    shutil.copytree(root, copy, symlinks=True)
    assert [s.name for s in Archive(copy).waiting_settings()] == ["web"]
    config = root / ".dvc" / "config"
    config.write_text(config.read_text().replace("example.org", "example.net"))
    assert [s.name for s in Archive(root).waiting_settings()] == ["web"]
    local = root / ".dvc" / "config.local"  # a copied config.local confirms nothing
    local.write_text("['remote \"web\"']\n    url = https://example.com/d\n")
    pending = Archive(root).waiting_settings()
    assert [s.name for s in pending] == ["web"] and pending[0].origin == ".dvc/config.local"


def test_git_is_plain_for_the_users_own_commands(tmp_path, cli) -> None:
    """The user's own global git config (identity) still applies: only execution points
    are switched off."""
    author = author_archive(tmp_path)
    name = subprocess.run(["git", "-C", str(author.root), "log", "-1", "--format=%an"],
                          capture_output=True, text=True, check=True).stdout.strip()
    assert name == "Test Archivist"
