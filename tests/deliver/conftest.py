"""A publisher's sample image, its bundle, and an internal registry the image is mirrored to.

The site module fixture exports the sample layout (named ``dhi.io/python-sample:3.13``)
once; each test gets a fresh Debian ``docker-registry`` (the internal registry, no
referrers API) with the image copied in by ``skopeo copy --all``, and its own state and
data directories.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dhi_offline.bundle.signing import generate_keypair
from tests.support.registry import (
    RunningRegistry,
    require_registry_tools,
    run_registry,
    skopeo_push,
)
from tests.support.sample import export_argv, make_sample_site, run_cli, trust_argv

NAME = "dhi.io/python-sample:3.13"
PREFIX = "dhi"
REPOSITORY = "dhi/python-sample"


@dataclass(frozen=True)
class Site:
    """The sample site: keys, layout and bundle in ``d``, a registry with the image."""

    d: Path
    bundle: Path
    registry: RunningRegistry

    @property
    def to(self) -> str:
        """``--to`` for the internal registry."""
        return f"{self.registry.host}/{PREFIX}"

    @property
    def site_key(self) -> Path:
        """The site's private key."""
        return self.d / "site.pem"

    @property
    def site_pub(self) -> Path:
        """The site's public key."""
        return self.d / "site.pub"

    def push_argv(self, *extra: str, bundle: Path | None = None) -> list[str]:
        """``push`` of the sample bundle into the internal registry, with the site's trust."""
        return [
            "push",
            str(bundle or self.bundle),
            "--to",
            self.to,
            "--signing-key",
            str(self.site_key),
            *trust_argv(self.d),
            *extra,
        ]

    def mirror(self, layout: Path | None = None) -> None:
        """``skopeo copy --all`` the sample image into the internal registry."""
        skopeo_push(layout or self.d / "layout", "3.13", f"{self.registry.host}/{REPOSITORY}:3.13")


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A directory with the sample layout, keys and ``sample.dhi.tar.zst`` (one export)."""
    require_registry_tools()
    d = tmp_path_factory.mktemp("published")
    with pytest.MonkeyPatch.context() as mp:
        make_sample_site(d, mp)
        code, _, err = run_cli(export_argv(d, "sample.dhi.tar.zst", "--name", NAME))
        assert code == 0, err
    generate_keypair(d / "site")
    yield d


@pytest.fixture
def site(published: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    """The published directory copied for this test, and a fresh internal registry."""
    d = tmp_path / "site"
    shutil.copytree(published, d, ignore=shutil.ignore_patterns("state", "config", "data"))
    monkeypatch.setenv("DHI_OFFLINE_STATE_DIR", str(d / "state"))
    monkeypatch.setenv("DHI_OFFLINE_CONFIG_DIR", str(d / "config"))
    monkeypatch.setenv("DHI_OFFLINE_DATA_DIR", str(d / "data"))
    with run_registry(tmp_path / "registry") as registry:
        yield Site(d, d / "sample.dhi.tar.zst", registry)
