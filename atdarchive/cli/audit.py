"""`atdarchive audit DATASET`: recycled releases, silent revisions, period mismatches."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from atdarchive.cli.common import JSON_OPTION, emit_json, flush_notices, note, open_archive
from atdarchive.errors import AtdError


def register(app: typer.Typer) -> None:
    app.command("audit")(audit)


def _pct_option(value: float, option: str) -> float:
    if value < 0:
        raise AtdError(f"{option}: expected a percentage >= 0, got {value:g}")
    return value / 100.0


def audit(
    ctx: typer.Context,
    dataset: str = typer.Argument(..., help="Dataset name."),
    since: str = typer.Option(None, "--since", help="Only report releases published on or "
                              "after this date (YYYY-MM-DD); history before it is still used."),
    channels: str = typer.Option(None, "--channels", help="Comma-separated channels, e.g. "
                                 "public,foia: audit these and compare them (first = reference)."),
    as_json: bool = JSON_OPTION,
    html: str = typer.Option(None, "--html", help="Write the report as one HTML file."),
    md: str = typer.Option(None, "--md", help="Write the report as Markdown."),
    threshold: float = typer.Option(100.0, "--threshold", help="Outlier: a change of at least "
                                    "PCT percent (either direction)."),
    recycled_share: float = typer.Option(90.0, "--recycled-share", help="Recycled: at least PCT "
                                         "percent of rows equal an older release's."),
    period_days: int = typer.Option(45, "--period-days", help="Period mismatch: stated data "
                                    "dates more than N days before the claimed date."),
    min_base: float = typer.Option(10.0, "--min-base", help="Outlier: ignore values smaller "
                                   "than this on both sides."),
    show_all: bool = typer.Option(False, "--all", help="Every finding of each release (the "
                                  "text shows the 3 most significant and counts the rest)."),
    include_retracted: bool = typer.Option(False, "--include-retracted",
                                           help="Audit retracted releases too."),
) -> None:
    """Forensic audit of DATASET's history: findings with their evidence, the most
    significant first (kinds: README "Kinds")."""
    try:
        _run(ctx, dataset, since, channels, as_json, html, md, threshold, recycled_share,
             period_days, min_base, show_all, include_retracted)
    except AtdError as exc:
        if not as_json:
            raise
        emit_json({"dataset": dataset, "error": str(exc), "findings": [], "releases": []})
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(exc.exit_code) from None


def _run(ctx: typer.Context, dataset: str, since: str | None, channels: str | None,
         as_json: bool, html: str | None, md: str | None, threshold: float,
         recycled_share: float, period_days: int, min_base: float, show_all: bool,
         include_retracted: bool) -> None:
    from atdarchive.audit import AuditOptions
    from atdarchive.cli.common import progress_bar
    from atdarchive.render.audit_report import render_text, write_report

    if period_days < 0:
        raise AtdError(f"--period-days: expected a number of days >= 0, got {period_days}")
    options = AuditOptions(
        outlier_threshold=_pct_option(threshold, "--threshold"),
        recycled_share=_pct_option(recycled_share, "--recycled-share"),
        period_days=period_days, outlier_min_base=min_base, since=since,
        channels=[c.strip() for c in channels.split(",") if c.strip()] if channels else None,
        include_retracted=include_retracted,
    )
    if options.recycled_share > 1:
        raise AtdError(f"--recycled-share: at most 100, got {recycled_share:g}")
    archive = open_archive(ctx)
    with progress_bar("auditing", enabled=not as_json) as progress:
        report = archive.audit(dataset, options, progress=progress)
    flush_notices(archive)
    for path, fmt in ((html, "html"), (md, "md")):
        if path is not None:
            write_report(report, Path(path), fmt)
            note(f"wrote {path}")
    if as_json:
        emit_json(report.to_json())
    else:
        sys.stdout.write(render_text(report, headline=None if show_all else 3))
