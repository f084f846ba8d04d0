"""Exporter state: sequences and checkpoints under one lock, across processes."""

from __future__ import annotations

import base64
import json
import multiprocessing
from pathlib import Path

import pytest

from dhi_offline.bundle.sequence_state import STATE_FILE
from dhi_offline.errors import InputError
from dhi_offline.export.state import (
    CHECKPOINT_STATE,
    load_checkpoints,
    next_sequence,
    save_checkpoints,
)

KEY = "ab" * 32
PROCESSES = 6
ROUNDS = 5


def _note(origin: str, size: int) -> str:
    root = base64.b64encode(bytes([size % 256]) * 32).decode()
    sig = base64.b64encode(b"\x01\x02\x03\x04" + b"s" * 64).decode()
    return f"{origin}\n{size}\n{root}\n\n\u2014 {origin} {sig}\n"


def _log(worker: int, round_: int) -> str:
    return f"{worker:032x}{round_:032x}"


def _export(state_dir: str, worker: int, out: multiprocessing.Queue[list[int]]) -> None:
    """One exporter: a sequence, then the checkpoint of a log only it packs, each round."""
    got = []
    for r in range(ROUNDS):
        got.append(next_sequence(KEY, Path(state_dir)))
        log = _log(worker, r)
        save_checkpoints(
            Path(state_dir), {f"tlog/{log}/checkpoint.txt": _note(log, r + 1).encode()}
        )
    out.put(got)


def test_concurrent_exports_never_reuse_a_sequence_nor_lose_a_checkpoint(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    queue: multiprocessing.Queue[list[int]] = ctx.Queue()
    procs = [ctx.Process(target=_export, args=(str(tmp_path), i, queue)) for i in range(PROCESSES)]
    for p in procs:
        p.start()
    got = sorted(n for _ in procs for n in queue.get(timeout=120))
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    assert got == list(range(1, PROCESSES * ROUNDS + 1))
    saved = load_checkpoints(tmp_path)
    assert set(saved) == {_log(i, r) for i in range(PROCESSES) for r in range(ROUNDS)}
    assert json.loads((tmp_path / STATE_FILE).read_text())["sequences"] == {KEY: len(got)}
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_a_remembered_checkpoint_never_moves_backwards(tmp_path: Path) -> None:
    log = "cd" * 32
    path = f"tlog/{log}/checkpoint.txt"
    save_checkpoints(tmp_path, {path: _note("log", 7).encode()})
    save_checkpoints(tmp_path, {path: _note("log", 3).encode()})
    assert load_checkpoints(tmp_path) == {log: _note("log", 7)}


def test_malformed_checkpoint_state_is_an_error_and_kept(tmp_path: Path) -> None:
    (tmp_path / CHECKPOINT_STATE).write_text("[]")
    with pytest.raises(InputError, match="malformed"):
        save_checkpoints(tmp_path, {})
    assert (tmp_path / CHECKPOINT_STATE).read_text() == "[]"
