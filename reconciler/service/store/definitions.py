"""Job definitions: their rows, the references their job specs make to resources, and the
scheduler's queries. Name uniqueness is a unique index, so of two concurrent creates of one
name exactly one wins and the other gets :class:`errors.HTTPNameTaken`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from reconciler.service import errors
from reconciler.service.records import DefinitionRecord, Page, Reference, references
from reconciler.service.store.database import Database, dump, escape_like, load
from reconciler.service.store.resources import check_refs
from reconciler.service.store.tables import definition_refs, definitions, jobs

# ``definition_record`` unpacks a row of ``select(definitions)`` by position, in this order.
_DEFINITION_COLUMNS = ("id", "name", "enabled", "schedule", "job", "deployment_id", "created", "updated",
                       "created_by", "updated_by", "last_started_job_status", "last_started_job_time",
                       "last_scheduled_run_time", "last_successful_run_time", "last_failed_run_time")
if tuple(definitions.c.keys()) != _DEFINITION_COLUMNS:  # pragma: no cover - caught on import by any test
    raise RuntimeError("definitions columns changed: update _DEFINITION_COLUMNS and definition_record together")


def definition_record(row: Any) -> DefinitionRecord:
    # Positional, not ``row.name`` etc.: attribute access on a Row costs ~5 us per row for these
    # 15 columns, a tenth of a listing's server time. ``_DEFINITION_COLUMNS`` pins the order.
    (id_, name, enabled, schedule, job, _deployment, created, updated, created_by, updated_by,
     last_status, last_time, last_scheduled, last_successful, last_failed) = row
    return DefinitionRecord(
        id=id_, name=name, enabled=bool(enabled),
        schedule=None if schedule is None else load(schedule),
        job=load(job), created=created, updated=updated,
        created_by=load(created_by), updated_by=load(updated_by),
        last_started_job_status=last_status, last_started_job_time=last_time,
        last_scheduled_run_time=last_scheduled, last_successful_run_time=last_successful,
        last_failed_run_time=last_failed,
    )


def outcome_values(status: str, when: str) -> dict[str, Any]:
    """What a job's move to ``status`` at ``when`` sets on its definition."""
    values: dict[str, Any] = {"last_started_job_status": status}
    if status == "COMPLETED":
        values["last_successful_run_time"] = when
    elif status == "FAILED":
        values["last_failed_run_time"] = when
    return values


class Definitions(Database):
    """Queries of the definitions aggregate."""

    @staticmethod
    def _write_refs(conn: Connection, definition_id: str, refs: Sequence[Reference], *, new: bool = False) -> None:
        if not new:  # a new definition has no references to replace
            conn.execute(sa.delete(definition_refs).where(definition_refs.c.definition_id == definition_id))
        if refs:
            conn.execute(sa.insert(definition_refs), [
                {"definition_id": definition_id, "field": ref.field, "kind": ref.kind, "ref_id": ref.ref_id}
                for ref in refs])

    @staticmethod
    def _definition_row(record: DefinitionRecord) -> dict[str, Any]:
        return {
            "id": record.id, "name": record.name, "enabled": record.enabled,
            "schedule": None if record.schedule is None else dump(record.schedule),
            "job": dump(record.job), "deployment_id": record.job.get("deploymentId"),
            "created": record.created, "updated": record.updated,
            "created_by": dump(record.created_by), "updated_by": dump(record.updated_by),
            "last_started_job_status": record.last_started_job_status,
            "last_started_job_time": record.last_started_job_time,
            "last_scheduled_run_time": record.last_scheduled_run_time,
            "last_successful_run_time": record.last_successful_run_time,
            "last_failed_run_time": record.last_failed_run_time,
        }

    def _name_taken(self, exc: sa.exc.IntegrityError) -> bool:
        text = str(exc.orig).lower()
        return "uq_definitions_name" in text or "definitions.name" in text

    def create_definition(self, record: DefinitionRecord) -> DefinitionRecord:
        refs = references(record.job)
        try:
            with self._write() as conn:
                check_refs(conn, refs)
                # Parameters apart from the statement: SQLAlchemy compiles the INSERT once and
                # caches it, where .values(**row) built and keyed a new statement every time.
                conn.execute(sa.insert(definitions), self._definition_row(record))
                self._write_refs(conn, record.id, refs, new=True)
        except sa.exc.IntegrityError as exc:
            if self._name_taken(exc):
                raise errors.HTTPNameTaken(record.name) from None
            raise
        return record

    def get_definition(self, definition_id: str) -> DefinitionRecord:
        with self._read() as conn:
            row = conn.execute(sa.select(definitions).where(definitions.c.id == definition_id)).first()
        if row is None:
            raise definition_not_found(definition_id)
        return definition_record(row)

    def list_definitions(self, *, offset: int, limit: int, search_name: str | None = None,
                         deployment_id: str | None = None) -> Page:
        rows, total = self.list_definition_rows(offset=offset, limit=limit, search_name=search_name,
                                                deployment_id=deployment_id)
        return Page([definition_record(row) for row in rows], total)

    def list_definition_rows(self, *, offset: int, limit: int, search_name: str | None = None,
                             deployment_id: str | None = None) -> tuple[Sequence[sa.Row[Any]], int]:
        """A page of rows as stored (JSON columns as text, in ``_DEFINITION_COLUMNS`` order) and
        the total: what the listing renders without decoding each job spec."""
        where: list[sa.ColumnElement[bool]] = []
        if search_name:
            pattern = f"%{escape_like(search_name.lower())}%"
            where.append(sa.func.lower(definitions.c.name).like(pattern, escape="\\"))
        if deployment_id:
            where.append(definitions.c.deployment_id == deployment_id)
        with self._read() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(definitions).where(*where)).scalar_one()
            # the page's ids first (the offset walks the covering index (created, id) alone), then
            # their rows: ~25% less than OFFSET over whole rows at offset 50,000 of 100,000 (SQLite)
            page = (sa.select(definitions.c.id).where(*where).order_by(definitions.c.created, definitions.c.id)
                    .offset(offset).limit(limit).subquery())
            rows = conn.execute(sa.select(definitions).join(page, definitions.c.id == page.c.id)
                                .order_by(definitions.c.created, definitions.c.id)).all()
        return rows, int(total)

    def update_definition(self, definition_id: str,
                          change: Callable[[DefinitionRecord], DefinitionRecord]) -> DefinitionRecord:
        """Read, ``change`` (pure; may raise an HTTPProblem), write: all under the row's write lock."""
        try:
            with self._write() as conn:
                row = conn.execute(sa.select(definitions).where(definitions.c.id == definition_id)
                                   .with_for_update()).first()
                if row is None:
                    raise definition_not_found(definition_id)
                updated = change(definition_record(row))
                refs = references(updated.job)
                check_refs(conn, refs)
                values = self._definition_row(updated)
                del values["id"]
                conn.execute(sa.update(definitions).where(definitions.c.id == definition_id).values(**values))
                self._write_refs(conn, definition_id, refs)
        except sa.exc.IntegrityError as exc:
            if self._name_taken(exc):
                raise errors.HTTPNameTaken(updated.name) from None
            raise
        return updated

    def delete_definition(self, definition_id: str) -> None:
        with self._write() as conn:
            row = conn.execute(sa.select(definitions.c.id).where(definitions.c.id == definition_id)
                               .with_for_update()).first()
            if row is None:
                raise definition_not_found(definition_id)
            running = conn.execute(sa.select(sa.func.count()).select_from(jobs).where(
                jobs.c.definition_id == definition_id, jobs.c.status == "RUNNING")).scalar_one()
            if running:
                raise errors.HTTPConflict(f"job definition {definition_id} has {running} running job(s)",
                                      errors={"id": "wait for the jobs to finish or abort them "
                                                    "(DELETE batchPredictions/{jobId}/), then delete again"})
            conn.execute(sa.delete(definitions).where(definitions.c.id == definition_id))
            conn.execute(sa.delete(definition_refs).where(definition_refs.c.definition_id == definition_id))

    def scheduled_timings(self) -> list[tuple[str, str, str, str | None]]:
        """``(id, schedule as stored JSON text, updated, last_scheduled_run_time)`` of the enabled
        definitions that have a schedule: all a scheduler pass needs to find the due ones, without
        decoding 100,000 job specs every few seconds (that pass held the GIL for most of a second
        and made every request wait)."""
        with self._read() as conn:
            rows = conn.execute(sa.select(definitions.c.id, definitions.c.schedule, definitions.c.updated,
                                          definitions.c.last_scheduled_run_time)
                                .where(definitions.c.enabled.is_(True), definitions.c.schedule.is_not(None))
                                .order_by(definitions.c.id)).all()
        return [(row[0], row[1], row[2], row[3]) for row in rows]

    def scheduled_definitions(self) -> list[DefinitionRecord]:
        """Enabled definitions that have a schedule: what the scheduler looks at on each tick."""
        with self._read() as conn:
            rows = conn.execute(sa.select(definitions).where(definitions.c.enabled.is_(True),
                                                             definitions.c.schedule.is_not(None))
                                .order_by(definitions.c.id)).all()
        return [definition_record(row) for row in rows]



def definition_not_found(definition_id: str, *, field: str = "id") -> errors.HTTPNotFound:
    return errors.HTTPNotFound(f"no job definition with id {definition_id!r}",
                           errors={field: "it was deleted or never existed; list definitions with "
                                          "GET batchPredictionJobDefinitions/"})
