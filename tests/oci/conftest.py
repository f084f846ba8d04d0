"""Fixtures for the registry integration tests: one real registry per session, seeded once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dhi_offline.oci import mediatypes as mt
from dhi_offline.oci.content import referrers_tag
from dhi_offline.oci.layout import canonical_json
from tests.support.registry import (
    REPOSITORY,
    ImageFixture,
    Seeded,
    build_image,
    fast_client,
    require_registry_tools,
    run_registry,
    seed_referrers,
    skopeo_push,
)


@pytest.fixture(scope="session")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    """The test image with referrers and a cosign ``.sig`` tag in a fresh registry."""
    require_registry_tools()
    base = tmp_path_factory.mktemp("seeded")
    image = build_image(base / "layout", "v1")
    with run_registry(base / "registry") as registry:
        skopeo_push(image.layout, "v1", f"{registry.host}/{REPOSITORY}:v1")
        with fast_client() as client:
            seed_referrers(client, registry.host, REPOSITORY, image)
            # A legacy cosign signature tag for the first platform manifest.
            target = image.platforms[0].manifest
            payload = canonical_json(
                {
                    "critical": {
                        "identity": {"docker-reference": f"{registry.host}/{REPOSITORY}"},
                        "image": {"docker-manifest-digest": target.digest},
                        "type": "cosign container image signature",
                    },
                    "optional": None,
                }
            )
            config = canonical_json({"architecture": "", "os": "", "rootfs": {"type": "layers"}})
            layer = client.push_blob(registry.host, REPOSITORY, payload, mt.COSIGN_SIMPLESIGNING)
            cfg = client.push_blob(registry.host, REPOSITORY, config, mt.OCI_CONFIG)
            sig = canonical_json(
                {
                    "schemaVersion": 2,
                    "mediaType": mt.OCI_MANIFEST,
                    "config": cfg.to_json(),
                    "layers": [
                        {
                            **layer.to_json(),
                            "annotations": {"dev.cosignproject.cosign/signature": "MEUC"},
                        }
                    ],
                }
            )
            sig_tag = referrers_tag(target.digest) + ".sig"
            sig_digest = client.push_manifest(
                registry.host, REPOSITORY, sig_tag, sig, mt.OCI_MANIFEST
            )
        yield Seeded(registry, REPOSITORY, image, sig_tag, sig_digest, sig)


@pytest.fixture
def layout_image(tmp_path: Path) -> ImageFixture:
    """The test image written to a fresh layout (no registry needed)."""
    return build_image(tmp_path / "layout", "v1")
