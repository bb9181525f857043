"""`atdarchive watch` and `source`: keep an archive current from the agency's own pages."""

from __future__ import annotations

import json
import random
import re
import time

import typer

from atdarchive.cli.common import JSON_OPTION, emit_json, flush_notices, note, open_archive
from atdarchive.errors import AtdError

SEVERITIES = ("info", "warning", "alert")


def register(app: typer.Typer) -> None:
    app.command("watch")(watch)
    source_app = typer.Typer(help="Where a dataset's releases are watched ([[sources]]).",
                             rich_markup_mode=None)
    source_app.command("add")(source_add)
    source_app.command("list")(source_list)
    source_app.command("confirm")(source_confirm)
    app.add_typer(source_app, name="source")


def _interval(text: str) -> float:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text or "")
    if not match:
        raise AtdError(f"--every {text!r}: expected a duration such as 15m, 1h, 90s")
    return float(match[1]) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match[2]]


def watch(
    ctx: typer.Context,
    datasets: list[str] = typer.Argument(None, help="Datasets (default: all with sources)."),
    exit_code: bool = typer.Option(False, "--exit-code", help="Exit 1 when the pass recorded "
                                   "a new release or event, or a finding at --fail-on or above."),
    fail_on: str = typer.Option("alert", "--fail-on", help="info|warning|alert (--exit-code)."),
    every: str = typer.Option(None, "--every", help="Loop in the foreground: 15m, 1h, ..."),
    passes: int = typer.Option(None, "--passes", help="With --every: stop after N passes."),
    notify: str = typer.Option(None, "--notify", help="POST a JSON summary here when "
                               "something new happened (a chat webhook gets its 'text')."),
    notify_cmd: str = typer.Option(None, "--notify-cmd", help="Run CMD with the JSON summary "
                                   "on stdin when something new happened."),
    timeout: float = typer.Option(None, "--timeout", help="Seconds without a byte from a "
                                  "server (default: net.idle_timeout, 30)."),
    retries: int = typer.Option(3, "--retries", help="Retries on timeouts, 5xx and 429."),
    delay: float = typer.Option(1.0, "--delay", help="Seconds between requests to one host."),
    budget: float = typer.Option(None, "--budget", help="Seconds for a whole pass, enforced "
                                 "during transfers (default: net.watch_budget, 600)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """One pass over every source (for cron, systemd timers, CI schedules); 0 = the pass
    completed, 2 = a source failed, 1 (with --exit-code) = something new."""
    from atdarchive.cli.common import progress_bar
    from atdarchive.watch import WatchOptions

    if fail_on not in SEVERITIES:
        raise AtdError(f"--fail-on {fail_on!r}: one of {', '.join(SEVERITIES)}")
    wait = _interval(every) if every else None
    archive = open_archive(ctx)
    options = WatchOptions(timeout=timeout, retries=retries, delay=delay, budget=budget)
    done, code = 0, 0
    while True:
        with progress_bar("watching", enabled=not as_json) as progress:
            result = archive.watch(datasets or None, options, progress=progress)
        flush_notices(archive)
        done += 1
        code = _report(result, as_json, exit_code, fail_on)
        if result.news and (notify or notify_cmd):
            _notify(result, notify, notify_cmd)
        if wait is None or (passes is not None and done >= passes):
            break
        time.sleep(wait * random.uniform(0.9, 1.1))  # jitter: schedules do not align
    if code:
        raise typer.Exit(code)


def _report(result, as_json: bool, exit_code: bool, fail_on: str) -> int:
    from atdarchive.checks.base import RANK

    if as_json:
        emit_json(result.to_json())
    else:
        print(result.text())
    for outcome in result.outcomes:  # each failure, one line, where errors go
        for reason in outcome.failures:
            note(f"error: {reason}")
    if result.failed:
        return 2
    worst = result.worst()
    if exit_code and (result.news and any(e["kind"] != "check" for e in result.news)
                      or (worst and RANK[worst] >= RANK[fail_on])):
        return 1
    return 0


def _notify(result, url: str | None, command: str | None) -> None:
    """Tell someone: a POST to URL and/or CMD with the JSON on stdin. A failure to notify
    is a note; the pass stands."""
    import shlex
    import subprocess

    body = json.dumps(result.to_json())
    if url:
        import requests

        try:
            requests.post(url, data=body, headers={"Content-Type": "application/json"},
                          timeout=15).raise_for_status()
        except requests.RequestException as exc:
            note(f"note: --notify {url}: {str(exc).splitlines()[0]}")
    if command:
        try:
            done = subprocess.run(shlex.split(command), input=body, text=True, timeout=60,
                                  check=False, capture_output=True)
            if done.returncode:
                note(f"note: --notify-cmd exited {done.returncode}: "
                     f"{(done.stderr or '').strip()[:200]}")
        except (OSError, subprocess.TimeoutExpired, ValueError) as exc:
            note(f"note: --notify-cmd: {exc}")


def source_add(
    ctx: typer.Context,
    dataset: str = typer.Argument(..., help="Dataset."),
    page: str = typer.Option(None, "--page", help="A landing page that links the files."),
    link: str = typer.Option(None, "--link", help="Regex for the file links on the page."),
    url: str = typer.Option(None, "--url", help="Or: one direct file URL."),
    published: str = typer.Option("filename:%m%d%Y", "--published",
                                  help="filename:FORMAT | last-modified | captured."),
    channel: str = typer.Option("public", "--channel", help="Channel of its releases."),
) -> None:
    """Watch a page (--page URL --link REGEX) or a file (--url URL) for DATASET."""
    archive = open_archive(ctx)
    source = archive.add_source(dataset, page=page, link=link, url=url, published=published,
                                channel=channel)
    print(f"{dataset}: watching {source.label} (source {source.id}, published "
          f"{source.published}, channel {source.channel})")


def source_list(ctx: typer.Context, dataset: str = typer.Argument(..., help="Dataset."),
                as_json: bool = JSON_OPTION) -> None:
    """The sources a dataset is watched at."""
    archive = open_archive(ctx)
    sources = archive.dataset(dataset).sources
    if as_json:
        emit_json([{"id": s.id, **s.to_toml()} for s in sources])
        return
    if not sources:
        note(f"{dataset}: no sources; add one with 'atdarchive source add'")
    for s in sources:
        print(f"{s.id}  {s.label}  published {s.published}  ({s.channel})")


def source_confirm(ctx: typer.Context,
                   dataset: str = typer.Argument(..., help="The dataset whose sources to trust.")
                   ) -> None:
    """Trust the [[sources]] that came with the archive in DATASET's dataset.toml."""
    archive = open_archive(ctx)
    for setting in archive.confirm_settings("source", dataset):
        print(f"confirmed {setting.describe()}")
