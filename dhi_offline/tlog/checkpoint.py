"""Transparency-log checkpoints: C2SP signed notes as Rekor v1 and v2 write them.

A checkpoint is a signed note (c2sp.org/signed-note) whose text is a tree head
(c2sp.org/tlog-checkpoint)::

    <origin>\\n<tree size>\\n<base64 root hash>\\n[<extension line>\\n]*
    \\n
    — <key name> <base64(4-byte key hint || signature)>\\n   (one or more)

Rekor v1 writes the origin ``"<host> - <tree id>"``, an optional ``Timestamp:`` line,
and signs as ``<host>`` with an ECDSA key whose hint is ``SHA-256(DER SPKI)[:4]``.
Rekor v2 writes the origin ``<host>``, signs as ``<host>`` with an Ed25519 key whose
C2SP key id is ``SHA-256(name || 0x0A || 0x01 || raw key)``, and may carry witness
cosignatures on further lines.

Parsing is strict (control characters, empty text lines, non-canonical sizes and
malformed signature lines are refused, as ``golang.org/x/mod/sumdb/note`` and the
C2SP specs require). Which signature lines count as "the log's" is decided in
:func:`verify_checkpoint`; see there.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass

from dhi_offline.errors import CheckpointError, SignatureError
from dhi_offline.trust.keys import PublicKey
from dhi_offline.trust.trusted_root import LogInstance

SIGNATURE_PREFIX = "\u2014 "
"""Every signature line starts with an EM DASH and a space."""

MAX_SIGNATURES = 100
"""Refuse notes with more signature lines than this (the Go note package's limit)."""

_ED25519_SIG_TYPE = b"\x01"
_SIZE_RE = re.compile(r"0|[1-9][0-9]*")
_BASE64_RE = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
_CONTROL_RE = re.compile(r"[\x00-\x09\x0b-\x1f]")
_SPACE_RE = re.compile(r"\s")


@dataclass(frozen=True)
class NoteSignature:
    """One signature line of a signed note."""

    name: str
    """Key name (for Rekor, the log's host name)."""
    hint: bytes
    """The 4-byte key id (key hint) that starts the decoded signature."""
    signature: bytes
    """The signature proper, without the hint."""


@dataclass(frozen=True)
class Checkpoint:
    """A parsed (not yet verified) checkpoint."""

    origin: str
    tree_size: int
    root_hash: bytes
    other_lines: tuple[str, ...]
    """Extension lines after the root hash (Rekor v1 writes ``Timestamp: <ns>``)."""
    signed_text: bytes
    """The exact bytes the signatures cover: the note text including its final newline."""
    signatures: tuple[NoteSignature, ...]


def _b64decode(text: str) -> bytes:
    # Standard alphabet with padding only; Python's decoder alone is more forgiving.
    if not _BASE64_RE.fullmatch(text):
        raise ValueError("not standard padded base64")
    return base64.b64decode(text, validate=True)


def _valid_key_name(name: str) -> bool:
    # C2SP signed-note: non-empty, no Unicode spaces, no '+'. The regex's \s is the
    # same Unicode whitespace class as str.isspace, without a generator per character.
    return bool(name) and "+" not in name and _SPACE_RE.search(name) is None


def _parse_signature_line(line: str, number: int) -> NoteSignature:
    where = f"checkpoint signature line {number}"
    if not line.startswith(SIGNATURE_PREFIX):
        raise CheckpointError(f"{where} does not start with an em dash and a space")
    name, sep, b64 = line[len(SIGNATURE_PREFIX) :].partition(" ")
    if not sep or not _valid_key_name(name):
        raise CheckpointError(f"{where} has no valid key name")
    try:
        raw = _b64decode(b64)
    except (ValueError, binascii.Error) as e:
        raise CheckpointError(f"{where} ({name}): signature is not valid base64") from e
    if len(raw) < 5:
        raise CheckpointError(f"{where} ({name}): signature is too short")
    return NoteSignature(name=name, hint=raw[:4], signature=raw[4:])


MAX_CHECKPOINT_LENGTH = 64 * 1024
"""Longest checkpoint accepted (Rekor's are under 1 KiB, cosignatures included)."""


def parse_checkpoint(envelope: str) -> Checkpoint:
    """Parse a checkpoint envelope (``inclusionProof.checkpoint.envelope``).

    The text and the signature block are split at the LAST blank line; the signed text
    is everything before it including its final newline. The text must hold a
    non-empty origin, a canonical decimal tree size and a base64 32-byte root hash,
    then optional non-empty extension lines. Signatures are not checked here.

    Raises:
        CheckpointError: the envelope is not a well-formed signed checkpoint.
    """
    if len(envelope) > MAX_CHECKPOINT_LENGTH:
        # Real checkpoints are a few hundred bytes; refuse before splitting into lines.
        raise CheckpointError(f"checkpoint is longer than {MAX_CHECKPOINT_LENGTH} characters")
    try:
        envelope.encode("utf-8")
    except UnicodeEncodeError as e:
        raise CheckpointError("checkpoint is not valid UTF-8 text") from e
    if _CONTROL_RE.search(envelope):
        raise CheckpointError("checkpoint contains control characters other than newline")

    split = envelope.rfind("\n\n")
    if split < 0:
        raise CheckpointError("checkpoint has no blank line before its signatures")
    text, sig_block = envelope[: split + 1], envelope[split + 2 :]
    if not sig_block:
        raise CheckpointError("checkpoint has no signature lines")
    if not sig_block.endswith("\n"):
        raise CheckpointError("checkpoint signature block does not end with a newline")

    sig_lines = sig_block[:-1].split("\n")
    if len(sig_lines) > MAX_SIGNATURES:
        raise CheckpointError(f"checkpoint has more than {MAX_SIGNATURES} signatures")
    signatures = tuple(_parse_signature_line(line, i) for i, line in enumerate(sig_lines, start=1))

    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise CheckpointError(
            "checkpoint text must have origin, tree size and root hash lines; "
            f"found {len(lines)} line(s)"
        )
    if any(not line for line in lines):
        # Also catches a missing origin: an empty first line.
        raise CheckpointError("checkpoint text contains an empty line")
    origin, size_text, root_text = lines[0], lines[1], lines[2]
    if not _SIZE_RE.fullmatch(size_text):
        raise CheckpointError(f"checkpoint tree size {size_text[:40]!r} is not a decimal number")
    tree_size = int(size_text)
    if tree_size > 2**64 - 1:
        raise CheckpointError("checkpoint tree size is out of range")
    try:
        root_hash = _b64decode(root_text)
    except (ValueError, binascii.Error) as e:
        raise CheckpointError(f"checkpoint root hash {root_text[:60]!r} is not base64") from e
    if len(root_hash) != 32:
        raise CheckpointError(
            f"checkpoint root hash is {len(root_hash)} bytes, not a 32-byte SHA-256 hash"
        )
    return Checkpoint(
        origin=origin,
        tree_size=tree_size,
        root_hash=root_hash,
        other_lines=tuple(lines[3:]),
        signed_text=text.encode("utf-8"),
        signatures=signatures,
    )


def ed25519_key_id(name: str, key: PublicKey) -> bytes:
    """C2SP signed-note key id of an Ed25519 key: ``SHA-256(name || 0x0A || 0x01 || key)``.

    Its first 4 bytes are the key hint. Rekor v2 trusted roots give this full value as
    the log id. Useful for building test logs and trusted roots.

    Raises:
        TrustMaterialError: ``key`` is not an Ed25519 key.
    """
    return hashlib.sha256(
        name.encode("utf-8") + b"\n" + _ED25519_SIG_TYPE + key.raw_ed25519()
    ).digest()


def _log_key_id(log: LogInstance) -> bytes:
    return log.checkpoint_key_id or log.log_id


def _is_log_signature(sig: NoteSignature, log: LogInstance, key: PublicKey) -> bool:
    """Whether ``sig`` claims to be by the log's key (C2SP: by name AND key id)."""
    if not hmac.compare_digest(sig.hint, log.checkpoint_hint):
        return False
    if key.algorithm == "ed25519":
        # The C2SP key id commits to the key name as well as the key, so the name
        # on the line must be the one the trusted root's log id was computed for.
        return hmac.compare_digest(ed25519_key_id(sig.name, key), _log_key_id(log))
    # ECDSA/RSA (Rekor v1): the hint is SHA-256 of the DER key alone; the line's name
    # is not part of the key's identity (see verify_checkpoint).
    return True


def _verify_note_signature(key: PublicKey, sig: NoteSignature, text: bytes) -> None:
    if key.algorithm == "ed25519":
        key.verify(sig.signature, text)  # Ed25519 signs the note text itself
    else:
        # Rekor signs SHA-256(note) with ECDSA/RSA keys, whatever the curve.
        key.verify_digest(sig.signature, hashlib.sha256(text).digest())


def verify_checkpoint(checkpoint: Checkpoint, log: LogInstance) -> None:
    """Check that ``checkpoint`` is signed by the transparency log ``log``.

    Which lines are "the log's signature" (decided from the sigstore conformance
    suite, C2SP signed-note and sigstore-go):

    * A line is the log's when its hint equals ``log.checkpoint_hint`` and, for an
      Ed25519 (Rekor v2) log, ``SHA-256(name || 0x0A || 0x01 || key)`` equals the
      trusted root's full key id, i.e. the line's name is the name the log's id was
      made for. For ECDSA/RSA (Rekor v1) logs the hint is name-independent and the
      name is not checked, like Rekor, sigstore-go and sigstore-python.
    * Every other line (witness cosignatures, other keys sharing the log's name or
      hint but not both) is ignored, as C2SP requires.
    * At least one line must be the log's, and every line that is the log's must
      verify with ``log.key`` over :attr:`Checkpoint.signed_text` (ECDSA/RSA over its
      SHA-256 digest, Ed25519 over the raw text). C2SP says a failing signature
      from a known key SHOULD reject the whole note; we do.
    * For Ed25519 logs the checkpoint origin must equal the signing name, as
      sigstore-go requires of Rekor v2 (origin == log host == key name). Rekor v1
      origins are ``"<host> - <tree id>"``; they are not checked, as upstream does
      not either (one v1 key signs several shards).

    The log's validity window is not checked here (a checkpoint carries no trusted
    time). Root hash and size are compared by :func:`verify_checkpoint_matches`.

    Raises:
        CheckpointError: no usable log key, no signature line from the log, a
            log signature that does not verify, or a wrong origin.
    """
    key = log.key
    if key is None:
        raise CheckpointError(
            f"transparency log {log.base_url or log.log_id.hex()} has a key type this "
            "tool cannot use"
        )
    where = log.base_url or log.log_id.hex()[:16]
    ours = [s for s in checkpoint.signatures if _is_log_signature(s, log, key)]
    if not ours:
        names = ", ".join(f"{s.name} ({s.hint.hex()})" for s in checkpoint.signatures)
        raise CheckpointError(
            f"checkpoint has no signature from log {where} (key hint "
            f"{log.checkpoint_hint.hex()}); signature lines: {names}"
        )
    for sig in ours:
        try:
            _verify_note_signature(key, sig, checkpoint.signed_text)
        except SignatureError as e:
            raise CheckpointError(
                f"checkpoint signature by {sig.name} does not verify with the key of log {where}"
            ) from e
    if key.algorithm == "ed25519":
        for sig in ours:
            if checkpoint.origin != sig.name:
                raise CheckpointError(
                    f"checkpoint origin {checkpoint.origin!r} is not the log's name {sig.name!r}"
                )


def verify_checkpoint_matches(checkpoint: Checkpoint, *, root_hash: bytes, tree_size: int) -> None:
    """Check that a (verified) checkpoint commits to the inclusion proof's tree head.

    Both the root hash and the tree size must be equal: the root alone does not pin
    the size an inclusion proof was checked against.

    Raises:
        CheckpointError: the checkpoint is for a different tree size or root.
    """
    if checkpoint.tree_size != tree_size:
        raise CheckpointError(
            f"checkpoint is for tree size {checkpoint.tree_size}, the inclusion proof "
            f"for tree size {tree_size}"
        )
    if not hmac.compare_digest(checkpoint.root_hash, bytes(root_hash)):
        raise CheckpointError(
            f"checkpoint root hash {checkpoint.root_hash.hex()} differs from the inclusion "
            f"proof's root hash {bytes(root_hash).hex()}"
        )
