"""An OCI distribution client on httpx: manifests, blobs, referrers, uploads, with auth.

:class:`RegistryClient` is the one public client. It is assembled from layers, each in
its own module with the rules it follows written in that module's docstring:

- :mod:`.transport`: **Transport** (HTTPS, plain HTTP for insecure and loopback
  registries, Docker Hub's API host), **Retries** (the shared loop of
  :mod:`dhi_offline.net.http`), thread safety; the request loop with its auth hooks.
- :mod:`.token`: **Auth**: the ``401`` challenge, Basic, bearer tokens per scope.
- :mod:`.status`: **Errors**: callers see only the RegistryError family, one line,
  naming registry, repository and the object requested.
- :mod:`.download`: **Integrity**: manifests and blobs hashed and counted as they
  stream (``get_manifest``, ``get_tag``, ``get_blob``, ``download_blob``).
- :mod:`.referrers`: **Referrers**: the API, its tag fallback, remembering a registry
  without it.
- :mod:`.upload`: **Uploads**: blobs (monolithic, chunked, mounted) and manifests.
"""

from __future__ import annotations

import random
import ssl
import time
from collections.abc import Callable, Iterable

import httpx

from dhi_offline.net.http import MAX_ERROR_BODY, USER_AGENT, RetryPolicy, retry_after_seconds
from dhi_offline.oci.auth import CredentialStore
from dhi_offline.oci.content import MAX_BLOB_SIZE, MAX_MANIFEST_SIZE
from dhi_offline.oci.referrers import ReferrersLookup
from dhi_offline.oci.token import MAX_TOKEN_RESPONSE
from dhi_offline.oci.transport import DOCKER_HUB_API_HOST
from dhi_offline.oci.upload import DEFAULT_UPLOAD_CHUNK, BlobPush, RegistryUploads

__all__ = [
    "DEFAULT_UPLOAD_CHUNK",
    "DOCKER_HUB_API_HOST",
    "MAX_ERROR_BODY",
    "MAX_TOKEN_RESPONSE",
    "USER_AGENT",
    "BlobPush",
    "RegistryClient",
    "RetryPolicy",
    "retry_after_seconds",
]


class RegistryClient(ReferrersLookup, RegistryUploads):
    """A thread-safe OCI distribution client (see the module docstrings for behaviour).

    Args:
        credentials: where credentials come from; defaults to the Docker CLI config.
        insecure_registries: ``HOST[:PORT]`` entries spoken to over plain HTTP (a bare
            host matches every port).
        plain_http_loopback: speak HTTP to loopback registries (Docker's default).
        concurrency: the caller's thread-pool size; sets the connection limit.
        timeout: connect/read/write timeout in seconds.
        retry: retry policy.
        sleep: called with each backoff delay (tests pass a recorder).
        jitter: returns a float in [0, 1) that spreads backoff delays.
        progress: called with byte counts as blobs arrive (negative when a partial
            download is discarded before a retry).
        max_manifest_size: cap on manifests, indexes and referrers pages.
        max_blob_size: default cap on blobs.
        verify_tls: ``True``, a CA bundle path, or an ``ssl.SSLContext``.
        transport: an httpx transport to use instead of the network (tests).
        remember_referrers_api: remember per registry that the referrers API is missing
            (see :mod:`dhi_offline.oci.referrers`) instead of asking for it on every lookup.
    """

    def __init__(
        self,
        *,
        credentials: CredentialStore | None = None,
        insecure_registries: Iterable[str] = (),
        plain_http_loopback: bool = True,
        concurrency: int = 8,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
        progress: Callable[[int], None] | None = None,
        max_manifest_size: int = MAX_MANIFEST_SIZE,
        max_blob_size: int = MAX_BLOB_SIZE,
        max_referrers_pages: int = 64,
        verify_tls: bool | str | ssl.SSLContext = True,
        transport: httpx.BaseTransport | None = None,
        user_agent: str = USER_AGENT,
        remember_referrers_api: bool = False,
    ) -> None:
        super().__init__(
            credentials=credentials,
            insecure_registries=insecure_registries,
            plain_http_loopback=plain_http_loopback,
            concurrency=concurrency,
            timeout=timeout,
            retry=retry,
            sleep=sleep,
            jitter=jitter,
            verify_tls=verify_tls,
            transport=transport,
            user_agent=user_agent,
        )
        self._init_reads(
            progress=progress, max_manifest_size=max_manifest_size, max_blob_size=max_blob_size
        )
        self._init_referrers(
            remember_referrers_api=remember_referrers_api,
            max_referrers_pages=max_referrers_pages,
        )
