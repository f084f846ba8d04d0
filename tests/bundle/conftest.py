"""Fixtures for the bundle tests: exporter keys (helpers live in helpers.py)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from dhi_offline.bundle.signing import public_key_of
from dhi_offline.trust.keys import PublicKey


@pytest.fixture(scope="session")
def exporter_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="session")
def other_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def exporter_pub(exporter_key: ec.EllipticCurvePrivateKey) -> PublicKey:
    return public_key_of(exporter_key)
