"""HtmlTarget (cli/output.py): a report file is written whole or not at all, and its
temporary file never outlives the command, whenever a Ctrl-C arrives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dhi_offline.cli.output import HtmlTarget
from dhi_offline.errors import InputError


def _leftovers(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir())


def test_written_whole_and_no_temporary_file_remains(tmp_path: Path) -> None:
    with HtmlTarget.prepare(tmp_path / "r.html") as target:
        assert len(_leftovers(tmp_path)) == 1  # the temporary file, opened up front
        target.write("<html></html>")
    assert _leftovers(tmp_path) == ["r.html"]
    assert (tmp_path / "r.html").read_text() == "<html></html>"


def test_an_interrupt_right_after_the_file_is_created_removes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Regression: with mkstemp, a Ctrl-C between the file's creation and the moment its
    # name was remembered left `.r.html.*.tmp` behind (tests/cli/test_operator_cli.py,
    # Ctrl-C at 0.2 s, once start-up got faster).
    real_close = os.close

    def close_then_interrupt(fd: int) -> None:
        real_close(fd)
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "close", close_then_interrupt)  # the module output.py uses
    with pytest.raises(KeyboardInterrupt), HtmlTarget.prepare(tmp_path / "r.html"):
        pass  # pragma: no cover - never reached
    assert _leftovers(tmp_path) == []


def test_an_interrupt_before_writing_removes_the_temporary_file(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt), HtmlTarget.prepare(tmp_path / "r.html"):
        raise KeyboardInterrupt
    assert _leftovers(tmp_path) == []


def test_a_directory_that_cannot_be_written_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "r.html"
    with (
        pytest.raises(InputError, match="cannot write the HTML report"),
        HtmlTarget.prepare(missing),
    ):
        pass  # pragma: no cover - never reached
    assert _leftovers(tmp_path) == []


def test_no_path_writes_nothing(tmp_path: Path) -> None:
    with HtmlTarget.prepare(None) as target:
        assert not target.wanted
        target.write("ignored")
    assert _leftovers(tmp_path) == []
