"""Fixtures for the scheduler: a service database on SQLite or the real PostgreSQL, and a builder
for definitions "created" at a chosen moment (so tests control the look-back bound)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from reconciler.service import ids, validation
from reconciler.service.records import DefinitionRecord, ResourceRecord
from reconciler.service.store import Store
from reconciler.service.testing import PostgresServer

USER = {"username": "t", "userId": "0" * 24, "fullName": None}
EVERY_MINUTE = {"minute": ["*"], "hour": ["*"], "dayOfMonth": ["*"], "month": ["*"], "dayOfWeek": ["*"]}


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/service.db"
    pg: PostgresServer = request.getfixturevalue("postgres_server")
    return pg.create_database()


def deployment(store: Store) -> str:
    record = ResourceRecord(id=ids.new_id(), kind="deployment", name="d", body={"label": "d"},
                            created=ids.iso(ids.utcnow()), created_by=USER)
    return store.create_resource(record).id


def make_definition(store: Store, *, at: datetime, schedule: dict[str, list[Any]] | None = None,
                    enabled: bool = True, deployment_id: str | None = None) -> DefinitionRecord:
    body: dict[str, Any] = {
        "deploymentId": deployment_id or deployment(store),
        "intakeSettings": {"type": "localFile"}, "outputSettings": {"type": "localFile"},
        "enabled": enabled, "schedule": schedule or EVERY_MINUTE,
    }
    record = validation.new_definition(body, id_=ids.new_id(), name=f"sched-{ids.new_id()}", now=ids.iso(at),
                                       user=USER, default_num_concurrent=1)
    return store.create_definition(record)


class Clock:
    """A settable clock: tests move time, the scheduler reads it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now
