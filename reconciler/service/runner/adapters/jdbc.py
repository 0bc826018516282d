"""``jdbc`` intake and output over SQLAlchemy: the user's database, named by a data store.

The data store (``externalDataStores``) holds the connection in ``params.url`` (a SQLAlchemy URL:
``sqlite:///path.db``, ``postgresql://host:port/db``) or ``params.jdbcUrl`` (``jdbc:postgresql://…``,
``jdbc:sqlite:/path.db``, translated). A ``basic`` credential (``credentialId``) supplies the
login. This module opens its own engine per job: the user's database is not the service's.

Intake streams: ``yield_per(fetchSize)`` (a server-side cursor on PostgreSQL), one DataFrame per
``chunk_rows`` rows. Output runs in ONE transaction: ``close`` commits, ``abort`` rolls back, so
a failed job leaves the table as it was. ``insert`` on PostgreSQL uses COPY (the fast path);
``update`` and ``insert_update`` stage each chunk in a temporary table and apply it with two
set-based statements, which needs no unique index on ``whereColumns``.
"""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from reconciler.extras import require
from reconciler.service import errors
from reconciler.service.runner.adapters.base import (
    AdapterContext,
    AdapterError,
    register_intake,
    register_output,
)
from reconciler.service.runner.adapters.objectstore import credential_secret
from reconciler.service.store import normalize_url

__all__ = ["STATEMENT_TYPES", "JdbcIntake", "JdbcOutput", "engine_for", "login_problems", "sqlalchemy_url"]

STATEMENT_TYPES = ("insert", "update", "insert_update", "create_table")
_JDBC = re.compile(r"^jdbc:(?P<kind>postgresql|sqlite):(?P<rest>.*)$")


def sqlalchemy_url(params: Mapping[str, Any]) -> str:
    """The data store's URL as SQLAlchemy understands it (``url`` as is, ``jdbcUrl`` translated)."""
    url = params.get("url")
    if isinstance(url, str) and url:
        return normalize_url(url)
    jdbc = params.get("jdbcUrl")
    match = _JDBC.match(jdbc) if isinstance(jdbc, str) else None
    if match is None:
        raise AdapterError("the data store has no usable connection: set params.url to a SQLAlchemy URL "
                           "(sqlite:///path.db, postgresql://host:port/db) or params.jdbcUrl to "
                           "jdbc:postgresql://host:port/db or jdbc:sqlite:/path.db")
    rest = match["rest"]
    if match["kind"] == "sqlite":
        return f"sqlite:///{rest}"
    return normalize_url("postgresql:" + rest)


def _target(settings: Mapping[str, Any], ctx: AdapterContext) -> tuple[sa.URL, dict[str, str]]:
    """The settings' data store as a SQLAlchemy URL, and the login of its basic credential if any.

    The login goes to the driver as connection arguments, never into the URL: a password may
    hold any character, and a URL that cannot take a login (SQLite's) must not be given one."""
    store_id = settings.get("dataStoreId")
    if not store_id:
        raise AdapterError("jdbc needs dataStoreId: the id of an externalDataStores entry holding the URL")
    try:
        data_store = ctx.store.get_resource("dataStore", str(store_id))
    except errors.ServiceError as exc:
        raise AdapterError(f"dataStoreId {store_id}: {exc.message}") from None
    url = sa.make_url(sqlalchemy_url(data_store.body.get("params") or {}))
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise AdapterError(f"the local service reaches sqlite and postgresql databases only, not {url.drivername!r}")
    login: dict[str, str] = {}
    credential_id = settings.get("credentialId")
    if credential_id:
        secret = credential_secret(ctx, str(credential_id))
        login = {key: str(secret[key]) for key in ("user", "password") if secret.get(key)}
    if login and url.get_backend_name() == "sqlite":
        raise AdapterError(_sqlite_login(str(credential_id), str(store_id)))
    return url, login


def engine_for(settings: Mapping[str, Any], ctx: AdapterContext) -> Engine:
    """An engine for the settings' data store, logged in with its basic credential if any."""
    url, login = _target(settings, ctx)
    return sa.create_engine(url, poolclass=sa.pool.NullPool, connect_args=login)


def _conninfo(url: sa.URL, login: Mapping[str, str]) -> str:
    """libpq's ``key=value`` connection string for ``url`` and ``login`` (quoted by psycopg, so a
    password may hold any character): how ADBC's PostgreSQL driver is told where to connect."""
    from psycopg.conninfo import make_conninfo

    params: dict[str, Any] = {key: str(value) for key, value in url.query.items()}
    params.update({key: str(value) for key, value in
                   url.translate_connect_args(username="user", database="dbname").items()})
    params.update(login)
    return make_conninfo("", **params)


def _sqlite_login(credential_id: str, store_id: str) -> str:
    return (f"credential {credential_id} holds a login (user/password), but data store {store_id} is a SQLite "
            "file, which has no logins; remove credentialId from these settings, or point the data store at "
            "a database that takes one (postgresql://host:port/db)")


def login_problems(spec: Mapping[str, Any], store: Any) -> dict[str, str]:
    """``{field: why}`` for each jdbc side of a job spec whose credential's login its data store cannot
    use (a SQLite file takes none): checked when a job is created, so it is refused with the reason
    instead of failing when it runs. Missing references are reported elsewhere (404)."""
    found: dict[str, str] = {}
    for side in ("intakeSettings", "outputSettings"):
        settings = spec.get(side)
        if not isinstance(settings, Mapping) or settings.get("type") != "jdbc":
            continue
        store_id, credential_id = settings.get("dataStoreId"), settings.get("credentialId")
        if not store_id or not credential_id:
            continue
        try:
            params = store.get_resource("dataStore", str(store_id)).body.get("params") or {}
            secret = store.get_credential_secret(str(credential_id))
            backend = sa.make_url(sqlalchemy_url(params)).get_backend_name()
        except (errors.ServiceError, AdapterError, sa.exc.ArgumentError):
            continue
        if backend == "sqlite" and (secret.get("user") or secret.get("password")):
            found[f"{side}.credentialId"] = _sqlite_login(str(credential_id), str(store_id))
    return found


def _table(settings: Mapping[str, Any]) -> sa.TableClause:
    name = settings.get("table")
    if not isinstance(name, str) or not name:
        raise AdapterError("jdbc needs table (or, for intake, query)")
    return sa.table(name, schema=settings.get("schema") or None)


def _fail(action: str, exc: sa.exc.SQLAlchemyError) -> AdapterError:
    """The driver's message without the SQL text and parameters (which may carry data)."""
    orig = getattr(exc, "orig", None)
    detail = str(orig if orig is not None else exc).strip().splitlines()[0]
    return AdapterError(f"jdbc {action} failed: {detail}")


class JdbcIntake:
    def __init__(self, settings: Mapping[str, Any], ctx: AdapterContext) -> None:
        self.ctx = ctx
        query = settings.get("query")
        self._url, self._login = _target(settings, ctx)
        self.engine = sa.create_engine(self._url, poolclass=sa.pool.NullPool, connect_args=self._login)
        # The SQL as the database will see it: a user's query verbatim (never parsed for
        # ":name" binds or "%" escapes), a table as a quoted SELECT *.
        if isinstance(query, str) and query.strip():
            self.sql = query.strip().rstrip(";").strip()
        else:
            select = sa.select(sa.text("*")).select_from(_table(settings))
            self.sql = str(select.compile(dialect=self.engine.dialect))
        self.fetch_size = max(1, int(settings.get("fetchSize") or min(ctx.chunk_rows, 10_000)))
        self._conn: Connection | None = None

    def chunks(self) -> Iterator[pd.DataFrame]:
        if self.engine.dialect.name == "postgresql":
            yield from self._copy_chunks()
            return
        try:
            self._conn = self.engine.connect()
            result = self._conn.execution_options(yield_per=self.fetch_size).exec_driver_sql(self.sql)
            columns = list(result.keys())
            for rows in result.partitions(self.ctx.chunk_rows):
                # transpose in C (zip) and build each column from a list: several times faster
                # than DataFrame.from_records over Row objects
                values = zip(*rows, strict=True) if rows else ([] for _ in columns)
                yield pd.DataFrame(dict(zip(columns, (list(v) for v in values), strict=True)), columns=columns)
        except sa.exc.SQLAlchemyError as exc:
            raise _fail("read", exc) from exc

    def _copy_chunks(self) -> Iterator[pd.DataFrame]:
        """PostgreSQL: ``COPY (query) TO STDOUT``, decoded in a stream.

        When every column has a type in ``_BINARY_READ`` (integers, double precision, boolean,
        text, varchar, char, date, timestamp[tz]), the rows come through ADBC's PostgreSQL driver
        (binary COPY decoded to Arrow in C++; :func:`_decode_binary_rows` gives each column the
        type the CSV path gives): the server sends values without formatting them as text, and
        nothing parses text or builds Python values. Otherwise COPY sends CSV, parsed by Arrow's
        C++ parser with the column types taken from the query's description. Both give the same
        frame; NULL stays distinct from ``""``.
        """
        try:
            self._conn = self.engine.connect()
        except sa.exc.SQLAlchemyError as exc:
            raise _fail("connect", exc) from exc
        raw: Any = self._conn.connection.driver_connection
        sql = self.sql
        try:
            with raw.cursor() as cursor:
                cursor.execute(f"SELECT * FROM ({sql}) AS q LIMIT 0")
                names = [str(col.name) for col in cursor.description]
                oids = [int(col.type_code) for col in cursor.description]
                if len(set(names)) != len(names):
                    raise AdapterError(f"the query returns duplicate column names ({', '.join(names)}); "
                                       "alias them so each column has its own name")
                if all(oid in _BINARY_READ for oid in oids):
                    for table in _rechunked(self._arrow_batches(sql), self.ctx.chunk_rows):
                        yield _decode_binary_rows(table, names, oids)
                    return
                types = {name: _ARROW_TYPES.get(oid, pa.string()) for name, oid in zip(names, oids, strict=True)}
                with cursor.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)") as copy:
                    reader = pacsv.open_csv(
                        io.BufferedReader(_CopyStream(iter(copy)), 1 << 20),
                        read_options=pacsv.ReadOptions(column_names=names, block_size=4 << 20),
                        parse_options=pacsv.ParseOptions(newlines_in_values=True),
                        convert_options=pacsv.ConvertOptions(
                            column_types=types, strings_can_be_null=True, quoted_strings_can_be_null=False,
                            null_values=[""], true_values=["t"], false_values=["f"]))
                    for table in _rechunked(reader, self.ctx.chunk_rows):
                        yield self._frame(table, oids)
        except self._conn.dialect.loaded_dbapi.Error as exc:
            raise AdapterError(f"jdbc read failed: {str(exc).strip().splitlines()[0]}") from exc
        except pa.ArrowInvalid as exc:
            raise AdapterError(f"jdbc read failed: cannot parse the query's rows: {exc}") from exc

    def _arrow_batches(self, sql: str) -> Iterator[pa.RecordBatch]:
        """The query's rows as Arrow batches from ADBC's PostgreSQL driver, on a connection of its
        own (a read needs no transaction with anything else), logged in as the engine is."""
        require("postgres", "reading a PostgreSQL data store (jdbc intake)",
                modules=("adbc_driver_manager", "adbc_driver_postgresql"))
        import adbc_driver_manager
        import adbc_driver_postgresql.dbapi as adbc

        try:
            with adbc.connect(_conninfo(self._url, self._login)) as conn, conn.cursor() as cursor:
                cursor.execute(sql)
                yield from cursor.fetch_record_batch()
        except adbc_driver_manager.Error as exc:  # its first line; the rest repeats the query
            raise AdapterError(f"jdbc read failed: {str(exc).strip().splitlines()[0]}") from exc

    @staticmethod
    def _frame(table: pa.Table, oids: Sequence[int]) -> pd.DataFrame:
        frame = table.to_pandas()
        for name, oid in zip(table.column_names, oids, strict=True):
            if oid == _TIMESTAMPTZ:  # read as text: Arrow does not parse PostgreSQL's "+00" offsets
                # always microseconds (PostgreSQL's precision): pandas would otherwise infer the
                # unit from each chunk's text, and chunks of one job would differ in type
                frame[name] = pd.to_datetime(frame[name], format="ISO8601", utc=True).dt.as_unit("us")
        return frame

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(sa.exc.SQLAlchemyError):
                self._conn.close()
            self._conn = None
        self.engine.dispose()


_TIMESTAMPTZ = 1184
# PostgreSQL type OIDs -> Arrow types for the COPY intake; anything else is read as text.
_ARROW_TYPES: dict[int, pa.DataType] = {
    16: pa.bool_(), 20: pa.int64(), 21: pa.int64(), 23: pa.int64(), 700: pa.float64(), 701: pa.float64(),
    1700: pa.float64(), 1082: pa.date32(), 1114: pa.timestamp("us"),
}


# PostgreSQL type OIDs the intake reads through ADBC (binary COPY) -> the Arrow type of the column:
# the types whose values convert to the same frame the CSV path gives. numeric and real are not
# here (ADBC reads numeric as text, and real as float32, where the CSV path gives double), so a
# query with one is read as CSV.
_BINARY_READ: dict[int, pa.DataType] = {
    16: pa.bool_(), 20: pa.int64(), 21: pa.int64(), 23: pa.int64(), 701: pa.float64(), 1082: pa.date32(),
    1114: pa.timestamp("us"), 1184: pa.timestamp("us", tz="UTC"),
    25: pa.string(), 1043: pa.string(), 1042: pa.string(), 19: pa.string(),
}


def _decode_binary_rows(table: pa.Table, names: list[str], oids: list[int]) -> pd.DataFrame:
    """Rows as ADBC read them -> the frame the CSV path gives: each column cast to its type in
    ``_BINARY_READ`` (smallint and integer widen to int64), named as the query names it."""
    columns = [pc.cast(column, _BINARY_READ[oid]) for column, oid in zip(table.columns, oids, strict=True)]
    return pa.Table.from_arrays(columns, names=names).to_pandas()


def _rechunked(batches: Iterable[pa.RecordBatch], rows: int) -> Iterator[pa.Table]:
    """Arrow batches of any size as tables of exactly ``rows`` rows (the last one shorter)."""
    pending: list[pa.RecordBatch] = []
    held = 0
    for batch in batches:
        if not batch.num_rows:
            continue
        pending.append(batch)
        held += batch.num_rows
        while held >= rows:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, rows)
            rest = table.slice(rows)
            pending, held = rest.to_batches(), rest.num_rows
    if held:
        yield pa.Table.from_batches(pending)


class _CopyStream(io.RawIOBase):
    """A readable file over the byte blocks psycopg's COPY yields, for Arrow's streaming reader."""

    def __init__(self, blocks: Iterator[Any]) -> None:
        self._blocks = blocks
        self._left = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._left:
            block = next(self._blocks, None)
            if block is None:
                return 0
            self._left = memoryview(block).cast("B")
        size = min(len(buffer), len(self._left))
        buffer[:size] = self._left[:size]
        self._left = self._left[size:]
        return size


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
            self._copy(target, frame)
        else:
            self._conn.execute(target.insert(), _records(frame))

    def _copy(self, target: sa.Table, frame: pd.DataFrame) -> None:
        """PostgreSQL COPY on the same connection and transaction.

        Fast path: COPY in PostgreSQL's binary format, written by psycopg's binary dumpers
        (``set_types`` + ``write_row``), when every column of the chunk goes to a target column
        of a type they take (double precision, real, bigint, integer, smallint, boolean, text,
        varchar) and casts to it losslessly (:func:`_pg_binary`): the server then copies bytes
        instead of parsing text (3-4x less work for it).
        Otherwise the chunk is rendered to CSV by Arrow (C++) with every non-null value quoted, so
        COPY reads an unquoted empty field as NULL and ``""`` as an empty string. A chunk Arrow
        cannot type (mixed objects) falls back to psycopg's ``write_row``.
        """
        raw: Any = self._conn.connection.driver_connection  # psycopg.Connection
        preparer = self._conn.dialect.identifier_preparer
        name = preparer.format_table(target)
        columns = ", ".join(preparer.quote(str(c)) for c in frame.columns)
        binary: list[list[Any]] | None = None
        text: bytes | None = None
        kinds = [_binary_kind(target.c[str(c)].type, self._conn.dialect) for c in frame.columns]
        try:
            table = pa.Table.from_pandas(frame, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            table = None
        if table is not None:
            if all(kinds):
                binary = _pg_binary(table, [k for k in kinds if k])
            if binary is None:
                buffer = io.BytesIO()
                try:
                    pacsv.write_csv(table, buffer, pacsv.WriteOptions(include_header=False, quoting_style="all_valid"))
                    text = buffer.getvalue()
                except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
                    text = None
        try:
            with raw.cursor() as cursor:
                if binary is not None:
                    with cursor.copy(f"COPY {name} ({columns}) FROM STDIN WITH (FORMAT binary)") as copy:
                        copy.set_types([_PG_FIXED[str(kind)][1] for kind in kinds])
                        for row in zip(*binary, strict=True):
                            copy.write_row(row)
                elif text is not None:
                    with cursor.copy(f"COPY {name} ({columns}) FROM STDIN WITH (FORMAT csv)") as copy:
                        copy.write(text)
                else:
                    clean = frame.astype(object).where(frame.notna(), None)
                    with cursor.copy(f"COPY {name} ({columns}) FROM STDIN") as copy:
                        for row in clean.itertuples(index=False, name=None):
                            copy.write_row(row)
        except self._conn.dialect.loaded_dbapi.Error as exc:  # the driver's own error (not wrapped)
            detail = str(exc).strip().splitlines()[0]
            if "0x00" in detail:  # PostgreSQL's words for it do not say what to do
                detail += ("; a text value holds a NUL character (\\x00), which PostgreSQL text cannot store: "
                           "remove it from the data (or write to a bytea column)")
            raise AdapterError(f"jdbc write failed: {detail}") from exc

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


# -- PostgreSQL binary COPY -------------------------------------------------------------------------

# target column type (as PostgreSQL names it) -> (Arrow type the chunk's column is cast to, the type
# psycopg's binary dumper writes). Text types take text only: a number into text goes as CSV, so
# PostgreSQL formats it as it would any insert.
_PG_FIXED: dict[str, tuple[pa.DataType, str]] = {
    "DOUBLE PRECISION": (pa.float64(), "float8"), "REAL": (pa.float32(), "float4"),
    "BIGINT": (pa.int64(), "int8"), "INTEGER": (pa.int32(), "int4"), "SMALLINT": (pa.int16(), "int2"),
    "BOOLEAN": (pa.bool_(), "bool"), "TEXT": (pa.string(), "text"),
    "TIMESTAMP WITHOUT TIME ZONE": (pa.timestamp("us"), "timestamp"),
}


def _binary_kind(column_type: sa.types.TypeEngine[Any], dialect: sa.engine.Dialect) -> str | None:
    """The binary encoding for a target column type, or None (the chunk then goes as CSV)."""
    try:
        compiled = column_type.compile(dialect=dialect).upper()
    except Exception:  # a type the dialect cannot render (user-defined): use CSV
        return None
    if compiled in _PG_FIXED:
        return compiled
    if compiled.startswith("VARCHAR"):
        return "TEXT"
    return None


def _pg_binary(table: pa.Table, kinds: Sequence[str]) -> list[list[Any]] | None:
    """``table``'s columns as Python values for psycopg's binary COPY (NULL as None), or None when
    a column does not convert losslessly (a fractional double into bigint, a number into text):
    the caller then sends CSV, which the server converts or refuses as it would any insert."""
    columns: list[list[Any]] = []
    for column, kind in zip(table.columns, kinds, strict=True):
        arrow_type = _PG_FIXED[kind][0]
        if arrow_type == pa.string() and not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)
                                              or pa.types.is_null(column.type)):
            return None
        try:
            cast = pc.cast(column, arrow_type)  # safe: raises on truncation or overflow
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            return None
        # numbers without NULLs through numpy (several times faster than to_pylist)
        if cast.null_count == 0 and (pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type)
                                     or pa.types.is_boolean(arrow_type)):
            columns.append(cast.to_numpy().tolist())
        else:
            columns.append(cast.to_pylist())
    return columns


@register_intake("jdbc")
def _open_intake(settings: Mapping[str, Any], ctx: AdapterContext) -> JdbcIntake:
    return JdbcIntake(settings, ctx)


@register_output("jdbc")
def _open_output(settings: Mapping[str, Any], ctx: AdapterContext) -> JdbcOutput:
    return JdbcOutput(settings, ctx)
