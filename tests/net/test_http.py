"""The shared HTTP layer: the retry loop, bounded reads, fetch_url (in-process transports)."""

from __future__ import annotations

import ast
import ssl
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from dhi_offline.errors import DhiError, InputError, RekorError, UsageError
from dhi_offline.net.http import (
    RetryPolicy,
    describe_transport_error,
    fetch_url,
    make_client,
    read_limited,
    send,
)

URL = "https://service.test/thing"
ROOT = Path(__file__).resolve().parents[2]

Handler = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """A MockTransport handler answering from a script, recording each request."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def _fail(e: httpx.HTTPError | httpx.InvalidURL, attempts: int) -> DhiError:
    if isinstance(e, httpx.TransportError):
        return InputError(f"GET {URL}: {describe_transport_error(e, attempts)}")
    return InputError(f"GET {URL}: {type(e).__name__}")


def _body(response: httpx.Response) -> tuple[int, bytes]:
    return response.status_code, response.read()


def _send(
    handler: Handler,
    sleeps: list[float],
    policy: RetryPolicy | None = None,
    **kwargs: object,
) -> tuple[int, bytes]:
    with make_client(transport=httpx.MockTransport(handler)) as client:
        return send(
            client,
            "GET",
            URL,
            handle=_body,
            fail=_fail,
            policy=policy or RetryPolicy(max_attempts=3),
            sleep=sleeps.append,
            jitter=lambda: 0.0,
            **kwargs,  # type: ignore[arg-type]
        )


# ----------------------------------------------------------------- the retry loop


def test_429_with_retry_after_is_waited_out() -> None:
    script = Recorder(httpx.Response(429, headers={"Retry-After": "7"}), httpx.Response(200))
    sleeps: list[float] = []
    assert _send(script, sleeps) == (200, b"")
    assert sleeps == [7.0]
    assert len(script.requests) == 2


def test_retry_after_as_an_http_date() -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    script = Recorder(httpx.Response(503, headers={"Retry-After": when}), httpx.Response(200))
    sleeps: list[float] = []
    _send(script, sleeps)
    (slept,) = sleeps
    assert 27.0 < slept <= 30.0


def test_retry_after_is_capped() -> None:
    script = Recorder(httpx.Response(429, headers={"Retry-After": "86400"}), httpx.Response(200))
    sleeps: list[float] = []
    _send(script, sleeps, RetryPolicy(retry_after_cap=12.0))
    assert sleeps == [12.0]


def test_503_then_200_with_backoff_and_jitter() -> None:
    script = Recorder(httpx.Response(503), httpx.Response(502), httpx.Response(200, text="ok"))
    sleeps: list[float] = []
    assert _send(script, sleeps) == (200, b"ok")
    assert sleeps == [0.25, 0.5]  # 0.5 s doubling, jitter at its minimum (x0.5)


def test_backoff_is_capped_and_jitter_scales_it() -> None:
    policy = RetryPolicy(max_attempts=5, backoff_base=1.0, backoff_max=3.0)
    assert [policy.delay(n, jitter=0.999) for n in (1, 2, 3, 4)] == pytest.approx(
        [1.0, 2.0, 3.0, 3.0], abs=0.01
    )
    assert policy.delay(1, jitter=0.0) == 0.5
    assert policy.delay(1, "\u00b2", jitter=0.0) == 0.5  # not a number: plain backoff


def test_retries_exhausted_hand_the_last_answer_over() -> None:
    script = Recorder(httpx.Response(503, text="busy"))
    sleeps: list[float] = []
    assert _send(script, sleeps) == (503, b"busy")
    assert len(script.requests) == 3 and len(sleeps) == 2


@pytest.mark.parametrize("status", [400, 401, 403, 404, 501, 505])
def test_no_retry_on_client_errors_and_501_505(status: int) -> None:
    script = Recorder(httpx.Response(status))
    sleeps: list[float] = []
    assert _send(script, sleeps)[0] == status
    assert len(script.requests) == 1 and sleeps == []


def test_connection_reset_is_retried() -> None:
    script = Recorder(httpx.ReadError("connection reset by peer"), httpx.Response(200, text="x"))
    sleeps: list[float] = []
    assert _send(script, sleeps) == (200, b"x")
    assert len(script.requests) == 2 and sleeps == [0.25]


def test_a_body_cut_short_is_retried() -> None:
    def broken() -> Iterator[bytes]:
        yield b"half"
        raise httpx.RemoteProtocolError("peer closed connection")

    script = Recorder(httpx.Response(200, content=broken()), httpx.Response(200, text="whole"))
    assert _send(script, []) == (200, b"whole")
    assert len(script.requests) == 2


def test_transport_failure_after_the_last_attempt_is_one_line() -> None:
    script = Recorder(httpx.ConnectError("[Errno 111] Connection refused"))
    sleeps: list[float] = []
    with pytest.raises(InputError) as info:
        _send(script, sleeps)
    assert info.value.one_line() == (
        f"GET {URL}: cannot connect after 3 attempts (ConnectError: [Errno 111] Connection refused)"
    )
    assert isinstance(info.value.__cause__, httpx.ConnectError)
    assert len(sleeps) == 2


def test_tls_verification_failure_is_not_retried() -> None:
    cause = ssl.SSLCertVerificationError(1, "certificate verify failed")
    cause.verify_message = "self-signed certificate"
    error = httpx.ConnectError("TLS")
    error.__cause__ = cause
    script = Recorder(error)
    with pytest.raises(InputError, match=r"TLS certificate verification failed \(self-signed"):
        _send(script, [])
    assert len(script.requests) == 1


def test_redirect_loop_is_not_retried() -> None:
    script = Recorder(httpx.Response(302, headers={"Location": URL}))
    with pytest.raises(InputError, match="TooManyRedirects"):
        _send(script, [])
    assert len(script.requests) == 11  # the first request and 10 redirects


def test_401_goes_to_on_unauthorized_and_is_not_an_attempt() -> None:
    script = Recorder(
        httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="x"'}),
        httpx.Response(503),
        httpx.Response(200, text="in"),
    )
    challenges: list[str] = []
    credentials: list[str] = []
    sleeps: list[float] = []

    def challenged(headers: httpx.Headers) -> None:
        challenges.append(headers["www-authenticate"])
        credentials.append("Basic dXNlcjpwdw==")

    result = _send(
        script,
        sleeps,
        RetryPolicy(max_attempts=2),  # a counted 401 would leave the 503 as the last word
        authorize=lambda: credentials[0] if credentials else None,
        on_unauthorized=challenged,
    )
    assert result == (200, b"in")
    assert challenges == ['Basic realm="x"']
    assert [r.headers.get("authorization") for r in script.requests] == [
        None,
        "Basic dXNlcjpwdw==",
        "Basic dXNlcjpwdw==",
    ]
    assert sleeps == [0.25]


# ----------------------------------------------------------------- bounded reads


def _read(response: httpx.Response, limit: int) -> bytes:
    return read_limited(response, limit, what="thing", error=RekorError)


def test_read_limited_refuses_an_announced_oversize_without_reading() -> None:
    pulled: list[int] = []

    def body() -> Iterator[bytes]:
        for i in range(100):
            pulled.append(i)
            yield b"x" * 1024

    script = Recorder(httpx.Response(200, content=body(), headers={"Content-Length": "102400"}))
    with (
        make_client(transport=httpx.MockTransport(script)) as client,
        client.stream("GET", URL) as response,
        pytest.raises(RekorError) as info,
    ):
        _read(response, 1000)
    assert info.value.one_line() == "thing: larger than the limit of 1000 bytes"
    assert pulled == []


def test_read_limited_stops_an_unannounced_oversize_early() -> None:
    pulled: list[int] = []

    def body() -> Iterator[bytes]:
        for i in range(1000):  # 64 MB if read to the end
            pulled.append(i)
            yield b"x" * 65536

    script = Recorder(httpx.Response(200, content=body()))
    with (
        make_client(transport=httpx.MockTransport(script)) as client,
        client.stream("GET", URL) as response,
        pytest.raises(RekorError, match="limit"),
    ):
        _read(response, 100 * 1024)
    assert len(pulled) <= 3


def test_read_limited_returns_a_body_at_the_limit() -> None:
    script = Recorder(httpx.Response(200, content=b"y" * 1000))
    with (
        make_client(transport=httpx.MockTransport(script)) as client,
        client.stream("GET", URL) as response,
    ):
        assert _read(response, 1000) == b"y" * 1000


# ----------------------------------------------------------------- fetch_url


def _fetch(script: Recorder, sleeps: list[float], limit: int = 1024) -> bytes:
    return fetch_url(
        URL,
        limit=limit,
        what="key thing",
        policy=RetryPolicy(max_attempts=3),
        sleep=sleeps.append,
        jitter=lambda: 0.0,
        transport=httpx.MockTransport(script),
    )


def test_fetch_url_retries_then_returns_the_body() -> None:
    script = Recorder(
        httpx.Response(503),
        httpx.ReadTimeout("timed out"),
        httpx.Response(200, content=b"PEM"),
    )
    sleeps: list[float] = []
    assert _fetch(script, sleeps) == b"PEM"
    assert sleeps == [0.25, 0.5]
    assert script.requests[0].headers["user-agent"].startswith("dhi-offline/")


def test_fetch_url_errors_are_one_line_and_typed() -> None:
    with pytest.raises(InputError) as info:
        _fetch(Recorder(httpx.Response(404)), [])
    assert info.value.one_line() == "cannot fetch key thing: HTTP 404"
    with pytest.raises(InputError) as info:
        _fetch(Recorder(httpx.Response(200, content=b"z" * 2000)), [])
    assert info.value.one_line() == "cannot fetch key thing: larger than the limit of 1024 bytes"
    sleeps: list[float] = []
    with pytest.raises(InputError) as info:
        _fetch(Recorder(httpx.ConnectError("refused")), sleeps)
    assert info.value.one_line() == (
        "cannot fetch key thing: cannot connect after 3 attempts (ConnectError: refused)"
    )
    assert len(sleeps) == 2
    with pytest.raises(UsageError, match="cannot fetch key x: HTTP 503"):
        fetch_url(
            URL,
            limit=10,
            what="key x",
            policy=RetryPolicy(max_attempts=1),
            error=UsageError,
            transport=httpx.MockTransport(Recorder(httpx.Response(503))),
        )


# ----------------------------------------------------------------- export --key URL


@pytest.fixture
def key_server() -> Iterator[tuple[str, bytes, list[str]]]:
    """A loopback HTTP server: ``/key.pem`` (a public key), ``/big``, anything else 404."""
    pem = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    seen: list[str] = []

    class Serve(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            body = {"/key.pem": pem, "/big": b"A" * (2 * 1024 * 1024)}.get(self.path)
            self.send_response(404 if body is None else 200)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Serve)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", pem, seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_export_fetches_key_urls_through_the_layer(
    key_server: tuple[str, bytes, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from dhi_offline.cli import export
    from dhi_offline.trust.keys import load_pem

    base, pem, seen = key_server
    # A trust anchor over plain http is refused before any request (issue 14).
    with pytest.raises(UsageError, match="only https:// is accepted"):
        export._keyring([f"{base}/key.pem"])
    assert seen == []
    calls: list[dict[str, object]] = []

    def recorded(url: str, **kwargs: object) -> bytes:
        calls.append({"url": url, **kwargs})
        return pem

    monkeypatch.setattr(export, "fetch_url", recorded)
    (entry,) = export._keyring(["https://keys.example/key.pem"]).entries
    assert entry.key_id == load_pem(pem).key_id
    assert calls[0]["https_only"] is True and calls[0]["limit"] == 1024 * 1024


def test_export_cli_does_not_import_httpx() -> None:
    tree = ast.parse((ROOT / "dhi_offline" / "cli" / "export.py").read_text())
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not {m for m in imported if m and m.split(".")[0] == "httpx"}
    assert "dhi_offline.net.http" in imported


def _redirecting(target: str) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/key.pub":
            return httpx.Response(302, headers={"location": target})
        return httpx.Response(200, content=b"PEM from " + request.url.host.encode())

    return httpx.MockTransport(handler)


def test_fetch_url_follows_a_redirect_on_the_same_origin_only() -> None:
    same = fetch_url(
        "https://keys.example/key.pub",
        limit=1024,
        what="key",
        transport=_redirecting("https://keys.example/moved.pub"),
        https_only=True,
    )
    assert same == b"PEM from keys.example"
    for target in ("https://evil.example/key.pub", "http://keys.example/moved.pub"):
        with pytest.raises(InputError, match="redirected to another origin"):
            fetch_url(
                "https://keys.example/key.pub",
                limit=1024,
                what="key",
                transport=_redirecting(target),
                https_only=True,
                sleep=lambda _s: None,
            )


def test_a_trust_anchor_over_plain_http_is_refused_before_any_request() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=b"PEM")

    with pytest.raises(UsageError, match=r"only https:// is accepted"):
        fetch_url(
            "http://keys.example/key.pub",
            limit=1024,
            what="key",
            error=UsageError,
            transport=httpx.MockTransport(handler),
            https_only=True,
        )
    assert seen == []
