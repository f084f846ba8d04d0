"""Property: a one-byte change to a bundle, its artifact, its key or its trusted root is
refused, or it verifies to exactly the same meaning (statement, subject, signer).

Only a change in an unsigned, ignorable place (JSON whitespace, an unused trust-root
entry, the bundle's key hint) may still verify, and then nothing it means may differ.
Any exception other than a DhiError is a crash and fails the property.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dhi_offline.errors import DhiError
from dhi_offline.evidence.sigstore_bundle import parse_bundle
from dhi_offline.trust.keys import load_pem
from dhi_offline.trust.shipped import shipped_trusted_root
from dhi_offline.trust.trusted_root import TrustedRoot
from dhi_offline.verify.sigstore import Artifact, KeylessPolicy, verify_sigstore_bundle
from tests.conftest import CONFORMANCE, DEFAULT_IDENTITY, DEFAULT_ISSUER


@dataclass(frozen=True)
class Inputs:
    bundle: bytes
    artifact: bytes
    key: bytes | None
    root: bytes


def meaning(inputs: Inputs) -> tuple[object, ...]:
    """Verify and return what the result means; raises DhiError when refused."""
    bundle = parse_bundle(inputs.bundle)
    root = TrustedRoot.from_bytes(inputs.root)
    key = load_pem(inputs.key) if inputs.key is not None else None
    result = verify_sigstore_bundle(
        bundle,
        artifact=Artifact.from_bytes(inputs.artifact),
        trusted_root=root,
        key=key,
        policy=None if key is not None else KeylessPolicy(DEFAULT_IDENTITY, DEFAULT_ISSUER),
    )
    statement = result.statement
    return (
        result.signer,
        result.key.key_id,
        result.payload_type,
        result.payload,
        statement.predicate_type if statement else None,
        tuple(s.digest.get("sha256") for s in statement.subjects) if statement else None,
        Artifact.from_bytes(inputs.artifact).digest,
    )


def case(name: str, artifact: Path) -> Inputs:
    d = CONFORMANCE / name
    key = (d / "key.pub").read_bytes() if (d / "key.pub").exists() else None
    return Inputs(
        bundle=(d / "bundle.sigstore.json").read_bytes(),
        artifact=artifact.read_bytes(),
        key=key,
        root=shipped_trusted_root("production").raw,
    )


CASES = {
    "key-signed": case("managed-key-happy-path", CONFORMANCE / "a.txt"),
    "keyless-dsse": case("happy-path-intoto-in-dsse-v3", CONFORMANCE / "a.txt"),
    "keyless-message": case("happy-path-v0.3", CONFORMANCE / "a.txt"),
}


def mutate(data: bytes, position: int, value: int) -> bytes:
    i = position % len(data)
    new = value if value != data[i] else (value + 1) % 256
    return data[:i] + bytes([new]) + data[i + 1 :]


@pytest.mark.parametrize("name", sorted(CASES))
@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    target=st.sampled_from(["bundle", "artifact", "key", "root"]),
    position=st.integers(min_value=0, max_value=2**20),
    value=st.integers(min_value=0, max_value=255),
)
def test_single_byte_change_never_changes_meaning(
    name: str, target: str, position: int, value: int
) -> None:
    original = CASES[name]
    expected = meaning(original)
    if target == "key" and original.key is None:
        target = "bundle"
    fields = {
        "bundle": original.bundle,
        "artifact": original.artifact,
        "key": original.key,
        "root": original.root,
    }
    source = fields[target]
    assert source is not None
    fields[target] = mutate(source, position, value)
    changed = Inputs(**fields)  # type: ignore[arg-type]
    try:
        got = meaning(changed)
    except DhiError:
        return  # refused: fine
    assert target != "artifact", "a changed artifact must never verify"
    assert got == expected, f"a one-byte change in the {target} changed the verified meaning"
