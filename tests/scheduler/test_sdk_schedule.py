"""``BatchPredictionJobDefinition.run_on_schedule`` (a PATCH with enabled + schedule) through the
real SDK, then a scheduler process on the same database firing it at its next run time."""

from __future__ import annotations

import warnings
from typing import Any

import datarobot as dr
import httpx

from reconciler.service import ids
from reconciler.service.scheduler import Scheduler
from reconciler.service.store import Store
from reconciler.service.testing import LocalServer

from .conftest import Clock

TOKEN = "sched-sdk-token-2f7d"


def test_run_on_schedule_then_fires_once() -> None:
    with LocalServer(token=TOKEN) as server, httpx.Client(base_url=server.api_url, headers=server.headers()) as client:
        deployment = client.post("deployments/", json={"label": "d"}).json()["id"]
        credential = client.post("credentials/", json={"name": "c", "credentialType": "s3", "awsAccessKeyId": "k",
                                                       "awsSecretAccessKey": "s"}).json()["id"]
        dr.Client(endpoint=server.url + "/api/v2", token=TOKEN)
        spec = {"deployment_id": deployment, "num_concurrent": 1,
                "intake_settings": {"type": "s3", "url": "s3://b/in.csv", "credential_id": credential},
                "output_settings": {"type": "s3", "url": "s3://b/out.csv", "credential_id": credential}}
        schedule: Any = {"minute": [30], "hour": ["*"], "day_of_month": ["*"], "month": ["*"], "day_of_week": ["*"]}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            definition = dr.BatchPredictionJobDefinition.create(enabled=False, batch_prediction_job=spec,
                                                                name=f"sched-{ids.new_id()}")
            raw = client.get(f"batchPredictionJobDefinitions/{definition.id}/").json()
            assert definition.enabled is False and raw["nextScheduledRunTime"] is None
            scheduled = definition.run_on_schedule(schedule)
            assert scheduled.enabled is True and scheduled.schedule == schedule
            raw = client.get(f"batchPredictionJobDefinitions/{definition.id}/").json()
            upcoming = ids.parse_iso(raw["nextScheduledRunTime"])
            assert upcoming.minute == 30 and upcoming.second == 0

            store = Store(server.db_url)  # a second service process on the same database
            try:
                clock = Clock(upcoming.replace(second=4))
                assert Scheduler(store, clock=clock).tick() != []
                assert Scheduler(store, clock=clock).tick() == []  # the same firing never twice
            finally:
                store.close()

            fired = dr.BatchPredictionJobDefinition.get(str(definition.id))
            assert str(fired.last_scheduled_run_time) in (ids.iso(upcoming), str(upcoming))
            raw = client.get(f"batchPredictionJobDefinitions/{definition.id}/").json()
            assert raw["lastScheduledRunTime"] == ids.iso(upcoming)
            assert raw["lastStartedJobStatus"] == "INITIALIZING"
            jobs = client.get("batchPredictions/", params={"batchPredictionJobDefinitionId": definition.id}).json()
            assert [job["source"] for job in jobs["data"]] == ["scheduled"]
            assert jobs["data"][0]["jobSpec"]["intakeSettings"]["url"] == "s3://b/in.csv"
