"""User-facing errors: one line, naming the file or thing and the problem."""

from __future__ import annotations


class AtdError(Exception):
    """A user error: the CLI prints `error: <message>` and exits non-zero, no traceback."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class IngestError(AtdError):
    """The publication file cannot be read as a table (corrupt, wrong format, ragged...)."""


class RefError(AtdError):
    """A DATASET@REF that does not resolve, or resolves to several snapshots."""


class IntegrityError(AtdError):
    """A hash, ledger chain or pointer does not match what was recorded."""

    exit_code = 3


class LandedButInterrupted(AtdError):
    """Ctrl-C after the commit point: the release is archived; only follow-up work was cut."""

    exit_code = 130
