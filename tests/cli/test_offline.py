"""verify, import, inspect, attest, trust and archive never open a network connection."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.sample import PRODUCTION_ROOT as ROOT
from tests.support.sample import export_argv, make_sample_site
from tests.support.sample import run_cli as run

TESTS = "https://scout.docker.com/tests/v0.1"


@pytest.fixture
def exported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = make_sample_site(tmp_path, monkeypatch)
    code, _, err = run(export_argv(d, "b.dhi.tar.zst"))
    assert code == 0, err
    return d


def _no_sockets(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    attempts: list[str] = []

    class Refused(socket.socket):
        def __init__(self, *args: object, **kwargs: object) -> None:
            attempts.append(f"socket{args}")
            raise AssertionError("a socket was created")

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(f"connect{args}")
        raise AssertionError("a connection was attempted")

    monkeypatch.setattr(socket, "socket", Refused)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return attempts


def test_air_gapped_commands_create_no_socket(
    exported: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = exported
    attempts = _no_sockets(monkeypatch)
    bundle = str(d / "b.dhi.tar.zst")
    assert (
        run(["trust", "add", str(d / "exporter.pub"), "--role", "exporter", "--name", "lab"])[0]
        == 0
    )
    assert run(["trust", "add", str(d / "publisher.pub"), "--role", "publisher"])[0] == 0
    code, out, _ = run(["trust", "list"])
    assert code == 0 and "lab" in out and "dhi-2" in out
    common = ["--trusted-root", str(ROOT)]
    image = json.loads(run(["inspect", bundle, "--format", "json"])[1])["images"][0]["digest"]
    for argv in (
        ["inspect", bundle],
        ["verify", bundle, *common],
        ["import", bundle, *common, "--html", str(d / "r.html")],
        ["attest", "list", bundle, image, *common],
        [
            "attest",
            "get",
            bundle,
            image,
            "--predicate-type",
            TESTS,
            "--platform",
            "linux/arm64",
            "--predicate",
            *common,
        ],
        ["archive", "list"],
        ["archive", "show", "0"],
        ["archive", "verify"],
        ["archive", "report", "--html", str(d / "archive.html")],
    ):
        code, out, err = run(argv)
        assert code == 0, (argv, err)
    assert attempts == []
    # attest get prints only the verified predicate
    code, out, _ = run(
        [
            "attest",
            "get",
            bundle,
            image,
            "--predicate-type",
            TESTS,
            "--platform",
            "linux/amd64",
            "--predicate",
            *common,
        ]
    )
    assert '"reportFormat": "CTRF"' in out and '"subject"' not in out
    key_id = run(["trust", "list", "--json"])[1].split('"keyId": "')[1][:12]
    assert run(["trust", "remove", key_id])[0] == 0
    assert attempts == []


@pytest.mark.integration
@pytest.mark.skipif(shutil.which("unshare") is None, reason="unshare not available")
def test_import_in_a_namespace_without_network(exported: Path) -> None:
    if subprocess.run(["unshare", "-n", "true"], capture_output=True, check=False).returncode != 0:
        pytest.skip("unshare -n is not permitted here")
    d = exported
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    cmd = ["unshare", "-n", sys.executable, "-m", "dhi_offline"]
    imp = subprocess.run(
        [
            *cmd,
            "import",
            str(d / "b.dhi.tar.zst"),
            "--trust-exporter",
            str(d / "exporter.pub"),
            "--trust-publisher",
            str(d / "publisher.pub"),
            "--trusted-root",
            str(ROOT),
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert imp.returncode == 0, imp.stderr
    assert '"verdict": "PASS"' in imp.stdout
    check = subprocess.run(
        [*cmd, "archive", "verify"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert check.returncode == 0 and "1 attempt(s)" in check.stdout
