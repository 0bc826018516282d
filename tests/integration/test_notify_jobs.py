"""job.failed from the local service's runner: a job that ends FAILED reaches a real loopback
receiver, signed, with a body valid against schemas/notification.schema.json; a job that
completes sends nothing; ``reconciler serve`` reads its channels from the environment."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from reconciler.contract import validators
from reconciler.notify.send import Channel, channels_from_env
from reconciler.service import ids
from reconciler.service.records import JobRecord, ResourceRecord
from reconciler.service.runner.pool import RESTARTED, STOPPED, JobRunner
from reconciler.service.settings import ServiceSettings
from reconciler.service.store import Store
from reconciler.service.testing import LocalServer, wait_for_job

from .receiver import Receiver, serve

TOKEN = "jobs-notify-token-3b7a"
SECRET = "jobs-hook-secret-44"
USER = {"username": "t", "userId": "0" * 24, "fullName": None}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from serve()


def test_a_failed_job_is_told_to_the_webhook(receiver: Receiver) -> None:
    channel = Channel(name="ops", kind="webhook", url=receiver.url, secret=SECRET, events=frozenset({"job.failed"}))
    with LocalServer(token=TOKEN, run_jobs=True, settings={"notify": (channel,)}) as server, \
            httpx.Client(base_url=server.api_url, headers={"Authorization": f"Token {TOKEN}"}, timeout=60) as client:
        deployment = client.post("deployments/", json={"label": "no model"}).json()["id"]
        job_id = client.post("batchPredictions/", json={"deploymentId": deployment,
                                                        "intakeSettings": {"type": "localFile"}}).json()["id"]
        client.put(f"batchPredictions/{job_id}/csvUpload/", content=b"x1,x2,x3\n1,2,3\n")
        job = wait_for_job(client, job_id)
        assert job["status"] == "FAILED"
        (request,) = receiver.wait(1)
    expected = "sha256=" + hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(request.headers["x-reconciler-signature-256"], expected)
    body = json.loads(request.body)
    validators.validator("notification").validate(body)
    assert body["event"] == "job.failed" and body["source"] == "service"
    assert body["job"]["id"] == job_id and body["job"]["status"] == "FAILED"
    assert "has no model" in body["job"]["message"] and "has no model" in body["summary"]


def test_serve_takes_its_channels_from_the_environment_only_for_job_failed() -> None:
    found = channels_from_env({"RECONCILER_NOTIFY_WEBHOOK_URL": "https://hooks.example.com/x",
                               "RECONCILER_NOTIFY_WEBHOOK_SECRET": "s3cr3t",
                               "RECONCILER_NOTIFY_APPRISE_URL": "slack://a/b/c"}, events=frozenset({"job.failed"}))
    assert [(c.name, c.kind, c.events) for c in found] == [("webhook", "webhook", frozenset({"job.failed"})),
                                                           ("apprise", "apprise", frozenset({"job.failed"}))]
    assert "s3cr3t" not in repr(found) and "hooks.example.com" not in repr(found)
    assert channels_from_env({}, events=frozenset({"job.failed"})) == ()
    narrowed = channels_from_env({"RECONCILER_NOTIFY_WEBHOOK_URL": "https://h.example.com/x",
                                  "RECONCILER_NOTIFY_EVENTS": "drift.found"}, events=frozenset({"job.failed"}))
    assert narrowed[0].events == frozenset()  # this process sends no drift.found


def _claimed(db_url: str, runner: str) -> JobRecord:
    """A job that ``runner`` claimed (RUNNING under its lease) in the database at ``db_url``."""
    store = Store(db_url)
    try:
        now = ids.iso(ids.utcnow())
        deployment = ids.new_id()
        store.create_resource(ResourceRecord(id=deployment, kind="deployment", name="d", body={"label": "d"},
                                             created=now, created_by=USER))
        job = store.create_job(JobRecord(id=ids.new_id(), status="INITIALIZING", status_details="queued",
                                         job={"deploymentId": deployment, "intakeSettings": {"type": "s3"}},
                                         created=now, updated=now, created_by=USER))
        claimed = store.claim_next_job(runner, now=now)
    finally:
        store.close()
    assert claimed is not None and claimed.id == job.id and claimed.status == "RUNNING"
    return claimed


def test_a_job_failed_by_lease_expiry_is_told_like_any_failed_job(receiver: Receiver, tmp_path: Path) -> None:
    """A replica on another machine claimed a job and died (its lease is never renewed): the served
    replica fails it once the lease has expired and sends job.failed, as for a job that fails while
    it runs."""
    db_url = f"sqlite:///{tmp_path}/shared.db"
    job = _claimed(db_url, "other-host:4242:00000000:00000000")  # another machine: only its lease tells
    channel = Channel(name="ops", kind="webhook", url=receiver.url, secret=SECRET, events=frozenset({"job.failed"}))
    with LocalServer(token=TOKEN, db_url=db_url, run_jobs=True,
                     settings={"notify": (channel,), "job_lease_seconds": 1.5}) as server, \
            httpx.Client(base_url=server.api_url, headers={"Authorization": f"Token {TOKEN}"}, timeout=60) as client:
        (request,) = receiver.wait(1, timeout=30)
        failed = client.get(f"batchPredictions/{job.id}/").json()
    assert failed["status"] == "FAILED" and failed["statusDetails"] == RESTARTED
    body = json.loads(request.body)
    validators.validator("notification").validate(body)
    assert body["event"] == "job.failed" and body["source"] == "service"
    assert body["job"] == {"id": job.id, "definitionId": None, "definitionName": None, "status": "FAILED",
                           "message": RESTARTED}
    expected = "sha256=" + hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(request.headers["x-reconciler-signature-256"], expected)


def test_a_job_failed_because_its_service_stops_is_told_too(receiver: Receiver, tmp_path: Path) -> None:
    """A runner that stops with a job still running fails it (STOPPED) and sends job.failed before
    it returns."""
    db_url = f"sqlite:///{tmp_path}/own.db"
    channel = Channel(name="ops", kind="webhook", url=receiver.url, events=frozenset({"job.failed"}))
    store = Store(db_url)
    runner = JobRunner(store, ServiceSettings(db_url=db_url, notify=(channel,)))
    job = _claimed(db_url, runner.runner_id)
    runner.active[job.id] = threading.Event()  # as if its driver thread were scoring it

    async def start_and_stop() -> None:
        await runner.start()
        await runner.stop()

    try:
        asyncio.run(start_and_stop())
        assert store.get_job(job.id).status == "FAILED"
    finally:
        store.close()
    (request,) = receiver.requests  # sent before stop() returned
    body = json.loads(request.body)
    assert body["event"] == "job.failed" and body["job"]["id"] == job.id and body["job"]["message"] == STOPPED
