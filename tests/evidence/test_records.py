"""Evidence records: the layout names a record may carry come from the registration.

``dhi_offline.verify.layouts`` registers the names (tests/verify/layouts/ checks that);
here the registry of names is replaced by one the test controls, so these tests do not
depend on which layouts exist.
"""

from __future__ import annotations

import json

import pytest

from dhi_offline.errors import MalformedEvidenceError
from dhi_offline.evidence import records
from dhi_offline.evidence.records import AttestationRecord, EvidenceIndex, record_id

DIGEST = "sha256:" + "ab" * 32


@pytest.fixture
def names(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """An empty registry of layout names for this test only."""
    fresh: set[str] = set()
    monkeypatch.setattr(records, "_LAYOUT_NAMES", fresh)
    return fresh


def _record(layout: str) -> AttestationRecord:
    return AttestationRecord(
        id=record_id(layout, DIGEST, DIGEST, DIGEST),
        layout=layout,
        image=DIGEST,
        platform="linux/amd64",
        subject=DIGEST,
        manifest=DIGEST,
        layer=DIGEST,
        predicate_type=None,
        source="test",
    )


def _index_bytes(layout: str) -> bytes:
    return EvidenceIndex(attestations=(_record(layout),)).to_json_bytes()


def test_a_registered_layout_round_trips(names: set[str]) -> None:
    records.register_layout_names(["example"])
    index = EvidenceIndex.from_json_bytes(_index_bytes("example"))
    assert index.attestations == (_record("example"),)
    assert records.layout_names() == {"example"}


def test_a_layout_nobody_registered_is_refused_at_parse_time(names: set[str]) -> None:
    records.register_layout_names(["example"])
    with pytest.raises(MalformedEvidenceError, match=r"^unknown attestation layout 'other'$"):
        EvidenceIndex.from_json_bytes(_index_bytes("other"))
    doc = json.loads(_index_bytes("example"))
    doc["attestations"][0]["layout"] = 1
    with pytest.raises(MalformedEvidenceError, match=r"record\.layout"):
        EvidenceIndex.from_json_bytes(json.dumps(doc).encode())


def test_parsing_before_any_registration_is_a_bug_not_malformed_evidence(
    names: set[str],
) -> None:
    # Fail closed and loudly: with no registry every bundle would look malformed.
    with pytest.raises(RuntimeError, match="no evidence layout is registered"):
        EvidenceIndex.from_json_bytes(_index_bytes("example"))


def test_registration_adds_names_and_wants_non_empty_strings(names: set[str]) -> None:
    records.register_layout_names(["a"])
    records.register_layout_names(["b", "a"])
    assert records.layout_names() == {"a", "b"}
    for bad in ("", None):
        with pytest.raises(ValueError, match="non-empty name"):
            records.register_layout_names([bad])  # type: ignore[list-item]
    assert records.layout_names() == {"a", "b"}
