"""``dhi-offline sigstore``: single sigstore bundles (the sigstore-conformance CLI protocol)."""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from dhi_offline.cli.inputs import load_artifact, load_bundle_file, load_key_file, load_trusted_root
from dhi_offline.errors import UsageError, VerificationError
from dhi_offline.verify.sigstore import (
    KeylessPolicy,
    VerifiedSigstoreBundle,
    verify_sigstore_bundle,
)

app = typer.Typer(help="Verify single sigstore bundles offline (sigstore-conformance protocol).")


class OutputFormat(StrEnum):
    """Output formats of verify-bundle."""

    text = "text"
    json = "json"


@app.command("verify-bundle")
def verify_bundle(
    artifact: Annotated[
        str,
        typer.Argument(metavar="FILE_OR_DIGEST", help="The signed file, or sha256:<hex>."),
    ],
    bundle: Annotated[Path, typer.Option("--bundle", help="The sigstore bundle (JSON).")],
    certificate_identity: Annotated[
        str | None,
        typer.Option(help="Expected certificate identity (SAN) of a keyless signer."),
    ] = None,
    certificate_oidc_issuer: Annotated[
        str | None, typer.Option(help="Expected OIDC issuer of a keyless signer.")
    ] = None,
    certificate_identity_regexp: Annotated[
        str | None,
        typer.Option(
            metavar="REGEXP",
            help="Regular expression the identity (SAN) must match whole (as cosign).",
        ),
    ] = None,
    certificate_oidc_issuer_regexp: Annotated[
        str | None,
        typer.Option(metavar="REGEXP", help="Regular expression the OIDC issuer must match whole."),
    ] = None,
    key: Annotated[
        Path | None, typer.Option("--key", help="PEM public key of a key-signed bundle.")
    ] = None,
    trusted_root: Annotated[
        Path | None, typer.Option(help="trusted_root.json to use instead of the shipped one.")
    ] = None,
    staging: Annotated[
        bool, typer.Option("--staging", help="Use the shipped Sigstore staging trusted root.")
    ] = False,
    output: Annotated[
        OutputFormat, typer.Option("--format", help="Output format.")
    ] = OutputFormat.text,
) -> None:
    """Verify one sigstore bundle (v0.1-v0.3, key-signed or keyless) with no network.

    Exit 0 when it verifies, 1 when it does not, 2 for unusable input.
    """
    identity_given = certificate_identity or certificate_identity_regexp
    issuer_given = certificate_oidc_issuer or certificate_oidc_issuer_regexp
    if key is not None and (identity_given or issuer_given):
        raise UsageError("--key cannot be combined with the --certificate-* options")
    if certificate_identity and certificate_identity_regexp:
        raise UsageError("give --certificate-identity or --certificate-identity-regexp, not both")
    if certificate_oidc_issuer and certificate_oidc_issuer_regexp:
        raise UsageError(
            "give --certificate-oidc-issuer or --certificate-oidc-issuer-regexp, not both"
        )
    policy: KeylessPolicy | None = None
    if key is None:
        if not (identity_given and issuer_given):
            raise UsageError(
                "give --key, or an identity (--certificate-identity[-regexp]) and an issuer "
                "(--certificate-oidc-issuer[-regexp])"
            )
        for pattern in (certificate_identity_regexp, certificate_oidc_issuer_regexp):
            if pattern is not None:
                try:
                    re.compile(pattern)
                except re.error as e:
                    raise UsageError(f"{pattern!r} is not a regular expression: {e}") from e
        policy = KeylessPolicy(
            identity=certificate_identity,
            issuer=certificate_oidc_issuer,
            identity_regexp=certificate_identity_regexp,
            issuer_regexp=certificate_oidc_issuer_regexp,
        )
    if staging and trusted_root is not None:
        raise UsageError("--staging and --trusted-root are alternatives")

    root = load_trusted_root(trusted_root, staging=staging)
    public_key = load_key_file(key) if key is not None else None
    parsed = load_bundle_file(bundle)
    subject = load_artifact(artifact)
    try:
        result = verify_sigstore_bundle(
            parsed, artifact=subject, trusted_root=root, key=public_key, policy=policy
        )
    except VerificationError as e:
        if output is OutputFormat.json:
            # A script reading JSON gets a document on failure too; stderr keeps the line.
            reason = " ".join(e.message.split())
            # The report code (archive, bundle reader) loads only for JSON: start-up.
            from dhi_offline.report.documents import (  # noqa: PLC0415
                dumps,
                verify_bundle_failure_document,
            )

            typer.echo(dumps(verify_bundle_failure_document(subject.digest, e.step, reason)))
        raise
    _render(result, subject.digest, output)


def _render(result: VerifiedSigstoreBundle, digest: str, output: OutputFormat) -> None:
    if output is OutputFormat.json:
        from dhi_offline.report.documents import dumps, verify_bundle_document  # noqa: PLC0415

        typer.echo(dumps(verify_bundle_document(result, digest)))
        return
    logs = ", ".join(f"{e.log_url}#{e.log_index}" for e in result.log_entries) or "none"
    typer.echo(f"OK: {digest} signed by {result.signer}; log entries: {logs}")
