"""What runs on a Dask worker: scoring one partition into its part.

The model travels as a :class:`ModelBlob` (the artifact's bytes and description) that the driver
scatters to every worker once (``client.scatter(..., broadcast=True)``); every partition task of a
job takes the same blob, so a worker receives it once and loads it once per process
(:data:`RECEIVED` and :data:`LOADED` count both, per model; ``driver.worker_counts`` reads them).
The job's settings, scoring options and resolved references travel the same way (:class:`JobContext`).

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

from reconciler.service.runner import artifacts, execute, scoring
from reconciler.service.runner.adapters.base import AdapterContext, AdapterError
from reconciler.service.runner.cluster.partitions import Partition, open_partition
from reconciler.service.runner.cluster.parts import PartRecord, open_part
from reconciler.service.runner.cluster.resolved import ResolvedStore

__all__ = ["LOADED", "RECEIVED", "JobContext", "ModelBlob", "PartResult", "counts", "score_partition"]

RECEIVED: Counter[str] = Counter()  # model sha256 -> times this process received (unpickled) it
LOADED: Counter[str] = Counter()  # model sha256 -> times this process loaded it
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


def score_partition(blob: ModelBlob, job: JobContext, partition: Partition) -> PartResult:
    """Score ``partition`` into its part. Bad data and scoring errors come back as the result's
    ``error`` (with the partition's quote count: the driver decides whether the split caused
    them); anything else raises, and Dask reports it to the driver."""
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
            model = blob.model()
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


def counts() -> dict[str, dict[str, int]]:
    """This process's model counters (``client.run(counts)`` asks every worker)."""
    with _LOCK:
        return {"received": dict(RECEIVED), "loaded": dict(LOADED)}
