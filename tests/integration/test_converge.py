"""plan/apply against the served local service, clean and under injected faults: every run
converges, never duplicates a definition, never touches anything outside the scope."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.api.client import Client, RetryPolicy
from reconciler.api.live import fetch_live
from reconciler.api.secrets import resolver
from reconciler.engine import apply as applying
from reconciler.engine.normalize import desired_from_manifest
from reconciler.engine.plan import ActionKind, Plan, build_plan
from reconciler.engine.types import Scope
from reconciler.service.testing import LocalServer
from reconciler.specs.model import Manifest
from reconciler.specs.validate import validate_paths

from .conftest import TOKEN
from .faults import FaultProxy
from .specs import manifest, standard, write_specs

SCOPE = Scope(name_prefix="demo-")
ENV = {"PRED_API_KEY": "pred-SECRET-value"}


def _desired(root: Path) -> list[Any]:
    report = validate_paths([root])
    assert report.ok, [i.format() for i in report.errors]
    return [desired_from_manifest(Manifest.from_document(doc)) for doc in report.documents]


def _client(api_url: str, **kw: Any) -> Client:
    return Client(endpoint=api_url, token=TOKEN, retry=RetryPolicy(attempts=6, initial=0.01, maximum=0.05), **kw)


async def _plan(api_url: str, root: Path, **options: Any) -> Plan:
    async with _client(api_url) as c:
        return build_plan(live=await fetch_live(c), desired=_desired(root), scope=SCOPE, **options)


async def _apply(api_url: str, root: Path, **kw: Any) -> tuple[applying.ApplyResult, Client]:
    prune = kw.pop("prune", False)
    async with _client(api_url, **kw) as c:
        plan = build_plan(live=await fetch_live(c), desired=_desired(root), scope=SCOPE, prune=prune)
        return await applying.apply_plan(plan, client=c, resolve=resolver(ENV)), c


def _all(api_url: str) -> list[dict[str, Any]]:
    with httpx.Client(headers={"Authorization": f"Token {TOKEN}"}) as h:
        return h.get(api_url + "batchPredictionJobDefinitions/", params={"limit": 1000}).json()["data"]


def _outsider(api_url: str) -> dict[str, Any]:
    body = {"name": "someone-elses", "enabled": False, "deploymentId": "5dc5b1015e6e762a6241f9aa",
            "intakeSettings": {"type": "dataset", "datasetId": "5dc5b1015e6e762a6241f9aa"}}
    with httpx.Client(headers={"Authorization": f"Token {TOKEN}"}) as h:
        r = h.post(api_url + "batchPredictionJobDefinitions/", json=body)
        r.raise_for_status()
        return dict(r.json())


def test_apply_then_plan_shows_no_changes_and_second_apply_writes_nothing(server: LocalServer, tmp_path: Path) -> None:
    root = write_specs(tmp_path / "specs", standard())
    outsider = _outsider(server.api_url)
    result, _c = asyncio.run(_apply(server.api_url, root))
    assert result.ok and len(result.results) == 4, result.summary
    assert result.summary == "Apply complete: 4 created, 0 updated, 0 deleted."
    plan = asyncio.run(_plan(server.api_url, root))
    assert not plan.has_changes, [a.line() for a in plan.actions if a.kind is not ActionKind.noop]
    again, c2 = asyncio.run(_apply(server.api_url, root))
    assert again.results == () and c2.writes == 0 and c2.calls["GET"] == 1
    assert [d for d in _all(server.api_url) if d["name"] == "someone-elses"] == [outsider]


def test_update_rename_prune_and_adopt(server: LocalServer, tmp_path: Path) -> None:
    docs = standard()
    root = write_specs(tmp_path / "specs", docs)
    assert asyncio.run(_apply(server.api_url, root))[0].ok
    ids = {d["name"]: d["id"] for d in _all(server.api_url)}
    docs[0]["spec"]["batchPredictionJob"]["intakeSettings"]["url"] = "s3://bucket/changed.csv"
    docs[1]["metadata"]["name"] = "demo-renamed"
    docs[1]["spec"]["previousNames"] = ["demo-1"]
    adopted = manifest("legacy-thing")
    write_specs(root, [docs[0], docs[1], docs[2], adopted])  # demo-3 removed
    with httpx.Client(headers={"Authorization": f"Token {TOKEN}"}) as h:
        body = {"name": "legacy-thing", "enabled": False, "deploymentId": "5dc5b1015e6e762a6241f9aa",
                "intakeSettings": {"type": "dataset", "datasetId": "5dc5b1015e6e762a6241f9aa"}}
        legacy_id = h.post(server.api_url + "batchPredictionJobDefinitions/", json=body).json()["id"]
    plan = asyncio.run(_plan(server.api_url, root, prune=True))
    assert [(a.kind.value, a.name) for a in plan.writes] == [
        ("rename", "demo-renamed"), ("adopt", "legacy-thing"), ("update", "demo-0"), ("delete", "demo-3")]
    assert plan.summary.text == "Plan: 0 to create, 3 to update, 1 to delete."
    result, _ = asyncio.run(_apply(server.api_url, root, prune=True))
    assert result.ok, result.summary
    after = {d["name"]: d["id"] for d in _all(server.api_url)}
    assert after["demo-renamed"] == ids["demo-1"] and "demo-1" not in after and "demo-3" not in after
    assert after["legacy-thing"] == legacy_id
    assert not asyncio.run(_plan(server.api_url, root, prune=True)).has_changes


FAULTS = [
    ("POST", "batchPredictionJobDefinitions", 2, "429"),
    ("POST", "batchPredictionJobDefinitions", 1, "503"),
    ("POST", "batchPredictionJobDefinitions", 3, "drop_after"),
    ("POST", "batchPredictionJobDefinitions", 2, "drop_before"),
    ("POST", "batchPredictionJobDefinitions", 1, "delay:1.5"),
    ("GET", "batchPredictionJobDefinitions", 1, "503"),
    ("GET", "batchPredictionJobDefinitions", 1, "drop_before"),
    ("GET", "batchPredictionJobDefinitions", 1, "delay:1.5"),
    ("PATCH", "batchPredictionJobDefinitions", 1, "drop_after"),
    ("PATCH", "batchPredictionJobDefinitions", 1, "429"),
    ("DELETE", "batchPredictionJobDefinitions", 1, "drop_after"),
]


@pytest.mark.parametrize(("method", "path", "nth", "kind"), FAULTS, ids=[f"{m}-{k}-{n}" for m, _, n, k in FAULTS])
def test_faults_converge_without_duplicates(server: LocalServer, tmp_path: Path, method: str, path: str,
                                            nth: int, kind: str) -> None:
    docs = standard()
    root = write_specs(tmp_path / "specs", docs)
    outsider = _outsider(server.api_url)
    if method in ("PATCH", "DELETE"):  # start from an applied state so that there is something to change
        assert asyncio.run(_apply(server.api_url, root))[0].ok
        docs[0]["spec"]["enabled"] = False
        docs[0]["spec"]["batchPredictionJob"]["intakeSettings"]["url"] = "s3://bucket/v2.csv"
        write_specs(root, docs[:3])  # demo-3 goes: a delete under --prune
    with FaultProxy(upstream=server.url) as proxy:
        proxy.add(method, path, nth, kind)
        api = proxy.url + "/api/v2/"
        first, _ = asyncio.run(_apply(api, root, timeout=1.0, prune=True))
        assert proxy.rules[0].fired
        # whatever happened, a second run converges
        second, _ = asyncio.run(_apply(api, root, prune=True))
        assert second.ok, second.summary
    names = [d["name"] for d in _all(server.api_url)]
    assert sorted(names) == sorted([*(d["spec"].get("name") or d["metadata"]["name"] for d in docs[:3]),
                                    *([] if method in ("PATCH", "DELETE") else ["demo-3"]), "someone-elses"])
    assert [d for d in _all(server.api_url) if d["name"] == "someone-elses"] == [outsider]
    assert not asyncio.run(_plan(server.api_url, root, prune=True)).has_changes
    # a lost PATCH/DELETE answer is retried (DELETE then 404 = gone); a lost POST answer is looked up by name
    assert first.ok, first.summary


def test_an_unresolvable_secret_stops_the_apply_before_the_first_write(server: LocalServer, tmp_path: Path) -> None:
    root = write_specs(tmp_path / "specs", standard())  # demo-1 reads its apiKey from $PRED_API_KEY

    async def attempt() -> Client:
        async with _client(server.api_url) as c:
            plan = build_plan(live=await fetch_live(c), desired=_desired(root), scope=SCOPE)
            assert len(plan.writes) == 4
            with pytest.raises(applying.PlanRefusedError, match=r"demo-1 .*PRED_API_KEY is not set"):
                await applying.apply_plan(plan, client=c, resolve=resolver({}))
            return c

    c = asyncio.run(attempt())
    assert c.writes == 0 and _all(server.api_url) == []
