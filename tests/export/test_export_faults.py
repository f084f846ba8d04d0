"""``dhi-offline export`` through a misbehaving registry.

A :class:`~tests.support.registry.FaultProxy` sits in front of a real distribution
registry holding a two-platform image and all three attestation layouts. Transient
faults (5xx, 429 + Retry-After, connections reset mid-blob, slow answers) must be
retried through: the export succeeds and the bundle verifies when read back with the
exporter's public key, with the same evidence as an export without faults. Faults that
must not be retried (wrong bytes) or that do not heal (a persistent 500, a registry that
goes away mid-export) must fail cleanly: exit 1 or 2, one line on stderr naming the
image and the request, no traceback, nothing at the output path and no temp file left.

The export CLI builds ``RegistryClient(...)`` with its default retry policy (5 attempts,
backoff 0.5 s doubling, Retry-After honoured up to 60 s). Sleeping for real would make
this module take minutes, so most tests swap the CLI's ``RegistryClient`` for one whose
``sleep`` only records the delays, and assert on those; one test keeps the real sleep.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from dhi_offline.bundle.signing import generate_keypair
from dhi_offline.cli import export as export_cmd
from dhi_offline.oci.client import RegistryClient
from tests.export.test_export_registry import (
    EXTRA_PLATFORMS,
    PER_PLATFORM,
    PLATFORMS,
    REPOSITORY,
    TAG,
    evidence_records,
    image_refs,
    make_attestations,
    open_verified,
    push_published,
    run,
)
from tests.support.publisher import TestPublisher
from tests.support.registry import (
    Fault,
    FaultProxy,
    ImageFixture,
    RunningRegistry,
    build_image,
    fast_client,
    require_registry_tools,
    run_registry,
    skopeo_push,
)
from tests.support.rekor_double import RekorDouble

pytestmark = pytest.mark.integration

LOG_TIME = 1_775_000_000
TOTAL = sum(PER_PLATFORM.values()) * len(PLATFORMS)


class NoDelayFaultProxy(FaultProxy):
    """The FaultProxy with TCP_NODELAY on its side of the connections.

    Its handler writes the head and the body in two sends; with Nagle's algorithm on,
    each response then waits for the client's delayed ACK (~40 ms on Linux), which made
    an export through the proxy take 3-4 s instead of 0.5 s.
    """

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        base = super()._handler_class()
        return type("NoDelayHandler", (base,), {"disable_nagle_algorithm": True})


@dataclass
class Site:
    """One registry with the image and every layout, a served Rekor double, keys."""

    dir: Path
    registry: RunningRegistry
    image: ImageFixture
    rekor_url: str
    publisher: TestPublisher
    baseline_ids: list[str] = field(default_factory=list)
    baseline_requests: int = 0

    def argv(self, host: str, out: Path, *repositories: str) -> list[str]:
        """Export ``REPOSITORY`` (or ``repositories``, in order) through ``host``."""
        return [
            "export",
            *(f"{host}/{r}:{TAG}" for r in repositories or (REPOSITORY,)),
            "--key",
            str(self.dir / "publisher.pub"),
            "--signing-key",
            str(self.dir / "exporter.pem"),
            "--trusted-root",
            str(self.dir / "tr.json"),
            "--rekor-url",
            self.rekor_url,
            "-o",
            str(out),
            "--format",
            "json",
        ]


@dataclass
class Clients:
    """The clients the CLI made, and every backoff delay they asked to sleep."""

    made: list[RegistryClient] = field(default_factory=list)
    sleeps: list[float] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return sum(c.requests for c in self.made)


@pytest.fixture
def clients(monkeypatch: pytest.MonkeyPatch) -> Clients:
    """Replace the CLI's RegistryClient by one that records its sleeps instead of sleeping."""
    seen = Clients()

    class Recording(RegistryClient):
        def __init__(self, **kwargs: Any) -> None:
            kwargs.setdefault("sleep", seen.sleeps.append)
            super().__init__(**kwargs)
            seen.made.append(self)

    monkeypatch.setattr(export_cmd, "RegistryClient", Recording)
    return seen


@pytest.fixture(autouse=True)
def _environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DHI_OFFLINE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-docker-config"))
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    require_registry_tools()
    base = tmp_path_factory.mktemp("faults")
    rekor = RekorDouble(clock=lambda: LOG_TIME)
    rekor.add_entry(b'{"someone":"else"}')
    (base / "tr.json").write_bytes(rekor.trusted_root_json())
    publisher = TestPublisher(rekor=rekor)
    (base / "publisher.pub").write_bytes(publisher.public_key_pem)
    generate_keypair(base / "exporter")
    with ExitStack() as stack:
        url = stack.enter_context(rekor.serve())
        registry = stack.enter_context(run_registry(base / "registry"))
        image = build_image(base / "layout", TAG, platforms=PLATFORMS)
        skopeo_push(image.layout, TAG, f"{registry.host}/{REPOSITORY}:{TAG}")
        atts = make_attestations(publisher, image_refs(image, "dhi.io/python"))
        with fast_client() as client:
            push_published(client, registry.host, REPOSITORY, [*atts.dhi, *atts.att, *atts.bundles])
        site = Site(base, registry, image, url, publisher)
        # The baseline: what an export without faults finds, and how many requests it takes.
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("DHI_OFFLINE_STATE_DIR", str(base / "baseline-state"))
            mp.setenv("DOCKER_CONFIG", str(base / "no-docker-config"))
            client_box: list[RegistryClient] = []

            class Counting(RegistryClient):
                def __init__(self, **kwargs: Any) -> None:
                    super().__init__(**kwargs)
                    client_box.append(self)

            mp.setattr(export_cmd, "RegistryClient", Counting)
            out = base / "baseline.dhi.tar.zst"
            code, stdout, err = run(site.argv(registry.host, out))
            assert code == 0, err
            assert json.loads(stdout)["attestations"]["verified"] == TOTAL
            opened = open_verified(out, base / "exporter.pub", base / "baseline")
            site.baseline_ids = sorted(r["id"] for r in evidence_records(opened))
            site.baseline_requests = sum(c.requests for c in client_box)
        yield site


def _assert_same_evidence(site: Site, out: Path, dest: Path) -> None:
    """The bundle verifies under the exporter key and holds the baseline's evidence."""
    opened = open_verified(out, site.dir / "exporter.pub", dest)
    assert sorted(r["id"] for r in evidence_records(opened)) == site.baseline_ids
    assert opened.manifest.images[0].digest == site.image.index.digest


def _assert_clean_failure(code: int, err: str, out_dir: Path, *needles: str) -> None:
    assert code in (1, 2), err
    assert err.count("\n") == 1, err
    assert err.startswith("dhi-offline: ") and "Traceback" not in err
    for needle in needles:
        assert needle in err, (needle, err)
    # No bundle, no temp file; the output directory the CLI created is removed too.
    assert not out_dir.exists()


MANIFEST_GET = r"^GET /v2/.*/manifests/"
BLOB_GET = r"^GET /v2/.*/blobs/sha256:"

RECOVERABLE = [
    pytest.param(
        [Fault("status", match=r"^GET /v2/.", every=3, status=500)], "status 500", id="500s"
    ),
    pytest.param(
        [Fault("status", match=r"^GET /v2/.", every=4, status=503)], "status 503", id="503s"
    ),
    pytest.param(
        [Fault("status", match=MANIFEST_GET, times=3, status=429, headers={"Retry-After": "3"})],
        "status 429",
        id="429-retry-after",
    ),
    pytest.param([Fault("reset", match=BLOB_GET, every=2)], "reset", id="reset-mid-blob"),
    pytest.param([Fault("reset", match=MANIFEST_GET, every=5)], "reset", id="reset-mid-manifest"),
    pytest.param(
        [Fault("stall", match=r"^GET /v2/.", every=4, stall_seconds=0.05)], "stall", id="slow"
    ),
    pytest.param(
        [
            Fault("status", match=BLOB_GET, every=4, status=502),
            Fault("reset", match=MANIFEST_GET, every=6),
            Fault("status", match=MANIFEST_GET, every=7, status=429, headers={"Retry-After": "1"}),
            Fault("stall", match=r"^GET /v2/.", every=9, stall_seconds=0.02),
        ],
        "",
        id="mixed",
    ),
]


@pytest.mark.parametrize(("plan", "action"), RECOVERABLE)
def test_transient_faults_are_retried_through(
    site: Site, clients: Clients, tmp_path: Path, plan: list[Fault], action: str
) -> None:
    out = tmp_path / "out" / "b.dhi.tar.zst"
    with NoDelayFaultProxy(site.registry.host, plan) as proxy:
        code, stdout, err = run(site.argv(proxy.host, out))
    assert code == 0, err
    assert json.loads(stdout)["attestations"]["verified"] == TOTAL
    injected = [a for a in proxy.actions() if a != "pass"]
    assert injected and all(a.startswith(action) for a in injected), injected
    _assert_same_evidence(site, out, tmp_path / "x")
    retried = sum(1 for a in injected if a != "stall")
    assert clients.requests == site.baseline_requests + retried
    assert len(clients.sleeps) == retried
    if any(f.headers.get("Retry-After") for f in plan):
        assert set(clients.sleeps) & {1.0, 3.0}  # the server's Retry-After, not our backoff


def test_retry_after_is_capped(site: Site, clients: Clients, tmp_path: Path) -> None:
    plan = [
        Fault("status", match=MANIFEST_GET, times=1, status=429, headers={"Retry-After": "3600"})
    ]
    with NoDelayFaultProxy(site.registry.host, plan) as proxy:
        code, _, err = run(site.argv(proxy.host, tmp_path / "b.dhi.tar.zst"))
    assert code == 0, err
    assert clients.sleeps == [20.0]  # the --retry-max-wait default caps Retry-After


def test_retry_max_wait_option(site: Site, clients: Clients, tmp_path: Path) -> None:
    plan = [
        Fault("status", match=MANIFEST_GET, times=1, status=429, headers={"Retry-After": "3600"})
    ]
    with NoDelayFaultProxy(site.registry.host, plan) as proxy:
        argv = [*site.argv(proxy.host, tmp_path / "b.dhi.tar.zst"), "--retry-max-wait", "2"]
        code, _, err = run(argv)
    assert code == 0, err
    assert clients.sleeps == [2.0]


def test_real_backoff_is_short_for_one_fault(site: Site, tmp_path: Path) -> None:
    """Without the recording client: one 500 costs one real backoff (0.25-0.5 s)."""
    plan = [Fault("status", match=MANIFEST_GET, times=1, status=500)]
    started = time.monotonic()
    with NoDelayFaultProxy(site.registry.host, plan) as proxy:
        code, _, err = run(site.argv(proxy.host, tmp_path / "b.dhi.tar.zst"))
    elapsed = time.monotonic() - started
    assert code == 0, err
    assert proxy.actions("status") == ["status 500"]
    assert elapsed >= 0.25


def test_wrong_bytes_fail_closed(site: Site, clients: Clients, tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    plan = [Fault("corrupt", match=BLOB_GET, every=3)]
    with NoDelayFaultProxy(site.registry.host, plan) as proxy:
        code, _, err = run(site.argv(proxy.host, out_dir / "b.dhi.tar.zst"))
    assert proxy.actions("corrupt") == ["corrupt"]  # stopped at the first wrong blob
    reference = f"{proxy.host}/{REPOSITORY}:{TAG}"
    _assert_clean_failure(code, err, out_dir, reference, "blob sha256:")
    assert code == 1  # docs/cli.md: wrong bytes failed verification, whoever carried them
    assert err.startswith("dhi-offline: verification failed: ")
    assert clients.sleeps == []  # wrong bytes are not retried


def test_wrong_manifest_bytes_fail_closed(site: Site, clients: Clients, tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    plan = [Fault("corrupt", match=MANIFEST_GET + "sha256:", times=1)]
    with NoDelayFaultProxy(site.registry.host, plan) as proxy:
        code, _, err = run(site.argv(proxy.host, out_dir / "b.dhi.tar.zst"))
    reference = f"{proxy.host}/{REPOSITORY}:{TAG}"
    _assert_clean_failure(code, err, out_dir, reference, "manifest sha256:")
    assert code == 1


def test_a_persistent_500_fails_after_the_retries(
    site: Site, clients: Clients, tmp_path: Path
) -> None:
    out_dir = tmp_path / "out"
    victim = site.image.platforms[1].manifest.digest
    plan = [Fault("status", match=f"GET /v2/.*/manifests/{victim}", times=-1, status=500)]
    with NoDelayFaultProxy(site.registry.host, plan) as proxy:
        code, _, err = run(site.argv(proxy.host, out_dir / "b.dhi.tar.zst"))
    assert proxy.actions("status") == ["status 500"] * 5  # RetryPolicy.max_attempts
    reference = f"{proxy.host}/{REPOSITORY}:{TAG}"
    _assert_clean_failure(code, err, out_dir, reference, f"manifest {victim}", "HTTP 500")
    assert len(clients.sleeps) == 4
    # The default backoff: 0.5 s doubling, each delay scaled by 0.5-1.0 (jitter).
    for attempt, delay in enumerate(clients.sleeps):
        assert 0.5 * 2**attempt * 0.5 <= delay <= 0.5 * 2**attempt


def test_rate_limited_for_good_fails_cleanly(site: Site, clients: Clients, tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    plan = [Fault("status", match=BLOB_GET, times=-1, status=429, headers={"Retry-After": "1"})]
    with NoDelayFaultProxy(site.registry.host, plan) as proxy:
        code, _, err = run(site.argv(proxy.host, out_dir / "b.dhi.tar.zst"))
    reference = f"{proxy.host}/{REPOSITORY}:{TAG}"
    _assert_clean_failure(code, err, out_dir, reference, "blob sha256:", "rate limited")
    assert clients.sleeps == [1.0] * 4


def test_registry_going_away_mid_export_fails_cleanly(
    site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second registry process serves the same storage; it is stopped halfway."""
    sleeps: list[float] = []
    with run_registry(site.dir / "registry") as doomed:
        stop_after = site.baseline_requests // 2

        class Stopping(RegistryClient):
            def __init__(self, **kwargs: Any) -> None:
                kwargs.setdefault("sleep", sleeps.append)
                super().__init__(**kwargs)

            def _count_request(self, request: Any) -> None:
                super()._count_request(request)
                if self.requests == stop_after:
                    doomed.process.terminate()
                    doomed.process.wait(timeout=10)

        monkeypatch.setattr(export_cmd, "RegistryClient", Stopping)
        out_dir = tmp_path / "out"
        code, _, err = run(site.argv(doomed.host, out_dir / "b.dhi.tar.zst"))
    reference = f"{doomed.host}/{REPOSITORY}:{TAG}"
    _assert_clean_failure(code, err, out_dir, reference, "cannot connect after 5 attempts")
    assert len(sleeps) == 4


# ----------------------------------------------------------------- several images, --jobs

EXTRA = ("dhi/extra-1", "dhi/extra-2")


@pytest.fixture(scope="module")
def extra(site: Site) -> tuple[str, ...]:
    """Two more images (other platforms) with every layout, in the same registry.
    Returns the three repositories in export order."""
    for repository, platforms in zip(EXTRA, EXTRA_PLATFORMS, strict=True):
        image = build_image(site.dir / f"layout-{repository.rsplit('/', 1)[1]}", TAG, platforms)
        skopeo_push(image.layout, TAG, f"{site.registry.host}/{repository}:{TAG}")
        atts = make_attestations(site.publisher, image_refs(image, f"dhi.io/{repository}"))
        with fast_client() as client:
            push_published(
                client, site.registry.host, repository, [*atts.dhi, *atts.att, *atts.bundles]
            )
    return (REPOSITORY, *EXTRA)


def test_several_images_with_jobs_survive_transient_faults(
    site: Site, extra: tuple[str, ...], clients: Clients, tmp_path: Path
) -> None:
    out = tmp_path / "out" / "b.dhi.tar.zst"
    plan = [
        Fault("status", match=r"^GET /v2/.", every=11, status=503),
        Fault("reset", match=BLOB_GET, every=10),
    ]
    # From several threads, a retry is not the next request the proxy counts: it is hit
    # again about as often as any request, hence more retries than the default 4.
    with NoDelayFaultProxy(site.registry.host, plan) as proxy:
        argv = [*site.argv(proxy.host, out, *extra), "--jobs", "8", "--retries", "10"]
        code, stdout, err = run(argv)
    assert code == 0, err
    doc = json.loads(stdout)
    assert [i["reference"] for i in doc["images"]] == [f"{proxy.host}/{r}:{TAG}" for r in extra]
    assert doc["attestations"]["verified"] == TOTAL * len(extra)
    assert proxy.actions("status") and proxy.actions("reset")
    opened = open_verified(out, site.dir / "exporter.pub", tmp_path / "x")
    assert len(evidence_records(opened)) == TOTAL * len(extra)


def test_the_first_failed_image_in_order_names_the_error(
    site: Site, extra: tuple[str, ...], clients: Clients, tmp_path: Path
) -> None:
    """The last image fails at once, the second one later (at its first blob): the error
    is the second one's, as a sequential export reports it; nothing is left behind."""
    out_dir = tmp_path / "out"
    plan = [
        Fault("status", match=f"^GET /v2/{extra[2]}/manifests/{TAG}$", times=-1, status=500),
        Fault("status", match=f"^GET /v2/{extra[1]}/blobs/", times=-1, status=500),
    ]
    with NoDelayFaultProxy(site.registry.host, plan) as proxy:
        argv = [*site.argv(proxy.host, out_dir / "b.dhi.tar.zst", *extra), "--jobs", "8"]
        code, _, err = run(argv)
    second = f"{proxy.host}/{extra[1]}:{TAG}"
    _assert_clean_failure(code, err, out_dir, second, "blob sha256:", "HTTP 500")
    assert extra[2] not in err


def test_a_failed_image_fails_the_parallel_export_cleanly(
    site: Site, extra: tuple[str, ...], clients: Clients, tmp_path: Path
) -> None:
    """Wrong bytes in the first image: the same one-line error as with --jobs 1."""
    errors = {}
    for jobs in ("1", "8"):
        out_dir = tmp_path / f"out-{jobs}"
        victim = site.image.platforms[1].manifest.digest
        plan = [Fault("corrupt", match=f"^GET /v2/{REPOSITORY}/manifests/{victim}", times=-1)]
        with NoDelayFaultProxy(site.registry.host, plan) as proxy:
            argv = [*site.argv(proxy.host, out_dir / "b.dhi.tar.zst", *extra), "--jobs", jobs]
            code, _, err = run(argv)
        _assert_clean_failure(code, err, out_dir, f"{proxy.host}/{REPOSITORY}:{TAG}", victim)
        errors[jobs] = err.replace(proxy.host, "PROXY")
    assert errors["1"] == errors["8"]
