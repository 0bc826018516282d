"""The job runner inside ``reconciler serve``: claims queued jobs and runs them.

One asyncio task (started in the app lifespan) loops: fail jobs whose runner vanished, and claim
queued jobs while fewer than ``max_running_jobs`` run. It wakes on a timer (``runner_poll_seconds``) or at once when a route queues a job or completes
an upload (:meth:`JobRunner.wake`). Each claimed job runs in a driver thread
(:func:`execute.run_job`); its chunks are scored in one thread pool shared by all jobs (NumPy,
scikit-learn, onnxruntime and Arrow release the GIL, so two cores are used).

Restart safety: a claim is an atomic conditional UPDATE, so two service processes on one
database never run the same job. A running job carries a lease (``heartbeat``) renewed every
``job_lease_seconds / 3`` by a thread of its own; a job whose lease expired is failed with
:data:`RESTARTED` by whichever runner notices first (each checks every ``job_lease_seconds / 3``),
including this process right after a restart. A runner id names its host, process id and PID namespace, so a job whose
runner was a process on this machine that no longer exists is failed at once, without waiting
for the lease. Jobs are never resumed half-done (their partial output is discarded)
and never silently run twice. Queued jobs simply wait in the database and are claimed after a
restart. On a clean shutdown the runner stops its jobs and fails them with the same advice.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import secrets
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.service import ids
from reconciler.service.records import JobRecord
from reconciler.service.runner import artifacts, execute, files
from reconciler.service.runner.cluster.config import executor_config
from reconciler.service.runner.notices import JobNotices
from reconciler.service.settings import ServiceSettings, job_data_dir
from reconciler.service.store import Store

if TYPE_CHECKING:
    from reconciler.service.runner.cluster.driver import DaskExecutor

log = logging.getLogger("reconciler.service.runner")

RESTARTED = ("the service process running the job stopped (restarted, killed or cut off from the database for "
             "longer than the job lease); run it again")
STOPPED = "the service stopped while the job was running; run it again"


def process_scope() -> str:
    """Names this kernel boot and PID namespace (8 hex digits): two runners with the same scope
    see the same process ids, so one can tell whether the other's process still exists."""
    parts = []
    for path in ("/proc/sys/kernel/random/boot_id", "/proc/self/ns/pid"):
        try:
            parts.append(Path(path).read_text() if path.endswith("boot_id") else str(os.stat(path).st_ino))
        except OSError:
            parts.append(secrets.token_hex(8))  # unknown: no other process shares the scope
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:8]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class JobRunner:
    def __init__(self, store: Store, settings: ServiceSettings) -> None:
        self.store = store
        self.settings = settings
        self.runner_id = f"{socket.gethostname()[:20]}:{os.getpid()}:{process_scope()}:{secrets.token_hex(4)}"
        self.data_dir = job_data_dir(settings)
        self.max_running = max(1, settings.max_running_jobs)
        threads = settings.scoring_threads or os.cpu_count() or 2
        self.scoring_pool = ThreadPoolExecutor(threads, thread_name_prefix="reconciler-score")
        self.driver_pool = ThreadPoolExecutor(self.max_running, thread_name_prefix="reconciler-job")
        self.cache = artifacts.ModelCache()
        self.executor: DaskExecutor | None = None
        config = executor_config(settings.executor, settings.dask_scheduler)
        if config.is_dask:
            from reconciler.service.runner.cluster.driver import DaskExecutor

            self.executor = DaskExecutor(config, partition_bytes=settings.dask_partition_bytes,
                                         partition_rows=settings.dask_partition_rows,
                                         worker_wait_seconds=settings.dask_worker_wait_seconds)
        self.active: dict[str, threading.Event] = {}
        self._futures: set[asyncio.Future[None]] = set()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.notices = JobNotices(settings.notify)
        self._lease_stop = threading.Event()
        self._lease_thread: threading.Thread | None = None

    @staticmethod
    def _now() -> str:
        return ids.iso(ids.utcnow())

    def _lease_cutoff(self) -> str:
        return ids.iso(ids.utcnow() - timedelta(seconds=self.settings.job_lease_seconds))

    async def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._wake = asyncio.Event()
        self.notices.bind(asyncio.get_running_loop())
        await asyncio.to_thread(self._fail_abandoned)
        if self.executor is not None:  # connect (or start a local cluster) without holding up serving
            threading.Thread(target=self.executor.start, name="reconciler-dask-connect", daemon=True).start()
        self._task = asyncio.create_task(self._loop(), name="reconciler-job-runner")
        self._lease_thread = threading.Thread(target=self._renew_leases, name="reconciler-job-leases", daemon=True)
        self._lease_thread.start()

    def wake(self) -> None:
        """Look for work now (a job was queued or its upload completed). Call from the event loop."""
        if self._wake is not None:
            self._wake.set()

    def cancel(self, job_id: str) -> None:
        """Stop a job of this process between chunks (its status was already set to ABORTED)."""
        event = self.active.get(job_id)
        if event is not None:
            event.set()

    def _fail_abandoned(self) -> None:
        failed = []
        for runner in self._dead_local_runners():
            failed += self.store.fail_abandoned_jobs(lease_expired_before="", now=self._now(), details=RESTARTED,
                                                     runner_id=runner)
        failed += self.store.fail_abandoned_jobs(lease_expired_before=self._lease_cutoff(), now=self._now(),
                                                 details=RESTARTED)
        for record in failed:
            log.warning("job %s was left RUNNING by a runner that is gone; failed it", record.id)
            files.remove_job_files(self.data_dir, record.id)  # its upload and partial output, if on this machine
            self.notices.finished(record)  # job.failed, as for a job that fails while it runs

    def _dead_local_runners(self) -> set[str]:
        """Runners of RUNNING jobs that were processes on this machine, in this process's PID
        namespace, and no longer exist: their jobs fail now instead of when the lease expires (a
        restarted service shows the reason at once). Anything else waits for its lease."""
        host, _, scope, _ = self.runner_id.split(":")
        dead: set[str] = set()
        for job in self.store.list_jobs(offset=0, limit=10_000, statuses=["RUNNING"]).items:
            parts = (job.runner or "").split(":")
            if job.runner == self.runner_id or len(parts) != 4 or parts[0] != host or parts[2] != scope:
                continue
            if parts[1].isdigit() and not pid_alive(int(parts[1])):
                dead.add(str(job.runner))
        return dead

    def _renew_leases(self) -> None:
        """Renew this process's leases every third of the lease, on a thread of its own: a busy
        event loop (requests, claims) or a saturated machine must not let a live job's lease run
        out, or another replica fails a job that is still running (three replicas on a 2-core machine
        under a load of 16 failed live jobs with a 3 s lease renewed by the event loop's pass)."""
        while not self._lease_stop.wait(self.settings.job_lease_seconds / 3):
            try:
                self.store.renew_job_leases(self.runner_id, list(self.active), now=self._now())
            except Exception:  # the database is briefly unreachable: the next renewal may still be in time
                log.exception("could not renew the leases of this process's jobs")

    def _maintain(self) -> None:
        self._fail_abandoned()

    async def _loop(self) -> None:
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        last_maintained = loop.time()
        while not self._stopping:
            try:
                if loop.time() - last_maintained >= self.settings.job_lease_seconds / 3:
                    last_maintained = loop.time()
                    await asyncio.to_thread(self._maintain)
                while len(self.active) < self.max_running and not self._stopping:
                    job = await asyncio.to_thread(self.store.claim_next_job, self.runner_id, now=self._now())
                    if job is None:
                        break
                    self._spawn(job)
            except Exception:  # a database hiccup must not end the runner; try again next tick
                log.exception("job runner pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.settings.runner_poll_seconds)
            self._wake.clear()

    def _spawn(self, job: JobRecord) -> None:
        event = threading.Event()
        self.active[job.id] = event
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self.driver_pool, self._drive, job, event)
        self._futures.add(future)

        def finished(_: asyncio.Future[None]) -> None:
            self.active.pop(job.id, None)
            self._futures.discard(future)
            self.wake()

        future.add_done_callback(finished)

    def _drive(self, job: JobRecord, event: threading.Event) -> None:
        if self.executor is not None:
            from reconciler.service.runner.cluster import driver

            outcome = driver.run_job(job, store=self.store, runner_id=self.runner_id, data_dir=self.data_dir,
                                     pool=self.scoring_pool, cache=self.cache, cancelled=event, executor=self.executor)
        else:
            outcome = execute.run_job(job, store=self.store, runner_id=self.runner_id, data_dir=self.data_dir,
                                      pool=self.scoring_pool, cache=self.cache, cancelled=event)
        if self._stopping and outcome.status == "ABORTED":
            outcome.status, outcome.details = "FAILED", STOPPED
        try:
            recorded = self.store.finish_job(job.id, self.runner_id, status=outcome.status, details=outcome.details,
                                             now=self._now(), percentage=outcome.percentage,
                                             scored_rows=outcome.scored_rows, failed_rows=outcome.failed_rows,
                                             output_bytes=outcome.output_bytes)
        except Exception:
            log.exception("could not record the end of job %s; its lease will expire and fail it", job.id)
            return
        self.notices.finished(recorded)
        # None: the job was moved meanwhile (aborted, or failed by a lease check), so it did not complete
        files.discard_after(self.data_dir, job.id, recorded.status if recorded is not None else "ABORTED")

    async def stop(self) -> None:
        self._stopping = True
        self._lease_stop.set()
        if self._wake is not None:
            self._wake.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        for event in list(self.active.values()):
            event.set()
        if self._futures:
            await asyncio.wait(list(self._futures), timeout=30)
        stopped = await asyncio.to_thread(self.store.fail_abandoned_jobs, lease_expired_before="", now=self._now(),
                                          details=STOPPED, runner_id=self.runner_id)
        for record in stopped:  # still running after the wait: failed here, and told like any other
            self.notices.finished(record)
        await self.notices.drain()
        self.driver_pool.shutdown(wait=False, cancel_futures=True)
        self.scoring_pool.shutdown(wait=False, cancel_futures=True)
        if self.executor is not None:
            await asyncio.to_thread(self.executor.close)
