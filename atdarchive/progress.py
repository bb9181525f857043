"""One progress protocol for long work: `progress(label, done, total)`.

Library functions call it after each unit of work; the CLI turns it into a
rich progress bar on stderr (`atdarchive.cli.common.progress_bar`).
"""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[str, int, int], None]
