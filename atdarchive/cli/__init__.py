"""The `atdarchive` command line: a thin layer over `atdarchive.Archive`.

Each feature registers its commands from its own module; user errors
(`AtdError`) become one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from atdarchive.errors import AtdError

app = typer.Typer(
    name="atdarchive",
    help="Versioned, tamper-evident archive of government data publications.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _global(
    ctx: typer.Context,
    directory: Path = typer.Option(
        None, "-C", help="Run as if started in this directory (like git -C)."
    ),
) -> None:
    ctx.obj = {"directory": directory}


_registered = False


def _register() -> None:
    global _registered
    if _registered:
        return
    from atdarchive.cli import audit, blame, core, diff, integrity, remotes

    for module in (core, diff, blame, audit, integrity, remotes):
        module.register(app)
    _registered = True


def main(argv: list[str] | None = None) -> None:
    """Console entry point; `argv` lets tests run the real CLI in-process."""
    _register()
    try:
        app(args=argv, prog_name="atdarchive")
    except AtdError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(141)
