"""Jobs scored on real ``dask scheduler``/``dask worker`` processes write exactly what the local
executor writes: byte for byte on CSV (localFile, S3, a Parquet input), row for row on
PostgreSQL; the model reaches each worker once; a job that cannot be split says why."""

from __future__ import annotations

import hashlib
import io
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from sklearn.linear_model import LogisticRegression

from reconciler.service import ids
from reconciler.service.testing import PostgresServer

from .cluster import DaskProcesses, worker_counts
from .conftest import FEATURES, PARTITION_BYTES, Service, artifact, eventually_gone, frame, job_dir

# one test process (pytest-xdist) for the tests of the session's scheduler and worker processes
pytestmark = pytest.mark.xdist_group("dask-processes")


@pytest.fixture(scope="module")
def model() -> LogisticRegression:
    train = frame(300, seed=11)
    return LogisticRegression().fit(train[FEATURES], (train["x1"] + 0.3 * train["x3"] > 0).astype(int))


@pytest.fixture(scope="module")
def model_bytes(model: LogisticRegression) -> bytes:
    return artifact(model)


@pytest.fixture(scope="module")
def deployments(on_dask: Service, on_local: Service, model_bytes: bytes) -> tuple[str, str]:
    return on_dask.register(model_bytes), on_local.register(model_bytes)


def both(on_dask: Service, on_local: Service, deployments: tuple[str, str], body: dict[str, Any],
         upload: bytes | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    dask_job = on_dask.run({**body, "deploymentId": deployments[0]}, upload)
    local_job = on_local.run({**body, "deploymentId": deployments[1]}, upload)
    assert local_job["status"] == "COMPLETED", local_job
    assert dask_job["status"] == "COMPLETED", dask_job
    return dask_job, local_job


def test_local_file_is_byte_for_byte_the_local_executors(on_dask: Service, on_local: Service,
                                                         deployments: tuple[str, str], model_bytes: bytes,
                                                         dask_processes: DaskProcesses) -> None:
    source = frame(6000, seed=1)
    source["note"] = ["plain", "", "with, comma", "quoted \"word\"", "007", "NA"] * 1000
    data = source.to_csv(index=False).encode()
    assert len(data) > 5 * PARTITION_BYTES
    body = {"intakeSettings": {"type": "localFile"}, "outputSettings": {"type": "localFile"},
            "passthroughColumnsSet": "all", "includePredictionStatus": True}
    dask_job, local_job = both(on_dask, on_local, deployments, body, data)
    assert "on the Dask cluster in" in dask_job["statusDetails"], dask_job["statusDetails"]
    partitions = int(dask_job["statusDetails"].split(" in ")[-1].split()[0])
    assert partitions >= 5
    assert on_dask.download(dask_job) == on_local.download(local_job)
    assert dask_job["scoredRows"] == local_job["scoredRows"] == 6000

    # the model went to each worker process once (not once per partition, nor per job) and was
    # loaded there at most once, although two jobs ran 2 x {partitions} tasks
    again = on_dask.run({**body, "deploymentId": deployments[0]}, data)
    assert on_dask.download(again) == on_local.download(local_job)
    sha = hashlib.sha256(model_bytes).hexdigest()
    counts = worker_counts(dask_processes.client)
    received = [c["received"].get(sha, 0) for c in counts.values()]
    assert all(n <= 1 for n in received) and sum(received) >= 1, received  # (a worker still joining: 0)
    loaded = [c["loaded"].get(sha, 0) for c in counts.values()]
    assert all(n <= 1 for n in loaded) and sum(loaded) >= 1, loaded
    assert 2 * partitions > 2 * len(counts)  # far more tasks than workers


def test_multipart_upload_and_an_s3_output(on_dask: Service, on_local: Service, deployments: tuple[str, str],
                                           s3: tuple[str, Any]) -> None:
    endpoint, client = s3
    bucket = f"b-{ids.new_id()}"
    client.create_bucket(Bucket=bucket)
    source = frame(5000, seed=2)
    client.put_object(Bucket=bucket, Key="in.csv", Body=source.to_csv(index=False).encode())
    jobs = []
    for service, deployment, key in ((on_dask, deployments[0], "dask.csv"), (on_local, deployments[1], "local.csv")):
        credential = service.create("credentials/", {"name": f"s3-{ids.new_id()}", "credentialType": "s3",
                                                     "awsAccessKeyId": "k", "awsSecretAccessKey": "s"})
        settings = {"type": "s3", "credentialId": credential, "endpointUrl": endpoint}
        job = service.run({"deploymentId": deployment, "passthroughColumns": ["row_id", "x2"],
                           "intakeSettings": {**settings, "url": f"s3://{bucket}/in.csv"},
                           "outputSettings": {**settings, "url": f"s3://{bucket}/{key}"}})
        assert job["status"] == "COMPLETED", job
        jobs.append(job)
    assert "on the Dask cluster" in jobs[0]["statusDetails"]
    written = {key: client.get_object(Bucket=bucket, Key=key)["Body"].read() for key in ("dask.csv", "local.csv")}
    assert written["dask.csv"] == written["local.csv"]
    listed = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    assert sorted(o["Key"] for o in listed) == ["dask.csv", "in.csv", "local.csv"], "staged parts were left behind"


def test_parquet_row_groups_on_s3(on_dask: Service, on_local: Service, deployments: tuple[str, str],
                                  s3: tuple[str, Any]) -> None:
    endpoint, client = s3
    bucket = f"b-{ids.new_id()}"
    client.create_bucket(Bucket=bucket)
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame(8000, seed=3), preserve_index=False), buffer, row_group_size=1000)
    client.put_object(Bucket=bucket, Key="in.parquet", Body=buffer.getvalue())
    for service, deployment, key in ((on_dask, deployments[0], "dask"), (on_local, deployments[1], "local")):
        credential = service.create("credentials/", {"name": f"s3-{ids.new_id()}", "credentialType": "s3",
                                                     "awsAccessKeyId": "k", "awsSecretAccessKey": "s"})
        settings = {"type": "s3", "credentialId": credential, "endpointUrl": endpoint}
        for fmt in ("csv", "parquet"):
            job = service.run({"deploymentId": deployment, "passthroughColumns": ["row_id"],
                               "intakeSettings": {**settings, "url": f"s3://{bucket}/in.parquet", "format": "parquet"},
                               "outputSettings": {**settings, "url": f"s3://{bucket}/{key}.{fmt}", "format": fmt}})
            assert job["status"] == "COMPLETED", job
            if service is on_dask:
                assert "on the Dask cluster" in job["statusDetails"], job["statusDetails"]
    read = lambda key: client.get_object(Bucket=bucket, Key=key)["Body"].read()  # noqa: E731
    assert read("dask.csv") == read("local.csv")
    dask_rows = pq.read_table(io.BytesIO(read("dask.parquet"))).to_pandas()
    local_rows = pq.read_table(io.BytesIO(read("local.parquet"))).to_pandas()
    pd.testing.assert_frame_equal(dask_rows, local_rows)


def test_a_dataset_from_the_catalog(on_dask: Service, on_local: Service, deployments: tuple[str, str]) -> None:
    data = frame(4000, seed=4).to_csv(index=False).encode()
    outputs = []
    for service, deployment in ((on_dask, deployments[0]), (on_local, deployments[1])):
        uploaded = service.http.post("datasets/fromFile/", files={"file": ("catalog.csv", data, "text/csv")})
        assert uploaded.status_code == 202, uploaded.text
        job = service.run({"deploymentId": deployment, "passthroughColumns": ["row_id"],
                           "intakeSettings": {"type": "dataset", "datasetId": uploaded.json()["catalogId"]},
                           "outputSettings": {"type": "localFile"}})
        outputs.append(service.download(job))
        if service is on_dask:
            assert "on the Dask cluster" in job["statusDetails"], job["statusDetails"]
    assert outputs[0] == outputs[1]


def test_quoted_line_breaks_across_a_boundary_fall_back_to_one_partition(
        on_dask: Service, on_local: Service, deployments: tuple[str, str]) -> None:
    source = frame(3000, seed=5)
    source["memo"] = ["line one\nline two, \"quoted\"\n" + "x" * 40] * 3000  # a line break in every row
    data = source.to_csv(index=False).encode()
    body = {"intakeSettings": {"type": "localFile"}, "outputSettings": {"type": "localFile"},
            "passthroughColumns": ["row_id", "memo"]}
    dask_job, local_job = both(on_dask, on_local, deployments, body, data)
    assert on_dask.download(dask_job) == on_local.download(local_job)
    assert "fell inside a quoted field" in dask_job["statusDetails"], dask_job["statusDetails"]


def test_a_bad_row_fails_the_job_naming_its_partition(on_dask: Service, deployments: tuple[str, str]) -> None:
    source = frame(4000, seed=6)
    source["x2"] = source["x2"].astype(object)
    source.loc[3500, "x2"] = "oops"
    job = on_dask.run({"deploymentId": deployments[0], "intakeSettings": {"type": "localFile"},
                       "outputSettings": {"type": "localFile"}}, source.to_csv(index=False).encode())
    assert job["status"] == "FAILED", job
    assert "partition" in job["statusDetails"] and "'x2'" in job["statusDetails"], job["statusDetails"]
    assert on_dask.http.get(f"batchPredictions/{job['id']}/download/").status_code == 404
    assert eventually_gone(job_dir(on_dask, job["id"])), "the failed job left parts or output behind"


def test_a_small_job_is_scored_in_the_service(on_dask: Service, deployments: tuple[str, str]) -> None:
    job = on_dask.run({"deploymentId": deployments[0], "intakeSettings": {"type": "localFile"},
                       "outputSettings": {"type": "localFile"}}, frame(50, seed=7).to_csv(index=False).encode())
    assert job["status"] == "COMPLETED"
    assert "scored in the service process: the input is smaller than one partition" in job["statusDetails"]


@pytest.mark.postgres
def test_postgresql_by_key_ranges_row_for_row(on_dask: Service, on_local: Service, deployments: tuple[str, str],
                                              postgres_server: PostgresServer) -> None:
    url = postgres_server.create_database()
    engine = sa.create_engine(url)
    source = frame(3000, seed=8)
    source.insert(1, "id", range(1, 3001))
    with engine.begin() as conn:
        source.to_sql("source", conn, index=False)
        conn.exec_driver_sql("UPDATE source SET id = NULL WHERE id = 1234")  # NULL keys are read too
    tables = {}
    for service, deployment, table in ((on_dask, deployments[0], "scored_dask"), (on_local, deployments[1], "scored_local")):
        store = service.create("externalDataStores/", {"canonicalName": f"pg-{ids.new_id()}",
                                                       "params": {"url": url, "partitionColumn": "id"}})
        job = service.run({"deploymentId": deployment, "passthroughColumns": ["row_id", "id"],
                           "intakeSettings": {"type": "jdbc", "dataStoreId": store, "table": "source"},
                           "outputSettings": {"type": "jdbc", "dataStoreId": store, "table": table,
                                              "statementType": "create_table"}})
        assert job["status"] == "COMPLETED", job
        if service is on_dask:
            assert "on the Dask cluster in 8 partitions" in job["statusDetails"], job["statusDetails"]
        with engine.connect() as conn:
            tables[table] = pd.read_sql(f"SELECT * FROM {table} ORDER BY row_id", conn)
    pd.testing.assert_frame_equal(tables["scored_dask"], tables["scored_local"])
    assert len(tables["scored_dask"]) == 3000 and tables["scored_dask"]["row_id"].is_unique
    with engine.connect() as conn:
        left = [n for n in sa.inspect(conn).get_table_names() if n.startswith("dr_part")]
    assert left == [], "staging tables were left behind"

    # without a partition column the job runs in one partition and says so
    plain = on_dask.create("externalDataStores/", {"canonicalName": f"pg-{ids.new_id()}", "params": {"url": url}})
    job = on_dask.run({"deploymentId": deployments[0], "passthroughColumns": ["row_id"],
                       "intakeSettings": {"type": "jdbc", "dataStoreId": plain, "table": "source"},
                       "outputSettings": {"type": "jdbc", "dataStoreId": plain, "table": "scored_plain",
                                          "statementType": "create_table"}})
    assert job["status"] == "COMPLETED", job
    assert "names no partitionColumn" in job["statusDetails"] and "one partition" in job["statusDetails"]
    engine.dispose()
