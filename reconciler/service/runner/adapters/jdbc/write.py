"""The jdbc output: every chunk written in ONE transaction (``close`` commits, ``abort`` rolls
back); insert through COPY on PostgreSQL, update/insert_update through a staging table."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import pandas as pd
import sqlalchemy as sa

from reconciler.service.runner.adapters.base import AdapterContext, AdapterError
from reconciler.service.runner.adapters.jdbc.connection import _fail, _table, engine_for
from reconciler.service.runner.adapters.jdbc.pg_copy import copy_frame

STATEMENT_TYPES = ("insert", "update", "insert_update", "create_table")


def _column_type(series: pd.Series) -> sa.types.TypeEngine[Any]:
    kind = series.dtype.kind
    if kind == "b":
        return sa.Boolean()
    if kind in "iu":
        return sa.BigInteger()
    if kind == "f":
        return sa.Double()
    if kind == "M":
        return sa.DateTime()
    return sa.Text()


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts with NaN/NaT as None (NULL) and numpy scalars as Python values."""
    clean = frame.astype(object).where(frame.notna(), None)
    return clean.to_dict("records")  # type: ignore[no-any-return]


class WriteStatement(NamedTuple):
    """How output rows are written: ``statementType`` and the columns it needs."""

    kind: str
    create_if_missing: bool
    where_columns: list[str]
    update_columns: list[str]


def write_statement(settings: Mapping[str, Any]) -> WriteStatement:
    """The output settings' statement, checked (the single-process writer and the Dask committer
    write the same way)."""
    kind = str(settings.get("statementType") or "insert")
    if kind not in STATEMENT_TYPES:
        raise AdapterError(f"unknown statementType {kind!r}: expected one of {', '.join(STATEMENT_TYPES)}")
    where = [str(c) for c in settings.get("whereColumns") or []]
    if kind in ("update", "insert_update") and not where:
        raise AdapterError(f"statementType {kind} needs whereColumns: the columns that find the row")
    return WriteStatement(kind, bool(settings.get("createTableIfNotExists")), where,
                          [str(c) for c in settings.get("updateColumns") or []])

class JdbcOutput:
    def __init__(self, settings: Mapping[str, Any], ctx: AdapterContext) -> None:
        self.ctx = ctx
        self.statement, self.create_if_missing, self.where_columns, self.update_columns = write_statement(settings)
        self.name = _table(settings).name
        self.schema = settings.get("schema") or None
        self.engine = engine_for(settings, ctx)
        try:
            self._conn = self.engine.connect()
            self._tx = self._conn.begin()
        except sa.exc.SQLAlchemyError as exc:
            self.engine.dispose()
            raise _fail("connect", exc) from exc
        self._target: sa.Table | None = None
        self._stage: sa.Table | None = None

    # -- table setup ------------------------------------------------------------------------

    def _prepare(self, frame: pd.DataFrame) -> sa.Table:
        if self._target is not None:
            return self._target
        exists = sa.inspect(self._conn).has_table(self.name, schema=self.schema)
        where = f"{self.schema}.{self.name}" if self.schema else self.name
        if self.statement == "create_table" and exists and not self.create_if_missing:
            raise AdapterError(f"table {where} already exists; statementType create_table makes a new table "
                               "(set createTableIfNotExists, or use insert)")
        if not exists:
            if self.statement != "create_table" and not self.create_if_missing:
                raise AdapterError(f"table {where} does not exist; create it, or set createTableIfNotExists")
            columns = [sa.Column(str(name), _column_type(frame[name])) for name in frame.columns]
            sa.Table(self.name, sa.MetaData(), *columns, schema=self.schema).create(self._conn)
        self._target = sa.Table(self.name, sa.MetaData(), schema=self.schema, autoload_with=self._conn)
        missing = [str(c) for c in frame.columns if str(c) not in self._target.c]
        if missing:
            raise AdapterError(f"table {where} has no column(s) {', '.join(missing)} for the scored output")
        for column in self.where_columns + self.update_columns:
            if column not in self._target.c:
                raise AdapterError(f"table {where} has no column {column!r} (named in whereColumns/updateColumns)")
        return self._target

    def _staging(self, target: sa.Table, columns: Sequence[str]) -> sa.Table:
        """A temporary table with the target's types for the chunk's columns (made once)."""
        if self._stage is None:
            stage_columns = [sa.Column(c, target.c[c].type) for c in columns]
            self._stage = sa.Table(f"dr_stage_{self.ctx.job_id}"[:60], sa.MetaData(), *stage_columns,
                                   prefixes=["TEMPORARY"])
            self._stage.create(self._conn)
        return self._stage

    # -- writing ------------------------------------------------------------------------------

    def write(self, frame: pd.DataFrame) -> None:
        if frame.empty:
            return
        try:
            target = self._prepare(frame)
            if self.statement in ("insert", "create_table"):
                self._insert(target, frame)
            else:
                self._merge(target, frame)
        except sa.exc.SQLAlchemyError as exc:
            raise _fail("write", exc) from exc

    def _insert(self, target: sa.Table, frame: pd.DataFrame) -> None:
        if self._conn.dialect.name == "postgresql":
            copy_frame(self._conn, target, frame)
        else:
            self._conn.execute(target.insert(), _records(frame))

    def _merge(self, target: sa.Table, frame: pd.DataFrame) -> None:
        columns = [str(c) for c in frame.columns]
        stage = self._staging(target, columns)
        self._conn.execute(sa.delete(stage))
        self._conn.execute(stage.insert(), _records(frame))
        updates = self.update_columns or [c for c in columns if c not in self.where_columns]
        match = sa.and_(*(stage.c[c] == target.c[c] for c in self.where_columns))
        if updates:
            values = {c: sa.select(stage.c[c]).where(match).limit(1).scalar_subquery() for c in updates}
            self._conn.execute(sa.update(target).where(sa.exists().where(match)).values(values))
        if self.statement == "insert_update":
            fresh = sa.select(*(stage.c[c] for c in columns)).where(~sa.exists().where(match))
            self._conn.execute(sa.insert(target).from_select(columns, fresh))

    # -- finishing ----------------------------------------------------------------------------

    def close(self) -> None:
        try:
            if self._stage is not None:
                self._stage.drop(self._conn)
                self._stage = None
            self._tx.commit()
        except sa.exc.SQLAlchemyError as exc:
            raise _fail("commit", exc) from exc
        finally:
            self._release()

    def abort(self) -> None:
        try:
            if self._tx.is_active:
                self._tx.rollback()
        finally:
            self._release()

    def _release(self) -> None:
        with contextlib.suppress(sa.exc.SQLAlchemyError):
            self._conn.close()
        self.engine.dispose()

