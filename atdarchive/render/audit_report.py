"""Writers for an `AuditReport`: one self-contained HTML file, Markdown, plain text.

The HTML has no scripts and fetches nothing: inline CSS, inline SVG (a timeline of
releases coloured by their worst finding, and revisions per release as bars), and
each finding's evidence as tables. It is meant to be attached to an e-mail or a
story's notes and still open in ten years.
"""

from __future__ import annotations

import datetime as dt
import html
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from atdarchive import checks
from atdarchive.audit import SEVERITIES, AuditReport, Finding
from atdarchive.render.safe import markdown
from atdarchive.util import number

__all__ = ["render_html", "render_markdown", "render_text", "write_report"]

SEV_COLOR = {"alert": "#c62828", "warning": "#ef8f00", "info": "#1f6fb2", None: "#2e7d32"}
#: Findings shown per release in the text headline (`--all` shows every one).
HEADLINE = 3
MAX_LIST_ROWS = 50


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _fmt(value: Any) -> str:
    """A value as a short readable string (numbers grouped, floats trimmed)."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return number(value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={_fmt(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(_fmt(v) for v in value)
    return str(value)


def _pct(value: Any) -> str:
    return "—" if not isinstance(value, int | float) else f"{value:+.1%}"


# ---------------------------------------------------------------- HTML

CSS = """
:root{--ink:#1d232a;--muted:#5b6672;--line:#dde3ea;--bg:#f6f8fa;--card:#fff}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
color:var(--ink);background:var(--bg)}
main{max-width:min(1800px,100%);margin:0 auto;padding:28px 28px 60px}
h1{font-size:26px;margin:0 0 4px}h2{font-size:19px;margin:34px 0 10px;padding-bottom:4px;
border-bottom:2px solid var(--line)}h3{font-size:16px;margin:22px 0 8px}
.sub{color:var(--muted);margin:0 0 18px}
.cards{display:flex;gap:12px;flex-wrap:wrap}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:10px 16px;
min-width:120px}
.card b{display:block;font-size:24px}.card span{color:var(--muted);font-size:13px}
.card.alert b{color:#c62828}.card.warning b{color:#ef8f00}.card.info b{color:#1f6fb2}
.panel{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:14px;
overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:13.5px}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{background:#eef2f6;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums}
td.nw{white-space:nowrap}td.mono{overflow-wrap:anywhere}
.finding,.finding table{overflow-wrap:anywhere}.finding{overflow-x:auto}
.badge{display:inline-block;border-radius:10px;padding:1px 8px;margin:1px 2px;font-size:12px;
color:#fff;white-space:nowrap}
.sev-alert{background:#c62828}.sev-warning{background:#ef8f00}.sev-info{background:#1f6fb2}
.sev-none{background:#2e7d32}
.finding{background:var(--card);border:1px solid var(--line);border-left:5px solid #999;
border-radius:6px;margin:10px 0;padding:10px 14px}
.finding.alert{border-left-color:#c62828}.finding.warning{border-left-color:#ef8f00}
.finding.info{border-left-color:#1f6fb2}
.finding .head{display:flex;gap:8px;align-items:baseline;flex-wrap:wrap}
.finding .kind{font-weight:600}.finding .table{color:var(--muted);font-family:ui-monospace,
"DejaVu Sans Mono",monospace;font-size:12.5px}
.finding p{margin:6px 0 8px}
details summary{cursor:pointer;color:#1f6fb2;font-size:13px;margin:4px 0}
.ev th{width:190px;background:#f3f5f8}.ev td table{margin:2px 0}
code,.mono{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:12.5px}
.empty{color:var(--muted);font-style:italic}
.legend span{margin-right:14px;font-size:13px;color:var(--muted)}
.legend i{display:inline-block;width:11px;height:11px;border-radius:6px;margin-right:5px;
vertical-align:-1px}
svg{display:block;max-width:100%;height:auto}
footer{margin-top:40px;color:var(--muted);font-size:12.5px}
"""


def _svg_timeline(report: AuditReport) -> str:
    releases = report.releases
    if not releases:
        return '<p class="empty">No releases.</p>'
    width, pad, y = 1030, 60, 70
    n = len(releases)
    step = (width - 2 * pad) / max(1, n - 1)
    height = 150
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="100%" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="timeline of releases">',
             f'<line x1="{pad - 20}" y1="{y}" x2="{width - pad + 20}" y2="{y}" '
             'stroke="#9aa6b2" stroke-width="2"/>']
    label_every = max(1, round(n / 24))
    for i, rel in enumerate(releases):
        x = pad + i * step if n > 1 else width / 2
        color = SEV_COLOR[rel.get("severity")]
        r = 9 if rel.get("severity") == "alert" else 7
        title = (f"{rel['published']} {rel['short_id']} ({rel['channel']}): "
                 + (", ".join(checks.label(k) for k in rel.get("flags", [])) or "no findings"))
        parts.append(f'<a href="#rel-{_e(rel["short_id"])}"><circle cx="{x:.1f}" cy="{y}" '
                     f'r="{r}" fill="{color}" stroke="#fff" stroke-width="2">'
                     f'<title>{_e(title)}</title></circle></a>')
        if rel.get("channel") != report.channels[0]:
            parts.append(f'<circle cx="{x:.1f}" cy="{y}" r="{r + 4}" fill="none" '
                         f'stroke="{color}" stroke-dasharray="3 2"/>')
        if i % label_every == 0 or i == n - 1:
            parts.append(f'<text x="{x:.1f}" y="{y + 24}" font-size="11" fill="#1d232a" '
                         f'text-anchor="end" transform="rotate(-35 {x:.1f} {y + 24})">'
                         f'{_e(str(rel["published"])[:10])}</text>')
        marks = [k for k in rel.get("flags", []) if k in ("recycled_release", "period_mismatch",
                                                          "identical_republish",
                                                          "outlier_change")]
        for j, kind in enumerate(marks):
            glyph = {"recycled_release": "R", "period_mismatch": "P",
                     "identical_republish": "=", "outlier_change": "!"}[kind]
            parts.append(f'<text x="{x:.1f}" y="{y - 16 - 13 * j}" font-size="12" '
                         f'font-weight="700" text-anchor="middle" fill="{color}">{glyph}'
                         f'<title>{_e(checks.label(kind))}</title></text>')
    parts.append("</svg>")
    legend = ('<div class="legend">'
              + "".join(f'<span><i style="background:{SEV_COLOR[s]}"></i>{s}</span>'
                        for s in ("alert", "warning", "info"))
              + f'<span><i style="background:{SEV_COLOR[None]}"></i>no findings</span>'
              '<span><b>R</b> recycled · <b>P</b> period mismatch · <b>=</b> identical '
              'republish · <b>!</b> outlier</span></div>')
    return "".join(parts) + legend


def _svg_revisions(report: AuditReport) -> str:
    releases = report.releases
    values = [r.get("cells_revised", 0) for r in releases]
    if not releases or not any(values):
        return '<p class="empty">No revisions of past values.</p>'
    width, left, top, bottom = 1030, 56, 16, 70
    height = 260
    plot_h = height - top - bottom
    n = len(releases)
    slot = (width - left - 10) / n
    bar = max(2.0, min(46.0, slot * 0.7))
    peak = max(values)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="100%" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="revisions per release">']
    for frac in (0, 0.5, 1):
        yy = top + plot_h * (1 - frac)
        parts.append(f'<line x1="{left}" y1="{yy:.1f}" x2="{width - 10}" y2="{yy:.1f}" '
                     'stroke="#e3e8ee"/>')
        parts.append(f'<text x="{left - 6}" y="{yy + 4:.1f}" font-size="11" text-anchor="end" '
                     f'fill="#5b6672">{round(peak * frac):,}</text>')
    label_every = max(1, round(n / 24))
    for i, (rel, value) in enumerate(zip(releases, values, strict=True)):
        x = left + slot * i + (slot - bar) / 2
        h = plot_h * value / peak if peak else 0
        color = "#1f6fb2" if rel.get("announced") else "#ef8f00"
        parts.append(f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bar:.1f}" '
                     f'height="{h:.1f}" fill="{color}" rx="2"><title>{_e(rel["published"])}: '
                     f'{value:,} cell(s) revised'
                     f'{" (announced)" if rel.get("announced") else " (silent)"}'
                     '</title></rect>')
        cx = x + bar / 2
        if value and bar >= 14:
            parts.append(f'<text x="{cx:.1f}" y="{top + plot_h - h - 4:.1f}" font-size="11" '
                         f'text-anchor="middle" fill="#1d232a">{value:,}</text>')
        if i % label_every == 0 or i == n - 1:
            ly = top + plot_h + 14
            parts.append(f'<text x="{cx:.1f}" y="{ly}" font-size="11" text-anchor="end" '
                         f'fill="#1d232a" transform="rotate(-35 {cx:.1f} {ly})">'
                         f'{_e(str(rel["published"])[:10])}</text>')
    parts.append("</svg>")
    legend = ('<div class="legend"><span><i style="background:#ef8f00"></i>silent (no notice in '
              'the release message)</span><span><i style="background:#1f6fb2"></i>announced'
              '</span></div>')
    return "".join(parts) + legend


def _list_table(rows: list[Any]) -> str:
    """A list of dicts as a table (columns in first-seen order); scalars as a line."""
    if not rows:
        return '<span class="empty">none</span>'
    if not all(isinstance(r, dict) for r in rows):
        return _e(_fmt(rows))
    cols: list[str] = []
    for r in rows:
        cols += [c for c in r if c not in cols]
    shown = rows[:MAX_LIST_ROWS]
    out = ["<table><tr>" + "".join(f"<th>{_e(c)}</th>" for c in cols) + "</tr>"]
    for r in shown:
        cells = []
        for c in cols:
            v = r.get(c)
            if c in ("rel_change", "share", "parent_share") and isinstance(v, int | float):
                text = _pct(v) if c == "rel_change" else f"{v:.1%}"
            else:
                text = _fmt(v)
            num = isinstance(v, int | float) and not isinstance(v, bool)
            cells.append(f'<td class="{"num" if num else ""}">{_e(text)}</td>')
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table>")
    if len(rows) > len(shown):
        out.append(f'<p class="empty">… and {len(rows) - len(shown)} more</p>')
    return "".join(out)


def _evidence_html(evidence: dict[str, Any]) -> str:
    rows = []
    for key, value in evidence.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            cell = _list_table(value)
        elif isinstance(value, dict) and value and any(isinstance(v, dict | list)
                                                        for v in value.values()):
            cell = _evidence_html(value)
        elif key in ("share", "parent_share") and isinstance(value, float):
            cell = _e(f"{value:.1%}")
        elif key in ("threshold", "recycled_share") and isinstance(value, int | float):
            cell = _e(f"{value:.0%}")
        elif key in ("max_rel_change",) and isinstance(value, float):
            cell = _e(_pct(value))
        else:
            cell = _e(_fmt(value))
            if key.endswith("snapshot") and isinstance(value, str):
                cell = (f'<code>{_e(value[:10])}</code>'
                        f'<span class="empty"> {_e(value[10:20])}…</span>')
        rows.append(f"<tr><th>{_e(key.replace('_', ' '))}</th><td>{cell}</td></tr>")
    return '<table class="ev">' + "".join(rows) + "</table>"


def _finding_html(f: Finding) -> str:
    table = f'<span class="table">{_e(f.table)}</span>' if f.table else ""
    return (f'<article class="finding {f.severity}" id="f-{_e(f.kind)}-{_e(f.short_id)}">'
            f'<div class="head"><span class="badge sev-{f.severity}">{f.severity}</span>'
            f'<span class="kind">{_e(checks.label(f.kind))}</span>{table}</div>'
            f"<p>{_e(f.summary)}</p>"
            f"<details{' open' if f.severity == 'alert' else ''}><summary>evidence</summary>"
            f"{_evidence_html(f.evidence)}</details></article>")


def _badges(rel: dict[str, Any], findings: list[Finding]) -> str:
    worst: dict[str, str] = {}
    for f in findings:
        if f.snapshot == rel["id"]:
            cur = worst.get(f.kind)
            if cur is None or SEVERITIES.index(f.severity) > SEVERITIES.index(cur):
                worst[f.kind] = f.severity
    if not worst:
        return '<span class="badge sev-none">clean</span>'
    return "".join(f'<span class="badge sev-{worst[k]}">{_e(checks.label(k))}</span>'
                   for k in checks.kinds() if k in worst)


def render_html(report: AuditReport) -> str:
    """The whole report as one self-contained HTML document (no scripts, no network)."""
    counts = report.counts()
    sev = counts["by_severity"]
    title = f"Forensic audit — {report.dataset}"
    cards = "".join(
        f'<div class="card {s}"><b>{sev[s]:,}</b><span>{s}</span></div>'
        for s in ("alert", "warning", "info"))
    cards = (f'<div class="card"><b>{len(report.releases):,}</b><span>releases</span></div>'
             + cards)
    kinds = ", ".join(f"{checks.label(k)}: {n}" for k, n in counts["by_kind"].items()) or "none"
    rows = []
    for rel in report.releases:
        rows.append(
            f'<tr id="rel-{_e(rel["short_id"])}"><td class="nw">{_e(rel["published"])}</td>'
            f'<td><code>{_e(rel["short_id"])}</code></td><td>{_e(rel["channel"])}</td>'
            f'<td>{_e(rel.get("period") or "—")}</td>'
            f'<td class="nw">{_e(rel.get("latest_stated") or "—")}</td>'
            f'<td class="mono">{_e(rel.get("original") or "")}</td>'
            f'<td class="num">{rel.get("cells_revised", 0):,}</td>'
            f"<td>{_badges(rel, report.findings)}</td></tr>")
    release_table = (
        "<table><tr><th>published</th><th>id</th><th>channel</th><th>period</th>"
        "<th>data as of</th><th>file</th><th>cells revised</th><th>flags</th></tr>"
        + "".join(rows) + "</table>") if rows else '<p class="empty">No releases.</p>'
    groups = []
    by_rel: dict[str, list[Finding]] = {}
    for f in report.findings:
        by_rel.setdefault(f.snapshot, []).append(f)
    for rel in report.releases:
        mine = by_rel.get(rel["id"], [])
        if not mine:
            continue
        msg = f' — “{_e(rel["message"])}”' if rel.get("message") else ""
        groups.append(
            f'<h3>{_e(rel["published"])} · <code>{_e(rel["short_id"])}</code> · '
            f'{_e(rel["channel"])}{msg}</h3>' + "".join(_finding_html(f) for f in mine))
    findings = "".join(groups) or '<p class="empty">No findings: a clean history.</p>'
    opts = report.options
    settings = (f"recycled ≥ {opts.recycled_share:.0%} of rows (and ≥ "
                f"{opts.recycled_margin:.0%} above the parent), period tolerance "
                f"{opts.period_days} days, outlier jump ≥ {opts.outlier_threshold:.0%} "
                f"(values ≥ {opts.outlier_min_base:g})")
    generated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title><style>{CSS}</style></head>
<body><main>
<h1>{_e(title)}</h1>
<p class="sub">{len(report.releases)} release(s) · channel(s) {_e(", ".join(report.channels))}
· {counts["findings"]} finding(s) · generated {generated} by atdarchive audit</p>
<div class="cards">{cards}</div>
<p class="sub" style="margin-top:10px">By kind: {_e(kinds)}</p>
<h2>Timeline of releases</h2><div class="panel">{_svg_timeline(report)}</div>
<h2>Revisions of past values per release</h2><div class="panel">{_svg_revisions(report)}</div>
<h2>Releases</h2><div class="panel">{release_table}</div>
<h2>Findings</h2>{findings}
<footer>Thresholds: {_e(settings)}. Each finding names the release (snapshot id) it is
about and, for comparisons, the other release and its publication date; cite ids with
<code>atdarchive show DATASET@ID</code>.</footer>
</main></body></html>
"""


# ---------------------------------------------------------------- Markdown


def _md(text: Any) -> str:
    return markdown(_fmt(text))


def _md_list_table(rows: list[dict[str, Any]]) -> list[str]:
    cols: list[str] = []
    for r in rows:
        cols += [c for c in r if c not in cols]
    out = ["| " + " | ".join(map(markdown, cols)) + " |", "|" + "---|" * len(cols)]
    for r in rows[:MAX_LIST_ROWS]:
        out.append("| " + " | ".join(
            _pct(r.get(c)) if c == "rel_change" else _md(r.get(c)) for c in cols) + " |")
    if len(rows) > MAX_LIST_ROWS:
        out.append(f"\n… and {len(rows) - MAX_LIST_ROWS} more")
    return out


def render_markdown(report: AuditReport) -> str:
    """The report as Markdown (GitHub flavour), for issues and notes."""
    counts = report.counts()
    sev = counts["by_severity"]
    lines = [f"# Forensic audit — {markdown(report.dataset)}", "",
             f"{len(report.releases)} release(s), channel(s) {', '.join(report.channels)}: "
             f"**{sev['alert']} alert(s)**, {sev['warning']} warning(s), {sev['info']} info.", "",
             "## Releases", "",
             "| published | id | channel | period | data as of | cells revised | flags |",
             "|---|---|---|---|---|---|---|"]
    for rel in report.releases:
        flags = ", ".join(checks.label(k) for k in rel.get("flags", [])) or "clean"
        lines.append(f"| {rel['published']} | `{rel['short_id']}` | {rel['channel']} | "
                     f"{_md(rel.get('period'))} | {_md(rel.get('latest_stated'))} | "
                     f"{rel.get('cells_revised', 0):,} | {flags} |")
    lines += ["", "## Findings", ""]
    if not report.findings:
        lines.append("No findings: a clean history.")
    for f in report.findings:
        table = f" — `{f.table}`" if f.table else ""
        lines += [f"### {f.severity.upper()}: {checks.label(f.kind)} · {f.published} · "
                  f"`{f.short_id}`{table}", "", markdown(f.summary), ""]
        for key, value in f.evidence.items():
            if isinstance(value, list) and value and isinstance(value[0], dict):
                lines += [f"- {key.replace('_', ' ')}:", ""]
                lines += _md_list_table(value)
                lines.append("")
            else:
                lines.append(f"- {key.replace('_', ' ')}: {_md(value)}")
        lines.append("")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- text


def render_text(report: AuditReport, width: int = 80, headline: int | None = HEADLINE) -> str:
    """The terminal form: per release its `headline` most significant findings (all when
    None) and a count of the rest."""
    counts = report.counts()
    sev = counts["by_severity"]
    lines = [f"audit of {report.dataset}: {len(report.releases)} release(s), "
             f"{sev['alert']} alert(s), {sev['warning']} warning(s), {sev['info']} info"]
    if not report.releases:
        lines.append("  (no releases yet)")
    by_rel: dict[str, list[Finding]] = {}
    for f in report.findings:
        by_rel.setdefault(f.snapshot, []).append(f)
    for rel in report.releases:
        mine = by_rel.get(rel["id"], [])
        state = "clean" if not mine else f"{len(mine)} finding(s)"
        lines.append("")
        lines.append(f"{rel['published']}  {rel['short_id']}  {rel['channel']}  {state}")
        shown = mine if headline is None else mine[:headline]
        for f in shown:
            lines.extend(_wrap(f"  {f.severity.upper():7} {f.kind}: {f.summary}", width))
        if len(mine) > len(shown):
            rest: dict[str, int] = {}
            for f in mine[len(shown):]:
                rest[f.severity] = rest.get(f.severity, 0) + 1
            counted = ", ".join(f"{n} {s}" for s, n in sorted(
                rest.items(), key=lambda kv: -SEVERITIES.index(kv[0])))
            lines.append(f"  … {len(mine) - len(shown)} more ({counted}); --all shows them")
    return "\n".join(lines) + "\n"


def _wrap(text: str, width: int) -> Iterable[str]:
    import textwrap

    return textwrap.wrap(text, width=width, subsequent_indent=" " * 10,
                         break_long_words=False, break_on_hyphens=False) or [text]


def write_report(report: AuditReport, path: str | Path, fmt: str | None = None) -> Path:
    """Write the report as .html, .md or .json (by `fmt` or the file's suffix)."""
    target = Path(path)
    fmt = (fmt or target.suffix.lstrip(".")).lower()
    if fmt in ("html", "htm"):
        text = render_html(report)
    elif fmt in ("md", "markdown"):
        text = render_markdown(report)
    elif fmt == "json":
        text = json.dumps(report.to_json(), indent=2, ensure_ascii=False, default=str) + "\n"
    else:
        text = render_text(report)
    target.write_text(text, encoding="utf-8")
    return target
