"""Faults on real ``dask scheduler``/``dask worker`` processes: a worker killed by PID in the
middle of a job (its partitions run again elsewhere; the output is exactly the local executor's),
``DELETE`` cancelling the job's futures, ``percentageCompleted`` advancing per partition, failed
jobs leaving no output (localFile parts, S3 staged parts and uploads, JDBC staging tables), and
the scheduler going away (the job fails and says so)."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import pytest
import sqlalchemy as sa

from reconciler.service import ids
from reconciler.service.testing import PostgresServer, wait_for_job

from .cluster import DaskProcesses, wait_idle, worker_counts
from .conftest import Service, artifact, dask_settings, eventually_gone, frame, job_dir, serve
from .slow_model import SlowBinary

# one test process (pytest-xdist) for the tests of the session's scheduler and worker processes
pytestmark = pytest.mark.xdist_group("dask-processes")

LOCAL_FILES = {"intakeSettings": {"type": "localFile"}, "outputSettings": {"type": "localFile"},
               "passthroughColumns": ["row_id"]}


@pytest.fixture(scope="module")
def slow(on_dask: Service, on_local: Service) -> tuple[str, str]:
    """A model that sleeps 0.15 s per chunk (deployments on the Dask service and the local one)."""
    data = artifact(SlowBinary(delay=0.15))
    return on_dask.register(data), on_local.register(data)


@pytest.fixture(scope="module")
def quick(on_dask: Service) -> str:
    return on_dask.register(artifact(SlowBinary(delay=0.0, weight=0.7)))


def running_on(client: Any, job_id: str, timeout: float = 60) -> str:
    """The address of a worker that is processing a partition of ``job_id``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for worker, keys in client.processing().items():
            if any(str(key).startswith(f"reconciler-{job_id}-") for key in keys):
                return str(worker)
        time.sleep(0.02)
    raise AssertionError(f"no worker processed a partition of job {job_id} within {timeout}s")


def test_a_worker_killed_mid_job_loses_no_row_and_doubles_none(on_dask: Service, on_local: Service,
                                                               slow: tuple[str, str],
                                                               dask_processes: DaskProcesses) -> None:
    data = frame(6000, seed=21).to_csv(index=False).encode()
    body = {**LOCAL_FILES, "chunkSize": 12_000}  # about three chunks (0.45 s) per partition
    job_id = on_dask.start({**body, "deploymentId": slow[0]}, data)
    on_dask.wait_running(job_id, percentage=0.0)  # a first partition is in
    victim = running_on(dask_processes.client, job_id)
    pid = dask_processes.worker_pids()[victim]
    dask_processes.kill(pid)  # SIGKILL: no goodbye to the scheduler
    dask_processes.add_worker()  # a replacement for the next tests (not waited for): it gets the model when it joins
    job = wait_for_job(on_dask.http, job_id, timeout=120)
    assert job["status"] == "COMPLETED", job
    assert victim not in dask_processes.client.scheduler_info()["workers"]
    local = on_local.run({**body, "deploymentId": slow[1]}, data)  # the same job, in one process
    assert local["status"] == "COMPLETED", local
    assert on_dask.download(job) == on_local.download(local)
    assert job["scoredRows"] == 6000 and job["failedRows"] == 0
    assert not (job_dir(on_dask, job_id) / "parts").exists()


def test_percentage_completed_advances_per_partition(on_dask: Service, slow: tuple[str, str]) -> None:
    data = frame(6000, seed=22).to_csv(index=False).encode()
    job_id = on_dask.start({**LOCAL_FILES, "deploymentId": slow[0], "chunkSize": 20_000}, data)
    seen: list[float] = []
    job = on_dask.job(job_id)
    while job["status"] in ("INITIALIZING", "RUNNING"):
        if job["status"] == "RUNNING" and (not seen or seen[-1] != job["percentageCompleted"]):
            seen.append(job["percentageCompleted"])
        time.sleep(0.02)
        job = on_dask.job(job_id)
    assert job["status"] == "COMPLETED", job
    partitions = int(job["statusDetails"].split(" in ")[-1].split()[0])
    steps = [p for p in seen if 0 < p < 100]
    assert steps == sorted(steps) and len(steps) >= 2, seen
    # every value is a whole number of (nearly equal) partitions' share of the input
    share = 100 / partitions
    assert all(abs(p / share - round(p / share)) < 0.1 for p in steps), (seen, partitions)


def test_delete_cancels_the_jobs_futures(on_dask: Service, slow: tuple[str, str],
                                         dask_processes: DaskProcesses) -> None:
    data = frame(12000, seed=23).to_csv(index=False).encode()
    job_id = on_dask.start({**LOCAL_FILES, "deploymentId": slow[0], "chunkSize": 12_000}, data)
    on_dask.wait_running(job_id, percentage=0.0)
    asked = time.monotonic()
    assert on_dask.http.delete(f"batchPredictions/{job_id}/").status_code == 204
    job = wait_for_job(on_dask.http, job_id, timeout=30)
    assert job["status"] == "ABORTED", job
    assert wait_idle(dask_processes.client, job_id, timeout=10), "the scheduler still holds tasks of the job"
    assert time.monotonic() - asked < 10
    assert on_dask.http.get(f"batchPredictions/{job_id}/download/").status_code == 404
    assert eventually_gone(job_dir(on_dask, job_id)), "the aborted job left files behind"


def test_a_failed_s3_job_leaves_no_object_no_part_and_no_upload(on_dask: Service, quick: str,
                                                                s3: tuple[str, Any]) -> None:
    endpoint, client = s3
    bucket = f"b-{ids.new_id()}"
    client.create_bucket(Bucket=bucket)
    source = frame(6000, seed=25)
    source["x1"] = source["x1"].astype(object)
    source.loc[5500, "x1"] = "bad"
    client.put_object(Bucket=bucket, Key="in.csv", Body=source.to_csv(index=False).encode())
    credential = on_dask.create("credentials/", {"name": f"s3-{ids.new_id()}", "credentialType": "s3",
                                                 "awsAccessKeyId": "k", "awsSecretAccessKey": "s"})
    settings = {"type": "s3", "credentialId": credential, "endpointUrl": endpoint}
    job = on_dask.run({"deploymentId": quick, "intakeSettings": {**settings, "url": f"s3://{bucket}/in.csv"},
                       "outputSettings": {**settings, "url": f"s3://{bucket}/out.csv"}})
    assert job["status"] == "FAILED", job
    assert "partition" in job["statusDetails"], job["statusDetails"]
    listed = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    assert [o["Key"] for o in listed] == ["in.csv"], "the failed job left objects behind"
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


@pytest.mark.postgres
def test_a_failed_jdbc_job_leaves_no_table_and_no_staging(on_dask: Service, quick: str,
                                                          postgres_server: PostgresServer) -> None:
    url = postgres_server.create_database()
    engine = sa.create_engine(url)
    source = frame(3000, seed=26).astype({"x3": object})
    source.loc[2900, "x3"] = "n/a"
    source.insert(1, "id", range(1, 3001))
    with engine.begin() as conn:
        source.to_sql("source", conn, index=False)
    store = on_dask.create("externalDataStores/", {"canonicalName": f"pg-{ids.new_id()}",
                                                   "params": {"url": url, "partitionColumn": "id"}})
    job = on_dask.run({"deploymentId": quick, "passthroughColumns": ["row_id"],
                       "intakeSettings": {"type": "jdbc", "dataStoreId": store, "table": "source"},
                       "outputSettings": {"type": "jdbc", "dataStoreId": store, "table": "scored",
                                          "statementType": "create_table"}})
    assert job["status"] == "FAILED", job
    assert "partition" in job["statusDetails"], job["statusDetails"]
    with engine.connect() as conn:
        assert sorted(sa.inspect(conn).get_table_names()) == ["source"]
    engine.dispose()


def test_the_model_reached_every_worker_once(on_dask: Service, slow: tuple[str, str],
                                             dask_processes: DaskProcesses) -> None:
    """After the jobs above (dozens of partitions, a worker replaced): one shipment per process."""
    counts = worker_counts(dask_processes.client)
    received = [n for c in counts.values() for n in c["received"].values()]
    assert received and all(n <= 1 for n in received), counts


def test_the_scheduler_gone_fails_the_job_and_says_why() -> None:
    """A ``dask scheduler`` process killed while a job runs (its worker is a thread here)."""
    with DaskProcesses(workers=0) as processes:
        worker = processes.thread_worker()
        server, http = serve(**dask_settings(processes.address))
        service = Service(server, http)
        try:
            deployment = service.register(artifact(SlowBinary(delay=0.2)))
            job_id = service.start({**LOCAL_FILES, "deploymentId": deployment, "chunkSize": 12_000},
                                   frame(6000, seed=27).to_csv(index=False).encode())
            running_on(processes.client, job_id)
            processes.kill_scheduler()
            job = wait_for_job(http, job_id, timeout=60)
            assert job["status"] == "FAILED", job
            assert "lost the connection to the Dask scheduler" in job["statusDetails"], job["statusDetails"]
            assert http.get(f"batchPredictions/{job_id}/download/").status_code == 404
            assert eventually_gone(job_dir(service, job_id))
        finally:
            http.close()
            server.stop()
            with contextlib.suppress(Exception):
                processes.client.sync(worker.close, timeout=5)
