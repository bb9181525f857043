"""Versions of the derived formats, in one place (no imports: anything may ask).

Bump a version whenever what it versions would hold or decide something else; caches
stamped with another version are recomputed, never trusted (`atdarchive.derived`).
"""

#: A cached flags file (`.atdarchive/derived/audit/flags/<id>.json`).
FLAGS_FORMAT = 2
#: The audit's findings and caches (6: a byte-identical older release is recycled).
AUDIT_VERSION = 6
#: The hierarchy derivation (`atdarchive.hierarchy`).
HIERARCHY_VERSION = 1
