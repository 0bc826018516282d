"""The official DataRobot SDK (3.20) against a served instance, on SQLite and on PostgreSQL.

Where the contract is unsure the service follows what the SDK sends: PATCH without a trailing
slash, ``version/`` first, a token in ``Authorization: Token``, and ``BatchPredictionJob`` listing
through ``list_by_status`` (SDK 3.20 has no ``BatchPredictionJob.list``), which returns raw dicts.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import datarobot as dr
import httpx
import pytest

from reconciler.service.testing import LocalServer, PostgresServer

from .helpers import refs, unique

TOKEN = "sdk-test-token-5b1e0c7a"


@pytest.fixture(params=["sqlite", "postgres"])
def server(request: pytest.FixtureRequest) -> Iterator[LocalServer]:
    db_url = None
    if request.param == "postgres":
        pg: PostgresServer = request.getfixturevalue("postgres_server")
        db_url = pg.create_database()
    with LocalServer(db_url=db_url, token=TOKEN) as s:
        yield s


def test_sdk_round_trip(server: LocalServer) -> None:
    with httpx.Client(base_url=server.api_url, headers=server.headers()) as client:
        ids = refs(client)
    with pytest.raises(dr.errors.ClientError) as refused:
        dr.Client(endpoint=server.url + "/api/v2", token="wrong-token")
    assert refused.value.status_code == 401  # how the SDK learns of a bad token
    dr.Client(endpoint=server.url + "/api/v2", token=TOKEN)
    spec = {
        "num_concurrent": 2,
        "deployment_id": ids["deploymentId"],
        "intake_settings": {"type": "s3", "url": "s3://bucket/in.csv", "credential_id": ids["credentialId"]},
        "output_settings": {"type": "s3", "url": "s3://bucket/out.csv", "credential_id": ids["credentialId"]},
        "passthrough_columns_set": "all",
    }
    schedule = {"minute": [15], "hour": [3], "day_of_month": ["*"], "month": ["*"], "day_of_week": [1]}
    name = unique("sdk")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        created = dr.BatchPredictionJobDefinition.create(enabled=True, batch_prediction_job=spec, name=name,
                                                         schedule=schedule)
        assert created.name == name and created.enabled is True
        assert created.schedule == schedule
        job = created.batch_prediction_job
        assert job["num_concurrent"] == 2 and job["deployment_id"] == ids["deploymentId"]
        assert job["intake_settings"]["url"] == "s3://bucket/in.csv"
        assert created.last_successful_run_time == "1900-01-01T00:00:00.000000Z"

        fetched = dr.BatchPredictionJobDefinition.get(created.id)
        assert fetched.id == created.id and fetched.batch_prediction_job == created.batch_prediction_job

        listed = dr.BatchPredictionJobDefinition.list(search_name=name, limit=0)
        assert [d.id for d in listed] == [created.id]
        paged = dr.BatchPredictionJobDefinition.list(deployment_id=ids["deploymentId"], limit=10, offset=0)
        assert created.id in [d.id for d in paged]

        updated = fetched.update(enabled=False, batch_prediction_job={**spec, "num_concurrent": 4},
                                 name=name + "-renamed")
        assert updated.name == name + "-renamed" and updated.enabled is False
        assert updated.batch_prediction_job["num_concurrent"] == 4
        assert updated.schedule == schedule  # absent from the PATCH, so unchanged

        job_run = updated.run_once()
        assert job_run.status == "INITIALIZING" and job_run.id
        again = dr.BatchPredictionJob.get(job_run.id)
        assert again.status == "INITIALIZING" and again.id == job_run.id
        queued = dr.BatchPredictionJob.list_by_status(["INITIALIZING"])
        assert job_run.id in [j["id"] for j in queued]

        updated.delete()
        with pytest.raises(dr.errors.ClientError) as caught:
            dr.BatchPredictionJobDefinition.get(created.id)
        assert caught.value.status_code == 404

