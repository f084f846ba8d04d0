"""Run independent verification tasks in forked worker processes and in this one.

A bundle of many small attestations spends its verification time in Python, one
platform after another, so one core does all of it. :func:`run_tasks` forks workers
once the bundle has been read: they inherit the opened bundle (its members kept in
memory included, copy-on-write) and compute tasks by index, while this process takes
tasks from the other end of the list. A worker computes exactly what this process
would, from the same bytes; its result comes back pickled. A task a worker fails (an
exception, a result that does not pickle, a worker that died) is run again here, so
whatever it raises is raised by this process, with the same message.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, TypeVar

from dhi_offline.verify.prefetch import worker_init

T = TypeVar("T")

_TASKS: list[Sequence[Callable[[], Any]]] = []
"""The tasks of the current :func:`run_tasks` call (one list), inherited by forked
workers."""


def _run(index: int) -> Any:
    """In a worker: the result of task ``index`` of the inherited list."""
    if not _TASKS:  # not forked from a run_tasks call: nothing to compute
        raise RuntimeError("no tasks")
    return _TASKS[0][index]()


def run_tasks(tasks: Sequence[Callable[[], T]], *, workers: int) -> list[T]:
    """The result of every task, in order, computed by ``workers`` forked processes and
    this one (``workers`` 0: here only)."""
    if workers <= 0 or len(tasks) < 2:
        return [t() for t in tasks]
    _TASKS[:] = [tasks]
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("fork"),
        initializer=worker_init,
    )
    try:
        # Workers take tasks from the front; this process from the back, each one it
        # can still cancel (not yet handed to a worker).
        futures: list[Future[T]] = [pool.submit(_run, i) for i in range(len(tasks))]
        results: dict[int, T] = {}
        end = len(tasks)
        while end > 0 and futures[end - 1].cancel():
            end -= 1
            results[end] = tasks[end]()
        for i in range(end):
            try:
                results[i] = futures[i].result()
            except Exception:
                results[i] = tasks[i]()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        _TASKS.clear()
    return [results[i] for i in range(len(tasks))]
