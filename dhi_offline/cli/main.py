"""Entry point: the typer application, and the one place errors become exit codes.

Exit codes: 0 verified; 1 verification or policy failed; 2 usage or unreadable input;
130 interrupted (Ctrl-C); 141 standard output closed early (``| head``). A failure
prints one line on stderr naming the step that failed; ``--verbose`` adds the traceback.

Global options (``--verbose``, ``--color``, ``--config DIR``, ``--system``) may be
given before or after the subcommand: they are taken out of the arguments here.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import traceback
from collections.abc import Sequence
from typing import Annotated, Any

import typer

from dhi_offline import __version__
from dhi_offline.cli import coercion, helpstyle, state
from dhi_offline.cli.catalog import COMMANDS, SUMMARIES
from dhi_offline.cli.console import set_color
from dhi_offline.errors import DhiError, UsageError


def build_app(only: str | None = None, *, summaries: bool = False) -> typer.Typer:
    """The typer application with every command, or with the command ``only``.

    With ``summaries``, every command is a stand-in carrying its one-line help from
    :mod:`dhi_offline.cli.catalog`: enough for the top-level help and usage errors, with
    none of the command modules imported (only the command run is ever imported).
    """
    helpstyle.install()
    coercion.install()
    application = typer.Typer(
        name="dhi-offline",
        help=(
            "Verify Docker Hardened Images and their signed attestations with no network: "
            "export evidence on a connected machine, verify it on an air-gapped host."
        ),
        no_args_is_help=True,
        add_completion=False,
        rich_markup_mode=None,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    application.callback()(_root)
    for name, (module, attribute, is_group) in COMMANDS.items():
        if only is not None and name != only:
            continue
        if summaries:
            if is_group:
                application.add_typer(typer.Typer(help=SUMMARIES[name]), name=name)
            else:
                application.command(name, help=SUMMARIES[name])(_stand_in)
            continue
        target = getattr(importlib.import_module(f"dhi_offline.cli.{module}"), attribute)
        if is_group:
            application.add_typer(target, name=name)
        else:
            application.command(name)(target)
    return application


def _stand_in() -> None:
    # Never run: main() builds the real command whenever one is named.
    raise UsageError("this command is not loaded")


def __getattr__(name: str) -> Any:
    # ``app`` (every command) is built on first use, for callers that want the object.
    if name == "app":
        return build_app()
    raise AttributeError(name)


def _command_of(args: list[str]) -> str | None:
    """The subcommand ``args`` run, when it is a known one."""
    for arg in args:
        if arg.startswith("-"):
            continue
        return arg if arg in COMMANDS else None
    return None


GLOBAL_FLAGS = ("--verbose", "-v", "--system")
GLOBAL_VALUES = ("--color", "--config")


def split_globals(args: list[str]) -> tuple[dict[str, str | bool], list[str]]:
    """The global options wherever they are (up to a ``--``), and the other arguments.

    Raises:
        UsageError: a global option that takes a value has none, or a bad ``--color``.
    """
    found: dict[str, str | bool] = {}
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest += args[i:]
            break
        name, eq, value = arg.partition("=")
        if arg in GLOBAL_FLAGS:
            found["verbose" if arg in ("--verbose", "-v") else "system"] = True
        elif name in GLOBAL_VALUES:
            if not eq:
                if i + 1 >= len(args):
                    raise UsageError(f"{name} needs a value")
                i += 1
                value = args[i]
            found[name[2:]] = value
        else:
            rest.append(arg)
        i += 1
    color = found.get("color", "auto")
    if color not in ("auto", "always", "never"):
        raise UsageError(f"--color must be auto, always or never, not {color!r}")
    return found, rest


def _version(value: bool) -> None:
    if value:
        typer.echo(f"dhi-offline {__version__}")
        raise typer.Exit(0)


def _root(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show tracebacks for errors (for bug reports).")
    ] = False,
    color: Annotated[
        str,
        typer.Option(
            "--color", metavar="auto|always|never", help="Colour on a terminal (NO_COLOR too)."
        ),
    ] = "auto",
    config: Annotated[
        str | None,
        typer.Option(
            "--config",
            metavar="DIR",
            help="Trust store directory for every command (DHI_OFFLINE_CONFIG_DIR).",
        ),
    ] = None,
    system: Annotated[
        bool,
        typer.Option(
            "--system",
            help="Use the host-wide trust store and evidence archive (/etc/dhi-offline, "
            "/var/lib/dhi-offline; DHI_OFFLINE_SYSTEM=1).",
        ),
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Global options."""


def _stdout_closed() -> int:
    # Later writes (and the interpreter's final flush) must not fail again.
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return EXIT_PIPE


EXIT_INTERRUPTED = 130
EXIT_PIPE = 141


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` and return the exit code (never raises)."""
    raw = list(sys.argv[1:] if argv is None else argv)
    verbose = "--verbose" in raw or "-v" in raw
    try:
        found, args = split_globals(raw)
        state.configure(
            config=found.get("config"),  # type: ignore[arg-type]
            system=bool(found.get("system")),
        )
        set_color(str(found.get("color", "auto")))
        if verbose:
            args = ["--verbose", *args]
        # Standalone mode: typer reports its own usage errors (exit 2) and ends with
        # SystemExit; our errors propagate to here.
        streams = (sys.stdout, sys.stderr)
        try:
            command = _command_of(args)
            application = build_app(command) if command else build_app(summaries=True)
            application(args=args, prog_name="dhi-offline")
        except SystemExit:
            # Typer answers a closed stdout (EPIPE) by wrapping the streams and exiting 1,
            # which reads as "verification failed": it is a closed pipe (141).
            if type(sys.stdout).__name__ == "PacifyFlushWrapper":
                sys.stdout, sys.stderr = streams
                return _stdout_closed()
            raise
    except SystemExit as e:
        if e.code == EXIT_INTERRUPTED:
            # Typer turns Ctrl-C into a silent exit 130: say what happened.
            print("dhi-offline: interrupted", file=sys.stderr)
        if e.code is None:
            return 0
        return e.code if isinstance(e.code, int) else 2
    except DhiError as e:
        if verbose:
            traceback.print_exc()
        kind = "verification failed" if e.exit_code == 1 else "error"
        print(f"dhi-offline: {kind}: {e.one_line()}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("dhi-offline: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return _stdout_closed()
    except OSError as e:
        if verbose:
            traceback.print_exc()
        where = f"{e.filename}: " if e.filename else ""
        print(f"dhi-offline: error: {where}{e.strerror or e}", file=sys.stderr)
        return 2
    except Exception as e:
        if verbose:
            traceback.print_exc()
        print(
            f"dhi-offline: internal error: {type(e).__name__}: {e} "
            "(run with --verbose for details)",
            file=sys.stderr,
        )
        return 2
    finally:
        state.configure(config=None, system=False)
        set_color("auto")
    return 0
