"""What runs on a Dask worker: scoring one partition into its part.

The model travels as a :class:`ModelBlob` (the artifact's bytes and description) inside a Dask
worker plugin (:class:`ModelPlugin`, registered by the driver once per model): the scheduler sends
it to every worker once, and to every worker that joins later (one that replaces a killed worker),
before that worker runs a task. A partition task names the model by its sha256 and finds it in
this process (:data:`MODELS`), so no task carries the model and no worker fetches it from another.
(A broadcast ``client.scatter`` is not enough: Dask's active memory manager drops the extra
replicas, and the workers then fetch the model again per job.) :data:`RECEIVED` and
:data:`LOADED` count, per model, how often this process received and loaded it
(the scale-out tests read them). The job's settings, scoring options and resolved
references (:class:`JobContext`, a few kB) travel with each task.

A partition is scored by the runner's own chunk pipeline (``execute._pipeline``: read, score
and write overlap), whose progress hook here is the job's cancel check: a Dask ``Event`` the
driver sets when the job is aborted, read at most every ``execute.PROGRESS_EVERY`` seconds.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from reconciler.service.runner import artifacts, execute, scoring
from reconciler.service.runner.adapters.base import AdapterContext, AdapterError
from reconciler.service.runner.cluster.partitions import Partition, open_partition
from reconciler.service.runner.cluster.parts import PartRecord, open_part
from reconciler.service.runner.cluster.resolved import ResolvedStore

__all__ = ["ACTIVE", "LOADED", "MODELS", "RECEIVED", "JobContext", "ModelBlob", "ModelPlugin", "PartResult", "counts",
           "running", "score_partition"]

RECEIVED: Counter[str] = Counter()  # model sha256 -> times this process received (unpickled) it
LOADED: Counter[str] = Counter()  # model sha256 -> times this process loaded it
ACTIVE: Counter[str] = Counter()  # job id -> its partitions running in this process
MODELS: dict[str, ModelBlob] = {}  # model sha256 -> the blob its plugin installed in this process
_CACHE = artifacts.ModelCache()
_LOCK = threading.Lock()


class ModelBlob:
    """A model artifact on its way to the workers: bytes plus what ``artifacts.load`` needs."""

    def __init__(self, *, sha256: str, kind: str, data: bytes, feature_names: list[str],
                 class_names: list[str]) -> None:
        self.sha256 = sha256
        self.kind = kind
        self.data = data
        self.feature_names = feature_names
        self.class_names = class_names

    def __getstate__(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        with _LOCK:
            RECEIVED[self.sha256] += 1

    def model(self) -> artifacts.LoadedModel:
        def build() -> artifacts.LoadedModel:
            with _LOCK:
                LOADED[self.sha256] += 1
            return artifacts.load(self.kind, self.data, feature_names=self.feature_names,
                                  class_names=self.class_names or None)

        return _CACHE.get(self.sha256, self.sha256, build)


class ModelPlugin(WorkerPlugin):
    """Installs one model in every worker process (``client.register_plugin``). Idempotent: a
    second registration under the same name (another job, another service replica) sends nothing."""

    idempotent = True

    def __init__(self, blob: ModelBlob) -> None:
        self.blob = blob

    @staticmethod
    def name_for(sha256: str) -> str:
        return f"reconciler-model-{sha256}"

    def setup(self, worker: Any) -> None:
        with _LOCK:
            MODELS[self.blob.sha256] = self.blob

    def teardown(self, worker: Any) -> None:
        with _LOCK:
            MODELS.pop(self.blob.sha256, None)


def installed_model(sha256: str) -> ModelBlob:
    with _LOCK:
        blob = MODELS.get(sha256)
    if blob is None:  # the driver registers the plugin before it submits a task of the model
        raise RuntimeError(f"model {sha256[:12]} is not installed on this Dask worker (its plugin "
                           f"{ModelPlugin.name_for(sha256)} was unregistered while a job used it)")
    return blob


@dataclass(frozen=True)
class JobContext:
    job_id: str
    intake: dict[str, Any]
    output: dict[str, Any]
    csv: dict[str, str]
    options: scoring.ScoringOptions
    store: ResolvedStore = field(repr=False)
    extra: dict[str, Any] = field(default_factory=dict)
    cancel_event: str = ""

    def adapter_context(self) -> AdapterContext:
        return AdapterContext(job_id=self.job_id, store=self.store, csv=self.csv, extra=self.extra)


@dataclass(frozen=True, slots=True)
class PartResult:
    """How one partition ended: its rows, the quote characters of its range (CSV), or the error
    that stops the job (``error``, with the partition named), or that it was cancelled."""

    index: int
    rows: int = 0
    failed: int = 0
    quotes: int = 0
    error: str = ""
    cancelled: bool = False
    worker: str = ""
    pid: int = 0


class _CancelWatch:
    """The pipeline's progress hook on a worker: False (stop) once the job's cancel event is set."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._event: Any = None

    def update_job_progress(self, *_: Any, **__: Any) -> bool:
        if not self.name:
            return True
        if self._event is None:
            from distributed import Event

            self._event = Event(self.name)
        return not bool(self._event.is_set())


def _worker_address() -> str:
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except ValueError:  # not inside a worker (a test calling the function directly)
        return ""


def score_partition(model_sha256: str, job: JobContext, partition: Partition) -> PartResult:
    """Score ``partition`` into its part. Bad data and scoring errors come back as the result's
    ``error`` (with the partition's quote count: the driver decides whether the split caused
    them); anything else raises, and Dask reports it to the driver. While it runs it counts in
    :data:`ACTIVE`: a job that ends early removes its parts only once none is running
    (``driver._wait_stopped``); one that starts after the job was cancelled does nothing."""
    with _LOCK:
        ACTIVE[job.job_id] += 1
    try:
        if not _CancelWatch(job.cancel_event).update_job_progress():
            return PartResult(partition.index, cancelled=True, worker=_worker_address(), pid=os.getpid())
        return _score(model_sha256, job, partition)
    finally:
        with _LOCK:
            ACTIVE[job.job_id] -= 1
            if ACTIVE[job.job_id] <= 0:
                del ACTIVE[job.job_id]


def _score(model_sha256: str, job: JobContext, partition: Partition) -> PartResult:
    worker, pid = _worker_address(), os.getpid()
    ctx = job.adapter_context()
    intake = open_partition(job.intake, ctx, partition)
    counters = execute._Counters()
    try:
        part: Any = open_part(job.output, ctx, index=partition.index)
        earlier = part.done_before() if hasattr(part, "done_before") else None
        if earlier is not None:  # an earlier attempt committed this partition (JDBC ledger)
            part.abort()
            return PartResult(partition.index, rows=earlier.rows, failed=earlier.failed, worker=worker, pid=pid)
        try:
            model = installed_model(model_sha256).model()
            with ThreadPoolExecutor(1, thread_name_prefix="reconciler-part") as pool:
                execute._pipeline(job.job_id, intake, part, model, job.options, pool=pool, in_flight=2,
                                  store=_CancelWatch(job.cancel_event), runner_id="", cancelled=threading.Event(),
                                  clock=lambda: "", counters=counters)
            record = getattr(part, "record", None)
            if isinstance(record, PartRecord):
                record.rows, record.failed = counters.rows, counters.failed
            part.close()
            recorded = getattr(part, "recorded", None)
            if isinstance(recorded, PartRecord):  # a racing attempt committed it first
                return PartResult(partition.index, rows=recorded.rows, failed=recorded.failed,
                                  quotes=intake.quotes(), worker=worker, pid=pid)
        except BaseException:
            part.abort()
            raise
    except execute.Cancelled:
        return PartResult(partition.index, cancelled=True, worker=worker, pid=pid)
    except (scoring.ScoringError, AdapterError) as exc:
        try:
            quotes = intake.quotes()
        except Exception:  # the range cannot be read again: the error stands as it is
            quotes = 0
        return PartResult(partition.index, quotes=quotes, error=f"{partition.describe()}: {exc}", worker=worker, pid=pid)
    finally:
        intake.close()
    return PartResult(partition.index, rows=counters.rows, failed=counters.failed, quotes=intake.quotes(), worker=worker, pid=pid)


def running(job_id: str) -> int:
    """Partitions of ``job_id`` running in this process (``client.run(running, job_id)``)."""
    with _LOCK:
        return ACTIVE.get(job_id, 0)


def counts() -> dict[str, dict[str, int]]:
    """This process's model counters (``client.run(counts)`` asks every worker)."""
    with _LOCK:
        return {"received": dict(RECEIVED), "loaded": dict(LOADED)}
