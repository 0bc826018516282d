"""Suspend, sync windows and ignore rules in the operator, without a cluster: the pipeline against
the real local service over HTTP at exact moments, and the status they write."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from operator_harness import manifest, operator_session, seed

from reconciler.api.client import Client
from reconciler.operator import act, decide
from reconciler.operator import controls as operator_controls
from reconciler.operator.status import Reconciliation, Result, status_patch
from reconciler.specs.config import ProjectConfig
from reconciler.specs.controls import Controls, IgnoreRule, SyncWindow

TOKEN = "controls-test-token"
FRI_2330 = datetime(2026, 12, 4, 23, 30, tzinfo=UTC)
FREEZE = Controls(windows=(SyncWindow(kind="deny", schedule="0 22 * * 5", duration=timedelta(days=2, hours=8),
                                      name="weekend freeze"),))


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    from reconciler.service.testing import LocalServer

    with LocalServer(token=TOKEN) as srv:
        seed(srv.api_url, TOKEN)
        yield srv


def reconcile(server: Any, body: dict[str, Any], *, recorded: str | None, controls: Controls,
              now: datetime, mode: decide.Mode = decide.Mode.apply) -> Reconciliation:
    async def go() -> Reconciliation:
        async with Client(endpoint=server.api_url, token=TOKEN) as client:
            session = operator_session(server.api_url, project=ProjectConfig(controls=controls))
            return await act.reconcile(session, client, decide.parse(body), recorded_id=recorded, mode=mode,
                                       now=now, fallback_delay=123.0)
    return asyncio.run(go())


def resource(name: str, **spec: Any) -> dict[str, Any]:
    body = manifest(name, **spec)
    body["metadata"].update(namespace="ns", uid="u", generation=1)
    return body


def found(server: Any, name: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{server.api_url}batchPredictionJobDefinitions/", params={"searchName": name},
                         headers=server.headers())
    return [d for d in response.json()["data"] if d["name"] == name]


def test_a_write_in_a_closed_window_is_deferred_until_it_opens(server: Any) -> None:
    body = resource("ctl-window")
    deferred = reconcile(server, body, recorded=None, controls=FREEZE, now=FRI_2330)
    assert deferred.result is Result.deferred and found(server, "ctl-window") == []
    assert deferred.message == "create deferred: deny window weekend freeze is open until 2026-12-07 06:00 UTC"
    assert deferred.retry_after == (datetime(2026, 12, 7, 6, 0, tzinfo=UTC) - FRI_2330).total_seconds() + 1
    patch = status_patch(deferred, {}, generation=1, now="2026-12-04T23:30:00Z")
    synced = next(c for c in patch["conditions"] if c["type"] == "Synced")
    assert (synced["status"], synced["reason"], synced["message"]) == ("False", "SyncWindowClosed", deferred.message)
    # Monday 06:00: written
    created = reconcile(server, body, recorded=None, controls=FREEZE, now=datetime(2026, 12, 7, 6, 0, tzinfo=UTC))
    assert created.result is Result.created and len(found(server, "ctl-window")) == 1
    # no write needed: nothing is deferred, also inside the window
    same = reconcile(server, body, recorded=created.definition_id, controls=FREEZE, now=FRI_2330)
    assert same.result is Result.unchanged


def test_drift_correction_waits_for_the_window_and_keeps_ready(server: Any) -> None:
    body = resource("ctl-drift")
    created = reconcile(server, body, recorded=None, controls=Controls(), now=FRI_2330)
    httpx.patch(f"{server.api_url}batchPredictionJobDefinitions/{created.definition_id}/", json={"numConcurrent": 9},
                headers=server.headers()).raise_for_status()
    deferred = reconcile(server, body, recorded=created.definition_id, controls=FREEZE, now=FRI_2330,
                         mode=decide.Mode.resync)
    assert deferred.result is Result.deferred and deferred.drift == ("batchPredictionJob.numConcurrent",)
    assert found(server, "ctl-drift")[0]["batchPredictionJob"]["numConcurrent"] == 9
    patch = status_patch(deferred, {}, generation=1, now="2026-12-04T23:30:00Z")
    ready = next(c for c in patch["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True" and ready["reason"] == "Exists"
    assert patch["drift"] == ["batchPredictionJob.numConcurrent"]


def test_an_allow_window_that_never_opens_retries_after_the_fallback(server: Any) -> None:
    never = Controls(windows=(SyncWindow(kind="allow", schedule="0 0 30 2 *", duration=timedelta(hours=1)),))
    deferred = reconcile(server, resource("ctl-never"), recorded=None, controls=never, now=FRI_2330)
    assert deferred.result is Result.deferred and deferred.retry_after == 123.0


def test_the_projects_ignore_rules_select_resources_by_label(server: Any) -> None:
    body = resource("ctl-ignore")
    body["metadata"]["labels"] = {"team": "growth"}
    created = reconcile(server, body, recorded=None, controls=Controls(), now=FRI_2330)
    httpx.patch(f"{server.api_url}batchPredictionJobDefinitions/{created.definition_id}/", json={"enabled": False},
                headers=server.headers()).raise_for_status()
    rules = Controls(ignore=(IgnoreRule(paths=("enabled",), selector=(("team", "growth", True),)),))
    kept = reconcile(server, body, recorded=created.definition_id, controls=rules, now=FRI_2330,
                     mode=decide.Mode.resync)
    assert kept.result is Result.unchanged and found(server, "ctl-ignore")[0]["enabled"] is False
    body["spec"]["ignoreChanges"] = ["enabled"]  # the resource's own rule: the same
    kept = reconcile(server, body, recorded=created.definition_id, controls=Controls(), now=FRI_2330,
                     mode=decide.Mode.resync)
    assert kept.result is Result.unchanged and found(server, "ctl-ignore")[0]["enabled"] is False
    del body["spec"]["ignoreChanges"]
    corrected = reconcile(server, body, recorded=created.definition_id, controls=Controls(), now=FRI_2330,
                          mode=decide.Mode.resync)
    assert corrected.result is Result.drift_corrected and found(server, "ctl-ignore")[0]["enabled"] is True


def test_suspended_status_keeps_ready_and_synced_and_resuming_says_so() -> None:
    before = status_patch(Reconciliation(result=Result.created, message="created definition d1", definition_id="d1"), {},
                          generation=1, now="2026-01-01T00:00:00Z")
    outcome = operator_controls.suspended(before)
    assert outcome.result is Result.suspended and outcome.definition_id == "d1"
    paused = status_patch(outcome, before, generation=2, now="2026-01-02T00:00:00Z")
    kinds = {c["type"]: c for c in paused["conditions"]}
    assert kinds["Ready"] == before["conditions"][0] and kinds["Synced"] == before["conditions"][1]
    assert (kinds["Suspended"]["status"], kinds["Suspended"]["reason"]) == ("True", "Suspended")
    assert paused["definitionId"] == "d1" and "lastSyncTime" not in paused
    resumed = status_patch(Reconciliation(result=Result.unchanged, message="ok", definition_id="d1"), paused, generation=3,
                           now="2026-01-03T00:00:00Z")
    suspended = next(c for c in resumed["conditions"] if c["type"] == "Suspended")
    assert (suspended["status"], suspended["reason"], suspended["lastTransitionTime"]) == (
        "False", "Resumed", "2026-01-03T00:00:00Z")
    never = status_patch(Reconciliation(result=Result.unchanged, message="ok", definition_id="d1"), before, generation=1)
    assert [c["type"] for c in never["conditions"]] == ["Ready", "Synced"]  # no Suspended condition unless used


def test_the_decision_defers_and_the_finalizer_keeps_a_suspended_definition() -> None:
    """The pure halves: decide() returns a defer step with its outcome, decide_finalize() keeps."""
    from reconciler.engine import windows
    from reconciler.engine.normalize import desired_from_manifest

    desired = desired_from_manifest(decide.parse(resource("ctl-pure")))
    state = windows.state(FREEZE.windows, FRI_2330)
    decision = decide.decide(desired, [], recorded_id=None, mode=decide.Mode.apply, drift_policy=None, window=state)
    assert decision.step is decide.Step.defer and not decision.writes
    assert decision.outcome is not None and decision.outcome.result is Result.deferred
    assert decide.decide(desired, [], recorded_id=None, mode=decide.Mode.apply, drift_policy=None,
                         window=windows.state(FREEZE.windows, FRI_2330 - timedelta(hours=2))).writes
    kept = decide.decide_finalize(recorded_id="d1", name="ctl-pure", deletion_policy="Delete", prevent_destroy=False,
                                  suspended=True)
    assert kept.step is decide.Step.keep and kept.message == "definition d1 left in place (spec.suspend: true)"
