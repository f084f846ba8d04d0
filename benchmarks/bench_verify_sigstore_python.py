#!/usr/bin/env python3
"""Benchmark keyless sigstore bundle verification: dhi-offline against sigstore-python.

Bundles: the real keyless bundles of the vectors that both verify: the five
sigstore-conformance ``happy-path-*`` cases (production root) and sigstore-python's own
passing bundles (``tests/verify/test_sigstore_python_vectors.py``: staging, production,
and the TSA case with sigstore-python's test TSA added to the staging root). The
expected identity and issuer are read from each leaf certificate, as that test does.
Both verifiers get the same trusted-root files (the ones shipped in dhi_offline; for the
CLI, as a ``--trust-config`` with sigstore-python's signing config of that instance).

Both run the same checks: certificate chain at the signing time, embedded SCT, the
transparency-log entry (body binding, SET or checkpoint-signed inclusion proof), RFC 3161
timestamps where present, and the identity policy; for DSSE bundles the in-toto subject
is matched against the artifact's digest (sigstore-python's CLI ``_verify_common``).

Measured (each the median of ``--runs`` interleaved runs):

- in-process, ``--iterations`` x every bundle: ``sigstore.verify.Verifier`` (trusted root
  loaded once; ``Bundle.from_json`` then ``verify_artifact``/``verify_dsse`` with an
  ``Identity`` policy each time) against dhi-offline (``parse_bundle`` then
  ``verify_sigstore_bundle`` with a ``KeylessPolicy`` each time). Target: dhi-offline
  at least 2x faster.
- floor, in the same interleaved runs: exactly the signature checks those bundles need,
  made with ``cryptography`` directly on inputs prepared once (recorded from one pass of
  dhi-offline: every ECDSA/Ed25519 check through ``PublicKey`` (content, SCT, SET,
  checkpoint), the leaf's check by its Fulcio intermediate (one P-384; the intermediate
  link is cached, as sigstore-python trusts the whole chain), and rfc3161-client's
  ``verify_message`` for each RFC 3161 timestamp on a prebuilt verifier). Target:
  dhi-offline within 1.1x of it.
- processes: ``sigstore verify identity --offline`` once per bundle (the loop a user
  would script) against ONE dhi-offline process verifying every bundle (this script's
  ``--worker`` mode, through the library), and against ``dhi-offline sigstore
  verify-bundle`` once per bundle.

Usage: ``python benchmarks/bench_verify_sigstore_python.py [--iterations N] [--runs R]
[--quick] [--profile] [--json FILE]``. ``--profile`` prints a pyinstrument profile of
dhi-offline's in-process loop and exits.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _timing import (
    REPO_ROOT,
    VENV_BIN,
    dhi_offline_cli,
    interleaved,
    median,
    print_machine,
    print_table,
    profile,
    report_target,
)

from dhi_offline.evidence.certificate import certificate_identity
from dhi_offline.evidence.sigstore_bundle import parse_bundle
from dhi_offline.trust.trusted_root import TrustedRoot
from dhi_offline.verify.sigstore import Artifact, KeylessPolicy, verify_sigstore_bundle

VECTORS = REPO_ROOT / "tests" / "vectors"
CONFORMANCE = VECTORS / "sigstore-conformance" / "test" / "assets" / "bundle-verify"
SIGSTORE_PYTHON = VECTORS / "sigstore-python" / "test" / "assets"
ROOTS = REPO_ROOT / "dhi_offline" / "data" / "trusted_root"
SIGSTORE_PYTHON_CASES = [
    ("bundle.txt.sigstore", "bundle.txt", "staging"),
    ("bundle_v3.txt.sigstore", "bundle_v3.txt", "staging"),
    ("bundle_v3_alt.txt.sigstore", "bundle_v3_alt.txt", "staging"),
    ("staging-rekor-v2.txt.sigstore.json", "staging-rekor-v2.txt", "staging"),
    ("a.dsse.staging-rekor-v2.txt.sigstore.json", str(CONFORMANCE / "a.txt"), "staging"),
    ("bundle_v3_github.whl.sigstore", "bundle_v3_github.whl", "production"),
    ("tsa/bundle.txt.sigstore", "tsa/bundle.txt", "tsa"),
]
STORE_HOSTS = {
    "production": "https%3A%2F%2Ftuf-repo-cdn.sigstore.dev",
    "staging": "https%3A%2F%2Ftuf-repo-cdn.sigstage.dev",
    "tsa": "https%3A%2F%2Ftuf-repo-cdn.sigstage.dev",
}


@dataclass(frozen=True)
class Case:
    name: str
    bundle: Path
    artifact: Path
    root: str
    identity: str
    issuer: str


def cases() -> list[Case]:
    out: list[tuple[str, Path, Path, str]] = [
        (d.name, d / "bundle.sigstore.json", CONFORMANCE / "a.txt", "production")
        for d in sorted(CONFORMANCE.glob("happy-path-*"))
    ]
    out += [(b, SIGSTORE_PYTHON / b, SIGSTORE_PYTHON / a, r) for b, a, r in SIGSTORE_PYTHON_CASES]
    result: list[Case] = []
    for name, bundle, artifact, root in out:
        ident = certificate_identity(parse_bundle(bundle.read_bytes()).certificates[0])
        assert ident.issuer is not None
        result.append(Case(name, bundle, artifact, root, ident.sans[0], ident.issuer))
    return result


def root_files(work: Path) -> dict[str, Path]:
    """Trusted-root files by name: the shipped ones and staging + the test TSA."""
    doc = json.loads((ROOTS / "staging.json").read_text())
    doc["timestampAuthorities"] = [json.loads((SIGSTORE_PYTHON / "tsa" / "ca.json").read_text())]
    tsa = work / "tsa-trusted_root.json"
    tsa.write_text(json.dumps(doc))
    return {"production": ROOTS / "production.json", "staging": ROOTS / "staging.json", "tsa": tsa}


def trust_configs(work: Path, roots: dict[str, Path]) -> dict[str, Path]:
    """``--trust-config`` files for sigstore's CLI: our trusted root + its signing config."""
    import sigstore  # noqa: PLC0415 (the compared library, loaded only to compare)

    store = Path(sigstore.__file__).parent / "_store"
    out: dict[str, Path] = {}
    for name, root in roots.items():
        signing = json.loads((store / STORE_HOSTS[name] / "signing_config.v0.2.json").read_text())
        path = work / f"trust-config-{name}.json"
        path.write_text(
            json.dumps(
                {
                    "mediaType": "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json",
                    "trustedRoot": json.loads(root.read_text()),
                    "signingConfig": signing,
                }
            )
        )
        out[name] = path
    return out


# ----------------------------------------------------------------- the two verifiers


def dhi_offline_verifier(all_cases: list[Case], roots: dict[str, Path]) -> Any:
    trusted = {name: TrustedRoot.from_path(path) for name, path in roots.items()}
    inputs = [
        (
            c.bundle.read_bytes(),
            c.artifact.read_bytes(),
            trusted[c.root],
            KeylessPolicy(c.identity, c.issuer),
        )
        for c in all_cases
    ]

    def run(iterations: int) -> None:
        for _ in range(iterations):
            for raw, artifact, root, policy in inputs:
                verify_sigstore_bundle(
                    parse_bundle(raw),
                    artifact=Artifact.from_bytes(artifact),
                    trusted_root=root,
                    policy=policy,
                )

    return run


def sigstore_python_verifier(all_cases: list[Case], roots: dict[str, Path]) -> Any:
    from sigstore import dsse  # noqa: PLC0415 (the compared library, loaded only to compare)
    from sigstore.errors import VerificationError  # noqa: PLC0415 (the compared library, loaded only to compare)
    from sigstore.hashes import Hashed  # noqa: PLC0415 (the compared library, loaded only to compare)
    from sigstore.models import Bundle  # noqa: PLC0415 (the compared library, loaded only to compare)
    from sigstore.models import TrustedRoot as SigstoreRoot  # noqa: PLC0415 (the compared library, loaded only to compare)
    from sigstore.verify import Verifier  # noqa: PLC0415 (the compared library, loaded only to compare)
    from sigstore.verify.policy import Identity  # noqa: PLC0415 (the compared library, loaded only to compare)
    from sigstore_models.common.v1 import HashAlgorithm  # noqa: PLC0415 (the compared library, loaded only to compare)

    verifiers = {
        name: Verifier(trusted_root=SigstoreRoot.from_file(str(path)))
        for name, path in roots.items()
    }
    inputs = [
        (
            c.bundle.read_bytes(),
            c.artifact.read_bytes(),
            verifiers[c.root],
            Identity(identity=c.identity, issuer=c.issuer),
        )
        for c in all_cases
    ]

    def run(iterations: int) -> None:
        for _ in range(iterations):
            for raw, artifact, verifier, policy in inputs:
                hashed = Hashed(
                    algorithm=HashAlgorithm.SHA2_256, digest=hashlib.sha256(artifact).digest()
                )
                bundle = Bundle.from_json(raw)
                if bundle._dsse_envelope:  # as sigstore's CLI (_verify_common) does
                    _, payload = verifier.verify_dsse(bundle=bundle, policy=policy)
                    if not dsse.Statement(payload)._matches_digest(hashed):
                        raise VerificationError("in-toto statement has no matching subject")
                else:
                    verifier.verify_artifact(input_=hashed, bundle=bundle, policy=policy)

    return run


def floor_verifier(all_cases: list[Case], roots: dict[str, Path]) -> Any:
    """The signature checks one pass of dhi-offline makes, replayed with the libraries'
    primitives only (see the module docstring)."""
    from cryptography.hazmat.primitives import hashes  # noqa: PLC0415 (bench-only)
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, utils  # noqa: PLC0415 (bench-only)
    from rfc3161_client import VerifierBuilder  # noqa: PLC0415 (bench-only)

    from dhi_offline.evidence import timestamp  # noqa: PLC0415 (bench-only)
    from dhi_offline.trust import keys  # noqa: PLC0415 (bench-only)

    ops: list[Any] = []
    real_verify = keys.PublicKey._verify
    real_tsa = timestamp._verify_with_authority

    def record(self: Any, signature: bytes, data: bytes, *, prehashed: bool) -> None:
        real_verify(self, signature, data, prehashed=prehashed)  # only passed checks count
        key = self.key
        if isinstance(key, ed25519.Ed25519PublicKey):
            ops.append(lambda: key.verify(signature, data))
        elif isinstance(key, ec.EllipticCurvePublicKey):
            algo = ec.ECDSA(
                utils.Prehashed(hashes.SHA256()) if prehashed else keys._CURVE_HASH[key.curve.name]
            )
            ops.append(lambda: key.verify(signature, data, algo))
        else:  # not in these bundles
            ops.append(lambda: real_verify(self, signature, data, prehashed=prehashed))

    def record_tsa(response: Any, message: bytes, authority: Any, gen_time: Any) -> None:
        chain = authority.chain
        builder = VerifierBuilder().tsa_certificate(chain[0]).add_root_certificate(chain[-1])
        for intermediate in chain[1:-1]:
            builder = builder.add_intermediate_certificate(intermediate)
        verifier = builder.build()
        real_tsa(response, message, authority, gen_time)  # only a check that passed counts
        ops.append(lambda: verifier.verify_message(response, message))

    trusted = {name: TrustedRoot.from_path(path) for name, path in roots.items()}
    keys.PublicKey._verify = record  # type: ignore[method-assign]
    timestamp._verify_with_authority = record_tsa
    try:
        for c in all_cases:
            bundle = parse_bundle(c.bundle.read_bytes())
            verify_sigstore_bundle(
                bundle,
                artifact=Artifact.from_bytes(c.artifact.read_bytes()),
                trusted_root=trusted[c.root],
                policy=KeylessPolicy(c.identity, c.issuer),
            )
            leaf = bundle.certificates[0]
            issuer = next(
                cert
                for ca in trusted[c.root].certificate_authorities
                for cert in ca.chain
                if cert.subject == leaf.issuer
            )
            issuer_key = issuer.public_key()
            hash_algo = leaf.signature_hash_algorithm
            if not isinstance(issuer_key, ec.EllipticCurvePublicKey) or hash_algo is None:
                raise SystemExit(f"{c.name}: issuer is not an ECDSA key")
            leaf_sig, leaf_tbs, leaf_algo = leaf.signature, leaf.tbs_certificate_bytes, hash_algo
            ops.append(
                lambda k=issuer_key, s=leaf_sig, t=leaf_tbs, a=leaf_algo: k.verify(
                    s, t, ec.ECDSA(a)
                )
            )
    finally:
        keys.PublicKey._verify = real_verify  # type: ignore[method-assign]
        timestamp._verify_with_authority = real_tsa

    def run(iterations: int) -> None:
        for _ in range(iterations):
            for op in ops:
                op()

    run.ops = len(ops)  # type: ignore[attr-defined]
    return run


# ----------------------------------------------------------------- processes


def worker(work: Path) -> int:
    """``--worker``: verify every bundle once, in this one process (what a user would
    script with the library instead of a loop of CLI calls)."""
    all_cases = cases()
    dhi_offline_verifier(all_cases, root_files(work))(1)
    print(f"verified {len(all_cases)} bundles")
    return 0


def run_ok(argv: list[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(
            f"{' '.join(argv[:4])}... failed ({done.returncode}): {done.stderr[-400:]}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=None, help="default 30 (quick: 3)")
    parser.add_argument("--runs", type=int, default=None, help="default 5 (quick: 1)")
    parser.add_argument("--quick", action="store_true", help="smoke run")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument(
        "--profile", action="store_true", help="profile dhi-offline's in-process loop and exit"
    )
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args.worker)
    iterations = args.iterations or (3 if args.quick else 30)
    runs = args.runs or (1 if args.quick else 5)
    logging.getLogger("sigstore").setLevel(logging.ERROR)

    m = print_machine()
    import sigstore  # noqa: PLC0415 (the compared library, loaded only to compare)

    print(f"sigstore-python {sigstore.__version__}")
    all_cases = cases()
    with tempfile.TemporaryDirectory(prefix="bench-sigstore-") as tmp:
        work = Path(tmp)
        roots = root_files(work)
        configs = trust_configs(work, roots)
        ours = dhi_offline_verifier(all_cases, roots)
        if args.profile:
            ours(1)  # warm, as the measured runs are
            profile(lambda: ours(iterations))
            return 0
        theirs = sigstore_python_verifier(all_cases, roots)
        floor = floor_verifier(all_cases, roots)
        ours(1)  # warm up, and both must pass every bundle
        theirs(1)
        floor(1)
        in_process = interleaved(
            {
                "sigstore-python": lambda: theirs(iterations),
                "dhi-offline": lambda: ours(iterations),
                "floor": lambda: floor(iterations),
            },
            runs,
        )

        sigstore_cli = str(VENV_BIN / "sigstore")
        dhi_cli = dhi_offline_cli()

        def sigstore_loop() -> None:
            for c in all_cases:
                run_ok(
                    [
                        sigstore_cli,
                        "--trust-config",
                        str(configs[c.root]),
                        "verify",
                        "identity",
                        "--offline",
                        "--bundle",
                        str(c.bundle),
                        "--cert-identity",
                        c.identity,
                        "--cert-oidc-issuer",
                        c.issuer,
                        str(c.artifact),
                    ]
                )

        def dhi_loop() -> None:
            for c in all_cases:
                run_ok(
                    [
                        *dhi_cli,
                        "sigstore",
                        "verify-bundle",
                        "--bundle",
                        str(c.bundle),
                        "--trusted-root",
                        str(roots[c.root]),
                        "--certificate-identity",
                        c.identity,
                        "--certificate-oidc-issuer",
                        c.issuer,
                        str(c.artifact),
                    ]
                )

        def dhi_one() -> None:
            run_ok([sys.executable, __file__, "--worker", str(work)])

        processes = interleaved(
            {
                "sigstore CLI loop": sigstore_loop,
                "dhi-offline one process": dhi_one,
                "dhi-offline CLI loop": dhi_loop,
            },
            max(1, min(runs, 3)),
        )

    n = len(all_cases)
    ip = {k: median(v) for k, v in in_process.items()}
    pr = {k: median(v) for k, v in processes.items()}
    speedup = ip["sigstore-python"] / ip["dhi-offline"]
    print(
        f"\n{n} keyless bundles ({sum(1 for c in all_cases if c.root == 'production')} production, "
        f"{sum(1 for c in all_cases if c.root == 'staging')} staging, 1 staging + test TSA)"
    )
    print(f"in-process: {iterations} iterations x {n} bundles, median of {runs} interleaved runs")
    print_table(
        ["verifier", "seconds", "ms per bundle", "speed-up", "target (>= 2x)"],
        [
            [
                "sigstore-python Verifier",
                f"{ip['sigstore-python']:.3f}",
                f"{1000 * ip['sigstore-python'] / (iterations * n):.2f}",
                "1.00",
                "",
            ],
            [
                "dhi-offline verify_sigstore_bundle",
                f"{ip['dhi-offline']:.3f}",
                f"{1000 * ip['dhi-offline'] / (iterations * n):.2f}",
                f"{speedup:.2f}",
                "met" if speedup >= 2 else "NOT met",
            ],
        ],
    )
    print(f"\nprocesses: all {n} bundles, median of {max(1, min(runs, 3))} interleaved runs")
    base = pr["sigstore CLI loop"]
    print_table(
        ["how", "seconds", "speed-up vs sigstore CLI loop"],
        [[k, f"{v:.2f}", f"{base / v:.1f}"] for k, v in pr.items()],
    )
    per = {k: 1000 * v / (iterations * n) for k, v in ip.items()}
    ratio = per["dhi-offline"] / per["floor"]
    print(
        f"\nfloor: {floor.ops} signature checks for the {n} bundles ({floor.ops / n:.1f} each); "
        "shared machine, other jobs may run on either core"
    )
    report_target(
        2,
        "keyless sigstore bundles in-process <= 1.1x the signature floor",
        f"{ratio:.2f}x ({per['dhi-offline']:.2f} ms vs floor {per['floor']:.2f} ms per bundle; "
        f"sigstore-python {per['sigstore-python']:.2f} ms)",
        ratio <= 1.1,
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "machine": m,
                    "sigstore_python": sigstore.__version__,
                    "bundles": [c.name for c in all_cases],
                    "iterations": iterations,
                    "in_process_seconds": in_process,
                    "processes_seconds": processes,
                    "in_process_speedup": round(speedup, 3),
                    "ms_per_bundle": {k: round(v, 4) for k, v in per.items()},
                    "floor_ratio": round(ratio, 3),
                    "process_speedups": {k: round(base / v, 3) for k, v in pr.items()},
                },
                indent=2,
                sort_keys=True,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
