"""The service's side of a job scored on a Dask cluster: plan, ship, dispatch, watch, commit.

:class:`DaskExecutor` holds the service's one Dask client (and the LocalCluster it started for
``local-cluster:N``). :func:`run_job` runs one claimed job:

1. plan its partitions (``partitions.plan``); a job of one partition, or one whose input or
   output lives in the service's data directory when the workers cannot see that directory, is
   scored by the service itself (``execute.run_job``) and its ``statusDetails`` says why;
2. install the model once per worker (a worker plugin, kept for later jobs of the same model;
   a worker that joins later gets it when it joins); submit one task per partition, each with
   the job's small context (settings, options, resolved references);
3. as partitions finish, record ``percentageCompleted`` (their share of the input) and the rows;
   between them check for an abort (``DELETE``: the futures are cancelled and the tasks already
   running stop at their next chunk through a Dask ``Event``);
4. when every partition is in: check that no CSV boundary fell inside a quoted field (else score
   the job again in one partition), then commit the parts once (``parts``).

A worker that dies takes its running partitions with it; Dask's scheduler runs them again on
another worker (up to ``distributed.scheduler.allowed-failures`` times). A finished partition's
result is read and released at once, so a worker lost later never makes Dask recompute it. The
scheduler gone fails the job with that reason, and the parts are removed.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reconciler.service import ids
from reconciler.service.records import JobRecord
from reconciler.service.runner import artifacts, execute
from reconciler.service.runner.adapters.base import AdapterContext, AdapterError
from reconciler.service.runner.cluster import partitions as planning
from reconciler.service.runner.cluster.config import ExecutorConfig
from reconciler.service.runner.cluster.parts import open_committer
from reconciler.service.runner.cluster.resolved import resolve
from reconciler.service.runner.cluster.worker import (
    JobContext,
    ModelBlob,
    ModelPlugin,
    PartResult,
    score_partition,
)

__all__ = ["ClusterError", "DaskExecutor", "run_job"]

log = logging.getLogger("reconciler.service.runner")

CONNECT_TIMEOUT = 20.0  # seconds to reach the scheduler
STOP_WAIT = 60.0  # seconds to wait for a stopped job's running partitions to notice
KEPT_MODELS = 8  # models kept installed on the workers for the next jobs


class ClusterError(AdapterError):
    """The cluster cannot run or finish the job (scheduler unreachable or gone, a partition's
    workers kept dying); the message is the job's ``statusDetails``."""


class DaskExecutor:
    """The Dask client of one service process, connected on first use (and again after the
    scheduler was lost). ``local-cluster:N`` starts N worker processes on this machine."""

    def __init__(self, config: ExecutorConfig, *, partition_bytes: int, partition_rows: int,
                 worker_wait_seconds: float = 60.0) -> None:
        self.config = config
        self.partition_bytes = partition_bytes
        self.partition_rows = partition_rows
        self.worker_wait_seconds = worker_wait_seconds
        self._lock = threading.Lock()
        self._client: Any = None
        self._cluster: Any = None
        self._models: OrderedDict[str, int] = OrderedDict()  # model sha256 installed -> jobs using it

    @property
    def where(self) -> str:
        return self.config.address or f"the local cluster ({self.config.local_workers} workers)"

    def client(self) -> Any:
        with self._lock:
            if self._client is not None and self._client.status != "running":
                self._drop_client()
            if self._client is None:
                self._client = self._connect()
            return self._client

    def _connect(self) -> Any:
        from distributed import Client, LocalCluster

        if self.config.local_workers:
            if self._cluster is None:
                self._cluster = LocalCluster(n_workers=self.config.local_workers, threads_per_worker=1,
                                             processes=True, host="127.0.0.1", dashboard_address=None)
            return Client(self._cluster, set_as_default=False)
        try:
            return Client(self.config.address, timeout=CONNECT_TIMEOUT, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise ClusterError(f"cannot reach the Dask scheduler at {self.config.address} ({type(exc).__name__}: "
                               f"{exc}); start it (`dask scheduler`) or fix --dask-scheduler, then run the job "
                               "again") from None

    def _drop_client(self) -> None:
        self._models.clear()
        client, self._client = self._client, None
        try:
            client.close(timeout=5)
        except Exception:  # already broken: nothing left to close cleanly
            log.debug("closing a broken Dask client failed", exc_info=True)

    def shipped_model(self, client: Any, blob: ModelBlob) -> str:
        """Install the model on every worker, once (a worker plugin; later workers get it when
        they join); returns its name for the tasks. The last KEPT_MODELS models stay installed
        for the next jobs; an older one is removed unless a running job uses it."""
        with self._lock:
            known = blob.sha256 in self._models
            if known:
                self._models.move_to_end(blob.sha256)
            self._models[blob.sha256] = self._models.get(blob.sha256, 0) + 1  # jobs using it
        if not known:
            try:
                client.register_plugin(ModelPlugin(blob), name=ModelPlugin.name_for(blob.sha256))
            except BaseException:
                self.release_model(blob.sha256, forget=True)
                raise
        return blob.sha256

    def release_model(self, sha256: str, *, forget: bool = False, client: Any = None) -> None:
        """A job is done with the model; models beyond KEPT_MODELS that no job uses are removed."""
        stale: list[str] = []
        with self._lock:
            if sha256 in self._models:
                self._models[sha256] -= 1
                if forget and self._models[sha256] <= 0:
                    del self._models[sha256]
            for name, users in list(self._models.items()):
                if len(self._models) - len(stale) <= KEPT_MODELS:
                    break
                if users <= 0:
                    stale.append(name)
            for name in stale:
                del self._models[name]
        for name in stale:
            try:
                if client is not None:
                    client.unregister_worker_plugin(ModelPlugin.name_for(name))
            except Exception:  # the scheduler is gone: so are its plugins
                log.debug("removing model %s from the Dask workers failed", name, exc_info=True)

    def start(self) -> None:
        """Connect now (a local cluster starts its workers): the first job does not wait. A
        scheduler that cannot be reached is only logged; each job tries again."""
        try:
            self.client()
        except ClusterError as exc:
            log.warning("%s", exc)

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._drop_client()
            if self._cluster is not None:
                cluster, self._cluster = self._cluster, None
                try:
                    cluster.close(timeout=10)
                except Exception:
                    log.debug("closing the local Dask cluster failed", exc_info=True)


def run_job(job: JobRecord, *, store: Any, runner_id: str, data_dir: Path, pool: Any, cache: artifacts.ModelCache,
            cancelled: threading.Event, executor: DaskExecutor,
            clock: Callable[[], str] = lambda: ids.iso(ids.utcnow())) -> execute.Finished:
    """Execute ``job`` on the cluster (or, when it is one partition, here); never raises."""
    counters = execute._Counters()

    def local(reason: str) -> execute.Finished:
        log.info("job %s is scored in the service process: %s", job.id, reason)
        outcome = execute.run_job(job, store=store, runner_id=runner_id, data_dir=data_dir, pool=pool, cache=cache,
                                  cancelled=cancelled, clock=clock)
        outcome.details = f"{outcome.details} (scored in the service process: {reason})"
        return outcome

    return execute.finish(job, counters, lambda: _run(job, store=store, runner_id=runner_id, data_dir=data_dir,
                                                          cancelled=cancelled, executor=executor, clock=clock,
                                                          counters=counters, local=local))


def _run(job: JobRecord, *, store: Any, runner_id: str, data_dir: Path, cancelled: threading.Event,
         executor: DaskExecutor, clock: Callable[[], str], counters: execute._Counters,
         local: Callable[[str], execute.Finished]) -> execute.Finished:
    spec = job.job
    record, options = execute.model_and_options(spec, store)
    data_dir = data_dir.resolve()  # the workers' working directory is not the service's
    csv_settings = {**execute.DEFAULT_CSV, **(spec.get("csvSettings") or {})}
    extra = {"data_dir": str(data_dir), "chunk_bytes": execute.chunk_bytes(spec)}
    ctx = AdapterContext(job_id=job.id, store=store, csv=csv_settings, extra=extra)
    plan = planning.plan(spec, ctx, partition_bytes=executor.partition_bytes, partition_rows=executor.partition_rows)
    if not plan.partitions:
        return local(plan.reason)
    client = executor.client()
    _wait_for_workers(client, executor)
    intake_type = (spec.get("intakeSettings") or {}).get("type")
    output = spec.get("outputSettings") or {"type": "localFile"}
    shared = [data_dir] if "localFile" in (intake_type, output.get("type")) else []
    if intake_type == "dataset":
        shared.append(Path(plan.partitions[0].path).parent)
    for folder in shared:
        unseen = _workers_without(client, folder)
        if unseen:
            return local(f"the Dask workers {', '.join(unseen[:3])} cannot read the service's data directory "
                         f"{folder}; mount it at the same path on every worker to score such jobs there")
    committer = open_committer(spec, ctx, count=len(plan.partitions))
    committer.prepare()
    try:
        stored, data = store.get_model_artifact(record.deployment_id)
        blob = ModelBlob(sha256=stored.sha256, kind=stored.kind, data=bytes(data),
                         feature_names=list(stored.feature_names), class_names=list(stored.class_names or []))
        job_context = JobContext(job_id=job.id, intake=dict(spec["intakeSettings"]), output=dict(output),
                                 csv=csv_settings, options=options, store=resolve(spec, store), extra=extra,
                                 cancel_event=f"reconciler-cancel-{job.id}")
        results = _dispatch(job, plan, client, executor, blob, job_context, store=store, runner_id=runner_id,
                            cancelled=cancelled, clock=clock, counters=counters)
        boundary = _inside_quotes(plan, results)
        if boundary is not None:
            committer.abort()
            return local(f"a partition boundary ({boundary}) fell inside a quoted field that holds a line break, "
                         "so the job was scored again in one partition")
        errors = [r for r in sorted(results.values(), key=lambda r: r.index) if r.error]
        if errors:
            raise AdapterError(errors[0].error)
        committer.commit()
    except BaseException:
        committer.abort()
        raise
    scored = counters.rows - counters.failed
    details = (f"Job completed: {scored} row(s) scored" + (f", {counters.failed} failed" if counters.failed else "")
               + f" on the Dask cluster in {len(plan.partitions)} partitions")
    return execute.Finished("COMPLETED", details, percentage=100.0, scored_rows=scored, failed_rows=counters.failed,
                           output_bytes=committer.bytes_written)


def _wait_for_workers(client: Any, executor: DaskExecutor) -> None:
    try:
        client.wait_for_workers(1, timeout=executor.worker_wait_seconds)
    except TimeoutError:
        raise ClusterError(f"the Dask cluster at {executor.where} has no worker (waited "
                           f"{executor.worker_wait_seconds:g}s); start one with `dask worker "
                           f"{executor.config.address or 'ADDRESS'}`, then run the job again") from None


def _workers_without(client: Any, data_dir: Path) -> list[str]:
    seen = client.run(os.path.isdir, str(data_dir))
    return sorted(address for address, ok in seen.items() if not ok)


def _lost(executor: DaskExecutor, exc: BaseException) -> ClusterError:
    return ClusterError(f"lost the connection to the Dask scheduler at {executor.where} while the job ran "
                        f"({type(exc).__name__}); the job was stopped and its partial output removed; run it "
                        "again once the scheduler is back")


def _dispatch(job: JobRecord, plan: planning.PartitionPlan, client: Any, executor: DaskExecutor, blob: ModelBlob,
              job_context: JobContext, *, store: Any, runner_id: str, cancelled: threading.Event,
              clock: Callable[[], str], counters: execute._Counters) -> dict[int, PartResult]:
    """Submit every partition and collect the results; raises Cancelled, ClusterError or the
    first error that the split cannot have caused."""
    from distributed import Event, wait
    from distributed.client import FuturesCancelledError

    try:
        model = executor.shipped_model(client, blob)
    except (OSError, FuturesCancelledError) as exc:
        raise _lost(executor, exc) from exc
    try:
        pending = {client.submit(score_partition, model, job_context, p, pure=False,
                                 key=f"reconciler-{job.id}-{p.index:06d}"): p for p in plan.partitions}
    except (OSError, FuturesCancelledError) as exc:
        executor.release_model(model, client=client)
        raise _lost(executor, exc) from exc
    results: dict[int, PartResult] = {}
    done_weight = 0
    try:
        while pending:
            if cancelled.is_set():
                raise execute.Cancelled
            try:
                with client.as_current():  # the service's client is no process-wide default
                    finished = wait(list(pending), timeout=execute.PROGRESS_EVERY, return_when="FIRST_COMPLETED").done
            except TimeoutError:
                finished = set()
            except (OSError, FuturesCancelledError) as exc:
                raise _lost(executor, exc) from exc
            if client.status != "running":
                raise _lost(executor, ConnectionError("the client is " + str(client.status)))
            for future in finished:
                partition = pending.pop(future)
                result = _result(future, partition, executor)
                future.release()
                results[partition.index] = result
                done_weight += partition.weight
                counters.rows += result.rows
                counters.failed += result.failed
                if result.error and _decided(plan, results, result):
                    first = min((r for r in results.values() if r.error), key=lambda r: r.index)
                    raise AdapterError(first.error)
            percentage = round(min(99.0, 100.0 * done_weight / plan.total), 1)
            if not store.update_job_progress(job.id, runner_id, now=clock(), percentage=percentage,
                                             scored_rows=counters.rows - counters.failed, failed_rows=counters.failed):
                raise execute.Cancelled
    finally:
        if pending and client.status == "running":  # else the scheduler is gone: nothing is left to cancel
            try:
                Event(job_context.cancel_event, client=client).set()  # running tasks stop at their next chunk
                client.cancel(list(pending))
            except Exception:
                log.debug("cancelling the partitions of job %s failed", job.id, exc_info=True)
            _wait_stopped(client, job.id)
        executor.release_model(model, client=client if client.status == "running" else None)
    return results


def _wait_stopped(client: Any, job_id: str, timeout: float = STOP_WAIT) -> None:
    """Wait until no worker runs a partition of ``job_id`` (a cancelled task that already runs
    goes on until its next chunk), so that removing the parts afterwards is final: no part
    appears after the job's output was cleaned up. Two quiet polls in a row, for a task that
    was starting during the first."""
    from reconciler.service.runner.cluster.worker import running

    deadline = time.monotonic() + timeout
    quiet = 0
    while time.monotonic() < deadline:
        try:
            busy = client.run(running, job_id, on_error="ignore")
        except Exception:  # the scheduler is gone: its workers' tasks cannot report anything
            log.debug("asking the workers about job %s failed", job_id, exc_info=True)
            return
        quiet = quiet + 1 if not any(busy.values()) else 0
        if quiet >= 2:
            return
        time.sleep(0.1)
    log.warning("partitions of job %s still ran on Dask workers %gs after it was stopped; parts they write "
                "later are not removed", job_id, timeout)


def _result(future: Any, partition: planning.Partition, executor: DaskExecutor) -> PartResult:
    from distributed import KilledWorker
    from distributed.client import FuturesCancelledError

    try:
        result: PartResult = future.result()
    except KilledWorker as exc:
        raise ClusterError(f"{partition.describe()} was started on {exc.last_worker.address if exc.last_worker else 'workers'} "
                           "and its workers kept dying (Dask's allowed-failures was reached); check the workers' "
                           "memory limit and logs") from None
    except (FuturesCancelledError, OSError) as exc:
        raise _lost(executor, exc) from exc
    except Exception as exc:
        raise ClusterError(f"{partition.describe()} failed on a Dask worker: {type(exc).__name__}: {exc}") from None
    return result


def _prefix_parity(plan: planning.PartitionPlan, results: dict[int, PartResult], upto: int) -> str | None:
    """The first boundary at or before the end of partition ``upto`` that lies inside quotes,
    described, or None. Needs the results of partitions 0..upto."""
    if not plan.quote:
        return None
    counts = dict(plan.header_quotes)
    for partition in plan.partitions[: upto + 1]:
        counts[partition.group] = counts.get(partition.group, 0) + results[partition.index].quotes
        following = plan.partitions[partition.index + 1] if partition.index + 1 < len(plan.partitions) else None
        if following is not None and following.group == partition.group and counts[partition.group] % 2:
            return f"near byte {partition.end}" + (f" of {Path(partition.path).name}" if partition.path else "")
    return None


def _decided(plan: planning.PartitionPlan, results: dict[int, PartResult], failed: PartResult) -> bool:
    """Whether ``failed``'s error can stop the job now: it is not a CSV partition, or every
    partition up to it has reported and no boundary up to its end is inside quotes."""
    if not plan.quote:
        return True
    if any(p.index not in results for p in plan.partitions[: failed.index + 1]):
        return False
    return _prefix_parity(plan, results, failed.index) is None


def _inside_quotes(plan: planning.PartitionPlan, results: dict[int, PartResult]) -> str | None:
    return _prefix_parity(plan, results, len(plan.partitions) - 1)
