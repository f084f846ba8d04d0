"""``dist build``: the offline installer, a signed wheelhouse for one platform and Python.

Steps of :func:`build_dist`, in a scratch directory; the tarball is written under a
temporary name in the output directory and renamed into place last, so a failed or
interrupted build leaves nothing there:

1. copy the source tree (``pyproject.toml``, the readme, ``dhi_offline/``) and build the
   project's wheel from the copy with ``pip wheel --no-deps`` (the checkout gets no
   ``build/`` directory);
2. download every dependency wheel with ``pip download``: for a chosen platform or Python
   with ``--only-binary=:all:`` and pip's cross options, for this machine plainly, then
   build a wheel here from any dependency published only as an sdist;
3. write ``install.sh``, ``SHA256SUMS`` over every other file and ``SHA256SUMS.sig``
   (:mod:`dhi_offline.dist.sums`);
4. pack a deterministic ``.tar.gz`` (:func:`write_tarball`).

pip runs as ``python -m pip`` with this interpreter, with the user's pip configuration
(index mirrors, proxies): this is the connected side.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import platform as platform_module
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import dhi_offline
from dhi_offline.bundle.signing import ExporterPrivateKey, public_key_of
from dhi_offline.dist.installer import install_script
from dhi_offline.dist.sums import SIGNATURE, SUMS, render_sums, sign_sums
from dhi_offline.errors import DistBuildError, UsageError

Progress = Callable[[str], None]
"""Receives one line per step; the CLI shows them, a library caller may ignore them."""

ARCHES = ("x86_64", "aarch64")
"""Architectures a target may name (those with manylinux wheels for every dependency)."""
MIN_PYTHON = (3, 11)
"""``requires-python`` of the project."""
WHEELS = "wheels"
INSTALL_SCRIPT = "install.sh"

_PLATFORM = re.compile(r"manylinux_2_(\d+)_(x86_64|aarch64)")
_PYTHON = re.compile(r"3\.(\d{1,2})")
_SDIST_SUFFIXES = (".tar.gz", ".zip", ".tar.bz2", ".tgz")
# The oldest glibc each architecture has manylinux wheels for (manylinux1, manylinux2014).
_OLDEST_GLIBC = {"x86_64": 5, "aarch64": 17}
_LEGACY_ALIASES = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}


@dataclass(frozen=True)
class Target:
    """The platform and Python an installer's wheels are for."""

    platform: str
    """pip platform tag, ``manylinux_2_<minor>_<arch>``: the host needs glibc 2.<minor> or later."""
    python: str
    """CPython ``major.minor``, for example ``3.12``."""
    native: bool
    """This machine's own platform and Python: plain ``pip download``, sdists allowed."""

    @property
    def py_nodot(self) -> str:
        """``312`` for ``3.12``."""
        return self.python.replace(".", "")

    def name(self, version: str) -> str:
        """The top directory, and the tarball's name without ``.tar.gz``."""
        return f"dhi-offline-{version}-{self.platform}-py{self.py_nodot}"


def _machine_glibc() -> tuple[int, int] | None:
    try:
        libc = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (ValueError, OSError):
        libc = ""
    m = re.fullmatch(r"glibc (\d+)\.(\d+)(\..*)?", libc)
    return (int(m.group(1)), int(m.group(2))) if m else None


def native_target() -> Target:
    """This machine's platform (glibc and architecture) and this interpreter's Python.

    Raises:
        UsageError: not glibc Linux on x86_64 or aarch64; ``--platform`` is needed.
    """
    glibc = _machine_glibc() if sys.platform == "linux" else None
    machine = platform_module.machine()
    if glibc is None or glibc[0] != 2 or machine not in ARCHES:
        raise UsageError(
            f"this machine ({sys.platform} {machine}) is not glibc Linux on "
            f"{' or '.join(ARCHES)}: give --platform manylinux_2_28_x86_64 (or _aarch64)"
        )
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    return Target(platform=f"manylinux_2_{glibc[1]}_{machine}", python=python, native=True)


def resolve_target(platform: str | None, python: str | None) -> Target:
    """The target for ``--platform`` and ``--python``; neither given: :func:`native_target`.

    Raises:
        UsageError: a platform other than ``manylinux_2_<minor>_{x86_64,aarch64}``, or a
            Python other than ``3.<minor>`` from 3.11 on.
    """
    if platform is None and python is None:
        return native_target()
    if platform is not None:
        m = _PLATFORM.fullmatch(platform)
        if m is None or int(m.group(1)) < _OLDEST_GLIBC[m.group(2)]:
            raise UsageError(
                f"--platform {platform!r}: expected a manylinux tag such as "
                "manylinux_2_28_x86_64 or manylinux_2_28_aarch64"
            )
    if python is not None:
        m = _PYTHON.fullmatch(python)
        if m is None or (3, int(m.group(1))) < MIN_PYTHON:
            raise UsageError(f"--python {python!r}: expected 3.11, 3.12, 3.13 or later")
    if platform is None or python is None:
        here = native_target()
        platform = platform if platform is not None else here.platform
        python = python if python is not None else here.python
    return Target(platform=platform, python=python, native=False)


def compatible_platforms(tag: str) -> list[str]:
    """Every platform tag whose wheels run where ``tag``'s do, newest first.

    pip's ``--platform manylinux_2_28_x86_64`` accepts exactly that tag, not the older
    manylinux tags most wheels carry (``manylinux_2_17``, ``manylinux2014``): each must
    be given.
    """
    m = _PLATFORM.fullmatch(tag)
    if m is None:
        raise UsageError(f"not a manylinux platform tag: {tag!r}")
    newest, arch = int(m.group(1)), m.group(2)
    tags: list[str] = []
    for minor in range(newest, _OLDEST_GLIBC[arch] - 1, -1):
        tags.append(f"manylinux_2_{minor}_{arch}")
        legacy = _LEGACY_ALIASES.get(minor)
        if legacy is not None:
            tags.append(f"{legacy}_{arch}")
    return tags


def download_args(target: Target, dest: Path, requirement: Path) -> list[str]:
    """The ``pip download`` arguments that fetch ``requirement``'s dependencies for ``target``."""
    args = ["download", "--dest", str(dest)]
    if not target.native:
        # pip refuses cross-platform options unless only wheels may be used.
        args += ["--only-binary=:all:"]
        for tag in compatible_platforms(target.platform):
            args += ["--platform", tag]
        args += [
            "--python-version",
            target.python,
            "--implementation",
            "cp",
            "--abi",
            f"cp{target.py_nodot}",
        ]
    return [*args, str(requirement)]


@dataclass(frozen=True)
class DistBuild:
    """What :func:`build_dist` wrote."""

    path: Path
    """The tarball."""
    target: Target
    wheels: tuple[str, ...]
    """Every wheel in it, the project's included, sorted."""
    built_from_sdist: tuple[str, ...]
    """Dependencies published only as an sdist, built into wheels on this machine."""
    sha256: str
    """Of the tarball."""
    key_id: str
    """The exporter key that signed ``SHA256SUMS``."""


def source_tree() -> Path:
    """The checkout this ``dhi_offline`` was imported from (``pyproject.toml`` beside it).

    Raises:
        DistBuildError: installed from a wheel (no ``pyproject.toml``), or it is not
            dhi-offline's, or its version is not :data:`dhi_offline.__version__`.
    """
    root = Path(dhi_offline.__file__).resolve().parent.parent
    pyproject = root / "pyproject.toml"
    try:
        project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
    except (OSError, tomllib.TOMLDecodeError):
        project = {}
    if project.get("name") != "dhi-offline":
        raise DistBuildError(
            f"no dhi-offline source tree at {root} (installed from a wheel?): "
            "run 'make dist' in a dhi-offline checkout"
        )
    if project.get("version") != dhi_offline.__version__:
        raise DistBuildError(
            f"{pyproject} says version {project.get('version')!r}, the code "
            f"{dhi_offline.__version__!r}: make them agree"
        )
    return root


def _copy_source(root: Path, dest: Path) -> None:
    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    readme = project.get("readme")
    dest.mkdir()
    for name in ("pyproject.toml", readme if isinstance(readme, str) else None):
        if name is not None:
            shutil.copy2(root / name, dest / name)
    shutil.copytree(
        root / "dhi_offline",
        dest / "dhi_offline",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )


_NETWORK_MARKERS = (
    "NewConnectionError",
    "Network is unreachable",
    "Failed to establish a new connection",
    "Temporary failure in name resolution",
    "Name or service not known",
    "ConnectTimeout",
    "ProxyError",
)


def _pip_reason(output: str) -> str:
    """pip's first ``ERROR:`` line (else its last line), with a hint when it hid the cause."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR:")]
    reason = (errors[0] if errors else lines[-1] if lines else "no output").removeprefix("ERROR:")
    reason = " ".join(reason.split())[:300]
    if any(marker in output for marker in _NETWORK_MARKERS):
        return f"{reason} (the package index could not be reached)"
    if "(from versions: none)" in reason:
        # With retries off pip says only this when the index is unreachable.
        return f"{reason} (no network, or the index has no wheel for this target)"
    return reason


def _pip(args: Sequence[str], *, what: str, cwd: Path) -> None:
    argv = [
        sys.executable,
        "-m",
        "pip",
        "--disable-pip-version-check",
        "--no-input",
        *args,
    ]
    try:
        done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    except OSError as e:
        raise DistBuildError(f"{what}: cannot run {sys.executable}: {e.strerror or e}") from e
    if done.returncode != 0:
        if "No module named pip" in done.stderr:
            raise DistBuildError(f"{what}: pip is not installed for {sys.executable}")
        raise DistBuildError(f"{what}: pip failed: {_pip_reason(done.stderr + done.stdout)}")


def _is_sdist(name: str) -> bool:
    return name.endswith(_SDIST_SUFFIXES)


def _collect_wheels(
    root: Path, target: Target, version: str, scratch: Path, progress: Progress
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    wheels = root / WHEELS
    wheels.mkdir(parents=True)
    # (1) the project's wheel, from a copy of the source.
    tree = source_tree()
    progress(f"building the dhi-offline {version} wheel")
    source = scratch / "source"
    _copy_source(tree, source)
    _pip(
        ["wheel", "--no-deps", "--wheel-dir", str(wheels), str(source)],
        what="building the dhi-offline wheel",
        cwd=scratch,
    )
    own = sorted(wheels.glob("dhi_offline-*.whl"))
    if len(own) != 1 or own[0].name.split("-")[1] != version:
        raise DistBuildError(
            f"building the dhi-offline wheel gave {[p.name for p in own]}, "
            f"expected one dhi_offline-{version}-*.whl"
        )
    # (2) every dependency, resolved from the wheel's own metadata.
    kind = "this machine" if target.native else "cross-target, wheels only"
    progress(f"downloading dependencies for CPython {target.python} on {target.platform} ({kind})")
    _pip(
        download_args(target, wheels, own[0]),
        what=f"downloading dependencies for CPython {target.python} on {target.platform}",
        cwd=scratch,
    )
    built: list[str] = []
    for sdist in sorted(p for p in wheels.iterdir() if _is_sdist(p.name)):
        progress(f"building a wheel from the sdist {sdist.name} (no wheel published)")
        _pip(
            ["wheel", "--no-deps", "--wheel-dir", str(wheels), str(sdist)],
            what=f"building a wheel from {sdist.name}",
            cwd=scratch,
        )
        sdist.unlink()
        built.append(sdist.name)
    others = sorted(p.name for p in wheels.iterdir() if not p.name.endswith(".whl"))
    if others:
        raise DistBuildError(f"pip left files that are not wheels: {', '.join(others)}")
    return tuple(sorted(p.name for p in wheels.iterdir())), tuple(built)


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def seal(root: Path, private_key: ExporterPrivateKey) -> None:
    """Write ``SHA256SUMS`` over every file under ``root`` and ``SHA256SUMS.sig``."""
    digests = {
        p.relative_to(root).as_posix(): _sha256_file(p)
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name not in (SUMS, SIGNATURE)
    }
    sums = render_sums(digests)
    (root / SUMS).write_bytes(sums)
    (root / SIGNATURE).write_bytes(sign_sums(sums, private_key))


def source_date_epoch() -> int:
    """``SOURCE_DATE_EPOCH`` (reproducible builds), else 0: the mtime of every member.

    Raises:
        UsageError: it is set but not a non-negative integer.
    """
    value = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not value:
        return 0
    if not value.isdigit():
        raise UsageError(f"SOURCE_DATE_EPOCH must be a number of seconds, not {value!r}")
    return int(value)


def write_tarball(out: BinaryIO, root: Path, top: str, mtime: int) -> None:
    """Pack ``root`` as ``top/...`` into ``out``, deterministically.

    Members sorted by name, directories 0755, ``install.sh`` 0755, other files 0644,
    owner 0:0 (``root``), one ``mtime`` everywhere and in the gzip header, no file name
    in the gzip header: the same files give the same bytes.
    """
    paths = sorted(root.rglob("*"), key=lambda p: p.relative_to(root).as_posix())
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=mtime, compresslevel=9) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        tar.addfile(_member(top, mtime, directory=True, mode=0o755))
        for p in paths:
            name = f"{top}/{p.relative_to(root).as_posix()}"
            if p.is_symlink() or not (p.is_dir() or p.is_file()):
                raise DistBuildError(f"{name}: not a regular file")
            if p.is_dir():
                tar.addfile(_member(name, mtime, directory=True, mode=0o755))
                continue
            mode = 0o755 if p.name == INSTALL_SCRIPT and p.parent == root else 0o644
            with p.open("rb") as f:
                member = _member(name, mtime, directory=False, mode=mode, size=p.stat().st_size)
                tar.addfile(member, f)


def _member(name: str, mtime: int, *, directory: bool, mode: int, size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    info.mode, info.size, info.mtime = mode, size, mtime
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def assemble(root: Path, target: Target, version: str, private_key: ExporterPrivateKey) -> None:
    """Write ``install.sh``, ``SHA256SUMS`` and ``SHA256SUMS.sig`` into ``root``, whose
    ``wheels/`` is already filled (steps 3 of :func:`build_dist`)."""
    script = install_script(version=version, python=target.python, platform=target.platform)
    (root / INSTALL_SCRIPT).write_bytes(script)
    seal(root, private_key)


def publish(root: Path, top: str, output_dir: Path, mtime: int) -> tuple[Path, str]:
    """Pack ``root`` into ``output_dir/top.tar.gz`` atomically: a temp name, then rename.

    Returns:
        The tarball's path and sha256.
    """
    output_dir.mkdir(parents=True, exist_ok=True)
    final = output_dir / f"{top}.tar.gz"
    fd, tmp_name = tempfile.mkstemp(dir=output_dir, prefix=f".{top}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as raw:
            write_tarball(raw, root, top, mtime)
            raw.flush()
            os.fsync(raw.fileno())
        sha256 = _sha256_file(tmp)
        tmp.chmod(0o644)
        tmp.replace(final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    return final, sha256


def build_dist(
    *,
    target: Target,
    private_key: ExporterPrivateKey,
    output_dir: Path,
    progress: Progress = lambda message: None,
) -> DistBuild:
    """Build ``output_dir/dhi-offline-<version>-<platform>-py<XY>.tar.gz``.

    Raises:
        DistBuildError: no source tree, or pip could not build or download a wheel
            (no network, no wheel for the target); nothing is left in ``output_dir``.
        UsageError: ``SOURCE_DATE_EPOCH`` is malformed.
        OSError: the output directory cannot be written.
    """
    version = dhi_offline.__version__
    top = target.name(version)
    mtime = source_date_epoch()
    with tempfile.TemporaryDirectory(prefix="dhi-offline-dist-") as scratch_name:
        scratch = Path(scratch_name)
        root = scratch / top
        wheels, built = _collect_wheels(root, target, version, scratch, progress)
        progress(f"writing {INSTALL_SCRIPT}, {SUMS} and {SIGNATURE}")
        assemble(root, target, version, private_key)
        path, sha256 = publish(root, top, output_dir, mtime)
    return DistBuild(
        path=path,
        target=target,
        wheels=wheels,
        built_from_sdist=built,
        sha256=sha256,
        key_id=public_key_of(private_key).key_id,
    )
