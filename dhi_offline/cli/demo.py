"""``dhi-offline demo``: the main job on material shipped inside the package, no network."""

from __future__ import annotations

from importlib import resources

import typer

from dhi_offline.errors import VerificationError
from dhi_offline.evidence.sigstore_bundle import parse_bundle
from dhi_offline.trust.keys import load_pem
from dhi_offline.trust.shipped import shipped_trusted_root
from dhi_offline.verify.sigstore import Artifact, KeylessPolicy, verify_sigstore_bundle

_BEACON = KeylessPolicy(
    identity="https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/"
    ".github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main",
    issuer="https://token.actions.githubusercontent.com",
)


def demo() -> None:
    """Verify real public-good Sigstore bundles shipped with the package, offline.

    Shows a key-signed bundle and a keyless one verifying, and a tampered one refused.
    """
    base = resources.files("dhi_offline") / "data" / "demo"
    root = shipped_trusted_root("production")
    artifact = Artifact.from_bytes((base / "a.txt").read_bytes())
    key = load_pem((base / "key-signed.pub").read_bytes())
    cases = [
        ("key-signed bundle (managed key, Rekor v1)", "key-signed.sigstore.json", True),
        ("keyless bundle (Fulcio certificate, Rekor v1)", "keyless-rekor-v1.sigstore.json", True),
        ("keyless bundle with a tampered signature", "tampered-signature.sigstore.json", False),
    ]
    failures = 0
    for title, name, expect_ok in cases:
        bundle = parse_bundle((base / name).read_bytes())
        try:
            result = verify_sigstore_bundle(
                bundle,
                artifact=artifact,
                trusted_root=root,
                key=None if bundle.is_keyless else key,
                policy=_BEACON if bundle.is_keyless else None,
            )
        except VerificationError as e:
            outcome = f"REFUSED  {e.one_line()}"
            ok = not expect_ok
        else:
            entries = ", ".join(f"{e.log_url}#{e.log_index}" for e in result.log_entries)
            outcome = f"VERIFIED signer {result.signer[:60]}; log {entries}"
            ok = expect_ok
        failures += 0 if ok else 1
        typer.echo(f"{title}:\n  {outcome}")
    if failures:
        raise typer.Exit(1)
    typer.echo("demo: every outcome as expected (no network was used)")
