"""Real ``dask scheduler`` and ``dask worker`` processes on loopback for the scale-out tests.

Workers run without a nanny, so the process a test kills by PID is the worker itself (a nanny
would restart it). Their PYTHONPATH holds the worktree (``reconciler``) and ``tests/`` (the
``scaleout.slow_model`` pickles refer to).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from distributed import Client

from reconciler.service.testing import free_port

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"


def _env() -> dict[str, str]:
    path = os.pathsep.join([str(ROOT), str(TESTS), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1"}


class DaskProcesses:
    """``dask scheduler`` on 127.0.0.1 and ``workers`` single-threaded ``dask worker`` processes."""

    def __init__(self, workers: int = 2) -> None:
        self.count = workers
        self.port = 0
        self.scheduler: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []
        self.client: Any = None

    @property
    def address(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        try:
            self.port = free_port()
            self.scheduler = subprocess.Popen(
                [sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port", str(self.port),
                 "--no-dashboard"], env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for _ in range(self.count):
                self.add_worker()
            self.client = Client(self.address, timeout=60, set_as_default=False)
            if self.count:
                self.client.wait_for_workers(self.count, timeout=120)
        except BaseException:
            self.stop()
            raise
        return self

    def add_worker(self) -> subprocess.Popen[bytes]:
        worker = subprocess.Popen(
            [sys.executable, "-m", "dask", "worker", self.address, "--nthreads", "1", "--no-nanny",
             "--no-dashboard", "--host", "127.0.0.1", "--memory-limit", "0"],
            env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.workers.append(worker)
        return worker

    def worker_pids(self) -> dict[str, int]:
        """Worker address -> its process id."""
        return dict(self.client.run(os.getpid))

    def kill(self, pid: int) -> None:
        os.kill(pid, signal.SIGKILL)
        for worker in self.workers:
            if worker.pid == pid:
                worker.wait(timeout=10)

    def thread_worker(self) -> Any:
        """A worker inside this process (on the test client's event loop): it imports nothing
        new, so a test that needs the scheduler as a process but not the worker starts fast."""
        from distributed import Worker

        async def start() -> Any:
            return await Worker(self.address, nthreads=1, dashboard=False, memory_limit=0)

        return self.client.sync(start)

    def kill_scheduler(self) -> None:
        assert self.scheduler is not None
        self.scheduler.kill()
        self.scheduler.wait(timeout=10)

    def stop(self) -> None:
        if self.client is not None:
            with contextlib.suppress(Exception):
                self.client.close(timeout=5)
            self.client = None
        for process in [*self.workers, self.scheduler]:  # test processes: no graceful shutdown to wait for
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
        self.workers = []
        self.scheduler = None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def worker_counts(client: Any) -> dict[str, dict[str, dict[str, int]]]:
    """Every worker's model counters (``cluster.worker.counts``): how often it received and loaded each model."""
    from reconciler.service.runner.cluster.worker import counts

    return dict(client.run(counts))


def wait_idle(client: Any, job_id: str, timeout: float = 10.0) -> bool:
    """True once the scheduler holds no task of ``job_id`` (its futures were released or cancelled)."""
    prefix = f"reconciler-{job_id}-"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        keys = client.run_on_scheduler(lambda dask_scheduler: [str(k) for k in dask_scheduler.tasks])
        if not any(k.startswith(prefix) for k in keys):
            return True
        time.sleep(0.1)
    return False
