"""Timing and machine helpers of the benchmarks: runs, tables, the machine, the cache.

Generated inputs are cached under ``$DHI_BENCH_CACHE`` (default
``/tmp/dhi-offline-bench-cache``), keyed by what they depend on; ``--fresh`` on every
benchmark ignores the cache. The cache holds throw-away keys generated for it.
"""

from __future__ import annotations

import os
import platform as host_platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    # tests.support, when run as a script. Last, so that dhi_offline still comes from
    # PYTHONPATH (a scratch copy with a fix to measure) or the installed package.
    sys.path.append(str(REPO_ROOT))

import cryptography  # noqa: E402
import zstandard  # noqa: E402

import dhi_offline  # noqa: E402
from dhi_offline import __version__  # noqa: E402

if TYPE_CHECKING:
    from _publish import Keys

CACHE_ROOT = Path(os.environ.get("DHI_BENCH_CACHE", "/tmp/dhi-offline-bench-cache"))  # noqa: S108
GENERATOR_VERSION = "1"
"""Bump when what the generators (``_publish``) write changes (invalidates the cache)."""
VENV_BIN = REPO_ROOT / ".venv" / "bin"


# ----------------------------------------------------------------- small helpers


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def fmt_s(seconds: float) -> str:
    return f"{seconds:.3f} s" if seconds < 10 else f"{seconds:.1f} s"


def fmt_mb(n: float) -> str:
    return f"{n / 1e6:.1f} MB"


def repeat(fn: Callable[[], object], runs: int) -> list[float]:
    """Wall seconds of ``runs`` calls of ``fn``."""
    out: list[float] = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return out


def interleaved(fns: dict[str, Callable[[], object]], runs: int) -> dict[str, list[float]]:
    """Wall seconds of each function, run in turn ``runs`` times (A B A B ...), so slow
    phases of a noisy machine hit every contender alike."""
    out: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(runs):
        for name, fn in fns.items():
            started = time.perf_counter()
            fn()
            out[name].append(time.perf_counter() - started)
    return out


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """A plain aligned table."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for n, r in enumerate(cells):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))


# ----------------------------------------------------------------- the machine


def machine() -> dict[str, str]:
    """nproc, memory, Python, CPU model, and the versions that matter here."""
    memory = ""
    if shutil.which("free"):
        done = subprocess.run(["free", "-h"], capture_output=True, text=True, check=False)
        for line in done.stdout.splitlines():
            if line.startswith("Mem:"):
                memory = line.split()[1]
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    libzstd = ".".join(map(str, zstandard.ZSTD_VERSION))
    zstd_cli = ""
    if shutil.which("zstd"):
        done = subprocess.run(["zstd", "--version"], capture_output=True, text=True, check=False)
        found = re.search(r"v\d+\.\d+\.\d+", done.stdout)
        zstd_cli = f"zstd CLI {found.group(0)}" if found else done.stdout.strip()
    return {
        "nproc": str(os.cpu_count()),
        "affinity": str(len(os.sched_getaffinity(0))),
        "memory": memory,
        "cpu": cpu,
        "python": host_platform.python_version(),
        "system": f"{host_platform.system()} {host_platform.release()} {host_platform.machine()}",
        "dhi_offline": __version__,
        "cryptography": cryptography.__version__,
        "zstandard": f"{zstandard.__version__} (libzstd {libzstd})",
        "zstd_cli": zstd_cli,
    }


def print_machine() -> dict[str, str]:
    m = machine()
    print(
        f"machine: {m['nproc']} CPUs ({m['cpu']}), {m['memory']} memory, Python {m['python']}, "
        f"{m['system']}"
    )
    print(
        f"versions: dhi-offline {m['dhi_offline']} ({Path(dhi_offline.__file__).parent}), "
        f"cryptography {m['cryptography']}, "
        f"zstandard {m['zstandard']}" + (f", {m['zstd_cli']}" if m["zstd_cli"] else "")
    )
    return m


def pin_to_one_core() -> int | None:
    """Pin this process (and its children) to one CPU; returns it, or None if not allowed."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpus[-1]})
        return cpus[-1]
    except (AttributeError, OSError):
        return None


# ----------------------------------------------------------------- the cache


def cache_dir(name: str, *, fresh: bool = False) -> Path:
    """``CACHE_ROOT/<name>-g<GENERATOR_VERSION>-v<dhi-offline version>``, emptied when fresh."""
    path = CACHE_ROOT / f"{name}-g{GENERATOR_VERSION}-v{__version__}"
    if fresh and path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    return path


def cached_file(path: Path, build: Callable[[Path], object]) -> Path:
    """``path`` if it exists, else ``build(tmp)`` then an atomic rename to ``path``."""
    if path.exists():
        return path
    tmp = path.with_name(f".{path.name}.building")
    if tmp.exists():
        if tmp.is_dir():
            shutil.rmtree(tmp)
        else:
            tmp.unlink()
    build(tmp)
    tmp.replace(path)
    return path


# ----------------------------------------------------------------- targets

TARGETS_ENV = "DHI_BENCH_TARGETS"
"""A file each benchmark appends its target lines to; ``make bench`` prints it last."""


def report_target(number: int, what: str, figure: str, met: bool) -> str:
    """Print one target line, ``target N (WHAT): FIGURE: met|NOT met``, and append it to
    the file ``$DHI_BENCH_TARGETS`` names, if any; returns the line."""
    line = f"target {number} ({what}): {figure}: {'met' if met else 'NOT met'}"
    print(line)
    path = os.environ.get(TARGETS_ENV)
    if path:
        with Path(path).open("a", encoding="utf-8") as out:
            out.write(line + "\n")
    return line


# ----------------------------------------------------------------- running the CLI


def installed_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: this process's) as an installed wheel runs: bytecode cached.

    pip compiles a wheel's modules when it installs them; this environment sets
    ``PYTHONDONTWRITEBYTECODE=1`` and installs dhi-offline editable, so every process
    would compile dhi_offline's sources again (~0.1 s, more than a small verification).
    The children get a bytecode cache of their own (``PYTHONPYCACHEPREFIX``, under the
    bench cache; the first run warms it) and the source tree is left alone.
    """
    out = dict(os.environ if env is None else env)
    out.pop("PYTHONDONTWRITEBYTECODE", None)
    prefix = CACHE_ROOT / "pycache"
    prefix.mkdir(parents=True, exist_ok=True)
    out["PYTHONPYCACHEPREFIX"] = str(prefix)
    return out


def cli_env(work: Path) -> dict[str, str]:
    """An environment with an empty trust store, evidence archive and state of its own, and
    bytecode cached as an installed wheel has it (:func:`installed_env`)."""
    env = installed_env()
    env["DHI_OFFLINE_CONFIG_DIR"] = str(work / "cli-config")
    env["DHI_OFFLINE_DATA_DIR"] = str(work / "cli-data")
    env["DHI_OFFLINE_STATE_DIR"] = str(work / "cli-state")
    env.pop("SOURCE_DATE_EPOCH", None)
    return env


def dhi_offline_cli() -> list[str]:
    exe = VENV_BIN / "dhi-offline"
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-m", "dhi_offline"]


@dataclass(frozen=True)
class ChildRun:
    seconds: float
    returncode: int
    max_rss: int
    """Peak resident set size of the child, bytes (``wait4`` rusage of that one child)."""
    user: float
    system: float
    stdout: bytes
    stderr: bytes


def run_child(argv: Sequence[str], *, env: dict[str, str] | None = None) -> ChildRun:
    """Run ``argv`` and measure it alone: wall time and that child's own rusage."""

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(list(argv), stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return ChildRun(
            seconds=seconds,
            returncode=proc.returncode,
            max_rss=usage.ru_maxrss * 1024,
            user=usage.ru_utime,
            system=usage.ru_stime,
            stdout=out.read(),
            stderr=err.read(),
        )


def verify_argv(bundle: Path, keys: Keys, work: Path, *, policy: Path | None) -> list[str]:
    """``dhi-offline verify`` of ``bundle`` trusting the bench keys, JSON report."""
    argv = [
        *dhi_offline_cli(),
        "verify",
        str(bundle),
        "--trust-exporter",
        str(keys.exporter_pub),
        "--trust-publisher",
        str(keys.publisher_pub),
        "--format",
        "json",
    ]
    if policy is not None:
        argv += ["--policy", str(policy)]
    return argv


def tar_stream_size(bundle: Path) -> int:
    """The content size a bundle's zstd frame header declares (the tar stream's length)."""
    with bundle.open("rb") as fh:
        return int(zstandard.get_frame_parameters(fh.read(18)).content_size)


def chunks_of(path: Path, size: int = 1 << 20) -> Iterator[bytes]:
    with path.open("rb") as fh:
        while chunk := fh.read(size):
            yield chunk


def profile(fn: Any) -> None:
    """Run ``fn`` under pyinstrument and print the profile (``--profile``)."""
    try:
        from pyinstrument import Profiler  # noqa: PLC0415 (optional: only for --profile)
    except ImportError:
        print("--profile: pyinstrument is not installed (.venv/bin/pip install pyinstrument)")
        return
    profiler = Profiler(interval=0.001)
    profiler.start()
    fn()
    profiler.stop()
    print(profiler.output_text(unicode=False, color=False, show_all=False))
