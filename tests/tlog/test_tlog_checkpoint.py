"""Checkpoint (signed note) parsing and verification with freshly generated log keys."""

from __future__ import annotations

import base64
import contextlib
import hashlib
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from hypothesis import given, settings
from hypothesis import strategies as st

from dhi_offline.errors import CheckpointError
from dhi_offline.tlog.checkpoint import (
    Checkpoint,
    NoteSignature,
    ed25519_key_id,
    parse_checkpoint,
    verify_checkpoint,
    verify_checkpoint_matches,
)
from dhi_offline.trust.keys import from_crypto
from dhi_offline.trust.timerange import TimeRange
from dhi_offline.trust.trusted_root import LogInstance

V1_HOST = "rekor.example.dev"
V1_ORIGIN = f"{V1_HOST} - 1193050959916656506"
V2_NAME = "log2099-1.rekor.example.dev"
ROOT = hashlib.sha256(b"some root").digest()
SIZE = 736
VALID = TimeRange(start=datetime(2020, 1, 1, tzinfo=UTC))

EC_KEY = ec.generate_private_key(ec.SECP256R1())
ED_KEY = ed25519.Ed25519PrivateKey.generate()
OTHER_EC_KEY = ec.generate_private_key(ec.SECP256R1())
OTHER_ED_KEY = ed25519.Ed25519PrivateKey.generate()


def _spki_sha256(key: ec.EllipticCurvePrivateKey) -> bytes:
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).digest()


def _c2sp_id(name: str, key: ed25519.Ed25519PrivateKey) -> bytes:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(name.encode() + b"\n\x01" + raw).digest()


def v1_log(key: ec.EllipticCurvePrivateKey = EC_KEY) -> LogInstance:
    return LogInstance(
        base_url=f"https://{V1_HOST}",
        log_id=_spki_sha256(key),
        key=from_crypto(key.public_key()),
        valid_for=VALID,
    )


def v2_log(key: ed25519.Ed25519PrivateKey = ED_KEY, name: str = V2_NAME) -> LogInstance:
    return LogInstance(
        base_url=f"https://{name}",
        log_id=_c2sp_id(name, key),
        key=from_crypto(key.public_key()),
        valid_for=VALID,
    )


def note_text(
    origin: str, size: int = SIZE, root: bytes = ROOT, extra: tuple[str, ...] = ()
) -> str:
    return "\n".join([origin, str(size), base64.b64encode(root).decode(), *extra]) + "\n"


def ec_line(
    text: str,
    *,
    name: str = V1_HOST,
    key: ec.EllipticCurvePrivateKey = EC_KEY,
    hint: bytes | None = None,
) -> str:
    sig = key.sign(text.encode(), ec.ECDSA(hashes.SHA256()))
    hint = _spki_sha256(key)[:4] if hint is None else hint
    return f"\u2014 {name} {base64.b64encode(hint + sig).decode()}\n"


def ed_line(
    text: str,
    *,
    name: str = V2_NAME,
    key: ed25519.Ed25519PrivateKey = ED_KEY,
    hint: bytes | None = None,
) -> str:
    sig = key.sign(text.encode())
    hint = _c2sp_id(name, key)[:4] if hint is None else hint
    return f"\u2014 {name} {base64.b64encode(hint + sig).decode()}\n"


def witness_line(text: str, name: str = "witness.example/w1") -> str:
    # A C2SP timestamped cosignature (type 0x04) by a key nobody trusts here.
    key = ed25519.Ed25519PrivateKey.generate()
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    hint = hashlib.sha256(name.encode() + b"\n\x04" + raw).digest()[:4]
    body = (1_700_000_000).to_bytes(8, "big") + key.sign(text.encode())
    return f"\u2014 {name} {base64.b64encode(hint + body).decode()}\n"


def envelope(text: str, *lines: str) -> str:
    return text + "\n" + "".join(lines)


def check(env: str, log: LogInstance) -> Checkpoint:
    cp = parse_checkpoint(env)
    verify_checkpoint(cp, log)
    return cp


# --- Parsing ----------------------------------------------------------------------------


def test_parse_rekor_v1_shape() -> None:
    text = note_text(V1_ORIGIN, extra=("Timestamp: 1689177396617352539",))
    cp = parse_checkpoint(envelope(text, ec_line(text)))
    assert cp.origin == V1_ORIGIN
    assert cp.tree_size == SIZE
    assert cp.root_hash == ROOT
    assert cp.other_lines == ("Timestamp: 1689177396617352539",)
    assert cp.signed_text == text.encode()
    assert cp.signed_text.endswith(b"\n")
    assert len(cp.signatures) == 1
    sig = cp.signatures[0]
    assert isinstance(sig, NoteSignature)
    assert sig.name == V1_HOST
    assert sig.hint == _spki_sha256(EC_KEY)[:4]
    assert len(sig.hint) == 4


def test_parse_keeps_signature_order_and_names() -> None:
    text = note_text(V2_NAME)
    env = envelope(text, witness_line(text), ed_line(text), witness_line(text, "w2"))
    cp = parse_checkpoint(env)
    assert [s.name for s in cp.signatures] == ["witness.example/w1", V2_NAME, "w2"]
    assert cp.other_lines == ()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ("", "no blank line"),
        ("origin\n1\nAAAA\n", "no blank line"),
        (note_text(V2_NAME) + "\n", "no signature lines"),
        (note_text(V2_NAME) + "\n\u2014 a AAAAAAAA", "end with a newline"),
        ("origin\n1\n\n\u2014 a AAAAAAAA\n", "origin, tree size and root hash"),
        (f"1\n{base64.b64encode(ROOT).decode()}\n\n\u2014 a AAAAAAAA\n", "origin, tree size"),
        ("\n1\n" + base64.b64encode(ROOT).decode() + "\n\n\u2014 a AAAAAAAA\n", "empty line"),
        (note_text(V2_NAME, extra=("x", "")) + "\n\u2014 a AAAAAAAA\n", "empty line"),
        (note_text(V2_NAME).replace("\n736\n", "\n0736\n") + "\n\u2014 a AAAAAAAA\n", "decimal"),
        (note_text(V2_NAME).replace("\n736\n", "\n+736\n") + "\n\u2014 a AAAAAAAA\n", "decimal"),
        (note_text(V2_NAME).replace("\n736\n", "\n-1\n") + "\n\u2014 a AAAAAAAA\n", "decimal"),
        (note_text(V2_NAME).replace("\n736\n", "\n7_36\n") + "\n\u2014 a AAAAAAAA\n", "decimal"),
        (note_text(V2_NAME).replace("\n736\n", "\n\u0667\n") + "\n\u2014 a AAAAAAAA\n", "decimal"),
        (note_text(V2_NAME).replace("\n736\n", "\n 736\n") + "\n\u2014 a AAAAAAAA\n", "decimal"),
        (note_text(V2_NAME, size=2**64) + "\n\u2014 a AAAAAAAA\n", "out of range"),
        (note_text(V2_NAME, root=ROOT[:31]) + "\n\u2014 a AAAAAAAA\n", "31 bytes"),
        (note_text(V2_NAME).replace("=\n", "\n") + "\n\u2014 a AAAAAAAA\n", "not base64"),
        (note_text(V2_NAME).replace("=\n", "=$\n") + "\n\u2014 a AAAAAAAA\n", "not base64"),
        (note_text(V2_NAME) + "\n- a AAAAAAAA\n", "em dash"),
        (note_text(V2_NAME) + "\n\u2014a AAAAAAAA\n", "em dash"),
        (note_text(V2_NAME) + "\n\u2014 a\n", "no valid key name"),
        (note_text(V2_NAME) + "\n\u2014  AAAAAAAA\n", "no valid key name"),
        (note_text(V2_NAME) + "\n\u2014 a+b AAAAAAAA\n", "no valid key name"),
        (note_text(V2_NAME) + "\n\u2014 a\u00a0b AAAAAAAA\n", "no valid key name"),
        (note_text(V2_NAME) + "\n\u2014 a AAAAAA==\n", "too short"),
        (note_text(V2_NAME) + "\n\u2014 a AAAAAAA\n", "not valid base64"),
        (note_text(V2_NAME) + "\n\u2014 a AAAA AAAA\n", "not valid base64"),
        (note_text(V2_NAME) + "\n\u2014 a \n", "too short"),
        (note_text(V2_NAME) + "\n\u2014 a AAAAAAAA\n\n", "no signature lines"),
        (note_text(V2_NAME).replace("\n", "\r\n") + "\r\n\u2014 a AAAAAAAA\n", "control"),
        (note_text(V2_NAME + "\t") + "\n\u2014 a AAAAAAAA\n", "control"),
        (note_text(V2_NAME) + "\n\u2014 a AAAAAAAA\n\ud800", "UTF-8"),
        (note_text(V2_NAME) + "\n" + "\u2014 a AAAAAAAA\n" * 101, "more than 100"),
    ],
)
def test_parse_rejects(env: str, message: str) -> None:
    with pytest.raises(CheckpointError, match=message) as info:
        parse_checkpoint(env)
    assert info.value.step == "checkpoint"


def test_parse_splits_at_last_blank_line() -> None:
    # A blank line inside the text would leave an empty text line: refused.
    text = note_text(V2_NAME)
    with pytest.raises(CheckpointError, match="empty line"):
        parse_checkpoint(text + "\n" + envelope(text, ed_line(text)))


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab1=\n +/\u2014 AQ\t")), max_size=80))
def test_parse_only_raises_checkpoint_error(env: str) -> None:
    with contextlib.suppress(CheckpointError):
        parse_checkpoint(env)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=120))
def test_parse_arbitrary_text_only_raises_checkpoint_error(env: str) -> None:
    with contextlib.suppress(CheckpointError):
        parse_checkpoint(env)


# --- Verification: Rekor v1 style (ECDSA P-256) ---------------------------------------


def test_v1_valid() -> None:
    text = note_text(V1_ORIGIN, extra=("Timestamp: 1",))
    cp = check(envelope(text, ec_line(text)), v1_log())
    verify_checkpoint_matches(cp, root_hash=ROOT, tree_size=SIZE)


def test_v1_wrong_hint() -> None:
    text = note_text(V1_ORIGIN)
    hint = bytes([_spki_sha256(EC_KEY)[0] ^ 0x04]) + _spki_sha256(EC_KEY)[1:4]
    with pytest.raises(CheckpointError, match="no signature from log"):
        check(envelope(text, ec_line(text, hint=hint)), v1_log())


def test_v1_right_hint_wrong_key() -> None:
    text = note_text(V1_ORIGIN)
    forged = ec_line(text, key=OTHER_EC_KEY, hint=_spki_sha256(EC_KEY)[:4])
    with pytest.raises(CheckpointError, match="does not verify"):
        check(envelope(text, forged), v1_log())


def test_v1_tampered_text() -> None:
    text = note_text(V1_ORIGIN)
    line = ec_line(text)
    for tampered in (
        note_text(V1_ORIGIN, size=SIZE + 1),
        note_text(V1_ORIGIN, root=ROOT[::-1]),
        note_text(V1_ORIGIN + "x"),
        note_text(V1_ORIGIN, extra=("Timestamp: 2",)),
    ):
        with pytest.raises(CheckpointError, match="does not verify"):
            check(envelope(tampered, line), v1_log())


def test_v1_extra_signatures_are_ignored() -> None:
    text = note_text(V1_ORIGIN)
    # Another ECDSA key signing under the same name (different hint) and a witness.
    env = envelope(
        text,
        witness_line(text),
        ec_line(text, key=OTHER_EC_KEY),
        ec_line(text),
        witness_line(text, "w2"),
    )
    check(env, v1_log())


def test_v1_only_foreign_signatures() -> None:
    text = note_text(V1_ORIGIN)
    with pytest.raises(CheckpointError, match="no signature from log"):
        check(envelope(text, witness_line(text), ec_line(text, key=OTHER_EC_KEY)), v1_log())


def test_v1_bad_second_log_signature_rejects_note() -> None:
    # C2SP: a failing signature from a known key SHOULD reject the whole note.
    text = note_text(V1_ORIGIN)
    bad = ec_line(text, key=OTHER_EC_KEY, hint=_spki_sha256(EC_KEY)[:4])
    with pytest.raises(CheckpointError, match="does not verify"):
        check(envelope(text, ec_line(text), bad), v1_log())


def test_v1_signature_name_and_origin_not_checked() -> None:
    # Decision: for ECDSA (Rekor v1) logs the hint is the hash of the key alone and
    # neither Rekor, sigstore-go nor sigstore-python compare names; nor do we.
    text = note_text("somewhere.else - 42")
    check(envelope(text, ec_line(text, name="other.host")), v1_log())


def test_log_without_usable_key() -> None:
    text = note_text(V1_ORIGIN)
    log = LogInstance(base_url="https://x", log_id=_spki_sha256(EC_KEY), key=None, valid_for=VALID)
    with pytest.raises(CheckpointError, match="key type"):
        check(envelope(text, ec_line(text)), log)


# --- Verification: Rekor v2 style (Ed25519, C2SP key ids) -----------------------------


def test_ed25519_key_id_matches_c2sp() -> None:
    assert ed25519_key_id(V2_NAME, from_crypto(ED_KEY.public_key())) == _c2sp_id(V2_NAME, ED_KEY)
    assert v2_log().checkpoint_hint == _c2sp_id(V2_NAME, ED_KEY)[:4]


def test_v2_valid_with_cosignatures_in_any_order() -> None:
    text = note_text(V2_NAME)
    for lines in (
        (ed_line(text),),
        (ed_line(text), witness_line(text)),
        (witness_line(text), ed_line(text)),
        (witness_line(text), ed_line(text), witness_line(text, "w2"), witness_line(text, "w3")),
        # Another key signing for the same origin: same name, different key id.
        (ed_line(text), ed_line(text, key=OTHER_ED_KEY)),
        (ec_line(text, name=V2_NAME, key=OTHER_EC_KEY), ed_line(text)),
    ):
        cp = check(envelope(text, *lines), v2_log())
        verify_checkpoint_matches(cp, root_hash=ROOT, tree_size=SIZE)


def test_v2_signature_name_must_be_the_logs() -> None:
    # Right key, right 4-byte hint, valid signature, but under another name: the C2SP
    # key id (name || key) is not the one the trusted root names.
    text = note_text(V2_NAME)
    line = ed_line(text, name="log2099-1.rekor.github.dev", hint=_c2sp_id(V2_NAME, ED_KEY)[:4])
    with pytest.raises(CheckpointError, match="no signature from log"):
        check(envelope(text, line), v2_log())


def test_v2_renamed_log_with_recomputed_hint() -> None:
    # The conformance "no-matching-signature" case, re-signed properly under a new name.
    other = "log2099-1.rekor.github.dev"
    text = note_text(other)
    with pytest.raises(CheckpointError, match="no signature from log"):
        check(envelope(text, ed_line(text, name=other)), v2_log())


def test_v2_origin_must_equal_name() -> None:
    for origin in ("log2099-2.rekor.example.dev", f"{V2_NAME} - 1", f"{V2_NAME}/"):
        text = note_text(origin)
        with pytest.raises(CheckpointError, match="origin"):
            check(envelope(text, ed_line(text)), v2_log())


def test_v2_right_hint_wrong_key() -> None:
    text = note_text(V2_NAME)
    forged = ed_line(text, key=OTHER_ED_KEY, hint=_c2sp_id(V2_NAME, ED_KEY)[:4])
    with pytest.raises(CheckpointError, match="does not verify"):
        check(envelope(text, forged), v2_log())


def test_v2_only_witness_signatures() -> None:
    text = note_text(V2_NAME)
    with pytest.raises(CheckpointError, match="no signature from log"):
        check(envelope(text, witness_line(text), witness_line(text, "w2")), v2_log())


def test_v2_log_id_not_made_for_this_key() -> None:
    # A trusted root whose log id is not the C2SP id of (its base URL host, its key).
    text = note_text(V2_NAME)
    log = LogInstance(
        base_url=f"https://{V2_NAME}",
        log_id=_c2sp_id(V2_NAME, OTHER_ED_KEY),
        key=from_crypto(ED_KEY.public_key()),
        valid_for=VALID,
    )
    with pytest.raises(CheckpointError):
        check(envelope(text, ed_line(text, hint=log.checkpoint_hint)), log)


def test_v2_checkpoint_key_id_is_preferred_over_log_id() -> None:
    text = note_text(V2_NAME)
    log = LogInstance(
        base_url=f"https://{V2_NAME}",
        log_id=b"\x00" * 32,
        key=from_crypto(ED_KEY.public_key()),
        valid_for=VALID,
        checkpoint_key_id=_c2sp_id(V2_NAME, ED_KEY),
    )
    check(envelope(text, ed_line(text)), log)


def test_truncated_notes_never_verify() -> None:
    text = note_text(V2_NAME)
    env = envelope(text, ed_line(text))
    check(env, v2_log())
    for cut in range(len(env)):
        with pytest.raises(CheckpointError):
            check(env[:cut], v2_log())
    text1 = note_text(V1_ORIGIN)
    env1 = envelope(text1, ec_line(text1))
    for cut in range(0, len(env1), 3):
        with pytest.raises(CheckpointError):
            check(env1[:cut], v1_log())


def test_missing_signature_lines() -> None:
    text = note_text(V2_NAME)
    with pytest.raises(CheckpointError, match="no signature lines"):
        check(text + "\n", v2_log())


def test_wrong_log_for_checkpoint() -> None:
    text = note_text(V2_NAME)
    with pytest.raises(CheckpointError, match="no signature from log"):
        check(envelope(text, ed_line(text)), v1_log())
    text1 = note_text(V1_ORIGIN)
    with pytest.raises(CheckpointError, match="no signature from log"):
        check(envelope(text1, ec_line(text1)), v2_log())


# --- Tree head comparison -------------------------------------------------------------


def test_verify_checkpoint_matches() -> None:
    text = note_text(V2_NAME)
    cp = check(envelope(text, ed_line(text)), v2_log())
    verify_checkpoint_matches(cp, root_hash=ROOT, tree_size=SIZE)
    with pytest.raises(CheckpointError, match="tree size 736"):
        verify_checkpoint_matches(cp, root_hash=ROOT, tree_size=SIZE + 1)
    with pytest.raises(CheckpointError, match="root hash"):
        verify_checkpoint_matches(cp, root_hash=ROOT[:-1] + bytes([ROOT[-1] ^ 1]), tree_size=SIZE)
    with pytest.raises(CheckpointError, match="root hash"):
        verify_checkpoint_matches(cp, root_hash=b"", tree_size=SIZE)
