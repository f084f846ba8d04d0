"""Entry point: the typer application, and the one place errors become exit codes.

Exit codes: 0 verified; 1 verification or policy failed; 2 usage or unreadable input.
A failure prints one line on stderr naming the step that failed; ``--verbose`` adds the
traceback.
"""

from __future__ import annotations

import importlib
import sys
import traceback
from collections.abc import Sequence
from typing import Annotated, Any

import typer

from dhi_offline import __version__
from dhi_offline.errors import DhiError

# name -> (module under dhi_offline.cli, attribute, a command function or a sub-app), in
# the order --help lists them. Only the module of the command being run is imported: a
# `verify` need not load the exporter's HTTP client (half the start-up time).
COMMANDS: dict[str, tuple[str, str, bool]] = {
    "export": ("export", "export", False),
    "verify": ("verify", "verify", False),
    "import": ("verify", "import_", False),
    "inspect": ("verify", "inspect", False),
    "attest": ("attest", "app", True),
    "trust": ("trust", "app", True),
    "archive": ("archive", "app", True),
    "keys": ("export", "keys_app", True),
    "sigstore": ("sigstore", "app", True),
    "demo": ("demo", "demo", False),
}


def build_app(only: str | None = None) -> typer.Typer:
    """The typer application with every command, or with the command ``only``."""
    application = typer.Typer(
        name="dhi-offline",
        help=(
            "Verify Docker Hardened Images and their signed attestations with no network: "
            "export evidence on a connected machine, verify it on an air-gapped host."
        ),
        no_args_is_help=True,
        add_completion=False,
        rich_markup_mode="rich",
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    application.callback()(_root)
    for name, (module, attribute, is_group) in COMMANDS.items():
        if only is not None and name != only:
            continue
        target = getattr(importlib.import_module(f"dhi_offline.cli.{module}"), attribute)
        if is_group:
            application.add_typer(target, name=name)
        else:
            application.command(name)(target)
    return application


def __getattr__(name: str) -> Any:
    # ``app`` (every command) is built on first use, for callers that want the object.
    if name == "app":
        return build_app()
    raise AttributeError(name)


def _command_of(args: list[str]) -> str | None:
    """The subcommand ``args`` run, when it is a known one (global options first)."""
    for arg in args:
        if arg in ("--verbose", "-v"):
            continue
        return arg if arg in COMMANDS else None
    return None


def _version(value: bool) -> None:
    if value:
        typer.echo(f"dhi-offline {__version__}")
        raise typer.Exit(0)


def _root(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show tracebacks for errors (for bug reports).")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Global options."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` and return the exit code (never raises)."""
    args = list(sys.argv[1:] if argv is None else argv)
    verbose = "--verbose" in args or "-v" in args
    try:
        # Standalone mode: typer reports its own usage errors (exit 2) and ends with
        # SystemExit; our errors propagate to here.
        build_app(_command_of(args))(args=args, prog_name="dhi-offline")
    except SystemExit as e:
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
    return 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
