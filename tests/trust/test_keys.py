"""Public keys of every supported algorithm (``dhi_offline/trust/keys.py``)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from dhi_offline.errors import SignatureError, TrustMaterialError
from dhi_offline.trust.keys import load_any, load_pem


def _pem(priv: object) -> bytes:
    return priv.public_key().public_bytes(  # type: ignore[attr-defined, no-any-return]
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.mark.parametrize(
    ("make", "alg"),
    [
        (lambda: ec.generate_private_key(ec.SECP256R1()), "ecdsa-p256"),
        (lambda: ec.generate_private_key(ec.SECP384R1()), "ecdsa-p384"),
        (ed25519.Ed25519PrivateKey.generate, "ed25519"),
        (lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048), "rsa"),
    ],
)
def test_key_algorithms_sign_and_verify(make: object, alg: str) -> None:
    priv = make()  # type: ignore[operator]
    key = load_pem(_pem(priv))
    assert key.algorithm == alg
    assert load_any(key.der).key_id == key.key_id
    msg = b"payload"
    if alg.startswith("ecdsa"):
        h = hashes.SHA256() if alg == "ecdsa-p256" else hashes.SHA384()
        sig = priv.sign(msg, ec.ECDSA(h))
    elif alg == "ed25519":
        sig = priv.sign(msg)
    else:
        sig = priv.sign(msg, padding.PKCS1v15(), hashes.SHA256())
    key.verify(sig, msg)
    with pytest.raises(SignatureError):
        key.verify(sig, msg + b"!")


def test_bad_key_material() -> None:
    with pytest.raises(TrustMaterialError):
        load_pem(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(TrustMaterialError, match="too small"):
        load_pem(_pem(small))


def test_der_key_ending_in_a_whitespace_byte_loads() -> None:
    # Regression: load_any stripped whitespace from binary DER, so about one key in 40
    # (those whose last byte is 0x09-0x0d or 0x20) failed to load.
    for _ in range(5000):
        key = load_pem(_pem(ec.generate_private_key(ec.SECP256R1())))
        if key.der[-1:] in (b" ", b"\t", b"\n", b"\r", b"\x0b", b"\x0c"):
            break
    else:
        pytest.skip("no key ending in a whitespace byte was generated")
    assert load_any(key.der).key_id == key.key_id
