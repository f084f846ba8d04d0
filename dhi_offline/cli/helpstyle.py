"""Help text the way operators read it in other tools: ``--flag`` without a value
placeholder, ``--key PATH`` in upper case, choices as ``text|json``, required
arguments without braces, and wraps that never split a word or a hyphenated name.

Typer 0.29 renders ``<bool>``, ``<list[Path]>`` and ``{bundle}`` and lets its vendored
click wrapper cut words; these three adjustments of its private help helpers are the
smallest change that fixes that, checked by ``tests/cli/test_help.py`` at 80 columns.
"""

from __future__ import annotations

import textwrap
from typing import Any

import typer.core
from typer._click import _textwrap

_NAMES = {"str": "TEXT", "int": "INTEGER", "float": "NUMBER", "path": "PATH", "file": "PATH"}


def _display_type(self: Any, ctx: Any) -> str:
    desc = self.type_descriptor
    if desc.is_choice:
        return "|".join(str(getattr(c, "value", c)) for c in desc.choices or ())
    label = str(original_display_type(self, ctx)).strip("<>")
    if label.startswith("list[") and label.endswith("]"):
        label = label[5:-1]
    return _NAMES.get(label.lower(), label.upper())


def _usage_display_name(self: Any) -> str:
    name = str(self.display_name_raw)
    if not self.required:
        name = f"[{name}]"
    return name + ("..." if self.nargs != 1 else "")


class _WholeWords(_textwrap.TextWrapper):
    """Wrap at spaces only: hyphenated names and long words stay whole."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["break_on_hyphens"] = False
        kwargs["break_long_words"] = False
        super().__init__(*args, **kwargs)

    def _handle_long_word(
        self, reversed_chunks: list[str], cur_line: list[str], cur_len: int, width: int
    ) -> None:
        textwrap.TextWrapper._handle_long_word(self, reversed_chunks, cur_line, cur_len, width)


original_display_type = typer.core._TyperParameter.display_type


def install() -> None:
    """Apply the help style (idempotent)."""
    typer.core._TyperParameter.display_type = _display_type  # type: ignore[method-assign]
    typer.core.TyperArgument._usage_display_name = _usage_display_name  # type: ignore[method-assign]
    _textwrap.TextWrapper = _WholeWords  # type: ignore[misc]
