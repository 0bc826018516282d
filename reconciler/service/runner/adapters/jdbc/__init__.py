"""``jdbc`` intake and output over SQLAlchemy: the user's database, named by a data store.

The data store (``externalDataStores``) holds the connection in ``params.url`` (a SQLAlchemy URL:
``sqlite:///path.db``, ``postgresql://host:port/db``) or ``params.jdbcUrl`` (``jdbc:postgresql://…``,
``jdbc:sqlite:/path.db``, translated). A ``basic`` credential (``credentialId``) supplies the
login. This package opens its own engine per job: the user's database is not the service's.

Intake streams: ``yield_per(fetchSize)`` (a server-side cursor on PostgreSQL), one DataFrame per
``chunk_rows`` rows. Output runs in ONE transaction: ``close`` commits, ``abort`` rolls back, so
a failed job leaves the table as it was. ``insert`` on PostgreSQL uses COPY (the fast path);
``update`` and ``insert_update`` stage each chunk in a temporary table and apply it with two
set-based statements, which needs no unique index on ``whereColumns``.

The package: ``connection`` (URLs, engines, logins), ``read`` (the intake), ``write`` (the
output and its statements), ``pg_copy`` (PostgreSQL COPY of an output chunk).
"""

from __future__ import annotations

from reconciler.service.runner.adapters.base import register
from reconciler.service.runner.adapters.jdbc.connection import engine_for, login_problems, sqlalchemy_url
from reconciler.service.runner.adapters.jdbc.read import JdbcIntake
from reconciler.service.runner.adapters.jdbc.write import (
    STATEMENT_TYPES,
    JdbcOutput,
    WriteStatement,
    _column_type,
    write_statement,
)

__all__ = ["STATEMENT_TYPES", "JdbcIntake", "JdbcOutput", "WriteStatement", "_column_type", "engine_for",
           "login_problems", "sqlalchemy_url", "write_statement"]


register("jdbc", intake=JdbcIntake, output=JdbcOutput)
