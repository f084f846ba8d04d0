"""Putting blobs and manifests into a registry (delivery, imports, test fixtures).

- **Uploads** (distribution-spec "Pushing blobs", "Mounting a blob from another
  repository", "Pushing manifests"). A blob is first looked for with ``HEAD
  /v2/<name>/blobs/<digest>``. A mount is ``POST /v2/<name>/blobs/uploads/?mount=&from=``:
  ``201`` means mounted, ``202`` starts an ordinary upload at its ``Location``. Up to
  ``chunk_size`` bytes go monolithically (``POST``, then ``PUT <location>?digest=`` with
  the body); more go in chunks (``PATCH <location>`` with ``Content-Range:
  <start>-<end>``, inclusive, following each answer's new ``Location``, then ``PUT
  <location>?digest=`` without a body), read from a file one chunk at a time. The bytes
  are hashed and counted as they are read; bytes that are not ``digest``/``size`` raise
  :class:`DigestMismatchError` before the final ``PUT``, so nothing is committed (the
  session is cancelled with ``DELETE``, best effort). Upload locations must stay on the
  registry's origin (credentials go with them). ``HEAD /v2/<name>/manifests/<ref>``
  tells whether a manifest exists, falling back to ``GET`` when the registry sends no
  ``Docker-Content-Digest``.
"""

from __future__ import annotations

import contextlib
import hmac
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

import httpx

from dhi_offline.errors import DhiError, DigestMismatchError, InputError, RegistryError
from dhi_offline.net.http import drain
from dhi_offline.oci.content import new_hasher, verify_bytes
from dhi_offline.oci.download import RegistryReader
from dhi_offline.oci.mediatypes import ACCEPT_MANIFESTS, OCTET_STREAM, Descriptor, sha256_digest
from dhi_offline.oci.reference import is_digest, validate_digest, validate_repository, validate_tag
from dhi_offline.oci.status import Target, status_error

__all__ = ["DEFAULT_UPLOAD_CHUNK", "BlobPush", "RegistryUploads"]

BlobPush = Literal["present", "mounted", "uploaded"]
"""How :meth:`RegistryClient.upload_blob` got a blob into a repository: it was there
already, the registry mounted it from another repository, or its bytes were sent."""

DEFAULT_UPLOAD_CHUNK = 8 * 1024 * 1024
"""Blobs up to this size are uploaded in one request; larger ones in chunks this size."""
_RANGE_RE = re.compile(r"(?:bytes=)?0-(\d+)")


class RegistryUploads(RegistryReader):
    """Blob and manifest uploads, and whether a blob or manifest is already there."""

    def blob_exists(self, registry: str, repository: str, digest: str) -> bool:
        """Whether ``repository`` has blob ``digest`` (``HEAD``, asked with push scope)."""
        validate_digest(digest)
        target = Target(registry, repository)
        return self._blob_exists(
            target, digest, f"{target.label}: blob {digest}", _push_scope(repository)
        )

    def upload_blob(
        self,
        registry: str,
        repository: str,
        content: bytes | Path,
        *,
        digest: str,
        size: int,
        media_type: str = OCTET_STREAM,
        mount_from: str | None = None,
        chunk_size: int = DEFAULT_UPLOAD_CHUNK,
    ) -> BlobPush:
        """Put blob ``digest`` of ``size`` bytes into ``repository`` unless it is there.

        ``content`` is the bytes or a file holding them. Up to ``chunk_size`` bytes go
        in one request; more go in ``PATCH`` requests of ``chunk_size`` bytes, read from
        the file one chunk at a time (module docstring, "Uploads"). With ``mount_from``,
        another repository on the same registry, the registry is first asked to mount
        the blob from there. ``media_type`` is not sent: blobs are stored untyped and
        every upload body is ``application/octet-stream``.

        Each request is retried like any other; a failure mid-upload raises and leaves
        the session uncommitted, and calling again starts over from a new ``POST``.

        Returns:
            ``"present"``, ``"mounted"`` or ``"uploaded"``.

        Raises:
            DigestMismatchError: the content is not ``size`` bytes hashing to ``digest``
                (found before anything is committed).
            InputError: the file cannot be read.
            RegistryError: the registry refused or failed.
        """
        validate_digest(digest)
        if size < 0:
            raise ValueError("size must not be negative")
        if chunk_size < 1:
            raise ValueError("chunk_size must be at least 1")
        target = Target(registry, repository)
        scope = _push_scope(repository)
        if mount_from is not None:
            validate_repository(mount_from)
            scope += f" repository:{mount_from}:pull"
        upload = _Upload(target, digest, size, f"{target.label}: blob upload {digest}", scope)
        if self._blob_exists(target, digest, upload.what, scope):
            return "present"
        if isinstance(content, bytes) or size <= chunk_size:
            data = content if isinstance(content, bytes) else _read_small(content, upload)
            check = upload.check()  # refused before the registry sees a byte
            check.update(data)
            check.finish()
            if len(data) <= chunk_size:
                return self._upload(upload, data, mount_from)
            return self._upload(upload, _slices(data, chunk_size), mount_from)
        with _open(content, upload.what) as stream:  # an unreadable file starts no session
            return self._upload(upload, _reads(stream, chunk_size, upload.what), mount_from)

    def manifest_exists(self, registry: str, repository: str, ref: str) -> Descriptor | None:
        """The descriptor of manifest ``ref`` (tag or digest), or None when it is not there.

        ``HEAD`` with the manifest ``Accept`` header (asked with push scope): media type,
        digest and size come from ``Content-Type``, ``Docker-Content-Digest`` and
        ``Content-Length``. When one is missing (the digest header is optional), the
        manifest is fetched, verified and hashed instead.

        Raises:
            RegistryError: the registry failed, or names a digest other than ``ref``.
        """
        target = Target(registry, repository)
        by_digest = is_digest(ref)
        if not by_digest:
            validate_tag(ref)
        what = f"{target.label}: {'manifest' if by_digest else 'tag'} {ref}"

        def handle(response: httpx.Response) -> httpx.Headers | None:
            if response.status_code not in (200, 404):
                raise status_error(response, what)
            drain(response)
            return response.headers if response.status_code == 200 else None

        headers = self._perform(
            "HEAD",
            self._url(target, "manifests", ref),
            what=what,
            handle=handle,
            registry=registry,
            scope=_push_scope(repository),
            headers={"Accept": ACCEPT_MANIFESTS},
        )
        if headers is None:
            return None
        served = headers.get("docker-content-digest", "")
        if by_digest and served and served != ref:
            raise RegistryError(f"{what}: registry answered for {served}")
        media_type = headers.get("content-type", "").split(";")[0].strip()
        length = headers.get("content-length", "")
        if is_digest(served) and media_type and length.isascii() and length.isdigit():
            return Descriptor(media_type, served, int(length))
        found = self._manifest(target, ref, missing_ok=True, what=what)
        return None if found is None else found.descriptor()

    def push_blob(
        self, registry: str, repository: str, data: bytes, media_type: str = OCTET_STREAM
    ) -> Descriptor:
        """Upload ``data`` as a blob unless it is already there (see :meth:`upload_blob`)."""
        digest = sha256_digest(data)
        self.upload_blob(
            registry, repository, data, digest=digest, size=len(data), media_type=media_type
        )
        return Descriptor(media_type, digest, len(data))

    def _blob_exists(self, target: Target, digest: str, what: str, scope: str) -> bool:
        def handle(response: httpx.Response) -> bool:
            if response.status_code not in (200, 404):
                raise status_error(response, what)
            drain(response)
            return response.status_code == 200

        return self._perform(
            "HEAD",
            self._url(target, "blobs", digest),
            what=what,
            handle=handle,
            registry=target.registry,
            scope=scope,
        )

    def _upload(
        self, upload: _Upload, content: bytes | Iterator[bytes], mount_from: str | None
    ) -> BlobPush:
        """Start a session (or mount), send ``content`` whole or chunk by chunk, commit."""
        location = self._start_upload(upload, mount_from)
        if location is None:
            return "mounted"
        if isinstance(content, bytes):
            self._commit_upload(upload, location, content)
            return "uploaded"
        check = upload.check()
        try:
            for chunk in content:
                start = check.count
                check.update(chunk)  # raises before a byte past ``size`` is sent
                location = self._patch(upload, location, chunk, start)
            check.finish()
        except (DigestMismatchError, InputError):
            self._cancel_upload(upload, location)
            raise
        self._commit_upload(upload, location, b"")
        return "uploaded"

    def _start_upload(self, upload: _Upload, mount_from: str | None) -> str | None:
        """``POST`` an upload session (a mount with ``mount_from``): its location, or None
        when the registry mounted the blob."""
        what = upload.what

        def handle(response: httpx.Response) -> str | None:
            if response.status_code == 201 and mount_from is not None:
                drain(response)
                served = response.headers.get("docker-content-digest")
                if served and served != upload.digest:
                    raise RegistryError(f"{what}: registry mounted {served} instead")
                return None
            if response.status_code != 202 or "location" not in response.headers:
                raise status_error(response, what)
            drain(response)
            return _upload_location(response, what)

        target = upload.target
        return self._perform(
            "POST",
            f"{self.base_url(target.registry)}/v2/{target.repository}/blobs/uploads/",
            what=what,
            handle=handle,
            registry=target.registry,
            scope=upload.scope,
            params={"mount": upload.digest, "from": mount_from} if mount_from else None,
        )

    def _patch(self, upload: _Upload, location: str, chunk: bytes, start: int) -> str:
        """Send bytes ``start`` to ``start + len(chunk) - 1``; the session's next location."""
        end = start + len(chunk) - 1
        what = f"{upload.what}: bytes {start}-{end}"

        def handle(response: httpx.Response) -> str:
            if response.status_code != 202 or "location" not in response.headers:
                raise status_error(response, what)
            drain(response)
            held = _RANGE_RE.fullmatch(response.headers.get("range", "").strip())
            if held is not None and int(held.group(1)) != end:  # a chunk went missing
                raise RegistryError(f"{what}: the registry holds bytes 0-{held.group(1)}")
            return _upload_location(response, what)

        return self._perform(
            "PATCH",
            location,
            what=what,
            handle=handle,
            registry=upload.target.registry,
            scope=upload.scope,
            headers={
                "Content-Type": OCTET_STREAM,
                "Content-Range": f"{start}-{end}",
                "Content-Length": str(len(chunk)),
            },
            content=chunk,
        )

    def _commit_upload(self, upload: _Upload, location: str, body: bytes) -> None:
        """``PUT <location>?digest=`` with the blob's last (or only) bytes."""
        url = httpx.URL(location).copy_merge_params({"digest": upload.digest})
        what = upload.what

        def handle(response: httpx.Response) -> None:
            if response.status_code not in (201, 204):
                raise status_error(response, what)
            drain(response)
            served = response.headers.get("docker-content-digest")
            if served and served != upload.digest:
                raise RegistryError(f"{what}: registry stored it as {served}, not {upload.digest}")

        self._perform(
            "PUT",
            str(url),
            what=what,
            handle=handle,
            registry=upload.target.registry,
            scope=upload.scope,
            headers={"Content-Type": OCTET_STREAM},
            content=body,
        )

    def _cancel_upload(self, upload: _Upload, location: str) -> None:
        """``DELETE`` a session that must not be committed; best effort (sessions expire)."""
        with contextlib.suppress(DhiError):
            self._perform(
                "DELETE",
                location,
                what=f"{upload.what}: cancelling the upload",
                handle=drain,
                registry=upload.target.registry,
                scope=upload.scope,
            )

    def push_manifest(
        self, registry: str, repository: str, ref: str, data: bytes, media_type: str
    ) -> str:
        """Upload a manifest or index (exact bytes) under tag or digest ``ref``; its digest."""
        target = Target(registry, repository)
        digest = sha256_digest(data)
        if is_digest(ref):
            verify_bytes(data, ref, what=f"{target.label}: manifest {ref}")
        else:
            validate_tag(ref)
        what = f"{target.label}: manifest upload {ref}"

        def handle(response: httpx.Response) -> str:
            if response.status_code not in (200, 201):
                raise status_error(response, what)
            drain(response)
            served = response.headers.get("docker-content-digest")
            if served and served != digest:
                raise RegistryError(f"{what}: registry stored it as {served}, not {digest}")
            return digest

        return self._perform(
            "PUT",
            self._url(target, "manifests", ref),
            what=what,
            handle=handle,
            registry=registry,
            scope=f"repository:{repository}:pull,push",
            headers={"Content-Type": media_type},
            content=data,
        )


def _push_scope(repository: str) -> str:
    return f"repository:{repository}:pull,push"


@dataclass(frozen=True)
class _Upload:
    """One blob being uploaded: where, what it must be, how it is named and authorized."""

    target: Target
    digest: str
    size: int
    what: str
    scope: str

    def check(self) -> _ContentCheck:
        """A fresh check of content against ``digest`` and ``size``."""
        return _ContentCheck(self.digest, self.size, self.what)


class _ContentCheck:
    """Hash and count upload content; refuse it as soon as it cannot be ``digest``/``size``."""

    def __init__(self, digest: str, size: int, what: str) -> None:
        self.digest = digest
        self.size = size
        self.what = what
        self.count = 0
        self._hasher = new_hasher(digest)

    def update(self, chunk: bytes) -> None:
        """Add ``chunk``; raise when the content passes ``size``."""
        self.count += len(chunk)
        if self.count > self.size:
            raise DigestMismatchError(
                f"{self.what}: content has more than the {self.size} bytes declared"
            )
        self._hasher.update(chunk)

    def finish(self) -> None:
        """Raise unless exactly ``size`` bytes hashing to ``digest`` went through."""
        if self.count != self.size:
            raise DigestMismatchError(
                f"{self.what}: content has {self.count} bytes, not the {self.size} declared"
            )
        actual = f"{self.digest.partition(':')[0]}:{self._hasher.hexdigest()}"
        if not hmac.compare_digest(actual, self.digest):
            raise DigestMismatchError(f"{self.what}: content digest is {actual}")


@contextlib.contextmanager
def _open(path: Path, what: str) -> Iterator[IO[bytes]]:
    try:
        stream = path.open("rb")
    except OSError as e:
        raise InputError(f"{what}: cannot read {path}: {e.strerror or e}") from e
    with stream:
        yield stream


def _read_small(path: Path, upload: _Upload) -> bytes:
    """A file expected to hold ``upload.size`` bytes; one byte more shows it holds more."""
    with _open(path, upload.what) as stream:
        try:
            return stream.read(upload.size + 1)
        except OSError as e:
            raise InputError(f"{upload.what}: cannot read {path}: {e.strerror or e}") from e


def _reads(stream: IO[bytes], chunk_size: int, what: str) -> Iterator[bytes]:
    """A file in chunks of ``chunk_size`` bytes (the last may be shorter)."""
    while True:
        try:
            chunk = stream.read(chunk_size)
        except OSError as e:
            raise InputError(f"{what}: cannot read {stream.name}: {e.strerror or e}") from e
        if not chunk:
            return
        yield chunk


def _slices(data: bytes, chunk_size: int) -> Iterator[bytes]:
    for start in range(0, len(data), chunk_size):
        yield data[start : start + chunk_size]


def _upload_location(response: httpx.Response, what: str) -> str:
    """An upload session's ``Location``, resolved; it must stay on the registry's origin
    because the registry's credentials are sent with it."""
    location = response.url.join(response.headers["location"])
    if (location.scheme, location.host, location.port) != (
        response.url.scheme,
        response.url.host,
        response.url.port,
    ):
        raise RegistryError(f"{what}: upload location leaves the registry ({location})")
    return str(location)
