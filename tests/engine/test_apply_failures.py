"""Apply never reports a success it did not have: any exception in any action, expected or not, is
a recorded failure of that action, counted in the summary, and no delete runs after it.

The seam is real: the embedded local service in-process behind an httpx transport that raises an
arbitrary exception (not an API error, not an httpx error) for one chosen request, and records
every request that reached the service. Before, such an exception escaped the action's task
("Task exception was never retrieved"), the action was never recorded, and the deletes ran.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.api.client import LOCAL_BASE_URL, Client, RetryPolicy
from reconciler.api.live import fetch_live
from reconciler.api.secrets import resolver
from reconciler.engine import apply as applying
from reconciler.engine.plan import ActionKind, build_plan
from reconciler.engine.types import Scope
from reconciler.service.app import create_app
from reconciler.service.settings import ServiceSettings

from .helpers import CREDENTIAL, DATASTORE, DEPLOYMENT, desired

SCOPE = Scope(name_prefix="demo-")


class Injected(Exception):
    """Nothing apply knows about: stands for any bug or surprise below it."""


class FaultyTransport(httpx.AsyncBaseTransport):
    """The in-process service; the first request whose method and path match raises ``Injected``."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.fault: tuple[str, str] | None = None
        self.sent: list[tuple[str, str]] = []  # requests that reached the service

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.fault is not None and request.method == self.fault[0] and self.fault[1] in request.url.path:
            self.fault = None
            raise Injected(f"injected into {request.method} {request.url.path}")
        self.sent.append((request.method, request.url.path))
        return await self.inner.handle_async_request(request)


def _client(transport: httpx.AsyncBaseTransport) -> Client:
    return Client(endpoint=LOCAL_BASE_URL, transport=transport, check_scheme=False,
                  retry=RetryPolicy(attempts=2, initial=0.0, maximum=0.0))


async def _setup(client: Client) -> dict[str, str]:
    """Live: demo-upd (in scope, will change), other-adopt (outside the scope, declared), demo-old
    (renamed to demo-renamed), demo-gone (in scope, no manifest: pruned). Returns name -> id."""
    for path, body in (("deployments/", {"id": DEPLOYMENT, "label": "dep"}),
                       ("credentials/", {"id": CREDENTIAL, "name": "cred"}),
                       ("externalDataStores/", {"id": DATASTORE, "canonicalName": "store"})):
        await client.request("POST", client.url(path), json=body)
    ids = {}
    for name in ("demo-upd", "other-adopt", "demo-old", "demo-gone"):
        created = await client.create_definition(dict(desired(name, enabled=False).body))
        ids[name] = str(created["id"])
    return ids


def _wanted() -> list[Any]:
    base = desired("demo-upd", enabled=False)
    job = {k: v for k, v in base.body.items() if k not in ("name", "enabled", "schedule")}
    return [
        desired("demo-new", enabled=False),
        desired("demo-upd", enabled=False, job={**job, "predictionThreshold": 0.3}),
        desired("other-adopt", enabled=False, job={**job, "predictionThreshold": 0.3}),
        desired("demo-renamed", enabled=False, previousNames=["demo-old"]),
    ]


@pytest.mark.parametrize("kind", ["create", "update", "adopt", "rename", "delete"])
def test_an_unexpected_exception_in_any_action_is_a_failure_and_stops_the_deletes(tmp_path: Path, kind: str) -> None:
    transport = FaultyTransport(httpx.ASGITransport(app=create_app(ServiceSettings(
        db_url=f"sqlite:///{tmp_path}/local.db"))))
    lines: list[str] = []

    async def go() -> tuple[applying.ApplyResult, Any, dict[str, str]]:
        async with _client(transport) as client:
            ids = await _setup(client)
            live = await fetch_live(client)
            plan = build_plan(desired=_wanted(), live=live, scope=SCOPE, prune=True, max_delete_fraction=1.0)
            kinds = {a.kind.value: a for a in plan.writes}
            assert sorted(kinds) == ["adopt", "create", "delete", "rename", "update"]
            target = kinds[kind]
            method = {"create": "POST", "delete": "DELETE"}.get(kind, "PATCH")
            transport.fault = (method, "batchPredictionJobDefinitions/" + (target.id or ""))
            transport.sent.clear()
            result = await applying.apply_plan(plan, client=client, resolve=resolver(), on_result=lambda r: lines.append(r.line()))
            return result, target, ids

    result, target, _ids = asyncio.run(go())
    assert transport.fault is None, "the fault was injected"
    by_kind = {r.action.kind.value: r for r in result.results}
    failed = by_kind[kind]
    method = {"create": "POST", "delete": "DELETE"}.get(kind, "PATCH")
    assert failed.outcome is applying.Outcome.failed
    assert failed.error is not None and failed.error.startswith(f"unexpected Injected: injected into {method} ")
    assert "`reconciler plan` shows the live state" in failed.error
    assert not result.ok
    # nothing after a failure deletes: the delete is not attempted (or is the failure itself)
    deletes = [m for m, _ in transport.sent if m == "DELETE"]
    assert deletes == []
    if kind != "delete":
        assert by_kind["delete"].outcome is applying.Outcome.skipped
        assert by_kind["delete"].error == "an earlier action failed, so nothing is pruned"
    others = [r for r in result.results if r.action.kind.value not in (kind, "delete")]
    assert all(r.outcome is applying.Outcome.applied for r in others)
    created = sum(1 for r in others if r.action.kind is ActionKind.create)
    updated = len(others) - created
    skipped = 0 if kind == "delete" else 1
    assert result.summary == (f"Apply failed: {created} created, {updated} updated, 0 deleted; 1 failed, "
                              f"{skipped} not attempted.")
    assert any(line.startswith(f"{target.name}: {kind} FAILED: unexpected Injected") for line in lines)
    assert len(lines) == 5  # every action reported once, as it landed


def test_a_body_the_json_encoder_refuses_is_a_failure_not_a_lost_task(tmp_path: Path) -> None:
    """The attack of issue 11: a NaN reaching the encoder (validation refuses it now; a plan built
    in memory can still carry one) fails its action; the prune does not run."""
    transport = FaultyTransport(httpx.ASGITransport(app=create_app(ServiceSettings(
        db_url=f"sqlite:///{tmp_path}/local.db"))))

    async def go() -> applying.ApplyResult:
        async with _client(transport) as client:
            await _setup(client)
            live = await fetch_live(client)
            bad = desired("demo-new", enabled=False)
            bad.body["predictionThreshold"] = float("nan")
            plan = build_plan(desired=[bad], live=live, scope=SCOPE, prune=True, force=True)
            transport.sent.clear()
            assert [a.kind.value for a in plan.writes].count("delete") == 3  # other-adopt is outside the scope
            return await applying.apply_plan(plan, client=client, resolve=resolver())

    result = asyncio.run(go())
    (failed,) = result.of(applying.Outcome.failed)
    assert failed.action.name == "demo-new" and "unexpected ValueError: Out of range float values" in (failed.error or "")
    assert len(result.of(applying.Outcome.skipped)) == 3
    assert result.summary == "Apply failed: 0 created, 0 updated, 0 deleted; 1 failed, 3 not attempted."
    assert [m for m, _ in transport.sent if m in ("POST", "DELETE")] == []
