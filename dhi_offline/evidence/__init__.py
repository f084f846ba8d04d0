"""What an attestation is: DSSE, in-toto statements, cosign signatures, sigstore bundles."""
