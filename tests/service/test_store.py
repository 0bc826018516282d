"""Storage on SQLite and PostgreSQL: migrations, persistence, and concurrent writers."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from reconciler.service import errors, ids
from reconciler.service.records import DefinitionRecord, ResourceRecord
from reconciler.service.store import SCHEMA_VERSION, Store

USER = {"username": "t", "userId": "0" * 24, "fullName": None}


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/nested/dir/local.db"  # parent directories are created
    server = request.getfixturevalue("postgres_server")
    return str(server.create_database())


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url)
    yield s
    s.close()


def seed(store: Store) -> str:
    deployment = ids.new_id()
    store.create_resource(ResourceRecord(id=deployment, kind="deployment", name="d", body={"label": "d"},
                                         created=ids.iso(ids.utcnow()), created_by=USER))
    return deployment


def record(deployment: str, name: str) -> DefinitionRecord:
    now = ids.iso(ids.utcnow())
    return DefinitionRecord(id=ids.new_id(), name=name, enabled=False, schedule=None,
                            job={"deploymentId": deployment, "intakeSettings": {"type": "localFile"},
                                 "numConcurrent": 1, "maxExplanations": 0},
                            created=now, updated=now, created_by=USER, updated_by=USER)


def test_migrations_are_versioned_and_idempotent(store: Store, db_url: str) -> None:
    assert store.version() == SCHEMA_VERSION
    again = Store(db_url)
    assert again.migrate() == SCHEMA_VERSION and again.version() == SCHEMA_VERSION
    with again.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT version FROM schema_version ORDER BY version")).scalars().all()
    assert rows == list(range(1, SCHEMA_VERSION + 1))
    again.close()


def test_data_survives_a_restart(store: Store, db_url: str) -> None:
    made = store.create_definition(record(seed(store), "persist"))
    store.close()
    reopened = Store(db_url)
    assert reopened.get_definition(made.id).job == made.job
    reopened.close()


def test_sqlite_uses_wal(tmp_path: Path) -> None:
    s = Store(f"sqlite:///{tmp_path}/w.db")
    with s.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    s.close()


def test_concurrent_patches_of_different_fields_lose_nothing(store: Store) -> None:
    made = store.create_definition(record(seed(store), "race"))
    rounds = 15
    barrier = threading.Barrier(2)
    failures: list[BaseException] = []

    def bump(key: str) -> None:
        try:
            for _ in range(rounds):
                barrier.wait()

                def change(current: DefinitionRecord, key: str = key) -> DefinitionRecord:
                    current.job = {**current.job, key: current.job[key] + 1}
                    return current

                store.update_definition(made.id, change)
        except BaseException as exc:  # surfaced below
            failures.append(exc)

    threads = [threading.Thread(target=bump, args=(key,)) for key in ("numConcurrent", "maxExplanations")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures
    job = store.get_definition(made.id).job
    assert (job["numConcurrent"], job["maxExplanations"]) == (1 + rounds, rounds)


def test_concurrent_creates_of_one_name(store: Store) -> None:
    deployment = seed(store)
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def attempt() -> None:
        barrier.wait()
        try:
            store.create_definition(record(deployment, "same"))
            outcomes.append("created")
        except errors.NameTaken:
            outcomes.append("taken")

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["created", "taken", "taken", "taken"]
    assert store.list_definitions(offset=0, limit=10, search_name="same").total == 1


def test_references_are_checked_in_the_write_transaction(store: Store) -> None:
    with pytest.raises(errors.MissingReferences) as caught:
        store.create_definition(record("f" * 24, "dangling"))
    assert caught.value.errors.keys() == {"deploymentId"}
    deployment = seed(store)
    made = store.create_definition(record(deployment, "ok"))
    with pytest.raises(errors.Conflict):
        store.delete_resource("deployment", deployment)
    store.delete_definition(made.id)
    store.delete_resource("deployment", deployment)


def test_search_escapes_like_wildcards(store: Store) -> None:
    deployment = seed(store)
    store.create_definition(record(deployment, "a_b"))
    store.create_definition(record(deployment, "axb"))
    assert [d.name for d in store.list_definitions(offset=0, limit=10, search_name="A_B").items] == ["a_b"]
    assert store.list_definitions(offset=0, limit=10, search_name="%").total == 0


def test_unsupported_url_is_explained() -> None:
    with pytest.raises(ValueError, match="sqlite:///"):
        Store("mysql://localhost/db")
