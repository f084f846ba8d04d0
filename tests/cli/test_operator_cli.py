"""The CLI as operators script it: output to files and pipes, global options anywhere,
signals, closed pipes, help at 80 columns, idempotent trust provisioning."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pytest

from dhi_offline.cli.main import COMMANDS, build_app, main, split_globals
from dhi_offline.errors import UsageError
from tests.support.sample import export_argv, make_sample_site, trust_argv
from tests.support.sample import run_cli as run

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = make_sample_site(tmp_path, monkeypatch)
    code, _, err = run(export_argv(d, "good.dhi.tar.zst"))
    assert code == 0, err
    return d


def cli(
    argv: list[str], *, stdout: Any = subprocess.PIPE, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "dhi_offline", *argv],
        stdout=stdout,
        stderr=subprocess.PIPE,
        cwd=REPO,
        env={**os.environ, **(env or {})},
    )


# -- 1. output for pipes and files -------------------------------------------------------


def test_report_to_a_file_keeps_digests_and_uris_whole(site: Path) -> None:
    out = site / "audit.txt"
    with out.open("wb") as f:
        proc = cli(["verify", str(site / "good.dhi.tar.zst"), *trust_argv(site)], stdout=f)
        assert proc.wait(timeout=120) == 0
    text = out.read_text()
    lines = text.splitlines()
    assert not [ln for ln in lines if ln != ln.rstrip()], "a line ends in spaces"
    assert "\x1b[" not in text
    digest = json.loads(
        subprocess.run(
            [
                sys.executable,
                "-m",
                "dhi_offline",
                "inspect",
                str(site / "good.dhi.tar.zst"),
                "--format",
                "json",
            ],
            capture_output=True,
            cwd=REPO,
            check=True,
        ).stdout
    )["exporterKeyId"]
    assert any(digest in ln for ln in lines)
    for uri in ("https://cyclonedx.org/bom/v1.6", "https://scout.docker.com/tests/v0.1"):
        assert any(uri in ln for ln in lines), uri
    assert max(len(ln) for ln in lines) < 400


def test_ctrf_departures_of_docker_format_are_notes_once(site: Path) -> None:
    code, out, _ = run(["verify", str(site / "good.dhi.tar.zst"), *trust_argv(site)])
    assert code == 0
    assert "warning CTRF" not in out
    assert out.count("CTRF: no specVersion") == 1
    code, out, _ = run(
        ["verify", str(site / "good.dhi.tar.zst"), *trust_argv(site), "--format", "json"]
    )
    doc = json.loads(out)
    assert "CTRF: no specVersion" in doc["notes"]
    assert not [w for w in doc["warnings"] if "CTRF" in w]


# -- 3. global options anywhere ------------------------------------------------------------


def test_global_options_are_taken_from_anywhere() -> None:
    found, rest = split_globals(["verify", "b", "--verbose", "--config=/c", "--color", "never"])
    assert found == {"verbose": True, "config": "/c", "color": "never"}
    assert rest == ["verify", "b"]
    found, rest = split_globals(["verify", "--", "--verbose"])
    assert found == {} and rest == ["verify", "--", "--verbose"]
    with pytest.raises(UsageError):
        split_globals(["verify", "--color", "sometimes"])


def test_verbose_after_the_subcommand(tmp_path: Path) -> None:
    code, _, err = run(["verify", str(tmp_path / "missing.dhi.tar.zst"), "--verbose"])
    assert code == 2 and "No such option" not in err
    code, _, err = run(
        ["verify", str(tmp_path / "missing.dhi.tar.zst"), "--trust-exporter", "x", "-v"]
    )
    assert "Traceback" in err


def test_config_is_honoured_by_verify_import_and_attest(site: Path) -> None:
    config = site / "elsewhere"
    pub = str(site / "exporter.pub")
    assert run(["trust", "add", pub, "--role", "exporter", "--config", str(config)])[0] == 0
    publisher = str(site / "publisher.pub")
    assert run(["trust", "add", publisher, "--role", "publisher", "--config", str(config)])[0] == 0
    bundle = str(site / "good.dhi.tar.zst")
    # Without --config nothing is pinned: refused with the hint to pin a key.
    code, _, err = run(["verify", bundle])
    assert code == 2 and "no exporter key is trusted" in err
    assert run(["verify", bundle, "--config", str(config)])[0] == 0
    assert run(["--config", str(config), "import", bundle, "--archive", str(site / "a")])[0] == 0
    image = json.loads(run(["inspect", bundle, "--format", "json"])[1])["images"][0]["digest"]
    code, _, err = run(["attest", "list", bundle, image, "--format", "json"])
    assert code == 2 and "no exporter key is trusted" in err
    code, out, err = run(
        ["attest", "list", bundle, image, "--config", str(config), "--format", "json"]
    )
    assert code == 0 and len(json.loads(out)) == 10, err
    code, out, err = run(["doctor", "--config", str(config), "--format", "json"])
    assert code == 0, err
    assert json.loads(out)["trustStore"] == {"path": str(config), "why": "--config"}


# -- 4. signals and pipes -------------------------------------------------------------------


# From the first module of ours (dhi_offline/_entry.py) on; a SIGINT in the ~30 ms before
# the interpreter has loaded it is Python's own start-up, not the tool's.
@pytest.mark.parametrize("delay", [0.1, 0.2, 0.3, 0.45, 0.6])
def test_ctrl_c_at_any_moment_is_one_line_and_exit_130(
    site: Path, tmp_path: Path, delay: float
) -> None:
    """SIGINT during interpreter start-up, imports, or the verification itself."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    proc = cli(
        [
            "import",
            str(site / "good.dhi.tar.zst"),
            *trust_argv(site),
            *("--archive", str(site / "a"), "--html", str(site / "r.html")),
        ],
        env={"TMPDIR": str(tmp)},
    )
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    code = proc.wait(timeout=60)
    err = proc.stderr.read().decode() if proc.stderr else ""
    assert code in (0, 130), err
    if code == 130:
        assert err.strip() == "dhi-offline: interrupted", err
    assert list(tmp.iterdir()) == []  # no work directory left behind
    assert not list(site.glob(".r.html.*"))  # no half-written report
    if (site / "a" / "log.jsonl").exists():
        assert run(["archive", "verify", "--archive", str(site / "a")])[0] == 0


def test_closed_pipe_is_quiet_exit_141(site: Path) -> None:
    reader, writer = os.pipe()
    os.close(reader)  # nobody reads: the first write fails with EPIPE
    try:
        proc = cli(["verify", str(site / "good.dhi.tar.zst"), *trust_argv(site)], stdout=writer)
    finally:
        os.close(writer)
    assert proc.wait(timeout=120) == 141
    assert proc.stderr is not None and proc.stderr.read() == b""


def test_unwritable_html_names_the_path(site: Path) -> None:
    code, _, err = run(
        ["verify", str(site / "good.dhi.tar.zst"), *trust_argv(site), "--html", "/proc/x.html"]
    )
    assert code == 2 and "/proc/x.html" in err and err.count("\n") == 1


# -- 6. trust provisioning -------------------------------------------------------------------


def test_trust_add_is_idempotent_and_remove_takes_a_name(site: Path) -> None:
    pub = str(site / "exporter.pub")
    code, out, _ = run(["trust", "add", pub, "--role", "exporter", "--name", "lab"])
    assert code == 0 and out.startswith("pinned exporter key lab")
    code, out, _ = run(["trust", "add", pub, "--role", "exporter", "--name", "lab"])
    assert code == 0 and out.startswith("already pinned: exporter key lab")
    code, _, err = run(["trust", "add", pub, "--role", "publisher"])
    assert code == 2 and "a key has one role" in err
    code, out, _ = run(["trust", "list", "--format", "json"])
    assert [k["name"] for k in json.loads(out)["pinned"]] == ["lab"]
    code, out, _ = run(["trust", "list", "--json"])  # the old switch, hidden
    assert code == 0 and json.loads(out)["pinned"]
    assert run(["trust", "remove", "lab"])[0] == 0
    assert json.loads(run(["trust", "list", "--format", "json"])[1])["pinned"] == []


def test_private_key_where_a_public_one_is_expected(site: Path) -> None:
    pem = site / "exporter.pem"
    code, _, err = run(["verify", str(site / "good.dhi.tar.zst"), "--trust-exporter", str(pem)])
    assert code == 2 and f"{pem} is a PRIVATE key" in err and "exporter.pub" in err
    code, _, err = run(["trust", "add", str(pem), "--role", "exporter"])
    assert code == 2 and "PRIVATE key" in err


# -- 8. help ------------------------------------------------------------------------------------


def _help_pages() -> dict[str, str]:
    import typer.main

    group: Any = typer.main.get_command(build_app())
    pages: dict[str, str] = {}
    for name in COMMANDS:
        command = group.commands[name]
        paths = [[name]]
        if hasattr(command, "commands"):
            paths += [[name, sub] for sub in command.commands]
        for path in paths:
            with redirect_stdout(io.StringIO()) as out:
                assert main([*path, "--help"]) == 0, path
            pages[" ".join(path)] = out.getvalue()
    return pages


def test_help_at_80_columns_has_no_python_types_or_broken_words(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    pages = _help_pages()
    assert len(pages) > 20
    for path, text in pages.items():
        for bad in ("<bool>", "list[", "<str>", "<path>", "Path]", "{"):
            assert bad not in text, (path, bad)
        for line in text.splitlines():
            assert len(line) <= 80 or " " not in line.strip(), (path, line)
            # A wrap never ends a line inside a hyphenated word.
            assert not line.rstrip().endswith("-") or line.strip().startswith("-"), (path, line)
