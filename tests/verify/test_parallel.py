"""Platforms verified in forked workers: the same report, in the same order."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from dhi_offline.verify import bundle as verify_bundle
from dhi_offline.verify import parallel
from dhi_offline.verify.parallel import run_tasks
from tests.support.sample import export_argv, make_sample_site, run_cli, trust_argv


def test_results_in_order_from_workers_and_this_process() -> None:
    tasks = [lambda i=i: (i, os.getpid()) for i in range(40)]
    out = run_tasks(tasks, workers=1)
    assert [i for i, _ in out] == list(range(40))
    assert os.getpid() in {pid for _, pid in out}  # this process took some
    assert len({pid for _, pid in out}) == 2  # and a worker others
    assert run_tasks(tasks, workers=0) == [(i, os.getpid()) for i in range(40)]


def test_a_task_failing_in_a_worker_fails_here_with_its_own_error() -> None:
    def boom() -> int:
        raise ValueError("task 0 is malformed")

    tasks: list[Callable[[], int]] = [boom, *[(lambda i=i: i) for i in range(1, 20)]]
    with pytest.raises(ValueError, match="task 0 is malformed"):
        run_tasks(tasks, workers=1)
    assert not parallel._TASKS  # nothing left for a later fork to inherit


def test_verify_reports_the_same_with_and_without_platform_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = make_sample_site(tmp_path, monkeypatch)
    code, _, err = run_cli(export_argv(d, "b.dhi.tar.zst"))
    assert code == 0, err
    # The sample is small: one platform a task, and workers whatever the count.
    monkeypatch.setenv(verify_bundle.PLATFORM_WORKERS_ENV, "1")  # opt-in
    monkeypatch.setattr(verify_bundle, "PARALLEL_MIN_ATTESTATIONS", 1)
    monkeypatch.setattr(verify_bundle, "BATCH_ATTESTATIONS", 1)
    used: list[int] = []

    def counting(tasks: Sequence[Callable[[], Any]], *, workers: int) -> list[Any]:
        used.append(workers)
        return run_tasks(tasks, workers=workers)

    monkeypatch.setattr(verify_bundle, "run_tasks", counting)
    reports: list[Any] = []
    for cpus in (1, 2):
        monkeypatch.setattr(verify_bundle, "usable_cpus", lambda n=cpus: n)
        code, out, err = run_cli(
            [
                "verify",
                str(d / "b.dhi.tar.zst"),
                *trust_argv(d),
                "--policy",
                "dhi-default",
                "--format",
                "json",
            ]
        )
        assert code in (0, 1), err
        report = json.loads(out)
        report.pop("referenceTime")  # "now": the two runs may straddle a second
        reports.append(report)
    assert used == [0, 1]
    assert sum(len(i["platforms"]) for i in reports[0]["images"]) >= 2
    assert reports[0] == reports[1]
