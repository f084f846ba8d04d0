"""The command line as a user meets it: exit codes, one-line errors, no network."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest

from dhi_offline.cli.main import main
from tests.conftest import CONFORMANCE, DEFAULT_IDENTITY, DEFAULT_ISSUER

HAPPY = CONFORMANCE / "happy-path-v0.3" / "bundle.sigstore.json"
MANAGED = CONFORMANCE / "managed-key-happy-path"
A_TXT = CONFORMANCE / "a.txt"
A_DIGEST = "sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf"
KEYLESS = ["--certificate-identity", DEFAULT_IDENTITY, "--certificate-oidc-issuer", DEFAULT_ISSUER]


def run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def test_keyless_by_file_and_by_digest_agree() -> None:
    code, out, _ = run(["sigstore", "verify-bundle", "--bundle", str(HAPPY), *KEYLESS, str(A_TXT)])
    assert code == 0 and out.startswith(f"OK: {A_DIGEST}")
    code, out, _ = run(
        [
            "sigstore",
            "verify-bundle",
            "--bundle",
            str(HAPPY),
            *KEYLESS,
            "--format",
            "json",
            A_DIGEST,
        ]
    )
    assert code == 0
    doc = json.loads(out)
    assert doc["verified"] is True and doc["artifact"] == A_DIGEST
    assert doc["signer"] == DEFAULT_IDENTITY
    assert doc["tlogEntries"][0]["logIndex"] == 79571823
    assert doc["tlogEntries"][0]["checkpointOrigin"].startswith("rekor.sigstore.dev - ")


def test_key_signed_bundle() -> None:
    code, out, _ = run(
        [
            "sigstore",
            "verify-bundle",
            "--bundle",
            str(MANAGED / "bundle.sigstore.json"),
            "--key",
            str(MANAGED / "key.pub"),
            str(A_TXT),
        ]
    )
    assert code == 0, out
    assert "signed by key:" in out


@pytest.mark.parametrize(
    ("argv", "code", "needle"),
    [
        (
            ["sigstore", "verify-bundle", "--bundle", "/nonexistent.json", *KEYLESS, str(A_TXT)],
            2,
            "cannot read bundle",
        ),
        (["sigstore", "verify-bundle", "--bundle", str(HAPPY), str(A_TXT)], 2, "give --key"),
        (
            ["sigstore", "verify-bundle", "--bundle", str(HAPPY), *KEYLESS, "sha256:abc"],
            2,
            "sha256:<64 hex",
        ),
        (
            [
                "sigstore",
                "verify-bundle",
                "--bundle",
                str(HAPPY),
                *KEYLESS,
                "--trusted-root",
                str(A_TXT),
                str(A_TXT),
            ],
            2,
            "trusted root",
        ),
        (["sigstore", "verify-bundle", "--bundle", str(HAPPY), *KEYLESS, "/etc"], 2, "artifact"),
        (
            ["sigstore", "verify-bundle", "--bundle", str(HAPPY), "--key", str(A_TXT), str(A_TXT)],
            2,
            "public key",
        ),
        (
            [
                "sigstore",
                "verify-bundle",
                "--bundle",
                str(HAPPY),
                *KEYLESS[:2],
                "--certificate-oidc-issuer",
                "https://accounts.google.com",
                str(A_TXT),
            ],
            1,
            "identity",
        ),
        (
            [
                "sigstore",
                "verify-bundle",
                "--bundle",
                str(HAPPY),
                *KEYLESS,
                str(CONFORMANCE / "README.md"),
            ],
            1,
            "subject",
        ),
    ],
)
def test_errors_are_one_line_with_the_right_code(argv: list[str], code: int, needle: str) -> None:
    got, _, err = run(argv)
    assert got == code, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert needle in lines[0]
    assert "Traceback" not in err


def test_verbose_adds_a_traceback() -> None:
    code, _, err = run(
        [
            "--verbose",
            "sigstore",
            "verify-bundle",
            "--bundle",
            str(HAPPY),
            *KEYLESS,
            str(CONFORMANCE / "README.md"),
        ]
    )
    assert code == 1
    assert "Traceback" in err and "SubjectMismatchError" in err


def test_usage_error_from_typer_is_exit_2() -> None:
    code, _, _ = run(["sigstore", "verify-bundle", "--no-such-flag"])
    assert code == 2


def test_demo_publishes_exports_and_imports(tmp_path: Path) -> None:
    code, out, err = run(
        [
            "demo",
            "--workdir",
            str(tmp_path / "demo"),
            "--output",
            str(tmp_path / "demo.dhi.tar.zst"),
        ]
    )
    assert code == 0, err
    assert "10 attestations verified and packed" in out
    assert (tmp_path / "demo" / "report.html").read_text().count("PASS") >= 1
    lines = (tmp_path / "demo" / "archive" / "log.jsonl").read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["verdict"] == "PASS"


def _cli() -> list[str]:
    return [sys.executable, "-m", "dhi_offline"]


def _unshare_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0


@pytest.mark.integration
@pytest.mark.skipif(not _unshare_works(), reason="unshare -n is not permitted here")
def test_verify_bundle_with_no_network_at_all(tmp_path: Path) -> None:
    """The conformance entry point in a network namespace with no interfaces up."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    ok = subprocess.run(
        [
            "unshare",
            "-n",
            *_cli(),
            "sigstore",
            "verify-bundle",
            "--bundle",
            str(HAPPY),
            *KEYLESS,
            str(A_TXT),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run(
        [
            "unshare",
            "-n",
            *_cli(),
            "sigstore",
            "verify-bundle",
            "--bundle",
            str(CONFORMANCE / "signature-mismatch_fail" / "bundle.sigstore.json"),
            *KEYLESS,
            str(A_TXT),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert bad.returncode == 1
    assert bad.stderr.count("\n") == 1 and "signature" in bad.stderr
    # Proof that the namespace really has no network: a connection attempt fails.
    probe = subprocess.run(
        [
            "unshare",
            "-n",
            sys.executable,
            "-c",
            "import socket; socket.create_connection(('127.0.0.1', 9), timeout=2)",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert probe.returncode != 0 and ("unreachable" in probe.stderr or "refused" in probe.stderr)


@pytest.mark.parametrize(
    ("argv", "loaded", "not_loaded"),
    [
        (["verify", "--help"], "dhi_offline.cli.verify", "httpx"),
        (["-v", "sigstore", "--help"], "dhi_offline.cli.sigstore", "dhi_offline.cli.export"),
        (["export", "--help"], "httpx", "dhi_offline.cli.archive"),
        (["--help"], "dhi_offline.cli.catalog", "dhi_offline.cli.export"),
    ],
)
def test_only_the_command_run_is_loaded(
    argv: list[str], loaded: str, not_loaded: str | None
) -> None:
    # The air-gapped commands start without loading the exporter's HTTP client.
    code = (
        "import sys, contextlib, io\n"
        "from dhi_offline.cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    rc = main({argv!r})\n"
        f"print(rc, {loaded!r} in sys.modules, {not_loaded!r} in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["0", "True", "False"]


def test_every_command_is_listed_and_its_help_renders() -> None:
    # Help is rich markup: a stray "[/...]" in a help text crashed `export --help`.
    import typer.main

    from dhi_offline.cli.catalog import COMMANDS
    from dhi_offline.cli.main import build_app

    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["--help"]) == 0
    group: Any = typer.main.get_command(build_app())
    for name in COMMANDS:
        assert f" {name} " in out.getvalue()
        command = group.commands[name]
        paths = [[name]]
        if hasattr(command, "commands"):
            paths += [[name, sub] for sub in command.commands]
        for path in paths:
            with redirect_stdout(io.StringIO()) as sub:
                assert main([*path, "--help"]) == 0, path
            assert f"dhi-offline {' '.join(path)}" in sub.getvalue()


def test_inspect_prints_an_unverified_manifest_as_text_not_markup(tmp_path: Path) -> None:
    # Regression: "[/]" in a crafted manifest crashed inspect (rich MarkupError).
    from cryptography.hazmat.primitives.asymmetric import ec

    from dhi_offline.bundle.manifest import ImageEntry, PlatformImage
    from dhi_offline.bundle.writer import write_bundle
    from tests.bundle.helpers import CREATED, EXPIRES, sample_members

    image = ImageEntry(
        reference="evil[/]ref[bold_red]PASS",
        digest="sha256:" + "1" * 64,
        media_type="application/vnd.oci.image.index.v1+json",
        platforms=(PlatformImage("linux/[/]amd64", "sha256:" + "2" * 64),),
    )
    bundle = write_bundle(
        tmp_path / "evil.dhi.tar.zst",
        tool_version="0.1[/]",
        created=CREATED,
        expires=EXPIRES,
        sequence=1,
        images=[image],
        members=sample_members(),
        private_key=ec.generate_private_key(ec.SECP256R1()),
        source_date_epoch=0,
    ).path
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(["inspect", str(bundle)])
    assert code == 0, err.getvalue()
    text = " ".join(out.getvalue().split())
    assert "UNVERIFIED" in text
    assert "evil[/]ref[bold_red]PASS" in text
    assert "linux/[/]amd64" in text
    assert "tool 0.1[/]" in text


def test_attest_get_keeps_whole_only_the_statements_it_may_print(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A bundle of many SBOMs: `attest get` for one image and type must not keep (or
    # build) every statement of the bundle.
    from dhi_offline.cli.attest import _verified
    from dhi_offline.cli.options import TrustOptions
    from tests.support.sample import (
        PRODUCTION_ROOT,
        export_argv,
        make_sample_site,
        run_cli,
        trust_argv,
    )

    d = make_sample_site(tmp_path, monkeypatch)
    code, _, err = run_cli(export_argv(d, "b.dhi.tar.zst"))
    assert code == 0, err
    sbom = "https://cyclonedx.org/bom/v1.6"
    trust = TrustOptions.of([d / "exporter.pub"], [d / "publisher.pub"], PRODUCTION_ROOT, False)
    workdir = tmp_path / "work"
    workdir.mkdir()
    verified = _verified(
        d / "b.dhi.tar.zst",
        trust,
        None,
        workdir,
        keep=lambda _ref, r: r.predicate_type == sbom and r.record.platform == "linux/amd64",
    )
    kept = {
        (r.predicate_type, r.record.platform) for r in verified.results.values() if r.statement.raw
    }
    assert kept == {(sbom, "linux/amd64")}
    code, out, err = run_cli(
        [
            "attest",
            "get",
            str(d / "b.dhi.tar.zst"),
            "layout:3.13",  # exported from oci-layout:<dir>/layout:3.13
            "--platform",
            "linux/arm64",
            "--predicate-type",
            sbom,
            *trust_argv(d),
        ]
    )
    assert code == 0, err
    assert json.loads(out)["predicateType"] == sbom
