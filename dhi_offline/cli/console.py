"""Where the text output goes: a terminal gets rich's layout and colour; a file or a pipe
gets whole lines (no wrapping, no padding at line ends, no colour), so a digest or a URI
is never split and ``grep``/``diff`` see what was printed."""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from rich.console import Console

ColorMode = Literal["auto", "always", "never"]
_settings: dict[str, str] = {"color": "auto"}
PIPE_WIDTH = 100_000
"""Columns a non-terminal is given: wide enough that nothing wraps."""


def set_color(mode: str) -> None:
    """``--color auto|always|never`` (``auto`` honours ``NO_COLOR`` and the terminal)."""
    _settings["color"] = mode


def _color(tty: bool) -> bool:
    mode = _settings["color"]
    if mode == "always":
        return True
    if mode == "never" or os.environ.get("NO_COLOR"):
        return False
    return tty


def emit_rich(render: Callable[[Console], None]) -> None:
    """Run ``render`` on a console fit for standard output, and write what it printed."""
    # rich is imported when text is printed, not by every command's start-up.
    from rich.console import Console  # noqa: PLC0415

    tty = sys.stdout.isatty()
    color = _color(tty)
    if tty:
        render(Console(no_color=not color, force_terminal=color or None, highlight=False))
        return
    buf = io.StringIO()
    console = Console(
        file=buf,
        width=PIPE_WIDTH,
        color_system="standard" if color else None,
        force_terminal=color,
        no_color=not color,
        highlight=False,
        soft_wrap=False,
    )
    render(console)
    text = "\n".join(line.rstrip() for line in buf.getvalue().splitlines())
    sys.stdout.write(text + "\n" if text else "")
    sys.stdout.flush()
