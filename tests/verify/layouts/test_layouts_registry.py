"""The evidence layout registry: names, network-free imports, classification by content."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from dhi_offline.errors import MalformedEvidenceError
from dhi_offline.evidence import records
from dhi_offline.evidence.records import AttestationRecord, EvidenceIndex
from dhi_offline.oci import mediatypes as mt
from dhi_offline.verify.layouts import LAYOUTS, _registry, annotation, layout_named
from dhi_offline.verify.layouts.buildkit import BuildKit


def test_registry_names_every_record_layout_once() -> None:
    assert records.layout_names() == set(LAYOUTS)
    assert {"dhi-scout", "cosign-att", "sigstore-bundle", "buildkit"} <= set(LAYOUTS)
    assert all(layout.name == name for name, layout in LAYOUTS.items())


def test_two_layouts_with_one_name_are_refused() -> None:
    with pytest.raises(ValueError, match="two evidence layouts are named 'buildkit'"):
        _registry(BuildKit(), BuildKit())


def _index(layout: str) -> bytes:
    d = "sha256:" + "0" * 64
    record = AttestationRecord(layout, layout, d, None, d, d, d, None, "test")
    return EvidenceIndex(attestations=(record,)).to_json_bytes()


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_the_evidence_index_accepts_every_registered_layout(name: str) -> None:
    assert EvidenceIndex.from_json_bytes(_index(name)).attestations[0].layout == name


def test_the_evidence_index_refuses_a_layout_nobody_registered() -> None:
    with pytest.raises(MalformedEvidenceError, match="unknown attestation layout 'nope'"):
        EvidenceIndex.from_json_bytes(_index("nope"))


def test_the_names_are_registered_by_importing_the_layouts_only() -> None:
    # evidence/ sits below verify/: it imports no layout, and knows no name until the
    # registry (verify/layouts/__init__.py) is imported.
    code = (
        "import sys\n"
        "from dhi_offline.evidence import records\n"
        "print(sorted(m for m in sys.modules if m.startswith('dhi_offline.verify')))\n"
        "print(sorted(records.layout_names()))\n"
        "import dhi_offline.verify.layouts\n"
        "print(sorted(records.layout_names()))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == [
        "[]",
        "[]",
        str(sorted(LAYOUTS)),
    ]


def test_unknown_layout_is_malformed_evidence() -> None:
    with pytest.raises(MalformedEvidenceError, match="unknown attestation layout 'nope'"):
        layout_named("nope")


def test_layouts_import_no_network_code() -> None:
    # The host side verifies through these modules: they must not pull in a client.
    code = (
        "import sys, dhi_offline.verify.layouts\n"
        "pre = ('httpx', 'dhi_offline.net', 'dhi_offline.oci.client', 'dhi_offline.oci.source',"
        " 'dhi_offline.export', 'dhi_offline.tlog.rekor_client')\n"
        "print(','.join(sorted(m for m in sys.modules if m.startswith(pre))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


SIG = mt.COSIGN_SIGNATURE_ARTIFACT_TYPE


@pytest.mark.parametrize(
    ("artifact_type", "media_type", "expected"),
    [
        (None, mt.IN_TOTO, "dhi-scout"),
        ("application/vnd.example", mt.IN_TOTO, "dhi-scout"),
        (SIG, mt.IN_TOTO, None),  # an in-toto layer in a signature manifest
        (None, mt.DSSE_ENVELOPE, "cosign-att"),
        (SIG, mt.DSSE_ENVELOPE, "cosign-att"),
        (None, "application/vnd.dev.sigstore.bundle.v0.3+json", "sigstore-bundle"),
        (None, mt.COSIGN_SIMPLE_SIGNING, None),
        (None, mt.OCI_LAYER_GZIP, None),
        (None, None, None),
    ],
)
def test_referrer_layers_are_classified_by_content(
    artifact_type: str | None, media_type: str | None, expected: str | None
) -> None:
    manifest: dict[str, Any] = {"artifactType": artifact_type} if artifact_type else {}
    layer = {"mediaType": media_type, "digest": "sha256:" + "0" * 64}
    claimed = [x.name for x in LAYOUTS.values() if x.in_referrers and x.recognises(manifest, layer)]
    assert claimed == ([expected] if expected else [])


@pytest.mark.parametrize(
    ("desc", "expected"),
    [
        ({"annotations": {"k": "v"}}, "v"),
        ({"annotations": {"k": ""}}, ""),
        ({"annotations": {"k": 1}}, None),
        ({"annotations": {}}, None),
        ({"annotations": ["k"]}, None),
        ({}, None),
    ],
)
def test_annotation_is_a_string_or_none(desc: dict[str, Any], expected: str | None) -> None:
    assert annotation(desc, "k") == expected
