"""The audit report: one self-contained HTML file checked in a real headless browser,
plus the Markdown and text forms. Chromium must be installed (CI installs Debian's
`chromium`); without it these tests FAIL, they do not skip."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from conftest import write_csv
from test_audit import facilities

from atdarchive import Archive
from atdarchive.audit import audit
from atdarchive.render.audit_report import render_html, render_markdown, render_text

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("chromium is not installed: the audit report is checked in a real headless "
                "browser; install it with 'apt-get install -y chromium'")


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory):
    """A history with revisions, an outlier, vanished and reappeared rows, a recycled release."""
    import os

    for var in ("GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME"):
        os.environ.setdefault(var, "Test Archivist")
    for var in ("GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"):
        os.environ.setdefault(var, "test@example.org")
    tmp = tmp_path_factory.mktemp("report")
    arc = Archive.init(tmp / "arc")
    arc.add_dataset("fac", keys={"data": ["Name", "City", "State"]})
    config = arc.dataset("fac")  # judged as a series, so that ADP changes are revisions
    config.audit = {"tables": {"data": {"role": "period_series"}}}
    config.save(arc.dataset_dir("fac") / "dataset.toml")
    dates = ["2021-03-11", "2021-05-13", "2021-07-15", "2021-09-16", "2022-05-12"]
    for seed, published in enumerate(dates):
        rows = facilities(seed, stamp=published, drop=(3,) if seed == 3 else ())
        if seed == 4:
            rows[1]["ADP"] = 5000.0  # an 18-fold jump
        arc.commit("fac", write_csv(tmp / f"f{seed}.csv", rows), published=published,
                   message="revised ADP" if seed == 2 else "")
    arc.commit("fac", write_csv(tmp / "rec.csv", facilities(1, stamp="2022-09-15")),
               published="2022-09-15", message="September release")
    return audit(arc, "fac")


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


def test_html_is_self_contained(report):
    page = render_html(report)
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "@import" not in page and "url(" not in page
    assert page.count("<svg") == 2
    assert page.count('class="finding ') == len(report.findings)


def test_html_renders_in_headless_chromium(report, tmp_path: Path):
    browser = chromium()
    html = tmp_path / "audit.html"
    html.write_text(render_html(report), encoding="utf-8")
    profile = tmp_path / "profile"
    run = [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}"]
    dom = subprocess.run([*run, "--dump-dom", html.as_uri()], capture_output=True, text=True,
                         timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    rendered = dom.stdout
    recycled = [f for f in report.findings if f.kind == "recycled_release"]
    assert len(recycled) == 1
    for finding in report.findings:
        assert finding.summary.replace(">", "&gt;") in rendered
    assert recycled[0].evidence["other_snapshot"][:10] in rendered
    assert "recycled release" in rendered and "outlier change" in rendered
    assert rendered.count("<rect") == len(report.releases)  # one bar per release
    shot = tmp_path / "audit.png"
    res = subprocess.run([*run, f"--screenshot={shot}", "--window-size=1200,1600",
                          html.as_uri()], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and shot.exists(), res.stderr[-2000:]
    assert _png_size(shot) == (1200, 1600)
    assert shot.stat().st_size > 40_000  # a blank page of that size is ~10 kB


def test_markdown_and_text(report):
    md = render_markdown(report)
    assert md.startswith("# Forensic audit — fac")
    assert "| published | id | channel |" in md
    assert md.count("### ") == len(report.findings)
    assert "ALERT: recycled release · 2022-09-15" in md
    text = render_text(report)
    assert text.splitlines()[0].startswith("audit of fac: 6 release(s)")
    assert "ALERT   recycled_release" in text
    assert max(len(line) for line in text.splitlines()) <= 80


def test_empty_report_renders(tmp_path: Path):
    arc = Archive.init(tmp_path / "arc")
    arc.add_dataset("ds")
    empty = audit(arc, "ds")
    assert "No releases." in render_html(empty)
    assert "No findings" in render_markdown(empty)
    assert "(no releases yet)" in render_text(empty)
