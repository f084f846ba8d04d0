"""Export side: a small synchronous client of the Rekor v1 REST API.

It fetches what an offline verifier later needs and keeps every response's exact bytes
(``raw``) so the bundle can store them as they were served. Parsing and checking the
answers is pure and lives in :mod:`dhi_offline.tlog.rekor_api` (re-exported here).

Failures: the log unreachable or answering an HTTP error -> :class:`RekorError` (one line
naming the URL; 408, 429, 5xx and connection errors are retried first, by the shared loop
of :mod:`dhi_offline.net.http`); an answer that is not the documented JSON ->
:class:`MalformedEvidenceError`.
"""

from __future__ import annotations

import hmac
import random
import time
from collections.abc import Callable, Mapping
from urllib.parse import urlencode

import httpx

from dhi_offline.encoding import loads_json
from dhi_offline.errors import (
    DhiError,
    MalformedEvidenceError,
    RekorError,
    TransparencyLogError,
    UsageError,
)
from dhi_offline.net.http import (
    RetryPolicy,
    describe_transport_error,
    error_excerpt,
    make_client,
    one_line,
    read_limited,
    retryable_status,
    send,
)
from dhi_offline.tlog.rekor_api import (
    ConsistencyProof,
    LogInfo,
    RekorEntry,
    RekorInclusionProof,
    ShardInfo,
    entry_to_bundle_tlog_entry,
    parse_consistency_proof,
    parse_log_entry,
    parse_log_info,
    rekor_entry_uuid,
    to_tlog_entry,
    verify_log_info,
    verify_rekor_entry,
)

DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRIES = 3
DEFAULT_BACKOFF = 0.5
MAX_BACKOFF = 30.0
MAX_RESPONSE_BYTES = 32 * 1024 * 1024
"""Refuse answers larger than this (a Rekor entry is a few KiB; proofs are smaller)."""


# ---------------------------------------------------------------------------- data


def _api_message(body: bytes) -> str:
    """Rekor's ``{"code", "message"}`` error text, if the body is one."""
    try:
        doc = loads_json(body, what="Rekor error")
    except MalformedEvidenceError:
        return one_line(body.decode("utf-8", "replace"), 120)
    if isinstance(doc, dict) and isinstance(doc.get("message"), str):
        return one_line(doc["message"], 120)
    return ""


class RekorClient:
    """A synchronous Rekor v1 API client with the retries of :mod:`dhi_offline.net.http`.

    Args:
        base_url: the log's URL, e.g. ``https://rekor.sigstore.dev``.
        transport: an ``httpx`` transport (tests pass ``httpx.MockTransport``).
        timeout: seconds per request.
        retries: how many times a request is retried after a connection error, a
            timeout, HTTP 408, 429 or a 5xx answer but 501/505 (so at most
            ``retries + 1`` attempts).
        backoff: the first retry waits about this many seconds (scaled by jitter),
            doubling each time (capped at 30 s); ``Retry-After`` replaces it, capped at
            the same 30 s.
        sleep: the sleep function (tests pass a no-op or a recorder).
        max_response_bytes: refuse larger answers.
        retry: a retry policy; when given, it replaces ``retries`` and ``backoff``.
        jitter: returns a float in [0, 1) that spreads backoff delays.

    Use as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        base_url: str,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        backoff: float = DEFAULT_BACKOFF,
        sleep: Callable[[float], None] = time.sleep,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        retry: RetryPolicy | None = None,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        url = base_url.strip().rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise UsageError(f"Rekor URL must start with http:// or https://, got {base_url!r}")
        if retries < 0:
            raise UsageError("retries must be >= 0")
        try:
            httpx.URL(url)
        except httpx.InvalidURL as e:
            raise UsageError(f"invalid Rekor URL {base_url!r}: {e}") from e
        self.base_url = url
        self.retry = (
            retry
            if retry is not None
            else RetryPolicy(
                max_attempts=retries + 1,
                backoff_base=backoff,
                backoff_max=MAX_BACKOFF,
                retry_after_cap=MAX_BACKOFF,
            )
        )
        self._sleep = sleep
        self._jitter = jitter
        self._max = max_response_bytes
        self._client = make_client(
            timeout=timeout, transport=transport, headers={"Accept": "application/json"}
        )

    def __enter__(self) -> RekorClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the underlying connection pool."""
        self._client.close()

    # ------------------------------------------------------------------ API calls

    def entry_by_index(self, log_index: int) -> RekorEntry:
        """The entry at global ``log_index``, with its SET, inclusion proof and checkpoint.

        Raises:
            RekorError: the log is unreachable or answered with an error (404 included).
            MalformedEvidenceError: the answer is not a Rekor log entry.
            TransparencyLogError: the log answered with an entry at another index.
        """
        if log_index < 0:
            raise UsageError(f"log index must be >= 0, got {log_index}")
        raw = self._get("/api/v1/log/entries", {"logIndex": str(log_index)})
        entry = parse_log_entry(raw)
        if entry.log_index != log_index:
            raise TransparencyLogError(
                f"{self.base_url} answered the request for log index {log_index} with "
                f"entry {entry.log_index}"
            )
        return entry

    def entry_by_uuid(self, uuid: str) -> RekorEntry:
        """The entry whose UUID (``[tree id] || leaf hash`` hex) is ``uuid``.

        Raises:
            RekorError, MalformedEvidenceError: as :meth:`entry_by_index`.
            TransparencyLogError: the answer is for a different leaf.
        """
        text = uuid.strip().lower()
        if len(text) not in (64, 80) or any(c not in "0123456789abcdef" for c in text):
            raise UsageError(f"not a Rekor entry UUID: {uuid!r}")
        raw = self._get(f"/api/v1/log/entries/{text}", None)
        entry = parse_log_entry(raw)
        if not hmac.compare_digest(entry.leaf_hash.hex(), text[-64:]):
            raise TransparencyLogError(
                f"{self.base_url} answered the request for entry {text[-64:][:16]}… with "
                f"a different entry body"
            )
        return entry

    def log_info(self) -> LogInfo:
        """The log's current tree head (``GET /api/v1/log``).

        Raises:
            RekorError: the log is unreachable or answered with an error.
            MalformedEvidenceError: the answer is not a Rekor log info object.
        """
        return parse_log_info(self._get("/api/v1/log", None))

    def consistency_proof(
        self, first_size: int, last_size: int, tree_id: str | None = None
    ) -> ConsistencyProof:
        """A proof that the tree of ``last_size`` leaves extends that of ``first_size``.

        Check it with :func:`dhi_offline.tlog.merkle.verify_consistency` against two
        roots from verified checkpoints (the ``root_hash`` the log returns is unsigned).

        Raises:
            UsageError: sizes out of order (Rekor requires ``1 <= first <= last``).
            RekorError: the log is unreachable or answered with an error.
            MalformedEvidenceError: the answer is not a consistency proof.
        """
        if first_size < 1 or last_size < first_size:
            raise UsageError(
                f"consistency proof sizes must satisfy 1 <= first <= last, got "
                f"{first_size} and {last_size}"
            )
        params = {"firstSize": str(first_size), "lastSize": str(last_size)}
        if tree_id is not None:
            params["treeID"] = str(tree_id)
        raw = self._get("/api/v1/log/proof", params)
        return parse_consistency_proof(
            raw, first_size=first_size, last_size=last_size, tree_id=tree_id
        )

    # ------------------------------------------------------------------ transport

    def _url(self, path: str, params: Mapping[str, str] | None) -> str:
        return self.base_url + path + (f"?{urlencode(params)}" if params else "")

    def _get(self, path: str, params: Mapping[str, str] | None) -> bytes:
        url = self._url(path, params)
        attempts = self.retry.max_attempts

        def handle(response: httpx.Response) -> bytes:
            status = response.status_code
            if retryable_status(status):  # the loop hands it over after the last attempt
                raise RekorError(
                    f"Rekor GET {url} failed after {attempts} attempt"
                    f"{'s' if attempts > 1 else ''}: HTTP {status}",
                    url=url,
                    status=status,
                )
            if not 200 <= status < 300:
                detail = _api_message(error_excerpt(response))
                raise RekorError(
                    f"Rekor GET {url} failed: HTTP {status}" + (f" ({detail})" if detail else ""),
                    url=url,
                    status=status,
                )
            return read_limited(
                response,
                self._max,
                what=f"Rekor GET {url} failed: answer",
                error=lambda message: RekorError(message, url=url),
            )

        def fail(e: httpx.HTTPError | httpx.InvalidURL, tried: int) -> DhiError:
            if isinstance(e, httpx.TransportError):
                detail = describe_transport_error(e, tried)
            else:  # decoding errors, too many redirects: not retried
                detail = f"{type(e).__name__}: {e}"
            return RekorError(one_line(f"Rekor GET {url} failed: {detail}", 300), url=url)

        return send(
            self._client,
            "GET",
            self.base_url + path,
            handle=handle,
            fail=fail,
            policy=self.retry,
            sleep=self._sleep,
            jitter=self._jitter,
            params=params,
        )


__all__ = [
    "ConsistencyProof",
    "LogInfo",
    "RekorClient",
    "RekorEntry",
    "RekorInclusionProof",
    "ShardInfo",
    "entry_to_bundle_tlog_entry",
    "parse_consistency_proof",
    "parse_log_entry",
    "parse_log_info",
    "rekor_entry_uuid",
    "to_tlog_entry",
    "verify_log_info",
    "verify_rekor_entry",
]
