"""Trust material: keys, keyrings with validity windows, sigstore trusted roots."""
