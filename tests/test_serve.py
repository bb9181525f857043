"""`atdarchive serve`: the web app over a real archive (the six FY25 workbooks plus a
dataset of hostile values), started as a real process on a free port and read over
HTTP; the browser walk-through is in `test_serve_browser.py`."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from conftest import write_csv
from s3server import free_port

from atdarchive import Archive
from atdarchive.render.diff_json import to_json_obj

DS = "ice-detention-stats"
BOOKINS = "detention__ice_initial_book_ins_by_arresting_agency_and_month"
HOSTILE = "hostile"
#: would set window.__pwned if any page let it through unescaped
PAYLOAD = '<img src=x onerror="window.__pwned=1">'
SHEET = "<svg onload=window.__pwned=1>"  # a sheet name (31 characters at most)


def _warc(path: Path) -> Path:
    from warcio.warcwriter import WARCWriter

    with path.open("wb") as fh:
        writer = WARCWriter(fh, gzip=True)
        record = writer.create_warc_record("http://127.0.0.1/h.csv", "resource",
                                           payload=__import__("io").BytesIO(b"a,b\n1,2\n"),
                                           warc_content_type="text/csv")
        writer.write_record(record)
    return path


def hostile_dataset(arc: Archive, tmp: Path) -> None:
    """Hostile titles, notes, messages, column names, values and sheet names."""
    from openpyxl import Workbook

    arc.add_dataset(HOSTILE, title=f"Title {PAYLOAD}", agency=f"Agency {PAYLOAD}",
                    source_url="javascript:window.__pwned=1")
    first = write_csv(tmp / "h1.csv", [{"name": "a", f"n{PAYLOAD}": "1"},
                                       {"name": PAYLOAD, f"n{PAYLOAD}": "2"}])
    second = write_csv(tmp / "h2.csv", [{"name": "a", f"n{PAYLOAD}": PAYLOAD},
                                        {"name": PAYLOAD, f"n{PAYLOAD}": "3"}])
    arc.commit(HOSTILE, first, published="2025-01-01", message=f"first {PAYLOAD}")
    arc.commit(HOSTILE, second, published="2025-02-01", message=f"second {PAYLOAD}",
               capture=_warc(tmp / "h2.warc.gz"))
    arc.annotate(f"{HOSTILE}@latest", f"note {PAYLOAD}")
    book = Workbook()
    sheet = book.active
    sheet.title = SHEET
    sheet.append(["name", "count"])
    sheet.append([PAYLOAD, 4])
    book.save(tmp / "h3.xlsx")
    arc.commit(HOSTILE, tmp / "h3.xlsx", published="2025-03-01")
    arc.retract(f"{HOSTILE}@latest", f"reason {PAYLOAD}")


@pytest.fixture(scope="module")
def served(_six_releases, tmp_path_factory: pytest.TempPathFactory):
    """(archive, base URL) of `atdarchive serve` running over a copy of the six releases."""
    from conftest import six_releases

    with pytest.MonkeyPatch.context() as mp:
        for var in ("GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME"):
            mp.setenv(var, "Test Archivist")
        for var in ("GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"):
            mp.setenv(var, "test@example.org")
        arc = six_releases(_six_releases, tmp_path_factory)
        hostile_dataset(arc, tmp_path_factory.mktemp("hostile"))
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "atdarchive.cli", "-C", str(arc.root),
                             "serve", "--port", str(port)], stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            requests.get(base + "/static/app.css", timeout=2)
            break
        except requests.ConnectionError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"serve did not start: {proc.stderr.read()}") from None
            time.sleep(0.1)
    yield arc, base, port
    proc.terminate()
    proc.wait(10)


def get(base: str, path: str, **params) -> requests.Response:
    return requests.get(base + path, params=params or None, timeout=60)


def as_json(base: str, path: str, **params) -> dict:
    response = get(base, path, format="json", **params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


def test_every_page_has_a_json_twin_from_the_library(served):
    arc, base, _ = served
    history = arc.history(DS)
    public = [e.id for e in history.channel("public")]

    datasets = as_json(base, "/")
    assert {d["name"] for d in datasets["datasets"]} == {DS, HOSTILE}

    timeline = as_json(base, f"/datasets/{DS}")
    assert [r["id"] for r in timeline["channels"]["public"]] == public  # oldest first
    audited = {r["id"]: r for r in arc.audit(DS).releases}
    for row in timeline["channels"]["public"]:
        assert row["severity"] == audited[row["id"]]["severity"]

    latest = history.resolve("latest")
    release = as_json(base, f"/datasets/{DS}/releases/latest")
    assert release["release"]["id"] == latest.id
    assert release["permalink"] == f"/datasets/{DS}/releases/{latest.id}"
    assert [t["name"] for t in release["tables"]] == list(latest.record["tables"])
    assert sorted(f["kind"] for f in release["findings"]) == sorted(
        f.kind for f in arc.audit(DS).findings if f.snapshot == latest.id)

    parent = history.parent(latest.id)
    twin = as_json(base, f"/datasets/{DS}/diff/{parent.id}..{latest.id}", table=BOOKINS)
    assert twin["diff"] == json.loads(json.dumps(to_json_obj(
        arc.diff(f"{DS}@{parent.id}", f"{DS}@{latest.id}", table=BOOKINS))))

    cell = as_json(base, f"/datasets/{DS}/tables/{BOOKINS}/cell", row="Agency=Total",
                   column="Nov")
    library = arc.history_of(DS, table=BOOKINS, row={"Agency": "Total"}, column="Nov")
    assert [v["value"] for v in cell["values"]] == library.column("value").to_pylist()
    assert [v["source_cell"] for v in cell["values"]] == library["source_cell"].to_pylist()

    table = as_json(base, f"/datasets/{DS}/releases/latest/tables/{BOOKINS}")
    blame = arc.blame(f"{DS}@latest", table=BOOKINS).to_pylist()
    by_cell = {(b["row"], b["column"]): b for b in blame}
    for row in table["rows"]:
        for column, shown in zip(table["columns"], row["cells"], strict=True):
            cell_blame = by_cell[(row["row"], column)]
            assert (shown["value"], shown["previous"], shown["revisions"], shown["release"]) \
                == (cell_blame["value"], cell_blame["previous"], cell_blame["revisions"],
                    cell_blame["short_id"])

    audit = as_json(base, f"/datasets/{DS}/audit")
    scores = [f["score"] for f in audit["findings"]]
    assert scores == sorted(scores, reverse=True) and len(scores) == len(arc.audit(DS).findings)
    assert audit["findings"][0]["severity"] == "alert" or not any(
        f.severity == "alert" for f in arc.audit(DS).findings)


def test_the_timeline_form_redirects_to_a_permalink_older_first(served):
    arc, base, _ = served
    history = arc.history(DS)
    old, new = history.resolve("latest~2"), history.resolve("latest")
    response = requests.get(f"{base}/datasets/{DS}/diff", params={"a": "latest", "b": "latest~2"},
                            allow_redirects=False, timeout=30)
    assert response.status_code == 303
    assert response.headers["location"] == f"/datasets/{DS}/diff/{old.id}..{new.id}"


def test_read_only_every_write_method_is_refused(served):
    arc, base, _ = served
    ledger = arc.ledger(DS).path.read_bytes()
    head = subprocess.run(["git", "-C", str(arc.root), "rev-parse", "HEAD"],
                          capture_output=True, text=True).stdout
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        for path in ("/", f"/datasets/{DS}", f"/datasets/{DS}/releases/latest/original"):
            response = requests.request(method, base + path, data=b"x", timeout=10)
            assert response.status_code == 405, (method, path)
            assert response.headers["allow"] == "GET, HEAD"
    assert requests.head(f"{base}/datasets/{DS}", timeout=30).status_code == 200
    assert arc.ledger(DS).path.read_bytes() == ledger
    assert subprocess.run(["git", "-C", str(arc.root), "rev-parse", "HEAD"],
                          capture_output=True, text=True).stdout == head


def test_binds_to_loopback_by_default(served):
    _, _, port = served
    listening = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if int(hex_port, 16) == port and state == "0A":  # LISTEN
            listening.append(address)
    assert listening == ["0100007F"]  # 127.0.0.1, little-endian


def test_every_page_forbids_outside_requests_and_is_escaped(served):
    arc, base, _ = served
    pages = ["/", f"/datasets/{HOSTILE}", f"/datasets/{HOSTILE}/audit",
             f"/datasets/{HOSTILE}/releases/latest",
             f"/datasets/{HOSTILE}/diff/latest~1..latest"]
    history = arc.history(HOSTILE, include_retracted=True)
    retracted = history.entries[-1]
    pages += [f"/datasets/{HOSTILE}/releases/{retracted.id}",
              f"/datasets/{HOSTILE}/releases/{retracted.id}/tables/"
              + quote(next(iter(retracted.record["tables"])), safe="")]
    table = next(iter(arc.history(HOSTILE).resolve("latest").record["tables"]))
    pages += [f"/datasets/{HOSTILE}/releases/latest/tables/{table}",
              f"/datasets/{HOSTILE}/tables/{table}/cell?row=name%3Da&column="
              + quote(f"n{PAYLOAD}", safe="")]
    for path in pages:
        response = get(base, path)
        assert response.status_code == 200, (path, response.text[:300])
        page = response.text
        assert "default-src 'self'" in response.headers["content-security-policy"]
        assert response.headers["x-content-type-options"] == "nosniff"
        assert PAYLOAD not in page and "<svg onload" not in page, path
        assert "href=\"javascript:" not in page, path  # shown as text, never a link
        for attr in ("src", "href", "action"):
            for value in __import__("re").findall(rf'{attr}="([^"]*)"', page):
                assert value.startswith(("/", "?", "#")) or (
                    attr == "href" and value.startswith("https://")), (path, attr, value)
    timeline = get(base, f"/datasets/{HOSTILE}").text
    assert "Title &lt;img src=x onerror=&#34;window.__pwned=1&#34;&gt;" in timeline
    assert "note &lt;img" in timeline and "reason &lt;img" in timeline
    release = get(base, f"/datasets/{HOSTILE}/releases/{retracted.id}").text
    assert "&lt;svg onload=window.__pwned=1&gt;" in release  # the sheet name, escaped


def test_downloads_are_the_archived_bytes(served):
    arc, base, _ = served
    latest = arc.history(HOSTILE).resolve("latest")
    original = get(base, f"/datasets/{HOSTILE}/releases/{latest.id}/original")
    assert original.status_code == 200
    assert hashlib.sha256(original.content).hexdigest() == latest.record["original"]["sha256"]
    assert "attachment" in original.headers["content-disposition"]
    capture = get(base, f"/datasets/{HOSTILE}/releases/{latest.id}/capture.warc.gz")
    assert capture.status_code == 200
    assert hashlib.sha256(capture.content).hexdigest() == \
        latest.record["files"][latest.record["capture"]]["sha256"]
    first = arc.history(HOSTILE).resolve("latest~1")
    missing = get(base, f"/datasets/{HOSTILE}/releases/{first.id}/capture.warc.gz")
    assert missing.status_code == 404 and "no WARC capture" in missing.text


@pytest.mark.parametrize("path, status, words", [
    ("/datasets/nope", 404, "no dataset 'nope'"),
    ("/datasets/..%2F..%2Fetc", 404, "no page at"),
    (f"/datasets/{DS}/releases/zzzz", 404, "zzzz"),
    (f"/datasets/{DS}/releases/latest/tables/nope", 404, "no table 'nope'"),
    (f"/datasets/{DS}/releases/latest/tables/{BOOKINS}?limit=x", 400, "not a whole number"),
    (f"/datasets/{DS}/releases/latest/tables/{BOOKINS}?offset=-1", 400, "must not be negative"),
    (f"/datasets/{DS}/releases/latest?format=xml", 400, "html or json"),
    (f"/datasets/{DS}/diff/latest", 400, "A..B"),
    (f"/datasets/{DS}/diff?a=latest", 400, "pick two releases"),
    (f"/datasets/{DS}/tables/{BOOKINS}/cell?row=Agency%3DTotal", 400, "?column="),
    (f"/datasets/{DS}/tables/{BOOKINS}/cell?row=Total&column=Nov", 400, "COLUMN=VALUE"),
    (f"/datasets/{DS}/tables/{BOOKINS}/cell?row=Nope%3D1&column=Nov", 400, "'Nope'"),
    (f"/datasets/{DS}/audit?severity=loud", 400, "one of info, warning, alert"),
])
def test_bad_urls_get_one_line_errors(served, path, status, words):
    _, base, _ = served
    response = requests.get(base + path, timeout=30)
    assert response.status_code == status, response.text[:300]
    assert words in response.text.replace("&#39;", "'")
    assert "Traceback" not in response.text
    if "format=" not in path:
        twin = requests.get(base + path + ("&" if "?" in path else "?") + "format=json",
                            timeout=30)
        assert twin.status_code == status and words in twin.json()["error"]


def test_a_foreign_host_header_is_refused(served):
    _, base, _ = served  # DNS rebinding: evil.example resolving to 127.0.0.1
    response = requests.get(base + "/", headers={"Host": "evil.example"}, timeout=10)
    assert response.status_code == 400


def test_a_busy_port_is_one_line(served, tmp_path):
    arc, _, port = served
    result = subprocess.run([sys.executable, "-m", "atdarchive.cli", "-C", str(arc.root),
                             "serve", "--port", str(port)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode != 0
    assert result.stderr.strip().count("\n") == 0
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr


# -- in a real browser: Debian's headless chromium, driven through its chromedriver ------
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--window-size=1280,900"]


@pytest.fixture(scope="module")
def browser():
    """Selenium on Debian's chromium + chromedriver (its own driver manager would try the
    network). Missing browser: the test FAILS with how to install it, it does not skip."""
    import shutil

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not binary or not driver_path:
        pytest.fail("the web app is checked in a real browser: "
                    "apt-get install -y chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.implicitly_wait(5)
    yield driver
    driver.quit()


def _css(driver, selector):
    return driver.find_element("css selector", selector)


def _all(driver, selector):
    return driver.find_elements("css selector", selector)


def _follow(driver, element, expect: str) -> None:
    """Click a link or button and wait until the browser shows the page it leads to."""
    from selenium.webdriver.support.ui import WebDriverWait

    before = driver.current_url
    element.click()
    WebDriverWait(driver, 60).until(
        lambda d: d.current_url != before and expect in d.current_url
        and d.execute_script("return document.readyState") == "complete")


def _only_local(driver, base: str) -> None:
    """Nothing on the page came from outside the app, and nothing hostile ran."""
    names = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)")
    assert all(name.startswith(base) for name in names), names
    assert driver.execute_script("return window.__pwned === undefined")


def _shot(driver, path: Path) -> None:
    import os

    driver.save_screenshot(str(path))
    assert path.stat().st_size > 10_000  # a rendered page, not a blank one
    keep = os.environ.get("ATDARCHIVE_SCREENSHOTS")  # README's pictures: docs/
    if keep:
        driver.save_screenshot(str(Path(keep) / path.name))


def test_browser_timeline_release_diff_cell(served, browser, tmp_path):
    arc, base, _ = served
    history = arc.history(DS)
    public = history.channel("public")
    latest, parent = public[-1], public[-2]
    browser.get(f"{base}/datasets/{DS}")
    rows = _all(browser, "#timeline-1 tr.release")
    assert [r.get_attribute("data-id") for r in rows] == [e.id for e in public]
    _shot(browser, tmp_path / "timeline.png")
    _only_local(browser, base)

    _follow(browser, rows[-1].find_element("css selector", "a.release-link"), latest.id)
    assert latest.short in browser.title
    assert _css(browser, "#permalink").text == latest.id
    assert {a.get_attribute("data-what") for a in _all(browser, "a.download")} == {"original"}
    browser.back()

    browser.find_element("css selector", f'input[name=a][value="{parent.id}"]').click()
    browser.find_element("css selector", f'input[name=b][value="{latest.id}"]').click()
    _follow(browser, _css(browser, "#diff-button"), "/diff/")
    assert browser.current_url.endswith(f"/diff/{parent.id}..{latest.id}")
    library = arc.diff(f"{DS}@{parent.id}", f"{DS}@{latest.id}")
    shown = {s.text.split(" ", 1)[1]: int(s.text.split(" ", 1)[0].replace(",", ""))
             for s in _all(browser, "#diff-counts span")}
    assert shown == {k.replace("_", " "): v for k, v in library.counts.items()}
    section = _css(browser, f'section[data-table="{BOOKINS}"]')
    first = section.find_element("css selector", "tr.changed-cell")
    cells = library.tables[BOOKINS].cells_changed.to_pylist()
    agency, column = (td.text for td in first.find_elements("css selector", "td")[:2])
    expected = next(c for c in cells if c["Agency"] == agency and c["column"] == column)
    assert first.find_element("css selector", "td.old").text == expected["old"]
    assert first.find_element("css selector", "td.new").text == expected["new"]
    _shot(browser, tmp_path / "diff.png")

    _follow(browser, first.find_element("css selector", "a.cell-link"), "/cell?")
    values = arc.history_of(DS, table=BOOKINS, row={"Agency": agency},
                            column=column).to_pylist()
    on_screen = [(r.find_elements("css selector", "td")[0].text,
                  r.find_element("css selector", "td.value").text)
                 for r in _all(browser, "#cell-history tbody tr")]
    assert on_screen == [(v["published"], v["value"] or "") for v in values]
    points = _all(browser, "#chart circle.point")
    assert [p.get_attribute("data-value") for p in points] == [
        v["value"] for v in values if v["value"] not in (None, "")]
    _shot(browser, tmp_path / "cell.png")
    _only_local(browser, base)


def test_browser_blame_heatmap_cell_click(served, browser, tmp_path):
    arc, base, _ = served
    browser.get(f"{base}/datasets/{DS}/releases/latest")
    _follow(browser, next(a for a in _all(browser, "a.table-link") if a.text == BOOKINS),
            f"/tables/{BOOKINS}")
    blame = {(b["Agency"], b["column"]): b
             for b in arc.blame(f"{DS}@latest", table=BOOKINS).to_pylist()}
    header = [th.text for th in _all(browser, "#blame thead th")]
    nov = header.index("Nov")
    total = next(r for r in _all(browser, "#blame tbody tr")
                 if r.find_elements("css selector", "td")[1].text == "Total")
    td = total.find_elements("css selector", "td")[nov]
    heat = td.get_attribute("class")
    td.click()
    want = blame[("Total", "Nov")]
    assert _css(browser, "#panel-value").text == want["value"]
    assert _css(browser, "#panel-previous").text == (want["previous"] or
                                                     "— (first published here)")
    assert _css(browser, "#panel-revisions").text == str(want["revisions"])
    assert _css(browser, "#panel-source").text == want["source_cell"]
    assert _css(browser, "#panel-release").text == f"{want['published']} {want['short_id']}"
    series = [e.id for e in arc.history(DS).channel("public")]
    level = round(series.index(want["snapshot"]) * 7 / (len(series) - 1))
    assert f"h{level}" in heat.split()  # coloured by the release that set it
    _shot(browser, tmp_path / "blame.png")

    _all(browser, "#blame thead th")[nov].click()  # sort by Nov, ascending
    column = [int(r.find_elements("css selector", "td")[nov].text)
              for r in _all(browser, "#blame tbody tr")]
    assert column == sorted(column)

    _follow(browser, _css(browser, "#panel-history"), "/cell?")
    assert "column=Nov" in browser.current_url
    assert _all(browser, "#cell-history tbody tr")[-1].find_element(
        "css selector", "td.value").text == want["value"]


def test_browser_audit_finding_to_cell(served, browser, tmp_path):
    arc, base, _ = served
    browser.get(f"{base}/datasets/{DS}/audit")
    ranked = sorted(arc.audit(DS).findings, key=lambda f: (-f.score, f.published, f.kind))
    shown = _all(browser, "li.finding")
    assert [li.get_attribute("data-kind") for li in shown] == [f.kind for f in ranked]
    _shot(browser, tmp_path / "audit.png")
    item = next(li for li in _all(browser, "li.finding.headline")
                if li.find_elements("css selector", "a.cell-link"))
    published = item.find_element("css selector", ".finding-head .muted").text.split(" ")[0]
    row = item.find_element("css selector", "table.cells tbody tr")
    old = row.find_element("css selector", "td.old").text
    new = row.find_element("css selector", "td.new").text
    _follow(browser, row.find_element("css selector", "a.cell-link"), "/cell?")
    history = [(r.find_elements("css selector", "td")[0].text,
                r.find_elements("css selector", "td")[3].text,
                r.find_elements("css selector", "td")[4].text)
               for r in _all(browser, "#cell-history tbody tr")]
    assert (published, new, old) in history  # the cell changed there, old -> new
    _only_local(browser, base)


def test_browser_hostile_values_stay_text(served, browser, tmp_path):
    arc, base, _ = served
    retracted = arc.history(HOSTILE, include_retracted=True).entries[-1]
    table = next(iter(retracted.record["tables"]))
    for path in (f"/datasets/{HOSTILE}", f"/datasets/{HOSTILE}/releases/latest",
                 f"/datasets/{HOSTILE}/releases/latest/tables/data",
                 f"/datasets/{HOSTILE}/diff/latest~1..latest",
                 f"/datasets/{HOSTILE}/releases/{retracted.id}",
                 f"/datasets/{HOSTILE}/releases/{retracted.id}/tables/{quote(table, safe='')}"):
        browser.get(base + path)
        _only_local(browser, base)
        assert PAYLOAD in _css(browser, "main").text or SHEET in _css(browser, "main").text
    cells = _all(browser, "td.cell")
    cells[0].click()  # the panel writes values as text too
    _only_local(browser, base)


def test_port_zero_says_where_and_another_host_is_warned_of(served):
    arc, _, _ = served
    proc = subprocess.Popen([sys.executable, "-m", "atdarchive.cli", "-C", str(arc.root),
                             "serve", "--host", "0.0.0.0", "--port", "0"],
                            stderr=subprocess.PIPE, text=True)
    try:
        warning, serving = proc.stderr.readline(), proc.stderr.readline()
        assert warning.startswith("warning: serving on 0.0.0.0: anyone who can reach")
        url = __import__("re").search(r"at (http://127\.0\.0\.1:\d+/) ", serving).group(1)
        for _ in range(100):
            try:
                response = requests.get(url + "datasets/" + DS + "?format=json", timeout=60)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        assert response.status_code == 200 and response.json()["dataset"] == DS
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_commit_made_while_serving_is_seen(served, tmp_path):
    arc, base, _ = served
    before = as_json(base, f"/datasets/{HOSTILE}")
    count = len(before["channels"]["public"])
    arc.commit(HOSTILE, write_csv(tmp_path / "h4.csv", [{"name": "z", "v": "9"}]),
               published="2025-04-01")
    after = as_json(base, f"/datasets/{HOSTILE}")
    assert len(after["channels"]["public"]) == count + 1
    assert after["channels"]["public"][-1]["published"] == "2025-04-01"
