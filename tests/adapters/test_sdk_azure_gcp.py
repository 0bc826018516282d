"""The documentation's Azure Blob and Google Cloud Storage examples, through the official SDK,
against a served instance that runs jobs, Azurite and gcp-storage-emulator: the scored output is
byte for byte what the S3 path (moto) writes from the same input."""

from __future__ import annotations

import io
import json
import logging
import time
import warnings
from datetime import timedelta
from typing import Any

import datarobot as dr
import httpx
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.linear_model import LogisticRegression

from reconciler.service import ids
from reconciler.service.scheduler import Scheduler
from reconciler.service.store import Store
from reconciler.service.testing import LocalServer, wait_for_job

from .conftest import boto, check_scored, scoring_frame
from .emulators import ACCOUNT_KEY, Azurite, GcsEmulator

Served = tuple[LocalServer, httpx.Client]


def _finished(job: Any) -> dict[str, Any]:
    """The documentation's way to wait (the SDK's waiter, which backs off to 5 s polls)."""
    job.wait_for_completion(max_wait=120)
    status: dict[str, Any] = job.get_status()
    return status


def _completed(http: httpx.Client, job: Any) -> None:
    """A quicker wait (polls every 50 ms) for the jobs that only set up a comparison."""
    status = wait_for_job(http, str(job.id), timeout=120)
    assert status["status"] == "COMPLETED", status["statusDetails"]


def _s3_reference(http: httpx.Client, s3_endpoint: str, bucket: str, deployment_id: str, data: bytes, *, fmt: str = "csv") -> bytes:
    """What the S3 path writes for the same input and options: the output to compare with."""
    client = boto(s3_endpoint)
    client.put_object(Bucket=bucket, Key=f"ref-in.{fmt}", Body=data)
    credential = dr.Credential.create_s3(name=f"ref-{ids.new_id()}", aws_access_key_id="AKIDREF",
                                         aws_secret_access_key="ref-secret")
    settings = {"type": "s3", "credential_id": credential.credential_id, "endpoint_url": s3_endpoint, "format": fmt}
    job = dr.BatchPredictionJob.score(deployment_id, intake_settings={**settings, "url": f"s3://{bucket}/ref-in.{fmt}"},
                                      output_settings={**settings, "url": f"s3://{bucket}/ref-out.{fmt}"},
                                      passthrough_columns=["row_id"])
    _completed(http, job)
    body: bytes = client.get_object(Bucket=bucket, Key=f"ref-out.{fmt}")["Body"].read()
    return body


def test_azure_example_scores_container_to_container(served: Served, model_deployment: tuple[LogisticRegression, str],
                                                     azurite_server: Azurite, s3_endpoint: str, bucket: str) -> None:
    model, deployment_id = model_deployment
    source = scoring_frame(2500, seed=21)
    data = source.to_csv(index=False).encode()
    inputs, outputs = azurite_server.create_container(), azurite_server.create_container()
    azurite_server.put(inputs, "in.csv", data)

    # As the documentation writes it:
    cred = dr.Credential.create_azure(name="my_azure_cred", azure_connection_string=azurite_server.connection_string)
    job = dr.BatchPredictionJob.score(
        deployment_id,
        intake_settings={"type": "azure", "url": azurite_server.url(inputs, "in.csv"),
                         "credential_id": cred.credential_id},
        output_settings={"type": "azure", "url": azurite_server.url(outputs, "out.csv"),
                         "credential_id": cred.credential_id},
        passthrough_columns=["row_id"],
    )
    status = _finished(job)
    assert status["status"] == "COMPLETED", status["status_details"]
    assert status["scored_rows"] == 2500
    written = azurite_server.get(outputs, "out.csv")
    check_scored(pd.read_csv(io.BytesIO(written)), source, model)
    assert written == _s3_reference(served[1], s3_endpoint, bucket, deployment_id, data)

    again = dr.BatchPredictionJob.score_azure(deployment_id, azurite_server.url(inputs, "in.csv"),
                                              azurite_server.url(outputs, "again.csv"), credential=cred,
                                              passthrough_columns=["row_id"])
    _completed(served[1], again)
    assert azurite_server.get(outputs, "again.csv") == written


def test_gcp_example_scores_bucket_to_bucket(served: Served, model_deployment: tuple[LogisticRegression, str],
                                            gcs_endpoint: GcsEmulator, s3_endpoint: str, bucket: str) -> None:
    model, deployment_id = model_deployment
    source = scoring_frame(2500, seed=22)
    data = source.to_csv(index=False).encode()
    inputs, outputs = gcs_endpoint.create_bucket(), gcs_endpoint.create_bucket()
    gcs_endpoint.put(inputs, "in.csv", data)

    # As the documentation writes it (the key file's JSON text):
    cred = dr.Credential.create_gcp(name="my_gcp_cred", gcp_key=json.dumps(gcs_endpoint.service_account_key()))
    job = dr.BatchPredictionJob.score(
        deployment_id,
        intake_settings={"type": "gcp", "url": f"gs://{inputs}/in.csv", "credential_id": cred.credential_id},
        output_settings={"type": "gcp", "url": f"gs://{outputs}/out.csv", "credential_id": cred.credential_id},
        passthrough_columns=["row_id"],
    )
    status = _finished(job)
    assert status["status"] == "COMPLETED", status["status_details"]
    written = gcs_endpoint.get(outputs, "out.csv")
    check_scored(pd.read_csv(io.BytesIO(written)), source, model)
    assert written == _s3_reference(served[1], s3_endpoint, bucket, deployment_id, data)

    again = dr.BatchPredictionJob.score_gcp(deployment_id, f"gs://{inputs}/in.csv", f"gs://{outputs}/again.csv",
                                            credential=cred, passthrough_columns=["row_id"])
    _completed(served[1], again)
    assert gcs_endpoint.get(outputs, "again.csv") == written


def test_parquet_from_azure_to_gcs(served: Served, model_deployment: tuple[LogisticRegression, str],
                                  azurite_server: Azurite, container: str, gcs_endpoint: GcsEmulator,
                                  gcs_bucket: str, s3_endpoint: str, bucket: str) -> None:
    model, deployment_id = model_deployment
    source = scoring_frame(3000, seed=23)
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(source, preserve_index=False), buffer, row_group_size=1000)
    azurite_server.put(container, "in.parquet", buffer.getvalue())
    azure = dr.Credential.create_azure(name="az", azure_connection_string=azurite_server.connection_string)
    gcp = dr.Credential.create_gcp(name="gcs", gcp_key=gcs_endpoint.service_account_key())
    job = dr.BatchPredictionJob.score(
        deployment_id,
        intake_settings={"type": "azure", "url": azurite_server.url(container, "in.parquet"),
                         "credential_id": azure.credential_id, "format": "parquet"},
        output_settings={"type": "gcp", "url": f"gs://{gcs_bucket}/out.parquet", "credential_id": gcp.credential_id,
                         "format": "parquet"},
        passthrough_columns=["row_id"],
    )
    status = _finished(job)
    assert status["status"] == "COMPLETED", status["status_details"]
    written = pq.read_table(io.BytesIO(gcs_endpoint.get(gcs_bucket, "out.parquet")))
    check_scored(written.to_pandas(), source, model)
    reference = pq.read_table(io.BytesIO(_s3_reference(served[1], s3_endpoint, bucket, deployment_id, buffer.getvalue(),
                                                       fmt="parquet")))
    assert written.schema == reference.schema and written.equals(reference)


def test_scheduled_definition_reads_azure_and_writes_gcs(served: Served, model_deployment: tuple[LogisticRegression, str],
                                                        azurite_server: Azurite, container: str,
                                                        gcs_endpoint: GcsEmulator, gcs_bucket: str) -> None:
    server, http = served
    model, deployment_id = model_deployment
    source = scoring_frame(800, seed=24)
    azurite_server.put(container, "daily.csv", source.to_csv(index=False).encode())
    azure = dr.Credential.create_azure(name="az-daily", azure_connection_string=azurite_server.connection_string)
    gcp = dr.Credential.create_gcp(name="gcs-daily", gcp_key=gcs_endpoint.service_account_key())
    spec = {"deployment_id": deployment_id, "num_concurrent": 1, "passthrough_columns": ["row_id"],
            "intake_settings": {"type": "azure", "url": azurite_server.url(container, "daily.csv"),
                                "credential_id": azure.credential_id},
            "output_settings": {"type": "gcp", "url": f"gs://{gcs_bucket}/daily-scored.csv",
                                "credential_id": gcp.credential_id}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        definition = dr.BatchPredictionJobDefinition.create(
            enabled=True, batch_prediction_job=spec, name=f"nightly-{ids.new_id()}",
            schedule={"minute": [0], "hour": [2], "day_of_month": ["*"], "month": ["*"], "day_of_week": ["*"]})
    store = Store(server.db_url)
    try:
        firing = (ids.utcnow() + timedelta(days=1)).replace(hour=2, minute=0, second=0, microsecond=0)
        (job,) = Scheduler(store, clock=lambda: firing + timedelta(seconds=2)).tick()
    finally:
        store.close()
    status = wait_for_job(http, job.id, timeout=120)
    assert status["status"] == "COMPLETED", status["statusDetails"]
    assert status["source"] == "scheduled" and status["scoredRows"] == 800
    check_scored(pd.read_csv(io.BytesIO(gcs_endpoint.get(gcs_bucket, "daily-scored.csv"))), source, model)
    shown = http.get(f"batchPredictionJobDefinitions/{definition.id}/").json()
    assert shown["lastScheduledRunTime"] == ids.iso(firing) and shown["lastStartedJobStatus"] == "COMPLETED"


@pytest.mark.parametrize("kind", ["azure", "gcp"])
def test_abort_in_the_middle_leaves_no_output(kind: str, served: Served, model_deployment: tuple[LogisticRegression, str],
                                             azurite_server: Azurite, container: str, gcs_endpoint: GcsEmulator,
                                             gcs_bucket: str) -> None:
    """DELETE while the job writes: ABORTED, and the half-written output never appears. The abort
    comes after 120,000 written rows (~10 MB of CSV), so at least one 8 MiB part is uploaded."""
    _, http = served
    _, deployment_id = model_deployment
    rows = 400_000
    data = scoring_frame(rows, seed=25).to_csv(index=False).encode()
    if kind == "azure":
        azurite_server.put(container, "big.csv", data)
        cred = dr.Credential.create_azure(name="az-big", azure_connection_string=azurite_server.connection_string)
        settings = {"type": "azure", "credential_id": cred.credential_id}
        urls = azurite_server.url(container, "big.csv"), azurite_server.url(container, "big-scored.csv")

        def names() -> list[str]:
            return azurite_server.names(container)
    else:
        gcs_endpoint.put(gcs_bucket, "big.csv", data)
        cred = dr.Credential.create_gcp(name="gcs-big", gcp_key=gcs_endpoint.service_account_key())
        settings = {"type": "gcp", "credential_id": cred.credential_id}
        urls = f"gs://{gcs_bucket}/big.csv", f"gs://{gcs_bucket}/big-scored.csv"

        def names() -> list[str]:
            return gcs_endpoint.names(gcs_bucket)
    job = dr.BatchPredictionJob.score(deployment_id, intake_settings={**settings, "url": urls[0]},
                                      output_settings={**settings, "url": urls[1]},
                                      passthrough_columns=["row_id"], chunk_size=65536, num_concurrent=1)
    deadline = time.monotonic() + 60
    while True:  # wait until a part is written, then abort
        shown = http.get(f"batchPredictions/{job.id}/").json()
        assert shown["status"] in ("INITIALIZING", "RUNNING"), shown["statusDetails"]
        if shown["scoredRows"] >= 120_000:
            break
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert 0 < shown["percentageCompleted"] < 100  # progress moves while an object is read
    job.delete()
    final = wait_for_job(http, job.id, timeout=60)
    assert final["status"] == "ABORTED" and final["scoredRows"] < rows
    assert names() == ["big.csv"]


def test_missing_object_and_wrong_keys_fail_the_job(served: Served, model_deployment: tuple[LogisticRegression, str],
                                                   azurite_server: Azurite, container: str, gcs_endpoint: GcsEmulator,
                                                   gcs_bucket: str, caplog: pytest.LogCaptureFixture) -> None:
    """Each failure names the object or the credential and says what to fix; no response, log
    line or statusDetails contains a secret."""
    _, http = served
    _, deployment_id = model_deployment
    caplog.set_level(logging.DEBUG)
    azurite_server.put(container, "in.csv", b"row_id,x1,x2,x3\nr1,0.1,0.2,0.3\n")
    gcs_endpoint.put(gcs_bucket, "in.csv", b"row_id,x1,x2,x3\nr1,0.1,0.2,0.3\n")
    azure = dr.Credential.create_azure(name="az-ok", azure_connection_string=azurite_server.connection_string)
    wrong_key = "W" * 86 + "=="
    wrong = dr.Credential.create_azure(
        name="az-wrong", azure_connection_string=azurite_server.connection_string.replace(ACCOUNT_KEY, wrong_key))
    key = gcs_endpoint.service_account_key()
    gcp = dr.Credential.create_gcp(name="gcs-ok", gcp_key=key)
    broken_key = {**key, "private_key": key["private_key"].replace("MII", "XXX", 1)}
    broken = dr.Credential.create_gcp(name="gcs-broken", gcp_key=broken_key)

    def run(intake: dict[str, Any], output: dict[str, Any]) -> str:
        job = dr.BatchPredictionJob.score(deployment_id, intake_settings=intake, output_settings=output)
        status = wait_for_job(http, str(job.id), timeout=60)  # the SDK's waiter knows no FAILED status
        assert status["status"] == "FAILED"
        details: str = status["statusDetails"]
        return details

    az_missing = azurite_server.url(container, "missing.csv")
    assert run({"type": "azure", "url": az_missing, "credential_id": azure.credential_id},
               {"type": "azure", "url": azurite_server.url(container, "o.csv"), "credential_id": azure.credential_id}) \
        == f"cannot read {az_missing}: BlobNotFound (the container or blob does not exist)"
    assert run({"type": "gcp", "url": f"gs://{gcs_bucket}/missing.csv", "credential_id": gcp.credential_id},
               {"type": "gcp", "url": f"gs://{gcs_bucket}/o.csv", "credential_id": gcp.credential_id}) \
        == f"cannot read gs://{gcs_bucket}/missing.csv: NotFound (the bucket or object does not exist)"
    az_in = azurite_server.url(container, "in.csv")
    assert run({"type": "azure", "url": az_in, "credential_id": wrong.credential_id},
               {"type": "gcp", "url": f"gs://{gcs_bucket}/o.csv", "credential_id": gcp.credential_id}) \
        == f"cannot read {az_in}: AuthorizationFailure (check the credential's connection string (AccountKey))"
    details = run({"type": "gcp", "url": f"gs://{gcs_bucket}/in.csv", "credential_id": gcp.credential_id},
                  {"type": "gcp", "url": f"gs://{gcs_bucket}/o.csv", "credential_id": broken.credential_id})
    assert details.startswith(f"credential {broken.credential_id}: gcpKey is not a usable service account key")
    assert azurite_server.names(container) == ["in.csv"] and gcs_endpoint.names(gcs_bucket) == ["in.csv"]

    texts = [http.get(f"credentials/{c.credential_id}/").text for c in (azure, wrong, gcp, broken)]
    texts.append(http.get("credentials/", params={"limit": 1000}).text)
    texts.append(http.get("batchPredictions/", params={"limit": 1000}).text)
    texts.append(caplog.text)
    for text in texts:
        for secret in (ACCOUNT_KEY, wrong_key, key["private_key"], key["private_key_id"],
                       broken_key["private_key"], "PRIVATE KEY"):
            assert secret not in text


def test_credentials_route_takes_the_sdk_fields_and_refuses_misplaced_ones(served: Served) -> None:
    _, http = served
    made = http.post("credentials/", json={"name": "az", "credentialType": "azure",
                                           "azureConnectionString": "AccountName=a;AccountKey=k-secret"})
    assert made.status_code == 201 and "k-secret" not in made.text
    assert made.json()["credentialType"] == "azure"
    refused = http.post("credentials/", json={"name": "s3", "credentialType": "s3",
                                              "azureConnectionString": "AccountName=a;AccountKey=k-secret"})
    assert refused.status_code == 422 and "k-secret" not in refused.text
    assert "not a field of credentialType 's3'" in refused.json()["errors"]["azureConnectionString"]
    not_object = http.post("credentials/", json={"name": "g", "credentialType": "gcp", "gcpKey": "pk-secret-text"})
    assert not_object.status_code == 422 and "pk-secret-text" not in not_object.text
    assert not_object.json()["errors"]["gcpKey"] == "invalid (type); expected an object"
