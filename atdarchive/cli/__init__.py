"""The `atdarchive` command line: a thin layer over `atdarchive.Archive`.

Every command is named once, in `MODULE_COMMANDS` (module -> command -> short
help; `COMMANDS` is the same table by command). The root group lists and
describes commands from that table alone, and imports a command's module only
when that command runs: the module's `register(app)` adds its commands to a
Typer app as before, and only the command asked for is built. So `atdarchive
--help` and `atdarchive log` pay only for what they use.

User errors (`AtdError`, and usage errors such as an unknown command) become one
line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args, get_origin

import typer
import typer.core
import typer.main

from atdarchive.errors import AtdError

# module under atdarchive.cli -> {command: short help}, in the order `--help` lists them.
MODULE_COMMANDS: dict[str, dict[str, str]] = {
    "core": {
        "init": "Make PATH an archive (git and DVC where missing).",
        "dataset": "Create and list datasets.",
        "commit": "Archive a publication as a new immutable snapshot.",
        "fetch": "Download a publication and archive it if its bytes are new.",
        "log": "History in publication order, newest first.",
        "show": "The full record of one snapshot.",
        "tables": "What was extracted from a snapshot, table by table.",
        "export": "Write a table (CSV/Parquet) or the original publication.",
        "tag": "Name a snapshot.",
        "tags": "List tags.",
    },
    "watch": {
        "watch": "One pass over every source: new releases, revisions, withdrawals.",
        "source": "Where a dataset's releases are watched (pages, URLs).",
    },
    "notes": {
        "retract": "Retract a false entry (kept, but out of history views).",
        "annotate": "Attach a note to a snapshot.",
    },
    "keys": {"keys": "The key that identifies each table's rows, release by release."},
    "diff": {"diff": "Row, cell and schema changes between two snapshots."},
    "blame": {
        "blame": "Which release gave each value of a table.",
        "history": "A row (or one cell) in every release.",
        "reindex": "Rebuild the derived blame indexes.",
    },
    "audit": {"audit": "Forensic audit of a dataset's history."},
    "verify": {"verify": "Re-hash every snapshot and check ledger, pointers and git."},
    "remotes": {
        "remote": "Shared storage for snapshot data (DVC remotes).",
        "push": "Upload snapshot data to a remote.",
        "pull": "Download snapshot data and verify every file.",
        "clone": "Clone an archive and pull the asked snapshots.",
    },
    "pinning": {"pin": "Pin a snapshot in a lockfile for reproducible loads."},
    "research": {
        "vintages": "Every value with the interval in which it was the published one.",
        "revisions": "How often, how much and how late values were revised.",
        "sql": "Read-only SQL (DuckDB) over releases, history, vintages, diffs.",
    },
    "citation": {"cite": "Print a citation naming the snapshot id and hashes."},
    "serve": {"serve": "A read-only local web app over the archive."},
    "trust": {"trust": "Settings from the archive that wait for your confirmation."},
}
# command -> (module, short help): the one table the root group reads.
COMMANDS: dict[str, tuple[str, str]] = {
    name: (module, short) for module, names in MODULE_COMMANDS.items()
    for name, short in names.items()
}


@functools.cache
def registered(module: str) -> typer.Typer:
    """A Typer app holding what `atdarchive.cli.MODULE`'s `register(app)` adds."""
    sub = typer.Typer(rich_markup_mode=None, add_completion=False)
    importlib.import_module(f"{__name__}.{module}").register(sub)
    return sub


@functools.cache
def command(name: str) -> Any:
    """The click command (or sub-group) NAME, built from its module alone; None if unknown.

    Only that one command is converted to click (its siblings in the module are
    not), since building a command's parameters is most of its start-up cost.
    """
    entry = COMMANDS.get(name)
    if entry is None:
        return None
    sub, one = registered(entry[0]), typer.Typer(rich_markup_mode=None, add_completion=False)
    one.registered_commands = [info for info in sub.registered_commands
                               if (info.name or typer.main.get_command_name(
                                   info.callback.__name__)) == name]
    one.registered_groups = [info for info in sub.registered_groups if info.name == name]
    return typer.main.get_group(one).commands.get(name)


class LazyGroup(typer.core.TyperGroup):
    """The root group: commands come from `COMMANDS`, each module imported on first use."""

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        return command(cmd_name)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """The command list for `--help`, from the table: no command module is imported."""
        with formatter.section("Commands"):
            formatter.write_dl([(name, short) for name, (_, short) in COMMANDS.items()])

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        try:
            return super().resolve_command(ctx, args)
        except click_exceptions().UsageError as exc:  # suggest a near command name
            if args and "Did you mean" not in exc.message:
                from difflib import get_close_matches

                near = get_close_matches(args[0], list(COMMANDS))
                if near:
                    exc.message = f"{exc.message.rstrip('.')}. Did you mean {near[0]!r}?"
            raise


app = typer.Typer(
    cls=LazyGroup,
    name="atdarchive",
    help="Versioned, tamper-evident archive of government data publications.",
    no_args_is_help=True,
    rich_markup_mode=None,  # plain help: rich's help renderer costs more than the budget
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _global(
    ctx: typer.Context,
    directory: Path = typer.Option(
        None, "-C", metavar="PATH",
        help="Use the archive at PATH (like git -C); init and clone create theirs under "
             "PATH. Other file arguments stay relative to the current directory."),
    version: bool = typer.Option(False, "--version", is_eager=True,
                                 callback=lambda value: _version(value),
                                 help="Print the version and exit."),
) -> None:
    if directory is not None and not directory.is_dir():
        raise AtdError(f"-C {directory}: no such directory")
    ctx.obj = {"directory": directory}


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            print(f"atdarchive {version('atdarchive')}")
        except PackageNotFoundError:
            print("atdarchive (not installed as a package)")
        raise typer.Exit()


@functools.cache
def register_all() -> None:
    """Register every command eagerly into `app`, importing every command module.

    The CLI never does this (it goes through `COMMANDS`); it is for code that
    inspects `app.registered_commands` / `app.registered_groups`.
    """
    for module in MODULE_COMMANDS:
        importlib.import_module(f"{__name__}.{module}").register(app)



@functools.cache
def root() -> Any:
    """The root click group (a `LazyGroup`), built once."""
    return typer.main.get_group(app)


# -- start-up: plain values parsed without pydantic ------------------------------------
_PLAIN = (str, int, float, bool, Path)
_NAMES = {int: "integer", float: "float", bool: "boolean"}
_BOOLS = {"": False, **dict.fromkeys(("1", "true", "t", "yes", "y", "on"), True),
          **dict.fromkeys(("0", "false", "f", "no", "n", "off"), False)}


class _PlainValue:
    """Coerces a str/int/float/bool/Path parameter (or a list of them) as Typer would.

    Typer (0.2x) builds a pydantic `TypeAdapter` for every parameter it parses,
    importing pydantic (more than the whole start-up budget) even for `-C` or
    `--oneline`. These are the only types the CLI uses, so we coerce them here;
    anything else (constraints, parsers, files, enums) still goes to Typer.
    """

    def __init__(self, kind: type, info: Any) -> None:
        self.kind = kind
        self.info = info

    def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
        if value is None:
            return () if param.multiple or param.nargs == -1 else None
        if param.multiple or param.nargs == -1:
            if isinstance(value, str):
                raise typer.BadParameter("Value must be an iterable.", ctx=ctx, param=param)
            return [self.one(item, param, ctx) for item in value]
        return self.one(value, param, ctx)

    def one(self, value: Any, param: Any, ctx: Any) -> Any:
        if isinstance(value, bytes):
            value = os.fsdecode(value)
        if self.kind is str:
            return str(value)
        if self.kind is Path:
            path = value if isinstance(value, Path) else Path(value)
            if self.info.readable and os.path.exists(path) and not os.access(path, os.R_OK):
                raise typer.BadParameter(f"Path {str(value)!r} is not readable.",
                                         ctx=ctx, param=param)
            return path
        if isinstance(value, self.kind) and (self.kind is bool or not isinstance(value, bool)):
            return value
        try:
            if self.kind is bool:
                return _BOOLS[str(value).strip().lower()]
            return self.kind(value)
        except (KeyError, TypeError, ValueError):
            raise typer.BadParameter(f"{value!r} is not a valid {_NAMES[self.kind]}.",
                                     ctx=ctx, param=param) from None


def _plain_kind(descriptor: Any) -> type | None:
    """The plain type a parameter's values have, or None when Typer must handle it."""
    info, annotation = descriptor.parameter_info, descriptor.annotation
    if descriptor.file_annotation is not None or info.parser is not None:
        return None
    if info.min is not None or info.max is not None or info.clamp:
        return None
    if (info.exists or info.resolve_path or info.allow_dash or info.path_type is not None
            or info.writable or not info.file_okay or not info.dir_okay):
        return None
    if get_origin(annotation) is list:
        (annotation,) = get_args(annotation) or (None,)
    return annotation if annotation in _PLAIN else None


@contextlib.contextmanager
def _plain_coercion() -> Iterator[None]:
    """While our CLI parses, plain parameters skip Typer's pydantic adapters."""
    original = getattr(typer.core, "build_runtime_param", None)
    if original is None:  # another Typer: leave its coercion alone (slower start-up)
        yield
        return

    def build(descriptor: Any) -> Any:
        kind = _plain_kind(descriptor)
        if kind is None:
            return original(descriptor)
        return _PlainValue(kind, descriptor.parameter_info)

    typer.core.build_runtime_param = build
    try:
        yield
    finally:
        typer.core.build_runtime_param = original


def click_exceptions() -> Any:
    """The exceptions module of the click that Typer runs on."""
    try:
        from typer._click import exceptions
    except ImportError:  # a Typer from before it vendored click
        from click import exceptions
    return exceptions


def main(argv: list[str] | None = None) -> None:
    """Console entry point; `argv` lets tests run the real CLI in-process."""
    from atdarchive.render.safe import SafeStream

    errors = click_exceptions()
    stdout = sys.stdout
    sys.stdout = SafeStream(stdout)  # data is shown, not obeyed (stderr: `note`, `_fail`)
    try:
        with _plain_coercion():
            code = root().main(args=argv, prog_name="atdarchive", standalone_mode=False)
    except AtdError as exc:
        _fail(str(exc), exc.exit_code)
    except errors.NoArgsIsHelpError as exc:  # bare `atdarchive` or `atdarchive dataset`
        print(exc.format_message(), file=sys.stderr)
        sys.exit(2)
    except errors.ClickException as exc:  # usage: unknown command, missing argument, ...
        where = exc.ctx.command_path if getattr(exc, "ctx", None) else "atdarchive"
        _fail(f"{exc.format_message()} (see '{where} --help')", exc.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        _fail("interrupted", 130)
    except BrokenPipeError:
        sys.exit(141)
    except OSError as exc:  # the machine's fault (full disk, permissions): one line
        where = f"{exc.filename}: " if exc.filename else ""
        _fail(f"{where}{exc.strerror or exc}", 1)
    finally:
        sys.stdout = stdout
        common = sys.modules.get(f"{__name__}.common")  # imported only if a command ran
        if common is not None:
            common.flush_all()
    if code == 130:  # Typer turns Ctrl-C into exit code 130
        _fail("interrupted", 130)
    if isinstance(code, int) and code:
        sys.exit(code)


def _fail(message: str, code: int) -> None:
    from atdarchive.render.safe import controls

    print(f"error: {controls(message, newlines=False)}", file=sys.stderr)
    sys.exit(code)
