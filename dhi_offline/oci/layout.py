"""OCI image layouts: read one safely, write one deterministically.

A layout (opencontainers/image-spec ``image-layout.md``) is a directory with an
``oci-layout`` file (``{"imageLayoutVersion": "1.0.0"}``), an ``index.json`` (an image
index whose entries may be tagged with ``org.opencontainers.image.ref.name``) and
``blobs/<alg>/<hex>`` files holding every manifest, config and layer by digest.

Reading trusts nothing in the directory:

- blob paths are built only from validated digests, so no name can climb out;
- any file, or symlink, that resolves outside the layout directory is refused;
- every blob is checked against its digest (and declared size) while it is read.

Referrers in a layout are the manifests whose ``subject.digest`` is the digest asked
about, found by scanning ``index.json`` and every manifest or index reachable from it
(the way ``oras`` and ``skopeo copy --all`` lay referrers out).
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from dhi_offline.encoding import loads_json, require_dict
from dhi_offline.errors import (
    InputError,
    MalformedEvidenceError,
    RegistryError,
    RegistryNotFoundError,
)
from dhi_offline.oci.content import (
    MAX_BLOB_SIZE,
    MAX_MANIFEST_SIZE,
    DigestVerifier,
    Fetched,
    ReferrersResult,
)
from dhi_offline.oci.mediatypes import (
    ALL_MANIFEST_TYPES,
    ANNOTATION_REF_NAME,
    INDEX_TYPES,
    OCI_INDEX,
    OCTET_STREAM,
    Descriptor,
    Platform,
    index_manifests,
    manifest_media_type,
    manifest_subject,
    parse_manifest,
    referrer_descriptor,
    sha256_digest,
)
from dhi_offline.oci.reference import is_digest, validate_digest

OCI_LAYOUT_FILE = "oci-layout"
INDEX_FILE = "index.json"
BLOBS_DIR = "blobs"
LAYOUT_VERSION = "1.0.0"
_CHUNK = 1024 * 1024
_MAX_SMALL_FILE = 64 * 1024


def canonical_json(obj: Mapping[str, Any]) -> bytes:
    """Deterministic JSON bytes: sorted keys, no spaces (how the writer stores objects)."""
    return json.dumps(obj, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


class OciLayout:
    """A read-only view of an OCI image layout directory.

    Raises :class:`InputError` from the constructor when the directory is not a layout;
    read methods raise :class:`RegistryNotFoundError` for missing content and
    :class:`DigestMismatchError` for content that is not what its digest says.
    """

    def __init__(
        self,
        path: Path,
        *,
        max_manifest_size: int = MAX_MANIFEST_SIZE,
        max_blob_size: int = MAX_BLOB_SIZE,
    ) -> None:
        self.path = path
        self.description = f"oci-layout {path}"
        self.max_manifest_size = max_manifest_size
        self.max_blob_size = max_blob_size
        try:
            self._root = path.resolve(strict=True)
        except OSError as e:
            raise InputError(f"{self.description}: not a directory ({e.strerror})") from e
        if not self._root.is_dir():
            raise InputError(f"{self.description}: not a directory")
        marker = self._read_small(OCI_LAYOUT_FILE)
        try:
            version = parse_json_object(marker, what=OCI_LAYOUT_FILE).get("imageLayoutVersion")
        except MalformedEvidenceError as e:
            raise InputError(f"{self.description}: {e.message}") from e
        if version != LAYOUT_VERSION:
            raise InputError(
                f"{self.description}: imageLayoutVersion {version!r} is not {LAYOUT_VERSION!r}"
            )
        self.index_bytes = self._read_file(self._safe_path(INDEX_FILE), limit=max_manifest_size)
        what = f"{self.description}: {INDEX_FILE}"
        try:
            self.index = parse_manifest(self.index_bytes, what=what)
            self.entries: tuple[Descriptor, ...] = index_manifests(self.index, what=what)
        except MalformedEvidenceError as e:
            raise InputError(e.message) from e
        self._lock = threading.Lock()
        self._by_subject: dict[str, list[Descriptor]] | None = None

    # -- paths and raw reads ---------------------------------------------------------

    def _safe_path(self, relative: str) -> Path:
        """``relative`` inside the layout, refusing anything that resolves outside it."""
        candidate = self._root / relative
        try:
            resolved = candidate.resolve(strict=True)
        except FileNotFoundError:
            raise RegistryNotFoundError(f"{self.description}: {relative} not found") from None
        except OSError as e:
            raise InputError(f"{self.description}: {relative}: {e.strerror}") from e
        if not resolved.is_relative_to(self._root):
            raise InputError(
                f"{self.description}: refusing {relative}: it resolves outside the layout"
            )
        if not resolved.is_file():
            raise InputError(f"{self.description}: {relative} is not a regular file")
        return resolved

    def _read_small(self, relative: str) -> bytes:
        try:
            return self._read_file(self._safe_path(relative), limit=_MAX_SMALL_FILE)
        except RegistryNotFoundError as e:
            raise InputError(f"{self.description}: not an OCI layout (no {relative})") from e

    def _read_file(
        self,
        path: Path,
        *,
        limit: int,
        verifier: DigestVerifier | None = None,
    ) -> bytes:
        chunks: list[bytes] = []
        total = 0
        with path.open("rb") as f:
            while chunk := f.read(_CHUNK):
                total += len(chunk)
                if verifier is not None:
                    verifier.update(chunk)
                elif total > limit:
                    raise InputError(f"{self.description}: {path.name} is over {limit} bytes")
                chunks.append(chunk)
        if verifier is not None:
            verifier.finish()
        return b"".join(chunks)

    def blob_path(self, digest: str) -> Path:
        """The checked path of the blob ``digest`` (which must exist inside the layout)."""
        alg, _, encoded = validate_digest(digest).partition(":")
        return self._safe_path(f"{BLOBS_DIR}/{alg}/{encoded}")

    def blob(self, digest: str, size: int | None = None, *, limit: int | None = None) -> bytes:
        """The bytes of blob ``digest``, checked against the digest and ``size``."""
        what = f"{self.description}: blob {digest}"
        verifier = DigestVerifier(
            digest,
            what=what,
            expected_size=size,
            limit=self.max_blob_size if limit is None else limit,
        )
        try:
            path = self.blob_path(digest)
        except RegistryNotFoundError:
            raise RegistryNotFoundError(f"{what}: not found") from None
        return self._read_file(path, limit=verifier.limit or 0, verifier=verifier)

    # -- manifests, tags, referrers --------------------------------------------------

    def tags(self) -> dict[str, Descriptor]:
        """Tag -> index.json entry, from ``org.opencontainers.image.ref.name``."""
        out: dict[str, Descriptor] = {}
        for entry in self.entries:
            name = entry.annotations.get(ANNOTATION_REF_NAME)
            if name is not None:
                out.setdefault(name, entry)
        return out

    def _entry_for(self, digest: str) -> Descriptor | None:
        return next((e for e in self.entries if e.digest == digest), None)

    def manifest(self, digest: str, *, size: int | None = None) -> Fetched:
        """Manifest or index ``digest``, verified, with its media type."""
        entry = self._entry_for(digest)
        if size is None and entry is not None:
            size = entry.size
        data = self.blob(digest, size, limit=self.max_manifest_size)
        what = f"{self.description}: manifest {digest}"
        obj = parse_manifest(data, what=what)
        declared = entry.media_type if entry is not None else None
        return Fetched(manifest_media_type(obj, declared, what=what), digest, data)

    def tag(self, tag: str) -> Fetched | None:
        """The manifest tagged ``tag`` in index.json, or None when there is no such tag."""
        matches = {
            e.digest: e for e in self.entries if e.annotations.get(ANNOTATION_REF_NAME) == tag
        }
        if not matches:
            return None
        if len(matches) > 1:
            raise RegistryError(
                f"{self.description}: tag {tag!r} names {len(matches)} different manifests"
            )
        entry = next(iter(matches.values()))
        return self.manifest(entry.digest, size=entry.size)

    def resolve(self, tag_or_digest: str) -> Fetched:
        """The manifest or index named by a tag or a digest."""
        if is_digest(tag_or_digest):
            return self.manifest(tag_or_digest)
        found = self.tag(tag_or_digest)
        if found is None:
            known = ", ".join(sorted(self.tags())) or "none"
            raise RegistryNotFoundError(
                f"{self.description}: tag {tag_or_digest!r} not found (tags: {known})"
            )
        return found

    def default_ref(self) -> str:
        """What an ``oci-layout:DIR`` reference without tag or digest means.

        The only tag when there is exactly one, else the only index.json entry.

        Raises:
            RegistryError: the layout holds several images; the caller must name one.
        """
        tags = self.tags()
        if len(tags) == 1:
            return next(iter(tags))
        if len(self.entries) == 1:
            return self.entries[0].digest
        raise RegistryError(
            f"{self.description}: holds {len(self.entries)} manifests; name one with "
            f":TAG or @DIGEST (tags: {', '.join(sorted(tags)) or 'none'})"
        )

    def _scan(self) -> dict[str, list[Descriptor]]:
        """Subject digest -> referrer descriptors, over everything reachable from index.json."""
        by_subject: dict[str, list[Descriptor]] = {}
        seen: set[str] = set()
        queue = list(self.entries)
        while queue:
            desc = queue.pop(0)
            if desc.digest in seen or desc.media_type not in ALL_MANIFEST_TYPES:
                continue
            seen.add(desc.digest)
            try:
                data = self.blob(desc.digest, desc.size, limit=self.max_manifest_size)
            except RegistryNotFoundError:
                continue  # a partial layout (one platform copied); nothing to scan there
            what = f"{self.description}: manifest {desc.digest}"
            obj = parse_manifest(data, what=what)
            media_type = manifest_media_type(obj, desc.media_type, what=what)
            subject = manifest_subject(obj, what=what)
            if subject is not None:
                by_subject.setdefault(subject.digest, []).append(
                    referrer_descriptor(obj, media_type, desc.digest, len(data))
                )
            if media_type in INDEX_TYPES:
                queue.extend(index_manifests(obj, what=what))
        return by_subject

    def referrers(self, digest: str, artifact_type: str | None = None) -> ReferrersResult:
        """Manifests in the layout whose ``subject`` is ``digest``, optionally filtered."""
        validate_digest(digest)
        with self._lock:
            if self._by_subject is None:
                self._by_subject = self._scan()
            found = tuple(self._by_subject.get(digest, ()))
        if artifact_type is not None:
            found = tuple(d for d in found if d.artifact_type == artifact_type)
        return ReferrersResult(found, "layout", None)


def parse_json_object(data: bytes, *, what: str) -> dict[str, Any]:
    """A strict JSON object (helper for the small layout files)."""
    return require_dict(loads_json(data, what=what), what=what)


class OciLayoutWriter:
    """Write an OCI image layout: blobs by digest, then ``oci-layout`` and ``index.json``.

    Objects are stored as :func:`canonical_json` bytes; bytes are stored exactly.
    Manifests added with ``in_index=True`` are listed in ``index.json`` (with their
    tag, platform and ``artifactType``), so referrer manifests carrying ``subject`` are
    found by scanning tools. Opening an existing layout keeps its ``index.json`` entries.
    Nothing is visible as a layout until :meth:`close`.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._entries: list[Descriptor] = []
        (path / BLOBS_DIR / "sha256").mkdir(parents=True, exist_ok=True)
        index = path / INDEX_FILE
        if index.is_file():
            existing = parse_manifest(index.read_bytes(), what=f"{path}/{INDEX_FILE}")
            self._entries = list(index_manifests(existing, what=f"{path}/{INDEX_FILE}"))

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()

    def _write_atomic(self, target: Path, data: bytes) -> None:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            Path(tmp).replace(target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def add_blob(self, data: bytes, media_type: str = OCTET_STREAM) -> Descriptor:
        """Store ``data`` under its sha256 digest; return its descriptor."""
        digest = sha256_digest(data)
        target = self.path / BLOBS_DIR / "sha256" / digest.partition(":")[2]
        if not (target.is_file() and target.stat().st_size == len(data)):
            self._write_atomic(target, data)
        return Descriptor(media_type, digest, len(data))

    def add_manifest(
        self,
        manifest: Mapping[str, Any] | bytes,
        media_type: str,
        *,
        tag: str | None = None,
        platform: Platform | None = None,
        in_index: bool = True,
        annotations: Mapping[str, str] | None = None,
    ) -> Descriptor:
        """Store a manifest or index (exact bytes, or canonical JSON of an object).

        Args:
            manifest: the manifest object, or its exact bytes.
            media_type: its media type (one of the manifest or index types).
            tag: recorded as ``org.opencontainers.image.ref.name``; moves an existing tag.
            platform: recorded on the index.json entry.
            in_index: list it in index.json (referrers should be, so scans find them).
            annotations: extra annotations for the index.json entry.

        Returns:
            The descriptor as written to index.json (or as it would be).
        """
        if media_type not in ALL_MANIFEST_TYPES:
            raise InputError(f"{self.path}: {media_type!r} is not a manifest or index type")
        data = manifest if isinstance(manifest, bytes) else canonical_json(manifest)
        obj = parse_manifest(data, what=f"{self.path}: manifest")
        blob = self.add_blob(data, media_type)
        artifact_type = obj.get("artifactType")
        entry_annotations = dict(annotations or {})
        if tag is not None:
            entry_annotations[ANNOTATION_REF_NAME] = tag
        desc = Descriptor(
            media_type,
            blob.digest,
            blob.size,
            artifact_type if isinstance(artifact_type, str) else None,
            entry_annotations,
            platform,
        )
        if in_index:
            if tag is not None:
                self._entries = [
                    e for e in self._entries if e.annotations.get(ANNOTATION_REF_NAME) != tag
                ]
            if desc not in self._entries:
                self._entries.append(desc)
        return desc

    def close(self) -> None:
        """Write ``oci-layout`` and ``index.json``; the layout is complete afterwards."""
        self._write_atomic(
            self.path / OCI_LAYOUT_FILE, canonical_json({"imageLayoutVersion": LAYOUT_VERSION})
        )
        index = {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [e.to_json() for e in self._entries],
        }
        self._write_atomic(self.path / INDEX_FILE, canonical_json(index))
