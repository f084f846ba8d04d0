"""Every corpus file through the real command line, in a sandboxed subprocess.

For each case of ``generate.CASES`` and each of ``verify`` and ``inspect``, the CLI runs
as ``python -m dhi_offline ...`` in a child process whose working directory, ``HOME``,
``TMPDIR``, ``XDG_*`` and ``DHI_OFFLINE_*`` directories are inside a fresh sandbox, under
an address-space limit of 1 GiB (``RLIMIT_AS``, set in ``preexec_fn``). Then:

- **safety** (every case, known bugs included): no traceback; at most one line on
  stderr; the sandbox holds exactly what it held before (the temporary extraction
  directory was removed, nothing was created);
- **memory**: the child's peak RSS (``ru_maxrss`` from ``os.wait4`` for that child
  alone) is under :data:`MEMORY_BOUND_MIB` (known bugs marked ``xfail(strict=True)``);
- **outcome** (known bugs marked ``xfail(strict=True)``): the documented exit code, and
  exactly one stderr line containing the documented words, never "internal error";
- **nothing written outside**: around the whole batch, ``tests/adversarial/`` (the
  corpus' parent), the real user's dhi-offline state/config/data directories and the
  ``/tmp`` listing are compared, and no file named with the corpus' escape marker exists
  anywhere we can see. ``/tmp`` is shared with whatever else runs on the machine, so only
  entries carrying the marker count there.

The children run in parallel (one per CPU), started and reaped from this thread only, so
``preexec_fn`` never runs while another thread might hold a lock.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import platformdirs
import pytest
import zstandard

from dhi_offline.bundle.signing import DETERMINISTIC_SIGNATURES
from tests.adversarial import generate
from tests.adversarial.generate import CASES, CORPUS, KEYS, MARKER, Case, Expect

ROOT = (
    Path(__file__).resolve().parents[2]
    / "dhi_offline"
    / "data"
    / "trusted_root"
    / "production.json"
)
ADDRESS_SPACE = 1 << 30
MEMORY_BOUND_MIB = 300
"""Peak RSS allowed for one CLI run. Measured: 55-75 MiB for almost every case; the
largest is ``checkpoint-10mb`` (see docs/security.md)."""
TIMEOUT = 120.0
COMMANDS = ("verify", "inspect")
SANDBOX_DIRS = ("work", "home", "tmp", "state", "config", "data", "xdg-cache", "xdg-runtime")


@dataclass(frozen=True)
class Run:
    """What one CLI run did."""

    code: int
    stdout: str
    stderr: str
    maxrss_mib: float
    seconds: float
    changed: tuple[str, ...]
    """Paths in the sandbox that were not there before, or are gone (should be empty)."""


def _limit_address_space() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def _tree(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


def _argv(case: Case, command: str, sandbox: Path) -> list[str]:
    argv = [sys.executable, "-m", "dhi_offline", command, str(CORPUS / case.file)]
    if command == "verify":
        argv += [
            "--trust-exporter",
            str(KEYS / "exporter.pub"),
            "--trust-publisher",
            str(KEYS / "publisher.pub"),
            "--trusted-root",
            str(ROOT),
            *case.args,
        ]
    return argv


def _env(sandbox: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "COLUMNS": "200",
        "HOME": str(sandbox / "home"),
        "TMPDIR": str(sandbox / "tmp"),
        "XDG_CONFIG_HOME": str(sandbox / "config"),
        "XDG_DATA_HOME": str(sandbox / "data"),
        "XDG_STATE_HOME": str(sandbox / "state"),
        "XDG_CACHE_HOME": str(sandbox / "xdg-cache"),
        "XDG_RUNTIME_DIR": str(sandbox / "xdg-runtime"),
        "DHI_OFFLINE_STATE_DIR": str(sandbox / "state" / "dhi-offline"),
        "DHI_OFFLINE_CONFIG_DIR": str(sandbox / "config" / "dhi-offline"),
        "DHI_OFFLINE_DATA_DIR": str(sandbox / "data" / "dhi-offline"),
    }


@dataclass
class _Job:
    key: tuple[str, str]
    sandbox: Path
    before: set[str]
    out: Path
    err: Path
    proc: subprocess.Popen[bytes]
    started: float


def _start(case: Case, command: str, base: Path) -> _Job:
    sandbox = base / f"{case.name}.{command}"
    for d in SANDBOX_DIRS:
        (sandbox / d).mkdir(parents=True)
    logs = base / "logs"
    logs.mkdir(exist_ok=True)
    out, err = logs / f"{case.name}.{command}.out", logs / f"{case.name}.{command}.err"
    with out.open("wb") as o, err.open("wb") as e:
        proc = subprocess.Popen(
            _argv(case, command, sandbox),
            cwd=sandbox / "work",
            env=_env(sandbox),
            stdin=subprocess.DEVNULL,
            stdout=o,
            stderr=e,
            preexec_fn=_limit_address_space,  # noqa: PLW1509 - no other thread runs here
        )
    return _Job((case.name, command), sandbox, _tree(sandbox), out, err, proc, time.monotonic())


def _finish(job: _Job, status: int, usage: resource.struct_rusage) -> Run:
    job.proc.returncode = os.waitstatus_to_exitcode(status)
    after = _tree(job.sandbox)
    return Run(
        code=job.proc.returncode,
        stdout=job.out.read_text(errors="replace"),
        stderr=job.err.read_text(errors="replace"),
        maxrss_mib=usage.ru_maxrss / 1024,  # KiB on Linux
        seconds=time.monotonic() - job.started,
        changed=tuple(sorted(after ^ job.before)),
    )


def run_all(base: Path, cases: tuple[Case, ...] = CASES) -> dict[tuple[str, str], Run]:
    """Run every case under both commands, a few children at a time."""
    todo = [(c, cmd) for c in cases for cmd in COMMANDS]
    running: list[_Job] = []
    done: dict[tuple[str, str], Run] = {}
    width = max(2, os.cpu_count() or 2)
    while todo or running:
        while todo and len(running) < width:
            running.append(_start(*todo.pop(0), base))
        for job in list(running):
            pid, status, usage = os.wait4(job.proc.pid, os.WNOHANG)
            if pid == 0:
                if time.monotonic() - job.started > TIMEOUT:
                    job.proc.kill()  # our own child, by its pid
                continue
            running.remove(job)
            done[job.key] = _finish(job, status, usage)
        time.sleep(0.005)
    return done


# -- what must not change --------------------------------------------------------------


def _listing(root: Path) -> set[tuple[str, int, int]]:
    if not root.exists():
        return set()
    return {
        (p.relative_to(root).as_posix(), p.lstat().st_size, p.lstat().st_mtime_ns)
        for p in root.rglob("*")
        if "__pycache__" not in p.parts
    }


def _user_dirs() -> list[Path]:
    app = "dhi-offline"
    return [
        Path(platformdirs.user_state_dir(app)),
        Path(platformdirs.user_config_dir(app)),
        Path(platformdirs.user_data_dir(app)),
        Path(platformdirs.user_cache_dir(app)),
    ]


def _marked(roots: list[Path]) -> list[str]:
    found = []
    for root in roots:
        if root.is_dir():
            found += [str(p) for p in root.rglob(f"*{MARKER}*")]
    return found


@dataclass(frozen=True)
class Batch:
    """All runs, and what changed around them."""

    runs: dict[tuple[str, str], Run]
    parent_changes: set[tuple[str, int, int]]
    user_dir_changes: set[tuple[str, int, int]]
    new_tmp_marked: set[str]
    marked_files: list[str]
    seconds: float


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Batch]:
    base = tmp_path_factory.mktemp("adversarial")
    parent = CORPUS.parent
    parent_before = _listing(parent)
    users_before = {d: _listing(d) for d in _user_dirs()}
    tmp_before = set(os.listdir("/tmp"))
    started = time.monotonic()
    runs = run_all(base)
    seconds = time.monotonic() - started
    users_changed: set[tuple[str, int, int]] = set()
    for d, before in users_before.items():
        users_changed |= {(f"{d}/{n}", s, m) for n, s, m in _listing(d) ^ before}
    yield Batch(
        runs=runs,
        parent_changes=_listing(parent) ^ parent_before,
        user_dir_changes=users_changed,
        new_tmp_marked={n for n in set(os.listdir("/tmp")) - tmp_before if MARKER in n},
        marked_files=_marked([base, parent, Path("/tmp"), Path.home(), *_user_dirs()]),
        seconds=seconds,
    )


def _params(kind: str) -> list[object]:
    params: list[object] = []
    for case in CASES:
        for command in COMMANDS:
            expect: Expect = getattr(case, command)
            marks = []
            reason = {"outcome": expect.xfail, "memory": expect.memory_xfail}.get(kind)
            if reason:
                marks.append(pytest.mark.xfail(strict=True, reason=reason))
            params.append(pytest.param(case, command, marks=marks, id=f"{case.name}-{command}"))
    return params


@pytest.mark.parametrize(("case", "command"), _params("outcome"))
def test_outcome(batch: Batch, case: Case, command: str) -> None:
    run = batch.runs[(case.name, command)]
    expect: Expect = getattr(case, command)
    assert "internal error" not in run.stderr, run.stderr
    assert run.code == expect.code, run.stderr or run.stdout[:500]
    if expect.code == 0:
        assert run.stderr == ""
        for words in expect.words:
            assert words in run.stdout, run.stdout[:2000]
        return
    lines = run.stderr.splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("dhi-offline: "), lines[0]
    for words in expect.words:
        assert words in lines[0], lines[0]


@pytest.mark.parametrize(("case", "command"), _params("safety"))
def test_safety(batch: Batch, case: Case, command: str) -> None:
    run = batch.runs[(case.name, command)]
    assert "Traceback" not in run.stderr and "Traceback" not in run.stdout
    assert len(run.stderr.splitlines()) <= 1, run.stderr
    assert run.seconds < TIMEOUT
    assert run.changed == (), f"the run left or removed {run.changed}"


@pytest.mark.parametrize(("case", "command"), _params("memory"))
def test_memory(batch: Batch, case: Case, command: str) -> None:
    run = batch.runs[(case.name, command)]
    assert run.maxrss_mib < MEMORY_BOUND_MIB, f"peak RSS {run.maxrss_mib:.0f} MiB"


def test_nothing_written_outside_the_sandbox(batch: Batch) -> None:
    assert batch.parent_changes == set(), "files changed next to the corpus"
    assert batch.user_dir_changes == set(), "the real user's dhi-offline directories changed"
    assert batch.new_tmp_marked == set()
    assert batch.marked_files == []


def test_every_case_ran_under_both_commands(
    batch: Batch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every case ran under every command, within the time limit; the peak memory table
    (``pytest -s``) is printed for docs/security.md."""
    expected = {(c.name, command) for c in CASES for command in COMMANDS}
    assert set(batch.runs) == expected
    timed_out = [key for key, run in batch.runs.items() if run.seconds >= TIMEOUT]
    assert timed_out == [], f"killed at the {TIMEOUT} s limit: {timed_out}"
    with capsys.disabled():
        worst = sorted(batch.runs.items(), key=lambda kv: -kv[1].maxrss_mib)[:5]
        print(f"\n{len(batch.runs)} runs in {batch.seconds:.1f} s; highest peak RSS:")
        for (name, command), run in worst:
            print(f"  {run.maxrss_mib:6.1f} MiB  {run.seconds:5.2f} s  {command} {name}")


# -- the corpus itself ------------------------------------------------------------------


def test_corpus_holds_exactly_the_cases() -> None:
    expected = {c.file for c in CASES} | {"README.md", "keys"}
    assert {p.name for p in CORPUS.iterdir()} == expected
    assert (CORPUS / "README.md").read_text() == generate.readme(), (
        "corpus/README.md is stale: python -m tests.adversarial.generate tests/adversarial/corpus"
    )
    assert sum(p.stat().st_size for p in CORPUS.rglob("*") if p.is_file()) < 2_000_000


@pytest.mark.skipif(
    zstandard.ZSTD_VERSION != generate.LIBZSTD or not DETERMINISTIC_SIGNATURES,
    reason="another libzstd, or randomized ECDSA: the bytes may legitimately differ",
)
def test_corpus_regenerates_byte_for_byte(tmp_path: Path) -> None:
    generate.generate(tmp_path)
    for case in CASES:
        if case.build is not None:
            assert (tmp_path / case.file).read_bytes() == (CORPUS / case.file).read_bytes(), (
                f"{case.file} differs from what generate.py writes"
            )
