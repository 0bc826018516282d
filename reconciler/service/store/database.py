"""One database: the engine, its transactions and the JSON text columns' codec, shared by the
aggregates' query modules.

Concurrency: every read-modify-write runs in one transaction that takes the write lock first
(``BEGIN IMMEDIATE`` on SQLite, ``SELECT ... FOR UPDATE`` on PostgreSQL), so two PATCHes of
different fields both survive."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from reconciler.extras import require
from reconciler.service.store import migrations


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


def dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=False)


def load(text: str) -> Any:
    """orjson for speed (listings decode thousands of rows); the stdlib for what orjson refuses
    but ``dump`` may have written (NaN, integers beyond 64 bits, in rows from older versions)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class Database:
    """The engine and its transactions. Thread-safe: each call checks a connection out of the pool."""

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

    def migrate(self) -> int:
        """Apply pending schema versions; returns the schema version now in place."""
        with self._write() as conn:
            return migrations.migrate(conn)

    def version(self) -> int:
        with self._read() as conn:
            return migrations.current_version(conn)

    def ping(self) -> None:
        with self._read() as conn:
            conn.execute(sa.text("SELECT 1"))
