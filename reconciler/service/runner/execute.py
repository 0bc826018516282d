"""Run one claimed job to its end: model, intake, scoring, output, progress. Blocking; the pool
(``pool.py``) calls it in a worker thread.

Chunks flow in order: the intake yields a chunk, it is scored in the shared scoring thread pool,
and a writer thread of the job writes results in input order while the next chunks are read and
scored. At most ``numConcurrent`` chunks of one job are being scored at once (read ahead and
scoring in parallel) and at most two scored chunks wait for or are in the writer, which bounds
both the job's share of the pool and its memory. Between chunks the job records its progress; that write is also the cancel check: it
fails once the job is no longer this runner's RUNNING job (aborted by DELETE, or failed by the
lease check), and then the output is thrown away.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.service import errors, ids
from reconciler.service.records import JobRecord
from reconciler.service.runner import artifacts, scoring
from reconciler.service.runner.adapters.base import AdapterContext, AdapterError, open_intake, open_output

log = logging.getLogger("reconciler.service.runner")

DEFAULT_CSV = {"delimiter": ",", "quotechar": '"', "encoding": "utf-8"}
CHUNK_BYTES = {"fixed": 5 * 1024 * 1024}  # the API's "fixed" is 5 MB per chunk without explanations
PROGRESS_EVERY = 0.5  # seconds between progress writes (also the cancel-check latency bound)


class Cancelled(Exception):
    pass


@dataclass(slots=True)
class Finished:
    """How a job ended: its final status (COMPLETED, FAILED, ABORTED), details and counts."""

    status: str
    details: str
    percentage: float = 0.0
    scored_rows: int = 0
    failed_rows: int = 0
    output_bytes: int | None = None


@dataclass(slots=True)
class _Counters:
    rows: int = 0
    failed: int = 0


def chunk_bytes(spec: dict[str, Any]) -> int | None:
    size = spec.get("chunkSize")
    if isinstance(size, int):
        return size
    return CHUNK_BYTES.get(str(size))


def run_job(job: JobRecord, *, store: Any, runner_id: str, data_dir: Path, pool: Executor,
            cache: artifacts.ModelCache, cancelled: threading.Event,
            clock: Callable[[], str] = lambda: ids.iso(ids.utcnow())) -> Finished:
    """Execute ``job`` (already RUNNING for ``runner_id``); never raises, returns how it ended."""
    counters = _Counters()
    return finish(job, counters, lambda: _run(job, store=store, runner_id=runner_id, data_dir=data_dir, pool=pool,
                                                  cache=cache, cancelled=cancelled, clock=clock, counters=counters))


def finish(job: JobRecord, counters: _Counters, body: Callable[[], Finished]) -> Finished:
    """``body()``, or how the job ended when it raised: ABORTED on :class:`Cancelled`, FAILED
    with the error's message otherwise (an unexpected error also goes to the log). Shared by the
    local runner and the Dask driver (``cluster/driver.py``)."""
    try:
        return body()
    except Cancelled:
        return Finished("ABORTED", "Job aborted by the user", scored_rows=counters.rows - counters.failed,
                       failed_rows=counters.failed)
    except (scoring.ScoringError, AdapterError, artifacts.ArtifactError) as exc:
        return Finished("FAILED", str(exc), scored_rows=counters.rows - counters.failed, failed_rows=counters.failed)
    except errors.HTTPProblem as exc:
        return Finished("FAILED", exc.message + "".join(f"; {hint}" for hint in exc.errors.values()),
                       scored_rows=counters.rows - counters.failed, failed_rows=counters.failed)
    except Exception as exc:
        log.exception("job %s failed unexpectedly", job.id)
        return Finished("FAILED", f"internal error ({type(exc).__name__}: {exc}); see the service log",
                       scored_rows=counters.rows - counters.failed, failed_rows=counters.failed)


def model_and_options(spec: Mapping[str, Any], store: Any) -> tuple[Any, scoring.ScoringOptions]:
    """The deployment's registered model and the scoring options a job spec asks for."""
    deployment_id = spec.get("deploymentId")
    if not isinstance(deployment_id, str):
        raise scoring.ScoringError("the job has no deploymentId; the local service scores deployments only")
    record = store.get_model(deployment_id)
    return record, scoring.options_from_spec(spec, target=record.target_name, task=record.task,
                                             class_names=record.class_names)


def _run(job: JobRecord, *, store: Any, runner_id: str, data_dir: Path, pool: Executor, cache: artifacts.ModelCache,
         cancelled: threading.Event, clock: Callable[[], str], counters: _Counters) -> Finished:
    spec = job.job
    record, options = model_and_options(spec, store)

    def build() -> artifacts.LoadedModel:
        stored, data = store.get_model_artifact(record.deployment_id)
        return artifacts.load(stored.kind, data, feature_names=stored.feature_names,
                              class_names=stored.class_names or None)

    model = cache.get(record.deployment_id, record.sha256, build)
    csv_settings = {**DEFAULT_CSV, **(spec.get("csvSettings") or {})}
    ctx = AdapterContext(job_id=job.id, store=store, csv=csv_settings,
                         extra={"data_dir": str(data_dir), "chunk_bytes": chunk_bytes(spec)})
    in_flight = max(1, int(spec.get("numConcurrent") or 1))
    intake = open_intake(spec["intakeSettings"], ctx)
    try:
        output = open_output(spec.get("outputSettings") or {"type": "localFile"}, ctx)
        try:
            _pipeline(job.id, intake, output, model, options, pool=pool, in_flight=in_flight, store=store,
                      runner_id=runner_id, cancelled=cancelled, clock=clock, counters=counters)
            output.close()
        except BaseException:
            output.abort()
            raise
    finally:
        intake.close()
    written = getattr(output, "bytes_written", None)
    scored = counters.rows - counters.failed
    details = f"Job completed: {scored} row(s) scored" + (f", {counters.failed} failed" if counters.failed else "")
    return Finished("COMPLETED", details, percentage=100.0, scored_rows=scored, failed_rows=counters.failed,
                   output_bytes=written if isinstance(written, int) else None)


def _pipeline(job_id: str, intake: Any, output: Any, model: artifacts.LoadedModel, options: scoring.ScoringOptions,
              *, pool: Executor, in_flight: int, store: Any, runner_id: str, cancelled: threading.Event,
              clock: Callable[[], str], counters: _Counters) -> None:
    """Read, score and write overlap: this thread reads the intake and submits chunks to the
    scoring pool (at most ``in_flight`` at once); one writer thread of the job writes the scored
    chunks in input order (at most one chunk waits for it while it writes another), so a slow
    destination (a database's COPY, an S3 part upload) does not stall reading, and the other way
    round. Every output call happens on that writer thread, one at a time; ``close``/``abort``
    happen after it is idle. Counters (and progress) count written rows only."""
    pending: deque[Future[scoring.ScoredChunk]] = deque()
    writes: deque[tuple[Future[None], int, int]] = deque()
    writer = ThreadPoolExecutor(1, thread_name_prefix=f"reconciler-write-{job_id[-6:]}")
    fraction: Callable[[], float] | None = getattr(intake, "fraction_read", None)
    last_report = time.monotonic()
    next_row = 0

    def report(force: bool = False) -> None:
        nonlocal last_report
        if not force and time.monotonic() - last_report < PROGRESS_EVERY:
            return
        last_report = time.monotonic()
        percentage = round(min(99.0, 100.0 * fraction()), 1) if fraction is not None else 0.0
        alive = store.update_job_progress(job_id, runner_id, now=clock(), percentage=percentage,
                                          scored_rows=counters.rows - counters.failed, failed_rows=counters.failed)
        if not alive:
            raise Cancelled

    def finish_write() -> None:
        future, rows, failed = writes.popleft()
        future.result()
        counters.rows += rows
        counters.failed += failed

    def drain_one() -> None:
        done = pending.popleft().result()
        while writes and (len(writes) >= 2 or writes[0][0].done()):
            finish_write()
        writes.append((writer.submit(output.write, done.frame), done.rows, done.failed_rows))
        report()

    try:
        for chunk in intake.chunks():
            if cancelled.is_set():
                raise Cancelled
            pending.append(pool.submit(scoring.score_chunk, model, chunk, options, first_row=next_row))
            next_row += len(chunk)
            while len(pending) >= in_flight:
                drain_one()
        while pending:
            drain_one()
        while writes:
            finish_write()
        if cancelled.is_set():
            raise Cancelled
        report(force=True)
    finally:
        for future in pending:
            future.cancel()
        writer.shutdown(wait=True, cancel_futures=True)  # idle before the caller closes or aborts the output
