"""Type coverage of the PostgreSQL COPY paths (psycopg's binary ``copy``): what the jdbc output
writes and the jdbc intake reads back is exact for ints, floats (NaN is NULL, as pandas means it),
strings with quotes, commas and newlines, booleans, timestamps and NULLs, and a NUL character,
which PostgreSQL text cannot hold, is refused with the reason and writes nothing."""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa

from reconciler.service.runner.adapters.base import AdapterError, open_intake, open_output
from reconciler.service.store import Store
from reconciler.service.testing import PostgresServer

from .conftest import add_data_store, context

COLUMNS = ("id BIGINT, small SMALLINT, i INTEGER, f DOUBLE PRECISION, r REAL, b BOOLEAN, "
           "s TEXT, v VARCHAR(40), ts TIMESTAMP")


def _frame() -> pd.DataFrame:
    return pd.DataFrame({
        "id": [1, 2, 3, 4],
        "small": [-32768, 0, 32767, None],
        "i": [2**31 - 1, -(2**31), 0, None],
        "f": [1e-300, float("nan"), -2.5, 1.7976931348623157e308],
        "r": [0.5, None, -1.25, 3.0],
        "b": [True, False, None, True],
        "s": ['say "hi", then\nleave', "", None, "tab\there, back\\slash, 'single'"],
        "v": ["\u00e9t\u00e9 \u2713", "a,b", "x" * 40, None],
        "ts": pd.to_datetime(["2026-01-02 03:04:05.123456", "1999-12-31 23:59:59", None, "1970-01-01"], format="ISO8601"),
    })


def _output(store: Store, data_store: str, table: str) -> object:
    return open_output({"type": "jdbc", "dataStoreId": data_store, "table": table, "statementType": "insert"},
                       context(store))


@pytest.mark.parametrize("path", ["binary", "csv"])
def test_every_type_round_trips_through_copy(postgres_server: PostgresServer, store: Store, path: str,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The same rows, sent as binary COPY (every column of a type psycopg's dumpers take) and as
    CSV (the fallback), store and read back the same values."""
    from reconciler.service.runner.adapters import jdbc
    from reconciler.service.runner.adapters.jdbc import pg_copy

    url = postgres_server.create_database()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE TABLE t ({COLUMNS})"))
    data_store = add_data_store(store, url)
    frame = _frame()
    sent: list[bool] = []
    encode = pg_copy._pg_binary

    def spy(*args: object) -> object:
        if path == "csv":
            return None
        values = encode(*args)  # type: ignore[arg-type]
        sent.append(values is not None)
        return values

    monkeypatch.setattr(pg_copy, "_pg_binary", spy)
    output = _output(store, data_store, "t")
    output.write(frame)  # type: ignore[attr-defined]
    output.close()  # type: ignore[attr-defined]
    assert sent == ([True] if path == "binary" else [])

    with engine.connect() as conn:
        stored = [tuple(row) for row in conn.execute(sa.text("SELECT * FROM t ORDER BY id"))]
    engine.dispose()
    assert stored[0][:6] == (1, -32768, 2**31 - 1, 1e-300, 0.5, True)
    assert stored[1][3] is None  # NaN in a float column is a missing value: NULL
    assert stored[1][6] == "" and stored[2][6] is None  # "" and NULL stay apart
    assert stored[0][6] == 'say "hi", then\nleave' and stored[3][6] == "tab\there, back\\slash, 'single'"
    assert stored[0][7] == "\u00e9t\u00e9 \u2713" and stored[2][7] == "x" * 40
    assert stored[3][3] == 1.7976931348623157e308 and stored[3][1] is None and stored[2][5] is None
    assert stored[0][8].isoformat() == "2026-01-02T03:04:05.123456" and stored[2][8] is None

    # SELECT * has a real column: read as CSV; without it every column is of a type ADBC's
    # binary COPY reads, and that path must give the same values
    arrow_reads: list[str] = []
    batches = jdbc.JdbcIntake._arrow_batches

    def arrow_spy(self: jdbc.JdbcIntake, sql: str) -> object:
        arrow_reads.append(sql)
        return batches(self, sql)

    monkeypatch.setattr(jdbc.JdbcIntake, "_arrow_batches", arrow_spy)
    expected = frame.assign(f=[1e-300, None, -2.5, 1.7976931348623157e308])
    reads = []
    for query, via_arrow in (("SELECT * FROM t ORDER BY id", False),
                             ("SELECT id, small, i, f, b, s, v, ts FROM t ORDER BY id", True)):
        arrow_reads.clear()
        intake = open_intake({"type": "jdbc", "dataStoreId": data_store, "query": query}, context(store))
        (read,) = list(intake.chunks())
        intake.close()
        assert bool(arrow_reads) is via_arrow, query
        for column in read.columns:
            got, want = read[column].tolist(), expected[column].tolist()
            assert [None if pd.isna(x) else x for x in got] == [None if pd.isna(x) else x for x in want], column
        reads.append(read)
    as_csv, as_arrow = reads
    assert dict(as_arrow.dtypes) == dict(as_csv.dtypes[as_arrow.columns])  # the same frame either way


@pytest.mark.parametrize("column", ["TEXT", "NUMERIC"])  # binary COPY, and CSV (numeric forces it)
def test_a_nul_character_is_refused_and_nothing_is_written(postgres_server: PostgresServer, store: Store,
                                                          column: str) -> None:
    url = postgres_server.create_database()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE TABLE t (id BIGINT, s TEXT, n {column})"))
    data_store = add_data_store(store, url)
    output = _output(store, data_store, "t")
    output.write(pd.DataFrame({"id": [1], "s": ["fine"], "n": ["1"]}))  # type: ignore[attr-defined]
    with pytest.raises(AdapterError, match=r"jdbc write failed: .*NUL character"):
        output.write(pd.DataFrame({"id": [2], "s": ["nul \x00 inside"], "n": ["2"]}))  # type: ignore[attr-defined]
    output.abort()  # type: ignore[attr-defined]  # as the runner does after a failed write
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM t")).scalar_one() == 0  # the first chunk too
    engine.dispose()
