"""``dist build`` with real pip, and ``install.sh`` on a host with no network at all.

The wheelhouse for this machine is built once for the module (pip's cache makes a
rebuild a few seconds); installs run under ``unshare -n`` (skipped when not permitted).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from dhi_offline import __version__
from dhi_offline.dist.sums import sign_sums
from tests.support.sample import public_pem
from tests.support.sample import run_cli as run

pytestmark = pytest.mark.integration

BASE_PYTHON = getattr(sys, "_base_executable", sys.executable)
"""The interpreter the dev venv was made from: install.sh makes its own venv with it."""


def _unshare_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0


UNSHARE = _unshare_works()
needs_unshare = pytest.mark.skipif(not UNSHARE, reason="unshare -n is not permitted here")
needs_tools = pytest.mark.skipif(
    shutil.which("openssl") is None or shutil.which("sha256sum") is None,
    reason="openssl and sha256sum are needed",
)


@functools.cache
def _index_reachable() -> bool:
    """A quick ``pip download`` of a tiny wheel: can this machine reach its package index?"""
    scratch = Path(os.environ.get("TMPDIR", "/tmp")) / f"dhi-offline-probe-{os.getpid()}"
    try:
        done = subprocess.run(
            [
                *(sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"),
                *("--dest", str(scratch), "--disable-pip-version-check", "six"),
            ],
            capture_output=True,
            env={**os.environ, "PIP_RETRIES": "0", "PIP_TIMEOUT": "15"},
            timeout=60,
        )
    except subprocess.TimeoutExpired:
        return False
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return done.returncode == 0


NO_INDEX = "the package index is unreachable (pip download of 'six' failed)"


def _needs_index() -> None:
    if not _index_reachable():
        pytest.skip(NO_INDEX)


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DHI_OFFLINE_")}
    return {**env, "HOME": str(home), "PYTHON": BASE_PYTHON, **extra}


def _write_key(d: Path, name: str) -> tuple[ec.EllipticCurvePrivateKey, Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = d / f"{name}.pem"
    pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (d / f"{name}.pub").write_bytes(public_pem(key))
    return key, pem, d / f"{name}.pub"


@dataclass(frozen=True)
class Built:
    tarball: Path
    root: Path
    """The tarball unpacked: the top directory."""
    pub: Path
    other: ec.EllipticCurvePrivateKey
    other_pub: Path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    _needs_index()  # asked here, not at collection: only when these tests run
    d = tmp_path_factory.mktemp("dist")
    _, pem, pub = _write_key(d, "exporter")
    other, _, other_pub = _write_key(d, "other")
    code, out, err = run(["dist", "build", "--signing-key", str(pem), "-o", str(d / "dist")])
    assert code == 0, err
    (tarball,) = (d / "dist").iterdir()
    assert out.startswith(f"wrote {tarball}: ")
    with tarfile.open(tarball) as tar:
        tar.extractall(d / "unpacked", filter="data")
    (root,) = (d / "unpacked").iterdir()
    return Built(tarball, root, pub, other, other_pub)


def _recipe(root: Path, pub: Path) -> subprocess.CompletedProcess[str]:
    """The documented check on the air-gapped host, before install.sh."""
    script = (
        f"openssl dgst -sha256 -verify '{pub}' -signature SHA256SUMS.sig SHA256SUMS"
        " && sha256sum -c --quiet SHA256SUMS"
    )
    return subprocess.run(["sh", "-c", script], cwd=root, capture_output=True, text=True)


def _install(
    root: Path, d: Path, *args: str, unshare: bool = False, **env: str
) -> subprocess.CompletedProcess[str]:
    argv = ["sh", str(root / "install.sh"), "--prefix", str(d / "prefix"), "--bindir"]
    argv += [str(d / "bin"), *args]
    return subprocess.run(
        (["unshare", "-n"] if unshare else []) + argv,
        capture_output=True,
        text=True,
        env=_env(d / "home", **env),
        timeout=300,
    )


def _repack(root: Path, dest: Path) -> Path:
    with tarfile.open(dest, "w:gz") as tar:
        tar.add(root, arcname=root.name)
    return dest


def test_tarball_layout(built: Built) -> None:
    top = built.root.name
    platform_tag, py = top.removeprefix(f"dhi-offline-{__version__}-").rsplit("-py", 1)
    assert built.tarball.name == f"{top}.tar.gz"
    assert platform_tag.startswith("manylinux_2_") and py == f"3{sys.version_info.minor}"
    names = sorted(p.relative_to(built.root).as_posix() for p in built.root.rglob("*"))
    assert {"SHA256SUMS", "SHA256SUMS.sig", "install.sh", "wheels"} <= set(names)
    assert not any(n.endswith(".pub") or n.endswith(".pem") for n in names)
    wheels = [n for n in names if n.startswith("wheels/")]
    assert all(n.endswith(".whl") for n in wheels) and len(wheels) > 20
    for dep in ("typer", "sigstore", "cryptography", "zstandard", "pydantic_core"):
        assert any(n.startswith(f"wheels/{dep}-") for n in wheels), dep
    # The shipped trust material is inside the project's wheel.
    (own,) = built.root.glob(f"wheels/dhi_offline-{__version__}-*.whl")
    with zipfile.ZipFile(own) as whl:
        inside = set(whl.namelist())
    for data in (
        "dhi_offline/data/trusted_root/production.json",
        "dhi_offline/data/keyring/keyring.json",
        "dhi_offline/data/policies/dhi-default.toml",
        "dhi_offline/py.typed",
    ):
        assert data in inside, data


@needs_tools
def test_good_installer_passes_every_check(built: Built) -> None:
    assert _recipe(built.root, built.pub).returncode == 0
    for path in (built.tarball, built.root):
        code, out, err = run(["dist", "verify", str(path), "--key", str(built.pub)])
        assert code == 0, err
        assert out.startswith(f"verified {built.root.name}: ")


@needs_unshare
@needs_tools
def test_offline_install_runs_and_verifies_a_demo_bundle(built: Built, tmp_path: Path) -> None:
    # pip must take nothing from outside wheels/: a configured index or wheel directory
    # (here a bogus newer idna) would be a way round SHA256SUMS.
    poison = tmp_path / "poison"
    poison.mkdir()
    (poison / "idna-99.0-py3-none-any.whl").write_bytes(b"not a wheel")
    done = _install(
        built.root,
        tmp_path,
        "--key",
        str(built.pub),
        unshare=True,
        PIP_FIND_LINKS=str(poison),
        PIP_INDEX_URL="http://127.0.0.1:9/simple",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("install.sh: checked ") and "against SHA256SUMS" in lines[0]
    assert lines[1] == f"install.sh: SHA256SUMS.sig verified with {built.pub}"
    assert f"install.sh: created the venv {tmp_path / 'prefix' / 'venv'}" in lines
    assert f"install.sh: dhi-offline {__version__}" in lines
    (idna,) = built.root.glob("wheels/idna-*.whl")
    name, version = idna.name.split("-")[:2]
    site = tmp_path / "prefix/venv/lib"
    assert list(site.glob(f"*/site-packages/{name}-{version}.dist-info")), "idna not from wheels/"
    tool = tmp_path / "bin" / "dhi-offline"
    assert tool.is_symlink()
    home = tmp_path / "home"

    def offline(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["unshare", "-n", str(tool), *argv],
            capture_output=True,
            text=True,
            env=_env(home),
            timeout=120,
        )

    shown = offline("--version")
    assert (shown.returncode, shown.stdout) == (0, f"dhi-offline {__version__}\n")
    assert offline("doctor").returncode == 0
    # A demo bundle from the dev venv, verified by the installed tool with no network.
    work, bundle = tmp_path / "demo", tmp_path / "demo.dhi.tar.zst"
    argv = ["demo", "--workdir", str(work), "--output", str(bundle)]
    demo = subprocess.run(
        [sys.executable, "-m", "dhi_offline", *argv],
        capture_output=True,
        text=True,
        env=_env(home),
        timeout=300,
    )
    assert demo.returncode == 0, demo.stderr
    verified = offline(
        "verify",
        str(bundle),
        "--trust-exporter",
        str(work / "exporter.pub"),
        "--trust-publisher",
        str(work / "publisher.pub"),
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "PASS" in verified.stdout


@needs_tools
def test_a_changed_wheel_is_refused_everywhere(built: Built, tmp_path: Path) -> None:
    root = tmp_path / built.root.name
    shutil.copytree(built.root, root)
    (wheel,) = root.glob("wheels/dhi_offline-*.whl")
    with wheel.open("ab") as f:
        f.write(b"\0")
    name = f"wheels/{wheel.name}"
    recipe = _recipe(root, built.pub)
    assert recipe.returncode != 0 and f"{name}: FAILED" in recipe.stdout
    for path in (root, _repack(root, tmp_path / "changed.tar.gz")):
        code, _, err = run(["dist", "verify", str(path), "--key", str(built.pub)])
        assert code == 1
        assert err == (
            "dhi-offline: verification failed: installer files: "
            f"{name}: sha256 differs from SHA256SUMS\n"
        )
    done = _install(root, tmp_path)
    assert done.returncode == 1
    assert "SHA256SUMS does not match the files above: refusing to install" in done.stderr
    assert not (tmp_path / "prefix").exists()


@needs_tools
def test_a_signature_by_another_key_is_refused(built: Built, tmp_path: Path) -> None:
    root = tmp_path / built.root.name
    shutil.copytree(built.root, root)
    sums = (root / "SHA256SUMS").read_bytes()
    (root / "SHA256SUMS.sig").write_bytes(sign_sums(sums, built.other))
    recipe = _recipe(root, built.pub)
    assert recipe.returncode != 0 and "Verification failure" in recipe.stdout + recipe.stderr
    assert _recipe(root, built.other_pub).returncode == 0  # it is that key's signature
    code, _, err = run(["dist", "verify", str(root), "--key", str(built.pub)])
    assert code == 1
    assert err.startswith("dhi-offline: verification failed: signature: SHA256SUMS.sig ")
    done = _install(root, tmp_path, "--key", str(built.pub))
    assert done.returncode == 1 and "SHA256SUMS.sig does not verify" in done.stderr
    assert not (tmp_path / "prefix").exists()


def test_build_with_no_network_fails_cleanly(tmp_path: Path) -> None:
    _, pem, _ = _write_key(tmp_path, "exporter")
    out = tmp_path / "dist"
    # No index, no wheel directory, no pip configuration: as on a host with no network.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env |= {
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_INDEX_URL": "http://127.0.0.1:9/simple",
        "PIP_RETRIES": "0",
        "PIP_TIMEOUT": "5",
    }
    argv = [sys.executable, "-m", "dhi_offline", "dist", "build", "--signing-key", str(pem)]
    done = subprocess.run(
        (["unshare", "-n"] if UNSHARE else []) + [*argv, "-o", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("dhi-offline:")]
    assert len(errors) == 1 and done.stderr.endswith(errors[0] + "\n")
    assert errors[0].startswith("dhi-offline: error: building the dhi-offline wheel: pip failed: ")
    assert not out.exists() or list(out.iterdir()) == []


def test_cross_target_resolves_every_wheel(tmp_path: Path) -> None:
    _needs_index()
    _, pem, pub = _write_key(tmp_path, "exporter")
    out = tmp_path / "dist"
    code, _, err = run(
        [
            *("dist", "build", "--platform", "manylinux_2_28_aarch64", "--python", "3.12"),
            *("--signing-key", str(pem), "-o", str(out)),
        ]
    )
    assert code == 0, err
    top = f"dhi-offline-{__version__}-manylinux_2_28_aarch64-py312"
    tarball = out / f"{top}.tar.gz"
    assert list(out.iterdir()) == [tarball]
    with tarfile.open(tarball) as tar:
        names = tar.getnames()
        script = tar.extractfile(f"{top}/install.sh").read().decode()  # type: ignore[union-attr]
    binary = [n for n in names if n.endswith(".whl") and not n.endswith("-none-any.whl")]
    assert binary and all("aarch64" in n for n in binary)
    assert all("-cp312-" in n or "-abi3-" in n for n in binary)
    for dep in ("pydantic_core", "zstandard", "cryptography", "cffi"):
        assert any(f"/wheels/{dep}-" in n for n in binary), dep
    assert "WANT_PYTHON='3.12'" in script and "PLATFORM='manylinux_2_28_aarch64'" in script
    code, _, err = run(["dist", "verify", str(tarball), "--key", str(pub)])
    assert code == 0, err
