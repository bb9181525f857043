"""atdarchive: a versioned, tamper-evident archive of government data publications."""

from atdarchive.archive import Archive, CommitResult
from atdarchive.errors import AtdError, IngestError, IntegrityError, RefError
from atdarchive.pinning import load
from atdarchive.snapshot import Snapshot

__all__ = ["Archive", "AtdError", "CommitResult", "IngestError", "IntegrityError",
           "RefError", "Snapshot", "load"]
__version__ = "0.1.0"
