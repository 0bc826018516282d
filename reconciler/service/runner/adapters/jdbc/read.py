"""The jdbc intake: the query's rows in chunks of ``chunk_rows``; on PostgreSQL through COPY
(binary via ADBC when every column type allows it, CSV parsed by Arrow otherwise)."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from reconciler.extras import require
from reconciler.service.runner.adapters.base import AdapterContext, AdapterError
from reconciler.service.runner.adapters.jdbc.connection import _conninfo, _fail, _table, _target


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

