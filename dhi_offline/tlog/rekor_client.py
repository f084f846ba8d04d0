"""Export side: a small synchronous client of the Rekor v1 REST API, and pure checks of its answers.

The client fetches what an offline verifier later needs and keeps every response's exact
bytes (``raw``) so an archive can store them as they were served:

- ``GET /api/v1/log/entries?logIndex=N`` (and ``/api/v1/log/entries/{uuid}``): one
  entry, ``{uuid: {body, integratedTime, logID, logIndex, verification:
  {inclusionProof{logIndex, rootHash, treeSize, hashes, checkpoint}, signedEntryTimestamp}}}``;
- ``GET /api/v1/log``: the current tree head (``rootHash``, ``treeSize``,
  ``signedTreeHead``, ``treeID``, ``inactiveShards``);
- ``GET /api/v1/log/proof?firstSize=&lastSize=[&treeID=]``: a consistency proof.

Hashes are hex in the Rekor API (base64 in sigstore bundles). The entry's ``logIndex`` is
the global (virtual) index the SET signs; ``inclusionProof.logIndex`` is the leaf index
inside the current shard's tree. Both are kept.

The functions after the client do no I/O: :func:`parse_log_entry` and friends re-read
archived bytes, :func:`verify_rekor_entry` checks an entry's SET, inclusion proof and
checkpoint against a trusted log, and :func:`entry_to_bundle_tlog_entry` writes the entry
as a sigstore bundle ``tlogEntries[]`` member.

Failures: the log unreachable or answering an HTTP error -> :class:`RekorError` (one line
naming the URL; 429, 5xx and connection errors are retried with exponential backoff
first); an answer that is not the documented JSON -> :class:`MalformedEvidenceError`.
"""

from __future__ import annotations

import base64
import hmac
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import httpx

from dhi_offline import __version__
from dhi_offline.errors import (
    CheckpointError,
    InclusionProofError,
    LogEntryBindingError,
    MalformedEvidenceError,
    RekorError,
    SignedEntryTimestampError,
    TransparencyLogError,
    UsageError,
    ValidityWindowError,
)
from dhi_offline.evidence.encoding import (
    b64decode,
    loads_json,
    require_dict,
    require_int,
    require_str,
)
from dhi_offline.tlog.checkpoint import (
    Checkpoint,
    parse_checkpoint,
    verify_checkpoint,
    verify_checkpoint_matches,
)
from dhi_offline.tlog.merkle import leaf_hash, verify_inclusion
from dhi_offline.tlog.set import verify_signed_entry_timestamp
from dhi_offline.trust.timerange import format_rfc3339
from dhi_offline.trust.trusted_root import LogInstance

DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRIES = 3
DEFAULT_BACKOFF = 0.5
MAX_BACKOFF = 30.0
MAX_RESPONSE_BYTES = 32 * 1024 * 1024
"""Refuse answers larger than this (a Rekor entry is a few KiB; proofs are smaller)."""

_RETRY_STATUSES = frozenset({408, 425, 429})


# ---------------------------------------------------------------------------- data


@dataclass(frozen=True)
class RekorInclusionProof:
    """``verification.inclusionProof`` of a Rekor v1 entry (hashes decoded from hex)."""

    log_index: int
    """Leaf index inside the tree of ``tree_size`` leaves (tree-local, not global)."""
    root_hash: bytes
    tree_size: int
    hashes: tuple[bytes, ...]
    """Sibling hashes from the leaf up to the root."""
    checkpoint: str | None
    """The signed note committing to ``root_hash`` and ``tree_size``."""


@dataclass(frozen=True)
class RekorEntry:
    """One Rekor v1 log entry as the API served it."""

    uuid: str
    """The key of the response object (``[tree id hex] || leaf hash hex``)."""
    body: bytes
    """The canonicalized entry body (the Merkle leaf), decoded from base64."""
    integrated_time: int
    log_id: bytes
    log_index: int
    """The global (virtual) log index: the one the SET signs and bundles carry."""
    signed_entry_timestamp: bytes | None
    inclusion_proof: RekorInclusionProof | None
    raw: bytes
    """The exact response bytes."""

    @property
    def body_b64(self) -> str:
        """The body in standard base64 (as the SET signs it)."""
        return base64.b64encode(self.body).decode()

    @property
    def leaf_hash(self) -> bytes:
        """RFC 6962 leaf hash of the body."""
        return leaf_hash(self.body)

    def kind_version(self) -> tuple[str, str]:
        """``(kind, apiVersion)`` read from the body.

        Raises:
            MalformedEvidenceError: the body is not a JSON entry with both fields.
        """
        doc = require_dict(loads_json(self.body, what="Rekor entry body"), what="Rekor entry body")
        return (
            require_str(doc.get("kind"), what="Rekor entry body kind"),
            require_str(doc.get("apiVersion"), what="Rekor entry body apiVersion"),
        )


@dataclass(frozen=True)
class ShardInfo:
    """A tree head of one (active or inactive) shard of the log."""

    root_hash: bytes
    tree_size: int
    signed_tree_head: str
    """The signed checkpoint note for ``root_hash`` and ``tree_size``."""
    tree_id: str


@dataclass(frozen=True)
class LogInfo:
    """``GET /api/v1/log``: the active shard's tree head, plus inactive shards."""

    root_hash: bytes
    tree_size: int
    signed_tree_head: str
    tree_id: str
    inactive_shards: tuple[ShardInfo, ...]
    raw: bytes
    """The exact response bytes."""


@dataclass(frozen=True)
class ConsistencyProof:
    """``GET /api/v1/log/proof``: the proof from ``first_size`` to ``last_size``."""

    first_size: int
    last_size: int
    tree_id: str | None
    root_hash: bytes
    """The root of the ``last_size`` tree as the log states it (unsigned by itself)."""
    hashes: tuple[bytes, ...]
    raw: bytes
    """The exact response bytes."""


# ---------------------------------------------------------------------------- parsing


def _hex_hash(value: object, *, what: str) -> bytes:
    text = require_str(value, what=what)
    if len(text) != 64:
        raise MalformedEvidenceError(f"{what}: expected 64 hex digits")
    try:
        return bytes.fromhex(text)
    except ValueError as e:
        raise MalformedEvidenceError(f"{what}: not hex") from e


def _hex_list(value: object, *, what: str) -> tuple[bytes, ...]:
    if not isinstance(value, list):
        raise MalformedEvidenceError(f"{what}: expected a list")
    return tuple(_hex_hash(h, what=f"{what}[{i}]") for i, h in enumerate(value))


def _tree_id(value: object, *, what: str) -> str:
    # Rekor writes treeID as a decimal string; accept a JSON number too.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    text = require_str(value, what=what)
    if not text.isdigit():
        raise MalformedEvidenceError(f"{what}: expected a decimal tree id")
    return text


def _inclusion_proof(obj: object) -> RekorInclusionProof:
    what = "Rekor inclusionProof"
    p = require_dict(obj, what=what)
    checkpoint = p.get("checkpoint")
    if checkpoint is not None:
        checkpoint = require_str(checkpoint, what=f"{what}.checkpoint") or None
    return RekorInclusionProof(
        log_index=require_int(p.get("logIndex"), what=f"{what}.logIndex"),
        root_hash=_hex_hash(p.get("rootHash"), what=f"{what}.rootHash"),
        tree_size=require_int(p.get("treeSize"), what=f"{what}.treeSize", minimum=1),
        hashes=_hex_list(p.get("hashes", []), what=f"{what}.hashes"),
        checkpoint=checkpoint,
    )


def parse_log_entry(raw: bytes) -> RekorEntry:
    """Parse a Rekor ``LogEntry`` response holding exactly one entry.

    Raises:
        MalformedEvidenceError: not JSON, not exactly one entry, or a field is missing or
            badly encoded.
    """
    doc = require_dict(loads_json(raw, what="Rekor log entry"), what="Rekor log entry")
    if len(doc) != 1:
        raise MalformedEvidenceError(f"Rekor log entry: expected one entry, got {len(doc)}")
    ((uuid, obj),) = doc.items()
    what = f"Rekor log entry {uuid[:24]}"
    e = require_dict(obj, what=what)
    body = b64decode(e.get("body"), what=f"{what}.body")
    if not body:
        raise MalformedEvidenceError(f"{what}: empty body")
    log_id_hex = require_str(e.get("logID"), what=f"{what}.logID")
    try:
        log_id = bytes.fromhex(log_id_hex)
    except ValueError as err:
        raise MalformedEvidenceError(f"{what}.logID: not hex") from err
    set_sig: bytes | None = None
    proof: RekorInclusionProof | None = None
    verification = e.get("verification")
    if verification is not None:
        v = require_dict(verification, what=f"{what}.verification")
        if v.get("signedEntryTimestamp") is not None:
            set_sig = (
                b64decode(v["signedEntryTimestamp"], what=f"{what}.signedEntryTimestamp") or None
            )
        if v.get("inclusionProof") is not None:
            proof = _inclusion_proof(v["inclusionProof"])
    return RekorEntry(
        uuid=uuid,
        body=body,
        integrated_time=require_int(e.get("integratedTime"), what=f"{what}.integratedTime"),
        log_id=log_id,
        log_index=require_int(e.get("logIndex"), what=f"{what}.logIndex"),
        signed_entry_timestamp=set_sig,
        inclusion_proof=proof,
        raw=raw,
    )


def _shard(obj: object, what: str) -> ShardInfo:
    d = require_dict(obj, what=what)
    return ShardInfo(
        root_hash=_hex_hash(d.get("rootHash"), what=f"{what}.rootHash"),
        tree_size=require_int(d.get("treeSize"), what=f"{what}.treeSize"),
        signed_tree_head=require_str(d.get("signedTreeHead"), what=f"{what}.signedTreeHead"),
        tree_id=_tree_id(d.get("treeID"), what=f"{what}.treeID"),
    )


def parse_log_info(raw: bytes) -> LogInfo:
    """Parse a ``GET /api/v1/log`` response.

    Raises:
        MalformedEvidenceError: not JSON or a field is missing or badly encoded.
    """
    what = "Rekor log info"
    doc = require_dict(loads_json(raw, what=what), what=what)
    head = _shard(doc, what)
    shards_obj = doc.get("inactiveShards") or []
    if not isinstance(shards_obj, list):
        raise MalformedEvidenceError(f"{what}.inactiveShards: expected a list")
    return LogInfo(
        root_hash=head.root_hash,
        tree_size=head.tree_size,
        signed_tree_head=head.signed_tree_head,
        tree_id=head.tree_id,
        inactive_shards=tuple(
            _shard(s, f"{what}.inactiveShards[{i}]") for i, s in enumerate(shards_obj)
        ),
        raw=raw,
    )


def parse_consistency_proof(
    raw: bytes, *, first_size: int, last_size: int, tree_id: str | None = None
) -> ConsistencyProof:
    """Parse a ``GET /api/v1/log/proof`` response (the sizes are the request's).

    Raises:
        MalformedEvidenceError: not JSON or a field is missing or badly encoded.
    """
    what = "Rekor consistency proof"
    doc = require_dict(loads_json(raw, what=what), what=what)
    return ConsistencyProof(
        first_size=first_size,
        last_size=last_size,
        tree_id=tree_id,
        root_hash=_hex_hash(doc.get("rootHash"), what=f"{what}.rootHash"),
        hashes=_hex_list(doc.get("hashes", []), what=f"{what}.hashes"),
        raw=raw,
    )


# ---------------------------------------------------------------------------- client


def _one_line(text: str, limit: int = 300) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _api_message(body: bytes) -> str:
    """Rekor's ``{"code", "message"}`` error text, if the body is one."""
    try:
        doc = loads_json(body, what="Rekor error")
    except MalformedEvidenceError:
        return _one_line(body.decode("utf-8", "replace"), 120)
    if isinstance(doc, dict) and isinstance(doc.get("message"), str):
        return _one_line(doc["message"], 120)
    return ""


class RekorClient:
    """A synchronous Rekor v1 API client (``httpx``) with retries.

    Args:
        base_url: the log's URL, e.g. ``https://rekor.sigstore.dev``.
        transport: an ``httpx`` transport (tests pass ``httpx.MockTransport``).
        timeout: seconds per request.
        retries: how many times a request is retried after a connection error, a
            timeout, HTTP 429 or a 5xx answer (so at most ``retries + 1`` attempts).
        backoff: the first retry waits this many seconds, doubling each time (capped
            at 30 s); a numeric ``Retry-After`` header is honoured up to the same cap.
        sleep: the sleep function (tests pass a no-op).
        max_response_bytes: refuse larger answers.

    Use as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        base_url: str,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        backoff: float = DEFAULT_BACKOFF,
        sleep: Callable[[float], None] = time.sleep,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        url = base_url.strip().rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise UsageError(f"Rekor URL must start with http:// or https://, got {base_url!r}")
        if retries < 0:
            raise UsageError("retries must be >= 0")
        self.base_url = url
        self._retries = retries
        self._backoff = backoff
        self._sleep = sleep
        self._max = max_response_bytes
        try:
            self._client = httpx.Client(
                base_url=url,
                transport=transport,
                timeout=timeout,
                follow_redirects=True,
                headers={
                    "Accept": "application/json",
                    "User-Agent": f"dhi-offline/{__version__}",
                },
            )
        except (httpx.InvalidURL, ValueError) as e:
            raise UsageError(f"invalid Rekor URL {base_url!r}: {e}") from e

    def __enter__(self) -> RekorClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the underlying connection pool."""
        self._client.close()

    # ------------------------------------------------------------------ API calls

    def entry_by_index(self, log_index: int) -> RekorEntry:
        """The entry at global ``log_index``, with its SET, inclusion proof and checkpoint.

        Raises:
            RekorError: the log is unreachable or answered with an error (404 included).
            MalformedEvidenceError: the answer is not a Rekor log entry.
            TransparencyLogError: the log answered with an entry at another index.
        """
        if log_index < 0:
            raise UsageError(f"log index must be >= 0, got {log_index}")
        raw = self._get("/api/v1/log/entries", {"logIndex": str(log_index)})
        entry = parse_log_entry(raw)
        if entry.log_index != log_index:
            raise TransparencyLogError(
                f"{self.base_url} answered the request for log index {log_index} with "
                f"entry {entry.log_index}"
            )
        return entry

    def entry_by_uuid(self, uuid: str) -> RekorEntry:
        """The entry whose UUID (``[tree id] || leaf hash`` hex) is ``uuid``.

        Raises:
            RekorError, MalformedEvidenceError: as :meth:`entry_by_index`.
            TransparencyLogError: the answer is for a different leaf.
        """
        text = uuid.strip().lower()
        if len(text) not in (64, 80) or any(c not in "0123456789abcdef" for c in text):
            raise UsageError(f"not a Rekor entry UUID: {uuid!r}")
        raw = self._get(f"/api/v1/log/entries/{text}", None)
        entry = parse_log_entry(raw)
        if not hmac.compare_digest(entry.leaf_hash.hex(), text[-64:]):
            raise TransparencyLogError(
                f"{self.base_url} answered the request for entry {text[-64:][:16]}… with "
                f"a different entry body"
            )
        return entry

    def log_info(self) -> LogInfo:
        """The log's current tree head (``GET /api/v1/log``).

        Raises:
            RekorError: the log is unreachable or answered with an error.
            MalformedEvidenceError: the answer is not a Rekor log info object.
        """
        return parse_log_info(self._get("/api/v1/log", None))

    def consistency_proof(
        self, first_size: int, last_size: int, tree_id: str | None = None
    ) -> ConsistencyProof:
        """A proof that the tree of ``last_size`` leaves extends that of ``first_size``.

        Check it with :func:`dhi_offline.tlog.merkle.verify_consistency` against two
        roots from verified checkpoints (the ``root_hash`` the log returns is unsigned).

        Raises:
            UsageError: sizes out of order (Rekor requires ``1 <= first <= last``).
            RekorError: the log is unreachable or answered with an error.
            MalformedEvidenceError: the answer is not a consistency proof.
        """
        if first_size < 1 or last_size < first_size:
            raise UsageError(
                f"consistency proof sizes must satisfy 1 <= first <= last, got "
                f"{first_size} and {last_size}"
            )
        params = {"firstSize": str(first_size), "lastSize": str(last_size)}
        if tree_id is not None:
            params["treeID"] = str(tree_id)
        raw = self._get("/api/v1/log/proof", params)
        return parse_consistency_proof(
            raw, first_size=first_size, last_size=last_size, tree_id=tree_id
        )

    # ------------------------------------------------------------------ transport

    def _url(self, path: str, params: Mapping[str, str] | None) -> str:
        return self.base_url + path + (f"?{urlencode(params)}" if params else "")

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        delay = self._backoff * float(1 << attempt)
        if retry_after is not None and retry_after.strip().isdigit():
            delay = max(delay, float(retry_after.strip()))
        return min(delay, MAX_BACKOFF)

    def _get(self, path: str, params: Mapping[str, str] | None) -> bytes:
        url = self._url(path, params)
        attempts = self._retries + 1
        last = ""
        status: int | None = None
        for attempt in range(attempts):
            retry_after: str | None = None
            try:
                with self._client.stream("GET", path, params=params) as resp:
                    status = resp.status_code
                    if status in _RETRY_STATUSES or status >= 500:
                        last = f"HTTP {status}"
                        retry_after = resp.headers.get("Retry-After")
                    else:
                        body = self._read(resp, url)
                        if not 200 <= status < 300:
                            detail = _api_message(body)
                            raise RekorError(
                                f"Rekor GET {url} failed: HTTP {status}"
                                + (f" ({detail})" if detail else ""),
                                url=url,
                                status=status,
                            )
                        return body
            except httpx.TransportError as e:
                status = None
                last = _one_line(f"{type(e).__name__}: {e}" if str(e) else type(e).__name__)
            except httpx.HTTPError as e:  # decoding errors, too many redirects: not retried
                raise RekorError(
                    _one_line(f"Rekor GET {url} failed: {type(e).__name__}: {e}"), url=url
                ) from e
            if attempt + 1 < attempts:
                self._sleep(self._delay(attempt, retry_after))
        raise RekorError(
            _one_line(
                f"Rekor GET {url} failed after {attempts} attempt"
                f"{'s' if attempts > 1 else ''}: {last}"
            ),
            url=url,
            status=status,
        )

    def _read(self, resp: httpx.Response, url: str) -> bytes:
        chunks: list[bytes] = []
        total = 0
        for chunk in resp.iter_bytes():
            total += len(chunk)
            if total > self._max:
                raise RekorError(
                    f"Rekor GET {url} failed: answer larger than {self._max} bytes", url=url
                )
            chunks.append(chunk)
        return b"".join(chunks)


# ---------------------------------------------------------------------------- pure checks


def verify_rekor_entry(
    entry: RekorEntry, log: LogInstance, *, expected_body: bytes | None
) -> Checkpoint:
    """Check an entry fetched from ``log`` completely, with no I/O.

    In order: the body is ``expected_body`` (when given: the body a bundle or cosign
    annotation already carries); the UUID names this body's leaf hash; the SET verifies
    with the log's key and the integrated time is inside the log's validity window; the
    RFC 6962 inclusion proof leads from the body's leaf hash to the proof's root; the
    checkpoint is signed by the log and commits to that root and tree size.

    Returns:
        The verified checkpoint.

    Raises:
        LogEntryBindingError: the entry's body is not ``expected_body``.
        TransparencyLogError: the UUID names another leaf.
        SignedEntryTimestampError: no SET, wrong log id, or a SET that does not verify.
        ValidityWindowError: integrated outside the log key's validity.
        InclusionProofError: no inclusion proof, or one that does not lead to its root.
        CheckpointError: no checkpoint, a bad signature, or another root or size.
    """
    where = f"Rekor entry {entry.log_index}"
    if expected_body is not None and not hmac.compare_digest(entry.body, expected_body):
        raise LogEntryBindingError(f"{where} has a different body than the evidence records")
    lh = leaf_hash(entry.body)
    if len(entry.uuid) >= 64 and not hmac.compare_digest(entry.uuid[-64:].lower(), lh.hex()):
        raise TransparencyLogError(f"{where}: its UUID does not name its body's leaf hash")
    if entry.signed_entry_timestamp is None:
        raise SignedEntryTimestampError(f"{where} carries no signed entry timestamp")
    verify_signed_entry_timestamp(
        body_b64=entry.body_b64,
        integrated_time=entry.integrated_time,
        log_index=entry.log_index,
        log_id=entry.log_id,
        signature=entry.signed_entry_timestamp,
        log=log,
    )
    when = datetime.fromtimestamp(entry.integrated_time, UTC)
    if not log.valid_for.contains(when):
        raise ValidityWindowError(
            f"{where} was integrated at {format_rfc3339(when)}, outside the validity of "
            f"log {log.base_url or log.log_id.hex()}"
        )
    proof = entry.inclusion_proof
    if proof is None:
        raise InclusionProofError(f"{where} carries no inclusion proof")
    verify_inclusion(
        leaf_hash=lh,
        index=proof.log_index,
        tree_size=proof.tree_size,
        proof=proof.hashes,
        root=proof.root_hash,
    )
    if proof.checkpoint is None:
        raise CheckpointError(f"{where}: its inclusion proof carries no checkpoint")
    checkpoint = parse_checkpoint(proof.checkpoint)
    verify_checkpoint(checkpoint, log)
    verify_checkpoint_matches(checkpoint, root_hash=proof.root_hash, tree_size=proof.tree_size)
    return checkpoint


def verify_log_info(info: LogInfo | ShardInfo, log: LogInstance) -> Checkpoint:
    """Check that a tree head's ``signedTreeHead`` is signed by ``log`` and matches it.

    Raises:
        CheckpointError: malformed, unsigned by the log, or for another root or size.
    """
    checkpoint = parse_checkpoint(info.signed_tree_head)
    verify_checkpoint(checkpoint, log)
    verify_checkpoint_matches(checkpoint, root_hash=info.root_hash, tree_size=info.tree_size)
    return checkpoint


def entry_to_bundle_tlog_entry(
    entry: RekorEntry, kind: str | None = None, version: str | None = None
) -> dict[str, Any]:
    """The entry as a sigstore bundle ``verificationMaterial.tlogEntries[]`` member.

    protobuf JSON mapping: bytes as standard base64 (hex hashes and log id converted),
    int64 values as decimal strings. ``inclusionPromise`` is written when the entry has a
    SET, ``inclusionProof`` (with ``checkpoint.envelope``) when it has a proof. ``kind``
    and ``version`` default to the body's own ``kind`` and ``apiVersion``.

    Raises:
        MalformedEvidenceError: kind/version not given and the body does not name them.
    """
    if kind is None or version is None:
        body_kind, body_version = entry.kind_version()
        kind = kind or body_kind
        version = version or body_version

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    out: dict[str, Any] = {
        "logIndex": str(entry.log_index),
        "logId": {"keyId": b64(entry.log_id)},
        "kindVersion": {"kind": kind, "version": version},
        "integratedTime": str(entry.integrated_time),
    }
    if entry.signed_entry_timestamp is not None:
        out["inclusionPromise"] = {"signedEntryTimestamp": b64(entry.signed_entry_timestamp)}
    proof = entry.inclusion_proof
    if proof is not None:
        p: dict[str, Any] = {
            "logIndex": str(proof.log_index),
            "rootHash": b64(proof.root_hash),
            "treeSize": str(proof.tree_size),
            "hashes": [b64(h) for h in proof.hashes],
        }
        if proof.checkpoint is not None:
            p["checkpoint"] = {"envelope": proof.checkpoint}
        out["inclusionProof"] = p
    out["canonicalizedBody"] = b64(entry.body)
    return out


def rekor_entry_uuid(body: bytes, tree_id: int | None = None) -> str:
    """The UUID Rekor gives an entry: the leaf hash hex, prefixed by the 16-hex tree id."""
    lh = leaf_hash(body).hex()
    return lh if tree_id is None else f"{tree_id:016x}{lh}"
