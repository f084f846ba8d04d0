"""An in-memory Rekor v1 for tests, backed by a real RFC 6962 Merkle tree.

The double signs like production Rekor v1 does: an ECDSA P-256 log key; the log id is
SHA-256 of its DER SubjectPublicKeyInfo; SETs sign the RFC 8785 canonical JSON of
``{body, integratedTime, logID, logIndex}``; checkpoints are signed notes with origin
``"<host> - <treeID>"``, a ``Timestamp:`` line and one signature line
``— <host> base64(keyhint[4] || DER signature over SHA-256(note))``.

Tree hashes, audit paths and consistency proofs are computed here by the plain RFC 6962
section 2.1 recursion (MTH / PATH / SUBPROOF), independently of
``dhi_offline.tlog.merkle`` so the tests can cross-check the two.

It is served over loopback HTTP by :meth:`RekorDouble.serve`, answering:

- ``GET /api/v1/log/entries?logIndex=N`` and ``GET /api/v1/log/entries/{uuid}``
  (proof against the *current* tree, as Rekor does);
- ``GET /api/v1/log`` (``rootHash``, ``treeSize``, ``signedTreeHead``, ``treeID``);
- ``GET /api/v1/log/proof?firstSize=&lastSize=[&treeID=]``;
- ``POST /api/v1/log/entries`` (the proposed entry, RFC 8785-canonicalized, is the body).

Faults: :meth:`fail_next` (HTTP errors), :meth:`drop_next` (connection closed without an
answer). Split views: :meth:`fork` / :meth:`equivocate` build a second tree signed by the
same key; :meth:`present` makes the server answer from another double's state (the log
"rolls back" or shows a forked view under the same URL).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import rfc8785
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

TRUSTED_ROOT_MEDIA_TYPE = "application/vnd.dev.sigstore.trustedroot+json;version=0.1"
REPO = Path(__file__).resolve().parents[2]
PRODUCTION_ROOT = REPO / "dhi_offline" / "data" / "trusted_root" / "production.json"
DEFAULT_HOST = "rekor.double.test"
DEFAULT_TREE_ID = 3904496407287907110
DEFAULT_VALID_FROM = datetime(2020, 1, 1, tzinfo=UTC)


# ----------------------------------------------------------------- RFC 6962 section 2.1


def rfc6962_leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def rfc6962_node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (n >= 2)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


class MerkleTree:
    """Leaf hashes plus the RFC 6962 MTH, PATH and PROOF functions over any prefix."""

    def __init__(self, leaves: list[bytes] | None = None) -> None:
        self.leaves: list[bytes] = list(leaves or [])
        self._cache: dict[tuple[int, int], bytes] = {}

    def append(self, leaf_hash: bytes) -> int:
        self.leaves.append(leaf_hash)
        return len(self.leaves) - 1

    def __len__(self) -> int:
        return len(self.leaves)

    def mth(self, start: int, end: int) -> bytes:
        """MTH(D[start:end])."""
        n = end - start
        if n == 0:
            return hashlib.sha256(b"").digest()
        if n == 1:
            return self.leaves[start]
        cached = self._cache.get((start, end))
        if cached is None:
            k = _split(n)
            cached = rfc6962_node(self.mth(start, start + k), self.mth(start + k, end))
            self._cache[(start, end)] = cached  # leaves never change, so ranges never do
        return cached

    def root(self, size: int | None = None) -> bytes:
        return self.mth(0, len(self.leaves) if size is None else size)

    def inclusion_path(self, index: int, size: int) -> list[bytes]:
        """PATH(index, D[0:size]), leaf to root."""
        if not 0 <= index < size <= len(self.leaves):
            raise ValueError(f"leaf {index} is not in a tree of size {size}")
        return self._path(index, 0, size)

    def _path(self, m: int, start: int, end: int) -> list[bytes]:
        n = end - start
        if n == 1:
            return []
        k = _split(n)
        if m < k:
            return [*self._path(m, start, start + k), self.mth(start + k, end)]
        return [*self._path(m - k, start + k, end), self.mth(start, start + k)]

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """PROOF(old_size, D[0:new_size])."""
        if not 0 <= old_size <= new_size <= len(self.leaves):
            raise ValueError(f"no consistency proof from {old_size} to {new_size}")
        if old_size in (0, new_size):
            return []
        return self._subproof(old_size, 0, new_size, True)

    def _subproof(self, m: int, start: int, end: int, complete: bool) -> list[bytes]:
        n = end - start
        if m == n:
            return [] if complete else [self.mth(start, end)]
        k = _split(n)
        if m <= k:
            return [*self._subproof(m, start, start + k, complete), self.mth(start + k, end)]
        return [*self._subproof(m - k, start + k, end, False), self.mth(start, start + k)]


# ----------------------------------------------------------------- the double


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class RekorDouble:
    """An in-memory Rekor v1 log (see the module docstring).

    Args:
        key: the log's ECDSA P-256 signing key (generated when omitted).
        host: the host name in checkpoint origins and signature lines.
        tree_id: the active shard's tree id.
        clock: returns the current Unix time in seconds (integratedTime, checkpoint
            ``Timestamp:`` lines); defaults to the wall clock.
        index_offset: global (virtual) index of the first leaf of this shard: entry
            ``logIndex`` = offset + tree-local index, as in a sharded production log.
        valid_from: start of the log key's validity in :meth:`trusted_root_json`.
    """

    def __init__(
        self,
        *,
        key: ec.EllipticCurvePrivateKey | None = None,
        host: str = DEFAULT_HOST,
        tree_id: int = DEFAULT_TREE_ID,
        clock: Callable[[], float] | None = None,
        index_offset: int = 0,
        valid_from: datetime = DEFAULT_VALID_FROM,
    ) -> None:
        self.key = key or ec.generate_private_key(ec.SECP256R1())
        self.host = host
        self.tree_id = tree_id
        self.clock: Callable[[], float] = clock or (lambda: datetime.now(UTC).timestamp())
        self.index_offset = index_offset
        self.valid_from = valid_from
        self.tree = MerkleTree()
        self.bodies: list[bytes] = []
        self.integrated_times: list[int] = []
        self.sets: list[bytes] = []
        self.base_url: str | None = None
        self.requests: list[str] = []
        """``"METHOD path?query"`` of every HTTP request served, faults included."""
        self._checkpoints: dict[int, str] = {}
        self._faults: list[int | None] = []
        self._retry_after: str | None = None
        self._view: RekorDouble | None = None
        self._lock = threading.RLock()

    # ------------------------------------------------------------- identity

    @property
    def public_key_der(self) -> bytes:
        return self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @property
    def public_key_pem(self) -> bytes:
        return self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @property
    def log_id(self) -> bytes:
        """SHA-256 of the DER public key (RFC 6962 section 3.2)."""
        return hashlib.sha256(self.public_key_der).digest()

    @property
    def origin(self) -> str:
        return f"{self.host} - {self.tree_id}"

    @property
    def size(self) -> int:
        return len(self.tree)

    def _sign(self, data: bytes) -> bytes:
        return self.key.sign(data, ec.ECDSA(hashes.SHA256()))

    # ------------------------------------------------------------- log operations

    def add_entry(self, body: bytes) -> dict[str, Any]:
        """Integrate ``body`` (a canonicalized entry) and return its Rekor ``LogEntry``.

        The returned ``{uuid: entry}`` carries the SET, and an inclusion proof and
        signed checkpoint for the tree just after this entry was added.

        Raises:
            ValueError: the body is already in the log (Rekor answers 409).
        """
        with self._lock:
            if body in self.bodies:
                raise ValueError("entry already exists in the log")
            local = self.tree.append(rfc6962_leaf(body))
            self.bodies.append(body)
            integrated = int(self.clock())
            self.integrated_times.append(integrated)
            payload = rfc8785.dumps(
                {
                    "body": _b64(body),
                    "integratedTime": integrated,
                    "logID": self.log_id.hex(),
                    "logIndex": self.index_offset + local,
                }
            )
            self.sets.append(self._sign(payload))
            return self.entry(self.index_offset + local, tree_size=local + 1)

    def uuid(self, local_index: int) -> str:
        return f"{self.tree_id:016x}{self.tree.leaves[local_index].hex()}"

    def entry(self, log_index: int, *, tree_size: int | None = None) -> dict[str, Any]:
        """The ``{uuid: LogEntry}`` of global ``log_index``, with a proof for ``tree_size``
        (default: the current size).

        Raises:
            KeyError: no such entry in this shard.
        """
        with self._lock:
            local = log_index - self.index_offset
            if not 0 <= local < self.size:
                raise KeyError(log_index)
            size = self.size if tree_size is None else tree_size
            return {
                self.uuid(local): {
                    "body": _b64(self.bodies[local]),
                    "integratedTime": self.integrated_times[local],
                    "logID": self.log_id.hex(),
                    "logIndex": log_index,
                    "verification": {
                        "inclusionProof": {
                            "checkpoint": self.checkpoint(size),
                            "hashes": [h.hex() for h in self.tree.inclusion_path(local, size)],
                            "logIndex": local,
                            "rootHash": self.tree.root(size).hex(),
                            "treeSize": size,
                        },
                        "signedEntryTimestamp": _b64(self.sets[local]),
                    },
                }
            }

    def entry_json(self, log_index: int, *, tree_size: int | None = None) -> bytes:
        """:meth:`entry` as the bytes the server sends."""
        return json.dumps(self.entry(log_index, tree_size=tree_size)).encode()

    def entry_by_body(self, body: bytes) -> dict[str, Any]:
        """The current ``{uuid: LogEntry}`` of a logged body."""
        with self._lock:
            return self.entry(self.index_offset + self.bodies.index(body))

    def checkpoint(self, size: int | None = None) -> str:
        """The signed note for the tree of ``size`` leaves (cached: stable per size)."""
        with self._lock:
            size = self.size if size is None else size
            if not 0 <= size <= self.size:
                raise ValueError(f"no tree of size {size}")
            cached = self._checkpoints.get(size)
            if cached is None:
                ns = int(self.clock() * 1_000_000_000)
                text = (
                    f"{self.origin}\n{size}\n{_b64(self.tree.root(size))}\nTimestamp: {ns}\n"
                ).encode()
                sig = self._sign(text)  # ECDSA over SHA-256 of the note text
                cached = f"{text.decode()}\n\u2014 {self.host} {_b64(self.log_id[:4] + sig)}\n"
                self._checkpoints[size] = cached
            return cached

    def log_info(self) -> dict[str, Any]:
        with self._lock:
            return {
                "rootHash": self.tree.root().hex(),
                "signedTreeHead": self.checkpoint(),
                "treeID": str(self.tree_id),
                "treeSize": self.size,
            }

    def consistency(self, first_size: int, last_size: int) -> dict[str, Any]:
        with self._lock:
            return {
                "hashes": [h.hex() for h in self.tree.consistency_proof(first_size, last_size)],
                "rootHash": self.tree.root(last_size).hex(),
            }

    # ------------------------------------------------------------- split views

    def fork(self, at_size: int | None = None) -> RekorDouble:
        """A second log with the same key, host and tree id holding this log's first
        ``at_size`` entries (default: all). Entries added to either afterwards make
        the two trees inconsistent, yet both are signed by the same key."""
        with self._lock:
            n = self.size if at_size is None else at_size
            other = RekorDouble(
                key=self.key,
                host=self.host,
                tree_id=self.tree_id,
                clock=self.clock,
                index_offset=self.index_offset,
                valid_from=self.valid_from,
            )
            other.tree = MerkleTree(self.tree.leaves[:n])
            other.bodies = self.bodies[:n]
            other.integrated_times = self.integrated_times[:n]
            other.sets = self.sets[:n]
            other._checkpoints = {s: c for s, c in self._checkpoints.items() if s <= n}
            return other

    def equivocate(self, body: bytes | None = None) -> RekorDouble:
        """A fork of the same size whose last leaf differs: two signed checkpoints with
        the same size and different roots (the log equivocates)."""
        with self._lock:
            if self.size == 0:
                raise ValueError("an empty log cannot equivocate")
            other = self.fork(self.size - 1)
            other.add_entry(body or b'{"equivocation":' + str(self.size).encode() + b"}")
            return other

    def present(self, view: RekorDouble | None) -> None:
        """Answer HTTP requests from ``view``'s state (None: this log's own)."""
        with self._lock:
            self._view = view

    # ------------------------------------------------------------- faults

    def fail_next(self, n: int, status: int = 500, *, retry_after: str | None = None) -> None:
        """The next ``n`` HTTP requests are answered with ``status`` (and Retry-After)."""
        with self._lock:
            self._faults.extend([status] * n)
            self._retry_after = retry_after

    def drop_next(self, n: int) -> None:
        """The next ``n`` HTTP requests get the connection closed without an answer."""
        with self._lock:
            self._faults.extend([None] * n)

    def _take_fault(self) -> tuple[bool, int | None]:
        with self._lock:
            if not self._faults:
                return False, None
            return True, self._faults.pop(0)

    # ------------------------------------------------------------- trusted root

    def tlog_json(self, base_url: str | None = None) -> dict[str, Any]:
        """This log as a trusted_root ``tlogs[]`` member."""
        return {
            "baseUrl": base_url or self.base_url or f"https://{self.host}",
            "hashAlgorithm": "SHA2_256",
            "publicKey": {
                "rawBytes": _b64(self.public_key_der),
                "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                "validFor": {"start": self.valid_from.strftime("%Y-%m-%dT%H:%M:%SZ")},
            },
            "logId": {"keyId": _b64(self.log_id)},
        }

    def trusted_root_json(
        self, *extra_tlogs: RekorDouble | dict[str, Any], production: bool = False
    ) -> bytes:
        """A trusted_root.json trusting this log (and ``extra_tlogs``).

        With ``production=True`` the shipped production root's tlogs, CAs, CT logs and
        TSAs are added too, so keyless upstream vectors still verify.
        """
        tlogs = [self.tlog_json()]
        for t in extra_tlogs:
            tlogs.append(t.tlog_json() if isinstance(t, RekorDouble) else t)
        doc: dict[str, Any] = {
            "mediaType": TRUSTED_ROOT_MEDIA_TYPE,
            "tlogs": tlogs,
            "certificateAuthorities": [],
            "ctlogs": [],
            "timestampAuthorities": [],
        }
        if production:
            prod = json.loads(PRODUCTION_ROOT.read_bytes())
            doc["tlogs"].extend(prod.get("tlogs", []))
            for k in ("certificateAuthorities", "ctlogs", "timestampAuthorities"):
                doc[k] = prod.get(k, [])
        return json.dumps(doc, indent=2).encode()

    # ------------------------------------------------------------- HTTP

    def _answer(self, method: str, target: str, body: bytes) -> tuple[int, Any]:
        """(status, JSON document) for one request, from the presented view."""
        view = self._view or self
        parts = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        path = parts.path.rstrip("/")

        def intarg(name: str, default: int | None = None) -> int:
            raw = query.get(name)
            if raw is None:
                if default is None:
                    raise ValueError(f"missing {name}")
                return default
            return int(raw)

        try:
            if method == "GET" and path == "/api/v1/log":
                return 200, view.log_info()
            if method == "GET" and path == "/api/v1/log/proof":
                first, last = intarg("firstSize", 1), intarg("lastSize")
                tree = query.get("treeID")
                if tree is not None and tree != str(view.tree_id):
                    return 404, {"code": 404, "message": f"unknown tree {tree}"}
                if not 1 <= first <= last or last > view.size:
                    return 400, {"code": 400, "message": "invalid tree sizes"}
                return 200, view.consistency(first, last)
            if method == "GET" and path == "/api/v1/log/entries":
                try:
                    return 200, view.entry(intarg("logIndex"))
                except KeyError:
                    return 404, {"code": 404, "message": "entry not found"}
            if method == "GET" and path.startswith("/api/v1/log/entries/"):
                wanted = path.rsplit("/", 1)[-1].lower()[-64:]
                for i, leaf in enumerate(view.tree.leaves):
                    if leaf.hex() == wanted:
                        return 200, view.entry(view.index_offset + i)
                return 404, {"code": 404, "message": "entry not found"}
            if method == "POST" and path == "/api/v1/log/entries":
                canonical = rfc8785.dumps(json.loads(body))
                try:
                    return 201, view.add_entry(canonical)
                except ValueError:
                    return 409, {"code": 409, "message": "an equivalent entry already exists"}
        except (ValueError, json.JSONDecodeError) as e:
            return 400, {"code": 400, "message": str(e)}
        return 404, {"code": 404, "message": "path not found"}

    @contextlib.contextmanager
    def serve(self) -> Iterator[str]:
        """Serve the log on a loopback port; yields the base URL (``http://127.0.0.1:N``)."""
        double = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out without 40 ms stalls

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output clean

            def _handle(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with double._lock:
                    double.requests.append(f"{method} {self.path}")
                faulty, status = double._take_fault()
                if faulty and status is None:
                    self.close_connection = True
                    with contextlib.suppress(OSError):
                        self.connection.shutdown(2)
                    return
                if faulty:
                    assert status is not None
                    code, doc = status, {"code": status, "message": "injected fault"}
                else:
                    code, doc = double._answer(method, self.path, body)
                data = json.dumps(doc).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if faulty and double._retry_after is not None:
                    self.send_header("Retry-After", double._retry_after)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="rekor-double",
            daemon=True,
        )
        thread.start()
        url = f"http://127.0.0.1:{server.server_address[1]}"
        previous, self.base_url = self.base_url, url
        try:
            yield url
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)
            self.base_url = previous
