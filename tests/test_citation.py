"""Citations: text names id and sha256; BibTeX is one well-formed entry; CSL-JSON a dataset."""

from __future__ import annotations

import json
import re
import subprocess

import pytest
from conftest import write_csv

from atdarchive import Archive


@pytest.fixture
def snap(archive: Archive, tmp_path):
    path = write_csv(tmp_path / "x.csv", [{"k": 1, "v": 2}])
    return archive.commit("ds", path, published="2024-03-05",
                          retrieved_at="2024-03-06T10:00:00Z").snapshot


def parse_bibtex(text: str) -> list[tuple[str, str, dict[str, str]]]:
    """A strict little BibTeX reader: @type{key, field = {balanced braces}, ...}."""
    entries = []
    pos = 0
    while (at := text.find("@", pos)) != -1:
        head = re.compile(r"@(\w+)\{([^,\s]+),").match(text, at)
        assert head, f"bad entry head at {at}"
        pos = head.end()
        fields: dict[str, str] = {}
        while True:
            field = re.compile(r"\s*(\w+)\s*=\s*\{").match(text, pos)
            if not field:
                break
            depth, i = 1, field.end()
            while depth:
                assert i < len(text), "unbalanced braces"
                depth += {"{": 1, "}": -1}.get(text[i], 0) if text[i - 1] != "\\" else 0
                i += 1
            fields[field.group(1).lower()] = text[field.end():i - 1]
            pos = i
            sep = re.compile(r"\s*,").match(text, pos)
            if sep:
                pos = sep.end()
        close = re.compile(r"\s*\}\s*").match(text, pos)
        assert close, f"entry not closed at {pos}: {text[pos:pos + 40]!r}"
        pos = close.end()
        entries.append((head.group(1), head.group(2), fields))
    assert text[pos:].strip() == ""
    return entries


def test_text_names_id_and_hashes(archive, snap, cli) -> None:
    result = cli("-C", archive.root, "cite", f"ds@{snap.short_id}")
    assert result.code == 0, result.err
    out = result.out
    assert snap.id in out and snap.record["original"]["sha256"] in out
    assert out.startswith("Test Agency. (2024). Test dataset [Data set, release of 2024-03-05].")
    assert "https://example.gov/data" in out and "Retrieved 2024-03-06" in out
    assert str(archive.root) in out


def test_bibtex_is_one_entry_with_the_fields(archive, snap, cli) -> None:
    out = cli("-C", archive.root, "cite", f"ds@{snap.short_id}", "--format", "bibtex").out
    (kind, key, fields), = parse_bibtex(out)
    assert kind == "misc" and snap.short_id in key
    assert fields["author"] == "{Test Agency}" and fields["title"] == "{Test dataset}"
    assert (fields["year"], fields["month"]) == ("2024", "03")
    assert fields["url"] == "https://example.gov/data" and fields["urldate"] == "2024-03-06"
    assert fields["version"] == snap.id
    assert snap.record["original"]["sha256"] in fields["note"]


def test_bibtex_escapes_special_characters(archive: Archive, tmp_path, cli) -> None:
    archive.add_dataset("odd", title="Beds & {costs} 100% of $ #1_x", agency="A&B")
    path = write_csv(tmp_path / "y.csv", [{"k": 1}])
    snap = archive.commit("odd", path, published="2024-01-02").snapshot
    out = cli("-C", archive.root, "cite", f"odd@{snap.short_id}", "-f", "bibtex").out
    (_, _, fields), = parse_bibtex(out)
    assert fields["title"] == r"{Beds \& \{costs\} 100\% of \$ \#1\_x}"


def test_csl_json_is_a_dataset(archive, snap, cli) -> None:
    subprocess.run(["git", "-C", archive.root, "remote", "add", "origin",
                    "https://git.example.org/archive.git"], check=True)
    out = cli("-C", archive.root, "cite", f"ds@{snap.short_id}", "--format", "csl-json").out
    (item,) = json.loads(out)
    assert item["type"] == "dataset"
    assert item["title"] == "Test dataset" and item["author"] == [{"literal": "Test Agency"}]
    assert item["issued"] == {"date-parts": [[2024, 3, 5]]}
    assert item["accessed"] == {"date-parts": [[2024, 3, 6]]}
    assert item["URL"] == "https://example.gov/data" and item["version"] == snap.id
    assert item["archive"] == "https://git.example.org/archive.git"
    assert snap.record["original"]["sha256"] in item["note"]


def test_unknown_format_is_a_user_error(archive, snap, cli) -> None:
    result = cli("-C", archive.root, "cite", f"ds@{snap.short_id}", "--format", "ris")
    assert result.code == 2 and "--format 'ris'" in result.err
