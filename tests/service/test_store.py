"""Storage on SQLite and PostgreSQL: migrations, persistence, and concurrent writers."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from reconciler.service import errors, ids, render
from reconciler.service.records import DefinitionRecord, ResourceRecord
from reconciler.service.responses import dumps
from reconciler.service.store import SCHEMA_VERSION, Store
from reconciler.service.testing import LocalServer

from .helpers import body, refs

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
        except errors.HTTPNameTaken:
            outcomes.append("taken")

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["created", "taken", "taken", "taken"]
    assert store.list_definitions(offset=0, limit=10, search_name="same").total == 1


def test_references_are_checked_in_the_write_transaction(store: Store) -> None:
    with pytest.raises(errors.HTTPMissingReferences) as caught:
        store.create_definition(record("f" * 24, "dangling"))
    assert caught.value.errors.keys() == {"deploymentId"}
    deployment = seed(store)
    made = store.create_definition(record(deployment, "ok"))
    with pytest.raises(errors.HTTPConflict):
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


def test_rows_orjson_refuses_still_load_and_render(store: Store) -> None:
    """A database written by an older version may hold NaN or integers beyond 64 bits: reading it
    falls back to the stdlib, and the response encoder does too, so no listing turns into a 500."""
    made = store.create_definition(record(seed(store), "legacy"))
    with store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE definitions SET job = :job WHERE id = :id"), {
            "id": made.id, "job": '{"deploymentId":"x","numConcurrent":100000000000000000000000,'
                                  '"predictionThreshold":NaN}'})
    job = store.get_definition(made.id).job
    assert job["numConcurrent"] == 10**23 and job["predictionThreshold"] != job["predictionThreshold"]
    page = store.list_definitions(offset=0, limit=10, search_name="legacy")
    body = render.definition(page.items[0], now=ids.utcnow())
    encoded = json.loads(dumps({**body, "text": "\ud800"}))
    assert encoded["batchPredictionJob"]["numConcurrent"] == 10**23 and encoded["text"] == "\ud800"


def test_concurrent_http_writers_on_both_databases(db_url: str) -> None:
    """Over real HTTP (uvicorn): 8 creates of one name give one 202 and seven 409; two clients
    PATCHing different fields at once, round after round, lose neither field's changes."""
    with LocalServer(db_url=db_url) as server, httpx.Client(base_url=server.api_url, timeout=60) as client:
        payload = body(refs(client))
        with ThreadPoolExecutor(8) as pool:
            codes = sorted(pool.map(lambda _: client.post("batchPredictionJobDefinitions/", json=payload).status_code,
                                    range(8)))
        assert codes == [202] + [409] * 7
        made = client.get("batchPredictionJobDefinitions/", params={"searchName": payload["name"]}).json()
        assert made["totalCount"] == 1
        url = f"batchPredictionJobDefinitions/{made['data'][0]['id']}"
        barrier = threading.Barrier(2)

        def patch(changes: list[dict[str, object]]) -> list[int]:
            codes = []
            for change in changes:
                barrier.wait()
                codes.append(client.patch(url, json=change).status_code)
            return codes

        rounds = 10
        with ThreadPoolExecutor(2) as pool:
            left = pool.submit(patch, [{"numConcurrent": n} for n in range(2, 2 + rounds)])
            right = pool.submit(patch, [{"maxExplanations": n} for n in range(1, 1 + rounds)])
            assert left.result() == right.result() == [200] * rounds
        job = client.get(url + "/").json()["batchPredictionJob"]
        assert (job["numConcurrent"], job["maxExplanations"]) == (1 + rounds, rounds)
