"""PostgreSQL COPY of one output chunk: binary (psycopg's dumpers) when every column converts
losslessly, CSV rendered by Arrow otherwise, psycopg's ``write_row`` for what Arrow cannot type."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from reconciler.service.runner.adapters.base import AdapterError


def copy_frame(conn: Connection, target: sa.Table, frame: pd.DataFrame) -> None:
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
    raw: Any = conn.connection.driver_connection  # psycopg.Connection
    preparer = conn.dialect.identifier_preparer
    name = preparer.format_table(target)
    columns = ", ".join(preparer.quote(str(c)) for c in frame.columns)
    binary: list[list[Any]] | None = None
    text: bytes | None = None
    kinds = [_binary_kind(target.c[str(c)].type, conn.dialect) for c in frame.columns]
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
    except conn.dialect.loaded_dbapi.Error as exc:  # the driver's own error (not wrapped)
        detail = str(exc).strip().splitlines()[0]
        if "0x00" in detail:  # PostgreSQL's words for it do not say what to do
            detail += ("; a text value holds a NUL character (\\x00), which PostgreSQL text cannot store: "
                       "remove it from the data (or write to a bytea column)")
        raise AdapterError(f"jdbc write failed: {detail}") from exc


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

