"""The trusted roots shipped with the tool (``dhi_offline/trust/shipped.py``)."""

from __future__ import annotations

from dhi_offline.trust.shipped import shipped_trusted_root


def test_shipped_roots_parse_with_known_log_ids() -> None:
    prod = shipped_trusted_root("production")
    rekor = prod.tlog_by_id(
        bytes.fromhex("c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d")
    )
    assert rekor and rekor[0].key is not None
    assert rekor[0].key.key_id_bytes == rekor[0].log_id  # Rekor v1: log id = SHA-256(DER)
    v2 = [t for t in prod.tlogs if "log2025-1" in t.base_url]
    assert v2 and v2[0].log_id.hex().startswith("cf119915")  # signed-note key id, not SHA-256(DER)
    assert prod.certificate_authorities and prod.ctlogs and prod.timestamp_authorities
    staging = shipped_trusted_root("staging")
    assert any(t.log_id.hex().startswith("d32f30a3") for t in staging.tlogs)  # rekor.sigstage.dev
