"""Batch prediction jobs: queued from a definition (run-once or the scheduler) or ad hoc, claimed,
advanced and finished by runners under a lease, each move mirrored on the job's definition."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from reconciler.service import errors
from reconciler.service.records import DefinitionRecord, JobRecord, Page, references, upload_state
from reconciler.service.store.database import Database, dump, load
from reconciler.service.store.definitions import definition_not_found, definition_record, outcome_values
from reconciler.service.store.resources import check_refs
from reconciler.service.store.tables import definitions, jobs


def _insert_job(conn: Connection, job: JobRecord) -> None:
    """Queue ``job``, its upload state (``job.upload``) set from its intake."""
    job.upload = upload_state(job.job)
    conn.execute(sa.insert(jobs).values(
        id=job.id, status=job.status, status_details=job.status_details, job=dump(job.job),
        definition_id=job.definition_id, definition_name=job.definition_name,
        deployment_id=job.job.get("deploymentId"), source=job.source, created=job.created,
        updated=job.updated, created_by=dump(job.created_by), upload=job.upload))


class Jobs(Database):
    """Queries of the jobs aggregate."""

    @staticmethod
    def _job(row: Any) -> JobRecord:
        return JobRecord(id=row.id, status=row.status, status_details=row.status_details, job=load(row.job),
                         created=row.created, updated=row.updated, created_by=load(row.created_by),
                         definition_id=row.definition_id, definition_name=row.definition_name, source=row.source,
                         upload=row.upload, percentage=float(row.percentage), scored_rows=int(row.scored_rows),
                         failed_rows=int(row.failed_rows), skipped_rows=int(row.skipped_rows),
                         intake_bytes=row.intake_bytes, output_bytes=row.output_bytes, started=row.started,
                         heartbeat=row.heartbeat, runner=row.runner)

    def start_job_from_definition(self, definition_id: str, make: Callable[[DefinitionRecord], JobRecord]) -> JobRecord:
        """Queue a job built by ``make`` from the definition and record it as the definition's latest."""
        with self._write() as conn:
            return self._start_job(conn, definition_id, make)

    @staticmethod
    def _start_job(conn: Connection, definition_id: str,
                   make: Callable[[DefinitionRecord], JobRecord]) -> JobRecord:
        """The one job-queuing path, shared by run-once and the scheduler (inside their transaction)."""
        row = conn.execute(sa.select(definitions).where(definitions.c.id == definition_id)
                           .with_for_update()).first()
        if row is None:
            raise definition_not_found(definition_id, field="jobDefinitionId")
        job = make(definition_record(row))
        _insert_job(conn, job)
        failed_now = {"last_failed_run_time": job.created} if job.status == "FAILED" else {}  # cannot run here
        conn.execute(sa.update(definitions).where(definitions.c.id == definition_id).values(
            last_started_job_status=job.status, last_started_job_time=job.created, **failed_now))
        return job

    def get_job(self, job_id: str) -> JobRecord:
        with self._read() as conn:
            row = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).first()
        if row is None:
            raise _job_not_found(job_id)
        return self._job(row)

    def list_jobs(self, *, offset: int, limit: int, statuses: Sequence[str] = (),
                  definition_id: str | None = None, deployment_id: str | None = None,
                  order_by: str = "created") -> Page:
        """A page of jobs; ``order_by`` is the API's ``orderBy`` (``created``/``status``, ``-`` for descending)."""
        column = jobs.c.status if order_by.lstrip("-") == "status" else jobs.c.created
        order = [column.desc(), jobs.c.created.desc(), jobs.c.id.desc()] if order_by.startswith("-") else [
            column, jobs.c.created, jobs.c.id]
        where: list[sa.ColumnElement[bool]] = []
        if statuses:
            where.append(jobs.c.status.in_(list(statuses)))
        if definition_id:
            where.append(jobs.c.definition_id == definition_id)
        if deployment_id:
            where.append(jobs.c.deployment_id == deployment_id)
        with self._read() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(jobs).where(*where)).scalar_one()
            rows = conn.execute(sa.select(jobs).where(*where).order_by(*order)
                                .offset(offset).limit(limit)).all()
        return Page([self._job(row) for row in rows], int(total))

    def set_job_status(self, job_id: str, *, status: str, details: str, now: str,
                       only_from: Sequence[str] = ()) -> JobRecord:
        """Move a job to a new status and mirror it on its definition (the runner's entry point).

        ``only_from``: the statuses the job may be in now; otherwise 409, checked under the lock.
        """
        with self._write() as conn:
            row = conn.execute(sa.select(jobs).where(jobs.c.id == job_id).with_for_update()).first()
            if row is None:
                raise _job_not_found(job_id)
            if only_from and row.status not in only_from:
                raise errors.HTTPConflict(f"job {job_id} is {row.status}", errors={
                    "status": f"expected the job to be {' or '.join(only_from)}; it has already finished"})
            conn.execute(sa.update(jobs).where(jobs.c.id == job_id).values(
                status=status, status_details=details, updated=now))
            self._mirror_on_definition(conn, row, status, now)
            row = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).one()
        return self._job(row)

    def start_scheduled_job(self, definition_id: str, *, due: str,
                            make: Callable[[DefinitionRecord], JobRecord]) -> JobRecord | None:
        """Claim the firing ``due`` and queue its job in ONE transaction, or None if already claimed.

        The claim is a conditional UPDATE of ``last_scheduled_run_time`` (timestamps are
        fixed-width ISO strings, so they compare as text): of any number of processes trying the
        same firing, exactly one updates the row; the others see 0 rows and skip. Claim and job
        commit together, so a crash between them loses neither nor runs the firing twice. The row is
        locked first ``SKIP LOCKED`` (PostgreSQL): a definition another replica is claiming right now
        is skipped instead of waited for (its claim wins, or the next pass looks again).
        """
        with self._write() as conn:
            mine = conn.execute(sa.select(definitions.c.id).where(definitions.c.id == definition_id)
                                .with_for_update(skip_locked=True)).first()
            if mine is None:
                return None
            won = conn.execute(sa.update(definitions).where(
                definitions.c.id == definition_id,
                definitions.c.enabled.is_(True),
                definitions.c.schedule.is_not(None),
                sa.or_(definitions.c.last_scheduled_run_time.is_(None),
                       definitions.c.last_scheduled_run_time < due),
            ).values(last_scheduled_run_time=due))
            if won.rowcount != 1:
                return None
            return self._start_job(conn, definition_id, make)

    def create_job(self, job: JobRecord) -> JobRecord:
        """Queue an ad-hoc job (``POST batchPredictions/``); its references are checked first."""
        with self._write() as conn:
            check_refs(conn, references(job.job))
            _insert_job(conn, job)
        return job

    def complete_upload(self, job_id: str, *, intake_bytes: int, now: str) -> JobRecord:
        """The localFile upload arrived in full: the job becomes claimable. 409 unless it waited."""
        with self._write() as conn:
            done = conn.execute(sa.update(jobs).where(
                jobs.c.id == job_id, jobs.c.status == "INITIALIZING", jobs.c.upload == "waiting",
            ).values(upload="done", intake_bytes=intake_bytes, updated=now))
            row = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).first()
        if row is None:
            raise _job_not_found(job_id)
        if done.rowcount != 1:
            raise _not_waiting_for_upload(self._job(row))
        return self._job(row)

    def check_upload_allowed(self, job_id: str) -> JobRecord:
        """The job, if it is still waiting for its localFile upload; else 404 / 409."""
        job = self.get_job(job_id)
        if job.status != "INITIALIZING" or job.upload != "waiting":
            raise _not_waiting_for_upload(job)
        return job

    def claim_next_job(self, runner_id: str, *, now: str) -> JobRecord | None:
        """Atomically move the oldest runnable queued job to RUNNING for ``runner_id``.

        The claim is ``UPDATE ... WHERE status = 'INITIALIZING'`` checked by its rowcount: of two
        processes racing for one job exactly one sees rowcount 1 (PostgreSQL re-checks the WHERE
        after the row lock; SQLite serialises writers with BEGIN IMMEDIATE). On PostgreSQL the
        candidate is read ``FOR UPDATE SKIP LOCKED``, one row: replicas claiming at the same moment
        take different jobs instead of queueing behind one another's row locks (and none locks more
        than the job it takes, so none finds the queue empty while jobs wait).
        """
        with self._write() as conn:
            candidates = conn.execute(sa.select(jobs.c.id).where(
                jobs.c.status == "INITIALIZING", jobs.c.upload != "waiting",
            ).order_by(jobs.c.created, jobs.c.id).limit(1).with_for_update(skip_locked=True)).scalars().all()
            for job_id in candidates:
                won = conn.execute(sa.update(jobs).where(
                    jobs.c.id == job_id, jobs.c.status == "INITIALIZING", jobs.c.upload != "waiting",
                ).values(status="RUNNING", status_details=f"Job started at {now}", runner=runner_id,
                         started=now, heartbeat=now, updated=now))
                if won.rowcount != 1:
                    continue
                row = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).one()
                self._mirror_on_definition(conn, row, "RUNNING", now)
                return self._job(row)
        return None

    def update_job_progress(self, job_id: str, runner_id: str, *, now: str, percentage: float,
                            scored_rows: int, failed_rows: int, intake_bytes: int | None = None) -> bool:
        """Record progress and renew the lease; False when the job is no longer this runner's
        RUNNING job (aborted, or failed by lease expiry): the runner's cancel signal."""
        values: dict[str, Any] = {"percentage": percentage, "scored_rows": scored_rows,
                                  "failed_rows": failed_rows, "heartbeat": now}
        if intake_bytes is not None:
            values["intake_bytes"] = intake_bytes
        with self._write() as conn:
            done = conn.execute(sa.update(jobs).where(
                jobs.c.id == job_id, jobs.c.status == "RUNNING", jobs.c.runner == runner_id).values(**values))
        return bool(done.rowcount == 1)

    def renew_job_leases(self, runner_id: str, job_ids: Sequence[str], *, now: str) -> None:
        if not job_ids:
            return
        with self._write() as conn:
            conn.execute(sa.update(jobs).where(jobs.c.id.in_(list(job_ids)), jobs.c.status == "RUNNING",
                                               jobs.c.runner == runner_id).values(heartbeat=now))

    def finish_job(self, job_id: str, runner_id: str, *, status: str, details: str, now: str,
                   percentage: float, scored_rows: int, failed_rows: int,
                   output_bytes: int | None = None) -> JobRecord | None:
        """RUNNING -> COMPLETED / FAILED / ABORTED by the runner that holds it; None when the job
        was already moved (an abort wins over a late completion)."""
        with self._write() as conn:
            done = conn.execute(sa.update(jobs).where(
                jobs.c.id == job_id, jobs.c.status == "RUNNING", jobs.c.runner == runner_id,
            ).values(status=status, status_details=details, updated=now, percentage=percentage,
                     scored_rows=scored_rows, failed_rows=failed_rows, output_bytes=output_bytes, heartbeat=now))
            if done.rowcount != 1:
                return None
            row = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).one()
            self._mirror_on_definition(conn, row, status, now)
        return self._job(row)

    def fail_abandoned_jobs(self, *, lease_expired_before: str, now: str, details: str,
                            runner_id: str | None = None) -> list[JobRecord]:
        """FAIL jobs left RUNNING by a runner that is gone: its lease (heartbeat) expired, or
        (``runner_id``) it is this process's own runner shutting down. Returns the jobs this call
        failed, as now recorded (the caller tells job.failed about them)."""
        failed: list[JobRecord] = []
        with self._write() as conn:
            stale = sa.or_(jobs.c.heartbeat.is_(None), jobs.c.heartbeat < lease_expired_before)
            where = [jobs.c.status == "RUNNING", stale if runner_id is None else jobs.c.runner == runner_id]
            # in id order: two replicas failing the same jobs lock them in the same order (no deadlock)
            rows = conn.execute(sa.select(jobs).where(*where).order_by(jobs.c.id).with_for_update()).all()
            for row in rows:
                moved = conn.execute(sa.update(jobs).where(jobs.c.id == row.id, *where).values(
                    status="FAILED", status_details=details, updated=now))
                if moved.rowcount != 1:  # another replica failed it first: it tells, not this one
                    continue
                self._mirror_on_definition(conn, row, "FAILED", now)
                failed.append(dataclasses.replace(self._job(row), status="FAILED", status_details=details,
                                                  updated=now))
        return failed

    @staticmethod
    def _mirror_on_definition(conn: Connection, row: Any, status: str, now: str) -> None:
        if not row.definition_id:
            return
        # only while the job is still the definition's latest (a newer one owns the status)
        conn.execute(sa.update(definitions).where(definitions.c.id == row.definition_id,
                                                  definitions.c.last_started_job_time == row.created)
                     .values(**outcome_values(status, now)))


def _job_not_found(job_id: str) -> errors.HTTPNotFound:
    return errors.HTTPNotFound(f"no batch prediction job with id {job_id!r}",
                           errors={"id": "list jobs with GET batchPredictions/"})


def _not_waiting_for_upload(job: JobRecord) -> errors.HTTPConflict:
    if job.upload == "none":
        why = "its intake is not localFile; only localFile jobs take an upload"
    elif job.upload == "done":
        why = "its data was already uploaded"
    elif job.status in ("FAILED", "ABORTED"):
        return errors.HTTPConflict(f"job {job.id} does not accept an upload: it is {job.status}: {job.status_details}",
                               errors={"csvUpload": "fix what the message names, then start a new job"})
    else:
        why = f"it is {job.status}"
    return errors.HTTPConflict(f"job {job.id} does not accept an upload: {why}",
                           errors={"csvUpload": "start a new job with localFile intake to upload data"})
