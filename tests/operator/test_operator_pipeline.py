"""The operator's decide and act for one resource against the real local service over HTTP (no cluster):
adoption, no duplicates, drift corrected or reported, rename drift, finalize with each policy."""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from operator_harness import manifest, operator_session, seed

from reconciler.api.client import Client
from reconciler.operator import act, decide
from reconciler.operator.status import Result
from reconciler.service.testing import LocalServer

TOKEN = "pipeline-test-token"


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer(token=TOKEN) as srv:
        seed(srv.api_url, TOKEN)
        yield srv


def run(server: LocalServer, body: dict[str, Any], *, recorded: str | None, mode: decide.Mode) -> Any:
    async def go() -> Any:
        async with Client(endpoint=server.api_url, token=TOKEN) as client:
            return await act.reconcile(operator_session(server.api_url), client, decide.parse(body),
                                       recorded_id=recorded, mode=mode)
    return asyncio.run(go())


def finalize(server: LocalServer, **kwargs: Any) -> tuple[bool, str]:
    async def go() -> tuple[bool, str]:
        async with Client(endpoint=server.api_url, token=TOKEN) as client:
            return await act.finalize(operator_session(server.api_url), client, **kwargs)
    return asyncio.run(go())


def resource(name: str, **spec: Any) -> dict[str, Any]:
    body = manifest(name, **spec)
    body["metadata"].update(namespace="ns", uid="u", generation=1)
    return body


def live(server: LocalServer, definition_id: str) -> dict[str, Any] | None:
    response = httpx.get(f"{server.api_url}batchPredictionJobDefinitions/{definition_id}/", headers=server.headers())
    return None if response.status_code == 404 else dict(response.json())


def patch_live(server: LocalServer, definition_id: str, body: dict[str, Any]) -> None:
    httpx.patch(f"{server.api_url}batchPredictionJobDefinitions/{definition_id}/", json=body,
                headers=server.headers()).raise_for_status()


def test_create_then_unchanged_then_drift_corrected(server: LocalServer) -> None:
    name = "p-" + uuid.uuid4().hex[:8]
    body = resource(name)
    created = run(server, body, recorded=None, mode=decide.Mode.apply)
    assert created.result is Result.created and created.live["name"] == name
    again = run(server, body, recorded=created.definition_id, mode=decide.Mode.apply)
    assert again.result is Result.unchanged and again.definition_id == created.definition_id
    # Restart without a recorded id: found by name, nothing created.
    restarted = run(server, body, recorded=None, mode=decide.Mode.apply)
    assert restarted.result is Result.adopted and restarted.definition_id == created.definition_id
    patch_live(server, created.definition_id, {"numConcurrent": 9, "name": name + "-renamed"})
    fixed = run(server, body, recorded=created.definition_id, mode=decide.Mode.resync)
    assert fixed.result is Result.drift_corrected
    assert set(fixed.drift) == {"name", "batchPredictionJob.numConcurrent"}
    after = live(server, created.definition_id)
    assert after is not None and after["name"] == name and after["batchPredictionJob"]["numConcurrent"] == 4


def test_report_only_drift_and_missing(server: LocalServer) -> None:
    name = "r-" + uuid.uuid4().hex[:8]
    body = resource(name, driftPolicy="Report")
    created = run(server, body, recorded=None, mode=decide.Mode.apply)
    patch_live(server, created.definition_id, {"enabled": False})
    reported = run(server, body, recorded=created.definition_id, mode=decide.Mode.resync)
    assert reported.result is Result.drift_reported and reported.drift == ("enabled",)
    assert live(server, created.definition_id)["enabled"] is False  # type: ignore[index]
    # A spec change (apply mode) still corrects, whatever the drift policy.
    changed = copy.deepcopy(body)
    changed["spec"]["batchPredictionJob"]["numConcurrent"] = 3
    updated = run(server, changed, recorded=created.definition_id, mode=decide.Mode.apply)
    assert updated.result is Result.updated and live(server, created.definition_id)["enabled"] is True  # type: ignore[index]
    assert finalize(server, recorded_id=created.definition_id, name=name, deletion_policy="Delete",
                    prevent_destroy=False)[0] is True
    missing = run(server, changed, recorded=created.definition_id, mode=decide.Mode.resync)
    assert missing.result is Result.missing_reported


def test_finalize_respects_orphan_and_prevent_destroy(server: LocalServer) -> None:
    name = "f-" + uuid.uuid4().hex[:8]
    created = run(server, resource(name), recorded=None, mode=decide.Mode.apply)
    assert finalize(server, recorded_id=created.definition_id, name=name, deletion_policy="Orphan",
                    prevent_destroy=False) == (False, f"definition {created.definition_id} left in place "
                                                      "(deletionPolicy: Orphan)")
    assert finalize(server, recorded_id=created.definition_id, name=name, deletion_policy="Delete",
                    prevent_destroy=True)[0] is False
    assert live(server, created.definition_id) is not None
    assert finalize(server, recorded_id=None, name=name, deletion_policy="Delete", prevent_destroy=False)[0] is False
    assert finalize(server, recorded_id=created.definition_id, name=name, deletion_policy="Delete",
                    prevent_destroy=False)[0] is True
    assert live(server, created.definition_id) is None


def test_api_rejection_raises_with_the_api_text(server: LocalServer) -> None:
    async def go() -> None:
        async with Client(endpoint=server.api_url, token="not-the-token") as client:
            await act.reconcile(operator_session(server.api_url), client,
                                decide.parse(resource("x-" + uuid.uuid4().hex[:6])), recorded_id=None,
                                mode=decide.Mode.apply)
    with pytest.raises(Exception) as caught:
        asyncio.run(go())
    assert "401" in str(caught.value) and "not-the-token" not in str(caught.value)


def test_a_definition_another_resource_manages_is_never_taken(server: LocalServer) -> None:
    name = "c-" + uuid.uuid4().hex[:8]
    created = run(server, resource(name), recorded=None, mode=decide.Mode.apply)
    other = resource(name)
    other["spec"]["batchPredictionJob"]["numConcurrent"] = 8

    async def go() -> Any:
        async with Client(endpoint=server.api_url, token=TOKEN) as client:
            return await act.reconcile(operator_session(server.api_url), client, decide.parse(other),
                                       recorded_id=None, mode=decide.Mode.apply, claimed_by=lambda i: "ns-a/" + name if i == created.definition_id else None)
    with pytest.raises(decide.ClaimedElsewhere, match=f"{created.definition_id}.*managed by .* ns-a/{name}"):
        asyncio.run(go())
    assert live(server, created.definition_id)["batchPredictionJob"]["numConcurrent"] == 4  # type: ignore[index]
    deleted, message = finalize(server, recorded_id=created.definition_id, name=name, deletion_policy="Delete",
                                prevent_destroy=False, claimed_by=lambda i: "ns-a/" + name)
    assert deleted is False and "managed by" in message and live(server, created.definition_id) is not None
