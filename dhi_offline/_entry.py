"""The console script's first module: it imports nothing heavy, so a Ctrl-C during the
imports of the CLI (typer, rich, cryptography: about 0.3 s) is caught here and reported
like one at any other moment, with no traceback."""

from __future__ import annotations

import sys


def run() -> None:
    """Console-script entry point: ``dhi-offline``."""
    try:
        from dhi_offline.cli.main import run as cli_run  # noqa: PLC0415 - see docstring
    except KeyboardInterrupt:
        print("dhi-offline: interrupted", file=sys.stderr)
        sys.exit(130)
    cli_run()
