"""job.failed from the local service's runner: a job that ends FAILED reaches a real loopback
receiver, signed, with a body valid against schemas/notification.schema.json; a job that
completes sends nothing; ``reconciler serve`` reads its channels from the environment."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator

import httpx
import pytest

from reconciler.contract import validators
from reconciler.notify.send import Channel, channels_from_env
from reconciler.service.testing import LocalServer, wait_for_job

from .receiver import Receiver, serve

TOKEN = "jobs-notify-token-3b7a"
SECRET = "jobs-hook-secret-44"


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
