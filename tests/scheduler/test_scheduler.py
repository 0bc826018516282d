"""The scheduler: one job per firing with racing processes, a missed firing runs once, the
definition's last*RunTime fields, and the loop started by the app's lifespan."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from reconciler.service import ids
from reconciler.service.app import create_app
from reconciler.service.records import ResourceRecord
from reconciler.service.scheduler import Scheduler, latest_firing
from reconciler.service.settings import ServiceSettings
from reconciler.service.store import Store

from .conftest import USER, Clock, deployment, make_definition

T0 = datetime(2026, 1, 5, 9, 59, 30, tzinfo=UTC)  # a Monday
HOURLY: dict[str, list[Any]] = {"minute": [0], "hour": ["*"], "dayOfMonth": ["*"], "month": ["*"], "dayOfWeek": ["*"]}
DAILY_2AM: dict[str, list[Any]] = {"minute": [0], "hour": [2], "dayOfMonth": ["*"], "month": ["*"], "dayOfWeek": ["*"]}


def test_latest_firing() -> None:
    at = datetime(2026, 1, 5, 10, 0, 59, tzinfo=UTC)
    assert latest_firing(HOURLY, at=at) == datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    assert latest_firing(HOURLY, at=at - timedelta(seconds=60)) == datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    never: dict[str, list[Any]] = {"minute": [0], "hour": [0], "dayOfMonth": [31], "month": [2], "dayOfWeek": ["*"]}
    assert latest_firing(never, at=at) is None
    with pytest.raises(ValueError, match="timezone"):
        latest_firing(HOURLY, at=at.replace(tzinfo=None))


def test_two_schedulers_race_one_job_per_firing(db_url: str) -> None:
    first, second = Store(db_url), Store(db_url)  # two "processes": separate pools on one database
    try:
        deployment_id = deployment(first)
        made = [make_definition(first, at=T0, deployment_id=deployment_id) for _ in range(8)]
        clock = Clock(T0)
        schedulers = [Scheduler(first, clock=clock), Scheduler(second, clock=clock),
                      Scheduler(first, clock=clock), Scheduler(second, clock=clock)]
        minutes = [T0 + timedelta(seconds=30 + 60 * n) for n in range(3)]  # 10:00, 10:01, 10:02
        for moment in minutes:
            clock.now = moment + timedelta(seconds=7)
            barrier = threading.Barrier(len(schedulers))
            started: list[int] = []

            def race(scheduler: Scheduler, barrier: threading.Barrier = barrier, started: list[int] = started) -> None:
                barrier.wait()
                for _ in range(3):
                    started.append(len(scheduler.tick()))

            threads = [threading.Thread(target=race, args=(s,)) for s in schedulers]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)
            assert sum(started) == len(made)  # each definition once for this minute, whoever won
        for definition in made:
            jobs = first.list_jobs(offset=0, limit=100, definition_id=definition.id).items
            assert len(jobs) == len(minutes)
            assert {job.source for job in jobs} == {"scheduled"}
            stored = second.get_definition(definition.id)
            assert stored.last_scheduled_run_time == ids.iso(minutes[-1])
            assert stored.last_started_job_status == "INITIALIZING"
    finally:
        first.close()
        second.close()


def test_missed_firings_run_once_after_downtime(db_url: str) -> None:
    store = Store(db_url)
    try:
        definition = make_definition(store, at=datetime(2026, 1, 5, 8, 30, tzinfo=UTC), schedule=HOURLY)
        clock = Clock(datetime(2026, 1, 5, 8, 45, tzinfo=UTC))
        scheduler = Scheduler(store, clock=clock)
        assert scheduler.tick() == []  # nothing due since creation
        clock.now = datetime(2026, 1, 5, 14, 20, tzinfo=UTC)  # down from 08:45 to 14:20: six firings missed
        assert len(scheduler.tick()) == 1
        assert Scheduler(store, clock=clock).tick() == []  # a restart finds it claimed
        assert store.get_definition(definition.id).last_scheduled_run_time == "2026-01-05T14:00:00.000000Z"
        clock.now = datetime(2026, 1, 5, 15, 0, 1, tzinfo=UTC)
        assert len(scheduler.tick()) == 1
        assert store.list_jobs(offset=0, limit=100, definition_id=definition.id).total == 2
    finally:
        store.close()


def test_disabled_and_recently_enabled_definitions_wait(db_url: str) -> None:
    store = Store(db_url)
    try:
        disabled = make_definition(store, at=T0, enabled=False)
        late = make_definition(store, at=datetime(2026, 1, 5, 10, 37, tzinfo=UTC), schedule=DAILY_2AM)
        clock = Clock(datetime(2026, 1, 5, 11, 0, tzinfo=UTC))
        scheduler = Scheduler(store, clock=clock)
        assert scheduler.tick() == []  # 02:00 today is before the definition existed
        clock.now = datetime(2026, 1, 6, 2, 0, 3, tzinfo=UTC)
        assert [job.definition_id for job in scheduler.tick()] == [late.id]
        assert store.list_jobs(offset=0, limit=10, definition_id=disabled.id).total == 0
    finally:
        store.close()


def test_a_firing_that_cannot_run_here_fails_at_once(tmp_path: object) -> None:
    """A bigquery output has no adapter in the local service: the scheduled job is created FAILED
    with the reason (not queued to fail later), and the definition shows the failure."""
    store = Store(f"sqlite:///{tmp_path}/s.db")
    try:
        definition = make_definition(store, at=T0)
        store.update_definition(definition.id, lambda current: replace(current, job={
            **current.job, "outputSettings": {"type": "bigquery", "dataset": "d", "table": "t", "bucket": "b"}}))
        (job,) = Scheduler(store, clock=Clock(T0 + timedelta(seconds=40))).tick()
        assert job.status == "FAILED" and "output type 'bigquery' needs a cloud service" in job.status_details
        assert store.get_job(job.id).status == "FAILED"
        stored = store.get_definition(definition.id)
        assert stored.last_started_job_status == "FAILED" and stored.last_failed_run_time == job.created
    finally:
        store.close()


def test_a_firing_whose_login_its_data_store_cannot_use_fails_at_once(tmp_path: object) -> None:
    """No client to refuse: a scheduled job whose basic credential points at a SQLite data store is
    created FAILED with the reason, like one that cannot run here."""
    store = Store(f"sqlite:///{tmp_path}/s.db")
    try:
        data_store = store.create_resource(ResourceRecord(
            id=ids.new_id(), kind="dataStore", name="file-db", body={"type": "jdbc", "params": {
                "url": f"sqlite:///{tmp_path}/user.db"}}, created=ids.iso(T0), created_by=USER)).id
        credential = store.create_credential(ResourceRecord(
            id=ids.new_id(), kind="credential", name="login", body={"credentialType": "basic"},
            created=ids.iso(T0), created_by=USER), {"user": "u", "password": "pw-71"}).id
        definition = make_definition(store, at=T0)
        store.update_definition(definition.id, lambda current: replace(current, job={
            **current.job, "outputSettings": {"type": "jdbc", "dataStoreId": data_store, "credentialId": credential,
                                              "table": "scores", "statementType": "insert"}}))
        (job,) = Scheduler(store, clock=Clock(T0 + timedelta(seconds=40))).tick()
        assert job.status == "FAILED" and "is a SQLite file, which has no logins" in job.status_details
        assert store.get_definition(definition.id).last_started_job_status == "FAILED"
    finally:
        store.close()


def test_last_run_times_follow_job_outcomes(tmp_path: object) -> None:
    store = Store(f"sqlite:///{tmp_path}/s.db")
    try:
        definition = make_definition(store, at=T0)
        clock = Clock(T0 + timedelta(seconds=40))
        (job,) = Scheduler(store, clock=clock).tick()
        store.set_job_status(job.id, status="RUNNING", details="running", now="2026-01-05T10:00:41.000000Z")
        store.set_job_status(job.id, status="COMPLETED", details="done", now="2026-01-05T10:00:50.000000Z")
        stored = store.get_definition(definition.id)
        assert stored.last_started_job_status == "COMPLETED"
        assert stored.last_successful_run_time == "2026-01-05T10:00:50.000000Z"
        assert stored.last_failed_run_time is None
        clock.now = T0 + timedelta(seconds=100)  # the next minute's run fails
        (failing,) = Scheduler(store, clock=clock).tick()
        store.set_job_status(failing.id, status="FAILED", details="broken", now="2026-01-05T10:01:20.000000Z")
        stored = store.get_definition(definition.id)
        assert stored.last_started_job_status == "FAILED"
        assert stored.last_failed_run_time == "2026-01-05T10:01:20.000000Z"
        assert stored.last_successful_run_time == "2026-01-05T10:00:50.000000Z"
    finally:
        store.close()


def test_loop_thread_and_app_lifespan(tmp_path: object) -> None:
    store = Store(f"sqlite:///{tmp_path}/loop.db")
    try:
        definition = make_definition(store, at=T0)
        scheduler = Scheduler(store, interval=0.05, clock=Clock(T0 + timedelta(minutes=5)))
        scheduler.start()
        deadline = time.monotonic() + 10
        while store.list_jobs(offset=0, limit=10, definition_id=definition.id).total == 0:
            assert time.monotonic() < deadline, "the scheduler thread started no job"
            time.sleep(0.02)
        scheduler.stop()
        assert store.list_jobs(offset=0, limit=10, definition_id=definition.id).total == 1
    finally:
        store.close()

    app = create_app(ServiceSettings(db_url=f"sqlite:///{tmp_path}/app.db", scheduler_interval=0.05))
    with TestClient(app):  # sends the lifespan events, like `reconciler serve`
        running: Scheduler = app.state.scheduler
        assert running._thread is not None and running._thread.is_alive()
    assert running._thread is None  # stopped on shutdown
    app.state.store.close()
    idle = create_app(ServiceSettings(db_url=f"sqlite:///{tmp_path}/idle.db", scheduler_interval=0))
    with TestClient(idle):
        assert idle.state.scheduler._thread is None  # 0 disables
    idle.state.store.close()


def test_first_run_is_the_one_shown_as_next(tmp_path: object) -> None:
    """Created at 10:37:20 with an every-minute schedule: nextScheduledRunTime says 10:38, so the
    10:37 firing (before the definition existed) is not run."""
    store = Store(f"sqlite:///{tmp_path}/next.db")
    try:
        created = datetime(2026, 1, 5, 10, 37, 20, tzinfo=UTC)
        make_definition(store, at=created)
        clock = Clock(created + timedelta(seconds=5))
        assert Scheduler(store, clock=clock).tick() == []
        clock.now = datetime(2026, 1, 5, 10, 38, 1, tzinfo=UTC)
        (job,) = Scheduler(store, clock=clock).tick()
        assert job.status_details.endswith("(run time 2026-01-05T10:38:00.000000Z)")
    finally:
        store.close()


def test_a_pass_decodes_only_the_definitions_that_are_due(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pass over many scheduled definitions reads their timing columns only; decoding every job
    spec every few seconds held the GIL and made the service's requests wait (issue #16)."""
    from reconciler.service.store import definitions as stored

    store = Store(db_url)
    try:
        dep = deployment(store)
        waiting = [make_definition(store, at=datetime(2026, 1, 5, 10, 37, tzinfo=UTC), schedule=DAILY_2AM,
                                   deployment_id=dep) for _ in range(30)]
        due = make_definition(store, at=datetime(2026, 1, 5, 8, 30, tzinfo=UTC), schedule=HOURLY, deployment_id=dep)
        decoded: list[str] = []
        real = stored.definition_record

        def counting(row: Any) -> Any:
            decoded.append(row[0])
            return real(row)

        monkeypatch.setattr(stored, "definition_record", counting)
        clock = Clock(datetime(2026, 1, 5, 11, 0, 5, tzinfo=UTC))
        assert [job.definition_id for job in Scheduler(store, clock=clock).tick()] == [due.id]
        assert set(decoded) == {due.id}  # none of the 30 that are not due
        assert {d.id for d in waiting}.isdisjoint(decoded)
    finally:
        store.close()
