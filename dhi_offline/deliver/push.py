"""``push``: a verified bundle's evidence and the site's verdict, into the internal registry.

The plan, in order (each step is idempotent; a re-run after an interruption completes it):

1. **Images.** Every image and platform digest must be served under its mapped name.
   A missing digest, or a tag that names another digest, is reported per image; unless
   ``allow_missing``, nothing is written.
2. **Publisher evidence, unchanged.** For every attestation that verified: its manifest,
   config and layers, and the cosign signature manifests that sign it, byte for byte (so
   the publisher's signatures still verify with the publisher's key). A manifest with a
   ``subject`` is a referrer of it; one without goes under cosign's tag
   (``sha256-<hex>.att`` for an attestation, ``.sig`` for a signature), whose layers are
   merged as cosign merges them.
3. **The site's verdict** for every platform digest and every index digest: a SLSA VSA
   in DSSE signed by the site key, as a sigstore bundle v0.3 referrer and as a layer of
   the ``.att`` tag (replacing an earlier VSA of the same site key there); and, when the
   verdict passed with no unsafe switch, a cosign image signature in the ``.sig`` tag.
   A failed verdict removes an earlier signature of the site key from the ``.sig`` tag.
   A VSA an earlier push wrote for the same bundle, policy and key is reused.
4. **Referrers fallback indexes**, last: where the registry has no referrers API, the
   ``sha256-<hex>`` index of each subject gets the new referrers (with their
   annotations), so a reader never finds an index entry whose manifest is missing.
5. **The bundle itself** as an OCI artifact (``docs/format.md``), tagged
   ``<exporter key id[:16]>-<sequence>``.

Blobs always go before the manifest that names them. Nothing here prints: every step
is an :class:`Action` in the returned :class:`PushReport`, and ``on_action`` sees each
as it happens.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from dhi_offline.bundle import layout
from dhi_offline.bundle.manifest import BundleManifest
from dhi_offline.deliver import names
from dhi_offline.deliver.site import (
    SiteKey,
    Verdict,
    compact,
    dsse_envelope,
    envelope_of_bundle,
    sha256_of,
    signature_config,
    sigstore_bundle,
    simple_signing_payload,
    site_vsa,
    vsa_statement,
)
from dhi_offline.deliver.verdict import Destination, ImageTarget, verdicts
from dhi_offline.encoding import format_rfc3339, loads_json, require_dict
from dhi_offline.errors import DhiError
from dhi_offline.evidence.cosign import signature_from_annotation
from dhi_offline.evidence.records import DirectoryBlobStore, EvidenceIndex
from dhi_offline.oci import mediatypes as mt
from dhi_offline.oci.client import RegistryClient
from dhi_offline.oci.content import referrers_tag
from dhi_offline.oci.mediatypes import Descriptor
from dhi_offline.verify.bundle import VerifiedEvidenceBundle
from dhi_offline.verify.layouts.buildkit import BuildKit

Status = Literal["pushed", "present", "missing", "different", "skipped", "revoked", "conflict"]

PROBLEMS: frozenset[str] = frozenset({"missing", "different", "conflict"})
"""Statuses that make ``push`` exit 1."""


@dataclass(frozen=True)
class Action:
    """One thing the push checked or wrote."""

    kind: str
    """``image``, ``evidence``, ``vsa``, ``signature``, ``referrers`` or ``bundle``."""
    target: str
    """What it is about: a reference ``REGISTRY/REPO@DIGEST`` or ``:TAG``."""
    status: Status
    detail: str = ""

    def to_json(self) -> dict[str, str]:
        """JSON form."""
        return {
            "kind": self.kind,
            "target": self.target,
            "status": self.status,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class PushOptions:
    """What ``push`` writes where."""

    destination: Destination
    allow_missing: bool = False
    bundle_repository: str | None = None
    """``REGISTRY/REPO`` for the bundle artifact (default ``--to`` + ``/dhi-offline/bundles``)."""
    push_bundle: bool = True


@dataclass
class PushReport:
    """Everything one push did, for the renderers."""

    bundle_sha256: str
    site_key_id: str
    verdicts: list[Verdict] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
    bundle_reference: str | None = None
    stopped: str | None = None
    """Why nothing (more) was written: images missing without ``--allow-missing``."""

    @property
    def ok(self) -> bool:
        """No problem action, nothing stopped, every verdict passed."""
        return (
            self.stopped is None
            and not any(a.status in PROBLEMS for a in self.actions)
            and all(v.passed for v in self.verdicts)
        )

    def count(self, status: Status) -> int:
        """How many actions ended with ``status``."""
        return sum(1 for a in self.actions if a.status == status)

    def to_json(self) -> dict[str, Any]:
        """The ``push --format json`` document (``docs/json-output.md``)."""
        return {
            "ok": self.ok,
            "bundleSha256": self.bundle_sha256,
            "siteKeyId": self.site_key_id,
            "stopped": self.stopped,
            "bundleReference": self.bundle_reference,
            "verdicts": [
                {
                    "image": v.image,
                    "repository": v.repository,
                    "digest": v.digest,
                    "platform": v.platform,
                    "verificationResult": v.result,
                    "signed": v.signable,
                    "reasons": list(v.reasons),
                    "unsafe": list(v.unsafe),
                }
                for v in self.verdicts
            ],
            "actions": [a.to_json() for a in self.actions],
        }


def _split(repository: str) -> tuple[str, str]:
    registry, _, repo = repository.partition("/")
    return registry, repo


class _Pusher:
    """One push: the client, the report, and the referrers written per subject."""

    def __init__(
        self,
        client: RegistryClient,
        report: PushReport,
        on_action: Callable[[Action], None] | None,
    ) -> None:
        self.client = client
        self.report = report
        self.on_action = on_action
        # (repository, subject digest) -> descriptors of referrers that must be listed.
        self.referrers: dict[tuple[str, str], dict[str, Descriptor]] = {}
        self.manifests_done: set[tuple[str, str]] = set()
        # Image digest -> its descriptor in the internal registry (for ``subject``).
        self.subjects: dict[str, Descriptor] = {}

    def act(self, kind: str, target: str, status: Status, detail: str = "") -> None:
        action = Action(kind, target, status, detail)
        self.report.actions.append(action)
        if self.on_action is not None:
            self.on_action(action)

    # -- primitives --------------------------------------------------------------------

    def blob(self, repository: str, data: bytes) -> bool:
        """Upload one blob; True when it was written (not already there)."""
        registry, repo = _split(repository)
        result = self.client.upload_blob(
            registry, repo, data, digest=sha256_of(data), size=len(data)
        )
        return result != "present"

    def manifest(self, repository: str, data: bytes, media_type: str) -> bool:
        """Put a manifest by digest (its blobs must be there); True when it was written."""
        digest = sha256_of(data)
        if (repository, digest) in self.manifests_done:
            return False
        registry, repo = _split(repository)
        written = False
        if self.client.manifest_exists(registry, repo, digest) is None:
            self.client.push_manifest(registry, repo, digest, data, media_type)
            written = True
        self.manifests_done.add((repository, digest))
        return written

    def refer(self, repository: str, data: bytes, doc: dict[str, Any]) -> None:
        """Remember that the manifest ``data`` is a referrer of its subject."""
        subject = doc.get("subject")
        if not isinstance(subject, dict) or not isinstance(subject.get("digest"), str):
            return
        config = doc.get("config")
        artifact_type = doc.get("artifactType")
        if not isinstance(artifact_type, str) and isinstance(config, dict):
            artifact_type = config.get("mediaType")
        annotations = doc.get("annotations")
        descriptor = Descriptor(
            media_type=str(doc.get("mediaType") or mt.OCI_MANIFEST),
            digest=sha256_of(data),
            size=len(data),
            artifact_type=artifact_type if isinstance(artifact_type, str) else None,
            annotations=dict(annotations) if isinstance(annotations, dict) else {},
        )
        key = (repository, str(subject["digest"]))
        self.referrers.setdefault(key, {})[descriptor.digest] = descriptor

    def tag_layers(
        self,
        repository: str,
        tag: str,
        add: list[tuple[dict[str, Any], bytes]],
        *,
        drop: Callable[[dict[str, Any]], bool] | None = None,
        exact: tuple[bytes, Iterable[bytes]] | None = None,
    ) -> Status:
        """Make the cosign tag ``tag`` hold ``add`` (layer descriptor, content) among its
        layers, as cosign appends them; layers ``drop`` accepts are removed first.

        ``exact`` (manifest bytes, every blob it names) is written as is when the tag
        does not exist yet: the publisher's own manifest, digest unchanged. Returns
        ``present`` when the tag already held every layer.
        """
        registry, repo = _split(repository)
        existing = self.client.get_tag(registry, repo, tag)
        if existing is None and exact is not None:
            manifest_bytes, contents = exact
            for content in contents:
                self.blob(repository, content)
            self.client.push_manifest(registry, repo, tag, manifest_bytes, mt.OCI_MANIFEST)
            return "pushed"
        layers: list[dict[str, Any]] = []
        if existing is not None:
            doc = require_dict(loads_json(existing.data, what=f"tag {tag}"), what=f"tag {tag}")
            found = doc.get("layers")
            layers = [x for x in found if isinstance(x, dict)] if isinstance(found, list) else []
        kept = [x for x in layers if drop is None or not drop(x)]
        have = {str(x.get("digest")) for x in kept}
        new = [(d, c) for d, c in add if d["digest"] not in have]
        if not new and len(kept) == len(layers):
            return "present"  # nothing to add or remove (no tag and nothing to add: none made)
        for _, content in new:
            self.blob(repository, content)
        merged = kept + [d for d, _ in new]
        config = signature_config([str(x.get("digest")) for x in merged])
        self.blob(repository, config)
        manifest = compact(
            {
                "schemaVersion": 2,
                "mediaType": mt.OCI_MANIFEST,
                "config": {
                    "mediaType": mt.OCI_CONFIG,
                    "digest": sha256_of(config),
                    "size": len(config),
                },
                "layers": merged,
            }
        )
        self.client.push_manifest(registry, repo, tag, manifest, mt.OCI_MANIFEST)
        return "pushed" if new else "revoked"


def _doc(data: bytes, what: str) -> dict[str, Any]:
    return require_dict(loads_json(data, what=what), what=what)


def _blob_or_empty(blobs: DirectoryBlobStore, digest: str) -> bytes | None:
    if digest == mt.EMPTY_DIGEST:
        return mt.EMPTY_JSON
    try:
        return blobs.get(digest)
    except DhiError:
        return None


def _publisher_evidence(
    p: _Pusher,
    target: ImageTarget,
    index: EvidenceIndex,
    blobs: DirectoryBlobStore,
) -> None:
    """Step 2 for one image: every verified attestation and its signatures, unchanged."""
    repository = target.repository
    records = {r.id: r for r in index.attestations}
    for plat in target.view.platforms:
        for view in plat.attestations:
            record = records.get(view.id)
            if record is None or not view.verified or record.layout == BuildKit.name:
                continue  # BuildKit attestations travel inside the index itself
            manifests = [(record.manifest, "attestation")] + [
                (s.manifest, "signature") for s in record.signatures
            ]
            for digest, role in manifests:
                where = f"{repository}@{digest}"
                data = _blob_or_empty(blobs, digest)
                if data is None:
                    p.act("evidence", where, "conflict", "the bundle lacks this manifest")
                    continue
                doc = _doc(data, f"evidence manifest {digest}")
                config = doc.get("config")
                found = doc.get("layers")
                layer_descs = (
                    [x for x in found if isinstance(x, dict)] if isinstance(found, list) else []
                )
                needed = ([config] if isinstance(config, dict) else []) + layer_descs
                contents: dict[str, bytes] = {}
                missing = ""
                for desc in needed:
                    content = _blob_or_empty(blobs, str(desc.get("digest")))
                    if content is None:
                        missing = str(desc.get("digest"))
                        break
                    contents[str(desc.get("digest"))] = content
                if missing:
                    p.act(
                        "evidence",
                        where,
                        "conflict",
                        f"the bundle lacks blob {missing} (exported before the blobs of "
                        "evidence manifests were kept: export it again)",
                    )
                    continue
                label = f"{role} {view.predicate_type}" if role == "attestation" else role
                if "subject" not in doc:
                    # cosign's tag layout: .att of the image, .sig of the attestation; the
                    # layers join whatever the tag holds, as cosign appends them.
                    tag = (
                        names.attestation_tag(record.subject)
                        if role == "attestation"
                        else names.signature_tag(record.manifest)
                    )
                    add = [(d, contents[str(d.get("digest"))]) for d in layer_descs]
                    status = p.tag_layers(
                        repository, tag, add, exact=(data, list(contents.values()))
                    )
                    p.act("evidence", f"{repository}:{tag}", status, label)
                    continue
                for content in contents.values():
                    p.blob(repository, content)
                media_type = str(doc.get("mediaType") or mt.OCI_MANIFEST)
                written = p.manifest(repository, data, media_type)
                p.refer(repository, data, doc)
                p.act("evidence", where, "pushed" if written else "present", label)


def _existing_vsa(
    p: _Pusher, verdict: Verdict, key: SiteKey, annotations: dict[str, str]
) -> bytes | None:
    """The DSSE envelope an earlier push wrote for this digest, bundle, policy and key."""

    def ours(ann: object) -> bool:
        return isinstance(ann, dict) and all(ann.get(k) == v for k, v in annotations.items())

    registry, repo = _split(verdict.repository)
    found = p.client.referrers(registry, repo, verdict.digest, mt.SIGSTORE_BUNDLE_V03)
    for desc in found.descriptors:
        if not ours(desc.annotations):
            continue
        try:
            manifest = _doc(p.client.get_manifest(registry, repo, desc.digest).data, "referrer")
            layers = manifest.get("layers")
            if not isinstance(layers, list) or not layers or not isinstance(layers[0], dict):
                continue
            data = p.client.get_blob(registry, repo, str(layers[0].get("digest")))
            envelope = envelope_of_bundle(data)
        except DhiError:
            continue
        if site_vsa(envelope, key, verdict.digest) is not None:
            return envelope
    tagged = p.client.get_tag(registry, repo, names.attestation_tag(verdict.digest))
    if tagged is not None:
        layers = _doc(tagged.data, "attestation tag").get("layers")
        for layer in layers if isinstance(layers, list) else []:
            if not isinstance(layer, dict) or not ours(layer.get("annotations")):
                continue
            try:
                envelope = compact(
                    _doc(p.client.get_blob(registry, repo, str(layer.get("digest"))), "VSA")
                )
            except DhiError:
                continue
            if site_vsa(envelope, key, verdict.digest) is not None:
                return envelope
    return None


def _site_verdict(
    p: _Pusher,
    verdict: Verdict,
    key: SiteKey,
    *,
    time_verified: datetime,
    policy_name: str | None,
    policy_sha256: str | None,
    bundle_sha256: str,
) -> None:
    """Step 3 for one digest: the VSA (referrer and .att) and the image signature."""
    repository = verdict.repository
    where = f"{repository}@{verdict.digest}"
    annotations = {
        names.ANN_BUNDLE_SHA256: bundle_sha256,
        names.ANN_POLICY_SHA256: policy_sha256 or "none",
        names.ANN_SITE_KEY_ID: key.key_id,
        names.ANN_VERDICT: verdict.result,
        names.ANN_UNSAFE: "; ".join(verdict.unsafe) or "none",
    }
    # Reused only when bundle, policy, key, result and unsafe switches are all the same.
    envelope = _existing_vsa(p, verdict, key, annotations)
    if envelope is None:
        statement = vsa_statement(
            verdict,
            time_verified=time_verified,
            policy_name=policy_name,
            policy_sha256=policy_sha256,
            bundle_sha256=bundle_sha256,
        )
        envelope = dsse_envelope(statement, key)
    predicate = site_vsa(envelope, key, verdict.digest) or {}
    created = str(predicate.get("timeVerified") or format_rfc3339(time_verified))
    # (a) sigstore bundle v0.3 referrer, the layout cosign's new bundle format writes.
    bundle = sigstore_bundle(envelope, key)
    p.blob(repository, mt.EMPTY_JSON)
    p.blob(repository, bundle)
    manifest_doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "artifactType": mt.SIGSTORE_BUNDLE_V03,
        "config": {"mediaType": mt.OCI_EMPTY, "digest": mt.EMPTY_DIGEST, "size": 2},
        "layers": [
            {"mediaType": mt.SIGSTORE_BUNDLE_V03, "digest": sha256_of(bundle), "size": len(bundle)}
        ],
        "subject": _subject(p, verdict.digest),
        "annotations": {
            names.SIGSTORE_BUNDLE_CONTENT_ANNOTATION: "dsse-envelope",
            names.SIGSTORE_BUNDLE_PREDICATE_ANNOTATION: names.VSA_PREDICATE_TYPE,
            "org.opencontainers.image.created": created,
            **annotations,
        },
    }
    manifest = compact(manifest_doc)
    written = p.manifest(repository, manifest, mt.OCI_MANIFEST)
    p.refer(repository, manifest, manifest_doc)
    p.act("vsa", where, "pushed" if written else "present", f"{verdict.result} (referrer)")
    # (b) cosign's .att tag; an earlier VSA of this site key there is replaced.
    layer = {
        "mediaType": mt.DSSE_ENVELOPE,
        "digest": sha256_of(envelope),
        "size": len(envelope),
        "annotations": {
            names.COSIGN_PREDICATE_TYPE_ANNOTATION: names.VSA_PREDICATE_TYPE,
            names.COSIGN_SIGNATURE_ANNOTATION: "",
            **annotations,
        },
    }

    def older_vsa(existing: dict[str, Any]) -> bool:
        ann = existing.get("annotations")
        return (
            isinstance(ann, dict)
            and ann.get(names.ANN_SITE_KEY_ID) == key.key_id
            and existing.get("digest") != layer["digest"]
        )

    tag = names.attestation_tag(verdict.digest)
    status = p.tag_layers(repository, tag, [(layer, envelope)], drop=older_vsa)
    p.act("vsa", f"{repository}:{tag}", status, f"{verdict.result} (.att)")
    # (c) the image signature: only for a clean pass; a failure withdraws an earlier one.
    _image_signature(p, verdict, key)


def _subject(p: _Pusher, digest: str) -> dict[str, Any]:
    known = p.subjects.get(digest)
    if known is None:  # not mirrored yet (--allow-missing): the digest is what binds
        return {"mediaType": mt.OCI_MANIFEST, "digest": digest}
    return {"mediaType": known.media_type, "digest": digest, "size": known.size}


def _image_signature(p: _Pusher, verdict: Verdict, key: SiteKey) -> None:
    repository = verdict.repository
    tag = names.signature_tag(verdict.digest)
    payload = simple_signing_payload(verdict)
    payload_digest = sha256_of(payload)

    def signed_by_site(existing: dict[str, Any]) -> bool:
        if existing.get("digest") != payload_digest:
            return False
        ann = existing.get("annotations")
        value = ann.get(names.COSIGN_SIGNATURE_ANNOTATION) if isinstance(ann, dict) else None
        if not isinstance(value, str):
            return False
        try:
            key.public.verify(signature_from_annotation(value), payload)
        except DhiError:
            return False
        return True

    if not verdict.signable:
        status = p.tag_layers(repository, tag, [], drop=signed_by_site)
        why = "unsafe switch in force" if verdict.passed else "verdict FAILED"
        detail = f"not signed ({why})"
        if status == "revoked":
            detail += "; the site's earlier signature was removed"
        p.act(
            "signature",
            f"{repository}:{tag}",
            "revoked" if status == "revoked" else "skipped",
            detail,
        )
        return
    registry, repo = _split(repository)
    existing = p.client.get_tag(registry, repo, tag)
    if existing is not None:
        layers = _doc(existing.data, "signature tag").get("layers")
        if isinstance(layers, list) and any(
            isinstance(x, dict) and signed_by_site(x) for x in layers
        ):
            p.act("signature", f"{repository}:{tag}", "present", "site signature")
            return
    signature = base64.b64encode(key.sign(payload)).decode()
    layer = {
        "mediaType": mt.COSIGN_SIMPLESIGNING,
        "digest": payload_digest,
        "size": len(payload),
        "annotations": {names.COSIGN_SIGNATURE_ANNOTATION: signature},
    }
    status = p.tag_layers(repository, tag, [(layer, payload)])
    p.act("signature", f"{repository}:{tag}", status, "site signature")


def _images(p: _Pusher, targets: list[ImageTarget], allow_missing: bool) -> bool:
    """Step 1: every image and platform digest is served under its mapped name.

    Returns whether the push may go on.
    """
    problems = False
    for t in targets:
        registry, repo = t.target.registry, t.target.repository
        digests = [(t.view.digest, "index" if t.view.platforms else "image")]
        digests += [
            (plat.digest, plat.platform)
            for plat in t.view.platforms
            if plat.digest != t.view.digest
        ]
        for digest, label in digests:
            where = f"{t.repository}@{digest}"
            found = p.client.manifest_exists(registry, repo, digest)
            if found is not None:
                p.subjects[digest] = found
                p.act("image", where, "present", label)
                continue
            problems = True
            served = (
                p.client.manifest_exists(registry, repo, t.target.tag)
                if t.target.tag and digest == t.view.digest
                else None
            )
            if served is not None:
                p.act(
                    "image",
                    where,
                    "different",
                    f"{t.repository}:{t.target.tag} is {served.digest}, not the verified digest",
                )
            else:
                p.act("image", where, "missing", f"{label}: mirror it first (skopeo copy --all)")
    return allow_missing or not problems


def _fallback_indexes(p: _Pusher) -> None:
    """Step 4: the ``sha256-<hex>`` referrers index of each subject, where there is no API."""
    for (repository, subject), wanted in sorted(p.referrers.items()):
        registry, repo = _split(repository)
        found = p.client.referrers(registry, repo, subject)
        if found.via == "api":
            listed = {d.digest for d in found.descriptors}
            missing = [d for d in wanted if d not in listed]
            status: Status = "present" if not missing else "conflict"
            detail = "referrers API" + (
                f": {len(missing)} pushed referrer(s) not listed" if missing else ""
            )
            p.act("referrers", f"{repository}@{subject}", status, detail)
            continue
        tag = referrers_tag(subject)
        current = p.client.get_tag(registry, repo, tag)
        entries: list[dict[str, Any]] = []
        if current is not None:
            doc = _doc(current.data, f"referrers index {tag}")
            manifests = doc.get("manifests")
            entries = (
                [m for m in manifests if isinstance(m, dict)] if isinstance(manifests, list) else []
            )
        listed = {str(m.get("digest")) for m in entries}
        new = [d for digest, d in sorted(wanted.items()) if digest not in listed]
        if not new:
            p.act("referrers", f"{repository}:{tag}", "present", f"{len(entries)} listed")
            continue
        entries += [_descriptor_json(d) for d in new]
        index = compact({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": entries})
        p.client.push_manifest(registry, repo, tag, index, mt.OCI_INDEX)
        p.act("referrers", f"{repository}:{tag}", "pushed", f"{len(new)} added")


def _descriptor_json(d: Descriptor) -> dict[str, Any]:
    out: dict[str, Any] = {"mediaType": d.media_type, "digest": d.digest, "size": d.size}
    if d.artifact_type:
        out["artifactType"] = d.artifact_type
    if d.annotations:
        out["annotations"] = dict(d.annotations)
    return out


def bundle_artifact_manifest(
    manifest: BundleManifest, *, digest: str, size: int, name: str
) -> bytes:
    """The OCI manifest of a pushed bundle (``docs/format.md``, "The bundle in a registry").

    Everything in it comes from the signed bundle, so pushing the same bundle again
    gives the same digest.
    """
    return compact(
        {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "artifactType": names.BUNDLE_ARTIFACT_TYPE,
            "config": {"mediaType": mt.OCI_EMPTY, "digest": mt.EMPTY_DIGEST, "size": 2},
            "layers": [
                {
                    "mediaType": layout.MEDIA_TYPE,
                    "digest": digest,
                    "size": size,
                    "annotations": {"org.opencontainers.image.title": name},
                }
            ],
            "annotations": {
                "org.opencontainers.image.created": format_rfc3339(manifest.created),
                names.ANN_EXPORTER_KEY_ID: manifest.exporter_key_id,
                names.ANN_SEQUENCE: str(manifest.sequence),
            },
        }
    )


def _bundle(
    p: _Pusher, verified: VerifiedEvidenceBundle, bundle: Path, bundle_sha256: str, repository: str
) -> None:
    """Step 5: the bundle file as an OCI artifact, tagged per exporter and sequence."""
    manifest = verified.opened.manifest
    key_id = verified.opened.signer.key_id
    registry, repo = _split(repository)
    tag = names.bundle_tag(key_id, manifest.sequence)
    digest = "sha256:" + bundle_sha256
    size = bundle.stat().st_size
    name = (
        bundle.name if bundle.name.endswith(layout.FILE_SUFFIX) else f"bundle{layout.FILE_SUFFIX}"
    )
    doc = bundle_artifact_manifest(manifest, digest=digest, size=size, name=name)
    where = f"{repository}:{tag}"
    p.report.bundle_reference = where
    current = p.client.get_tag(registry, repo, tag)
    if current is not None and current.digest == sha256_of(doc):
        p.act("bundle", where, "present", f"{size} bytes")
        return
    if current is not None:
        p.act(
            "bundle",
            where,
            "conflict",
            f"the tag holds {current.digest}: another bundle with this exporter and "
            "sequence (left unchanged)",
        )
        return
    p.client.upload_blob(
        registry, repo, bundle, digest=digest, size=size, media_type=layout.MEDIA_TYPE
    )
    p.client.upload_blob(registry, repo, mt.EMPTY_JSON, digest=mt.EMPTY_DIGEST, size=2)
    p.client.push_manifest(registry, repo, sha256_of(doc), doc, mt.OCI_MANIFEST)
    p.client.push_manifest(registry, repo, tag, doc, mt.OCI_MANIFEST)
    p.act("bundle", where, "pushed", f"{size} bytes")


def push_verified(
    verified: VerifiedEvidenceBundle,
    *,
    bundle: Path,
    bundle_sha256: str,
    key: SiteKey,
    client: RegistryClient,
    options: PushOptions,
    time_verified: datetime,
    on_action: Callable[[Action], None] | None = None,
) -> PushReport:
    """Run the plan (module docstring) for a bundle that verified.

    Raises:
        RegistryError: a registry request failed (after retries); what was written
            before stays consistent, and a re-run completes it.
        UsageError: an image cannot be mapped to a name in the internal registry.
    """
    report = PushReport(bundle_sha256=bundle_sha256, site_key_id=key.key_id)
    p = _Pusher(client, report, on_action)
    opened = verified.opened
    index = (
        EvidenceIndex.from_json_bytes(opened.read_bytes(layout.EVIDENCE))
        if opened.has(layout.EVIDENCE)
        else EvidenceIndex(attestations=())
    )
    blobs = DirectoryBlobStore(opened.root / "blobs", memory=opened.unfiled(layout.BLOBS_PREFIX))
    targets = [
        ImageTarget(view, options.destination.name_for(view.reference))
        for view in verified.report.images
    ]
    report.verdicts = verdicts(verified.report, index, targets)
    if not _images(p, targets, options.allow_missing):
        report.stopped = "images are missing from the internal registry (see --allow-missing)"
        return report
    for t in targets:
        _publisher_evidence(p, t, index, blobs)
    for verdict in report.verdicts:
        _site_verdict(
            p,
            verdict,
            key,
            time_verified=time_verified,
            policy_name=verified.report.policy_name,
            policy_sha256=verified.report.policy_sha256,
            bundle_sha256=bundle_sha256,
        )
    _fallback_indexes(p)
    if options.push_bundle:
        repository = (
            options.bundle_repository or f"{options.destination.to}/{names.BUNDLE_REPOSITORY}"
        )
        _bundle(p, verified, bundle, bundle_sha256, repository)
    return report
