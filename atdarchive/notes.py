"""Retractions and annotations: what the archivist says about a release after the fact.

The ledger is forever, so a false entry (a wrong date, the wrong file) is not
deleted: it is retracted. The snapshot keeps its bytes and record — a ref by id
still resolves and a pin still loads, with a warning — but it leaves the history
views (`latest`, dates, parents, diff, blame, audit). An annotation adds a note;
one that carries the agency's own notice of a revision makes the audit count that
release's revisions as announced.
"""

from __future__ import annotations

from typing import Any

from atdarchive.context import ArchiveContext
from atdarchive.errors import AtdError
from atdarchive.events import MAX_TEXT
from atdarchive.history import split_ref
from atdarchive.snapshot import Snapshot
from atdarchive.util import utc_now


def _text(value: str, option: str) -> str:
    value = (value or "").strip()
    if not value:
        raise AtdError(f"{option} is required and may not be empty")
    if len(value) > MAX_TEXT:
        raise AtdError(f"{option}: {len(value)} characters; at most {MAX_TEXT}")
    return value


def retract(ctx: ArchiveContext, ref: str, reason: str, *,
            archivist: str | None = None) -> Snapshot:
    """Record that DATASET@REF is a false entry; the release leaves the history views."""
    reason = _text(reason, "--reason")
    dataset, name = split_ref(ref)
    snapshot = ctx.snapshot_of(ctx.history(dataset).resolve(name).record)
    with ctx.write_lock():
        history = ctx.history(snapshot.dataset)
        if (done := history.retracted(snapshot.id)) is not None:
            raise AtdError(f"{snapshot.ref} was already retracted {done['at'][:10]}: "
                           f"{done['reason']}")
        series = history.channel(snapshot.channel)
        after = [e for e in series if e.order_key() > history.by_id[snapshot.id].order_key()]
        event = {"type": "retract", "snapshot": snapshot.id, "reason": reason,
                 "at": utc_now(), "archivist": archivist or ctx.default_archivist()}
        ctx.record_events(snapshot.dataset, [event],
                          f"{snapshot.dataset}: retract {snapshot.short_id} "
                          f"(published {snapshot.published})", body=reason)
    if after:  # the next release now follows another parent: its flags change
        _reflag(ctx, ctx.snapshot_of(after[0].record))
    return snapshot


def annotate(ctx: ArchiveContext, ref: str, note: str, *, announces_revision: bool = False,
             archivist: str | None = None) -> dict[str, Any]:
    """Attach a note to DATASET@REF (e.g. the agency's notice of a revision)."""
    note = _text(note, "--note")
    snapshot = ctx.snapshot(ref)
    event = {"type": "annotate", "snapshot": snapshot.id, "note": note, "at": utc_now(),
             "archivist": archivist or ctx.default_archivist(),
             "announces_revision": bool(announces_revision)}
    with ctx.write_lock():
        ctx.record_events(snapshot.dataset, [event],
                          f"{snapshot.dataset}: annotate {snapshot.short_id}", body=note)
    if announces_revision and ctx.history(snapshot.dataset).retracted(snapshot.id) is None:
        _reflag(ctx, snapshot)
    return event


def _reflag(ctx: ArchiveContext, snapshot: Snapshot) -> None:
    """Refresh the audit flags `log` shows for one release (derived state)."""
    from atdarchive.audit import findings_for_snapshot, flag_summary
    from atdarchive.derived import save_flags

    try:
        save_flags(ctx, snapshot.id, flag_summary(findings_for_snapshot(ctx, snapshot)))
    except (OSError, AtdError) as exc:
        ctx.notices.append(f"audit flags not refreshed ({exc}); 'atdarchive audit' makes them")
