"""The installer's SHA256SUMS, signature, tarball, verification and install.sh refusals,
on a small fake wheelhouse: no pip, no network."""

from __future__ import annotations

import hashlib
import io
import os
import platform
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from dhi_offline.dist import build as build_module
from dhi_offline.dist.build import (
    Target,
    _pip_reason,
    assemble,
    compatible_platforms,
    download_args,
    publish,
    resolve_target,
)
from dhi_offline.dist.sums import (
    check_files,
    check_path,
    parse_sums,
    render_sums,
    sign_sums,
    verify_sums_signature,
)
from dhi_offline.dist.verify import verify_dist
from dhi_offline.errors import DistIntegrityError, InputError, SignatureError, UsageError
from dhi_offline.trust.keys import from_crypto
from tests.support.sample import public_pem
from tests.support.sample import run_cli as run

VERSION = "0.1.0"
WHEEL = "wheels/pkg-1.0-py3-none-any.whl"
TARGET = Target(platform="manylinux_2_17_x86_64", python="3.11", native=False)
TOP = TARGET.name(VERSION)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _fake_dist(d: Path, key: ec.EllipticCurvePrivateKey, target: Target = TARGET) -> Path:
    """``d/TOP``: two fake wheels, install.sh, SHA256SUMS and its signature."""
    root = d / target.name(VERSION)
    (root / "wheels").mkdir(parents=True)
    (root / WHEEL).write_bytes(b"not really a wheel\n")
    (root / f"wheels/dhi_offline-{VERSION}-py3-none-any.whl").write_bytes(b"nor this\n")
    assemble(root, target, VERSION, key)
    return root


def _keys(d: Path, key: ec.EllipticCurvePrivateKey) -> tuple[Path, Path]:
    """``d/exporter.pub`` of ``key`` and ``d/other.pub`` of another key."""
    (d / "exporter.pub").write_bytes(public_pem(key))
    (d / "other.pub").write_bytes(public_pem(ec.generate_private_key(ec.SECP256R1())))
    return d / "exporter.pub", d / "other.pub"


# --- SHA256SUMS ---------------------------------------------------------------------


def test_sums_are_sorted_sha256sum_lines_and_parse_back() -> None:
    digests = {"wheels/b.whl": "b" * 64, "install.sh": "1" * 64, "wheels/a.whl": "a" * 64}
    data = render_sums(digests)
    lines = [f"{'1' * 64}  install.sh", f"{'a' * 64}  wheels/a.whl", f"{'b' * 64}  wheels/b.whl"]
    assert data == "".join(line + "\n" for line in lines).encode()
    assert parse_sums(data) == digests


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"", "does not end with a newline"),
        (b"\n", "line 1"),
        (f"{'a' * 64} wheels/a.whl\n".encode(), "line 1"),  # one space
        (f"{'A' * 64}  wheels/a.whl\n".encode(), "line 1"),  # upper-case hex
        (f"{'a' * 64}  wheels/a.whl".encode(), "newline"),
        (f"{'a' * 64}  ../etc/passwd\n".encode(), "not a plain relative path"),
        (f"{'a' * 64}  /etc/passwd\n".encode(), "not a plain relative path"),
        (f"{'a' * 64}  wheels//a.whl\n".encode(), "not a plain relative path"),
        (f"{'a' * 64}  SHA256SUMS\n".encode(), "lists SHA256SUMS"),
        (f"{'a' * 64}  x\n{'b' * 64}  x\n".encode(), "twice"),
        (b"\xff\n", "UTF-8"),
    ],
)
def test_malformed_sums_are_refused(data: bytes, problem: str) -> None:
    with pytest.raises(DistIntegrityError, match=problem):
        parse_sums(data)


@pytest.mark.parametrize("path", ["", "/a", "a/../b", "./a", "a\\b", "a\nb", "a/"])
def test_unsafe_paths_are_refused(path: str) -> None:
    with pytest.raises(DistIntegrityError):
        check_path(path)


@pytest.mark.parametrize(
    ("found", "message"),
    [
        ({"a": "1" * 64, "b": "2" * 64}, None),
        ({"a": "1" * 64}, "b: listed in SHA256SUMS but missing"),
        ({"a": "1" * 64, "b": "2" * 64, "c": "3" * 64}, "c: not listed"),
        ({"a": "9" * 64, "b": "9" * 64}, "a: sha256 differs"),  # the first bad one
    ],
)
def test_check_files_names_the_first_bad_file(found: dict[str, str], message: str | None) -> None:
    listed = {"a": "1" * 64, "b": "2" * 64}
    if message is None:
        check_files(listed, found)
        return
    with pytest.raises(DistIntegrityError, match=message):
        check_files(listed, found)


def test_signature_verifies_only_with_the_signing_key(key: ec.EllipticCurvePrivateKey) -> None:
    sums = render_sums({"a": "1" * 64})
    sig = sign_sums(sums, key)
    verify_sums_signature(sums, sig, from_crypto(key.public_key()))
    other = from_crypto(ec.generate_private_key(ec.SECP256R1()).public_key())
    with pytest.raises(SignatureError, match=r"SHA256SUMS\.sig does not verify"):
        verify_sums_signature(sums, sig, other)
    with pytest.raises(SignatureError):
        verify_sums_signature(sums + b"\n", sig, from_crypto(key.public_key()))
    p384 = from_crypto(ec.generate_private_key(ec.SECP384R1()).public_key())
    with pytest.raises(SignatureError, match="ECDSA P-256"):
        verify_sums_signature(sums, sig, p384)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_openssl_checks_the_signature(tmp_path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    root = _fake_dist(tmp_path, key)
    good, other = _keys(tmp_path, key)

    def openssl(pub: Path) -> int:
        argv = ["openssl", "dgst", "-sha256", "-verify", str(pub), "-signature"]
        argv += ["SHA256SUMS.sig", "SHA256SUMS"]
        return subprocess.run(argv, cwd=root, capture_output=True).returncode

    assert openssl(good) == 0
    assert openssl(other) == 1


# --- targets --------------------------------------------------------------------------


def test_compatible_platforms_include_the_older_manylinux_tags() -> None:
    x86 = compatible_platforms("manylinux_2_28_x86_64")
    assert x86[0] == "manylinux_2_28_x86_64"
    for tag in ("manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux1_x86_64"):
        assert tag in x86
    arm = compatible_platforms("manylinux_2_28_aarch64")
    assert arm[-2:] == ["manylinux_2_17_aarch64", "manylinux2014_aarch64"]
    assert not any("2010" in t or "manylinux1" in t for t in arm)


def test_cross_download_args_are_wheels_only() -> None:
    target = resolve_target("manylinux_2_28_aarch64", "3.12")
    assert target == Target("manylinux_2_28_aarch64", "3.12", native=False)
    assert target.name("1.2") == "dhi-offline-1.2-manylinux_2_28_aarch64-py312"
    args = download_args(target, Path("w"), Path("p.whl"))
    assert "--only-binary=:all:" in args
    assert args[args.index("--abi") + 1] == "cp312"
    assert args[args.index("--python-version") + 1] == "3.12"
    assert args[args.index("--implementation") + 1] == "cp"
    assert args[-1] == "p.whl"
    native = Target("manylinux_2_36_x86_64", "3.11", native=True)
    assert download_args(native, Path("w"), Path("p.whl")) == [
        "download",
        "--dest",
        "w",
        "p.whl",
    ]


@pytest.mark.parametrize(
    ("platform_tag", "python"),
    [
        ("manylinux_2_28_s390x", "3.12"),
        ("musllinux_1_2_x86_64", "3.12"),
        ("manylinux_2_12_aarch64", "3.12"),  # no aarch64 wheels that old
        ("manylinux_2_28_x86_64", "3.10"),
        ("manylinux_2_28_x86_64", "312"),
    ],
)
def test_bad_targets_are_usage_errors(platform_tag: str, python: str) -> None:
    with pytest.raises(UsageError):
        resolve_target(platform_tag, python)


@pytest.mark.skipif(sys.platform != "linux", reason="the native target is glibc Linux")
def test_native_target_is_this_machine() -> None:
    target = resolve_target(None, None)
    assert target.native
    assert target.python == f"{sys.version_info.major}.{sys.version_info.minor}"
    assert target.platform.endswith(platform.machine())


def test_pip_reason_is_one_line_with_a_hint() -> None:
    output = (
        "Looking in indexes: https://pypi.org/simple\n"
        "ERROR: Could not find a version that satisfies the requirement six "
        "(from versions: none)\nERROR: No matching distribution found for six\n"
    )
    reason = _pip_reason(output)
    assert "\n" not in reason
    assert reason.startswith("Could not find a version that satisfies the requirement six")
    assert "no network" in reason
    assert "could not be reached" in _pip_reason("WARNING: NewConnectionError\nERROR: x\n")


# --- tarball --------------------------------------------------------------------------


def test_tarball_is_deterministic(tmp_path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    root = _fake_dist(tmp_path, key)
    first, sha1 = publish(root, TOP, tmp_path / "a", 1_700_000_000)
    os.utime(root / WHEEL, (1, 1))  # a different file time changes nothing
    second, sha2 = publish(root, TOP, tmp_path / "b", 1_700_000_000)
    assert first.read_bytes() == second.read_bytes() and sha1 == sha2
    assert sha1 == _digest(first.read_bytes())
    assert first.read_bytes()[4:8] == (1_700_000_000).to_bytes(4, "little")  # gzip mtime
    with tarfile.open(first) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == sorted(m.name for m in members)
    assert members[0].name == TOP and members[0].isdir()
    assert {(m.uid, m.gid, m.mtime) for m in members} == {(0, 0, 1_700_000_000)}
    modes = {m.name.removeprefix(f"{TOP}/"): m.mode for m in members}
    assert modes["install.sh"] == 0o755 and modes[WHEEL] == 0o644
    assert set(modes) >= {"SHA256SUMS", "SHA256SUMS.sig", "install.sh", "wheels", WHEEL}
    assert "exporter.pub" not in " ".join(modes)


def test_a_failed_write_leaves_nothing(
    tmp_path: Path, key: ec.EllipticCurvePrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _fake_dist(tmp_path, key)

    def broken(out: io.BufferedWriter, *args: object) -> None:
        out.write(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(build_module, "write_tarball", broken)
    with pytest.raises(OSError, match="No space"):
        publish(root, TOP, tmp_path / "out", 0)
    assert list((tmp_path / "out").iterdir()) == []


# --- dist verify ----------------------------------------------------------------------


def _repack(root: Path, dest: Path, extra: list[tarfile.TarInfo] | None = None) -> Path:
    with tarfile.open(dest, "w:gz") as tar:
        tar.add(root, arcname=root.name)
        for info in extra or []:
            tar.addfile(info, io.BytesIO(b"x" * info.size) if info.isreg() else None)
    return dest


def test_verify_passes_for_tarball_and_directory(
    tmp_path: Path, key: ec.EllipticCurvePrivateKey
) -> None:
    root = _fake_dist(tmp_path, key)
    tarball, _ = publish(root, TOP, tmp_path / "dist", 0)
    good, _ = _keys(tmp_path, key)
    for path in (tarball, root):
        code, out, err = run(["dist", "verify", str(path), "--key", str(good)])
        assert code == 0, err
        assert out.startswith(f"verified {TOP}: 3 files match SHA256SUMS, signed by")


def test_verify_names_the_changed_file(tmp_path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    root = _fake_dist(tmp_path, key)
    with (root / WHEEL).open("ab") as f:
        f.write(b"!")
    good, _ = _keys(tmp_path, key)
    for path in (root, _repack(root, tmp_path / "changed.tar.gz")):
        code, _, err = run(["dist", "verify", str(path), "--key", str(good)])
        assert code == 1
        assert err == (
            "dhi-offline: verification failed: installer files: "
            f"{WHEEL}: sha256 differs from SHA256SUMS\n"
        )


def test_verify_refuses_another_keys_signature(
    tmp_path: Path, key: ec.EllipticCurvePrivateKey
) -> None:
    root = _fake_dist(tmp_path, key)
    _, other = _keys(tmp_path, key)
    code, _, err = run(["dist", "verify", str(root), "--key", str(other)])
    assert code == 1
    assert err.startswith("dhi-offline: verification failed: signature: SHA256SUMS.sig")
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("extra", "wheels/zz-1.0-py3-none-any.whl: not listed in SHA256SUMS"),
        ("missing", f"{WHEEL}: listed in SHA256SUMS but missing"),
        ("no-sig", "SHA256SUMS.sig: missing"),
        ("symlink", "wheels/zz-1.0-py3-none-any.whl: not a regular file"),
    ],
)
def test_verify_directory_refusals(
    tmp_path: Path, key: ec.EllipticCurvePrivateKey, change: str, message: str
) -> None:
    root = _fake_dist(tmp_path, key)
    zz = root / "wheels/zz-1.0-py3-none-any.whl"
    if change == "extra":
        zz.write_bytes(b"x")
    elif change == "missing":
        (root / WHEEL).unlink()
    elif change == "no-sig":
        (root / "SHA256SUMS.sig").unlink()
    else:
        zz.symlink_to(root / WHEEL)
    with pytest.raises(DistIntegrityError, match=message):
        verify_dist(root, from_crypto(key.public_key()))


def _info(name: str, kind: bytes = tarfile.REGTYPE, size: int = 1) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.size = kind, size if kind == tarfile.REGTYPE else 0
    if kind == tarfile.SYMTYPE:
        info.linkname = "install.sh"
    return info


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (_info("elsewhere/x"), "outside the top directory"),
        (_info(f"{TOP}/wheels/link.whl", tarfile.SYMTYPE), "not a regular file"),
        (_info(f"{TOP}/../evil"), "not a plain relative path"),
        (_info(f"{TOP}/install.sh"), "appears twice"),
    ],
)
def test_verify_tarball_refusals(
    tmp_path: Path, key: ec.EllipticCurvePrivateKey, extra: tarfile.TarInfo, message: str
) -> None:
    root = _fake_dist(tmp_path, key)
    tarball = _repack(root, tmp_path / "bad.tar.gz", [extra])
    with pytest.raises(DistIntegrityError, match=message):
        verify_dist(tarball, from_crypto(key.public_key()))


def test_signed_but_malformed_sums_are_refused(
    tmp_path: Path, key: ec.EllipticCurvePrivateKey
) -> None:
    root = _fake_dist(tmp_path, key)
    sums = (root / "SHA256SUMS").read_bytes() + f"{'0' * 64}  ../outside\n".encode()
    (root / "SHA256SUMS").write_bytes(sums)
    (root / "SHA256SUMS.sig").write_bytes(sign_sums(sums, key))
    with pytest.raises(DistIntegrityError, match="not a plain relative path"):
        verify_dist(root, from_crypto(key.public_key()))


def test_unreadable_inputs_are_exit_2(tmp_path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    good, _ = _keys(tmp_path, key)
    (tmp_path / "not.tar.gz").write_bytes(b"plain text")
    (tmp_path / "exporter.pem").write_text("-----BEGIN PRIVATE KEY-----\n")
    cases = [
        [str(tmp_path / "missing.tar.gz"), "--key", str(good)],
        [str(tmp_path / "not.tar.gz"), "--key", str(good)],
        [str(tmp_path), "--key", str(good)],  # a directory without SHA256SUMS
        [str(tmp_path / "not.tar.gz"), "--key", str(tmp_path / "exporter.pem")],
    ]
    for argv in cases:
        code, _, err = run(["dist", "verify", *argv])
        assert code == 2, argv
        assert err.startswith("dhi-offline: error: ") and err.count("\n") == 1, err
    with pytest.raises(InputError):
        verify_dist(tmp_path / "not.tar.gz", from_crypto(key.public_key()))


def test_build_usage_errors_run_no_pip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_pip(*args: object, **kwargs: object) -> None:
        raise AssertionError("pip was run")

    monkeypatch.setattr(build_module, "_pip", no_pip)
    (tmp_path / "k.pem").write_text("not a key")
    for argv in (
        ["--platform", "manylinux_2_28_riscv64", "--signing-key", str(tmp_path / "k.pem")],
        ["--python", "2.7", "--signing-key", str(tmp_path / "k.pem")],
        ["--python", "3.12", "--signing-key", str(tmp_path / "k.pem")],  # not a key
        ["--python", "3.12", "--signing-key", str(tmp_path / "missing.pem")],
    ):
        code, _, err = run(["dist", "build", *argv, "-o", str(tmp_path / "dist")])
        assert code == 2 and err.count("\n") == 1, err
    assert not (tmp_path / "dist").exists()


# --- install.sh refusals (before any venv is made) -----------------------------------

needs_coreutils = pytest.mark.skipif(
    shutil.which("sha256sum") is None, reason="sha256sum (coreutils) is not installed"
)


def _install(root: Path, *args: str, python: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(root.parent / "home")}
    base_python: str = getattr(sys, "_base_executable", sys.executable)
    env["PYTHON"] = python or base_python
    prefix = ["--prefix", str(root.parent / "prefix"), "--bindir", str(root.parent / "bin")]
    return subprocess.run(
        ["sh", str(root / "install.sh"), *prefix, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


@needs_coreutils
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("append", "SHA256SUMS does not match the files above: refusing to install"),
        ("extra", "wheels/zz-9-py3-none-any.whl is not listed in SHA256SUMS"),
        ("sig", "SHA256SUMS.sig does not verify with"),
    ],
)
def test_install_sh_refuses_changed_files(
    tmp_path: Path, key: ec.EllipticCurvePrivateKey, change: str, message: str
) -> None:
    root = _fake_dist(tmp_path, key)
    good, other = _keys(tmp_path, key)
    args = ["--key", str(good)]
    if change == "append":
        with (root / WHEEL).open("ab") as f:
            f.write(b"!")
    elif change == "extra":
        (root / "wheels/zz-9-py3-none-any.whl").write_bytes(b"x")
    else:
        if shutil.which("openssl") is None:
            pytest.skip("openssl is not installed")
        args = ["--key", str(other)]
    done = _install(root, *args)
    assert done.returncode == 1
    assert message in done.stderr
    assert not (tmp_path / "prefix").exists()


@needs_coreutils
@pytest.mark.parametrize(
    ("tag", "python", "message"),
    [
        ("manylinux_2_17_{arch}", "3.99", "it is Python {have}, not 3.99"),
        ("manylinux_2_17_{other}", "{have}", "this machine is {arch}, not {other}"),
        ("manylinux_2_99_{arch}", "{have}", "the wheels need 2.99 or later"),
    ],
)
def test_install_sh_refuses_another_python_or_platform(
    tmp_path: Path, key: ec.EllipticCurvePrivateKey, tag: str, python: str, message: str
) -> None:
    arch = platform.machine()
    fill = {
        "arch": arch,
        "other": "aarch64" if arch == "x86_64" else "x86_64",
        "have": f"{sys.version_info.major}.{sys.version_info.minor}",
    }
    target = Target(tag.format(**fill), python.format(**fill), native=False)
    root = _fake_dist(tmp_path, key, target)
    done = _install(root)
    assert done.returncode == 1
    assert f"these wheels are for CPython {target.python} on {target.platform}" in done.stderr
    assert message.format(**fill) in done.stderr
    assert not (tmp_path / "prefix").exists()
