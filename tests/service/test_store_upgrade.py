"""Databases made by earlier versions open and upgrade: the DDL the store emitted at each schema
version before the split (tests/service/fixtures/store_v*_*.sql, captured from that code) builds
a database with rows in it; the current code opens it, keeps the rows, gives them the new
columns' defaults, and leaves the same schema a new database gets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from reconciler.service import ids
from reconciler.service.records import ModelRecord
from reconciler.service.store import SCHEMA_VERSION, Store, normalize_url
from reconciler.service.store.migrations import add_missing

FIXTURES = Path(__file__).parent / "fixtures"
USER = '{"username":"t","userId":"000000000000000000000000","fullName":null}'
NOW = "2025-01-02T03:04:05.000000Z"


def _url(dialect: str, request: pytest.FixtureRequest, tmp_path: Path, name: str) -> str:
    if dialect == "sqlite":
        return f"sqlite:///{tmp_path}/{name}.db"
    return str(request.getfixturevalue("postgres_server").create_database())


def _statements(version: int, dialect: str) -> list[str]:
    text = (FIXTURES / f"store_v{version}_{dialect}.sql").read_text()
    body = "\n".join(line for line in text.splitlines() if not line.startswith("--"))
    return [statement.strip() for statement in body.split(";\n") if statement.strip()]


def _old_database(url: str, version: int, dialect: str) -> dict[str, str]:
    """A database of schema ``version`` as the old code left it, with a row in each table it had."""
    engine = sa.create_engine(normalize_url(url))
    made = {"deployment": ids.new_id(), "definition": ids.new_id(), "job": ids.new_id(), "dataset": ids.new_id()}
    with engine.begin() as conn:
        for statement in _statements(version, dialect):
            conn.exec_driver_sql(statement)
        conn.execute(sa.text("INSERT INTO resources VALUES (:id, 'deployment', 'd', '{\"label\":\"d\"}', :now, :u)"),
                     {"id": made["deployment"], "now": NOW, "u": USER})
        job = f'{{"deploymentId":"{made["deployment"]}","intakeSettings":{{"type":"dataset","datasetId":"x"}}}}'
        conn.execute(sa.text(
            "INSERT INTO definitions (id, name, enabled, schedule, job, deployment_id, created, updated, created_by, "
            "updated_by, last_started_job_status, last_started_job_time) VALUES (:id, 'old', :f, NULL, :job, :dep, "
            ":now, :now, :u, :u, 'INITIALIZING', :now)"),
            {"id": made["definition"], "f": False, "job": job, "dep": made["deployment"], "now": NOW, "u": USER})
        conn.execute(sa.text(
            "INSERT INTO jobs (id, status, status_details, job, definition_id, definition_name, deployment_id, source, "
            "created, updated, created_by) VALUES (:id, 'INITIALIZING', 'queued', :job, :d, 'old', :dep, 'manual', "
            ":now, :now, :u)"),
            {"id": made["job"], "job": job, "d": made["definition"], "dep": made["deployment"], "now": NOW, "u": USER})
        if version >= 2:
            conn.execute(sa.text("INSERT INTO datasets VALUES (:id, :v, 'ds', '/x.csv', 3, 1, '[\"a\"]', '{}', :now, :u)"),
                         {"id": made["dataset"], "v": ids.new_id(), "now": NOW, "u": USER})
    engine.dispose()
    return made


def _schema(engine: sa.Engine) -> dict[str, Any]:
    """Tables -> their columns (name, type, nullable, default) and indexes (name, columns, unique)."""
    inspector = sa.inspect(engine)
    shape: dict[str, Any] = {}
    for table in sorted(inspector.get_table_names()):
        columns = sorted((c["name"], str(c["type"]), c["nullable"], str(c.get("default"))) for c in
                         inspector.get_columns(table))
        indexes = sorted((str(i["name"]), tuple(i["column_names"]), bool(i["unique"])) for i in
                         inspector.get_indexes(table))
        shape[table] = (columns, indexes, tuple(inspector.get_pk_constraint(table)["constrained_columns"]))
    return shape


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
@pytest.mark.parametrize("version", range(1, SCHEMA_VERSION + 1))
def test_an_old_database_opens_keeps_its_rows_and_gets_the_new_schema(
        dialect: str, version: int, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    url = _url(dialect, request, tmp_path, "old")
    made = _old_database(url, version, dialect)

    store = Store(url)
    assert store.version() == SCHEMA_VERSION
    definition = store.get_definition(made["definition"])
    assert definition.name == "old" and definition.job["deploymentId"] == made["deployment"]
    job = store.get_job(made["job"])  # the execution columns of version 3, at their defaults
    assert (job.upload, job.percentage, job.scored_rows, job.runner) == ("none", 0.0, 0, None)
    claimed = store.claim_next_job("r1", now=NOW)  # and usable: the runner's claim writes them
    assert claimed is not None and claimed.id == made["job"] and claimed.runner == "r1"
    assert store.get_definition(made["definition"]).last_started_job_status == "RUNNING"
    if version >= 2:
        assert store.get_dataset(made["dataset"]).columns == ["a"]
    store.put_model(ModelRecord(deployment_id=made["deployment"], kind="sklearn", task="regression",
                                target_name="y", class_names=[], feature_names=["a"], sha256="0" * 64, size=1,
                                created=NOW, created_by={"username": "t"}), b"x", label=None)
    assert store.get_model_artifact(made["deployment"])[1] == b"x"
    upgraded = _schema(store.engine)
    store.close()

    fresh = Store(_url(dialect, request, tmp_path, "fresh"))
    assert upgraded == _schema(fresh.engine)  # the declared tables, however the database began
    with fresh.engine.begin() as conn:
        assert add_missing(conn) == []  # nothing left to add
    fresh.close()


def test_a_newer_database_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/new.db"
    Store(url).close()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO schema_version VALUES (:v)"), {"v": SCHEMA_VERSION + 1})
    engine.dispose()
    with pytest.raises(RuntimeError, match=f"schema version {SCHEMA_VERSION + 1} is newer.*upgrade reconciler"):
        Store(url)
