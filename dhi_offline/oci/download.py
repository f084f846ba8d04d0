"""Reading manifests and blobs from a registry, verified while they stream.

- **Integrity.** Every manifest and blob is hashed (sha256 or sha512, from its digest)
  and counted while it streams; the download stops as soon as it passes the size limit
  or its declared size. A tag's manifest is checked against ``Docker-Content-Digest``.
  Wrong bytes raise :class:`DigestMismatchError` (not retried: fail closed).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import IO

import httpx

from dhi_offline.errors import RegistryNotFoundError
from dhi_offline.net.http import CHUNK_SIZE, drain
from dhi_offline.oci.content import DigestVerifier, Fetched, verify_bytes
from dhi_offline.oci.mediatypes import (
    ACCEPT_MANIFESTS,
    manifest_media_type,
    parse_manifest,
    sha256_digest,
)
from dhi_offline.oci.reference import is_digest, validate_digest, validate_tag
from dhi_offline.oci.status import Target, status_error
from dhi_offline.oci.transport import RegistryTransport

__all__ = ["RegistryReader"]


class RegistryReader(RegistryTransport):
    """Manifests, tags and blobs, each checked against its digest and size limits."""

    progress: Callable[[int], None] | None
    max_manifest_size: int
    max_blob_size: int

    def _init_reads(
        self,
        *,
        progress: Callable[[int], None] | None,
        max_manifest_size: int,
        max_blob_size: int,
    ) -> None:
        """Set the limits and progress callback (called by ``RegistryClient.__init__``)."""
        self.progress = progress
        self.max_manifest_size = max_manifest_size
        self.max_blob_size = max_blob_size

    def _read_verified(
        self,
        response: httpx.Response,
        verifier: DigestVerifier,
        *,
        report_progress: bool,
    ) -> bytes:
        """Read a body through ``verifier``, stopping at the first violated limit."""
        length = response.headers.get("content-length")
        if (
            length is not None
            and length.isascii()
            and length.isdigit()
            and "content-encoding" not in response.headers
        ):
            verifier.check_declared_length(int(length))
        chunks: list[bytes] = []
        reported = 0
        progress = self.progress if report_progress else None
        try:
            for chunk in response.iter_bytes(CHUNK_SIZE):
                verifier.update(chunk)
                chunks.append(chunk)
                if progress is not None:
                    progress(len(chunk))
                    reported += len(chunk)
        except BaseException:
            if progress is not None and reported:
                progress(-reported)
            raise
        verifier.finish()
        return b"".join(chunks)

    def _manifest(self, target: Target, ref: str, *, missing_ok: bool, what: str) -> Fetched | None:
        url = self._url(target, "manifests", ref)
        by_digest = is_digest(ref)

        def handle(response: httpx.Response) -> Fetched | None:
            if response.status_code == 404 and missing_ok:
                drain(response)
                return None
            if response.status_code != 200:
                raise status_error(response, what)
            verifier = DigestVerifier(
                ref if by_digest else None, what=what, limit=self.max_manifest_size
            )
            data = self._read_verified(response, verifier, report_progress=False)
            digest = ref if by_digest else sha256_digest(data)
            served = response.headers.get("docker-content-digest")
            if served and not by_digest and is_digest(served):
                verify_bytes(data, served, what=f"{what} (Docker-Content-Digest {served})")
            obj = parse_manifest(data, what=what)
            declared = response.headers.get("content-type", "").split(";")[0].strip()
            return Fetched(manifest_media_type(obj, declared or None, what=what), digest, data)

        return self._perform(
            "GET",
            url,
            what=what,
            handle=handle,
            registry=target.registry,
            scope=f"repository:{target.repository}:pull",
            headers={"Accept": ACCEPT_MANIFESTS},
        )

    def get_manifest(self, registry: str, repository: str, ref: str) -> Fetched:
        """The manifest or index at tag or digest ``ref``, verified.

        Raises:
            RegistryNotFoundError: no such tag/manifest (or repository).
            DigestMismatchError: the bytes are not those of the digest asked for.
        """
        target = Target(registry, repository)
        kind = "manifest" if is_digest(ref) else "tag"
        if kind == "tag":
            validate_tag(ref)
        what = f"{target.label}: {kind} {ref}"
        found = self._manifest(target, ref, missing_ok=False, what=what)
        if found is None:  # missing_ok=False raises first; never trust that silently
            raise RegistryNotFoundError(f"{what}: not found")
        return found

    def get_tag(self, registry: str, repository: str, tag: str) -> Fetched | None:
        """The manifest tagged ``tag``, or None when the tag (or repository) does not exist."""
        target = Target(registry, repository)
        validate_tag(tag)
        return self._manifest(target, tag, missing_ok=True, what=f"{target.label}: tag {tag}")

    def get_blob(
        self,
        registry: str,
        repository: str,
        digest: str,
        size: int | None = None,
        *,
        limit: int | None = None,
    ) -> bytes:
        """Blob ``digest``, checked against digest and ``size`` while it streams.

        Raises:
            SizeLimitError: over ``limit`` (default ``max_blob_size``); stopped early.
            DigestMismatchError: wrong bytes, or more/fewer than ``size``.
        """
        validate_digest(digest)
        target = Target(registry, repository)
        what = f"{target.label}: blob {digest}"

        def handle(response: httpx.Response) -> bytes:
            if response.status_code != 200:
                raise status_error(response, what)
            verifier = DigestVerifier(
                digest,
                what=what,
                expected_size=size,
                limit=self.max_blob_size if limit is None else limit,
            )
            return self._read_verified(response, verifier, report_progress=True)

        return self._perform(
            "GET",
            self._url(target, "blobs", digest),
            what=what,
            handle=handle,
            registry=registry,
            scope=f"repository:{repository}:pull",
        )

    def download_blob(
        self,
        registry: str,
        repository: str,
        digest: str,
        out: IO[bytes],
        *,
        size: int | None = None,
        limit: int | None = None,
    ) -> None:
        """Stream blob ``digest`` into ``out`` (never whole in memory), checked as it goes.

        A retried attempt starts ``out`` again from where it was. On an error ``out``
        holds partial bytes: the caller writes to a temporary file and discards it.

        Raises:
            SizeLimitError: over ``limit`` (default ``max_blob_size``); stopped early.
            DigestMismatchError: wrong bytes, or more/fewer than ``size``.
        """
        validate_digest(digest)
        target = Target(registry, repository)
        what = f"{target.label}: blob {digest}"
        start = out.tell()

        def handle(response: httpx.Response) -> None:
            if response.status_code != 200:
                raise status_error(response, what)
            out.seek(start)
            out.truncate()
            verifier = DigestVerifier(
                digest,
                what=what,
                expected_size=size,
                limit=self.max_blob_size if limit is None else limit,
            )
            for chunk in response.iter_bytes(CHUNK_SIZE):
                verifier.update(chunk)
                out.write(chunk)
            verifier.finish()

        self._perform(
            "GET",
            self._url(target, "blobs", digest),
            what=what,
            handle=handle,
            registry=registry,
            scope=f"repository:{repository}:pull",
        )
