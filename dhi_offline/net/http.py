"""The HTTP layer shared by the registry client, the Rekor client and key-URL fetches.

- **Clients** (:func:`make_client`): httpx with a connect/read/write timeout, no pool
  timeout, redirects followed (10 at most), our User-Agent, a connection limit, and TLS
  verified against the system store, a CA bundle path or a given ``ssl.SSLContext``.
- **Retries** (:func:`send`). ``408``, ``429`` and ``5xx`` (but 501 Not Implemented and
  505 HTTP Version Not Supported, which a retry cannot change), connection errors,
  timeouts and connections dropped mid-body are retried up to
  ``RetryPolicy.max_attempts``, with exponential backoff scaled by jitter
  (``backoff * (0.5 + 0.5 * jitter())``); a ``Retry-After`` (delta-seconds or an HTTP
  date) replaces the backoff, capped at ``retry_after_cap``. A TLS certificate that does
  not verify is not retried. Sleep and jitter are injectable.
- **Bounded reads** (:func:`read_limited`): a body is refused as soon as it is announced
  or read past its limit; error bodies are read only up to :data:`MAX_ERROR_BODY`.
- **Errors**: the layer never lets an httpx exception out. The caller passes ``fail``,
  which turns one into the caller's own :class:`~dhi_offline.errors.DhiError` (the
  registry's RegistryError family, RekorError, ...); :func:`describe_transport_error`
  gives the one-line text they share.
"""

from __future__ import annotations

import email.utils
import random
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from dhi_offline import __version__
from dhi_offline.errors import DhiError, InputError

T = TypeVar("T")

USER_AGENT = f"dhi-offline/{__version__}"
CHUNK_SIZE = 64 * 1024
"""Read size for streamed bodies."""
MAX_ERROR_BODY = 16 * 1024
"""How much of an error body is read (for its message) or drained (to reuse the connection)."""

Params = Mapping[str, str | Sequence[str]]
"""Query parameters; a sequence value repeats the parameter."""
Fail = Callable[[httpx.HTTPError | httpx.InvalidURL, int], DhiError]
"""Makes the error to raise from an httpx error met after ``attempts`` attempts."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently transient failures are retried."""

    max_attempts: int = 5
    """Attempts per request, the first included."""
    backoff_base: float = 0.5
    """Seconds before the second attempt; doubles each time."""
    backoff_max: float = 20.0
    """Cap on one backoff delay."""
    retry_after_cap: float = 60.0
    """Cap on a server's ``Retry-After``."""

    def delay(self, attempt: int, retry_after: str | None = None, *, jitter: float) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based).

        ``retry_after`` is the server's header, if any; ``jitter`` a number in [0, 1)
        that scales the backoff between one half and all of it.
        """
        waited = retry_after_seconds(retry_after)
        if waited is not None:
            return min(waited, self.retry_after_cap)
        backoff = min(self.backoff_base * 2.0 ** (attempt - 1), self.backoff_max)
        return backoff * (0.5 + 0.5 * jitter)


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or HTTP date), or None."""
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # str.isdigit() also accepts '²'
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def retryable_status(status: int) -> bool:
    """Whether an HTTP status is worth another attempt (408, 429, 5xx but 501/505)."""
    return status in (408, 429) or (500 <= status <= 599 and status not in (501, 505))


def retryable_transport(error: httpx.TransportError) -> bool:
    """Whether a transport error is worth another attempt (not a TLS verification failure)."""
    if isinstance(error, httpx.TimeoutException | httpx.RemoteProtocolError):
        return True
    if isinstance(error, httpx.NetworkError):
        return tls_verification_error(error) is None
    return False


def tls_verification_error(error: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate verification failure behind ``error``, if that is what it is."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLCertVerificationError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def one_line(text: str, limit: int = 200) -> str:
    """``text`` with whitespace runs collapsed to one space, cut to ``limit`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def describe_transport_error(error: httpx.TransportError, attempts: int) -> str:
    """One line for a transport failure, e.g. ``cannot connect after 3 attempts (...)``."""
    tls = tls_verification_error(error)
    if tls is not None:
        return f"TLS certificate verification failed ({one_line(tls.verify_message)})"
    kind = (
        "timed out"
        if isinstance(error, httpx.TimeoutException)
        else "cannot connect"
        if isinstance(error, httpx.ConnectError)
        else "connection failed"
    )
    text = one_line(str(error))
    detail = f"{type(error).__name__}: {text}" if text else type(error).__name__
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    return f"{kind}{tries} ({detail})"


def tls_context(verify: bool | str | ssl.SSLContext) -> bool | ssl.SSLContext:
    """httpx's ``verify``: a CA bundle path becomes an SSL context trusting that bundle.

    Raises:
        InputError: the bundle cannot be read or is not PEM certificates.
    """
    if not isinstance(verify, str):
        return verify
    try:
        return ssl.create_default_context(cafile=verify)
    except (OSError, ssl.SSLError) as e:
        raise InputError(f"TLS CA bundle {verify}: cannot be used ({e})") from e


def make_client(
    *,
    timeout: float = 30.0,
    verify: bool | str | ssl.SSLContext = True,
    user_agent: str = USER_AGENT,
    concurrency: int | None = None,
    headers: Mapping[str, str] | None = None,
    transport: httpx.BaseTransport | None = None,
    event_hooks: Mapping[str, list[Callable[..., Any]]] | None = None,
) -> httpx.Client:
    """An httpx client configured as the module docstring says.

    Args:
        timeout: connect/read/write timeout in seconds (waiting for a pooled
            connection is not limited: callers bound their own concurrency).
        verify: ``True``, a CA bundle path, or an ``ssl.SSLContext``.
        user_agent: the ``User-Agent`` header.
        concurrency: connection limit (kept-alive connections too); None for
            httpx's defaults.
        headers: more headers sent with every request.
        transport: an httpx transport to use instead of the network (tests).
        event_hooks: httpx event hooks (e.g. a request counter).

    Raises:
        InputError: ``verify`` names a CA bundle that cannot be used.
    """
    limits = (
        httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        if concurrency is not None
        else httpx.Limits(max_connections=100, max_keepalive_connections=20)
    )
    return httpx.Client(
        timeout=httpx.Timeout(timeout, pool=None),
        limits=limits,
        headers={"User-Agent": user_agent, **(headers or {})},
        verify=tls_context(verify),
        transport=transport,
        follow_redirects=True,
        max_redirects=10,
        event_hooks=event_hooks,
    )


def send(
    client: httpx.Client,
    method: str,
    url: str,
    *,
    handle: Callable[[httpx.Response], T],
    fail: Fail,
    policy: RetryPolicy,
    sleep: Callable[[float], None] = time.sleep,
    jitter: Callable[[], float] = random.random,
    headers: Mapping[str, str] | None = None,
    authorize: Callable[[], str | None] | None = None,
    content: bytes | None = None,
    params: Params | None = None,
    on_unauthorized: Callable[[httpx.Headers], None] | None = None,
) -> T:
    """Send one logical request with retries; ``handle`` consumes the final response.

    ``handle`` runs while the body streams, so transport errors it meets are retried
    like any other. It gets a success, a status not retried, or a retryable status
    after the last attempt; what it raises propagates unchanged.

    Args:
        fail: makes the error raised for an httpx error (chained to it): a transport
            error not retried or met on the last attempt, a redirect loop, a bad URL.
        authorize: called before every attempt; a value is sent as ``Authorization``.
        on_unauthorized: with it, a ``401`` is not handled: once its connection is back
            in the pool, this is called with its headers to set up credentials, and the
            request is sent again without counting an attempt. It must raise when it
            cannot do better than last time, or the loop would not end.
    """
    attempt = 0
    while True:
        attempt += 1
        request_headers = dict(headers or {})
        if authorize is not None:
            authorization = authorize()
            if authorization is not None:
                request_headers["Authorization"] = authorization
        delay: float | None = None
        challenge: httpx.Headers | None = None
        try:
            with client.stream(
                method, url, headers=request_headers, content=content, params=params
            ) as response:
                status = response.status_code
                if status == 401 and on_unauthorized is not None:
                    challenge = response.headers
                    drain(response)
                elif retryable_status(status) and attempt < policy.max_attempts:
                    retry_after = response.headers.get("retry-after")
                    delay = policy.delay(attempt, retry_after, jitter=jitter())
                    drain(response)
                else:
                    return handle(response)
        except httpx.TransportError as e:
            if not retryable_transport(e) or attempt >= policy.max_attempts:
                raise fail(e, attempt) from e
            delay = policy.delay(attempt, jitter=jitter())
        except (httpx.HTTPError, httpx.InvalidURL) as e:  # redirects, decoding, bad URLs
            raise fail(e, attempt) from e
        if challenge is not None and on_unauthorized is not None:
            # Called after the 401's connection went back to the pool: with as many
            # connections as threads, a token request made while holding it could
            # wait for a free connection forever.
            on_unauthorized(challenge)
            attempt -= 1  # the auth round trip is not a failed attempt
            continue
        if delay is not None:
            sleep(delay)


def drain(response: httpx.Response) -> None:
    """Read and drop a (small) body so the connection can be reused; never raises."""
    if response.is_stream_consumed:
        return
    try:
        for _ in response.iter_raw(CHUNK_SIZE):
            if response.num_bytes_downloaded > MAX_ERROR_BODY:
                break
    except (httpx.HTTPError, httpx.StreamError):
        pass


def read_limited(
    response: httpx.Response,
    limit: int,
    *,
    what: str,
    error: Callable[[str], DhiError],
) -> bytes:
    """The (decoded) body, refused as soon as it is announced or read past ``limit`` bytes.

    Raises:
        DhiError: ``error("<what>: larger than the limit of <limit> bytes")``.
        httpx.TransportError: the connection failed mid-body (:func:`send` retries it).
    """
    too_large = f"{what}: larger than the limit of {limit} bytes"
    length = response.headers.get("content-length")
    if (
        length is not None
        and length.isascii()
        and length.isdigit()
        and "content-encoding" not in response.headers
        and int(length) > limit
    ):
        raise error(too_large)
    chunks: list[bytes] = []
    total = 0
    for chunk in response.iter_bytes(CHUNK_SIZE):
        total += len(chunk)
        if total > limit:
            raise error(too_large)
        chunks.append(chunk)
    return b"".join(chunks)


def error_excerpt(response: httpx.Response, limit: int = MAX_ERROR_BODY) -> bytes:
    """At most ``limit`` bytes of an error body, for its message; never raises."""
    body = b""
    try:
        for chunk in response.iter_bytes(CHUNK_SIZE):
            body += chunk
            if len(body) >= limit:
                break
    except (httpx.HTTPError, httpx.StreamError):
        pass
    return body[:limit]


def fetch_url(
    url: str,
    *,
    limit: int,
    what: str,
    policy: RetryPolicy | None = None,
    timeout: float = 20.0,
    error: Callable[[str], DhiError] = InputError,
    sleep: Callable[[float], None] = time.sleep,
    jitter: Callable[[], float] = random.random,
    transport: httpx.BaseTransport | None = None,
    https_only: bool = False,
) -> bytes:
    """GET ``url`` (redirects followed on the same origin only, retried as :func:`send`
    does); its body, read no further than ``limit``.

    Args:
        limit: refuse bodies larger than this many bytes (stops reading there).
        what: names the object in messages (``cannot fetch <what>: ...``).
        error: the error type raised (one line naming ``what``).
        https_only: refuse a URL that is not ``https://`` (trust anchors).

    Raises:
        DhiError: from ``error``, for a status other than 200, a body over ``limit``,
            or a transport failure after the retries.
    """
    prefix = f"cannot fetch {what}"
    try:
        origin = httpx.URL(url)
    except httpx.InvalidURL as e:
        raise error(f"{prefix}: {one_line(str(e))}") from e
    if https_only and origin.scheme != "https":
        raise error(f"{prefix}: only https:// is accepted for it (download it and give the file)")

    def same_origin(request: httpx.Request) -> None:
        # A redirect to another host (or from https to http) would let that host choose
        # the content: what was asked for is what this origin serves, or nothing.
        u = request.url
        if (u.scheme, u.host, u.port) != (origin.scheme, origin.host, origin.port):
            raise httpx.InvalidURL(f"redirected to another origin ({u.scheme}://{u.host})")

    def handle(response: httpx.Response) -> bytes:
        if response.status_code != 200:
            drain(response)
            raise error(f"{prefix}: HTTP {response.status_code}")
        return read_limited(response, limit, what=prefix, error=error)

    def failed(e: httpx.HTTPError | httpx.InvalidURL, attempts: int) -> DhiError:
        if isinstance(e, httpx.TransportError):
            return error(f"{prefix}: {describe_transport_error(e, attempts)}")
        return error(f"{prefix}: {one_line(str(e)) or type(e).__name__}")

    with make_client(
        timeout=timeout,
        transport=transport,
        concurrency=1,
        event_hooks={"request": [same_origin]},
    ) as client:
        return send(
            client,
            "GET",
            url,
            handle=handle,
            fail=failed,
            policy=policy if policy is not None else RetryPolicy(),
            sleep=sleep,
            jitter=jitter,
        )
