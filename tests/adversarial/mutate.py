"""Mutation campaign: random damage to valid bundles, each verified in-process.

    python -m tests.adversarial.mutate --n N --seed S --out REPORT.json [--max-seconds T]

Three valid bundles are built once into a temporary directory: the two-platform sample
image exported from an OCI layout (10 attestations), the same image exported for one
platform, and the corpus' control bundle (no image; a blob and an evidence index).
Each mutation takes one of them and applies one of:

- ``byte``: one byte of the compressed file, uniformly chosen, set to another value;
- ``tar-byte``: one byte of the inflated tar (headers, data, padding, end marker) set
  to another value, then re-compressed (so zstd's own checksum cannot be what refuses);
- ``truncate``: the compressed file cut at a uniformly chosen length;
- ``swap``: two members' data exchanged (names, order and signed manifest kept),
  re-compressed;
- ``drop``: one member removed, re-compressed;
- ``duplicate``: one member repeated right after itself, re-compressed.

and runs ``dhi_offline.cli.main.main(["verify", ..., "--format", "json"])`` with
stdout and stderr captured, against a trust store, archive and temporary directory of
its own. Outcomes:

- **rejected**: exit 1 or 2 with one line on stderr (or exit 1 with a FAIL report);
- **accepted**: exit 0. Acceptable only when the verified meaning is unchanged: the JSON
  report must equal the original's except ``bundle.path``, ``bundle.sha256`` and
  ``bundle.size``; otherwise it counts as **accepted with a different meaning**;
- **crash**: an exception escaping ``main``, or exit 2 with "internal error";
- **bad stderr**: a refusal that is not exactly one line, or shows a traceback.

Crashes, different meanings and bad stderr are failures; the report keeps up to
:data:`EXAMPLES` examples of each (and ``--keep DIR`` keeps their files).
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
import shutil
import sys
import tarfile
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import zstandard
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from dhi_offline.cli.main import main as cli_main
from dhi_offline.demo import build_sample_layout
from tests.adversarial import generate
from tests.bundle.helpers import Raw, compress, tar_bytes

ROOT = (
    Path(__file__).resolve().parents[2]
    / "dhi_offline"
    / "data"
    / "trusted_root"
    / "production.json"
)
EPOCH = 1_767_225_600  # 2026-01-01T00:00:00Z: bundles are created then...
AT = "2026-01-02T00:00:00Z"  # ...and verified a day later, whatever today is
EXAMPLES = 20
KINDS: dict[str, int] = {
    "byte": 40,
    "tar-byte": 25,
    "truncate": 10,
    "swap": 10,
    "drop": 8,
    "duplicate": 7,
}
"""Mutation kinds and their weights."""
IGNORED = ("path", "sha256", "size")
"""``bundle`` fields of the JSON report that may differ for the same meaning."""
_PUBLISHER_SECRET = int.from_bytes(hashlib.sha256(b"dhi-offline mutation publisher").digest())


@dataclass(frozen=True)
class Base:
    """A valid bundle and what verifying it reports."""

    name: str
    data: bytes
    tar: bytes
    members: list[tuple[str, bytes]]
    report: dict[str, Any]


@dataclass
class Site:
    """Where the campaign works: keys, bundles, an empty archive, a private TMPDIR."""

    root: Path

    def argv(self, bundle: Path) -> list[str]:
        """``verify BUNDLE`` with this site's trust, JSON output and the fixed time."""
        return [
            "verify",
            str(bundle),
            "--trust-exporter",
            str(self.root / "exporter.pub"),
            "--trust-exporter",
            str(generate.KEYS / "exporter.pub"),
            "--trust-publisher",
            str(self.root / "publisher.pub"),
            "--trusted-root",
            str(ROOT),
            "--at",
            AT,
            "--format",
            "json",
        ]


@dataclass(frozen=True)
class Outcome:
    """One verification."""

    code: int | None
    stdout: str
    stderr: str
    exception: str | None = None


@contextlib.contextmanager
def isolated(root: Path) -> Iterator[None]:
    """Environment and temporary directory of the campaign's own (restored after)."""
    env = {
        "DHI_OFFLINE_STATE_DIR": str(root / "state"),
        "DHI_OFFLINE_CONFIG_DIR": str(root / "config"),
        "DHI_OFFLINE_DATA_DIR": str(root / "data"),
        "SOURCE_DATE_EPOCH": str(EPOCH),
    }
    saved = {k: os.environ.get(k) for k in env}
    saved_tempdir = tempfile.tempdir
    (root / "tmp").mkdir(exist_ok=True)
    os.environ.update(env)
    tempfile.tempdir = str(root / "tmp")
    try:
        yield
    finally:
        tempfile.tempdir = saved_tempdir
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_cli(argv: list[str]) -> Outcome:
    """``main(argv)`` with stdout and stderr captured; an escaping exception is kept."""
    out, err = io.StringIO(), io.StringIO()
    try:
        with redirect_stdout(out), redirect_stderr(err):
            code = cli_main(argv)
    except Exception as e:  # a crash by definition: main must never raise
        return Outcome(None, out.getvalue(), err.getvalue(), f"{type(e).__name__}: {e}")
    if code == 2 and err.getvalue().strip() == "dhi-offline: interrupted":
        raise KeyboardInterrupt
    return Outcome(code, out.getvalue(), err.getvalue())


# -- the valid bundles ------------------------------------------------------------------


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def members_of(tar: bytes) -> list[tuple[str, bytes]]:
    """The members of a bundle's tar, in order (read with Python's tarfile)."""
    with tarfile.open(fileobj=io.BytesIO(tar), mode="r:") as tf:
        out = []
        for m in tf.getmembers():
            f = tf.extractfile(m)
            out.append((m.name, f.read() if f is not None else b""))
        return out


def _export(site: Site, out: str, *extra: str) -> Path:
    outcome = run_cli(
        [
            "export",
            f"oci-layout:{site.root / 'layout'}:3.13",
            "--signing-key",
            str(site.root / "exporter.pem"),
            "--key",
            str(site.root / "publisher.pub"),
            "--trusted-root",
            str(ROOT),
            "--no-rekor",
            "-o",
            str(site.root / out),
            *extra,
        ]
    )
    if outcome.code != 0:
        raise RuntimeError(f"export failed: {outcome.stderr or outcome.exception}")
    return site.root / out


def build_bases(site: Site) -> list[Base]:
    """The valid bundles, each verified once (they must pass)."""
    publisher = ec.derive_private_key(_PUBLISHER_SECRET, ec.SECP256R1())
    (site.root / "publisher.pub").write_bytes(_pem(publisher))
    build_sample_layout(site.root / "layout", publisher, when=datetime.fromtimestamp(EPOCH, UTC))
    keys = run_cli(["keys", "generate", "--output", str(site.root / "exporter")])
    if keys.code != 0:
        raise RuntimeError(f"keys generate failed: {keys.stderr}")
    files = {
        "two-platforms": _export(site, "two.dhi.tar.zst"),
        "one-platform": _export(site, "one.dhi.tar.zst", "--platform", "linux/arm64"),
        "crafted": site.root / "crafted.dhi.tar.zst",
    }
    files["crafted"].write_bytes(generate.zstd(generate.good_tar(generate.Ctx.load())))
    bases = []
    for name, path in files.items():
        outcome = run_cli(site.argv(path))
        if outcome.code != 0:
            raise RuntimeError(f"base {name} does not verify: {outcome.stderr}{outcome.stdout}")
        data = path.read_bytes()
        tar = zstandard.ZstdDecompressor().decompress(data)
        bases.append(Base(name, data, tar, members_of(tar), json.loads(outcome.stdout)))
    return bases


# -- mutations --------------------------------------------------------------------------


def _other_byte(rng: random.Random, old: int) -> int:
    return (old + rng.randrange(1, 256)) % 256


def _retar(members: list[tuple[str, bytes]]) -> bytes:
    return compress(tar_bytes([Raw.regular(p, d) for p, d in members]))


def m_byte(rng: random.Random, base: Base) -> tuple[bytes, str]:
    data = bytearray(base.data)
    i = rng.randrange(len(data))
    data[i] = _other_byte(rng, data[i])
    return bytes(data), f"compressed byte {i} of {len(data)} -> {data[i]:#04x}"


def m_tar_byte(rng: random.Random, base: Base) -> tuple[bytes, str]:
    tar = bytearray(base.tar)
    i = rng.randrange(len(tar))
    tar[i] = _other_byte(rng, tar[i])
    return compress(bytes(tar)), f"tar byte {i} of {len(tar)} -> {tar[i]:#04x}"


def m_truncate(rng: random.Random, base: Base) -> tuple[bytes, str]:
    n = rng.randrange(len(base.data))
    return base.data[:n], f"cut at {n} of {len(base.data)}"


def m_swap(rng: random.Random, base: Base) -> tuple[bytes, str]:
    ms = list(base.members)
    i, j = rng.sample(range(len(ms)), 2)
    (pi, di), (pj, dj) = ms[i], ms[j]
    ms[i], ms[j] = (pi, dj), (pj, di)
    return _retar(ms), f"data of {pi} and {pj} exchanged"


def m_drop(rng: random.Random, base: Base) -> tuple[bytes, str]:
    ms = list(base.members)
    i = rng.randrange(len(ms))
    dropped = ms.pop(i)[0]
    return _retar(ms), f"{dropped} dropped"


def m_duplicate(rng: random.Random, base: Base) -> tuple[bytes, str]:
    ms = list(base.members)
    i = rng.randrange(len(ms))
    ms.insert(i + 1, ms[i])
    return _retar(ms), f"{ms[i][0]} duplicated"


MUTATORS: dict[str, Callable[[random.Random, Base], tuple[bytes, str]]] = {
    "byte": m_byte,
    "tar-byte": m_tar_byte,
    "truncate": m_truncate,
    "swap": m_swap,
    "drop": m_drop,
    "duplicate": m_duplicate,
}


# -- the campaign -------------------------------------------------------------------------


def meaning(report: dict[str, Any]) -> dict[str, Any]:
    """The report without what may differ between two files of the same meaning."""
    doc: dict[str, Any] = json.loads(json.dumps(report))
    for k in IGNORED:
        doc.get("bundle", {}).pop(k, None)
    return doc


def _step(stderr: str) -> str:
    """The step a one-line refusal names: "dhi-offline: verification failed: 3 bundle
    members: ..." -> "3 bundle members"; "dhi-offline: error: not a zstd-compressed ..."
    -> "error: not a zstd-compressed ..." (its first clause)."""
    text = stderr.strip().removeprefix("dhi-offline: ")
    kind, _, rest = text.partition(": ")
    if kind == "verification failed":
        return rest.split(": ", 1)[0]
    return f"{kind}: {rest.split(' (')[0].split(': ')[0]}"


@dataclass
class Tally:
    """Counts and examples."""

    tried: int = 0
    rejected: int = 0
    accepted: int = 0
    accepted_same: int = 0
    accepted_different: int = 0
    crashes: int = 0
    bad_stderr: int = 0
    by_kind: dict[str, Counter[str]] = field(default_factory=dict)
    steps: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def note(self, kind: str, outcome: str) -> None:
        self.by_kind.setdefault(kind, Counter())[outcome] += 1

    def example(self, what: str, item: dict[str, Any]) -> bool:
        items = self.examples.setdefault(what, [])
        if len(items) < EXAMPLES:
            items.append(item)
            return True
        return False


def classify(outcome: Outcome, base: Base, tally: Tally) -> str:
    """Count one outcome; return its class."""
    if outcome.exception is not None or (outcome.code == 2 and "internal error" in outcome.stderr):
        tally.crashes += 1
        return "crash"
    lines = outcome.stderr.splitlines()
    if "Traceback" in outcome.stderr or len(lines) > 1 or (outcome.code == 2 and not lines):
        tally.bad_stderr += 1
        return "bad-stderr"
    if outcome.code == 0:
        tally.accepted += 1
        try:
            same = meaning(json.loads(outcome.stdout)) == meaning(base.report)
        except ValueError:
            same = False
        if same:
            tally.accepted_same += 1
            return "accepted-same"
        tally.accepted_different += 1
        return "accepted-different"
    tally.rejected += 1
    tally.steps[_step(outcome.stderr) if lines else "report FAIL (steps 5-7)"] += 1
    return "rejected"


def campaign(
    n: int,
    seed: int,
    *,
    max_seconds: float | None = None,
    keep: Path | None = None,
    progress: Callable[[int, Tally], None] | None = None,
) -> dict[str, Any]:
    """Run up to ``n`` mutations (fewer if ``max_seconds`` runs out); return the report."""
    rng = random.Random(seed)
    tally = Tally()
    root = Path(tempfile.mkdtemp(prefix="dhi-adv-mutate-"))
    try:
        site = Site(root)
        with isolated(root):
            started = time.monotonic()
            bases = build_bases(site)
            build_seconds = time.monotonic() - started
            target = root / "mutant.dhi.tar.zst"
            kinds, weights = list(KINDS), list(KINDS.values())
            started = time.monotonic()
            for i in range(n):
                if max_seconds is not None and time.monotonic() - started > max_seconds:
                    break
                base = rng.choice(bases)
                kind = rng.choices(kinds, weights)[0]
                data, how = MUTATORS[kind](rng, base)
                while data == base.data:  # a no-op (e.g. two equal members swapped)
                    data, how = MUTATORS[kind](rng, base)
                target.write_bytes(data)
                outcome = run_cli(site.argv(target))
                tally.tried += 1
                result = classify(outcome, base, tally)
                tally.note(kind, result)
                if result in ("crash", "bad-stderr", "accepted-different", "accepted-same"):
                    item = {
                        "index": i,
                        "base": base.name,
                        "kind": kind,
                        "mutation": how,
                        "exit": outcome.code,
                        "stderr": outcome.stderr.strip()[:500],
                        "exception": outcome.exception,
                    }
                    if tally.example(result, item) and keep is not None:
                        keep.mkdir(parents=True, exist_ok=True)
                        (keep / f"{result}-{i}.dhi.tar.zst").write_bytes(data)
                if progress is not None:
                    progress(i, tally)
            seconds = time.monotonic() - started
            leftovers = sorted(p.name for p in (root / "tmp").iterdir())
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return {
        "seed": seed,
        "requested": n,
        "tried": tally.tried,
        "rejected": tally.rejected,
        "accepted": tally.accepted,
        "acceptedSameMeaning": tally.accepted_same,
        "acceptedDifferentMeaning": tally.accepted_different,
        "crashes": tally.crashes,
        "badStderr": tally.bad_stderr,
        "seconds": round(seconds, 1),
        "perMutationMs": round(1000 * seconds / max(tally.tried, 1), 1),
        "buildSeconds": round(build_seconds, 1),
        "tmpLeftovers": leftovers,
        "byKind": {k: dict(v) for k, v in sorted(tally.by_kind.items())},
        "rejectedBy": dict(tally.steps.most_common()),
        "bases": [{"name": b.name, "size": len(b.data), "members": len(b.members)} for b in bases],
        "machine": {
            "nproc": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "zstandard": zstandard.__version__,
            "libzstd": ".".join(map(str, zstandard.ZSTD_VERSION)),
        },
        "examples": tally.examples,
    }


def failures(report: dict[str, Any]) -> int:
    """Mutations that count as failures."""
    return int(report["crashes"] + report["acceptedDifferentMeaning"] + report["badStderr"])


def summary(report: dict[str, Any]) -> str:
    """The figures, for a terminal."""
    m = report["machine"]
    lines = [
        f"mutations tried      {report['tried']} (requested {report['requested']}, "
        f"seed {report['seed']})",
        f"rejected (exit 1/2)  {report['rejected']}",
        f"accepted             {report['accepted']} (same meaning "
        f"{report['acceptedSameMeaning']}, different meaning "
        f"{report['acceptedDifferentMeaning']})",
        f"crashes              {report['crashes']}",
        f"bad stderr           {report['badStderr']}",
        f"time                 {report['seconds']} s ({report['perMutationMs']} ms per "
        f"mutation; bases built in {report['buildSeconds']} s)",
        f"machine              nproc {m['nproc']}, Python {m['python']}, zstandard "
        f"{m['zstandard']} (libzstd {m['libzstd']}), {m['platform']}",
        "by kind              "
        + "; ".join(
            f"{k}: " + ", ".join(f"{o} {c}" for o, c in sorted(v.items()))
            for k, v in report["byKind"].items()
        ),
        "rejected by          "
        + ", ".join(f"{step} {c}" for step, c in report["rejectedBy"].items()),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line; exit 1 when any mutation is a failure."""
    p = argparse.ArgumentParser(prog="python -m tests.adversarial.mutate", description=__doc__)
    p.add_argument("--n", type=int, default=10_000, help="mutations to try (default 10000)")
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    p.add_argument("--out", type=Path, help="write the JSON report here")
    p.add_argument("--max-seconds", type=float, help="stop after this long")
    p.add_argument("--keep", type=Path, help="keep the files of failures (and acceptances)")
    args = p.parse_args(argv)

    def progress(i: int, tally: Tally) -> None:
        if (i + 1) % 1000 == 0:
            print(
                f"  {i + 1}: rejected {tally.rejected}, accepted {tally.accepted}, "
                f"crashes {tally.crashes}",
                file=sys.stderr,
                flush=True,
            )

    report = campaign(
        args.n, args.seed, max_seconds=args.max_seconds, keep=args.keep, progress=progress
    )
    if args.out is not None:
        args.out.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    print(summary(report))
    return 1 if failures(report) else 0


if __name__ == "__main__":
    sys.exit(main())
