"""``dhi-offline export`` against real registries, a served Rekor double and skopeo.

The world (built once per module):

- registry A (anonymous) holds a two-platform image pushed by ``skopeo copy --all``,
  cosign ``.att`` tags (layout b) and sigstore-bundle referrers (layout c);
- registry B (anonymous) is a SEPARATE attestation registry, as
  ``registry.scout.docker.com`` is for ``dhi.io``: DHI-style attestations (layout a) as
  referrers of each platform manifest, each signed by a cosign signature that is a
  referrer of the attestation manifest;
- registry C needs htpasswd (Basic) credentials, registry D needs Bearer tokens from a
  token server; the exporter reads both from a temporary ``$DOCKER_CONFIG``;
- a Rekor double, served on loopback, logged every signature; its trusted root is
  given with ``--trusted-root`` and its URL with ``--rekor-url``.

distribution 2.8 has no referrers API, so referrers are published the way clients do it
against such registries (distribution-spec "referrers tag schema"): the manifest by
digest, then the ``sha256-<hex>`` tag holding an image index of the referrers.

The publishing helpers below (``make_attestations``, ``push_published``) and the CLI
helpers are reused by ``test_export_faults.py``; they would sit better in
``tests/support/``.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dhi_offline.bundle.reader import OpenedBundle, inspect_bundle, open_bundle
from dhi_offline.bundle.signing import generate_keypair, load_private_key
from dhi_offline.cli import export as export_cmd
from dhi_offline.cli.inputs import load_trusted_root
from dhi_offline.cli.main import main
from dhi_offline.export.run import ExportConfig, ImageRequest, run_export
from dhi_offline.oci.client import RegistryClient
from dhi_offline.oci.content import referrers_tag
from dhi_offline.oci.mediatypes import INDEX_TYPES
from dhi_offline.oci.reference import Reference
from dhi_offline.oci.source import RegistrySource
from dhi_offline.tlog.rekor_client import RekorClient
from dhi_offline.trust.keyring import Keyring, KeyringEntry
from dhi_offline.trust.keys import PublicKey, load_pem
from tests.support.publisher import (
    CTRF_TESTS,
    CYCLONEDX,
    INTOTO_VULNS,
    OCI_INDEX,
    OPENVEX,
    SLSA_PROVENANCE_V1,
    ImageRef,
    Published,
    TestPublisher,
    ctrf_tests,
    cyclonedx_sbom,
    intoto_vulns,
    openvex,
    slsa_provenance_v1,
)
from tests.support.registry import (
    ImageFixture,
    RunningRegistry,
    TokenServer,
    build_image,
    fast_client,
    require_registry_tools,
    run_registry,
    skopeo_binary,
    skopeo_push,
)
from tests.support.rekor_double import RekorDouble

pytestmark = pytest.mark.integration

REPOSITORY = "dhi/python"
TAG = "3.13"
PLATFORMS = ("linux/amd64", "linux/arm64")
LOG_TIME = 1_775_000_000
"""The Rekor double's fixed clock (2026-03-31): integrated times and checkpoints."""
EPOCH = "1780000000"
"""SOURCE_DATE_EPOCH for the determinism test (2026-05-28, after every log time)."""
VSA = "https://slsa.dev/verification_summary/v1"
SPDX = "https://spdx.dev/Document/v2.3"

# What one platform carries, per (exporter layout name, predicate type).
PER_PLATFORM: dict[tuple[str, str], int] = {
    ("dhi-scout", CTRF_TESTS): 1,
    ("dhi-scout", CYCLONEDX): 1,
    ("dhi-scout", SLSA_PROVENANCE_V1): 1,
    ("cosign-att", INTOTO_VULNS): 1,
    ("cosign-att", OPENVEX): 1,
    ("sigstore-bundle", VSA): 1,  # with inclusion proof
    ("sigstore-bundle", SPDX): 1,  # SET only: completed from Rekor at export
}


# ----------------------------------------------------------------- publishing helpers


def image_refs(image: ImageFixture, name: str) -> list[ImageRef]:
    """The platform manifests of ``image`` as the publisher's subjects."""
    return [
        ImageRef(name=name, digest=p.manifest.digest, size=p.manifest.size) for p in image.platforms
    ]


@dataclass
class Attestations:
    """Publisher output for one image, per layout."""

    dhi: list[Published]
    att: list[Published]
    bundles: list[Published]


def make_attestations(publisher: TestPublisher, subjects: Iterable[ImageRef]) -> Attestations:
    """The :data:`PER_PLATFORM` set of attestations for every subject."""
    out = Attestations([], [], [])
    for ref in subjects:
        out.dhi.append(publisher.dhi_attestation(ref, CTRF_TESTS, ctrf_tests()))
        out.dhi.append(publisher.dhi_attestation(ref, CYCLONEDX, cyclonedx_sbom(ref)))
        out.dhi.append(publisher.dhi_attestation(ref, SLSA_PROVENANCE_V1, slsa_provenance_v1(ref)))
        out.att.append(
            publisher.cosign_att(
                ref,
                [
                    (INTOTO_VULNS, intoto_vulns({"CVE-2025-0001": "LOW"})),
                    (OPENVEX, openvex(ref, [("CVE-2025-0001", "not_affected")])),
                ],
            )
        )
        out.bundles.append(publisher.bundle_attestation(ref, VSA, {"verificationResult": "PASSED"}))
        out.bundles.append(
            publisher.bundle_attestation(ref, SPDX, {"spdxVersion": "SPDX-2.3"}, tlog="set-only")
        )
    return out


def push_published(
    client: RegistryClient, host: str, repository: str, items: Iterable[Published]
) -> int:
    """Push publisher output as real clients do; returns the number of PUT manifests.

    Blobs first, then every manifest by digest (or by its ``.att`` tag), then per
    subject the ``sha256-<hex>`` referrers index, merged with one already there.
    """
    manifests = 0
    by_subject: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        for blob in item.blobs:
            client.push_blob(host, repository, blob.data, blob.media_type)
        for m in item.manifests:
            client.push_manifest(host, repository, m.tag or m.digest, m.data, m.media_type)
            manifests += 1
            if m.subject is not None:
                by_subject.setdefault(m.subject, []).append(m.descriptor())
    for subject, descriptors in by_subject.items():
        tag = referrers_tag(subject)
        existing = client.get_tag(host, repository, tag)
        listed: list[dict[str, Any]] = []
        if existing is not None and existing.media_type in INDEX_TYPES:
            listed = list(json.loads(existing.data).get("manifests") or [])
        known = {d["digest"] for d in listed}
        listed += [d for d in descriptors if d["digest"] not in known]
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": listed}
        data = json.dumps(index, separators=(",", ":")).encode()
        client.push_manifest(host, repository, tag, data, OCI_INDEX)
        manifests += 1
    return manifests


def sha256_hex_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ----------------------------------------------------------------- running the CLI


def run(argv: list[str]) -> tuple[int, str, str]:
    """The CLI in-process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def trusted(pub: Path) -> Any:
    """A ``TrustedExporters`` lookup trusting exactly the key in ``pub``."""
    key: PublicKey = load_pem(pub.read_bytes())
    return lambda key_id: key if key_id == key.key_id else None


def open_verified(bundle: Path, exporter_pub: Path, dest: Path) -> OpenedBundle:
    """Read the bundle as the importer would: signature and every member checked."""
    dest.mkdir(parents=True, exist_ok=False)
    return open_bundle(bundle, trusted_exporters=trusted(exporter_pub), dest=dest)


def evidence_records(opened: OpenedBundle) -> list[dict[str, Any]]:
    doc = json.loads((opened.root / "evidence" / "index.json").read_bytes())
    records: list[dict[str, Any]] = doc["attestations"]
    return records


# ----------------------------------------------------------------- the world


@dataclass
class World:
    """Everything the tests export from."""

    dir: Path
    rekor: RekorDouble
    rekor_url: str
    publisher: TestPublisher
    image: ImageFixture
    a: RunningRegistry
    b: RunningRegistry
    c: RunningRegistry
    d: RunningRegistry
    tokens: TokenServer
    attestations: Attestations
    docker_config: Path

    @property
    def pub(self) -> Path:
        return self.dir / "publisher.pub"

    @property
    def root(self) -> Path:
        return self.dir / "tr.json"

    @property
    def exporter(self) -> Path:
        return self.dir / "exporter.pem"

    @property
    def exporter_pub(self) -> Path:
        return self.dir / "exporter.pub"

    @property
    def log_id(self) -> str:
        return self.rekor.log_id.hex()

    def argv(self, image: str, out: Path, *extra: str, rekor: bool = True) -> list[str]:
        """``dhi-offline export IMAGE --attestations-from B --key ... --format json``."""
        argv = [
            "export",
            image,
            "--attestations-from",
            self.b.host,
            "--key",
            str(self.pub),
            "--signing-key",
            str(self.exporter),
            "--trusted-root",
            str(self.root),
            "-o",
            str(out),
            "--format",
            "json",
        ]
        if rekor:
            argv += ["--rekor-url", self.rekor_url]
        return [*argv, *extra]


USERS = {"alice": "wonderland-7"}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    require_registry_tools()
    base = tmp_path_factory.mktemp("registry-world")
    rekor = RekorDouble(clock=lambda: LOG_TIME, index_offset=1000)
    rekor.add_entry(b'{"someone":"else"}')  # proofs are not trivial
    # The trusted root names the log by its public URL, as production roots do (sigstore
    # clients match the checkpoint signer name against it); --rekor-url reaches it here.
    (base / "tr.json").write_bytes(rekor.trusted_root_json())
    publisher = TestPublisher(rekor=rekor)
    (base / "publisher.pub").write_bytes(publisher.public_key_pem)
    generate_keypair(base / "exporter")
    with ExitStack() as stack:
        rekor_url = stack.enter_context(rekor.serve())
        a = stack.enter_context(run_registry(base / "reg-a"))
        b = stack.enter_context(run_registry(base / "reg-b"))
        c = stack.enter_context(run_registry(base / "reg-c", users=USERS))
        tokens = stack.enter_context(TokenServer(base / "token", users=USERS))
        d = stack.enter_context(run_registry(base / "reg-d", token=tokens.registry_config()))
        image = build_image(base / "layout", TAG, platforms=PLATFORMS)
        creds = "alice:" + USERS["alice"]
        skopeo_push(image.layout, TAG, f"{a.host}/{REPOSITORY}:{TAG}")
        skopeo_push(image.layout, TAG, f"{c.host}/{REPOSITORY}:{TAG}", creds=creds)
        skopeo_push(image.layout, TAG, f"{d.host}/{REPOSITORY}:{TAG}", creds=creds)
        atts = make_attestations(publisher, image_refs(image, "dhi.io/python"))
        with fast_client() as client:
            push_published(client, b.host, REPOSITORY, atts.dhi)
            push_published(client, a.host, REPOSITORY, [*atts.att, *atts.bundles])
        # The newest leaves are not ours: forks of the last two leave our entries intact.
        rekor.add_entry(b'{"someone":"else, later"}')
        rekor.add_entry(b'{"someone":"else, later still"}')
        docker_config = base / "docker-config"
        docker_config.mkdir()
        auth = base64.b64encode(creds.encode()).decode()
        (docker_config / "config.json").write_text(
            json.dumps({"auths": {c.host: {"auth": auth}, d.host: {"auth": auth}}})
        )
        yield World(
            base, rekor, rekor_url, publisher, image, a, b, c, d, tokens, atts, docker_config
        )


@pytest.fixture(autouse=True)
def _environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh exporter state per test; no stray SOURCE_DATE_EPOCH or Docker config."""
    monkeypatch.setenv("DHI_OFFLINE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-docker-config"))
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)


def image_ref(registry: RunningRegistry, repository: str = REPOSITORY) -> str:
    return f"{registry.host}/{repository}:{TAG}"


def tlog_members(paths: Iterable[str], log_id: str, kind: str) -> list[str]:
    prefix = f"tlog/{log_id}/{kind}"
    return sorted(p for p in paths if p.startswith(prefix))


# ----------------------------------------------------------------- tests


def test_export_from_image_and_attestation_registries(world: World, tmp_path: Path) -> None:
    out = tmp_path / "out" / "python.dhi.tar.zst"
    code, stdout, err = run(world.argv(image_ref(world.a), out))
    assert code == 0, err
    doc = json.loads(stdout)
    n_platforms = len(PLATFORMS)
    expected_by_type: Counter[str] = Counter()
    for (_, ptype), n in PER_PLATFORM.items():
        expected_by_type[ptype] += n * n_platforms
    assert doc["attestations"] == {
        "verified": sum(PER_PLATFORM.values()) * n_platforms,
        "failed": 0,
        "byPredicateType": dict(sorted(expected_by_type.items())),
    }
    assert doc["flags"] == [] and doc["failures"] == []
    (img,) = doc["images"]
    assert img["digest"] == world.image.index.digest
    assert [p["platform"] for p in img["platforms"]] == list(PLATFORMS)
    assert [p["digest"] for p in img["platforms"]] == [
        p.manifest.digest for p in world.image.platforms
    ]
    # Every SET-only entry (layouts a and b, and the SET-only bundles of c) was completed.
    set_only_logged = n_platforms * (3 + 2 + 1)
    assert doc["tlog"]["completedFromRekor"] == set_only_logged
    assert doc["tlog"]["absent"] == 0
    total = doc["attestations"]["verified"]
    assert doc["tlog"]["inclusion-proof"] + doc["tlog"]["set-only"] == total
    # Every entry now has an inclusion proof: carried, or completed from Rekor.
    assert doc["tlog"]["inclusion-proof"] == total and doc["tlog"]["set-only"] == 0

    manifest = inspect_bundle(out)
    paths = {m.path for m in manifest.members}
    entries = tlog_members(paths, world.log_id, "entries/")
    assert len(entries) == set_only_logged
    assert f"tlog/{world.log_id}/checkpoint.txt" in paths
    sigstore = sorted(p for p in paths if p.startswith("evidence/sigstore/"))
    assert len(sigstore) == 3 * n_platforms  # one per Rekor-backed DHI signature
    assert all(p.endswith(".sigstore.json") for p in sigstore)
    assert not tlog_members(paths, world.log_id, "consistency/")  # first export: no history

    opened = open_verified(out, world.exporter_pub, tmp_path / "x")
    per_layout = Counter((r["layout"], r["predicateType"]) for r in evidence_records(opened))
    assert per_layout == Counter({k: v * n_platforms for k, v in PER_PLATFORM.items()})
    checkpoint = (opened.root / "tlog" / world.log_id / "checkpoint.txt").read_text()
    assert checkpoint == world.rekor.checkpoint(world.rekor.size)
    for path in entries:
        index = int(path.rsplit("/", 1)[1].removesuffix(".json"))
        (entry,) = json.loads((opened.root / path).read_bytes()).values()
        assert entry["logIndex"] == index
        assert entry["verification"]["inclusionProof"]["treeSize"] == world.rekor.size


def test_skopeo_sees_the_digest_the_bundle_names(world: World, tmp_path: Path) -> None:
    skopeo = skopeo_binary()
    assert skopeo is not None
    raw = subprocess.run(
        [skopeo, "inspect", "--raw", "--tls-verify=false", f"docker://{image_ref(world.a)}"],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    out = tmp_path / "s.dhi.tar.zst"
    code, _, err = run(world.argv(image_ref(world.a), out, "--platform", "linux/amd64"))
    assert code == 0, err
    (image,) = inspect_bundle(out).images
    assert image.digest == "sha256:" + sha256_hex_of(raw)
    assert image.media_type == json.loads(raw)["mediaType"]


def test_platform_option_restricts_the_export(world: World, tmp_path: Path) -> None:
    out = tmp_path / "arm.dhi.tar.zst"
    code, stdout, err = run(world.argv(image_ref(world.a), out, "--platform", "linux/arm64"))
    assert code == 0, err
    doc = json.loads(stdout)
    assert [p["platform"] for p in doc["images"][0]["platforms"]] == ["linux/arm64"]
    assert doc["attestations"]["verified"] == sum(PER_PLATFORM.values())
    arm = world.image.platforms[1].manifest.digest
    opened = open_verified(out, world.exporter_pub, tmp_path / "x")
    assert {r["subject"] for r in evidence_records(opened)} == {arm}
    (image,) = opened.manifest.images
    assert [(p.platform, p.digest) for p in image.platforms] == [("linux/arm64", arm)]
    amd = world.image.platforms[0].manifest.digest
    assert f"blobs/sha256/{amd[7:]}" not in {m.path for m in opened.manifest.members}


def test_no_rekor_leaves_entries_set_only(world: World, tmp_path: Path) -> None:
    out = tmp_path / "norekor.dhi.tar.zst"
    asked = len(world.rekor.requests)
    code, stdout, err = run(world.argv(image_ref(world.a), out, "--no-rekor", rekor=False))
    assert code == 0, err
    assert len(world.rekor.requests) == asked  # the log was not contacted
    tlog = json.loads(stdout)["tlog"]
    n = len(PLATFORMS)
    assert tlog == {
        "inclusion-proof": n * 1,  # only the bundles that carried their proof
        "set-only": n * (3 + 2 + 1),
        "absent": 0,
        "completedFromRekor": 0,
    }
    paths = {m.path for m in inspect_bundle(out).members}
    assert not [p for p in paths if p.startswith("tlog/")]
    assert not [p for p in paths if p.startswith("evidence/sigstore/")]


def test_second_export_after_the_log_grew_carries_a_consistency_proof(
    world: World, tmp_path: Path
) -> None:
    first = tmp_path / "first.dhi.tar.zst"
    assert run(world.argv(image_ref(world.a), first))[0] == 0
    old = world.rekor.size
    for i in range(3):
        world.rekor.add_entry(b'{"grown":%d,"at":"%s"}' % (i, tmp_path.name.encode()))
    new = world.rekor.size
    second = tmp_path / "second.dhi.tar.zst"
    code, _, err = run(world.argv(image_ref(world.a), second))
    assert code == 0, err
    opened = open_verified(second, world.exporter_pub, tmp_path / "x")
    paths = {m.path for m in opened.manifest.members}
    consistency = f"tlog/{world.log_id}/consistency/{old}-{new}.json"
    assert tlog_members(paths, world.log_id, "consistency/") == [consistency]
    record = json.loads((opened.root / consistency).read_bytes())
    assert json.dumps(record).count(world.rekor.checkpoint(old).split("\n")[2]) >= 1
    assert (opened.root / "tlog" / world.log_id / "checkpoint.txt").read_text() == (
        world.rekor.checkpoint(new)
    )
    assert opened.manifest.sequence == 2


def _grown_fork(log: RekorDouble) -> RekorDouble:
    """The last leaf replaced, then two more: larger than what the exporter saw."""
    fork = log.equivocate()
    fork.add_entry(b'{"fork":1}')
    fork.add_entry(b'{"fork":2}')
    return fork


def _smaller_fork(log: RekorDouble) -> RekorDouble:
    """The last two leaves dropped, one other added: smaller, and not a prefix."""
    fork = log.fork(log.size - 2)
    fork.add_entry(b'{"fork":"smaller"}')
    return fork


# Same key, same origin, another history, served under the same URL. The newest leaves
# are not the publisher's (see the world fixture), so every attestation entry is still
# there; only the tree the exporter remembers from its first export is contradicted.
FORKS = [
    pytest.param(_grown_fork, id="grown-fork"),
    pytest.param(RekorDouble.equivocate, id="same-size-other-root"),
    # Regression: a log that cannot prove its smaller tree is a prefix of the one seen
    # before used to be packed with only a warning (export/run.py _complete_entries).
    pytest.param(_smaller_fork, id="smaller-not-a-prefix"),
]


@pytest.mark.parametrize("make_fork", FORKS)
def test_a_forked_log_fails_the_next_export_and_writes_nothing(
    world: World, tmp_path: Path, make_fork: Any
) -> None:
    first = tmp_path / "first.dhi.tar.zst"
    assert run(world.argv(image_ref(world.a), first))[0] == 0
    world.rekor.present(make_fork(world.rekor))
    out_dir = tmp_path / "second"
    out_dir.mkdir()
    try:
        code, _, err = run(world.argv(image_ref(world.a), out_dir / "b.dhi.tar.zst"))
    finally:
        world.rekor.present(None)
    assert code == 1, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("dhi-offline: verification failed: consistency proof:"), err
    assert list(out_dir.iterdir()) == []  # no bundle, no temp file


@pytest.fixture(scope="module")
def rogue(world: World) -> tuple[str, int]:
    """Repository ``dhi/rogue`` in A: the image, with one extra DHI attestation per
    platform signed by a key that is not pinned. Returns (reference, rogue count)."""
    repository = "dhi/rogue"
    skopeo_push(world.image.layout, TAG, f"{world.a.host}/{repository}:{TAG}")
    intruder = TestPublisher(rekor=world.rekor)
    refs = image_refs(world.image, "dhi.io/rogue")
    honest = [world.publisher.dhi_attestation(r, CTRF_TESTS, ctrf_tests()) for r in refs]
    forged = [intruder.dhi_attestation(r, CYCLONEDX, cyclonedx_sbom(r)) for r in refs]
    with fast_client() as client:
        push_published(client, world.a.host, repository, [*honest, *forged])
    return f"{world.a.host}/{repository}:{TAG}", len(forged)


def test_unpinned_signer_is_left_out_or_flagged(
    world: World, rogue: tuple[str, int], tmp_path: Path
) -> None:
    ref, n_forged = rogue
    out = tmp_path / "rogue.dhi.tar.zst"
    argv = [a for a in world.argv(ref, out) if a != world.b.host]
    argv.remove("--attestations-from")
    code, stdout, err = run(argv)
    assert code == 1, err
    doc = json.loads(stdout)
    assert doc["attestations"]["failed"] == n_forged
    assert doc["attestations"]["verified"] == len(PLATFORMS)
    assert all("pinned publisher key" in f["reason"] for f in doc["failures"])
    opened = open_verified(out, world.exporter_pub, tmp_path / "x")
    records = evidence_records(opened)
    assert {r["predicateType"] for r in records} == {CTRF_TESTS}
    assert opened.manifest.flags == ()

    flagged = tmp_path / "flagged.dhi.tar.zst"
    argv[argv.index(str(out))] = str(flagged)
    code, stdout, err = run([*argv, "--allow-unverified"])
    assert code == 0, err
    assert json.loads(stdout)["flags"] == ["allow-unverified"]
    opened = open_verified(flagged, world.exporter_pub, tmp_path / "y")
    assert opened.manifest.flags == ("allow-unverified",)
    status = Counter((r["predicateType"], r["exporterStatus"]) for r in evidence_records(opened))
    assert status == Counter(
        {(CTRF_TESTS, "verified"): len(PLATFORMS), (CYCLONEDX, "unverified"): n_forged}
    )


def test_same_inputs_same_epoch_give_byte_identical_bundles(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    bundles = []
    for name in ("one", "two"):
        monkeypatch.setenv("DHI_OFFLINE_STATE_DIR", str(tmp_path / f"state-{name}"))
        out = tmp_path / f"{name}.dhi.tar.zst"
        code, _, err = run(world.argv(image_ref(world.a), out))
        assert code == 0, err
        bundles.append(out.read_bytes())
    assert bundles[0] == bundles[1]
    assert inspect_bundle(tmp_path / "one.dhi.tar.zst").created.timestamp() == int(EPOCH)


def test_basic_auth_image_registry_with_docker_config(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref = image_ref(world.c)
    code, _, err = run(world.argv(ref, tmp_path / "anon.dhi.tar.zst"))
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert ref in err and "authentication required" in err and world.c.host in err
    assert not (tmp_path / "anon.dhi.tar.zst").exists()

    monkeypatch.setenv("DOCKER_CONFIG", str(world.docker_config))
    out = tmp_path / "basic.dhi.tar.zst"
    code, stdout, err = run(world.argv(ref, out))
    assert code == 0, err
    doc = json.loads(stdout)
    # The image from C (Basic auth), the DHI attestations from B (anonymous).
    assert doc["images"][0]["digest"] == world.image.index.digest
    assert doc["attestations"]["verified"] == 3 * len(PLATFORMS)
    assert set(doc["attestations"]["byPredicateType"]) == {
        CTRF_TESTS,
        CYCLONEDX,
        SLSA_PROVENANCE_V1,
    }


def test_token_auth_image_registry_with_docker_config(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(world.docker_config))
    before = len(world.tokens.requests)
    out = tmp_path / "token.dhi.tar.zst"
    code, stdout, err = run(world.argv(image_ref(world.d), out))
    assert code == 0, err
    doc = json.loads(stdout)
    assert doc["images"][0]["digest"] == world.image.index.digest
    assert doc["attestations"]["verified"] == 3 * len(PLATFORMS)
    issued = world.tokens.requests[before:]
    assert issued and all(r.status == 200 and r.user == "alice" for r in issued)
    assert all(r.scopes == [f"repository:{REPOSITORY}:pull"] for r in issued)
    # A token is fetched once per scope and then reused.
    assert len(issued) == 1


# ----------------------------------------------------------------- several images, --jobs

EXTRA_PLATFORMS = (("linux/386", "linux/arm/v7"), ("linux/ppc64le", "linux/s390x"))
"""Platforms of the extra images: other platforms, so other digests and other evidence."""


@pytest.fixture(scope="module")
def several(world: World) -> list[str]:
    """Three images in A (the world's and ``dhi/extra-1``, ``dhi/extra-2``), each with
    the full set of attestations (DHI ones in B). Returns their references, in order."""
    refs = [image_ref(world.a)]
    for n, platforms in enumerate(EXTRA_PLATFORMS, 1):
        repository = f"dhi/extra-{n}"
        image = build_image(world.dir / f"layout-extra-{n}", TAG, platforms=platforms)
        skopeo_push(image.layout, TAG, f"{world.a.host}/{repository}:{TAG}")
        atts = make_attestations(world.publisher, image_refs(image, f"dhi.io/extra-{n}"))
        with fast_client() as client:
            push_published(client, world.b.host, repository, atts.dhi)
            push_published(client, world.a.host, repository, [*atts.att, *atts.bundles])
        refs.append(image_ref(world.a, repository))
    # As in the world fixture: the newest leaves are not ours, so forks keep our entries.
    world.rekor.add_entry(b'{"someone":"else, after the extra images"}')
    world.rekor.add_entry(b'{"someone":"else, after the extra images, again"}')
    return refs


@dataclass
class Traffic:
    """Registry requests of the CLI's clients: URL paths and the threads that sent them."""

    paths: list[str]
    threads: set[str]


@pytest.fixture
def traffic(monkeypatch: pytest.MonkeyPatch) -> Traffic:
    """The CLI's RegistryClient, recording its requests; the first image (``dhi/python``)
    is made slow, so with several jobs it finishes after the images that follow it."""
    seen = Traffic([], set())
    lock = threading.Lock()

    class Recording(RegistryClient):
        def _count_request(self, request: Any) -> None:
            super()._count_request(request)
            with lock:
                seen.paths.append(request.url.path)
                seen.threads.add(threading.current_thread().name)
            if f"/v2/{REPOSITORY}/" in request.url.path:
                time.sleep(0.02)

    monkeypatch.setattr(export_cmd, "RegistryClient", Recording)
    return seen


def test_jobs_give_the_same_bundle_bytes(
    world: World,
    several: list[str],
    traffic: Traffic,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    bundles: dict[str, bytes] = {}
    for jobs in ("1", "8"):
        monkeypatch.setenv("DHI_OFFLINE_STATE_DIR", str(tmp_path / f"state-{jobs}"))
        out = tmp_path / f"j{jobs}.dhi.tar.zst"
        argv = world.argv(several[0], out, "--jobs", jobs)
        argv[2:2] = several[1:]  # IMAGE... in order: python, extra-1, extra-2
        traffic.threads.clear()
        code, stdout, err = run(argv)
        assert code == 0, err
        doc = json.loads(stdout)
        assert [i["reference"] for i in doc["images"]] == several
        assert doc["attestations"]["verified"] == 3 * sum(PER_PLATFORM.values()) * 2
        assert doc["tlog"]["set-only"] == 0 and doc["tlog"]["absent"] == 0
        bundles[jobs] = out.read_bytes()
        workers = {t for t in traffic.threads if t.startswith("dhi-export")}
        # Image 1 is slow: with 8 jobs the images after it are fetched by other threads.
        assert (len(workers) >= 2) if jobs == "8" else not workers, traffic.threads
    assert bundles["1"] == bundles["8"]
    opened = open_verified(tmp_path / "j8.dhi.tar.zst", world.exporter_pub, tmp_path / "x")
    assert [i.reference for i in opened.manifest.images] == several
    assert len(evidence_records(opened)) == 3 * sum(PER_PLATFORM.values()) * 2


def test_a_registry_without_the_referrers_api_is_asked_once(
    world: World, several: list[str], traffic: Traffic, tmp_path: Path
) -> None:
    """distribution 2.8 answers the referrers API with 404: asked once per registry, then
    only fallback tags, even from 8 threads at once."""
    out = tmp_path / "once.dhi.tar.zst"
    argv = world.argv(several[0], out, "--jobs", "8")
    argv[2:2] = several[1:]
    code, _, err = run(argv)
    assert code == 0, err
    api = [p for p in traffic.paths if "/referrers/" in p]
    assert len(api) == 2, api  # one to A, one to B
    fallback = [p for p in traffic.paths if re.search(r"/manifests/sha256-[0-9a-f]{64}$", p)]
    # Per image: 2 platforms x (A, B) subject listings, and one per DHI attestation
    # (its signatures): 3 per platform.
    assert len(fallback) == 3 * 2 * (2 + 3)


def _library_export(
    world: World, refs: list[str], tmp_path: Path, jobs: int
) -> list[tuple[str, str, str]]:
    """``run_export`` with ``jobs``: every event as (thread, kind, message)."""
    events: list[tuple[str, str, str]] = []
    ring = Keyring(name="test").with_entry(
        KeyringEntry(name="publisher", key=load_pem(world.pub.read_bytes()))
    )
    client = fast_client(remember_referrers_api=True)
    requests = []
    for ref in refs:
        host, _, rest = ref.partition("/")
        repository, _, tag = rest.partition(":")
        source = RegistrySource(client, Reference(host, repository, tag, None))
        att = RegistrySource(client, Reference(world.b.host, repository, None, None))
        requests.append(ImageRequest(ref, tag, source, (att,)))
    config = ExportConfig(
        output=tmp_path / f"lib-{jobs}.dhi.tar.zst",
        signing_key=load_private_key(world.exporter),
        keyring=ring,
        trusted_root=load_trusted_root(world.root),
        now=datetime.fromtimestamp(int(EPOCH), UTC),
        expires=timedelta(days=1),
        state_dir=tmp_path / f"lib-state-{jobs}",
        rekor=lambda _url: RekorClient(world.rekor_url),
        source_date_epoch=int(EPOCH),
        jobs=jobs,
    )
    with client:
        run_export(
            requests,
            config,
            lambda kind, message: events.append((threading.current_thread().name, kind, message)),
        )
    return events


def test_events_come_from_the_calling_thread_in_the_same_order(
    world: World, several: list[str], tmp_path: Path
) -> None:
    sequential = _library_export(world, several, tmp_path, 1)
    parallel = _library_export(world, several, tmp_path, 8)
    assert {t for t, _, _ in parallel} == {threading.current_thread().name}
    assert [(k, m) for _, k, m in parallel] == [(k, m) for _, k, m in sequential]
    assert [m for _, k, m in parallel if k == "image"] == several
    assert (tmp_path / "lib-1.dhi.tar.zst").read_bytes() == (
        tmp_path / "lib-8.dhi.tar.zst"
    ).read_bytes()
