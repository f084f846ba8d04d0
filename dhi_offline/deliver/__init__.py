"""Deliver verified evidence and the site's verdict into an internal OCI registry.

``push`` verifies a bundle, then writes the publisher's evidence unchanged, the site's
signed verdict (a cosign image signature and a SLSA Verification Summary Attestation)
and the bundle itself into the registry the site's admission controllers read;
``pull`` fetches a bundle pushed there; ``admission`` writes the enforcers' configs.
"""
