"""Export under faults: many exports through a misbehaving registry, each classified.

    python -m tests.export.fault_campaign --runs N --seed S [--json OUT] [--subprocess]

One world is published once into a temporary directory: a real distribution registry
(``docker-registry``) holding two images pushed by ``skopeo copy --all`` (two platforms
and one) and seven attestations per platform in the three layouts the exporter reads
(DHI-style referrers signed by cosign signature referrers, cosign ``.att`` tags,
sigstore-bundle referrers), and a served Rekor double that logged every signature. A
fault-free export through a pass-through proxy is the reference.

Then every run exports both images (fetched at once: the CLI's default ``--jobs``)
through a fresh :class:`CampaignProxy` (the :class:`~tests.support.registry.FaultProxy`,
plus "the registry goes away", a short body and faults that hit a share of requests at
random) carrying a randomly drawn fault plan of one to three ingredients
(:data:`KINDS`):

- ``5xx``: 500/502/503/504 on a share of the requests of one class (every request,
  manifests, blobs, referrers lookups, tags), every Nth or each with a probability;
- ``429``: 429 with ``Retry-After`` (0-2 s, or an HTTP date) on a share of requests;
- ``reset``: the connection reset (RST) after half the body, on a share of requests;
- ``odd-retry-after``: 429 or 503 with a malformed ``Retry-After`` (``soon``, ``-1``,
  ``1.5``, empty, ``²``, a date in year 99999, 30 nines), on a share of requests;
- ``slow``: an answer delayed by 10-150 ms, on a share of requests;
- ``persistent``: one request answered 500, 503 or 429 every time it is asked;
- ``wrong-bytes``: one request (a manifest by digest, a tag or a blob) answered with
  wrong bytes: its last byte flipped, 1-4 KiB of zeros appended (length declared or
  chunked), or cut to half with a matching ``Content-Length``;
- ``gone``: the registry goes away after request K (K uniform over the reference
  export's requests), optionally half-way through K's body: the listening socket is
  closed and every open connection is reset.

The CLI runs with ``--retries`` at its default (4) and ``--retry-max-wait 0.2`` (which
caps both the backoff and ``Retry-After``), in-process (``dhi_offline.cli.main.main``,
stdout and stderr captured) or, with ``--subprocess``, as ``python -m dhi_offline``;
each run has a fresh state directory and ``TMPDIR``, and an output directory that does
not exist yet. Outcomes:

- **succeeded**: exit 0, the output directory holds exactly the bundle, it opens with
  ``open_bundle`` under the exporter's public key, and its signed manifest equals the
  reference's apart from ``created``/``expires``: same images, flags, sequence, member
  paths and member SHA-256s (the evidence index names the registry it came from, so
  the proxy's ``host:port`` is replaced by a placeholder in every member before hashing);
- **failed cleanly**: exit 1 or 2, exactly one line on stderr, ``dhi-offline: ...``,
  naming the image reference and the request (``registry H repository R: manifest D``,
  ``tag T``, ``blob D`` or ``referrers of D``), no traceback, nothing in the output
  directory;
- **left behind**: a run that did not succeed and left any file in its output directory,
  or any run leaving a file in its ``TMPDIR`` or a temporary file in its state directory;
- **other**: anything else: an exception out of ``main``, "internal error", a traceback,
  a message on several lines or not naming the image and request, a bundle that does not
  open or differs from the reference.

Left behind and other must both be 0 (the exit status is 1 otherwise). The first
``len(KINDS)`` runs each start with a different kind, so a small run covers all of them.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import platform
import random
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from dhi_offline.bundle.manifest import BundleManifest
from dhi_offline.bundle.reader import open_bundle
from dhi_offline.bundle.signing import generate_keypair
from dhi_offline.cli.main import main as cli_main
from dhi_offline.trust.keys import load_pem
from tests.export.test_export_registry import (
    PER_PLATFORM,
    PLATFORMS,
    REPOSITORY,
    TAG,
    image_refs,
    make_attestations,
    push_published,
)
from tests.support.publisher import TestPublisher
from tests.support.registry import (
    Fault,
    FaultKind,
    FaultProxy,
    ProxyEvent,
    build_image,
    fast_client,
    registry_binary,
    run_registry,
    skopeo_binary,
    skopeo_push,
)
from tests.support.rekor_double import RekorDouble

# A second image (other platforms, so other digests) makes the export fetch two images at
# once (the CLI's default --jobs is 8): faults also hit the concurrent path.
SECOND_TAG = "3.13-dev"
SECOND_PLATFORMS = ("linux/s390x",)
LOG_TIME = 1_775_000_000
"""The Rekor double's fixed clock (2026-03-31)."""
RETRY_MAX_WAIT = "0.2"
"""``--retry-max-wait``: caps every backoff and Retry-After, so a run stays short."""
EXAMPLES = 20
OUTCOMES = ("succeeded", "failed cleanly", "left behind", "other")
KINDS: dict[str, int] = {
    "5xx": 20,
    "429": 15,
    "reset": 20,
    "slow": 10,
    "persistent": 10,
    "wrong-bytes": 15,
    "gone": 10,
    "odd-retry-after": 5,
}
"""Fault ingredients and their weights when a plan is drawn."""
ODD_RETRY_AFTER = ("soon", "-1", "1.5", "", "\u00b2", "Fri, 31 Dec 99999 23:59:59 GMT", "9" * 30)
"""Retry-After values a registry should not send; the client must still retry calmly.
``"\u00b2"`` (SUPERSCRIPT TWO, byte 0xB2 on the wire) is a digit to ``str.isdigit``."""
PLACEHOLDER = b"<registry>"
REPO_ROOT = Path(__file__).resolve().parents[2]

# Request classes, as regexes over the proxy's "METHOD /path?query" lines.
CLASSES: dict[str, str] = {
    "any": r"^GET /v2/.",
    "manifests": r"^GET /v2/.*/manifests/",
    "blobs": r"^GET /v2/.*/blobs/",
    # Referrers lookups: the API (asked once per registry: distribution 2.8 answers 404)
    # and then the sha256-<hex> fallback tags, which carry the lookups from there on.
    "referrers": r"^GET /v2/.*/(referrers/|manifests/sha256-[0-9a-f]{64}$)",
    "tags": r"^GET /v2/.*/manifests/(?!sha256:)",
}
# How a clean failure names the request (dhi_offline/oci/status.py's Target.label).
REQUEST_NAMED = re.compile(
    r"registry \S+ repository \S+: (manifest sha256:[0-9a-f]{64}|tag \S+|blob sha256:[0-9a-f]{64}"
    r"|referrers of sha256:[0-9a-f]{64})"
)


# ------------------------------------------------------------------ the proxy


@dataclass
class ChanceFault(Fault):
    """A fault hitting each matching request with probability ``chance``."""

    chance: float = 0.0
    rng: random.Random = field(default_factory=random.Random)

    def applies(self, request_line: str) -> bool:
        if not re.search(self.match, request_line):
            return False
        self.seen += 1
        return self.rng.random() < self.chance


@dataclass(frozen=True)
class Gone:
    """The registry goes away after request ``after`` (1-based)."""

    after: int
    mid_body: bool


class CampaignProxy(FaultProxy):
    """:class:`FaultProxy` plus the registry going away, and a ``short`` body fault.

    ``short``: the first half of the body, with a ``Content-Length`` that matches it (a
    well-formed but truncated answer). ``gone``: after request ``gone.after`` the
    listening socket is closed (new connections are refused) and every later request on
    a connection still open is answered with a reset, as when a registry process dies;
    with ``mid_body`` that request itself gets half its body and then the reset.
    """

    def __init__(self, upstream: str, plan: list[Fault], gone: Gone | None = None) -> None:
        super().__init__(upstream, plan)
        self.gone = gone
        self.went_away = False
        self.count = 0
        self.statuses: list[tuple[str, int]] = []
        """(request line, the registry's status) for every request forwarded."""

    def go_away(self) -> None:
        """Stop listening (from a handler thread: ``serve_forever`` runs in another)."""
        with self._lock:
            if self.went_away:
                return
            self.went_away = True
        self._server.shutdown()
        self._server.server_close()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        base: Any = super()._handler_class()
        proxy = self

        class Handler(base):  # type: ignore[misc]
            disable_nagle_algorithm = True

            def _reset(self) -> None:
                with contextlib.suppress(OSError):
                    self.wfile.flush()
                    self.connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
                self.close_connection = True
                self.connection.close()

            def _handle(self) -> None:
                with proxy._lock:
                    proxy.count += 1
                    n = proxy.count
                gone = proxy.gone
                if gone is None or (n < gone.after and not proxy.went_away):
                    super()._handle()
                    return
                event = ProxyEvent(f"{self.command} {self.path}", "gone")
                with proxy._lock:
                    proxy.events.append(event)
                try:
                    if n == gone.after and gone.mid_body and not proxy.went_away:
                        event.action = "gone mid-body"
                        status, headers, data = self._forward()
                        self._send_head(status, headers, len(data))
                        self.wfile.write(data[: len(data) // 2])
                    elif n == gone.after:
                        # The request that was to be answered is forwarded and lost.
                        self._forward()
                    proxy.go_away()
                    self._reset()
                finally:
                    event.done.set()

            def _forward(self) -> tuple[int, list[tuple[str, str]], bytes]:
                status, headers, data = super()._forward()
                with proxy._lock:
                    proxy.statuses.append((f"{self.command} {self.path}", status))
                return status, headers, data

            def _act(self, fault: Fault | None, event: ProxyEvent) -> None:
                if fault is None or fault.kind != "short":  # type: ignore[comparison-overlap]
                    super()._act(fault, event)
                    return
                status, headers, data = self._forward()
                if status >= 300 or not data:
                    self._send_head(status, headers, len(data))
                    if self.command != "HEAD":
                        self.wfile.write(data)
                    return
                event.action = "short"
                half = data[: len(data) // 2]
                self._send_head(status, headers, len(half))
                self.wfile.write(half)

            # The base class bound its own _handle to these names.
            do_GET = _handle
            do_HEAD = _handle
            do_PUT = _handle
            do_POST = _handle
            do_PATCH = _handle
            do_DELETE = _handle

        return Handler


# ------------------------------------------------------------------ fault plans


@dataclass
class Ingredient:
    """One part of a plan: a kind, what it does, and the faults (or Gone) it adds."""

    kind: str
    text: str
    faults: list[Fault] = field(default_factory=list)
    gone: Gone | None = None


@dataclass
class Plan:
    ingredients: list[Ingredient]

    @property
    def kinds(self) -> list[str]:
        return [i.kind for i in self.ingredients]

    @property
    def text(self) -> str:
        return "; ".join(i.text for i in self.ingredients)

    @property
    def faults(self) -> list[Fault]:
        # One-request faults first: FaultProxy applies the first fault that matches.
        ordered = sorted(
            self.ingredients, key=lambda i: i.kind not in ("persistent", "wrong-bytes")
        )
        return [f for i in ordered for f in i.faults]

    @property
    def gone(self) -> Gone | None:
        return next((i.gone for i in self.ingredients if i.gone is not None), None)


def _share(rng: random.Random, kind: FaultKind, what: str, **fault: Any) -> tuple[Fault, str]:
    """``fault`` on a share of the requests of a random class: every Nth, or by chance."""
    klass = rng.choice(list(CLASSES))
    if rng.random() < 0.5:
        every = rng.randint(2, 6)
        made: Fault = Fault(kind, match=CLASSES[klass], every=every, **fault)
        return made, f"{what} on 1 in {every} {klass} requests"
    chance = rng.choice((0.1, 0.2, 0.3))
    seed = rng.random()
    made = ChanceFault(kind, match=CLASSES[klass], chance=chance, rng=random.Random(seed), **fault)
    return made, f"{what} on {int(chance * 100)}% of {klass} requests"


def _one_request(rng: random.Random, requests: list[str]) -> tuple[str, str]:
    """A regex for one of ``requests`` (by path, any query), and a short name for it."""
    path = rng.choice(requests).split(" ", 1)[1].split("?", 1)[0]
    kind, _, ref = path.split("/v2/", 1)[1].removeprefix(REPOSITORY + "/").partition("/")
    short = {"manifests": "manifest" if ref.startswith("sha256:") else "tag", "blobs": "blob"}
    label = f"{short.get(kind, kind + ' API of')} {ref[:19]}"
    return "^GET " + re.escape(path) + r"(\?|$)", label


def draw_ingredient(
    rng: random.Random, kind: str, requests: list[str], answered: list[str]
) -> Ingredient:
    """One ingredient of ``kind`` against the reference export's ``requests``.

    Wrong bytes target only ``answered`` requests (200 with a body in the reference
    export): a 404 (the referrers API of distribution 2.8, absent cosign ``.sig`` tags) is
    passed through unchanged.
    """
    if kind == "5xx":
        status = rng.choice((500, 502, 503, 504))
        fault, text = _share(rng, "status", f"HTTP {status}", status=status)
        return Ingredient(kind, text, [fault])
    if kind == "429":
        retry = rng.choice(("0", "1", "2", "date"))
        value = formatdate(time.time() + 1, usegmt=True) if retry == "date" else retry
        fault, text = _share(
            rng, "status", f"429 Retry-After {retry}", status=429, headers={"Retry-After": value}
        )
        return Ingredient(kind, text, [fault])
    if kind == "odd-retry-after":
        status = rng.choice((429, 503))
        value = rng.choice(ODD_RETRY_AFTER)
        fault, text = _share(
            rng,
            "status",
            f"{status} Retry-After {value[:12]!r}",
            status=status,
            headers={"Retry-After": value},
        )
        return Ingredient(kind, text, [fault])
    if kind == "reset":
        fault, text = _share(rng, "reset", "reset mid-body")
        return Ingredient(kind, text, [fault])
    if kind == "slow":
        stall = rng.choice((0.01, 0.05, 0.1, 0.15))
        fault, text = _share(rng, "stall", f"{int(stall * 1000)} ms delay", stall_seconds=stall)
        return Ingredient(kind, text, [fault])
    if kind == "persistent":
        status = rng.choice((500, 503, 429))
        match, short = _one_request(rng, requests)
        headers = {"Retry-After": "1"} if status == 429 else {}
        fault = Fault("status", match=match, times=-1, status=status, headers=headers)
        return Ingredient(kind, f"HTTP {status} always on {short}", [fault])
    if kind == "wrong-bytes":
        how = rng.choice(("corrupt", "bloat", "bloat-chunked", "short"))
        match, short = _one_request(rng, answered)
        if how.startswith("bloat"):
            extra = rng.randint(1, 4) * 1024
            fault = Fault(
                "bloat", match=match, times=1, extra_bytes=extra, declare_length=how == "bloat"
            )
            return Ingredient(kind, f"{how} +{extra} bytes on {short}", [fault])
        return Ingredient(kind, f"{how} on {short}", [Fault(how, match=match, times=1)])  # type: ignore[arg-type]
    if kind == "gone":
        after = rng.randint(1, len(requests))
        mid = rng.random() < 0.5
        text = f"registry gone after request {after}" + (" (mid-body)" if mid else "")
        return Ingredient(kind, text, gone=Gone(after, mid))
    raise ValueError(kind)


def draw_plan(
    rng: random.Random, requests: list[str], answered: list[str], first: str | None = None
) -> Plan:
    """One to three distinct ingredients (50/35/15%); ``first`` forces the first kind."""
    size = rng.choices((1, 2, 3), (50, 35, 15))[0]
    kinds: list[str] = [first] if first else []
    while len(kinds) < size:
        kind = rng.choices(list(KINDS), list(KINDS.values()))[0]
        if kind not in kinds:
            kinds.append(kind)
    return Plan([draw_ingredient(rng, k, requests, answered) for k in kinds])


# ------------------------------------------------------------------ the world


@dataclass
class World:
    """The published registry, the Rekor double, keys, and the reference export."""

    dir: Path
    registry_host: str
    rekor_url: str
    reference: dict[str, Any] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    """The reference export's requests, in order."""
    answered: list[str] = field(default_factory=list)
    """Those the registry answered with 200."""
    publish_seconds: float = 0.0
    reference_seconds: float = 0.0

    def argv(self, host: str, out: Path) -> list[str]:
        return [
            "export",
            f"{host}/{REPOSITORY}:{TAG}",
            f"{host}/{REPOSITORY}:{SECOND_TAG}",
            "--key",
            str(self.dir / "publisher.pub"),
            "--signing-key",
            str(self.dir / "exporter.pem"),
            "--trusted-root",
            str(self.dir / "tr.json"),
            "--rekor-url",
            self.rekor_url,
            "--retry-max-wait",
            RETRY_MAX_WAIT,
            "-o",
            str(out),
            "--format",
            "json",
        ]


def tools_missing() -> str | None:
    """Why the campaign cannot run here, or None."""
    if registry_binary() is None:
        return "docker-registry (Debian package docker-registry) is not installed"
    if skopeo_binary() is None:
        return "skopeo is not installed"
    return None


@contextlib.contextmanager
def published_world(base: Path) -> Iterator[World]:
    """Start the registry and the Rekor double, publish two images and their attestations."""
    base.mkdir(parents=True, exist_ok=True)
    rekor = RekorDouble(clock=lambda: LOG_TIME)
    rekor.add_entry(b'{"someone":"else"}')  # proofs are not trivial
    (base / "tr.json").write_bytes(rekor.trusted_root_json())
    publisher = TestPublisher(rekor=rekor)
    (base / "publisher.pub").write_bytes(publisher.public_key_pem)
    generate_keypair(base / "exporter")
    with ExitStack() as stack:
        rekor_url = stack.enter_context(rekor.serve())
        registry = stack.enter_context(run_registry(base / "registry"))
        published = []
        for tag, platforms in ((TAG, PLATFORMS), (SECOND_TAG, SECOND_PLATFORMS)):
            image = build_image(base / f"layout-{tag}", tag, platforms=platforms)
            skopeo_push(image.layout, tag, f"{registry.host}/{REPOSITORY}:{tag}")
            atts = make_attestations(publisher, image_refs(image, "dhi.io/python"))
            published += [*atts.dhi, *atts.att, *atts.bundles]
        with fast_client() as client:
            push_published(client, registry.host, REPOSITORY, published)
        yield World(base, registry.host, rekor_url)


# ------------------------------------------------------------------ one run


@dataclass
class Outcome:
    """What one CLI run did."""

    code: int | None
    stdout: str
    stderr: str
    exception: str | None = None


@contextlib.contextmanager
def _environment(run_dir: Path) -> Iterator[dict[str, str]]:
    """A state directory, TMPDIR and (empty) Docker config of the run's own."""
    env = {
        "DHI_OFFLINE_STATE_DIR": str(run_dir / "state"),
        "DHI_OFFLINE_CONFIG_DIR": str(run_dir / "config"),
        "DHI_OFFLINE_DATA_DIR": str(run_dir / "data"),
        "DOCKER_CONFIG": str(run_dir / "no-docker-config"),
        "TMPDIR": str(run_dir / "tmp"),
    }
    (run_dir / "tmp").mkdir(parents=True)
    saved = {k: os.environ.get(k) for k in (*env, "SOURCE_DATE_EPOCH")}
    saved_tempdir = tempfile.tempdir
    os.environ.update(env)
    os.environ.pop("SOURCE_DATE_EPOCH", None)
    tempfile.tempdir = env["TMPDIR"]
    try:
        yield env
    finally:
        tempfile.tempdir = saved_tempdir
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_cli(argv: list[str], *, use_subprocess: bool) -> Outcome:
    """The CLI in-process (an escaping exception is kept) or as ``python -m dhi_offline``."""
    if use_subprocess:
        done = subprocess.run(
            [sys.executable, "-m", "dhi_offline", *argv],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=REPO_ROOT,
            env=os.environ.copy(),
        )
        return Outcome(done.returncode, done.stdout, done.stderr)
    out, err = io.StringIO(), io.StringIO()
    try:
        with redirect_stdout(out), redirect_stderr(err):
            code = cli_main(argv)
    except Exception as e:  # a crash by definition: main must never raise
        return Outcome(None, out.getvalue(), err.getvalue(), f"{type(e).__name__}: {e}")
    if code == 2 and err.getvalue().strip() == "dhi-offline: interrupted":
        raise KeyboardInterrupt
    return Outcome(code, out.getvalue(), err.getvalue())


def _files(root: Path) -> list[str]:
    if not root.exists():
        return []
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if not p.is_dir())


def bundle_identity(path: Path, host: str, exporter_pub: Path, dest: Path) -> dict[str, Any]:
    """Open the bundle as the importer does; what must equal the reference's.

    The signed manifest without ``created``/``expires``, with the registry ``host``
    replaced by a placeholder, and every member's SHA-256 after the same replacement.
    """
    key = load_pem(exporter_pub.read_bytes())
    dest.mkdir(parents=True)
    opened = open_bundle(
        path, trusted_exporters=lambda kid: key if kid == key.key_id else None, dest=dest
    )
    manifest: BundleManifest = opened.manifest
    needle = host.encode()
    members = {}
    for m in manifest.members:
        data = (opened.root / m.path).read_bytes()
        members[m.path] = hashlib.sha256(data.replace(needle, PLACEHOLDER)).hexdigest()
    images = [
        {
            "reference": i.reference.replace(host, PLACEHOLDER.decode()),
            "digest": i.digest,
            "mediaType": i.media_type,
            "platforms": [(p.platform, p.digest) for p in i.platforms],
        }
        for i in manifest.images
    ]
    return {
        "formatVersion": manifest.format_version,
        "sequence": manifest.sequence,
        "exporterKeyId": manifest.exporter_key_id,
        "flags": list(manifest.flags),
        "images": images,
        "members": members,
    }


@dataclass
class Run:
    """One classified run."""

    index: int
    plan: Plan
    outcome: str
    why: str
    code: int | None
    stderr: str
    fired: Counter[str]
    seconds: float
    empty_out_dir: bool = False
    """Not a success, and the output directory the CLI created is left (empty)."""


def _temp_leftovers(run_dir: Path, out_dir: Path, bundle_ok: bool) -> list[str]:
    left = [f"tmp/{f}" for f in _files(run_dir / "tmp")]
    left += [f"state/{f}" for f in _files(run_dir / "state") if f.endswith(".tmp")]
    out = _files(out_dir)
    if bundle_ok:
        out = [f for f in out if f != "b.dhi.tar.zst"]
    left += [f"out/{f}" for f in out]
    return left


def classify(
    world: World, outcome: Outcome, host: str, run_dir: Path, out_dir: Path
) -> tuple[str, str]:
    """(outcome, why) for one run; see the module docstring."""
    err = outcome.stderr
    if outcome.exception is not None:
        return "other", f"exception out of main: {outcome.exception}"
    if "Traceback" in err or "internal error" in err:
        return "other", "crash: " + " ".join(err.split())[:300]
    if outcome.code == 0:
        leftovers = _temp_leftovers(run_dir, out_dir, bundle_ok=True)
        if leftovers:
            return "left behind", "exit 0 but left " + ", ".join(leftovers)
        if not (out_dir / "b.dhi.tar.zst").is_file():
            return "other", "exit 0 without a bundle"
        try:
            identity = bundle_identity(
                out_dir / "b.dhi.tar.zst", host, world.dir / "exporter.pub", run_dir / "opened"
            )
        except Exception as e:  # any refusal of our own bundle is a finding
            return "other", f"exit 0 but the bundle does not open: {type(e).__name__}: {e}"
        if identity != world.reference:
            return "other", "exit 0 but the bundle differs from the reference: " + _difference(
                world.reference, identity
            )
        return "succeeded", "same evidence as the reference"
    leftovers = _temp_leftovers(run_dir, out_dir, bundle_ok=False)
    if leftovers:
        return "left behind", f"exit {outcome.code}, left " + ", ".join(leftovers)
    if outcome.code not in (1, 2):
        return "other", f"exit {outcome.code}"
    if err.count("\n") != 1 or not err.endswith("\n"):
        return "other", f"stderr has {err.count(chr(10))} lines: {err[:300]!r}"
    if not err.startswith("dhi-offline: "):
        return "other", f"stderr does not start with 'dhi-offline: ': {err.strip()[:300]}"
    if not any(f"{host}/{REPOSITORY}:{tag}" in err for tag in (TAG, SECOND_TAG)):
        return "other", f"error does not name the image: {err.strip()[:300]}"
    if REQUEST_NAMED.search(err) is None:
        return "other", f"error does not name the request: {err.strip()[:300]}"
    return "failed cleanly", reason(err, host)


def _difference(want: dict[str, Any], got: dict[str, Any]) -> str:
    parts = [k for k in want if k != "members" and want[k] != got.get(k)]
    wm, gm = want["members"], got.get("members", {})
    missing = sorted(set(wm) - set(gm))
    extra = sorted(set(gm) - set(wm))
    changed = sorted(p for p in set(wm) & set(gm) if wm[p] != gm[p])
    for label, items in (("missing", missing), ("extra", extra), ("changed", changed)):
        if items:
            parts.append(
                f"{label} members {', '.join(items[:4])}" + (" ..." if len(items) > 4 else "")
            )
    return "; ".join(parts) or "?"


def reason(err: str, host: str) -> str:
    """The error's shape without digests, tags, hosts and details in parentheses."""
    text = err.strip().removeprefix("dhi-offline: ")
    text = text.replace(f"{host}/{REPOSITORY}:{TAG}: ", "")
    text = re.sub(r"registry \S+ repository \S+: ", "", text)
    text = re.sub(r"sha256[:-][0-9a-f]{64}(\.att|\.sig)?", "D", text)
    text = re.sub(r"tag [^\s:)]+", "tag T", text)
    text = re.sub(r" \([^()]*(\([^()]*\)[^()]*)*\)", "", text)
    return re.sub(r"\b\d+ (attempts|bytes)", r"N \1", text)


WRONG_BYTES = frozenset({"corrupt", "bloat", "short"})
"""Fired actions that serve wrong bytes (never retried: they must fail the export)."""


def fired_name(action: str) -> str:
    """A proxy action as counted: ``status 503`` -> ``5xx``, ``stall`` -> ``delay``..."""
    if action == "status 429":
        return "429"
    if action.startswith("status "):
        return "5xx"
    return {"stall": "delay", "gone mid-body": "gone"}.get(action, action)


def one_run(world: World, index: int, plan: Plan, base: Path, *, use_subprocess: bool) -> Run:
    """Export through a proxy carrying ``plan``; classify; remove the run's files.

    The output directory does not exist beforehand (the CLI creates a missing parent).
    """
    run_dir = base / f"run-{index}"
    out_dir = run_dir / "out"
    started = time.monotonic()
    try:
        with _environment(run_dir):
            with CampaignProxy(world.registry_host, plan.faults, plan.gone) as proxy:
                outcome = run_cli(
                    world.argv(proxy.host, out_dir / "b.dhi.tar.zst"), use_subprocess=use_subprocess
                )
            seconds = time.monotonic() - started
            outcome_name, why = classify(world, outcome, proxy.host, run_dir, out_dir)
        fired = Counter(fired_name(a) for a in proxy.actions() if a != "pass")
        empty_dir = outcome_name != "succeeded" and out_dir.is_dir() and not _files(out_dir)
        return Run(
            index,
            plan,
            outcome_name,
            why,
            outcome.code,
            outcome.stderr.strip(),
            fired,
            seconds,
            empty_dir,
        )
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


# ------------------------------------------------------------------ the campaign


def make_reference(world: World, base: Path, *, use_subprocess: bool) -> float:
    """The fault-free export: the identity to compare with, and the request list."""
    run_dir = base / "reference"
    out_dir = run_dir / "out"
    out_dir.mkdir(parents=True)
    started = time.monotonic()
    with _environment(run_dir):
        with CampaignProxy(world.registry_host, []) as proxy:
            outcome = run_cli(
                world.argv(proxy.host, out_dir / "b.dhi.tar.zst"), use_subprocess=use_subprocess
            )
        if outcome.code != 0:
            raise RuntimeError(f"the fault-free export failed: {outcome.stderr.strip()}")
        leftovers = _temp_leftovers(run_dir, out_dir, bundle_ok=True)
        if leftovers:
            raise RuntimeError(f"the fault-free export left {leftovers}")
        world.reference = bundle_identity(
            out_dir / "b.dhi.tar.zst", proxy.host, world.dir / "exporter.pub", run_dir / "opened"
        )
    world.requests = [e.request for e in proxy.events]
    world.answered = [line for line, status in proxy.statuses if status == 200]
    shutil.rmtree(run_dir)
    return time.monotonic() - started


@contextlib.contextmanager
def ready_world(*, use_subprocess: bool = False) -> Iterator[World]:
    """The published world with its reference export, in a temporary directory."""
    root = Path(tempfile.mkdtemp(prefix="dhi-fault-campaign-"))
    try:
        started = time.monotonic()
        with published_world(root / "world") as world:
            world.publish_seconds = time.monotonic() - started
            world.reference_seconds = make_reference(world, root, use_subprocess=use_subprocess)
            yield world
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run_campaign(
    world: World,
    runs: int,
    seed: int,
    *,
    use_subprocess: bool = False,
    max_seconds: float | None = None,
    progress: Callable[[Run], None] | None = None,
) -> dict[str, Any]:
    """Up to ``runs`` exports with plans drawn from ``seed``; the report."""
    rng = random.Random(seed)
    done: list[Run] = []
    started = time.monotonic()
    kinds = list(KINDS)
    for i in range(runs):
        if max_seconds is not None and time.monotonic() - started > max_seconds:
            break
        first = kinds[i] if i < len(kinds) else None
        plan = draw_plan(rng, world.requests, world.answered, first)
        run = one_run(world, i, plan, world.dir.parent, use_subprocess=use_subprocess)
        done.append(run)
        if progress is not None:
            progress(run)
    return report(
        done,
        requested=runs,
        seed=seed,
        use_subprocess=use_subprocess,
        seconds=time.monotonic() - started,
        world=world,
    )


def campaign(
    runs: int,
    seed: int,
    *,
    use_subprocess: bool = False,
    max_seconds: float | None = None,
    progress: Callable[[Run], None] | None = None,
) -> dict[str, Any]:
    """Publish the world, make the reference, run up to ``runs`` exports; the report."""
    with ready_world(use_subprocess=use_subprocess) as world:
        return run_campaign(
            world,
            runs,
            seed,
            use_subprocess=use_subprocess,
            max_seconds=max_seconds,
            progress=progress,
        )


def report(
    done: list[Run],
    *,
    requested: int,
    seed: int,
    use_subprocess: bool,
    seconds: float,
    world: World,
) -> dict[str, Any]:
    """The figures of a campaign, as JSON-able data."""
    totals = Counter(r.outcome for r in done)
    by_kind: dict[str, Counter[str]] = {k: Counter() for k in KINDS}
    for r in done:
        for k in set(r.plan.kinds):
            by_kind[k][r.outcome] += 1
    by_size = Counter(len(r.plan.ingredients) for r in done)
    fired: Counter[str] = Counter()
    by_fired: dict[str, Counter[str]] = {}
    for r in done:
        fired.update(r.fired)
        for name in r.fired:
            by_fired.setdefault(name, Counter())[r.outcome] += 1
    wrong_yet_succeeded = [
        r.index for r in done if r.outcome == "succeeded" and WRONG_BYTES & set(r.fired)
    ]
    failed_by = Counter(r.why for r in done if r.outcome == "failed cleanly")
    examples = [
        {
            "run": r.index,
            "plan": r.plan.text,
            "outcome": r.outcome,
            "why": r.why,
            "exit": r.code,
            "stderr": r.stderr[:500],
            "fired": dict(r.fired),
        }
        for r in done
        if r.outcome in ("left behind", "other")
    ][:EXAMPLES]
    durations = sorted(r.seconds for r in done)
    return {
        "seed": seed,
        "requested": requested,
        "runs": len(done),
        "mode": "subprocess" if use_subprocess else "in-process",
        "succeeded": totals["succeeded"],
        "failedCleanly": totals["failed cleanly"],
        "leftBehind": totals["left behind"],
        "other": totals["other"],
        "seconds": round(seconds, 1),
        "perRunSeconds": round(seconds / max(len(done), 1), 2),
        "slowestRunSeconds": round(durations[-1], 2) if durations else 0.0,
        "publishSeconds": round(world.publish_seconds, 1),
        "referenceSeconds": round(world.reference_seconds, 2),
        "reference": {
            "requests": len(world.requests),
            "answered200": len(world.answered),
            "members": len(world.reference.get("members", {})),
            "attestations": sum(PER_PLATFORM.values()) * (len(PLATFORMS) + len(SECOND_PLATFORMS)),
        },
        "byKind": {k: {o: v[o] for o in OUTCOMES if v[o]} for k, v in by_kind.items()},
        "plansBySize": {str(k): v for k, v in sorted(by_size.items())},
        "faultsFired": dict(fired.most_common()),
        "byFired": {k: {o: v[o] for o in OUTCOMES if v[o]} for k, v in sorted(by_fired.items())},
        "noFaultFired": sum(1 for r in done if not r.fired),
        "emptyOutputDirLeft": sum(1 for r in done if r.empty_out_dir),
        "succeededAfterWrongBytes": wrong_yet_succeeded,
        "failedBy": dict(failed_by.most_common()),
        "runsList": [
            {
                "run": r.index,
                "plan": r.plan.text,
                "outcome": r.outcome,
                "why": r.why,
                "exit": r.code,
                "stderr": r.stderr[:400],
                "fired": dict(r.fired),
                "seconds": round(r.seconds, 2),
            }
            for r in done
        ],
        "examples": examples,
        "machine": {
            "nproc": os.cpu_count(),
            "loadavg": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
    }


def failures(doc: dict[str, Any]) -> int:
    """Runs that must not happen."""
    return int(doc["leftBehind"] + doc["other"])


def summary(doc: dict[str, Any]) -> str:
    """The figures, for a terminal."""
    m = doc["machine"]
    lines = [
        f"runs               {doc['runs']} (requested {doc['requested']}, seed {doc['seed']}, "
        f"{doc['mode']})",
        f"succeeded          {doc['succeeded']}",
        f"failed cleanly     {doc['failedCleanly']}",
        f"left behind        {doc['leftBehind']}   (must be 0)",
        f"other              {doc['other']}   (must be 0)",
        f"time               {doc['seconds']} s ({doc['perRunSeconds']} s per run, slowest "
        f"{doc['slowestRunSeconds']} s; world published in {doc['publishSeconds']} s, "
        f"reference export {doc['referenceSeconds']} s, {doc['reference']['requests']} requests)",
        f"machine            nproc {m['nproc']}, load {m['loadavg']}, Python {m['python']}, "
        f"{m['platform']}",
        "",
        f"{'fault kind':<14}" + "".join(f"{o:>16}" for o in OUTCOMES),
    ]
    for kind, counts in doc["byKind"].items():
        lines.append(f"{kind:<14}" + "".join(f"{counts.get(o, 0):>16}" for o in OUTCOMES))
    lines += ["", f"{'fault fired':<14}" + "".join(f"{o:>16}" for o in OUTCOMES)]
    for kind, counts in doc["byFired"].items():
        lines.append(f"{kind:<14}" + "".join(f"{counts.get(o, 0):>16}" for o in OUTCOMES))
    lines += [
        f"(no fault fired in {doc['noFaultFired']} run(s); runs that succeeded although "
        f"wrong bytes were served: {doc['succeededAfterWrongBytes'] or 'none'}; runs that did "
        f"not succeed and left the output directory the CLI created, empty: "
        f"{doc['emptyOutputDirLeft']})",
        "",
        "plans by size      "
        + ", ".join(f"{k} ingredient(s): {v}" for k, v in doc["plansBySize"].items()),
        "faults fired       " + ", ".join(f"{k} {v}" for k, v in doc["faultsFired"].items()),
        "failed cleanly by:",
        *(f"  {v:5d}  {k}" for k, v in doc["failedBy"].items()),
    ]
    if doc["examples"]:
        lines.append("left behind / other:")
        lines += [
            f"  run {e['run']}: {e['outcome']}: {e['why']} [{e['plan']}]" for e in doc["examples"]
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line; exit 1 when any run left something behind or is 'other'."""
    p = argparse.ArgumentParser(
        prog="python -m tests.export.fault_campaign",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--runs", type=int, default=200, help="exports to run (default 200)")
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    p.add_argument("--json", type=Path, help="write the JSON report here")
    p.add_argument("--subprocess", action="store_true", help="run the CLI as a subprocess")
    p.add_argument("--max-seconds", type=float, help="stop starting runs after this long")
    p.add_argument("-v", "--verbose", action="store_true", help="one line per run")
    args = p.parse_args(argv)
    missing = tools_missing()
    if missing is not None:
        print(f"fault campaign: {missing}", file=sys.stderr)
        return 2

    def progress(run: Run) -> None:
        if args.verbose:
            print(
                f"  {run.index:4d} {run.seconds:5.2f}s {run.outcome:<14} {run.plan.text}"
                f" -> {run.why}",
                file=sys.stderr,
                flush=True,
            )
        elif (run.index + 1) % 25 == 0:
            print(f"  {run.index + 1} runs", file=sys.stderr, flush=True)

    doc = campaign(
        args.runs,
        args.seed,
        use_subprocess=args.subprocess,
        max_seconds=args.max_seconds,
        progress=progress,
    )
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    print(summary(doc))
    return 1 if failures(doc) else 0


if __name__ == "__main__":
    sys.exit(main())
