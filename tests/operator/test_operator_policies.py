"""Policies in the operator: the same rule files as the CLI, given with --policy, judged on the
real kube-apiserver with the local service over HTTP; a deny writes nothing and shows as
Ready=False PolicyDenied, a warn as the PolicyWarning condition and a Warning Event. Also the
operator's pipeline alone against the served service."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from operator_harness import TOKEN, Namespace, Service, manifest, operator_session, seed, wait_for

from reconciler.api.client import Client
from reconciler.operator import act, decide
from reconciler.operator.policies import PolicyDenied
from reconciler.service.testing import LocalServer

POLICY = """\
apiVersion: reconciler.io/v1alpha1
kind: Policy
rules:
  - name: max-concurrency-prod
    targets: [prod]
    expression: manifest.spec.batchPredictionJob.numConcurrent <= 8
    message: numConcurrent may be at most 8 in prod
  - name: frozen-concurrency
    on: action
    expression: action.kind != 'update' || !('batchPredictionJob.numConcurrent' in action.changes)
    message: numConcurrent changes go through the capacity review
  - name: nightly-only
    severity: warn
    expression: schedule == null || schedule.hours.all(h, h < 6)
    message: runs outside the night
"""


def _policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    return path


def _concurrency(body: dict[str, Any], value: int) -> dict[str, Any]:
    body = copy.deepcopy(body)
    body["spec"]["batchPredictionJob"]["numConcurrent"] = value
    return body


def test_the_operator_refuses_what_a_policy_denies_and_shows_what_it_warns_of(
        namespace: Namespace, service: Service, start_operator: Any, tmp_path: Path) -> None:
    op = start_operator(namespace, "--policy", str(_policy_file(tmp_path)), "--policy-target", "prod")
    big = f"{namespace.name}-big"
    namespace.apply(_concurrency(manifest(big), 16))
    cond = wait_for(lambda: (c := namespace.condition(big, "Ready")) and c["reason"] == "PolicyDenied" and c,
                    what="Ready=False reason PolicyDenied")
    assert cond["status"] == "False" and "policy max-concurrency-prod denied" in cond["message"]
    assert service.find(big) == []  # nothing was created
    assert "PolicyDenied" in [e.reason for e in namespace.events(big)]

    good = f"{namespace.name}-good"
    namespace.apply(manifest(good))
    wait_for(lambda: (c := namespace.condition(good, "Ready")) and c["status"] == "True", what="good resource Ready")
    (created,) = service.find(good)
    namespace.patch_spec(good, {"batchPredictionJob": {"numConcurrent": 6}})
    cond = wait_for(lambda: (c := namespace.condition(good, "Ready")) and c["reason"] == "PolicyDenied" and c,
                    what="the update refused by the action rule")
    assert "policy frozen-concurrency denied update" in cond["message"]
    assert service.get(created["id"])["batchPredictionJob"]["numConcurrent"] == 4  # type: ignore[index]

    # a warn writes, and shows on the resource: a PolicyWarning condition and a Warning Event
    late = f"{namespace.name}-late"
    namespace.apply(manifest(late, schedule={"cron": "0 14 * * *"}))
    cond = wait_for(lambda: (c := namespace.condition(late, "PolicyWarning")) and c["status"] == "True" and c,
                    what="PolicyWarning=True")
    assert cond["message"] == f"policy nightly-only warns on {late}: runs outside the night"
    assert namespace.condition(late, "Ready")["status"] == "True" and service.find(late)  # type: ignore[index]
    (event,) = [e for e in namespace.events(late) if e.reason == "PolicyWarning"]
    assert event.type == "Warning" and event.message == cond["message"]
    namespace.patch_spec(late, {"schedule": {"cron": "0 3 * * *"}})
    wait_for(lambda: (c := namespace.condition(late, "PolicyWarning")) and c["status"] == "False"
             and c["reason"] == "NoWarnings", what="PolicyWarning=False once nothing warns")
    op.stop()


def test_a_policy_file_that_does_not_compile_stops_the_start(namespace: Namespace, start_operator: Any,
                                                             tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(POLICY.replace("h < 6)", "h < 6"))
    op = start_operator(namespace, "--policy", str(broken))
    assert op.process.wait(timeout=60) == 1
    assert f"error: {broken}:" in op.text() and "rule 'nightly-only' does not compile" in op.text()


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer(token=TOKEN) as srv:
        seed(srv.api_url, TOKEN)
        yield srv


def test_the_pipeline_judges_manifest_and_action_with_the_engines_rules(server: LocalServer, tmp_path: Path) -> None:
    session = operator_session(server.api_url, policy_files=(str(_policy_file(tmp_path)),), policy_target="prod")

    def run(body: dict[str, Any], recorded: str | None) -> Any:
        async def go() -> Any:
            async with Client(endpoint=server.api_url, token=TOKEN) as client:
                return await act.reconcile(session, client, decide.parse(body), recorded_id=recorded,
                                           mode=decide.Mode.apply)
        return asyncio.run(go())

    body = manifest("pol-pipeline")
    body["metadata"].update(namespace="ns", uid="u", generation=1)
    with pytest.raises(PolicyDenied, match="policy max-concurrency-prod denied pol-pipeline"):
        run(_concurrency(body, 16), None)
    created = run(body, None)
    assert created.result.value == "Created"
    with pytest.raises(PolicyDenied) as denied:
        run(_concurrency(body, 6), created.definition_id)
    assert [v.rule for v in denied.value.verdicts] == ["frozen-concurrency"]
    live = httpx.get(f"{server.api_url}batchPredictionJobDefinitions/{created.definition_id}/",
                     headers=server.headers()).json()
    assert live["batchPredictionJob"]["numConcurrent"] == 4
    assert operator_session(server.api_url).policies.digest is None  # no files: no rules, no runtime
