"""The operator and the controls of issue #13 items 4-5: references by name resolved as the CLI
resolves them (the pipeline against the served local service; then on the real kube-apiserver),
an unresolvable name reported as UnresolvedReference, and drift.found sent to a loopback webhook
when the operator corrects drift."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from operator_harness import (
    CREDENTIAL,
    DEPLOYMENT,
    RESYNC,
    TOKEN,
    Namespace,
    Service,
    manifest,
    operator_session,
    seed,
    wait_for,
)

from reconciler.api.client import Client
from reconciler.contract import validators
from reconciler.operator import act, decide
from reconciler.operator.notices import drift_body
from reconciler.operator.status import Reconciliation, Result
from reconciler.service.testing import LocalServer

BY_NAME = {"deploymentRef": {"name": "operator-tests"}, "numConcurrent": 4,
           "intakeSettings": {"type": "s3", "url": "s3://bucket/in.csv", "credentialRef": {"name": "operator-tests"}},
           "outputSettings": {"type": "s3", "url": "s3://bucket/out.csv", "credentialRef": {"name": "operator-tests"}}}


@pytest.fixture(scope="module")
def local() -> Iterator[LocalServer]:
    with LocalServer(token=TOKEN) as srv:
        seed(srv.api_url, TOKEN)
        yield srv


def _reconcile(server: LocalServer, body: dict[str, Any]) -> Any:
    async def go() -> Any:
        async with Client(endpoint=server.api_url, token=TOKEN) as client:
            return await act.reconcile(operator_session(server.api_url), client, decide.parse(body),
                                       recorded_id=None, mode=decide.Mode.apply)
    return asyncio.run(go())


def _resource(name: str, job: dict[str, Any]) -> dict[str, Any]:
    body = manifest(name, batchPredictionJob=job)
    body["metadata"].update(namespace="ns", uid="u", generation=1)
    return body


def test_the_pipeline_resolves_references_by_name(local: LocalServer) -> None:
    outcome = _reconcile(local, _resource("refs-a", BY_NAME))
    assert outcome.result is Result.created
    job = outcome.live["batchPredictionJob"]
    assert job["deploymentId"] == DEPLOYMENT and job["intakeSettings"]["credentialId"] == CREDENTIAL
    again = _reconcile(local, _resource("refs-a", BY_NAME))
    assert again.result is Result.adopted and "matches" in again.message  # no change: ids compare equal


def test_an_unresolvable_name_is_its_own_error_with_close_matches(local: LocalServer) -> None:
    job = {**BY_NAME, "deploymentRef": {"name": "operator-test"}}
    with pytest.raises(act.Unresolved, match=r"no deployment \(by label\) named 'operator-test'; "
                                                  r"close matches: 'operator-tests'"):
        _reconcile(local, _resource("refs-b", job))


def test_the_drift_body_is_a_valid_notification() -> None:
    outcome = Reconciliation(result=Result.drift_corrected, message="corrected drift in batchPredictionJob.numConcurrent",
                      definition_id="0" * 24, definition_name="ns-a", drift=("batchPredictionJob.numConcurrent",))
    body = drift_body("ns/ns-a", outcome)
    validators.validator("notification").validate(body)
    assert body["event"] == "drift.found" and body["source"] == "operator"
    assert body["definitions"][0]["outcome"] == "corrected"


class _Receiver:
    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


def test_on_the_cluster_names_resolve_and_corrected_drift_is_notified(
        namespace: Namespace, service: Service, start_operator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    receiver = _Receiver()
    try:
        monkeypatch.setenv("RECONCILER_NOTIFY_WEBHOOK_URL", receiver.url)
        start_operator(namespace)
        name = f"{namespace.name}-refs"
        namespace.apply(manifest(name, batchPredictionJob=BY_NAME))
        (live,) = wait_for(lambda: service.find(name), timeout=30, what="the definition in the service")
        assert live["batchPredictionJob"]["deploymentId"] == DEPLOYMENT
        missing = f"{namespace.name}-nope"
        namespace.apply(manifest(missing, batchPredictionJob={**BY_NAME, "deploymentRef": {"name": "nope"}}))
        cond = wait_for(lambda: (c := namespace.condition(missing, "Synced")) and c["reason"] == "UnresolvedReference"
                        and c, timeout=30, what="Synced=False UnresolvedReference")
        assert "no deployment (by label) named 'nope'" in cond["message"]
        service.patch(live["id"], {"numConcurrent": 7})
        wait_for(lambda: [b for b in receiver.bodies if b["event"] == "drift.found"], timeout=RESYNC * 4 + 10,
                 what="drift.found at the webhook")
        body = next(b for b in receiver.bodies if b["event"] == "drift.found")
        validators.validator("notification").validate(body)
        assert body["source"] == "operator" and body["definitions"][0]["id"] == live["id"]
        assert "numConcurrent" in body["summary"]
    finally:
        receiver.httpd.shutdown()
        receiver.httpd.server_close()
