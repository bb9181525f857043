"""The audit's checks, one registry: kind, label, default severity and the check itself.

A check is a function `run(release) -> list[Finding]` registered with `@register(kind,
label, severity, order)`; a new check is one file in this package (every module here
is imported by `load()`), and the HTML, Markdown and text reports take their labels
from the same entry (`label(kind)`). The audit's older checks register themselves the
same way from `atdarchive.audit`. `release` is a `checks.base.Release`: the entry, its
parent, the cached diff against the parent and the auditor's caches.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Check:
    kind: str
    label: str
    severity: str  # the default; a check may raise or lower it per finding
    order: int  # run order (a check may read what an earlier one noted on the release)
    run: Callable[[Any], list[Any]] | None  # None: raised elsewhere (channel comparison)
    doc: str = ""


CHECKS: dict[str, Check] = {}
_LOADED = False


def register(kind: str, label: str, severity: str, order: int = 100,
             ) -> Callable[[Callable[[Any], list[Any]]], Callable[[Any], list[Any]]]:
    """Decorator: add `run` to the registry under `kind`."""
    def add(run: Callable[[Any], list[Any]]) -> Callable[[Any], list[Any]]:
        CHECKS[kind] = Check(kind, label, severity, order, run, (run.__doc__ or "").strip())
        return run
    return add


def declare(kind: str, label: str, severity: str, order: int = 100) -> None:
    """A kind raised outside the per-release loop (its label and severity only)."""
    CHECKS[kind] = Check(kind, label, severity, order, None)


def load() -> dict[str, Check]:
    """Every check: this package's modules and the audit's own, imported once."""
    global _LOADED
    if not _LOADED:
        _LOADED = True
        for module in pkgutil.iter_modules(__path__):
            if module.name != "base":
                importlib.import_module(f"{__name__}.{module.name}")
        importlib.import_module("atdarchive.audit")
    return CHECKS


def kinds() -> list[str]:
    """Kinds in run order."""
    return [c.kind for c in sorted(load().values(), key=lambda c: (c.order, c.kind))]


def label(kind: str) -> str:
    check = load().get(kind)
    return check.label if check else kind.replace("_", " ")
