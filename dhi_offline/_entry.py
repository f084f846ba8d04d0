"""The console script's first module: it imports nothing heavy, so a Ctrl-C during the
imports of the CLI (typer, rich, cryptography: about 0.3 s) is caught here and reported
like one at any other moment, with no traceback.

The first SIGINT becomes a ``KeyboardInterrupt``: the CLI's cleanups run (work
directory, temporary files, the archive lock), it says "interrupted" and the status is
130. Later SIGINTs are ignored. The process ends through ``os._exit`` once the streams
are flushed: the interpreter's own shutdown puts the default SIGINT action back, and a
Ctrl-C in that last moment would otherwise kill the process silently (status -2).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from types import FrameType

EXIT_INTERRUPTED = 130
EXIT_PIPE = 141


def _first_interrupt(signum: int, frame: FrameType | None) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


def run() -> None:
    """Console-script entry point: ``dhi-offline``."""
    signal.signal(signal.SIGINT, _first_interrupt)
    try:
        if sys.argv[1:] == ["--version"]:
            # Answered before typer is imported (0.4 s less); the line the CLI prints.
            from dhi_offline import __version__  # noqa: PLC0415 - nothing heavy

            print(f"dhi-offline {__version__}")
            code = 0
        else:
            from dhi_offline.cli.main import main  # noqa: PLC0415 - see docstring

            code = main()
        sys.stdout.flush()
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
        with contextlib.suppress(Exception):
            print("dhi-offline: interrupted", file=sys.stderr)
    except BrokenPipeError:
        code = EXIT_PIPE
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)
