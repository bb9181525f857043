"""Text that came from a publication or an archive is shown, never obeyed.

Cell values, titles, notes and messages can hold terminal escape sequences
(clear the screen, write the clipboard) or HTML (`<script>`). Terminal and
plain-text output shows control characters escaped (`\\x1b`); Markdown output
escapes HTML and the characters that would break a table.
"""

from __future__ import annotations

import io
import re
from typing import Any, TextIO

# C0 controls but tab and newline, DEL, C1 controls, and Unicode's bidirectional overrides
# (which reorder what a reader sees: "Trojan Source").
CONTROL_RE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
CONTROL_OR_NEWLINE_RE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# HTML, table breaks, code spans and links; emphasis (`*`, `_`) is harmless and stays.
MARKDOWN_SPECIAL = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "|": "\\|", "`": "\\`",
                    "[": "\\[", "]": "\\]", "\\": "\\\\"}


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code == 0x0A:
        return "\\n"
    if code == 0x0D:
        return "\\r"
    if code == 0x09:
        return "\\t"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def controls(text: str, *, newlines: bool = True) -> str:
    """TEXT with control characters shown escaped; `newlines=False` escapes them too."""
    pattern = CONTROL_RE if newlines else CONTROL_OR_NEWLINE_RE
    return pattern.sub(_escape, text)


def cell(value: Any) -> str:
    """One value on one line: every control character, newlines included, escaped."""
    return controls("" if value is None else str(value), newlines=False)


def markdown(value: Any) -> str:
    """A value inside Markdown (a table cell, a line): no HTML, no table breaks."""
    text = cell(value)
    return "".join(MARKDOWN_SPECIAL.get(ch, ch) for ch in text)


def json_text(text: str) -> str:
    """JSON text with C1 controls and bidi overrides as \\u escapes (json leaves them raw)."""
    return re.sub("[\x7f-\x9f\u202a-\u202e\u2066-\u2069]",
                  lambda m: f"\\u{ord(m.group()):04x}", text)


class SafeStream(io.TextIOBase):
    """A text stream that escapes control characters before they reach a terminal.

    Wraps stdout for every command: data and messages print as text, never as
    terminal commands. Tab and newline pass; `\\r` is escaped (it can overwrite
    what a line said).
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    @property
    def raw(self) -> TextIO:
        """The terminal itself, for writers that escape data themselves (colour codes)."""
        return self._stream

    def write(self, text: str) -> int:
        self._stream.write(controls(text))
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return not getattr(self._stream, "closed", False) and self._stream.isatty()

    @property
    def closed(self) -> bool:  # type: ignore[override]
        return bool(getattr(self._stream, "closed", False))

    def fileno(self) -> int:
        return self._stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._stream, "encoding", "utf-8")

    def writable(self) -> bool:
        return True
