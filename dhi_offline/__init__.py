"""dhi-offline: verify Docker Hardened Images and their signed evidence with no network."""

__version__ = "0.1.0"
