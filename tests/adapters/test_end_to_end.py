"""End to end through the real SDK, a served instance that runs jobs, moto S3 and PostgreSQL:
``BatchPredictionJob.score_s3`` with stored credentials, ``score_from_existing``, and a scheduled
definition whose firing ends with the scored rows in a PostgreSQL table."""

from __future__ import annotations

import warnings
from datetime import timedelta
from pathlib import Path
from typing import Any

import datarobot as dr
import httpx
import pandas as pd
import sqlalchemy as sa
from sklearn.linear_model import LogisticRegression

from reconciler.service import ids
from reconciler.service.scheduler import Scheduler
from reconciler.service.store import Store
from reconciler.service.testing import LocalServer, PostgresServer, wait_for_job

from .conftest import boto, check_scored, scoring_frame


def test_score_s3_then_score_from_existing(served: tuple[LocalServer, httpx.Client], s3_endpoint: str,
                                          bucket: str, model_deployment: tuple[LogisticRegression, str]) -> None:
    model, deployment_id = model_deployment
    source = scoring_frame(1500, seed=4)
    client = boto(s3_endpoint)
    client.put_object(Bucket=bucket, Key="in.csv", Body=source.to_csv(index=False).encode())
    credential = dr.Credential.create_s3(name="moto", aws_access_key_id="AKIDE2E", aws_secret_access_key="e2e-secret")

    job = dr.BatchPredictionJob.score_s3(deployment_id, f"s3://{bucket}/in.csv", f"s3://{bucket}/out.csv",
                                         credential=credential, endpoint_url=s3_endpoint,
                                         passthrough_columns=["row_id"])
    job.wait_for_completion(max_wait=120)
    assert job.get_status()["status"] == "COMPLETED", job.get_status()["statusDetails"]
    scored = pd.read_csv(client.get_object(Bucket=bucket, Key="out.csv")["Body"])
    check_scored(scored, source, model)

    client.delete_object(Bucket=bucket, Key="out.csv")
    again = dr.BatchPredictionJob.score_from_existing(str(job.id))
    assert again.id != job.id
    again.wait_for_completion(max_wait=120)
    assert again.get_status()["status"] == "COMPLETED", again.get_status()["statusDetails"]
    check_scored(pd.read_csv(client.get_object(Bucket=bucket, Key="out.csv")["Body"]), source, model)


def test_scheduled_definition_fills_a_postgres_table(served: tuple[LocalServer, httpx.Client], s3_endpoint: str,
                                                     bucket: str, postgres_server: PostgresServer,
                                                     model_deployment: tuple[LogisticRegression, str]) -> None:
    server, http = served
    model, deployment_id = model_deployment
    source = scoring_frame(800, seed=5)
    boto(s3_endpoint).put_object(Bucket=bucket, Key="daily.csv", Body=source.to_csv(index=False).encode())
    target_url = postgres_server.create_database()
    credential = http.post("credentials/", json={"name": "s3", "credentialType": "s3", "awsAccessKeyId": "A",
                                                 "awsSecretAccessKey": "B"}).json()["id"]
    data_store = http.post("externalDataStores/", json={"canonicalName": "warehouse", "params": {"url": target_url}})
    assert data_store.status_code == 201 and "params" in data_store.json()
    spec = {"deployment_id": deployment_id, "num_concurrent": 1, "passthrough_columns": ["row_id"],
            "intake_settings": {"type": "s3", "url": f"s3://{bucket}/daily.csv", "credential_id": credential,
                                "endpoint_url": s3_endpoint},
            "output_settings": {"type": "jdbc", "data_store_id": data_store.json()["id"], "table": "scores",
                                "statement_type": "insert", "create_table_if_not_exists": True}}
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
    assert status["source"] == "scheduled"

    engine = sa.create_engine(target_url)
    try:
        with engine.connect() as conn:
            written = pd.read_sql(sa.text("SELECT * FROM scores ORDER BY row_id"), conn)
    finally:
        engine.dispose()
    check_scored(written, source, model)
    shown = http.get(f"batchPredictionJobDefinitions/{definition.id}/").json()
    assert shown["lastScheduledRunTime"] == ids.iso(firing)
    assert shown["lastStartedJobStatus"] == "COMPLETED"
    assert shown["lastSuccessfulRunTime"] != "1900-01-01T00:00:00.000000Z"


def test_run_on_schedule_scores_into_sqlite_at_the_next_firing(served: tuple[LocalServer, httpx.Client],
                                                              s3_endpoint: str, bucket: str, tmp_path: Path,
                                                              model_deployment: tuple[LogisticRegression, str]) -> None:
    """``run_on_schedule`` through the SDK, then a second service process's scheduler at the
    shown ``nextScheduledRunTime``: one job, rows in the SQLite table (create_table), and the
    definition's last*RunTime / lastStartedJobStatus current."""
    server, http = served
    model, deployment_id = model_deployment
    source = scoring_frame(600, seed=6)
    boto(s3_endpoint).put_object(Bucket=bucket, Key="hourly.csv", Body=source.to_csv(index=False).encode())
    credential = http.post("credentials/", json={"name": "s3-hourly", "credentialType": "s3", "awsAccessKeyId": "A",
                                                 "awsSecretAccessKey": "B"}).json()["id"]
    target_url = f"sqlite:///{tmp_path}/warehouse.db"
    data_store = http.post("externalDataStores/", json={"canonicalName": "lite", "params": {"url": target_url}})
    assert data_store.status_code == 201, data_store.text
    spec = {"deployment_id": deployment_id, "num_concurrent": 2, "passthrough_columns": ["row_id"],
            "intake_settings": {"type": "s3", "url": f"s3://{bucket}/hourly.csv", "credential_id": credential,
                                "endpoint_url": s3_endpoint},
            "output_settings": {"type": "jdbc", "data_store_id": data_store.json()["id"], "table": "hourly",
                                "statement_type": "create_table"}}
    every_hour: Any = {"minute": [15], "hour": ["*"], "day_of_month": ["*"], "month": ["*"], "day_of_week": ["*"]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        definition = dr.BatchPredictionJobDefinition.create(enabled=False, batch_prediction_job=spec,
                                                            name=f"hourly-{ids.new_id()}")
        assert definition.run_on_schedule(every_hour).enabled is True
    upcoming = ids.parse_iso(http.get(f"batchPredictionJobDefinitions/{definition.id}/").json()["nextScheduledRunTime"])
    assert upcoming.minute == 15

    store = Store(server.db_url)
    try:
        assert Scheduler(store, clock=lambda: upcoming - timedelta(seconds=5)).tick() == []  # not yet
        (job,) = Scheduler(store, clock=lambda: upcoming + timedelta(seconds=3)).tick()
        assert Scheduler(store, clock=lambda: upcoming + timedelta(seconds=9)).tick() == []  # once per firing
    finally:
        store.close()
    status = wait_for_job(http, job.id, timeout=120)
    assert status["status"] == "COMPLETED", status["statusDetails"]
    assert status["scoredRows"] == 600 and status["source"] == "scheduled"

    engine = sa.create_engine(target_url)
    try:
        with engine.connect() as conn:
            written = pd.read_sql(sa.text("SELECT * FROM hourly ORDER BY row_id"), conn)
    finally:
        engine.dispose()
    assert list(written.columns) == ["row_id", "label_1_PREDICTION", "label_0_PREDICTION", "label_PREDICTION",
                                     "THRESHOLD", "POSITIVE_CLASS"]
    check_scored(written, source, model)
    shown = http.get(f"batchPredictionJobDefinitions/{definition.id}/").json()
    assert shown["lastScheduledRunTime"] == ids.iso(upcoming)
    assert shown["lastStartedJobStatus"] == "COMPLETED"
    # the firing's time is simulated; the job really finished now, after the definition was made
    assert ids.parse_iso(shown["lastSuccessfulRunTime"]) >= ids.parse_iso(shown["created"])
