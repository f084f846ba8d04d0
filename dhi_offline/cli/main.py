"""Entry point: the typer application, and the one place errors become exit codes.

Exit codes: 0 verified; 1 verification or policy failed; 2 usage or unreadable input.
A failure prints one line on stderr naming the step that failed; ``--verbose`` adds the
traceback.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Sequence
from typing import Annotated

import typer

from dhi_offline import __version__
from dhi_offline.cli import archive as archive_cmd
from dhi_offline.cli import attest as attest_cmd
from dhi_offline.cli import demo as demo_cmd
from dhi_offline.cli import export as export_cmd
from dhi_offline.cli import sigstore as sigstore_cmd
from dhi_offline.cli import trust as trust_cmd
from dhi_offline.cli import verify as verify_cmd
from dhi_offline.errors import DhiError

app = typer.Typer(
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
app.command("export")(export_cmd.export)
app.command("verify")(verify_cmd.verify)
app.command("import")(verify_cmd.import_)
app.command("inspect")(verify_cmd.inspect)
app.add_typer(attest_cmd.app, name="attest")
app.add_typer(trust_cmd.app, name="trust")
app.add_typer(archive_cmd.app, name="archive")
app.add_typer(export_cmd.keys_app, name="keys")
app.add_typer(sigstore_cmd.app, name="sigstore")
app.command("demo")(demo_cmd.demo)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"dhi-offline {__version__}")
        raise typer.Exit(0)


@app.callback()
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
        app(args=args, prog_name="dhi-offline")
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
