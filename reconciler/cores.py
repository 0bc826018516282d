"""Pure work over many inputs split across the cores: the process forked once the inputs are in
memory, each child working on a contiguous range of them, the results put back in order.

Why fork: the inputs (loaded manifests) and what works on them (compiled CEL programs, which do
not pickle) are inherited as they are, so nothing but the results crosses between processes.
Small inputs, one core, a platform without fork, or a process that runs other threads (a fork
copies only the calling thread: a lock another thread holds would stay held in the child) work
in the calling process: the results are the same either way, only the time differs.

Why not in the engine: forking and reading the cgroup's CPU limit are the process's business; the
engine takes how to run its ranges as an argument (``engine.policy.Ranges``) and the session
passes :func:`in_ranges`. A leaf: it imports nothing of reconciler.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["MINIMUM", "cores", "in_ranges", "quota_cores"]

T = TypeVar("T")

# below this many inputs one process is as fast: forking a process holding them and starting its
# pool costs about 20 ms (bench/bench_policy.py), what judging 200 manifests takes
MINIMUM = 2_000

_WORK: Callable[[int, int], list[Any]] | None = None  # set in the parent just before the fork


def _run(start: int, stop: int) -> list[Any]:
    assert _WORK is not None, "in_ranges forks its workers after setting the work"
    return _WORK(start, stop)


def cores() -> int:
    """The cores this process may use: its CPU affinity (as a cpuset limits it), and no more than
    its cgroup's CPU quota allows (a container's CPU limit, e.g. Kubernetes' resources.limits.cpu)."""
    try:
        visible = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
    for path, parse in ((CGROUP2_CPU_MAX, quota_cores), (CGROUP1_CPU_QUOTA, _cgroup1_cores)):
        try:
            with open(path, encoding="ascii") as file:
                text = file.read(64)  # a bounded read: one short line
        except OSError:
            continue
        quota = parse(text)
        if quota is not None:
            return max(1, min(visible, quota))
    return visible


CGROUP2_CPU_MAX = "/sys/fs/cgroup/cpu.max"
CGROUP1_CPU_QUOTA = "/sys/fs/cgroup/cpu/cpu.cfs_quota_us"


def quota_cores(cpu_max: str) -> int | None:
    """The whole cores a cgroup v2 ``cpu.max`` (``QUOTA PERIOD`` or ``max PERIOD``) allows, rounded
    up (a 1.5-core limit still runs two processes at once, each part of the time); None: no limit."""
    parts = cpu_max.split()
    if len(parts) != 2 or not parts[0].isdigit() or not parts[1].isdigit() or int(parts[1]) == 0:
        return None
    return -(-int(parts[0]) // int(parts[1]))


def _cgroup1_cores(quota: str) -> int | None:
    """cgroup v1: the quota alone (-1: none); its period is beside it, read only when limited."""
    value = quota.strip()
    if not value.isdigit():
        return None
    try:
        with open(CGROUP1_CPU_QUOTA.replace("cfs_quota_us", "cfs_period_us"), encoding="ascii") as file:
            period = file.read(64).strip()
    except OSError:
        return None
    return quota_cores(f"{value} {period}")


def _bounds(count: int, parts: int) -> list[tuple[int, int]]:
    step, extra = divmod(count, parts)
    out, start = [], 0
    for part in range(parts):
        stop = start + step + (part < extra)
        out.append((start, stop))
        start = stop
    return out


def can_fork() -> bool:
    """Whether this process may fork a worker now: a platform with ``fork``, and no other thread
    running (a fork copies the locks other threads hold, and nothing would release them). The one
    test for every fork of this program (:func:`in_ranges`, the listing worker of
    :mod:`reconciler.api.forked`)."""
    return hasattr(os, "fork") and threading.active_count() == 1


def in_ranges(work: Callable[[int, int], list[T]], count: int, *, minimum: int = MINIMUM,
              workers: int | None = None) -> list[T]:
    """``work(0, count)``, computed as ``work(start, stop)`` over contiguous ranges in forked
    processes (this one takes the first range) when there are at least ``minimum`` inputs, and
    concatenated in order. ``work`` must be pure: what it changes in a child stays there.
    ``workers``: the processes in all (default: :func:`cores`)."""
    global _WORK
    parts = min(workers or cores(), count)
    if count < minimum or parts < 2 or not can_fork() or _WORK is not None:
        return work(0, count)
    # imported here: 25 ms that a command judging few manifests (or none) does not spend
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    if "fork" not in multiprocessing.get_all_start_methods():
        return work(0, count)
    bounds = _bounds(count, parts)
    _WORK = work
    try:
        with ProcessPoolExecutor(parts - 1, mp_context=multiprocessing.get_context("fork")) as pool:
            pending = [pool.submit(_run, start, stop) for start, stop in bounds[1:]]
            out = work(*bounds[0])
            for future, (start, stop) in zip(pending, bounds[1:], strict=True):
                try:
                    out += future.result()
                except BrokenProcessPool:  # a child died (killed, out of memory): its range here
                    out += work(start, stop)
    finally:
        _WORK = None
    return out
