"""sigstore-python's own bundle vectors, with the outcomes its tests assert (INDEX.md §2).

Where sigstore-python verifies with a null identity policy, the identity and issuer are
read from the leaf certificate and required, which checks the same thing and more.
"""

from __future__ import annotations

import json

import pytest

from dhi_offline.errors import VerificationError
from dhi_offline.evidence.certificate import certificate_identity
from dhi_offline.evidence.sigstore_bundle import parse_bundle
from dhi_offline.trust.shipped import shipped_trusted_root
from dhi_offline.trust.trusted_root import TrustedRoot
from dhi_offline.verify.sigstore import Artifact, KeylessPolicy, verify_sigstore_bundle
from tests.conftest import CONFORMANCE
from tests.conftest import SIGSTORE_PYTHON as A

CONFORMANCE_A = str(CONFORMANCE / "a.txt")

# (bundle, artifact, trust root, expected outcome)
CASES = [
    ("bundle.txt.sigstore", "bundle.txt", "staging", "pass"),
    ("bundle_v3.txt.sigstore", "bundle_v3.txt", "staging", "pass"),
    ("bundle_v3_alt.txt.sigstore", "bundle_v3_alt.txt", "staging", "pass"),
    ("staging-rekor-v2.txt.sigstore.json", "staging-rekor-v2.txt", "staging", "pass"),
    # sigstore-python's verify_dsse ignores the subject; the statement's subject is the
    # conformance suite's a.txt (sha256 a0cfc712…), so that is the artifact here.
    ("a.dsse.staging-rekor-v2.txt.sigstore.json", CONFORMANCE_A, "staging", "pass"),
    ("bundle_v3_github.whl.sigstore", "bundle_v3_github.whl", "production", "pass"),
    ("bundle_cve_2022_36056.txt.sigstore", "bundle_cve_2022_36056.txt", "staging", "fail"),
    ("bundle_invalid_version.txt.sigstore", "bundle_invalid_version.txt", "staging", "fail"),
    ("bundle_no_cert_v1.txt.sigstore", "bundle_no_cert_v1.txt", "production", "fail"),
    ("bundle_no_checkpoint.txt.sigstore", "bundle_no_checkpoint.txt", "staging", "fail"),
    ("bundle_no_log_entry.txt.sigstore", "bundle_no_log_entry.txt", "staging", "fail"),
    (
        "bundle_v3_no_signed_time.txt.sigstore.json",
        "bundle_v3_no_signed_time.txt",
        "production",
        "fail",
    ),
    ("tsa/bundle.duplicate.sigstore", "tsa/bundle.txt", "tsa", "fail"),
    ("tsa/bundle.many_timestamp.sigstore", "tsa/bundle.txt", "tsa", "fail"),
    ("tsa/bundle.txt.sigstore", "tsa/bundle.txt", "tsa", "pass"),
    # The timestamp is after the certificate expired; we require every verified time to
    # lie in the certificate's validity (as sigstore-conformance's
    # intoto-tsa-timestamp-outside-cert-validity_fail demands), so this fails.
    ("tsa/bundle.txt.late_timestamp.sigstore", "tsa/bundle.txt", "tsa", "fail"),
]


def _root(name: str) -> TrustedRoot:
    if name in ("staging", "production"):
        return shipped_trusted_root(name)  # type: ignore[arg-type]
    # sigstore-python's TestVerifierWithTimestamp: staging with the local test TSA.
    doc = json.loads(shipped_trusted_root("staging").raw)
    doc["timestampAuthorities"] = [json.loads((A / "tsa" / "ca.json").read_text())]
    return TrustedRoot.from_bytes(json.dumps(doc).encode())


def verify(bundle_name: str, artifact_name: str, root_name: str) -> None:
    bundle = parse_bundle((A / bundle_name).read_bytes())
    ident = certificate_identity(bundle.certificates[0])
    assert ident.issuer is not None
    verify_sigstore_bundle(
        bundle,
        artifact=Artifact.from_bytes((A / artifact_name).read_bytes()),
        trusted_root=_root(root_name),
        policy=KeylessPolicy(identity=ident.sans[0], issuer=ident.issuer),
    )


@pytest.mark.parametrize(("bundle_name", "artifact_name", "root", "expected"), CASES)
def test_sigstore_python_vector(
    bundle_name: str, artifact_name: str, root: str, expected: str
) -> None:
    if expected == "pass":
        verify(bundle_name, artifact_name, root)
    else:
        with pytest.raises(VerificationError):
            verify(bundle_name, artifact_name, root)


def test_legacy_bundle_with_named_identity() -> None:
    """integration/bundle_v3.txt.sigstore with the identity sigstore-python's test names."""
    bundle = parse_bundle((A / "integration" / "bundle_v3.txt.sigstore").read_bytes())
    artifact = Artifact.from_bytes((A / "integration" / "bundle_v3.txt").read_bytes())
    root = shipped_trusted_root("staging")
    good = KeylessPolicy(identity="william@yossarian.net", issuer="https://github.com/login/oauth")
    verify_sigstore_bundle(bundle, artifact=artifact, trusted_root=root, policy=good)
    with pytest.raises(VerificationError, match="identity"):
        verify_sigstore_bundle(
            bundle,
            artifact=artifact,
            trusted_root=root,
            policy=KeylessPolicy(identity="mallory@example.com", issuer=good.issuer),
        )


def test_cpython_release_bundle_by_digest() -> None:
    """The real CPython 3.12.5 bundle (v0.1, proof without checkpoint), verified by digest."""
    bundle = parse_bundle((A / "integration" / "Python-3.12.5.tgz.sigstore").read_bytes())
    artifact = Artifact.from_digest(
        "sha256:38dc4e2c261d49c661196066edbfb70fdb16be4a79cc8220c224dfeb5636d405"
    )
    result = verify_sigstore_bundle(
        bundle,
        artifact=artifact,
        trusted_root=shipped_trusted_root("production"),
        policy=KeylessPolicy(identity="thomas@python.org", issuer="https://accounts.google.com"),
    )
    assert result.log_entries[0].log_index == 118981923
    assert not result.log_entries[0].inclusion_proof  # no checkpoint: only the SET vouches
