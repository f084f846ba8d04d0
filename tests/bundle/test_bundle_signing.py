"""Exporter keys, the manifest signature, and sequence numbers."""

from __future__ import annotations

import base64
import json
import os
import stat
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from dhi_offline.bundle import layout
from dhi_offline.bundle.sequence_state import STATE_FILE, current_sequence, next_sequence
from dhi_offline.bundle.signing import (
    DETERMINISTIC_SIGNATURES,
    generate_keypair,
    load_private_key,
    public_key_of,
    sign_manifest,
    verify_manifest_signature,
)
from dhi_offline.errors import InputError, ManifestSignatureError, UsageError
from dhi_offline.evidence.dsse import pae
from dhi_offline.trust.keys import load_pem
from tests.bundle.helpers import trusted

MANIFEST = b'{"format_version":1}'


# -- keys -------------------------------------------------------------------------------


def test_generate_keypair_modes_and_ids(tmp_path: Path) -> None:
    kp = generate_keypair(tmp_path / "exporter")
    assert kp.private_key == tmp_path / "exporter.pem"
    assert kp.public_key == tmp_path / "exporter.pub"
    assert stat.S_IMODE(kp.private_key.stat().st_mode) == 0o600
    assert kp.private_key.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    pub = load_pem(kp.public_key.read_bytes())
    assert pub.key_id == kp.key_id == public_key_of(load_private_key(kp.private_key)).key_id
    assert pub.algorithm == "ecdsa-p256"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_private_key_never_world_readable_even_with_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        kp = generate_keypair(tmp_path / "k")
    finally:
        os.umask(old)
    assert stat.S_IMODE(kp.private_key.stat().st_mode) == 0o600


@pytest.mark.parametrize("existing", ["k.pem", "k.pub"])
def test_generate_keypair_refuses_to_overwrite(tmp_path: Path, existing: str) -> None:
    (tmp_path / existing).write_bytes(b"keep me")
    with pytest.raises(UsageError, match="already exists"):
        generate_keypair(tmp_path / "k")
    assert (tmp_path / existing).read_bytes() == b"keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == [existing]


def test_generate_keypair_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        generate_keypair(tmp_path / "nope" / "k")


def _pem(key: object, password: bytes | None = None) -> bytes:
    enc: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(  # type: ignore[attr-defined, no-any-return]
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc
    )


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (None, "cannot read"),
        (b"garbage", "not a PEM private key"),
        (_pem(ec.generate_private_key(ec.SECP256R1()), b"pw"), "encrypted"),
        (_pem(ec.generate_private_key(ec.SECP384R1())), "P-256"),
        (_pem(ed25519.Ed25519PrivateKey.generate()), "P-256"),
    ],
)
def test_load_private_key_errors(tmp_path: Path, content: bytes | None, match: str) -> None:
    path = tmp_path / "k.pem"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError, match=match):
        load_private_key(path)


# -- manifest signature -----------------------------------------------------------------


def test_sign_and_verify(exporter_key: ec.EllipticCurvePrivateKey) -> None:
    pub = public_key_of(exporter_key)
    env = sign_manifest(MANIFEST, exporter_key)
    obj = json.loads(env)
    assert obj["payloadType"] == layout.MANIFEST_PAYLOAD_TYPE
    assert obj["signatures"][0]["keyid"] == pub.key_id
    pub.verify(base64.b64decode(obj["signatures"][0]["sig"]), pae(obj["payloadType"], MANIFEST))
    assert verify_manifest_signature(env, MANIFEST, trusted(pub)) == pub


def test_deterministic_signatures_when_available(exporter_key: ec.EllipticCurvePrivateKey) -> None:
    same = sign_manifest(MANIFEST, exporter_key) == sign_manifest(MANIFEST, exporter_key)
    assert same is DETERMINISTIC_SIGNATURES


def _tamper(env: bytes, **changes: object) -> bytes:
    obj = json.loads(env)
    for k, v in changes.items():
        if k == "sig":
            obj["signatures"][0]["sig"] = v
        elif k == "keyid":
            obj["signatures"][0]["keyid"] = v
        elif k == "signatures":
            obj["signatures"] = v
        else:
            obj[k] = v
    return json.dumps(obj).encode()


def test_verify_refusals(
    exporter_key: ec.EllipticCurvePrivateKey, other_key: ec.EllipticCurvePrivateKey
) -> None:
    pub, other = public_key_of(exporter_key), public_key_of(other_key)
    env = sign_manifest(MANIFEST, exporter_key)
    sig0 = json.loads(env)["signatures"][0]
    cases: list[tuple[bytes, bytes, object, str]] = [
        (env, MANIFEST + b" ", trusted(pub), "signs other bytes"),
        (env, MANIFEST, trusted(other), f"not signed by a trusted exporter key {pub.key_id}"),
        (sign_manifest(MANIFEST, other_key), MANIFEST, trusted(pub), "not signed by a trusted"),
        # another key's signature relabelled with the trusted key id
        (
            _tamper(sign_manifest(MANIFEST, other_key), keyid=pub.key_id),
            MANIFEST,
            trusted(pub),
            "does not verify",
        ),
        (_tamper(env, payloadType="application/json"), MANIFEST, trusted(pub), "payload type"),
        (_tamper(env, keyid=""), MANIFEST, trusted(pub), "no keyid"),
        (_tamper(env, signatures=[sig0, sig0]), MANIFEST, trusted(pub), "exactly one"),
        (_tamper(env, signatures=[]), MANIFEST, trusted(pub), "no signatures"),
        (b"not json", MANIFEST, trusted(pub), "not valid JSON"),
        # a lookup that hands back some other key must not be used
        (env, MANIFEST, lambda _k: other, "returned"),
    ]
    for envelope, manifest, lookup, match in cases:
        with pytest.raises(ManifestSignatureError, match=match):
            verify_manifest_signature(envelope, manifest, lookup)  # type: ignore[arg-type]


# -- sequence numbers -------------------------------------------------------------------

KEY_A, KEY_B = "a" * 64, "b" * 64


def test_sequence_grows_per_key(tmp_path: Path) -> None:
    state = tmp_path / "state"
    assert current_sequence(KEY_A, state) == 0
    assert [next_sequence(KEY_A, state) for _ in range(3)] == [1, 2, 3]
    assert next_sequence(KEY_B, state) == 1
    assert current_sequence(KEY_A, state) == 3
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    saved = json.loads((state / STATE_FILE).read_text())
    assert saved == {"sequences": {KEY_A: 3, KEY_B: 1}, "version": 1}
    assert not [p for p in state.iterdir() if p.name.endswith(".tmp")]


def test_sequence_unique_under_concurrency(tmp_path: Path) -> None:
    got: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(10):
            n = next_sequence(KEY_A, tmp_path)
            with lock:
                got.append(n)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == list(range(1, 41))


@pytest.mark.parametrize(
    "content",
    [b"{", b"[]", b'{"version":2,"sequences":{}}', b'{"version":1,"sequences":{"x":-1}}'],
)
def test_corrupt_state_is_an_error_not_a_reset(tmp_path: Path, content: bytes) -> None:
    (tmp_path / STATE_FILE).write_bytes(content)
    with pytest.raises(InputError):
        next_sequence(KEY_A, tmp_path)
    assert (tmp_path / STATE_FILE).read_bytes() == content


def test_sequence_key_id_checked(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        next_sequence("../x", tmp_path)
