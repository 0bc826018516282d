"""Job leases between replicas: a live replica's lease is renewed even while its event loop is
busy, so another replica never fails a job that is still running; and of replicas claiming at
once on PostgreSQL, each takes a different job without waiting for the others' row locks."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from reconciler.service import ids
from reconciler.service.records import JobRecord, ResourceRecord
from reconciler.service.runner.pool import JobRunner
from reconciler.service.settings import ServiceSettings
from reconciler.service.store import Store
from reconciler.service.testing import PostgresServer

USER = {"username": "t", "userId": "0" * 24, "fullName": None}


def _queued(store: Store) -> JobRecord:
    now = ids.iso(ids.utcnow())
    deployment = ids.new_id()
    store.create_resource(ResourceRecord(id=deployment, kind="deployment", name="d", body={"label": "d"},
                                         created=now, created_by=USER))
    return store.create_job(JobRecord(id=ids.new_id(), status="INITIALIZING", status_details="queued",
                                      job={"deploymentId": deployment, "intakeSettings": {"type": "s3"}},
                                      created=now, updated=now, created_by=USER))


def test_a_busy_event_loop_does_not_let_a_live_jobs_lease_expire(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/s.db"
    lease = 0.9
    owner_store, other_store = Store(db), Store(db)
    job = _queued(owner_store)
    owner = JobRunner(owner_store, ServiceSettings(db_url=db, job_lease_seconds=lease, runner_poll_seconds=0.05))
    other = JobRunner(other_store, ServiceSettings(db_url=db, job_lease_seconds=lease))
    other.runner_id = "other-host:1:00000000:00000000"  # another machine: only the lease tells
    claimed = owner_store.claim_next_job(owner.runner_id, now=ids.iso(ids.utcnow()))
    assert claimed is not None and claimed.id == job.id
    owner.active[job.id] = threading.Event()  # as if its driver thread were scoring it

    async def busy() -> JobRecord:
        await owner.start()
        time.sleep(3 * lease)  # the owner's event loop is blocked (a slow request, a starved process)
        other._fail_abandoned()  # meanwhile another replica checks the leases
        seen = owner_store.get_job(job.id)
        await owner.stop()
        return seen

    try:
        seen = asyncio.run(busy())
        # still the owner's RUNNING job: its lease was renewed while the loop was blocked
        assert seen.status == "RUNNING" and seen.runner == owner.runner_id, seen.status_details
        assert seen.heartbeat is not None and seen.heartbeat > claimed.heartbeat
    finally:
        for runner in (owner, other):
            runner.scoring_pool.shutdown()
            runner.driver_pool.shutdown()
        owner_store.close()
        other_store.close()


@pytest.mark.postgres
def test_replicas_claiming_at_once_take_different_jobs(postgres_server: PostgresServer) -> None:
    db = postgres_server.create_database()
    stores = [Store(db) for _ in range(3)]
    try:
        queued = [_queued(stores[0]) for _ in range(6)]
        barrier = threading.Barrier(3)
        claimed: list[str] = []
        lock = threading.Lock()

        def claim(store: Store, runner: str) -> None:
            barrier.wait()
            for _ in range(2):
                job = store.claim_next_job(runner, now=ids.iso(ids.utcnow()))
                assert job is not None, "a claim found no job while 6 were queued for 3 x 2 claims"
                with lock:
                    claimed.append(job.id)

        threads = [threading.Thread(target=claim, args=(store, f"r{n}")) for n, store in enumerate(stores)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert sorted(claimed) == sorted(j.id for j in queued)  # each once, none left, none twice
    finally:
        for store in stores:
            store.close()
