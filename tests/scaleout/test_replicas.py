"""Three ``reconciler serve`` processes on one PostgreSQL, as replicas of one deployment run them.

24 definitions fall due in the same minute: each fires exactly once and each job runs exactly once
(its own output table, created by ``create_table``, so a second run would fail on "already exists"
and a lost one would leave no table). Then one replica is killed with SIGKILL while it scores: its
jobs are failed by a surviving replica as the README promises, the survivors' jobs keep running and
new work is taken over by the survivors.

Time: the definitions are written straight into the database as last changed three minutes ago,
scheduled daily at the current minute, so they are due at once (no waiting for the next minute)
and due only once (the next firing is a day away) even when the minute turns during the test.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sklearn.linear_model import LogisticRegression

from reconciler.service import ids, validation
from reconciler.service.records import ResourceRecord
from reconciler.service.runner.pool import RESTARTED
from reconciler.service.store import Store
from reconciler.service.testing import PostgresServer, free_port, wait_until_healthy

from .cluster import _env
from .conftest import FEATURES, artifact, frame
from .slow_model import SlowBinary

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

USER = {"username": "t", "userId": "0" * 24, "fullName": None}
DEFINITIONS = 24  # eight per replica if shared evenly: enough to show the sharing and exactly-once
ROWS = 20
# renewed and checked every 5 s; a dead process on this machine is found by its PID at the first
# check, so the lease's length only decides how long a LIVE replica may go without renewing: 9 s let a
# replica starved by a loaded 2-core machine lose its live jobs (2 of 5 runs beside other tests)
LEASE_SECONDS = 15.0
# a slow job's one chunk: long enough to kill a replica in the middle and see the survivors' jobs
# still running after the first check (at most LEASE_SECONDS / 3 later)
SLOW_SECONDS = 20.0


class Replica:
    """One ``reconciler serve`` child process; its log is kept for the assertions."""

    def __init__(self, db_url: str, data_dir: Path, log: Path) -> None:
        self.port = free_port()
        self.log = log
        command = [sys.executable, "-c", "from reconciler.cli import main; main()", "serve",
                   "--host", "127.0.0.1", "--port", str(self.port), "--db", db_url, "--no-access-log",
                   "--run-jobs", "--max-running-jobs", "2", "--scheduler-interval", "0.5",
                   "--job-lease-seconds", str(LEASE_SECONDS), "--data-dir", str(data_dir), "--no-ui"]
        with log.open("wb") as sink:
            self.process = subprocess.Popen(command, env=_env(), stdout=sink, stderr=subprocess.STDOUT)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()  # the test's own child; a graceful stop would wait for slow jobs
            self.process.wait(timeout=30)


@pytest.fixture()
def replicas(postgres_server: PostgresServer, tmp_path: Path) -> Iterator[tuple[str, list[Replica]]]:
    db_url = postgres_server.create_database()
    Store(db_url).close()  # migrate once, before three processes start at the same moment
    started = [Replica(db_url, tmp_path / "jobs", tmp_path / f"replica-{n}.log") for n in range(3)]
    try:
        for replica in started:
            wait_until_healthy(replica.url, timeout=240, process=replica.process)
        yield db_url, started
    finally:
        for replica in started:
            replica.stop()


def _register(url: str, model: Any) -> str:
    deployment_id = ids.new_id()
    answer = httpx.put(f"{url}/api/v2/deployments/{deployment_id}/model", content=artifact(model),
                       params={"label": f"d-{deployment_id}", "targetName": "label"},
                       headers={"Content-Type": "application/octet-stream"}, timeout=60)
    assert answer.status_code == 200, answer.text
    return deployment_id


def _data_store(store: Store, url: str) -> str:
    record = ResourceRecord(id=ids.new_id(), kind="dataStore", name=f"d-{ids.new_id()}",
                            body={"type": "jdbc", "params": {"url": url}}, created=ids.iso(ids.utcnow()),
                            created_by=USER)
    return store.create_resource(record).id


def _job(deployment_id: str, data_store: str, table: str) -> dict[str, Any]:
    return {"deploymentId": deployment_id,
            "intakeSettings": {"type": "jdbc", "dataStoreId": data_store, "table": "src"},
            "outputSettings": {"type": "jdbc", "dataStoreId": data_store, "table": table,
                               "statementType": "create_table"},
            "passthroughColumns": ["row_id"]}


def _wait(check: Any, *, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen within {timeout:g}s")


def _pid(runner: str | None) -> int:
    return int(str(runner).split(":")[1])


def test_three_replicas_fire_each_firing_once_and_fail_a_killed_replicas_jobs(
        replicas: tuple[str, list[Replica]], postgres_server: PostgresServer) -> None:
    db_url, processes = replicas
    user_db = postgres_server.create_database()
    engine = sa.create_engine(user_db)
    store = Store(db_url)
    try:
        frame(ROWS, seed=3).to_sql("src", engine, index=False)
        x = frame(200, seed=0)[FEATURES]
        fast = _register(processes[0].url, LogisticRegression().fit(x, (x["x1"] > 0).astype(int)))
        data_store = _data_store(store, user_db)

        # 24 definitions due now, and only now: daily at this minute, last changed 3 minutes ago
        now = ids.utcnow()
        schedule = {"minute": [now.minute], "hour": [now.hour], "dayOfMonth": ["*"], "month": ["*"],
                    "dayOfWeek": ["*"]}
        made = []
        for n in range(DEFINITIONS):
            body = {**_job(fast, data_store, f"scored_{n}"), "enabled": True, "schedule": schedule}
            record = validation.new_definition(body, id_=ids.new_id(), name=f"replica-{n}",
                                               now=ids.iso(now - timedelta(minutes=3)), user=USER,
                                               default_num_concurrent=1)
            made.append(store.create_definition(record))

        def all_done() -> bool:
            page = store.list_jobs(offset=0, limit=1000)
            return page.total >= DEFINITIONS and all(j.status in ("COMPLETED", "FAILED") for j in page.items)

        _wait(all_done, timeout=150, what="24 scheduled jobs finishing on three replicas")
        time.sleep(2 * 0.5 + 0.5)  # two more scheduler passes on every replica: still nothing new
        jobs = store.list_jobs(offset=0, limit=1000).items
        assert len(jobs) == DEFINITIONS
        assert sorted(j.definition_id or "" for j in jobs) == sorted(d.id for d in made)  # one each
        assert all(j.status == "COMPLETED" for j in jobs), [j.status_details for j in jobs if j.status != "COMPLETED"]
        assert {j.source for j in jobs} == {"scheduled"}
        with engine.connect() as conn:
            for n in range(DEFINITIONS):  # exactly once: one run wrote all rows, no second run
                assert conn.execute(sa.text(f"SELECT count(*) FROM scored_{n}")).scalar_one() == ROWS
        pids = {replica.process.pid for replica in processes}
        ran_on = {_pid(j.runner) for j in jobs}
        assert ran_on <= pids and len(ran_on) >= 2, ran_on  # the replicas shared the work
        for definition in made:
            stored = store.get_definition(definition.id)
            assert stored.last_started_job_status == "COMPLETED" and stored.last_successful_run_time
        logs = "".join(r.log.read_text(errors="replace") for r in processes)
        assert logs.count("scheduled run") == DEFINITIONS  # "started job ... (scheduled run ...)", once each

        # kill -9 a replica while it scores: its jobs fail with the reason, the others' run on
        slow = _register(processes[0].url, SlowBinary(delay=SLOW_SECONDS))
        http = httpx.Client(base_url=f"{processes[0].url}/api/v2/", timeout=30)
        started = []
        for n in range(6):  # two per replica: every replica's runner is full
            answer = http.post("batchPredictions/", json=_job(slow, data_store, f"slow_{n}"))
            assert answer.status_code == 202, answer.text
            started.append(str(answer.json()["id"]))

        def all_running() -> list[Any] | None:
            found = [store.get_job(job_id) for job_id in started]
            return found if all(j.status == "RUNNING" for j in found) else None

        running = _wait(all_running, timeout=60, what="six slow jobs RUNNING")
        victim = next(r for r in processes if r is not processes[0] and
                      any(_pid(j.runner) == r.process.pid for j in running))
        victims_jobs = {j.id for j in running if _pid(j.runner) == victim.process.pid}
        os.kill(victim.process.pid, signal.SIGKILL)
        victim.process.wait(timeout=10)
        killed_at = time.monotonic()

        def victims_failed() -> bool:
            return all(store.get_job(job_id).status == "FAILED" for job_id in victims_jobs)

        _wait(victims_failed, timeout=LEASE_SECONDS + 10, what="the killed replica's jobs failing")
        noticed = time.monotonic() - killed_at
        for job_id in victims_jobs:
            assert store.get_job(job_id).status_details == RESTARTED
        survivors = [j for j in started if j not in victims_jobs]
        assert all(store.get_job(job_id).status == "RUNNING" for job_id in survivors)

        # work queued after the kill is taken over by the survivors once their slow jobs are done
        late = http.post("batchPredictions/", json=_job(fast, data_store, "late"))
        assert late.status_code == 202, late.text
        late_id = str(late.json()["id"])

        def late_finished() -> Any:
            job = store.get_job(late_id)
            return job if job.status in ("COMPLETED", "FAILED") else None

        finished = _wait(late_finished, timeout=SLOW_SECONDS + 60, what="a job queued after the kill finishing")
        assert finished.status == "COMPLETED", finished.status_details
        assert _pid(finished.runner) != victim.process.pid
        # untouched by the kill: each survivor's slow job completes (one survivor may have taken the
        # late job while the other's slow job still ran: wait for them rather than assume the order)
        _wait(lambda: all(store.get_job(job_id).status in ("COMPLETED", "FAILED") for job_id in survivors),
              timeout=SLOW_SECONDS + 60, what="the survivors' jobs finishing")
        assert all(store.get_job(job_id).status == "COMPLETED" for job_id in survivors)
        for job_id in victims_jobs:  # failed, never run again: no output table was committed
            assert store.get_job(job_id).status == "FAILED"
        with engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
        assert {f"slow_{started.index(j)}" for j in survivors} <= tables
        assert not {f"slow_{started.index(j)}" for j in victims_jobs} & tables
        print(f"jobs per replica: {sorted(sum(_pid(j.runner) == p for j in jobs) for p in pids)}; "
              f"killed replica's {len(victims_jobs)} job(s) failed {noticed:.1f}s after SIGKILL")
        http.close()
    finally:
        store.close()
        engine.dispose()
