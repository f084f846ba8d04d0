"""``make demo-push``: from a bundle to an internal registry an admission controller reads.

Runs the whole delivery path on this machine with real parts: Debian's
``docker-registry`` on a loopback port as the site's internal registry, ``skopeo copy
--all`` to mirror the sample image into it, then ``dhi-offline push`` (twice: the second
run changes nothing), ``admission-config`` for each enforcer, ``pull`` of the pushed
bundle, and ``export`` from the internal registry with an offline ``verify`` of the
result. Every command runs as a subprocess, as an operator would type it; the tool's
state, config and data directories are kept inside the work directory.

Usage: ``python -m dhi_offline.demo_push [WORKDIR]`` (default ``bundles/demo-push``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from dhi_offline.bundle.reader import inspect_bundle
from dhi_offline.deliver.names import bundle_tag
from dhi_offline.demo import SAMPLE_NAME, SAMPLE_TAG, build_sample_layout
from dhi_offline.errors import DhiError
from dhi_offline.oci.client import RegistryClient

REPOSITORY = "dhi/python-sample"
NEEDED = ("docker-registry", "skopeo")


def _step(text: str) -> None:
    print(f"\n== {text}", flush=True)


def _run(argv: list[str], env: dict[str, str], *, check: bool = True) -> int:
    shown = " ".join(a if " " not in a else repr(a) for a in argv)
    print(f"$ {shown}", flush=True)
    code = subprocess.run(argv, env=env, check=False).returncode
    if check and code != 0:
        raise SystemExit(f"demo-push: the command above exited {code}")
    return code


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "dhi_offline", *args]


def _free_port() -> int:
    # Ask the kernel for a free port by binding port 0 on loopback (no traffic is sent).
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_registry(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    storage = workdir / "registry-storage"
    storage.mkdir(parents=True)
    config = workdir / "registry.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: error\n"
        f"storage:\n  filesystem:\n    rootdirectory: {storage}\n"
        "  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n",
        encoding="utf-8",
    )
    binary = shutil.which("docker-registry") or "/usr/bin/docker-registry"
    log = (workdir / "registry.log").open("wb")
    process = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=log)
    host = f"127.0.0.1:{port}"
    with RegistryClient() as client:
        deadline = time.monotonic() + 15
        while True:
            try:
                client.manifest_exists(host, REPOSITORY, SAMPLE_TAG)
                break
            except DhiError as e:
                if time.monotonic() > deadline or process.poll() is not None:
                    process.terminate()
                    raise SystemExit(
                        f"demo-push: docker-registry did not start (see {log.name})"
                    ) from e
                time.sleep(0.1)
    return process, host


def main(argv: list[str]) -> int:
    """Run the demo; 0 when every step did what it should."""
    missing = [t for t in NEEDED if shutil.which(t) is None]
    if missing:
        print(f"demo-push: needs {', '.join(missing)} (apt-get install {' '.join(missing)})")
        return 2
    workdir = Path(argv[0] if argv else "bundles/demo-push").resolve()
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    env = dict(os.environ)
    for kind in ("STATE", "CONFIG", "DATA"):
        env[f"DHI_OFFLINE_{kind}_DIR"] = str(workdir / kind.lower())

    _step("1. publisher: the sample image and its signed attestations (OCI layout)")
    publisher = ec.generate_private_key(ec.SECP256R1())
    (workdir / "publisher.pub").write_bytes(
        publisher.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    sample = build_sample_layout(workdir / "layout", publisher)
    print(f"{SAMPLE_NAME}:{sample.tag} {sample.index_digest}")

    _step("2. connected side: export the evidence to a signed bundle")
    bundle = workdir / "sample.dhi.tar.zst"
    _run(_cli("keys", "generate", "--output", str(workdir / "exporter")), env)
    _run(
        _cli(
            "export",
            f"oci-layout:{workdir / 'layout'}:{sample.tag}",
            "--name",
            f"{SAMPLE_NAME}:{sample.tag}",
            "--signing-key",
            str(workdir / "exporter.pem"),
            "--key",
            str(workdir / "publisher.pub"),
            "--no-rekor",
            "-o",
            str(bundle),
        ),
        env,
    )

    _step("3. site: start the internal registry (docker-registry on loopback)")
    process, host = _start_registry(workdir)
    try:
        print(f"internal registry: {host} (no referrers API: fallback tags are used)")
        _step("4. site: mirror the image into it (skopeo copy --all)")
        _run(
            [
                "skopeo",
                "--insecure-policy",
                "copy",
                "--all",
                "--preserve-digests",
                "--dest-tls-verify=false",
                f"oci:{workdir / 'layout'}:{sample.tag}",
                f"docker://{host}/{REPOSITORY}:{sample.tag}",
            ],
            env,
        )
        trust = [
            "--trust-exporter",
            str(workdir / "exporter.pub"),
            "--trust-publisher",
            str(workdir / "publisher.pub"),
        ]
        _step("5. site: push the evidence and the site's signed verdict")
        _run(_cli("keys", "generate", "--output", str(workdir / "site")), env)
        push = _cli(
            "push",
            str(bundle),
            "--to",
            f"{host}/dhi",
            "--signing-key",
            str(workdir / "site.pem"),
            *trust,
        )
        _run(push, env)
        _step("6. push again: nothing changes")
        _run(push, env)

        _step("7. the admission configs that admit only images with the site's PASSED verdict")
        for kind in ("kyverno", "policy-controller"):
            _run(
                _cli(
                    "admission-config",
                    "--kind",
                    kind,
                    "--key",
                    str(workdir / "site.pub"),
                    "--images",
                    f"{host}/dhi/*",
                ),
                env,
            )
        _run(
            _cli(
                "admission-config",
                "--kind",
                "containers-policy",
                "--key",
                str(workdir / "site.pub"),
                "--images",
                f"{host}/dhi",
                "-o",
                str(workdir / "containers"),
            ),
            env,
        )
        for path in sorted((workdir / "containers").rglob("*")):
            if path.is_file():
                print(f"--- {path.relative_to(workdir)}")
                print(path.read_text(encoding="utf-8"), end="")

        _step("8. another site: pull the bundle from the registry, verify it offline")
        manifest = inspect_bundle(bundle)
        tag = bundle_tag(manifest.exporter_key_id, manifest.sequence)
        pulled = workdir / "pulled.dhi.tar.zst"
        _run(_cli("pull", f"{host}/dhi/dhi-offline/bundles:{tag}", "-o", str(pulled)), env)
        _run(_cli("verify", str(pulled), *trust), env)

        _step("9. the internal registry is a valid source: export from it again, verify")
        again = workdir / "from-internal.dhi.tar.zst"
        _run(
            _cli(
                "export",
                f"{host}/{REPOSITORY}:{sample.tag}",
                "--signing-key",
                str(workdir / "exporter.pem"),
                "--key",
                str(workdir / "publisher.pub"),
                "--key",
                str(workdir / "site.pub"),
                "--no-rekor",
                "-o",
                str(again),
            ),
            env,
        )
        verify = _cli(
            "verify",
            str(again),
            *trust,
            "--trust-publisher",
            str(workdir / "site.pub"),
        )
        offline = shutil.which("unshare") is not None and (
            subprocess.run(["unshare", "-n", "true"], capture_output=True, check=False).returncode
            == 0
        )
        code = _run((["unshare", "-n"] if offline else []) + verify, env, check=False)
    finally:
        process.terminate()
        process.wait(timeout=10)
    print(f"\ndemo-push: {'PASS' if code == 0 else 'FAIL'} (files in {workdir})")
    return code


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
