"""Fault injection: a proxy in front of the real registry breaks chosen requests.

The client must get through transient faults (5xx, 429 + Retry-After, resets mid-body,
stalls) by retrying, and must refuse wrong or oversized content with a one-line error
naming the request, stopping oversized downloads early.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from dhi_offline.errors import DigestMismatchError, RegistryError, SizeLimitError
from dhi_offline.oci.client import RegistryClient, RetryPolicy
from dhi_offline.oci.content import referrers_tag
from tests.support.registry import Fault, FaultProxy, Seeded, fast_client

pytestmark = pytest.mark.integration

BLOAT = 64 * 1024 * 1024


@pytest.fixture
def proxy(seeded: Seeded) -> Iterator[FaultProxy]:
    with FaultProxy(seeded.registry.host) as running:
        yield running


def _client(sleeps: list[float], **kwargs: object) -> RegistryClient:
    options: dict[str, object] = {"sleep": sleeps.append, "jitter": lambda: 0.0}
    options.update(kwargs)
    return fast_client(**options)


def _layer(seeded: Seeded) -> tuple[str, bytes]:
    platform = seeded.image.platforms[0]
    return max(platform.blobs.items(), key=lambda item: len(item[1]))


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408])
def test_transient_status_is_retried(seeded: Seeded, proxy: FaultProxy, status: int) -> None:
    proxy.plan.append(Fault("status", match="manifests/v1", times=2, status=status))
    sleeps: list[float] = []
    with _client(sleeps) as client:
        top = client.get_manifest(proxy.host, "ns/app", "v1")
        assert client.requests == 3
    assert top.data == seeded.image.index_bytes
    assert proxy.actions() == [f"status {status}", f"status {status}", "pass"]
    assert sleeps == [0.25, 0.5]  # base 0.5 s doubling, jitter at its minimum (x0.5)


def test_backoff_jitter_and_cap(seeded: Seeded, proxy: FaultProxy) -> None:
    proxy.plan.append(Fault("status", match="manifests/v1", times=4, status=503))
    sleeps: list[float] = []
    policy = RetryPolicy(max_attempts=5, backoff_base=1.0, backoff_max=3.0)
    with _client(sleeps, retry=policy, jitter=lambda: 0.999) as client:
        client.get_manifest(proxy.host, "ns/app", "v1")
    assert [round(s, 2) for s in sleeps] == [1.0, 2.0, 3.0, 3.0]


def test_retry_after_seconds_is_honoured(seeded: Seeded, proxy: FaultProxy) -> None:
    proxy.plan.append(
        Fault("status", match="manifests/v1", status=429, headers={"Retry-After": "7"})
    )
    sleeps: list[float] = []
    with _client(sleeps) as client:
        assert client.get_manifest(proxy.host, "ns/app", "v1").digest == seeded.image.index.digest
    assert sleeps == [7.0]


def test_retry_after_http_date_is_honoured(seeded: Seeded, proxy: FaultProxy) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    proxy.plan.append(
        Fault("status", match="manifests/v1", status=503, headers={"Retry-After": when})
    )
    sleeps: list[float] = []
    with _client(sleeps) as client:
        client.get_manifest(proxy.host, "ns/app", "v1")
    (slept,) = sleeps
    assert 27.0 < slept <= 30.0


def test_retry_after_is_capped(seeded: Seeded, proxy: FaultProxy) -> None:
    proxy.plan.append(
        Fault("status", match="manifests/v1", status=429, headers={"Retry-After": "86400"})
    )
    sleeps: list[float] = []
    with _client(sleeps, retry=RetryPolicy(retry_after_cap=12.0)) as client:
        client.get_manifest(proxy.host, "ns/app", "v1")
    assert sleeps == [12.0]


def test_rate_limit_exhausted(seeded: Seeded, proxy: FaultProxy) -> None:
    proxy.plan.append(Fault("status", match="manifests/v1", times=-1, status=429))
    sleeps: list[float] = []
    with _client(sleeps) as client, pytest.raises(RegistryError) as info:
        client.get_manifest(proxy.host, "ns/app", "v1")
    assert info.value.one_line() == (
        f"registry {proxy.host} repository ns/app: tag v1: rate limited, retries exhausted "
        "(HTTP 429 UNAVAILABLE: injected)"
    )
    assert len(proxy.events) == 3 and len(sleeps) == 2


def test_server_error_exhausted(seeded: Seeded, proxy: FaultProxy) -> None:
    digest, _ = _layer(seeded)
    proxy.plan.append(Fault("status", match="blobs/", times=-1, status=500))
    with _client([]) as client, pytest.raises(RegistryError) as info:
        client.get_blob(proxy.host, "ns/app", digest)
    assert info.value.one_line() == (
        f"registry {proxy.host} repository ns/app: blob {digest}: registry answered "
        "HTTP 500 UNAVAILABLE: injected"
    )
    assert type(info.value) is RegistryError and info.value.exit_code == 2


def test_not_implemented_is_not_retried(seeded: Seeded, proxy: FaultProxy) -> None:
    proxy.plan.append(Fault("status", match="manifests/v1", times=-1, status=501))
    with _client([]) as client, pytest.raises(RegistryError, match="HTTP 501"):
        client.get_manifest(proxy.host, "ns/app", "v1")
    assert len(proxy.events) == 1


def test_reset_mid_blob_is_retried(seeded: Seeded, proxy: FaultProxy) -> None:
    digest, data = _layer(seeded)
    proxy.plan.append(Fault("reset", match=f"blobs/{digest}", times=2))
    sleeps: list[float] = []
    progress: list[int] = []
    with _client(sleeps, progress=progress.append) as client:
        assert client.get_blob(proxy.host, "ns/app", digest, len(data)) == data
    assert proxy.actions() == ["reset", "reset", "pass"]
    assert len(sleeps) == 2
    assert sum(progress) == len(data)  # partial downloads were taken back


def test_reset_mid_manifest_is_retried(seeded: Seeded, proxy: FaultProxy) -> None:
    proxy.plan.append(Fault("reset", match="manifests/v1"))
    with _client([]) as client:
        assert client.get_manifest(proxy.host, "ns/app", "v1").data == seeded.image.index_bytes
    assert proxy.actions() == ["reset", "pass"]


def test_stall_read_timeout_is_retried(seeded: Seeded, proxy: FaultProxy) -> None:
    proxy.plan.append(Fault("stall", match="manifests/v1", stall_seconds=1.0))
    sleeps: list[float] = []
    started = time.monotonic()
    with _client(sleeps, timeout=0.3) as client:
        assert client.get_manifest(proxy.host, "ns/app", "v1").digest == seeded.image.index.digest
    assert time.monotonic() - started < 5
    assert proxy.actions() == ["stall", "pass"]
    assert len(sleeps) == 1


def test_referrers_retry_then_fallback(seeded: Seeded, proxy: FaultProxy) -> None:
    subject = seeded.image.platforms[1].manifest.digest
    proxy.plan.append(Fault("status", match="/referrers/", status=503))
    proxy.plan.append(Fault("status", match=referrers_tag(subject), status=502))
    with _client([]) as client:
        result = client.referrers(proxy.host, "ns/app", subject)
    assert result.via == "tag"
    assert list(result.descriptors) == seeded.image.referrers[subject]
    assert proxy.actions() == ["status 503", "pass", "status 502", "pass"]


# ------------------------------------------------------------------ wrong bytes


def test_wrong_blob_bytes_fail_closed(seeded: Seeded, proxy: FaultProxy) -> None:
    digest, data = _layer(seeded)
    proxy.plan.append(Fault("corrupt", match=f"blobs/{digest}"))
    with _client([]) as client, pytest.raises(DigestMismatchError) as info:
        client.get_blob(proxy.host, "ns/app", digest, len(data))
    line = info.value.one_line()
    assert line.startswith(f"registry {proxy.host} repository ns/app: blob {digest}: ")
    assert "content digest is sha256:" in line
    assert info.value.exit_code == 1
    assert len(proxy.events) == 1  # wrong bytes are not retried


def test_wrong_manifest_bytes_by_digest(seeded: Seeded, proxy: FaultProxy) -> None:
    digest = seeded.image.platforms[0].manifest.digest
    proxy.plan.append(Fault("corrupt", match=f"manifests/{digest}"))
    with _client([]) as client, pytest.raises(DigestMismatchError, match=f"manifest {digest}"):
        client.get_manifest(proxy.host, "ns/app", digest)


def test_wrong_manifest_bytes_by_tag(seeded: Seeded, proxy: FaultProxy) -> None:
    """A tag has no digest to check against, but Docker-Content-Digest does."""
    proxy.plan.append(Fault("corrupt", match="manifests/v1"))
    with _client([]) as client, pytest.raises(DigestMismatchError) as info:
        client.get_manifest(proxy.host, "ns/app", "v1")
    assert f"tag v1 (Docker-Content-Digest {seeded.image.index.digest})" in info.value.one_line()


def test_wrong_bytes_on_a_share_of_requests(seeded: Seeded, proxy: FaultProxy) -> None:
    digest, data = _layer(seeded)
    proxy.plan.append(Fault("corrupt", match=f"blobs/{digest}", every=2))
    outcomes = []
    with _client([]) as client:
        for _ in range(4):
            try:
                outcomes.append(client.get_blob(proxy.host, "ns/app", digest, len(data)) == data)
            except DigestMismatchError:
                outcomes.append(False)
    assert outcomes == [True, False, True, False]


# ------------------------------------------------------------------ size limits


def test_oversized_body_stops_early_at_declared_size(seeded: Seeded, proxy: FaultProxy) -> None:
    digest, data = _layer(seeded)
    proxy.plan.append(
        Fault("bloat", match=f"blobs/{digest}", extra_bytes=BLOAT, declare_length=False)
    )
    with _client([]) as client, pytest.raises(DigestMismatchError) as info:
        client.get_blob(proxy.host, "ns/app", digest, len(data))
    assert f"more than the {len(data)} bytes" in info.value.one_line()
    (event,) = proxy.events
    assert event.done.wait(10)
    assert event.bytes_sent < BLOAT // 4  # the client hung up long before the end


def test_oversized_body_stops_early_at_limit(seeded: Seeded, proxy: FaultProxy) -> None:
    digest, _ = _layer(seeded)
    proxy.plan.append(
        Fault("bloat", match=f"blobs/{digest}", extra_bytes=BLOAT, declare_length=False)
    )
    with _client([]) as client, pytest.raises(SizeLimitError) as info:
        client.get_blob(proxy.host, "ns/app", digest, limit=1024 * 1024)
    assert info.value.one_line() == (
        f"registry {proxy.host} repository ns/app: blob {digest}: "
        "larger than the limit of 1048576 bytes"
    )
    (event,) = proxy.events
    assert event.done.wait(10)
    assert event.bytes_sent < BLOAT // 4


def test_announced_oversize_is_refused_before_reading(seeded: Seeded, proxy: FaultProxy) -> None:
    digest, _ = _layer(seeded)
    proxy.plan.append(Fault("bloat", match=f"blobs/{digest}", extra_bytes=BLOAT))
    with _client([]) as client, pytest.raises(SizeLimitError, match="server announces"):
        client.get_blob(proxy.host, "ns/app", digest, limit=1024 * 1024)


def test_oversized_manifest_is_refused(seeded: Seeded, proxy: FaultProxy) -> None:
    proxy.plan.append(Fault("bloat", match="manifests/v1", extra_bytes=BLOAT, declare_length=False))
    with _client([]) as client, pytest.raises(SizeLimitError, match="tag v1: larger than"):
        client.get_manifest(proxy.host, "ns/app", "v1")
    (event,) = proxy.events
    assert event.done.wait(10)
    assert event.bytes_sent < BLOAT // 4
