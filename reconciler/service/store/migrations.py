"""Schema versions of the store: a new database gets the tables of :mod:`.tables`; an older one
gets what it lacks of them, then the versioned data steps it has not had.

Not Alembic: the schema is small, embedded and owned by this package, and every change so far
is additive (new tables, nullable or defaulted columns, indexes), which is found by comparing
the declared tables with the database, on SQLite and PostgreSQL alike, with no script files or
second copy of any table. A change that is not additive (a rename, a type change, moving data)
is a function in ``DATA_STEPS`` under the version it brings, run once, in order, after the
additive part. Each upgrade runs in one transaction under a lock (``BEGIN IMMEDIATE`` on SQLite,
an advisory lock on PostgreSQL), so two processes starting at once do not both upgrade.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from reconciler.service.store.tables import metadata, schema_version

# What each version added (the history; the shape itself is declared once, in tables.py):
# 1 definitions, definition_refs, jobs, resources; 2 credential_secrets, datasets (issue #8);
# 3 the jobs' execution columns (upload .. runner), ix_jobs_status, deployment_models (issue #8).
SCHEMA_VERSION = 3
# version -> the step that moves existing data to it (none yet: every version so far was additive)
DATA_STEPS: dict[int, Callable[[Connection], None]] = {}
_PG_LOCK = 727_001  # arbitrary advisory-lock key owned by this module


def current_version(conn: Connection) -> int:
    return int(conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar() or 0)


def migrate(conn: Connection) -> int:
    """Bring the database ``conn`` (in a write transaction) to ``SCHEMA_VERSION``; returns it."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK})
    conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    current = current_version(conn)
    if current > SCHEMA_VERSION:
        raise RuntimeError(f"database schema version {current} is newer than this reconciler understands "
                           f"({SCHEMA_VERSION}); upgrade reconciler")
    if current == SCHEMA_VERSION:
        return current
    if current == 0:
        metadata.create_all(conn)
    else:
        add_missing(conn)
    for version in range(current + 1, SCHEMA_VERSION + 1):
        step = DATA_STEPS.get(version)
        if step is not None and current:
            step(conn)
        conn.execute(sa.insert(schema_version).values(version=version))
    return SCHEMA_VERSION


def add_missing(conn: Connection) -> list[str]:
    """Create the declared tables, columns and indexes the database lacks; returns what was added.

    A missing column must be nullable or have a server default (rows already there need a value);
    a declared column that cannot be added so is a programming error, raised before any change."""
    inspector = sa.inspect(conn)
    existing = set(inspector.get_table_names())
    added: list[str] = []
    for table in metadata.sorted_tables:
        if table.name not in existing:
            table.create(conn)
            added.append(table.name)
            continue
        have = {column["name"] for column in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in have:
                continue
            if not column.nullable and column.server_default is None:
                raise RuntimeError(f"{table.name}.{column.name} is NOT NULL without a server default: existing "
                                   "rows cannot get it by ALTER TABLE; add a DATA_STEPS function for it")
            ddl = sa.schema.CreateColumn(column).compile(dialect=conn.dialect)
            name = conn.dialect.identifier_preparer.format_table(table)
            conn.exec_driver_sql(f"ALTER TABLE {name} ADD COLUMN {ddl}")
            added.append(f"{table.name}.{column.name}")
        indexed = {index["name"] for index in inspector.get_indexes(table.name)}
        for index in table.indexes:
            if index.name not in indexed:
                index.create(conn)
                added.append(str(index.name))
    return added
