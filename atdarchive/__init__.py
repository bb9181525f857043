"""atdarchive: a versioned, tamper-evident archive of government data publications.

The public names are loaded on first use (PEP 562), so `import atdarchive.cli`
or `import atdarchive.errors` does not pull in the whole package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from atdarchive.archive import Archive, CommitResult
    from atdarchive.errors import AtdError, IngestError, IntegrityError, RefError
    from atdarchive.pinning import load
    from atdarchive.snapshot import Snapshot

# public name -> the module that defines it
_EXPORTS = {
    "Archive": "atdarchive.archive",
    "CommitResult": "atdarchive.archive",
    "AtdError": "atdarchive.errors",
    "IngestError": "atdarchive.errors",
    "IntegrityError": "atdarchive.errors",
    "RefError": "atdarchive.errors",
    "load": "atdarchive.pinning",
    "Snapshot": "atdarchive.snapshot",
}

__all__ = ["Archive", "AtdError", "CommitResult", "IngestError", "IntegrityError",
           "RefError", "Snapshot", "load"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'atdarchive' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
