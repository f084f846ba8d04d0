"""Shared fixtures: paths to the copied upstream vectors (see tests/vectors/README.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

VECTORS = Path(__file__).parent / "vectors"
CONFORMANCE = VECTORS / "sigstore-conformance" / "test" / "assets" / "bundle-verify"
SIGSTORE_PYTHON = VECTORS / "sigstore-python" / "test" / "assets"
DEFAULT_IDENTITY = (
    "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/"
    ".github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main"
)
DEFAULT_ISSUER = "https://token.actions.githubusercontent.com"


@pytest.fixture
def conformance_dir() -> Path:
    return CONFORMANCE
