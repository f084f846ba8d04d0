"""Real registries for integration tests, a token server, and a fault-injecting proxy.

- :func:`run_registry` starts Debian's ``docker-registry`` (distribution v2.8) on a free
  loopback port with a temporary storage directory, optionally behind htpasswd (Basic)
  or token (Bearer) auth, waits for ``/v2/`` and stops it afterwards.
- :class:`TokenServer` is a Docker token-spec authorization server on loopback. It
  signs ES256 JWTs with a self-signed certificate carried in the ``x5c`` header; the
  registry trusts that certificate through ``rootcertbundle``.
- :class:`FaultProxy` sits in front of a registry and injects 5xx, 429 + Retry-After,
  connections reset mid-body, stalls, wrong bytes and oversized bodies into a chosen
  sequence of requests.
- :func:`build_image` writes a two-platform image with referrers into an OCI layout
  with :class:`~dhi_offline.oci.layout.OciLayoutWriter`; :func:`skopeo_push` pushes it.

Nothing here talks to anything but 127.0.0.1.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import ctypes.util
import gzip
import hashlib
import http.client
import io
import json
import re
import secrets
import shutil
import socket
import struct
import subprocess
import tarfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal, Self
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from dhi_offline.oci import mediatypes as mt
from dhi_offline.oci.auth import NoCredentials
from dhi_offline.oci.client import RegistryClient, RetryPolicy
from dhi_offline.oci.content import referrers_tag
from dhi_offline.oci.layout import OciLayoutWriter, canonical_json
from dhi_offline.oci.mediatypes import Descriptor, Platform
from dhi_offline.oci.source import Source

REGISTRY_BINARY = "/usr/bin/docker-registry"
LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def registry_binary() -> str | None:
    """Path of the distribution registry binary, or None when it is not installed."""
    if Path(REGISTRY_BINARY).is_file():
        return REGISTRY_BINARY
    return shutil.which("docker-registry")


def skopeo_binary() -> str | None:
    """Path of skopeo, or None."""
    return shutil.which("skopeo")


# ------------------------------------------------------------------ htpasswd (bcrypt)


def bcrypt_hash(password: str) -> str | None:
    """A bcrypt hash of ``password`` (the only kind distribution's htpasswd accepts).

    Tries the ``bcrypt`` package, then ``htpasswd`` (apache2-utils), then the C
    library's ``crypt(3)`` (libxcrypt supports ``$2b$``). None when none can.
    """
    try:
        import bcrypt  # type: ignore[import-not-found,unused-ignore]

        hashed: bytes = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5))
        return hashed.decode()
    except ImportError:
        pass
    htpasswd = shutil.which("htpasswd")
    if htpasswd is not None:
        done = subprocess.run(
            [htpasswd, "-nbBC", "5", "user", password], capture_output=True, text=True
        )
        if done.returncode == 0:
            return done.stdout.strip().split(":", 1)[1]
    library = ctypes.util.find_library("crypt")
    if library is None:
        return None
    libcrypt = ctypes.CDLL(library)
    libcrypt.crypt.restype = ctypes.c_char_p
    libcrypt.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    alphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    # 22 salt characters; the last must encode only 2 significant bits (one of .Oeu).
    salt = "".join(secrets.choice(alphabet) for _ in range(21)) + secrets.choice(".Oeu")
    result = libcrypt.crypt(password.encode(), f"$2b$05${salt}".encode())
    if not result or not result.startswith(b"$2b$"):
        return None
    return str(result.decode())


def bcrypt_source() -> str:
    """Which bcrypt implementation :func:`bcrypt_hash` will use (for skip messages)."""
    try:
        import bcrypt  # type: ignore[import-not-found,unused-ignore]  # noqa: F401

        return "bcrypt package"
    except ImportError:
        pass
    if shutil.which("htpasswd"):
        return "htpasswd"
    return "libcrypt" if ctypes.util.find_library("crypt") else "none"


# ------------------------------------------------------------------ the registry


@dataclass
class TokenAuthConfig:
    """The registry side of token auth."""

    realm: str
    service: str
    issuer: str
    rootcertbundle: Path


@dataclass
class RunningRegistry:
    """A started ``docker-registry``."""

    host: str
    """``127.0.0.1:PORT``."""
    url: str
    """``http://127.0.0.1:PORT``."""
    storage: Path
    process: subprocess.Popen[bytes]
    log: Path


def _registry_config(
    port: int,
    storage: Path,
    htpasswd: Path | None,
    token: TokenAuthConfig | None,
) -> str:
    lines = [
        "version: 0.1",
        "log:",
        "  level: warn",
        "  accesslog:",
        "    disabled: true",
        "storage:",
        "  filesystem:",
        f"    rootdirectory: {storage}",
        "  delete:",
        "    enabled: true",
        "http:",
        f"  addr: {LOOPBACK}:{port}",
        f"  secret: {secrets.token_hex(16)}",
    ]
    if htpasswd is not None:
        lines += ["auth:", "  htpasswd:", "    realm: test-registry", f"    path: {htpasswd}"]
    elif token is not None:
        lines += [
            "auth:",
            "  token:",
            f"    realm: {token.realm}",
            f"    service: {token.service}",
            f"    issuer: {token.issuer}",
            f"    rootcertbundle: {token.rootcertbundle}",
        ]
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def run_registry(
    workdir: Path,
    *,
    users: dict[str, str] | None = None,
    token: TokenAuthConfig | None = None,
    startup_timeout: float = 15.0,
) -> Iterator[RunningRegistry]:
    """Start ``docker-registry serve`` on a free loopback port; stop it on exit.

    ``users`` turns on htpasswd (Basic) auth; ``token`` turns on token (Bearer) auth.
    """
    binary = registry_binary()
    if binary is None:
        raise RuntimeError("docker-registry is not installed")
    workdir.mkdir(parents=True, exist_ok=True)
    storage = workdir / "storage"
    storage.mkdir(exist_ok=True)
    htpasswd: Path | None = None
    if users is not None:
        htpasswd = workdir / "htpasswd"
        entries = []
        for user, password in users.items():
            hashed = bcrypt_hash(password)
            if hashed is None:
                raise RuntimeError("no bcrypt implementation for htpasswd")
            entries.append(f"{user}:{hashed}")
        htpasswd.write_text("\n".join(entries) + "\n")
    log = workdir / "registry.log"
    last_error = "did not start"
    for _ in range(3):  # a free port can be taken between choosing and binding it
        port = free_port()
        config = workdir / "config.yml"
        config.write_text(_registry_config(port, storage, htpasswd, token))
        with log.open("ab") as out:
            process = subprocess.Popen(
                [binary, "serve", str(config)], stdout=out, stderr=subprocess.STDOUT
            )
        host = f"{LOOPBACK}:{port}"
        try:
            if _wait_ready(host, process, startup_timeout):
                running = RunningRegistry(host, f"http://{host}", storage, process, log)
                try:
                    yield running
                finally:
                    _stop(process)
                return
            last_error = log.read_text(errors="replace")[-2000:]
        except BaseException:
            _stop(process)
            raise
        _stop(process)
    raise RuntimeError(f"docker-registry did not start: {last_error}")


def _wait_ready(host: str, process: subprocess.Popen[bytes], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            conn = http.client.HTTPConnection(host, timeout=1)
            conn.request("GET", "/v2/")
            status = conn.getresponse().status
            conn.close()
            if status in (200, 401):
                return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


# ------------------------------------------------------------------ token server


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass
class TokenRequest:
    """One request the token server answered."""

    method: str
    service: str | None
    scopes: list[str]
    user: str | None
    grant_type: str | None
    status: int


class TokenServer:
    """A Docker token-spec authorization server on loopback (GET and OAuth2 POST).

    ``users`` may pull and push; anonymous callers may pull when ``anonymous_pull``.
    ``refresh_tokens`` maps an identity (refresh) token to the user it stands for.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        users: dict[str, str] | None = None,
        anonymous_pull: bool = False,
        refresh_tokens: dict[str, str] | None = None,
        service: str = "test-registry",
        issuer: str = "test-token-issuer",
        expires_in: int = 300,
    ) -> None:
        self.users = dict(users or {})
        self.anonymous_pull = anonymous_pull
        self.refresh_tokens = dict(refresh_tokens or {})
        self.service = service
        self.issuer = issuer
        self.expires_in = expires_in
        self.requests: list[TokenRequest] = []
        self._key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dhi-offline test token")])
        now = datetime.now(UTC)
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self._key, hashes.SHA256())
        )
        workdir.mkdir(parents=True, exist_ok=True)
        self.cert_bundle = workdir / "token-root.pem"
        self.cert_bundle.write_bytes(self._cert.public_bytes(serialization.Encoding.PEM))
        self._server = ThreadingHTTPServer((LOOPBACK, 0), self._handler_class())
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self.realm = f"http://{LOOPBACK}:{self.port}/token"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def registry_config(self) -> TokenAuthConfig:
        """The ``auth: token:`` settings for a registry trusting this server."""
        return TokenAuthConfig(self.realm, self.service, self.issuer, self.cert_bundle)

    def __enter__(self) -> TokenServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def issue(self, subject: str, access: list[dict[str, Any]]) -> str:
        """A JWT the registry accepts: ES256, the certificate in ``x5c``."""
        now = int(time.time())
        header = {
            "typ": "JWT",
            "alg": "ES256",
            "x5c": [base64.b64encode(self._cert.public_bytes(serialization.Encoding.DER)).decode()],
        }
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.service,
            "exp": now + self.expires_in,
            "nbf": now - 5,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": access,
        }
        signing_input = (
            _b64url(json.dumps(header).encode()) + "." + _b64url(json.dumps(claims).encode())
        )
        der = self._key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return signing_input + "." + _b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))

    def _grant(self, user: str | None, scopes: list[str]) -> list[dict[str, Any]]:
        access = []
        for scope in scopes:
            for item in scope.split(" "):
                parts = item.split(":")
                if len(parts) != 3 or parts[0] != "repository":
                    continue
                wanted = parts[2].split(",")
                allowed = {"pull", "push"} if user is not None else {"pull"}
                actions = [a for a in wanted if a in allowed]
                access.append({"type": "repository", "name": parts[1], "actions": actions})
        return access

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _finish(
                self, method: str, query: dict[str, list[str]], user: str | None, ok: bool
            ) -> None:
                scopes = query.get("scope", [])
                grant = query.get("grant_type", [None])[0]
                record = TokenRequest(
                    method, query.get("service", [None])[0], scopes, user, grant, 200
                )
                if not ok:
                    record.status = 401
                    server.requests.append(record)
                    self._answer(401, {"errors": [{"code": "UNAUTHORIZED"}]})
                    return
                server.requests.append(record)
                token = server.issue(user or "", server._grant(user, scopes))
                key = "access_token" if method == "POST" else "token"
                self._answer(200, {key: token, "expires_in": server.expires_in})

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                header = self.headers.get("Authorization", "")
                if header.startswith("Basic "):
                    user, _, password = base64.b64decode(header[6:]).decode().partition(":")
                    ok = server.users.get(user) == password
                    self._finish("GET", query, user, ok)
                else:
                    self._finish("GET", query, None, server.anonymous_pull)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                query = parse_qs(self.rfile.read(length).decode())
                refresh = query.get("refresh_token", [""])[0]
                user = server.refresh_tokens.get(refresh)
                ok = user is not None and query.get("grant_type") == ["refresh_token"]
                self._finish("POST", query, user, ok)

        return Handler


# ------------------------------------------------------------------ fault proxy


FaultKind = Literal["status", "reset", "corrupt", "stall", "bloat"]


@dataclass
class Fault:
    """What to do to matching requests.

    ``match`` is a regex searched in ``"METHOD /path?query"``. The fault applies to the
    first ``times`` matching requests (``times=-1``: all), or, with ``every=N``, to every
    Nth matching request.
    """

    kind: FaultKind
    match: str = ""
    times: int = 1
    every: int | None = None
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    stall_seconds: float = 0.0
    extra_bytes: int = 0
    declare_length: bool = True
    """For ``bloat``: announce the bloated length, or stream it chunked with none."""
    seen: int = 0

    def applies(self, request_line: str) -> bool:
        """Count a matching request and say whether the fault hits it."""
        if not re.search(self.match, request_line):
            return False
        self.seen += 1
        if self.every is not None:
            return self.seen % self.every == 0
        return self.times < 0 or self.seen <= self.times


@dataclass
class ProxyEvent:
    """One request through the proxy and what was done to it."""

    request: str
    action: str
    bytes_sent: int = 0
    done: threading.Event = field(default_factory=threading.Event)
    """Set when the proxy has finished with the request (sent, failed or reset)."""


class _QuietServer(ThreadingHTTPServer):
    """Clients hanging up on purpose are expected here; do not print their tracebacks."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


class FaultProxy:
    """A threaded HTTP proxy in front of ``upstream`` (``host:port``) injecting faults."""

    _HOP_BY_HOP = frozenset(
        {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"}
    )

    def __init__(self, upstream: str, plan: list[Fault] | None = None) -> None:
        self.upstream = upstream
        self.plan: list[Fault] = list(plan or [])
        self.events: list[ProxyEvent] = []
        self._lock = threading.Lock()
        self._server = _QuietServer((LOOPBACK, 0), self._handler_class())
        self._server.daemon_threads = True
        self.host = f"{LOOPBACK}:{self._server.server_address[1]}"
        self.url = f"http://{self.host}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _choose(self, request_line: str) -> Fault | None:
        with self._lock:
            for fault in self.plan:
                if fault.applies(request_line):
                    return fault
        return None

    def actions(self, kind: str | None = None) -> list[str]:
        """The actions taken so far (``pass``, ``status 500``, ``reset``...)."""
        return [e.action for e in self.events if kind is None or e.action.startswith(kind)]

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else every response stalls ~40 ms (delayed ACK)

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _forward(self) -> tuple[int, list[tuple[str, str]], bytes]:
                length = int(self.headers.get("Content-Length", "0") or 0)
                body = self.rfile.read(length) if length else None
                conn = http.client.HTTPConnection(proxy.upstream, timeout=30)
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in proxy._HOP_BY_HOP and k.lower() != "host"
                }
                headers["Host"] = proxy.upstream
                conn.request(self.command, self.path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                out = []
                for k, v in response.getheaders():
                    if k.lower() in proxy._HOP_BY_HOP or k.lower() == "content-length":
                        continue
                    is_location = k.lower() == "location"
                    out.append((k, v.replace(proxy.upstream, proxy.host) if is_location else v))
                conn.close()
                return response.status, out, data

            def _send_head(self, status: int, headers: list[tuple[str, str]], length: int) -> None:
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(length))
                self.end_headers()

            def _bloat(
                self,
                fault: Fault,
                event: ProxyEvent,
                status: int,
                headers: list[tuple[str, str]],
                data: bytes,
            ) -> None:
                total = len(data) + fault.extra_bytes
                if fault.declare_length:
                    self._send_head(status, headers, total)
                else:
                    self.send_response(status)
                    for k, v in headers:
                        self.send_header(k, v)
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                filler = b"\0" * 65536
                pieces = [data]
                try:
                    while event.bytes_sent < total:
                        piece = pieces.pop() if pieces else filler[: total - event.bytes_sent]
                        if fault.declare_length:
                            self.wfile.write(piece)
                        else:
                            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                        event.bytes_sent += len(piece)
                    if not fault.declare_length:
                        self.wfile.write(b"0\r\n\r\n")
                except OSError:
                    pass
                self.close_connection = True

            def _handle(self) -> None:
                request_line = f"{self.command} {self.path}"
                fault = proxy._choose(request_line)
                event = ProxyEvent(request_line, "pass")
                with proxy._lock:
                    proxy.events.append(event)
                try:
                    self._act(fault, event)
                finally:
                    event.done.set()

            def _act(self, fault: Fault | None, event: ProxyEvent) -> None:
                if fault is not None and fault.kind == "status":
                    event.action = f"status {fault.status}"
                    length = int(self.headers.get("Content-Length", "0") or 0)
                    if length:
                        self.rfile.read(length)
                    body = b'{"errors":[{"code":"UNAVAILABLE","message":"injected"}]}'
                    headers = [("Content-Type", "application/json"), *fault.headers.items()]
                    self._send_head(fault.status, headers, len(body))
                    if self.command != "HEAD":
                        self.wfile.write(body)
                    return
                if fault is not None and fault.kind == "stall":
                    event.action = "stall"
                    time.sleep(fault.stall_seconds)
                status, headers, data = self._forward()
                if fault is None or fault.kind == "stall" or status >= 300:
                    self._send_head(status, headers, len(data))
                    if self.command != "HEAD":
                        self.wfile.write(data)
                    return
                if fault.kind == "corrupt" and data:
                    event.action = "corrupt"
                    data = data[:-1] + bytes([data[-1] ^ 0x01])
                    self._send_head(status, headers, len(data))
                    self.wfile.write(data)
                elif fault.kind == "reset":
                    event.action = "reset"
                    self._send_head(status, headers, len(data))
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
                    self.close_connection = True
                    self.connection.close()
                elif fault.kind == "bloat":
                    event.action = "bloat"
                    self._bloat(fault, event, status, headers, data)
                else:
                    self._send_head(status, headers, len(data))
                    self.wfile.write(data)

            do_GET = _handle
            do_HEAD = _handle
            do_PUT = _handle
            do_POST = _handle
            do_PATCH = _handle
            do_DELETE = _handle

        return Handler


# ------------------------------------------------------------------ test images


def _layer(platform: Platform) -> tuple[bytes, str]:
    """A small gzip'ed tar (deterministic) and its diff_id."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        content = f"hello from {platform}\n".encode()
        info = tarfile.TarInfo("hello.txt")
        info.size = len(content)
        info.mtime = 0
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(content))
    tar_bytes = raw.getvalue()
    compressed = gzip.compress(tar_bytes, mtime=0)
    return compressed, "sha256:" + hashlib.sha256(tar_bytes).hexdigest()


@dataclass
class PlatformImage:
    """One platform manifest of a test image, with its blobs."""

    platform: Platform
    manifest: Descriptor
    manifest_bytes: bytes
    blobs: dict[str, bytes]


@dataclass
class ImageFixture:
    """A two-platform image written to a layout, with its referrers."""

    layout: Path
    tag: str
    index: Descriptor
    index_bytes: bytes
    platforms: list[PlatformImage]
    referrers: dict[str, list[Descriptor]] = field(default_factory=dict)
    """Subject digest -> referrer descriptors, as the referrers API would list them."""
    manifests: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    """Every manifest written: digest -> (media type, bytes)."""
    blobs: dict[str, bytes] = field(default_factory=dict)
    """Every blob written (configs, layers, attestation payloads)."""


def attestation_manifest(
    writer: OciLayoutWriter,
    subject: Descriptor,
    statement: dict[str, Any],
    *,
    artifact_type: str = mt.IN_TOTO,
    layer_media_type: str = mt.IN_TOTO,
    annotations: dict[str, str] | None = None,
) -> tuple[dict[str, Any], bytes]:
    """A referrer manifest (empty config, one layer, ``subject``) and its layer bytes."""
    payload = canonical_json(statement)
    empty = writer.add_blob(mt.EMPTY_JSON, mt.OCI_EMPTY)
    layer = writer.add_blob(payload, layer_media_type)
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": empty.to_json(),
        "layers": [layer.to_json()],
        "subject": Descriptor(subject.media_type, subject.digest, subject.size).to_json(),
    }
    if annotations:
        manifest["annotations"] = annotations
    return manifest, payload


def build_image(
    layout: Path,
    tag: str = "v1",
    platforms: tuple[str, ...] = ("linux/amd64", "linux/arm64/v8"),
) -> ImageFixture:
    """Write a multi-arch image plus referrers into an OCI layout.

    Per platform: an in-toto attestation referrer, and a cosign-style signature referrer
    of that attestation. The index gets one SBOM-like referrer. Referrers are listed in
    index.json (untagged), the index is tagged ``tag``.
    """
    writer = OciLayoutWriter(layout)
    image_platforms: list[PlatformImage] = []
    manifests: dict[str, tuple[str, bytes]] = {}
    blobs: dict[str, bytes] = {mt.EMPTY_DIGEST: mt.EMPTY_JSON}
    for text in platforms:
        platform = Platform.parse(text)
        layer_bytes, diff_id = _layer(platform)
        config_obj: dict[str, Any] = {
            "architecture": platform.architecture,
            "os": platform.os,
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        }
        if platform.variant:
            config_obj["variant"] = platform.variant
        config_bytes = canonical_json(config_obj)
        config = writer.add_blob(config_bytes, mt.OCI_CONFIG)
        layer = writer.add_blob(layer_bytes, mt.OCI_LAYER_GZIP)
        manifest_obj = {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "config": config.to_json(),
            "layers": [layer.to_json()],
        }
        desc = writer.add_manifest(manifest_obj, mt.OCI_MANIFEST, platform=platform, in_index=False)
        data = canonical_json(manifest_obj)
        manifests[desc.digest] = (mt.OCI_MANIFEST, data)
        blobs[config.digest] = config_bytes
        blobs[layer.digest] = layer_bytes
        image_platforms.append(
            PlatformImage(
                platform,
                desc,
                data,
                {config.digest: config_bytes, layer.digest: layer_bytes},
            )
        )
    index_obj = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_INDEX,
        "manifests": [
            Descriptor(
                p.manifest.media_type, p.manifest.digest, p.manifest.size, None, {}, p.platform
            ).to_json()
            for p in image_platforms
        ],
    }
    index = writer.add_manifest(index_obj, mt.OCI_INDEX, tag=tag)
    index_bytes = canonical_json(index_obj)
    manifests[index.digest] = (mt.OCI_INDEX, index_bytes)
    image = ImageFixture(layout, tag, index, index_bytes, image_platforms, {}, manifests, blobs)

    def add_referrer(subject: Descriptor, obj: dict[str, Any], payload: bytes) -> Descriptor:
        written = writer.add_manifest(obj, mt.OCI_MANIFEST)
        data = canonical_json(obj)
        manifests[written.digest] = (mt.OCI_MANIFEST, data)
        blobs[mt.sha256_digest(payload)] = payload
        listed = mt.referrer_descriptor(obj, mt.OCI_MANIFEST, written.digest, len(data))
        image.referrers.setdefault(subject.digest, []).append(listed)
        return written

    for p in image_platforms:
        predicate_type = "https://scout.docker.com/tests/v0.1"
        statement: dict[str, Any] = {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": "test", "digest": {"sha256": p.manifest.digest[7:]}}],
            "predicateType": predicate_type,
            "predicate": {"platform": str(p.platform)},
        }
        att_obj, att_payload = attestation_manifest(
            writer,
            p.manifest,
            statement,
            annotations={"in-toto.io/predicate-type": predicate_type},
        )
        attestation = add_referrer(p.manifest, att_obj, att_payload)
        signature_payload = {
            "critical": {
                "identity": {"docker-reference": "test"},
                "image": {"docker-manifest-digest": attestation.digest},
                "type": "cosign container image signature",
            },
            "optional": None,
        }
        sig_obj, sig_payload = attestation_manifest(
            writer,
            attestation,
            signature_payload,
            artifact_type=mt.COSIGN_ARTIFACT_SIG,
            layer_media_type=mt.COSIGN_SIMPLESIGNING,
        )
        add_referrer(attestation, sig_obj, sig_payload)
    sbom_obj, sbom_payload = attestation_manifest(
        writer,
        index,
        {"spdxVersion": "SPDX-2.3", "name": "test"},
        artifact_type="application/spdx+json",
        layer_media_type="application/spdx+json",
    )
    add_referrer(index, sbom_obj, sbom_payload)
    writer.close()
    return image


def skopeo_push(
    layout: Path,
    tag: str,
    destination: str,
    *,
    creds: str | None = None,
) -> None:
    """``skopeo copy --all`` the tagged image of ``layout`` to ``docker://destination``."""
    skopeo = skopeo_binary()
    if skopeo is None:
        raise RuntimeError("skopeo is not installed")
    argv = [
        skopeo,
        "--insecure-policy",
        "copy",
        "--all",
        "--preserve-digests",
        "--dest-tls-verify=false",
        "--retry-times",
        "0",
    ]
    if creds is not None:
        argv += ["--dest-creds", creds]
    argv += [f"oci:{layout}:{tag}", f"docker://{destination}"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"skopeo copy failed: {done.stderr.strip()}")


# ------------------------------------------------------------------ seeding and walking

REPOSITORY = "ns/app"


def require_registry_tools() -> None:
    """Skip (with the reason) when the integration peers are not installed."""
    if registry_binary() is None:
        pytest.skip("docker-registry (Debian package docker-registry) is not installed")
    if skopeo_binary() is None:
        pytest.skip("skopeo is not installed")


@dataclass
class Seeded:
    """A registry holding the test image (pushed by skopeo) and its referrers."""

    registry: RunningRegistry
    repository: str
    image: ImageFixture
    sig_tag: str
    sig_digest: str
    sig_bytes: bytes


def seed_referrers(client: RegistryClient, host: str, repository: str, image: ImageFixture) -> None:
    """Push referrer manifests by digest and, per subject, the ``<alg>-<hex>`` fallback index.

    distribution 2.8 has no referrers API, so clients maintain the fallback tag, as
    the distribution spec says they must when the registry returns no OCI-Subject.
    """
    for data in image.blobs.values():
        client.push_blob(host, repository, data)
    for descriptors in image.referrers.values():
        for desc in descriptors:
            media_type, data = image.manifests[desc.digest]
            client.push_manifest(host, repository, desc.digest, data, media_type)
    for subject, descriptors in image.referrers.items():
        index = {
            "schemaVersion": 2,
            "mediaType": mt.OCI_INDEX,
            "manifests": [d.to_json() for d in descriptors],
        }
        client.push_manifest(
            host, repository, referrers_tag(subject), canonical_json(index), mt.OCI_INDEX
        )


def fast_client(**kwargs: object) -> RegistryClient:
    """A client with anonymous credentials and no real sleeping."""
    options: dict[str, object] = {
        "credentials": NoCredentials(),
        "sleep": lambda _seconds: None,
        "retry": RetryPolicy(max_attempts=3),
    }
    options.update(kwargs)
    return RegistryClient(**options)  # type: ignore[arg-type]


def walk(source: Source, ref: str) -> dict[str, bytes]:
    """Everything reachable from ``ref`` (index, manifests, blobs, referrers), by digest."""
    seen: dict[str, bytes] = {}
    queue = [source.resolve(ref)]
    while queue:
        fetched = queue.pop(0)
        if fetched.digest in seen:
            continue
        seen[fetched.digest] = fetched.data
        obj = mt.parse_manifest(fetched.data)
        if fetched.media_type in mt.INDEX_TYPES:
            queue.extend(source.manifest(d.digest) for d in mt.index_manifests(obj))
        else:
            for desc in (mt.manifest_config(obj), *mt.manifest_layers(obj)):
                seen[desc.digest] = source.blob(desc.digest, desc.size)
        queue.extend(
            source.manifest(d.digest) for d in source.referrers(fetched.digest).descriptors
        )
    return seen
