"""The jdbc adapter on a real SQLite file and on the real PostgreSQL server: streamed reads
(table, schema, query), and insert / create_table / createTableIfNotExists / update /
insert_update, committed on close and rolled back on abort."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from reconciler.service.runner.adapters.base import AdapterError, open_intake, open_output
from reconciler.service.runner.adapters.jdbc import login_problems, sqlalchemy_url
from reconciler.service.store import Store
from reconciler.service.testing import PostgresServer

from .conftest import add_credential, add_data_store, context


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/user.db"
    pg: PostgresServer = request.getfixturevalue("postgres_server")
    return pg.create_database()


def _rows(url: str, sql: str) -> list[tuple[object, ...]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(sa.text(sql))]
    finally:
        engine.dispose()


def _exec(url: str, *statements: str) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.execute(sa.text(statement))
    finally:
        engine.dispose()


def _write(store: Store, settings: dict[str, object], *frames: pd.DataFrame, abort: bool = False) -> None:
    output = open_output({"type": "jdbc", **settings}, context(store))
    try:
        for frame in frames:
            output.write(frame)
    except BaseException:
        output.abort()  # as the runner does: roll back and release the connection
        raise
    if abort:
        output.abort()
    else:
        output.close()


def test_intake_streams_table_and_query(db_url: str, store: Store) -> None:
    _exec(db_url, "CREATE TABLE src (id INTEGER, name TEXT, score DOUBLE PRECISION)",
          "INSERT INTO src SELECT 1, 'a', 0.5 UNION ALL SELECT 2, 'b', NULL UNION ALL SELECT 3, 'c', 2.5")
    for i in range(4, 2501, 500):
        values = ", ".join(f"({n}, 'n{n}', {n / 2})" for n in range(i, min(i + 500, 2501)))
        _exec(db_url, f"INSERT INTO src VALUES {values}")
    data_store = add_data_store(store, db_url)
    ctx = context(store, chunk_rows=1000)
    intake = open_intake({"type": "jdbc", "dataStoreId": data_store, "table": "src", "fetchSize": 300}, ctx)
    chunks = list(intake.chunks())
    intake.close()
    assert [len(c) for c in chunks] == [1000, 1000, 500]
    frame = pd.concat(chunks, ignore_index=True).sort_values("id", ignore_index=True)
    assert frame["id"].tolist() == list(range(1, 2501))
    assert frame.loc[1, "name"] == "b" and pd.isna(frame.loc[1, "score"])

    # verbatim SQL: "%" and ":" mean what they mean to the database, not to a driver or SQLAlchemy
    cast = "CAST(id AS TEXT)" if db_url.startswith("sqlite") else "id::text"
    query = open_intake({"type": "jdbc", "dataStoreId": data_store,
                         "query": f"SELECT id, name, {cast} AS t, 'a:b' AS c FROM src "
                                  "WHERE id <= 3 AND name LIKE '%' ORDER BY id;"}, ctx)
    assert [tuple(r) for r in pd.concat(list(query.chunks())).itertuples(index=False)] == [
        (1, "a", "1", "a:b"), (2, "b", "2", "a:b"), (3, "c", "3", "a:b")]
    query.close()

    if db_url.startswith("postgresql"):
        _exec(db_url, "CREATE SCHEMA other", "CREATE TABLE other.src (v INTEGER)", "INSERT INTO other.src VALUES (7)")
        schema = open_intake({"type": "jdbc", "dataStoreId": data_store, "table": "src", "schema": "other"}, ctx)
        assert pd.concat(list(schema.chunks()))["v"].tolist() == [7]
        schema.close()


def test_insert_create_table_and_abort(db_url: str, store: Store) -> None:
    data_store = add_data_store(store, db_url)
    first = pd.DataFrame({"id": [1, 2], "label": ["x", None], "p": [0.25, float("nan")], "ok": [True, False]})
    second = pd.DataFrame({"id": [3], "label": ["z"], "p": [1.0], "ok": [True]})

    with pytest.raises(AdapterError, match="does not exist"):
        _write(store, {"dataStoreId": data_store, "table": "scored"}, first)
    _write(store, {"dataStoreId": data_store, "table": "scored", "statementType": "create_table"}, first, second)
    assert _rows(db_url, "SELECT id, label, p, ok FROM scored ORDER BY id") == [
        (1, "x", 0.25, True), (2, None, None, False), (3, "z", 1.0, True)]
    with pytest.raises(AdapterError, match="already exists"):
        _write(store, {"dataStoreId": data_store, "table": "scored", "statementType": "create_table"}, first)

    _write(store, {"dataStoreId": data_store, "table": "scored", "statementType": "insert"}, second)
    assert len(_rows(db_url, "SELECT * FROM scored")) == 4
    _write(store, {"dataStoreId": data_store, "table": "scored"}, first, second, abort=True)
    assert len(_rows(db_url, "SELECT * FROM scored")) == 4  # rolled back

    _write(store, {"dataStoreId": data_store, "table": "fresh", "statementType": "insert",
                   "createTableIfNotExists": True}, first)
    _write(store, {"dataStoreId": data_store, "table": "fresh", "statementType": "insert",
                   "createTableIfNotExists": True}, second)
    assert [r[0] for r in _rows(db_url, "SELECT id FROM fresh ORDER BY id")] == [1, 2, 3]


def test_update_and_insert_update(db_url: str, store: Store) -> None:
    _exec(db_url, "CREATE TABLE t (k INTEGER, region TEXT, score DOUBLE PRECISION, note TEXT)",
          "INSERT INTO t VALUES (1, 'eu', 0.1, 'keep'), (2, 'eu', 0.2, 'keep'), (2, 'us', 0.3, 'keep')")
    data_store = add_data_store(store, db_url)
    changes = pd.DataFrame({"k": [2, 3], "region": ["eu", "eu"], "score": [0.9, 0.8], "note": ["new", "new"]})

    _write(store, {"dataStoreId": data_store, "table": "t", "statementType": "update",
                   "whereColumns": ["k", "region"], "updateColumns": ["score"]}, changes)
    assert _rows(db_url, "SELECT k, region, score, note FROM t ORDER BY k, region") == [
        (1, "eu", 0.1, "keep"), (2, "eu", 0.9, "keep"), (2, "us", 0.3, "keep")]  # no insert, note untouched

    _write(store, {"dataStoreId": data_store, "table": "t", "statementType": "insert_update",
                   "whereColumns": ["k", "region"]},
           changes, pd.DataFrame({"k": [1], "region": ["eu"], "score": [0.5], "note": ["second chunk"]}))
    assert _rows(db_url, "SELECT k, region, score, note FROM t ORDER BY k, region") == [
        (1, "eu", 0.5, "second chunk"), (2, "eu", 0.9, "new"), (2, "us", 0.3, "keep"),
        (3, "eu", 0.8, "new")]

    with pytest.raises(AdapterError, match="whereColumns"):
        _write(store, {"dataStoreId": data_store, "table": "t", "statementType": "update"}, changes)
    with pytest.raises(AdapterError, match="no column"):
        _write(store, {"dataStoreId": data_store, "table": "t", "statementType": "update",
                       "whereColumns": ["nope"]}, changes)


def test_basic_credential_logs_in_and_jdbc_urls_translate(postgres_server: PostgresServer, store: Store) -> None:
    url = postgres_server.create_database()
    _exec(url, "CREATE ROLE scorer LOGIN PASSWORD 'pw-9f2'", "CREATE TABLE owned (v INTEGER)",
          "GRANT SELECT ON owned TO scorer", "INSERT INTO owned VALUES (5)")
    database = url.rsplit("/", 1)[1]
    data_store = add_data_store(store, f"postgresql://127.0.0.1:{postgres_server.port}/{database}")
    credential = add_credential(store, "basic", user="scorer", password="pw-9f2")
    intake = open_intake({"type": "jdbc", "dataStoreId": data_store, "credentialId": credential, "table": "owned"},
                         context(store))
    assert pd.concat(list(intake.chunks()))["v"].tolist() == [5]
    intake.close()
    output = open_output({"type": "jdbc", "dataStoreId": data_store, "credentialId": credential, "table": "owned"},
                         context(store))
    with pytest.raises(AdapterError, match="permission denied") as denied:
        output.write(pd.DataFrame({"v": [6]}))
    output.abort()
    assert "pw-9f2" not in str(denied.value)

    assert sqlalchemy_url({"jdbcUrl": "jdbc:postgresql://h:5432/db"}) == "postgresql+psycopg://h:5432/db"
    assert sqlalchemy_url({"jdbcUrl": "jdbc:sqlite:/tmp/x.db"}) == "sqlite:////tmp/x.db"
    with pytest.raises(AdapterError, match=r"params\.url"):
        sqlalchemy_url({"jdbcUrl": "jdbc:oracle:thin:@h:1521:x"})

    unreachable = add_data_store(store, f"postgresql://postgres@127.0.0.1:{postgres_server.port}/no_such_db")
    with pytest.raises(AdapterError, match="no_such_db"):
        open_output({"type": "jdbc", "dataStoreId": unreachable, "table": "t"}, context(store))
    with pytest.raises(AdapterError, match="dataStoreId"):
        open_output({"type": "jdbc", "dataStoreId": "f" * 24, "table": "t"}, context(store))


def test_a_login_goes_to_the_driver_not_into_the_url(postgres_server: PostgresServer, store: Store) -> None:
    """The credential's user and password reach psycopg as connection arguments: a password made of
    URL syntax works, and it replaces a user the data store's URL names."""
    url = postgres_server.create_database()
    password = "p@ss:w/rd?#%&+ 'x\""
    _exec(url, f"CREATE ROLE reader LOGIN PASSWORD '{password.replace(chr(39), chr(39) * 2)}'",
          "CREATE TABLE readable (v INTEGER)", "GRANT SELECT ON readable TO reader", "INSERT INTO readable VALUES (7)")
    database = url.rsplit("/", 1)[1]
    data_store = add_data_store(store, f"postgresql://postgres@127.0.0.1:{postgres_server.port}/{database}")
    credential = add_credential(store, "basic", user="reader", password=password)
    settings = {"type": "jdbc", "dataStoreId": data_store, "credentialId": credential}
    intake = open_intake({**settings, "query": "SELECT current_user AS who, v FROM readable"}, context(store))
    assert pd.concat(list(intake.chunks())).to_dict("records") == [{"who": "reader", "v": 7}]
    intake.close()
    assert login_problems({"intakeSettings": settings}, store) == {}


def test_a_login_for_a_sqlite_data_store_is_a_clear_error(tmp_path: Path, store: Store) -> None:
    """SQLite has no logins: a basic credential on a SQLite data store was pasted into the URL
    (``internal error (ArgumentError: Invalid SQLite URL ...)``); now the adapter says why."""
    data_store = add_data_store(store, f"sqlite:///{tmp_path}/user.db")
    credential = add_credential(store, "basic", user="scorer", password="pw-5e1")
    settings = {"type": "jdbc", "dataStoreId": data_store, "credentialId": credential, "table": "t"}
    for opener in (open_intake, open_output):
        with pytest.raises(AdapterError, match="is a SQLite file, which has no logins") as refused:
            opener(settings, context(store))
        assert credential in str(refused.value) and "pw-5e1" not in str(refused.value)
    spec = {"intakeSettings": settings, "outputSettings": {**settings, "statementType": "insert"}}
    assert set(login_problems(spec, store)) == {"intakeSettings.credentialId", "outputSettings.credentialId"}


def test_postgres_copy_intake_keeps_types_nulls_and_text(postgres_server: PostgresServer, store: Store) -> None:
    url = postgres_server.create_database()
    _exec(url, "CREATE TABLE typed (i INTEGER, big BIGINT, f REAL, n NUMERIC(10,2), b BOOLEAN, d DATE, "
               "ts TIMESTAMP, tz TIMESTAMPTZ, s TEXT, \"Mixed Case\" VARCHAR(20))",
          "INSERT INTO typed VALUES (1, 9000000000, 1.5, 12.25, true, '2026-01-02', '2026-01-02 03:04:05.123456', "
          "'2026-01-02 03:04:05+02', 'line one\nline \"two\", and more', ''), "
          "(NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)")
    data_store = add_data_store(store, url)
    intake = open_intake({"type": "jdbc", "dataStoreId": data_store, "query": "SELECT * FROM typed ORDER BY i;"},
                         context(store))
    (frame,) = list(intake.chunks())
    intake.close()
    first, second = frame.iloc[0], frame.iloc[1]
    assert (first["i"], first["big"], first["f"], first["n"], first["b"]) == (1, 9_000_000_000, 1.5, 12.25, True)
    assert str(first["d"]) == "2026-01-02"
    assert first["ts"] == pd.Timestamp("2026-01-02 03:04:05.123456")
    assert first["tz"] == pd.Timestamp("2026-01-02 01:04:05", tz="UTC")
    assert first["s"] == 'line one\nline "two", and more'
    assert first["Mixed Case"] == ""  # an empty string is not NULL
    assert all(pd.isna(second[c]) for c in frame.columns)

    bad = open_intake({"type": "jdbc", "dataStoreId": data_store, "query": "SELECT nope FROM typed"}, context(store))
    with pytest.raises(AdapterError, match="nope"):
        list(bad.chunks())
    bad.close()


def test_postgres_binary_copy_reads_what_csv_reads(postgres_server: PostgresServer, store: Store,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Every type the binary intake decodes gives the frame the CSV path gives (NULLs, "", NaN,
    dates around PostgreSQL's 2000-01-01 epoch, time zones, multi-line and non-ASCII text)."""
    from reconciler.service.runner.adapters.jdbc import read as jdbc_read

    url = postgres_server.create_database()
    _exec(url, "CREATE TABLE typed (i INTEGER, s SMALLINT, big BIGINT, f DOUBLE PRECISION, b BOOLEAN, d DATE, "
               "ts TIMESTAMP, tz TIMESTAMPTZ, t TEXT, v VARCHAR(20), c CHAR(3))",
          "INSERT INTO typed VALUES (1, -2, 9000000000, 'NaN', true, '1999-12-31', '2026-01-02 03:04:05.123456', "
          "'2026-01-02 03:04:05+02', E'line one\\nline \"two\", and more', '', 'ab'), "
          "(NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL), "
          "(3, 4, -5, -1.5e300, false, '2000-01-01', '1970-01-01 00:00:00', '1960-06-01 12:00:00+00', "
          "'h\u00e9llo \u2713', 'x', 'abc')")
    data_store = add_data_store(store, url)
    decoded: list[int] = []
    decode = jdbc_read._decode_binary_rows
    monkeypatch.setattr(jdbc_read, "_decode_binary_rows", lambda blocks, *a: decoded.append(len(blocks)) or decode(blocks, *a))

    def read() -> list[pd.DataFrame]:
        intake = open_intake({"type": "jdbc", "dataStoreId": data_store,
                              "query": "SELECT * FROM typed ORDER BY i NULLS LAST"}, context(store, chunk_rows=2))
        try:
            return list(intake.chunks())
        finally:
            intake.close()

    binary = read()
    assert decoded == [2, 1]  # the binary path ran, in chunks of chunk_rows
    monkeypatch.setattr(jdbc_read, "_BINARY_READ", {})
    text = read()
    assert decoded == [2, 1]  # ... and this time it did not
    assert [len(c) for c in binary] == [len(c) for c in text] == [2, 1]
    for got, expected in zip(binary, text, strict=True):
        pd.testing.assert_frame_equal(got, expected)
    first = binary[0].iloc[0]
    assert str(first["d"]) == "1999-12-31" and first["tz"] == pd.Timestamp("2026-01-02 01:04:05", tz="UTC")
    assert first["c"] == "ab " and first["v"] == "" and binary[0].iloc[1]["t"] == "h\u00e9llo \u2713"


def test_postgres_binary_copy_writes_exactly_or_falls_back(postgres_server: PostgresServer, store: Store,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Insert uses binary COPY for the types it encodes, with NULLs, "" and non-ASCII text exact;
    a column it cannot encode losslessly (numeric, a number into text, 1.5 into bigint) sends
    the chunk as CSV, which the server converts or refuses as it would any insert."""
    from reconciler.service.runner.adapters.jdbc import pg_copy

    url = postgres_server.create_database()
    _exec(url, "CREATE TABLE t (i INTEGER, s SMALLINT, big BIGINT, r REAL, f DOUBLE PRECISION, b BOOLEAN, "
               "v VARCHAR(8), x TEXT)",
          "CREATE TABLE n (id BIGINT, amount NUMERIC(10, 2), note TEXT)")
    data_store = add_data_store(store, url)
    used: list[bool] = []
    encode = pg_copy._pg_binary

    def spy(*args: object) -> bytes | None:
        payload = encode(*args)  # type: ignore[arg-type]
        used.append(payload is not None)
        return payload

    monkeypatch.setattr(pg_copy, "_pg_binary", spy)
    frame = pd.DataFrame({"i": [1, 2, None], "s": [3, -4, 5], "big": [2**40, -1, 0], "r": [0.5, None, 2.0],
                          "f": [1e-300, float("nan"), -2.5], "b": [True, None, False],
                          "v": ["", None, "\u00e9t\u00e9 \u2713"], "x": ["a\nb", "c,\"d\"", None]})
    _write(store, {"dataStoreId": data_store, "table": "t", "statementType": "insert"}, frame)
    assert used == [True]
    assert _rows(url, "SELECT * FROM t ORDER BY s") == [
        (2, -4, -1, None, None, None, None, 'c,"d"'), (1, 3, 2**40, 0.5, 1e-300, True, "", "a\nb"),
        (None, 5, 0, 2.0, -2.5, False, "\u00e9t\u00e9 \u2713", None)]

    _write(store, {"dataStoreId": data_store, "table": "n", "statementType": "insert"},
           pd.DataFrame({"id": [1], "amount": [12.25], "note": [1.5]}))
    assert used == [True] and _rows(url, "SELECT * FROM n")[0][2] == "1.5"  # numeric column: CSV, never binary
    used.clear()
    _write(store, {"dataStoreId": data_store, "table": "t", "statementType": "insert"},
           pd.DataFrame({"x": [1.5]}))
    assert used == [False]  # a number into text: CSV keeps its text form
    assert _rows(url, "SELECT x FROM t WHERE s IS NULL") == [("1.5",)]
    with pytest.raises(AdapterError, match="bigint"):
        _write(store, {"dataStoreId": data_store, "table": "t", "statementType": "insert"},
               pd.DataFrame({"big": [1.5]}))
    assert used == [False, False]
