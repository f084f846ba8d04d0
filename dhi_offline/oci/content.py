"""Verified content: what a source hands back, and the streaming digest/size check.

Everything read from a registry or a layout passes through :class:`DigestVerifier`
before anyone sees it, so a :class:`Fetched` always holds bytes whose digest is the
one it names. The checks run while the bytes arrive: a download is stopped as soon as
it passes its size limit or its declared size, not after it has filled memory.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Literal

from dhi_offline.errors import DigestMismatchError, SizeLimitError
from dhi_offline.oci.mediatypes import Descriptor
from dhi_offline.oci.reference import validate_digest

MAX_MANIFEST_SIZE = 4 * 1024 * 1024
"""Default cap on a manifest, index or referrers page (the OCI spec's 4 MiB guidance)."""
MAX_BLOB_SIZE = 256 * 1024 * 1024
"""Default cap on one blob; attestation blobs are small, layers are not exported."""


@dataclass(frozen=True)
class Fetched:
    """A manifest or index as served, verified against its digest."""

    media_type: str
    """Manifest or index media type (from the body's ``mediaType``, else the server's)."""
    digest: str
    """The digest of ``data``; always checked before a Fetched is made."""
    data: bytes
    """The exact bytes served."""

    @property
    def size(self) -> int:
        """Length of ``data``."""
        return len(self.data)

    def descriptor(self) -> Descriptor:
        """A plain descriptor (media type, digest, size) for these bytes."""
        return Descriptor(self.media_type, self.digest, len(self.data))


@dataclass(frozen=True)
class ReferrersResult:
    """The referrers of a digest, and how they were found."""

    descriptors: tuple[Descriptor, ...]
    """One descriptor per referrer manifest, after any artifactType filter."""
    via: Literal["api", "tag", "layout", "none"]
    """``api``: the referrers API; ``tag``: the ``<alg>-<hex>`` fallback tag; ``layout``:
    a scan of an OCI layout; ``none``: neither the API nor the fallback tag exists."""
    raw: bytes | None
    """The exact index bytes when there was one index (API response or fallback tag);
    None for a scan, for no index, or when the API answered in several pages."""


def referrers_tag(digest: str) -> str:
    """The referrers fallback tag of ``digest``: ``<alg>-<hex>`` (distribution-spec)."""
    alg, _, encoded = validate_digest(digest).partition(":")
    return f"{alg[:32]}-{encoded[:64]}"


def new_hasher(digest: str) -> hashlib._Hash:
    """A hashlib object for the algorithm of ``digest`` (sha256 or sha512)."""
    alg = validate_digest(digest).partition(":")[0]
    return hashlib.sha256() if alg == "sha256" else hashlib.sha512()


class DigestVerifier:
    """Check bytes against a digest, an expected size and a size limit as they stream.

    ``what`` names the object for messages, e.g.
    ``"registry 127.0.0.1:5000 repository ns/app: blob sha256:..."``.
    """

    def __init__(
        self,
        digest: str | None,
        *,
        what: str,
        expected_size: int | None = None,
        limit: int | None = None,
        algorithm: str = "sha256",
    ) -> None:
        self.digest = digest
        self.what = what
        self.expected_size = expected_size
        self.limit = limit
        self._hasher = new_hasher(digest) if digest else hashlib.new(algorithm)
        self._algorithm = digest.partition(":")[0] if digest else algorithm
        self.received = 0

    def check_declared_length(self, length: int) -> None:
        """Refuse early when the server announces more bytes than we will take."""
        if self.limit is not None and length > self.limit:
            raise SizeLimitError(
                f"{self.what}: server announces {length} bytes, over the limit of {self.limit}"
            )
        if self.expected_size is not None and length != self.expected_size:
            raise DigestMismatchError(
                f"{self.what}: server announces {length} bytes, the descriptor says "
                f"{self.expected_size}"
            )

    def update(self, chunk: bytes) -> None:
        """Add ``chunk``; raise as soon as the limit or the expected size is passed."""
        self.received += len(chunk)
        if self.expected_size is not None and self.received > self.expected_size:
            raise DigestMismatchError(
                f"{self.what}: more than the {self.expected_size} bytes the descriptor "
                "declares were served"
            )
        if self.limit is not None and self.received > self.limit:
            raise SizeLimitError(f"{self.what}: larger than the limit of {self.limit} bytes")
        self._hasher.update(chunk)

    def finish(self) -> str:
        """Check the total size and digest; return the digest of what was received."""
        if self.expected_size is not None and self.received != self.expected_size:
            raise DigestMismatchError(
                f"{self.what}: {self.received} bytes served, the descriptor declares "
                f"{self.expected_size}"
            )
        actual = f"{self._algorithm}:{self._hasher.hexdigest()}"
        if self.digest is not None and not hmac.compare_digest(actual, self.digest):
            raise DigestMismatchError(f"{self.what}: content digest is {actual}")
        return actual


def verify_bytes(
    data: bytes,
    digest: str,
    *,
    what: str,
    expected_size: int | None = None,
    limit: int | None = None,
) -> bytes:
    """Check ``data`` in one go (for bytes already in memory); return it."""
    verifier = DigestVerifier(digest, what=what, expected_size=expected_size, limit=limit)
    verifier.update(data)
    verifier.finish()
    return data
