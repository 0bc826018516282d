"""Storage for the local service: SQLAlchemy Core over SQLite (default) or PostgreSQL.

The only module that talks SQL. Everything it returns is a plain record (``records.py``).

Schema versions: a ``schema_version`` table and an ordered list of migration functions, not
alembic. The schema is small and owned by this one module; a list of functions runs in-process
on both dialects with no extra config files or CLI, and each migration runs in its own
transaction under a lock (``BEGIN IMMEDIATE`` on SQLite, an advisory lock on PostgreSQL) so two
processes starting at once do not both migrate. Migrations define their own tables and are never
edited once shipped; add a new function instead.

Concurrency: every read-modify-write runs in one transaction that takes the write lock first
(``BEGIN IMMEDIATE`` on SQLite, ``SELECT ... FOR UPDATE`` on PostgreSQL), so two PATCHes of
different fields both survive. Name uniqueness is a unique index, so of two concurrent creates
of one name exactly one wins and the other gets :class:`errors.NameTaken`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from reconciler.extras import require
from reconciler.service import errors
from reconciler.service.records import (
    DatasetRecord,
    DefinitionRecord,
    JobRecord,
    ModelRecord,
    Page,
    Reference,
    ResourceRecord,
    references,
    upload_state,
)

_meta = sa.MetaData()

definitions = sa.Table(
    "definitions", _meta,
    sa.Column("id", sa.String(24), primary_key=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("schedule", sa.Text, nullable=True),
    sa.Column("job", sa.Text, nullable=False),
    sa.Column("deployment_id", sa.String(24), nullable=True),
    sa.Column("created", sa.String(32), nullable=False),
    sa.Column("updated", sa.String(32), nullable=False),
    sa.Column("created_by", sa.Text, nullable=False),
    sa.Column("updated_by", sa.Text, nullable=False),
    sa.Column("last_started_job_status", sa.String(16), nullable=True),
    sa.Column("last_started_job_time", sa.String(32), nullable=True),
    sa.Column("last_scheduled_run_time", sa.String(32), nullable=True),
    sa.Column("last_successful_run_time", sa.String(32), nullable=True),
    sa.Column("last_failed_run_time", sa.String(32), nullable=True),
)
definition_refs = sa.Table(
    "definition_refs", _meta,
    sa.Column("definition_id", sa.String(24), primary_key=True),
    sa.Column("field", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("ref_id", sa.String(24), nullable=False),
)
jobs = sa.Table(
    "jobs", _meta,
    sa.Column("id", sa.String(24), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("status_details", sa.Text, nullable=False),
    sa.Column("job", sa.Text, nullable=False),
    sa.Column("definition_id", sa.String(24), nullable=True),
    sa.Column("definition_name", sa.String(100), nullable=True),
    sa.Column("deployment_id", sa.String(24), nullable=True),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("created", sa.String(32), nullable=False),
    sa.Column("updated", sa.String(32), nullable=False),
    sa.Column("created_by", sa.Text, nullable=False),
    # added by _migration_runner (job execution, issue #8)
    sa.Column("upload", sa.String(16), nullable=False, server_default="none"),
    sa.Column("percentage", sa.Float, nullable=False, server_default="0"),
    sa.Column("scored_rows", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("failed_rows", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("skipped_rows", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("intake_bytes", sa.BigInteger, nullable=True),
    sa.Column("output_bytes", sa.BigInteger, nullable=True),
    sa.Column("started", sa.String(32), nullable=True),
    sa.Column("heartbeat", sa.String(32), nullable=True),
    sa.Column("runner", sa.String(64), nullable=True),
)
resources = sa.Table(
    "resources", _meta,
    sa.Column("id", sa.String(24), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("created", sa.String(32), nullable=False),
    sa.Column("created_by", sa.Text, nullable=False),
)
schema_version = sa.Table("schema_version", _meta, sa.Column("version", sa.Integer, nullable=False))
# ``Store._definition`` unpacks a row of ``select(definitions)`` by position, in this order.
_DEFINITION_COLUMNS = ("id", "name", "enabled", "schedule", "job", "deployment_id", "created", "updated",
                       "created_by", "updated_by", "last_started_job_status", "last_started_job_time",
                       "last_scheduled_run_time", "last_successful_run_time", "last_failed_run_time")
if tuple(definitions.c.keys()) != _DEFINITION_COLUMNS:  # pragma: no cover - caught on import by any test
    raise RuntimeError("definitions columns changed: update _DEFINITION_COLUMNS and Store._definition together")


def _migration_1(conn: Connection) -> None:
    """First version. Defines its own copy of the tables so later edits above cannot change it."""
    meta = sa.MetaData()
    sa.Table(
        "definitions", meta,
        sa.Column("id", sa.String(24), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("schedule", sa.Text, nullable=True),
        sa.Column("job", sa.Text, nullable=False),
        sa.Column("deployment_id", sa.String(24), nullable=True),
        sa.Column("created", sa.String(32), nullable=False),
        sa.Column("updated", sa.String(32), nullable=False),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("updated_by", sa.Text, nullable=False),
        sa.Column("last_started_job_status", sa.String(16), nullable=True),
        sa.Column("last_started_job_time", sa.String(32), nullable=True),
        sa.Column("last_scheduled_run_time", sa.String(32), nullable=True),
        sa.Column("last_successful_run_time", sa.String(32), nullable=True),
        sa.Column("last_failed_run_time", sa.String(32), nullable=True),
        sa.Index("uq_definitions_name", "name", unique=True),
        sa.Index("ix_definitions_created", "created", "id"),
        sa.Index("ix_definitions_deployment", "deployment_id"),
    )
    sa.Table(
        "definition_refs", meta,
        sa.Column("definition_id", sa.String(24), primary_key=True),
        sa.Column("field", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("ref_id", sa.String(24), nullable=False),
        sa.Index("ix_definition_refs_target", "ref_id"),
    )
    sa.Table(
        "jobs", meta,
        sa.Column("id", sa.String(24), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_details", sa.Text, nullable=False),
        sa.Column("job", sa.Text, nullable=False),
        sa.Column("definition_id", sa.String(24), nullable=True),
        sa.Column("definition_name", sa.String(100), nullable=True),
        sa.Column("deployment_id", sa.String(24), nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("created", sa.String(32), nullable=False),
        sa.Column("updated", sa.String(32), nullable=False),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Index("ix_jobs_created", "created", "id"),
        sa.Index("ix_jobs_definition", "definition_id"),
    )
    sa.Table(
        "resources", meta,
        sa.Column("id", sa.String(24), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created", sa.String(32), nullable=False),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Index("ix_resources_kind", "kind", "created", "id"),
    )
    meta.create_all(conn)


credential_secrets = sa.Table(
    "credential_secrets", _meta,
    sa.Column("credential_id", sa.String(24), primary_key=True),
    sa.Column("secret", sa.Text, nullable=False),
)
datasets = sa.Table(
    "datasets", _meta,
    sa.Column("id", sa.String(24), primary_key=True),
    sa.Column("version_id", sa.String(24), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("row_count", sa.BigInteger, nullable=False),
    sa.Column("columns", sa.Text, nullable=False),
    sa.Column("categories", sa.Text, nullable=False),
    sa.Column("created", sa.String(32), nullable=False),
    sa.Column("created_by", sa.Text, nullable=False),
)


def _migration_storage(conn: Connection) -> None:
    """Secrets of credentials (kept apart from ``resources.body``, which responses render, so a
    secret can never reach a response by accident) and AI Catalog datasets (issue #8)."""
    meta = sa.MetaData()
    sa.Table(
        "credential_secrets", meta,
        sa.Column("credential_id", sa.String(24), primary_key=True),
        sa.Column("secret", sa.Text, nullable=False),
    )
    sa.Table(
        "datasets", meta,
        sa.Column("id", sa.String(24), primary_key=True),
        sa.Column("version_id", sa.String(24), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("row_count", sa.BigInteger, nullable=False),
        sa.Column("columns", sa.Text, nullable=False),
        sa.Column("categories", sa.Text, nullable=False),
        sa.Column("created", sa.String(32), nullable=False),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Index("ix_datasets_created", "created", "id"),
        sa.Index("uq_datasets_version", "version_id", unique=True),
    )
    meta.create_all(conn)


deployment_models = sa.Table(
    "deployment_models", _meta,
    sa.Column("deployment_id", sa.String(24), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("task", sa.String(16), nullable=False),
    sa.Column("target_name", sa.String(255), nullable=False),
    sa.Column("class_names", sa.Text, nullable=False),
    sa.Column("feature_names", sa.Text, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("artifact", sa.LargeBinary, nullable=False),
    sa.Column("created", sa.String(32), nullable=False),
    sa.Column("created_by", sa.Text, nullable=False),
)

_RUNNER_JOB_COLUMNS = (
    "upload VARCHAR(16) NOT NULL DEFAULT 'none'",
    "percentage FLOAT NOT NULL DEFAULT 0",
    "scored_rows BIGINT NOT NULL DEFAULT 0",
    "failed_rows BIGINT NOT NULL DEFAULT 0",
    "skipped_rows BIGINT NOT NULL DEFAULT 0",
    "intake_bytes BIGINT",
    "output_bytes BIGINT",
    "started VARCHAR(32)",
    "heartbeat VARCHAR(32)",
    "runner VARCHAR(64)",
)


def _migration_runner(conn: Connection) -> None:
    """Job execution (issue #8): progress and lease columns on ``jobs`` (plain ``ALTER TABLE ADD
    COLUMN``, the same text on SQLite and PostgreSQL) and the model artifact of each deployment
    (``LargeBinary``: BLOB / BYTEA, so it survives restarts and works on both dialects)."""
    for column in _RUNNER_JOB_COLUMNS:
        conn.execute(sa.text(f"ALTER TABLE jobs ADD COLUMN {column}"))
    conn.execute(sa.text("CREATE INDEX ix_jobs_status ON jobs (status, created)"))
    meta = sa.MetaData()
    sa.Table(
        "deployment_models", meta,
        sa.Column("deployment_id", sa.String(24), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("task", sa.String(16), nullable=False),
        sa.Column("target_name", sa.String(255), nullable=False),
        sa.Column("class_names", sa.Text, nullable=False),
        sa.Column("feature_names", sa.Text, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("artifact", sa.LargeBinary, nullable=False),
        sa.Column("created", sa.String(32), nullable=False),
        sa.Column("created_by", sa.Text, nullable=False),
    )
    meta.create_all(conn)


MIGRATIONS: tuple[Callable[[Connection], None], ...] = (_migration_1, _migration_storage, _migration_runner)
SCHEMA_VERSION = len(MIGRATIONS)
_PG_MIGRATION_LOCK = 727_001  # arbitrary advisory-lock key owned by this module


def normalize_url(url: str) -> str:
    """``postgresql://`` means psycopg 3 (the driver we depend on), not SQLAlchemy's psycopg2 default."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _sqlite_engine(url: sa.URL) -> Engine:
    database = url.database or ""
    if database and database != ":memory:":
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False},
                              pool_size=8, max_overflow=16)

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (below)
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Writers take the lock at BEGIN, so a read-modify-write can never be overtaken between
        # its read and its write (and never fails with "database is locked" on upgrade).
        mode = "IMMEDIATE" if conn.get_execution_options().get("write") else "DEFERRED"
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def _dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=False)


def _load(text: str) -> Any:
    """orjson for speed (listings decode thousands of rows); the stdlib for what orjson refuses
    but ``_dump`` may have written (NaN, integers beyond 64 bits, in rows from older versions)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class Store:
    """One database. Thread-safe: each call checks a connection out of the pool."""

    def __init__(self, url: str) -> None:
        parsed = sa.make_url(normalize_url(url))
        self.dialect = parsed.get_backend_name()
        if self.dialect == "sqlite":
            self.engine = _sqlite_engine(parsed)
        elif self.dialect == "postgresql":
            require("postgres", "a PostgreSQL database URL", modules=("psycopg",))
            self.engine = sa.create_engine(parsed, pool_size=10, max_overflow=20, pool_pre_ping=True)
        else:
            raise ValueError(f"unsupported database URL scheme {parsed.drivername!r}; "
                             "use sqlite:///path/to/file.db or postgresql://user@host:port/db")
        self.migrate()

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            conn = conn.execution_options(write=True)
            with conn.begin():
                yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    # -- schema -------------------------------------------------------------------------------

    def migrate(self) -> int:
        """Apply pending migrations; returns the schema version now in place."""
        while True:
            with self._write() as conn:
                if self.dialect == "postgresql":
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
                conn.execute(sa.text("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"))
                current = conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar() or 0
                if current > SCHEMA_VERSION:
                    raise RuntimeError(f"database schema version {current} is newer than this reconciler "
                                       f"understands ({SCHEMA_VERSION}); upgrade reconciler")
                if current == SCHEMA_VERSION:
                    return current
                MIGRATIONS[current](conn)
                conn.execute(sa.insert(schema_version).values(version=current + 1))

    def version(self) -> int:
        with self._read() as conn:
            return int(conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar() or 0)

    def ping(self) -> None:
        with self._read() as conn:
            conn.execute(sa.text("SELECT 1"))

    # -- references ---------------------------------------------------------------------------

    @staticmethod
    def _check_refs(conn: Connection, refs: Sequence[Reference]) -> None:
        if not refs:
            return
        wanted = {ref.ref_id for ref in refs}
        rows = conn.execute(sa.select(resources.c.id, resources.c.kind).where(resources.c.id.in_(wanted))).all()
        found = {(row.kind, row.id) for row in rows}
        missing = [ref for ref in refs if (ref.kind, ref.ref_id) not in found]
        if missing:
            raise errors.MissingReferences(missing)

    @staticmethod
    def _write_refs(conn: Connection, definition_id: str, refs: Sequence[Reference], *, new: bool = False) -> None:
        if not new:  # a new definition has no references to replace
            conn.execute(sa.delete(definition_refs).where(definition_refs.c.definition_id == definition_id))
        if refs:
            conn.execute(sa.insert(definition_refs), [
                {"definition_id": definition_id, "field": ref.field, "kind": ref.kind, "ref_id": ref.ref_id}
                for ref in refs])

    # -- definitions --------------------------------------------------------------------------

    @staticmethod
    def _definition_row(record: DefinitionRecord) -> dict[str, Any]:
        return {
            "id": record.id, "name": record.name, "enabled": record.enabled,
            "schedule": None if record.schedule is None else _dump(record.schedule),
            "job": _dump(record.job), "deployment_id": record.job.get("deploymentId"),
            "created": record.created, "updated": record.updated,
            "created_by": _dump(record.created_by), "updated_by": _dump(record.updated_by),
            "last_started_job_status": record.last_started_job_status,
            "last_started_job_time": record.last_started_job_time,
            "last_scheduled_run_time": record.last_scheduled_run_time,
            "last_successful_run_time": record.last_successful_run_time,
            "last_failed_run_time": record.last_failed_run_time,
        }

    @staticmethod
    def _definition(row: Any) -> DefinitionRecord:
        # Positional, not ``row.name`` etc.: attribute access on a Row costs ~5 us per row for these
        # 15 columns, a tenth of a listing's server time. ``_DEFINITION_COLUMNS`` pins the order.
        (id_, name, enabled, schedule, job, _deployment, created, updated, created_by, updated_by,
         last_status, last_time, last_scheduled, last_successful, last_failed) = row
        return DefinitionRecord(
            id=id_, name=name, enabled=bool(enabled),
            schedule=None if schedule is None else _load(schedule),
            job=_load(job), created=created, updated=updated,
            created_by=_load(created_by), updated_by=_load(updated_by),
            last_started_job_status=last_status, last_started_job_time=last_time,
            last_scheduled_run_time=last_scheduled, last_successful_run_time=last_successful,
            last_failed_run_time=last_failed,
        )

    def _name_taken(self, exc: sa.exc.IntegrityError) -> bool:
        text = str(exc.orig).lower()
        return "uq_definitions_name" in text or "definitions.name" in text

    def create_definition(self, record: DefinitionRecord) -> DefinitionRecord:
        refs = references(record.job)
        try:
            with self._write() as conn:
                self._check_refs(conn, refs)
                # Parameters apart from the statement: SQLAlchemy compiles the INSERT once and
                # caches it, where .values(**row) built and keyed a new statement every time.
                conn.execute(sa.insert(definitions), self._definition_row(record))
                self._write_refs(conn, record.id, refs, new=True)
        except sa.exc.IntegrityError as exc:
            if self._name_taken(exc):
                raise errors.NameTaken(record.name) from None
            raise
        return record

    def get_definition(self, definition_id: str) -> DefinitionRecord:
        with self._read() as conn:
            row = conn.execute(sa.select(definitions).where(definitions.c.id == definition_id)).first()
        if row is None:
            raise _definition_not_found(definition_id)
        return self._definition(row)

    def list_definitions(self, *, offset: int, limit: int, search_name: str | None = None,
                         deployment_id: str | None = None) -> Page:
        where: list[sa.ColumnElement[bool]] = []
        if search_name:
            pattern = f"%{_escape_like(search_name.lower())}%"
            where.append(sa.func.lower(definitions.c.name).like(pattern, escape="\\"))
        if deployment_id:
            where.append(definitions.c.deployment_id == deployment_id)
        with self._read() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(definitions).where(*where)).scalar_one()
            rows = conn.execute(sa.select(definitions).where(*where)
                                .order_by(definitions.c.created, definitions.c.id)
                                .offset(offset).limit(limit)).all()
        return Page([self._definition(row) for row in rows], int(total))

    def update_definition(self, definition_id: str,
                          change: Callable[[DefinitionRecord], DefinitionRecord]) -> DefinitionRecord:
        """Read, ``change`` (pure; may raise a ServiceError), write: all under the row's write lock."""
        try:
            with self._write() as conn:
                row = conn.execute(sa.select(definitions).where(definitions.c.id == definition_id)
                                   .with_for_update()).first()
                if row is None:
                    raise _definition_not_found(definition_id)
                updated = change(self._definition(row))
                refs = references(updated.job)
                self._check_refs(conn, refs)
                values = self._definition_row(updated)
                del values["id"]
                conn.execute(sa.update(definitions).where(definitions.c.id == definition_id).values(**values))
                self._write_refs(conn, definition_id, refs)
        except sa.exc.IntegrityError as exc:
            if self._name_taken(exc):
                raise errors.NameTaken(updated.name) from None
            raise
        return updated

    def delete_definition(self, definition_id: str) -> None:
        with self._write() as conn:
            row = conn.execute(sa.select(definitions.c.id).where(definitions.c.id == definition_id)
                               .with_for_update()).first()
            if row is None:
                raise _definition_not_found(definition_id)
            running = conn.execute(sa.select(sa.func.count()).select_from(jobs).where(
                jobs.c.definition_id == definition_id, jobs.c.status == "RUNNING")).scalar_one()
            if running:
                raise errors.Conflict(f"job definition {definition_id} has {running} running job(s)",
                                      errors={"id": "wait for the jobs to finish or abort them "
                                                    "(DELETE batchPredictions/{jobId}/), then delete again"})
            conn.execute(sa.delete(definitions).where(definitions.c.id == definition_id))
            conn.execute(sa.delete(definition_refs).where(definition_refs.c.definition_id == definition_id))

    # -- jobs ---------------------------------------------------------------------------------

    @staticmethod
    def _job(row: Any) -> JobRecord:
        return JobRecord(id=row.id, status=row.status, status_details=row.status_details, job=_load(row.job),
                         created=row.created, updated=row.updated, created_by=_load(row.created_by),
                         definition_id=row.definition_id, definition_name=row.definition_name, source=row.source,
                         upload=row.upload, percentage=float(row.percentage), scored_rows=int(row.scored_rows),
                         failed_rows=int(row.failed_rows), skipped_rows=int(row.skipped_rows),
                         intake_bytes=row.intake_bytes, output_bytes=row.output_bytes, started=row.started,
                         heartbeat=row.heartbeat, runner=row.runner)

    def start_job_from_definition(self, definition_id: str, make: Callable[[DefinitionRecord], JobRecord]) -> JobRecord:
        """Queue a job built by ``make`` from the definition and record it as the definition's latest."""
        with self._write() as conn:
            return self._start_job(conn, definition_id, make)

    @classmethod
    def _start_job(cls, conn: Connection, definition_id: str,
                   make: Callable[[DefinitionRecord], JobRecord]) -> JobRecord:
        """The one job-queuing path, shared by run-once and the scheduler (inside their transaction)."""
        row = conn.execute(sa.select(definitions).where(definitions.c.id == definition_id)
                           .with_for_update()).first()
        if row is None:
            raise _definition_not_found(definition_id, field="jobDefinitionId")
        job = make(cls._definition(row))
        conn.execute(sa.insert(jobs).values(
            id=job.id, status=job.status, status_details=job.status_details, job=_dump(job.job),
            definition_id=job.definition_id, definition_name=job.definition_name,
            deployment_id=job.job.get("deploymentId"), source=job.source, created=job.created,
            updated=job.updated, created_by=_dump(job.created_by), upload=upload_state(job.job)))
        job.upload = upload_state(job.job)
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
                  definition_id: str | None = None, deployment_id: str | None = None) -> Page:
        where: list[sa.ColumnElement[bool]] = []
        if statuses:
            where.append(jobs.c.status.in_(list(statuses)))
        if definition_id:
            where.append(jobs.c.definition_id == definition_id)
        if deployment_id:
            where.append(jobs.c.deployment_id == deployment_id)
        with self._read() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(jobs).where(*where)).scalar_one()
            rows = conn.execute(sa.select(jobs).where(*where).order_by(jobs.c.created, jobs.c.id)
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
                raise errors.Conflict(f"job {job_id} is {row.status}", errors={
                    "status": f"expected the job to be {' or '.join(only_from)}; it has already finished"})
            conn.execute(sa.update(jobs).where(jobs.c.id == job_id).values(
                status=status, status_details=details, updated=now))
            if row.definition_id:
                values: dict[str, Any] = {"last_started_job_status": status}
                if status == "COMPLETED":
                    values["last_successful_run_time"] = now
                elif status == "FAILED":
                    values["last_failed_run_time"] = now
                conn.execute(sa.update(definitions).where(
                    definitions.c.id == row.definition_id,
                    definitions.c.last_started_job_time == row.created).values(**values))
            row = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).one()
        return self._job(row)

    # -- deployments, credentials, data stores ------------------------------------------------

    @staticmethod
    def _resource(row: Any) -> ResourceRecord:
        return ResourceRecord(id=row.id, kind=row.kind, name=row.name, body=_load(row.body),
                              created=row.created, created_by=_load(row.created_by))

    def create_resource(self, record: ResourceRecord) -> ResourceRecord:
        try:
            with self._write() as conn:
                conn.execute(sa.insert(resources).values(
                    id=record.id, kind=record.kind, name=record.name, body=_dump(record.body),
                    created=record.created, created_by=_dump(record.created_by)))
        except sa.exc.IntegrityError:
            raise errors.Conflict(f"id {record.id} is already used", errors={
                "id": "ids are unique across deployments, credentials and data stores; omit id to get a new one"
            }) from None
        return record

    def get_resource(self, kind: str, resource_id: str) -> ResourceRecord:
        with self._read() as conn:
            row = conn.execute(sa.select(resources).where(resources.c.id == resource_id,
                                                          resources.c.kind == kind)).first()
        if row is None:
            raise errors.NotFound(f"no {kind} with id {resource_id!r}", errors={"id": f"list them with GET {_ROUTE[kind]}"})
        return self._resource(row)

    def list_resources(self, kind: str, *, offset: int, limit: int) -> Page:
        with self._read() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(resources)
                                 .where(resources.c.kind == kind)).scalar_one()
            rows = conn.execute(sa.select(resources).where(resources.c.kind == kind)
                                .order_by(resources.c.created, resources.c.id).offset(offset).limit(limit)).all()
        return Page([self._resource(row) for row in rows], int(total))

    def delete_resource(self, kind: str, resource_id: str) -> None:
        """Refused (409) while a definition refers to it, so a stored definition never dangles."""
        with self._write() as conn:
            row = conn.execute(sa.select(resources.c.id).where(resources.c.id == resource_id,
                                                               resources.c.kind == kind)).first()
            if row is None:
                raise errors.NotFound(f"no {kind} with id {resource_id!r}",
                                      errors={"id": f"list them with GET {_ROUTE[kind]}"})
            users = conn.execute(sa.select(definition_refs.c.definition_id).where(
                definition_refs.c.ref_id == resource_id, definition_refs.c.kind == kind).distinct()).scalars().all()
            if users:
                shown = ", ".join(sorted(users)[:5])
                raise errors.Conflict(f"{kind} {resource_id} is used by {len(users)} job definition(s): {shown}",
                                      errors={"id": "update or delete those definitions first"})
            conn.execute(sa.delete(resources).where(resources.c.id == resource_id))
            conn.execute(sa.delete(credential_secrets).where(credential_secrets.c.credential_id == resource_id))


    # -- credential secrets, datasets, schedules (issue #8) ------------------------------------

    def create_credential(self, record: ResourceRecord, secret: dict[str, Any]) -> ResourceRecord:
        """A credential and its secret in one transaction; the secret lives in its own table so
        that no response renderer ever sees it."""
        try:
            with self._write() as conn:
                conn.execute(sa.insert(resources).values(
                    id=record.id, kind=record.kind, name=record.name, body=_dump(record.body),
                    created=record.created, created_by=_dump(record.created_by)))
                if secret:
                    conn.execute(sa.insert(credential_secrets).values(credential_id=record.id, secret=_dump(secret)))
        except sa.exc.IntegrityError:
            raise errors.Conflict(f"id {record.id} is already used", errors={
                "id": "ids are unique across deployments, credentials and data stores; omit id to get a new one"
            }) from None
        return record

    def get_credential_secret(self, credential_id: str) -> dict[str, Any]:
        """The secret fields of a credential (for adapters only); {} when it has none."""
        self.get_resource("credential", credential_id)  # 404 with a hint when it does not exist
        with self._read() as conn:
            text = conn.execute(sa.select(credential_secrets.c.secret)
                                .where(credential_secrets.c.credential_id == credential_id)).scalar()
        return {} if text is None else dict(_load(text))

    @staticmethod
    def _dataset(row: Any) -> DatasetRecord:
        return DatasetRecord(id=row.id, version_id=row.version_id, name=row.name, path=row.path, size=int(row.size),
                             row_count=int(row.row_count), columns=_load(row.columns),
                             categories=_load(row.categories), created=row.created,
                             created_by=_load(row.created_by))

    def create_dataset(self, record: DatasetRecord) -> DatasetRecord:
        with self._write() as conn:
            conn.execute(sa.insert(datasets).values(
                id=record.id, version_id=record.version_id, name=record.name, path=record.path, size=record.size,
                row_count=record.row_count, columns=_dump(record.columns), categories=_dump(record.categories),
                created=record.created, created_by=_dump(record.created_by)))
        return record

    def get_dataset(self, dataset_id: str, version_id: str | None = None) -> DatasetRecord:
        where = [datasets.c.id == dataset_id]
        if version_id is not None:
            where.append(datasets.c.version_id == version_id)
        with self._read() as conn:
            row = conn.execute(sa.select(datasets).where(*where)).first()
        if row is None:
            what = f"dataset {dataset_id!r}" + (f" version {version_id!r}" if version_id else "")
            raise errors.NotFound(f"no {what}", errors={"datasetId": "list datasets with GET datasets/"})
        return self._dataset(row)

    def list_datasets(self, *, offset: int, limit: int) -> Page:
        with self._read() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(datasets)).scalar_one()
            rows = conn.execute(sa.select(datasets).order_by(datasets.c.created, datasets.c.id)
                                .offset(offset).limit(limit)).all()
        return Page([self._dataset(row) for row in rows], int(total))

    def delete_dataset(self, dataset_id: str) -> DatasetRecord:
        """Removes the row; returns it so the caller can delete the file."""
        with self._write() as conn:
            row = conn.execute(sa.select(datasets).where(datasets.c.id == dataset_id)).first()
            if row is None:
                raise errors.NotFound(f"no dataset {dataset_id!r}", errors={"datasetId": "list datasets with GET datasets/"})
            conn.execute(sa.delete(datasets).where(datasets.c.id == dataset_id))
        return self._dataset(row)

    def scheduled_definitions(self) -> list[DefinitionRecord]:
        """Enabled definitions that have a schedule: what the scheduler looks at on each tick."""
        with self._read() as conn:
            rows = conn.execute(sa.select(definitions).where(definitions.c.enabled.is_(True),
                                                             definitions.c.schedule.is_not(None))
                                .order_by(definitions.c.id)).all()
        return [self._definition(row) for row in rows]

    def start_scheduled_job(self, definition_id: str, *, due: str,
                            make: Callable[[DefinitionRecord], JobRecord]) -> JobRecord | None:
        """Claim the firing ``due`` and queue its job in ONE transaction, or None if already claimed.

        The claim is a conditional UPDATE of ``last_scheduled_run_time`` (timestamps are
        fixed-width ISO strings, so they compare as text): of any number of processes trying the
        same firing, exactly one updates the row; the others see 0 rows and skip. Claim and job
        commit together, so a crash between them loses neither nor runs the firing twice.
        """
        with self._write() as conn:
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

    def record_job_outcome(self, definition_id: str, status: str, finished_at: str) -> None:
        """Mirror a finished job on its definition: lastStartedJobStatus, lastSuccessful/FailedRunTime.

        ``set_job_status`` already does this for jobs it moves; this is for a runner that
        finishes jobs through another path. Unknown definitions (deleted meanwhile) are ignored.
        """
        values: dict[str, Any] = {"last_started_job_status": status}
        if status == "COMPLETED":
            values["last_successful_run_time"] = finished_at
        elif status == "FAILED":
            values["last_failed_run_time"] = finished_at
        with self._write() as conn:
            conn.execute(sa.update(definitions).where(definitions.c.id == definition_id).values(**values))

    # -- job execution (runner, issue #8) ----------------------------------------------------------

    def create_job(self, job: JobRecord) -> JobRecord:
        """Queue an ad-hoc job (``POST batchPredictions/``); its references are checked first."""
        job.upload = upload_state(job.job)
        with self._write() as conn:
            self._check_refs(conn, references(job.job))
            conn.execute(sa.insert(jobs).values(
                id=job.id, status=job.status, status_details=job.status_details, job=_dump(job.job),
                definition_id=job.definition_id, definition_name=job.definition_name,
                deployment_id=job.job.get("deploymentId"), source=job.source, created=job.created,
                updated=job.updated, created_by=_dump(job.created_by), upload=job.upload))
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
        after the row lock; SQLite serialises writers with BEGIN IMMEDIATE).
        """
        with self._write() as conn:
            candidates = conn.execute(sa.select(jobs.c.id).where(
                jobs.c.status == "INITIALIZING", jobs.c.upload != "waiting",
            ).order_by(jobs.c.created, jobs.c.id).limit(8)).scalars().all()
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
                            runner_id: str | None = None) -> list[str]:
        """FAIL jobs left RUNNING by a runner that is gone: its lease (heartbeat) expired, or
        (``runner_id``) it is this process's own runner shutting down. Returns their ids."""
        with self._write() as conn:
            stale = sa.or_(jobs.c.heartbeat.is_(None), jobs.c.heartbeat < lease_expired_before)
            where = [jobs.c.status == "RUNNING", stale if runner_id is None else jobs.c.runner == runner_id]
            rows = conn.execute(sa.select(jobs).where(*where).with_for_update()).all()
            for row in rows:
                conn.execute(sa.update(jobs).where(jobs.c.id == row.id, *where).values(
                    status="FAILED", status_details=details, updated=now))
                self._mirror_on_definition(conn, row, "FAILED", now)
        return [row.id for row in rows]

    @staticmethod
    def _mirror_on_definition(conn: Connection, row: Any, status: str, now: str) -> None:
        if not row.definition_id:
            return
        values: dict[str, Any] = {"last_started_job_status": status}
        if status == "COMPLETED":
            values["last_successful_run_time"] = now
        elif status == "FAILED":
            values["last_failed_run_time"] = now
        conn.execute(sa.update(definitions).where(definitions.c.id == row.definition_id,
                                                  definitions.c.last_started_job_time == row.created).values(**values))

    # -- deployment models (runner, issue #8) ---------------------------------------------------

    @staticmethod
    def _model(row: Any) -> ModelRecord:
        return ModelRecord(deployment_id=row.deployment_id, kind=row.kind, task=row.task,
                           target_name=row.target_name, class_names=_load(row.class_names),
                           feature_names=_load(row.feature_names), sha256=row.sha256, size=int(row.size),
                           created=row.created, created_by=_load(row.created_by))

    def put_model(self, record: ModelRecord, artifact: bytes, *, label: str | None) -> ModelRecord:
        """Set (or replace) a deployment's model. A missing deployment is created when ``label``
        is given (admin registration), else 404."""
        with self._write() as conn:
            found = conn.execute(sa.select(resources.c.id).where(resources.c.id == record.deployment_id,
                                                                 resources.c.kind == "deployment")).first()
            if found is None:
                if not label:
                    raise errors.NotFound(f"no deployment with id {record.deployment_id!r}", errors={
                        "id": "create it first (POST deployments/) or pass a label to create it"})
                taken = conn.execute(sa.select(resources.c.kind).where(
                    resources.c.id == record.deployment_id)).first()
                if taken is not None:
                    raise errors.Conflict(f"id {record.deployment_id} is used by a {taken.kind}",
                                          errors={"id": "choose another deployment id"})
                conn.execute(sa.insert(resources).values(
                    id=record.deployment_id, kind="deployment", name=label, body=_dump({"label": label}),
                    created=record.created, created_by=_dump(record.created_by)))
            conn.execute(sa.delete(deployment_models).where(
                deployment_models.c.deployment_id == record.deployment_id))
            conn.execute(sa.insert(deployment_models).values(
                deployment_id=record.deployment_id, kind=record.kind, task=record.task,
                target_name=record.target_name, class_names=_dump(record.class_names),
                feature_names=_dump(record.feature_names), sha256=record.sha256, size=record.size,
                artifact=artifact, created=record.created, created_by=_dump(record.created_by)))
        return record

    def get_model(self, deployment_id: str) -> ModelRecord:
        """The model's description (not its bytes); 404 with the way to register one."""
        columns = [c for c in deployment_models.c if c.name != "artifact"]
        with self._read() as conn:
            row = conn.execute(sa.select(*columns).where(deployment_models.c.deployment_id == deployment_id)).first()
        if row is None:
            raise _no_model(deployment_id)
        return self._model(row)

    def get_model_artifact(self, deployment_id: str) -> tuple[ModelRecord, bytes]:
        with self._read() as conn:
            row = conn.execute(sa.select(deployment_models).where(
                deployment_models.c.deployment_id == deployment_id)).first()
        if row is None:
            raise _no_model(deployment_id)
        return self._model(row), bytes(row.artifact)


_ROUTE = {"deployment": "deployments/", "credential": "credentials/", "dataStore": "externalDataStores/"}


def _definition_not_found(definition_id: str, *, field: str = "id") -> errors.NotFound:
    return errors.NotFound(f"no job definition with id {definition_id!r}",
                           errors={field: "it was deleted or never existed; list definitions with "
                                          "GET batchPredictionJobDefinitions/"})


def _job_not_found(job_id: str) -> errors.NotFound:
    return errors.NotFound(f"no batch prediction job with id {job_id!r}",
                           errors={"id": "list jobs with GET batchPredictions/"})


def _not_waiting_for_upload(job: JobRecord) -> errors.Conflict:
    if job.upload == "none":
        why = "its intake is not localFile; only localFile jobs take an upload"
    elif job.upload == "done":
        why = "its data was already uploaded"
    elif job.status in ("FAILED", "ABORTED"):
        return errors.Conflict(f"job {job.id} does not accept an upload: it is {job.status}: {job.status_details}",
                               errors={"csvUpload": "fix what the message names, then start a new job"})
    else:
        why = f"it is {job.status}"
    return errors.Conflict(f"job {job.id} does not accept an upload: {why}",
                           errors={"csvUpload": "start a new job with localFile intake to upload data"})


def _no_model(deployment_id: str) -> errors.NotFound:
    return errors.NotFound(f"deployment {deployment_id} has no model", errors={
        "deploymentId": "register one: reconciler models register --deployment-id ID --artifact FILE, "
                        "or PUT deployments/{id}/model with the artifact bytes"})
