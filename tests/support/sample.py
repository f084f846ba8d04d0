"""A sample site for end-to-end tests: a publisher key, the sample DHI-style layout, an
exporter key pair, and per-test state/config/data directories. Plus an in-process CLI runner."""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from dhi_offline.cli.main import main
from dhi_offline.demo import build_sample_layout

PRODUCTION_ROOT = (
    Path(__file__).resolve().parents[2]
    / "dhi_offline"
    / "data"
    / "trusted_root"
    / "production.json"
)


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """Run ``dhi-offline argv`` in-process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def public_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    """SubjectPublicKeyInfo PEM of a private key's public half."""
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def make_sample_site(d: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """In ``d``: ``publisher.pub``, ``layout/`` (tag 3.13), ``exporter.pem``/``.pub``; the
    tool's state, config and data directories pointed inside ``d``."""
    monkeypatch.setenv("DHI_OFFLINE_STATE_DIR", str(d / "state"))
    monkeypatch.setenv("DHI_OFFLINE_CONFIG_DIR", str(d / "config"))
    monkeypatch.setenv("DHI_OFFLINE_DATA_DIR", str(d / "data"))
    key = ec.generate_private_key(ec.SECP256R1())
    (d / "publisher.pub").write_bytes(public_pem(key))
    build_sample_layout(d / "layout", key)
    code, _, err = run_cli(["keys", "generate", "--output", str(d / "exporter")])
    assert code == 0, err
    return d


def export_argv(d: Path, out: str, *extra: str, key: str = "publisher.pub") -> list[str]:
    """The export command line for the sample layout, offline (no Rekor)."""
    return [
        "export",
        f"oci-layout:{d / 'layout'}:3.13",
        "--signing-key",
        str(d / "exporter.pem"),
        "--key",
        str(d / key),
        "--trusted-root",
        str(PRODUCTION_ROOT),
        "--no-rekor",
        "-o",
        str(d / out),
        *extra,
    ]


def trust_argv(d: Path) -> list[str]:
    """The air-gapped side's trust options for the sample site ``d``."""
    return [
        "--trust-exporter",
        str(d / "exporter.pub"),
        "--trust-publisher",
        str(d / "publisher.pub"),
        "--trusted-root",
        str(PRODUCTION_ROOT),
    ]
